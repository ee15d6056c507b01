/*
 * am_ddl.c — the callbacks that give a strata relation new storage:
 * relation_set_new_filenode (CREATE TABLE, TRUNCATE, rewrites),
 * relation_nontransactional_truncate, relation_copy_data (ALTER TABLE ...
 * SET TABLESPACE) and relation_copy_for_cluster (VACUUM FULL and CLUSTER)
 * with CLUSTER's helpers.
 *
 * Separate because these work on whole trees beside PostgreSQL's smgr
 * storage (create one, copy one into another), never on single rows under
 * a snapshot; a copy decides which rows survive with am_fetch.c's
 * strata_row_dead_to_all.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/multixact.h"
#include "catalog/storage.h"
#include "catalog/storage_xlog.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/smgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplesort.h"

#include "pg/am_internal.h"
#include "pg/publication.h"
#include "pg/read.h"
#include "pg/rowversion.h"
#include "pg/stratago.h"
#include "pg/tree.h"
#include "pg/write.h"

/* ------------------------------------------------------------------------
 * DDL
 * ------------------------------------------------------------------------
 */

/*
 * A new relfilenode (CREATE TABLE, TRUNCATE, rewrites). We create the smgr
 * main fork, empty, exactly as heap would: PostgreSQL picks relfilenodes by
 * checking which smgr files exist and drops storage through its
 * pending-delete list at commit or abort, and both must keep working for
 * strata tables.
 */
static void
create_smgr_storage(const RelFileNode *rnode, char persistence)
{
	SMgrRelation srel = RelationCreateStorage(*rnode, persistence, true);

	/* Unlogged relations need an init fork, as for heap. */
	if (persistence == RELPERSISTENCE_UNLOGGED)
	{
		smgrcreate(srel, INIT_FORKNUM, false);
		log_smgrcreate(rnode, INIT_FORKNUM);
		smgrimmedsync(srel, INIT_FORKNUM);
	}
	smgrclose(srel);
}

void
strata_relation_set_new_filenode(Relation rel, const RelFileNode *newrnode,
								 char persistence, TransactionId *freezeXid,
								 MultiXactId *minmulti)
{
	StrataTree *old = NULL;
	StrataTree *tree;

	*freezeXid = RecentXmin;
	*minmulti = GetOldestMultiXactId();
	strata_check_not_published(rel);

	/*
	 * TRUNCATE (a new relfilenode for a table that has one): the table's
	 * current tree, whose codec the new one keeps. A new relation is
	 * created with rd_node already the new one.
	 */
	if (!RelFileNodeEquals(rel->rd_node, *newrnode))
		old = strata_tree_lookup_backend(&rel->rd_node, rel->rd_backend);
	create_smgr_storage(newrnode, persistence);

	/*
	 * The smgr file exists first, so a tree without one is always stale;
	 * and an unlogged tree's init fork exists first, which is how recovery
	 * and redo know its persistence.
	 */
	tree = strata_tree_create(newrnode, rel->rd_backend, persistence);
	if (old != NULL && old->bottom_codec != STRATA_TREE_CODEC_DEFAULT)
		strata_tree_set_bottom_codec(rel, tree, (StrataTreeCodec) old->bottom_codec);
}

/*
 * TRUNCATE of a relation created (or already truncated) in the same
 * transaction: PostgreSQL keeps the relfilenode, so the tree starts over
 * under a new tree id; WAL records of the old id are skipped at replay.
 */
void
strata_relation_nontransactional_truncate(Relation rel)
{
	StrataTree *old = strata_tree_lookup_backend(&rel->rd_node, rel->rd_backend);
	StrataTreeCodec codec = old ? (StrataTreeCodec) old->bottom_codec : STRATA_TREE_CODEC_DEFAULT;
	StrataTree *tree;

	RelationTruncate(rel, 0);
	tree = strata_tree_create(&rel->rd_node, rel->rd_backend, rel->rd_rel->relpersistence);
	strata_tree_set_bottom_codec(rel, tree, codec);
}

