/*
 * rowversion.c — encoding of row versions and PostgreSQL visibility over
 * a row's version chain (see rowversion.h for the format and the rule).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "lib/stringinfo.h"
#include "storage/procarray.h"
#include "utils/snapmgr.h"

#include "engine/base/coding.h"
#include "pg/rowversion.h"

static inline void
put_u16(char *p, uint16 v)
{
	p[0] = (char) (v & 0xff);
	p[1] = (char) (v >> 8);
}

static inline uint16
get_u16(const char *p)
{
	return (uint16) ((uint8) p[0] | ((uint8) p[1] << 8));
}

/* The STRATA_VERSION_HEADER_SIZE bytes of a version's header, into hdr. */
static void
encode_header(char *hdr, StrataVersionKind kind, uint8 flags, CommandId cid,
			  FullTransactionId writer)
{
	memset(hdr, 0, STRATA_VERSION_HEADER_SIZE);
	hdr[0] = (char) kind;
	hdr[1] = (char) flags;
	sg_encode_fixed32(hdr + 4, cid);
	sg_encode_fixed64(hdr + 8, U64FromFullTransactionId(writer));
}

void
strata_version_encode(StringInfo buf, StrataVersionKind kind,
					  FullTransactionId writer, CommandId cid, uint8 flags,
					  MinimalTuple tuple, ItemPointer moved_to,
					  LockTupleMode lock_mode)
{
	char		hdr[STRATA_VERSION_HEADER_SIZE];

	encode_header(hdr, kind, flags, cid, writer);
	appendBinaryStringInfo(buf, hdr, sizeof(hdr));

	if (kind == STRATA_DATA)
	{
		Assert(tuple != NULL);
		appendBinaryStringInfo(buf, (char *) tuple, tuple->t_len);
	}
	else if (kind == STRATA_MOVED)
	{
		char		tid[6];

		Assert(moved_to != NULL);
		/* NoCheck: a row moved to another partition links to an invalid TID */
		sg_encode_fixed32(tid, ItemPointerGetBlockNumberNoCheck(moved_to));
		put_u16(tid + 4, ItemPointerGetOffsetNumberNoCheck(moved_to));
		appendBinaryStringInfo(buf, tid, sizeof(tid));
	}
	else if (kind == STRATA_LOCK)
		appendStringInfoChar(buf, (char) lock_mode);
}

void
strata_version_make_data(StringInfo buf, FullTransactionId writer, CommandId cid, uint8 flags,
						 TupleDesc desc, const Datum *values, const bool *isnull)
{
	int			natts = desc->natts;
	bool		hasnull = false;
	Size		hoff;
	Size		data_len;
	Size		len;
	MinimalTuple tuple;

	if (natts > MaxTupleAttributeNumber)
		ereport(ERROR,
				(errcode(ERRCODE_TOO_MANY_COLUMNS),
				 errmsg("number of columns (%d) exceeds limit (%d)",
						natts, MaxTupleAttributeNumber)));
	for (int i = 0; i < natts && !hasnull; i++)
		hasnull = isnull[i];

	/* the layout heap_form_minimal_tuple gives: header, null bitmap, data */
	hoff = MAXALIGN(SizeofMinimalTupleHeader + (hasnull ? BITMAPLEN(natts) : 0));
	data_len = heap_compute_data_size(desc, (Datum *) values, (bool *) isnull);
	len = hoff + data_len;

	/* palloc'd memory is MAXALIGNed, and so the tuple after the header */
	StaticAssertStmt(STRATA_VERSION_HEADER_SIZE % MAXIMUM_ALIGNOF == 0,
					 "a version's tuple must start aligned");
	buf->maxlen = STRATA_VERSION_HEADER_SIZE + len + 1;
	buf->data = palloc(buf->maxlen);
	buf->len = 0;
	buf->cursor = 0;
	encode_header(buf->data, STRATA_DATA, flags, cid, writer);
	memset(buf->data + STRATA_VERSION_HEADER_SIZE, 0, len);

	tuple = (MinimalTuple) (buf->data + STRATA_VERSION_HEADER_SIZE);
	tuple->t_len = len;
	HeapTupleHeaderSetNatts(tuple, natts);
	tuple->t_hoff = hoff + MINIMAL_TUPLE_OFFSET;
	heap_fill_tuple(desc, (Datum *) values, (bool *) isnull, (char *) tuple + hoff, data_len,
					&tuple->t_infomask, hasnull ? tuple->t_bits : NULL);
	buf->len = STRATA_VERSION_HEADER_SIZE + len;
	buf->data[buf->len] = '\0';
}

