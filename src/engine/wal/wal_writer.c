/*
 * wal_writer.c — the single-threaded segmented WAL writer (wal_writer.h).
 */
#include "engine/wal/wal_writer.h"
#include "engine/base/debug.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/wal/log_reader.h"
#include "engine/wal/log_writer.h"
#include "engine/wal/wal_segment.h"

struct sg_wal_writer
{
	sg_env	   *env;
	char	   *dir;
	sg_wal_writer_state *st;	/* shared, or &own */
	sg_wal_writer_state own;
	sg_file    *file;			/* this handle's descriptor on a segment */
	uint64_t	file_seg;		/* which segment `file` is */
	sg_log_writer log;			/* framing; file and offset reset per append */
};

static sg_code
writer_new(sg_env *env, const char *dir, sg_wal_writer_state *state,
		   sg_wal_writer **out, sg_err *err)
{
	sg_wal_writer *w = calloc(1, sizeof(*w));

	if (w == NULL || (w->dir = strdup(dir)) == NULL)
	{
		free(w);
		return sg_error(err, SG_NO_MEMORY, "out of memory opening WAL \"%s\"", dir);
	}
	w->env = env;
	w->st = state ? state : &w->own;
	sg_log_writer_init(&w->log, NULL, 0);
	*out = w;
	return SG_OK;
}

/* Enter the failed state; every later call is refused. */
static sg_code
writer_fail(sg_wal_writer *w, sg_code rc, sg_err *err)
{
	w->st->failed = true;
	if (err != NULL)
	{
		if (err->sync_failed)
			w->st->sync_failed = true;
		w->st->disk_full = !w->st->sync_failed && err->disk_full;
		snprintf(w->st->failed_msg, sizeof(w->st->failed_msg), "%s", err->msg);
	}
	else
		snprintf(w->st->failed_msg, sizeof(w->st->failed_msg), "%s", sg_code_name(rc));
	return rc;
}

static sg_code
writer_refuse(sg_wal_writer *w, sg_err *err)
{
	sg_code		rc = sg_error(err, SG_IO_ERROR,
							  "WAL \"%s\" is unusable after an earlier failure: %s",
							  w->dir, w->st->failed_msg);

	if (err)
	{
		err->sync_failed = w->st->sync_failed;
		err->disk_full = w->st->disk_full;
	}
	return rc;
}


/* Make sure this handle's descriptor is on the current segment. */
static sg_code
ensure_file(sg_wal_writer *w, sg_err *err)
{
	char		path[4096];
	sg_code		rc;

	if (w->file != NULL && w->file_seg == w->st->seg_start)
		return SG_OK;
	if (w->file != NULL)
	{
		sg_file_close(w->file, NULL);
		w->file = NULL;
	}
	/*
	 * The segment must exist: it was created durably before the state
	 * named it. Recreating a vanished one would acknowledge records in a
	 * file without a header that recovery then rejects.
	 */
	sg_wal_segment_path(path, sizeof(path), w->dir, w->st->seg_start);
	rc = sg_file_open(w->env, path, SG_OPEN_APPEND_EXISTING, &w->file, err);
	if (rc == SG_NOT_FOUND)
		rc = sg_error(err, SG_IO_ERROR, "engine WAL segment \"%s\" has disappeared", path);
	if (rc != SG_OK)
		return rc;
	w->file_seg = w->st->seg_start;
	return SG_OK;
}

/* Switch to a new segment starting at new_start (its header durable). */
static sg_code
start_segment(sg_wal_writer *w, uint64_t new_start, uint64_t prev_end, sg_err *err)
{
	sg_code		rc = sg_wal_create_segment(w->env, w->dir, new_start, prev_end, err);

	if (rc != SG_OK)
		return rc;
	w->st->syncs += 2;			/* the new file and the directory */
	w->st->seg_start = new_start;
	w->st->seg_bytes = SG_WAL_SEG_HEADER_BYTES;
	w->st->synced_lsn = new_start + SG_WAL_SEG_HEADER_BYTES;
	return SG_OK;
}

