/*
 * compact.h — the jobs that write SSTables: flush (memtable -> one L0
 * table) and compaction (input tables -> merged output tables at the next
 * level, with a caller-supplied filter deciding each version's fate).
 *
 * Jobs are plain functions: given inputs, an env and callbacks, they write
 * files and describe the result as a version edit. They create no threads
 * and take no locks; the caller decides who runs them and when, and it
 * installs the edit through the MANIFEST (sg_vset_log_and_apply) BEFORE it
 * deletes any input. On failure a job removes every file it wrote and
 * leaves the edit empty.
 *
 * Thread safety: a job runs in one thread; callbacks are called from it.
 */
#ifndef SG_COMPACT_H
#define SG_COMPACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/base/env.h"
#include "engine/base/ikey.h"
#include "engine/base/iter.h"
#include "engine/base/slice.h"
#include "engine/base/status.h"
#include "engine/sstable/table.h"
#include "engine/version/version.h"
#include "engine/version/version_edit.h"

/* A fresh file number for an output (the caller's counter, under its lock). */
typedef uint64_t (*sg_new_file_fn) (void *arg);

/*
 * Fill out with the opaque statistic stored with the output file (e.g.
 * the oldest unfrozen xid it holds); called just before the file is
 * finished. May be NULL.
 */
typedef sg_code (*sg_user_stats_fn) (void *arg, uint64_t file_number, sg_buf *out,
									 sg_err *err);

/*
 * Shown every entry (internal key and value) as it is written to the
 * output file being built, so that user_stats can summarise exactly that
 * file's contents (outputs are finished right after their last entry).
 * May be NULL.
 */
typedef void (*sg_observe_fn) (void *arg, sg_slice ikey, sg_slice value);

/* An iterator over one input file (the caller's table cache). */
typedef sg_iter *(*sg_open_table_fn) (void *arg, const sg_file_meta *meta);

/* ------------------------------------------------------------------ flush */

/*
 * What a flush must have written, known independently of the iterator it
 * reads (the writer's own count, the memtable's sequence range). A flush
 * is the only step that turns memory into files and lets the memory and
 * the WAL go; if what it wrote differs from this, it fails and leaves
 * nothing behind, so that a bug anywhere below (a stale or wrong source,
 * a lost entry) costs an error, never the rows.
 */
typedef struct sg_flush_expect
{
	uint64_t	entries;
	uint64_t	smallest_seq;	/* meaningful when entries > 0 */
	uint64_t	largest_seq;
} sg_flush_expect;

typedef struct sg_flush_job
{
	sg_env	   *env;
	const char *dir;
	const sg_table_options *table_opts; /* NULL: defaults */
	sg_iter    *source;			/* borrowed: every entry goes out unchanged */
	uint64_t	file_number;
	sg_user_stats_fn user_stats;
	sg_observe_fn observe;		/* called with stats_arg */
	void	   *stats_arg;
	const sg_flush_expect *expect;	/* NULL: nothing to check against */
} sg_flush_job;

typedef struct sg_job_stats
{
	uint64_t	bytes_read;		/* input file bytes (compaction) */
	uint64_t	bytes_written;	/* output file bytes */
	uint64_t	entries_in;
	uint64_t	entries_out;
	uint64_t	dropped;		/* versions dropped */
	uint64_t	rewritten;		/* versions whose value the filter replaced */
	uint64_t	zeroed;			/* versions written with sequence 0 */
	uint64_t	outputs;		/* files written */
} sg_job_stats;

/*
 * Write every entry of job->source into "<dir>/<file_number>.sst" and add
 * it at level 0 to edit. An empty source writes no file and adds nothing.
 * With job->expect, the entries and sequence range of the files written
 * (as their builder counted them) must equal it: otherwise SG_CORRUPTION,
 * the files are removed and edit is left empty.
 */
extern sg_code sg_flush_run(const sg_flush_job *job, sg_version_edit *edit,
							sg_job_stats *stats, sg_err *err);

