/*
 * wal_segment.h — what a WAL segment is on disk: its name, its header
 * record, and how LSNs map onto segments. Shared by the writer and replay.
 *
 * LSN mapping (frozen): a segment is named after the LSN of its first
 * byte, as 16 upper-case hex digits plus ".wal" (e.g.
 * "0000000004000000.wal"), and the byte at file offset o of the segment
 * that starts at S has LSN S + o. Segments in LSN order are the WAL.
 *
 * Every segment begins with a header record (a FULL fragment at offset 0)
 * whose 24-byte payload is:
 *
 *     fixed32 SG_WAL_MAGIC
 *     fixed32 SG_WAL_VERSION
 *     fixed64 start LSN (must equal the name)
 *     fixed64 end LSN of the previous segment (== start LSN when there is
 *             none, or when the writer was asked to skip ahead)
 *
 * The previous-end field lets replay detect a missing segment.
 */
#ifndef SG_WAL_SEGMENT_H
#define SG_WAL_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/base/env.h"
#include "engine/base/status.h"

#define SG_WAL_MAGIC 0x4c574753u	/* "SGWL" read as little-endian bytes */
#define SG_WAL_VERSION 1u
#define SG_WAL_SEG_HEADER_PAYLOAD 24
/* Bytes the header record takes: fragment header + payload (frozen). */
#define SG_WAL_SEG_HEADER_BYTES (7 + SG_WAL_SEG_HEADER_PAYLOAD)
/* "XXXXXXXXXXXXXXXX.wal" */
#define SG_WAL_SEG_NAME_LEN 20
#define SG_WAL_SEG_SUFFIX ".wal"
#define SG_WAL_TMP_SUFFIX ".tmp"

/* Decoded header record of a segment. */
typedef struct sg_wal_seg_header
{
	uint64_t	start_lsn;
	uint64_t	prev_end_lsn;
} sg_wal_seg_header;

/* "<dir>/<16 hex>.wal" into buf (size >= strlen(dir) + 22). */
extern void sg_wal_segment_path(char *buf, size_t size, const char *dir, uint64_t start_lsn);

/* True, with *start_lsn, if name is exactly a segment name. */
extern bool sg_wal_parse_segment_name(const char *name, uint64_t *start_lsn);

/*
 * The start LSNs of every segment in dir, ascending (malloc'd array in
 * *starts, count in *n; *starts is NULL when there are none). Leftover
 * "<segment>.tmp" files from an interrupted roll are removed when
 * remove_tmp is set.
 */
extern sg_code sg_wal_list_segments(sg_env *env, const char *dir, bool remove_tmp,
									uint64_t **starts, size_t *n, sg_err *err);

/* Encode / decode the 24-byte header payload. */
extern void sg_wal_encode_seg_header(char *dst, const sg_wal_seg_header *h);
extern bool sg_wal_decode_seg_header(const char *src, size_t len, sg_wal_seg_header *h);

/*
 * Create the segment starting at start_lsn durably: header written to a
 * temporary name, fsynced, renamed, directory fsynced. So a segment file
 * that exists always holds its header.
 */
extern sg_code sg_wal_create_segment(sg_env *env, const char *dir, uint64_t start_lsn,
									 uint64_t prev_end_lsn, sg_err *err);

/*
 * Consume the first record of a segment through reader r and check that it
 * is a header naming start_lsn. SG_CORRUPTION (naming the file) otherwise.
 */
struct sg_log_reader;
extern sg_code sg_wal_read_seg_header(struct sg_log_reader *r, const char *path,
									  uint64_t start_lsn, sg_wal_seg_header *h,
									  sg_err *err);

#endif							/* SG_WAL_SEGMENT_H */
