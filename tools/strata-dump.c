/*
 * strata-dump — print the engine's on-disk files as readable tables, for
 * anyone debugging on-disk state:
 *
 *   strata-dump [--values] [--limit N] [--force] FILE-OR-DIR
 *
 * FILE-OR-DIR is an SSTable, a WAL segment (*.wal), a WAL directory, or a
 * MANIFEST (MANIFEST-*). Every checksum is verified on the way (the
 * readers check each block and record); the last line says whether the
 * whole file was sound. Exit status: 0 sound, 1 damaged, 2 usage or I/O,
 * or refused.
 *
 * It only reads: files are opened read-only and nothing is created. It
 * refuses files inside the data directory of a running server, whose
 * worker may rewrite or remove them while they are read (the answer could
 * be a false "damaged"), unless given --force; a copy of the files can
 * always be read.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/base/coding.h"
#include "engine/base/env.h"
#include "engine/base/ikey.h"
#include "engine/sstable/table.h"
#include "engine/version/manifest.h"
#include "engine/version/version.h"
#include "engine/version/version_edit.h"
#include "engine/wal/batch.h"
#include "engine/wal/log_reader.h"
#include "engine/wal/wal_segment.h"
#include "engine/wal/wal_writer.h"

static bool show_values = false;
static uint64_t limit = UINT64_MAX;

/* Keys and values: printable text in quotes, anything else as hex. */
static void
print_bytes(sg_slice s, size_t max)
{
	bool		printable = true;
	size_t		n = s.len < max ? s.len : max;

	for (size_t i = 0; i < s.len; i++)
		if (!isprint((unsigned char) s.data[i]))
		{
			printable = false;
			break;
		}
	if (printable)
		printf("\"%.*s\"", (int) n, s.data);
	else
	{
		printf("0x");
		for (size_t i = 0; i < n; i++)
			printf("%02x", (unsigned char) s.data[i]);
	}
	if (n < s.len)
		printf("...");
}

static const char *
type_name(sg_value_type t)
{
	return t == SG_TYPE_PUT ? "PUT" : t == SG_TYPE_DELETE ? "DELETE" : "?";
}

static int
dump_sstable(const char *path)
{
	sg_err		err;
	sg_table_reader *r;
	const sg_table_props *p;
	sg_iter    *it;
	uint64_t	n = 0;

	if (sg_table_reader_open(sg_env_posix(), path, &r, &err) != SG_OK)
	{
		fprintf(stderr, "strata-dump: %s\n", err.msg);
		return 1;
	}
	p = sg_table_reader_props(r);
	printf("SSTable %s\n", path);
	printf("  file size      %" PRIu64 " bytes\n", sg_table_reader_file_size(r));
	printf("  entries        %" PRIu64 " (%" PRIu64 " deletions) in %" PRIu64 " data blocks\n",
		   p->num_entries, p->num_deletions, p->num_data_blocks);
	printf("  raw bytes      keys %" PRIu64 ", values %" PRIu64 "\n",
		   p->raw_key_bytes, p->raw_value_bytes);
	printf("  codec          %s\n", sg_codec_name(p->codec));
	{
		uint64_t	counts[SG_CODEC_MAX + 1];

		if (sg_table_reader_block_codecs(r, counts, &err) != SG_OK)
		{
			printf("DAMAGED: %s\n", err.msg);
			sg_table_reader_close(r);
			return 1;
		}
		printf("  blocks by codec");
		for (int c = 0; c <= SG_CODEC_MAX; c++)
			if (counts[c] > 0)
				printf(" %s %" PRIu64, sg_codec_name((sg_codec) c), counts[c]);
		printf("\n");
	}
	printf("  sequences      %" PRIu64 " .. %" PRIu64 "\n", p->smallest_seq, p->largest_seq);
	if (p->num_entries > 0)
	{
		printf("  key range      ");
		print_bytes(sg_ikey_user_key(p->smallest_key), 64);
		printf(" .. ");
		print_bytes(sg_ikey_user_key(p->largest_key), 64);
		printf("\n");
	}
	printf("  user stats     %zu bytes ", p->user_stats.len);
	print_bytes(p->user_stats, 32);
	printf("\n\n%-10s %-8s %-40s %s\n", "seq", "type", "key", show_values ? "value" : "value bytes");

	it = sg_table_reader_iter(r);
	for (sg_iter_seek_to_first(it); sg_iter_valid(it) && n < limit; sg_iter_next(it), n++)
	{
		sg_parsed_ikey k;
		sg_slice	v = sg_iter_value(it);

		if (!sg_ikey_parse(sg_iter_key(it), &k))
		{
			printf("(malformed internal key)\n");
			continue;
		}
		printf("%-10" PRIu64 " %-8s ", k.seq, type_name(k.type));
		print_bytes(k.user_key, 38);
		printf(" ");
		if (show_values)
			print_bytes(v, 64);
		else
			printf("%zu", v.len);
		printf("\n");
	}
	if (sg_iter_status(it, &err) != SG_OK)
	{
		printf("DAMAGED: %s\n", err.msg);
		sg_iter_destroy(it);
		sg_table_reader_close(r);
		return 1;
	}
	sg_iter_destroy(it);
	sg_table_reader_close(r);
	printf("\n%" PRIu64 " entries shown; all block checksums verified\n", n);
	return 0;
}

