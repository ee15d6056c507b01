/*
 * jobprogress.h — what the maintenance worker is writing right now: the
 * job (a flush, or a compaction and why), its table, the bytes it reads
 * and the bytes it has written so far, for stratago.maintenance_progress
 * (as pg_stat_progress_* show a backend's command).
 *
 * Contract:
 *  - only the maintenance worker records a job (calls from any other
 *    process, such as the postmaster's flushes during recovery, do
 *    nothing); begin replaces whatever was recorded, end clears it, and a
 *    job that fails is cleared by the worker's error path (run_tree_job);
 *  - the written count grows with every append of the job's SSTables
 *    (throttle.c's environment counts them);
 *  - a reader gets a consistent copy, possibly of a job that has just
 *    ended.
 *
 * Thread safety: one spinlock guards the record.
 */
#ifndef STRATA_JOBPROGRESS_H
#define STRATA_JOBPROGRESS_H

#include "postgres.h"

#include "storage/relfilenode.h"
#include "utils/timestamp.h"

typedef enum StrataJobKind
{
	STRATA_JOB_NONE,
	STRATA_JOB_FLUSH,			/* a frozen memtable into a level-0 SSTable */
	STRATA_JOB_COMPACTION,		/* the worker's own choice (level sizes) */
	STRATA_JOB_MANUAL_COMPACTION,	/* stratago.compact() or VACUUM */
	STRATA_JOB_FREEZE_COMPACTION	/* rewriting a file to freeze its rows */
} StrataJobKind;

typedef struct StrataJobProgress
{
	StrataJobKind kind;
	RelFileNode node;			/* the table's relfilenode */
	int			level;			/* input level (0 for a flush) */
	uint64		input_bytes;	/* memtable bytes, or the input files' size */
	uint64		written_bytes;	/* SSTable bytes written so far */
	TimestampTz started;
} StrataJobProgress;

/* Shared memory: size to request; attach (or create). REQUIRES: AddinShmemInitLock. */
extern Size strata_job_progress_shmem_size(void);
extern void strata_job_progress_shmem_init(void);

/* The worker's side. */
extern void strata_job_progress_begin(StrataJobKind kind, const RelFileNode *node, int level,
									  uint64 input_bytes);
extern void strata_job_progress_written(uint64 bytes);
extern void strata_job_progress_end(void);

/* A copy of the current record (kind STRATA_JOB_NONE: no job). */
extern void strata_job_progress_get(StrataJobProgress *out);

/* The job's name as the view shows it. */
extern const char *strata_job_kind_name(StrataJobKind kind);

#endif							/* STRATA_JOBPROGRESS_H */
