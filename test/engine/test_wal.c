/*
 * test_wal.c — unit tests for the write batch and the segmented WAL:
 * batch encode/decode and malformed batches; segment roll, LSN
 * monotonicity, replay from an LSN, delete-below-LSN, missing and damaged
 * segments; torn tail truncated on reopen with appends continuing, but a
 * damaged length mid-newest-segment reported, never truncated; group
 * commit (fewer fsyncs than committers), interval and off policies; fsync
 * failure leaving the WAL failed.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/base/coding.h"
#include "engine/base/env.h"
#include "engine/base/env_mem.h"
#include "engine/wal/batch.h"
#include "engine/wal/log_format.h"
#include "engine/wal/wal.h"
#include "engine/wal/wal_segment.h"
#include "engine/wal/wal_writer.h"
#include "testutil.h"

/* ------------------------------------------------------------------ */
/* A wrapping env over POSIX whose fsyncs can be slowed or made to fail */

typedef struct test_env
{
	sg_env		base;
	sg_env_ops	ops;
	atomic_int	fail_syncs;		/* fail every sync while set */
	atomic_int	sync_delay_us;
	atomic_long syncs;
} test_env;

static test_env tenv;

static sg_code
tenv_open(sg_env *env, const char *path, sg_open_mode mode, sg_file **out, sg_err *err)
{
	/* the POSIX file records `env`, so its calls come back through us */
	return sg_env_posix()->ops->open(env, path, mode, out, err);
}

static sg_code
tenv_sync(sg_file *f, sg_err *err)
{
	int			d = atomic_load(&tenv.sync_delay_us);

	atomic_fetch_add(&tenv.syncs, 1);
	if (d > 0)
		usleep((useconds_t) d);
	if (atomic_load(&tenv.fail_syncs))
	{
		sg_error(err, SG_IO_ERROR, "injected fsync failure on \"%s\"", f->path);
		if (err)
			err->sync_failed = true;
		return SG_IO_ERROR;
	}
	return sg_env_posix()->ops->sync(f, err);
}

static sg_env *
test_env_get(void)
{
	tenv.ops = *sg_env_posix()->ops;
	tenv.ops.open = tenv_open;
	tenv.ops.sync = tenv_sync;
	tenv.base.ops = &tenv.ops;
	atomic_store(&tenv.fail_syncs, 0);
	atomic_store(&tenv.sync_delay_us, 0);
	atomic_store(&tenv.syncs, 0);
	return &tenv.base;
}

/* ------------------------------------------------------------------ */

typedef struct fixture
{
	char	   *dir;
	char		wal[4096];
} fixture;

static int
setup(void **state)
{
	fixture    *fx = calloc(1, sizeof(*fx));

	fx->dir = sg_test_tmpdir("wal");
	snprintf(fx->wal, sizeof(fx->wal), "%s/wal", fx->dir);
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

/* Replay collector: every record and its end LSN. */
typedef struct collected
{
	size_t		n;
	uint64_t	lsn[4096];
	char	   *rec[4096];
	size_t		len[4096];
} collected;

static sg_code
collect(void *arg, uint64_t lsn, sg_slice rec, sg_err *err)
{
	collected  *c = arg;

	(void) err;
	if (c->n >= 4096)
		return SG_OK;
	c->lsn[c->n] = lsn;
	c->rec[c->n] = malloc(rec.len ? rec.len : 1);
	memcpy(c->rec[c->n], rec.data, rec.len);
	c->len[c->n] = rec.len;
	c->n++;
	return SG_OK;
}

static void
collected_free(collected *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->rec[i]);
	c->n = 0;
}

static void
record_text(char *buf, size_t size, int i)
{
	snprintf(buf, size, "record-%06d-%0*d", i, (i * 37) % 300, 0);
}

/* ------------------------------------------------------------------ */
/* batch */

