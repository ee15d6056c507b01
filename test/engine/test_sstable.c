/*
 * test_sstable.c — unit tests for SSTables: round trips of 100k random
 * entries with every codec and two block sizes (gets at several snapshots,
 * absent keys, full iteration, random seeks), the empty table, a multi-MB
 * value, key-order enforcement, properties, single-byte corruption at every
 * offset of a small table, truncation at every length, I/O and fsync
 * failures (in-memory fault env), and concurrent readers.
 *
 * With SG_SSTABLE_WRITE_CORPUS=<dir> in the environment the program instead
 * writes the fuzz seed tables (test/fuzz/corpus/sstable/) into <dir>.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/base/coding.h"
#include "engine/base/crc32c.h"
#include "engine/base/env.h"
#include "engine/base/env_mem.h"
#include "engine/base/ikey.h"
#include "engine/sstable/block.h"
#include "engine/sstable/format.h"
#include "engine/sstable/table.h"
#include "testutil.h"

/* ------------------------------------------------------------ test data */

typedef struct entry
{
	char	   *ikey;
	size_t		klen;
	char	   *val;
	size_t		vlen;
} entry;

typedef struct ukey
{
	size_t		first;			/* index of its newest version in entries */
	size_t		nver;
} ukey;

typedef struct dataset
{
	entry	   *e;
	size_t		n;
	ukey	   *u;
	size_t		nu;
	uint64_t	deletions;
} dataset;

static const char *const words[] = {
	"relation", "tuple", "snapshot", "vacuum", "xmin", "frozen", "page ",
	"commit", "index", "toast", "heap", "lsm", "compaction", "level", " ", "0"
};

static int
cmp_str_slice(const void *a, const void *b)
{
	const sg_slice *x = a;
	const sg_slice *y = b;

	return sg_slice_compare(*x, *y);
}

/*
 * nu distinct random user keys (sorted), each with 1-3 versions of
 * descending sequence; about one entry in eight a tombstone. Values are
 * words (compressible) mixed with random bytes, up to max_val bytes.
 */
static void
gen_dataset(dataset *d, size_t nu, size_t max_val, uint64_t seed)
{
	sg_test_rng rng = {seed};
	sg_slice   *keys = calloc(nu, sizeof(sg_slice));
	size_t		m = 0;

	assert_non_null(keys);
	for (size_t i = 0; i < nu; i++)
	{
		char	   *k = malloc(32);
		int			len = snprintf(k, 32, "%08llx",
								   (unsigned long long) sg_test_uniform(&rng, 0x40000000));
		int			extra = (int) sg_test_uniform(&rng, 9);

		for (int j = 0; j < extra; j++)
			k[len++] = (char) ('g' + sg_test_uniform(&rng, 16));
		keys[i] = sg_slice_make(k, (size_t) len);
	}
	qsort(keys, nu, sizeof(sg_slice), cmp_str_slice);
	/* drop duplicates */
	for (size_t i = 0; i < nu; i++)
	{
		if (m > 0 && sg_slice_equal(keys[m - 1], keys[i]))
		{
			free((char *) keys[i].data);
			continue;
		}
		keys[m++] = keys[i];
	}

	memset(d, 0, sizeof(*d));
	d->e = calloc(m * 3, sizeof(entry));
	d->u = calloc(m, sizeof(ukey));
	assert_non_null(d->e);
	assert_non_null(d->u);
	for (size_t i = 0; i < m; i++)
	{
		size_t		nver = 1 + sg_test_uniform(&rng, 3);
		uint64_t	seq = 100 + sg_test_uniform(&rng, 1000000);

		d->u[d->nu].first = d->n;
		d->u[d->nu].nver = nver;
		d->nu++;
		for (size_t v = 0; v < nver; v++)
		{
			entry	   *e = &d->e[d->n++];
			sg_buf		kb = SG_BUF_INIT;
			bool		del = sg_test_uniform(&rng, 8) == 0;

			sg_ikey_append(&kb, keys[i], seq, del ? SG_TYPE_DELETE : SG_TYPE_PUT);
			e->ikey = kb.data;
			e->klen = kb.len;
			if (del)
			{
				d->deletions++;
				e->val = malloc(1);
				e->vlen = 0;
			}
			else
			{
				size_t		vlen = sg_test_uniform(&rng, max_val + 1);

				e->val = malloc(vlen + 1);
				e->vlen = vlen;
				for (size_t p = 0; p < vlen;)
				{
					if (sg_test_uniform(&rng, 4) == 0)
						e->val[p++] = (char) sg_test_rand(&rng);
					else
					{
						const char *w = words[sg_test_uniform(&rng, 16)];

						for (size_t q = 0; w[q] && p < vlen; q++)
							e->val[p++] = w[q];
					}
				}
			}
			seq -= 1 + sg_test_uniform(&rng, 5);
		}
		free((char *) keys[i].data);
	}
	free(keys);
}

static void
free_dataset(dataset *d)
{
	for (size_t i = 0; i < d->n; i++)
	{
		free(d->e[i].ikey);
		free(d->e[i].val);
	}
	free(d->e);
	free(d->u);
}

static sg_slice
ekey(const dataset *d, size_t i)
{
	return sg_slice_make(d->e[i].ikey, d->e[i].klen);
}

static sg_slice
eval(const dataset *d, size_t i)
{
	return sg_slice_make(d->e[i].val, d->e[i].vlen);
}

static sg_code
build_table(sg_env *env, const char *dir, const char *name,
			const sg_table_options *opts, const dataset *d, sg_slice stats,
			sg_table_info *info, sg_err *err)
{
	sg_table_builder *b;
	sg_code		rc = sg_table_builder_open(env, dir, name, opts, &b, err);

	if (rc != SG_OK)
		return rc;
	for (size_t i = 0; i < d->n; i++)
	{
		rc = sg_table_builder_add(b, ekey(d, i), eval(d, i), err);
		if (rc != SG_OK)
		{
			sg_table_builder_abandon(b);
			return rc;
		}
	}
	if (stats.len > 0 && (rc = sg_table_builder_set_user_stats(b, stats, err)) != SG_OK)
	{
		sg_table_builder_abandon(b);
		return rc;
	}
	return sg_table_builder_finish(b, info, err);
}

/* Index of the first entry >= target, with iter.h's rule for short targets. */
static size_t
lower_bound(const dataset *d, sg_slice target)
{
	size_t		lo = 0,
				hi = d->n;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;
		int			c;

		if (target.len >= SG_IKEY_TRAILER_LEN)
			c = sg_ikey_compare(ekey(d, mid), target);
		else
		{
			c = sg_slice_compare(sg_ikey_user_key(ekey(d, mid)), target);
			if (c == 0)
				c = 1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The entry index get(ukey u, snapshot) must find, or SIZE_MAX. */
static size_t
expected_version(const dataset *d, size_t u, uint64_t snapshot)
{
	for (size_t v = 0; v < d->u[u].nver; v++)
	{
		sg_parsed_ikey pk = {{NULL, 0}, 0, SG_TYPE_DELETE};

		assert_true(sg_ikey_parse(ekey(d, d->u[u].first + v), &pk));
		if (pk.seq <= snapshot)
			return d->u[u].first + v;
	}
	return SIZE_MAX;
}

static void
check_get(sg_table_reader *r, const dataset *d, size_t u, uint64_t snapshot)
{
	sg_buf		val = SG_BUF_INIT;
	sg_value_type type;
	uint64_t	seq;
	sg_err		err;
	size_t		want = expected_version(d, u, snapshot);
	sg_slice	uk = sg_ikey_user_key(ekey(d, d->u[u].first));
	sg_code		rc = sg_table_reader_get(r, uk, snapshot, &val, &type, &seq, &err);

	if (want == SIZE_MAX)
		assert_int_equal(rc, SG_NOT_FOUND);
	else
	{
		sg_parsed_ikey pk = {{NULL, 0}, 0, SG_TYPE_DELETE};

		if (rc != SG_OK)
			fail_msg("get failed: %s", err.msg);
		assert_true(sg_ikey_parse(ekey(d, want), &pk));
		assert_int_equal(type, pk.type);
		assert_int_equal(seq, pk.seq);
		assert_true(sg_slice_equal(sg_buf_slice(&val), eval(d, want)));
	}
	sg_buf_free(&val);
}

/* A full scan of r by it (destroyed here) yields d exactly. */
static void
check_full_iteration_by(sg_iter *it, const dataset *d)
{
	size_t		i = 0;
	sg_err		err;

	for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it), i++)
	{
		assert_true(i < d->n);
		assert_true(sg_slice_equal(sg_iter_key(it), ekey(d, i)));
		assert_true(sg_slice_equal(sg_iter_value(it), eval(d, i)));
	}
	assert_int_equal(sg_iter_status(it, &err), SG_OK);
	assert_int_equal(i, d->n);
	sg_iter_destroy(it);
}

