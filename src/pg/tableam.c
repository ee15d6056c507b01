/*
 * tableam.c — the `strata` table access method: the TableAmRoutine that
 * PostgreSQL calls for every operation on a strata table.
 *
 * Rows live in the relation's LSM tree (runtime.c); each change appends a
 * row version (rowversion.h) and PostgreSQL's snapshots pick the version
 * a reader sees. Callbacks whose feature is not built yet raise
 * ERRCODE_FEATURE_NOT_SUPPORTED naming the operation, so that nothing ever
 * crashes or silently succeeds.
 */
#include "postgres.h"

#include <math.h>

#include "access/detoast.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/multixact.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/storage.h"
#include "catalog/storage_xlog.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "postmaster/autovacuum.h"
#include "commands/dbcommands.h"
#include "utils/lsyscache.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/smgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplesort.h"
#include "access/tsmapi.h"
#include "storage/predicate.h"
#include "storage/procarray.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"

#include "pg/am_internal.h"
#include "pg/rowversion.h"
#include "pg/runtime.h"
#include "pg/stratago.h"

PG_FUNCTION_INFO_V1(stratago_tableam_handler);

/* ------------------------------------------------------------------------
 * Slots
 * ------------------------------------------------------------------------
 */
static const TupleTableSlotOps *
strata_slot_callbacks(Relation rel)
{
	/*
	 * Rows come out of the engine as copies, never as pointers into shared
	 * buffers, so a slot that owns a heap tuple fits.
	 */
	return &TTSOpsHeapTuple;
}

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------
 */
/*
 * The tuple to store for a slot: a MinimalTuple with every external TOAST
 * pointer replaced by its value, since strata tables have no TOAST table
 * and a pointer into another table's TOAST would dangle.
 */
static MinimalTuple
strata_form_tuple(TupleTableSlot *slot)
{
	TupleDesc	desc = slot->tts_tupleDescriptor;
	Datum	   *values;
	bool	   *isnull;
	bool		any_external = false;
	MinimalTuple mt;

	slot_getallattrs(slot);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attlen == -1 && !slot->tts_isnull[i] &&
			VARATT_IS_EXTERNAL(DatumGetPointer(slot->tts_values[i])))
		{
			any_external = true;
			break;
		}
	}
	if (!any_external)
		return heap_form_minimal_tuple(desc, slot->tts_values, slot->tts_isnull);

	values = palloc(sizeof(Datum) * desc->natts);
	isnull = palloc(sizeof(bool) * desc->natts);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		values[i] = slot->tts_values[i];
		isnull[i] = slot->tts_isnull[i];
		if (att->attlen == -1 && !isnull[i] &&
			VARATT_IS_EXTERNAL(DatumGetPointer(values[i])))
			values[i] = PointerGetDatum(detoast_external_attr((struct varlena *) DatumGetPointer(values[i])));
	}
	mt = heap_form_minimal_tuple(desc, values, isnull);
	pfree(values);
	pfree(isnull);
	return mt;
}

static void
strata_encode_data(StringInfo buf, TupleTableSlot *slot, CommandId cid, uint8 flags)
{
	MinimalTuple mt = strata_form_tuple(slot);

	initStringInfo(buf);
	strata_version_encode(buf, STRATA_DATA, GetCurrentFullTransactionId(), cid, flags, mt,
						  NULL, LockTupleExclusive);
	pfree(mt);
}

/* ------------------------------------------------------------------------
 * Modifications
 * ------------------------------------------------------------------------
 */
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

static void
strata_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid,
					int options, BulkInsertState bistate)
{
	StrataTree *tree = strata_tree_get(rel);
	StringInfoData v;
	uint64		rowid;

	CheckForSerializableConflictIn(rel, NULL, InvalidBlockNumber);
	strata_encode_data(&v, slot, cid, 0);
	rowid = strata_tree_alloc_rowid(tree);
	strata_tree_append(rel, tree, rowid, &v);
	pfree(v.data);

	strata_stamp_slot(slot, cid);
	strata_rowid_to_tid(rowid, &slot->tts_tid);
	slot->tts_tableOid = RelationGetRelid(rel);
	pgstat_count_heap_insert(rel, 1);
}

