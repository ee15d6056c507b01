/*
 * table_reader.c — opening an SSTable and reading it: point lookups that
 * consult the bloom filter first, and a two-level iterator (index block ->
 * data block) over the whole table. API in table.h, format in README.md.
 *
 * Open reads and checks the footer and the properties only. The index and
 * the filter are read and checked by the first call that needs them (an
 * iterator needs the index, a point lookup the filter) and then kept until
 * close(): a PostgreSQL backend opens every file of a tree for its first
 * query and consults few of them (one per level for a point lookup), so
 * reading every index at open made a new connection's first query pay for
 * all of them. Once loaded, a block never changes or moves; data blocks
 * are read with pread on demand into memory owned by the iterator that
 * asked, so concurrent readers share nothing mutable but the two loads,
 * which a mutex serialises. An iterator that reads blocks one after
 * another (a scan) reads ahead: one pread of up to SG_TABLE_READAHEAD
 * bytes serves the blocks that follow, each still checked (CRC) and
 * decompressed on its own. Seeks, and scans asked to, go through a block
 * cache readers may share (table.h).
 */
#include "engine/sstable/table.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/base/coding.h"
#include "engine/sstable/block.h"
#include "engine/sstable/bloom.h"
#include "engine/sstable/props.h"

struct sg_table_reader
{
	sg_env	   *env;
	sg_file    *file;
	char	   *path;
	uint64_t	file_size;
	uint64_t	data_end;		/* offset of the footer: blocks end before it */
	sg_table_footer footer;

	char	   *props_block;
	sg_table_props props;		/* slices point into props_block */
	const sg_block_cache *cache;	/* NULL: none; set before use */
	uint64_t	cache_file_id[2];

	/*
	 * Loaded on first use (load_index, load_filter) under load_mu; each
	 * flag is set with release order after its block is in place, so a
	 * reader that sees it set with acquire order may use the block
	 * without the mutex. A failed load leaves the flag clear: the next
	 * caller tries again (and meets the same damage, or not the same
	 * passing I/O error).
	 */
	pthread_mutex_t load_mu;
	atomic_bool index_loaded;
	atomic_bool filter_loaded;
	char	   *index_block;
	size_t		index_len;
	char	   *filter_block;	/* NULL when the table has no filter */
	size_t		filter_len;
};

static sg_code load_index(sg_table_reader *r, sg_err *err);

/* ------------------------------------------------------- table iterator */

/*
 * Read-ahead window of a sequential iterator: it starts at 16 KiB and
 * doubles with every refill up to 256 KiB, about a hundred compressed
 * 4 KiB blocks per system call instead of one. Starting small keeps a
 * short range read (an index range or a bitmap block crossing into the
 * next data block) from reading, and faulting in, a quarter megabyte for
 * a few rows; a whole-table scan reaches the full window after five
 * refills.
 */
#define SG_TABLE_READAHEAD_FIRST (16 * 1024)
#define SG_TABLE_READAHEAD (256 * 1024)

typedef struct table_iter
{
	sg_iter		base;
	sg_table_reader *r;
	sg_iter    *index_it;
	sg_iter    *data_it;		/* NULL when no data block is loaded */
	uint64_t	data_offset;	/* offset of the block data_it reads */
	uint64_t	data_end;		/* where that block's trailer ends */
	sg_code		code;			/* sticky error reading a block */
	sg_err		err;
	bool		scan_fills_cache;	/* offer blocks read in order to the cache */

	/* read-ahead: file bytes [ra_offset, ra_offset + ra_len) of ra_cap */
	char	   *ra;
	size_t		ra_cap;			/* 0, or the window the next refill reads */
	uint64_t	ra_offset;
	size_t		ra_len;

	/*
	 * The loaded block's first key (empty: unknown). With the index entry
	 * of that block (a key >= its last key), it bounds the keys the block
	 * can hold, so a seek inside those bounds needs no index search.
	 */
	sg_buf		first_key;
} table_iter;

static void
set_data_iter(table_iter *it, sg_iter *data, uint64_t offset)
{
	sg_iter_destroy(it->data_it);
	it->data_it = data;
	it->data_offset = offset;
}

