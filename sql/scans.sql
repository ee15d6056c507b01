--
-- Scans of strata tables and what they rely on, each checked against a
-- sequential scan (or a heap twin) so a wrong answer shows:
--   * UPDATE/DELETE ... WHERE CURRENT OF after the row moved to a new TID,
--     and currtid2 (tuple_get_latest_tid); TID scans of live, deleted,
--     moved and out-of-range TIDs;
--   * index and bitmap scans of hash, GIN, GiST, SP-GiST and BRIN indexes
--     before and after updates that keep or change the TID, and deletes;
--   * index_delete_tuples and index_fetch_tuple's all_dead keep btree
--     indexes from growing under update churn and rolled-back inserts;
--   * lossy bitmap pages (scan_bitmap_next_block/tuple, work_mem 64kB);
--   * parallel sequential scans really run in workers; TABLESAMPLE;
--   * ANALYZE on a table larger than the sample agrees with heap's, and the
--     planner picks the same plan shapes as for heap.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stratago;
RESET client_min_messages;
SET default_table_access_method = strata;

-- EXPLAIN ANALYZE with every non-zero number shown as N
CREATE FUNCTION explain_n(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
	l text;
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || q LOOP
		RETURN NEXT regexp_replace(l, '[1-9][0-9]*', 'N', 'g');
	END LOOP;
END $$;

-- the rows a query returns, as "count:sum of ids:sum of their hashes"
CREATE FUNCTION digest(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r text;
BEGIN
	EXECUTE 'SELECT count(*) || '':'' || coalesce(sum(id), 0) || '':'' || coalesce(sum(hashint4(id)), 0) FROM ('
		|| q || ') s' INTO r;
	RETURN r;
END $$;

-- the same, by a sequential scan
CREATE FUNCTION seq_digest(q text) RETURNS text LANGUAGE sql
	SET enable_seqscan = on SET enable_indexscan = off SET enable_bitmapscan = off
	SET enable_indexonlyscan = off SET enable_tidscan = off
	AS $$ SELECT digest(q) $$;

-- does the current plan return what a sequential scan returns? (and how many)
CREATE FUNCTION same_as_seq(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	planned text := digest(q);
	seq text := seq_digest(q);
BEGIN
	RETURN CASE WHEN planned = seq THEN 'same ' || split_part(planned, ':', 1) || ' rows'
		ELSE 'DIFFERENT: ' || planned || ' vs seq ' || seq END;
END $$;

----------------------------------------------------------------------------
-- WHERE CURRENT OF and TID scans (tuple_get_latest_tid, tuple_tid_valid)
----------------------------------------------------------------------------
CREATE TABLE cur (id int, k int, v text);
CREATE INDEX cur_k ON cur (k);
INSERT INTO cur SELECT g, g, 'v' || g FROM generate_series(1, 5) g;
BEGIN;
DECLARE c CURSOR FOR SELECT id, k, v FROM cur WHERE id >= 2 ORDER BY id FOR UPDATE;
FETCH c;
-- k is indexed: the row moves from (0,2) to a new TID
UPDATE cur SET k = k + 100 WHERE CURRENT OF c RETURNING ctid, *;
-- the cursor still names (0,2): the move is followed
UPDATE cur SET v = 'second' WHERE CURRENT OF c RETURNING ctid, *;
-- two moves away now
UPDATE cur SET k = k + 100 WHERE CURRENT OF c RETURNING ctid, *;
DELETE FROM cur WHERE CURRENT OF c RETURNING ctid, *;
FETCH c;
COMMIT;
-- a cursor without FOR UPDATE, its row moved by another statement
BEGIN;
DECLARE c2 CURSOR FOR SELECT id FROM cur WHERE id = 3;
FETCH c2;
UPDATE cur SET k = 300 WHERE id = 3;
UPDATE cur SET v = 'via cursor' WHERE CURRENT OF c2 RETURNING ctid, *;
COMMIT;
SELECT ctid, * FROM cur ORDER BY id;
-- currtid2: moved, unchanged, never moved
SELECT currtid2('cur', '(0,3)') AS moved, currtid2('cur', '(0,4)') AS same,
       currtid2('cur', '(0,1)') AS first;

-- TID scans: live rows, the deleted row (0,7), TIDs rows moved from (0,2),
-- (0,3) and (0,6), a row id never allocated (0,9), offsets beyond the 291
-- row ids of a block, blocks past the end
EXPLAIN (COSTS OFF) SELECT * FROM cur WHERE ctid = '(0,1)';
SELECT ctid, * FROM cur WHERE ctid = '(0,1)';
SELECT ctid, * FROM cur WHERE ctid = '(0,7)';
SELECT ctid, * FROM cur WHERE ctid = '(0,3)';
SELECT ctid, * FROM cur WHERE ctid = '(0,0)';
SELECT ctid, * FROM cur WHERE ctid = '(0,292)';
SELECT ctid, * FROM cur WHERE ctid = '(4294967295,65535)';
EXPLAIN (COSTS OFF) SELECT * FROM cur
 WHERE ctid = ANY (ARRAY['(0,1)', '(0,5)', '(0,2)', '(0,6)', '(0,7)', '(0,8)', '(0,9)', '(0,300)', '(7,1)']::tid[]);
SELECT ctid, * FROM cur
 WHERE ctid = ANY (ARRAY['(0,1)', '(0,5)', '(0,2)', '(0,6)', '(0,7)', '(0,8)', '(0,9)', '(0,300)', '(7,1)']::tid[])
 ORDER BY id;
DROP TABLE cur;

----------------------------------------------------------------------------
-- Every index type is used, and returns what a sequential scan returns
----------------------------------------------------------------------------
CREATE TABLE sc (id int, t text, arr int[], j jsonb, p point, b box, note text);
INSERT INTO sc SELECT g, 'v' || (g % 500), ARRAY[g % 7, g % 11, g % 13],
       jsonb_build_object('g', g % 17, 'h', g % 3),
       point(g % 100, g / 100), box(point(g % 100, g / 100), point(g % 100 + 2, g / 100 + 2)),
       NULL
  FROM generate_series(1, 20000) g;
CREATE INDEX sc_hash ON sc USING hash (t);
CREATE INDEX sc_gin_arr ON sc USING gin (arr);
CREATE INDEX sc_gin_j ON sc USING gin (j jsonb_path_ops);
CREATE INDEX sc_gist ON sc USING gist (b);
CREATE INDEX sc_spgist ON sc USING spgist (p);
CREATE INDEX sc_brin ON sc USING brin (id) WITH (pages_per_range = 1);
ANALYZE sc;

SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM sc WHERE t = 'v77';
EXPLAIN (COSTS OFF) SELECT id FROM sc WHERE arr @> '{3, 5}';
EXPLAIN (COSTS OFF) SELECT id FROM sc WHERE j @> '{"g": 4, "h": 1}';
EXPLAIN (COSTS OFF) SELECT id FROM sc WHERE b && box '((10,10),(20,20))';
EXPLAIN (COSTS OFF) SELECT id FROM sc WHERE p <@ box '((10,10),(20,20))';
SET enable_indexscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM sc WHERE id BETWEEN 1000 AND 2500;
RESET enable_indexscan;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM sc WHERE t = 'v77';
EXPLAIN (COSTS OFF) SELECT id FROM sc WHERE b && box '((10,10),(20,20))';
EXPLAIN (COSTS OFF) SELECT id FROM sc WHERE p <@ box '((10,10),(20,20))';
RESET enable_bitmapscan;

CREATE TABLE sc_queries (name text, q text);
INSERT INTO sc_queries VALUES
	('hash', $$SELECT id FROM sc WHERE t = 'v77'$$),
	('gin int[]', $$SELECT id FROM sc WHERE arr @> '{3, 5}'$$),
	('gin jsonb', $$SELECT id FROM sc WHERE j @> '{"g": 4, "h": 1}'$$),
	('gist box', $$SELECT id FROM sc WHERE b && box '((10,10),(20,20))'$$),
	('spgist point', $$SELECT id FROM sc WHERE p <@ box '((10,10),(20,20))'$$),
	('brin', $$SELECT id FROM sc WHERE id BETWEEN 1000 AND 2500$$);
-- BRIN is reached through its bitmap; for the others index scans and
-- bitmap scans both
SET enable_bitmapscan = off;
SELECT name, same_as_seq(q) FROM sc_queries WHERE name <> 'brin' AND name NOT LIKE 'gin%';
RESET enable_bitmapscan;
SET enable_indexscan = off;
SELECT name, same_as_seq(q) FROM sc_queries;
RESET enable_indexscan;

-- an update that keeps the TID (note is in no index), one that moves the
-- row (every indexed column changes, some rows into and out of the
-- queries' ranges), deletes, and a row updated twice
UPDATE sc SET note = 'kept' WHERE id % 7 = 0;
UPDATE sc SET t = 'v' || ((id + 1) % 500), arr = arr || (id % 5),
       j = j || jsonb_build_object('g', (id + 1) % 17),
       p = point(p[0] + 1, p[1]), b = box(point(p[0] + 1, p[1]), point(p[0] + 3, p[1] + 2)),
       id = id + 1
 WHERE id % 11 = 0;
DELETE FROM sc WHERE id % 13 = 0;
UPDATE sc SET t = 'v77', arr = '{3, 5}', note = 'twice' WHERE id IN (1001, 1002, 30);
UPDATE sc SET t = 'v77', arr = '{3, 5}', note = 'twice' WHERE id IN (1001, 1002, 30);
SET enable_bitmapscan = off;
SELECT name, same_as_seq(q) FROM sc_queries WHERE name <> 'brin' AND name NOT LIKE 'gin%';
RESET enable_bitmapscan;
SET enable_indexscan = off;
SELECT name, same_as_seq(q) FROM sc_queries;
RESET enable_indexscan;
RESET enable_seqscan;
DROP TABLE sc, sc_queries;

----------------------------------------------------------------------------
-- Index entries of dead rows are deleted as btree pages fill, so churn does
-- not grow an index (autovacuum is off: VACUUM plays no part)
----------------------------------------------------------------------------
-- (a) bottom-up deletion: 100 rows, each update changes v and so moves the
-- row to a new TID, and churn_k gets a new entry for an unchanged key. The
-- executor marks those inserts "index unchanged", btree asks
-- index_delete_tuples which old entries are dead, and keeps one leaf page.
-- Without deletion 30000 entries need 15 or more leaf pages even
-- deduplicated (6 bytes per TID).
CREATE TABLE churn (k int, v int) WITH (autovacuum_enabled = off);
CREATE INDEX churn_k ON churn (k);
CREATE INDEX churn_v ON churn (v);
INSERT INTO churn SELECT g, 0 FROM generate_series(1, 100) g;
SELECT ctid AS before FROM churn WHERE k = 1 \gset
DO $$
BEGIN
	FOR i IN 1..300 LOOP
		UPDATE churn SET v = v + 1;
		COMMIT;
	END LOOP;
END $$;
SELECT ctid <> :'before' AS moved, v FROM churn WHERE k = 1;
SELECT pg_relation_size('churn_k') / current_setting('block_size')::int AS churn_k_pages
 WHERE pg_relation_size('churn_k') / current_setting('block_size')::int > 4;
SELECT pg_relation_size('churn_k') <= 4 * current_setting('block_size')::int AS churn_k_bounded;
SET enable_seqscan = off;
SELECT count(*), sum(k), min(v), max(v) FROM churn WHERE k BETWEEN 1 AND 100;
RESET enable_seqscan;
DROP TABLE churn;

-- (b) a savepoint inserts key 1 and rolls back, 1500 times, with an index
-- scan in between; the primary key keeps one leaf page (1500 entries need
-- 4 pages or more). Two paths find the rolled-back entries dead when the
-- page fills: index_fetch_tuple's all_dead (the uniqueness check and the
-- index scan mark them LP_DEAD for simple deletion) and index_delete_tuples
-- (btree runs bottom-up deletion in a unique index holding duplicates).
-- Either suffices; with both broken the index grows.
CREATE TABLE spk (k int PRIMARY KEY, v text) WITH (autovacuum_enabled = off);
SET enable_seqscan = off;
DO $$
BEGIN
	FOR i IN 1..1500 LOOP
		BEGIN
			INSERT INTO spk VALUES (1, 'rolled back');
			RAISE EXCEPTION 'undo';
		EXCEPTION WHEN raise_exception THEN
			NULL;
		END;
		PERFORM * FROM spk WHERE k = 1;
	END LOOP;
END $$;
RESET enable_seqscan;
SELECT pg_relation_size('spk_pkey') / current_setting('block_size')::int AS spk_pkey_pages
 WHERE pg_relation_size('spk_pkey') / current_setting('block_size')::int > 3;
SELECT pg_relation_size('spk_pkey') <= 3 * current_setting('block_size')::int AS spk_pkey_bounded;
INSERT INTO spk VALUES (1, 'kept');
SELECT * FROM spk;
DROP TABLE spk;

----------------------------------------------------------------------------
-- Lossy bitmap pages: with work_mem 64kB a bitmap over 1031 strata blocks
-- no longer fits, about half of them turn lossy and every row id of a lossy
-- block is fetched and rechecked
----------------------------------------------------------------------------
CREATE TABLE big (id int, k int, v int);
INSERT INTO big SELECT g, g % 10, 0 FROM generate_series(1, 300000) g;
CREATE INDEX big_k ON big (k);
ANALYZE big;
SET max_parallel_workers_per_gather = 0;
SET enable_seqscan = off;
SET enable_indexscan = off;
SET work_mem = '64kB';
SELECT explain_n('SELECT id FROM big WHERE k = 3');
SELECT same_as_seq('SELECT id FROM big WHERE k = 3');
-- updates that keep the TID, that move the row (k changes, into and out of
-- the range), and deletes
UPDATE big SET v = 1 WHERE id % 31 = 0;
UPDATE big SET k = CASE WHEN id % 17 = 0 THEN 3 ELSE 4 END WHERE id % 17 = 0 OR id % 23 = 3;
DELETE FROM big WHERE id % 19 = 0;
SELECT explain_n('SELECT id FROM big WHERE k = 3');
SELECT same_as_seq('SELECT id FROM big WHERE k = 3');
RESET work_mem;
RESET enable_indexscan;
RESET enable_seqscan;
RESET max_parallel_workers_per_gather;

----------------------------------------------------------------------------
-- Parallel sequential scans run in the workers (the leader only gathers)
-- and see every row once; TABLESAMPLE
----------------------------------------------------------------------------
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SELECT explain_n('SELECT count(*), sum(id), sum(k) FROM big WHERE v = 0');
CREATE TABLE par AS SELECT count(*) AS n, sum(id) AS s, sum(k) AS sk FROM big WHERE v = 0;
RESET parallel_leader_participation;
SET max_parallel_workers_per_gather = 0;
SELECT (SELECT row(count(*), sum(id), sum(k)) FROM big WHERE v = 0) =
       (SELECT row(n, s, sk) FROM par) AS parallel_same_as_serial;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP TABLE par;

-- the same seed picks the same rows, another seed others
CREATE FUNCTION sample_ids(method text, pct float8, seed int) RETURNS int[]
LANGUAGE plpgsql AS $$
DECLARE
	r int[];
BEGIN
	EXECUTE format('SELECT array_agg(id ORDER BY id) FROM big TABLESAMPLE %s (%s) REPEATABLE (%s)',
				   method, pct, seed) INTO r;
	RETURN r;
END $$;
SELECT count(*) FROM big;
SELECT m, a = b AS same_seed_same_rows, a <> c AS other_seed_other_rows,
       cardinality(a) BETWEEN 0.035 * 278000 AND 0.065 * 278000 AS plausible_count
  FROM (SELECT m, sample_ids(m, 5, 42) AS a, sample_ids(m, 5, 42) AS b, sample_ids(m, 5, 43) AS c
          FROM unnest(ARRAY['SYSTEM', 'BERNOULLI']) m) s;
-- SYSTEM takes whole blocks of 291 row ids: every row of a sampled block
WITH s AS (SELECT (ctid::text::point)[0]::int AS blk, count(*) AS n
             FROM big TABLESAMPLE SYSTEM (5) REPEATABLE (42) GROUP BY 1)
SELECT count(*) > 10 AS some_blocks,
       bool_and(n = (SELECT count(*) FROM big
                      WHERE ctid >= format('(%s,1)', blk)::tid
                        AND ctid <= format('(%s,291)', blk)::tid)) AS whole_blocks
  FROM s;
-- BERNOULLI picks rows from every block
SELECT count(DISTINCT (ctid::text::point)[0]) > 1000 AS rows_from_most_blocks
  FROM big TABLESAMPLE BERNOULLI (5) REPEATABLE (42);
DROP TABLE big;

----------------------------------------------------------------------------
-- ANALYZE of a table larger than its sample (100000 rows, 30000 sampled)
-- gives statistics close to heap's on the same rows, and the same plans
----------------------------------------------------------------------------
CREATE TABLE st (id int PRIMARY KEY, a int, b int, c int, d text);
INSERT INTO st SELECT g, g % 100, CASE WHEN g % 5 = 0 THEN NULL ELSE g % 1000 END,
       CASE WHEN g % 10 < 5 THEN 1 WHEN g % 10 < 8 THEN 2 ELSE g END,
       'd' || g
  FROM generate_series(1, 100000) g;
CREATE INDEX st_a ON st (a);
CREATE TABLE st_heap (LIKE st) USING heap;
INSERT INTO st_heap SELECT * FROM st;
ALTER TABLE st_heap ADD PRIMARY KEY (id);
CREATE INDEX st_heap_a ON st_heap (a);
ANALYZE st, st_heap;
CREATE FUNCTION sort_mcv(anyarray) RETURNS text[] LANGUAGE sql
	AS $$ SELECT array_agg(v ORDER BY v::int) FROM unnest($1::text::text[]) v $$;
SELECT abs(s.reltuples - h.reltuples) <= 0.05 * h.reltuples AS reltuples_close,
       abs(s.reltuples - 100000) <= 5000 AS reltuples_true
  FROM pg_class s, pg_class h WHERE s.relname = 'st' AND h.relname = 'st_heap';
SELECT attname,
       abs(s.null_frac - h.null_frac) <= 0.02 AS null_frac,
       sign(s.n_distinct) = sign(h.n_distinct) AND
         abs(s.n_distinct - h.n_distinct) <= 0.1 * abs(h.n_distinct) AS n_distinct,
       CASE attname
         WHEN 'a' THEN sort_mcv(s.most_common_vals) = sort_mcv(h.most_common_vals)
         WHEN 'c' THEN (s.most_common_vals::text::text[])[1:2] = (h.most_common_vals::text::text[])[1:2]
       END AS mcvs,
       coalesce(abs(s.most_common_freqs[1] - h.most_common_freqs[1]) <= 0.02, true) AS top_freq,
       (s.histogram_bounds IS NULL) = (h.histogram_bounds IS NULL) AS histogram
  FROM pg_stats s JOIN pg_stats h USING (attname)
 WHERE s.tablename = 'st' AND h.tablename = 'st_heap'
 ORDER BY attname;
-- the known answers, for both: a has 100 values, all in the MCV list; b is
-- 20% NULL; c's most common values are 1 and 2; id and d are unique
SELECT tablename, attname, round(null_frac::numeric, 1) AS null_frac,
       CASE WHEN attname IN ('a', 'b', 'id', 'd') THEN n_distinct END AS n_distinct,
       CASE attname WHEN 'a' THEN cardinality(most_common_vals::text::text[])
                    WHEN 'c' THEN (most_common_vals::text::int[])[1] * 10 +
                                  (most_common_vals::text::int[])[2] END AS mcvs
  FROM pg_stats WHERE tablename IN ('st', 'st_heap')
 ORDER BY attname, tablename;

-- plan shapes: the same as for heap
CREATE FUNCTION plan_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	l text;
	r text := '';
BEGIN
	FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
		r := r || regexp_replace(l, '\mst_heap', 'st', 'g') || E'\n';
	END LOOP;
	RETURN r;
END $$;
CREATE TABLE plan_queries (name text, q text);
INSERT INTO plan_queries VALUES
	('point', 'SELECT * FROM st WHERE id = 4242'),
	('selective range', 'SELECT * FROM st WHERE id BETWEEN 100 AND 300'),
	('selective equality', 'SELECT * FROM st WHERE a = 7'),
	('whole table', 'SELECT count(*) FROM st'),
	('most rows', 'SELECT * FROM st WHERE a > 5');
SELECT name, plan_of(q) = plan_of(replace(q, 'FROM st', 'FROM st_heap')) AS same_as_heap
  FROM plan_queries;
EXPLAIN (COSTS OFF) SELECT * FROM st WHERE id = 4242;
EXPLAIN (COSTS OFF) SELECT * FROM st WHERE id BETWEEN 100 AND 300;
EXPLAIN (COSTS OFF) SELECT * FROM st WHERE a = 7;
EXPLAIN (COSTS OFF) SELECT count(*) FROM st;
DROP TABLE st, st_heap, plan_queries;

-- Hot rows: a small table whose rows were each updated many times holds
-- their versions in the memtable until a flush and a compaction drop
-- them. A sequential scan steps over every one of them, an index lookup
-- of one key does not: the planner is told the memtable's bytes as pages
-- (tableam.c, relation_estimate_size), so it stops choosing the scan.
CREATE TABLE hot (id int PRIMARY KEY, v int);
INSERT INTO hot SELECT g, 0 FROM generate_series(1, 10) g;
ANALYZE hot;
EXPLAIN (COSTS OFF) SELECT v FROM hot WHERE id = 3;
DO $$
BEGIN
	FOR i IN 1..400 LOOP
		UPDATE hot SET v = v + 1;
	END LOOP;
END $$;
SELECT count(*), sum(v) FROM hot;
SELECT (SELECT memtable_bytes FROM stratago.table_stats('hot')) > 10 * 8192 AS many_versions_in_memory;
EXPLAIN (COSTS OFF) SELECT v FROM hot WHERE id = 3;
SELECT v FROM hot WHERE id = 3;
-- flushed and compacted, the old versions are gone and the table is small again
SELECT stratago.compact('hot');
EXPLAIN (COSTS OFF) SELECT v FROM hot WHERE id = 3;
DROP TABLE hot;

DROP FUNCTION explain_n(text), digest(text), seq_digest(text), same_as_seq(text),
	sample_ids(text, float8, int), plan_of(text), sort_mcv(anyarray);
RESET default_table_access_method;
