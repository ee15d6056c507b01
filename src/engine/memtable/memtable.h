/*
 * memtable.h — the in-memory write buffer of one LSM tree: every write
 * lands here (after the WAL) until the memtable is frozen and flushed to an
 * SSTable.
 *
 * A memtable is an sg_arena holding a shared header and a skiplist of
 * internal keys (ikey.h): user_key || fixed64((seq << 8) | type) -> value.
 * Everything it needs lives in the arena and is reached by offsets, so
 * another process that maps the same memory at another address attaches
 * with sg_memtable_attach(base, offset) and reads (or, holding the writer
 * lock, writes) exactly as the creator does.
 *
 * Concurrency contract:
 *  - Writers (sg_memtable_add, sg_memtable_freeze) are serialised by the
 *    caller: one lock per tree, held across the call. Any process may be
 *    the writer, one at a time.
 *  - Readers (get, versions, iterators, the statistics) take no lock and
 *    may run in any process concurrently with the writer. They see each
 *    entry either not at all or completely.
 *  - Lifetime: the memory must stay mapped and unreleased while anyone
 *    reads. The reference count is the tool: the creator holds one
 *    reference; a reader pins with sg_memtable_ref() (REQUIRES: it already
 *    holds a reference, or holds the lock that protects the tree's pointer
 *    to this memtable so it cannot drop to zero meanwhile) and unpins with
 *    sg_memtable_unref(). Whoever drops the last reference releases the
 *    arena's chunks (sg_arena_release on mt->arena).
 *  - Once frozen (immutable) a memtable refuses writes; readers keep
 *    seeing all of it while it is flushed.
 *  - The key filter (sg_memtable_plan_filter) never hides a key: the
 *    writer sets a key's bits before it links the entry, and publishes
 *    the filter (release) only once every entry already linked is in it.
 *    A reader that must see an entry (its writer committed before the
 *    reader's snapshot) therefore sees its bits, as it sees the entry.
 */
#ifndef SG_MEMTABLE_H
#define SG_MEMTABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/base/ikey.h"
#include "engine/base/iter.h"
#include "engine/base/slice.h"
#include "engine/base/status.h"
#include "engine/memtable/arena.h"
#include "engine/memtable/skiplist.h"

/* "SGMEMTB1": recognises a memtable header when attaching. */
#define SG_MEMTABLE_MAGIC UINT64_C(0x3142544d454d4753)

/*
 * "SGMEMDED": written over the magic by whoever drops the last reference,
 * before the chunks go back, so a stale offset is refused even before the
 * memory is reused.
 */
#define SG_MEMTABLE_DEAD_MAGIC UINT64_C(0x4445444d454d4753)

/* smallest_seq of a memtable that holds nothing yet. */
#define SG_MEMTABLE_NO_SEQ UINT64_MAX

/* Shared header, allocated in the arena (the first allocation). */
typedef struct sg_memtable_hdr
{
	uint64_t	magic;			/* SG_MEMTABLE_MAGIC */
	uint64_t	generation;		/* the creator's name for this memtable */
	sg_off		arena_hdr;		/* the arena this memtable lives in */
	sg_off		list;			/* its skiplist header */
	_Atomic uint32_t refs;		/* pins; the creator holds the first */
	_Atomic uint32_t immutable; /* 1 once frozen (release/acquire) */
	_Atomic uint64_t smallest_seq;	/* SG_MEMTABLE_NO_SEQ while empty */
	_Atomic uint64_t largest_seq;	/* 0 while empty */
	_Atomic uint64_t data_bytes;	/* sum of user key + value lengths */
	uint64_t	filter_plan;	/* bytes the memtable is expected to reach; 0: no filter */
	_Atomic sg_off filter;		/* the key filter (memtable.c), 0 until built (release/acquire) */
} sg_memtable_hdr;

/*
 * Entries a memtable with a planned filter holds before it builds the
 * filter: small memtables (most tables, most of the time) never pay its
 * memory, and by then the bytes per entry so far size it.
 */
#define SG_MEMTABLE_FILTER_AFTER 1024
/* Bits per expected entry (about 1% false positives with 7 probes). */
#define SG_MEMTABLE_FILTER_BITS_PER_KEY 10
#define SG_MEMTABLE_FILTER_PROBES 7

/*
 * Process-local handle. Plain values (no pointers into itself), so it may
 * be copied; build one per process with create or attach.
 */
typedef struct sg_memtable
{
	sg_arena	arena;
	sg_skiplist list;
	sg_off		hdr_off;
	sg_memtable_hdr *hdr;
} sg_memtable;

/* Outcome of a point lookup. */
typedef enum sg_memtable_result
{
	SG_MEMTABLE_NOT_FOUND = 0,	/* no version visible: look in older data */
	SG_MEMTABLE_FOUND,			/* newest visible version is a value */
	SG_MEMTABLE_DELETED			/* newest visible version is a tombstone */
} sg_memtable_result;

/*
 * Build an empty memtable in a freshly created arena (sg_arena_create) and
 * take the creator's reference. mt->hdr_off (sg_memtable_offset) and the
 * generation are what another process needs, with its own base, to
 * attach. generation: non-zero, and never given to two memtables that can
 * occupy the same memory over time (the caller keeps a counter); it is
 * what tells a reference to this memtable from a stale one to an earlier
 * memtable whose chunks were freed and reused.
 * REQUIRES: nothing else allocated from the arena yet.
 */
