/*
 * write.c — the write path of a tree (write.h): a row version goes to the
 * tree's log (the engine WAL or PostgreSQL's WAL, by stratago.wal_sink),
 * then into its active memtable, both under the tree lock so that log
 * order is sequence order; writers wait, bounded, when memory or level 0
 * is full; a new tree is logged for redo; VACUUM's engine tombstones; the
 * copy of a tree's rows for rewrites.
 */
#include "postgres.h"

#include "access/xact.h"
#include "common/pg_prng.h"
#include "engine/wal/batch.h"
#include "pg/enginewal.h"
#include "pg/error.h"
#include "pg/flush.h"
#include "pg/pgwal.h"
#include "pg/read.h"
#include "pg/rowversion.h"
#include "pg/stratago.h"
#include "pg/tree.h"
#include "pg/treeopts.h"
#include "pg/wakeup.h"
#include "pg/write.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "utils/memutils.h"

/*
 * Storage for a new relfilenode: any tree left under the same relfilenode
 * is stale (PostgreSQL just checked the number is free) and is removed
 * first; then a fresh tree id, a durable directory and a registry entry.
 * With stratago.wal_sink = postgres the creation of a permanent or
 * unlogged tree is WAL-logged, so that standbys and redo create the same
 * tree (an unlogged one stays empty there: its rows are never logged).
 */
StrataTree *
strata_tree_create(const RelFileNode *rnode, BackendId backend, char persistence)
{
	StrataTree *tree;
	uint64		tree_id;

	do
		tree_id = pg_prng_uint64(&pg_global_prng_state);
	while (tree_id == 0);

	tree = strata_tree_create_with_id(rnode, backend, persistence, tree_id);
	if (strata_wal_sink == STRATA_SINK_POSTGRES && persistence != RELPERSISTENCE_TEMP)
		strata_pgwal_log_create(rnode, tree_id);
	return tree;
}

/*
 * Make codec rel's bottom-level codec (tree is rel's): kept durably in the
 * tree's OPTIONS file, which crash recovery reads, then logged when the
 * table is WAL-logged in PostgreSQL's WAL (standbys, PITR). In this order
 * a failure to write the file (an ERROR) logs nothing a standby would
 * apply; the record, once inserted, cannot fail.
 */
void
strata_tree_set_bottom_codec(Relation rel, StrataTree *tree, StrataTreeCodec codec)
{
	if (tree->bottom_codec == codec)
		return;
	strata_tree_options_store(tree, codec, ERROR);
	if (RelationNeedsWAL(rel) && strata_wal_sink == STRATA_SINK_POSTGRES)
		strata_pgwal_log_options(&tree->key.node, tree->tree_id, codec);
}

static void append_entries(Relation rel, StrataTree *tree, const uint64 *rowids,
						   StringInfo *versions, int n);

/*
 * Copy every engine version of src into dst, verbatim (writers, command
 * ids and flags), except rows skip() says to leave out: table rewrites
 * (SET TABLESPACE, VACUUM FULL, CLUSTER) keep MVCC exactly as it was, as
 * heap's page copies do. Row ids (and so TIDs, also those MOVED versions
 * point to) stay, or go through remap (CLUSTER's new order) when given.
 * A row's versions are appended oldest first so that they keep their
 * order. *oldest gets the oldest writer of an unfrozen version copied
 * (invalid: none). REQUIRES: nobody writes src (the caller holds
 * AccessExclusiveLock).
 */
