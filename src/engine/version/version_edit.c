/*
 * version_edit.c — file metadata and the encoding/decoding of version
 * edits (MANIFEST records). Decoding trusts nothing: every length, level,
 * key and counter is checked before use.
 */
#include "engine/version/version_edit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/base/coding.h"
#include "engine/base/ikey.h"

void
sg_file_meta_init(sg_file_meta *m)
{
	memset(m, 0, sizeof(*m));
	sg_buf_init(&m->smallest);
	sg_buf_init(&m->largest);
	sg_buf_init(&m->user_stats);
}

void
sg_file_meta_free(sg_file_meta *m)
{
	sg_buf_free(&m->smallest);
	sg_buf_free(&m->largest);
	sg_buf_free(&m->user_stats);
}

sg_code
sg_file_meta_copy(sg_file_meta *dst, const sg_file_meta *src, sg_err *err)
{
	sg_file_meta_init(dst);
	dst->number = src->number;
	dst->file_size = src->file_size;
	dst->num_entries = src->num_entries;
	dst->smallest_seq = src->smallest_seq;
	dst->largest_seq = src->largest_seq;
	sg_buf_append(&dst->smallest, src->smallest.data, src->smallest.len);
	sg_buf_append(&dst->largest, src->largest.data, src->largest.len);
	sg_buf_append(&dst->user_stats, src->user_stats.data, src->user_stats.len);
	if (sg_buf_failed(&dst->smallest) || sg_buf_failed(&dst->largest) ||
		sg_buf_failed(&dst->user_stats))
	{
		sg_file_meta_free(dst);
		return sg_error(err, SG_NO_MEMORY, "out of memory copying file metadata");
	}
	return SG_OK;
}

sg_file_meta *
sg_file_meta_clone(const sg_file_meta *src)
{
	sg_file_meta *m = malloc(sizeof(*m));

	if (m == NULL)
		return NULL;
	if (sg_file_meta_copy(m, src, NULL) != SG_OK)
	{
		free(m);
		return NULL;
	}
	return m;
}

void
sg_version_edit_init(sg_version_edit *e)
{
	memset(e, 0, sizeof(*e));
}

void
sg_version_edit_free(sg_version_edit *e)
{
	for (size_t i = 0; i < e->nadded; i++)
		sg_file_meta_free(&e->added[i].meta);
	free(e->added);
	free(e->deleted);
	sg_version_edit_init(e);
}

void
sg_version_edit_set_log_number(sg_version_edit *e, uint64_t lsn)
{
	e->has_log_number = true;
	e->log_number = lsn;
}

void
sg_version_edit_set_aux_log_number(sg_version_edit *e, uint64_t lsn)
{
	e->has_aux_log_number = true;
	e->aux_log_number = lsn;
}

void
sg_version_edit_set_next_file(sg_version_edit *e, uint64_t n)
{
	e->has_next_file = true;
	e->next_file = n;
}

void
sg_version_edit_set_last_sequence(sg_version_edit *e, uint64_t seq)
{
	e->has_last_sequence = true;
	e->last_sequence = seq;
}

/* Room for one more added file; false on memory failure. */
static bool
grow_added(sg_version_edit *e)
{
	if (e->nadded == e->cap_added)
	{
		size_t		ncap = e->cap_added ? e->cap_added * 2 : 8;
		sg_edit_file *n = realloc(e->added, ncap * sizeof(*n));

		if (n == NULL)
			return false;
		e->added = n;
		e->cap_added = ncap;
	}
	return true;
}

static bool
grow_deleted(sg_version_edit *e)
{
	if (e->ndeleted == e->cap_deleted)
	{
		size_t		ncap = e->cap_deleted ? e->cap_deleted * 2 : 8;
		sg_edit_deleted *n = realloc(e->deleted, ncap * sizeof(*n));

		if (n == NULL)
			return false;
		e->deleted = n;
		e->cap_deleted = ncap;
	}
	return true;
}

sg_code
sg_version_edit_add_file(sg_version_edit *e, int level, const sg_file_meta *meta,
						 sg_err *err)
{
	sg_code		rc;

	if (level < 0 || level >= SG_NUM_LEVELS)
		return sg_error(err, SG_INVALID_ARGUMENT, "file %llu: level %d out of range",
						(unsigned long long) meta->number, level);
	if (meta->smallest.len < SG_IKEY_TRAILER_LEN || meta->largest.len < SG_IKEY_TRAILER_LEN)
		return sg_error(err, SG_INVALID_ARGUMENT,
						"file %llu: key range is not made of internal keys",
						(unsigned long long) meta->number);
	if (!grow_added(e))
		return sg_error(err, SG_NO_MEMORY, "out of memory growing a version edit");
	if ((rc = sg_file_meta_copy(&e->added[e->nadded].meta, meta, err)) != SG_OK)
		return rc;
	e->added[e->nadded].level = level;
	e->nadded++;
	return SG_OK;
}

