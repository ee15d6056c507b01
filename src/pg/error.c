/*
 * error.c — engine failures in PostgreSQL's terms (error.h): the one place
 * where an sg_code becomes an ereport.
 */
#include "postgres.h"

#include "pg/error.h"

/* ------------------------------------------------------------------------
 * Errors from the engine
 * ------------------------------------------------------------------------
 */

/*
 * Report an engine failure in PostgreSQL's terms. A failed fsync PANICs:
 * after one, the kernel may have dropped the dirty pages, and retrying
 * would report success for data that is gone (doc/DESIGN.md §7, C5).
 */
void
strata_engine_error(sg_code rc, const sg_err *err)
{
	const char *msg = (err && err->msg[0]) ? err->msg : sg_code_name(rc);

	if (err && err->sync_failed)
		ereport(PANIC,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("stratago: could not fsync: %s", msg)));
	switch (rc)
	{
		case SG_CORRUPTION:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("strata storage is corrupted: %s", msg)));
			break;
		case SG_NO_MEMORY:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory in strata storage: %s", msg),
					 errhint("Consider increasing stratago.memtable_memory.")));
			break;
		case SG_IO_ERROR:
			if (err && err->disk_full)
				ereport(ERROR,
						(errcode(ERRCODE_DISK_FULL),
						 errmsg("strata storage is out of disk space: %s", msg)));
			/* FALLTHROUGH */
		case SG_NOT_FOUND:
			ereport(ERROR,
					(errcode(ERRCODE_IO_ERROR),
					 errmsg("strata storage I/O error: %s", msg)));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("strata storage error: %s", msg)));
	}
}
