/*
 * memtable.c — one tree's in-memory write buffer: a shared header plus a
 * skiplist, both in an offset-addressed arena (contract in memtable.h,
 * layout in README.md).
 *
 * Invariants:
 *  - every (user_key, seq) is present at most once;
 *  - while the memtable is non-empty, smallest_seq <= every seq held <=
 *    largest_seq; the writer updates them after publishing the entry, so a
 *    concurrent reader may briefly see a range that lags by one entry;
 *  - once immutable is set (under the writer lock) no entry is ever added.
 */
#include "engine/memtable/memtable.h"

#include <stdlib.h>

#include "engine/base/hash.h"

/* A fixed seed keeps list shapes (and so performance) reproducible. */
#define MEMTABLE_RNG_SEED UINT64_C(0x5367616d656d7462)

sg_code
sg_memtable_create(sg_memtable *mt, const sg_arena *arena, uint64_t generation,
				   sg_err *err)
{
	sg_off		hoff;
	sg_code		rc;

	if (generation == 0)
		return sg_error(err, SG_INVALID_ARGUMENT, "memtable: generation 0 is reserved");
	mt->arena = *arena;
	rc = sg_arena_alloc(&mt->arena, sizeof(sg_memtable_hdr), 8, &hoff, err);
	if (rc != SG_OK)
		return rc;
	rc = sg_skiplist_create(&mt->list, &mt->arena, MEMTABLE_RNG_SEED, err);
	if (rc != SG_OK)
		return rc;

	sg_memtable_hdr *h = (sg_memtable_hdr *) sg_arena_ptr(&mt->arena, hoff);

	h->generation = generation;
	h->arena_hdr = mt->arena.hdr_off;
	h->list = mt->list.hdr_off;
	atomic_init(&h->refs, 1);
	atomic_init(&h->immutable, 0);
	atomic_init(&h->smallest_seq, SG_MEMTABLE_NO_SEQ);
	atomic_init(&h->largest_seq, 0);
	atomic_init(&h->data_bytes, 0);
	h->filter_plan = 0;
	atomic_init(&h->filter, SG_OFF_NULL);
	/* Last, so that a half-initialised header is never taken for a memtable. */
	h->magic = SG_MEMTABLE_MAGIC;
	mt->hdr_off = hoff;
	mt->hdr = h;
	return SG_OK;
}

sg_code
sg_memtable_attach(sg_memtable *mt, char *base, sg_off mt_off, uint64_t generation,
				   sg_arena_chunk_fn more, void *more_ctx, sg_err *err)
{
	sg_memtable_hdr *h;
	sg_code		rc;

	if (base == NULL || (uintptr_t) base % SG_ARENA_ALIGN != 0 ||
		mt_off == SG_OFF_NULL || mt_off % SG_ARENA_ALIGN != 0)
		return sg_error(err, SG_INVALID_ARGUMENT,
						"memtable: cannot attach at offset %llu (misaligned or null)",
						(unsigned long long) mt_off);
	h = (sg_memtable_hdr *) (base + mt_off);
	if (h->magic == SG_MEMTABLE_DEAD_MAGIC)
		return sg_error(err, SG_CORRUPTION,
						"memtable: stale reference to a released memtable at offset %llu (generation %llu)",
						(unsigned long long) mt_off, (unsigned long long) generation);
	if (h->magic != SG_MEMTABLE_MAGIC)
		return sg_error(err, SG_CORRUPTION,
						"memtable: no memtable header at offset %llu",
						(unsigned long long) mt_off);
	if (h->generation != generation)
		return sg_error(err, SG_CORRUPTION,
						"memtable: stale reference at offset %llu: generation %llu, found %llu",
						(unsigned long long) mt_off, (unsigned long long) generation,
						(unsigned long long) h->generation);
	rc = sg_arena_attach(&mt->arena, base, h->arena_hdr, more, more_ctx, err);
	if (rc != SG_OK)
		return rc;
	sg_skiplist_attach(&mt->list, base, h->list);
	mt->hdr_off = mt_off;
	mt->hdr = h;
	return SG_OK;
}

sg_off
sg_memtable_offset(const sg_memtable *mt)
{
	return mt->hdr_off;
}

/* ---- key filter ---- */

/*
 * A bloom filter of the user keys held, in the arena (layout in README.md).
 * Probed as the SSTable filters are (sg_hash64 and its probe step,
 * base/hash.h); bit j is bit j % 64 of words[j / 64]. Only the writer sets
 * bits.
 */
