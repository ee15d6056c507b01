/*
 * env_mem.c — the in-memory, fault-injecting file layer (see env_mem.h).
 *
 * Model. A file's bytes live in an inode; names live in entries, one per
 * path that has (or durably had) something in it. Each entry holds two
 * pointers:
 *
 *     cur      what the name refers to now (NULL: nothing);
 *     durable  what it referred to at its directory's last sync_dir().
 *
 * Creating, renaming or unlinking changes only cur; sync_dir(d) copies cur
 * into durable for every entry directly inside d; a crash copies durable
 * back into cur. An inode counts one reference per entry pointer and per
 * open handle, and is freed when the last goes. Each inode also knows how
 * many of its bytes have been synced; a crash cuts it back to that.
 *
 * Invariants (all under mu):
 *  - an entry whose cur and durable are both NULL is not kept;
 *  - synced_len <= len for every inode;
 *  - directories are inodes with is_dir set and are always durable
 *    (cur == durable for their entries), see env_mem.h.
 *
 * Paths are normalised (repeated and trailing '/' and "." components
 * removed) so that "d//f" and "d/f" are one name; the parent of a name
 * without '/' is ".".
 *
 * Thread safety: every call takes mu; handles are stamped with the crash
 * epoch they were opened in, so a crash invalidates them all at once.
 */
#include "engine/base/env_mem.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct mem_inode
{
	bool		is_dir;
	char	   *data;
	size_t		len;
	size_t		cap;
	size_t		synced_len;		/* bytes a crash would keep */
	int			refs;
	struct mem_inode *prev;		/* env's list of all inodes */
	struct mem_inode *next;
} mem_inode;

typedef struct mem_entry
{
	char	   *path;			/* normalised */
	char	   *parent;			/* normalised directory holding path */
	mem_inode  *cur;
	mem_inode  *durable;
	struct mem_entry *chain;	/* hash bucket chain */
} mem_entry;

typedef struct mem_env
{
	sg_env		base;
	pthread_mutex_t mu;
	mem_entry **buckets;
	size_t		nbuckets;		/* a power of two */
	size_t		nentries;
	mem_inode  *inodes;
	uint64_t	epoch;			/* bumped by every crash */
	uint64_t	write_countdown;	/* 0: no injection pending */
	uint64_t	sync_countdown;
	uint64_t	space_left;		/* UINT64_MAX: unlimited */
	uint32_t	sync_latency_us;	/* simulated device flush time */
	sg_env_mem_stats stats;
} mem_env;

typedef struct mem_file
{
	sg_file		base;
	mem_inode  *ino;
	bool		writable;
	uint64_t	epoch;			/* env epoch at open; stale after a crash */
} mem_file;

static const sg_env_ops mem_ops;

static mem_env *
as_mem(sg_env *env)
{
	return (env != NULL && env->ops == &mem_ops) ? (mem_env *) env : NULL;
}

/* ---------------------------------------------------------------- paths */

