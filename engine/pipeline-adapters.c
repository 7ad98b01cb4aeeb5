/* engine/pipeline-adapters.c: loading a job's ControlNets, T2I-Adapters and IP-Adapter for the
 * pipeline, the per-job precomputation (hints, T2I features, IP tokens) and the UNet call with
 * the adapters attached (pipeline-adapters.h says which program each convention follows).
 * Host buffers are fp32: hints (3, H, W), features (C_k, h_k, w_k), IP tokens (T, D). */
#include "pipeline-adapters.h"

#include <math.h>
#include <string.h>

#include "canny.h"
#include "clip_vision.h"
#include "controlnet.h"
#include "ip_adapter.h"
#include "t2i_adapter.h"

#define MAX_UNITS 16

typedef struct {
  EaselCheckpoint *ck;
  EaselControlNet *net;         /* weights in ck */
  float *hint;                  /* (3, H, W) */
  EaselControlNetParams params;
} ControlUnit;

struct _EaselAdapters {
  gint64 H, W;                  /* pixels */
  ControlUnit cn[MAX_UNITS];
  int n_cn;
  float *feat[EASEL_T2I_MAX_LEVELS];   /* summed T2I features (C, h, w) */
  gint64 feat_shape[EASEL_T2I_MAX_LEVELS][3];
  int n_feat;
  EaselCheckpoint *ip_ck;
  EaselIpAdapter *ip;
  float *ip_cond, *ip_uncond;   /* (T, D) */
  gint64 ip_T, ip_D;
  float ip_scale;
};

static gboolean G_GNUC_PRINTF (3, 4)
fail (GError **error, EaselError code, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error_literal (error, EASEL_ERROR, code, msg);
  return FALSE;
}

void
easel_adapters_free (EaselAdapters *a)
{
  if (a == NULL)
    return;
  for (int i = 0; i < a->n_cn; i++) {
    easel_controlnet_free (a->cn[i].net);
    easel_checkpoint_free (a->cn[i].ck);
    g_free (a->cn[i].hint);
  }
  for (int k = 0; k < a->n_feat; k++)
    g_free (a->feat[k]);
  easel_ip_adapter_free (a->ip);
  easel_checkpoint_free (a->ip_ck);
  g_free (a->ip_cond);
  g_free (a->ip_uncond);
  g_free (a);
}

/* --- hints ------------------------------------------------------------------------------------ */

float *
easel_adapters_hint (const EaselImage *image, gboolean canny, double low, double high, gint64 W, gint64 H,
                     GError **error)
{
  if (image == NULL || image->channels < 3) {
    fail (error, EASEL_ERROR_INVALID_INPUT, "adapter image: missing or not RGB");
    return NULL;
  }
  const gsize hw = (gsize) H * W;
  g_autofree float *src = g_new (float, 3 * (gsize) image->width * image->height);
  easel_image_to_f32_chw (image, src, 3);
  float *hint = g_new (float, 3 * hw);
  if (image->width != W || image->height != H)
    easel_pipeline_resize (src, 3, image->width, image->height, hint, (int) W, (int) H);
  else
    memcpy (hint, src, 3 * hw * sizeof (float));
  if (!canny)
    return hint;
  g_autofree guint8 *rgb = g_new (guint8, 3 * hw), *edges = g_new (guint8, hw);
  for (gsize i = 0; i < hw; i++)
    for (int c = 0; c < 3; c++)
      rgb[i * 3 + c] = (guint8) lrintf (CLAMP (hint[c * hw + i], 0.0f, 1.0f) * 255.0f);
  if (!easel_canny (rgb, (gint) W, (gint) H, 3, (gsize) W * 3, low, high, FALSE, edges, error)) {
    g_free (hint);
    return NULL;
  }
  for (gsize i = 0; i < hw; i++)
    hint[i] = hint[hw + i] = hint[2 * hw + i] = edges[i] / 255.0f;
  return hint;
}

/* --- loading ---------------------------------------------------------------------------------- */

