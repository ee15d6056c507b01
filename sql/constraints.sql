--
-- Constraints on strata tables: foreign keys in both directions (their
-- checks take FOR KEY SHARE row locks), ON DELETE actions, CHECK, NOT NULL,
-- exclusion and deferrable unique constraints, the row-lock strengths, and
-- INSERT ... ON CONFLICT.
--
CREATE EXTENSION IF NOT EXISTS stratago;
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE EXTENSION IF NOT EXISTS amcheck;
SET default_table_access_method = strata;

CREATE TABLE parent (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE child (id int PRIMARY KEY,
					parent_id int REFERENCES parent (id) ON DELETE CASCADE,
					note text CHECK (note <> ''));
CREATE TABLE heap_child (id int, parent_id int REFERENCES parent (id)) USING heap;
CREATE TABLE heap_parent (id int PRIMARY KEY) USING heap;
CREATE TABLE child_of_heap (id int, hid int REFERENCES heap_parent (id));

INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 50) g;
INSERT INTO child SELECT g, g % 50 + 1, 'n' || g FROM generate_series(1, 500) g;
INSERT INTO heap_child VALUES (1, 7);
INSERT INTO heap_parent VALUES (1);
INSERT INTO child_of_heap VALUES (1, 1);

-- violations
INSERT INTO child VALUES (1000, 999, 'x');
INSERT INTO heap_child VALUES (2, 999);
INSERT INTO child_of_heap VALUES (2, 2);
INSERT INTO child VALUES (1001, 1, '');
INSERT INTO parent VALUES (100, NULL);
UPDATE parent SET id = 1000 WHERE id = 7;
DELETE FROM heap_parent WHERE id = 1;

-- a non-key update of a referenced row is fine; a delete cascades
UPDATE parent SET name = 'renamed' WHERE id = 7;
DELETE FROM heap_child;
DELETE FROM parent WHERE id = 3;
SELECT count(*) FROM child WHERE parent_id = 3;
SELECT count(*) FROM child;

-- row locks of every strength
BEGIN;
SELECT id FROM parent WHERE id = 1 FOR KEY SHARE;
SELECT id FROM parent WHERE id = 1 FOR SHARE;
SELECT id FROM parent WHERE id = 1 FOR NO KEY UPDATE;
SELECT id FROM parent WHERE id = 1 FOR UPDATE;
UPDATE parent SET name = 'locked then updated' WHERE id = 1;
COMMIT;
SELECT name FROM parent WHERE id = 1;
SELECT id FROM parent WHERE id IN (1, 2) ORDER BY id FOR UPDATE SKIP LOCKED;

-- exclusion constraint
CREATE TABLE booking (room int, during int4range,
					  EXCLUDE USING gist (room WITH =, during WITH &&));
INSERT INTO booking VALUES (1, '[1,5)'), (1, '[5,9)'), (2, '[1,9)');
INSERT INTO booking VALUES (1, '[3,6)');

-- deferrable unique constraint: a swap within one statement succeeds
CREATE TABLE ranks (id int PRIMARY KEY, pos int UNIQUE DEFERRABLE INITIALLY DEFERRED);
INSERT INTO ranks VALUES (1, 1), (2, 2);
UPDATE ranks SET pos = 3 - pos;
SELECT * FROM ranks ORDER BY id;
BEGIN;
UPDATE ranks SET pos = 1 WHERE id = 1;
COMMIT;

-- INSERT ... ON CONFLICT
CREATE TABLE upsert (k int PRIMARY KEY, v int, note text);
INSERT INTO upsert VALUES (1, 1, 'a'), (2, 2, 'b');
INSERT INTO upsert VALUES (1, 10, 'x') ON CONFLICT DO NOTHING;
INSERT INTO upsert VALUES (3, 30, 'c') ON CONFLICT DO NOTHING;
INSERT INTO upsert VALUES (1, 100, 'y')
  ON CONFLICT (k) DO UPDATE SET v = upsert.v + excluded.v, note = excluded.note;
INSERT INTO upsert VALUES (2, 5, 'z'), (4, 4, 'd')
  ON CONFLICT (k) DO UPDATE SET v = excluded.v RETURNING *;
INSERT INTO upsert VALUES (2, 7, 'w') ON CONFLICT (k) DO UPDATE SET v = excluded.v
  WHERE upsert.v > 100;
INSERT INTO upsert VALUES (5, 1, 'e'), (5, 2, 'f') ON CONFLICT (k) DO UPDATE SET v = excluded.v;
INSERT INTO upsert VALUES (1, 0, 'again'), (1, 0, 'twice') ON CONFLICT (k) DO UPDATE SET v = 0;
SELECT * FROM upsert ORDER BY k;
INSERT INTO upsert SELECT g, g, 'bulk' FROM generate_series(1, 500) g
  ON CONFLICT (k) DO UPDATE SET note = 'upserted';
SELECT note, count(*) FROM upsert GROUP BY note ORDER BY 1;
SELECT bt_index_check('upsert_pkey', true);

DROP TABLE child, heap_child, child_of_heap, heap_parent, parent, booking, ranks, upsert;
RESET default_table_access_method;
