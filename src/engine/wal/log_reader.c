/*
 * log_reader.c — reading framed records back and telling a torn tail from
 * corruption (log_reader.h; format in log_format.h and README.md).
 */
#include "engine/wal/log_reader.h"

#include <stdio.h>
#include <stdlib.h>

#include "engine/base/coding.h"
#include "engine/base/crc32c.h"
#include "engine/wal/log_format.h"

#define BS SG_LOG_BLOCK_SIZE
#define HS SG_LOG_HEADER_SIZE

struct sg_log_reader
{
	sg_file    *file;			/* not owned */
	bool		tail_must_be_clean;
	uint64_t	file_size;
	char	   *block;			/* the block that holds pos */
	char	   *scan;			/* scratch block for resynchronising */
	uint64_t	block_index;	/* which block is in `block` (UINT64_MAX: none) */
	size_t		block_len;		/* bytes of that block present in the file */
	uint64_t	pos;			/* file offset of the next fragment */
	sg_buf		rec;			/* reassembled record */
	uint64_t	rec_offset;
	uint64_t	good_end;
	bool		done;
	bool		torn;
	uint64_t	bad_offset;
	char		reason[160];
	sg_code		sticky;			/* an error already reported */
	sg_err		sticky_err;
};

/* What check_fragment found at one position. */
typedef enum frag_check
{
	FRAG_OK,
	FRAG_INCOMPLETE,			/* runs past the end of the file */
	FRAG_BAD					/* bad type, length or checksum */
} frag_check;

/*
 * Examine the fragment at offset `at` of a block of which `have` bytes
 * exist in the file. On FRAG_OK *type and *len describe it.
 *
 * The cheap tests come first: a header whose type is not FULL..LAST or
 * whose length does not fit in its block and in the file is rejected
 * before any checksum is computed, so the CRC (cost: the claimed length)
 * is only paid for headers that could be real.
 */
static frag_check
check_fragment(const char *blk, size_t have, size_t at, uint8_t *type,
			   size_t *len, const char **why)
{
	const char *h = blk + at;
	uint32_t	crc;

	if (at + HS > have)
	{
		*why = "incomplete fragment header";
		return FRAG_INCOMPLETE;
	}
	*type = (uint8_t) h[6];
	*len = (size_t) (uint8_t) h[4] | ((size_t) (uint8_t) h[5] << 8);
	if (*type == SG_LOG_ZERO || *type > SG_LOG_MAX_TYPE)
	{
		*why = (*type == SG_LOG_ZERO && *len == 0 && sg_decode_fixed32(h) == 0)
			? "zero-filled fragment header" : "bad fragment type";
		return FRAG_BAD;
	}
	if (at + HS + *len > BS)
	{
		*why = "fragment length crosses its block";
		return FRAG_BAD;
	}
	if (at + HS + *len > have)
	{
		*why = "fragment cut short by the end of the file";
		return FRAG_INCOMPLETE;
	}
	crc = sg_crc32c(h + 6, 1);
	crc = sg_crc32c_extend(crc, h + HS, *len);
	if (crc != sg_crc32c_unmask(sg_decode_fixed32(h)))
	{
		*why = "fragment checksum mismatch";
		return FRAG_BAD;
	}
	return FRAG_OK;
}

static sg_code
fail(sg_log_reader *r, sg_err *err, sg_code code)
{
	r->sticky = code;
	if (err)
		r->sticky_err = *err;
	else
		sg_error(&r->sticky_err, code, "log \"%s\": read failed", r->file->path);
	r->sticky_err.code = code;
	return code;
}

/* Read block index b (as much of it as the file holds) into buf. */
static sg_code
read_block(sg_log_reader *r, uint64_t b, char *buf, size_t *have, sg_err *err)
{
	uint64_t	off = b * BS;
	size_t		want = (size_t) ((r->file_size - off) < BS ? (r->file_size - off) : BS);
	size_t		got;
	sg_code		rc;

	rc = sg_file_pread(r->file, off, buf, want, &got, err);
	if (rc != SG_OK)
		return rc;
	if (got != want)
		return sg_error(err, SG_IO_ERROR,
						"log \"%s\" shrank while being read (offset %llu)",
						r->file->path, (unsigned long long) off);
	*have = want;
	return SG_OK;
}

