/*
 * utility.c — stratago's ProcessUtility hook. It watches the commands
 * that take strata rows somewhere the table access method is not asked
 * about:
 *
 *   CREATE/ALTER PUBLICATION         checked once done: with the engine
 *                                    WAL sink a publication covering a
 *                                    strata table is refused
 *                                    (publication.c);
 *   CREATE DATABASE ... TEMPLATE t   copies t's smgr files only; once
 *                                    createdb() is done, dbcopy.c copies
 *                                    t's trees into the new database;
 *   ALTER DATABASE d SET TABLESPACE  moves d's smgr files, which changes
 *                                    the RelFileNode (the trees' key) of
 *                                    every table in d's default
 *                                    tablespace: dbcopy.c is told before
 *                                    movedb() runs, and copies the trees
 *                                    from inside it.
 *
 * Around every command it also lets compression.c follow: a new table
 * gets stratago.compression, and tables that ALTER TABLE or REFRESH
 * MATERIALIZED VIEW rebuild keep their codec.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_publication.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/tablespace.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/rel.h"

#include "pg/compression.h"
#include "pg/dbcopy.h"
#include "pg/publication.h"
#include "pg/stratago.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

/* The value of option `name` in a list of DefElem, or NULL. */
static char *
defelem_string(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *d = lfirst_node(DefElem, lc);

		if (strcmp(d->defname, name) == 0 && d->arg != NULL)
			return defGetString(d);
	}
	return NULL;
}

/*
 * The database CREATE DATABASE copies: its TEMPLATE, else template1 (as
 * createdb() chooses).
 */
static Oid
createdb_template(CreatedbStmt *stmt)
{
	char	   *template = defelem_string(stmt->options, "template");

	return get_database_oid(template != NULL ? template : "template1", true);
}

/*
 * ALTER DATABASE d SET TABLESPACE t: tell dbcopy.c which trees the move
 * concerns, before movedb() runs (it copies them from inside).
 */
static void
expect_database_move(AlterDatabaseStmt *stmt)
{
	char	   *spcname = defelem_string(stmt->options, "tablespace");
	Oid			db;
	Oid			to;

	if (spcname == NULL)
		return;
	db = get_database_oid(stmt->dbname, true);
	to = get_tablespace_oid(spcname, true);
	if (OidIsValid(db) && OidIsValid(to))	/* else movedb() reports it */
		strata_database_move_expect(db, to);
}

/*
 * ERROR if publication pubname covers a strata table it may not
 * (publication.h), once CREATE/ALTER PUBLICATION has run (the ERROR undoes
 * the command).
 */
static void
check_publication(const char *pubname)
{
	Publication *pub;
	List	   *relids;
	ListCell   *lc;

	if (strata_wal_sink != STRATA_SINK_ENGINE)
		return;					/* any may (publication.c) */
	CommandCounterIncrement();	/* see what the command just did */
	pub = GetPublicationByName(pubname, true);
	if (pub == NULL)
		return;
	if (pub->alltables)
		relids = GetAllTablesPublicationRelations(false);
	else
		relids = list_concat(GetPublicationRelations(pub->oid, PUBLICATION_PART_ALL),
							 GetAllSchemaPublicationRelations(pub->oid, PUBLICATION_PART_ALL));
	foreach(lc, relids)
	{
		Relation	rel = try_relation_open(lfirst_oid(lc), AccessShareLock);

		if (rel == NULL)
			continue;
		if (strata_relation_is_strata(rel))
			strata_check_publishable(RelationGetRelationName(rel), pubname);
		relation_close(rel, AccessShareLock);
	}
}

static void
run_utility(PlannedStmt *pstmt, const char *queryString,
			bool readOnlyTree, ProcessUtilityContext context,
			ParamListInfo params, QueryEnvironment *queryEnv,
			DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

/* ALTER DATABASE, with dbcopy.c told of a move of tablespace throughout. */
static void
run_database_move(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree, ProcessUtilityContext context,
				  ParamListInfo params, QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	PG_TRY();
	{
		expect_database_move((AlterDatabaseStmt *) pstmt->utilityStmt);
		run_utility(pstmt, queryString, readOnlyTree, context, params,
					queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		strata_database_move_done();
		PG_RE_THROW();
	}
	PG_END_TRY();
	strata_database_move_done();
}

static void
strata_process_utility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	char	   *pubname = NULL;
	Oid			template = InvalidOid;
	List	   *codecs;

	if (IsA(parsetree, CreatedbStmt))
		template = createdb_template((CreatedbStmt *) parsetree);
	codecs = strata_compression_before_utility(parsetree);
	if (IsA(parsetree, CreatePublicationStmt))
		pubname = pstrdup(((CreatePublicationStmt *) parsetree)->pubname);
	else if (IsA(parsetree, AlterPublicationStmt))
		pubname = pstrdup(((AlterPublicationStmt *) parsetree)->pubname);

	if (IsA(parsetree, AlterDatabaseStmt))
		run_database_move(pstmt, queryString, readOnlyTree, context, params,
						  queryEnv, dest, qc);
	else
		run_utility(pstmt, queryString, readOnlyTree, context, params,
					queryEnv, dest, qc);

	if (OidIsValid(template))
	{
		CommandCounterIncrement();	/* see the new pg_database row */
		strata_copy_database_trees(template,
								   get_database_oid(((CreatedbStmt *) parsetree)->dbname, false));
	}
	if (pubname != NULL)
		check_publication(pubname);
	strata_compression_after_utility(parsetree, codecs);
}

void
strata_utility_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = strata_process_utility;
}
