/*
 * db.c — the standalone engine (see db.h and README.md).
 *
 * Lock order: db->mu, then db->cache_mu. db->mu guards every field below
 * marked (mu); cache_mu guards the table readers cached in file metas.
 * No file I/O happens under cache_mu except opening a reader; the WAL
 * append/fsync and memtable inserts of a write group happen without mu
 * (only the group's leader touches the active memtable's writer side);
 * MANIFEST writes, obsolete-file unlinks and memtable switches happen
 * under mu.
 *
 * Memtable switch and the WAL: only the write leader switches memtables,
 * and it does so between groups, so every WAL record whose end LSN is <=
 * an immutable memtable's end_lsn is in that memtable or an older one.
 * A flush records that LSN as the tree's log number; recovery replays the
 * WAL after it.
 */
#include "engine/db/db.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/base/ikey.h"
#include "engine/memtable/memtable.h"
#include "engine/merge/merge.h"
#include "engine/sstable/table.h"
#include "engine/version/manifest.h"
#include "engine/version/version.h"

#define PATH_LEN 4096
#define MAX_IMMUTABLES 16

/* Upper bound of arena bytes one entry costs beyond its key and value. */
#define ENTRY_OVERHEAD (SG_IKEY_TRAILER_LEN + 32 + 8 * 12 + 24)

/* A group never carries more than this many batch bytes (latency bound). */
#define MAX_GROUP_BYTES (1 << 20)

typedef struct db_mem
{
	sg_memtable mt;
	char	   *region;
	size_t		cap;
	uint64_t	end_lsn;		/* WAL end LSN of the last record inserted (mu) */
	int			refs;			/* (mu) */
} db_mem;

typedef struct writer
{
	sg_batch   *batch;			/* NULL: a request to switch the memtable */
	bool		done;
	sg_code		rc;
	sg_err		err;
	pthread_cond_t cv;
	struct writer *next;
} writer;

struct sg_db_snapshot
{
	uint64_t	seq;
	struct sg_db_snapshot *prev;
	struct sg_db_snapshot *next;
};

struct sg_db
{
	char	   *dir;
	char	   *wal_dir;
	sg_env	   *env;
	sg_db_options o;
	sg_table_options topts;
	sg_picker_options popts;

	pthread_mutex_t mu;
	pthread_cond_t bg_cv;		/* work for the background threads */
	pthread_cond_t done_cv;		/* a flush/compaction finished, or room appeared */
	pthread_mutex_t cache_mu;

	sg_vset    *vs;				/* (mu) */
	sg_wal	   *wal;
	db_mem	   *mem;			/* (mu) pointer; contents written by the leader */
	db_mem	   *imm[MAX_IMMUTABLES];	/* (mu) oldest first */
	int			nimm;			/* (mu) */
	uint64_t	last_seq;		/* (mu) published: visible to readers */
	writer	   *wq_head;		/* (mu) */
	writer	   *wq_tail;		/* (mu) */
	sg_db_snapshot snapshots;	/* (mu) list head, oldest first */

	bool		shutting_down;	/* (mu) */
	bool		closing;		/* (mu) no more unlinks */
	bool		compacting;		/* (mu) a compaction (auto or manual) runs */
	bool		poisoned;		/* (mu) refuse writes */
	sg_err		poison_err;		/* (mu) */
	bool		compaction_failed;	/* (mu) stop automatic compaction */
	bool		threads_started;
	pthread_t	flush_thread;
	pthread_t	compact_thread;

	sg_db_stats st;				/* (mu) counters */
};

/* ------------------------------------------------------------------ helpers */

static void
db_log(sg_db *db, const char *fmt,...) __attribute__((format(printf, 2, 3)));

