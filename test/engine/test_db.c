/*
 * test_db.c — unit tests for db/: put/get/delete/iterate against a
 * reference model over many random operations with flushes, automatic and
 * manual compactions and reopens in between (in memory and on a real
 * directory); snapshots that keep seeing old values across compactions;
 * an iterator held across a compaction keeping its input SSTables on disk
 * (and readable) until it is destroyed; the versions iterator; group
 * commit under concurrent SYNC_ALWAYS writers; writers stalling (not
 * failing) behind slow flushes; an fsync failure poisoning the DB; a
 * compaction filter installed through the options; orphan files (stray
 * tables, stale MANIFESTs, temp files) removed at open; a damaged length
 * field mid-MANIFEST refusing the open with every file kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <cmocka.h>

#include "engine/base/env.h"
#include "engine/base/env_mem.h"
#include "engine/base/ikey.h"
#include "engine/db/db.h"
#include "testutil.h"

#define NKEYS 400

static void
small_options(sg_db_options *o, sg_env *env)
{
	sg_db_options_init(o);
	o->env = env;
	o->memtable_size = 64 * 1024;
	o->l0_trigger = 3;
	o->l1_target_bytes = 128 * 1024;
	o->target_file_size = 32 * 1024;
	o->block_size = 1024;
	o->wal_sync = SG_WAL_SYNC_OFF;
	o->wal_segment_size = 256 * 1024;
	o->max_manifest_bytes = 16 * 1024;
}

static void
key_of(char *buf, size_t len, int i)
{
	snprintf(buf, len, "key%05d", i);
}

/* The model: one value (or none) per key. */
typedef struct model
{
	char	   *val[NKEYS];
} model;

static void
model_free(model *m)
{
	for (int i = 0; i < NKEYS; i++)
		free(m->val[i]);
	memset(m, 0, sizeof(*m));
}

/* Every key agrees with the model, by get and by a full iteration. */
static void
check_model(sg_db *db, const model *m, const sg_db_snapshot *snap)
{
	sg_buf		v = SG_BUF_INIT;
	sg_err		err;
	char		k[32];

	for (int i = 0; i < NKEYS; i++)
	{
		sg_code		rc;

		key_of(k, sizeof(k), i);
		rc = sg_db_get(db, sg_slice_from_cstr(k), snap, &v, &err);
		if (m->val[i] == NULL)
			assert_int_equal(rc, SG_NOT_FOUND);
		else
		{
			assert_int_equal(rc, SG_OK);
			assert_int_equal(v.len, strlen(m->val[i]));
			assert_memory_equal(v.data, m->val[i], v.len);
		}
	}
	sg_buf_free(&v);

	sg_iter    *it = sg_db_iter(db, snap);
	int			next = 0;

	for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it))
	{
		while (next < NKEYS && m->val[next] == NULL)
			next++;
		assert_true(next < NKEYS);
		key_of(k, sizeof(k), next);
		assert_true(sg_slice_equal(sg_iter_key(it), sg_slice_from_cstr(k)));
		assert_true(sg_slice_equal(sg_iter_value(it), sg_slice_from_cstr(m->val[next])));
		next++;
	}
	assert_int_equal(sg_iter_status(it, &err), SG_OK);
	while (next < NKEYS && m->val[next] == NULL)
		next++;
	assert_int_equal(next, NKEYS);
	sg_iter_destroy(it);
}

/* The names of the SSTables in dir (<n>.sst); free with sg_env_free_names. */
static size_t
list_tables(sg_env *env, const char *dir, char ***out)
{
	char	  **names;
	size_t		n,
				kept = 0;
	sg_err		err;

	assert_int_equal(env->ops->list_dir(env, dir, &names, &n, &err), SG_OK);
	for (size_t i = 0; i < n; i++)
	{
		size_t		len = strlen(names[i]);

		if (len > 4 && strcmp(names[i] + len - 4, ".sst") == 0)
			names[kept++] = names[i];
		else
			free(names[i]);
	}
	*out = names;
	return kept;
}

