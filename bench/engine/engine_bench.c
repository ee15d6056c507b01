/*
 * engine_bench.c — single-threaded microbenchmark of the standalone engine
 * (db/db.h) that mirrors RocksDB's db_bench, so that bench/engine/run.sh
 * can put the two side by side.
 *
 * Workloads (db_bench semantics, run in the order given):
 *  - fillseq:    fresh DB, keys 0..num-1 in order;
 *  - fillrandom: fresh DB, num keys drawn uniformly WITH repetition from
 *                [0, num), so only ~63% distinct keys end up in the DB;
 *  - readrandom: num gets of keys drawn uniformly from [0, num) against the
 *                DB fillrandom left; reports how many were found;
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
 * (readrandom adds "(F of N found)"), so run.sh parses both tools alike.
 * MB/s counts key + value bytes per write and per found read, as db_bench.
 *
 * Thread safety: single-threaded program (the engine runs its own flush and
 * compaction threads).
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

#include "engine/db/db.h"

#define VALUE_POOL_BYTES (1 << 20)

typedef struct bench_cfg
{
	const char *dir;
	const char *benchmarks;
	uint64_t	num;
	int			key_size;
	int			value_size;
	uint64_t	seed;
	sg_db_options opts;
} bench_cfg;

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

static sg_slice
value_gen_next(value_gen *g, int len)
{
	if (g->pos + (size_t) len > VALUE_POOL_BYTES)
		g->pos = 0;
	g->pos += (size_t) len;
	return sg_slice_make(g->pool + g->pos - (size_t) len, (size_t) len);
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
die(const char *what, const sg_err *err)
{
	fprintf(stderr, "engine_bench: %s: %s\n", what,
			err != NULL && err->msg[0] ? err->msg : "failed");
	exit(1);
}

static sg_db *
open_db(const bench_cfg *cfg, bool fresh)
{
	sg_db	   *db;
	sg_err		err;

	if (fresh)
		rmtree(cfg->dir);
	sg_err_clear(&err);
	if (sg_db_open(cfg->dir, &cfg->opts, &db, &err) != SG_OK)
		die("open", &err);
	return db;
}

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

/* mode: 0 sequential keys, 1 random keys with repetition */
static void
bench_fill(const bench_cfg *cfg, sg_db *db, const char *name, int mode,
		   uint64_t seed, value_gen *vg)
{
	bench_rng	r;
	char		key[64];
	sg_err		err;
	uint64_t	bytes = 0;

	rng_seed(&r, seed);
	sg_err_clear(&err);
	double		t0 = now_seconds();

	for (uint64_t i = 0; i < cfg->num; i++)
	{
		uint64_t	k = mode == 0 ? i : rng_next(&r) % cfg->num;
		sg_slice	v = value_gen_next(vg, cfg->value_size);

		make_key(key, cfg->key_size, k);
		if (sg_db_put(db, sg_slice_make(key, (size_t) cfg->key_size), v, &err) != SG_OK)
			die("put", &err);
		bytes += (uint64_t) cfg->key_size + v.len;
	}
	report(name, cfg->num, bytes, now_seconds() - t0, NULL);
}

static void
bench_readrandom(const bench_cfg *cfg, sg_db *db, uint64_t seed)
{
	bench_rng	r;
	char		key[64];
	char		extra[64];
	sg_buf		value = SG_BUF_INIT;
	sg_err		err;
	uint64_t	found = 0;
	uint64_t	bytes = 0;

	rng_seed(&r, seed);
	sg_err_clear(&err);
	double		t0 = now_seconds();

	for (uint64_t i = 0; i < cfg->num; i++)
	{
		make_key(key, cfg->key_size, rng_next(&r) % cfg->num);
		sg_code		rc = sg_db_get(db, sg_slice_make(key, (size_t) cfg->key_size),
								   NULL, &value, &err);

		if (rc == SG_OK)
		{
			found++;
			bytes += (uint64_t) cfg->key_size + value.len;
		}
		else if (rc != SG_NOT_FOUND)
			die("get", &err);
	}
	double		secs = now_seconds() - t0;

	snprintf(extra, sizeof(extra), " (%llu of %llu found)",
			 (unsigned long long) found, (unsigned long long) cfg->num);
	report("readrandom", cfg->num, bytes, secs, extra);
	sg_buf_free(&value);
}