static void
check_full_iteration(sg_table_reader *r, const dataset *d)
{
	check_full_iteration_by(sg_table_reader_iter(r), d);
}

static void
check_seeks(sg_table_reader *r, const dataset *d, sg_test_rng *rng, int count)
{
	sg_iter    *it = sg_table_reader_iter(r);

	for (int s = 0; s < count; s++)
	{
		sg_buf		t = SG_BUF_INIT;
		int			kind = (int) sg_test_uniform(rng, 4);
		size_t		pick = d->n ? sg_test_uniform(rng, d->n) : 0;

		if (kind == 0 && d->n > 0)	/* an existing key */
			sg_buf_append_slice(&t, ekey(d, pick));
		else if (kind == 1 && d->n > 0) /* its user key at a random sequence */
			sg_ikey_append(&t, sg_ikey_user_key(ekey(d, pick)),
						   sg_test_uniform(rng, 1100000), SG_TYPE_FOR_SEEK);
		else if (kind == 2)		/* a random user key */
		{
			char		k[16];
			int			n = snprintf(k, sizeof(k), "%08llx",
									 (unsigned long long) sg_test_uniform(rng, 0x40000000));

			sg_ikey_append(&t, sg_slice_make(k, (size_t) n), SG_MAX_SEQUENCE, SG_TYPE_FOR_SEEK);
		}
		else					/* a short bare user key */
		{
			char		k[8];
			int			n = snprintf(k, sizeof(k), "%05llx",
									 (unsigned long long) sg_test_uniform(rng, 0x100000));

			sg_buf_append(&t, k, (size_t) n);
		}
		size_t		want = lower_bound(d, sg_buf_slice(&t));

		sg_iter_seek(it, sg_buf_slice(&t));
		for (int step = 0; step < 3; step++, want++)
		{
			if (want >= d->n)
			{
				assert_false(sg_iter_valid(it));
				break;
			}
			assert_true(sg_iter_valid(it));
			assert_true(sg_slice_equal(sg_iter_key(it), ekey(d, want)));
			assert_true(sg_slice_equal(sg_iter_value(it), eval(d, want)));
			sg_iter_next(it);
		}
		sg_buf_free(&t);
	}
	assert_int_equal(sg_iter_status(it, NULL), SG_OK);
	sg_iter_destroy(it);
}

static void
check_props(sg_table_reader *r, const dataset *d, sg_codec codec, sg_slice stats)
{
	const sg_table_props *p = sg_table_reader_props(r);
	uint64_t	kb = 0,
				vb = 0,
				smin = UINT64_MAX,
				smax = 0;

	for (size_t i = 0; i < d->n; i++)
	{
		sg_parsed_ikey pk = {{NULL, 0}, 0, SG_TYPE_DELETE};

		assert_true(sg_ikey_parse(ekey(d, i), &pk));
		kb += d->e[i].klen;
		vb += d->e[i].vlen;
		smin = pk.seq < smin ? pk.seq : smin;
		smax = pk.seq > smax ? pk.seq : smax;
	}
	assert_int_equal(p->num_entries, d->n);
	assert_int_equal(p->num_deletions, d->deletions);
	assert_int_equal(p->raw_key_bytes, kb);
	assert_int_equal(p->raw_value_bytes, vb);
	assert_int_equal(p->codec, codec);
	assert_true(sg_slice_equal(p->user_stats, stats));
	if (d->n > 0)
	{
		assert_int_equal(p->smallest_seq, smin);
		assert_int_equal(p->largest_seq, smax);
		assert_true(sg_slice_equal(p->smallest_key, ekey(d, 0)));
		assert_true(sg_slice_equal(p->largest_key, ekey(d, d->n - 1)));
		assert_true(p->num_data_blocks > 0);
	}
	else
		assert_int_equal(p->num_data_blocks, 0);
}

/* ------------------------------------------------------------ round trip */

static void
roundtrip(sg_codec codec, size_t block_size, const dataset *d, uint64_t seed)
{
	char	   *dir = sg_test_tmpdir("sst");
	sg_env	   *env = sg_env_posix();
	sg_table_options opts;
	sg_table_info info;
	sg_table_reader *r;
	sg_err		err;
	char		path[4096];
	sg_test_rng rng = {seed};
	sg_slice	stats = sg_slice_from_cstr("oldest-xid=1234");
	size_t		absent_pass = 0;

	sg_table_options_init(&opts);
	opts.codec = codec;
	opts.block_size = block_size;
	sg_table_info_init(&info);
	if (build_table(env, dir, "000007.sst", &opts, d, stats, &info, &err) != SG_OK)
		fail_msg("build: %s", err.msg);
	assert_int_equal(info.num_entries, d->n);
	assert_true(sg_slice_equal(sg_buf_slice(&info.smallest_key), ekey(d, 0)));
	assert_true(sg_slice_equal(sg_buf_slice(&info.largest_key), ekey(d, d->n - 1)));

	snprintf(path, sizeof(path), "%s/000007.sst", dir);
	assert_int_equal(env->ops->exists(env, path, &err), SG_OK);
	snprintf(path, sizeof(path), "%s/000007.sst.tmp", dir);
	assert_int_equal(env->ops->exists(env, path, &err), SG_NOT_FOUND);
	snprintf(path, sizeof(path), "%s/000007.sst", dir);
	if (sg_table_reader_open(env, path, &r, &err) != SG_OK)
		fail_msg("open: %s", err.msg);
	assert_int_equal(sg_table_reader_file_size(r), info.file_size);

	const sg_table_props *p = sg_table_reader_props(r);

	printf("  %-4s block %5zu: %zu entries, %llu blocks, raw %llu bytes -> file %llu bytes (%.1f%%)\n",
		   sg_codec_name(codec), block_size, d->n,
		   (unsigned long long) p->num_data_blocks,
		   (unsigned long long) (p->raw_key_bytes + p->raw_value_bytes),
		   (unsigned long long) info.file_size,
		   100.0 * (double) info.file_size / (double) (p->raw_key_bytes + p->raw_value_bytes));
	check_props(r, d, codec, stats);
	{
		uint64_t	counts[SG_CODEC_MAX + 1];
		uint64_t	total = 0;

		/* the blocks say the codec too; this data shrinks under both */
		assert_int_equal(sg_table_reader_block_codecs(r, counts, &err), SG_OK);
		for (int c = 0; c <= SG_CODEC_MAX; c++)
		{
			total += counts[c];
			if (c != (int) codec && c != SG_CODEC_NONE)
				assert_int_equal(counts[c], 0);
		}
		assert_int_equal(total, p->num_data_blocks);
		assert_true(counts[codec] > 0);
	}
	check_full_iteration(r, d);

	/* present keys: newest, each older version's snapshot, and just below */
	for (int i = 0; i < 8000; i++)
	{
		size_t		u = sg_test_uniform(&rng, d->nu);
		size_t		v = sg_test_uniform(&rng, d->u[u].nver);
		sg_parsed_ikey pk = {{NULL, 0}, 0, SG_TYPE_DELETE};

		assert_true(sg_ikey_parse(ekey(d, d->u[u].first + v), &pk));
		check_get(r, d, u, SG_MAX_SEQUENCE);
		check_get(r, d, u, pk.seq);
		check_get(r, d, u, pk.seq - 1);
		check_get(r, d, u, UINT64_MAX);
	}
	/* absent keys */
	for (int i = 0; i < 20000; i++)
	{
		char		k[32];
		int			n = snprintf(k, sizeof(k), "absent%d", i);
		sg_buf		val = SG_BUF_INIT;
		sg_value_type type;

		bool		maybe;

		assert_int_equal(sg_table_reader_may_contain(r, sg_slice_make(k, (size_t) n), &maybe,
													 &err), SG_OK);
		if (maybe)
			absent_pass++;
		assert_int_equal(sg_table_reader_get(r, sg_slice_make(k, (size_t) n), SG_MAX_SEQUENCE,
											 &val, &type, NULL, &err), SG_NOT_FOUND);
		sg_buf_free(&val);
	}
	assert_true(absent_pass < 20000 / 50);
	check_seeks(r, d, &rng, 3000);

	sg_table_reader_close(r);
	sg_table_info_free(&info);
	sg_test_rmtree(dir);
	free(dir);
}