static gboolean
load_controlnet (EaselAdapters *a, const EaselControlNetUnit *u, EaselUnet *unet, EaselFamily fam,
                 const float *image01, GError **error)
{
  ControlUnit *cu = &a->cn[a->n_cn];
  if (u->model == NULL)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "ControlNet %d: no model file given", a->n_cn + 1);
  if (u->image == NULL && image01 == NULL)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "ControlNet %s: no control image given", u->model);
  if ((cu->ck = easel_checkpoint_open (u->model, error)) == NULL)
    return FALSE;
  a->n_cn++;
  if ((cu->net = easel_controlnet_new (cu->ck, NULL, fam, error)) == NULL
      || !easel_controlnet_check_unet (cu->net, unet, u->model, error))
    return FALSE;
  int f = easel_controlnet_hint_factor (cu->net);
  if (f != 8)
    return fail (error, EASEL_ERROR_UNSUPPORTED, "%s: a hint encoder that downsamples %dx (not 8x) is not supported",
                 u->model, f);
  easel_controlnet_params_init (&cu->params);
  cu->params.conditioning_scale = (float) u->strength;
  cu->params.guidance_start = (float) u->start;
  cu->params.guidance_end = u->end > 0 ? (float) u->end : 1.0f;
  if (u->start < 0 || u->start > 1 || cu->params.guidance_end > 1 || cu->params.guidance_start >= cu->params.guidance_end)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "ControlNet %s: start %g and end %g must satisfy 0 <= start < end <= 1",
                 u->model, u->start, cu->params.guidance_end);
  if (image01)
    cu->hint = g_memdup2 (image01, 3 * a->H * a->W * sizeof (float));
  else if ((cu->hint = easel_adapters_hint (u->image, u->canny, u->canny_low, u->canny_high, a->W, a->H, error)) == NULL)
    return FALSE;
  return TRUE;
}

/* Computes one adapter's features on the image and adds them to a's. */
static gboolean
add_t2i (EaselAdapters *a, const EaselT2IAdapterUnit *u, EaselUnet *unet, EaselBackend *be, const float *image01,
         GError **error)
{
  if (u->model == NULL)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "T2I-Adapter: no model file given");
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (u->model, error);
  if (ck == NULL)
    return FALSE;
  g_autoptr(EaselT2IAdapter) ad = easel_t2i_adapter_new (ck, NULL, error);
  if (ad == NULL)
    return FALSE;
  const EaselUnetConfig *ucfg = easel_unet_config (unet);
  const int n_levels = easel_t2i_adapter_n_levels (ad), f = easel_t2i_adapter_factor (ad);
  if (n_levels > ucfg->n_levels)
    return fail (error, EASEL_ERROR_MISMATCH, "%s: T2I-Adapter of %d levels for a UNet of %d", u->model, n_levels,
                 ucfg->n_levels);
  if (a->H % f || a->W % f)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "%s: the image size %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT
                 " must be a multiple of %d for this T2I-Adapter", u->model, a->W, a->H, f);
  g_autofree float *own = NULL;
  if (image01 == NULL) {
    if (u->image == NULL)
      return fail (error, EASEL_ERROR_INVALID_INPUT, "T2I-Adapter %s: no image given", u->model);
    if ((own = easel_adapters_hint (u->image, FALSE, 0, 0, a->W, a->H, error)) == NULL)
      return FALSE;
    image01 = own;
  }
  g_autoptr(EaselGraph) g = easel_graph_new ();
  const gint64 shape[4] = { 1, 3, a->H, a->W };
  EaselTensor *feats[EASEL_T2I_MAX_LEVELS];
  EaselTensor *im = easel_graph_input (g, "adapter_image", EASEL_DTYPE_F32, 4, shape, image01);
  int n = easel_t2i_adapter_build (ad, g, im, (float) u->strength, feats);
  for (int k = 0; k < n && !easel_graph_error (g); k++)
    easel_graph_mark_output (g, feats[k]);
  if (easel_graph_error (g))
    return fail (error, EASEL_ERROR_INVALID_INPUT, "%s: %s", u->model, easel_graph_error (g)->message);
  if (!easel_backend_compute (be, g, error))
    return FALSE;
  for (int k = 0; k < n; k++) {
    const EaselTensor *t = feats[k];
    const gint64 C = t->shape[1], h = t->shape[2], w = t->shape[3];
    if (C != ucfg->channels[k])
      return fail (error, EASEL_ERROR_MISMATCH, "%s: T2I-Adapter feature %d has %" G_GINT64_FORMAT " channels, the "
                   "UNet's level %d has %" G_GINT64_FORMAT " (an adapter for another model?)", u->model, k, C, k,
                   ucfg->channels[k]);
    g_autofree float *v = g_new (float, C * h * w);
    if (!easel_backend_read (be, t, v, error))
      return FALSE;
    if (k < a->n_feat) {
      if (a->feat_shape[k][0] != C || a->feat_shape[k][1] != h || a->feat_shape[k][2] != w)
        return fail (error, EASEL_ERROR_MISMATCH, "%s: its features do not match the other T2I-Adapter's", u->model);
      for (gint64 i = 0; i < C * h * w; i++)
        a->feat[k][i] += v[i];
    } else {
      a->feat[k] = g_steal_pointer (&v);
      a->feat_shape[k][0] = C, a->feat_shape[k][1] = h, a->feat_shape[k][2] = w;
      a->n_feat = k + 1;
    }
  }
  return TRUE;
}

