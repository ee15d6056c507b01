/*
 * wal_writer.h — the segmented write-ahead log, single-threaded layer:
 * appending records, syncing, rolling segments, deleting old segments,
 * and replaying (recovering) the log.
 *
 * LSNs: a 64-bit byte position across all segments (wal_segment.h): the
 * byte at offset o of the segment named S has LSN S + o. Append returns a
 * record's END LSN (the LSN just past its last fragment); LSNs only grow.
 * "Durable up to L" means every record whose end LSN is <= L survives a
 * crash.
 *
 * Invariants:
 *  - only the newest segment is ever written; before a new one is created
 *    the current one is fsynced, so every segment but the last is complete
 *    and any damage in it is corruption;
 *  - a segment file that exists holds a valid header (it is created under a
 *    temporary name, fsynced, renamed, and the directory fsynced);
 *  - after any failed write or fsync the writer is "failed": every later
 *    append, sync or roll returns an error (sync_failed set when an fsync
 *    failed). An fsync is never retried.
 *
 * Thread safety: none. The caller serialises every call on the writer and
 * on its state. This layer creates no threads, so the PostgreSQL glue can
 * drive it from several processes under its own locks: the state that
 * must be shared (sg_wal_writer_state) is plain data with no pointers and
 * may live in shared memory; each process attaches its own handle, which
 * opens files lazily. wal.h is the threaded wrapper for the standalone
 * engine.
 */
#ifndef SG_WAL_WRITER_H
#define SG_WAL_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/base/env.h"
#include "engine/base/slice.h"
#include "engine/base/status.h"

#define SG_WAL_DEFAULT_SEGMENT_SIZE (64 * 1024 * 1024)

typedef struct sg_wal_writer_options
{
	/* Roll to a new segment once the current one holds this many bytes. */
	uint64_t	segment_size;
	/*
	 * Never hand out LSNs below this: if the log ends earlier (or is
	 * empty), a new segment starting here is created. Lets the engine
	 * keep LSNs above any it already recorded elsewhere.
	 */
	uint64_t	min_lsn;
} sg_wal_writer_options;

/* Shared writer state: plain data, no pointers (may sit in shared memory). */
typedef struct sg_wal_writer_state
{
	uint64_t	seg_start;		/* start LSN (= name) of the current segment */
	uint64_t	seg_bytes;		/* its size: the end LSN is seg_start + seg_bytes */
	uint64_t	synced_lsn;		/* everything below is durable */
	uint64_t	segment_size;	/* roll threshold */
	uint64_t	syncs;			/* file fsyncs issued (stats) */
	uint64_t	bytes;			/* log bytes appended since open (stats) */
	bool		failed;			/* an append or fsync failed: refuse everything */
	bool		sync_failed;	/* ... and it was an fsync */
	bool		disk_full;		/* ... and it was an append that found no space */
	char		failed_msg[SG_ERR_MSG_LEN];
} sg_wal_writer_state;

typedef struct sg_wal_writer sg_wal_writer;

/*
 * Open the WAL in dir (created if missing) for appending, initialising
 * *state (NULL: the writer keeps a private one). Appends continue at the
 * end of the newest segment, or in a new segment when there is none.
 * REQUIRES: replay with truncation (sg_wal_replay) has run on dir since
 * the last crash, so the newest segment ends cleanly.
 */
extern sg_code sg_wal_writer_open(sg_env *env, const char *dir,
								  const sg_wal_writer_options *opts,
								  sg_wal_writer_state *state,
								  sg_wal_writer **out, sg_err *err);

/* Another process's handle on a state that sg_wal_writer_open initialised. */
extern sg_code sg_wal_writer_attach(sg_env *env, const char *dir,
									sg_wal_writer_state *state,
									sg_wal_writer **out, sg_err *err);

/* Close the handle (no sync; the shared state is left as it is). */
extern sg_code sg_wal_writer_close(sg_wal_writer *w, sg_err *err);

