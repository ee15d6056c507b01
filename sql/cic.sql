--
-- CREATE INDEX CONCURRENTLY and REINDEX ... CONCURRENTLY on strata tables:
-- plain, unique, expression, partial and INCLUDE indexes over rows that
-- same-TID updates, moving updates and deletes changed; a unique violation
-- leaving an invalid index that REINDEX CONCURRENTLY then rebuilds;
-- temporary, unlogged and partitioned tables; a parallel build. Each index
-- is compared with a sequential scan and checked with amcheck's
-- heapallindexed. (Concurrent writers during the build:
-- test/isolation/specs/strata-cic.spec.)
--
CREATE EXTENSION IF NOT EXISTS stratago;
CREATE EXTENSION IF NOT EXISTS amcheck;
SET default_table_access_method = strata;

CREATE TABLE cc (id int, a int, b text, c int, d text);
INSERT INTO cc SELECT g, g % 97, 'b' || g, g, 'd' FROM generate_series(1, 5000) g;
-- before any index on a or c exists these keep the TID (and change a)
UPDATE cc SET a = a + 1000 WHERE id % 5 = 0;
UPDATE cc SET b = b || '!' WHERE id % 3 = 0;
DELETE FROM cc WHERE id % 11 = 0;
CREATE UNIQUE INDEX cc_id ON cc (id);
-- now id is indexed: this update moves the rows to new TIDs
UPDATE cc SET id = id + 10000 WHERE id % 13 = 0;

CREATE INDEX CONCURRENTLY cc_a ON cc (a);
CREATE UNIQUE INDEX CONCURRENTLY cc_c ON cc (c) INCLUDE (a);
CREATE INDEX CONCURRENTLY cc_lower ON cc (lower(b));
CREATE INDEX CONCURRENTLY cc_part ON cc (c) WHERE a >= 1000;
CREATE INDEX CONCURRENTLY cc_hash ON cc USING hash (b);
-- valid and ready; a concurrent build needs no indcheckxmin
SELECT c.relname, i.indisvalid, i.indisready, i.indcheckxmin
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = 'cc'::regclass ORDER BY 1;

-- the indexes return what a sequential scan returns
CREATE FUNCTION cc_rows(q text, seq bool) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  r bigint;
BEGIN
  PERFORM set_config('enable_seqscan', CASE WHEN seq THEN 'on' ELSE 'off' END, true);
  PERFORM set_config('enable_indexscan', CASE WHEN seq THEN 'off' ELSE 'on' END, true);
  PERFORM set_config('enable_bitmapscan', CASE WHEN seq THEN 'off' ELSE 'on' END, true);
  EXECUTE 'SELECT count(*) FROM (' || q || ') s' INTO r;
  RETURN r;
END $$;
CREATE FUNCTION cc_hash_rows(q text, seq bool) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r text;
BEGIN
  PERFORM set_config('enable_seqscan', CASE WHEN seq THEN 'on' ELSE 'off' END, true);
  PERFORM set_config('enable_indexscan', CASE WHEN seq THEN 'off' ELSE 'on' END, true);
  PERFORM set_config('enable_bitmapscan', CASE WHEN seq THEN 'off' ELSE 'on' END, true);
  EXECUTE 'SELECT md5(string_agg(x::text, '','' ORDER BY x::text)) FROM (' || q || ') x' INTO r;
  RETURN r;
END $$;
CREATE TABLE cc_queries (name text, q text);
INSERT INTO cc_queries VALUES
  ('a', 'SELECT id, a FROM cc WHERE a BETWEEN 1000 AND 1050'),
  ('a low', 'SELECT id, a FROM cc WHERE a < 20'),
  ('c', 'SELECT id, c, a FROM cc WHERE c BETWEEN 100 AND 2000'),
  ('lower', 'SELECT id, b FROM cc WHERE lower(b) > ''b4'''),
  ('partial', 'SELECT id, c FROM cc WHERE a >= 1000 AND c < 3000'),
  ('hash', 'SELECT id, b FROM cc WHERE b = ''b15!''');
SELECT name, cc_rows(q, false) AS via_index, cc_rows(q, true) AS via_seqscan,
       cc_hash_rows(q, false) = cc_hash_rows(q, true) AS same_rows
  FROM cc_queries ORDER BY name;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM cc WHERE a >= 1000 AND c < 3000;
EXPLAIN (COSTS OFF) SELECT id FROM cc WHERE lower(b) = 'b4';
RESET enable_seqscan;
SELECT bt_index_check('cc_id', true), bt_index_check('cc_a', true),
       bt_index_check('cc_c', true), bt_index_check('cc_lower', true),
       bt_index_check('cc_part', true);

-- the new indexes now steer updates: d is in no index and keeps the TID;
-- b (in an expression and a hash index) and a (plain) move the row
SELECT ctid AS before FROM cc WHERE id = 1 \gset
UPDATE cc SET d = 'd1' WHERE id = 1;
SELECT ctid = :'before' AS same_tid_d_not_indexed FROM cc WHERE id = 1;
UPDATE cc SET b = 'B1' WHERE id = 1;
SELECT ctid = :'before' AS same_tid_b_indexed FROM cc WHERE id = 1;
SELECT ctid AS before FROM cc WHERE id = 2 \gset
UPDATE cc SET a = a + 1 WHERE id = 2;
SELECT ctid = :'before' AS same_tid_a_changed FROM cc WHERE id = 2;
SET enable_seqscan = off;
SELECT id, a, b FROM cc WHERE lower(b) = 'b1';
SELECT id, a FROM cc WHERE a = 3 AND id = 2;
RESET enable_seqscan;

