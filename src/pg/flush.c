/*
 * flush.c — memtables to SSTables, and the maintenance worker's rounds
 * (flush.h): a flush checks what it wrote before its memtable and log are
 * let go; each table's flush and compaction run isolated, so one table's
 * failure (a damaged file, a full disk) is that table's alone; backends'
 * requests (stratago.flush/compact, VACUUM) and their waits; writers told
 * when flushes keep failing; the sweep of dropped trees; unlogged tables
 * written out at a clean shutdown.
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "engine/compact/compact.h"
#include "pg/compaction.h"
#include "pg/enginewal.h"
#include "pg/error.h"
#include "pg/filestats.h"
#include "pg/flush.h"
#include "pg/jobprogress.h"
#include "pg/throttle.h"
#include "pg/tree.h"
#include "pg/vset.h"
#include "pg/wakeup.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "utils/resowner.h"

/*
 * Flush the oldest frozen memtable of tree. log_number, when not zero, is
 * the WAL position it covers (recovery knows it exactly); otherwise it is
 * derived from the memtables that stay.
 */
static void
flush_one_at(StrataTree *tree, uint64 forced_log_number)
{
	StrataMemtableRef ref;
	bool		retired;
	sg_flush_expect expect;
	uint64		tree_id;
	uint64		log_number;
	uint64		flushed_before;
	XLogRecPtr	pg_log_number;
	XLogRecPtr	pg_flushed_before;
	sg_vset    *vs;
	sg_memtable mt;
	sg_flush_job job;
	sg_version_edit edit;
	sg_job_stats stats;
	sg_err		err = {0};
	sg_code		rc;
	char		dir[MAXPGPATH];
	sg_iter    *it;
	StatsAcc	acc;

	LWLockAcquire(&tree->lock, LW_SHARED);
	if (tree->nimm == 0)
	{
		LWLockRelease(&tree->lock);
		return;
	}
	ref = tree->imm[0];
	expect.entries = tree->imm_entries[0];
	tree_id = tree->tree_id;
	/* every row id in the memtable was handed out below this */
	strata_stats_acc_init(&acc, tree->next_rowid);

	/*
	 * Engine WAL records ending at or below this are all in imm[0] or
	 * earlier SSTables: just below the next memtable's first one.
	 */
	log_number = 0;
	for (int i = 1; i < tree->nimm && log_number == 0; i++)
		log_number = tree->imm_min_lsn[i];
	if (log_number == 0)
		log_number = tree->active_min_lsn;
	if (forced_log_number != 0)
		log_number = forced_log_number;
	else if (log_number != 0)
		log_number--;
	else
		log_number = strata_wal_end_lsn();
	if (log_number < tree->flushed_lsn)
		log_number = tree->flushed_lsn;
	/* PostgreSQL's WAL: records are ordered per tree, so imm[0]'s last is the bound */
	pg_log_number = Max(tree->imm_pg_last[0], tree->flushed_pglsn);
	flushed_before = tree->flushed_lsn;
	pg_flushed_before = tree->flushed_pglsn;
	LWLockRelease(&tree->lock);

	/*
	 * The log before the data. The edit below tells every later recovery
	 * to skip the log up to log_number and pg_log_number: so the log must
	 * be durable that far before the edit is. A memtable can hold records
	 * still in WAL buffers (a transaction in progress); had a crash cut the
	 * log short of the marks, the restarted server would write new records
	 * at positions the edit claims are in SSTables, and the next recovery
	 * would skip them, committed or not (TAP 003 lost the first commits
	 * after a restart this way). This is heap's rule that WAL is flushed up
	 * to a page's LSN before the page is written. The postmaster's flushes
	 * during recovery replay only durable log.
	 */
	if (IsUnderPostmaster)
	{
		if (log_number > flushed_before)
			strata_wal_wait_durable(log_number);
		if (pg_log_number > pg_flushed_before)
			XLogFlush(pg_log_number);
	}

	vs = strata_worker_vset(tree);
	strata_tree_dir(tree, dir, sizeof(dir));
	strata_memtable_attach(ref, &mt);

	/*
	 * Two witnesses of what the flush must write: the writers' count of
	 * versions they added (tree->imm_entries) and the memtable's own.
	 * They can only differ if something wrote past the tree lock.
	 */
	if (sg_memtable_entries(&mt) != expect.entries)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("strata memtable of \"%s\" holds %llu versions where %llu were added",
						dir, (unsigned long long) sg_memtable_entries(&mt),
						(unsigned long long) expect.entries),
				 errdetail("The memtable is not flushed, and nothing it holds is released.")));
	if (!sg_memtable_seq_range(&mt, &expect.smallest_seq, &expect.largest_seq))
		expect.smallest_seq = expect.largest_seq = 0;
	it = sg_memtable_iter(&mt);

	strata_job_progress_begin(STRATA_JOB_FLUSH, &tree->key.node, 0,
							  sg_memtable_data_bytes(&mt));
	memset(&job, 0, sizeof(job));
	job.env = strata_maintenance_env();
	job.dir = dir;
	job.source = it;
	job.file_number = sg_vset_new_file_number(vs);
	job.observe = strata_stats_observe;
	job.user_stats = strata_stats_finish;
	job.stats_arg = &acc;
	job.expect = &expect;
	sg_version_edit_init(&edit);
	rc = sg_flush_run(&job, &edit, &stats, &err);
	sg_iter_destroy(it);
	if (rc == SG_OK)
	{
		sg_version_edit_set_log_number(&edit, log_number);
		sg_version_edit_set_aux_log_number(&edit, pg_log_number);
		if (expect.entries > 0)
			sg_version_edit_set_last_sequence(&edit, expect.largest_seq);
		LWLockAcquire(&tree->manifest_lock, LW_EXCLUSIVE);
		rc = sg_vset_log_and_apply(vs, &edit, &err);
		LWLockRelease(&tree->manifest_lock);
	}
	sg_version_edit_free(&edit);
	if (rc != SG_OK)
		strata_engine_error(rc, &err);
	strata_job_progress_end();

	/* the SSTable is durable and named by the MANIFEST: retire the memtable */
	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	retired = tree->tree_id == tree_id && tree->nimm > 0 &&
		tree->imm[0].off == ref.off && tree->imm[0].generation == ref.generation;
	if (retired)
	{
		for (int i = 1; i < tree->nimm; i++)
		{
			tree->imm[i - 1] = tree->imm[i];
			tree->imm_entries[i - 1] = tree->imm_entries[i];
			tree->imm_min_lsn[i - 1] = tree->imm_min_lsn[i];
			tree->imm_pg_first[i - 1] = tree->imm_pg_first[i];
			tree->imm_pg_last[i - 1] = tree->imm_pg_last[i];
		}
		tree->nimm--;
		tree->version_no++;
		tree->l0_files = (int) vs->current->nfiles[0];
		tree->flushes++;
		tree->flush_bytes += stats.bytes_written;
		tree->last_flush = GetCurrentTimestamp();
		if (log_number > tree->flushed_lsn)
			tree->flushed_lsn = log_number;
		if (pg_log_number > tree->flushed_pglsn)
			tree->flushed_pglsn = pg_log_number;
	}
	/* else the tree was recreated meanwhile, and its memtables went with it */
	LWLockRelease(&tree->lock);
	if (retired)
		strata_memtable_unpin(ref);
	/* nobody waits during recovery, and the postmaster has no PGPROC to wake them */
	if (IsUnderPostmaster)
		ConditionVariableBroadcast(&strata_shared->flush_cv);
}

