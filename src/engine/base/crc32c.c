/*
 * crc32c.c — CRC-32C with a hardware path (SSE4.2) and a portable
 * slicing-by-8 fallback. See crc32c.h.
 */
#include "engine/base/crc32c.h"

#include <string.h>

#define CRC32C_POLY_REFLECTED 0x82f63b78u

static uint32_t crc_table[8][256];
static uint32_t (*crc_impl) (uint32_t, const unsigned char *, size_t);

static uint32_t
crc32c_sw(uint32_t crc, const unsigned char *p, size_t n)
{
	crc = ~crc;
	while (n >= 8)
	{
		uint32_t	lo = crc ^ ((uint32_t) p[0] | ((uint32_t) p[1] << 8) |
								((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24));
		uint32_t	hi = (uint32_t) p[4] | ((uint32_t) p[5] << 8) |
			((uint32_t) p[6] << 16) | ((uint32_t) p[7] << 24);

		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
			crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
			crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
			crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t
crc32c_hw(uint32_t crc, const unsigned char *p, size_t n)
{
	uint64_t	c = ~crc;

	while (n >= 8)
	{
		uint64_t	w;

		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		n -= 8;
	}
	while (n--)
		c = __builtin_ia32_crc32qi((uint32_t) c, *p++);
	return ~(uint32_t) c;
}
#endif

__attribute__((constructor))
static void
crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++)
	{
		uint32_t	c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
				crc_table[0][crc_table[t - 1][i] & 0xff];

	crc_impl = crc32c_sw;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2"))
		crc_impl = crc32c_hw;
#endif
}

uint32_t
sg_crc32c_extend(uint32_t init_crc, const void *data, size_t n)
{
	return crc_impl(init_crc, (const unsigned char *) data, n);
}

int
sg_crc32c_hardware(void)
{
	return crc_impl != crc32c_sw;
}

/* Exposed for the unit test that checks both paths agree. */
uint32_t	sg_crc32c_software(uint32_t init_crc, const void *data, size_t n);

uint32_t
sg_crc32c_software(uint32_t init_crc, const void *data, size_t n)
{
	return crc32c_sw(init_crc, (const unsigned char *) data, n);
}
