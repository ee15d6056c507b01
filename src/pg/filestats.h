/*
 * filestats.h — what each SSTable records about its rows in its user
 * statistics (frozen format: three fixed64), gathered while a flush or a
 * compaction writes the file and read back for VACUUM's relfrozenxid, dead
 * stubs and the row id high-water mark after a restart.
 */
#ifndef STRATA_FILESTATS_H
#define STRATA_FILESTATS_H

#include "postgres.h"

#include "engine/base/slice.h"
#include "engine/base/status.h"
#include "engine/base/coding.h"

typedef struct StrataFileStats
{
	uint64		oldest_unfrozen;	/* FullTransactionId; 0 none, 1 unknown */
	uint64		dead_stubs;		/* rows gone for all, awaiting VACUUM */
	uint64		rowid_hwm;		/* no row id at or above was handed out */
} StrataFileStats;

/* What a job's observe hook accumulates for the output file being written. */
typedef struct StatsAcc
{
	uint64		oldest;			/* 0 none, 1 unknown */
	uint64		stubs;
	uint64		rowid_end;		/* largest row id seen + 1 */
	uint64		base_hwm;		/* the job's floor for the high-water mark */
} StatsAcc;

extern void strata_stats_acc_init(StatsAcc *acc, uint64 base_hwm);
extern void strata_stats_observe(void *arg, sg_slice ikey, sg_slice value);
extern sg_code strata_stats_finish(void *arg, uint64_t file_number, sg_buf *out, sg_err *err);
extern bool strata_file_stats_parse(sg_slice blob, StrataFileStats *fs);

#endif							/* STRATA_FILESTATS_H */
