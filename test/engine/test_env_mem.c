/*
 * test_env_mem.c — unit tests for the in-memory, fault-injecting env:
 * ordinary POSIX-like file semantics, the durability model enforced by a
 * simulated crash (file data, creations, renames, unlinks), torn writes,
 * injected write/sync failures, disk full, statistics, thread safety, and
 * random operation sequences checked against a model of the rules.
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
#include "testutil.h"

/* Create path with contents data; sync the file when sync is set. */
static void
write_file(sg_env *env, const char *path, const char *data, bool sync)
{
	sg_file    *f;
	sg_err		err;

	assert_int_equal(sg_file_open(env, path, SG_OPEN_CREATE, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, data, strlen(data), &err), SG_OK);
	if (sync)
		assert_int_equal(sg_file_sync(f, &err), SG_OK);
	assert_int_equal(sg_file_close(f, &err), SG_OK);
}

/* Assert path holds exactly want (NULL: path does not exist). */
static void
expect_file(sg_env *env, const char *path, const char *want)
{
	sg_err		err;
	char	   *data;
	size_t		n;
	sg_code		rc = sg_env_read_file(env, path, &data, &n, &err);

	if (want == NULL)
	{
		assert_int_equal(rc, SG_NOT_FOUND);
		assert_int_equal(env->ops->exists(env, path, &err), SG_NOT_FOUND);
		return;
	}
	assert_int_equal(rc, SG_OK);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(data, want, n);
	free(data);
}

static sg_env *
new_env_with_dir(void)
{
	sg_env	   *env = sg_env_mem_new();
	sg_err		err;

	assert_non_null(env);
	assert_int_equal(env->ops->mkdir(env, "/db", &err), SG_OK);
	return env;
}

