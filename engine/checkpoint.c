/* engine/checkpoint.c: opening a checkpoint file or diffusers folder (see checkpoint.h).
 *
 * Folder layout as diffusers' DiffusionPipeline.save_pretrained writes it: model_index.json maps
 * each component to [library, class] (null pairs and other values are not components); each
 * component is a subfolder with config.json (networks), scheduler_config.json or tokenizer files.
 * Shard names from an index are checked lexically to stay inside the part's folder; symlinks are
 * followed, since the Hugging Face cache links every file to ../../blobs/. */
#include "checkpoint.h"

#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "json.h"
#include "pickle.h"
#include "shard_index.h"

#define MAX_CONFIG_BYTES (16u * 1024 * 1024)

struct _EaselCheckpoint {
  char *path;
  EaselCheckpointFormat format;
  GPtrArray *files;            /* EaselSafetensors*, owned */
  GArray *tensors;             /* EaselCheckpointTensor, sorted by name */
  GHashTable *by_name;         /* name -> EaselCheckpointTensor* (into tensors) */
  GArray *parts;               /* EaselCheckpointPart */
  GPtrArray *meta;             /* key, value, key, value ... (into strings) */
  GStringChunk *strings;       /* names, part fields, metadata */
  EaselDetection detection;
  guint64 file_bytes, tensor_bytes;
  gsize dtype_counts[EASEL_DTYPE_COUNT];
  GHashTable *configs;         /* part -> EaselJson* or NULL, read on first use */
  /* .ckpt / .pt: the torch file, the EaselStTensor of each tensor and the contiguous copies of
   * strided views (the other tensors point into the torch file's mapping) */
  EaselTorchFile *torch;
  GPtrArray *torch_tensors;    /* EaselStTensor*, owned */
  GPtrArray *torch_copies;     /* guint8*, owned */
};

const char *
easel_checkpoint_format_name (EaselCheckpointFormat format)
{
  return format == EASEL_CHECKPOINT_DIFFUSERS ? "diffusers folder" : "single file";
}

void
easel_checkpoint_free (EaselCheckpoint *ck)
{
  if (ck == NULL)
    return;
  if (ck->configs)
    g_hash_table_unref (ck->configs);
  g_clear_pointer (&ck->torch_tensors, g_ptr_array_unref);
  g_clear_pointer (&ck->torch_copies, g_ptr_array_unref);
  g_clear_pointer (&ck->torch, easel_torch_free);
  if (ck->by_name)
    g_hash_table_unref (ck->by_name);
  g_array_unref (ck->tensors);
  g_array_unref (ck->parts);
  g_ptr_array_unref (ck->meta);
  g_ptr_array_unref (ck->files);
  g_string_chunk_free (ck->strings);
  g_free (ck->path);
  g_free (ck);
}

static const char *
intern (EaselCheckpoint *ck, const char *s)
{
  return s ? g_string_chunk_insert_const (ck->strings, s) : NULL;
}

/* Makes sure an error message starts with the file it is about. */
static void
name_file (GError **error, const char *path)
{
  if (error && *error && !g_str_has_prefix ((*error)->message, path))
    g_prefix_error (error, "%s: ", path);
}

static gboolean G_GNUC_PRINTF (3, 4)
ck_fail (GError **error, const char *file, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: %s", file, msg);
  return FALSE;
}

static EaselSafetensors *
open_file (EaselCheckpoint *ck, const char *path, GError **error)
{
  EaselSafetensors *st = easel_safetensors_open (path, error);
  if (st == NULL) {
    name_file (error, path);
    return NULL;
  }
  g_ptr_array_add (ck->files, st);
  ck->file_bytes += easel_safetensors_file_size (st);
  return st;
}

/* Adds every tensor of st under component ("" for none). */
static void
add_tensors (EaselCheckpoint *ck, const EaselSafetensors *st, const char *component)
{
  const char *file = intern (ck, easel_safetensors_path (st));
  component = intern (ck, component);
  for (gsize i = 0; i < easel_safetensors_n_tensors (st); i++) {
    const EaselStTensor *t = easel_safetensors_tensor (st, i);
    EaselCheckpointTensor ct = { NULL, component, t->name, file, t };
    if (component[0]) {
      g_autofree char *full = g_strconcat (component, "/", t->name, NULL);
      ct.name = g_string_chunk_insert (ck->strings, full);
    } else {
      ct.name = t->name;
    }
    g_array_append_val (ck->tensors, ct);
  }
}