static bool
file_exists(sg_env *env, const char *dir, const char *name)
{
	char		path[256];
	sg_err		err;
	sg_code		rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rc = env->ops->exists(env, path, &err);
	assert_true(rc == SG_OK || rc == SG_NOT_FOUND);
	return rc == SG_OK;
}

static void
random_value(sg_test_rng *rng, char *buf, size_t max)
{
	size_t		n = 1 + sg_test_uniform(rng, max - 1);

	for (size_t i = 0; i < n; i++)
		buf[i] = (char) ('a' + sg_test_uniform(rng, 26));
	buf[n] = '\0';
}

static void
run_random(sg_env *env, const char *dir, int rounds, uint64_t seed)
{
	sg_db_options o;
	sg_db	   *db;
	sg_err		err;
	model		m;
	sg_test_rng rng = {seed};
	char		val[400];
	char		k[32];

	memset(&m, 0, sizeof(m));
	small_options(&o, env);
	assert_int_equal(sg_db_open(dir, &o, &db, &err), SG_OK);
	for (int r = 0; r < rounds; r++)
	{
		int			ops = 200 + (int) sg_test_uniform(&rng, 800);

		for (int i = 0; i < ops; i++)
		{
			int			key = (int) sg_test_uniform(&rng, NKEYS);
			int			what = (int) sg_test_uniform(&rng, 10);

			key_of(k, sizeof(k), key);
			if (what < 7)
			{
				random_value(&rng, val, sizeof(val) - 1);
				assert_int_equal(sg_db_put(db, sg_slice_from_cstr(k), sg_slice_from_cstr(val), &err),
								 SG_OK);
				free(m.val[key]);
				m.val[key] = strdup(val);
			}
			else if (what < 9)
			{
				assert_int_equal(sg_db_delete(db, sg_slice_from_cstr(k), &err), SG_OK);
				free(m.val[key]);
				m.val[key] = NULL;
			}
			else
			{
				/* a multi-entry batch: put one key, delete another */
				sg_batch	b;
				int			other = (key + 1) % NKEYS;
				char		k2[32];

				key_of(k2, sizeof(k2), other);
				random_value(&rng, val, 50);
				sg_batch_init(&b);
				assert_int_equal(sg_batch_put(&b, sg_slice_from_cstr(k), sg_slice_from_cstr(val)), SG_OK);
				assert_int_equal(sg_batch_delete(&b, sg_slice_from_cstr(k2)), SG_OK);
				assert_int_equal(sg_db_write(db, &b, &err), SG_OK);
				sg_batch_free(&b);
				free(m.val[key]);
				m.val[key] = strdup(val);
				free(m.val[other]);
				m.val[other] = NULL;
			}
		}
		switch (sg_test_uniform(&rng, 4))
		{
			case 0:
				assert_int_equal(sg_db_flush(db, &err), SG_OK);
				break;
			case 1:
				{
					char		b[32],
								e[32];
					int			lo = (int) sg_test_uniform(&rng, NKEYS);
					sg_slice	bs,
								es;

					key_of(b, sizeof(b), lo);
					key_of(e, sizeof(e), lo + 100);
					bs = sg_slice_from_cstr(b);
					es = sg_slice_from_cstr(e);
					assert_int_equal(sg_db_compact_range(db, &bs, &es, &err), SG_OK);
					break;
				}
			case 2:
				assert_int_equal(sg_db_close(db, &err), SG_OK);
				assert_int_equal(sg_db_open(dir, &o, &db, &err), SG_OK);
				break;
			default:
				break;
		}
		check_model(db, &m, NULL);
	}
	assert_int_equal(sg_db_compact_range(db, NULL, NULL, &err), SG_OK);
	check_model(db, &m, NULL);

	sg_db_stats st;

	sg_db_get_stats(db, &st);
	assert_true(st.flushes > 0);
	assert_true(st.compactions > 0);
	assert_true(st.wal_bytes > 0);
	assert_true(st.compaction_bytes_written > 0);
	/* after a full compaction everything lives in one level */
	int			nonempty = 0;

	for (int l = 0; l < SG_NUM_LEVELS; l++)
		nonempty += st.level_files[l] > 0;
	assert_true(nonempty <= 1);
	assert_int_equal(sg_db_close(db, &err), SG_OK);
	model_free(&m);
}

