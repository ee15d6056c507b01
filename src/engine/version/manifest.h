/*
 * manifest.h — the durable history of a tree's versions (the MANIFEST),
 * the CURRENT file that names the live MANIFEST, and the version set that
 * ties them to the current version and the tree's counters.
 *
 * Files in a tree directory (frozen names):
 *   CURRENT             "MANIFEST-<number>\n", replaced atomically
 *                       (CURRENT.tmp, fsync, rename, fsync dir)
 *   MANIFEST-<number>   version edits framed like the WAL (wal/log_format.h):
 *                       the first record is a snapshot edit, then one edit
 *                       per change
 *   <number>.sst        SSTables (<number>.sst.tmp while being written)
 * Numbers are decimal, zero-padded to at least 6 digits, from one counter
 * (next_file).
 *
 * Rules:
 *  - an edit is part of the tree once its record is fsynced; callers must
 *    not delete any file an edit removes before sg_vset_log_and_apply
 *    returned SG_OK for it;
 *  - a torn LAST record of the MANIFEST is dropped on replay (it was never
 *    acknowledged); damage anywhere else is SG_CORRUPTION naming the file
 *    and offset;
 *  - every open starts a new MANIFEST holding one snapshot edit (so a torn
 *    tail is never appended to), and so does log_and_apply once the live
 *    MANIFEST has grown past max_manifest_bytes.
 *
 * Thread safety: none. The caller serialises every call on a vset and
 * every access to its fields (the standalone DB: its mutex; PostgreSQL:
 * the tree's lock).
 */
#ifndef SG_MANIFEST_H
#define SG_MANIFEST_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/base/env.h"
#include "engine/base/status.h"
#include "engine/version/version.h"
#include "engine/wal/log_writer.h"

#define SG_CURRENT_NAME "CURRENT"
#define SG_MANIFEST_PREFIX "MANIFEST-"
#define SG_SST_SUFFIX ".sst"
#define SG_TMP_SUFFIX ".tmp"

/* Roll to a new MANIFEST past this size (default). */
#define SG_MANIFEST_DEFAULT_MAX_BYTES (4 * 1024 * 1024)

/* What replaying one MANIFEST yields. */
typedef struct sg_manifest_state
{
	sg_version *version;		/* refs = 1, owned by the caller */
	uint64_t	next_file;
	uint64_t	last_sequence;
	uint64_t	log_number;
	uint64_t	aux_log_number; /* see sg_version_edit */
	uint64_t	records;		/* edits applied */
	bool		torn_tail;		/* a torn last record was dropped */
	uint64_t	good_end;		/* bytes of well-formed records */
} sg_manifest_state;

/*
 * Replay the MANIFEST at path into *out. SG_CORRUPTION (naming path and
 * offset) for any damage but a torn last record; SG_NOT_SUPPORTED for a
 * foreign format name.
 */
extern sg_code sg_manifest_replay(sg_env *env, const char *path,
								  sg_manifest_state *out, sg_err *err);

/* "<dir>/<number>.sst" into buf. */
extern void sg_sst_path(char *buf, size_t len, const char *dir, uint64_t number);
/* "<dir>/MANIFEST-<number>". */
extern void sg_manifest_path(char *buf, size_t len, const char *dir, uint64_t number);
/* "<number>.sst" into buf (the name the table builder takes). */
extern void sg_sst_name(char *buf, size_t len, uint64_t number);

/*
 * Names in dir (not paths) that no live state needs, for the caller to
 * unlink: *.tmp files, MANIFESTs other than live_manifest, and SSTables
 * that v does not name and whose number is below pending_floor (files at
 * or above it may be outputs still being written; pass UINT64_MAX when
 * nothing is in flight). Other names are left alone. Free the result
 * with sg_env_free_names().
 */
extern sg_code sg_list_orphans(sg_env *env, const char *dir, const sg_version *v,
							   uint64_t live_manifest, uint64_t pending_floor,
							   char ***names, size_t *count, sg_err *err);

typedef struct sg_vset_options
{
	uint64_t	max_manifest_bytes; /* 0: SG_MANIFEST_DEFAULT_MAX_BYTES */
	bool		create_if_missing;
	/* called when a file's last reference goes (see version.h); may be NULL */
	sg_file_release_fn release;
	void	   *release_arg;
} sg_vset_options;

typedef struct sg_vset
{
	sg_env	   *env;
	char	   *dir;
	sg_version *current;		/* refs held by the vset */
	uint64_t	next_file;
	uint64_t	last_sequence;
	uint64_t	log_number;
	uint64_t	aux_log_number;
	uint64_t	manifest_number;
	uint64_t	max_manifest_bytes;
	sg_file    *manifest;
	sg_log_writer writer;
	bool		failed;			/* refuse every edit (a write or fsync failed) */
	bool		sync_failed;
	char		failed_msg[SG_ERR_MSG_LEN];
	sg_file_release_fn release;
	void	   *release_arg;
	/* what the open found */
	bool		created;
	bool		replay_torn_tail;
} sg_vset;

/*
 * The number of the MANIFEST that dir's CURRENT names. SG_NOT_FOUND only
 * when no tree ever lived in dir: no CURRENT and no MANIFEST or SSTable
 * (or no directory). A CURRENT missing beside such files, or one that
 * names no MANIFEST, is SG_CORRUPTION: the tree's history is lost, and
 * nothing may take the directory for an empty tree (that would delete
 * every SSTable as an orphan). Reads only.
 */
extern sg_code sg_current_read(sg_env *env, const char *dir, uint64_t *number,
							   sg_err *err);

/*
 * Open the tree in dir: read CURRENT, replay its MANIFEST, then start a
 * new MANIFEST holding a snapshot and switch CURRENT to it. The previous
 * MANIFEST is left for sg_list_orphans. With opts->create_if_missing a new
 * empty tree is made where sg_current_read finds none; never over a
 * damaged one (SG_CORRUPTION, and no file is touched).
 */
extern sg_code sg_vset_open(sg_env *env, const char *dir, const sg_vset_options *opts,
							sg_vset **out, sg_err *err);

/* Close the MANIFEST and drop the current version. NULL is allowed. */
extern void sg_vset_close(sg_vset *vs);

/* A fresh file number (SSTables, MANIFESTs). */
extern uint64_t sg_vset_new_file_number(sg_vset *vs);

/*
 * Make edit durable and install current + edit as the new current
 * version. The vset fills in next_file and last_sequence (the larger of
 * its own and the edit's), and log_number if the edit has none; a
 * log_number below the current one is SG_INVALID_ARGUMENT. On failure
 * nothing is installed and the vset refuses every later edit (the
 * MANIFEST's tail is unknown), with err->sync_failed set when an fsync
 * failed.
 */
extern sg_code sg_vset_log_and_apply(sg_vset *vs, sg_version_edit *edit, sg_err *err);

/* Fill edit with a full snapshot of v and the vset's counters. */
extern sg_code sg_vset_snapshot_edit(const sg_vset *vs, const sg_version *v,
									 sg_version_edit *edit, sg_err *err);

#endif							/* SG_MANIFEST_H */
