/*
 * runtime.c — the shared-memory runtime of strata tables (see runtime.h
 * for the structures and lock order, src/pg/README.md for the design):
 * shared memory layout, the memtable arena's chunk allocator, the tree
 * registry, the write path (row version -> engine WAL -> memtable) and the
 * read paths (one row's versions; a forward scan over all rows).
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_control.h"
#include "common/controldata_utils.h"
#include "common/pg_prng.h"
#include "common/relpath.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "engine/base/coding.h"
#include "engine/base/ikey.h"
#include "engine/merge/merge.h"
#include "engine/wal/batch.h"
#include "pg/runtime.h"
#include "pg/stratago.h"

static HTAB *strata_registry = NULL;

/*
 * The speculative insertion each backend has in flight (ON CONFLICT), so a
 * backend that meets the row through SnapshotDirty can wait for that
 * insertion alone (its token), as on heap, not for the whole transaction.
 * Slot i belongs to the backend with pgprocno i; only it writes the slot.
 * A reader that sees a stale slot waits on a token nobody holds, returns at
 * once and re-checks: no harm.
 */
static StrataSpeculation *strata_speculations = NULL;

void
strata_speculation_begin(StrataTree *tree, uint64 rowid, TransactionId xid, uint32 token)
{
	StrataSpeculation *sp;

	if (MyProc == NULL || MyProc->pgprocno >= MaxBackends)
		return;
	sp = &strata_speculations[MyProc->pgprocno];
	sp->token = 0;
	pg_write_barrier();
	sp->tree_id = tree->tree_id;
	sp->rowid = rowid;
	sp->xid = xid;
	pg_write_barrier();
	sp->token = token;
}

void
strata_speculation_end(void)
{
	if (MyProc == NULL || MyProc->pgprocno >= MaxBackends)
		return;
	strata_speculations[MyProc->pgprocno].token = 0;
}

/* The token of the speculative insertion of (tree, rowid) by xid, or 0. */
uint32
strata_speculation_token(StrataTree *tree, uint64 rowid, TransactionId xid)
{
	for (int i = 0; i < MaxBackends; i++)
	{
		StrataSpeculation *sp = &strata_speculations[i];
		uint32		token = sp->token;

		pg_read_barrier();
		if (token != 0 && sp->tree_id == tree->tree_id && sp->rowid == rowid &&
			TransactionIdEquals(sp->xid, xid))
			return token;
	}
	return 0;
}
static int	strata_tree_tranche_id = 0;

/* ------------------------------------------------------------------------
 * Errors from the engine
 * ------------------------------------------------------------------------
 */

/*
 * Report an engine failure in PostgreSQL's terms. A failed fsync PANICs:
 * after one, the kernel may have dropped the dirty pages, and retrying
 * would report success for data that is gone (BRIEF §2.5).
 */
void
strata_engine_error(sg_code rc, const sg_err *err)
{
	const char *msg = (err && err->msg[0]) ? err->msg : sg_code_name(rc);

	if (err && err->sync_failed)
		ereport(PANIC,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stratago: could not fsync: %s", msg)));
	switch (rc)
	{
		case SG_CORRUPTION:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("strata storage is corrupted: %s", msg)));
			break;
		case SG_NO_MEMORY:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory in strata storage: %s", msg),
					 errhint("Consider increasing stratago.memtable_memory.")));
			break;
		case SG_IO_ERROR:
			if (err && err->disk_full)
				ereport(ERROR,
						(errcode(ERRCODE_DISK_FULL),
						 errmsg("strata storage is out of disk space: %s", msg)));
			/* FALLTHROUGH */
		case SG_NOT_FOUND:
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("strata storage I/O error: %s", msg)));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("strata storage error: %s", msg)));
	}
}

/* ------------------------------------------------------------------------
 * Shared memory
 * ------------------------------------------------------------------------
 */

static int
arena_chunks(void)
{
	return Max(4, (int) (((Size) strata_memtable_memory_mb * 1024 * 1024) / STRATA_CHUNK_SIZE));
}

static Size
header_size(void)
{
	return TYPEALIGN(4096, offsetof(StrataShared, chunk_used) + arena_chunks());
}

Size
strata_shmem_size(void)
{
	Size		size = header_size();

	size = add_size(size, mul_size(arena_chunks(), STRATA_CHUNK_SIZE));
	size = add_size(size, 4096);	/* alignment slack */
	size = add_size(size, hash_estimate_size(strata_max_tables, sizeof(StrataTree)));
	size = add_size(size, mul_size(MaxBackends, sizeof(StrataSpeculation)));
	return size;
}

void
strata_shmem_init(void)
{
	bool		found;
	HASHCTL		info;
	Size		size = header_size() + (Size) arena_chunks() * STRATA_CHUNK_SIZE + 4096;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	strata_shared = ShmemInitStruct("stratago", size, &found);
	if (!found)
	{
		LWLockPadded *locks = GetNamedLWLockTranche("stratago");

		memset(strata_shared, 0, header_size());
		strata_shared->registry_lock = &locks[0].lock;
		strata_shared->arena_lock = &locks[1].lock;
		strata_shared->wal_insert_lock = &locks[2].lock;
		strata_shared->wal_sync_lock = &locks[3].lock;
		strata_shared->xid_lock = &locks[4].lock;
		strata_shared->row_latches = &(GetNamedLWLockTranche("stratago row"))->lock;
		strata_shared->arena_nchunks = arena_chunks();
		strata_shared->arena_free = arena_chunks();
		strata_shared->arena_offset = header_size();
		pg_atomic_init_u64(&strata_shared->wal_durable_lsn, 0);
		pg_atomic_init_u64(&strata_shared->wal_commits, 0);
		pg_atomic_init_u64(&strata_shared->wal_syncs, 0);
		pg_atomic_init_u64(&strata_shared->wal_segments_removed, 0);
		pg_atomic_init_u64(&strata_shared->xid_horizon, 0);
		pg_atomic_init_u64(&strata_shared->sweeps, 0);
		pg_atomic_init_u64(&strata_shared->memtable_generation, 0);
		ConditionVariableInit(&strata_shared->flush_cv);
		strata_shared->tree_tranche_id = LWLockNewTrancheId();
	}

	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(RelFileNodeBackend);
	info.entrysize = sizeof(StrataTree);
	strata_registry = ShmemInitHash("stratago trees", strata_max_tables, strata_max_tables,
									&info, HASH_ELEM | HASH_BLOBS);
	strata_speculations = ShmemInitStruct("stratago speculations",
										  mul_size(MaxBackends, sizeof(StrataSpeculation)),
										  &found);
	if (!found)
		memset(strata_speculations, 0, mul_size(MaxBackends, sizeof(StrataSpeculation)));
	LWLockRelease(AddinShmemInitLock);

	strata_tree_tranche_id = strata_shared->tree_tranche_id;
	LWLockRegisterTranche(strata_tree_tranche_id, "stratago tree");
}

/* ------------------------------------------------------------------------
 * The memtable arena: fixed chunks, handed out first fit
 * ------------------------------------------------------------------------
 */

static inline char *
arena_base(void)
{
	return (char *) strata_shared;
}

