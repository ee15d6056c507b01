/*
 * logical.c — logical decoding of strata tables (logical.h): LOGICAL
 * records written beside the ROWS records of a change when wal_level =
 * logical, and their decoding into the reorder buffer.
 *
 * Why a record of its own rather than decoding ROWS: a ROWS record holds
 * engine versions (a row id, a DATA, MOVED or TOMBSTONE version), which do
 * not say whether a DATA version is an insert or an update, nor what the
 * old row's identity was; and redo must stay exactly what it was at every
 * wal_level. A LOGICAL record says it all in heap's terms and redo ignores
 * it. The price is the new row written twice at wal_level = logical (in
 * ROWS for redo, here for decoding); at replica and minimal nothing is
 * written.
 *
 * Record layout (info XLOG_STRATA_LOGICAL of rmgr 141, walrecords.h;
 * frozen; integers in the machine's byte order, nothing aligned after the
 * header):
 *
 *   xl_strata_logical   RelFileNode node; uint8 action (1 INSERT, 2 UPDATE,
 *                       3 DELETE); uint8 flags (0x01 new rows follow, 0x02
 *                       an old row follows); uint16 nrows (new rows)
 *   nrows times         uint32 len, xl_heap_header, len bytes: a row as
 *                       heap's WAL carries it (the tuple from t_bits on)
 *   old row, if flagged the same: the replica identity (identity columns,
 *                       others null; or the whole row for FULL)
 *
 * A speculative insertion (INSERT ... ON CONFLICT) is logged when it
 * completes and only if it succeeded, as a plain INSERT: decoders never see
 * the insertions a conflict undid. Both WAL sinks write these records:
 * with the engine sink no new publication may cover a strata table
 * (publication.c), but one made before a restart under the postgres sink
 * must not silently miss changes.
 */
#include "postgres.h"

#include "access/heapam_xlog.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/xact.h"
#include "access/xloginsert.h"
#include "catalog/catalog.h"
#include "catalog/pg_class.h"
#include "replication/logical.h"
#include "replication/reorderbuffer.h"
#include "replication/snapbuild.h"
#include "utils/rel.h"

#include "pg/logical.h"
#include "pg/walrecords.h"

#define STRATA_LOGICAL_INSERT	1
#define STRATA_LOGICAL_UPDATE	2
#define STRATA_LOGICAL_DELETE	3

#define STRATA_LOGICAL_HAS_NEW	0x01
#define STRATA_LOGICAL_HAS_OLD	0x02

typedef struct xl_strata_logical
{
	RelFileNode node;
	uint8		action;
	uint8		flags;
	uint16		nrows;
} xl_strata_logical;

/* Bytes of one row's framing in the record: its length and heap's row header. */
#define ROW_FRAME_LEN (sizeof(uint32) + SizeOfHeapHeader)

/* A new-row count past this is split into several records. */
#define MAX_ROWS_PER_RECORD PG_UINT16_MAX

bool
strata_logical_wanted(Relation rel)
{
	return RelationIsLogicallyLogged(rel);
}

/* Append row's framing and bytes to the record being built in buf. */
static void
append_row(StringInfo buf, HeapTuple row)
{
	uint32		len = row->t_len - SizeofHeapTupleHeader;
	xl_heap_header hdr;

	hdr.t_infomask2 = row->t_data->t_infomask2;
	hdr.t_infomask = row->t_data->t_infomask;
	hdr.t_hoff = row->t_data->t_hoff;
	appendBinaryStringInfo(buf, (char *) &len, sizeof(len));
	appendBinaryStringInfo(buf, (char *) &hdr, SizeOfHeapHeader);
	appendBinaryStringInfo(buf, (char *) row->t_data + SizeofHeapTupleHeader, len);
}

/*
 * Write one LOGICAL record. It is built in one buffer, registered as one
 * piece: a COPY batch has a thousand rows, and XLogInsert takes only a
 * score of pieces.
 */
static void
log_change(Relation rel, uint8 action, HeapTuple *rows, int n, HeapTuple old)
{
	xl_strata_logical xlrec;
	StringInfoData buf;

	xlrec.node = rel->rd_node;
	xlrec.action = action;
	xlrec.flags = (n > 0 ? STRATA_LOGICAL_HAS_NEW : 0) | (old != NULL ? STRATA_LOGICAL_HAS_OLD : 0);
	xlrec.nrows = (uint16) n;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (char *) &xlrec, sizeof(xlrec));
	for (int i = 0; i < n; i++)
		append_row(&buf, rows[i]);
	if (old != NULL)
		append_row(&buf, old);

	XLogBeginInsert();
	XLogRegisterData(buf.data, buf.len);
	/* decoders filter changes by the origin they came from, as for heap */
	XLogSetRecordFlags(XLOG_INCLUDE_ORIGIN);
	(void) XLogInsert(STRATA_RMGR_ID, XLOG_STRATA_LOGICAL);
	pfree(buf.data);
}

