/*
 * wal.c — group commit and sync policies over the single-threaded WAL
 * writer (wal.h).
 *
 * Invariants (all under wal->mu):
 *  - requests are served in queue order; only the thread whose request is
 *    at the head (the leader) calls into the writer, and it keeps its
 *    request at the head until its whole group is finished;
 *  - written_lsn / durable_lsn / stats are copies the leader publishes
 *    after each group, so readers never look at the writer while a leader
 *    is using it.
 */
#include "engine/wal/wal.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum req_kind
{
	REQ_APPEND,
	REQ_SYNC,
	REQ_DELETE
} req_kind;

typedef struct wal_req
{
	req_kind	kind;
	sg_slice	rec;			/* REQ_APPEND */
	bool		want_sync;		/* must be durable before it is done */
	uint64_t	delete_lsn;		/* REQ_DELETE */
	uint64_t	lsn;			/* out: end LSN of the appended record */
	uint64_t	deleted;		/* out: segments removed */
	bool		done;
	sg_code		rc;
	sg_err		local;			/* the leader fills this in */
	pthread_cond_t cv;
	struct wal_req *next;
} wal_req;

struct sg_wal
{
	sg_wal_writer *w;
	sg_wal_options opts;
	pthread_mutex_t mu;
	wal_req    *head;
	wal_req    *tail;
	bool		failed;
	sg_err		fail_err;
	uint64_t	written_lsn;
	uint64_t	durable_lsn;
	sg_wal_stats stats;
	/* the SG_WAL_SYNC_INTERVAL thread */
	pthread_t	syncer;
	bool		has_syncer;
	bool		stop;
	pthread_cond_t stop_cv;
};

/*
 * Every field a request starts with. Not a memset of the whole struct: an
 * append is on every write's path and sg_err carries a 512-byte message.
 */
static void
req_init(wal_req *req, req_kind kind)
{
	req->kind = kind;
	req->rec = sg_slice_make(NULL, 0);
	req->want_sync = false;
	req->delete_lsn = 0;
	req->lsn = 0;
	req->deleted = 0;
	sg_err_clear(&req->local);
}

static void
copy_err(sg_err *dst, const sg_err *src)
{
	if (dst != NULL)
		*dst = *src;
}

/* Run one group: head .. last. REQUIRES: caller is the leader, mu not held. */
static void
run_group(sg_wal *wal, wal_req *head, wal_req *last, bool already_failed,
		  const sg_err *fail_err)
{
	bool		need_sync = false;
	bool		broken = already_failed;
	sg_err		sync_err;

	sg_err_clear(&sync_err);
	for (wal_req *r = head;; r = r->next)
	{
		sg_err_clear(&r->local);
		if (broken)
		{
			r->local = *fail_err;
			r->rc = fail_err->code != SG_OK ? fail_err->code : SG_IO_ERROR;
		}
		else if (r->kind == REQ_APPEND)
		{
			r->rc = sg_wal_writer_append(wal->w, r->rec, &r->lsn, &r->local);
			/* an error here left the writer failed, unless it was memory */
			if (r->rc != SG_OK && sg_wal_writer_get_state(wal->w)->failed)
			{
				broken = true;
				fail_err = &r->local;
			}
		}
		else if (r->kind == REQ_DELETE)
		{
			r->rc = sg_wal_writer_delete_below(wal->w, r->delete_lsn, &r->deleted, &r->local);
			if (r->rc != SG_OK && sg_wal_writer_get_state(wal->w)->failed)
			{
				broken = true;
				fail_err = &r->local;
			}
		}
		else
			r->rc = SG_OK;
		if (r->want_sync)
			need_sync = true;
		if (r == last)
			break;
	}
	if (need_sync && !broken)
	{
		if (sg_wal_writer_sync(wal->w, &sync_err) != SG_OK)
		{
			for (wal_req *r = head;; r = r->next)
			{
				if (r->want_sync && r->rc == SG_OK)
				{
					r->rc = sync_err.code;
					r->local = sync_err;
				}
				if (r == last)
					break;
			}
		}
	}
}