void
strata_version_encode_packed_frozen(StringInfo buf, const StrataVersion *v)
{
	char		writer[SG_MAX_VARINT64_LEN];
	int			n;

	Assert(v->kind == STRATA_DATA);
	appendStringInfoChar(buf, (char) STRATA_PACKED_FROZEN_DATA);
	n = sg_encode_varint64(writer, U64FromFullTransactionId(v->writer)) - writer;
	appendBinaryStringInfo(buf, writer, n);
	appendBinaryStringInfo(buf, v->tuple_body, v->tuple_body_len);
}

MinimalTuple
strata_version_minimal_tuple(const StrataVersion *v)
{
	uint32		len = v->tuple_body_len + STRATA_TUPLE_BODY_OFFSET;
	MinimalTuple tuple = palloc0(len);

	Assert(v->kind == STRATA_DATA);
	tuple->t_len = len;
	memcpy((char *) tuple + STRATA_TUPLE_BODY_OFFSET, v->tuple_body, v->tuple_body_len);
	return tuple;
}

bool
strata_lock_modes_conflict(LockTupleMode a, LockTupleMode b)
{
	/* rows: held, columns: requested; key share, share, no key update, update */
	static const bool conflicts[4][4] = {
		{false, false, false, true},
		{false, false, true, true},
		{false, true, true, true},
		{true, true, true, true},
	};

	return conflicts[a][b];
}

/* The packed form of a frozen DATA version (rowversion.h). */
static bool
decode_packed_frozen(const char *data, size_t len, StrataVersion *v)
{
	sg_slice	in = sg_slice_make(data + 1, len - 1);
	uint64		writer;

	if (!sg_get_varint64(&in, &writer) ||
		in.len < SizeofMinimalTupleHeader - STRATA_TUPLE_BODY_OFFSET)
		return false;
	v->kind = STRATA_DATA;
	v->flags = STRATA_VF_FROZEN | STRATA_VF_COMMITTED;
	v->cid = FirstCommandId;
	v->writer = FullTransactionIdFromU64(writer);
	ItemPointerSetInvalid(&v->moved_to);
	v->lock_mode = LockTupleExclusive;
	v->tuple_body = in.data;
	v->tuple_body_len = (uint32) in.len;
	return true;
}

bool
strata_version_decode(const char *data, size_t len, StrataVersion *v)
{
	if (strata_version_is_packed(data, len))
		return decode_packed_frozen(data, len, v);
	if (len < STRATA_VERSION_HEADER_SIZE)
		return false;
	v->kind = (StrataVersionKind) (uint8) data[0];
	v->flags = (uint8) data[1];
	v->cid = sg_decode_fixed32(data + 4);
	v->writer = FullTransactionIdFromU64(sg_decode_fixed64(data + 8));
	v->tuple_body = NULL;
	v->tuple_body_len = 0;
	ItemPointerSetInvalid(&v->moved_to);
	/* the strength a writer holds the row with (LOCK: its payload) */
	v->lock_mode = (v->flags & STRATA_VF_KEY_KEPT) ? LockTupleNoKeyExclusive : LockTupleExclusive;
	data += STRATA_VERSION_HEADER_SIZE;
	len -= STRATA_VERSION_HEADER_SIZE;

	switch (v->kind)
	{
		case STRATA_DATA:
			{
				uint32		tlen;

				if (len < SizeofMinimalTupleHeader)
					return false;
				memcpy(&tlen, data, sizeof(uint32));	/* t_len, native order */
				if (tlen != len)
					return false;
				v->tuple_body = data + STRATA_TUPLE_BODY_OFFSET;
				v->tuple_body_len = tlen - STRATA_TUPLE_BODY_OFFSET;
				return true;
			}
		case STRATA_MOVED:
			if (len != 6)
				return false;
			ItemPointerSet(&v->moved_to, sg_decode_fixed32(data), get_u16(data + 4));
			return true;
		case STRATA_LOCK:
			if (len != 1 || (uint8) data[0] > LockTupleExclusive)
				return false;
			v->lock_mode = (LockTupleMode) (uint8) data[0];
			return true;
		case STRATA_TOMBSTONE:
			return true;
	}
	return false;
}

