/*
 * iter.c — trivial iterators: empty, and one that only reports an error
 * (returned where building a real iterator failed, so callers have one
 * error path).
 */
#include "engine/base/iter.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

typedef struct fixed_iter
{
	sg_iter		base;
	sg_code		code;
	char		msg[SG_ERR_MSG_LEN];
} fixed_iter;

static bool
fixed_valid(sg_iter *it)
{
	(void) it;
	return false;
}

static void
fixed_seek_to_first(sg_iter *it)
{
	(void) it;
}

static void
fixed_seek(sg_iter *it, sg_slice target)
{
	(void) it;
	(void) target;
}

static void
fixed_next(sg_iter *it)
{
	(void) it;
}

static sg_slice
fixed_slice(sg_iter *it)
{
	(void) it;
	return sg_slice_make(NULL, 0);
}

static sg_code
fixed_status(sg_iter *it, sg_err *err)
{
	fixed_iter *f = (fixed_iter *) it;

	if (f->code != SG_OK)
		return sg_error(err, f->code, "%s", f->msg);
	return SG_OK;
}

static void
fixed_destroy(sg_iter *it)
{
	free(it);
}

static const sg_iter_ops fixed_ops = {
	fixed_valid, fixed_seek_to_first, fixed_seek, fixed_next,
	fixed_slice, fixed_slice, fixed_status, fixed_destroy, NULL, NULL
};

/* If even this allocation fails, hand out a static iterator that reports it. */
static fixed_iter oom_iter = {{&fixed_ops}, SG_NO_MEMORY, "out of memory creating an iterator"};

static void
oom_destroy(sg_iter *it)
{
	(void) it;
}

static const sg_iter_ops oom_ops = {
	fixed_valid, fixed_seek_to_first, fixed_seek, fixed_next,
	fixed_slice, fixed_slice, fixed_status, oom_destroy, NULL, NULL
};

sg_iter *
sg_iter_error(sg_code code, const char *msg)
{
	fixed_iter *f = calloc(1, sizeof(*f));

	if (f == NULL)
	{
		oom_iter.base.ops = &oom_ops;
		return &oom_iter.base;
	}
	f->base.ops = &fixed_ops;
	f->code = code;
	if (msg)
		snprintf(f->msg, sizeof(f->msg), "%s", msg);
	return &f->base;
}

sg_iter *
sg_iter_empty(void)
{
	return sg_iter_error(SG_OK, NULL);
}

sg_iter *
sg_iter_leaf_self(sg_iter *it, sg_slice *bound)
{
	*bound = sg_slice_make(NULL, 0);
	return it;
}
