/*
 * flush.c — strata trees on disk: the maintenance worker turns frozen
 * memtables into SSTables and records them in the tree's MANIFEST; every
 * backend keeps a process-local view of each tree's SSTables (its
 * "local version": the file list plus open readers) and refreshes it when
 * the tree's version number moves; recovery reads each tree's MANIFEST
 * before the engine WAL is replayed.
 *
 * Who writes what:
 *   - only the maintenance worker appends to a tree's MANIFEST and unlinks
 *     its files, holding the tree's manifest_lock exclusively;
 *   - backends replay the MANIFEST and open the files it names holding
 *     manifest_lock shared, so an unlink never falls between the two;
 *   - an open reader stays valid after its file is unlinked (POSIX), so a
 *     scan can go on with an old local version (doc/DESIGN.md §3).
 *
 * A reader pins the tree's memtables before it reads the local version:
 * a memtable flushed in between is then seen twice (the same versions,
 * skipped by sequence number), never missed.
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/transam.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "postmaster/bgwriter.h"
#include "storage/procarray.h"
#include "pgstat.h"
#include "common/relpath.h"
#include "storage/condition_variable.h"
#include "storage/fd.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "engine/base/coding.h"
#include "engine/base/env.h"
#include "engine/base/ikey.h"
#include "engine/compact/compact.h"
#include "engine/sstable/table.h"
#include "engine/version/manifest.h"
#include "engine/version/version.h"
#include "pg/rowversion.h"
#include "pg/runtime.h"
#include "pg/stratago.h"

/* ------------------------------------------------------------------------
 * Local versions (every backend)
 * ------------------------------------------------------------------------
 */

/* One open SSTable reader, shared by the local versions that list it. */
typedef struct ReaderEntry
{
	uint64		number;
	sg_table_reader *reader;
	int			refs;
} ReaderEntry;

struct StrataLocalVersion
{
	int			refs;			/* the tree's current slot holds one */
	uint64		version_no;
	int			nfiles;
	ReaderEntry **files;		/* newest L0 first, then L1.., key order */
	int			level_start[SG_NUM_LEVELS + 1];
};

typedef struct LocalTree
{
	RelFileNodeBackend key;
	uint64		tree_id;
	StrataLocalVersion *current;
	int			nreaders;
	int			capreaders;
	ReaderEntry **readers;
} LocalTree;

static HTAB *local_trees = NULL;

static void release_local_version(uintptr_t what, uintptr_t unused);

/*
 * Open SSTable readers of this backend (one file descriptor each). Above
 * the cap, cached local versions of other trees that no scan uses are
 * dropped before a new one is loaded.
 */
#define STRATA_BACKEND_OPEN_READERS 256
static int	open_readers = 0;

static void
tree_dir_path(StrataTree *tree, char *buf, size_t len)
{
	strata_tree_dir(tree, buf, len);
}

/*
 * Path of the live MANIFEST, from CURRENT. SG_NOT_FOUND: nothing was ever
 * flushed here; a CURRENT that is missing beside the tree's files, or
 * names no MANIFEST, is SG_CORRUPTION (sg_current_read), never "empty".
 */
static sg_code
current_manifest_path(const char *dir, char *path, size_t len, sg_err *err)
{
	uint64_t	number;
	sg_code		rc = sg_current_read(sg_env_posix(), dir, &number, err);

	if (rc == SG_OK)
		sg_manifest_path(path, len, dir, number);
	return rc;
}

static void
reader_unref(LocalTree *lt, ReaderEntry *re)
{
	if (--re->refs > 0)
		return;
	sg_table_reader_close(re->reader);
	open_readers--;
	for (int i = 0; i < lt->nreaders; i++)
		if (lt->readers[i] == re)
		{
			lt->readers[i] = lt->readers[--lt->nreaders];
			break;
		}
	free(re);
}

