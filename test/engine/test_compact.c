/*
 * test_compact.c — unit tests for compact/: flush of a memtable (and of an
 * empty one), the default version policy with and without snapshots and at
 * the bottom level, a caller filter that drops and rewrites, outputs cut
 * at the target size only between user keys, trivial moves, and cleanup of
 * every output when a write fails.
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
#include "engine/compact/compact.h"
#include "engine/memtable/memtable.h"
#include "engine/merge/merge.h"
#include "engine/sstable/table.h"
#include "engine/version/manifest.h"
#include "engine/version/version.h"
#include "testutil.h"

#define DIR "/c"

typedef struct mem
{
	char	   *region;
	sg_memtable mt;
} mem;

static void
mem_new(mem *m)
{
	sg_arena	a;
	sg_err		err;
	size_t		size = 8 << 20;

	m->region = aligned_alloc(64, size);
	assert_non_null(m->region);
	assert_int_equal(sg_arena_create(&a, m->region, 0, size, NULL, NULL, &err), SG_OK);
	assert_int_equal(sg_memtable_create(&m->mt, &a, 1, &err), SG_OK);
}

static void
mem_free(mem *m)
{
	free(m->region);
}

static void
mem_add(mem *m, const char *key, uint64_t seq, sg_value_type type, const char *value)
{
	sg_err		err;

	assert_int_equal(sg_memtable_add(&m->mt, seq, type, sg_slice_from_cstr(key),
									 sg_slice_from_cstr(value ? value : ""), &err), SG_OK);
}

static uint64_t next_number = 100;

static uint64_t
new_file(void *arg)
{
	(void) arg;
	return next_number++;
}

/* Readers opened by open_table, closed at the end of each test. */
static sg_table_reader *readers[256];
static int	nreaders;

static sg_iter *
open_table(void *arg, const sg_file_meta *meta)
{
	sg_env	   *env = arg;
	char		path[256];
	sg_table_reader *r;
	sg_err		err;

	sg_sst_path(path, sizeof(path), DIR, meta->number);
	if (sg_table_reader_open(env, path, &r, &err) != SG_OK)
		return sg_iter_error(err.code, err.msg);
	readers[nreaders++] = r;
	return sg_table_reader_iter(r);
}

static void
close_readers(void)
{
	while (nreaders > 0)
		sg_table_reader_close(readers[--nreaders]);
}

/*
 * The user statistic of each output: how many entries the observe hook
 * showed since the previous output was finished, which must be exactly
 * the file's entry count (the hook sees what goes into that file).
 */
static uint64_t observed = 0;

static void
observe_fn(void *arg, sg_slice ikey, sg_slice value)
{
	(void) arg;
	(void) ikey;
	(void) value;
	observed++;
}

static sg_code
stats_fn(void *arg, uint64_t number, sg_buf *out, sg_err *err)
{
	(void) arg;
	(void) err;
	(void) number;
	sg_put_fixed64(out, observed);
	observed = 0;
	return SG_OK;
}

/* Every file of v carries its own entry count as user statistic. */
static void
assert_stats_match(const sg_version *v)
{
	for (int l = 0; l < SG_NUM_LEVELS; l++)
		for (size_t i = 0; i < v->nfiles[l]; i++)
		{
			const sg_file_meta *f = v->files[l][i];

			assert_int_equal(f->user_stats.len, 8);
			assert_int_equal(sg_decode_fixed64(f->user_stats.data), f->num_entries);
		}
}

/* Flush m as file number into a new L0 file of *v (replacing *v). */
static void
flush_into(sg_env *env, mem *m, sg_version **v)
{
	sg_flush_job job;
	sg_version_edit e;
	sg_job_stats st;
	sg_version *nv;
	sg_err		err;
	sg_iter    *it = sg_memtable_iter(&m->mt);

	memset(&job, 0, sizeof(job));
	job.env = env;
	job.dir = DIR;
	job.source = it;
	job.file_number = next_number++;
	job.user_stats = stats_fn;
	job.observe = observe_fn;
	sg_version_edit_init(&e);
	assert_int_equal(sg_flush_run(&job, &e, &st, &err), SG_OK);
	sg_iter_destroy(it);
	assert_int_equal(sg_version_apply(*v, &e, "t", &nv, &err), SG_OK);
	sg_version_edit_free(&e);
	sg_version_unref(*v, NULL, NULL);
	*v = nv;
}

