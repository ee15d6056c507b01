/*
 * env_mem.h — an in-memory, fault-injecting sg_env for crash tests and fast
 * fuzzing.
 *
 * Files and directories live in memory and behave like POSIX for the calls
 * in env.h. On top of that the layer remembers what a real disk would still
 * hold after a power loss, following exactly the durability rules of env.h:
 *
 *  - per file, the length that has been made durable by sync();
 *  - per directory entry, the file the name pointed to when its directory
 *    was last passed to sync_dir() (a name created, renamed over or
 *    unlinked since then is not durable yet).
 *
 * sg_env_mem_crash() then simulates the power loss: every name goes back
 * to its durable state (a created file disappears, a renamed file is back
 * under its old name, an unlinked file reappears), every file is cut back
 * to its synced length, and every open sg_file becomes invalid (any call
 * but close() returns SG_IO_ERROR).
 *
 * Simplifications of the model (stated so tests know what they prove):
 *  - mkdir() and rmdir() are durable at once; rmdir() of an empty
 *    directory also forgets its not-yet-durable unlinks. mkdir() creates
 *    missing parents (like mkdir -p). "/" and "." always exist.
 *  - truncate() and the truncation done by SG_OPEN_CREATE are durable at
 *    once: the synced length shrinks with the file and never grows back.
 *  - a failed append() writes nothing; a failed sync() makes nothing
 *    durable and sets err->sync_failed.
 *  - renaming a directory is not supported (SG_NOT_SUPPORTED).
 *
 * Fault injection: fail the Nth append or the Nth sync/sync_dir from now
 * (once), or refuse every append once a byte budget is spent (disk full).
 * Statistics count calls and bytes so tests can assert on I/O patterns.
 *
 * Thread safety: one mutex guards the whole env, so every call (including
 * the control calls below) may come from any thread. The sg_file rules of
 * env.h still hold for callers.
 */
#ifndef SG_ENV_MEM_H
#define SG_ENV_MEM_H

#include <stdint.h>

#include "engine/base/env.h"

/* How sg_env_mem_crash_torn() treats bytes appended since the last sync. */
typedef enum sg_mem_crash_mode
{
	SG_MEM_CRASH_DROP,			/* all of the unsynced tail is lost */
	SG_MEM_CRASH_KEEP_PREFIX,	/* a random prefix of it survives intact */
	SG_MEM_CRASH_GARBAGE		/* a random-length prefix survives as junk */
} sg_mem_crash_mode;

typedef struct sg_env_mem_stats
{
	uint64_t	appends;		/* append() calls, failed ones included */
	uint64_t	bytes_written;	/* bytes actually appended */
	uint64_t	syncs;			/* sync() calls on files, failed included */
	uint64_t	dir_syncs;		/* sync_dir() calls, failed included */
	uint64_t	injected_failures;	/* writes and syncs failed on purpose */
	uint64_t	crashes;		/* sg_env_mem_crash*() calls */
	uint64_t	preads;			/* pread() calls */
	uint64_t	bytes_read;		/* bytes pread() returned */
} sg_env_mem_stats;

/* A new empty in-memory env, or NULL if memory ran out. */
extern sg_env *sg_env_mem_new(void);

/*
 * Free the env and every file in it.
 * REQUIRES: every sg_file opened on it has been closed.
 */
extern void sg_env_mem_destroy(sg_env *env);

/* Power loss: drop everything not durable (SG_MEM_CRASH_DROP). */
extern void sg_env_mem_crash(sg_env *env);

/*
 * Power loss with a torn write: per file, what survives of the unsynced
 * tail depends on mode; seed makes the choice of lengths and junk bytes
 * reproducible. Names follow the same rules as sg_env_mem_crash().
 */
extern void sg_env_mem_crash_torn(sg_env *env, sg_mem_crash_mode mode, uint64_t seed);

/*
 * Make the nth append() from now fail (n = 1: the very next one), once.
 * n = 0 cancels a pending injection.
 */
extern void sg_env_mem_fail_nth_write(sg_env *env, uint64_t n);

/* The same for sync() and sync_dir() together (they share one counter). */
extern void sg_env_mem_fail_nth_sync(sg_env *env, uint64_t n);

/*
 * Make every file sync() take usec microseconds, like a real device flush,
 * so that tests of group commit see writers overlap. 0 (the default) turns
 * it off.
 */
extern void sg_env_mem_set_sync_latency(sg_env *env, uint32_t usec);

/*
 * Disk full: from now on, appends may add at most budget bytes in total;
 * an append that would go beyond fails whole. UINT64_MAX lifts the limit.
 */
extern void sg_env_mem_set_space_budget(sg_env *env, uint64_t budget);

extern void sg_env_mem_get_stats(sg_env *env, sg_env_mem_stats *out);
extern void sg_env_mem_reset_stats(sg_env *env);

/*
 * The durable (synced) length of the file at path, as a crash right now
 * would leave it if its name survives; SG_NOT_FOUND if no file is there.
 */
extern sg_code sg_env_mem_synced_size(sg_env *env, const char *path, uint64_t *len,
									  sg_err *err);

#endif							/* SG_ENV_MEM_H */
