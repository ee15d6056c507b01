/*
 * am_fetch.c — reading one row of a strata table by its TID: index
 * fetches, index_delete_tuples, and the single-row callbacks that change
 * nothing (fetch_row_version, tid_valid, get_latest_tid,
 * satisfies_snapshot). With them live the row helpers the other callback
 * families build on: a TID's row id, a version stored into a slot,
 * SERIALIZABLE's read-side predicate locks, and the test whether a row is
 * gone for every snapshot.
 *
 * It is the lowest of the am_*.c files: it calls none of them, so scans,
 * row locks, modifications, VACUUM and the rewrites all use its helpers
 * (am_internal.h) without a circle of calls.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "storage/predicate.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "pg/am_internal.h"
#include "pg/read.h"
#include "pg/rowversion.h"
#include "pg/tree.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------
 */
uint64
strata_rowid_or_error(Relation rel, ItemPointer tid)
{
	uint64		rowid;

	if (!ItemPointerIsValid(tid) || !strata_tid_to_rowid(tid, &rowid))
		elog(ERROR, "invalid TID (%u,%u) for strata table \"%s\"",
			 ItemPointerGetBlockNumberNoCheck(tid), ItemPointerGetOffsetNumberNoCheck(tid),
			 RelationGetRelationName(rel));
	return rowid;
}

/*
 * Room left over in every tuple this stores, so that the next row of the
 * same width finds the slot's tuple large enough to be filled in place.
 */
#define STORE_TUPLE_SLACK 64

/*
 * Put the DATA version v of the row at tid into slot.
 *
 * A scan stores one row after another into the same slot, and storing
 * frees the tuple the slot held: this fills that tuple's memory in place
 * when it is one chunk of the slot's context large enough for the row,
 * which is what a free and a fresh palloc would hand back anyway, minus
 * their cost (they were a tenth of a whole-table scan's instructions).
 *
 * tid may point into the slot itself (tuple_lock is called with
 * &slot->tts_tid, as logical replication's apply does): clearing the slot
 * resets that, so the TID is read before anything else.
 */
void
strata_store_version(Relation rel, const StrataVersion *v, ItemPointer tid_in,
					 TupleTableSlot *slot)
{
	ItemPointerData tid_copy = *tid_in;
	ItemPointer tid = &tid_copy;
	Size		need = strata_version_heap_size(v);
	HeapTuple	tuple = NULL;

	if (TTS_IS_HEAPTUPLE(slot) && !TTS_EMPTY(slot) && TTS_SHOULDFREE(slot))
	{
		HeapTuple	old = ((HeapTupleTableSlot *) slot)->tuple;

		if (old->t_data == (HeapTupleHeader) ((char *) old + HEAPTUPLESIZE) &&
			GetMemoryChunkContext(old) == slot->tts_mcxt &&
			GetMemoryChunkSpace(old) >= need + STORE_TUPLE_SLACK)
		{
			/* take the tuple back from the slot instead of letting it free it */
			slot->tts_flags &= ~TTS_FLAG_SHOULDFREE;
			ExecClearTuple(slot);
			tuple = old;
		}
	}
	/* the slot frees the tuple later: it must live in the slot's context */
	if (tuple == NULL)
		tuple = MemoryContextAlloc(slot->tts_mcxt, need + STORE_TUPLE_SLACK);
	strata_version_fill_heap(v, tid, RelationGetRelid(rel), tuple);
	ExecStoreHeapTuple(tuple, slot, true);
	slot->tts_tableOid = RelationGetRelid(rel);
	slot->tts_tid = *tid;
}

/*
 * Is this row gone for every snapshot that exists or will exist? True when
 * all its versions were rolled back, or its newest is a delete or move
 * whose writer is older than every snapshot; *latest_xid gets that writer
 * (the conflict horizon for standbys).
 *
 * A row id with no version at all proves nothing: compaction leaves a dead
 * stub for every row an index may still point at, and VACUUM reaps a row
 * only after removing its index entries, so an index entry whose row is
 * not found points into storage that is missing or damaged (a lost
 * MANIFEST makes a table look empty). Marking such entries dead would
 * destroy the index along with the table, so this says no.
 */
