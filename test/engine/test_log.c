/*
 * test_log.c — unit tests for the record framing shared by the WAL and
 * the MANIFEST (src/engine/wal/log_*.{c,h}): round trips across block
 * boundaries, block trailers, the reader on a log cut at every offset,
 * byte flips (corruption vs torn tail), fragment sequence errors, damaged
 * length fields in the middle of a log (corruption, never a torn tail), and
 * torn last records followed by zeros (a torn tail).
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
#include "engine/wal/log_format.h"
#include "engine/wal/log_reader.h"
#include "engine/wal/log_writer.h"
#include "testutil.h"

#define BS SG_LOG_BLOCK_SIZE
#define HS SG_LOG_HEADER_SIZE

typedef struct fixture
{
	char	   *dir;
	char		path[4096];
} fixture;

static int
setup(void **state)
{
	fixture    *fx = calloc(1, sizeof(*fx));

	fx->dir = sg_test_tmpdir("log");
	snprintf(fx->path, sizeof(fx->path), "%s/log", fx->dir);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	fixture    *fx = *state;

	sg_test_rmtree(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

/* Deterministic record content: byte i of record r. */
static char *
make_record(size_t len, unsigned seed)
{
	char	   *p = malloc(len ? len : 1);
	sg_test_rng rng = {seed * 7919u + 1};

	for (size_t i = 0; i < len; i++)
		p[i] = (char) sg_test_rand(&rng);
	return p;
}

/*
 * make_record, memoised: the every-offset test reads the same records tens
 * of thousands of times. Entries stay reachable from the table until exit.
 */
static const char *
cached_record(size_t len, unsigned seed)
{
	static struct
	{
		size_t		len;
		unsigned	seed;
		char	   *data;
	}			cache[64];
	static int	used;

	for (int i = 0; i < used; i++)
		if (cache[i].len == len && cache[i].seed == seed)
			return cache[i].data;
	if (used == 64)
	{
		for (int i = 0; i < used; i++)
			free(cache[i].data);
		used = 0;
	}
	cache[used].len = len;
	cache[used].seed = seed;
	cache[used].data = make_record(len, seed);
	return cache[used++].data;
}

/* Write records of the given lengths; ends[i] gets each end offset. */
static void
write_log(const char *path, const size_t *lens, size_t n, uint64_t *ends)
{
	sg_file    *f;
	sg_log_writer w;
	sg_err		err;

	assert_int_equal(sg_file_open(sg_env_posix(), path, SG_OPEN_CREATE, &f, &err), SG_OK);
	sg_log_writer_init(&w, f, 0);
	for (size_t i = 0; i < n; i++)
	{
		char	   *rec = make_record(lens[i], (unsigned) i);

		assert_int_equal(sg_log_writer_add(&w, sg_slice_make(rec, lens[i]), &ends[i], &err), SG_OK);
		assert_int_equal(ends[i], w.offset);
		free(rec);
	}
	sg_log_writer_free(&w);
	assert_int_equal(sg_file_sync(f, &err), SG_OK);
	assert_int_equal(sg_file_close(f, &err), SG_OK);
}

/*
 * Read the log at path. Returns the number of good records (checked
 * against make_record), sets *torn and *good_end; rc is the final code.
 */
static sg_code
read_log(const char *path, const size_t *lens, size_t n, bool must_be_clean,
		 size_t *good, bool *torn, uint64_t *good_end, sg_err *err)
{
	sg_file    *f;
	sg_log_reader *r;
	sg_slice	rec;
	sg_code		rc;
	size_t		k = 0;

	assert_int_equal(sg_file_open(sg_env_posix(), path, SG_OPEN_READ, &f, err), SG_OK);
	assert_int_equal(sg_log_reader_open(f, must_be_clean, &r, err), SG_OK);
	while ((rc = sg_log_reader_next(r, &rec, err)) == SG_OK)
	{
		assert_true(k < n);
		assert_int_equal(rec.len, lens[k]);

		const char *want = cached_record(lens[k], (unsigned) k);

		if (lens[k] > 0)
			assert_memory_equal(rec.data, want, lens[k]);
		k++;
	}
	/* errors are sticky */
	if (rc != SG_NOT_FOUND)
		assert_int_equal(sg_log_reader_next(r, &rec, NULL), rc);
	*good = k;
	*torn = sg_log_reader_torn(r, NULL, NULL);
	*good_end = sg_log_reader_good_end(r);
	sg_log_reader_close(r);
	sg_file_close(f, NULL);
	return rc;
}

