/*
 * am_vacuum.c — VACUUM of a strata table (relation_vacuum): rows dead to
 * every snapshot leave the indexes and then the tree, the indexes are
 * cleaned up and relfrozenxid moves on; an aggressive VACUUM compacts the
 * tree to freeze it. The banner below gives the steps.
 *
 * Separate because it is heap's lazy VACUUM redone for an LSM tree: of
 * the other files it uses only the test for a row gone for every snapshot
 * (strata_row_dead_to_all, am_fetch.c). VACUUM FULL and CLUSTER rewrite the
 * table and live in am_ddl.c.
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "commands/dbcommands.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/autovacuum.h"
#include "storage/procarray.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "pg/am_internal.h"
#include "pg/flush.h"
#include "pg/pgwal.h"
#include "pg/read.h"
#include "pg/rowversion.h"
#include "pg/tree.h"
#include "pg/write.h"

/* ------------------------------------------------------------------------
 * VACUUM
 *
 * 1. An aggressive VACUUM (heap's rule: FREEZE, DISABLE_PAGE_SKIPPING, or
 *    a table past vacuum_freeze_table_age) first compacts the whole tree
 *    through the maintenance worker: that retires every row version no
 *    snapshot can see, freezes the all-visible ones, and leaves rows gone
 *    for everyone as one-version "dead stubs" (flush.c). Any other VACUUM
 *    leaves all of that to the compactions the worker runs anyway, so its
 *    cost follows the table's garbage and a read of the tree, not a
 *    rewrite of it (doc/DESIGN.md §5).
 * 2. A scan of the row ids that changed since compaction froze them
 *    (strata_tree_suspect_ranges: memtable entries, and the rows each
 *    SSTable holding anything but frozen row data lists, or its range;
 *    the rest is skipped, as heap skips all-visible pages, and a read of
 *    single rows counts as the blocks they would fill, estimate_live_rows)
 *    collects the TIDs of rows dead to every snapshot
 *    (stubs, and dead rows compaction has not reached), at most
 *    maintenance_work_mem of them at a time as heap does; each batch is
 *    removed from every index (index_bulk_delete), and only then are its
 *    rows reaped (engine tombstones): a TID is never left dangling, and
 *    is never handed out again (row ids only grow). When rows were
 *    reaped, an aggressive VACUUM compacts again so that it gives the
 *    space back itself; otherwise compaction meets the tombstones later.
 * 3. index_vacuum_cleanup on every index, statistics as heap reports them.
 * 4. relfrozenxid moves to the oldest writer of an unfrozen version still
 *    in the tree (per-SSTable statistics plus the memtables), capped by
 *    the horizon taken before compacting, which every xid written later
 *    is at or above. strata writes no multixacts, so relminmxid moves to
 *    the oldest multixact that still exists.
 *
 * Progress goes to pg_stat_progress_vacuum in heap's terms, so that the
 * queries DBAs already have work unchanged: "heap blocks" are the table's
 * TID blocks (row ids / STRATA_ROWS_PER_BLOCK, what relpages says), the
 * scan of step 2 is "scanning heap", removing index entries "vacuuming
 * indexes", reaping rows and the compactions of steps 1 and 2 "vacuuming
 * heap" (the phase in which heap gives space back), step 3 "cleaning up
 * indexes" and step 4 "performing final cleanup".
 * ------------------------------------------------------------------------
 */
typedef struct StrataVacuumState
{
	Relation	rel;
	StrataTree *tree;
	int			nindexes;
	Relation   *indrels;
	IndexBulkDeleteResult **istats;
	VacDeadItems *dead;			/* TIDs in ascending order (the scan's) */
	bool		do_index;		/* index_cleanup is not off */
	int			elevel;
	BufferAccessStrategy bstrategy;
	int			index_scans;
	double		reaped;
	double		live;
	TransactionId latest_removed;	/* newest writer among the batch's rows */
} StrataVacuumState;

