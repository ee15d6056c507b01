/*
 * apply.c — one logged batch into its tree's memtable (apply.h): the one
 * path for engine WAL replay, the postmaster's replay of PostgreSQL's WAL
 * and the redo of strata records, so replay and redo can never disagree.
 */
#include "postgres.h"

#include "engine/wal/batch.h"
#include "miscadmin.h"
#include "pg/apply.h"
#include "pg/tree.h"

/* Writes a full memtable out during the postmaster's replay (recovery.c). */
static StrataReplayFlush replay_flush = NULL;

void
strata_apply_set_replay_flush(StrataReplayFlush fn)
{
	replay_flush = fn;
}

/*
 * Apply one logged batch to its tree's memtable: the one path for engine
 * WAL replay, the postmaster's replay of PostgreSQL's WAL, and the redo of
 * strata records (crash recovery and standbys). first_lsn and end_lsn
 * place the record in its log; a record the tree's SSTables already hold
 * is skipped. Returns whether it was applied.
 *
 * In the postmaster a full memtable is written out at once, so a long log
 * never needs more than the arena; elsewhere (the startup process) it is
 * frozen for the maintenance worker, as a writer's would be.
 */
bool
strata_apply_batch(StrataTree *tree, StrataLog log, uint64 first_lsn, uint64 end_lsn,
				   sg_slice batch)
{
	sg_batch_iter bi;
	sg_batch_entry e;
	sg_err		err = {0};
	sg_code		rc;
	sg_memtable mt;
	bool		full;

	if (sg_batch_iter_init(&bi, batch, "strata WAL record", &err) != SG_OK)
		ereport(FATAL, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("%s", err.msg)));

	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	if (tree->damaged)
	{
		/* kept in the log for when the tree's files are restored */
		if (log == STRATA_LOG_ENGINE && tree->keep_lsn == 0)
			tree->keep_lsn = end_lsn;
		else if (log == STRATA_LOG_POSTGRES && tree->keep_pglsn == InvalidXLogRecPtr)
			tree->keep_pglsn = first_lsn;
		LWLockRelease(&tree->lock);
		return false;
	}
	if (end_lsn <= (log == STRATA_LOG_ENGINE ? tree->flushed_lsn : tree->flushed_pglsn) ||
		(log == STRATA_LOG_POSTGRES && end_lsn <= tree->active_pg_last))
	{
		/* in SSTables already, or (PostgreSQL's WAL) in a memtable */
		LWLockRelease(&tree->lock);
		return false;
	}
	if (!strata_has_active(tree))
		tree->active = strata_memtable_new();
	if (log == STRATA_LOG_ENGINE)
	{
		if (tree->active_min_lsn == 0)
			tree->active_min_lsn = end_lsn;
	}
	else
	{
		if (tree->active_pg_first == 0)
			tree->active_pg_first = first_lsn;
		tree->active_pg_last = end_lsn;
	}
	strata_memtable_attach(tree->active, &mt);

	while ((rc = sg_batch_iter_next(&bi, &e, "strata WAL record", &err)) == SG_OK)
	{
		uint64		rowid;

		if (e.key.len != STRATA_ROWID_KEY_LEN)
			ereport(FATAL,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("strata WAL record ending at %s LSN %llu holds a malformed row key",
							log == STRATA_LOG_ENGINE ? "engine" : "PostgreSQL",
							(unsigned long long) end_lsn)));
		rowid = sg_decode_be64(e.key.data);
		rc = sg_memtable_add(&mt, e.seq, e.type, e.key, e.value, &err);
		if (rc != SG_OK)
			ereport(FATAL,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not replay strata changes: %s", err.msg),
					 errhint("Consider increasing stratago.memtable_memory.")));
		if (e.seq >= tree->next_seq)
			tree->next_seq = e.seq + 1;
		if (rowid >= tree->next_rowid)
			tree->next_rowid = rowid + 1;
		tree->active_entries++;
	}
	if (rc != SG_NOT_FOUND)
		ereport(FATAL, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("%s", err.msg)));

	full = strata_memtable_full(&mt);
	if (full && IsUnderPostmaster && tree->nimm < STRATA_MAX_IMM)
		(void) strata_freeze_active(tree);
	LWLockRelease(&tree->lock);

	if (full && !IsUnderPostmaster)
	{
		if (replay_flush == NULL)
			elog(ERROR, "stratago: no flush registered for replay");
		replay_flush(tree, log == STRATA_LOG_ENGINE ? end_lsn : 0);
	}
	return true;
}