/*
 * Flush a new memtable holding spec's entries into a new L0 file of *v:
 * space-separated "key@seq=value" (a put) or "key@seq" (a tombstone).
 */
static void
flush_spec(sg_env *env, sg_version **v, const char *spec)
{
	mem			m;
	char		buf[256];
	char	   *save = NULL;

	assert_true(strlen(spec) < sizeof(buf));
	strcpy(buf, spec);
	mem_new(&m);
	for (char *e = strtok_r(buf, " ", &save); e != NULL; e = strtok_r(NULL, " ", &save))
	{
		char	   *at = strchr(e, '@');
		char	   *eq = strchr(e, '=');

		assert_non_null(at);
		*at = '\0';
		if (eq != NULL)
			*eq = '\0';
		mem_add(&m, e, strtoull(at + 1, NULL, 10), eq ? SG_TYPE_PUT : SG_TYPE_DELETE,
				eq ? eq + 1 : NULL);
	}
	flush_into(env, &m, v);
	mem_free(&m);
}

/* All entries of all files of v as "key@seq:type=value;" text. */
static void
dump_version(sg_env *env, const sg_version *v, int level, sg_buf *out)
{
	for (size_t i = 0; i < v->nfiles[level]; i++)
	{
		sg_iter    *it = open_table(env, v->files[level][i]);

		for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it))
		{
			sg_parsed_ikey pk;

			memset(&pk, 0, sizeof(pk));
			char		tmp[64];

			assert_true(sg_ikey_parse(sg_iter_key(it), &pk));
			sg_buf_append_slice(out, pk.user_key);
			snprintf(tmp, sizeof(tmp), "@%llu:%c=", (unsigned long long) pk.seq,
					 pk.type == SG_TYPE_PUT ? 'P' : 'D');
			sg_buf_append(out, tmp, strlen(tmp));
			sg_buf_append_slice(out, sg_iter_value(it));
			sg_buf_append_byte(out, ';');
		}
		assert_int_equal(sg_iter_status(it, NULL), SG_OK);
		sg_iter_destroy(it);
	}
	sg_buf_append_byte(out, '\0');
}

/* The entries of v's files at level, as dump_version writes them, are expected. */
static void
assert_level(sg_env *env, const sg_version *v, int level, const char *expected)
{
	sg_buf		out = SG_BUF_INIT;

	dump_version(env, v, level, &out);
	assert_string_equal(out.data, expected);
	sg_buf_free(&out);
}

static void
test_flush(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	mem			m;
	sg_version *v = sg_version_new_empty();
	sg_err		err;

	(void) state;
	env->ops->mkdir(env, DIR, &err);
	mem_new(&m);

	/* empty: no file, no edit */
	sg_flush_job job;
	sg_version_edit e;
	sg_iter    *it = sg_memtable_iter(&m.mt);

	memset(&job, 0, sizeof(job));
	job.env = env;
	job.dir = DIR;
	job.source = it;
	job.file_number = 7;
	sg_version_edit_init(&e);
	assert_int_equal(sg_flush_run(&job, &e, NULL, &err), SG_OK);
	assert_int_equal(e.nadded, 0);
	assert_int_equal(env->ops->exists(env, DIR "/000007.sst", &err), SG_NOT_FOUND);
	sg_iter_destroy(it);
	sg_version_edit_free(&e);

	mem_add(&m, "b", 5, SG_TYPE_PUT, "v5");
	mem_add(&m, "a", 9, SG_TYPE_DELETE, NULL);
	mem_add(&m, "b", 3, SG_TYPE_PUT, "v3");
	flush_into(env, &m, &v);
	assert_int_equal(v->nfiles[0], 1);
	sg_file_meta *f = v->files[0][0];

	assert_int_equal(f->num_entries, 3);
	assert_int_equal(f->smallest_seq, 3);
	assert_int_equal(f->largest_seq, 9);
	assert_int_equal(f->user_stats.len, 8);
	assert_stats_match(v);
	assert_true(f->file_size > 0);
	assert_level(env, v, 0, "a@9:D=;b@5:P=v5;b@3:P=v3;");
	close_readers();
	mem_free(&m);
	sg_version_unref(v, NULL, NULL);
	sg_env_mem_destroy(env);
}

