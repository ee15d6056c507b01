/*
 * error.h — the one place where an engine status (sg_code, sg_err) becomes
 * an ereport: SG_CORRUPTION is ERRCODE_DATA_CORRUPTED, a full disk
 * ERRCODE_DISK_FULL, a failed fsync a PANIC (never retried).
 */
#ifndef STRATA_ERROR_H
#define STRATA_ERROR_H

#include "postgres.h"

#include "engine/base/iter.h"
#include "engine/base/status.h"

/* Report an engine failure; does not return. */
extern void strata_engine_error(sg_code rc, const sg_err *err) pg_attribute_noreturn();

/*
 * Report the failure an iterator stopped on, if any. For the read paths,
 * called once per row: it does not clear a whole sg_err (half a kilobyte)
 * unless there is an error to report.
 */
static inline void
strata_iter_check(sg_iter *it)
{
	sg_err		err;

	err.code = SG_OK;
	err.sync_failed = false;
	err.disk_full = false;
	err.msg[0] = '\0';
	if (sg_iter_status(it, &err) != SG_OK)
		strata_engine_error(err.code, &err);
}

#endif							/* STRATA_ERROR_H */
