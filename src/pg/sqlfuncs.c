/*
 * sqlfuncs.c — the SQL surface of stratago (schema stratago):
 *
 *   flush(regclass)        write the table's memtables to SSTables, wait
 *   compact(regclass)      flush, then compact every level down, wait
 *   sstables(regclass)     one row per SSTable: level, size, entries, range, codec
 *   table_stats(regclass)  memtable and SSTable sizes, bytes written by the
 *                          engine WAL, flushes and compactions, row versions
 *                          compaction retired and froze, bytes waiting for
 *                          compaction, when the last flush and compaction ended
 *   relation_size(regclass) bytes the table takes in the engine
 *   wal_stats()            cluster-wide engine WAL counters: commits that
 *                          wrote it, the fsyncs group commit issued for
 *                          them, segments removed
 *   memory_stats()         the shared memtable arena: size and bytes in use
 *   worker_stats()         cluster-wide: strata trees, how many wait for a
 *                          flush or a manual compaction, how many the
 *                          maintenance worker is working on, how many fail
 *   maintenance_progress() the maintenance worker's current job: a flush or a
 *                          compaction, its table, bytes to read and written
 *   read_stats()           this backend's reads of rows by row id: point
 *                          lookups, and index/bitmap fetches answered by
 *                          stepping a kept iterator or by seeking it; its
 *                          block cache hits and misses
 *
 * Each takes a strata table and refuses anything else (a heap table, an
 * index, a view, a dropped relation) with a clear error. flush and compact
 * touch storage: table owner or superuser only (EXECUTE is also revoked
 * from PUBLIC in the install script). sstables and table_stats tell what
 * the table holds (TID ranges, row versions): SELECT on it is needed, as
 * for reading it; relation_size, like pg_relation_size, needs nothing.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relfilenodemap.h"

#include "engine/base/coding.h"
#include "engine/base/ikey.h"
#include "engine/memtable/memtable.h"
#include "engine/sstable/table.h"
#include "engine/version/version.h"
#include "engine/version/version_edit.h"
#include "pg/blockcache.h"
#include "pg/compression.h"
#include "pg/enginewal.h"
#include "pg/flush.h"
#include "pg/jobprogress.h"
#include "pg/read.h"
#include "pg/sstcache.h"
#include "pg/stratago.h"
#include "pg/tree.h"
#include "pg/treeopts.h"
#include "pg/write.h"

PG_FUNCTION_INFO_V1(stratago_flush);
PG_FUNCTION_INFO_V1(stratago_compact);
PG_FUNCTION_INFO_V1(stratago_set_compression);
PG_FUNCTION_INFO_V1(stratago_sstables);
PG_FUNCTION_INFO_V1(stratago_table_stats);
PG_FUNCTION_INFO_V1(stratago_relation_size);
PG_FUNCTION_INFO_V1(stratago_wal_stats);
PG_FUNCTION_INFO_V1(stratago_memory_stats);
PG_FUNCTION_INFO_V1(stratago_read_stats);
PG_FUNCTION_INFO_V1(stratago_worker_stats);
PG_FUNCTION_INFO_V1(stratago_maintenance_progress);

/* What a caller must be allowed to do with the table. */
typedef enum StrataNeed
{
	STRATA_NEED_NOTHING,		/* sizes, as pg_relation_size */
	STRATA_NEED_SELECT,			/* what is in it: key ranges, row counts */
	STRATA_NEED_STATS,			/* its counters: SELECT, or pg_read_all_stats
								 * (pg_monitor), as pg_stat_* show them */
	STRATA_NEED_OWNER			/* touch its storage */
} StrataNeed;

/* Open relid as a strata table (AccessShareLock), or ERROR. */
static Relation
open_strata_table(Oid relid, StrataNeed need)
{
	Relation	rel = try_relation_open(relid, AccessShareLock);

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (rel->rd_rel->relkind != RELKIND_RELATION && rel->rd_rel->relkind != RELKIND_MATVIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errdetail_relkind_not_supported(rel->rd_rel->relkind)));
	if (!strata_relation_is_strata(rel))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a strata table", RelationGetRelationName(rel)),
				 errdetail("Its access method is not \"strata\".")));
	if (need == STRATA_NEED_OWNER && !pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, RelationGetRelationName(rel));
	/* SELECT on the table or on any of its columns: who may read rows */
	if ((need == STRATA_NEED_SELECT ||
		 (need == STRATA_NEED_STATS &&
		  !has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS))) &&
		pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, GetUserId(), ACL_SELECT, ACLMASK_ANY) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
	return rel;
}

