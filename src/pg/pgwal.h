/*
 * pgwal.h — the other sink: strata records in PostgreSQL's WAL through the
 * custom resource manager "stratago" (id 141), their redo, xid
 * reservations (both sinks), and the replay at startup of the records
 * PostgreSQL's redo will not reach.
 */
#ifndef STRATA_PGWAL_H
#define STRATA_PGWAL_H

#include "postgres.h"

#include "access/transam.h"
#include "access/xlogdefs.h"
#include "engine/base/slice.h"
#include "pg/stratago.h"
#include "pg/tree.h"

/* The shared state of xid reservations (shared memory hooks, stratago.c). */
extern Size strata_pgwal_shmem_size(void);
extern void strata_pgwal_shmem_init(void);
extern void strata_pgwal_register_rmgr(void);
extern XLogRecPtr strata_pgwal_log_rows(StrataTree *tree, sg_slice batch, XLogRecPtr *start);
extern void strata_pgwal_log_create(const RelFileNode *rnode, uint64 tree_id);
extern void strata_pgwal_log_options(const RelFileNode *rnode, uint64 tree_id,
									 StrataTreeCodec codec);
extern void strata_pgwal_log_conflict(const RelFileNode *rnode, TransactionId latest_removed);
/* Before a version with xid fxid is made durable anywhere. */
extern void strata_reserve_xid(FullTransactionId fxid);
/* Replay from pg_replay_from up to where redo begins (postmaster, at start). */
extern void strata_pgwal_recover(void);
/* $PGDATA/stratago/pg_replay_from: where the postmaster's replay starts. */
extern XLogRecPtr strata_pgwal_read_replay_from(void);
extern void strata_pgwal_write_replay_from(XLogRecPtr lsn);
extern void strata_pgwal_remove_replay_from(void);

#endif							/* STRATA_PGWAL_H */
