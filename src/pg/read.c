/*
 * read.c — the read paths of a tree (read.h): one row's versions, newest
 * first, from its pinned memtables and then its SSTables; a forward scan
 * over all rows merging both; the oldest unfrozen writer (VACUUM). Pins
 * are holds (hold.h), given back by their taker or at abort.
 */
#include "postgres.h"

#include "access/xact.h"
#include "engine/merge/merge.h"
#include "pg/error.h"
#include "pg/filestats.h"
#include "pg/hold.h"
#include "pg/read.h"
#include "pg/rowversion.h"
#include "pg/sstcache.h"
#include "pg/tree.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

/* ------------------------------------------------------------------------
 * Read paths
 * ------------------------------------------------------------------------
 */

/* This backend's reads by row id since it started (read.h). */
static StrataReadCounters read_counters;

void
strata_read_counters_get(StrataReadCounters *counters)
{
	*counters = read_counters;
}

/* Memtables of a tree pinned for reading, newest first, each with its hold. */
typedef struct PinnedSet
{
	int			n;
	StrataMemtableRef mts[STRATA_MAX_IMM + 1];
	StrataHoldId holds[STRATA_MAX_IMM + 1];
	bool		empty[STRATA_MAX_IMM + 1];	/* held nothing when pinned */
} PinnedSet;

/*
 * A memtable pin is a hold (hold.h): an error that skips unpin_memtables
 * still gives it back when the statement's resource owner goes.
 */
static void
release_memtable_pin(uintptr_t off, uintptr_t generation)
{
	StrataMemtableRef ref = {(sg_off) off, (uint64) generation};

	strata_memtable_unpin(ref);
}

/*
 * Pin tree's memtables. A memtable found empty here may fill while pinned;
 * a reader may skip it only if what comes after the pin cannot matter to
 * it (strata_tree_scan_begin).
 */
static void
pin_memtables(StrataTree *tree, PinnedSet *ps)
{
	sg_memtable mt;

	/* room to remember the pins first: no error between ref and record */
	strata_hold_reserve(STRATA_MAX_IMM + 1);

	ps->n = 0;
	LWLockAcquire(&tree->lock, LW_SHARED);
	if (strata_has_active(tree))
		ps->mts[ps->n++] = tree->active;
	for (int i = tree->nimm - 1; i >= 0; i--)
		ps->mts[ps->n++] = tree->imm[i];
	for (int i = 0; i < ps->n; i++)
	{
		strata_memtable_attach(ps->mts[i], &mt);
		sg_memtable_ref(&mt);
		/* read under the tree lock, which every writer holds to add */
		ps->empty[i] = sg_memtable_entries(&mt) == 0;
		ps->holds[i] = strata_hold(release_memtable_pin, (uintptr_t) ps->mts[i].off,
								   (uintptr_t) ps->mts[i].generation);
	}
	LWLockRelease(&tree->lock);
}

static void
unpin_memtables(PinnedSet *ps)
{
	/* ps->n first: should an unhold fail, nothing is given back twice */
	int			n = ps->n;

	ps->n = 0;
	for (int i = 0; i < n; i++)
	{
		strata_unhold(ps->holds[i]);
		strata_memtable_unpin(ps->mts[i]);
	}
}

/*
 * Hand every memtable entry of tree (key and value as stored), then every
 * SSTable of its files, to the callbacks: what VACUUM learns about the
 * whole tree without reading the files' rows. Memtables are pinned before
 * the files are listed, as readers do, so a flush in between is seen
 * twice, never missed.
 */
static void
walk_tree_contents(StrataTree *tree, void (*on_entry) (void *arg, sg_slice ikey, sg_slice value),
				   void (*on_file) (void *arg, sg_table_reader *reader), void *arg)
{
	PinnedSet	ps;
	StrataLocalVersion *lv;
	StrataHoldId lv_hold;

	pin_memtables(tree, &ps);
	PG_TRY();
	{
		for (int i = 0; i < ps.n; i++)
		{
			sg_memtable mt;
			sg_iter    *it;

			strata_memtable_attach(ps.mts[i], &mt);
			it = sg_memtable_iter(&mt);
			for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it))
				on_entry(arg, sg_iter_key(it), sg_iter_value(it));
			sg_iter_destroy(it);
		}
		lv = strata_local_version_get(tree, &lv_hold);
		for (int i = 0; i < strata_local_version_nfiles(lv); i++)
		{
			int			level;
			uint64		number;
			sg_table_reader *reader;

			strata_local_version_file(lv, i, &level, &number, &reader);
			on_file(arg, reader);
		}
		strata_local_version_release(lv, lv_hold);
	}
	PG_FINALLY();
	{
		unpin_memtables(&ps);
	}
	PG_END_TRY();
}

typedef struct OldestUnfrozen
{
	uint64		min;			/* FullTransactionId, 0 none yet */
	bool		known;
	uint64		stubs;
} OldestUnfrozen;

