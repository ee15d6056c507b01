/*
 * test_memtable.c — unit tests for the memtable subsystem: the
 * offset-addressed arena (regions, chunk callbacks, exhaustion), the
 * skiplist order against a sorted reference, snapshot reads, relocation of
 * the whole memory to another address, a writer racing three readers that
 * see the memory through a second mapping, and a throughput measure.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/base/coding.h"
#include "engine/base/ikey.h"
#include "engine/memtable/arena.h"
#include "engine/memtable/memtable.h"
#include "testutil.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

/*
 * A stand-in for the PostgreSQL glue's global shared arena: one big area,
 * chunks carved from it in order, a cap on how many may be given out.
 */
typedef struct chunk_pool
{
	size_t		next;			/* next free offset from the area's base */
	size_t		size;			/* area size */
	size_t		chunk;			/* preferred chunk size */
	int			max_chunks;
	int			given;
	int			released;
	size_t		released_bytes;
} chunk_pool;

static sg_code
pool_chunk(void *ctx, size_t min_len, sg_off *off, size_t *len)
{
	chunk_pool *p = ctx;
	size_t		want = min_len > p->chunk ? min_len : p->chunk;

	want = (want + 7) & ~(size_t) 7;
	if (p->given >= p->max_chunks || p->next + want > p->size)
		return SG_NO_MEMORY;
	*off = p->next;
	*len = want;
	p->next += want;
	p->given++;
	return SG_OK;
}

static void
pool_release(void *ctx, sg_off off, size_t len)
{
	chunk_pool *p = ctx;

	(void) off;
	p->released++;
	p->released_bytes += len;
}

static void
pool_init(chunk_pool *p, size_t start, size_t size, size_t chunk, int max_chunks)
{
	memset(p, 0, sizeof(*p));
	p->next = start;
	p->size = size;
	p->chunk = chunk;
	p->max_chunks = max_chunks;
}

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* One version held by the reference model. */
typedef struct ref_entry
{
	sg_buf		ikey;
	sg_buf		value;
} ref_entry;

static int
ref_cmp(const void *a, const void *b)
{
	const ref_entry *x = a;
	const ref_entry *y = b;

	return sg_ikey_compare(sg_buf_slice(&x->ikey), sg_buf_slice(&y->ikey));
}

static void
ref_free(ref_entry *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
	{
		sg_buf_free(&r[i].ikey);
		sg_buf_free(&r[i].value);
	}
	free(r);
}

/* a + b, sorted; takes ownership of both. */
static ref_entry *
ref_concat(ref_entry *a, size_t na, ref_entry *b, size_t nb)
{
	ref_entry  *r = realloc(a, (na + nb) * sizeof(ref_entry));

	assert_non_null(r);
	memcpy(r + na, b, nb * sizeof(ref_entry));
	free(b);
	qsort(r, na + nb, sizeof(ref_entry), ref_cmp);
	return r;
}

