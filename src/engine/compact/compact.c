/*
 * compact.c — flush and compaction jobs (see compact.h).
 *
 * Both write through one "output set": a table builder for the file being
 * written plus the numbers of the files already finished, so that a
 * failure can remove every output and leave no partial result behind.
 */
#include "engine/compact/compact.h"

#include <stdlib.h>
#include <string.h>

#include "engine/merge/merge.h"
#include "engine/version/manifest.h"

#define PATH_LEN 4096

typedef struct output_set
{
	sg_env	   *env;
	const char *dir;
	const sg_table_options *table_opts;
	sg_user_stats_fn user_stats;
	sg_observe_fn observe;
	void	   *stats_arg;
	int			level;
	sg_version_edit *edit;
	sg_job_stats *stats;

	sg_table_builder *b;		/* file being written, or NULL */
	uint64_t	number;
	uint64_t	smallest_seq;
	uint64_t	largest_seq;
	uint64_t   *done;			/* finished outputs */
	size_t		ndone;
	size_t		cap_done;
} output_set;

static sg_code
output_open(output_set *o, uint64_t number, sg_err *err)
{
	char		name[64];
	sg_code		rc;

	sg_sst_name(name, sizeof(name), number);
	rc = sg_table_builder_open(o->env, o->dir, name, o->table_opts, &o->b, err);
	if (rc != SG_OK)
	{
		o->b = NULL;
		return rc;
	}
	o->number = number;
	o->smallest_seq = SG_MAX_SEQUENCE;
	o->largest_seq = 0;
	return SG_OK;
}

static sg_code
output_add(output_set *o, sg_slice ikey, sg_slice value, sg_err *err)
{
	uint64_t	seq = sg_ikey_trailer(ikey) >> 8;

	if (seq < o->smallest_seq)
		o->smallest_seq = seq;
	if (seq > o->largest_seq)
		o->largest_seq = seq;
	o->stats->entries_out++;
	if (o->observe != NULL)
		o->observe(o->stats_arg, ikey, value);
	return sg_table_builder_add(o->b, ikey, value, err);
}

/* Finish the open output and add it to the edit. */
static sg_code
output_finish(output_set *o, sg_err *err)
{
	sg_table_info info;
	sg_file_meta m;
	sg_code		rc;

	if (o->ndone == o->cap_done)
	{
		size_t		ncap = o->cap_done ? o->cap_done * 2 : 8;
		uint64_t   *n = realloc(o->done, ncap * sizeof(uint64_t));

		if (n == NULL)
			return sg_error(err, SG_NO_MEMORY, "out of memory finishing a table");
		o->done = n;
		o->cap_done = ncap;
	}
	sg_file_meta_init(&m);
	if (o->user_stats != NULL)
	{
		if ((rc = o->user_stats(o->stats_arg, o->number, &m.user_stats, err)) != SG_OK)
			goto fail;
		if (sg_buf_failed(&m.user_stats))
		{
			rc = sg_error(err, SG_NO_MEMORY, "out of memory for user stats");
			goto fail;
		}
		if ((rc = sg_table_builder_set_user_stats(o->b, sg_buf_slice(&m.user_stats), err)) != SG_OK)
			goto fail;
	}
	sg_table_info_init(&info);
	rc = sg_table_builder_finish(o->b, &info, err);
	o->b = NULL;
	if (rc != SG_OK)
	{
		sg_table_info_free(&info);
		sg_file_meta_free(&m);
		return rc;
	}
	o->done[o->ndone++] = o->number;
	m.number = o->number;
	m.file_size = info.file_size;
	m.num_entries = info.num_entries;
	m.smallest_seq = o->smallest_seq;
	m.largest_seq = o->largest_seq;
	sg_buf_append_slice(&m.smallest, sg_buf_slice(&info.smallest_key));
	sg_buf_append_slice(&m.largest, sg_buf_slice(&info.largest_key));
	sg_table_info_free(&info);
	o->stats->bytes_written += m.file_size;
	o->stats->outputs++;
	if (sg_buf_failed(&m.smallest) || sg_buf_failed(&m.largest))
		rc = sg_error(err, SG_NO_MEMORY, "out of memory describing a table");
	else
		rc = sg_version_edit_add_file(o->edit, o->level, &m, err);
	sg_file_meta_free(&m);
	return rc;

fail:
	sg_file_meta_free(&m);
	return rc;
}

