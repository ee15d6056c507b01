/*
 * am_scan.c — scans of a strata table: sequential scans (serial, parallel
 * by blocks of 291 row ids, and backward for scrollable cursors), TID
 * range scans, bitmap and TABLESAMPLE scans, and ANALYZE's block and
 * tuple callbacks, all over one scan descriptor (StrataScanDescData,
 * am_internal.h).
 *
 * Separate from am_fetch.c because a scan walks the tree in row-id order
 * through a tree scan instead of looking rows up one TID at a time;
 * bitmap and sample scans, which do fetch by TID, go through am_fetch.c's
 * fetch_row_version. Index builds (am_index_build.c) drive the same
 * descriptor with strata_scan_tree and the block helpers below.
 */
#include "postgres.h"

#include "access/relscan.h"
#include "access/tableam.h"
#include "access/tsmapi.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/tidbitmap.h"
#include "pgstat.h"
#include "storage/predicate.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "pg/am_internal.h"
#include "pg/read.h"
#include "pg/rowversion.h"
#include "pg/tree.h"

/* ------------------------------------------------------------------------
 * Scans
 * ------------------------------------------------------------------------
 */
TableScanDesc
strata_scan_begin(Relation rel, Snapshot snapshot, int nkeys,
				  struct ScanKeyData *key, ParallelTableScanDesc pscan,
				  uint32 flags)
{
	StrataScanDesc scan;
	MemoryContext scancxt;


	/*
	 * Callers may begin a scan in a per-tuple context that they reset
	 * between rows (ALTER TABLE's constraint checks do): keep the scan's
	 * memory in a context of its own that lives until scan_end, or until
	 * the transaction ends if an error skips scan_end.
	 */
	scancxt = AllocSetContextCreate(TopTransactionContext, "strata scan",
									ALLOCSET_DEFAULT_SIZES);
	scan = MemoryContextAllocZero(scancxt, sizeof(StrataScanDescData));
	scan->scancxt = scancxt;
	scan->base.rs_rd = rel;
	scan->base.rs_snapshot = snapshot;
	scan->base.rs_nkeys = nkeys;
	scan->base.rs_key = key;
	scan->base.rs_flags = flags;
	scan->base.rs_parallel = pscan;
	scan->tree = strata_tree_get(rel);
	scan->by_block = (pscan != NULL) || (flags & SO_TYPE_ANALYZE);
	/* with SO_TEMP_SNAPSHOT the caller registered it; scan_end unregisters */
	if (flags & SO_TYPE_SEQSCAN)
	{
		pgstat_count_heap_scan(rel);
		/* a sequential scan reads the whole relation, as heap's does */
		if (snapshot != NULL && IsMVCCSnapshot(snapshot))
			PredicateLockRelation(rel, snapshot);
	}
	return (TableScanDesc) scan;
}

void
strata_scan_end(TableScanDesc sscan)
{
	StrataScanDesc scan = (StrataScanDesc) sscan;

	if (scan->tscan)
		strata_tree_scan_end(scan->tscan);
	if (scan->fetcher)
		strata_row_fetcher_end(scan->fetcher);
	if (sscan->rs_flags & SO_TEMP_SNAPSHOT)
		UnregisterSnapshot(sscan->rs_snapshot);
	MemoryContextDelete(scan->scancxt);
}

void
strata_scan_rescan(TableScanDesc sscan, struct ScanKeyData *key, bool set_params,
				   bool allow_strat, bool allow_sync, bool allow_pagemode)
{
	StrataScanDesc scan = (StrataScanDesc) sscan;

	if (scan->tscan)
	{
		strata_tree_scan_end(scan->tscan);
		scan->tscan = NULL;
	}
	scan->block_open = false;
	scan->sample_started = false;
	scan->range_open = false;
	scan->pos = SCAN_POS_NONE;
	scan->reseek = false;
	scan->back_n = 0;
	scan->back_window = 0;
}

/* Open the tree scan lazily, so a scan that never reads pins nothing. */
StrataTreeScan *
strata_scan_tree(StrataScanDesc scan)
{
	if (scan->tscan == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(scan->scancxt);

		/* index builds judge older versions against other backends' snapshots */
		scan->tscan = strata_tree_scan_begin(scan->base.rs_rd, scan->tree,
											 scan->base.rs_snapshot == SnapshotAny);
		MemoryContextSwitchTo(old);
	}
	return scan->tscan;
}

