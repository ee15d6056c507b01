/*
 * format.c — block handles, the footer, and reading/writing one stored
 * block (trailer checksum and compression); see format.h and README.md.
 */
#include "engine/sstable/format.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <zstd.h>

#include "engine/base/coding.h"
#include "engine/base/crc32c.h"

void
sg_block_handle_put(sg_buf *dst, sg_block_handle h)
{
	sg_put_varint64(dst, h.offset);
	sg_put_varint64(dst, h.size);
}

bool
sg_block_handle_get(sg_slice *in, sg_block_handle *h)
{
	return sg_get_varint64(in, &h->offset) && sg_get_varint64(in, &h->size);
}

const char *
sg_codec_name(sg_codec codec)
{
	switch (codec)
	{
		case SG_CODEC_NONE:
			return "none";
		case SG_CODEC_LZ4:
			return "lz4";
		case SG_CODEC_ZSTD:
			return "zstd";
	}
	return "unknown";
}

static void
put_handle_fixed(char *dst, sg_block_handle h)
{
	sg_encode_fixed64(dst, h.offset);
	sg_encode_fixed64(dst + 8, h.size);
}

static sg_block_handle
get_handle_fixed(const char *src)
{
	sg_block_handle h;

	h.offset = sg_decode_fixed64(src);
	h.size = sg_decode_fixed64(src + 8);
	return h;
}

void
sg_table_footer_encode(char *dst, const sg_table_footer *f)
{
	memset(dst, 0, SG_TABLE_FOOTER_LEN);
	put_handle_fixed(dst + SG_TABLE_FOOTER_INDEX_OFF, f->index);
	put_handle_fixed(dst + SG_TABLE_FOOTER_FILTER_OFF, f->filter);
	put_handle_fixed(dst + SG_TABLE_FOOTER_PROPS_OFF, f->props);
	sg_encode_fixed32(dst + SG_TABLE_FOOTER_VERSION_OFF, f->version);
	sg_encode_fixed32(dst + SG_TABLE_FOOTER_CRC_OFF,
					  sg_crc32c_mask(sg_crc32c(dst, SG_TABLE_FOOTER_CRC_OFF)));
	sg_encode_fixed64(dst + SG_TABLE_FOOTER_MAGIC_OFF, SG_TABLE_MAGIC);
}

sg_code
sg_table_footer_decode(const char *src, const char *path, uint64_t off,
					   sg_table_footer *f, sg_err *err)
{
	uint32_t	stored;

	/* Magic first: a file that is not a table at all gets the clearer message. */
	if (sg_decode_fixed64(src + SG_TABLE_FOOTER_MAGIC_OFF) != SG_TABLE_MAGIC)
		return sg_error(err, SG_CORRUPTION,
						"sstable \"%s\": bad magic number in footer at offset %llu",
						path, (unsigned long long) off);
	stored = sg_decode_fixed32(src + SG_TABLE_FOOTER_CRC_OFF);
	if (sg_crc32c_unmask(stored) != sg_crc32c(src, SG_TABLE_FOOTER_CRC_OFF))
		return sg_error(err, SG_CORRUPTION,
						"sstable \"%s\": footer checksum mismatch at offset %llu",
						path, (unsigned long long) off);
	f->version = sg_decode_fixed32(src + SG_TABLE_FOOTER_VERSION_OFF);
	if (f->version != SG_TABLE_FORMAT_VERSION)
		return sg_error(err, SG_NOT_SUPPORTED,
						"sstable \"%s\": unsupported format version %u in footer at offset %llu",
						path, f->version, (unsigned long long) off);
	f->index = get_handle_fixed(src + SG_TABLE_FOOTER_INDEX_OFF);
	f->filter = get_handle_fixed(src + SG_TABLE_FOOTER_FILTER_OFF);
	f->props = get_handle_fixed(src + SG_TABLE_FOOTER_PROPS_OFF);
	return SG_OK;
}

/*
 * Per-thread codec contexts, kept between blocks.
 *
 * LZ4_compress_default() zeroes a fresh 16 KiB state for every call, which
 * for 4 KiB blocks costs as much as the compression itself; a kept state
 * only needs LZ4_resetStream_fast(). Each block still starts a new chain,
 * so it decodes on its own with LZ4_decompress_safe (the format does not
 * change). ZSTD_compress() and ZSTD_decompress() likewise build and free a
 * context per call (about a megabyte to compress at level 3); the
 * explicit-context calls reuse one and write and read the same frames.
 * Contexts are made on first use; the key's destructor frees them when a
 * thread exits. A context that cannot be made falls back to the one-shot
 * call, so a shortage of memory costs speed, never a block.
 */
