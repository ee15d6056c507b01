/*
 * stratago.c — module entry point: refuses to load outside
 * shared_preload_libraries, has the stratago.* GUCs defined (settings.c),
 * reserves and initialises each module's shared memory, creates the engine's folder in the data
 * directory, and registers the maintenance background worker.
 *
 * Why preload only: strata tables keep their memtables, WAL buffer and
 * per-tree state in shared memory, and their flushing and compaction run
 * in background workers; both can only be set up by the postmaster.
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/xlog.h"
#include "fmgr.h"
#include "replication/slot.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/shmem.h"

#include "pg/blockcache.h"
#include "pg/compression.h"
#include "pg/dbcopy.h"
#include "pg/enginewal.h"
#include "pg/jobprogress.h"
#include "pg/pgwal.h"
#include "pg/recovery.h"
#include "pg/stratago.h"
#include "pg/tree.h"
#include "pg/wakeup.h"

PG_MODULE_MAGIC;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void strata_shmem_request(void);
static void strata_shmem_startup(void);

static void strata_create_data_dir(void);

void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("stratago must be loaded via shared_preload_libraries"),
				 errdetail("strata tables need shared memory and background workers that only the postmaster can set up."),
				 errhint("Add \"stratago\" to shared_preload_libraries in postgresql.conf and restart the server.")));

	strata_define_gucs();

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = strata_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = strata_shmem_startup;

	strata_pgwal_register_rmgr();
	/* registered in the postmaster, inherited by every backend it forks */
	strata_wal_init_callbacks();
	strata_register_maintenance_worker();
	/* CREATE DATABASE and ALTER DATABASE SET TABLESPACE (utility.c, dbcopy.c) */
	strata_utility_init();
	strata_dbcopy_init();
	strata_compression_init();
}


static void
strata_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(strata_shmem_size());
	RequestAddinShmemSpace(strata_wal_shmem_size());
	RequestAddinShmemSpace(strata_pgwal_shmem_size());
	RequestAddinShmemSpace(strata_wakeup_shmem_size());
	RequestAddinShmemSpace(strata_job_progress_shmem_size());
	RequestAddinShmemSpace(strata_block_cache_shmem_size());
	RequestNamedLWLockTranche("stratago", 2);
	RequestNamedLWLockTranche("stratago wal", 2);
	RequestNamedLWLockTranche("stratago xid", 1);
	RequestNamedLWLockTranche("stratago row", STRATA_ROW_LATCHES);
	RequestNamedLWLockTranche("stratago block cache", STRATA_BLOCK_CACHE_PARTITIONS);
}

static void
strata_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	strata_shmem_init();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	strata_wal_shmem_init();
	strata_pgwal_shmem_init();
	strata_wakeup_shmem_init();
	strata_job_progress_shmem_init();
	strata_block_cache_shmem_init();
	LWLockRelease(AddinShmemInitLock);

	/*
	 * The postmaster runs this at startup and again after a crash of any
	 * child; backends only attach. Recovering here means every tree is
	 * back before anything can read a strata table.
	 */
	if (!IsUnderPostmaster)
	{
		/* memtables' WAL is kept by a replication slot (pgwal.c) */
		if (strata_wal_sink == STRATA_SINK_POSTGRES &&
			(max_replication_slots == 0 || wal_level < WAL_LEVEL_REPLICA))
			ereport(FATAL,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("stratago.wal_sink = postgres requires wal_level \"replica\" or higher and a free replication slot"),
					 errdetail("stratago keeps the WAL of strata changes still in memory with a replication slot."),
					 errhint("Set wal_level to \"replica\" and max_replication_slots to at least 1, or set stratago.wal_sink to \"engine\".")));
		strata_create_data_dir();
		strata_recover();
	}
}

/*
 * Create $PGDATA/stratago if needed and make its directory entry durable.
 * The postmaster's working directory is the data directory.
 */
static void
strata_create_data_dir(void)
{
	struct stat st;

	if (stat(STRATAGO_DIR, &st) == 0)
	{
		if (!S_ISDIR(st.st_mode))
			ereport(FATAL,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("\"%s/%s\" exists but is not a directory",
							DataDir, STRATAGO_DIR)));
		return;
	}
	if (MakePGDirectory(STRATAGO_DIR) < 0 && errno != EEXIST)
		ereport(FATAL,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s/%s\": %m",
						DataDir, STRATAGO_DIR)));
	fsync_fname(STRATAGO_DIR, true);
	fsync_fname(".", true);
}
