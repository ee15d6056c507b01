-- tools/demo.sql — the demo workload run by tools/demo.sh: a strata table
-- next to the same data in heap, transactions, and the engine's view.
\set ON_ERROR_STOP 1
\echo '--- the strata access method'
CREATE EXTENSION stratago;
SELECT amname, amhandler FROM pg_am WHERE amname = 'strata';

\echo '--- an ordinary table, stored in an LSM tree'
CREATE TABLE events (id bigint NOT NULL, kind text, payload jsonb) USING strata;
INSERT INTO events
SELECT g, (ARRAY['click', 'view', 'buy'])[1 + g % 3],
       jsonb_build_object('user', g % 1000, 'amount', g % 97)
  FROM generate_series(1, 200000) g;
\d+ events

\echo '--- transactions: a rolled-back change leaves no trace'
BEGIN;
UPDATE events SET kind = 'refund' WHERE id <= 10;
ROLLBACK;
UPDATE events SET payload = payload || '{"checked": true}' WHERE id % 1000 = 0;
DELETE FROM events WHERE kind = 'view' AND id % 7 = 0;
SELECT kind, count(*), sum((payload->>'amount')::int) AS amount
  FROM events GROUP BY kind ORDER BY kind;

\echo '--- the engine: memtables flushed to compressed SSTables'
SELECT stratago.flush('events');
SELECT level, count(*) AS files, pg_size_pretty(sum(bytes)) AS size, sum(entries) AS versions
  FROM stratago.sstables('events') GROUP BY level ORDER BY level;
SELECT versions_written, pg_size_pretty(wal_bytes) AS engine_wal, flushes, compactions
  FROM stratago.table_stats('events');

\echo '--- size on disk against the same rows in heap'
CREATE TABLE events_heap USING heap AS SELECT * FROM events;
SELECT pg_size_pretty(stratago.relation_size('events')) AS strata,
       pg_size_pretty(pg_total_relation_size('events_heap')) AS heap;

\echo '--- the maintenance worker'
SELECT pid, backend_type FROM pg_stat_activity WHERE backend_type = 'stratago maintenance';