/* Index of the first reference entry >= target (a lower bound). */
static size_t
ref_lower_bound(const ref_entry *r, size_t n, sg_slice target)
{
	size_t		lo = 0;
	size_t		hi = n;

	while (lo < hi)
	{
		size_t		mid = lo + (hi - lo) / 2;

		if (sg_ikey_compare(sg_buf_slice(&r[mid].ikey), target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A universe of user keys with shared prefixes, one of them empty. */
static sg_buf *
make_user_keys(sg_test_rng *rng, size_t n)
{
	sg_buf	   *keys = calloc(n, sizeof(sg_buf));

	assert_non_null(keys);
	for (size_t i = 0; i < n; i++)
	{
		size_t		len = i == 0 ? 0 : 1 + sg_test_uniform(rng, 12);

		sg_buf_init(&keys[i]);
		for (size_t j = 0; j < len; j++)
			sg_buf_append_byte(&keys[i], (uint8_t) ('a' + sg_test_uniform(rng, 3)));
		assert_false(sg_buf_failed(&keys[i]));
	}
	return keys;
}

static void
free_user_keys(sg_buf *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sg_buf_free(&keys[i]);
	free(keys);
}

/*
 * Insert n random versions (user keys from a small universe so that keys
 * repeat, unique sequence numbers in random order, ~1/8 tombstones) into
 * mt and into a reference array, which is returned sorted.
 */
static ref_entry *
fill_random(sg_memtable *mt, sg_test_rng *rng, size_t n, size_t nkeys,
			uint64_t seq_base)
{
	sg_buf	   *keys = make_user_keys(rng, nkeys);
	ref_entry  *ref = calloc(n, sizeof(ref_entry));
	uint64_t   *seqs = malloc(n * sizeof(uint64_t));
	sg_err		err;

	assert_non_null(ref);
	assert_non_null(seqs);
	for (size_t i = 0; i < n; i++)
		seqs[i] = seq_base + i;
	for (size_t i = n; i > 1; i--)
	{
		size_t		j = sg_test_uniform(rng, i);
		uint64_t	t = seqs[i - 1];

		seqs[i - 1] = seqs[j];
		seqs[j] = t;
	}
	for (size_t i = 0; i < n; i++)
	{
		sg_buf	   *uk = &keys[sg_test_uniform(rng, nkeys)];
		sg_value_type type = sg_test_uniform(rng, 8) == 0 ? SG_TYPE_DELETE : SG_TYPE_PUT;

		sg_buf_init(&ref[i].ikey);
		sg_buf_init(&ref[i].value);
		sg_ikey_append(&ref[i].ikey, sg_buf_slice(uk), seqs[i], type);
		if (type == SG_TYPE_PUT)
		{
			size_t		vlen = sg_test_uniform(rng, 40);

			for (size_t j = 0; j < vlen; j++)
				sg_buf_append_byte(&ref[i].value, (uint8_t) sg_test_rand(rng));
		}
		assert_false(sg_buf_failed(&ref[i].ikey) || sg_buf_failed(&ref[i].value));
		assert_int_equal(sg_memtable_add(mt, seqs[i], type, sg_buf_slice(uk),
										 sg_buf_slice(&ref[i].value), &err), SG_OK);
	}
	qsort(ref, n, sizeof(ref_entry), ref_cmp);
	free(seqs);
	free_user_keys(keys, nkeys);
	return ref;
}

/* Full iteration of mt equals the reference, entry for entry. */
static void
check_iteration(const sg_memtable *mt, const ref_entry *ref, size_t n)
{
	sg_iter    *it = sg_memtable_iter(mt);
	size_t		i = 0;
	sg_err		err;

	for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it), i++)
	{
		assert_true(i < n);
		assert_true(sg_slice_equal(sg_iter_key(it), sg_buf_slice(&ref[i].ikey)));
		assert_true(sg_slice_equal(sg_iter_value(it), sg_buf_slice(&ref[i].value)));
	}
	assert_int_equal(i, n);
	assert_int_equal(sg_iter_status(it, &err), SG_OK);
	assert_int_equal(sg_memtable_entries(mt), n);
	sg_iter_destroy(it);
}

/* Point lookups at random snapshots agree with the reference. */
static void
check_gets(const sg_memtable *mt, const ref_entry *ref, size_t n,
		   sg_test_rng *rng, size_t probes, uint64_t max_seq)
{
	sg_buf		target = SG_BUF_INIT;

	for (size_t q = 0; q < probes; q++)
	{
		const ref_entry *pick = &ref[sg_test_uniform(rng, n)];
		sg_slice	uk = sg_ikey_user_key(sg_buf_slice(&pick->ikey));
		uint64_t	snap = sg_test_uniform(rng, max_seq + 2);
		sg_slice	value = sg_slice_make(NULL, 0);
		uint64_t	seq = 0;

		sg_buf_reset(&target);
		sg_ikey_append(&target, uk, snap, SG_TYPE_FOR_SEEK);
		assert_false(sg_buf_failed(&target));

		size_t		lb = ref_lower_bound(ref, n, sg_buf_slice(&target));
		sg_memtable_result res = sg_memtable_get(mt, uk, snap, &value, &seq);

		if (lb == n || !sg_slice_equal(sg_ikey_user_key(sg_buf_slice(&ref[lb].ikey)), uk))
		{
			assert_int_equal(res, SG_MEMTABLE_NOT_FOUND);
			continue;
		}

		sg_parsed_ikey p = {{NULL, 0}, 0, SG_TYPE_DELETE};

		assert_true(sg_ikey_parse(sg_buf_slice(&ref[lb].ikey), &p));
		assert_int_equal(seq, p.seq);
		assert_true(p.seq <= snap);
		if (p.type == SG_TYPE_DELETE)
			assert_int_equal(res, SG_MEMTABLE_DELETED);
		else
		{
			assert_int_equal(res, SG_MEMTABLE_FOUND);
			assert_true(sg_slice_equal(value, sg_buf_slice(&ref[lb].value)));
		}
	}
	sg_buf_free(&target);
}

/* A memtable in one malloc'd region [0, size). */
static char *
region_memtable(sg_memtable *mt, size_t size)
{
	char	   *region = aligned_alloc(64, size);
	sg_arena	arena;
	sg_err		err;

	assert_non_null(region);
	assert_int_equal(sg_arena_create(&arena, region, 0, size, NULL, NULL, &err), SG_OK);
	assert_int_equal(sg_memtable_create(mt, &arena, 1, &err), SG_OK);
	return region;
}

/* ------------------------------------------------------------------ */
/* arena                                                               */
/* ------------------------------------------------------------------ */

static void
test_arena_region(void **state)
{
	size_t		size = 4096;
	char	   *region = aligned_alloc(64, size);
	sg_arena	a;
	sg_arena	b;
	sg_off		off;
	sg_off		prev_end = 0;
	sg_err		err;

	(void) state;
	assert_int_equal(sg_arena_create(&a, region, 0, size, NULL, NULL, &err), SG_OK);
	assert_int_equal(sg_arena_reserved(&a), size);
	assert_int_equal(sg_arena_chunks(&a), 1);

	uint64_t	used0 = sg_arena_used(&a);

	/* sizes and alignments vary; offsets never 0, always aligned, disjoint */
	size_t		sizes[] = {1, 3, 8, 17, 64, 5, 100};
	size_t		aligns[] = {1, 8, 16, 64, 8, 32, 8};

	for (size_t i = 0; i < 7; i++)
	{
		assert_int_equal(sg_arena_alloc(&a, sizes[i], aligns[i], &off, &err), SG_OK);
		assert_true(off != SG_OFF_NULL);
		assert_int_equal(off % (aligns[i] < 8 ? 8 : aligns[i]), 0);
		assert_true(off >= prev_end);
		assert_true(off + sizes[i] <= size);
		memset(sg_arena_ptr(&a, off), (int) i, sizes[i]);
		prev_end = off + sizes[i];
	}
	assert_true(sg_arena_used(&a) >= used0 + 198);
	assert_true(sg_arena_used(&a) <= size);

	/* bad alignment is refused */
	assert_int_equal(sg_arena_alloc(&a, 8, 24, &off, &err), SG_INVALID_ARGUMENT);

	/* exhaustion: refused, and nothing changes */
	uint64_t	used = sg_arena_used(&a);

	assert_int_equal(sg_arena_alloc(&a, size, 8, &off, &err), SG_NO_MEMORY);
	assert_int_equal(err.code, SG_NO_MEMORY);
	assert_int_equal(sg_arena_used(&a), used);
	assert_int_equal(sg_arena_alloc(&a, (size_t) -1, 8, &off, &err), SG_NO_MEMORY);
	assert_int_equal(sg_arena_used(&a), used);
	/* what is left can still be had, to the last byte */
	size_t		left = size - (size_t) used;

	left &= ~(size_t) 7;
	assert_int_equal(sg_arena_alloc(&a, left, 8, &off, &err), SG_OK);
	assert_int_equal(sg_arena_alloc(&a, 1, 8, &off, &err), SG_NO_MEMORY);

	/* a second handle from the header offset sees the same counters */
	assert_int_equal(sg_arena_attach(&b, region, a.hdr_off, NULL, NULL, &err), SG_OK);
	assert_int_equal(sg_arena_used(&b), sg_arena_used(&a));

	/* attaching where there is no arena fails cleanly */
	assert_int_equal(sg_arena_attach(&b, region, 1024, NULL, NULL, &err), SG_CORRUPTION);
	assert_int_equal(sg_arena_attach(&b, region, 12, NULL, NULL, &err), SG_INVALID_ARGUMENT);
	assert_int_equal(sg_arena_attach(&b, region, 0, NULL, NULL, &err), SG_INVALID_ARGUMENT);
	assert_int_equal(sg_arena_create(&b, region + 4, 0, size - 8, NULL, NULL, &err),
					 SG_INVALID_ARGUMENT);
	/* too small a region for even the header */
	assert_int_equal(sg_arena_create(&b, region, 0, 16, NULL, NULL, &err),
					 SG_INVALID_ARGUMENT);
	free(region);
}

static void
test_arena_chunks(void **state)
{
	size_t		size = 1 << 20;
	char	   *area = aligned_alloc(64, size);
	chunk_pool	pool;
	sg_arena	a;
	sg_off		off;
	sg_err		err;

	(void) state;
	pool_init(&pool, 64, size, 1024, 40);
	/* no region: the first chunk (holding the header) comes from the pool */
	assert_int_equal(sg_arena_create(&a, area, 0, 0, pool_chunk, &pool, &err), SG_OK);
	assert_int_equal(pool.given, 1);
	assert_int_equal(a.hdr_off, 64 + sizeof(sg_arena_chunk_hdr));

	/* many small allocations cross chunk boundaries; all stay inside chunks */
	for (int i = 0; i < 200; i++)
	{
		assert_int_equal(sg_arena_alloc(&a, 40, 8, &off, &err), SG_OK);
		assert_true(off + 40 <= pool.next);
		memset(area + off, 0x5a, 40);
	}
	assert_true(pool.given > 5);
	assert_int_equal(sg_arena_chunks(&a), (uint64_t) pool.given);
	assert_int_equal(sg_arena_reserved(&a), pool.next - 64);

	/* larger than a chunk: the provider is asked for enough */
	assert_int_equal(sg_arena_alloc(&a, 5000, 64, &off, &err), SG_OK);
	assert_int_equal(off % 64, 0);
	assert_true(off + 5000 <= pool.next);

	/* the bump region stayed in the chunk with more room: next small fits */
	int			given = pool.given;

	assert_int_equal(sg_arena_alloc(&a, 8, 8, &off, &err), SG_OK);
	assert_int_equal(pool.given, given);

	/* provider runs dry: SG_NO_MEMORY and unchanged counters */
	pool.max_chunks = pool.given;

	uint64_t	used = sg_arena_used(&a);
	uint64_t	reserved = sg_arena_reserved(&a);
	sg_code		rc;

	while ((rc = sg_arena_alloc(&a, 100, 8, &off, &err)) == SG_OK)
		used = sg_arena_used(&a);
	assert_int_equal(rc, SG_NO_MEMORY);
	assert_int_equal(sg_arena_used(&a), used);
	assert_int_equal(sg_arena_reserved(&a), reserved);

	/* every chunk is handed back exactly once */
	assert_int_equal(sg_arena_chunks(&a), (uint64_t) pool.given);
	sg_arena_release(&a, pool_release, &pool);
	assert_int_equal(pool.released, pool.given);
	assert_int_equal(pool.released_bytes, reserved);
	free(area);
}

/* A provider that breaks its contract must not make us scribble. */
static sg_code
bad_chunk(void *ctx, size_t min_len, sg_off *off, size_t *len)
{
	(void) ctx;
	*off = 4100;				/* misaligned */
	*len = min_len;
	return SG_OK;
}

static void
test_arena_bad_provider(void **state)
{
	char	   *area = aligned_alloc(64, 1 << 16);
	sg_arena	a;
	sg_off		off;
	sg_err		err;

	(void) state;
	assert_int_equal(sg_arena_create(&a, area, 0, 0, bad_chunk, NULL, &err),
					 SG_INVALID_ARGUMENT);
	assert_int_equal(sg_arena_create(&a, area, 0, 256, bad_chunk, NULL, &err), SG_OK);
	assert_int_equal(sg_arena_alloc(&a, 1024, 8, &off, &err), SG_INVALID_ARGUMENT);
	assert_int_equal(sg_arena_chunks(&a), 1);
	assert_int_equal(sg_arena_create(&a, area, 0, 0, NULL, NULL, &err),
					 SG_INVALID_ARGUMENT);
	free(area);
}

/* ------------------------------------------------------------------ */
/* memtable: order, seek, get                                          */
/* ------------------------------------------------------------------ */

static void
test_iterate_and_seek_match_reference(void **state)
{
	sg_test_rng rng = {0x1234567};
	sg_memtable mt;
	size_t		n = 20000;
	char	   *region = region_memtable(&mt, 8 << 20);
	ref_entry  *ref;
	sg_buf		target = SG_BUF_INIT;
	sg_buf	   *probe_keys;

	(void) state;
	ref = fill_random(&mt, &rng, n, 400, 1);
	check_iteration(&mt, ref, n);

	/* ascending and strictly ordered by the frozen internal-key order */
	for (size_t i = 1; i < n; i++)
		assert_true(ref_cmp(&ref[i - 1], &ref[i]) < 0);

	/* seek to existing keys, to random (user key, seq) and to bare user keys */
	probe_keys = make_user_keys(&rng, 200);

	sg_iter    *it = sg_memtable_iter(&mt);

	for (int q = 0; q < 3000; q++)
	{
		size_t		expect;

		sg_buf_reset(&target);
		if (q % 3 == 0)
		{
			size_t		k = sg_test_uniform(&rng, n);

			sg_buf_append_slice(&target, sg_buf_slice(&ref[k].ikey));
			sg_iter_seek(it, sg_buf_slice(&target));
			expect = k;
		}
		else if (q % 3 == 1)
		{
			sg_ikey_append(&target, sg_buf_slice(&probe_keys[sg_test_uniform(&rng, 200)]),
						   sg_test_uniform(&rng, n + 2),
						   (sg_value_type) sg_test_uniform(&rng, 2));
			sg_iter_seek(it, sg_buf_slice(&target));
			expect = ref_lower_bound(ref, n, sg_buf_slice(&target));
		}
		else
		{
			/* a bare user key (< 8 bytes): lands on its newest version */
			sg_buf	   *uk = &probe_keys[sg_test_uniform(&rng, 200)];

			if (uk->len >= SG_IKEY_TRAILER_LEN)
				continue;
			sg_iter_seek(it, sg_buf_slice(uk));
			sg_ikey_append(&target, sg_buf_slice(uk), SG_MAX_SEQUENCE, SG_TYPE_PUT);
			expect = ref_lower_bound(ref, n, sg_buf_slice(&target));
		}
		assert_false(sg_buf_failed(&target));
		/* the position and a few steps after it match the reference */
		for (size_t s = 0; s < 5; s++, sg_iter_next(it))
		{
			if (expect + s >= n)
			{
				assert_false(sg_iter_valid(it));
				break;
			}
			assert_true(sg_iter_valid(it));
			assert_true(sg_slice_equal(sg_iter_key(it),
									   sg_buf_slice(&ref[expect + s].ikey)));
			assert_true(sg_slice_equal(sg_iter_value(it),
									   sg_buf_slice(&ref[expect + s].value)));
		}
	}
	sg_iter_destroy(it);

	check_gets(&mt, ref, n, &rng, 20000, n);

	uint64_t	lo;
	uint64_t	hi;

	assert_true(sg_memtable_seq_range(&mt, &lo, &hi));
	assert_int_equal(lo, 1);
	assert_int_equal(hi, n);
	assert_true(sg_memtable_memory_usage(&mt) == 8 << 20);
	assert_true(sg_memtable_data_bytes(&mt) > 0);

	sg_buf_free(&target);
	free_user_keys(probe_keys, 200);
	ref_free(ref, n);
	free(region);
}

typedef struct version_log
{
	int			n;
	int			stop_after;
	uint64_t	seqs[16];
	sg_value_type types[16];
	char		values[16][8];
} version_log;

static bool
log_version(void *ctx, uint64_t seq, sg_value_type type, sg_slice value)
{
	version_log *l = ctx;

	l->seqs[l->n] = seq;
	l->types[l->n] = type;
	snprintf(l->values[l->n], 8, "%.*s", (int) value.len, value.data);
	l->n++;
	return l->n != l->stop_after;
}

static void
test_get_snapshots(void **state)
{
	sg_memtable mt;
	char	   *region = region_memtable(&mt, 1 << 16);
	sg_slice	k = sg_slice_from_cstr("row");
	sg_slice	v;
	uint64_t	seq;
	sg_err		err;

	(void) state;
	assert_false(sg_memtable_seq_range(&mt, &seq, &seq));
	assert_int_equal(sg_memtable_get(&mt, k, SG_MAX_SEQUENCE, &v, &seq),
					 SG_MEMTABLE_NOT_FOUND);

	/* inserted out of order on purpose; neighbours around "row" too */
	assert_int_equal(sg_memtable_add(&mt, 12, SG_TYPE_PUT, k, sg_slice_from_cstr("c"), &err), SG_OK);
	assert_int_equal(sg_memtable_add(&mt, 1, SG_TYPE_PUT, k, sg_slice_from_cstr("a"), &err), SG_OK);
	assert_int_equal(sg_memtable_add(&mt, 8, SG_TYPE_DELETE, k, sg_slice_from_cstr("ignored"), &err), SG_OK);
	assert_int_equal(sg_memtable_add(&mt, 5, SG_TYPE_PUT, k, sg_slice_from_cstr("b"), &err), SG_OK);
	assert_int_equal(sg_memtable_add(&mt, 3, SG_TYPE_PUT, sg_slice_from_cstr("ro"), sg_slice_from_cstr("x"), &err), SG_OK);
	assert_int_equal(sg_memtable_add(&mt, 2, SG_TYPE_PUT, sg_slice_from_cstr("rowa"), sg_slice_from_cstr("y"), &err), SG_OK);

	for (uint64_t s = 0; s <= 20; s++)
	{
		sg_memtable_result r = sg_memtable_get(&mt, k, s, &v, &seq);

		if (s < 1)
			assert_int_equal(r, SG_MEMTABLE_NOT_FOUND);
		else if (s < 5)
		{
			assert_int_equal(r, SG_MEMTABLE_FOUND);
			assert_true(sg_slice_equal(v, sg_slice_from_cstr("a")));
			assert_int_equal(seq, 1);
		}
		else if (s < 8)
		{
			assert_int_equal(r, SG_MEMTABLE_FOUND);
			assert_true(sg_slice_equal(v, sg_slice_from_cstr("b")));
			assert_int_equal(seq, 5);
		}
		else if (s < 12)
		{
			/* the tombstone hides "a" and "b" */
			assert_int_equal(r, SG_MEMTABLE_DELETED);
			assert_int_equal(seq, 8);
		}
		else
		{
			assert_int_equal(r, SG_MEMTABLE_FOUND);
			assert_true(sg_slice_equal(v, sg_slice_from_cstr("c")));
		}
	}
	/* a snapshot beyond 56 bits behaves like "everything" */
	assert_int_equal(sg_memtable_get(&mt, k, UINT64_MAX, &v, &seq), SG_MEMTABLE_FOUND);
	assert_int_equal(seq, 12);
	/* prefixes and extensions of the key are other keys */
	assert_int_equal(sg_memtable_get(&mt, sg_slice_from_cstr("r"), 100, &v, &seq),
					 SG_MEMTABLE_NOT_FOUND);
	assert_int_equal(sg_memtable_get(&mt, sg_slice_from_cstr("ro"), 2, &v, &seq),
					 SG_MEMTABLE_NOT_FOUND);
	assert_int_equal(sg_memtable_get(&mt, sg_slice_from_cstr("ro"), 3, &v, &seq),
					 SG_MEMTABLE_FOUND);

	/* every version, newest first; the tombstone carries no value */
	version_log log = {0};

	assert_int_equal(sg_memtable_versions(&mt, k, SG_MAX_SEQUENCE, log_version, &log), 4);
	assert_int_equal(log.seqs[0], 12);
	assert_int_equal(log.seqs[1], 8);
	assert_int_equal(log.types[1], SG_TYPE_DELETE);
	assert_string_equal(log.values[1], "");
	assert_int_equal(log.seqs[2], 5);
	assert_string_equal(log.values[2], "b");
	assert_int_equal(log.seqs[3], 1);
	/* bounded by max_seq, and stopped early by the visitor */
	memset(&log, 0, sizeof(log));
	log.stop_after = 1;
	assert_int_equal(sg_memtable_versions(&mt, k, 7, log_version, &log), 1);
	assert_int_equal(log.seqs[0], 5);
	memset(&log, 0, sizeof(log));
	assert_int_equal(sg_memtable_versions(&mt, sg_slice_from_cstr("zzz"), 100, log_version, &log), 0);

	uint64_t	lo;
	uint64_t	hi;

	assert_true(sg_memtable_seq_range(&mt, &lo, &hi));
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 12);
	assert_int_equal(sg_memtable_entries(&mt), 6);
	free(region);
}

/*
 * The key filter: none until planned and SG_MEMTABLE_FILTER_AFTER entries
 * are held; then built from every entry already there, kept up by every
 * add, and never hiding a key, whichever side of the build it was added
 * on; and most absent keys ruled out without a search.
 */
static bool
count_version(void *ctx, uint64_t seq, sg_value_type type, sg_slice value)
{
	(void) ctx;
	(void) seq;
	(void) type;
	(void) value;
	return true;
}

static void
filter_key(char *key, uint32_t i)
{
	snprintf(key, 32, "key-%08u", i);
}

static void
test_key_filter(void **state)
{
	sg_memtable plain;
	sg_memtable mt;
	char	   *plain_region = region_memtable(&plain, 4 << 20);
	char	   *region = region_memtable(&mt, 4 << 20);
	char		key[32];
	sg_err		err;
	int			ruled_out = 0;

	(void) state;
	sg_memtable_plan_filter(&mt, 4 << 20);
	for (uint32_t i = 0; i < 6000; i++)
	{
		/* every third key twice (two versions), the even numbers only */
		uint64_t	seq = 2 * (uint64_t) i + 1;

		filter_key(key, 2 * (i % 3000));
		assert_int_equal(sg_memtable_add(&plain, seq, SG_TYPE_PUT, sg_slice_from_cstr(key),
										 sg_slice_from_cstr("value"), &err), SG_OK);
		assert_int_equal(sg_memtable_add(&mt, seq, i % 7 == 0 ? SG_TYPE_DELETE : SG_TYPE_PUT,
										 sg_slice_from_cstr(key), sg_slice_from_cstr("value"),
										 &err), SG_OK);
		if (i + 1 < SG_MEMTABLE_FILTER_AFTER)
			assert_int_equal(sg_memtable_filter_bytes(&mt), 0);
		else
			assert_true(sg_memtable_filter_bytes(&mt) > 0);
	}
	assert_int_equal(sg_memtable_filter_bytes(&plain), 0);

	for (uint32_t i = 0; i < 6000; i++)
	{
		sg_slice	v;
		uint64_t	seq;

		filter_key(key, i);
		if (i % 2 == 0)
		{
			/* held: found, both versions, by get and by versions */
			assert_true(sg_memtable_may_contain(&mt, sg_slice_from_cstr(key)));
			assert_int_not_equal(sg_memtable_get(&mt, sg_slice_from_cstr(key), SG_MAX_SEQUENCE,
												 &v, &seq), SG_MEMTABLE_NOT_FOUND);
			assert_int_equal(sg_memtable_versions(&mt, sg_slice_from_cstr(key), SG_MAX_SEQUENCE,
												  count_version, NULL), 2);
		}
		else
		{
			ruled_out += !sg_memtable_may_contain(&mt, sg_slice_from_cstr(key));
			assert_int_equal(sg_memtable_get(&mt, sg_slice_from_cstr(key), SG_MAX_SEQUENCE,
											 &v, &seq), SG_MEMTABLE_NOT_FOUND);
			assert_int_equal(sg_memtable_versions(&mt, sg_slice_from_cstr(key), SG_MAX_SEQUENCE,
												  count_version, NULL), 0);
		}
	}
	/* 3000 absent keys; a planned 10 bits a key: about 1% false positives */
	printf("memtable key filter: %d of 3000 absent keys ruled out, %llu bytes\n",
		   ruled_out, (unsigned long long) sg_memtable_filter_bytes(&mt));
	assert_true(ruled_out >= 2900);
	/* never more than 1/64 of the planned memory (and its 8-byte header) */
	assert_true(sg_memtable_filter_bytes(&mt) <= (4 << 20) / 64 + 8);

	free(plain_region);
	free(region);
}

/*
 * A filter the arena has no room for is not built, nor one whose 1/64 of
 * the plan is too small to rule much out; adds go on without it.
 */
static void
test_key_filter_no_room(void **state)
{
	uint64_t	plans[] = {UINT64_C(1) << 40, 16 << 10};

	(void) state;
	for (int p = 0; p < 2; p++)
	{
		sg_memtable mt;
		char	   *region = region_memtable(&mt, 1 << 20);
		char		key[32];
		sg_err		err;

		sg_memtable_plan_filter(&mt, plans[p]);
		for (uint32_t i = 0; i < 2 * SG_MEMTABLE_FILTER_AFTER; i++)
		{
			filter_key(key, i);
			assert_int_equal(sg_memtable_add(&mt, i + 1, SG_TYPE_PUT, sg_slice_from_cstr(key),
											 sg_slice_from_cstr("v"), &err), SG_OK);
		}
		assert_int_equal(sg_memtable_filter_bytes(&mt), 0);
		filter_key(key, 77);
		assert_true(sg_memtable_may_contain(&mt, sg_slice_from_cstr(key)));
		assert_int_equal(sg_memtable_versions(&mt, sg_slice_from_cstr(key), SG_MAX_SEQUENCE,
											  count_version, NULL), 1);
		free(region);
	}
}

static void
test_add_errors_and_state(void **state)
{
	sg_memtable mt;
	char	   *region = region_memtable(&mt, 1 << 16);
	sg_slice	v;
	uint64_t	seq;
	sg_err		err;

	(void) state;
	/* empty user key and empty value are legal */
	assert_int_equal(sg_memtable_add(&mt, 1, SG_TYPE_PUT, sg_slice_make("", 0),
									 sg_slice_make("", 0), &err), SG_OK);
	assert_int_equal(sg_memtable_get(&mt, sg_slice_make("", 0), 1, &v, &seq), SG_MEMTABLE_FOUND);
	assert_int_equal(v.len, 0);

	/* duplicates, bad seq, bad type: refused, nothing changes */
	uint64_t	used = sg_arena_used(&mt.arena);

	assert_int_equal(sg_memtable_add(&mt, 1, SG_TYPE_PUT, sg_slice_make("", 0),
									 sg_slice_from_cstr("other"), &err), SG_INVALID_ARGUMENT);
	assert_int_equal(sg_memtable_add(&mt, SG_MAX_SEQUENCE + 1, SG_TYPE_PUT,
									 sg_slice_from_cstr("k"), sg_slice_from_cstr("v"), &err),
					 SG_INVALID_ARGUMENT);
	assert_int_equal(sg_memtable_add(&mt, 2, (sg_value_type) 7, sg_slice_from_cstr("k"),
									 sg_slice_from_cstr("v"), &err), SG_INVALID_ARGUMENT);
	assert_int_equal(sg_memtable_entries(&mt), 1);
	assert_int_equal(sg_arena_used(&mt.arena), used);
	/* the same user key at another seq is a new version */
	assert_int_equal(sg_memtable_add(&mt, 2, SG_TYPE_DELETE, sg_slice_make("", 0),
									 sg_slice_make("", 0), &err), SG_OK);
	assert_int_equal(sg_memtable_add(&mt, SG_MAX_SEQUENCE, SG_TYPE_PUT, sg_slice_from_cstr("k"),
									 sg_slice_from_cstr("v"), &err), SG_OK);

	/* frozen: writes refused, reads still work */
	assert_false(sg_memtable_is_immutable(&mt));
	sg_memtable_freeze(&mt);
	assert_true(sg_memtable_is_immutable(&mt));
	assert_int_equal(sg_memtable_add(&mt, 9, SG_TYPE_PUT, sg_slice_from_cstr("k"),
									 sg_slice_from_cstr("v"), &err), SG_INVALID_ARGUMENT);
	assert_int_equal(sg_memtable_get(&mt, sg_slice_from_cstr("k"), SG_MAX_SEQUENCE, &v, &seq),
					 SG_MEMTABLE_FOUND);
	assert_int_equal(sg_memtable_entries(&mt), 3);

	/* reference count: creator holds one; last unref says so; no wrap */
	assert_int_equal(sg_memtable_refs(&mt), 1);
	sg_memtable_ref(&mt);
	sg_memtable_ref(&mt);
	assert_int_equal(sg_memtable_refs(&mt), 3);
	assert_false(sg_memtable_unref(&mt));
	assert_false(sg_memtable_unref(&mt));
	sg_memtable other;
	sg_off		off = sg_memtable_offset(&mt);

	/* attach checks the generation: a reference to another memtable fails */
	assert_int_equal(sg_memtable_generation(&mt), 1);
	assert_int_equal(sg_memtable_attach(&other, region, off, 1, NULL, NULL, &err), SG_OK);
	assert_int_equal(sg_memtable_attach(&other, region, off, 2, NULL, NULL, &err), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "stale reference"));

	assert_true(sg_memtable_unref(&mt));
	assert_false(sg_memtable_unref(&mt));
	assert_int_equal(sg_memtable_refs(&mt), 0);

	/* the last unref marks it dead: even its own generation is refused */
	assert_int_equal(sg_memtable_attach(&other, region, off, 1, NULL, NULL, &err), SG_CORRUPTION);
	assert_non_null(strstr(err.msg, "released memtable"));

	/* attach where there is no memtable */
	assert_int_equal(sg_memtable_attach(&other, region, 1024, 1, NULL, NULL, &err), SG_CORRUPTION);
	assert_int_equal(sg_memtable_attach(&other, region, 0, 1, NULL, NULL, &err), SG_INVALID_ARGUMENT);
	free(region);
}