typedef struct codec_state
{
	LZ4_stream_t *lz4;
	ZSTD_CCtx  *zstd_c;
	ZSTD_DCtx  *zstd_d;
} codec_state;

static pthread_once_t codec_once = PTHREAD_ONCE_INIT;
static pthread_key_t codec_key;
static bool codec_key_ok;

static void
codec_state_free(void *arg)
{
	codec_state *cs = arg;

	if (cs->lz4 != NULL)
		LZ4_freeStream(cs->lz4);
	ZSTD_freeCCtx(cs->zstd_c);
	ZSTD_freeDCtx(cs->zstd_d);
	free(cs);
}

static void
codec_key_init(void)
{
	codec_key_ok = pthread_key_create(&codec_key, codec_state_free) == 0;
}

/* This thread's contexts (members made lazily); NULL if none could be made. */
static codec_state *
codec_thread_state(void)
{
	codec_state *cs;

	if (pthread_once(&codec_once, codec_key_init) != 0 || !codec_key_ok)
		return NULL;
	cs = pthread_getspecific(codec_key);
	if (cs != NULL)
		return cs;
	cs = calloc(1, sizeof(*cs));
	if (cs != NULL && pthread_setspecific(codec_key, cs) != 0)
	{
		free(cs);
		cs = NULL;
	}
	return cs;
}

/* This thread's LZ4 state, reset for a new block; NULL if none. */
static LZ4_stream_t *
lz4_thread_state(void)
{
	codec_state *cs = codec_thread_state();

	if (cs == NULL)
		return NULL;
	if (cs->lz4 != NULL)
		LZ4_resetStream_fast(cs->lz4);
	else
		cs->lz4 = LZ4_createStream();
	return cs->lz4;
}

static ZSTD_CCtx *
zstd_thread_cctx(void)
{
	codec_state *cs = codec_thread_state();

	if (cs == NULL)
		return NULL;
	if (cs->zstd_c == NULL)
		cs->zstd_c = ZSTD_createCCtx();
	return cs->zstd_c;
}

static ZSTD_DCtx *
zstd_thread_dctx(void)
{
	codec_state *cs = codec_thread_state();

	if (cs == NULL)
		return NULL;
	if (cs->zstd_d == NULL)
		cs->zstd_d = ZSTD_createDCtx();
	return cs->zstd_d;
}

/*
 * Compress raw into dst (after a varint32 raw length) with codec. Returns
 * false when the codec failed or did not save enough; dst is then left at
 * its original length and the caller stores the block raw.
 */
static bool
try_compress(sg_buf *dst, sg_slice raw, sg_codec codec, int zstd_level)
{
	size_t		start = dst->len;
	size_t		bound;
	size_t		got;
	size_t		hdr;

	if (codec == SG_CODEC_LZ4)
		bound = (size_t) LZ4_compressBound((int) raw.len);
	else
		bound = ZSTD_compressBound(raw.len);
	sg_put_varint32(dst, (uint32_t) raw.len);
	hdr = dst->len - start;
	if (bound == 0 || !sg_buf_reserve(dst, bound))
	{
		/* Out of memory here is reported by the caller via sg_buf_failed. */
		if (!sg_buf_failed(dst))
			sg_buf_truncate(dst, start);
		return false;
	}
	if (codec == SG_CODEC_LZ4)
	{
		LZ4_stream_t *st = lz4_thread_state();
		int			n;

		/* without a kept state, the one-shot call (same output format) */
		if (st != NULL)
			n = LZ4_compress_fast_continue(st, raw.data, dst->data + dst->len,
										   (int) raw.len, (int) bound, 1);
		else
			n = LZ4_compress_default(raw.data, dst->data + dst->len,
									 (int) raw.len, (int) bound);

		got = n > 0 ? (size_t) n : 0;
	}
	else
	{
		ZSTD_CCtx  *cctx = zstd_thread_cctx();
		size_t		n;

		if (cctx != NULL)
			n = ZSTD_compressCCtx(cctx, dst->data + dst->len, bound, raw.data, raw.len,
								  zstd_level);
		else
			n = ZSTD_compress(dst->data + dst->len, bound, raw.data, raw.len,
							  zstd_level);

		got = ZSTD_isError(n) ? 0 : n;
	}
	if (got == 0 || hdr + got > raw.len - (raw.len >> SG_TABLE_MIN_SAVING_SHIFT))
	{
		sg_buf_truncate(dst, start);
		return false;
	}
	dst->len += got;
	return true;
}

