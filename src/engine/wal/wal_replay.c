/*
 * wal_replay.c — reading the WAL back after a restart: every record from a
 * start LSN across segments, the torn tail of the newest segment cut off,
 * anything else damaged reported as corruption (wal_writer.h, README.md).
 */
#include "engine/wal/wal_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/wal/log_reader.h"
#include "engine/wal/wal_segment.h"

/* Cut the newest segment to len bytes, durably. */
static sg_code
truncate_segment(sg_env *env, const char *path, uint64_t len, sg_err *err)
{
	sg_file    *f;
	sg_code		rc;

	if ((rc = sg_file_open(env, path, SG_OPEN_APPEND_EXISTING, &f, err)) != SG_OK)
		return rc;
	rc = sg_file_truncate(f, len, err);
	if (rc == SG_OK)
	{
		rc = sg_file_sync(f, err);
		if (rc != SG_OK && err)
			err->sync_failed = true;
	}
	if (rc != SG_OK)
	{
		sg_file_close(f, NULL);
		return rc;
	}
	return sg_file_close(f, err);
}

/*
 * Read one segment. *seg_end gets the LSN just past its last good record.
 */
static sg_code
replay_segment(sg_env *env, const char *dir, uint64_t start, bool newest,
			   bool check_prev, uint64_t prev_end, uint64_t from_lsn,
			   bool truncate_torn_tail, sg_wal_replay_fn fn, void *arg,
			   sg_wal_replay_result *res, uint64_t *seg_end, sg_err *err)
{
	char		path[4096];
	sg_file    *f;
	sg_log_reader *r = NULL;
	sg_wal_seg_header h;
	sg_slice	rec;
	sg_code		rc;

	sg_wal_segment_path(path, sizeof(path), dir, start);
	if ((rc = sg_file_open(env, path, SG_OPEN_READ, &f, err)) != SG_OK)
		return rc;
	if ((rc = sg_log_reader_open(f, !newest, &r, err)) != SG_OK)
		goto done;
	if ((rc = sg_wal_read_seg_header(r, path, start, &h, err)) != SG_OK)
		goto done;
	if (check_prev && h.prev_end_lsn != prev_end)
	{
		rc = sg_error(err, SG_CORRUPTION,
					  "WAL segment \"%s\": header at offset 0 says the previous segment ended at LSN %llu, but it ends at LSN %llu (a segment is missing or damaged)",
					  path, (unsigned long long) h.prev_end_lsn,
					  (unsigned long long) prev_end);
		goto done;
	}
	if (!check_prev && from_lsn < h.prev_end_lsn)
	{
		rc = sg_error(err, SG_CORRUPTION,
					  "WAL records after LSN %llu are needed, but the oldest segment \"%s\" follows one that ended at LSN %llu and was removed",
					  (unsigned long long) from_lsn, path,
					  (unsigned long long) h.prev_end_lsn);
		goto done;
	}
	res->segments++;
	while ((rc = sg_log_reader_next(r, &rec, err)) == SG_OK)
	{
		uint64_t	end = start + sg_log_reader_good_end(r);

		if (end <= from_lsn)
			continue;
		if (fn != NULL && (rc = fn(arg, end, rec, err)) != SG_OK)
			goto done;
		res->records++;
	}
	if (rc != SG_NOT_FOUND)
		goto done;
	rc = SG_OK;
	*seg_end = start + sg_log_reader_good_end(r);

	uint64_t	bad;
	const char *why;

	if (sg_log_reader_torn(r, &bad, &why))
	{
		uint64_t	good = sg_log_reader_good_end(r);
		uint64_t	size = sg_log_reader_file_size(r);

		res->torn_tail = true;
		res->torn_lsn = start + good;
		res->torn_bytes = size - good;
		snprintf(res->torn_msg, sizeof(res->torn_msg),
				 "WAL segment \"%.300s\": torn tail at offset %llu (%s); %s to offset %llu (LSN %llu), dropping %llu bytes",
				 path, (unsigned long long) bad, why,
				 truncate_torn_tail ? "truncated" : "would truncate",
				 (unsigned long long) good, (unsigned long long) (start + good),
				 (unsigned long long) (size - good));
		if (truncate_torn_tail)
		{
			sg_log_reader_close(r);
			r = NULL;
			sg_file_close(f, NULL);
			f = NULL;
			rc = truncate_segment(env, path, good, err);
			if (rc == SG_OK)
				res->truncated = true;
		}
	}

done:
	sg_log_reader_close(r);
	if (f != NULL)
		sg_file_close(f, NULL);
	return rc;
}

sg_code
sg_wal_replay(sg_env *env, const char *dir, uint64_t from_lsn, bool truncate_torn_tail,
			  sg_wal_replay_fn fn, void *arg, sg_wal_replay_result *res, sg_err *err)
{
	uint64_t   *starts;
	size_t		n;
	size_t		first = 0;
	uint64_t	prev_end = 0;
	sg_code		rc;

	memset(res, 0, sizeof(*res));
	rc = env->ops->exists(env, dir, err);
	if (rc == SG_NOT_FOUND)
		return SG_OK;			/* no WAL yet */
	if (rc != SG_OK)
		return rc;
	if ((rc = sg_wal_list_segments(env, dir, false, &starts, &n, err)) != SG_OK)
		return rc;
	/* the newest segment starting at or below from_lsn holds the first record */
	for (size_t i = 0; i < n; i++)
		if (starts[i] <= from_lsn)
			first = i;
	for (size_t i = first; i < n; i++)
	{
		uint64_t	seg_end = 0;

		if (i > first && starts[i] < prev_end)
		{
			rc = sg_error(err, SG_CORRUPTION,
						  "WAL segment starting at LSN %llu overlaps the previous one, which ends at LSN %llu",
						  (unsigned long long) starts[i], (unsigned long long) prev_end);
			break;
		}
		rc = replay_segment(env, dir, starts[i], i == n - 1, i > first, prev_end,
							from_lsn, truncate_torn_tail, fn, arg, res, &seg_end, err);
		if (rc != SG_OK)
			break;
		prev_end = seg_end;
		res->end_lsn = seg_end;
	}
	free(starts);
	return rc;
}
