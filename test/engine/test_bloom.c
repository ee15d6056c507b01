/*
 * test_bloom.c — unit tests for the SSTable bloom filter: no false
 * negatives, the false-positive rate at 10 bits/key (printed and bounded),
 * the frozen hash, and that malformed filters never hide a key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/base/slice.h"
#include "engine/sstable/bloom.h"
#include "testutil.h"

static uint64_t
key_hash(const char *prefix, uint64_t i)
{
	char		k[64];
	int			n = snprintf(k, sizeof(k), "%s%llu", prefix, (unsigned long long) i);

	return sg_hash64(sg_slice_make(k, (size_t) n));
}

/* Build a filter over n keys "key<i>" and measure the FP rate on "miss<i>". */
static double
measure_fp(size_t n, int bits_per_key, sg_buf *filter)
{
	uint64_t   *hashes = malloc(n * sizeof(uint64_t));
	size_t		probes = 100000;
	size_t		fp = 0;

	assert_non_null(hashes);
	for (size_t i = 0; i < n; i++)
		hashes[i] = key_hash("key", i);
	sg_buf_reset(filter);
	sg_bloom_build(filter, hashes, n, bits_per_key);
	assert_false(sg_buf_failed(filter));
	assert_true(sg_bloom_valid(sg_buf_slice(filter)));
	/* no false negatives, ever */
	for (size_t i = 0; i < n; i++)
		assert_true(sg_bloom_may_contain(sg_buf_slice(filter), hashes[i]));
	for (size_t i = 0; i < probes; i++)
		if (sg_bloom_may_contain(sg_buf_slice(filter), key_hash("miss", i)))
			fp++;
	free(hashes);
	return (double) fp / (double) probes;
}

static void
test_bloom_false_positive_rate(void **state)
{
	sg_buf		f = SG_BUF_INIT;
	double		rate;

	(void) state;
	rate = measure_fp(100000, 10, &f);
	printf("bloom: 100000 keys, 10 bits/key, filter %zu bytes: false-positive rate %.3f%%\n",
		   f.len, rate * 100.0);
	assert_true(rate < 0.02);

	double		r5 = measure_fp(100000, 5, &f);
	double		r20 = measure_fp(100000, 20, &f);

	printf("bloom: 5 bits/key %.3f%%, 20 bits/key %.4f%%\n", r5 * 100.0, r20 * 100.0);
	assert_true(r20 < rate);
	assert_true(rate < r5);

	/* a small filter is still useful: the minimum size keeps it sparse */
	rate = measure_fp(3, 10, &f);
	printf("bloom: 3 keys, %zu-byte filter: false-positive rate %.3f%%\n", f.len, rate * 100.0);
	assert_true(rate < 0.05);
	sg_buf_free(&f);
}

static void
test_bloom_empty_filter(void **state)
{
	sg_buf		f = SG_BUF_INIT;

	(void) state;
	sg_bloom_build(&f, NULL, 0, 10);
	assert_int_equal(f.len, SG_BLOOM_MIN_BYTES + 1);
	assert_true(sg_bloom_valid(sg_buf_slice(&f)));
	/* nothing was added, so every probe must miss */
	for (uint64_t i = 0; i < 1000; i++)
		assert_false(sg_bloom_may_contain(sg_buf_slice(&f), key_hash("x", i)));
	sg_buf_free(&f);
}

/*
 * The hash is part of the on-disk filter format: these values were
 * computed when the format was frozen and must never change.
 */
static void
test_bloom_hash_frozen(void **state)
{
	(void) state;
	assert_int_equal(sg_hash64(sg_slice_make("", 0)), UINT64_C(0x62cfba8ce00adda3));
	assert_int_equal(sg_hash64(sg_slice_from_cstr("a")), UINT64_C(0x617a8254727d1b6f));
	assert_int_equal(sg_hash64(sg_slice_from_cstr("stratago sstable key")),
					 UINT64_C(0xbc3443064bc2137b));
	/* the tail length is mixed in: a trailing zero byte changes the hash */
	assert_true(sg_hash64(sg_slice_make("a", 1)) != sg_hash64(sg_slice_make("a\0", 2)));
	assert_true(sg_hash64(sg_slice_make("\0\0\0\0\0\0\0\0", 8)) !=
				sg_hash64(sg_slice_make("", 0)));
}

static void
test_bloom_malformed_never_hides(void **state)
{
	char		f[16];
	uint64_t	h = key_hash("key", 1);

	(void) state;
	memset(f, 0, sizeof(f));
	/* k = 0 and k = 31 are invalid; a too-short filter is invalid */
	f[15] = 0;
	assert_false(sg_bloom_valid(sg_slice_make(f, 16)));
	assert_true(sg_bloom_may_contain(sg_slice_make(f, 16), h));
	f[15] = 31;
	assert_false(sg_bloom_valid(sg_slice_make(f, 16)));
	assert_true(sg_bloom_may_contain(sg_slice_make(f, 16), h));
	f[3] = 5;
	assert_false(sg_bloom_valid(sg_slice_make(f, 4)));
	assert_true(sg_bloom_may_contain(sg_slice_make(f, 4), h));
	assert_true(sg_bloom_may_contain(sg_slice_make(NULL, 0), h));
	/* a valid all-zero filter rejects everything */
	f[15] = 7;
	assert_true(sg_bloom_valid(sg_slice_make(f, 16)));
	assert_false(sg_bloom_may_contain(sg_slice_make(f, 16), h));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bloom_false_positive_rate),
		cmocka_unit_test(test_bloom_empty_filter),
		cmocka_unit_test(test_bloom_hash_frozen),
		cmocka_unit_test(test_bloom_malformed_never_hides),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
