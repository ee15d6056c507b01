/*
 * am_index_build.c — index builds over a strata table:
 * index_build_range_scan (CREATE INDEX, REINDEX, parallel builds, the
 * build phase of CREATE INDEX CONCURRENTLY, amcheck's heapallindexed) and
 * index_validate_scan (the validation pass of CREATE INDEX CONCURRENTLY
 * and REINDEX CONCURRENTLY).
 *
 * Separate from the scans because a build does not just return what a
 * snapshot sees: it decides, row by row, which row data the index gets,
 * whether that row is alive or recently dead, and whether older versions
 * at the same TID make a broken chain. The walk itself uses am_scan.c's
 * scan descriptor.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "pgstat.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/tuplesort.h"

#include "pg/am_internal.h"
#include "pg/read.h"
#include "pg/rowversion.h"
#include "pg/tree.h"

/* ------------------------------------------------------------------------
 * Index builds
 * ------------------------------------------------------------------------
 */
/*
 * Feed every row to an index build: the newest row data of each row id,
 * alive unless a committed delete or move is not yet old enough to be
 * invisible to everyone (then "recently dead", indexed for old snapshots),
 * and skipped once no snapshot can see it. A row whose older same-TID
 * versions may still be visible makes a broken chain: the index then
 * carries indcheckxmin, so old snapshots do not use it, as heap does for
 * HOT chains.
 */
