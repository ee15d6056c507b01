/*
 * engine_bench.c — single-threaded microbenchmark of a key-value store that
 * mirrors RocksDB's db_bench, so that bench/engine/run.sh can put the
 * engine, LevelDB and RocksDB side by side. Built twice from this file:
 * against the standalone engine (db/db.h) as engine_bench, and with
 * -DBENCH_LEVELDB against Debian's libleveldb as leveldb_bench; only the
 * small "store" layer below differs, so both run the same loops over the
 * same keys and values.
 *
 * Workloads (db_bench semantics, run in the order given):
 *  - fillseq:    fresh DB, keys 0..num-1 in order;
 *  - fillrandom: fresh DB, num keys drawn uniformly WITH repetition from
 *                [0, num), so only ~63% distinct keys end up in the DB;
 *  - readrandom: num gets of keys drawn uniformly from [0, num) against the
 *                DB fillrandom left; reports how many were found;
 *  - readseq:    one pass over every entry in key order;
 *  - seekrandom: num seeks to keys drawn uniformly from [0, num); reports
 *                how many landed on the key sought;
 *  - overwrite:  num puts of random keys over that same DB.
 *
 * Keys are db_bench's: the integer as 8 big-endian bytes, padded with '0'
 * characters to key_size. Values are db_bench's too: a 1 MiB pool made of
 * 100-byte pieces, each a run of value_size/2 random printable bytes
 * repeated (compresses to ~50%), values cut from it at a sliding offset.
 * Each benchmark draws from its own random stream (db_bench gives every
 * benchmark's thread a different seed), so readrandom does not replay
 * fillrandom's keys.
 *
 * Output: one line per benchmark in db_bench's format
 *   "fillseq : X micros/op Y ops/sec Z seconds N operations; W MB/s"
 * (readrandom and seekrandom add "(F of N found)"), so run.sh parses every
 * tool alike. MB/s counts key + value bytes per write and per found read,
 * as db_bench.
 *
 * Thread safety: single-threaded program (the stores run their own flush
 * and compaction threads).
 */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#ifdef BENCH_LEVELDB
#include <leveldb/c.h>
#else
#include "engine/db/db.h"
#endif

#define VALUE_POOL_BYTES (1 << 20)

/* The LSM shape options, named as db_bench names them. */
typedef struct store_options
{
	uint64_t	write_buffer_size;
	int			max_immutables;
	uint64_t	target_file_size;
	uint64_t	max_bytes_for_level_base;
	int			level0_trigger;
	uint64_t	block_size;
	int			bloom_bits;
	const char *compression;
	bool		sync;
} store_options;

typedef struct bench_cfg
{
	const char *dir;
	const char *benchmarks;
	uint64_t	num;
	int			key_size;
	int			value_size;
	uint64_t	seed;
	store_options opts;
} bench_cfg;

typedef struct bench_slice
{
	const char *data;
	size_t		len;
} bench_slice;

/* xorshift64*: fast, reproducible; quality is ample for picking keys. */
typedef struct bench_rng
{
	uint64_t	s;
} bench_rng;

static uint64_t
rng_next(bench_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * UINT64_C(2685821657736338717);
}

static void
rng_seed(bench_rng *r, uint64_t seed)
{
	/* splitmix64 step so that nearby seeds give unrelated streams */
	uint64_t	z = seed + UINT64_C(0x9e3779b97f4a7c15);

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	r->s = (z ^ (z >> 31)) | 1;
}

/* db_bench's value source: compressible pieces, cut at a sliding offset. */
typedef struct value_gen
{
	char	   *pool;
	size_t		pos;
} value_gen;

static bool
value_gen_init(value_gen *g, int value_size, uint64_t seed)
{
	bench_rng	r;
	size_t		piece = value_size > 100 ? (size_t) value_size : 100;
	size_t		raw = piece / 2;

	if ((g->pool = malloc(VALUE_POOL_BYTES + piece)) == NULL)
		return false;
	g->pos = 0;
	rng_seed(&r, seed ^ UINT64_C(0x76616c7565));
	for (size_t off = 0; off < VALUE_POOL_BYTES; off += piece)
	{
		char	   *p = g->pool + off;

		for (size_t i = 0; i < raw; i++)
			p[i] = (char) (' ' + rng_next(&r) % 95);
		for (size_t i = raw; i < piece; i++)
			p[i] = p[i % raw];
	}
	return true;
}

