/*
 * tree.c — the shared state of strata tables (tree.h): shared memory and
 * its layout, the memtable arena's chunk allocator, memtables named by
 * offset and generation (create, attach, unpin, freeze), the registry of
 * trees keyed by RelFileNodeBackend, tree directories, row latches and the
 * tokens of speculative insertions. The bottom of the glue: it calls only
 * error.c, and the maintenance worker only through shared flags and
 * signals.
 */
#include "postgres.h"

#include <sys/stat.h>
#include "pg/error.h"
#include "pg/stratago.h"
#include "pg/tree.h"
#include "pg/wakeup.h"
#include "pgstat.h"
#include "postmaster/bgwriter.h"
#include "storage/fd.h"
#include "storage/proc.h"

StrataShared *strata_shared = NULL;

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
		strata_shared->row_latches = &(GetNamedLWLockTranche("stratago row"))->lock;
		strata_shared->arena_nchunks = arena_chunks();
		strata_shared->arena_free = arena_chunks();
		strata_shared->arena_offset = header_size();
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

/*
 * The first run of free chunks for min_len bytes. First fit on purpose:
 * reusing the lowest free chunks keeps writers on memory their process
 * has touched already (a next-fit search walked the whole arena and cost
 * each backend a page fault per fresh page, 40% of a bulk INSERT's time).
 * memchr skips used chunks, so a full front costs little to cross.
 */
static sg_code
arena_chunk_alloc(void *ctx, size_t min_len, sg_off *off, size_t *len)
{
	int			need = (int) ((min_len + STRATA_CHUNK_SIZE - 1) / STRATA_CHUNK_SIZE);
	int			n = strata_shared->arena_nchunks;
	const uint8 *used = strata_shared->chunk_used;
	int			i = 0;

	LWLockAcquire(strata_shared->arena_lock, LW_EXCLUSIVE);
	while (i < n)
	{
		const uint8 *free_chunk = memchr(used + i, 0, n - i);
		int			end;

		if (free_chunk == NULL)
			break;
		i = (int) (free_chunk - used);
		for (end = i; end < n && end - i < need && used[end] == 0; end++)
			;
		if (end - i == need)
		{
			for (int j = i; j < end; j++)
				strata_shared->chunk_used[j] = 1;
			strata_shared->arena_free -= need;
			LWLockRelease(strata_shared->arena_lock);
			*off = strata_shared->arena_offset + (sg_off) i * STRATA_CHUNK_SIZE;
			*len = (size_t) need * STRATA_CHUNK_SIZE;
			return SG_OK;
		}
		i = end + 1;			/* used[end] is taken (or end == n) */
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
StrataMemtableRef
strata_memtable_new(void)
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

	/*
	 * Most point lookups (index fetches, UPDATE's reads) are for rows the
	 * memtable does not hold; its key filter answers them without a
	 * skiplist search. Sized for the memtable's flush size, or for all
	 * of the shared memtable memory if that is smaller: no memtable grows
	 * beyond it.
	 */
	sg_memtable_plan_filter(&mt, Min((uint64) strata_memtable_size_kb * 1024,
									 (uint64) strata_memtable_memory_mb * 1024 * 1024));
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

/*
 * Give an entry a new tree: everything but its key and its locks, which
 * another process may be holding or waiting for (tree.h).
 */
static void
reset_tree_entry(StrataTree *tree, uint64 tree_id, char persistence)
{
	StaticAssertStmt(offsetof(StrataTree, manifest_lock) < offsetof(StrataTree, tree_id) &&
					 offsetof(StrataTree, lock) < offsetof(StrataTree, tree_id),
					 "a tree's locks must precede what reset_tree_entry clears");
	memset((char *) tree + offsetof(StrataTree, tree_id), 0,
		   sizeof(StrataTree) - offsetof(StrataTree, tree_id));
	tree->tree_id = tree_id;
	tree->persistence = persistence;
}

/* A new registry entry (its key set by hash_search). */
static void
init_tree_entry(StrataTree *tree, uint64 tree_id, char persistence)
{
	LWLockInitialize(&tree->lock, strata_tree_tranche_id);
	LWLockInitialize(&tree->manifest_lock, strata_tree_tranche_id);
	reset_tree_entry(tree, tree_id, persistence);
}

/*
 * Every live tree (palloc'd array of pointers into the registry). The
 * pointers stay valid entries only in the maintenance worker, until its
 * next sweep (tree.h); other processes use strata_registry_foreach.
 */
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

/*
 * Call fn on every live tree, with the registry locked shared so that no
 * entry is removed and reused meanwhile; fn may take tree locks (the
 * registry's lock comes first: strata_tree_drop). Stops when fn returns
 * false.
 */
void
strata_registry_foreach(bool (*fn) (StrataTree *tree, void *arg), void *arg)
{
	HASH_SEQ_STATUS status;
	StrataTree *tree;

	LWLockAcquire(strata_shared->registry_lock, LW_SHARED);
	hash_seq_init(&status, strata_registry);
	while ((tree = hash_seq_search(&status)) != NULL)
	{
		if (tree->dropped)
			continue;
		if (!fn(tree, arg))
		{
			hash_seq_term(&status);
			break;
		}
	}
	LWLockRelease(strata_shared->registry_lock);
}

static bool
directory_is_gone(const char *path)
{
	struct stat st;

	return stat(path, &st) != 0 && errno == ENOENT;
}

/*
 * Remove every directory of this relfilenode (a stale tree: doc/DESIGN.md
 * §7, T12). REQUIRES: no registered tree of it is in use (retire_old_tree).
 */
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
			/* the worker's sweep may be removing the same one */
			if (!rmtree(path, true) && !directory_is_gone(path))
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not remove stale strata storage \"%s\"", path)));
		}
	}
	FreeDir(dir);
	fsync_fname(dbdir, true);
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