/* The block at h from the file: read_block without the cache. */
static sg_code
read_block_uncached(table_iter *it, sg_block_handle h, bool sequential, char **block,
					size_t *len)
{
	sg_table_reader *r = it->r;
	uint64_t	need = h.size + SG_TABLE_TRAILER_LEN;

	if (it->ra != NULL && h.offset >= it->ra_offset &&
		h.size <= it->ra_len && h.offset - it->ra_offset <= it->ra_len - need)
		return sg_table_decode_block(it->ra + (h.offset - it->ra_offset), r->path, r->data_end,
									 h, r->props.max_block_raw, block, len, &it->err);
	if (sequential && it->data_it != NULL && h.offset == it->data_end &&
		need <= SG_TABLE_READAHEAD && h.offset < r->data_end)
	{
		size_t		cap = it->ra_cap == 0 ? SG_TABLE_READAHEAD_FIRST
			: it->ra_cap < SG_TABLE_READAHEAD ? it->ra_cap * 2 : SG_TABLE_READAHEAD;
		size_t		want;
		size_t		got = 0;
		char	   *grown;

		if (cap < need)
			cap = SG_TABLE_READAHEAD;	/* a block larger than the window so far */
		if (cap != it->ra_cap)
		{
			/* the window is refilled whole: nothing in it to carry over */
			free(it->ra);
			it->ra = NULL;
			it->ra_cap = 0;
			it->ra_len = 0;
			if ((grown = malloc(cap)) == NULL)
				return sg_error(&it->err, SG_NO_MEMORY,
								"sstable \"%s\": out of memory for read-ahead", r->path);
			it->ra = grown;
			it->ra_cap = cap;
		}
		want = r->data_end - h.offset < cap ? (size_t) (r->data_end - h.offset) : cap;

		/*
		 * Whatever a short read brings is a window all the same; a block
		 * it does not cover is read alone below, so damage further on is
		 * reported at the block it is in, as without read-ahead.
		 */
		it->ra_len = 0;
		if (want >= need &&
			sg_file_pread(r->file, h.offset, it->ra, want, &got, &it->err) == SG_OK &&
			got >= need)
		{
			it->ra_offset = h.offset;
			it->ra_len = got;
			return sg_table_decode_block(it->ra, r->path, r->data_end, h,
										 r->props.max_block_raw, block, len, &it->err);
		}
	}
	return sg_table_read_block(r->file, r->path, r->data_end, h, r->props.max_block_raw,
							   block, len, &it->err);
}


/*
 * The block at h. A seek (a point lookup, an index fetch) and a scan told
 * to fill the cache go through the block cache: a hit is the block, a
 * miss is read and offered to it. Other scans read around it: a lookup
 * per block would mostly miss (their tables are bigger than the cache)
 * and cost a lock round trip each. From the file, a block comes from the
 * read-ahead window when it lies there; when the iterator moves on to the
 * block right after the one it read (sequential: a scan's next(), not a
 * seek) the window is refilled first. Seeks read just the block, so an
 * iterator kept for point lookups holds no window.
 */
static sg_code
read_block(table_iter *it, sg_block_handle h, bool sequential, char **block, size_t *len)
{
	sg_table_reader *r = it->r;
	sg_block_cache_key key = {{r->cache_file_id[0], r->cache_file_id[1]}, h.offset};
	bool		cached = r->cache != NULL && (!sequential || it->scan_fills_cache);
	sg_code		rc;

	if (cached && r->cache->lookup(r->cache->arg, &key, block, len))
		return SG_OK;
	rc = read_block_uncached(it, h, sequential, block, len);
	if (cached && rc == SG_OK)
		r->cache->insert(r->cache->arg, &key, *block, *len);
	return rc;
}

/*
 * Load the data block the index iterator points at (unless already
 * loaded: a seek within the block read last reads nothing). sequential:
 * the iterator stepped from the previous block or starts a scan
 * (read-ahead applies; the block is offered to the cache only if the
 * iterator fills it on scans). A block loaded anew is positioned at its first entry. On failure records
 * the error and leaves no data iterator.
 */
