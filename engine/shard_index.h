/* engine/shard_index.h: the `*.safetensors.index.json` file of a sharded diffusers/transformers
 * part: {"metadata": {...}, "weight_map": {"<tensor key>": "<shard file name>", ...}}.
 * Input is untrusted: every shard name must be a plain relative path that stays inside the
 * part's folder (no "..", no absolute path, no backslash, no empty or "." component) and name a
 * .safetensors file; keys are unique. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _EaselShardIndex EaselShardIndex;

/* Parses len bytes of JSON. display_name names the file in errors. transfer full. */
EaselShardIndex *easel_shard_index_parse (const char *text, gsize len, const char *display_name, GError **error);
EaselShardIndex *easel_shard_index_load (const char *path, GError **error);
void             easel_shard_index_free (EaselShardIndex *idx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselShardIndex, easel_shard_index_free)

/* Distinct shard file names, in order of first appearance. */
gsize       easel_shard_index_n_shards (const EaselShardIndex *idx);
const char *easel_shard_index_shard (const EaselShardIndex *idx, gsize i);
/* weight_map entries, in file order: key and the number of its shard. */
gsize       easel_shard_index_n_entries (const EaselShardIndex *idx);
const char *easel_shard_index_key (const EaselShardIndex *idx, gsize i);
gsize       easel_shard_index_entry_shard (const EaselShardIndex *idx, gsize i);

/* TRUE when name is a plain relative path inside its folder (see above). */
gboolean easel_shard_name_is_safe (const char *name);

G_END_DECLS
