/*
 * debug.h — assertions of the engine's own invariants, for debug builds.
 *
 * SG_ASSERT checks what the engine's code guarantees (never what input
 * says: bad input is an sg_code error, always). It is compiled in only with
 * -DSG_DEBUG, which `make engine-asan` sets; release builds and the
 * PostgreSQL module pay nothing for it.
 */
#ifndef SG_DEBUG_H
#define SG_DEBUG_H

#ifdef SG_DEBUG
#include <stdio.h>
#include <stdlib.h>
#define SG_ASSERT(cond) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "stratago engine assertion failed: %s (%s:%d)\n", \
					#cond, __FILE__, __LINE__); \
			abort(); \
		} \
	} while (0)
#else
#define SG_ASSERT(cond) ((void) 0)
#endif

#endif							/* SG_DEBUG_H */
