/*
 * bloom.c — bloom filter building and probing (format in bloom.h).
 */
#include "engine/sstable/bloom.h"

#include <string.h>

#include "engine/base/coding.h"

/* Odd multipliers with well-mixed bits; frozen with the filter format. */
#define BLOOM_K1 UINT64_C(0x9fb21c651e98df25)
#define BLOOM_K2 UINT64_C(0xc2b2ae3d27d4eb4f)

/* A bijective finaliser: every input bit affects every output bit. */
static inline uint64_t
mix64(uint64_t x)
{
	x ^= x >> 31;
	x *= BLOOM_K1;
	x ^= x >> 29;
	x *= BLOOM_K2;
	x ^= x >> 32;
	return x;
}

uint64_t
sg_bloom_hash(sg_slice key)
{
	const char *p = key.data;
	size_t		n = key.len;
	uint64_t	h = BLOOM_K2 ^ ((uint64_t) key.len * BLOOM_K1);

	while (n >= 8)
	{
		h = mix64(h ^ sg_decode_fixed64(p));
		p += 8;
		n -= 8;
	}
	if (n > 0)
	{
		uint64_t	w = 0;

		/* little-endian tail, tagged with its length so "a" != "a\0" */
		for (size_t i = 0; i < n; i++)
			w |= (uint64_t) (uint8_t) p[i] << (8 * i);
		h = mix64(h ^ w ^ ((uint64_t) n << 59));
	}
	return mix64(h + BLOOM_K1);
}

static inline uint64_t
probe_delta(uint64_t h)
{
	return ((h >> 33) | (h << 31)) | 1;
}

void
sg_bloom_build(sg_buf *dst, const uint64_t *hashes, size_t n, int bits_per_key)
{
	size_t		nbits;
	size_t		nbytes;
	int			k;
	size_t		start;
	uint8_t    *bits;

	if (bits_per_key < 1)
		bits_per_key = 1;
	/* k = bits_per_key * ln 2 minimises the false-positive rate. */
	k = (int) (bits_per_key * 0.69 + 0.5);
	if (k < 1)
		k = 1;
	if (k > SG_BLOOM_MAX_PROBES)
		k = SG_BLOOM_MAX_PROBES;
	nbits = n * (size_t) bits_per_key;
	nbytes = (nbits + 7) / 8;
	if (nbytes < SG_BLOOM_MIN_BYTES)
		nbytes = SG_BLOOM_MIN_BYTES;
	nbits = nbytes * 8;

	start = dst->len;
	if (!sg_buf_reserve(dst, nbytes + 1))
		return;
	memset(dst->data + start, 0, nbytes);
	dst->len += nbytes;
	bits = (uint8_t *) dst->data + start;
	for (size_t i = 0; i < n; i++)
	{
		uint64_t	h = hashes[i];
		uint64_t	delta = probe_delta(h);

		for (int j = 0; j < k; j++)
		{
			uint64_t	pos = h % nbits;

			bits[pos / 8] |= (uint8_t) (1u << (pos % 8));
			h += delta;
		}
	}
	sg_buf_append_byte(dst, (uint8_t) k);
}

bool
sg_bloom_valid(sg_slice filter)
{
	uint8_t		k;

	if (filter.len < SG_BLOOM_MIN_BYTES + 1)
		return false;
	k = (uint8_t) filter.data[filter.len - 1];
	return k >= 1 && k <= SG_BLOOM_MAX_PROBES;
}

bool
sg_bloom_may_contain(sg_slice filter, uint64_t hash)
{
	const uint8_t *bits = (const uint8_t *) filter.data;
	uint64_t	nbits;
	uint64_t	delta = probe_delta(hash);
	int			k;

	if (!sg_bloom_valid(filter))
		return true;
	nbits = (uint64_t) (filter.len - 1) * 8;
	k = (uint8_t) filter.data[filter.len - 1];
	for (int j = 0; j < k; j++)
	{
		uint64_t	pos = hash % nbits;

		if ((bits[pos / 8] & (1u << (pos % 8))) == 0)
			return false;
		hash += delta;
	}
	return true;
}
