/*
 * pgwal.c — strata records in PostgreSQL's WAL: the custom resource
 * manager "stratago" (id 141), the second WAL sink behind
 * stratago.wal_sink = postgres, its redo, and what lets memtables that
 * are not yet on disk survive checkpoints.
 *
 * Why PostgreSQL's WAL: a strata change logged there becomes durable with
 * the commit record's own flush (one fsync per commit, synchronous_commit
 * and synchronous replication apply as for heap), and it travels to
 * streaming standbys, which redo it into their own trees.
 *
 * Resource manager id 141 and the record kinds: walrecords.h (frozen).
 *
 * Records (frozen formats; all integers in the machine's byte order, as
 * PostgreSQL's own records):
 *
 *   info 0x00 RESERVE_XIDS  uint64 horizon: xids below it may be in engine
 *                           files; redo moves nextXid past it (written
 *                           for the engine sink's writes only)
 *   info 0x10 ROWS          xl_strata_tree, then one write batch
 *                           (engine/wal/batch.h: first seq, count, entries)
 *   info 0x20 CREATE        xl_strata_tree: a new (or truncated) tree; redo
 *                           replaces any other tree of the relfilenode
 *   info 0x30 CONFLICT      RelFileNode, TransactionId: VACUUM is about to
 *                           remove index entries of rows whose newest
 *                           writer is that xid; a hot standby cancels the
 *                           queries that may still see them (heap's prune
 *                           records do this for heap)
 *   info 0x40 OPTIONS       xl_strata_tree, uint8 codec: the tree's bottom
 *                           level codec (treeopts.h)
 *   info 0x50 LOGICAL       what logical decoding reads of a change (only at
 *                           wal_level = logical; logical.c gives the layout
 *                           and decodes it); redo does nothing with it
 *
 * A tree's drop needs no record: it follows the smgr file, whose unlink
 * PostgreSQL logs, and the maintenance worker sweeps trees whose file is
 * gone (flush.c), on a standby as on the primary.
 *
 * Surviving checkpoints. A memtable lives only in memory; its records may
 * be older than the last checkpoint's redo point, from which PostgreSQL's
 * crash recovery starts. So:
 *   - the maintenance worker keeps $PGDATA/stratago/pg_replay_from, the
 *     start LSN of the oldest record any memtable holds (or the current
 *     position if none), and a physical replication slot "stratago" whose
 *     restart_lsn follows it, so the WAL from there on is kept. The file
 *     is written durably before the slot moves, so the slot is never
 *     ahead of it. Once a checkpoint (or restartpoint) has begun, trees
 *     whose memtables hold records from before its redo point are
 *     flushed, as heap's dirty buffers are: retention stays within about
 *     one checkpoint cycle.
 *   - a checkpoint completes only after those flushes (the checkpoint
 *     guard below), so a base backup needs no WAL from before it; the
 *     slot is what crash recovery relies on;
 *   - at startup the postmaster (before the startup process) reads
 *     PostgreSQL's WAL from pg_replay_from up to where redo will begin
 *     (the checkpoint's redo point, or a restored backup's start) and
 *     applies the strata records there; redo applies the rest.
 *     Each tree's MANIFEST records how far into PostgreSQL's WAL its
 *     SSTables reach (aux log number), so records already flushed are
 *     skipped.
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/clog.h"
#include "access/commit_ts.h"
#include "access/timeline.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "access/xlogrecovery.h"
#include "access/xlogutils.h"
#include "common/controldata_utils.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "storage/fd.h"
#include "storage/standby.h"
#include "utils/memutils.h"

#include "engine/wal/batch.h"
#include "storage/shmem.h"

#include "pg/apply.h"
#include "pg/logical.h"
#include "pg/pgwal.h"
#include "pg/stratago.h"
#include "pg/tree.h"
#include "pg/treeopts.h"
#include "pg/walrecords.h"

/*
 * How far past the xid that needs one a reservation reaches. After a
 * crash, redo moves nextXid to the horizon, so the primary's next xid
 * jumps by up to this much; a hot standby takes every xid it has not seen
 * below the next one it sees for a running transaction, and keeps those in
 * KnownAssignedXids, 65 per backend slot (about 7,900 with default
 * settings), stopping with FATAL "too many KnownAssignedXids" when they do
 * not fit. 8192 did not fit with the defaults; 1024 fits once a standby
 * has 16 backend slots (doc/DESIGN.md §3.1).
 */
