/*
 * hash.h — the engine's one 64-bit hash of a byte string, for bloom
 * filters: the SSTable filters stored on disk and the memtables' filters
 * in shared memory.
 *
 * Frozen: an SSTable's filter block holds bits placed by this function
 * (sstable/bloom.h), so its output for a given key may never change.
 * Deterministic across platforms; not cryptographic.
 *
 * Thread safety: a pure function.
 */
#ifndef SG_BASE_HASH_H
#define SG_BASE_HASH_H

#include <stdint.h>

#include "engine/base/slice.h"

extern uint64_t sg_hash64(sg_slice key);

/*
 * The step between a filter's probes for hash h (double hashing: probe i
 * is at h + i * step). Odd, so it never repeats a position early. Frozen
 * with the filter format too.
 */
static inline uint64_t
sg_hash64_probe_step(uint64_t h)
{
	return ((h >> 33) | (h << 31)) | 1;
}

#endif							/* SG_BASE_HASH_H */