static void
test_file_semantics(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_err		err;
	sg_file    *f;
	sg_file    *r;
	char		buf[64];
	size_t		got;
	uint64_t	size;
	char	  **names;
	size_t		count;

	(void) state;
	assert_non_null(env);
	/* no parent directory yet */
	assert_int_equal(sg_file_open(env, "/db/a", SG_OPEN_CREATE, &f, &err), SG_NOT_FOUND);
	assert_non_null(strstr(err.msg, "/db/a"));
	/* mkdir creates parents and is fine when the directory exists */
	assert_int_equal(env->ops->mkdir(env, "/db/sub/deep", &err), SG_OK);
	assert_int_equal(env->ops->mkdir(env, "/db", &err), SG_OK);
	assert_int_equal(env->ops->exists(env, "/db/sub", &err), SG_OK);

	assert_int_equal(sg_file_open(env, "/db/a", SG_OPEN_CREATE, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, "hello ", 6, &err), SG_OK);
	assert_int_equal(sg_file_append(f, "world", 5, &err), SG_OK);
	assert_int_equal(sg_file_size(f, &size, &err), SG_OK);
	assert_int_equal(size, 11);

	/* a second handle sees the bytes; pread is short only at the end */
	assert_int_equal(sg_file_open(env, "/db//a/", SG_OPEN_READ, &r, &err), SG_OK);
	assert_int_equal(sg_file_pread(r, 6, buf, sizeof(buf), &got, &err), SG_OK);
	assert_int_equal(got, 5);
	assert_memory_equal(buf, "world", 5);
	assert_int_equal(sg_file_pread(r, 100, buf, 4, &got, &err), SG_OK);
	assert_int_equal(got, 0);
	assert_int_equal(sg_file_read_exact(r, 8, buf, 10, &err), SG_CORRUPTION);
	/* a read-only handle refuses writes */
	assert_int_equal(sg_file_append(r, "x", 1, &err), SG_IO_ERROR);
	assert_int_equal(sg_file_truncate(r, 1, &err), SG_IO_ERROR);

	/* truncate shrinks, and grows with zeros */
	assert_int_equal(sg_file_truncate(f, 5, &err), SG_OK);
	assert_int_equal(sg_file_append(f, "!", 1, &err), SG_OK);
	assert_int_equal(sg_file_truncate(f, 8, &err), SG_OK);
	assert_int_equal(sg_file_read_exact(r, 0, buf, 8, &err), SG_OK);
	assert_memory_equal(buf, "hello!\0\0", 8);
	assert_int_equal(sg_file_close(f, &err), SG_OK);

	/* APPEND keeps contents, CREATE truncates */
	assert_int_equal(sg_file_open(env, "/db/a", SG_OPEN_APPEND, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, "+", 1, &err), SG_OK);
	assert_int_equal(sg_file_close(f, &err), SG_OK);
	assert_int_equal(sg_file_size(r, &size, &err), SG_OK);
	assert_int_equal(size, 9);
	write_file(env, "/db/b", "bee", false);
	write_file(env, "/db/b", "B", false);
	expect_file(env, "/db/b", "B");

	/* rename replaces the target; an open handle follows the file */
	assert_int_equal(env->ops->rename(env, "/db/a", "/db/b", &err), SG_OK);
	expect_file(env, "/db/a", NULL);
	assert_int_equal(sg_file_read_exact(r, 0, buf, 6, &err), SG_OK);
	assert_memory_equal(buf, "hello!", 6);
	assert_int_equal(env->ops->rename(env, "/db/missing", "/db/c", &err), SG_NOT_FOUND);
	assert_int_equal(env->ops->rename(env, "/db/b", "/nodir/c", &err), SG_NOT_FOUND);

	/* list_dir: only names directly inside, sorted; files vs directories */
	write_file(env, "/db/sub/x", "x", false);
	assert_int_equal(env->ops->list_dir(env, "/db", &names, &count, &err), SG_OK);
	assert_int_equal(count, 2);
	assert_string_equal(names[0], "b");
	assert_string_equal(names[1], "sub");
	sg_env_free_names(names, count);
	assert_int_equal(env->ops->list_dir(env, "/db/b", &names, &count, &err), SG_IO_ERROR);
	assert_int_equal(env->ops->list_dir(env, "/nope", &names, &count, &err), SG_NOT_FOUND);

	/* unlink: the open handle still reads the bytes (POSIX) */
	assert_int_equal(env->ops->unlink(env, "/db/b", &err), SG_OK);
	assert_int_equal(env->ops->unlink(env, "/db/b", &err), SG_NOT_FOUND);
	assert_int_equal(env->ops->unlink(env, "/db/sub", &err), SG_IO_ERROR);
	assert_int_equal(sg_file_read_exact(r, 0, buf, 5, &err), SG_OK);
	assert_int_equal(sg_file_close(r, &err), SG_OK);

	/* rmdir only when empty */
	assert_int_equal(env->ops->rmdir(env, "/db/sub", &err), SG_IO_ERROR);
	assert_int_equal(env->ops->rmdir(env, "/db/sub/deep", &err), SG_OK);
	assert_int_equal(env->ops->unlink(env, "/db/sub/x", &err), SG_OK);
	assert_int_equal(env->ops->rmdir(env, "/db/sub", &err), SG_OK);
	assert_int_equal(env->ops->exists(env, "/db/sub", &err), SG_NOT_FOUND);
	assert_int_equal(env->ops->rmdir(env, "/db/sub", &err), SG_NOT_FOUND);
	assert_int_equal(sg_file_open(env, "/db", SG_OPEN_READ, &f, &err), SG_IO_ERROR);

	/* relative paths live under "." */
	write_file(env, "rel", "r", false);
	expect_file(env, "./rel", "r");

	/* the shared helpers run unchanged on this env */
	assert_int_equal(sg_env_write_file_atomic(env, "/db", "CURRENT", "m1", 2, &err), SG_OK);
	expect_file(env, "/db/CURRENT", "m1");
	expect_file(env, "/db/CURRENT.tmp", NULL);
	sg_env_mem_destroy(env);
}