/*
 * A strata row key (8-byte big-endian row id) and row version (see
 * src/pg/rowversion.h: kind, flags, cid, 64-bit writer xid, payload), as
 * written by the PostgreSQL layer. Returns false if they are not that.
 */
static bool
print_row_version(sg_slice key, sg_slice value)
{
	static const char *kinds[] = {"?", "DATA", "TOMBSTONE", "MOVED", "LOCK"};
	uint64_t	rowid;
	uint8_t		kind;

	if (key.len != 8 || value.len < 16)
		return false;
	kind = (uint8_t) value.data[0];
	if (kind < 1 || kind > 4)
		return false;
	rowid = sg_decode_be64(key.data);
	printf("row %-10" PRIu64 " tid (%" PRIu64 ",%" PRIu64 ")  %-9s xid %-8" PRIu64 " cid %-4u flags 0x%02x  %zu bytes",
		   rowid, rowid / 291, rowid % 291 + 1, kinds[kind],
		   sg_decode_fixed64(value.data + 8), sg_decode_fixed32(value.data + 4),
		   (uint8_t) value.data[1], value.len - 16);
	return true;
}

/* The entries of one write batch. */
static void
print_batch(sg_slice rec)
{
	sg_batch_iter bi;
	sg_batch_entry e;
	sg_err		err;
	sg_code		rc;

	if (sg_batch_iter_init(&bi, rec, "record", &err) != SG_OK)
	{
		printf(": not a write batch (%s)\n", err.msg);
		return;
	}
	printf(": batch of %u from seq %" PRIu64 "\n", bi.count, bi.first_seq);
	while ((rc = sg_batch_iter_next(&bi, &e, "record", &err)) == SG_OK)
	{
		printf("    %-10" PRIu64 " %-8s ", e.seq, type_name(e.type));
		if (e.type == SG_TYPE_PUT && !show_values && print_row_version(e.key, e.value))
		{
			printf("\n");
			continue;
		}
		print_bytes(e.key, 38);
		printf(" ");
		if (show_values)
			print_bytes(e.value, 64);
		else
			printf("%zu", e.value.len);
		printf("\n");
	}
	if (rc != SG_NOT_FOUND)
		printf("    DAMAGED batch: %s\n", err.msg);
}

/*
 * One WAL record: a write batch (the standalone engine), or a strata rows
 * record (src/pg/enginewal.c: type 1, spc, db, rel, tree id, batch).
 */
static void
print_wal_record(uint64_t end_lsn, uint64_t start_off, sg_slice rec)
{
	printf("record end LSN %" PRIu64, end_lsn);
	if (start_off != UINT64_MAX)
		printf(" (offset %" PRIu64 ")", start_off);
	printf(", %zu bytes", rec.len);
	if (rec.len >= 21 + SG_BATCH_HEADER_SIZE && rec.data[0] == 1 &&
		sg_batch_validate(sg_slice_make(rec.data + 21, rec.len - 21), NULL, NULL) == SG_OK)
	{
		printf(", rows of relfilenode %u/%u/%u tree %016" PRIx64,
			   sg_decode_fixed32(rec.data + 1), sg_decode_fixed32(rec.data + 5),
			   sg_decode_fixed32(rec.data + 9), sg_decode_fixed64(rec.data + 13));
		rec = sg_slice_make(rec.data + 21, rec.len - 21);
	}
	print_batch(rec);
}