static sg_code
arena_chunk_alloc(void *ctx, size_t min_len, sg_off *off, size_t *len)
{
	int			need = (int) ((min_len + STRATA_CHUNK_SIZE - 1) / STRATA_CHUNK_SIZE);
	int			n = strata_shared->arena_nchunks;
	int			run = 0;

	LWLockAcquire(strata_shared->arena_lock, LW_EXCLUSIVE);
	for (int i = 0; i < n; i++)
	{
		run = strata_shared->chunk_used[i] ? 0 : run + 1;
		if (run == need)
		{
			int			first = i - need + 1;

			for (int j = first; j <= i; j++)
				strata_shared->chunk_used[j] = 1;
			strata_shared->arena_free -= need;
			LWLockRelease(strata_shared->arena_lock);
			*off = strata_shared->arena_offset + (sg_off) first * STRATA_CHUNK_SIZE;
			*len = (size_t) need * STRATA_CHUNK_SIZE;
			return SG_OK;
		}
	}
	LWLockRelease(strata_shared->arena_lock);
	return SG_NO_MEMORY;
}

static void
arena_chunk_release(void *ctx, sg_off off, size_t len)
{
	int			first = (int) ((off - strata_shared->arena_offset) / STRATA_CHUNK_SIZE);
	int			n = (int) (len / STRATA_CHUNK_SIZE);

	LWLockAcquire(strata_shared->arena_lock, LW_EXCLUSIVE);
	for (int j = first; j < first + n; j++)
		strata_shared->chunk_used[j] = 0;
	strata_shared->arena_free += n;
	LWLockRelease(strata_shared->arena_lock);
}

/*
 * Attach a process-local handle to the memtable ref names. A stale
 * reference (the memtable was released, its chunks maybe reused by
 * another) is an ERROR naming it, never a read of someone else's rows.
 */
void
strata_memtable_attach(StrataMemtableRef ref, sg_memtable *mt)
{
	sg_err		err = {0};
	sg_code		rc = sg_memtable_attach(mt, arena_base(), ref.off, ref.generation,
										arena_chunk_alloc, NULL, &err);

	if (rc != SG_OK)
		strata_engine_error(rc, &err);
}

/* A new empty memtable in fresh arena chunks. REQUIRES: tree lock held. */
static StrataMemtableRef
memtable_new(void)
{
	sg_arena	arena;
	sg_memtable mt;
	sg_err		err = {0};
	sg_code		rc;
	StrataMemtableRef ref;

	ref.generation = pg_atomic_add_fetch_u64(&strata_shared->memtable_generation, 1);
	rc = sg_arena_create(&arena, arena_base(), 0, 0, arena_chunk_alloc, NULL, &err);
	if (rc == SG_OK)
		rc = sg_memtable_create(&mt, &arena, ref.generation, &err);
	if (rc != SG_OK)
		strata_engine_error(rc, &err);
	ref.off = sg_memtable_offset(&mt);
	return ref;
}

/* Drop one pin; the last one frees the memtable's chunks. */
void
strata_memtable_unpin(StrataMemtableRef ref)
{
	sg_memtable mt;

	strata_memtable_attach(ref, &mt);
	if (sg_memtable_unref(&mt))
		sg_arena_release(&mt.arena, arena_chunk_release, NULL);
}

/* ------------------------------------------------------------------------
 * Tree registry and directories
 * ------------------------------------------------------------------------
 */

/*
 * Tree directories are $PGDATA/stratago/<db>/<name>, name being
 * "<spc>_<rel>_<tree id>", with "t<backend>_" in front for a temporary
 * table's (removed at every start: register_tree_dirs). This writes the
 * part of the name every tree of key shares, up to the tree id.
 */
static void
tree_name_prefix(const RelFileNodeBackend *key, char *buf, size_t len)
{
	if (key->backend != InvalidBackendId)
		snprintf(buf, len, "t%d_%u_%u_", key->backend, key->node.spcNode, key->node.relNode);
	else
		snprintf(buf, len, "%u_%u_", key->node.spcNode, key->node.relNode);
}

static void
tree_dir_path_of(const RelFileNodeBackend *key, uint64 tree_id, char *buf, size_t len)
{
	char		prefix[64];

	tree_name_prefix(key, prefix, sizeof(prefix));
	snprintf(buf, len, "%s/%u/%s%016llx", STRATAGO_DIR, key->node.dbNode, prefix,
			 (unsigned long long) tree_id);
}

void
strata_tree_dir(const StrataTree *tree, char *buf, size_t len)
{
	tree_dir_path_of(&tree->key, tree->tree_id, buf, len);
}

static void
init_tree_entry(StrataTree *tree, uint64 tree_id, char persistence)
{
	RelFileNodeBackend key = tree->key;

	memset(tree, 0, sizeof(*tree));
	tree->key = key;
	tree->tree_id = tree_id;
	tree->persistence = persistence;
	LWLockInitialize(&tree->lock, strata_tree_tranche_id);
	LWLockInitialize(&tree->manifest_lock, strata_tree_tranche_id);
}

/* Every live tree (palloc'd array of pointers into the registry). */
int
strata_registry_list(StrataTree ***trees)
{
	HASH_SEQ_STATUS status;
	StrataTree *tree;
	int			n = 0;
	int			cap = 16;

	*trees = palloc(sizeof(StrataTree *) * cap);
	LWLockAcquire(strata_shared->registry_lock, LW_SHARED);
	hash_seq_init(&status, strata_registry);
	while ((tree = hash_seq_search(&status)) != NULL)
	{
		if (tree->dropped)
			continue;
		if (n == cap)
		{
			cap *= 2;
			*trees = repalloc(*trees, sizeof(StrataTree *) * cap);
		}
		(*trees)[n++] = tree;
	}
	LWLockRelease(strata_shared->registry_lock);
	return n;
}

/* Remove every directory of this relfilenode (a stale tree, BRIEF §5.12). */
static void
remove_tree_dirs(const RelFileNodeBackend *key)
{
	char		dbdir[MAXPGPATH];
	char		prefix[64];
	DIR		   *dir;
	struct dirent *de;

	snprintf(dbdir, sizeof(dbdir), "%s/%u", STRATAGO_DIR, key->node.dbNode);
	tree_name_prefix(key, prefix, sizeof(prefix));
	dir = AllocateDir(dbdir);
	if (dir == NULL)
		return;
	while ((de = ReadDirExtended(dir, dbdir, LOG)) != NULL)
	{
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
		{
			char		path[MAXPGPATH];

			snprintf(path, sizeof(path), "%s/%s", dbdir, de->d_name);
			if (!rmtree(path, true))
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not remove stale strata storage \"%s\"", path)));
		}
	}
	FreeDir(dir);
	fsync_fname(dbdir, true);
}

/*
 * Storage for a new relfilenode: any tree left under the same relfilenode
 * is stale (PostgreSQL just checked the number is free) and is removed
 * first; then a fresh tree id, a durable directory and a registry entry.
 * With stratago.wal_sink = postgres the creation of a permanent or
 * unlogged tree is WAL-logged, so that standbys and redo create the same
 * tree (an unlogged one stays empty there: its rows are never logged).
 */
StrataTree *
strata_tree_create(const RelFileNode *rnode, BackendId backend, char persistence)
{
	StrataTree *tree;
	uint64		tree_id;

	do
		tree_id = pg_prng_uint64(&pg_global_prng_state);
	while (tree_id == 0);

	tree = strata_tree_create_with_id(rnode, backend, persistence, tree_id);
	if (strata_wal_sink == STRATA_SINK_POSTGRES && persistence != RELPERSISTENCE_TEMP)
		strata_pgwal_log_create(rnode, tree_id);
	return tree;
}