static void
flush_one(StrataTree *tree)
{
	flush_one_at(tree, 0);
}

/*
 * During WAL replay in the postmaster: write tree's memtable out once it is
 * full, so that replaying a long log never needs more than the arena.
 * Everything up to log_number for this tree is in that memtable.
 */
void
strata_recovery_flush(StrataTree *tree, uint64 log_number)
{
	if (!strata_freeze_active(tree))
		elog(ERROR, "stratago: no room to freeze a memtable during recovery");
	flush_one_at(tree, log_number);
}

/* After recovery: the postmaster forgets its MANIFEST handles (children must not inherit them). */
void
strata_recovery_done(void)
{
	strata_forget_all_worker_vsets();
}

/* ------------------------------------------------------------------------
 * One table's failure stays that table's (maintenance worker)
 * ------------------------------------------------------------------------
 */

/* Back-off after a tree's job failed: 1 s, doubling, at most a minute. */
#define STRATA_JOB_RETRY_MIN_MS 1000
#define STRATA_JOB_RETRY_MAX_MS 60000

/*
 * How long a writer waits for memtable memory while flushes are failing
 * before it gets the flushes' error instead of waiting on.
 */
#define STRATA_WRITER_FAIL_MS 5000

/*
 * Run fn(arg) in a subtransaction: an ERROR in it is caught, its locks,
 * condition variable sleep and memory go with the subtransaction, and it
 * is handed back (NULL: it succeeded). A PANIC (a failed fsync) or FATAL
 * is not caught. REQUIRES: a transaction (the worker's loop keeps one).
 */