sg_code
sg_log_reader_open(sg_file *file, bool tail_must_be_clean, sg_log_reader **out,
				   sg_err *err)
{
	sg_log_reader *r = calloc(1, sizeof(*r));
	sg_code		rc;

	if (r == NULL || (r->block = malloc(BS)) == NULL)
	{
		free(r);
		return sg_error(err, SG_NO_MEMORY, "out of memory opening log reader for \"%s\"",
						file->path);
	}
	r->file = file;
	r->tail_must_be_clean = tail_must_be_clean;
	r->block_index = UINT64_MAX;
	sg_buf_init(&r->rec);
	rc = sg_file_size(file, &r->file_size, err);
	if (rc != SG_OK)
	{
		sg_log_reader_close(r);
		return rc;
	}
	*out = r;
	return SG_OK;
}

void
sg_log_reader_close(sg_log_reader *r)
{
	if (r == NULL)
		return;
	sg_buf_free(&r->rec);
	free(r->block);
	free(r->scan);
	free(r);
}

/*
 * Is there a valid fragment anywhere after the bad one at bad_pos? *where
 * gets the offset of the first one found.
 *
 * Every byte position after bad_pos in its block is tried, whatever the bad
 * header claims: its length field is not covered by the checksum, so a
 * damaged length (too short, too long, or running past the end of the
 * file) must not decide where to look, or the records after a damaged
 * length in the file's last block would be taken for a torn tail and
 * dropped. In every later block only offset 0 is tried: the writer starts
 * each block with a fragment header (log_format.h), so a valid record there
 * shows at the block's start.
 *
 * What a genuine torn write leaves after bad_pos is a prefix of the last
 * append (fragments of one record, the payload being the caller's bytes),
 * then the end of the file or zeros (a file extended by the crash; the
 * writer neither preallocates nor reuses log files). Zeros fail at the type
 * byte. Only a payload that itself holds a complete, checksummed log
 * fragment could make a torn tail look like corruption; that errs on the
 * safe side (recovery stops and names the offset).
 *
 * Cost, paid at most once per reader (the outcome ends the read): up to BS
 * positions in the bad block, each rejected by the type byte (one compare)
 * or the length (check_fragment) before a CRC is computed, so zeros and
 * ordinary damage cost a few bytes per position (measured: ~0.05 ms for a
 * zeroed block, ~0.25 ms for a random one). Adversarial bytes can make
 * every other position claim nearly the rest of the block (a position
 * whose type byte is valid gives its successor a length below 1280),
 * bounding the block at ~BS^2/4 CRC bytes: 256 MiB, measured at ~45 ms
 * with the SSE4.2 CRC.
 * Later blocks: one read and at most one CRC of <= BS bytes each, i.e.
 * O(file size) like reading the file.
 * REQUIRES: the block holding bad_pos is loaded in r->block.
 */
static sg_code
valid_data_follows(sg_log_reader *r, uint64_t bad_pos, bool *found,
				   uint64_t *where, sg_err *err)
{
	uint64_t	b = bad_pos / BS;
	size_t		at = (size_t) (bad_pos % BS);
	uint8_t		t;
	size_t		l;
	const char *why;

	*found = false;
	for (size_t p = at + 1; p + HS <= r->block_len; p++)
	{
		uint8_t		type = (uint8_t) r->block[p + 6];

		/* most positions fail here: one compare, before check_fragment */
		if (type == SG_LOG_ZERO || type > SG_LOG_MAX_TYPE)
			continue;
		if (check_fragment(r->block, r->block_len, p, &t, &l, &why) == FRAG_OK)
		{
			*found = true;
			*where = b * BS + p;
			return SG_OK;
		}
	}
	if (r->scan == NULL && (r->scan = malloc(BS)) == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory scanning log \"%s\"",
						r->file->path);
	for (uint64_t nb = b + 1; nb * BS < r->file_size; nb++)
	{
		size_t		have;
		sg_code		rc = read_block(r, nb, r->scan, &have, err);

		if (rc != SG_OK)
			return rc;
		if (check_fragment(r->scan, have, 0, &t, &l, &why) == FRAG_OK)
		{
			*found = true;
			*where = nb * BS;
			return SG_OK;
		}
	}
	return SG_OK;
}

/* A bad or incomplete fragment at bad_pos: torn tail or corruption? */
static sg_code
handle_bad(sg_log_reader *r, uint64_t bad_pos, const char *why, sg_err *err)
{
	bool		found;
	uint64_t	where = 0;
	sg_code		rc;

	rc = valid_data_follows(r, bad_pos, &found, &where, err);
	if (rc != SG_OK)
		return fail(r, err, rc);
	if (found)
	{
		sg_error(err, SG_CORRUPTION,
				 "log \"%s\": corrupt fragment at offset %llu (%s), valid data follows at offset %llu",
				 r->file->path, (unsigned long long) bad_pos, why,
				 (unsigned long long) where);
		return fail(r, err, SG_CORRUPTION);
	}
	if (r->tail_must_be_clean)
	{
		sg_error(err, SG_CORRUPTION,
				 "log \"%s\": torn record at offset %llu (%s) in a file that must be complete",
				 r->file->path, (unsigned long long) bad_pos, why);
		return fail(r, err, SG_CORRUPTION);
	}
	r->done = true;
	r->torn = true;
	r->bad_offset = bad_pos;
	snprintf(r->reason, sizeof(r->reason), "%s", why);
	return SG_NOT_FOUND;
}