/* Position on block blkno: rows with ids in [blkno * 291, (blkno + 1) * 291). */
void
strata_scan_open_block(StrataScanDesc scan, BlockNumber blkno)
{
	strata_tree_scan_seek(strata_scan_tree(scan), (uint64) blkno * STRATA_ROWS_PER_BLOCK);
	scan->block_end = ((uint64) blkno + 1) * STRATA_ROWS_PER_BLOCK;
	scan->block_open = true;
}

/*
 * Parallel scans: the participants take chunks of consecutive blocks from
 * the shared counter of heap's parallel scan state (phs_nallocated), as
 * heap's do, but larger: heap's next page is a buffer read, while opening
 * a chunk here seeks every sorted run of the tree, which costs what
 * stepping over dozens of rows does, and a chunk of one block (what
 * heap's rule gives a table of a few thousand blocks) cost a parallel scan
 * more than its workers saved. Chunks shrink towards the end, so that the
 * participants finish together.
 */
#define STRATA_PARALLEL_CHUNK_MAX_BLOCKS 64	/* 18,624 row ids */

bool
strata_scan_open_next_parallel_chunk(StrataScanDesc scan)
{
	ParallelBlockTableScanDesc pbscan = (ParallelBlockTableScanDesc) scan->base.rs_parallel;
	uint64		nblocks = pbscan->phs_nblocks;
	uint64		start = pg_atomic_read_u64(&pbscan->phs_nallocated);
	uint64		chunk;

	for (;;)
	{
		if (start >= nblocks)
			return false;
		chunk = Min(STRATA_PARALLEL_CHUNK_MAX_BLOCKS, Max((nblocks - start) / 16, 1));
		if (pg_atomic_compare_exchange_u64(&pbscan->phs_nallocated, &start, start + chunk))
			break;
	}
	strata_tree_scan_seek(strata_scan_tree(scan), start * STRATA_ROWS_PER_BLOCK);
	scan->block_end = (start + chunk) * STRATA_ROWS_PER_BLOCK;
	scan->block_open = true;
	return true;
}

/*
 * Next row the scan's snapshot sees, within the open block when reading
 * block by block. Returns false at the end (of the table or the block).
 */
static bool
scan_next_visible(StrataScanDesc scan, TupleTableSlot *slot, bool within_block,
				  double *deadrows)
{
	/*
	 * ANALYZE passes no snapshot: it samples what is committed or ours,
	 * counting an in-progress change by another backend as not yet made,
	 * as heap's HeapTupleSatisfiesVacuum classification does.
	 */
	Snapshot	snapshot = scan->base.rs_snapshot ? scan->base.rs_snapshot : SnapshotSelf;
	uint64		rowid;
	StrataVersion *versions;
	int			n;

	while (strata_tree_scan_next(strata_scan_tree(scan), &rowid, &versions, &n))
	{
		StrataResolved r;
		ItemPointerData tid;

		if (within_block && rowid >= scan->block_end)
		{
			/* a later block's row: the seek that opens that block keeps it */
			strata_tree_scan_unread(strata_scan_tree(scan));
			scan->block_open = false;
			return false;
		}
		CHECK_FOR_INTERRUPTS();
		r = strata_resolve(versions, n, snapshot);
		if (deadrows)
			*deadrows += n - (r.visible ? 1 : 0);
		strata_ssi_read(scan->base.rs_rd, versions, n, r, NULL, snapshot);
		if (!r.visible)
			continue;
		strata_rowid_to_tid(rowid, &tid);
		strata_store_version(scan->base.rs_rd, &versions[r.index], &tid, slot);
		scan->pos = SCAN_POS_ON;
		scan->pos_rowid = rowid;
		return true;
	}
	scan->block_open = false;
	scan->pos = SCAN_POS_NONE;
	scan->reseek = true;

	/*
	 * At the end of the tree, give back its memtable pins and open files
	 * now rather than at scan_end: an Append over a thousand partitions
	 * ends each scan only when the whole query ends, and holding every
	 * partition's SSTables open at once ran out of file descriptors. A
	 * later step (rescan, a parallel chunk, a backward fetch) opens the
	 * tree again, which an MVCC snapshot reads the same.
	 */
	if (scan->tscan != NULL)
	{
		StrataTreeScan *tscan = scan->tscan;

		scan->tscan = NULL;
		strata_tree_scan_end(tscan);
	}
	return false;
}