static void
test_batch_roundtrip(void **state)
{
	sg_batch	b;
	sg_batch_iter it;
	sg_batch_entry e;
	sg_err		err;
	char		big[70000];

	(void) state;
	memset(big, 'v', sizeof(big));
	sg_batch_init(&b);
	assert_int_equal(sg_batch_count(&b), 0);
	assert_int_equal(sg_batch_byte_size(&b), SG_BATCH_HEADER_SIZE);
	sg_batch_set_sequence(&b, 1000);
	assert_int_equal(sg_batch_put(&b, sg_slice_from_cstr("k1"), sg_slice_from_cstr("v1")), SG_OK);
	assert_int_equal(sg_batch_delete(&b, sg_slice_from_cstr("k2")), SG_OK);
	assert_int_equal(sg_batch_put(&b, sg_slice_make("", 0), sg_slice_make(big, sizeof(big))), SG_OK);
	assert_int_equal(sg_batch_count(&b), 3);
	assert_int_equal(sg_batch_sequence(&b), 1000);
	assert_int_equal(sg_batch_byte_size(&b),
					 12 + (1 + 1 + 2 + 1 + 2) + (1 + 1 + 2) + (1 + 1 + 3 + sizeof(big)));

	assert_int_equal(sg_batch_iter_init(&it, sg_batch_contents(&b), NULL, &err), SG_OK);
	assert_int_equal(sg_batch_iter_next(&it, &e, NULL, &err), SG_OK);
	assert_int_equal(e.type, SG_TYPE_PUT);
	assert_int_equal(e.seq, 1000);
	assert_true(sg_slice_equal(e.key, sg_slice_from_cstr("k1")));
	assert_true(sg_slice_equal(e.value, sg_slice_from_cstr("v1")));
	assert_int_equal(sg_batch_iter_next(&it, &e, NULL, &err), SG_OK);
	assert_int_equal(e.type, SG_TYPE_DELETE);
	assert_int_equal(e.seq, 1001);
	assert_true(sg_slice_equal(e.key, sg_slice_from_cstr("k2")));
	assert_int_equal(e.value.len, 0);
	assert_int_equal(sg_batch_iter_next(&it, &e, NULL, &err), SG_OK);
	assert_int_equal(e.seq, 1002);
	assert_int_equal(e.key.len, 0);
	assert_int_equal(e.value.len, sizeof(big));
	assert_int_equal(sg_batch_iter_next(&it, &e, NULL, &err), SG_NOT_FOUND);
	assert_int_equal(sg_batch_validate(sg_batch_contents(&b), NULL, &err), SG_OK);

	/* clear keeps it usable */
	sg_batch_clear(&b);
	assert_int_equal(sg_batch_count(&b), 0);
	assert_int_equal(sg_batch_sequence(&b), 0);
	assert_int_equal(sg_batch_byte_size(&b), SG_BATCH_HEADER_SIZE);
	assert_int_equal(sg_batch_validate(sg_batch_contents(&b), NULL, &err), SG_OK);
	assert_int_equal(sg_batch_delete(&b, sg_slice_from_cstr("x")), SG_OK);
	assert_int_equal(sg_batch_validate(sg_batch_contents(&b), NULL, &err), SG_OK);
	sg_batch_free(&b);
}

static void
test_batch_malformed(void **state)
{
	sg_batch	b;
	sg_err		err;
	sg_slice	good;
	char		buf[256];

	(void) state;
	sg_batch_init(&b);
	sg_batch_set_sequence(&b, 7);
	sg_batch_put(&b, sg_slice_from_cstr("key"), sg_slice_from_cstr("value"));
	sg_batch_delete(&b, sg_slice_from_cstr("gone"));
	good = sg_batch_contents(&b);
	assert_true(good.len < sizeof(buf));

	/* every strict prefix is malformed */
	for (size_t cut = 0; cut < good.len; cut++)
	{
		memcpy(buf, good.data, cut);
		assert_int_equal(sg_batch_validate(sg_slice_make(buf, cut), "test batch", &err),
						 SG_CORRUPTION);
		assert_non_null(strstr(err.msg, "test batch"));
	}
	/* trailing byte */
	memcpy(buf, good.data, good.len);
	buf[good.len] = 0;
	assert_int_equal(sg_batch_validate(sg_slice_make(buf, good.len + 1), NULL, &err),
					 SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "after the last entry"));
	/* bad type */
	memcpy(buf, good.data, good.len);
	buf[12] = 5;
	assert_int_equal(sg_batch_validate(sg_slice_make(buf, good.len), NULL, &err), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "unknown entry type"));
	/* count says 3 */
	memcpy(buf, good.data, good.len);
	sg_encode_fixed32(buf + 8, 3);
	assert_int_equal(sg_batch_validate(sg_slice_make(buf, good.len), NULL, &err), SG_CORRUPTION);
	/* count says 1: the second entry trails */
	sg_encode_fixed32(buf + 8, 1);
	assert_int_equal(sg_batch_validate(sg_slice_make(buf, good.len), NULL, &err), SG_CORRUPTION);
	/* huge count */
	sg_encode_fixed32(buf + 8, UINT32_MAX);
	assert_int_equal(sg_batch_validate(sg_slice_make(buf, good.len), NULL, &err), SG_CORRUPTION);
	/* sequence overflow */
	memcpy(buf, good.data, good.len);
	sg_encode_fixed64(buf, SG_MAX_SEQUENCE);
	assert_int_equal(sg_batch_validate(sg_slice_make(buf, good.len), NULL, &err), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "overflow"));
	/* key length past the end */
	memcpy(buf, good.data, good.len);
	buf[13] = 100;
	assert_int_equal(sg_batch_validate(sg_slice_make(buf, good.len), NULL, &err), SG_CORRUPTION);
	sg_batch_free(&b);
}

/* ------------------------------------------------------------------ */
/* segmented writer and replay */

static size_t
count_segments(const char *dir)
{
	uint64_t   *starts;
	size_t		n;
	sg_err		err;

	assert_int_equal(sg_wal_list_segments(sg_env_posix(), dir, false, &starts, &n, &err), SG_OK);
	free(starts);
	return n;
}

