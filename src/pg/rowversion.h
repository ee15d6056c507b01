/*
 * rowversion.h — row versions of strata tables: how one version of a row
 * is encoded as an engine value, and how PostgreSQL's snapshots decide
 * which version of a row (if any) a reader sees.
 *
 * A strata row is one engine key (its row id, see tree.h); each change to
 * the row appends a new engine version of that key, newest first. The
 * engine value of a version is:
 *
 *   offset  size  field
 *   0       1     kind: 1 DATA, 2 TOMBSTONE, 3 MOVED, 4 LOCK   (frozen)
 *   1       1     flags: bit 0 writer committed (hint), bit 1 frozen,
 *                 bit 2 writer aborted (hint), bit 3 key kept (an
 *                 UPDATE that changed no key column: it locked the row
 *                 FOR NO KEY UPDATE, not FOR UPDATE), bit 4 kills insert
 *                 (a TOMBSTONE that undoes the insert just below it, of a
 *                 failed speculative insertion: readers skip both)  (frozen)
 *   2       2     reserved, zero
 *   4       4     cid: command id of the writing command (little-endian)
 *   8       8     writer: FullTransactionId of the writing (sub)transaction
 *   16      ...   payload:
 *                 DATA      the tuple as a MinimalTuple (t_len bytes)
 *                 MOVED     u32 block, u16 offset: the row's new TID
 *                 LOCK      u8 LockTupleMode (0 key share .. 3 exclusive)
 *                 TOMBSTONE nothing
 *
 * A frozen DATA version, once compaction freezes it, is stored packed
 * instead (on-disk tag STRATA_PACKED_FROZEN_DATA): every reader sees it as
 * committed and older than any snapshot, so its flags and cid say nothing
 * more, and the tuple's length is the value's:
 *
 *   offset  size  field
 *   0       1     5 (STRATA_PACKED_FROZEN_DATA)
 *   1       1-10  writer, varint64 (kept: a speculative insert's undo
 *                 finds its insert by writer, also across files)
 *   ...     ...   the MinimalTuple from t_infomask2 on (its t_len and
 *                 padding, STRATA_TUPLE_BODY_OFFSET bytes, left out)
 *
 * It decodes as a DATA version with flags FROZEN | COMMITTED and cid 0.
 * Both forms are read forever: values written before the packed form
 * existed stay valid, and compaction packs them when it rewrites them.
 *
 * The 64-bit writer id never wraps, so a version is never misread after
 * xid wraparound; freezing (compaction) still sets the frozen flag before
 * the commit log that vouches for the writer is truncated.
 *
 * Visibility (doc/DESIGN.md §7, C1): reading a row's versions newest first, the first
 * version whose writer the snapshot sees decides — DATA gives the row,
 * TOMBSTONE or MOVED mean "no row at this TID". A newer version written by
 * another transaction plays the role heap's xmax plays.
 */
#ifndef STRATA_ROWVERSION_H
#define STRATA_ROWVERSION_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "nodes/lockoptions.h"
#include "access/transam.h"
#include "storage/itemptr.h"
#include "utils/snapshot.h"

typedef enum StrataVersionKind
{
	STRATA_DATA = 1,
	STRATA_TOMBSTONE = 2,
	STRATA_MOVED = 3,
	STRATA_LOCK = 4
} StrataVersionKind;

#define STRATA_VF_COMMITTED	0x01
#define STRATA_VF_FROZEN	0x02
#define STRATA_VF_ABORTED	0x04
#define STRATA_VF_KEY_KEPT	0x08
#define STRATA_VF_KILLS_INSERT 0x10	/* TOMBSTONE undoing its writer's own
									 * speculative insert: both never existed */

#define STRATA_VERSION_HEADER_SIZE 16

/* On-disk tag of a packed frozen DATA version (never a StrataVersionKind). */
#define STRATA_PACKED_FROZEN_DATA 5

/* Bytes of a MinimalTuple before t_infomask2 (t_len and padding). */
#define STRATA_TUPLE_BODY_OFFSET offsetof(MinimalTupleData, t_infomask2)