/* The image encoder folder of an IP-Adapter file: given, else image_encoder/ beside it or in its
 * parent folder. transfer full. */
static char *
find_image_encoder (const EaselIpAdapterUnit *u, GError **error)
{
  if (u->image_encoder)
    return g_strdup (u->image_encoder);
  g_autofree char *dir = g_path_get_dirname (u->model);
  g_autofree char *parent = g_path_get_dirname (dir);
  const char *const dirs[] = { dir, parent };
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++) {
    char *p = g_build_filename (dirs[i], "image_encoder", NULL);
    if (g_file_test (p, G_FILE_TEST_IS_DIR))
      return p;
    g_free (p);
  }
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no image_encoder/ folder beside it or above it; give "
               "the CLIP image encoder's folder", u->model);
  return NULL;
}

/* The image encoder on pixels (n, 3, S, S): image_embeds (n, P), or for Plus the penultimate
 * hidden state (n, L, C). transfer full. */
static float *
encode_images (EaselClipVision *enc, EaselBackend *be, const float *pixels, gint64 n, gboolean penultimate,
               gint64 *shape, int *n_dims, GError **error)
{
  const gint64 S = easel_clip_vision_config (enc)->image_size, px_shape[4] = { n, 3, S, S };
  g_autoptr(EaselGraph) g = easel_graph_new ();
  EaselTensor *px = easel_graph_input (g, "pixel_values", EASEL_DTYPE_F32, 4, px_shape, pixels);
  EaselClipVisionOutputs o;
  easel_clip_vision_build (enc, g, px, &o);
  if (easel_graph_error (g)) {
    fail (error, EASEL_ERROR_INVALID_INPUT, "%s", easel_graph_error (g)->message);
    return NULL;
  }
  if (penultimate && o.n_states < 2) {
    fail (error, EASEL_ERROR_INVALID_INPUT, "the image encoder has no penultimate layer");
    return NULL;
  }
  EaselTensor *y = penultimate ? o.hidden_states[o.n_states - 2] : o.image_embeds;
  easel_graph_mark_output (g, y);
  *n_dims = y->n_dims;
  memcpy (shape, y->shape, y->n_dims * sizeof (gint64));
  float *out = g_new (float, easel_tensor_numel (y));
  if (!easel_backend_compute (be, g, error) || !easel_backend_read (be, y, out, error))
    g_clear_pointer (&out, g_free);
  return out;
}