static sg_code
sequence_error(sg_log_reader *r, uint64_t pos, const char *what, sg_err *err)
{
	sg_error(err, SG_CORRUPTION, "log \"%s\": %s at offset %llu",
			 r->file->path, what, (unsigned long long) pos);
	return fail(r, err, SG_CORRUPTION);
}

sg_code
sg_log_reader_next(sg_log_reader *r, sg_slice *record, sg_err *err)
{
	bool		in_record = false;
	uint64_t	rec_start = 0;

	if (r->sticky != SG_OK)
	{
		if (err)
			*err = r->sticky_err;
		return r->sticky;
	}
	if (r->done)
		return SG_NOT_FOUND;
	sg_buf_reset(&r->rec);

	for (;;)
	{
		uint64_t	b = r->pos / BS;
		size_t		at = (size_t) (r->pos % BS);
		uint8_t		type = 0;
		size_t		len = 0;
		const char *why;
		frag_check	fc;

		if (r->pos >= r->file_size)
		{
			if (in_record)
			{
				/* nothing follows the end of the file: a torn record */
				if (r->tail_must_be_clean)
					return sequence_error(r, rec_start,
										  "record unfinished at end of a file that must be complete",
										  err);
				r->done = r->torn = true;
				r->bad_offset = rec_start;
				snprintf(r->reason, sizeof(r->reason), "record unfinished at end of file");
				return SG_NOT_FOUND;
			}
			if (r->good_end < r->file_size)
				return handle_bad(r, r->good_end,
								  "block padding without a following fragment", err);
			r->done = true;
			return SG_NOT_FOUND;
		}
		if (b != r->block_index)
		{
			sg_code		rc = read_block(r, b, r->block, &r->block_len, err);

			if (rc != SG_OK)
				return fail(r, err, rc);
			r->block_index = b;
		}
		if (BS - at < HS)
		{
			/* the zero-filled block trailer */
			for (size_t i = at; i < r->block_len; i++)
				if (r->block[i] != 0)
					return handle_bad(r, r->pos, "non-zero block trailer", err);
			r->pos = (b + 1) * BS;
			continue;
		}
		fc = check_fragment(r->block, r->block_len, at, &type, &len, &why);
		if (fc != FRAG_OK)
			return handle_bad(r, r->pos, why, err);

		switch (type)
		{
			case SG_LOG_FULL:
				if (in_record)
					return sequence_error(r, r->pos, "FULL fragment inside an unfinished record", err);
				rec_start = r->pos;
				break;
			case SG_LOG_FIRST:
				if (in_record)
					return sequence_error(r, r->pos, "FIRST fragment inside an unfinished record", err);
				rec_start = r->pos;
				in_record = true;
				break;
			default:
				if (!in_record)
					return sequence_error(r, r->pos,
										  type == SG_LOG_MIDDLE ? "MIDDLE fragment without a FIRST"
										  : "LAST fragment without a FIRST", err);
				break;
		}
		sg_buf_append(&r->rec, r->block + at + HS, len);
		if (sg_buf_failed(&r->rec))
		{
			sg_error(err, SG_NO_MEMORY, "log \"%s\": out of memory reassembling record at offset %llu",
					 r->file->path, (unsigned long long) rec_start);
			return fail(r, err, SG_NO_MEMORY);
		}
		r->pos += HS + len;
		if (type == SG_LOG_FULL || type == SG_LOG_LAST)
		{
			r->rec_offset = rec_start;
			r->good_end = r->pos;
			*record = sg_buf_slice(&r->rec);
			return SG_OK;
		}
	}
}

uint64_t
sg_log_reader_record_offset(const sg_log_reader *r)
{
	return r->rec_offset;
}

uint64_t
sg_log_reader_good_end(const sg_log_reader *r)
{
	return r->good_end;
}

bool
sg_log_reader_torn(const sg_log_reader *r, uint64_t *bad_offset, const char **reason)
{
	if (r->torn)
	{
		if (bad_offset)
			*bad_offset = r->bad_offset;
		if (reason)
			*reason = r->reason;
	}
	return r->torn;
}

uint64_t
sg_log_reader_file_size(const sg_log_reader *r)
{
	return r->file_size;
}
