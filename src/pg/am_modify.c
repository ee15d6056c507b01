/*
 * am_modify.c — the callbacks that write rows of a strata table: insert,
 * speculative insert and its completion (INSERT ... ON CONFLICT),
 * multi_insert (COPY), finish_bulk_insert, delete and update.
 *
 * An insert appends a DATA version under a new row id. Delete and update
 * append theirs through am_lock.c's strata_modify_row, which latches the
 * row, decides whether it may be changed and waits for conflicting
 * writers (see am_lock.c's head comment). What a change writes lives here,
 * when it may write lives there: this file calls am_lock.c, never the
 * reverse.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "nodes/bitmapset.h"
#include "pgstat.h"
#include "storage/predicate.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#include "pg/am_internal.h"
#include "pg/logical.h"
#include "pg/rowversion.h"
#include "pg/tree.h"
#include "pg/write.h"

/* ------------------------------------------------------------------------
 * Modifications
 * ------------------------------------------------------------------------
 */
/*
 * The DATA version of the row in slot, into buf (not initialised), sized
 * exactly: a COPY batch holds a thousand versions at once in a context
 * reset after every batch (initStringInfo's kilobyte each made every batch
 * fault in a fresh megabyte: a quarter of COPY's time). Every external
 * TOAST pointer is replaced by its value, since strata tables have no
 * TOAST table and a pointer into another table's TOAST would dangle.
 */
static void
strata_encode_data(StringInfo buf, TupleTableSlot *slot, CommandId cid, uint8 flags)
{
	TupleDesc	desc = slot->tts_tupleDescriptor;
	Datum	   *values;

	slot_getallattrs(slot);
	values = slot->tts_values;
	for (int i = 0; i < desc->natts; i++)
	{
		if (TupleDescAttr(desc, i)->attlen != -1 || slot->tts_isnull[i] ||
			!VARATT_IS_EXTERNAL(DatumGetPointer(slot->tts_values[i])))
			continue;
		if (values == slot->tts_values)
		{
			values = palloc(sizeof(Datum) * desc->natts);
			memcpy(values, slot->tts_values, sizeof(Datum) * desc->natts);
		}
		values[i] = PointerGetDatum(detoast_external_attr((struct varlena *) DatumGetPointer(values[i])));
	}
	strata_version_make_data(buf, GetCurrentFullTransactionId(), cid, flags, desc,
							 values, slot->tts_isnull);
	if (values != slot->tts_values)
		pfree(values);
}

/*
 * Give the slot of a row just written the system columns heap's insert and
 * update leave in it (RETURNING xmin, triggers reading the new row): this
 * transaction's xid and the command id. Only a heap-tuple slot holds them.
 */
static void
strata_stamp_slot(TupleTableSlot *slot, CommandId cid)
{
	HeapTuple	tuple;
	bool		should_free;

	if (!TTS_IS_HEAPTUPLE(slot))
		return;
	tuple = ExecFetchSlotHeapTuple(slot, true, &should_free);
	Assert(!should_free);
	HeapTupleHeaderSetXmin(tuple->t_data, GetCurrentTransactionId());
	HeapTupleHeaderSetCmin(tuple->t_data, cid);
	HeapTupleHeaderSetXmax(tuple->t_data, InvalidTransactionId);
	tuple->t_data->t_infomask &= ~(HEAP_XMAX_BITS | HEAP_XMIN_INVALID | HEAP_XMIN_COMMITTED);
	tuple->t_data->t_infomask |= HEAP_XMAX_INVALID;
}

/*
 * COPY FREEZE and REFRESH MATERIALIZED VIEW pass TABLE_INSERT_FROZEN when
 * the relation's relfilenode was created in the current subtransaction:
 * every abort that would undo the rows drops the relfilenode and with it
 * the tree, so the rows may be written frozen, visible to every snapshot
 * as heap's are (HEAP_XMIN_FROZEN), and VACUUM and compaction have no
 * freezing left to do for them.
 */