StrataWriterState
strata_writer_state(const StrataVersion *v)
{
	TransactionId xid = XidFromFullTransactionId(v->writer);

	if (v->flags & STRATA_VF_FROZEN)
		return STRATA_WRITER_COMMITTED;
	if (v->flags & STRATA_VF_ABORTED)
		return STRATA_WRITER_ABORTED;
	if (TransactionIdIsCurrentTransactionId(xid))
		return STRATA_WRITER_CURRENT;
	if (v->flags & STRATA_VF_COMMITTED)
		return STRATA_WRITER_COMMITTED;
	if (TransactionIdIsInProgress(xid))
		return STRATA_WRITER_IN_PROGRESS;
	/* not running: it ended */
	if (strata_ended_writer_committed(v))
		return STRATA_WRITER_COMMITTED;
	return STRATA_WRITER_ABORTED;
}

/*
 * The writer that strata_ended_writer_committed() found committed last: a
 * commit is final and a full xid is never reused, and the rows of a bulk
 * load, read until compaction hints them, share one writer.
 */
static FullTransactionId known_committed_writer = {InvalidTransactionId};

bool
strata_ended_writer_committed(const StrataVersion *v)
{
	if (v->flags & STRATA_VF_COMMITTED)
		return true;
	if (FullTransactionIdEquals(v->writer, known_committed_writer))
		return true;
	if (!TransactionIdDidCommit(XidFromFullTransactionId(v->writer)))
		return false;
	known_committed_writer = v->writer;
	return true;
}

/* Does an MVCC snapshot see the writer of v? */
static bool
writer_visible_mvcc(const StrataVersion *v, Snapshot snapshot)
{
	TransactionId xid = XidFromFullTransactionId(v->writer);

	if (v->flags & STRATA_VF_FROZEN)
		return true;
	if (v->flags & STRATA_VF_ABORTED)
		return false;

	/*
	 * Below the snapshot's xmin: not in the snapshot, and not ours either
	 * (the xmin of a snapshot is at most the xid of the transaction taking
	 * it, and its later xids are higher still), so only the commit counts.
	 * The common case of a scan over settled rows, tested first.
	 */
	if (TransactionIdPrecedes(xid, snapshot->xmin))
		return strata_ended_writer_committed(v);
	if (TransactionIdIsCurrentTransactionId(xid))
		return v->cid < snapshot->curcid;
	if (XidInMVCCSnapshot(xid, snapshot))
		return false;
	/* not ours and not running when the snapshot was taken: it ended */
	return strata_ended_writer_committed(v);
}

/* Is there row data (or a delete) older than versions[i] that no rollback undid? */
static bool
has_older_row(const StrataVersion *versions, int nversions, int i)
{
	for (int j = i + 1; j < nversions; j++)
		if (versions[j].kind != STRATA_LOCK &&
			strata_writer_state(&versions[j]) != STRATA_WRITER_ABORTED)
			return true;
	return false;
}

/* The newest row data no rolled-back transaction wrote (heap's SnapshotAny). */
static StrataResolved
newest_unaborted_data(const StrataVersion *versions, int nversions)
{
	StrataResolved r = {false, -1};

	for (int i = 0; i < nversions; i++)
		if (versions[i].kind == STRATA_DATA &&
			strata_writer_state(&versions[i]) != STRATA_WRITER_ABORTED)
		{
			r.visible = true;
			r.index = i;
			return r;
		}
	return r;
}

