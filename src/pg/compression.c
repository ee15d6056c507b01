/*
 * compression.c — a strata table's own choice of bottom-level codec, as
 * users set it and as pg_dump carries it.
 *
 * PostgreSQL 15 gives a table access method no options of its own, so
 * the choice lives in two places:
 *
 *   stratago.compression   the extension's configuration table (relation
 *                          regclass, codec text): transactional, dumped by
 *                          pg_dump (pg_extension_config_dump) and restored
 *                          with the tables; the source of truth;
 *   the tree's OPTIONS     what the maintenance worker and recovery read
 *                          (treeopts.c), WAL-logged for standbys.
 *
 * A row changes through stratago.set_compression(), through
 * stratago.compression (a new table's choice, recorded by the utility hook
 * after CREATE TABLE), through a restore, or through the object access
 * hook that forgets dropped tables. A deferred constraint trigger on
 * the table applies the row to the tree when the transaction commits, so
 * a rolled-back choice never reaches the files.
 *
 * A table given a new tree keeps its codec without the configuration
 * table being read (DDL must not need its privileges or show its locks):
 * TRUNCATE, VACUUM FULL, CLUSTER and SET TABLESPACE copy it from the old
 * tree in am_ddl.c; ALTER TABLE rewrites and REFRESH MATERIALIZED VIEW,
 * which build a new table and swap it in, have it saved before the
 * command and given back after it (strata_compression_before_utility),
 * by catalog lookups, never waiting for a table another session holds
 * (isolation spec strata-compression-resync).
 *
 * A crash between the trigger's apply and the commit record can leave a
 * tree with a choice the table's row does not have (only the codec of
 * later compactions depends on it) until the choice is set again.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "commands/defrem.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "pg/compression.h"
#include "pg/stratago.h"
#include "pg/tree.h"
#include "pg/treeopts.h"
#include "pg/write.h"

#define COMPRESSION_SCHEMA	"stratago"
#define COMPRESSION_TABLE	"compression"

PG_FUNCTION_INFO_V1(stratago_compression_sync);

static object_access_hook_type prev_object_access_hook = NULL;

/* The owner of relation relid (which exists). */
static Oid
relation_owner(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	return owner;
}

/* The configuration table of this database, or InvalidOid without the extension. */
static Oid
compression_table_oid(void)
{
	Oid			nsp = get_namespace_oid(COMPRESSION_SCHEMA, true);

	return OidIsValid(nsp) ? get_relname_relid(COMPRESSION_TABLE, nsp) : InvalidOid;
}

/*
 * Apply codec to relid's tree if relid is (still) a strata table. Anything
 * else is passed over quietly: set_compression() checks its argument, and
 * a row restored for a table that has since become heap (ALTER TABLE SET
 * ACCESS METHOD) or is gone must not make a restore fail.
 */
static void
apply_to_table(Oid relid, StrataTreeCodec codec, bool wait)
{
	Relation	rel;

	/*
	 * Giving a codec back after a command (!wait) does not wait for a
	 * table another session holds: the tables saved are the command's
	 * own, which this session locked; one it does not hold any more is
	 * not its business, and waiting could deadlock.
	 */
	if (!wait && !ConditionalLockRelationOid(relid, AccessShareLock))
		return;
	rel = try_relation_open(relid, wait ? AccessShareLock : NoLock);
	if (rel == NULL)
	{
		if (!wait)
			UnlockRelationOid(relid, AccessShareLock);
		return;					/* dropped: its row goes with the drop */
	}
	if (!strata_relation_is_strata(rel))
	{
		relation_close(rel, AccessShareLock);
		return;
	}
	strata_tree_set_bottom_codec(rel, strata_tree_get(rel), codec);
	relation_close(rel, AccessShareLock);
}

/*
 * Run the configuration table's queries with its owner's rights, as
 * PostgreSQL's foreign-key triggers run theirs: a table's owner may set
 * its codec without any privilege on the extension's schema or table.
 */
static void
become_config_owner(Oid table, Oid *save_userid, int *save_sec_context)
{
	GetUserIdAndSecContext(save_userid, save_sec_context);
	SetUserIdAndSecContext(relation_owner(table),
						   *save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);
}

/* The codec relid's row in table names now (DEFAULT: no row). */
static StrataTreeCodec
recorded_codec(Oid table, Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};
	StrataTreeCodec codec = STRATA_TREE_CODEC_DEFAULT;
	Oid			save_userid;
	int			save_sec_context;

	become_config_owner(table, &save_userid, &save_sec_context);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "stratago: SPI_connect failed");
	if (SPI_execute_with_args("SELECT codec FROM " COMPRESSION_SCHEMA "." COMPRESSION_TABLE
							  " WHERE relation = $1::pg_catalog.oid",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "stratago: could not read %s.%s", COMPRESSION_SCHEMA, COMPRESSION_TABLE);
	if (SPI_processed > 0)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (name == NULL || !strata_tree_codec_parse(name, &codec))
			codec = STRATA_TREE_CODEC_DEFAULT;
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return codec;
}