/*
 * A flush told what it must write (sg_flush_expect) refuses to install
 * anything else: a wrong count or sequence range (a stale or short source)
 * is SG_CORRUPTION, the file it wrote is removed and the edit left empty.
 */
static void
test_flush_expect(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	mem			m;
	sg_err		err;
	struct
	{
		sg_flush_expect x;
		sg_code		rc;
	}			cases[] = {
		{{3, 3, 9}, SG_OK},
		{{4, 3, 9}, SG_CORRUPTION},	/* an entry missing from the source */
		{{2, 3, 9}, SG_CORRUPTION},
		{{3, 2, 9}, SG_CORRUPTION},	/* another memtable's range */
		{{3, 3, 10}, SG_CORRUPTION},
		{{0, 0, 0}, SG_CORRUPTION},	/* an empty memtable was expected */
	};

	(void) state;
	env->ops->mkdir(env, DIR, &err);
	mem_new(&m);
	mem_add(&m, "b", 5, SG_TYPE_PUT, "v5");
	mem_add(&m, "a", 9, SG_TYPE_DELETE, NULL);
	mem_add(&m, "b", 3, SG_TYPE_PUT, "v3");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		sg_flush_job job;
		sg_version_edit e;
		sg_iter    *it = sg_memtable_iter(&m.mt);
		uint64_t	number = 20 + i;
		char		path[64];

		memset(&job, 0, sizeof(job));
		job.env = env;
		job.dir = DIR;
		job.source = it;
		job.file_number = number;
		job.expect = &cases[i].x;
		sg_version_edit_init(&e);
		assert_int_equal(sg_flush_run(&job, &e, NULL, &err), cases[i].rc);
		sg_sst_path(path, sizeof(path), DIR, number);
		if (cases[i].rc == SG_OK)
		{
			assert_int_equal(e.nadded, 1);
			assert_int_equal(env->ops->exists(env, path, &err), SG_OK);
		}
		else
		{
			assert_non_null(strstr(err.msg, "nothing was installed"));
			assert_int_equal(e.nadded, 0);
			assert_int_equal(env->ops->exists(env, path, &err), SG_NOT_FOUND);
		}
		sg_iter_destroy(it);
		sg_version_edit_free(&e);
	}

	/* an empty source where versions were expected writes nothing either */
	mem			empty;
	sg_flush_expect x = {1, 4, 4};
	sg_flush_job job;
	sg_version_edit e;
	sg_iter    *it;

	mem_new(&empty);
	it = sg_memtable_iter(&empty.mt);
	memset(&job, 0, sizeof(job));
	job.env = env;
	job.dir = DIR;
	job.source = it;
	job.file_number = 40;
	job.expect = &x;
	sg_version_edit_init(&e);
	assert_int_equal(sg_flush_run(&job, &e, NULL, &err), SG_CORRUPTION);
	assert_int_equal(e.nadded, 0);
	sg_iter_destroy(it);
	sg_version_edit_free(&e);
	mem_free(&empty);
	mem_free(&m);
	sg_env_mem_destroy(env);
}

/*
 * A flush that runs out of disk space fails with SG_IO_ERROR and says so
 * (err.disk_full, which the glue reports as ERRCODE_DISK_FULL), however
 * deep in the table builder the write failed, and leaves no file behind.
 */
