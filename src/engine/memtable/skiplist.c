/*
 * skiplist.c — the lock-free-for-readers skiplist of internal keys that
 * backs a memtable (contract in skiplist.h, layout in README.md).
 *
 * Memory ordering:
 *  - a node's fields, key and value are written with plain stores (and its
 *    own links with relaxed stores) while it is still unreachable;
 *  - it is then linked bottom level first with RELEASE stores into its
 *    predecessors; readers load every link with ACQUIRE, so whoever finds
 *    the node also sees everything written into it before the link;
 *  - the list height is a relaxed hint: a reader that sees a new, taller
 *    height before the head's new links finds those links still 0 and
 *    simply drops a level; one that sees the old height misses nothing
 *    because every node is on level 0.
 */
#include "engine/memtable/skiplist.h"

#include "engine/base/coding.h"
#include "engine/base/ikey.h"

#define NODE(base, off) ((sg_skiplist_node *) ((base) + (off)))

static inline const char *
node_key(sg_skiplist_node *n)
{
	return (const char *) &n->next[n->height];
}

/*
 * Compare a node's internal key with user_key || trailer, in exactly the
 * order sg_ikey_compare defines, without materialising the target key.
 */
static inline int
node_compare(sg_skiplist_node *n, sg_slice user_key, uint64_t trailer)
{
	const char *k = node_key(n);
	size_t		ulen = n->key_len - SG_IKEY_TRAILER_LEN;
	int			r = sg_slice_compare(sg_slice_make(k, ulen), user_key);
	uint64_t	t;

	if (r != 0)
		return r;
	t = sg_decode_fixed64(k + ulen);
	return (t > trailer) ? -1 : (t < trailer) ? 1 : 0;
}

/*
 * The first node >= target, or 0. When prev is given, prev[i] receives the
 * last node < target at each level i below the current height.
 */
static sg_off
find_ge(const sg_skiplist *l, sg_slice user_key, uint64_t trailer,
		sg_off *prev)
{
	char	   *base = l->base;
	sg_off		x = l->hdr->head;
	sg_off		known_ge = SG_OFF_NULL;
	int			level = (int) atomic_load_explicit(&l->hdr->height,
												   memory_order_relaxed) - 1;

	for (;;)
	{
		sg_off		next = atomic_load_explicit(&NODE(base, x)->next[level],
												memory_order_acquire);

		/*
		 * After dropping a level the successor is often the node that just
		 * stopped us; it is already known to be >= target, so skip the
		 * comparison (and its cache misses on the key).
		 */
		if (next != SG_OFF_NULL && next != known_ge &&
			node_compare(NODE(base, next), user_key, trailer) < 0)
			x = next;
		else
		{
			known_ge = next;
			if (prev != NULL)
				prev[level] = x;
			if (level == 0)
				return next;
			level--;
		}
	}
}

/*
 * True when user_key || trailer sorts strictly between the last inserted
 * key (splice[0]) and its level-0 successor. Then no node lies between
 * them on any level, so splice[i] is the new key's predecessor on every
 * level i and the key is not a duplicate. Costs at most two comparisons;
 * random inserts usually fail the first one.
 * REQUIRES: writer lock held.
 */
static bool
splice_fits(const sg_skiplist *l, sg_slice user_key, uint64_t trailer)
{
	char	   *base = l->base;
	sg_skiplist_hdr *h = l->hdr;
	sg_off		last = h->splice[0];
	sg_off		next;

	if (last != h->head && node_compare(NODE(base, last), user_key, trailer) >= 0)
		return false;
	next = atomic_load_explicit(&NODE(base, last)->next[0], memory_order_relaxed);
	return next == SG_OFF_NULL || node_compare(NODE(base, next), user_key, trailer) > 0;
}

/* xorshift64* step; the state lives in the shared header. */
static uint64_t
next_random(sg_skiplist_hdr *h)
{
	uint64_t	s = h->rng;

	s ^= s >> 12;
	s ^= s << 25;
	s ^= s >> 27;
	h->rng = s;
	return s * UINT64_C(2685821657736338717);
}

/* Height h with probability (1/4)^(h-1), capped at MAX_HEIGHT. */
static uint32_t
random_height(sg_skiplist_hdr *h)
{
	uint64_t	r = next_random(h);
	uint32_t	height = 1;

	while (height < SG_SKIPLIST_MAX_HEIGHT && (r & 3) == 0)
	{
		height++;
		r >>= 2;
	}
	return height;
}

sg_code
sg_skiplist_create(sg_skiplist *list, sg_arena *arena, uint64_t seed,
				   sg_err *err)
{
	sg_off		hoff;
	sg_off		head;
	sg_code		rc;

	rc = sg_arena_alloc(arena, sizeof(sg_skiplist_hdr), 8, &hoff, err);
	if (rc != SG_OK)
		return rc;
	rc = sg_arena_alloc(arena, sizeof(sg_skiplist_node) +
						SG_SKIPLIST_MAX_HEIGHT * sizeof(sg_off), 8, &head, err);
	if (rc != SG_OK)
		return rc;

	sg_skiplist_node *hn = NODE(arena->base, head);

	hn->key_len = 0;
	hn->value_len = 0;
	hn->height = SG_SKIPLIST_MAX_HEIGHT;
	hn->pad = 0;
	for (int i = 0; i < SG_SKIPLIST_MAX_HEIGHT; i++)
		atomic_init(&hn->next[i], SG_OFF_NULL);

	sg_skiplist_hdr *h = (sg_skiplist_hdr *) (arena->base + hoff);

	h->head = head;
	atomic_init(&h->height, 1);
	h->pad = 0;
	/* xorshift never leaves 0; any other seed gives a full-period stream */
	h->rng = seed != 0 ? seed : UINT64_C(0x9e3779b97f4a7c15);
	atomic_init(&h->count, 0);
	for (int i = 0; i < SG_SKIPLIST_MAX_HEIGHT; i++)
		h->splice[i] = head;

	sg_skiplist_attach(list, arena->base, hoff);
	return SG_OK;
}

