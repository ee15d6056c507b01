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
 * after CREATE TABLE), through a restore, or through the sql_drop event
 * trigger that forgets dropped tables. A deferred constraint trigger on
 * the table applies the row to the tree when the transaction commits, so
 * a rolled-back choice never reaches the files. Commands that give a
 * table a new tree (TRUNCATE, VACUUM FULL, CLUSTER, ALTER TABLE rewrites
 * and SET TABLESPACE, REFRESH MATERIALIZED VIEW) are followed by a resync
 * of every row (strata_compression_resync), so the new tree has the
 * choice too. A crash between the trigger's apply and the commit record
 * can leave a tree with a choice its row no longer has (only the codec of
 * later compactions depends on it); the next resync mends it.
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
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
apply_to_table(Oid relid, StrataTreeCodec codec)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);

	if (rel == NULL)
		return;					/* dropped: its row goes with the drop */
	if (!strata_relation_is_strata(rel))
	{
		relation_close(rel, AccessShareLock);
		return;
	}
	strata_tree_set_bottom_codec(rel, strata_tree_get(rel), codec);
	relation_close(rel, AccessShareLock);
}

/* The codec relid's row names now (DEFAULT: no row). REQUIRES: SPI connected. */
static StrataTreeCodec
recorded_codec(Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1] = {ObjectIdGetDatum(relid)};
	StrataTreeCodec codec = STRATA_TREE_CODEC_DEFAULT;

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

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "stratago: SPI_connect failed");
	codec = recorded_codec(relid);
	SPI_finish();
	apply_to_table(relid, codec);

	/* an UPDATE that renamed the table in the row: the old one loses its choice */
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		Oid			old_relid = DatumGetObjectId(heap_getattr(trigdata->tg_trigtuple, 1,
															  trigdata->tg_relation->rd_att,
															  &isnull));

		if (!isnull && old_relid != relid)
		{
			if (SPI_connect() != SPI_OK_CONNECT)
				elog(ERROR, "stratago: SPI_connect failed");
			codec = recorded_codec(old_relid);
			SPI_finish();
			apply_to_table(old_relid, codec);
		}
	}
	return PointerGetDatum(NULL);
}

/*
 * Record codec as relid's choice in stratago.compression (DEFAULT deletes
 * the row), as the table's owner may though the configuration table is
 * the extension's: the row is written with the configuration table
 * owner's rights, as PostgreSQL's foreign-key triggers run their queries.
 * The deferred trigger applies it at commit. REQUIRES: the caller checked
 * that relid is a strata table the current user owns.
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

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(relation_owner(table),
						   save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_NOFORCE_RLS);
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
 * Give every table with a row in stratago.compression its codec again,
 * where its tree lacks it: after the commands that give tables new trees.
 */
static void
resync_all(void)
{
	if (!OidIsValid(compression_table_oid()))
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "stratago: SPI_connect failed");
	if (SPI_execute("SELECT relation::pg_catalog.oid, codec FROM "
					COMPRESSION_SCHEMA "." COMPRESSION_TABLE, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "stratago: could not read %s.%s", COMPRESSION_SCHEMA, COMPRESSION_TABLE);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1, &isnull));
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		StrataTreeCodec codec;

		if (isnull || name == NULL || !strata_tree_codec_parse(name, &codec))
			continue;
		apply_to_table(relid, codec);
	}
	SPI_finish();
}

void
strata_compression_after_utility(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_CreateStmt:
			if (strata_new_table_compression != STRATA_TREE_CODEC_DEFAULT)
				record_new_table(((CreateStmt *) parsetree)->relation);
			break;
		case T_CreateTableAsStmt:
			if (strata_new_table_compression != STRATA_TREE_CODEC_DEFAULT)
				record_new_table(((CreateTableAsStmt *) parsetree)->into->rel);
			break;
		case T_VacuumStmt:
			{
				ListCell   *lc;

				/* only VACUUM FULL gives tables new trees */
				foreach(lc, ((VacuumStmt *) parsetree)->options)
					if (strcmp(lfirst_node(DefElem, lc)->defname, "full") == 0 &&
						defGetBoolean(lfirst_node(DefElem, lc)))
						resync_all();
				break;
			}
		case T_TruncateStmt:
		case T_AlterTableStmt:
		case T_AlterTableMoveAllStmt:
		case T_ClusterStmt:
		case T_RefreshMatViewStmt:
			resync_all();
			break;
		default:
			break;
	}
}