static void
test_roundtrip_sizes(void **state)
{
	fixture    *fx = *state;
	size_t		lens[] = {0, 1, 0, 100, BS - HS - 200, BS - HS, BS - HS + 1, BS,
	3 * BS + 5, 1, 5 * 1024 * 1024 + 3, 0, 7};
	size_t		n = sizeof(lens) / sizeof(lens[0]);
	uint64_t	ends[16];
	size_t		good;
	bool		torn;
	uint64_t	good_end;
	sg_err		err;

	(void) state;
	write_log(fx->path, lens, n, ends);
	assert_int_equal(read_log(fx->path, lens, n, true, &good, &torn, &good_end, &err),
					 SG_NOT_FOUND);
	assert_int_equal(good, n);
	assert_false(torn);
	assert_int_equal(good_end, ends[n - 1]);
}

static void
test_record_offsets_and_trailer(void **state)
{
	fixture    *fx = *state;
	/* the first record leaves 3 bytes in block 0: too few for a header */
	size_t		lens[] = {BS - HS - 3, 10, 0};
	uint64_t	ends[3];
	sg_file    *f;
	sg_log_reader *r;
	sg_slice	rec;
	sg_err		err;
	char		tail[3];

	write_log(fx->path, lens, 3, ends);
	assert_int_equal(ends[0], BS - 3);
	assert_int_equal(ends[1], BS + HS + 10);
	assert_int_equal(ends[2], BS + 2 * HS + 10);
	assert_int_equal(sg_file_open(sg_env_posix(), fx->path, SG_OPEN_READ, &f, &err), SG_OK);
	assert_int_equal(sg_file_read_exact(f, BS - 3, tail, 3, &err), SG_OK);
	assert_int_equal(tail[0] | tail[1] | tail[2], 0);
	assert_int_equal(sg_log_reader_open(f, true, &r, &err), SG_OK);
	assert_int_equal(sg_log_reader_next(r, &rec, &err), SG_OK);
	assert_int_equal(sg_log_reader_record_offset(r), 0);
	assert_int_equal(sg_log_reader_next(r, &rec, &err), SG_OK);
	assert_int_equal(sg_log_reader_record_offset(r), BS);
	assert_int_equal(sg_log_reader_next(r, &rec, &err), SG_OK);
	assert_int_equal(rec.len, 0);
	assert_int_equal(sg_log_reader_good_end(r), ends[2]);
	assert_int_equal(sg_log_reader_next(r, &rec, &err), SG_NOT_FOUND);
	sg_log_reader_close(r);
	sg_file_close(f, NULL);
}

static void
test_empty_file_is_clean(void **state)
{
	fixture    *fx = *state;
	size_t		good;
	bool		torn;
	uint64_t	good_end;
	sg_err		err;

	write_log(fx->path, NULL, 0, NULL);
	assert_int_equal(read_log(fx->path, NULL, 0, true, &good, &torn, &good_end, &err),
					 SG_NOT_FOUND);
	assert_int_equal(good, 0);
	assert_false(torn);
}

static void
truncate_file(const char *path, uint64_t len)
{
	sg_file    *f;
	sg_err		err;

	assert_int_equal(sg_file_open(sg_env_posix(), path, SG_OPEN_APPEND, &f, &err), SG_OK);
	assert_int_equal(sg_file_truncate(f, len, &err), SG_OK);
	sg_file_close(f, NULL);
}

