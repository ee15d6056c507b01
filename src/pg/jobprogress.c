/*
 * jobprogress.c — the maintenance worker's current job, in shared memory
 * for stratago.maintenance_progress (jobprogress.h).
 *
 * Why its own record: a manual stratago.compact() or a long compaction
 * runs in the worker, not in the backend that asked for it, so the
 * backend's pg_stat_progress_* slot cannot show it; and the worker runs
 * one job at a time, so one record is the whole picture.
 */
#include "postgres.h"

#include "storage/shmem.h"
#include "storage/spin.h"

#include "pg/jobprogress.h"
#include "pg/wakeup.h"

typedef struct JobProgressShared
{
	slock_t		mutex;
	StrataJobProgress job;
} JobProgressShared;

static JobProgressShared *progress_shared = NULL;

Size
strata_job_progress_shmem_size(void)
{
	return MAXALIGN(sizeof(JobProgressShared));
}

void
strata_job_progress_shmem_init(void)
{
	bool		found;

	progress_shared = ShmemInitStruct("stratago job progress", sizeof(JobProgressShared),
									  &found);
	if (!found)
	{
		SpinLockInit(&progress_shared->mutex);
		memset(&progress_shared->job, 0, sizeof(progress_shared->job));
	}
}

/* Only the maintenance worker keeps the record. */
static inline bool
recording(void)
{
	return progress_shared != NULL && strata_worker_is_self();
}

void
strata_job_progress_begin(StrataJobKind kind, const RelFileNode *node, int level,
						  uint64 input_bytes)
{
	TimestampTz now;

	if (!recording())
		return;
	now = GetCurrentTimestamp();
	SpinLockAcquire(&progress_shared->mutex);
	progress_shared->job.kind = kind;
	progress_shared->job.node = *node;
	progress_shared->job.level = level;
	progress_shared->job.input_bytes = input_bytes;
	progress_shared->job.written_bytes = 0;
	progress_shared->job.started = now;
	SpinLockRelease(&progress_shared->mutex);
}

void
strata_job_progress_written(uint64 bytes)
{
	if (!recording())
		return;
	SpinLockAcquire(&progress_shared->mutex);
	if (progress_shared->job.kind != STRATA_JOB_NONE)
		progress_shared->job.written_bytes += bytes;
	SpinLockRelease(&progress_shared->mutex);
}

void
strata_job_progress_end(void)
{
	if (!recording())
		return;
	SpinLockAcquire(&progress_shared->mutex);
	memset(&progress_shared->job, 0, sizeof(progress_shared->job));
	SpinLockRelease(&progress_shared->mutex);
}

void
strata_job_progress_get(StrataJobProgress *out)
{
	if (progress_shared == NULL)
	{
		memset(out, 0, sizeof(*out));
		return;
	}
	SpinLockAcquire(&progress_shared->mutex);
	*out = progress_shared->job;
	SpinLockRelease(&progress_shared->mutex);
}

const char *
strata_job_kind_name(StrataJobKind kind)
{
	switch (kind)
	{
		case STRATA_JOB_NONE:
			break;
		case STRATA_JOB_FLUSH:
			return "flush";
		case STRATA_JOB_COMPACTION:
			return "compaction";
		case STRATA_JOB_MANUAL_COMPACTION:
			return "manual compaction";
		case STRATA_JOB_FREEZE_COMPACTION:
			return "freezing compaction";
	}
	return "none";
}