/* The adapter's projection of embeddings emb (shape, n_dims) -> tokens (n, T, D). transfer full. */
static float *
project (EaselIpAdapter *ip, EaselBackend *be, const float *emb, const gint64 *shape, int n_dims, gint64 *T,
         gint64 *D, GError **error)
{
  g_autoptr(EaselGraph) g = easel_graph_new ();
  EaselTensor *x = easel_graph_input (g, "embeds", EASEL_DTYPE_F32, n_dims, shape, emb);
  EaselTensor *y = easel_ip_adapter_project (ip, g, x);
  if (easel_graph_error (g)) {
    fail (error, EASEL_ERROR_MISMATCH, "%s", easel_graph_error (g)->message);
    return NULL;
  }
  easel_graph_mark_output (g, y);
  *T = y->shape[1], *D = y->shape[2];
  float *out = g_new (float, easel_tensor_numel (y));
  if (!easel_backend_compute (be, g, error) || !easel_backend_read (be, y, out, error))
    g_clear_pointer (&out, g_free);
  return out;
}

static gboolean
load_ip (EaselAdapters *a, const EaselIpAdapterUnit *u, EaselUnet *unet, EaselBackend *be, GError **error)
{
  if (u->model == NULL || u->n_images < 1 || u->images == NULL)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "IP-Adapter: needs a model file and at least one image");
  if ((a->ip_ck = easel_checkpoint_open (u->model, error)) == NULL
      || (a->ip = easel_ip_adapter_new (a->ip_ck, 0, error)) == NULL)
    return FALSE;
  g_autofree char *enc_dir = find_image_encoder (u, error);
  if (enc_dir == NULL)
    return FALSE;
  g_autoptr(EaselCheckpoint) enc_ck = easel_checkpoint_open (enc_dir, error);
  if (enc_ck == NULL)
    return FALSE;
  g_autoptr(EaselClipVision) enc = easel_clip_vision_new (enc_ck, NULL, error);
  if (enc == NULL)
    return FALSE;
  const gint64 S = easel_clip_vision_config (enc)->image_size, n = u->n_images, plane = 3 * S * S;
  g_autofree float *pixels = g_new (float, n * plane);
  g_autofree float *zeros = g_new0 (float, n * plane);
  for (gint64 i = 0; i < n; i++) {
    const EaselImage *im = u->images[i];
    if (im == NULL || im->channels < 3)
      return fail (error, EASEL_ERROR_INVALID_INPUT, "IP-Adapter image %" G_GINT64_FORMAT ": missing or not RGB", i + 1);
    g_autofree guint8 *rgb = g_new (guint8, (gsize) im->width * im->height * 3);
    for (gsize k = 0; k < (gsize) im->width * im->height; k++)
      memcpy (rgb + 3 * k, im->pixels + k * im->channels, 3);
    if (!easel_clip_vision_preprocess (rgb, im->width, im->height, (gsize) im->width * 3, (gint) S, pixels + i * plane,
                                       error))
      return FALSE;
  }
  /* the encoder's embeddings of the images (and, for Plus, of all-zero images), then their
   * projections; each in a graph of its own */
  const gboolean plus = easel_ip_adapter_is_plus (a->ip);
  gint64 eshape[3];
  int e_dims;
  g_autofree float *emb = encode_images (enc, be, pixels, n, plus, eshape, &e_dims, error);
  g_autofree float *emb_u = emb == NULL ? NULL : plus ? encode_images (enc, be, zeros, n, TRUE, eshape, &e_dims, error)
                                                     : g_new0 (float, eshape[0] * eshape[1]);
  if (emb_u == NULL) {
    g_prefix_error (error, "%s: ", enc_dir);
    return FALSE;
  }
  gint64 T;
  if ((a->ip_cond = project (a->ip, be, emb, eshape, e_dims, &T, &a->ip_D, error)) == NULL
      || (a->ip_uncond = project (a->ip, be, emb_u, eshape, e_dims, &T, &a->ip_D, error)) == NULL) {
    g_prefix_error (error, "%s with the image encoder %s: ", u->model, enc_dir);
    return FALSE;
  }
  /* (n, T, D) row-major is the images' tokens one after another: (n · T, D) */
  a->ip_T = n * T;
  a->ip_scale = (float) u->scale;
  /* the attachment checks the adapter against the UNet's cross-attentions now, not at step 1 */
  EaselIpAdapterHook hook;
  EaselUnetExtras extras = { 0 };
  g_autoptr(EaselGraph) probe = easel_graph_new ();
  const gint64 ts[3] = { 1, a->ip_T, a->ip_D };
  EaselTensor *tok = easel_graph_input (probe, "ip_tokens", EASEL_DTYPE_F32, 3, ts, a->ip_cond);
  if (!easel_ip_adapter_attach (a->ip, unet, tok, a->ip_scale, &hook, &extras, error))
    return FALSE;
  if (a->ip_D != easel_unet_config (unet)->context_dim)
    return fail (error, EASEL_ERROR_MISMATCH, "%s: ip tokens of width %" G_GINT64_FORMAT ", the UNet attends to %"
                 G_GINT64_FORMAT " (an adapter for another model?)", u->model, a->ip_D,
                 easel_unet_config (unet)->context_dim);
  return TRUE;
}

