/*
 * worker.c — the "stratago maintenance" background worker.
 *
 * One worker per cluster, started by the postmaster once the cluster is
 * consistent, restarted after a crash. Each round (every naptime, or at
 * once when a backend sets its latch because a memtable froze) it flushes
 * frozen memtables to SSTables (flush.c). It reloads configuration on
 * SIGHUP and exits cleanly (code 0) on SIGTERM so that a shutdown is never
 * reported as a worker crash, after writing out unlogged tables' rows.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "pg/checkpoint.h"
#include "pg/flush.h"
#include "pg/stratago.h"
#include "pg/wakeup.h"

/* Seconds the postmaster waits before restarting a worker that died. */
#define STRATA_WORKER_RESTART_SECONDS 5

/* How often the checkpoint guard looks for a new redo point (ms). */
#define STRATA_GUARD_POLL_MS	20

void
strata_register_maintenance_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	/*
	 * A connection to no particular database: enough to appear in
	 * pg_stat_activity, and what later catalog-free maintenance needs.
	 */
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = STRATA_WORKER_RESTART_SECONDS;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "stratago");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "strata_maintenance_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "stratago maintenance");
	snprintf(worker.bgw_type, BGW_MAXLEN, "stratago maintenance");
	RegisterBackgroundWorker(&worker);
}

/*
 * The checkpoint guard's flag (pgwal.c): set while in a transaction, so
 * that the checkpointer sees a valid virtual xid to wait for.
 */
static void
guard_arm(void)
{
	if (strata_checkpoint_guard_armed())
		MyProc->delayChkptFlags |= DELAY_CHKPT_COMPLETE;
}

static void
guard_disarm(void)
{
	MyProc->delayChkptFlags &= ~DELAY_CHKPT_COMPLETE;
}

/* One round: flush and compact each table, sweep, recycle the logs. */
static void
maintenance_round(void *arg)
{
	strata_flush_round();		/* each table's failure is its own */
	strata_sweep_dropped();
	strata_checkpoint_recycle();
	strata_checkpoint_retain();		/* the slot follows flushes a segment at a time */
}

static void
guard_flush(void *arg)
{
	strata_checkpoint_guard_flush();
}

/*
 * A step that fails is logged and tried again next round: an error must
 * not end the worker, or every table's flushes stop with it (writers wait,
 * stratago.flush() and VACUUM fail) while the postmaster restarts it.
 */
static void
run_step(void (*step) (void *arg), const char *what)
{
	ErrorData  *edata = strata_run_isolated(step, NULL);

	if (edata == NULL)
		return;
	ereport(WARNING,
			(errcode(edata->sqlerrcode),
			 errmsg("stratago: %s failed: %s", what, edata->message),
			 errdetail("The maintenance worker tries again in its next round.")));
	FreeErrorData(edata);
}

void
strata_maintenance_main(Datum main_arg)
{
	TimestampTz last_round = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	strata_worker_announce();

	ereport(DEBUG1, (errmsg_internal("stratago maintenance worker started")));

	/*
	 * The worker sleeps inside a transaction, so that the checkpoint guard's
	 * flag stays visible to the checkpointer (pgwal.c). Errors are caught
	 * step by step (run_step, and per table in flush.c); a FATAL or PANIC
	 * still ends the worker, whose exit clears the flag.
	 */
	StartTransactionCommand();
	guard_arm();
	while (!ShutdownRequestPending)
	{
		int			rc;
		long		timeout = strata_maintenance_naptime;

		/* a checkpoint may be waiting for the guard: look often */
		if (strata_checkpoint_guard_armed() && timeout > STRATA_GUARD_POLL_MS)
			timeout = STRATA_GUARD_POLL_MS;
		rc = WaitLatch(MyLatch,
					   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   timeout,
					   PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		if ((rc & WL_LATCH_SET) ||
			TimestampDifferenceExceeds(last_round, GetCurrentTimestamp(),
									   strata_maintenance_naptime))
		{
			run_step(maintenance_round, "a maintenance round");
			last_round = GetCurrentTimestamp();
		}
		run_step(guard_flush, "the checkpoint guard's flush");

		/* everything below the redo point is on disk: let checkpoints pass */
		guard_disarm();
		CommitTransactionCommand();
		StartTransactionCommand();
		guard_arm();
	}
	guard_disarm();

	/* unlogged tables keep their rows over a clean restart */
	strata_flush_unlogged_at_shutdown();
	CommitTransactionCommand();

	proc_exit(0);
}
