/*
 * apply.h — one logged batch into its tree's memtable: the one path for
 * engine WAL replay, the postmaster's replay of PostgreSQL's WAL and the
 * redo of strata records (crash recovery, standbys).
 */
#ifndef STRATA_APPLY_H
#define STRATA_APPLY_H

#include "postgres.h"

#include "engine/base/slice.h"
#include "pg/tree.h"

/* Which log a replayed batch came from. */
typedef enum StrataLog
{
	STRATA_LOG_ENGINE,
	STRATA_LOG_POSTGRES
} StrataLog;

/*
 * Write tree's memtable out during the postmaster's replay, so that a long
 * log never needs more than the arena; log_number is what it covers of
 * the engine WAL (0: none). Registered by recovery.c, which drives replay:
 * this layer does not call flushing itself.
 */
typedef void (*StrataReplayFlush) (StrataTree *tree, uint64 log_number);
extern void strata_apply_set_replay_flush(StrataReplayFlush fn);

/*
 * Apply batch (logged at first_lsn..end_lsn of log) unless the tree's
 * SSTables already hold it, or the tree is damaged (then it is kept in the
 * log). Returns whether it was applied.
 */
extern bool strata_apply_batch(StrataTree *tree, StrataLog log, uint64 first_lsn,
							   uint64 end_lsn, sg_slice batch);

#endif							/* STRATA_APPLY_H */