static void
test_crash_drops_unsynced_creation(void **state)
{
	sg_env	   *env = new_env_with_dir();

	(void) state;
	/* data synced, but the directory entry never was */
	write_file(env, "/db/a", "synced data", true);
	expect_file(env, "/db/a", "synced data");
	sg_env_mem_crash(env);
	expect_file(env, "/db/a", NULL);
	sg_env_mem_destroy(env);
}

static void
test_crash_drops_unsynced_data(void **state)
{
	sg_env	   *env = new_env_with_dir();
	sg_err		err;
	sg_file    *f;
	uint64_t	len;

	(void) state;
	assert_int_equal(sg_file_open(env, "/db/a", SG_OPEN_CREATE, &f, &err), SG_OK);
	assert_int_equal(env->ops->sync_dir(env, "/db", &err), SG_OK);
	assert_int_equal(sg_file_append(f, "lost", 4, &err), SG_OK);
	assert_int_equal(sg_env_mem_synced_size(env, "/db/a", &len, &err), SG_OK);
	assert_int_equal(len, 0);
	assert_int_equal(sg_file_close(f, &err), SG_OK);
	sg_env_mem_crash(env);
	expect_file(env, "/db/a", "");

	/* synced prefix survives, the unsynced tail does not */
	assert_int_equal(sg_file_open(env, "/db/a", SG_OPEN_APPEND, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, "keep", 4, &err), SG_OK);
	assert_int_equal(sg_file_sync(f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, "drop", 4, &err), SG_OK);
	assert_int_equal(sg_file_close(f, &err), SG_OK);
	sg_env_mem_crash(env);
	expect_file(env, "/db/a", "keep");
	sg_env_mem_destroy(env);
}

static void
test_crash_undoes_rename_and_unlink(void **state)
{
	sg_env	   *env = new_env_with_dir();
	sg_err		err;

	(void) state;
	write_file(env, "/db/old", "v1", true);
	write_file(env, "/db/victim", "v2", true);
	assert_int_equal(env->ops->sync_dir(env, "/db", &err), SG_OK);

	/* neither the rename nor the unlink is durable yet */
	assert_int_equal(env->ops->rename(env, "/db/old", "/db/new", &err), SG_OK);
	assert_int_equal(env->ops->unlink(env, "/db/victim", &err), SG_OK);
	expect_file(env, "/db/old", NULL);
	expect_file(env, "/db/victim", NULL);
	sg_env_mem_crash(env);
	expect_file(env, "/db/old", "v1");
	expect_file(env, "/db/new", NULL);
	expect_file(env, "/db/victim", "v2");

	/* a rename over an existing file: crash brings the old target back */
	write_file(env, "/db/tmp", "v3", true);
	assert_int_equal(env->ops->rename(env, "/db/tmp", "/db/old", &err), SG_OK);
	expect_file(env, "/db/old", "v3");
	sg_env_mem_crash(env);
	expect_file(env, "/db/old", "v1");
	expect_file(env, "/db/tmp", NULL);

	/* after sync_dir both are durable */
	assert_int_equal(env->ops->rename(env, "/db/old", "/db/new", &err), SG_OK);
	assert_int_equal(env->ops->unlink(env, "/db/victim", &err), SG_OK);
	assert_int_equal(env->ops->sync_dir(env, "/db/", &err), SG_OK);
	sg_env_mem_crash(env);
	expect_file(env, "/db/old", NULL);
	expect_file(env, "/db/new", "v1");
	expect_file(env, "/db/victim", NULL);

	/* sync_dir of another directory does not help */
	assert_int_equal(env->ops->mkdir(env, "/other", &err), SG_OK);
	write_file(env, "/db/c", "c", true);
	assert_int_equal(env->ops->sync_dir(env, "/other", &err), SG_OK);
	sg_env_mem_crash(env);
	expect_file(env, "/db/c", NULL);
	sg_env_mem_destroy(env);
}