double
strata_index_build_range_scan(Relation rel, Relation index,
							  struct IndexInfo *indexInfo, bool allow_sync,
							  bool anyvisible, bool progress,
							  BlockNumber start_blockno, BlockNumber numblocks,
							  IndexBuildCallback callback,
							  void *callback_state, TableScanDesc sscan)
{
	EState	   *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	ExprState  *predicate;
	TransactionId oldest_xmin = GetOldestNonRemovableTransactionId(rel);
	bool		own_scan = (sscan == NULL);
	StrataScanDesc scan;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	double		reltuples = 0;
	uint64		rowid;
	StrataVersion *versions;
	int			n;
	bool		ranged = (numblocks != InvalidBlockNumber);

	Snapshot	mvcc = NULL;
	bool		unregister_mvcc = false;

	econtext->ecxt_scantuple = slot;
	predicate = ExecPrepareQual(indexInfo->ii_Predicate, estate);

	/*
	 * With ii_Concurrent (CREATE INDEX CONCURRENTLY's and REINDEX
	 * CONCURRENTLY's build phase, amcheck's heapallindexed) only the rows
	 * an MVCC snapshot sees are fed, each with the version that snapshot
	 * sees, as heap does. No broken-chain test is needed then: a
	 * concurrent build begins only after every transaction that could have
	 * changed the index's columns without a new TID (not knowing the
	 * index) has ended, so all versions a snapshot from now on can see at
	 * one TID agree on the index's columns (src/pg/README.md, "Index
	 * builds"); amcheck checks only indexes already valid.
	 *
	 * A parallel build's scan carries the snapshot its leader registered.
	 * Otherwise register our own, as heap does: GetTransactionSnapshot()
	 * returns a static snapshot that the next call (say, from an index
	 * expression running SQL) would overwrite under us.
	 */
	if (indexInfo->ii_Concurrent)
	{
		if (sscan != NULL)
			mvcc = sscan->rs_snapshot;
		else
		{
			mvcc = RegisterSnapshot(GetTransactionSnapshot());
			unregister_mvcc = true;
		}
	}
	if (own_scan)
		sscan = table_beginscan_strat(rel, mvcc ? mvcc : SnapshotAny, 0, NULL, true, allow_sync);
	scan = (StrataScanDesc) sscan;
	if (ranged)
	{
		strata_tree_scan_seek(strata_scan_tree(scan), (uint64) start_blockno * STRATA_ROWS_PER_BLOCK);
		scan->block_end = ((uint64) start_blockno + numblocks) * STRATA_ROWS_PER_BLOCK;
	}

	for (;;)
	{
		int			data = -1;
		bool		alive = true;
		int			newest = -1;
		ItemPointerData tid;

		/* the next row: of this range, of the parallel scan's blocks, or of all */
		if (sscan->rs_parallel != NULL && !ranged)
		{
			if (!scan->block_open && !strata_scan_open_next_parallel_chunk(scan))
				break;
			if (!strata_tree_scan_next(strata_scan_tree(scan), &rowid, &versions, &n))
			{
				scan->block_open = false;
				continue;
			}
			if (rowid >= scan->block_end)
			{
				/* a later block's row: the seek that opens that block keeps it */
				strata_tree_scan_unread(strata_scan_tree(scan));
				scan->block_open = false;
				continue;
			}
		}
		else
		{
			if (!strata_tree_scan_next(strata_scan_tree(scan), &rowid, &versions, &n))
				break;
			if (ranged && rowid >= scan->block_end)
				break;
		}
		CHECK_FOR_INTERRUPTS();

		if (mvcc != NULL)
		{
			StrataResolved r = strata_resolve(versions, n, mvcc);

			if (!r.visible)
				continue;
			MemoryContextReset(econtext->ecxt_per_tuple_memory);
			strata_rowid_to_tid(rowid, &tid);
			strata_store_version(rel, &versions[r.index], &tid, slot);
			reltuples += 1;
			if (predicate != NULL && !ExecQual(predicate, econtext))
				continue;
			FormIndexDatum(indexInfo, slot, estate, values, isnull);
			callback(index, &tid, values, isnull, true, callback_state);
			continue;
		}

		for (int i = 0; i < n; i++)
		{
			StrataWriterState ws = strata_writer_state(&versions[i]);

			if (versions[i].kind == STRATA_LOCK || ws == STRATA_WRITER_ABORTED)
				continue;
			if (newest < 0)
				newest = i;
			if (versions[i].kind == STRATA_DATA)
			{
				data = i;
				break;
			}
		}
		if (newest < 0 || data < 0)
			continue;			/* never committed, or nothing but a tombstone */
		if (newest != data)
		{
			/* deleted or moved: dead to all, or recently dead */
			const StrataVersion *gone = &versions[newest];
			StrataWriterState ws = strata_writer_state(gone);

			if (ws == STRATA_WRITER_COMMITTED &&
				((gone->flags & STRATA_VF_FROZEN) ||
				 TransactionIdPrecedes(XidFromFullTransactionId(gone->writer), oldest_xmin)))
				continue;
			alive = (ws == STRATA_WRITER_IN_PROGRESS);
		}
		/* an older version of this row that some snapshot may still see */
		for (int i = data + 1; i < n && !indexInfo->ii_BrokenHotChain; i++)
			if (versions[i].kind == STRATA_DATA &&
				strata_writer_state(&versions[i]) != STRATA_WRITER_ABORTED &&
				!TransactionIdPrecedes(XidFromFullTransactionId(versions[data].writer), oldest_xmin))
				indexInfo->ii_BrokenHotChain = true;

		MemoryContextReset(econtext->ecxt_per_tuple_memory);
		strata_rowid_to_tid(rowid, &tid);
		strata_store_version(rel, &versions[data], &tid, slot);
		if (alive)
			reltuples += 1;
		if (predicate != NULL && !ExecQual(predicate, econtext))
			continue;
		FormIndexDatum(indexInfo, slot, estate, values, isnull);
		callback(index, &tid, values, isnull, alive, callback_state);
	}

	/*
	 * A scan the caller passed in (a parallel build's, amcheck's) is ended
	 * here too: table_index_build_scan's callers leave that to the access
	 * method, as heap does it. Left open, it would keep the tree's
	 * memtables and SSTables pinned and, for a parallel CREATE INDEX
	 * CONCURRENTLY, its registered snapshot referenced.
	 */
	table_endscan(sscan);
	if (unregister_mvcc)
		UnregisterSnapshot(mvcc);
	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	indexInfo->ii_ExpressionsState = NIL;
	indexInfo->ii_PredicateState = NULL;
	return reltuples;
}

