/*
 * coding.h — the byte encodings every on-disk format of the engine uses.
 *
 * Frozen format rules (changing any of them changes every file format):
 *  - fixed-width integers are little-endian;
 *  - varints are LEB128 (7 bits per byte, low group first, high bit = more);
 *    a varint32 is at most 5 bytes, a varint64 at most 10;
 *  - a "length-prefixed slice" is a varint32 length followed by the bytes.
 *
 * Decoders never read past the end they are given: they return NULL (or
 * false) on truncated or over-long input, so that readers can report
 * corruption instead of crashing.
 */
#ifndef SG_CODING_H
#define SG_CODING_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "engine/base/slice.h"

#define SG_MAX_VARINT32_LEN 5
#define SG_MAX_VARINT64_LEN 10

static inline void
sg_encode_fixed32(char *dst, uint32_t v)
{
	uint8_t    *p = (uint8_t *) dst;

	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
}

static inline void
sg_encode_fixed64(char *dst, uint64_t v)
{
	sg_encode_fixed32(dst, (uint32_t) v);
	sg_encode_fixed32(dst + 4, (uint32_t) (v >> 32));
}

static inline uint32_t
sg_decode_fixed32(const char *src)
{
	const uint8_t *p = (const uint8_t *) src;

	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) |
		((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static inline uint64_t
sg_decode_fixed64(const char *src)
{
	return (uint64_t) sg_decode_fixed32(src) |
		((uint64_t) sg_decode_fixed32(src + 4) << 32);
}

/* Big-endian 64-bit: for keys whose memcmp order must be numeric order. */
/*
 * Written out byte by byte, as the fixed-width helpers above are, so that
 * the compiler turns each into one load or store (and a byte swap); the
 * loop form it left as a loop, and every row key is decoded this way.
 */
static inline void
sg_encode_be64(char *dst, uint64_t v)
{
	uint8_t    *p = (uint8_t *) dst;

	p[0] = (uint8_t) (v >> 56);
	p[1] = (uint8_t) (v >> 48);
	p[2] = (uint8_t) (v >> 40);
	p[3] = (uint8_t) (v >> 32);
	p[4] = (uint8_t) (v >> 24);
	p[5] = (uint8_t) (v >> 16);
	p[6] = (uint8_t) (v >> 8);
	p[7] = (uint8_t) v;
}

static inline uint64_t
sg_decode_be64(const char *src)
{
	const uint8_t *p = (const uint8_t *) src;

	return ((uint64_t) p[0] << 56) | ((uint64_t) p[1] << 48) |
		((uint64_t) p[2] << 40) | ((uint64_t) p[3] << 32) |
		((uint64_t) p[4] << 24) | ((uint64_t) p[5] << 16) |
		((uint64_t) p[6] << 8) | (uint64_t) p[7];
}

/* Write a varint at dst (room for SG_MAX_VARINT*_LEN); return the end. */
extern char *sg_encode_varint32(char *dst, uint32_t v);
extern char *sg_encode_varint64(char *dst, uint64_t v);
extern int	sg_varint_length(uint64_t v);

/*
 * Parse a varint from [p, limit). Returns the byte after it, or NULL when
 * the input is truncated or the value does not fit.
 */
extern const char *sg_decode_varint32_long(const char *p, const char *limit, uint32_t *v);
extern const char *sg_decode_varint64_long(const char *p, const char *limit, uint64_t *v);

/*
 * Inline up to five bytes when the input has room for them (values below
 * 2^35: a packed frozen version's writer, read once per row by a scan),
 * the rest out of line.
 */
static inline const char *
sg_decode_varint64(const char *p, const char *limit, uint64_t *v)
{
	if (limit - p >= 5)
	{
		uint64_t	r = 0;

		/* no bounds check per byte: the compiler unrolls this */
		for (int i = 0; i < 5; i++)
		{
			uint8_t		byte = (uint8_t) p[i];

			r |= (uint64_t) (byte & 0x7f) << (7 * i);
			if (byte < 0x80)
			{
				*v = r;
				return p + i + 1;
			}
		}
	}
	return sg_decode_varint64_long(p, limit, v);
}

/*
 * Inline for one and two bytes (values below 16384: the lengths in block
 * entries and records, three of which a scan meets per row; a row's value
 * length passes 127 often).
 */
static inline const char *
sg_decode_varint32(const char *p, const char *limit, uint32_t *v)
{
	if (p < limit && ((uint8_t) p[0] & 0x80) == 0)
	{
		*v = (uint8_t) p[0];
		return p + 1;
	}
	if (limit - p >= 2 && ((uint8_t) p[1] & 0x80) == 0)
	{
		*v = ((uint32_t) ((uint8_t) p[0] & 0x7f)) | ((uint32_t) (uint8_t) p[1] << 7);
		return p + 2;
	}
	return sg_decode_varint32_long(p, limit, v);
}

/* sg_buf appenders (failures are sticky in the buffer, see slice.h). */
extern void sg_put_fixed32(sg_buf *b, uint32_t v);
extern void sg_put_fixed64(sg_buf *b, uint64_t v);
extern void sg_put_varint32(sg_buf *b, uint32_t v);
extern void sg_put_varint64(sg_buf *b, uint64_t v);
extern void sg_put_length_prefixed(sg_buf *b, sg_slice s);

/*
 * Consuming readers over a slice: on success advance *in past the value and
 * return true; on truncated or malformed input return false and leave *in
 * unspecified.
 */

/* Advance *in to q, where a decoder stopped; false if it failed (q NULL). */
static inline bool
sg_slice_consume_to(sg_slice *in, const char *q)
{
	if (q == NULL)
		return false;
	in->len -= (size_t) (q - in->data);
	in->data = q;
	return true;
}

/*
 * Inline: a table's open walks every block handle of its index (two
 * varint64s each), and a scan decodes a writer per row.
 */
static inline bool
sg_get_varint32(sg_slice *in, uint32_t *v)
{
	return sg_slice_consume_to(in, sg_decode_varint32(in->data, in->data + in->len, v));
}

static inline bool
sg_get_varint64(sg_slice *in, uint64_t *v)
{
	return sg_slice_consume_to(in, sg_decode_varint64(in->data, in->data + in->len, v));
}

extern bool sg_get_fixed32(sg_slice *in, uint32_t *v);
extern bool sg_get_fixed64(sg_slice *in, uint64_t *v);
extern bool sg_get_length_prefixed(sg_slice *in, sg_slice *out);

#endif							/* SG_CODING_H */
