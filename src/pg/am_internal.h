/*
 * am_internal.h — what the files of the strata table access method share:
 * tableam.c, which wires the TableAmRoutine together, and the am_*.c files
 * that implement its callbacks, one family each. Private to those files:
 * the rest of the glue knows the access method only through stratago.h.
 *
 * Calls go one way, from the later files in this list to the earlier
 * ones, never back:
 *
 *   am_fetch.c        row helpers, index fetches, single-row reads
 *   am_scan.c         uses am_fetch.c
 *   am_index_build.c  uses am_scan.c, am_fetch.c
 *   am_vacuum.c       uses am_fetch.c
 *   am_ddl.c          uses am_fetch.c
 *   am_lock.c         uses am_fetch.c
 *   am_modify.c       uses am_lock.c, am_fetch.c
 *
 * and tableam.c, above them all, takes the address of every callback for
 * its TableAmRoutine but calls none of them.
 */
#ifndef STRATA_AM_INTERNAL_H
#define STRATA_AM_INTERNAL_H

#include "postgres.h"

#include "access/heapam.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "storage/lmgr.h"
#include "utils/snapmgr.h"

#include "pg/rowversion.h"
#include "pg/read.h"
#include "pg/tree.h"

/*
 * A scan of a strata table: sequential, TID range, bitmap, sample, ANALYZE's
 * and an index build's (am_scan.c; am_fetch.c and am_index_build.c
 * read it too).
 */
typedef struct StrataScanDescData
{
	TableScanDescData base;
	MemoryContext scancxt;		/* everything the scan allocates */
	StrataTree *tree;
	StrataTreeScan *tscan;
	/* parallel scans (a chunk of blocks) and ANALYZE (a block) at a time */
	bool		by_block;
	bool		block_open;
	uint64		block_end;		/* row ids of the open block or chunk end here */
	uint64		analyze_rows;
	/* TID range scans: row ids [range_min, range_max] */
	bool		range_open;
	uint64		range_min;
	uint64		range_max;
	/* bitmap scans: the block being read and where in its offsets */
	BlockNumber bm_block;
	int			bm_index;
	bool		bm_walk;		/* read the block by stepping the tree scan */
	MemoryContext fetchcxt;		/* the row fetched last */
	StrataRowFetcher *fetcher;	/* bitmap scans: TIDs come in ascending order */
	bool		sample_started; /* TABLESAMPLE without NextSampleBlock */

	/*
	 * Where a serial sequential or TID range scan stands, for scrollable
	 * cursors (scan_step_back): on the row returned last, or nowhere, as a
	 * heap scan that reached either end starts over (forward from the
	 * first row, backward from the last; the portal keeps track of which
	 * end the cursor is at). reseek: the tree scan is not just after it.
	 */
	enum
	{
		SCAN_POS_NONE,
		SCAN_POS_ON
	}			pos;
	uint64		pos_rowid;
	bool		reseek;
	/* visible row ids below pos_rowid, ascending, and the window width */
	uint64	   *back_rows;
	int			back_n;
	int			back_cap;
	uint64		back_window;
} StrataScanDescData;

typedef StrataScanDescData *StrataScanDesc;

/* am_fetch.c */

/*
 * The version of the row at tid that snapshot sees, into slot (false: none);
 * through fetcher (read.h) if not NULL, else read afresh.
 */
extern bool strata_fetch_row_version(Relation rel, StrataRowFetcher *fetcher,
									 ItemPointer tid, Snapshot snapshot,
									 TupleTableSlot *slot);

/* The row id of tid; ERROR if tid cannot name a row of rel. */
extern uint64 strata_rowid_or_error(Relation rel, ItemPointer tid);

/* Store DATA version v of the row at tid in slot (in the slot's context). */
extern void strata_store_version(Relation rel, const StrataVersion *v,
								 ItemPointer tid, TupleTableSlot *slot);

/* SERIALIZABLE: conflicts out for what snapshot passed; tid: lock the row. */
extern void strata_ssi_read_serializable(Relation rel, const StrataVersion *versions, int n,
										 StrataResolved r, ItemPointer tid,
										 Snapshot snapshot);

/* Every row of every read comes here: the cheap test inline. */
static inline void
strata_ssi_read(Relation rel, const StrataVersion *versions, int n,
				StrataResolved r, ItemPointer tid, Snapshot snapshot)
{
	if (IsolationIsSerializable())
		strata_ssi_read_serializable(rel, versions, n, r, tid, snapshot);
}

/* Gone for every snapshot? If so, *latest_xid moves up to its remover. */
extern bool strata_row_dead_to_all(const StrataVersion *versions, int n,
								   GlobalVisState *vistest,
								   TransactionId *latest_xid);

/* A fetch state for rel, in TopTransactionContext until index_fetch_end. */
extern IndexFetchTableData *strata_index_fetch_begin(Relation rel);

/* Nothing is kept between fetches: nothing to reset. */
extern void strata_index_fetch_reset(IndexFetchTableData *data);

/* Free what strata_index_fetch_begin allocated. */
extern void strata_index_fetch_end(IndexFetchTableData *data);