ErrorData *
strata_run_isolated(void (*fn) (void *arg), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return edata;
}

typedef void (*TreeJob) (StrataTree *tree);

typedef struct TreeJobCall
{
	TreeJob		job;
	StrataTree *tree;
} TreeJobCall;

static void
call_tree_job(void *arg)
{
	TreeJobCall *call = arg;

	call->job(call->tree);
}

/*
 * Run one maintenance job of one tree isolated (strata_run_isolated), so
 * that an error (a damaged file, a full disk) is this tree's alone: it is
 * logged and recorded on the tree (stratago.table_stats(), callers waiting
 * in wait_for_worker), the tree is left alone for a while, growing on each
 * failure in a row, and the worker goes on with the other trees. Nothing
 * of a failed flush is lost: its memtable and the log records behind it
 * stay until a later try succeeds.
 */
/*
 * Mark tree as having a job of this worker under way, unless it is
 * dropped: a new tree of the same relfilenode waits for the mark to go
 * before it removes the old directory and reuses the entry (tree.c,
 * retire_old_tree). An error that ends the worker leaves the mark, which
 * then names a worker that no longer runs.
 */
static bool
worker_job_begin(StrataTree *tree)
{
	bool		dropped;

	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	dropped = tree->dropped;
	if (!dropped)
		tree->worker_job = strata_worker_incarnation();
	LWLockRelease(&tree->lock);
	return !dropped;
}

static void
worker_job_end(StrataTree *tree)
{
	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	tree->worker_job = 0;
	LWLockRelease(&tree->lock);
}