void
sg_skiplist_attach(sg_skiplist *list, char *base, sg_off hdr_off)
{
	list->base = base;
	list->hdr_off = hdr_off;
	list->hdr = (sg_skiplist_hdr *) (base + hdr_off);
}

sg_code
sg_skiplist_insert(sg_skiplist *list, sg_arena *arena, sg_slice ukey,
				   uint64_t trailer, sg_slice value, sg_err *err)
{
	sg_skiplist_hdr *h = list->hdr;
	char	   *base = list->base;
	sg_off		prev[SG_SKIPLIST_MAX_HEIGHT];
	sg_off		off;
	sg_code		rc;

	if (ukey.len > UINT32_MAX - SG_IKEY_TRAILER_LEN || value.len > UINT32_MAX)
		return sg_error(err, SG_INVALID_ARGUMENT,
						"skiplist: entry too large (key %zu, value %zu bytes)",
						ukey.len, value.len);

	size_t		klen = ukey.len + SG_IKEY_TRAILER_LEN;

	if (splice_fits(list, ukey, trailer))
		memcpy(prev, h->splice, sizeof(prev));
	else
	{
		sg_off		found = find_ge(list, ukey, trailer, prev);

		if (found != SG_OFF_NULL && node_compare(NODE(base, found), ukey, trailer) == 0)
			return sg_error(err, SG_INVALID_ARGUMENT,
							"skiplist: internal key (seq %llu) already present",
							(unsigned long long) (trailer >> 8));
		/* find_ge filled the levels in use; above them only the head */
		for (uint32_t i = atomic_load_explicit(&h->height, memory_order_relaxed);
			 i < SG_SKIPLIST_MAX_HEIGHT; i++)
			prev[i] = h->head;
	}

	/* Undo the generator step on failure so "unchanged" really holds. */
	uint64_t	saved_rng = h->rng;
	uint32_t	height = random_height(h);

	rc = sg_arena_alloc(arena, sizeof(sg_skiplist_node) +
						height * sizeof(sg_off) + klen + value.len,
						8, &off, err);
	if (rc != SG_OK)
	{
		h->rng = saved_rng;
		return rc;
	}

	uint32_t	cur = atomic_load_explicit(&h->height, memory_order_relaxed);

	/* prev[i] is already the head on every level above cur */
	if (height > cur)
		atomic_store_explicit(&h->height, height, memory_order_relaxed);

	sg_skiplist_node *n = NODE(base, off);

	char	   *k;

	n->key_len = (uint32_t) klen;
	n->value_len = (uint32_t) value.len;
	n->height = height;
	n->pad = 0;
	k = (char *) node_key(n);
	if (ukey.len > 0)
		memcpy(k, ukey.data, ukey.len);
	sg_encode_fixed64(k + ukey.len, trailer);
	if (value.len > 0)
		memcpy(k + klen, value.data, value.len);
	for (uint32_t i = 0; i < height; i++)
		atomic_store_explicit(&n->next[i],
							  atomic_load_explicit(&NODE(base, prev[i])->next[i],
												   memory_order_relaxed),
							  memory_order_relaxed);
	/* Publish: from here on readers may reach the node. */
	for (uint32_t i = 0; i < height; i++)
		atomic_store_explicit(&NODE(base, prev[i])->next[i], off,
							  memory_order_release);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	for (uint32_t i = 0; i < SG_SKIPLIST_MAX_HEIGHT; i++)
		h->splice[i] = i < height ? off : prev[i];
	return SG_OK;
}

uint64_t
sg_skiplist_count(const sg_skiplist *list)
{
	return atomic_load_explicit(&list->hdr->count, memory_order_relaxed);
}

void
sg_skiplist_seek_to_first(sg_skiplist_pos *p, const sg_skiplist *list)
{
	p->list = list;
	p->node = atomic_load_explicit(&NODE(list->base, list->hdr->head)->next[0],
								   memory_order_acquire);
}

void
sg_skiplist_seek(sg_skiplist_pos *p, const sg_skiplist *list,
				 sg_slice user_key, uint64_t trailer)
{
	p->list = list;
	p->node = find_ge(list, user_key, trailer, NULL);
}

void
sg_skiplist_next(sg_skiplist_pos *p)
{
	p->node = atomic_load_explicit(&NODE(p->list->base, p->node)->next[0],
								   memory_order_acquire);
}

sg_slice
sg_skiplist_key(const sg_skiplist_pos *p)
{
	sg_skiplist_node *n = NODE(p->list->base, p->node);

	return sg_slice_make(node_key(n), n->key_len);
}

sg_slice
sg_skiplist_value(const sg_skiplist_pos *p)
{
	sg_skiplist_node *n = NODE(p->list->base, p->node);

	return sg_slice_make(node_key(n) + n->key_len, n->value_len);
}