/*
 * ALTER TABLE ... SET TABLESPACE: the relation gets a new relfilenode in
 * the other tablespace. Its smgr main fork is created there (empty, as
 * for every strata relation), the rows are copied verbatim into the new
 * relfilenode's tree, and the old storage goes through PostgreSQL's
 * pending deletes; the maintenance worker removes the old tree once its
 * main fork is gone. The engine's files stay under $PGDATA/stratago:
 * only the relation's identity moves (README, "Tablespaces").
 */
void
strata_relation_copy_data(Relation rel, const RelFileNode *newrnode)
{
	StrataTree *src = strata_tree_get(rel);
	StrataTree *dst;
	FullTransactionId oldest;

	create_smgr_storage(newrnode, rel->rd_rel->relpersistence);
	dst = strata_tree_create(newrnode, rel->rd_backend, rel->rd_rel->relpersistence);
	strata_tree_set_bottom_codec(rel, dst, (StrataTreeCodec) src->bottom_codec);
	strata_tree_copy(rel, src, rel, dst, NULL, NULL, NULL, &oldest);
	RelationDropStorage(rel);
}

typedef struct ClusterCopyState
{
	GlobalVisState *vistest;
	double		live;
	double		dead;
	double		recently_dead;
	/*
	 * CLUSTER's new order, by old row id: new row id + 1 (0: none yet),
	 * with CLUSTER_COPIED set for the rows the first pass chose to copy
	 */
	uint64	   *map;
	uint64		nmap;
	uint64		next_new;		/* next new row id to hand out */
} ClusterCopyState;

#define CLUSTER_COPIED (UINT64CONST(1) << 63)

/* Is the row gone for every snapshot? (Counts rows as heap's CLUSTER does.) */
static bool
cluster_row_dead(ClusterCopyState *cs, const StrataVersion *versions, int n)
{
	TransactionId latest = InvalidTransactionId;

	if (strata_row_dead_to_all(versions, n, cs->vistest, &latest))
	{
		cs->dead += 1;
		return true;
	}
	if (strata_resolve(versions, n, SnapshotSelf).visible)
		cs->live += 1;
	else
		cs->recently_dead += 1;
	return false;
}

/* VACUUM FULL: leave out rows no snapshot can see any more. */
static bool
cluster_skip_row(void *arg, uint64 rowid, const StrataVersion *versions, int n)
{
	return cluster_row_dead((ClusterCopyState *) arg, versions, n);
}

/* CLUSTER: copy the rows the first pass gave a place in the new order. */
static bool
cluster_skip_unmapped(void *arg, uint64 rowid, const StrataVersion *versions, int n)
{
	ClusterCopyState *cs = arg;

	return rowid >= cs->nmap || !(cs->map[rowid] & CLUSTER_COPIED);
}

/*
 * The new row id of an old one. A MOVED version may point to a row that
 * was not copied (gone for everyone): it gets a new row id no row has, so
 * following the link finds nothing, as before.
 */
static uint64
cluster_remap(void *arg, uint64 rowid)
{
	ClusterCopyState *cs = arg;

	if (rowid >= cs->nmap)
		return cs->next_new++;
	if (cs->map[rowid] == 0)
		cs->map[rowid] = ++cs->next_new;
	return (cs->map[rowid] & ~CLUSTER_COPIED) - 1;
}

/*
 * CLUSTER's first pass: sort the rows some snapshot may still see by the
 * index (their newest row data, as an index build would index them) and
 * hand out new row ids in that order; rows with no row data left (deleted
 * or moved, still visible to old snapshots) come last.
 */
