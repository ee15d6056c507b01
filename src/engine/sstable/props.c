/*
 * props.c — the properties block (format in props.h and README.md).
 */
#include "engine/sstable/props.h"

#include <string.h>

#include "engine/base/coding.h"

static void
put_u64(sg_buf *dst, uint32_t tag, uint64_t v)
{
	sg_put_varint32(dst, tag);
	sg_put_varint32(dst, (uint32_t) sg_varint_length(v));
	sg_put_varint64(dst, v);
}

static void
put_bytes(sg_buf *dst, uint32_t tag, sg_slice s)
{
	sg_put_varint32(dst, tag);
	sg_put_length_prefixed(dst, s);
}

void
sg_table_props_encode(sg_buf *dst, const sg_table_props *p)
{
	put_u64(dst, SG_PROP_NUM_ENTRIES, p->num_entries);
	put_u64(dst, SG_PROP_NUM_DELETIONS, p->num_deletions);
	put_u64(dst, SG_PROP_NUM_DATA_BLOCKS, p->num_data_blocks);
	put_u64(dst, SG_PROP_RAW_KEY_BYTES, p->raw_key_bytes);
	put_u64(dst, SG_PROP_RAW_VALUE_BYTES, p->raw_value_bytes);
	put_u64(dst, SG_PROP_SMALLEST_SEQ, p->smallest_seq);
	put_u64(dst, SG_PROP_LARGEST_SEQ, p->largest_seq);
	put_u64(dst, SG_PROP_MAX_BLOCK_RAW, p->max_block_raw);
	put_u64(dst, SG_PROP_CODEC, (uint64_t) p->codec);
	put_bytes(dst, SG_PROP_SMALLEST_KEY, p->smallest_key);
	put_bytes(dst, SG_PROP_LARGEST_KEY, p->largest_key);
	put_bytes(dst, SG_PROP_USER_STATS, p->user_stats);
}

sg_code
sg_table_props_decode(sg_slice block, const char *path, uint64_t off,
					  sg_table_props *p, sg_err *err)
{
	sg_slice	in = block;
	uint32_t	seen = 0;
	const char *why = NULL;

	memset(p, 0, sizeof(*p));
	while (in.len > 0 && why == NULL)
	{
		uint32_t	tag;
		sg_slice	payload;
		uint64_t	v = 0;

		if (!sg_get_varint32(&in, &tag) || !sg_get_length_prefixed(&in, &payload))
		{
			why = "truncated record";
			break;
		}
		if (tag == 0 || tag > SG_PROP_MAX_KNOWN)
			continue;			/* a property from a later version */
		if (seen & (UINT32_C(1) << tag))
		{
			why = "duplicated record";
			break;
		}
		seen |= UINT32_C(1) << tag;
		if (tag < SG_PROP_SMALLEST_KEY)
		{
			if (!sg_get_varint64(&payload, &v) || payload.len != 0)
			{
				why = "malformed integer";
				break;
			}
		}
		switch (tag)
		{
			case SG_PROP_NUM_ENTRIES:
				p->num_entries = v;
				break;
			case SG_PROP_NUM_DELETIONS:
				p->num_deletions = v;
				break;
			case SG_PROP_NUM_DATA_BLOCKS:
				p->num_data_blocks = v;
				break;
			case SG_PROP_RAW_KEY_BYTES:
				p->raw_key_bytes = v;
				break;
			case SG_PROP_RAW_VALUE_BYTES:
				p->raw_value_bytes = v;
				break;
			case SG_PROP_SMALLEST_SEQ:
				p->smallest_seq = v;
				break;
			case SG_PROP_LARGEST_SEQ:
				p->largest_seq = v;
				break;
			case SG_PROP_MAX_BLOCK_RAW:
				p->max_block_raw = v;
				break;
			case SG_PROP_CODEC:
				if (v > SG_CODEC_MAX)
					why = "unknown codec";
				p->codec = (sg_codec) v;
				break;
			case SG_PROP_SMALLEST_KEY:
				p->smallest_key = payload;
				break;
			case SG_PROP_LARGEST_KEY:
				p->largest_key = payload;
				break;
			case SG_PROP_USER_STATS:
				p->user_stats = payload;
				break;
		}
	}
	if (why == NULL)
	{
		/* every tag 1..SG_PROP_MAX_KNOWN is required */
		uint32_t	all = ((UINT32_C(1) << (SG_PROP_MAX_KNOWN + 1)) - 1) & ~UINT32_C(1);

		if ((seen & all) != all)
			why = "missing record";
		else if (p->num_deletions > p->num_entries)
			why = "more deletions than entries";
		else if (p->max_block_raw > SG_TABLE_MAX_BLOCK_RAW)
			why = "block size beyond the format limit";
		else if (p->num_entries > 0 &&
				 (p->smallest_key.len < SG_IKEY_TRAILER_LEN ||
				  p->largest_key.len < SG_IKEY_TRAILER_LEN ||
				  sg_ikey_compare(p->smallest_key, p->largest_key) > 0))
			why = "bad key range";
		else if (p->num_entries == 0 &&
				 (p->smallest_key.len != 0 || p->largest_key.len != 0 ||
				  p->num_data_blocks != 0))
			why = "key range or data blocks in an empty table";
	}
	if (why != NULL)
		return sg_error(err, SG_CORRUPTION,
						"sstable \"%s\": corrupt properties block at offset %llu: %s",
						path, (unsigned long long) off, why);
	return SG_OK;
}