/*
 * Before a forward step of a serial scan: continue after the current
 * position if the tree scan moved away from it (a backward step, or an
 * end reached). lo is where the scan starts.
 */
static void
scan_resume_forward(StrataScanDesc scan, uint64 lo)
{
	scan->back_n = 0;
	scan->back_window = 0;
	if (!scan->reseek)
		return;
	scan->reseek = false;
	strata_tree_scan_seek(strata_scan_tree(scan),
						  scan->pos == SCAN_POS_ON ? scan->pos_rowid + 1 : lo);
}

/*
 * One step backward (scrollable cursors: FETCH BACKWARD, FETCH LAST) over
 * row ids [lo, hi). The engine's iterators only move forward, so a step
 * collects the visible row ids of a window below the current position and
 * hands them out from the top down; each new window is twice as wide as
 * the last, so that a whole backward pass reads O(rows), and an empty
 * stretch of row ids is crossed in few seeks. The row itself is then read
 * again through the forward path: the scan's MVCC snapshot sees it still.
 */
static bool
scan_step_back(StrataScanDesc scan, TupleTableSlot *slot, uint64 lo, uint64 hi)
{
	Snapshot	snapshot = scan->base.rs_snapshot ? scan->base.rs_snapshot : SnapshotSelf;
	uint64		target;

	if (scan->pos == SCAN_POS_ON)
		hi = Min(hi, scan->pos_rowid);
	while (scan->back_n == 0)
	{
		uint64		wlo;
		uint64		rowid;
		StrataVersion *versions;
		int			n;

		if (hi <= lo)
		{
			scan->pos = SCAN_POS_NONE;
			scan->reseek = true;
			ExecClearTuple(slot);
			return false;
		}
		scan->back_window = scan->back_window == 0 ? 64 : Min(scan->back_window * 2, 1 << 20);
		wlo = hi - lo > scan->back_window ? hi - scan->back_window : lo;
		strata_tree_scan_seek(strata_scan_tree(scan), wlo);
		while (strata_tree_scan_next(strata_scan_tree(scan), &rowid, &versions, &n) && rowid < hi)
		{
			CHECK_FOR_INTERRUPTS();
			if (!strata_resolve(versions, n, snapshot).visible)
				continue;
			if (scan->back_n == scan->back_cap)
			{
				scan->back_cap = scan->back_cap == 0 ? 64 : scan->back_cap * 2;
				scan->back_rows = scan->back_rows == NULL
					? MemoryContextAlloc(scan->scancxt, sizeof(uint64) * scan->back_cap)
					: repalloc(scan->back_rows, sizeof(uint64) * scan->back_cap);
			}
			scan->back_rows[scan->back_n++] = rowid;
		}
		hi = wlo;
	}
	target = scan->back_rows[--scan->back_n];
	strata_tree_scan_seek(strata_scan_tree(scan), target);
	scan->reseek = true;
	if (!scan_next_visible(scan, slot, false, NULL) || scan->pos_rowid != target)
		elog(ERROR, "strata row " UINT64_FORMAT " vanished from a backward scan", target);
	return true;
}

bool
strata_scan_getnextslot(TableScanDesc sscan, ScanDirection direction,
						TupleTableSlot *slot)
{
	StrataScanDesc scan = (StrataScanDesc) sscan;

	if (ScanDirectionIsBackward(direction))
	{
		/* parallel scans are never scrollable */
		Assert(sscan->rs_parallel == NULL);
		if (!scan_step_back(scan, slot, 0, scan->tree->next_rowid))
			return false;
		pgstat_count_heap_getnext(sscan->rs_rd);
		return true;
	}

	if (sscan->rs_parallel == NULL)
	{
		scan_resume_forward(scan, 0);
		if (scan_next_visible(scan, slot, false, NULL))
		{
			pgstat_count_heap_getnext(sscan->rs_rd);
			return true;
		}
		ExecClearTuple(slot);
		return false;
	}

	for (;;)
	{
		if (!scan->block_open && !strata_scan_open_next_parallel_chunk(scan))
		{
			ExecClearTuple(slot);
			return false;
		}
		if (scan_next_visible(scan, slot, true, NULL))
		{
			pgstat_count_heap_getnext(sscan->rs_rd);
			return true;
		}
	}
}