/*
 * Append one record (rolling first if the segment is full); *end_lsn (may
 * be NULL) gets its end LSN. Not durable until sg_wal_writer_sync. A
 * failure leaves the writer failed: every later call is refused, except
 * that after an append found no space (err->disk_full) the next append
 * cuts the partial record off and tries again, so writes resume by
 * themselves once space is back. A failed fsync is final.
 */
extern sg_code sg_wal_writer_append(sg_wal_writer *w, sg_slice record,
									uint64_t *end_lsn, sg_err *err);

/* Make everything appended so far durable (no-op if it already is). */
extern sg_code sg_wal_writer_sync(sg_wal_writer *w, sg_err *err);

/*
 * The same sync in three steps, so that a caller sharing the writer across
 * processes can let others append while the fsync runs:
 *   sync_begin   (caller's lock held) *target = end LSN to make durable, 0
 *                if nothing is to do; opens the current segment;
 *   sync_file    (no lock needed: this handle, this process) the fsync;
 *   sync_end     (caller's lock held) records target as durable, or enters
 *                the failed state if the fsync failed (sync_rc).
 * A segment rolled in between was fsynced by the roll itself, so target is
 * durable either way.
 */
extern sg_code sg_wal_writer_sync_begin(sg_wal_writer *w, uint64_t *target, sg_err *err);
extern sg_code sg_wal_writer_sync_file(sg_wal_writer *w, sg_err *err);
extern sg_code sg_wal_writer_sync_end(sg_wal_writer *w, uint64_t target, sg_code sync_rc,
									  sg_err *err);

/* Start a new segment now (the current one is fsynced first). */
extern sg_code sg_wal_writer_roll(sg_wal_writer *w, sg_err *err);

/*
 * Unlink every segment whose records all end at or below lsn (never the
 * current segment), then fsync the directory. *deleted (may be NULL)
 * counts them.
 */
extern sg_code sg_wal_writer_delete_below(sg_wal_writer *w, uint64_t lsn,
										  uint64_t *deleted, sg_err *err);

/* LSN just past the last appended byte / the durable horizon. */
extern uint64_t sg_wal_writer_end_lsn(const sg_wal_writer *w);
extern uint64_t sg_wal_writer_synced_lsn(const sg_wal_writer *w);
extern const sg_wal_writer_state *sg_wal_writer_get_state(const sg_wal_writer *w);

/* ---------------------------------------------------------------------
 * Replay / recovery
 * --------------------------------------------------------------------- */

/*
 * Called once per record, in LSN order, with the record's end LSN. A
 * non-OK return stops replay and is returned (fill err).
 */
typedef sg_code (*sg_wal_replay_fn) (void *arg, uint64_t end_lsn, sg_slice record,
									 sg_err *err);

typedef struct sg_wal_replay_result
{
	uint64_t	end_lsn;		/* end of the log after recovery (0: no segments) */
	uint64_t	records;		/* records passed to the callback */
	uint64_t	segments;		/* segments read */
	bool		torn_tail;		/* the newest segment had a torn tail */
	bool		truncated;		/* ... and it was cut off */
	uint64_t	torn_lsn;		/* LSN the log was (or would be) cut to */
	uint64_t	torn_bytes;		/* bytes dropped */
	char		torn_msg[SG_ERR_MSG_LEN];	/* one line for the server log */
} sg_wal_replay_result;

/*
 * Read every record whose end LSN is > from_lsn, across segments in order,
 * calling fn (may be NULL: just validate). Segments wholly below from_lsn
 * are not read. A torn tail in the NEWEST segment ends the log: with
 * truncate_torn_tail the file is cut to the end of its last good record
 * and fsynced, and result->torn_msg says what was dropped. Anything else
 * (damage in an older segment, a bad header, a missing segment, corruption
 * followed by valid data) is SG_CORRUPTION naming the file and offset.
 */
extern sg_code sg_wal_replay(sg_env *env, const char *dir, uint64_t from_lsn,
							 bool truncate_torn_tail, sg_wal_replay_fn fn, void *arg,
							 sg_wal_replay_result *result, sg_err *err);

#endif							/* SG_WAL_WRITER_H */
