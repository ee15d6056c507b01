/*
 * tableam.c — the `strata` table access method: the TableAmRoutine that
 * PostgreSQL calls for every operation on a strata table, and its handler.
 *
 * Rows live in the relation's LSM tree (tree.c, write.c, read.c); each
 * change appends a row version (rowversion.h) and PostgreSQL's snapshots
 * pick the version a reader sees. A callback whose feature is not built
 * must raise ERRCODE_FEATURE_NOT_SUPPORTED naming the operation, so that
 * nothing ever crashes or silently succeeds.
 *
 * This file wires the routine together, as heapam_handler.c does for
 * heap; it keeps only the slot and size callbacks, which are short. The
 * other callbacks live by family in files of their own (declared in
 * am_internal.h), each calling only the files listed above it:
 *
 *   am_fetch.c        index fetches, index_delete_tuples, single-row reads;
 *                     the row helpers the other files use
 *   am_scan.c         sequential, TID range, bitmap and sample scans;
 *                     ANALYZE's callbacks
 *   am_index_build.c  index builds, CREATE INDEX CONCURRENTLY's validation
 *   am_vacuum.c       VACUUM
 *   am_ddl.c          new storage, truncation, SET TABLESPACE, VACUUM FULL
 *                     and CLUSTER
 *   am_lock.c         tuple_lock, and the row-status and wait loop that
 *                     delete, update and lock share
 *   am_modify.c       insert, speculative insert, multi_insert, delete,
 *                     update
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "storage/bufpage.h"
#include "utils/rel.h"

#include "pg/am_internal.h"
#include "pg/stratago.h"
#include "pg/tree.h"

PG_FUNCTION_INFO_V1(stratago_tableam_handler);

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
 * Sizes
 * ------------------------------------------------------------------------
 */
/*
 * The size PostgreSQL's planner and ANALYZE work with: one "block" per 291
 * row ids handed out, so that block numbers match TIDs. The bytes the
 * table really takes are the engine's files (see the README).
 */
static uint64
strata_relation_size(Relation rel, ForkNumber forkNumber)
{
	if (forkNumber != MAIN_FORKNUM && forkNumber != InvalidForkNumber)
		return 0;
	return strata_tree_nblocks(strata_tree_get(rel)) * BLCKSZ;
}

static bool
strata_relation_needs_toast_table(Relation rel)
{
	/* The engine stores values of any size inline. */
	return false;
}

static Oid
strata_relation_toast_am(Relation rel)
{
	return rel->rd_rel->relam;
}

/* More versions in memory than this many per row id: a table of hot rows. */
#define STRATA_HOT_VERSIONS_PER_ROW 4

/* Raise *pages to the memtables' bytes when they hold a hot table's versions. */
static void
memtable_pages(StrataTree *tree, BlockNumber *pages)
{
	uint64		bytes;
	uint64		versions;

	strata_tree_memtable_usage(tree, &bytes, &versions);
	if (versions > STRATA_HOT_VERSIONS_PER_ROW * tree->next_rowid)
		*pages = Max(*pages, (BlockNumber) Min(bytes / BLCKSZ, (uint64) MaxBlockNumber));
}

static void
strata_relation_estimate_size(Relation rel, int32 *attr_widths,
							  BlockNumber *pages, double *tuples,
							  double *allvisfrac)
{
	StrataTree *tree = strata_tree_get(rel);
	BlockNumber curpages = (BlockNumber) strata_tree_nblocks(tree);
	BlockNumber relpages = (BlockNumber) rel->rd_rel->relpages;
	double		reltuples = rel->rd_rel->reltuples;

	/*
	 * A table never vacuumed or analyzed and under 10 blocks: estimate it
	 * exactly as heap does (the planner's "assume at least 10 pages" rule
	 * for new tables, rows from the tuple width). A strata block holds
	 * more small rows than a heap page, so our own rule would call a new
	 * table of a few rows tiny where heap does not, and plans (sequential
	 * scan instead of index scan, and with them SERIALIZABLE's
	 * relation-wide predicate locks) would differ from heap's for the
	 * same data.
	 */
	if (curpages < 10 && reltuples < 0)
	{
		table_block_relation_estimate_size(rel, attr_widths, pages, tuples, allvisfrac,
										   MAXALIGN(SizeofHeapTupleHeader) + sizeof(ItemIdData),
										   BLCKSZ - SizeOfPageHeaderData);
		return;
	}

	*pages = curpages;
	*allvisfrac = 0;
	if (curpages == 0)
	{
		*tuples = 0;
		return;
	}
	/* density from the last ANALYZE or VACUUM, else every row id in use */
	if (reltuples >= 0 && relpages > 0)
		*tuples = rint(reltuples / relpages * curpages);
	else
		*tuples = (double) curpages * STRATA_ROWS_PER_BLOCK;

	/*
	 * A sequential scan reads every version the memtables hold, not one per
	 * row: a small table of hot rows (pgbench's branches and tellers) can
	 * hold thousands of versions per row until they are flushed and
	 * compacted away, which a scan steps over and an index scan of one key
	 * does not. Counting those bytes as pages lets the planner see that.
	 * Only then, though: for rows that changed a few times the row ids'
	 * blocks are the size, whether or not a flush has happened yet. (Counting
	 * memtable bytes for every table made the estimate, and so plans, depend
	 * on when the worker flushed: two partitions of similar size, one
	 * flushed and one not, swapped places in a Parallel Append.)
	 */
	memtable_pages(tree, pages);
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

/* Is rel a strata table? (Its access method is this one.) */
bool
strata_relation_is_strata(Relation rel)
{
	return rel->rd_tableam == &strata_methods;
}
