/*
 * test_base.c — unit tests for the engine's foundations: varint and fixed
 * coding, CRC32C (hardware and software paths agree, known vectors), the
 * growable buffer, internal-key order, and the POSIX file layer.
 */
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
#include "engine/base/ikey.h"
#include "engine/base/slice.h"
#include "testutil.h"

uint32_t	sg_crc32c_software(uint32_t init_crc, const void *data, size_t n);

static void
test_varint_roundtrip(void **state)
{
	sg_buf		b = SG_BUF_INIT;
	/* each side of every length the inline decoders handle (1-3 bytes) */
	uint64_t	values[] = {0, 1, 127, 128, 255, 300, 16383, 16384, 2097151, 2097152,
		268435455, 268435456, UINT32_MAX,
	(uint64_t) UINT32_MAX + 1, UINT64_MAX - 1, UINT64_MAX};
	size_t		nv = sizeof(values) / sizeof(values[0]);

	(void) state;
	for (size_t i = 0; i < nv; i++)
		sg_put_varint64(&b, values[i]);
	assert_false(sg_buf_failed(&b));

	sg_slice	in = sg_buf_slice(&b);

	for (size_t i = 0; i < nv; i++)
	{
		uint64_t	v;

		assert_true(sg_get_varint64(&in, &v));
		assert_int_equal(v, values[i]);
	}
	assert_int_equal(in.len, 0);
	sg_buf_free(&b);
}

static void
test_varint_rejects_bad_input(void **state)
{
	char		over[11];
	uint64_t	v;
	uint32_t	v32;

	(void) state;
	memset(over, 0xff, sizeof(over));
	/* eleven continuation bytes: too long for any varint */
	assert_null(sg_decode_varint64(over, over + sizeof(over), &v));
	/* truncated: continuation bit set on the last byte available */
	assert_null(sg_decode_varint64(over, over + 3, &v));
	/* a 64-bit value does not fit a varint32 */
	char		big[10];
	char	   *end = sg_encode_varint64(big, (uint64_t) UINT32_MAX + 5);

	assert_null(sg_decode_varint32(big, end, &v32));
	/* empty input */
	assert_null(sg_decode_varint64(over, over, &v));
	/* every truncation of a three- and a four-byte varint */
	for (int len = 3; len <= 4; len++)
	{
		uint64_t	value = len == 3 ? 2097151 : 2097152;

		end = sg_encode_varint64(big, value);
		assert_int_equal(end - big, len);
		for (int cut = 0; cut < len; cut++)
			assert_null(sg_decode_varint64(big, big + cut, &v));
		assert_ptr_equal(sg_decode_varint64(big, end, &v), end);
		assert_int_equal(v, value);
	}
}

static void
test_fixed_and_be64(void **state)
{
	char		buf[8];

	(void) state;
	sg_encode_fixed32(buf, 0x01020304);
	assert_int_equal((uint8_t) buf[0], 0x04);
	assert_int_equal(sg_decode_fixed32(buf), 0x01020304);
	sg_encode_fixed64(buf, UINT64_C(0x0102030405060708));
	assert_int_equal(sg_decode_fixed64(buf), UINT64_C(0x0102030405060708));

	char		a[8],
				b2[8];

	sg_encode_be64(a, 255);
	sg_encode_be64(b2, 256);
	assert_true(memcmp(a, b2, 8) < 0);
	assert_int_equal(sg_decode_be64(b2), 256);
}

static void
test_crc32c_vectors(void **state)
{
	char		zeros[32] = {0};
	char		data[1000];

	(void) state;
	/* RFC 3720 / iSCSI test vectors */
	assert_int_equal(sg_crc32c("123456789", 9), 0xe3069283);
	assert_int_equal(sg_crc32c(zeros, 32), 0x8a9136aa);

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char) (i * 7 + 3);
	for (size_t n = 0; n < sizeof(data); n += 37)
		assert_int_equal(sg_crc32c(data, n), sg_crc32c_software(0, data, n));

	/* extend == one shot */
	assert_int_equal(sg_crc32c_extend(sg_crc32c(data, 100), data + 100, 900),
					 sg_crc32c(data, 1000));
	/* masking round-trips and changes the value */
	uint32_t	c = sg_crc32c(data, 1000);

	assert_int_not_equal(sg_crc32c_mask(c), c);
	assert_int_equal(sg_crc32c_unmask(sg_crc32c_mask(c)), c);
}

/*
 * sg_slice_compare takes 8-byte strings as big-endian numbers: the order
 * must stay memcmp's, bytes with the high bit set and equal prefixes
 * included, and mixed lengths must keep the prefix rule.
 */
static int
memcmp_order(sg_slice a, sg_slice b)
{
	size_t		n = a.len < b.len ? a.len : b.len;
	int			r = memcmp(a.data, b.data, n);

	if (r != 0)
		return r < 0 ? -1 : 1;
	return (a.len < b.len) ? -1 : (a.len > b.len) ? 1 : 0;
}

