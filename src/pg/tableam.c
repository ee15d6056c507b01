/*
 * tableam.c — the `strata` table access method: the TableAmRoutine that
 * PostgreSQL calls for every operation on a strata table.
 *
 * State of this file: relation creation and the catalog-facing callbacks
 * are real; every callback that would read or write rows raises
 * ERRCODE_FEATURE_NOT_SUPPORTED naming the operation until the engine is
 * wired in, so that nothing ever crashes or silently succeeds.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/multixact.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/storage.h"
#include "catalog/storage_xlog.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "storage/smgr.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "pg/stratago.h"

PG_FUNCTION_INFO_V1(stratago_tableam_handler);

static void strata_not_supported(const char *operation) pg_attribute_noreturn();

/*
 * The one error for operations not implemented yet.
 */
static void
strata_not_supported(const char *operation)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s is not supported for strata tables yet", operation)));
}

/* ------------------------------------------------------------------------
 * Slots
 * ------------------------------------------------------------------------
 */
static const TupleTableSlotOps *
strata_slot_callbacks(Relation rel)
{
	/*
	 * Rows come out of the engine as copies, never as pointers into shared
	 * buffers, so a slot that owns a heap tuple fits.
	 */
	return &TTSOpsHeapTuple;
}

/* ------------------------------------------------------------------------
 * Scans
 * ------------------------------------------------------------------------
 */
static TableScanDesc
strata_scan_begin(Relation rel, Snapshot snapshot, int nkeys,
				  struct ScanKeyData *key, ParallelTableScanDesc pscan,
				  uint32 flags)
{
	strata_not_supported("scanning");
}

static void
strata_scan_end(TableScanDesc scan)
{
	strata_not_supported("scanning");
}

static void
strata_scan_rescan(TableScanDesc scan, struct ScanKeyData *key, bool set_params,
				   bool allow_strat, bool allow_sync, bool allow_pagemode)
{
	strata_not_supported("scanning");
}

static bool
strata_scan_getnextslot(TableScanDesc scan, ScanDirection direction,
						TupleTableSlot *slot)
{
	strata_not_supported("scanning");
}

static void
strata_scan_set_tidrange(TableScanDesc scan, ItemPointer mintid,
						 ItemPointer maxtid)
{
	strata_not_supported("TID range scan");
}

static bool
strata_scan_getnextslot_tidrange(TableScanDesc scan, ScanDirection direction,
								 TupleTableSlot *slot)
{
	strata_not_supported("TID range scan");
}

static Size
strata_parallelscan_estimate(Relation rel)
{
	strata_not_supported("parallel scan");
}

static Size
strata_parallelscan_initialize(Relation rel, ParallelTableScanDesc pscan)
{
	strata_not_supported("parallel scan");
}

static void
strata_parallelscan_reinitialize(Relation rel, ParallelTableScanDesc pscan)
{
	strata_not_supported("parallel scan");
}

/* ------------------------------------------------------------------------
 * Index fetches
 * ------------------------------------------------------------------------
 */
static IndexFetchTableData *
strata_index_fetch_begin(Relation rel)
{
	strata_not_supported("index scan");
}

static void
strata_index_fetch_reset(IndexFetchTableData *data)
{
	strata_not_supported("index scan");
}

static void
strata_index_fetch_end(IndexFetchTableData *data)
{
	strata_not_supported("index scan");
}

static bool
strata_index_fetch_tuple(IndexFetchTableData *data, ItemPointer tid,
						 Snapshot snapshot, TupleTableSlot *slot,
						 bool *call_again, bool *all_dead)
{
	strata_not_supported("index scan");
}

/* ------------------------------------------------------------------------
 * Non-modifying operations on individual tuples
 * ------------------------------------------------------------------------
 */
static bool
strata_tuple_fetch_row_version(Relation rel, ItemPointer tid,
							   Snapshot snapshot, TupleTableSlot *slot)
{
	strata_not_supported("fetching a row by TID");
}

static bool
strata_tuple_tid_valid(TableScanDesc scan, ItemPointer tid)
{
	strata_not_supported("TID scan");
}

static void
strata_tuple_get_latest_tid(TableScanDesc scan, ItemPointer tid)
{
	strata_not_supported("following a row's update chain");
}

static bool
strata_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot,
								Snapshot snapshot)
{
	strata_not_supported("checking row visibility");
}

static TransactionId
strata_index_delete_tuples(Relation rel, TM_IndexDeleteOp *delstate)
{
	strata_not_supported("index entry deletion");
}

/* ------------------------------------------------------------------------
 * Modifications
 * ------------------------------------------------------------------------
 */
static void
strata_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid,
					int options, BulkInsertState bistate)
{
	strata_not_supported("INSERT");
}