bool
strata_row_dead_to_all(const StrataVersion *versions, int n, GlobalVisState *vistest,
					   TransactionId *latest_xid)
{
	if (n == 0)
		return false;
	for (int i = 0; i < n; i++)
	{
		StrataWriterState ws = strata_writer_state(&versions[i]);
		TransactionId xid = XidFromFullTransactionId(versions[i].writer);

		if (ws == STRATA_WRITER_ABORTED)
			continue;
		if (versions[i].kind == STRATA_LOCK)
			continue;
		if (versions[i].kind == STRATA_DATA || ws != STRATA_WRITER_COMMITTED)
			return false;
		if (!(versions[i].flags & STRATA_VF_FROZEN) &&
			!GlobalVisTestIsRemovableXid(vistest, xid))
			return false;
		if (!TransactionIdIsValid(*latest_xid) || TransactionIdFollows(xid, *latest_xid))
			*latest_xid = xid;
		return true;
	}
	return true;				/* nothing but rolled-back versions */
}

/* ------------------------------------------------------------------------
 * SERIALIZABLE: PostgreSQL's predicate locks
 *
 * Readers take the locks heap takes (the whole relation for a sequential
 * scan, the TID for a fetch) and report rw-conflicts out: every version
 * newer than the one a snapshot sees, or a version it cannot see, written
 * by a concurrent transaction. Writers check for conflicts in on the TID
 * they change (or the relation, for an insert).
 * ------------------------------------------------------------------------
 */
void
strata_ssi_read_serializable(Relation rel, const StrataVersion *versions, int n,
							 StrataResolved r, ItemPointer tid, Snapshot snapshot)
{
	int			upto;

	if (!IsMVCCSnapshot(snapshot) ||
		!CheckForSerializableConflictOutNeeded(rel, snapshot))
		return;
	upto = r.visible ? r.index : n;
	for (int i = 0; i < upto; i++)
	{
		TransactionId xid = XidFromFullTransactionId(versions[i].writer);
		StrataWriterState ws = strata_writer_state(&versions[i]);

		if (ws == STRATA_WRITER_IN_PROGRESS ||
			(ws == STRATA_WRITER_COMMITTED && !(versions[i].flags & STRATA_VF_FROZEN) &&
			 XidInMVCCSnapshot(xid, snapshot)))
			CheckForSerializableConflictOut(rel, xid, snapshot);
	}
	if (r.visible && tid != NULL)
		PredicateLockTID(rel, tid, snapshot, XidFromFullTransactionId(versions[r.index].writer));
}

/* ------------------------------------------------------------------------
 * Index fetches
 * ------------------------------------------------------------------------
 */
typedef struct StrataIndexFetchData
{
	IndexFetchTableData base;
	StrataTree *tree;
	StrataRowFetcher *fetcher;	/* index order often is row id order */
	MemoryContext cxt;			/* the versions of the row last fetched */
} StrataIndexFetchData;