static void
load_data_block(table_iter *it, bool sequential)
{
	sg_table_reader *r = it->r;
	sg_block_handle h;
	sg_slice	v;
	char	   *block;
	size_t		len;

	if (!sg_iter_valid(it->index_it))
	{
		set_data_iter(it, NULL, 0);
		return;
	}
	v = sg_iter_value(it->index_it);
	if (!sg_block_handle_get(&v, &h) || v.len != 0)
	{
		set_data_iter(it, NULL, 0);
		it->code = sg_error(&it->err, SG_CORRUPTION,
							"sstable \"%s\": bad block handle in index block at offset %llu",
							r->path, (unsigned long long) r->footer.index.offset);
		return;
	}
	if (it->data_it != NULL && it->data_offset == h.offset)
		return;
	if (read_block(it, h, sequential, &block, &len) != SG_OK)
	{
		set_data_iter(it, NULL, 0);
		it->code = it->err.code;
		return;
	}
	set_data_iter(it, sg_block_iter_new(block, len, block, r->path, h.offset), h.offset);
	it->data_end = h.offset + h.size + SG_TABLE_TRAILER_LEN;
	sg_buf_reset(&it->first_key);
	sg_iter_seek_to_first(it->data_it);
	if (sg_iter_valid(it->data_it))
		sg_buf_append_slice(&it->first_key, sg_iter_key(it->data_it));
}

/* Move past exhausted data blocks; stop at an error. */
static void
skip_empty_blocks(table_iter *it)
{
	while (it->code == SG_OK &&
		   (it->data_it == NULL || !sg_iter_valid(it->data_it)))
	{
		if (it->data_it != NULL && sg_iter_status(it->data_it, NULL) != SG_OK)
			return;
		if (!sg_iter_valid(it->index_it))
		{
			set_data_iter(it, NULL, 0);
			return;
		}
		sg_iter_next(it->index_it);
		load_data_block(it, true);	/* a new block: at its first entry */
	}
}

static bool
ti_valid(sg_iter *base)
{
	table_iter *it = (table_iter *) base;

	return it->code == SG_OK && it->data_it != NULL && sg_iter_valid(it->data_it);
}

static void
ti_seek_to_first(sg_iter *base)
{
	table_iter *it = (table_iter *) base;

	if (it->code != SG_OK)
		return;
	sg_iter_seek_to_first(it->index_it);

	/*
	 * A scan's start: read as the blocks after it are (it has no block
	 * before it to read ahead from, and fills the cache as they do).
	 */
	load_data_block(it, true);
	/* the block may have been loaded already, and read part way */
	if (it->data_it != NULL)
		sg_iter_seek_to_first(it->data_it);
	skip_empty_blocks(it);
}

static void
ti_seek(sg_iter *base, sg_slice target)
{
	table_iter *it = (table_iter *) base;

	if (it->code != SG_OK)
		return;

	/*
	 * Inside the loaded block's bounds (a lookup of a key near the last
	 * one, as an index range scan makes): seek in the block alone. Past
	 * its last key, the step to the next block is the ordinary one.
	 */
	if (it->data_it != NULL && sg_iter_valid(it->index_it) &&
		target.len >= SG_IKEY_TRAILER_LEN &&
		it->first_key.len >= SG_IKEY_TRAILER_LEN && !sg_buf_failed(&it->first_key) &&
		sg_iter_key(it->index_it).len >= SG_IKEY_TRAILER_LEN &&
		sg_ikey_compare(sg_buf_slice(&it->first_key), target) <= 0 &&
		sg_ikey_compare(target, sg_iter_key(it->index_it)) <= 0)
	{
		sg_iter_seek(it->data_it, target);
		skip_empty_blocks(it);
		return;
	}
	sg_iter_seek(it->index_it, target);
	load_data_block(it, false);
	if (it->data_it != NULL)
		sg_iter_seek(it->data_it, target);
	skip_empty_blocks(it);
}

static void
ti_next(sg_iter *base)
{
	table_iter *it = (table_iter *) base;

	if (!ti_valid(base))
		return;
	sg_iter_next(it->data_it);
	skip_empty_blocks(it);
}

static sg_slice
ti_key(sg_iter *base)
{
	return sg_iter_key(((table_iter *) base)->data_it);
}

static sg_slice
ti_value(sg_iter *base)
{
	return sg_iter_value(((table_iter *) base)->data_it);
}