static void
oldest_unfrozen_entry(void *arg, sg_slice ikey, sg_slice value)
{
	OldestUnfrozen *ou = arg;
	sg_parsed_ikey k;
	StrataVersion v;

	if (!sg_ikey_parse(ikey, &k) || k.type != SG_TYPE_PUT)
		return;
	if (!strata_version_decode(value.data, value.len, &v))
	{
		ou->known = false;
		return;
	}
	if (!(v.flags & STRATA_VF_FROZEN) &&
		(ou->min == 0 || U64FromFullTransactionId(v.writer) < ou->min))
		ou->min = U64FromFullTransactionId(v.writer);
}

static void
oldest_unfrozen_file(void *arg, sg_table_reader *reader)
{
	OldestUnfrozen *ou = arg;
	StrataFileStats fs;

	if (!strata_file_stats_parse(sg_table_reader_props(reader)->user_stats, &fs) ||
		fs.oldest_unfrozen == 1)
	{
		ou->known = false;
		return;
	}
	ou->stubs += fs.dead_stubs;
	if (fs.oldest_unfrozen != 0 && (ou->min == 0 || fs.oldest_unfrozen < ou->min))
		ou->min = fs.oldest_unfrozen;
}

/*
 * The oldest writer of an unfrozen version anywhere in the tree: in its
 * memtables (read entry by entry; VACUUM has just flushed them, so they
 * hold only what came since) and its SSTables (from each file's
 * statistics). Returns false when some file does not know (no
 * statistics); else *oldest is the oldest writer, or invalid when every
 * version is frozen. *stubs gets the number of dead stubs the files hold.
 */
bool
strata_tree_oldest_unfrozen(Relation rel, StrataTree *tree, FullTransactionId *oldest,
							uint64 *stubs)
{
	OldestUnfrozen ou = {0, true, 0};

	walk_tree_contents(tree, oldest_unfrozen_entry, oldest_unfrozen_file, &ou);
	*oldest = FullTransactionIdFromU64(ou.min);
	*stubs = ou.stubs;
	return ou.known;
}

/* ------------------------------------------------------------------------
 * Where VACUUM must look: row ids that may hold a row dead to everyone
 * ------------------------------------------------------------------------
 */

/*
 * Stretches of row ids shorter than this before the first suspect or
 * after the last are read rather than skipped: heap's SKIP_PAGES_THRESHOLD
 * of 32 pages, so that a small table is read whole and the row count
 * VACUUM reports for it is exact.
 */
#define SUSPECT_RANGE_GAP ((uint64) 32 * STRATA_ROWS_PER_BLOCK)

/*
 * Between two suspects, a stretch of row ids shorter than this is read
 * rather than skipped: stepping over a row in a scan costs about a tenth
 * of a seek (which may load a block), so shorter gaps are cheaper to read.
 * Heap skips only whole runs of 32 all-visible pages, because its reads
 * are pages and sequential; a seek here skips rows, so a table whose
 * changes are spread thinly (1% of its rows updated) is read at its
 * changed rows, not whole.
 */
#define SUSPECT_JOIN_GAP ((uint64) 32)

typedef struct SuspectRanges
{
	StrataRowRange *r;
	int			n;
	int			cap;
} SuspectRanges;

/* Is a range starting at lo to be read together with last (lo >= last->lo)? */
static bool
joins_range(const StrataRowRange *last, uint64 lo)
{
	return lo <= last->hi || lo - last->hi <= SUSPECT_JOIN_GAP;
}

static void
add_suspect_range(SuspectRanges *sr, uint64 lo, uint64 hi)
{
	StrataRowRange *last = sr->n > 0 ? &sr->r[sr->n - 1] : NULL;

	/*
	 * A memtable's entries come in key order, a hot row's versions one
	 * after another: extend the last range rather than keep one per entry.
	 */
	if (last != NULL && lo >= last->lo && joins_range(last, lo))
	{
		last->hi = Max(last->hi, hi);
		return;
	}
	if (sr->n == sr->cap)
	{
		sr->cap = sr->cap == 0 ? 64 : sr->cap * 2;
		sr->r = sr->r == NULL ? palloc(sizeof(StrataRowRange) * sr->cap)
			: repalloc(sr->r, sizeof(StrataRowRange) * sr->cap);
	}
	sr->r[sr->n].lo = lo;
	sr->r[sr->n].hi = hi;
	sr->n++;
}