typedef struct sg_memtable_filter
{
	uint64_t	nbits;			/* a multiple of 64 */
	_Atomic uint64_t words[];
} sg_memtable_filter;

void
sg_memtable_plan_filter(sg_memtable *mt, uint64_t capacity_bytes)
{
	mt->hdr->filter_plan = capacity_bytes;
}

static sg_memtable_filter *
filter_of(const sg_memtable *mt)
{
	sg_off		off = atomic_load_explicit(&mt->hdr->filter, memory_order_acquire);

	return off == SG_OFF_NULL ? NULL : (sg_memtable_filter *) sg_arena_ptr(&mt->arena, off);
}

/* REQUIRES: the writer lock (the only one to set bits). */
static void
filter_set(sg_memtable_filter *f, sg_slice user_key)
{
	uint64_t	h = sg_hash64(user_key);
	uint64_t	step = sg_hash64_probe_step(h);

	for (int i = 0; i < SG_MEMTABLE_FILTER_PROBES; i++, h += step)
	{
		uint64_t	bit = h % f->nbits;

		atomic_fetch_or_explicit(&f->words[bit / 64], UINT64_C(1) << (bit % 64),
								 memory_order_relaxed);
	}
}

/*
 * Build the planned filter from every entry held, then publish it. A
 * failed allocation drops the plan: the memtable goes on without one.
 * REQUIRES: the writer lock.
 */
static void
filter_build(sg_memtable *mt)
{
	sg_memtable_hdr *h = mt->hdr;
	uint64_t	count = sg_skiplist_count(&mt->list);
	/* the entries the plan holds, at the bytes per entry so far */
	uint64_t	expected = h->filter_plan / (sg_arena_used(&mt->arena) / count + 1);
	uint64_t	nbits;
	sg_off		off;
	sg_err		err;
	sg_memtable_filter *f;
	sg_skiplist_pos p;

	if (expected < 2 * count)
		expected = 2 * count;
	nbits = (expected * SG_MEMTABLE_FILTER_BITS_PER_KEY + 63) / 64 * 64;

	/*
	 * At most 1/64 of the planned memory (8 bits a byte): entries of many
	 * small rows get fewer bits each, but the filter never crowds out
	 * what it filters. Too few bits for the entries already held would
	 * rule out little: then none.
	 */
	if (nbits > h->filter_plan / 64 * 8)
		nbits = h->filter_plan / 64 * 8 / 64 * 64;
	if (nbits < 4 * count)
	{
		h->filter_plan = 0;
		return;
	}
	if (sg_arena_alloc(&mt->arena, sizeof(sg_memtable_filter) + nbits / 8, 8, &off, &err) != SG_OK)
	{
		h->filter_plan = 0;
		return;
	}
	f = (sg_memtable_filter *) sg_arena_ptr(&mt->arena, off);
	f->nbits = nbits;
	for (uint64_t i = 0; i < nbits / 64; i++)
		atomic_init(&f->words[i], 0);
	for (sg_skiplist_seek_to_first(&p, &mt->list); sg_skiplist_pos_valid(&p); sg_skiplist_next(&p))
		filter_set(f, sg_ikey_user_key(sg_skiplist_key(&p)));
	atomic_store_explicit(&h->filter, off, memory_order_release);
}

bool
sg_memtable_may_contain(const sg_memtable *mt, sg_slice user_key)
{
	sg_memtable_filter *f = filter_of(mt);
	uint64_t	h;
	uint64_t	step;

	if (f == NULL)
		return true;
	h = sg_hash64(user_key);
	step = sg_hash64_probe_step(h);
	for (int i = 0; i < SG_MEMTABLE_FILTER_PROBES; i++, h += step)
	{
		uint64_t	bit = h % f->nbits;

		if ((atomic_load_explicit(&f->words[bit / 64], memory_order_relaxed) &
			 (UINT64_C(1) << (bit % 64))) == 0)
			return false;
	}
	return true;
}

uint64_t
sg_memtable_filter_bytes(const sg_memtable *mt)
{
	sg_memtable_filter *f = filter_of(mt);

	return f == NULL ? 0 : sizeof(sg_memtable_filter) + f->nbits / 8;
}

