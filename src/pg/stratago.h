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

#include "storage/lwlock.h"

/* Folder under the data directory that holds all engine files. */
#define STRATAGO_DIR "stratago"

/*
 * Cluster-wide state in shared memory. Created by the postmaster before
 * any backend or worker starts (shmem_startup_hook), found by name after.
 */
typedef struct StrataShared
{
	LWLock	   *lock;			/* protects the fields below */
	pid_t		maintenance_pid;	/* 0 when the worker is not running */
	uint64		maintenance_starts; /* times the worker has (re)started */
} StrataShared;

extern StrataShared *strata_shared;

/* GUCs (stratago.*) */
extern int	strata_maintenance_naptime;

/* stratago.c */
extern void _PG_init(void);

/* worker.c */
extern void strata_register_maintenance_worker(void);
extern PGDLLEXPORT void strata_maintenance_main(Datum main_arg);

/* tableam.c */
extern PGDLLEXPORT Datum stratago_tableam_handler(PG_FUNCTION_ARGS);

#endif							/* STRATAGO_H */
