/*
 * dbcopy.c — copies of strata trees for CREATE DATABASE ... TEMPLATE and
 * ALTER DATABASE ... SET TABLESPACE. PostgreSQL copies a database's smgr
 * files (block by block with STRATEGY WAL_LOG, as directories with
 * FILE_COPY and for a move); a strata table's rows are in its tree under
 * $PGDATA/stratago, keyed by the relation's RelFileNode, which neither
 * copy sees. So every tree of the source gets a new tree for the
 * destination's RelFileNode (same relfilenode number, the destination
 * database, the source's default tablespace mapped to the destination's),
 * filled verbatim through the write path (doc/DESIGN.md §5.2).
 *
 * When: after PostgreSQL's files exist at the destination and before the
 * transaction commits. Before would be wrong twice: the maintenance
 * worker sweeps a tree whose relation has no main fork (flush.c,
 * strata_sweep_dropped), and a standby replaying our records ahead of
 * PostgreSQL's copy would sweep them the same way. So CREATE DATABASE
 * copies once createdb() has returned (utility.c calls
 * strata_copy_database_trees), with its own cleanup on error since
 * createdb's is over; a move copies in the object access hook movedb()
 * calls after its copy and before its commit, inside movedb's cleanup.
 *
 * The source cannot change meanwhile: both commands hold a lock on the
 * source database that keeps every session (and autovacuum) out of it,
 * and refuse to start while one is connected or a prepared transaction
 * belongs to it. Flushes and compactions of its trees by the worker do not
 * matter: a scan reads a pinned version.
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xloginsert.h"
#include "access/xlogutils.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_database.h"
#include "catalog/pg_tablespace.h"
#include "commands/dbcommands_xlog.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/ipc.h"
#include "storage/md.h"
#include "utils/syscache.h"

#include "pg/dbcopy.h"
#include "pg/stratago.h"
#include "pg/tree.h"
#include "pg/write.h"

/* A tree of the source database, as the registry named it. */
typedef struct SourceTree
{
	RelFileNode node;
	uint64		tree_id;
	char		persistence;
} SourceTree;

typedef struct SourceTrees
{
	Oid			db;
	SourceTree *trees;
	int			n;
	int			cap;
} SourceTrees;

/* The move announced by utility.c (strata_database_move_expect). */
static Oid	move_db = InvalidOid;
static Oid	move_from = InvalidOid;
static Oid	move_to = InvalidOid;

static object_access_hook_type prev_object_access_hook = NULL;

static bool
collect_source_tree(StrataTree *tree, void *arg)
{
	SourceTrees *src = (SourceTrees *) arg;

	/* temporary relations are not copied, as heap's are not */
	if (tree->key.node.dbNode != src->db || tree->key.backend != InvalidBackendId)
		return true;
	if (src->n == src->cap)
	{
		/* repalloc under the registry lock: an ERROR releases it */
		src->cap = src->cap == 0 ? 64 : src->cap * 2;
		src->trees = src->trees == NULL
			? palloc(sizeof(SourceTree) * src->cap)
			: repalloc(src->trees, sizeof(SourceTree) * src->cap);
	}
	src->trees[src->n].node = tree->key.node;
	src->trees[src->n].tree_id = tree->tree_id;
	src->trees[src->n].persistence = tree->persistence;
	src->n++;
	return true;
}

/* Whether PostgreSQL's files of relfilenode node exist (main or init fork). */
static bool
smgr_files_exist(const RelFileNode *node)
{
	ForkNumber	forks[] = {MAIN_FORKNUM, INIT_FORKNUM};
	bool		exists = false;

	for (int i = 0; i < lengthof(forks) && !exists; i++)
	{
		char	   *path = relpathperm(*node, forks[i]);
		struct stat st;

		exists = stat(path, &st) == 0 || errno != ENOENT;
		pfree(path);
	}
	return exists;
}

/* A relation entry enough for the write path: a redo-style fake one. */
static Relation
tree_relation(const RelFileNode *node, char persistence)
{
	Relation	rel = CreateFakeRelcacheEntry(*node);

	rel->rd_rel->relpersistence = persistence;
	return rel;
}

/*
 * Copy every tree of src_db whose relation PostgreSQL copied: a tree under
 * tablespace src_default goes to dst_default, the others stay in theirs.
 * Returns how many trees were copied.
 */
