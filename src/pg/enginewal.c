/*
 * enginewal.c — strata's use of the engine WAL inside PostgreSQL: the
 * record format, appends from any backend, group commit at pre-commit,
 * replay into memtables at server start (stratago.wal_sink = engine; the
 * other sink, PostgreSQL's WAL, is pgwal.c).
 *
 * Engine WAL record (frozen format; one record per appended batch):
 *
 *   offset size  field
 *   0      1     record type: 1 = rows
 *   1      4     spcNode  (fixed32)
 *   5      4     dbNode   (fixed32)
 *   9      4     relNode  (fixed32)
 *   13     8     tree id  (fixed64): replay skips records of a tree whose
 *                directory now carries another id (relfilenode reused)
 *   21     ...   write batch (engine/wal/batch.h): first seq, count, entries
 *
 * Group commit: a committing backend waits for "durable up to my last
 * LSN". The first to get the sync lock fsyncs everything appended so far;
 * the others wait on the lock (LWLockAcquireOrWait) and usually find their
 * LSN already durable when it is released — PostgreSQL's own WALWriteLock
 * idiom.
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "engine/base/coding.h"
#include "engine/base/env.h"
#include "engine/wal/batch.h"
#include "engine/wal/wal_segment.h"
#include "engine/wal/wal_writer.h"
#include "pg/apply.h"
#include "pg/enginewal.h"
#include "pg/error.h"
#include "pg/stratago.h"
#include "pg/tree.h"

#define STRATA_WAL_DIR			STRATAGO_DIR "/wal"
#define STRATA_REC_ROWS			1
#define STRATA_REC_HEADER_SIZE	21

/*
 * The engine WAL's shared state, its own (not the tree registry's): the
 * writer's position, the durable LSN group commit has reached, whether
 * recovery left the log usable, and statistics (stratago.wal_stats()).
 * insert_lock serialises appends and position changes; sync_lock elects
 * the group commit leader. Lock order: insert, then sync (tree.h).
 */
typedef struct StrataWalShared
{
	LWLock	   *insert_lock;
	LWLock	   *sync_lock;
	sg_wal_writer_state state;
	pg_atomic_uint64 durable_lsn;
	bool		ready;			/* recovery done, writer state valid */
	char		error[SG_ERR_MSG_LEN];	/* why not, if recovery failed */
	pg_atomic_uint64 commits;	/* commits that wrote it */
	pg_atomic_uint64 syncs;		/* fsyncs issued for them (group commit) */
	pg_atomic_uint64 segments_removed;
} StrataWalShared;

static StrataWalShared *wal_shared = NULL;

Size
strata_wal_shmem_size(void)
{
	return MAXALIGN(sizeof(StrataWalShared));
}

/* Attach (or, first, create) the shared state. REQUIRES: AddinShmemInitLock. */
void
strata_wal_shmem_init(void)
{
	bool		found;

	wal_shared = ShmemInitStruct("stratago engine wal", sizeof(StrataWalShared), &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("stratago wal");

		memset(wal_shared, 0, sizeof(*wal_shared));
		wal_shared->insert_lock = &locks[0].lock;
		wal_shared->sync_lock = &locks[1].lock;
		pg_atomic_init_u64(&wal_shared->durable_lsn, 0);
		pg_atomic_init_u64(&wal_shared->commits, 0);
		pg_atomic_init_u64(&wal_shared->syncs, 0);
		pg_atomic_init_u64(&wal_shared->segments_removed, 0);
	}
}

void
strata_wal_stats(uint64 *commits, uint64 *syncs, uint64 *segments_removed)
{
	*commits = pg_atomic_read_u64(&wal_shared->commits);
	*syncs = pg_atomic_read_u64(&wal_shared->syncs);
	*segments_removed = pg_atomic_read_u64(&wal_shared->segments_removed);
}

/* process-local state */
static sg_wal_writer *my_writer = NULL;
static uint64 my_xact_end_lsn = 0;	/* last engine WAL record of this xact */
static bool callbacks_registered = false;

/* ------------------------------------------------------------------------
 * Appending
 * ------------------------------------------------------------------------
 */

static sg_wal_writer *
writer_handle(void)
{
	if (my_writer == NULL)
	{
		sg_err		err = {0};
		sg_code		rc;

		if (!wal_shared->ready)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("strata storage is not available"),
					 errdetail("%s", wal_shared->error[0] ? wal_shared->error
							   : "Engine recovery did not complete.")));
		rc = sg_wal_writer_attach(sg_env_posix(), STRATA_WAL_DIR, &wal_shared->state,
								  &my_writer, &err);
		if (rc != SG_OK)
			strata_engine_error(rc, &err);
	}
	return my_writer;
}

/*
 * Append a rows record for tree. REQUIRES: the tree lock is held
 * exclusively (so WAL order matches sequence order within the tree).
 * Returns the record's end LSN.
 */
