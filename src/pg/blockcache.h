/*
 * blockcache.h — the shared cache of uncompressed SSTable data blocks:
 * shared memory sized by stratago.block_cache_size, so that index fetches
 * and point lookups of every backend stop reading and decompressing the
 * same hot blocks (as shared_buffers serves heap pages).
 *
 * Contract:
 *  - strata_block_cache() is the engine's sg_block_cache (table.h) over
 *    this memory, or NULL when the size is 0; sstcache.c gives it to every
 *    reader it opens, keyed by (tree id, file number): tree ids are random
 *    64-bit numbers drawn at creation and file numbers are never reused in
 *    a tree, so a key never names other bytes; the cache is empty after
 *    every start or crash restart of the server (shared memory is new);
 *  - lookups copy the block out, so nothing stays pinned: an error or an
 *    exit anywhere after a lookup leaves nothing to release;
 *  - blocks larger than a slot (STRATA_BLOCK_CACHE_SLOT bytes) are not
 *    kept; eviction is a clock sweep within each partition.
 *
 * Thread safety and locks: STRATA_BLOCK_CACHE_PARTITIONS LWLocks (tranche
 * "stratago block cache"), a block's partition chosen by its key's hash;
 * lookups take it shared, inserts exclusive; it is held for a hash chain
 * walk and one copy of at most a slot, and never with another lock.
 */
#ifndef STRATA_BLOCKCACHE_H
#define STRATA_BLOCKCACHE_H

#include "postgres.h"

#include "engine/sstable/table.h"

#define STRATA_BLOCK_CACHE_PARTITIONS 64

/*
 * Bytes of one slot: a data block is cut once it reaches 4096 raw bytes
 * (sg_table_options.block_size), so it holds 4096 bytes and the part of
 * one entry that crossed; longer ones (rows of more than ~500 bytes) are
 * read from their file each time.
 */
#define STRATA_BLOCK_CACHE_SLOT 4608

extern Size strata_block_cache_shmem_size(void);
extern void strata_block_cache_shmem_init(void);

/*
 * The cache for readers; NULL when stratago.block_cache_size is 0, and in
 * the postmaster.
 */
extern const sg_block_cache *strata_block_cache(void);

/*
 * Should a scan of a table holding raw_bytes of uncompressed entries go
 * through the cache (and fill it)? Only when the table is at most a quarter
 * of the cache: heap's rule for shared_buffers (a bigger table is scanned
 * through a small ring), so a small hot table scanned again and again
 * stays decompressed, and a scan of a big one reads around the cache and
 * does not evict what index fetches keep.
 */
extern bool strata_block_cache_fits_scan(uint64 raw_bytes);

/* This backend's lookups answered from the cache, and not. */
extern void strata_block_cache_counters(uint64 *hits, uint64 *misses);

#endif							/* STRATA_BLOCKCACHE_H */
