/*
 * publication.c — which publications may cover a strata table
 * (publication.h).
 *
 * Logical decoding reads PostgreSQL's WAL through each resource manager's
 * rm_decode; strata's decodes the LOGICAL records a change writes at
 * wal_level = logical (logical.c), so a publication sends a strata table's
 * changes as it sends a heap table's. With stratago.wal_sink = engine
 * those records would be the only trace of a change in PostgreSQL's WAL,
 * which that sink exists to keep strata's rows out of: every way of
 * putting a strata table into a publication is then an ERROR, with a hint
 * to use the postgres sink: CREATE/ALTER PUBLICATION naming one (directly,
 * through a schema, or FOR ALL TABLES; utility.c looks once the command is
 * done), and creating a strata table where an existing publication would
 * include it (am_ddl.c). Publications made under the postgres sink keep
 * working after a restart with the engine sink: the LOGICAL records are
 * written under either sink, so no change is ever silently left out.
 */
#include "postgres.h"

#include "catalog/pg_publication.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "pg/publication.h"
#include "pg/stratago.h"

void
strata_check_publishable(const char *relname, const char *pubname)
{
	if (strata_wal_sink != STRATA_SINK_ENGINE)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("strata table \"%s\" cannot be part of publication \"%s\"",
					relname, pubname),
			 errdetail("With stratago.wal_sink = engine, changes of strata tables are not logged in PostgreSQL's WAL, which logical replication reads."),
			 errhint("Set stratago.wal_sink = postgres to publish strata tables.")));
}

void
strata_check_not_published(Relation rel)
{
	List	   *pubs;

	if (strata_wal_sink != STRATA_SINK_ENGINE)
		return;
	pubs = list_concat(GetAllTablesPublications(),
					   GetSchemaPublications(RelationGetNamespace(rel)));
	pubs = list_concat(pubs, GetRelationPublications(RelationGetRelid(rel)));
	if (pubs != NIL)
		strata_check_publishable(RelationGetRelationName(rel),
								 get_publication_name(linitial_oid(pubs), false));
}