/* --- diffusers folders ---------------------------------------------------------------------- */

/* A sharded part: the index, each shard opened once, each weight_map entry found in its shard. */
static gboolean
open_sharded (EaselCheckpoint *ck, EaselCheckpointPart *part, const char *dir, const char *index_path,
              GError **error)
{
  g_autoptr(EaselShardIndex) idx = easel_shard_index_load (index_path, error);
  g_autofree EaselSafetensors **sts = NULL;
  gsize n_shards;

  if (idx == NULL)
    return FALSE;
  n_shards = easel_shard_index_n_shards (idx);
  sts = g_new0 (EaselSafetensors *, n_shards);
  for (gsize s = 0; s < n_shards; s++) {
    const char *shard = easel_shard_index_shard (idx, s);
    g_autofree char *spath = g_build_filename (dir, shard, NULL);
    if (!g_file_test (spath, G_FILE_TEST_IS_REGULAR))
      return ck_fail (error, index_path, "shard '%s' is missing", shard);
    sts[s] = open_file (ck, spath, error);
    if (sts[s] == NULL)
      return FALSE;
  }
  for (gsize i = 0; i < easel_shard_index_n_entries (idx); i++) {
    gsize s = easel_shard_index_entry_shard (idx, i);
    const char *key = easel_shard_index_key (idx, i);
    if (easel_safetensors_find (sts[s], key) == NULL)
      return ck_fail (error, index_path, "tensor '%s' is not in its shard '%s'", key, easel_shard_index_shard (idx, s));
  }
  for (gsize s = 0; s < n_shards; s++) {
    add_tensors (ck, sts[s], part->name);
    part->n_tensors += easel_safetensors_n_tensors (sts[s]);
  }
  part->n_files = n_shards;
  return TRUE;
}

static gboolean
has_bin_weights (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (name, ".bin") || g_str_has_suffix (name, ".ckpt") || g_str_has_suffix (name, ".pt"))
      return TRUE;
  return FALSE;
}

static gboolean
open_part (EaselCheckpoint *ck, EaselCheckpointPart *part, const char *dir, GError **error)
{
  static const struct {
    const char *file;
    gboolean index;
  } candidates[] = {
    { "diffusion_pytorch_model.safetensors", FALSE },
    { "model.safetensors", FALSE },
    { "diffusion_pytorch_model.safetensors.index.json", TRUE },
    { "model.safetensors.index.json", TRUE },
    { "diffusion_pytorch_model.fp16.safetensors", FALSE },
    { "model.fp16.safetensors", FALSE },
    { "diffusion_pytorch_model.safetensors.index.fp16.json", TRUE },
    { "model.safetensors.index.fp16.json", TRUE },
    { "diffusion_pytorch_model.fp16.safetensors.index.json", TRUE },
    { "model.fp16.safetensors.index.json", TRUE },
  };
  g_autofree char *config = g_build_filename (dir, "config.json", NULL);

  if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
    part->note = "no folder";
    return TRUE;
  }
  part->has_config = g_file_test (config, G_FILE_TEST_IS_REGULAR);
  for (guint c = 0; c < G_N_ELEMENTS (candidates); c++) {
    g_autofree char *wpath = g_build_filename (dir, candidates[c].file, NULL);
    if (!g_file_test (wpath, G_FILE_TEST_EXISTS))
      continue;
    part->weights = intern (ck, wpath);
    part->has_weights = TRUE;
    if (candidates[c].index)
      return open_sharded (ck, part, dir, wpath, error);
    EaselSafetensors *st = open_file (ck, wpath, error);
    if (st == NULL)
      return FALSE;
    add_tensors (ck, st, part->name);
    part->n_files = 1;
    part->n_tensors = easel_safetensors_n_tensors (st);
    return TRUE;
  }
  if (has_bin_weights (dir))
    part->note = "PyTorch pickle weights only (not read; convert to .safetensors)";
  else if (part->has_config)
    part->note = "config only, no weights";
  return TRUE;
}

static gboolean
is_component_name (const char *name)
{
  return name[0] != '\0' && name[0] != '.' && strchr (name, '/') == NULL && strchr (name, '\\') == NULL;
}

static void
add_metadata (EaselCheckpoint *ck, const char *key, const char *value)
{
  g_ptr_array_add (ck->meta, (gpointer) intern (ck, key));
  g_ptr_array_add (ck->meta, (gpointer) intern (ck, value));
}