/*
 * The persistence of a permanent or unlogged relfilenode as its smgr files
 * tell: unlogged relations have an init fork (created, WAL-logged and
 * synced before their tree). For recovery and redo, which have no catalog.
 */
char
strata_persistence_on_disk(const RelFileNode *rnode)
{
	char	   *path = relpathperm(*rnode, INIT_FORKNUM);
	struct stat st;
	bool		unlogged = stat(path, &st) == 0;

	pfree(path);
	return unlogged ? RELPERSISTENCE_UNLOGGED : RELPERSISTENCE_PERMANENT;
}

/*
 * Whether the smgr files of tree's relfilenode exist. An unlogged
 * relation may have only its init fork: a base backup leaves its main fork
 * out, and PostgreSQL makes it anew from the init fork at the end of
 * recovery. A dropped relation loses every fork.
 */
bool
strata_tree_storage_exists(const StrataTree *tree)
{
	struct stat st;
	char	   *path = relpath(tree->key, MAIN_FORKNUM);
	bool		exists = stat(path, &st) == 0 || errno != ENOENT;

	pfree(path);
	if (!exists && tree->persistence == RELPERSISTENCE_UNLOGGED)
	{
		path = relpath(tree->key, INIT_FORKNUM);
		exists = stat(path, &st) == 0 || errno != ENOENT;
		pfree(path);
	}
	return exists;
}

/* strata_tree_create with a given id (also the redo of a creation). */
StrataTree *
strata_tree_create_with_id(const RelFileNode *rnode, BackendId backend,
						   char persistence, uint64 tree_id)
{
	StrataTree *tree;
	bool		found;
	char		dbdir[MAXPGPATH];
	char		path[MAXPGPATH];
	RelFileNodeBackend key;
	bool		reclaimed = false;

	key.node = *rnode;
	key.backend = backend;
	remove_tree_dirs(&key);

	snprintf(dbdir, sizeof(dbdir), "%s/%u", STRATAGO_DIR, rnode->dbNode);
	if (MakePGDirectory(dbdir) < 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", dbdir)));

	/*
	 * The directory exists before the registry names the tree: the
	 * maintenance worker opens every registered tree's directory (creating
	 * it if missing), so creating it afterwards could find it there.
	 */
	tree_dir_path_of(&key, tree_id, path, sizeof(path));
	if (MakePGDirectory(path) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", path)));
	fsync_fname(path, true);
	fsync_fname(dbdir, true);
	fsync_fname(STRATAGO_DIR, true);

	for (;;)
	{
		LWLockAcquire(strata_shared->registry_lock, LW_EXCLUSIVE);
		tree = hash_search(strata_registry, &key, HASH_ENTER_NULL, &found);
		/* a shared hash table grows past its size into spare shared memory */
		if (tree != NULL && !found &&
			hash_get_num_entries(strata_registry) > strata_max_tables)
		{
			hash_search(strata_registry, &key, HASH_REMOVE, NULL);
			tree = NULL;
		}
		if (tree != NULL)
			break;
		LWLockRelease(strata_shared->registry_lock);

		/*
		 * Dropped tables keep their entries until their smgr files are
		 * gone, which is at the checkpoint after the DROP: under heavy
		 * create/drop churn, make that happen now once before giving up.
		 */
		if (reclaimed || !IsUnderPostmaster || RecoveryInProgress())
		{
			(void) rmtree(path, true);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("too many strata tables"),
					 errdetail("stratago.max_tables is %d, counting dropped tables whose files the next checkpoint removes.",
							   strata_max_tables),
					 errhint("Increase stratago.max_tables.")));
		}
		strata_reclaim_dropped_trees();
		reclaimed = true;
	}
	if (found && strata_has_active(tree))
	{
		/* a stale entry: its memtables die with it */
		StrataMemtableRef active = tree->active;
		int			nimm = tree->nimm;
		StrataMemtableRef imm[STRATA_MAX_IMM];

		memcpy(imm, tree->imm, sizeof(imm));
		init_tree_entry(tree, tree_id, persistence);
		LWLockRelease(strata_shared->registry_lock);
		strata_memtable_unpin(active);
		for (int i = 0; i < nimm; i++)
			strata_memtable_unpin(imm[i]);
		LWLockAcquire(strata_shared->registry_lock, LW_EXCLUSIVE);
	}
	else
		init_tree_entry(tree, tree_id, persistence);
	LWLockRelease(strata_shared->registry_lock);
	return tree;
}

/*
 * Forget the tree of a relation that no longer exists: its memtables, its
 * registry entry and its directory. Only if the entry still holds tree_id
 * (a new tree under the same relfilenode is left alone).
 */
void
strata_tree_drop(const RelFileNodeBackend *key, uint64 tree_id)
{
	StrataTree *tree;
	StrataMemtableRef mts[STRATA_MAX_IMM + 1];
	int			n = 0;
	char		path[MAXPGPATH];

	LWLockAcquire(strata_shared->registry_lock, LW_EXCLUSIVE);
	tree = hash_search(strata_registry, key, HASH_FIND, NULL);
	if (tree == NULL || tree->tree_id != tree_id)
	{
		LWLockRelease(strata_shared->registry_lock);
		return;
	}
	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	if (strata_has_active(tree))
		mts[n++] = tree->active;
	for (int i = 0; i < tree->nimm; i++)
		mts[n++] = tree->imm[i];
	strata_tree_dir(tree, path, sizeof(path));
	tree->dropped = true;
	LWLockRelease(&tree->lock);
	hash_search(strata_registry, key, HASH_REMOVE, NULL);
	LWLockRelease(strata_shared->registry_lock);

	for (int i = 0; i < n; i++)
		strata_memtable_unpin(mts[i]);
	if (!rmtree(path, true))
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not remove strata storage \"%s\"", path)));
	ereport(DEBUG1, (errmsg_internal("stratago: removed tree \"%s\" of a dropped relation", path)));
}

static void append_entries(Relation rel, StrataTree *tree, const uint64 *rowids,
						   StringInfo *versions, int n);

/*
 * Does database dboid hold strata tables? A tree counts while its
 * relation's main fork exists (a dropped table's tree waits for the
 * maintenance worker's sweep, and does not count).
 */
bool
strata_database_has_tables(Oid dboid)
{
	StrataTree **trees;
	int			n = strata_registry_list(&trees);
	bool		found = false;

	for (int i = 0; i < n && !found; i++)
	{
		if (trees[i]->key.node.dbNode != dboid || trees[i]->dropped)
			continue;
		found = strata_tree_storage_exists(trees[i]);
	}
	pfree(trees);
	return found;
}

/*
 * Copy every engine version of src into dst, verbatim (writers, command
 * ids and flags), except rows skip() says to leave out: table rewrites
 * (SET TABLESPACE, VACUUM FULL, CLUSTER) keep MVCC exactly as it was, as
 * heap's page copies do. Row ids (and so TIDs, also those MOVED versions
 * point to) stay, or go through remap (CLUSTER's new order) when given.
 * A row's versions are appended oldest first so that they keep their
 * order. *oldest gets the oldest writer of an unfrozen version copied
 * (invalid: none). REQUIRES: nobody writes src (the caller holds
 * AccessExclusiveLock).
 */
