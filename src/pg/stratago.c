/*
 * stratago.c — module entry point: refuses to load outside
 * shared_preload_libraries, defines the stratago.* GUCs, reserves and
 * initialises shared memory, creates the engine's folder in the data
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
#include "utils/guc.h"

#include "pg/enginewal.h"
#include "pg/pgwal.h"
#include "pg/recovery.h"
#include "pg/stratago.h"
#include "pg/tree.h"

PG_MODULE_MAGIC;

StrataShared *strata_shared = NULL;

int			strata_maintenance_naptime = 1000;
int			strata_memtable_memory_mb = 256;
int			strata_memtable_size_kb = 4096;
int			strata_max_tables = 1000;
bool		strata_sync = true;
int			strata_wal_sink = STRATA_SINK_POSTGRES;
bool		strata_checkpoint_guard = true;

static const struct config_enum_entry wal_sink_options[] = {
	{"engine", STRATA_SINK_ENGINE, false},
	{"postgres", STRATA_SINK_POSTGRES, false},
	{NULL, 0, false}
};

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static void strata_shmem_request(void);
static void strata_shmem_startup(void);

static void strata_define_gucs(void);
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
	/* CREATE DATABASE and ALTER DATABASE SET TABLESPACE (utility.c) */
	strata_utility_init();
}

static void
strata_define_gucs(void)
{
	DefineCustomIntVariable("stratago.maintenance_naptime",
							"Time the maintenance worker sleeps between rounds.",
							NULL,
							&strata_maintenance_naptime,
							1000, 10, 3600 * 1000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomIntVariable("stratago.memtable_memory",
							"Shared memory for the memtables of all strata tables.",
							NULL,
							&strata_memtable_memory_mb,
							256, 8, INT_MAX / 2,
							PGC_POSTMASTER,
							GUC_UNIT_MB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("stratago.memtable_size",
							"Size at which a table's memtable is frozen and flushed.",
							NULL,
							&strata_memtable_size_kb,
							4096, 64, INT_MAX / 1024,
							PGC_SIGHUP,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("stratago.max_tables",
							"Maximum number of strata relfilenodes in the cluster.",
							NULL,
							&strata_max_tables,
							1000, 16, 1000000,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("stratago.sync",
							 "Makes a transaction's strata changes durable before its commit.",
							 "Only with stratago.wal_sink = engine (with postgres, synchronous_commit decides). Off gives up crash atomicity of strata changes with the rest of the transaction.",
							 &strata_sync,
							 true,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomEnumVariable("stratago.wal_sink",
							 "Where strata tables log their changes.",
							 "\"engine\": the engine's own WAL, synced at pre-commit. \"postgres\": PostgreSQL's WAL, made durable by the commit record's flush and sent to standbys.",
							 &strata_wal_sink,
							 STRATA_SINK_POSTGRES,
							 wal_sink_options,
							 PGC_POSTMASTER,
							 0,
							 NULL, NULL, NULL);

	DefineCustomBoolVariable("stratago.checkpoint_guard",
							 "Makes checkpoints wait until memtables holding older changes are flushed.",
							 "Only with stratago.wal_sink = postgres. Off lets a checkpoint complete sooner; crash recovery then replays those changes from the WAL the stratago slot keeps, but a base backup started by such a checkpoint may not restore.",
							 &strata_checkpoint_guard,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);

	MarkGUCPrefixReserved("stratago");
}

static void
strata_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();

	RequestAddinShmemSpace(strata_shmem_size());
	RequestAddinShmemSpace(strata_wal_shmem_size());
	RequestAddinShmemSpace(strata_pgwal_shmem_size());
	RequestNamedLWLockTranche("stratago", 2);
	RequestNamedLWLockTranche("stratago wal", 2);
	RequestNamedLWLockTranche("stratago xid", 1);
	RequestNamedLWLockTranche("stratago row", STRATA_ROW_LATCHES);
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