static int
copy_trees(Oid src_db, Oid src_default, Oid dst_db, Oid dst_default)
{
	SourceTrees src = {0};
	int			copied = 0;

	src.db = src_db;
	strata_registry_foreach(collect_source_tree, &src);
	for (int i = 0; i < src.n; i++)
	{
		SourceTree *s = &src.trees[i];
		RelFileNode dst_node = s->node;
		Relation	src_rel;
		Relation	dst_rel;
		StrataTree *src_tree;
		StrataTree *dst_tree;
		FullTransactionId oldest;

		CHECK_FOR_INTERRUPTS();
		dst_node.dbNode = dst_db;
		if (s->node.spcNode == src_default)
			dst_node.spcNode = dst_default;
		if (RelFileNodeEquals(dst_node, s->node))
			continue;			/* a move leaves other tablespaces alone */

		/*
		 * A tree whose files PostgreSQL did not copy is not a relation of
		 * the source any more (dropped, its files awaiting a checkpoint).
		 */
		if (!smgr_files_exist(&s->node) || !smgr_files_exist(&dst_node))
			continue;

		src_rel = tree_relation(&s->node, s->persistence);
		dst_rel = tree_relation(&dst_node, s->persistence);
		src_tree = strata_tree_get(src_rel);	/* ERROR if damaged */
		if (src_tree->tree_id != s->tree_id)
			elog(ERROR, "stratago: the tree of relfilenode %u/%u/%u changed while its database was being copied",
				 s->node.spcNode, s->node.dbNode, s->node.relNode);
		dst_tree = strata_tree_create(&dst_node, InvalidBackendId, s->persistence);
		strata_tree_set_bottom_codec(dst_rel, dst_tree, (StrataTreeCodec) src_tree->bottom_codec);
		strata_tree_copy(src_rel, src_tree, dst_rel, dst_tree, NULL, NULL, NULL, &oldest);
		FreeFakeRelcacheEntry(src_rel);
		FreeFakeRelcacheEntry(dst_rel);
		copied++;
	}
	if (src.trees != NULL)
		pfree(src.trees);
	return copied;
}

/* db's default tablespace; InvalidOid if db is gone. */
static Oid
database_tablespace(Oid db)
{
	HeapTuple	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(db));
	Oid			spc;

	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	spc = ((Form_pg_database) GETSTRUCT(tuple))->dattablespace;
	ReleaseSysCache(tuple);
	return spc;
}

/*
 * After a failed copy: remove the new database's files as createdb's own
 * failure cleanup does (its buffers and pending syncs first, then its
 * directory in every tablespace, logged for standbys), so nothing of it
 * stays on disk; the maintenance worker then sweeps the trees made for it,
 * whose relations' files are gone. Runs in the error's context, as
 * createdb's cleanup does.
 */
static void
remove_new_database_files(int code, Datum arg)
{
	Oid			db = DatumGetObjectId(arg);
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid		   *removed = palloc(sizeof(Oid) * 1);
	int			nremoved = 0;
	int			cap = 1;

	DropDatabaseBuffers(db);
	ForgetDatabaseSyncRequests(db);

	rel = table_open(TableSpaceRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while ((tuple = systable_getnext(scan)) != NULL)
	{
		Oid			spc = ((Form_pg_tablespace) GETSTRUCT(tuple))->oid;
		char	   *path;
		struct stat st;

		if (spc == GLOBALTABLESPACE_OID)
			continue;
		path = GetDatabasePath(db, spc);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
		{
			if (!rmtree(path, true))
				ereport(WARNING,
						(errmsg("some useless files may be left behind in directory \"%s\"", path)));
			if (nremoved == cap)
				removed = repalloc(removed, sizeof(Oid) * (cap *= 2));
			removed[nremoved++] = spc;
		}
		pfree(path);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (nremoved > 0)
	{
		xl_dbase_drop_rec xlrec;

		xlrec.db_id = db;
		xlrec.ntablespaces = nremoved;
		XLogBeginInsert();
		XLogRegisterData((char *) &xlrec, MinSizeOfDbaseDropRec);
		XLogRegisterData((char *) removed, nremoved * sizeof(Oid));
		(void) XLogInsert(RM_DBASE_ID, XLOG_DBASE_DROP | XLR_SPECIAL_REL_UPDATE);
	}
	pfree(removed);
}

void
strata_copy_database_trees(Oid src_db, Oid dst_db)
{
	PG_ENSURE_ERROR_CLEANUP(remove_new_database_files, ObjectIdGetDatum(dst_db));
	{
		Oid			src_default = database_tablespace(src_db);
		Oid			dst_default = database_tablespace(dst_db);
		int			n;

		/* both exist: createdb() holds a lock on the one, made the other */
		if (!OidIsValid(src_default) || !OidIsValid(dst_default))
			elog(ERROR, "stratago: database %u or %u is missing after CREATE DATABASE",
				 src_db, dst_db);
		n = copy_trees(src_db, src_default, dst_db, dst_default);

		if (n > 0)
			ereport(DEBUG1,
					(errmsg_internal("stratago: copied %d strata trees into database %u", n, dst_db)));
	}
	PG_END_ENSURE_ERROR_CLEANUP(remove_new_database_files, ObjectIdGetDatum(dst_db));
}

void
strata_database_move_expect(Oid db, Oid new_tablespace)
{
	move_from = database_tablespace(db);
	move_to = new_tablespace;
	/* a database dropped meanwhile: movedb() reports it */
	move_db = OidIsValid(move_from) ? db : InvalidOid;
}

void
strata_database_move_done(void)
{
	move_db = InvalidOid;
}

/*
 * movedb() calls the post-alter hook of the database once its files are
 * copied into the new tablespace and pg_database says so, before its
 * checkpoint and commit; an ERROR here runs movedb's own cleanup, which
 * removes the copy (and so, through the sweep, the trees made here).
 */
static void
dbcopy_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					 int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_POST_ALTER && classId == DatabaseRelationId &&
		OidIsValid(move_db) && objectId == move_db)
	{
		Oid			db = move_db;

		move_db = InvalidOid;	/* once */
		(void) copy_trees(db, move_from, db, move_to);
	}
}

void
strata_dbcopy_init(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = dbcopy_object_access;
}