/*
 * Insert orders that exercise the skiplist's insert splice (the shortcut
 * for a key just after the last inserted one): ascending runs with gaps
 * that later runs fill, descending runs, random keys, repeated user keys
 * with shuffled sequence numbers, and duplicates of the last inserted key
 * and of its successor, which must still be refused. The list must equal a
 * sorted reference afterwards.
 */
static void
test_insert_orders(void **state)
{
	sg_test_rng rng = {0xfeed};
	sg_memtable mt;
	size_t		n = 30000;
	char	   *region = region_memtable(&mt, 16 << 20);
	ref_entry  *ref = calloc(n, sizeof(ref_entry));
	uint64_t   *seqs = malloc(n * sizeof(uint64_t));
	uint64_t	id = 0;
	char		key[8];
	sg_err		err;

	(void) state;
	assert_non_null(ref);
	assert_non_null(seqs);
	for (size_t i = 0; i < n; i++)
		seqs[i] = i + 1;
	for (size_t i = n; i > 1; i--)
	{
		size_t		j = sg_test_uniform(&rng, i);
		uint64_t	t = seqs[i - 1];

		seqs[i - 1] = seqs[j];
		seqs[j] = t;
	}

	/* C, then A < C: C is the successor of the last insert; both refused again */
	sg_memtable small;
	char	   *small_region = region_memtable(&small, 1 << 16);
	const uint64_t order[4] = {500, 100, 500, 100};

	for (int i = 0; i < 4; i++)
	{
		sg_encode_be64(key, order[i]);
		assert_int_equal(sg_memtable_add(&small, 7, SG_TYPE_PUT, sg_slice_make(key, 8),
										 sg_slice_make("", 0), &err),
						 i < 2 ? SG_OK : SG_INVALID_ARGUMENT);
	}
	assert_int_equal(sg_memtable_entries(&small), 2);
	free(small_region);

	for (size_t i = 0; i < n; i++)
	{
		uint64_t	pattern = (i / 100) % 4;

		if (i % 100 == 0)
			id = sg_test_uniform(&rng, 20000);
		if (pattern == 0)
			id += 1 + sg_test_uniform(&rng, 3); /* ascending, with gaps */
		else if (pattern == 1)
			id = id > 3 ? id - 1 - sg_test_uniform(&rng, 3) : 50000;	/* descending */
		else if (pattern == 2)
			id = sg_test_uniform(&rng, 40000);	/* random */
		else if (sg_test_uniform(&rng, 4) == 0)
			id++;				/* mostly the same user key again */

		sg_value_type type = sg_test_uniform(&rng, 8) == 0 ? SG_TYPE_DELETE : SG_TYPE_PUT;

		sg_encode_be64(key, id);
		sg_buf_init(&ref[i].ikey);
		sg_buf_init(&ref[i].value);
		sg_ikey_append(&ref[i].ikey, sg_slice_make(key, 8), seqs[i], type);
		if (type == SG_TYPE_PUT)
		{
			size_t		vlen = sg_test_uniform(&rng, 20);

			for (size_t j = 0; j < vlen; j++)
				sg_buf_append_byte(&ref[i].value, (uint8_t) sg_test_rand(&rng));
		}
		assert_false(sg_buf_failed(&ref[i].ikey) || sg_buf_failed(&ref[i].value));
		assert_int_equal(sg_memtable_add(&mt, seqs[i], type, sg_slice_make(key, 8),
										 sg_buf_slice(&ref[i].value), &err), SG_OK);

		/* now and then, re-add the last key or an earlier one: refused */
		if (sg_test_uniform(&rng, 50) == 0)
		{
			size_t		k = sg_test_uniform(&rng, 2) ? i : sg_test_uniform(&rng, i + 1);
			sg_parsed_ikey pk = {{NULL, 0}, 0, SG_TYPE_DELETE};

			assert_true(sg_ikey_parse(sg_buf_slice(&ref[k].ikey), &pk));
			assert_int_equal(sg_memtable_add(&mt, pk.seq, pk.type, pk.user_key,
											 sg_slice_make("dup", 3), &err),
							 SG_INVALID_ARGUMENT);
		}
	}
	qsort(ref, n, sizeof(ref_entry), ref_cmp);
	check_iteration(&mt, ref, n);
	check_gets(&mt, ref, n, &rng, 5000, n);
	ref_free(ref, n);
	free(seqs);
	free(region);
}

