/*
 * runtime.h — the shared-memory runtime behind strata tables: one LSM tree
 * per relation (keyed by RelFileNodeBackend), memtables in one shared arena, the
 * cluster-wide engine WAL with group commit, and per-row write latches.
 *
 * Lock order (never take an earlier lock while holding a later one):
 *   1. row latch (StrataShared.row_latches, striped by tree and row id)
 *   2. tree lock (StrataTree.lock)
 *   3. registry lock (StrataShared.registry_lock)
 *   4. arena lock (StrataShared.arena_lock)
 *   5. WAL insert lock, then WAL sync lock (enginewal.c)
 * See src/pg/README.md for the design.
 */
#ifndef STRATA_RUNTIME_H
#define STRATA_RUNTIME_H

#include "postgres.h"

#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xlogdefs.h"
#include "lib/stringinfo.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/itemptr.h"
#include "storage/lwlock.h"
#include "storage/relfilenode.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "engine/memtable/memtable.h"
#include "engine/sstable/table.h"
#include "engine/wal/wal_writer.h"
#include "pg/hold.h"
#include "pg/rowversion.h"

/* Row ids map to TIDs as block = id / 291, offset = id % 291 + 1. */
#define STRATA_ROWS_PER_BLOCK	MaxHeapTuplesPerPage
#define STRATA_MAX_ROWID		((UINT64CONST(1) << 48) - 1)

#define STRATA_MAX_IMM			4	/* immutable memtables per tree */
#define STRATA_CHUNK_SIZE		(64 * 1024)	/* arena allocation unit */
#define STRATA_ROW_LATCHES		1024
#define STRATA_ARENA_RESERVE_CHUNKS 4	/* writers wait below this many free chunks */
#define STRATA_ROWID_KEY_LEN	8

/* In an unlogged tree's directory while rows may be in memtables only. */
#define STRATA_UNFLUSHED_MARKER "UNFLUSHED"

/*
 * Writers of a tree wait for compaction while its level 0 holds this many
 * SSTables: every read opens each level-0 file, and so does the
 * compaction that merges them, so an unbounded level 0 runs processes out
 * of file descriptors (RocksDB's level0_stop_writes_trigger).
 */
#define STRATA_L0_STOP_FILES	48

/*
 * A memtable in the shared arena as the glue names it: the offset of its
 * header and the generation it was created with. Offsets are reused once a
 * memtable's chunks go back to the arena; generations never are, so
 * attaching through a stale reference is refused (strata_memtable_attach)
 * instead of reading another memtable's rows (doc/DESIGN.md §3.3).
 */
typedef struct StrataMemtableRef
{
	sg_off		off;			/* 0: no memtable */
	uint64		generation;
} StrataMemtableRef;

/*
 * One tree (one relfilenode of one strata relation). Lives in the shared
 * registry hash; found by any backend.
 *
 * lock protects everything below it; memtables are written only under it
 * in exclusive mode (the skiplist's single-writer rule), and read
 * lock-free by any backend that pinned them under it in shared mode.
 */