static bool
run_tree_job(StrataTree *tree, TreeJob job)
{
	TreeJobCall call = {job, tree};
	ErrorData  *edata;
	bool		ok;

	if (tree->damaged)
		return false;
	if (tree->job_retry_at != 0 && GetCurrentTimestamp() < tree->job_retry_at)
		return false;
	if (!worker_job_begin(tree))
		return false;

	edata = strata_run_isolated(call_tree_job, &call);
	ok = edata == NULL;
	strata_job_progress_end();	/* a job that failed part way is over too */
	if (!ok)
	{
		long		backoff;

		/* the handle may be unusable (a MANIFEST append failed): reopen */
		strata_forget_worker_vset(tree->tree_id);

		LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
		backoff = STRATA_JOB_RETRY_MIN_MS << Min(tree->job_failures_in_row, 6);
		backoff = Min(backoff, STRATA_JOB_RETRY_MAX_MS);
		tree->job_failures++;
		tree->job_failures_in_row++;
		tree->job_retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), backoff);
		tree->job_sqlstate = edata->sqlerrcode;
		strlcpy(tree->job_error, edata->message ? edata->message : "unknown error",
				sizeof(tree->job_error));
		/* whoever asked for a compaction is told; it is not retried */
		tree->compact_requested = false;
		LWLockRelease(&tree->lock);

		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("stratago: maintenance of relfilenode %u/%u/%u failed: %s",
						tree->key.node.spcNode, tree->key.node.dbNode,
						tree->key.node.relNode, tree->job_error),
				 errdetail("Other tables are not affected. Nothing written to this table is lost; its flush and compaction are retried in %ld ms.",
						   backoff)));
		FreeErrorData(edata);
	}
	else if (tree->job_failures_in_row > 0)
	{
		LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
		tree->job_failures_in_row = 0;
		tree->job_retry_at = 0;
		LWLockRelease(&tree->lock);
		ereport(LOG,
				(errmsg("stratago: maintenance of relfilenode %u/%u/%u succeeded again",
						tree->key.node.spcNode, tree->key.node.dbNode,
						tree->key.node.relNode)));
	}
	worker_job_end(tree);
	/* waiters learn of success and failure alike */
	ConditionVariableBroadcast(&strata_shared->flush_cv);
	return ok;
}

/*
 * A writer that has waited since wait_start for memtable memory: once it
 * has waited STRATA_WRITER_FAIL_MS while some tree's flushes are failing,
 * the memory will not come by waiting; raise that failure (a full disk is
 * ERRCODE_DISK_FULL naming the file). Writers retry by themselves once a
 * flush succeeds again.
 */
typedef struct FailingFlush
{
	int			sqlstate;		/* 0: none found */
	char		msg[sizeof(((StrataTree *) NULL)->job_error)];
} FailingFlush;

/* strata_registry_foreach: stop at a tree whose memtables cannot be flushed. */
static bool
find_failing_flush(StrataTree *tree, void *arg)
{
	FailingFlush *failing = arg;

	LWLockAcquire(&tree->lock, LW_SHARED);
	if (tree->job_failures_in_row > 0 && tree->nimm > 0)
	{
		failing->sqlstate = tree->job_sqlstate;
		strlcpy(failing->msg, tree->job_error, sizeof(failing->msg));
	}
	LWLockRelease(&tree->lock);
	return failing->sqlstate == 0;
}

void
strata_check_flush_failing(TimestampTz wait_start)
{
	FailingFlush failing = {0};

	if (!TimestampDifferenceExceeds(wait_start, GetCurrentTimestamp(), STRATA_WRITER_FAIL_MS))
		return;
	strata_registry_foreach(find_failing_flush, &failing);
	if (failing.sqlstate != 0)
		ereport(ERROR,
				(errcode(failing.sqlstate),
				 errmsg("could not make room for strata changes: %s", failing.msg),
				 errdetail("Memtable memory is exhausted and the maintenance worker cannot write memtables to disk."),
				 errhint(failing.sqlstate == ERRCODE_DISK_FULL
						 ? "Free disk space; writes resume by themselves once a flush succeeds."
						 : "See the server log; writes resume by themselves once a flush succeeds.")));
}

/* Freeze tree's active memtable and flush all it has frozen. */
static void
freeze_and_flush(StrataTree *tree)
{
	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	if (strata_active_has_data(tree))
		(void) strata_freeze_active(tree);
	LWLockRelease(&tree->lock);
	while (tree->nimm > 0)
	{
		CHECK_FOR_INTERRUPTS();
		flush_one(tree);
	}
}

/* A tree and what its active memtable holds, for relieve_memory_pressure. */
typedef struct ActiveUsage
{
	StrataTree *tree;
	uint64		bytes;
} ActiveUsage;