/*
 * Cut a small log (crossing one block boundary, with a trailer) at every
 * offset: the reader must give exactly the complete records, and report
 * a clean end iff the cut falls on a record boundary, a torn tail
 * otherwise, with good_end at the last complete record.
 */
static void
check_every_cut(const char *path, const size_t *lens, size_t n)
{
	uint64_t	ends[16];

	write_log(path, lens, n, ends);
	for (uint64_t cut = ends[n - 1] + 1; cut-- > 0;)
	{
		size_t		good;
		bool		torn;
		uint64_t	good_end;
		size_t		expect = 0;
		sg_err		err;
		sg_code		rc;

		truncate_file(path, cut);
		while (expect < n && ends[expect] <= cut)
			expect++;
		rc = read_log(path, lens, n, false, &good, &torn, &good_end, &err);
		assert_int_equal(rc, SG_NOT_FOUND);
		assert_int_equal(good, expect);
		assert_int_equal(good_end, expect ? ends[expect - 1] : 0);
		assert_int_equal(torn, good_end != cut);

		/* a file that must be complete turns a torn tail into corruption */
		if (torn && (cut % 97) == 0)
		{
			rc = read_log(path, lens, n, true, &good, &torn, &good_end, &err);
			assert_int_equal(rc, SG_CORRUPTION);
			assert_non_null(strstr(err.msg, path));
		}
	}
}

/*
 * Cut small logs at every offset: the reader must give exactly the
 * complete records, and report a clean end iff the cut falls on a record
 * boundary, a torn tail otherwise, with good_end at the last complete
 * record. One log ends block 0 with a 2-byte trailer, the other has a
 * record crossing the block boundary (FIRST + LAST).
 */
static void
test_truncated_at_every_offset(void **state)
{
	fixture    *fx = *state;
	/* 6 records end at 4153; the 7th ends at BS - 2 */
	size_t		trailer[] = {0, 1, 10, 100, 1000, 3000, BS - 2 - 4160, 2000, 3, 0};
	size_t		crossing[] = {10, 1, BS - 100, 3000, 0};

	check_every_cut(fx->path, trailer, sizeof(trailer) / sizeof(trailer[0]));
	check_every_cut(fx->path, crossing, sizeof(crossing) / sizeof(crossing[0]));
}

static void
flip_byte(const char *path, uint64_t off)
{
	char	   *data;
	size_t		n;
	sg_err		err;
	sg_file    *f;

	assert_int_equal(sg_env_read_file(sg_env_posix(), path, &data, &n, &err), SG_OK);
	assert_true(off < n);
	data[off] ^= 0x40;
	assert_int_equal(sg_file_open(sg_env_posix(), path, SG_OPEN_CREATE, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, data, n, &err), SG_OK);
	sg_file_close(f, NULL);
	free(data);
}

/*
 * A flipped byte in any fragment followed by valid data is corruption
 * naming the file and the fragment's offset; in the very last record it
 * is a torn tail.
 */