/* Append n records with a writer rolling at seg_size; returns end LSNs. */
static void
append_records(const char *dir, uint64_t seg_size, int first, int n, uint64_t *lsns)
{
	sg_wal_writer_options o = {seg_size, 0};
	sg_wal_writer *w;
	sg_err		err;
	char		rec[512];

	assert_int_equal(sg_wal_writer_open(sg_env_posix(), dir, &o, NULL, &w, &err), SG_OK);
	for (int i = first; i < first + n; i++)
	{
		record_text(rec, sizeof(rec), i);
		assert_int_equal(sg_wal_writer_append(w, sg_slice_from_cstr(rec), &lsns[i], &err), SG_OK);
		assert_int_equal(lsns[i], sg_wal_writer_end_lsn(w));
		if (i > 0)
			assert_true(lsns[i] > lsns[i - 1]);
	}
	assert_int_equal(sg_wal_writer_sync(w, &err), SG_OK);
	assert_int_equal(sg_wal_writer_synced_lsn(w), sg_wal_writer_end_lsn(w));
	assert_int_equal(sg_wal_writer_close(w, &err), SG_OK);
}

static void
check_collected(const collected *c, int first, const uint64_t *lsns)
{
	char		rec[512];

	for (size_t k = 0; k < c->n; k++)
	{
		record_text(rec, sizeof(rec), first + (int) k);
		assert_int_equal(c->len[k], strlen(rec));
		assert_memory_equal(c->rec[k], rec, c->len[k]);
		assert_int_equal(c->lsn[k], lsns[first + k]);
	}
}

static void
test_roll_replay_from_lsn(void **state)
{
	fixture    *fx = *state;
	static uint64_t lsns[600];
	static collected c;
	sg_wal_replay_result res;
	sg_err		err;

	append_records(fx->wal, 4096, 0, 300, lsns);
	assert_true(count_segments(fx->wal) > 5);
	/* reopen continues the same LSN sequence */
	append_records(fx->wal, 4096, 300, 300, lsns);

	assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, 0, true, collect, &c, &res, &err), SG_OK);
	assert_int_equal(c.n, 600);
	check_collected(&c, 0, lsns);
	assert_false(res.torn_tail);
	assert_int_equal(res.end_lsn, lsns[599]);
	assert_int_equal(res.segments, count_segments(fx->wal));
	collected_free(&c);

	/* from the end LSN of record 250: records 251.. */
	assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, lsns[250], true, collect, &c, &res, &err), SG_OK);
	assert_int_equal(c.n, 349);
	check_collected(&c, 251, lsns);
	assert_true(res.segments < count_segments(fx->wal));
	collected_free(&c);

	/* from the end: nothing */
	assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, lsns[599], true, collect, &c, &res, &err), SG_OK);
	assert_int_equal(c.n, 0);
	assert_int_equal(res.end_lsn, lsns[599]);
}

static void
test_delete_below(void **state)
{
	fixture    *fx = *state;
	static uint64_t lsns[400];
	static collected c;
	sg_wal_replay_result res;
	sg_wal_writer_options o = {4096, 0};
	sg_wal_writer *w;
	uint64_t	deleted;
	size_t		before;
	sg_err		err;

	append_records(fx->wal, 4096, 0, 400, lsns);
	before = count_segments(fx->wal);
	assert_int_equal(sg_wal_writer_open(sg_env_posix(), fx->wal, &o, NULL, &w, &err), SG_OK);
	assert_int_equal(sg_wal_writer_delete_below(w, lsns[200], &deleted, &err), SG_OK);
	assert_true(deleted > 0);
	assert_int_equal(count_segments(fx->wal), before - deleted);
	/* deleting everything still keeps the current segment */
	assert_int_equal(sg_wal_writer_delete_below(w, UINT64_MAX, &deleted, &err), SG_OK);
	assert_int_equal(count_segments(fx->wal), 1);
	assert_int_equal(sg_wal_writer_close(w, &err), SG_OK);
	collected_free(&c);

	/* replay from 0 now needs removed segments: corruption */
	{
		fixture    *fx2 = fx;
		char		sub[4096];

		snprintf(sub, sizeof(sub), "%s/wal2", fx2->dir);
		append_records(sub, 4096, 0, 400, lsns);
		assert_int_equal(sg_wal_writer_open(sg_env_posix(), sub, &o, NULL, &w, &err), SG_OK);
		assert_int_equal(sg_wal_writer_delete_below(w, lsns[200], &deleted, &err), SG_OK);
		sg_wal_writer_close(w, NULL);
		assert_int_equal(sg_wal_replay(sg_env_posix(), sub, 0, false, collect, &c, &res, &err),
						 SG_CORRUPTION);
		assert_non_null(strstr(err.msg, "removed"));
		collected_free(&c);
		/* but from lsns[200] everything needed is there */
		assert_int_equal(sg_wal_replay(sg_env_posix(), sub, lsns[200], false, collect, &c, &res, &err),
						 SG_OK);
		assert_int_equal(c.n, 199);
		check_collected(&c, 201, lsns);
		collected_free(&c);
	}
}

static void
segment_path_of(const char *dir, size_t index, char *buf, size_t size, uint64_t *start)
{
	uint64_t   *starts;
	size_t		n;
	sg_err		err;

	assert_int_equal(sg_wal_list_segments(sg_env_posix(), dir, false, &starts, &n, &err), SG_OK);
	assert_true(index < n);
	sg_wal_segment_path(buf, size, dir, starts[index]);
	if (start)
		*start = starts[index];
	free(starts);
}

