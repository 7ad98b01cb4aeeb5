/* engine/shard_index.c: reading a sharded checkpoint's index (see shard_index.h). The format is
 * the one huggingface_hub's save_torch_state_dict and diffusers' save_pretrained write. */
#include "shard_index.h"

#include <string.h>

#include "error.h"
#include "json.h"

#define MAX_INDEX_BYTES (64u * 1024 * 1024)

struct _EaselShardIndex {
  GPtrArray *shards;     /* char* */
  GPtrArray *keys;       /* char* */
  GArray *shard_of;      /* gsize per key */
};

void
easel_shard_index_free (EaselShardIndex *idx)
{
  if (idx == NULL)
    return;
  g_ptr_array_unref (idx->shards);
  g_ptr_array_unref (idx->keys);
  g_array_unref (idx->shard_of);
  g_free (idx);
}

gboolean
easel_shard_name_is_safe (const char *name)
{
  g_auto(GStrv) parts = NULL;

  if (name[0] == '\0' || name[0] == '/' || strchr (name, '\\') || strlen (name) > 1024)
    return FALSE;
  parts = g_strsplit (name, "/", -1);
  for (guint i = 0; parts[i]; i++)
    if (parts[i][0] == '\0' || strcmp (parts[i], ".") == 0 || strcmp (parts[i], "..") == 0)
      return FALSE;
  return TRUE;
}

static gpointer
index_fail (GError **error, const char *file, const char *format, ...) G_GNUC_PRINTF (3, 4);

static gpointer
index_fail (GError **error, const char *file, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: %s", file, msg);
  return NULL;
}

EaselShardIndex *
easel_shard_index_parse (const char *text, gsize len, const char *display_name, GError **error)
{
  const char *file = display_name ? display_name : "(shard index)";
  g_autoptr(GError) local = NULL;
  g_autoptr(EaselJson) root = easel_json_parse (text, len, &local);
  g_autoptr(EaselShardIndex) idx = NULL;
  g_autoptr(GHashTable) shard_ids = NULL, seen = NULL;
  const EaselJson *map;
  gsize n;

  if (root == NULL)
    return index_fail (error, file, "%s", local->message);
  if (easel_json_type (root) != EASEL_JSON_OBJECT)
    return index_fail (error, file, "not a JSON object");
  map = easel_json_get (root, "weight_map");
  if (easel_json_type (map) != EASEL_JSON_OBJECT)
    return index_fail (error, file, "no \"weight_map\" object");
  n = easel_json_length (map);
  if (n == 0)
    return index_fail (error, file, "\"weight_map\" is empty");

  idx = g_new0 (EaselShardIndex, 1);
  idx->shards = g_ptr_array_new_with_free_func (g_free);
  idx->keys = g_ptr_array_new_with_free_func (g_free);
  idx->shard_of = g_array_sized_new (FALSE, FALSE, sizeof (gsize), (guint) n);
  shard_ids = g_hash_table_new (g_str_hash, g_str_equal);   /* name -> id + 1 */
  seen = g_hash_table_new (g_str_hash, g_str_equal);
  for (gsize i = 0; i < n; i++) {
    const char *key = easel_json_key_at (map, i);
    gsize slen;
    const char *shard = easel_json_string (easel_json_at (map, i), &slen);
    gpointer id;

    if (shard == NULL || strlen (shard) != slen)
      return index_fail (error, file, "weight_map entry '%.200s' is not a file name", key);
    if (!easel_shard_name_is_safe (shard))
      return index_fail (error, file, "shard '%.200s' (of '%.200s') leaves the folder or is no plain relative path",
                         shard, key);
    if (!g_str_has_suffix (shard, ".safetensors"))
      return index_fail (error, file, "shard '%.200s' is not a .safetensors file", shard);
    if (!g_hash_table_add (seen, (gpointer) key))
      return index_fail (error, file, "tensor '%.200s' appears twice in weight_map", key);
    if (!g_hash_table_lookup_extended (shard_ids, shard, NULL, &id)) {
      g_ptr_array_add (idx->shards, g_strdup (shard));
      id = GSIZE_TO_POINTER (idx->shards->len);
      g_hash_table_insert (shard_ids, idx->shards->pdata[idx->shards->len - 1], id);
    }
    gsize sid = GPOINTER_TO_SIZE (id) - 1;
    g_ptr_array_add (idx->keys, g_strdup (key));
    g_array_append_val (idx->shard_of, sid);
  }
  return g_steal_pointer (&idx);
}

EaselShardIndex *
easel_shard_index_load (const char *path, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GMappedFile) mf = g_mapped_file_new (path, FALSE, &local);
  gsize len;

  if (mf == NULL) {
    g_set_error (error, EASEL_ERROR, local->code == G_FILE_ERROR_NOENT ? EASEL_ERROR_NOT_FOUND : EASEL_ERROR_IO,
                 "%s: %s", path, local->message);
    return NULL;
  }
  len = g_mapped_file_get_length (mf);
  if (len > MAX_INDEX_BYTES)
    return index_fail (error, path, "%" G_GSIZE_FORMAT " bytes: too large for a shard index", len);
  return easel_shard_index_parse (len ? g_mapped_file_get_contents (mf) : "", len, path, error);
}

gsize
easel_shard_index_n_shards (const EaselShardIndex *idx)
{
  return idx->shards->len;
}

const char *
easel_shard_index_shard (const EaselShardIndex *idx, gsize i)
{
  return i < idx->shards->len ? idx->shards->pdata[i] : NULL;
}

gsize
easel_shard_index_n_entries (const EaselShardIndex *idx)
{
  return idx->keys->len;
}

const char *
easel_shard_index_key (const EaselShardIndex *idx, gsize i)
{
  return i < idx->keys->len ? idx->keys->pdata[i] : NULL;
}

gsize
easel_shard_index_entry_shard (const EaselShardIndex *idx, gsize i)
{
  return g_array_index (idx->shard_of, gsize, i);
}