sg_code
sg_wal_writer_open(sg_env *env, const char *dir, const sg_wal_writer_options *opts,
				   sg_wal_writer_state *state, sg_wal_writer **out, sg_err *err)
{
	sg_wal_writer *w;
	uint64_t   *starts = NULL;
	size_t		n = 0;
	uint64_t	min_lsn = opts ? opts->min_lsn : 0;
	sg_code		rc;

	if ((rc = env->ops->mkdir(env, dir, err)) != SG_OK)
		return rc;
	if ((rc = writer_new(env, dir, state, &w, err)) != SG_OK)
		return rc;
	memset(w->st, 0, sizeof(*w->st));
	w->st->segment_size = (opts && opts->segment_size) ? opts->segment_size
		: SG_WAL_DEFAULT_SEGMENT_SIZE;
	if ((rc = sg_wal_list_segments(env, dir, true, &starts, &n, err)) != SG_OK)
		goto fail;
	if (n == 0)
	{
		rc = start_segment(w, min_lsn, min_lsn, err);
		if (rc != SG_OK)
			goto fail;
	}
	else
	{
		char		path[4096];
		sg_log_reader *r;
		sg_wal_seg_header h;
		uint64_t	size;

		w->st->seg_start = starts[n - 1];
		sg_wal_segment_path(path, sizeof(path), dir, w->st->seg_start);
		if ((rc = ensure_file(w, err)) != SG_OK)
			goto fail;
		if ((rc = sg_log_reader_open(w->file, false, &r, err)) != SG_OK)
			goto fail;
		rc = sg_wal_read_seg_header(r, path, w->st->seg_start, &h, err);
		size = sg_log_reader_file_size(r);
		sg_log_reader_close(r);
		if (rc != SG_OK)
			goto fail;
		w->st->seg_bytes = size;
		/* recovery left the tail as it is on disk; make that certain */
		if ((rc = sg_file_sync(w->file, err)) != SG_OK)
			goto fail;
		w->st->syncs++;
		w->st->synced_lsn = w->st->seg_start + size;
		if (w->st->seg_start + size < min_lsn)
		{
			rc = start_segment(w, min_lsn, w->st->seg_start + size, err);
			if (rc != SG_OK)
				goto fail;
		}
	}
	free(starts);
	*out = w;
	return SG_OK;

fail:
	free(starts);
	sg_wal_writer_close(w, NULL);
	return rc;
}

sg_code
sg_wal_writer_attach(sg_env *env, const char *dir, sg_wal_writer_state *state,
					 sg_wal_writer **out, sg_err *err)
{
	if (state == NULL)
		return sg_error(err, SG_INVALID_ARGUMENT, "attach to WAL \"%s\" needs a state", dir);
	return writer_new(env, dir, state, out, err);
}

sg_code
sg_wal_writer_close(sg_wal_writer *w, sg_err *err)
{
	sg_code		rc = SG_OK;

	if (w == NULL)
		return SG_OK;
	if (w->file != NULL)
		rc = sg_file_close(w->file, err);
	sg_log_writer_free(&w->log);
	free(w->dir);
	free(w);
	return rc;
}

sg_code
sg_wal_writer_sync_begin(sg_wal_writer *w, uint64_t *target, sg_err *err)
{
	sg_code		rc;

	*target = 0;
	if (w->st->failed)
		return writer_refuse(w, err);
	if (w->st->synced_lsn >= w->st->seg_start + w->st->seg_bytes)
		return SG_OK;
	if ((rc = ensure_file(w, err)) != SG_OK)
		return writer_fail(w, rc, err);
	*target = w->st->seg_start + w->st->seg_bytes;
	return SG_OK;
}

sg_code
sg_wal_writer_sync_file(sg_wal_writer *w, sg_err *err)
{
	SG_ASSERT(w->file != NULL);	/* sync_begin opened it */
	sg_code		rc = sg_file_sync(w->file, err);

	if (rc != SG_OK && err)
		err->sync_failed = true;
	return rc;
}

sg_code
sg_wal_writer_sync_end(sg_wal_writer *w, uint64_t target, sg_code sync_rc, sg_err *err)
{
	w->st->syncs++;
	if (sync_rc != SG_OK)
	{
		/* whatever the env said, an fsync failed: never retry it */
		if (err)
			err->sync_failed = true;
		w->st->sync_failed = true;
		return writer_fail(w, sync_rc, err);
	}
	if (target > w->st->synced_lsn)
		w->st->synced_lsn = target;
	return SG_OK;
}

sg_code
sg_wal_writer_sync(sg_wal_writer *w, sg_err *err)
{
	uint64_t	target;
	sg_code		rc = sg_wal_writer_sync_begin(w, &target, err);

	if (rc != SG_OK || target == 0)
		return rc;
	return sg_wal_writer_sync_end(w, target, sg_wal_writer_sync_file(w, err), err);
}

sg_code
sg_wal_writer_roll(sg_wal_writer *w, sg_err *err)
{
	uint64_t	end;
	sg_code		rc;

	if (w->st->failed)
		return writer_refuse(w, err);
	/* the old segment must be complete on disk before a newer one exists */
	if ((rc = sg_wal_writer_sync(w, err)) != SG_OK)
		return rc;
	end = w->st->seg_start + w->st->seg_bytes;
	if ((rc = start_segment(w, end, end, err)) != SG_OK)
		return writer_fail(w, rc, err);
	return SG_OK;
}

