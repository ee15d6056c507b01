/*
 * concat_iter.c — one sorted level as one iterator (see merge.h).
 *
 * In levels 1 and deeper the files cover disjoint key ranges in order, so
 * a merge over them compares keys only to find that one file is always
 * smallest. Concatenating them makes the level a single merge child: a
 * scan of a table with many files pays a merge over (memtables + level-0
 * files + levels) instead of over every file, and a seek opens one file.
 *
 * Invariants:
 *  - cur is the child being read (n: past the end); every child before it
 *    is exhausted, and no child after it has been read;
 *  - when valid() is true, children[cur] is valid;
 *  - once failed is set it stays set: valid() is false and status()
 *    reports err, so a broken file never reads as the end of the level.
 */
#include "engine/merge/merge.h"

#include <stdlib.h>
#include <string.h>

#include "engine/base/ikey.h"

typedef struct concat_iter
{
	sg_iter		base;
	int			n;
	sg_iter   **children;
	sg_slice   *largest;		/* into keys */
	char	   *keys;
	int			cur;
	bool		failed;
	sg_err		err;
} concat_iter;

/* Move past exhausted children; fail-stop on a child's error. */
static void
skip_exhausted(concat_iter *c)
{
	while (c->cur < c->n && !sg_iter_valid(c->children[c->cur]))
	{
		if (sg_iter_status(c->children[c->cur], &c->err) != SG_OK)
		{
			c->failed = true;
			return;
		}
		if (++c->cur < c->n)
			sg_iter_seek_to_first(c->children[c->cur]);
	}
}

static bool
concat_valid(sg_iter *it)
{
	concat_iter *c = (concat_iter *) it;

	return !c->failed && c->cur < c->n;
}

static void
concat_seek_to_first(sg_iter *it)
{
	concat_iter *c = (concat_iter *) it;

	if (c->failed)
		return;
	c->cur = 0;
	if (c->n > 0)
		sg_iter_seek_to_first(c->children[0]);
	skip_exhausted(c);
}

static void
concat_seek(sg_iter *it, sg_slice target)
{
	concat_iter *c = (concat_iter *) it;
	int			lo = 0,
				hi = c->n;

	if (c->failed)
		return;
	/* the first child whose largest key is >= target */
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (sg_ikey_compare(c->largest[mid], target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	c->cur = lo;
	if (lo < c->n)
		sg_iter_seek(c->children[lo], target);
	skip_exhausted(c);
}

static void
concat_next(sg_iter *it)
{
	concat_iter *c = (concat_iter *) it;

	sg_iter_next(c->children[c->cur]);
	skip_exhausted(c);
}

static sg_slice
concat_key(sg_iter *it)
{
	concat_iter *c = (concat_iter *) it;

	return sg_iter_key(c->children[c->cur]);
}

static sg_slice
concat_value(sg_iter *it)
{
	concat_iter *c = (concat_iter *) it;

	return sg_iter_value(c->children[c->cur]);
}

static sg_code
concat_status(sg_iter *it, sg_err *err)
{
	concat_iter *c = (concat_iter *) it;

	if (!c->failed)
		return SG_OK;
	if (err != NULL)
		*err = c->err;
	return c->err.code;
}

static void
concat_destroy(sg_iter *it)
{
	concat_iter *c = (concat_iter *) it;

	for (int i = 0; i < c->n; i++)
		sg_iter_destroy(c->children[i]);
	free(c->children);
	free(c->largest);
	free(c->keys);
	free(c);
}

/* The current file's leaf: files do not overlap, so no bound is added. */
static sg_iter *
concat_leaf(sg_iter *it, sg_slice *bound)
{
	concat_iter *c = (concat_iter *) it;

	return sg_iter_leaf(c->children[c->cur], bound);
}

static void
concat_resync(sg_iter *it)
{
	concat_iter *c = (concat_iter *) it;

	if (c->failed || c->cur >= c->n)
		return;
	sg_iter_resync(c->children[c->cur]);
	skip_exhausted(c);
}

static const sg_iter_ops concat_ops = {
	concat_valid, concat_seek_to_first, concat_seek, concat_next,
	concat_key, concat_value, concat_status, concat_destroy,
	concat_leaf, concat_resync
};

sg_iter *
sg_concat_iter_new(sg_iter **children, const sg_slice *largest, int n)
{
	concat_iter *c = calloc(1, sizeof(*c));
	size_t		total = 0;

	for (int i = 0; i < n; i++)
		total += largest[i].len;
	if (c == NULL || (c->children = malloc(sizeof(sg_iter *) * (n ? n : 1))) == NULL ||
		(c->largest = malloc(sizeof(sg_slice) * (n ? n : 1))) == NULL ||
		(c->keys = malloc(total ? total : 1)) == NULL)
	{
		if (c != NULL)
		{
			free(c->children);
			free(c->largest);
			free(c);
		}
		for (int i = 0; i < n; i++)
			sg_iter_destroy(children[i]);
		return sg_iter_error(SG_NO_MEMORY, "out of memory concatenating a level");
	}
	c->base.ops = &concat_ops;
	c->n = n;
	if (n > 0)
		memcpy(c->children, children, sizeof(sg_iter *) * n);
	total = 0;
	for (int i = 0; i < n; i++)
	{
		memcpy(c->keys + total, largest[i].data, largest[i].len);
		c->largest[i] = sg_slice_make(c->keys + total, largest[i].len);
		total += largest[i].len;
	}
	c->cur = n;
	return &c->base;
}
