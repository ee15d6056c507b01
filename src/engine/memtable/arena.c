/*
 * arena.c — the offset-addressed bump allocator behind the memtable (see
 * arena.h for the contract and README.md for the memory layout).
 *
 * Invariants (under the caller's writer lock):
 *  - hdr->cur <= hdr->end, both inside the chunk the bump region belongs to;
 *  - every chunk held is on the hdr->chunks chain exactly once, and
 *    reserved/nchunks count exactly those chunks;
 *  - used counts every byte handed out or spent on headers and padding, so
 *    reserved - used is free space plus tails abandoned on a chunk switch.
 */
#include "engine/memtable/arena.h"

#include <stdbool.h>

#define CHUNK_HDR_LEN ((uint64_t) sizeof(sg_arena_chunk_hdr))

static inline uint64_t
align_up(uint64_t v, uint64_t align)
{
	return (v + align - 1) & ~(align - 1);
}

static inline sg_arena_chunk_hdr *
chunk_at(const sg_arena *a, sg_off off)
{
	return (sg_arena_chunk_hdr *) (a->base + off);
}

/*
 * Check a chunk the provider gave us before writing into it: a misaligned
 * or overflowing one would otherwise corrupt memory we do not own.
 */
static sg_code
check_chunk(sg_off off, size_t len, size_t min_len, sg_err *err)
{
	if (off % SG_ARENA_ALIGN != 0)
		return sg_error(err, SG_INVALID_ARGUMENT,
						"arena: chunk at offset %llu is not %d-byte aligned",
						(unsigned long long) off, SG_ARENA_ALIGN);
	if (len < min_len || off + (uint64_t) len < off)
		return sg_error(err, SG_INVALID_ARGUMENT,
						"arena: chunk at offset %llu has length %zu, need %zu",
						(unsigned long long) off, len, min_len);
	return SG_OK;
}

sg_code
sg_arena_create(sg_arena *a, char *base, sg_off first_off, size_t first_len,
				sg_arena_chunk_fn more, void *more_ctx, sg_err *err)
{
	size_t		min_len = CHUNK_HDR_LEN + sizeof(sg_arena_hdr);
	sg_code		rc;

	if (base == NULL || (uintptr_t) base % SG_ARENA_ALIGN != 0)
		return sg_error(err, SG_INVALID_ARGUMENT,
						"arena: base must be non-NULL and %d-byte aligned",
						SG_ARENA_ALIGN);
	if (first_len == 0)
	{
		if (more == NULL)
			return sg_error(err, SG_INVALID_ARGUMENT,
							"arena: neither a region nor a chunk provider given");
		rc = more(more_ctx, min_len, &first_off, &first_len);
		if (rc != SG_OK)
			return sg_error(err, SG_NO_MEMORY,
							"arena: no chunk available for a new arena");
	}
	rc = check_chunk(first_off, first_len, min_len, err);
	if (rc != SG_OK)
		return rc;

	a->base = base;
	a->more = more;
	a->more_ctx = more_ctx;

	sg_arena_chunk_hdr *ch = chunk_at(a, first_off);

	ch->next = SG_OFF_NULL;
	ch->len = first_len;

	a->hdr_off = first_off + CHUNK_HDR_LEN;
	a->hdr = (sg_arena_hdr *) (base + a->hdr_off);
	a->hdr->magic = SG_ARENA_MAGIC;
	a->hdr->chunks = first_off;
	a->hdr->cur = a->hdr_off + sizeof(sg_arena_hdr);
	a->hdr->end = first_off + first_len;
	atomic_init(&a->hdr->used, min_len);
	atomic_init(&a->hdr->reserved, first_len);
	atomic_init(&a->hdr->nchunks, 1);
	return SG_OK;
}

sg_code
sg_arena_attach(sg_arena *a, char *base, sg_off hdr_off,
				sg_arena_chunk_fn more, void *more_ctx, sg_err *err)
{
	if (base == NULL || (uintptr_t) base % SG_ARENA_ALIGN != 0 ||
		hdr_off == SG_OFF_NULL || hdr_off % SG_ARENA_ALIGN != 0)
		return sg_error(err, SG_INVALID_ARGUMENT,
						"arena: cannot attach at offset %llu (misaligned or null)",
						(unsigned long long) hdr_off);
	if (((sg_arena_hdr *) (base + hdr_off))->magic != SG_ARENA_MAGIC)
		return sg_error(err, SG_CORRUPTION,
						"arena: no arena header at offset %llu",
						(unsigned long long) hdr_off);
	a->base = base;
	a->hdr_off = hdr_off;
	a->hdr = (sg_arena_hdr *) (base + hdr_off);
	a->more = more;
	a->more_ctx = more_ctx;
	return SG_OK;
}