static void
file_truncate(const char *path, uint64_t len)
{
	sg_file    *f;
	sg_err		err;

	assert_int_equal(sg_file_open(sg_env_posix(), path, SG_OPEN_APPEND, &f, &err), SG_OK);
	assert_int_equal(sg_file_truncate(f, len, &err), SG_OK);
	sg_file_close(f, NULL);
}

static uint64_t
file_size_of(const char *path)
{
	sg_file    *f;
	uint64_t	s;
	sg_err		err;

	assert_int_equal(sg_file_open(sg_env_posix(), path, SG_OPEN_READ, &f, &err), SG_OK);
	assert_int_equal(sg_file_size(f, &s, &err), SG_OK);
	sg_file_close(f, NULL);
	return s;
}

static void
file_flip(const char *path, uint64_t off)
{
	char	   *data;
	size_t		n;
	sg_file    *f;
	sg_err		err;

	assert_int_equal(sg_env_read_file(sg_env_posix(), path, &data, &n, &err), SG_OK);
	data[off] ^= 1;
	assert_int_equal(sg_file_open(sg_env_posix(), path, SG_OPEN_CREATE, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, data, n, &err), SG_OK);
	sg_file_close(f, NULL);
	free(data);
}

static void
test_torn_tail_truncated_and_appends_continue(void **state)
{
	fixture    *fx = *state;
	static uint64_t lsns[200];
	static collected c;
	sg_wal_replay_result res;
	char		path[4096];
	uint64_t	start;
	size_t		nseg;
	sg_err		err;

	append_records(fx->wal, 4096, 0, 100, lsns);
	nseg = count_segments(fx->wal);
	segment_path_of(fx->wal, nseg - 1, path, sizeof(path), &start);
	/* tear the last record: cut 5 bytes off its end */
	file_truncate(path, lsns[99] - start - 5);

	/* read-only replay reports but does not cut */
	assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, 0, false, collect, &c, &res, &err), SG_OK);
	assert_true(res.torn_tail);
	assert_false(res.truncated);
	assert_int_equal(file_size_of(path), lsns[99] - start - 5);
	collected_free(&c);

	assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, 0, true, collect, &c, &res, &err), SG_OK);
	assert_true(res.torn_tail);
	assert_true(res.truncated);
	assert_int_equal(c.n, 99);
	check_collected(&c, 0, lsns);
	assert_int_equal(res.torn_lsn, lsns[98]);
	assert_int_equal(res.end_lsn, lsns[98]);
	assert_non_null(strstr(res.torn_msg, path));
	assert_non_null(strstr(res.torn_msg, "truncated"));
	assert_int_equal(file_size_of(path), lsns[98] - start);
	collected_free(&c);

	/* appends continue after the truncation point: record 99 again, then more */
	append_records(fx->wal, 4096, 99, 101, lsns);
	assert_true(lsns[99] > res.end_lsn);
	assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, 0, true, collect, &c, &res, &err), SG_OK);
	assert_false(res.torn_tail);
	assert_int_equal(c.n, 200);
	check_collected(&c, 0, lsns);
	collected_free(&c);
}

static void
test_damage_in_older_segment_is_corruption(void **state)
{
	fixture    *fx = *state;
	static uint64_t lsns[200];
	static collected c;
	sg_wal_replay_result res;
	char		path[4096];
	sg_err		err;

	append_records(fx->wal, 4096, 0, 200, lsns);
	assert_true(count_segments(fx->wal) >= 3);

	/* a torn tail in a segment that is not the last is corruption */
	segment_path_of(fx->wal, 1, path, sizeof(path), NULL);
	file_truncate(path, file_size_of(path) - 3);
	assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, 0, true, collect, &c, &res, &err),
					 SG_CORRUPTION);
	assert_non_null(strstr(err.msg, path));
	collected_free(&c);
}

static void
test_flip_in_middle_names_offset(void **state)
{
	fixture    *fx = *state;
	static uint64_t lsns[200];
	static collected c;
	sg_wal_replay_result res;
	char		path[4096];
	char		want[64];
	uint64_t	start;
	sg_err		err;

	append_records(fx->wal, 4096, 0, 200, lsns);
	/* record 3 is in segment 0; flip a payload byte */
	segment_path_of(fx->wal, 0, path, sizeof(path), &start);
	assert_true(lsns[3] < file_size_of(path));
	file_flip(path, lsns[3] - start - 2);
	assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, 0, true, collect, &c, &res, &err),
					 SG_CORRUPTION);
	assert_non_null(strstr(err.msg, path));
	snprintf(want, sizeof(want), "offset %llu", (unsigned long long) (lsns[2] - start));
	assert_non_null(strstr(err.msg, want));
	assert_int_equal(c.n, 3);		/* the good prefix was delivered */
	collected_free(&c);

	/* also in the LAST segment when valid data follows */
	{
		size_t		n = count_segments(fx->wal);

		segment_path_of(fx->wal, n - 1, path, sizeof(path), &start);
		file_flip(path, SG_WAL_SEG_HEADER_BYTES + 9);
		assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, lsns[150], true, collect, &c, &res, &err),
						 SG_CORRUPTION);
		snprintf(want, sizeof(want), "offset %d", SG_WAL_SEG_HEADER_BYTES);
		assert_non_null(strstr(err.msg, want));
		collected_free(&c);
	}
}

