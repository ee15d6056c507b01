/*
 * block.c — building and iterating the prefix-compressed blocks of an
 * SSTable (layout in block.h and README.md).
 *
 * Invariant of the iterator: when valid, key holds the full key of the
 * entry at cur, value points into the block, and next_off is the offset of
 * the entry after it; every byte read lies in [data, data + limit).
 */
#include "engine/sstable/block.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/base/coding.h"
#include "engine/base/ikey.h"

/* ---------------------------------------------------------------- builder */

void
sg_block_builder_init(sg_block_builder *b, int restart_interval)
{
	sg_buf_init(&b->buf);
	sg_buf_init(&b->restarts);
	sg_buf_init(&b->last_key);
	b->interval = restart_interval < 1 ? 1 : restart_interval;
	b->counter = 0;
	b->num_entries = 0;
}

void
sg_block_builder_free(sg_block_builder *b)
{
	sg_buf_free(&b->buf);
	sg_buf_free(&b->restarts);
	sg_buf_free(&b->last_key);
}

void
sg_block_builder_reset(sg_block_builder *b)
{
	sg_buf_reset(&b->buf);
	sg_buf_reset(&b->restarts);
	sg_buf_reset(&b->last_key);
	b->counter = 0;
	b->num_entries = 0;
}

void
sg_block_builder_add(sg_block_builder *b, sg_slice key, sg_slice value)
{
	size_t		shared = 0;

	if (b->counter < b->interval && b->num_entries > 0)
	{
		size_t		n = key.len < b->last_key.len ? key.len : b->last_key.len;

		while (shared < n && key.data[shared] == b->last_key.data[shared])
			shared++;
	}
	else
	{
		/* A restart point: store the whole key so seek can start here. */
		sg_put_fixed32(&b->restarts, (uint32_t) b->buf.len);
		b->counter = 0;
	}
	sg_put_varint32(&b->buf, (uint32_t) shared);
	sg_put_varint32(&b->buf, (uint32_t) (key.len - shared));
	sg_put_varint32(&b->buf, (uint32_t) value.len);
	sg_buf_append(&b->buf, key.data + shared, key.len - shared);
	sg_buf_append_slice(&b->buf, value);

	sg_buf_truncate(&b->last_key, shared);
	sg_buf_append(&b->last_key, key.data + shared, key.len - shared);
	b->counter++;
	b->num_entries++;
}

sg_slice
sg_block_builder_finish(sg_block_builder *b)
{
	sg_buf_append(&b->buf, b->restarts.data, b->restarts.len);
	sg_put_fixed32(&b->buf, (uint32_t) (b->restarts.len / 4));
	return sg_buf_slice(&b->buf);
}

size_t
sg_block_builder_size(const sg_block_builder *b)
{
	return b->buf.len + b->restarts.len + 4;
}

bool
sg_block_builder_failed(const sg_block_builder *b)
{
	return sg_buf_failed(&b->buf) || sg_buf_failed(&b->restarts) ||
		sg_buf_failed(&b->last_key);
}

/* --------------------------------------------------------------- iterator */

typedef struct block_iter
{
	sg_iter		base;
	const char *data;
	size_t		limit;			/* start of the restart array */
	const char *restarts;
	uint32_t	num_restarts;
	char	   *owned;
	const char *path;
	uint64_t	block_offset;

	bool		valid;
	size_t		cur;
	size_t		next_off;
	sg_buf		key;
	sg_slice	value;

	sg_code		code;			/* sticky: once corrupt, never valid again */
	char		msg[SG_ERR_MSG_LEN];
} block_iter;

static void
corrupt(block_iter *it, size_t at, const char *what)
{
	it->valid = false;
	if (it->code != SG_OK)
		return;
	it->code = SG_CORRUPTION;
	snprintf(it->msg, sizeof(it->msg),
			 "sstable \"%s\": corrupt block at offset %llu: %s (at byte %zu of the block)",
			 it->path, (unsigned long long) it->block_offset, what, at);
}

static void
no_memory(block_iter *it)
{
	it->valid = false;
	if (it->code != SG_OK)
		return;
	it->code = SG_NO_MEMORY;
	snprintf(it->msg, sizeof(it->msg),
			 "sstable \"%s\": out of memory iterating block at offset %llu",
			 it->path, (unsigned long long) it->block_offset);
}

/*
 * Decode the entry header at off: the three lengths, checked against the
 * block bounds. Returns the start of the key suffix, or NULL (corrupt).
 */
static const char *
decode_header(block_iter *it, size_t off, uint32_t *shared, uint32_t *unshared,
			  uint32_t *vlen)
{
	const char *p = it->data + off;
	const char *limit = it->data + it->limit;

	p = sg_decode_varint32(p, limit, shared);
	if (p != NULL)
		p = sg_decode_varint32(p, limit, unshared);
	if (p != NULL)
		p = sg_decode_varint32(p, limit, vlen);
	if (p == NULL)
	{
		corrupt(it, off, "truncated entry header");
		return NULL;
	}
	if ((size_t) (limit - p) < (uint64_t) *unshared + *vlen)
	{
		corrupt(it, off, "entry runs past the end of the block");
		return NULL;
	}
	return p;
}

/* Full key stored at restart point i (no state change); false if corrupt. */
static bool
restart_key(block_iter *it, uint32_t i, sg_slice *key)
{
	size_t		off = sg_decode_fixed32(it->restarts + 4 * (size_t) i);
	uint32_t	shared,
				unshared,
				vlen;
	const char *p;

	if (off >= it->limit)
	{
		corrupt(it, off, "restart point past the entries");
		return false;
	}
	p = decode_header(it, off, &shared, &unshared, &vlen);
	if (p == NULL)
		return false;
	if (shared != 0)
	{
		corrupt(it, off, "restart entry shares a prefix");
		return false;
	}
	if (unshared < SG_IKEY_TRAILER_LEN)
	{
		corrupt(it, off, "key shorter than an internal-key trailer");
		return false;
	}
	*key = sg_slice_make(p, unshared);
	return true;
}

