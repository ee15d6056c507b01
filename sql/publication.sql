-- Strata tables cannot be published for logical replication yet: every way
-- of putting one into a publication is an ERROR (src/pg/publication.c).
-- (wal_level is not logical here: hide the warning CREATE PUBLICATION gives)
SET client_min_messages = error;
CREATE EXTENSION IF NOT EXISTS stratago;
CREATE TABLE pub_s (id int PRIMARY KEY, v text) USING strata;
CREATE TABLE pub_h (id int PRIMARY KEY, v text) USING heap;
CREATE SCHEMA pub_schema;

-- naming it
CREATE PUBLICATION p1 FOR TABLE pub_s;
CREATE PUBLICATION p1 FOR TABLE pub_h;
ALTER PUBLICATION p1 ADD TABLE pub_s;
ALTER PUBLICATION p1 SET TABLE pub_h, pub_s;
SELECT pubname, tablename FROM pg_publication_tables ORDER BY 1, 2;

-- FOR ALL TABLES, and a strata table created afterwards
CREATE PUBLICATION p_all FOR ALL TABLES;
DROP TABLE pub_s;
CREATE PUBLICATION p_all FOR ALL TABLES;
CREATE TABLE pub_s2 (id int) USING strata;
DROP PUBLICATION p_all;

-- a published schema
CREATE PUBLICATION p_schema FOR TABLES IN SCHEMA pub_schema;
CREATE TABLE pub_schema.s (id int) USING strata;
CREATE TABLE pub_schema.h (id int) USING heap;
DROP PUBLICATION p_schema;
CREATE TABLE pub_schema.s (id int) USING strata;
CREATE PUBLICATION p_schema FOR TABLES IN SCHEMA pub_schema;
SELECT pubname FROM pg_publication ORDER BY 1;

DROP PUBLICATION p1;
DROP SCHEMA pub_schema CASCADE;
DROP TABLE pub_h;