/*
 * INSERT ... ON CONFLICT: the row goes in as an ordinary insert, and the
 * insertion's token is published (runtime.c) until it completes, so that
 * backends meeting the row through SnapshotDirty wait for the insertion
 * alone, as on heap.
 */
static void
strata_tuple_insert_speculative(Relation rel, TupleTableSlot *slot,
								CommandId cid, int options,
								BulkInsertState bistate, uint32 specToken)
{
	uint64		rowid;

	strata_tuple_insert(rel, slot, cid, options, bistate);
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
static void
strata_tuple_complete_speculative(Relation rel, TupleTableSlot *slot,
								  uint32 specToken, bool succeeded)
{
	StrataTree *tree;
	uint64		rowid;
	StringInfoData v;

	strata_speculation_end();
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

static void
strata_multi_insert(Relation rel, TupleTableSlot **slots, int ntuples,
					CommandId cid, int options, BulkInsertState bistate)
{
	StrataTree *tree = strata_tree_get(rel);
	uint64	   *rowids = palloc(sizeof(uint64) * ntuples);
	StringInfo *versions = palloc(sizeof(StringInfo) * ntuples);

	CheckForSerializableConflictIn(rel, NULL, InvalidBlockNumber);
	for (int i = 0; i < ntuples; i++)
	{
		versions[i] = palloc(sizeof(StringInfoData));
		strata_encode_data(versions[i], slots[i], cid, 0);
		rowids[i] = strata_tree_alloc_rowid(tree);
	}
	strata_tree_append_many(rel, tree, rowids, versions, ntuples);
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

/*
 * Where a row stands for a writer (delete, update or lock) that saw it
 * through snapshot and wants it with strength `mode`. The answer is heap's
 * TM_Result for the same situation; tmfd and *wait_xid are filled as heap
 * fills them. *current (may be NULL) gets the index of the row data the
 * writer acts on when the answer is TM_Ok; *held_mode the strongest lock
 * this transaction already holds on the row (-1: none); *follow (may be
 * NULL) the TID a passed move that kept the key leads to, which a FOR KEY
 * SHARE locker must lock as well (else invalid).
 *
 * Lock strengths follow heap's table: an in-progress lock or change by
 * another transaction blocks only a conflicting mode (a foreign-key check's
 * FOR KEY SHARE does not block an UPDATE that keeps the key, and vice
 * versa: the locker then sees the row as it was before that update).
 */
static TM_Result
strata_check_writable(const StrataVersion *versions, int n, ItemPointer tid,
					  CommandId cid, Snapshot snapshot, Snapshot crosscheck,
					  LockTupleMode mode, TM_FailureData *tmfd, TransactionId *wait_xid,
					  int *held_mode, int *current, ItemPointer follow)
{
	int			i;
	StrataWriterState ws = STRATA_WRITER_ABORTED;
	const StrataVersion *newest = NULL;
	bool		has_older = false;
	TransactionId older_locker = InvalidTransactionId;	/* see below */
	int			held_above;		/* *held_mode from locks newer than the row data */

	*held_mode = -1;
	*wait_xid = InvalidTransactionId;
	if (current)
		*current = -1;
	tmfd->ctid = *tid;
	tmfd->cmax = InvalidCommandId;
	for (i = 0; i < n; i++)
	{
		const StrataVersion *v = &versions[i];
		bool		row_below = false;
		bool		passable;

		ws = strata_writer_state(v);
		if (ws == STRATA_WRITER_ABORTED)
			continue;
		if (v->kind == STRATA_LOCK)
		{
			if (ws == STRATA_WRITER_IN_PROGRESS && strata_lock_modes_conflict(v->lock_mode, mode))
			{
				*wait_xid = tmfd->xmax = XidFromFullTransactionId(v->writer);
				return TM_BeingModified;
			}
			if (ws == STRATA_WRITER_CURRENT && (int) v->lock_mode > *held_mode)
				*held_mode = v->lock_mode;
			continue;			/* compatible, or a finished transaction's lock */
		}

		/*
		 * Row data, a delete or a move. Another transaction's change that is
		 * still running, or (for FOR KEY SHARE, which heap lets lock an old
		 * version under an update that kept the key) committed after the
		 * snapshot, can be passed when its strength does not conflict: the
		 * writer then acts on the row as it was before. A row's first
		 * version (its insert) is never passed.
		 */
		passable = ws == STRATA_WRITER_IN_PROGRESS ||
			(ws == STRATA_WRITER_COMMITTED && mode == LockTupleKeyShare &&
			 !(v->flags & STRATA_VF_FROZEN) &&
			 XidInMVCCSnapshot(XidFromFullTransactionId(v->writer), snapshot));
		if (passable && !strata_lock_modes_conflict(v->lock_mode, mode))
		{
			/* only now: each writer-state check may look at the procarray */
			for (int j = i + 1; j < n && !row_below; j++)
				if (versions[j].kind != STRATA_LOCK &&
					strata_writer_state(&versions[j]) != STRATA_WRITER_ABORTED)
					row_below = true;
		}
		if (passable && row_below && !strata_lock_modes_conflict(v->lock_mode, mode))
		{
			/* a move that kept the key: the locker follows it (heap_lock_updated_tuple) */
			if (v->kind == STRATA_MOVED && follow != NULL && !ItemPointerIsValid(follow))
				*follow = v->moved_to;
			continue;
		}
		if (ws == STRATA_WRITER_IN_PROGRESS)
		{
			*wait_xid = tmfd->xmax = XidFromFullTransactionId(v->writer);
			return TM_BeingModified;
		}
		newest = v;
		break;
	}
	if (newest == NULL)
		return TM_Invisible;
	held_above = *held_mode;
	for (int j = i + 1; j < n; j++)
	{
		const StrataVersion *o = &versions[j];
		StrataWriterState ows = strata_writer_state(o);

		if (o->kind == STRATA_DATA && ows != STRATA_WRITER_ABORTED)
			has_older = true;

		/*
		 * Locks taken before a finished change still hold: heap carries a
		 * running locker over to the new version (a KEY SHARE lock survives
		 * an update that keeps the key). Remember the first that conflicts;
		 * it matters if the row turns out lockable.
		 */
		if (o->kind != STRATA_LOCK)
			continue;
		if (ows == STRATA_WRITER_CURRENT && (int) o->lock_mode > *held_mode)
			*held_mode = o->lock_mode;
		else if (ows == STRATA_WRITER_IN_PROGRESS && older_locker == InvalidTransactionId &&
				 strata_lock_modes_conflict(o->lock_mode, mode))
			older_locker = XidFromFullTransactionId(o->writer);
	}

	tmfd->ctid = newest->kind == STRATA_MOVED ? newest->moved_to : *tid;
	tmfd->xmax = XidFromFullTransactionId(newest->writer);

	switch (ws)
	{
		case STRATA_WRITER_CURRENT:
			if (newest->cid >= cid)
			{
				/* changed (or inserted) by this very command */
				if (newest->kind == STRATA_DATA && !has_older)
					return TM_Invisible;
				tmfd->cmax = newest->cid;
				return TM_SelfModified;
			}
			if (newest->kind != STRATA_DATA)
				return TM_Invisible;	/* gone before this command began */
			if (TransactionIdIsValid(older_locker))
			{
				*wait_xid = tmfd->xmax = older_locker;
				return TM_BeingModified;
			}
			if (current)
				*current = i;
			return TM_Ok;

		case STRATA_WRITER_IN_PROGRESS:
			/* a delete or move in progress: conflicts with every mode */
			*wait_xid = XidFromFullTransactionId(newest->writer);
			return TM_BeingModified;

		case STRATA_WRITER_COMMITTED:
			{
				bool		seen = held_above >= 0 ||
					(newest->flags & STRATA_VF_FROZEN) ||
					!XidInMVCCSnapshot(XidFromFullTransactionId(newest->writer), snapshot);

				if (!seen || newest->kind == STRATA_MOVED)
					return newest->kind == STRATA_TOMBSTONE ? TM_Deleted : TM_Updated;
				if (newest->kind == STRATA_TOMBSTONE)
					return TM_Deleted;
				if (crosscheck != InvalidSnapshot &&
					XidInMVCCSnapshot(XidFromFullTransactionId(newest->writer), crosscheck))
					return TM_Updated;
				if (TransactionIdIsValid(older_locker))
				{
					*wait_xid = tmfd->xmax = older_locker;
					return TM_BeingModified;
				}
				if (current)
					*current = i;
				return TM_Ok;
			}

		case STRATA_WRITER_ABORTED:
			break;
	}
	return TM_Invisible;
}

/*
 * Common loop of delete, update and lock: latch the row, check it, wait
 * for an in-progress writer when asked to, and on TM_Ok call `act` with
 * the latch held. mode_of (may be NULL: `mode`) decides the strength from
 * the row as it is (an UPDATE's depends on whether it changes the key).
 */
typedef void (*strata_row_action) (Relation rel, StrataTree *tree, uint64 rowid,
								   ItemPointer tid, const StrataVersion *versions,
								   int n, int current, int held_mode, void *arg);
typedef LockTupleMode (*strata_row_mode) (Relation rel, const StrataVersion *versions,
										  int n, ItemPointer tid, void *arg);

/* heap's heavyweight tuple lock for each row-lock strength (heapam.c's tupleLockExtraInfo) */
static const LOCKMODE strata_tuplock_mode[MaxLockTupleMode + 1] = {
	AccessShareLock,			/* LockTupleKeyShare */
	RowShareLock,				/* LockTupleShare */
	ExclusiveLock,				/* LockTupleNoKeyExclusive */
	AccessExclusiveLock			/* LockTupleExclusive */
};

/* Does this transaction (or a subtransaction of it) hold a lock on, or change of, the row? */
static bool
strata_row_held_by_me(const StrataVersion *versions, int n)
{
	for (int i = 0; i < n; i++)
		if (strata_writer_state(&versions[i]) == STRATA_WRITER_CURRENT)
			return true;
	return false;
}

static TM_Result
strata_modify_row(Relation rel, ItemPointer tid, CommandId cid, Snapshot snapshot,
				  Snapshot crosscheck, LockTupleMode mode, strata_row_mode mode_of,
				  LockWaitPolicy wait, TM_FailureData *tmfd, XLTW_Oper oper,
				  strata_row_action act, void *arg, ItemPointer follow)
{
	StrataTree *tree = strata_tree_get(rel);
	uint64		rowid = strata_rowid_or_error(rel, tid);
	ItemPointerData locked_tid;
	LOCKMODE	tuplock = NoLock;
	TM_Result	result;

	/* a change is a write to this row: rw-conflicts in (heap checks before locking too) */
	if (oper != XLTW_Lock)
		CheckForSerializableConflictIn(rel, tid, ItemPointerGetBlockNumber(tid));
	ItemPointerCopy(tid, &locked_tid);
	for (;;)
	{
		LWLock	   *latch = strata_row_latch(tree, rowid);
		StrataVersion *versions;
		int			n;
		TransactionId wait_xid;
		int			held_mode;
		int			current;
		bool		mine = false;

		LWLockAcquire(latch, LW_EXCLUSIVE);
		n = strata_tree_versions(rel, tree, rowid, &versions, CurrentMemoryContext);
		if (mode_of)
			mode = mode_of(rel, versions, n, tid, arg);
		if (follow)
			ItemPointerSetInvalid(follow);
		result = strata_check_writable(versions, n, tid, cid, snapshot, crosscheck, mode,
									   tmfd, &wait_xid, &held_mode, &current, follow);
		if (result == TM_Ok)
			act(rel, tree, rowid, tid, versions, n, current, held_mode, arg);
		else if (result == TM_BeingModified)
			mine = strata_row_held_by_me(versions, n);
		LWLockRelease(latch);

		if (result == TM_BeingModified && wait == LockWaitBlock)
		{
			/*
			 * As heap does, queue on the row's heavyweight tuple lock before
			 * sleeping on the other transaction, and keep it until this
			 * change is made: when that transaction ends, the waiters go on
			 * in the order they came instead of all racing for the row (a
			 * later FOR UPDATE would otherwise overtake an earlier one and
			 * make it wait a second time). Like heap, a transaction that
			 * already holds a lock on the row does not queue: the first
			 * waiter may be waiting for it, and queueing behind that waiter
			 * to upgrade its own lock would be a deadlock.
			 */
			if (tuplock == NoLock && !mine)
			{
				tuplock = strata_tuplock_mode[mode];
				LockTuple(rel, &locked_tid, tuplock);
			}
			XactLockTableWait(wait_xid, rel, tid, oper);
			continue;
		}
		if (result == TM_BeingModified && wait == LockWaitSkip)
			result = TM_WouldBlock;
		break;
	}
	if (tuplock != NoLock)
		UnlockTuple(rel, &locked_tid, tuplock);
	return result;
}

static void
append_simple(Relation rel, StrataTree *tree, uint64 rowid, StrataVersionKind kind,
			  CommandId cid, uint8 flags, ItemPointer moved_to, LockTupleMode mode)
{
	StringInfoData v;

	initStringInfo(&v);
	strata_version_encode(&v, kind, GetCurrentFullTransactionId(), cid, flags, NULL,
						  moved_to, mode);
	strata_tree_append(rel, tree, rowid, &v);
	pfree(v.data);
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
		append_simple(rel, tree, rowid, STRATA_MOVED, da->cid, 0, &moved,
					  LockTupleExclusive);
	}
	else
		append_simple(rel, tree, rowid, STRATA_TOMBSTONE, da->cid, 0, NULL,
					  LockTupleExclusive);
}

static TM_Result
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
		append_simple(rel, tree, rowid, STRATA_MOVED, ua->cid,
					  ua->key_changed ? 0 : STRATA_VF_KEY_KEPT, &newtid, LockTupleExclusive);
		ua->slot->tts_tid = newtid;
	}
	pfree(v.data);
}

