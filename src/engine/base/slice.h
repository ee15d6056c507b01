/*
 * slice.h — borrowed byte ranges (sg_slice) and growable owned buffers
 * (sg_buf), the currency of every engine interface.
 *
 * An sg_slice never owns its bytes: it is valid only as long as whatever it
 * points into (a block, a memtable entry, an sg_buf) is.
 *
 * An sg_buf owns malloc'd memory. Allocation failure does not abort: the
 * buffer becomes "failed" (sg_buf_failed() is true), later appends are
 * no-ops, and the encoder that filled it checks once at the end and returns
 * SG_NO_MEMORY. This keeps encoding code free of a check per byte.
 */
#ifndef SG_SLICE_H
#define SG_SLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct sg_slice
{
	const char *data;
	size_t		len;
} sg_slice;

static inline sg_slice
sg_slice_make(const void *data, size_t len)
{
	sg_slice	s;

	s.data = (const char *) data;
	s.len = len;
	return s;
}

static inline sg_slice
sg_slice_from_cstr(const char *s)
{
	return sg_slice_make(s, strlen(s));
}

/*
 * An 8-byte string as the big-endian number whose order is its memcmp
 * order. Row ids, the user keys of every PostgreSQL tree, are 8 bytes:
 * compared as one number they spare a memcmp call on every step of a
 * skiplist, index block or data block search.
 */
static inline uint64_t
sg_slice_be64_order(const char *p)
{
	uint64_t	v;

	memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* memcmp order; a proper prefix sorts first. */
static inline int
sg_slice_compare(sg_slice a, sg_slice b)
{
	size_t		n;
	int			r;

	if (a.len == 8 && b.len == 8)
	{
		uint64_t	x = sg_slice_be64_order(a.data);
		uint64_t	y = sg_slice_be64_order(b.data);

		return (x > y) - (x < y);
	}
	n = a.len < b.len ? a.len : b.len;
	r = n ? memcmp(a.data, b.data, n) : 0;
	if (r != 0)
		return r;
	return (a.len < b.len) ? -1 : (a.len > b.len) ? 1 : 0;
}

static inline bool
sg_slice_equal(sg_slice a, sg_slice b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

typedef struct sg_buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		failed;			/* an allocation failed; contents are junk */
} sg_buf;

#define SG_BUF_INIT {NULL, 0, 0, false}

extern void sg_buf_init(sg_buf *b);
extern void sg_buf_free(sg_buf *b);
/* Keep the allocation, forget the contents (and any earlier failure). */
extern void sg_buf_reset(sg_buf *b);
/* Make room for n more bytes; false (and failed) if memory ran out. */
extern bool sg_buf_reserve(sg_buf *b, size_t n);
extern void sg_buf_append_grow(sg_buf *b, const void *data, size_t n);
extern void sg_buf_append_byte(sg_buf *b, uint8_t c);
extern void sg_buf_append_slice(sg_buf *b, sg_slice s);
/* Set length to n (n <= len), e.g. to drop a partially written record. */
extern void sg_buf_truncate(sg_buf *b, size_t n);

static inline bool
sg_buf_failed(const sg_buf *b)
{
	return b->failed;
}

/*
 * Append n bytes. Inline while they fit (a block iterator rebuilds every
 * key this way); sg_buf_append_grow makes room otherwise.
 */
static inline void
sg_buf_append(sg_buf *b, const void *data, size_t n)
{
	if (!b->failed && n <= b->cap - b->len)
	{
		if (n > 0)
			memcpy(b->data + b->len, data, n);
		b->len += n;
		return;
	}
	sg_buf_append_grow(b, data, n);
}

static inline sg_slice
sg_buf_slice(const sg_buf *b)
{
	return sg_slice_make(b->data, b->len);
}

#endif							/* SG_SLICE_H */