static bench_slice
value_gen_next(value_gen *g, int len)
{
	bench_slice v;

	if (g->pos + (size_t) len > VALUE_POOL_BYTES)
		g->pos = 0;
	g->pos += (size_t) len;
	v.data = g->pool + g->pos - (size_t) len;
	v.len = (size_t) len;
	return v;
}

/* db_bench's GenerateKeyFromInt without key prefixes. */
static void
make_key(char *buf, int key_size, uint64_t v)
{
	int			n = key_size < 8 ? key_size : 8;

	for (int i = 0; i < n; i++)
		buf[i] = (char) (v >> ((n - i - 1) * 8));
	if (key_size > n)
		memset(buf + n, '0', (size_t) (key_size - n));
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void) sb;
	(void) flag;
	(void) ftw;
	return remove(path);
}

/* rm -rf dir; a missing dir is fine. */
static void
rmtree(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) == 0)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
die(const char *what, const char *msg)
{
	fprintf(stderr, "engine_bench: %s: %s\n", what, msg != NULL && msg[0] ? msg : "failed");
	exit(1);
}

/* ------------------------------------------------------------------------
 * The store: the only code that differs between the engine and LevelDB.
 * ------------------------------------------------------------------------
 */
#ifdef BENCH_LEVELDB

#define BENCH_NAME "leveldb_bench"

typedef struct store
{
	leveldb_t  *db;
	leveldb_options_t *options;
	leveldb_filterpolicy_t *filter;
	leveldb_cache_t *cache;
	leveldb_readoptions_t *ropts;
	leveldb_writeoptions_t *wopts;
} store;

typedef leveldb_iterator_t store_iter;

static store *
store_open(const bench_cfg *cfg, bool fresh)
{
	store	   *s = calloc(1, sizeof(store));
	char	   *err = NULL;

	if (s == NULL)
		die("open", "out of memory");
	if (fresh)
		rmtree(cfg->dir);
	s->options = leveldb_options_create();
	leveldb_options_set_create_if_missing(s->options, 1);
	leveldb_options_set_write_buffer_size(s->options, (size_t) cfg->opts.write_buffer_size);
	leveldb_options_set_max_file_size(s->options, (size_t) cfg->opts.target_file_size);
	leveldb_options_set_block_size(s->options, (size_t) cfg->opts.block_size);
	/* LevelDB's only compressor is snappy: lz4 and zstd are read as snappy */
	leveldb_options_set_compression(s->options, strcmp(cfg->opts.compression, "none") == 0
									? leveldb_no_compression : leveldb_snappy_compression);
	if (cfg->opts.bloom_bits > 0)
	{
		s->filter = leveldb_filterpolicy_create_bloom(cfg->opts.bloom_bits);
		leveldb_options_set_filter_policy(s->options, s->filter);
	}
	/* the same block cache db_bench is given for RocksDB (run.sh) */
	s->cache = leveldb_cache_create_lru(8 << 20);
	leveldb_options_set_cache(s->options, s->cache);
	s->db = leveldb_open(s->options, cfg->dir, &err);
	if (err != NULL)
		die("open", err);
	s->ropts = leveldb_readoptions_create();
	s->wopts = leveldb_writeoptions_create();
	leveldb_writeoptions_set_sync(s->wopts, cfg->opts.sync);
	return s;
}

static void
store_put(store *s, bench_slice k, bench_slice v)
{
	char	   *err = NULL;

	leveldb_put(s->db, s->wopts, k.data, k.len, v.data, v.len, &err);
	if (err != NULL)
		die("put", err);
}

/* Whether k is there; *vlen its value's length. */
static bool
store_get(store *s, bench_slice k, size_t *vlen)
{
	char	   *err = NULL;
	char	   *v = leveldb_get(s->db, s->ropts, k.data, k.len, vlen, &err);

	if (err != NULL)
		die("get", err);
	leveldb_free(v);
	return v != NULL;
}