/* ------------------------------------------------------------------ */
/* exhaustion and chunked growth                                       */
/* ------------------------------------------------------------------ */

/* Fill until SG_NO_MEMORY; check everything added before is intact. */
static void
fill_until_full(sg_memtable *mt, size_t *added)
{
	char		key[32];
	char		val[200];
	sg_err		err;
	sg_code		rc;
	size_t		n = 0;

	memset(val, 'v', sizeof(val));
	for (;;)
	{
		snprintf(key, sizeof(key), "key%08zu", (n * 7919) % 1000003);

		uint64_t	used = sg_arena_used(&mt->arena);
		uint64_t	reserved = sg_arena_reserved(&mt->arena);

		rc = sg_memtable_add(mt, n + 1, SG_TYPE_PUT, sg_slice_from_cstr(key),
							 sg_slice_make(val, 50 + n % 150), &err);
		if (rc != SG_OK)
		{
			assert_int_equal(rc, SG_NO_MEMORY);
			assert_int_equal(sg_arena_used(&mt->arena), used);
			assert_int_equal(sg_arena_reserved(&mt->arena), reserved);
			break;
		}
		n++;
	}
	assert_true(n > 10);
	assert_int_equal(sg_memtable_entries(mt), n);

	/* the refused key is absent; every earlier one is whole */
	sg_slice	v;
	uint64_t	seq;

	assert_int_equal(sg_memtable_get(mt, sg_slice_from_cstr(key), SG_MAX_SEQUENCE, &v, &seq),
					 SG_MEMTABLE_NOT_FOUND);
	for (size_t i = 0; i < n; i++)
	{
		snprintf(key, sizeof(key), "key%08zu", (i * 7919) % 1000003);
		assert_int_equal(sg_memtable_get(mt, sg_slice_from_cstr(key), SG_MAX_SEQUENCE, &v, &seq),
						 SG_MEMTABLE_FOUND);
		assert_int_equal(seq, i + 1);
		assert_int_equal(v.len, 50 + i % 150);
		assert_true(memcmp(v.data, val, v.len) == 0);
	}

	/* iteration is complete and ordered */
	sg_iter    *it = sg_memtable_iter(mt);
	size_t		count = 0;
	sg_buf		prev = SG_BUF_INIT;

	for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it), count++)
	{
		if (count > 0)
			assert_true(sg_ikey_compare(sg_buf_slice(&prev), sg_iter_key(it)) < 0);
		sg_buf_reset(&prev);
		sg_buf_append_slice(&prev, sg_iter_key(it));
	}
	assert_int_equal(count, n);
	sg_buf_free(&prev);
	sg_iter_destroy(it);
	*added = n;
}

