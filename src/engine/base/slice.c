/*
 * slice.c — the growable buffer behind sg_buf (see slice.h).
 */
#include "engine/base/slice.h"
#include "engine/base/debug.h"

#include <stdlib.h>

void
sg_buf_init(sg_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->failed = false;
}

void
sg_buf_free(sg_buf *b)
{
	free(b->data);
	sg_buf_init(b);
}

void
sg_buf_reset(sg_buf *b)
{
	b->len = 0;
	b->failed = false;
}

bool
sg_buf_reserve(sg_buf *b, size_t n)
{
	size_t		need;
	size_t		newcap;
	char	   *p;

	if (b->failed)
		return false;
	need = b->len + n;
	if (need < b->len)			/* overflow */
	{
		b->failed = true;
		return false;
	}
	if (need <= b->cap)
		return true;
	newcap = b->cap ? b->cap : 64;
	while (newcap < need)
	{
		if (newcap > SIZE_MAX / 2)
		{
			newcap = need;
			break;
		}
		newcap *= 2;
	}
	p = realloc(b->data, newcap);
	if (p == NULL)
	{
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = newcap;
	return true;
}

/* sg_buf_append when the bytes do not fit (or the buffer failed) */
void
sg_buf_append_grow(sg_buf *b, const void *data, size_t n)
{
	if (n == 0 || !sg_buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, data, n);
	b->len += n;
}

void
sg_buf_append_byte(sg_buf *b, uint8_t c)
{
	if (!sg_buf_reserve(b, 1))
		return;
	b->data[b->len++] = (char) c;
}

void
sg_buf_append_slice(sg_buf *b, sg_slice s)
{
	sg_buf_append(b, s.data, s.len);
}

void
sg_buf_truncate(sg_buf *b, size_t n)
{
	SG_ASSERT(n <= b->len || b->failed);
	if (n < b->len)
		b->len = n;
}
