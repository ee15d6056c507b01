/*
 * env.h — the file layer under the engine.
 *
 * Every byte the engine reads or writes goes through an sg_env, so that
 * tests can substitute a fault-injecting layer (env_mem.c) that, at a
 * simulated crash, drops every write not yet fsynced and every file whose
 * directory entry was not fsynced. sg_env_posix() is the real one.
 *
 * Durability rules the engine follows (and the fault layer enforces):
 *  - data appended to a file is durable only after sync() on that file;
 *  - a created, renamed or unlinked name is durable only after sync_dir()
 *    on its directory;
 *  - a failed sync() sets err->sync_failed: the caller must treat the file
 *    (and, in PostgreSQL, the server) as unusable — never retry.
 *
 * Thread safety: the env itself may be used from many threads at once; one
 * sg_file must be used by one thread at a time, except pread(), which may
 * run concurrently with itself.
 */
#ifndef SG_ENV_H
#define SG_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/base/status.h"

typedef struct sg_env sg_env;
typedef struct sg_file sg_file;

/* Open modes for sg_env_ops.open */
typedef enum sg_open_mode
{
	SG_OPEN_READ,				/* existing file, read only */
	SG_OPEN_CREATE,				/* create or truncate, then append */
	SG_OPEN_APPEND,				/* existing file (or new), append at end */
	SG_OPEN_APPEND_EXISTING		/* existing file only (else SG_NOT_FOUND), append */
} sg_open_mode;

typedef struct sg_env_ops
{
	sg_code		(*open) (sg_env *env, const char *path, sg_open_mode mode,
						 sg_file **out, sg_err *err);
	sg_code		(*append) (sg_file *f, const void *data, size_t n, sg_err *err);
	/* Read up to n bytes at off; *got < n only at end of file. */
	sg_code		(*pread) (sg_file *f, uint64_t off, void *buf, size_t n,
						  size_t *got, sg_err *err);
	sg_code		(*sync) (sg_file *f, sg_err *err);
	sg_code		(*size) (sg_file *f, uint64_t *size, sg_err *err);
	/* Cut the file to len bytes (used to drop a torn WAL tail). */
	sg_code		(*truncate) (sg_file *f, uint64_t len, sg_err *err);
	sg_code		(*close) (sg_file *f, sg_err *err);

	sg_code		(*rename) (sg_env *env, const char *from, const char *to, sg_err *err);
	sg_code		(*unlink) (sg_env *env, const char *path, sg_err *err);
	sg_code		(*sync_dir) (sg_env *env, const char *dir, sg_err *err);
	sg_code		(*mkdir) (sg_env *env, const char *path, sg_err *err);	/* ok if exists */
	sg_code		(*rmdir) (sg_env *env, const char *path, sg_err *err);
	/* SG_OK if present, SG_NOT_FOUND if not, else an error. */
	sg_code		(*exists) (sg_env *env, const char *path, sg_err *err);
	/*
	 * List the names (not paths) in dir, excluding "." and "..". *names is
	 * a malloc'd array of malloc'd strings; free with sg_env_free_names().
	 */
	sg_code		(*list_dir) (sg_env *env, const char *dir, char ***names,
							 size_t *count, sg_err *err);
} sg_env_ops;

struct sg_env
{
	const sg_env_ops *ops;
};

struct sg_file
{
	sg_env	   *env;			/* the env that opened it */
	char	   *path;			/* malloc'd copy, for error messages */
};

/* The real POSIX file layer (a process-wide singleton). */
extern sg_env *sg_env_posix(void);

extern void sg_env_free_names(char **names, size_t count);

/* Convenience wrappers that read like ordinary calls. */
static inline sg_code
sg_file_open(sg_env *env, const char *path, sg_open_mode mode, sg_file **out, sg_err *err)
{
	return env->ops->open(env, path, mode, out, err);
}
static inline sg_code
sg_file_append(sg_file *f, const void *data, size_t n, sg_err *err)
{
	return f->env->ops->append(f, data, n, err);
}
static inline sg_code
sg_file_pread(sg_file *f, uint64_t off, void *buf, size_t n, size_t *got, sg_err *err)
{
	return f->env->ops->pread(f, off, buf, n, got, err);
}
static inline sg_code
sg_file_sync(sg_file *f, sg_err *err)
{
	return f->env->ops->sync(f, err);
}
static inline sg_code
sg_file_size(sg_file *f, uint64_t *size, sg_err *err)
{
	return f->env->ops->size(f, size, err);
}
static inline sg_code
sg_file_truncate(sg_file *f, uint64_t len, sg_err *err)
{
	return f->env->ops->truncate(f, len, err);
}
static inline sg_code
sg_file_close(sg_file *f, sg_err *err)
{
	return f->env->ops->close(f, err);
}

/*
 * Read exactly n bytes at off; a short read is SG_CORRUPTION naming the
 * file and offset (the caller expected those bytes to exist).
 */
extern sg_code sg_file_read_exact(sg_file *f, uint64_t off, void *buf, size_t n, sg_err *err);

/* Write a whole small file durably: temp file, fsync, rename, fsync dir. */
extern sg_code sg_env_write_file_atomic(sg_env *env, const char *dir, const char *name,
										const void *data, size_t n, sg_err *err);

/* Read a whole file into a malloc'd buffer (*data, *n). */
extern sg_code sg_env_read_file(sg_env *env, const char *path, char **data, size_t *n,
								sg_err *err);

#endif							/* SG_ENV_H */