void
strata_tree_copy(Relation src_rel, StrataTree *src, Relation dst_rel, StrataTree *dst,
				 bool (*skip) (void *arg, uint64 rowid, const StrataVersion *versions, int n),
				 uint64 (*remap) (void *arg, uint64 rowid),
				 void *arg, FullTransactionId *oldest)
{
	StrataTreeScan *scan = strata_tree_scan_begin(src_rel, src, true);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "strata copy",
											  ALLOCSET_DEFAULT_SIZES);
	const int	batch = 1000;
	uint64	   *rowids = palloc(sizeof(uint64) * batch);
	StringInfo *values = palloc(sizeof(StringInfo) * batch);
	int			nbatch = 0;
	uint64		min = 0;
	uint64		rowid;
	StrataVersion *versions;
	int			n;

	for (int i = 0; i < batch; i++)
		values[i] = NULL;
	while (strata_tree_scan_next(scan, &rowid, &versions, &n))
	{
		CHECK_FOR_INTERRUPTS();
		if (skip != NULL && skip(arg, rowid, versions, n))
			continue;
		for (int i = n - 1; i >= 0; i--)
		{
			const StrataVersion *v = &versions[i];
			MemoryContext old = MemoryContextSwitchTo(cxt);
			StringInfo	buf = makeStringInfo();
			MinimalTuple tup = NULL;
			ItemPointerData moved_to = v->moved_to;
			uint64		target;

			if (v->kind == STRATA_DATA)
			{
				/* the tuple in the version is not aligned: copy it out */
				tup = palloc(v->tuple_len);
				memcpy(tup, v->tuple, v->tuple_len);
			}
			if (v->kind == STRATA_MOVED && remap != NULL &&
				strata_tid_to_rowid(&moved_to, &target))
				strata_rowid_to_tid(remap(arg, target), &moved_to);
			strata_version_encode(buf, v->kind, v->writer, v->cid, v->flags, tup,
								  &moved_to, v->lock_mode);
			MemoryContextSwitchTo(old);
			if (!(v->flags & STRATA_VF_FROZEN) &&
				(min == 0 || U64FromFullTransactionId(v->writer) < min))
				min = U64FromFullTransactionId(v->writer);
			rowids[nbatch] = remap != NULL ? remap(arg, rowid) : rowid;
			values[nbatch++] = buf;
			if (nbatch == batch)
			{
				append_entries(dst_rel, dst, rowids, values, nbatch);
				nbatch = 0;
				MemoryContextReset(cxt);
			}
		}
	}
	if (nbatch > 0)
		append_entries(dst_rel, dst, rowids, values, nbatch);
	strata_tree_scan_end(scan);
	MemoryContextDelete(cxt);
	pfree(rowids);
	pfree(values);

	/* row ids handed out in src are never handed out again in dst */
	LWLockAcquire(&dst->lock, LW_EXCLUSIVE);
	if (src->next_rowid > dst->next_rowid)
		dst->next_rowid = src->next_rowid;
	LWLockRelease(&dst->lock);
	*oldest = FullTransactionIdFromU64(min);
}

/* The tree of rel's current relfilenode; ERROR if its storage is missing. */
StrataTree *
strata_tree_get(Relation rel)
{
	StrataTree *tree;
	RelFileNodeBackend key;

	/* heap's buffer manager refuses the same (ReadBufferExtended) */
	if (RELATION_IS_OTHER_TEMP(rel))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot access temporary tables of other sessions")));

	key.node = rel->rd_node;
	key.backend = rel->rd_backend;
	LWLockAcquire(strata_shared->registry_lock, LW_SHARED);
	tree = hash_search(strata_registry, &key, HASH_FIND, NULL);
	LWLockRelease(strata_shared->registry_lock);
	if (tree == NULL || tree->dropped)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("strata storage of relation \"%s\" is missing",
						RelationGetRelationName(rel)),
				 errdetail("No tree is registered for relfilenode %u/%u/%u.",
						   rel->rd_node.spcNode, rel->rd_node.dbNode, rel->rd_node.relNode)));
	if (tree->damaged)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("strata table \"%s\" is damaged", RelationGetRelationName(rel)),
				 errdetail("%s", tree->damage),
				 errhint("Restore the table's files from a backup and restart the server, or drop the table.")));
	if (tree->lost_rows)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("unlogged table \"%s\" lost rows when the server last stopped",
						RelationGetRelationName(rel)),
				 errdetail("The server stopped cleanly, but rows of this unlogged strata table had not been written out."),
				 errhint("TRUNCATE the table to use it again.")));
	return tree;
}

LWLock *
strata_row_latch(StrataTree *tree, uint64 rowid)
{
	uint64		h = (tree->tree_id ^ (rowid * UINT64CONST(0x9E3779B97F4A7C15)));

	return &((LWLockPadded *) strata_shared->row_latches)[(h >> 20) % STRATA_ROW_LATCHES].lock;
}

uint64
strata_tree_alloc_rowid(StrataTree *tree)
{
	uint64		rowid;

	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	rowid = tree->next_rowid++;
	LWLockRelease(&tree->lock);
	if (rowid > STRATA_MAX_ROWID)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("strata table has run out of row ids")));
	return rowid;
}

/* ------------------------------------------------------------------------
 * Write path
 * ------------------------------------------------------------------------
 */

/*
 * Whether a memtable reached stratago.memtable_size. Counted in bytes
 * handed out, not in arena chunks reserved: a fresh memtable already holds
 * a whole 64 kB chunk, so with memtable_size = 64kB counting chunks made
 * every write freeze its memtable and flush a one-row SSTable.
 */
static bool
memtable_full(sg_memtable *mt)
{
	return sg_arena_used(&mt->arena) >= (uint64) strata_memtable_size_kb * 1024;
}

/*
 * Make room in the active memtable. REQUIRES: tree lock held exclusively.
 * Returns false when the caller must wait for a flush (lock released).
 */
static bool
ensure_active_memtable(StrataTree *tree)
{
	sg_memtable mt;

	if (!strata_has_active(tree))
	{
		tree->active = memtable_new();
		tree->active_min_lsn = 0;
		tree->active_pg_first = tree->active_pg_last = 0;
		tree->active_entries = 0;
		return true;
	}
	strata_memtable_attach(tree->active, &mt);
	if (!memtable_full(&mt))
		return true;
	return strata_freeze_active(tree);
}

/*
 * Move the active memtable to the frozen list and wake the worker to
 * flush it. REQUIRES: tree lock held exclusively. False if the frozen list
 * is full (the caller waits for a flush).
 */
bool
strata_freeze_active(StrataTree *tree)
{
	sg_memtable mt;

	strata_memtable_attach(tree->active, &mt);
	if (tree->nimm == STRATA_MAX_IMM)
		return false;
	sg_memtable_freeze(&mt);
	tree->imm[tree->nimm] = tree->active;
	tree->imm_entries[tree->nimm] = tree->active_entries;
	tree->imm_min_lsn[tree->nimm] = tree->active_min_lsn;
	tree->imm_pg_first[tree->nimm] = tree->active_pg_first;
	tree->imm_pg_last[tree->nimm] = tree->active_pg_last;
	tree->nimm++;
	tree->active = memtable_new();
	tree->active_min_lsn = 0;
	tree->active_pg_first = tree->active_pg_last = 0;
	tree->active_entries = 0;
	if (strata_shared->maintenance_pid != 0)
		kill(strata_shared->maintenance_pid, SIGUSR1);
	return true;
}