static void
test_crash_invalidates_handles(void **state)
{
	sg_env	   *env = new_env_with_dir();
	sg_err		err;
	sg_file    *f;
	char		buf[4];
	size_t		got;
	uint64_t	size;

	(void) state;
	assert_int_equal(sg_file_open(env, "/db/a", SG_OPEN_CREATE, &f, &err), SG_OK);
	assert_int_equal(sg_file_append(f, "abc", 3, &err), SG_OK);
	sg_env_mem_crash(env);
	assert_int_equal(sg_file_append(f, "d", 1, &err), SG_IO_ERROR);
	assert_non_null(strstr(err.msg, "/db/a"));
	assert_int_equal(sg_file_pread(f, 0, buf, 3, &got, &err), SG_IO_ERROR);
	assert_int_equal(sg_file_sync(f, &err), SG_IO_ERROR);
	assert_int_equal(sg_file_size(f, &size, &err), SG_IO_ERROR);
	assert_int_equal(sg_file_truncate(f, 0, &err), SG_IO_ERROR);
	assert_int_equal(sg_file_close(f, &err), SG_OK);
	sg_env_mem_destroy(env);
}

static void
test_torn_writes(void **state)
{
	const char *synced = "0123456789";
	char		tail[200];
	int			saw_partial = 0;

	(void) state;
	for (size_t i = 0; i < sizeof(tail); i++)
		tail[i] = (char) ('a' + i % 26);
	for (uint64_t seed = 1; seed <= 50; seed++)
	{
		for (int mode = SG_MEM_CRASH_KEEP_PREFIX; mode <= SG_MEM_CRASH_GARBAGE; mode++)
		{
			sg_env	   *env = new_env_with_dir();
			sg_err		err;
			sg_file    *f;
			char	   *data;
			size_t		n;

			assert_int_equal(sg_file_open(env, "/db/wal", SG_OPEN_CREATE, &f, &err), SG_OK);
			assert_int_equal(sg_file_append(f, synced, 10, &err), SG_OK);
			assert_int_equal(sg_file_sync(f, &err), SG_OK);
			assert_int_equal(env->ops->sync_dir(env, "/db", &err), SG_OK);
			assert_int_equal(sg_file_append(f, tail, sizeof(tail), &err), SG_OK);
			assert_int_equal(sg_file_close(f, &err), SG_OK);
			sg_env_mem_crash_torn(env, (sg_mem_crash_mode) mode, seed);

			assert_int_equal(sg_env_read_file(env, "/db/wal", &data, &n, &err), SG_OK);
			/* the synced part is intact; at most the whole tail survives */
			assert_true(n >= 10 && n <= 10 + sizeof(tail));
			assert_memory_equal(data, synced, 10);
			if (mode == SG_MEM_CRASH_KEEP_PREFIX && n > 10)
				assert_memory_equal(data + 10, tail, n - 10);
			if (n > 10 && n < 10 + sizeof(tail))
				saw_partial++;
			free(data);

			/* what survived a crash is durable: a second crash keeps it */
			sg_env_mem_crash(env);
			assert_int_equal(sg_env_read_file(env, "/db/wal", &data, &n, &err), SG_OK);
			assert_true(n >= 10);
			free(data);
			sg_env_mem_destroy(env);
		}
	}
	/* the seeds really produce torn (partial) tails */
	assert_true(saw_partial > 50);
}

