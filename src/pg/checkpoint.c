/*
 * checkpoint.c — what the logs must keep, and checkpoints that wait for
 * memtables: the retention side of both sinks, run by the maintenance
 * worker after its flushes.
 *
 *   - the engine WAL: segments every tree has flushed past are deleted
 *     (strata_checkpoint_recycle);
 *   - PostgreSQL's WAL: $PGDATA/stratago/pg_replay_from and the physical
 *     slot "stratago" follow the oldest record any memtable holds
 *     (strata_checkpoint_retain), and the checkpoint guard holds a
 *     checkpoint back until memtables older than its redo point are
 *     flushed (pgwal.c's file head and doc/DESIGN.md §3.2 say why).
 *
 * A damaged tree's records, left unapplied at startup, are kept too
 * (keep_lsn, keep_pglsn). The sinks append and replay; this module only
 * decides how far back each log is needed.
 */
#include "postgres.h"

#include "access/xlogrecovery.h"
#include "replication/slot.h"

#include "pg/checkpoint.h"
#include "pg/enginewal.h"
#include "pg/flush.h"
#include "pg/pgwal.h"
#include "pg/stratago.h"
#include "pg/tree.h"

#define STRATA_SLOT_NAME		"stratago"

/* ------------------------------------------------------------------------
 * The engine WAL (maintenance worker)
 * ------------------------------------------------------------------------
 */

/*
 * Delete engine WAL segments that no tree needs any more: every record in
 * them is in some tree's SSTables (or belongs to a dropped tree).
 */
void
strata_checkpoint_recycle(void)
{
	StrataTree **trees;
	int			n;
	uint64		horizon = strata_wal_end_lsn();

	n = strata_registry_list(&trees);
	for (int i = 0; i < n; i++)
	{
		StrataTree *tree = trees[i];
		uint64		need = 0;

		LWLockAcquire(&tree->lock, LW_SHARED);
		/* memtables holding only PostgreSQL WAL records have no engine LSN */
		for (int k = 0; k < tree->nimm && need == 0; k++)
			need = tree->imm_min_lsn[k];
		if (need == 0)
			need = tree->active_min_lsn;
		if (need == 0)
			need = tree->keep_lsn;	/* a damaged tree's unapplied records */
		LWLockRelease(&tree->lock);
		if (need != 0 && need - 1 < horizon)
			horizon = need - 1;
	}
	pfree(trees);
	strata_wal_delete_below(horizon);
}

/* ------------------------------------------------------------------------
 * PostgreSQL's WAL: pg_replay_from and the slot (maintenance worker)
 * ------------------------------------------------------------------------
 */

/* Where PostgreSQL's WAL currently ends, as this server sees it. */
static XLogRecPtr
current_position(void)
{
	if (RecoveryInProgress())
		return GetXLogReplayRecPtr(NULL);
	return GetXLogInsertRecPtr();
}

/*
 * Advance pg_replay_from and the slot to the oldest record still in a
 * memtable, and ask for flushes of trees that hold the WAL back too long.
 * Runs in the maintenance worker after each round of flushes.
 */
