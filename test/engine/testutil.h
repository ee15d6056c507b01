/*
 * testutil.h — helpers shared by the engine unit tests: scratch
 * directories and a deterministic random generator.
 */
#ifndef SG_TEST_UTIL_H
#define SG_TEST_UTIL_H

#include <stdint.h>

/* A fresh empty directory under $TMPDIR (malloc'd path). */
extern char *sg_test_tmpdir(const char *tag);

/* rm -rf path (test scratch only). */
extern void sg_test_rmtree(const char *path);

/* xorshift64*: reproducible pseudo-random numbers for tests. */
typedef struct sg_test_rng
{
	uint64_t	s;
} sg_test_rng;

static inline uint64_t
sg_test_rand(sg_test_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * UINT64_C(2685821657736338717);
}

static inline uint64_t
sg_test_uniform(sg_test_rng *r, uint64_t n)
{
	return n ? sg_test_rand(r) % n : 0;
}

#endif
