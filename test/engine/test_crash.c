/*
 * test_crash.c — THE crash test of the standalone engine, over the
 * in-memory fault-injecting env (base/env_mem.h).
 *
 * Randomised rounds: 1-4 threads write batches under SYNC_ALWAYS (each
 * thread owns its keys, so per key the writes are ordered) while a
 * maintenance thread flushes and compacts and the tiny memtable keeps the
 * background threads busy; sometimes an fsync failure is armed; then the
 * "power" goes (sg_env_mem_crash*, dropping unsynced data, keeping a
 * prefix of it, or keeping junk) at a random moment — mid-write, mid-flush
 * or mid-compaction — and every file call from then on fails, as in a
 * process that died with the machine (dead_env below). The DB is closed,
 * the power comes back, and the DB is reopened and checked:
 *  - every acknowledged write is there with its value (or a later
 *    attempted write of the same key);
 *  - nothing never written appears (values are unique per write);
 *  - a batch not acknowledged is either wholly present or wholly absent.
 * Rounds continue on the recovered state, so recovery after recovery is
 * exercised too.
 *
 * Then corruption: a byte flipped in the middle of the WAL fails the open
 * with SG_CORRUPTION naming the segment; in an SSTable, reads of that
 * file give SG_CORRUPTION while other files stay readable; in the
 * MANIFEST, the open fails cleanly; a torn WAL tail is cut and reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "engine/base/env.h"
#include "engine/base/env_mem.h"
#include "engine/base/ikey.h"
#include "engine/db/db.h"
#include "testutil.h"

#define MAX_THREADS 4
#define KEYS_PER_THREAD 48
#define MAX_PENDING 64

/* Per key: the acknowledged state and the writes attempted since. */
typedef struct key_state
{
	char	   *acked;			/* NULL: absent */
	char	   *pending[MAX_PENDING];	/* attempted after the ack; NULL = delete */
	int			npending;
} key_state;

/* A batch attempted but not acknowledged (for the atomicity check). */
typedef struct pending_batch
{
	int			keys[3];
	int			nkeys;
	char	   *value;			/* every key of the batch gets this value */
} pending_batch;

typedef struct thread_state
{
	int			id;
	sg_db	   *db;
	uint64_t	seed;
	volatile int *stop;
	key_state	keys[KEYS_PER_THREAD];
	pending_batch batches[MAX_PENDING];
	int			nbatches;
	uint64_t	counter;
	uint64_t	acked_writes;
} thread_state;

static void
key_name(char *buf, size_t len, int thread, int key)
{
	snprintf(buf, len, "k%d-%04d", thread, key);
}

static char *
make_value(sg_test_rng *rng, int thread, uint64_t counter)
{
	size_t		pad = sg_test_uniform(rng, 300);
	char	   *v = malloc(64 + pad);

	int			n = snprintf(v, 64, "t%d-c%llu-", thread, (unsigned long long) counter);

	for (size_t i = 0; i < pad; i++)
		v[n + i] = (char) ('a' + (counter + i) % 26);
	v[n + pad] = '\0';
	return v;
}

static void
key_push_pending(key_state *k, char *v)
{
	if (k->npending < MAX_PENDING)
		k->pending[k->npending++] = v ? strdup(v) : NULL;
}

static void
key_clear_pending(key_state *k)
{
	for (int i = 0; i < k->npending; i++)
		free(k->pending[i]);
	k->npending = 0;
}

static void
clear_batches(thread_state *t)
{
	for (int i = 0; i < t->nbatches; i++)
		free(t->batches[i].value);
	t->nbatches = 0;
}

