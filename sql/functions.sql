--
-- The SQL surface: flush, compact, sstables, table_stats, relation_size.
-- Data must survive forced flushes and compactions; every function refuses
-- what is not a strata table, and maintenance needs ownership.
--
CREATE EXTENSION IF NOT EXISTS stratago;

CREATE TABLE f (id int, payload text) USING strata;
INSERT INTO f SELECT g, 'row ' || g FROM generate_series(1, 20000) g;
UPDATE f SET payload = 'updated ' || id WHERE id % 100 = 0;
DELETE FROM f WHERE id % 1000 = 1;

-- before: everything is in memtables
SELECT sstables, memtable_bytes > 0 AS in_memory,
       last_flush IS NULL AS never_flushed, last_compaction IS NULL AS never_compacted,
       compaction_pending_bytes
  FROM stratago.table_stats('f');
SELECT now() AS before_flush \gset
SELECT stratago.flush('f');
SELECT memtable_bytes = 0 AS memtables_empty, sstables > 0 AS has_sstables,
       flushes > 0 AS flushed, versions_written,
       last_flush BETWEEN :'before_flush' AND clock_timestamp() AS last_flush_now
  FROM stratago.table_stats('f');
-- a flush writes lz4: upper levels are rewritten soon
SELECT array_agg(DISTINCT codec) AS flushed_codecs FROM stratago.sstables('f');
SELECT count(*), sum(id), count(*) FILTER (WHERE payload LIKE 'updated%') AS updated FROM f;

-- more versions on top of the SSTables, then compact everything down
UPDATE f SET payload = 'again ' || id WHERE id % 100 = 0;
SELECT stratago.compact('f');
SELECT min(level) > 0 AS nothing_in_l0,
       sum(entries) >= (SELECT count(*) FROM f) AS every_row_has_a_version
  FROM stratago.sstables('f');
-- everything is where it belongs: nothing waits for compaction
SELECT compaction_pending_bytes, last_compaction >= last_flush AS compacted_after_flush
  FROM stratago.table_stats('f');
-- compaction into the bottom level, where the table stays, writes
-- stratago.bottom_compression (lz4 by default; TAP 019 sets zstd)
SELECT array_agg(DISTINCT codec) AS bottom_codecs FROM stratago.sstables('f');
SELECT count(*), sum(id), count(*) FILTER (WHERE payload LIKE 'again%') AS updated FROM f;
SELECT payload FROM f WHERE id = 500;

-- a plain VACUUM rewrites nothing (retiring versions is left to the
-- compactions that run anyway); an aggressive one (FREEZE) compacts the
-- whole tree, which retires the versions no snapshot can see
UPDATE f SET payload = payload || '!' WHERE id % 10 = 0;
DELETE FROM f WHERE id % 10 = 5;
SELECT sum(entries) AS entries_before_vacuum FROM stratago.sstables('f') \gset
SELECT compactions AS compactions_before_vacuum FROM stratago.table_stats('f') \gset
VACUUM f;
SELECT compactions = :compactions_before_vacuum AS plain_vacuum_compacted_nothing
  FROM stratago.table_stats('f');
VACUUM (FREEZE) f;
SELECT sum(entries) < :entries_before_vacuum AS fewer_versions
  FROM stratago.sstables('f');
SELECT versions_dropped > 0 AS dropped, versions_frozen > 0 AS frozen
  FROM stratago.table_stats('f');
SELECT count(*), sum(id), count(*) FILTER (WHERE payload LIKE '%!') AS updated FROM f;

-- the SSTables cover the row ids in order
SELECT bool_and(smallest_tid <= largest_tid) AS ranges_ordered,
       min(smallest_tid) <= '(0,2)' AS starts_at_the_first_rows
  FROM stratago.sstables('f');
SELECT stratago.relation_size('f') > 0 AS has_bytes;
-- the total: the engine's bytes plus PostgreSQL's files (indexes, TOAST,
-- the empty main fork), which pg_total_relation_size alone sees
SELECT stratago.total_relation_size('f') =
         stratago.relation_size('f') + pg_total_relation_size('f') AS strata_total,
       stratago.total_relation_size('f') > pg_total_relation_size('f') AS sees_the_engine;
-- table_stats per level agrees with the SSTables listed, level by level
SELECT array_length(t.level_sstables, 1) AS levels,
       t.level_sstables[1] = t.l0_sstables AS l0_agrees,
       (SELECT sum(x) FROM unnest(t.level_sstables) x) = t.sstables AS count_agrees,
       (SELECT sum(x) FROM unnest(t.level_bytes) x) = t.sstable_bytes AS bytes_agree,
       (SELECT bool_and(t.level_sstables[s.level + 1] = s.n AND t.level_bytes[s.level + 1] = s.b)
          FROM (SELECT level, count(*) AS n, sum(bytes) AS b
                  FROM stratago.sstables('f') GROUP BY level) s) AS per_level_agrees
  FROM stratago.table_stats('f') t;

