/*
 * wakeup.h — the maintenance worker's presence in shared memory: whether
 * it runs, how to wake it, and how many sweeps of dropped tables it has
 * finished. The layer every other glue module may call to hand work to the
 * worker, so that none of them needs the worker's module (which calls them).
 *
 * Contract:
 *  - strata_worker_wake() signals the worker if it runs and does nothing
 *    otherwise; a wake-up is a hint (the worker also wakes on its own every
 *    stratago.maintenance_naptime), so a lost one only delays work.
 *  - strata_worker_running() may be stale the moment it returns; callers
 *    use it to choose between waiting for the worker and doing without it,
 *    and every such wait is bounded or re-checks it.
 *  - Only the worker calls strata_worker_announce() (at start) and
 *    strata_worker_sweep_done(); its exit clears its pid.
 *
 * Thread safety: its own spinlock guards the pid and start count; the sweep
 * count is an atomic.
 */
#ifndef STRATA_WAKEUP_H
#define STRATA_WAKEUP_H

#include "postgres.h"

/* Shared memory: size to request; attach (or create). REQUIRES: AddinShmemInitLock. */
extern Size strata_wakeup_shmem_size(void);
extern void strata_wakeup_shmem_init(void);

extern void strata_worker_wake(void);
extern bool strata_worker_running(void);

/*
 * Which start of the worker is running (1 for the first, counting
 * restarts), 0 if none: a mark the worker leaves on shared state stops
 * meaning anything once the worker that left it is gone.
 */
extern uint64 strata_worker_incarnation(void);

/* Sweeps of dropped trees the worker has completed since startup. */
extern uint64 strata_worker_sweeps(void);

/* Whether this process is the maintenance worker (it announced itself). */
extern bool strata_worker_is_self(void);

/* The worker's side. */
extern void strata_worker_announce(void);
extern void strata_worker_sweep_done(void);

#endif							/* STRATA_WAKEUP_H */
