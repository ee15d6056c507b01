-- Temporary and unlogged strata tables: heap's semantics, in one session.
-- (Restarts, crashes, standbys and other sessions: TAP 012.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stratago;
CREATE EXTENSION IF NOT EXISTS amcheck;
RESET client_min_messages;
SET default_table_access_method = strata;

-- temporary tables: DML, rollback, savepoints, indexes, constraints
CREATE TEMP TABLE tt (id int PRIMARY KEY, v text, n int CHECK (n >= 0));
SELECT relpersistence, amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam
 WHERE relname = 'tt';
INSERT INTO tt SELECT g, 'v' || g, g FROM generate_series(1, 1000) g;
UPDATE tt SET v = 'upd' WHERE id <= 10;
UPDATE tt SET id = id + 10000 WHERE id BETWEEN 11 AND 15;
DELETE FROM tt WHERE id > 990 AND id < 10000;
BEGIN;
INSERT INTO tt VALUES (5000, 'gone', 1);
SAVEPOINT s;
DELETE FROM tt;
ROLLBACK TO SAVEPOINT s;
UPDATE tt SET n = n + 1 WHERE id = 1;
ROLLBACK;
INSERT INTO tt VALUES (1, 'dup', 1);
INSERT INTO tt VALUES (2000, 'neg', -1);
INSERT INTO tt VALUES (3, 'x', 3) ON CONFLICT (id) DO UPDATE SET v = 'conflict';
SELECT count(*), sum(id), count(*) FILTER (WHERE v = 'upd') AS upd FROM tt;
SELECT * FROM tt WHERE id IN (1, 3, 10011) ORDER BY id;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT v FROM tt WHERE id = 500;
SELECT v FROM tt WHERE id = 500;
RESET enable_seqscan;
-- flushed to SSTables, compacted, vacuumed: still the same rows
SELECT stratago.flush('tt');
SELECT stratago.compact('tt');
SELECT count(*) > 0 AS has_sstables FROM stratago.sstables('tt');
VACUUM tt;
ANALYZE tt;
SELECT count(*), sum(id) FROM tt;
-- TRUNCATE, transactional and in the creating transaction
BEGIN;
TRUNCATE tt;
SELECT count(*) FROM tt;
ROLLBACK;
SELECT count(*) FROM tt;
BEGIN;
CREATE TEMP TABLE tt2 (a int);
INSERT INTO tt2 VALUES (1), (2);
TRUNCATE tt2;
INSERT INTO tt2 VALUES (3);
COMMIT;
SELECT * FROM tt2;
-- ON COMMIT DELETE ROWS and ON COMMIT DROP
CREATE TEMP TABLE tdel (a int) ON COMMIT DELETE ROWS;
BEGIN;
INSERT INTO tdel SELECT generate_series(1, 100);
SELECT count(*) FROM tdel;
COMMIT;
SELECT count(*) FROM tdel;
BEGIN;
CREATE TEMP TABLE tdrop (a int) ON COMMIT DROP;
INSERT INTO tdrop VALUES (1);
SELECT count(*) FROM tdrop;
COMMIT;
SELECT count(*) FROM pg_class WHERE relname = 'tdrop';
-- with strata as the default, temporary tables of every kind of creation
CREATE TEMP TABLE tctas AS SELECT g AS a FROM generate_series(1, 50) g;
SELECT g AS a INTO TEMP tinto FROM generate_series(1, 5) g;
SELECT c.relname, a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam
 WHERE c.relname IN ('tctas', 'tinto') ORDER BY 1;
SELECT (SELECT count(*) FROM tctas), (SELECT sum(a) FROM tinto);
-- a rewrite (CLUSTER, ALTER TABLE ... TYPE) keeps the rows
CLUSTER tt USING tt_pkey;
ALTER TABLE tt ALTER COLUMN n TYPE bigint;
SELECT count(*), sum(id), sum(n) FROM tt;
-- amcheck: the index holds exactly the table's rows
SELECT bt_index_check('tt_pkey', true);

-- unlogged tables
CREATE UNLOGGED TABLE ul (id int PRIMARY KEY, v text);
SELECT relpersistence FROM pg_class WHERE relname = 'ul';
INSERT INTO ul SELECT g, 'u' || g FROM generate_series(1, 2000) g;
UPDATE ul SET v = 'upd' WHERE id % 100 = 0;
DELETE FROM ul WHERE id > 1900;
BEGIN;
DELETE FROM ul;
ROLLBACK;
SELECT count(*), sum(id), count(*) FILTER (WHERE v = 'upd') AS upd FROM ul;
SELECT stratago.flush('ul');
SELECT count(*), sum(id) FROM ul;
SELECT bt_index_check('ul_pkey', true);
-- SET LOGGED and back: rewrites into a tree of the other persistence
ALTER TABLE ul SET LOGGED;
SELECT relpersistence FROM pg_class WHERE relname = 'ul';
SELECT count(*), sum(id) FROM ul;
ALTER TABLE ul SET UNLOGGED;
SELECT relpersistence FROM pg_class WHERE relname = 'ul';
SELECT count(*), sum(id) FROM ul;
SELECT bt_index_check('ul_pkey', true);
-- an unlogged partition and a logged one under one parent
CREATE TABLE pt (k int, v text) PARTITION BY RANGE (k);
CREATE UNLOGGED TABLE pt1 PARTITION OF pt FOR VALUES FROM (0) TO (100);
CREATE TABLE pt2 PARTITION OF pt FOR VALUES FROM (100) TO (200);
INSERT INTO pt SELECT g, 'p' || g FROM generate_series(0, 199) g;
UPDATE pt SET k = k + 100 WHERE k < 10;
SELECT tableoid::regclass, count(*) FROM pt GROUP BY 1 ORDER BY 1;
DROP TABLE pt, ul;
DROP TABLE tt;
