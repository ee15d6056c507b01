/*
 * am_lock.c — row locks of strata tables (tuple_lock: SELECT ... FOR
 * UPDATE/SHARE, EvalPlanQual's rechecks, ON CONFLICT DO UPDATE,
 * foreign-key checks) and the row-status logic every writer goes through:
 * the loop that latches a row, decides whether this writer may act on it,
 * waits for the transaction in the way and tries again. Delete and update
 * (am_modify.c) call that loop too; it is separate from them because it is
 * where writers and lockers meet, and it never calls back into
 * am_modify.c.
 *
 * Row locks
 *
 * A row's versions are kept newest first: DATA, TOMBSTONE, MOVED (to a new
 * TID) and LOCK. A row lock is a LOCK version written in the locker's
 * name (its xid and command id), carrying one of heap's four strengths:
 *
 *   FOR KEY SHARE       LockTupleKeyShare          foreign-key checks
 *   FOR SHARE           LockTupleShare
 *   FOR NO KEY UPDATE   LockTupleNoKeyExclusive
 *   FOR UPDATE          LockTupleExclusive
 *
 * Changes hold the row with a strength too: an UPDATE that changes no key
 * column as FOR NO KEY UPDATE (its DATA or MOVED version is flagged
 * STRATA_VF_KEY_KEPT), every other change as FOR UPDATE. LOCK versions
 * never decide what a snapshot sees; they only make writers and lockers
 * wait. Several lockers of a row are several LOCK versions: strata writes
 * no multixacts.
 *
 * What blocks what is heap's table (strata_lock_modes_conflict): KEY SHARE
 * conflicts with UPDATE only; SHARE with NO KEY UPDATE and UPDATE; NO KEY
 * UPDATE with everything but KEY SHARE; UPDATE with everything. Only
 * another transaction's lock or change that is still in progress, and of a
 * conflicting strength, blocks; a finished transaction's lock no longer
 * does, and a transaction's own locks never stand in its way (its later
 * update or delete goes through). So a foreign-key check's FOR KEY SHARE
 * passes an update that keeps the key, running or committed after its
 * snapshot, and locks the row as it was before that update; when the
 * update moved the row, the lock follows it to its later TIDs
 * (strata_lock_updated_chain, as heap's heap_lock_updated_tuple). A row's
 * first version, its insert, is never passed.
 *
 * Locks outlive the changes above them: a running transaction's lock below
 * a finished change still holds, and an update that gives the row a new
 * TID copies other transactions' running LOCK versions there, in their
 * holders' names (heap carries lockers over to the new version).
 *
 * Checking and waiting (strata_modify_row)
 *
 * The row latch (strata_row_latch) is held while the row's versions are
 * read, its status decided (strata_check_writable, which answers heap's
 * TM_Result for the same situation) and, on TM_Ok, the new version
 * appended: two writers never both win. On TM_BeingModified the latch is
 * let go. With LockWaitBlock the writer then, as on heap, queues on the
 * row's heavyweight tuple lock (LockTuple, in heap's strength mapping,
 * strata_tuplock_mode) before it sleeps on the other transaction
 * (XactLockTableWait), and keeps that lock until its own change is made,
 * so waiters go on in the order they came; a transaction that already
 * holds a lock on the row does not queue, since the first waiter may be
 * waiting for it. Then it starts over. With LockWaitSkip the answer is
 * TM_WouldBlock; with LockWaitError TM_BeingModified goes back to the
 * caller (tuple_lock turns it into heap's "could not obtain lock on row").
 */
#include "postgres.h"

#include "access/tableam.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/predicate.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "pg/am_internal.h"
#include "pg/read.h"
#include "pg/rowversion.h"
#include "pg/tree.h"
#include "pg/write.h"

/* ------------------------------------------------------------------------
 * Row status: may this writer act on the row?
 * ------------------------------------------------------------------------
 */
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

/* ------------------------------------------------------------------------
 * The wait loop of delete, update and lock
 * ------------------------------------------------------------------------
 */
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

/*
 * Common loop of delete, update and lock: latch the row, check it, wait
 * for an in-progress writer when asked to, and on TM_Ok call `act` with
 * the latch held. mode_of (may be NULL: `mode`) decides the strength from
 * the row as it is (an UPDATE's depends on whether it changes the key).
 */
TM_Result
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

void
strata_append_simple(Relation rel, StrataTree *tree, uint64 rowid, StrataVersionKind kind,
					 CommandId cid, uint8 flags, ItemPointer moved_to, LockTupleMode mode)
{
	StringInfoData v;

	initStringInfo(&v);
	strata_version_encode(&v, kind, GetCurrentFullTransactionId(), cid, flags, NULL,
						  moved_to, mode);
	strata_tree_append(rel, tree, rowid, &v);
	pfree(v.data);
}

/* ------------------------------------------------------------------------
 * Row locks
 * ------------------------------------------------------------------------
 */
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
		strata_append_simple(rel, tree, rowid, STRATA_LOCK, la->cid, 0, NULL, la->mode);
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
			strata_append_simple(rel, tree, rowid, STRATA_LOCK, cid, 0, NULL, LockTupleKeyShare);
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
TM_Result
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