static int
compare_usage_desc(const void *a, const void *b)
{
	uint64		x = ((const ActiveUsage *) a)->bytes;
	uint64		y = ((const ActiveUsage *) b)->bytes;

	return x < y ? 1 : (x > y ? -1 : 0);
}

/*
 * When the shared memtable arena runs low, give back empty active
 * memtables and freeze and flush the largest ones, largest first, until a
 * quarter of the arena is free again, as RocksDB's write buffer manager
 * flushes the largest memtable. Every tree written holds at least one
 * 8 kB chunk, so with many thousands of tables (partitions) this is what
 * keeps writers going, not memtables reaching stratago.memtable_size. One
 * pass over the trees, then a sort: no rescan of every tree per flush.
 */
static void
relieve_memory_pressure(StrataTree **trees, int n)
{
	int			low = strata_shared->arena_nchunks / 4;
	ActiveUsage *usage;
	int			nusage = 0;

	if (strata_shared->arena_free >= low)
		return;
	usage = palloc(sizeof(ActiveUsage) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		StrataTree *tree = trees[i];
		StrataMemtableRef empty;
		sg_memtable mt;
		uint64		bytes = 0;

		LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
		empty = strata_take_empty_active(tree);
		if (strata_has_active(tree) && strata_active_has_data(tree) &&
			tree->nimm < STRATA_MAX_IMM && tree->job_failures_in_row == 0)
		{
			strata_memtable_attach(tree->active, &mt);
			bytes = sg_memtable_memory_usage(&mt);
		}
		LWLockRelease(&tree->lock);
		if (empty.off != 0)
			strata_memtable_unpin(empty);
		if (bytes > 0)
		{
			usage[nusage].tree = tree;
			usage[nusage].bytes = bytes;
			nusage++;
		}
	}
	qsort(usage, nusage, sizeof(ActiveUsage), compare_usage_desc);
	for (int i = 0; i < nusage && strata_shared->arena_free < low; i++)
		(void) run_tree_job(usage[i].tree, freeze_and_flush);
	pfree(usage);
}

/* Freeze the active memtable of a tree whose flush was requested. */
static void
freeze_if_requested(StrataTree *tree)
{
	if (!tree->flush_requested)
		return;
	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	if (tree->flush_requested && strata_has_active(tree) && strata_active_has_data(tree))
	{
		if (strata_freeze_active(tree))
			tree->flush_requested = false;
	}
	else
		tree->flush_requested = false;
	LWLockRelease(&tree->lock);
}

/* Flush what tree has frozen, and its active memtable if asked to. */
static void
flush_requested_job(StrataTree *tree)
{
	freeze_if_requested(tree);
	while (tree->nimm > 0)
	{
		CHECK_FOR_INTERRUPTS();
		flush_one(tree);
	}
}

/*
 * The maintenance of one tree in a worker round: flush what is frozen,
 * run a requested compaction, then a few automatic compaction steps.
 */
static void
maintain_tree_job(StrataTree *tree)
{
	flush_requested_job(tree);
	if (tree->compact_requested)
	{
		uint64		freeze_below;

		while (strata_compact_one(tree, COMPACT_MANUAL, 0))
			CHECK_FOR_INTERRUPTS();
		/* each file once: outputs are numbered from here on */
		freeze_below = strata_worker_vset(tree)->next_file;
		while (strata_compact_one(tree, COMPACT_FREEZE, freeze_below))
			CHECK_FOR_INTERRUPTS();
		LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
		tree->compact_requested = false;
		tree->manual_compactions++;
		LWLockRelease(&tree->lock);
	}
	/* a few at a time, so frozen memtables never wait long */
	for (int k = 0; k < 4 && tree->nimm == 0 && strata_compact_one(tree, COMPACT_AUTO, 0); k++)
		CHECK_FOR_INTERRUPTS();
}

/*
 * Flush the trees whose flush was requested, and nothing else (no
 * compaction): what the checkpoint guard (pgwal.c) waits for.
 */
