/*
 * flush.h — flushing memtables to SSTables and the maintenance worker's
 * rounds over every tree: each table's job isolated from the others'
 * failures, requests from backends (stratago.flush/compact, VACUUM) and
 * their waits, writers' back-pressure when flushes fail, the sweep of
 * dropped trees, unlogged tables at shutdown.
 */
#ifndef STRATA_FLUSH_H
#define STRATA_FLUSH_H

#include "postgres.h"

#include "utils/elog.h"
#include "utils/timestamp.h"
#include "pg/tree.h"

/* The worker's round: flush what is frozen, then compact, table by table. */
extern void strata_flush_round(void);
/* Flush only the trees whose flush was requested (the checkpoint guard). */
extern void strata_flush_requested(void);
extern void strata_flush_unlogged_at_shutdown(void);
extern void strata_sweep_dropped(void);

/* Backends: have the worker flush / compact tree, and wait (ERROR if it fails). */
extern void strata_tree_request_flush(StrataTree *tree);
extern void strata_tree_request_compact(StrataTree *tree);

/* A writer waiting for memory since wait_start: ERROR if flushes are failing. */
extern void strata_check_flush_failing(TimestampTz wait_start);

/* During the postmaster's replay: write tree's memtable out now. */
extern void strata_recovery_flush(StrataTree *tree, uint64 log_number);
/* After recovery: forget the postmaster's MANIFEST handles. */
extern void strata_recovery_done(void);

/* Run fn(arg) in a subtransaction; its ERROR comes back (NULL: none). */
extern ErrorData *strata_run_isolated(void (*fn) (void *arg), void *arg);

#endif							/* STRATA_FLUSH_H */
