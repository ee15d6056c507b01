/*
 * recovery.h — bringing every tree back at startup, in the postmaster
 * before any backend exists: register the tree directories (temporary and
 * unlogged ones by PostgreSQL's rules), read each MANIFEST (a damaged one
 * marks its tree damaged instead of stopping the cluster), then drive the
 * replay of both logs and the flushes it needs.
 */
#ifndef STRATA_RECOVERY_H
#define STRATA_RECOVERY_H

#include "postgres.h"



extern void strata_recover(void);

#endif							/* STRATA_RECOVERY_H */
