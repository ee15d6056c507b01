--
-- Index and bitmap scans read rows by row id through a row fetcher
-- (src/pg/read.c): row ids that ascend in small steps are read by stepping
-- one kept iterator forward instead of a point lookup per row. These
-- checks compare every answer with a heap twin that had the same writes,
-- with rows in memtables and SSTables, a flush and a compaction under an
-- open cursor, and writes of the cursor's own transaction after it opened;
-- stratago.read_stats() shows which path answered.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stratago;
RESET client_min_messages;

CREATE TABLE fet_t (id int PRIMARY KEY, v int, pad text) USING strata;
CREATE TABLE fet_twin (id int PRIMARY KEY, v int, pad text) USING heap;
CREATE INDEX fet_t_v ON fet_t (v);
CREATE INDEX fet_twin_v ON fet_twin (v);

CREATE FUNCTION fet_add(lo int, hi int) RETURNS void LANGUAGE sql AS $$
	INSERT INTO fet_t SELECT g, (g * 7919) % 1000, md5(g::text) FROM generate_series(lo, hi) g;
	INSERT INTO fet_twin SELECT g, (g * 7919) % 1000, md5(g::text) FROM generate_series(lo, hi) g;
$$;

-- Rows in key order: the first part in SSTables, the rest in the memtable.
SELECT fet_add(1, 12000);
SELECT stratago.flush('fet_t');
SELECT fet_add(12001, 20000);
DELETE FROM fet_t WHERE id % 97 = 0;
DELETE FROM fet_twin WHERE id % 97 = 0;
UPDATE fet_t SET v = v + 1 WHERE id % 89 = 0;
UPDATE fet_twin SET v = v + 1 WHERE id % 89 = 0;

SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT * FROM stratago.read_stats() \gset before_

-- An index range scan in row id order: stepped, hardly any lookup.
EXPLAIN (COSTS OFF) SELECT count(*), sum(v), md5(string_agg(pad, ',' ORDER BY id))
	FROM fet_t WHERE id BETWEEN 100 AND 15000;
SELECT (SELECT (count(*), sum(v), md5(string_agg(pad, ',' ORDER BY id)))
		  FROM fet_t WHERE id BETWEEN 100 AND 15000) =
	   (SELECT (count(*), sum(v), md5(string_agg(pad, ',' ORDER BY id)))
		  FROM fet_twin WHERE id BETWEEN 100 AND 15000) AS index_scan_agrees;
-- Lookups remain for rows no snapshot sees (whether the index may forget
-- them is decided afresh): about 150 deleted rows, and 170 rows the UPDATE
-- of an indexed column moved to new row ids, each of which is also one
-- jump far ahead. Without the fetcher, every one of the 14,900 rows.
SELECT s.fetcher_steps - :before_fetcher_steps > 14000 AS stepped,
	   s.lookups - :before_lookups < 600 AS few_lookups
  FROM stratago.read_stats() s;

-- Backward, and by an index whose order is not row id order: same answers.
SELECT array_agg(id ORDER BY id DESC) = (SELECT array_agg(id ORDER BY id DESC)
										   FROM fet_twin WHERE id BETWEEN 5000 AND 5400)
  FROM (SELECT id FROM fet_t WHERE id BETWEEN 5000 AND 5400 ORDER BY id DESC) x;
SELECT (SELECT array_agg(id ORDER BY v, id) FROM fet_t WHERE v BETWEEN 10 AND 40) =
	   (SELECT array_agg(id ORDER BY v, id) FROM fet_twin WHERE v BETWEEN 10 AND 40)
	   AS by_v_agrees;