sg_code
sg_version_edit_delete_file(sg_version_edit *e, int level, uint64_t number, sg_err *err)
{
	if (level < 0 || level >= SG_NUM_LEVELS)
		return sg_error(err, SG_INVALID_ARGUMENT, "file %llu: level %d out of range",
						(unsigned long long) number, level);
	if (!grow_deleted(e))
		return sg_error(err, SG_NO_MEMORY, "out of memory growing a version edit");
	e->deleted[e->ndeleted].level = level;
	e->deleted[e->ndeleted].number = number;
	e->ndeleted++;
	return SG_OK;
}

void
sg_version_edit_encode(const sg_version_edit *e, sg_buf *out)
{
	if (e->is_snapshot)
		sg_put_varint32(out, SG_EDIT_TAG_SNAPSHOT);
	if (e->has_format_name)
	{
		sg_put_varint32(out, SG_EDIT_TAG_FORMAT_NAME);
		sg_put_length_prefixed(out, sg_slice_from_cstr(e->format_name));
	}
	if (e->has_log_number)
	{
		sg_put_varint32(out, SG_EDIT_TAG_LOG_NUMBER);
		sg_put_varint64(out, e->log_number);
	}
	if (e->has_aux_log_number)
	{
		sg_put_varint32(out, SG_EDIT_TAG_AUX_LOG_NUMBER);
		sg_put_varint64(out, e->aux_log_number);
	}
	if (e->has_next_file)
	{
		sg_put_varint32(out, SG_EDIT_TAG_NEXT_FILE);
		sg_put_varint64(out, e->next_file);
	}
	if (e->has_last_sequence)
	{
		sg_put_varint32(out, SG_EDIT_TAG_LAST_SEQUENCE);
		sg_put_varint64(out, e->last_sequence);
	}
	for (size_t i = 0; i < e->ndeleted; i++)
	{
		sg_put_varint32(out, SG_EDIT_TAG_DELETED_FILE);
		sg_put_varint32(out, (uint32_t) e->deleted[i].level);
		sg_put_varint64(out, e->deleted[i].number);
	}
	for (size_t i = 0; i < e->nadded; i++)
	{
		const sg_file_meta *m = &e->added[i].meta;

		sg_put_varint32(out, SG_EDIT_TAG_NEW_FILE);
		sg_put_varint32(out, (uint32_t) e->added[i].level);
		sg_put_varint64(out, m->number);
		sg_put_varint64(out, m->file_size);
		sg_put_varint64(out, m->num_entries);
		sg_put_length_prefixed(out, sg_buf_slice(&m->smallest));
		sg_put_length_prefixed(out, sg_buf_slice(&m->largest));
		sg_put_varint64(out, m->smallest_seq);
		sg_put_varint64(out, m->largest_seq);
		sg_put_length_prefixed(out, sg_buf_slice(&m->user_stats));
	}
}

/* Report malformed input at the record's place in the MANIFEST. */
#define BAD(what) \
	do { \
		rc = sg_error(err, SG_CORRUPTION, "%s: bad version edit at offset %llu: %s", \
					  path ? path : "MANIFEST", (unsigned long long) offset, (what)); \
		goto fail; \
	} while (0)