Datum
stratago_flush(PG_FUNCTION_ARGS)
{
	Relation	rel = open_strata_table(PG_GETARG_OID(0), STRATA_NEED_OWNER);

	strata_tree_request_flush(strata_tree_get(rel));
	relation_close(rel, AccessShareLock);
	PG_RETURN_VOID();
}

Datum
stratago_compact(PG_FUNCTION_ARGS)
{
	Relation	rel = open_strata_table(PG_GETARG_OID(0), STRATA_NEED_OWNER);

	strata_tree_request_compact(strata_tree_get(rel));
	relation_close(rel, AccessShareLock);
	PG_RETURN_VOID();
}

/*
 * stratago.set_compression(rel, codec): the codec of rel's bottom level,
 * "lz4" or "zstd", or "default" for stratago.bottom_compression. Table
 * owner; takes effect for the table's files at commit, for files at rest
 * at their next compaction (stratago.compact() rewrites them at once).
 */
Datum
stratago_set_compression(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(1));
	StrataTreeCodec codec;
	Relation	rel;

	if (!strata_tree_codec_parse(name, &codec))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unrecognized compression \"%s\"", name),
				 errhint("Valid values are \"lz4\", \"zstd\" and \"default\".")));
	rel = open_strata_table(relid, STRATA_NEED_OWNER);
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
	{
		/* never dumped: the choice goes to its tree alone */
		strata_tree_set_bottom_codec(rel, strata_tree_get(rel), codec);
		relation_close(rel, AccessShareLock);
		PG_RETURN_VOID();
	}
	relation_close(rel, AccessShareLock);
	strata_compression_record(relid, codec);
	PG_RETURN_VOID();
}

/* Row id of an internal key as a TID datum (NULL if it is no row key). */
static Datum
key_tid(sg_slice ikey, bool *isnull)
{
	ItemPointer tid = palloc(sizeof(ItemPointerData));

	*isnull = ikey.len != STRATA_ROWID_KEY_LEN + SG_IKEY_TRAILER_LEN;
	if (*isnull)
		return (Datum) 0;
	strata_rowid_to_tid(sg_decode_be64(ikey.data), tid);
	return PointerGetDatum(tid);
}

