/*
 * version.h — a version: the set of SSTables that make up a tree at one
 * moment, per level, and the pure functions over it (apply an edit, find
 * overlapping files, size per level, pick a compaction).
 *
 * Invariants of every version (checked by sg_version_apply):
 *  - a file number appears at most once in the whole version;
 *  - level 0 files may overlap each other; they are ordered newest first
 *    (largest_seq descending, then file number descending);
 *  - in levels >= 1 files are sorted by smallest key and their USER-key
 *    ranges do not overlap (no user key spans two files of one level:
 *    compaction only cuts outputs between user keys).
 *
 * Versions are immutable once built. They share sg_file_meta objects by
 * reference count; a version itself is reference counted (refs) by whoever
 * reads it. When the last reference to a file goes, the caller's release
 * callback decides what to do (close a reader, unlink an obsolete file).
 *
 * Thread safety: no locks here. Every ref/unref and apply on versions that
 * share files must be serialised by the caller (the standalone DB uses its
 * mutex; PostgreSQL its per-tree lock). Reading a version the caller holds
 * a reference on needs no lock.
 */
#ifndef SG_VERSION_H
#define SG_VERSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/base/slice.h"
#include "engine/base/status.h"
#include "engine/version/version_edit.h"

typedef struct sg_version
{
	sg_file_meta **files[SG_NUM_LEVELS];
	size_t		nfiles[SG_NUM_LEVELS];
	uint32_t	refs;
} sg_version;

/* Called when a file's last reference goes, just before its meta is freed. */
typedef void (*sg_file_release_fn) (void *arg, sg_file_meta *meta);

/* An empty version with refs = 1; NULL on memory failure. */
extern sg_version *sg_version_new_empty(void);

extern void sg_version_ref(sg_version *v);

/*
 * Drop a reference; at zero the version is freed, and every file whose
 * last reference that was goes through release (may be NULL) and is freed.
 */
extern void sg_version_unref(sg_version *v, sg_file_release_fn release, void *arg);

/*
 * Build base + edit as a new version (refs = 1). A snapshot edit starts
 * from an empty version instead of base. A file the edit deletes and adds
 * back (a move to another level) keeps its meta object (and cache slot).
 * Violations are SG_CORRUPTION naming `what` (e.g. the MANIFEST path):
 * deleting a file that is not at that level, adding a number already
 * present, or overlapping files in a level >= 1.
 */
extern sg_code sg_version_apply(const sg_version *base, const sg_version_edit *edit,
								const char *what, sg_version **out, sg_err *err);

/* True if the version holds a file with this number (at any level). */
extern bool sg_version_has_file(const sg_version *v, uint64_t number, int *level);

/* Sum of file sizes at level. */
extern uint64_t sg_version_level_bytes(const sg_version *v, int level);
extern size_t sg_version_total_files(const sg_version *v);

/*
 * Files at level whose user-key range intersects [begin, end] (both user
 * keys; a NULL data pointer with len 0 means unbounded on that side).
 * *out is a malloc'd array of borrowed pointers (free() it), *n its length;
 * for level 0 in version order, for others in key order.
 */
extern sg_code sg_version_overlapping(const sg_version *v, int level,
									  const sg_slice *begin, const sg_slice *end,
									  sg_file_meta ***out, size_t *n, sg_err *err);

/*
 * Index of the file at level >= 1 that may hold user_key (the first whose
 * largest user key >= user_key), or -1 if none can.
 */
extern long sg_version_find_file(const sg_version *v, int level, sg_slice user_key);

/*
 * True if no file at any level deeper than `level` overlaps the user-key
 * range [begin, end]: a tombstone at `level` for a key in it hides nothing
 * below and may be dropped once no snapshot needs it.
 */
extern bool sg_version_range_empty_below(const sg_version *v, int level,
										 sg_slice begin, sg_slice end);

/* ------------------------------------------------------------------
 * Compaction picking (leveled)
 * ------------------------------------------------------------------ */

typedef struct sg_picker_options
{
	int			l0_trigger;		/* compact L0 at this many files; 4 */
	uint64_t	l1_target_bytes;	/* L1 target size; 64 MiB */
	int			level_multiplier;	/* Ln+1 target = Ln target * this; 10 */
} sg_picker_options;

extern void sg_picker_options_init(sg_picker_options *o);

/* Target size of level (>= 1). */
extern uint64_t sg_picker_level_target(const sg_picker_options *o, int level);

/*
 * Score of a level: L0 = files / l0_trigger, Ln = bytes / target. A level
 * needs compaction when its score is >= 1. The last level never does.
 */
extern double sg_picker_level_score(const sg_version *v, const sg_picker_options *o,
									int level);

/*
 * Bytes compaction has yet to rewrite before every level is within its
 * target: all of level 0 once it holds l0_trigger files, and each other
 * level's bytes over its target (the last level has no target). An
 * estimate, as RocksDB's "pending compaction bytes" is: what moves down
 * may push the next level over too. Takes sizes rather than a version so
 * that callers holding only file sizes (a backend's view) can use it.
 */
extern uint64_t sg_picker_pending_bytes(const sg_picker_options *o,
										const uint64_t level_bytes[SG_NUM_LEVELS],
										const int level_files[SG_NUM_LEVELS]);

typedef struct sg_compaction_pick
{
	int			level;			/* inputs[0] are at level, inputs[1] at level + 1 */
	sg_file_meta **inputs[2];	/* borrowed from the version; free() the arrays */
	size_t		ninputs[2];
	bool		trivial_move;	/* one input, nothing overlaps below: just move it */
	bool		bottommost;		/* nothing deeper than level + 1 overlaps the inputs */
	sg_buf		smallest_user;	/* user-key range of all inputs */
	sg_buf		largest_user;
} sg_compaction_pick;

extern void sg_compaction_pick_free(sg_compaction_pick *p);

/*
 * Choose the most urgent compaction of v (highest score >= 1), or none
 * (SG_NOT_FOUND). L0: every L0 file (so L0's newest-first order never
 * mixes compacted and uncompacted data), plus the overlapping L1 files.
 * Ln: the file with the oldest data (smallest smallest_seq), plus the
 * overlapping Ln+1 files.
 */
extern sg_code sg_pick_compaction(const sg_version *v, const sg_picker_options *o,
								  sg_compaction_pick *out, sg_err *err);

/*
 * A compaction of every file at level overlapping [begin, end] (unbounded
 * when the slice's data is NULL) into level + 1 (for level 0: all L0
 * files). SG_NOT_FOUND if nothing at level overlaps. Never a trivial move
 * (manual compactions rewrite, so tombstones can be dropped).
 */
extern sg_code sg_pick_range(const sg_version *v, int level, const sg_slice *begin,
							 const sg_slice *end, sg_compaction_pick *out, sg_err *err);

#endif							/* SG_VERSION_H */