typedef struct StrataTree
{
	/*
	 * Hash key: must be first. backend is InvalidBackendId except for a
	 * temporary table, whose relfilenode numbers may repeat a permanent
	 * one's (PostgreSQL checks them only against the owning backend's files).
	 */
	RelFileNodeBackend key;
	uint64		tree_id;		/* random; names the directory, tags WAL records */
	LWLock		lock;
	bool		dropped;		/* storage gone; entry awaits removal */

	/*
	 * RELPERSISTENCE_*. Only permanent trees are WAL-logged (either sink);
	 * unlogged trees are emptied after a crash and temporary trees at every
	 * start, as heap's are (README, "Unlogged and temporary tables").
	 */
	char		persistence;
	bool		unflushed_marked;	/* unlogged: UNFLUSHED marker file exists */
	bool		lost_rows;		/* unlogged: rows lost at an unclean stop */

	/*
	 * Its MANIFEST could not be read at startup: the tree is refused, and
	 * its log records are left unapplied and kept from keep_lsn (engine
	 * WAL) and keep_pglsn (PostgreSQL's WAL) on, so that restoring its
	 * files and restarting brings every committed change back.
	 */
	bool		damaged;
	char		damage[256];	/* what was wrong, for the error */
	uint64		keep_lsn;		/* 0: nothing kept */
	XLogRecPtr	keep_pglsn;
	uint64		active_entries; /* versions in the active memtable */
	uint64		imm_entries[STRATA_MAX_IMM];	/* and in each frozen one: what
												 * its flush must write */
	uint64		next_seq;		/* engine sequence for the next version */
	uint64		next_rowid;		/* row id for the next new row */
	StrataMemtableRef active;	/* active memtable (off 0: none yet) */
	int			nimm;
	StrataMemtableRef imm[STRATA_MAX_IMM];	/* frozen memtables, oldest first */
	/* engine WAL: end LSN of the first record in each memtable (0: none) */
	uint64		active_min_lsn;
	uint64		imm_min_lsn[STRATA_MAX_IMM];
	uint64		flushed_lsn;	/* engine WAL up to this is in SSTables */

	/*
	 * PostgreSQL's WAL (stratago.wal_sink = postgres, pgwal.c): start LSN
	 * of the first and end LSN of the last record in each memtable (0:
	 * none). A memtable may hold records of both logs after a change of
	 * sink; each log keeps its own positions.
	 */
	XLogRecPtr	active_pg_first;
	XLogRecPtr	active_pg_last;
	XLogRecPtr	imm_pg_first[STRATA_MAX_IMM];
	XLogRecPtr	imm_pg_last[STRATA_MAX_IMM];
	XLogRecPtr	flushed_pglsn;	/* PostgreSQL WAL up to this is in SSTables */
	uint64		version_no;		/* bumps when the set of SSTables changes */
	int			l0_files;		/* SSTables at level 0 in the installed version */
	uint64		auto_compact_idle_version;	/* worker: version_no + 1 found
											 * needing no compaction (0: none) */
	uint64		flushes;		/* memtables flushed so far */
	uint64		flush_bytes;	/* SSTable bytes written by flushes */
	uint64		compactions;
	uint64		compaction_bytes;	/* SSTable bytes written by compactions */
	uint64		manual_compactions; /* stratago.compact() calls completed */
	uint64		versions_dropped;	/* by compaction: no snapshot could see them */
	uint64		versions_frozen;	/* rewritten frozen by compaction */
	/*
	 * Maintenance jobs (flush, compaction) of this tree that failed. A
	 * failure is this tree's alone: the worker logs it, backs off on this
	 * tree (job_retry_at) and goes on with the others; callers waiting for
	 * the job get its error (flush.c, run_tree_job).
	 */
	uint64		job_failures;	/* since start */
	int			job_failures_in_row;	/* since the last success */
	TimestampTz job_retry_at;	/* no job before this (0: at once) */
	int			job_sqlstate;	/* of the last failure */
	char		job_error[256];
	bool		flush_requested;	/* stratago.flush(): freeze and flush active */
	bool		compact_requested;	/* stratago.compact(): compact everything */

	/*
	 * manifest_lock orders MANIFEST appends and SSTable unlinks (worker,
	 * exclusive) against backends replaying the MANIFEST and opening the
	 * files it names (shared): a file is never unlinked between a backend
	 * reading its name and opening it.
	 */
	LWLock		manifest_lock;
	/* statistics */
	uint64		rows_written;	/* versions appended */
	uint64		wal_bytes;		/* engine WAL bytes for this tree */
} StrataTree;

/* One backend's speculative insertion in flight (runtime.c). */
typedef struct StrataSpeculation
{
	uint64		tree_id;
	uint64		rowid;
	TransactionId xid;
	volatile uint32 token;		/* 0: none */
} StrataSpeculation;

typedef struct StrataShared
{
	LWLock	   *registry_lock;
	LWLock	   *arena_lock;
	LWLock	   *wal_insert_lock;
	LWLock	   *wal_sync_lock;
	LWLock	   *xid_lock;
	LWLock	   *row_latches;	/* STRATA_ROW_LATCHES locks */

	int			tree_tranche_id;	/* LWLock tranche of StrataTree.lock */
	pid_t		maintenance_pid;
	uint64		maintenance_starts;
	pg_atomic_uint64 sweeps;	/* rounds of strata_sweep_dropped completed */

	/* memtable arena: chunk i is at arena_base + (i + 1) * STRATA_CHUNK_SIZE */
	pg_atomic_uint64 memtable_generation;	/* the last one handed out */
	int			arena_nchunks;
	int			arena_free;
	uint64		arena_offset;	/* of the chunk area from the struct start */

	/* engine WAL */
	sg_wal_writer_state wal_state;
	pg_atomic_uint64 wal_durable_lsn;
	bool		wal_ready;		/* recovery done, writer state valid */
	char		wal_error[SG_ERR_MSG_LEN];
	/* statistics since start (stratago.wal_stats()) */
	pg_atomic_uint64 wal_commits;	/* commits that wrote the engine WAL */
	pg_atomic_uint64 wal_syncs; /* fsyncs issued for them (group commit) */
	pg_atomic_uint64 wal_segments_removed;

	/* xids below this may appear in engine files (design §3.1) */
	pg_atomic_uint64 xid_horizon;

	ConditionVariable flush_cv; /* signalled when a memtable was flushed */

	/* chunk bitmap follows (arena_nchunks bits), then the chunk area */
	uint8		chunk_used[FLEXIBLE_ARRAY_MEMBER];
} StrataShared;