sg_code
sg_version_edit_decode(sg_version_edit *e, sg_slice in, const char *path,
					   uint64_t offset, sg_err *err)
{
	sg_code		rc;

	sg_version_edit_free(e);
	while (in.len > 0)
	{
		uint32_t	tag;

		if (!sg_get_varint32(&in, &tag))
			BAD("truncated tag");
		switch (tag)
		{
			case SG_EDIT_TAG_SNAPSHOT:
				if (e->is_snapshot)
					BAD("snapshot marker twice");
				e->is_snapshot = true;
				break;
			case SG_EDIT_TAG_FORMAT_NAME:
				{
					sg_slice	name;

					if (e->has_format_name)
						BAD("format name twice");
					if (!sg_get_length_prefixed(&in, &name))
						BAD("truncated format name");
					if (name.len == 0 || name.len >= sizeof(e->format_name) ||
						memchr(name.data, '\0', name.len) != NULL)
						BAD("format name has a bad length or a NUL byte");
					memcpy(e->format_name, name.data, name.len);
					e->format_name[name.len] = '\0';
					e->has_format_name = true;
					break;
				}
			case SG_EDIT_TAG_LOG_NUMBER:
				if (e->has_log_number)
					BAD("log number twice");
				if (!sg_get_varint64(&in, &e->log_number))
					BAD("truncated log number");
				e->has_log_number = true;
				break;
			case SG_EDIT_TAG_AUX_LOG_NUMBER:
				if (e->has_aux_log_number)
					BAD("aux log number twice");
				if (!sg_get_varint64(&in, &e->aux_log_number))
					BAD("truncated aux log number");
				e->has_aux_log_number = true;
				break;
			case SG_EDIT_TAG_NEXT_FILE:
				if (e->has_next_file)
					BAD("next file number twice");
				if (!sg_get_varint64(&in, &e->next_file))
					BAD("truncated next file number");
				e->has_next_file = true;
				break;
			case SG_EDIT_TAG_LAST_SEQUENCE:
				if (e->has_last_sequence)
					BAD("last sequence twice");
				if (!sg_get_varint64(&in, &e->last_sequence))
					BAD("truncated last sequence");
				if (e->last_sequence > SG_MAX_SEQUENCE)
					BAD("last sequence out of range");
				e->has_last_sequence = true;
				break;
			case SG_EDIT_TAG_DELETED_FILE:
				{
					uint32_t	level;
					uint64_t	number;

					if (!sg_get_varint32(&in, &level) || !sg_get_varint64(&in, &number))
						BAD("truncated deleted file");
					if (level >= SG_NUM_LEVELS)
						BAD("deleted file level out of range");
					if (!grow_deleted(e))
					{
						rc = sg_error(err, SG_NO_MEMORY, "out of memory decoding a version edit");
						goto fail;
					}
					e->deleted[e->ndeleted].level = (int) level;
					e->deleted[e->ndeleted].number = number;
					e->ndeleted++;
					break;
				}
			case SG_EDIT_TAG_NEW_FILE:
				{
					uint32_t	level;
					sg_file_meta m;
					sg_slice	smallest,
								largest,
								stats;
					sg_parsed_ikey ps,
								pl;

					sg_file_meta_init(&m);
					if (!sg_get_varint32(&in, &level) ||
						!sg_get_varint64(&in, &m.number) ||
						!sg_get_varint64(&in, &m.file_size) ||
						!sg_get_varint64(&in, &m.num_entries) ||
						!sg_get_length_prefixed(&in, &smallest) ||
						!sg_get_length_prefixed(&in, &largest) ||
						!sg_get_varint64(&in, &m.smallest_seq) ||
						!sg_get_varint64(&in, &m.largest_seq) ||
						!sg_get_length_prefixed(&in, &stats))
						BAD("truncated new file");
					if (level >= SG_NUM_LEVELS)
						BAD("new file level out of range");
					if (!sg_ikey_parse(smallest, &ps) || !sg_ikey_parse(largest, &pl))
						BAD("new file key range is not made of internal keys");
					if (sg_ikey_compare(smallest, largest) > 0)
						BAD("new file smallest key sorts after its largest");
					if (m.smallest_seq > m.largest_seq || m.largest_seq > SG_MAX_SEQUENCE)
						BAD("new file sequence range is inverted or out of range");
					if (m.num_entries == 0)
						BAD("new file has no entries");
					if (!grow_added(e))
					{
						rc = sg_error(err, SG_NO_MEMORY, "out of memory decoding a version edit");
						goto fail;
					}
					sg_buf_append_slice(&m.smallest, smallest);
					sg_buf_append_slice(&m.largest, largest);
					sg_buf_append_slice(&m.user_stats, stats);
					if (sg_buf_failed(&m.smallest) || sg_buf_failed(&m.largest) ||
						sg_buf_failed(&m.user_stats))
					{
						sg_file_meta_free(&m);
						rc = sg_error(err, SG_NO_MEMORY, "out of memory decoding a version edit");
						goto fail;
					}
					e->added[e->nadded].level = (int) level;
					e->added[e->nadded].meta = m;
					e->nadded++;
					break;
				}
			default:
				{
					char		msg[64];

					snprintf(msg, sizeof(msg), "unknown tag %u", tag);
					BAD(msg);
				}
		}
	}
	return SG_OK;

fail:
	sg_version_edit_free(e);
	return rc;
}