uint64
strata_wal_append_rows(StrataTree *tree, sg_slice batch)
{
	StringInfoData rec;
	char		hdr[STRATA_REC_HEADER_SIZE];
	uint64		end_lsn = 0;
	sg_err		err = {0};
	sg_code		rc;
	sg_wal_writer *w = writer_handle();

	hdr[0] = STRATA_REC_ROWS;
	sg_encode_fixed32(hdr + 1, tree->key.node.spcNode);
	sg_encode_fixed32(hdr + 5, tree->key.node.dbNode);
	sg_encode_fixed32(hdr + 9, tree->key.node.relNode);
	sg_encode_fixed64(hdr + 13, tree->tree_id);
	initStringInfo(&rec);
	appendBinaryStringInfo(&rec, hdr, sizeof(hdr));
	appendBinaryStringInfo(&rec, batch.data, batch.len);

	LWLockAcquire(wal_shared->insert_lock, LW_EXCLUSIVE);
	rc = sg_wal_writer_append(w, sg_slice_make(rec.data, rec.len), &end_lsn, &err);
	LWLockRelease(wal_shared->insert_lock);
	pfree(rec.data);
	if (rc != SG_OK)
		strata_engine_error(rc, &err);
	tree->wal_bytes += rec.len;
	return end_lsn;
}

void
strata_wal_note_write(uint64 end_lsn)
{
	if (end_lsn > my_xact_end_lsn)
		my_xact_end_lsn = end_lsn;
}

/* Wait until everything up to lsn is durable, sharing fsyncs (group commit). */
void
strata_wal_wait_durable(uint64 lsn)
{
	sg_wal_writer *w = writer_handle();

	while (pg_atomic_read_u64(&wal_shared->durable_lsn) < lsn)
	{
		if (LWLockAcquireOrWait(wal_shared->sync_lock, LW_EXCLUSIVE))
		{
			sg_err		err = {0};
			sg_code		rc = SG_OK;

			if (pg_atomic_read_u64(&wal_shared->durable_lsn) < lsn)
			{
				uint64_t	target;

				/*
				 * Appenders go on while the fsync runs: only noting what to
				 * sync and recording it durable need the insert lock.
				 */
				pgstat_report_wait_start(PG_WAIT_EXTENSION);
				LWLockAcquire(wal_shared->insert_lock, LW_EXCLUSIVE);
				rc = sg_wal_writer_sync_begin(w, &target, &err);
				LWLockRelease(wal_shared->insert_lock);
				if (rc == SG_OK && target != 0)
				{
					sg_code		sync_rc = sg_wal_writer_sync_file(w, &err);

					pg_atomic_fetch_add_u64(&wal_shared->syncs, 1);
					LWLockAcquire(wal_shared->insert_lock, LW_EXCLUSIVE);
					rc = sg_wal_writer_sync_end(w, target, sync_rc, &err);
					if (rc == SG_OK)
						pg_atomic_write_u64(&wal_shared->durable_lsn,
											sg_wal_writer_synced_lsn(w));
					LWLockRelease(wal_shared->insert_lock);
				}
				pgstat_report_wait_end();
			}
			LWLockRelease(wal_shared->sync_lock);
			if (rc != SG_OK)
				strata_engine_error(rc, &err);
		}
	}
}

static void
strata_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			if (my_xact_end_lsn == 0)
				break;
			/* counted with or without stratago.sync: syncs < commits shows both */
			pg_atomic_fetch_add_u64(&wal_shared->commits, 1);
			/* the engine WAL must be durable before the commit record is */
			if (strata_sync)
				strata_wal_wait_durable(my_xact_end_lsn);

			/*
			 * PostgreSQL flushes a commit record at once only for a
			 * transaction that wrote WAL (XactLastRecEnd != 0); strata rows
			 * go to the engine WAL, so without this a strata-only commit
			 * would be acknowledged before its commit record is durable and
			 * lost in a crash. Marking the transaction as a WAL writer makes
			 * synchronous_commit and synchronous replication apply to it as
			 * they would to heap.
			 */
			if (XactLastRecEnd == InvalidXLogRecPtr)
				XactLastRecEnd = GetXLogInsertRecPtr();
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			my_xact_end_lsn = 0;
			break;
	}
}

void
strata_wal_init_callbacks(void)
{
	if (!callbacks_registered)
	{
		RegisterXactCallback(strata_xact_callback, NULL);
		callbacks_registered = true;
	}
}

/* Where the engine WAL ends now: anything appended later ends above it. */
uint64
strata_wal_end_lsn(void)
{
	uint64		end;

	/* from the shared state: also during the postmaster's replay */
	LWLockAcquire(wal_shared->insert_lock, LW_SHARED);
	end = wal_shared->state.seg_start + wal_shared->state.seg_bytes;
	LWLockRelease(wal_shared->insert_lock);
	return end;
}

/*
 * Delete the engine WAL segments that hold nothing at or above horizon
 * (checkpoint.c decides it from the trees).
 */