static sg_code
ti_status(sg_iter *base, sg_err *err)
{
	table_iter *it = (table_iter *) base;
	sg_code		rc;

	if (it->code != SG_OK)
	{
		rc = sg_error(err, it->code, "%s", it->err.msg);
		if (err != NULL && it->err.sync_failed)
			err->sync_failed = true;
		return rc;
	}
	if ((rc = sg_iter_status(it->index_it, err)) != SG_OK)
		return rc;
	if (it->data_it != NULL)
		return sg_iter_status(it->data_it, err);
	return SG_OK;
}

static void
ti_destroy(sg_iter *base)
{
	table_iter *it = (table_iter *) base;

	sg_iter_destroy(it->data_it);
	sg_iter_destroy(it->index_it);
	free(it->ra);
	sg_buf_free(&it->first_key);
	free(it);
}

/* The loaded block's leaf: the table yields its entries until it ends. */
static sg_iter *
ti_leaf(sg_iter *base, sg_slice *bound)
{
	return sg_iter_leaf(((table_iter *) base)->data_it, bound);
}

static void
ti_resync(sg_iter *base)
{
	table_iter *it = (table_iter *) base;

	if (it->code != SG_OK || it->data_it == NULL)
		return;
	sg_iter_resync(it->data_it);
	skip_empty_blocks(it);
}

static const sg_iter_ops table_iter_ops = {
	ti_valid, ti_seek_to_first, ti_seek, ti_next,
	ti_key, ti_value, ti_status, ti_destroy, ti_leaf, ti_resync
};

sg_iter *
sg_table_reader_iter(sg_table_reader *r)
{
	return sg_table_reader_scan_iter(r, false);
}

sg_iter *
sg_table_reader_scan_iter(sg_table_reader *r, bool scan_fills_cache)
{
	table_iter *it;
	sg_err		err;

	if (load_index(r, &err) != SG_OK)
		return sg_iter_error(err.code, err.msg);
	it = calloc(1, sizeof(*it));
	if (it == NULL)
		return sg_iter_error(SG_NO_MEMORY, "out of memory creating an sstable iterator");
	it->base.ops = &table_iter_ops;
	it->r = r;
	it->code = SG_OK;
	it->scan_fills_cache = scan_fills_cache;
	sg_err_clear(&it->err);
	sg_buf_init(&it->first_key);
	it->index_it = sg_block_iter_new(r->index_block, r->index_len, NULL, r->path,
									 r->footer.index.offset);
	return &it->base;
}

/* ---------------------------------------------------------------- reader */

/*
 * Run load (read_index or read_filter) unless *loaded says it succeeded
 * before: the one-time loads a reader makes after open (see load_mu).
 * Once *loaded is seen set, with acquire order, the block it guards is in
 * place; a failed load leaves it clear, for the next caller to try again.
 */
static sg_code
load_once(sg_table_reader *r, atomic_bool *loaded,
		  sg_code (*load) (sg_table_reader *r, sg_err *err), sg_err *err)
{
	sg_code		rc = SG_OK;

	if (atomic_load_explicit(loaded, memory_order_acquire))
		return SG_OK;
	pthread_mutex_lock(&r->load_mu);
	if (!atomic_load_explicit(loaded, memory_order_relaxed) && (rc = load(r, err)) == SG_OK)
		atomic_store_explicit(loaded, true, memory_order_release);
	pthread_mutex_unlock(&r->load_mu);
	return rc;
}

/*
 * The index block. Its CRC covers it whole; the block handles in it are
 * checked where they are used (load_data_block, sg_table_read_block:
 * inside the data area, no larger than the table's largest block), so no
 * walk over every entry is needed first.
 */
static sg_code
read_index(sg_table_reader *r, sg_err *err)
{
	return sg_table_read_block(r->file, r->path, r->data_end, r->footer.index,
							   SG_TABLE_MAX_BLOCK_RAW, &r->index_block, &r->index_len, err);
}

