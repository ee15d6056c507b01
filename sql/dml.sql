--
-- DML on strata tables: every statement kind, with visibility checks,
-- savepoints, command ids, large values, COPY, TRUNCATE and DROP.
--
CREATE EXTENSION IF NOT EXISTS stratago;
SET default_table_access_method = strata;

CREATE TABLE acct (id int NOT NULL, owner text, balance numeric);
INSERT INTO acct VALUES (1, 'ann', 100), (2, 'bob', 50), (3, 'cy', 0);
SELECT * FROM acct ORDER BY id;

-- rows get TIDs that map to row ids (291 per "block") and carry xmin
SELECT ctid, id FROM acct ORDER BY id;
SELECT count(DISTINCT xmin::text) AS writers FROM acct;

-- UPDATE of a table without indexes keeps the TID
UPDATE acct SET balance = balance + 10 WHERE id = 2;
SELECT ctid, id, balance FROM acct WHERE id = 2;
DELETE FROM acct WHERE id = 3;
SELECT * FROM acct ORDER BY id;

-- UPDATE ... RETURNING, DELETE ... RETURNING, INSERT ... RETURNING
UPDATE acct SET owner = upper(owner) RETURNING id, owner;
INSERT INTO acct VALUES (4, 'dee', 7) RETURNING ctid, *;
DELETE FROM acct WHERE id = 4 RETURNING *;

-- ROLLBACK makes every write invisible
BEGIN;
INSERT INTO acct VALUES (10, 'tmp', 1);
UPDATE acct SET balance = 0;
DELETE FROM acct WHERE id = 1;
SELECT * FROM acct ORDER BY id;
ROLLBACK;
SELECT * FROM acct ORDER BY id;

-- ROLLBACK TO SAVEPOINT undoes only the inner writes
BEGIN;
INSERT INTO acct VALUES (20, 'kept', 1);
SAVEPOINT sp1;
INSERT INTO acct VALUES (21, 'undone', 1);
UPDATE acct SET balance = -1 WHERE id = 1;
DELETE FROM acct WHERE id = 2;
ROLLBACK TO SAVEPOINT sp1;
SAVEPOINT sp2;
UPDATE acct SET owner = 'twice' WHERE id = 20;
RELEASE SAVEPOINT sp2;
SELECT * FROM acct ORDER BY id;
COMMIT;
SELECT * FROM acct ORDER BY id;

-- a statement never sees its own later writes (command ids):
-- this INSERT ... SELECT must copy each row exactly once
INSERT INTO acct SELECT id + 100, owner, balance FROM acct;
SELECT count(*) FROM acct;
-- and an UPDATE changes each row once
UPDATE acct SET balance = balance * 2;
SELECT id, balance FROM acct ORDER BY id;

-- a row updated twice in one transaction, then read back
BEGIN;
UPDATE acct SET balance = 1 WHERE id = 1;
UPDATE acct SET balance = 2 WHERE id = 1;
SELECT balance FROM acct WHERE id = 1;
COMMIT;
SELECT balance FROM acct WHERE id = 1;

-- values of any size are stored inline (no TOAST table)
CREATE TABLE big (id int, payload text);
SELECT reltoastrelid = 0 AS no_toast FROM pg_class WHERE relname = 'big';
INSERT INTO big SELECT g, repeat(md5(g::text), 20000) FROM generate_series(1, 5) g;
SELECT id, length(payload), md5(payload) = md5(repeat(md5(id::text), 20000)) AS intact
  FROM big ORDER BY id;
-- external TOAST pointers from a heap table are detoasted on the way in
CREATE TABLE heap_src (id int, payload text) USING heap;
INSERT INTO heap_src SELECT g, repeat(md5(g::text), 10000) FROM generate_series(1, 3) g;
INSERT INTO big SELECT id + 10, payload FROM heap_src;
DROP TABLE heap_src;
SELECT id, length(payload) FROM big WHERE id > 10 ORDER BY id;

-- COPY in and out
CREATE TABLE copied (a int, b text, c date);
COPY copied FROM stdin;
1	one	2024-01-01
2	two	2024-02-02
3	\N	2024-03-03
\.
COPY copied TO stdout;
INSERT INTO copied SELECT g, 'row ' || g, date '2024-01-01' + g FROM generate_series(4, 3000) g;
SELECT count(*), sum(a), count(b), min(c), max(c) FROM copied;

-- TRUNCATE rolled back: the data is back
BEGIN;
TRUNCATE copied;
SELECT count(*) FROM copied;
ROLLBACK;
SELECT count(*) FROM copied;
TRUNCATE copied;
SELECT count(*) FROM copied;
-- TRUNCATE of a table created in the same transaction
BEGIN;
CREATE TABLE fresh (x int);
INSERT INTO fresh VALUES (1), (2);
TRUNCATE fresh;
INSERT INTO fresh VALUES (3);
SELECT * FROM fresh;
COMMIT;
SELECT * FROM fresh;

-- ANALYZE samples strata "blocks" and the planner sees the size
ANALYZE copied, acct;
SELECT relname, reltuples FROM pg_class WHERE relname IN ('acct', 'copied') ORDER BY 1;
EXPLAIN (COSTS OFF) SELECT * FROM acct WHERE id = 1;

-- a table never analyzed and of a few rows is estimated as heap estimates
-- it (at least 10 pages): an equality on its key uses the index, as on heap
CREATE TABLE est (id int PRIMARY KEY, v text) USING strata;
INSERT INTO est VALUES (1, 'a'), (2, 'b');
EXPLAIN (COSTS OFF) SELECT * FROM est WHERE id = 1;
DROP TABLE est;