static void *
writer_main(void *p)
{
	thread_state *t = p;
	sg_test_rng rng = {t->seed};
	sg_err		err;
	char		name[32];

	while (!*t->stop)
	{
		sg_batch	b;
		int			keys[3];
		int			nkeys = 1 + (int) sg_test_uniform(&rng, 3);
		bool		del = sg_test_uniform(&rng, 7) == 0;
		char	   *value = del ? NULL : make_value(&rng, t->id, ++t->counter);

		if (del)
			nkeys = 1;
		for (int i = 0; i < nkeys; i++)
		{
			keys[i] = (int) sg_test_uniform(&rng, KEYS_PER_THREAD);
			for (int j = 0; j < i; j++)
				if (keys[j] == keys[i])
					keys[i] = (keys[i] + 1 + i) % KEYS_PER_THREAD;
		}
		/* distinct keys (a batch must not write one key twice here) */
		if (nkeys == 3 && keys[2] == keys[0])
			nkeys = 2;
		if (nkeys >= 2 && keys[1] == keys[0])
			nkeys = 1;
		sg_batch_init(&b);
		for (int i = 0; i < nkeys; i++)
		{
			key_name(name, sizeof(name), t->id, keys[i]);
			if (del)
				sg_batch_delete(&b, sg_slice_from_cstr(name));
			else
				sg_batch_put(&b, sg_slice_from_cstr(name), sg_slice_from_cstr(value));
			key_push_pending(&t->keys[keys[i]], value);
		}
		if (!del && t->nbatches < MAX_PENDING)
		{
			pending_batch *pb = &t->batches[t->nbatches++];

			memcpy(pb->keys, keys, sizeof(keys));
			pb->nkeys = nkeys;
			pb->value = strdup(value);
		}
		sg_code		rc = sg_db_write(t->db, &b, &err);

		sg_batch_free(&b);
		if (rc == SG_OK)
		{
			/* acknowledged: durable from now on */
			for (int i = 0; i < nkeys; i++)
			{
				key_state  *k = &t->keys[keys[i]];

				free(k->acked);
				k->acked = value ? strdup(value) : NULL;
				key_clear_pending(k);
			}
			clear_batches(t);
			t->acked_writes++;
		}
		free(value);
		if (rc != SG_OK)
			break;
	}
	return NULL;
}

typedef struct maint_state
{
	sg_db	   *db;
	uint64_t	seed;
	volatile int *stop;
} maint_state;

static void *
maint_main(void *p)
{
	maint_state *m = p;
	sg_test_rng rng = {m->seed};
	sg_err		err;

	while (!*m->stop)
	{
		usleep((useconds_t) sg_test_uniform(&rng, 2000));
		if (*m->stop)
			break;
		if (sg_test_uniform(&rng, 3) == 0)
		{
			if (sg_db_compact_range(m->db, NULL, NULL, &err) != SG_OK)
				break;
		}
		else if (sg_db_flush(m->db, &err) != SG_OK)
			break;
	}
	return NULL;
}


/* ------------------------------------------------------------------
 * A "power loss" that also stops the process.
 *
 * env_mem models what a disk keeps; after sg_env_mem_crash() the calling
 * program keeps running, and a DB whose threads are still alive would go
 * on writing to the post-crash disk (new files, new syncs) — something a
 * machine without power never does, and which can make a dying DB
 * acknowledge a write into a file the crash removed. This wrapper makes
 * the crash a point in time: it waits for file calls in flight, crashes
 * the disk, and from then on refuses every call (as a dead process would
 * make none) until the test revives it to reopen the DB.
 * ------------------------------------------------------------------ */

typedef struct dead_env
{
	sg_env		base;
	sg_env	   *inner;
	pthread_rwlock_t lk;
	bool		dead;
} dead_env;

typedef struct dead_file
{
	sg_file		base;
	sg_file    *inner;
} dead_file;

static sg_code
dead_error(sg_err *err)
{
	return sg_error(err, SG_IO_ERROR, "the power is off");
}

#define DEAD_ENV(e) ((dead_env *) (e))
#define ENTER(de, err) \
	do { \
		pthread_rwlock_rdlock(&(de)->lk); \
		if ((de)->dead) \
		{ \
			pthread_rwlock_unlock(&(de)->lk); \
			return dead_error(err); \
		} \
	} while (0)
#define LEAVE(de, rc) \
	do { \
		sg_code		rc_ = (rc); \
		pthread_rwlock_unlock(&(de)->lk); \
		return rc_; \
	} while (0)

static const sg_env_ops dead_ops;

static sg_code
d_open(sg_env *env, const char *path, sg_open_mode mode, sg_file **out, sg_err *err)
{
	dead_env   *de = DEAD_ENV(env);
	dead_file  *f;
	sg_code		rc;

	ENTER(de, err);
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		LEAVE(de, sg_error(err, SG_NO_MEMORY, "out of memory"));
	rc = de->inner->ops->open(de->inner, path, mode, &f->inner, err);
	if (rc != SG_OK)
	{
		free(f);
		LEAVE(de, rc);
	}
	f->base.env = env;
	f->base.path = f->inner->path;
	*out = &f->base;
	LEAVE(de, SG_OK);
}

