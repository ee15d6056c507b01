/*
 * tree.h — the shared-memory state of strata tables and the calls on it:
 * one LSM tree per relfilenode (keyed by RelFileNodeBackend) in a shared
 * registry, memtables in one shared arena (offset + generation names one),
 * tree directories, per-row write latches and speculative-insert tokens.
 * Every other glue module builds on this one; it calls none of them.
 *
 * Lock order (never take an earlier lock while holding a later one):
 *   1. row latch (StrataShared.row_latches, striped by tree and row id)
 *   2. tree lock (StrataTree.lock)
 *   3. registry lock (StrataShared.registry_lock)
 *   4. arena lock (StrataShared.arena_lock)
 *   5. WAL insert lock, then WAL sync lock (enginewal.c)
 * See src/pg/README.md for the design.
 */
#ifndef STRATA_TREE_H
#define STRATA_TREE_H

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
#include "pg/stratago.h"
#include "pg/hold.h"
#include "pg/rowversion.h"

/* Row ids map to TIDs as block = id / 291, offset = id % 291 + 1. */
#define STRATA_ROWS_PER_BLOCK	MaxHeapTuplesPerPage
#define STRATA_MAX_ROWID		((UINT64CONST(1) << 48) - 1)

#define STRATA_MAX_IMM			4	/* immutable memtables per tree */
/*
 * The arena's allocation unit. Every table being written holds at least
 * one, so it bounds how many tables can be written at once: 8 kB lets the
 * default 256 MB serve 32,768 (64 kB chunks served 4,096, and an INSERT
 * spread over 10,000 partitions flushed a tiny memtable per few rows).
 */
#define STRATA_CHUNK_SIZE		(8 * 1024)
#define STRATA_ROW_LATCHES		1024
/* writers wait below this many free chunks (256 kB) */
#define STRATA_ARENA_RESERVE_CHUNKS 32
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
 * lock protects every field after the two locks; memtables are written
 * only under it in exclusive mode (the skiplist's single-writer rule), and
 * read lock-free by any backend that pinned them under it in shared mode.
 *
 * An entry leaves the registry only in the maintenance worker's sweep, and
 * a new tree of the same relfilenode takes its entry over in place: so a
 * pointer from strata_registry_list stays a valid entry, with valid locks,
 * in the worker until its next sweep; elsewhere, brief looks at every tree
 * use strata_registry_foreach, under the registry lock.
 */
typedef struct StrataTree
{
	/*
	 * Hash key: must be first. backend is InvalidBackendId except for a
	 * temporary table, whose relfilenode numbers may repeat a permanent
	 * one's (PostgreSQL checks them only against the owning backend's files).
	 */
	RelFileNodeBackend key;
	LWLock		lock;

	/*
	 * manifest_lock orders MANIFEST appends and SSTable unlinks (worker,
	 * exclusive) against backends replaying the MANIFEST and opening the
	 * files it names (shared): a file is never unlinked between a backend
	 * reading its name and opening it.
	 */
	LWLock		manifest_lock;

	/*
	 * From here on, everything is reset when a relfilenode gets a new tree
	 * (tree.c, reset_tree_entry); the key and the locks above never are,
	 * as another process may hold or wait for a lock meanwhile.
	 */
	uint64		tree_id;		/* random; names the directory, tags WAL records */
	bool		dropped;		/* storage gone; entry awaits removal */

	/*
	 * The codec compaction writes into the bottom level for this tree
	 * (STRATA_TREE_CODEC_*): the table's own choice, kept in the OPTIONS
	 * file of its directory (treeopts.c); DEFAULT follows the setting
	 * stratago.bottom_compression. Read without a lock (one byte).
	 */
	uint8		bottom_codec;

	/*
	 * The incarnation of the maintenance worker running a job on this tree
	 * (strata_worker_incarnation), 0 if none. A new tree under the same
	 * relfilenode waits for that job to end before it takes the entry and
	 * removes the old directory (tree.c, retire_old_tree).
	 */
	uint64		worker_job;

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
	TimestampTz last_flush;		/* end of the last flush (0: none yet) */
	TimestampTz last_compaction;	/* end of the last compaction (0: none) */
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

	/* statistics */
	uint64		rows_written;	/* versions appended */
	uint64		wal_bytes;		/* engine WAL bytes for this tree */
} StrataTree;

/* One backend's speculative insertion in flight (tree.c). */
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
	LWLock	   *row_latches;	/* STRATA_ROW_LATCHES locks */

	int			tree_tranche_id;	/* LWLock tranche of StrataTree.lock */

	/* memtable arena: chunk i is at arena_base + (i + 1) * STRATA_CHUNK_SIZE */
	pg_atomic_uint64 memtable_generation;	/* the last one handed out */
	int			arena_nchunks;
	int			arena_free;
	uint64		arena_offset;	/* of the chunk area from the struct start */

	ConditionVariable flush_cv; /* signalled when a memtable was flushed */

	/* chunk bitmap follows (arena_nchunks bits), then the chunk area */
	uint8		chunk_used[FLEXIBLE_ARRAY_MEMBER];
} StrataShared;