void
strata_tree_copy(Relation src_rel, StrataTree *src, Relation dst_rel, StrataTree *dst,
				 bool (*skip) (void *arg, uint64 rowid, const StrataVersion *versions, int n),
				 uint64 (*remap) (void *arg, uint64 rowid),
				 void *arg, FullTransactionId *oldest)
{
	StrataTreeScan *scan = strata_tree_scan_begin(src_rel, src, true);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "strata copy",
											  ALLOCSET_DEFAULT_SIZES);
	const int	batch = 1000;
	uint64	   *rowids = palloc(sizeof(uint64) * batch);
	StringInfo *values = palloc(sizeof(StringInfo) * batch);
	int			nbatch = 0;
	uint64		min = 0;
	uint64		rowid;
	StrataVersion *versions;
	int			n;

	for (int i = 0; i < batch; i++)
		values[i] = NULL;
	while (strata_tree_scan_next(scan, &rowid, &versions, &n))
	{
		CHECK_FOR_INTERRUPTS();
		if (skip != NULL && skip(arg, rowid, versions, n))
			continue;
		for (int i = n - 1; i >= 0; i--)
		{
			const StrataVersion *v = &versions[i];
			MemoryContext old = MemoryContextSwitchTo(cxt);
			StringInfo	buf = makeStringInfo();
			MinimalTuple tup = NULL;
			ItemPointerData moved_to = v->moved_to;
			uint64		target;

			if (v->kind == STRATA_DATA)
				tup = strata_version_minimal_tuple(v);	/* stored unaligned */
			if (v->kind == STRATA_MOVED && remap != NULL &&
				strata_tid_to_rowid(&moved_to, &target))
				strata_rowid_to_tid(remap(arg, target), &moved_to);
			strata_version_encode(buf, v->kind, v->writer, v->cid, v->flags, tup,
								  &moved_to, v->lock_mode);
			MemoryContextSwitchTo(old);
			if (!(v->flags & STRATA_VF_FROZEN) &&
				(min == 0 || U64FromFullTransactionId(v->writer) < min))
				min = U64FromFullTransactionId(v->writer);
			rowids[nbatch] = remap != NULL ? remap(arg, rowid) : rowid;
			values[nbatch++] = buf;
			if (nbatch == batch)
			{
				append_entries(dst_rel, dst, rowids, values, nbatch);
				nbatch = 0;
				MemoryContextReset(cxt);
			}
		}
	}
	if (nbatch > 0)
		append_entries(dst_rel, dst, rowids, values, nbatch);
	strata_tree_scan_end(scan);
	MemoryContextDelete(cxt);
	pfree(rowids);
	pfree(values);

	/* row ids handed out in src are never handed out again in dst */
	LWLockAcquire(&dst->lock, LW_EXCLUSIVE);
	if (src->next_rowid > dst->next_rowid)
		dst->next_rowid = src->next_rowid;
	LWLockRelease(&dst->lock);
	*oldest = FullTransactionIdFromU64(min);
}

/*
 * Before the first version of an unlogged tree enters a memtable: a
 * durable marker saying that the tree holds rows no file does. The worker
 * removes it at a clean shutdown once everything is flushed
 * (strata_flush_unlogged_at_shutdown); found at the next start, it means
 * rows were lost (register_tree_dirs). Once per tree per server run.
 * REQUIRES: tree lock held exclusively, so a shutdown flush that finds the
 * memtables empty and removes the marker cannot miss a write.
 */
static void
mark_unflushed(StrataTree *tree)
{
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];
	int			fd;

	strata_tree_dir(tree, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, STRATA_UNFLUSHED_MARKER);
	fd = OpenTransientFile(path, O_CREAT | O_WRONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", path)));
	CloseTransientFile(fd);
	fsync_fname(dir, true);
	tree->unflushed_marked = true;
}

/*
 * Append versions of n rows (rowids[i] gets versions[i]) as one WAL record
 * and into the memtable, both under the tree lock so that WAL order and
 * sequence order agree. COPY uses this to write a whole buffer at once.
 * Unlogged and temporary trees write no WAL: only the memtable.
 */
/*
 * The batch writes encode into, kept from one write to the next: COPY
 * writes a thousand rows a call, and a batch freed after every call let
 * malloc hand its few hundred kilobytes back to the kernel and fault them
 * in again on the next call (page faults and the TLB shootdowns of the
 * trimming were a quarter of COPY's time). A batch that grew past
 * STRATA_KEPT_BATCH_BYTES (a huge row) is freed after use all the same.
 */
#define STRATA_KEPT_BATCH_BYTES (4 * 1024 * 1024)

static sg_batch kept_batch;
static bool kept_batch_ready = false;

