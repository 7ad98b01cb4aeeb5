/* app/cli/golden-unet.c: golden kind "unet": refs/<model>/ cases named unet/... and
 * <variant>_unet/... (refiner_unet/...). Each case runs once per model form present: the diffusers
 * folder (models/NAME/, when its unet/ has weights) and the single file (models/NAME.safetensors,
 * with the folder's unet/config.json as the hint for what the tensors cannot tell). The output is
 * compared with the manifest's tolerance, and so are the intermediates the case stores
 * (time_proj, time_embedding, add_time_proj, add_embedding). */
#include <string.h>

#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/unet.h"
#include "golden.h"

static gboolean
accept (const char *name)
{
  return g_str_has_prefix (name, "unet/") || strstr (name, "_unet/") != NULL;
}

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "sd1", accept);
  easel_golden_collect_refs (g, cases, "sdxl", accept);
}

/* The model a case runs on: "refiner_unet/..." -> the model whose name holds "refiner"; "unet/..."
 * -> the first model the manifest names. */
static const EaselGoldenModel *
pick_model (GPtrArray *models, const char *case_name)
{
  const char *u = strstr (case_name, "unet/");
  g_autofree char *variant = g_strndup (case_name, u ? u - case_name : 0);
  g_strdelimit (variant, "_", '\0');
  for (guint i = 0; i < models->len; i++) {
    const EaselGoldenModel *m = models->pdata[i];
    if (variant[0] == '\0' || strstr (m->name, variant))
      return m;
  }
  return NULL;
}

typedef struct {
  const char *file;         /* refs safetensors */
  const char *prefix;       /* "unet/16x16_t1.0/" */
  const EaselJson *spec;
} Case;

/* A tensor of the case (input, output or intermediate) with its manifest shape. */
static float *
case_tensor (EaselGolden *g, const Case *k, const char *section, const char *what, gint64 *shape, int *n_dims,
             GError **error)
{
  g_autofree char *name = g_strconcat (k->prefix, what, NULL);
  const EaselJson *sh = easel_json_get (easel_json_get (easel_json_get (k->spec, section), name), "shape");
  gsize n = 1;
  if (easel_json_length (sh) < 1 || easel_json_length (sh) > 4) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "manifest: no shape for %s.%s", section, name);
    return NULL;
  }
  *n_dims = (int) easel_json_length (sh);
  for (int d = 0; d < *n_dims; d++) {
    if (!easel_json_int64 (easel_json_at (sh, d), &shape[d]) || shape[d] < 1 || shape[d] > (1 << 24)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "manifest: bad shape for %s", name);
      return NULL;
    }
    n *= shape[d];
  }
  return easel_golden_tensor_f32 (g, k->file, name, n, NULL, error);
}

static gboolean
has_entry (const Case *k, const char *section, const char *what)
{
  g_autofree char *name = g_strconcat (k->prefix, what, NULL);
  return easel_json_get (easel_json_get (k->spec, section), name) != NULL;
}