/* A malloc'd normalised copy of path, or NULL if memory ran out. */
static char *
mem_normalize(const char *path)
{
	size_t		n = strlen(path);
	char	   *out = malloc(n + 2);
	size_t		o = 0;
	const char *p = path;

	if (out == NULL)
		return NULL;
	if (*p == '/')
		out[o++] = '/';
	for (;;)
	{
		const char *s;
		size_t		len;

		while (*p == '/')
			p++;
		s = p;
		while (*p != '\0' && *p != '/')
			p++;
		len = (size_t) (p - s);
		if (len == 0)
			break;
		if (len == 1 && s[0] == '.')
			continue;
		if (o > 0 && out[o - 1] != '/')
			out[o++] = '/';
		memcpy(out + o, s, len);
		o += len;
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return out;
}

static bool
mem_is_root(const char *norm)
{
	return strcmp(norm, "/") == 0 || strcmp(norm, ".") == 0;
}

/* A malloc'd parent directory of a normalised, non-root path. */
static char *
mem_parent(const char *norm)
{
	const char *slash = strrchr(norm, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == norm)
		return strdup("/");
	return strndup(norm, (size_t) (slash - norm));
}

static const char *
mem_basename(const char *norm)
{
	const char *slash = strrchr(norm, '/');

	return slash ? slash + 1 : norm;
}

/* -------------------------------------------------------------- inodes */

static mem_inode *
inode_new(mem_env *env, bool is_dir)
{
	mem_inode  *ino = calloc(1, sizeof(*ino));

	if (ino == NULL)
		return NULL;
	ino->is_dir = is_dir;
	ino->next = env->inodes;
	if (env->inodes)
		env->inodes->prev = ino;
	env->inodes = ino;
	return ino;
}

static void
inode_unref(mem_env *env, mem_inode *ino)
{
	if (ino == NULL || --ino->refs > 0)
		return;
	if (ino->prev)
		ino->prev->next = ino->next;
	else
		env->inodes = ino->next;
	if (ino->next)
		ino->next->prev = ino->prev;
	free(ino->data);
	free(ino);
}

static void
inode_ref(mem_inode *ino)
{
	if (ino != NULL)
		ino->refs++;
}

/* ------------------------------------------------------------- entries */

static uint64_t
mem_hash(const char *s)
{
	uint64_t	h = UINT64_C(1469598103934665603);	/* FNV-1a */

	for (; *s; s++)
		h = (h ^ (uint8_t) *s) * UINT64_C(1099511628211);
	return h;
}

static mem_entry *
entry_find(mem_env *env, const char *norm)
{
	mem_entry  *e = env->buckets[mem_hash(norm) & (env->nbuckets - 1)];

	for (; e != NULL; e = e->chain)
		if (strcmp(e->path, norm) == 0)
			return e;
	return NULL;
}

/* The inode norm refers to now, or NULL. */
static mem_inode *
entry_cur(mem_env *env, const char *norm)
{
	mem_entry  *e = entry_find(env, norm);

	return e ? e->cur : NULL;
}

static bool
dir_exists(mem_env *env, const char *norm)
{
	mem_inode  *ino;

	if (mem_is_root(norm))
		return true;
	ino = entry_cur(env, norm);
	return ino != NULL && ino->is_dir;
}

static void
entries_grow(mem_env *env)
{
	size_t		nb = env->nbuckets * 2;
	mem_entry **b = calloc(nb, sizeof(*b));

	/* Without memory the table just stays denser; lookups still work. */
	if (b == NULL)
		return;
	for (size_t i = 0; i < env->nbuckets; i++)
	{
		mem_entry  *e = env->buckets[i];

		while (e != NULL)
		{
			mem_entry  *next = e->chain;
			size_t		h = mem_hash(e->path) & (nb - 1);

			e->chain = b[h];
			b[h] = e;
			e = next;
		}
	}
	free(env->buckets);
	env->buckets = b;
	env->nbuckets = nb;
}

/* Find or add the (empty) entry for norm; NULL if memory ran out. */
static mem_entry *
entry_get(mem_env *env, const char *norm)
{
	mem_entry  *e = entry_find(env, norm);
	size_t		h;

	if (e != NULL)
		return e;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->path = strdup(norm);
	e->parent = mem_parent(norm);
	if (e->path == NULL || e->parent == NULL)
	{
		free(e->path);
		free(e->parent);
		free(e);
		return NULL;
	}
	if (env->nentries >= env->nbuckets)
		entries_grow(env);
	h = mem_hash(norm) & (env->nbuckets - 1);
	e->chain = env->buckets[h];
	env->buckets[h] = e;
	env->nentries++;
	return e;
}

/* Drop e if it no longer refers to anything, now or durably. */
static void
entry_maybe_free(mem_env *env, mem_entry *e)
{
	mem_entry **pp;

	if (e->cur != NULL || e->durable != NULL)
		return;
	pp = &env->buckets[mem_hash(e->path) & (env->nbuckets - 1)];
	while (*pp != e)
		pp = &(*pp)->chain;
	*pp = e->chain;
	env->nentries--;
	free(e->path);
	free(e->parent);
	free(e);
}

static void
entry_set_cur(mem_env *env, mem_entry *e, mem_inode *ino)
{
	mem_inode  *old = e->cur;

	inode_ref(ino);
	e->cur = ino;
	inode_unref(env, old);
}

static void
entry_set_durable(mem_env *env, mem_entry *e, mem_inode *ino)
{
	mem_inode  *old = e->durable;

	inode_ref(ino);
	e->durable = ino;
	inode_unref(env, old);
}

/*
 * Call fn on every entry; fn may free the entry it is given (but no other).
 */
static void
entries_foreach(mem_env *env, void (*fn) (mem_env *, mem_entry *, const void *),
				const void *arg)
{
	for (size_t i = 0; i < env->nbuckets; i++)
	{
		mem_entry  *e = env->buckets[i];

		while (e != NULL)
		{
			mem_entry  *next = e->chain;

			fn(env, e, arg);
			e = next;
		}
	}
}

/* --------------------------------------------------------------- files */

/* SG_IO_ERROR if f was opened before the last crash. REQUIRES: mu held. */
static sg_code
file_check(mem_env *env, mem_file *f, sg_err *err)
{
	if (f->epoch != env->epoch)
		return sg_error(err, SG_IO_ERROR,
						"file \"%s\" was open across a simulated crash", f->base.path);
	return SG_OK;
}

static sg_code
mem_open(sg_env *base, const char *path, sg_open_mode mode, sg_file **out, sg_err *err)
{
	mem_env    *env = (mem_env *) base;
	char	   *norm = mem_normalize(path);
	char	   *parent = NULL;
	mem_entry  *e;
	mem_inode  *ino;
	mem_file   *f;
	sg_code		rc = SG_OK;

	if (norm == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory opening \"%s\"", path);
	f = calloc(1, sizeof(*f));
	if (f == NULL || (f->base.path = strdup(path)) == NULL)
	{
		free(f);
		free(norm);
		return sg_error(err, SG_NO_MEMORY, "out of memory opening \"%s\"", path);
	}
	pthread_mutex_lock(&env->mu);
	ino = mem_is_root(norm) ? NULL : entry_cur(env, norm);
	if (mem_is_root(norm) || (ino != NULL && ino->is_dir))
	{
		rc = sg_error(err, SG_IO_ERROR, "could not open file \"%s\": is a directory", path);
		goto done;
	}
	if (ino == NULL)
	{
		if (mode == SG_OPEN_READ || mode == SG_OPEN_APPEND_EXISTING)
		{
			rc = sg_error(err, SG_NOT_FOUND, "could not open file \"%s\": no such file", path);
			goto done;
		}
		parent = mem_parent(norm);
		if (parent == NULL)
		{
			rc = sg_error(err, SG_NO_MEMORY, "out of memory opening \"%s\"", path);
			goto done;
		}
		if (!dir_exists(env, parent))
		{
			rc = sg_error(err, SG_NOT_FOUND,
						  "could not open file \"%s\": no directory \"%s\"", path, parent);
			goto done;
		}
		if ((e = entry_get(env, norm)) == NULL || (ino = inode_new(env, false)) == NULL)
		{
			if (e != NULL)
				entry_maybe_free(env, e);
			rc = sg_error(err, SG_NO_MEMORY, "out of memory opening \"%s\"", path);
			goto done;
		}
		entry_set_cur(env, e, ino);
	}
	else if (mode == SG_OPEN_CREATE)
	{
		/* O_TRUNC: durable at once in this model (see env_mem.h). */
		ino->len = 0;
		ino->synced_len = 0;
	}
	inode_ref(ino);
	f->base.env = base;
	f->ino = ino;
	f->writable = (mode != SG_OPEN_READ);
	f->epoch = env->epoch;
	*out = &f->base;
	f = NULL;

done:
	pthread_mutex_unlock(&env->mu);
	if (f != NULL)
	{
		free(f->base.path);
		free(f);
	}
	free(parent);
	free(norm);
	return rc;
}

static sg_code
mem_append(sg_file *file, const void *data, size_t n, sg_err *err)
{
	mem_file   *f = (mem_file *) file;
	mem_env    *env = (mem_env *) file->env;
	mem_inode  *ino = f->ino;
	sg_code		rc;

	pthread_mutex_lock(&env->mu);
	env->stats.appends++;
	if ((rc = file_check(env, f, err)) != SG_OK)
		goto done;
	if (!f->writable)
	{
		rc = sg_error(err, SG_IO_ERROR, "could not write to file \"%s\": opened read-only",
					  file->path);
		goto done;
	}
	if (env->write_countdown > 0 && --env->write_countdown == 0)
	{
		env->stats.injected_failures++;
		rc = sg_error(err, SG_IO_ERROR, "could not write to file \"%s\": injected failure",
					  file->path);
		goto done;
	}
	if (env->space_left != UINT64_MAX && n > env->space_left)
	{
		rc = sg_error(err, SG_IO_ERROR,
					  "could not write to file \"%s\": no space left on device", file->path);
		if (err != NULL)
			err->disk_full = true;
		goto done;
	}
	if (n > ino->cap - ino->len)
	{
		size_t		ncap = ino->cap ? ino->cap : 256;
		char	   *nd;

		while (ncap - ino->len < n)
		{
			if (ncap > SIZE_MAX / 2)
			{
				ncap = SIZE_MAX;
				break;
			}
			ncap *= 2;
		}
		if (ncap - ino->len < n || (nd = realloc(ino->data, ncap)) == NULL)
		{
			rc = sg_error(err, SG_NO_MEMORY, "out of memory writing to file \"%s\"",
						  file->path);
			goto done;
		}
		ino->data = nd;
		ino->cap = ncap;
	}
	if (n > 0)
		memcpy(ino->data + ino->len, data, n);
	ino->len += n;
	if (env->space_left != UINT64_MAX)
		env->space_left -= n;
	env->stats.bytes_written += n;

done:
	pthread_mutex_unlock(&env->mu);
	return rc;
}

static sg_code
mem_pread(sg_file *file, uint64_t off, void *buf, size_t n, size_t *got, sg_err *err)
{
	mem_file   *f = (mem_file *) file;
	mem_env    *env = (mem_env *) file->env;
	sg_code		rc;

	pthread_mutex_lock(&env->mu);
	env->stats.preads++;
	*got = 0;
	if ((rc = file_check(env, f, err)) == SG_OK && off < f->ino->len)
	{
		size_t		avail = f->ino->len - (size_t) off;

		*got = n < avail ? n : avail;
		if (*got > 0)
			memcpy(buf, f->ino->data + off, *got);
		env->stats.bytes_read += *got;
	}
	pthread_mutex_unlock(&env->mu);
	return rc;
}

/*
 * Count one sync and decide whether it is the injected failure.
 * REQUIRES: mu held.
 */
static bool
sync_should_fail(mem_env *env)
{
	if (env->sync_countdown > 0 && --env->sync_countdown == 0)
	{
		env->stats.injected_failures++;
		return true;
	}
	return false;
}

static sg_code
mem_sync(sg_file *file, sg_err *err)
{
	mem_file   *f = (mem_file *) file;
	mem_env    *env = (mem_env *) file->env;
	sg_code		rc;
	uint32_t	latency;

	pthread_mutex_lock(&env->mu);
	env->stats.syncs++;
	if ((rc = file_check(env, f, err)) == SG_OK)
	{
		if (sync_should_fail(env))
		{
			rc = sg_error(err, SG_IO_ERROR, "could not fsync file \"%s\": injected failure",
						  file->path);
			if (err)
				err->sync_failed = true;
		}
		else
			f->ino->synced_len = f->ino->len;
	}
	latency = env->sync_latency_us;
	pthread_mutex_unlock(&env->mu);

	/*
	 * Sleep outside the mutex, as a real flush blocks only its caller: this
	 * is what lets concurrent writers pile up behind a group-commit leader.
	 */
	if (latency > 0)
		usleep(latency);
	return rc;
}

static sg_code
mem_size(sg_file *file, uint64_t *size, sg_err *err)
{
	mem_file   *f = (mem_file *) file;
	mem_env    *env = (mem_env *) file->env;
	sg_code		rc;

	pthread_mutex_lock(&env->mu);
	if ((rc = file_check(env, f, err)) == SG_OK)
		*size = f->ino->len;
	pthread_mutex_unlock(&env->mu);
	return rc;
}

static sg_code
mem_truncate(sg_file *file, uint64_t len, sg_err *err)
{
	mem_file   *f = (mem_file *) file;
	mem_env    *env = (mem_env *) file->env;
	mem_inode  *ino = f->ino;
	sg_code		rc;

	pthread_mutex_lock(&env->mu);
	if ((rc = file_check(env, f, err)) != SG_OK)
		goto done;
	if (!f->writable)
	{
		rc = sg_error(err, SG_IO_ERROR, "could not truncate file \"%s\": opened read-only",
					  file->path);
		goto done;
	}
	if (len > ino->len)
	{
		/* Growing pads with zeros, as ftruncate does. */
		if (len > SIZE_MAX)
		{
			rc = sg_error(err, SG_NO_MEMORY, "out of memory extending file \"%s\"", file->path);
			goto done;
		}
		if (len > ino->cap)
		{
			char	   *nd = realloc(ino->data, (size_t) len);

			if (nd == NULL)
			{
				rc = sg_error(err, SG_NO_MEMORY, "out of memory extending file \"%s\"",
							  file->path);
				goto done;
			}
			ino->data = nd;
			ino->cap = (size_t) len;
		}
		memset(ino->data + ino->len, 0, (size_t) len - ino->len);
	}
	ino->len = (size_t) len;
	if (ino->synced_len > ino->len)
		ino->synced_len = ino->len;

done:
	pthread_mutex_unlock(&env->mu);
	return rc;
}

static sg_code
mem_close(sg_file *file, sg_err *err)
{
	mem_file   *f = (mem_file *) file;
	mem_env    *env = (mem_env *) file->env;

	(void) err;
	pthread_mutex_lock(&env->mu);
	inode_unref(env, f->ino);
	pthread_mutex_unlock(&env->mu);
	free(file->path);
	free(f);
	return SG_OK;
}

/* --------------------------------------------------------- name space */

static sg_code
mem_rename(sg_env *base, const char *from, const char *to, sg_err *err)
{
	mem_env    *env = (mem_env *) base;
	char	   *nfrom = mem_normalize(from);
	char	   *nto = mem_normalize(to);
	char	   *parent = NULL;
	mem_entry  *src,
			   *dst;
	sg_code		rc = SG_OK;

	if (nfrom == NULL || nto == NULL || (!mem_is_root(nto) && (parent = mem_parent(nto)) == NULL))
	{
		free(nfrom);
		free(nto);
		return sg_error(err, SG_NO_MEMORY, "out of memory renaming \"%s\"", from);
	}
	pthread_mutex_lock(&env->mu);
	src = entry_find(env, nfrom);
	if (src == NULL || src->cur == NULL || mem_is_root(nfrom))
	{
		rc = sg_error(err, mem_is_root(nfrom) ? SG_NOT_SUPPORTED : SG_NOT_FOUND,
					  "could not rename file \"%s\": no such file", from);
		goto done;
	}
	if (src->cur->is_dir)
	{
		rc = sg_error(err, SG_NOT_SUPPORTED,
					  "could not rename \"%s\": renaming directories is not supported", from);
		goto done;
	}
	if (parent == NULL || !dir_exists(env, parent))
	{
		rc = sg_error(err, SG_NOT_FOUND, "could not rename file \"%s\" to \"%s\": no directory",
					  from, to);
		goto done;
	}
	if (strcmp(nfrom, nto) == 0)
		goto done;
	dst = entry_get(env, nto);
	if (dst == NULL)
	{
		rc = sg_error(err, SG_NO_MEMORY, "out of memory renaming \"%s\"", from);
		goto done;
	}
	if (dst->cur != NULL && dst->cur->is_dir)
	{
		rc = sg_error(err, SG_IO_ERROR, "could not rename file \"%s\" to \"%s\": is a directory",
					  from, to);
		goto done;
	}
	entry_set_cur(env, dst, src->cur);
	entry_set_cur(env, src, NULL);
	entry_maybe_free(env, src);

done:
	pthread_mutex_unlock(&env->mu);
	free(parent);
	free(nfrom);
	free(nto);
	return rc;
}

static sg_code
mem_unlink(sg_env *base, const char *path, sg_err *err)
{
	mem_env    *env = (mem_env *) base;
	char	   *norm = mem_normalize(path);
	mem_entry  *e;
	sg_code		rc = SG_OK;

	if (norm == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory removing \"%s\"", path);
	pthread_mutex_lock(&env->mu);
	e = entry_find(env, norm);
	if (mem_is_root(norm) || (e != NULL && e->cur != NULL && e->cur->is_dir))
		rc = sg_error(err, SG_IO_ERROR, "could not remove file \"%s\": is a directory", path);
	else if (e == NULL || e->cur == NULL)
		rc = sg_error(err, SG_NOT_FOUND, "could not remove file \"%s\": no such file", path);
	else
	{
		entry_set_cur(env, e, NULL);
		entry_maybe_free(env, e);
	}
	pthread_mutex_unlock(&env->mu);
	free(norm);
	return rc;
}

static void
sync_entry(mem_env *env, mem_entry *e, const void *dir)
{
	if (strcmp(e->parent, (const char *) dir) == 0)
	{
		entry_set_durable(env, e, e->cur);
		entry_maybe_free(env, e);
	}
}

static sg_code
mem_sync_dir(sg_env *base, const char *dir, sg_err *err)
{
	mem_env    *env = (mem_env *) base;
	char	   *norm = mem_normalize(dir);
	sg_code		rc = SG_OK;

	if (norm == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory syncing \"%s\"", dir);
	pthread_mutex_lock(&env->mu);
	env->stats.dir_syncs++;
	if (!dir_exists(env, norm))
		rc = sg_error(err, SG_NOT_FOUND, "could not open directory \"%s\": no such directory",
					  dir);
	else if (sync_should_fail(env))
	{
		rc = sg_error(err, SG_IO_ERROR, "could not fsync directory \"%s\": injected failure",
					  dir);
		if (err)
			err->sync_failed = true;
	}
	else
		entries_foreach(env, sync_entry, norm);
	pthread_mutex_unlock(&env->mu);
	free(norm);
	return rc;
}

static sg_code
mem_mkdir(sg_env *base, const char *path, sg_err *err)
{
	mem_env    *env = (mem_env *) base;
	char	   *norm = mem_normalize(path);
	sg_code		rc = SG_OK;
	size_t		n;

	if (norm == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory creating \"%s\"", path);
	n = strlen(norm);
	pthread_mutex_lock(&env->mu);

	/* Create each missing ancestor, then the directory itself. */
	for (size_t i = 1; i <= n && rc == SG_OK; i++)
	{
		mem_entry  *e;
		mem_inode  *ino;
		char		saved = norm[i];

		if (i < n && norm[i] != '/')
			continue;
		norm[i] = '\0';
		if (!mem_is_root(norm))
		{
			ino = entry_cur(env, norm);
			if (ino != NULL && !ino->is_dir)
				rc = sg_error(err, SG_IO_ERROR,
							  "could not create directory \"%s\": \"%s\" is a file", path, norm);
			else if (ino == NULL)
			{
				if ((e = entry_get(env, norm)) == NULL || (ino = inode_new(env, true)) == NULL)
				{
					if (e != NULL)
						entry_maybe_free(env, e);
					rc = sg_error(err, SG_NO_MEMORY, "out of memory creating \"%s\"", path);
				}
				else
				{
					/* Directories are durable at once (see env_mem.h). */
					entry_set_cur(env, e, ino);
					entry_set_durable(env, e, ino);
				}
			}
		}
		norm[i] = saved;
	}
	pthread_mutex_unlock(&env->mu);
	free(norm);
	return rc;
}

typedef struct dir_scan
{
	const char *dir;
	bool		nonempty;
} dir_scan;

static void
scan_nonempty(mem_env *env, mem_entry *e, const void *arg)
{
	dir_scan   *s = (dir_scan *) arg;

	(void) env;
	if (e->cur != NULL && strcmp(e->parent, s->dir) == 0)
		s->nonempty = true;
}

static void
forget_entry(mem_env *env, mem_entry *e, const void *dir)
{
	if (strcmp(e->parent, (const char *) dir) == 0)
	{
		entry_set_durable(env, e, NULL);
		entry_maybe_free(env, e);
	}
}

static sg_code
mem_rmdir(sg_env *base, const char *path, sg_err *err)
{
	mem_env    *env = (mem_env *) base;
	char	   *norm = mem_normalize(path);
	mem_entry  *e;
	sg_code		rc = SG_OK;
	dir_scan	scan;

	if (norm == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory removing \"%s\"", path);
	pthread_mutex_lock(&env->mu);
	e = mem_is_root(norm) ? NULL : entry_find(env, norm);
	scan.dir = norm;
	scan.nonempty = false;
	if (mem_is_root(norm))
		rc = sg_error(err, SG_IO_ERROR, "could not remove directory \"%s\": is the root", path);
	else if (e == NULL || e->cur == NULL)
		rc = sg_error(err, SG_NOT_FOUND, "could not remove directory \"%s\": no such directory",
					  path);
	else if (!e->cur->is_dir)
		rc = sg_error(err, SG_IO_ERROR, "could not remove directory \"%s\": not a directory",
					  path);
	else
	{
		entries_foreach(env, scan_nonempty, &scan);
		if (scan.nonempty)
			rc = sg_error(err, SG_IO_ERROR,
						  "could not remove directory \"%s\": directory not empty", path);
		else
		{
			entries_foreach(env, forget_entry, norm);
			entry_set_cur(env, e, NULL);
			entry_set_durable(env, e, NULL);
			entry_maybe_free(env, e);
		}
	}
	pthread_mutex_unlock(&env->mu);
	free(norm);
	return rc;
}

static sg_code
mem_exists(sg_env *base, const char *path, sg_err *err)
{
	mem_env    *env = (mem_env *) base;
	char	   *norm = mem_normalize(path);
	sg_code		rc;

	if (norm == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory looking up \"%s\"", path);
	pthread_mutex_lock(&env->mu);
	rc = (mem_is_root(norm) || entry_cur(env, norm) != NULL) ? SG_OK : SG_NOT_FOUND;
	pthread_mutex_unlock(&env->mu);
	free(norm);
	return rc;
}

typedef struct dir_list
{
	const char *dir;
	char	  **names;
	size_t		count;
	size_t		cap;
	bool		oom;
} dir_list;

static void
list_entry(mem_env *env, mem_entry *e, const void *arg)
{
	dir_list   *l = (dir_list *) arg;

	(void) env;
	if (l->oom || e->cur == NULL || strcmp(e->parent, l->dir) != 0)
		return;
	if (l->count == l->cap)
	{
		size_t		ncap = l->cap ? l->cap * 2 : 16;
		char	  **nn = realloc(l->names, ncap * sizeof(char *));

		if (nn == NULL)
		{
			l->oom = true;
			return;
		}
		l->names = nn;
		l->cap = ncap;
	}
	if ((l->names[l->count] = strdup(mem_basename(e->path))) == NULL)
	{
		l->oom = true;
		return;
	}
	l->count++;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static sg_code
mem_list_dir(sg_env *base, const char *dir, char ***names, size_t *count, sg_err *err)
{
	mem_env    *env = (mem_env *) base;
	char	   *norm = mem_normalize(dir);
	dir_list	l;
	mem_inode  *ino;
	sg_code		rc = SG_OK;

	if (norm == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory listing \"%s\"", dir);
	memset(&l, 0, sizeof(l));
	l.dir = norm;
	pthread_mutex_lock(&env->mu);
	ino = mem_is_root(norm) ? NULL : entry_cur(env, norm);
	if (!mem_is_root(norm) && ino == NULL)
		rc = sg_error(err, SG_NOT_FOUND, "could not open directory \"%s\": no such directory",
					  dir);
	else if (ino != NULL && !ino->is_dir)
		rc = sg_error(err, SG_IO_ERROR, "could not open directory \"%s\": not a directory", dir);
	else
		entries_foreach(env, list_entry, &l);
	pthread_mutex_unlock(&env->mu);
	free(norm);
	if (rc != SG_OK)
		return rc;
	if (l.oom)
	{
		sg_env_free_names(l.names, l.count);
		return sg_error(err, SG_NO_MEMORY, "out of memory listing \"%s\"", dir);
	}
	/* Sorted, so that tests and recovery see a stable order. */
	if (l.count > 1)
		qsort(l.names, l.count, sizeof(char *), cmp_names);
	*names = l.names;
	*count = l.count;
	return SG_OK;
}

static const sg_env_ops mem_ops = {
	.open = mem_open,
	.append = mem_append,
	.pread = mem_pread,
	.sync = mem_sync,
	.size = mem_size,
	.truncate = mem_truncate,
	.close = mem_close,
	.rename = mem_rename,
	.unlink = mem_unlink,
	.sync_dir = mem_sync_dir,
	.mkdir = mem_mkdir,
	.rmdir = mem_rmdir,
	.exists = mem_exists,
	.list_dir = mem_list_dir,
};

/* ------------------------------------------------------------ control */

sg_env *
sg_env_mem_new(void)
{
	mem_env    *env = calloc(1, sizeof(*env));

	if (env == NULL)
		return NULL;
	env->nbuckets = 64;
	env->buckets = calloc(env->nbuckets, sizeof(mem_entry *));
	if (env->buckets == NULL || pthread_mutex_init(&env->mu, NULL) != 0)
	{
		free(env->buckets);
		free(env);
		return NULL;
	}
	env->base.ops = &mem_ops;
	env->space_left = UINT64_MAX;
	return &env->base;
}

static void
destroy_entry(mem_env *env, mem_entry *e, const void *arg)
{
	(void) arg;
	entry_set_cur(env, e, NULL);
	entry_set_durable(env, e, NULL);
	entry_maybe_free(env, e);
}

void
sg_env_mem_destroy(sg_env *base)
{
	mem_env    *env = as_mem(base);

	if (env == NULL)
		return;
	entries_foreach(env, destroy_entry, NULL);
	/* Only inodes of handles left open (a caller bug) remain; free them. */
	while (env->inodes != NULL)
	{
		mem_inode  *ino = env->inodes;

		env->inodes = ino->next;
		free(ino->data);
		free(ino);
	}
	free(env->buckets);
	pthread_mutex_destroy(&env->mu);
	free(env);
}

static void
crash_entry(mem_env *env, mem_entry *e, const void *arg)
{
	(void) arg;
	entry_set_cur(env, e, e->durable);
	entry_maybe_free(env, e);
}

static uint64_t
crash_rand(uint64_t *s)
{
	/* xorshift64*: enough to pick lengths and junk bytes reproducibly. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

void
sg_env_mem_crash_torn(sg_env *base, sg_mem_crash_mode mode, uint64_t seed)
{
	mem_env    *env = as_mem(base);
	uint64_t	rng = seed ? seed : UINT64_C(0x9e3779b97f4a7c15);

	if (env == NULL)
		return;
	pthread_mutex_lock(&env->mu);
	env->stats.crashes++;
	env->epoch++;
	entries_foreach(env, crash_entry, NULL);
	for (mem_inode *ino = env->inodes; ino != NULL; ino = ino->next)
	{
		size_t		tail = ino->len - ino->synced_len;
		size_t		keep = 0;

		if (ino->is_dir)
			continue;
		if (mode != SG_MEM_CRASH_DROP && tail > 0)
			keep = (size_t) (crash_rand(&rng) % ((uint64_t) tail + 1));
		if (mode == SG_MEM_CRASH_GARBAGE)
			for (size_t i = 0; i < keep; i++)
				ino->data[ino->synced_len + i] = (char) crash_rand(&rng);
		ino->len = ino->synced_len + keep;
		/* What survived a power loss is on disk now. */
		ino->synced_len = ino->len;
	}
	pthread_mutex_unlock(&env->mu);
}

void
sg_env_mem_crash(sg_env *env)
{
	sg_env_mem_crash_torn(env, SG_MEM_CRASH_DROP, 0);
}

void
sg_env_mem_fail_nth_write(sg_env *base, uint64_t n)
{
	mem_env    *env = as_mem(base);

	if (env == NULL)
		return;
	pthread_mutex_lock(&env->mu);
	env->write_countdown = n;
	pthread_mutex_unlock(&env->mu);
}

void
sg_env_mem_fail_nth_sync(sg_env *base, uint64_t n)
{
	mem_env    *env = as_mem(base);

	if (env == NULL)
		return;
	pthread_mutex_lock(&env->mu);
	env->sync_countdown = n;
	pthread_mutex_unlock(&env->mu);
}

void
sg_env_mem_set_sync_latency(sg_env *base, uint32_t usec)
{
	mem_env    *env = as_mem(base);

	if (env == NULL)
		return;
	pthread_mutex_lock(&env->mu);
	env->sync_latency_us = usec;
	pthread_mutex_unlock(&env->mu);
}

void
sg_env_mem_set_space_budget(sg_env *base, uint64_t budget)
{
	mem_env    *env = as_mem(base);

	if (env == NULL)
		return;
	pthread_mutex_lock(&env->mu);
	env->space_left = budget;
	pthread_mutex_unlock(&env->mu);
}

void
sg_env_mem_get_stats(sg_env *base, sg_env_mem_stats *out)
{
	mem_env    *env = as_mem(base);

	memset(out, 0, sizeof(*out));
	if (env == NULL)
		return;
	pthread_mutex_lock(&env->mu);
	*out = env->stats;
	pthread_mutex_unlock(&env->mu);
}

void
sg_env_mem_reset_stats(sg_env *base)
{
	mem_env    *env = as_mem(base);

	if (env == NULL)
		return;
	pthread_mutex_lock(&env->mu);
	memset(&env->stats, 0, sizeof(env->stats));
	pthread_mutex_unlock(&env->mu);
}

sg_code
sg_env_mem_synced_size(sg_env *base, const char *path, uint64_t *len, sg_err *err)
{
	mem_env    *env = as_mem(base);
	char	   *norm;
	mem_inode  *ino;
	sg_code		rc = SG_OK;

	if (env == NULL)
		return sg_error(err, SG_INVALID_ARGUMENT, "not an in-memory env");
	if ((norm = mem_normalize(path)) == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory looking up \"%s\"", path);
	pthread_mutex_lock(&env->mu);
	ino = mem_is_root(norm) ? NULL : entry_cur(env, norm);
	if (ino == NULL || ino->is_dir)
		rc = sg_error(err, SG_NOT_FOUND, "no file \"%s\"", path);
	else
		*len = ino->synced_len;
	pthread_mutex_unlock(&env->mu);
	free(norm);
	return rc;
}
