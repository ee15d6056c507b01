--
-- Several scans of one strata table open at once, ended in every order.
-- Each scan pins the table's memtables and SSTables (holds, src/pg/hold.h);
-- each must give back its own, whoever ends first, whether it ends by
-- running out, by CLOSE, at COMMIT or ROLLBACK, at ROLLBACK TO SAVEPOINT,
-- by an error, or by a WITH HOLD cursor being materialised at COMMIT.
-- A pin given back twice once let the next flush drop every row of the
-- table (issue 13), so after each step the table is compared with a heap
-- twin that had the same rows written, across flushes and compactions.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS stratago;
RESET client_min_messages;

CREATE TABLE cur_t (a int, b int, v text) USING strata;
CREATE TABLE cur_twin (a int, b int, v text) USING heap;

-- write the same rows into both tables
CREATE FUNCTION cur_add(lo int, hi int) RETURNS void LANGUAGE sql AS $$
	INSERT INTO cur_t SELECT g, (g * 7919) % 10000, md5(g::text) FROM generate_series(lo, hi) g;
	INSERT INTO cur_twin SELECT g, (g * 7919) % 10000, md5(g::text) FROM generate_series(lo, hi) g;
$$;

-- rows in one table and not in the other (0 when they agree)
CREATE FUNCTION cur_diff() RETURNS bigint LANGUAGE sql AS $$
	SELECT (SELECT count(*) FROM (SELECT * FROM cur_t EXCEPT ALL SELECT * FROM cur_twin) x)
		 + (SELECT count(*) FROM (SELECT * FROM cur_twin EXCEPT ALL SELECT * FROM cur_t) y);
$$;

-- The report's reproduction: two cursors, the first one closed first.
SELECT cur_add(0, 9999);
SELECT count(*) FROM cur_t;
BEGIN;
DECLARE c1 SCROLL CURSOR FOR SELECT * FROM cur_t;
DECLARE c2 SCROLL CURSOR FOR SELECT * FROM cur_t;
MOVE 30 IN c1;
MOVE 30 IN c2;
CLOSE c1;
CLOSE c2;
END;
SELECT count(*) FROM cur_t;
SELECT stratago.flush('cur_t');
SELECT count(*) AS after_flush, cur_diff() AS diff FROM cur_t;
SELECT arena_used_bytes AS arena_used_start FROM stratago.memory_stats() \gset

-- The same with fetches that read rows, backwards too, and a flush while
-- both are open; then a compaction.
BEGIN;
DECLARE c1 SCROLL CURSOR FOR SELECT a FROM cur_t WHERE a < 5000;
DECLARE c2 SCROLL CURSOR FOR SELECT a FROM cur_t WHERE a >= 5000;
FETCH 2 FROM c1;
FETCH 2 FROM c2;
SELECT cur_add(10000, 10099);
SELECT stratago.flush('cur_t');
FETCH BACKWARD 1 FROM c1;
FETCH LAST FROM c2;
FETCH PRIOR FROM c2;
CLOSE c1;
SELECT stratago.flush('cur_t');
FETCH ABSOLUTE 3 FROM c2;
CLOSE c2;
COMMIT;
SELECT stratago.compact('cur_t');
SELECT count(*), cur_diff() AS diff FROM cur_t;