static void
strata_tuple_insert_speculative(Relation rel, TupleTableSlot *slot,
								CommandId cid, int options,
								BulkInsertState bistate, uint32 specToken)
{
	strata_not_supported("INSERT ... ON CONFLICT");
}

static void
strata_tuple_complete_speculative(Relation rel, TupleTableSlot *slot,
								  uint32 specToken, bool succeeded)
{
	strata_not_supported("INSERT ... ON CONFLICT");
}

static void
strata_multi_insert(Relation rel, TupleTableSlot **slots, int ntuples,
					CommandId cid, int options, BulkInsertState bistate)
{
	strata_not_supported("COPY");
}

static TM_Result
strata_tuple_delete(Relation rel, ItemPointer tid, CommandId cid,
					Snapshot snapshot, Snapshot crosscheck, bool wait,
					TM_FailureData *tmfd, bool changingPart)
{
	strata_not_supported("DELETE");
}

static TM_Result
strata_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot,
					CommandId cid, Snapshot snapshot, Snapshot crosscheck,
					bool wait, TM_FailureData *tmfd,
					LockTupleMode *lockmode, bool *update_indexes)
{
	strata_not_supported("UPDATE");
}

static TM_Result
strata_tuple_lock(Relation rel, ItemPointer tid, Snapshot snapshot,
				  TupleTableSlot *slot, CommandId cid, LockTupleMode mode,
				  LockWaitPolicy wait_policy, uint8 flags,
				  TM_FailureData *tmfd)
{
	strata_not_supported("row locking");
}

static void
strata_finish_bulk_insert(Relation rel, int options)
{
	/* nothing is buffered across calls yet */
}

/* ------------------------------------------------------------------------
 * DDL
 * ------------------------------------------------------------------------
 */

/*
 * A new relfilenode (CREATE TABLE, TRUNCATE, rewrites). We create the smgr
 * main fork, empty, exactly as heap would: PostgreSQL picks relfilenodes by
 * checking which smgr files exist and drops storage through its
 * pending-delete list at commit or abort, and both must keep working for
 * strata tables (BRIEF §5.12).
 */
static void
strata_relation_set_new_filenode(Relation rel, const RelFileNode *newrnode,
								 char persistence, TransactionId *freezeXid,
								 MultiXactId *minmulti)
{
	SMgrRelation srel;

	*freezeXid = RecentXmin;
	*minmulti = GetOldestMultiXactId();

	srel = RelationCreateStorage(*newrnode, persistence, true);

	/* Unlogged relations need an init fork, as for heap. */
	if (persistence == RELPERSISTENCE_UNLOGGED)
	{
		smgrcreate(srel, INIT_FORKNUM, false);
		log_smgrcreate(newrnode, INIT_FORKNUM);
		smgrimmedsync(srel, INIT_FORKNUM);
	}

	smgrclose(srel);
}

static void
strata_relation_nontransactional_truncate(Relation rel)
{
	/* No rows can exist yet; keep the smgr fork in step with heap's rules. */
	RelationTruncate(rel, 0);
}

static void
strata_relation_copy_data(Relation rel, const RelFileNode *newrnode)
{
	strata_not_supported("ALTER TABLE ... SET TABLESPACE");
}

static void
strata_relation_copy_for_cluster(Relation OldTable, Relation NewTable,
								 Relation OldIndex, bool use_sort,
								 TransactionId OldestXmin,
								 TransactionId *xid_cutoff,
								 MultiXactId *multi_cutoff,
								 double *num_tuples,
								 double *tups_vacuumed,
								 double *tups_recently_dead)
{
	strata_not_supported("VACUUM FULL or CLUSTER");
}

static void
strata_relation_vacuum(Relation rel, struct VacuumParams *params,
					   BufferAccessStrategy bstrategy)
{
	/*
	 * There are no row versions yet, so there is nothing to remove. Not an
	 * error: autovacuum and database-wide VACUUM visit every table.
	 */
}

static bool
strata_scan_analyze_next_block(TableScanDesc scan, BlockNumber blockno,
							   BufferAccessStrategy bstrategy)
{
	strata_not_supported("ANALYZE");
}

static bool
strata_scan_analyze_next_tuple(TableScanDesc scan, TransactionId OldestXmin,
							   double *liverows, double *deadrows,
							   TupleTableSlot *slot)
{
	strata_not_supported("ANALYZE");
}

static double
strata_index_build_range_scan(Relation table_rel, Relation index_rel,
							  struct IndexInfo *index_info, bool allow_sync,
							  bool anyvisible, bool progress,
							  BlockNumber start_blockno, BlockNumber numblocks,
							  IndexBuildCallback callback,
							  void *callback_state, TableScanDesc scan)
{
	strata_not_supported("CREATE INDEX");
}

