/*
 * checkpoint.h — how far back each log must be kept, and the checkpoint
 * guard (checkpoint.c). Called by the maintenance worker only.
 */
#ifndef STRATA_CHECKPOINT_H
#define STRATA_CHECKPOINT_H

#include "postgres.h"

/* Delete engine WAL segments every tree has flushed past. */
extern void strata_checkpoint_recycle(void);
/* Move pg_replay_from and the slot to the oldest record in a memtable. */
extern void strata_checkpoint_retain(void);
/* Whether the worker should hold checkpoints back. */
extern bool strata_checkpoint_guard_armed(void);
/* Flush what lies below the current redo point, and retain past it. */
extern void strata_checkpoint_guard_flush(void);

#endif							/* STRATA_CHECKPOINT_H */
