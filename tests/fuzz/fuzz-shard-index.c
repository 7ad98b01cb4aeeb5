/* tests/fuzz/fuzz-shard-index.c: libFuzzer target for the sharded checkpoint index parser
 * (*.safetensors.index.json): parse, then read every key and shard name it returns and check
 * that each accepted shard name is a safe relative path. */
#include <glib.h>
#include <string.h>

#include "engine/shard_index.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselShardIndex) idx = easel_shard_index_parse ((const char *) data, size, "fuzz.index.json", &error);
  volatile gsize sink = 0;

  if (idx == NULL) {
    g_assert (error != NULL && g_str_has_prefix (error->message, "fuzz.index.json: "));
    return 0;
  }
  for (gsize i = 0; i < easel_shard_index_n_shards (idx); i++) {
    const char *s = easel_shard_index_shard (idx, i);
    g_assert (easel_shard_name_is_safe (s) && g_str_has_suffix (s, ".safetensors"));
    sink += strlen (s);
  }
  for (gsize i = 0; i < easel_shard_index_n_entries (idx); i++) {
    g_assert (easel_shard_index_entry_shard (idx, i) < easel_shard_index_n_shards (idx));
    sink += strlen (easel_shard_index_key (idx, i));
  }
  (void) sink;
  return 0;
}
