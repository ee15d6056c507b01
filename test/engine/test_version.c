/*
 * test_version.c — unit tests for version/: version edit encoding (round
 * trip, every truncation, malformed fields), version invariants under
 * apply, MANIFEST replay against the in-memory version after many random
 * edits and MANIFEST rolls, the CURRENT switch, torn MANIFEST tails versus
 * corruption (a damaged length field mid-MANIFEST included), orphan listing,
 * and compaction picking.
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
#include "engine/base/env.h"
#include "engine/base/env_mem.h"
#include "engine/base/ikey.h"
#include "engine/version/manifest.h"
#include "engine/version/version.h"
#include "testutil.h"

/* A meta for keys [lo, hi] (user keys "k%06u") and sequence range. */
static void
make_meta(sg_file_meta *m, uint64_t number, unsigned lo, unsigned hi, uint64_t seq_lo,
		  uint64_t seq_hi, uint64_t size)
{
	char		k[16];

	sg_file_meta_init(m);
	m->number = number;
	m->file_size = size;
	m->num_entries = hi - lo + 1;
	m->smallest_seq = seq_lo;
	m->largest_seq = seq_hi;
	snprintf(k, sizeof(k), "k%06u", lo);
	sg_ikey_append(&m->smallest, sg_slice_from_cstr(k), seq_hi, SG_TYPE_PUT);
	snprintf(k, sizeof(k), "k%06u", hi);
	sg_ikey_append(&m->largest, sg_slice_from_cstr(k), seq_lo, SG_TYPE_PUT);
	sg_buf_append(&m->user_stats, "xid", 3);
}

static void
edit_add(sg_version_edit *e, int level, uint64_t number, unsigned lo, unsigned hi,
		 uint64_t seq_lo, uint64_t seq_hi, uint64_t size)
{
	sg_file_meta m;
	sg_err		err;

	make_meta(&m, number, lo, hi, seq_lo, seq_hi, size);
	assert_int_equal(sg_version_edit_add_file(e, level, &m, &err), SG_OK);
	sg_file_meta_free(&m);
}

/* Encode a version as a snapshot-like byte string, for equality checks. */
static void
version_bytes(const sg_version *v, sg_buf *out)
{
	sg_version_edit e;
	sg_err		err;

	sg_version_edit_init(&e);
	for (int l = 0; l < SG_NUM_LEVELS; l++)
		for (size_t i = 0; i < v->nfiles[l]; i++)
			assert_int_equal(sg_version_edit_add_file(&e, l, v->files[l][i], &err), SG_OK);
	sg_version_edit_encode(&e, out);
	sg_version_edit_free(&e);
}

static void
test_edit_roundtrip(void **state)
{
	sg_version_edit e,
				d;
	sg_buf		a = SG_BUF_INIT,
				b = SG_BUF_INIT;
	sg_err		err;

	(void) state;
	sg_version_edit_init(&e);
	sg_version_edit_init(&d);
	e.is_snapshot = true;
	e.has_format_name = true;
	strcpy(e.format_name, SG_FORMAT_NAME);
	sg_version_edit_set_log_number(&e, 123456789);
	sg_version_edit_set_aux_log_number(&e, 987654321);
	sg_version_edit_set_next_file(&e, 77);
	sg_version_edit_set_last_sequence(&e, SG_MAX_SEQUENCE);
	edit_add(&e, 0, 5, 1, 10, 3, 9, 4096);
	edit_add(&e, 6, 6, 20, 30, 1, 2, 1 << 20);
	assert_int_equal(sg_version_edit_delete_file(&e, 3, 99, &err), SG_OK);
	sg_version_edit_encode(&e, &a);
	assert_false(sg_buf_failed(&a));
	assert_int_equal(sg_version_edit_decode(&d, sg_buf_slice(&a), "M", 0, &err), SG_OK);
	assert_true(d.is_snapshot);
	assert_string_equal(d.format_name, SG_FORMAT_NAME);
	assert_int_equal(d.log_number, 123456789);
	assert_int_equal(d.aux_log_number, 987654321);
	assert_int_equal(d.next_file, 77);
	assert_int_equal(d.last_sequence, SG_MAX_SEQUENCE);
	assert_int_equal(d.nadded, 2);
	assert_int_equal(d.added[1].level, 6);
	assert_int_equal(d.added[1].meta.file_size, 1 << 20);
	assert_int_equal(d.added[0].meta.user_stats.len, 3);
	assert_int_equal(d.ndeleted, 1);
	assert_int_equal(d.deleted[0].number, 99);
	sg_version_edit_encode(&d, &b);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);

	/* every strict prefix decodes cleanly or fails as corruption */
	for (size_t cut = 0; cut < a.len; cut++)
	{
		sg_code		rc = sg_version_edit_decode(&d, sg_slice_make(a.data, cut), "MANIFEST-1",
												40, &err);

		assert_true(rc == SG_OK || rc == SG_CORRUPTION);
		if (rc == SG_CORRUPTION)
		{
			assert_non_null(strstr(err.msg, "MANIFEST-1"));
			assert_non_null(strstr(err.msg, "offset 40"));
		}
	}
	sg_version_edit_free(&e);
	sg_version_edit_free(&d);
	sg_buf_free(&a);
	sg_buf_free(&b);
}