sg_code
sg_memtable_add(sg_memtable *mt, uint64_t seq, sg_value_type type,
				sg_slice user_key, sg_slice value, sg_err *err)
{
	sg_memtable_hdr *h = mt->hdr;
	sg_memtable_filter *filter;
	sg_code		rc;

	if (atomic_load_explicit(&h->immutable, memory_order_relaxed))
		return sg_error(err, SG_INVALID_ARGUMENT,
						"memtable: add to a frozen memtable (seq %llu)",
						(unsigned long long) seq);
	if (seq > SG_MAX_SEQUENCE)
		return sg_error(err, SG_INVALID_ARGUMENT,
						"memtable: sequence %llu exceeds 56 bits",
						(unsigned long long) seq);
	if (type != SG_TYPE_PUT && type != SG_TYPE_DELETE)
		return sg_error(err, SG_INVALID_ARGUMENT,
						"memtable: unknown value type %d", (int) type);
	if (type == SG_TYPE_DELETE)
		value = sg_slice_make(NULL, 0);

	/*
	 * The key's bits before its entry is linked, so no reader finds the
	 * entry and not the bits. A failed insert leaves them set: a false
	 * positive, never a hidden key.
	 */
	filter = filter_of(mt);
	if (filter != NULL)
		filter_set(filter, user_key);
	rc = sg_skiplist_insert(&mt->list, &mt->arena, user_key,
							sg_ikey_pack_trailer(seq, type), value, err);
	if (rc != SG_OK)
		return rc;
	if (filter == NULL && h->filter_plan != 0 &&
		sg_skiplist_count(&mt->list) >= SG_MEMTABLE_FILTER_AFTER)
		filter_build(mt);

	/* Only the writer stores these: plain load + relaxed store suffice. */
	if (seq < atomic_load_explicit(&h->smallest_seq, memory_order_relaxed))
		atomic_store_explicit(&h->smallest_seq, seq, memory_order_relaxed);
	if (seq > atomic_load_explicit(&h->largest_seq, memory_order_relaxed))
		atomic_store_explicit(&h->largest_seq, seq, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->data_bytes, user_key.len + value.len,
							  memory_order_relaxed);
	return SG_OK;
}

/* Position at the newest version of user_key with seq <= max_seq. */
static bool
seek_user_key(sg_skiplist_pos *p, const sg_memtable *mt, sg_slice user_key,
			  uint64_t max_seq)
{
	if (!sg_memtable_may_contain(mt, user_key))
		return false;
	if (max_seq > SG_MAX_SEQUENCE)
		max_seq = SG_MAX_SEQUENCE;
	sg_skiplist_seek(p, &mt->list, user_key,
					 sg_ikey_pack_trailer(max_seq, SG_TYPE_FOR_SEEK));
	return sg_skiplist_pos_valid(p) &&
		sg_slice_equal(sg_ikey_user_key(sg_skiplist_key(p)), user_key);
}

sg_memtable_result
sg_memtable_get(const sg_memtable *mt, sg_slice user_key,
				uint64_t snapshot_seq, sg_slice *value, uint64_t *seq_out)
{
	sg_skiplist_pos p;
	uint64_t	trailer;

	if (!seek_user_key(&p, mt, user_key, snapshot_seq))
		return SG_MEMTABLE_NOT_FOUND;
	trailer = sg_ikey_trailer(sg_skiplist_key(&p));
	if (seq_out != NULL)
		*seq_out = trailer >> 8;
	if ((trailer & 0xff) == SG_TYPE_DELETE)
		return SG_MEMTABLE_DELETED;
	*value = sg_skiplist_value(&p);
	return SG_MEMTABLE_FOUND;
}

uint64_t
sg_memtable_versions(const sg_memtable *mt, sg_slice user_key,
					 uint64_t max_seq, sg_memtable_version_fn fn, void *ctx)
{
	sg_skiplist_pos p;
	uint64_t	n = 0;

	if (!seek_user_key(&p, mt, user_key, max_seq))
		return 0;
	do
	{
		sg_slice	k = sg_skiplist_key(&p);
		uint64_t	trailer;

		if (!sg_slice_equal(sg_ikey_user_key(k), user_key))
			break;
		trailer = sg_ikey_trailer(k);
		n++;
		if (!fn(ctx, trailer >> 8, (sg_value_type) (trailer & 0xff),
				sg_skiplist_value(&p)))
			break;
		sg_skiplist_next(&p);
	} while (sg_skiplist_pos_valid(&p));
	return n;
}

/* ---- iterator ---- */

typedef struct memtable_iter
{
	sg_iter		base;
	sg_skiplist list;			/* own copy: pos.list points here */
	sg_skiplist_pos pos;
} memtable_iter;

static bool
mi_valid(sg_iter *it)
{
	return sg_skiplist_pos_valid(&((memtable_iter *) it)->pos);
}

