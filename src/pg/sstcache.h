/*
 * sstcache.h — every backend's process-local view of each tree's SSTables
 * (its "local version": the file list of the tree's current MANIFEST plus
 * open table readers), refreshed when the tree's version number moves, as
 * LevelDB's table cache keeps open tables. A local version handed out is a
 * hold (hold.h) until released.
 */
#ifndef STRATA_SSTCACHE_H
#define STRATA_SSTCACHE_H

#include "postgres.h"

#include "engine/base/iter.h"
#include "engine/sstable/table.h"
#include "pg/hold.h"
#include "pg/tree.h"

typedef struct StrataLocalVersion StrataLocalVersion;

/* The SSTables of tree as of now, held until released with *hold. */
extern StrataLocalVersion *strata_local_version_get(StrataTree *tree, StrataHoldId *hold);
extern void strata_local_version_release(StrataLocalVersion *lv, StrataHoldId hold);
extern int	strata_local_version_nfiles(StrataLocalVersion *lv);
extern void strata_local_version_file(StrataLocalVersion *lv, int i, int *level,
									  uint64 *number, sg_table_reader **reader);
/*
 * Iterators for a merge over the files into iters (room for nfiles): one
 * per level-0 file, newest first, then one per deeper level (its files
 * concatenated). Returns how many. They read through the block cache
 * when through_cache is set (a row fetcher's view: short reads by index
 * order, the cache's business as much as a point lookup's) or when the
 * files fit it (strata_block_cache_fits_scan).
 */
extern int	strata_local_version_iters(StrataLocalVersion *lv, sg_iter **iters,
									   bool through_cache);
/* Every version of key in the files, newest first, until fn returns false. */
extern bool strata_local_version_versions(StrataLocalVersion *lv, sg_slice key,
										  bool (*fn) (void *arg, uint64_t seq, sg_value_type type,
													  sg_slice value),
										  void *arg);

/*
 * Path of the live MANIFEST of the tree in dir, from its CURRENT.
 * SG_NOT_FOUND: nothing was ever flushed there; a CURRENT missing beside
 * the tree's files, or naming no MANIFEST, is SG_CORRUPTION.
 */
extern sg_code strata_current_manifest_path(const char *dir, char *path, size_t len,
											sg_err *err);

#endif							/* STRATA_SSTCACHE_H */