/*
 * Move a retiring tree's memtables (active first) into mts, for the caller
 * to unpin once no lock is held; the tree is left with none. Returns how
 * many. REQUIRES: tree lock held exclusively, no job of the worker on it.
 */
static int
take_memtables(StrataTree *tree, StrataMemtableRef *mts)
{
	int			n = 0;

	if (strata_has_active(tree))
		mts[n++] = tree->active;
	for (int i = 0; i < tree->nimm; i++)
		mts[n++] = tree->imm[i];
	memset(&tree->active, 0, sizeof(tree->active));
	tree->nimm = 0;
	return n;
}

/*
 * Before a relfilenode gets a new tree, its old one (of a relation that was
 * dropped, or truncated in the transaction that created it) gives up its
 * memtables. The maintenance worker may be in the middle of a flush or a
 * compaction of that tree, writing into its directory and its entry: the
 * entry is marked dropped, so that the worker starts no other job on it,
 * and this waits for the job under way to end. Only then may the old
 * directory be removed and the entry reused (strata_tree_create_with_id).
 * The entry stays registered, dropped and empty, for that reuse.
 *
 * The wait cannot be cancelled, so the memtables are always given back: it
 * lasts one job of the worker on one tree, and ends if the worker exits.
 */
static void
retire_old_tree(const RelFileNodeBackend *key)
{
	StrataMemtableRef mts[STRATA_MAX_IMM + 1];
	int			n = 0;
	bool		slept = false;

	for (;;)
	{
		StrataTree *tree;
		bool		busy;

		/* shared is enough to keep the entry: only the sweep removes one */
		LWLockAcquire(strata_shared->registry_lock, LW_SHARED);
		tree = hash_search(strata_registry, key, HASH_FIND, NULL);
		if (tree == NULL)
		{
			LWLockRelease(strata_shared->registry_lock);
			break;
		}
		LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
		tree->dropped = true;
		busy = tree->worker_job != 0 && tree->worker_job == strata_worker_incarnation();
		if (!busy)
			n = take_memtables(tree, mts);
		LWLockRelease(&tree->lock);
		LWLockRelease(strata_shared->registry_lock);
		if (!busy)
			break;
		if (!slept)
		{
			HOLD_INTERRUPTS();
			ConditionVariablePrepareToSleep(&strata_shared->flush_cv);
			slept = true;
		}
		/* run_tree_job broadcasts when a job ends */
		ConditionVariableTimedSleep(&strata_shared->flush_cv, 100, PG_WAIT_EXTENSION);
	}
	if (slept)
	{
		ConditionVariableCancelSleep();
		RESUME_INTERRUPTS();
	}
	for (int i = 0; i < n; i++)
		strata_memtable_unpin(mts[i]);
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
	retire_old_tree(&key);
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
	if (found)
	{
		/* the old tree's entry, retired above: taken over in place */
		LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
		if (!tree->dropped || strata_has_active(tree) || tree->nimm > 0)
			elog(ERROR, "stratago: the old tree of relfilenode %u/%u/%u was not retired",
				 rnode->spcNode, rnode->dbNode, rnode->relNode);
		reset_tree_entry(tree, tree_id, persistence);
		LWLockRelease(&tree->lock);
	}
	else
		init_tree_entry(tree, tree_id, persistence);
	LWLockRelease(strata_shared->registry_lock);
	return tree;
}

