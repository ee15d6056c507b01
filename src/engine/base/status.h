/*
 * status.h — how the engine reports failure.
 *
 * The engine never calls abort(), assert() on data, or ereport(): every
 * function that can fail returns an sg_code and, when the caller passes an
 * sg_err, fills in a message that names the file and byte offset involved.
 * The PostgreSQL glue turns these into ereport() calls with an errcode
 * (SG_CORRUPTION -> ERRCODE_DATA_CORRUPTED, a failed fsync -> PANIC).
 *
 * Thread safety: an sg_err belongs to one caller; nothing here is shared.
 */
#ifndef SG_STATUS_H
#define SG_STATUS_H

#include <stdbool.h>
#include <stddef.h>

typedef enum sg_code
{
	SG_OK = 0,
	SG_NOT_FOUND,				/* key or file absent: not an error for most callers */
	SG_CORRUPTION,				/* bad checksum, bad length, bad magic, bad encoding */
	SG_IO_ERROR,				/* the operating system refused a read or write */
	SG_INVALID_ARGUMENT,		/* the caller broke a documented precondition */
	SG_NOT_SUPPORTED,			/* e.g. a format version or codec we do not know */
	SG_NO_MEMORY,				/* malloc or the memtable arena ran out */
	SG_BUSY						/* retry later (a resource is held elsewhere) */
} sg_code;

#define SG_ERR_MSG_LEN 512

typedef struct sg_err
{
	sg_code		code;
	bool		sync_failed;	/* an fsync failed: the caller must not go on */
	bool		disk_full;		/* the operating system had no space left */
	char		msg[SG_ERR_MSG_LEN];
} sg_err;

/*
 * Record an error and return its code, so that callers can write
 *     return sg_error(err, SG_CORRUPTION, "%s: bad crc at offset %llu", ...);
 * err may be NULL (the code is still returned). Clears sync_failed and
 * disk_full: a caller reporting a failed fsync or a full disk sets them
 * after this call.
 */
extern sg_code sg_error(sg_err *err, sg_code code, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* Reset err to SG_OK with an empty message. */
extern void sg_err_clear(sg_err *err);

/* A short, stable name for a code ("corruption", "I/O error", ...). */
extern const char *sg_code_name(sg_code code);

#endif							/* SG_STATUS_H */
