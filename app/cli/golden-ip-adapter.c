/* app/cli/golden-ip-adapter.c: golden kind "ip-adapter": refs/ipadapter (README-r2 section 3).
 * image_encoder: the CLIP vision tower of models/ip_adapter/image_encoder/ on pixel_values gives
 * image_embeds, every hidden state, last and penultimate hidden state, and the penultimate state of
 * an all-zero image. ip_unet_{plain,plus}/...: the adapter file's projection of image_embeds_input
 * gives ip_tokens, and the base UNet with the decoupled cross-attention at scale 1.0 and 0.6 gives
 * unet_output_scale_*; scale 0 must equal the plain UNet. The pipe/ cases belong to the kind
 * "adapter-pipeline". preprocess/caseN: transformers' CLIPImageProcessor (size = crop = S) of an 8-bit
 * RGB image gives pixel_values_CLIPImageProcessor (1, 3, S, S). */
#include <string.h>

#include "engine/clip_vision.h"
#include "engine/error.h"
#include "engine/ip_adapter.h"
#include "golden-adapters.h"

static gboolean
accept (const char *name)
{
  return strcmp (name, "image_encoder") == 0 || g_str_has_prefix (name, "ip_unet_")
         || g_str_has_prefix (name, "preprocess/");
}

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "ipadapter", accept);
}

static gboolean
run_encoder (EaselGolden *g, EaselGoldenCase *c, double atol, double rtol, GError **error)
{
  g_autofree char *folder = g_build_filename (easel_golden_dir (g), "models", "ip_adapter", "image_encoder", NULL);
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (folder, error);
  g_autoptr(EaselClipVision) v = NULL;
  g_autoptr(EaselGraph) gr = easel_graph_new ();
  g_autoptr(EaselBackend) backend = NULL;
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  EaselClipVisionOutputs o, oz;
  gboolean ok = TRUE;

  if (ck == NULL || (v = easel_clip_vision_new (ck, NULL, error)) == NULL)
    return FALSE;
  EaselTensor *px = easel_golden_adapter_input (g, gr, c, "image_encoder/pixel_values", keep, error);
  if (px == NULL)
    return FALSE;
  float *zeros = g_new0 (float, easel_tensor_numel (px));
  g_ptr_array_add (keep, zeros);
  EaselTensor *pz = easel_graph_input (gr, "zeros", EASEL_DTYPE_F32, 4, px->shape, zeros);
  easel_clip_vision_build (v, gr, px, &o);
  easel_clip_vision_build (v, gr, pz, &oz);
  if (easel_graph_error (gr)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s", easel_graph_error (gr)->message);
    return FALSE;
  }
  EaselTensor *all = o.hidden_states[0];
  for (int i = 1; i < o.n_states; i++)
    all = easel_op_concat (gr, all, o.hidden_states[i], 0);
  EaselTensor *last = o.hidden_states[o.n_states - 1], *pen = o.hidden_states[o.n_states - 2];
  EaselTensor *zpen = oz.hidden_states[oz.n_states - 2];
  EaselTensor *outs[] = { o.image_embeds, all, last, pen, zpen };
  const char *names[] = { "image_embeds", "hidden_states", "last_hidden_state", "penultimate_hidden_state",
                          "zeros_input/penultimate_hidden_state" };
  for (guint i = 0; i < G_N_ELEMENTS (outs); i++)
    easel_graph_mark_output (gr, outs[i]);
  backend = easel_golden_new_backend (g, error);
  if (backend == NULL || !easel_backend_compute (backend, gr, error))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (outs) && (error == NULL || *error == NULL); i++) {
    g_autofree char *name = g_strconcat ("image_encoder/", names[i], NULL);
    ok &= easel_golden_adapter_check (g, backend, c, outs[i], name, names[i], atol, rtol, error);
  }
  return ok && (error == NULL || *error == NULL);
}

