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

/*
 * Row id ranges [lo, hi] of tree that VACUUM must read: everything but
 * rows made only of frozen row data (heap's all-visible pages). Sorted,
 * disjoint, palloc'd into *ranges; returns how many (read.c says why).
 */
typedef struct StrataRowRange
{
	uint64		lo;
	uint64		hi;
} StrataRowRange;

extern int	strata_tree_suspect_ranges(Relation rel, StrataTree *tree,
									   StrataRowRange **ranges);

/* A forward scan over every row: each step one row id and its versions. */
typedef struct StrataTreeScan StrataTreeScan;
extern StrataTreeScan *strata_tree_scan_begin(Relation rel, StrataTree *tree,
											  bool full_chains);
extern bool strata_tree_scan_next(StrataTreeScan *scan, uint64 *rowid,
								  StrataVersion **versions, int *nversions);
extern void strata_tree_scan_seek(StrataTreeScan *scan, uint64 rowid);

/*
 * Give back the row strata_tree_scan_next() returned last (REQUIRES: one
 * was, and the scan has not moved since): the next call returns it again.
 * A reader of one block of row ids at a time that stepped onto the next
 * block's row gives it back; the seek to the next block then costs
 * nothing when no row lies between (the scan read every row from its
 * last seek on, so the first row at or after the target is that row).
 */
extern void strata_tree_scan_unread(StrataTreeScan *scan);
extern void strata_tree_scan_end(StrataTreeScan *scan);

/*
 * A row fetcher reads rows by row id for a caller whose row ids mostly
 * ascend (index and bitmap scans): it steps one kept iterator forward
 * instead of looking each row up afresh. Its answers are those of
 * strata_tree_versions() as far as snapshot can tell them apart (read.c
 * says why); snapshots other than MVCC, and SERIALIZABLE transactions,
 * always read afresh. The kept iterator's holds are taken under the
 * resource owner current at begin, and given back at end.
 */
typedef struct StrataRowFetcher StrataRowFetcher;
extern StrataRowFetcher *strata_row_fetcher_begin(Relation rel, StrataTree *tree);
extern int	strata_row_fetcher_versions(StrataRowFetcher *f, uint64 rowid, Snapshot snapshot,
										StrataVersion **versions, MemoryContext mcxt);
extern void strata_row_fetcher_end(StrataRowFetcher *f);

/*
 * How this backend read rows since it started: point lookups
 * (strata_tree_versions); a fetcher's reads answered by stepping its kept
 * iterator forward or by seeking it; and the entries forward scans read
 * straight from a leaf (a block or a memtable) or through the whole
 * iterator stack (engine/base/iter.h). Backend-local, no locks.
 */
typedef struct StrataReadCounters
{
	uint64		lookups;
	uint64		fetcher_steps;
	uint64		fetcher_seeks;
	uint64		scan_leaf_entries;
	uint64		scan_stack_entries;
} StrataReadCounters;

extern void strata_read_counters_get(StrataReadCounters *counters);

#endif							/* STRATA_READ_H */