static void
test_random_mem(void **state)
{
	sg_env	   *env = sg_env_mem_new();

	(void) state;
	run_random(env, "/db", 40, 0xfeed);
	sg_env_mem_destroy(env);
}

static void
test_random_posix(void **state)
{
	char	   *dir = sg_test_tmpdir("db");

	(void) state;
	run_random(sg_env_posix(), dir, 10, 0xbeef);
	sg_test_rmtree(dir);
	free(dir);
}

static void
test_snapshots(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_db_options o;
	sg_db	   *db;
	sg_err		err;
	model		m1,
				m2;
	char		k[32],
				val[64];

	(void) state;
	small_options(&o, env);
	assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_OK);
	memset(&m1, 0, sizeof(m1));
	memset(&m2, 0, sizeof(m2));
	for (int i = 0; i < NKEYS; i++)
	{
		key_of(k, sizeof(k), i);
		snprintf(val, sizeof(val), "old%d", i);
		assert_int_equal(sg_db_put(db, sg_slice_from_cstr(k), sg_slice_from_cstr(val), &err), SG_OK);
		m1.val[i] = strdup(val);
	}

	/*
	 * Flush first, so that the old state lives in SSTables, not just in
	 * the memtable: the held iterator must then pin files that the
	 * compaction below replaces, and their deletion must wait for it.
	 */
	char	  **inputs;
	size_t		ninputs;

	assert_int_equal(sg_db_flush(db, &err), SG_OK);
	ninputs = list_tables(env, "/db", &inputs);
	assert_true(ninputs > 0);

	const sg_db_snapshot *s1 = sg_db_snapshot_acquire(db);
	sg_iter    *held = sg_db_iter(db, NULL);	/* pins the current files */

	for (int i = 0; i < NKEYS; i++)
	{
		key_of(k, sizeof(k), i);
		if (i % 3 == 0)
			assert_int_equal(sg_db_delete(db, sg_slice_from_cstr(k), &err), SG_OK);
		else
		{
			snprintf(val, sizeof(val), "new%d", i);
			assert_int_equal(sg_db_put(db, sg_slice_from_cstr(k), sg_slice_from_cstr(val), &err), SG_OK);
			m2.val[i] = strdup(val);
		}
	}
	check_model(db, &m1, s1);
	assert_int_equal(sg_db_compact_range(db, NULL, NULL, &err), SG_OK);
	check_model(db, &m1, s1);
	check_model(db, &m2, NULL);

	/*
	 * The compaction replaced every input, but the held iterator still
	 * reads them: they must still be on disk, and it must still see the
	 * old state, every key with its old value.
	 */
	{
		sg_db_stats st;

		/* the inputs were L0 flush outputs; the compaction emptied L0 */
		sg_db_get_stats(db, &st);
		assert_true(st.compactions > 0);
		assert_int_equal(st.level_files[0], 0);
	}
	for (size_t i = 0; i < ninputs; i++)
		assert_true(file_exists(env, "/db", inputs[i]));

	int			n = 0;

	for (sg_iter_seek_to_first(held); sg_iter_valid(held); sg_iter_next(held))
	{
		assert_true(n < NKEYS);
		key_of(k, sizeof(k), n);
		assert_true(sg_slice_equal(sg_iter_key(held), sg_slice_from_cstr(k)));
		assert_true(sg_slice_equal(sg_iter_value(held), sg_slice_from_cstr(m1.val[n])));
		n++;
	}
	assert_int_equal(sg_iter_status(held, &err), SG_OK);
	assert_int_equal(n, NKEYS);

	/* its last reader gone, each input is deleted */
	sg_iter_destroy(held);
	for (size_t i = 0; i < ninputs; i++)
		assert_false(file_exists(env, "/db", inputs[i]));
	sg_env_free_names(inputs, ninputs);

	/* versions view: a key with old and new versions shows both */
	sg_iter    *vi = sg_db_versions_iter(db, NULL);
	int			versions_of_1 = 0;

	key_of(k, sizeof(k), 1);
	for (sg_iter_seek(vi, sg_slice_from_cstr(k)); sg_iter_valid(vi); sg_iter_next(vi))
	{
		if (!sg_slice_equal(sg_ikey_user_key(sg_iter_key(vi)), sg_slice_from_cstr(k)))
			break;
		versions_of_1++;
	}
	assert_int_equal(versions_of_1, 2);
	sg_iter_destroy(vi);

	/* released: a full compaction drops the old versions and tombstones */
	sg_db_snapshot_release(db, s1);
	assert_int_equal(sg_db_compact_range(db, NULL, NULL, &err), SG_OK);
	check_model(db, &m2, NULL);
	vi = sg_db_versions_iter(db, NULL);
	int			total = 0;

	for (sg_iter_seek_to_first(vi); sg_iter_valid(vi); sg_iter_next(vi))
		total++;
	sg_iter_destroy(vi);
	assert_int_equal(total, NKEYS - (NKEYS + 2) / 3);
	assert_int_equal(sg_db_close(db, &err), SG_OK);
	model_free(&m1);
	model_free(&m2);
	sg_env_mem_destroy(env);
}