/* Remove every output (after a failure) and forget them. */
static void
output_cleanup(output_set *o, bool failed)
{
	if (o->b != NULL)
		sg_table_builder_abandon(o->b);
	o->b = NULL;
	if (failed)
	{
		for (size_t i = 0; i < o->ndone; i++)
		{
			char		path[PATH_LEN];

			sg_sst_path(path, sizeof(path), o->dir, o->done[i]);
			o->env->ops->unlink(o->env, path, NULL);
		}
	}
	free(o->done);
	o->done = NULL;
	o->ndone = o->cap_done = 0;
}

/* ------------------------------------------------------------------ flush */

/* The files edit adds hold exactly what job->expect says. */
static sg_code
flush_check_written(const sg_flush_job *job, const sg_version_edit *edit, sg_err *err)
{
	const sg_flush_expect *x = job->expect;
	uint64_t	entries = 0;
	uint64_t	smallest = SG_MAX_SEQUENCE;
	uint64_t	largest = 0;

	for (size_t i = 0; i < edit->nadded; i++)
	{
		const sg_file_meta *m = &edit->added[i].meta;

		entries += m->num_entries;
		if (m->smallest_seq < smallest)
			smallest = m->smallest_seq;
		if (m->largest_seq > largest)
			largest = m->largest_seq;
	}
	if (entries == x->entries &&
		(entries == 0 || (smallest == x->smallest_seq && largest == x->largest_seq)))
		return SG_OK;
	return sg_error(err, SG_CORRUPTION,
					"flush into %s: wrote %llu entries (sequences %llu..%llu) where the memtable holds %llu (sequences %llu..%llu); nothing was installed",
					job->dir, (unsigned long long) entries,
					(unsigned long long) (entries ? smallest : 0), (unsigned long long) largest,
					(unsigned long long) x->entries,
					(unsigned long long) (x->entries ? x->smallest_seq : 0),
					(unsigned long long) (x->entries ? x->largest_seq : 0));
}

sg_code
sg_flush_run(const sg_flush_job *job, sg_version_edit *edit, sg_job_stats *stats,
			 sg_err *err)
{
	output_set	o;
	sg_job_stats local;
	sg_code		rc = SG_OK;

	if (stats == NULL)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	memset(&o, 0, sizeof(o));
	o.env = job->env;
	o.dir = job->dir;
	o.table_opts = job->table_opts;
	o.user_stats = job->user_stats;
	o.observe = job->observe;
	o.stats_arg = job->stats_arg;
	o.level = 0;
	o.edit = edit;
	o.stats = stats;

	sg_iter_seek_to_first(job->source);
	for (; sg_iter_valid(job->source); sg_iter_next(job->source))
	{
		if (o.b == NULL && (rc = output_open(&o, job->file_number, err)) != SG_OK)
			goto done;
		stats->entries_in++;
		if ((rc = output_add(&o, sg_iter_key(job->source), sg_iter_value(job->source), err)) != SG_OK)
			goto done;
	}
	if ((rc = sg_iter_status(job->source, err)) != SG_OK)
		goto done;
	if (o.b != NULL && (rc = output_finish(&o, err)) != SG_OK)
		goto done;
	if (job->expect != NULL)
		rc = flush_check_written(job, edit, err);

done:
	if (rc != SG_OK)
		sg_version_edit_free(edit);
	output_cleanup(&o, rc != SG_OK);
	return rc;
}

/* ------------------------------------------------------------ compaction */

void
sg_compact_default_decisions(const sg_filter_context *ctx, sg_filter_version *v, size_t n)
{
	size_t		prev_stripe = 0;

	for (size_t i = 0; i < n; i++)
	{
		/* stripe = number of snapshots that cannot see this version */
		size_t		lo = 0,
					hi = ctx->nsnapshots;

		while (lo < hi)
		{
			size_t		mid = lo + (hi - lo) / 2;

			if (ctx->snapshots[mid] < v[i].seq)
				lo = mid + 1;
			else
				hi = mid;
		}
		v[i].decision = SG_FILTER_KEEP;
		if (i > 0 && lo == prev_stripe)
			v[i].decision = SG_FILTER_DROP;
		prev_stripe = lo;
	}

	/*
	 * At the bottom, a tombstone with no surviving older version hides
	 * nothing: readers that would see it find the key absent without it.
	 */
	if (ctx->bottommost)
	{
		bool		older_kept = false;

		for (size_t i = n; i-- > 0;)
		{
			if (v[i].decision != SG_FILTER_KEEP)
				continue;
			if (v[i].type == SG_TYPE_DELETE && !older_kept)
				v[i].decision = SG_FILTER_DROP;
			else
				older_kept = true;
		}
	}
}

