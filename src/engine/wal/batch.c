/*
 * batch.c — building and decoding write batches (batch.h).
 */
#include "engine/wal/batch.h"

#include "engine/base/coding.h"

static void
batch_header(sg_batch *b)
{
	char		hdr[SG_BATCH_HEADER_SIZE] = {0};

	sg_buf_append(&b->rep, hdr, sizeof(hdr));
}

void
sg_batch_init(sg_batch *b)
{
	sg_buf_init(&b->rep);
	b->count = 0;
	/*
	 * One allocation that holds a typical single-row batch (header, a
	 * short key, a value of a hundred-odd bytes): most batches are that,
	 * and growing 64 -> 128 -> 256 bytes cost two reallocs per write.
	 */
	sg_buf_reserve(&b->rep, 256);
	batch_header(b);
}

void
sg_batch_free(sg_batch *b)
{
	sg_buf_free(&b->rep);
	b->count = 0;
}

void
sg_batch_clear(sg_batch *b)
{
	sg_buf_reset(&b->rep);
	b->count = 0;
	batch_header(b);
}

static sg_code
batch_add(sg_batch *b, sg_value_type type, sg_slice key, sg_slice value)
{
	size_t		undo = b->rep.len;

	if (key.len > UINT32_MAX || value.len > UINT32_MAX || b->count == UINT32_MAX)
		return SG_INVALID_ARGUMENT;
	if (sg_buf_failed(&b->rep) || b->rep.len < SG_BATCH_HEADER_SIZE)
		return SG_NO_MEMORY;
	/* one growth for the whole entry instead of one per field */
	sg_buf_reserve(&b->rep, 1 + 2 * SG_MAX_VARINT32_LEN + (uint64_t) key.len + value.len);
	sg_buf_append_byte(&b->rep, (uint8_t) type);
	sg_put_length_prefixed(&b->rep, key);
	if (type == SG_TYPE_PUT)
		sg_put_length_prefixed(&b->rep, value);
	if (sg_buf_failed(&b->rep))
	{
		/*
		 * A failed sg_buf keeps its old bytes: forget the failure and the
		 * partial entry so the batch stays usable.
		 */
		b->rep.failed = false;
		sg_buf_truncate(&b->rep, undo);
		return SG_NO_MEMORY;
	}
	b->count++;
	sg_encode_fixed32(b->rep.data + 8, b->count);
	return SG_OK;
}

sg_code
sg_batch_put(sg_batch *b, sg_slice key, sg_slice value)
{
	return batch_add(b, SG_TYPE_PUT, key, value);
}

sg_code
sg_batch_delete(sg_batch *b, sg_slice key)
{
	return batch_add(b, SG_TYPE_DELETE, key, sg_slice_make(NULL, 0));
}

uint32_t
sg_batch_count(const sg_batch *b)
{
	return b->count;
}

void
sg_batch_set_sequence(sg_batch *b, uint64_t seq)
{
	if (!sg_buf_failed(&b->rep) && b->rep.len >= SG_BATCH_HEADER_SIZE)
		sg_encode_fixed64(b->rep.data, seq);
}

uint64_t
sg_batch_sequence(const sg_batch *b)
{
	if (sg_buf_failed(&b->rep) || b->rep.len < SG_BATCH_HEADER_SIZE)
		return 0;
	return sg_decode_fixed64(b->rep.data);
}

size_t
sg_batch_byte_size(const sg_batch *b)
{
	return b->rep.len;
}

sg_slice
sg_batch_contents(const sg_batch *b)
{
	return sg_buf_slice(&b->rep);
}

static sg_code
bad_batch(sg_err *err, const char *what, const char *why, uint32_t index)
{
	return sg_error(err, SG_CORRUPTION, "%s: malformed write batch: %s (entry %u)",
					what ? what : "write batch", why, index);
}

sg_code
sg_batch_iter_init(sg_batch_iter *it, sg_slice encoded, const char *what, sg_err *err)
{
	if (encoded.len < SG_BATCH_HEADER_SIZE)
		return bad_batch(err, what, "shorter than its 12-byte header", 0);
	it->first_seq = sg_decode_fixed64(encoded.data);
	it->count = sg_decode_fixed32(encoded.data + 8);
	it->index = 0;
	it->rest = sg_slice_make(encoded.data + SG_BATCH_HEADER_SIZE,
							 encoded.len - SG_BATCH_HEADER_SIZE);
	if (it->first_seq > SG_MAX_SEQUENCE ||
		(it->count > 0 && it->count - 1 > SG_MAX_SEQUENCE - it->first_seq))
		return bad_batch(err, what, "sequence numbers overflow 56 bits", 0);
	/* every entry takes at least 2 bytes: reject absurd counts early */
	if (it->count > it->rest.len / 2)
		return bad_batch(err, what, "count larger than the entries could hold", 0);
	return SG_OK;
}

sg_code
sg_batch_iter_next(sg_batch_iter *it, sg_batch_entry *e, const char *what, sg_err *err)
{
	uint8_t		type;

	if (it->index == it->count)
	{
		if (it->rest.len != 0)
			return bad_batch(err, what, "bytes after the last entry", it->index);
		return SG_NOT_FOUND;
	}
	if (it->rest.len == 0)
		return bad_batch(err, what, "fewer entries than its count", it->index);
	type = (uint8_t) it->rest.data[0];
	it->rest.data++;
	it->rest.len--;
	if (type != SG_TYPE_PUT && type != SG_TYPE_DELETE)
		return bad_batch(err, what, "unknown entry type", it->index);
	if (!sg_get_length_prefixed(&it->rest, &e->key))
		return bad_batch(err, what, "truncated key", it->index);
	if (type == SG_TYPE_PUT)
	{
		if (!sg_get_length_prefixed(&it->rest, &e->value))
			return bad_batch(err, what, "truncated value", it->index);
	}
	else
		e->value = sg_slice_make(NULL, 0);
	e->type = (sg_value_type) type;
	e->seq = it->first_seq + it->index;
	it->index++;
	return SG_OK;
}

sg_code
sg_batch_validate(sg_slice encoded, const char *what, sg_err *err)
{
	sg_batch_iter it;
	sg_batch_entry e;
	sg_code		rc = sg_batch_iter_init(&it, encoded, what, err);

	while (rc == SG_OK)
		rc = sg_batch_iter_next(&it, &e, what, err);
	return rc == SG_NOT_FOUND ? SG_OK : rc;
}
