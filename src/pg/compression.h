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
#include "nodes/pg_list.h"
#include "pg/stratago.h"

/*
 * Record codec as relid's choice (DEFAULT: remove it); it reaches the
 * table's files when the transaction commits. REQUIRES: relid is a strata
 * table the current user owns.
 */
extern void strata_compression_record(Oid relid, StrataTreeCodec codec);

/*
 * Before a utility command: the codecs of the tables it may rewrite by a
 * new table swapped in (ALTER TABLE, REFRESH MATERIALIZED VIEW), for the
 * after call. After it: a new table gets stratago.compression, and the
 * saved tables get their codecs back.
 */
extern List *strata_compression_before_utility(Node *parsetree);
extern void strata_compression_after_utility(Node *parsetree, List *saved);

/* Install the object access hook that forgets dropped tables (_PG_init). */
extern void strata_compression_init(void);

#endif							/* STRATA_COMPRESSION_H */