static void
strata_index_validate_scan(Relation table_rel, Relation index_rel,
						   struct IndexInfo *index_info, Snapshot snapshot,
						   struct ValidateIndexState *state)
{
	strata_not_supported("CREATE INDEX CONCURRENTLY");
}

/* ------------------------------------------------------------------------
 * Sizes
 * ------------------------------------------------------------------------
 */
static uint64
strata_relation_size(Relation rel, ForkNumber forkNumber)
{
	/* No rows yet: no row-id blocks. */
	return 0;
}

static bool
strata_relation_needs_toast_table(Relation rel)
{
	/* The engine stores values of any size inline (BRIEF §4). */
	return false;
}

static Oid
strata_relation_toast_am(Relation rel)
{
	return rel->rd_rel->relam;
}

static void
strata_relation_estimate_size(Relation rel, int32 *attr_widths,
							  BlockNumber *pages, double *tuples,
							  double *allvisfrac)
{
	*pages = 0;
	*tuples = 0;
	*allvisfrac = 0;
}

/* ------------------------------------------------------------------------
 * Bitmap and sample scans
 * ------------------------------------------------------------------------
 */
static bool
strata_scan_bitmap_next_block(TableScanDesc scan, struct TBMIterateResult *tbmres)
{
	strata_not_supported("bitmap heap scan");
}

static bool
strata_scan_bitmap_next_tuple(TableScanDesc scan, struct TBMIterateResult *tbmres,
							  TupleTableSlot *slot)
{
	strata_not_supported("bitmap heap scan");
}

static bool
strata_scan_sample_next_block(TableScanDesc scan, struct SampleScanState *scanstate)
{
	strata_not_supported("TABLESAMPLE");
}

static bool
strata_scan_sample_next_tuple(TableScanDesc scan, struct SampleScanState *scanstate,
							  TupleTableSlot *slot)
{
	strata_not_supported("TABLESAMPLE");
}

static const TableAmRoutine strata_methods = {
	.type = T_TableAmRoutine,

	.slot_callbacks = strata_slot_callbacks,

	.scan_begin = strata_scan_begin,
	.scan_end = strata_scan_end,
	.scan_rescan = strata_scan_rescan,
	.scan_getnextslot = strata_scan_getnextslot,

	.scan_set_tidrange = strata_scan_set_tidrange,
	.scan_getnextslot_tidrange = strata_scan_getnextslot_tidrange,

	.parallelscan_estimate = strata_parallelscan_estimate,
	.parallelscan_initialize = strata_parallelscan_initialize,
	.parallelscan_reinitialize = strata_parallelscan_reinitialize,

	.index_fetch_begin = strata_index_fetch_begin,
	.index_fetch_reset = strata_index_fetch_reset,
	.index_fetch_end = strata_index_fetch_end,
	.index_fetch_tuple = strata_index_fetch_tuple,

	.tuple_fetch_row_version = strata_tuple_fetch_row_version,
	.tuple_tid_valid = strata_tuple_tid_valid,
	.tuple_get_latest_tid = strata_tuple_get_latest_tid,
	.tuple_satisfies_snapshot = strata_tuple_satisfies_snapshot,
	.index_delete_tuples = strata_index_delete_tuples,

	.tuple_insert = strata_tuple_insert,
	.tuple_insert_speculative = strata_tuple_insert_speculative,
	.tuple_complete_speculative = strata_tuple_complete_speculative,
	.multi_insert = strata_multi_insert,
	.tuple_delete = strata_tuple_delete,
	.tuple_update = strata_tuple_update,
	.tuple_lock = strata_tuple_lock,
	.finish_bulk_insert = strata_finish_bulk_insert,

	.relation_set_new_filenode = strata_relation_set_new_filenode,
	.relation_nontransactional_truncate = strata_relation_nontransactional_truncate,
	.relation_copy_data = strata_relation_copy_data,
	.relation_copy_for_cluster = strata_relation_copy_for_cluster,
	.relation_vacuum = strata_relation_vacuum,
	.scan_analyze_next_block = strata_scan_analyze_next_block,
	.scan_analyze_next_tuple = strata_scan_analyze_next_tuple,
	.index_build_range_scan = strata_index_build_range_scan,
	.index_validate_scan = strata_index_validate_scan,

	.relation_size = strata_relation_size,
	.relation_needs_toast_table = strata_relation_needs_toast_table,
	.relation_toast_am = strata_relation_toast_am,
	.relation_fetch_toast_slice = NULL,

	.relation_estimate_size = strata_relation_estimate_size,

	.scan_bitmap_next_block = strata_scan_bitmap_next_block,
	.scan_bitmap_next_tuple = strata_scan_bitmap_next_tuple,
	.scan_sample_next_block = strata_scan_sample_next_block,
	.scan_sample_next_tuple = strata_scan_sample_next_tuple,
};

Datum
stratago_tableam_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&strata_methods);
}
