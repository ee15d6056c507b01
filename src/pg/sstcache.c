/*
 * sstcache.c — every backend's view of each tree's SSTables (sstcache.h):
 * the file list of the tree's current MANIFEST and open table readers (a
 * "local version"), shared by the scans of this backend and refreshed when
 * the tree's version number moves, as LevelDB's table cache keeps tables
 * open.
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

#include "engine/version/manifest.h"
#include "engine/merge/merge.h"
#include "pg/blockcache.h"
#include "pg/error.h"
#include "pg/hold.h"
#include "pg/sstcache.h"
#include "pg/tree.h"
#include "storage/proc.h"
#include "utils/memutils.h"

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

	/*
	 * The iterator this backend's point lookups in the file reuse (NULL
	 * until the first): it keeps the block it read last, so fetches of
	 * neighbouring rows (an index range scan) seek within that block
	 * instead of reading and decompressing it again each time.
	 */
	sg_iter    *lookup_it;
} ReaderEntry;

struct StrataLocalVersion
{
	int			refs;			/* the tree's current slot holds one */
	uint64		version_no;
	int			nfiles;
	ReaderEntry **files;		/* newest L0 first, then L1.., key order */
	int			level_start[SG_NUM_LEVELS + 1];
	uint64		raw_bytes;		/* uncompressed entries of all the files */
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

/* The live MANIFEST's path (sstcache.h; sg_current_read decides). */
sg_code
strata_current_manifest_path(const char *dir, char *path, size_t len, sg_err *err)
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
	if (re->lookup_it != NULL)
		sg_iter_destroy(re->lookup_it);
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
	/* the tree id and the file number name these bytes for good (blockcache.h) */
	sg_table_reader_set_block_cache(re->reader, strata_block_cache(), lt->tree_id, number);
	re->number = number;
	re->refs = 1;
	re->lookup_it = NULL;
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
	strata_tree_dir(tree, dir, sizeof(dir));
	rc = strata_current_manifest_path(dir, mpath, sizeof(mpath), &err);
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
				const sg_table_props *p = sg_table_reader_props(re->reader);

