/*
 * view_iter.c — the visible view and the versions view over a merged
 * internal-key stream (see merge.h and README.md).
 *
 * Both walk the internal stream once, forward, and rely on its order:
 * versions of one user key are adjacent and newest first, so the first
 * version with seq <= snapshot is the newest visible one, and a tombstone
 * hides everything after it up to the next user key.
 *
 * Invariants while valid():
 *  - the internal iterator sits on the current entry, whose sequence is
 *    <= snapshot;
 *  - view mode: that entry is the newest visible version of its user key
 *    and is not a tombstone;
 *  - versions mode: no tombstone of the same user key came before it.
 * skip holds a copy of a user key whose remaining versions must be passed
 * over (the key we just left), because the internal key it came from is
 * gone once the internal iterator moves.
 */
#include "engine/merge/merge.h"

#include <stdlib.h>

#include "engine/base/ikey.h"

typedef struct view_iter
{
	sg_iter		base;
	sg_iter    *internal;
	uint64_t	snapshot;
	bool		versions;		/* versions mode, else view mode */
	bool		valid;
	sg_value_type cur_type;		/* type of the current entry */
	sg_buf		skip;			/* user key whose versions to pass over */
	bool		skipping;
	bool		failed;			/* sticky: our own error, in err */
	sg_err		err;
	sg_buf		seek_key;		/* scratch for building seek targets */
} view_iter;

/*
 * Versions of one key passed over one by one before the rest are skipped
 * with a seek (RocksDB's max_sequential_skip_in_iterations): a hot row
 * may have thousands of versions in a memtable, and stepping over each on
 * every scan made scans of small, often-updated tables cost O(versions).
 */
#define SG_MAX_SEQUENTIAL_SKIP 8

static const sg_iter_ops view_ops;
static const sg_iter_ops versions_ops;

/* Remember the current user key, so that its older versions get skipped. */
static bool
remember_user_key(view_iter *v, sg_slice user_key)
{
	sg_buf_reset(&v->skip);
	sg_buf_append(&v->skip, user_key.data, user_key.len);
	if (sg_buf_failed(&v->skip))
	{
		v->failed = true;
		v->valid = false;
		sg_error(&v->err, SG_NO_MEMORY, "out of memory in a view iterator");
		return false;
	}
	v->skipping = true;
	return true;
}

/*
 * Move forward from the internal iterator's position to the next entry
 * this view yields, or to the end.
 */
static void
find_entry(view_iter *v)
{
	int			skipped = 0;

	v->valid = false;
	while (!v->failed && sg_iter_valid(v->internal))
	{
		sg_slice	k = sg_iter_key(v->internal);
		sg_parsed_ikey p;

		if (!sg_ikey_parse(k, &p))
		{
			v->failed = true;
			sg_error(&v->err, SG_CORRUPTION,
					 "bad internal key of %zu bytes in a merged stream", k.len);
			return;
		}
		if (v->skipping)
		{
			if (sg_slice_equal(p.user_key, sg_buf_slice(&v->skip)))
			{
				if (++skipped < SG_MAX_SEQUENTIAL_SKIP)
				{
					sg_iter_next(v->internal);
					continue;
				}

				/*
				 * Seek to the key's oldest possible entry (sequence 0, the
				 * lowest type): it sorts after every other version of it.
				 */
				skipped = 0;
				sg_buf_reset(&v->seek_key);
				sg_ikey_append(&v->seek_key, sg_buf_slice(&v->skip), 0, SG_TYPE_DELETE);
				if (sg_buf_failed(&v->seek_key))
				{
					v->failed = true;
					sg_error(&v->err, SG_NO_MEMORY, "out of memory seeking a view iterator");
					return;
				}
				sg_iter_seek(v->internal, sg_buf_slice(&v->seek_key));
				continue;
			}
			v->skipping = false;
		}
		if (p.seq > v->snapshot)
		{
			/* Too new for this snapshot; an older version may follow. */
			sg_iter_next(v->internal);
			continue;
		}
		if (!v->versions && p.type == SG_TYPE_DELETE)
		{
			/* The newest visible version is a tombstone: no such key. */
			if (!remember_user_key(v, p.user_key))
				return;
			sg_iter_next(v->internal);
			continue;
		}
		v->cur_type = p.type;
		v->valid = true;
		return;
	}
}

static bool
view_valid(sg_iter *it)
{
	return ((view_iter *) it)->valid;
}

static void
view_seek_to_first(sg_iter *it)
{
	view_iter  *v = (view_iter *) it;

	v->valid = false;
	if (v->failed)
		return;
	v->skipping = false;
	sg_iter_seek_to_first(v->internal);
	find_entry(v);
}