static gboolean
run_unet (EaselGolden *g, EaselGoldenCase *c, const char *case_name, double atol, double rtol, GError **error)
{
  gboolean plus = g_str_has_prefix (case_name, "ip_unet_plus/");
  g_autofree char *file = g_build_filename (easel_golden_dir (g), "models", "ip_adapter",
                                            plus ? "ip-adapter-plus_sd1_tiny.safetensors" : "ip-adapter_sd1_tiny.safetensors", NULL);
  g_autoptr(EaselCheckpoint) base = NULL, ck = NULL;
  g_autoptr(EaselUnet) unet = NULL;
  g_autoptr(EaselIpAdapter) ad = NULL;
  g_autoptr(EaselGraph) gr = easel_graph_new ();
  g_autoptr(EaselBackend) backend = NULL;
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  EaselIpAdapterHook h1, h06, h0;
  EaselUnetExtras e1 = { 0 }, e06 = { 0 }, e0 = { 0 };
  gboolean ok = TRUE;

  if ((unet = easel_golden_adapter_base_unet (g, &base, error)) == NULL)
    return FALSE;
  if ((ck = easel_checkpoint_open (file, error)) == NULL || (ad = easel_ip_adapter_new (ck, 0, error)) == NULL)
    return FALSE;
  if (easel_ip_adapter_is_plus (ad) != plus) {
    easel_golden_fail (g, "%s: Plus detected %s", file, plus ? "no" : "yes");
    return FALSE;
  }
  g_autofree char *n_e = g_strconcat (case_name, "/image_embeds_input", NULL), *n_x = g_strconcat (case_name, "/sample", NULL);
  g_autofree char *n_t = g_strconcat (case_name, "/timestep", NULL), *n_ctx = g_strconcat (case_name, "/encoder_hidden_states", NULL);
  EaselTensor *emb, *x, *t, *ctx;
  if ((emb = easel_golden_adapter_input (g, gr, c, n_e, keep, error)) == NULL
      || (x = easel_golden_adapter_input (g, gr, c, n_x, keep, error)) == NULL
      || (t = easel_golden_adapter_input (g, gr, c, n_t, keep, error)) == NULL
      || (ctx = easel_golden_adapter_input (g, gr, c, n_ctx, keep, error)) == NULL)
    return FALSE;
  /* the reference keeps diffusers' extra image axis: (B, 1, E) or (B, 1, L, C) */
  gint64 B = emb->shape[0], last = emb->shape[emb->n_dims - 1], rows = easel_tensor_numel (emb) / (B * last);
  const gint64 plain_shape[2] = { B, last }, plus_shape[3] = { B, rows, last };
  emb = plus ? easel_op_reshape (gr, emb, 3, plus_shape) : easel_op_reshape (gr, emb, 2, plain_shape);
  EaselTensor *tokens = easel_ip_adapter_project (ad, gr, emb);
  if (!easel_ip_adapter_attach (ad, unet, tokens, 1.0f, &h1, &e1, error)
      || !easel_ip_adapter_attach (ad, unet, tokens, 0.6f, &h06, &e06, error)
      || !easel_ip_adapter_attach (ad, unet, tokens, 0.0f, &h0, &e0, error))
    return FALSE;
  EaselTensor *y1 = easel_unet_build (unet, gr, x, t, ctx, NULL, NULL, &e1, NULL);
  EaselTensor *y06 = easel_unet_build (unet, gr, x, t, ctx, NULL, NULL, &e06, NULL);
  EaselTensor *y0 = easel_unet_build (unet, gr, x, t, ctx, NULL, NULL, &e0, NULL);
  if (easel_graph_error (gr)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s", easel_graph_error (gr)->message);
    return FALSE;
  }
  EaselTensor *outs[] = { tokens, y1, y06, y0 };
  const char *names[] = { "ip_tokens", "unet_output_scale_1.0", "unet_output_scale_0.6", "unet_output_no_ip_adapter" };
  for (guint i = 0; i < G_N_ELEMENTS (outs); i++)
    easel_graph_mark_output (gr, outs[i]);
  backend = easel_golden_new_backend (g, error);
  if (backend == NULL || !easel_backend_compute (backend, gr, error))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (outs) && (error == NULL || *error == NULL); i++) {
    g_autofree char *name = g_strconcat (case_name, "/", names[i], NULL);
    ok &= easel_golden_adapter_check (g, backend, c, outs[i], name, names[i], atol, rtol, error);
  }
  return ok && (error == NULL || *error == NULL);
}

static gboolean
run_preprocess (EaselGolden *g, EaselGoldenCase *c, const char *case_name, double atol, double rtol, GError **error)
{
  g_autofree char *n_in = g_strconcat (case_name, "/rgb_u8_hwc", NULL);
  g_autofree char *n_out = g_strconcat (case_name, "/pixel_values_CLIPImageProcessor", NULL);
  gint64 shape[4], oshape[4];
  int nd, ond;
  g_autofree float *rgbf = easel_golden_adapter_tensor (g, c, n_in, shape, &nd, error);
  g_autofree float *want = rgbf ? easel_golden_adapter_tensor (g, c, n_out, oshape, &ond, error) : NULL;
  if (want == NULL)
    return FALSE;
  if (nd != 3 || shape[2] != 3 || ond != 4 || oshape[0] != 1 || oshape[1] != 3 || oshape[2] != oshape[3]) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: want an (h, w, 3) image and (1, 3, S, S) pixels",
                 c->name);
    return FALSE;
  }
  const gsize n = shape[0] * shape[1] * 3, S = oshape[2];
  g_autofree guint8 *rgb = g_new (guint8, n);
  for (gsize i = 0; i < n; i++)
    rgb[i] = (guint8) CLAMP (rgbf[i], 0, 255);
  g_autofree float *got = g_new (float, 3 * S * S);
  if (!easel_clip_vision_preprocess (rgb, (gint) shape[1], (gint) shape[0], shape[1] * 3, (gint) S, got, error))
    return FALSE;
  return easel_golden_adapter_check_data (g, c, got, 3 * S * S, n_out, "pixel_values", atol, rtol, error);
}

static gboolean
run (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  const char *case_name = strchr (c->name, '/') ? strchr (c->name, '/') + 1 : c->name;
  double atol, rtol;
  easel_golden_tolerance (c->spec, 1e-4, 0.0, &atol, &rtol);
  if (strcmp (case_name, "image_encoder") == 0)
    return run_encoder (g, c, atol, rtol, error);
  if (g_str_has_prefix (case_name, "preprocess/"))
    return run_preprocess (g, c, case_name, atol, rtol, error);
  return run_unet (g, c, case_name, atol, rtol, error);
}

const EaselGoldenKind easel_golden_kind_ip_adapter = { "ip-adapter", collect, run };
