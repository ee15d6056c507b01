/*
 * version.c — building versions from edits, queries over a version, and
 * leveled compaction picking. No locks, no I/O: see version.h.
 */
#include "engine/version/version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/base/ikey.h"

sg_version *
sg_version_new_empty(void)
{
	sg_version *v = calloc(1, sizeof(*v));

	if (v != NULL)
		v->refs = 1;
	return v;
}

void
sg_version_ref(sg_version *v)
{
	v->refs++;
}

static void
meta_unref(sg_file_meta *m, sg_file_release_fn release, void *arg)
{
	if (--m->refs == 0)
	{
		if (release != NULL)
			release(arg, m);
		sg_file_meta_free(m);
		free(m);
	}
}

void
sg_version_unref(sg_version *v, sg_file_release_fn release, void *arg)
{
	if (v == NULL || --v->refs > 0)
		return;
	for (int l = 0; l < SG_NUM_LEVELS; l++)
	{
		for (size_t i = 0; i < v->nfiles[l]; i++)
			meta_unref(v->files[l][i], release, arg);
		free(v->files[l]);
	}
	free(v);
}

/* L0: newest first. */
static int
cmp_l0(const void *a, const void *b)
{
	const sg_file_meta *x = *(sg_file_meta *const *) a;
	const sg_file_meta *y = *(sg_file_meta *const *) b;

	if (x->largest_seq != y->largest_seq)
		return x->largest_seq > y->largest_seq ? -1 : 1;
	if (x->number != y->number)
		return x->number > y->number ? -1 : 1;
	return 0;
}