void
strata_flush_requested(void)
{
	StrataTree **trees;
	int			n = strata_registry_list(&trees);

	for (int i = 0; i < n; i++)
	{
		if (trees[i]->flush_requested)
			(void) run_tree_job(trees[i], flush_requested_job);
	}
	pfree(trees);
	ConditionVariableBroadcast(&strata_shared->flush_cv);
}

/* One round of the maintenance worker: flush every frozen memtable. */
void
strata_flush_round(void)
{
	StrataTree **trees;
	int			n = strata_registry_list(&trees);

	relieve_memory_pressure(trees, n);

	for (int i = 0; i < n; i++)
		(void) run_tree_job(trees[i], maintain_tree_job);
	pfree(trees);
	ConditionVariableBroadcast(&strata_shared->flush_cv);
}

/*
 * Wake the maintenance worker and wait until *counter (a field of tree,
 * read under its lock) reaches target.
 */
static void
wait_for_worker(StrataTree *tree, const uint64 *counter, uint64 target)
{
	uint64		failures;

	/* the caller wants the job now, not after a back-off */
	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	failures = tree->job_failures;
	tree->job_retry_at = 0;
	LWLockRelease(&tree->lock);

	if (!strata_worker_running())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the stratago maintenance worker is not running")));
	strata_worker_wake();

	ConditionVariablePrepareToSleep(&strata_shared->flush_cv);
	for (;;)
	{
		uint64		done;

		int			sqlstate = 0;
		char		msg[sizeof(tree->job_error)];

		LWLockAcquire(&tree->lock, LW_SHARED);
		done = *counter;
		if (done < target && tree->job_failures > failures)
		{
			sqlstate = tree->job_sqlstate;
			strlcpy(msg, tree->job_error, sizeof(msg));
		}
		LWLockRelease(&tree->lock);
		if (done >= target)
			break;
		if (sqlstate != 0)
		{
			ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(sqlstate),
					 errmsg("stratago maintenance of this table failed: %s", msg),
					 errdetail("Nothing written to the table is lost; the maintenance worker retries by itself.")));
		}
		ConditionVariableTimedSleep(&strata_shared->flush_cv, 1000, PG_WAIT_EXTENSION);
		strata_worker_wake();
	}
	ConditionVariableCancelSleep();
}

/*
 * stratago.flush(): make the worker write everything the tree holds in
 * memory to SSTables, and wait until it has.
 */
void
strata_tree_request_flush(StrataTree *tree)
{
	uint64		target;

	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	target = tree->flushes + tree->nimm + (strata_active_has_data(tree) ? 1 : 0);
	tree->flush_requested = strata_active_has_data(tree);
	LWLockRelease(&tree->lock);
	wait_for_worker(tree, &tree->flushes, target);
}

/* ------------------------------------------------------------------------
 * Dropped tables (maintenance worker)
 * ------------------------------------------------------------------------
 */

/*
 * Remove the trees of relations that are gone. PostgreSQL unlinks a
 * relation's main fork only after the checkpoint that follows the commit
 * of its DROP (or the abort of its CREATE), and never hands out a
 * relfilenode whose main fork still exists; so a tree whose main fork is
 * missing is garbage, and removing it can never race with a reuse of its
 * relfilenode (a reuse would also wipe it first: strata_tree_create).
 * This also covers DROP DATABASE and transactional TRUNCATE. A temporary
 * relation's file goes at once, and its number may be reused at once: the
 * reuse replaces the tree id, and strata_tree_drop leaves a tree whose id
 * changed alone. (strata_tree_storage_exists explains unlogged ones.)
 */