static void
test_roundtrip_all_codecs(void **state)
{
	dataset		d;
	sg_codec	codecs[] = {SG_CODEC_LZ4, SG_CODEC_ZSTD, SG_CODEC_NONE};
	size_t		sizes[] = {4096, 1024};

	(void) state;
	gen_dataset(&d, 50000, 120, 42);
	printf("  dataset: %zu user keys, %zu entries (%llu tombstones)\n",
		   d.nu, d.n, (unsigned long long) d.deletions);
	assert_true(d.n >= 90000);
	for (int c = 0; c < 3; c++)
		for (int s = 0; s < 2; s++)
			roundtrip(codecs[c], sizes[s], &d, 1000 + c * 10 + s);
	free_dataset(&d);
}

static void
test_no_filter_and_large_blocks(void **state)
{
	dataset		d;
	char	   *dir = sg_test_tmpdir("sstnf");
	char		path[4096];
	sg_table_options opts;
	sg_table_reader *r;
	sg_err		err;
	sg_test_rng rng = {9};

	(void) state;
	gen_dataset(&d, 3000, 50, 7);
	sg_table_options_init(&opts);
	opts.bloom_bits_per_key = 0;
	opts.block_size = 65536;
	opts.restart_interval = 1;
	assert_int_equal(build_table(sg_env_posix(), dir, "t.sst", &opts, &d,
								 sg_slice_make(NULL, 0), NULL, &err), SG_OK);
	snprintf(path, sizeof(path), "%s/t.sst", dir);
	assert_int_equal(sg_table_reader_open(sg_env_posix(), path, &r, &err), SG_OK);
	{
		bool		maybe = false;

		assert_int_equal(sg_table_reader_may_contain(r, sg_slice_from_cstr("nothing"), &maybe,
													 &err), SG_OK);
		assert_true(maybe);
	}
	check_full_iteration(r, &d);
	check_seeks(r, &d, &rng, 500);
	for (size_t u = 0; u < d.nu; u += 7)
		check_get(r, &d, u, SG_MAX_SEQUENCE);
	sg_table_reader_close(r);
	free_dataset(&d);
	sg_test_rmtree(dir);
	free(dir);
}

/* ----------------------------------------------------- edges and misuse */

static void
test_empty_table(void **state)
{
	char	   *dir = sg_test_tmpdir("sstempty");
	char		path[4096];
	sg_table_builder *b;
	sg_table_reader *r;
	sg_table_info info;
	sg_err		err;
	sg_buf		val = SG_BUF_INIT;
	sg_value_type type;
	sg_iter    *it;

	(void) state;
	assert_int_equal(sg_table_builder_open(sg_env_posix(), dir, "e.sst", NULL, &b, &err), SG_OK);
	sg_table_info_init(&info);
	assert_int_equal(sg_table_builder_finish(b, &info, &err), SG_OK);
	assert_int_equal(info.num_entries, 0);
	assert_int_equal(info.smallest_key.len, 0);

	snprintf(path, sizeof(path), "%s/e.sst", dir);
	assert_int_equal(sg_table_reader_open(sg_env_posix(), path, &r, &err), SG_OK);
	assert_int_equal(sg_table_reader_props(r)->num_entries, 0);
	assert_int_equal(sg_table_reader_get(r, sg_slice_from_cstr("k"), SG_MAX_SEQUENCE,
										 &val, &type, NULL, &err), SG_NOT_FOUND);
	it = sg_table_reader_iter(r);
	sg_iter_seek_to_first(it);
	assert_false(sg_iter_valid(it));
	sg_iter_seek(it, sg_slice_from_cstr("anything at all"));
	assert_false(sg_iter_valid(it));
	assert_int_equal(sg_iter_status(it, &err), SG_OK);
	sg_iter_destroy(it);
	sg_table_reader_close(r);
	sg_table_info_free(&info);
	sg_buf_free(&val);
	sg_test_rmtree(dir);
	free(dir);
}

static void
test_huge_value(void **state)
{
	sg_codec	codecs[] = {SG_CODEC_LZ4, SG_CODEC_ZSTD, SG_CODEC_NONE};
	size_t		big = 6 * 1024 * 1024 + 17;
	char	   *value = malloc(big);
	sg_test_rng rng = {5};

	(void) state;
	assert_non_null(value);
	/* first half random, second half repetitive: both paths of the codecs */
	for (size_t i = 0; i < big; i++)
		value[i] = i < big / 2 ? (char) sg_test_rand(&rng) : (char) ('a' + i % 7);
	for (int c = 0; c < 3; c++)
	{
		char	   *dir = sg_test_tmpdir("sstbig");
		char		path[4096];
		sg_table_options opts;
		sg_table_builder *b;
		sg_table_reader *r;
		sg_buf		k = SG_BUF_INIT;
		sg_buf		got = SG_BUF_INIT;
		sg_value_type type;
		sg_err		err;
		const char *names[] = {"a", "b", "c"};

		sg_table_options_init(&opts);
		opts.codec = codecs[c];
		assert_int_equal(sg_table_builder_open(sg_env_posix(), dir, "big.sst", &opts, &b, &err), SG_OK);
		for (int i = 0; i < 3; i++)
		{
			sg_buf_reset(&k);
			sg_ikey_append(&k, sg_slice_from_cstr(names[i]), 10, SG_TYPE_PUT);
			assert_int_equal(sg_table_builder_add(b, sg_buf_slice(&k),
												  i == 1 ? sg_slice_make(value, big) : sg_slice_from_cstr("small"),
												  &err), SG_OK);
		}
		assert_int_equal(sg_table_builder_finish(b, NULL, &err), SG_OK);
		snprintf(path, sizeof(path), "%s/big.sst", dir);
		assert_int_equal(sg_table_reader_open(sg_env_posix(), path, &r, &err), SG_OK);
		assert_true(sg_table_reader_props(r)->max_block_raw >= big);
		printf("  huge value, %s: %zu-byte value -> %llu-byte file\n", sg_codec_name(codecs[c]),
			   big, (unsigned long long) sg_table_reader_file_size(r));
		for (int i = 0; i < 3; i++)
		{
			assert_int_equal(sg_table_reader_get(r, sg_slice_from_cstr(names[i]), 100, &got,
												 &type, NULL, &err), SG_OK);
			assert_int_equal(type, SG_TYPE_PUT);
			if (i == 1)
			{
				assert_int_equal(got.len, big);
				assert_memory_equal(got.data, value, big);
			}
			else
				assert_true(sg_slice_equal(sg_buf_slice(&got), sg_slice_from_cstr("small")));
		}
		/* before the entries were written: invisible */
		assert_int_equal(sg_table_reader_get(r, sg_slice_from_cstr("b"), 9, &got,
											 &type, NULL, &err), SG_NOT_FOUND);
		sg_table_reader_close(r);
		sg_buf_free(&k);
		sg_buf_free(&got);
		sg_test_rmtree(dir);
		free(dir);
	}
	free(value);
}