-- REINDEX CONCURRENTLY: one index, the whole table
SELECT 'cc_a'::regclass::oid AS old_oid \gset
REINDEX INDEX CONCURRENTLY cc_a;
SELECT 'cc_a'::regclass::oid <> :old_oid AS rebuilt;
REINDEX TABLE CONCURRENTLY cc;
SELECT c.relname, i.indisvalid, i.indisready
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid = 'cc'::regclass ORDER BY 1;
SELECT name, cc_rows(q, false) = cc_rows(q, true) AS same_count,
       cc_hash_rows(q, false) = cc_hash_rows(q, true) AS same_rows
  FROM cc_queries ORDER BY name;
SELECT bt_index_check('cc_id', true), bt_index_check('cc_a', true),
       bt_index_check('cc_c', true), bt_index_check('cc_lower', true),
       bt_index_check('cc_part', true);

-- a unique build over duplicates fails and leaves an invalid index;
-- REINDEX CONCURRENTLY rebuilds it once the duplicate is gone
INSERT INTO cc VALUES (90001, 1, 'b2', 90001, 'dup');
CREATE UNIQUE INDEX CONCURRENTLY cc_b_uq ON cc (b);
SELECT indisvalid, indisready FROM pg_index WHERE indexrelid = 'cc_b_uq'::regclass;
DELETE FROM cc WHERE id = 90001;
REINDEX INDEX CONCURRENTLY cc_b_uq;
SELECT indisvalid, indisready FROM pg_index WHERE indexrelid = 'cc_b_uq'::regclass;
SELECT bt_index_check('cc_b_uq', true);
INSERT INTO cc VALUES (90002, 1, 'b2', 90002, 'dup');

-- not in a transaction block, as for heap
BEGIN;
CREATE INDEX CONCURRENTLY cc_never ON cc (b);
ROLLBACK;

-- temporary (built non-concurrently by PostgreSQL), unlogged, partitioned
CREATE TEMP TABLE cc_temp (id int, v int);
INSERT INTO cc_temp SELECT g, g FROM generate_series(1, 1000) g;
UPDATE cc_temp SET v = -v WHERE id % 2 = 0;
CREATE INDEX CONCURRENTLY cc_temp_v ON cc_temp (v);
REINDEX TABLE CONCURRENTLY cc_temp;
SELECT bt_index_check('cc_temp_v', true);
SET enable_seqscan = off;
SELECT count(*) FROM cc_temp WHERE v < 0;
RESET enable_seqscan;

CREATE UNLOGGED TABLE cc_unlogged (id int, v int);
INSERT INTO cc_unlogged SELECT g, g FROM generate_series(1, 1000) g;
UPDATE cc_unlogged SET v = -v WHERE id % 2 = 0;
CREATE UNIQUE INDEX CONCURRENTLY cc_unlogged_v ON cc_unlogged (v);
REINDEX TABLE CONCURRENTLY cc_unlogged;
SELECT bt_index_check('cc_unlogged_v', true);
SET enable_seqscan = off;
SELECT count(*) FROM cc_unlogged WHERE v < 0;
RESET enable_seqscan;

CREATE TABLE cc_parted (id int, v int) PARTITION BY RANGE (id);
CREATE TABLE cc_parted_1 PARTITION OF cc_parted FOR VALUES FROM (0) TO (500);
CREATE TABLE cc_parted_2 PARTITION OF cc_parted FOR VALUES FROM (500) TO (1001);
INSERT INTO cc_parted SELECT g, g FROM generate_series(1, 1000) g;
CREATE INDEX cc_parted_v ON cc_parted (v);
UPDATE cc_parted SET v = v + 5000 WHERE id % 4 = 0;
CREATE INDEX CONCURRENTLY cc_parted_1_id ON cc_parted_1 (id);
REINDEX TABLE CONCURRENTLY cc_parted;
SELECT c.relname, i.indisvalid
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid IN ('cc_parted_1'::regclass, 'cc_parted_2'::regclass)
 ORDER BY 1;
SELECT bt_index_check(indexrelid, true)
  FROM pg_index WHERE indrelid IN ('cc_parted_1'::regclass, 'cc_parted_2'::regclass);
SET enable_seqscan = off;
SELECT count(*) FROM cc_parted WHERE v > 5000;
RESET enable_seqscan;

-- a parallel build: the leader and a worker scan parts of the table; each
-- scan ends with the build (no leaked scan or snapshot: no WARNING)
CREATE TABLE cc_par (id int, v int);
INSERT INTO cc_par SELECT g, g % 1000 FROM generate_series(1, 20000) g;
UPDATE cc_par SET v = v + 5000 WHERE id % 7 = 0;
DELETE FROM cc_par WHERE id % 13 = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_maintenance_workers = 2;
SET maintenance_work_mem = '64MB';
CREATE INDEX CONCURRENTLY cc_par_v ON cc_par (v);
CREATE INDEX cc_par_id ON cc_par (id);
REINDEX INDEX CONCURRENTLY cc_par_v;
RESET min_parallel_table_scan_size;
RESET max_parallel_maintenance_workers;
RESET maintenance_work_mem;
SELECT bt_index_check('cc_par_v', true), bt_index_check('cc_par_id', true);
SELECT cc_rows('SELECT id FROM cc_par WHERE v >= 5000', false) AS via_index,
       cc_rows('SELECT id FROM cc_par WHERE v >= 5000', true) AS via_seqscan;

DROP TABLE cc, cc_queries, cc_temp, cc_unlogged, cc_parted, cc_par;
DROP FUNCTION cc_rows(text, bool), cc_hash_rows(text, bool);
RESET default_table_access_method;
