/* app/cli/golden-checkpoint.c: golden kind "checkpoint".
 *
 * Cases:
 *  - fullsize_keys/<model>_{original,diffusers}.txt: the key list through the family detector,
 *    whole and cut down to its UNet (a UNet-only file); the expected family is the model the list
 *    was made from, read off the list's name by the oracle table below (never by the detector),
 *    and the key count must match fullsize_keys/report.json where it gives one;
 *  - each full checkpoint of models/manifest.json (a "single-file checkpoint", or a "diffusers
 *    layout" folder with a unet): opened with the loader; tensor count, dtype set, file bytes and
 *    metadata against the manifest entry, every name/shape/dtype against its keys/<file>.keys.txt; the
 *    family against an oracle derived from the diffusers configs (the folder's own, or for a
 *    single file the sibling folder with the same stem): unet/config.json's in_channels,
 *    addition_embed_type, projection_class_embeddings_input_dim, addition_time_embed_dim,
 *    cross_attention_dim and use_linear_projection, text_encoder_2's projection_dim and
 *    model_index.json's requires_aesthetics_score.
 * Hostile files are unit tests (tests/test-checkpoint.c). */
#include "golden.h"

#include <stdlib.h>
#include <string.h>

#include "engine/checkpoint.h"
#include "engine/error.h"

typedef enum { CASE_KEY_LIST, CASE_MODEL } CaseType;

typedef struct {
  CaseType type;
  char *path;       /* key list file, or the checkpoint file/folder */
} CaseData;

static void
case_data_free (gpointer p)
{
  CaseData *d = p;
  g_free (d->path);
  g_free (d);
}

static void
add_case (GPtrArray *cases, const char *name, const char *dir, const EaselJson *spec, CaseType type, const char *path)
{
  EaselGoldenCase *c = easel_golden_case_new (name, dir, spec);
  CaseData *d = g_new0 (CaseData, 1);
  d->type = type;
  d->path = g_strdup (path);
  c->data = d;
  c->free_data = case_data_free;
  g_ptr_array_add (cases, c);
}