static void
test_flush_disk_full(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	mem			m;
	sg_err		err;
	sg_flush_job job;
	sg_version_edit e;
	sg_iter    *it;
	char		key[32];
	char		value[512];

	(void) state;
	env->ops->mkdir(env, DIR, &err);
	mem_new(&m);
	uint64_t	x = 88172645463325252ULL;

	for (int i = 0; i < 2000; i++)
	{
		/* printable noise, so that compression cannot make it fit */
		for (size_t j = 0; j + 1 < sizeof(value); j++)
		{
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			value[j] = (char) ('!' + x % 90);
		}
		value[sizeof(value) - 1] = '\0';
		snprintf(key, sizeof(key), "key%06d", i);
		mem_add(&m, key, (uint64_t) i + 1, SG_TYPE_PUT, value);
	}
	sg_env_mem_set_space_budget(env, 64 * 1024);
	it = sg_memtable_iter(&m.mt);
	memset(&job, 0, sizeof(job));
	job.env = env;
	job.dir = DIR;
	job.source = it;
	job.file_number = 50;
	sg_version_edit_init(&e);
	assert_int_equal(sg_flush_run(&job, &e, NULL, &err), SG_IO_ERROR);
	assert_true(err.disk_full);
	assert_false(err.sync_failed);
	assert_non_null(strstr(err.msg, "no space left on device"));
	assert_int_equal(e.nadded, 0);
	assert_int_equal(env->ops->exists(env, DIR "/000050.sst", &err), SG_NOT_FOUND);
	assert_int_equal(env->ops->exists(env, DIR "/000050.sst.tmp", &err), SG_NOT_FOUND);
	sg_iter_destroy(it);
	sg_version_edit_free(&e);
	mem_free(&m);
	sg_env_mem_destroy(env);
}

static void
test_default_decisions(void **state)
{
	sg_filter_version v[4];
	sg_filter_context ctx;
	uint64_t	snaps[1] = {6};

	(void) state;
	memset(v, 0, sizeof(v));
	v[0].seq = 10;
	v[0].type = SG_TYPE_PUT;
	v[1].seq = 8;
	v[1].type = SG_TYPE_PUT;
	v[2].seq = 5;
	v[2].type = SG_TYPE_DELETE;
	v[3].seq = 3;
	v[3].type = SG_TYPE_PUT;
	memset(&ctx, 0, sizeof(ctx));

	/* no snapshot: only the newest survives */
	sg_compact_default_decisions(&ctx, v, 4);
	assert_int_equal(v[0].decision, SG_FILTER_KEEP);
	assert_int_equal(v[1].decision, SG_FILTER_DROP);
	assert_int_equal(v[2].decision, SG_FILTER_DROP);
	assert_int_equal(v[3].decision, SG_FILTER_DROP);

	/* snapshot 6 sees the tombstone: it stays (not at the bottom) */
	ctx.snapshots = snaps;
	ctx.nsnapshots = 1;
	sg_compact_default_decisions(&ctx, v, 4);
	assert_int_equal(v[0].decision, SG_FILTER_KEEP);
	assert_int_equal(v[1].decision, SG_FILTER_DROP);
	assert_int_equal(v[2].decision, SG_FILTER_KEEP);
	assert_int_equal(v[3].decision, SG_FILTER_DROP);

	/* at the bottom the tombstone goes too (nothing older survives) */
	ctx.bottommost = true;
	sg_compact_default_decisions(&ctx, v, 4);
	assert_int_equal(v[2].decision, SG_FILTER_DROP);

	/* snapshot 4 needs the value at 3 under the tombstone: both stay */
	snaps[0] = 4;
	sg_compact_default_decisions(&ctx, v, 4);
	assert_int_equal(v[0].decision, SG_FILTER_KEEP);
	assert_int_equal(v[2].decision, SG_FILTER_DROP);	/* stripe shared with 10, 8 */
	assert_int_equal(v[3].decision, SG_FILTER_KEEP);

	/* a lone tombstone: kept above the bottom, dropped at it */
	v[0].seq = 2;
	v[0].type = SG_TYPE_DELETE;
	ctx.nsnapshots = 0;
	ctx.bottommost = false;
	sg_compact_default_decisions(&ctx, v, 1);
	assert_int_equal(v[0].decision, SG_FILTER_KEEP);
	ctx.bottommost = true;
	sg_compact_default_decisions(&ctx, v, 1);
	assert_int_equal(v[0].decision, SG_FILTER_DROP);
}