-- A bitmap heap scan: its TIDs come in ascending order. A block whose
-- offsets are dense is read by stepping a tree scan through it (am_scan.c),
-- with neither a lookup nor a fetch per row; a sparse one through the
-- fetcher.
SET enable_indexscan = off;
SET enable_bitmapscan = on;
SELECT * FROM stratago.read_stats() \gset before_
EXPLAIN (COSTS OFF) SELECT count(*) FROM fet_t WHERE id BETWEEN 100 AND 15000;
SELECT (SELECT (count(*), sum(v), md5(string_agg(pad, ',' ORDER BY id)))
		  FROM fet_t WHERE id BETWEEN 100 AND 15000) =
	   (SELECT (count(*), sum(v), md5(string_agg(pad, ',' ORDER BY id)))
		  FROM fet_twin WHERE id BETWEEN 100 AND 15000)
	   AS bitmap_scan_agrees;
SELECT s.fetcher_steps - :before_fetcher_steps < 1000 AS bitmap_walked,
	   s.lookups - :before_lookups < 600 AS bitmap_few_lookups
  FROM stratago.read_stats() s;
SELECT * FROM stratago.read_stats() \gset before_
-- v = id * 7919 % 1000: about one row in five of every block
SELECT (SELECT (count(*), sum(id)) FROM fet_t WHERE v BETWEEN 100 AND 300) =
	   (SELECT (count(*), sum(id)) FROM fet_twin WHERE v BETWEEN 100 AND 300)
	   AS bitmap_by_v_agrees;
SELECT s.fetcher_steps + s.fetcher_seeks - :before_fetcher_steps - :before_fetcher_seeks > 3000
	   AS sparse_bitmap_fetched
  FROM stratago.read_stats() s;