extern StrataShared *strata_shared;

/* Whether tree's active memtable holds anything. REQUIRES: tree lock. */
#define strata_active_has_data(tree) ((tree)->active_entries != 0)

/* Whether tree has an active memtable yet. REQUIRES: tree lock. */
#define strata_has_active(tree) ((tree)->active.off != 0)

/* Whether changes to tree go to a log (and commits wait for them). */
#define strata_tree_logged(tree) ((tree)->persistence == RELPERSISTENCE_PERMANENT)

/*
 * The longest a process waits for others in a bounded wait: the worker at
 * shutdown for the backends to be gone, and a backend with a full registry
 * for the worker's sweeps (ms).
 */
#define STRATA_BOUNDED_WAIT_MS 10000

/* Shared memory: size to request, and attach (or create) at startup. */
extern Size strata_shmem_size(void);
extern void strata_shmem_init(void);

/* The registry. */
extern StrataTree *strata_tree_get(Relation rel);
extern StrataTree *strata_tree_lookup(const RelFileNode *rnode);
extern StrataTree *strata_tree_lookup_backend(const RelFileNode *rnode, BackendId backend);
extern StrataTree *strata_tree_create_with_id(const RelFileNode *rnode, BackendId backend,
											  char persistence, uint64 tree_id);
extern StrataTree *strata_tree_register_found(const RelFileNodeBackend *key, uint64 tree_id,
											  char persistence);
extern void strata_tree_drop(const RelFileNodeBackend *key, uint64 tree_id);
extern int	strata_registry_list(StrataTree ***trees);
extern void strata_registry_foreach(bool (*fn) (StrataTree *tree, void *arg), void *arg);
extern void strata_reclaim_dropped_trees(void);
extern char strata_persistence_on_disk(const RelFileNode *rnode);
extern bool strata_tree_storage_exists(const StrataTree *tree);
extern void strata_tree_dir(const StrataTree *tree, char *buf, size_t len);
extern uint64 strata_tree_alloc_rowid(StrataTree *tree);
extern uint64 strata_tree_alloc_rowids(StrataTree *tree, int n);

/* Memtables. */
extern void strata_memtable_attach(StrataMemtableRef ref, sg_memtable *mt);
/* Bytes of versions the tree's memtables (active and frozen) hold. */
/* The same bytes, and how many versions they are. */
extern void strata_tree_memtable_usage(StrataTree *tree, uint64 *bytes, uint64 *versions);
extern void strata_memtable_unpin(StrataMemtableRef ref);
extern bool strata_memtable_full(sg_memtable *mt);
extern bool strata_ensure_active_memtable(StrataTree *tree);
extern StrataMemtableRef strata_memtable_new(void);
extern bool strata_freeze_active(StrataTree *tree);
extern StrataMemtableRef strata_take_empty_active(StrataTree *tree);

/* Row latches and speculative insertions. */
extern LWLock *strata_row_latch(StrataTree *tree, uint64 rowid);
extern void strata_speculation_begin(StrataTree *tree, uint64 rowid, TransactionId xid,
									 uint32 token);
extern void strata_speculation_end(void);
extern uint32 strata_speculation_token(StrataTree *tree, uint64 rowid, TransactionId xid);

static inline void
strata_rowid_to_tid(uint64 rowid, ItemPointer tid)
{
	ItemPointerSet(tid, (BlockNumber) (rowid / STRATA_ROWS_PER_BLOCK),
				   (OffsetNumber) (rowid % STRATA_ROWS_PER_BLOCK + 1));
}

/*
 * The blocks the tree's row ids handed out so far span (one per
 * STRATA_ROWS_PER_BLOCK), so that block numbers match TIDs: the size
 * PostgreSQL's planner, ANALYZE and VACUUM work with. A read without the
 * tree lock may be one allocation behind, as heap's unlocked size is.
 */
static inline uint64
strata_tree_nblocks(const StrataTree *tree)
{
	return (tree->next_rowid + STRATA_ROWS_PER_BLOCK - 1) / STRATA_ROWS_PER_BLOCK;
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

#endif							/* STRATA_TREE_H */