/* model_index.json: components and metadata. */
static gboolean
read_model_index (EaselCheckpoint *ck, const char *index_path, GError **error)
{
  g_autoptr(EaselJson) root = easel_json_parse_file (index_path, MAX_CONFIG_BYTES, error);

  if (root == NULL) {
    name_file (error, index_path);
    return FALSE;
  }
  if (easel_json_type (root) != EASEL_JSON_OBJECT)
    return ck_fail (error, index_path, "not a JSON object");
  for (gsize i = 0; i < easel_json_length (root); i++) {
    const char *key = easel_json_key_at (root, i);
    const EaselJson *v = easel_json_at (root, i);
    const char *lib = easel_json_string (easel_json_at (v, 0), NULL), *cls = easel_json_string (easel_json_at (v, 1), NULL);
    gboolean b;
    double d;

    if (easel_json_type (v) == EASEL_JSON_STRING) {
      add_metadata (ck, key, easel_json_string (v, NULL));
    } else if (easel_json_bool (v, &b)) {
      add_metadata (ck, key, b ? "true" : "false");
    } else if (easel_json_double (v, &d)) {
      char buf[G_ASCII_DTOSTR_BUF_SIZE];
      add_metadata (ck, key, g_ascii_dtostr (buf, sizeof buf, d));
    } else if (easel_json_type (v) == EASEL_JSON_ARRAY && easel_json_length (v) == 2 && lib && cls) {
      EaselCheckpointPart part = { 0 };
      if (!is_component_name (key))
        return ck_fail (error, index_path, "component '%.200s' is not a folder name", key);
      part.name = intern (ck, key);
      part.class_name = intern (ck, cls);
      g_array_append_val (ck->parts, part);
    }
  }
  return TRUE;
}

/* scheduler_config.json's prediction_type, from the first part that has one. */
static gboolean
read_scheduler_prediction (EaselCheckpoint *ck, GError **error)
{
  for (guint i = 0; i < ck->parts->len; i++) {
    const EaselCheckpointPart *part = &g_array_index (ck->parts, EaselCheckpointPart, i);
    g_autofree char *path = g_build_filename (ck->path, part->name, "scheduler_config.json", NULL);
    g_autoptr(EaselJson) cfg = NULL;
    const char *pred;

    if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
      continue;
    cfg = easel_json_parse_file (path, MAX_CONFIG_BYTES, error);
    if (cfg == NULL) {
      name_file (error, path);
      return FALSE;
    }
    pred = easel_json_string (easel_json_get (cfg, "prediction_type"), NULL);
    easel_detection_set_prediction (&ck->detection, easel_prediction_from_string (pred),
                                    EASEL_PREDICTION_FROM_SCHEDULER);
    return TRUE;
  }
  return TRUE;
}

static gboolean
open_folder (EaselCheckpoint *ck, GError **error)
{
  g_autofree char *index_path = g_build_filename (ck->path, "model_index.json", NULL);
  g_autofree char *config_path = g_build_filename (ck->path, "config.json", NULL);
  gboolean single_part = FALSE;

  ck->format = EASEL_CHECKPOINT_DIFFUSERS;
  if (g_file_test (index_path, G_FILE_TEST_EXISTS)) {
    if (!read_model_index (ck, index_path, error))
      return FALSE;
  } else if (g_file_test (config_path, G_FILE_TEST_EXISTS)) {
    /* one part's folder (e.g. .../unet): its name is the component */
    g_autofree char *base = g_path_get_basename (ck->path);
    EaselCheckpointPart part = { 0 };
    part.name = intern (ck, is_component_name (base) ? base : "model");
    g_array_append_val (ck->parts, part);
    single_part = TRUE;
  } else {
    return ck_fail (error, ck->path, "a folder without model_index.json or config.json: not a diffusers model");
  }
  for (guint i = 0; i < ck->parts->len; i++) {
    EaselCheckpointPart *part = &g_array_index (ck->parts, EaselCheckpointPart, i);
    g_autofree char *dir = single_part ? g_strdup (ck->path) : g_build_filename (ck->path, part->name, NULL);
    if (!open_part (ck, part, dir, error))
      return FALSE;
  }
  return TRUE;
}

/* --- opening -------------------------------------------------------------------------------- */

/* --- torch zip files (.ckpt, .pt) --------------------------------------------------------------- */