/* Compact every file of v at level into level+1; replace *v. */
static sg_code
compact_level(sg_env *env, sg_version **v, int level, const uint64_t *snaps, size_t nsnaps,
			  sg_compact_filter_fn filter, uint64_t target, sg_job_stats *st, sg_err *err)
{
	sg_compaction_pick p;
	sg_compact_job job;
	sg_version_edit e;
	sg_version *nv;
	sg_code		rc;

	assert_int_equal(sg_pick_range(*v, level, NULL, NULL, &p, err), SG_OK);
	memset(&job, 0, sizeof(job));
	job.env = env;
	job.dir = DIR;
	job.pick = &p;
	job.version = *v;
	job.target_file_size = target;
	job.snapshots = snaps;
	job.nsnapshots = nsnaps;
	job.filter = filter;
	job.open_table = open_table;
	job.open_arg = env;
	job.new_file = new_file;
	job.user_stats = stats_fn;
	job.observe = observe_fn;
	sg_version_edit_init(&e);
	rc = sg_compact_run(&job, &e, st, err);
	sg_compaction_pick_free(&p);
	close_readers();
	if (rc != SG_OK)
	{
		assert_int_equal(e.nadded + e.ndeleted, 0);
		return rc;
	}
	assert_int_equal(sg_version_apply(*v, &e, "t", &nv, err), SG_OK);
	sg_version_edit_free(&e);
	sg_version_unref(*v, NULL, NULL);
	*v = nv;
	return SG_OK;
}

static void
test_compaction_default(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_version *v = sg_version_new_empty();
	sg_job_stats st;
	sg_err		err;
	uint64_t	snaps[1] = {4};

	(void) state;
	env->ops->mkdir(env, DIR, &err);
	flush_spec(env, &v, "a@1=a1 b@2=b2 c@3=c3");
	flush_spec(env, &v, "a@5=a5 b@6 d@7");

	/* L0 -> L1 (the bottom) with snapshot 4: a1 and b2 stay for it */
	assert_int_equal(compact_level(env, &v, 0, snaps, 1, NULL, 1 << 20, &st, &err), SG_OK);
	assert_int_equal(v->nfiles[0], 0);
	assert_int_equal(v->nfiles[1], 1);
	/* d@7 is a bottom tombstone no snapshot needs: dropped. b@6 hides b2 from
	 * the latest readers but snapshot 4 still sees b2: both stay. */
	assert_level(env, v, 1, "a@5:P=a5;a@1:P=a1;b@6:D=;b@2:P=b2;c@3:P=c3;");
	assert_int_equal(st.dropped, 1);

	/* snapshot released: L1 -> L2 keeps only the newest, drops b entirely */
	assert_int_equal(compact_level(env, &v, 1, NULL, 0, NULL, 1 << 20, &st, &err), SG_OK);
	assert_level(env, v, 2, "a@5:P=a5;c@3:P=c3;");

	/* a tombstone above data in a deeper level is kept */
	flush_spec(env, &v, "c@9");
	assert_int_equal(compact_level(env, &v, 0, NULL, 0, NULL, 1 << 20, &st, &err), SG_OK);
	assert_level(env, v, 1, "c@9:D=;");
	close_readers();
	sg_version_unref(v, NULL, NULL);
	sg_env_mem_destroy(env);
}

/* Keep every version, but drop "x*" keys and rewrite values of "r*". */
static sg_code
test_filter(void *arg, const sg_filter_context *ctx, sg_slice user_key,
			sg_filter_version *versions, size_t n, sg_err *err)
{
	static char buf[64];

	(void) arg;
	(void) ctx;
	(void) err;
	for (size_t i = 0; i < n; i++)
	{
		versions[i].decision = SG_FILTER_KEEP;
		if (user_key.data[0] == 'x')
			versions[i].decision = SG_FILTER_DROP;
		else if (user_key.data[0] == 'r' && versions[i].type == SG_TYPE_PUT)
		{
			snprintf(buf, sizeof(buf), "frozen-%.*s", (int) versions[i].value.len,
					 versions[i].value.data);
			versions[i].decision = SG_FILTER_REWRITE;
			versions[i].new_value = sg_slice_from_cstr(buf);
		}
	}
	return SG_OK;
}

