/*
 * table_builder.c — writing an SSTable (API in table.h, format in
 * README.md).
 *
 * Invariants while building:
 *  - every key added is a valid internal key strictly greater than
 *    last_key, so data blocks, and the index, come out sorted;
 *  - `offset` is the number of bytes appended to the temporary file;
 *  - when pending_index is set, the data block at pending_handle has been
 *    written but has no index entry yet: its separator waits for the next
 *    block's first key (or for finish(), which uses the last key);
 *  - after the first failure (code != SG_OK) nothing more is written and
 *    every call reports that failure.
 */
#include "engine/sstable/table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/base/coding.h"
#include "engine/sstable/block.h"
#include "engine/sstable/bloom.h"
#include "engine/sstable/props.h"

/* Entry header: three varint32 lengths at most. */
#define ENTRY_OVERHEAD (3 * SG_MAX_VARINT32_LEN)

struct sg_table_builder
{
	sg_env	   *env;
	char	   *dir;
	char	   *final_path;
	char	   *tmp_path;
	sg_file    *file;
	sg_table_options opts;

	sg_block_builder data;
	sg_block_builder index;
	sg_buf		scratch;		/* an encoded block on its way to the file */
	sg_buf		last_key;
	sg_buf		smallest_key;
	sg_buf		user_stats;
	sg_table_props props;		/* counters; key slices filled at finish */
	uint64_t	offset;

	bool		pending_index;
	sg_block_handle pending_handle;

	uint64_t   *hashes;			/* bloom hashes of distinct user keys */
	size_t		nhashes;
	size_t		hashes_cap;

	sg_code		code;
	char		msg[SG_ERR_MSG_LEN];
	bool		sync_failed;	/* the first failure's flags, as sticky */
	bool		disk_full;
};

void
sg_table_options_init(sg_table_options *o)
{
	o->block_size = 4096;
	o->restart_interval = 16;
	o->codec = SG_CODEC_LZ4;
	o->zstd_level = 3;
	o->bloom_bits_per_key = 10;
}

void
sg_table_info_init(sg_table_info *info)
{
	info->file_size = 0;
	info->num_entries = 0;
	sg_buf_init(&info->smallest_key);
	sg_buf_init(&info->largest_key);
}

void
sg_table_info_free(sg_table_info *info)
{
	sg_buf_free(&info->smallest_key);
	sg_buf_free(&info->largest_key);
}

/* Record the first failure; every later call returns it. */
static sg_code
fail(sg_table_builder *b, sg_code code, const char *msg, sg_err *err)
{
	if (b->code == SG_OK)
	{
		b->code = code;
		snprintf(b->msg, sizeof(b->msg), "%s", msg);
	}
	sg_error(err, b->code, "%s", b->msg);
	if (err != NULL)
	{
		err->sync_failed = b->sync_failed;
		err->disk_full = b->disk_full;
	}
	return b->code;
}

/* fail() with an error from below, keeping its flags. */
static sg_code
fail_err(sg_table_builder *b, const sg_err *e, sg_err *err)
{
	if (b->code == SG_OK)
	{
		b->sync_failed = e->sync_failed;
		b->disk_full = e->disk_full;
	}
	return fail(b, e->code, e->msg, err);
}

static void
free_builder(sg_table_builder *b)
{
	sg_block_builder_free(&b->data);
	sg_block_builder_free(&b->index);
	sg_buf_free(&b->scratch);
	sg_buf_free(&b->last_key);
	sg_buf_free(&b->smallest_key);
	sg_buf_free(&b->user_stats);
	free(b->hashes);
	free(b->dir);
	free(b->final_path);
	free(b->tmp_path);
	free(b);
}