/* The filter block; none for a table built without one (a zero handle). */
static sg_code
read_filter(sg_table_reader *r, sg_err *err)
{
	sg_code		rc;

	if (r->footer.filter.offset == 0 && r->footer.filter.size == 0)
		return SG_OK;
	rc = sg_table_read_block(r->file, r->path, r->data_end, r->footer.filter,
							 SG_TABLE_MAX_BLOCK_RAW, &r->filter_block, &r->filter_len, err);
	if (rc == SG_OK && !sg_bloom_valid(sg_slice_make(r->filter_block, r->filter_len)))
	{
		free(r->filter_block);
		r->filter_block = NULL;
		rc = sg_error(err, SG_CORRUPTION,
					  "sstable \"%s\": malformed filter block at offset %llu",
					  r->path, (unsigned long long) r->footer.filter.offset);
	}
	return rc;
}

static sg_code
load_index(sg_table_reader *r, sg_err *err)
{
	return load_once(r, &r->index_loaded, read_index, err);
}

static sg_code
load_filter(sg_table_reader *r, sg_err *err)
{
	return load_once(r, &r->filter_loaded, read_filter, err);
}

sg_code
sg_table_reader_block_codecs(sg_table_reader *r, uint64_t *counts, sg_err *err)
{
	sg_iter    *it;
	uint64_t	n = 0;
	sg_code		rc;

	memset(counts, 0, sizeof(uint64_t) * (SG_CODEC_MAX + 1));
	if ((rc = load_index(r, err)) != SG_OK)
		return rc;
	it = sg_block_iter_new(r->index_block, r->index_len, NULL, r->path, r->footer.index.offset);
	for (sg_iter_seek_to_first(it); sg_iter_valid(it) && rc == SG_OK; sg_iter_next(it))
	{
		sg_slice	v = sg_iter_value(it);
		sg_block_handle h;
		uint8_t		tag;

		n++;
		if (!sg_block_handle_get(&v, &h) || v.len != 0 ||
			h.offset > r->data_end || h.size + 1 > r->data_end - h.offset)
			rc = sg_error(err, SG_CORRUPTION,
						  "sstable \"%s\": bad block handle in index block at offset %llu",
						  r->path, (unsigned long long) r->footer.index.offset);
		else if ((rc = sg_file_read_exact(r->file, h.offset + h.size, &tag, 1, err)) == SG_OK)
		{
			if (tag > SG_CODEC_MAX)
				rc = sg_error(err, SG_CORRUPTION,
							  "sstable \"%s\": unknown codec tag %u in block at offset %llu",
							  r->path, tag, (unsigned long long) h.offset);
			else
				counts[tag]++;
		}
	}
	if (rc == SG_OK)
		rc = sg_iter_status(it, err);
	sg_iter_destroy(it);
	if (rc == SG_OK && n != r->props.num_data_blocks)
		rc = sg_error(err, SG_CORRUPTION,
					  "sstable \"%s\": index block at offset %llu lists %llu blocks, properties say %llu",
					  r->path, (unsigned long long) r->footer.index.offset,
					  (unsigned long long) n, (unsigned long long) r->props.num_data_blocks);
	return rc;
}

static sg_code
open_reader(sg_table_reader *r, sg_err *err)
{
	char		fbuf[SG_TABLE_FOOTER_LEN];
	size_t		len;
	sg_code		rc;

	if ((rc = sg_file_size(r->file, &r->file_size, err)) != SG_OK)
		return rc;
	if (r->file_size < SG_TABLE_FOOTER_LEN)
		return sg_error(err, SG_CORRUPTION,
						"sstable \"%s\" is too short (%llu bytes) to hold a footer",
						r->path, (unsigned long long) r->file_size);
	r->data_end = r->file_size - SG_TABLE_FOOTER_LEN;
	if ((rc = sg_file_read_exact(r->file, r->data_end, fbuf, sizeof(fbuf), err)) != SG_OK ||
		(rc = sg_table_footer_decode(fbuf, r->path, r->data_end, &r->footer, err)) != SG_OK)
		return rc;

	if ((rc = sg_table_read_block(r->file, r->path, r->data_end, r->footer.props,
								  SG_TABLE_MAX_BLOCK_RAW, &r->props_block, &len, err)) != SG_OK ||
		(rc = sg_table_props_decode(sg_slice_make(r->props_block, len), r->path,
									r->footer.props.offset, &r->props, err)) != SG_OK)
		return rc;
	return SG_OK;
}

