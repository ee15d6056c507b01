/*
 * throttle.c — stratago.maintenance_write_rate: the bytes per second the
 * maintenance worker may write to SSTables, flushes and compactions
 * together (throttle.h).
 *
 * Why: a compaction rewrites a level's worth of data at once; on a busy
 * server that burst competes with the foreground's WAL and data writes
 * for the disk. RocksDB's rate limiter paces background writes to a byte
 * rate; this does the same for the one process that writes SSTables.
 *
 * How: a token bucket kept as a time, paid_until: the moment by which the
 * bytes written so far would have been written at the rate. An append of
 * n bytes moves it n / rate later and waits until it is no more than a
 * short burst ahead of now. Idle time builds up credit only up to that
 * burst, so a compaction after a quiet hour is paced like any other.
 *
 * Only the worker is paced: a backend's wait would be a query's, and the
 * postmaster's replay at startup must finish before anyone can connect.
 * The rate is read at every append, so a reload takes effect mid-job.
 * The same appends are counted for stratago.maintenance_progress.
 */
#include "postgres.h"

#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "utils/timestamp.h"

#include "pg/jobprogress.h"
#include "pg/stratago.h"
#include "pg/throttle.h"
#include "pg/wakeup.h"

/* Credit an idle worker may build up, and the longest single sleep (µs). */
#define STRATA_THROTTLE_BURST_US	100000
#define STRATA_THROTTLE_SLEEP_US	100000

static TimestampTz paid_until = 0;

static sg_env_ops maintenance_ops;
static sg_env maintenance_env = {&maintenance_ops};
static bool maintenance_ops_ready = false;

/* Wait until n more bytes fit stratago.maintenance_write_rate. */
static void
pace(size_t n)
{
	int64		rate = (int64) strata_maintenance_write_rate_kb * 1024;
	TimestampTz now;

	if (rate <= 0 || !strata_worker_is_self())
		return;
	now = GetCurrentTimestamp();
	if (paid_until < now - STRATA_THROTTLE_BURST_US)
		paid_until = now - STRATA_THROTTLE_BURST_US;
	paid_until += (int64) ((double) n * USECS_PER_SEC / (double) rate);
	while (paid_until > now && !ShutdownRequestPending)
	{
		int64		sleep_us = Min(paid_until - now, STRATA_THROTTLE_SLEEP_US);

		pgstat_report_wait_start(PG_WAIT_EXTENSION);
		pg_usleep(sleep_us);
		pgstat_report_wait_end();
		now = GetCurrentTimestamp();
	}
}

/* POSIX's open, but the file's later calls come back through this env. */
static sg_code
maintenance_open(sg_env *env, const char *path, sg_open_mode mode, sg_file **out,
				 sg_err *err)
{
	return sg_env_posix()->ops->open(env, path, mode, out, err);
}

static sg_code
maintenance_append(sg_file *f, const void *data, size_t n, sg_err *err)
{
	sg_code		rc;

	pace(n);
	rc = sg_env_posix()->ops->append(f, data, n, err);
	if (rc == SG_OK)
		strata_job_progress_written(n);
	return rc;
}

sg_env *
strata_maintenance_env(void)
{
	if (!maintenance_ops_ready)
	{
		maintenance_ops = *sg_env_posix()->ops;
		maintenance_ops.open = maintenance_open;
		maintenance_ops.append = maintenance_append;
		maintenance_ops_ready = true;
	}
	return &maintenance_env;
}