-- A block of fewer than four rows is fetched too, however close they lie:
-- opening and seeking a tree scan costs more (TPC-B's one-row UPDATEs)
SELECT * FROM stratago.read_stats() \gset before_
SELECT (SELECT array_agg(v ORDER BY id) FROM fet_t WHERE id IN (1000, 1001, 1002)) =
	   (SELECT array_agg(v ORDER BY id) FROM fet_twin WHERE id IN (1000, 1001, 1002))
	   AS small_bitmap_agrees;
SELECT s.lookups + s.fetcher_steps + s.fetcher_seeks
		 - :before_lookups - :before_fetcher_steps - :before_fetcher_seeks >= 3
	   AS small_bitmap_fetched
  FROM stratago.read_stats() s;
-- Dense and sparse blocks together (one block in three whole, the rest at
-- one row in ten), and the transaction's own writes: rows changed, moved,
-- deleted and added after the bitmap's first use, some of them rolled back
-- to a savepoint.
CREATE FUNCTION fet_mixed_ids() RETURNS int[] LANGUAGE sql STABLE AS $$
	SELECT array_agg(g) FROM generate_series(1, 25000) g WHERE g / 291 % 3 = 0 OR g % 10 = 0
$$;
CREATE FUNCTION fet_mixed_agrees() RETURNS boolean LANGUAGE sql AS $$
	SELECT (SELECT (count(*), sum(v), md5(string_agg(pad, ',' ORDER BY id)))
			  FROM fet_t WHERE id = ANY (fet_mixed_ids())) =
		   (SELECT (count(*), sum(v), md5(string_agg(pad, ',' ORDER BY id)))
			  FROM fet_twin WHERE id = ANY (fet_mixed_ids()))
$$;
EXPLAIN (COSTS OFF) SELECT count(*) FROM fet_t WHERE id = ANY (fet_mixed_ids());
SELECT * FROM stratago.read_stats() \gset before_
BEGIN;
SELECT fet_mixed_agrees() AS mixed_agrees;
-- about 1,330 rows of sparse blocks through the fetcher; the dense blocks'
-- 6,700 rows walked
SELECT s.fetcher_steps + s.fetcher_seeks - :before_fetcher_steps - :before_fetcher_seeks
	   BETWEEN 1000 AND 2000 AS only_sparse_blocks_fetched
  FROM stratago.read_stats() s;
UPDATE fet_t SET v = -v WHERE id BETWEEN 2000 AND 2600;
UPDATE fet_twin SET v = -v WHERE id BETWEEN 2000 AND 2600;
UPDATE fet_t SET id = id + 30000 WHERE id BETWEEN 3000 AND 3100;
UPDATE fet_twin SET id = id + 30000 WHERE id BETWEEN 3000 AND 3100;
DELETE FROM fet_t WHERE id BETWEEN 4000 AND 4400;
DELETE FROM fet_twin WHERE id BETWEEN 4000 AND 4400;
SELECT fet_add(20001, 21000);
SELECT fet_mixed_agrees() AS mixed_agrees_own_writes;
SAVEPOINT sp;
DELETE FROM fet_t WHERE id BETWEEN 5000 AND 9000;
UPDATE fet_t SET pad = 'gone' WHERE id BETWEEN 9000 AND 12000;
ROLLBACK TO sp;
SELECT fet_mixed_agrees() AS mixed_agrees_after_rollback_to;
ROLLBACK;
SELECT fet_mixed_agrees() AS mixed_agrees_after_rollback;
RESET enable_indexscan;
SET enable_bitmapscan = off;

-- A nested loop: the inner index scan is rescanned for each outer row,
-- with row ids ascending, and far apart.
SELECT (SELECT (count(*), sum(v)) FROM generate_series(1, 20000, 7) g JOIN fet_t ON fet_t.id = g) =
	   (SELECT (count(*), sum(v)) FROM generate_series(1, 20000, 7) g JOIN fet_twin ON fet_twin.id = g)
	   AS nested_loop_agrees;
SELECT (SELECT (count(*), sum(v)) FROM generate_series(20000, 1, -613) g JOIN fet_t ON fet_t.id = g) =
	   (SELECT (count(*), sum(v)) FROM generate_series(20000, 1, -613) g JOIN fet_twin ON fet_twin.id = g)
	   AS far_apart_agrees;

-- A cursor over an index scan keeps its snapshot while its own
-- transaction changes rows ahead of it, the memtable is flushed and the
-- files are compacted: it must go on showing the rows as they were, as
-- heap's does.
CREATE FUNCTION fet_cursor_check() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	c refcursor;
	ct refcursor;
	r record;
	rt record;
	found_t boolean;
	n int := 0;
	differ int := 0;
BEGIN
	OPEN c FOR SELECT id, v FROM fet_t WHERE id > 0 ORDER BY id;
	OPEN ct FOR SELECT id, v FROM fet_twin WHERE id > 0 ORDER BY id;
	LOOP
		FETCH c INTO r;
		found_t := FOUND;
		FETCH ct INTO rt;
		IF found_t <> FOUND THEN
			RETURN format('after %s rows, one cursor ended before the other', n);
		END IF;
		EXIT WHEN NOT FOUND;
		n := n + 1;
		IF r IS DISTINCT FROM rt THEN
			differ := differ + 1;
		END IF;
		IF n = 50 THEN
			UPDATE fet_t SET v = -v WHERE id BETWEEN 60 AND 12500;
			UPDATE fet_twin SET v = -v WHERE id BETWEEN 60 AND 12500;
			DELETE FROM fet_t WHERE id BETWEEN 70 AND 80;
			DELETE FROM fet_twin WHERE id BETWEEN 70 AND 80;
			INSERT INTO fet_t SELECT g, g, 'new' FROM generate_series(20001, 21000) g;
			INSERT INTO fet_twin SELECT g, g, 'new' FROM generate_series(20001, 21000) g;
			PERFORM stratago.flush('fet_t');
			PERFORM stratago.compact('fet_t');
		END IF;
	END LOOP;
	RETURN format('%s rows, %s differ', n, differ);
END
$$;
SELECT fet_cursor_check();

-- A fetcher's pins are holds (src/pg/hold.h): given back when its scan
-- ends, however it ends. An index-scan cursor WITH HOLD (materialised at
-- COMMIT), one closed by ROLLBACK TO SAVEPOINT, one that outlives a failed
-- subtransaction, and one ended by an error: no reference is left behind
-- (it would show as a WARNING at commit), and the table stays whole.
BEGIN;
DECLARE wh CURSOR WITH HOLD FOR SELECT id, v FROM fet_t WHERE id > 0 ORDER BY id;
FETCH 3 FROM wh;
COMMIT;
FETCH 2 FROM wh;
CLOSE wh;
BEGIN;
SAVEPOINT s1;
DECLARE sc CURSOR FOR SELECT id FROM fet_t WHERE id > 100 ORDER BY id;
FETCH 2 FROM sc;
ROLLBACK TO SAVEPOINT s1;
DECLARE oc CURSOR FOR SELECT id FROM fet_t WHERE id > 200 ORDER BY id;
FETCH 1 FROM oc;
SAVEPOINT s2;
SELECT id / 0 FROM fet_t WHERE id > 300 ORDER BY id LIMIT 1;
ROLLBACK TO SAVEPOINT s2;
FETCH 1 FROM oc;
COMMIT;

-- and a new scan sees the changes
SELECT (SELECT (count(*), sum(v), sum(id)) FROM fet_t WHERE id > 0) =
	   (SELECT (count(*), sum(v), sum(id)) FROM fet_twin WHERE id > 0) AS after_agrees;
SELECT count(*) FROM fet_t WHERE id BETWEEN 70 AND 80;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT (SELECT (count(*), sum(v), sum(id)) FROM fet_t) =
	   (SELECT (count(*), sum(v), sum(id)) FROM fet_twin) AS seqscan_agrees;

-- Sequential scans read entries straight from a leaf (one block or one
-- memtable, engine/base/iter.h) while no other source has a key below
-- theirs, and go through the merge only where sources interleave: a row
-- whose versions are split over a memtable and files, a hot row's chain,
-- VACUUM's engine tombstones over its reaped rows. Every state below is
-- compared with a heap twin given the same writes.
CREATE TABLE leaf_t (id int, v int, pad text) USING strata;
CREATE TABLE leaf_twin (id int, v int, pad text) USING heap;
CREATE FUNCTION leaf_same() RETURNS boolean LANGUAGE sql AS $$
	SELECT (SELECT (count(*), sum(v), md5(string_agg(id || ':' || v || pad, ',' ORDER BY id)))
			  FROM leaf_t) =
		   (SELECT (count(*), sum(v), md5(string_agg(id || ':' || v || pad, ',' ORDER BY id)))
			  FROM leaf_twin);
$$;
CREATE FUNCTION leaf_do(q text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format(q, 'leaf_t');
	EXECUTE format(q, 'leaf_twin');
END $$;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SET enable_seqscan = on;
SELECT leaf_do('INSERT INTO %I SELECT g, g %% 100, md5(g::text) FROM generate_series(1, 30000) g');
SELECT stratago.flush('leaf_t');
-- a settled table: nearly every entry from a leaf
SELECT * FROM stratago.read_stats() \gset before_
SELECT leaf_same() AS settled_same;
SELECT s.scan_leaf_entries - :before_scan_leaf_entries >= 30000 AS from_leaves,
	   s.scan_stack_entries - :before_scan_stack_entries < 100 AS hardly_through_merge
  FROM stratago.read_stats() s;
-- versions split between the memtable and the files, a hot row, new rows
SELECT leaf_do('UPDATE %I SET v = v + 1 WHERE id %% 7 = 0');
SELECT leaf_do('DELETE FROM %I WHERE id %% 11 = 0');
SELECT leaf_do('INSERT INTO %I SELECT g, 1, md5(g::text) FROM generate_series(30001, 31000) g');
DO $$
BEGIN
	FOR i IN 1..30 LOOP
		PERFORM leaf_do('UPDATE %I SET v = v + 1 WHERE id IN (5, 6, 30500)');
	END LOOP;
END $$;
SELECT leaf_same() AS interleaved_same;
-- a parallel scan reads a block of 291 row ids at a time: the row a block's
-- read steps onto is given back and starts the next block without a seek
-- (read.h, strata_tree_scan_unread), here with deleted rows at the edges
SELECT leaf_do('DELETE FROM %I WHERE id %% 291 IN (0, 1, 290)');
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT count(*), sum(v) FROM leaf_t;
SELECT (SELECT (count(*), sum(v), sum(id)) FROM leaf_t) =
	   (SELECT (count(*), sum(v), sum(id)) FROM leaf_twin) AS parallel_same;
SELECT stratago.flush('leaf_t');
SELECT (SELECT (count(*), sum(v), sum(id)) FROM leaf_t) =
	   (SELECT (count(*), sum(v), sum(id)) FROM leaf_twin) AS parallel_flushed_same;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT stratago.flush('leaf_t');
SELECT leaf_same() AS flushed_same;
-- the transaction's own writes, and a savepoint rolled back
BEGIN;
SELECT leaf_do('UPDATE %I SET v = -v WHERE id BETWEEN 100 AND 300');
SAVEPOINT s;
SELECT leaf_do('DELETE FROM %I WHERE id BETWEEN 200 AND 250');
ROLLBACK TO SAVEPOINT s;
SELECT leaf_same() AS own_writes_same;
COMMIT;
-- VACUUM reaps the deleted rows: engine tombstones above their stubs,
-- first in the memtable, then flushed into a file of their own
VACUUM leaf_t;
VACUUM leaf_twin;
SELECT leaf_same() AS reaped_same;
SELECT stratago.flush('leaf_t');
SELECT leaf_same() AS reaped_flushed_same;
SELECT stratago.compact('leaf_t');
SELECT * FROM stratago.read_stats() \gset before_
SELECT leaf_same() AS compacted_same;
SELECT s.scan_leaf_entries - :before_scan_leaf_entries > 20000 AS compacted_from_leaves,
	   s.scan_stack_entries - :before_scan_stack_entries < 100 AS compacted_hardly_through_merge
  FROM stratago.read_stats() s;
RESET enable_indexscan;
RESET enable_bitmapscan;
RESET enable_seqscan;
DROP TABLE leaf_t, leaf_twin;
DROP FUNCTION leaf_same(), leaf_do(text);

-- The shared block cache (src/pg/blockcache.h): index fetches of another
-- backend find the blocks this one read; the answers stay the twin's.
-- A scan of a table a quarter of the cache or smaller fills it too, so
-- another backend's scan reads it from there (heap's rule for
-- shared_buffers; TAP 025 shows a bigger table kept out).
CREATE TABLE bc_t (id int PRIMARY KEY, pad text) USING strata;
CREATE TABLE bc_twin (id int PRIMARY KEY, pad text) USING heap;
INSERT INTO bc_t SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
INSERT INTO bc_twin SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
SELECT stratago.flush('bc_t');
SET enable_seqscan = off;
SET enable_bitmapscan = off;
CREATE FUNCTION bc_fetch_same() RETURNS boolean LANGUAGE sql AS $$
	SELECT count(*) = 50 AND bool_and(s.pad = h.pad)
	  FROM bc_twin h, LATERAL (SELECT pad FROM bc_t t WHERE t.id = h.id) s
	 WHERE h.id % 100 = 7;
$$;
SELECT bc_fetch_same() AS first_backend_same;
SELECT block_cache_misses >= 40 AS first_backend_filled FROM stratago.read_stats();
\c
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT bc_fetch_same() AS second_backend_same;
SELECT block_cache_hits >= 40 AS second_backend_hit, block_cache_misses < 10 AS few_misses
  FROM stratago.read_stats();
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT block_cache_hits AS hits_before, block_cache_misses AS misses_before
  FROM stratago.read_stats() \gset
SELECT count(*), sum(length(pad)) FROM bc_t;
SELECT block_cache_misses - :misses_before > 0 AS scan_filled_the_rest
  FROM stratago.read_stats();
\c
SELECT count(*), sum(length(pad)) FROM bc_t;
SELECT block_cache_hits > 0 AND block_cache_misses = 0 AS next_scan_all_hits
  FROM stratago.read_stats();
DROP TABLE bc_t, bc_twin;
DROP FUNCTION bc_fetch_same();
