/*
 * batch.h — the write batch: the payload of one WAL record, and the unit
 * that WAL replay and (later) PostgreSQL redo apply to a memtable.
 *
 * Encoding (frozen; README.md has the byte-level table):
 *
 *     fixed64  sequence of the first entry
 *     fixed32  count of entries
 *     count x  entry:
 *                uint8 type (SG_TYPE_PUT or SG_TYPE_DELETE, ikey.h)
 *                varint32 key length, key bytes
 *                PUT only: varint32 value length, value bytes
 *
 * Entry i carries sequence (first + i). A decoded batch is validated as it
 * is iterated: unknown types, truncated lengths, a count that does not
 * match the entries, trailing bytes and sequences past SG_MAX_SEQUENCE are
 * all SG_CORRUPTION.
 *
 * Thread safety: a batch or an iterator belongs to one thread.
 */
#ifndef SG_BATCH_H
#define SG_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "engine/base/ikey.h"
#include "engine/base/slice.h"
#include "engine/base/status.h"

/* fixed64 sequence + fixed32 count: frozen. */
#define SG_BATCH_HEADER_SIZE 12

typedef struct sg_batch
{
	sg_buf		rep;			/* the encoded batch, header included */
	uint32_t	count;
} sg_batch;

extern void sg_batch_init(sg_batch *b);
extern void sg_batch_free(sg_batch *b);
/* Forget every entry (keeps the memory); the sequence becomes 0. */
extern void sg_batch_clear(sg_batch *b);

/* SG_NO_MEMORY if the buffer could not grow; SG_INVALID_ARGUMENT if a
 * length does not fit 32 bits or the batch already has UINT32_MAX entries. */
extern sg_code sg_batch_put(sg_batch *b, sg_slice key, sg_slice value);
extern sg_code sg_batch_delete(sg_batch *b, sg_slice key);

extern uint32_t sg_batch_count(const sg_batch *b);
extern void sg_batch_set_sequence(sg_batch *b, uint64_t seq);
extern uint64_t sg_batch_sequence(const sg_batch *b);
/* Encoded size in bytes (what the WAL record will carry). */
extern size_t sg_batch_byte_size(const sg_batch *b);
/* The encoded batch; valid until the batch changes. */
extern sg_slice sg_batch_contents(const sg_batch *b);

/* One decoded entry; key and value point into the encoded batch. */
typedef struct sg_batch_entry
{
	sg_value_type type;
	uint64_t	seq;
	sg_slice	key;
	sg_slice	value;			/* empty for DELETE */
} sg_batch_entry;

typedef struct sg_batch_iter
{
	sg_slice	rest;			/* entries not yet decoded */
	uint64_t	first_seq;
	uint32_t	count;
	uint32_t	index;			/* entries returned so far */
} sg_batch_iter;

/*
 * Start iterating over an encoded batch (not copied: it must outlive the
 * iterator). SG_CORRUPTION if the header is short or the sequences would
 * overflow. `what` names the source for messages (e.g. "WAL record at LSN
 * 123"); may be NULL.
 */
extern sg_code sg_batch_iter_init(sg_batch_iter *it, sg_slice encoded,
								  const char *what, sg_err *err);

/*
 * SG_OK and the next entry; SG_NOT_FOUND after the last entry (checking
 * that the count matched and nothing trails); SG_CORRUPTION otherwise.
 */
extern sg_code sg_batch_iter_next(sg_batch_iter *it, sg_batch_entry *entry,
								  const char *what, sg_err *err);

/* Decode every entry without using them: SG_OK if the batch is well formed. */
extern sg_code sg_batch_validate(sg_slice encoded, const char *what, sg_err *err);

#endif							/* SG_BATCH_H */