static sg_code
d_append(sg_file *f, const void *data, size_t n, sg_err *err)
{
	dead_env   *de = DEAD_ENV(f->env);

	ENTER(de, err);
	LEAVE(de, sg_file_append(((dead_file *) f)->inner, data, n, err));
}

static sg_code
d_pread(sg_file *f, uint64_t off, void *buf, size_t n, size_t *got, sg_err *err)
{
	dead_env   *de = DEAD_ENV(f->env);

	ENTER(de, err);
	LEAVE(de, sg_file_pread(((dead_file *) f)->inner, off, buf, n, got, err));
}

static sg_code
d_sync(sg_file *f, sg_err *err)
{
	dead_env   *de = DEAD_ENV(f->env);

	ENTER(de, err);
	LEAVE(de, sg_file_sync(((dead_file *) f)->inner, err));
}

static sg_code
d_size(sg_file *f, uint64_t *size, sg_err *err)
{
	dead_env   *de = DEAD_ENV(f->env);

	ENTER(de, err);
	LEAVE(de, sg_file_size(((dead_file *) f)->inner, size, err));
}

static sg_code
d_truncate(sg_file *f, uint64_t len, sg_err *err)
{
	dead_env   *de = DEAD_ENV(f->env);

	ENTER(de, err);
	LEAVE(de, sg_file_truncate(((dead_file *) f)->inner, len, err));
}

static sg_code
d_close(sg_file *f, sg_err *err)
{
	sg_code		rc = sg_file_close(((dead_file *) f)->inner, err);

	free(f);
	return rc;
}

static sg_code
d_rename(sg_env *env, const char *from, const char *to, sg_err *err)
{
	dead_env   *de = DEAD_ENV(env);

	ENTER(de, err);
	LEAVE(de, de->inner->ops->rename(de->inner, from, to, err));
}

static sg_code
d_unlink(sg_env *env, const char *path, sg_err *err)
{
	dead_env   *de = DEAD_ENV(env);

	ENTER(de, err);
	LEAVE(de, de->inner->ops->unlink(de->inner, path, err));
}

static sg_code
d_sync_dir(sg_env *env, const char *dir, sg_err *err)
{
	dead_env   *de = DEAD_ENV(env);

	ENTER(de, err);
	LEAVE(de, de->inner->ops->sync_dir(de->inner, dir, err));
}

static sg_code
d_mkdir(sg_env *env, const char *path, sg_err *err)
{
	dead_env   *de = DEAD_ENV(env);

	ENTER(de, err);
	LEAVE(de, de->inner->ops->mkdir(de->inner, path, err));
}

static sg_code
d_rmdir(sg_env *env, const char *path, sg_err *err)
{
	dead_env   *de = DEAD_ENV(env);

	ENTER(de, err);
	LEAVE(de, de->inner->ops->rmdir(de->inner, path, err));
}

static sg_code
d_exists(sg_env *env, const char *path, sg_err *err)
{
	dead_env   *de = DEAD_ENV(env);

	ENTER(de, err);
	LEAVE(de, de->inner->ops->exists(de->inner, path, err));
}

static sg_code
d_list_dir(sg_env *env, const char *dir, char ***names, size_t *count, sg_err *err)
{
	dead_env   *de = DEAD_ENV(env);

	ENTER(de, err);
	LEAVE(de, de->inner->ops->list_dir(de->inner, dir, names, count, err));
}

static const sg_env_ops dead_ops = {
	d_open, d_append, d_pread, d_sync, d_size, d_truncate, d_close,
	d_rename, d_unlink, d_sync_dir, d_mkdir, d_rmdir, d_exists, d_list_dir
};

static dead_env *
dead_env_new(sg_env *inner)
{
	dead_env   *de = calloc(1, sizeof(*de));

	assert_non_null(de);
	de->base.ops = &dead_ops;
	de->inner = inner;
	pthread_rwlock_init(&de->lk, NULL);
	return de;
}

static void
dead_env_free(dead_env *de)
{
	pthread_rwlock_destroy(&de->lk);
	free(de);
}

/* Power loss at one instant: no file call runs across it or after it. */
static void
dead_env_crash(dead_env *de, int mode, uint64_t seed)
{
	pthread_rwlock_wrlock(&de->lk);
	de->dead = true;
	if (mode == 0)
		sg_env_mem_crash(de->inner);
	else
		sg_env_mem_crash_torn(de->inner, mode == 1 ? SG_MEM_CRASH_KEEP_PREFIX : SG_MEM_CRASH_GARBAGE,
							  seed);
	pthread_rwlock_unlock(&de->lk);
}