static void
test_out_of_order_rejected(void **state)
{
	char	   *dir = sg_test_tmpdir("sstorder");
	char		path[4096];
	sg_table_builder *b;
	sg_table_reader *r;
	sg_buf		k = SG_BUF_INIT;
	sg_buf		v = SG_BUF_INIT;
	sg_value_type type;
	sg_err		err;

	(void) state;
	assert_int_equal(sg_table_builder_open(sg_env_posix(), dir, "o.sst", NULL, &b, &err), SG_OK);
	sg_ikey_append(&k, sg_slice_from_cstr("m"), 5, SG_TYPE_PUT);
	assert_int_equal(sg_table_builder_add(b, sg_buf_slice(&k), sg_slice_from_cstr("v5"), &err), SG_OK);

	/* the same internal key again */
	assert_int_equal(sg_table_builder_add(b, sg_buf_slice(&k), sg_slice_from_cstr("x"), &err),
					 SG_INVALID_ARGUMENT);
	/* a smaller user key */
	sg_buf_reset(&k);
	sg_ikey_append(&k, sg_slice_from_cstr("a"), 9, SG_TYPE_PUT);
	assert_int_equal(sg_table_builder_add(b, sg_buf_slice(&k), sg_slice_from_cstr("x"), &err),
					 SG_INVALID_ARGUMENT);
	/* same user key, newer sequence: sorts before, so out of order */
	sg_buf_reset(&k);
	sg_ikey_append(&k, sg_slice_from_cstr("m"), 6, SG_TYPE_PUT);
	assert_int_equal(sg_table_builder_add(b, sg_buf_slice(&k), sg_slice_from_cstr("x"), &err),
					 SG_INVALID_ARGUMENT);
	/* malformed internal keys: too short, unknown type */
	assert_int_equal(sg_table_builder_add(b, sg_slice_from_cstr("short"), sg_slice_from_cstr("x"), &err),
					 SG_INVALID_ARGUMENT);
	sg_buf_reset(&k);
	sg_buf_append(&k, "z", 1);
	sg_put_fixed64(&k, (UINT64_C(3) << 8) | 7);
	assert_int_equal(sg_table_builder_add(b, sg_buf_slice(&k), sg_slice_from_cstr("x"), &err),
					 SG_INVALID_ARGUMENT);

	/* the rejected calls changed nothing: the builder goes on */
	sg_buf_reset(&k);
	sg_ikey_append(&k, sg_slice_from_cstr("m"), 4, SG_TYPE_DELETE);
	assert_int_equal(sg_table_builder_add(b, sg_buf_slice(&k), sg_slice_make(NULL, 0), &err), SG_OK);
	assert_int_equal(sg_table_builder_num_entries(b), 2);
	assert_int_equal(sg_table_builder_finish(b, NULL, &err), SG_OK);

	snprintf(path, sizeof(path), "%s/o.sst", dir);
	assert_int_equal(sg_table_reader_open(sg_env_posix(), path, &r, &err), SG_OK);
	assert_int_equal(sg_table_reader_props(r)->num_entries, 2);
	assert_int_equal(sg_table_reader_props(r)->num_deletions, 1);
	assert_int_equal(sg_table_reader_get(r, sg_slice_from_cstr("m"), 100, &v, &type, NULL, &err), SG_OK);
	assert_int_equal(type, SG_TYPE_PUT);
	assert_int_equal(sg_table_reader_get(r, sg_slice_from_cstr("m"), 4, &v, &type, NULL, &err), SG_OK);
	assert_int_equal(type, SG_TYPE_DELETE);
	assert_int_equal(v.len, 0);
	assert_int_equal(sg_table_reader_get(r, sg_slice_from_cstr("m"), 3, &v, &type, NULL, &err),
					 SG_NOT_FOUND);
	sg_table_reader_close(r);

	/* abandon removes the temporary file */
	assert_int_equal(sg_table_builder_open(sg_env_posix(), dir, "gone.sst", NULL, &b, &err), SG_OK);
	assert_int_equal(sg_table_builder_add(b, sg_buf_slice(&k), sg_slice_from_cstr("x"), &err), SG_OK);
	sg_table_builder_abandon(b);
	snprintf(path, sizeof(path), "%s/gone.sst.tmp", dir);
	assert_int_equal(sg_env_posix()->ops->exists(sg_env_posix(), path, &err), SG_NOT_FOUND);
	snprintf(path, sizeof(path), "%s/gone.sst", dir);
	assert_int_equal(sg_env_posix()->ops->exists(sg_env_posix(), path, &err), SG_NOT_FOUND);

	sg_buf_free(&k);
	sg_buf_free(&v);
	sg_test_rmtree(dir);
	free(dir);
}

/* Block-level: a crafted block with lengths past its end is corruption. */
static void
test_block_iter_bounds(void **state)
{
	sg_block_builder bb;
	sg_buf		k = SG_BUF_INIT;
	sg_slice	blk;
	char	   *copy;
	sg_iter    *it;
	sg_err		err;
	int			n = 0;

	(void) state;
	sg_block_builder_init(&bb, 2);
	for (int i = 0; i < 5; i++)
	{
		char		uk[8];

		snprintf(uk, sizeof(uk), "key%d", i);
		sg_buf_reset(&k);
		sg_ikey_append(&k, sg_slice_from_cstr(uk), 1, SG_TYPE_PUT);
		sg_block_builder_add(&bb, sg_buf_slice(&k), sg_slice_from_cstr("v"));
	}
	blk = sg_block_builder_finish(&bb);
	it = sg_block_iter_new(blk.data, blk.len, NULL, "blk", 0);
	for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it))
		n++;
	assert_int_equal(n, 5);
	sg_iter_destroy(it);

	/* value length of the first entry made huge: must stop, not read on */
	copy = malloc(blk.len);
	memcpy(copy, blk.data, blk.len);
	copy[2] = 0x7f;
	it = sg_block_iter_new(copy, blk.len, copy, "blk", 4242);
	sg_iter_seek_to_first(it);
	assert_false(sg_iter_valid(it));
	assert_int_equal(sg_iter_status(it, &err), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "4242"));
	sg_iter_destroy(it);

	/* restart count larger than the block */
	copy = malloc(blk.len);
	memcpy(copy, blk.data, blk.len);
	copy[blk.len - 1] = 0x40;
	it = sg_block_iter_new(copy, blk.len, copy, "blk", 0);
	sg_iter_seek(it, sg_slice_from_cstr("key2xxxxxxxx"));
	assert_false(sg_iter_valid(it));
	assert_int_equal(sg_iter_status(it, &err), SG_CORRUPTION);
	sg_iter_destroy(it);

	/* too short to hold a restart count */
	it = sg_block_iter_new("ab", 2, NULL, "blk", 0);
	sg_iter_seek_to_first(it);
	assert_false(sg_iter_valid(it));
	assert_int_equal(sg_iter_status(it, &err), SG_CORRUPTION);
	sg_iter_destroy(it);

	sg_block_builder_free(&bb);
	sg_buf_free(&k);
}

/* ------------------------------------------------------------ corruption */

static void
write_bytes(const char *path, const char *data, size_t n)
{
	sg_file    *f;
	sg_err		err;

	assert_int_equal(sg_file_open(sg_env_posix(), path, SG_OPEN_CREATE, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, data, n, &err), SG_OK);
	assert_int_equal(sg_file_close(f, &err), SG_OK);
}

static void
assert_corruption_named(sg_code rc, const sg_err *err, const char *path)
{
	if (rc != SG_CORRUPTION)
		fail_msg("expected corruption, got %s: %s", sg_code_name(rc), err->msg);
	if (strstr(err->msg, path) == NULL)
		fail_msg("message does not name the file: %s", err->msg);
}

/*
 * Open and read everything in a damaged copy. Every value returned must be
 * right; the damage must be reported (by open or by reading) as
 * corruption naming the file. Returns where it was detected (0 open,
 * 1 reading).
 */
