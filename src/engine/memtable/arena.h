/*
 * arena.h — a bump allocator whose every reference is an offset, so that the
 * memory it manages can be mapped at a different address by each process
 * (PostgreSQL shared memory) or even copied elsewhere and still be read.
 *
 * The memory belongs to the caller. It is handed to the arena as chunks,
 * each named by an offset from a base pointer:
 *  - standalone engine: one malloc'd region, base = its start, one chunk
 *    [0, size), no callback;
 *  - PostgreSQL glue: base = the start of the global shared memtable area,
 *    and a callback that carves chunks out of it on demand.
 * When the current chunk is full the arena asks the callback for another;
 * when there is no callback, or it has nothing left, allocation returns
 * SG_NO_MEMORY and leaves the arena exactly as it was.
 *
 * Two halves:
 *  - sg_arena_hdr lives INSIDE the managed memory (at the start of the first
 *    chunk, just after that chunk's header). It holds only offsets and
 *    counters, never a pointer, so any process can read it.
 *  - sg_arena is a small process-local handle: the base this process maps
 *    the memory at, the header's offset, and the (process-local) chunk
 *    callback. A second process builds its own with sg_arena_attach().
 *
 * Offset 0 is "null". No allocation ever returns it: every chunk begins
 * with a chunk header, so even a chunk that starts at offset 0 hands out
 * memory only after it.
 *
 * Thread safety: allocation (sg_arena_alloc) mutates the shared header and
 * must be serialised by the caller (the memtable's single-writer lock). The
 * usage counters are atomics and may be read by anyone at any time; they
 * are approximate while a writer is running. sg_arena_ptr() is pure
 * arithmetic and safe everywhere.
 */
#ifndef SG_ARENA_H
#define SG_ARENA_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/base/status.h"

/* An offset from an arena's base; 0 is the null reference. */
typedef uint64_t sg_off;

#define SG_OFF_NULL ((sg_off) 0)

/*
 * Every allocation is aligned to at least this, and base must be aligned to
 * it too, so that 64-bit atomics stored in the arena are naturally aligned
 * whatever address a process maps the memory at.
 */
#define SG_ARENA_ALIGN 8

/* "SGARENA1": recognises an arena header when attaching. */
#define SG_ARENA_MAGIC UINT64_C(0x31414e4552414753)

/*
 * Shared state of cross-process atomics must not depend on a process-local
 * lock table: require lock-free (hence address-free) 64- and 32-bit atomics.
 */
#if ATOMIC_LLONG_LOCK_FREE != 2 || ATOMIC_INT_LOCK_FREE != 2
#error "the memtable arena needs lock-free 32- and 64-bit atomics"
#endif

/* Placed at the start of every chunk; links the chunks together. */
typedef struct sg_arena_chunk_hdr
{
	sg_off		next;			/* previously obtained chunk, or 0 */
	uint64_t	len;			/* bytes of this chunk, header included */
} sg_arena_chunk_hdr;

/*
 * The shared header. cur/end/chunks are touched only by the (serialised)
 * allocator; the counters are atomics because monitoring reads them from
 * other processes without the writer lock.
 */
typedef struct sg_arena_hdr
{
	uint64_t	magic;			/* SG_ARENA_MAGIC */
	sg_off		chunks;			/* newest chunk; chain through chunk hdr next */
	sg_off		cur;			/* next free byte of the bump region */
	sg_off		end;			/* end (exclusive) of the bump region */
	_Atomic uint64_t used;		/* bytes handed out, padding included */
	_Atomic uint64_t reserved;	/* bytes of all chunks held */
	_Atomic uint64_t nchunks;	/* number of chunks held */
} sg_arena_hdr;

/*
 * Ask for a chunk of at least min_len bytes. On success store its offset
 * (from the arena's base, aligned to SG_ARENA_ALIGN) and length (>= min_len)
 * and return SG_OK; return SG_NO_MEMORY when nothing is left. Runs in the
 * allocating process, under the caller's writer lock.
 */
typedef sg_code (*sg_arena_chunk_fn) (void *ctx, size_t min_len,
									  sg_off *chunk_off, size_t *chunk_len);

/* Give a chunk back (see sg_arena_release). */
typedef void (*sg_arena_release_fn) (void *ctx, sg_off chunk_off, size_t chunk_len);

/* Process-local handle. Cheap to copy; holds no resources. */
typedef struct sg_arena
{
	char	   *base;			/* where THIS process sees offset 0 */
	sg_off		hdr_off;		/* offset of the shared sg_arena_hdr */
	sg_arena_hdr *hdr;			/* base + hdr_off, cached */
	sg_arena_chunk_fn more;		/* may be NULL: no growth */
	void	   *more_ctx;
} sg_arena;

/*
 * Create an arena. Its first chunk is [first_off, first_off + first_len)
 * when first_len > 0, otherwise it is obtained from more(). The shared
 * header is placed in that first chunk; a->hdr_off tells other processes
 * where. more may be NULL (the arena then never grows).
 * REQUIRES: base aligned to SG_ARENA_ALIGN; the chunk lies inside memory
 * mapped at base.
 */
extern sg_code sg_arena_create(sg_arena *a, char *base, sg_off first_off,
							   size_t first_len, sg_arena_chunk_fn more,
							   void *more_ctx, sg_err *err);

/*
 * Build a handle for an existing arena whose header is at hdr_off, as seen
 * from base (which may differ from the creator's). Readers pass more = NULL.
 * Fails with SG_INVALID_ARGUMENT on a misaligned base or offset, and with
 * SG_CORRUPTION when no arena header is found there.
 */
extern sg_code sg_arena_attach(sg_arena *a, char *base, sg_off hdr_off,
							   sg_arena_chunk_fn more, void *more_ctx,
							   sg_err *err);

/*
 * Allocate size bytes aligned to align (a power of two; values below
 * SG_ARENA_ALIGN are raised to it). Stores a non-zero offset in *off.
 * On SG_NO_MEMORY nothing in the arena has changed.
 * REQUIRES: the caller serialises allocations on this arena.
 */
extern sg_code sg_arena_alloc(sg_arena *a, size_t size, size_t align,
							  sg_off *off, sg_err *err);

/* Bytes handed out so far (padding included). */
extern uint64_t sg_arena_used(const sg_arena *a);

/* Bytes of all chunks the arena holds (what it costs its provider). */
extern uint64_t sg_arena_reserved(const sg_arena *a);

/* Number of chunks held. */
extern uint64_t sg_arena_chunks(const sg_arena *a);

/*
 * Hand every chunk to release(), newest first; the first chunk, which
 * holds the header, comes last. After this the arena must not be used.
 * REQUIRES: nobody else uses the arena any more (reference count zero).
 */
extern void sg_arena_release(sg_arena *a, sg_arena_release_fn release,
							 void *ctx);

/* Offset to pointer in this process; 0 gives NULL. */
static inline void *
sg_arena_ptr(const sg_arena *a, sg_off off)
{
	return off == SG_OFF_NULL ? NULL : (void *) (a->base + off);
}

#endif							/* SG_ARENA_H */