static void
test_compaction_filter(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	mem			m;
	sg_version *v = sg_version_new_empty();
	sg_job_stats st;
	sg_err		err;

	(void) state;
	env->ops->mkdir(env, DIR, &err);
	mem_new(&m);
	mem_add(&m, "k", 1, SG_TYPE_PUT, "k1");
	mem_add(&m, "k", 2, SG_TYPE_PUT, "k2");
	mem_add(&m, "r", 3, SG_TYPE_PUT, "r3");
	mem_add(&m, "x", 4, SG_TYPE_PUT, "x4");
	mem_add(&m, "x", 5, SG_TYPE_PUT, "x5");
	flush_into(env, &m, &v);
	assert_int_equal(compact_level(env, &v, 0, NULL, 0, test_filter, 1 << 20, &st, &err), SG_OK);
	assert_level(env, v, 1, "k@2:P=k2;k@1:P=k1;r@3:P=frozen-r3;");
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.rewritten, 1);
	assert_int_equal(v->files[1][0]->user_stats.len, 8);
	assert_stats_match(v);
	close_readers();
	mem_free(&m);
	sg_version_unref(v, NULL, NULL);
	sg_env_mem_destroy(env);
}

/* The default decisions, and every version asks for sequence 0. */
static sg_code
zero_seq_filter(void *arg, const sg_filter_context *ctx, sg_slice user_key,
				sg_filter_version *versions, size_t n, sg_err *err)
{
	(void) arg;
	(void) ctx;
	(void) user_key;
	(void) err;
	for (size_t i = 0; i < n; i++)
		versions[i].zero_seq = true;
	return SG_OK;
}

/*
 * zero_seq is honoured only for the oldest kept version of a key at the
 * bottom, below every live snapshot: what any reader sees is unchanged,
 * and no key ends up with two versions of sequence 0.
 */
static void
test_compaction_zero_seq(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_version *v = sg_version_new_empty();
	sg_job_stats st;
	sg_err		err;
	uint64_t	snaps[1] = {4};

	(void) state;
	env->ops->mkdir(env, DIR, &err);
	flush_spec(env, &v, "a@1=a1 b@2=b2 c@3=c3");
	flush_spec(env, &v, "a@5=a5 b@6 e@8=e8");

	/*
	 * L0 -> L1, the bottom, snapshot 4 live: a1 and b2 stay for it and are
	 * the oldest kept, so they get 0; a5 and b@6 keep theirs; c3 is alone;
	 * e8 is above the snapshot (which must not start seeing it): kept.
	 */
	assert_int_equal(compact_level(env, &v, 0, snaps, 1, zero_seq_filter, 1 << 20, &st, &err),
					 SG_OK);
	assert_level(env, v, 1, "a@5:P=a5;a@0:P=a1;b@6:D=;b@0:P=b2;c@0:P=c3;e@8:P=e8;");
	assert_int_equal(st.zeroed, 3);
	assert_int_equal(v->files[1][0]->smallest_seq, 0);

	/* snapshot gone, L1 -> L2: only the newest survive, now each with 0 */
	assert_int_equal(compact_level(env, &v, 1, NULL, 0, zero_seq_filter, 1 << 20, &st, &err),
					 SG_OK);
	assert_level(env, v, 2, "a@0:P=a5;c@0:P=c3;e@0:P=e8;");

	/* not the bottom (L2 holds "c"): L0 -> L1 keeps c@9's sequence */
	flush_spec(env, &v, "c@9=c9");
	assert_int_equal(compact_level(env, &v, 0, NULL, 0, zero_seq_filter, 1 << 20, &st, &err),
					 SG_OK);
	assert_level(env, v, 1, "c@9:P=c9;");
	assert_int_equal(st.zeroed, 0);

	/* down to the bottom: c9 replaces c@0 and takes 0 itself, alone */
	flush_spec(env, &v, "f@10=f10");
	assert_int_equal(compact_level(env, &v, 1, NULL, 0, zero_seq_filter, 1 << 20, &st, &err),
					 SG_OK);
	assert_level(env, v, 2, "a@0:P=a5;c@0:P=c9;e@0:P=e8;");
	close_readers();
	sg_version_unref(v, NULL, NULL);
	sg_env_mem_destroy(env);
}

