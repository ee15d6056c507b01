/*
 * fuzz_sstable.c — libFuzzer target for the SSTable reader: arbitrary bytes
 * are stored as a table file in an in-memory env (env_mem), opened, and if
 * that succeeds read in full (iteration, seeks and gets). Because every
 * block is checksummed, random bytes rarely get past the CRCs; so the same
 * bytes are also fed straight to the parsers behind them (a block iterator
 * and the properties decoder). Whatever the bytes, the code must return an
 * error code, never crash, leak or hang.
 *
 * Seeds in test/fuzz/corpus/sstable/ are small valid tables written by
 * `SG_SSTABLE_WRITE_CORPUS=<dir> build/test/test_sstable`.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/base/env.h"
#include "engine/base/env_mem.h"
#include "engine/base/ikey.h"
#include "engine/sstable/block.h"
#include "engine/sstable/props.h"
#include "engine/sstable/table.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Keys met while iterating, replayed as gets (bounded, copied). */
#define MAX_PROBES 8

static void
exercise(sg_table_reader *r)
{
	sg_iter    *it = sg_table_reader_iter(r);
	sg_buf		probes[MAX_PROBES];
	int			nprobes = 0;
	sg_buf		val = SG_BUF_INIT;
	sg_value_type type;
	bool		maybe;
	size_t		n = 0;

	for (sg_iter_seek_to_first(it); sg_iter_valid(it); sg_iter_next(it), n++)
	{
		sg_slice	k = sg_iter_key(it);
		sg_slice	v = sg_iter_value(it);

		/* touch every byte handed out, so ASan checks the bounds */
		volatile uint8_t sink = 0;

		for (size_t i = 0; i < k.len; i++)
			sink ^= (uint8_t) k.data[i];
		for (size_t i = 0; i < v.len; i++)
			sink ^= (uint8_t) v.data[i];
		(void) sink;
		if (nprobes < MAX_PROBES && (n % 3) == 0)
		{
			sg_buf_init(&probes[nprobes]);
			sg_buf_append_slice(&probes[nprobes], k);
			nprobes++;
		}
	}
	(void) sg_iter_status(it, NULL);

	for (int i = 0; i < nprobes; i++)
	{
		sg_slice	k = sg_buf_slice(&probes[i]);

		sg_iter_seek(it, k);
		if (sg_iter_valid(it))
			sg_iter_next(it);
		if (k.len >= SG_IKEY_TRAILER_LEN)
		{
			sg_slice	uk = sg_ikey_user_key(k);

			(void) sg_table_reader_get(r, uk, SG_MAX_SEQUENCE, &val, &type, NULL, NULL);
			(void) sg_table_reader_get(r, uk, sg_ikey_trailer(k) >> 8, &val, &type, NULL, NULL);
			(void) sg_table_reader_may_contain(r, uk, &maybe, NULL);
		}
		sg_buf_free(&probes[i]);
	}
	sg_iter_seek(it, sg_slice_from_cstr("m"));
	(void) sg_table_reader_get(r, sg_slice_from_cstr("absent"), 5, &val, &type, NULL, NULL);
	sg_iter_destroy(it);
	sg_buf_free(&val);
}

/* The raw bytes as one block (no CRC in the way), and as properties. */
static void
parse_directly(const uint8_t *data, size_t size)
{
	sg_iter    *it = sg_block_iter_new((const char *) data, size, NULL, "fuzz", 0);
	sg_table_props props;
	size_t		n = 0;

	for (sg_iter_seek_to_first(it); sg_iter_valid(it) && n < 100000; sg_iter_next(it), n++)
		(void) sg_iter_value(it);
	sg_iter_seek(it, sg_slice_from_cstr("k\0\0\0\0\0\0\0\1"));
	if (sg_iter_valid(it))
		sg_iter_next(it);
	sg_iter_seek(it, sg_slice_from_cstr("k"));
	(void) sg_iter_status(it, NULL);
	sg_iter_destroy(it);
	(void) sg_table_props_decode(sg_slice_make(data, size), "fuzz", 0, &props, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sg_env	   *env = sg_env_mem_new();
	sg_file    *f;
	sg_table_reader *r;

	parse_directly(data, size);
	if (env == NULL)
		return 0;
	if (sg_file_open(env, "/t.sst", SG_OPEN_CREATE, &f, NULL) == SG_OK)
	{
		sg_code		rc = sg_file_append(f, data, size, NULL);

		sg_file_close(f, NULL);
		if (rc == SG_OK && sg_table_reader_open(env, "/t.sst", &r, NULL) == SG_OK)
		{
			(void) sg_table_reader_props(r);
			exercise(r);
			sg_table_reader_close(r);
		}
	}
	sg_env_mem_destroy(env);
	return 0;
}