/* The versions of one user key, copied out of the iterator. */
typedef struct key_group
{
	sg_buf		user_key;
	sg_buf		values;			/* all values back to back */
	sg_filter_version *v;
	size_t	   *voff;			/* offset of each value in values */
	size_t		n;
	size_t		cap;
	sg_buf		ikey;			/* scratch for output keys */
} key_group;

static bool
group_push(key_group *g, uint64_t seq, sg_value_type type, sg_slice value)
{
	if (g->n == g->cap)
	{
		size_t		ncap = g->cap ? g->cap * 2 : 16;
		sg_filter_version *nv = realloc(g->v, ncap * sizeof(*nv));

		if (nv == NULL)
			return false;
		g->v = nv;
		size_t	   *no = realloc(g->voff, ncap * sizeof(size_t));

		if (no == NULL)
			return false;
		g->voff = no;
		g->cap = ncap;
	}
	g->voff[g->n] = g->values.len;
	sg_buf_append_slice(&g->values, value);
	memset(&g->v[g->n], 0, sizeof(g->v[g->n]));
	g->v[g->n].seq = seq;
	g->v[g->n].type = type;
	g->v[g->n].value = sg_slice_make(NULL, value.len);
	g->n++;
	return !sg_buf_failed(&g->values);
}

static void
group_free(key_group *g)
{
	sg_buf_free(&g->user_key);
	sg_buf_free(&g->values);
	sg_buf_free(&g->ikey);
	free(g->v);
	free(g->voff);
}

/*
 * May version i of a key (newest first, decisions made) be written with
 * sequence 0 (sg_filter_version.zero_seq)? Only the oldest kept version at
 * the bottom, with no snapshot that could have missed it: then no reader
 * can tell its sequence from 0.
 */
static bool
zero_seq_allowed(const sg_filter_context *ctx, const sg_filter_version *v, size_t n, size_t i)
{
	if (!ctx->bottommost || v[i].decision == SG_FILTER_DROP)
		return false;
	for (size_t j = i + 1; j < n; j++)
		if (v[j].decision != SG_FILTER_DROP)
			return false;
	return ctx->nsnapshots == 0 || v[i].seq <= ctx->snapshots[0];
}

/* Decide and write the group's surviving versions. */
static sg_code
group_emit(const sg_compact_job *job, output_set *o, key_group *g, sg_err *err)
{
	sg_filter_context ctx;
	sg_slice	ukey = sg_buf_slice(&g->user_key);
	sg_code		rc;

	for (size_t i = 0; i < g->n; i++)
		g->v[i].value = g->v[i].value.len == 0 ? sg_slice_make("", 0)
			: sg_slice_make(g->values.data + g->voff[i], g->v[i].value.len);
	ctx.output_level = job->pick->level + 1;
	ctx.snapshots = job->snapshots;
	ctx.nsnapshots = job->nsnapshots;
	ctx.bottommost = job->pick->bottommost ||
		(job->version != NULL &&
		 sg_version_range_empty_below(job->version, ctx.output_level, ukey, ukey));
	sg_compact_default_decisions(&ctx, g->v, g->n);
	if (job->filter != NULL &&
		(rc = job->filter(job->filter_arg, &ctx, ukey, g->v, g->n, err)) != SG_OK)
		return rc;
	for (size_t i = 0; i < g->n; i++)
	{
		sg_filter_version *v = &g->v[i];
		sg_value_type type = v->type;
		sg_slice	value = v->value;
		uint64_t	seq = v->seq;

		if (v->decision == SG_FILTER_DROP)
		{
			o->stats->dropped++;
			continue;
		}
		if (v->decision == SG_FILTER_REWRITE)
		{
			type = SG_TYPE_PUT;
			value = v->new_value;
			o->stats->rewritten++;
		}
		else if (v->decision != SG_FILTER_KEEP)
			return sg_error(err, SG_INVALID_ARGUMENT, "compaction filter returned decision %d",
							(int) v->decision);
		if (v->zero_seq && zero_seq_allowed(&ctx, g->v, g->n, i))
		{
			seq = 0;
			o->stats->zeroed++;
		}
		if (o->b == NULL && (rc = output_open(o, job->new_file(job->new_file_arg), err)) != SG_OK)
			return rc;
		sg_buf_reset(&g->ikey);
		sg_ikey_append(&g->ikey, ukey, seq, type);
		if (sg_buf_failed(&g->ikey))
			return sg_error(err, SG_NO_MEMORY, "out of memory in compaction");
		if ((rc = output_add(o, sg_buf_slice(&g->ikey), value, err)) != SG_OK)
			return rc;
	}
	/* cut only between user keys: no user key spans two files of a level */
	if (o->b != NULL && sg_table_builder_file_size(o->b) >= job->target_file_size)
		return output_finish(o, err);
	return SG_OK;
}

