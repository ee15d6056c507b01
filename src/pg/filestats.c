/*
 * filestats.c — the statistics each SSTable carries about its rows
 * (filestats.h), gathered by flush and compaction jobs while they write a
 * file and read back by VACUUM and by recovery.
 */
#include "postgres.h"


#include "pg/filestats.h"
#include "pg/rowversion.h"
#include "pg/tree.h"

/* ------------------------------------------------------------------------
 * Per-SSTable statistics (the engine's opaque user_stats blob)
 *
 *   byte 0      format: 1
 *   bytes 1-8   oldest unfrozen writer (FullTransactionId, little-endian
 *               fixed64); 0: every version is frozen; 1: unknown
 *   bytes 9-16  dead stubs: frozen TOMBSTONE or MOVED versions, rows gone
 *               for every snapshot whose index entries VACUUM must remove
 *   bytes 17-24 row id high-water mark: no row id at or above it was ever
 *               handed out when the file's data was written
 *   then, optional: the file's suspect row ids (below)
 *     byte 25   list format: 1
 *     varint64  count (at most STRATA_MAX_FILE_SUSPECTS)
 *     varint64  each: the first row id, then the distance from the one
 *               before (at least 1: ascending, no duplicates)
 *
 * A suspect row id is one with a version other than frozen row data, the
 * rule VACUUM applies to memtable entries (read.c): an unfrozen writer, a
 * dead stub, a lock, a version that does not decode. Engine tombstones
 * (reaped rows) are not suspects. Without the list (too many suspects, or
 * a file written before the list existed: readers of format 1 ignore what
 * follows byte 24) VACUUM reads the file's whole row id range.
 *
 * The oldest unfrozen xid is what VACUUM sets relfrozenxid from; the
 * high-water mark keeps row ids from being handed out again after a
 * restart when compaction has removed the highest rows: a TID is never
 * reused.
 * Files without the blob (older builds) count as "oldest unknown".
 * ------------------------------------------------------------------------
 */
#define STRATA_FILE_STATS_FORMAT 1
#define STRATA_FILE_STATS_LEN 25

#define STRATA_SUSPECT_LIST_FORMAT 1

void
strata_stats_acc_init(StatsAcc *acc, uint64 base_hwm)
{
	memset(acc, 0, sizeof(*acc));
	acc->base_hwm = base_hwm;
}

/* Note rowid as a suspect of the file being written (entries come in key order). */
static void
add_suspect(StatsAcc *acc, uint64 rowid)
{
	if (acc->suspects_overflow)
		return;
	if (acc->nsuspects > 0 && acc->suspects[acc->nsuspects - 1] == rowid)
		return;					/* another version of the same row */
	if (acc->nsuspects == STRATA_MAX_FILE_SUSPECTS)
	{
		acc->suspects_overflow = true;
		return;
	}
	if (acc->suspects == NULL)
		acc->suspects = palloc(sizeof(uint64) * STRATA_MAX_FILE_SUSPECTS);
	acc->suspects[acc->nsuspects++] = rowid;
}

/* Fold one entry written to the output into the accumulator (engine callback). */
void
strata_stats_observe(void *arg, sg_slice ikey, sg_slice value)
{
	StatsAcc   *acc = arg;
	sg_parsed_ikey k;
	StrataVersion v;

	uint64		rowid;

	if (!sg_ikey_parse(ikey, &k) || k.user_key.len != STRATA_ROWID_KEY_LEN)
	{
		acc->oldest = 1;
		acc->suspects_overflow = true;	/* no row id to list */
		return;
	}
	rowid = sg_decode_be64(k.user_key.data);
	if (rowid + 1 > acc->rowid_end)
		acc->rowid_end = rowid + 1;
	if (k.type != SG_TYPE_PUT)
		return;					/* an engine tombstone carries no xid */
	if (!strata_version_decode(value.data, value.len, &v))
	{
		acc->oldest = 1;
		add_suspect(acc, rowid);
		return;
	}
	if (!(v.flags & STRATA_VF_FROZEN))
	{
		uint64		x = U64FromFullTransactionId(v.writer);

		if (acc->oldest != 1 && (acc->oldest == 0 || x < acc->oldest))
			acc->oldest = Max(x, 2);
	}
	else if (v.kind == STRATA_TOMBSTONE || v.kind == STRATA_MOVED)
		acc->stubs++;
	if (!(v.kind == STRATA_DATA && (v.flags & STRATA_VF_FROZEN)))
		add_suspect(acc, rowid);
}

