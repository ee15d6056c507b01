/*
 * fuzz_manifest.c — arbitrary bytes as a MANIFEST (and as one version
 * edit), read through the in-memory env: replay and open must never crash,
 * leak or read out of bounds; whatever they accept must be a version that
 * the picker and the invariant checks can walk.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/base/env.h"
#include "engine/base/env_mem.h"
#include "engine/version/manifest.h"
#include "engine/version/version.h"
#include "engine/version/version_edit.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sg_env	   *env = sg_env_mem_new();
	sg_err		err;
	sg_file    *f;
	sg_version_edit e;
	sg_manifest_state st;

	if (env == NULL)
		return 0;

	/* the bytes as one edit */
	sg_version_edit_init(&e);
	if (sg_version_edit_decode(&e, sg_slice_make(data, size), "fuzz", 0, &err) == SG_OK)
	{
		sg_buf		b = SG_BUF_INIT;

		sg_version_edit_encode(&e, &b);
		sg_buf_free(&b);
	}
	sg_version_edit_free(&e);

	/* the bytes as a MANIFEST named by CURRENT */
	env->ops->mkdir(env, "/t", &err);
	if (sg_file_open(env, "/t/MANIFEST-000001", SG_OPEN_CREATE, &f, &err) == SG_OK)
	{
		sg_file_append(f, data, size, &err);
		sg_file_close(f, &err);
	}
	sg_env_write_file_atomic(env, "/t", "CURRENT", "MANIFEST-000001\n", 16, &err);

	if (sg_manifest_replay(env, "/t/MANIFEST-000001", &st, &err) == SG_OK)
	{
		sg_picker_options o;
		sg_compaction_pick p;

		sg_picker_options_init(&o);
		o.l0_trigger = 1;
		o.l1_target_bytes = 1;
		if (sg_pick_compaction(st.version, &o, &p, &err) == SG_OK)
			sg_compaction_pick_free(&p);
		for (int l = 0; l < SG_NUM_LEVELS; l++)
			(void) sg_version_level_bytes(st.version, l);
		sg_version_unref(st.version, NULL, NULL);

		/* and the full open: replay, then a new MANIFEST with a snapshot */
		sg_vset_options vo;
		sg_vset    *vs;

		memset(&vo, 0, sizeof(vo));
		if (sg_vset_open(env, "/t", &vo, &vs, &err) == SG_OK)
			sg_vset_close(vs);
	}
	sg_env_mem_destroy(env);
	return 0;
}
