/*
 * test_util.c — scratch directories for engine unit tests (testutil.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *
sg_test_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char		tmpl[4096];
	char	   *d;

	snprintf(tmpl, sizeof(tmpl), "%s/sgtest-%s-XXXXXX", base ? base : "/tmp", tag);
	d = mkdtemp(tmpl);
	if (d == NULL)
	{
		perror("mkdtemp");
		exit(2);
	}
	return strdup(d);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void) sb;
	(void) flag;
	(void) ftw;
	return remove(path);
}

void
sg_test_rmtree(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