static TM_Result
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

typedef struct LockArgs
{
	CommandId	cid;
	TupleTableSlot *slot;
	LockTupleMode mode;
	Snapshot	snapshot;		/* the locker's */
	bool		newer;			/* out: locked data its snapshot does not see */
} LockArgs;

static void
do_lock(Relation rel, StrataTree *tree, uint64 rowid, ItemPointer tid,
		const StrataVersion *versions, int n, int current, int held_mode, void *arg)
{
	LockArgs   *la = arg;

	/* a row this transaction changed, or already locked as strongly, needs no new lock */
	if (held_mode < (int) la->mode &&
		strata_writer_state(&versions[current]) != STRATA_WRITER_CURRENT)
		append_simple(rel, tree, rowid, STRATA_LOCK, la->cid, 0, NULL, la->mode);
	strata_store_version(rel, &versions[current], tid, la->slot);

	/* is the data locked newer than the locker's snapshot? (see strata_tuple_lock) */
	la->newer = IsMVCCSnapshot(la->snapshot) &&
		strata_writer_state(&versions[current]) == STRATA_WRITER_COMMITTED &&
		!(versions[current].flags & STRATA_VF_FROZEN) &&
		XidInMVCCSnapshot(XidFromFullTransactionId(versions[current].writer), la->snapshot);
}

