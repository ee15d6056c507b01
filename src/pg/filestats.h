/*
 * filestats.h — what each SSTable records about its rows in its user
 * statistics (frozen format: three fixed64, then an optional list of the
 * row ids VACUUM must read), gathered while a flush or a compaction writes
 * the file and read back for VACUUM's relfrozenxid, dead stubs and suspect
 * rows, and for the row id high-water mark after a restart.
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

	/*
	 * Every row id with a version other than frozen row data (an unfrozen
	 * writer, a dead stub, a lock), ascending, encoded (see filestats.c;
	 * strata_file_stats_next_suspect reads it). suspects_known is false
	 * when the file has more than STRATA_MAX_FILE_SUSPECTS of them, or an
	 * older build wrote it: VACUUM then reads the file's whole range.
	 */
	bool		suspects_known;
	sg_slice	suspects;
} StrataFileStats;

/*
 * The most suspect row ids a file lists (about a byte or two each in the
 * file's properties and in the MANIFEST): beyond this VACUUM reads the
 * file's whole row id range, whose garbage is then large anyway.
 */
#define STRATA_MAX_FILE_SUSPECTS 16384

/* What a job's observe hook accumulates for the output file being written. */
typedef struct StatsAcc
{
	uint64		oldest;			/* 0 none, 1 unknown */
	uint64		stubs;
	uint64		rowid_end;		/* largest row id seen + 1 */
	uint64		base_hwm;		/* the job's floor for the high-water mark */
	uint64	   *suspects;		/* ascending, palloc'd; NULL until the first */
	int			nsuspects;
	bool		suspects_overflow;	/* too many, or an entry not understood */
} StatsAcc;

extern void strata_stats_acc_init(StatsAcc *acc, uint64 base_hwm);
extern void strata_stats_observe(void *arg, sg_slice ikey, sg_slice value);
extern sg_code strata_stats_finish(void *arg, uint64_t file_number, sg_buf *out, sg_err *err);
extern bool strata_file_stats_parse(sg_slice blob, StrataFileStats *fs);
extern bool strata_file_stats_next_suspect(sg_slice *list, uint64 *rowid);

#endif							/* STRATA_FILESTATS_H */
