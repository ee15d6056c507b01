/*
 * test_merge.c — unit tests for the merging iterator and the visible and
 * versions views on top of it, checked against a reference model built
 * from the same random data: the merge equals the sorted union, seeks land
 * where a binary search of that union says, each view matches what the
 * model computes at several snapshots (tombstones included), child errors
 * and malformed keys surface through status(), empty inputs are fine.
 *
 * The children are a test-only iterator over a sorted in-memory array, so
 * these tests depend on nothing but base/ and merge/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/base/ikey.h"
#include "engine/base/iter.h"
#include "engine/merge/merge.h"
#include "testutil.h"

/* ------------------------------------------------ test data and model */

typedef struct entry
{
	char		ukey[16];
	uint64_t	seq;
	sg_value_type type;
	char		val[24];
	char		ikey[16 + 8];	/* ukey || trailer */
	size_t		ikey_len;
} entry;

static void
entry_make(entry *e, const char *ukey, uint64_t seq, sg_value_type type)
{
	snprintf(e->ukey, sizeof(e->ukey), "%s", ukey);
	e->seq = seq;
	e->type = type;
	snprintf(e->val, sizeof(e->val), "%s@%llu", ukey, (unsigned long long) seq);
	memcpy(e->ikey, ukey, strlen(ukey));
	sg_encode_fixed64(e->ikey + strlen(ukey), sg_ikey_pack_trailer(seq, type));
	e->ikey_len = strlen(ukey) + 8;
}

static sg_slice
entry_ikey(const entry *e)
{
	return sg_slice_make(e->ikey, e->ikey_len);
}

static int
entry_cmp(const void *a, const void *b)
{
	return sg_ikey_compare(entry_ikey(a), entry_ikey(b));
}

/* -------------------------------- a sorted-array iterator (test only) */

typedef struct array_iter
{
	sg_iter		base;
	entry	   *e;				/* sorted by internal key, owned */
	size_t		n;
	size_t		pos;			/* n: not valid */
	size_t		fail_at;		/* reaching this index reports an error */
	bool		failed;
} array_iter;

/* Calls of the array iterators' key(), their positioning methods, seek(). */
static size_t array_key_calls;
static size_t array_moves;
static size_t array_seeks;

static void
array_check_fail(array_iter *a)
{
	if (a->pos < a->n && a->pos >= a->fail_at)
	{
		a->failed = true;
		a->pos = a->n;
	}
}

static bool
array_valid(sg_iter *it)
{
	array_iter *a = (array_iter *) it;

	return !a->failed && a->pos < a->n;
}

static void
array_seek_to_first(sg_iter *it)
{
	array_iter *a = (array_iter *) it;

	a->pos = 0;
	array_moves++;
	array_check_fail(a);
}