sg_code
sg_compact_run(const sg_compact_job *job, sg_version_edit *edit, sg_job_stats *stats,
			   sg_err *err)
{
	const sg_compaction_pick *p = job->pick;
	size_t		nin = p->ninputs[0] + p->ninputs[1];
	sg_iter   **children = NULL;
	sg_iter    *merged = NULL;
	output_set	o;
	key_group	g;
	sg_job_stats local;
	sg_code		rc = SG_OK;
	size_t		k = 0;

	if (stats == NULL)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	memset(&o, 0, sizeof(o));
	memset(&g, 0, sizeof(g));
	o.env = job->env;
	o.dir = job->dir;
	o.table_opts = job->table_opts;
	o.user_stats = job->user_stats;
	o.observe = job->observe;
	o.stats_arg = job->stats_arg;
	o.level = p->level + 1;
	o.edit = edit;
	o.stats = stats;

	if (p->level < 0 || p->level >= SG_NUM_LEVELS - 1)
		return sg_error(err, SG_INVALID_ARGUMENT, "cannot compact level %d", p->level);
	if ((children = calloc(nin ? nin : 1, sizeof(sg_iter *))) == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory starting a compaction");
	for (int w = 0; w < 2; w++)
		for (size_t i = 0; i < p->ninputs[w]; i++)
		{
			children[k++] = job->open_table(job->open_arg, p->inputs[w][i]);
			stats->bytes_read += p->inputs[w][i]->file_size;
			if ((rc = sg_version_edit_delete_file(edit, p->level + w, p->inputs[w][i]->number,
												  err)) != SG_OK)
			{
				for (size_t j = 0; j < k; j++)
					sg_iter_destroy(children[j]);
				free(children);
				sg_version_edit_free(edit);
				return rc;
			}
		}
	merged = sg_merge_iter_new(children, (int) k);
	free(children);

	for (sg_iter_seek_to_first(merged); sg_iter_valid(merged); sg_iter_next(merged))
	{
		sg_slice	ikey = sg_iter_key(merged);
		sg_parsed_ikey pk;

		stats->entries_in++;
		if (!sg_ikey_parse(ikey, &pk))
		{
			rc = sg_error(err, SG_CORRUPTION, "compaction input: malformed internal key (%zu bytes)",
						  ikey.len);
			goto done;
		}
		if (g.n > 0 && !sg_slice_equal(pk.user_key, sg_buf_slice(&g.user_key)))
		{
			if ((rc = group_emit(job, &o, &g, err)) != SG_OK)
				goto done;
			g.n = 0;
			sg_buf_reset(&g.values);
		}
		if (g.n == 0)
		{
			sg_buf_reset(&g.user_key);
			sg_buf_append_slice(&g.user_key, pk.user_key);
			sg_buf_reserve(&g.user_key, 1);
		}
		if (!group_push(&g, pk.seq, pk.type, sg_iter_value(merged)) || sg_buf_failed(&g.user_key))
		{
			rc = sg_error(err, SG_NO_MEMORY, "out of memory in compaction");
			goto done;
		}
	}
	if ((rc = sg_iter_status(merged, err)) != SG_OK)
		goto done;
	if (g.n > 0 && (rc = group_emit(job, &o, &g, err)) != SG_OK)
		goto done;
	if (o.b != NULL)
		rc = output_finish(&o, err);

done:
	sg_iter_destroy(merged);
	group_free(&g);
	if (rc != SG_OK)
		sg_version_edit_free(edit);
	output_cleanup(&o, rc != SG_OK);
	return rc;
}

sg_code
sg_compact_trivial_move(const sg_compaction_pick *pick, sg_version_edit *edit, sg_err *err)
{
	sg_code		rc;

	if (pick->ninputs[0] != 1 || pick->ninputs[1] != 0 || pick->level >= SG_NUM_LEVELS - 1)
		return sg_error(err, SG_INVALID_ARGUMENT, "not a trivial move");
	rc = sg_version_edit_delete_file(edit, pick->level, pick->inputs[0][0]->number, err);
	if (rc == SG_OK)
		rc = sg_version_edit_add_file(edit, pick->level + 1, pick->inputs[0][0], err);
	return rc;
}