/*
 * The row version a fetch by TID under SnapshotAny means. Heap's TID names
 * one version; a strata TID names the row, whose versions an update that
 * keeps the TID stacks up. The executor fetches with SnapshotAny to get
 * "the tuple the plan is acting on": the one its scan saw (MERGE's WHEN
 * conditions, BEFORE triggers, EvalPlanQual's rows of other tables), the
 * one it just deleted or wrote (RETURNING, AFTER triggers), or the newest
 * one, which it has just locked (after EvalPlanQual). So, newest first,
 * skipping rolled-back versions:
 *   - row data this transaction wrote is the answer, unless this very
 *     command wrote it over an older version (then heap's TID names that);
 *   - so is committed row data the active snapshot sees, or that lies
 *     under a lock, delete or move of this transaction (it acted on it);
 *   - other row data (a running transaction's update, or one committed
 *     after the snapshot that this transaction did not act on) is passed.
 * With no active snapshot, or if that finds nothing, the newest row data
 * any unaborted transaction wrote, as before.
 */
StrataResolved
strata_resolve_any(const StrataVersion *versions, int nversions)
{
	StrataResolved r = {false, -1};
	Snapshot	active = ActiveSnapshotSet() ? GetActiveSnapshot() : NULL;
	CommandId	curcid = GetCurrentCommandId(false);
	bool		acted = false;

	if (active != NULL && active->snapshot_type == SNAPSHOT_MVCC)
	{
		for (int i = 0; i < nversions; i++)
		{
			const StrataVersion *v = &versions[i];
			StrataWriterState ws = strata_writer_state(v);

			if (ws == STRATA_WRITER_ABORTED)
				continue;
			if (v->kind != STRATA_DATA)
			{
				if (ws == STRATA_WRITER_CURRENT)
					acted = true;
				continue;
			}
			/*
			 * Data this very command wrote over an older version: heap's
			 * TID still names the version before it (AFTER UPDATE triggers
			 * and transition tables capture the old row that way, a second
			 * MERGE match finds it and then fails as heap does).
			 */
			if (ws == STRATA_WRITER_CURRENT && v->cid >= curcid && has_older_row(versions, nversions, i))
				continue;
			if (ws == STRATA_WRITER_CURRENT ||
				(ws == STRATA_WRITER_COMMITTED && (acted || writer_visible_mvcc(v, active))))
			{
				r.visible = true;
				r.index = i;
				return r;
			}
		}
	}
	return newest_unaborted_data(versions, nversions);
}