static int
dump_wal_segment(const char *path)
{
	sg_err		err;
	sg_file    *f;
	sg_log_reader *lr;
	sg_slice	rec;
	sg_code		rc;
	uint64_t	start = 0,
				n = 0;
	const char *base = strrchr(path, '/');
	uint64_t	bad_off;
	const char *reason;

	base = base ? base + 1 : path;
	if (!sg_wal_parse_segment_name(base, &start))
		fprintf(stderr, "strata-dump: \"%s\" is not named like a WAL segment; LSNs are file offsets\n", path);
	if (sg_file_open(sg_env_posix(), path, SG_OPEN_READ, &f, &err) != SG_OK ||
		sg_log_reader_open(f, false, &lr, &err) != SG_OK)
	{
		fprintf(stderr, "strata-dump: %s\n", err.msg);
		return 2;
	}
	printf("WAL segment %s (start LSN %" PRIu64 ", %" PRIu64 " bytes)\n", path, start,
		   sg_log_reader_file_size(lr));
	while ((rc = sg_log_reader_next(lr, &rec, &err)) == SG_OK && n < limit)
	{
		uint64_t	off = sg_log_reader_record_offset(lr);
		sg_wal_seg_header h;

		if (n++ == 0 && sg_wal_decode_seg_header(rec.data, rec.len, &h))
		{
			printf("segment header: start LSN %" PRIu64 ", previous segment ended at %" PRIu64 "\n",
				   h.start_lsn, h.prev_end_lsn);
			continue;
		}
		print_wal_record(start + sg_log_reader_good_end(lr), start + off, rec);
	}
	if (rc != SG_OK && rc != SG_NOT_FOUND)
	{
		printf("DAMAGED: %s\n", err.msg);
		sg_log_reader_close(lr);
		sg_file_close(f, NULL);
		return 1;
	}
	if (sg_log_reader_torn(lr, &bad_off, &reason))
		printf("torn tail at offset %" PRIu64 " (%s): recovery would cut the file to %" PRIu64 " bytes\n",
			   bad_off, reason ? reason : "incomplete record", sg_log_reader_good_end(lr));
	sg_log_reader_close(lr);
	sg_file_close(f, NULL);
	printf("all record checksums verified\n");
	return 0;
}

static sg_code
print_replayed(void *arg, uint64_t end_lsn, sg_slice record, sg_err *err)
{
	uint64_t   *n = arg;

	(void) err;
	if ((*n)++ < limit)
		print_wal_record(end_lsn, UINT64_MAX, record);
	return SG_OK;
}

static int
dump_wal_dir(const char *dir)
{
	sg_err		err;
	sg_wal_replay_result res;
	uint64_t	n = 0;

	printf("WAL directory %s\n", dir);
	if (sg_wal_replay(sg_env_posix(), dir, 0, false, print_replayed, &n, &res, &err) != SG_OK)
	{
		printf("DAMAGED: %s\n", err.msg);
		return 1;
	}
	printf("%" PRIu64 " records in %" PRIu64 " segments, log ends at LSN %" PRIu64 "\n",
		   res.records, res.segments, res.end_lsn);
	if (res.torn_tail)
		printf("torn tail: %s\n", res.torn_msg);
	printf("all record checksums verified\n");
	return 0;
}

static void
print_file_meta(int level, const sg_file_meta *m)
{
	printf("    L%d  #%-8" PRIu64 " %10" PRIu64 " bytes %8" PRIu64 " entries  seq %" PRIu64 "..%" PRIu64 "  ",
		   level, m->number, m->file_size, m->num_entries, m->smallest_seq, m->largest_seq);
	print_bytes(sg_file_meta_smallest_user(m), 24);
	printf(" .. ");
	print_bytes(sg_file_meta_largest_user(m), 24);
	printf("\n");
}