				lv->files[lv->nfiles++] = re;
				lv->raw_bytes += p->raw_key_bytes + p->raw_value_bytes;
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

/*
 * Iterators over the files for a merge (room for nfiles); returns the
 * count: one per level-0 file (their ranges overlap), newest first, then
 * one per non-empty deeper level, its files concatenated in key order
 * (sg_concat_iter_new), so a merge over a big table has a few children,
 * not one per file. They read through the block cache when asked to, or
 * when the files are small beside it (strata_block_cache_fits_scan).
 */
int
strata_local_version_iters(StrataLocalVersion *lv, sg_iter **iters, bool through_cache)
{
	bool		fill = through_cache || strata_block_cache_fits_scan(lv->raw_bytes);
	int			n = 0;

	for (int i = lv->level_start[0]; i < lv->level_start[1]; i++)
		iters[n++] = sg_table_reader_scan_iter(lv->files[i]->reader, fill);
	for (int level = 1; level < SG_NUM_LEVELS; level++)
	{
		int			first = lv->level_start[level];
		int			count = 0;
		sg_iter   **files = iters + n;
		sg_slice   *largest;

		if (lv->level_start[level + 1] == first)
			continue;
		largest = palloc(sizeof(sg_slice) * (lv->level_start[level + 1] - first));
		for (int i = first; i < lv->level_start[level + 1]; i++)
		{
			sg_table_reader *r = lv->files[i]->reader;
			const sg_table_props *p = sg_table_reader_props(r);

			if (p->num_entries == 0)
				continue;		/* nothing to yield, and no key range */
			files[count] = sg_table_reader_scan_iter(r, fill);
			largest[count++] = p->largest_key;
		}
		/* the concatenation takes the file iterators; its slot is the first */
		iters[n++] = sg_concat_iter_new(files, largest, count);
		pfree(largest);
	}
	return n;
}

/* The user key of an internal key (empty for a key too short to be one). */
static sg_slice
ikey_user_part(sg_slice ikey)
{
	return ikey.len >= SG_IKEY_TRAILER_LEN
		? sg_slice_make(ikey.data, ikey.len - SG_IKEY_TRAILER_LEN)
		: sg_slice_make(ikey.data, 0);
}

/*
 * Visit every version of key in one file, newest first, until fn says
 * stop; true then. Asks the file's bloom filter first when use_filter.
 * Uses the file's lookup iterator (ReaderEntry), made anew after an error.
 * REQUIRES: fn does not look up this file again (the values it is shown
 * live in that iterator's block until the next lookup).
 */
static bool
table_versions(ReaderEntry *re, sg_slice key, bool use_filter,
			   bool (*fn) (void *arg, uint64_t seq, sg_value_type type, sg_slice value),
			   void *arg)
{
	sg_iter    *it;
	bool		tombstone = false;
	sg_err		err;
	char		target[STRATA_ROWID_KEY_LEN + SG_IKEY_TRAILER_LEN];
	bool		maybe;

	if (key.len != STRATA_ROWID_KEY_LEN)
		return false;
	if (use_filter)
	{
		if (sg_table_reader_may_contain(re->reader, key, &maybe, &err) != SG_OK)
			strata_engine_error(err.code, &err);
		if (!maybe)
			return false;
	}
	/* seek to the newest version: the user key with the largest trailer */
	memcpy(target, key.data, key.len);
	sg_encode_fixed64(target + key.len, sg_ikey_pack_trailer(SG_MAX_SEQUENCE, SG_TYPE_FOR_SEEK));
	if (re->lookup_it == NULL)
		re->lookup_it = sg_table_reader_iter(re->reader);
	it = re->lookup_it;
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
	/* not cleared beforehand: a status other than SG_OK fills it */
	if (sg_iter_status(it, &err) != SG_OK)
	{
		/* its error is sticky: the next lookup starts over */
		sg_iter_destroy(it);
		re->lookup_it = NULL;
		strata_engine_error(err.code, &err);
	}
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
	int			deepest = SG_NUM_LEVELS - 1;

	/* level 0: files overlap, newest first */
	for (int i = lv->level_start[0]; i < lv->level_start[1]; i++)
		if (table_versions(lv->files[i], key, true, fn, arg))
			return true;

	/*
	 * Deeper levels: compaction cuts files only between user keys, so one
	 * file at most can hold key: the first whose largest user key is >=
	 * key, if its smallest is <= key. Its bloom filter is the only one
	 * consulted, not one per file; and none in the deepest level that has
	 * files (RocksDB's optimize_filters_for_hits). A lookup comes from an
	 * index entry or a TID, so its row exists: when it reaches the bottom,
	 * where most rows live, the filter nearly always answers "maybe", and
	 * asking it costs a probe of cold memory per lookup and, in a new
	 * backend, reading the largest filters of the tree (1.25 MB for a file
	 * of a million rows). A "no" it would have given costs an index seek
	 * and a block read instead; the answer is the same either way.
	 */
	while (deepest > 0 && lv->level_start[deepest + 1] == lv->level_start[deepest])
		deepest--;
	for (int level = 1; level < SG_NUM_LEVELS; level++)
	{
		int			lo = lv->level_start[level];
		int			hi = lv->level_start[level + 1];

		while (lo < hi)
		{
			int			mid = lo + (hi - lo) / 2;
			const sg_table_props *p = sg_table_reader_props(lv->files[mid]->reader);

			if (sg_slice_compare(ikey_user_part(p->largest_key), key) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < lv->level_start[level + 1] &&
			sg_slice_compare(ikey_user_part(sg_table_reader_props(lv->files[lo]->reader)->smallest_key),
							 key) <= 0 &&
			table_versions(lv->files[lo], key, level != deepest, fn, arg))
			return true;
	}
	return false;
}
