/*
 * version_edit.h — file metadata and version edits: the records of the
 * MANIFEST, the one durable description of which SSTables make up a tree.
 *
 * A version edit says "these files were added (at these levels), these
 * were removed, and the counters are now ...". Replaying every edit of a
 * MANIFEST from the first (a full snapshot) rebuilds the tree's version.
 *
 * Encoding (frozen; the byte-level table is in README.md): a sequence of
 * fields, each a varint32 tag followed by its payload. Unknown tags are
 * SG_CORRUPTION: an edit we cannot fully understand must not be applied.
 *
 * Thread safety: plain data. An edit belongs to one thread. A file meta is
 * shared between versions by reference count (refs); callers serialise
 * every ref change under their own lock (see version.h).
 */
#ifndef SG_VERSION_EDIT_H
#define SG_VERSION_EDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/base/slice.h"
#include "engine/base/status.h"

/* Levels 0 .. SG_NUM_LEVELS-1. Frozen: edits store the level number. */
#define SG_NUM_LEVELS 7

/* Edit field tags (frozen on-disk values). */
#define SG_EDIT_TAG_FORMAT_NAME		1	/* length-prefixed string */
#define SG_EDIT_TAG_LOG_NUMBER		2	/* varint64 flushed-up-to WAL LSN */
#define SG_EDIT_TAG_NEXT_FILE		3	/* varint64 next file number */
#define SG_EDIT_TAG_LAST_SEQUENCE	4	/* varint64 last sequence */
#define SG_EDIT_TAG_DELETED_FILE	5	/* varint32 level, varint64 number */
#define SG_EDIT_TAG_NEW_FILE		6	/* see README.md */
#define SG_EDIT_TAG_SNAPSHOT		7	/* no payload: this edit is a full snapshot */
#define SG_EDIT_TAG_AUX_LOG_NUMBER	8	/* varint64 flushed-up-to LSN of a second log */

/* The format name every tree of this engine records (frozen). */
#define SG_FORMAT_NAME "stratago.ikey.v1"

/*
 * One SSTable. Keys are internal keys (ikey.h). user_stats is an opaque
 * blob the caller chooses (PostgreSQL: the oldest unfrozen xid the file
 * holds). cache is a process-local slot for the caller (e.g. an open table
 * reader); it is never encoded and the version code never touches it.
 */
typedef struct sg_file_meta
{
	uint64_t	number;
	uint64_t	file_size;
	uint64_t	num_entries;
	uint64_t	smallest_seq;
	uint64_t	largest_seq;
	sg_buf		smallest;		/* smallest internal key */
	sg_buf		largest;		/* largest internal key */
	sg_buf		user_stats;
	uint32_t	refs;			/* versions (and callers) holding it */
	void	   *cache;			/* caller's process-local handle */
} sg_file_meta;

/* A file added by an edit, with its level. */
typedef struct sg_edit_file
{
	int			level;
	sg_file_meta meta;
} sg_edit_file;

/* A file removed by an edit. */
typedef struct sg_edit_deleted
{
	int			level;
	uint64_t	number;
} sg_edit_deleted;

typedef struct sg_version_edit
{
	bool		has_format_name;
	bool		has_log_number;
	bool		has_next_file;
	bool		has_last_sequence;
	bool		has_aux_log_number;
	bool		is_snapshot;	/* replaces every file: written first in a MANIFEST */
	char		format_name[64];
	uint64_t	log_number;		/* WAL LSN: everything below is in SSTables */

	/*
	 * The same for a second log an embedding application may write records
	 * to besides the engine WAL (PostgreSQL's WAL, for stratago). The engine
	 * only stores it and keeps it from going backwards.
	 */
	uint64_t	aux_log_number;
	uint64_t	next_file;
	uint64_t	last_sequence;

	sg_edit_file *added;
	size_t		nadded;
	size_t		cap_added;
	sg_edit_deleted *deleted;
	size_t		ndeleted;
	size_t		cap_deleted;
} sg_version_edit;

extern void sg_version_edit_init(sg_version_edit *e);
extern void sg_version_edit_free(sg_version_edit *e);

extern void sg_version_edit_set_log_number(sg_version_edit *e, uint64_t lsn);
extern void sg_version_edit_set_aux_log_number(sg_version_edit *e, uint64_t lsn);
extern void sg_version_edit_set_next_file(sg_version_edit *e, uint64_t n);
extern void sg_version_edit_set_last_sequence(sg_version_edit *e, uint64_t seq);

/*
 * Add a file at level; the meta's keys and stats are copied (refs and
 * cache are not). SG_NO_MEMORY or SG_INVALID_ARGUMENT (bad level, keys
 * shorter than an internal key).
 */
extern sg_code sg_version_edit_add_file(sg_version_edit *e, int level,
										const sg_file_meta *meta, sg_err *err);
extern sg_code sg_version_edit_delete_file(sg_version_edit *e, int level,
										   uint64_t number, sg_err *err);

/* Append the encoding of e to out (failure is sticky in out). */
extern void sg_version_edit_encode(const sg_version_edit *e, sg_buf *out);

/*
 * Decode one edit into e (initialised; previous contents are freed).
 * Every field is validated: levels, key lengths and types, key and
 * sequence order, duplicate singleton fields. Failures are SG_CORRUPTION
 * naming `path` and `offset` (the record's place in the MANIFEST).
 */
extern sg_code sg_version_edit_decode(sg_version_edit *e, sg_slice in,
									  const char *path, uint64_t offset, sg_err *err);

/* File meta helpers. */
extern void sg_file_meta_init(sg_file_meta *m);
extern void sg_file_meta_free(sg_file_meta *m);
/* Deep copy of keys and stats (refs = 0, cache = NULL). */
extern sg_code sg_file_meta_copy(sg_file_meta *dst, const sg_file_meta *src, sg_err *err);
/* malloc'd copy with refs = 0; NULL on memory failure. */
extern sg_file_meta *sg_file_meta_clone(const sg_file_meta *src);

/* User-key range of a file (slices into its keys). */
static inline sg_slice
sg_file_meta_smallest_user(const sg_file_meta *m)
{
	return sg_slice_make(m->smallest.data, m->smallest.len - 8);
}

static inline sg_slice
sg_file_meta_largest_user(const sg_file_meta *m)
{
	return sg_slice_make(m->largest.data, m->largest.len - 8);
}

#endif							/* SG_VERSION_EDIT_H */