/*
 * A FOR KEY SHARE lock taken on a row under a move that kept the key
 * (another transaction's update of an indexed column, running or
 * committed after the locker's snapshot) must hold on the row's later
 * TIDs too, or a later delete or key change there would not wait for it:
 * lock each of them in turn, as heap_lock_updated_tuple does. A delete or
 * key change found on the way is waited for while running and fails the
 * lock once committed (TM_Deleted, or TM_Updated with tmfd->ctid where it
 * happened).
 */
static TM_Result
strata_lock_updated_chain(Relation rel, ItemPointer start, CommandId cid,
						  TM_FailureData *tmfd)
{
	StrataTree *tree = strata_tree_get(rel);
	ItemPointerData tid = *start;

	while (ItemPointerIsValid(&tid) && !ItemPointerIndicatesMovedPartitions(&tid))
	{
		uint64		rowid = strata_rowid_or_error(rel, &tid);
		LWLock	   *latch = strata_row_latch(tree, rowid);
		StrataVersion *versions;
		int			n;
		int			first = -1;
		bool		mine = false;
		TransactionId wait_xid = InvalidTransactionId;
		TM_Result	result = TM_Ok;
		ItemPointerData next;

		ItemPointerSetInvalid(&next);
		CHECK_FOR_INTERRUPTS();
		LWLockAcquire(latch, LW_EXCLUSIVE);
		n = strata_tree_versions(rel, tree, rowid, &versions, CurrentMemoryContext);
		for (int i = 0; i < n; i++)
			if (versions[i].kind != STRATA_LOCK &&
				strata_writer_state(&versions[i]) != STRATA_WRITER_ABORTED)
				first = i;		/* the version that created the row at this TID */
		for (int i = 0; i < n && result == TM_Ok && !TransactionIdIsValid(wait_xid); i++)
		{
			const StrataVersion *v = &versions[i];
			StrataWriterState ws = strata_writer_state(v);

			if (ws == STRATA_WRITER_ABORTED)
				continue;
			if (ws == STRATA_WRITER_CURRENT)
			{
				mine = true;	/* this transaction holds the row here already */
				continue;
			}
			if (v->kind == STRATA_LOCK)
			{
				if (ws == STRATA_WRITER_IN_PROGRESS &&
					strata_lock_modes_conflict(v->lock_mode, LockTupleKeyShare))
					wait_xid = XidFromFullTransactionId(v->writer);
				continue;
			}
			if (i == first ||
				!strata_lock_modes_conflict(v->lock_mode, LockTupleKeyShare))
			{
				if (v->kind == STRATA_MOVED && !ItemPointerIsValid(&next) && i != first)
					next = v->moved_to;
				continue;
			}
			if (ws == STRATA_WRITER_IN_PROGRESS)
				wait_xid = XidFromFullTransactionId(v->writer);
			else
			{
				result = v->kind == STRATA_TOMBSTONE ? TM_Deleted : TM_Updated;
				tmfd->ctid = v->kind == STRATA_MOVED ? v->moved_to : tid;
				tmfd->xmax = XidFromFullTransactionId(v->writer);
				tmfd->cmax = InvalidCommandId;
			}
		}
		if (result == TM_Ok && !TransactionIdIsValid(wait_xid) && !mine && first >= 0)
			append_simple(rel, tree, rowid, STRATA_LOCK, cid, 0, NULL, LockTupleKeyShare);
		LWLockRelease(latch);
		if (TransactionIdIsValid(wait_xid))
		{
			XactLockTableWait(wait_xid, rel, &tid, XLTW_LockUpdated);
			continue;
		}
		if (result != TM_Ok)
			return result;
		tid = next;
	}
	return TM_Ok;
}