sg_code
sg_table_builder_open(sg_env *env, const char *dir, const char *name,
					  const sg_table_options *opts, sg_table_builder **out, sg_err *err)
{
	sg_table_builder *b;
	size_t		plen;
	sg_code		rc;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory creating an sstable builder");
	if (opts != NULL)
		b->opts = *opts;
	else
		sg_table_options_init(&b->opts);
	if (b->opts.block_size == 0 || b->opts.block_size > SG_TABLE_MAX_BLOCK_RAW ||
		b->opts.restart_interval < 1 || b->opts.codec > SG_CODEC_MAX ||
		b->opts.bloom_bits_per_key < 0 || b->opts.bloom_bits_per_key > 1000)
	{
		free(b);
		return sg_error(err, SG_INVALID_ARGUMENT,
						"bad sstable options for \"%s/%s\"", dir, name);
	}
	sg_block_builder_init(&b->data, b->opts.restart_interval);
	/* Index entries are few and each is searched: restart at every one. */
	sg_block_builder_init(&b->index, 1);
	sg_buf_init(&b->scratch);
	sg_buf_init(&b->last_key);
	sg_buf_init(&b->smallest_key);
	sg_buf_init(&b->user_stats);
	b->env = env;
	b->props.codec = b->opts.codec;

	plen = strlen(dir) + strlen(name) + 2;
	b->dir = strdup(dir);
	b->final_path = malloc(plen);
	b->tmp_path = malloc(plen + 4);
	if (b->dir == NULL || b->final_path == NULL || b->tmp_path == NULL)
	{
		free_builder(b);
		return sg_error(err, SG_NO_MEMORY, "out of memory creating an sstable builder");
	}
	snprintf(b->final_path, plen, "%s/%s", dir, name);
	snprintf(b->tmp_path, plen + 4, "%s.tmp", b->final_path);
	rc = sg_file_open(env, b->tmp_path, SG_OPEN_CREATE, &b->file, err);
	if (rc != SG_OK)
	{
		free_builder(b);
		return rc;
	}
	*out = b;
	return SG_OK;
}

/* Encode raw as one block (trailer included) and append it to the file. */
static sg_code
write_block(sg_table_builder *b, sg_slice raw, sg_codec codec, sg_block_handle *h,
			sg_err *err)
{
	sg_err		e;
	uint64_t	stored;

	sg_err_clear(&e);
	sg_buf_reset(&b->scratch);
	if (sg_table_encode_block(&b->scratch, raw, codec, b->opts.zstd_level, &stored, &e) != SG_OK ||
		sg_file_append(b->file, b->scratch.data, b->scratch.len, &e) != SG_OK)
		return fail_err(b, &e, err);
	h->offset = b->offset;
	h->size = stored;
	b->offset += b->scratch.len;
	return SG_OK;
}

static sg_code
flush_data_block(sg_table_builder *b, sg_err *err)
{
	sg_slice	raw;
	sg_code		rc;

	if (sg_block_builder_empty(&b->data))
		return SG_OK;
	raw = sg_block_builder_finish(&b->data);
	if (sg_block_builder_failed(&b->data))
		return fail(b, SG_NO_MEMORY, "out of memory building an sstable block", err);
	if (raw.len > b->props.max_block_raw)
		b->props.max_block_raw = raw.len;
	rc = write_block(b, raw, b->opts.codec, &b->pending_handle, err);
	if (rc != SG_OK)
		return rc;
	b->pending_index = true;
	b->props.num_data_blocks++;
	sg_block_builder_reset(&b->data);
	return SG_OK;
}

/*
 * A short internal key k with last <= k < next, to keep the index small:
 * when the user keys differ at a byte that can be bumped without reaching
 * next's, take last's prefix up to that byte, bump it, and give it the
 * largest trailer (which sorts first among that user key's versions).
 * Otherwise last itself.
 */
static void
put_separator(sg_buf *dst, sg_slice last, sg_slice next)
{
	sg_slice	a = sg_ikey_user_key(last);
	sg_slice	z = sg_ikey_user_key(next);
	size_t		n = a.len < z.len ? a.len : z.len;
	size_t		i = 0;

	while (i < n && a.data[i] == z.data[i])
		i++;
	if (i < n)
	{
		uint8_t		c = (uint8_t) a.data[i];

		if (c < 0xff && c + 1 < (uint8_t) z.data[i])
		{
			sg_buf_append(dst, a.data, i);
			sg_buf_append_byte(dst, (uint8_t) (c + 1));
			sg_put_fixed64(dst, sg_ikey_pack_trailer(SG_MAX_SEQUENCE, SG_TYPE_FOR_SEEK));
			return;
		}
	}
	sg_buf_append_slice(dst, last);
}

static sg_code
add_index_entry(sg_table_builder *b, sg_slice next, sg_err *err)
{
	sg_buf		sep = SG_BUF_INIT;
	sg_buf		handle = SG_BUF_INIT;
	sg_slice	last = sg_buf_slice(&b->last_key);

	if (next.data != NULL)
		put_separator(&sep, last, next);
	else
		sg_buf_append_slice(&sep, last);
	sg_block_handle_put(&handle, b->pending_handle);
	if (!sg_buf_failed(&sep) && !sg_buf_failed(&handle))
		sg_block_builder_add(&b->index, sg_buf_slice(&sep), sg_buf_slice(&handle));
	b->pending_index = false;
	if (sg_buf_failed(&sep) || sg_buf_failed(&handle))
	{
		sg_buf_free(&sep);
		sg_buf_free(&handle);
		return fail(b, SG_NO_MEMORY, "out of memory building an sstable index", err);
	}
	sg_buf_free(&sep);
	sg_buf_free(&handle);
	return SG_OK;
}