/*
 * The validation pass of CREATE INDEX CONCURRENTLY and REINDEX
 * CONCURRENTLY (validate_index): insert an entry for every row the
 * reference snapshot sees whose TID the index lacks.
 *
 * validate_index() hands us the TIDs the index holds, sorted (encoded as
 * int8). A strata TID names a row and row ids ascend with TIDs, so a
 * forward scan of the tree under the snapshot returns rows in TID order
 * and the two streams merge directly: heap's root-offset map for HOT
 * chains has no counterpart here, the TID is already the "root". A row
 * whose TID the index holds needs nothing even if a same-TID update came
 * after the build's snapshot: that update changed none of this index's
 * columns (RelationGetIndexAttrBitmap counts indexes that are not ready
 * yet, so update_changes() sees them), so the entry's key is still right.
 *
 * Inserts check uniqueness as heap's do (UNIQUE_CHECK_YES): the row was
 * written by a transaction that did not insert into this index, so no
 * one has checked it against the rows that did. btree then waits for
 * in-progress conflicting writers through SnapshotDirty and, on a real
 * duplicate, checks with SnapshotSelf that our row is still alive at its
 * TID before raising the error.
 */
void
strata_index_validate_scan(Relation table_rel, Relation index_rel,
						   struct IndexInfo *index_info, Snapshot snapshot,
						   struct ValidateIndexState *state)
{
	EState	   *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	TupleTableSlot *slot = table_slot_create(table_rel, NULL);
	ExprState  *predicate;
	TableScanDesc scan;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	BlockNumber previous_blkno = InvalidBlockNumber;

	/* the merge: the smallest index TID not yet passed */
	ItemPointerData indexcursor;
	bool		have_cursor = false;
	bool		tuplesort_empty = false;

	Assert(IsMVCCSnapshot(snapshot));

	econtext->ecxt_scantuple = slot;
	predicate = ExecPrepareQual(index_info->ii_Predicate, estate);

	/* no synchronized scan: the merge needs row ids from the first one up */
	scan = table_beginscan_strat(table_rel, snapshot, 0, NULL, true, false);
	pgstat_progress_update_param(PROGRESS_SCAN_BLOCKS_TOTAL,
								 strata_tree_nblocks(strata_tree_get(table_rel)));

	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		ItemPointerData tid = slot->tts_tid;

		CHECK_FOR_INTERRUPTS();
		state->htups += 1;

		if (ItemPointerGetBlockNumber(&tid) != previous_blkno)
		{
			previous_blkno = ItemPointerGetBlockNumber(&tid);
			pgstat_progress_update_param(PROGRESS_SCAN_BLOCKS_DONE, previous_blkno);
		}

		/* skip the index's TIDs below this row's (rows gone since, or moved) */
		while (!tuplesort_empty &&
			   (!have_cursor || ItemPointerCompare(&indexcursor, &tid) < 0))
		{
			Datum		ts_val;
			bool		ts_isnull;

			tuplesort_empty = !tuplesort_getdatum(state->tuplesort, true,
												  &ts_val, &ts_isnull, NULL);
			Assert(tuplesort_empty || !ts_isnull);
			if (!tuplesort_empty)
			{
				itemptr_decode(&indexcursor, DatumGetInt64(ts_val));
				have_cursor = true;
#ifndef USE_FLOAT8_BYVAL
				pfree(DatumGetPointer(ts_val));
#endif
			}
		}
		if (!tuplesort_empty && ItemPointerEquals(&indexcursor, &tid))
			continue;			/* the index has this row */

		MemoryContextReset(econtext->ecxt_per_tuple_memory);
		if (predicate != NULL && !ExecQual(predicate, econtext))
			continue;
		FormIndexDatum(index_info, slot, estate, values, isnull);
		index_insert(index_rel, values, isnull, &tid, table_rel,
					 index_info->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
					 false, index_info);
		state->tups_inserted += 1;
	}

	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);

	/* as heap does: these point into the EState just freed */
	index_info->ii_ExpressionsState = NIL;
	index_info->ii_PredicateState = NULL;
}