static int
compare_range_lo(const void *a, const void *b)
{
	uint64		x = ((const StrataRowRange *) a)->lo;
	uint64		y = ((const StrataRowRange *) b)->lo;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* The row id of an internal key, or the far end when it is not one. */
static uint64
ikey_rowid_or(sg_slice ikey, uint64 otherwise)
{
	sg_parsed_ikey k;

	if (!sg_ikey_parse(ikey, &k) || k.user_key.len != STRATA_ROWID_KEY_LEN)
		return otherwise;
	return sg_decode_be64(k.user_key.data);
}

/*
 * Does an SSTable hold anything but frozen row data, by its statistics?
 * (Files without statistics may.) *fs gets them, parsed once for the
 * caller too, when *has_stats.
 */
static bool
file_has_suspects(sg_table_reader *reader, StrataFileStats *fs, bool *has_stats)
{
	*has_stats = strata_file_stats_parse(sg_table_reader_props(reader)->user_stats, fs);
	return !*has_stats || fs->oldest_unfrozen != 0 || fs->dead_stubs > 0;
}

static void
suspect_entry(void *arg, sg_slice ikey, sg_slice value)
{
	SuspectRanges *sr = arg;
	sg_parsed_ikey k;
	StrataVersion v;

	if (!sg_ikey_parse(ikey, &k) || k.user_key.len != STRATA_ROWID_KEY_LEN)
	{
		add_suspect_range(sr, 0, PG_UINT64_MAX);
		return;
	}
	if (k.type != SG_TYPE_PUT)
		return;					/* a reaped row: readers no longer find it */
	if (strata_version_decode(value.data, value.len, &v) &&
		v.kind == STRATA_DATA && (v.flags & STRATA_VF_FROZEN))
		return;
	add_suspect_range(sr, sg_decode_be64(k.user_key.data), sg_decode_be64(k.user_key.data));
}

/*
 * A file without a list whose entries are fewer than this fraction of the
 * row ids in its range is read entry by entry for its suspects, as a
 * memtable is; a denser one by its whole range (read once, by the scan).
 */
#define SPARSE_FILE_FACTOR 8

/*
 * A file with suspects: the row ids it lists; without a list (more
 * suspects than a file lists, or written before files listed them), the
 * suspects among its entries when it is sparse (a flush of changes
 * spread over a large table), else its whole row id range.
 */
static void
suspect_file(void *arg, sg_table_reader *reader)
{
	SuspectRanges *sr = arg;
	const sg_table_props *props = sg_table_reader_props(reader);
	StrataFileStats fs;
	bool		has_stats;
	uint64		lo;
	uint64		hi;

	if (!file_has_suspects(reader, &fs, &has_stats))
		return;
	if (has_stats && fs.suspects_known)
	{
		uint64		rowid = 0;

		while (strata_file_stats_next_suspect(&fs.suspects, &rowid))
			add_suspect_range(sr, rowid, rowid);
		return;
	}
	lo = ikey_rowid_or(props->smallest_key, 0);
	hi = ikey_rowid_or(props->largest_key, PG_UINT64_MAX);
	if (hi != PG_UINT64_MAX && lo <= hi &&
		(hi - lo) / SPARSE_FILE_FACTOR > props->num_entries)
	{
		sg_iter    *it = sg_table_reader_iter(reader);
		bool		read_all;

		for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it))
			suspect_entry(sr, sg_iter_key(it), sg_iter_value(it));
		read_all = sg_iter_status(it, NULL) == SG_OK;
		sg_iter_destroy(it);
		if (read_all)
			return;
		/* unreadable: its whole range, where the scan reports the damage */
	}
	add_suspect_range(sr, lo, hi);
}

/*
 * The row id ranges of tree that VACUUM must read, sorted and disjoint,
 * palloc'd; returns how many. What it may skip is strata's counterpart of
 * heap's all-visible pages: rows whose every version is frozen row data
 * (compaction froze them: visible to every snapshot, now and later). Any
 * other version is a "suspect": a change since then (row data not yet
 * frozen, a delete, a move, a lock, a dead stub), where a row may be dead
 * or new; as heap reads the pages changed since they were all-visible,
 * VACUUM reads these, and counts the rows there. Memtables are read entry
 * by entry (engine tombstones of reaped rows aside); a file with suspects
 * (by its statistics: an unfrozen writer or a stub) gives the row ids it
 * lists (filestats.c), or its whole range if it lists none.
 */
int
strata_tree_suspect_ranges(Relation rel, StrataTree *tree, StrataRowRange **ranges)
{
	SuspectRanges sr = {NULL, 0, 0};
	int			out = 0;

	walk_tree_contents(tree, suspect_entry, suspect_file, &sr);
	if (sr.n > 0)
	{
		qsort(sr.r, sr.n, sizeof(StrataRowRange), compare_range_lo);
		for (int i = 1; i < sr.n; i++)
		{
			StrataRowRange *last = &sr.r[out];

			if (joins_range(last, sr.r[i].lo))
				last->hi = Max(last->hi, sr.r[i].hi);
			else
				sr.r[++out] = sr.r[i];
		}
		out++;
		if (sr.r[0].lo <= SUSPECT_RANGE_GAP)
			sr.r[0].lo = 0;
		if (sr.r[out - 1].hi >= tree->next_rowid ||
			tree->next_rowid - sr.r[out - 1].hi <= SUSPECT_RANGE_GAP)
			sr.r[out - 1].hi = PG_UINT64_MAX;
	}
	*ranges = sr.r;
	return out;
}

typedef struct VersionCollector
{
	StrataVersion *versions;
	int			n;
	int			cap;
	MemoryContext mcxt;
	bool		corrupt;
	bool		tombstone;		/* an engine tombstone: nothing older counts */
	uint64		last_seq;		/* of the version seen last (duplicates) */
	bool		kill_pending;	/* a super-delete hides the next insert of kill_writer */
	FullTransactionId kill_writer;
	bool		complete;		/* nothing older can matter to this backend */
} VersionCollector;

#define VERSION_COLLECTOR_INIT(cxt) {NULL, 0, 0, (cxt), false, false, UINT64_MAX, false, {0}, false}

/*
 * Once a row's versions reach one whose writer committed before every
 * snapshot this backend holds (TransactionXmin), each of those snapshots
 * sees that version or a newer one: older versions cannot matter, and a
 * hot row's long chain (until compaction retires it) is not read at all.
 */