extern StrataShared *strata_shared;

/* GUCs */
extern int	strata_maintenance_naptime;
extern int	strata_memtable_memory_mb;
extern int	strata_memtable_size_kb;
extern int	strata_max_tables;
extern bool strata_sync;
extern int	strata_wal_sink;
extern bool strata_checkpoint_guard;

/* Whether tree's active memtable holds anything. REQUIRES: tree lock. */
#define strata_active_has_data(tree) ((tree)->active_entries != 0)

/* Whether tree has an active memtable yet. REQUIRES: tree lock. */
#define strata_has_active(tree) ((tree)->active.off != 0)

/* Whether changes to tree go to a log (and commits wait for them). */
#define strata_tree_logged(tree) ((tree)->persistence == RELPERSISTENCE_PERMANENT)

/* stratago.wal_sink */
typedef enum StrataWalSink
{
	STRATA_SINK_ENGINE,			/* the engine WAL, synced at pre-commit */
	STRATA_SINK_POSTGRES		/* PostgreSQL's WAL, through the custom rmgr */
} StrataWalSink;

/* Which log a replayed batch came from (strata_apply_batch). */
typedef enum StrataLog
{
	STRATA_LOG_ENGINE,
	STRATA_LOG_POSTGRES
} StrataLog;

/* runtime.c */
extern Size strata_shmem_size(void);
extern void strata_shmem_init(void);
extern void strata_runtime_recover(void);
extern StrataTree *strata_tree_create(const RelFileNode *rnode, BackendId backend,
									  char persistence);
extern StrataTree *strata_tree_get(Relation rel);
extern void strata_tree_drop(const RelFileNodeBackend *key, uint64 tree_id);
extern uint64 strata_tree_alloc_rowid(StrataTree *tree);
extern void strata_tree_append(Relation rel, StrataTree *tree, uint64 rowid,
							   StringInfo version);
extern void strata_tree_append_many(Relation rel, StrataTree *tree, const uint64 *rowids,
									StringInfo *versions, int n);
extern bool strata_database_has_tables(Oid dboid);
extern void strata_tree_copy(Relation src_rel, StrataTree *src, Relation dst_rel,
							 StrataTree *dst,
							 bool (*skip) (void *arg, uint64 rowid,
										   const StrataVersion *versions, int n),
							 uint64 (*remap) (void *arg, uint64 rowid),
							 void *arg, FullTransactionId *oldest);
extern void strata_tree_reap_rows(Relation rel, StrataTree *tree, const uint64 *rowids,
								  int n);
extern bool strata_tree_oldest_unfrozen(Relation rel, StrataTree *tree,
										FullTransactionId *oldest, uint64 *stubs);
extern int	strata_tree_versions(Relation rel, StrataTree *tree, uint64 rowid,
								 StrataVersion **versions, MemoryContext mcxt);
extern void strata_tree_dir(const StrataTree *tree, char *buf, size_t len);
extern LWLock *strata_row_latch(StrataTree *tree, uint64 rowid);
extern void strata_speculation_begin(StrataTree *tree, uint64 rowid, TransactionId xid,
									 uint32 token);
extern void strata_speculation_end(void);
extern uint32 strata_speculation_token(StrataTree *tree, uint64 rowid, TransactionId xid);
extern void strata_engine_error(sg_code rc, const sg_err *err);
extern bool strata_apply_batch(StrataTree *tree, StrataLog log, uint64 first_lsn,
							   uint64 end_lsn, sg_slice batch);
extern StrataTree *strata_tree_lookup(const RelFileNode *rnode);
extern StrataTree *strata_tree_create_with_id(const RelFileNode *rnode, BackendId backend,
											  char persistence, uint64 tree_id);
extern char strata_persistence_on_disk(const RelFileNode *rnode);
extern bool strata_tree_storage_exists(const StrataTree *tree);

