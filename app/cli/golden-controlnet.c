/* app/cli/golden-controlnet.c: golden kind "controlnet": refs/controlnet (README-r2 section 1).
 *
 * controlnet/<h>x<w>_t<t>: on every form of models/controlnet_sd1_tiny present (the diffusers folder
 * and lllyasviel's single file, with the folder's config.json as the hint), the ControlNet's
 * cond_embedding, 12 down residuals and mid residual at scale 1, and the base UNet's output with
 * the residuals at scale 1.0 and 0.5 (and without, as a check of the inputs). pipe_inputs: the
 * pipeline's control image is Canny (100, 200) of the stored RGB source repeated on 3 channels,
 * /255. The pipe/ cases belong to the kind "adapter-pipeline". */
#include <string.h>

#include "engine/canny.h"
#include "engine/controlnet.h"
#include "engine/error.h"
#include "golden-adapters.h"

static gboolean
accept (const char *name)
{
  return g_str_has_prefix (name, "controlnet/") || strcmp (name, "pipe_inputs") == 0;
}

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "controlnet", accept);
}

#define NAME(...) g_autofree char *name_ = g_strdup_printf (__VA_ARGS__)

static gboolean
run_form (EaselGolden *g, EaselGoldenCase *c, const char *case_name, EaselUnet *unet, const char *form,
          const char *path, const char *hint_path, GError **error)
{
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, error);
  g_autoptr(EaselJson) hint = NULL;
  g_autoptr(EaselControlNet) cn = NULL;
  g_autoptr(EaselGraph) gr = easel_graph_new ();
  g_autoptr(EaselBackend) backend = NULL;
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  EaselControlNetOutputs out1, out05;
  double atol, rtol;
  gboolean ok = TRUE;

  if (ck == NULL)
    return FALSE;
  if (hint_path && g_file_test (hint_path, G_FILE_TEST_IS_REGULAR) && (hint = easel_json_parse_file (hint_path, 0, error)) == NULL)
    return FALSE;
  if ((cn = easel_controlnet_new (ck, hint, EASEL_FAMILY_SD1, error)) == NULL)
    return FALSE;

  g_autofree char *n_sample = g_strconcat (case_name, "/sample", NULL), *n_t = g_strconcat (case_name, "/timestep", NULL);
  g_autofree char *n_ctx = g_strconcat (case_name, "/encoder_hidden_states", NULL);
  g_autofree char *n_cond = g_strconcat (case_name, "/controlnet_cond", NULL);
  EaselTensor *x, *t, *ctx, *cond;
  if ((x = easel_golden_adapter_input (g, gr, c, n_sample, keep, error)) == NULL
      || (t = easel_golden_adapter_input (g, gr, c, n_t, keep, error)) == NULL
      || (ctx = easel_golden_adapter_input (g, gr, c, n_ctx, keep, error)) == NULL
      || (cond = easel_golden_adapter_input (g, gr, c, n_cond, keep, error)) == NULL)
    return FALSE;

  easel_controlnet_build (cn, gr, x, t, ctx, NULL, NULL, cond, 1.0f, &out1);
  easel_controlnet_build (cn, gr, x, t, ctx, NULL, NULL, cond, 0.5f, &out05);
  EaselUnetExtras e1 = { 0 }, e05 = { 0 };
  easel_controlnet_outputs_to_extras (&out1, &e1);
  easel_controlnet_outputs_to_extras (&out05, &e05);
  EaselTensor *y1 = easel_unet_build (unet, gr, x, t, ctx, NULL, NULL, &e1, NULL);
  EaselTensor *y05 = easel_unet_build (unet, gr, x, t, ctx, NULL, NULL, &e05, NULL);
  EaselTensor *y0 = easel_unet_build (unet, gr, x, t, ctx, NULL, NULL, NULL, NULL);
  if (easel_graph_error (gr)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s: %s", form, easel_graph_error (gr)->message);
    return FALSE;
  }
  for (int i = 0; i < out1.n_down; i++)
    easel_graph_mark_output (gr, out1.down[i]);
  easel_graph_mark_output (gr, out1.mid);
  easel_graph_mark_output (gr, out1.cond_embedding);
  easel_graph_mark_output (gr, y1);
  easel_graph_mark_output (gr, y05);
  easel_graph_mark_output (gr, y0);
  backend = easel_golden_new_backend (g, error);
  if (backend == NULL || !easel_backend_compute (backend, gr, error))
    return FALSE;

  easel_golden_tolerance (c->spec, 1e-4, 0.0, &atol, &rtol);
  int n_want = 0;
  while (n_want < EASEL_CONTROLNET_MAX_RESIDUALS) {
    NAME ("%s/down_residual_%02d", case_name, n_want);
    if (!easel_golden_adapter_has (c, name_))
      break;
    n_want++;
  }
  if (n_want != out1.n_down) {
    easel_golden_fail (g, "%s: %d down residuals, the reference has %d", form, out1.n_down, n_want);
    return FALSE;
  }
  for (int i = 0; i < out1.n_down; i++) {
    NAME ("%s/down_residual_%02d", case_name, i);
    g_autofree char *label = g_strdup_printf ("%s: down_residual_%02d", form, i);
    ok &= easel_golden_adapter_check (g, backend, c, out1.down[i], name_, label, atol, rtol, error);
  }
  const struct {
    EaselTensor *t;
    const char *what;
  } checks[] = {
    { out1.mid, "mid_residual" },
    { out1.cond_embedding, "intermediate/cond_embedding" },
    { y1, "unet_output_scale_1.0" },
    { y05, "unet_output_scale_0.5" },
    { y0, "unet_output_no_controlnet" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (checks) && (error == NULL || *error == NULL); i++) {
    NAME ("%s/%s", case_name, checks[i].what);
    g_autofree char *label = g_strdup_printf ("%s: %s", form, checks[i].what);
    if (!easel_golden_adapter_has (c, name_)) {
      easel_golden_fail (g, "%s: the reference lacks %s", form, checks[i].what);
      ok = FALSE;
      continue;
    }
    ok &= easel_golden_adapter_check (g, backend, c, checks[i].t, name_, label, atol, rtol, error);
  }
  return ok && (error == NULL || *error == NULL);
}