/*
 * Before the first version of an unlogged tree enters a memtable: a
 * durable marker saying that the tree holds rows no file does. The worker
 * removes it at a clean shutdown once everything is flushed
 * (strata_flush_unlogged_at_shutdown); found at the next start, it means
 * rows were lost (register_tree_dirs). Once per tree per server run.
 * REQUIRES: tree lock held exclusively, so a shutdown flush that finds the
 * memtables empty and removes the marker cannot miss a write.
 */
static void
mark_unflushed(StrataTree *tree)
{
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];
	int			fd;

	strata_tree_dir(tree, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, STRATA_UNFLUSHED_MARKER);
	fd = OpenTransientFile(path, O_CREAT | O_WRONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", path)));
	CloseTransientFile(fd);
	fsync_fname(dir, true);
	tree->unflushed_marked = true;
}

/*
 * Append versions of n rows (rowids[i] gets versions[i]) as one WAL record
 * and into the memtable, both under the tree lock so that WAL order and
 * sequence order agree. COPY uses this to write a whole buffer at once.
 * Unlogged and temporary trees write no WAL: only the memtable.
 */
static void
append_entries(Relation rel, StrataTree *tree, const uint64 *rowids,
			   StringInfo *versions, int n)
{
	char	   *keys = palloc(STRATA_ROWID_KEY_LEN * n);
	sg_batch	batch;
	sg_memtable mt;
	sg_err		err = {0};
	sg_code		rc = SG_OK;
	uint64		seq;
	uint64		end_lsn;
	int			added;
	TimestampTz wait_start;

	/* engine tombstones (versions == NULL) carry no xid */
	if (versions != NULL)
		strata_reserve_xid(GetCurrentFullTransactionId());

	sg_batch_init(&batch);
	for (int i = 0; i < n; i++)
	{
		sg_slice	key = sg_slice_make(keys + i * STRATA_ROWID_KEY_LEN, STRATA_ROWID_KEY_LEN);

		sg_encode_be64(keys + i * STRATA_ROWID_KEY_LEN, rowids[i]);
		if ((versions != NULL
			 ? sg_batch_put(&batch, key, sg_slice_make(versions[i]->data, versions[i]->len))
			 : sg_batch_delete(&batch, key)) != SG_OK)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}

	wait_start = 0;
	for (;;)
	{
		/*
		 * Writers slow down rather than fail: with the shared arena nearly
		 * full, too many frozen memtables or too many level-0 SSTables,
		 * wait for the worker to flush and compact. But not for ever when
		 * flushes keep failing (a full disk): then the failure is raised.
		 */
		if ((strata_shared->arena_free >= STRATA_ARENA_RESERVE_CHUNKS &&
			 tree->l0_files < STRATA_L0_STOP_FILES) ||
			strata_shared->maintenance_pid == 0)
		{
			LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
			if (ensure_active_memtable(tree))
				break;
			LWLockRelease(&tree->lock);
		}
		if (wait_start == 0)
			wait_start = GetCurrentTimestamp();
		else
		{
			ConditionVariableCancelSleep();
			strata_check_flush_failing(wait_start);
		}
		if (strata_shared->maintenance_pid != 0)
			kill(strata_shared->maintenance_pid, SIGUSR1);
		ConditionVariableTimedSleep(&strata_shared->flush_cv, 1000, PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}
	ConditionVariableCancelSleep();

	if (tree->persistence == RELPERSISTENCE_UNLOGGED && !tree->unflushed_marked)
		mark_unflushed(tree);

	seq = tree->next_seq;
	tree->next_seq += n;
	sg_batch_set_sequence(&batch, seq);
	end_lsn = 0;
	if (!strata_tree_logged(tree))
		;						/* rows that die with a crash */
	else if (strata_wal_sink == STRATA_SINK_POSTGRES)
	{
		XLogRecPtr	start;

		/* PostgreSQL's commit flush makes it durable: nothing to wait for */
		end_lsn = strata_pgwal_log_rows(tree, sg_batch_contents(&batch), &start);
		if (tree->active_pg_first == 0)
			tree->active_pg_first = start;
		tree->active_pg_last = end_lsn;
	}
	else
	{
		end_lsn = strata_wal_append_rows(tree, sg_batch_contents(&batch));
		if (tree->active_min_lsn == 0)
			tree->active_min_lsn = end_lsn;
	}

	strata_memtable_attach(tree->active, &mt);
	for (added = 0; added < n; added++)
	{
		int			i = added;

		rc = sg_memtable_add(&mt, seq + i, versions != NULL ? SG_TYPE_PUT : SG_TYPE_DELETE,
							 sg_slice_make(keys + i * STRATA_ROWID_KEY_LEN, STRATA_ROWID_KEY_LEN),
							 versions != NULL ? sg_slice_make(versions[i]->data, versions[i]->len)
							 : sg_slice_make("", 0), &err);
		if (rc != SG_OK)
			break;
	}
	/* what the memtable holds, which its flush must write (flush.c) */
	tree->rows_written += added;
	tree->active_entries += added;
	LWLockRelease(&tree->lock);
	sg_batch_free(&batch);
	pfree(keys);

	/*
	 * If the memtable refused a version, the WAL still holds it; the
	 * transaction aborts on this error, so replay will bring back only
	 * versions no snapshot can see.
	 */
	if (rc != SG_OK)
		strata_engine_error(rc, &err);
	if (end_lsn != 0 && strata_wal_sink == STRATA_SINK_ENGINE)
		strata_wal_note_write(end_lsn);
}

void
strata_tree_append_many(Relation rel, StrataTree *tree, const uint64 *rowids,
						StringInfo *versions, int n)
{
	append_entries(rel, tree, rowids, versions, n);
}

void
strata_tree_append(Relation rel, StrataTree *tree, uint64 rowid, StringInfo version)
{
	append_entries(rel, tree, &rowid, &version, 1);
}

/*
 * VACUUM reaps rows gone for every snapshot once their index entries are
 * removed: an engine tombstone hides every version of each (readers then
 * find no row id at all), and compaction drops them for good. The row ids
 * stay used (the files' high-water mark), so they are never handed out
 * again. Losing these tombstones in a crash costs nothing but a repeat.
 */
void
strata_tree_reap_rows(Relation rel, StrataTree *tree, const uint64 *rowids, int n)
{
	const int	batch = 1024;	/* bounded WAL records and memory */

	for (int i = 0; i < n; i += batch)
	{
		CHECK_FOR_INTERRUPTS();
		append_entries(rel, tree, rowids + i, NULL, Min(batch, n - i));
	}
}


/* ------------------------------------------------------------------------
 * Read paths
 * ------------------------------------------------------------------------
 */

/* Memtables of a tree pinned for reading, newest first, each with its hold. */
typedef struct PinnedSet
{
	int			n;
	StrataMemtableRef mts[STRATA_MAX_IMM + 1];
	StrataHoldId holds[STRATA_MAX_IMM + 1];
} PinnedSet;

/*
 * A memtable pin is a hold (hold.h): an error that skips unpin_memtables
 * still gives it back when the statement's resource owner goes.
 */
static void
release_memtable_pin(uintptr_t off, uintptr_t generation)
{
	StrataMemtableRef ref = {(sg_off) off, (uint64) generation};

	strata_memtable_unpin(ref);
}

static void
pin_memtables(StrataTree *tree, PinnedSet *ps)
{
	sg_memtable mt;

	/* room to remember the pins first: no error between ref and record */
	strata_hold_reserve(STRATA_MAX_IMM + 1);

	ps->n = 0;
	LWLockAcquire(&tree->lock, LW_SHARED);
	if (strata_has_active(tree))
		ps->mts[ps->n++] = tree->active;
	for (int i = tree->nimm - 1; i >= 0; i--)
		ps->mts[ps->n++] = tree->imm[i];
	for (int i = 0; i < ps->n; i++)
	{
		strata_memtable_attach(ps->mts[i], &mt);
		sg_memtable_ref(&mt);
		ps->holds[i] = strata_hold(release_memtable_pin, (uintptr_t) ps->mts[i].off,
								   (uintptr_t) ps->mts[i].generation);
	}
	LWLockRelease(&tree->lock);
}

static void
unpin_memtables(PinnedSet *ps)
{
	/* ps->n first: should an unhold fail, nothing is given back twice */
	int			n = ps->n;

	ps->n = 0;
	for (int i = 0; i < n; i++)
	{
		strata_unhold(ps->holds[i]);
		strata_memtable_unpin(ps->mts[i]);
	}
}

/*
 * The oldest writer of an unfrozen version anywhere in the tree: in its
 * memtables (read entry by entry; VACUUM has just flushed them, so they
 * hold only what came since) and its SSTables (from each file's
 * statistics). Memtables are pinned before the files are listed, as
 * readers do, so a flush in between is seen twice, never missed.
 * Returns false when some file does not know (no statistics); else
 * *oldest is the oldest writer, or invalid when every version is frozen.
 * *stubs gets the number of dead stubs the files hold.
 */
bool
strata_tree_oldest_unfrozen(Relation rel, StrataTree *tree, FullTransactionId *oldest,
							uint64 *stubs)
{
	PinnedSet	ps;
	StrataLocalVersion *lv;
	StrataHoldId lv_hold;
	volatile uint64 min = 0;
	volatile bool known = true;

	*stubs = 0;
	pin_memtables(tree, &ps);
	PG_TRY();
	{
		for (int i = 0; i < ps.n; i++)
		{
			sg_memtable mt;
			sg_iter    *it;

			strata_memtable_attach(ps.mts[i], &mt);
			it = sg_memtable_iter(&mt);
			for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it))
			{
				sg_parsed_ikey k;
				StrataVersion v;
				sg_slice	value = sg_iter_value(it);

				if (!sg_ikey_parse(sg_iter_key(it), &k) || k.type != SG_TYPE_PUT)
					continue;
				if (!strata_version_decode(value.data, value.len, &v))
				{
					known = false;
					continue;
				}
				if (!(v.flags & STRATA_VF_FROZEN) &&
					(min == 0 || U64FromFullTransactionId(v.writer) < min))
					min = U64FromFullTransactionId(v.writer);
			}
			sg_iter_destroy(it);
		}
		lv = strata_local_version_get(tree, &lv_hold);
		for (int i = 0; i < strata_local_version_nfiles(lv); i++)
		{
			int			level;
			uint64		number;
			sg_table_reader *reader;
			StrataFileStats fs;

			strata_local_version_file(lv, i, &level, &number, &reader);
			if (!strata_file_stats_parse(sg_table_reader_props(reader)->user_stats, &fs) ||
				fs.oldest_unfrozen == 1)
			{
				known = false;
				continue;
			}
			*stubs += fs.dead_stubs;
			if (fs.oldest_unfrozen != 0 && (min == 0 || fs.oldest_unfrozen < min))
				min = fs.oldest_unfrozen;
		}
		strata_local_version_release(lv, lv_hold);
	}
	PG_FINALLY();
	{
		unpin_memtables(&ps);
	}
	PG_END_TRY();
	*oldest = FullTransactionIdFromU64(min);
	return known;
}

