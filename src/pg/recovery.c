/*
 * recovery.c — every tree back at startup (recovery.h), in the postmaster
 * before any backend exists, as PostgreSQL's startup process drives redo:
 * register the tree directories (temporary ones removed, unlogged ones
 * reset by PostgreSQL's rules), read each MANIFEST (a damaged one marks
 * its tree damaged rather than stopping the cluster), then drive the
 * replay of both logs and the flushes a long replay needs.
 */
#include "postgres.h"

#include <sys/stat.h>
#include "common/controldata_utils.h"
#include "miscadmin.h"
#include "pg/apply.h"
#include "pg/enginewal.h"
#include "pg/filestats.h"
#include "pg/flush.h"
#include "pg/pgwal.h"
#include "pg/recovery.h"
#include "pg/sstcache.h"
#include "pg/stratago.h"
#include "pg/tree.h"
#include "pg/treeopts.h"
#include "pg/vset.h"
#include "storage/fd.h"

/* ------------------------------------------------------------------------
 * Recovery (postmaster, before any backend exists)
 * ------------------------------------------------------------------------
 */

/*
 * Whether unlogged tables keep their rows over this start. The rule is
 * PostgreSQL's for unlogged relations (StartupXLOG resets them whenever it
 * enters recovery): only a cluster shut down cleanly and not being
 * restored from a backup or started as a standby keeps them. Since the
 * rule is the same, an unlogged strata table and its indexes are always
 * reset together.
 */
static bool
unlogged_rows_survive(void)
{
	ControlFileData *cf;
	bool		crc_ok;
	bool		clean;
	struct stat st;

	cf = get_controlfile(DataDir, &crc_ok);
	if (!crc_ok)
		ereport(FATAL,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("calculated CRC checksum does not match value stored in control file")));
	clean = (cf->state == DB_SHUTDOWNED || cf->state == DB_SHUTDOWNED_IN_RECOVERY) &&
		stat(BACKUP_LABEL_FILE, &st) != 0 &&
		stat(RECOVERY_SIGNAL_FILE, &st) != 0 &&
		stat(STANDBY_SIGNAL_FILE, &st) != 0;
	pfree(cf);
	return clean;
}

static void recover_tree_manifest(StrataTree *tree);

/* Remove a tree directory at startup (and, to reset it, make it anew). */
static void
reset_tree_dir(const char *path, bool recreate)
{
	if (!rmtree(path, true))
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not remove strata storage \"%s\"", path)));
	if (recreate && MakePGDirectory(path) < 0)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", path)));
}

/*
 * Register every tree directory found under $PGDATA/stratago/<db>/.
 * Temporary tables' trees are removed: no session survives a restart (as
 * PostgreSQL removes temporary files at every start). Unlogged tables'
 * trees are emptied unless unlogged_rows_survive(); if they survive but
 * one still has its UNFLUSHED marker, rows written before the stop never
 * reached a file and the table is refused until truncated.
 */
static void
register_tree_dirs(void)
{
	DIR		   *top;
	struct dirent *dbde;
	bool		keep_unlogged = unlogged_rows_survive();

	top = AllocateDir(STRATAGO_DIR);
	while ((dbde = ReadDir(top, STRATAGO_DIR)) != NULL)
	{
		char		dbdir[MAXPGPATH];
		Oid			dbNode;
		char	   *end;
		DIR		   *dir;
		struct dirent *de;

		dbNode = (Oid) strtoul(dbde->d_name, &end, 10);
		if (*end != '\0' || end == dbde->d_name)
			continue;			/* "wal", ".", ".." */
		snprintf(dbdir, sizeof(dbdir), "%s/%s", STRATAGO_DIR, dbde->d_name);
		dir = AllocateDir(dbdir);
		while ((de = ReadDir(dir, dbdir)) != NULL)
		{
			RelFileNodeBackend key;
			unsigned long long id;
			StrataTree *tree;
			char		path[MAXPGPATH];
			char		persistence;
			bool		lost_rows = false;
			struct stat st;

			snprintf(path, sizeof(path), "%s/%s", dbdir, de->d_name);
			if (de->d_name[0] == 't')
			{
				reset_tree_dir(path, false);
				continue;
			}
			if (sscanf(de->d_name, "%u_%u_%llx", &key.node.spcNode, &key.node.relNode, &id) != 3)
				continue;
			key.node.dbNode = dbNode;
			key.backend = InvalidBackendId;
			persistence = strata_persistence_on_disk(&key.node);
			if (persistence == RELPERSISTENCE_UNLOGGED)
			{
				char		marker[MAXPGPATH];

				snprintf(marker, sizeof(marker), "%s/%s", path, STRATA_UNFLUSHED_MARKER);
				if (!keep_unlogged)
				{
					/* emptied as heap truncates it, but its options stay */
					StrataTreeCodec codec = strata_tree_options_read(path);

					reset_tree_dir(path, true);
					(void) strata_tree_options_write(path, codec, WARNING);
				}
				else if (stat(marker, &st) == 0)
					lost_rows = true;
			}
			tree = strata_tree_register_found(&key, (uint64) id, persistence);
			tree->lost_rows = tree->unflushed_marked = lost_rows;
			strata_tree_options_load(tree);
			recover_tree_manifest(tree);
			if (lost_rows)
				ereport(WARNING,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("stratago: unlogged relation %u/%u/%u lost rows that were not written out when the server stopped",
								key.node.spcNode, key.node.dbNode, key.node.relNode),
						 errhint("TRUNCATE the table to use it again.")));
		}
		FreeDir(dir);
		fsync_fname(dbdir, true);
	}
	FreeDir(top);
}