#define STRATA_XID_RESERVE_STEP	1024
#define STRATA_CLOG_XACTS_PER_PAGE (BLCKSZ * 4)	/* clog.c: 2 status bits per xact */

#define STRATA_SLOT_NAME		"stratago"
#define STRATA_REPLAY_FROM_FILE	STRATAGO_DIR "/pg_replay_from"

/* CONFLICT record. */
typedef struct xl_strata_conflict
{
	RelFileNode node;
	TransactionId latest_removed;
} xl_strata_conflict;

/* Header of ROWS and CREATE records. */
typedef struct xl_strata_tree
{
	RelFileNode node;
	uint64		tree_id;
} xl_strata_tree;

/* ------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------
 */

/*
 * Log a batch of row versions for tree. REQUIRES: the tree lock is held
 * exclusively (so that WAL order matches sequence order within the tree).
 * Returns the record's end LSN; *start gets its start.
 */
/* Begin a ROWS or CREATE record with its tree header (hdr must outlive it). */
static void
begin_tree_record(xl_strata_tree *hdr, const RelFileNode *rnode, uint64 tree_id)
{
	memset(hdr, 0, sizeof(*hdr));
	hdr->node = *rnode;
	hdr->tree_id = tree_id;
	XLogBeginInsert();
	XLogRegisterData((char *) hdr, sizeof(*hdr));
}

XLogRecPtr
strata_pgwal_log_rows(StrataTree *tree, sg_slice batch, XLogRecPtr *start)
{
	xl_strata_tree hdr;
	XLogRecPtr	end;

	begin_tree_record(&hdr, &tree->key.node, tree->tree_id);
	XLogRegisterData((char *) batch.data, batch.len);
	end = XLogInsert(STRATA_RMGR_ID, XLOG_STRATA_ROWS);
	*start = ProcLastRecPtr;
	tree->wal_bytes += sizeof(hdr) + batch.len;
	return end;
}

void
strata_pgwal_log_create(const RelFileNode *rnode, uint64 tree_id)
{
	xl_strata_tree hdr;

	begin_tree_record(&hdr, rnode, tree_id);
	(void) XLogInsert(STRATA_RMGR_ID, XLOG_STRATA_CREATE);
}

/*
 * A table's own bottom-level codec (treeopts.c), for standbys and PITR;
 * crash recovery has the OPTIONS file, written durably before this.
 */
void
strata_pgwal_log_options(const RelFileNode *rnode, uint64 tree_id, StrataTreeCodec codec)
{
	xl_strata_tree hdr;
	uint8		value = (uint8) codec;

	begin_tree_record(&hdr, rnode, tree_id);
	XLogRegisterData((char *) &value, sizeof(value));
	(void) XLogInsert(STRATA_RMGR_ID, XLOG_STRATA_OPTIONS);
}

/*
 * Before VACUUM removes index entries of dead rows: standbys cancel the
 * queries that may still see those rows. Only when standbys can run
 * queries, and whatever the sink (the index changes are in PostgreSQL's
 * WAL either way).
 */
void
strata_pgwal_log_conflict(const RelFileNode *rnode, TransactionId latest_removed)
{
	xl_strata_conflict rec;

	if (!XLogStandbyInfoActive() || !TransactionIdIsValid(latest_removed))
		return;
	memset(&rec, 0, sizeof(rec));
	rec.node = *rnode;
	rec.latest_removed = latest_removed;
	XLogBeginInsert();
	XLogRegisterData((char *) &rec, sizeof(rec));
	(void) XLogInsert(STRATA_RMGR_ID, XLOG_STRATA_CONFLICT);
}

/*
 * xid reservations' shared state, this module's own: xids below horizon
 * may appear in engine files (doc/DESIGN.md §3.1); lock serialises raising
 * it. Starts at 0 every run, so the first strata write reserves anew.
 */