void
strata_checkpoint_retain(void)
{
	static XLogRecPtr last_written = InvalidXLogRecPtr;
	StrataTree **trees;
	int			n;
	XLogRecPtr	now = current_position();
	XLogRecPtr	need = now;
	XLogRecPtr	redo = GetRedoRecPtr();
	bool		any = false;
	ReplicationSlot *slot;

	n = strata_registry_list(&trees);
	for (int i = 0; i < n; i++)
	{
		StrataTree *tree = trees[i];
		XLogRecPtr	first = InvalidXLogRecPtr;

		LWLockAcquire(&tree->lock, LW_SHARED);
		for (int k = 0; k < tree->nimm && first == InvalidXLogRecPtr; k++)
			first = tree->imm_pg_first[k];
		if (first == InvalidXLogRecPtr)
			first = tree->active_pg_first;
		if (tree->damaged && tree->keep_pglsn != InvalidXLogRecPtr)
		{
			/* a damaged tree's unapplied records: kept, and nothing to flush */
			any = true;
			need = Min(need, tree->keep_pglsn);
		}
		LWLockRelease(&tree->lock);
		if (first != InvalidXLogRecPtr)
		{
			any = true;
			if (first < need)
				need = first;
			if (first < redo)
			{
				LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
				tree->flush_requested = true;
				LWLockRelease(&tree->lock);
			}
		}
	}
	pfree(trees);

	/* the engine sink with nothing of PostgreSQL's WAL left: keep nothing */
	if (strata_wal_sink == STRATA_SINK_ENGINE && !any)
	{
		if (SearchNamedReplicationSlot(STRATA_SLOT_NAME, true) != NULL)
			ReplicationSlotDrop(STRATA_SLOT_NAME, true);
		strata_pgwal_remove_replay_from();
		last_written = InvalidXLogRecPtr;
		return;
	}

	if (last_written == InvalidXLogRecPtr)
		last_written = strata_pgwal_read_replay_from();

	/*
	 * First the file, durably: the slot may then follow. It moves (three
	 * fsyncs) only when the retained WAL would pass a segment, or to pass
	 * the redo point of a new checkpoint: a base backup started by that
	 * checkpoint must not need WAL from before it.
	 */
	if (need > last_written &&
		(need - last_written >= (uint64) wal_segment_size ||
		 (last_written < redo && need >= redo) ||
		 last_written == InvalidXLogRecPtr))
	{
		/*
		 * The log before the mark: a pg_replay_from past what a crash
		 * leaves of the WAL would let the slot, and the next replay, pass
		 * over records the restarted server writes below it.
		 */
		XLogFlush(need);
		strata_pgwal_write_replay_from(need);
		last_written = need;
	}

	slot = SearchNamedReplicationSlot(STRATA_SLOT_NAME, true);
	if (slot != NULL)
	{
		XLogRecPtr	restart;

		SpinLockAcquire(&slot->mutex);
		restart = slot->data.restart_lsn;
		SpinLockRelease(&slot->mutex);
		if (restart == last_written)
			return;
		ReplicationSlotAcquire(STRATA_SLOT_NAME, true);
	}
	else
	{
		ReplicationSlotCreate(STRATA_SLOT_NAME, false, RS_PERSISTENT, false);
		ereport(LOG,
				(errmsg("stratago: created replication slot \"%s\" to keep the WAL of strata memtables",
						STRATA_SLOT_NAME)));
	}

	if (MyReplicationSlot->data.restart_lsn != last_written)
	{
		SpinLockAcquire(&MyReplicationSlot->mutex);
		MyReplicationSlot->data.restart_lsn = last_written;
		SpinLockRelease(&MyReplicationSlot->mutex);
		ReplicationSlotMarkDirty();
		ReplicationSlotSave();
		ReplicationSlotsComputeRequiredLSN();
	}
	ReplicationSlotRelease();
}

/* ------------------------------------------------------------------------
 * The checkpoint guard (maintenance worker)
 * ------------------------------------------------------------------------
 *
 * A checkpoint must not complete while a memtable holds records from before
 * its redo point: a base backup started by that checkpoint would copy
 * engine files that need older WAL than the backup holds. PostgreSQL's own
 * means for "this WAL-logged work must be on disk before the checkpoint
 * completes" is DELAY_CHKPT_COMPLETE: after CheckPointGuts(), the
 * checkpointer waits for every transaction that has the flag set. The
 * maintenance worker keeps it set in a transaction of its own (worker.c)
 * and, each round, flushes what lies below the current redo point, then
 * ends that transaction and starts the next one with the flag set again.
 * A checkpoint waiting for the old one proceeds; one that begins later
 * waits for the new one.
 *
 * The window between the two transactions is a few microseconds, taken
 * only right after everything below the current redo point was flushed:
 * a checkpoint would have to begin and finish CheckPointGuts() inside it
 * to slip through. If it did, crash recovery is still whole (the slot),
 * and only a base backup started by that checkpoint could lack WAL, which
 * its restore reports with a FATAL.
 *
 * Standbys: restartpoints do not wait for the flag, so a base backup taken
 * from a standby has the race the guard closes on a primary.
 */

/* Whether the worker should hold checkpoints back (see above). */
bool
strata_checkpoint_guard_armed(void)
{
	return strata_wal_sink == STRATA_SINK_POSTGRES && strata_checkpoint_guard &&
		!RecoveryInProgress();
}

/*
 * Flush every memtable holding records from before the current redo point
 * and move retention past them; again if a checkpoint began meanwhile.
 *
 * A record is logged at or after the redo point current at the time, so
 * memtables can hold records from before the redo point only once it has
 * moved: while it stays where this last left it (the common case, every
 * 20 ms) there is nothing to look at.
 */
void
strata_checkpoint_guard_flush(void)
{
	static XLogRecPtr guarded_redo = InvalidXLogRecPtr;

	for (;;)
	{
		XLogRecPtr	redo = GetRedoRecPtr();

		if (redo == guarded_redo)
			return;
		strata_checkpoint_retain();	/* requests flushes of trees below redo */
		strata_flush_requested();
		strata_checkpoint_retain();	/* pg_replay_from and the slot move past them */
		guarded_redo = redo;
	}
}

