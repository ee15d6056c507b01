--
-- VACUUM on strata tables: dead rows leave every index, the table's
-- statistics are reported as heap reports them, and the space of deleted
-- and updated rows comes back (at once with an aggressive VACUUM, else at
-- the next compaction).
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stratago;
CREATE EXTENSION IF NOT EXISTS pageinspect;
CREATE EXTENSION IF NOT EXISTS amcheck;
RESET client_min_messages;

-- index entries that point at a live row, counted on the btree's leaf
-- pages (live_items less the high key every page but the rightmost has)
CREATE FUNCTION leaf_entries(idx regclass) RETURNS bigint LANGUAGE sql AS $$
	SELECT coalesce(sum(s.live_items - CASE WHEN s.btpo_next <> 0 THEN 1 ELSE 0 END), 0)
	  FROM generate_series(1, pg_relation_size(idx) / 8192 - 1) b,
	       LATERAL bt_page_stats(idx::text, b::int) s
	 WHERE s.type = 'l'
$$;

CREATE TABLE v (id int PRIMARY KEY, k int, payload text) USING strata;
CREATE INDEX v_k ON v (k) WITH (deduplicate_items = off);
INSERT INTO v SELECT g, g % 100, repeat('p', 200) || g FROM generate_series(1, 6000) g;
-- an insert rolled back leaves index entries too
BEGIN;
INSERT INTO v SELECT g, -1, 'rolled back' FROM generate_series(6001, 6500) g;
ROLLBACK;
SELECT leaf_entries('v_pkey') AS pkey_entries, leaf_entries('v_k') AS k_entries;
SELECT stratago.compact('v');
SELECT stratago.relation_size('v') AS full_size \gset

-- delete two rows of three; change the indexed column of some (new TIDs)
DELETE FROM v WHERE id % 3 <> 0;
UPDATE v SET k = k + 1000 WHERE id % 30 = 0;
VACUUM v;
SELECT leaf_entries('v_pkey') AS pkey_entries, leaf_entries('v_k') AS k_entries;
SELECT c.reltuples, i.reltuples AS pkey_reltuples
  FROM pg_class c, pg_class i WHERE c.relname = 'v' AND i.relname = 'v_pkey';
SELECT n_live_tup, n_dead_tup, vacuum_count
  FROM pg_stat_user_tables WHERE relname = 'v';

-- the data is all there, through every path
SELECT count(*), sum(id), sum(k) FROM v;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*), sum(id) FROM v WHERE id > 0;
SELECT count(*) FROM v WHERE k >= 1000;
SELECT id, k FROM v WHERE k = 1030;
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT bt_index_check('v_pkey', true), bt_index_check('v_k', true);

-- space: deleting two thirds of the rows gave most of the bytes back, once
-- compaction met the reaped rows (a plain VACUUM leaves that to it)
SELECT stratago.relation_size('v') > :full_size * 0.45 AS not_yet_compacted;
SELECT stratago.compact('v');
SELECT stratago.relation_size('v') < :full_size * 0.45 AS shrunk;

-- a second VACUUM finds nothing more to remove
VACUUM v;
SELECT leaf_entries('v_pkey') AS pkey_entries, leaf_entries('v_k') AS k_entries;

-- updates that keep the TID (no indexed column changed) need no index work
UPDATE v SET payload = 'short' WHERE id % 2 = 0;
UPDATE v SET payload = 'shorter' WHERE id % 2 = 0;
VACUUM v;
SELECT leaf_entries('v_pkey') AS pkey_entries;
SELECT count(*), count(*) FILTER (WHERE payload = 'shorter') FROM v;

-- most of the table deleted: an aggressive VACUUM gives the space back
-- itself, the table shrinks to a small fraction
SELECT stratago.relation_size('v') AS before_delete \gset
DELETE FROM v WHERE id > 300;
VACUUM (DISABLE_PAGE_SKIPPING) v;
SELECT stratago.relation_size('v') < :before_delete * 0.2 AS shrunk_again;
SELECT leaf_entries('v_pkey') AS pkey_entries, count(*) FROM v GROUP BY 1;

-- INDEX_CLEANUP off: rows stay as dead stubs, entries stay, nothing breaks
DELETE FROM v WHERE id <= 150;
VACUUM (INDEX_CLEANUP off) v;
SELECT leaf_entries('v_pkey') AS pkey_entries, (SELECT count(*) FROM v) AS rows;
VACUUM v;
SELECT leaf_entries('v_pkey') AS pkey_entries, (SELECT count(*) FROM v) AS rows;

-- VACUUM FREEZE and a table without indexes
CREATE TABLE noidx (x int) USING strata;
INSERT INTO noidx SELECT generate_series(1, 1000);
DELETE FROM noidx WHERE x > 10;
VACUUM (FREEZE) noidx;
SELECT count(*), sum(x) FROM noidx;
SELECT age(relfrozenxid) < 10 AS relfrozenxid_recent FROM pg_class WHERE relname = 'noidx';

-- frozen rows are stored packed (no cid, flags or tuple length): after a
-- freezing compaction the same rows take fewer bytes, read back the same,
-- keep their xmin (heap's frozen rows show it too), and unpacked and packed
-- versions of one table read together
CREATE TABLE packed (id int, v text) USING strata;
INSERT INTO packed SELECT g, 'row ' || g FROM generate_series(1, 20000) g;
SELECT stratago.flush('packed');
SELECT stratago.relation_size('packed') AS unpacked_bytes,
       md5(string_agg(id || ':' || v, ',' ORDER BY id)) AS unpacked_rows,
       min(xmin::text) AS load_xmin FROM packed \gset
VACUUM (FREEZE) packed;
SELECT versions_frozen = 20000 AS all_frozen,
       stratago.relation_size('packed') < 0.95 * :unpacked_bytes AS packed_smaller
  FROM stratago.table_stats('packed');
SELECT md5(string_agg(id || ':' || v, ',' ORDER BY id)) = :'unpacked_rows' AS same_rows,
       count(*) FILTER (WHERE xmin::text = :'load_xmin') AS rows_keeping_xmin
  FROM packed;
INSERT INTO packed SELECT g, 'new ' || g FROM generate_series(20001, 20100) g;
UPDATE packed SET v = 'changed' WHERE id % 1000 = 0;
SELECT count(*), sum(id), count(*) FILTER (WHERE v = 'changed') AS changed FROM packed;
SELECT stratago.flush('packed');
SELECT count(*), sum(id), count(*) FILTER (WHERE v = 'changed') AS changed FROM packed;

DROP TABLE v, noidx, packed;
DROP FUNCTION leaf_entries(regclass);