/* control_image == Canny (100, 200) of the RGB source, on 3 channels, / 255 */
static gboolean
run_pipe_inputs (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  g_autofree char *file = g_build_filename (c->dir, easel_json_get_string (c->spec, "file", ""), NULL);
  EaselSafetensors *st = easel_golden_safetensors (g, file, error);
  if (st == NULL)
    return FALSE;
  const EaselStTensor *src = easel_safetensors_find (st, "pipe_inputs/control_source_rgb_u8_hwc");
  if (src == NULL || src->dtype != EASEL_DTYPE_U8 || src->n_dims != 3 || src->shape[2] != 3 || src->shape[0] > 16384
      || src->shape[1] > 16384) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: no (H, W, 3) U8 pipe_inputs/control_source_rgb_u8_hwc", file);
    return FALSE;
  }
  gint H = (gint) src->shape[0], W = (gint) src->shape[1];
  g_autofree guint8 *edges = g_malloc ((gsize) H * W);
  g_autofree float *got = g_new (float, (gsize) 3 * H * W);
  if (!easel_canny (src->data, W, H, 3, (gsize) W * 3, 100, 200, FALSE, edges, error))
    return FALSE;
  for (int ch = 0; ch < 3; ch++)
    for (gsize i = 0; i < (gsize) H * W; i++)
      got[ch * (gsize) H * W + i] = edges[i] / 255.0f;
  return easel_golden_adapter_check_data (g, c, got, (gsize) 3 * H * W, "pipe_inputs/control_image", "control_image",
                                          0, 0, error);
}

static gboolean
run (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  const char *case_name = strchr (c->name, '/') ? strchr (c->name, '/') + 1 : c->name;
  g_autofree char *folder = g_build_filename (easel_golden_dir (g), "models", "controlnet_sd1_tiny", NULL);
  g_autofree char *file = g_build_filename (easel_golden_dir (g), "models", "controlnet_sd1_tiny.safetensors", NULL);
  g_autofree char *config = g_build_filename (folder, "config.json", NULL);
  g_autoptr(EaselCheckpoint) base = NULL;
  g_autoptr(EaselUnet) unet = NULL;
  gboolean ok = TRUE;
  int forms = 0;

  if (strcmp (case_name, "pipe_inputs") == 0)
    return run_pipe_inputs (g, c, error);
  if ((unet = easel_golden_adapter_base_unet (g, &base, error)) == NULL)
    return FALSE;
  if (g_file_test (config, G_FILE_TEST_IS_REGULAR)) {
    forms++;
    ok &= run_form (g, c, case_name, unet, "diffusers", folder, NULL, error);
    if (error && *error)
      return FALSE;
  } else {
    easel_golden_note (g, "models/controlnet_sd1_tiny/ absent: diffusers ControlNet skipped");
  }
  if (g_file_test (file, G_FILE_TEST_IS_REGULAR)) {
    forms++;
    ok &= run_form (g, c, case_name, unet, "single file", file, config, error);
  } else {
    easel_golden_note (g, "models/controlnet_sd1_tiny.safetensors absent: single-file ControlNet skipped");
  }
  if (forms == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "no form of models/controlnet_sd1_tiny");
    return FALSE;
  }
  return ok && (error == NULL || *error == NULL);
}

const EaselGoldenKind easel_golden_kind_controlnet = { "controlnet", collect, run };
