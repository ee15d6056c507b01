-- update100.sql — pgbench script: one UPDATE of 100 random rows of table
-- upd (ids 1..:rows; pass -D rows=N) per transaction, so per-row costs show
-- apart from per-commit costs. No index on either access method.
UPDATE upd SET qty = qty + 1, price = price + 0.01
	WHERE id = ANY (ARRAY(SELECT 1 + floor(random() * :rows)::bigint FROM generate_series(1, 100)));