-- flush of an empty table, and of a table with nothing in memory
CREATE TABLE empty_t (x int) USING strata;
SELECT stratago.flush('empty_t');
SELECT stratago.compact('empty_t');
SELECT count(*) FROM stratago.sstables('empty_t');
SELECT stratago.flush('f');

-- bad arguments: every function of the extension taking a regclass, with
-- NULL (STRICT: no call), a heap table, an index, a view and the old oid
-- of a dropped strata table; each must fail with PostgreSQL's error style
-- (an errcode, a short lower-case message), never crash.
CREATE TABLE h (x int PRIMARY KEY) USING heap;
SELECT stratago.total_relation_size('h') = pg_total_relation_size('h') AS heap_total;
CREATE VIEW v AS SELECT 1 AS x;
CREATE TABLE gone (x int) USING strata;
INSERT INTO gone VALUES (1);
SELECT 'gone'::regclass::oid AS gone_oid \gset
SELECT set_config('strata.gone_oid', :'gone_oid', false) IS NOT NULL AS set;
DROP TABLE gone;
DO $$
DECLARE
	fn regprocedure;
	arg text;
	state text;
	msg text;
	detail text;
	n bigint;
BEGIN
	FOR fn IN
		SELECT p.oid::regprocedure
		  FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
		 WHERE d.classid = 'pg_proc'::regclass AND d.deptype = 'e'
		   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'stratago')
		   AND p.proargtypes = '2205'::oidvector	-- (regclass)
		 ORDER BY p.proname
	LOOP
		FOREACH arg IN ARRAY ARRAY['NULL', 'h', 'h_pkey', 'v', 'dropped']
		LOOP
			BEGIN
				EXECUTE format('SELECT count(*) FROM %s($1)', fn::regproc)
					INTO n
					USING CASE arg
						WHEN 'NULL' THEN NULL
						WHEN 'dropped' THEN current_setting('strata.gone_oid')::oid::regclass
						ELSE arg::regclass END;
				RAISE NOTICE '%(%): no error, % row(s)', fn::regproc, arg, n;
			EXCEPTION WHEN OTHERS THEN
				GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE,
					msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
				RAISE NOTICE '%(%): % %', fn::regproc, arg, state,
					regexp_replace(msg, 'OID \d+', 'OID <old oid>')
					|| CASE WHEN detail <> '' THEN ' (' || detail || ')' ELSE '' END;
			END;
		END LOOP;
	END LOOP;
END $$;
-- the full report of one
SELECT stratago.flush('h');
SELECT stratago.compact(0);

-- engine WAL counters: zero with the postgres sink (TAP 014 tests them
-- with the engine sink)
SELECT * FROM stratago.wal_stats();

-- maintenance needs ownership; PUBLIC cannot even call it
CREATE ROLE strata_nobody;
GRANT USAGE ON SCHEMA stratago TO strata_nobody;
GRANT SELECT ON f TO strata_nobody;
SET ROLE strata_nobody;
SELECT stratago.flush('f');
SELECT count(*) FROM f;
SELECT sstables > 0 FROM stratago.table_stats('f');
SELECT * FROM stratago.wal_stats();
RESET ROLE;
GRANT EXECUTE ON FUNCTION stratago.flush(regclass) TO strata_nobody;
SET ROLE strata_nobody;
SELECT stratago.flush('f');
RESET ROLE;
-- what a table holds (TID ranges, versions) needs SELECT on it, as reading
-- it does; its size, like pg_relation_size, does not
REVOKE SELECT ON f FROM strata_nobody;
SET ROLE strata_nobody;
SELECT count(*) FROM stratago.sstables('f');
SELECT sstables FROM stratago.table_stats('f');
SELECT stratago.relation_size('f') > 0;
RESET ROLE;
GRANT SELECT (id) ON f TO strata_nobody;
SET ROLE strata_nobody;
SELECT count(*) FROM stratago.sstables('f');
RESET ROLE;
REVOKE SELECT (id) ON f FROM strata_nobody;