EaselAdapters *
easel_adapters_new (const EaselJobParams *job, EaselUnet *unet, EaselFamily fam, EaselBackend *be, gint64 H,
                    gint64 W, const float *const *cn_images01, const float *const *t2i_images01, GError **error)
{
  if (job->n_controlnets <= 0 && job->n_t2i_adapters <= 0 && job->ip_adapter == NULL)
    return NULL;
  if (job->n_controlnets > MAX_UNITS || job->n_t2i_adapters > MAX_UNITS
      || (job->n_controlnets > 0 && job->controlnets == NULL) || (job->n_t2i_adapters > 0 && job->t2i_adapters == NULL)) {
    fail (error, EASEL_ERROR_INVALID_INPUT, "at most %d ControlNets and %d T2I-Adapters, each with its settings",
          MAX_UNITS, MAX_UNITS);
    return NULL;
  }
  g_autoptr(EaselAdapters) a = g_new0 (EaselAdapters, 1);
  a->H = H, a->W = W;
  for (int i = 0; i < job->n_controlnets; i++)
    if (!load_controlnet (a, &job->controlnets[i], unet, fam, cn_images01 ? cn_images01[i] : NULL, error))
      return NULL;
  for (int i = 0; i < job->n_t2i_adapters; i++)
    if (!add_t2i (a, &job->t2i_adapters[i], unet, be, t2i_images01 ? t2i_images01[i] : NULL, error))
      return NULL;
  if (job->ip_adapter && !load_ip (a, job->ip_adapter, unet, be, error))
    return NULL;
  return g_steal_pointer (&a);
}

/* --- the UNet call ---------------------------------------------------------------------------- */

/* A graph input of B copies of `one` (n values each); the buffer goes to keep. */
static EaselTensor *
repeat_input (EaselGraph *g, GPtrArray *keep, const char *name, const float *one, gsize n, gint64 B, int n_dims,
              const gint64 *shape)
{
  float *buf = g_new (float, B * n);
  for (gint64 b = 0; b < B; b++)
    memcpy (buf + b * n, one, n * sizeof (float));
  g_ptr_array_add (keep, buf);
  return easel_graph_input (g, name, EASEL_DTYPE_F32, n_dims, shape, buf);
}