sg_code
sg_table_encode_block(sg_buf *dst, sg_slice raw, sg_codec codec, int zstd_level,
					  uint64_t *stored_len, sg_err *err)
{
	size_t		start = dst->len;
	uint8_t		tag = SG_CODEC_NONE;
	char		trailer[SG_TABLE_TRAILER_LEN];
	uint32_t	crc;

	if (raw.len > SG_TABLE_MAX_BLOCK_RAW)
		return sg_error(err, SG_INVALID_ARGUMENT,
						"sstable block of %zu bytes exceeds the %u-byte limit",
						raw.len, (unsigned) SG_TABLE_MAX_BLOCK_RAW);
	if (codec > SG_CODEC_MAX)
		return sg_error(err, SG_INVALID_ARGUMENT, "unknown sstable codec %d", (int) codec);
	if (codec != SG_CODEC_NONE && raw.len > 0 &&
		try_compress(dst, raw, codec, zstd_level))
		tag = (uint8_t) codec;
	else
		sg_buf_append_slice(dst, raw);
	if (sg_buf_failed(dst))
		return sg_error(err, SG_NO_MEMORY, "out of memory encoding an sstable block");
	*stored_len = dst->len - start;
	crc = sg_crc32c_extend(sg_crc32c(dst->data + start, dst->len - start), &tag, 1);
	trailer[0] = (char) tag;
	sg_encode_fixed32(trailer + 1, sg_crc32c_mask(crc));
	sg_buf_append(dst, trailer, sizeof(trailer));
	if (sg_buf_failed(dst))
		return sg_error(err, SG_NO_MEMORY, "out of memory encoding an sstable block");
	return SG_OK;
}

/* The handle's bounds, before anything is allocated: it may be garbage. */
static sg_code
check_block_handle(const char *path, uint64_t data_end, sg_block_handle h,
				   uint64_t max_raw, sg_err *err)
{
	if (h.offset > data_end || h.size > data_end - h.offset ||
		SG_TABLE_TRAILER_LEN > data_end - h.offset - h.size)
		return sg_error(err, SG_CORRUPTION,
						"sstable \"%s\": block handle (offset %llu, size %llu) points outside the data area (%llu bytes)",
						path, (unsigned long long) h.offset,
						(unsigned long long) h.size, (unsigned long long) data_end);
	/* A stored block is never larger than its raw form plus a length varint. */
	if (h.size > max_raw + SG_MAX_VARINT32_LEN)
		return sg_error(err, SG_CORRUPTION,
						"sstable \"%s\": block at offset %llu claims %llu bytes, more than the table's largest block",
						path, (unsigned long long) h.offset, (unsigned long long) h.size);
	return SG_OK;
}

/* The trailer's CRC against the stored bytes and the codec tag. */
static sg_code
check_block_crc(const char *stored, const char *path, sg_block_handle h, sg_err *err)
{
	uint32_t	crc = sg_crc32c_extend(0, stored, (size_t) h.size + 1);

	if (sg_crc32c_unmask(sg_decode_fixed32(stored + h.size + 1)) != crc)
		return sg_error(err, SG_CORRUPTION,
						"sstable \"%s\": block checksum mismatch at offset %llu (size %llu)",
						path, (unsigned long long) h.offset, (unsigned long long) h.size);
	return SG_OK;
}