static int
read_damaged(const char *path, const dataset *d)
{
	sg_table_reader *r;
	sg_err		err;
	sg_code		rc = sg_table_reader_open(sg_env_posix(), path, &r, &err);
	sg_iter    *it;
	size_t		i = 0;
	bool		detected = false;

	if (rc != SG_OK)
	{
		assert_corruption_named(rc, &err, path);
		return 0;
	}
	it = sg_table_reader_iter(r);
	for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it), i++)
	{
		assert_true(i < d->n);
		assert_true(sg_slice_equal(sg_iter_key(it), ekey(d, i)));
		assert_true(sg_slice_equal(sg_iter_value(it), eval(d, i)));
	}
	rc = sg_iter_status(it, &err);
	sg_iter_destroy(it);
	if (rc != SG_OK)
	{
		assert_corruption_named(rc, &err, path);
		detected = true;
	}
	for (size_t u = 0; u < d->nu; u++)
	{
		sg_buf		val = SG_BUF_INIT;
		sg_value_type type;
		size_t		want = d->u[u].first;

		rc = sg_table_reader_get(r, sg_ikey_user_key(ekey(d, want)), SG_MAX_SEQUENCE,
								 &val, &type, NULL, &err);
		if (rc == SG_OK)
		{
			sg_parsed_ikey pk = {{NULL, 0}, 0, SG_TYPE_DELETE};

			assert_true(sg_ikey_parse(ekey(d, want), &pk));
			assert_int_equal(type, pk.type);
			assert_true(sg_slice_equal(sg_buf_slice(&val), eval(d, want)));
		}
		else
		{
			assert_corruption_named(rc, &err, path);
			detected = true;
		}
		sg_buf_free(&val);
	}
	sg_table_reader_close(r);
	if (!detected)
		fail_msg("damage in \"%s\" went unnoticed", path);
	return 1;
}

static void
corruption_every_byte(sg_codec codec)
{
	char	   *dir = sg_test_tmpdir("sstbad");
	char		path[4096];
	char		bad[4096];
	sg_table_options opts;
	dataset		d;
	char	   *data;
	size_t		n;
	sg_err		err;
	int			where[2] = {0, 0};

	gen_dataset(&d, 60, 60, 3);
	sg_table_options_init(&opts);
	opts.codec = codec;
	opts.block_size = 256;
	opts.restart_interval = 4;
	assert_int_equal(build_table(sg_env_posix(), dir, "good.sst", &opts, &d,
								 sg_slice_from_cstr("stats"), NULL, &err), SG_OK);
	snprintf(path, sizeof(path), "%s/good.sst", dir);
	snprintf(bad, sizeof(bad), "%s/bad.sst", dir);
	assert_int_equal(sg_env_read_file(sg_env_posix(), path, &data, &n, &err), SG_OK);
	printf("  %s: corrupting each of %zu bytes (%zu entries)\n", sg_codec_name(codec), n, d.n);

	for (size_t off = 0; off < n; off++)
	{
		static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
		char		saved = data[off];

		data[off] ^= (char) masks[off % 4];
		write_bytes(bad, data, n);
		where[read_damaged(bad, &d)]++;
		data[off] = saved;
	}
	printf("  detected at open: %d, while reading: %d\n", where[0], where[1]);
	assert_true(where[1] > 0);	/* data blocks are only read on demand */

	/* truncated at every length: a clean error, never a crash */
	for (size_t len = 0; len < n; len++)
	{
		sg_table_reader *r;
		sg_code		rc;

		write_bytes(bad, data, len);
		rc = sg_table_reader_open(sg_env_posix(), bad, &r, &err);
		assert_corruption_named(rc, &err, bad);
	}
	free(data);
	free_dataset(&d);
	sg_test_rmtree(dir);
	free(dir);
}

static void
test_corruption_every_byte(void **state)
{
	(void) state;
	corruption_every_byte(SG_CODEC_LZ4);
	corruption_every_byte(SG_CODEC_ZSTD);
}

/*
 * A compressed payload garbled under a valid checksum (damage the CRC
 * cannot see, or a bug in the writer): the decoder reports corruption and
 * never returns bytes of the wrong length, for each codec.
 */
static void
test_garbled_payload_valid_checksum(void **state)
{
	char		raw[4096];

	(void) state;
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = "abcdefgh"[(i * 7 + i / 64) % 8];
	for (sg_codec codec = SG_CODEC_LZ4; codec <= SG_CODEC_MAX; codec++)
	{
		sg_buf		stored = SG_BUF_INIT;
		uint64_t	stored_len;
		sg_err		err;
		char	   *out = NULL;
		size_t		out_len = 0;
		sg_block_handle h;
		int			caught = 0;

		assert_int_equal(sg_table_encode_block(&stored, sg_slice_make(raw, sizeof(raw)), codec, 3,
											   &stored_len, &err), SG_OK);
		assert_int_equal((uint8_t) stored.data[stored_len], (uint8_t) codec);
		h.offset = 0;
		h.size = stored_len;
		assert_int_equal(sg_table_decode_block(stored.data, "t", stored.len, h, sizeof(raw),
											   &out, &out_len, &err), SG_OK);
		assert_int_equal(out_len, sizeof(raw));
		assert_memory_equal(out, raw, sizeof(raw));
		free(out);

		/* each payload byte after the length varint, with the checksum redone */
		for (uint64_t off = 2; off < stored_len; off++)
		{
			char		saved = stored.data[off];
			uint32_t	crc;
			sg_code		rc;

			stored.data[off] ^= 0x5a;
			crc = sg_crc32c_extend(sg_crc32c(stored.data, stored_len), stored.data + stored_len, 1);
			sg_encode_fixed32(stored.data + stored_len + 1, sg_crc32c_mask(crc));
			out = NULL;
			rc = sg_table_decode_block(stored.data, "t", stored.len, h, sizeof(raw),
									   &out, &out_len, &err);
			if (rc == SG_OK)
				assert_int_equal(out_len, sizeof(raw));	/* a literal changed */
			else
			{
				assert_int_equal(rc, SG_CORRUPTION);
				assert_non_null(strstr(err.msg, "decompression failed"));
				caught++;
			}
			free(out);
			stored.data[off] = saved;
		}
		printf("  %s: %d of %llu garbled payload bytes fail decompression\n",
			   sg_codec_name(codec), caught, (unsigned long long) stored_len - 2);
		assert_true(caught > 0);
		sg_buf_free(&stored);
	}
}

/*
 * A scan reads ahead: a table of many small blocks is iterated with a few
 * preads, not one per block, and yields every entry; seeks in key order
 * with one iterator read each block once. Damage in a block
 * in the middle still stops the scan at that block: it yields exactly the
 * entries a fresh iterator (no read-ahead) can reach before the damage.
 */