/* Remove the collected TIDs from every index, then reap their rows. */
static void
strata_vacuum_dead_batch(StrataVacuumState *vs)
{
	uint64	   *rowids;

	if (vs->dead->num_items == 0)
		return;

	/*
	 * A hot standby has the rows and gets the index deletions: its queries
	 * that may still see them must be cancelled first, as heap's prune
	 * records make it do.
	 */
	if (RelationNeedsWAL(vs->rel))
		strata_pgwal_log_conflict(&vs->rel->rd_node, vs->latest_removed);
	vs->latest_removed = InvalidTransactionId;
	if (vs->nindexes > 0)
	{
		pgstat_progress_update_param(PROGRESS_VACUUM_PHASE,
									 PROGRESS_VACUUM_PHASE_VACUUM_INDEX);
		for (int i = 0; i < vs->nindexes; i++)
		{
			IndexVacuumInfo ivinfo;

			memset(&ivinfo, 0, sizeof(ivinfo));
			ivinfo.index = vs->indrels[i];
			ivinfo.analyze_only = false;
			ivinfo.report_progress = false;
			ivinfo.estimated_count = true;
			ivinfo.message_level = vs->elevel;
			ivinfo.num_heap_tuples = vs->rel->rd_rel->reltuples;
			ivinfo.strategy = vs->bstrategy;
			vs->istats[i] = vac_bulkdel_one_index(&ivinfo, vs->istats[i], vs->dead);
		}
		vs->index_scans++;
		pgstat_progress_update_param(PROGRESS_VACUUM_NUM_INDEX_VACUUMS, vs->index_scans);
	}
	pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_VACUUM_HEAP);
	rowids = palloc(sizeof(uint64) * vs->dead->num_items);
	for (int i = 0; i < vs->dead->num_items; i++)
		(void) strata_tid_to_rowid(&vs->dead->items[i], &rowids[i]);
	strata_tree_reap_rows(vs->rel, vs->tree, rowids, vs->dead->num_items);
	pfree(rowids);
	vs->reaped += vs->dead->num_items;
	vs->dead->num_items = 0;
	pgstat_progress_update_param(PROGRESS_VACUUM_NUM_DEAD_TUPLES, 0);
	pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_SCAN_HEAP);
}

/*
 * The table's live rows after a VACUUM that read scanned_rowids of its
 * total_rowids row ids and found live_read live rows there: heap's
 * vac_estimate_reltuples over row ids instead of pages, since a VACUUM
 * here may read single rows. The rows not read are frozen row data
 * (anything else made their row ids suspects), at most one per row id:
 * they count at the density the table had (pg_class), or as one per row
 * id for a table never counted. As heap does, a VACUUM that read next to
 * nothing of a table of unchanged size keeps the old count, so that
 * reading the same few changed rows again and again cannot drift it.
 */
static double
estimate_live_rows(Relation rel, uint64 total_rowids, uint64 scanned_rowids, double live_read)
{
	BlockNumber total_blocks = (total_rowids + STRATA_ROWS_PER_BLOCK - 1) / STRATA_ROWS_PER_BLOCK;
	double		old_rows = rel->rd_rel->reltuples;
	BlockNumber old_blocks = rel->rd_rel->relpages;
	bool		known = old_rows >= 0 && old_blocks > 0;
	double		density;

	if (scanned_rowids >= total_rowids)
		return live_read;
	if (known && (scanned_rowids == 0 ||
				  (old_blocks == total_blocks && scanned_rowids < total_rowids * 0.02)))
		return old_rows;
	density = known ? Min(old_rows / ((double) old_blocks * STRATA_ROWS_PER_BLOCK), 1.0) : 1.0;
	return floor(live_read + density * (double) (total_rowids - scanned_rowids) + 0.5);
}

