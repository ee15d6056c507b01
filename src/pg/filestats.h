/*
 * filestats.h — what each SSTable records about its rows in its user
 * statistics (frozen format: three fixed64), gathered while a flush or a
 * compaction writes the file and read back for VACUUM's relfrozenxid, dead
 * stubs and the row id high-water mark after a restart.
 */
#ifndef STRATA_FILESTATS_H
#define STRATA_FILESTATS_H

#include "postgres.h"

#include "access/transam.h"

#include "engine/base/slice.h"
#include "engine/base/status.h"
#include "engine/base/coding.h"

typedef struct StrataFileStats
{
	uint64		oldest_unfrozen;	/* FullTransactionId; 0 none, 1 unknown */
	uint64		dead_stubs;		/* rows gone for all, awaiting VACUUM */
	uint64		rowid_hwm;		/* no row id at or above was handed out */

	/*
	 * What may make a row of this file dead to every snapshot (VACUUM
	 * reads only the row ids of files that hold any): versions other than
	 * row data (deletes, moves, locks, stubs), and the
	 * range of writers of row data not known to have committed when the
	 * file was written (FullTransactionIds, 0 / 0 for none). Files written
	 * before these were recorded have has_suspects false.
	 */
	bool		has_suspects;
	uint64		other_suspects;
	uint64		unsettled_min;
	uint64		unsettled_max;
} StrataFileStats;

/* What a job's observe hook accumulates for the output file being written. */
typedef struct StatsAcc
{
	uint64		oldest;			/* 0 none, 1 unknown */
	uint64		stubs;
	uint64		rowid_end;		/* largest row id seen + 1 */
	uint64		base_hwm;		/* the job's floor for the high-water mark */
	uint64		other_suspects;
	uint64		unsettled_min;
	uint64		unsettled_max;

	/*
	 * Writers below it that committed count as settled; Invalid: only the
	 * frozen and committed flags count (a flush asks no commit log).
	 */
	TransactionId settled_horizon;
} StatsAcc;

extern void strata_stats_acc_init(StatsAcc *acc, uint64 base_hwm,
								  TransactionId settled_horizon);
extern void strata_stats_observe(void *arg, sg_slice ikey, sg_slice value);
extern sg_code strata_stats_finish(void *arg, uint64_t file_number, sg_buf *out, sg_err *err);
extern bool strata_file_stats_parse(sg_slice blob, StrataFileStats *fs);

#endif							/* STRATA_FILESTATS_H */