/* Ln: by smallest internal key. */
static int
cmp_ln(const void *a, const void *b)
{
	const sg_file_meta *x = *(sg_file_meta *const *) a;
	const sg_file_meta *y = *(sg_file_meta *const *) b;

	return sg_ikey_compare(sg_buf_slice(&x->smallest), sg_buf_slice(&y->smallest));
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a;
	uint64_t	y = *(const uint64_t *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

static bool
edit_deletes(const sg_version_edit *e, int level, uint64_t number)
{
	for (size_t i = 0; i < e->ndeleted; i++)
		if (e->deleted[i].number == number && e->deleted[i].level == level)
			return true;
	return false;
}

/* The base's meta for number if the edit deletes it (a move), else NULL. */
static sg_file_meta *
moved_meta(const sg_version *base, const sg_version_edit *e, uint64_t number)
{
	if (base == NULL)
		return NULL;
	for (int l = 0; l < SG_NUM_LEVELS; l++)
		for (size_t i = 0; i < base->nfiles[l]; i++)
			if (base->files[l][i]->number == number)
				return edit_deletes(e, l, number) ? base->files[l][i] : NULL;
	return NULL;
}

sg_code
sg_version_apply(const sg_version *base, const sg_version_edit *edit, const char *what,
				 sg_version **out, sg_err *err)
{
	sg_version *v;
	uint64_t   *numbers = NULL;
	size_t		nnumbers = 0;
	sg_code		rc = SG_OK;

	if (what == NULL)
		what = "version";
	if (edit->is_snapshot)
		base = NULL;
	if ((v = sg_version_new_empty()) == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory building a version");

	/* every deletion must name a file at that level of the base */
	for (size_t i = 0; i < edit->ndeleted; i++)
	{
		const sg_edit_deleted *d = &edit->deleted[i];
		bool		found = false;

		if (base != NULL)
			for (size_t j = 0; j < base->nfiles[d->level]; j++)
				if (base->files[d->level][j]->number == d->number)
					found = true;
		if (!found)
		{
			rc = sg_error(err, SG_CORRUPTION, "%s: edit deletes file %llu which is not at level %d",
						  what, (unsigned long long) d->number, d->level);
			goto fail;
		}
	}

	for (int l = 0; l < SG_NUM_LEVELS; l++)
	{
		size_t		cap = (base ? base->nfiles[l] : 0);

		for (size_t i = 0; i < edit->nadded; i++)
			if (edit->added[i].level == l)
				cap++;
		if (cap == 0)
			continue;
		v->files[l] = malloc(cap * sizeof(sg_file_meta *));
		if (v->files[l] == NULL)
		{
			rc = sg_error(err, SG_NO_MEMORY, "out of memory building a version");
			goto fail;
		}
		if (base != NULL)
			for (size_t j = 0; j < base->nfiles[l]; j++)
			{
				sg_file_meta *m = base->files[l][j];

				if (edit_deletes(edit, l, m->number))
					continue;
				m->refs++;
				v->files[l][v->nfiles[l]++] = m;
			}
		for (size_t i = 0; i < edit->nadded; i++)
		{
			sg_file_meta *m;

			if (edit->added[i].level != l)
				continue;
			m = moved_meta(base, edit, edit->added[i].meta.number);
			if (m == NULL && (m = sg_file_meta_clone(&edit->added[i].meta)) == NULL)
			{
				rc = sg_error(err, SG_NO_MEMORY, "out of memory building a version");
				goto fail;
			}
			m->refs++;
			v->files[l][v->nfiles[l]++] = m;
		}
		if (l == 0)
			qsort(v->files[l], v->nfiles[l], sizeof(sg_file_meta *), cmp_l0);
		else
			qsort(v->files[l], v->nfiles[l], sizeof(sg_file_meta *), cmp_ln);
		for (size_t j = 0; l > 0 && j + 1 < v->nfiles[l]; j++)
		{
			const sg_file_meta *a = v->files[l][j];
			const sg_file_meta *b = v->files[l][j + 1];

			if (sg_slice_compare(sg_file_meta_largest_user(a), sg_file_meta_smallest_user(b)) >= 0)
			{
				rc = sg_error(err, SG_CORRUPTION, "%s: files %llu and %llu overlap in level %d",
							  what, (unsigned long long) a->number,
							  (unsigned long long) b->number, l);
				goto fail;
			}
		}
	}

	/* a file number appears once in the whole version */
	nnumbers = sg_version_total_files(v);
	if (nnumbers > 0)
	{
		size_t		k = 0;

		if ((numbers = malloc(nnumbers * sizeof(uint64_t))) == NULL)
		{
			rc = sg_error(err, SG_NO_MEMORY, "out of memory building a version");
			goto fail;
		}
		for (int l = 0; l < SG_NUM_LEVELS; l++)
			for (size_t j = 0; j < v->nfiles[l]; j++)
				numbers[k++] = v->files[l][j]->number;
		qsort(numbers, nnumbers, sizeof(uint64_t), cmp_u64);
		for (size_t j = 0; j + 1 < nnumbers; j++)
			if (numbers[j] == numbers[j + 1])
			{
				rc = sg_error(err, SG_CORRUPTION, "%s: file %llu appears twice",
							  what, (unsigned long long) numbers[j]);
				goto fail;
			}
		free(numbers);
		numbers = NULL;
	}
	*out = v;
	return SG_OK;

fail:
	free(numbers);
	sg_version_unref(v, NULL, NULL);
	return rc;
}

bool
sg_version_has_file(const sg_version *v, uint64_t number, int *level)
{
	for (int l = 0; l < SG_NUM_LEVELS; l++)
		for (size_t i = 0; i < v->nfiles[l]; i++)
			if (v->files[l][i]->number == number)
			{
				if (level != NULL)
					*level = l;
				return true;
			}
	return false;
}

uint64_t
sg_version_level_bytes(const sg_version *v, int level)
{
	uint64_t	sum = 0;

	for (size_t i = 0; i < v->nfiles[level]; i++)
		sum += v->files[level][i]->file_size;
	return sum;
}

size_t
sg_version_total_files(const sg_version *v)
{
	size_t		n = 0;

	for (int l = 0; l < SG_NUM_LEVELS; l++)
		n += v->nfiles[l];
	return n;
}

/* Does the file's user range intersect [begin, end] (NULL = unbounded)? */
static bool
file_overlaps(const sg_file_meta *m, const sg_slice *begin, const sg_slice *end)
{
	if (begin != NULL && begin->data != NULL &&
		sg_slice_compare(sg_file_meta_largest_user(m), *begin) < 0)
		return false;
	if (end != NULL && end->data != NULL &&
		sg_slice_compare(sg_file_meta_smallest_user(m), *end) > 0)
		return false;
	return true;
}

sg_code
sg_version_overlapping(const sg_version *v, int level, const sg_slice *begin,
					   const sg_slice *end, sg_file_meta ***out, size_t *n, sg_err *err)
{
	sg_file_meta **arr = NULL;
	size_t		k = 0;

	*out = NULL;
	*n = 0;
	if (level < 0 || level >= SG_NUM_LEVELS)
		return sg_error(err, SG_INVALID_ARGUMENT, "level %d out of range", level);
	if (v->nfiles[level] == 0)
		return SG_OK;
	if ((arr = malloc(v->nfiles[level] * sizeof(*arr))) == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory listing overlapping files");
	for (size_t i = 0; i < v->nfiles[level]; i++)
		if (file_overlaps(v->files[level][i], begin, end))
			arr[k++] = v->files[level][i];
	if (k == 0)
	{
		free(arr);
		arr = NULL;
	}
	*out = arr;
	*n = k;
	return SG_OK;
}

long
sg_version_find_file(const sg_version *v, int level, sg_slice user_key)
{
	size_t		lo = 0,
				hi = v->nfiles[level];

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;

		if (sg_slice_compare(sg_file_meta_largest_user(v->files[level][mid]), user_key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == v->nfiles[level] ||
		sg_slice_compare(sg_file_meta_smallest_user(v->files[level][lo]), user_key) > 0)
		return -1;
	return (long) lo;
}

bool
sg_version_range_empty_below(const sg_version *v, int level, sg_slice begin, sg_slice end)
{
	for (int l = level + 1; l < SG_NUM_LEVELS; l++)
		for (size_t i = 0; i < v->nfiles[l]; i++)
			if (file_overlaps(v->files[l][i], &begin, &end))
				return false;
	return true;
}

/* ------------------------------------------------------------------ picking */

void
sg_picker_options_init(sg_picker_options *o)
{
	o->l0_trigger = 4;
	o->l1_target_bytes = UINT64_C(64) * 1024 * 1024;
	o->level_multiplier = 10;
}

uint64_t
sg_picker_level_target(const sg_picker_options *o, int level)
{
	uint64_t	t = o->l1_target_bytes ? o->l1_target_bytes : 1;

	for (int l = 1; l < level; l++)
		t *= (uint64_t) (o->level_multiplier > 1 ? o->level_multiplier : 10);
	return t;
}

/* Level-0 files that make level 0 due for compaction. */
static int
l0_trigger(const sg_picker_options *o)
{
	return o->l0_trigger > 0 ? o->l0_trigger : 4;
}

uint64_t
sg_picker_pending_bytes(const sg_picker_options *o, const uint64_t level_bytes[SG_NUM_LEVELS],
						const int level_files[SG_NUM_LEVELS])
{
	uint64_t	pending = 0;

	if (level_files[0] >= l0_trigger(o))
		pending += level_bytes[0];
	for (int level = 1; level < SG_NUM_LEVELS - 1; level++)
	{
		uint64_t	target = sg_picker_level_target(o, level);

		if (level_bytes[level] > target)
			pending += level_bytes[level] - target;
	}
	return pending;
}

double
sg_picker_level_score(const sg_version *v, const sg_picker_options *o, int level)
{
	if (level >= SG_NUM_LEVELS - 1)
		return 0.0;
	if (level == 0)
		return (double) v->nfiles[0] / (double) l0_trigger(o);
	return (double) sg_version_level_bytes(v, level) /
		(double) sg_picker_level_target(o, level);
}

void
sg_compaction_pick_free(sg_compaction_pick *p)
{
	free(p->inputs[0]);
	free(p->inputs[1]);
	sg_buf_free(&p->smallest_user);
	sg_buf_free(&p->largest_user);
	memset(p, 0, sizeof(*p));
}

/* Set the pick's user range to the union of the ranges of files. */
static void
widen_range(sg_compaction_pick *p, sg_file_meta **files, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		sg_slice	s = sg_file_meta_smallest_user(files[i]);
		sg_slice	l = sg_file_meta_largest_user(files[i]);

		if (p->smallest_user.data == NULL ||
			sg_slice_compare(s, sg_buf_slice(&p->smallest_user)) < 0)
		{
			sg_buf_reset(&p->smallest_user);
			sg_buf_append_slice(&p->smallest_user, s);
			/* an empty user key still needs a non-NULL data pointer */
			sg_buf_reserve(&p->smallest_user, 1);
		}
		if (p->largest_user.data == NULL ||
			sg_slice_compare(l, sg_buf_slice(&p->largest_user)) > 0)
		{
			sg_buf_reset(&p->largest_user);
			sg_buf_append_slice(&p->largest_user, l);
			sg_buf_reserve(&p->largest_user, 1);
		}
	}
}

/* Given inputs[0] at p->level, add level+1 overlaps and the flags. */
static sg_code
complete_pick(const sg_version *v, sg_compaction_pick *p, bool allow_move, sg_err *err)
{
	sg_slice	s,
				l;
	sg_code		rc;

	widen_range(p, p->inputs[0], p->ninputs[0]);
	s = sg_buf_slice(&p->smallest_user);
	l = sg_buf_slice(&p->largest_user);
	rc = sg_version_overlapping(v, p->level + 1, &s, &l, &p->inputs[1], &p->ninputs[1], err);
	if (rc != SG_OK)
		return rc;
	widen_range(p, p->inputs[1], p->ninputs[1]);
	if (sg_buf_failed(&p->smallest_user) || sg_buf_failed(&p->largest_user))
		return sg_error(err, SG_NO_MEMORY, "out of memory picking a compaction");
	s = sg_buf_slice(&p->smallest_user);
	l = sg_buf_slice(&p->largest_user);
	p->trivial_move = allow_move && p->ninputs[0] == 1 && p->ninputs[1] == 0;
	p->bottommost = sg_version_range_empty_below(v, p->level + 1, s, l);
	return SG_OK;
}

sg_code
sg_pick_compaction(const sg_version *v, const sg_picker_options *o,
				   sg_compaction_pick *out, sg_err *err)
{
	int			best = -1;
	double		best_score = 1.0;
	sg_code		rc;

	memset(out, 0, sizeof(*out));
	for (int l = 0; l < SG_NUM_LEVELS - 1; l++)
	{
		double		s = sg_picker_level_score(v, o, l);

		if (s >= best_score && v->nfiles[l] > 0)
		{
			best = l;
			best_score = s;
		}
	}
	if (best < 0)
		return SG_NOT_FOUND;
	out->level = best;
	if (best == 0)
	{
		out->ninputs[0] = v->nfiles[0];
		out->inputs[0] = malloc(v->nfiles[0] * sizeof(sg_file_meta *));
		if (out->inputs[0] == NULL)
			return sg_error(err, SG_NO_MEMORY, "out of memory picking a compaction");
		memcpy(out->inputs[0], v->files[0], v->nfiles[0] * sizeof(sg_file_meta *));
	}
	else
	{
		size_t		pick = 0;

		for (size_t i = 1; i < v->nfiles[best]; i++)
			if (v->files[best][i]->smallest_seq < v->files[best][pick]->smallest_seq)
				pick = i;
		out->inputs[0] = malloc(sizeof(sg_file_meta *));
		if (out->inputs[0] == NULL)
			return sg_error(err, SG_NO_MEMORY, "out of memory picking a compaction");
		out->inputs[0][0] = v->files[best][pick];
		out->ninputs[0] = 1;
	}
	if ((rc = complete_pick(v, out, true, err)) != SG_OK)
		sg_compaction_pick_free(out);
	return rc;
}

sg_code
sg_pick_range(const sg_version *v, int level, const sg_slice *begin, const sg_slice *end,
			  sg_compaction_pick *out, sg_err *err)
{
	sg_code		rc;

	memset(out, 0, sizeof(*out));
	if (level < 0 || level >= SG_NUM_LEVELS - 1)
		return sg_error(err, SG_INVALID_ARGUMENT, "cannot compact level %d", level);
	rc = sg_version_overlapping(v, level, begin, end, &out->inputs[0], &out->ninputs[0], err);
	if (rc != SG_OK)
		return rc;
	if (out->ninputs[0] == 0)
		return SG_NOT_FOUND;
	if (level == 0 && out->ninputs[0] != v->nfiles[0])
	{
		/* keep L0's newest-first order simple: take every L0 file */
		sg_file_meta **all = realloc(out->inputs[0], v->nfiles[0] * sizeof(sg_file_meta *));

		if (all == NULL)
		{
			sg_compaction_pick_free(out);
			return sg_error(err, SG_NO_MEMORY, "out of memory picking a compaction");
		}
		memcpy(all, v->files[0], v->nfiles[0] * sizeof(sg_file_meta *));
		out->inputs[0] = all;
		out->ninputs[0] = v->nfiles[0];
	}
	out->level = level;
	if ((rc = complete_pick(v, out, false, err)) != SG_OK)
		sg_compaction_pick_free(out);
	return rc;
}