gboolean
easel_adapters_unet_forward (EaselAdapters *a, EaselUnet *u, EaselBackend *be, const float *sample, gint64 B, gint64 h,
                             gint64 w, const float *timestep, const float *context, gint64 L, const float *pooled,
                             gint64 P, const float *time_ids, gint64 n_ids, const gboolean *uncond, int step,
                             int n_steps, float *out, GError **error)
{
  const EaselUnetConfig *cfg = easel_unet_config (u);
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  const gint64 s_shape[4] = { B, cfg->in_channels, h, w }, t_shape[1] = { B }, c_shape[3] = { B, L, cfg->context_dim };
  const gint64 p_shape[2] = { B, P }, i_shape[2] = { B, n_ids };
  EaselTensor *x = easel_graph_input (g, "sample", EASEL_DTYPE_F32, 4, s_shape, sample);
  EaselTensor *t = easel_graph_input (g, "timestep", EASEL_DTYPE_F32, 1, t_shape, timestep);
  EaselTensor *ctx = easel_graph_input (g, "context", EASEL_DTYPE_F32, 3, c_shape, context);
  EaselTensor *pool = NULL, *ids = NULL;
  if (cfg->adm_in > 0) {
    pool = easel_graph_input (g, "pooled", EASEL_DTYPE_F32, 2, p_shape, pooled);
    ids = easel_graph_input (g, "time_ids", EASEL_DTYPE_F32, 2, i_shape, time_ids);
  }
  EaselUnetExtras extras = { 0 };

  /* ControlNets acting at this step: residuals summed */
  EaselTensor *down[EASEL_CONTROLNET_MAX_RESIDUALS], *mid = NULL;
  int n_down = 0;
  for (int i = 0; i < a->n_cn; i++) {
    ControlUnit *cu = &a->cn[i];
    if (!easel_controlnet_params_active (&cu->params, step, n_steps))
      continue;
    const gint64 hs[4] = { B, 3, a->H, a->W };
    EaselTensor *hint = repeat_input (g, keep, "hint", cu->hint, 3 * a->H * a->W, B, 4, hs);
    EaselControlNetOutputs o;
    easel_controlnet_build (cu->net, g, x, t, ctx, pool, ids, hint, cu->params.conditioning_scale, &o);
    if (easel_graph_error (g))
      break;
    for (int k = 0; k < o.n_down; k++)
      down[k] = n_down ? easel_op_add (g, down[k], o.down[k]) : o.down[k];
    mid = mid ? easel_op_add (g, mid, o.mid) : o.mid;
    n_down = o.n_down;
  }
  if (n_down) {
    extras.down_residuals = down;
    extras.n_down_residuals = n_down;
    extras.mid_residual = mid;
  }

  /* T2I features, the same for every row */
  EaselTensor *adds[EASEL_T2I_MAX_LEVELS];
  for (int k = 0; k < a->n_feat; k++) {
    const gint64 fs[4] = { B, a->feat_shape[k][0], a->feat_shape[k][1], a->feat_shape[k][2] };
    adds[k] = repeat_input (g, keep, "t2i_feature", a->feat[k], fs[1] * fs[2] * fs[3], B, 4, fs);
  }
  extras.down_block_additions = a->n_feat ? adds : NULL;
  extras.n_down_block_additions = a->n_feat;

  /* IP tokens: cond rows their images', uncond rows the negative's */
  EaselIpAdapterHook hook;
  if (a->ip) {
    const gsize n = a->ip_T * a->ip_D;
    float *buf = g_new (float, B * n);
    for (gint64 b = 0; b < B; b++)
      memcpy (buf + b * n, uncond && uncond[b] ? a->ip_uncond : a->ip_cond, n * sizeof (float));
    g_ptr_array_add (keep, buf);
    const gint64 ts[3] = { B, a->ip_T, a->ip_D };
    EaselTensor *tok = easel_graph_input (g, "ip_tokens", EASEL_DTYPE_F32, 3, ts, buf);
    if (!easel_ip_adapter_attach (a->ip, u, tok, a->ip_scale, &hook, &extras, error))
      return FALSE;
  }

  EaselTensor *y = easel_graph_error (g) ? NULL : easel_unet_build (u, g, x, t, ctx, pool, ids, &extras, NULL);
  if (easel_graph_error (g))
    return fail (error, EASEL_ERROR_INVALID_INPUT, "UNet with adapters: %s", easel_graph_error (g)->message);
  easel_graph_mark_output (g, y);
  return easel_backend_compute (be, g, error) && easel_backend_read (be, y, out, error);
}
