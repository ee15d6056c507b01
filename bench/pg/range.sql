-- range.sql — pgbench script: one read of 10,000 consecutive rows of
-- pgbench_accounts by its key, from a random start (pass -D rows=N, the
-- table's row count). run.sh runs it twice, as an index scan (sequential
-- and bitmap scans off) and as a bitmap heap scan (sequential and index
-- scans off), the same plan on both access methods.
\set a random(1, :rows - 9999)
SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid BETWEEN :a AND :a + 9999;