static void
test_exhaustion_region(void **state)
{
	sg_memtable mt;
	char	   *region = region_memtable(&mt, 64 << 10);
	size_t		n;
	sg_err		err;

	(void) state;
	fill_until_full(&mt, &n);
	/* the memtable keeps working: a tiny entry may still fit, reads work */
	sg_code		rc = sg_memtable_add(&mt, 5000000, SG_TYPE_DELETE,
									 sg_slice_from_cstr("k"), sg_slice_make(NULL, 0), &err);

	assert_true(rc == SG_OK || rc == SG_NO_MEMORY);
	assert_int_equal(sg_memtable_entries(&mt), n + (rc == SG_OK));
	assert_true(sg_arena_used(&mt.arena) <= 64 << 10);

	/* too small a region for even the headers: clean failure */
	sg_arena	a;
	char	   *tiny = aligned_alloc(64, 256);

	assert_int_equal(sg_arena_create(&a, tiny, 0, 256, NULL, NULL, &err), SG_OK);
	assert_int_equal(sg_memtable_create(&mt, &a, 1, &err), SG_NO_MEMORY);
	free(tiny);
	free(region);
}

static void
test_chunked_memtable(void **state)
{
	size_t		size = 4 << 20;
	char	   *area = aligned_alloc(64, size);
	chunk_pool	pool;
	sg_arena	a;
	sg_memtable mt;
	sg_err		err;
	size_t		n;

	(void) state;
	pool_init(&pool, 128, size, 8192, 64);
	assert_int_equal(sg_arena_create(&a, area, 0, 0, pool_chunk, &pool, &err), SG_OK);
	assert_int_equal(sg_memtable_create(&mt, &a, 1, &err), SG_OK);
	fill_until_full(&mt, &n);
	assert_int_equal(pool.given, 64);
	assert_int_equal(sg_memtable_memory_usage(&mt), (uint64_t) pool.given * 8192);
	assert_true(sg_arena_used(&mt.arena) <= sg_memtable_memory_usage(&mt));
	/* most of what was reserved is in use (chunk tails are small) */
	assert_true(sg_arena_used(&mt.arena) > sg_memtable_memory_usage(&mt) * 9 / 10);

	/* dropping the last reference hands every chunk back */
	assert_true(sg_memtable_unref(&mt));
	sg_arena_release(&mt.arena, pool_release, &pool);
	assert_int_equal(pool.released, 64);
	free(area);
}