static bool
version_ends_chain(const StrataVersion *v)
{
	TransactionId xid;

	if (v->kind == STRATA_LOCK)
		return false;
	if (v->flags & STRATA_VF_FROZEN)
		return true;
	xid = XidFromFullTransactionId(v->writer);
	if (!TransactionIdIsValid(TransactionXmin) || !TransactionIdIsNormal(xid) ||
		!TransactionIdPrecedes(xid, TransactionXmin))
		return false;
	return strata_ended_writer_committed(v);
}

/*
 * Add one version (newest first) to the collection. A version seen twice
 * (a flush racing with the read) is taken once; an insert undone by its own
 * speculative-insertion failure (a TOMBSTONE flagged KILLS_INSERT just above
 * it) is left out together with that tombstone, so no reader ever sees it.
 */
static void
collect_version(VersionCollector *vc, uint64 seq, sg_slice value)
{
	char	   *copy;
	StrataVersion *v;

	if (seq == vc->last_seq)
		return;
	vc->last_seq = seq;
	if (vc->n == vc->cap)
	{
		vc->cap = vc->cap ? vc->cap * 2 : 8;
		vc->versions = vc->versions
			? repalloc(vc->versions, sizeof(StrataVersion) * vc->cap)
			: MemoryContextAlloc(vc->mcxt, sizeof(StrataVersion) * vc->cap);
	}
	copy = MemoryContextAlloc(vc->mcxt, Max(value.len, 1));
	memcpy(copy, value.data, value.len);
	v = &vc->versions[vc->n];
	if (!strata_version_decode(copy, value.len, v))
	{
		vc->corrupt = true;
		return;
	}
	v->seq = seq;
	if (v->kind == STRATA_TOMBSTONE && (v->flags & STRATA_VF_KILLS_INSERT))
	{
		vc->kill_pending = true;
		vc->kill_writer = v->writer;
		return;
	}
	if (vc->kill_pending && v->kind == STRATA_DATA &&
		FullTransactionIdEquals(v->writer, vc->kill_writer))
	{
		vc->kill_pending = false;
		return;
	}
	vc->n++;
	if (version_ends_chain(v))
		vc->complete = true;
}

static bool
collect_memtable_version(void *ctx, uint64_t seq, sg_value_type type, sg_slice value)
{
	VersionCollector *vc = ctx;

	if (type == SG_TYPE_DELETE)
	{
		vc->tombstone = true;	/* the row was removed: nothing older counts */
		return false;
	}
	collect_version(vc, seq, value);
	return !vc->corrupt && !vc->complete;
}

static bool
collect_sst_version(void *ctx, uint64_t seq, sg_value_type type, sg_slice value)
{
	return collect_memtable_version(ctx, seq, type, value);
}

static void
report_corrupt_version(Relation rel, uint64 rowid)
{
	ItemPointerData tid;

	strata_rowid_to_tid(rowid, &tid);
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("malformed row version in strata table \"%s\" at TID (%u,%u)",
					RelationGetRelationName(rel),
					ItemPointerGetBlockNumber(&tid), ItemPointerGetOffsetNumber(&tid))));
}

/*
 * All versions of one row, newest first, palloc'd in mcxt. Returns the
 * count (0: the row id was never used, or is gone).
 */
int
strata_tree_versions(Relation rel, StrataTree *tree, uint64 rowid,
					 StrataVersion **versions, MemoryContext mcxt)
{
	PinnedSet	ps;
	VersionCollector vc = VERSION_COLLECTOR_INIT(mcxt);
	char		key[STRATA_ROWID_KEY_LEN];
	sg_memtable mt;

	read_counters.lookups++;
	sg_encode_be64(key, rowid);
	pin_memtables(tree, &ps);
	for (int i = 0; i < ps.n && !vc.corrupt && !vc.tombstone && !vc.complete; i++)
	{
		strata_memtable_attach(ps.mts[i], &mt);
		sg_memtable_versions(&mt, sg_slice_make(key, sizeof(key)), SG_MAX_SEQUENCE,
							 collect_memtable_version, &vc);
	}
	/* then the SSTables, pinned after the memtables so nothing falls between */
	if (!vc.corrupt && !vc.tombstone && !vc.complete)
	{
		StrataHoldId lv_hold;
		StrataLocalVersion *lv = strata_local_version_get(tree, &lv_hold);

		strata_local_version_versions(lv, sg_slice_make(key, sizeof(key)),
									  collect_sst_version, &vc);
		strata_local_version_release(lv, lv_hold);
	}
	unpin_memtables(&ps);
	if (vc.corrupt)
		report_corrupt_version(rel, rowid);
	*versions = vc.versions;
	return vc.n;
}

/* ------------------------------------------------------------------------
 * Forward scans
 * ------------------------------------------------------------------------
 */
struct StrataTreeScan
{
	Relation	rel;
	StrataTree *tree;
	PinnedSet	pinned;
	StrataLocalVersion *lv;
	StrataHoldId lv_hold;
	bool		full_chains;	/* every version, even those no snapshot here needs */
	sg_iter    *it;				/* versions view over the merged sources */
	MemoryContext rowcxt;		/* versions of the current row */
	bool		started;
	bool		row_collected;	/* rowcxt holds the last row's versions */