static void
dead_env_revive(dead_env *de)
{
	pthread_rwlock_wrlock(&de->lk);
	de->dead = false;
	pthread_rwlock_unlock(&de->lk);
}

/* ------------------------------------------------------------------ rounds */

static void
crash_options(sg_db_options *o, sg_env *env)
{
	sg_db_options_init(o);
	o->env = env;
	o->wal_sync = SG_WAL_SYNC_ALWAYS;
	o->memtable_size = 16 * 1024;
	o->max_immutables = 2;
	o->l0_trigger = 2;
	o->l1_target_bytes = 64 * 1024;
	o->level_multiplier = 4;
	o->target_file_size = 16 * 1024;
	o->block_size = 1024;
	o->wal_segment_size = 64 * 1024;
	o->max_manifest_bytes = 4096;
}

/* Is v (NULL = absent) an allowed value of key k after a crash? */
static bool
allowed(const key_state *k, const char *v)
{
	if ((v == NULL && k->acked == NULL) || (v && k->acked && strcmp(v, k->acked) == 0))
		return true;
	for (int i = 0; i < k->npending; i++)
		if ((v == NULL && k->pending[i] == NULL) ||
			(v && k->pending[i] && strcmp(v, k->pending[i]) == 0))
			return true;
	return false;
}

/* Check the recovered DB against the threads' records; adopt what it holds. */
static void
verify_and_adopt(sg_db *db, thread_state *ts, int nthreads, int round)
{
	sg_buf		v = SG_BUF_INIT;
	sg_err		err;
	char		name[32];
	int			bad = 0;

	/* no version may carry a sequence the DB would hand out again */
	{
		sg_db_stats st;
		sg_iter    *vi = sg_db_versions_iter(db, NULL);
		uint64_t	maxseq = 0;

		sg_db_get_stats(db, &st);
		for (sg_iter_seek_to_first(vi); sg_iter_valid(vi); sg_iter_next(vi))
		{
			uint64_t	seq = sg_ikey_trailer(sg_iter_key(vi)) >> 8;

			if (seq > maxseq)
				maxseq = seq;
		}
		sg_iter_destroy(vi);
		if (maxseq > st.last_sequence)
			fail_msg("round %d: a version has sequence %llu beyond the last sequence %llu",
					 round, (unsigned long long) maxseq, (unsigned long long) st.last_sequence);
	}

	for (int t = 0; t < MAX_THREADS; t++)
	{
		thread_state *th = &ts[t];
		char	   *found[KEYS_PER_THREAD];

		for (int k = 0; k < KEYS_PER_THREAD; k++)
		{
			sg_code		rc;

			key_name(name, sizeof(name), t, k);
			rc = sg_db_get(db, sg_slice_from_cstr(name), NULL, &v, &err);
			if (rc != SG_OK && rc != SG_NOT_FOUND)
				fail_msg("round %d: get %s: %s", round, name, err.msg);
			found[k] = NULL;
			if (rc == SG_OK)
			{
				found[k] = malloc(v.len + 1);
				memcpy(found[k], v.data, v.len);
				found[k][v.len] = '\0';
			}
			if (!allowed(&th->keys[k], found[k]))
			{
				sg_iter    *vi = sg_db_versions_iter(db, NULL);

				for (sg_iter_seek(vi, sg_slice_from_cstr(name)); sg_iter_valid(vi); sg_iter_next(vi))
				{
					sg_slice	ik = sg_iter_key(vi);
					uint64_t	tr = sg_ikey_trailer(ik);

					if (!sg_slice_equal(sg_ikey_user_key(ik), sg_slice_from_cstr(name)))
						break;
					print_message("  version seq %llu type %d value %.20s\n",
								  (unsigned long long) (tr >> 8), (int) (tr & 0xff),
								  sg_iter_value(vi).data);
				}
				sg_iter_destroy(vi);
				print_message("ERROR: round %d: key %s holds \"%.40s\", acknowledged \"%.40s\" (%d pending) last counter %llu\n",
						 round, name, found[k] ? found[k] : "(absent)",
						 th->keys[k].acked ? th->keys[k].acked : "(absent)",
						 th->keys[k].npending, (unsigned long long) th->counter);
				bad++;
			}
		}

		/*
		 * Atomicity: for each unacknowledged batch, newest first, the keys
		 * no later pending batch touched show its value all or none.
		 */
		bool		covered[KEYS_PER_THREAD];

		memset(covered, 0, sizeof(covered));
		for (int b = th->nbatches - 1; b >= 0; b--)
		{
			pending_batch *pb = &th->batches[b];
			int			shown = 0,
						considered = 0;

			for (int i = 0; i < pb->nkeys; i++)
			{
				if (covered[pb->keys[i]])
					continue;
				considered++;
				if (found[pb->keys[i]] && strcmp(found[pb->keys[i]], pb->value) == 0)
					shown++;
			}
			if (shown != 0 && shown != considered)
				fail_msg("round %d: batch \"%.30s\" of thread %d is partly present (%d of %d keys)",
						 round, pb->value, t, shown, considered);
			for (int i = 0; i < pb->nkeys; i++)
				covered[pb->keys[i]] = true;
		}

		/* what survived is now the durable state */
		for (int k = 0; k < KEYS_PER_THREAD; k++)
		{
			free(th->keys[k].acked);
			th->keys[k].acked = found[k];
			key_clear_pending(&th->keys[k]);
		}
		clear_batches(th);
	}

	if (bad > 0)
		fail_msg("round %d: %d keys lost acknowledged writes", round, bad);
	/* nothing outside the key space */
	sg_iter    *it = sg_db_iter(db, NULL);
	int			n = 0;

	for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it))
	{
		int			t,
					k;
		sg_slice	key = sg_iter_key(it);

		assert_true(key.len < sizeof(name));
		memcpy(name, key.data, key.len);
		name[key.len] = '\0';
		assert_int_equal(sscanf(name, "k%d-%d", &t, &k), 2);
		assert_true(t >= 0 && t < MAX_THREADS && k >= 0 && k < KEYS_PER_THREAD);
		assert_non_null(ts[t].keys[k].acked);
		assert_true(sg_slice_equal(sg_iter_value(it), sg_slice_from_cstr(ts[t].keys[k].acked)));
		n++;
	}
	assert_int_equal(sg_iter_status(it, &err), SG_OK);
	sg_iter_destroy(it);
	sg_buf_free(&v);
	(void) nthreads;
	(void) n;
}