static void
test_injected_failures(void **state)
{
	sg_env	   *env = new_env_with_dir();
	sg_err		err;
	sg_file    *f;
	uint64_t	len;
	sg_env_mem_stats st;

	(void) state;
	assert_int_equal(sg_file_open(env, "/db/a", SG_OPEN_CREATE, &f, &err), SG_OK);
	sg_env_mem_reset_stats(env);

	/* the second write fails, once, and writes nothing */
	sg_env_mem_fail_nth_write(env, 2);
	assert_int_equal(sg_file_append(f, "1", 1, &err), SG_OK);
	assert_int_equal(sg_file_append(f, "2", 1, &err), SG_IO_ERROR);
	assert_false(err.sync_failed);
	assert_int_equal(sg_file_append(f, "3", 1, &err), SG_OK);
	expect_file(env, "/db/a", "13");

	/* a failed sync sets sync_failed and makes nothing durable */
	sg_err_clear(&err);
	sg_env_mem_fail_nth_sync(env, 1);
	assert_int_equal(sg_file_sync(f, &err), SG_IO_ERROR);
	assert_true(err.sync_failed);
	assert_non_null(strstr(err.msg, "/db/a"));
	assert_int_equal(sg_env_mem_synced_size(env, "/db/a", &len, &err), SG_OK);
	assert_int_equal(len, 0);
	sg_err_clear(&err);
	assert_int_equal(sg_file_sync(f, &err), SG_OK);
	assert_false(err.sync_failed);
	assert_int_equal(sg_env_mem_synced_size(env, "/db/a", &len, &err), SG_OK);
	assert_int_equal(len, 2);

	/* sync_dir shares the sync counter: a failed one keeps the entry volatile */
	sg_env_mem_fail_nth_sync(env, 2);
	assert_int_equal(sg_file_sync(f, &err), SG_OK);
	sg_err_clear(&err);
	assert_int_equal(env->ops->sync_dir(env, "/db", &err), SG_IO_ERROR);
	assert_true(err.sync_failed);

	/* n = 0 cancels a pending injection */
	sg_env_mem_fail_nth_write(env, 1);
	sg_env_mem_fail_nth_write(env, 0);
	assert_int_equal(sg_file_append(f, "4", 1, &err), SG_OK);

	/* disk full: appends fail whole once the budget is spent */
	sg_env_mem_set_space_budget(env, 5);
	assert_int_equal(sg_file_append(f, "abc", 3, &err), SG_OK);
	assert_int_equal(sg_file_append(f, "def", 3, &err), SG_IO_ERROR);
	assert_non_null(strstr(err.msg, "no space"));
	assert_int_equal(sg_file_append(f, "gh", 2, &err), SG_OK);
	assert_int_equal(sg_file_append(f, "i", 1, &err), SG_IO_ERROR);
	sg_env_mem_set_space_budget(env, UINT64_MAX);
	assert_int_equal(sg_file_append(f, "i", 1, &err), SG_OK);
	expect_file(env, "/db/a", "134abcghi");

	sg_env_mem_get_stats(env, &st);
	assert_int_equal(st.appends, 9);
	assert_int_equal(st.bytes_written, 9);
	assert_int_equal(st.syncs, 3);
	assert_int_equal(st.dir_syncs, 1);
	assert_int_equal(st.injected_failures, 3);
	assert_int_equal(sg_file_close(f, &err), SG_OK);

	/* the directory entry was never durably synced: a crash loses the file */
	sg_env_mem_crash(env);
	expect_file(env, "/db/a", NULL);
	sg_env_mem_get_stats(env, &st);
	assert_int_equal(st.crashes, 1);
	sg_env_mem_destroy(env);
}

/*
 * Random operations on a few names in two directories, checked after each
 * step against a small model of the durability rules: per name, the file
 * it refers to now and at its directory's last sync; per file, its bytes
 * and synced length. A crash sets every name to its durable file and every
 * file to its synced length.
 */
#define MODEL_NAMES 5
#define MODEL_OPS 400

typedef struct model_file
{
	char		data[2048];
	size_t		len;
	size_t		synced;
} model_file;

static void
model_path(char *buf, size_t n, int d, int name)
{
	snprintf(buf, n, "/d%d/f%d", d, name);
}

