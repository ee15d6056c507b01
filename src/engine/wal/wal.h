/*
 * wal.h — the thread-safe WAL for the standalone engine: group commit and
 * sync policies over the single-threaded sg_wal_writer (wal_writer.h).
 *
 * Appenders queue their records. The thread at the head of the queue is
 * the leader: it takes every queued request, writes them (and fsyncs once
 * if any of them needs it) without holding the queue lock, then wakes the
 * others with their results. Only the leader touches the writer, so the
 * sg_file rule "one thread at a time" holds; while it works, new requests
 * pile up and become the next leader's group.
 *
 * Sync policies:
 *  - SG_WAL_SYNC_ALWAYS: append returns once its record is durable; N
 *    concurrent committers share fsyncs (stats.syncs < stats.appends);
 *  - SG_WAL_SYNC_INTERVAL: append returns once written; a background
 *    thread makes everything durable at most every sync_interval_ms;
 *  - SG_WAL_SYNC_OFF: append returns once written; only
 *    sg_wal_wait_durable / sg_wal_sync / close make records durable.
 *
 * Failure: the first failed write or fsync puts the WAL in a failed state;
 * that call and every later append, sync and wait return an error, with
 * err->sync_failed set if an fsync failed. Nothing is retried.
 *
 * Thread safety: every function may be called from any thread at once,
 * except sg_wal_open and sg_wal_close.
 */
#ifndef SG_WAL_H
#define SG_WAL_H

#include <stdint.h>

#include "engine/base/env.h"
#include "engine/base/slice.h"
#include "engine/base/status.h"
#include "engine/wal/wal_writer.h"

typedef enum sg_wal_sync_mode
{
	SG_WAL_SYNC_ALWAYS,
	SG_WAL_SYNC_INTERVAL,
	SG_WAL_SYNC_OFF
} sg_wal_sync_mode;

typedef struct sg_wal_options
{
	sg_wal_sync_mode sync_mode;
	uint32_t	sync_interval_ms;	/* SG_WAL_SYNC_INTERVAL; 0 means 100 */
	uint64_t	segment_size;		/* 0: SG_WAL_DEFAULT_SEGMENT_SIZE */
	uint64_t	min_lsn;			/* see sg_wal_writer_options */
} sg_wal_options;

typedef struct sg_wal_stats
{
	uint64_t	appends;		/* records appended */
	uint64_t	bytes_written;	/* log bytes (framing and padding included) */
	uint64_t	syncs;			/* fsyncs of segment files and the directory */
	uint64_t	groups;			/* leader turns (write batches) */
	uint64_t	written_lsn;	/* end of the log as written */
	uint64_t	durable_lsn;	/* end of the durable prefix */
} sg_wal_stats;

typedef struct sg_wal sg_wal;

/*
 * Open the WAL in dir for appending.
 * REQUIRES: sg_wal_replay(..., truncate_torn_tail = true, ...) ran first.
 */
extern sg_code sg_wal_open(sg_env *env, const char *dir, const sg_wal_options *opts,
						   sg_wal **out, sg_err *err);

/*
 * Stop the background thread, make everything durable (unless the WAL has
 * failed) and free. REQUIRES: no other call in progress.
 */
extern sg_code sg_wal_close(sg_wal *wal, sg_err *err);

/* Append one record; *lsn (may be NULL) gets its end LSN. */
extern sg_code sg_wal_append(sg_wal *wal, sg_slice record, uint64_t *lsn, sg_err *err);

/* Block until every record with end LSN <= lsn is durable. */
extern sg_code sg_wal_wait_durable(sg_wal *wal, uint64_t lsn, sg_err *err);

/* Make everything appended so far durable. */
extern sg_code sg_wal_sync(sg_wal *wal, sg_err *err);

/* Remove segments wholly below lsn (sg_wal_writer_delete_below). */
extern sg_code sg_wal_delete_below(sg_wal *wal, uint64_t lsn, uint64_t *deleted,
								   sg_err *err);

extern void sg_wal_get_stats(sg_wal *wal, sg_wal_stats *stats);

#endif							/* SG_WAL_H */