/* Decoding one hand-made byte string must fail as corruption. */
static void
expect_bad(const sg_buf *bytes)
{
	sg_version_edit d;
	sg_err		err;

	sg_version_edit_init(&d);
	assert_int_equal(sg_version_edit_decode(&d, sg_buf_slice(bytes), "MANIFEST-9", 7, &err),
					 SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "MANIFEST-9"));
	sg_version_edit_free(&d);
}

static void
test_edit_malformed(void **state)
{
	sg_buf		b = SG_BUF_INIT;
	sg_buf		k = SG_BUF_INIT;

	(void) state;
	/* unknown tag */
	sg_put_varint32(&b, 99);
	expect_bad(&b);
	/* duplicate singleton */
	sg_buf_reset(&b);
	sg_put_varint32(&b, SG_EDIT_TAG_NEXT_FILE);
	sg_put_varint64(&b, 1);
	sg_put_varint32(&b, SG_EDIT_TAG_NEXT_FILE);
	sg_put_varint64(&b, 2);
	expect_bad(&b);
	/* level out of range */
	sg_buf_reset(&b);
	sg_put_varint32(&b, SG_EDIT_TAG_DELETED_FILE);
	sg_put_varint32(&b, SG_NUM_LEVELS);
	sg_put_varint64(&b, 1);
	expect_bad(&b);
	/* new file whose keys are too short / inverted / bad type */
	for (int variant = 0; variant < 4; variant++)
	{
		sg_buf_reset(&b);
		sg_put_varint32(&b, SG_EDIT_TAG_NEW_FILE);
		sg_put_varint32(&b, 1);
		sg_put_varint64(&b, 5);
		sg_put_varint64(&b, 100);
		sg_put_varint64(&b, variant == 3 ? 0 : 10);
		sg_buf_reset(&k);
		if (variant == 0)
			sg_buf_append(&k, "abc", 3);
		else
			sg_ikey_append(&k, sg_slice_from_cstr(variant == 1 ? "zzz" : "aaa"), 1, SG_TYPE_PUT);
		if (variant == 2)
			k.data[k.len - 8] = 7;	/* unknown type */
		sg_put_length_prefixed(&b, sg_buf_slice(&k));
		sg_buf_reset(&k);
		sg_ikey_append(&k, sg_slice_from_cstr("bbb"), 1, SG_TYPE_PUT);
		sg_put_length_prefixed(&b, sg_buf_slice(&k));
		sg_put_varint64(&b, 1);
		sg_put_varint64(&b, 1);
		sg_put_length_prefixed(&b, sg_slice_make("", 0));
		expect_bad(&b);
	}
	/* format name with a NUL byte */
	sg_buf_reset(&b);
	sg_put_varint32(&b, SG_EDIT_TAG_FORMAT_NAME);
	sg_put_length_prefixed(&b, sg_slice_make("a\0b", 3));
	expect_bad(&b);
	/* sequence beyond 56 bits */
	sg_buf_reset(&b);
	sg_put_varint32(&b, SG_EDIT_TAG_LAST_SEQUENCE);
	sg_put_varint64(&b, SG_MAX_SEQUENCE + 1);
	expect_bad(&b);
	sg_buf_free(&b);
	sg_buf_free(&k);
}

