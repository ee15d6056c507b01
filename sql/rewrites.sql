--
-- Table rewrites of strata tables keep every row, every index and the
-- access method; so do the commands that copy or move a whole database's
-- files (CREATE DATABASE ... TEMPLATE, ALTER DATABASE ... SET TABLESPACE).
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stratago;
CREATE EXTENSION IF NOT EXISTS amcheck;
RESET client_min_messages;

CREATE TABLE r (id int PRIMARY KEY, v text, n int) USING strata;
CREATE INDEX r_n ON r (n);
INSERT INTO r SELECT g, 'x' || g, g % 100 FROM generate_series(1, 5000) g;
UPDATE r SET n = n + 1 WHERE id % 3 = 0;
UPDATE r SET v = v || '!' WHERE id % 7 = 0;
DELETE FROM r WHERE id % 5 = 0;

-- (functions, not views: a view would pin the column types)
CREATE FUNCTION r_check(OUT rows bigint, OUT ids bigint, OUT ns numeric, OUT vlen bigint,
						OUT am name) LANGUAGE sql AS $$
	SELECT count(*), sum(id), sum(n), sum(length(v)),
	       (SELECT amname FROM pg_am a JOIN pg_class c ON c.relam = a.oid
	         WHERE c.oid = 'r'::regclass)
	  FROM r
$$;
CREATE FUNCTION r_index_check() RETURNS TABLE (rows bigint, with_n7 bigint) LANGUAGE plpgsql AS $$
BEGIN
	SET LOCAL enable_seqscan = off;
	SET LOCAL enable_bitmapscan = off;
	PERFORM bt_index_check('r_pkey', true);
	PERFORM bt_index_check('r_n', true);
	RETURN QUERY SELECT (SELECT count(*) FROM r WHERE id > 0), (SELECT count(*) FROM r WHERE n = 7);
END $$;
SELECT * FROM r_check();
SELECT * FROM r_index_check();
SELECT relfilenode AS before_node FROM pg_class WHERE relname = 'r' \gset

-- VACUUM FULL and CLUSTER: a new relfilenode, same rows
VACUUM FULL r;
SELECT * FROM r_check();
SELECT * FROM r_index_check();
CLUSTER r USING r_pkey;
SELECT * FROM r_check();
SELECT * FROM r_index_check();
-- CLUSTER stores the rows in the index's order, with new TIDs
CREATE TABLE rc (id int PRIMARY KEY, k int) USING strata;
CREATE INDEX rc_k ON rc (k);
INSERT INTO rc SELECT g, (g * 7919) % 1000 FROM generate_series(3000, 1, -1) g;
UPDATE rc SET k = k + 1 WHERE id % 3 = 0;
DELETE FROM rc WHERE id % 5 = 0;
SELECT count(*) FILTER (WHERE prev > id) > 0 AS out_of_order
  FROM (SELECT id, lag(id) OVER (ORDER BY ctid) AS prev FROM rc) s;
CLUSTER rc USING rc_pkey;
SELECT count(*) FILTER (WHERE prev > id) AS out_of_order, min(ctid), max(ctid)
  FROM (SELECT id, lag(id) OVER (ORDER BY ctid) AS prev, ctid FROM rc) s;
CLUSTER rc USING rc_k;
SELECT count(*) FILTER (WHERE prev > k) AS out_of_order
  FROM (SELECT k, lag(k) OVER (ORDER BY ctid) AS prev FROM rc) s;
SELECT count(*), sum(id), sum(k) FROM rc;
SELECT bt_index_check('rc_pkey', true), bt_index_check('rc_k', true);
DROP TABLE rc;
VACUUM (FULL, VERBOSE false) r;
SELECT relfilenode <> :before_node AS rewritten FROM pg_class WHERE relname = 'r';
SELECT age(relfrozenxid) < 100 AS relfrozenxid_set FROM pg_class WHERE relname = 'r';

-- column type change rewrites through the access method
ALTER TABLE r ALTER COLUMN n TYPE bigint;
SELECT * FROM r_check();
SELECT * FROM r_index_check();
SELECT pg_typeof(n) FROM r LIMIT 1;

-- SET ACCESS METHOD to heap and back
ALTER TABLE r SET ACCESS METHOD heap;
SELECT * FROM r_check();
SELECT * FROM r_index_check();
ALTER TABLE r SET ACCESS METHOD strata;
SELECT * FROM r_check();
SELECT * FROM r_index_check();

-- a heap table becomes a strata table
CREATE TABLE h (id int PRIMARY KEY, t text) USING heap;
INSERT INTO h SELECT g, repeat('h', g % 50) FROM generate_series(1, 1000) g;
ALTER TABLE h SET ACCESS METHOD strata;
SELECT count(*), sum(id), sum(length(t)) FROM h;
SELECT amname FROM pg_am a JOIN pg_class c ON c.relam = a.oid WHERE c.relname = 'h';
INSERT INTO h VALUES (1001, 'new');
UPDATE h SET t = 'changed' WHERE id = 1;
SELECT t FROM h WHERE id IN (1, 1001) ORDER BY id;

-- SET TABLESPACE moves the table (the engine's files stay under
-- $PGDATA/stratago; the relation's identity moves)
SET allow_in_place_tablespaces = true;
CREATE TABLESPACE regress_strata_ts LOCATION '';
ALTER TABLE r SET TABLESPACE regress_strata_ts;
SELECT * FROM r_check();
SELECT * FROM r_index_check();
SELECT spcname FROM pg_tablespace t JOIN pg_class c ON c.reltablespace = t.oid
 WHERE c.relname = 'r';
INSERT INTO r VALUES (100000, 'moved', 7);
SELECT * FROM r_index_check();
ALTER TABLE r SET TABLESPACE pg_default;
SELECT * FROM r_check();
SELECT * FROM r_index_check();
DROP TABLESPACE regress_strata_ts;

-- rolled back rewrites leave the table as it was
BEGIN;
ALTER TABLE r ALTER COLUMN v TYPE varchar(100);
ROLLBACK;
BEGIN;
ALTER TABLE r SET ACCESS METHOD heap;
ROLLBACK;
BEGIN;
TRUNCATE r;
CLUSTER r USING r_pkey;
ROLLBACK;
SELECT * FROM r_check();

-- CREATE DATABASE copies strata tables with both strategies, and the
-- copy moves to another tablespace and back (TAP 029 adds writes, crashes
-- and a standby)
SELECT current_database() AS db \gset
CREATE DATABASE regress_strata_copy TEMPLATE :"db" STRATEGY wal_log;
CREATE DATABASE regress_strata_copy2 TEMPLATE :"db" STRATEGY file_copy;
\c regress_strata_copy
SELECT * FROM r_check();
SELECT * FROM r_index_check();
\c regress_strata_copy2
SELECT * FROM r_check();
SELECT * FROM r_index_check();
\c :db
SET allow_in_place_tablespaces = true;
CREATE TABLESPACE regress_strata_ts2 LOCATION '';
ALTER DATABASE regress_strata_copy SET TABLESPACE regress_strata_ts2;
\c regress_strata_copy
SELECT * FROM r_check();
SELECT * FROM r_index_check();
\c :db
ALTER DATABASE regress_strata_copy SET TABLESPACE pg_default;
DROP DATABASE regress_strata_copy;
DROP DATABASE regress_strata_copy2;
DROP TABLESPACE regress_strata_ts2;
RESET allow_in_place_tablespaces;

DROP FUNCTION r_check();
DROP FUNCTION r_index_check();
DROP TABLE r, h;