extern sg_code sg_memtable_create(sg_memtable *mt, const sg_arena *arena,
								  uint64_t generation, sg_err *err);

/*
 * Attach to an existing memtable whose header is at mt_off from base and
 * whose generation is the one given. more/more_ctx: this process's chunk
 * provider if it will write, else NULL. SG_CORRUPTION when no live
 * memtable of that generation is found there (a stale reference).
 */
extern sg_code sg_memtable_attach(sg_memtable *mt, char *base, sg_off mt_off,
								  uint64_t generation,
								  sg_arena_chunk_fn more, void *more_ctx,
								  sg_err *err);

/* The generation given at creation. */
extern uint64_t sg_memtable_generation(const sg_memtable *mt);

/* Offset of the shared header: the memtable's name across processes. */
extern sg_off sg_memtable_offset(const sg_memtable *mt);

/*
 * Add one version: user_key at sequence seq, a value (SG_TYPE_PUT) or a
 * tombstone (SG_TYPE_DELETE, value ignored). SG_INVALID_ARGUMENT for a
 * frozen memtable, seq > SG_MAX_SEQUENCE, an unknown type, or a
 * (user_key, seq) already present; SG_NO_MEMORY when the arena is full —
 * in every failure case the memtable is unchanged.
 * REQUIRES: the caller holds the tree's writer lock.
 */
extern sg_code sg_memtable_add(sg_memtable *mt, uint64_t seq,
							   sg_value_type type, sg_slice user_key,
							   sg_slice value, sg_err *err);

/*
 * Plan a filter of the user keys held, for a memtable expected to grow to
 * about capacity_bytes of arena memory (0: none, the default). Once it
 * holds SG_MEMTABLE_FILTER_AFTER entries, the add that reaches that count
 * builds the filter, sized from the bytes per entry so far (at most 1/64
 * of capacity_bytes); from then on get() and versions() of a key the
 * filter rules out skip the skiplist search. A memtable that grows past
 * the plan keeps a correct filter with more false positives; one whose
 * filter cannot be allocated (the arena is full) simply has none.
 * REQUIRES: the writer lock.
 */
extern void sg_memtable_plan_filter(sg_memtable *mt, uint64_t capacity_bytes);

/*
 * False only when user_key is certainly not held (true while there is no
 * filter). get() and versions() ask it first.
 */
extern bool sg_memtable_may_contain(const sg_memtable *mt, sg_slice user_key);

/* Bytes of the key filter; 0 while there is none. */
extern uint64_t sg_memtable_filter_bytes(const sg_memtable *mt);

/*
 * Newest version of user_key with seq <= snapshot_seq. On FOUND *value
 * points into the memtable (valid while it is pinned); *seq_out, when not
 * NULL, receives the deciding version's sequence (FOUND or DELETED).
 */
extern sg_memtable_result sg_memtable_get(const sg_memtable *mt,
										  sg_slice user_key,
										  uint64_t snapshot_seq,
										  sg_slice *value, uint64_t *seq_out);

/*
 * Called for each version, newest first; return false to stop. value is
 * empty for tombstones and valid while the memtable is pinned.
 */
typedef bool (*sg_memtable_version_fn) (void *ctx, uint64_t seq,
										sg_value_type type, sg_slice value);

/*
 * Visit every version of user_key with seq <= max_seq (SG_MAX_SEQUENCE:
 * all), newest first. Returns how many were visited.
 */
extern uint64_t sg_memtable_versions(const sg_memtable *mt, sg_slice user_key,
									 uint64_t max_seq,
									 sg_memtable_version_fn fn, void *ctx);

/*
 * An iterator over all entries in internal-key order: key() is the
 * internal key, value() the stored value. A seek target shorter than an
 * internal key is taken as a bare user key (lands on its newest version).
 * Never NULL: on malloc failure an iterator reporting SG_NO_MEMORY.
 * REQUIRES: mt stays pinned until the iterator is destroyed; the iterator
 * keeps its own copy of the handle, so *mt itself may go away.
 */
extern sg_iter *sg_memtable_iter(const sg_memtable *mt);

/* Stop accepting writes. REQUIRES: the writer lock. */
extern void sg_memtable_freeze(sg_memtable *mt);
extern bool sg_memtable_is_immutable(const sg_memtable *mt);

/*
 * Pin / unpin. unref returns true when it dropped the last reference; it
 * has then marked the header dead (SG_MEMTABLE_DEAD_MAGIC), and the
 * caller releases the arena. An unref of a memtable with no reference
 * left changes nothing and returns false.
 */
extern void sg_memtable_ref(sg_memtable *mt);
extern bool sg_memtable_unref(sg_memtable *mt);
extern uint32_t sg_memtable_refs(const sg_memtable *mt);

/* Entries (versions) held. */
extern uint64_t sg_memtable_entries(const sg_memtable *mt);

/*
 * Smallest and largest sequence numbers held; false (and nothing stored)
 * while the memtable is empty.
 */
extern bool sg_memtable_seq_range(const sg_memtable *mt, uint64_t *smallest,
								  uint64_t *largest);

/* Shared memory the memtable occupies (its arena's chunks), in bytes. */
extern uint64_t sg_memtable_memory_usage(const sg_memtable *mt);

/* Sum of user key and value bytes held (payload, without overhead). */
extern uint64_t sg_memtable_data_bytes(const sg_memtable *mt);

#endif							/* SG_MEMTABLE_H */
