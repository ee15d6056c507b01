/*
 * wal_segment.c — segment names, listing, header records and durable
 * creation (wal_segment.h).
 */
#include "engine/wal/wal_segment.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/base/coding.h"
#include "engine/wal/log_reader.h"
#include "engine/wal/log_writer.h"

void
sg_wal_segment_path(char *buf, size_t size, const char *dir, uint64_t start_lsn)
{
	snprintf(buf, size, "%s/%016" PRIX64 "%s", dir, start_lsn, SG_WAL_SEG_SUFFIX);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool
sg_wal_parse_segment_name(const char *name, uint64_t *start_lsn)
{
	uint64_t	v = 0;

	if (strlen(name) != SG_WAL_SEG_NAME_LEN ||
		strcmp(name + 16, SG_WAL_SEG_SUFFIX) != 0)
		return false;
	for (int i = 0; i < 16; i++)
	{
		int			d = hexval(name[i]);

		if (d < 0)
			return false;
		v = (v << 4) | (uint64_t) d;
	}
	*start_lsn = v;
	return true;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t	x = *(const uint64_t *) a;
	uint64_t	y = *(const uint64_t *) b;

	return x < y ? -1 : x > y;
}

sg_code
sg_wal_list_segments(sg_env *env, const char *dir, bool remove_tmp,
					 uint64_t **starts, size_t *n, sg_err *err)
{
	char	  **names;
	size_t		count;
	uint64_t   *out;
	size_t		k = 0;
	sg_code		rc;

	rc = env->ops->list_dir(env, dir, &names, &count, err);
	if (rc != SG_OK)
		return rc;
	out = malloc((count ? count : 1) * sizeof(uint64_t));
	if (out == NULL)
	{
		sg_env_free_names(names, count);
		return sg_error(err, SG_NO_MEMORY, "out of memory listing WAL directory \"%s\"", dir);
	}
	for (size_t i = 0; i < count; i++)
	{
		uint64_t	lsn;
		size_t		len = strlen(names[i]);

		if (sg_wal_parse_segment_name(names[i], &lsn))
			out[k++] = lsn;
		else if (remove_tmp && len == SG_WAL_SEG_NAME_LEN + 4 &&
				 strcmp(names[i] + SG_WAL_SEG_NAME_LEN, SG_WAL_TMP_SUFFIX) == 0)
		{
			char		path[4096];

			/* an interrupted roll: the segment never became visible */
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			rc = env->ops->unlink(env, path, err);
			if (rc != SG_OK && rc != SG_NOT_FOUND)
			{
				sg_env_free_names(names, count);
				free(out);
				return rc;
			}
		}
	}
	sg_env_free_names(names, count);
	qsort(out, k, sizeof(uint64_t), cmp_u64);
	if (k == 0)
	{
		free(out);
		out = NULL;
	}
	*starts = out;
	*n = k;
	return SG_OK;
}

void
sg_wal_encode_seg_header(char *dst, const sg_wal_seg_header *h)
{
	sg_encode_fixed32(dst, SG_WAL_MAGIC);
	sg_encode_fixed32(dst + 4, SG_WAL_VERSION);
	sg_encode_fixed64(dst + 8, h->start_lsn);
	sg_encode_fixed64(dst + 16, h->prev_end_lsn);
}

bool
sg_wal_decode_seg_header(const char *src, size_t len, sg_wal_seg_header *h)
{
	if (len != SG_WAL_SEG_HEADER_PAYLOAD ||
		sg_decode_fixed32(src) != SG_WAL_MAGIC ||
		sg_decode_fixed32(src + 4) != SG_WAL_VERSION)
		return false;
	h->start_lsn = sg_decode_fixed64(src + 8);
	h->prev_end_lsn = sg_decode_fixed64(src + 16);
	return h->prev_end_lsn <= h->start_lsn;
}

sg_code
sg_wal_create_segment(sg_env *env, const char *dir, uint64_t start_lsn,
					  uint64_t prev_end_lsn, sg_err *err)
{
	char		path[4096];
	char		tmp[4096 + 8];
	char		payload[SG_WAL_SEG_HEADER_PAYLOAD];
	sg_wal_seg_header h = {start_lsn, prev_end_lsn};
	sg_file    *f;
	sg_log_writer lw;
	sg_code		rc;

	sg_wal_segment_path(path, sizeof(path), dir, start_lsn);
	snprintf(tmp, sizeof(tmp), "%s%s", path, SG_WAL_TMP_SUFFIX);
	sg_wal_encode_seg_header(payload, &h);
	if ((rc = sg_file_open(env, tmp, SG_OPEN_CREATE, &f, err)) != SG_OK)
		return rc;
	sg_log_writer_init(&lw, f, 0);
	rc = sg_log_writer_add(&lw, sg_slice_make(payload, sizeof(payload)), NULL, err);
	sg_log_writer_free(&lw);
	if (rc == SG_OK)
		rc = sg_file_sync(f, err);
	if (rc != SG_OK)
	{
		sg_file_close(f, NULL);
		return rc;
	}
	if ((rc = sg_file_close(f, err)) != SG_OK)
		return rc;
	if ((rc = env->ops->rename(env, tmp, path, err)) != SG_OK)
		return rc;
	return env->ops->sync_dir(env, dir, err);
}

sg_code
sg_wal_read_seg_header(sg_log_reader *r, const char *path, uint64_t start_lsn,
					   sg_wal_seg_header *h, sg_err *err)
{
	sg_slice	rec;
	sg_code		rc = sg_log_reader_next(r, &rec, err);

	if (rc == SG_NOT_FOUND)
		return sg_error(err, SG_CORRUPTION,
						"WAL segment \"%s\" has no header record at offset 0", path);
	if (rc != SG_OK)
		return rc;
	if (sg_log_reader_record_offset(r) != 0 ||
		!sg_wal_decode_seg_header(rec.data, rec.len, h))
		return sg_error(err, SG_CORRUPTION,
						"WAL segment \"%s\": bad segment header at offset 0", path);
	if (h->start_lsn != start_lsn)
		return sg_error(err, SG_CORRUPTION,
						"WAL segment \"%s\": header at offset 0 says it starts at LSN %llu, its name says %llu",
						path, (unsigned long long) h->start_lsn,
						(unsigned long long) start_lsn);
	return SG_OK;
}
