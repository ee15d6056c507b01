--
-- The extension: the access method it registers, table creation through
-- every route a user has, clear errors for what is not implemented yet,
-- the GUC prefix, the maintenance worker and the engine folder.
--
CREATE EXTENSION stratago;

SELECT amname, amtype, amhandler::regproc FROM pg_am WHERE amname = 'strata';
SELECT e.extversion, n.nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'stratago';

-- USING strata
CREATE TABLE t1 (id int NOT NULL, payload text) USING strata;
\d+ t1

-- default_table_access_method
SET default_table_access_method = strata;
CREATE TABLE t2 (id int);
RESET default_table_access_method;
SELECT c.relname, a.amname
  FROM pg_class c JOIN pg_am a ON a.oid = c.relam
 WHERE c.relname IN ('t1', 't2') ORDER BY 1;

-- like heap, the relation has an smgr main fork (empty: rows live in the engine)
SELECT pg_relation_filepath('t1') IS NOT NULL AS has_filepath,
       pg_relation_size('t1') AS smgr_bytes;


CREATE INDEX t2_id_idx ON t2 (id);

-- TRUNCATE, also inside a transaction that rolls back
TRUNCATE t2;
BEGIN;
TRUNCATE t2;
ROLLBACK;
BEGIN;
CREATE TABLE t_same_xact (id int) USING strata;
TRUNCATE t_same_xact;
COMMIT;
DROP TABLE t_same_xact;

-- table rewrites work (sql/rewrites.sql checks the data)
VACUUM FULL t2;
CLUSTER t2 USING t2_id_idx;

-- plain VACUUM visits strata tables without error
VACUUM t2;

-- GUCs live under the reserved stratago. prefix
SHOW stratago.maintenance_naptime;
SET stratago.no_such_setting = 1;

-- the maintenance worker runs
SELECT count(*) AS maintenance_workers
  FROM pg_stat_activity WHERE backend_type = 'stratago maintenance';

-- the engine's folder exists in the data directory
SELECT isdir FROM pg_stat_file('stratago');

-- the extension cannot be dropped while strata tables depend on it
DROP EXTENSION stratago;

DROP TABLE t1, t2;
DROP EXTENSION stratago;
SELECT count(*) FROM pg_am WHERE amname = 'strata';
