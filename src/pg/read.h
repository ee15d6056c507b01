/*
 * read.h — the read paths of a tree: every version of one row (newest
 * first, from the memtables it pins and then its SSTables), a forward scan
 * over every row, and the oldest unfrozen writer a tree holds (VACUUM).
 * Memtables are pinned before SSTables are listed, so a flush in between
 * is seen twice, never missed.
 */
#ifndef STRATA_READ_H
#define STRATA_READ_H

#include "postgres.h"

#include "access/transam.h"
#include "utils/rel.h"
#include "pg/rowversion.h"
#include "pg/tree.h"

/* Every version of rowid, newest first, in mcxt; returns how many. */
extern int	strata_tree_versions(Relation rel, StrataTree *tree, uint64 rowid,
								 StrataVersion **versions, MemoryContext mcxt);

/*
 * The oldest writer of an unfrozen version anywhere in tree; false when
 * some file does not know. *stubs gets the dead stubs the files hold.
 */
extern bool strata_tree_oldest_unfrozen(Relation rel, StrataTree *tree,
										FullTransactionId *oldest, uint64 *stubs);

/* A forward scan over every row: each step one row id and its versions. */
typedef struct StrataTreeScan StrataTreeScan;
extern StrataTreeScan *strata_tree_scan_begin(Relation rel, StrataTree *tree,
											  bool full_chains);
extern bool strata_tree_scan_next(StrataTreeScan *scan, uint64 *rowid,
								  StrataVersion **versions, int *nversions);
extern void strata_tree_scan_seek(StrataTreeScan *scan, uint64 rowid);
extern void strata_tree_scan_end(StrataTreeScan *scan);

#endif							/* STRATA_READ_H */