static void
test_byte_flip_is_corruption(void **state)
{
	fixture    *fx = *state;
	size_t		lens[] = {50, 2 * BS, 300, 20, BS / 2, 10};
	size_t		n = sizeof(lens) / sizeof(lens[0]);
	uint64_t	ends[8];
	/* fragment starts and a byte inside each (header byte or payload) */
	struct
	{
		uint64_t	frag;
		uint64_t	at;
	}			cases[] = {
		{0, 0},					/* crc of record 0 */
		{0, 4},					/* length of record 0 */
		{0, 6},					/* type of record 0 */
		{0, 30},				/* payload of record 0 */
		{57, 57 + HS + 100},	/* FIRST fragment of record 1 */
		{BS, BS + 5000},		/* MIDDLE fragment of record 1 (block 1) */
		{2 * BS, 2 * BS + 10},	/* LAST fragment of record 1 (block 2) */
	};
	char		want[64];

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++)
	{
		size_t		good;
		bool		torn;
		uint64_t	good_end;
		sg_err		err;

		write_log(fx->path, lens, n, ends);
		flip_byte(fx->path, cases[c].at);
		assert_int_equal(read_log(fx->path, lens, n, false, &good, &torn, &good_end, &err),
						 SG_CORRUPTION);
		snprintf(want, sizeof(want), "offset %llu", (unsigned long long) cases[c].frag);
		assert_non_null(strstr(err.msg, want));
		assert_non_null(strstr(err.msg, fx->path));
		assert_int_equal(err.code, SG_CORRUPTION);
	}

	/* damage in the last record, nothing valid after it: torn tail */
	{
		size_t		good;
		bool		torn;
		uint64_t	good_end;
		sg_err		err;

		write_log(fx->path, lens, n, ends);
		flip_byte(fx->path, ends[n - 1] - 3);
		assert_int_equal(read_log(fx->path, lens, n, false, &good, &torn, &good_end, &err),
						 SG_NOT_FOUND);
		assert_true(torn);
		assert_int_equal(good, n - 1);
		assert_int_equal(good_end, ends[n - 2]);
	}
}

/* Zeros after the last record (e.g. a file extended by a crash): torn. */
static void
test_zero_tail_is_torn(void **state)
{
	fixture    *fx = *state;
	size_t		lens[] = {100, 200};
	uint64_t	ends[2];
	char		zeros[5000] = {0};
	sg_file    *f;
	sg_err		err;
	size_t		good;
	bool		torn;
	uint64_t	good_end;

	write_log(fx->path, lens, 2, ends);
	assert_int_equal(sg_file_open(sg_env_posix(), fx->path, SG_OPEN_APPEND, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, zeros, sizeof(zeros), &err), SG_OK);
	sg_file_close(f, NULL);
	assert_int_equal(read_log(fx->path, lens, 2, false, &good, &torn, &good_end, &err),
					 SG_NOT_FOUND);
	assert_true(torn);
	assert_int_equal(good, 2);
	assert_int_equal(good_end, ends[1]);
}

/* Overwrite the 2-byte length field of the fragment starting at frag. */
static void
set_length(const char *path, uint64_t frag, unsigned len)
{
	char	   *data;
	size_t		n;
	sg_err		err;
	sg_file    *f;

	assert_int_equal(sg_env_read_file(sg_env_posix(), path, &data, &n, &err), SG_OK);
	assert_true(frag + HS <= n);
	data[frag + 4] = (char) (len & 0xff);
	data[frag + 5] = (char) (len >> 8);
	assert_int_equal(sg_file_open(sg_env_posix(), path, SG_OPEN_CREATE, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, data, n, &err), SG_OK);
	sg_file_close(f, NULL);
	free(data);
}

static void
append_zeros(const char *path, size_t n)
{
	char	   *zeros = calloc(1, n ? n : 1);
	sg_file    *f;
	sg_err		err;

	assert_int_equal(sg_file_open(sg_env_posix(), path, SG_OPEN_APPEND, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, zeros, n, &err), SG_OK);
	sg_file_close(f, NULL);
	free(zeros);
}

/*
 * The length field is not covered by the CRC. A damaged length in any
 * record but the last, in the file's last block, must be corruption naming
 * that record's offset, whether it now runs past the end of the file (what
 * a torn last record looks like), is zero, off by one, or crosses the
 * block. Before the fix the reader trusted the length to say where to look
 * for valid data, found none, and dropped every later record as a torn
 * tail.
 */