/* Every edit in the MANIFEST, then the version they add up to. */
static int
dump_manifest(const char *path)
{
	sg_err		err;
	sg_file    *f;
	sg_log_reader *lr;
	sg_slice	rec;
	sg_code		rc;
	uint64_t	n = 0;
	sg_manifest_state st;

	if (sg_file_open(sg_env_posix(), path, SG_OPEN_READ, &f, &err) != SG_OK ||
		sg_log_reader_open(f, false, &lr, &err) != SG_OK)
	{
		fprintf(stderr, "strata-dump: %s\n", err.msg);
		return 2;
	}
	printf("MANIFEST %s\n", path);
	while ((rc = sg_log_reader_next(lr, &rec, &err)) == SG_OK)
	{
		sg_version_edit e;
		uint64_t	off = sg_log_reader_record_offset(lr);

		sg_version_edit_init(&e);
		if (sg_version_edit_decode(&e, rec, path, off, &err) != SG_OK)
		{
			sg_version_edit_free(&e);
			rc = SG_CORRUPTION;
			break;
		}
		if (n++ < limit)
		{
			printf("edit at offset %" PRIu64 "%s:", off, e.is_snapshot ? " (snapshot)" : "");
			if (e.has_log_number)
				printf(" log_number=%" PRIu64, e.log_number);
			if (e.has_aux_log_number)
				printf(" aux_log_number=%" PRIu64, e.aux_log_number);
			if (e.has_next_file)
				printf(" next_file=%" PRIu64, e.next_file);
			if (e.has_last_sequence)
				printf(" last_sequence=%" PRIu64, e.last_sequence);
			printf("\n");
			for (size_t i = 0; i < e.nadded; i++)
			{
				printf("  + ");
				print_file_meta(e.added[i].level, &e.added[i].meta);
			}
			for (size_t i = 0; i < e.ndeleted; i++)
				printf("  -     L%d  #%" PRIu64 "\n", e.deleted[i].level, e.deleted[i].number);
		}
		sg_version_edit_free(&e);
	}
	sg_log_reader_close(lr);
	sg_file_close(f, NULL);
	if (rc != SG_OK && rc != SG_NOT_FOUND)
	{
		printf("DAMAGED: %s\n", err.msg);
		return 1;
	}

	if (sg_manifest_replay(sg_env_posix(), path, &st, &err) != SG_OK)
	{
		printf("DAMAGED: %s\n", err.msg);
		return 1;
	}
	printf("\nversion after %" PRIu64 " edits: next_file=%" PRIu64 " last_sequence=%" PRIu64
		   " log_number=%" PRIu64 "%s\n", st.records, st.next_file, st.last_sequence,
		   st.log_number, st.torn_tail ? " (torn last record dropped)" : "");
	for (int level = 0; level < SG_NUM_LEVELS; level++)
	{
		if (st.version->nfiles[level] == 0)
			continue;
		printf("  level %d: %zu files, %" PRIu64 " bytes\n", level, st.version->nfiles[level],
			   sg_version_level_bytes(st.version, level));
		for (size_t i = 0; i < st.version->nfiles[level]; i++)
			print_file_meta(level, st.version->files[level][i]);
	}
	sg_version_unref(st.version, NULL, NULL);
	printf("all record checksums verified\n");
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: strata-dump [--values] [--limit N] [--force] FILE-OR-DIR\n"
			"  FILE-OR-DIR: an SSTable, a WAL segment (*.wal), a WAL directory,\n"
			"               or a MANIFEST (MANIFEST-*)\n"
			"  --force      read files of a running server's data directory\n");
	exit(2);
}

/*
 * The pid of a server running on the data directory that holds path, or 0:
 * the nearest directory above path (or path itself) with a postmaster.pid
 * whose first line names a live process. A stale postmaster.pid (left by a
 * crash) names a dead one, or a process that is not the server; the
 * second case refuses wrongly, and --force is the way past it.
 */
static long
running_server_pid(const char *path, char *datadir, size_t len)
{
	char		dir[4096];
	char	   *slash;

	if (realpath(path, dir) == NULL)
		return 0;
	for (;;)
	{
		char		pidfile[4096 + 32];
		FILE	   *f;
		long		pid = 0;

		snprintf(pidfile, sizeof(pidfile), "%s/postmaster.pid", dir);
		if ((f = fopen(pidfile, "r")) != NULL)
		{
			if (fscanf(f, "%ld", &pid) != 1)
				pid = 0;
			fclose(f);
			if (pid > 0 && (kill((pid_t) pid, 0) == 0 || errno == EPERM))
			{
				snprintf(datadir, len, "%s", dir);
				return pid;
			}
			return 0;
		}
		slash = strrchr(dir, '/');
		if (slash == NULL || slash == dir)
			return 0;
		*slash = '\0';
	}
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"values", no_argument, NULL, 'v'},
		{"limit", required_argument, NULL, 'n'},
		{"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			c;
	const char *path;
	const char *base;
	struct stat st;
	bool		force = false;
	char		datadir[4096];
	long		server_pid;

	while ((c = getopt_long(argc, argv, "vn:fh", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'v':
				show_values = true;
				break;
			case 'n':
				limit = strtoull(optarg, NULL, 10);
				break;
			case 'f':
				force = true;
				break;
			default:
				usage();
		}
	}
	if (optind != argc - 1)
		usage();
	path = argv[optind];
	if (stat(path, &st) != 0)
	{
		perror(path);
		return 2;
	}
	server_pid = running_server_pid(path, datadir, sizeof(datadir));
	if (server_pid != 0 && !force)
	{
		fprintf(stderr,
				"strata-dump: %s is in the data directory %s of a running server (pid %ld)\n"
				"Its maintenance worker may rewrite or remove these files while they are read.\n"
				"Stop the server, or read a copy of the files, or pass --force.\n",
				path, datadir, server_pid);
		return 2;
	}
	base = strrchr(path, '/');
	base = base ? base + 1 : path;

	if (S_ISDIR(st.st_mode))
		return dump_wal_dir(path);
	if (strlen(base) > 4 && strcmp(base + strlen(base) - 4, ".wal") == 0)
		return dump_wal_segment(path);
	if (strncmp(base, "MANIFEST", 8) == 0)
		return dump_manifest(path);
	return dump_sstable(path);
}