/*
 * The deferred trigger on stratago.compression: at commit, the table the
 * changed row names gets the codec its row names then (the last change
 * of the transaction wins, however many fired).
 */
Datum
stratago_compression_sync(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	row;
	bool		isnull;
	Oid			relid;
	StrataTreeCodec codec;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event))
		elog(ERROR, "stratago_compression_sync: must be fired after each row");
	row = TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ? trigdata->tg_trigtuple
		: (trigdata->tg_newtuple != NULL ? trigdata->tg_newtuple : trigdata->tg_trigtuple);
	relid = DatumGetObjectId(heap_getattr(row, 1, trigdata->tg_relation->rd_att, &isnull));
	if (isnull)
		return PointerGetDatum(NULL);

	codec = recorded_codec(RelationGetRelid(trigdata->tg_relation), relid);
	apply_to_table(relid, codec, true);

	/* an UPDATE that renamed the table in the row: the old one loses its choice */
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		Oid			old_relid = DatumGetObjectId(heap_getattr(trigdata->tg_trigtuple, 1,
															  trigdata->tg_relation->rd_att,
															  &isnull));

		if (!isnull && old_relid != relid)
			apply_to_table(old_relid,
						   recorded_codec(RelationGetRelid(trigdata->tg_relation), old_relid),
						   true);
	}
	return PointerGetDatum(NULL);
}

/*
 * Record codec as relid's choice in stratago.compression (DEFAULT deletes
 * the row), with the configuration table owner's rights. The deferred
 * trigger applies it at commit. REQUIRES: the caller checked that relid
 * is a strata table the current user owns.
 */
void
strata_compression_record(Oid relid, StrataTreeCodec codec)
{
	Oid			table = compression_table_oid();
	Oid			save_userid;
	int			save_sec_context;
	Oid			argtypes[2] = {OIDOID, TEXTOID};
	Datum		args[2];
	int			rc;

	if (!OidIsValid(table))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s.%s\" does not exist", COMPRESSION_SCHEMA, COMPRESSION_TABLE),
				 errhint("Create or update the extension stratago in this database.")));
	args[0] = ObjectIdGetDatum(relid);
	args[1] = CStringGetTextDatum(strata_tree_codec_name(codec));

	become_config_owner(table, &save_userid, &save_sec_context);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "stratago: SPI_connect failed");
	if (codec == STRATA_TREE_CODEC_DEFAULT)
		rc = SPI_execute_with_args("DELETE FROM " COMPRESSION_SCHEMA "." COMPRESSION_TABLE
								   " WHERE relation = $1::pg_catalog.oid",
								   1, argtypes, args, NULL, false, 0);
	else
		rc = SPI_execute_with_args("INSERT INTO " COMPRESSION_SCHEMA "." COMPRESSION_TABLE
								   " VALUES ($1::pg_catalog.oid::pg_catalog.regclass, $2)"
								   " ON CONFLICT (relation) DO UPDATE SET codec = excluded.codec",
								   2, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_DELETE && rc != SPI_OK_INSERT)
		elog(ERROR, "stratago: could not write %s.%s", COMPRESSION_SCHEMA, COMPRESSION_TABLE);
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
}

/*
 * After CREATE TABLE (... AS): with stratago.compression set, a new strata
 * table gets it as its own choice, recorded like set_compression's so
 * that pg_dump carries it; a temporary table (never dumped) only in its
 * tree.
 */
static void
record_new_table(RangeVar *rv)
{
	Oid			relid = RangeVarGetRelid(rv, NoLock, true);
	Relation	rel;
	bool		temp;

	if (!OidIsValid(relid))
		return;
	rel = try_relation_open(relid, AccessShareLock);
	if (rel == NULL)
		return;
	if (!strata_relation_is_strata(rel))
	{
		relation_close(rel, AccessShareLock);
		return;
	}
	temp = rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP;
	if (temp)
		strata_tree_set_bottom_codec(rel, strata_tree_get(rel),
									 (StrataTreeCodec) strata_new_table_compression);
	relation_close(rel, AccessShareLock);
	if (!temp)
		strata_compression_record(relid, (StrataTreeCodec) strata_new_table_compression);
}

/*
 * The codec of relid's current tree (by its catalog row as this
 * transaction sees it: a rewrite of its own, or committed ones), or -1
 * when it has no tree. Read without locking the table: a catalog lookup.
 */
