/*
 * compression.h — a strata table's own bottom-level codec as users set it
 * (stratago.set_compression, stratago.compression) and as pg_dump carries
 * it: the extension's configuration table stratago.compression, applied
 * to the table's tree at commit (compression.c says how).
 */
#ifndef STRATA_COMPRESSION_H
#define STRATA_COMPRESSION_H

#include "postgres.h"

#include "nodes/nodes.h"
#include "pg/stratago.h"

/*
 * Record codec as relid's choice (DEFAULT: remove it); it reaches the
 * table's files when the transaction commits. REQUIRES: relid is a strata
 * table the current user owns.
 */
extern void strata_compression_record(Oid relid, StrataTreeCodec codec);

/*
 * After a utility command has run: a new table gets stratago.compression,
 * and commands that gave tables new trees are followed by a resync.
 */
extern void strata_compression_after_utility(Node *parsetree);

#endif							/* STRATA_COMPRESSION_H */
