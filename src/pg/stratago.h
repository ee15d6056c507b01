/*
 * stratago.h — what the whole glue shares: the settings (GUCs), the
 * folder of the engine's files, and the entry points PostgreSQL reaches
 * (_PG_init, the access method handler, the worker's main, the hooks).
 * Each module declares its own calls in its own header (src/pg/README.md
 * lists them in their dependency order); this one includes none of them.
 *
 * The glue is everything that includes postgres.h; the engine under
 * src/engine/ never does.
 */
#ifndef STRATAGO_H
#define STRATAGO_H

#include "postgres.h"

#include "fmgr.h"
#include "utils/relcache.h"
#include "storage/lwlock.h"

/* Folder under the data directory that holds all engine files. */
#define STRATAGO_DIR "stratago"

/* GUCs (settings.c) */
extern int	strata_maintenance_naptime;
extern int	strata_memtable_memory_mb;
extern int	strata_memtable_size_kb;
extern int	strata_max_tables;
extern int	strata_maintenance_write_rate_kb;
extern bool strata_sync;
extern int	strata_wal_sink;
extern bool strata_checkpoint_guard;
extern int	strata_bottom_compression;
extern int	strata_new_table_compression;	/* StrataTreeCodec, below */
extern int	strata_block_cache_size_kb;

/* stratago.bottom_compression (the engine's codecs, by name) */
typedef enum StrataCodec
{
	STRATA_CODEC_LZ4,
	STRATA_CODEC_ZSTD
} StrataCodec;

/*
 * A table's own choice of bottom-level codec (StrataTree.bottom_codec,
 * stratago.set_compression, stratago.compression).
 */
typedef enum StrataTreeCodec
{
	STRATA_TREE_CODEC_DEFAULT = 0,	/* stratago.bottom_compression */
	STRATA_TREE_CODEC_LZ4,
	STRATA_TREE_CODEC_ZSTD
} StrataTreeCodec;

/* stratago.wal_sink */
typedef enum StrataWalSink
{
	STRATA_SINK_ENGINE,			/* the engine WAL, synced at pre-commit */
	STRATA_SINK_POSTGRES		/* PostgreSQL's WAL, through the custom rmgr */
} StrataWalSink;


/* settings.c: define the GUCs above (once, from _PG_init) */
extern void strata_define_gucs(void);

/* stratago.c */
extern void _PG_init(void);

/* worker.c */
extern void strata_register_maintenance_worker(void);
extern PGDLLEXPORT void strata_maintenance_main(Datum main_arg);

/* utility.c */
extern void strata_utility_init(void);

/* tableam.c */
extern PGDLLEXPORT Datum stratago_tableam_handler(PG_FUNCTION_ARGS);
extern bool strata_relation_is_strata(Relation rel);

#endif							/* STRATAGO_H */
