/*
 * merge_iter.c — k-way merge of internal-key iterators (see merge.h).
 *
 * The valid children sit in a binary min-heap ordered by their current
 * key (ties broken by child index, so equal keys come out lower index
 * first and the order is deterministic). The top of the heap is the
 * current entry; next() advances that one child and restores the heap in
 * O(log k).
 *
 * Invariants:
 *  - heap[0..heap_len) holds exactly the children that are valid, each
 *    with a key of at least SG_IKEY_TRAILER_LEN bytes, in heap order;
 *  - keys[c] is child c's current key whenever c is in the heap (but for
 *    the top child while a reader steps its leaf: merge_leaf). A child's
 *    key stays valid until that child moves, and only the merge moves its
 *    children, so heap comparisons and key() read the cached slices instead
 *    of calling down through every layer (level, table, block) each time;
 *  - once failed is set it stays set: valid() is false and status()
 *    reports err, whatever seek is called later;
 *  - every key a child has left behind is at or before the current entry
 *    (what lets a forward seek leave children alone: seek_forward);
 *  - runner_up, when not NO_RUNNER_UP, is the smallest child below the top
 *    (the lesser of heap[1] and heap[2]). Only the top child moves in
 *    next(), so it stays right until the heap is reordered; every path
 *    that reorders the heap forgets it.
 *
 * Why runner_up: a scan over a bottom level with a few newer files and a
 * memtable above it takes long runs of keys from one child. While the top
 * child's new key is still below the runner-up, next() costs one key
 * comparison instead of the two or more of a sift-down.
 */
#include "engine/merge/merge.h"

#include <stdlib.h>
#include <string.h>

#include "engine/base/ikey.h"

typedef struct merge_iter
{
	sg_iter		base;
	int			n;
	sg_iter   **children;
	sg_slice   *keys;			/* current key of each child in the heap */
	int		   *heap;			/* child indexes */
	int			heap_len;
	int			runner_up;		/* child index, or NO_RUNNER_UP */
	bool		failed;
	sg_err		err;
} merge_iter;

#define NO_RUNNER_UP (-1)

static bool
child_less(merge_iter *m, int a, int b)
{
	int			r = sg_ikey_compare(m->keys[a], m->keys[b]);

	return r < 0 || (r == 0 && a < b);
}

static void
sift_down(merge_iter *m, int i)
{
	m->runner_up = NO_RUNNER_UP;
	for (;;)
	{
		int			l = 2 * i + 1;
		int			r = l + 1;
		int			min = i;
		int			tmp;

		if (l < m->heap_len && child_less(m, m->heap[l], m->heap[min]))
			min = l;
		if (r < m->heap_len && child_less(m, m->heap[r], m->heap[min]))
			min = r;
		if (min == i)
			return;
		tmp = m->heap[i];
		m->heap[i] = m->heap[min];
		m->heap[min] = tmp;
		i = min;
	}
}

/*
 * Check child c after it moved: true if it is valid with a well-formed
 * key, which is then cached in keys[c]; otherwise false, after recording
 * any error it reports.
 */
static bool
child_usable(merge_iter *m, int c)
{
	sg_iter    *it = m->children[c];
	sg_err		e;
	sg_code		rc;

	if (sg_iter_valid(it))
	{
		sg_slice	k = sg_iter_key(it);

		m->keys[c] = k;
		if (k.len >= SG_IKEY_TRAILER_LEN)
			return true;
		m->failed = true;
		sg_error(&m->err, SG_CORRUPTION,
				 "merge: child %d yielded a %zu-byte key, too short for an internal key",
				 c, k.len);
		return false;
	}
	sg_err_clear(&e);
	rc = sg_iter_status(it, &e);
	if (rc != SG_OK && !m->failed)
	{
		m->failed = true;
		m->err = e;
		m->err.code = rc;
	}
	return false;
}

/* Rebuild the heap after every child was repositioned. */
static void
rebuild(merge_iter *m)
{
	m->heap_len = 0;
	m->runner_up = NO_RUNNER_UP;
	for (int c = 0; c < m->n; c++)
		if (child_usable(m, c))
			m->heap[m->heap_len++] = c;
	for (int i = m->heap_len / 2 - 1; i >= 0; i--)
		sift_down(m, i);
}

static bool
merge_valid(sg_iter *it)
{
	merge_iter *m = (merge_iter *) it;

	return !m->failed && m->heap_len > 0;
}

static void
merge_seek_to_first(sg_iter *it)
{
	merge_iter *m = (merge_iter *) it;

	if (m->failed)
		return;
	for (int c = 0; c < m->n; c++)
		sg_iter_seek_to_first(m->children[c]);
	rebuild(m);
}

/*
 * A seek past the current entry moves only the children that stand before
 * the target. Every key a child has left behind (yielded, or passed over
 * by an earlier seek) is at or before the current entry, so a child whose
 * current key is already >= target stands on its first key >= target, and
 * an exhausted child has nothing there. Skipping the rest of a hot row's
 * versions, or an index scan's step to the next row, then seeks only the
 * memtable or file that holds them, instead of reading a block of every
 * file of every level again.
 */
static bool
seek_forward(merge_iter *m, sg_slice target)
{
	int			kept = 0;

	if (m->heap_len == 0 || sg_ikey_compare(target, m->keys[m->heap[0]]) <= 0)
		return false;
	for (int i = 0; i < m->heap_len; i++)
	{
		int			c = m->heap[i];

		if (sg_ikey_compare(m->keys[c], target) < 0)
		{
			sg_iter_seek(m->children[c], target);
			if (!child_usable(m, c))
				continue;
		}
		m->heap[kept++] = c;	/* kept <= i: in place */
	}
	m->heap_len = kept;
	m->runner_up = NO_RUNNER_UP;
	for (int i = m->heap_len / 2 - 1; i >= 0; i--)
		sift_down(m, i);
	return true;
}