void
strata_relation_vacuum(Relation rel, struct VacuumParams *params,
					   BufferAccessStrategy bstrategy)
{
	StrataTree *tree = strata_tree_get(rel);
	StrataVacuumState vs;
	TransactionId oldest_xmin;
	GlobalVisState *vistest;
	TransactionId new_frozen = InvalidTransactionId;
	TransactionId old_frozen = rel->rd_rel->relfrozenxid;
	MultiXactId new_minmulti;
	FullTransactionId oldest_unfrozen;
	uint64		stubs;
	bool		frozen_updated = false;
	bool		minmulti_updated = false;
	double		not_removable = 0;
	uint64		dropped_before;
	uint64		frozen_before;
	uint64		dropped;
	uint64		frozen;
	int			work_mem_kb;
	int			max_items;
	StrataTreeScan *tscan;
	uint64		rowid;
	StrataVersion *versions;
	int			n;
	bool		aggressive;
	TransactionId freeze_limit;
	MultiXactId mxact_cutoff;
	uint64		scanned_block = 0;
	uint64		total_rowids = tree->next_rowid;	/* row ids below were handed out */
	uint64		total_blocks = strata_tree_nblocks(tree);
	uint64		scanned_rowids = 0;
	uint64		scanned_blocks;
	double		live_tuples;
	StrataRowRange *ranges;
	int			nranges;

	/*
	 * Heap's rule for an aggressive VACUUM: FREEZE, DISABLE_PAGE_SKIPPING,
	 * or a table older than vacuum_freeze_table_age (or its multixact
	 * counterpart). Only such a VACUUM compacts the whole tree to freeze it;
	 * any other reads the tree once for the dead rows, and leaves retiring
	 * versions and giving space back to the compactions that run anyway.
	 * The same call gives the horizon (oldest_xmin) and the oldest
	 * multixact that still exists (new_minmulti: strata writes none).
	 */
	aggressive = vacuum_set_xid_limits(rel, params->freeze_min_age, params->freeze_table_age,
									   params->multixact_freeze_min_age,
									   params->multixact_freeze_table_age,
									   &oldest_xmin, &new_minmulti, &freeze_limit, &mxact_cutoff);
	if (params->options & VACOPT_DISABLE_PAGE_SKIPPING)
		aggressive = true;
	pgstat_progress_start_command(PROGRESS_COMMAND_VACUUM, RelationGetRelid(rel));
	pgstat_progress_update_param(PROGRESS_VACUUM_TOTAL_HEAP_BLKS, strata_tree_nblocks(tree));

	memset(&vs, 0, sizeof(vs));
	vs.rel = rel;
	vs.tree = tree;
	vs.bstrategy = bstrategy;
	vs.elevel = (params->options & VACOPT_VERBOSE) ? INFO : DEBUG2;
	ereport(vs.elevel,
			(errmsg("vacuuming \"%s.%s.%s\"",
					get_database_name(MyDatabaseId),
					get_namespace_name(RelationGetNamespace(rel)),
					RelationGetRelationName(rel))));

	/* 1. aggressive only: compaction retires, freezes, leaves dead stubs */
	LWLockAcquire(&tree->lock, LW_SHARED);
	dropped_before = tree->versions_dropped;
	frozen_before = tree->versions_frozen;
	LWLockRelease(&tree->lock);
	if (aggressive)
	{
		pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_VACUUM_HEAP);
		strata_tree_request_compact(tree);
	}
	LWLockAcquire(&tree->lock, LW_SHARED);
	dropped = tree->versions_dropped - dropped_before;
	frozen = tree->versions_frozen - frozen_before;
	LWLockRelease(&tree->lock);

	/* 2. dead rows out of the indexes, then out of the tree */
	vac_open_indexes(rel, RowExclusiveLock, &vs.nindexes, &vs.indrels);
	vs.istats = palloc0(sizeof(IndexBulkDeleteResult *) * Max(vs.nindexes, 1));
	vs.do_index = params->index_cleanup != VACOPTVALUE_DISABLED;
	work_mem_kb = (IsAutoVacuumWorkerProcess() && autovacuum_work_mem != -1)
		? autovacuum_work_mem : maintenance_work_mem;
	max_items = (int) Min((Size) MAXDEADITEMS((Size) work_mem_kb * 1024),
						  (Size) MAXDEADITEMS(MaxAllocSize));
	max_items = Max(max_items, MaxHeapTuplesPerPage);
	vs.dead = palloc(vac_max_items_to_alloc_size(max_items));
	vs.dead->max_items = max_items;
	vs.dead->num_items = 0;

	pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_SCAN_HEAP);
	pgstat_progress_update_param(PROGRESS_VACUUM_MAX_DEAD_TUPLES, max_items);
	vistest = GlobalVisTestFor(rel);

	/*
	 * Only the row ids changed since compaction froze them are read
	 * (read.c): frozen rows, heap's all-visible pages, are skipped, so a
	 * VACUUM of a large table costs what its recent changes cost.
	 * DISABLE_PAGE_SKIPPING reads them all, as on heap.
	 */
	if (params->options & VACOPT_DISABLE_PAGE_SKIPPING)
	{
		/* heap reads every page then: every row id, here */
		nranges = 1;
		ranges = palloc(sizeof(StrataRowRange));
		ranges[0].lo = 0;
		ranges[0].hi = PG_UINT64_MAX;
	}
	else
		nranges = strata_tree_suspect_ranges(rel, tree, &ranges);
	tscan = strata_tree_scan_begin(rel, tree, false);
	for (int r = 0; r < nranges; r++)
	{
		strata_tree_scan_seek(tscan, ranges[r].lo);
		if (ranges[r].lo < total_rowids)
			scanned_rowids += Min(ranges[r].hi, total_rowids - 1) - ranges[r].lo + 1;
		while (strata_tree_scan_next(tscan, &rowid, &versions, &n) && rowid <= ranges[r].hi)
		{
			TransactionId latest = InvalidTransactionId;

			vacuum_delay_point();
			if (rowid / STRATA_ROWS_PER_BLOCK != scanned_block)
			{
				scanned_block = rowid / STRATA_ROWS_PER_BLOCK;
				pgstat_progress_update_param(PROGRESS_VACUUM_HEAP_BLKS_SCANNED, scanned_block);
			}
			if (strata_row_dead_to_all(versions, n, vistest, &latest))
			{
				if (TransactionIdIsValid(latest) &&
					(!TransactionIdIsValid(vs.latest_removed) ||
					 TransactionIdFollows(latest, vs.latest_removed)))
					vs.latest_removed = latest;
				/* with index cleanup off, the stub stays for a later VACUUM */
				if (vs.nindexes > 0 && !vs.do_index)
				{
					not_removable += 1;
					continue;
				}
				strata_rowid_to_tid(rowid, &vs.dead->items[vs.dead->num_items++]);
				pgstat_progress_update_param(PROGRESS_VACUUM_NUM_DEAD_TUPLES, vs.dead->num_items);
				if (vs.dead->num_items >= vs.dead->max_items)
				{
					strata_vacuum_dead_batch(&vs);
					pgstat_progress_update_param(PROGRESS_VACUUM_HEAP_BLKS_VACUUMED, scanned_block);
				}
			}
			else if (strata_resolve(versions, n, SnapshotSelf).visible)
				vs.live += 1;
			else
				not_removable += 1;
		}
	}
	strata_tree_scan_end(tscan);
	if (ranges != NULL)
		pfree(ranges);

	/*
	 * The ranges may be single rows (changes spread thinly): what was read
	 * is reported as the blocks its row ids would fill, not the blocks it
	 * touched.
	 */
	scanned_blocks = Min((scanned_rowids + STRATA_ROWS_PER_BLOCK - 1) / STRATA_ROWS_PER_BLOCK,
						 total_blocks);
	live_tuples = estimate_live_rows(rel, total_rowids, scanned_rowids, vs.live);
	pgstat_progress_update_param(PROGRESS_VACUUM_HEAP_BLKS_SCANNED, strata_tree_nblocks(tree));
	strata_vacuum_dead_batch(&vs);
	pgstat_progress_update_param(PROGRESS_VACUUM_HEAP_BLKS_VACUUMED, strata_tree_nblocks(tree));

	/*
	 * Reaped rows are engine tombstones over their stubs until compaction
	 * meets them (strata frees space by compaction, not by VACUUM-driven
	 * reuse). An aggressive VACUUM compacts once more so that it gives the
	 * space back itself; any other leaves that to the worker's compactions.
	 */
	if (vs.reaped > 0 && aggressive)
	{
		pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_VACUUM_HEAP);
		strata_tree_request_compact(tree);
		LWLockAcquire(&tree->lock, LW_SHARED);
		dropped = tree->versions_dropped - dropped_before;
		frozen = tree->versions_frozen - frozen_before;
		LWLockRelease(&tree->lock);
	}

	/* 3. index cleanup and statistics */
	pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_INDEX_CLEANUP);
	for (int i = 0; i < vs.nindexes && vs.do_index; i++)
	{
		IndexVacuumInfo ivinfo;

		memset(&ivinfo, 0, sizeof(ivinfo));
		ivinfo.index = vs.indrels[i];
		ivinfo.analyze_only = false;
		ivinfo.report_progress = false;
		ivinfo.estimated_count = scanned_blocks < total_blocks;
		ivinfo.message_level = vs.elevel;
		ivinfo.num_heap_tuples = Max(live_tuples, 0);
		ivinfo.strategy = bstrategy;
		vs.istats[i] = vac_cleanup_one_index(&ivinfo, vs.istats[i]);
		if (vs.istats[i] != NULL && !vs.istats[i]->estimated_count)
			vac_update_relstats(vs.indrels[i], vs.istats[i]->num_pages,
								vs.istats[i]->num_index_tuples, 0, false,
								InvalidTransactionId, InvalidMultiXactId,
								NULL, NULL, false);
	}

	/* 4. the oldest xid the table still holds */
	pgstat_progress_update_param(PROGRESS_VACUUM_PHASE, PROGRESS_VACUUM_PHASE_FINAL_CLEANUP);
	if (strata_tree_oldest_unfrozen(rel, tree, &oldest_unfrozen, &stubs))
	{
		new_frozen = oldest_xmin;
		if (FullTransactionIdIsValid(oldest_unfrozen) &&
			TransactionIdPrecedes(XidFromFullTransactionId(oldest_unfrozen), new_frozen))
			new_frozen = XidFromFullTransactionId(oldest_unfrozen);
		if (!TransactionIdIsNormal(new_frozen))
			new_frozen = InvalidTransactionId;
	}
	vac_update_relstats(rel, (BlockNumber) strata_tree_nblocks(strata_tree_get(rel)),
						live_tuples, 0, vs.nindexes > 0, new_frozen, new_minmulti,
						&frozen_updated, &minmulti_updated, false);
	pgstat_report_vacuum(RelationGetRelid(rel), rel->rd_rel->relisshared,
						 (PgStat_Counter) Max(live_tuples, 0), (PgStat_Counter) not_removable);

	{
		StringInfoData buf;

		initStringInfo(&buf);
		appendStringInfo(&buf, "blocks: " UINT64_FORMAT " scanned of " UINT64_FORMAT " (the rest holds only frozen rows)\n",
						 scanned_blocks, total_blocks);
		appendStringInfo(&buf, "index scans: %d\n", vs.index_scans);
		appendStringInfo(&buf, "rows: %.0f removed, %.0f remain, %.0f are dead but not yet removable\n",
						 vs.reaped, Max(live_tuples, 0), not_removable);
		appendStringInfo(&buf, "row versions: " UINT64_FORMAT " retired and " UINT64_FORMAT " frozen by compaction\n",
						 dropped, frozen);
		if (frozen_updated)
			appendStringInfo(&buf, "new relfrozenxid: %u, which is %d XIDs ahead of previous value\n",
							 new_frozen, (int32) (new_frozen - old_frozen));
		else if (!TransactionIdIsValid(new_frozen))
			appendStringInfoString(&buf, "relfrozenxid kept: some SSTable records no oldest unfrozen xid\n");
		for (int i = 0; i < vs.nindexes; i++)
			if (vs.istats[i] != NULL)
				appendStringInfo(&buf, "index \"%s\": pages: %u in total, %.0f entries removed, %.0f remain\n",
								 RelationGetRelationName(vs.indrels[i]), vs.istats[i]->num_pages,
								 vs.istats[i]->tuples_removed, vs.istats[i]->num_index_tuples);
		ereport(vs.elevel,
				(errmsg("finished vacuuming \"%s.%s.%s\": %s",
						get_database_name(MyDatabaseId),
						get_namespace_name(RelationGetNamespace(rel)),
						RelationGetRelationName(rel), buf.data)));
		pfree(buf.data);
	}

	for (int i = 0; i < vs.nindexes; i++)
		if (vs.istats[i] != NULL)
			pfree(vs.istats[i]);
	vac_close_indexes(vs.nindexes, vs.indrels, NoLock);
	pfree(vs.dead);
	pfree(vs.istats);
	pgstat_progress_end_command();
}