static uint8
insert_flags(int options)
{
	return (options & TABLE_INSERT_FROZEN) ? (STRATA_VF_FROZEN | STRATA_VF_COMMITTED) : 0;
}

/* The row a DATA version just written (encoded in v) holds, as a heap tuple. */
static HeapTuple
written_row(Relation rel, StringInfo v, ItemPointer tid)
{
	StrataVersion sv;

	if (!strata_version_decode(v->data, v->len, &sv) || sv.kind != STRATA_DATA)
		elog(ERROR, "strata version just encoded does not decode");
	return strata_version_to_heap(&sv, tid, RelationGetRelid(rel));
}

/*
 * A speculative insertion's row, kept for its LOGICAL record until the
 * insertion completes (logical.h: only one that succeeded is decoded).
 * Lives in TopTransactionContext; set by every speculative insert before
 * its completion reads it, so one an error abandoned is never read.
 */
static HeapTuple speculative_row = NULL;

/* Insert the row in slot; log_logical: write its LOGICAL record now. */
static void
insert_row(Relation rel, TupleTableSlot *slot, CommandId cid, int options, bool log_logical)
{
	StrataTree *tree = strata_tree_get(rel);
	StringInfoData v;
	uint64		rowid;

	CheckForSerializableConflictIn(rel, NULL, InvalidBlockNumber);
	strata_encode_data(&v, slot, cid, insert_flags(options));
	rowid = strata_tree_alloc_rowid(tree);
	strata_tree_append(rel, tree, rowid, &v);
	strata_rowid_to_tid(rowid, &slot->tts_tid);
	if (strata_logical_wanted(rel))
	{
		HeapTuple	row;

		if (log_logical)
		{
			row = written_row(rel, &v, &slot->tts_tid);
			strata_logical_log_insert(rel, &row, 1);
			heap_freetuple(row);
		}
		else
		{
			MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

			speculative_row = written_row(rel, &v, &slot->tts_tid);
			MemoryContextSwitchTo(old);
		}
	}
	pfree(v.data);

	strata_stamp_slot(slot, cid);
	strata_rowid_to_tid(rowid, &slot->tts_tid);
	slot->tts_tableOid = RelationGetRelid(rel);
	pgstat_count_heap_insert(rel, 1);
}

void
strata_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid,
					int options, BulkInsertState bistate)
{
	insert_row(rel, slot, cid, options, true);
}

/*
 * INSERT ... ON CONFLICT: the row goes in as an ordinary insert, and the
 * insertion's token is published (tree.c) until it completes, so that
 * backends meeting the row through SnapshotDirty wait for the insertion
 * alone, as on heap.
 */
void
strata_tuple_insert_speculative(Relation rel, TupleTableSlot *slot,
								CommandId cid, int options,
								BulkInsertState bistate, uint32 specToken)
{
	uint64		rowid;

	speculative_row = NULL;
	insert_row(rel, slot, cid, options, false);
	if (strata_tid_to_rowid(&slot->tts_tid, &rowid))
		strata_speculation_begin(strata_tree_get(rel), rowid, GetCurrentTransactionId(),
								 specToken);
}

/*
 * A speculative insert that met a conflict is undone for everyone at once
 * (heap's "super-delete"): a TOMBSTONE flagged KILLS_INSERT makes readers
 * skip it and the insert below it, so no snapshot, dirty or not, sees
 * the row and concurrent upserts never wait on it.
 */
