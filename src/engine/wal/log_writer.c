/*
 * log_writer.c — framing records into blocks and fragments (log_writer.h,
 * format in log_format.h and README.md).
 */
#include "engine/wal/log_writer.h"

#include "engine/base/coding.h"
#include "engine/base/crc32c.h"
#include "engine/wal/log_format.h"

/* Past this size the scratch buffer is released after use. */
#define SCRATCH_KEEP (1024 * 1024)

static const char zeros[SG_LOG_HEADER_SIZE] = {0};

void
sg_log_writer_init(sg_log_writer *w, sg_file *file, uint64_t offset)
{
	w->file = file;
	w->offset = offset;
	w->failed = false;
	sg_buf_init(&w->scratch);
}

void
sg_log_writer_free(sg_log_writer *w)
{
	sg_buf_free(&w->scratch);
}

uint64_t
sg_log_encode_record(sg_buf *out, uint64_t offset, sg_slice record)
{
	const char *p = record.data;
	size_t		left = record.len;
	bool		first = true;

	/* one fragment at least, so that an empty record is still a record */
	for (;;)
	{
		size_t		in_block = (size_t) (offset % SG_LOG_BLOCK_SIZE);
		size_t		room = SG_LOG_BLOCK_SIZE - in_block;

		if (room < SG_LOG_HEADER_SIZE)
		{
			/* too small for a header: zero-fill and move to the next block */
			sg_buf_append(out, zeros, room);
			offset += room;
			continue;
		}

		size_t		avail = room - SG_LOG_HEADER_SIZE;
		size_t		n = left < avail ? left : avail;
		bool		last = (n == left);
		uint8_t		type;
		char		hdr[SG_LOG_HEADER_SIZE];
		uint32_t	crc;

		if (first && last)
			type = SG_LOG_FULL;
		else if (first)
			type = SG_LOG_FIRST;
		else if (last)
			type = SG_LOG_LAST;
		else
			type = SG_LOG_MIDDLE;

		crc = sg_crc32c(&type, 1);
		crc = sg_crc32c_extend(crc, p, n);
		sg_encode_fixed32(hdr, sg_crc32c_mask(crc));
		hdr[4] = (char) (n & 0xff);
		hdr[5] = (char) (n >> 8);
		hdr[6] = (char) type;
		sg_buf_append(out, hdr, SG_LOG_HEADER_SIZE);
		sg_buf_append(out, p, n);
		offset += SG_LOG_HEADER_SIZE + n;
		p += n;
		left -= n;
		first = false;
		if (last)
			break;
	}
	return offset;
}

sg_code
sg_log_writer_add(sg_log_writer *w, sg_slice record, uint64_t *end_offset, sg_err *err)
{
	uint64_t	end;
	sg_code		rc;

	if (w->failed)
		return sg_error(err, SG_IO_ERROR,
						"log \"%s\": an earlier write failed; no further appends",
						w->file->path);
	sg_buf_reset(&w->scratch);
	end = sg_log_encode_record(&w->scratch, w->offset, record);
	if (sg_buf_failed(&w->scratch))
	{
		sg_buf_free(&w->scratch);
		return sg_error(err, SG_NO_MEMORY,
						"out of memory framing a %zu-byte record for \"%s\"",
						record.len, w->file->path);
	}
	rc = sg_file_append(w->file, w->scratch.data, w->scratch.len, err);
	if (w->scratch.cap > SCRATCH_KEEP)
		sg_buf_free(&w->scratch);
	if (rc != SG_OK)
	{
		w->failed = true;
		return rc;
	}
	w->offset = end;
	if (end_offset)
		*end_offset = end;
	return SG_OK;
}