static store_iter *
store_iter_new(store *s)
{
	return leveldb_create_iterator(s->db, s->ropts);
}

static void
store_iter_seek_to_first(store_iter *it)
{
	leveldb_iter_seek_to_first(it);
}

static void
store_iter_seek(store_iter *it, bench_slice k)
{
	leveldb_iter_seek(it, k.data, k.len);
}

static bool
store_iter_valid(store_iter *it)
{
	return leveldb_iter_valid(it) != 0;
}

static void
store_iter_next(store_iter *it)
{
	leveldb_iter_next(it);
}

static bench_slice
store_iter_key(store_iter *it)
{
	bench_slice k;

	k.data = leveldb_iter_key(it, &k.len);
	return k;
}

static bench_slice
store_iter_value(store_iter *it)
{
	bench_slice v;

	v.data = leveldb_iter_value(it, &v.len);
	return v;
}

static void
store_iter_destroy(store_iter *it)
{
	char	   *err = NULL;

	leveldb_iter_get_error(it, &err);
	if (err != NULL)
		die("iterate", err);
	leveldb_iter_destroy(it);
}

static void
store_close(store *s, bool print_stats)
{
	if (print_stats)
	{
		char	   *st = leveldb_property_value(s->db, "leveldb.stats");

		if (st != NULL)
			fprintf(stderr, "%s\n", st);
		leveldb_free(st);
	}
	leveldb_close(s->db);
	leveldb_readoptions_destroy(s->ropts);
	leveldb_writeoptions_destroy(s->wopts);
	leveldb_options_destroy(s->options);
	leveldb_cache_destroy(s->cache);
	if (s->filter != NULL)
		leveldb_filterpolicy_destroy(s->filter);
	free(s);
}

#else							/* the engine */

#define BENCH_NAME "engine_bench"

typedef struct store
{
	sg_db	   *db;
	sg_buf		value;
} store;

typedef sg_iter store_iter;

static void
die_err(const char *what, const sg_err *err)
{
	die(what, err != NULL ? err->msg : NULL);
}

static store *
store_open(const bench_cfg *cfg, bool fresh)
{
	store	   *s = calloc(1, sizeof(store));
	sg_db_options o;
	sg_err		err;

	if (s == NULL)
		die("open", "out of memory");
	if (fresh)
		rmtree(cfg->dir);
	sg_db_options_init(&o);
	o.create_if_missing = true;
	o.memtable_size = cfg->opts.write_buffer_size;
	o.max_immutables = cfg->opts.max_immutables;
	o.target_file_size = cfg->opts.target_file_size;
	o.l1_target_bytes = cfg->opts.max_bytes_for_level_base;
	o.l0_trigger = cfg->opts.level0_trigger;
	o.block_size = cfg->opts.block_size;
	o.bloom_bits_per_key = cfg->opts.bloom_bits;
	o.codec = strcmp(cfg->opts.compression, "zstd") == 0 ? SG_CODEC_ZSTD
		: strcmp(cfg->opts.compression, "none") == 0 ? SG_CODEC_NONE : SG_CODEC_LZ4;
	o.wal_sync = cfg->opts.sync ? SG_WAL_SYNC_ALWAYS : SG_WAL_SYNC_OFF;
	sg_err_clear(&err);
	if (sg_db_open(cfg->dir, &o, &s->db, &err) != SG_OK)
		die_err("open", &err);
	sg_buf_init(&s->value);
	return s;
}

static void
store_put(store *s, bench_slice k, bench_slice v)
{
	sg_err		err;

	sg_err_clear(&err);
	if (sg_db_put(s->db, sg_slice_make(k.data, k.len), sg_slice_make(v.data, v.len),
				  &err) != SG_OK)
		die_err("put", &err);
}

static bool
store_get(store *s, bench_slice k, size_t *vlen)
{
	sg_err		err;
	sg_code		rc;

	sg_err_clear(&err);
	rc = sg_db_get(s->db, sg_slice_make(k.data, k.len), NULL, &s->value, &err);
	if (rc != SG_OK && rc != SG_NOT_FOUND)
		die_err("get", &err);
	*vlen = s->value.len;
	return rc == SG_OK;
}