void
strata_tuple_complete_speculative(Relation rel, TupleTableSlot *slot,
								  uint32 specToken, bool succeeded)
{
	StrataTree *tree;
	uint64		rowid;
	StringInfoData v;

	strata_speculation_end();
	if (speculative_row != NULL)
	{
		HeapTuple	row = speculative_row;

		speculative_row = NULL;
		if (succeeded)
			strata_logical_log_insert(rel, &row, 1);
		heap_freetuple(row);
	}
	if (succeeded)
		return;
	tree = strata_tree_get(rel);
	rowid = strata_rowid_or_error(rel, &slot->tts_tid);
	initStringInfo(&v);
	strata_version_encode(&v, STRATA_TOMBSTONE, GetCurrentFullTransactionId(),
						  GetCurrentCommandId(true), STRATA_VF_KILLS_INSERT, NULL, NULL,
						  LockTupleExclusive);
	strata_tree_append(rel, tree, rowid, &v);
	pfree(v.data);
}

void
strata_multi_insert(Relation rel, TupleTableSlot **slots, int ntuples,
					CommandId cid, int options, BulkInsertState bistate)
{
	StrataTree *tree = strata_tree_get(rel);
	uint64	   *rowids = palloc(sizeof(uint64) * ntuples);
	StringInfo *versions = palloc(sizeof(StringInfo) * ntuples);

	uint64		first_rowid;

	CheckForSerializableConflictIn(rel, NULL, InvalidBlockNumber);
	for (int i = 0; i < ntuples; i++)
	{
		versions[i] = palloc(sizeof(StringInfoData));
		strata_encode_data(versions[i], slots[i], cid, insert_flags(options));
	}
	first_rowid = strata_tree_alloc_rowids(tree, ntuples);
	for (int i = 0; i < ntuples; i++)
		rowids[i] = first_rowid + i;
	strata_tree_append_many(rel, tree, rowids, versions, ntuples);
	if (strata_logical_wanted(rel))
	{
		HeapTuple  *rows = palloc(sizeof(HeapTuple) * ntuples);

		for (int i = 0; i < ntuples; i++)
		{
			ItemPointerData tid;

			strata_rowid_to_tid(rowids[i], &tid);
			rows[i] = written_row(rel, versions[i], &tid);
		}
		strata_logical_log_insert(rel, rows, ntuples);
		for (int i = 0; i < ntuples; i++)
			heap_freetuple(rows[i]);
		pfree(rows);
	}
	for (int i = 0; i < ntuples; i++)
	{
		strata_stamp_slot(slots[i], cid);
		strata_rowid_to_tid(rowids[i], &slots[i]->tts_tid);
		slots[i]->tts_tableOid = RelationGetRelid(rel);
		pfree(versions[i]->data);
		pfree(versions[i]);
	}
	pfree(rowids);
	pfree(versions);
	pgstat_count_heap_insert(rel, ntuples);
}

void
strata_finish_bulk_insert(Relation rel, int options)
{
	/* nothing is buffered across calls */
}

typedef struct DeleteArgs
{
	CommandId	cid;
	bool		changing_part;
} DeleteArgs;

static void
do_delete(Relation rel, StrataTree *tree, uint64 rowid, ItemPointer tid,
		  const StrataVersion *versions, int n, int current, int held_mode, void *arg)
{
	DeleteArgs *da = arg;

	if (da->changing_part)
	{
		/*
		 * The row moves to another partition: like heap, leave a forward
		 * link that points nowhere but says so, so that a concurrent
		 * updater, deleter or locker gets TM_Updated with that link and
		 * the executor raises "already moved to another partition" instead
		 * of quietly treating the row as deleted.
		 */
		ItemPointerData moved;

		ItemPointerSetMovedPartitions(&moved);
		strata_append_simple(rel, tree, rowid, STRATA_MOVED, da->cid, 0, &moved,
							 LockTupleExclusive);
	}
	else
		strata_append_simple(rel, tree, rowid, STRATA_TOMBSTONE, da->cid, 0, NULL,
							 LockTupleExclusive);
	if (strata_logical_wanted(rel))
	{
		HeapTuple	oldrow = strata_version_to_heap(&versions[current], tid,
													RelationGetRelid(rel));

		strata_logical_log_delete(rel, oldrow);
		heap_freetuple(oldrow);
	}
}

