/*
 * manifest.c — MANIFEST replay and writing, CURRENT, orphan listing, and
 * the version set (see manifest.h for the rules).
 */
#include "engine/version/manifest.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/base/coding.h"
#include "engine/wal/log_reader.h"

#define PATH_LEN 4096

void
sg_sst_name(char *buf, size_t len, uint64_t number)
{
	snprintf(buf, len, "%06" PRIu64 SG_SST_SUFFIX, number);
}

void
sg_sst_path(char *buf, size_t len, const char *dir, uint64_t number)
{
	snprintf(buf, len, "%s/%06" PRIu64 SG_SST_SUFFIX, dir, number);
}

static void
manifest_name(char *buf, size_t len, uint64_t number)
{
	snprintf(buf, len, SG_MANIFEST_PREFIX "%06" PRIu64, number);
}

void
sg_manifest_path(char *buf, size_t len, const char *dir, uint64_t number)
{
	snprintf(buf, len, "%s/" SG_MANIFEST_PREFIX "%06" PRIu64, dir, number);
}

/*
 * Parse a decimal number that fills [s, s + n) exactly; false if it is
 * empty, has another character, or overflows.
 */
static bool
parse_number(const char *s, size_t n, uint64_t *out)
{
	uint64_t	v = 0;

	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++)
	{
		if (!isdigit((unsigned char) s[i]))
			return false;
		if (v > (UINT64_MAX - (uint64_t) (s[i] - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t) (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool
has_suffix(const char *s, const char *suffix)
{
	size_t		a = strlen(s),
				b = strlen(suffix);

	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* ------------------------------------------------------------------ replay */

sg_code
sg_manifest_replay(sg_env *env, const char *path, sg_manifest_state *out, sg_err *err)
{
	sg_file    *f = NULL;
	sg_log_reader *r = NULL;
	sg_version *v = NULL;
	sg_version_edit e;
	bool		have_next = false,
				have_seq = false,
				have_log = false;
	sg_code		rc;

	memset(out, 0, sizeof(*out));
	sg_version_edit_init(&e);
	if ((rc = sg_file_open(env, path, SG_OPEN_READ, &f, err)) != SG_OK)
		return rc;
	if ((rc = sg_log_reader_open(f, false, &r, err)) != SG_OK)
		goto done;
	for (;;)
	{
		sg_slice	rec;
		uint64_t	off;
		sg_version *nv;

		rc = sg_log_reader_next(r, &rec, err);
		if (rc == SG_NOT_FOUND)
		{
			rc = SG_OK;
			break;
		}
		if (rc != SG_OK)
			goto done;
		off = sg_log_reader_record_offset(r);
		if ((rc = sg_version_edit_decode(&e, rec, path, off, err)) != SG_OK)
			goto done;
		if (out->records == 0)
		{
			if (!e.is_snapshot || !e.has_format_name)
			{
				rc = sg_error(err, SG_CORRUPTION,
							  "%s: first record at offset %llu is not a snapshot edit",
							  path, (unsigned long long) off);
				goto done;
			}
		}
		else if (e.is_snapshot)
		{
			rc = sg_error(err, SG_CORRUPTION, "%s: second snapshot edit at offset %llu",
						  path, (unsigned long long) off);
			goto done;
		}
		if (e.has_format_name && strcmp(e.format_name, SG_FORMAT_NAME) != 0)
		{
			rc = sg_error(err, SG_NOT_SUPPORTED,
						  "%s: format \"%s\" at offset %llu is not \"%s\"",
						  path, e.format_name, (unsigned long long) off, SG_FORMAT_NAME);
			goto done;
		}
		if (e.has_log_number)
		{
			if (have_log && e.log_number < out->log_number)
			{
				rc = sg_error(err, SG_CORRUPTION, "%s: log number goes backwards at offset %llu",
							  path, (unsigned long long) off);
				goto done;
			}
			out->log_number = e.log_number;
			have_log = true;
		}
		if (e.has_aux_log_number)
		{
			if (e.aux_log_number < out->aux_log_number)
			{
				rc = sg_error(err, SG_CORRUPTION, "%s: aux log number goes backwards at offset %llu",
							  path, (unsigned long long) off);
				goto done;
			}
			out->aux_log_number = e.aux_log_number;
		}
		if (e.has_next_file)
		{
			out->next_file = e.next_file;
			have_next = true;
		}
		if (e.has_last_sequence)
		{
			if (e.last_sequence > out->last_sequence)
				out->last_sequence = e.last_sequence;
			have_seq = true;
		}
		{
			char		what[PATH_LEN + 64];

			snprintf(what, sizeof(what), "%s (record at offset %llu)", path,
					 (unsigned long long) off);
			if ((rc = sg_version_apply(v, &e, what, &nv, err)) != SG_OK)
				goto done;
		}
		sg_version_unref(v, NULL, NULL);
		v = nv;
		out->records++;
	}
	out->torn_tail = sg_log_reader_torn(r, NULL, NULL);
	out->good_end = sg_log_reader_good_end(r);
	if (out->records == 0)
	{
		rc = sg_error(err, SG_CORRUPTION, "%s: no complete snapshot record", path);
		goto done;
	}
	if (!have_next || !have_seq || !have_log)
	{
		rc = sg_error(err, SG_CORRUPTION, "%s: counters missing (next file, sequence or log number)",
					  path);
		goto done;
	}
	for (int l = 0; l < SG_NUM_LEVELS; l++)
		for (size_t i = 0; i < v->nfiles[l]; i++)
			if (v->files[l][i]->number >= out->next_file ||
				v->files[l][i]->largest_seq > out->last_sequence)
			{
				rc = sg_error(err, SG_CORRUPTION,
							  "%s: file %llu is beyond the recorded counters",
							  path, (unsigned long long) v->files[l][i]->number);
				goto done;
			}
	out->version = v;
	v = NULL;

done:
	sg_version_edit_free(&e);
	sg_version_unref(v, NULL, NULL);
	sg_log_reader_close(r);
	if (f != NULL)
		sg_file_close(f, NULL);
	return rc;
}

/* ------------------------------------------------------------------ orphans */

sg_code
sg_list_orphans(sg_env *env, const char *dir, const sg_version *v, uint64_t live_manifest,
				uint64_t pending_floor, char ***names, size_t *count, sg_err *err)
{
	char	  **all;
	size_t		n,
				k = 0;
	sg_code		rc;

	*names = NULL;
	*count = 0;
	if ((rc = env->ops->list_dir(env, dir, &all, &n, err)) != SG_OK)
		return rc;
	for (size_t i = 0; i < n; i++)
	{
		const char *nm = all[i];
		size_t		len = strlen(nm);
		uint64_t	num;
		bool		orphan = false;

		if (has_suffix(nm, SG_TMP_SUFFIX))
		{
			/* an SSTable being written is not an orphan yet */
			size_t		stem = len - strlen(SG_TMP_SUFFIX);

			if (stem > strlen(SG_SST_SUFFIX) &&
				memcmp(nm + stem - strlen(SG_SST_SUFFIX), SG_SST_SUFFIX, strlen(SG_SST_SUFFIX)) == 0 &&
				parse_number(nm, stem - strlen(SG_SST_SUFFIX), &num) && num >= pending_floor)
				orphan = false;
			else
				orphan = true;
		}
		else if (strncmp(nm, SG_MANIFEST_PREFIX, strlen(SG_MANIFEST_PREFIX)) == 0)
		{
			const char *p = nm + strlen(SG_MANIFEST_PREFIX);

			orphan = parse_number(p, strlen(p), &num) && num != live_manifest;
		}
		else if (has_suffix(nm, SG_SST_SUFFIX))
		{
			orphan = parse_number(nm, len - strlen(SG_SST_SUFFIX), &num) &&
				num < pending_floor && !sg_version_has_file(v, num, NULL);
		}
		if (orphan)
		{
			all[k++] = all[i];
			all[i] = (k - 1 == i) ? all[i] : NULL;
		}
		else
		{
			free(all[i]);
			all[i] = NULL;
		}
	}
	if (k == 0)
	{
		free(all);
		all = NULL;
	}
	*names = all;
	*count = k;
	return SG_OK;
}

/* ------------------------------------------------------------------ vset */

sg_code
sg_vset_snapshot_edit(const sg_vset *vs, const sg_version *v, sg_version_edit *edit,
					  sg_err *err)
{
	sg_code		rc;

	edit->is_snapshot = true;
	edit->has_format_name = true;
	snprintf(edit->format_name, sizeof(edit->format_name), "%s", SG_FORMAT_NAME);
	sg_version_edit_set_next_file(edit, vs->next_file);
	sg_version_edit_set_last_sequence(edit, vs->last_sequence);
	sg_version_edit_set_log_number(edit, vs->log_number);
	sg_version_edit_set_aux_log_number(edit, vs->aux_log_number);
	for (int l = 0; l < SG_NUM_LEVELS; l++)
		for (size_t i = 0; i < v->nfiles[l]; i++)
			if ((rc = sg_version_edit_add_file(edit, l, v->files[l][i], err)) != SG_OK)
				return rc;
	return SG_OK;
}

static sg_code
vset_fail(sg_vset *vs, sg_code rc, sg_err *err)
{
	vs->failed = true;
	if (err != NULL)
	{
		vs->sync_failed = vs->sync_failed || err->sync_failed;
		snprintf(vs->failed_msg, sizeof(vs->failed_msg), "%s", err->msg);
	}
	return rc;
}

/*
 * Write a new MANIFEST holding a snapshot of v, make it durable, switch
 * CURRENT to it, and make it the live one (the old one is closed and
 * unlinked, best effort). On failure the old MANIFEST stays live.
 */
static sg_code
write_new_manifest(sg_vset *vs, const sg_version *v, sg_err *err)
{
	char		name[64];
	char		path[PATH_LEN];
	char		current[80];
	uint64_t	number = vs->next_file++;
	sg_version_edit e;
	sg_buf		rec = SG_BUF_INIT;
	sg_file    *f = NULL;
	sg_log_writer w;
	sg_code		rc;

	manifest_name(name, sizeof(name), number);
	snprintf(path, sizeof(path), "%s/%s", vs->dir, name);
	sg_version_edit_init(&e);
	if ((rc = sg_vset_snapshot_edit(vs, v, &e, err)) != SG_OK)
		goto fail_early;
	sg_version_edit_encode(&e, &rec);
	if (sg_buf_failed(&rec))
	{
		rc = sg_error(err, SG_NO_MEMORY, "out of memory encoding a snapshot edit");
		goto fail_early;
	}
	if ((rc = sg_file_open(vs->env, path, SG_OPEN_CREATE, &f, err)) != SG_OK)
		goto fail_early;
	sg_log_writer_init(&w, f, 0);
	rc = sg_log_writer_add(&w, sg_buf_slice(&rec), NULL, err);
	if (rc == SG_OK)
		rc = sg_file_sync(f, err);
	if (rc == SG_OK)
	{
		snprintf(current, sizeof(current), "%s\n", name);
		rc = sg_env_write_file_atomic(vs->env, vs->dir, SG_CURRENT_NAME, current,
									  strlen(current), err);
	}
	if (rc != SG_OK)
	{
		sg_log_writer_free(&w);
		sg_file_close(f, NULL);
		vs->env->ops->unlink(vs->env, path, NULL);
		goto fail_early;
	}
	if (vs->manifest != NULL)
	{
		char		old[PATH_LEN];

		sg_log_writer_free(&vs->writer);
		sg_file_close(vs->manifest, NULL);
		manifest_name(name, sizeof(name), vs->manifest_number);
		snprintf(old, sizeof(old), "%s/%s", vs->dir, name);
		vs->env->ops->unlink(vs->env, old, NULL);
	}
	vs->manifest = f;
	vs->writer = w;
	vs->manifest_number = number;
	sg_buf_free(&rec);
	sg_version_edit_free(&e);
	return SG_OK;

fail_early:
	sg_buf_free(&rec);
	sg_version_edit_free(&e);
	return rc;
}

/*
 * The engine files a tree directory may hold besides CURRENT: if any is
 * there, a tree lived here and a missing CURRENT is damage, not absence.
 */
static bool
is_tree_file(const char *nm)
{
	return strncmp(nm, SG_MANIFEST_PREFIX, strlen(SG_MANIFEST_PREFIX)) == 0 ||
		has_suffix(nm, SG_SST_SUFFIX) ||
		has_suffix(nm, SG_SST_SUFFIX SG_TMP_SUFFIX);
}

sg_code
sg_current_read(sg_env *env, const char *dir, uint64_t *number, sg_err *err)
{
	char		path[PATH_LEN];
	char	   *data;
	size_t		n;
	sg_code		rc;
	size_t		plen = strlen(SG_MANIFEST_PREFIX);

	snprintf(path, sizeof(path), "%s/%s", dir, SG_CURRENT_NAME);
	rc = sg_env_read_file(env, path, &data, &n, err);
	if (rc == SG_NOT_FOUND)
	{
		char	  **names;
		size_t		count;
		const char *found = NULL;

		rc = env->ops->list_dir(env, dir, &names, &count, err);
		if (rc == SG_NOT_FOUND)
			return sg_error(err, SG_NOT_FOUND, "%s: no tree here", dir);
		if (rc != SG_OK)
			return rc;
		for (size_t i = 0; i < count && found == NULL; i++)
			if (is_tree_file(names[i]))
				found = names[i];
		if (found != NULL)
			rc = sg_error(err, SG_CORRUPTION,
						  "%s: CURRENT is missing but the directory holds %s: the tree's MANIFEST cannot be found",
						  dir, found);
		else
			rc = sg_error(err, SG_NOT_FOUND, "%s: no tree here (CURRENT missing)", dir);
		sg_env_free_names(names, count);
		return rc;
	}
	if (rc != SG_OK)
		return rc;
	if (n < plen + 2 || data[n - 1] != '\n' || memcmp(data, SG_MANIFEST_PREFIX, plen) != 0 ||
		!parse_number(data + plen, n - plen - 1, number))
		rc = sg_error(err, SG_CORRUPTION, "%s: does not name a MANIFEST (%zu bytes)", path, n);
	free(data);
	return rc;
}

sg_code
sg_vset_open(sg_env *env, const char *dir, const sg_vset_options *opts, sg_vset **out,
			 sg_err *err)
{
	sg_vset    *vs = calloc(1, sizeof(*vs));
	char		path[PATH_LEN];
	sg_code		rc;

	*out = NULL;
	if (vs == NULL || (vs->dir = strdup(dir)) == NULL)
	{
		free(vs);
		return sg_error(err, SG_NO_MEMORY, "out of memory opening %s", dir);
	}
	vs->env = env;
	vs->max_manifest_bytes = (opts && opts->max_manifest_bytes) ? opts->max_manifest_bytes
		: SG_MANIFEST_DEFAULT_MAX_BYTES;
	vs->release = opts ? opts->release : NULL;
	vs->release_arg = opts ? opts->release_arg : NULL;

	uint64_t	number;

	rc = sg_current_read(env, dir, &number, err);
	if (rc == SG_NOT_FOUND)
	{
		/* a new tree only where no tree's file is (sg_current_read) */
		if (opts == NULL || !opts->create_if_missing)
			goto fail;
		if ((rc = env->ops->mkdir(env, dir, err)) != SG_OK)
			goto fail;
		if ((vs->current = sg_version_new_empty()) == NULL)
		{
			rc = sg_error(err, SG_NO_MEMORY, "out of memory opening %s", dir);
			goto fail;
		}
		vs->next_file = 1;
		vs->created = true;
	}
	else if (rc == SG_OK)
	{
		sg_manifest_state st;
		char		name[64];

		manifest_name(name, sizeof(name), number);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		if ((rc = sg_manifest_replay(env, path, &st, err)) != SG_OK)
		{
			if (rc == SG_NOT_FOUND)
				rc = sg_error(err, SG_CORRUPTION, "%s: CURRENT names missing %s", dir, name);
			goto fail;
		}
		vs->current = st.version;
		vs->next_file = st.next_file > number ? st.next_file : number + 1;
		vs->last_sequence = st.last_sequence;
		vs->log_number = st.log_number;
		vs->aux_log_number = st.aux_log_number;
		vs->manifest_number = number;
		vs->replay_torn_tail = st.torn_tail;
	}
	else
		goto fail;

	/* not the live one until write_new_manifest succeeds */
	if ((rc = write_new_manifest(vs, vs->current, err)) != SG_OK)
		goto fail;
	*out = vs;
	return SG_OK;

fail:
	sg_vset_close(vs);
	return rc;
}

void
sg_vset_close(sg_vset *vs)
{
	if (vs == NULL)
		return;
	if (vs->manifest != NULL)
	{
		sg_log_writer_free(&vs->writer);
		sg_file_close(vs->manifest, NULL);
	}
	sg_version_unref(vs->current, vs->release, vs->release_arg);
	free(vs->dir);
	free(vs);
}

uint64_t
sg_vset_new_file_number(sg_vset *vs)
{
	return vs->next_file++;
}

sg_code
sg_vset_log_and_apply(sg_vset *vs, sg_version_edit *edit, sg_err *err)
{
	sg_version *nv;
	sg_buf		rec = SG_BUF_INIT;
	sg_code		rc;

	if (vs->failed)
	{
		if (err != NULL)
			err->sync_failed = vs->sync_failed;
		return sg_error(err, SG_IO_ERROR, "%s: MANIFEST unusable after an earlier failure: %s",
						vs->dir, vs->failed_msg);
	}
	if (edit->is_snapshot)
		return sg_error(err, SG_INVALID_ARGUMENT, "log_and_apply takes incremental edits");
	if (edit->has_log_number && edit->log_number < vs->log_number)
		return sg_error(err, SG_INVALID_ARGUMENT, "log number %llu below %llu",
						(unsigned long long) edit->log_number,
						(unsigned long long) vs->log_number);
	if (edit->has_aux_log_number && edit->aux_log_number < vs->aux_log_number)
		return sg_error(err, SG_INVALID_ARGUMENT, "aux log number %llu below %llu",
						(unsigned long long) edit->aux_log_number,
						(unsigned long long) vs->aux_log_number);
	if (edit->has_last_sequence && edit->last_sequence > vs->last_sequence)
		vs->last_sequence = edit->last_sequence;
	for (size_t i = 0; i < edit->nadded; i++)
		if (edit->added[i].meta.number >= vs->next_file)
			return sg_error(err, SG_INVALID_ARGUMENT, "file %llu was not allocated here",
							(unsigned long long) edit->added[i].meta.number);
	sg_version_edit_set_next_file(edit, vs->next_file);
	sg_version_edit_set_last_sequence(edit, vs->last_sequence);
	if (!edit->has_log_number)
		sg_version_edit_set_log_number(edit, vs->log_number);
	if (!edit->has_aux_log_number)
		sg_version_edit_set_aux_log_number(edit, vs->aux_log_number);

	if ((rc = sg_version_apply(vs->current, edit, vs->dir, &nv, err)) != SG_OK)
		return rc;				/* a bad edit: nothing written, vset still usable */

	if (vs->writer.offset >= vs->max_manifest_bytes)
	{
		uint64_t	saved = vs->log_number;
		uint64_t	saved_aux = vs->aux_log_number;

		vs->log_number = edit->log_number;
		vs->aux_log_number = edit->aux_log_number;
		rc = write_new_manifest(vs, nv, err);
		if (rc != SG_OK)
		{
			vs->log_number = saved;
			vs->aux_log_number = saved_aux;
		}
	}
	else
	{
		sg_version_edit_encode(edit, &rec);
		if (sg_buf_failed(&rec))
			rc = sg_error(err, SG_NO_MEMORY, "out of memory encoding a version edit");
		else
		{
			rc = sg_log_writer_add(&vs->writer, sg_buf_slice(&rec), NULL, err);
			if (rc == SG_OK)
				rc = sg_file_sync(vs->manifest, err);
			if (rc != SG_OK)
				vset_fail(vs, rc, err);
		}
		sg_buf_free(&rec);
	}
	if (rc != SG_OK)
	{
		/* outputs of the edit stay on disk as orphans: never release them here */
		sg_version_unref(nv, NULL, NULL);
		if (rc != SG_NO_MEMORY)
			vset_fail(vs, rc, err);
		return rc;
	}
	vs->log_number = edit->log_number;
	vs->aux_log_number = edit->aux_log_number;
	sg_version_unref(vs->current, vs->release, vs->release_arg);
	vs->current = nv;
	return SG_OK;
}