/* One form of the model: load, run, compare. */
static gboolean
run_form (EaselGolden *g, const Case *k, const char *form, const char *path, const char *hint_path, GError **error)
{
  static const char *const inter_names[] = { "time_proj", "time_embedding", "add_time_proj", "add_embedding" };
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, error);
  g_autoptr(EaselJson) hint = NULL;
  g_autoptr(EaselUnet) u = NULL;
  g_autoptr(EaselBackend) backend = NULL;
  g_autoptr(EaselGraph) gr = NULL;
  gint64 s_shape[4], t_shape[4], c_shape[4], p_shape[4], i_shape[4], o_shape[4];
  int s_nd, t_nd, c_nd, p_nd = 0, i_nd = 0, o_nd;
  g_autofree float *sample = NULL, *timestep = NULL, *context = NULL, *pooled = NULL, *ids = NULL, *want = NULL;
  EaselUnetIntermediates inter;
  double atol, rtol;
  gboolean ok = TRUE;

  if (ck == NULL)
    return FALSE;
  if (hint_path && g_file_test (hint_path, G_FILE_TEST_IS_REGULAR) && (hint = easel_json_parse_file (hint_path, 0, error)) == NULL)
    return FALSE;
  if ((u = easel_unet_new (ck, hint, error)) == NULL)
    return FALSE;
  if ((sample = case_tensor (g, k, "inputs", "sample", s_shape, &s_nd, error)) == NULL
      || (timestep = case_tensor (g, k, "inputs", "timestep", t_shape, &t_nd, error)) == NULL
      || (context = case_tensor (g, k, "inputs", "encoder_hidden_states", c_shape, &c_nd, error)) == NULL
      || (want = case_tensor (g, k, "outputs", "output", o_shape, &o_nd, error)) == NULL)
    return FALSE;
  if (has_entry (k, "inputs", "text_embeds")
      && ((pooled = case_tensor (g, k, "inputs", "text_embeds", p_shape, &p_nd, error)) == NULL
          || (ids = case_tensor (g, k, "inputs", "time_ids", i_shape, &i_nd, error)) == NULL))
    return FALSE;

  gr = easel_graph_new ();
  EaselTensor *x = easel_graph_input (gr, "sample", EASEL_DTYPE_F32, s_nd, s_shape, sample);
  EaselTensor *t = easel_graph_input (gr, "timestep", EASEL_DTYPE_F32, t_nd, t_shape, timestep);
  EaselTensor *c = easel_graph_input (gr, "context", EASEL_DTYPE_F32, c_nd, c_shape, context);
  EaselTensor *p = pooled ? easel_graph_input (gr, "pooled", EASEL_DTYPE_F32, p_nd, p_shape, pooled) : NULL;
  EaselTensor *i = ids ? easel_graph_input (gr, "time_ids", EASEL_DTYPE_F32, i_nd, i_shape, ids) : NULL;
  EaselTensor *y = easel_unet_build (u, gr, x, t, c, p, i, NULL, &inter);
  easel_graph_mark_output (gr, y);
  if (easel_graph_error (gr)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s: %s", form, easel_graph_error (gr)->message);
    return FALSE;
  }
  backend = easel_golden_new_backend (g, error);
  if (backend == NULL || !easel_backend_compute (backend, gr, error))
    return FALSE;

  easel_golden_tolerance (k->spec, 1e-4, 0.0, &atol, &rtol);
  gint64 n = easel_tensor_numel (y);
  g_autofree float *got = g_new (float, n);
  g_autofree char *label = g_strdup_printf ("%s: output", form);
  if (n != o_shape[0] * o_shape[1] * o_shape[2] * o_shape[3] || o_nd != 4) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_MISMATCH, "%s: output has %" G_GINT64_FORMAT " elements", form, n);
    return FALSE;
  }
  if (!easel_backend_read (backend, y, got, error))
    return FALSE;
  ok &= easel_golden_compare (g, label, got, want, n, o_shape, o_nd, atol, rtol);

  EaselTensor *mine[] = { inter.time_proj, inter.time_embedding, inter.add_time_proj, inter.add_embedding };
  for (guint m = 0; m < G_N_ELEMENTS (inter_names); m++) {
    g_autofree char *what = g_strconcat ("intermediate/", inter_names[m], NULL);
    gint64 r_shape[4];
    int r_nd;
    if (!has_entry (k, "intermediates", what))
      continue;
    g_autofree float *ref = case_tensor (g, k, "intermediates", what, r_shape, &r_nd, error);
    if (ref == NULL)
      return FALSE;
    gint64 r_n = 1;
    for (int d = 0; d < r_nd; d++)
      r_n *= r_shape[d];
    if (mine[m] == NULL || easel_tensor_numel (mine[m]) != r_n) {
      easel_golden_fail (g, "%s: no %s of the reference's shape", form, inter_names[m]);
      ok = FALSE;
      continue;
    }
    g_autofree float *v = g_new (float, easel_tensor_numel (mine[m]));
    g_autofree char *ilabel = g_strdup_printf ("%s: %s", form, inter_names[m]);
    if (!easel_backend_read (backend, mine[m], v, error))
      return FALSE;
    ok &= easel_golden_compare (g, ilabel, v, ref, easel_tensor_numel (mine[m]), r_shape, r_nd, atol, rtol);
  }
  return ok;
}

static gboolean
has_unet_weights (const char *folder)
{
  g_autofree char *dir = g_build_filename (folder, "unet", NULL);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (name, ".safetensors") || g_str_has_suffix (name, ".safetensors.index.json"))
      return TRUE;
  return FALSE;
}

static gboolean
run (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  g_autofree char *ref = g_path_get_basename (c->dir);
  g_autofree char *manifest_rel = g_build_filename ("refs", ref, "manifest.json", NULL);
  const EaselJson *manifest = easel_golden_manifest (g, manifest_rel);
  g_autoptr(GPtrArray) models = manifest ? easel_golden_models (g, manifest) : NULL;
  const char *case_name = strchr (c->name, '/') ? strchr (c->name, '/') + 1 : c->name;
  const EaselGoldenModel *m = models ? pick_model (models, case_name) : NULL;
  g_autofree char *file = g_build_filename (c->dir, easel_json_get_string (manifest, "file", ""), NULL);
  g_autofree char *prefix = g_strconcat (case_name, "/", NULL);
  Case k = { file, prefix, c->spec };
  int forms = 0;
  gboolean ok = TRUE;

  if (m == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "no model for %s in %s", case_name, manifest_rel);
    return FALSE;
  }
  if (m->folder && has_unet_weights (m->folder)) {
    forms++;
    ok &= run_form (g, &k, "diffusers", m->folder, NULL, error);
    if (error && *error)
      return FALSE;
  } else if (m->folder) {
    easel_golden_note (g, "%s/: unet has no weights (config only), diffusers form skipped", m->name);
  }
  if (m->single_file) {
    g_autofree char *hint = m->folder ? g_build_filename (m->folder, "unet", "config.json", NULL) : NULL;
    forms++;
    ok &= run_form (g, &k, "single file", m->single_file, hint, error);
  } else {
    easel_golden_note (g, "%s.safetensors absent: single-file form skipped", m->name);
  }
  if (forms == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no model form with UNet weights", m->name);
    return FALSE;
  }
  return ok && (error == NULL || *error == NULL);
}

const EaselGoldenKind easel_golden_kind_unet = { "unet", collect, run };
