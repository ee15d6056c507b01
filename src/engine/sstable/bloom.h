/*
 * bloom.h — the bloom filter over user keys stored in each SSTable, so a
 * point lookup can skip tables that cannot hold the key.
 *
 * Filter block layout (frozen, see README.md):
 *
 *     bits[nbytes]  k
 *
 * nbytes >= 8, k (1 byte) = number of probes, 1..30. A key is probed at bit
 * positions ((h + i * delta) mod 2^64) mod (8 * nbytes) for i in [0, k),
 * where h = sg_hash64(user_key) and delta = rotate_right(h, 33) | 1
 * (sg_hash64_probe_step: double hashing; both frozen in base/hash.h);
 * bit j is bit (j % 8) of byte j / 8.
 *
 * Thread safety: stateless; a filter may be probed from many threads.
 */
#ifndef SG_SSTABLE_BLOOM_H
#define SG_SSTABLE_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/base/hash.h"
#include "engine/base/slice.h"

/* Fewest bytes in a filter's bit array (keeps tiny tables' FP rate low). */
#define SG_BLOOM_MIN_BYTES 8
/* Most probes a filter may declare. */
#define SG_BLOOM_MAX_PROBES 30

/*
 * Append a filter for n keys, given by their sg_hash64 values, using
 * bits_per_key bits each (REQUIRES: 1 <= bits_per_key <= 1000). Memory
 * failure is sticky in dst.
 */
extern void sg_bloom_build(sg_buf *dst, const uint64_t *hashes, size_t n, int bits_per_key);

/* True when filter is well formed (see layout above). */
extern bool sg_bloom_valid(sg_slice filter);

/*
 * False only when the key (by hash) is certainly absent. A malformed
 * filter answers true, so it can never hide a key.
 */
extern bool sg_bloom_may_contain(sg_slice filter, uint64_t hash);

#endif							/* SG_SSTABLE_BLOOM_H */
