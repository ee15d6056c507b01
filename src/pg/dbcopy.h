/*
 * dbcopy.h — strata trees that follow PostgreSQL when it copies or moves a
 * whole database's files: CREATE DATABASE ... TEMPLATE (both strategies)
 * and ALTER DATABASE ... SET TABLESPACE (dbcopy.c, doc/DESIGN.md §5.2).
 *
 * Contract: each copied relation gets a new tree under a new random tree
 * id, holding every version of the template's tree verbatim (row ids,
 * writers, command ids, flags, the bottom-level codec), written through
 * the ordinary write path, so the sink's records let crash recovery,
 * standbys and PITR build the same copy. A tree is copied only once
 * PostgreSQL's own files of its relation exist at the destination (never
 * before: the maintenance worker sweeps trees without them), and only for
 * relations PostgreSQL copied. On an ERROR (or FATAL) during the copy,
 * the new database's files go as PostgreSQL's own cleanup would remove
 * them, and the maintenance worker sweeps the new trees.
 */
#ifndef STRATA_DBCOPY_H
#define STRATA_DBCOPY_H

#include "postgres.h"

/*
 * After createdb() made database dst_db from src_db (same transaction,
 * before its commit): copy src_db's trees into dst_db.
 */
extern void strata_copy_database_trees(Oid src_db, Oid dst_db);

/*
 * ALTER DATABASE db SET TABLESPACE is about to run (expect) and has ended
 * (done). In between, once PostgreSQL has copied db's files into the new
 * tablespace and before it commits, the trees of db's relations in its
 * old default tablespace are copied under the new one; the old trees go
 * with the old files after the commit.
 */
extern void strata_database_move_expect(Oid db, Oid new_tablespace);
extern void strata_database_move_done(void);

/* Install the object access hook the move needs (at library load). */
extern void strata_dbcopy_init(void);

#endif							/* STRATA_DBCOPY_H */