typedef struct thread_arg
{
	sg_db	   *db;
	int			id;
	int			n;
} thread_arg;

static void *
writer_main(void *p)
{
	thread_arg *a = p;
	sg_err		err;
	char		k[32];

	for (int i = 0; i < a->n; i++)
	{
		snprintf(k, sizeof(k), "t%d-%05d", a->id, i);
		if (sg_db_put(a->db, sg_slice_from_cstr(k), sg_slice_from_cstr(k), &err) != SG_OK)
			return (void *) 1;
	}
	return NULL;
}

static void
test_group_commit_and_stall(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_db_options o;
	sg_db	   *db;
	sg_err		err;
	pthread_t	th[8];
	thread_arg	args[8];
	sg_db_stats st;

	(void) state;
	small_options(&o, env);
	o.wal_sync = SG_WAL_SYNC_ALWAYS;
	o.max_immutables = 1;
	/* a 1ms flush, so that writers queue behind the leader as on a disk */
	sg_env_mem_set_sync_latency(env, 1000);
	assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_OK);
	for (int i = 0; i < 8; i++)
	{
		args[i].db = db;
		args[i].id = i;
		args[i].n = 600;
		assert_int_equal(pthread_create(&th[i], NULL, writer_main, &args[i]), 0);
	}
	for (int i = 0; i < 8; i++)
	{
		void	   *ret;

		pthread_join(th[i], &ret);
		assert_null(ret);
	}
	sg_db_get_stats(db, &st);
	assert_int_equal(st.wal_appends, 8 * 600);
	assert_true(st.wal_syncs < st.wal_appends);
	assert_true(st.flushes > 0);
	assert_int_equal(st.last_sequence, 8 * 600);
	assert_int_equal(sg_db_close(db, &err), SG_OK);

	/* everything is there after a crash (SYNC_ALWAYS) */
	sg_env_mem_crash(env);
	assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_OK);
	sg_buf		v = SG_BUF_INIT;

	for (int t = 0; t < 8; t++)
		for (int i = 0; i < 600; i += 37)
		{
			char		k[32];

			snprintf(k, sizeof(k), "t%d-%05d", t, i);
			assert_int_equal(sg_db_get(db, sg_slice_from_cstr(k), NULL, &v, &err), SG_OK);
			assert_true(sg_slice_equal(sg_buf_slice(&v), sg_slice_from_cstr(k)));
		}
	sg_buf_free(&v);
	assert_int_equal(sg_db_close(db, &err), SG_OK);
	sg_env_mem_destroy(env);
}