static void
mi_seek_to_first(sg_iter *it)
{
	memtable_iter *m = (memtable_iter *) it;

	sg_skiplist_seek_to_first(&m->pos, &m->list);
}

static void
mi_seek(sg_iter *it, sg_slice target)
{
	memtable_iter *m = (memtable_iter *) it;

	/* UINT64_MAX sorts before every trailer: the newest version of target. */
	if (target.len < SG_IKEY_TRAILER_LEN)
		sg_skiplist_seek(&m->pos, &m->list, target, UINT64_MAX);
	else
		sg_skiplist_seek(&m->pos, &m->list, sg_ikey_user_key(target),
						 sg_ikey_trailer(target));
}

static void
mi_next(sg_iter *it)
{
	sg_skiplist_next(&((memtable_iter *) it)->pos);
}

static sg_slice
mi_key(sg_iter *it)
{
	return sg_skiplist_key(&((memtable_iter *) it)->pos);
}

static sg_slice
mi_value(sg_iter *it)
{
	return sg_skiplist_value(&((memtable_iter *) it)->pos);
}

static sg_code
mi_status(sg_iter *it, sg_err *err)
{
	(void) it;
	(void) err;
	return SG_OK;
}

static void
mi_destroy(sg_iter *it)
{
	free(it);
}

static const sg_iter_ops memtable_iter_ops = {
	mi_valid, mi_seek_to_first, mi_seek, mi_next,
	mi_key, mi_value, mi_status, mi_destroy,
	sg_iter_leaf_self, NULL		/* the skiplist is stepped directly */
};

sg_iter *
sg_memtable_iter(const sg_memtable *mt)
{
	memtable_iter *m = malloc(sizeof(*m));

	if (m == NULL)
		return sg_iter_error(SG_NO_MEMORY, "memtable: out of memory creating an iterator");
	m->base.ops = &memtable_iter_ops;
	m->list = mt->list;
	m->pos.list = &m->list;
	m->pos.node = SG_OFF_NULL;
	return &m->base;
}

/* ---- state and statistics ---- */

void
sg_memtable_freeze(sg_memtable *mt)
{
	atomic_store_explicit(&mt->hdr->immutable, 1, memory_order_release);
}

bool
sg_memtable_is_immutable(const sg_memtable *mt)
{
	return atomic_load_explicit(&mt->hdr->immutable, memory_order_acquire) != 0;
}

void
sg_memtable_ref(sg_memtable *mt)
{
	atomic_fetch_add_explicit(&mt->hdr->refs, 1, memory_order_relaxed);
}

bool
sg_memtable_unref(sg_memtable *mt)
{
	uint32_t	old = atomic_load_explicit(&mt->hdr->refs, memory_order_relaxed);

	/*
	 * Never wrap below zero: an unbalanced unref is a caller bug, and
	 * wrapping would let a later unref "free" memory in use. acq_rel so
	 * that the last holder sees every other holder's reads finished before
	 * it releases the memory.
	 */
	do
	{
		if (old == 0)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&mt->hdr->refs, &old, old - 1,
													memory_order_acq_rel,
													memory_order_relaxed));
	if (old != 1)
		return false;
	/* nobody else holds it: mark it dead before the chunks can be reused */
	mt->hdr->magic = SG_MEMTABLE_DEAD_MAGIC;
	return true;
}

uint64_t
sg_memtable_generation(const sg_memtable *mt)
{
	return mt->hdr->generation;
}

uint32_t
sg_memtable_refs(const sg_memtable *mt)
{
	return atomic_load_explicit(&mt->hdr->refs, memory_order_relaxed);
}

uint64_t
sg_memtable_entries(const sg_memtable *mt)
{
	return sg_skiplist_count(&mt->list);
}

bool
sg_memtable_seq_range(const sg_memtable *mt, uint64_t *smallest,
					  uint64_t *largest)
{
	uint64_t	lo = atomic_load_explicit(&mt->hdr->smallest_seq, memory_order_relaxed);
	uint64_t	hi = atomic_load_explicit(&mt->hdr->largest_seq, memory_order_relaxed);

	if (lo == SG_MEMTABLE_NO_SEQ)
		return false;
	*smallest = lo;
	*largest = hi;
	return true;
}

uint64_t
sg_memtable_memory_usage(const sg_memtable *mt)
{
	return sg_arena_reserved(&mt->arena);
}

uint64_t
sg_memtable_data_bytes(const sg_memtable *mt)
{
	return atomic_load_explicit(&mt->hdr->data_bytes, memory_order_relaxed);
}