/*
 * A damaged length field in the middle of the NEWEST segment, running past
 * the end of the file (what a torn last record looks like), is corruption:
 * replay with truncation fails naming the segment and the record's offset,
 * and the segment is not cut. The old reader took it for a torn tail and
 * truncated the acknowledged records after it away.
 */
static void
test_damaged_length_in_newest_segment(void **state)
{
	fixture    *fx = *state;
	static uint64_t lsns[100];
	static collected c;
	sg_wal_replay_result res;
	char		path[4096];
	char		want[64];
	uint64_t	start,
				size;
	int			k;
	sg_err		err;

	append_records(fx->wal, 4096, 0, 100, lsns);
	segment_path_of(fx->wal, count_segments(fx->wal) - 1, path, sizeof(path), &start);
	size = file_size_of(path);
	assert_true(size < SG_LOG_BLOCK_SIZE);
	/* the second batch record of the newest segment; records follow it */
	for (k = 1; lsns[k - 1] <= start + SG_WAL_SEG_HEADER_BYTES; k++)
		;
	assert_true(k < 99 && lsns[99] - start == size);

	uint64_t	at = lsns[k - 1] - start;
	unsigned	bad = (unsigned) (SG_LOG_BLOCK_SIZE - at - SG_LOG_HEADER_SIZE);
	char	   *data;
	size_t		n;
	sg_file    *f;

	assert_int_equal(sg_env_read_file(sg_env_posix(), path, &data, &n, &err), SG_OK);
	data[at + 4] = (char) (bad & 0xff);
	data[at + 5] = (char) (bad >> 8);
	assert_int_equal(sg_file_open(sg_env_posix(), path, SG_OPEN_CREATE, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, data, n, &err), SG_OK);
	sg_file_close(f, NULL);
	free(data);

	assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, 0, true, collect, &c, &res, &err),
					 SG_CORRUPTION);
	assert_non_null(strstr(err.msg, path));
	snprintf(want, sizeof(want), "offset %llu (", (unsigned long long) at);
	assert_non_null(strstr(err.msg, want));
	assert_int_equal(c.n, (size_t) k);	/* the good prefix was delivered */
	assert_false(res.truncated);
	assert_int_equal(file_size_of(path), size);
	collected_free(&c);
}

static void
test_missing_middle_segment(void **state)
{
	fixture    *fx = *state;
	static uint64_t lsns[200];
	static collected c;
	sg_wal_replay_result res;
	char		path[4096];
	sg_err		err;

	append_records(fx->wal, 4096, 0, 200, lsns);
	assert_true(count_segments(fx->wal) >= 3);
	segment_path_of(fx->wal, 1, path, sizeof(path), NULL);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, 0, true, collect, &c, &res, &err),
					 SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "missing"));
	collected_free(&c);
}

/*
 * The three-step sync: another handle appends (and rolls) between
 * sync_begin and sync_end, and the durable horizon is exactly what was
 * noted at sync_begin; a second sync then covers the rest.
 */
static void
test_split_sync(void **state)
{
	fixture    *fx = *state;
	sg_wal_writer_options o = {1 << 20, 0};
	sg_wal_writer_state shared;
	sg_wal_writer *a,
			   *b;
	uint64_t	l1,
				l2,
				target;
	sg_err		err;

	assert_int_equal(sg_wal_writer_open(sg_env_posix(), fx->wal, &o, &shared, &a, &err), SG_OK);
	assert_int_equal(sg_wal_writer_attach(sg_env_posix(), fx->wal, &shared, &b, &err), SG_OK);
	assert_int_equal(sg_wal_writer_append(a, sg_slice_from_cstr("first"), &l1, &err), SG_OK);

	assert_int_equal(sg_wal_writer_sync_begin(a, &target, &err), SG_OK);
	assert_int_equal(target, l1);
	/* meanwhile another process appends and rolls */
	assert_int_equal(sg_wal_writer_append(b, sg_slice_from_cstr("second"), &l2, &err), SG_OK);
	assert_int_equal(sg_wal_writer_roll(b, &err), SG_OK);
	assert_int_equal(sg_wal_writer_sync_end(a, target, sg_wal_writer_sync_file(a, &err), &err),
					 SG_OK);
	/* target is durable; the roll had already made "second" durable too */
	assert_true(target < l2);
	assert_true(sg_wal_writer_synced_lsn(a) >= l2);

	/* nothing new: begin says there is nothing to do */
	assert_int_equal(sg_wal_writer_sync(a, &err), SG_OK);
	assert_int_equal(sg_wal_writer_sync_begin(a, &target, &err), SG_OK);
	assert_int_equal(target, 0);

	/* a failed fsync reported to sync_end leaves the writer failed for good */
	assert_int_equal(sg_wal_writer_append(a, sg_slice_from_cstr("third"), &l1, &err), SG_OK);
	assert_int_equal(sg_wal_writer_sync_begin(a, &target, &err), SG_OK);
	assert_true(target >= l1);
	assert_int_equal(sg_wal_writer_sync_end(a, target, SG_IO_ERROR, &err), SG_IO_ERROR);
	assert_true(err.sync_failed);
	assert_true(sg_wal_writer_synced_lsn(a) < target);
	assert_int_not_equal(sg_wal_writer_append(b, sg_slice_from_cstr("refused"), &l2, &err), SG_OK);
	sg_wal_writer_close(a, NULL);
	sg_wal_writer_close(b, NULL);
}