static void
view_seek(sg_iter *it, sg_slice user_key)
{
	view_iter  *v = (view_iter *) it;

	v->valid = false;
	if (v->failed)
		return;
	/* The newest version a snapshot may see sorts first among its key's. */
	sg_buf_reset(&v->seek_key);
	sg_ikey_append(&v->seek_key, user_key, v->snapshot, SG_TYPE_FOR_SEEK);
	if (sg_buf_failed(&v->seek_key))
	{
		v->failed = true;
		sg_error(&v->err, SG_NO_MEMORY, "out of memory seeking a view iterator");
		return;
	}
	v->skipping = false;
	sg_iter_seek(v->internal, sg_buf_slice(&v->seek_key));
	find_entry(v);
}

/* Leave the current entry; skip_rest passes over its key's older versions. */
static void
advance(view_iter *v, bool skip_rest)
{
	if (!v->valid)
		return;
	if (skip_rest && !remember_user_key(v, sg_ikey_user_key(sg_iter_key(v->internal))))
		return;
	sg_iter_next(v->internal);
	find_entry(v);
}

static void
view_next(sg_iter *it)
{
	view_iter  *v = (view_iter *) it;

	/* The view yields one version per key; versions stop at a tombstone. */
	advance(v, !v->versions || v->cur_type == SG_TYPE_DELETE);
}

static sg_slice
view_key(sg_iter *it)
{
	view_iter  *v = (view_iter *) it;
	sg_slice	k = sg_iter_key(v->internal);

	return v->versions ? k : sg_ikey_user_key(k);
}

static sg_slice
view_value(sg_iter *it)
{
	return sg_iter_value(((view_iter *) it)->internal);
}

static sg_code
view_status(sg_iter *it, sg_err *err)
{
	view_iter  *v = (view_iter *) it;

	if (v->failed)
	{
		if (err != NULL)
			*err = v->err;
		return v->err.code;
	}
	return sg_iter_status(v->internal, err);
}

static void
view_destroy(sg_iter *it)
{
	view_iter  *v = (view_iter *) it;

	sg_iter_destroy(v->internal);
	sg_buf_free(&v->skip);
	sg_buf_free(&v->seek_key);
	free(v);
}

static const sg_iter_ops view_ops = {
	view_valid, view_seek_to_first, view_seek, view_next,
	view_key, view_value, view_status, view_destroy, NULL, NULL
};

/*
 * A versions view that hides nothing by sequence (snapshot
 * SG_MAX_SEQUENCE) offers the leaf of its internal stream: its reader
 * sees the stream as is, and must itself pass over the versions a
 * tombstone hides (merge.h).
 */
static sg_iter *
versions_leaf(sg_iter *it, sg_slice *bound)
{
	view_iter  *v = (view_iter *) it;

	if (!v->valid || v->snapshot != SG_MAX_SEQUENCE)
		return NULL;
	return sg_iter_leaf(v->internal, bound);
}

static void
versions_resync(sg_iter *it)
{
	view_iter  *v = (view_iter *) it;

	if (!v->valid)
		return;
	sg_iter_resync(v->internal);
	v->skipping = false;
	find_entry(v);
}

static const sg_iter_ops versions_ops = {
	view_valid, view_seek_to_first, view_seek, view_next,
	view_key, view_value, view_status, view_destroy,
	versions_leaf, versions_resync
};

static sg_iter *
view_new(sg_iter *internal, uint64_t snapshot, bool versions)
{
	view_iter  *v = calloc(1, sizeof(*v));

	if (internal == NULL)
		internal = sg_iter_empty();
	if (v == NULL)
	{
		sg_iter_destroy(internal);
		return sg_iter_error(SG_NO_MEMORY, "out of memory creating a view iterator");
	}
	v->base.ops = versions ? &versions_ops : &view_ops;
	v->internal = internal;
	/* Sequences are 56 bits; a larger snapshot would not pack into a key. */
	v->snapshot = snapshot > SG_MAX_SEQUENCE ? SG_MAX_SEQUENCE : snapshot;
	v->versions = versions;
	sg_buf_init(&v->skip);
	sg_buf_init(&v->seek_key);
	sg_err_clear(&v->err);
	return &v->base;
}

sg_iter *
sg_view_iter_new(sg_iter *internal, uint64_t snapshot)
{
	return view_new(internal, snapshot, false);
}

sg_iter *
sg_versions_iter_new(sg_iter *internal, uint64_t snapshot)
{
	return view_new(internal, snapshot, true);
}

void
sg_versions_iter_next_key(sg_iter *it)
{
	if (it == NULL || it->ops != &versions_ops)
		return;
	advance((view_iter *) it, true);
}