static void
test_apply_invariants(void **state)
{
	sg_version *v0 = sg_version_new_empty(),
			   *v1,
			   *v2;
	sg_version_edit e;
	sg_err		err;

	(void) state;
	sg_version_edit_init(&e);
	edit_add(&e, 0, 1, 1, 100, 1, 10, 10);
	edit_add(&e, 0, 2, 50, 60, 11, 20, 10);
	edit_add(&e, 1, 3, 1, 10, 1, 1, 10);
	edit_add(&e, 1, 4, 11, 20, 1, 1, 10);
	assert_int_equal(sg_version_apply(v0, &e, "t", &v1, &err), SG_OK);
	sg_version_edit_free(&e);
	/* L0 newest first */
	assert_int_equal(v1->files[0][0]->number, 2);
	assert_int_equal(v1->files[1][0]->number, 3);
	assert_int_equal(sg_version_level_bytes(v1, 1), 20);
	assert_int_equal(sg_version_find_file(v1, 1, sg_slice_from_cstr("k000015")), 1);
	assert_int_equal(sg_version_find_file(v1, 1, sg_slice_from_cstr("k000021")), -1);
	assert_false(sg_version_range_empty_below(v1, 0, sg_slice_from_cstr("k000005"),
											  sg_slice_from_cstr("k000005")));
	assert_true(sg_version_range_empty_below(v1, 0, sg_slice_from_cstr("k000021"),
											 sg_slice_from_cstr("k000099")));

	/* overlap in L1 */
	sg_version_edit_init(&e);
	edit_add(&e, 1, 5, 20, 25, 1, 1, 10);
	assert_int_equal(sg_version_apply(v1, &e, "t", &v2, &err), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "overlap"));
	sg_version_edit_free(&e);
	/* delete a file that is not there */
	sg_version_edit_init(&e);
	assert_int_equal(sg_version_edit_delete_file(&e, 2, 3, &err), SG_OK);
	assert_int_equal(sg_version_apply(v1, &e, "t", &v2, &err), SG_CORRUPTION);
	sg_version_edit_free(&e);
	/* duplicate number */
	sg_version_edit_init(&e);
	edit_add(&e, 2, 3, 1, 10, 1, 1, 10);
	assert_int_equal(sg_version_apply(v1, &e, "t", &v2, &err), SG_CORRUPTION);
	sg_version_edit_free(&e);
	/* a move keeps the meta object */
	sg_version_edit_init(&e);
	assert_int_equal(sg_version_edit_delete_file(&e, 1, 4, &err), SG_OK);
	edit_add(&e, 2, 4, 11, 20, 1, 1, 10);
	assert_int_equal(sg_version_apply(v1, &e, "t", &v2, &err), SG_OK);
	assert_ptr_equal(v2->files[2][0], v1->files[1][1]);
	assert_int_equal(v2->files[2][0]->refs, 2);
	sg_version_edit_free(&e);
	sg_version_unref(v2, NULL, NULL);
	sg_version_unref(v1, NULL, NULL);
	sg_version_unref(v0, NULL, NULL);
}

/* Count releases, to check files are released exactly once. */
static void
count_release(void *arg, sg_file_meta *m)
{
	(void) m;
	(*(int *) arg)++;
}

static sg_vset *
open_vset(sg_env *env, uint64_t max_bytes, int *released)
{
	sg_vset_options o;
	sg_vset    *vs;
	sg_err		err;

	memset(&o, 0, sizeof(o));
	o.create_if_missing = true;
	o.max_manifest_bytes = max_bytes;
	o.release = released ? count_release : NULL;
	o.release_arg = released;
	assert_int_equal(sg_vset_open(env, "/t", &o, &vs, &err), SG_OK);
	return vs;
}

/* A random valid edit: new L0 files, moves and merges into disjoint L1+. */
static void
random_edit(sg_vset *vs, sg_test_rng *rng, sg_version_edit *e)
{
	sg_version *v = vs->current;
	sg_err		err;
	int			op = (int) sg_test_uniform(rng, 3);

	if (op == 0 || sg_version_total_files(v) == 0)
	{
		unsigned	lo = (unsigned) sg_test_uniform(rng, 1000);
		uint64_t	seq = vs->last_sequence + 1;

		edit_add(e, 0, sg_vset_new_file_number(vs), lo, lo + (unsigned) sg_test_uniform(rng, 50),
				 seq, seq + 5, 100 + sg_test_uniform(rng, 1000));
		sg_version_edit_set_last_sequence(e, seq + 5);
		sg_version_edit_set_log_number(e, vs->log_number + sg_test_uniform(rng, 100));
		if (sg_test_uniform(rng, 2) == 0)
			sg_version_edit_set_aux_log_number(e, vs->aux_log_number + sg_test_uniform(rng, 100));
	}
	else if (op == 1)
	{
		/* delete a random file */
		for (int l = 0; l < SG_NUM_LEVELS; l++)
			if (v->nfiles[l] > 0)
			{
				size_t		i = sg_test_uniform(rng, v->nfiles[l]);

				assert_int_equal(sg_version_edit_delete_file(e, l, v->files[l][i]->number, &err), SG_OK);
				break;
			}
	}
	else
	{
		/* put a new file into an empty key slot of a random deeper level */
		int			l = 1 + (int) sg_test_uniform(rng, SG_NUM_LEVELS - 1);
		unsigned	slot = (unsigned) sg_test_uniform(rng, 100) * 20 + 2000;
		char		k[16];

		snprintf(k, sizeof(k), "k%06u", slot);
		if (sg_version_find_file(v, l, sg_slice_from_cstr(k)) >= 0)
			return;
		snprintf(k, sizeof(k), "k%06u", slot + 10);
		if (sg_version_find_file(v, l, sg_slice_from_cstr(k)) >= 0)
			return;
		edit_add(e, l, sg_vset_new_file_number(vs), slot, slot + 10, 1, 1, 5000);
	}
}