typedef struct VersionCollector
{
	StrataVersion *versions;
	int			n;
	int			cap;
	MemoryContext mcxt;
	bool		corrupt;
	bool		tombstone;		/* an engine tombstone: nothing older counts */
	uint64		last_seq;		/* of the version seen last (duplicates) */
	bool		kill_pending;	/* a super-delete hides the next insert of kill_writer */
	FullTransactionId kill_writer;
	bool		complete;		/* nothing older can matter to this backend */
} VersionCollector;

#define VERSION_COLLECTOR_INIT(cxt) {NULL, 0, 0, (cxt), false, false, UINT64_MAX, false, {0}, false}

/*
 * Once a row's versions reach one whose writer committed before every
 * snapshot this backend holds (TransactionXmin), each of those snapshots
 * sees that version or a newer one: older versions cannot matter, and a
 * hot row's long chain (until compaction retires it) is not read at all.
 */
static bool
version_ends_chain(const StrataVersion *v)
{
	TransactionId xid;

	if (v->kind == STRATA_LOCK)
		return false;
	if (v->flags & STRATA_VF_FROZEN)
		return true;
	xid = XidFromFullTransactionId(v->writer);
	if (!TransactionIdIsValid(TransactionXmin) || !TransactionIdIsNormal(xid) ||
		!TransactionIdPrecedes(xid, TransactionXmin))
		return false;
	return (v->flags & STRATA_VF_COMMITTED) || TransactionIdDidCommit(xid);
}

/*
 * Add one version (newest first) to the collection. A version seen twice
 * (a flush racing with the read) is taken once; an insert undone by its own
 * speculative-insertion failure (a TOMBSTONE flagged KILLS_INSERT just above
 * it) is left out together with that tombstone, so no reader ever sees it.
 */
static void
collect_version(VersionCollector *vc, uint64 seq, sg_slice value)
{
	char	   *copy;
	StrataVersion *v;

	if (seq == vc->last_seq)
		return;
	vc->last_seq = seq;
	if (vc->n == vc->cap)
	{
		vc->cap = vc->cap ? vc->cap * 2 : 8;
		vc->versions = vc->versions
			? repalloc(vc->versions, sizeof(StrataVersion) * vc->cap)
			: MemoryContextAlloc(vc->mcxt, sizeof(StrataVersion) * vc->cap);
	}
	copy = MemoryContextAlloc(vc->mcxt, Max(value.len, 1));
	memcpy(copy, value.data, value.len);
	v = &vc->versions[vc->n];
	if (!strata_version_decode(copy, value.len, v))
	{
		vc->corrupt = true;
		return;
	}
	v->seq = seq;
	if (v->kind == STRATA_TOMBSTONE && (v->flags & STRATA_VF_KILLS_INSERT))
	{
		vc->kill_pending = true;
		vc->kill_writer = v->writer;
		return;
	}
	if (vc->kill_pending && v->kind == STRATA_DATA &&
		FullTransactionIdEquals(v->writer, vc->kill_writer))
	{
		vc->kill_pending = false;
		return;
	}
	vc->n++;
	if (version_ends_chain(v))
		vc->complete = true;
}

static bool
collect_memtable_version(void *ctx, uint64_t seq, sg_value_type type, sg_slice value)
{
	VersionCollector *vc = ctx;

	if (type == SG_TYPE_DELETE)
	{
		vc->tombstone = true;	/* the row was removed: nothing older counts */
		return false;
	}
	collect_version(vc, seq, value);
	return !vc->corrupt && !vc->complete;
}

static bool
collect_sst_version(void *ctx, uint64_t seq, sg_value_type type, sg_slice value)
{
	return collect_memtable_version(ctx, seq, type, value);
}

static void
report_corrupt_version(Relation rel, uint64 rowid)
{
	ItemPointerData tid;

	strata_rowid_to_tid(rowid, &tid);
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("malformed row version in strata table \"%s\" at TID (%u,%u)",
					RelationGetRelationName(rel),
					ItemPointerGetBlockNumber(&tid), ItemPointerGetOffsetNumber(&tid))));
}