static void
test_scan_reads_ahead(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_table_options opts;
	sg_table_info info;
	sg_table_reader *r;
	sg_iter    *it;
	sg_env_mem_stats st0,
				st1;
	dataset		d;
	size_t		i = 0;
	size_t		blocks;
	uint64_t	full_scan_bytes;
	char	   *data;
	size_t		n;
	sg_err		err;

	(void) state;
	gen_dataset(&d, 400, 400, 3);
	sg_table_options_init(&opts);
	opts.block_size = 256;
	assert_int_equal(env->ops->mkdir(env, "/db", &err), SG_OK);
	sg_table_info_init(&info);
	assert_int_equal(build_table(env, "/db", "ra.sst", &opts, &d, sg_slice_make(NULL, 0),
								 &info, &err), SG_OK);
	sg_table_info_free(&info);
	assert_int_equal(sg_table_reader_open(env, "/db/ra.sst", &r, &err), SG_OK);
	blocks = sg_table_reader_props(r)->num_data_blocks;
	assert_true(blocks > 50);
	it = sg_table_reader_iter(r);
	sg_env_mem_get_stats(env, &st0);
	for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it), i++)
		assert_true(sg_slice_equal(sg_iter_key(it), ekey(&d, i)));
	assert_int_equal(sg_iter_status(it, &err), SG_OK);
	assert_int_equal(i, d.n);
	sg_env_mem_get_stats(env, &st1);
	printf("  %zu blocks scanned with %llu preads\n", blocks,
		   (unsigned long long) (st1.preads - st0.preads));
	assert_true(st1.preads - st0.preads < blocks / 10);
	full_scan_bytes = st1.bytes_read - st0.bytes_read;
	sg_iter_destroy(it);

	/*
	 * The window grows from 16 kB: a fresh iterator that steps through a
	 * few blocks (a short index range) reads one small window, not the
	 * whole file.
	 */
	it = sg_table_reader_iter(r);
	sg_env_mem_get_stats(env, &st0);
	sg_iter_seek_to_first(it);
	for (i = 0; i < 12 && sg_iter_valid(it); sg_iter_next(it), i++)
		assert_true(sg_slice_equal(sg_iter_key(it), ekey(&d, i)));
	assert_int_equal(i, 12);
	sg_env_mem_get_stats(env, &st1);
	printf("  a few blocks stepped through: %llu bytes read, a whole scan %llu\n",
		   (unsigned long long) (st1.bytes_read - st0.bytes_read),
		   (unsigned long long) full_scan_bytes);
	assert_true(full_scan_bytes > 4 * 16 * 1024);
	assert_true(st1.bytes_read - st0.bytes_read <= 16 * 1024 + 2 * 1024);
	sg_iter_destroy(it);

	/*
	 * Stepped through its leaf (a scan's way, read.c): each leaf is the
	 * loaded block, unbounded, and gives that block's entries; resync
	 * loads the next block, read ahead as before; a seek after a resync
	 * lands as on a stepped iterator.
	 */
	it = sg_table_reader_iter(r);
	sg_env_mem_get_stats(env, &st0);
	{
		size_t		leaves = 0;

		i = 0;
		for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_resync(it), leaves++)
		{
			sg_slice	bound = {NULL, 0};
			sg_iter    *leaf = sg_iter_leaf(it, &bound);

			assert_non_null(leaf);
			assert_int_equal(bound.len, 0);
			for (; sg_iter_valid(leaf); sg_iter_next(leaf), i++)
			{
				assert_true(i < d.n);
				assert_true(sg_slice_equal(sg_iter_key(leaf), ekey(&d, i)));
				assert_true(sg_slice_equal(sg_iter_value(leaf), eval(&d, i)));
			}
		}
		assert_int_equal(sg_iter_status(it, &err), SG_OK);
		assert_int_equal(i, d.n);
		assert_int_equal(leaves, blocks);
		sg_env_mem_get_stats(env, &st1);
		assert_true(st1.preads - st0.preads < blocks / 10);
		for (i = 0; i < d.n; i += 7)
		{
			sg_slice	bound;
			sg_iter    *leaf;

			sg_iter_seek(it, ekey(&d, i));
			leaf = sg_iter_leaf(it, &bound);
			assert_non_null(leaf);
			assert_true(sg_slice_equal(sg_iter_key(leaf), ekey(&d, i)));
			sg_iter_next(leaf);
			sg_iter_resync(it);
			if (i + 1 < d.n)
				assert_true(sg_slice_equal(sg_iter_key(it), ekey(&d, i + 1)));
			else
				assert_false(sg_iter_valid(it));
		}
	}
	sg_iter_destroy(it);

	/*
	 * One iterator kept for point lookups (the glue keeps one per file):
	 * a seek within the block read last reads nothing, a seek to another
	 * block reads that block alone (no read-ahead window for seeks).
	 */
	it = sg_table_reader_iter(r);
	sg_env_mem_get_stats(env, &st0);
	for (i = 0; i < d.n; i++)
	{
		sg_iter_seek(it, ekey(&d, i));
		assert_true(sg_iter_valid(it));
		assert_true(sg_slice_equal(sg_iter_key(it), ekey(&d, i)));
	}
	sg_env_mem_get_stats(env, &st1);
	printf("  %zu seeks in key order read %llu times (%zu blocks)\n", d.n,
		   (unsigned long long) (st1.preads - st0.preads), blocks);
	assert_true(st1.preads - st0.preads <= blocks);
	assert_true(st1.preads - st0.preads >= blocks / 2);

	/* reused for targets in any order, present or not: as a fresh one */
	sg_test_rng rng = {0x5ee4};

	for (int s = 0; s < 3000; s++)
	{
		sg_slice	k = ekey(&d, sg_test_uniform(&rng, d.n));
		char		t[512];
		sg_iter    *fresh = sg_table_reader_iter(r);

		/* half the time a key between entries: the same key, another trailer */
		memcpy(t, k.data, k.len);
		if (s % 2)
			sg_encode_fixed64(t + k.len - 8, sg_decode_fixed64(k.data + k.len - 8) ^ 0x100);
		sg_iter_seek(it, sg_slice_make(t, k.len));
		sg_iter_seek(fresh, sg_slice_make(t, k.len));
		assert_int_equal(sg_iter_valid(it), sg_iter_valid(fresh));
		if (sg_iter_valid(fresh))
		{
			assert_true(sg_slice_equal(sg_iter_key(it), sg_iter_key(fresh)));
			sg_iter_next(it);
			sg_iter_next(fresh);
			assert_int_equal(sg_iter_valid(it), sg_iter_valid(fresh));
			if (sg_iter_valid(fresh))
				assert_true(sg_slice_equal(sg_iter_key(it), sg_iter_key(fresh)));
		}
		sg_iter_destroy(fresh);
	}
	sg_iter_destroy(it);
	sg_table_reader_close(r);

	/* a flipped byte half way into the data blocks */
	assert_int_equal(sg_env_read_file(env, "/db/ra.sst", &data, &n, &err), SG_OK);
	data[n / 3] ^= 0x40;
	assert_int_equal(sg_env_write_file_atomic(env, "/db", "ra.sst", data, n, &err), SG_OK);
	free(data);
	assert_int_equal(sg_table_reader_open(env, "/db/ra.sst", &r, &err), SG_OK);
	it = sg_table_reader_iter(r);
	for (i = 0, sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it), i++)
		assert_true(sg_slice_equal(sg_iter_key(it), ekey(&d, i)));
	assert_int_equal(sg_iter_status(it, &err), SG_CORRUPTION);
	sg_iter_destroy(it);

	size_t		reach = 0;

	for (; reach < d.n; reach++)
	{
		sg_iter    *one = sg_table_reader_iter(r);
		bool		ok;

		sg_iter_seek(one, ekey(&d, reach));
		ok = sg_iter_valid(one) && sg_slice_equal(sg_iter_key(one), ekey(&d, reach));
		sg_iter_destroy(one);
		if (!ok)
			break;
	}
	assert_true(i > 0 && i < d.n);
	assert_int_equal(i, reach);
	sg_table_reader_close(r);
	free_dataset(&d);
	sg_env_mem_destroy(env);
}

/* A block cache for the tests: every block kept, lookups and inserts counted. */
typedef struct test_cache
{
	sg_block_cache_key keys[256];
	sg_buf		blocks[256];
	int			n;
	int			hits;
	int			lookups;
	int			inserts;
} test_cache;

static bool
test_cache_lookup(void *arg, const sg_block_cache_key *key, char **block, size_t *len)
{
	test_cache *c = arg;

	c->lookups++;
	for (int i = 0; i < c->n; i++)
		if (memcmp(&c->keys[i], key, sizeof(*key)) == 0)
		{
			*block = malloc(c->blocks[i].len);
			memcpy(*block, c->blocks[i].data, c->blocks[i].len);
			*len = c->blocks[i].len;
			c->hits++;
			return true;
		}
	return false;
}

static void
test_cache_insert(void *arg, const sg_block_cache_key *key, const char *block, size_t len)
{
	test_cache *c = arg;

	c->inserts++;
	assert_true(c->n < 256);
	c->keys[c->n] = *key;
	sg_buf_init(&c->blocks[c->n]);
	sg_buf_append(&c->blocks[c->n], block, len);
	c->n++;
}

/*
 * Seeks go through the block cache: the first reader's lookups fill it,
 * a second reader of the same file (another backend) is answered from it
 * without reading a data block, and the values are right; a reader under
 * another file id shares nothing. A scan goes around the cache unless its
 * iterator was asked to fill it (sg_table_reader_scan_iter); then the next
 * scan, also filling, reads no data block.
 */
