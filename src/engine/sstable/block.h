/*
 * block.h — the sorted key/value block that SSTable data and index blocks
 * are made of: a builder with prefix-compressed keys and restart points, and
 * a bounds-checked iterator over a block's bytes.
 *
 * Block layout (uncompressed; frozen, see README.md):
 *
 *     entry*  restart[num_restarts]  num_restarts
 *
 *     entry   = varint32 shared || varint32 unshared || varint32 value_len
 *               || key_suffix[unshared] || value[value_len]
 *     restart = fixed32 offset of an entry whose shared == 0
 *     num_restarts = fixed32 (0 only for an empty block)
 *
 * An entry's key is the first `shared` bytes of the previous key followed
 * by its suffix. Every restart_interval-th entry is a restart point and
 * stores its whole key, so seek can binary-search the restart array.
 *
 * Keys are internal keys (ikey.h) and are ordered by sg_ikey_compare.
 *
 * Thread safety: a builder or an iterator belongs to one thread; several
 * iterators may read the same block bytes at once (they never write them).
 */
#ifndef SG_SSTABLE_BLOCK_H
#define SG_SSTABLE_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/base/iter.h"
#include "engine/base/slice.h"

typedef struct sg_block_builder
{
	sg_buf		buf;			/* entries so far */
	sg_buf		restarts;		/* fixed32 restart offsets so far */
	sg_buf		last_key;		/* key of the last entry added */
	int			interval;		/* entries per restart point (>= 1) */
	int			counter;		/* entries since the last restart point */
	size_t		num_entries;
} sg_block_builder;

/* REQUIRES: restart_interval >= 1. */
extern void sg_block_builder_init(sg_block_builder *b, int restart_interval);
extern void sg_block_builder_free(sg_block_builder *b);
/* Forget every entry (keep the allocations) to start the next block. */
extern void sg_block_builder_reset(sg_block_builder *b);

/*
 * Append an entry. REQUIRES: key sorts after every key added since the last
 * reset (the table builder checks this); key and value each < 4 GiB.
 * Memory failure is sticky: see sg_block_builder_failed().
 */
extern void sg_block_builder_add(sg_block_builder *b, sg_slice key, sg_slice value);

/*
 * Append the restart array and return the finished block, valid until the
 * next reset or free. REQUIRES: called once per reset.
 */
extern sg_slice sg_block_builder_finish(sg_block_builder *b);

/* Bytes the block would take if finished now. */
extern size_t sg_block_builder_size(const sg_block_builder *b);

static inline bool
sg_block_builder_empty(const sg_block_builder *b)
{
	return b->num_entries == 0;
}

extern bool sg_block_builder_failed(const sg_block_builder *b);

/*
 * An iterator over the block bytes [data, data + len). If owned is not
 * NULL it is free()d when the iterator is destroyed (it is normally data
 * itself). path and block_offset name the block in error messages; path is
 * borrowed and must outlive the iterator.
 *
 * Every length read from the block is checked against the block bounds; a
 * bad one ends iteration with status SG_CORRUPTION naming path and offset.
 * Keys shorter than an internal-key trailer are corruption too. A block
 * whose restart array is malformed gives an iterator that is never valid
 * and reports SG_CORRUPTION. Never returns NULL (out of memory gives an
 * error iterator).
 */
extern sg_iter *sg_block_iter_new(const char *data, size_t len, char *owned,
								  const char *path, uint64_t block_offset);

#endif							/* SG_SSTABLE_BLOCK_H */
