/*
 * write.h — the write path of a tree: a new tree (logged to the sink), row
 * versions appended (sink, then memtable, under the tree lock so that log
 * order is sequence order), engine tombstones for reaped rows, and the
 * copy of a tree's rows into another (rewrites).
 */
#ifndef STRATA_WRITE_H
#define STRATA_WRITE_H

#include "postgres.h"

#include "access/transam.h"
#include "lib/stringinfo.h"
#include "utils/rel.h"
#include "pg/rowversion.h"
#include "pg/tree.h"

/* A new tree for rnode (CREATE, TRUNCATE, rewrites), logged for redo. */
/* Set rel's own bottom-level codec: durable, then logged (treeopts.c). */
extern void strata_tree_set_bottom_codec(Relation rel, StrataTree *tree, StrataTreeCodec codec);
extern StrataTree *strata_tree_create(const RelFileNode *rnode, BackendId backend,
									  char persistence);
extern void strata_tree_append(Relation rel, StrataTree *tree, uint64 rowid,
							   StringInfo version);
extern void strata_tree_append_many(Relation rel, StrataTree *tree, const uint64 *rowids,
									StringInfo *versions, int n);
/* Hide every version of rows VACUUM reaped (engine tombstones). */
extern void strata_tree_reap_rows(Relation rel, StrataTree *tree, const uint64 *rowids,
								  int n);
/* Copy the rows of src that skip() keeps into dst, renumbered by remap(). */
extern void strata_tree_copy(Relation src_rel, StrataTree *src, Relation dst_rel,
							 StrataTree *dst,
							 bool (*skip) (void *arg, uint64 rowid,
										   const StrataVersion *versions, int n),
							 uint64 (*remap) (void *arg, uint64 rowid),
							 void *arg, FullTransactionId *oldest);

#endif							/* STRATA_WRITE_H */