static void
test_min_lsn_and_shared_state(void **state)
{
	fixture    *fx = *state;
	sg_wal_writer_options o = {1 << 20, 5000000};
	sg_wal_writer_state shared;
	sg_wal_writer *a,
			   *b;
	uint64_t	l1,
				l2,
				l3;
	static collected c;
	sg_wal_replay_result res;
	sg_err		err;

	/* a fresh WAL starts at min_lsn */
	assert_int_equal(sg_wal_writer_open(sg_env_posix(), fx->wal, &o, &shared, &a, &err), SG_OK);
	assert_int_equal(sg_wal_writer_end_lsn(a), 5000000 + SG_WAL_SEG_HEADER_BYTES);
	/* two handles (as two processes would) on one state, caller-serialised */
	assert_int_equal(sg_wal_writer_attach(sg_env_posix(), fx->wal, &shared, &b, &err), SG_OK);
	assert_int_equal(sg_wal_writer_append(a, sg_slice_from_cstr("one"), &l1, &err), SG_OK);
	assert_int_equal(sg_wal_writer_append(b, sg_slice_from_cstr("two"), &l2, &err), SG_OK);
	assert_int_equal(sg_wal_writer_roll(b, &err), SG_OK);
	assert_int_equal(sg_wal_writer_append(a, sg_slice_from_cstr("three"), &l3, &err), SG_OK);
	assert_true(l1 < l2 && l2 < l3);
	assert_int_equal(sg_wal_writer_sync(a, &err), SG_OK);
	sg_wal_writer_close(a, NULL);
	sg_wal_writer_close(b, NULL);

	/* reopen with a higher min_lsn: a new segment skips ahead */
	o.min_lsn = 9000000;
	assert_int_equal(sg_wal_writer_open(sg_env_posix(), fx->wal, &o, NULL, &a, &err), SG_OK);
	assert_int_equal(sg_wal_writer_append(a, sg_slice_from_cstr("four"), &l1, &err), SG_OK);
	assert_true(l1 > 9000000);
	sg_wal_writer_close(a, NULL);

	assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, 0, true, collect, &c, &res, &err),
					 SG_CORRUPTION);		/* records below 5000000 were never there */
	collected_free(&c);
	assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, 5000000, true, collect, &c, &res, &err),
					 SG_OK);
	assert_int_equal(c.n, 4);
	assert_memory_equal(c.rec[2], "three", 5);
	assert_memory_equal(c.rec[3], "four", 4);
	assert_int_equal(c.lsn[3], l1);
	collected_free(&c);
}

/* ------------------------------------------------------------------ */
/* the threaded WAL */

#define NTHREADS 8
#define PER_THREAD 200

typedef struct thread_arg
{
	sg_wal	   *wal;
	int			id;
	uint64_t	lsns[PER_THREAD];
	int			failures;
} thread_arg;

static void *
committer(void *p)
{
	thread_arg *a = p;
	char		rec[64];
	sg_err		err;

	for (int i = 0; i < PER_THREAD; i++)
	{
		snprintf(rec, sizeof(rec), "t%d-%d", a->id, i);
		if (sg_wal_append(a->wal, sg_slice_from_cstr(rec), &a->lsns[i], &err) != SG_OK)
			a->failures++;
	}
	return NULL;
}