/* Parse the entry at off into the iterator, given key holds the previous key. */
static void
parse_at(block_iter *it, size_t off)
{
	uint32_t	shared,
				unshared,
				vlen;
	const char *p;

	if (off >= it->limit)
	{
		it->valid = false;
		return;
	}
	p = decode_header(it, off, &shared, &unshared, &vlen);
	if (p == NULL)
		return;
	if (shared > it->key.len)
	{
		corrupt(it, off, "shared prefix longer than the previous key");
		return;
	}
	if ((uint64_t) shared + unshared < SG_IKEY_TRAILER_LEN)
	{
		corrupt(it, off, "key shorter than an internal-key trailer");
		return;
	}
	sg_buf_truncate(&it->key, shared);
	sg_buf_append(&it->key, p, unshared);
	if (sg_buf_failed(&it->key))
	{
		no_memory(it);
		return;
	}
	it->value = sg_slice_make(p + unshared, vlen);
	it->cur = off;
	it->next_off = (size_t) (p + unshared + vlen - it->data);
	it->valid = true;
}

static void
seek_to_restart(block_iter *it, uint32_t i)
{
	size_t		off = sg_decode_fixed32(it->restarts + 4 * (size_t) i);

	sg_buf_reset(&it->key);
	if (off >= it->limit)
	{
		corrupt(it, off, "restart point past the entries");
		return;
	}
	parse_at(it, off);
}

/*
 * sg_ikey_compare, made total for a seek target shorter than a trailer:
 * such a target is taken as a bare user key, sorting before all its
 * versions.
 */
static int
compare_to_target(sg_slice key, sg_slice target)
{
	int			r;

	if (target.len >= SG_IKEY_TRAILER_LEN)
		return sg_ikey_compare(key, target);
	r = sg_slice_compare(sg_ikey_user_key(key), target);
	return r != 0 ? r : 1;
}

static bool
bi_valid(sg_iter *base)
{
	return ((block_iter *) base)->valid;
}

static void
bi_seek_to_first(sg_iter *base)
{
	block_iter *it = (block_iter *) base;

	it->valid = false;
	if (it->code != SG_OK || it->num_restarts == 0)
		return;
	seek_to_restart(it, 0);
}

static void
bi_seek(sg_iter *base, sg_slice target)
{
	block_iter *it = (block_iter *) base;
	uint32_t	lo = 0,
				hi;

	it->valid = false;
	if (it->code != SG_OK || it->num_restarts == 0)
		return;
	/* Find the last restart point whose key is < target. */
	hi = it->num_restarts - 1;
	while (lo < hi)
	{
		uint32_t	mid = lo + (hi - lo + 1) / 2;
		sg_slice	k;

		if (!restart_key(it, mid, &k))
			return;
		if (compare_to_target(k, target) < 0)
			lo = mid;
		else
			hi = mid - 1;
	}
	seek_to_restart(it, lo);
	while (it->valid && compare_to_target(sg_buf_slice(&it->key), target) < 0)
		parse_at(it, it->next_off);
}

static void
bi_next(sg_iter *base)
{
	block_iter *it = (block_iter *) base;

	if (it->valid)
		parse_at(it, it->next_off);
}

static sg_slice
bi_key(sg_iter *base)
{
	return sg_buf_slice(&((block_iter *) base)->key);
}

static sg_slice
bi_value(sg_iter *base)
{
	return ((block_iter *) base)->value;
}

static sg_code
bi_status(sg_iter *base, sg_err *err)
{
	block_iter *it = (block_iter *) base;

	if (it->code != SG_OK)
		return sg_error(err, it->code, "%s", it->msg);
	return SG_OK;
}

static void
bi_destroy(sg_iter *base)
{
	block_iter *it = (block_iter *) base;

	sg_buf_free(&it->key);
	free(it->owned);
	free(it);
}

static const sg_iter_ops block_iter_ops = {
	bi_valid, bi_seek_to_first, bi_seek, bi_next,
	bi_key, bi_value, bi_status, bi_destroy,
	sg_iter_leaf_self, NULL		/* entries are parsed in place */
};

sg_iter *
sg_block_iter_new(const char *data, size_t len, char *owned,
				  const char *path, uint64_t block_offset)
{
	block_iter *it = calloc(1, sizeof(*it));

	if (it == NULL)
	{
		free(owned);
		return sg_iter_error(SG_NO_MEMORY, "out of memory creating a block iterator");
	}
	it->base.ops = &block_iter_ops;
	it->data = data;
	it->owned = owned;
	it->path = path;
	it->block_offset = block_offset;
	sg_buf_init(&it->key);
	it->code = SG_OK;

	if (len < 4)
	{
		corrupt(it, 0, "block too short for its restart count");
		return &it->base;
	}
	it->num_restarts = sg_decode_fixed32(data + len - 4);
	if (it->num_restarts > (len - 4) / 4)
	{
		corrupt(it, len - 4, "restart count larger than the block");
		return &it->base;
	}
	it->limit = len - 4 - 4 * (size_t) it->num_restarts;
	it->restarts = data + it->limit;
	if (it->num_restarts == 0 && it->limit != 0)
		corrupt(it, len - 4, "entries without any restart point");
	return &it->base;
}
