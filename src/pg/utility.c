/*
 * utility.c — stratago's ProcessUtility hook. It watches the commands
 * that would take strata rows somewhere strata cannot follow yet:
 * CREATE/ALTER PUBLICATION (checked once they are done: with the engine
 * WAL sink a publication covering a strata table is refused,
 * publication.c), and the commands
 * that copy or move a whole database's files behind the table access
 * method's back (doc/DESIGN.md §7, T10):
 *
 *   CREATE DATABASE ... TEMPLATE t   copies t's smgr files (STRATEGY
 *                                    WAL_LOG block by block, FILE_COPY as
 *                                    directories); strata rows live in
 *                                    $PGDATA/stratago/<t's oid>/, which
 *                                    neither strategy sees;
 *   ALTER DATABASE d SET TABLESPACE  moves d's smgr files to another
 *                                    tablespace, which changes the
 *                                    RelFileNode of every table in d's
 *                                    default tablespace: the engine's trees
 *                                    are keyed by it and would be left
 *                                    behind (and swept as dropped).
 *
 * Both are refused with a clear error, before anything is created or
 * moved, when the database holds strata tables. Copying trees for a new
 * database (new tree ids, the engine WAL, the registry) is left for later;
 * pg_dump and pg_restore copy such a database today.
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
#include "nodes/parsenodes.h"
#include "tcop/utility.h"

#include "pg/compression.h"
#include "pg/publication.h"
#include "pg/stratago.h"
#include "pg/tree.h"

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

static bool
defelem_present(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
		if (strcmp(lfirst_node(DefElem, lc)->defname, name) == 0)
			return true;
	return false;
}

static void
check_database_utility(Node *parsetree)
{
	if (IsA(parsetree, CreatedbStmt))
	{
		CreatedbStmt *stmt = (CreatedbStmt *) parsetree;
		char	   *template = defelem_string(stmt->options, "template");
		Oid			dboid;

		if (template == NULL)
			template = "template1";
		dboid = get_database_oid(template, true);
		if (OidIsValid(dboid) && strata_database_has_tables(dboid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot copy database \"%s\" because it contains strata tables",
							template),
					 errdetail("CREATE DATABASE copies PostgreSQL's files only; the rows of strata tables are kept in the stratago engine's files."),
					 errhint("Use pg_dump and pg_restore to copy the database, or use a template without strata tables.")));
	}
	else if (IsA(parsetree, AlterDatabaseStmt))
	{
		AlterDatabaseStmt *stmt = (AlterDatabaseStmt *) parsetree;
		Oid			dboid;

		if (!defelem_present(stmt->options, "tablespace"))
			return;
		dboid = get_database_oid(stmt->dbname, true);
		if (OidIsValid(dboid) && strata_database_has_tables(dboid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot move database \"%s\" to another tablespace because it contains strata tables",
							stmt->dbname),
					 errhint("Move the strata tables with ALTER TABLE ... SET TABLESPACE instead.")));
	}
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
strata_process_utility(PlannedStmt *pstmt, const char *queryString,
					   bool readOnlyTree, ProcessUtilityContext context,
					   ParamListInfo params, QueryEnvironment *queryEnv,
					   DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	char	   *pubname = NULL;
	List	   *codecs;

	check_database_utility(parsetree);
	codecs = strata_compression_before_utility(parsetree);
	if (IsA(parsetree, CreatePublicationStmt))
		pubname = pstrdup(((CreatePublicationStmt *) parsetree)->pubname);
	else if (IsA(parsetree, AlterPublicationStmt))
		pubname = pstrdup(((AlterPublicationStmt *) parsetree)->pubname);

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);

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