static void
close_db(sg_db *db, bool print_stats)
{
	sg_err		err;

	if (print_stats)
	{
		sg_db_stats st;

		sg_db_get_stats(db, &st);
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
	if (sg_db_close(db, &err) != SG_OK)
		die("close", &err);
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
			"usage: engine_bench --db=DIR [--benchmarks=fillseq,fillrandom,readrandom,overwrite]\n"
			"  [--num=1000000] [--key_size=16] [--value_size=100] [--seed=N]\n"
			"  [--write_buffer_size=BYTES] [--max_immutables=N] [--target_file_size=BYTES]\n"
			"  [--max_bytes_for_level_base=BYTES] [--level0_trigger=N] [--block_size=BYTES]\n"
			"  [--bloom_bits=N] [--compression_type=lz4|zstd|none] [--sync=0|1]\n"
			"  [--stats=0|1]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	bench_cfg	cfg;
	bool		stats = false;
	const char *v;

	memset(&cfg, 0, sizeof(cfg));
	cfg.benchmarks = "fillseq,fillrandom,readrandom,overwrite";
	cfg.num = 1000000;
	cfg.key_size = 16;
	cfg.value_size = 100;
	cfg.seed = 1;
	sg_db_options_init(&cfg.opts);
	cfg.opts.create_if_missing = true;
	cfg.opts.wal_sync = SG_WAL_SYNC_OFF;

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
			cfg.opts.memtable_size = strtoull(v, NULL, 10);
		else if (parse_flag(a, "max_immutables", &v))
			cfg.opts.max_immutables = atoi(v);
		else if (parse_flag(a, "target_file_size", &v))
			cfg.opts.target_file_size = strtoull(v, NULL, 10);
		else if (parse_flag(a, "max_bytes_for_level_base", &v))
			cfg.opts.l1_target_bytes = strtoull(v, NULL, 10);
		else if (parse_flag(a, "level0_trigger", &v))
			cfg.opts.l0_trigger = atoi(v);
		else if (parse_flag(a, "block_size", &v))
			cfg.opts.block_size = strtoull(v, NULL, 10);
		else if (parse_flag(a, "bloom_bits", &v))
			cfg.opts.bloom_bits_per_key = atoi(v);
		else if (parse_flag(a, "compression_type", &v))
		{
			if (strcmp(v, "lz4") == 0)
				cfg.opts.codec = SG_CODEC_LZ4;
			else if (strcmp(v, "zstd") == 0)
				cfg.opts.codec = SG_CODEC_ZSTD;
			else if (strcmp(v, "none") == 0)
				cfg.opts.codec = SG_CODEC_NONE;
			else
				usage();
		}
		else if (parse_flag(a, "sync", &v))
			cfg.opts.wal_sync = atoi(v) ? SG_WAL_SYNC_ALWAYS : SG_WAL_SYNC_OFF;
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

	sg_db	   *db = NULL;
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

		if (fresh && db != NULL)
		{
			close_db(db, stats);
			db = NULL;
		}
		if (db == NULL)
			db = open_db(&cfg, fresh);
		if (strcmp(name, "fillseq") == 0)
			bench_fill(&cfg, db, name, 0, seed, &vg);
		else if (strcmp(name, "fillrandom") == 0 || strcmp(name, "overwrite") == 0)
			bench_fill(&cfg, db, name, 1, seed, &vg);
		else if (strcmp(name, "readrandom") == 0)
			bench_readrandom(&cfg, db, seed);
		else
		{
			fprintf(stderr, "engine_bench: unknown benchmark \"%s\"\n", name);
			exit(2);
		}
	}
	if (db != NULL)
		close_db(db, stats);
	free(list);
	free(vg.pool);
	return 0;
}