static store_iter *
store_iter_new(store *s)
{
	return sg_db_iter(s->db, NULL);
}

static void
store_iter_seek_to_first(store_iter *it)
{
	sg_iter_seek_to_first(it);
}

static void
store_iter_seek(store_iter *it, bench_slice k)
{
	sg_iter_seek(it, sg_slice_make(k.data, k.len));
}

static bool
store_iter_valid(store_iter *it)
{
	return sg_iter_valid(it);
}

static void
store_iter_next(store_iter *it)
{
	sg_iter_next(it);
}

static bench_slice
store_iter_key(store_iter *it)
{
	sg_slice	k = sg_iter_key(it);
	bench_slice b = {k.data, k.len};

	return b;
}

static bench_slice
store_iter_value(store_iter *it)
{
	sg_slice	v = sg_iter_value(it);
	bench_slice b = {v.data, v.len};

	return b;
}

static void
store_iter_destroy(store_iter *it)
{
	sg_err		err;

	sg_err_clear(&err);
	if (sg_iter_status(it, &err) != SG_OK)
		die_err("iterate", &err);
	sg_iter_destroy(it);
}

static void
store_close(store *s, bool print_stats)
{
	sg_err		err;

	if (print_stats)
	{
		sg_db_stats st;

		sg_db_get_stats(s->db, &st);
		fprintf(stderr, "  stats: flushes %llu compactions %llu moves %llu stalls %llu"
				" compact read %.1f MB written %.1f MB; files per level",
				(unsigned long long) st.flushes, (unsigned long long) st.compactions,
				(unsigned long long) st.trivial_moves,
				(unsigned long long) st.write_stalls,
				st.compaction_bytes_read / 1048576.0,
				st.compaction_bytes_written / 1048576.0);
		for (int l = 0; l < SG_NUM_LEVELS; l++)
			fprintf(stderr, " %llu", (unsigned long long) st.level_files[l]);
		fprintf(stderr, "\n");
	}
	sg_err_clear(&err);
	if (sg_db_close(s->db, &err) != SG_OK)
		die_err("close", &err);
	sg_buf_free(&s->value);
	free(s);
}

#endif							/* BENCH_LEVELDB */

/* ------------------------------------------------------------------------
 * The workloads
 * ------------------------------------------------------------------------
 */
static void
report(const char *name, uint64_t ops, uint64_t bytes, double secs,
	   const char *extra)
{
	printf("%-12s : %11.3f micros/op %ld ops/sec %.3f seconds %llu operations; %5.1f MB/s%s\n",
		   name, secs * 1e6 / (double) ops, (long) ((double) ops / secs), secs,
		   (unsigned long long) ops, (double) bytes / 1048576.0 / secs,
		   extra != NULL ? extra : "");
	fflush(stdout);
}

/* A read benchmark's line: how many of its num operations found their key. */
static void
report_found(const char *name, uint64_t num, uint64_t found, uint64_t bytes, double secs)
{
	char		extra[64];

	snprintf(extra, sizeof(extra), " (%llu of %llu found)",
			 (unsigned long long) found, (unsigned long long) num);
	report(name, num, bytes, secs, extra);
}

static bench_slice
key_of(char *buf, const bench_cfg *cfg, uint64_t v)
{
	bench_slice k = {buf, (size_t) cfg->key_size};

	make_key(buf, cfg->key_size, v);
	return k;
}

/* mode: 0 sequential keys, 1 random keys with repetition */
static void
bench_fill(const bench_cfg *cfg, store *s, const char *name, int mode,
		   uint64_t seed, value_gen *vg)
{
	bench_rng	r;
	char		key[64];
	uint64_t	bytes = 0;

	rng_seed(&r, seed);
	double		t0 = now_seconds();

	for (uint64_t i = 0; i < cfg->num; i++)
	{
		uint64_t	k = mode == 0 ? i : rng_next(&r) % cfg->num;
		bench_slice v = value_gen_next(vg, cfg->value_size);

		store_put(s, key_of(key, cfg, k), v);
		bytes += (uint64_t) cfg->key_size + v.len;
	}
	report(name, cfg->num, bytes, now_seconds() - t0, NULL);
}

