/*
 * vset.h — the maintenance worker's open version set (MANIFEST writer) of
 * each tree it flushes or compacts, opened on first use (orphans swept),
 * evicted when many, forgotten after a failure or a drop.
 */
#ifndef STRATA_VSET_H
#define STRATA_VSET_H

#include "postgres.h"

#include "engine/version/manifest.h"
#include "pg/tree.h"

/* tree's version set, opened if need be. REQUIRES: the worker (or recovery). */
extern sg_vset *strata_worker_vset(StrataTree *tree);
/* Close and forget tree_id's version set (reopened on next use). */
extern void strata_forget_worker_vset(uint64 tree_id);
/* Close every one (the postmaster after recovery: children must not inherit them). */
extern void strata_forget_all_worker_vsets(void);
/* Remove files of dir that v does not name (startup and first open only). */
extern void strata_remove_orphans(const char *dir, const sg_version *v, uint64 live_manifest);

#endif							/* STRATA_VSET_H */