static int
current_tree_codec(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class form;
	RelFileNode rnode;
	BackendId	backend;
	StrataTree *tree;

	if (!HeapTupleIsValid(tuple))
		return -1;
	form = (Form_pg_class) GETSTRUCT(tuple);
	rnode.spcNode = OidIsValid(form->reltablespace) ? form->reltablespace : MyDatabaseTableSpace;
	rnode.dbNode = MyDatabaseId;
	rnode.relNode = form->relfilenode;
	backend = form->relpersistence == RELPERSISTENCE_TEMP ? BackendIdForTempRelations() : InvalidBackendId;
	ReleaseSysCache(tuple);
	tree = strata_tree_lookup_backend(&rnode, backend);
	return tree != NULL ? (int) tree->bottom_codec : -1;
}

/* A table's codec, saved before a command that may give it a new tree. */
typedef struct SavedCodec
{
	Oid			relid;
	StrataTreeCodec codec;
} SavedCodec;

/* Save the own codecs of relid and of every table inheriting from it. */
static List *
save_codecs(Oid relid)
{
	List	   *saved = NIL;
	ListCell   *lc;

	if (!OidIsValid(relid))
		return NIL;
	foreach(lc, find_all_inheritors(relid, NoLock, NULL))
	{
		int			codec = current_tree_codec(lfirst_oid(lc));

		if (codec > (int) STRATA_TREE_CODEC_DEFAULT)
		{
			SavedCodec *sc = palloc(sizeof(SavedCodec));

			sc->relid = lfirst_oid(lc);
			sc->codec = (StrataTreeCodec) codec;
			saved = lappend(saved, sc);
		}
	}
	return saved;
}

/*
 * Before a utility command: the own codecs of the tables it may give new
 * trees without the table access method seeing old and new together
 * (ALTER TABLE rewrites build a new table and swap it in, as REFRESH
 * MATERIALIZED VIEW does; TRUNCATE, VACUUM FULL, CLUSTER and SET
 * TABLESPACE carry the codec over in am_ddl.c). NIL: nothing to keep.
 */
List *
strata_compression_before_utility(Node *parsetree)
{
	if (IsA(parsetree, AlterTableStmt))
		return save_codecs(RangeVarGetRelid(((AlterTableStmt *) parsetree)->relation,
											NoLock, true));
	if (IsA(parsetree, RefreshMatViewStmt))
		return save_codecs(RangeVarGetRelid(((RefreshMatViewStmt *) parsetree)->relation,
											NoLock, true));
	return NIL;
}

void
strata_compression_after_utility(Node *parsetree, List *saved)
{
	ListCell   *lc;

	if (IsA(parsetree, CreateStmt) &&
		strata_new_table_compression != STRATA_TREE_CODEC_DEFAULT)
		record_new_table(((CreateStmt *) parsetree)->relation);
	else if (IsA(parsetree, CreateTableAsStmt) &&
			 strata_new_table_compression != STRATA_TREE_CODEC_DEFAULT)
		record_new_table(((CreateTableAsStmt *) parsetree)->into->rel);

	/* a table given a new tree gets its codec back */
	foreach(lc, saved)
	{
		SavedCodec *sc = lfirst(lc);
		int			now = current_tree_codec(sc->relid);

		if (now >= 0 && now != (int) sc->codec)
			apply_to_table(sc->relid, sc->codec, false);
	}
}

/* Is relid a permanent or unlogged strata table or materialized view? */
static bool
is_strata_relid(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Form_pg_class form;
	bool		result;

	if (!HeapTupleIsValid(tuple))
		return false;
	form = (Form_pg_class) GETSTRUCT(tuple);
	result = (form->relkind == RELKIND_RELATION || form->relkind == RELKIND_MATVIEW) &&
		form->relpersistence != RELPERSISTENCE_TEMP &&
		OidIsValid(form->relam) && form->relam == get_am_oid("strata", true);
	ReleaseSysCache(tuple);
	return result;
}

/*
 * A strata table is being dropped: its row in stratago.compression goes
 * with it, or a later table given the same OID would inherit the choice
 * and pg_dump would carry a row naming no table. Deleted directly (no
 * trigger to fire: the tree goes too), and the configuration table's lock
 * released at once, as PostgreSQL's own catalog updates do, so that a
 * DROP shows no lock on it.
 */
static void
forget_dropped_table(Oid relid)
{
	Oid			table;
	Relation	crel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;

	if (!is_strata_relid(relid))
		return;
	table = compression_table_oid();
	if (!OidIsValid(table))
		return;					/* no extension here, or dropped with it */
	crel = table_open(table, RowExclusiveLock);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(crel, InvalidOid, false, NULL, 1, &key);
	while (HeapTupleIsValid(tuple = systable_getnext(scan)))
		simple_heap_delete(crel, &tuple->t_self);
	systable_endscan(scan);
	table_close(crel, RowExclusiveLock);
}

static void
compression_object_access(ObjectAccessType access, Oid classId, Oid objectId,
						  int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_DROP && classId == RelationRelationId && subId == 0)
		forget_dropped_table(objectId);
}

void
strata_compression_init(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = compression_object_access;
}