/* A decoded version; tuple points into the engine value it came from. */
typedef struct StrataVersion
{
	StrataVersionKind kind;
	uint8		flags;
	CommandId	cid;
	FullTransactionId writer;
	uint64		seq;			/* engine sequence number (order) */
	ItemPointerData moved_to;	/* STRATA_MOVED only */
	LockTupleMode lock_mode;	/* how strongly the writer holds the row */
	/*
	 * STRATA_DATA only: the stored MinimalTuple from t_infomask2 on (not
	 * aligned; in both forms, the bytes before it are not stored or not
	 * needed).
	 */
	const char *tuple_body;
	uint32		tuple_body_len;
} StrataVersion;

/*
 * Append the encoding of a version to buf: tuple for DATA, moved_to for
 * MOVED, lock_mode for LOCK; flags are the STRATA_VF_* bits to store.
 */
extern void strata_version_encode(StringInfo buf, StrataVersionKind kind,
								  FullTransactionId writer, CommandId cid, uint8 flags,
								  MinimalTuple tuple, ItemPointer moved_to,
								  LockTupleMode lock_mode);

/*
 * Make buf (not initialised) hold exactly one DATA version, its tuple
 * formed from values/isnull (no external TOAST pointers among them) in
 * place, as heap_form_minimal_tuple would form it: one allocation of the
 * version's size, no tuple of its own to copy (a COPY batch holds a
 * thousand versions at once).
 */
extern void strata_version_make_data(StringInfo buf, FullTransactionId writer,
									 CommandId cid, uint8 flags, TupleDesc desc,
									 const Datum *values, const bool *isnull);

/*
 * Append the packed form of v, a committed DATA version every snapshot
 * sees, which compaction is freezing.
 */
extern void strata_version_encode_packed_frozen(StringInfo buf, const StrataVersion *v);

/* Is an engine value a packed frozen DATA version? */
static inline bool
strata_version_is_packed(const char *data, size_t len)
{
	return len > 0 && (uint8) data[0] == STRATA_PACKED_FROZEN_DATA;
}

/* The tuple of a DATA version as a MinimalTuple of its own (palloc'd). */
extern MinimalTuple strata_version_minimal_tuple(const StrataVersion *v);

/* Do two row-lock strengths conflict (heap's table: key share < share < no key update < update)? */
extern bool strata_lock_modes_conflict(LockTupleMode a, LockTupleMode b);

/*
 * Decode an engine value; false if it is malformed (the caller reports
 * corruption naming the table and row).
 */
extern bool strata_version_decode(const char *data, size_t len, StrataVersion *v);

/* What the writer of a version is, as far as the current backend knows. */
typedef enum StrataWriterState
{
	STRATA_WRITER_CURRENT,		/* our own (sub)transaction */
	STRATA_WRITER_IN_PROGRESS,	/* another backend, still running */
	STRATA_WRITER_COMMITTED,
	STRATA_WRITER_ABORTED		/* aborted or crashed */
} StrataWriterState;

extern StrataWriterState strata_writer_state(const StrataVersion *v);

/*
 * Did the writer of v commit? REQUIRES: the writer is known to have ended
 * (it precedes a snapshot's xmin or TransactionXmin, or a snapshot saw it
 * end), so that a commit found is final; the last one found is
 * remembered (rowversion.c).
 */
extern bool strata_ended_writer_committed(const StrataVersion *v);

/*
 * Result of resolving a row's version chain against a snapshot.
 */
typedef struct StrataResolved
{
	bool		visible;		/* a row is visible */
	int			index;			/* versions[index] is its DATA version */
} StrataResolved;

/*
 * Decide what snapshot sees of a row, given all its versions newest first.
 * For SnapshotDirty, fills snapshot->xmin/xmax with in-progress writers as
 * heap does (the unique-check side channel, doc/DESIGN.md §7, T1).
 */
extern StrataResolved strata_resolve(const StrataVersion *versions, int nversions,
									 Snapshot snapshot);

/* The version a fetch by TID under SnapshotAny returns (rowversion.c). */
extern StrataResolved strata_resolve_any(const StrataVersion *versions, int nversions);

/*
 * A DATA version as a heap tuple: header and data in one piece of
 * strata_version_heap_size() bytes, filled in place or palloc'd in the
 * current context.
 */
extern Size strata_version_heap_size(const StrataVersion *v);
extern void strata_version_fill_heap(const StrataVersion *v, ItemPointer tid, Oid relid,
									 HeapTuple tuple);
extern HeapTuple strata_version_to_heap(const StrataVersion *v, ItemPointer tid,
										Oid relid);

#endif							/* STRATA_ROWVERSION_H */
