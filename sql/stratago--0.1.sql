/* stratago--0.1.sql — objects created by CREATE EXTENSION stratago. */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION stratago" to load this file. \quit

CREATE FUNCTION stratago_tableam_handler(internal)
RETURNS table_am_handler
AS 'MODULE_PATHNAME', 'stratago_tableam_handler'
LANGUAGE C STRICT;

CREATE ACCESS METHOD strata TYPE TABLE HANDLER stratago_tableam_handler;

COMMENT ON ACCESS METHOD strata IS 'LSM-tree storage: WAL, memtables, compressed SSTables, leveled compaction';

-- Maintenance: table owner or superuser (checked inside), and not PUBLIC.
CREATE FUNCTION flush(rel regclass) RETURNS void
AS 'MODULE_PATHNAME', 'stratago_flush' LANGUAGE C STRICT;
COMMENT ON FUNCTION flush(regclass) IS 'write a strata table''s memtables to SSTables and wait';

CREATE FUNCTION compact(rel regclass) RETURNS void
AS 'MODULE_PATHNAME', 'stratago_compact' LANGUAGE C STRICT;
COMMENT ON FUNCTION compact(regclass) IS 'flush, then compact every level of a strata table down, and wait';

REVOKE EXECUTE ON FUNCTION flush(regclass), compact(regclass) FROM PUBLIC;

-- A table's own compression (src/pg/compression.c). PostgreSQL 15 gives a
-- table access method no options of its own: the choice is a row here,
-- which pg_dump carries (a configuration table of the extension), applied
-- to the table's engine files by a trigger when the transaction commits.
-- (heap whatever default_table_access_method says: the extension's own
-- table, read by triggers and pg_dump; a dropped table's row goes with it,
-- src/pg/compression.c)
CREATE TABLE compression (
	relation regclass PRIMARY KEY,
	codec text NOT NULL CHECK (codec IN ('lz4', 'zstd'))
) USING heap;
COMMENT ON TABLE compression IS 'strata tables with their own bottom-level codec (stratago.set_compression)';
SELECT pg_catalog.pg_extension_config_dump('compression', '');
GRANT SELECT ON compression TO PUBLIC;

CREATE FUNCTION compression_sync() RETURNS trigger
AS 'MODULE_PATHNAME', 'stratago_compression_sync' LANGUAGE C;
CREATE CONSTRAINT TRIGGER compression_sync
	AFTER INSERT OR UPDATE OR DELETE ON compression
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION compression_sync();

-- Table owner (checked inside).
CREATE FUNCTION set_compression(rel regclass, codec text) RETURNS void
AS 'MODULE_PATHNAME', 'stratago_set_compression' LANGUAGE C STRICT;
COMMENT ON FUNCTION set_compression(regclass, text) IS 'the codec of a strata table''s bottom level: lz4, zstd, or default (stratago.bottom_compression)';