/*
 * All versions of one row, newest first, palloc'd in mcxt. Returns the
 * count (0: the row id was never used, or is gone).
 */
int
strata_tree_versions(Relation rel, StrataTree *tree, uint64 rowid,
					 StrataVersion **versions, MemoryContext mcxt)
{
	PinnedSet	ps;
	VersionCollector vc = VERSION_COLLECTOR_INIT(mcxt);
	char		key[STRATA_ROWID_KEY_LEN];
	sg_memtable mt;

	sg_encode_be64(key, rowid);
	pin_memtables(tree, &ps);
	for (int i = 0; i < ps.n && !vc.corrupt && !vc.tombstone && !vc.complete; i++)
	{
		strata_memtable_attach(ps.mts[i], &mt);
		sg_memtable_versions(&mt, sg_slice_make(key, sizeof(key)), SG_MAX_SEQUENCE,
							 collect_memtable_version, &vc);
	}
	/* then the SSTables, pinned after the memtables so nothing falls between */
	if (!vc.corrupt && !vc.tombstone && !vc.complete)
	{
		StrataHoldId lv_hold;
		StrataLocalVersion *lv = strata_local_version_get(tree, &lv_hold);

		strata_local_version_versions(lv, sg_slice_make(key, sizeof(key)),
									  collect_sst_version, &vc);
		strata_local_version_release(lv, lv_hold);
	}
	unpin_memtables(&ps);
	if (vc.corrupt)
		report_corrupt_version(rel, rowid);
	*versions = vc.versions;
	return vc.n;
}

/* ------------------------------------------------------------------------
 * Forward scans
 * ------------------------------------------------------------------------
 */
struct StrataTreeScan
{
	Relation	rel;
	StrataTree *tree;
	PinnedSet	pinned;
	StrataLocalVersion *lv;
	StrataHoldId lv_hold;
	bool		full_chains;	/* every version, even those no snapshot here needs */
	sg_iter    *it;				/* versions view over the merged sources */
	MemoryContext rowcxt;		/* versions of the current row */
	bool		started;
};

StrataTreeScan *
strata_tree_scan_begin(Relation rel, StrataTree *tree, bool full_chains)
{
	StrataTreeScan *scan = palloc0(sizeof(StrataTreeScan));
	sg_iter   **children;
	sg_memtable mt;
	int			nchildren;

	scan->rel = rel;
	scan->tree = tree;
	scan->full_chains = full_chains;
	scan->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "strata scan row",
										 ALLOCSET_DEFAULT_SIZES);
	pin_memtables(tree, &scan->pinned);
	scan->lv = strata_local_version_get(tree, &scan->lv_hold);

	children = malloc(sizeof(sg_iter *) * (scan->pinned.n + strata_local_version_nfiles(scan->lv) + 1));
	if (children == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	for (int i = 0; i < scan->pinned.n; i++)
	{
		strata_memtable_attach(scan->pinned.mts[i], &mt);
		children[i] = sg_memtable_iter(&mt);
	}
	nchildren = scan->pinned.n +
		strata_local_version_iters(scan->lv, children + scan->pinned.n);
	scan->it = sg_versions_iter_new(sg_merge_iter_new(children, nchildren),
									SG_MAX_SEQUENCE);
	free(children);
	return scan;
}

void
strata_tree_scan_seek(StrataTreeScan *scan, uint64 rowid)
{
	char		key[STRATA_ROWID_KEY_LEN];

	sg_encode_be64(key, rowid);
	sg_iter_seek(scan->it, sg_slice_make(key, sizeof(key)));
	scan->started = true;
}

bool
strata_tree_scan_next(StrataTreeScan *scan, uint64 *rowid,
					  StrataVersion **versions, int *nversions)
{
	sg_err		err = {0};

	if (!scan->started)
	{
		sg_iter_seek_to_first(scan->it);
		scan->started = true;
	}
	MemoryContextReset(scan->rowcxt);

	while (sg_iter_valid(scan->it))
	{
		sg_parsed_ikey k;
		VersionCollector vc = VERSION_COLLECTOR_INIT(scan->rowcxt);

		if (!sg_ikey_parse(sg_iter_key(scan->it), &k) || k.user_key.len != STRATA_ROWID_KEY_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("malformed key in strata table \"%s\"",
							RelationGetRelationName(scan->rel))));
		*rowid = sg_decode_be64(k.user_key.data);

		/* every version of this row id, newest first */
		for (;;)
		{
			if (k.type == SG_TYPE_PUT)
				collect_version(&vc, k.seq, sg_iter_value(scan->it));
			if (vc.corrupt)
				report_corrupt_version(scan->rel, *rowid);
			if (vc.complete && !scan->full_chains)
			{
				sg_versions_iter_next_key(scan->it);
				break;
			}
			sg_iter_next(scan->it);
			if (!sg_iter_valid(scan->it) || !sg_ikey_parse(sg_iter_key(scan->it), &k) ||
				k.user_key.len != STRATA_ROWID_KEY_LEN ||
				sg_decode_be64(k.user_key.data) != *rowid)
				break;
		}
		if (vc.n == 0)
			continue;			/* only a tombstone: the row is gone */
		*versions = vc.versions;
		*nversions = vc.n;
		return true;
	}
	if (sg_iter_status(scan->it, &err) != SG_OK)
		strata_engine_error(err.code, &err);
	return false;
}

void
strata_tree_scan_end(StrataTreeScan *scan)
{
	sg_iter_destroy(scan->it);
	strata_local_version_release(scan->lv, scan->lv_hold);
	unpin_memtables(&scan->pinned);
	MemoryContextDelete(scan->rowcxt);
	pfree(scan);
}

/* ------------------------------------------------------------------------
 * Recovery (postmaster, before any backend exists)
 * ------------------------------------------------------------------------
 */

/*
 * Whether unlogged tables keep their rows over this start. The rule is
 * PostgreSQL's for unlogged relations (StartupXLOG resets them whenever it
 * enters recovery): only a cluster shut down cleanly and not being
 * restored from a backup or started as a standby keeps them. Since the
 * rule is the same, an unlogged strata table and its indexes are always
 * reset together.
 */
static bool
unlogged_rows_survive(void)
{
	ControlFileData *cf;
	bool		crc_ok;
	bool		clean;
	struct stat st;

	cf = get_controlfile(DataDir, &crc_ok);
	if (!crc_ok)
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("calculated CRC checksum does not match value stored in control file")));
	clean = (cf->state == DB_SHUTDOWNED || cf->state == DB_SHUTDOWNED_IN_RECOVERY) &&
		stat(BACKUP_LABEL_FILE, &st) != 0 &&
		stat(RECOVERY_SIGNAL_FILE, &st) != 0 &&
		stat(STANDBY_SIGNAL_FILE, &st) != 0;
	pfree(cf);
	return clean;
}

/* Remove a tree directory at startup (and, to reset it, make it anew). */
static void
reset_tree_dir(const char *path, bool recreate)
{
	if (!rmtree(path, true))
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not remove strata storage \"%s\"", path)));
	if (recreate && MakePGDirectory(path) < 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", path)));
}

/*
 * Register every tree directory found under $PGDATA/stratago/<db>/.
 * Temporary tables' trees are removed: no session survives a restart (as
 * PostgreSQL removes temporary files at every start). Unlogged tables'
 * trees are emptied unless unlogged_rows_survive(); if they survive but
 * one still has its UNFLUSHED marker, rows written before the stop never
 * reached a file and the table is refused until truncated.
 */