static void
test_manifest_replay_random(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_test_rng rng = {0x1234567};
	int			released = 0;
	sg_vset    *vs;
	sg_err		err;

	(void) state;
	for (int round = 0; round < 6; round++)
	{
		/* small MANIFEST limit in odd rounds: many rolls */
		vs = open_vset(env, (round & 1) ? 2000 : 0, &released);
		for (int i = 0; i < 300; i++)
		{
			sg_version_edit e;

			sg_version_edit_init(&e);
			random_edit(vs, &rng, &e);
			assert_int_equal(sg_vset_log_and_apply(vs, &e, &err), SG_OK);
			sg_version_edit_free(&e);
		}

		sg_buf		want = SG_BUF_INIT,
					got = SG_BUF_INIT;
		uint64_t	next = vs->next_file,
					seq = vs->last_sequence,
					lsn = vs->log_number,
					aux = vs->aux_log_number;

		version_bytes(vs->current, &want);
		/* a crash keeps everything: each edit was fsynced */
		sg_vset_close(vs);
		sg_env_mem_crash(env);
		vs = open_vset(env, 0, NULL);
		version_bytes(vs->current, &got);
		assert_int_equal(want.len, got.len);
		assert_memory_equal(want.data, got.data, want.len);
		assert_true(vs->next_file >= next);
		assert_int_equal(vs->last_sequence, seq);
		assert_int_equal(vs->log_number, lsn);
		assert_int_equal(vs->aux_log_number, aux);
		sg_buf_free(&want);
		sg_buf_free(&got);

		/* exactly one MANIFEST besides old ones listed as orphans */
		char	  **names;
		size_t		n;

		assert_int_equal(sg_list_orphans(env, "/t", vs->current, vs->manifest_number,
										 UINT64_MAX, &names, &n, &err), SG_OK);
		for (size_t i = 0; i < n; i++)
		{
			char		p[256];

			assert_non_null(strstr(names[i], "MANIFEST-"));
			snprintf(p, sizeof(p), "/t/%s", names[i]);
			assert_int_equal(env->ops->unlink(env, p, &err), SG_OK);
		}
		sg_env_free_names(names, n);
		sg_vset_close(vs);
	}
	assert_true(released > 0);
	sg_env_mem_destroy(env);
}

static void
test_current_switch_and_torn_tail(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_vset    *vs;
	sg_err		err;
	char	   *data;
	size_t		n;
	char		path[128];
	uint64_t	first;

	(void) state;
	vs = open_vset(env, 0, NULL);
	first = vs->manifest_number;
	assert_int_equal(sg_env_read_file(env, "/t/CURRENT", &data, &n, &err), SG_OK);
	snprintf(path, sizeof(path), "MANIFEST-%06llu\n", (unsigned long long) first);
	assert_int_equal(n, strlen(path));
	assert_memory_equal(data, path, n);
	free(data);

	/* one edit, then a torn record appended by hand */
	sg_version_edit e;

	sg_version_edit_init(&e);
	edit_add(&e, 0, sg_vset_new_file_number(vs), 1, 5, 1, 3, 10);
	sg_version_edit_set_last_sequence(&e, 3);
	assert_int_equal(sg_vset_log_and_apply(vs, &e, &err), SG_OK);
	sg_version_edit_free(&e);
	sg_vset_close(vs);

	sg_file    *f;
	sg_buf		junk = SG_BUF_INIT;
	sg_buf		rec = SG_BUF_INIT;
	uint64_t	size;

	snprintf(path, sizeof(path), "/t/MANIFEST-%06llu", (unsigned long long) first);
	assert_int_equal(sg_file_open(env, path, SG_OPEN_APPEND, &f, &err), SG_OK);
	assert_int_equal(sg_file_size(f, &size, &err), SG_OK);
	sg_version_edit_init(&e);
	edit_add(&e, 0, 1000, 1, 5, 1, 3, 10);
	sg_version_edit_encode(&e, &rec);
	sg_version_edit_free(&e);
	sg_log_encode_record(&junk, size, sg_buf_slice(&rec));
	assert_int_equal(sg_file_append(f, junk.data, junk.len - 3, &err), SG_OK);
	assert_int_equal(sg_file_sync(f, &err), SG_OK);
	sg_file_close(f, NULL);

	/* CURRENT still names the first MANIFEST? No: open switched it. Point it back. */
	char		cur[64];

	snprintf(cur, sizeof(cur), "MANIFEST-%06llu\n", (unsigned long long) first);
	assert_int_equal(sg_env_write_file_atomic(env, "/t", "CURRENT", cur, strlen(cur), &err), SG_OK);

	vs = open_vset(env, 0, NULL);
	assert_true(vs->replay_torn_tail);
	assert_int_equal(sg_version_total_files(vs->current), 1);
	assert_true(vs->manifest_number > first);
	sg_vset_close(vs);

	/* a bad byte in the middle of the first MANIFEST's snapshot is corruption */
	snprintf(cur, sizeof(cur), "MANIFEST-%06llu\n", (unsigned long long) first);
	assert_int_equal(sg_env_write_file_atomic(env, "/t", "CURRENT", cur, strlen(cur), &err), SG_OK);
	assert_int_equal(sg_env_read_file(env, path, &data, &n, &err), SG_OK);
	data[10] ^= 0x40;
	assert_int_equal(sg_env_write_file_atomic(env, "/t", path + 3, data, n, &err), SG_OK);
	free(data);
	sg_vset_options o;

	memset(&o, 0, sizeof(o));
	assert_int_not_equal(sg_vset_open(env, "/t", &o, &vs, &err), SG_OK);
	assert_int_equal(err.code, SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "MANIFEST-"));

	/* CURRENT naming garbage */
	assert_int_equal(sg_env_write_file_atomic(env, "/t", "CURRENT", "junk", 4, &err), SG_OK);
	assert_int_equal(sg_vset_open(env, "/t", &o, &vs, &err), SG_CORRUPTION);
	/* no tree */
	assert_int_equal(sg_vset_open(env, "/none", &o, &vs, &err), SG_NOT_FOUND);
	sg_buf_free(&junk);
	sg_buf_free(&rec);
	sg_env_mem_destroy(env);
}