	/*
	 * A leaf of it being stepped (engine/base/iter.h): while entries stay
	 * below bound they come straight from one block or memtable, without
	 * the merge and the view above it, which is most of a scan's cost per
	 * row otherwise. While leaf is set, it is neither moved nor read:
	 * leave_leaf() resyncs it first. bypass_leaf: the leaf just left gave
	 * nothing (its first entry tied with the bound), so the next entry is
	 * taken through it.
	 */
	sg_iter    *leaf;
	sg_slice	bound;
	bool		leaf_stepped;
	bool		bypass_leaf;
	bool		bound_is_row;	/* bound is a row id's key: compared as numbers */
	uint64		bound_rowid;
	uint64		bound_trailer;

	/* The entry the scan stands on, once read (current_entry). */
	bool		have_entry;
	sg_parsed_ikey entry_key;
	sg_slice	entry_value;

	/*
	 * The row returned last was its single version, decoded where the
	 * scan stands (valid until the scan moves): its older versions are
	 * passed over at the next call.
	 */
	bool		skip_pending;
	uint64		skip_rowid;
	StrataVersion single;

	/*
	 * The row returned last, given back (strata_tree_scan_unread): the next
	 * call returns it again. gap_from: no row lies in [gap_from, the given
	 * back row), because the scan read every row from its last seek on;
	 * a seek into that gap needs no move (prev_gap_from: gap_from before
	 * the row was returned).
	 */
	bool		unread;
	uint64		unread_rowid;
	StrataVersion *unread_versions;
	int			unread_n;
	uint64		gap_from;
	uint64		prev_gap_from;
};

/*
 * through_cache: read every block through the block cache, as a point
 * lookup does. A row fetcher's view reads a few blocks near each index
 * entry, again and again across statements: from the cache those are a
 * copy each, where a scan's own reads are a pread of a read-ahead window,
 * a decompression and a CRC check each time.
 */
static StrataTreeScan *
tree_scan_begin(Relation rel, StrataTree *tree, bool full_chains, bool through_cache)
{
	StrataTreeScan *scan = palloc0(sizeof(StrataTreeScan));
	sg_iter   **children;
	sg_memtable mt;
	int			nchildren;

	scan->rel = rel;
	scan->tree = tree;
	scan->full_chains = full_chains;
	scan->rowcxt = AllocSetContextCreate(CurrentMemoryContext, "strata scan row",
										 ALLOCSET_DEFAULT_SIZES);
	pin_memtables(tree, &scan->pinned);
	scan->lv = strata_local_version_get(tree, &scan->lv_hold);

	children = malloc(sizeof(sg_iter *) * (scan->pinned.n + strata_local_version_nfiles(scan->lv) + 1));
	if (children == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	/*
	 * A memtable empty when pinned holds nothing a scan's snapshot can see
	 * (whatever comes later was not committed when the scan began), nor
	 * anything a fetcher's view must show (read.c, "Why a kept view is
	 * correct"): it is left out, and a tree whose rows are all in one
	 * sorted run is read without a merge.
	 */
	nchildren = 0;
	for (int i = 0; i < scan->pinned.n; i++)
	{
		if (scan->pinned.empty[i])
			continue;
		strata_memtable_attach(scan->pinned.mts[i], &mt);
		children[nchildren++] = sg_memtable_iter(&mt);
	}
	nchildren += strata_local_version_iters(scan->lv, children + nchildren, through_cache);
	scan->it = sg_versions_iter_new(nchildren == 1 ? children[0]
									: sg_merge_iter_new(children, nchildren),
									SG_MAX_SEQUENCE);
	free(children);
	return scan;
}

StrataTreeScan *
strata_tree_scan_begin(Relation rel, StrataTree *tree, bool full_chains)
{
	return tree_scan_begin(rel, tree, full_chains, false);
}

/* Stop stepping the leaf: the iterator takes up the leaf's position. */
static void
leave_leaf(StrataTreeScan *scan)
{
	if (scan->leaf == NULL)
		return;
	scan->leaf = NULL;
	scan->have_entry = false;
	sg_iter_resync(scan->it);
	if (!scan->leaf_stepped)
		scan->bypass_leaf = true;
}

void
strata_tree_scan_seek(StrataTreeScan *scan, uint64 rowid)
{
	char		key[STRATA_ROWID_KEY_LEN];

	if (scan->unread && scan->gap_from <= rowid && rowid <= scan->unread_rowid)
		return;					/* the given back row is the first at or after rowid */
	scan->unread = false;
	scan->gap_from = rowid;
	leave_leaf(scan);
	scan->have_entry = false;
	sg_encode_be64(key, rowid);
	sg_iter_seek(scan->it, sg_slice_make(key, sizeof(key)));
	scan->started = true;
	scan->bypass_leaf = false;
	scan->skip_pending = false;
}

/* Parse an entry's key, which must be a row id's. */
static pg_attribute_always_inline void
parse_entry_key(StrataTreeScan *scan, sg_slice key, sg_parsed_ikey *k)
{
	if (!sg_ikey_parse(key, k) || k->user_key.len != STRATA_ROWID_KEY_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("malformed key in strata table \"%s\"",
						RelationGetRelationName(scan->rel))));
}