static sg_code
add_hash(sg_table_builder *b, sg_slice user_key, sg_err *err)
{
	if (b->opts.bloom_bits_per_key == 0)
		return SG_OK;
	if (b->nhashes == b->hashes_cap)
	{
		size_t		cap = b->hashes_cap ? b->hashes_cap * 2 : 1024;
		uint64_t   *h = realloc(b->hashes, cap * sizeof(uint64_t));

		if (h == NULL)
			return fail(b, SG_NO_MEMORY, "out of memory building an sstable filter", err);
		b->hashes = h;
		b->hashes_cap = cap;
	}
	b->hashes[b->nhashes++] = sg_hash64(user_key);
	return SG_OK;
}

sg_code
sg_table_builder_add(sg_table_builder *b, sg_slice ikey, sg_slice value, sg_err *err)
{
	sg_parsed_ikey pk;
	sg_code		rc;
	bool		new_user_key;

	if (b->code != SG_OK)
		return sg_error(err, b->code, "%s", b->msg);
	if (!sg_ikey_parse(ikey, &pk))
		return sg_error(err, SG_INVALID_ARGUMENT,
						"sstable \"%s\": malformed internal key of %zu bytes",
						b->tmp_path, ikey.len);
	if (ikey.len > SG_TABLE_MAX_BLOCK_RAW - ENTRY_OVERHEAD - 8 ||
		value.len > SG_TABLE_MAX_BLOCK_RAW - ENTRY_OVERHEAD - 8 - ikey.len)
		return sg_error(err, SG_INVALID_ARGUMENT,
						"sstable \"%s\": entry of %zu bytes exceeds the %u-byte block limit",
						b->tmp_path, ikey.len + value.len, (unsigned) SG_TABLE_MAX_BLOCK_RAW);
	new_user_key = true;
	if (b->props.num_entries > 0)
	{
		sg_slice	last = sg_buf_slice(&b->last_key);

		if (sg_ikey_compare(ikey, last) <= 0)
			return sg_error(err, SG_INVALID_ARGUMENT,
							"sstable \"%s\": keys added out of order (entry %llu)",
							b->tmp_path, (unsigned long long) b->props.num_entries);
		new_user_key = !sg_slice_equal(pk.user_key, sg_ikey_user_key(last));
	}

	if (b->pending_index && (rc = add_index_entry(b, ikey, err)) != SG_OK)
		return rc;
	if (new_user_key && (rc = add_hash(b, pk.user_key, err)) != SG_OK)
		return rc;

	sg_block_builder_add(&b->data, ikey, value);
	sg_buf_reset(&b->last_key);
	sg_buf_append_slice(&b->last_key, ikey);
	if (b->props.num_entries == 0)
	{
		sg_buf_append_slice(&b->smallest_key, ikey);
		b->props.smallest_seq = pk.seq;
		b->props.largest_seq = pk.seq;
	}
	if (sg_buf_failed(&b->last_key) || sg_buf_failed(&b->smallest_key) ||
		sg_block_builder_failed(&b->data))
		return fail(b, SG_NO_MEMORY, "out of memory adding to an sstable", err);
	b->props.num_entries++;
	if (pk.type == SG_TYPE_DELETE)
		b->props.num_deletions++;
	b->props.raw_key_bytes += ikey.len;
	b->props.raw_value_bytes += value.len;
	if (pk.seq < b->props.smallest_seq)
		b->props.smallest_seq = pk.seq;
	if (pk.seq > b->props.largest_seq)
		b->props.largest_seq = pk.seq;

	if (sg_block_builder_size(&b->data) >= b->opts.block_size)
		return flush_data_block(b, err);
	return SG_OK;
}

sg_code
sg_table_builder_set_user_stats(sg_table_builder *b, sg_slice blob, sg_err *err)
{
	if (b->code != SG_OK)
		return sg_error(err, b->code, "%s", b->msg);
	sg_buf_reset(&b->user_stats);
	sg_buf_append_slice(&b->user_stats, blob);
	if (sg_buf_failed(&b->user_stats))
		return fail(b, SG_NO_MEMORY, "out of memory storing sstable statistics", err);
	return SG_OK;
}

uint64_t
sg_table_builder_num_entries(const sg_table_builder *b)
{
	return b->props.num_entries;
}

uint64_t
sg_table_builder_file_size(const sg_table_builder *b)
{
	return b->offset;
}

