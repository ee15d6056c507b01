/*
 * db.h — the standalone engine: one LSM tree in one directory, driven by
 * threads of one process. It assembles the components (wal/, memtable/,
 * sstable/, merge/, version/, compact/) the way LevelDB's DB does; the
 * PostgreSQL glue assembles the same components differently (several
 * processes, its own locks), so nothing here is used inside the server.
 *
 * Directory layout: "<dir>/CURRENT", "<dir>/MANIFEST-<n>", "<dir>/<n>.sst"
 * (version/README.md) and the WAL in "<dir>/wal/" (wal/README.md).
 *
 * Guarantees:
 *  - with SG_WAL_SYNC_ALWAYS, a write that returned SG_OK survives a
 *    crash; concurrent writers share fsyncs (group commit);
 *  - a write is all-or-nothing after a crash (one WAL record per batch);
 *  - after any failed WAL write, fsync, flush or MANIFEST write the DB is
 *    poisoned: every later write returns an error (err->sync_failed set
 *    when an fsync failed); reads keep working;
 *  - a file is deleted only once no version that names it is referenced
 *    (iterators and in-flight reads hold versions).
 *
 * Thread safety: every function may be called from any thread, except
 * that sg_db_close requires every iterator and snapshot to be released
 * and no other call in progress.
 */
#ifndef SG_DB_H
#define SG_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/base/env.h"
#include "engine/base/iter.h"
#include "engine/base/slice.h"
#include "engine/base/status.h"
#include "engine/compact/compact.h"
#include "engine/sstable/format.h"
#include "engine/version/version_edit.h"
#include "engine/wal/batch.h"
#include "engine/wal/wal.h"

typedef struct sg_db sg_db;
typedef struct sg_db_snapshot sg_db_snapshot;

/* One line for the operator (recovery notes, background errors). */
typedef void (*sg_db_log_fn) (void *arg, const char *msg);

typedef struct sg_db_options
{
	sg_env	   *env;			/* NULL: sg_env_posix() */
	bool		create_if_missing;	/* true */
	sg_wal_sync_mode wal_sync;	/* SG_WAL_SYNC_ALWAYS */
	uint32_t	wal_sync_interval_ms;	/* for SG_WAL_SYNC_INTERVAL; 100 */
	uint64_t	wal_segment_size;	/* 0: the WAL's default */
	size_t		memtable_size;	/* 4 MiB */
	int			max_immutables; /* writers stall beyond this many; 2 */
	int			l0_trigger;		/* 4 */
	uint64_t	l1_target_bytes;	/* 64 MiB */
	int			level_multiplier;	/* 10 */
	uint64_t	target_file_size;	/* compaction output size; 2 MiB */
	size_t		block_size;		/* 4096 */
	sg_codec	codec;			/* SG_CODEC_LZ4 */
	int			bloom_bits_per_key; /* 10 */
	uint64_t	max_manifest_bytes; /* 0: version/'s default */
	bool		disable_auto_compaction;
	sg_compact_filter_fn filter;	/* NULL: default policy */
	void	   *filter_arg;
	sg_db_log_fn log;			/* may be NULL */
	void	   *log_arg;
} sg_db_options;

extern void sg_db_options_init(sg_db_options *o);

typedef struct sg_db_stats
{
	uint64_t	wal_bytes;		/* bytes appended to the WAL */
	uint64_t	wal_appends;
	uint64_t	wal_syncs;
	uint64_t	flushes;
	uint64_t	flush_bytes;	/* SSTable bytes written by flushes */
	uint64_t	compactions;	/* rewrites (trivial moves not counted) */
	uint64_t	trivial_moves;
	uint64_t	compaction_bytes_read;
	uint64_t	compaction_bytes_written;
	uint64_t	write_stalls;	/* times a writer waited for a flush */
	uint64_t	last_sequence;
	int			immutables;
	uint64_t	level_files[SG_NUM_LEVELS];
	uint64_t	level_bytes[SG_NUM_LEVELS];
} sg_db_stats;

/*
 * Open (or create) the tree in dir: replay the MANIFEST, replay the WAL
 * after the flushed LSN into a memtable (a torn WAL tail is cut and
 * reported through opts->log), delete orphan files, start the background
 * flush and compaction threads. Corruption anywhere else (WAL middle,
 * MANIFEST) fails the open with SG_CORRUPTION naming the file.
 */
extern sg_code sg_db_open(const char *dir, const sg_db_options *opts, sg_db **out,
						  sg_err *err);

/*
 * Stop the threads, close the WAL (syncing it unless poisoned) and free
 * everything. Memtables are not flushed: the WAL holds them.
 * REQUIRES: every iterator destroyed, every snapshot released.
 */
extern sg_code sg_db_close(sg_db *db, sg_err *err);

/*
 * Apply batch atomically: sequence numbers are assigned here (the batch's
 * own is overwritten), then WAL, then memtable. Stalls (does not fail)
 * while too many memtables wait for a flush.
 */
extern sg_code sg_db_write(sg_db *db, sg_batch *batch, sg_err *err);
extern sg_code sg_db_put(sg_db *db, sg_slice key, sg_slice value, sg_err *err);
extern sg_code sg_db_delete(sg_db *db, sg_slice key, sg_err *err);

/*
 * The value of key at snapshot (NULL: the latest), appended to *value
 * after resetting it. SG_NOT_FOUND if absent or deleted; SG_CORRUPTION
 * if a file that may hold it is damaged.
 */
extern sg_code sg_db_get(sg_db *db, sg_slice key, const sg_db_snapshot *snap,
						 sg_buf *value, sg_err *err);

/* A consistent read point; compaction keeps what it needs. */
extern const sg_db_snapshot *sg_db_snapshot_acquire(sg_db *db);
extern void sg_db_snapshot_release(sg_db *db, const sg_db_snapshot *snap);
extern uint64_t sg_db_snapshot_sequence(const sg_db_snapshot *snap);

/*
 * The user view at snap (NULL: the latest at creation): key() is the user
 * key, value() its value; deleted keys are absent. Never NULL.
 */
extern sg_iter *sg_db_iter(sg_db *db, const sg_db_snapshot *snap);

/*
 * Every visible version of each key at snap, newest first, down to the
 * first tombstone (merge.h's versions view); key() is the internal key.
 */
extern sg_iter *sg_db_versions_iter(sg_db *db, const sg_db_snapshot *snap);

/* Flush the memtable now and wait until no memtable awaits a flush. */
extern sg_code sg_db_flush(sg_db *db, sg_err *err);

/*
 * Flush, then compact every file overlapping [begin, end] (NULL:
 * unbounded) level by level down to one level below the deepest level
 * holding such data (at most L6), rewriting them (no trivial moves), so
 * dead versions and tombstones get dropped.
 */
extern sg_code sg_db_compact_range(sg_db *db, const sg_slice *begin, const sg_slice *end,
								   sg_err *err);

extern void sg_db_get_stats(sg_db *db, sg_db_stats *stats);

#endif							/* SG_DB_H */