static void
test_random_against_model(void **state)
{
	sg_test_rng rng = {0xc0ffee};
	model_file *files = calloc(MODEL_OPS + 1, sizeof(model_file));

	(void) state;
	assert_non_null(files);
	for (int round = 0; round < 20; round++)
	{
		sg_env	   *env = sg_env_mem_new();
		int			cur[2][MODEL_NAMES],
					dur[2][MODEL_NAMES];
		int			nfiles = 0;
		sg_err		err;
		int			crashes = 0;

		assert_non_null(env);
		assert_int_equal(env->ops->mkdir(env, "/d0", &err), SG_OK);
		assert_int_equal(env->ops->mkdir(env, "/d1", &err), SG_OK);
		memset(cur, -1, sizeof(cur));
		memset(dur, -1, sizeof(dur));
		for (int op = 0; op < MODEL_OPS; op++)
		{
			int			d = (int) sg_test_uniform(&rng, 2);
			int			nm = (int) sg_test_uniform(&rng, MODEL_NAMES);
			int			f = cur[d][nm];
			char		path[64];
			sg_file    *h;
			uint64_t	kind = sg_test_uniform(&rng, 20);

			model_path(path, sizeof(path), d, nm);
			if (kind < 3)
			{
				/* create (or truncate) */
				assert_int_equal(sg_file_open(env, path, SG_OPEN_CREATE, &h, &err), SG_OK);
				assert_int_equal(sg_file_close(h, &err), SG_OK);
				if (f < 0)
				{
					f = cur[d][nm] = nfiles++;
					memset(&files[f], 0, sizeof(files[f]));
				}
				files[f].len = files[f].synced = 0;
			}
			else if (kind < 9 && f >= 0)
			{
				/* append, then maybe sync */
				size_t		n = (size_t) sg_test_uniform(&rng, 40);
				bool		sync = sg_test_uniform(&rng, 3) == 0;
				char		buf[40];

				if (files[f].len + n > sizeof(files[f].data))
					n = sizeof(files[f].data) - files[f].len;
				for (size_t i = 0; i < n; i++)
					buf[i] = (char) sg_test_rand(&rng);
				assert_int_equal(sg_file_open(env, path, SG_OPEN_APPEND, &h, &err), SG_OK);
				assert_int_equal(sg_file_append(h, buf, n, &err), SG_OK);
				memcpy(files[f].data + files[f].len, buf, n);
				files[f].len += n;
				if (sync)
				{
					assert_int_equal(sg_file_sync(h, &err), SG_OK);
					files[f].synced = files[f].len;
				}
				assert_int_equal(sg_file_close(h, &err), SG_OK);
			}
			else if (kind < 10 && f >= 0)
			{
				size_t		t = (size_t) sg_test_uniform(&rng, files[f].len + 1);

				assert_int_equal(sg_file_open(env, path, SG_OPEN_APPEND, &h, &err), SG_OK);
				assert_int_equal(sg_file_truncate(h, t, &err), SG_OK);
				assert_int_equal(sg_file_close(h, &err), SG_OK);
				files[f].len = t;
				if (files[f].synced > t)
					files[f].synced = t;
			}
			else if (kind < 13)
			{
				snprintf(path, sizeof(path), "/d%d", d);
				assert_int_equal(env->ops->sync_dir(env, path, &err), SG_OK);
				memcpy(dur[d], cur[d], sizeof(cur[d]));
			}
			else if (kind < 16)
			{
				int			d2 = (int) sg_test_uniform(&rng, 2);
				int			nm2 = (int) sg_test_uniform(&rng, MODEL_NAMES);
				char		to[64];

				model_path(to, sizeof(to), d2, nm2);
				assert_int_equal(env->ops->rename(env, path, to, &err),
								 f >= 0 ? SG_OK : SG_NOT_FOUND);
				if (f >= 0 && (d != d2 || nm != nm2))
				{
					cur[d2][nm2] = f;
					cur[d][nm] = -1;
				}
			}
			else if (kind < 18)
			{
				assert_int_equal(env->ops->unlink(env, path, &err),
								 f >= 0 ? SG_OK : SG_NOT_FOUND);
				cur[d][nm] = -1;
			}
			else if (kind == 18)
			{
				sg_env_mem_crash(env);
				crashes++;
				memcpy(cur, dur, sizeof(cur));
				for (int i = 0; i < nfiles; i++)
					files[i].len = files[i].synced;
			}

			/* every name matches the model, and so do the listings */
			for (int dd = 0; dd < 2; dd++)
			{
				size_t		present = 0;
				char	  **names;
				size_t		count;

				for (int n = 0; n < MODEL_NAMES; n++)
				{
					char	   *data;
					size_t		len;
					int			mf = cur[dd][n];

					model_path(path, sizeof(path), dd, n);
					if (mf < 0)
					{
						assert_int_equal(env->ops->exists(env, path, &err), SG_NOT_FOUND);
						continue;
					}
					present++;
					assert_int_equal(sg_env_read_file(env, path, &data, &len, &err), SG_OK);
					assert_int_equal(len, files[mf].len);
					if (len > 0)
						assert_memory_equal(data, files[mf].data, len);
					free(data);
				}
				snprintf(path, sizeof(path), "/d%d", dd);
				assert_int_equal(env->ops->list_dir(env, path, &names, &count, &err), SG_OK);
				assert_int_equal(count, present);
				sg_env_free_names(names, count);
			}
		}
		assert_true(crashes > 0);
		sg_env_mem_destroy(env);
	}
	free(files);
}