static void
merge_seek(sg_iter *it, sg_slice target)
{
	merge_iter *m = (merge_iter *) it;

	if (m->failed)
		return;
	if (target.len < SG_IKEY_TRAILER_LEN)
	{
		/* Children would compare past the end of a short target. */
		m->failed = true;
		sg_error(&m->err, SG_INVALID_ARGUMENT,
				 "merge: seek target of %zu bytes is not an internal key", target.len);
		return;
	}
	if (seek_forward(m, target))
		return;
	for (int c = 0; c < m->n; c++)
		sg_iter_seek(m->children[c], target);
	rebuild(m);
}

/* The smallest child below the top, remembered. REQUIRES: heap_len >= 2. */
static int
find_runner_up(merge_iter *m)
{
	if (m->runner_up == NO_RUNNER_UP)
		m->runner_up = (m->heap_len > 2 && child_less(m, m->heap[2], m->heap[1]))
			? m->heap[2] : m->heap[1];
	return m->runner_up;
}

/* The top child moved forward: restore the heap. */
static void
settle_top(merge_iter *m)
{
	int			top = m->heap[0];

	if (!child_usable(m, top))
	{
		m->heap[0] = m->heap[--m->heap_len];
		sift_down(m, 0);
		return;
	}
	if (m->heap_len < 2)
		return;
	if (child_less(m, top, find_runner_up(m)))
		return;					/* still the smallest: the heap holds */
	sift_down(m, 0);
}

static void
merge_next(sg_iter *it)
{
	merge_iter *m = (merge_iter *) it;

	if (!merge_valid(it))
		return;
	sg_iter_next(m->children[m->heap[0]]);
	settle_top(m);
}

/*
 * The top child's leaf, bounded by the runner-up's key: the top child's
 * entries below it come out of the merge one after another. While the
 * leaf is stepped, keys[top] is stale; resync() refreshes it. An entry
 * equal to the runner-up's key ends the leaf even where the tie would go
 * to the top child: the reader then steps the merge itself.
 */
static sg_iter *
merge_leaf(sg_iter *it, sg_slice *bound)
{
	merge_iter *m = (merge_iter *) it;
	sg_iter    *leaf;
	sg_slice	runner_up_key;

	if (!merge_valid(it))
		return NULL;
	leaf = sg_iter_leaf(m->children[m->heap[0]], bound);
	if (leaf == NULL || m->heap_len < 2)
		return leaf;
	runner_up_key = m->keys[find_runner_up(m)];
	if (bound->len == 0 || sg_ikey_compare(runner_up_key, *bound) < 0)
		*bound = runner_up_key;
	return leaf;
}

static void
merge_resync(sg_iter *it)
{
	merge_iter *m = (merge_iter *) it;

	if (!merge_valid(it))
		return;
	sg_iter_resync(m->children[m->heap[0]]);
	settle_top(m);
}

static sg_slice
merge_key(sg_iter *it)
{
	merge_iter *m = (merge_iter *) it;

	return m->keys[m->heap[0]];
}

static sg_slice
merge_value(sg_iter *it)
{
	merge_iter *m = (merge_iter *) it;

	return sg_iter_value(m->children[m->heap[0]]);
}

static sg_code
merge_status(sg_iter *it, sg_err *err)
{
	merge_iter *m = (merge_iter *) it;

	if (m->failed)
	{
		if (err != NULL)
			*err = m->err;
		return m->err.code;
	}
	for (int c = 0; c < m->n; c++)
	{
		sg_code		rc = sg_iter_status(m->children[c], err);

		if (rc != SG_OK)
			return rc;
	}
	return SG_OK;
}

static void
merge_destroy(sg_iter *it)
{
	merge_iter *m = (merge_iter *) it;

	for (int c = 0; c < m->n; c++)
		sg_iter_destroy(m->children[c]);
	free(m->children);
	free(m->keys);
	free(m->heap);
	free(m);
}

static const sg_iter_ops merge_ops = {
	merge_valid, merge_seek_to_first, merge_seek, merge_next,
	merge_key, merge_value, merge_status, merge_destroy,
	merge_leaf, merge_resync
};

sg_iter *
sg_merge_iter_new(sg_iter **children, int n)
{
	merge_iter *m;
	int			k = 0;

	if (n < 0)
		n = 0;
	m = calloc(1, sizeof(*m));
	if (m == NULL
		|| (m->children = malloc(sizeof(sg_iter *) * (size_t) (n ? n : 1))) == NULL
		|| (m->keys = malloc(sizeof(sg_slice) * (size_t) (n ? n : 1))) == NULL
		|| (m->heap = malloc(sizeof(int) * (size_t) (n ? n : 1))) == NULL)
	{
		if (m != NULL)
		{
			free(m->children);
			free(m->keys);
			free(m);
		}
		for (int c = 0; c < n; c++)
			sg_iter_destroy(children[c]);
		return sg_iter_error(SG_NO_MEMORY, "out of memory creating a merging iterator");
	}
	for (int c = 0; c < n; c++)
		if (children[c] != NULL)
			m->children[k++] = children[c];
	m->base.ops = &merge_ops;
	m->n = k;
	m->runner_up = NO_RUNNER_UP;
	sg_err_clear(&m->err);
	return &m->base;
}
