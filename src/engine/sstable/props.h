/*
 * props.h — encoding of the properties block (sg_table_props).
 *
 * The block is a sequence of records, each
 *
 *     varint32 tag || varint32 length || payload[length]
 *
 * Integer payloads are one varint64 filling the payload exactly; key and
 * blob payloads are the raw bytes. Tags (frozen) are listed below. Each tag
 * may appear once; readers skip tags they do not know (so later versions
 * can add properties without a format change) and require the ones they
 * do. The builder writes tags in increasing order.
 *
 * Thread safety: stateless.
 */
#ifndef SG_SSTABLE_PROPS_H
#define SG_SSTABLE_PROPS_H

#include "engine/sstable/table.h"

#define SG_PROP_NUM_ENTRIES		1
#define SG_PROP_NUM_DELETIONS	2
#define SG_PROP_NUM_DATA_BLOCKS 3
#define SG_PROP_RAW_KEY_BYTES	4
#define SG_PROP_RAW_VALUE_BYTES 5
#define SG_PROP_SMALLEST_SEQ	6
#define SG_PROP_LARGEST_SEQ		7
#define SG_PROP_MAX_BLOCK_RAW	8
#define SG_PROP_CODEC			9
#define SG_PROP_SMALLEST_KEY	10
#define SG_PROP_LARGEST_KEY		11
#define SG_PROP_USER_STATS		12
#define SG_PROP_MAX_KNOWN		12

extern void sg_table_props_encode(sg_buf *dst, const sg_table_props *p);

/*
 * Parse a properties block; the slices in *p point into block. Any
 * malformed, duplicated or missing record, or inconsistent values, is
 * SG_CORRUPTION naming path and the block's offset.
 */
extern sg_code sg_table_props_decode(sg_slice block, const char *path, uint64_t off,
									 sg_table_props *p, sg_err *err);

#endif							/* SG_SSTABLE_PROPS_H */