/* The row at tid as snapshot sees it; *all_dead if it is gone for all. */
extern bool strata_index_fetch_tuple(IndexFetchTableData *data,
									 ItemPointer tid, Snapshot snapshot,
									 TupleTableSlot *slot, bool *call_again,
									 bool *all_dead);

/* The row at tid as snapshot sees it (SnapshotAny: the one acted on). */
extern bool strata_tuple_fetch_row_version(Relation rel, ItemPointer tid,
										   Snapshot snapshot,
										   TupleTableSlot *slot);

/* Does tid name a row id the scan's table has handed out? */
extern bool strata_tuple_tid_valid(TableScanDesc sscan, ItemPointer tid);

/* Follow MOVED links from *tid to the newest TID the snapshot sees. */
extern void strata_tuple_get_latest_tid(TableScanDesc sscan, ItemPointer tid);

/* Does snapshot see the very version of the row that slot holds? */
extern bool strata_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot,
											Snapshot snapshot);

/* Mark deletable the index entries whose rows are gone for everyone. */
extern TransactionId strata_index_delete_tuples(Relation rel,
												TM_IndexDeleteOp *delstate);

/* am_scan.c */

/* A scan whose memory lives until scan_end or the transaction ends. */
extern TableScanDesc strata_scan_begin(Relation rel, Snapshot snapshot,
									   int nkeys, struct ScanKeyData *key,
									   ParallelTableScanDesc pscan,
									   uint32 flags);

/* End the tree scan, a temporary snapshot and the scan's memory. */
extern void strata_scan_end(TableScanDesc sscan);

/* Start the scan over from its first row. */
extern void strata_scan_rescan(TableScanDesc sscan, struct ScanKeyData *key,
							   bool set_params, bool allow_strat,
							   bool allow_sync, bool allow_pagemode);

/* The next visible row, forward or (scrollable cursors) backward. */
extern bool strata_scan_getnextslot(TableScanDesc sscan,
									ScanDirection direction,
									TupleTableSlot *slot);

/* Limit the scan to the row ids that [mintid, maxtid] bounds. */
extern void strata_scan_set_tidrange(TableScanDesc sscan, ItemPointer mintid,
									 ItemPointer maxtid);

/* The next visible row of the TID range, in either direction. */
extern bool strata_scan_getnextslot_tidrange(TableScanDesc sscan,
											 ScanDirection direction,
											 TupleTableSlot *slot);

/* Parallel scans share heap's block-based state: its size. */
extern Size strata_parallelscan_estimate(Relation rel);

/* Parallel scans share heap's block-based state: set it up. */
extern Size strata_parallelscan_initialize(Relation rel,
										   ParallelTableScanDesc pscan);

/* Parallel scans share heap's block-based state: reset it. */
extern void strata_parallelscan_reinitialize(Relation rel,
											 ParallelTableScanDesc pscan);

/* The scan's tree scan, opened on first use so an idle scan pins nothing. */
extern StrataTreeScan *strata_scan_tree(StrataScanDesc scan);

/* Position on block blkno: row ids [blkno * 291, (blkno + 1) * 291). */
extern void strata_scan_open_block(StrataScanDesc scan, BlockNumber blkno);

/*
 * Take the parallel scan's next chunk of blocks and position on its first
 * row id (block_end: where it ends); false when every block is taken.
 */
extern bool strata_scan_open_next_parallel_chunk(StrataScanDesc scan);

/* Start a bitmap block; false if it holds no row id handed out. */
extern bool strata_scan_bitmap_next_block(TableScanDesc sscan,
										  struct TBMIterateResult *tbmres);

/* The next visible row among the bitmap block's offsets (lossy: all). */
extern bool strata_scan_bitmap_next_tuple(TableScanDesc sscan,
										  struct TBMIterateResult *tbmres,
										  TupleTableSlot *slot);

/* Move to the next block the sampling method picks; false at the end. */
extern bool strata_scan_sample_next_block(TableScanDesc sscan,
										  struct SampleScanState *scanstate);

/* The next visible row the sampling method picks in the block. */
extern bool strata_scan_sample_next_tuple(TableScanDesc sscan,
										  struct SampleScanState *scanstate,
										  TupleTableSlot *slot);

/* Position on the block ANALYZE samples. */
extern bool strata_scan_analyze_next_block(TableScanDesc sscan,
										   BlockNumber blockno,
										   BufferAccessStrategy bstrategy);

/* The block's next live row; counts live rows and dead versions. */
extern bool strata_scan_analyze_next_tuple(TableScanDesc sscan,
										   TransactionId OldestXmin,
										   double *liverows, double *deadrows,
										   TupleTableSlot *slot);

/* am_index_build.c */

/* Feed each row once to callback; ends sscan, passed in or not. */
extern double strata_index_build_range_scan(Relation rel, Relation index,
											struct IndexInfo *indexInfo,
											bool allow_sync, bool anyvisible,
											bool progress,
											BlockNumber start_blockno,
											BlockNumber numblocks,
											IndexBuildCallback callback,
											void *callback_state,
											TableScanDesc sscan);

