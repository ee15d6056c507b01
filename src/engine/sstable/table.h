/*
 * table.h — SSTables: immutable sorted files of internal-key/value entries
 * (ikey.h order), written once by a builder and then read by any number of
 * threads through a reader.
 *
 * A table holds data blocks (prefix-compressed, per-block lz4/zstd/none),
 * one bloom filter over the user keys, a properties block, an index block
 * with one entry per data block, and a fixed 64-byte footer. Every block
 * carries a CRC32C; any mismatch is SG_CORRUPTION naming the file and the
 * offset. The byte-level format is in src/engine/sstable/README.md.
 *
 * Life of a table file: the builder writes "<dir>/<name>.tmp", and finish()
 * fsyncs it, renames it to "<dir>/<name>" and fsyncs the directory, so the
 * final name only ever refers to a complete, durable table. abandon()
 * removes the temporary file.
 *
 * Thread safety: a builder belongs to one thread. Any number of threads
 * may call a reader's get / may_contain / property accessors and create
 * and use iterators concurrently (reads go through pread; the one-time
 * loads of index and filter are serialised inside the reader). Each iterator belongs to one thread. The reader must
 * outlive every iterator made from it.
 */
#ifndef SG_SSTABLE_TABLE_H
#define SG_SSTABLE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/base/env.h"
#include "engine/base/ikey.h"
#include "engine/base/iter.h"
#include "engine/base/slice.h"
#include "engine/base/status.h"
#include "engine/sstable/format.h"

typedef struct sg_table_options
{
	size_t		block_size;		/* target uncompressed data block size; 4096 */
	int			restart_interval;	/* keys per restart point; 16 */
	sg_codec	codec;			/* data block codec; SG_CODEC_LZ4 */
	int			zstd_level;		/* for SG_CODEC_ZSTD; 3 */
	int			bloom_bits_per_key; /* 10; 0 writes no filter */
} sg_table_options;

/* Fill o with the defaults above. */
extern void sg_table_options_init(sg_table_options *o);

/*
 * Table-wide statistics, stored in the properties block. In a reader the
 * slices point into the reader's memory (valid while it is open).
 */
typedef struct sg_table_props
{
	uint64_t	num_entries;
	uint64_t	num_deletions;	/* entries of type SG_TYPE_DELETE */
	uint64_t	num_data_blocks;
	uint64_t	raw_key_bytes;	/* sum of internal-key lengths */
	uint64_t	raw_value_bytes;
	uint64_t	smallest_seq;	/* 0 / 0 when the table is empty */
	uint64_t	largest_seq;
	uint64_t	max_block_raw;	/* largest uncompressed data block */
	sg_codec	codec;			/* the codec option the table was built with */
	sg_slice	smallest_key;	/* internal keys; empty when num_entries == 0 */
	sg_slice	largest_key;
	sg_slice	user_stats;		/* opaque blob from sg_table_builder_set_user_stats */
} sg_table_props;

/* ---------------------------------------------------------------- builder */

typedef struct sg_table_builder sg_table_builder;

/* What finish() reports about the table it wrote. */
typedef struct sg_table_info
{
	uint64_t	file_size;
	uint64_t	num_entries;
	sg_buf		smallest_key;	/* internal keys (copies); empty if no entries */
	sg_buf		largest_key;
} sg_table_info;

extern void sg_table_info_init(sg_table_info *info);
extern void sg_table_info_free(sg_table_info *info);

/*
 * Start a table that will be named "<dir>/<name>"; entries go to
 * "<dir>/<name>.tmp" (created or truncated). opts may be NULL (defaults).
 * On success the builder must end in exactly one of finish() or abandon().
 */
extern sg_code sg_table_builder_open(sg_env *env, const char *dir, const char *name,
									 const sg_table_options *opts,
									 sg_table_builder **out, sg_err *err);

/*
 * Append one entry. REQUIRES: ikey is a well-formed internal key that
 * sorts strictly after the previous one (sg_ikey_compare) — otherwise
 * SG_INVALID_ARGUMENT and nothing is added; key + value under
 * SG_TABLE_MAX_BLOCK_RAW. After an I/O error every later call fails.
 */
extern sg_code sg_table_builder_add(sg_table_builder *b, sg_slice ikey, sg_slice value,
									sg_err *err);

/*
 * Set the opaque statistic blob stored in the properties block (e.g. the
 * oldest unfrozen xid the PostgreSQL layer saw). May be called any time
 * before finish(); the last call wins.
 */
extern sg_code sg_table_builder_set_user_stats(sg_table_builder *b, sg_slice blob,
											   sg_err *err);

/* Entries added so far, and bytes written to the file so far. */
extern uint64_t sg_table_builder_num_entries(const sg_table_builder *b);
extern uint64_t sg_table_builder_file_size(const sg_table_builder *b);

/*
 * Write filter, properties, index and footer; fsync; rename to the final
 * name; fsync the directory. Fills info (may be NULL) on success. Always
 * frees the builder; on failure the temporary file is removed (and a failed
 * fsync is flagged in err->sync_failed).
 */
extern sg_code sg_table_builder_finish(sg_table_builder *b, sg_table_info *info,
									   sg_err *err);