typedef struct StrataXidShared
{
	LWLock	   *lock;
	pg_atomic_uint64 horizon;
	pg_atomic_uint64 logged_redo;	/* redo point when horizon was last logged */
} StrataXidShared;

static StrataXidShared *xid_shared = NULL;

Size
strata_pgwal_shmem_size(void)
{
	return MAXALIGN(sizeof(StrataXidShared));
}

/* Attach (or, first, create) the shared state. REQUIRES: AddinShmemInitLock. */
void
strata_pgwal_shmem_init(void)
{
	bool		found;

	xid_shared = ShmemInitStruct("stratago xid reservations", sizeof(StrataXidShared), &found);
	if (!found)
	{
		xid_shared->lock = &(GetNamedLWLockTranche("stratago xid"))->lock;
		pg_atomic_init_u64(&xid_shared->horizon, 0);
		pg_atomic_init_u64(&xid_shared->logged_redo, 0);
	}
}

/*
 * Make sure fxid lies below a horizon that PostgreSQL's WAL durably knows:
 * after a crash, redo of the reservation record moves nextXid past it, so
 * no xid found in engine files is ever handed out again. Only writes to
 * the engine sink need it: a version logged in PostgreSQL's WAL carries
 * its xid in the record (xl_xid), which redo moves nextXid past, and it
 * reaches an SSTable only after that record is durable (flush.c), so
 * nothing on disk holds an xid PostgreSQL's WAL does not know.
 *
 * Redo only reaches records after the last checkpoint's redo point, and a
 * checkpoint records the nextXid of its start, below xids of the current
 * reservation handed out after it: with the engine sink, a transaction
 * open at a crash left its rows in the engine WAL and no trace in
 * PostgreSQL's, and its xid went to the first transaction after the
 * restart, whose commit made those rows visible (TAP 021). So the
 * reservation is logged again once the redo point has moved: a checkpoint
 * publishes its redo point before it reads nextXid, so a writer that still
 * sees the old redo point got its xid before that read, below the
 * checkpoint's nextXid.
 */
void
strata_reserve_xid(FullTransactionId fxid)
{
	uint64		x = U64FromFullTransactionId(fxid);
	XLogRecPtr	redo = GetRedoRecPtr();

	if (x < pg_atomic_read_u64(&xid_shared->horizon) &&
		redo == pg_atomic_read_u64(&xid_shared->logged_redo))
		return;

	LWLockAcquire(xid_shared->lock, LW_EXCLUSIVE);
	if (x >= pg_atomic_read_u64(&xid_shared->horizon) ||
		redo != pg_atomic_read_u64(&xid_shared->logged_redo))
	{
		uint64		horizon = Max(x + STRATA_XID_RESERVE_STEP,
								  pg_atomic_read_u64(&xid_shared->horizon));
		XLogRecPtr	lsn;
		uint64		next;

		/*
		 * After a crash, redo moves nextXid to the horizon, skipping xids
		 * that were never assigned; their commit-log pages must exist by
		 * then. Create (and WAL-log) every page past the one nextXid is on,
		 * up to the horizon, as GetNewTransactionId would: those pages hold
		 * no assigned xid yet while XidGenLock keeps nextXid still, and
		 * zeroing them again when their first xid is assigned is harmless.
		 */
		LWLockAcquire(XidGenLock, LW_EXCLUSIVE);
		next = U64FromFullTransactionId(ShmemVariableCache->nextXid);
		for (uint64 p = (next / STRATA_CLOG_XACTS_PER_PAGE + 1) * STRATA_CLOG_XACTS_PER_PAGE;
			 p <= horizon; p += STRATA_CLOG_XACTS_PER_PAGE)
		{
			TransactionId first = XidFromFullTransactionId(FullTransactionIdFromU64(p));

			ExtendCLOG(first);
			ExtendCommitTs(first);
		}
		LWLockRelease(XidGenLock);

		XLogBeginInsert();
		XLogRegisterData((char *) &horizon, sizeof(horizon));
		lsn = XLogInsert(STRATA_RMGR_ID, XLOG_STRATA_RESERVE_XIDS);
		XLogFlush(lsn);
		pg_atomic_write_u64(&xid_shared->horizon, horizon);
		pg_atomic_write_u64(&xid_shared->logged_redo, redo);
	}
	LWLockRelease(xid_shared->lock);
}