/* ------------------------------------------------------------------ */
/* relocation                                                          */
/* ------------------------------------------------------------------ */

/*
 * Two trees' memtables share one "global" area, chunks interleaved. The
 * area is copied to another address and the original destroyed: both
 * memtables must read back whole through the new base, and accept writes.
 */
static void
test_relocation(void **state)
{
	size_t		size = 16 << 20;
	char	   *area = aligned_alloc(64, size);
	char	   *moved = aligned_alloc(4096, size);
	chunk_pool	pool;
	sg_arena	a1;
	sg_arena	a2;
	sg_memtable m1;
	sg_memtable m2;
	sg_test_rng rng = {99};
	sg_err		err;
	size_t		n = 16000;

	(void) state;
	assert_non_null(area);
	assert_non_null(moved);
	pool_init(&pool, 4096, size, 16384, 100000);
	assert_int_equal(sg_arena_create(&a1, area, 0, 0, pool_chunk, &pool, &err), SG_OK);
	assert_int_equal(sg_memtable_create(&m1, &a1, 1, &err), SG_OK);
	assert_int_equal(sg_arena_create(&a2, area, 0, 0, pool_chunk, &pool, &err), SG_OK);
	assert_int_equal(sg_memtable_create(&m2, &a2, 2, &err), SG_OK);

	/* two rounds per tree, so that the trees' chunks interleave */
	ref_entry  *r1 = fill_random(&m1, &rng, n / 4, 300, 1);
	ref_entry  *r2 = fill_random(&m2, &rng, n / 4, 300, 1);

	r1 = ref_concat(r1, n / 4, fill_random(&m1, &rng, n / 4, 300, n / 4 + 1), n / 4);
	r2 = ref_concat(r2, n / 4, fill_random(&m2, &rng, n / 4, 300, n / 4 + 1), n / 4);
	assert_true(pool.given > 20);

	check_iteration(&m1, r1, n / 2);
	check_iteration(&m2, r2, n / 2);
	sg_memtable_ref(&m1);
	sg_memtable_freeze(&m2);

	sg_off		off1 = sg_memtable_offset(&m1);
	sg_off		off2 = sg_memtable_offset(&m2);

	memcpy(moved, area, size);
	memset(area, 0xa5, size);
	free(area);

	/* a "second process": only the base and the two offsets */
	sg_memtable n1;
	sg_memtable n2;

	assert_int_equal(sg_memtable_attach(&n1, moved, off1, 1, pool_chunk, &pool, &err), SG_OK);
	assert_int_equal(sg_memtable_attach(&n2, moved, off2, 2, NULL, NULL, &err), SG_OK);
	check_iteration(&n1, r1, n / 2);
	check_iteration(&n2, r2, n / 2);
	check_gets(&n1, r1, n / 2, &rng, 5000, n / 2);
	check_gets(&n2, r2, n / 2, &rng, 5000, n / 2);
	assert_int_equal(sg_memtable_refs(&n1), 2);
	assert_false(sg_memtable_is_immutable(&n1));
	assert_true(sg_memtable_is_immutable(&n2));

	uint64_t	lo;
	uint64_t	hi;

	assert_true(sg_memtable_seq_range(&n2, &lo, &hi));
	assert_int_equal(lo, 1);
	assert_int_equal(hi, n / 2);

	/* the new process writes (growing through the provider) and reads back */
	for (uint64_t i = 0; i < 2000; i++)
	{
		char		key[32];

		snprintf(key, sizeof(key), "moved-%05llu", (unsigned long long) i);
		assert_int_equal(sg_memtable_add(&n1, 100000 + i, SG_TYPE_PUT, sg_slice_from_cstr(key),
										 sg_slice_from_cstr(key), &err), SG_OK);
	}
	assert_int_equal(sg_memtable_entries(&n1), n / 2 + 2000);

	sg_slice	v;
	uint64_t	seq;

	assert_int_equal(sg_memtable_get(&n1, sg_slice_from_cstr("moved-01234"), SG_MAX_SEQUENCE,
									 &v, &seq), SG_MEMTABLE_FOUND);
	assert_true(sg_slice_equal(v, sg_slice_from_cstr("moved-01234")));
	check_gets(&n1, r1, n / 2, &rng, 5000, n / 2);
	/* the untouched tree is unaffected by the other's growth */
	check_iteration(&n2, r2, n / 2);

	ref_free(r1, n / 2);
	ref_free(r2, n / 2);
	free(moved);
}

/* ------------------------------------------------------------------ */
/* concurrency: one writer, three readers through a second mapping      */
/* ------------------------------------------------------------------ */