static void
test_fsync_failure_poisons(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_db_options o;
	sg_db	   *db;
	sg_err		err;
	sg_buf		v = SG_BUF_INIT;

	(void) state;
	small_options(&o, env);
	o.wal_sync = SG_WAL_SYNC_ALWAYS;
	assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_OK);
	assert_int_equal(sg_db_put(db, sg_slice_from_cstr("a"), sg_slice_from_cstr("1"), &err), SG_OK);
	sg_env_mem_fail_nth_sync(env, 1);
	assert_int_not_equal(sg_db_put(db, sg_slice_from_cstr("b"), sg_slice_from_cstr("2"), &err), SG_OK);
	assert_true(err.sync_failed);
	sg_err_clear(&err);
	assert_int_not_equal(sg_db_put(db, sg_slice_from_cstr("c"), sg_slice_from_cstr("3"), &err), SG_OK);
	assert_true(err.sync_failed);
	assert_int_not_equal(sg_db_flush(db, &err), SG_OK);
	/* reads still work */
	assert_int_equal(sg_db_get(db, sg_slice_from_cstr("a"), NULL, &v, &err), SG_OK);
	assert_int_not_equal(sg_db_close(db, &err), SG_OK);
	sg_env_mem_crash(env);
	assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_OK);
	assert_int_equal(sg_db_get(db, sg_slice_from_cstr("a"), NULL, &v, &err), SG_OK);
	assert_int_equal(sg_db_get(db, sg_slice_from_cstr("c"), NULL, &v, &err), SG_NOT_FOUND);
	assert_int_equal(sg_db_close(db, &err), SG_OK);
	sg_buf_free(&v);
	sg_env_mem_destroy(env);
}

static sg_code
drop_x(void *arg, const sg_filter_context *ctx, sg_slice user_key,
	   sg_filter_version *versions, size_t n, sg_err *err)
{
	(void) ctx;
	(void) err;
	(*(int *) arg)++;
	if (user_key.len > 0 && user_key.data[0] == 'x')
		for (size_t i = 0; i < n; i++)
			versions[i].decision = SG_FILTER_DROP;
	return SG_OK;
}

static void
test_filter_option(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_db_options o;
	sg_db	   *db;
	sg_err		err;
	sg_buf		v = SG_BUF_INIT;
	int			calls = 0;

	(void) state;
	small_options(&o, env);
	o.filter = drop_x;
	o.filter_arg = &calls;
	assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_OK);
	assert_int_equal(sg_db_put(db, sg_slice_from_cstr("a"), sg_slice_from_cstr("1"), &err), SG_OK);
	assert_int_equal(sg_db_put(db, sg_slice_from_cstr("x1"), sg_slice_from_cstr("2"), &err), SG_OK);
	assert_int_equal(sg_db_compact_range(db, NULL, NULL, &err), SG_OK);
	assert_true(calls >= 2);
	assert_int_equal(sg_db_get(db, sg_slice_from_cstr("a"), NULL, &v, &err), SG_OK);
	assert_int_equal(sg_db_get(db, sg_slice_from_cstr("x1"), NULL, &v, &err), SG_NOT_FOUND);
	assert_int_equal(sg_db_close(db, &err), SG_OK);
	sg_buf_free(&v);
	sg_env_mem_destroy(env);
}

static void
write_file(sg_env *env, const char *dir, const char *name, const char *content)
{
	char		path[256];
	sg_file    *f;
	sg_err		err;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(sg_file_open(env, path, SG_OPEN_CREATE, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, content, strlen(content), &err), SG_OK);
	assert_int_equal(sg_file_close(f, &err), SG_OK);
}