/* Insert the rows snapshot sees whose TIDs the index lacks. */
extern void strata_index_validate_scan(Relation table_rel, Relation index_rel,
									   struct IndexInfo *index_info,
									   Snapshot snapshot,
									   struct ValidateIndexState *state);

/* am_vacuum.c */

/* Compact; dead rows out of indexes, then tree; advance relfrozenxid. */
extern void strata_relation_vacuum(Relation rel, struct VacuumParams *params,
								   BufferAccessStrategy bstrategy);

/* am_ddl.c */

/* Create the empty smgr main fork, then a new, empty tree. */
extern void strata_relation_set_new_filenode(Relation rel,
											 const RelFileNode *newrnode,
											 char persistence,
											 TransactionId *freezeXid,
											 MultiXactId *minmulti);

/* Start the relfilenode over as an empty tree under a new tree id. */
extern void strata_relation_nontransactional_truncate(Relation rel);

/* Copy every row verbatim into a new tree for newrnode; drop the old. */
extern void strata_relation_copy_data(Relation rel,
									  const RelFileNode *newrnode);

/* Copy rows some snapshot may see, in OldIndex's order if given. */
extern void strata_relation_copy_for_cluster(Relation OldTable,
											 Relation NewTable,
											 Relation OldIndex, bool use_sort,
											 TransactionId OldestXmin,
											 TransactionId *xid_cutoff,
											 MultiXactId *multi_cutoff,
											 double *num_tuples,
											 double *tups_vacuumed,
											 double *tups_recently_dead);

/* am_lock.c */

/* Called by strata_modify_row with the row latched when the row is TM_Ok. */
typedef void (*strata_row_action) (Relation rel, StrataTree *tree, uint64 rowid,
								   ItemPointer tid, const StrataVersion *versions,
								   int n, int current, int held_mode, void *arg);
/* Called by strata_modify_row to decide the strength the writer needs. */
typedef LockTupleMode (*strata_row_mode) (Relation rel, const StrataVersion *versions,
										  int n, ItemPointer tid, void *arg);

/* Latch, check, wait, retry; on TM_Ok, act with the row latched. */
extern TM_Result strata_modify_row(Relation rel, ItemPointer tid,
								   CommandId cid, Snapshot snapshot,
								   Snapshot crosscheck, LockTupleMode mode,
								   strata_row_mode mode_of,
								   LockWaitPolicy wait, TM_FailureData *tmfd,
								   XLTW_Oper oper, strata_row_action act,
								   void *arg, ItemPointer follow);

/* Append this transaction's TOMBSTONE, MOVED or LOCK version. */
extern void strata_append_simple(Relation rel, StrataTree *tree, uint64 rowid,
								 StrataVersionKind kind, CommandId cid,
								 uint8 flags, ItemPointer moved_to,
								 LockTupleMode mode);

/* Lock the row at tid with heap's strengths, flags and results. */
extern TM_Result strata_tuple_lock(Relation rel, ItemPointer tid,
								   Snapshot snapshot, TupleTableSlot *slot,
								   CommandId cid, LockTupleMode mode,
								   LockWaitPolicy wait_policy, uint8 flags,
								   TM_FailureData *tmfd);

/* am_modify.c */

/* Append a DATA version under a new row id; slot gets TID and xmin. */
extern void strata_tuple_insert(Relation rel, TupleTableSlot *slot,
								CommandId cid, int options,
								BulkInsertState bistate);

/* An insert whose token stays published until it completes. */
extern void strata_tuple_insert_speculative(Relation rel, TupleTableSlot *slot,
											CommandId cid, int options,
											BulkInsertState bistate,
											uint32 specToken);

/* Unpublish the token; if the insert failed, undo it for everyone. */
extern void strata_tuple_complete_speculative(Relation rel,
											  TupleTableSlot *slot,
											  uint32 specToken, bool succeeded);

/* strata_tuple_insert for ntuples slots, appended at once. */
extern void strata_multi_insert(Relation rel, TupleTableSlot **slots,
								int ntuples, CommandId cid, int options,
								BulkInsertState bistate);

/* Nothing is buffered across calls: nothing to finish. */
extern void strata_finish_bulk_insert(Relation rel, int options);

/* Append a TOMBSTONE (a MOVED if changing partition); heap's TM_Result. */
extern TM_Result strata_tuple_delete(Relation rel, ItemPointer tid,
									 CommandId cid, Snapshot snapshot,
									 Snapshot crosscheck, bool wait,
									 TM_FailureData *tmfd, bool changingPart);

/* New row data at the same TID, or at a new one the old links to. */
extern TM_Result strata_tuple_update(Relation rel, ItemPointer otid,
									 TupleTableSlot *slot, CommandId cid,
									 Snapshot snapshot, Snapshot crosscheck,
									 bool wait, TM_FailureData *tmfd,
									 LockTupleMode *lockmode,
									 bool *update_indexes);

#endif							/* STRATA_AM_INTERNAL_H */