/* Clamp a TID to the row ids it bounds (offsets past 291 round up or down). */
static uint64
tid_bound_rowid(ItemPointer tid, bool upper)
{
	uint64		blk = ItemPointerGetBlockNumberNoCheck(tid);
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);

	if (off == 0)
		return upper ? (blk == 0 ? 0 : blk * STRATA_ROWS_PER_BLOCK - 1) : blk * STRATA_ROWS_PER_BLOCK;
	if (off > STRATA_ROWS_PER_BLOCK)
		return upper ? blk * STRATA_ROWS_PER_BLOCK + STRATA_ROWS_PER_BLOCK - 1
			: (blk + 1) * STRATA_ROWS_PER_BLOCK;
	return blk * STRATA_ROWS_PER_BLOCK + off - 1;
}

void
strata_scan_set_tidrange(TableScanDesc sscan, ItemPointer mintid,
						 ItemPointer maxtid)
{
	StrataScanDesc scan = (StrataScanDesc) sscan;

	scan->range_min = tid_bound_rowid(mintid, false);
	scan->range_max = tid_bound_rowid(maxtid, true);
	if (ItemPointerGetOffsetNumberNoCheck(maxtid) == 0 &&
		ItemPointerGetBlockNumberNoCheck(maxtid) == 0)
		scan->range_max = 0, scan->range_min = 1;	/* empty */
	scan->range_open = false;
}

bool
strata_scan_getnextslot_tidrange(TableScanDesc sscan, ScanDirection direction,
								 TupleTableSlot *slot)
{
	StrataScanDesc scan = (StrataScanDesc) sscan;

	if (scan->range_min > scan->range_max)
	{
		ExecClearTuple(slot);
		return false;
	}
	if (!scan->range_open)
	{
		strata_tree_scan_seek(strata_scan_tree(scan), scan->range_min);
		scan->block_end = scan->range_max + 1;
		scan->range_open = true;
		scan->pos = SCAN_POS_NONE;
		scan->reseek = false;
		scan->back_n = 0;
	}
	if (ScanDirectionIsBackward(direction))
		return scan_step_back(scan, slot, scan->range_min,
							  Min(scan->range_max + 1, scan->tree->next_rowid));
	scan_resume_forward(scan, scan->range_min);
	if (scan_next_visible(scan, slot, true, NULL))
		return true;
	scan->pos = SCAN_POS_NONE;
	scan->reseek = true;
	ExecClearTuple(slot);
	return false;
}

Size
strata_parallelscan_estimate(Relation rel)
{
	return table_block_parallelscan_estimate(rel);
}

Size
strata_parallelscan_initialize(Relation rel, ParallelTableScanDesc pscan)
{
	return table_block_parallelscan_initialize(rel, pscan);
}

void
strata_parallelscan_reinitialize(Relation rel, ParallelTableScanDesc pscan)
{
	table_block_parallelscan_reinitialize(rel, pscan);
}

/* ------------------------------------------------------------------------
 * Bitmap and sample scans
 * ------------------------------------------------------------------------
 */
/* Fetch one TID for a bitmap or sample scan, its versions in a reset context. */
static bool
scan_fetch_tid(StrataScanDesc scan, ItemPointer tid, TupleTableSlot *slot)
{
	MemoryContext old;
	bool		found;

	CHECK_FOR_INTERRUPTS();
	if (scan->fetchcxt == NULL)
	{
		scan->fetchcxt = AllocSetContextCreate(scan->scancxt, "strata fetch",
											   ALLOCSET_SMALL_SIZES);
		old = MemoryContextSwitchTo(scan->scancxt);
		scan->fetcher = strata_row_fetcher_begin(scan->base.rs_rd, scan->tree);
		MemoryContextSwitchTo(old);
	}
	MemoryContextReset(scan->fetchcxt);
	old = MemoryContextSwitchTo(scan->fetchcxt);
	found = strata_fetch_row_version(scan->base.rs_rd, scan->fetcher, tid,
									 scan->base.rs_snapshot, slot);
	MemoryContextSwitchTo(old);
	return found;
}