static void
test_crash_rounds(void **state)
{
	const int	histories = 6;
	const int	rounds_per_history = 40;
	uint64_t	total_acked = 0;
	int			mid_bg = 0;

	(void) state;
	for (int h = 0; h < histories; h++)
	{
		sg_env	   *env = sg_env_mem_new();
		dead_env   *de = dead_env_new(env);
		sg_test_rng rng = {0x5eed0000ULL + (uint64_t) h};
		thread_state ts[MAX_THREADS];
		sg_db_options o;
		sg_db	   *db;
		sg_err		err;

		memset(ts, 0, sizeof(ts));
		crash_options(&o, &de->base);
		assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_OK);
		for (int r = 0; r < rounds_per_history; r++)
		{
			volatile int stop = 0;
			int			nthreads = 1 + (int) sg_test_uniform(&rng, MAX_THREADS);
			pthread_t	th[MAX_THREADS],
						mt;
			maint_state ms;
			bool		with_maint = sg_test_uniform(&rng, 2) == 0;
			sg_db_stats st;

			for (int t = 0; t < nthreads; t++)
			{
				ts[t].id = t;
				ts[t].db = db;
				ts[t].seed = sg_test_rand(&rng) | 1;
				ts[t].stop = &stop;
				assert_int_equal(pthread_create(&th[t], NULL, writer_main, &ts[t]), 0);
			}
			ms.db = db;
			ms.seed = sg_test_rand(&rng) | 1;
			ms.stop = &stop;
			if (with_maint)
				assert_int_equal(pthread_create(&mt, NULL, maint_main, &ms), 0);
			if (sg_test_uniform(&rng, 4) == 0)
				sg_env_mem_fail_nth_sync(env, 1 + sg_test_uniform(&rng, 40));
			usleep((useconds_t) (500 + sg_test_uniform(&rng, 6000)));

			/* the power goes while everything runs */
			sg_db_get_stats(db, &st);
			if (st.immutables > 0)
				mid_bg++;
			dead_env_crash(de, (int) sg_test_uniform(&rng, 3), sg_test_rand(&rng));
			stop = 1;
			for (int t = 0; t < nthreads; t++)
				pthread_join(th[t], NULL);
			if (with_maint)
				pthread_join(mt, NULL);
			sg_db_close(db, NULL);
			sg_env_mem_fail_nth_sync(env, 0);
			dead_env_revive(de);

			if (sg_db_open("/db", &o, &db, &err) != SG_OK)
				fail_msg("history %d round %d: reopen failed: %s", h, r, err.msg);
			verify_and_adopt(db, ts, nthreads, r);
			for (int t = 0; t < MAX_THREADS; t++)
			{
				total_acked += ts[t].acked_writes;
				ts[t].acked_writes = 0;
			}
		}
		assert_int_equal(sg_db_close(db, &err), SG_OK);
		for (int t = 0; t < MAX_THREADS; t++)
			for (int k = 0; k < KEYS_PER_THREAD; k++)
			{
				free(ts[t].keys[k].acked);
				key_clear_pending(&ts[t].keys[k]);
			}
		dead_env_free(de);
		sg_env_mem_destroy(env);
	}
	/* the test must have done real work */
	assert_true(total_acked > 1000);
	print_message("crash rounds: %d, acknowledged writes: %llu, crashes with a flush pending: %d\n",
				  histories * rounds_per_history, (unsigned long long) total_acked, mid_bg);
}

