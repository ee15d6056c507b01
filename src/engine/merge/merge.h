/*
 * merge.h — merging iterators: one ordered stream over many sources, and
 * the two ways readers look at it.
 *
 *  - sg_merge_iter_new(): a k-way merge of iterators that each yield
 *    internal keys in ikey.h order (memtables, SSTables, levels), yielding
 *    every entry of every child in that order. This is what compaction
 *    reads and what the two views below sit on.
 *
 *  - sg_concat_iter_new(): the files of one sorted level (1 and deeper:
 *    disjoint key ranges in order) as one iterator, so that a level is one
 *    child of a merge, not one per file.
 *
 *  - sg_view_iter_new(): the user's view at a snapshot sequence: one entry
 *    per user key, the newest version with seq <= snapshot, and nothing
 *    for keys whose newest visible version is a tombstone. key() is the
 *    user key.
 *
 *  - sg_versions_iter_new(): every visible version of each user key,
 *    newest first, ending at (and including) the first tombstone, which
 *    hides everything older. key() is the internal key, so the caller sees
 *    each version's sequence and type. The PostgreSQL layer applies its own
 *    MVCC rules to row versions this way; compaction hands a key's versions
 *    to its filter.
 *
 * Ownership: each constructor takes ownership of the iterators it is given
 * (also when it fails: it then destroys them and returns an iterator that
 * reports SG_NO_MEMORY), and destroying the result destroys them.
 *
 * Errors are fail-stop: as soon as a child reports an error (or yields a
 * key too short to be an internal key), the merged iterator turns invalid
 * and status() reports that error, for good. A reader therefore never
 * mistakes an older version for the newest because a newer source broke.
 *
 * Thread safety: like every iterator, each belongs to one thread.
 */
#ifndef SG_MERGE_H
#define SG_MERGE_H

#include <stdint.h>

#include "engine/base/iter.h"

/*
 * A k-way merge over children[0..n). Entries with identical internal keys
 * (impossible in a correct engine) are all yielded, lower child index
 * first. The children array itself is copied; NULL children are skipped.
 */
extern sg_iter *sg_merge_iter_new(sg_iter **children, int n);

/*
 * The concatenation of children[0..n), which cover disjoint key ranges in
 * ascending order (every key of child i sorts before every key of child
 * i+1); largest[i] is child i's largest internal key (copied). Yields the
 * entries of child 0, then child 1, ...; seek() binary-searches largest[]
 * and seeks one child. A child's error stops it for good (status()).
 * Takes ownership of the children (the array is copied).
 */
extern sg_iter *sg_concat_iter_new(sg_iter **children, const sg_slice *largest, int n);

/*
 * The visible view of internal at snapshot. key() is the user key, value()
 * the value of its newest version with seq <= snapshot. seek() takes a user
 * key: it lands on the first visible user key >= target.
 */
extern sg_iter *sg_view_iter_new(sg_iter *internal, uint64_t snapshot);

/*
 * The versions view of internal at snapshot: for each user key in order,
 * its versions with seq <= snapshot, newest first, stopping after the first
 * tombstone. key() is the internal key (parse it with sg_ikey_parse), value()
 * the version's value. seek() takes a user key, like sg_view_iter_new().
 * Pass SG_MAX_SEQUENCE to see every version.
 *
 * With SG_MAX_SEQUENCE, the view offers its internal stream's leaf
 * (iter.h: a block's or a memtable's entries, stepped without the merge
 * and view above them): a reader stepping it sees every entry as the
 * internal stream has it, so after a tombstone it must pass over the
 * older versions of that key itself. A merge bounds its leaf by its next
 * child's key; levels and tables by the end of the block.
 */
extern sg_iter *sg_versions_iter_new(sg_iter *internal, uint64_t snapshot);

/*
 * On an iterator from sg_versions_iter_new(): skip the remaining versions
 * of the current user key and move to the newest visible version of the
 * next one (e.g. once the caller found the version it can see).
 * REQUIRES: valid(). A no-op on any other kind of iterator.
 */
extern void sg_versions_iter_next_key(sg_iter *it);

#endif							/* SG_MERGE_H */