static void
append_entries(Relation rel, StrataTree *tree, const uint64 *rowids,
			   StringInfo *versions, int n)
{
	char	   *keys = palloc(STRATA_ROWID_KEY_LEN * n);
	sg_batch   *batch = &kept_batch;
	sg_memtable mt;
	sg_err		err = {0};
	sg_code		rc = SG_OK;
	uint64		seq;
	uint64		end_lsn;
	int			added;
	TimestampTz wait_start;

	/*
	 * The engine WAL holds xids PostgreSQL's WAL may never see (pgwal.c,
	 * strata_reserve_xid); engine tombstones (versions == NULL) carry none.
	 */
	if (versions != NULL && strata_wal_sink == STRATA_SINK_ENGINE)
		strata_reserve_xid(GetCurrentFullTransactionId());

	if (!kept_batch_ready)
	{
		sg_batch_init(batch);
		kept_batch_ready = true;
	}
	/* whatever an earlier write that failed half way left in it goes */
	sg_batch_clear(batch);
	for (int i = 0; i < n; i++)
	{
		sg_slice	key = sg_slice_make(keys + i * STRATA_ROWID_KEY_LEN, STRATA_ROWID_KEY_LEN);

		sg_encode_be64(keys + i * STRATA_ROWID_KEY_LEN, rowids[i]);
		if ((versions != NULL
			 ? sg_batch_put(batch, key, sg_slice_make(versions[i]->data, versions[i]->len))
			 : sg_batch_delete(batch, key)) != SG_OK)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}

	wait_start = 0;
	for (;;)
	{
		/*
		 * Writers slow down rather than fail: with the shared arena nearly
		 * full, too many frozen memtables or too many level-0 SSTables,
		 * wait for the worker to flush and compact. But not for ever when
		 * flushes keep failing (a full disk): then the failure is raised.
		 */
		if ((strata_shared->arena_free >= STRATA_ARENA_RESERVE_CHUNKS &&
			 tree->l0_files < STRATA_L0_STOP_FILES) ||
			!strata_worker_running())
		{
			LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
			if (strata_ensure_active_memtable(tree))
				break;
			LWLockRelease(&tree->lock);
		}
		/*
		 * Still prepared to sleep on the condition variable here: a cancel
		 * would make the next sleep return at once (a busy loop).
		 */
		if (wait_start == 0)
			wait_start = GetCurrentTimestamp();
		else
			strata_check_flush_failing(wait_start);
		strata_worker_wake();
		ConditionVariableTimedSleep(&strata_shared->flush_cv, 1000, PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}
	ConditionVariableCancelSleep();

	if (tree->persistence == RELPERSISTENCE_UNLOGGED && !tree->unflushed_marked)
		mark_unflushed(tree);

	seq = tree->next_seq;
	tree->next_seq += n;
	sg_batch_set_sequence(batch, seq);
	end_lsn = 0;
	if (!strata_tree_logged(tree))
		;						/* rows that die with a crash */
	else if (strata_wal_sink == STRATA_SINK_POSTGRES)
	{
		XLogRecPtr	start;

		/* PostgreSQL's commit flush makes it durable: nothing to wait for */
		end_lsn = strata_pgwal_log_rows(tree, sg_batch_contents(batch), &start);
		if (tree->active_pg_first == 0)
			tree->active_pg_first = start;
		tree->active_pg_last = end_lsn;
	}
	else
	{
		end_lsn = strata_wal_append_rows(tree, sg_batch_contents(batch));
		if (tree->active_min_lsn == 0)
			tree->active_min_lsn = end_lsn;
	}

	strata_memtable_attach(tree->active, &mt);
	for (added = 0; added < n; added++)
	{
		int			i = added;

		rc = sg_memtable_add(&mt, seq + i, versions != NULL ? SG_TYPE_PUT : SG_TYPE_DELETE,
							 sg_slice_make(keys + i * STRATA_ROWID_KEY_LEN, STRATA_ROWID_KEY_LEN),
							 versions != NULL ? sg_slice_make(versions[i]->data, versions[i]->len)
							 : sg_slice_make("", 0), &err);
		if (rc != SG_OK)
			break;
	}
	/* what the memtable holds, which its flush must write (flush.c) */
	tree->rows_written += added;
	tree->active_entries += added;
	LWLockRelease(&tree->lock);
	if (batch->rep.cap > STRATA_KEPT_BATCH_BYTES)
	{
		sg_batch_free(batch);
		kept_batch_ready = false;
	}
	pfree(keys);

	/*
	 * If the memtable refused a version, the WAL still holds it; the
	 * transaction aborts on this error, so replay will bring back only
	 * versions no snapshot can see.
	 */
	if (rc != SG_OK)
		strata_engine_error(rc, &err);
	if (end_lsn != 0 && strata_wal_sink == STRATA_SINK_ENGINE)
		strata_wal_note_write(end_lsn);
}

void
strata_tree_append_many(Relation rel, StrataTree *tree, const uint64 *rowids,
						StringInfo *versions, int n)
{
	append_entries(rel, tree, rowids, versions, n);
}

void
strata_tree_append(Relation rel, StrataTree *tree, uint64 rowid, StringInfo version)
{
	append_entries(rel, tree, &rowid, &version, 1);
}

/*
 * VACUUM reaps rows gone for every snapshot once their index entries are
 * removed: an engine tombstone hides every version of each (readers then
 * find no row id at all), and compaction drops them for good. The row ids
 * stay used (the files' high-water mark), so they are never handed out
 * again. Losing these tombstones in a crash costs nothing but a repeat.
 */
void
strata_tree_reap_rows(Relation rel, StrataTree *tree, const uint64 *rowids, int n)
{
	const int	batch = 1024;	/* bounded WAL records and memory */

	for (int i = 0; i < n; i += batch)
	{
		CHECK_FOR_INTERRUPTS();
		append_entries(rel, tree, rowids + i, NULL, Min(batch, n - i));
	}
}