static void
count_log(void *arg, const char *msg)
{
	if (strstr(msg, "orphan") != NULL)
		(*(int *) arg)++;
}

/*
 * Files a crash can leave behind — a table whose edit never reached the
 * MANIFEST, a MANIFEST replaced by a newer one, half-written temp files —
 * are deleted when the DB opens; files that are not the engine's are left
 * alone, and the data is untouched. On a real directory, where it matters.
 */
static void
test_orphans_removed_at_open(void **state)
{
	char	   *dir = sg_test_tmpdir("orphans");
	sg_env	   *env = sg_env_posix();
	sg_db_options o;
	sg_db	   *db;
	sg_err		err;
	sg_buf		v = SG_BUF_INIT;
	char		k[32],
				val[32];
	int			orphan_logs = 0;
	static const char *const orphans[] = {
		"000999.sst", "MANIFEST-000900", "CURRENT.tmp", "000998.sst.tmp"
	};

	(void) state;
	small_options(&o, env);
	o.log = count_log;
	o.log_arg = &orphan_logs;
	assert_int_equal(sg_db_open(dir, &o, &db, &err), SG_OK);
	for (int i = 0; i < NKEYS; i++)
	{
		key_of(k, sizeof(k), i);
		snprintf(val, sizeof(val), "v%d", i);
		assert_int_equal(sg_db_put(db, sg_slice_from_cstr(k), sg_slice_from_cstr(val), &err), SG_OK);
	}
	/* every key in a table, then newer values of the even keys only in the WAL */
	assert_int_equal(sg_db_flush(db, &err), SG_OK);
	for (int i = 0; i < NKEYS; i += 2)
	{
		key_of(k, sizeof(k), i);
		snprintf(val, sizeof(val), "w%d", i);
		assert_int_equal(sg_db_put(db, sg_slice_from_cstr(k), sg_slice_from_cstr(val), &err), SG_OK);
	}
	assert_int_equal(sg_db_close(db, &err), SG_OK);

	char	  **tables;
	size_t		ntables = list_tables(env, dir, &tables);

	assert_true(ntables > 0);
	for (size_t i = 0; i < sizeof(orphans) / sizeof(orphans[0]); i++)
		write_file(env, dir, orphans[i], "left behind by a crash\n");
	write_file(env, dir, "NOTES", "not the engine's\n");
	assert_int_equal(orphan_logs, 0);

	assert_int_equal(sg_db_open(dir, &o, &db, &err), SG_OK);
	for (size_t i = 0; i < sizeof(orphans) / sizeof(orphans[0]); i++)
	{
		if (file_exists(env, dir, orphans[i]))
			fail_msg("orphan %s survived the open", orphans[i]);
	}
	assert_int_equal(orphan_logs, 1);
	assert_true(file_exists(env, dir, "NOTES"));
	for (size_t i = 0; i < ntables; i++)
		assert_true(file_exists(env, dir, tables[i]));
	sg_env_free_names(tables, ntables);

	for (int i = 0; i < NKEYS; i++)
	{
		key_of(k, sizeof(k), i);
		snprintf(val, sizeof(val), "%c%d", i % 2 == 0 ? 'w' : 'v', i);
		assert_int_equal(sg_db_get(db, sg_slice_from_cstr(k), NULL, &v, &err), SG_OK);
		assert_true(sg_slice_equal(sg_buf_slice(&v), sg_slice_from_cstr(val)));
	}
	assert_int_equal(sg_db_close(db, &err), SG_OK);
	sg_buf_free(&v);
	sg_test_rmtree(dir);
	free(dir);
}

/*
 * A damaged length field in the middle of the live MANIFEST (here running
 * past the end of the file, what a torn last record looks like): the DB
 * refuses to open with SG_CORRUPTION naming the MANIFEST and the offset,
 * and every SSTable, the MANIFEST and CURRENT are still on disk. Before the
 * fix the open took the damage for a torn tail, dropped the edits after
 * it, and deleted the SSTables they had added as orphans.
 */
