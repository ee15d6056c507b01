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
 *   bytes 25-32 other suspects: versions that are not row data (deletes,
 *               moves, locks, stubs; undecodable ones). Engine tombstones
 *               are not: they mark rows VACUUM reaped, which readers no
 *               longer find at all
 *   bytes 33-48 unsettled writers: the smallest and largest writer
 *               (FullTransactionId) of row data whose commit was not known
 *               when the file was written; 0 and 0 for none
 *
 * Bytes 25-48 came later: a blob of 25 bytes is a file written before,
 * whose suspects are unknown. A row is dead to every snapshot only when
 * its newest version that was not rolled back is not row data, or when
 * every version of it was rolled back: either way some file or memtable
 * holds a suspect for it. VACUUM therefore reads only the row ids of the
 * files (and memtables) that hold suspects; a file whose only suspects
 * are row data of one writer that has since committed holds none.
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
#define STRATA_FILE_STATS_SUSPECTS_LEN 49

void
strata_stats_acc_init(StatsAcc *acc, uint64 base_hwm, TransactionId settled_horizon)
{
	memset(acc, 0, sizeof(*acc));
	acc->base_hwm = base_hwm;
	acc->settled_horizon = settled_horizon;
}

/* Row data by writer: settled (committed, known now), or widen the range. */
static void
observe_row_data(StatsAcc *acc, const StrataVersion *v)
{
	TransactionId xid = XidFromFullTransactionId(v->writer);
	uint64		x = U64FromFullTransactionId(v->writer);

	if (v->flags & (STRATA_VF_FROZEN | STRATA_VF_COMMITTED))
		return;
	/* the compaction filter's test for a writer whose outcome is final */
	if (TransactionIdIsValid(acc->settled_horizon) && TransactionIdIsNormal(xid) &&
		TransactionIdPrecedes(xid, acc->settled_horizon) && TransactionIdDidCommit(xid))
		return;
	if (acc->unsettled_min == 0 || x < acc->unsettled_min)
		acc->unsettled_min = x;
	if (x > acc->unsettled_max)
		acc->unsettled_max = x;
}

/* Fold one entry written to the output into the accumulator (engine callback). */
void
strata_stats_observe(void *arg, sg_slice ikey, sg_slice value)
{
	StatsAcc   *acc = arg;
	sg_parsed_ikey k;
	StrataVersion v;

	if (!sg_ikey_parse(ikey, &k))
	{
		acc->oldest = 1;
		acc->other_suspects++;
		return;
	}
	if (k.user_key.len == STRATA_ROWID_KEY_LEN &&
		sg_decode_be64(k.user_key.data) + 1 > acc->rowid_end)
		acc->rowid_end = sg_decode_be64(k.user_key.data) + 1;
	if (k.type != SG_TYPE_PUT)
		return;					/* a reaped row: no xid, and never dead again */
	if (!strata_version_decode(value.data, value.len, &v))
	{
		acc->oldest = 1;
		acc->other_suspects++;
		return;
	}
	if (v.kind == STRATA_DATA)
		observe_row_data(acc, &v);
	else
		acc->other_suspects++;
	if (!(v.flags & STRATA_VF_FROZEN))
	{
		uint64		x = U64FromFullTransactionId(v.writer);

		if (acc->oldest != 1 && (acc->oldest == 0 || x < acc->oldest))
			acc->oldest = Max(x, 2);
	}
	else if (v.kind == STRATA_TOMBSTONE || v.kind == STRATA_MOVED)
		acc->stubs++;
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
	sg_put_fixed64(out, acc->other_suspects);
	sg_put_fixed64(out, acc->unsettled_min);
	sg_put_fixed64(out, acc->unsettled_max);
	acc->oldest = 0;
	acc->stubs = 0;
	acc->rowid_end = 0;
	acc->other_suspects = 0;
	acc->unsettled_min = 0;
	acc->unsettled_max = 0;
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
	fs->has_suspects = blob.len >= STRATA_FILE_STATS_SUSPECTS_LEN;
	fs->other_suspects = fs->has_suspects ? sg_decode_fixed64(blob.data + 25) : 0;
	fs->unsettled_min = fs->has_suspects ? sg_decode_fixed64(blob.data + 33) : 0;
	fs->unsettled_max = fs->has_suspects ? sg_decode_fixed64(blob.data + 41) : 0;
	return true;
}