/*
 * Row locks are LOCK versions written by the locker, with heap's four
 * strengths: writers and lockers wait for in-progress locks and changes of
 * conflicting strength only, and the locker's own later update or delete
 * goes through.
 */
static TM_Result
strata_tuple_lock(Relation rel, ItemPointer tid, Snapshot snapshot,
				  TupleTableSlot *slot, CommandId cid, LockTupleMode mode,
				  LockWaitPolicy wait_policy, uint8 flags,
				  TM_FailureData *tmfd)
{
	LockArgs	args = {cid, slot, mode, snapshot, false};

	/*
	 * ON CONFLICT DO UPDATE (no flags) found the row through SnapshotDirty,
	 * not through its own snapshot: it means the newest committed version,
	 * which heap would lock as long as nothing replaced it since. Judge it
	 * against a fresh snapshot; REPEATABLE READ callers then check the
	 * row's visibility themselves (ExecCheckTupleVisible).
	 */
	if (flags == 0)
		snapshot = args.snapshot = GetLatestSnapshot();

	tmfd->traversed = false;
	for (;;)
	{
		ItemPointerData follow;
		TM_Result	result = strata_modify_row(rel, tid, cid, snapshot, InvalidSnapshot,
											   mode, NULL, wait_policy, tmfd,
											   XLTW_Lock, do_lock, &args, &follow);

		if (result == TM_Ok && ItemPointerIsValid(&follow) &&
			(flags & TUPLE_LOCK_FLAG_LOCK_UPDATE_IN_PROGRESS))
			result = strata_lock_updated_chain(rel, &follow, cid, tmfd);

		/*
		 * SELECT FOR UPDATE/SHARE (the caller that passes
		 * LOCK_UPDATE_IN_PROGRESS) locks the row its scan saw: if that is
		 * no longer the newest data (this transaction locked the row after
		 * following it to a newer version earlier), heap reaches the
		 * locked version through the update chain and says so, and the
		 * caller rechecks it. Other callers pass the TID of the version
		 * they mean to lock (ON CONFLICT found it through SnapshotDirty),
		 * which heap does not report as traversed.
		 */
		if (result == TM_Ok && args.newer &&
			(flags & TUPLE_LOCK_FLAG_LOCK_UPDATE_IN_PROGRESS))
			tmfd->traversed = true;

		if (result == TM_BeingModified && wait_policy == LockWaitError)
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not obtain lock on row in relation \"%s\"",
							RelationGetRelationName(rel))));
		if (result == TM_Updated && (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION))
		{
			if (ItemPointerIndicatesMovedPartitions(&tmfd->ctid))
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("tuple to be locked was already moved to another partition due to concurrent update")));
			/* lock the latest version instead (READ COMMITTED re-check) */
			tmfd->traversed = true;
			if (!ItemPointerEquals(&tmfd->ctid, tid))
				*tid = tmfd->ctid;
			snapshot = args.snapshot = GetLatestSnapshot();
			continue;
		}

		/*
		 * ON CONFLICT DO UPDATE (the caller that passes no flags) found the
		 * row through SnapshotDirty, so it looked at the version this very
		 * command wrote; heap, where that version has a TID of its own,
		 * answers TM_Invisible ("cannot affect row a second time"), not the
		 * TM_SelfModified that belongs to the version underneath.
		 */
		if (result == TM_SelfModified && flags == 0)
			result = TM_Invisible;

		/*
		 * Like heap, hand back the row even when it could not be locked:
		 * ON CONFLICT DO UPDATE reads its xmin to tell "this command already
		 * inserted it" (a cardinality violation) from a concurrent change.
		 */
		if (result != TM_Ok && TTS_EMPTY(slot))
		{
			/*
			 * The newest row data, which the caller found through
			 * SnapshotDirty (not strata_resolve_any's choice: that passes
			 * what this very command wrote, and this is what it must see).
			 */
			StrataTree *tree = strata_tree_get(rel);
			StrataVersion *versions;
			int			n = strata_tree_versions(rel, tree, strata_rowid_or_error(rel, tid),
												 &versions, CurrentMemoryContext);

			for (int i = 0; i < n; i++)
				if (versions[i].kind == STRATA_DATA &&
					strata_writer_state(&versions[i]) != STRATA_WRITER_ABORTED)
				{
					strata_store_version(rel, &versions[i], tid, slot);
					break;
				}
		}
		return result;
	}
}

