/*
 * vset.c — the maintenance worker's open version sets (vset.h): one MANIFEST
 * writer per tree it flushes or compacts, opened on first use (the orphans
 * of an interrupted job swept then), a bounded number kept, forgotten when
 * a job fails or the tree is dropped.
 */
#include "postgres.h"

#include "pg/error.h"
#include "pg/tree.h"
#include "pg/vset.h"
#include "storage/fd.h"
#include "storage/proc.h"
#include "utils/memutils.h"

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
void
strata_remove_orphans(const char *dir, const sg_version *v, uint64 live_manifest)
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

sg_vset *
strata_worker_vset(StrataTree *tree)
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
		strata_tree_dir(tree, dir, sizeof(dir));
		memset(&opts, 0, sizeof(opts));
		opts.create_if_missing = true;
		LWLockAcquire(&tree->manifest_lock, LW_EXCLUSIVE);
		rc = sg_vset_open(sg_env_posix(), dir, &opts, &wt->vset, &err);
		if (rc == SG_OK)
			strata_remove_orphans(dir, wt->vset->current, wt->vset->manifest_number);
		LWLockRelease(&tree->manifest_lock);
		if (rc != SG_OK)
		{
			hash_search(worker_trees, &tree->tree_id, HASH_REMOVE, NULL);
			strata_engine_error(rc, &err);
		}
	}
	return wt->vset;
}

/* The worker forgets its MANIFEST handle of a tree (reopened on next use). */
void
strata_forget_worker_vset(uint64 tree_id)
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

void
strata_forget_all_worker_vsets(void)
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