static void
db_log(sg_db *db, const char *fmt,...)
{
	char		msg[SG_ERR_MSG_LEN + 128];
	va_list		ap;

	if (db->o.log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	db->o.log(db->o.log_arg, msg);
}

/* REQUIRES: mu. Refuse every later write. */
static void
poison(sg_db *db, const sg_err *err)
{
	if (db->poisoned)
		return;
	db->poisoned = true;
	if (err != NULL)
		db->poison_err = *err;
	else
		sg_error(&db->poison_err, SG_IO_ERROR, "%s: unknown failure", db->dir);
	db_log(db, "%s: database poisoned, writes refused: %s", db->dir, db->poison_err.msg);
	pthread_cond_broadcast(&db->done_cv);
}

/* REQUIRES: mu. The error a poisoned DB returns. */
static sg_code
poisoned_error(sg_db *db, sg_err *err)
{
	if (err != NULL)
	{
		sg_error(err, SG_IO_ERROR, "%s: database unusable after an earlier failure: %s",
				 db->dir, db->poison_err.msg);
		err->sync_failed = db->poison_err.sync_failed;
	}
	return SG_IO_ERROR;
}

static db_mem *
mem_new(size_t cap, sg_err *err)
{
	db_mem	   *m = calloc(1, sizeof(*m));
	sg_arena	a;

	cap = (cap + 63) & ~(size_t) 63;
	if (m == NULL || (m->region = aligned_alloc(64, cap)) == NULL)
	{
		free(m);
		sg_error(err, SG_NO_MEMORY, "out of memory for a %zu byte memtable", cap);
		return NULL;
	}
	m->cap = cap;
	m->refs = 1;
	if (sg_arena_create(&a, m->region, 0, cap, NULL, NULL, err) != SG_OK ||
		sg_memtable_create(&m->mt, &a, 1, err) != SG_OK)
	{
		free(m->region);
		free(m);
		return NULL;
	}
	return m;
}

/* REQUIRES: mu (or single-threaded). */
static void
mem_unref(db_mem *m)
{
	if (m != NULL && --m->refs == 0)
	{
		free(m->region);
		free(m);
	}
}

static uint64_t
mem_room(const db_mem *m)
{
	uint64_t	used = sg_arena_used(&m->mt.arena);

	return used >= m->cap ? 0 : m->cap - used;
}

static uint64_t
batch_bound(const sg_batch *b)
{
	return (uint64_t) sg_batch_byte_size(b) + (uint64_t) sg_batch_count(b) * ENTRY_OVERHEAD;
}

/* Insert every entry of an encoded batch into m (the leader, or recovery). */
static sg_code
mem_apply(db_mem *m, sg_slice rec, const char *what, uint64_t *max_seq, sg_err *err)
{
	sg_batch_iter it;
	sg_batch_entry e;
	sg_code		rc;

	if ((rc = sg_batch_iter_init(&it, rec, what, err)) != SG_OK)
		return rc;
	while ((rc = sg_batch_iter_next(&it, &e, what, err)) == SG_OK)
	{
		if ((rc = sg_memtable_add(&m->mt, e.seq, e.type, e.key, e.value, err)) != SG_OK)
			return rc;
		if (max_seq != NULL && e.seq > *max_seq)
			*max_seq = e.seq;
	}
	return rc == SG_NOT_FOUND ? SG_OK : rc;
}

/* ------------------------------------------------------------ table cache */

/* The reader of meta's file, opened on first use. */
static sg_code
get_reader(sg_db *db, sg_file_meta *meta, sg_table_reader **out, sg_err *err)
{
	sg_code		rc = SG_OK;

	pthread_mutex_lock(&db->cache_mu);
	if (meta->cache == NULL)
	{
		char		path[PATH_LEN];
		sg_table_reader *r;

		sg_sst_path(path, sizeof(path), db->dir, meta->number);
		rc = sg_table_reader_open(db->env, path, &r, err);
		if (rc == SG_NOT_FOUND)
			rc = sg_error(err, SG_CORRUPTION, "%s: table named by the MANIFEST is missing", path);
		if (rc == SG_OK)
			meta->cache = r;
	}
	*out = meta->cache;
	pthread_mutex_unlock(&db->cache_mu);
	return rc;
}

static sg_iter *
table_iter(sg_db *db, sg_file_meta *meta)
{
	sg_table_reader *r;
	sg_err		err;

	if (get_reader(db, meta, &r, &err) != SG_OK)
		return sg_iter_error(err.code, err.msg);
	return sg_table_reader_iter(r);
}

static sg_iter *
open_table_cb(void *arg, const sg_file_meta *meta)
{
	return table_iter(arg, (sg_file_meta *) meta);
}

/*
 * A file's last reference went (REQUIRES: mu): close its reader and,
 * unless the DB is closing or poisoned, unlink it — no installed version
 * names it any more.
 */
static void
file_release(void *arg, sg_file_meta *meta)
{
	sg_db	   *db = arg;

	if (meta->cache != NULL)
		sg_table_reader_close(meta->cache);
	meta->cache = NULL;
	if (!db->closing && !db->poisoned)
	{
		char		path[PATH_LEN];

		sg_sst_path(path, sizeof(path), db->dir, meta->number);
		db->env->ops->unlink(db->env, path, NULL);
	}
}

static uint64_t
new_file_cb(void *arg)
{
	sg_db	   *db = arg;
	uint64_t	n;

	pthread_mutex_lock(&db->mu);
	n = sg_vset_new_file_number(db->vs);
	pthread_mutex_unlock(&db->mu);
	return n;
}

/* ------------------------------------------------------------------ writes */

/*
 * REQUIRES: mu, called by the write leader. Make the active memtable able
 * to take need more bytes: switch it to the immutable list (waiting while
 * the list is full) or, if it is empty and too small, replace it.
 */
static sg_code
make_room(sg_db *db, uint64_t need, bool force, sg_err *err)
{
	for (;;)
	{
		db_mem	   *m = db->mem;
		bool		empty = sg_memtable_entries(&m->mt) == 0;

		if (db->poisoned)
			return poisoned_error(db, err);
		if (force && empty)
			return SG_OK;
		if (!force && need <= mem_room(m))
			return SG_OK;
		if (!force && empty)
		{
			db_mem	   *n = mem_new(need + 65536, err);

			if (n == NULL)
				return SG_NO_MEMORY;
			n->end_lsn = m->end_lsn;
			mem_unref(m);
			db->mem = n;
			return SG_OK;
		}
		if (db->nimm >= db->o.max_immutables)
		{
			db->st.write_stalls++;
			pthread_cond_wait(&db->done_cv, &db->mu);
			continue;
		}
		size_t		cap = db->o.memtable_size;

		if (need + 65536 > cap)
			cap = need + 65536;

		db_mem	   *n = mem_new(cap, err);

		if (n == NULL)
			return SG_NO_MEMORY;
		sg_memtable_freeze(&m->mt);
		db->imm[db->nimm++] = m;
		n->end_lsn = m->end_lsn;
		db->mem = n;
		pthread_cond_broadcast(&db->bg_cv);
		if (force)
			return SG_OK;
	}
}

sg_code
sg_db_write(sg_db *db, sg_batch *batch, sg_err *err)
{
	writer		w;
	sg_code		rc;

	if (batch != NULL && sg_batch_count(batch) == 0)
		return SG_OK;
	memset(&w, 0, sizeof(w));
	w.batch = batch;
	pthread_cond_init(&w.cv, NULL);

	pthread_mutex_lock(&db->mu);
	if (db->wq_tail != NULL)
		db->wq_tail->next = &w;
	else
		db->wq_head = &w;
	db->wq_tail = &w;
	while (!w.done && db->wq_head != &w)
		pthread_cond_wait(&w.cv, &db->mu);
	if (w.done)
	{
		pthread_mutex_unlock(&db->mu);
		pthread_cond_destroy(&w.cv);
		if (w.rc != SG_OK && err != NULL)
			*err = w.err;
		return w.rc;
	}

	/* this thread leads a group starting with w */
	writer	   *last = &w;
	sg_err		gerr;

	sg_err_clear(&gerr);
	if (batch == NULL)
		rc = make_room(db, 0, true, &gerr);
	else
	{
		rc = make_room(db, batch_bound(batch), false, &gerr);
		if (rc == SG_OK)
		{
			uint64_t	room = mem_room(db->mem);
			uint64_t	used = batch_bound(batch);
			uint64_t	bytes = sg_batch_byte_size(batch);

			while (last->next != NULL && last->next->batch != NULL &&
				   used + batch_bound(last->next->batch) <= room &&
				   bytes + sg_batch_byte_size(last->next->batch) <= MAX_GROUP_BYTES)
			{
				last = last->next;
				used += batch_bound(last->batch);
				bytes += sg_batch_byte_size(last->batch);
			}
		}
	}
	if (rc == SG_OK && batch != NULL)
	{
		uint64_t	seq = db->last_seq + 1;
		uint64_t	lsn = 0;
		uint64_t	max_seq = 0;
		db_mem	   *m = db->mem;
		sg_wal_stats ws;

		for (writer *x = &w;; x = x->next)
		{
			sg_batch_set_sequence(x->batch, seq);
			seq += sg_batch_count(x->batch);
			if (x == last)
				break;
		}
		pthread_mutex_unlock(&db->mu);

		for (writer *x = &w; rc == SG_OK; x = x->next)
		{
			rc = sg_wal_append(db->wal, sg_batch_contents(x->batch), &lsn, &gerr);
			if (x == last)
				break;
		}
		if (rc == SG_OK && db->o.wal_sync == SG_WAL_SYNC_ALWAYS)
			rc = sg_wal_sync(db->wal, &gerr);
		for (writer *x = &w; rc == SG_OK; x = x->next)
		{
			rc = mem_apply(m, sg_batch_contents(x->batch), "write batch", &max_seq, &gerr);
			if (x == last)
				break;
		}
		sg_wal_get_stats(db->wal, &ws);

		pthread_mutex_lock(&db->mu);
		db->st.wal_bytes = ws.bytes_written;
		db->st.wal_appends = ws.appends;
		db->st.wal_syncs = ws.syncs;
		if (rc == SG_OK)
		{
			db->last_seq = seq - 1;
			m->end_lsn = lsn;
		}
		else
		{
			/*
			 * A failed WAL write or fsync leaves the log's tail unknown; a
			 * failed insert leaves a half-applied batch in the memtable.
			 * Neither can be undone: refuse everything from now on.
			 */
			poison(db, &gerr);
		}
	}

	/* hand results to the group and wake the next leader */
	for (writer *x = &w;;)
	{
		writer	   *next = x->next;

		x->rc = rc;
		if (rc != SG_OK)
			x->err = gerr;
		x->done = true;
		if (x != &w)
			pthread_cond_signal(&x->cv);
		if (x == last)
		{
			db->wq_head = next;
			if (next == NULL)
				db->wq_tail = NULL;
			else
				pthread_cond_signal(&next->cv);
			break;
		}
		x = next;
	}
	pthread_mutex_unlock(&db->mu);
	pthread_cond_destroy(&w.cv);
	if (rc != SG_OK && err != NULL)
		*err = gerr;
	return rc;
}

sg_code
sg_db_put(sg_db *db, sg_slice key, sg_slice value, sg_err *err)
{
	sg_batch	b;
	sg_code		rc;

	sg_batch_init(&b);
	rc = sg_batch_put(&b, key, value);
	if (rc != SG_OK)
		rc = sg_error(err, rc, "cannot build a write batch");
	else
		rc = sg_db_write(db, &b, err);
	sg_batch_free(&b);
	return rc;
}

sg_code
sg_db_delete(sg_db *db, sg_slice key, sg_err *err)
{
	sg_batch	b;
	sg_code		rc;

	sg_batch_init(&b);
	rc = sg_batch_delete(&b, key);
	if (rc != SG_OK)
		rc = sg_error(err, rc, "cannot build a write batch");
	else
		rc = sg_db_write(db, &b, err);
	sg_batch_free(&b);
	return rc;
}

/* ------------------------------------------------------------------- reads */

/* What a reader pins: memtables and a version. */
typedef struct read_state
{
	db_mem	   *mems[MAX_IMMUTABLES + 1];	/* newest first */
	int			nmems;
	sg_version *v;
	uint64_t	seq;
} read_state;

/* REQUIRES: mu. */
static void
pin(sg_db *db, const sg_db_snapshot *snap, read_state *rs)
{
	rs->nmems = 0;
	rs->mems[rs->nmems++] = db->mem;
	db->mem->refs++;
	for (int i = db->nimm - 1; i >= 0; i--)
	{
		rs->mems[rs->nmems++] = db->imm[i];
		db->imm[i]->refs++;
	}
	rs->v = db->vs->current;
	sg_version_ref(rs->v);
	rs->seq = snap ? snap->seq : db->last_seq;
}

/* REQUIRES: mu. */
static void
unpin(sg_db *db, read_state *rs)
{
	for (int i = 0; i < rs->nmems; i++)
		mem_unref(rs->mems[i]);
	sg_version_unref(rs->v, file_release, db);
	rs->nmems = 0;
	rs->v = NULL;
}

static sg_code
get_pinned(sg_db *db, read_state *rs, sg_slice key, sg_buf *value, sg_err *err)
{
	sg_version *v = rs->v;
	sg_code		rc;

	sg_buf_reset(value);
	for (int i = 0; i < rs->nmems; i++)
	{
		sg_slice	val;
		sg_memtable_result r = sg_memtable_get(&rs->mems[i]->mt, key, rs->seq, &val, NULL);

		if (r == SG_MEMTABLE_FOUND)
		{
			sg_buf_append_slice(value, val);
			return sg_buf_failed(value) ? sg_error(err, SG_NO_MEMORY, "out of memory") : SG_OK;
		}
		if (r == SG_MEMTABLE_DELETED)
			return SG_NOT_FOUND;
	}

	/* level 0: files may overlap; the newest version among them wins */
	{
		uint64_t	best_seq = 0;
		bool		found = false;
		sg_value_type best_type = SG_TYPE_DELETE;
		sg_buf		tmp = SG_BUF_INIT;

		for (size_t i = 0; i < v->nfiles[0]; i++)
		{
			sg_file_meta *f = v->files[0][i];
			sg_table_reader *r;
			sg_value_type type;
			uint64_t	fseq;

			if (sg_slice_compare(key, sg_file_meta_smallest_user(f)) < 0 ||
				sg_slice_compare(key, sg_file_meta_largest_user(f)) > 0 ||
				f->smallest_seq > rs->seq)
				continue;
			if ((rc = get_reader(db, f, &r, err)) != SG_OK)
			{
				sg_buf_free(&tmp);
				return rc;
			}
			rc = sg_table_reader_get(r, key, rs->seq, &tmp, &type, &fseq, err);
			if (rc == SG_NOT_FOUND)
				continue;
			if (rc != SG_OK)
			{
				sg_buf_free(&tmp);
				return rc;
			}
			if (!found || fseq > best_seq)
			{
				found = true;
				best_seq = fseq;
				best_type = type;
				sg_buf_reset(value);
				sg_buf_append_slice(value, sg_buf_slice(&tmp));
			}
		}
		sg_buf_free(&tmp);
		if (found)
		{
			if (best_type == SG_TYPE_DELETE)
				return SG_NOT_FOUND;
			return sg_buf_failed(value) ? sg_error(err, SG_NO_MEMORY, "out of memory") : SG_OK;
		}
	}

	for (int l = 1; l < SG_NUM_LEVELS; l++)
	{
		long		idx = sg_version_find_file(v, l, key);
		sg_table_reader *r;
		sg_value_type type;

		if (idx < 0)
			continue;
		if ((rc = get_reader(db, v->files[l][idx], &r, err)) != SG_OK)
			return rc;
		rc = sg_table_reader_get(r, key, rs->seq, value, &type, NULL, err);
		if (rc == SG_NOT_FOUND)
			continue;
		if (rc != SG_OK)
			return rc;
		return type == SG_TYPE_DELETE ? SG_NOT_FOUND : SG_OK;
	}
	return SG_NOT_FOUND;
}

sg_code
sg_db_get(sg_db *db, sg_slice key, const sg_db_snapshot *snap, sg_buf *value, sg_err *err)
{
	read_state	rs;
	sg_code		rc;

	pthread_mutex_lock(&db->mu);
	pin(db, snap, &rs);
	pthread_mutex_unlock(&db->mu);
	rc = get_pinned(db, &rs, key, value, err);
	pthread_mutex_lock(&db->mu);
	unpin(db, &rs);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

const sg_db_snapshot *
sg_db_snapshot_acquire(sg_db *db)
{
	sg_db_snapshot *s = malloc(sizeof(*s));

	if (s == NULL)
		return NULL;
	pthread_mutex_lock(&db->mu);
	s->seq = db->last_seq;
	s->next = &db->snapshots;
	s->prev = db->snapshots.prev;
	s->prev->next = s;
	db->snapshots.prev = s;
	pthread_mutex_unlock(&db->mu);
	return s;
}

void
sg_db_snapshot_release(sg_db *db, const sg_db_snapshot *snap)
{
	sg_db_snapshot *s = (sg_db_snapshot *) snap;

	if (s == NULL)
		return;
	pthread_mutex_lock(&db->mu);
	s->prev->next = s->next;
	s->next->prev = s->prev;
	pthread_mutex_unlock(&db->mu);
	free(s);
}

uint64_t
sg_db_snapshot_sequence(const sg_db_snapshot *snap)
{
	return snap->seq;
}

/* An iterator that owns a read_state and releases it when destroyed. */
typedef struct db_iter
{
	sg_iter		base;
	sg_iter    *inner;
	sg_db	   *db;
	read_state	rs;
} db_iter;

static bool
dbi_valid(sg_iter *it)
{
	return sg_iter_valid(((db_iter *) it)->inner);
}
static void
dbi_seek_to_first(sg_iter *it)
{
	sg_iter_seek_to_first(((db_iter *) it)->inner);
}
static void
dbi_seek(sg_iter *it, sg_slice t)
{
	sg_iter_seek(((db_iter *) it)->inner, t);
}
static void
dbi_next(sg_iter *it)
{
	sg_iter_next(((db_iter *) it)->inner);
}
static sg_slice
dbi_key(sg_iter *it)
{
	return sg_iter_key(((db_iter *) it)->inner);
}
static sg_slice
dbi_value(sg_iter *it)
{
	return sg_iter_value(((db_iter *) it)->inner);
}
static sg_code
dbi_status(sg_iter *it, sg_err *err)
{
	return sg_iter_status(((db_iter *) it)->inner, err);
}
static void
dbi_destroy(sg_iter *it)
{
	db_iter    *d = (db_iter *) it;

	sg_iter_destroy(d->inner);
	pthread_mutex_lock(&d->db->mu);
	unpin(d->db, &d->rs);
	pthread_mutex_unlock(&d->db->mu);
	free(d);
}

static const sg_iter_ops db_iter_ops = {
	dbi_valid, dbi_seek_to_first, dbi_seek, dbi_next, dbi_key, dbi_value, dbi_status,
	dbi_destroy, NULL, NULL
};

static sg_iter *
make_iter(sg_db *db, const sg_db_snapshot *snap, bool versions)
{
	db_iter    *d = calloc(1, sizeof(*d));
	sg_iter   **children;
	int			n = 0;
	size_t		total;

	if (d == NULL)
		return sg_iter_error(SG_NO_MEMORY, "out of memory creating an iterator");
	d->base.ops = &db_iter_ops;
	d->db = db;
	pthread_mutex_lock(&db->mu);
	pin(db, snap, &d->rs);
	pthread_mutex_unlock(&db->mu);
	total = (size_t) d->rs.nmems + sg_version_total_files(d->rs.v);
	children = calloc(total, sizeof(sg_iter *));
	if (children != NULL)
	{
		for (int i = 0; i < d->rs.nmems; i++)
			children[n++] = sg_memtable_iter(&d->rs.mems[i]->mt);
		for (int l = 0; l < SG_NUM_LEVELS; l++)
			for (size_t i = 0; i < d->rs.v->nfiles[l]; i++)
				children[n++] = table_iter(db, d->rs.v->files[l][i]);
	}
	sg_iter    *merged = children ? sg_merge_iter_new(children, n)
		: sg_iter_error(SG_NO_MEMORY, "out of memory creating an iterator");

	free(children);
	d->inner = versions ? sg_versions_iter_new(merged, d->rs.seq)
		: sg_view_iter_new(merged, d->rs.seq);
	return &d->base;
}

sg_iter *
sg_db_iter(sg_db *db, const sg_db_snapshot *snap)
{
	return make_iter(db, snap, false);
}

sg_iter *
sg_db_versions_iter(sg_db *db, const sg_db_snapshot *snap)
{
	return make_iter(db, snap, true);
}

/* -------------------------------------------------------------- background */

/* REQUIRES: mu (released while the table is written). Flush imm[0]. */
static void
flush_oldest(sg_db *db)
{
	db_mem	   *m = db->imm[0];
	sg_flush_job job;
	sg_version_edit e;
	sg_job_stats js;
	sg_err		err;
	sg_code		rc;
	sg_iter    *it;

	memset(&job, 0, sizeof(job));
	job.env = db->env;
	job.dir = db->dir;
	job.table_opts = &db->topts;
	job.file_number = sg_vset_new_file_number(db->vs);
	sg_version_edit_init(&e);
	sg_err_clear(&err);
	pthread_mutex_unlock(&db->mu);

	it = sg_memtable_iter(&m->mt);
	job.source = it;
	rc = sg_flush_run(&job, &e, &js, &err);
	sg_iter_destroy(it);

	pthread_mutex_lock(&db->mu);
	if (rc == SG_OK)
	{
		sg_version_edit_set_log_number(&e, m->end_lsn);
		sg_version_edit_set_last_sequence(&e, db->last_seq);
		rc = sg_vset_log_and_apply(db->vs, &e, &err);
	}
	sg_version_edit_free(&e);
	if (rc != SG_OK)
	{
		poison(db, &err);
		return;
	}
	db->st.flushes++;
	db->st.flush_bytes += js.bytes_written;
	memmove(&db->imm[0], &db->imm[1], (size_t) (db->nimm - 1) * sizeof(db_mem *));
	db->nimm--;
	mem_unref(m);

	uint64_t	lsn = db->vs->log_number;

	pthread_mutex_unlock(&db->mu);
	if (sg_wal_delete_below(db->wal, lsn, NULL, &err) != SG_OK)
		db_log(db, "%s: could not delete old WAL segments: %s", db->dir, err.msg);
	pthread_mutex_lock(&db->mu);
	pthread_cond_broadcast(&db->done_cv);
	pthread_cond_broadcast(&db->bg_cv);
}

static void *
flush_main(void *arg)
{
	sg_db	   *db = arg;

	pthread_mutex_lock(&db->mu);
	for (;;)
	{
		while (!db->shutting_down && (db->nimm == 0 || db->poisoned))
			pthread_cond_wait(&db->bg_cv, &db->mu);
		if (db->shutting_down)
			break;
		flush_oldest(db);
	}
	pthread_mutex_unlock(&db->mu);
	return NULL;
}

/*
 * REQUIRES: mu, !db->compacting (released while files are written). Run
 * one compaction of pick and install it. Returns the job's code.
 */
static sg_code
run_compaction(sg_db *db, sg_compaction_pick *pick, bool manual, sg_err *err)
{
	sg_version *v = db->vs->current;
	sg_version_edit e;
	sg_job_stats js;
	uint64_t   *snaps = NULL;
	size_t		nsnaps = 0;
	sg_code		rc = SG_OK;

	db->compacting = true;
	sg_version_ref(v);
	for (sg_db_snapshot *s = db->snapshots.next; s != &db->snapshots; s = s->next)
		nsnaps++;
	if (nsnaps > 0 && (snaps = malloc(nsnaps * sizeof(uint64_t))) == NULL)
		rc = sg_error(err, SG_NO_MEMORY, "out of memory starting a compaction");
	nsnaps = 0;
	if (snaps != NULL)
		for (sg_db_snapshot *s = db->snapshots.next; s != &db->snapshots; s = s->next)
			snaps[nsnaps++] = s->seq;
	sg_version_edit_init(&e);
	memset(&js, 0, sizeof(js));
	pthread_mutex_unlock(&db->mu);

	if (rc == SG_OK && pick->trivial_move && !manual)
		rc = sg_compact_trivial_move(pick, &e, err);
	else if (rc == SG_OK)
	{
		sg_compact_job job;

		memset(&job, 0, sizeof(job));
		job.env = db->env;
		job.dir = db->dir;
		job.table_opts = &db->topts;
		job.pick = pick;
		job.version = v;
		job.target_file_size = db->o.target_file_size;
		job.snapshots = snaps;
		job.nsnapshots = nsnaps;
		job.filter = db->o.filter;
		job.filter_arg = db->o.filter_arg;
		job.open_table = open_table_cb;
		job.open_arg = db;
		job.new_file = new_file_cb;
		job.new_file_arg = db;
		rc = sg_compact_run(&job, &e, &js, err);
	}

	pthread_mutex_lock(&db->mu);
	if (rc == SG_OK)
	{
		rc = sg_vset_log_and_apply(db->vs, &e, err);
		if (rc != SG_OK)
			poison(db, err);
	}
	else if (err != NULL && err->sync_failed)
		poison(db, err);
	if (rc == SG_OK)
	{
		if (pick->trivial_move && !manual)
			db->st.trivial_moves++;
		else
		{
			db->st.compactions++;
			db->st.compaction_bytes_read += js.bytes_read;
			db->st.compaction_bytes_written += js.bytes_written;
		}
	}
	sg_version_edit_free(&e);
	sg_version_unref(v, file_release, db);
	free(snaps);
	db->compacting = false;
	pthread_cond_broadcast(&db->done_cv);
	pthread_cond_broadcast(&db->bg_cv);
	return rc;
}

static void *
compact_main(void *arg)
{
	sg_db	   *db = arg;

	pthread_mutex_lock(&db->mu);
	for (;;)
	{
		sg_compaction_pick pick;
		sg_err		err;
		sg_code		rc = SG_NOT_FOUND;

		if (db->shutting_down)
			break;
		if (!db->poisoned && !db->compacting && !db->compaction_failed &&
			!db->o.disable_auto_compaction)
			rc = sg_pick_compaction(db->vs->current, &db->popts, &pick, &err);
		if (rc == SG_NOT_FOUND)
		{
			pthread_cond_wait(&db->bg_cv, &db->mu);
			continue;
		}
		if (rc == SG_OK)
		{
			rc = run_compaction(db, &pick, false, &err);
			sg_compaction_pick_free(&pick);
		}
		if (rc != SG_OK)
		{
			/* a corrupt input must not make us spin: stop compacting */
			db->compaction_failed = true;
			db_log(db, "%s: compaction failed, automatic compaction stopped: %s",
				   db->dir, err.msg);
		}
	}
	pthread_mutex_unlock(&db->mu);
	return NULL;
}

sg_code
sg_db_flush(sg_db *db, sg_err *err)
{
	sg_code		rc = sg_db_write(db, NULL, err);

	if (rc != SG_OK)
		return rc;
	pthread_mutex_lock(&db->mu);
	while (db->nimm > 0 && !db->poisoned)
		pthread_cond_wait(&db->done_cv, &db->mu);
	rc = db->poisoned ? poisoned_error(db, err) : SG_OK;
	pthread_mutex_unlock(&db->mu);
	return rc;
}

sg_code
sg_db_compact_range(sg_db *db, const sg_slice *begin, const sg_slice *end, sg_err *err)
{
	sg_code		rc;
	int			deepest = 1;

	if ((rc = sg_db_flush(db, err)) != SG_OK)
		return rc;
	pthread_mutex_lock(&db->mu);
	for (int l = 1; l < SG_NUM_LEVELS; l++)
	{
		sg_file_meta **files;
		size_t		n;

		if (sg_version_overlapping(db->vs->current, l, begin, end, &files, &n, err) != SG_OK)
		{
			pthread_mutex_unlock(&db->mu);
			return err ? err->code : SG_NO_MEMORY;
		}
		free(files);
		if (n > 0)
			deepest = l;
	}
	/*
	 * Rewrite the deepest level too (into the next one), so that data
	 * already at the bottom gets its tombstones and dead versions dropped;
	 * level 6 cannot move further and is only rewritten when data above
	 * it is merged in.
	 */
	if (deepest < SG_NUM_LEVELS - 1)
		deepest++;
	for (int l = 0; l < deepest && rc == SG_OK; l++)
	{
		sg_compaction_pick pick;

		while (db->compacting)
			pthread_cond_wait(&db->done_cv, &db->mu);
		if (db->poisoned)
		{
			rc = poisoned_error(db, err);
			break;
		}
		rc = sg_pick_range(db->vs->current, l, begin, end, &pick, err);
		if (rc == SG_NOT_FOUND)
		{
			rc = SG_OK;
			continue;
		}
		if (rc == SG_OK)
			rc = run_compaction(db, &pick, true, err);
		sg_compaction_pick_free(&pick);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

void
sg_db_get_stats(sg_db *db, sg_db_stats *out)
{
	sg_wal_stats ws;

	sg_wal_get_stats(db->wal, &ws);
	pthread_mutex_lock(&db->mu);
	*out = db->st;
	out->wal_bytes = ws.bytes_written;
	out->wal_appends = ws.appends;
	out->wal_syncs = ws.syncs;
	out->last_sequence = db->last_seq;
	out->immutables = db->nimm;
	for (int l = 0; l < SG_NUM_LEVELS; l++)
	{
		out->level_files[l] = db->vs->current->nfiles[l];
		out->level_bytes[l] = sg_version_level_bytes(db->vs->current, l);
	}
	pthread_mutex_unlock(&db->mu);
}

/* ------------------------------------------------------------ open / close */

void
sg_db_options_init(sg_db_options *o)
{
	memset(o, 0, sizeof(*o));
	o->create_if_missing = true;
	o->wal_sync = SG_WAL_SYNC_ALWAYS;
	o->wal_sync_interval_ms = 100;
	o->memtable_size = 4 << 20;
	o->max_immutables = 2;
	o->l0_trigger = 4;
	o->l1_target_bytes = UINT64_C(64) << 20;
	o->level_multiplier = 10;
	o->target_file_size = 2 << 20;
	o->block_size = 4096;
	o->codec = SG_CODEC_LZ4;
	o->bloom_bits_per_key = 10;
}

/* Recovery: WAL records go into db->mem, flushed to L0 when it fills. */
typedef struct replay_ctx
{
	sg_db	   *db;
	uint64_t	max_seq;
	uint64_t	prev_lsn;
} replay_ctx;

/* Recovery-time flush of db->mem to L0 (single-threaded, no mu needed). */
static sg_code
recovery_flush(sg_db *db, sg_err *err)
{
	sg_flush_job job;
	sg_version_edit e;
	sg_iter    *it;
	sg_code		rc;

	memset(&job, 0, sizeof(job));
	job.env = db->env;
	job.dir = db->dir;
	job.table_opts = &db->topts;
	job.file_number = sg_vset_new_file_number(db->vs);
	it = sg_memtable_iter(&db->mem->mt);
	job.source = it;
	sg_version_edit_init(&e);
	rc = sg_flush_run(&job, &e, NULL, err);
	sg_iter_destroy(it);
	if (rc == SG_OK)
	{
		sg_version_edit_set_log_number(&e, db->mem->end_lsn);
		sg_version_edit_set_last_sequence(&e, db->last_seq);
		rc = sg_vset_log_and_apply(db->vs, &e, err);
	}
	sg_version_edit_free(&e);
	if (rc == SG_OK)
	{
		db_mem	   *n = mem_new(db->o.memtable_size, err);

		if (n == NULL)
			return SG_NO_MEMORY;
		n->end_lsn = db->mem->end_lsn;
		mem_unref(db->mem);
		db->mem = n;
	}
	return rc;
}

static sg_code
replay_record(void *arg, uint64_t end_lsn, sg_slice record, sg_err *err)
{
	replay_ctx *c = arg;
	sg_db	   *db = c->db;
	char		what[PATH_LEN + 64];
	sg_code		rc;

	snprintf(what, sizeof(what), "%s: WAL record ending at LSN %llu", db->wal_dir,
			 (unsigned long long) end_lsn);
	if ((rc = sg_batch_validate(record, what, err)) != SG_OK)
		return rc;
	if ((uint64_t) record.len * 2 + 65536 > mem_room(db->mem) &&
		sg_memtable_entries(&db->mem->mt) > 0)
	{
		if ((rc = recovery_flush(db, err)) != SG_OK)
			return rc;
	}
	if ((uint64_t) record.len * 2 + 65536 > mem_room(db->mem))
	{
		/* one record larger than a memtable: give it one of its own */
		db_mem	   *n = mem_new((size_t) record.len * 4 + 65536 + db->o.memtable_size, err);

		if (n == NULL)
			return SG_NO_MEMORY;
		n->end_lsn = db->mem->end_lsn;
		mem_unref(db->mem);
		db->mem = n;
	}
	if ((rc = mem_apply(db->mem, record, what, &c->max_seq, err)) != SG_OK)
	{
		if (rc == SG_INVALID_ARGUMENT)
			rc = sg_error(err, SG_CORRUPTION, "%s: %s", what, err ? err->msg : "bad entry");
		return rc;
	}
	db->mem->end_lsn = end_lsn;
	if (c->max_seq > db->last_seq)
		db->last_seq = c->max_seq;
	return SG_OK;
}

static void
db_free(sg_db *db)
{
	db->closing = true;
	for (int i = 0; i < db->nimm; i++)
		mem_unref(db->imm[i]);
	mem_unref(db->mem);
	sg_vset_close(db->vs);
	pthread_mutex_destroy(&db->mu);
	pthread_mutex_destroy(&db->cache_mu);
	pthread_cond_destroy(&db->bg_cv);
	pthread_cond_destroy(&db->done_cv);
	free(db->dir);
	free(db->wal_dir);
	free(db);
}

sg_code
sg_db_open(const char *dir, const sg_db_options *opts, sg_db **out, sg_err *err)
{
	sg_db	   *db = calloc(1, sizeof(*db));
	sg_vset_options vo;
	sg_wal_options wo;
	sg_wal_replay_result res;
	replay_ctx	rc_ctx;
	sg_code		rc;

	*out = NULL;
	if (db == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory opening %s", dir);
	if (opts != NULL)
		db->o = *opts;
	else
		sg_db_options_init(&db->o);
	db->env = db->o.env ? db->o.env : sg_env_posix();
	if (db->o.memtable_size < 65536)
		db->o.memtable_size = 65536;
	if (db->o.max_immutables < 1)
		db->o.max_immutables = 1;
	if (db->o.max_immutables > MAX_IMMUTABLES - 1)
		db->o.max_immutables = MAX_IMMUTABLES - 1;
	if (db->o.target_file_size == 0)
		db->o.target_file_size = 2 << 20;
	sg_table_options_init(&db->topts);
	if (db->o.block_size)
		db->topts.block_size = db->o.block_size;
	db->topts.codec = db->o.codec;
	db->topts.bloom_bits_per_key = db->o.bloom_bits_per_key;
	sg_picker_options_init(&db->popts);
	if (db->o.l0_trigger > 0)
		db->popts.l0_trigger = db->o.l0_trigger;
	if (db->o.l1_target_bytes > 0)
		db->popts.l1_target_bytes = db->o.l1_target_bytes;
	if (db->o.level_multiplier > 1)
		db->popts.level_multiplier = db->o.level_multiplier;
	pthread_mutex_init(&db->mu, NULL);
	pthread_mutex_init(&db->cache_mu, NULL);
	pthread_cond_init(&db->bg_cv, NULL);
	pthread_cond_init(&db->done_cv, NULL);
	db->snapshots.next = db->snapshots.prev = &db->snapshots;
	db->dir = strdup(dir);
	db->wal_dir = malloc(strlen(dir) + 8);
	if (db->dir == NULL || db->wal_dir == NULL)
	{
		db_free(db);
		return sg_error(err, SG_NO_MEMORY, "out of memory opening %s", dir);
	}
	sprintf(db->wal_dir, "%s/wal", dir);

	memset(&vo, 0, sizeof(vo));
	vo.create_if_missing = db->o.create_if_missing;
	vo.max_manifest_bytes = db->o.max_manifest_bytes;
	vo.release = file_release;
	vo.release_arg = db;
	if ((rc = sg_vset_open(db->env, dir, &vo, &db->vs, err)) != SG_OK)
		goto fail;
	if (db->vs->replay_torn_tail)
		db_log(db, "%s: dropped a torn last MANIFEST record", dir);
	db->last_seq = db->vs->last_sequence;
	if ((db->mem = mem_new(db->o.memtable_size, err)) == NULL)
	{
		rc = SG_NO_MEMORY;
		goto fail;
	}
	db->mem->end_lsn = db->vs->log_number;

	/* WAL replay after the flushed LSN; a torn tail is cut */
	memset(&rc_ctx, 0, sizeof(rc_ctx));
	rc_ctx.db = db;
	rc = sg_wal_replay(db->env, db->wal_dir, db->vs->log_number, true, replay_record,
					   &rc_ctx, &res, err);
	if (rc != SG_OK)
		goto fail;
	if (res.torn_tail)
		db_log(db, "%s", res.torn_msg);
	db->vs->last_sequence = db->last_seq;

	memset(&wo, 0, sizeof(wo));
	wo.sync_mode = db->o.wal_sync == SG_WAL_SYNC_ALWAYS ? SG_WAL_SYNC_OFF : db->o.wal_sync;
	wo.sync_interval_ms = db->o.wal_sync_interval_ms;
	wo.segment_size = db->o.wal_segment_size;
	wo.min_lsn = db->vs->log_number > res.end_lsn ? db->vs->log_number : res.end_lsn;
	if ((rc = sg_wal_open(db->env, db->wal_dir, &wo, &db->wal, err)) != SG_OK)
		goto fail;

	/* orphans: files no live state names (nothing is in flight yet) */
	{
		char	  **names;
		size_t		n;

		if (sg_list_orphans(db->env, dir, db->vs->current, db->vs->manifest_number,
							UINT64_MAX, &names, &n, err) == SG_OK)
		{
			for (size_t i = 0; i < n; i++)
			{
				char		path[PATH_LEN];

				snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
				db->env->ops->unlink(db->env, path, NULL);
			}
			if (n > 0)
				db_log(db, "%s: removed %zu orphan file(s)", dir, n);
			sg_env_free_names(names, n);
		}
	}

	if (pthread_create(&db->flush_thread, NULL, flush_main, db) != 0)
	{
		rc = sg_error(err, SG_NO_MEMORY, "cannot start the flush thread");
		goto fail;
	}
	if (pthread_create(&db->compact_thread, NULL, compact_main, db) != 0)
	{
		pthread_mutex_lock(&db->mu);
		db->shutting_down = true;
		pthread_cond_broadcast(&db->bg_cv);
		pthread_mutex_unlock(&db->mu);
		pthread_join(db->flush_thread, NULL);
		rc = sg_error(err, SG_NO_MEMORY, "cannot start the compaction thread");
		goto fail;
	}
	db->threads_started = true;
	*out = db;
	return SG_OK;

fail:
	if (db->wal != NULL)
		sg_wal_close(db->wal, NULL);
	db_free(db);
	return rc;
}

sg_code
sg_db_close(sg_db *db, sg_err *err)
{
	sg_code		rc = SG_OK;

	if (db == NULL)
		return SG_OK;
	pthread_mutex_lock(&db->mu);
	db->shutting_down = true;
	pthread_cond_broadcast(&db->bg_cv);
	pthread_mutex_unlock(&db->mu);
	if (db->threads_started)
	{
		pthread_join(db->flush_thread, NULL);
		pthread_join(db->compact_thread, NULL);
	}
	if (db->wal != NULL)
		rc = sg_wal_close(db->wal, err);
	if (rc == SG_OK && db->poisoned)
		rc = poisoned_error(db, err);
	db_free(db);
	return rc;
}
