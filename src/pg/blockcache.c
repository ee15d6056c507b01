/*
 * blockcache.c — the shared cache of uncompressed SSTable data blocks
 * (blockcache.h): fixed-size slots in shared memory, split into
 * partitions, each with its own lock, hash chains and clock hand.
 *
 * Layout: partition p owns slots [p * per_part, (p + 1) * per_part) and
 * buckets [p * buckets_per_part, ...); a slot is free (len 0) or holds one
 * block under its key, linked in its bucket's chain by slot index.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "pg/blockcache.h"
#include "pg/stratago.h"

/* Usage counts saturate here: a block read often survives this many sweeps. */
#define BLOCK_CACHE_MAX_USAGE 3

typedef struct CacheSlot
{
	sg_block_cache_key key;
	uint32		hash;
	uint32		len;			/* 0: free */
	int32		next;			/* next slot in the bucket chain; -1 ends it */
	pg_atomic_uint32 usage;		/* bumped under the shared lock */
} CacheSlot;

typedef struct CachePartition
{
	LWLock	   *lock;
	int32		hand;			/* next slot the clock looks at, relative */
} CachePartition;

typedef struct BlockCacheShared
{
	int32		per_part;		/* slots per partition */
	int32		buckets_per_part;	/* a power of two */
	CachePartition parts[STRATA_BLOCK_CACHE_PARTITIONS];
	/* then: int32 buckets[], CacheSlot slots[], char data[] */
} BlockCacheShared;

static BlockCacheShared *cache_shared = NULL;
static int32 *cache_buckets;
static CacheSlot *cache_slots;
static char *cache_data;

static uint64 backend_hits = 0;
static uint64 backend_misses = 0;

static bool cache_lookup(void *arg, const sg_block_cache_key *key, char **block, size_t *len);
static void cache_insert(void *arg, const sg_block_cache_key *key, const char *block, size_t len);

static const sg_block_cache block_cache_ops = {cache_lookup, cache_insert, NULL};

/* Slots in all, from the setting; 0 disables the cache. */
static int32
total_slots(void)
{
	int64		slots = (int64) strata_block_cache_size_kb * 1024 / STRATA_BLOCK_CACHE_SLOT;

	/* the same number in every partition; fewer than one each: no cache */
	slots = Min(slots, (int64) PG_INT32_MAX / 2);
	return (int32) (slots - slots % STRATA_BLOCK_CACHE_PARTITIONS);
}

static int32
buckets_per_part(int32 per_part)
{
	int32		n = 1;

	while (n < per_part)
		n <<= 1;
	return n;
}

Size
strata_block_cache_shmem_size(void)
{
	int32		slots = total_slots();
	Size		size;

	if (slots == 0)
		return 0;
	size = MAXALIGN(sizeof(BlockCacheShared));
	size = add_size(size, MAXALIGN(mul_size(sizeof(int32),
											mul_size(STRATA_BLOCK_CACHE_PARTITIONS,
													 buckets_per_part(slots / STRATA_BLOCK_CACHE_PARTITIONS)))));
	size = add_size(size, MAXALIGN(mul_size(sizeof(CacheSlot), slots)));
	size = add_size(size, mul_size(STRATA_BLOCK_CACHE_SLOT, slots));
	return size;
}

/* REQUIRES: AddinShmemInitLock held (shmem_startup_hook). */
void
strata_block_cache_shmem_init(void)
{
	int32		slots = total_slots();
	int32		per_part;
	int32		nbuckets;
	bool		found;
	char	   *p;

	if (slots == 0)
		return;
	per_part = slots / STRATA_BLOCK_CACHE_PARTITIONS;
	nbuckets = buckets_per_part(per_part);
	cache_shared = ShmemInitStruct("stratago block cache", strata_block_cache_shmem_size(),
								   &found);
	p = (char *) cache_shared + MAXALIGN(sizeof(BlockCacheShared));
	cache_buckets = (int32 *) p;
	p += MAXALIGN(sizeof(int32) * STRATA_BLOCK_CACHE_PARTITIONS * nbuckets);
	cache_slots = (CacheSlot *) p;
	p += MAXALIGN(sizeof(CacheSlot) * slots);
	cache_data = p;
	if (found)
		return;

	cache_shared->per_part = per_part;
	cache_shared->buckets_per_part = nbuckets;
	for (int i = 0; i < STRATA_BLOCK_CACHE_PARTITIONS; i++)
	{
		cache_shared->parts[i].lock = &(GetNamedLWLockTranche("stratago block cache"))[i].lock;
		cache_shared->parts[i].hand = 0;
	}
	for (int i = 0; i < STRATA_BLOCK_CACHE_PARTITIONS * nbuckets; i++)
		cache_buckets[i] = -1;
	for (int i = 0; i < slots; i++)
	{
		memset(&cache_slots[i].key, 0, sizeof(cache_slots[i].key));
		cache_slots[i].hash = 0;
		cache_slots[i].len = 0;
		cache_slots[i].next = -1;
		pg_atomic_init_u32(&cache_slots[i].usage, 0);
	}
}

/*
 * Not in the postmaster (its recovery at startup opens trees): it has no
 * PGPROC to wait for a partition lock with.
 */
