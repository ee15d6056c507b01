/*
 * stratago.h — declarations shared by the PostgreSQL glue of stratago:
 * module state, GUC variables and the entry points each glue file
 * provides to the others.
 *
 * The glue is everything that includes postgres.h; the engine under
 * src/engine/ never does. See src/pg/README.md for the design.
 */
#ifndef STRATAGO_H
#define STRATAGO_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/relcache.h"
#include "storage/lwlock.h"

/* Folder under the data directory that holds all engine files. */
#define STRATAGO_DIR "stratago"

/* shared state and GUCs: see runtime.h */
#include "pg/runtime.h"


/* stratago.c */
extern void _PG_init(void);

/* worker.c */
extern void strata_register_maintenance_worker(void);
extern PGDLLEXPORT void strata_maintenance_main(Datum main_arg);

/* publication.c */
extern void strata_check_publication(const char *pubname);
extern void strata_check_not_published(Relation rel);

/* utility.c */
extern void strata_utility_init(void);

/* tableam.c */
extern PGDLLEXPORT Datum stratago_tableam_handler(PG_FUNCTION_ARGS);
extern bool strata_relation_is_strata(Relation rel);

#endif							/* STRATAGO_H */