static void
strata_finish_bulk_insert(Relation rel, int options)
{
	/* nothing is buffered across calls */
}

/* ------------------------------------------------------------------------
 * Sizes
 * ------------------------------------------------------------------------
 */
/*
 * The size PostgreSQL's planner and ANALYZE work with: one "block" per 291
 * row ids handed out, so that block numbers match TIDs. The bytes the
 * table really takes are the engine's files (see the README).
 */
uint64
strata_relation_size(Relation rel, ForkNumber forkNumber)
{
	StrataTree *tree;
	uint64		blocks;

	if (forkNumber != MAIN_FORKNUM && forkNumber != InvalidForkNumber)
		return 0;
	tree = strata_tree_get(rel);
	blocks = (tree->next_rowid + STRATA_ROWS_PER_BLOCK - 1) / STRATA_ROWS_PER_BLOCK;
	return blocks * BLCKSZ;
}

static bool
strata_relation_needs_toast_table(Relation rel)
{
	/* The engine stores values of any size inline. */
	return false;
}

static Oid
strata_relation_toast_am(Relation rel)
{
	return rel->rd_rel->relam;
}

static void
strata_relation_estimate_size(Relation rel, int32 *attr_widths,
							  BlockNumber *pages, double *tuples,
							  double *allvisfrac)
{
	BlockNumber curpages = (BlockNumber) (strata_relation_size(rel, MAIN_FORKNUM) / BLCKSZ);
	BlockNumber relpages = (BlockNumber) rel->rd_rel->relpages;
	double		reltuples = rel->rd_rel->reltuples;

	/*
	 * A table never vacuumed or analyzed and under 10 blocks: estimate it
	 * exactly as heap does (the planner's "assume at least 10 pages" rule
	 * for new tables, rows from the tuple width). A strata block holds
	 * more small rows than a heap page, so our own rule would call a new
	 * table of a few rows tiny where heap does not, and plans (sequential
	 * scan instead of index scan, and with them SERIALIZABLE's
	 * relation-wide predicate locks) would differ from heap's for the
	 * same data.
	 */
	if (curpages < 10 && reltuples < 0)
	{
		table_block_relation_estimate_size(rel, attr_widths, pages, tuples, allvisfrac,
										   MAXALIGN(SizeofHeapTupleHeader) + sizeof(ItemIdData),
										   BLCKSZ - SizeOfPageHeaderData);
		return;
	}

	*pages = curpages;
	*allvisfrac = 0;
	if (curpages == 0)
	{
		*tuples = 0;
		return;
	}
	/* density from the last ANALYZE or VACUUM, else every row id in use */
	if (reltuples >= 0 && relpages > 0)
		*tuples = rint(reltuples / relpages * curpages);
	else
		*tuples = (double) curpages * STRATA_ROWS_PER_BLOCK;
}