static void
test_slice_compare_order(void **state)
{
	sg_test_rng rng = {99};
	char		a[9];
	char		b[9];

	(void) state;
	for (int i = 0; i < 100000; i++)
	{
		uint64_t	x = sg_test_rand(&rng);
		uint64_t	y = i % 3 == 0 ? x ^ (UINT64_C(1) << sg_test_uniform(&rng, 64)) : sg_test_rand(&rng);
		size_t		alen = i % 5 == 0 ? 7 + sg_test_uniform(&rng, 3) : 8;
		size_t		blen = i % 7 == 0 ? 7 + sg_test_uniform(&rng, 3) : 8;
		sg_slice	sa;
		sg_slice	sb;
		int			r;

		memcpy(a, &x, 8);
		memcpy(b, i % 11 == 0 ? &x : &y, 8);
		a[8] = b[8] = (char) 0xff;
		sa = sg_slice_make(a, alen);
		sb = sg_slice_make(b, blen);
		r = sg_slice_compare(sa, sb);
		assert_int_equal((r > 0) - (r < 0), memcmp_order(sa, sb));
	}
}

static void
test_ikey_order(void **state)
{
	sg_buf		a = SG_BUF_INIT,
				b = SG_BUF_INIT,
				c = SG_BUF_INIT;
	sg_parsed_ikey p = {0};

	(void) state;
	sg_ikey_append(&a, sg_slice_from_cstr("k1"), 10, SG_TYPE_PUT);
	sg_ikey_append(&b, sg_slice_from_cstr("k1"), 5, SG_TYPE_PUT);
	sg_ikey_append(&c, sg_slice_from_cstr("k2"), 1, SG_TYPE_DELETE);
	/* same user key: newer (higher seq) first */
	assert_true(sg_ikey_compare(sg_buf_slice(&a), sg_buf_slice(&b)) < 0);
	assert_true(sg_ikey_compare(sg_buf_slice(&b), sg_buf_slice(&c)) < 0);
	assert_true(sg_ikey_compare(sg_buf_slice(&a), sg_buf_slice(&a)) == 0);
	assert_true(sg_ikey_parse(sg_buf_slice(&c), &p));
	assert_int_equal(p.seq, 1);
	assert_int_equal(p.type, SG_TYPE_DELETE);
	assert_true(sg_slice_equal(p.user_key, sg_slice_from_cstr("k2")));
	/* too short is not a key */
	assert_false(sg_ikey_parse(sg_slice_make("abc", 3), &p));
	sg_buf_free(&a);
	sg_buf_free(&b);
	sg_buf_free(&c);
}

static void
test_env_posix_files(void **state)
{
	char	   *dir = sg_test_tmpdir("env");
	sg_env	   *env = sg_env_posix();
	sg_err		err;
	char		path[4096];
	sg_file    *f;
	char	   *data;
	size_t		n;

	(void) state;
	snprintf(path, sizeof(path), "%s/a", dir);
	assert_int_equal(sg_file_open(env, path, SG_OPEN_CREATE, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, "hello", 5, &err), SG_OK);
	assert_int_equal(sg_file_sync(f, &err), SG_OK);
	char		rb[16];

	/* reading past the end is corruption, naming the file */
	assert_int_equal(sg_file_read_exact(f, 2, rb, 10, &err), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, path));
	assert_int_equal(sg_file_close(f, &err), SG_OK);

	assert_int_equal(sg_env_write_file_atomic(env, dir, "b", "xyz", 3, &err), SG_OK);
	snprintf(path, sizeof(path), "%s/b", dir);
	assert_int_equal(sg_env_read_file(env, path, &data, &n, &err), SG_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(data, "xyz", 3);
	free(data);

	char	  **names;
	size_t		count;

	assert_int_equal(env->ops->list_dir(env, dir, &names, &count, &err), SG_OK);
	assert_int_equal(count, 2);
	sg_env_free_names(names, count);

	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(sg_file_open(env, path, SG_OPEN_READ, &f, &err), SG_NOT_FOUND);
	/* append-to-existing never creates the file */
	assert_int_equal(sg_file_open(env, path, SG_OPEN_APPEND_EXISTING, &f, &err), SG_NOT_FOUND);
	assert_int_equal(env->ops->exists(env, path, &err), SG_NOT_FOUND);
	snprintf(path, sizeof(path), "%s/b", dir);
	assert_int_equal(sg_file_open(env, path, SG_OPEN_APPEND_EXISTING, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, "w", 1, &err), SG_OK);
	assert_int_equal(sg_file_close(f, &err), SG_OK);
	assert_int_equal(sg_env_read_file(env, path, &data, &n, &err), SG_OK);
	assert_int_equal(n, 4);
	assert_memory_equal(data, "xyzw", 4);
	free(data);
	sg_test_rmtree(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint_roundtrip),
		cmocka_unit_test(test_varint_rejects_bad_input),
		cmocka_unit_test(test_fixed_and_be64),
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_ikey_order),
		cmocka_unit_test(test_slice_compare_order),
		cmocka_unit_test(test_env_posix_files),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