/* Take the leaf it offers, if any; false if none. */
static bool
take_leaf(StrataTreeScan *scan)
{
	scan->leaf = sg_iter_leaf(scan->it, &scan->bound);
	if (scan->leaf == NULL)
		return false;
	scan->leaf_stepped = false;
	/* a row id's key (all a tree holds) orders as (row id, newest first) */
	scan->bound_is_row = scan->bound.len == STRATA_ROWID_KEY_LEN + SG_IKEY_TRAILER_LEN;
	if (scan->bound_is_row)
	{
		scan->bound_rowid = sg_decode_be64(scan->bound.data);
		scan->bound_trailer = sg_ikey_trailer(scan->bound);
	}
	return true;
}

/* Is the leaf's entry, key *k (raw: key), below the leaf's bound? */
static inline bool
below_bound(StrataTreeScan *scan, sg_slice key, const sg_parsed_ikey *k)
{
	uint64		rowid;

	if (scan->bound.len == 0)
		return true;
	if (!scan->bound_is_row)
		return sg_ikey_compare(key, scan->bound) < 0;
	rowid = sg_decode_be64(k->user_key.data);
	return rowid < scan->bound_rowid ||
		(rowid == scan->bound_rowid &&
		 sg_ikey_pack_trailer(k->seq, k->type) > scan->bound_trailer);
}

/*
 * The entry the scan stands on: its key parsed into *k and its value,
 * from the leaf while one serves, else from the iterator (which hands out
 * a leaf when it has one). False at the end of the tree.
 */
static pg_attribute_always_inline bool
current_entry(StrataTreeScan *scan, sg_parsed_ikey *k, sg_slice *value)
{
	while (!scan->have_entry)
	{
		if (scan->leaf != NULL)
		{
			sg_slice	key;

			if (sg_iter_valid(scan->leaf))
			{
				key = sg_iter_key(scan->leaf);
				parse_entry_key(scan, key, &scan->entry_key);
				if (below_bound(scan, key, &scan->entry_key))
				{
					scan->entry_value = sg_iter_value(scan->leaf);
					scan->have_entry = true;
					read_counters.scan_leaf_entries++;
					break;
				}
			}
			leave_leaf(scan);
			continue;
		}
		if (!sg_iter_valid(scan->it))
			return false;
		if (!scan->bypass_leaf && take_leaf(scan))
			continue;
		parse_entry_key(scan, sg_iter_key(scan->it), &scan->entry_key);
		scan->entry_value = sg_iter_value(scan->it);
		scan->have_entry = true;
		read_counters.scan_stack_entries++;
	}
	*k = scan->entry_key;
	*value = scan->entry_value;
	return true;
}

/* Step past the entry the scan stands on. REQUIRES: current_entry() was true. */
static pg_attribute_always_inline void
step_entry(StrataTreeScan *scan)
{
	scan->have_entry = false;
	if (scan->leaf != NULL)
	{
		sg_iter_next(scan->leaf);
		scan->leaf_stepped = true;
		return;
	}
	sg_iter_next(scan->it);
	scan->bypass_leaf = false;
}

/*
 * Versions of one row stepped over in a leaf before the rest are left to
 * the versions view, which seeks past a hot row's long chain.
 */
#define SKIP_STEPS_IN_LEAF 8

/* Pass over what is left of rowid's versions. */
static pg_attribute_always_inline void
skip_row(StrataTreeScan *scan, uint64 rowid)
{
	sg_parsed_ikey k;
	sg_slice	value;
	int			steps = 0;

	while (current_entry(scan, &k, &value) && sg_decode_be64(k.user_key.data) == rowid)
	{
		if (scan->leaf == NULL || ++steps > SKIP_STEPS_IN_LEAF)
		{
			leave_leaf(scan);
			scan->have_entry = false;
			sg_versions_iter_next_key(scan->it);
			scan->bypass_leaf = false;
			return;
		}
		step_entry(scan);
	}
}

/*
 * Every version of rowid, newest first, into vc, leaving the scan on the
 * next row id. REQUIRES: the scan stands on rowid's newest version, whose
 * key is *k and value value. A tombstone of the engine hides the versions
 * after it.
 */
static void
collect_row(StrataTreeScan *scan, sg_parsed_ikey *k, sg_slice value, uint64 rowid,
			VersionCollector *vc)
{
	for (;;)
	{
		if (k->type != SG_TYPE_PUT)
		{
			skip_row(scan, rowid);
			return;
		}
		collect_version(vc, k->seq, value);
		if (vc->corrupt)
			report_corrupt_version(scan->rel, rowid);
		if (vc->complete && !scan->full_chains)
		{
			skip_row(scan, rowid);
			return;
		}
		step_entry(scan);
		if (!current_entry(scan, k, &value) || sg_decode_be64(k->user_key.data) != rowid)
			return;
	}
}

/*
 * Most rows of a settled table have one version, which every snapshot here
 * sees or not by itself: if the version the scan stands on (key *k, value
 * value) is such a row's, decode it in place into scan->single (valid
 * until the scan moves), with no copy and no collection. Anything else (a
 * chain, a speculative insert's undoing, damage) is left to collect_row,
 * from the same place.
 */