-- Introspection
CREATE FUNCTION sstables(rel regclass,
	OUT level int, OUT file_number bigint, OUT bytes bigint, OUT entries bigint,
	OUT smallest_tid tid, OUT largest_tid tid,
	OUT smallest_seq bigint, OUT largest_seq bigint, OUT codec text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'stratago_sstables' LANGUAGE C STRICT;
COMMENT ON FUNCTION sstables(regclass) IS 'the SSTables of a strata table';

CREATE FUNCTION table_stats(rel regclass,
	OUT memtable_bytes bigint, OUT frozen_memtables int,
	OUT sstables int, OUT l0_sstables int, OUT sstable_bytes bigint,
	OUT versions_written bigint, OUT wal_bytes bigint,
	OUT flushes bigint, OUT flush_bytes bigint,
	OUT compactions bigint, OUT compaction_bytes bigint,
	OUT versions_dropped bigint, OUT versions_frozen bigint,
	OUT level_sstables int[], OUT level_bytes bigint[],
	OUT failed_jobs bigint, OUT last_error text,
	OUT compaction_pending_bytes bigint,
	OUT last_flush timestamptz, OUT last_compaction timestamptz,
	OUT versions_stored bigint)
AS 'MODULE_PATHNAME', 'stratago_table_stats' LANGUAGE C STRICT;
COMMENT ON FUNCTION table_stats(regclass) IS 'engine statistics of a strata table since server start';

CREATE FUNCTION relation_size(rel regclass) RETURNS bigint
AS 'MODULE_PATHNAME', 'stratago_relation_size' LANGUAGE C STRICT;
COMMENT ON FUNCTION relation_size(regclass) IS 'bytes a strata table takes in the engine (memtables and SSTables)';

-- pg_total_relation_size() as it would be if it saw the engine: one call
-- for any table in a monitoring query.
CREATE FUNCTION total_relation_size(rel regclass) RETURNS bigint
LANGUAGE sql STRICT STABLE
AS $$
	SELECT pg_catalog.pg_total_relation_size(rel) +
		CASE WHEN (SELECT a.amname FROM pg_catalog.pg_class c
					 JOIN pg_catalog.pg_am a ON a.oid = c.relam
					WHERE c.oid = rel) = 'strata'
			 THEN stratago.relation_size(rel) ELSE 0 END
$$;
COMMENT ON FUNCTION total_relation_size(regclass) IS 'pg_total_relation_size() plus, for a strata table, the engine''s bytes';

-- Cluster-wide activity, so not PUBLIC: grant it (e.g. to pg_monitor) as needed.
CREATE FUNCTION wal_stats(OUT commits bigint, OUT syncs bigint, OUT segments_removed bigint)
AS 'MODULE_PATHNAME', 'stratago_wal_stats' LANGUAGE C;
COMMENT ON FUNCTION wal_stats() IS 'engine WAL statistics since server start: commits, fsyncs, segments removed';
REVOKE EXECUTE ON FUNCTION wal_stats() FROM PUBLIC;

CREATE FUNCTION memory_stats(OUT arena_bytes bigint, OUT arena_used_bytes bigint)
AS 'MODULE_PATHNAME', 'stratago_memory_stats' LANGUAGE C;
COMMENT ON FUNCTION memory_stats() IS 'the shared memtable arena: its size and the bytes memtables hold, also frozen ones still read by a scan';
REVOKE EXECUTE ON FUNCTION memory_stats() FROM PUBLIC;

CREATE FUNCTION worker_stats(OUT trees bigint, OUT flushes_waiting bigint,
	OUT compactions_requested bigint, OUT jobs_running bigint, OUT trees_failing bigint)
AS 'MODULE_PATHNAME', 'stratago_worker_stats' LANGUAGE C;
COMMENT ON FUNCTION worker_stats() IS 'the maintenance worker''s queue, cluster-wide: strata trees, those waiting for a flush or a requested compaction, those it is working on, those whose last job failed';
REVOKE EXECUTE ON FUNCTION worker_stats() FROM PUBLIC;

CREATE FUNCTION maintenance_progress(OUT job text, OUT datid oid, OUT relid regclass,
	OUT relfilenode oid, OUT level int, OUT input_bytes bigint, OUT written_bytes bigint,
	OUT started_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'stratago_maintenance_progress' LANGUAGE C;
COMMENT ON FUNCTION maintenance_progress() IS 'the maintenance worker''s current job (a flush or a compaction, and why): its table, the bytes it reads and those it has written so far; no row when idle';
REVOKE EXECUTE ON FUNCTION maintenance_progress() FROM PUBLIC;

CREATE FUNCTION read_stats(OUT lookups bigint, OUT fetcher_steps bigint,
                           OUT fetcher_seeks bigint, OUT scan_leaf_entries bigint,
                           OUT scan_stack_entries bigint, OUT block_cache_hits bigint,
                           OUT block_cache_misses bigint)
AS 'MODULE_PATHNAME', 'stratago_read_stats' LANGUAGE C;
COMMENT ON FUNCTION read_stats() IS 'this backend''s reads of rows: point lookups; index or bitmap fetches answered by stepping a kept iterator forward or by seeking it; entries scans read straight from a block or memtable, or through the merge above them; data blocks its seeks found in the shared block cache, and did not';

-- Monitoring views, readable by pg_monitor (doc/OPERATIONS.md has example
-- queries). Each strata table of the current database the caller may see
-- the counters of (SELECT on it, or pg_read_all_stats, which pg_monitor
-- has); byte counters are since server start.
CREATE VIEW tables AS
SELECT t.schemaname, t.relname, t.relid,
	s.memtable_bytes + s.sstable_bytes AS engine_bytes,
	-- total_relation_size(), without opening the table a second time
	pg_catalog.pg_total_relation_size(t.relid) + s.memtable_bytes + s.sstable_bytes
		AS total_bytes,
	s.memtable_bytes, s.frozen_memtables,
	s.sstables, s.sstable_bytes, s.level_sstables, s.level_bytes,
	s.compaction_pending_bytes,
	t.reltuples AS rows_estimate, s.versions_stored,
	s.versions_written, s.wal_bytes AS logged_bytes,
	s.flushes, s.flush_bytes, s.compactions, s.compaction_bytes,
	round((s.flush_bytes + s.compaction_bytes)::numeric / nullif(s.wal_bytes, 0), 2)
		AS write_amplification,
	s.versions_dropped, s.versions_frozen, s.last_flush, s.last_compaction,
	s.failed_jobs, s.last_error
FROM (SELECT n.nspname AS schemaname, c.relname, c.oid AS relid, c.reltuples
		FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_catalog.pg_am a ON a.oid = c.relam
	   WHERE a.amname = 'strata' AND c.relkind IN ('r', 'm')
		 AND (pg_catalog.pg_has_role('pg_read_all_stats', 'USAGE')
			  OR pg_catalog.has_table_privilege(c.oid, 'SELECT')
			  OR pg_catalog.has_any_column_privilege(c.oid, 'SELECT'))
	  OFFSET 0) t,		-- (a fence: table_stats sees only the rows kept)
	LATERAL stratago.table_stats(t.relid) s;
COMMENT ON VIEW tables IS 'one row per strata table of the current database: engine size, levels, bytes written and write amplification, failures';

-- The whole cluster: memtable memory, the worker's queue, the engine WAL,
-- and the PostgreSQL WAL the stratago slot holds back.
CREATE VIEW cluster_stats AS
SELECT m.arena_bytes AS memtable_arena_bytes, m.arena_used_bytes AS memtable_used_bytes,
	w.trees, w.flushes_waiting, w.compactions_requested, w.jobs_running, w.trees_failing,
	e.commits AS engine_wal_commits, e.syncs AS engine_wal_syncs,
	(SELECT pg_catalog.pg_wal_lsn_diff(
				CASE WHEN pg_catalog.pg_is_in_recovery()
					 THEN pg_catalog.pg_last_wal_replay_lsn()
					 ELSE pg_catalog.pg_current_wal_lsn() END,
				s.restart_lsn)
	   FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = 'stratago')::bigint
		AS slot_retained_wal_bytes
FROM stratago.memory_stats() m, stratago.worker_stats() w, stratago.wal_stats() e;
COMMENT ON VIEW cluster_stats IS 'cluster-wide: memtable arena, the maintenance worker''s queue, engine WAL, WAL held by the stratago slot';

-- What the maintenance worker is doing right now (a manual compact(), a
-- long compaction): one row, or none when idle.
CREATE VIEW maintenance_progress AS
SELECT p.job, p.datid, p.relid, p.relfilenode, p.level, p.input_bytes, p.written_bytes,
	p.started_at, pg_catalog.now() - p.started_at AS running_for
FROM stratago.maintenance_progress() p;
COMMENT ON VIEW maintenance_progress IS 'the maintenance worker''s current flush or compaction: table, bytes to read, bytes written so far';

REVOKE ALL ON tables, cluster_stats, maintenance_progress FROM PUBLIC;
GRANT USAGE ON SCHEMA stratago TO pg_monitor;
GRANT SELECT ON tables, cluster_stats, maintenance_progress TO pg_monitor;
GRANT EXECUTE ON FUNCTION memory_stats(), worker_stats(), wal_stats(), maintenance_progress() TO pg_monitor;
