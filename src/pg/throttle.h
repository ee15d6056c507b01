/*
 * throttle.h — the maintenance worker's SSTable writes paced to
 * stratago.maintenance_write_rate (throttle.c).
 *
 * Contract: strata_maintenance_env() is the engine environment flushes and
 * compactions build their SSTables through. In the maintenance worker
 * (a background worker) every append to a file it opened waits until the
 * bytes written so far fit the rate; anywhere else (the postmaster's
 * replay at startup, a backend) it is the plain POSIX environment. A rate
 * of 0 means no limit. The wait shows as an Extension wait event and ends
 * at once when the worker is asked to shut down. Every byte appended is
 * counted as the current job's (jobprogress.h).
 */
#ifndef STRATA_THROTTLE_H
#define STRATA_THROTTLE_H

#include "postgres.h"

#include "engine/base/env.h"

extern sg_env *strata_maintenance_env(void);

#endif							/* STRATA_THROTTLE_H */