/* ------------------------------------------------------------ compaction */

/* What becomes of one version. */
typedef enum sg_filter_decision
{
	SG_FILTER_KEEP = 0,
	SG_FILTER_DROP,
	SG_FILTER_REWRITE			/* keep the sequence, store new_value as a PUT */
} sg_filter_decision;

typedef struct sg_filter_version
{
	uint64_t	seq;
	sg_value_type type;
	sg_slice	value;			/* empty for tombstones */
	/*
	 * In: the default decision (see sg_compact_default_decisions). Out: the
	 * filter's. REWRITE needs new_value, which must stay valid until the
	 * filter is called again (the job copies it out before that).
	 */
	sg_filter_decision decision;
	sg_slice	new_value;

	/*
	 * Out: write this version with sequence number 0 (RocksDB's bottommost
	 * trick: a key's only remaining version at the bottom, whose sequence
	 * no reader needs, then has the same key trailer as its neighbours,
	 * which compresses). Honoured only where it cannot change what any
	 * reader sees: ctx->bottommost, the version kept (KEEP or REWRITE), no
	 * older version of the key kept, and no live snapshot below its
	 * sequence; otherwise ignored. 0 sorts below every other sequence, and
	 * the MANIFEST's last_sequence is unaffected.
	 */
	bool		zero_seq;
} sg_filter_version;

typedef struct sg_filter_context
{
	int			output_level;
	bool		bottommost;		/* no deeper level can hold this user key */
	const uint64_t *snapshots;	/* live snapshot sequences, ascending */
	size_t		nsnapshots;
} sg_filter_context;

/*
 * Shown, per user key, all its versions in the compaction, newest first,
 * with the default decisions filled in; may change any decision. A non-OK
 * return aborts the compaction (fill err).
 */
typedef sg_code (*sg_compact_filter_fn) (void *arg, const sg_filter_context *ctx,
										 sg_slice user_key, sg_filter_version *versions,
										 size_t n, sg_err *err);

/*
 * The default policy, applied to versions[0..n) (newest first): a version
 * is dropped when a newer version of the key is visible to every reader
 * that could see it (no live snapshot in [its seq, newer seq)); a
 * tombstone is also dropped when bottommost and no older version of the
 * key survives (it then hides nothing). Everything else is kept.
 */
extern void sg_compact_default_decisions(const sg_filter_context *ctx,
										 sg_filter_version *versions, size_t n);

typedef struct sg_compact_job
{
	sg_env	   *env;
	const char *dir;
	const sg_table_options *table_opts; /* NULL: defaults */
	const sg_compaction_pick *pick; /* inputs at pick->level and level + 1 */
	/*
	 * The version the pick came from, held by the caller for the job's
	 * duration; lets the job decide "bottommost" per user key. May be NULL
	 * (then pick->bottommost decides for every key).
	 */
	const sg_version *version;
	uint64_t	target_file_size;	/* cut outputs at user-key boundaries past this */
	const uint64_t *snapshots;	/* ascending */
	size_t		nsnapshots;
	sg_compact_filter_fn filter;	/* NULL: default decisions */
	void	   *filter_arg;
	sg_open_table_fn open_table;
	void	   *open_arg;
	sg_new_file_fn new_file;
	void	   *new_file_arg;
	sg_user_stats_fn user_stats;
	sg_observe_fn observe;		/* called with stats_arg */
	void	   *stats_arg;
} sg_compact_job;

/*
 * Merge the inputs into new tables at pick->level + 1. edit gets a
 * deletion for every input and an addition for every output.
 */
extern sg_code sg_compact_run(const sg_compact_job *job, sg_version_edit *edit,
							  sg_job_stats *stats, sg_err *err);

/* The edit of a trivial move: the single input goes down one level. */
extern sg_code sg_compact_trivial_move(const sg_compaction_pick *pick,
									   sg_version_edit *edit, sg_err *err);

#endif							/* SG_COMPACT_H */