/* ------------------------------------------------------------ corruption */

static char last_log[8192];

/* Keep every line logged since last_log was cleared. */
static void
capture_log(void *arg, const char *msg)
{
	size_t		used = strlen(last_log);

	(void) arg;
	snprintf(last_log + used, sizeof(last_log) - used, "%s\n", msg);
}

/* Flip one byte of path at off (or at size * frac when off is UINT64_MAX). */
static void
flip_byte(sg_env *env, const char *dir, const char *name, uint64_t off, double frac)
{
	char		path[256];
	char	   *data;
	size_t		n;
	sg_err		err;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(sg_env_read_file(env, path, &data, &n, &err), SG_OK);
	if (off == UINT64_MAX)
		off = (uint64_t) ((double) n * frac);
	assert_true(off < n);
	data[off] ^= 0x5a;
	assert_int_equal(sg_env_write_file_atomic(env, dir, name, data, n, &err), SG_OK);
	free(data);
}

/* The first name in dir ending with suffix (malloc'd). */
static char *
find_name(sg_env *env, const char *dir, const char *suffix)
{
	char	  **names;
	size_t		n;
	sg_err		err;
	char	   *found = NULL;

	assert_int_equal(env->ops->list_dir(env, dir, &names, &n, &err), SG_OK);
	for (size_t i = 0; i < n && found == NULL; i++)
	{
		size_t		a = strlen(names[i]),
					b = strlen(suffix);

		if (a >= b && strcmp(names[i] + a - b, suffix) == 0)
			found = strdup(names[i]);
	}
	sg_env_free_names(names, n);
	assert_non_null(found);
	return found;
}

static void
fill(sg_db *db, const char *prefix, int n)
{
	sg_err		err;
	char		k[32],
				v[128];

	for (int i = 0; i < n; i++)
	{
		snprintf(k, sizeof(k), "%s%05d", prefix, i);
		snprintf(v, sizeof(v), "value-%s-%05d-padding-padding-padding", prefix, i);
		assert_int_equal(sg_db_put(db, sg_slice_from_cstr(k), sg_slice_from_cstr(v), &err), SG_OK);
	}
}

static void
test_corrupt_wal(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_db_options o;
	sg_db	   *db;
	sg_err		err;
	char	   *seg;

	(void) state;
	sg_db_options_init(&o);
	o.env = env;
	o.wal_sync = SG_WAL_SYNC_OFF;
	o.log = capture_log;
	assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_OK);
	fill(db, "a", 3000);
	assert_int_equal(sg_db_close(db, &err), SG_OK);

	/* a torn tail: junk appended to the last segment is cut and reported */
	seg = find_name(env, "/db/wal", ".wal");
	{
		char		path[256];
		sg_file    *f;

		snprintf(path, sizeof(path), "/db/wal/%s", seg);
		assert_int_equal(sg_file_open(env, path, SG_OPEN_APPEND, &f, &err), SG_OK);
		assert_int_equal(sg_file_append(f, "\x12\x34\x56\x78\x40\x00\x01zz", 9, &err), SG_OK);
		assert_int_equal(sg_file_sync(f, &err), SG_OK);
		sg_file_close(f, NULL);
	}
	last_log[0] = '\0';
	assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_OK);
	assert_non_null(strstr(last_log, "torn"));
	sg_buf		v = SG_BUF_INIT;

	assert_int_equal(sg_db_get(db, sg_slice_from_cstr("a02999"), NULL, &v, &err), SG_OK);
	assert_int_equal(sg_db_close(db, &err), SG_OK);

	/* damage in the middle: a clean error naming the segment */
	flip_byte(env, "/db/wal", seg, UINT64_MAX, 0.4);
	assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, seg));
	free(seg);
	sg_buf_free(&v);
	sg_env_mem_destroy(env);
}