static ReaderEntry *
reader_get(LocalTree *lt, const char *dir, uint64 number)
{
	ReaderEntry *re;
	char		path[MAXPGPATH];
	sg_err		err = {0};
	sg_code		rc;

	for (int i = 0; i < lt->nreaders; i++)
		if (lt->readers[i]->number == number)
		{
			lt->readers[i]->refs++;
			return lt->readers[i];
		}
	re = malloc(sizeof(ReaderEntry));
	if (re == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	sg_sst_path(path, sizeof(path), dir, number);
	rc = sg_table_reader_open(sg_env_posix(), path, &re->reader, &err);
	if (rc != SG_OK)
	{
		free(re);
		strata_engine_error(rc == SG_NOT_FOUND ? SG_CORRUPTION : rc, &err);
	}
	re->number = number;
	re->refs = 1;
	open_readers++;
	if (lt->nreaders == lt->capreaders)
	{
		int			cap = lt->capreaders ? lt->capreaders * 2 : 16;
		ReaderEntry **r = realloc(lt->readers, sizeof(ReaderEntry *) * cap);

		if (r == NULL)
		{
			sg_table_reader_close(re->reader);
			free(re);
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		}
		lt->readers = r;
		lt->capreaders = cap;
	}
	lt->readers[lt->nreaders++] = re;
	return re;
}

static void
local_version_unref(LocalTree *lt, StrataLocalVersion *lv)
{
	if (--lv->refs > 0)
		return;
	for (int i = 0; i < lv->nfiles; i++)
		reader_unref(lt, lv->files[i]);
	free(lv->files);
	free(lv);
}

static LocalTree *
local_tree(StrataTree *tree)
{
	LocalTree  *lt;
	bool		found;

	if (local_trees == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(RelFileNodeBackend);
		ctl.entrysize = sizeof(LocalTree);
		ctl.hcxt = TopMemoryContext;
		local_trees = hash_create("stratago local trees", 64, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	lt = hash_search(local_trees, &tree->key, HASH_ENTER, &found);
	if (!found)
	{
		lt->tree_id = tree->tree_id;
		lt->current = NULL;
		lt->nreaders = lt->capreaders = 0;
		lt->readers = NULL;
	}
	else if (lt->tree_id != tree->tree_id)
	{
		/* the relfilenode now holds another tree: forget the old one */
		if (lt->current)
			local_version_unref(lt, lt->current);
		lt->current = NULL;
		lt->tree_id = tree->tree_id;
	}
	return lt;
}

/*
 * Build the local version for the tree's current MANIFEST. REQUIRES:
 * manifest_lock held (shared), so no file it names is unlinked meanwhile.
 */
static StrataLocalVersion *
load_local_version(LocalTree *lt, StrataTree *tree, uint64 version_no)
{
	char		dir[MAXPGPATH];
	char		mpath[MAXPGPATH];
	sg_manifest_state st;
	sg_err		err = {0};
	sg_code		rc;
	StrataLocalVersion *lv = calloc(1, sizeof(StrataLocalVersion));
	int			total;

	if (lv == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	lv->refs = 1;
	lv->version_no = version_no;
	tree_dir_path(tree, dir, sizeof(dir));
	rc = current_manifest_path(dir, mpath, sizeof(mpath), &err);
	if (rc == SG_NOT_FOUND)
		return lv;				/* nothing flushed yet */
	if (rc == SG_OK)
		rc = sg_manifest_replay(sg_env_posix(), mpath, &st, &err);
	if (rc != SG_OK)
	{
		free(lv);
		strata_engine_error(rc == SG_NOT_FOUND ? SG_CORRUPTION : rc, &err);
	}
	total = (int) sg_version_total_files(st.version);
	lv->files = malloc(sizeof(ReaderEntry *) * Max(total, 1));
	if (lv->files == NULL)
	{
		sg_version_unref(st.version, NULL, NULL);
		free(lv);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	PG_TRY();
	{
		for (int level = 0; level < SG_NUM_LEVELS; level++)
		{
			lv->level_start[level] = lv->nfiles;
			for (size_t i = 0; i < st.version->nfiles[level]; i++)
			{
				/*
				 * Count the file only once it is open: the error path below
				 * releases the first nfiles entries.
				 */
				ReaderEntry *re = reader_get(lt, dir, st.version->files[level][i]->number);

				lv->files[lv->nfiles++] = re;
			}
		}
		lv->level_start[SG_NUM_LEVELS] = lv->nfiles;
	}
	PG_CATCH();
	{
		for (int i = 0; i < lv->nfiles; i++)
			reader_unref(lt, lv->files[i]);
		free(lv->files);
		free(lv);
		sg_version_unref(st.version, NULL, NULL);
		PG_RE_THROW();
	}
	PG_END_TRY();
	sg_version_unref(st.version, NULL, NULL);
	return lv;
}

/*
 * The SSTables of tree as of now, pinned until strata_local_version_release
 * with the hold returned in *hold.
 */
StrataLocalVersion *
strata_local_version_get(StrataTree *tree, StrataHoldId *hold)
{
	LocalTree  *lt = local_tree(tree);
	uint64		version_no;

	LWLockAcquire(&tree->lock, LW_SHARED);
	version_no = tree->version_no;
	LWLockRelease(&tree->lock);

	if (lt->current == NULL || lt->current->version_no != version_no)
	{
		StrataLocalVersion *lv;

		if (open_readers > STRATA_BACKEND_OPEN_READERS)
		{
			HASH_SEQ_STATUS status;
			LocalTree  *other;

			hash_seq_init(&status, local_trees);
			while ((other = hash_seq_search(&status)) != NULL)
				if (other != lt && other->current != NULL && other->current->refs == 1)
				{
					local_version_unref(other, other->current);
					other->current = NULL;
				}
		}

		/* on error the lock is released by transaction abort */
		LWLockAcquire(&tree->manifest_lock, LW_SHARED);
		lv = load_local_version(lt, tree, version_no);
		LWLockRelease(&tree->manifest_lock);
		if (lt->current)
			local_version_unref(lt, lt->current);
		lt->current = lv;
	}
	strata_hold_reserve(1);
	lt->current->refs++;
	*hold = strata_hold(release_local_version, (uintptr_t) lt->current, 0);
	return lt->current;
}

void
strata_local_version_release(StrataLocalVersion *lv, StrataHoldId hold)
{
	if (lv == NULL)
		return;
	strata_unhold(hold);
	release_local_version((uintptr_t) lv, 0);
}

/* Drop one reference to a local version (also at abort: hold.h). */
static void
release_local_version(uintptr_t what, uintptr_t unused)
{
	StrataLocalVersion *lv = (StrataLocalVersion *) what;
	HASH_SEQ_STATUS status;
	LocalTree  *lt;

	if (lv->refs > 1)
	{
		lv->refs--;
		return;
	}
	/* the last reference: find the owning tree to drop readers */
	hash_seq_init(&status, local_trees);
	while ((lt = hash_seq_search(&status)) != NULL)
	{
		for (int i = 0; i < lt->nreaders; i++)
			if (lv->nfiles > 0 && lt->readers[i] == lv->files[0])
			{
				hash_seq_term(&status);
				local_version_unref(lt, lv);
				return;
			}
	}
	/* no files: nothing to release but the struct */
	free(lv->files);
	free(lv);
}

int
strata_local_version_nfiles(StrataLocalVersion *lv)
{
	return lv->nfiles;
}

/* File i of the local version: its level, number and reader. */
void
strata_local_version_file(StrataLocalVersion *lv, int i, int *level, uint64 *number,
						  sg_table_reader **reader)
{
	int			l = 0;

	while (l < SG_NUM_LEVELS - 1 && i >= lv->level_start[l + 1])
		l++;
	*level = l;
	*number = lv->files[i]->number;
	*reader = lv->files[i]->reader;
}

/* One iterator per file into iters (room for nfiles); returns the count. */
int
strata_local_version_iters(StrataLocalVersion *lv, sg_iter **iters)
{
	for (int i = 0; i < lv->nfiles; i++)
		iters[i] = sg_table_reader_iter(lv->files[i]->reader);
	return lv->nfiles;
}

/* Visit every version of key in one table, newest first, until fn says stop; true then. */
static bool
table_versions(sg_table_reader *r, sg_slice key,
			   bool (*fn) (void *arg, uint64_t seq, sg_value_type type, sg_slice value),
			   void *arg)
{
	sg_iter    *it;
	bool		tombstone = false;
	sg_err		err = {0};
	char		target[STRATA_ROWID_KEY_LEN + SG_IKEY_TRAILER_LEN];

	if (!sg_table_reader_may_contain(r, key) || key.len != STRATA_ROWID_KEY_LEN)
		return false;
	/* seek to the newest version: the user key with the largest trailer */
	memcpy(target, key.data, key.len);
	sg_encode_fixed64(target + key.len, sg_ikey_pack_trailer(SG_MAX_SEQUENCE, SG_TYPE_FOR_SEEK));
	it = sg_table_reader_iter(r);
	for (sg_iter_seek(it, sg_slice_make(target, sizeof(target))); sg_iter_valid(it); sg_iter_next(it))
	{
		sg_parsed_ikey k;

		if (!sg_ikey_parse(sg_iter_key(it), &k) || !sg_slice_equal(k.user_key, key))
			break;
		if (!fn(arg, k.seq, k.type, sg_iter_value(it)) || k.type == SG_TYPE_DELETE)
		{
			tombstone = true;	/* nothing older is wanted */
			break;
		}
	}
	if (sg_iter_status(it, &err) != SG_OK)
	{
		sg_iter_destroy(it);
		strata_engine_error(err.code, &err);
	}
	sg_iter_destroy(it);
	return tombstone;
}

/*
 * Every version of key in the SSTables, newest first (L0 newest file
 * first, then deeper levels), stopping at an engine tombstone or when fn
 * returns false.
 */
bool
strata_local_version_versions(StrataLocalVersion *lv, sg_slice key,
							  bool (*fn) (void *arg, uint64_t seq, sg_value_type type,
										  sg_slice value),
							  void *arg)
{
	for (int i = 0; i < lv->nfiles; i++)
		if (table_versions(lv->files[i]->reader, key, fn, arg))
			return true;
	return false;
}

/* ------------------------------------------------------------------------
 * Per-SSTable statistics (the engine's opaque user_stats blob)
 *
 *   byte 0      format: 1
 *   bytes 1-8   oldest unfrozen writer (FullTransactionId, little-endian
 *               fixed64); 0: every version is frozen; 1: unknown
 *   bytes 9-16  dead stubs: frozen TOMBSTONE or MOVED versions, rows gone
 *               for every snapshot whose index entries VACUUM must remove
 *   bytes 17-24 row id high-water mark: no row id at or above it was ever
 *               handed out when the file's data was written
 *
 * The oldest unfrozen xid is what VACUUM sets relfrozenxid from; the
 * high-water mark keeps row ids from being handed out again after a
 * restart when compaction has removed the highest rows (BRIEF §2.3).
 * Files without the blob (older builds) count as "oldest unknown".
 * ------------------------------------------------------------------------
 */
#define STRATA_FILE_STATS_FORMAT 1
#define STRATA_FILE_STATS_LEN 25

/* What the observe hook accumulates for the output file being written. */
typedef struct StatsAcc
{
	uint64		oldest;			/* 0 none, 1 unknown */
	uint64		stubs;
	uint64		rowid_end;		/* largest row id seen + 1 */
	uint64		base_hwm;		/* the job's floor for the high-water mark */
} StatsAcc;

static void
stats_acc_init(StatsAcc *acc, uint64 base_hwm)
{
	memset(acc, 0, sizeof(*acc));
	acc->base_hwm = base_hwm;
}

/* Fold one entry written to the output into the accumulator (engine callback). */
static void
stats_observe(void *arg, sg_slice ikey, sg_slice value)
{
	StatsAcc   *acc = arg;
	sg_parsed_ikey k;
	StrataVersion v;

	if (!sg_ikey_parse(ikey, &k))
	{
		acc->oldest = 1;
		return;
	}
	if (k.user_key.len == STRATA_ROWID_KEY_LEN &&
		sg_decode_be64(k.user_key.data) + 1 > acc->rowid_end)
		acc->rowid_end = sg_decode_be64(k.user_key.data) + 1;
	if (k.type != SG_TYPE_PUT)
		return;					/* an engine tombstone carries no xid */
	if (!strata_version_decode(value.data, value.len, &v))
	{
		acc->oldest = 1;
		return;
	}
	if (!(v.flags & STRATA_VF_FROZEN))
	{
		uint64		x = U64FromFullTransactionId(v.writer);

		if (acc->oldest != 1 && (acc->oldest == 0 || x < acc->oldest))
			acc->oldest = Max(x, 2);
	}
	else if (v.kind == STRATA_TOMBSTONE || v.kind == STRATA_MOVED)
		acc->stubs++;
}

/* The blob of the file just completed; the accumulator starts over. */
static sg_code
stats_finish(void *arg, uint64_t file_number, sg_buf *out, sg_err *err)
{
	StatsAcc   *acc = arg;

	sg_buf_append(out, "\x01", 1);
	sg_put_fixed64(out, acc->oldest);
	sg_put_fixed64(out, acc->stubs);
	sg_put_fixed64(out, Max(acc->rowid_end, acc->base_hwm));
	acc->oldest = 0;
	acc->stubs = 0;
	acc->rowid_end = 0;
	return SG_OK;
}

/* Decode a file's statistics; false if it has none (or an unknown format). */
bool
strata_file_stats_parse(sg_slice blob, StrataFileStats *fs)
{
	if (blob.len < STRATA_FILE_STATS_LEN || blob.data[0] != STRATA_FILE_STATS_FORMAT)
		return false;
	fs->oldest_unfrozen = sg_decode_fixed64(blob.data + 1);
	fs->dead_stubs = sg_decode_fixed64(blob.data + 9);
	fs->rowid_hwm = sg_decode_fixed64(blob.data + 17);
	return true;
}

/* The largest high-water mark among a compaction's inputs. */
static uint64
inputs_hwm(const sg_compaction_pick *pick)
{
	uint64		hwm = 0;

	for (int w = 0; w < 2; w++)
		for (size_t i = 0; i < pick->ninputs[w]; i++)
		{
			StrataFileStats fs;

			if (strata_file_stats_parse(sg_buf_slice(&pick->inputs[w][i]->user_stats), &fs))
				hwm = Max(hwm, fs.rowid_hwm);
		}
	return hwm;
}

/* ------------------------------------------------------------------------
 * Flushing (maintenance worker)
 * ------------------------------------------------------------------------
 */

typedef struct WorkerTree
{
	uint64		tree_id;		/* hash key */
	sg_vset    *vset;
	uint64		last_used;
} WorkerTree;

/*
 * The worker keeps the MANIFEST of at most this many trees open (one file
 * descriptor each); a cluster with many tables must not run it out of
 * descriptors.
 */
#define STRATA_WORKER_OPEN_TREES 64

static uint64 worker_clock = 0;
static HTAB *worker_trees = NULL;

static void
evict_worker_trees(void)
{
	while (hash_get_num_entries(worker_trees) >= STRATA_WORKER_OPEN_TREES)
	{
		HASH_SEQ_STATUS status;
		WorkerTree *wt;
		WorkerTree *lru = NULL;

		hash_seq_init(&status, worker_trees);
		while ((wt = hash_seq_search(&status)) != NULL)
			if (lru == NULL || wt->last_used < lru->last_used)
				lru = wt;
		sg_vset_close(lru->vset);
		hash_search(worker_trees, &lru->tree_id, HASH_REMOVE, NULL);
	}
}

/*
 * Remove what version v of the tree in dir does not need: MANIFESTs other
 * than live_manifest, temporary files, outputs a crash left unnamed. Run
 * when nothing is being written to the tree (at recovery; by the worker
 * right after opening the tree). REQUIRES: no backend can be reading the
 * MANIFEST being removed (recovery, or manifest_lock held exclusively).
 */
static void
remove_orphans(const char *dir, const sg_version *v, uint64 live_manifest)
{
	char	  **names;
	size_t		count;
	sg_err		err = {0};

	if (sg_list_orphans(sg_env_posix(), dir, v, live_manifest, UINT64_MAX,
						&names, &count, &err) != SG_OK)
		return;
	for (size_t i = 0; i < count; i++)
	{
		char		path[MAXPGPATH];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (unlink(path) != 0 && errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not remove orphaned file \"%s\": %m", path)));
	}
	if (count > 0)
		fsync_fname(dir, true);
	sg_env_free_names(names, count);
}


static sg_vset *
worker_vset(StrataTree *tree)
{
	WorkerTree *wt;
	bool		found;

	if (worker_trees == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(WorkerTree);
		ctl.hcxt = TopMemoryContext;
		worker_trees = hash_create("stratago worker trees", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	wt = hash_search(worker_trees, &tree->tree_id, HASH_FIND, &found);
	if (!found)
	{
		evict_worker_trees();
		wt = hash_search(worker_trees, &tree->tree_id, HASH_ENTER, &found);
	}
	wt->last_used = ++worker_clock;
	if (!found)
	{
		char		dir[MAXPGPATH];
		sg_vset_options opts;
		sg_err		err = {0};
		sg_code		rc;

		wt->vset = NULL;
		tree_dir_path(tree, dir, sizeof(dir));
		memset(&opts, 0, sizeof(opts));
		opts.create_if_missing = true;
		LWLockAcquire(&tree->manifest_lock, LW_EXCLUSIVE);
		rc = sg_vset_open(sg_env_posix(), dir, &opts, &wt->vset, &err);
		if (rc == SG_OK)
			remove_orphans(dir, wt->vset->current, wt->vset->manifest_number);
		LWLockRelease(&tree->manifest_lock);
		if (rc != SG_OK)
		{
			hash_search(worker_trees, &tree->tree_id, HASH_REMOVE, NULL);
			strata_engine_error(rc, &err);
		}
	}
	return wt->vset;
}

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
	XLogRecPtr	pg_log_number;
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
	stats_acc_init(&acc, tree->next_rowid);

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
		log_number = strata_shared->wal_state.seg_start + strata_shared->wal_state.seg_bytes;
	if (log_number < tree->flushed_lsn)
		log_number = tree->flushed_lsn;
	/* PostgreSQL's WAL: records are ordered per tree, so imm[0]'s last is the bound */
	pg_log_number = Max(tree->imm_pg_last[0], tree->flushed_pglsn);
	LWLockRelease(&tree->lock);

	vs = worker_vset(tree);
	tree_dir_path(tree, dir, sizeof(dir));
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

	memset(&job, 0, sizeof(job));
	job.env = sg_env_posix();
	job.dir = dir;
	job.source = it;
	job.file_number = sg_vset_new_file_number(vs);
	job.observe = stats_observe;
	job.user_stats = stats_finish;
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
	HASH_SEQ_STATUS status;
	WorkerTree *wt;

	if (worker_trees == NULL)
		return;
	hash_seq_init(&status, worker_trees);
	while ((wt = hash_seq_search(&status)) != NULL)
		sg_vset_close(wt->vset);
	hash_destroy(worker_trees);
	worker_trees = NULL;
}

/* ------------------------------------------------------------------------
 * Compaction (maintenance worker)
 * ------------------------------------------------------------------------
 */

/*
 * MVCC garbage collection and freezing, applied to every key a compaction
 * rewrites (the engine shows all its versions in the inputs, newest first).
 * With H = the oldest xid any snapshot in the cluster may still treat as
 * running (GetOldestNonRemovableTransactionId):
 *  - a version whose writer rolled back (or crashed) and is older than H,
 *    a lock whose holder is finished, and a failed speculative insert with
 *    its super-delete are dropped: no reader can ever use them;
 *  - the newest version committed before H is visible to every snapshot,
 *    so every version older than it is dropped;
 *  - if that version is a delete or a move, the row is gone for everyone;
 *    where no deeper level can hold older versions of the key, the row
 *    is left as one frozen "dead stub" (heap's LP_DEAD): index entries may
 *    still point at it, so its row id must stay dead until VACUUM has
 *    removed them and reaped the row (an engine tombstone, after which
 *    compaction removes the row for good). A row all of whose versions
 *    are dropped (a rolled-back insert, a failed speculative insert) also
 *    leaves a stub, for the index entries its insert made;
 *  - the version every snapshot sees, when it stays, is rewritten frozen,
 *    so no reader needs the commit log for it again and relfrozenxid can
 *    move past its writer.
 * Versions of transactions that may still be running are always kept.
 */
typedef struct GcState
{
	TransactionId horizon;
	StringInfoData rewrite;		/* the frozen copy handed back to the job */
	uint64		dropped;
	uint64		frozen;
} GcState;

static bool
writer_finished_before(TransactionId xid, TransactionId horizon)
{
	return TransactionIdIsNormal(xid) && TransactionIdPrecedes(xid, horizon);
}

static sg_code
mvcc_gc_filter(void *arg, const sg_filter_context *ctx, sg_slice user_key,
			   sg_filter_version *fv, size_t n, sg_err *err)
{
	GcState    *gc = arg;
	bool		kill_pending = false;
	FullTransactionId kill_writer = {0};
	bool		all_visible_found = false;
	bool		any_kept = false;
	int			oldest_dropped = -1;
	StrataVersion last_dropped = {0};

	/*
	 * A row VACUUM reaped: the engine tombstone above its stub. The
	 * engine's default decisions (drop what it hides; drop it at the
	 * bottom) remove the row for good.
	 */
	if (n > 0 && fv[0].type == SG_TYPE_DELETE)
		return SG_OK;

	resetStringInfo(&gc->rewrite);
	for (size_t i = 0; i < n; i++)
	{
		StrataVersion v;
		TransactionId xid;
		bool		old;
		bool		committed;

		fv[i].decision = SG_FILTER_KEEP;
		if (fv[i].type != SG_TYPE_PUT)
		{
			any_kept = true;
			continue;			/* engine tombstones are the engine's */
		}
		if (!strata_version_decode(fv[i].value.data, fv[i].value.len, &v))
			return sg_error(err, SG_CORRUPTION, "malformed row version during compaction");
		if (all_visible_found)
		{
			fv[i].decision = SG_FILTER_DROP;
			gc->dropped++;
			continue;
		}
		xid = XidFromFullTransactionId(v.writer);
		old = (v.flags & STRATA_VF_FROZEN) || writer_finished_before(xid, gc->horizon);

		/* a failed speculative insert and the super-delete above it */
		if (v.kind == STRATA_TOMBSTONE && (v.flags & STRATA_VF_KILLS_INSERT))
		{
			if (old)
			{
				kill_pending = true;
				kill_writer = v.writer;
				fv[i].decision = SG_FILTER_DROP;
				gc->dropped++;
				oldest_dropped = i;
				last_dropped = v;
			}
			else
				any_kept = true;
			continue;
		}
		if (kill_pending && v.kind == STRATA_DATA &&
			FullTransactionIdEquals(v.writer, kill_writer))
		{
			kill_pending = false;
			fv[i].decision = SG_FILTER_DROP;
			gc->dropped++;
			oldest_dropped = i;
			last_dropped = v;
			continue;
		}
		if (!old)
		{
			any_kept = true;
			continue;			/* its writer may still be running, or be seen as such */
		}

		committed = (v.flags & (STRATA_VF_FROZEN | STRATA_VF_COMMITTED)) ||
			TransactionIdDidCommit(xid);
		if (!committed || v.kind == STRATA_LOCK)
		{
			/* rolled back or crashed; or a lock whose holder is done */
			fv[i].decision = SG_FILTER_DROP;
			gc->dropped++;
			oldest_dropped = i;
			last_dropped = v;
			continue;
		}

		/*
		 * The newest version every snapshot sees: older ones are dead. It
		 * stays, frozen (a delete or move above a deeper level too: older
		 * versions there would show through without it).
		 */
		all_visible_found = true;
		any_kept = true;
		if (!(v.flags & STRATA_VF_FROZEN))
		{
			/* one rewrite per call: the job copies it before the next call */
			appendBinaryStringInfo(&gc->rewrite, fv[i].value.data, fv[i].value.len);
			gc->rewrite.data[1] |= (STRATA_VF_FROZEN | STRATA_VF_COMMITTED);
			fv[i].decision = SG_FILTER_REWRITE;
			fv[i].new_value = sg_slice_make(gc->rewrite.data, gc->rewrite.len);
			gc->frozen++;
		}
	}

	/*
	 * Nothing of the row survives and nothing deeper can hold it: leave a
	 * frozen TOMBSTONE stub in place of its oldest version, for VACUUM.
	 */
	if (!any_kept && oldest_dropped >= 0 && ctx->bottommost)
	{
		Assert(gc->rewrite.len == 0);
		strata_version_encode(&gc->rewrite, STRATA_TOMBSTONE, last_dropped.writer,
							  last_dropped.cid, STRATA_VF_FROZEN | STRATA_VF_COMMITTED,
							  NULL, NULL, LockTupleExclusive);
		fv[oldest_dropped].decision = SG_FILTER_REWRITE;
		fv[oldest_dropped].new_value = sg_slice_make(gc->rewrite.data, gc->rewrite.len);
		gc->dropped--;
	}
	return SG_OK;
}

/* An input iterator that owns its table reader. */
typedef struct OwnedTableIter
{
	sg_iter		base;
	sg_iter    *inner;
	sg_table_reader *reader;
} OwnedTableIter;

static bool
oti_valid(sg_iter *it)
{
	return sg_iter_valid(((OwnedTableIter *) it)->inner);
}
static void
oti_seek_to_first(sg_iter *it)
{
	sg_iter_seek_to_first(((OwnedTableIter *) it)->inner);
}
static void
oti_seek(sg_iter *it, sg_slice target)
{
	sg_iter_seek(((OwnedTableIter *) it)->inner, target);
}
static void
oti_next(sg_iter *it)
{
	sg_iter_next(((OwnedTableIter *) it)->inner);
}
static sg_slice
oti_key(sg_iter *it)
{
	return sg_iter_key(((OwnedTableIter *) it)->inner);
}
static sg_slice
oti_value(sg_iter *it)
{
	return sg_iter_value(((OwnedTableIter *) it)->inner);
}
static sg_code
oti_status(sg_iter *it, sg_err *err)
{
	return sg_iter_status(((OwnedTableIter *) it)->inner, err);
}
static void
oti_destroy(sg_iter *it)
{
	OwnedTableIter *o = (OwnedTableIter *) it;

	sg_iter_destroy(o->inner);
	sg_table_reader_close(o->reader);
	free(o);
}

static const sg_iter_ops owned_table_iter_ops = {
	oti_valid, oti_seek_to_first, oti_seek, oti_next, oti_key, oti_value,
	oti_status, oti_destroy
};

static sg_iter *
open_input_table(void *arg, const sg_file_meta *meta)
{
	const char *dir = arg;
	char		path[MAXPGPATH];
	sg_table_reader *r;
	sg_err		err = {0};
	OwnedTableIter *o;

	sg_sst_path(path, sizeof(path), dir, meta->number);
	if (sg_table_reader_open(sg_env_posix(), path, &r, &err) != SG_OK)
		return sg_iter_error(err.code, err.msg);
	o = malloc(sizeof(OwnedTableIter));
	if (o == NULL)
	{
		sg_table_reader_close(r);
		return sg_iter_error(SG_NO_MEMORY, "out of memory opening a compaction input");
	}
	o->base.ops = &owned_table_iter_ops;
	o->reader = r;
	o->inner = sg_table_reader_iter(r);
	return &o->base;
}

static uint64_t
next_file_number(void *arg)
{
	return sg_vset_new_file_number((sg_vset *) arg);
}

#define STRATA_TARGET_FILE_SIZE (32 * 1024 * 1024)

/*
 * Does this file hold a version that compaction would freeze now (an
 * unfrozen writer older than horizon), or not know (no statistics)?
 */
static bool
file_needs_freezing(const sg_file_meta *m, TransactionId horizon)
{
	StrataFileStats fs;

	if (!strata_file_stats_parse(sg_buf_slice(&m->user_stats), &fs) || fs.oldest_unfrozen == 1)
		return true;
	return fs.oldest_unfrozen != 0 &&
		TransactionIdPrecedes(XidFromFullTransactionId(FullTransactionIdFromU64(fs.oldest_unfrozen)),
							  horizon);
}

/*
 * A rewrite in place of the first file at level >= 1, numbered below
 * `below`, that needs freezing: the pick says "level - 1 into level" with
 * no input at level - 1, so the outputs land at the file's own level and
 * cover no more than its key range. Without it, old unfrozen versions at
 * the deepest level would wait for new data to compact them, and
 * relfrozenxid could not move past them.
 */
static sg_code
pick_freeze(const sg_version *v, TransactionId horizon, uint64 below,
			sg_compaction_pick *pick)
{
	for (int level = 1; level < SG_NUM_LEVELS; level++)
		for (size_t i = 0; i < v->nfiles[level]; i++)
		{
			sg_file_meta *m = v->files[level][i];

			if (m->number >= below || !file_needs_freezing(m, horizon))
				continue;
			memset(pick, 0, sizeof(*pick));
			pick->level = level - 1;
			pick->inputs[1] = malloc(sizeof(sg_file_meta *));
			if (pick->inputs[1] == NULL)
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
			pick->inputs[1][0] = m;
			pick->ninputs[1] = 1;
			pick->bottommost = sg_version_range_empty_below(v, level,
															sg_file_meta_smallest_user(m),
															sg_file_meta_largest_user(m));
			return SG_OK;
		}
	return SG_NOT_FOUND;
}

typedef enum CompactMode
{
	COMPACT_AUTO,				/* the most urgent compaction, if any */
	COMPACT_MANUAL,				/* shallowest level with data below it */
	COMPACT_FREEZE				/* a file holding versions to freeze */
} CompactMode;

/*
 * Run one compaction of tree: the most urgent one; with COMPACT_MANUAL
 * every file of the shallowest non-empty level that has a level below it;
 * with COMPACT_FREEZE one file (numbered below freeze_below) that holds
 * versions to freeze, rewritten at its level. Returns false when there
 * was nothing to do.
 */
static bool
compact_one(StrataTree *tree, CompactMode mode, uint64 freeze_below)
{
	sg_vset    *vs;
	sg_version *v;
	sg_picker_options po;
	sg_compaction_pick pick;
	sg_version_edit edit;
	sg_job_stats stats;
	sg_err		err = {0};
	sg_code		rc;
	char		dir[MAXPGPATH];

	GcState		gc;
	StatsAcc	acc;
	uint64		version_no;

	/*
	 * The picker's choice depends only on the file set: a tree found with
	 * nothing to do is not looked at again until its version changes. This
	 * keeps the worker from reopening the MANIFEST of every idle tree each
	 * round once there are more trees than its cache holds.
	 */
	LWLockAcquire(&tree->lock, LW_SHARED);
	version_no = tree->version_no;
	LWLockRelease(&tree->lock);
	if (mode == COMPACT_AUTO && tree->auto_compact_idle_version == version_no + 1)
		return false;
	vs = worker_vset(tree);
	v = vs->current;

	gc.horizon = GetOldestNonRemovableTransactionId(NULL);
	initStringInfo(&gc.rewrite);
	gc.dropped = gc.frozen = 0;
	sg_picker_options_init(&po);
	memset(&pick, 0, sizeof(pick));
	memset(&stats, 0, sizeof(stats));
	if (mode == COMPACT_FREEZE)
		rc = pick_freeze(v, gc.horizon, freeze_below, &pick);
	else if (mode == COMPACT_MANUAL)
	{
		rc = SG_NOT_FOUND;
		for (int level = 0; level < SG_NUM_LEVELS - 1 && rc == SG_NOT_FOUND; level++)
		{
			/* a level is done once it is the deepest holding data */
			bool		deeper = false;

			for (int l = level + 1; l < SG_NUM_LEVELS; l++)
				deeper |= v->nfiles[l] > 0;
			if (v->nfiles[level] == 0 || (!deeper && level > 0))
				continue;
			rc = sg_pick_range(v, level, NULL, NULL, &pick, &err);
		}
	}
	else
		rc = sg_pick_compaction(v, &po, &pick, &err);
	if (rc == SG_NOT_FOUND)
	{
		if (mode == COMPACT_AUTO)
			tree->auto_compact_idle_version = version_no + 1;
		return false;
	}
	if (rc != SG_OK)
		strata_engine_error(rc, &err);

	sg_version_ref(v);
	tree_dir_path(tree, dir, sizeof(dir));
	sg_version_edit_init(&edit);
	if (pick.trivial_move)
		rc = sg_compact_trivial_move(&pick, &edit, &err);
	else
	{
		sg_compact_job job;

		memset(&job, 0, sizeof(job));
		job.env = sg_env_posix();
		job.dir = dir;
		job.pick = &pick;
		job.version = v;
		job.target_file_size = STRATA_TARGET_FILE_SIZE;
		job.filter = mvcc_gc_filter;
		job.filter_arg = &gc;
		job.open_table = open_input_table;
		job.open_arg = dir;
		job.new_file = next_file_number;
		job.new_file_arg = vs;
		stats_acc_init(&acc, inputs_hwm(&pick));
		job.observe = stats_observe;
		job.user_stats = stats_finish;
		job.stats_arg = &acc;
		rc = sg_compact_run(&job, &edit, &stats, &err);
	}

	if (rc == SG_OK)
	{
		LWLockAcquire(&tree->manifest_lock, LW_EXCLUSIVE);
		rc = sg_vset_log_and_apply(vs, &edit, &err);
		/* inputs of a rewrite are garbage now; moved files live on */
		if (rc == SG_OK && !pick.trivial_move)
			for (int w = 0; w < 2; w++)
				for (size_t i = 0; i < pick.ninputs[w]; i++)
				{
					char		path[MAXPGPATH];

					sg_sst_path(path, sizeof(path), dir, pick.inputs[w][i]->number);
					if (unlink(path) != 0 && errno != ENOENT)
						ereport(WARNING,
								(errcode_for_file_access(),
								 errmsg("could not remove file \"%s\": %m", path)));
				}
		LWLockRelease(&tree->manifest_lock);
	}
	sg_version_edit_free(&edit);
	sg_compaction_pick_free(&pick);
	sg_version_unref(v, NULL, NULL);
	if (rc != SG_OK)
		strata_engine_error(rc, &err);

	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	tree->version_no++;
	tree->l0_files = (int) vs->current->nfiles[0];
	tree->compactions++;
	tree->compaction_bytes += stats.bytes_written;
	tree->versions_dropped += gc.dropped;
	tree->versions_frozen += gc.frozen;
	LWLockRelease(&tree->lock);
	pfree(gc.rewrite.data);
	return true;
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

/* The worker forgets its MANIFEST handle of a tree (reopened on next use). */
static void
forget_worker_vset(uint64 tree_id)
{
	WorkerTree *wt;

	if (worker_trees == NULL)
		return;
	wt = hash_search(worker_trees, &tree_id, HASH_FIND, NULL);
	if (wt != NULL)
	{
		sg_vset_close(wt->vset);
		hash_search(worker_trees, &tree_id, HASH_REMOVE, NULL);
	}
}

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

	edata = strata_run_isolated(call_tree_job, &call);
	ok = edata == NULL;
	if (!ok)
	{
		long		backoff;

		/* the handle may be unusable (a MANIFEST append failed): reopen */
		forget_worker_vset(tree->tree_id);

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
void
strata_check_flush_failing(TimestampTz wait_start)
{
	StrataTree **trees;
	int			n;
	int			sqlstate = 0;
	char		msg[sizeof(((StrataTree *) NULL)->job_error)];

	if (!TimestampDifferenceExceeds(wait_start, GetCurrentTimestamp(), STRATA_WRITER_FAIL_MS))
		return;
	n = strata_registry_list(&trees);
	for (int i = 0; i < n && sqlstate == 0; i++)
	{
		LWLockAcquire(&trees[i]->lock, LW_SHARED);
		if (trees[i]->job_failures_in_row > 0 && trees[i]->nimm > 0)
		{
			sqlstate = trees[i]->job_sqlstate;
			strlcpy(msg, trees[i]->job_error, sizeof(msg));
		}
		LWLockRelease(&trees[i]->lock);
	}
	pfree(trees);
	if (sqlstate != 0)
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg("could not make room for strata changes: %s", msg),
				 errdetail("Memtable memory is exhausted and the maintenance worker cannot write memtables to disk."),
				 errhint(sqlstate == ERRCODE_DISK_FULL
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

/*
 * When the shared memtable arena runs low, freeze the largest active
 * memtables so that this round flushes them and frees their chunks.
 */
static void
relieve_memory_pressure(StrataTree **trees, int n)
{
	int			low = strata_shared->arena_nchunks / 4;

	for (int round = 0; round < n && strata_shared->arena_free < low; round++)
	{
		StrataTree *largest = NULL;
		uint64		largest_bytes = 0;

		for (int i = 0; i < n; i++)
		{
			sg_memtable mt;
			uint64		bytes;

			LWLockAcquire(&trees[i]->lock, LW_SHARED);
			bytes = 0;
			if (strata_has_active(trees[i]) && strata_active_has_data(trees[i]) &&
				trees[i]->nimm < STRATA_MAX_IMM && trees[i]->job_failures_in_row == 0)
			{
				strata_memtable_attach(trees[i]->active, &mt);
				bytes = sg_memtable_memory_usage(&mt);
			}
			LWLockRelease(&trees[i]->lock);
			if (bytes > largest_bytes)
			{
				largest = trees[i];
				largest_bytes = bytes;
			}
		}
		if (largest == NULL)
			break;
		if (!run_tree_job(largest, freeze_and_flush))
			break;
	}
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

		while (compact_one(tree, COMPACT_MANUAL, 0))
			CHECK_FOR_INTERRUPTS();
		/* each file once: outputs are numbered from here on */
		freeze_below = worker_vset(tree)->next_file;
		while (compact_one(tree, COMPACT_FREEZE, freeze_below))
			CHECK_FOR_INTERRUPTS();
		LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
		tree->compact_requested = false;
		tree->manual_compactions++;
		LWLockRelease(&tree->lock);
	}
	/* a few at a time, so frozen memtables never wait long */
	for (int k = 0; k < 4 && tree->nimm == 0 && compact_one(tree, COMPACT_AUTO, 0); k++)
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

	if (strata_shared->maintenance_pid == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the stratago maintenance worker is not running")));
	kill(strata_shared->maintenance_pid, SIGUSR1);

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
		if (strata_shared->maintenance_pid != 0)
			kill(strata_shared->maintenance_pid, SIGUSR1);
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
		forget_worker_vset(tree_id);
		strata_tree_drop(&key, tree_id);
	}
	pfree(trees);
	pg_atomic_fetch_add_u64(&strata_shared->sweeps, 1);
	ConditionVariableBroadcast(&strata_shared->flush_cv);
}

/* ------------------------------------------------------------------------
 * Unlogged tables at shutdown (maintenance worker)
 * ------------------------------------------------------------------------
 */

/*
 * The longest a process waits for others in the two bounded waits below:
 * the worker at shutdown for the backends to be gone, and a backend with a
 * full registry for the worker's sweeps (ms).
 */
#define STRATA_BOUNDED_WAIT_MS 10000

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

		if (tree->persistence != RELPERSISTENCE_UNLOGGED)
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

					tree_dir_path(tree, dir, sizeof(dir));
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
	}
	pfree(trees);
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
	target = pg_atomic_read_u64(&strata_shared->sweeps) + 2;
	start = GetCurrentTimestamp();
	ConditionVariablePrepareToSleep(&strata_shared->flush_cv);
	while (pg_atomic_read_u64(&strata_shared->sweeps) < target &&
		   strata_shared->maintenance_pid != 0 &&
		   !TimestampDifferenceExceeds(start, GetCurrentTimestamp(), STRATA_BOUNDED_WAIT_MS))
	{
		kill(strata_shared->maintenance_pid, SIGUSR1);
		ConditionVariableTimedSleep(&strata_shared->flush_cv, 100, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
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

/* ------------------------------------------------------------------------
 * Recovery (postmaster)
 * ------------------------------------------------------------------------
 */

/*
 * Read tree's MANIFEST: WAL records at or below its log number are in its
 * SSTables, and row ids and sequences continue above what they hold.
 */
void
strata_recover_tree_manifest(StrataTree *tree)
{
	char		dir[MAXPGPATH];
	char		mpath[MAXPGPATH];
	sg_manifest_state st;
	sg_err		err = {0};
	sg_code		rc;

	tree_dir_path(tree, dir, sizeof(dir));
	rc = current_manifest_path(dir, mpath, sizeof(mpath), &err);
	if (rc == SG_NOT_FOUND)
		return;
	if (rc == SG_OK)
		rc = sg_manifest_replay(sg_env_posix(), mpath, &st, &err);
	if (rc != SG_OK)
	{
		/*
		 * One table's damage must not stop the cluster: the tree is
		 * refused (strata_tree_get), its log records are kept unapplied
		 * (strata_apply_batch), and nothing of it is deleted.
		 */
		if (rc == SG_NOT_FOUND)
			rc = SG_CORRUPTION;
		tree->damaged = true;
		strlcpy(tree->damage, err.msg, sizeof(tree->damage));
		ereport(WARNING,
				(errcode(rc == SG_CORRUPTION ? ERRCODE_DATA_CORRUPTED : ERRCODE_IO_ERROR),
				 errmsg("stratago: strata storage of relfilenode %u/%u/%u is damaged: %s",
						tree->key.node.spcNode, tree->key.node.dbNode, tree->key.node.relNode,
						err.msg),
				 errdetail("The table is refused until its files are restored or it is dropped; its changes in the log are kept."),
				 errhint("Restore the table from a backup, or drop it.")));
		return;
	}
	tree->flushed_lsn = st.log_number;
	tree->flushed_pglsn = st.aux_log_number;
	tree->l0_files = (int) st.version->nfiles[0];
	tree->next_seq = st.last_sequence + 1;

	/*
	 * Nothing is being written at startup: temporary files, outputs of a
	 * flush or compaction the crash interrupted before the MANIFEST named
	 * them, and old MANIFESTs are garbage.
	 */
	{
		const char *slash = strrchr(mpath, '/');

		remove_orphans(dir, st.version,
					   strtoull(slash + 1 + strlen("MANIFEST-"), NULL, 10));
	}
	for (int level = 0; level < SG_NUM_LEVELS; level++)
		for (size_t i = 0; i < st.version->nfiles[level]; i++)
		{
			sg_file_meta *m = st.version->files[level][i];
			sg_slice	largest = sg_file_meta_largest_user(m);
			StrataFileStats fs;

			if (m->largest_seq >= tree->next_seq)
				tree->next_seq = m->largest_seq + 1;
			if (largest.len == STRATA_ROWID_KEY_LEN &&
				sg_decode_be64(largest.data) >= tree->next_rowid)
				tree->next_rowid = sg_decode_be64(largest.data) + 1;
			/* rows compaction removed keep their ids: never hand them out again */
			if (strata_file_stats_parse(sg_buf_slice(&m->user_stats), &fs) &&
				fs.rowid_hwm > tree->next_rowid)
				tree->next_rowid = fs.rowid_hwm;
		}
	sg_version_unref(st.version, NULL, NULL);
}
