/*
 * error.h — the one place where an engine status (sg_code, sg_err) becomes
 * an ereport: SG_CORRUPTION is ERRCODE_DATA_CORRUPTED, a full disk
 * ERRCODE_DISK_FULL, a failed fsync a PANIC (never retried).
 */
#ifndef STRATA_ERROR_H
#define STRATA_ERROR_H

#include "postgres.h"

#include "engine/base/status.h"

/* Report an engine failure; does not return. */
extern void strata_engine_error(sg_code rc, const sg_err *err) pg_attribute_noreturn();

#endif							/* STRATA_ERROR_H */
