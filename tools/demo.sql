-- tools/demo.sql — the demo workload run by tools/demo.sh.
\echo '--- the strata access method'
CREATE EXTENSION stratago;
SELECT amname, amhandler FROM pg_am WHERE amname = 'strata';

\echo '--- a strata table'
CREATE TABLE events (id bigint NOT NULL, kind text, payload jsonb) USING strata;
\d+ events

\echo '--- the maintenance worker'
SELECT pid, backend_type FROM pg_stat_activity WHERE backend_type = 'stratago maintenance';

\echo '--- what works today (see README "Status"): writes are not wired to the engine yet'
\set ON_ERROR_STOP 0
INSERT INTO events VALUES (1, 'click', '{"x": 1}');
\set ON_ERROR_STOP 1
