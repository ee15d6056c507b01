/*
 * publication.c — keeps strata tables out of logical replication
 * (publication.h).
 *
 * Logical decoding reads PostgreSQL's WAL through each resource manager's
 * rm_decode. Strata changes are either in the engine WAL (invisible to
 * decoding) or in stratago's resource manager records, which have no
 * decoder yet; a publication that includes a strata table would therefore
 * send its subscribers nothing for it, silently. Until rm_decode exists,
 * every way of putting a strata table into a publication is an ERROR:
 * CREATE/ALTER PUBLICATION naming one (directly, through a schema, or FOR
 * ALL TABLES; utility.c looks once the command is done), and creating a
 * strata table where an existing publication would include it (am_ddl.c).
 */
#include "postgres.h"

#include "catalog/pg_publication.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "pg/publication.h"

void
strata_publication_refuse(const char *relname, const char *pubname)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("strata table \"%s\" cannot be part of publication \"%s\"",
					relname, pubname),
			 errdetail("Logical decoding of strata tables is not supported yet, so the publication would send no changes of it."),
			 errhint("Leave strata tables out of publications, or use a heap table for data that must be replicated logically.")));
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
		strata_publication_refuse(RelationGetRelationName(rel),
								  get_publication_name(linitial_oid(pubs), false));
}
