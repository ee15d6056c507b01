-- update.sql — pgbench script: one single-row UPDATE per transaction of a
-- random row of table upd (ids 1..:rows; pass -D rows=N). No index exists
-- on either access method (strata has none yet), so both find the row by
-- a sequential scan; keep the table small.
\set id random(1, :rows)
UPDATE upd SET qty = qty + 1, price = price + 0.01 WHERE id = :id;