/* ------------------------------------------------------------------------
 * Applying records (redo, and the postmaster's replay below)
 * ------------------------------------------------------------------------
 */

static void
read_tree_header(XLogReaderState *record, xl_strata_tree *hdr)
{
	if (XLogRecGetDataLen(record) < sizeof(*hdr))
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("strata WAL record at %X/%X is too short",
						LSN_FORMAT_ARGS(record->ReadRecPtr))));
	memcpy(hdr, XLogRecGetData(record), sizeof(*hdr));
}

/* Apply one strata record; returns whether it changed a tree. */
static bool
apply_record(XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;
	xl_strata_tree hdr;
	StrataTree *tree;

	switch (info)
	{
		case XLOG_STRATA_RESERVE_XIDS:
			{
				uint64		horizon;

				memcpy(&horizon, XLogRecGetData(record), sizeof(horizon));
				/* the commit-log pages up to horizon were created by records before this one */
				if (IsUnderPostmaster)
					AdvanceNextFullTransactionIdPastXid(XidFromFullTransactionId(FullTransactionIdFromU64(horizon)));
				return false;
			}
		case XLOG_STRATA_ROWS:
			read_tree_header(record, &hdr);
			tree = strata_tree_lookup(&hdr.node);
			/* a dropped tree, or a relfilenode reused by a newer tree, is skipped */
			if (tree == NULL || tree->tree_id != hdr.tree_id)
				return false;
			return strata_apply_batch(tree, STRATA_LOG_POSTGRES, record->ReadRecPtr,
									  record->EndRecPtr,
									  sg_slice_make(XLogRecGetData(record) + sizeof(hdr),
													XLogRecGetDataLen(record) - sizeof(hdr)));
		case XLOG_STRATA_CONFLICT:
			{
				xl_strata_conflict rec;

				memcpy(&rec, XLogRecGetData(record), sizeof(rec));
				/* only the startup process of a hot standby has queries to cancel */
				if (IsUnderPostmaster && InHotStandby)
					ResolveRecoveryConflictWithSnapshot(rec.latest_removed, rec.node);
				return false;
			}
		case XLOG_STRATA_OPTIONS:
			{
				uint8		codec;

				read_tree_header(record, &hdr);
				if (XLogRecGetDataLen(record) < sizeof(hdr) + sizeof(codec))
					ereport(FATAL,
							(errcode(ERRCODE_DATA_CORRUPTED),
							 errmsg("strata WAL record at %X/%X is too short",
									LSN_FORMAT_ARGS(record->ReadRecPtr))));
				memcpy(&codec, XLogRecGetData(record) + sizeof(hdr), sizeof(codec));
				tree = strata_tree_lookup(&hdr.node);
				/* applying it again (both replays see it) writes the same file */
				if (tree != NULL && tree->tree_id == hdr.tree_id && !tree->damaged &&
					codec <= STRATA_TREE_CODEC_ZSTD)
					strata_tree_options_store(tree, (StrataTreeCodec) codec, WARNING);
				return false;
			}
		case XLOG_STRATA_LOGICAL:
			return false;		/* for logical decoding only (logical.c) */
		case XLOG_STRATA_CREATE:
			read_tree_header(record, &hdr);
			tree = strata_tree_lookup(&hdr.node);
			if (tree != NULL && tree->tree_id == hdr.tree_id)
				return false;

			/*
			 * Any other tree of this relfilenode is either older (stale) or
			 * newer; a newer one is recreated, and refilled, by the replay
			 * of its own creation and rows, which all follow this record.
			 */
			strata_tree_create_with_id(&hdr.node, InvalidBackendId,
									   strata_persistence_on_disk(&hdr.node), hdr.tree_id);
			return true;
		default:
			elog(PANIC, "stratago redo: unknown op code %u", info);
	}
	return false;
}

