/*
 * crc32c.h — CRC-32C (Castagnoli), the checksum on every WAL record,
 * MANIFEST record and SSTable block.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at
 * load time), a slicing-by-8 table otherwise; both give identical results.
 *
 * Stored checksums are "masked" (rotated and offset) so that a CRC computed
 * over bytes that themselves contain a CRC does not degenerate; every
 * on-disk CRC is the masked form.
 */
#ifndef SG_CRC32C_H
#define SG_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* crc of data appended to data whose crc is init_crc (0 to start). */
extern uint32_t sg_crc32c_extend(uint32_t init_crc, const void *data, size_t n);

static inline uint32_t
sg_crc32c(const void *data, size_t n)
{
	return sg_crc32c_extend(0, data, n);
}

#define SG_CRC_MASK_DELTA 0xa282ead8u

static inline uint32_t
sg_crc32c_mask(uint32_t crc)
{
	return ((crc >> 15) | (crc << 17)) + SG_CRC_MASK_DELTA;
}

static inline uint32_t
sg_crc32c_unmask(uint32_t masked)
{
	uint32_t	rot = masked - SG_CRC_MASK_DELTA;

	return (rot >> 17) | (rot << 15);
}

/* True when the hardware instruction is in use (for tests and reports). */
extern int	sg_crc32c_hardware(void);

#endif							/* SG_CRC32C_H */