/*
 * The old row's replica identity, as heap's ExtractReplicaIdentity gives
 * it: NULL when nothing is to be logged (NOTHING; DEFAULT or USING INDEX
 * when not required, or with no identity index), the row itself for FULL,
 * else a row of the identity columns with every other column null.
 * strata rows hold no external TOAST pointers, so nothing is flattened.
 */
static HeapTuple
replica_identity(Relation rel, HeapTuple oldrow, bool required)
{
	TupleDesc	desc = RelationGetDescr(rel);
	char		replident = rel->rd_rel->relreplident;
	Bitmapset  *idattrs;
	Datum	   *values;
	bool	   *nulls;
	HeapTuple	key;

	if (replident == REPLICA_IDENTITY_NOTHING)
		return NULL;
	if (replident == REPLICA_IDENTITY_FULL)
		return oldrow;
	if (!required)
		return NULL;
	idattrs = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
	if (bms_is_empty(idattrs))
		return NULL;
	values = palloc(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	heap_deform_tuple(oldrow, desc, values, nulls);
	for (int i = 0; i < desc->natts; i++)
		if (!bms_is_member(i + 1 - FirstLowInvalidHeapAttributeNumber, idattrs))
			nulls[i] = true;
	key = heap_form_tuple(desc, values, nulls);
	pfree(values);
	pfree(nulls);
	bms_free(idattrs);
	return key;
}

void
strata_logical_log_insert(Relation rel, HeapTuple *rows, int n)
{
	for (int i = 0; i < n; i += MAX_ROWS_PER_RECORD)
		log_change(rel, STRATA_LOGICAL_INSERT, rows + i, Min(n - i, MAX_ROWS_PER_RECORD), NULL);
}

void
strata_logical_log_update(Relation rel, HeapTuple oldrow, HeapTuple newrow,
						  bool identity_changed)
{
	HeapTuple	identity = replica_identity(rel, oldrow, identity_changed);

	log_change(rel, STRATA_LOGICAL_UPDATE, &newrow, 1, identity);
	if (identity != NULL && identity != oldrow)
		heap_freetuple(identity);
}

void
strata_logical_log_delete(Relation rel, HeapTuple oldrow)
{
	HeapTuple	identity = replica_identity(rel, oldrow, true);

	log_change(rel, STRATA_LOGICAL_DELETE, NULL, 0, identity);
	if (identity != NULL && identity != oldrow)
		heap_freetuple(identity);
}

/* ------------------------------------------------------------------------
 * Decoding
 * ------------------------------------------------------------------------
 */

/*
 * The row framed at *pos (end: the record's end) into a tuple buffer of
 * the reorder buffer; *pos moves past it. A frame running past the end is
 * damage: ERROR, as heap's decoder would fail on a torn record.
 */
static ReorderBufferTupleBuf *
decode_row(ReorderBuffer *rb, const char **pos, const char *end, XLogRecPtr lsn)
{
	ReorderBufferTupleBuf *buf;
	HeapTupleHeader header;
	xl_heap_header hdr;
	uint32		len;

	if (end - *pos < (ptrdiff_t) ROW_FRAME_LEN)
		goto torn;
	memcpy(&len, *pos, sizeof(len));
	memcpy(&hdr, *pos + sizeof(len), SizeOfHeapHeader);
	*pos += ROW_FRAME_LEN;
	if ((uint64) (end - *pos) < len)
		goto torn;

	buf = ReorderBufferGetTupleBuf(rb, len);
	buf->tuple.t_len = len + SizeofHeapTupleHeader;
	ItemPointerSetInvalid(&buf->tuple.t_self);
	buf->tuple.t_tableOid = InvalidOid;	/* known once the relation is */
	header = buf->tuple.t_data;
	memset(header, 0, SizeofHeapTupleHeader);
	memcpy((char *) header + SizeofHeapTupleHeader, *pos, len);
	header->t_infomask = hdr.t_infomask;
	header->t_infomask2 = hdr.t_infomask2;
	header->t_hoff = hdr.t_hoff;
	*pos += len;
	return buf;

torn:
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("strata LOGICAL record at %X/%X is malformed", LSN_FORMAT_ARGS(lsn))));
	return NULL;				/* keep the compiler quiet */
}