static void
strata_rmgr_redo(XLogReaderState *record)
{
	(void) apply_record(record);
}

static void
strata_rmgr_desc(StringInfo buf, XLogReaderState *record)
{
	uint8		info = XLogRecGetInfo(record) & ~XLR_INFO_MASK;
	xl_strata_tree hdr;

	if (info == XLOG_STRATA_RESERVE_XIDS)
	{
		uint64		horizon;

		memcpy(&horizon, XLogRecGetData(record), sizeof(horizon));
		appendStringInfo(buf, "xids reserved below " UINT64_FORMAT, horizon);
		return;
	}
	if (info == XLOG_STRATA_CONFLICT)
	{
		xl_strata_conflict rec;

		memcpy(&rec, XLogRecGetData(record), sizeof(rec));
		appendStringInfo(buf, "rel %u/%u/%u latest removed xid %u",
						 rec.node.spcNode, rec.node.dbNode, rec.node.relNode,
						 rec.latest_removed);
		return;
	}
	if (info == XLOG_STRATA_LOGICAL)
	{
		strata_logical_desc(buf, record);
		return;
	}
	if (XLogRecGetDataLen(record) < sizeof(hdr))
		return;
	memcpy(&hdr, XLogRecGetData(record), sizeof(hdr));
	appendStringInfo(buf, "rel %u/%u/%u tree %016llx",
					 hdr.node.spcNode, hdr.node.dbNode, hdr.node.relNode,
					 (unsigned long long) hdr.tree_id);
	if (info == XLOG_STRATA_OPTIONS && XLogRecGetDataLen(record) > sizeof(hdr))
		appendStringInfo(buf, "; bottom_compression %s",
						 strata_tree_codec_name((StrataTreeCodec) XLogRecGetData(record)[sizeof(hdr)]));
	if (info == XLOG_STRATA_ROWS)
	{
		sg_slice	batch = sg_slice_make(XLogRecGetData(record) + sizeof(hdr),
										  XLogRecGetDataLen(record) - sizeof(hdr));
		sg_batch_iter bi;
		sg_batch_entry e;
		sg_err		err = {0};
		uint64		n = 0;
		uint64		first_seq = 0;

		if (sg_batch_iter_init(&bi, batch, "strata WAL record", &err) == SG_OK)
			while (sg_batch_iter_next(&bi, &e, "strata WAL record", &err) == SG_OK)
			{
				if (n++ == 0)
					first_seq = e.seq;
			}
		appendStringInfo(buf, "; %llu versions from seq %llu",
						 (unsigned long long) n, (unsigned long long) first_seq);
	}
}

static const char *
strata_rmgr_identify(uint8 info)
{
	switch (info & ~XLR_INFO_MASK)
	{
		case XLOG_STRATA_RESERVE_XIDS:
			return "RESERVE_XIDS";
		case XLOG_STRATA_ROWS:
			return "ROWS";
		case XLOG_STRATA_CREATE:
			return "CREATE";
		case XLOG_STRATA_CONFLICT:
			return "CONFLICT";
		case XLOG_STRATA_OPTIONS:
			return "OPTIONS";
		case XLOG_STRATA_LOGICAL:
			return "LOGICAL";
	}
	return NULL;
}

static RmgrData strata_rmgr = {
	.rm_name = "stratago",
	.rm_redo = strata_rmgr_redo,
	.rm_desc = strata_rmgr_desc,
	.rm_identify = strata_rmgr_identify,
	.rm_decode = strata_logical_decode,
};

void
strata_pgwal_register_rmgr(void)
{
	RegisterCustomRmgr(STRATA_RMGR_ID, &strata_rmgr);
}

/* ------------------------------------------------------------------------
 * pg_replay_from: where the postmaster's replay starts (checkpoint.c
 * moves it)
 * ------------------------------------------------------------------------
 */

