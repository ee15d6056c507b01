/*
 * compaction.h — compaction of a tree by the maintenance worker, with the
 * MVCC filter that drops versions no snapshot can see and freezes the
 * rest.
 */
#ifndef STRATA_COMPACTION_H
#define STRATA_COMPACTION_H

#include "postgres.h"

#include "pg/tree.h"

typedef enum CompactMode
{
	COMPACT_AUTO,				/* the most urgent compaction, if any */
	COMPACT_MANUAL,				/* shallowest level with data below it */
	COMPACT_FREEZE				/* a file holding versions to freeze */
} CompactMode;

/*
 * Run one compaction of tree: the most urgent one; with COMPACT_MANUAL
 * every file of the shallowest non-empty level that has a level below it;
 * with COMPACT_FREEZE one file (numbered below freeze_below) that holds
 * versions to freeze, rewritten at its level. Returns false when there
 * was nothing to do. REQUIRES: the maintenance worker.
 */
extern bool strata_compact_one(StrataTree *tree, CompactMode mode, uint64 freeze_below);

#endif							/* STRATA_COMPACTION_H */
