/*
 * log_reader.h — reads back the records of a file framed by log_writer.h,
 * reassembling fragments, and classifies every way the file can end:
 *
 *  - clean end: the file ends exactly after the last good record;
 *  - torn tail: a fragment that is incomplete or fails its checks, and no
 *    valid fragment anywhere after it. The records before it are good;
 *    sg_log_reader_good_end() is where recovery may cut the file;
 *  - corruption: a bad fragment followed by valid data, a fragment out of
 *    sequence, or a torn tail in a file the caller says must be complete
 *    (a WAL segment that is not the last). SG_CORRUPTION, with a message
 *    naming the file and offset. Corruption is never skipped.
 *
 * "Valid data follows" is decided by resynchronising (log_format.h: every
 * block starts with a fragment header): every byte position after the bad
 * fragment's start in its block, whatever its header claims (the length
 * field is not covered by the CRC, so a damaged length that runs past the
 * end of the file must not pass for a torn tail), and the first fragment of
 * every later block. A fragment is valid when its type is FULL..LAST, it
 * fits its block and the file, and its CRC matches. Cost: at most one such
 * scan per reader; see valid_data_follows() in log_reader.c.
 *
 * Thread safety: a reader belongs to one thread. The file must not grow
 * while it is read (its size is taken at open).
 */
#ifndef SG_LOG_READER_H
#define SG_LOG_READER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/base/env.h"
#include "engine/base/slice.h"
#include "engine/base/status.h"

typedef struct sg_log_reader sg_log_reader;

/*
 * Read file (not owned) from offset 0. If tail_must_be_clean, a torn tail
 * is reported as SG_CORRUPTION instead.
 */
extern sg_code sg_log_reader_open(sg_file *file, bool tail_must_be_clean,
								  sg_log_reader **out, sg_err *err);
extern void sg_log_reader_close(sg_log_reader *r);

/*
 * The next record:
 *   SG_OK          *record is valid until the next call;
 *   SG_NOT_FOUND   end of the log (clean or torn: see sg_log_reader_torn);
 *   anything else  an error (SG_CORRUPTION, SG_IO_ERROR, SG_NO_MEMORY);
 *                  it is sticky: later calls return it again.
 */
extern sg_code sg_log_reader_next(sg_log_reader *r, sg_slice *record, sg_err *err);

/* Offset of the first fragment of the record last returned. */
extern uint64_t sg_log_reader_record_offset(const sg_log_reader *r);

/* Offset just past the last good record (0 before the first). */
extern uint64_t sg_log_reader_good_end(const sg_log_reader *r);

/*
 * After SG_NOT_FOUND: true if the file had a torn tail. *bad_offset (may be
 * NULL) is where the first bad fragment starts, reason (may be NULL)
 * describes it; the file is good up to sg_log_reader_good_end().
 */
extern bool sg_log_reader_torn(const sg_log_reader *r, uint64_t *bad_offset,
							   const char **reason);

/* Size of the file as seen at open. */
extern uint64_t sg_log_reader_file_size(const sg_log_reader *r);

#endif							/* SG_LOG_READER_H */