static void
bench_readrandom(const bench_cfg *cfg, store *s, uint64_t seed)
{
	bench_rng	r;
	char		key[64];
	uint64_t	found = 0;
	uint64_t	bytes = 0;

	rng_seed(&r, seed);
	double		t0 = now_seconds();

	for (uint64_t i = 0; i < cfg->num; i++)
	{
		size_t		vlen;

		if (store_get(s, key_of(key, cfg, rng_next(&r) % cfg->num), &vlen))
		{
			found++;
			bytes += (uint64_t) cfg->key_size + vlen;
		}
	}
	report_found("readrandom", cfg->num, found, bytes, now_seconds() - t0);
}

/* One pass in key order, reading each key and value as db_bench does. */
static void
bench_readseq(store *s)
{
	store_iter *it = store_iter_new(s);
	uint64_t	n = 0;
	uint64_t	bytes = 0;
	double		t0 = now_seconds();

	for (store_iter_seek_to_first(it); store_iter_valid(it); store_iter_next(it))
	{
		bytes += store_iter_key(it).len + store_iter_value(it).len;
		n++;
	}
	double		secs = now_seconds() - t0;

	store_iter_destroy(it);
	report("readseq", n ? n : 1, bytes, secs, NULL);
}

/* num seeks with one iterator; found: it landed on the key sought. */
static void
bench_seekrandom(const bench_cfg *cfg, store *s, uint64_t seed)
{
	bench_rng	r;
	char		key[64];
	uint64_t	found = 0;
	uint64_t	bytes = 0;
	store_iter *it = store_iter_new(s);

	rng_seed(&r, seed);
	double		t0 = now_seconds();

	for (uint64_t i = 0; i < cfg->num; i++)
	{
		bench_slice k = key_of(key, cfg, rng_next(&r) % cfg->num);

		store_iter_seek(it, k);
		if (store_iter_valid(it))
		{
			bench_slice at = store_iter_key(it);

			if (at.len == k.len && memcmp(at.data, k.data, k.len) == 0)
			{
				found++;
				bytes += at.len + store_iter_value(it).len;
			}
		}
	}
	double		secs = now_seconds() - t0;

	store_iter_destroy(it);
	report_found("seekrandom", cfg->num, found, bytes, secs);
}