/*
 * Bitmap heap scans: each "block" is 291 row ids; exact bitmaps name the
 * offsets, lossy ones (ntuples < 0) mean every row of the block.
 *
 * A block whose offsets are dense (or lossy) is read the way a sequential
 * scan reads it: the tree scan seeks to its first offset once and steps
 * through the row ids up to the last, resolving only the rows the bitmap
 * names. A fetch per TID costs a lookup each, about twice a step, and a
 * range scan of 10,000 rows by key spent most of its time there. Sparse
 * blocks keep the fetch by TID, which does not read the rows in between,
 * and so do blocks of a few rows: the walk's seek, and opening the tree
 * scan (every memtable and SSTable of the tree) for a scan's first block,
 * cost more than their lookups. TPC-B's UPDATE of one teller or branch
 * by key is planned as a bitmap heap scan of one row, and walking it was
 * 9% of strata's TPC-B rate against fetching it (an index scan's way).
 *
 * The tree scan reads what the fetcher reads for an MVCC snapshot outside
 * SERIALIZABLE (read.c); other snapshots, and SERIALIZABLE's rw-conflict
 * checks against versions written since, keep fetching afresh.
 */
#define STRATA_BITMAP_WALK_MIN_ROWS 4

static bool
bitmap_block_is_dense(TableScanDesc sscan, struct TBMIterateResult *tbmres)
{
	int			span;

	if (sscan->rs_snapshot == NULL ||
		sscan->rs_snapshot->snapshot_type != SNAPSHOT_MVCC || IsolationIsSerializable())
		return false;
	if (tbmres->ntuples < 0)
		return true;
	if (tbmres->ntuples < STRATA_BITMAP_WALK_MIN_ROWS || tbmres->offsets[0] < 1)
		return false;
	span = tbmres->offsets[tbmres->ntuples - 1] - tbmres->offsets[0] + 1;
	/* a step skips a row for about half what a fetch costs */
	return tbmres->ntuples * 2 >= span;
}

bool
strata_scan_bitmap_next_block(TableScanDesc sscan, struct TBMIterateResult *tbmres)
{
	StrataScanDesc scan = (StrataScanDesc) sscan;
	uint64		first = (uint64) tbmres->blockno * STRATA_ROWS_PER_BLOCK;

	scan->bm_block = tbmres->blockno;
	scan->bm_index = 0;
	if (first >= scan->tree->next_rowid)
		return false;
	scan->bm_walk = bitmap_block_is_dense(sscan, tbmres);
	if (scan->bm_walk)
	{
		/* offsets are 1-based and ascending */
		if (tbmres->ntuples > 0)
			first += tbmres->offsets[0] - 1;

		/*
		 * The walk of an earlier block that stepped past its end gave back
		 * the row it stopped on: a block after it (bitmaps come in block
		 * order) whose first offset is at or before that row starts there
		 * without a move (read.h).
		 */
		strata_tree_scan_seek(strata_scan_tree(scan), first);
	}
	return true;
}

/* The next row of a dense block the bitmap names and the snapshot sees. */
static bool
bitmap_walk_next(StrataScanDesc scan, struct TBMIterateResult *tbmres,
				 TupleTableSlot *slot)
{
	Snapshot	snapshot = scan->base.rs_snapshot;
	uint64		block_start = (uint64) scan->bm_block * STRATA_ROWS_PER_BLOCK;
	uint64		rowid;
	StrataVersion *versions;
	int			n;

	if (tbmres->ntuples >= 0 && scan->bm_index >= tbmres->ntuples)
		return false;
	for (;;)
	{
		OffsetNumber off;
		StrataResolved r;
		ItemPointerData tid;

		if (!strata_tree_scan_next(strata_scan_tree(scan), &rowid, &versions, &n))
			break;
		if (rowid >= block_start + STRATA_ROWS_PER_BLOCK)
		{
			strata_tree_scan_unread(strata_scan_tree(scan));
			break;
		}
		CHECK_FOR_INTERRUPTS();
		off = (OffsetNumber) (rowid - block_start + 1);
		if (tbmres->ntuples >= 0)
		{
			while (scan->bm_index < tbmres->ntuples &&
				   tbmres->offsets[scan->bm_index] < off)
				scan->bm_index++;
			if (scan->bm_index >= tbmres->ntuples)
				break;
			if (tbmres->offsets[scan->bm_index] != off)
				continue;
			scan->bm_index++;
		}
		r = strata_resolve(versions, n, snapshot);
		ItemPointerSet(&tid, scan->bm_block, off);
		strata_ssi_read(scan->base.rs_rd, versions, n, r, &tid, snapshot);
		if (!r.visible)
			continue;
		strata_store_version(scan->base.rs_rd, &versions[r.index], &tid, slot);
		return true;
	}
	/* the tree scan stands in the next block or beyond: the next block seeks */
	if (tbmres->ntuples >= 0)
		scan->bm_index = tbmres->ntuples;
	return false;
}