/* Whether path is a torch file rather than a .safetensors: its name (.ckpt, .pt, .pth, .bin), or a
 * zip's local header "PK\3\4" as first bytes (a safetensors header would be 67 MB long). A bare
 * pickle under another name is read as safetensors and refused as such. */
static gboolean
is_torch_file (const char *path)
{
  static const char *const exts[] = { ".ckpt", ".pt", ".pth", ".bin" };
  g_autofree char *lower = g_ascii_strdown (path, -1);
  for (guint i = 0; i < G_N_ELEMENTS (exts); i++)
    if (g_str_has_suffix (lower, exts[i]))
      return TRUE;
  guint8 head[4] = { 0 };
  FILE *fp = fopen (path, "rb");
  if (fp == NULL)
    return FALSE;
  gsize n = fread (head, 1, sizeof head, fp);
  fclose (fp);
  return n == 4 && memcmp (head, "PK\x03\x04", 4) == 0;
}

typedef struct {
  EaselCheckpoint *ck;
  const char *strip;   /* "state_dict." or "" */
  GError *error;
} TorchAdd;

/* Copies the view t (any strides, in elements) into dst as a contiguous row-major array. */
static void
torch_copy_contiguous (const EaselPyTensor *t, guint8 *dst, gsize item, gint64 numel)
{
  gint64 idx[EASEL_MAX_DIMS] = { 0 };
  for (gint64 i = 0; i < numel; i++) {
    gint64 e = t->offset;
    for (int d = 0; d < t->n_dims; d++)
      e += idx[d] * t->stride[d];
    memcpy (dst + i * item, t->data + e * item, item);
    for (int d = t->n_dims - 1; d >= 0; d--) {
      if (++idx[d] < t->shape[d])
        break;
      idx[d] = 0;
    }
  }
}

/* One tensor of the state dict: a view into the mapping when it is contiguous, else a copy.
 * pickle.c has already checked every view against its storage. */
static void
torch_add_tensor (const char *path, const EaselPyTensor *t, gpointer user_data)
{
  TorchAdd *a = user_data;
  EaselCheckpoint *ck = a->ck;
  if (a->error || !g_str_has_prefix (path, a->strip) || path[strlen (a->strip)] == '\0')
    return;
  const gsize item = easel_dtype_size (t->dtype);
  const gint64 numel = easel_py_tensor_numel (t);
  gboolean contiguous = TRUE;
  gint64 want = 1;
  for (int d = t->n_dims - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != want)
      contiguous = FALSE;
    want *= t->shape[d];
  }
  EaselStTensor *st = g_new0 (EaselStTensor, 1);
  g_ptr_array_add (ck->torch_tensors, st);
  st->name = g_string_chunk_insert (ck->strings, path + strlen (a->strip));
  st->dtype = t->dtype;
  st->n_dims = t->n_dims;
  memcpy (st->shape, t->shape, sizeof st->shape);
  st->n_elements = (guint64) numel;
  st->nbytes = (gsize) numel * item;
  if (numel == 0) {
    st->data = t->data;
  } else if (contiguous) {
    st->data = t->data + t->offset * item;
  } else {
    guint8 *copy = g_try_malloc (st->nbytes);
    if (copy == NULL) {
      g_set_error (&a->error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: tensor '%s': no memory for %" G_GSIZE_FORMAT
                   " bytes", ck->path, st->name, st->nbytes);
      return;
    }
    g_ptr_array_add (ck->torch_copies, copy);
    torch_copy_contiguous (t, copy, item, numel);
    st->data = copy;
  }
  EaselCheckpointTensor ct = { st->name, intern (ck, ""), st->name, intern (ck, ck->path), st };
  g_array_append_val (ck->tensors, ct);
}

/* A torch zip file: the tensors of its "state_dict" dict, or of the top-level object when it has
 * none (A1111: pl_sd.get ("state_dict", pl_sd)). */
static gboolean
open_torch (EaselCheckpoint *ck, GError **error)
{
  if ((ck->torch = easel_torch_open (ck->path, error)) == NULL) {
    name_file (error, ck->path);
    return FALSE;
  }
  ck->torch_tensors = g_ptr_array_new_with_free_func (g_free);
  ck->torch_copies = g_ptr_array_new_with_free_func (g_free);
  const EaselPyObject *root = easel_torch_root (ck->torch);
  const EaselPyObject *sd = easel_py_dict_get (root, "state_dict");
  TorchAdd a = { ck, "", NULL };
  if (sd && sd->type == EASEL_PY_DICT)
    a.strip = "state_dict.";
  easel_py_foreach_tensor (root, torch_add_tensor, &a);
  if (a.error) {
    g_propagate_error (error, a.error);
    return FALSE;
  }
  GStatBuf sb;
  if (g_stat (ck->path, &sb) == 0)
    ck->file_bytes += (guint64) sb.st_size;
  return TRUE;
}