/* The durable replay start, or InvalidXLogRecPtr if there is none. */
XLogRecPtr
strata_pgwal_read_replay_from(void)
{
	int			fd = OpenTransientFile(STRATA_REPLAY_FROM_FILE, O_RDONLY | PG_BINARY);
	uint64		v[2];
	int			n;

	if (fd < 0)
	{
		if (errno == ENOENT)
			return InvalidXLogRecPtr;
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", STRATA_REPLAY_FROM_FILE)));
	}
	n = read(fd, v, sizeof(v));
	CloseTransientFile(fd);
	/* the value is stored twice: a torn write cannot pass for a position */
	if (n != sizeof(v) || v[0] != v[1])
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("file \"%s\" is corrupted", STRATA_REPLAY_FROM_FILE)));
	return (XLogRecPtr) v[0];
}

void
strata_pgwal_write_replay_from(XLogRecPtr lsn)
{
	char		tmp[MAXPGPATH];
	uint64		v[2] = {lsn, lsn};
	int			fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", STRATA_REPLAY_FROM_FILE);
	fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp)));
	if (write(fd, v, sizeof(v)) != sizeof(v))
	{
		if (errno == 0)
			errno = ENOSPC;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	}
	if (pg_fsync(fd) != 0)
		ereport(data_sync_elevel(ERROR),
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", tmp)));
	CloseTransientFile(fd);
	durable_rename(tmp, STRATA_REPLAY_FROM_FILE, ERROR);
}

/* No replay start any more (the engine sink, with nothing left to keep). */
void
strata_pgwal_remove_replay_from(void)
{
	if (unlink(STRATA_REPLAY_FROM_FILE) != 0 && errno != ENOENT)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not remove file \"%s\": %m", STRATA_REPLAY_FROM_FILE)));
}

/* ------------------------------------------------------------------------
 * Replay at startup (postmaster)
 * ------------------------------------------------------------------------
 */

typedef struct PreReplay
{
	XLogRecPtr	upto;			/* the checkpoint's redo point */
	List	   *history;		/* timeline history, newest first */
	XLogSegNo	cached_segno;	/* segment whose timeline is cached_tli */
	TimeLineID	cached_tli;
} PreReplay;

/*
 * The timeline whose file holds segment segno, looking through the history
 * newest first: a segment that holds a timeline switch exists under the
 * new timeline with the old timeline's part copied in.
 */
static TimeLineID
segment_timeline(PreReplay *pr, XLogSegNo segno)
{
	XLogRecPtr	seg_start;
	XLogRecPtr	seg_end;
	char		path[MAXPGPATH];
	struct stat st;
	ListCell   *lc;

	if (pr->cached_tli != 0 && pr->cached_segno == segno)
		return pr->cached_tli;
	XLogSegNoOffsetToRecPtr(segno, 0, wal_segment_size, seg_start);
	seg_end = seg_start + wal_segment_size;
	foreach(lc, pr->history)
	{
		TimeLineHistoryEntry *h = lfirst(lc);

		if ((h->begin != InvalidXLogRecPtr && h->begin >= seg_end) ||
			(h->end != InvalidXLogRecPtr && h->end <= seg_start))
			continue;
		XLogFilePath(path, h->tli, segno, wal_segment_size);
		if (stat(path, &st) == 0)
		{
			pr->cached_segno = segno;
			pr->cached_tli = h->tli;
			return h->tli;
		}
	}
	ereport(FATAL,
			(errcode(ERRCODE_UNDEFINED_FILE),
			 errmsg("could not find the WAL segment holding %X/%X, needed to rebuild strata memtables",
					LSN_FORMAT_ARGS(seg_start)),
			 errdetail("Strata changes from %X/%X on were in memory only when the server stopped or this copy of the data directory was made, and PostgreSQL's WAL from there on is needed to restore them.",
					   LSN_FORMAT_ARGS(seg_start)),
			 errhint("The replication slot \"%s\" keeps this WAL and must not be dropped. A base backup must be taken after the maintenance worker flushed the memtables holding changes from before the backup's checkpoint (see stratago's README).",
					 STRATA_SLOT_NAME)));
	return 0;					/* keep compiler quiet */
}