/* Drop the table: close and remove the temporary file, free the builder. */
extern void sg_table_builder_abandon(sg_table_builder *b);

/* ------------------------------------------------------------ block cache */

/*
 * A cache of uncompressed data blocks that readers share (the PostgreSQL
 * layer keeps one in shared memory, so backends stop decompressing the
 * same hot blocks). A reader given one consults it before it reads a
 * block for a seek (point lookups, index fetches) and offers it each block
 * it read that way. Sequential reads (a scan's, ahead, once each) go
 * around it, so a scan of a big table does not evict the hot blocks,
 * unless the iterator was asked to fill it (sg_table_reader_scan_iter):
 * then they go through it as seeks do.
 *
 * The key names the bytes for ever: file_id is chosen by the caller so
 * that no two files, in the cache's lifetime, share one (SSTables are
 * immutable, so a file's block at an offset never changes). A block is
 * offered only after its CRC and decompression succeeded.
 *
 * lookup: on a hit, a copy of the block in *block (malloc'd; the caller
 * frees it) and true. insert: keep a copy, or not (too big, no room).
 * Both are called from any thread, and must not fail in other ways.
 */
typedef struct sg_block_cache_key
{
	uint64_t	file_id[2];
	uint64_t	offset;
} sg_block_cache_key;

typedef struct sg_block_cache
{
	bool		(*lookup) (void *arg, const sg_block_cache_key *key, char **block, size_t *len);
	void		(*insert) (void *arg, const sg_block_cache_key *key, const char *block,
						   size_t len);
	void	   *arg;
} sg_block_cache;

/* ----------------------------------------------------------------- reader */

typedef struct sg_table_reader sg_table_reader;

/*
 * Open the table at path: read and check the footer and properties (the
 * index and filter are read and checked on first use, so their damage is
 * reported by the iterator, lookup or filter test that meets it).
 * SG_NOT_FOUND if the file does not exist, SG_CORRUPTION (naming
 * the file and offset) for any damage, SG_NOT_SUPPORTED for an unknown
 * format version.
 */
extern sg_code sg_table_reader_open(sg_env *env, const char *path,
									sg_table_reader **out, sg_err *err);

/* REQUIRES: no iterator of r is still alive. NULL is allowed. */
extern void sg_table_reader_close(sg_table_reader *r);

/*
 * Let r's seeks use cache (NULL: none), its blocks keyed by file_id (see
 * sg_block_cache). cache must outlive r. REQUIRES: called before r is
 * used by any other call, and not concurrently with one.
 */
extern void sg_table_reader_set_block_cache(sg_table_reader *r, const sg_block_cache *cache,
											uint64_t file_id0, uint64_t file_id1);

/*
 * Find the newest version of user_key with sequence <= seq. SG_OK when one
 * exists: *type tells PUT (value appended to *value after resetting it) or
 * DELETE (a tombstone: the key is deleted at this snapshot, value empty);
 * *found_seq (may be NULL) gets its sequence. SG_NOT_FOUND when the table
 * has no such version. Checks the bloom filter first.
 */
extern sg_code sg_table_reader_get(sg_table_reader *r, sg_slice user_key, uint64_t seq,
								   sg_buf *value, sg_value_type *type,
								   uint64_t *found_seq, sg_err *err);

/*
 * *maybe false only if the table certainly has no version of user_key.
 * Reads the filter on first use: SG_CORRUPTION (or an I/O error) when it
 * cannot be read, *maybe then true.
 */
extern sg_code sg_table_reader_may_contain(sg_table_reader *r, sg_slice user_key,
										   bool *maybe, sg_err *err);

/*
 * An iterator over every entry, in internal-key order. seek() takes an
 * internal key (a target shorter than 8 bytes is read as a bare user key,
 * i.e. its newest version). Never NULL: when the index cannot be read the
 * iterator is empty and its status is the error.
 */
extern sg_iter *sg_table_reader_iter(sg_table_reader *r);

/*
 * The same, for a scan whose blocks read in order go through the block
 * cache too (looked up, and offered when read: LevelDB's fill_cache). By
 * default only seeks use the cache, so a scan of a table bigger than the
 * cache does not evict the hot blocks: the caller asks for this one when
 * the table is small beside the cache (the PostgreSQL layer: at most a
 * quarter of it, blockcache.h).
 */
extern sg_iter *sg_table_reader_scan_iter(sg_table_reader *r, bool scan_fills_cache);

/*
 * Count the data blocks by the codec their trailer names (counts indexed
 * by sg_codec, SG_CODEC_MAX + 1 entries): a block the codec did not shrink
 * enough is stored raw (SG_CODEC_NONE) whatever the table's option. Reads
 * one trailer byte per block; SG_CORRUPTION for an unknown tag, a handle
 * outside the data area, or an index that lists another number of blocks
 * than the properties (the whole-index checks a verification wants).
 */
extern sg_code sg_table_reader_block_codecs(sg_table_reader *r, uint64_t *counts,
											sg_err *err);

extern const sg_table_props *sg_table_reader_props(const sg_table_reader *r);
extern uint64_t sg_table_reader_file_size(const sg_table_reader *r);
extern const char *sg_table_reader_path(const sg_table_reader *r);

#endif							/* SG_SSTABLE_TABLE_H */