/* Record a chunk as held by the arena. */
static void
link_chunk(sg_arena *a, sg_off off, size_t len)
{
	sg_arena_chunk_hdr *ch = chunk_at(a, off);

	ch->next = a->hdr->chunks;
	ch->len = len;
	a->hdr->chunks = off;
	atomic_fetch_add_explicit(&a->hdr->reserved, len, memory_order_relaxed);
	atomic_fetch_add_explicit(&a->hdr->nchunks, 1, memory_order_relaxed);
}

sg_code
sg_arena_alloc(sg_arena *a, size_t size, size_t align, sg_off *off,
			   sg_err *err)
{
	sg_arena_hdr *h = a->hdr;
	uint64_t	start;

	if (align < SG_ARENA_ALIGN)
		align = SG_ARENA_ALIGN;
	if ((align & (align - 1)) != 0 || align > 4096)
		return sg_error(err, SG_INVALID_ARGUMENT,
						"arena: alignment %zu is not a power of two <= 4096", align);
	/* Far beyond any chunk: refuse before the arithmetic below can wrap. */
	if (size > (SIZE_MAX >> 2))
		return sg_error(err, SG_NO_MEMORY, "arena: allocation of %zu bytes", size);

	start = align_up(h->cur, align);
	if (start + size <= h->end)
	{
		atomic_fetch_add_explicit(&h->used, start + size - h->cur,
								  memory_order_relaxed);
		h->cur = start + size;
		*off = start;
		return SG_OK;
	}

	/*
	 * The bump region is too small: get a new chunk big enough whatever
	 * padding alignment costs after its header (chunks are only
	 * SG_ARENA_ALIGN-aligned).
	 */
	size_t		min_len = CHUNK_HDR_LEN + size + (align - SG_ARENA_ALIGN);
	sg_off		coff = SG_OFF_NULL;
	size_t		clen = 0;
	sg_code		rc;

	if (a->more == NULL)
		return sg_error(err, SG_NO_MEMORY,
						"arena: full (%llu of %llu bytes used), no chunk provider",
						(unsigned long long) sg_arena_used(a),
						(unsigned long long) sg_arena_reserved(a));
	rc = a->more(a->more_ctx, min_len, &coff, &clen);
	if (rc != SG_OK)
		return sg_error(err, SG_NO_MEMORY,
						"arena: no chunk of %zu bytes available (%llu bytes held)",
						min_len, (unsigned long long) sg_arena_reserved(a));
	rc = check_chunk(coff, clen, min_len, err);
	if (rc != SG_OK)
		return rc;
	link_chunk(a, coff, clen);

	start = align_up(coff + CHUNK_HDR_LEN, align);
	atomic_fetch_add_explicit(&h->used, start + size - coff,
							  memory_order_relaxed);
	*off = start;

	/*
	 * Keep bumping in whichever region has more room left: a large
	 * allocation that got a chunk of its own should not strand the free
	 * tail of the current one.
	 */
	if (coff + clen - (start + size) >= h->end - h->cur)
	{
		h->cur = start + size;
		h->end = coff + clen;
	}
	return SG_OK;
}

uint64_t
sg_arena_used(const sg_arena *a)
{
	return atomic_load_explicit(&a->hdr->used, memory_order_relaxed);
}

uint64_t
sg_arena_reserved(const sg_arena *a)
{
	return atomic_load_explicit(&a->hdr->reserved, memory_order_relaxed);
}

uint64_t
sg_arena_chunks(const sg_arena *a)
{
	return atomic_load_explicit(&a->hdr->nchunks, memory_order_relaxed);
}

void
sg_arena_release(sg_arena *a, sg_arena_release_fn release, void *ctx)
{
	sg_off		c = a->hdr->chunks;

	/* Read each link before release() may reuse the chunk holding it. */
	while (c != SG_OFF_NULL)
	{
		sg_arena_chunk_hdr *ch = chunk_at(a, c);
		sg_off		next = ch->next;
		size_t		len = (size_t) ch->len;

		release(ctx, c, len);
		c = next;
	}
	a->hdr = NULL;
}