/* The blob of the file just completed; the accumulator starts over. */
sg_code
strata_stats_finish(void *arg, uint64_t file_number, sg_buf *out, sg_err *err)
{
	StatsAcc   *acc = arg;

	sg_buf_append(out, "\x01", 1);
	sg_put_fixed64(out, acc->oldest);
	sg_put_fixed64(out, acc->stubs);
	sg_put_fixed64(out, Max(acc->rowid_end, acc->base_hwm));
	if (!acc->suspects_overflow)
	{
		char		format = STRATA_SUSPECT_LIST_FORMAT;

		sg_buf_append(out, &format, 1);
		sg_put_varint64(out, acc->nsuspects);
		for (int i = 0; i < acc->nsuspects; i++)
			sg_put_varint64(out, i == 0 ? acc->suspects[0]
							: acc->suspects[i] - acc->suspects[i - 1]);
	}
	acc->oldest = 0;
	acc->stubs = 0;
	acc->rowid_end = 0;
	acc->nsuspects = 0;
	acc->suspects_overflow = false;
	if (acc->suspects != NULL)
		pfree(acc->suspects);
	acc->suspects = NULL;
	return SG_OK;
}

/* Decode a file's statistics; false if it has none (or an unknown format). */
bool
strata_file_stats_parse(sg_slice blob, StrataFileStats *fs)
{
	if (blob.len < STRATA_FILE_STATS_LEN || blob.data[0] != STRATA_FILE_STATS_FORMAT)
		return false;
	fs->oldest_unfrozen = sg_decode_fixed64(blob.data + 1);
	fs->dead_stubs = sg_decode_fixed64(blob.data + 9);
	fs->rowid_hwm = sg_decode_fixed64(blob.data + 17);

	/* the suspect list: unknown unless present and well formed */
	fs->suspects_known = false;
	fs->suspects = sg_slice_make(NULL, 0);
	if (blob.len > STRATA_FILE_STATS_LEN &&
		blob.data[STRATA_FILE_STATS_LEN] == STRATA_SUSPECT_LIST_FORMAT)
	{
		sg_slice	in = sg_slice_make(blob.data + STRATA_FILE_STATS_LEN + 1,
									   blob.len - STRATA_FILE_STATS_LEN - 1);
		sg_slice	list;
		uint64		count;
		uint64		rowid = 0;
		uint64		i;

		if (!sg_get_varint64(&in, &count) || count > STRATA_MAX_FILE_SUSPECTS)
			return true;
		list = in;
		for (i = 0; i < count; i++)
		{
			uint64		step;

			if (!sg_get_varint64(&in, &step) || (i > 0 && (step == 0 || rowid + step < rowid)))
				break;
			rowid += step;
		}
		if (i < count || in.len != 0)
			return true;		/* damaged: as if absent */
		fs->suspects_known = true;
		fs->suspects = list;
	}
	return true;
}

/*
 * The next row id of a parsed suspect list (fs->suspects, consumed as it
 * is read; *rowid holds the one before, 0 at the start). False at the end.
 */
bool
strata_file_stats_next_suspect(sg_slice *list, uint64 *rowid)
{
	uint64		step;

	if (list->len == 0 || !sg_get_varint64(list, &step))
		return false;
	*rowid += step;
	return true;
}