/* The directory's names joined in one sorted-by-env string, to compare. */
static void
dir_listing(sg_env *env, const char *dir, sg_buf *out)
{
	char	  **names;
	size_t		n;
	sg_err		err;

	sg_buf_reset(out);
	assert_int_equal(env->ops->list_dir(env, dir, &names, &n, &err), SG_OK);
	/* list_dir gives no order: a selection sort keeps the test short */
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(names[j], names[i]) < 0)
			{
				char	   *t = names[i];

				names[i] = names[j];
				names[j] = t;
			}
	for (size_t i = 0; i < n; i++)
	{
		sg_buf_append(out, names[i], strlen(names[i]));
		sg_buf_append(out, "/", 1);
	}
	sg_env_free_names(names, n);
}

/*
 * A MANIFEST whose second record has a damaged length field (running past
 * the end of the file, or zeroed) is corrupt, not torn: the version set
 * refuses to open, names the file and the record's offset, and leaves every
 * file (the MANIFEST, CURRENT) as it was. Before the fix the open dropped
 * the later edits as a "torn last record" and switched to a new MANIFEST
 * without them, so the files they added became orphans.
 */
static void
test_manifest_damaged_length(void **state)
{
	(void) state;
	for (int c = 0; c < 2; c++)
	{
		sg_env	   *env = sg_env_mem_new();
		sg_vset    *vs = open_vset(env, 0, NULL);
		uint64_t	number = vs->manifest_number;
		char		path[128];
		char	   *data;
		size_t		n;
		sg_err		err;
		sg_vset_options o;
		sg_buf		before = SG_BUF_INIT,
					after = SG_BUF_INIT;

		/* a snapshot and four edits, each adding one L0 file */
		for (unsigned i = 0; i < 4; i++)
		{
			sg_version_edit e;

			sg_version_edit_init(&e);
			edit_add(&e, 0, sg_vset_new_file_number(vs), 10 * i, 10 * i + 5, i + 1, i + 1, 100);
			sg_version_edit_set_last_sequence(&e, i + 1);
			assert_int_equal(sg_vset_log_and_apply(vs, &e, &err), SG_OK);
			sg_version_edit_free(&e);
		}
		sg_vset_close(vs);

		/* record 1 starts after record 0, a FULL fragment in block 0 */
		snprintf(path, sizeof(path), "/t/MANIFEST-%06llu", (unsigned long long) number);
		assert_int_equal(sg_env_read_file(env, path, &data, &n, &err), SG_OK);
		assert_int_equal(data[6], 1);

		size_t		rec1 = 7 + ((size_t) (uint8_t) data[4] | (size_t) (uint8_t) data[5] << 8);
		char		want[64];

		assert_true(rec1 + 7 < n);
		assert_int_equal(data[rec1 + 6], 1);
		/* case 0: fits its block but runs past EOF; case 1: zeroed */
		unsigned	bad = c == 0 ? (unsigned) (32768 - rec1 - 7) : 0;

		data[rec1 + 4] = (char) (bad & 0xff);
		data[rec1 + 5] = (char) (bad >> 8);
		assert_int_equal(sg_env_write_file_atomic(env, "/t", path + 3, data, n, &err), SG_OK);
		free(data);

		dir_listing(env, "/t", &before);
		memset(&o, 0, sizeof(o));
		assert_int_equal(sg_vset_open(env, "/t", &o, &vs, &err), SG_CORRUPTION);
		assert_int_equal(err.code, SG_CORRUPTION);
		assert_non_null(strstr(err.msg, path + 3));
		snprintf(want, sizeof(want), "offset %zu (", rec1);
		assert_non_null(strstr(err.msg, want));
		dir_listing(env, "/t", &after);
		assert_int_equal(before.len, after.len);
		assert_memory_equal(before.data, after.data, before.len);

		/* the plain replay says the same */
		sg_manifest_state st;

		assert_int_equal(sg_manifest_replay(env, path, &st, &err), SG_CORRUPTION);
		assert_non_null(strstr(err.msg, want));
		sg_buf_free(&before);
		sg_buf_free(&after);
		sg_env_mem_destroy(env);
	}
}

