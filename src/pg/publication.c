/*
 * publication.c — keeps strata tables out of logical replication.
 *
 * Logical decoding reads PostgreSQL's WAL through each resource manager's
 * rm_decode. Strata changes are either in the engine WAL (invisible to
 * decoding) or in stratago's resource manager records, which have no
 * decoder yet; a publication that includes a strata table would therefore
 * send its subscribers nothing for it, silently. Until rm_decode exists,
 * every way of putting a strata table into a publication is an ERROR:
 * CREATE/ALTER PUBLICATION naming one (directly, through a schema, or FOR
 * ALL TABLES), and creating a strata table where an existing publication
 * would include it.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_publication.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "pg/stratago.h"

static ProcessUtility_hook_type prev_process_utility = NULL;

static void
publication_not_supported(const char *relname, const char *pubname)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("strata table \"%s\" cannot be part of publication \"%s\"",
					relname, pubname),
			 errdetail("Logical decoding of strata tables is not supported yet, so the publication would send no changes of it."),
			 errhint("Leave strata tables out of publications, or use a heap table for data that must be replicated logically.")));
}

/* ERROR if publication pubname covers a strata table. */
static void
check_publication(const char *pubname)
{
	Publication *pub = GetPublicationByName(pubname, true);
	List	   *relids;
	ListCell   *lc;

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
			publication_not_supported(RelationGetRelationName(rel), pubname);
		relation_close(rel, AccessShareLock);
	}
}

/*
 * ERROR if a publication would include rel, a strata table being created
 * (or given new storage).
 */
void
strata_check_not_published(Relation rel)
{
	List	   *pubs = list_concat(GetAllTablesPublications(),
								   GetSchemaPublications(RelationGetNamespace(rel)));

	pubs = list_concat(pubs, GetRelationPublications(RelationGetRelid(rel)));
	if (pubs != NIL)
		publication_not_supported(RelationGetRelationName(rel),
								  get_publication_name(linitial_oid(pubs), false));
}

static void
strata_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	const char *pubname = NULL;

	if (IsA(parsetree, CreatePublicationStmt))
		pubname = ((CreatePublicationStmt *) parsetree)->pubname;
	else if (IsA(parsetree, AlterPublicationStmt))
		pubname = ((AlterPublicationStmt *) parsetree)->pubname;
	if (pubname != NULL)
		pubname = pstrdup(pubname);

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);

	/* checked once the publication exists; the ERROR undoes the command */
	if (pubname != NULL)
	{
		CommandCounterIncrement();
		check_publication(pubname);
	}
}

void
strata_install_publication_guard(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = strata_process_utility;
}