static pg_attribute_always_inline bool
decode_single_version(StrataTreeScan *scan, const sg_parsed_ikey *k, sg_slice value)
{
	StrataVersion *v = &scan->single;

	if (k->type != SG_TYPE_PUT || scan->full_chains)
		return false;
	if (!strata_version_decode(value.data, value.len, v) ||
		(v->kind == STRATA_TOMBSTONE && (v->flags & STRATA_VF_KILLS_INSERT)) ||
		!version_ends_chain(v))
		return false;
	v->seq = k->seq;
	return true;
}

bool
strata_tree_scan_next(StrataTreeScan *scan, uint64 *rowid,
					  StrataVersion **versions, int *nversions)
{
	sg_parsed_ikey k;
	sg_slice	value;

	if (scan->unread)
	{
		/* nothing moved since it was returned: its versions are still valid */
		scan->unread = false;
		scan->prev_gap_from = scan->gap_from;
		scan->gap_from = scan->unread_rowid + 1;
		*rowid = scan->unread_rowid;
		*versions = scan->unread_versions;
		*nversions = scan->unread_n;
		return true;
	}
	if (!scan->started)
	{
		sg_iter_seek_to_first(scan->it);
		scan->started = true;
		scan->gap_from = 0;
	}
	if (scan->skip_pending)
	{
		scan->skip_pending = false;
		skip_row(scan, scan->skip_rowid);
	}
	if (scan->row_collected)
	{
		MemoryContextReset(scan->rowcxt);
		scan->row_collected = false;
	}

	while (current_entry(scan, &k, &value))
	{
		*rowid = sg_decode_be64(k.user_key.data);
		if (decode_single_version(scan, &k, value))
		{
			scan->skip_pending = true;
			scan->skip_rowid = *rowid;
			*versions = &scan->single;
			*nversions = 1;
		}
		else
		{
			VersionCollector vc = VERSION_COLLECTOR_INIT(scan->rowcxt);

			scan->row_collected = true;
			collect_row(scan, &k, value, *rowid, &vc);
			if (vc.n == 0)
				continue;		/* only a tombstone: the row is gone */
			*versions = vc.versions;
			*nversions = vc.n;
		}
		scan->prev_gap_from = scan->gap_from;
		scan->gap_from = *rowid + 1;
		scan->unread_rowid = *rowid;
		scan->unread_versions = *versions;
		scan->unread_n = *nversions;
		return true;
	}
	strata_iter_check(scan->it);
	return false;
}

void
strata_tree_scan_unread(StrataTreeScan *scan)
{
	Assert(!scan->unread && scan->gap_from == scan->unread_rowid + 1);
	scan->unread = true;
	scan->gap_from = scan->prev_gap_from;
}

void
strata_tree_scan_end(StrataTreeScan *scan)
{
	sg_iter_destroy(scan->it);
	strata_local_version_release(scan->lv, scan->lv_hold);
	unpin_memtables(&scan->pinned);
	MemoryContextDelete(scan->rowcxt);
	pfree(scan);
}

/* ------------------------------------------------------------------------
 * Row fetchers
 *
 * An index scan over rows loaded in key order, and every bitmap scan,
 * asks for row ids that mostly ascend in small steps. Looking each one up
 * afresh pins the memtables, takes the local version and searches every
 * level again per row; a fetcher instead keeps one merged iterator (a
 * "view", the forward scan above) and steps it to the next row id, as a
 * batched multi-get would. Row ids far ahead or behind still take the
 * point lookup, whose bloom filters suit random access better.
 *
 * Why a kept view is correct: it shows every version applied to the tree
 * before the view was pinned (and some applied after). A writer applies
 * its versions before it commits, so every transaction an MVCC snapshot
 * sees as committed applied its versions before that snapshot was taken;
 * a view pinned after the snapshot was taken therefore holds every version
 * the snapshot can see, and the newest such version decides. So a view
 * serves only the snapshot it was pinned for, and is pinned again when
 * another one comes. What it may miss (versions applied after the pin)
 * the snapshot cannot see, which is enough for MVCC reads but not for
 * SERIALIZABLE's conflict checks, dirty or self snapshots, or deciding
 * that a row is dead to everyone: those read afresh.
 * ------------------------------------------------------------------------
 */

/*
 * How far past the row fetched last the next may be for the view to step
 * there (row ids), and how many rows it steps over before it seeks.
 */
#define STRATA_FETCH_NEAR		(4 * STRATA_ROWS_PER_BLOCK)
#define STRATA_FETCH_MAX_STEPS	8

struct StrataRowFetcher
{
	Relation	rel;
	StrataTree *tree;
	MemoryContext cxt;			/* the fetcher and its view */
	ResourceOwner owner;		/* the view's holds are taken under it */
	StrataTreeScan *view;		/* NULL: none */

	/* the snapshot the view was pinned for (what tells two apart) */
	Snapshot	snapshot;
	TransactionId xmin;
	TransactionId xmax;
	CommandId	curcid;
	uint64		completions;	/* snapXactCompletionCount */