static void
run_committers(sg_wal *wal, thread_arg *args)
{
	pthread_t	th[NTHREADS];

	for (int t = 0; t < NTHREADS; t++)
	{
		args[t].wal = wal;
		args[t].id = t;
		args[t].failures = 0;
		assert_int_equal(pthread_create(&th[t], NULL, committer, &args[t]), 0);
	}
	for (int t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
}

static void
test_group_commit(void **state)
{
	fixture    *fx = *state;
	sg_wal_options o = {SG_WAL_SYNC_ALWAYS, 0, 1 << 20, 0};
	sg_env	   *env = test_env_get();
	static thread_arg args[NTHREADS];
	static collected c;
	sg_wal_replay_result res;
	sg_wal_stats before,
				after;
	sg_wal	   *wal;
	sg_err		err;

	/* a disk-like fsync latency, so that committers pile up */
	atomic_store(&tenv.sync_delay_us, 200);
	assert_int_equal(sg_wal_open(env, fx->wal, &o, &wal, &err), SG_OK);
	sg_wal_get_stats(wal, &before);
	run_committers(wal, args);
	sg_wal_get_stats(wal, &after);

	for (int t = 0; t < NTHREADS; t++)
	{
		assert_int_equal(args[t].failures, 0);
		for (int i = 0; i < PER_THREAD; i++)
		{
			/* ALWAYS: durable when append returned */
			assert_true(args[t].lsns[i] <= after.durable_lsn);
			if (i > 0)
				assert_true(args[t].lsns[i] > args[t].lsns[i - 1]);
		}
	}
	assert_int_equal(after.appends, NTHREADS * PER_THREAD);
	assert_true(after.syncs - before.syncs < NTHREADS * PER_THREAD);
	assert_true(after.groups < NTHREADS * PER_THREAD);
	assert_int_equal(after.durable_lsn, after.written_lsn);
	print_message("group commit: %d appends, %llu fsyncs, %llu groups\n",
				  NTHREADS * PER_THREAD,
				  (unsigned long long) (after.syncs - before.syncs),
				  (unsigned long long) after.groups);
	assert_int_equal(sg_wal_close(wal, &err), SG_OK);

	/* every record is in the log, each thread's in its order */
	assert_int_equal(sg_wal_replay(sg_env_posix(), fx->wal, 0, true, collect, &c, &res, &err), SG_OK);
	assert_int_equal(c.n, NTHREADS * PER_THREAD);
	{
		int			next[NTHREADS] = {0};

		for (size_t k = 0; k < c.n; k++)
		{
			int			t,
						i;
			char		s[64];

			memcpy(s, c.rec[k], c.len[k]);
			s[c.len[k]] = 0;
			assert_int_equal(sscanf(s, "t%d-%d", &t, &i), 2);
			assert_int_equal(i, next[t]);
			assert_int_equal(c.lsn[k], args[t].lsns[i]);
			next[t]++;
		}
	}
	collected_free(&c);
}

static void
test_sync_off_and_wait_durable(void **state)
{
	fixture    *fx = *state;
	sg_wal_options o = {SG_WAL_SYNC_OFF, 0, 1 << 20, 0};
	sg_wal	   *wal;
	sg_wal_stats s0,
				s1,
				s2;
	uint64_t	lsn = 0;
	sg_err		err;

	assert_int_equal(sg_wal_open(sg_env_posix(), fx->wal, &o, &wal, &err), SG_OK);
	sg_wal_get_stats(wal, &s0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(sg_wal_append(wal, sg_slice_from_cstr("off"), &lsn, &err), SG_OK);
	sg_wal_get_stats(wal, &s1);
	assert_int_equal(s1.syncs, s0.syncs);
	assert_int_equal(s1.appends, 100);
	assert_int_equal(s1.written_lsn, lsn);
	assert_true(s1.durable_lsn < lsn);
	assert_true(s1.bytes_written >= 100 * (7 + 3));
	assert_int_equal(sg_wal_wait_durable(wal, lsn, &err), SG_OK);
	sg_wal_get_stats(wal, &s2);
	assert_int_equal(s2.syncs, s1.syncs + 1);
	assert_int_equal(s2.durable_lsn, lsn);
	/* already durable: no further fsync */
	assert_int_equal(sg_wal_wait_durable(wal, lsn, &err), SG_OK);
	assert_int_equal(sg_wal_sync(wal, &err), SG_OK);
	sg_wal_get_stats(wal, &s2);
	assert_int_equal(s2.syncs, s1.syncs + 1);
	/* an LSN never written is refused */
	assert_int_equal(sg_wal_wait_durable(wal, lsn + 1000, &err), SG_INVALID_ARGUMENT);
	assert_int_equal(sg_wal_close(wal, &err), SG_OK);
}

static void
test_sync_interval(void **state)
{
	fixture    *fx = *state;
	sg_wal_options o = {SG_WAL_SYNC_INTERVAL, 20, 1 << 20, 0};
	sg_wal	   *wal;
	sg_wal_stats s;
	uint64_t	lsn = 0;
	sg_err		err;
	int			waited = 0;

	assert_int_equal(sg_wal_open(sg_env_posix(), fx->wal, &o, &wal, &err), SG_OK);
	for (int i = 0; i < 500; i++)
		assert_int_equal(sg_wal_append(wal, sg_slice_from_cstr("interval"), &lsn, &err), SG_OK);
	/* without any explicit sync, the background thread catches up */
	for (;;)
	{
		sg_wal_get_stats(wal, &s);
		if (s.durable_lsn >= lsn || waited > 5000)
			break;
		usleep(5000);
		waited += 5;
	}
	assert_true(s.durable_lsn >= lsn);
	/* far fewer fsyncs than appends */
	assert_true(s.syncs < 100);
	assert_int_equal(sg_wal_close(wal, &err), SG_OK);
}

static void
test_fsync_failure_is_sticky(void **state)
{
	fixture    *fx = *state;
	sg_wal_options o = {SG_WAL_SYNC_ALWAYS, 0, 1 << 20, 0};
	sg_env	   *env = test_env_get();
	sg_wal	   *wal;
	uint64_t	lsn;
	long		syncs;
	sg_err		err;

	assert_int_equal(sg_wal_open(env, fx->wal, &o, &wal, &err), SG_OK);
	assert_int_equal(sg_wal_append(wal, sg_slice_from_cstr("fine"), &lsn, &err), SG_OK);
	atomic_store(&tenv.fail_syncs, 1);
	sg_err_clear(&err);
	assert_int_not_equal(sg_wal_append(wal, sg_slice_from_cstr("doomed"), &lsn, &err), SG_OK);
	assert_true(err.sync_failed);
	assert_non_null(strstr(err.msg, "injected fsync failure"));
	/* even with fsync working again, nothing is retried or accepted */
	atomic_store(&tenv.fail_syncs, 0);
	syncs = atomic_load(&tenv.syncs);
	sg_err_clear(&err);
	assert_int_not_equal(sg_wal_append(wal, sg_slice_from_cstr("after"), &lsn, &err), SG_OK);
	assert_true(err.sync_failed);
	sg_err_clear(&err);
	assert_int_not_equal(sg_wal_sync(wal, &err), SG_OK);
	assert_true(err.sync_failed);
	assert_int_equal(atomic_load(&tenv.syncs), syncs);
	sg_wal_close(wal, NULL);

	/* the single-threaded writer behaves the same */
	{
		sg_wal_writer *w;
		sg_wal_writer_options wo = {1 << 20, 0};

		assert_int_equal(sg_wal_writer_open(env, fx->wal, &wo, NULL, &w, &err), SG_OK);
		assert_int_equal(sg_wal_writer_append(w, sg_slice_from_cstr("x"), &lsn, &err), SG_OK);
		atomic_store(&tenv.fail_syncs, 1);
		sg_err_clear(&err);
		assert_int_not_equal(sg_wal_writer_sync(w, &err), SG_OK);
		assert_true(err.sync_failed);
		atomic_store(&tenv.fail_syncs, 0);
		sg_err_clear(&err);
		assert_int_not_equal(sg_wal_writer_append(w, sg_slice_from_cstr("y"), &lsn, &err), SG_OK);
		assert_true(err.sync_failed);
		sg_err_clear(&err);
		assert_int_not_equal(sg_wal_writer_roll(w, &err), SG_OK);
		assert_true(sg_wal_writer_get_state(w)->failed);
		sg_wal_writer_close(w, NULL);
	}
}

/*
 * An append that finds the disk full fails with err.disk_full, and so does
 * every call while the writer is failed; once space is back the next
 * append cuts off the partial record, goes on, and replay finds every
 * acknowledged record and no torn tail. Before, the writer stayed failed
 * until the server restarted.
 */
static void
test_disk_full_then_space_again(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_wal_writer *w;
	sg_wal_writer_options wo = {4096, 0};
	static collected c;
	sg_wal_replay_result res;
	char		rec[300];
	uint64_t	lsn;
	uint64_t	acked = 0;
	int			i;
	sg_err		err;

	(void) state;
	memset(rec, 'r', sizeof(rec));
	assert_int_equal(sg_wal_writer_open(env, "/w", &wo, NULL, &w, &err), SG_OK);
	sg_env_mem_set_space_budget(env, 2000);
	for (i = 0; i < 100; i++)
	{
		sg_err_clear(&err);
		if (sg_wal_writer_append(w, sg_slice_make(rec, sizeof(rec)), &lsn, &err) != SG_OK)
			break;
		acked++;
	}
	assert_true(i < 100);
	assert_true(acked > 0);
	assert_true(err.disk_full);
	assert_false(err.sync_failed);
	/* still full: refused, and still says why */
	sg_err_clear(&err);
	assert_int_not_equal(sg_wal_writer_append(w, sg_slice_make(rec, sizeof(rec)), &lsn, &err), SG_OK);
	assert_true(err.disk_full);
	assert_true(sg_wal_writer_get_state(w)->failed);

	/* space again: appends and syncs go on, across segment rolls */
	sg_env_mem_set_space_budget(env, UINT64_MAX);
	for (i = 0; i < 30; i++)
	{
		assert_int_equal(sg_wal_writer_append(w, sg_slice_make(rec, sizeof(rec)), &lsn, &err), SG_OK);
		acked++;
	}
	assert_false(sg_wal_writer_get_state(w)->failed);
	assert_int_equal(sg_wal_writer_sync(w, &err), SG_OK);
	sg_wal_writer_close(w, NULL);

	assert_int_equal(sg_wal_replay(env, "/w", 0, false, collect, &c, &res, &err), SG_OK);
	assert_false(res.torn_tail);
	assert_int_equal(c.n, acked);
	collected_free(&c);
	sg_env_mem_destroy(env);
}

static void
test_segment_names(void **state)
{
	uint64_t	v;
	char		buf[128];

	(void) state;
	sg_wal_segment_path(buf, sizeof(buf), "d", UINT64_C(0x4000000));
	assert_string_equal(buf, "d/0000000004000000.wal");
	assert_true(sg_wal_parse_segment_name("0000000004000000.wal", &v));
	assert_int_equal(v, 0x4000000);
	assert_true(sg_wal_parse_segment_name("FFFFFFFFFFFFFFFF.wal", &v));
	assert_int_equal(v, UINT64_MAX);
	assert_false(sg_wal_parse_segment_name("000000000400000.wal", &v));
	assert_false(sg_wal_parse_segment_name("000000000400000g.wal", &v));
	assert_false(sg_wal_parse_segment_name("0000000004000000.wal.tmp", &v));
	assert_false(sg_wal_parse_segment_name("0000000004000000.wax", &v));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_roundtrip),
		cmocka_unit_test(test_batch_malformed),
		cmocka_unit_test(test_segment_names),
		cmocka_unit_test(test_disk_full_then_space_again),
		cmocka_unit_test_setup_teardown(test_roll_replay_from_lsn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_below, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_truncated_and_appends_continue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage_in_older_segment_is_corruption, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_length_in_newest_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flip_in_middle_names_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_middle_segment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_min_lsn_and_shared_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_off_and_wait_durable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsync_failure_is_sticky, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