TM_Result
strata_tuple_delete(Relation rel, ItemPointer tid, CommandId cid,
					Snapshot snapshot, Snapshot crosscheck, bool wait,
					TM_FailureData *tmfd, bool changingPart)
{
	DeleteArgs	args = {cid, changingPart};
	TM_Result	result;

	result = strata_modify_row(rel, tid, cid, snapshot, crosscheck, LockTupleExclusive, NULL,
							   wait ? LockWaitBlock : LockWaitError, tmfd,
							   XLTW_Delete, do_delete, &args, NULL);
	if (result == TM_Ok)
		pgstat_count_heap_delete(rel);
	return result;
}

typedef struct UpdateArgs
{
	TupleTableSlot *slot;
	CommandId	cid;
	bool		new_tid;
	bool		key_changed;
} UpdateArgs;

/* Did any of attrs (offset by FirstLowInvalidHeapAttributeNumber) change? */
static bool
attrs_changed(Relation rel, Bitmapset *attrs, HeapTuple oldtup, TupleTableSlot *newslot)
{
	TupleDesc	desc = RelationGetDescr(rel);
	int			x = -1;

	slot_getallattrs(newslot);
	while ((x = bms_next_member(attrs, x)) >= 0)
	{
		AttrNumber	attno = x + FirstLowInvalidHeapAttributeNumber;
		Form_pg_attribute att;
		bool		oldnull;
		Datum		oldval;

		if (attno <= 0)
			return true;		/* a system column in an index: be safe */
		att = TupleDescAttr(desc, attno - 1);
		oldval = heap_getattr(oldtup, attno, desc, &oldnull);
		if (oldnull != newslot->tts_isnull[attno - 1])
			return true;
		if (!oldnull && !datumIsEqual(oldval, newslot->tts_values[attno - 1],
									  att->attbyval, att->attlen))
			return true;
	}
	return false;
}

/* Does the update change an indexed column, or a key column? */
static void
update_changes(Relation rel, const StrataVersion *current, ItemPointer tid,
			   TupleTableSlot *newslot, bool *indexed_changed, bool *key_changed)
{
	Bitmapset  *indexed = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_ALL);
	Bitmapset  *keys = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_KEY);

	*indexed_changed = false;
	*key_changed = false;
	if (indexed != NULL && current != NULL)
	{
		HeapTuple	oldtup = strata_version_to_heap(current, tid, RelationGetRelid(rel));

		*indexed_changed = attrs_changed(rel, indexed, oldtup, newslot);
		*key_changed = keys != NULL && attrs_changed(rel, keys, oldtup, newslot);
		heap_freetuple(oldtup);
	}
}

/* An UPDATE locks like FOR UPDATE if it changes a key column, else FOR NO KEY UPDATE. */
static LockTupleMode
update_mode(Relation rel, const StrataVersion *versions, int n, ItemPointer tid, void *arg)
{
	UpdateArgs *ua = arg;
	bool		indexed_changed;
	bool		key_changed;

	for (int i = 0; i < n; i++)
		if (versions[i].kind == STRATA_DATA &&
			strata_writer_state(&versions[i]) != STRATA_WRITER_ABORTED)
		{
			update_changes(rel, &versions[i], tid, ua->slot, &indexed_changed, &key_changed);
			return key_changed ? LockTupleExclusive : LockTupleNoKeyExclusive;
		}
	return LockTupleExclusive;
}

