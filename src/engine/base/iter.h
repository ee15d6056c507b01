/*
 * iter.h — the one iterator interface shared by memtables, SSTable blocks,
 * whole SSTables, levels and the merging iterator.
 *
 * Iterators are forward-only and yield entries in internal-key order (see
 * ikey.h). key() and value() are valid until the next call that moves the
 * iterator or destroys it. After valid() turns false, status() tells
 * whether the end was real or an error (e.g. a corrupt block).
 *
 * Thread safety: an iterator belongs to one thread.
 */
#ifndef SG_ITER_H
#define SG_ITER_H

#include <stdbool.h>

#include "engine/base/slice.h"
#include "engine/base/status.h"

typedef struct sg_iter sg_iter;

typedef struct sg_iter_ops
{
	bool		(*valid) (sg_iter *it);
	void		(*seek_to_first) (sg_iter *it);
	/* Position at the first entry whose key is >= target. */
	void		(*seek) (sg_iter *it, sg_slice target);
	void		(*next) (sg_iter *it);	/* REQUIRES: valid() */
	sg_slice	(*key) (sg_iter *it);	/* REQUIRES: valid() */
	sg_slice	(*value) (sg_iter *it); /* REQUIRES: valid() */
	/* SG_OK, or the first error met (copied into err). */
	sg_code		(*status) (sg_iter *it, sg_err *err);
	void		(*destroy) (sg_iter *it);

	/*
	 * Optional (NULL: none on offer). The iterator that yields this one's
	 * next entries, unchanged and in the same order, for as long as their
	 * keys stay below *bound (len 0: no bound): a block's or a memtable's,
	 * found down through every layer above it. A reader may step the leaf
	 * itself instead of going through those layers for every entry; it
	 * must then call resync() before it moves or reads this iterator
	 * again. The leaf may have nothing below the bound. REQUIRES: valid().
	 */
	sg_iter    *(*leaf) (sg_iter *it, sg_slice *bound);
	/* Take up the position the leaf handed out by leaf() was stepped to. */
	void		(*resync) (sg_iter *it);
} sg_iter_ops;

struct sg_iter
{
	const sg_iter_ops *ops;
};

static inline bool
sg_iter_valid(sg_iter *it)
{
	return it->ops->valid(it);
}
static inline void
sg_iter_seek_to_first(sg_iter *it)
{
	it->ops->seek_to_first(it);
}
static inline void
sg_iter_seek(sg_iter *it, sg_slice target)
{
	it->ops->seek(it, target);
}
static inline void
sg_iter_next(sg_iter *it)
{
	it->ops->next(it);
}
static inline sg_slice
sg_iter_key(sg_iter *it)
{
	return it->ops->key(it);
}
static inline sg_slice
sg_iter_value(sg_iter *it)
{
	return it->ops->value(it);
}
static inline sg_code
sg_iter_status(sg_iter *it, sg_err *err)
{
	return it->ops->status(it, err);
}
static inline void
sg_iter_destroy(sg_iter *it)
{
	if (it != NULL)
		it->ops->destroy(it);
}

/*
 * The leaf of it (see sg_iter_ops.leaf), or NULL when it offers none.
 * REQUIRES: valid().
 */
static inline sg_iter *
sg_iter_leaf(sg_iter *it, sg_slice *bound)
{
	return it->ops->leaf != NULL ? it->ops->leaf(it, bound) : NULL;
}

/* After stepping the leaf of it: it takes up the leaf's position. */
static inline void
sg_iter_resync(sg_iter *it)
{
	if (it->ops->resync != NULL)
		it->ops->resync(it);
}

/* For an iterator that is its own leaf: no bound, nothing to resync. */
extern sg_iter *sg_iter_leaf_self(sg_iter *it, sg_slice *bound);

/* An iterator over nothing, or one that reports a fixed error. */
extern sg_iter *sg_iter_empty(void);
extern sg_iter *sg_iter_error(sg_code code, const char *msg);

#endif							/* SG_ITER_H */
