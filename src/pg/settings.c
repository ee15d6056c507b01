/*
 * settings.c — the stratago.* GUCs: their variables (declared in
 * stratago.h, read by every module) and their definitions, made once by
 * _PG_init. Below every other glue module: it calls none of them.
 */
#include "postgres.h"

#include "utils/guc.h"

#include "pg/stratago.h"

int			strata_maintenance_naptime = 1000;
int			strata_memtable_memory_mb = 256;
int			strata_memtable_size_kb = 4096;
int			strata_max_tables = 10000;
int			strata_maintenance_write_rate_kb = 0;
bool		strata_sync = true;
int			strata_wal_sink = STRATA_SINK_POSTGRES;
bool		strata_checkpoint_guard = true;
int			strata_bottom_compression = STRATA_CODEC_LZ4;
int			strata_new_table_compression = STRATA_TREE_CODEC_DEFAULT;
int			strata_block_cache_size_kb = 64 * 1024;

/* stratago.compression: a new table's own choice (StrataTreeCodec) */
static const struct config_enum_entry table_codec_options[] = {
	{"default", STRATA_TREE_CODEC_DEFAULT, false},
	{"lz4", STRATA_TREE_CODEC_LZ4, false},
	{"zstd", STRATA_TREE_CODEC_ZSTD, false},
	{NULL, 0, false}
};

static const struct config_enum_entry codec_options[] = {
	{"lz4", STRATA_CODEC_LZ4, false},
	{"zstd", STRATA_CODEC_ZSTD, false},
	{NULL, 0, false}
};

static const struct config_enum_entry wal_sink_options[] = {
	{"engine", STRATA_SINK_ENGINE, false},
	{"postgres", STRATA_SINK_POSTGRES, false},
	{NULL, 0, false}
};

void
strata_define_gucs(void)
{
	DefineCustomIntVariable("stratago.maintenance_naptime",
							"Time the maintenance worker sleeps between rounds.",
							NULL,
							&strata_maintenance_naptime,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("stratago.memtable_memory",
							"Shared memory for the memtables of all strata tables.",
							NULL,
							&strata_memtable_memory_mb,
							256, 8, INT_MAX / 2,
							PGC_POSTMASTER,
							GUC_UNIT_MB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("stratago.block_cache_size",
							"Shared memory for uncompressed SSTable blocks read by index fetches and point lookups.",
							"Scans fill it only for tables of at most a quarter of its size. 0 turns the cache off.",
							&strata_block_cache_size_kb,
							64 * 1024, 0, INT_MAX,
							PGC_POSTMASTER,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("stratago.memtable_size",
							"Size at which a table's memtable is frozen and flushed.",
							NULL,
							&strata_memtable_size_kb,
							4096, 64, INT_MAX / 1024,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("stratago.max_tables",
							"Maximum number of strata relfilenodes in the cluster.",
							NULL,
							&strata_max_tables,
							10000, 16, 1000000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("stratago.maintenance_write_rate",
							"Bytes per second the maintenance worker may write to SSTables (flushes and compactions).",
							"0 means no limit. Writers wait for memory if flushes fall behind the write rate.",
							&strata_maintenance_write_rate_kb,
							0, 0, INT_MAX,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("stratago.sync",
							 "Makes a transaction's strata changes durable before its commit.",
							 "Only with stratago.wal_sink = engine (with postgres, synchronous_commit decides). Off gives up crash atomicity of strata changes with the rest of the transaction.",
							 &strata_sync,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("stratago.wal_sink",
							 "Where strata tables log their changes.",
							 "\"engine\": the engine's own WAL, synced at pre-commit. \"postgres\": PostgreSQL's WAL, made durable by the commit record's flush and sent to standbys.",
							 &strata_wal_sink,
							 STRATA_SINK_POSTGRES,
							 wal_sink_options,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("stratago.checkpoint_guard",
							 "Makes checkpoints wait until memtables holding older changes are flushed.",
							 "Only with stratago.wal_sink = postgres. Off lets a checkpoint complete sooner; crash recovery then replays those changes from the WAL the stratago slot keeps, but a base backup started by such a checkpoint may not restore.",
							 &strata_checkpoint_guard,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("stratago.bottom_compression",
							 "Codec for the SSTables compaction writes to a table's bottom level.",
							 "Upper levels, rewritten soon, always use lz4. zstd makes the bottom level, which holds most of a table, about 40% smaller, and whole-table scans of it about a third slower. Existing files change codec when compaction next rewrites them (stratago.compact() rewrites them all).",
							 &strata_bottom_compression,
							 STRATA_CODEC_LZ4,
							 codec_options,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("stratago.compression",
							 "Codec of the bottom level for strata tables created from now on.",
							 "default follows stratago.bottom_compression. Another value is recorded as the new table's own choice, as stratago.set_compression() would record it, so that pg_dump carries it.",
							 &strata_new_table_compression,
							 STRATA_TREE_CODEC_DEFAULT,
							 table_codec_options,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("stratago");
}
