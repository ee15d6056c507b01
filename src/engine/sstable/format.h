/*
 * format.h — the frozen byte-level pieces of the SSTable file format that
 * both the builder and the reader use: block handles, the block trailer
 * (codec tag + checksum), per-block compression, and the fixed-size footer.
 *
 * The full layout is written out in src/engine/sstable/README.md; every
 * constant below is part of it. Changing any of them makes existing files
 * unreadable: add a new format version instead.
 *
 * Thread safety: everything here is stateless; sg_table_read_block() only
 * uses pread on the file, so many threads may call it on one sg_file.
 */
#ifndef SG_SSTABLE_FORMAT_H
#define SG_SSTABLE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/base/coding.h"
#include "engine/base/env.h"
#include "engine/base/slice.h"
#include "engine/base/status.h"

/*
 * The last 8 bytes of every table, fixed64 little-endian. On disk they read
 * as the ASCII text "STRATSST", which makes a table easy to spot in a dump.
 */
#define SG_TABLE_MAGIC UINT64_C(0x5453535441525453)

/* Footer format version; a reader refuses (SG_NOT_SUPPORTED) any other. */
#define SG_TABLE_FORMAT_VERSION 1

/*
 * Footer: three block handles as (fixed64 offset, fixed64 size) pairs —
 * index at byte 0, filter at 16, properties at 32 — then fixed32 format
 * version at 48, fixed32 masked CRC32C of bytes [0, 52) at 52, fixed64
 * magic at 56. 64 bytes in all.
 */
#define SG_TABLE_FOOTER_LEN 64
#define SG_TABLE_FOOTER_INDEX_OFF 0
#define SG_TABLE_FOOTER_FILTER_OFF 16
#define SG_TABLE_FOOTER_PROPS_OFF 32
#define SG_TABLE_FOOTER_VERSION_OFF 48
#define SG_TABLE_FOOTER_CRC_OFF 52
#define SG_TABLE_FOOTER_MAGIC_OFF 56

/*
 * Every block is followed by a 5-byte trailer: a 1-byte codec tag, then the
 * fixed32 masked CRC32C of the stored block bytes followed by the tag byte.
 * A block handle's size counts the stored bytes only, not the trailer.
 */
#define SG_TABLE_TRAILER_LEN 5

/*
 * Codec tags (on-disk values of the trailer's first byte). A compressed
 * block's stored bytes are varint32 uncompressed-length || codec output.
 */
typedef enum sg_codec
{
	SG_CODEC_NONE = 0,			/* stored bytes are the block itself */
	SG_CODEC_LZ4 = 1,			/* one LZ4 block, no dictionary */
	SG_CODEC_ZSTD = 2			/* one zstd frame */
} sg_codec;

#define SG_CODEC_MAX SG_CODEC_ZSTD

/*
 * Hard ceiling on an uncompressed block, checked before any allocation, so
 * that a corrupt length can never make a reader allocate more than this.
 * It also bounds a single entry (key + value) the builder accepts. 1 GiB is
 * PostgreSQL's own ceiling on one allocation, so no tuple exceeds it.
 */
#define SG_TABLE_MAX_BLOCK_RAW (UINT32_C(1) << 30)

/*
 * A compressed block is kept only if it saves at least 1/8 (12.5%) of the
 * raw size; otherwise the raw bytes are stored with SG_CODEC_NONE, since
 * decompressing costs CPU on every read for little saving.
 */
#define SG_TABLE_MIN_SAVING_SHIFT 3

/* Where a block lives: byte offset and stored size (trailer excluded). */
typedef struct sg_block_handle
{
	uint64_t	offset;
	uint64_t	size;
} sg_block_handle;

/* Index-entry encoding of a handle: varint64 offset, varint64 size. */
#define SG_BLOCK_HANDLE_MAX_LEN (2 * SG_MAX_VARINT64_LEN)

extern void sg_block_handle_put(sg_buf *dst, sg_block_handle h);
/* false on truncated or over-long input (the caller reports corruption). */
extern bool sg_block_handle_get(sg_slice *in, sg_block_handle *h);

typedef struct sg_table_footer
{
	sg_block_handle index;
	sg_block_handle filter;		/* size 0: the table has no filter */
	sg_block_handle props;
	uint32_t	version;
} sg_table_footer;

/* Write the 64-byte footer (with its CRC and the magic) into dst. */
extern void sg_table_footer_encode(char *dst, const sg_table_footer *f);

/*
 * Parse and check a footer read from the last 64 bytes of path (at
 * file offset off): magic, CRC, then version. SG_CORRUPTION or
 * SG_NOT_SUPPORTED with a message naming the file and offset.
 */
extern sg_code sg_table_footer_decode(const char *src, const char *path, uint64_t off,
									  sg_table_footer *f, sg_err *err);

/*
 * Encode raw block bytes for storage: compress with codec when that saves
 * enough, then append the stored bytes and the trailer to dst. *stored_len
 * gets the handle size (stored bytes without trailer). zstd_level applies
 * to SG_CODEC_ZSTD only. Returns SG_NO_MEMORY or SG_INVALID_ARGUMENT (raw
 * larger than SG_TABLE_MAX_BLOCK_RAW, unknown codec).
 */
extern sg_code sg_table_encode_block(sg_buf *dst, sg_slice raw, sg_codec codec,
									 int zstd_level, uint64_t *stored_len, sg_err *err);

/*
 * Read the block at h from f (path names it in messages), check its CRC,
 * and decompress it. data_end is the first byte that no block may reach
 * (the footer's offset); max_raw bounds the uncompressed size (at most
 * SG_TABLE_MAX_BLOCK_RAW). On success *out is a malloc'd buffer of *out_len
 * bytes the caller frees. Any mismatch is SG_CORRUPTION naming path and
 * offset.
 */
extern sg_code sg_table_read_block(sg_file *f, const char *path, uint64_t data_end,
								   sg_block_handle h, uint64_t max_raw,
								   char **out, size_t *out_len, sg_err *err);

/*
 * The same for a block already in memory: stored holds the h.size bytes of
 * the stored block and its trailer (borrowed; a sequential reader's
 * read-ahead window). Same checks, same errors; *out is always a new
 * buffer.
 */
extern sg_code sg_table_decode_block(const char *stored, const char *path, uint64_t data_end,
									 sg_block_handle h, uint64_t max_raw,
									 char **out, size_t *out_len, sg_err *err);

/* "none", "lz4", "zstd" or "unknown". */
extern const char *sg_codec_name(sg_codec codec);

#endif							/* SG_SSTABLE_FORMAT_H */