/* pgwal.c: strata records in PostgreSQL's WAL */
extern void strata_pgwal_register_rmgr(void);
extern XLogRecPtr strata_pgwal_log_rows(StrataTree *tree, sg_slice batch, XLogRecPtr *start);
extern void strata_pgwal_log_create(const RelFileNode *rnode, uint64 tree_id);
extern void strata_pgwal_log_conflict(const RelFileNode *rnode, TransactionId latest_removed);
extern void strata_pgwal_recover(void);
extern void strata_pgwal_retain(void);
extern void strata_pgwal_guard_flush(void);
extern bool strata_pgwal_guard_armed(void);
extern void strata_reserve_xid(FullTransactionId fxid);

/* Memtable and registry helpers shared with flush.c */
extern void strata_memtable_attach(StrataMemtableRef ref, sg_memtable *mt);
extern bool strata_freeze_active(StrataTree *tree);
extern void strata_memtable_unpin(StrataMemtableRef ref);
extern int	strata_registry_list(StrataTree ***trees);

/* flush.c: SSTables of a tree as this backend sees them */
typedef struct StrataLocalVersion StrataLocalVersion;
extern StrataLocalVersion *strata_local_version_get(StrataTree *tree, StrataHoldId *hold);
extern void strata_local_version_release(StrataLocalVersion *lv, StrataHoldId hold);
extern int	strata_local_version_iters(StrataLocalVersion *lv, sg_iter **iters);
extern int	strata_local_version_nfiles(StrataLocalVersion *lv);
extern bool strata_local_version_versions(StrataLocalVersion *lv, sg_slice key,
										  bool (*fn) (void *arg, uint64_t seq, sg_value_type type,
													  sg_slice value),
										  void *arg);
extern void strata_local_version_file(StrataLocalVersion *lv, int i, int *level,
									  uint64 *number, sg_table_reader **reader);
extern void strata_flush_round(void);
extern void strata_flush_unlogged_at_shutdown(void);
extern void strata_flush_requested(void);
extern void strata_check_flush_failing(TimestampTz wait_start);
extern ErrorData *strata_run_isolated(void (*fn) (void *arg), void *arg);

/* flush.c: what each SSTable records about its contents (user_stats) */
typedef struct StrataFileStats
{
	uint64		oldest_unfrozen;	/* FullTransactionId; 0 none, 1 unknown */
	uint64		dead_stubs;		/* rows gone for all, awaiting VACUUM */
	uint64		rowid_hwm;		/* no row id at or above was handed out */
} StrataFileStats;
extern bool strata_file_stats_parse(sg_slice blob, StrataFileStats *fs);
extern void strata_sweep_dropped(void);
extern void strata_reclaim_dropped_trees(void);
extern void strata_tree_request_compact(StrataTree *tree);
extern void strata_tree_request_flush(StrataTree *tree);
extern void strata_recover_tree_manifest(StrataTree *tree);
extern void strata_recovery_flush(StrataTree *tree, uint64 log_number);
extern void strata_recovery_done(void);
extern void strata_wal_recycle(void);

/* A forward scan over every row of a tree: each step gives one row id and
 * all its versions, newest first. */
typedef struct StrataTreeScan StrataTreeScan;
extern StrataTreeScan *strata_tree_scan_begin(Relation rel, StrataTree *tree,
											  bool full_chains);
extern bool strata_tree_scan_next(StrataTreeScan *scan, uint64 *rowid,
								  StrataVersion **versions, int *nversions);
extern void strata_tree_scan_seek(StrataTreeScan *scan, uint64 rowid);
extern void strata_tree_scan_end(StrataTreeScan *scan);

static inline void
strata_rowid_to_tid(uint64 rowid, ItemPointer tid)
{
	ItemPointerSet(tid, (BlockNumber) (rowid / STRATA_ROWS_PER_BLOCK),
				   (OffsetNumber) (rowid % STRATA_ROWS_PER_BLOCK + 1));
}

static inline bool
strata_tid_to_rowid(ItemPointer tid, uint64 *rowid)
{
	OffsetNumber off = ItemPointerGetOffsetNumberNoCheck(tid);

	if (off < 1 || off > STRATA_ROWS_PER_BLOCK)
		return false;
	*rowid = (uint64) ItemPointerGetBlockNumberNoCheck(tid) * STRATA_ROWS_PER_BLOCK + (off - 1);
	return true;
}

/* enginewal.c */
extern void strata_wal_init_callbacks(void);
extern uint64 strata_wal_append_rows(StrataTree *tree, sg_slice batch);
extern void strata_wal_wait_durable(uint64 lsn);
extern void strata_wal_note_write(uint64 end_lsn);
extern void strata_wal_recover(void);

#endif							/* STRATA_RUNTIME_H */