static void
register_tree_dirs(void)
{
	DIR		   *top;
	struct dirent *dbde;
	bool		keep_unlogged = unlogged_rows_survive();

	top = AllocateDir(STRATAGO_DIR);
	while ((dbde = ReadDir(top, STRATAGO_DIR)) != NULL)
	{
		char		dbdir[MAXPGPATH];
		Oid			dbNode;
		char	   *end;
		DIR		   *dir;
		struct dirent *de;

		dbNode = (Oid) strtoul(dbde->d_name, &end, 10);
		if (*end != '\0' || end == dbde->d_name)
			continue;			/* "wal", ".", ".." */
		snprintf(dbdir, sizeof(dbdir), "%s/%s", STRATAGO_DIR, dbde->d_name);
		dir = AllocateDir(dbdir);
		while ((de = ReadDir(dir, dbdir)) != NULL)
		{
			RelFileNodeBackend key;
			unsigned long long id;
			StrataTree *tree;
			bool		found;
			char		path[MAXPGPATH];
			char		persistence;
			bool		lost_rows = false;
			struct stat st;

			snprintf(path, sizeof(path), "%s/%s", dbdir, de->d_name);
			if (de->d_name[0] == 't')
			{
				reset_tree_dir(path, false);
				continue;
			}
			if (sscanf(de->d_name, "%u_%u_%llx", &key.node.spcNode, &key.node.relNode, &id) != 3)
				continue;
			key.node.dbNode = dbNode;
			key.backend = InvalidBackendId;
			persistence = strata_persistence_on_disk(&key.node);
			if (persistence == RELPERSISTENCE_UNLOGGED)
			{
				char		marker[MAXPGPATH];

				snprintf(marker, sizeof(marker), "%s/%s", path, STRATA_UNFLUSHED_MARKER);
				if (!keep_unlogged)
					reset_tree_dir(path, true);
				else if (stat(marker, &st) == 0)
					lost_rows = true;
			}
			tree = hash_search(strata_registry, &key, HASH_ENTER_NULL, &found);
			if (tree == NULL)
				ereport(FATAL,
						(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						 errmsg("too many strata tables to recover"),
						 errhint("Increase stratago.max_tables.")));
			init_tree_entry(tree, (uint64) id, persistence);
			tree->lost_rows = tree->unflushed_marked = lost_rows;
			strata_recover_tree_manifest(tree);
			if (lost_rows)
				ereport(WARNING,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("stratago: unlogged relation %u/%u/%u lost rows that were not written out when the server stopped",
								key.node.spcNode, key.node.dbNode, key.node.relNode),
						 errhint("TRUNCATE the table to use it again.")));
		}
		FreeDir(dir);
		fsync_fname(dbdir, true);
	}
	FreeDir(top);
}

/*
 * Apply one logged batch to its tree's memtable: the one path for engine
 * WAL replay, the postmaster's replay of PostgreSQL's WAL, and the redo of
 * strata records (crash recovery and standbys). first_lsn and end_lsn
 * place the record in its log; a record the tree's SSTables already hold
 * is skipped. Returns whether it was applied.
 *
 * In the postmaster a full memtable is written out at once, so a long log
 * never needs more than the arena; elsewhere (the startup process) it is
 * frozen for the maintenance worker, as a writer's would be.
 */
bool
strata_apply_batch(StrataTree *tree, StrataLog log, uint64 first_lsn, uint64 end_lsn,
				   sg_slice batch)
{
	sg_batch_iter bi;
	sg_batch_entry e;
	sg_err		err = {0};
	sg_code		rc;
	sg_memtable mt;
	bool		full;

	if (sg_batch_iter_init(&bi, batch, "strata WAL record", &err) != SG_OK)
		ereport(FATAL, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("%s", err.msg)));

	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	if (tree->damaged)
	{
		/* kept in the log for when the tree's files are restored */
		if (log == STRATA_LOG_ENGINE && tree->keep_lsn == 0)
			tree->keep_lsn = end_lsn;
		else if (log == STRATA_LOG_POSTGRES && tree->keep_pglsn == InvalidXLogRecPtr)
			tree->keep_pglsn = first_lsn;
		LWLockRelease(&tree->lock);
		return false;
	}
	if (end_lsn <= (log == STRATA_LOG_ENGINE ? tree->flushed_lsn : tree->flushed_pglsn) ||
		(log == STRATA_LOG_POSTGRES && end_lsn <= tree->active_pg_last))
	{
		/* in SSTables already, or (PostgreSQL's WAL) in a memtable */
		LWLockRelease(&tree->lock);
		return false;
	}
	if (!strata_has_active(tree))
		tree->active = memtable_new();
	if (log == STRATA_LOG_ENGINE)
	{
		if (tree->active_min_lsn == 0)
			tree->active_min_lsn = end_lsn;
	}
	else
	{
		if (tree->active_pg_first == 0)
			tree->active_pg_first = first_lsn;
		tree->active_pg_last = end_lsn;
	}
	strata_memtable_attach(tree->active, &mt);

	while ((rc = sg_batch_iter_next(&bi, &e, "strata WAL record", &err)) == SG_OK)
	{
		uint64		rowid;

		if (e.key.len != STRATA_ROWID_KEY_LEN)
			ereport(FATAL,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("strata WAL record ending at %s LSN %llu holds a malformed row key",
							log == STRATA_LOG_ENGINE ? "engine" : "PostgreSQL",
							(unsigned long long) end_lsn)));
		rowid = sg_decode_be64(e.key.data);
		rc = sg_memtable_add(&mt, e.seq, e.type, e.key, e.value, &err);
		if (rc != SG_OK)
			ereport(FATAL,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not replay strata changes: %s", err.msg),
					 errhint("Consider increasing stratago.memtable_memory.")));
		if (e.seq >= tree->next_seq)
			tree->next_seq = e.seq + 1;
		if (rowid >= tree->next_rowid)
			tree->next_rowid = rowid + 1;
		tree->active_entries++;
	}
	if (rc != SG_NOT_FOUND)
		ereport(FATAL, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("%s", err.msg)));

	full = memtable_full(&mt);
	if (full && IsUnderPostmaster && tree->nimm < STRATA_MAX_IMM)
		(void) strata_freeze_active(tree);
	LWLockRelease(&tree->lock);

	if (full && !IsUnderPostmaster)
		strata_recovery_flush(tree, log == STRATA_LOG_ENGINE ? end_lsn : 0);
	return true;
}

/* The registered tree of a permanent or unlogged rnode, or NULL. */
StrataTree *
strata_tree_lookup(const RelFileNode *rnode)
{
	StrataTree *tree;
	RelFileNodeBackend key;

	key.node = *rnode;
	key.backend = InvalidBackendId;
	LWLockAcquire(strata_shared->registry_lock, LW_SHARED);
	tree = hash_search(strata_registry, &key, HASH_FIND, NULL);
	LWLockRelease(strata_shared->registry_lock);
	if (tree != NULL && tree->dropped)
		tree = NULL;
	return tree;
}

/*
 * Bring every tree back after a restart or crash: register the trees on
 * disk, then replay the engine WAL into their memtables.
 */
void
strata_runtime_recover(void)
{
	register_tree_dirs();
	strata_wal_recover();
	strata_pgwal_recover();
	strata_recovery_done();
}