static void touch(sg_env *env, const char *path);

/*
 * A tree whose CURRENT is missing or garbled, or whose MANIFEST is empty,
 * zeroed or gone, is damaged, not absent: opening it (even with
 * create_if_missing) is SG_CORRUPTION naming the directory or file, and
 * not one file of it is created, changed or deleted. Before, a missing
 * CURRENT made the open start an empty tree, and every SSTable became an
 * orphan to delete.
 */
static void
test_unreadable_current_or_manifest(void **state)
{
	(void) state;
	for (int c = 0; c < 6; c++)
	{
		sg_env	   *env = sg_env_mem_new();
		sg_vset    *vs = open_vset(env, 0, NULL);
		char		mpath[128];
		char		sst[128];
		sg_err		err;
		sg_vset_options o;
		sg_version_edit e;
		uint64_t	number;
		sg_buf		before = SG_BUF_INIT,
					after = SG_BUF_INIT;

		sg_version_edit_init(&e);
		number = sg_vset_new_file_number(vs);
		edit_add(&e, 0, number, 1, 5, 1, 1, 100);
		assert_int_equal(sg_vset_log_and_apply(vs, &e, &err), SG_OK);
		sg_version_edit_free(&e);
		sg_sst_path(sst, sizeof(sst), "/t", number);
		touch(env, sst);
		snprintf(mpath, sizeof(mpath), "/t/MANIFEST-%06llu",
				 (unsigned long long) vs->manifest_number);
		sg_vset_close(vs);

		switch (c)
		{
			case 0:				/* CURRENT deleted */
				assert_int_equal(env->ops->unlink(env, "/t/CURRENT", &err), SG_OK);
				break;
			case 1:				/* CURRENT garbled */
				assert_int_equal(sg_env_write_file_atomic(env, "/t", "CURRENT", "MANIFEST-x\n",
														  11, &err), SG_OK);
				break;
			case 2:				/* CURRENT empty */
				assert_int_equal(sg_env_write_file_atomic(env, "/t", "CURRENT", "", 0, &err),
								 SG_OK);
				break;
			case 3:				/* MANIFEST truncated to nothing */
				assert_int_equal(sg_env_write_file_atomic(env, "/t", mpath + 3, "", 0, &err),
								 SG_OK);
				break;
			case 4:				/* MANIFEST zeroed */
				{
					char		zeros[4096] = {0};

					assert_int_equal(sg_env_write_file_atomic(env, "/t", mpath + 3, zeros,
															  sizeof(zeros), &err), SG_OK);
					break;
				}
			case 5:				/* MANIFEST deleted */
				assert_int_equal(env->ops->unlink(env, mpath, &err), SG_OK);
				break;
		}
		dir_listing(env, "/t", &before);
		memset(&o, 0, sizeof(o));
		o.create_if_missing = true;
		assert_int_equal(sg_vset_open(env, "/t", &o, &vs, &err), SG_CORRUPTION);
		assert_null(vs);
		assert_non_null(strstr(err.msg, "/t"));
		o.create_if_missing = false;
		assert_int_equal(sg_vset_open(env, "/t", &o, &vs, &err), SG_CORRUPTION);
		if (c < 3)
			assert_int_equal(sg_current_read(env, "/t", &number, &err), SG_CORRUPTION);
		dir_listing(env, "/t", &after);
		assert_int_equal(before.len, after.len);
		assert_memory_equal(before.data, after.data, before.len);
		assert_int_equal(env->ops->exists(env, sst, &err), SG_OK);
		sg_buf_free(&before);
		sg_buf_free(&after);
		sg_env_mem_destroy(env);
	}

	/* no tree at all: not found, and create_if_missing makes one */
	sg_env	   *env = sg_env_mem_new();
	uint64_t	number;
	sg_err		err;

	assert_int_equal(sg_current_read(env, "/t", &number, &err), SG_NOT_FOUND);
	sg_vset    *vs = open_vset(env, 0, NULL);

	assert_true(vs->created);
	sg_vset_close(vs);
	assert_int_equal(sg_current_read(env, "/t", &number, &err), SG_OK);
	sg_env_mem_destroy(env);
}