/* Queue req and wait until it is done, leading a group if it comes to that. */
static sg_code
submit(sg_wal *wal, wal_req *req, sg_err *err)
{
	wal_req    *last;
	bool		was_failed;
	sg_err		fail_copy;

	req->done = false;
	req->next = NULL;
	req->rc = SG_OK;
	pthread_cond_init(&req->cv, NULL);
	pthread_mutex_lock(&wal->mu);
	if (wal->failed)
	{
		copy_err(err, &wal->fail_err);
		pthread_mutex_unlock(&wal->mu);
		pthread_cond_destroy(&req->cv);
		return wal->fail_err.code != SG_OK ? wal->fail_err.code : SG_IO_ERROR;
	}
	if (wal->tail)
		wal->tail->next = req;
	else
		wal->head = req;
	wal->tail = req;
	while (!req->done && wal->head != req)
		pthread_cond_wait(&req->cv, &wal->mu);
	if (req->done)
	{
		sg_code		rc = req->rc;

		if (rc != SG_OK)
			copy_err(err, &req->local);
		pthread_mutex_unlock(&wal->mu);
		pthread_cond_destroy(&req->cv);
		return rc;
	}

	/* leader: take everything queued so far */
	last = wal->tail;
	was_failed = wal->failed;
	if (was_failed)
		fail_copy = wal->fail_err;
	else
		sg_err_clear(&fail_copy);
	pthread_mutex_unlock(&wal->mu);

	run_group(wal, req, last, was_failed, &fail_copy);

	const sg_wal_writer_state *st = sg_wal_writer_get_state(wal->w);
	uint64_t	nappend = 0;

	pthread_mutex_lock(&wal->mu);
	wal->written_lsn = sg_wal_writer_end_lsn(wal->w);
	wal->durable_lsn = sg_wal_writer_synced_lsn(wal->w);
	wal->stats.bytes_written = st->bytes;
	wal->stats.syncs = st->syncs;
	wal->stats.groups++;
	if (st->failed && !wal->failed)
	{
		wal->failed = true;
		sg_error(&wal->fail_err, SG_IO_ERROR, "WAL is unusable after an earlier failure: %s",
				 st->failed_msg);
		wal->fail_err.sync_failed = st->sync_failed;
	}
	wal->head = last->next;
	if (wal->head == NULL)
		wal->tail = NULL;
	for (wal_req *r = req, *next; r != NULL; r = next)
	{
		bool		end = (r == last);

		next = r->next;
		if (r->kind == REQ_APPEND && r->rc == SG_OK)
			nappend++;
		if (r != req)
		{
			/* the waiter copies r->local into its own err when it wakes */
			r->done = true;
			pthread_cond_signal(&r->cv);
		}
		if (end)
			break;
	}
	wal->stats.appends += nappend;
	if (wal->head != NULL)
		pthread_cond_signal(&wal->head->cv);
	if (req->rc != SG_OK)
		copy_err(err, &req->local);
	pthread_mutex_unlock(&wal->mu);
	pthread_cond_destroy(&req->cv);
	return req->rc;
}

static void *
syncer_main(void *arg)
{
	sg_wal	   *wal = arg;
	uint32_t	ms = wal->opts.sync_interval_ms ? wal->opts.sync_interval_ms : 100;

	pthread_mutex_lock(&wal->mu);
	while (!wal->stop)
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += ms / 1000;
		ts.tv_nsec += (long) (ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L)
		{
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&wal->stop_cv, &wal->mu, &ts);
		if (wal->stop)
			break;
		if (!wal->failed && wal->durable_lsn < wal->written_lsn)
		{
			wal_req		req;

			memset(&req, 0, sizeof(req));
			req.kind = REQ_SYNC;
			req.want_sync = true;
			pthread_mutex_unlock(&wal->mu);
			/* a failure is recorded in wal->failed; appenders will see it */
			(void) submit(wal, &req, NULL);
			pthread_mutex_lock(&wal->mu);
		}
	}
	pthread_mutex_unlock(&wal->mu);
	return NULL;
}