static void
pre_replay_segment_open(XLogReaderState *state, XLogSegNo segno, TimeLineID *tli_p)
{
	char		path[MAXPGPATH];

	XLogFilePath(path, *tli_p, segno, state->segcxt.ws_segsize);
	state->seg.ws_file = BasicOpenFile(path, O_RDONLY | PG_BINARY);
	if (state->seg.ws_file < 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path)));
}

static int
pre_replay_page_read(XLogReaderState *state, XLogRecPtr page, int req_len,
					 XLogRecPtr target, char *buf)
{
	PreReplay  *pr = state->private_data;
	WALReadError errinfo;
	XLogSegNo	segno;
	TimeLineID	tli;

	XLByteToSeg(page, segno, wal_segment_size);
	tli = segment_timeline(pr, segno);
	/* a whole page: everything below the checkpoint was flushed before it */
	if (!WALRead(state, buf, page, XLOG_BLCKSZ, tli, &errinfo))
		WALReadRaiseError(&errinfo);
	return XLOG_BLCKSZ;
}

/*
 * Where the startup process will begin redo: the start of a base backup
 * being restored (backup_label), else the last checkpoint's redo point.
 */
static XLogRecPtr
redo_start(ControlFileData *cf)
{
	FILE	   *f = AllocateFile(BACKUP_LABEL_FILE, "r");
	uint32		hi,
				lo;
	XLogRecPtr	lsn = cf->checkPointCopy.redo;

	if (f == NULL)
		return lsn;
	if (fscanf(f, "START WAL LOCATION: %X/%X", &hi, &lo) != 2)
		ereport(FATAL,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("invalid data in file \"%s\"", BACKUP_LABEL_FILE)));
	FreeFile(f);
	return ((uint64) hi) << 32 | lo;
}

/*
 * Apply the strata records of PostgreSQL's WAL from pg_replay_from up to
 * where the startup process's redo will begin; it redoes the rest. Runs in
 * the postmaster after the engine WAL's replay.
 */
void
strata_pgwal_recover(void)
{
	XLogRecPtr	from = strata_pgwal_read_replay_from();
	ControlFileData *cf;
	bool		crc_ok;
	PreReplay	pr;
	XLogReaderState *reader;
	XLogRecPtr	first;
	XLogRecord *rec;
	char	   *errormsg = NULL;
	uint64		applied = 0;

	if (from == InvalidXLogRecPtr)
		return;
	cf = get_controlfile(DataDir, &crc_ok);
	if (!crc_ok)
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("calculated CRC checksum does not match value stored in control file")));
	pr.upto = redo_start(cf);
	if (from >= pr.upto)
		return;
	pr.cached_segno = 0;
	pr.cached_tli = 0;
	pr.history = readTimeLineHistory(cf->checkPointCopy.ThisTimeLineID);

	reader = XLogReaderAllocate(wal_segment_size, NULL,
								XL_ROUTINE(.page_read = pre_replay_page_read,
										   .segment_open = pre_replay_segment_open,
										   .segment_close = wal_segment_close),
								&pr);
	if (reader == NULL)
		ereport(FATAL,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed while allocating a WAL reading processor.")));
	first = XLogFindNextRecord(reader, from);
	if (first == InvalidXLogRecPtr)
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not find a valid WAL record at or after %X/%X to rebuild strata memtables",
						LSN_FORMAT_ARGS(from))));
	XLogBeginRead(reader, first);
	for (;;)
	{
		rec = XLogReadRecord(reader, &errormsg);
		if (rec == NULL)
			ereport(FATAL,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("could not read WAL at %X/%X to rebuild strata memtables: %s",
							LSN_FORMAT_ARGS(reader->EndRecPtr),
							errormsg ? errormsg : "no record")));
		if (reader->ReadRecPtr >= pr.upto)
			break;
		if (XLogRecGetRmid(reader) == STRATA_RMGR_ID && apply_record(reader))
			applied++;
	}
	XLogReaderFree(reader);
	pfree(cf);
	ereport(LOG,
			(errmsg("stratago: replayed %llu strata records of PostgreSQL's WAL from %X/%X to the checkpoint's redo point %X/%X",
					(unsigned long long) applied, LSN_FORMAT_ARGS(from),
					LSN_FORMAT_ARGS(pr.upto))));
}
