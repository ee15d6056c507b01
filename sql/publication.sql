-- Strata tables in publications (src/pg/publication.c): with the default
-- WAL sink (postgres) every way of putting one into a publication works as
-- for heap, and pg_publication_tables lists it. What the publication then
-- sends is proven by TAP 027 (test_decoding, heap's output) and 028
-- (pgoutput, a subscriber); the engine sink's refusal by TAP 028.
-- (wal_level is not logical here: hide the warning CREATE PUBLICATION gives)
SET client_min_messages = error;
CREATE EXTENSION IF NOT EXISTS stratago;
SHOW stratago.wal_sink;
CREATE TABLE pub_s (id int PRIMARY KEY, v text) USING strata;
CREATE TABLE pub_h (id int PRIMARY KEY, v text) USING heap;
CREATE SCHEMA pub_schema;

-- naming it
CREATE PUBLICATION p1 FOR TABLE pub_s;
ALTER PUBLICATION p1 ADD TABLE pub_h;
ALTER PUBLICATION p1 SET TABLE pub_h, pub_s;
SELECT pubname, tablename FROM pg_publication_tables ORDER BY 1, 2;

-- FOR ALL TABLES, and a strata table created afterwards
CREATE PUBLICATION p_all FOR ALL TABLES;
CREATE TABLE pub_s2 (id int) USING strata;
SELECT tablename FROM pg_publication_tables WHERE pubname = 'p_all' AND tablename LIKE 'pub%' ORDER BY 1;
DROP PUBLICATION p_all;

-- a published schema, and a strata table created in it afterwards
CREATE PUBLICATION p_schema FOR TABLES IN SCHEMA pub_schema;
CREATE TABLE pub_schema.s (id int) USING strata;
CREATE TABLE pub_schema.h (id int) USING heap;
SELECT tablename FROM pg_publication_tables WHERE pubname = 'p_schema' ORDER BY 1;

-- a published table keeps its publication through TRUNCATE and rewrites
TRUNCATE pub_s;
VACUUM FULL pub_s;
SELECT pubname, tablename FROM pg_publication_tables WHERE tablename = 'pub_s';

-- as on heap, UPDATE and DELETE of a published table need a replica identity
ALTER TABLE pub_s REPLICA IDENTITY NOTHING;
INSERT INTO pub_s VALUES (1, 'a');
UPDATE pub_s SET v = 'b' WHERE id = 1;
DELETE FROM pub_s WHERE id = 1;
ALTER TABLE pub_s REPLICA IDENTITY DEFAULT;
UPDATE pub_s SET v = 'b' WHERE id = 1;
DELETE FROM pub_s WHERE id = 1;

DROP PUBLICATION p1, p_schema;
DROP SCHEMA pub_schema CASCADE;
DROP TABLE pub_h, pub_s, pub_s2;