IndexFetchTableData *
strata_index_fetch_begin(Relation rel)
{
	StrataIndexFetchData *f = MemoryContextAllocZero(TopTransactionContext,
													 sizeof(StrataIndexFetchData));
	MemoryContext old;

	f->base.rel = rel;
	f->tree = strata_tree_get(rel);
	f->cxt = AllocSetContextCreate(TopTransactionContext, "strata index fetch",
								   ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(TopTransactionContext);
	f->fetcher = strata_row_fetcher_begin(rel, f->tree);
	MemoryContextSwitchTo(old);
	return &f->base;
}

void
strata_index_fetch_reset(IndexFetchTableData *data)
{
}

void
strata_index_fetch_end(IndexFetchTableData *data)
{
	StrataIndexFetchData *f = (StrataIndexFetchData *) data;

	strata_row_fetcher_end(f->fetcher);
	MemoryContextDelete(f->cxt);
	pfree(f);
}

bool
strata_index_fetch_tuple(IndexFetchTableData *data, ItemPointer tid,
						 Snapshot snapshot, TupleTableSlot *slot,
						 bool *call_again, bool *all_dead)
{
	StrataIndexFetchData *f = (StrataIndexFetchData *) data;
	Relation	rel = f->base.rel;
	uint64		rowid;
	StrataVersion *versions;
	int			n;
	StrataResolved r;

	*call_again = false;		/* one TID, one row: there is no chain to walk */
	if (all_dead)
		*all_dead = false;
	if (!ItemPointerIsValid(tid) || !strata_tid_to_rowid(tid, &rowid))
		return false;

	MemoryContextReset(f->cxt);
	n = strata_row_fetcher_versions(f->fetcher, rowid, snapshot, &versions, f->cxt);
	r = strata_resolve(versions, n, snapshot);
	strata_ssi_read(rel, versions, n, r, tid, snapshot);
	if (snapshot->snapshot_type == SNAPSHOT_DIRTY && TransactionIdIsValid(snapshot->xmin))
		snapshot->speculativeToken = strata_speculation_token(f->tree, rowid, snapshot->xmin);
	if (r.visible)
	{
		strata_store_version(rel, &versions[r.index], tid, slot);
		return true;
	}
	/*
	 * Let the index kill its entry when nobody can see the row any more:
	 * judged from all of its versions as of now, not from the fetcher's
	 * view, which may lack the newest.
	 */
	if (all_dead && snapshot->snapshot_type == SNAPSHOT_MVCC)
	{
		TransactionId latest = InvalidTransactionId;

		n = strata_tree_versions(rel, f->tree, rowid, &versions, f->cxt);
		*all_dead = strata_row_dead_to_all(versions, n, GlobalVisTestFor(rel), &latest);
	}
	return false;
}

/* ------------------------------------------------------------------------
 * Non-modifying operations on individual tuples
 * ------------------------------------------------------------------------
 */
bool
strata_tuple_fetch_row_version(Relation rel, ItemPointer tid,
							   Snapshot snapshot, TupleTableSlot *slot)
{
	return strata_fetch_row_version(rel, NULL, tid, snapshot, slot);
}

/*
 * The version of the row at tid that snapshot sees, into slot; read
 * through fetcher if not NULL (a bitmap scan's), else afresh.
 */
bool
strata_fetch_row_version(Relation rel, StrataRowFetcher *fetcher, ItemPointer tid,
						 Snapshot snapshot, TupleTableSlot *slot)
{
	uint64		rowid = strata_rowid_or_error(rel, tid);
	StrataVersion *versions;
	int			n;
	StrataResolved r;

	if (fetcher != NULL)
		n = strata_row_fetcher_versions(fetcher, rowid, snapshot, &versions,
										CurrentMemoryContext);
	else
		n = strata_tree_versions(rel, strata_tree_get(rel), rowid, &versions,
								 CurrentMemoryContext);

	/* SnapshotAny: the version the executor is acting on (strata_resolve_any) */
	if (snapshot->snapshot_type == SNAPSHOT_ANY)
		r = strata_resolve_any(versions, n);
	else
		r = strata_resolve(versions, n, snapshot);

	strata_ssi_read(rel, versions, n, r, tid, snapshot);
	if (!r.visible)
		return false;
	strata_store_version(rel, &versions[r.index], tid, slot);

	/*
	 * Heap's tuple carries the xid that deleted or replaced it as xmax
	 * (DELETE ... RETURNING xmax, triggers): that is the writer of the
	 * nearest newer change that was not rolled back.
	 */
	if (TTS_IS_HEAPTUPLE(slot))
	{
		for (int i = r.index - 1; i >= 0; i--)
		{
			HeapTuple	tuple = ((HeapTupleTableSlot *) slot)->tuple;

			if (versions[i].kind == STRATA_LOCK ||
				strata_writer_state(&versions[i]) == STRATA_WRITER_ABORTED)
				continue;
			HeapTupleHeaderSetXmax(tuple->t_data, XidFromFullTransactionId(versions[i].writer));
			tuple->t_data->t_infomask &= ~HEAP_XMAX_INVALID;
			break;
		}
	}
	return true;
}

bool
strata_tuple_tid_valid(TableScanDesc sscan, ItemPointer tid)
{
	StrataScanDesc scan = (StrataScanDesc) sscan;
	uint64		rowid;

	return ItemPointerIsValid(tid) && strata_tid_to_rowid(tid, &rowid) &&
		rowid < scan->tree->next_rowid;
}

/*
 * Follow MOVED links from tid and leave in *tid the newest TID in that
 * chain whose row the scan's snapshot sees, as heap_get_latest_tid does
 * with t_ctid. A move the snapshot cannot see (a later transaction's, in
 * REPEATABLE READ) is followed but does not replace *tid: UPDATE ... WHERE
 * CURRENT OF then acts on the version it saw and fails with a
 * serialization error, instead of finding no row at the new TID.
 */
void
strata_tuple_get_latest_tid(TableScanDesc sscan, ItemPointer tid)
{
	Relation	rel = sscan->rs_rd;
	Snapshot	snapshot = sscan->rs_snapshot;
	StrataTree *tree = strata_tree_get(rel);
	ItemPointerData cur = *tid;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "strata latest tid",
											  ALLOCSET_SMALL_SIZES);
	int			hops = 0;

	for (;;)
	{
		uint64		rowid = strata_rowid_or_error(rel, &cur);
		StrataVersion *versions;
		int			n;
		const StrataVersion *moved = NULL;

		MemoryContextReset(cxt);
		n = strata_tree_versions(rel, tree, rowid, &versions, cxt);
		if (strata_resolve(versions, n, snapshot).visible)
			*tid = cur;

		/* the newest change not rolled back: a move (of any writer) leads on */
		for (int i = 0; i < n; i++)
		{
			if (versions[i].kind == STRATA_LOCK ||
				strata_writer_state(&versions[i]) == STRATA_WRITER_ABORTED)
				continue;
			if (versions[i].kind == STRATA_MOVED)
				moved = &versions[i];
			break;
		}
		/* a row moved to another partition has no later version here */
		if (moved == NULL || ItemPointerIndicatesMovedPartitions(&moved->moved_to) ||
			++hops > 1000000)
			break;
		cur = moved->moved_to;
	}
	MemoryContextDelete(cxt);
}

