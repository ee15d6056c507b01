/*
 * log_format.h — the frozen record framing shared by the WAL and the
 * MANIFEST: a file is a sequence of SG_LOG_BLOCK_SIZE blocks, a record is
 * cut into fragments that never cross a block boundary.
 *
 * Fragment layout (all frozen; changing any value changes the file format):
 *
 *     offset 0  fixed32  masked CRC32C of (type byte || payload)
 *     offset 4  fixed16  payload length (little-endian)
 *     offset 6  uint8    fragment type (below)
 *     offset 7  payload  `length` bytes
 *
 * A block tail shorter than SG_LOG_HEADER_SIZE is filled with zero bytes
 * and skipped by readers; every block therefore begins with a fragment
 * header, which is what lets a reader find valid data after a damaged
 * fragment (see log_reader.h).
 */
#ifndef SG_LOG_FORMAT_H
#define SG_LOG_FORMAT_H

/* 32 KiB blocks: frozen. */
#define SG_LOG_BLOCK_SIZE 32768

/* crc (4) + length (2) + type (1): frozen. */
#define SG_LOG_HEADER_SIZE 7

/* Largest payload one fragment can carry. */
#define SG_LOG_MAX_FRAGMENT (SG_LOG_BLOCK_SIZE - SG_LOG_HEADER_SIZE)

/* Fragment types: frozen on-disk values. */
typedef enum sg_log_type
{
	SG_LOG_ZERO = 0,			/* never written: zeros mean "no fragment here" */
	SG_LOG_FULL = 1,			/* a whole record */
	SG_LOG_FIRST = 2,			/* first fragment of a record */
	SG_LOG_MIDDLE = 3,			/* an inner fragment */
	SG_LOG_LAST = 4				/* the final fragment */
} sg_log_type;

#define SG_LOG_MAX_TYPE SG_LOG_LAST

#endif							/* SG_LOG_FORMAT_H */
