/*
 * treeopts.h — a tree's own options, kept in the OPTIONS file of its
 * directory: today the codec compaction writes into its bottom level
 * (stratago.set_compression). The file is the durable copy the
 * maintenance worker and recovery read; standbys get it by a WAL record
 * (pgwal.c), dump and restore by the extension's configuration table
 * stratago.compression (sqlfuncs.c).
 */
#ifndef STRATA_TREEOPTS_H
#define STRATA_TREEOPTS_H

#include "pg/stratago.h"
#include "pg/tree.h"

/* Name of a codec choice ("default", "lz4", "zstd"), and back. */
extern const char *strata_tree_codec_name(StrataTreeCodec codec);
extern bool strata_tree_codec_parse(const char *name, StrataTreeCodec *codec);

/*
 * The codec in the OPTIONS file of tree directory dir. A file that cannot
 * be read or parsed is reported with a WARNING and gives the default: it
 * never stops the cluster, and only compression depends on it.
 */
extern StrataTreeCodec strata_tree_options_read(const char *dir);

/*
 * Write (or, for the default, remove) dir's OPTIONS file, durably; a
 * failure is reported at elevel, and false returned if that returns.
 */
extern bool strata_tree_options_write(const char *dir, StrataTreeCodec codec, int elevel);

/* Read tree's OPTIONS file into the tree (startup). */
extern void strata_tree_options_load(StrataTree *tree);

/*
 * Make codec tree's bottom-level codec: written durably (OPTIONS, or its
 * removal for the default) before the tree's field changes; a failure to
 * write is reported at elevel (WARNING in redo, which must not stop
 * recovery for a codec: the tree then has the codec until a restart).
 * Logs nothing: the caller logs afterwards when the tree needs WAL
 * (strata_pgwal_log_options).
 */
extern void strata_tree_options_store(StrataTree *tree, StrataTreeCodec codec, int elevel);

#endif							/* STRATA_TREEOPTS_H */