static void
touch(sg_env *env, const char *path)
{
	sg_file    *f;
	sg_err		err;

	assert_int_equal(sg_file_open(env, path, SG_OPEN_CREATE, &f, &err), SG_OK);
	sg_file_close(f, NULL);
}

static void
test_orphans(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_vset    *vs;
	sg_version_edit e;
	sg_err		err;
	char	  **names;
	size_t		n;
	uint64_t	live;

	(void) state;
	vs = open_vset(env, 0, NULL);
	sg_version_edit_init(&e);
	live = sg_vset_new_file_number(vs);
	edit_add(&e, 1, live, 1, 5, 1, 1, 10);
	assert_int_equal(sg_vset_log_and_apply(vs, &e, &err), SG_OK);
	sg_version_edit_free(&e);
	char		p[128];

	sg_sst_path(p, sizeof(p), "/t", live);
	touch(env, p);
	touch(env, "/t/000100.sst");	/* not in the version */
	touch(env, "/t/000101.sst.tmp");	/* half written */
	touch(env, "/t/MANIFEST-000099");	/* old */
	touch(env, "/t/CURRENT.tmp");
	touch(env, "/t/README");	/* foreign: left alone */
	assert_int_equal(sg_list_orphans(env, "/t", vs->current, vs->manifest_number, UINT64_MAX,
									 &names, &n, &err), SG_OK);
	assert_int_equal(n, 4);
	for (size_t i = 0; i < n; i++)
		assert_true(strcmp(names[i], "000100.sst") == 0 ||
					strcmp(names[i], "000101.sst.tmp") == 0 ||
					strcmp(names[i], "MANIFEST-000099") == 0 ||
					strcmp(names[i], "CURRENT.tmp") == 0);
	sg_env_free_names(names, n);
	/* a pending floor protects files being written */
	assert_int_equal(sg_list_orphans(env, "/t", vs->current, vs->manifest_number, 100,
									 &names, &n, &err), SG_OK);
	assert_int_equal(n, 2);
	sg_env_free_names(names, n);
	sg_vset_close(vs);
	sg_env_mem_destroy(env);
}