static void
cluster_plan_order(Relation OldTable, Relation OldIndex, StrataTree *tree,
				   ClusterCopyState *cs)
{
	Tuplesortstate *ts = tuplesort_begin_cluster(RelationGetDescr(OldTable), OldIndex,
												 maintenance_work_mem, NULL, TUPLESORT_NONE);
	StrataTreeScan *scan = strata_tree_scan_begin(OldTable, tree, true);
	uint64	   *tail = NULL;
	uint64		ntail = 0;
	uint64		captail = 0;
	uint64		rowid;
	StrataVersion *versions;
	int			n;
	HeapTuple	tup;

	cs->nmap = tree->next_rowid;
	cs->map = palloc_extended(sizeof(uint64) * Max(cs->nmap, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	while (strata_tree_scan_next(scan, &rowid, &versions, &n))
	{
		int			data = -1;
		ItemPointerData tid;

		CHECK_FOR_INTERRUPTS();
		if (rowid >= cs->nmap || cluster_row_dead(cs, versions, n))
			continue;
		for (int i = 0; i < n && data < 0; i++)
			if (versions[i].kind == STRATA_DATA &&
				strata_writer_state(&versions[i]) != STRATA_WRITER_ABORTED)
				data = i;
		if (data < 0)
		{
			if (ntail == captail)
			{
				captail = captail ? captail * 2 : 1024;
				tail = tail ? repalloc_huge(tail, sizeof(uint64) * captail)
					: palloc(sizeof(uint64) * captail);
			}
			tail[ntail++] = rowid;
			continue;
		}
		strata_rowid_to_tid(rowid, &tid);
		tup = strata_version_to_heap(&versions[data], &tid, RelationGetRelid(OldTable));
		tuplesort_putheaptuple(ts, tup);
		heap_freetuple(tup);
	}
	strata_tree_scan_end(scan);

	tuplesort_performsort(ts);
	while ((tup = tuplesort_getheaptuple(ts, true)) != NULL)
	{
		CHECK_FOR_INTERRUPTS();
		if (strata_tid_to_rowid(&tup->t_self, &rowid))
			cs->map[rowid] = ++cs->next_new | CLUSTER_COPIED;
	}
	tuplesort_end(ts);
	for (uint64 i = 0; i < ntail; i++)
		cs->map[tail[i]] = ++cs->next_new | CLUSTER_COPIED;
	if (tail)
		pfree(tail);
}

/*
 * VACUUM FULL and CLUSTER: copy every row some snapshot may still see
 * into the new relfilenode's tree, with all its versions as they are
 * (MVCC unchanged, as heap copies recently dead tuples). VACUUM FULL keeps
 * the row ids; CLUSTER gives the rows new ones in the index's order, so
 * the tree (sorted by row id) stores them in that order, and rewrites the
 * TIDs MOVED versions point to. The new relfrozenxid is the oldest
 * unfrozen writer copied, if older than the cutoff cluster.c chose.
 */
void
strata_relation_copy_for_cluster(Relation OldTable, Relation NewTable,
								 Relation OldIndex, bool use_sort,
								 TransactionId OldestXmin,
								 TransactionId *xid_cutoff,
								 MultiXactId *multi_cutoff,
								 double *num_tuples,
								 double *tups_vacuumed,
								 double *tups_recently_dead)
{
	ClusterCopyState cs;
	FullTransactionId oldest;
	StrataTree *src = strata_tree_get(OldTable);

	/* VACUUM FULL and CLUSTER: the new tree keeps the table's codec */
	strata_tree_set_bottom_codec(NewTable, strata_tree_get(NewTable),
								 (StrataTreeCodec) src->bottom_codec);
	memset(&cs, 0, sizeof(cs));
	cs.vistest = GlobalVisTestFor(OldTable);
	if (OldIndex != NULL)
	{
		StrataTree *dst = strata_tree_get(NewTable);

		cluster_plan_order(OldTable, OldIndex, src, &cs);
		strata_tree_copy(OldTable, src, NewTable, dst,
						 cluster_skip_unmapped, cluster_remap, &cs, &oldest);
		pfree(cs.map);
		/* every new row id, dangling MOVED targets included, is used */
		LWLockAcquire(&dst->lock, LW_EXCLUSIVE);
		dst->next_rowid = Max(dst->next_rowid, cs.next_new);
		LWLockRelease(&dst->lock);
	}
	else
		strata_tree_copy(OldTable, src, NewTable, strata_tree_get(NewTable),
						 cluster_skip_row, NULL, &cs, &oldest);
	if (FullTransactionIdIsValid(oldest) &&
		TransactionIdPrecedes(XidFromFullTransactionId(oldest), *xid_cutoff))
		*xid_cutoff = XidFromFullTransactionId(oldest);
	*num_tuples = cs.live;
	*tups_vacuumed = cs.dead;
	*tups_recently_dead = cs.recently_dead;
}
