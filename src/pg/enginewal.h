/*
 * enginewal.h — the engine WAL sink (stratago.wal_sink = engine): one
 * cluster-wide engine WAL, records appended under the tree lock, group
 * commit at pre-commit, replay at startup, segments removed once every
 * tree has flushed past them.
 */
#ifndef STRATA_ENGINEWAL_H
#define STRATA_ENGINEWAL_H

#include "postgres.h"

#include "engine/base/slice.h"
#include "pg/tree.h"

/* Its shared state (shared memory hooks, stratago.c). */
extern Size strata_wal_shmem_size(void);
extern void strata_wal_shmem_init(void);
/* Counters since start: commits that wrote it, fsyncs, segments removed. */
extern void strata_wal_stats(uint64 *commits, uint64 *syncs, uint64 *segments_removed);
extern void strata_wal_init_callbacks(void);
/* Append tree's batch; returns the record's end LSN. REQUIRES: tree lock. */
extern uint64 strata_wal_append_rows(StrataTree *tree, sg_slice batch);
/* This transaction wrote up to end_lsn: pre-commit waits for it. */
extern void strata_wal_note_write(uint64 end_lsn);
extern void strata_wal_wait_durable(uint64 lsn);
/* Where the engine WAL ends now. */
extern uint64 strata_wal_end_lsn(void);
/* Remove segments holding nothing at or above horizon (checkpoint.c). */
extern void strata_wal_delete_below(uint64 horizon);
/* Replay the engine WAL into the trees' memtables (postmaster, at start). */
extern void strata_wal_recover(void);

#endif							/* STRATA_ENGINEWAL_H */