-- system columns
SELECT ctid = '(0,1)' AS first_tid, xmin::text::bigint > 0 AS has_xmin FROM acct WHERE id = 1;

-- SERIALIZABLE works (write skew is caught: see the isolation spec strata-ssi)
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT count(*) FROM acct;
UPDATE acct SET balance = balance WHERE id = 1;
COMMIT;

-- a scrollable cursor steps back (more below)
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT id FROM acct;
FETCH 2 FROM c;
FETCH BACKWARD 1 FROM c;
ROLLBACK;

-- pg_stat_user_tables counts strata changes as it counts heap's
CREATE TABLE counted (x int);
INSERT INTO counted SELECT generate_series(1, 10);
UPDATE counted SET x = x + 1 WHERE x <= 3;
DELETE FROM counted WHERE x > 8;
BEGIN;
INSERT INTO counted VALUES (100);
ROLLBACK;
SELECT pg_stat_force_next_flush();
SELECT n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, n_live_tup, n_dead_tup
  FROM pg_stat_user_tables WHERE relname = 'counted';

-- RETURNING sees the system columns of the row just written, as on heap
CREATE TABLE sys (a int PRIMARY KEY, b text);
INSERT INTO sys VALUES (1, 'x'), (2, 'y')
  RETURNING a, xmin = pg_current_xact_id()::xid AS xmin_ok, xmax;
UPDATE sys SET b = 'z' WHERE a = 1
  RETURNING a, xmin = pg_current_xact_id()::xid AS xmin_ok, xmax, ctid;
INSERT INTO sys VALUES (2, 'w') ON CONFLICT (a) DO UPDATE SET b = 'v'
  RETURNING a, b, xmin = pg_current_xact_id()::xid AS xmin_ok;
BEGIN;
DELETE FROM sys WHERE a = 1 RETURNING a, xmax = pg_current_xact_id()::xid AS xmax_ok;
ROLLBACK;

-- statement triggers with transition tables see the old and the new rows of
-- an UPDATE that keeps the TID (the old row is fetched by TID afterwards)
CREATE FUNCTION sys_trans() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE NOTICE 'old: %, new: %',
		(SELECT string_agg(a || '=' || b, ',' ORDER BY a) FROM old_rows),
		(SELECT string_agg(a || '=' || b, ',' ORDER BY a) FROM new_rows);
	RETURN NULL;
END $$;
CREATE TRIGGER sys_trans AFTER UPDATE ON sys REFERENCING OLD TABLE AS old_rows
  NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sys_trans();
UPDATE sys SET b = b || '!';
DROP TABLE sys;
DROP FUNCTION sys_trans();

-- Scrollable cursors: backward sequential and TID range scans return what
-- heap returns, rows in SSTables and in the memtable alike, with gaps of
-- deleted rows wider than a backward step's first window (64 row ids).
CREATE TABLE scroll_s (a int, b text) USING strata;
CREATE TABLE scroll_h (a int, b text) USING heap;
INSERT INTO scroll_s SELECT g, 'r' || g FROM generate_series(1, 1000) g;
SELECT stratago.flush('scroll_s');
INSERT INTO scroll_s SELECT g, 'r' || g FROM generate_series(1001, 1100) g;
DELETE FROM scroll_s WHERE a % 7 = 0 OR a BETWEEN 100 AND 400;
INSERT INTO scroll_h SELECT * FROM scroll_s ORDER BY a;
CREATE FUNCTION scroll_trace(tbl text, qual text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	c refcursor;
	r record;
	out text := '';
	cmd text;
BEGIN
	OPEN c SCROLL FOR EXECUTE format('SELECT a FROM %I %s', tbl, qual);
	FOREACH cmd IN ARRAY ARRAY['LAST', 'PRIOR', 'PRIOR', 'NEXT', 'ABSOLUTE 98',
		'PRIOR', 'RELATIVE -3', 'NEXT', 'FIRST', 'PRIOR', 'NEXT', 'ABSOLUTE -2',
		'NEXT', 'NEXT', 'PRIOR', 'RELATIVE -200', 'ABSOLUTE 300']
	LOOP
		EXECUTE format('FETCH %s FROM %I', cmd, c) INTO r;
		out := out || coalesce(r.a::text, '-') || ' ';
	END LOOP;
	CLOSE c;
	RETURN out;
END $$;
SELECT scroll_trace('scroll_s', '') AS strata,
       scroll_trace('scroll_s', '') = scroll_trace('scroll_h', '') AS same_as_heap;
-- TID range: row ids 49..300 of the strata table
SELECT scroll_trace('scroll_s', $$WHERE ctid >= '(0,50)' AND ctid <= '(1,10)'$$) AS strata_tidrange,
       scroll_trace('scroll_s', $$WHERE ctid >= '(0,50)' AND ctid <= '(1,10)'$$) =
       scroll_trace('scroll_h', 'WHERE a BETWEEN 50 AND 301') AS same_as_heap;
EXPLAIN (COSTS OFF) SELECT a FROM scroll_s WHERE ctid >= '(0,50)' AND ctid <= '(1,10)';
BEGIN;
DECLARE sc SCROLL CURSOR FOR SELECT a FROM scroll_s;
MOVE FORWARD ALL IN sc;
FETCH BACKWARD 3 FROM sc;
MOVE BACKWARD ALL IN sc;
FETCH BACKWARD 1 FROM sc;
FETCH FORWARD 2 FROM sc;
COMMIT;
DROP TABLE scroll_s, scroll_h;
DROP FUNCTION scroll_trace(text, text);

-- DROP TABLE
DROP TABLE acct, big, copied, fresh, counted;
RESET default_table_access_method;