const sg_block_cache *
strata_block_cache(void)
{
	return cache_shared != NULL && IsUnderPostmaster ? &block_cache_ops : NULL;
}

bool
strata_block_cache_fits_scan(uint64 raw_bytes)
{
	if (strata_block_cache() == NULL)
		return false;
	return raw_bytes <= (uint64) total_slots() * STRATA_BLOCK_CACHE_SLOT / 4;
}

void
strata_block_cache_counters(uint64 *hits, uint64 *misses)
{
	*hits = backend_hits;
	*misses = backend_misses;
}

static inline uint32
key_hash(const sg_block_cache_key *key)
{
	return hash_bytes((const unsigned char *) key, sizeof(*key));
}

static inline bool
key_equal(const sg_block_cache_key *a, const sg_block_cache_key *b)
{
	return a->offset == b->offset && a->file_id[0] == b->file_id[0] &&
		a->file_id[1] == b->file_id[1];
}

static inline CachePartition *
partition_of(uint32 hash)
{
	return &cache_shared->parts[hash % STRATA_BLOCK_CACHE_PARTITIONS];
}

/* The bucket head of hash in its partition. */
static inline int32 *
bucket_of(uint32 hash)
{
	uint32		part = hash % STRATA_BLOCK_CACHE_PARTITIONS;
	uint32		b = (hash / STRATA_BLOCK_CACHE_PARTITIONS) & (cache_shared->buckets_per_part - 1);

	return &cache_buckets[part * cache_shared->buckets_per_part + b];
}

/* The slot holding key, or -1. REQUIRES: its partition's lock held. */
static int32
find_slot(const sg_block_cache_key *key, uint32 hash)
{
	for (int32 s = *bucket_of(hash); s >= 0; s = cache_slots[s].next)
		if (cache_slots[s].hash == hash && key_equal(&cache_slots[s].key, key))
			return s;
	return -1;
}

static bool
cache_lookup(void *arg, const sg_block_cache_key *key, char **block, size_t *len)
{
	uint32		hash = key_hash(key);
	CachePartition *part = partition_of(hash);
	char	   *copy = NULL;
	int32		s;

	LWLockAcquire(part->lock, LW_SHARED);
	s = find_slot(key, hash);
	if (s >= 0)
	{
		CacheSlot  *slot = &cache_slots[s];

		/* malloc under the lock: the block must not change before the copy */
		copy = malloc(slot->len);
		if (copy != NULL)
		{
			memcpy(copy, cache_data + (Size) s * STRATA_BLOCK_CACHE_SLOT, slot->len);
			*len = slot->len;
			if (pg_atomic_read_u32(&slot->usage) < BLOCK_CACHE_MAX_USAGE)
				pg_atomic_fetch_add_u32(&slot->usage, 1);
		}
	}
	LWLockRelease(part->lock);
	if (copy == NULL)
	{
		backend_misses++;
		return false;
	}
	backend_hits++;
	*block = copy;
	return true;
}

/* Unlink slot s from its bucket chain. REQUIRES: partition lock exclusive. */
static void
unlink_slot(int32 s)
{
	int32	   *link = bucket_of(cache_slots[s].hash);

	while (*link != s)
	{
		Assert(*link >= 0);
		link = &cache_slots[*link].next;
	}
	*link = cache_slots[s].next;
	cache_slots[s].next = -1;
	cache_slots[s].len = 0;
}

static void
cache_insert(void *arg, const sg_block_cache_key *key, const char *block, size_t len)
{
	uint32		hash = key_hash(key);
	CachePartition *part = partition_of(hash);
	int32		first = (int32) (hash % STRATA_BLOCK_CACHE_PARTITIONS) * cache_shared->per_part;
	int32		victim = -1;
	int32	   *bucket;

	if (len == 0 || len > STRATA_BLOCK_CACHE_SLOT)
		return;
	LWLockAcquire(part->lock, LW_EXCLUSIVE);
	if (find_slot(key, hash) >= 0)
	{
		/* another backend read the same block meanwhile */
		LWLockRelease(part->lock);
		return;
	}

	/*
	 * Clock sweep: a free slot, or one whose usage has run down. Every
	 * pass lowers each count by one, so the sweep ends within
	 * BLOCK_CACHE_MAX_USAGE + 1 passes.
	 */
	while (victim < 0)
	{
		int32		s = first + part->hand;
		uint32		usage;

		part->hand = (part->hand + 1) % cache_shared->per_part;
		if (cache_slots[s].len == 0)
			victim = s;
		else if ((usage = pg_atomic_read_u32(&cache_slots[s].usage)) > 0)
			pg_atomic_write_u32(&cache_slots[s].usage, usage - 1);
		else
			victim = s;
	}
	if (cache_slots[victim].len != 0)
		unlink_slot(victim);

	memcpy(cache_data + (Size) victim * STRATA_BLOCK_CACHE_SLOT, block, len);
	cache_slots[victim].key = *key;
	cache_slots[victim].hash = hash;
	cache_slots[victim].len = (uint32) len;
	pg_atomic_write_u32(&cache_slots[victim].usage, 1);
	bucket = bucket_of(hash);
	cache_slots[victim].next = *bucket;
	*bucket = victim;
	LWLockRelease(part->lock);
}
