--
-- Indexes on strata tables: btree, hash, GIN, GiST, BRIN; unique and
-- primary keys; index, bitmap and TID range scans; updates that keep or
-- change the TID; amcheck over the result.
--
CREATE EXTENSION IF NOT EXISTS stratago;
CREATE EXTENSION IF NOT EXISTS amcheck;
SET default_table_access_method = strata;

CREATE TABLE items (id int PRIMARY KEY, grp int, name text, pos point);
INSERT INTO items SELECT g, g % 50, 'item ' || g, point(g % 100, g / 100)
  FROM generate_series(1, 10000) g;
CREATE INDEX items_grp ON items (grp);
CREATE INDEX items_hash ON items USING hash (name);
CREATE INDEX items_gin ON items USING gin (to_tsvector('simple', name));
CREATE INDEX items_gist ON items USING gist (pos);
CREATE INDEX items_brin ON items USING brin (id);
ANALYZE items;

-- plan shapes as for heap: point lookup, selective range, whole table
EXPLAIN (COSTS OFF) SELECT * FROM items WHERE id = 42;
EXPLAIN (COSTS OFF) SELECT * FROM items WHERE grp = 7;
EXPLAIN (COSTS OFF) SELECT count(*) FROM items;
SELECT * FROM items WHERE id = 42;
SELECT count(*) FROM items WHERE grp = 7;
SELECT id FROM items WHERE name = 'item 77';
SELECT count(*) FROM items WHERE to_tsvector('simple', name) @@ '77'::tsquery;
SELECT count(*) FROM items WHERE pos <@ box '((0,0),(9,9))';
SELECT count(*) FROM items WHERE id BETWEEN 100 AND 199;

-- every scan kind returns the same rows
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*), sum(id) FROM items WHERE grp = 7;
RESET enable_bitmapscan;
SET enable_indexscan = off;
SELECT count(*), sum(id) FROM items WHERE grp = 7;
RESET enable_indexscan;
RESET enable_seqscan;
SELECT count(*), sum(id) FROM items WHERE grp = 7;

-- parallel sequential scans split the row ids between workers
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT count(*), sum(id) FROM items WHERE name LIKE 'item%';
SELECT count(*), sum(id) FROM items WHERE name LIKE 'item%';
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;

-- ANALYZE gives the same statistics as heap on the same data (the table is
-- smaller than the sample, so both read every row)
CREATE TABLE stats_heap USING heap AS SELECT * FROM items;
ANALYZE items, stats_heap;
SELECT attname, s.null_frac = h.null_frac AS null_frac,
       s.n_distinct = h.n_distinct AS n_distinct,
       s.most_common_vals::text IS NOT DISTINCT FROM h.most_common_vals::text AS mcv,
       s.histogram_bounds::text IS NOT DISTINCT FROM h.histogram_bounds::text AS histogram,
       s.correlation IS NOT DISTINCT FROM h.correlation AS correlation
  FROM pg_stats s JOIN pg_stats h USING (attname)
 WHERE s.tablename = 'items' AND h.tablename = 'stats_heap'
 ORDER BY attname;
SELECT c1.reltuples = c2.reltuples AS same_reltuples
  FROM pg_class c1, pg_class c2 WHERE c1.relname = 'items' AND c2.relname = 'stats_heap';
DROP TABLE stats_heap;

-- TID range scan
EXPLAIN (COSTS OFF) SELECT id FROM items WHERE ctid BETWEEN '(1,1)' AND '(1,3)';
SELECT ctid, id FROM items WHERE ctid BETWEEN '(1,1)' AND '(1,3)';

-- TABLESAMPLE picks the same kind of sample as on heap
SELECT count(*) BETWEEN 2000 AND 8000 AS plausible FROM items TABLESAMPLE BERNOULLI (50) REPEATABLE (1);
SELECT count(*) > 0 AND count(*) < 10000 AS plausible FROM items TABLESAMPLE SYSTEM (50) REPEATABLE (1);
SELECT count(*) FROM items TABLESAMPLE BERNOULLI (100);
SELECT count(*) FROM items TABLESAMPLE SYSTEM (0);

-- unique and primary keys
INSERT INTO items VALUES (42, 0, 'dup', point(0,0));
CREATE UNIQUE INDEX items_name_uq ON items (name);
INSERT INTO items VALUES (10001, 0, 'item 5', point(0,0));
-- a key freed by a rolled-back savepoint can be used again
BEGIN;
SAVEPOINT s;
INSERT INTO items VALUES (20000, 1, 'temp', point(0,0));
ROLLBACK TO s;
INSERT INTO items VALUES (20000, 1, 'kept', point(0,0));
COMMIT;
SELECT id, name FROM items WHERE id = 20000;
-- updating a key that stays the same, and one that changes
UPDATE items SET grp = grp WHERE id = 42;
UPDATE items SET name = 'renamed 43' WHERE id = 43;
SELECT id, name FROM items WHERE name IN ('item 43', 'renamed 43');
UPDATE items SET id = 50000 WHERE id = 44;
SELECT id FROM items WHERE id IN (44, 50000);
DELETE FROM items WHERE id = 45;
SELECT count(*) FROM items WHERE id = 45;

-- an UPDATE that changes no indexed column keeps the TID; one that does moves it
SELECT ctid AS before FROM items WHERE id = 46 \gset
UPDATE items SET name = name WHERE id = 46;
SELECT ctid = :'before' AS same_tid_unchanged_keys FROM items WHERE id = 46;
UPDATE items SET pos = point(1,1) WHERE id = 46;
SELECT ctid = :'before' AS same_tid_gist_key_changed FROM items WHERE id = 46;
SELECT ctid AS before FROM items WHERE id = 46 \gset
DROP INDEX items_gist;
UPDATE items SET pos = point(2,2) WHERE id = 46;
SELECT ctid = :'before' AS same_tid_without_pos_index FROM items WHERE id = 46;

-- indexes built over rows that were updated in place see the newest values
CREATE TABLE inplace (id int, v int);
INSERT INTO inplace SELECT g, g FROM generate_series(1, 100) g;
UPDATE inplace SET v = v + 1000;
CREATE INDEX inplace_v ON inplace (v);
SET enable_seqscan = off;
SELECT count(*) FROM inplace WHERE v > 1000;
SELECT count(*) FROM inplace WHERE v <= 100;
RESET enable_seqscan;

-- every index agrees with the table
SELECT bt_index_check('items_pkey', true), bt_index_check('items_grp', true),
       bt_index_check('items_name_uq', true), bt_index_check('inplace_v', true);

-- CREATE INDEX CONCURRENTLY builds a valid index (more in cic.sql)
CREATE INDEX CONCURRENTLY items_later ON items (grp, id);
SELECT indisvalid, indisready FROM pg_index WHERE indexrelid = 'items_later'::regclass;
SELECT bt_index_check('items_later', true);
DROP INDEX items_later;

DROP TABLE items, inplace;
RESET default_table_access_method;