static void
test_block_cache(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	test_cache	cache = {0};
	sg_block_cache ops = {test_cache_lookup, test_cache_insert, &cache};
	sg_table_options opts;
	sg_table_reader *r;
	sg_env_mem_stats st0,
				st1;
	dataset		d;
	sg_err		err;
	int			filled;

	(void) state;
	gen_dataset(&d, 300, 30, 9);
	sg_table_options_init(&opts);
	opts.block_size = 512;
	assert_int_equal(env->ops->mkdir(env, "/db", &err), SG_OK);
	assert_int_equal(build_table(env, "/db", "c.sst", &opts, &d, sg_slice_make(NULL, 0),
								 NULL, &err), SG_OK);

	/* an ordinary scan goes around the cache */
	assert_int_equal(sg_table_reader_open(env, "/db/c.sst", &r, &err), SG_OK);
	sg_table_reader_set_block_cache(r, &ops, 7, 1);
	check_full_iteration(r, &d);
	assert_int_equal(cache.lookups, 0);
	assert_int_equal(cache.inserts, 0);

	/* lookups fill it, one insert per block read */
	for (size_t u = 0; u < d.nu; u++)
		check_get(r, &d, u, SG_MAX_SEQUENCE);
	sg_table_reader_close(r);
	filled = cache.n;
	assert_true(filled > 3);
	assert_int_equal(cache.inserts, cache.lookups - cache.hits);

	/* a second reader of the file reads no data block */
	assert_int_equal(sg_table_reader_open(env, "/db/c.sst", &r, &err), SG_OK);
	sg_table_reader_set_block_cache(r, &ops, 7, 1);
	cache.hits = cache.lookups = 0;
	sg_env_mem_get_stats(env, &st0);
	for (size_t u = 0; u < d.nu; u++)
		check_get(r, &d, u, SG_MAX_SEQUENCE);
	sg_env_mem_get_stats(env, &st1);
	assert_int_equal(st1.preads - st0.preads, 2);	/* filter and index only */
	assert_true(cache.hits > 0);
	assert_int_equal(cache.hits, cache.lookups);
	assert_int_equal(cache.n, filled);
	sg_table_reader_close(r);

	/* another file id: nothing shared */
	assert_int_equal(sg_table_reader_open(env, "/db/c.sst", &r, &err), SG_OK);
	sg_table_reader_set_block_cache(r, &ops, 7, 2);
	cache.hits = 0;
	check_get(r, &d, 0, SG_MAX_SEQUENCE);
	assert_int_equal(cache.hits, 0);

	/* a scan told to fill the cache offers every block it reads ... */
	cache.hits = cache.lookups = cache.inserts = 0;
	check_full_iteration_by(sg_table_reader_scan_iter(r, true), &d);
	assert_int_equal(cache.lookups, (int) sg_table_reader_props(r)->num_data_blocks);
	assert_int_equal(cache.inserts, cache.lookups - cache.hits);
	assert_true(cache.inserts > 0);
	sg_table_reader_close(r);

	/* ... so the next filling scan, in another reader, reads no data block */
	assert_int_equal(sg_table_reader_open(env, "/db/c.sst", &r, &err), SG_OK);
	sg_table_reader_set_block_cache(r, &ops, 7, 2);
	cache.hits = cache.lookups = 0;
	sg_env_mem_get_stats(env, &st0);
	check_full_iteration_by(sg_table_reader_scan_iter(r, true), &d);
	sg_env_mem_get_stats(env, &st1);
	assert_int_equal(st1.preads - st0.preads, 1);	/* the index only */
	assert_int_equal(cache.hits, cache.lookups);
	assert_int_equal(cache.hits, (int) sg_table_reader_props(r)->num_data_blocks);
	sg_table_reader_close(r);

	for (int i = 0; i < cache.n; i++)
		sg_buf_free(&cache.blocks[i]);
	free_dataset(&d);
	sg_env_mem_destroy(env);
}

/*
 * Open reads the footer and the properties only; the filter is read by the
 * first lookup and the index by the first iterator, each once. Damage in
 * either leaves the table openable and is reported, naming the file, by
 * the first call that needs the block, and again by the next one (a failed
 * load is not remembered as done). A file removed after open (compaction
 * unlinks its inputs while backends still read them) still loads both.
 */
static void
test_index_and_filter_load_on_first_use(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	char	   *dir = sg_test_tmpdir("sstlazy");
	char		path[4096];
	char		bad[4096];
	sg_table_options opts;
	sg_table_reader *r;
	sg_table_footer footer;
	sg_env_mem_stats st0,
				st1;
	sg_iter    *it;
	dataset		d;
	char	   *data;
	size_t		n;
	sg_err		err;
	sg_buf		val = SG_BUF_INIT;
	sg_value_type type;
	bool		maybe;
	sg_slice	key;

	(void) state;
	gen_dataset(&d, 400, 40, 5);
	key = sg_ikey_user_key(ekey(&d, d.u[7].first));
	sg_table_options_init(&opts);
	opts.block_size = 256;
	assert_int_equal(env->ops->mkdir(env, "/db", &err), SG_OK);
	assert_int_equal(build_table(env, "/db", "lazy.sst", &opts, &d, sg_slice_make(NULL, 0),
								 NULL, &err), SG_OK);

	sg_env_mem_get_stats(env, &st0);
	assert_int_equal(sg_table_reader_open(env, "/db/lazy.sst", &r, &err), SG_OK);
	sg_env_mem_get_stats(env, &st1);
	assert_int_equal(st1.preads - st0.preads, 2);	/* footer, properties */

	st0 = st1;
	assert_int_equal(sg_table_reader_may_contain(r, key, &maybe, &err), SG_OK);
	assert_true(maybe);
	assert_int_equal(sg_table_reader_may_contain(r, key, &maybe, &err), SG_OK);
	sg_env_mem_get_stats(env, &st1);
	assert_int_equal(st1.preads - st0.preads, 1);	/* the filter, once */

	st0 = st1;
	it = sg_table_reader_iter(r);
	sg_iter_destroy(it);
	it = sg_table_reader_iter(r);
	sg_env_mem_get_stats(env, &st1);
	assert_int_equal(st1.preads - st0.preads, 1);	/* the index, once */
	sg_iter_destroy(it);
	check_full_iteration(r, &d);
	sg_table_reader_close(r);
	sg_env_mem_destroy(env);

	/* damage: the same table on disk, one byte of index or filter flipped */
	assert_int_equal(build_table(sg_env_posix(), dir, "good.sst", &opts, &d,
								 sg_slice_make(NULL, 0), NULL, &err), SG_OK);
	snprintf(path, sizeof(path), "%s/good.sst", dir);
	snprintf(bad, sizeof(bad), "%s/bad.sst", dir);
	assert_int_equal(sg_env_read_file(sg_env_posix(), path, &data, &n, &err), SG_OK);
	assert_int_equal(sg_table_footer_decode(data + n - SG_TABLE_FOOTER_LEN, path,
											n - SG_TABLE_FOOTER_LEN, &footer, &err), SG_OK);
	assert_true(footer.filter.size > 0);

	data[footer.index.offset + footer.index.size / 2] ^= 0x20;
	write_bytes(bad, data, n);
	assert_int_equal(sg_table_reader_open(sg_env_posix(), bad, &r, &err), SG_OK);
	for (int round = 0; round < 2; round++)
	{
		it = sg_table_reader_iter(r);
		sg_iter_seek_to_first(it);
		assert_false(sg_iter_valid(it));
		assert_corruption_named(sg_iter_status(it, &err), &err, bad);
		sg_iter_destroy(it);
		assert_corruption_named(sg_table_reader_get(r, key, SG_MAX_SEQUENCE, &val, &type,
													NULL, &err), &err, bad);
	}
	assert_int_equal(sg_table_reader_may_contain(r, key, &maybe, &err), SG_OK);
	sg_table_reader_close(r);
	data[footer.index.offset + footer.index.size / 2] ^= 0x20;

	data[footer.filter.offset + footer.filter.size / 2] ^= 0x20;
	write_bytes(bad, data, n);
	assert_int_equal(sg_table_reader_open(sg_env_posix(), bad, &r, &err), SG_OK);
	for (int round = 0; round < 2; round++)
	{
		maybe = false;
		assert_corruption_named(sg_table_reader_may_contain(r, key, &maybe, &err), &err, bad);
		assert_true(maybe);
		assert_corruption_named(sg_table_reader_get(r, key, SG_MAX_SEQUENCE, &val, &type,
													NULL, &err), &err, bad);
	}
	check_full_iteration(r, &d);	/* scans need no filter */
	sg_table_reader_close(r);

	/* removed after open, before anything was loaded */
	assert_int_equal(sg_table_reader_open(sg_env_posix(), path, &r, &err), SG_OK);
	assert_int_equal(sg_env_posix()->ops->unlink(sg_env_posix(), path, &err), SG_OK);
	check_get(r, &d, 7, SG_MAX_SEQUENCE);
	check_full_iteration(r, &d);
	sg_table_reader_close(r);

	sg_buf_free(&val);
	free(data);
	free_dataset(&d);
	sg_test_rmtree(dir);
	free(dir);
}