--
-- Every order of opening and of closing three cursors (6 x 6), each
-- opened, moved forwards and backwards, with rows written and a flush or
-- a compaction between every two steps. PL/pgSQL cursors are portals with
-- resource owners of their own, as DECLAREd ones are.
--
-- one step: write row n, then flush, or every fifth row compact
CREATE FUNCTION cur_write_and_flush(n int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM cur_add(n, n);
	IF n % 5 = 0 THEN
		PERFORM stratago.compact('cur_t');
	ELSE
		PERFORM stratago.flush('cur_t');
	END IF;
END $$;

CREATE FUNCTION cur_orders() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	perms int[] := '{{1,2,3},{1,3,2},{2,1,3},{2,3,1},{3,1,2},{3,2,1}}';
	cv refcursor;
	r record;
	n int := 20000;
	combos int := 0;
	d bigint;
BEGIN
	FOR o IN 1..6 LOOP
		FOR c IN 1..6 LOOP
			FOR k IN 1..3 LOOP
				cv := 'cur' || perms[o][k];
				OPEN cv SCROLL FOR SELECT a, v FROM cur_t;
				MOVE FORWARD 3 + k FROM cv;
				FETCH cv INTO r;
				IF r.a IS NULL THEN
					RAISE EXCEPTION 'cursor % read no row', cv;
				END IF;
				PERFORM cur_write_and_flush(n);
				n := n + 1;
			END LOOP;
			FOR k IN 1..3 LOOP
				cv := 'cur' || k;
				MOVE BACKWARD 2 FROM cv;
				FETCH cv INTO r;
				FETCH LAST FROM cv INTO r;
			END LOOP;
			FOR k IN 1..3 LOOP
				cv := 'cur' || perms[c][k];
				CLOSE cv;
				PERFORM cur_write_and_flush(n);
				n := n + 1;
				d := cur_diff();
				IF d <> 0 THEN
					RAISE EXCEPTION 'open order %, close order %: % rows differ from the twin',
						perms[o:o][1:3], perms[c:c][1:3], d;
				END IF;
			END LOOP;
			combos := combos + 1;
		END LOOP;
	END LOOP;
	RETURN combos || ' orders, table agrees with its twin after each step';
END $$;
SELECT cur_orders();
SELECT count(*), cur_diff() AS diff FROM cur_t;

-- WITH HOLD cursors are materialised at COMMIT (their scans end there)
-- and read after it; one is closed before the other.
BEGIN;
DECLARE h1 SCROLL CURSOR WITH HOLD FOR SELECT a FROM cur_t ORDER BY a;
DECLARE h2 CURSOR WITH HOLD FOR SELECT a FROM cur_t WHERE a % 1000 = 0;
FETCH 2 FROM h1;
FETCH 2 FROM h2;
SELECT cur_add(30000, 30099);
COMMIT;
SELECT stratago.flush('cur_t');
FETCH 2 FROM h2;
FETCH LAST FROM h1;
CLOSE h1;
SELECT stratago.compact('cur_t');
FETCH 1 FROM h2;
CLOSE h2;
SELECT count(*), cur_diff() AS diff FROM cur_t;

-- Cursors across ROLLBACK TO SAVEPOINT: those opened in the rolled-back
-- subtransaction go with it, the outer ones stay usable.
BEGIN;
DECLARE o1 CURSOR FOR SELECT a FROM cur_t WHERE a < 10 ORDER BY a;
FETCH 1 FROM o1;
SAVEPOINT s1;
DECLARE i1 CURSOR FOR SELECT a FROM cur_t WHERE a >= 20000;
DECLARE i2 CURSOR FOR SELECT a FROM cur_t;
FETCH 1 FROM i1;
MOVE 5 IN i2;
FETCH 1 FROM o1;
ROLLBACK TO SAVEPOINT s1;
FETCH 1 FROM i1;
ROLLBACK TO SAVEPOINT s1;
FETCH 1 FROM o1;
SAVEPOINT s2;
DECLARE i3 CURSOR FOR SELECT a FROM cur_t;
MOVE 3 IN i3;
RELEASE SAVEPOINT s2;
MOVE 3 IN i3;
CLOSE o1;
CLOSE i3;
COMMIT;
SELECT stratago.flush('cur_t');
SELECT count(*), cur_diff() AS diff FROM cur_t;

-- A subtransaction fails while its own and outer cursors are open, and a
-- scan fails half way (its statement's holds go at abort).
BEGIN;
DECLARE o2 CURSOR FOR SELECT a FROM cur_t ORDER BY a;
FETCH 1 FROM o2;
SAVEPOINT s3;
DECLARE i4 CURSOR FOR SELECT a FROM cur_t;
MOVE 10 IN i4;
SELECT count(*) FROM cur_t WHERE 1 / (a - 7) > -2;
ROLLBACK TO SAVEPOINT s3;
FETCH 1 FROM o2;
SELECT cur_add(30100, 30109);
SELECT stratago.flush('cur_t');
FETCH 1 FROM o2;
COMMIT;
SELECT stratago.flush('cur_t');
SELECT count(*), cur_diff() AS diff FROM cur_t;

-- Open cursors dropped at ROLLBACK, with rows written in the transaction.
BEGIN;
DECLARE r1 CURSOR FOR SELECT a FROM cur_t;
DECLARE r2 CURSOR FOR SELECT a FROM cur_t;
MOVE 4 IN r2;
MOVE 4 IN r1;
INSERT INTO cur_t VALUES (-1, -1, 'rolled back');
ROLLBACK;
SELECT stratago.flush('cur_t');
SELECT stratago.compact('cur_t');
SELECT count(*), cur_diff() AS diff FROM cur_t;

-- Cursors left open at COMMIT are closed by it, in no order we choose.
BEGIN;
DECLARE e1 CURSOR FOR SELECT a FROM cur_t;
DECLARE e2 CURSOR FOR SELECT a FROM cur_t;
DECLARE e3 CURSOR FOR SELECT a FROM cur_t;
MOVE 1 IN e2;
MOVE 1 IN e1;
MOVE 1 IN e3;
COMMIT;
SELECT cur_add(30110, 30119);
SELECT stratago.flush('cur_t');
SELECT count(*), cur_diff() AS diff FROM cur_t;

-- Every pin was given back: once every scan has ended and the table has
-- been flushed, no flushed memtable is kept in the arena by a reader (a
-- leaked pin keeps one: TAP 016).
SELECT frozen_memtables FROM stratago.table_stats('cur_t');
SELECT arena_used_bytes <= :arena_used_start AS no_memtable_kept
FROM stratago.memory_stats();

DROP TABLE cur_t, cur_twin;
DROP FUNCTION cur_add(int, int), cur_diff(), cur_write_and_flush(int), cur_orders();