bool
strata_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot,
								Snapshot snapshot)
{
	StrataTree *tree = strata_tree_get(rel);
	uint64		rowid = strata_rowid_or_error(rel, &slot->tts_tid);
	StrataVersion *versions;
	int			n = strata_tree_versions(rel, tree, rowid, &versions, CurrentMemoryContext);
	StrataResolved r = strata_resolve(versions, n, snapshot);
	HeapTuple	tuple;
	bool		shouldFree;

	if (!r.visible)
		return false;
	/* the visible version must be the one in the slot (same writer and command) */
	tuple = ExecFetchSlotHeapTuple(slot, false, &shouldFree);
	return HeapTupleHeaderGetRawXmin(tuple->t_data) == XidFromFullTransactionId(versions[r.index].writer) &&
		HeapTupleHeaderGetRawCommandId(tuple->t_data) == versions[r.index].cid;
}

/*
 * Which index entries point at rows nobody can see any more (btree asks
 * after ROLLBACK TO SAVEPOINT and in bottom-up deletion). Every candidate
 * is checked; the ones found dead are marked deletable.
 */
TransactionId
strata_index_delete_tuples(Relation rel, TM_IndexDeleteOp *delstate)
{
	StrataTree *tree = strata_tree_get(rel);
	GlobalVisState *vistest = GlobalVisTestFor(rel);
	TransactionId latest = InvalidTransactionId;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "strata index delete",
											  ALLOCSET_SMALL_SIZES);

	for (int i = 0; i < delstate->ndeltids; i++)
	{
		TM_IndexDelete *del = &delstate->deltids[i];
		TM_IndexStatus *st = &delstate->status[del->id];
		uint64		rowid;
		StrataVersion *versions;
		int			n;

		if (!strata_tid_to_rowid(&del->tid, &rowid))
			continue;
		MemoryContextReset(cxt);
		n = strata_tree_versions(rel, tree, rowid, &versions, cxt);
		if (strata_row_dead_to_all(versions, n, vistest, &latest))
		{
			st->knowndeletable = true;
			if (delstate->bottomup)
				delstate->bottomupfreespace -= Min(delstate->bottomupfreespace, st->freespace);
		}
	}
	MemoryContextDelete(cxt);
	return latest;
}