sg_code
sg_table_reader_open(sg_env *env, const char *path, sg_table_reader **out, sg_err *err)
{
	sg_table_reader *r;
	sg_code		rc;

	*out = NULL;
	r = calloc(1, sizeof(*r));
	if (r == NULL || (r->path = strdup(path)) == NULL)
	{
		free(r);
		return sg_error(err, SG_NO_MEMORY, "out of memory opening sstable \"%s\"", path);
	}
	r->env = env;
	pthread_mutex_init(&r->load_mu, NULL);
	atomic_init(&r->index_loaded, false);
	atomic_init(&r->filter_loaded, false);
	rc = sg_file_open(env, path, SG_OPEN_READ, &r->file, err);
	if (rc == SG_OK)
		rc = open_reader(r, err);
	if (rc != SG_OK)
	{
		sg_table_reader_close(r);
		return rc;
	}
	*out = r;
	return SG_OK;
}

void
sg_table_reader_close(sg_table_reader *r)
{
	if (r == NULL)
		return;
	if (r->file != NULL)
		sg_file_close(r->file, NULL);
	pthread_mutex_destroy(&r->load_mu);
	free(r->props_block);
	free(r->index_block);
	free(r->filter_block);
	free(r->path);
	free(r);
}

void
sg_table_reader_set_block_cache(sg_table_reader *r, const sg_block_cache *cache,
								uint64_t file_id0, uint64_t file_id1)
{
	r->cache = cache;
	r->cache_file_id[0] = file_id0;
	r->cache_file_id[1] = file_id1;
}

sg_code
sg_table_reader_may_contain(sg_table_reader *r, sg_slice user_key, bool *maybe, sg_err *err)
{
	sg_code		rc = load_filter(r, err);

	*maybe = true;
	if (rc != SG_OK)
		return rc;
	if (r->filter_block != NULL)
		*maybe = sg_bloom_may_contain(sg_slice_make(r->filter_block, r->filter_len),
									  sg_hash64(user_key));
	return SG_OK;
}

sg_code
sg_table_reader_get(sg_table_reader *r, sg_slice user_key, uint64_t seq,
					sg_buf *value, sg_value_type *type, uint64_t *found_seq, sg_err *err)
{
	sg_buf		target = SG_BUF_INIT;
	sg_iter    *it;
	sg_code		rc;
	bool		maybe;

	sg_buf_reset(value);
	if (r->props.num_entries == 0)
		return SG_NOT_FOUND;
	if ((rc = sg_table_reader_may_contain(r, user_key, &maybe, err)) != SG_OK)
		return rc;
	if (!maybe)
		return SG_NOT_FOUND;
	if (seq > SG_MAX_SEQUENCE)
		seq = SG_MAX_SEQUENCE;
	sg_ikey_append(&target, user_key, seq, SG_TYPE_FOR_SEEK);
	if (sg_buf_failed(&target))
		return sg_error(err, SG_NO_MEMORY, "out of memory searching sstable \"%s\"", r->path);

	rc = SG_NOT_FOUND;
	it = sg_table_reader_iter(r);
	sg_iter_seek(it, sg_buf_slice(&target));
	if (sg_iter_valid(it))
	{
		sg_parsed_ikey pk;

		if (!sg_ikey_parse(sg_iter_key(it), &pk))
			rc = sg_error(err, SG_CORRUPTION,
						  "sstable \"%s\": entry with unknown value type in a data block",
						  r->path);
		else if (sg_slice_equal(pk.user_key, user_key))
		{
			*type = pk.type;
			if (found_seq != NULL)
				*found_seq = pk.seq;
			if (pk.type == SG_TYPE_PUT)
				sg_buf_append_slice(value, sg_iter_value(it));
			rc = sg_buf_failed(value)
				? sg_error(err, SG_NO_MEMORY, "out of memory reading sstable \"%s\"", r->path)
				: SG_OK;
		}
	}
	else
	{
		sg_code		st = sg_iter_status(it, err);

		if (st != SG_OK)
			rc = st;
	}
	sg_iter_destroy(it);
	sg_buf_free(&target);
	return rc;
}

const sg_table_props *
sg_table_reader_props(const sg_table_reader *r)
{
	return &r->props;
}

uint64_t
sg_table_reader_file_size(const sg_table_reader *r)
{
	return r->file_size;
}

const char *
sg_table_reader_path(const sg_table_reader *r)
{
	return r->path;
}
