/*
 * skiplist.h — an ordered set of internal keys (ikey.h order), each with a
 * value, built entirely inside an sg_arena so that it is addressed by
 * offsets and readable from any process that maps the arena.
 *
 * Concurrency contract:
 *  - ONE writer at a time. Insertions are serialised by the caller (the
 *    tree's writer lock); the skiplist takes no lock of its own.
 *  - Any number of readers, in any process, run concurrently with that
 *    writer without locking. A reader never sees a half-built node: a node
 *    is filled in completely (lengths, links, key and value bytes) before a
 *    release store makes it reachable, and readers follow links with
 *    acquire loads.
 *  - Nodes are never removed or modified once published; the memory goes
 *    away only with the whole arena, which the caller must keep alive
 *    (reference count) while any reader may still be inside.
 *
 * The random node height comes from a deterministic generator whose state
 * lives in the shared header, so the shape of the list does not depend on
 * which process inserted what.
 */
#ifndef SG_SKIPLIST_H
#define SG_SKIPLIST_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/base/slice.h"
#include "engine/base/status.h"
#include "engine/memtable/arena.h"

/* Tallest node; with branching 1/4 this serves ~16M entries well. */
#define SG_SKIPLIST_MAX_HEIGHT 12

/* Shared header, allocated in the arena. */
typedef struct sg_skiplist_hdr
{
	sg_off		head;			/* sentinel node of height MAX_HEIGHT, no key */
	_Atomic uint32_t height;	/* levels in use, 1..MAX_HEIGHT (relaxed) */
	uint32_t	pad;
	uint64_t	rng;			/* height generator state; writer only */
	_Atomic uint64_t count;		/* entries inserted (relaxed) */

	/*
	 * Writer only: the splice after the last insert. splice[i] is the last
	 * node on level i whose key is <= the last inserted key (that node
	 * itself below its height, the head above the list's height). An
	 * insert whose key falls between splice[0] and its level-0 successor
	 * links in at exactly these predecessors without searching, which makes
	 * ascending inserts (sequential loads) O(1) instead of O(log n).
	 */
	sg_off		splice[SG_SKIPLIST_MAX_HEIGHT];
} sg_skiplist_hdr;

/*
 * One node (allocated 8-aligned):
 *     uint32 key_len, uint32 value_len, uint32 height, uint32 pad,
 *     _Atomic sg_off next[height], key bytes, value bytes
 */
typedef struct sg_skiplist_node
{
	uint32_t	key_len;
	uint32_t	value_len;
	uint32_t	height;
	uint32_t	pad;
	_Atomic sg_off next[];		/* next[i]: successor at level i, 0 = end */
} sg_skiplist_node;

/*
 * Process-local handle: where this process maps the arena + the header.
 * Plain values only, so it may be copied freely.
 */
typedef struct sg_skiplist
{
	char	   *base;
	sg_off		hdr_off;
	sg_skiplist_hdr *hdr;
} sg_skiplist;

/*
 * Allocate an empty list in the arena. *list is the creator's handle;
 * list->hdr_off is what other processes need (with the arena).
 * REQUIRES: writer lock held.
 */
extern sg_code sg_skiplist_create(sg_skiplist *list, sg_arena *arena,
								  uint64_t seed, sg_err *err);

/* A handle on an existing list, seen from base (any process). */
extern void sg_skiplist_attach(sg_skiplist *list, char *base, sg_off hdr_off);

/*
 * Insert the internal key user_key || fixed64(trailer) -> value (the key is
 * taken in two parts so that callers need not build it in a buffer). A key
 * already present is refused with SG_INVALID_ARGUMENT. The node is
 * allocated from arena, the one the list lives in (as mapped by this
 * process). On SG_NO_MEMORY the list is unchanged.
 * REQUIRES: writer lock held.
 */
extern sg_code sg_skiplist_insert(sg_skiplist *list, sg_arena *arena,
								  sg_slice user_key, uint64_t trailer,
								  sg_slice value, sg_err *err);

/* Entries inserted so far (may lag a concurrent insert). */
extern uint64_t sg_skiplist_count(const sg_skiplist *list);

/*
 * A position in the list. Not an sg_iter (the memtable wraps it into one);
 * plain struct so that point lookups need no allocation.
 */
typedef struct sg_skiplist_pos
{
	const sg_skiplist *list;
	sg_off		node;			/* 0 = past the end */
} sg_skiplist_pos;

static inline bool
sg_skiplist_pos_valid(const sg_skiplist_pos *p)
{
	return p->node != SG_OFF_NULL;
}

extern void sg_skiplist_seek_to_first(sg_skiplist_pos *p, const sg_skiplist *list);

/* First entry whose internal key is >= user_key || trailer. */
extern void sg_skiplist_seek(sg_skiplist_pos *p, const sg_skiplist *list,
							 sg_slice user_key, uint64_t trailer);

/* REQUIRES: valid. */
extern void sg_skiplist_next(sg_skiplist_pos *p);
extern sg_slice sg_skiplist_key(const sg_skiplist_pos *p);
extern sg_slice sg_skiplist_value(const sg_skiplist_pos *p);

#endif							/* SG_SKIPLIST_H */