/*
 * Bring every tree back after a restart or crash: register the trees on
 * disk (reading each MANIFEST), then replay the engine WAL and the part of
 * PostgreSQL's WAL its redo will not reach into their memtables, writing a
 * memtable out whenever it fills (apply.c calls back here for that). The
 * startup process's redo then applies the rest.
 */
void
strata_recover(void)
{
	register_tree_dirs();
	strata_apply_set_replay_flush(strata_recovery_flush);
	strata_wal_recover();
	strata_pgwal_recover();
	strata_apply_set_replay_flush(NULL);
	strata_recovery_done();
}

/* ------------------------------------------------------------------------
 * Recovery (postmaster)
 * ------------------------------------------------------------------------
 */

/*
 * Read tree's MANIFEST: WAL records at or below its log number are in its
 * SSTables, and row ids and sequences continue above what they hold.
 */
static void
recover_tree_manifest(StrataTree *tree)
{
	char		dir[MAXPGPATH];
	char		mpath[MAXPGPATH];
	sg_manifest_state st;
	sg_err		err = {0};
	sg_code		rc;

	strata_tree_dir(tree, dir, sizeof(dir));
	rc = strata_current_manifest_path(dir, mpath, sizeof(mpath), &err);
	if (rc == SG_NOT_FOUND)
		return;
	if (rc == SG_OK)
		rc = sg_manifest_replay(sg_env_posix(), mpath, &st, &err);
	if (rc != SG_OK)
	{
		/*
		 * One table's damage must not stop the cluster: the tree is
		 * refused (strata_tree_get), its log records are kept unapplied
		 * (strata_apply_batch), and nothing of it is deleted.
		 */
		if (rc == SG_NOT_FOUND)
			rc = SG_CORRUPTION;
		tree->damaged = true;
		strlcpy(tree->damage, err.msg, sizeof(tree->damage));
		ereport(WARNING,
				(errcode(rc == SG_CORRUPTION ? ERRCODE_DATA_CORRUPTED : ERRCODE_IO_ERROR),
				 errmsg("stratago: strata storage of relfilenode %u/%u/%u is damaged: %s",
						tree->key.node.spcNode, tree->key.node.dbNode, tree->key.node.relNode,
						err.msg),
				 errdetail("The table is refused until its files are restored or it is dropped; its changes in the log are kept."),
				 errhint("Restore the table from a backup, or drop it.")));
		return;
	}
	tree->flushed_lsn = st.log_number;
	tree->flushed_pglsn = st.aux_log_number;
	tree->l0_files = (int) st.version->nfiles[0];
	tree->next_seq = st.last_sequence + 1;

	/*
	 * Nothing is being written at startup: temporary files, outputs of a
	 * flush or compaction the crash interrupted before the MANIFEST named
	 * them, and old MANIFESTs are garbage.
	 */
	{
		const char *slash = strrchr(mpath, '/');

		strata_remove_orphans(dir, st.version,
					   strtoull(slash + 1 + strlen("MANIFEST-"), NULL, 10));
	}
	for (int level = 0; level < SG_NUM_LEVELS; level++)
		for (size_t i = 0; i < st.version->nfiles[level]; i++)
		{
			sg_file_meta *m = st.version->files[level][i];
			sg_slice	largest = sg_file_meta_largest_user(m);
			StrataFileStats fs;

			if (m->largest_seq >= tree->next_seq)
				tree->next_seq = m->largest_seq + 1;
			if (largest.len == STRATA_ROWID_KEY_LEN &&
				sg_decode_be64(largest.data) >= tree->next_rowid)
				tree->next_rowid = sg_decode_be64(largest.data) + 1;
			/* rows compaction removed keep their ids: never hand them out again */
			if (strata_file_stats_parse(sg_buf_slice(&m->user_stats), &fs) &&
				fs.rowid_hwm > tree->next_rowid)
				tree->next_rowid = fs.rowid_hwm;
		}
	sg_version_unref(st.version, NULL, NULL);
}