-- the monitoring views: one row per strata table, and the cluster
SELECT relname, engine_bytes = memtable_bytes + sstable_bytes AS engine_adds_up,
       total_bytes = stratago.total_relation_size('f') AS total_agrees,
       sstables = (SELECT count(*) FROM stratago.sstables('f')) AS sstables_agree,
       flush_bytes > 0 AS flushed, write_amplification > 0 AS has_write_amplification,
       compaction_pending_bytes = 0 AS nothing_pending,
       last_flush IS NOT NULL AND last_compaction IS NOT NULL AS has_times,
       versions_stored >= (SELECT sum(entries) FROM stratago.sstables('f'))
         AS counts_the_sstables,
       versions_stored >= (SELECT count(*) FROM f) AS a_version_per_row_at_least
  FROM stratago.tables WHERE relid = 'f'::regclass;
SELECT count(*) = (SELECT count(*) FROM pg_class c JOIN pg_am a ON a.oid = c.relam
                    WHERE a.amname = 'strata' AND c.relkind IN ('r', 'm')) AS every_strata_table
  FROM stratago.tables;
SELECT trees > 0 AS has_trees, memtable_arena_bytes > 0 AS has_arena,
       memtable_used_bytes <= memtable_arena_bytes AS used_within_arena,
       flushes_waiting >= 0 AND jobs_running >= 0 AS has_queue,
       slot_retained_wal_bytes >= 0 AS slot_seen
  FROM stratago.cluster_stats;
-- PUBLIC may not read them; pg_monitor reads every table's row, also of
-- tables it may not SELECT from
SET ROLE strata_nobody;
SELECT count(*) FROM stratago.tables;
SELECT count(*) FROM stratago.cluster_stats;
SELECT count(*) FROM stratago.maintenance_progress;
RESET ROLE;
GRANT pg_monitor TO strata_nobody;
SET ROLE strata_nobody;
SELECT has_table_privilege('f', 'SELECT') AS can_select_f,
       (SELECT count(*) FROM stratago.tables WHERE relid = 'f'::regclass) AS sees_f;
SELECT trees > 0 AS monitor_sees_the_cluster FROM stratago.cluster_stats;
-- the worker's current job: a row only while it flushes or compacts
SELECT count(*) <= 1 AS at_most_one_job FROM stratago.maintenance_progress;
RESET ROLE;
DROP OWNED BY strata_nobody;
DROP ROLE strata_nobody;

DROP TABLE f, empty_t, h;
DROP VIEW v;

-- a rolled-back DROP TABLE leaves the table whole: its rows in memtables
-- and in SSTables, through a checkpoint and sweeps of the worker, and it
-- can still be flushed and compacted
CREATE TABLE keepme (x int, pad text) USING strata;
INSERT INTO keepme SELECT g, repeat('k', 50) FROM generate_series(1, 3000) g;
SELECT stratago.flush('keepme');
INSERT INTO keepme SELECT g, repeat('k', 50) FROM generate_series(3001, 5000) g;
BEGIN;
DROP TABLE keepme;
ROLLBACK;
CHECKPOINT;
SELECT pg_sleep(0.6);	-- three rounds of the worker (naptime 200ms) and its sweep
SELECT count(*), sum(x) FROM keepme;
SELECT stratago.flush('keepme');
SELECT count(*), sum(x) FROM keepme;
SELECT stratago.compact('keepme');
SELECT count(*), sum(x), min(pad) = max(pad) AS pads_intact FROM keepme;
SELECT memtable_bytes = 0 AS all_flushed, sstables > 0 AS has_sstables
  FROM stratago.table_stats('keepme');
DROP TABLE keepme;

-- a dropped table's engine files are removed by the maintenance worker once
-- PostgreSQL has removed the relation's own file (after the next checkpoint)
CREATE TABLE dropme (x int) USING strata;
INSERT INTO dropme SELECT generate_series(1, 100);
SELECT stratago.flush('dropme');
SELECT format('%s_%s_', CASE WHEN reltablespace = 0 THEN 1663 ELSE reltablespace END,
              relfilenode) AS tree_prefix
  FROM pg_class WHERE relname = 'dropme' \gset
SELECT 'stratago/' || oid AS db_dir FROM pg_database WHERE datname = current_database() \gset
SELECT count(*) AS trees FROM pg_ls_dir(:'db_dir') d WHERE d LIKE :'tree_prefix' || '%';
SELECT set_config('strata.db_dir', :'db_dir', false),
       set_config('strata.tree_prefix', :'tree_prefix', false) \gset
DROP TABLE dropme;
CHECKPOINT;
DO $$
BEGIN
	FOR i IN 1 .. 300 LOOP
		EXIT WHEN NOT EXISTS (SELECT FROM pg_ls_dir(current_setting('strata.db_dir')) d
							  WHERE d LIKE current_setting('strata.tree_prefix') || '%');
		PERFORM pg_sleep(0.1);
	END LOOP;
END $$;
SELECT count(*) AS trees FROM pg_ls_dir(:'db_dir') d WHERE d LIKE :'tree_prefix' || '%';