static int
cmp_tensor_name (const void *a, const void *b)
{
  return strcmp (((const EaselCheckpointTensor *) a)->name, ((const EaselCheckpointTensor *) b)->name);
}

static gboolean
index_tensors (EaselCheckpoint *ck, GError **error)
{
  g_array_sort (ck->tensors, cmp_tensor_name);
  ck->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint i = 0; i < ck->tensors->len; i++) {
    EaselCheckpointTensor *t = &g_array_index (ck->tensors, EaselCheckpointTensor, i);
    EaselCheckpointTensor *prev = g_hash_table_lookup (ck->by_name, t->name);
    if (prev)
      return ck_fail (error, t->file, "tensor '%s' is also in %s", t->key, prev->file);
    g_hash_table_insert (ck->by_name, (gpointer) t->name, t);
    ck->tensor_bytes += t->st->nbytes;
    ck->dtype_counts[t->st->dtype]++;
  }
  return TRUE;
}

static void
detect (EaselCheckpoint *ck)
{
  g_autofree EaselKeyShape *keys = g_new0 (EaselKeyShape, ck->tensors->len + 1);
  for (guint i = 0; i < ck->tensors->len; i++) {
    const EaselCheckpointTensor *t = &g_array_index (ck->tensors, EaselCheckpointTensor, i);
    keys[i].name = t->name;
    keys[i].n_dims = t->st->n_dims;
    memcpy (keys[i].shape, t->st->shape, sizeof keys[i].shape);
  }
  easel_detect_family (keys, ck->tensors->len, &ck->detection);
}

EaselCheckpoint *
easel_checkpoint_open (const char *path, GError **error)
{
  g_autoptr(EaselCheckpoint) ck = g_new0 (EaselCheckpoint, 1);

  g_return_val_if_fail (path != NULL, NULL);
  ck->path = g_strdup (path);
  ck->files = g_ptr_array_new_with_free_func ((GDestroyNotify) easel_safetensors_free);
  ck->tensors = g_array_new (FALSE, TRUE, sizeof (EaselCheckpointTensor));
  ck->parts = g_array_new (FALSE, TRUE, sizeof (EaselCheckpointPart));
  ck->meta = g_ptr_array_new ();
  ck->strings = g_string_chunk_new (16384);

  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    if (!open_folder (ck, error))
      return NULL;
  } else {
    EaselSafetensors *st;
    if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no such file or folder", path);
      return NULL;
    }
    ck->format = EASEL_CHECKPOINT_SINGLE_FILE;
    if (is_torch_file (path)) {
      if (!open_torch (ck, error))
        return NULL;
    } else {
      st = open_file (ck, path, error);
      if (st == NULL)
        return NULL;
      add_tensors (ck, st, "");
      for (gsize i = 0; i < easel_safetensors_n_metadata (st); i++)
        add_metadata (ck, easel_safetensors_metadata_key (st, i), easel_safetensors_metadata_value (st, i));
    }
  }
  if (!index_tensors (ck, error))
    return NULL;
  detect (ck);
  if (ck->format == EASEL_CHECKPOINT_DIFFUSERS) {
    if (!read_scheduler_prediction (ck, error))
      return NULL;
  } else {
    easel_detection_set_prediction (&ck->detection,
                                    easel_prediction_from_string (easel_checkpoint_metadata (ck, "modelspec.prediction_type")),
                                    EASEL_PREDICTION_FROM_METADATA);
  }
  return g_steal_pointer (&ck);
}

/* --- accessors ------------------------------------------------------------------------------ */

const char *
easel_checkpoint_path (const EaselCheckpoint *ck)
{
  return ck->path;
}

EaselCheckpointFormat
easel_checkpoint_format (const EaselCheckpoint *ck)
{
  return ck->format;
}

gsize
easel_checkpoint_n_tensors (const EaselCheckpoint *ck)
{
  return ck->tensors->len;
}

