/*
 * hash.c — the engine's frozen 64-bit hash (contract in hash.h).
 */
#include "engine/base/hash.h"

#include "engine/base/coding.h"

/* Odd multipliers with well-mixed bits; frozen with the filter format. */
#define HASH_K1 UINT64_C(0x9fb21c651e98df25)
#define HASH_K2 UINT64_C(0xc2b2ae3d27d4eb4f)

/* A bijective finaliser: every input bit affects every output bit. */
static inline uint64_t
mix64(uint64_t x)
{
	x ^= x >> 31;
	x *= HASH_K1;
	x ^= x >> 29;
	x *= HASH_K2;
	x ^= x >> 32;
	return x;
}

uint64_t
sg_hash64(sg_slice key)
{
	const char *p = key.data;
	size_t		n = key.len;
	uint64_t	h = HASH_K2 ^ ((uint64_t) key.len * HASH_K1);

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
	return mix64(h + HASH_K1);
}
