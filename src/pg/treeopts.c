/*
 * treeopts.c — a tree's own options in the OPTIONS file of its directory
 * (treeopts.h).
 *
 * OPTIONS (frozen format: text, one "key=value" per line after the first):
 *
 *   stratago tree options 1
 *   bottom_compression=zstd
 *
 * Keys this build does not know are ignored, so later builds can add
 * some; a tree without the file has every option at its default. The file
 * is replaced atomically (a temporary file, fsync, durable rename), so a
 * crash leaves the old options or the new ones.
 */
#include "postgres.h"

#include <unistd.h>

#include "storage/fd.h"

#include "pg/treeopts.h"

#define STRATA_OPTIONS_FILE		"OPTIONS"
#define STRATA_OPTIONS_HEADER	"stratago tree options 1"

static const char *const codec_names[] = {"default", "lz4", "zstd"};

const char *
strata_tree_codec_name(StrataTreeCodec codec)
{
	if ((int) codec < 0 || (int) codec >= (int) lengthof(codec_names))
		return "unknown";
	return codec_names[codec];
}

bool
strata_tree_codec_parse(const char *name, StrataTreeCodec *codec)
{
	for (int i = 0; i < (int) lengthof(codec_names); i++)
		if (strcmp(name, codec_names[i]) == 0)
		{
			*codec = (StrataTreeCodec) i;
			return true;
		}
	return false;
}

StrataTreeCodec
strata_tree_options_read(const char *dir)
{
	char		path[MAXPGPATH];
	char		line[256];
	FILE	   *f;
	bool		header = false;
	StrataTreeCodec codec = STRATA_TREE_CODEC_DEFAULT;

	snprintf(path, sizeof(path), "%s/%s", dir, STRATA_OPTIONS_FILE);
	f = AllocateFile(path, "r");
	if (f == NULL)
	{
		if (errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", path),
					 errdetail("The strata table's own compression choice is ignored until it is set again.")));
		return STRATA_TREE_CODEC_DEFAULT;
	}
	while (fgets(line, sizeof(line), f) != NULL)
	{
		size_t		len = strlen(line);

		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (!header)
		{
			header = strcmp(line, STRATA_OPTIONS_HEADER) == 0;
			if (!header)
				break;
			continue;
		}
		if (strncmp(line, "bottom_compression=", 19) == 0 &&
			!strata_tree_codec_parse(line + 19, &codec))
		{
			header = false;		/* a value this build cannot read */
			break;
		}
	}
	FreeFile(f);
	if (!header)
	{
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid strata options file \"%s\"", path),
				 errdetail("The strata table's own compression choice is ignored until it is set again.")));
		return STRATA_TREE_CODEC_DEFAULT;
	}
	return codec;
}

void
strata_tree_options_load(StrataTree *tree)
{
	char		dir[MAXPGPATH];

	strata_tree_dir(tree, dir, sizeof(dir));
	tree->bottom_codec = strata_tree_options_read(dir);
}

bool
strata_tree_options_write(const char *dir, StrataTreeCodec codec, int elevel)
{
	char		path[MAXPGPATH];
	char		tmp[MAXPGPATH];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, STRATA_OPTIONS_FILE);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, STRATA_OPTIONS_FILE);
	if (codec == STRATA_TREE_CODEC_DEFAULT)
	{
		if (unlink(path) == 0)
			fsync_fname(dir, true);
		else if (errno != ENOENT)
		{
			ereport(elevel,
					(errcode_for_file_access(),
					 errmsg("could not remove file \"%s\": %m", path)));
			return false;
		}
		return true;
	}
	f = AllocateFile(tmp, PG_BINARY_W);
	if (f == NULL)
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp)));
		return false;
	}
	if (fprintf(f, "%s\nbottom_compression=%s\n", STRATA_OPTIONS_HEADER,
				strata_tree_codec_name(codec)) < 0 ||
		fflush(f) != 0 || pg_fsync(fileno(f)) != 0)
	{
		int			save_errno = errno;

		FreeFile(f);
		errno = save_errno;
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
		return false;
	}
	if (FreeFile(f) != 0)
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", tmp)));
		return false;
	}
	return durable_rename(tmp, path, elevel) == 0;
}

void
strata_tree_options_store(StrataTree *tree, StrataTreeCodec codec, int elevel)
{
	char		dir[MAXPGPATH];

	strata_tree_dir(tree, dir, sizeof(dir));

	/*
	 * The worker orders its file operations in the directory under this
	 * lock (an ERROR releases it with every other LWLock).
	 */
	LWLockAcquire(&tree->manifest_lock, LW_EXCLUSIVE);
	(void) strata_tree_options_write(dir, codec, elevel);
	tree->bottom_codec = codec;
	LWLockRelease(&tree->manifest_lock);
}