const EaselCheckpointTensor *
easel_checkpoint_tensor (const EaselCheckpoint *ck, gsize i)
{
  return i < ck->tensors->len ? &g_array_index (ck->tensors, EaselCheckpointTensor, i) : NULL;
}

const EaselCheckpointTensor *
easel_checkpoint_find (const EaselCheckpoint *ck, const char *name)
{
  return g_hash_table_lookup (ck->by_name, name);
}

gsize
easel_checkpoint_n_metadata (const EaselCheckpoint *ck)
{
  return ck->meta->len / 2;
}

const char *
easel_checkpoint_metadata_key (const EaselCheckpoint *ck, gsize i)
{
  return i < ck->meta->len / 2 ? ck->meta->pdata[2 * i] : NULL;
}

const char *
easel_checkpoint_metadata_value (const EaselCheckpoint *ck, gsize i)
{
  return i < ck->meta->len / 2 ? ck->meta->pdata[2 * i + 1] : NULL;
}

const char *
easel_checkpoint_metadata (const EaselCheckpoint *ck, const char *key)
{
  for (guint i = 0; i + 1 < ck->meta->len; i += 2)
    if (strcmp (ck->meta->pdata[i], key) == 0)
      return ck->meta->pdata[i + 1];
  return NULL;
}

guint64
easel_checkpoint_file_bytes (const EaselCheckpoint *ck)
{
  return ck->file_bytes;
}

guint64
easel_checkpoint_tensor_bytes (const EaselCheckpoint *ck)
{
  return ck->tensor_bytes;
}

gsize
easel_checkpoint_n_files (const EaselCheckpoint *ck)
{
  return ck->files->len + (ck->torch ? 1 : 0);
}

gsize
easel_checkpoint_dtype_count (const EaselCheckpoint *ck, EaselDType dtype)
{
  return (guint) dtype < EASEL_DTYPE_COUNT ? ck->dtype_counts[dtype] : 0;
}

gsize
easel_checkpoint_n_parts (const EaselCheckpoint *ck)
{
  return ck->parts->len;
}

const EaselCheckpointPart *
easel_checkpoint_part (const EaselCheckpoint *ck, gsize i)
{
  return i < ck->parts->len ? &g_array_index (ck->parts, EaselCheckpointPart, i) : NULL;
}

const EaselDetection *
easel_checkpoint_detection (const EaselCheckpoint *ck)
{
  return &ck->detection;
}

char *
easel_checkpoint_find_prefix (const EaselCheckpoint *ck, const char *suffix)
{
  gsize sl = strlen (suffix);
  for (gsize i = 0; i < easel_checkpoint_n_tensors (ck); i++) {
    const char *name = easel_checkpoint_tensor (ck, i)->name;
    gsize nl = strlen (name);
    if (nl >= sl && strcmp (name + nl - sl, suffix) == 0
        && (nl == sl || name[nl - sl - 1] == '.' || name[nl - sl - 1] == '/'))
      return g_strndup (name, nl - sl);
  }
  return NULL;
}

const EaselJson *
easel_checkpoint_part_config (const EaselCheckpoint *ck, const char *prefix)
{
  g_autofree char *part = g_strndup (prefix, strcspn (prefix, "/"));
  return easel_checkpoint_config (ck, part);
}

const EaselJson *
easel_checkpoint_config (const EaselCheckpoint *cck, const char *part)
{
  EaselCheckpoint *ck = (EaselCheckpoint *) cck;   /* the cache is not part of its value */
  gpointer value;
  EaselJson *config = NULL;

  if (ck->configs == NULL)
    ck->configs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) easel_json_free);
  if (g_hash_table_lookup_extended (ck->configs, part, NULL, &value))
    return value;
  if (ck->format == EASEL_CHECKPOINT_DIFFUSERS) {
    /* <folder>/<part>/config.json, else the folder's own (a single-part folder: a ControlNet, an image
     * encoder, a UNet folder opened alone) */
    g_autofree char *path = g_build_filename (ck->path, part, "config.json", NULL);
    if (!g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
      g_free (path);
      path = g_build_filename (ck->path, "config.json", NULL);
    }
    if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
      config = easel_json_parse_file (path, 1 << 20, NULL);
  } else {
    g_autofree char *key = g_strconcat ("easel.config.", part, NULL);
    const char *text = easel_checkpoint_metadata (ck, key);
    if (text)
      config = easel_json_parse (text, strlen (text), NULL);
  }
  g_hash_table_insert (ck->configs, g_strdup (part), config);
  return config;
}