static void
test_manifest_damage_refuses_open(void **state)
{
	char	   *dir = sg_test_tmpdir("mdamage");
	sg_env	   *env = sg_env_posix();
	sg_db_options o;
	sg_db	   *db;
	sg_err		err;
	char		k[32],
				val[32],
				path[512],
				want[64];
	char	   *data;
	size_t		n;

	(void) state;
	small_options(&o, env);
	o.l0_trigger = 100;			/* no compaction: one edit per flush */
	assert_int_equal(sg_db_open(dir, &o, &db, &err), SG_OK);
	for (int round = 0; round < 4; round++)
	{
		for (int i = round; i < NKEYS; i += 4)
		{
			key_of(k, sizeof(k), i);
			snprintf(val, sizeof(val), "v%d", i);
			assert_int_equal(sg_db_put(db, sg_slice_from_cstr(k), sg_slice_from_cstr(val), &err), SG_OK);
		}
		assert_int_equal(sg_db_flush(db, &err), SG_OK);
	}
	assert_int_equal(sg_db_close(db, &err), SG_OK);

	char	  **tables;
	size_t		ntables = list_tables(env, dir, &tables);

	assert_int_equal(ntables, 4);

	/* the live MANIFEST: a snapshot, then one edit per flush */
	snprintf(path, sizeof(path), "%s/CURRENT", dir);
	assert_int_equal(sg_env_read_file(env, path, &data, &n, &err), SG_OK);
	assert_true(n > 1 && data[n - 1] == '\n');

	char		manifest[64];

	snprintf(manifest, sizeof(manifest), "%.*s", (int) (n - 1), data);
	free(data);
	snprintf(path, sizeof(path), "%s/%s", dir, manifest);
	assert_int_equal(sg_env_read_file(env, path, &data, &n, &err), SG_OK);
	assert_int_equal(data[6], 1);	/* record 0: a FULL fragment in block 0 */

	size_t		rec1 = 7 + ((size_t) (uint8_t) data[4] | (size_t) (uint8_t) data[5] << 8);
	unsigned	bad = (unsigned) (32768 - rec1 - 7);	/* fits the block, past EOF */

	assert_true(rec1 + 7 < n && n < 32768);
	assert_int_equal(data[rec1 + 6], 1);
	data[rec1 + 4] = (char) (bad & 0xff);
	data[rec1 + 5] = (char) (bad >> 8);
	assert_int_equal(sg_env_write_file_atomic(env, dir, manifest, data, n, &err), SG_OK);
	free(data);

	assert_int_equal(sg_db_open(dir, &o, &db, &err), SG_CORRUPTION);
	assert_int_equal(err.code, SG_CORRUPTION);
	assert_non_null(strstr(err.msg, manifest));
	snprintf(want, sizeof(want), "offset %zu (", rec1);
	assert_non_null(strstr(err.msg, want));
	for (size_t i = 0; i < ntables; i++)
		if (!file_exists(env, dir, tables[i]))
			fail_msg("%s was deleted by a failed open", tables[i]);
	assert_true(file_exists(env, dir, manifest));
	snprintf(path, sizeof(path), "%s/CURRENT", dir);
	assert_int_equal(sg_env_read_file(env, path, &data, &n, &err), SG_OK);
	assert_int_equal(n, strlen(manifest) + 1);
	assert_memory_equal(data, manifest, n - 1);
	free(data);
	sg_env_free_names(tables, ntables);
	sg_test_rmtree(dir);
	free(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_mem),
		cmocka_unit_test(test_random_posix),
		cmocka_unit_test(test_snapshots),
		cmocka_unit_test(test_group_commit_and_stall),
		cmocka_unit_test(test_fsync_failure_poisons),
		cmocka_unit_test(test_filter_option),
		cmocka_unit_test(test_orphans_removed_at_open),
		cmocka_unit_test(test_manifest_damage_refuses_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