typedef struct worker_arg
{
	sg_env	   *env;
	int			id;
} worker_arg;

static void *
worker(void *p)
{
	worker_arg *a = p;
	char		path[64];
	sg_file    *f;
	sg_err		err;
	sg_code		rc;

	snprintf(path, sizeof(path), "/db/w%d", a->id);
	rc = sg_file_open(a->env, path, SG_OPEN_CREATE, &f, &err);
	for (int i = 0; rc == SG_OK && i < 2000; i++)
	{
		rc = sg_file_append(f, "0123456789", 10, &err);
		if (rc == SG_OK && i % 100 == 0)
			rc = sg_file_sync(f, &err);
		if (rc == SG_OK && i % 500 == 0)
			rc = a->env->ops->sync_dir(a->env, "/db", &err);
	}
	if (rc == SG_OK)
		rc = sg_file_close(f, &err);
	return (void *) (intptr_t) rc;
}

static void
test_threads(void **state)
{
	sg_env	   *env = new_env_with_dir();
	pthread_t	th[4];
	worker_arg	args[4];
	sg_err		err;
	char	  **names;
	size_t		count;
	sg_env_mem_stats st;

	(void) state;
	for (int i = 0; i < 4; i++)
	{
		args[i].env = env;
		args[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
	}
	for (int i = 0; i < 4; i++)
	{
		void	   *ret;

		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_int_equal((intptr_t) ret, SG_OK);
	}
	assert_int_equal(env->ops->list_dir(env, "/db", &names, &count, &err), SG_OK);
	assert_int_equal(count, 4);
	sg_env_free_names(names, count);
	sg_env_mem_get_stats(env, &st);
	assert_int_equal(st.bytes_written, 4 * 2000 * 10);
	sg_env_mem_destroy(env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_semantics),
		cmocka_unit_test(test_crash_drops_unsynced_creation),
		cmocka_unit_test(test_crash_drops_unsynced_data),
		cmocka_unit_test(test_crash_undoes_rename_and_unlink),
		cmocka_unit_test(test_crash_invalidates_handles),
		cmocka_unit_test(test_torn_writes),
		cmocka_unit_test(test_injected_failures),
		cmocka_unit_test(test_random_against_model),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