/*
 * Forget the tree of a relation that no longer exists: its memtables, its
 * registry entry and its directory. Only if the entry still holds tree_id
 * and is not already dropped (a new tree under the same relfilenode, or
 * one retiring this tree for it, is left alone). Maintenance worker only.
 *
 * The entry stays registered, dropped and marked with the worker's job,
 * while the directory is removed: a new tree of the same relfilenode
 * created meanwhile waits for it to go (retire_old_tree) rather than
 * remove the same directory at the same time.
 */
void
strata_tree_drop(const RelFileNodeBackend *key, uint64 tree_id)
{
	StrataTree *tree;
	StrataMemtableRef mts[STRATA_MAX_IMM + 1];
	int			n = 0;
	char		path[MAXPGPATH];

	LWLockAcquire(strata_shared->registry_lock, LW_SHARED);
	tree = hash_search(strata_registry, key, HASH_FIND, NULL);
	if (tree == NULL || tree->tree_id != tree_id || tree->dropped)
	{
		LWLockRelease(strata_shared->registry_lock);
		return;
	}
	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	n = take_memtables(tree, mts);
	strata_tree_dir(tree, path, sizeof(path));
	tree->dropped = true;
	tree->worker_job = strata_worker_incarnation();
	LWLockRelease(&tree->lock);
	LWLockRelease(strata_shared->registry_lock);

	PG_TRY();
	{
		for (int i = 0; i < n; i++)
			strata_memtable_unpin(mts[i]);
		if (!rmtree(path, true) && !directory_is_gone(path))
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not remove strata storage \"%s\"", path)));
	}
	PG_FINALLY();
	{
		LWLockAcquire(strata_shared->registry_lock, LW_EXCLUSIVE);
		tree = hash_search(strata_registry, key, HASH_FIND, NULL);
		if (tree != NULL && tree->tree_id == tree_id && tree->dropped)
			hash_search(strata_registry, key, HASH_REMOVE, NULL);
		LWLockRelease(strata_shared->registry_lock);
	}
	PG_END_TRY();
	ereport(DEBUG1, (errmsg_internal("stratago: removed tree \"%s\" of a dropped relation", path)));
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
	return strata_tree_alloc_rowids(tree, 1);
}

/*
 * n consecutive new row ids (the first is returned), under one acquisition
 * of the tree lock: a COPY batch takes its thousand at once.
 */
uint64
strata_tree_alloc_rowids(StrataTree *tree, int n)
{
	uint64		first;

	Assert(n > 0);
	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	first = tree->next_rowid;
	tree->next_rowid += n;
	LWLockRelease(&tree->lock);
	if (first + n - 1 > STRATA_MAX_ROWID)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("strata table has run out of row ids")));
	return first;
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
bool
strata_memtable_full(sg_memtable *mt)
{
	return sg_arena_used(&mt->arena) >= (uint64) strata_memtable_size_kb * 1024;
}

/*
 * Make room in the active memtable. REQUIRES: tree lock held exclusively.
 * Returns false when the caller must wait for a flush (lock released).
 */
bool
strata_ensure_active_memtable(StrataTree *tree)
{
	sg_memtable mt;

	if (strata_has_active(tree))
	{
		strata_memtable_attach(tree->active, &mt);
		if (!strata_memtable_full(&mt))
			return true;
		if (!strata_freeze_active(tree))
			return false;
	}
	tree->active = strata_memtable_new();
	tree->active_min_lsn = 0;
	tree->active_pg_first = tree->active_pg_last = 0;
	tree->active_entries = 0;
	return true;
}

/*
 * Give back tree's active memtable if it holds nothing and no log
 * position (a writer made it and failed before adding; see
 * strata_freeze_active for why none is made ahead). Returns the pin to
 * drop once no lock is held, or a zero ref. REQUIRES: tree lock held
 * exclusively.
 */
