/*
 * ikey.h — internal keys: how one user key carries many versions.
 *
 * Every entry in a memtable, WAL batch or SSTable is keyed by an internal
 * key:
 *
 *     user_key bytes || trailer (fixed64, little-endian)
 *     trailer = (sequence << 8) | type
 *
 * Order (frozen; SSTables depend on it): user keys ascending by memcmp;
 * for equal user keys, trailers DESCENDING — so the newest version of a
 * key comes first and a reader stops at the first version it may see.
 *
 * Sequence numbers are 56 bits, assigned by the engine in commit order of
 * writes (one per entry). Types are frozen on-disk values.
 */
#ifndef SG_IKEY_H
#define SG_IKEY_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/base/coding.h"
#include "engine/base/debug.h"
#include "engine/base/slice.h"

typedef enum sg_value_type
{
	SG_TYPE_DELETE = 0,			/* tombstone: hides every older version */
	SG_TYPE_PUT = 1				/* a value */
} sg_value_type;

/* The largest type: seeking with it lands on the newest version <= seq. */
#define SG_TYPE_FOR_SEEK SG_TYPE_PUT

#define SG_MAX_SEQUENCE ((UINT64_C(1) << 56) - 1)
#define SG_IKEY_TRAILER_LEN 8

static inline uint64_t
sg_ikey_pack_trailer(uint64_t seq, sg_value_type type)
{
	return (seq << 8) | (uint64_t) type;
}

/* Parsed view of an internal key (user_key points into the key). */
typedef struct sg_parsed_ikey
{
	sg_slice	user_key;
	uint64_t	seq;
	sg_value_type type;
} sg_parsed_ikey;

/* Append user_key || trailer to b. */
static inline void
sg_ikey_append(sg_buf *b, sg_slice user_key, uint64_t seq, sg_value_type type)
{
	sg_buf_append_slice(b, user_key);
	sg_put_fixed64(b, sg_ikey_pack_trailer(seq, type));
}

/* false if ikey is too short or has an unknown type (corruption). */
static inline bool
sg_ikey_parse(sg_slice ikey, sg_parsed_ikey *out)
{
	uint64_t	t;

	if (ikey.len < SG_IKEY_TRAILER_LEN)
		return false;
	t = sg_decode_fixed64(ikey.data + ikey.len - SG_IKEY_TRAILER_LEN);
	out->user_key = sg_slice_make(ikey.data, ikey.len - SG_IKEY_TRAILER_LEN);
	out->seq = t >> 8;
	out->type = (sg_value_type) (t & 0xff);
	return out->type <= SG_TYPE_PUT;
}

static inline sg_slice
sg_ikey_user_key(sg_slice ikey)
{
	return sg_slice_make(ikey.data, ikey.len - SG_IKEY_TRAILER_LEN);
}

static inline uint64_t
sg_ikey_trailer(sg_slice ikey)
{
	return sg_decode_fixed64(ikey.data + ikey.len - SG_IKEY_TRAILER_LEN);
}

/*
 * The frozen internal-key order. REQUIRES: both keys at least 8 bytes
 * (callers parse or validate before comparing).
 */
static inline int
sg_ikey_compare(sg_slice a, sg_slice b)
{
	int			r;

	SG_ASSERT(a.len >= SG_IKEY_TRAILER_LEN && b.len >= SG_IKEY_TRAILER_LEN);
	r = sg_slice_compare(sg_ikey_user_key(a), sg_ikey_user_key(b));

	if (r == 0)
	{
		uint64_t	ta = sg_ikey_trailer(a);
		uint64_t	tb = sg_ikey_trailer(b);

		r = (ta > tb) ? -1 : (ta < tb) ? 1 : 0;
	}
	return r;
}

#endif							/* SG_IKEY_H */
