/* app/cli/golden-adapters.c: helpers of the adapter kinds (golden-adapters.h). */
#include "golden-adapters.h"

#include <string.h>

#include "engine/error.h"

static const EaselJson *
entry (const EaselGoldenCase *c, const char *name)
{
  static const char *const sections[] = { "inputs", "outputs", "intermediates" };
  for (guint i = 0; i < G_N_ELEMENTS (sections); i++) {
    const EaselJson *e = easel_json_get (easel_json_get (c->spec, sections[i]), name);
    if (e)
      return e;
  }
  return NULL;
}

gboolean
easel_golden_adapter_has (const EaselGoldenCase *c, const char *name)
{
  return entry (c, name) != NULL;
}

float *
easel_golden_adapter_tensor (EaselGolden *g, const EaselGoldenCase *c, const char *name, gint64 *shape, int *n_dims,
                             GError **error)
{
  g_autofree char *file = g_build_filename (c->dir, easel_json_get_string (c->spec, "file", ""), NULL);
  const EaselJson *sh = easel_json_get (entry (c, name), "shape");
  gsize n = 1;

  if (easel_json_length (sh) < 1 || easel_json_length (sh) > 4) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "manifest: no shape of 1 to 4 dims for %s", name);
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
  return easel_golden_tensor_f32 (g, file, name, n, NULL, error);
}

EaselTensor *
easel_golden_adapter_input (EaselGolden *g, EaselGraph *gr, const EaselGoldenCase *c, const char *name,
                            GPtrArray *keep, GError **error)
{
  gint64 shape[4];
  int nd;
  float *data = easel_golden_adapter_tensor (g, c, name, shape, &nd, error);
  if (data == NULL)
    return NULL;
  g_ptr_array_add (keep, data);
  return easel_graph_input (gr, strrchr (name, '/') ? strrchr (name, '/') + 1 : name, EASEL_DTYPE_F32, nd, shape, data);
}

gboolean
easel_golden_adapter_check_data (EaselGolden *g, const EaselGoldenCase *c, const float *got, gsize n,
                                 const char *name, const char *label, double atol, double rtol, GError **error)
{
  gint64 shape[4];
  int nd;
  g_autofree float *want = easel_golden_adapter_tensor (g, c, name, shape, &nd, error);
  if (want == NULL)
    return FALSE;
  gsize wn = 1;
  for (int d = 0; d < nd; d++)
    wn *= shape[d];
  if (wn != n) {
    easel_golden_fail (g, "%s: %" G_GSIZE_FORMAT " elements, the reference has %" G_GSIZE_FORMAT, label, n, wn);
    return FALSE;
  }
  return easel_golden_compare (g, label, got, want, n, shape, nd, atol, rtol);
}

gboolean
easel_golden_adapter_check (EaselGolden *g, EaselBackend *backend, const EaselGoldenCase *c, EaselTensor *t,
                            const char *name, const char *label, double atol, double rtol, GError **error)
{
  if (t == NULL) {
    easel_golden_fail (g, "%s: not computed", label);
    return FALSE;
  }
  gsize n = easel_tensor_numel (t);
  g_autofree float *got = g_new (float, n);
  if (!easel_backend_read (backend, t, got, error))
    return FALSE;
  return easel_golden_adapter_check_data (g, c, got, n, name, label, atol, rtol, error);
}

static gboolean
has_weights (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)) != NULL)
    if (g_str_has_suffix (name, ".safetensors") || g_str_has_suffix (name, ".safetensors.index.json"))
      return TRUE;
  return FALSE;
}

EaselUnet *
easel_golden_adapter_base_unet (EaselGolden *g, EaselCheckpoint **ck, GError **error)
{
  g_autofree char *folder = g_build_filename (easel_golden_dir (g), "models", "sd1_tiny", NULL);
  g_autofree char *unet_dir = g_build_filename (folder, "unet", NULL);
  g_autofree char *file = g_build_filename (easel_golden_dir (g), "models", "sd1_tiny.safetensors", NULL);
  g_autofree char *config = g_build_filename (unet_dir, "config.json", NULL);
  g_autoptr(EaselJson) hint = NULL;
  gboolean use_folder = has_weights (unet_dir);

  *ck = easel_checkpoint_open (use_folder ? folder : file, error);
  if (*ck == NULL)
    return NULL;
  if (!use_folder && g_file_test (config, G_FILE_TEST_IS_REGULAR) && (hint = easel_json_parse_file (config, 0, error)) == NULL)
    return NULL;
  return easel_unet_new (*ck, hint, error);
}
