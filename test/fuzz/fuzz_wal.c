/*
 * fuzz_wal.c — libFuzzer target for the WAL read path: the input is one
 * WAL segment. A tiny read-only sg_env serves it from memory; the log
 * reader runs over it in both tail modes (last segment / older segment),
 * the segment header is checked, and every record is decoded as a write
 * batch. Nothing may crash, leak, or read out of bounds; every outcome
 * must be a record, a clean end, a torn tail or an sg_code.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/base/env.h"
#include "engine/wal/batch.h"
#include "engine/wal/log_reader.h"
#include "engine/wal/wal_segment.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- a read-only env over one buffer ---- */

typedef struct mem_env
{
	sg_env		base;
	const uint8_t *data;
	size_t		size;
} mem_env;

typedef struct mem_file
{
	sg_file		base;
	mem_env    *env;
} mem_file;

static sg_code
mem_open(sg_env *env, const char *path, sg_open_mode mode, sg_file **out, sg_err *err)
{
	mem_file   *f;

	if (mode != SG_OPEN_READ)
		return sg_error(err, SG_NOT_SUPPORTED, "read-only env");
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return sg_error(err, SG_NO_MEMORY, "out of memory");
	f->base.env = env;
	f->base.path = (char *) path;
	f->env = (mem_env *) env;
	*out = &f->base;
	return SG_OK;
}

static sg_code
mem_pread(sg_file *file, uint64_t off, void *buf, size_t n, size_t *got, sg_err *err)
{
	mem_env    *e = ((mem_file *) file)->env;

	(void) err;
	if (off >= e->size)
	{
		*got = 0;
		return SG_OK;
	}
	if (n > e->size - off)
		n = (size_t) (e->size - off);
	memcpy(buf, e->data + off, n);
	*got = n;
	return SG_OK;
}

static sg_code
mem_size(sg_file *file, uint64_t *size, sg_err *err)
{
	(void) err;
	*size = ((mem_file *) file)->env->size;
	return SG_OK;
}

static sg_code
mem_close(sg_file *file, sg_err *err)
{
	(void) err;
	free(file);
	return SG_OK;
}

static const sg_env_ops mem_ops = {
	.open = mem_open,
	.pread = mem_pread,
	.size = mem_size,
	.close = mem_close,
};

/* ---- the target ---- */

static void
read_all(mem_env *env, bool must_be_clean)
{
	sg_file    *f;
	sg_log_reader *r;
	sg_slice	rec;
	sg_err		err;
	sg_code		rc;
	uint64_t	last_end = 0;
	bool		first = true;

	if (sg_file_open(&env->base, "fuzz.wal", SG_OPEN_READ, &f, &err) != SG_OK)
		abort();
	if (sg_log_reader_open(f, must_be_clean, &r, &err) != SG_OK)
		abort();
	while ((rc = sg_log_reader_next(r, &rec, &err)) == SG_OK)
	{
		sg_batch_iter it;
		sg_batch_entry e;
		uint64_t	end = sg_log_reader_good_end(r);

		/* records come in order and lie inside the file */
		if (end <= last_end)
			abort();
		if (end > env->size || sg_log_reader_record_offset(r) >= end)
			abort();
		last_end = end;
		if (first)
		{
			sg_wal_seg_header h;

			(void) sg_wal_decode_seg_header(rec.data, rec.len, &h);
			first = false;
			continue;
		}
		if (sg_batch_iter_init(&it, rec, "fuzz record", &err) == SG_OK)
		{
			while (sg_batch_iter_next(&it, &e, "fuzz record", &err) == SG_OK)
			{
				/* touch every byte the entry claims */
				volatile uint8_t sink = 0;

				if (e.key.len)
					sink ^= (uint8_t) e.key.data[e.key.len - 1];
				if (e.value.len)
					sink ^= (uint8_t) e.value.data[e.value.len - 1];
				(void) sink;
			}
		}
	}
	if (rc == SG_NOT_FOUND)
	{
		uint64_t	bad = 0;
		const char *why = NULL;

		if (sg_log_reader_torn(r, &bad, &why))
		{
			if (must_be_clean || why == NULL ||
				sg_log_reader_good_end(r) > env->size)
				abort();
		}
		else if (sg_log_reader_good_end(r) != env->size)
			abort();			/* a clean end consumes the whole file */
	}
	else if (rc != SG_CORRUPTION && rc != SG_NO_MEMORY)
		abort();
	sg_log_reader_close(r);
	sg_file_close(f, NULL);

	/* the header check path */
	if (sg_file_open(&env->base, "fuzz.wal", SG_OPEN_READ, &f, &err) != SG_OK)
		abort();
	if (sg_log_reader_open(f, false, &r, &err) == SG_OK)
	{
		sg_wal_seg_header h;

		(void) sg_wal_read_seg_header(r, "fuzz.wal", 0, &h, &err);
		sg_log_reader_close(r);
	}
	sg_file_close(f, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	mem_env		env;

	env.base.ops = &mem_ops;
	env.data = data;
	env.size = size;
	read_all(&env, false);
	read_all(&env, true);
	/* the input as a bare batch, too */
	(void) sg_batch_validate(sg_slice_make(data, size), "fuzz batch", NULL);
	return 0;
}