static int
cmp_str (const void *a, const void *b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
collect_checkpoint (EaselGolden *g, GPtrArray *cases)
{
  g_autofree char *keys_dir = g_build_filename (easel_golden_dir (g), "fullsize_keys", NULL);
  g_autofree char *models_dir = g_build_filename (easel_golden_dir (g), "models", NULL);
  g_autoptr(GDir) d = g_dir_open (keys_dir, 0, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const EaselJson *entries = easel_json_get (easel_golden_manifest (g, "models/manifest.json"), "entries");
  const char *n;

  while (d && (n = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (n, "_original.txt") || g_str_has_suffix (n, "_diffusers.txt"))
      g_ptr_array_add (names, g_strdup (n));
  qsort (names->pdata, names->len, sizeof (char *), cmp_str);
  for (guint i = 0; i < names->len; i++) {
    g_autofree char *path = g_build_filename (keys_dir, names->pdata[i], NULL);
    g_autofree char *stem = g_strndup (names->pdata[i], strlen (names->pdata[i]) - 4);
    g_autofree char *name = g_strconcat ("fullsize_keys/", stem, NULL);
    add_case (cases, name, keys_dir, NULL, CASE_KEY_LIST, path);
  }

  for (gsize i = 0; i < easel_json_length (entries); i++) {
    const EaselJson *e = easel_json_at (entries, i);
    const char *kind = easel_json_get_string (e, "kind", "");
    const char *file = easel_json_get_string (e, "file", NULL), *folder = easel_json_get_string (e, "folder", NULL);
    if (strcmp (kind, "single-file checkpoint") == 0 && file && g_str_has_suffix (file, ".safetensors")) {
      g_autofree char *path = g_build_filename (models_dir, file, NULL);
      g_autofree char *name = g_strconcat ("models/", file, NULL);
      add_case (cases, name, models_dir, e, CASE_MODEL, path);
    } else if (strcmp (kind, "diffusers layout") == 0 && folder && easel_json_path (e, "components.unet")) {
      g_autofree char *path = g_build_filename (models_dir, folder, NULL);
      g_autofree char *name = g_strconcat ("models/", folder, "/", NULL);
      add_case (cases, name, models_dir, e, CASE_MODEL, path);
    }
  }
}

/* --- key lists -------------------------------------------------------------------------------- */

/* The oracle: which model a fullsize key list was made from, by its name (sd15_original.txt). */
static const struct {
  const char *prefix, *family;
} list_oracle[] = {
  { "sdxl_refiner", "sdxl-refiner" },
  { "sdxl", "sdxl" },
  { "sd2", "sd2" },
  { "sd1", "sd1" },
};

static char *
oracle_for_list (const char *stem)
{
  for (guint i = 0; i < G_N_ELEMENTS (list_oracle); i++)
    if (g_str_has_prefix (stem, list_oracle[i].prefix)) {
      gboolean inpaint = strstr (stem, "inpaint") != NULL && strcmp (list_oracle[i].family, "sdxl-refiner") != 0;
      return g_strconcat (list_oracle[i].family, inpaint ? "-inpaint" : "", NULL);
    }
  return NULL;
}

static gboolean
check_detected (EaselGolden *g, const char *label, const EaselDetection *det, const char *want)
{
  if (strcmp (easel_family_name (det->family), want) == 0)
    return TRUE;
  easel_golden_fail (g, "%s: detected %s (%s), expected %s", label, easel_family_name (det->family), det->reason, want);
  return FALSE;
}

static gboolean
run_key_list (EaselGolden *g, EaselGoldenCase *c, const CaseData *d, GError **error)
{
  g_autoptr(EaselKeyList) list = easel_key_list_load (d->path, error);
  g_autofree char *base = g_path_get_basename (d->path);
  g_autofree char *stem = g_strndup (base, strlen (base) - 4);
  g_autofree char *want = oracle_for_list (stem);
  const char *naming = g_str_has_suffix (stem, "_original") ? "original" : "diffusers";
  g_autofree char *model = g_strndup (stem, strlen (stem) - strlen (naming) - 1);
  g_autofree char *count_key = g_strconcat (naming, "_count", NULL);
  const EaselJson *report = easel_golden_manifest (g, "fullsize_keys/report.json");
  g_autofree EaselKeyShape *unet = NULL;
  EaselDetection det;
  gint64 want_count;
  gsize n_unet = 0;
  gboolean ok = TRUE;

  if (list == NULL)
    return FALSE;
  if (want == NULL) {
    easel_golden_fail (g, "no oracle family for a list named %s", base);
    return FALSE;
  }
  if (easel_json_int64 (easel_json_get (easel_json_get (report, model), count_key), &want_count) && (gint64) list->n_keys != want_count) {
    easel_golden_fail (g, "%" G_GSIZE_FORMAT " keys, report.json says %" G_GINT64_FORMAT, list->n_keys, want_count);
    ok = FALSE;
  }
  easel_detect_family (list->keys, list->n_keys, &det);
  ok &= check_detected (g, "whole list", &det, want);

  /* the same list cut down to its UNet, prefix removed: a UNet-only file */
  if (det.unet_naming != EASEL_NAMING_NONE) {
    gsize plen = strlen (det.unet_prefix);
    unet = g_new0 (EaselKeyShape, list->n_keys);
    for (gsize i = 0; i < list->n_keys; i++)
      if (strncmp (list->keys[i].name, det.unet_prefix, plen) == 0) {
        unet[n_unet] = list->keys[i];
        unet[n_unet++].name += plen;
      }
    easel_detect_family (unet, n_unet, &det);
    ok &= check_detected (g, "UNet only", &det, want);
  }
  return ok;
}

/* --- models ----------------------------------------------------------------------------------- */

/* The oracle: the family the diffusers configs describe. NULL (and why) when they do not say. */
static char *
oracle_from_configs (const char *folder, char **why)
{
  g_autofree char *unet_path = g_build_filename (folder, "unet", "config.json", NULL);
  g_autofree char *te2_path = g_build_filename (folder, "text_encoder_2", "config.json", NULL);
  g_autofree char *index_path = g_build_filename (folder, "model_index.json", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselJson) unet = easel_json_parse_file (unet_path, 0, &error);
  g_autoptr(EaselJson) te2 = g_file_test (te2_path, G_FILE_TEST_EXISTS) ? easel_json_parse_file (te2_path, 0, NULL) : NULL;
  g_autoptr(EaselJson) index = g_file_test (index_path, G_FILE_TEST_EXISTS) ? easel_json_parse_file (index_path, 0, NULL) : NULL;
  gint64 in, cross;
  gboolean inpaint, sd2 = FALSE, aesthetic = FALSE;

  if (unet == NULL) {
    *why = g_strdup_printf ("no config to derive the family from: %s", error->message);
    return NULL;
  }
  in = easel_json_get_int (unet, "in_channels", 4);
  inpaint = in == 9;
  if (g_strcmp0 (easel_json_get_string (unet, "addition_embed_type", NULL), "text_time") == 0) {
    gint64 proj = easel_json_get_int (unet, "projection_class_embeddings_input_dim", 0);
    gint64 tdim = easel_json_get_int (unet, "addition_time_embed_dim", 0);
    gint64 n_ids;
    if (te2 != NULL) {
      gint64 pooled = easel_json_get_int (te2, "projection_dim", 0);
      n_ids = tdim > 0 && (proj - pooled) % tdim == 0 ? (proj - pooled) / tdim : 0;
    } else {
      easel_json_bool (easel_json_get (index, "requires_aesthetics_score"), &aesthetic);
      n_ids = aesthetic ? 5 : 6;
    }
    if (n_ids == 6)
      return g_strdup (inpaint ? "sdxl-inpaint" : "sdxl");
    if (n_ids == 5 && !inpaint)
      return g_strdup ("sdxl-refiner");
    *why = g_strdup_printf ("%s: text_time embedding with %" G_GINT64_FORMAT " time ids", unet_path, n_ids);
    return NULL;
  }
  cross = easel_json_get_int (unet, "cross_attention_dim", 0);
  if (cross == 1024)
    sd2 = TRUE;
  else if (cross != 768)
    easel_json_bool (easel_json_get (unet, "use_linear_projection"), &sd2);
  return g_strconcat (sd2 ? "sd2" : "sd1", inpaint ? "-inpaint" : "", NULL);
}

/* The dtype names of a set of counts, sorted, joined by ','. */
static char *
dtype_set (const gsize *counts)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  for (int dt = 0; dt < EASEL_DTYPE_COUNT; dt++)
    if (counts[dt])
      g_ptr_array_add (names, (gpointer) easel_dtype_name ((EaselDType) dt));
  qsort (names->pdata, names->len, sizeof (char *), cmp_str);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (",", (char **) names->pdata);
}

static char *
manifest_dtype_set (const EaselJson *list)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  for (gsize i = 0; i < easel_json_length (list); i++) {
    const char *s = easel_json_string (easel_json_at (list, i), NULL);
    if (s)
      g_ptr_array_add (names, (gpointer) s);
  }
  qsort (names->pdata, names->len, sizeof (char *), cmp_str);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (",", (char **) names->pdata);
}

/* Tensor count and dtype set of the tensors whose component is comp (NULL: all). */
static gboolean
check_counts (EaselGolden *g, const EaselCheckpoint *ck, const char *comp, const EaselJson *spec)
{
  gsize counts[EASEL_DTYPE_COUNT] = { 0 }, n = 0;
  gint64 want_n;
  gboolean ok = TRUE;
  const char *label = comp ? comp : "file";

  for (gsize i = 0; i < easel_checkpoint_n_tensors (ck); i++) {
    const EaselCheckpointTensor *t = easel_checkpoint_tensor (ck, i);
    if (comp == NULL || strcmp (t->component, comp) == 0) {
      counts[t->st->dtype]++;
      n++;
    }
  }
  if (easel_json_int64 (easel_json_get (spec, "tensors"), &want_n) && (gint64) n != want_n) {
    easel_golden_fail (g, "%s: %" G_GSIZE_FORMAT " tensors, manifest says %" G_GINT64_FORMAT, label, n, want_n);
    ok = FALSE;
  }
  if (easel_json_get (spec, "dtypes")) {
    g_autofree char *got = dtype_set (counts), *want = manifest_dtype_set (easel_json_get (spec, "dtypes"));
    if (strcmp (got, want) != 0) {
      easel_golden_fail (g, "%s: dtypes {%s}, manifest says {%s}", label, got, want);
      ok = FALSE;
    }
  }
  return ok;
}

/* Every name, shape and dtype of a keys.txt file, and nothing more. */
static gboolean
check_key_list (EaselGolden *g, const EaselCheckpoint *ck, const char *path, GError **error)
{
  g_autoptr(EaselKeyList) list = easel_key_list_load (path, error);
  guint bad = 0;

  if (list == NULL)
    return FALSE;
  if (list->n_keys != easel_checkpoint_n_tensors (ck)) {
    easel_golden_fail (g, "%" G_GSIZE_FORMAT " tensors, %s lists %" G_GSIZE_FORMAT, easel_checkpoint_n_tensors (ck),
                       path, list->n_keys);
    bad++;
  }
  for (gsize i = 0; i < list->n_keys; i++) {
    const EaselKeyShape *k = &list->keys[i];
    const EaselCheckpointTensor *t = easel_checkpoint_find (ck, k->name);
    gboolean same = t != NULL && t->st->n_dims == k->n_dims && t->st->dtype == list->dtypes[i]
                    && memcmp (t->st->shape, k->shape, sizeof (gint64) * k->n_dims) == 0;
    if (!same && bad++ < 3) {
      char shape[128];
      if (t == NULL)
        easel_golden_fail (g, "'%s' missing", k->name);
      else
        easel_golden_fail (g, "'%s' is %s %s, the key list says %s", k->name, easel_dtype_name (t->st->dtype),
                           easel_st_shape_str (t->st, shape, sizeof shape), easel_dtype_name (list->dtypes[i]));
    }
  }
  return bad == 0;
}

static gboolean
run_model (EaselGolden *g, EaselGoldenCase *c, const CaseData *d, GError **error)
{
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (d->path, error);
  const EaselJson *spec = c->spec;
  const EaselJson *components = easel_json_get (spec, "components");
  const EaselDetection *det;
  g_autofree char *config_folder = NULL, *want = NULL, *why = NULL;
  gboolean ok = TRUE, unet_weights = TRUE;
  gint64 want_bytes;

  if (ck == NULL)
    return FALSE;
  det = easel_checkpoint_detection (ck);

  if (easel_checkpoint_format (ck) == EASEL_CHECKPOINT_SINGLE_FILE) {
    const EaselJson *meta = easel_json_get (spec, "metadata");
    const char *key_list = easel_json_get_string (spec, "key_list", NULL);
    ok &= check_counts (g, ck, NULL, spec);
    if (easel_json_int64 (easel_json_get (spec, "bytes"), &want_bytes)
        && (gint64) easel_checkpoint_file_bytes (ck) != want_bytes) {
      easel_golden_fail (g, "%" G_GUINT64_FORMAT " bytes, manifest says %" G_GINT64_FORMAT,
                         easel_checkpoint_file_bytes (ck), want_bytes);
      ok = FALSE;
    }
    for (gsize i = 0; i < easel_json_length (meta); i++) {
      const char *k = easel_json_key_at (meta, i), *v = easel_json_string (easel_json_at (meta, i), NULL);
      if (g_strcmp0 (easel_checkpoint_metadata (ck, k), v) != 0) {
        easel_golden_fail (g, "metadata %s = '%s', manifest says '%s'", k, easel_checkpoint_metadata (ck, k), v);
        ok = FALSE;
      }
    }
    if (key_list) {
      g_autofree char *kpath = g_build_filename (c->dir, key_list, NULL);
      if (!check_key_list (g, ck, kpath, error))
        return FALSE;
    }
    /* the sibling diffusers folder with the same stem holds the configs */
    g_autofree char *stem = g_strndup (d->path, strlen (d->path) - strlen (".safetensors"));
    config_folder = g_steal_pointer (&stem);
  } else {
    for (gsize i = 0; i < easel_json_length (components); i++) {
      const char *comp = easel_json_key_at (components, i);
      const EaselJson *cs = easel_json_at (components, i), *files = easel_json_get (cs, "files");
      const EaselCheckpointPart *part = NULL;
      gboolean listed_weights = FALSE;

      for (gsize f = 0; f < easel_json_length (files); f++)
        listed_weights |= g_str_has_suffix (easel_json_string (easel_json_at (files, f), NULL), ".safetensors");
      for (gsize p = 0; p < easel_checkpoint_n_parts (ck); p++)
        if (strcmp (easel_checkpoint_part (ck, p)->name, comp) == 0)
          part = easel_checkpoint_part (ck, p);
      if (part == NULL) {
        easel_golden_fail (g, "component %s not found", comp);
        ok = FALSE;
        continue;
      }
      if (part->has_weights != listed_weights) {
        easel_golden_fail (g, "%s: %s weights, manifest says %s", comp, part->has_weights ? "has" : "no",
                           listed_weights ? "it has" : "it has none");
        ok = FALSE;
      }
      if (strcmp (comp, "unet") == 0)
        unet_weights = listed_weights;
      ok &= check_counts (g, ck, comp, cs);
    }
    config_folder = g_strdup (d->path);
  }

  if (!unet_weights) {
    g_autofree char *base = g_path_get_basename (d->path);
    if (det->family != EASEL_FAMILY_UNKNOWN) {
      easel_golden_fail (g, "no UNet weights, yet detected %s", easel_family_name (det->family));
      ok = FALSE;
    }
    easel_golden_note (g, "%s/: unet is config only (no weights): opened, family not checked", base);
    return ok;
  }
  want = oracle_from_configs (config_folder, &why);
  if (want == NULL) {
    easel_golden_fail (g, "%s", why);
    return FALSE;
  }
  ok &= check_detected (g, "family", det, want);
  {
    g_autofree char *unet_cfg_path = g_build_filename (config_folder, "unet", "config.json", NULL);
    g_autoptr(EaselJson) cfg = easel_json_parse_file (unet_cfg_path, 0, NULL);
    gint64 in = easel_json_get_int (cfg, "in_channels", -1), cross = easel_json_get_int (cfg, "cross_attention_dim", -1);
    if (in != det->in_channels || (cross >= 0 && cross != det->context_dim)) {
      easel_golden_fail (g, "UNet in-channels %" G_GINT64_FORMAT " context %" G_GINT64_FORMAT ", config says %"
                         G_GINT64_FORMAT " and %" G_GINT64_FORMAT, det->in_channels, det->context_dim, in, cross);
      ok = FALSE;
    }
  }
  return ok;
}

static gboolean
run_checkpoint (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  const CaseData *d = c->data;
  return d->type == CASE_KEY_LIST ? run_key_list (g, c, d, error) : run_model (g, c, d, error);
}

const EaselGoldenKind easel_golden_kind_checkpoint = { "checkpoint", collect_checkpoint, run_checkpoint };
