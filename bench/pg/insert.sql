-- insert.sql — pgbench script: one single-row INSERT per transaction into
-- table ins (the mixed-type row of bench/pg/run.sh, about 80 bytes).
\set g random(1, 1000000000)
INSERT INTO ins VALUES (:g, :g % 1000, (:g % 100000) / 100.0,
	timestamptz '2024-01-01' + :g * interval '1 second', :g % 3 = 0,
	'SKU-' || lpad((:g % 1000000)::text, 7, '0'),
	'green widget, batch ' || (:g / 1000) || ', ' || substr(md5(CAST(:g AS text)), 1, 8));