Datum
stratago_sstables(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	rel = open_strata_table(PG_GETARG_OID(0), STRATA_NEED_SELECT);
	StrataTree *tree = strata_tree_get(rel);
	StrataLocalVersion *lv;
	StrataHoldId lv_hold;

	InitMaterializedSRF(fcinfo, 0);
	lv = strata_local_version_get(tree, &lv_hold);
	for (int i = 0; i < strata_local_version_nfiles(lv); i++)
	{
		int			level;
		uint64		number;
		sg_table_reader *r;
		const sg_table_props *p;
		Datum		values[9];
		bool		nulls[9] = {0};

		strata_local_version_file(lv, i, &level, &number, &r);
		p = sg_table_reader_props(r);
		values[0] = Int32GetDatum(level);
		values[1] = Int64GetDatum((int64) number);
		values[2] = Int64GetDatum((int64) sg_table_reader_file_size(r));
		values[3] = Int64GetDatum((int64) p->num_entries);
		values[4] = key_tid(p->smallest_key, &nulls[4]);
		values[5] = key_tid(p->largest_key, &nulls[5]);
		values[6] = Int64GetDatum((int64) p->smallest_seq);
		values[7] = Int64GetDatum((int64) p->largest_seq);
		values[8] = CStringGetTextDatum(sg_codec_name(p->codec));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	strata_local_version_release(lv, lv_hold);
	relation_close(rel, AccessShareLock);
	return (Datum) 0;
}

/* What a tree holds: memtables (active and frozen) and SSTables by level. */
typedef struct EngineBytes
{
	uint64		mem;			/* data bytes in memtables */
	uint64		versions;		/* versions held: memtable entries and SSTable entries */
	int			frozen;			/* frozen memtables */
	uint64		sst;			/* SSTable bytes */
	int			files;			/* SSTables */
	int			level_files[SG_NUM_LEVELS];
	uint64		level_bytes[SG_NUM_LEVELS];
} EngineBytes;

static void
engine_bytes(StrataTree *tree, EngineBytes *eb)
{
	StrataLocalVersion *lv;
	StrataHoldId lv_hold;

	memset(eb, 0, sizeof(*eb));
	strata_tree_memtable_usage(tree, &eb->mem, &eb->versions);
	LWLockAcquire(&tree->lock, LW_SHARED);
	eb->frozen = tree->nimm;
	LWLockRelease(&tree->lock);

	lv = strata_local_version_get(tree, &lv_hold);
	eb->files = strata_local_version_nfiles(lv);
	for (int i = 0; i < eb->files; i++)
	{
		int			level;
		uint64		number;
		sg_table_reader *r;
		uint64		size;

		strata_local_version_file(lv, i, &level, &number, &r);
		size = sg_table_reader_file_size(r);
		eb->sst += size;
		eb->versions += sg_table_reader_props(r)->num_entries;
		eb->level_files[level]++;
		eb->level_bytes[level] += size;
	}
	strata_local_version_release(lv, lv_hold);
}

Datum
stratago_table_stats(PG_FUNCTION_ARGS)
{
	Relation	rel = open_strata_table(PG_GETARG_OID(0), STRATA_NEED_STATS);
	StrataTree *tree = strata_tree_get(rel);
	TupleDesc	tupdesc;
	Datum		values[21];
	bool		nulls[21] = {0};
	EngineBytes eb;
	sg_picker_options po;
	Datum		level_files[SG_NUM_LEVELS];
	Datum		level_bytes[SG_NUM_LEVELS];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	engine_bytes(tree, &eb);
	values[0] = Int64GetDatum((int64) eb.mem);
	values[1] = Int32GetDatum(eb.frozen);
	values[2] = Int32GetDatum(eb.files);
	values[3] = Int32GetDatum(eb.level_files[0]);
	values[4] = Int64GetDatum((int64) eb.sst);
	for (int level = 0; level < SG_NUM_LEVELS; level++)
	{
		level_files[level] = Int32GetDatum(eb.level_files[level]);
		level_bytes[level] = Int64GetDatum((int64) eb.level_bytes[level]);
	}
	values[13] = PointerGetDatum(construct_array(level_files, SG_NUM_LEVELS, INT4OID,
												 sizeof(int32), true, TYPALIGN_INT));
	values[14] = PointerGetDatum(construct_array(level_bytes, SG_NUM_LEVELS, INT8OID,
												 sizeof(int64), FLOAT8PASSBYVAL,
												 TYPALIGN_DOUBLE));
	/* the worker picks with the engine's default shape (compaction.c) */
	sg_picker_options_init(&po);
	values[17] = Int64GetDatum((int64) sg_picker_pending_bytes(&po, eb.level_bytes,
															   eb.level_files));
	LWLockAcquire(&tree->lock, LW_SHARED);
	values[5] = Int64GetDatum((int64) tree->rows_written);
	values[6] = Int64GetDatum((int64) tree->wal_bytes);
	values[7] = Int64GetDatum((int64) tree->flushes);
	values[8] = Int64GetDatum((int64) tree->flush_bytes);
	values[9] = Int64GetDatum((int64) tree->compactions);
	values[10] = Int64GetDatum((int64) tree->compaction_bytes);
	values[11] = Int64GetDatum((int64) tree->versions_dropped);
	values[12] = Int64GetDatum((int64) tree->versions_frozen);
	values[15] = Int64GetDatum((int64) tree->job_failures);
	if (tree->job_failures_in_row > 0)
		values[16] = CStringGetTextDatum(tree->job_error);
	else
		nulls[16] = true;
	values[18] = TimestampTzGetDatum(tree->last_flush);
	nulls[18] = tree->last_flush == 0;
	values[19] = TimestampTzGetDatum(tree->last_compaction);
	nulls[19] = tree->last_compaction == 0;
	values[20] = Int64GetDatum((int64) eb.versions);
	LWLockRelease(&tree->lock);
	relation_close(rel, AccessShareLock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

Datum
stratago_relation_size(PG_FUNCTION_ARGS)
{
	Relation	rel = open_strata_table(PG_GETARG_OID(0), STRATA_NEED_NOTHING);
	EngineBytes eb;

	engine_bytes(strata_tree_get(rel), &eb);
	relation_close(rel, AccessShareLock);
	PG_RETURN_INT64((int64) (eb.mem + eb.sst));
}

/*
 * Counters of the engine WAL since server start (all zero with
 * stratago.wal_sink = postgres): syncs below commits is group commit at
 * work, or stratago.sync = off.
 */
Datum
stratago_wal_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {0};
	uint64		commits,
				syncs,
				removed;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	strata_wal_stats(&commits, &syncs, &removed);
	values[0] = Int64GetDatum((int64) commits);
	values[1] = Int64GetDatum((int64) syncs);
	values[2] = Int64GetDatum((int64) removed);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

Datum
stratago_memory_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[2];
	bool		nulls[2] = {0};
	int64		total;
	int64		free_chunks;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	LWLockAcquire(strata_shared->arena_lock, LW_SHARED);
	total = strata_shared->arena_nchunks;
	free_chunks = strata_shared->arena_free;
	LWLockRelease(strata_shared->arena_lock);
	values[0] = Int64GetDatum(total * STRATA_CHUNK_SIZE);
	values[1] = Int64GetDatum((total - free_chunks) * STRATA_CHUNK_SIZE);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * This backend's reads of rows since it started (read.h). Few lookups and
 * many steps is an index or bitmap scan in row id order at work; leaf
 * entries are what scans read without the merge and view above a block.
 */
Datum
stratago_read_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		nulls[7] = {0};
	StrataReadCounters c;
	uint64		cache_hits;
	uint64		cache_misses;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	strata_read_counters_get(&c);
	values[0] = Int64GetDatum((int64) c.lookups);
	values[1] = Int64GetDatum((int64) c.fetcher_steps);
	values[2] = Int64GetDatum((int64) c.fetcher_seeks);
	values[3] = Int64GetDatum((int64) c.scan_leaf_entries);
	values[4] = Int64GetDatum((int64) c.scan_stack_entries);
	strata_block_cache_counters(&cache_hits, &cache_misses);
	values[5] = Int64GetDatum((int64) cache_hits);
	values[6] = Int64GetDatum((int64) cache_misses);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* What every tree of the cluster is waiting for, counted under its lock. */
typedef struct WorkerCounts
{
	int64		trees;
	int64		flushes_waiting;	/* frozen memtables, or a flush asked for */
	int64		compactions_requested;	/* stratago.compact() or VACUUM waiting */
	int64		jobs_running;
	int64		failing;		/* the last job failed; retried later */
} WorkerCounts;

static bool
count_tree(StrataTree *tree, void *arg)
{
	WorkerCounts *wc = arg;

	LWLockAcquire(&tree->lock, LW_SHARED);
	wc->trees++;
	if (tree->nimm > 0 || tree->flush_requested)
		wc->flushes_waiting++;
	if (tree->compact_requested)
		wc->compactions_requested++;
	if (tree->worker_job != 0)
		wc->jobs_running++;
	if (tree->job_failures_in_row > 0)
		wc->failing++;
	LWLockRelease(&tree->lock);
	return true;
}

/*
 * The maintenance worker's queue, cluster-wide: one look at every tree.
 * A monitoring query (stratago.cluster_stats) reads it.
 */
Datum
stratago_worker_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {0};
	WorkerCounts wc = {0};

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	strata_registry_foreach(count_tree, &wc);
	values[0] = Int64GetDatum(wc.trees);
	values[1] = Int64GetDatum(wc.flushes_waiting);
	values[2] = Int64GetDatum(wc.compactions_requested);
	values[3] = Int64GetDatum(wc.jobs_running);
	values[4] = Int64GetDatum(wc.failing);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * The maintenance worker's current job, one row, or none when it is idle:
 * what a manual stratago.compact() waits for, as pg_stat_progress_* show
 * a backend's command. relid is resolved for tables of this database.
 */
Datum
stratago_maintenance_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	StrataJobProgress job;
	Datum		values[8];
	bool		nulls[8] = {0};

	InitMaterializedSRF(fcinfo, 0);
	strata_job_progress_get(&job);
	if (job.kind == STRATA_JOB_NONE)
		return (Datum) 0;
	values[0] = CStringGetTextDatum(strata_job_kind_name(job.kind));
	values[1] = ObjectIdGetDatum(job.node.dbNode);
	if (job.node.dbNode == MyDatabaseId)
	{
		Oid			relid = RelidByRelfilenode(job.node.spcNode, job.node.relNode);

		values[2] = ObjectIdGetDatum(relid);
		nulls[2] = !OidIsValid(relid);
	}
	else
		nulls[2] = true;
	values[3] = ObjectIdGetDatum(job.node.relNode);
	values[4] = Int32GetDatum(job.level);
	values[5] = Int64GetDatum((int64) job.input_bytes);
	values[6] = Int64GetDatum((int64) job.written_bytes);
	values[7] = TimestampTzGetDatum(job.started);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