void
strata_sweep_dropped(void)
{
	StrataTree **trees;
	int			n = strata_registry_list(&trees);

	for (int i = 0; i < n; i++)
	{
		StrataTree *tree = trees[i];
		RelFileNodeBackend key = tree->key;
		uint64		tree_id = tree->tree_id;

		if (strata_tree_storage_exists(tree))
			continue;
		strata_forget_worker_vset(tree_id);
		strata_tree_drop(&key, tree_id);
	}
	pfree(trees);
	strata_worker_sweep_done();
	ConditionVariableBroadcast(&strata_shared->flush_cv);
}

/* ------------------------------------------------------------------------
 * Unlogged tables at shutdown (maintenance worker)
 * ------------------------------------------------------------------------
 */


/*
 * Whether a backend that may still write strata tables is alive: a client
 * backend, an autovacuum worker or another background worker. Wal
 * senders and auxiliary processes stay until after the worker exits.
 */
static bool
writers_alive(void)
{
	int			n;
	bool		alive = false;

	pgstat_clear_backend_activity_snapshot();
	n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n && !alive; i++)
	{
		LocalPgBackendStatus *ls = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be = ls ? &ls->backendStatus : NULL;

		if (be == NULL || be->st_procpid == 0 || be->st_procpid == MyProcPid)
			continue;
		alive = be->st_backendType == B_BACKEND ||
			be->st_backendType == B_AUTOVAC_WORKER ||
			be->st_backendType == B_BG_WORKER;
	}
	pgstat_clear_backend_activity_snapshot();
	return alive;
}

/*
 * At a clean shutdown: write out every unlogged tree's memtables and
 * remove its UNFLUSHED marker, so that unlogged tables keep their rows
 * over the restart, as heap's shutdown checkpoint keeps theirs. Backends
 * get SIGTERM together with the worker, so it first waits (bounded) for
 * them to exit: a commit after the flush would be lost. A write that still
 * comes after re-creates the marker (mark_unflushed), and the next start
 * refuses that table rather than show it without those rows.
 */
void
strata_flush_unlogged_at_shutdown(void)
{
	StrataTree **trees;
	int			n;
	TimestampTz start = GetCurrentTimestamp();

	while (writers_alive() &&
		   !TimestampDifferenceExceeds(start, GetCurrentTimestamp(), STRATA_BOUNDED_WAIT_MS))
		pg_usleep(10000L);

	n = strata_registry_list(&trees);
	for (int i = 0; i < n; i++)
	{
		StrataTree *tree = trees[i];

		if (tree->persistence != RELPERSISTENCE_UNLOGGED || !worker_job_begin(tree))
			continue;
		for (;;)
		{
			bool		done = false;

			while (tree->nimm > 0 && !tree->dropped)
				flush_one(tree);
			LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
			if (tree->dropped)
				done = true;
			else if (strata_has_active(tree) && strata_active_has_data(tree))
				(void) strata_freeze_active(tree);
			else if (tree->nimm == 0)
			{
				if (tree->unflushed_marked && !tree->lost_rows)
				{
					char		dir[MAXPGPATH];
					char		path[MAXPGPATH];

					strata_tree_dir(tree, dir, sizeof(dir));
					snprintf(path, sizeof(path), "%s/%s", dir, STRATA_UNFLUSHED_MARKER);
					if (unlink(path) != 0 && errno != ENOENT)
						ereport(ERROR,
								(errcode_for_file_access(),
								 errmsg("could not remove file \"%s\": %m", path)));
					fsync_fname(dir, true);
					tree->unflushed_marked = false;
				}
				done = true;
			}
			LWLockRelease(&tree->lock);
			if (done)
				break;
		}
		worker_job_end(tree);
	}
	pfree(trees);
}

/* stratago.compact(): have the worker compact every level down, and wait. */
void
strata_tree_request_compact(StrataTree *tree)
{
	uint64		target;

	strata_tree_request_flush(tree);
	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	target = tree->manual_compactions + 1;
	tree->compact_requested = true;
	LWLockRelease(&tree->lock);
	wait_for_worker(tree, &tree->manual_compactions, target);
}