void
strata_wal_delete_below(uint64 horizon)
{
	sg_wal_writer *w = writer_handle();
	uint64		deleted = 0;
	sg_err		err = {0};
	sg_code		rc;

	LWLockAcquire(wal_shared->insert_lock, LW_EXCLUSIVE);
	rc = sg_wal_writer_delete_below(w, horizon, &deleted, &err);
	LWLockRelease(wal_shared->insert_lock);
	if (rc != SG_OK)
		strata_engine_error(rc, &err);
	pg_atomic_fetch_add_u64(&wal_shared->segments_removed, deleted);
	if (deleted > 0)
		ereport(DEBUG1,
				(errmsg_internal("stratago: removed %llu engine WAL segments below LSN %llu",
								 (unsigned long long) deleted, (unsigned long long) horizon)));
}

/* ------------------------------------------------------------------------
 * Recovery (postmaster, at shared memory initialisation)
 * ------------------------------------------------------------------------
 */

typedef struct ReplayState
{
	uint64		applied;
	uint64		skipped;
} ReplayState;

static sg_code
replay_record(void *arg, uint64_t end_lsn, sg_slice rec, sg_err *err)
{
	ReplayState *st = arg;
	RelFileNode rnode;
	uint64		tree_id;
	StrataTree *tree;

	if (rec.len < STRATA_REC_HEADER_SIZE || rec.data[0] != STRATA_REC_ROWS)
		return sg_error(err, SG_CORRUPTION,
						"engine WAL record ending at LSN %llu has an unknown type or is too short",
						(unsigned long long) end_lsn);
	rnode.spcNode = sg_decode_fixed32(rec.data + 1);
	rnode.dbNode = sg_decode_fixed32(rec.data + 5);
	rnode.relNode = sg_decode_fixed32(rec.data + 9);
	tree_id = sg_decode_fixed64(rec.data + 13);
	rec.data += STRATA_REC_HEADER_SIZE;
	rec.len -= STRATA_REC_HEADER_SIZE;
	if (sg_batch_validate(rec, "engine WAL record", err) != SG_OK)
		return SG_CORRUPTION;
	tree = strata_tree_lookup(&rnode);
	/* a dropped tree, or a relfilenode reused by a newer tree, is skipped */
	if (tree != NULL && tree->tree_id == tree_id &&
		strata_apply_batch(tree, STRATA_LOG_ENGINE, end_lsn, end_lsn, rec))
		st->applied++;
	else
		st->skipped++;
	return SG_OK;
}

/*
 * Replay the engine WAL into the trees' memtables, then open the writer
 * for appends. Runs in the postmaster before any backend exists; damage in
 * the middle of the log stops the server with a message naming the file
 * and offset; a torn tail is cut off with a LOG line.
 */
void
strata_wal_recover(void)
{
	sg_err		err = {0};
	sg_code		rc;
	sg_wal_replay_result res;
	ReplayState st = {0, 0};
	sg_wal_writer_options opts;
	sg_wal_writer *w;
	uint64		from_lsn;

	if (MakePGDirectory(STRATA_WAL_DIR) < 0 && errno != EEXIST)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", STRATA_WAL_DIR)));
	fsync_fname(STRATAGO_DIR, true);

	/*
	 * Segments are deleted only once every record in them is flushed, so
	 * the oldest segment left is where replay starts.
	 */
	{
		uint64_t   *starts = NULL;
		size_t		nseg = 0;

		rc = sg_wal_list_segments(sg_env_posix(), STRATA_WAL_DIR, true, &starts, &nseg, &err);
		if (rc != SG_OK)
			ereport(FATAL,
					(errcode_for_file_access(),
					 errmsg("could not list the strata engine WAL: %s", err.msg)));
		from_lsn = nseg > 0 ? starts[0] : 0;
		free(starts);
	}
	rc = sg_wal_replay(sg_env_posix(), STRATA_WAL_DIR, from_lsn, true, replay_record, &st, &res, &err);
	if (rc != SG_OK)
	{
		snprintf(wal_shared->error, sizeof(wal_shared->error), "%s", err.msg);
		if (err.sync_failed)
			ereport(PANIC,
					(errmsg("stratago: could not fsync during engine recovery: %s", err.msg)));
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("strata engine WAL is corrupted: %s", err.msg),
				 errhint("Corruption in the middle of the engine WAL is never skipped. Restore the data directory from a backup.")));
	}
	if (res.torn_tail)
		ereport(LOG,
				(errmsg("stratago: %s", res.torn_msg)));
	if (res.records > 0)
		ereport(LOG,
				(errmsg("stratago: read %llu engine WAL records (%llu replayed, %llu already in SSTables or of dropped tables)",
						(unsigned long long) res.records,
						(unsigned long long) st.applied,
						(unsigned long long) st.skipped)));

	opts.segment_size = SG_WAL_DEFAULT_SEGMENT_SIZE;
	opts.min_lsn = 0;
	rc = sg_wal_writer_open(sg_env_posix(), STRATA_WAL_DIR, &opts, &wal_shared->state,
							&w, &err);
	if (rc != SG_OK)
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not open the strata engine WAL: %s", err.msg)));
	pg_atomic_write_u64(&wal_shared->durable_lsn, sg_wal_writer_synced_lsn(w));
	sg_wal_writer_close(w, NULL);
	wal_shared->ready = true;
}
