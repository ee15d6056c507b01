/*
 * logical.h — logical decoding of strata tables: the LOGICAL records a
 * change writes into PostgreSQL's WAL when wal_level = logical, and the
 * resource manager's rm_decode that turns them into the reorder buffer's
 * changes, as heap's records are turned (so every output plugin works
 * unchanged).
 *
 * Contract:
 *  - a change to a table for which strata_logical_wanted() is true calls
 *    one of the log functions after its versions are appended, in the
 *    same transaction (the record carries its xid): inserts with the rows
 *    as stored, updates with the old and the new row, deletes with the
 *    old row. Each function writes the replica identity as heap does:
 *    DEFAULT or USING INDEX, the identity columns of the old row when a
 *    delete, or an update changing one of them, needs them; FULL, the
 *    whole old row; NOTHING, no old row;
 *  - records of other kinds decode to nothing (their xid is noted);
 *  - TRUNCATE needs nothing here: PostgreSQL logs it for every logically
 *    logged relation, strata's included, and heap's decoder reads it.
 */
#ifndef STRATA_LOGICAL_H
#define STRATA_LOGICAL_H

#include "postgres.h"

#include "access/htup.h"
#include "access/xlogreader.h"
#include "lib/stringinfo.h"
#include "replication/decode.h"
#include "utils/relcache.h"

/* Does a change of rel need a LOGICAL record? */
extern bool strata_logical_wanted(Relation rel);

/* Rows inserted into rel, as stored. */
extern void strata_logical_log_insert(Relation rel, HeapTuple *rows, int n);

/*
 * A row of rel updated from oldrow to newrow (as stored); identity_changed:
 * the update changed a replica identity column (INDEX_ATTR_BITMAP_IDENTITY_KEY).
 */
extern void strata_logical_log_update(Relation rel, HeapTuple oldrow, HeapTuple newrow,
									  bool identity_changed);

/* A row of rel deleted; oldrow is what it held. */
extern void strata_logical_log_delete(Relation rel, HeapTuple oldrow);

/* The resource manager's rm_decode, and its description of a LOGICAL record. */
extern void strata_logical_decode(LogicalDecodingContext *ctx, XLogRecordBuffer *buf);
extern void strata_logical_desc(StringInfo buf, XLogReaderState *record);

#endif							/* STRATA_LOGICAL_H */