/* ---------------------------------------------------- failures and crash */

static void
test_io_failures(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_table_options opts;
	sg_env_mem_stats st;
	dataset		d;
	sg_err		err;
	uint64_t	appends;
	sg_table_reader *r;

	(void) state;
	assert_non_null(env);
	assert_int_equal(env->ops->mkdir(env, "/db", &err), SG_OK);
	gen_dataset(&d, 200, 40, 11);
	sg_table_options_init(&opts);
	opts.block_size = 512;

	sg_env_mem_reset_stats(env);
	assert_int_equal(build_table(env, "/db", "ok.sst", &opts, &d, sg_slice_make(NULL, 0),
								 NULL, &err), SG_OK);
	sg_env_mem_get_stats(env, &st);
	appends = st.appends;
	assert_true(appends > 4);
	assert_int_equal(st.syncs, 1);
	assert_int_equal(st.dir_syncs, 1);

	/* every append failing in turn: a clean error and no file left behind */
	for (uint64_t nth = 1; nth <= appends; nth++)
	{
		sg_env_mem_fail_nth_write(env, nth);
		sg_err_clear(&err);
		assert_int_not_equal(build_table(env, "/db", "w.sst", &opts, &d, sg_slice_make(NULL, 0),
										 NULL, &err), SG_OK);
		assert_int_equal(env->ops->exists(env, "/db/w.sst.tmp", NULL), SG_NOT_FOUND);
		assert_int_equal(env->ops->exists(env, "/db/w.sst", NULL), SG_NOT_FOUND);
	}
	/* file fsync and directory fsync failing: flagged, never "ok" */
	for (uint64_t nth = 1; nth <= 2; nth++)
	{
		sg_env_mem_fail_nth_sync(env, nth);
		sg_err_clear(&err);
		assert_int_not_equal(build_table(env, "/db", "s.sst", &opts, &d, sg_slice_make(NULL, 0),
										 NULL, &err), SG_OK);
		assert_true(err.sync_failed);
		assert_int_equal(env->ops->exists(env, "/db/s.sst", NULL), SG_NOT_FOUND);
	}

	/* a finished table survives a power loss whole */
	sg_env_mem_crash(env);
	assert_int_equal(sg_table_reader_open(env, "/db/ok.sst", &r, &err), SG_OK);
	check_full_iteration(r, &d);
	sg_table_reader_close(r);
	free_dataset(&d);
	sg_env_mem_destroy(env);
}

/* ------------------------------------------------------------ concurrency */

typedef struct reader_thread
{
	sg_table_reader *r;
	const dataset *d;
	uint64_t	seed;
	int			failures;
} reader_thread;

static void
reader_scan(reader_thread *t)
{
	sg_iter    *it = sg_table_reader_iter(t->r);
	size_t		n = 0;

	for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it), n++)
		if (!sg_slice_equal(sg_iter_key(it), ekey(t->d, n)))
			t->failures++;
	if (n != t->d->n || sg_iter_status(it, NULL) != SG_OK)
		t->failures++;
	sg_iter_destroy(it);
}

/*
 * Half the threads start with a scan (which loads the index), half with
 * lookups (which load the filter, then the index): the first calls race
 * on the reader's one-time loads.
 */
static void *
reader_main(void *arg)
{
	reader_thread *t = arg;
	sg_test_rng rng = {t->seed};
	sg_buf		val = SG_BUF_INIT;

	if (t->seed % 2 == 1)
		reader_scan(t);
	for (int i = 0; i < 3000; i++)
	{
		size_t		u = sg_test_uniform(&rng, t->d->nu);
		size_t		want = t->d->u[u].first;
		sg_value_type type;
		sg_err		err;

		if (sg_table_reader_get(t->r, sg_ikey_user_key(ekey(t->d, want)), SG_MAX_SEQUENCE,
								&val, &type, NULL, &err) != SG_OK ||
			(type == SG_TYPE_PUT && !sg_slice_equal(sg_buf_slice(&val), eval(t->d, want))))
			t->failures++;
	}
	if (t->seed % 2 == 0)
		reader_scan(t);
	sg_buf_free(&val);
	return NULL;
}

static void
test_concurrent_readers(void **state)
{
	char	   *dir = sg_test_tmpdir("sstmt");
	char		path[4096];
	dataset		d;
	sg_table_reader *r;
	sg_err		err;
	pthread_t	th[4];
	reader_thread rt[4];

	(void) state;
	gen_dataset(&d, 20000, 80, 21);
	assert_int_equal(build_table(sg_env_posix(), dir, "mt.sst", NULL, &d, sg_slice_make(NULL, 0),
								 NULL, &err), SG_OK);
	snprintf(path, sizeof(path), "%s/mt.sst", dir);
	assert_int_equal(sg_table_reader_open(sg_env_posix(), path, &r, &err), SG_OK);
	for (int i = 0; i < 4; i++)
	{
		rt[i].r = r;
		rt[i].d = &d;
		rt[i].seed = 100 + i;
		rt[i].failures = 0;
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, &rt[i]), 0);
	}
	for (int i = 0; i < 4; i++)
	{
		pthread_join(th[i], NULL);
		assert_int_equal(rt[i].failures, 0);
	}
	sg_table_reader_close(r);
	free_dataset(&d);
	sg_test_rmtree(dir);
	free(dir);
}

/* ------------------------------------------------------------ fuzz seeds */

static int
write_corpus(const char *dir)
{
	struct
	{
		const char *name;
		sg_codec	codec;
		size_t		nu;
		size_t		block;
		int			bits;
	}			seeds[] = {
		{"lz4.sst", SG_CODEC_LZ4, 30, 256, 10},
		{"zstd.sst", SG_CODEC_ZSTD, 40, 512, 10},
		{"none-nofilter.sst", SG_CODEC_NONE, 20, 200, 0},
	};

	for (int i = 0; i < 3; i++)
	{
		dataset		d;
		sg_table_options opts;
		sg_err		err;

		gen_dataset(&d, seeds[i].nu, 60, 77 + i);
		sg_table_options_init(&opts);
		opts.codec = seeds[i].codec;
		opts.block_size = seeds[i].block;
		opts.bloom_bits_per_key = seeds[i].bits;
		opts.restart_interval = 4;
		if (build_table(sg_env_posix(), dir, seeds[i].name, &opts, &d,
						sg_slice_from_cstr("xid"), NULL, &err) != SG_OK)
		{
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		free_dataset(&d);
	}
	return 0;
}

int
main(void)
{
	const char *corpus = getenv("SG_SSTABLE_WRITE_CORPUS");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_block_iter_bounds),
		cmocka_unit_test(test_scan_reads_ahead),
		cmocka_unit_test(test_empty_table),
		cmocka_unit_test(test_out_of_order_rejected),
		cmocka_unit_test(test_huge_value),
		cmocka_unit_test(test_no_filter_and_large_blocks),
		cmocka_unit_test(test_corruption_every_byte),
		cmocka_unit_test(test_garbled_payload_valid_checksum),
		cmocka_unit_test(test_index_and_filter_load_on_first_use),
		cmocka_unit_test(test_block_cache),
		cmocka_unit_test(test_io_failures),
		cmocka_unit_test(test_concurrent_readers),
		cmocka_unit_test(test_roundtrip_all_codecs),
	};

	if (corpus != NULL)
		return write_corpus(corpus);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