#define CONC_ENTRIES 60000
#define CONC_KEYS 5000
#define CONC_READERS 3

typedef struct conc_shared
{
	char	   *reader_base;	/* the same memory, mapped elsewhere */
	sg_off		mt_off;
	uint32_t   *key_of;			/* key_of[i]: user key index of entry i (seq i+1) */
	_Atomic uint64_t published;	/* entries [0, published) are in the memtable */
	_Atomic int done;
} conc_shared;

typedef struct conc_reader
{
	conc_shared *sh;
	int			id;
	uint64_t	scans;
	uint64_t	gets;
	uint64_t	seeks;
	uint64_t	failures;
	char		first_failure[200];
} conc_reader;

static void
conc_key(char *buf, uint32_t k)
{
	snprintf(buf, 16, "user%06u", k);
}

/* Value of entry seq: its seq, then the key repeated (length varies). */
static size_t
conc_value(char *buf, uint64_t seq, uint32_t k)
{
	size_t		len = 8 + (seq % 7) * 10;

	sg_encode_fixed64(buf, seq);
	for (size_t i = 8; i < len; i++)
		buf[i] = (char) ('A' + (k + i) % 26);
	return len;
}

/* A fully formed entry: the value matches its key and seq exactly. */
static bool
conc_entry_ok(sg_slice ikey, sg_slice value)
{
	sg_parsed_ikey p;
	char		expect[128];
	unsigned	k;

	if (!sg_ikey_parse(ikey, &p) || p.type != SG_TYPE_PUT || p.user_key.len != 10 ||
		sscanf(p.user_key.data, "user%6u", &k) != 1)
		return false;
	size_t		len = conc_value(expect, p.seq, k);

	return value.len == len && memcmp(value.data, expect, len) == 0;
}

static void
conc_fail(conc_reader *r, const char *what)
{
	if (r->failures++ == 0)
		snprintf(r->first_failure, sizeof(r->first_failure), "reader %d: %s", r->id, what);
}

static void *
conc_reader_main(void *arg)
{
	conc_reader *r = arg;
	conc_shared *sh = r->sh;
	sg_memtable mt;
	sg_test_rng rng = {(uint64_t) r->id * 7777 + 1};
	sg_buf		prev = SG_BUF_INIT;
	sg_buf		target = SG_BUF_INIT;
	char		key[16];
	sg_err		err;

	if (sg_memtable_attach(&mt, sh->reader_base, sh->mt_off, 1, NULL, NULL, &err) != SG_OK)
	{
		conc_fail(r, "attach failed");
		return NULL;
	}
	sg_iter    *it = sg_memtable_iter(&mt);

	while (!atomic_load(&sh->done) || r->scans < 2)
	{
		/* a full scan: strictly ordered, every entry whole, none lost */
		uint64_t	before = atomic_load_explicit(&sh->published, memory_order_acquire);
		uint64_t	count = 0;

		for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it), count++)
		{
			if (!conc_entry_ok(sg_iter_key(it), sg_iter_value(it)))
				conc_fail(r, "malformed entry during scan");
			if (count > 0 && sg_ikey_compare(sg_buf_slice(&prev), sg_iter_key(it)) >= 0)
				conc_fail(r, "scan out of order");
			sg_buf_reset(&prev);
			sg_buf_append_slice(&prev, sg_iter_key(it));
		}
		if (count < before)
			conc_fail(r, "scan missed published entries");
		r->scans++;

		/* point reads of published entries at their own seq */
		for (int q = 0; q < 200; q++)
		{
			uint64_t	pub = atomic_load_explicit(&sh->published, memory_order_acquire);

			if (pub == 0)
				break;

			uint64_t	i = sg_test_uniform(&rng, pub);
			sg_slice	v;
			uint64_t	seq = 0;

			conc_key(key, sh->key_of[i]);
			if (sg_memtable_get(&mt, sg_slice_from_cstr(key), i + 1, &v, &seq) != SG_MEMTABLE_FOUND ||
				seq != i + 1)
				conc_fail(r, "published entry not found at its seq");
			else
			{
				char		expect[128];
				size_t		len = conc_value(expect, i + 1, sh->key_of[i]);

				if (v.len != len || memcmp(v.data, expect, len) != 0)
					conc_fail(r, "get returned a wrong value");
			}
			r->gets++;
		}

		/* seeks into the middle, a short walk that stays ordered */
		for (int q = 0; q < 50; q++)
		{
			conc_key(key, (uint32_t) sg_test_uniform(&rng, CONC_KEYS));
			sg_buf_reset(&target);
			sg_ikey_append(&target, sg_slice_from_cstr(key), SG_MAX_SEQUENCE, SG_TYPE_FOR_SEEK);
			sg_iter_seek(it, sg_buf_slice(&target));
			for (int s = 0; s < 10 && sg_iter_valid(it); s++, sg_iter_next(it))
			{
				sg_slice	k = sg_iter_key(it);

				if (!conc_entry_ok(k, sg_iter_value(it)))
					conc_fail(r, "malformed entry after seek");
				if (s == 0 && sg_slice_compare(sg_ikey_user_key(k), sg_slice_from_cstr(key)) < 0)
					conc_fail(r, "seek landed before its target");
				if (s > 0 && sg_ikey_compare(sg_buf_slice(&prev), k) >= 0)
					conc_fail(r, "walk after seek out of order");
				sg_buf_reset(&prev);
				sg_buf_append_slice(&prev, k);
			}
			r->seeks++;
		}
	}
	sg_iter_destroy(it);
	sg_buf_free(&prev);
	sg_buf_free(&target);
	return NULL;
}

/*
 * second_mapping: the readers see the memory at another address, as
 * another process would. Without it all threads share one mapping, which
 * is what lets ThreadSanitizer pair the writer's stores with the readers'
 * loads (it tracks addresses, not physical memory).
 */
static void
run_concurrency(bool second_mapping)
{
	size_t		size = 32 << 20;
	int			fd = memfd_create("sg-memtable-test", 0);
	char	   *wbase;
	conc_shared sh;
	conc_reader readers[CONC_READERS];
	pthread_t	tids[CONC_READERS];
	sg_test_rng rng = {4242};
	sg_arena	a;
	sg_memtable mt;
	sg_err		err;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t) size), 0);
	wbase = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(wbase != MAP_FAILED);
	if (second_mapping)
	{
		sh.reader_base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		assert_true(sh.reader_base != MAP_FAILED);
		assert_true(wbase != sh.reader_base);
	}
	else
		sh.reader_base = wbase;

	assert_int_equal(sg_arena_create(&a, wbase, 0, size, NULL, NULL, &err), SG_OK);
	assert_int_equal(sg_memtable_create(&mt, &a, 1, &err), SG_OK);
	/* the filter is built and kept up while the readers look keys up */
	sg_memtable_plan_filter(&mt, size / 2);
	sh.mt_off = sg_memtable_offset(&mt);
	sh.key_of = malloc(CONC_ENTRIES * sizeof(uint32_t));
	assert_non_null(sh.key_of);
	atomic_init(&sh.published, 0);
	atomic_init(&sh.done, 0);

	for (int i = 0; i < CONC_READERS; i++)
	{
		memset(&readers[i], 0, sizeof(readers[i]));
		readers[i].sh = &sh;
		readers[i].id = i;
		assert_int_equal(pthread_create(&tids[i], NULL, conc_reader_main, &readers[i]), 0);
	}

	/* the single writer, in "its own process" (base wbase) */
	for (uint64_t i = 0; i < CONC_ENTRIES; i++)
	{
		uint32_t	k = (uint32_t) sg_test_uniform(&rng, CONC_KEYS);
		char		key[16];
		char		val[128];
		size_t		vlen = conc_value(val, i + 1, k);

		conc_key(key, k);
		sh.key_of[i] = k;
		assert_int_equal(sg_memtable_add(&mt, i + 1, SG_TYPE_PUT, sg_slice_from_cstr(key),
										 sg_slice_make(val, vlen), &err), SG_OK);
		atomic_store_explicit(&sh.published, i + 1, memory_order_release);
	}
	atomic_store(&sh.done, 1);

	uint64_t	scans = 0;

	for (int i = 0; i < CONC_READERS; i++)
	{
		assert_int_equal(pthread_join(tids[i], NULL), 0);
		if (readers[i].failures != 0)
			fail_msg("%s (%llu failures)", readers[i].first_failure,
					 (unsigned long long) readers[i].failures);
		assert_true(readers[i].scans >= 2);
		assert_true(readers[i].gets > 0);
		scans += readers[i].scans;
	}
	printf("memtable concurrency (%s): %d entries written while %d readers ran %llu scans\n",
		   second_mapping ? "readers through a second mapping" : "one mapping",
		   CONC_ENTRIES, CONC_READERS, (unsigned long long) scans);
	assert_int_equal(sg_memtable_entries(&mt), CONC_ENTRIES);
	assert_true(sg_memtable_filter_bytes(&mt) > 0);

	free(sh.key_of);
	munmap(wbase, size);
	if (second_mapping)
		munmap(sh.reader_base, size);
	close(fd);
}

