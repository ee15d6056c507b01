/*
 * coding.c — varint and fixed-width encoders/decoders (see coding.h for the
 * frozen rules).
 */
#include "engine/base/coding.h"

char *
sg_encode_varint32(char *dst, uint32_t v)
{
	return sg_encode_varint64(dst, v);
}

char *
sg_encode_varint64(char *dst, uint64_t v)
{
	uint8_t    *p = (uint8_t *) dst;

	while (v >= 0x80)
	{
		*p++ = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t) v;
	return (char *) p;
}

int
sg_varint_length(uint64_t v)
{
	int			len = 1;

	while (v >= 0x80)
	{
		v >>= 7;
		len++;
	}
	return len;
}

const char *
sg_decode_varint64_long(const char *p, const char *limit, uint64_t *v)
{
	uint64_t	result = 0;

	for (unsigned shift = 0; shift <= 63 && p < limit; shift += 7)
	{
		uint64_t	byte = (uint8_t) *p++;

		/* the 10th byte may only carry the top bit of a 64-bit value */
		if (shift == 63 && byte > 1)
			return NULL;
		result |= (byte & 0x7f) << shift;
		if ((byte & 0x80) == 0)
		{
			*v = result;
			return p;
		}
	}
	return NULL;
}

/* sg_decode_varint32 past its one-byte case */
const char *
sg_decode_varint32_long(const char *p, const char *limit, uint32_t *v)
{
	uint64_t	v64;
	const char *q = sg_decode_varint64_long(p, limit, &v64);

	if (q == NULL || v64 > UINT32_MAX || q - p > SG_MAX_VARINT32_LEN)
		return NULL;
	*v = (uint32_t) v64;
	return q;
}

void
sg_put_fixed32(sg_buf *b, uint32_t v)
{
	char		tmp[4];

	sg_encode_fixed32(tmp, v);
	sg_buf_append(b, tmp, 4);
}

void
sg_put_fixed64(sg_buf *b, uint64_t v)
{
	char		tmp[8];

	sg_encode_fixed64(tmp, v);
	sg_buf_append(b, tmp, 8);
}

void
sg_put_varint32(sg_buf *b, uint32_t v)
{
	sg_put_varint64(b, v);
}

void
sg_put_varint64(sg_buf *b, uint64_t v)
{
	char		tmp[SG_MAX_VARINT64_LEN];
	char	   *end = sg_encode_varint64(tmp, v);

	sg_buf_append(b, tmp, (size_t) (end - tmp));
}

void
sg_put_length_prefixed(sg_buf *b, sg_slice s)
{
	sg_put_varint32(b, (uint32_t) s.len);
	sg_buf_append(b, s.data, s.len);
}

bool
sg_get_fixed32(sg_slice *in, uint32_t *v)
{
	if (in->len < 4)
		return false;
	*v = sg_decode_fixed32(in->data);
	in->data += 4;
	in->len -= 4;
	return true;
}

bool
sg_get_fixed64(sg_slice *in, uint64_t *v)
{
	if (in->len < 8)
		return false;
	*v = sg_decode_fixed64(in->data);
	in->data += 8;
	in->len -= 8;
	return true;
}

bool
sg_get_length_prefixed(sg_slice *in, sg_slice *out)
{
	uint32_t	len;

	if (!sg_get_varint32(in, &len) || len > in->len)
		return false;
	*out = sg_slice_make(in->data, len);
	in->data += len;
	in->len -= len;
	return true;
}