static bool
parse_flag(const char *arg, const char *name, const char **val)
{
	size_t		n = strlen(name);

	if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0 || arg[2 + n] != '=')
		return false;
	*val = arg + 3 + n;
	return true;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: " BENCH_NAME " --db=DIR\n"
			"  [--benchmarks=fillseq,fillrandom,readrandom,readseq,seekrandom,overwrite]\n"
			"  [--num=1000000] [--key_size=16] [--value_size=100] [--seed=N]\n"
			"  [--write_buffer_size=BYTES] [--max_immutables=N] [--target_file_size=BYTES]\n"
			"  [--max_bytes_for_level_base=BYTES] [--level0_trigger=N] [--block_size=BYTES]\n"
			"  [--bloom_bits=N] [--compression_type=lz4|zstd|none] [--sync=0|1]\n"
			"  [--stats=0|1]\n"
			"(LevelDB ignores max_immutables, max_bytes_for_level_base and\n"
			"level0_trigger, which it does not let a caller set, and compresses\n"
			"with snappy whatever the compression type unless it is none)\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	bench_cfg	cfg;
	bool		stats = false;
	const char *v;

	memset(&cfg, 0, sizeof(cfg));
	cfg.benchmarks = "fillseq,fillrandom,readrandom,readseq,seekrandom,overwrite";
	cfg.num = 1000000;
	cfg.key_size = 16;
	cfg.value_size = 100;
	cfg.seed = 1;
	cfg.opts.write_buffer_size = 4 << 20;
	cfg.opts.max_immutables = 1;
	cfg.opts.target_file_size = 2 << 20;
	cfg.opts.max_bytes_for_level_base = 10 << 20;
	cfg.opts.level0_trigger = 4;
	cfg.opts.block_size = 4096;
	cfg.opts.bloom_bits = 10;
	cfg.opts.compression = "lz4";
	cfg.opts.sync = false;

	for (int i = 1; i < argc; i++)
	{
		const char *a = argv[i];

		if (parse_flag(a, "db", &v))
			cfg.dir = v;
		else if (parse_flag(a, "benchmarks", &v))
			cfg.benchmarks = v;
		else if (parse_flag(a, "num", &v))
			cfg.num = strtoull(v, NULL, 10);
		else if (parse_flag(a, "key_size", &v))
			cfg.key_size = atoi(v);
		else if (parse_flag(a, "value_size", &v))
			cfg.value_size = atoi(v);
		else if (parse_flag(a, "seed", &v))
			cfg.seed = strtoull(v, NULL, 10);
		else if (parse_flag(a, "write_buffer_size", &v))
			cfg.opts.write_buffer_size = strtoull(v, NULL, 10);
		else if (parse_flag(a, "max_immutables", &v))
			cfg.opts.max_immutables = atoi(v);
		else if (parse_flag(a, "target_file_size", &v))
			cfg.opts.target_file_size = strtoull(v, NULL, 10);
		else if (parse_flag(a, "max_bytes_for_level_base", &v))
			cfg.opts.max_bytes_for_level_base = strtoull(v, NULL, 10);
		else if (parse_flag(a, "level0_trigger", &v))
			cfg.opts.level0_trigger = atoi(v);
		else if (parse_flag(a, "block_size", &v))
			cfg.opts.block_size = strtoull(v, NULL, 10);
		else if (parse_flag(a, "bloom_bits", &v))
			cfg.opts.bloom_bits = atoi(v);
		else if (parse_flag(a, "compression_type", &v))
		{
			if (strcmp(v, "lz4") != 0 && strcmp(v, "zstd") != 0 && strcmp(v, "none") != 0)
				usage();
			cfg.opts.compression = v;
		}
		else if (parse_flag(a, "sync", &v))
			cfg.opts.sync = atoi(v) != 0;
		else if (parse_flag(a, "stats", &v))
			stats = atoi(v) != 0;
		else
			usage();
	}
	if (cfg.dir == NULL || cfg.num == 0 || cfg.key_size < 1 || cfg.key_size > 64 ||
		cfg.value_size < 1)
		usage();

	value_gen	vg;

	if (!value_gen_init(&vg, cfg.value_size, cfg.seed))
		die("out of memory", NULL);

	store	   *s = NULL;
	char	   *list = strdup(cfg.benchmarks);
	char	   *save = NULL;
	uint64_t	stream = 0;

	if (list == NULL)
		die("out of memory", NULL);
	for (char *name = strtok_r(list, ",", &save); name != NULL;
		 name = strtok_r(NULL, ",", &save))
	{
		bool		fresh = strcmp(name, "fillseq") == 0 || strcmp(name, "fillrandom") == 0;
		uint64_t	seed = cfg.seed * 1000 + ++stream;

		if (fresh && s != NULL)
		{
			store_close(s, stats);
			s = NULL;
		}
		if (s == NULL)
			s = store_open(&cfg, fresh);
		if (strcmp(name, "fillseq") == 0)
			bench_fill(&cfg, s, name, 0, seed, &vg);
		else if (strcmp(name, "fillrandom") == 0 || strcmp(name, "overwrite") == 0)
			bench_fill(&cfg, s, name, 1, seed, &vg);
		else if (strcmp(name, "readrandom") == 0)
			bench_readrandom(&cfg, s, seed);
		else if (strcmp(name, "readseq") == 0)
			bench_readseq(s);
		else if (strcmp(name, "seekrandom") == 0)
			bench_seekrandom(&cfg, s, seed);
		else
		{
			fprintf(stderr, BENCH_NAME ": unknown benchmark \"%s\"\n", name);
			exit(2);
		}
	}
	if (s != NULL)
		store_close(s, stats);
	free(list);
	free(vg.pool);
	return 0;
}