static void
test_picking(void **state)
{
	sg_version *v0 = sg_version_new_empty(),
			   *v;
	sg_version_edit e;
	sg_picker_options o;
	sg_compaction_pick p;
	sg_err		err;

	(void) state;
	sg_picker_options_init(&o);
	o.l1_target_bytes = 1000;
	/* 3 L0 files: below trigger, nothing to do */
	sg_version_edit_init(&e);
	edit_add(&e, 0, 1, 1, 10, 1, 1, 10);
	edit_add(&e, 0, 2, 5, 15, 2, 2, 10);
	edit_add(&e, 0, 3, 50, 60, 3, 3, 10);
	edit_add(&e, 1, 4, 12, 20, 0, 0, 100);
	edit_add(&e, 1, 5, 70, 80, 0, 0, 100);
	edit_add(&e, 2, 6, 1, 100, 0, 0, 100);
	assert_int_equal(sg_version_apply(v0, &e, "t", &v, &err), SG_OK);
	sg_version_edit_free(&e);
	assert_int_equal(sg_pick_compaction(v, &o, &p, &err), SG_NOT_FOUND);
	sg_version_unref(v0, NULL, NULL);
	v0 = v;

	/* the fourth L0 file triggers: all L0 + overlapping L1 (file 4, not 5) */
	sg_version_edit_init(&e);
	edit_add(&e, 0, 7, 30, 40, 4, 4, 10);
	assert_int_equal(sg_version_apply(v0, &e, "t", &v, &err), SG_OK);
	sg_version_edit_free(&e);
	assert_int_equal(sg_pick_compaction(v, &o, &p, &err), SG_OK);
	assert_int_equal(p.level, 0);
	assert_int_equal(p.ninputs[0], 4);
	assert_int_equal(p.ninputs[1], 1);
	assert_int_equal(p.inputs[1][0]->number, 4);
	assert_false(p.trivial_move);
	assert_false(p.bottommost);	/* file 6 in L2 overlaps */
	sg_compaction_pick_free(&p);
	sg_version_unref(v0, NULL, NULL);
	v0 = v;

	/* L1 over target: oldest file picked; L2 overlap; not bottommost */
	sg_version_edit_init(&e);
	for (int i = 0; i < 4; i++)
		assert_int_equal(sg_version_edit_delete_file(&e, 0, (uint64_t) (i == 3 ? 7 : i + 1), &err), SG_OK);
	edit_add(&e, 1, 8, 200, 210, 9, 9, 2000);
	assert_int_equal(sg_version_apply(v0, &e, "t", &v, &err), SG_OK);
	sg_version_edit_free(&e);
	assert_int_equal(sg_pick_compaction(v, &o, &p, &err), SG_OK);
	assert_int_equal(p.level, 1);
	assert_int_equal(p.ninputs[0], 1);
	assert_true(p.inputs[0][0]->number == 4 || p.inputs[0][0]->number == 5);
	assert_int_equal(p.ninputs[1], 1);
	assert_int_equal(p.inputs[1][0]->number, 6);
	assert_true(p.bottommost);
	sg_compaction_pick_free(&p);
	sg_version_unref(v0, NULL, NULL);
	v0 = v;

	/* only file 8 is big and nothing overlaps it below: trivial move */
	sg_version_edit_init(&e);
	assert_int_equal(sg_version_edit_delete_file(&e, 1, 4, &err), SG_OK);
	assert_int_equal(sg_version_edit_delete_file(&e, 1, 5, &err), SG_OK);
	edit_add(&e, 1, 9, 300, 310, 20, 20, 10);
	assert_int_equal(sg_version_apply(v0, &e, "t", &v, &err), SG_OK);
	sg_version_edit_free(&e);
	assert_int_equal(sg_pick_compaction(v, &o, &p, &err), SG_OK);
	assert_int_equal(p.level, 1);
	assert_int_equal(p.inputs[0][0]->number, 8);
	assert_true(p.trivial_move);
	sg_compaction_pick_free(&p);

	/* manual range: never a move */
	sg_slice	b = sg_slice_from_cstr("k000205");
	sg_slice	end = sg_slice_from_cstr("k000305");

	assert_int_equal(sg_pick_range(v, 1, &b, &end, &p, &err), SG_OK);
	assert_int_equal(p.ninputs[0], 2);
	assert_false(p.trivial_move);
	sg_compaction_pick_free(&p);
	assert_int_equal(sg_pick_range(v, 0, NULL, NULL, &p, &err), SG_NOT_FOUND);
	sg_compaction_pick_free(&p);
	assert_true(sg_picker_level_target(&o, 3) == 100000);
	sg_version_unref(v, NULL, NULL);
	sg_version_unref(v0, NULL, NULL);
}

/* The pending-bytes estimate: L0 once at its trigger, each level's excess. */
static void
test_pending_bytes(void **state)
{
	sg_picker_options o;
	uint64_t	bytes[SG_NUM_LEVELS] = {0};
	int			files[SG_NUM_LEVELS] = {0};

	(void) state;
	sg_picker_options_init(&o);
	o.l1_target_bytes = 1000;
	o.level_multiplier = 10;
	assert_true(sg_picker_pending_bytes(&o, bytes, files) == 0);
	/* level 0 below its trigger owes nothing, at it owes all of itself */
	bytes[0] = 300;
	files[0] = o.l0_trigger - 1;
	assert_true(sg_picker_pending_bytes(&o, bytes, files) == 0);
	files[0] = o.l0_trigger;
	assert_true(sg_picker_pending_bytes(&o, bytes, files) == 300);
	/* L1 1500 of 1000, L2 9000 of 10000: 500 more */
	bytes[1] = 1500;
	files[1] = 2;
	bytes[2] = 9000;
	files[2] = 3;
	assert_true(sg_picker_pending_bytes(&o, bytes, files) == 800);
	/* the last level has no target, however big */
	bytes[SG_NUM_LEVELS - 1] = UINT64_C(1) << 40;
	files[SG_NUM_LEVELS - 1] = 100;
	assert_true(sg_picker_pending_bytes(&o, bytes, files) == 800);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edit_roundtrip),
		cmocka_unit_test(test_edit_malformed),
		cmocka_unit_test(test_apply_invariants),
		cmocka_unit_test(test_manifest_replay_random),
		cmocka_unit_test(test_current_switch_and_torn_tail),
		cmocka_unit_test(test_manifest_damaged_length),
		cmocka_unit_test(test_unreadable_current_or_manifest),
		cmocka_unit_test(test_orphans),
		cmocka_unit_test(test_pending_bytes),
		cmocka_unit_test(test_picking),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