static void
array_seek(sg_iter *it, sg_slice target)
{
	array_iter *a = (array_iter *) it;
	size_t		lo = 0,
				hi = a->n;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;

		if (sg_ikey_compare(entry_ikey(&a->e[mid]), target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	a->pos = lo;
	array_moves++;
	array_seeks++;
	array_check_fail(a);
}

static void
array_next(sg_iter *it)
{
	array_iter *a = (array_iter *) it;

	a->pos++;
	array_moves++;
	array_check_fail(a);
}

static sg_slice
array_key(sg_iter *it)
{
	array_iter *a = (array_iter *) it;

	array_key_calls++;
	return entry_ikey(&a->e[a->pos]);
}

static sg_slice
array_value(sg_iter *it)
{
	array_iter *a = (array_iter *) it;

	return sg_slice_from_cstr(a->e[a->pos].val);
}

static sg_code
array_status(sg_iter *it, sg_err *err)
{
	array_iter *a = (array_iter *) it;

	if (a->failed)
		return sg_error(err, SG_CORRUPTION, "child broke at entry %zu", a->fail_at);
	return SG_OK;
}

static void
array_destroy(sg_iter *it)
{
	array_iter *a = (array_iter *) it;

	free(a->e);
	free(a);
}

static const sg_iter_ops array_ops = {
	array_valid, array_seek_to_first, array_seek, array_next,
	array_key, array_value, array_status, array_destroy,
	sg_iter_leaf_self, NULL
};

/* An iterator over a sorted copy of e[0..n); fails on reaching fail_at. */
static sg_iter *
array_iter_new(const entry *e, size_t n, size_t fail_at)
{
	array_iter *a = calloc(1, sizeof(*a));

	assert_non_null(a);
	a->base.ops = &array_ops;
	a->e = malloc(sizeof(entry) * (n ? n : 1));
	assert_non_null(a->e);
	if (n > 0)
		memcpy(a->e, e, sizeof(entry) * n);
	qsort(a->e, n, sizeof(entry), entry_cmp);
	a->n = n;
	a->pos = n;
	a->fail_at = fail_at;
	return &a->base;
}

/* --------------------------------------------------- random datasets */

typedef struct dataset
{
	entry	   *all;			/* sorted union */
	size_t		n;
	uint64_t	max_seq;
} dataset;

/*
 * nkeys user keys (with prefixes of each other, e.g. "k1" and "k10"), each
 * with 1..4 versions of unique sequence numbers (one key in eight: 9..38,
 * more than the views pass over one by one before seeking), about a
 * quarter of them tombstones.
 */
static dataset
make_dataset(sg_test_rng *rng, int nkeys)
{
	dataset		d;
	uint64_t	seq = 0;
	size_t		cap = (size_t) nkeys * 38 + 1;

	d.all = malloc(sizeof(entry) * cap);
	assert_non_null(d.all);
	d.n = 0;
	for (int k = 0; k < nkeys; k++)
	{
		char		ukey[16];
		int			nv = sg_test_uniform(rng, 8) == 0 ? 9 + (int) sg_test_uniform(rng, 30)
			: 1 + (int) sg_test_uniform(rng, 4);

		snprintf(ukey, sizeof(ukey), "k%d", (int) sg_test_uniform(rng, (uint64_t) nkeys * 3));
		for (int v = 0; v < nv; v++)
		{
			/* sequences climb with gaps, interleaved across keys */
			seq += 1 + sg_test_uniform(rng, 3);
			entry_make(&d.all[d.n++], ukey,
					   seq, sg_test_uniform(rng, 4) == 0 ? SG_TYPE_DELETE : SG_TYPE_PUT);
		}
	}
	qsort(d.all, d.n, sizeof(entry), entry_cmp);
	d.max_seq = seq;
	return d;
}

static sg_iter *merged_in_runs(sg_test_rng *rng, const dataset *d, int nchild,
							   size_t max_run, bool level_first, int broken);

/* Spread the dataset over nchild children at random (some may be empty). */
static sg_iter *
merged_over(sg_test_rng *rng, const dataset *d, int nchild)
{
	return merged_in_runs(rng, d, nchild, 1, false, -1);
}

/* Index of the first entry of d >= target (d->n if none). */
static size_t
lower_bound(const dataset *d, sg_slice target)
{
	size_t		i = 0;

	while (i < d->n && sg_ikey_compare(entry_ikey(&d->all[i]), target) < 0)
		i++;
	return i;
}

/*
 * Seek it to 40 random targets, present or not, and walk a few entries from
 * each: they must be d's entries from the first one >= target on.
 */
static void
check_random_seeks(sg_test_rng *rng, sg_iter *it, const dataset *d)
{
	for (int s = 0; s < 40; s++)
	{
		char		ukey[16];
		sg_buf		t = SG_BUF_INIT;
		size_t		want;

		snprintf(ukey, sizeof(ukey), "k%d", (int) sg_test_uniform(rng, 200));
		sg_ikey_append(&t, sg_slice_from_cstr(ukey), sg_test_uniform(rng, d->max_seq + 2),
					   (sg_value_type) sg_test_uniform(rng, 2));
		want = lower_bound(d, sg_buf_slice(&t));
		sg_iter_seek(it, sg_buf_slice(&t));
		for (size_t j = want; j < want + 5 && j < d->n; j++)
		{
			assert_true(sg_iter_valid(it));
			assert_true(sg_slice_equal(sg_iter_key(it), entry_ikey(&d->all[j])));
			sg_iter_next(it);
		}
		if (want + 5 >= d->n)
			assert_false(sg_iter_valid(it));
		sg_buf_free(&t);
	}
}

/* ------------------------------------------------------------- tests */

static void
test_merge_equals_sorted_union(void **state)
{
	sg_test_rng rng = {0x5eed1234};

	(void) state;
	for (int round = 0; round < 60; round++)
	{
		dataset		d = make_dataset(&rng, 1 + (int) sg_test_uniform(&rng, 60));
		/* 1..8 children, and a few rounds deep enough for a taller heap */
		int			nchild = round < 48 ? 1 + round % 8 : 17 + round % 16;
		sg_iter    *m = merged_over(&rng, &d, nchild);
		size_t		i = 0;
		sg_err		err;

		sg_iter_seek_to_first(m);
		for (; sg_iter_valid(m); sg_iter_next(m), i++)
		{
			assert_true(i < d.n);
			assert_true(sg_slice_equal(sg_iter_key(m), entry_ikey(&d.all[i])));
			assert_true(sg_slice_equal(sg_iter_value(m), sg_slice_from_cstr(d.all[i].val)));
		}
		assert_int_equal(i, d.n);
		assert_int_equal(sg_iter_status(m, &err), SG_OK);

		check_random_seeks(&rng, m, &d);
		sg_iter_destroy(m);
		free(d.all);
	}
}

/*
 * The merge reads each child's key once per move of that child, however
 * often it compares keys or is asked for its own: levels, tables and
 * blocks sit under each child, so every key() it passes down costs a
 * call through all of them (a scan's profile showed the key() of each
 * layer near its top).
 */
static void
test_merge_reads_child_keys_once(void **state)
{
	sg_test_rng rng = {0xca11ed};
	dataset		d = make_dataset(&rng, 200);
	sg_iter    *m = merged_over(&rng, &d, 8);
	size_t		i = 0;

	(void) state;
	array_key_calls = array_moves = 0;
	sg_iter_seek_to_first(m);
	for (; sg_iter_valid(m); sg_iter_next(m), i++)
	{
		/* the caller asks twice: both answered from the cache */
		assert_true(sg_slice_equal(sg_iter_key(m), entry_ikey(&d.all[i])));
		assert_true(sg_slice_equal(sg_iter_key(m), entry_ikey(&d.all[i])));
	}
	assert_int_equal(i, d.n);
	assert_true(array_moves >= d.n);
	assert_true(array_key_calls <= array_moves);
	sg_iter_destroy(m);
	free(d.all);
}

/*
 * Seeks that go forward from the current entry (a scan skipping the rest
 * of a key's versions, an index scan's next row) land where a seek from
 * scratch lands, and move only the children that stand before the
 * target: a child already past it is not sought again.
 */
static void
test_merge_forward_seeks(void **state)
{
	sg_test_rng rng = {0xf02a2d};

	(void) state;
	for (int round = 0; round < 40; round++)
	{
		dataset		d = make_dataset(&rng, 20 + (int) sg_test_uniform(&rng, 150));
		int			nchild = 1 + round % 9;
		sg_iter    *m = merged_over(&rng, &d, nchild);
		size_t		i = 0;

		sg_iter_seek_to_first(m);
		while (i < d.n)
		{
			/* a target a few entries on, or between two entries */
			size_t		j = i + 1 + sg_test_uniform(&rng, 6);
			sg_buf		t = SG_BUF_INIT;
			size_t		want;

			if (j >= d.n)
				break;
			sg_buf_append_slice(&t, entry_ikey(&d.all[j]));
			if (sg_test_uniform(&rng, 2))
			{
				/* one past entry j: the same user key, an older sequence */
				sg_buf_reset(&t);
				sg_ikey_append(&t, sg_slice_from_cstr(d.all[j].ukey),
							   d.all[j].seq > 0 ? d.all[j].seq - 1 : 0, SG_TYPE_DELETE);
			}
			want = lower_bound(&d, sg_buf_slice(&t));
			sg_iter_seek(m, sg_buf_slice(&t));
			if (want == d.n)
				assert_false(sg_iter_valid(m));
			else
			{
				assert_true(sg_iter_valid(m));
				assert_true(sg_slice_equal(sg_iter_key(m), entry_ikey(&d.all[want])));
				/* and steps on from there as usual */
				sg_iter_next(m);
				if (want + 1 < d.n)
					assert_true(sg_slice_equal(sg_iter_key(m), entry_ikey(&d.all[want + 1])));
			}
			i = want + 1;
			sg_buf_free(&t);
		}
		sg_iter_destroy(m);
		free(d.all);
	}

	/*
	 * Eight children, each holding every eighth key: a seek to the next
	 * key but one moves at most the children before it, never all eight.
	 */
	{
		entry		parts[8][16];
		sg_iter    *kids[8];
		sg_iter    *m;
		size_t		full;

		for (int c = 0; c < 8; c++)
		{
			for (int k = 0; k < 16; k++)
			{
				char		ukey[16];

				snprintf(ukey, sizeof(ukey), "k%03d", k * 8 + c);
				entry_make(&parts[c][k], ukey, 100, SG_TYPE_PUT);
			}
			kids[c] = array_iter_new(parts[c], 16, SIZE_MAX);
		}
		m = sg_merge_iter_new(kids, 8);
		sg_iter_seek_to_first(m);
		array_seeks = 0;
		sg_iter_seek(m, entry_ikey(&parts[2][0]));	/* k002: two children behind */
		assert_true(sg_slice_equal(sg_iter_key(m), entry_ikey(&parts[2][0])));
		assert_int_equal(array_seeks, 2);
		/* backwards: every child seeks */
		array_seeks = 0;
		sg_iter_seek(m, entry_ikey(&parts[0][0]));
		full = array_seeks;
		assert_int_equal(full, 8);
		sg_iter_destroy(m);
	}
}

/*
 * A level made of the dataset cut into nchild consecutive pieces (some
 * empty) yields exactly what a merge of the pieces yields: the sorted
 * union, from the start and from any seek target, crossing pieces. A
 * piece that breaks stops the level with its error, never as its end.
 */
static void
test_concat_equals_merge(void **state)
{
	sg_test_rng rng = {0xc0ca7};

	(void) state;
	for (int round = 0; round < 60; round++)
	{
		dataset		d = make_dataset(&rng, 1 + (int) sg_test_uniform(&rng, 60));
		int			nchild = 1 + (int) sg_test_uniform(&rng, 9);
		sg_iter    *kids[16];
		sg_slice	largest[16];
		size_t		cut[17];
		int			broken = round % 10 == 9 ? (int) sg_test_uniform(&rng, nchild) : -1;
		sg_iter    *c;
		size_t		i = 0;
		sg_err		err;

		/* cut points; a key's versions may span a cut, as in a real level */
		cut[0] = 0;
		for (int k = 1; k < nchild; k++)
			cut[k] = cut[k - 1] + sg_test_uniform(&rng, d.n - cut[k - 1] + 1);
		cut[nchild] = d.n;
		for (int k = 0; k < nchild; k++)
		{
			size_t		cnt = cut[k + 1] - cut[k];

			kids[k] = array_iter_new(d.all + cut[k], cnt,
									 k == broken && cnt > 0 ? cnt / 2 : SIZE_MAX);
			/* an empty piece still has a bound: the previous piece's largest */
			largest[k] = cnt > 0 ? entry_ikey(&d.all[cut[k + 1] - 1])
				: (k > 0 ? largest[k - 1] : sg_slice_make("\0\0\0\0\0\0\0\0", 8));
		}
		if (broken >= 0 && cut[broken + 1] == cut[broken])
			broken = -1;		/* an empty piece cannot break */
		c = sg_concat_iter_new(kids, largest, nchild);

		sg_iter_seek_to_first(c);
		for (; sg_iter_valid(c); sg_iter_next(c), i++)
		{
			assert_true(i < d.n);
			assert_true(sg_slice_equal(sg_iter_key(c), entry_ikey(&d.all[i])));
			assert_true(sg_slice_equal(sg_iter_value(c), sg_slice_from_cstr(d.all[i].val)));
		}
		if (broken >= 0)
		{
			assert_int_equal(i, cut[broken] + (cut[broken + 1] - cut[broken]) / 2);
			assert_int_equal(sg_iter_status(c, &err), SG_CORRUPTION);
			sg_iter_destroy(c);
			free(d.all);
			continue;
		}
		assert_int_equal(i, d.n);
		assert_int_equal(sg_iter_status(c, &err), SG_OK);

		check_random_seeks(&rng, c, &d);
		sg_iter_destroy(c);
		free(d.all);
	}

	/* no children at all: an empty level */
	sg_iter    *empty = sg_concat_iter_new(NULL, NULL, 0);
	sg_err		err;

	sg_iter_seek_to_first(empty);
	assert_false(sg_iter_valid(empty));
	assert_int_equal(sg_iter_status(empty, &err), SG_OK);
	sg_iter_destroy(empty);
}

/*
 * A merge over nchild children, each given runs of 1..max_run consecutive
 * entries (long runs are the shape a leaf serves: a level holding long
 * stretches of the keys, with newer files above it); with level_first,
 * child 0 is a level (a concat over 1..4 pieces of its part). The child
 * broken (if >= 0) fails half way.
 */
static sg_iter *
merged_in_runs(sg_test_rng *rng, const dataset *d, int nchild, size_t max_run,
			   bool level_first, int broken)
{
	sg_iter    *kids[32];
	entry	   *parts[32];
	size_t		counts[32] = {0};

	assert_true(nchild >= 1 && nchild <= 32);
	for (int c = 0; c < nchild; c++)
	{
		parts[c] = malloc(sizeof(entry) * (d->n ? d->n : 1));
		assert_non_null(parts[c]);
	}
	for (size_t i = 0; i < d->n;)
	{
		int			c = (int) sg_test_uniform(rng, (uint64_t) nchild);
		size_t		run = max_run > 1 ? 1 + sg_test_uniform(rng, max_run) : 1;

		for (; run > 0 && i < d->n; run--, i++)
			parts[c][counts[c]++] = d->all[i];
	}
	for (int c = 0; c < nchild; c++)
	{
		size_t		fail_at = c == broken && counts[c] > 0 ? counts[c] / 2 : SIZE_MAX;

		if (level_first && c == 0 && counts[0] > 0)
		{
			sg_iter    *pieces[4];
			sg_slice	largest[4];
			int			npieces = 1 + (int) sg_test_uniform(rng, 4);
			size_t		from = 0;

			for (int k = 0; k < npieces; k++)
			{
				size_t		to = k == npieces - 1 ? counts[0]
					: from + sg_test_uniform(rng, counts[0] - from + 1);

				if (to == from && k < npieces - 1)
					to = from + (from < counts[0] ? 1 : 0);
				pieces[k] = array_iter_new(parts[0] + from, to - from,
										   fail_at >= from && fail_at < to ? fail_at - from : SIZE_MAX);
				largest[k] = entry_ikey(&d->all[0]);	/* replaced below */
				if (to > from)
					largest[k] = entry_ikey(&parts[0][to - 1]);
				else if (k > 0)
					largest[k] = largest[k - 1];
				from = to;
			}
			kids[0] = sg_concat_iter_new(pieces, largest, npieces);
		}
		else
			kids[c] = array_iter_new(parts[c], counts[c], fail_at);
	}
	for (int c = 0; c < nchild; c++)
		free(parts[c]);
	return sg_merge_iter_new(kids, nchild);
}

/* The model of the visible view: newest version <= snap, unless a tombstone. */
static size_t
model_view(const dataset *d, uint64_t snap, const entry **out)
{
	size_t		n = 0;

	for (size_t i = 0; i < d->n;)
	{
		size_t		j = i;
		const entry *vis = NULL;

		while (j < d->n && strcmp(d->all[j].ukey, d->all[i].ukey) == 0)
		{
			if (vis == NULL && d->all[j].seq <= snap)
				vis = &d->all[j];
			j++;
		}
		if (vis != NULL && vis->type == SG_TYPE_PUT)
			out[n++] = vis;
		i = j;
	}
	return n;
}

/* The model of the versions view: visible versions down to a tombstone. */
static size_t
model_versions(const dataset *d, uint64_t snap, const entry **out)
{
	size_t		n = 0;

	for (size_t i = 0; i < d->n;)
	{
		size_t		j = i;
		bool		stopped = false;

		while (j < d->n && strcmp(d->all[j].ukey, d->all[i].ukey) == 0)
		{
			if (!stopped && d->all[j].seq <= snap)
			{
				out[n++] = &d->all[j];
				stopped = (d->all[j].type == SG_TYPE_DELETE);
			}
			j++;
		}
		i = j;
	}
	return n;
}

/* An entry as a reader got it: its internal key and value, copied. */
typedef struct read_entry
{
	char		ikey[32];
	size_t		ikey_len;
	char		val[24];
} read_entry;

static void
read_entry_set(read_entry *r, sg_slice key, sg_slice value)
{
	assert_true(key.len <= sizeof(r->ikey) && value.len < sizeof(r->val));
	memcpy(r->ikey, key.data, key.len);
	r->ikey_len = key.len;
	memcpy(r->val, value.data, value.len);
	r->val[value.len] = '\0';
}

/*
 * Keep one entry a reader met, unless a tombstone of its key came before
 * it (dead, *dead_len; SIZE_MAX: none), as the versions view passes over.
 */
static void
take_entry(read_entry *got, size_t *n, size_t cap, sg_slice key, sg_slice value,
		   char *dead, size_t *dead_len)
{
	sg_parsed_ikey p = {{NULL, 0}, 0, SG_TYPE_PUT};
	bool		parsed = sg_ikey_parse(key, &p);

	assert_true(parsed);
	if (p.user_key.len == *dead_len && memcmp(p.user_key.data, dead, *dead_len) == 0)
		return;
	assert_true(*n < cap);
	read_entry_set(&got[(*n)++], key, value);
	*dead_len = SIZE_MAX;
	if (p.type == SG_TYPE_DELETE && p.user_key.len <= 16)
	{
		memcpy(dead, p.user_key.data, p.user_key.len);
		*dead_len = p.user_key.len;
	}
}

/*
 * Read it to the end the way a scan does (read.c): step its leaf while
 * one is on offer and its keys stay below the bound, then resync; when
 * the leaf gives nothing (its first entry ties with the bound) or none is
 * on offer, take one entry through it. Returns how many entries were
 * kept; *through_leaf counts the steps the leaf took.
 */
static size_t
read_through_leaves(sg_iter *it, read_entry *got, size_t cap, size_t *through_leaf)
{
	size_t		n = 0;
	char		dead[16];
	size_t		dead_len = SIZE_MAX;

	*through_leaf = 0;
	while (sg_iter_valid(it))
	{
		sg_slice	bound = {NULL, 0};
		sg_iter    *leaf = sg_iter_leaf(it, &bound);
		size_t		took = 0;

		while (leaf != NULL && sg_iter_valid(leaf) &&
			   (bound.len == 0 || sg_ikey_compare(sg_iter_key(leaf), bound) < 0))
		{
			take_entry(got, &n, cap, sg_iter_key(leaf), sg_iter_value(leaf), dead, &dead_len);
			sg_iter_next(leaf);
			took++;
		}
		if (leaf != NULL)
		{
			*through_leaf += took;
			sg_iter_resync(it);
			if (took > 0 || !sg_iter_valid(it))
				continue;
		}
		/* no leaf, or it stopped at once: one step through the iterator */
		take_entry(got, &n, cap, sg_iter_key(it), sg_iter_value(it), dead, &dead_len);
		sg_iter_next(it);
	}
	return n;
}

/*
 * Reading through leaves gives what stepping gives: the merge's leaves
 * (a child's entries below the runner-up's key, a level's file by file)
 * under the versions view at SG_MAX_SEQUENCE, read as a scan reads them,
 * give the model's versions, values included; seeks after a resync land
 * right; a broken child's error surfaces after the entries before it.
 * Duplicate internal keys across children (a flush racing a read) tie
 * with the bound and are taken through the merge, lower child first.
 */
static void
test_leaf_reads_equal_stepping(void **state)
{
	sg_test_rng rng = {0x1eaf};
	size_t		leaf_total = 0,
				all_total = 0;

	(void) state;
	for (int round = 0; round < 80; round++)
	{
		dataset		d = make_dataset(&rng, 1 + (int) sg_test_uniform(&rng, 80));
		int			nchild = 1 + round % 6;
		int			broken = round % 10 == 9 ? (int) sg_test_uniform(&rng, nchild) : -1;
		sg_iter    *m = merged_in_runs(&rng, &d, nchild, 20, true, broken);
		sg_iter    *v = sg_versions_iter_new(m, SG_MAX_SEQUENCE);
		const entry **want = malloc(sizeof(entry *) * (d.n + 1));
		read_entry *got = malloc(sizeof(read_entry) * (d.n + 1));
		size_t		nwant = model_versions(&d, SG_MAX_SEQUENCE, want);
		size_t		ngot,
					through_leaf;
		sg_err		err;

		sg_iter_seek_to_first(v);
		ngot = read_through_leaves(v, got, d.n + 1, &through_leaf);
		if (broken < 0 || sg_iter_status(v, &err) == SG_OK)
			assert_int_equal(ngot, nwant);
		else
			assert_true(ngot < nwant || nwant == 0);
		for (size_t i = 0; i < ngot; i++)
		{
			assert_true(sg_slice_equal(sg_slice_make(got[i].ikey, got[i].ikey_len),
									   entry_ikey(want[i])));
			assert_string_equal(got[i].val, want[i]->val);
		}
		if (broken < 0)
		{
			assert_int_equal(sg_iter_status(v, &err), SG_OK);
			leaf_total += through_leaf;
			all_total += ngot;
		}
		sg_iter_destroy(v);

		/* resync, then seek: the merge's forward seek relies on its keys */
		if (broken < 0)
		{
			m = merged_in_runs(&rng, &d, nchild, 20, true, -1);
			sg_iter_seek_to_first(m);
			for (int s = 0; s < 5 && sg_iter_valid(m); s++)
			{
				sg_slice	bound;
				sg_iter    *leaf = sg_iter_leaf(m, &bound);

				for (int k = 0; leaf != NULL && k < 3 && sg_iter_valid(leaf) &&
					 (bound.len == 0 || sg_ikey_compare(sg_iter_key(leaf), bound) < 0); k++)
					sg_iter_next(leaf);
				if (leaf != NULL)
					sg_iter_resync(m);
				check_random_seeks(&rng, m, &d);
			}
			sg_iter_destroy(m);
		}
		free(want);
		free(got);
		free(d.all);
	}
	/* the leaves did the reading, not the fallback steps */
	assert_true(leaf_total > all_total / 2);
}

static void
test_view_against_model(void **state)
{
	sg_test_rng rng = {0xfeedbeef};

	(void) state;
	for (int round = 0; round < 40; round++)
	{
		dataset		d = make_dataset(&rng, 1 + (int) sg_test_uniform(&rng, 50));
		const entry **want = malloc(sizeof(entry *) * (d.n + 1));
		uint64_t	snaps[] = {0, 1, d.max_seq / 3, d.max_seq / 2, d.max_seq - 1,
		d.max_seq, SG_MAX_SEQUENCE, UINT64_MAX};
		int			tombstoned = 0;

		assert_non_null(want);
		for (size_t s = 0; s < sizeof(snaps) / sizeof(snaps[0]); s++)
		{
			sg_iter    *v = sg_view_iter_new(merged_over(&rng, &d, 1 + round % 8), snaps[s]);
			size_t		nw = model_view(&d, snaps[s], want);
			size_t		i = 0;
			sg_err		err;

			sg_iter_seek_to_first(v);
			for (; sg_iter_valid(v); sg_iter_next(v), i++)
			{
				assert_true(i < nw);
				assert_true(sg_slice_equal(sg_iter_key(v), sg_slice_from_cstr(want[i]->ukey)));
				assert_true(sg_slice_equal(sg_iter_value(v), sg_slice_from_cstr(want[i]->val)));
			}
			assert_int_equal(i, nw);
			assert_int_equal(sg_iter_status(v, &err), SG_OK);

			/* seek by user key: first visible user key >= target */
			for (int t = 0; t < 30; t++)
			{
				char		ukey[16];
				size_t		j = 0;

				snprintf(ukey, sizeof(ukey), "k%d", (int) sg_test_uniform(&rng, 160));
				while (j < nw && strcmp(want[j]->ukey, ukey) < 0)
					j++;
				sg_iter_seek(v, sg_slice_from_cstr(ukey));
				if (j == nw)
					assert_false(sg_iter_valid(v));
				else
				{
					assert_true(sg_iter_valid(v));
					assert_true(sg_slice_equal(sg_iter_key(v),
											   sg_slice_from_cstr(want[j]->ukey)));
					assert_true(sg_slice_equal(sg_iter_value(v),
											   sg_slice_from_cstr(want[j]->val)));
				}
			}
			sg_iter_destroy(v);
		}
		/* the data really has keys a tombstone hides at the newest snapshot */
		for (size_t i = 0; i < d.n; i++)
			if (d.all[i].type == SG_TYPE_DELETE)
				tombstoned++;
		assert_true(d.n < 8 || tombstoned > 0);
		free(want);
		free(d.all);
	}
}

static void
test_versions_against_model(void **state)
{
	sg_test_rng rng = {0xabcdef01};

	(void) state;
	for (int round = 0; round < 40; round++)
	{
		dataset		d = make_dataset(&rng, 1 + (int) sg_test_uniform(&rng, 50));
		const entry **want = malloc(sizeof(entry *) * (d.n + 1));
		uint64_t	snaps[] = {0, d.max_seq / 2, d.max_seq, SG_MAX_SEQUENCE};

		assert_non_null(want);
		for (size_t s = 0; s < sizeof(snaps) / sizeof(snaps[0]); s++)
		{
			sg_iter    *v = sg_versions_iter_new(merged_over(&rng, &d, 1 + round % 8),
												 snaps[s]);
			size_t		nw = model_versions(&d, snaps[s], want);
			size_t		i = 0;
			sg_err		err;

			sg_iter_seek_to_first(v);
			for (; sg_iter_valid(v); sg_iter_next(v), i++)
			{
				sg_parsed_ikey p;

				assert_true(i < nw);
				assert_true(sg_slice_equal(sg_iter_key(v), entry_ikey(want[i])));
				assert_true(sg_ikey_parse(sg_iter_key(v), &p));
				assert_true(p.seq <= snaps[s]);
				assert_true(sg_slice_equal(sg_iter_value(v), sg_slice_from_cstr(want[i]->val)));
			}
			assert_int_equal(i, nw);
			assert_int_equal(sg_iter_status(v, &err), SG_OK);

			/* next_key: only the newest visible version of each key */
			i = 0;
			sg_iter_seek_to_first(v);
			for (size_t j = 0; j < nw; j++)
			{
				if (j > 0 && strcmp(want[j]->ukey, want[j - 1]->ukey) == 0)
					continue;
				assert_true(sg_iter_valid(v));
				assert_true(sg_slice_equal(sg_iter_key(v), entry_ikey(want[j])));
				sg_versions_iter_next_key(v);
			}
			assert_false(sg_iter_valid(v));

			/* seek by user key lands on that key's newest visible version */
			if (nw > 0)
			{
				const entry *t = want[sg_test_uniform(&rng, nw)];
				size_t		j = 0;

				while (strcmp(want[j]->ukey, t->ukey) != 0)
					j++;
				sg_iter_seek(v, sg_slice_from_cstr(t->ukey));
				assert_true(sg_iter_valid(v));
				assert_true(sg_slice_equal(sg_iter_key(v), entry_ikey(want[j])));
			}
			sg_iter_destroy(v);
		}
		free(want);
		free(d.all);
	}
}

static void
test_hand_written_view(void **state)
{
	entry		a[4],
				b[3];
	sg_iter    *kids[2];
	sg_iter    *v;
	sg_err		err;

	(void) state;
	/* "apple": put@1 (a), put@5 (b), delete@7 (a) ; "pear": put@3, put@9 */
	entry_make(&a[0], "apple", 1, SG_TYPE_PUT);
	entry_make(&a[1], "apple", 7, SG_TYPE_DELETE);
	entry_make(&a[2], "pear", 9, SG_TYPE_PUT);
	entry_make(&a[3], "zz", 2, SG_TYPE_DELETE);
	entry_make(&b[0], "apple", 5, SG_TYPE_PUT);
	entry_make(&b[1], "pear", 3, SG_TYPE_PUT);
	entry_make(&b[2], "zz", 1, SG_TYPE_PUT);

	/* at 6: apple@5 and pear@3 visible; zz hidden by its tombstone at 2 */
	kids[0] = array_iter_new(a, 4, SIZE_MAX);
	kids[1] = array_iter_new(b, 3, SIZE_MAX);
	v = sg_view_iter_new(sg_merge_iter_new(kids, 2), 6);
	sg_iter_seek_to_first(v);
	assert_true(sg_iter_valid(v));
	assert_true(sg_slice_equal(sg_iter_key(v), sg_slice_from_cstr("apple")));
	assert_true(sg_slice_equal(sg_iter_value(v), sg_slice_from_cstr("apple@5")));
	sg_iter_next(v);
	assert_true(sg_slice_equal(sg_iter_value(v), sg_slice_from_cstr("pear@3")));
	sg_iter_next(v);
	assert_false(sg_iter_valid(v));
	assert_int_equal(sg_iter_status(v, &err), SG_OK);
	/* at 1: apple@1, and zz@1 (its tombstone at 2 is too new) */
	sg_iter_destroy(v);

	kids[0] = array_iter_new(a, 4, SIZE_MAX);
	kids[1] = array_iter_new(b, 3, SIZE_MAX);
	v = sg_view_iter_new(sg_merge_iter_new(kids, 2), 1);
	sg_iter_seek_to_first(v);
	assert_true(sg_slice_equal(sg_iter_value(v), sg_slice_from_cstr("apple@1")));
	sg_iter_next(v);
	assert_true(sg_slice_equal(sg_iter_value(v), sg_slice_from_cstr("zz@1")));
	sg_iter_next(v);
	assert_false(sg_iter_valid(v));
	sg_iter_destroy(v);

	/* versions at 8: apple delete@7 only (it hides 5 and 1); pear@3 */
	kids[0] = array_iter_new(a, 4, SIZE_MAX);
	kids[1] = array_iter_new(b, 3, SIZE_MAX);
	v = sg_versions_iter_new(sg_merge_iter_new(kids, 2), 8);
	sg_iter_seek_to_first(v);
	assert_true(sg_slice_equal(sg_iter_key(v), entry_ikey(&a[1])));
	sg_iter_next(v);
	assert_true(sg_slice_equal(sg_iter_key(v), entry_ikey(&b[1])));
	sg_iter_next(v);
	assert_true(sg_slice_equal(sg_iter_key(v), entry_ikey(&a[3])));
	sg_iter_next(v);
	assert_false(sg_iter_valid(v));
	sg_iter_destroy(v);

	/* next_key is a no-op on other iterators */
	v = sg_iter_empty();
	sg_versions_iter_next_key(v);
	assert_false(sg_iter_valid(v));
	sg_iter_destroy(v);
}

static void
test_child_error_surfaces(void **state)
{
	sg_test_rng rng = {42};
	dataset		d = make_dataset(&rng, 40);
	sg_iter    *kids[3];
	sg_iter    *m;
	sg_err		err;
	size_t		seen = 0;

	(void) state;
	assert_true(d.n > 30);
	/* child 1 breaks after 10 entries; the merge stops there for good */
	kids[0] = array_iter_new(d.all, d.n / 3, SIZE_MAX);
	kids[1] = array_iter_new(d.all + d.n / 3, d.n / 3, 10);
	kids[2] = array_iter_new(d.all + 2 * (d.n / 3), d.n - 2 * (d.n / 3), SIZE_MAX);
	m = sg_merge_iter_new(kids, 3);
	for (sg_iter_seek_to_first(m); sg_iter_valid(m); sg_iter_next(m))
		seen++;
	assert_true(seen < d.n);
	sg_err_clear(&err);
	assert_int_equal(sg_iter_status(m, &err), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "child broke"));
	/* sticky: a new seek does not hide it */
	sg_iter_seek_to_first(m);
	assert_false(sg_iter_valid(m));
	assert_int_equal(sg_iter_status(m, NULL), SG_CORRUPTION);

	/* through a view too */
	sg_iter    *v = sg_view_iter_new(m, SG_MAX_SEQUENCE);

	sg_iter_seek_to_first(v);
	assert_false(sg_iter_valid(v));
	assert_int_equal(sg_iter_status(v, &err), SG_CORRUPTION);
	sg_iter_destroy(v);

	/* an error child (sg_iter_error) is reported at once */
	kids[0] = array_iter_new(d.all, d.n, SIZE_MAX);
	kids[1] = sg_iter_error(SG_IO_ERROR, "disk on fire");
	m = sg_merge_iter_new(kids, 2);
	sg_iter_seek_to_first(m);
	assert_false(sg_iter_valid(m));
	assert_int_equal(sg_iter_status(m, &err), SG_IO_ERROR);
	assert_non_null(strstr(err.msg, "disk on fire"));
	sg_iter_destroy(m);
	free(d.all);
}

/* A one-entry iterator whose key is too short to be an internal key. */
static bool short_valid_flag;

static bool
short_valid(sg_iter *it)
{
	(void) it;
	return short_valid_flag;
}

static void
short_seek_to_first(sg_iter *it)
{
	(void) it;
	short_valid_flag = true;
}

static void
short_seek(sg_iter *it, sg_slice t)
{
	(void) it;
	(void) t;
	short_valid_flag = true;
}

static void
short_next(sg_iter *it)
{
	(void) it;
	short_valid_flag = false;
}

static sg_slice
short_key(sg_iter *it)
{
	(void) it;
	return sg_slice_make("abc", 3);
}

static sg_code
short_status(sg_iter *it, sg_err *err)
{
	(void) it;
	(void) err;
	return SG_OK;
}

static void
short_destroy(sg_iter *it)
{
	(void) it;
}

static const sg_iter_ops short_ops = {
	short_valid, short_seek_to_first, short_seek, short_next,
	short_key, short_key, short_status, short_destroy, NULL, NULL
};

static void
test_bad_keys_and_targets(void **state)
{
	sg_iter		shorty = {&short_ops};
	sg_iter    *kids[1] = {&shorty};
	sg_iter    *m;
	sg_iter    *v;
	entry		e[1];
	sg_err		err;

	(void) state;
	m = sg_merge_iter_new(kids, 1);
	sg_iter_seek_to_first(m);
	assert_false(sg_iter_valid(m));
	assert_int_equal(sg_iter_status(m, &err), SG_CORRUPTION);
	sg_iter_destroy(m);

	/* a seek target too short to be an internal key is refused */
	entry_make(&e[0], "a", 1, SG_TYPE_PUT);
	kids[0] = array_iter_new(e, 1, SIZE_MAX);
	m = sg_merge_iter_new(kids, 1);
	sg_iter_seek(m, sg_slice_make("a", 1));
	assert_false(sg_iter_valid(m));
	assert_int_equal(sg_iter_status(m, &err), SG_INVALID_ARGUMENT);
	sg_iter_destroy(m);

	/* an 8-byte key with an unknown type is corruption to the views */
	e[0].ikey[e[0].ikey_len - 8] = 7;
	kids[0] = array_iter_new(e, 1, SIZE_MAX);
	v = sg_view_iter_new(sg_merge_iter_new(kids, 1), SG_MAX_SEQUENCE);
	sg_iter_seek_to_first(v);
	assert_false(sg_iter_valid(v));
	assert_int_equal(sg_iter_status(v, &err), SG_CORRUPTION);
	sg_iter_destroy(v);
}

static void
test_empty_and_ties(void **state)
{
	sg_iter    *kids[4];
	sg_iter    *m;
	sg_err		err;
	entry		e[2];
	int			n = 0;

	(void) state;
	/* no children at all */
	m = sg_merge_iter_new(NULL, 0);
	sg_iter_seek_to_first(m);
	assert_false(sg_iter_valid(m));
	assert_int_equal(sg_iter_status(m, &err), SG_OK);
	sg_iter_destroy(m);

	/* only empty children (and a NULL one) */
	kids[0] = array_iter_new(NULL, 0, SIZE_MAX);
	kids[1] = NULL;
	kids[2] = sg_iter_empty();
	m = sg_merge_iter_new(kids, 3);
	sg_iter_seek_to_first(m);
	assert_false(sg_iter_valid(m));
	sg_iter_seek(m, sg_slice_make("12345678", 8));
	assert_false(sg_iter_valid(m));
	assert_int_equal(sg_iter_status(m, &err), SG_OK);
	sg_iter_destroy(m);

	/* identical internal keys in two children: both come out, child 0 first */
	entry_make(&e[0], "dup", 4, SG_TYPE_PUT);
	e[1] = e[0];
	strcpy(e[1].val, "second");
	kids[0] = array_iter_new(NULL, 0, SIZE_MAX);
	kids[1] = array_iter_new(&e[0], 1, SIZE_MAX);
	kids[2] = array_iter_new(&e[1], 1, SIZE_MAX);
	kids[3] = array_iter_new(NULL, 0, SIZE_MAX);
	m = sg_merge_iter_new(kids, 4);
	for (sg_iter_seek_to_first(m); sg_iter_valid(m); sg_iter_next(m))
	{
		assert_true(sg_slice_equal(sg_iter_key(m), entry_ikey(&e[0])));
		assert_true(sg_slice_equal(sg_iter_value(m),
								   sg_slice_from_cstr(n == 0 ? e[0].val : "second")));
		n++;
	}
	assert_int_equal(n, 2);
	sg_iter_destroy(m);

	/*
	 * Read through leaves, the ties come out the same way: child 0's leaf
	 * is bounded by child 1's equal key, gives nothing, and the entry is
	 * taken through the merge; then child 1's leaf gives the second.
	 */
	{
		entry		f[3];
		read_entry	got[4];
		size_t		through_leaf;

		f[0] = e[0];
		entry_make(&f[1], "dup", 3, SG_TYPE_PUT);
		f[2] = e[1];
		kids[0] = array_iter_new(f, 2, SIZE_MAX);	/* dup@4, dup@3 */
		kids[1] = array_iter_new(&f[2], 1, SIZE_MAX);	/* dup@4 "second" */
		m = sg_versions_iter_new(sg_merge_iter_new(kids, 2), SG_MAX_SEQUENCE);
		sg_iter_seek_to_first(m);
		assert_int_equal(read_through_leaves(m, got, 4, &through_leaf), 3);
		assert_string_equal(got[0].val, e[0].val);
		assert_string_equal(got[1].val, "second");
		assert_true(sg_slice_equal(sg_slice_make(got[2].ikey, got[2].ikey_len),
								   entry_ikey(&f[1])));
		assert_true(through_leaf >= 1 && through_leaf < 3);
		assert_int_equal(sg_iter_status(m, &err), SG_OK);
		sg_iter_destroy(m);
	}

	/* the view over ties yields the key once */
	kids[0] = array_iter_new(&e[0], 1, SIZE_MAX);
	kids[1] = array_iter_new(&e[1], 1, SIZE_MAX);
	m = sg_view_iter_new(sg_merge_iter_new(kids, 2), 10);
	n = 0;
	for (sg_iter_seek_to_first(m); sg_iter_valid(m); sg_iter_next(m))
		n++;
	assert_int_equal(n, 1);
	sg_iter_destroy(m);

	/* views over nothing */
	m = sg_versions_iter_new(NULL, 5);
	sg_iter_seek_to_first(m);
	assert_false(sg_iter_valid(m));
	assert_int_equal(sg_iter_status(m, &err), SG_OK);
	sg_iter_destroy(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_equals_sorted_union),
		cmocka_unit_test(test_merge_reads_child_keys_once),
		cmocka_unit_test(test_merge_forward_seeks),
		cmocka_unit_test(test_concat_equals_merge),
		cmocka_unit_test(test_view_against_model),
		cmocka_unit_test(test_versions_against_model),
		cmocka_unit_test(test_leaf_reads_equal_stepping),
		cmocka_unit_test(test_hand_written_view),
		cmocka_unit_test(test_child_error_surfaces),
		cmocka_unit_test(test_bad_keys_and_targets),
		cmocka_unit_test(test_empty_and_ties),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