static void
test_damaged_length_is_corruption(void **state)
{
	fixture    *fx = *state;
	/* 5 records; the second log puts them in block 1, after a FIRST+LAST */
	size_t		one_block[] = {40, 300, 120, 2000, 60};
	size_t		two_blocks[] = {BS + 100, 40, 300, 120, 2000, 60};
	struct
	{
		const size_t *lens;
		size_t		n;
	}			logs[] = {{one_block, 5}, {two_blocks, 6}};

	for (size_t g = 0; g < 2; g++)
	{
		const size_t *lens = logs[g].lens;
		size_t		n = logs[g].n;
		uint64_t	ends[8];

		write_log(fx->path, lens, n, ends);
		for (size_t k = n - 5; k < n; k++)
		{
			uint64_t	start = k ? ends[k - 1] : 0;
			uint64_t	room = BS - start % BS - HS;	/* largest length that fits */
			unsigned	bad[] = {(unsigned) room, (unsigned) (ends[n - 1] - start - HS + 1),
			0, (unsigned) lens[k] - 1, (unsigned) lens[k] + 1, 0xffff};

			for (size_t v = 0; v < sizeof(bad) / sizeof(bad[0]); v++)
			{
				size_t		good;
				bool		torn;
				uint64_t	good_end;
				sg_err		err;
				sg_code		rc;
				char		want[64];

				write_log(fx->path, lens, n, ends);
				set_length(fx->path, start, bad[v]);
				rc = read_log(fx->path, lens, n, false, &good, &torn, &good_end, &err);
				assert_int_equal(good, k);
				if (k == n - 1)
				{
					/* the last record: nothing follows, a torn tail */
					assert_int_equal(rc, SG_NOT_FOUND);
					assert_true(torn);
					assert_int_equal(good_end, start);
					continue;
				}
				assert_int_equal(rc, SG_CORRUPTION);
				assert_false(torn);
				snprintf(want, sizeof(want), "offset %llu (", (unsigned long long) start);
				assert_non_null(strstr(err.msg, want));
				assert_non_null(strstr(err.msg, fx->path));
				/* the record after it is what proves the damage */
				snprintf(want, sizeof(want), "valid data follows at offset %llu",
						 (unsigned long long) ends[k]);
				assert_non_null(strstr(err.msg, want));
			}
		}
	}
}

/*
 * What a genuine torn write leaves: a prefix of the last record, then the
 * end of the file or zeros (a file extended by the crash), also across a
 * block boundary. Always a torn tail with the earlier records kept, never
 * corruption, however much of the header or payload survived.
 */
static void
test_torn_last_record_with_zeros(void **state)
{
	fixture    *fx = *state;
	size_t		lens[] = {40, 300, 120, 2000, 3000};
	size_t		n = sizeof(lens) / sizeof(lens[0]);
	uint64_t	ends[8];
	size_t		zeros[] = {0, 1, 6, 7, 500, 2 * BS};

	write_log(fx->path, lens, n, ends);
	for (uint64_t cut = ends[n - 2]; cut < ends[n - 1]; cut += (cut < ends[n - 2] + 2 * HS) ? 1 : 97)
		for (size_t z = 0; z < sizeof(zeros) / sizeof(zeros[0]); z++)
		{
			size_t		good;
			bool		torn;
			uint64_t	good_end;
			sg_err		err;
			sg_code		rc;

			/* nothing at all after the last good record is a clean end */
			if (cut == ends[n - 2] && zeros[z] == 0)
				continue;
			write_log(fx->path, lens, n, ends);
			truncate_file(fx->path, cut);
			append_zeros(fx->path, zeros[z]);
			rc = read_log(fx->path, lens, n, false, &good, &torn, &good_end, &err);
			if (rc != SG_NOT_FOUND)
				fail_msg("cut %llu + %zu zeros: %s", (unsigned long long) cut, zeros[z], err.msg);
			assert_true(torn);
			assert_int_equal(good, n - 1);
			assert_int_equal(good_end, ends[n - 2]);
		}
}

