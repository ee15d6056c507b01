/*
 * env_posix.c — the real file layer: thin wrappers over POSIX calls that
 * turn errno into an sg_err naming the file (see env.h), plus the helpers
 * every env shares (sg_file_read_exact, atomic small-file writes).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "engine/base/env.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct posix_file
{
	sg_file		base;
	int			fd;
} posix_file;

static sg_code
posix_errno(sg_err *err, const char *op, const char *path)
{
	int			e = errno;
	sg_code		rc;

	rc = sg_error(err, e == ENOENT ? SG_NOT_FOUND : e == ENOMEM ? SG_NO_MEMORY : SG_IO_ERROR,
				  "could not %s \"%s\": %s", op, path, strerror(e));
	if (err != NULL)
		err->disk_full = e == ENOSPC || e == EDQUOT;
	return rc;
}

static sg_code
posix_open(sg_env *env, const char *path, sg_open_mode mode, sg_file **out, sg_err *err)
{
	int			flags;
	int			fd;
	posix_file *f;

	switch (mode)
	{
		case SG_OPEN_READ:
			flags = O_RDONLY;
			break;
		case SG_OPEN_CREATE:
			flags = O_RDWR | O_CREAT | O_TRUNC | O_APPEND;
			break;
		case SG_OPEN_APPEND_EXISTING:
			flags = O_RDWR | O_APPEND;
			break;
		default:
			flags = O_RDWR | O_CREAT | O_APPEND;
			break;
	}
	fd = open(path, flags | O_CLOEXEC, 0600);
	if (fd < 0)
		return posix_errno(err, "open file", path);
	f = calloc(1, sizeof(*f));
	if (f == NULL || (f->base.path = strdup(path)) == NULL)
	{
		free(f);
		close(fd);
		return sg_error(err, SG_NO_MEMORY, "out of memory opening \"%s\"", path);
	}
	f->base.env = env;
	f->fd = fd;
	*out = &f->base;
	return SG_OK;
}

static sg_code
posix_append(sg_file *file, const void *data, size_t n, sg_err *err)
{
	posix_file *f = (posix_file *) file;
	const char *p = data;

	while (n > 0)
	{
		ssize_t		w = write(f->fd, p, n);

		if (w < 0)
		{
			if (errno == EINTR)
				continue;
			return posix_errno(err, "write to file", file->path);
		}
		p += w;
		n -= (size_t) w;
	}
	return SG_OK;
}

static sg_code
posix_pread(sg_file *file, uint64_t off, void *buf, size_t n, size_t *got, sg_err *err)
{
	posix_file *f = (posix_file *) file;
	size_t		done = 0;

	while (done < n)
	{
		ssize_t		r = pread(f->fd, (char *) buf + done, n - done, (off_t) (off + done));

		if (r < 0)
		{
			if (errno == EINTR)
				continue;
			return posix_errno(err, "read file", file->path);
		}
		if (r == 0)
			break;
		done += (size_t) r;
	}
	*got = done;
	return SG_OK;
}

static sg_code
posix_sync(sg_file *file, sg_err *err)
{
	posix_file *f = (posix_file *) file;

	if (fdatasync(f->fd) != 0)
	{
		sg_code		c = posix_errno(err, "fsync file", file->path);

		if (err)
			err->sync_failed = true;
		return c == SG_OK ? SG_IO_ERROR : c;
	}
	return SG_OK;
}

static sg_code
posix_size(sg_file *file, uint64_t *size, sg_err *err)
{
	posix_file *f = (posix_file *) file;
	struct stat st;

	if (fstat(f->fd, &st) != 0)
		return posix_errno(err, "stat file", file->path);
	*size = (uint64_t) st.st_size;
	return SG_OK;
}

static sg_code
posix_truncate(sg_file *file, uint64_t len, sg_err *err)
{
	posix_file *f = (posix_file *) file;

	if (ftruncate(f->fd, (off_t) len) != 0)
		return posix_errno(err, "truncate file", file->path);
	return SG_OK;
}

static sg_code
posix_close(sg_file *file, sg_err *err)
{
	posix_file *f = (posix_file *) file;
	sg_code		rc = SG_OK;

	if (close(f->fd) != 0)
		rc = posix_errno(err, "close file", file->path);
	free(file->path);
	free(f);
	return rc;
}

static sg_code
posix_rename(sg_env *env, const char *from, const char *to, sg_err *err)
{
	(void) env;
	if (rename(from, to) != 0)
		return posix_errno(err, "rename file", from);
	return SG_OK;
}

static sg_code
posix_unlink(sg_env *env, const char *path, sg_err *err)
{
	(void) env;
	if (unlink(path) != 0)
		return posix_errno(err, "remove file", path);
	return SG_OK;
}

static sg_code
posix_sync_dir(sg_env *env, const char *dir, sg_err *err)
{
	int			fd;

	(void) env;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return posix_errno(err, "open directory", dir);
	if (fsync(fd) != 0)
	{
		sg_code		c = posix_errno(err, "fsync directory", dir);

		close(fd);
		if (err)
			err->sync_failed = true;
		return c == SG_OK ? SG_IO_ERROR : c;
	}
	close(fd);
	return SG_OK;
}

static sg_code
posix_mkdir(sg_env *env, const char *path, sg_err *err)
{
	(void) env;
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return posix_errno(err, "create directory", path);
	return SG_OK;
}

static sg_code
posix_rmdir(sg_env *env, const char *path, sg_err *err)
{
	(void) env;
	if (rmdir(path) != 0)
		return posix_errno(err, "remove directory", path);
	return SG_OK;
}

static sg_code
posix_exists(sg_env *env, const char *path, sg_err *err)
{
	struct stat st;

	(void) env;
	if (stat(path, &st) == 0)
		return SG_OK;
	if (errno == ENOENT)
		return SG_NOT_FOUND;
	return posix_errno(err, "stat file", path);
}

static sg_code
posix_list_dir(sg_env *env, const char *dir, char ***names, size_t *count, sg_err *err)
{
	DIR		   *d;
	struct dirent *de;
	char	  **list = NULL;
	size_t		n = 0,
				cap = 0;

	(void) env;
	d = opendir(dir);
	if (d == NULL)
		return posix_errno(err, "open directory", dir);
	while ((errno = 0, de = readdir(d)) != NULL)
	{
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n == cap)
		{
			size_t		ncap = cap ? cap * 2 : 16;
			char	  **nl = realloc(list, ncap * sizeof(char *));

			if (nl == NULL)
				goto oom;
			list = nl;
			cap = ncap;
		}
		if ((list[n] = strdup(de->d_name)) == NULL)
			goto oom;
		n++;
	}
	if (errno != 0)
	{
		sg_code		c = posix_errno(err, "read directory", dir);

		closedir(d);
		sg_env_free_names(list, n);
		return c;
	}
	closedir(d);
	*names = list;
	*count = n;
	return SG_OK;

oom:
	closedir(d);
	sg_env_free_names(list, n);
	return sg_error(err, SG_NO_MEMORY, "out of memory listing \"%s\"", dir);
}

static const sg_env_ops posix_ops = {
	.open = posix_open,
	.append = posix_append,
	.pread = posix_pread,
	.sync = posix_sync,
	.size = posix_size,
	.truncate = posix_truncate,
	.close = posix_close,
	.rename = posix_rename,
	.unlink = posix_unlink,
	.sync_dir = posix_sync_dir,
	.mkdir = posix_mkdir,
	.rmdir = posix_rmdir,
	.exists = posix_exists,
	.list_dir = posix_list_dir,
};

static sg_env posix_env = {&posix_ops};

sg_env *
sg_env_posix(void)
{
	return &posix_env;
}

void
sg_env_free_names(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

sg_code
sg_file_read_exact(sg_file *f, uint64_t off, void *buf, size_t n, sg_err *err)
{
	size_t		got;
	sg_code		rc = sg_file_pread(f, off, buf, n, &got, err);

	if (rc != SG_OK)
		return rc;
	if (got != n)
		return sg_error(err, SG_CORRUPTION,
						"file \"%s\" is truncated: wanted %zu bytes at offset %llu, got %zu",
						f->path, n, (unsigned long long) off, got);
	return SG_OK;
}

sg_code
sg_env_write_file_atomic(sg_env *env, const char *dir, const char *name,
						 const void *data, size_t n, sg_err *err)
{
	char		tmp[4096];
	char		final[4096];
	sg_file    *f;
	sg_code		rc;

	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
	snprintf(final, sizeof(final), "%s/%s", dir, name);
	if ((rc = sg_file_open(env, tmp, SG_OPEN_CREATE, &f, err)) != SG_OK)
		return rc;
	rc = sg_file_append(f, data, n, err);
	if (rc == SG_OK)
		rc = sg_file_sync(f, err);
	if (rc != SG_OK)
	{
		sg_file_close(f, NULL);
		return rc;
	}
	if ((rc = sg_file_close(f, err)) != SG_OK)
		return rc;
	if ((rc = env->ops->rename(env, tmp, final, err)) != SG_OK)
		return rc;
	return env->ops->sync_dir(env, dir, err);
}

sg_code
sg_env_read_file(sg_env *env, const char *path, char **data, size_t *n, sg_err *err)
{
	sg_file    *f;
	uint64_t	size;
	char	   *buf;
	sg_code		rc;

	if ((rc = sg_file_open(env, path, SG_OPEN_READ, &f, err)) != SG_OK)
		return rc;
	if ((rc = sg_file_size(f, &size, err)) != SG_OK)
	{
		sg_file_close(f, NULL);
		return rc;
	}
	buf = malloc(size ? size : 1);
	if (buf == NULL)
	{
		sg_file_close(f, NULL);
		return sg_error(err, SG_NO_MEMORY, "out of memory reading \"%s\"", path);
	}
	rc = sg_file_read_exact(f, 0, buf, size, err);
	sg_file_close(f, NULL);
	if (rc != SG_OK)
	{
		free(buf);
		return rc;
	}
	*data = buf;
	*n = size;
	return SG_OK;
}
