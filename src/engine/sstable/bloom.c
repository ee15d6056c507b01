/*
 * bloom.c — bloom filter building and probing (format in bloom.h).
 */
#include "engine/sstable/bloom.h"

#include <string.h>

#include "engine/base/hash.h"

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
		uint64_t	delta = sg_hash64_probe_step(h);

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
	uint64_t	delta = sg_hash64_probe_step(hash);
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