StrataResolved
strata_resolve(const StrataVersion *versions, int nversions, Snapshot snapshot)
{
	StrataResolved r = {false, -1};

	switch (snapshot->snapshot_type)
	{
		case SNAPSHOT_MVCC:
			for (int i = 0; i < nversions; i++)
			{
				const StrataVersion *v = &versions[i];

				if (v->kind == STRATA_LOCK || !writer_visible_mvcc(v, snapshot))
					continue;
				if (v->kind == STRATA_DATA)
				{
					r.visible = true;
					r.index = i;
				}
				return r;
			}
			return r;

		case SNAPSHOT_SELF:
			for (int i = 0; i < nversions; i++)
			{
				const StrataVersion *v = &versions[i];
				StrataWriterState ws;

				if (v->kind == STRATA_LOCK)
					continue;
				ws = strata_writer_state(v);
				if (ws == STRATA_WRITER_IN_PROGRESS || ws == STRATA_WRITER_ABORTED)
					continue;
				if (v->kind == STRATA_DATA)
				{
					r.visible = true;
					r.index = i;
				}
				return r;
			}
			return r;

		case SNAPSHOT_ANY:

			/*
			 * Heap's SnapshotAny returns the tuple stored at the TID, deleted
			 * or not. Here that is the newest row data no rolled-back
			 * change wrote: what DELETE ... RETURNING and AFTER DELETE
			 * triggers read back after deleting it.
			 */
			return newest_unaborted_data(versions, nversions);

		case SNAPSHOT_DIRTY:
			snapshot->xmin = snapshot->xmax = InvalidTransactionId;
			snapshot->speculativeToken = 0;
			for (int i = 0; i < nversions; i++)
			{
				const StrataVersion *v = &versions[i];
				StrataWriterState ws;

				if (v->kind == STRATA_LOCK)
					continue;
				ws = strata_writer_state(v);
				if (ws == STRATA_WRITER_ABORTED)
					continue;
				if (ws == STRATA_WRITER_IN_PROGRESS)
				{
					TransactionId xid = XidFromFullTransactionId(v->writer);

					if (v->kind == STRATA_DATA)
					{
						/* an insert or update in progress: visible, wait on it */
						snapshot->xmin = xid;
						r.visible = true;
						r.index = i;
						return r;
					}
					/* a delete in progress: the older row is visible meanwhile */
					if (!TransactionIdIsValid(snapshot->xmax))
						snapshot->xmax = xid;
					continue;
				}
				if (v->kind == STRATA_DATA)
				{
					r.visible = true;
					r.index = i;
				}
				else
					snapshot->xmax = InvalidTransactionId;
				return r;
			}
			snapshot->xmax = InvalidTransactionId;
			return r;

		case SNAPSHOT_NON_VACUUMABLE:

			/*
			 * Visible unless nobody can see it any more (the planner's
			 * actual-range probes use this): the newest row data, as long
			 * as no delete or move above it is removable for snapshot->vistest.
			 */
			for (int i = 0; i < nversions; i++)
			{
				const StrataVersion *v = &versions[i];
				StrataWriterState ws;

				if (v->kind == STRATA_LOCK)
					continue;
				ws = strata_writer_state(v);
				if (ws == STRATA_WRITER_ABORTED)
					continue;
				if (v->kind != STRATA_DATA)
				{
					if (ws == STRATA_WRITER_COMMITTED &&
						((v->flags & STRATA_VF_FROZEN) ||
						 GlobalVisTestIsRemovableXid(snapshot->vistest,
													 XidFromFullTransactionId(v->writer))))
						return r;
					continue;
				}
				r.visible = true;
				r.index = i;
				return r;
			}
			return r;

		default:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("snapshot type %d is not supported for strata tables",
							(int) snapshot->snapshot_type)));
	}
	return r;					/* keep compiler quiet */
}

Size
strata_version_heap_size(const StrataVersion *v)
{
	return HEAPTUPLESIZE + offsetof(HeapTupleHeaderData, t_infomask2) + v->tuple_body_len;
}

void
strata_version_fill_heap(const StrataVersion *v, ItemPointer tid, Oid relid,
						 HeapTuple tuple)
{
	uint32		len = v->tuple_body_len + offsetof(HeapTupleHeaderData, t_infomask2);

	Assert(v->kind == STRATA_DATA);

	/*
	 * heap_tuple_from_minimal_tuple's layout, copied straight from the stored
	 * bytes (which may be unaligned): one copy per row, not two.
	 */
	tuple->t_len = len;
	tuple->t_data = (HeapTupleHeader) ((char *) tuple + HEAPTUPLESIZE);
	memcpy((char *) tuple->t_data + offsetof(HeapTupleHeaderData, t_infomask2),
		   v->tuple_body, v->tuple_body_len);
	memset(tuple->t_data, 0, offsetof(HeapTupleHeaderData, t_infomask2));

	tuple->t_self = *tid;
	tuple->t_tableOid = relid;
	HeapTupleHeaderSetXmin(tuple->t_data, XidFromFullTransactionId(v->writer));
	HeapTupleHeaderSetCmin(tuple->t_data, v->cid);
	HeapTupleHeaderSetXmax(tuple->t_data, InvalidTransactionId);
	tuple->t_data->t_infomask |= HEAP_XMAX_INVALID;
	if (v->flags & STRATA_VF_FROZEN)
		tuple->t_data->t_infomask |= HEAP_XMIN_FROZEN;
	tuple->t_data->t_ctid = *tid;
}

HeapTuple
strata_version_to_heap(const StrataVersion *v, ItemPointer tid, Oid relid)
{
	HeapTuple	tuple = (HeapTuple) palloc(strata_version_heap_size(v));

	strata_version_fill_heap(v, tid, relid, tuple);
	return tuple;
}