/*
 * After an append failed for want of space, and only then: cut the
 * segment back to the end of its last whole record (what a partial write
 * left beyond it was never acknowledged), make that durable and accept
 * appends again. Any other failure, and a failed fsync above all, keeps
 * the writer failed for good. REQUIRES: the caller's append exclusion.
 */
static sg_code
writer_resume(sg_wal_writer *w, sg_err *err)
{
	sg_code		rc;

	if (!w->st->failed || !w->st->disk_full || w->st->sync_failed)
		return writer_refuse(w, err);
	if ((rc = ensure_file(w, err)) != SG_OK)
		return rc;
	if ((rc = sg_file_truncate(w->file, w->st->seg_bytes, err)) != SG_OK)
		return rc;
	if ((rc = sg_file_sync(w->file, err)) != SG_OK)
	{
		/* never retry an fsync: the writer stays failed, and says why */
		if (err)
			err->sync_failed = true;
		w->st->sync_failed = true;
		w->st->disk_full = false;
		snprintf(w->st->failed_msg, sizeof(w->st->failed_msg), "%s", err ? err->msg : "fsync failed");
		return rc;
	}
	w->st->syncs++;
	w->st->failed = false;
	w->st->disk_full = false;
	w->st->failed_msg[0] = '\0';
	return SG_OK;
}

sg_code
sg_wal_writer_append(sg_wal_writer *w, sg_slice record, uint64_t *end_lsn, sg_err *err)
{
	uint64_t	end;
	sg_code		rc;

	/* a full disk may have room again: try to go on (writer_resume) */
	if (w->st->failed && (rc = writer_resume(w, err)) != SG_OK)
		return rc;
	if (w->st->seg_bytes >= w->st->segment_size &&
		(rc = sg_wal_writer_roll(w, err)) != SG_OK)
		return rc;
	if ((rc = ensure_file(w, err)) != SG_OK)
		return writer_fail(w, rc, err);
	w->log.file = w->file;
	w->log.offset = w->st->seg_bytes;
	w->log.failed = false;
	rc = sg_log_writer_add(&w->log, record, &end, err);
	if (rc == SG_NO_MEMORY && !w->log.failed)
		return rc;				/* nothing reached the file: still usable */
	if (rc != SG_OK)
		return writer_fail(w, rc, err);
	w->st->bytes += end - w->st->seg_bytes;
	w->st->seg_bytes = end;
	if (end_lsn)
		*end_lsn = w->st->seg_start + end;
	return SG_OK;
}

sg_code
sg_wal_writer_delete_below(sg_wal_writer *w, uint64_t lsn, uint64_t *deleted, sg_err *err)
{
	uint64_t   *starts;
	size_t		n;
	uint64_t	count = 0;
	sg_code		rc;

	if (deleted)
		*deleted = 0;
	if (w->st->failed)
		return writer_refuse(w, err);
	if ((rc = sg_wal_list_segments(w->env, w->dir, false, &starts, &n, err)) != SG_OK)
		return rc;
	for (size_t i = 0; i + 1 < n; i++)
	{
		char		path[4096];

		/* segment i ends at or before segment i+1 starts */
		if (starts[i] >= w->st->seg_start || starts[i + 1] > lsn)
			break;
		sg_wal_segment_path(path, sizeof(path), w->dir, starts[i]);
		rc = w->env->ops->unlink(w->env, path, err);
		if (rc == SG_NOT_FOUND)
			continue;			/* another process got there first */
		if (rc != SG_OK)
			break;
		count++;
	}
	free(starts);
	if (rc != SG_OK && rc != SG_NOT_FOUND)
		return rc;
	if (count > 0)
	{
		rc = w->env->ops->sync_dir(w->env, w->dir, err);
		w->st->syncs++;
		if (rc != SG_OK)
		{
			if (err)
				err->sync_failed = true;
			w->st->sync_failed = true;
			return writer_fail(w, rc, err);
		}
	}
	if (deleted)
		*deleted = count;
	return SG_OK;
}

uint64_t
sg_wal_writer_end_lsn(const sg_wal_writer *w)
{
	return w->st->seg_start + w->st->seg_bytes;
}

uint64_t
sg_wal_writer_synced_lsn(const sg_wal_writer *w)
{
	return w->st->synced_lsn;
}

const sg_wal_writer_state *
sg_wal_writer_get_state(const sg_wal_writer *w)
{
	return w->st;
}