StrataMemtableRef
strata_take_empty_active(StrataTree *tree)
{
	StrataMemtableRef ref = {0};

	if (strata_has_active(tree) && !strata_active_has_data(tree) &&
		tree->active_min_lsn == 0 && tree->active_pg_first == 0)
	{
		ref = tree->active;
		memset(&tree->active, 0, sizeof(tree->active));
	}
	return ref;
}

void
strata_tree_memtable_usage(StrataTree *tree, uint64 *bytes, uint64 *versions)
{
	sg_memtable mt;

	*bytes = *versions = 0;
	LWLockAcquire(&tree->lock, LW_SHARED);
	if (strata_has_active(tree))
	{
		strata_memtable_attach(tree->active, &mt);
		*bytes += sg_memtable_data_bytes(&mt);
		*versions += sg_memtable_entries(&mt);
	}
	for (int i = 0; i < tree->nimm; i++)
	{
		strata_memtable_attach(tree->imm[i], &mt);
		*bytes += sg_memtable_data_bytes(&mt);
		*versions += sg_memtable_entries(&mt);
	}
	LWLockRelease(&tree->lock);
}

/*
 * Move the active memtable to the frozen list and wake the worker to
 * flush it; the tree is left without an active one, which the next write
 * makes (strata_ensure_active_memtable, or replay's apply). Making it here
 * ahead of need held an arena chunk per tree for ever: once more
 * trees had been written than the arena has chunks, every chunk sat in an
 * empty memtable that no flush frees, and writers waited for memory
 * without end. REQUIRES: tree lock held exclusively, an active memtable.
 * False if the frozen list is full (the caller waits for a flush).
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
	memset(&tree->active, 0, sizeof(tree->active));
	tree->active_min_lsn = 0;
	tree->active_pg_first = tree->active_pg_last = 0;
	tree->active_entries = 0;
	strata_worker_wake();
	return true;
}

/* The registered tree of a permanent or unlogged rnode, or NULL. */
StrataTree *
strata_tree_lookup(const RelFileNode *rnode)
{
	return strata_tree_lookup_backend(rnode, InvalidBackendId);
}

/*
 * The live tree of rnode for backend (a temporary relation's owner, else
 * InvalidBackendId), or NULL; unlike strata_tree_get, also a damaged one.
 */
StrataTree *
strata_tree_lookup_backend(const RelFileNode *rnode, BackendId backend)
{
	StrataTree *tree;
	RelFileNodeBackend key;

	key.node = *rnode;
	key.backend = backend;
	LWLockAcquire(strata_shared->registry_lock, LW_SHARED);
	tree = hash_search(strata_registry, &key, HASH_FIND, NULL);
	LWLockRelease(strata_shared->registry_lock);
	if (tree != NULL && tree->dropped)
		tree = NULL;
	return tree;
}
/*
 * Free the registry entries of dropped tables now (a backend that found
 * the registry full): a checkpoint unlinks their smgr files, then the
 * worker's next round sweeps them (the worker, not this backend, because
 * it may be flushing or compacting those very trees). Waits a bounded time.
 */
void
strata_reclaim_dropped_trees(void)
{
	uint64		target;
	TimestampTz start;

	RequestCheckpoint(CHECKPOINT_IMMEDIATE | CHECKPOINT_FORCE | CHECKPOINT_WAIT);
	/* a sweep under way may have listed the trees before the unlinks */
	target = strata_worker_sweeps() + 2;
	start = GetCurrentTimestamp();
	ConditionVariablePrepareToSleep(&strata_shared->flush_cv);
	while (strata_worker_sweeps() < target &&
		   strata_worker_running() &&
		   !TimestampDifferenceExceeds(start, GetCurrentTimestamp(), STRATA_BOUNDED_WAIT_MS))
	{
		strata_worker_wake();
		ConditionVariableTimedSleep(&strata_shared->flush_cv, 100, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
}

/*
 * Register a tree found on disk at startup (recovery.c), with nothing in
 * memory yet. REQUIRES: the postmaster, before any backend exists.
 */
StrataTree *
strata_tree_register_found(const RelFileNodeBackend *key, uint64 tree_id, char persistence)
{
	StrataTree *tree;
	bool		found;

	tree = hash_search(strata_registry, key, HASH_ENTER_NULL, &found);
	if (tree == NULL)
		ereport(FATAL,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many strata tables to recover"),
				 errhint("Increase stratago.max_tables.")));
	init_tree_entry(tree, tree_id, persistence);
	return tree;
}