bool
strata_scan_bitmap_next_tuple(TableScanDesc sscan, struct TBMIterateResult *tbmres,
							  TupleTableSlot *slot)
{
	StrataScanDesc scan = (StrataScanDesc) sscan;
	int			noffsets = tbmres->ntuples >= 0 ? tbmres->ntuples : STRATA_ROWS_PER_BLOCK;

	if (scan->bm_walk)
	{
		if (!bitmap_walk_next(scan, tbmres, slot))
			return false;
		pgstat_count_heap_fetch(sscan->rs_rd);
		return true;
	}
	while (scan->bm_index < noffsets)
	{
		OffsetNumber off = tbmres->ntuples >= 0 ? tbmres->offsets[scan->bm_index]
			: (OffsetNumber) (scan->bm_index + 1);
		ItemPointerData tid;

		scan->bm_index++;
		if (off < 1 || off > STRATA_ROWS_PER_BLOCK)
			continue;
		ItemPointerSet(&tid, scan->bm_block, off);
		if (scan_fetch_tid(scan, &tid, slot))
		{
			pgstat_count_heap_fetch(sscan->rs_rd);
			return true;
		}
	}
	return false;
}

/*
 * TABLESAMPLE: the sampling method picks "blocks" (291 row ids each, as
 * relation_size counts them) and offsets within them, as it does on heap.
 */
bool
strata_scan_sample_next_block(TableScanDesc sscan, struct SampleScanState *scanstate)
{
	StrataScanDesc scan = (StrataScanDesc) sscan;
	TsmRoutine *tsm = scanstate->tsmroutine;
	BlockNumber nblocks = (BlockNumber) strata_tree_nblocks(scan->tree);
	BlockNumber blockno;

	if (nblocks == 0)
		return false;
	if (tsm->NextSampleBlock)
		blockno = tsm->NextSampleBlock(scanstate, nblocks);
	else if (!scan->sample_started)
		blockno = 0;
	else
		blockno = (scan->bm_block + 1 < nblocks) ? scan->bm_block + 1 : InvalidBlockNumber;
	scan->sample_started = true;
	if (!BlockNumberIsValid(blockno))
		return false;
	scan->bm_block = blockno;
	return true;
}

bool
strata_scan_sample_next_tuple(TableScanDesc sscan, struct SampleScanState *scanstate,
							  TupleTableSlot *slot)
{
	StrataScanDesc scan = (StrataScanDesc) sscan;
	TsmRoutine *tsm = scanstate->tsmroutine;

	for (;;)
	{
		OffsetNumber off = tsm->NextSampleTuple(scanstate, scan->bm_block,
												STRATA_ROWS_PER_BLOCK);
		ItemPointerData tid;

		if (!OffsetNumberIsValid(off))
		{
			ExecClearTuple(slot);
			return false;
		}
		ItemPointerSet(&tid, scan->bm_block, off);
		if (scan_fetch_tid(scan, &tid, slot))
		{
			pgstat_count_heap_getnext(sscan->rs_rd);
			return true;
		}
	}
}

/* ------------------------------------------------------------------------
 * ANALYZE
 * ------------------------------------------------------------------------
 */
/*
 * ANALYZE samples "blocks" of 291 row ids, numbered as relation_size
 * counts them.
 */
bool
strata_scan_analyze_next_block(TableScanDesc sscan, BlockNumber blockno,
							   BufferAccessStrategy bstrategy)
{
	strata_scan_open_block((StrataScanDesc) sscan, blockno);
	return true;
}

bool
strata_scan_analyze_next_tuple(TableScanDesc sscan, TransactionId OldestXmin,
							   double *liverows, double *deadrows,
							   TupleTableSlot *slot)
{
	StrataScanDesc scan = (StrataScanDesc) sscan;

	if (!scan->block_open)
		return false;
	if (scan_next_visible(scan, slot, true, deadrows))
	{
		*liverows += 1;
		return true;
	}
	return false;
}