sg_code
sg_table_decode_block(const char *stored, const char *path, uint64_t data_end,
					  sg_block_handle h, uint64_t max_raw,
					  char **out, size_t *out_len, sg_err *err)
{
	sg_code		rc;
	uint8_t		tag;

	if (max_raw > SG_TABLE_MAX_BLOCK_RAW)
		max_raw = SG_TABLE_MAX_BLOCK_RAW;
	if ((rc = check_block_handle(path, data_end, h, max_raw, err)) != SG_OK ||
		(rc = check_block_crc(stored, path, h, err)) != SG_OK)
		return rc;
	tag = (uint8_t) stored[h.size];
	if (tag == SG_CODEC_NONE)
	{
		char	   *raw;

		if (h.size > max_raw)
			return sg_error(err, SG_CORRUPTION,
							"sstable \"%s\": block at offset %llu is larger than the table's largest block",
							path, (unsigned long long) h.offset);
		raw = malloc(h.size > 0 ? (size_t) h.size : 1);
		if (raw == NULL)
			return sg_error(err, SG_NO_MEMORY, "sstable \"%s\": out of memory reading block at offset %llu",
							path, (unsigned long long) h.offset);
		memcpy(raw, stored, (size_t) h.size);
		*out = raw;
		*out_len = (size_t) h.size;
		return SG_OK;
	}
	if (tag > SG_CODEC_MAX)
		return sg_error(err, SG_CORRUPTION,
						"sstable \"%s\": unknown codec tag %u in block at offset %llu",
						path, tag, (unsigned long long) h.offset);

	sg_slice	in = sg_slice_make(stored, (size_t) h.size);
	uint32_t	raw_len;
	char	   *raw;
	bool		ok;

	/*
	 * LZ4 cannot expand input more than 255-fold (each extra length byte
	 * adds at most 255 output bytes), so a larger claim is corrupt; zstd
	 * has no such useful bound and relies on max_raw alone.
	 */
	if (!sg_get_varint32(&in, &raw_len) || raw_len > max_raw ||
		(tag == SG_CODEC_LZ4 && raw_len > (uint64_t) in.len * 255 + 16))
		return sg_error(err, SG_CORRUPTION,
						"sstable \"%s\": bad uncompressed length in block at offset %llu",
						path, (unsigned long long) h.offset);
	raw = malloc(raw_len > 0 ? raw_len : 1);
	if (raw == NULL)
		return sg_error(err, SG_NO_MEMORY, "sstable \"%s\": out of memory decompressing block at offset %llu",
						path, (unsigned long long) h.offset);
	if (tag == SG_CODEC_LZ4)
		ok = LZ4_decompress_safe(in.data, raw, (int) in.len, (int) raw_len) == (int) raw_len;
	else
	{
		ZSTD_DCtx  *dctx = zstd_thread_dctx();
		size_t		n;

		if (dctx != NULL)
			n = ZSTD_decompressDCtx(dctx, raw, raw_len, in.data, in.len);
		else
			n = ZSTD_decompress(raw, raw_len, in.data, in.len);

		ok = !ZSTD_isError(n) && n == raw_len;
	}
	if (!ok)
	{
		free(raw);
		return sg_error(err, SG_CORRUPTION,
						"sstable \"%s\": %s decompression failed for block at offset %llu",
						path, sg_codec_name((sg_codec) tag), (unsigned long long) h.offset);
	}
	*out = raw;
	*out_len = raw_len;
	return SG_OK;
}

sg_code
sg_table_read_block(sg_file *f, const char *path, uint64_t data_end,
					sg_block_handle h, uint64_t max_raw,
					char **out, size_t *out_len, sg_err *err)
{
	char	   *buf;
	sg_code		rc;

	if (max_raw > SG_TABLE_MAX_BLOCK_RAW)
		max_raw = SG_TABLE_MAX_BLOCK_RAW;
	if ((rc = check_block_handle(path, data_end, h, max_raw, err)) != SG_OK)
		return rc;
	buf = malloc((size_t) h.size + SG_TABLE_TRAILER_LEN);
	if (buf == NULL)
		return sg_error(err, SG_NO_MEMORY, "sstable \"%s\": out of memory reading block at offset %llu",
						path, (unsigned long long) h.offset);
	rc = sg_file_read_exact(f, h.offset, buf, (size_t) h.size + SG_TABLE_TRAILER_LEN, err);
	if (rc == SG_OK && (uint8_t) buf[h.size] == SG_CODEC_NONE && h.size <= max_raw)
	{
		/*
		 * A block stored raw (index, filter, properties: large for a big
		 * table) is handed over in the buffer it was read into, not
		 * copied once more.
		 */
		if ((rc = check_block_crc(buf, path, h, err)) == SG_OK)
		{
			*out = buf;
			*out_len = (size_t) h.size;
			return SG_OK;
		}
	}
	else if (rc == SG_OK)
		rc = sg_table_decode_block(buf, path, data_end, h, max_raw, out, out_len, err);
	free(buf);
	return rc;
}