static void
queue_change(LogicalDecodingContext *ctx, XLogRecordBuffer *buf, const xl_strata_logical *xlrec,
			 ReorderBufferChangeType action, ReorderBufferTupleBuf *newrow,
			 ReorderBufferTupleBuf *oldrow)
{
	XLogReaderState *r = buf->record;
	ReorderBufferChange *change = ReorderBufferGetChange(ctx->reorder);

	change->action = action;
	change->origin_id = XLogRecGetOrigin(r);
	change->data.tp.relnode = xlrec->node;
	change->data.tp.newtuple = newrow;
	change->data.tp.oldtuple = oldrow;
	change->data.tp.clear_toast_afterwards = true;
	ReorderBufferQueueChange(ctx->reorder, XLogRecGetXid(r), buf->origptr, change, false);
}

void
strata_logical_decode(LogicalDecodingContext *ctx, XLogRecordBuffer *buf)
{
	XLogReaderState *r = buf->record;
	uint8		info = XLogRecGetInfo(r) & ~XLR_INFO_MASK;
	TransactionId xid = XLogRecGetXid(r);
	xl_strata_logical xlrec;
	const char *pos;
	const char *end;
	ReorderBufferTupleBuf *oldrow = NULL;
	ReorderBufferTupleBuf **newrows;

	/* every record's xid takes part in the transaction bookkeeping */
	ReorderBufferProcessXid(ctx->reorder, xid, buf->origptr);

	/* without a full snapshot, or fast-forwarding, there is nothing to decode */
	if (info != XLOG_STRATA_LOGICAL ||
		SnapBuildCurrentState(ctx->snapshot_builder) < SNAPBUILD_FULL_SNAPSHOT)
		return;
	if (!SnapBuildProcessChange(ctx->snapshot_builder, xid, buf->origptr) ||
		ctx->fast_forward)
		return;

	if (XLogRecGetDataLen(r) < sizeof(xlrec))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("strata LOGICAL record at %X/%X is malformed",
						LSN_FORMAT_ARGS(buf->origptr))));
	memcpy(&xlrec, XLogRecGetData(r), sizeof(xlrec));

	/* only this database's changes, and only from origins the plugin wants */
	if (xlrec.node.dbNode != ctx->slot->data.database)
		return;
	if (ctx->callbacks.filter_by_origin_cb != NULL &&
		filter_by_origin_cb_wrapper(ctx, XLogRecGetOrigin(r)))
		return;

	pos = XLogRecGetData(r) + sizeof(xlrec);
	end = XLogRecGetData(r) + XLogRecGetDataLen(r);
	newrows = palloc(sizeof(ReorderBufferTupleBuf *) * Max(xlrec.nrows, 1));
	for (int i = 0; i < xlrec.nrows; i++)
		newrows[i] = decode_row(ctx->reorder, &pos, end, buf->origptr);
	if (xlrec.flags & STRATA_LOGICAL_HAS_OLD)
		oldrow = decode_row(ctx->reorder, &pos, end, buf->origptr);

	switch (xlrec.action)
	{
		case STRATA_LOGICAL_INSERT:
			for (int i = 0; i < xlrec.nrows; i++)
				queue_change(ctx, buf, &xlrec, REORDER_BUFFER_CHANGE_INSERT, newrows[i], NULL);
			break;
		case STRATA_LOGICAL_UPDATE:
			queue_change(ctx, buf, &xlrec, REORDER_BUFFER_CHANGE_UPDATE,
						 xlrec.nrows > 0 ? newrows[0] : NULL, oldrow);
			break;
		case STRATA_LOGICAL_DELETE:
			queue_change(ctx, buf, &xlrec, REORDER_BUFFER_CHANGE_DELETE, NULL, oldrow);
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("strata LOGICAL record at %X/%X has unknown action %u",
							LSN_FORMAT_ARGS(buf->origptr), xlrec.action)));
	}
	pfree(newrows);
}

void
strata_logical_desc(StringInfo buf, XLogReaderState *record)
{
	static const char *const actions[] = {"?", "insert", "update", "delete"};
	xl_strata_logical xlrec;

	if (XLogRecGetDataLen(record) < sizeof(xlrec))
		return;
	memcpy(&xlrec, XLogRecGetData(record), sizeof(xlrec));
	appendStringInfo(buf, "rel %u/%u/%u %s, %u new rows%s",
					 xlrec.node.spcNode, xlrec.node.dbNode, xlrec.node.relNode,
					 actions[xlrec.action <= STRATA_LOGICAL_DELETE ? xlrec.action : 0],
					 xlrec.nrows,
					 (xlrec.flags & STRATA_LOGICAL_HAS_OLD) ? ", old row" : "");
}