static void
do_update(Relation rel, StrataTree *tree, uint64 rowid, ItemPointer tid,
		  const StrataVersion *versions, int n, int current, int held_mode, void *arg)
{
	UpdateArgs *ua = arg;
	StringInfoData v;
	bool		indexed_changed;

	update_changes(rel, &versions[current], tid, ua->slot, &indexed_changed, &ua->key_changed);

	/*
	 * AFTER UPDATE row triggers (user triggers and foreign-key actions)
	 * fetch the old and the new row by TID once the statement is done:
	 * they need two TIDs, so such tables always get a new one.
	 */
	ua->new_tid = indexed_changed ||
		(rel->trigdesc != NULL && rel->trigdesc->trig_update_after_row);

	strata_encode_data(&v, ua->slot, ua->cid, ua->key_changed ? 0 : STRATA_VF_KEY_KEPT);
	if (!ua->new_tid)
	{
		/* no indexed column changed: same TID, no new index entries */
		strata_tree_append(rel, tree, rowid, &v);
		ua->slot->tts_tid = *tid;
	}
	else
	{
		/* a new row id; the old one links forward to it */
		uint64		newrowid = strata_tree_alloc_rowid(tree);
		ItemPointerData newtid;

		strata_rowid_to_tid(newrowid, &newtid);
		strata_tree_append(rel, tree, newrowid, &v);

		/*
		 * Other transactions' running locks on the row (FOR KEY SHARE of
		 * foreign-key checks: nothing stronger lets this update through)
		 * move with it, as heap carries lockers over to the new version:
		 * a later delete or key change at the new TID must wait for them.
		 * They are written in their holders' names, so they end with them.
		 */
		for (int i = n - 1; i >= 0; i--)
		{
			StringInfoData lock;

			if (versions[i].kind != STRATA_LOCK ||
				strata_writer_state(&versions[i]) != STRATA_WRITER_IN_PROGRESS)
				continue;
			initStringInfo(&lock);
			strata_version_encode(&lock, STRATA_LOCK, versions[i].writer, versions[i].cid,
								  0, NULL, NULL, versions[i].lock_mode);
			strata_tree_append(rel, tree, newrowid, &lock);
			pfree(lock.data);
		}
		strata_append_simple(rel, tree, rowid, STRATA_MOVED, ua->cid,
							 ua->key_changed ? 0 : STRATA_VF_KEY_KEPT, &newtid, LockTupleExclusive);
		ua->slot->tts_tid = newtid;
	}
	if (strata_logical_wanted(rel))
	{
		/* one UPDATE for decoders, whether or not the row got a new TID */
		HeapTuple	oldrow = strata_version_to_heap(&versions[current], tid,
													RelationGetRelid(rel));
		HeapTuple	newrow = written_row(rel, &v, &ua->slot->tts_tid);
		Bitmapset  *idattrs = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);

		strata_logical_log_update(rel, oldrow, newrow,
								  attrs_changed(rel, idattrs, oldrow, ua->slot));
		bms_free(idattrs);
		heap_freetuple(oldrow);
		heap_freetuple(newrow);
	}
	pfree(v.data);
}

TM_Result
strata_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot,
					CommandId cid, Snapshot snapshot, Snapshot crosscheck,
					bool wait, TM_FailureData *tmfd,
					LockTupleMode *lockmode, bool *update_indexes)
{
	UpdateArgs	args = {slot, cid, false, false};
	TM_Result	result;

	*update_indexes = false;
	*lockmode = LockTupleNoKeyExclusive;
	result = strata_modify_row(rel, otid, cid, snapshot, crosscheck, LockTupleExclusive,
							   update_mode, wait ? LockWaitBlock : LockWaitError, tmfd,
							   XLTW_Update, do_update, &args, NULL);
	if (result == TM_Ok)
	{
		ItemPointerData newtid = slot->tts_tid;

		/* materializing the slot resets its TID: keep the one do_update set */
		strata_stamp_slot(slot, cid);
		slot->tts_tid = newtid;
		slot->tts_tableOid = RelationGetRelid(rel);
		*update_indexes = args.new_tid;
		*lockmode = args.key_changed ? LockTupleExclusive : LockTupleNoKeyExclusive;
		pgstat_count_heap_update(rel, !args.new_tid);
	}
	return result;
}
