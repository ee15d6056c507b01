/*
 * status.c — error recording for the engine (see status.h).
 */
#include "engine/base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

sg_code
sg_error(sg_err *err, sg_code code, const char *fmt,...)
{
	if (err != NULL)
	{
		va_list		ap;

		/*
		 * A new error starts clean: the code paths that report a failed
		 * fsync set sync_failed after calling this, and a stale flag in an
		 * uninitialised sg_err must never turn an ordinary error into a
		 * PANIC.
		 */
		err->code = code;
		err->sync_failed = false;
		err->disk_full = false;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

void
sg_err_clear(sg_err *err)
{
	if (err != NULL)
	{
		err->code = SG_OK;
		err->sync_failed = false;
		err->disk_full = false;
		err->msg[0] = '\0';
	}
}

const char *
sg_code_name(sg_code code)
{
	switch (code)
	{
		case SG_OK:
			return "ok";
		case SG_NOT_FOUND:
			return "not found";
		case SG_CORRUPTION:
			return "corruption";
		case SG_IO_ERROR:
			return "I/O error";
		case SG_INVALID_ARGUMENT:
			return "invalid argument";
		case SG_NOT_SUPPORTED:
			return "not supported";
		case SG_NO_MEMORY:
			return "out of memory";
		case SG_BUSY:
			return "busy";
	}
	return "unknown";
}