static void
test_concurrent_readers(void **state)
{
	(void) state;
	run_concurrency(false);
}

static void
test_concurrent_readers_second_mapping(void **state)
{
	(void) state;
	run_concurrency(true);
}

/*
 * A real second process: a forked child maps the memory afresh (at another
 * address than the parent's mapping), attaches by offset, pins, checks what
 * the parent wrote, becomes the writer and adds more; the parent then sees
 * the child's entries and the balanced reference count. The child reports
 * through its exit status (cmocka's asserts do not cross fork).
 */
static int
child_writer(int fd, size_t size, sg_off mt_off, char *parent_base)
{
	char	   *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	sg_memtable mt;
	sg_err		err;
	char		key[32];
	sg_slice	v;
	uint64_t	seq;

	if (base == MAP_FAILED || base == parent_base)
		return 2;
	if (sg_memtable_attach(&mt, base, mt_off, 1, NULL, NULL, &err) != SG_OK)
		return 3;
	sg_memtable_ref(&mt);
	for (int i = 0; i < 1000; i++)
	{
		snprintf(key, sizeof(key), "parent-%04d", i);
		if (sg_memtable_get(&mt, sg_slice_from_cstr(key), SG_MAX_SEQUENCE, &v, &seq) !=
			SG_MEMTABLE_FOUND || !sg_slice_equal(v, sg_slice_from_cstr(key)))
			return 4;
	}
	for (int i = 0; i < 1000; i++)
	{
		snprintf(key, sizeof(key), "child-%04d", i);
		if (sg_memtable_add(&mt, 2000 + i, SG_TYPE_PUT, sg_slice_from_cstr(key),
							sg_slice_from_cstr(key), &err) != SG_OK)
			return 5;
	}
	if (sg_memtable_unref(&mt))
		return 6;
	return 0;
}

static void
test_fork_second_process(void **state)
{
	size_t		size = 4 << 20;
	int			fd = memfd_create("sg-memtable-fork", 0);
	char	   *base;
	sg_arena	a;
	sg_memtable mt;
	sg_err		err;
	char		key[32];
	int			status = -1;

	(void) state;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t) size), 0);
	base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(base != MAP_FAILED);
	assert_int_equal(sg_arena_create(&a, base, 0, size, NULL, NULL, &err), SG_OK);
	assert_int_equal(sg_memtable_create(&mt, &a, 1, &err), SG_OK);
	for (int i = 0; i < 1000; i++)
	{
		snprintf(key, sizeof(key), "parent-%04d", i);
		assert_int_equal(sg_memtable_add(&mt, 1 + i, SG_TYPE_PUT, sg_slice_from_cstr(key),
										 sg_slice_from_cstr(key), &err), SG_OK);
	}
	fflush(stdout);

	pid_t		pid = fork();

	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_writer(fd, size, sg_memtable_offset(&mt), base));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	assert_int_equal(sg_memtable_entries(&mt), 2000);
	assert_int_equal(sg_memtable_refs(&mt), 1);
	for (int i = 0; i < 1000; i++)
	{
		sg_slice	v;
		uint64_t	seq;

		snprintf(key, sizeof(key), "child-%04d", i);
		assert_int_equal(sg_memtable_get(&mt, sg_slice_from_cstr(key), SG_MAX_SEQUENCE, &v, &seq),
						 SG_MEMTABLE_FOUND);
		assert_true(sg_slice_equal(v, sg_slice_from_cstr(key)));
		assert_int_equal(seq, 2000 + i);
	}

	uint64_t	lo;
	uint64_t	hi;

	assert_true(sg_memtable_seq_range(&mt, &lo, &hi));
	assert_int_equal(lo, 1);
	assert_int_equal(hi, 2999);
	munmap(base, size);
	close(fd);
}

/* ------------------------------------------------------------------ */
/* throughput (printed, not asserted)                                   */
/* ------------------------------------------------------------------ */

static void
measure(const char *label, bool sequential, size_t n)
{
	size_t		region_size = n * 200 + (1 << 20);
	sg_memtable mt;
	char	   *region = region_memtable(&mt, region_size);
	sg_test_rng rng = {777};
	char		key[16];
	char		val[100];
	uint64_t   *ids = malloc(n * sizeof(uint64_t));
	sg_err		err;
	double		t0;
	double		t1;
	double		t2;
	size_t		found = 0;

	assert_non_null(ids);
	memset(val, 'x', sizeof(val));
	for (size_t i = 0; i < n; i++)
		ids[i] = sequential ? i : sg_test_rand(&rng);

	t0 = now_sec();
	for (size_t i = 0; i < n; i++)
	{
		/* 16-byte keys: big-endian id (memcmp order = numeric) twice */
		sg_encode_be64(key, ids[i]);
		sg_encode_be64(key + 8, ids[i] ^ UINT64_C(0x5555));
		assert_int_equal(sg_memtable_add(&mt, i + 1, SG_TYPE_PUT, sg_slice_make(key, 16),
										 sg_slice_make(val, 100), &err), SG_OK);
	}
	t1 = now_sec();
	for (size_t i = 0; i < n; i++)
	{
		size_t		j = sg_test_uniform(&rng, n);
		sg_slice	v;
		uint64_t	seq;

		sg_encode_be64(key, ids[j]);
		sg_encode_be64(key + 8, ids[j] ^ UINT64_C(0x5555));
		found += sg_memtable_get(&mt, sg_slice_make(key, 16), SG_MAX_SEQUENCE, &v, &seq) ==
			SG_MEMTABLE_FOUND;
	}
	t2 = now_sec();
	assert_int_equal(found, n);
	printf("memtable %s: %zu x (16-byte key, 100-byte value): %.0f inserts/s, %.0f gets/s, "
		   "%.1f MB arena used (%.0f bytes/entry)\n",
		   label, n, n / (t1 - t0), n / (t2 - t1),
		   sg_arena_used(&mt.arena) / 1048576.0,
		   (double) sg_arena_used(&mt.arena) / (double) n);
	free(ids);
	free(region);
}

static void
test_throughput(void **state)
{
	/* sanitizer builds are 10x slower: measure less, the figure is moot */
#ifdef SG_DEBUG
	size_t		n = 100000;
#else
	size_t		n = 1000000;
#endif

	(void) state;
	measure("random keys", false, n);
	measure("ascending keys", true, n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arena_region),
		cmocka_unit_test(test_arena_chunks),
		cmocka_unit_test(test_arena_bad_provider),
		cmocka_unit_test(test_iterate_and_seek_match_reference),
		cmocka_unit_test(test_get_snapshots),
		cmocka_unit_test(test_key_filter),
		cmocka_unit_test(test_key_filter_no_room),
		cmocka_unit_test(test_add_errors_and_state),
		cmocka_unit_test(test_insert_orders),
		cmocka_unit_test(test_exhaustion_region),
		cmocka_unit_test(test_chunked_memtable),
		cmocka_unit_test(test_relocation),
		cmocka_unit_test(test_concurrent_readers),
		cmocka_unit_test(test_concurrent_readers_second_mapping),
		cmocka_unit_test(test_fork_second_process),
		cmocka_unit_test(test_throughput),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
