/* stratago--0.1.sql — objects created by CREATE EXTENSION stratago. */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION stratago" to load this file. \quit

CREATE FUNCTION stratago_tableam_handler(internal)
RETURNS table_am_handler
AS 'MODULE_PATHNAME', 'stratago_tableam_handler'
LANGUAGE C STRICT;

CREATE ACCESS METHOD strata TYPE TABLE HANDLER stratago_tableam_handler;

COMMENT ON ACCESS METHOD strata IS 'LSM-tree storage: WAL, memtables, compressed SSTables, leveled compaction';