static void
test_split_and_move_and_failure(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	mem			m;
	sg_version *v = sg_version_new_empty();
	sg_job_stats st;
	sg_err		err;
	char		key[32],
				val[200];

	(void) state;
	env->ops->mkdir(env, DIR, &err);
	mem_new(&m);
	sg_test_rng rng = {42};

	for (size_t i = 0; i + 1 < sizeof(val); i++)
		val[i] = (char) ('a' + sg_test_uniform(&rng, 26));
	val[sizeof(val) - 1] = '\0';
	/* 500 keys with 3 versions each */
	for (int i = 0; i < 500; i++)
		for (int s = 0; s < 3; s++)
		{
			snprintf(key, sizeof(key), "key%05d", i);
			for (size_t j = 0; j + 1 < sizeof(val); j++)
				val[j] = (char) ('a' + sg_test_uniform(&rng, 26));
			mem_add(&m, key, (uint64_t) (i * 3 + s + 1), SG_TYPE_PUT, val);
		}
	flush_into(env, &m, &v);

	/* every version kept (a snapshot below each), small outputs */
	uint64_t	snaps[1500];

	for (int i = 0; i < 1500; i++)
		snaps[i] = (uint64_t) i + 1;
	assert_int_equal(compact_level(env, &v, 0, snaps, 1500, NULL, 8192, &st, &err), SG_OK);
	assert_true(v->nfiles[1] > 5);
	assert_int_equal(st.entries_out, 1500);
	/* the version check already proved no user key spans two files; count them */
	uint64_t	total = 0;

	for (size_t i = 0; i < v->nfiles[1]; i++)
		total += v->files[1][i]->num_entries;
	assert_int_equal(total, 1500);
	assert_stats_match(v);		/* per-file statistics across cuts */

	/* trivial move of one file */
	sg_compaction_pick p;
	sg_version_edit e;
	sg_version *nv;
	sg_slice	b = sg_file_meta_smallest_user(v->files[1][0]);

	assert_int_equal(sg_pick_range(v, 1, &b, &b, &p, &err), SG_OK);
	assert_int_equal(p.ninputs[0], 1);
	sg_version_edit_init(&e);
	assert_int_equal(sg_compact_trivial_move(&p, &e, &err), SG_OK);
	assert_int_equal(sg_version_apply(v, &e, "t", &nv, &err), SG_OK);
	assert_int_equal(nv->nfiles[2], 1);
	sg_version_edit_free(&e);
	sg_compaction_pick_free(&p);
	sg_version_unref(v, NULL, NULL);
	v = nv;

	/* a failed write part-way: no output remains, the edit is empty */
	sg_env_mem_fail_nth_write(env, 20);
	assert_int_not_equal(compact_level(env, &v, 1, NULL, 0, NULL, 8192, &st, &err), SG_OK);
	char	  **names;
	size_t		n,
				live = 0;

	assert_int_equal(env->ops->list_dir(env, DIR, &names, &n, &err), SG_OK);
	for (size_t i = 0; i < n; i++)
	{
		assert_null(strstr(names[i], ".tmp"));
		uint64_t	num = strtoull(names[i], NULL, 10);

		if (sg_version_has_file(v, num, NULL))
			live++;
	}
	/* only the live files plus the flushed L0 file (compacted away but not deleted) */
	assert_int_equal(n, live + 1);
	sg_env_free_names(names, n);
	close_readers();
	mem_free(&m);
	sg_version_unref(v, NULL, NULL);
	sg_env_mem_destroy(env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_flush_expect),
		cmocka_unit_test(test_flush_disk_full),
		cmocka_unit_test(test_default_decisions),
		cmocka_unit_test(test_compaction_default),
		cmocka_unit_test(test_compaction_filter),
		cmocka_unit_test(test_compaction_zero_seq),
		cmocka_unit_test(test_split_and_move_and_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