sg_code
sg_wal_open(sg_env *env, const char *dir, const sg_wal_options *opts, sg_wal **out,
			sg_err *err)
{
	sg_wal	   *wal = calloc(1, sizeof(*wal));
	sg_wal_writer_options wo;
	sg_code		rc;

	if (wal == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory opening WAL \"%s\"", dir);
	if (opts)
		wal->opts = *opts;
	wo.segment_size = wal->opts.segment_size;
	wo.min_lsn = wal->opts.min_lsn;
	rc = sg_wal_writer_open(env, dir, &wo, NULL, &wal->w, err);
	if (rc != SG_OK)
	{
		free(wal);
		return rc;
	}
	pthread_mutex_init(&wal->mu, NULL);
	pthread_cond_init(&wal->stop_cv, NULL);
	wal->written_lsn = sg_wal_writer_end_lsn(wal->w);
	wal->durable_lsn = sg_wal_writer_synced_lsn(wal->w);
	wal->stats.syncs = sg_wal_writer_get_state(wal->w)->syncs;
	if (wal->opts.sync_mode == SG_WAL_SYNC_INTERVAL)
	{
		if (pthread_create(&wal->syncer, NULL, syncer_main, wal) != 0)
		{
			sg_wal_writer_close(wal->w, NULL);
			pthread_cond_destroy(&wal->stop_cv);
			pthread_mutex_destroy(&wal->mu);
			free(wal);
			return sg_error(err, SG_IO_ERROR, "could not start the WAL sync thread for \"%s\"",
							dir);
		}
		wal->has_syncer = true;
	}
	*out = wal;
	return SG_OK;
}

sg_code
sg_wal_close(sg_wal *wal, sg_err *err)
{
	sg_code		rc = SG_OK;
	sg_code		rc2;

	if (wal == NULL)
		return SG_OK;
	if (wal->has_syncer)
	{
		pthread_mutex_lock(&wal->mu);
		wal->stop = true;
		pthread_cond_signal(&wal->stop_cv);
		pthread_mutex_unlock(&wal->mu);
		pthread_join(wal->syncer, NULL);
	}
	if (!wal->failed)
		rc = sg_wal_sync(wal, err);
	rc2 = sg_wal_writer_close(wal->w, rc == SG_OK ? err : NULL);
	if (rc == SG_OK)
		rc = rc2;
	pthread_cond_destroy(&wal->stop_cv);
	pthread_mutex_destroy(&wal->mu);
	free(wal);
	return rc;
}

sg_code
sg_wal_append(sg_wal *wal, sg_slice record, uint64_t *lsn, sg_err *err)
{
	wal_req		req;
	sg_code		rc;

	req_init(&req, REQ_APPEND);
	req.rec = record;
	req.want_sync = (wal->opts.sync_mode == SG_WAL_SYNC_ALWAYS);
	rc = submit(wal, &req, err);
	if (rc == SG_OK && lsn)
		*lsn = req.lsn;
	return rc;
}

sg_code
sg_wal_wait_durable(sg_wal *wal, uint64_t lsn, sg_err *err)
{
	wal_req		req;

	pthread_mutex_lock(&wal->mu);
	if (wal->failed)
	{
		sg_code		rc = wal->fail_err.code != SG_OK ? wal->fail_err.code : SG_IO_ERROR;

		copy_err(err, &wal->fail_err);
		pthread_mutex_unlock(&wal->mu);
		return rc;
	}
	if (wal->durable_lsn >= lsn)
	{
		pthread_mutex_unlock(&wal->mu);
		return SG_OK;
	}
	if (lsn > wal->written_lsn)
	{
		uint64_t	w = wal->written_lsn;

		pthread_mutex_unlock(&wal->mu);
		return sg_error(err, SG_INVALID_ARGUMENT,
						"LSN %llu was never written (the WAL ends at %llu)",
						(unsigned long long) lsn, (unsigned long long) w);
	}
	pthread_mutex_unlock(&wal->mu);
	req_init(&req, REQ_SYNC);
	req.want_sync = true;
	return submit(wal, &req, err);
}

sg_code
sg_wal_sync(sg_wal *wal, sg_err *err)
{
	uint64_t	lsn;

	pthread_mutex_lock(&wal->mu);
	lsn = wal->written_lsn;
	pthread_mutex_unlock(&wal->mu);
	return sg_wal_wait_durable(wal, lsn, err);
}

sg_code
sg_wal_delete_below(sg_wal *wal, uint64_t lsn, uint64_t *deleted, sg_err *err)
{
	wal_req		req;
	sg_code		rc;

	req_init(&req, REQ_DELETE);
	req.delete_lsn = lsn;
	rc = submit(wal, &req, err);
	if (deleted)
		*deleted = rc == SG_OK ? req.deleted : 0;
	return rc;
}

void
sg_wal_get_stats(sg_wal *wal, sg_wal_stats *stats)
{
	pthread_mutex_lock(&wal->mu);
	*stats = wal->stats;
	stats->written_lsn = wal->written_lsn;
	stats->durable_lsn = wal->durable_lsn;
	pthread_mutex_unlock(&wal->mu);
}