/* Append one raw fragment with a correct checksum. */
static void
put_fragment(sg_buf *b, uint8_t type, const char *payload, size_t len)
{
	char		hdr[HS];
	uint32_t	crc = sg_crc32c_extend(sg_crc32c(&type, 1), payload, len);

	sg_encode_fixed32(hdr, sg_crc32c_mask(crc));
	hdr[4] = (char) (len & 0xff);
	hdr[5] = (char) (len >> 8);
	hdr[6] = (char) type;
	sg_buf_append(b, hdr, HS);
	sg_buf_append(b, payload, len);
}

static sg_code
read_raw(const char *path, sg_buf *b, sg_err *err, size_t *nrec)
{
	sg_file    *f;
	sg_log_reader *r;
	sg_slice	rec;
	sg_code		rc;

	assert_int_equal(sg_file_open(sg_env_posix(), path, SG_OPEN_CREATE, &f, err), SG_OK);
	assert_int_equal(sg_file_append(f, b->data, b->len, err), SG_OK);
	sg_file_close(f, NULL);
	assert_int_equal(sg_file_open(sg_env_posix(), path, SG_OPEN_READ, &f, err), SG_OK);
	assert_int_equal(sg_log_reader_open(f, false, &r, err), SG_OK);
	*nrec = 0;
	while ((rc = sg_log_reader_next(r, &rec, err)) == SG_OK)
		(*nrec)++;
	sg_log_reader_close(r);
	sg_file_close(f, NULL);
	return rc;
}

static void
test_fragment_sequence_errors(void **state)
{
	fixture    *fx = *state;
	sg_buf		b = SG_BUF_INIT;
	sg_err		err;
	size_t		nrec;

	/* MIDDLE with no FIRST */
	put_fragment(&b, SG_LOG_FULL, "a", 1);
	put_fragment(&b, SG_LOG_MIDDLE, "b", 1);
	assert_int_equal(read_raw(fx->path, &b, &err, &nrec), SG_CORRUPTION);
	assert_int_equal(nrec, 1);
	assert_non_null(strstr(err.msg, "offset 8"));

	/* FIRST then FULL */
	sg_buf_reset(&b);
	put_fragment(&b, SG_LOG_FIRST, "a", 1);
	put_fragment(&b, SG_LOG_FULL, "b", 1);
	assert_int_equal(read_raw(fx->path, &b, &err, &nrec), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "FULL fragment inside"));

	/* LAST without FIRST */
	sg_buf_reset(&b);
	put_fragment(&b, SG_LOG_LAST, "a", 1);
	assert_int_equal(read_raw(fx->path, &b, &err, &nrec), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "offset 0"));

	/* FIRST then end of file: torn, not corruption */
	sg_buf_reset(&b);
	put_fragment(&b, SG_LOG_FULL, "a", 1);
	put_fragment(&b, SG_LOG_FIRST, "b", 1);
	assert_int_equal(read_raw(fx->path, &b, &err, &nrec), SG_NOT_FOUND);
	assert_int_equal(nrec, 1);

	/* bad type in block 0 header, valid fragment at the start of block 1 */
	sg_buf_reset(&b);
	put_fragment(&b, 9, "a", 1);
	{
		char		pad[BS];

		memset(pad, 0, sizeof(pad));
		sg_buf_append(&b, pad, BS - b.len);
	}
	put_fragment(&b, SG_LOG_FULL, "z", 1);
	assert_int_equal(read_raw(fx->path, &b, &err, &nrec), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "valid data follows at offset 32768"));

	/* garbage length, valid fragment later in the same block */
	sg_buf_reset(&b);
	put_fragment(&b, SG_LOG_FULL, "abc", 3);
	b.data[4] = (char) 0xff;
	b.data[5] = (char) 0xff;
	sg_buf_append(&b, "\1\2\3", 3);
	put_fragment(&b, SG_LOG_FULL, "ok", 2);
	assert_int_equal(read_raw(fx->path, &b, &err, &nrec), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "valid data follows"));

	sg_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_offsets_and_trailer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_file_is_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_at_every_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_byte_flip_is_corruption, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_tail_is_torn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fragment_sequence_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_length_is_corruption, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_last_record_with_zeros, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
