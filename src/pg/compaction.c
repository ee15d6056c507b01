/*
 * compaction.c — compaction of a tree by the maintenance worker
 * (compaction.h): picking, the MVCC filter that drops versions no snapshot
 * can see and freezes the rest, and installing the result in the MANIFEST
 * before the inputs are unlinked.
 */
#include "postgres.h"

#include "engine/compact/compact.h"
#include "pg/compaction.h"
#include "pg/error.h"
#include "pg/filestats.h"
#include "pg/jobprogress.h"
#include "pg/rowversion.h"
#include "pg/throttle.h"
#include "pg/tree.h"
#include "pg/vset.h"
#include "storage/procarray.h"

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

		/*
		 * Row data every snapshot sees, the oldest version kept: at the
		 * bottom it is written with sequence 0 (the engine checks where
		 * that is allowed), so consecutive rows' keys differ only in
		 * their row ids, which compresses. No two versions of a row get
		 * 0, so readers' test for a version seen twice (equal sequences,
		 * read.c) still holds.
		 */
		fv[i].zero_seq = v.kind == STRATA_DATA;
		if (v.kind == STRATA_DATA &&
			!strata_version_is_packed(fv[i].value.data, fv[i].value.len))
		{
			/* frozen row data is stored packed (rowversion.h) */
			strata_version_encode_packed_frozen(&gc->rewrite, &v);
			fv[i].decision = SG_FILTER_REWRITE;
			fv[i].new_value = sg_slice_make(gc->rewrite.data, gc->rewrite.len);
			if (!(v.flags & STRATA_VF_FROZEN))
				gc->frozen++;
		}
		else if (!(v.flags & STRATA_VF_FROZEN))
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
	oti_status, oti_destroy, NULL, NULL
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
 * A pick that rewrites file m of level (>= 1) in place: "level - 1 into
 * level" with no input at level - 1, so the outputs land at the file's own
 * level and cover no more than its key range.
 */
static void
pick_in_place(const sg_version *v, int level, sg_file_meta *m, sg_compaction_pick *pick)
{
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
}

/*
 * A rewrite in place of the first file at level >= 1, numbered below
 * `below`, that needs freezing. Without it, old unfrozen versions at
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
			pick_in_place(v, level, m, pick);
			return SG_OK;
		}
	return SG_NOT_FOUND;
}

/*
 * The codec compaction writes into tree's bottom level: the table's own
 * choice (stratago.set_compression, treeopts.c), else the setting
 * stratago.bottom_compression.
 */
static sg_codec
bottom_codec(const StrataTree *tree)
{
	switch ((StrataTreeCodec) tree->bottom_codec)
	{
		case STRATA_TREE_CODEC_LZ4:
			return SG_CODEC_LZ4;
		case STRATA_TREE_CODEC_ZSTD:
			return SG_CODEC_ZSTD;
		case STRATA_TREE_CODEC_DEFAULT:
			break;
	}
	return strata_bottom_compression == STRATA_CODEC_ZSTD ? SG_CODEC_ZSTD : SG_CODEC_LZ4;
}

/*
 * A rewrite in place of the first file of the deepest level that was built
 * with another codec than that level's (stratago.compact() after the
 * setting or the table's choice changed: files at rest would otherwise
 * keep their codec until
 * new data reached them). Reads each file's properties; only compact()
 * and an aggressive VACUUM ask, so the worker's own rounds never pay.
 */
static sg_code
pick_recodec(const StrataTree *tree, const sg_version *v, const char *dir,
			 sg_compaction_pick *pick, sg_err *err)
{
	int			level = SG_NUM_LEVELS - 1;

	while (level > 0 && v->nfiles[level] == 0)
		level--;
	if (level == 0)
		return SG_NOT_FOUND;
	for (size_t i = 0; i < v->nfiles[level]; i++)
	{
		sg_file_meta *m = v->files[level][i];
		char		path[MAXPGPATH];
		sg_table_reader *r;
		sg_codec	codec;
		sg_code		rc;

		sg_sst_path(path, sizeof(path), dir, m->number);
		if ((rc = sg_table_reader_open(sg_env_posix(), path, &r, err)) != SG_OK)
			return rc;
		codec = sg_table_reader_props(r)->codec;
		sg_table_reader_close(r);
		if (codec != bottom_codec(tree))
		{
			pick_in_place(v, level, m, pick);
			return SG_OK;
		}
	}
	return SG_NOT_FOUND;
}

/*
 * Run one compaction of tree: the most urgent one; with COMPACT_MANUAL
 * every file of the shallowest non-empty level that has a level below it;
 * with COMPACT_FREEZE one file (numbered below freeze_below) that holds
 * versions to freeze, rewritten at its level. Returns false when there
 * was nothing to do.
 */
bool
strata_compact_one(StrataTree *tree, CompactMode mode, uint64 freeze_below)
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
	vs = strata_worker_vset(tree);
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
		if (rc == SG_NOT_FOUND)
		{
			strata_tree_dir(tree, dir, sizeof(dir));
			rc = pick_recodec(tree, v, dir, &pick, &err);
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

	{
		uint64		input_bytes = 0;

		for (int which = 0; which < 2; which++)
			for (size_t i = 0; i < pick.ninputs[which]; i++)
				input_bytes += pick.inputs[which][i]->file_size;
		strata_job_progress_begin(mode == COMPACT_MANUAL ? STRATA_JOB_MANUAL_COMPACTION
								  : mode == COMPACT_FREEZE ? STRATA_JOB_FREEZE_COMPACTION
								  : STRATA_JOB_COMPACTION,
								  &tree->key.node, pick.level, input_bytes);
	}
	sg_version_ref(v);
	strata_tree_dir(tree, dir, sizeof(dir));
	sg_version_edit_init(&edit);
	if (pick.trivial_move)
		rc = sg_compact_trivial_move(&pick, &edit, &err);
	else
	{
		sg_compact_job job;
		sg_table_options topts;

		/*
		 * lz4 where files are rewritten soon; the table's or the setting's
		 * codec at the bottom, where most of the table stays.
		 */
		sg_table_options_init(&topts);
		if (pick.bottommost)
			topts.codec = bottom_codec(tree);

		memset(&job, 0, sizeof(job));
		job.table_opts = &topts;
		job.env = strata_maintenance_env();
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
		strata_stats_acc_init(&acc, inputs_hwm(&pick));
		job.observe = strata_stats_observe;
		job.user_stats = strata_stats_finish;
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

	strata_job_progress_end();
	LWLockAcquire(&tree->lock, LW_EXCLUSIVE);
	tree->version_no++;
	tree->l0_files = (int) vs->current->nfiles[0];
	tree->compactions++;
	tree->compaction_bytes += stats.bytes_written;
	tree->last_compaction = GetCurrentTimestamp();
	tree->versions_dropped += gc.dropped;
	tree->versions_frozen += gc.frozen;
	LWLockRelease(&tree->lock);
	pfree(gc.rewrite.data);
	return true;
}
