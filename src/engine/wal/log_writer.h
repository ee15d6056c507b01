/*
 * log_writer.h — appends records to a file in the block/fragment framing
 * of log_format.h. Used by the WAL (one writer per segment) and later by
 * the MANIFEST.
 *
 * A record is framed in memory and handed to the file in one append, so a
 * crash tears at most the tail of the last record. The writer never syncs:
 * durability is the caller's decision (see wal_writer.h).
 *
 * Thread safety: none; the caller serialises every call on one writer.
 */
#ifndef SG_LOG_WRITER_H
#define SG_LOG_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/base/env.h"
#include "engine/base/slice.h"
#include "engine/base/status.h"

typedef struct sg_log_writer
{
	sg_file    *file;			/* not owned */
	uint64_t	offset;			/* file size = where the next fragment goes */
	bool		failed;			/* an append failed: the file tail is unknown */
	sg_buf		scratch;		/* framing buffer, reused between records */
} sg_log_writer;

/*
 * Start writing to file, whose current size is offset (0 for a new file,
 * the recovered end for an existing one).
 * REQUIRES: every byte of the file below offset is a well-framed log.
 */
extern void sg_log_writer_init(sg_log_writer *w, sg_file *file, uint64_t offset);

/* Release the scratch buffer (the file is not closed). */
extern void sg_log_writer_free(sg_log_writer *w);

/*
 * Append one record (any length, 0 included). On success *end_offset (may
 * be NULL) is the file offset just past its last fragment. After an error
 * the writer refuses further appends: a partial write may be on disk.
 */
extern sg_code sg_log_writer_add(sg_log_writer *w, sg_slice record,
								 uint64_t *end_offset, sg_err *err);

/*
 * Frame record as if the file ended at offset, appending the bytes (block
 * padding included) to out. Returns the offset after the record. Pure: the
 * writer and tests use it to produce identical bytes.
 */
extern uint64_t sg_log_encode_record(sg_buf *out, uint64_t offset, sg_slice record);

#endif							/* SG_LOG_WRITER_H */
