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

void
strata_stats_acc_init(StatsAcc *acc, uint64 base_hwm)
{
	memset(acc, 0, sizeof(*acc));
	acc->base_hwm = base_hwm;
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
		return;
	}
	if (k.user_key.len == STRATA_ROWID_KEY_LEN &&
		sg_decode_be64(k.user_key.data) + 1 > acc->rowid_end)
		acc->rowid_end = sg_decode_be64(k.user_key.data) + 1;
	if (k.type != SG_TYPE_PUT)
		return;					/* an engine tombstone carries no xid */
	if (!strata_version_decode(value.data, value.len, &v))
	{
		acc->oldest = 1;
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
	acc->oldest = 0;
	acc->stubs = 0;
	acc->rowid_end = 0;
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
	return true;
}
