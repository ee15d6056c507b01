/*
 * wakeup.c — the maintenance worker's presence in shared memory and the
 * wake-ups other processes send it (wakeup.h).
 *
 * The worker's pid lives here rather than beside the tree registry because
 * waking the worker is needed from the bottom of the glue (freezing a
 * memtable in tree.c) up to its top (stratago.flush()), while the worker
 * itself calls all of those modules: a module of its own below them keeps
 * the calls one-way.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"

#include "pg/wakeup.h"

typedef struct StrataWorkerShared
{
	slock_t		mutex;			/* guards pid, latch and starts */
	pid_t		pid;			/* 0: not running */
	Latch	   *latch;			/* the worker's procLatch, while pid != 0 */
	uint64		starts;			/* times the worker announced itself */
	pg_atomic_uint64 sweeps;	/* rounds of dropped-tree sweeps completed */
} StrataWorkerShared;

static StrataWorkerShared *worker_shared = NULL;

/* This process announced itself as the worker. */
static bool worker_is_self = false;

Size
strata_wakeup_shmem_size(void)
{
	return MAXALIGN(sizeof(StrataWorkerShared));
}

void
strata_wakeup_shmem_init(void)
{
	bool		found;

	worker_shared = ShmemInitStruct("stratago worker", sizeof(StrataWorkerShared), &found);
	if (!found)
	{
		SpinLockInit(&worker_shared->mutex);
		worker_shared->pid = 0;
		worker_shared->latch = NULL;
		worker_shared->starts = 0;
		pg_atomic_init_u64(&worker_shared->sweeps, 0);
	}
}

static pid_t
worker_pid(void)
{
	pid_t		pid;

	SpinLockAcquire(&worker_shared->mutex);
	pid = worker_shared->pid;
	SpinLockRelease(&worker_shared->mutex);
	return pid;
}

/*
 * Set the worker's latch rather than signal its pid: a pid can be reused by
 * any process once the worker exits, a PGPROC's latch only by another
 * PostgreSQL process, for which a spurious wake-up is harmless.
 */
void
strata_worker_wake(void)
{
	Latch	   *latch;

	SpinLockAcquire(&worker_shared->mutex);
	latch = worker_shared->latch;
	SpinLockRelease(&worker_shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

bool
strata_worker_running(void)
{
	return worker_pid() != 0;
}

uint64
strata_worker_incarnation(void)
{
	uint64		incarnation;

	SpinLockAcquire(&worker_shared->mutex);
	incarnation = worker_shared->pid != 0 ? worker_shared->starts : 0;
	SpinLockRelease(&worker_shared->mutex);
	return incarnation;
}

uint64
strata_worker_sweeps(void)
{
	return pg_atomic_read_u64(&worker_shared->sweeps);
}

void
strata_worker_sweep_done(void)
{
	pg_atomic_fetch_add_u64(&worker_shared->sweeps, 1);
}

static void
worker_retire(int code, Datum arg)
{
	SpinLockAcquire(&worker_shared->mutex);
	if (worker_shared->pid == MyProcPid)
	{
		worker_shared->pid = 0;
		worker_shared->latch = NULL;
	}
	SpinLockRelease(&worker_shared->mutex);
}

void
strata_worker_announce(void)
{
	SpinLockAcquire(&worker_shared->mutex);
	worker_shared->pid = MyProcPid;
	worker_shared->latch = &MyProc->procLatch;
	worker_shared->starts++;
	SpinLockRelease(&worker_shared->mutex);
	worker_is_self = true;
	before_shmem_exit(worker_retire, (Datum) 0);
}

bool
strata_worker_is_self(void)
{
	return worker_is_self;
}