	bool		have_last;
	uint64		last_rowid;		/* asked for last, by either path */
	bool		view_positioned;	/* the view's iterator was placed by a seek */
	uint64		view_below;		/* ... and stands on this row id (read in
								 * place) or the first one above it */
};

StrataRowFetcher *
strata_row_fetcher_begin(Relation rel, StrataTree *tree)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "strata row fetcher",
											  ALLOCSET_SMALL_SIZES);
	StrataRowFetcher *f = MemoryContextAllocZero(cxt, sizeof(StrataRowFetcher));

	f->rel = rel;
	f->tree = tree;
	f->cxt = cxt;
	f->owner = CurrentResourceOwner;
	return f;
}

static bool
view_serves(StrataRowFetcher *f, Snapshot snapshot)
{
	return f->view != NULL && f->snapshot == snapshot && f->xmin == snapshot->xmin &&
		f->xmax == snapshot->xmax && f->curcid == snapshot->curcid &&
		f->completions == snapshot->snapXactCompletionCount;
}

static void
drop_view(StrataRowFetcher *f)
{
	if (f->view != NULL)
	{
		StrataTreeScan *view = f->view;

		f->view = NULL;
		strata_tree_scan_end(view);
	}
}

/* Pin a view for snapshot, under the fetcher's resource owner. */
static void
pin_view(StrataRowFetcher *f, Snapshot snapshot)
{
	ResourceOwner saved_owner = CurrentResourceOwner;
	MemoryContext saved_cxt = MemoryContextSwitchTo(f->cxt);

	drop_view(f);
	f->view_positioned = false;
	CurrentResourceOwner = f->owner;
	PG_TRY();
	{
		f->view = tree_scan_begin(f->rel, f->tree, false, true);
	}
	PG_FINALLY();
	{
		CurrentResourceOwner = saved_owner;
		MemoryContextSwitchTo(saved_cxt);
	}
	PG_END_TRY();
	f->snapshot = snapshot;
	f->xmin = snapshot->xmin;
	f->xmax = snapshot->xmax;
	f->curcid = snapshot->curcid;
	f->completions = snapshot->snapXactCompletionCount;
	f->view->started = true;	/* positioned by view_find, never from the start */
}

/*
 * Move the view to rowid's newest version: step over a few rows from where
 * it stands if that is before rowid, else seek. True if rowid has a
 * version there (its key in *k, its value in *value).
 */
static bool
view_find(StrataRowFetcher *f, uint64 rowid, sg_parsed_ikey *k, sg_slice *value)
{
	StrataTreeScan *view = f->view;

	/*
	 * The view stands on view_below or on the first row id after it: only
	 * a row id past view_below may be stepped to, or the rows in between
	 * were skipped.
	 */
	for (int steps = 0; f->view_positioned && rowid > f->view_below &&
		 current_entry(view, k, value); steps++)
	{
		uint64		at = sg_decode_be64(k->user_key.data);

		if (at >= rowid)
		{
			read_counters.fetcher_steps++;
			return at == rowid;
		}
		if (steps == STRATA_FETCH_MAX_STEPS)
			break;
		skip_row(view, at);
	}
	leave_leaf(view);
	strata_iter_check(view->it);

	read_counters.fetcher_seeks++;
	f->view_positioned = true;
	strata_tree_scan_seek(view, rowid);
	if (!current_entry(view, k, value))
	{
		strata_iter_check(view->it);
		return false;
	}
	return sg_decode_be64(k->user_key.data) == rowid;
}

int
strata_row_fetcher_versions(StrataRowFetcher *f, uint64 rowid, Snapshot snapshot,
							StrataVersion **versions, MemoryContext mcxt)
{
	VersionCollector vc = VERSION_COLLECTOR_INIT(mcxt);
	sg_parsed_ikey k;
	sg_slice	value;
	bool		near;
	bool		found;

	if (snapshot->snapshot_type != SNAPSHOT_MVCC || IsolationIsSerializable())
		return strata_tree_versions(f->rel, f->tree, rowid, versions, mcxt);

	/* just ahead of the row asked for last, or of where the view stands */
	near = (f->have_last && rowid > f->last_rowid &&
			rowid - f->last_rowid <= STRATA_FETCH_NEAR) ||
		(f->view_positioned && rowid > f->view_below &&
		 rowid - f->view_below <= STRATA_FETCH_NEAR);
	f->have_last = true;
	f->last_rowid = rowid;
	if (!near)
		return strata_tree_versions(f->rel, f->tree, rowid, versions, mcxt);

	if (!view_serves(f, snapshot))
		pin_view(f, snapshot);
	found = view_find(f, rowid, &k, &value);
	f->view_below = rowid;
	if (found)
	{
		/*
		 * A single version is read where the view stands, which then stays
		 * on rowid (view_find steps past it next time); collect_row leaves
		 * it after rowid, as a miss does.
		 */
		if (decode_single_version(f->view, &k, value))
		{
			*versions = &f->view->single;
			return 1;
		}
		collect_row(f->view, &k, value, rowid, &vc);
	}
	*versions = vc.versions;
	return vc.n;
}

void
strata_row_fetcher_end(StrataRowFetcher *f)
{
	drop_view(f);
	MemoryContextDelete(f->cxt);
}