static void
test_corrupt_sstable(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_db_options o;
	sg_db	   *db;
	sg_err		err;
	sg_buf		v = SG_BUF_INIT;
	char		k[32];
	char		first[64];

	(void) state;
	sg_db_options_init(&o);
	o.env = env;
	o.wal_sync = SG_WAL_SYNC_OFF;
	o.disable_auto_compaction = true;
	o.codec = SG_CODEC_NONE;
	assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_OK);
	fill(db, "a", 2000);
	assert_int_equal(sg_db_flush(db, &err), SG_OK);
	{
		char	   *name = find_name(env, "/db", ".sst");

		snprintf(first, sizeof(first), "%s", name);
		free(name);
	}
	fill(db, "b", 2000);
	assert_int_equal(sg_db_flush(db, &err), SG_OK);
	assert_int_equal(sg_db_close(db, &err), SG_OK);

	/* a data block in the middle of the first table */
	flip_byte(env, "/db", first, UINT64_MAX, 0.3);
	assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_OK);
	int			corrupt = 0;

	for (int i = 0; i < 2000; i++)
	{
		sg_code		rc;

		snprintf(k, sizeof(k), "a%05d", i);
		rc = sg_db_get(db, sg_slice_from_cstr(k), NULL, &v, &err);
		assert_true(rc == SG_OK || rc == SG_CORRUPTION);
		if (rc == SG_CORRUPTION)
		{
			corrupt++;
			assert_non_null(strstr(err.msg, first));
		}
	}
	assert_true(corrupt > 0);
	for (int i = 0; i < 2000; i++)
	{
		snprintf(k, sizeof(k), "b%05d", i);
		assert_int_equal(sg_db_get(db, sg_slice_from_cstr(k), NULL, &v, &err), SG_OK);
	}
	/* a scan meets the damage and reports it */
	sg_iter    *it = sg_db_iter(db, NULL);

	for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it))
		;
	assert_int_equal(sg_iter_status(it, &err), SG_CORRUPTION);
	sg_iter_destroy(it);
	/* a compaction over it fails cleanly, and changes nothing */
	assert_int_equal(sg_db_compact_range(db, NULL, NULL, &err), SG_CORRUPTION);
	snprintf(k, sizeof(k), "b%05d", 7);
	assert_int_equal(sg_db_get(db, sg_slice_from_cstr(k), NULL, &v, &err), SG_OK);
	assert_int_equal(sg_db_close(db, &err), SG_OK);
	sg_buf_free(&v);
	sg_env_mem_destroy(env);
}

static void
test_corrupt_manifest(void **state)
{
	sg_env	   *env = sg_env_mem_new();
	sg_db_options o;
	sg_db	   *db;
	sg_err		err;
	char	   *cur;
	size_t		n;
	char		name[64];

	(void) state;
	sg_db_options_init(&o);
	o.env = env;
	assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_OK);
	fill(db, "a", 500);
	assert_int_equal(sg_db_flush(db, &err), SG_OK);
	fill(db, "b", 500);
	assert_int_equal(sg_db_flush(db, &err), SG_OK);
	assert_int_equal(sg_db_close(db, &err), SG_OK);
	assert_int_equal(sg_env_read_file(env, "/db/CURRENT", &cur, &n, &err), SG_OK);
	assert_true(n > 1 && n < sizeof(name));
	memcpy(name, cur, n - 1);
	name[n - 1] = '\0';
	free(cur);
	flip_byte(env, "/db", name, 20, 0);
	assert_int_equal(sg_db_open("/db", &o, &db, &err), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "MANIFEST-"));
	sg_env_mem_destroy(env);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_rounds),
		cmocka_unit_test(test_corrupt_wal),
		cmocka_unit_test(test_corrupt_sstable),
		cmocka_unit_test(test_corrupt_manifest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