void
sg_table_builder_abandon(sg_table_builder *b)
{
	if (b == NULL)
		return;
	if (b->file != NULL)
		sg_file_close(b->file, NULL);
	b->env->ops->unlink(b->env, b->tmp_path, NULL);
	free_builder(b);
}

/* Everything after the last data block, up to the durable rename. */
static sg_code
write_tail(sg_table_builder *b, sg_err *err)
{
	sg_table_footer footer;
	sg_buf		meta = SG_BUF_INIT;
	sg_slice	index;
	char		fbuf[SG_TABLE_FOOTER_LEN];
	sg_err		e;
	sg_code		rc;

	if ((rc = flush_data_block(b, err)) != SG_OK)
		return rc;
	memset(&footer, 0, sizeof(footer));
	footer.version = SG_TABLE_FORMAT_VERSION;

	/* filter (meta blocks are stored uncompressed; see README.md) */
	if (b->opts.bloom_bits_per_key > 0)
	{
		sg_bloom_build(&meta, b->hashes, b->nhashes, b->opts.bloom_bits_per_key);
		if (sg_buf_failed(&meta))
			rc = fail(b, SG_NO_MEMORY, "out of memory building an sstable filter", err);
		else
			rc = write_block(b, sg_buf_slice(&meta), SG_CODEC_NONE, &footer.filter, err);
		if (rc != SG_OK)
		{
			sg_buf_free(&meta);
			return rc;
		}
	}

	/* properties */
	sg_buf_reset(&meta);
	if (b->props.num_entries > 0)
	{
		b->props.smallest_key = sg_buf_slice(&b->smallest_key);
		b->props.largest_key = sg_buf_slice(&b->last_key);
	}
	b->props.user_stats = sg_buf_slice(&b->user_stats);
	sg_table_props_encode(&meta, &b->props);
	if (sg_buf_failed(&meta))
		rc = fail(b, SG_NO_MEMORY, "out of memory building sstable properties", err);
	else
		rc = write_block(b, sg_buf_slice(&meta), SG_CODEC_NONE, &footer.props, err);
	sg_buf_free(&meta);
	if (rc != SG_OK)
		return rc;

	/* index */
	if (b->pending_index && (rc = add_index_entry(b, sg_slice_make(NULL, 0), err)) != SG_OK)
		return rc;
	index = sg_block_builder_finish(&b->index);
	if (sg_block_builder_failed(&b->index))
		return fail(b, SG_NO_MEMORY, "out of memory building an sstable index", err);
	if ((rc = write_block(b, index, SG_CODEC_NONE, &footer.index, err)) != SG_OK)
		return rc;

	/* footer, then make it durable under its final name */
	sg_table_footer_encode(fbuf, &footer);
	sg_err_clear(&e);
	if (sg_file_append(b->file, fbuf, sizeof(fbuf), &e) != SG_OK ||
		sg_file_sync(b->file, &e) != SG_OK)
		return fail_err(b, &e, err);
	b->offset += sizeof(fbuf);
	rc = sg_file_close(b->file, &e);
	b->file = NULL;
	if (rc != SG_OK ||
		b->env->ops->rename(b->env, b->tmp_path, b->final_path, &e) != SG_OK)
		return fail_err(b, &e, err);
	if (b->env->ops->sync_dir(b->env, b->dir, &e) != SG_OK)
	{
		/* The name may not be durable: the caller must not use the table. */
		b->env->ops->unlink(b->env, b->final_path, NULL);
		return fail_err(b, &e, err);
	}
	return SG_OK;
}

sg_code
sg_table_builder_finish(sg_table_builder *b, sg_table_info *info, sg_err *err)
{
	sg_code		rc;

	if (b->code != SG_OK)
		rc = sg_error(err, b->code, "%s", b->msg);
	else
		rc = write_tail(b, err);
	if (rc != SG_OK)
	{
		sg_table_builder_abandon(b);
		return rc;
	}
	if (info != NULL)
	{
		info->file_size = b->offset;
		info->num_entries = b->props.num_entries;
		sg_buf_reset(&info->smallest_key);
		sg_buf_reset(&info->largest_key);
		if (b->props.num_entries > 0)
		{
			sg_buf_append_slice(&info->smallest_key, sg_buf_slice(&b->smallest_key));
			sg_buf_append_slice(&info->largest_key, sg_buf_slice(&b->last_key));
		}
		if (sg_buf_failed(&info->smallest_key) || sg_buf_failed(&info->largest_key))
			rc = sg_error(err, SG_NO_MEMORY, "out of memory reporting sstable \"%s\"",
						  b->final_path);
	}
	free_builder(b);
	return rc;
}