static const TableAmRoutine strata_methods = {
	.type = T_TableAmRoutine,

	.slot_callbacks = strata_slot_callbacks,

	.scan_begin = strata_scan_begin,
	.scan_end = strata_scan_end,
	.scan_rescan = strata_scan_rescan,
	.scan_getnextslot = strata_scan_getnextslot,

	.scan_set_tidrange = strata_scan_set_tidrange,
	.scan_getnextslot_tidrange = strata_scan_getnextslot_tidrange,

	.parallelscan_estimate = strata_parallelscan_estimate,
	.parallelscan_initialize = strata_parallelscan_initialize,
	.parallelscan_reinitialize = strata_parallelscan_reinitialize,

	.index_fetch_begin = strata_index_fetch_begin,
	.index_fetch_reset = strata_index_fetch_reset,
	.index_fetch_end = strata_index_fetch_end,
	.index_fetch_tuple = strata_index_fetch_tuple,

	.tuple_fetch_row_version = strata_tuple_fetch_row_version,
	.tuple_tid_valid = strata_tuple_tid_valid,
	.tuple_get_latest_tid = strata_tuple_get_latest_tid,
	.tuple_satisfies_snapshot = strata_tuple_satisfies_snapshot,
	.index_delete_tuples = strata_index_delete_tuples,

	.tuple_insert = strata_tuple_insert,
	.tuple_insert_speculative = strata_tuple_insert_speculative,
	.tuple_complete_speculative = strata_tuple_complete_speculative,
	.multi_insert = strata_multi_insert,
	.tuple_delete = strata_tuple_delete,
	.tuple_update = strata_tuple_update,
	.tuple_lock = strata_tuple_lock,
	.finish_bulk_insert = strata_finish_bulk_insert,

	.relation_set_new_filenode = strata_relation_set_new_filenode,
	.relation_nontransactional_truncate = strata_relation_nontransactional_truncate,
	.relation_copy_data = strata_relation_copy_data,
	.relation_copy_for_cluster = strata_relation_copy_for_cluster,
	.relation_vacuum = strata_relation_vacuum,
	.scan_analyze_next_block = strata_scan_analyze_next_block,
	.scan_analyze_next_tuple = strata_scan_analyze_next_tuple,
	.index_build_range_scan = strata_index_build_range_scan,
	.index_validate_scan = strata_index_validate_scan,

	.relation_size = strata_relation_size,
	.relation_needs_toast_table = strata_relation_needs_toast_table,
	.relation_toast_am = strata_relation_toast_am,
	.relation_fetch_toast_slice = NULL,

	.relation_estimate_size = strata_relation_estimate_size,

	.scan_bitmap_next_block = strata_scan_bitmap_next_block,
	.scan_bitmap_next_tuple = strata_scan_bitmap_next_tuple,
	.scan_sample_next_block = strata_scan_sample_next_block,
	.scan_sample_next_tuple = strata_scan_sample_next_tuple,
};

Datum
stratago_tableam_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&strata_methods);
}

/* Is rel a strata table? (Its access method is this one.) */
bool
strata_relation_is_strata(Relation rel)
{
	return rel->rd_tableam == &strata_methods;
}
