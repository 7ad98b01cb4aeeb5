/* engine/pipeline.c: a job from prompt to images (pipeline.h says which program each convention
 * follows). Layout: image helpers; diffusers' schedules; conditioning (prompt -> A1111 chunks ->
 * CLIP(s) -> weights -> concatenation); the denoiser the samplers call (UNet per call, CFG,
 * inpaint masking); the run (init image and mask, noise, stages base + refiner, decoding,
 * compositing, parameters). Latents are (B, 4, h, w) fp32 on the host. */
#include "pipeline.h"

#include <math.h>
#include <string.h>

#include "conditioning.h"
#include "engine-private.h"
#include "networks.h"
#include "pipeline-adapters.h"
#include "prompt.h"
#include "sampling/noise.h"
#include "sampling/request.h"

#define LATENT_CHANNELS 4
#define MAX_SIDE 8192
#define MAX_BATCH 64
#define MAX_BATCH_COUNT 10000

/* --- image helpers ------------------------------------------------------------------------------ */

void
easel_pipeline_blur (float *plane, int w, int h, double radius)
{
  if (radius <= 0 || w < 1 || h < 1)
    return;
  int r = (int) lround (2.5 * radius);
  if (r < 1)
    r = 1;
  g_autofree float *k = g_new (float, 2 * r + 1);
  double sum = 0;
  for (int i = -r; i <= r; i++)
    sum += k[i + r] = (float) exp (-(double) i * i / (2 * radius * radius));
  for (int i = 0; i <= 2 * r; i++)
    k[i] = (float) (k[i] / sum);
  g_autofree float *tmp = g_new (float, (gsize) w * h);
  for (int y = 0; y < h; y++) /* rows -> tmp */
    for (int x = 0; x < w; x++) {
      float acc = 0;
      for (int i = -r; i <= r; i++)
        acc += k[i + r] * plane[(gsize) y * w + CLAMP (x + i, 0, w - 1)];
      tmp[(gsize) y * w + x] = acc;
    }
  for (int y = 0; y < h; y++) /* columns -> plane */
    for (int x = 0; x < w; x++) {
      float acc = 0;
      for (int i = -r; i <= r; i++)
        acc += k[i + r] * tmp[(gsize) CLAMP (y + i, 0, h - 1) * w + x];
      plane[(gsize) y * w + x] = acc;
    }
}

void
easel_pipeline_resize (const float *src, int c, int sw, int sh, float *dst, int dw, int dh)
{
  for (int ch = 0; ch < c; ch++) {
    const float *s = src + (gsize) ch * sw * sh;
    float *d = dst + (gsize) ch * dw * dh;
    for (int y = 0; y < dh; y++) {
      double fy = CLAMP ((y + 0.5) * sh / dh - 0.5, 0, sh - 1);
      int y0 = (int) fy, y1 = MIN (y0 + 1, sh - 1);
      double ty = fy - y0;
      for (int x = 0; x < dw; x++) {
        double fx = CLAMP ((x + 0.5) * sw / dw - 0.5, 0, sw - 1);
        int x0 = (int) fx, x1 = MIN (x0 + 1, sw - 1);
        double tx = fx - x0;
        double top = s[(gsize) y0 * sw + x0] * (1 - tx) + s[(gsize) y0 * sw + x1] * tx;
        double bot = s[(gsize) y1 * sw + x0] * (1 - tx) + s[(gsize) y1 * sw + x1] * tx;
        d[(gsize) y * dw + x] = (float) (top * (1 - ty) + bot * ty);
      }
    }
  }
}

gboolean
easel_pipeline_crop_region (const float *mask, int w, int h, int padding, int tw, int th, int *x0, int *y0, int *x1,
                            int *y1)
{
  int l = w, t = h, r = -1, b = -1;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      if (mask[(gsize) y * w + x] > 0) {
        l = MIN (l, x), r = MAX (r, x), t = MIN (t, y), b = MAX (b, y);
      }
  if (r < 0)
    return FALSE;
  /* bounding box [l, r+1) x [t, b+1), grown by padding and clamped (A1111 get_crop_region) */
  l = MAX (l - padding, 0), t = MAX (t - padding, 0);
  r = MIN (r + 1 + padding, w), b = MIN (b + 1 + padding, h);
  /* grown to the processing aspect tw/th, centred, within the image (A1111 expand_crop_region) */
  double ratio = (double) tw / th;
  int cw = r - l, chh = b - t;
  if ((double) cw / chh < ratio) {
    int want = MIN ((int) ceil (chh * ratio), w), add = want - cw;
    l -= add / 2, r += add - add / 2;
    if (l < 0)
      r -= l, l = 0;
    if (r > w)
      l -= r - w, r = w;
  } else {
    int want = MIN ((int) ceil (cw / ratio), h), add = want - chh;
    t -= add / 2, b += add - add / 2;
    if (t < 0)
      b -= t, t = 0;
    if (b > h)
      t -= b - h, b = h;
  }
  *x0 = MAX (l, 0), *y0 = MAX (t, 0), *x1 = r, *y1 = b;
  return TRUE;
}

/* --- diffusers' schedules --------------------------------------------------------------------- */

gboolean
easel_pipeline_diffusers_sigmas (const EaselModelSampling *ms, EaselDiffusersSchedule kind, guint steps, float *out,
                                 guint *timesteps, GError **error)
{
  const guint T = easel_model_sampling_n_timesteps (ms);
  const guint div = kind == EASEL_DIFFUSERS_DPM ? steps + 1 : steps;
  if (steps < 1 || steps > T || T / div < 1) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "diffusers schedule: %u steps do not fit %u timesteps",
                 steps, T);
    return FALSE;
  }
  /* diffusers computes its sigmas in float32 from float32 alphas_cumprod: A1111's table */
  const float *table = easel_model_sampling_kdiffusion_sigmas (ms);
  const guint ratio = T / div;
  for (guint i = 0; i < steps; i++) {
    guint t = (steps - 1 - i) * ratio + 1;   /* leading spacing, steps_offset 1, descending */
    if (kind == EASEL_DIFFUSERS_DPM)
      t = (steps - i) * ratio + 1;           /* (arange (steps + 1) * ratio)[::-1][:-1] + 1 */
    t = MIN (t, T - 1);
    if (timesteps)
      timesteps[i] = t;
    out[i] = table[t];
  }
  out[steps] = kind == EASEL_DIFFUSERS_DDIM ? table[0] : 0.0f;   /* DDIM: final alpha = alphas_cumprod[0] */
  return TRUE;
}

/* --- conditioning --------------------------------------------------------------------------- */

typedef struct {
  float *context;      /* (tokens, width) */
  gint64 tokens, width;
  float *pooled;       /* (pooled_dim), or NULL */
  gint64 pooled_dim;
} Cond;

static void
cond_clear (Cond *c)
{
  g_clear_pointer (&c->context, g_free);
  g_clear_pointer (&c->pooled, g_free);
}

/* Runs one encoder over every chunk (a batch of n_chunks): hidden (n, 77, C), text_embeds (n, P) when
 * asked. repad: A1111's padding of a second tokenizer (ids after the first EOS become 0). */
static gboolean
encode_chunks (EaselClip *clip, EaselBackend *be, const GArray *chunks, gboolean repad, gint32 eos,
               const EaselClipRequest *rq, float **hidden, float **text_embeds, GError **error)
{
  const EaselClipConfig *cfg = easel_clip_config (clip);
  const gint64 n = chunks->len;
  g_autofree gint32 *ids = g_new (gint32, n * EASEL_CLIP_CONTEXT);
  for (gint64 i = 0; i < n; i++) {
    EaselPromptChunk ch = g_array_index (chunks, EaselPromptChunk, i);
    if (repad)
      easel_prompt_chunk_repad (&ch, eos, 0);
    memcpy (ids + i * EASEL_CLIP_CONTEXT, ch.ids, sizeof ch.ids);
  }
  g_autofree float *pooled = rq->pooled ? g_new (float, n * cfg->width) : NULL;
  *hidden = g_new (float, n * EASEL_CLIP_CONTEXT * cfg->width);
  if (text_embeds)
    *text_embeds = rq->text_embeds ? g_new (float, n * MAX (cfg->projection, 1)) : NULL;
  if (!easel_clip_encode (clip, be, ids, n, EASEL_CLIP_CONTEXT, rq, *hidden, pooled,
                          text_embeds ? *text_embeds : NULL, error)) {
    g_clear_pointer (hidden, g_free);
    if (text_embeds)
      g_clear_pointer (text_embeds, g_free);
    return FALSE;
  }
  return TRUE;
}

static gboolean
clip_request (EaselClip *clip, int base_skip, int clip_skip, gboolean final_ln, gboolean text_embeds,
              EaselClipRequest *rq, GError **error)
{
  const EaselClipConfig *cfg = easel_clip_config (clip);
  int skip = base_skip + MAX (clip_skip, 1) - 1;
  if (skip >= cfg->n_layers) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "clip skip %d: the text encoder has only %d layers",
                 clip_skip, cfg->n_layers);
    return FALSE;
  }
  *rq = (EaselClipRequest) { .skip = skip, .final_ln = final_ln, .pooled = FALSE, .text_embeds = text_embeds };
  return TRUE;
}

/* text -> A1111's chunks; with nets (may be NULL), the job's embeddings in place (networks.h). */
static GArray *
prompt_chunks (EaselTokenizer *tok, EaselJobNetworks *nets, const char *text, GError **error)
{
  if (nets)
    return easel_job_networks_chunks (nets, tok, text, error);
  g_autoptr(GArray) segs = easel_prompt_parse_a1111 (text ? text : "", -1, error);
  return segs ? easel_prompt_chunks_a1111 (tok, segs, 20, error) : NULL;
}

/* text -> the UNet's conditioning for a model of family fam; zero: diffusers' all-zero uncond. */
static gboolean
encode_prompt (EaselModel *tm, EaselBackend *be, EaselFamily fam, EaselJobNetworks *nets, const char *text,
               int clip_skip, Cond *out, GError **error)
{
  EaselTokenizer *tok = easel_model_tokenizer (tm, error);
  if (tok == NULL)
    return FALSE;
  g_autoptr(GArray) chunks = prompt_chunks (tok, nets, text, error);
  if (chunks == NULL)
    return FALSE;
  const gint64 n = chunks->len, T = n * EASEL_CLIP_CONTEXT;
  const gint32 eos = easel_tokenizer_eos (tok);
  gboolean sdxl = fam == EASEL_FAMILY_SDXL || fam == EASEL_FAMILY_SDXL_INPAINT;
  gboolean refiner = fam == EASEL_FAMILY_SDXL_REFINER;
  EaselClipRequest rq;
  g_autofree float *h1 = NULL, *h2 = NULL, *te = NULL;

  if (refiner) {
    EaselClip *c2 = easel_model_clip (tm, 1, error);
    if (c2 == NULL || !clip_request (c2, 1, clip_skip, FALSE, TRUE, &rq, error)
        || !encode_chunks (c2, be, chunks, TRUE, eos, &rq, &h2, &te, error))
      return FALSE;
    out->width = easel_clip_config (c2)->width;
    out->pooled_dim = easel_clip_config (c2)->projection;
    out->context = g_steal_pointer (&h2);
    out->pooled = g_memdup2 (te, out->pooled_dim * sizeof (float));   /* the first chunk's */
  } else if (sdxl) {
    EaselClip *c1 = easel_model_clip (tm, 0, error), *c2 = c1 ? easel_model_clip (tm, 1, error) : NULL;
    if (c2 == NULL || !clip_request (c1, 1, clip_skip, FALSE, FALSE, &rq, error)
        || !encode_chunks (c1, be, chunks, FALSE, eos, &rq, &h1, NULL, error)
        || !clip_request (c2, 1, clip_skip, FALSE, TRUE, &rq, error)
        || !encode_chunks (c2, be, chunks, TRUE, eos, &rq, &h2, &te, error))
      return FALSE;
    gint64 w1 = easel_clip_config (c1)->width, w2 = easel_clip_config (c2)->width;
    out->width = w1 + w2;
    out->pooled_dim = easel_clip_config (c2)->projection;
    out->context = g_new (float, T * out->width);
    out->pooled = g_new (float, out->pooled_dim);
    easel_cond_sdxl (out->context, out->pooled, h1, w1, h2, w2, 1, T, te, n, out->pooled_dim);
  } else {
    EaselClip *c1 = easel_model_clip (tm, 0, error);
    if (c1 == NULL)
      return FALSE;
    gboolean sd2 = fam == EASEL_FAMILY_SD2 || fam == EASEL_FAMILY_SD2_INPAINT;
    /* SD 2.x: ldm's penultimate layer; a 24-layer single file still holds the unused last one */
    int base = sd2 && easel_clip_config (c1)->n_layers == 24 ? 1 : 0;
    if (!clip_request (c1, base, clip_skip, TRUE, FALSE, &rq, error)
        || !encode_chunks (c1, be, chunks, sd2, eos, &rq, &h1, NULL, error))
      return FALSE;
    out->width = easel_clip_config (c1)->width;
    out->context = g_steal_pointer (&h1);
  }
  out->tokens = T;
  float w[EASEL_CLIP_CONTEXT];
  for (gint64 c = 0; c < n; c++) {
    const EaselPromptChunk *ch = &g_array_index (chunks, EaselPromptChunk, c);
    for (int i = 0; i < EASEL_CLIP_CONTEXT; i++)
      w[i] = (float) ch->weights[i];
    easel_cond_apply_weights (out->context + c * EASEL_CLIP_CONTEXT * out->width, EASEL_CLIP_CONTEXT, out->width, w);
  }
  return TRUE;
}

static void
cond_zeros_like (const Cond *c, Cond *out)
{
  *out = *c;
  out->context = g_new0 (float, c->tokens * c->width);
  out->pooled = c->pooled ? g_new0 (float, c->pooled_dim) : NULL;
}

/* --- the run's state and the denoiser ------------------------------------------------------- */

typedef struct {
  EaselProgressFunc progress;
  gpointer user_data;
  GCancellable *cancellable;
  gboolean stop;                 /* the progress callback asked to stop */
  gint64 start_us;
  guint done, total;             /* steps over the whole job */
  int image_index;
  EaselFamily family;            /* for the preview colours */
  EaselImage *preview;           /* (h, w, 3) */
  EaselLatentFunc on_latent;
  gpointer on_latent_data;
  guint step_offset;             /* the stage's first step within the schedule */
  const float *stage_sigmas;
  gsize n;                       /* latent values of the batch */
} Run;

static gboolean
check_cancel (Run *run, GError **error)
{
  if (run->stop || g_cancellable_is_cancelled (run->cancellable)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_CANCELLED, "cancelled");
    return FALSE;
  }
  return TRUE;
}

static void
notify (Run *run, GPtrArray *messages, const char *text)
{
  g_ptr_array_add (messages, g_strdup (text));
  if (run->progress) {
    EaselProgress p = { .image_index = run->image_index, .total_steps = (int) run->total, .message = text };
    if (!run->progress (&p, run->user_data))
      run->stop = TRUE;
  }
}

typedef struct {
  Run *run;
  EaselBackend *be;
  EaselUnet *unet;
  const EaselModelSampling *ms;
  gint64 B, h, w;
  gsize n_img;                   /* 4·h·w */
  gint64 cin;                    /* UNet input channels: 4, or 9 with extra */
  const Cond *cond, *uncond;
  const float *ids_cond, *ids_uncond;   /* (n_ids) SDXL time ids, or NULL */
  gint64 n_ids;
  double cfg;
  gboolean need_uncond;
  gboolean kdiff_t;
  const float *extra;            /* (B, cin - 4, h, w): 9-channel inpainting's mask + masked latents */
  const float *blend_mask;       /* (B, 1, h, w) ordinary inpainting: 1 = sample, 0 = keep */
  const float *blend_latent;     /* (B, 4, h, w) */
  const float *blend_noise;      /* (B, 4, h, w) */
  float *x_in, *den_c, *den_u;
  /* adapters (pipeline-adapters.h): NULL for none; the sampler's step of n_steps */
  EaselAdapters *adapters;
  int step, n_steps;
} Denoiser;

/* The UNet call with the job's adapters: which rows are unconditional, and the step. */
static gboolean
adapters_unet_call (Denoiser *d, const Cond *const *conds, gint64 nb, const float *sample, const float *ts,
                    const float *ctx, gint64 L, const float *pooled, gint64 P, const float *tid, float *out,
                    GError **error)
{
  g_autofree gboolean *uncond = g_new (gboolean, nb);
  for (gint64 j = 0; j < nb; j++)
    uncond[j] = conds[j] == d->uncond;
  return easel_adapters_unet_forward (d->adapters, d->unet, d->be, sample, nb, d->h, d->w, ts, ctx, L, pooled, P, tid,
                                      d->n_ids, uncond, d->step, d->n_steps, out, error);
}

/* One UNet batch: entries j < nb, image j % B, conditioning conds[j] (all the same token count). */
static gboolean
unet_call (Denoiser *d, const float *x, double sigma, const Cond *const *conds, const float *const *ids, gint64 nb,
           float *out, GError **error)
{
  const gint64 hw = d->h * d->w, L = conds[0]->tokens, C = conds[0]->width, P = conds[0]->pooled_dim;
  const float c_in = (float) easel_model_sampling_c_in (d->ms, sigma);
  g_autofree float *sample = g_new (float, nb * d->cin * hw);
  g_autofree float *ctx = g_new (float, nb * L * C);
  g_autofree float *pooled = P ? g_new (float, nb * P) : NULL;
  g_autofree float *tid = d->n_ids ? g_new (float, nb * d->n_ids) : NULL;
  g_autofree float *ts = g_new (float, nb);
  float t = d->kdiff_t ? easel_model_sampling_sigma_to_t_kdiffusion (d->ms, (float) sigma, FALSE)
                       : (float) easel_model_sampling_timestep (d->ms, (float) sigma);
  for (gint64 j = 0; j < nb; j++) {
    gint64 b = j % d->B;
    float *s = sample + j * d->cin * hw;
    for (gsize i = 0; i < d->n_img; i++)
      s[i] = x[b * d->n_img + i] * c_in;
    if (d->extra)
      memcpy (s + d->n_img, d->extra + b * (d->cin - LATENT_CHANNELS) * hw,
              (d->cin - LATENT_CHANNELS) * hw * sizeof (float));
    memcpy (ctx + j * L * C, conds[j]->context, L * C * sizeof (float));
    if (P)
      memcpy (pooled + j * P, conds[j]->pooled, P * sizeof (float));
    if (d->n_ids)
      memcpy (tid + j * d->n_ids, ids[j], d->n_ids * sizeof (float));
    ts[j] = t;
  }
  if (d->adapters)
    return adapters_unet_call (d, conds, nb, sample, ts, ctx, L, pooled, P, tid, out, error);
  return easel_unet_forward (d->unet, d->be, sample, nb, d->h, d->w, ts, ctx, L, pooled, P, tid, d->n_ids, out, error);
}

static void
blend_keep (const Denoiser *d, float *v)
{
  const gint64 hw = d->h * d->w;
  for (gint64 b = 0; b < d->B; b++)
    for (gint64 c = 0; c < LATENT_CHANNELS; c++)
      for (gint64 i = 0; i < hw; i++) {
        gsize k = (b * LATENT_CHANNELS + c) * hw + i;
        float m = d->blend_mask[b * hw + i];
        v[k] = v[k] * m + d->blend_latent[k] * (1 - m);
      }
}

static gboolean
denoise_cb (gpointer user_data, const float *x, double sigma, guint step, float *out_denoised, float *out_uncond,
            GError **error)
{
  Denoiser *d = user_data;
  const gsize n = d->B * d->n_img;
  if (!check_cancel (d->run, error))
    return FALSE;
  d->step = (int) step;
  const float *xin = x;
  if (d->blend_mask) {
    /* outside the mask the model sees the init latent re-noised to this sigma */
    const gint64 hw = d->h * d->w;
    for (gsize k = 0; k < n; k++) {
      float m = d->blend_mask[(k / d->n_img) * hw + k % hw];
      d->x_in[k] = x[k] * m + (d->blend_latent[k] + d->blend_noise[k] * (float) sigma) * (1 - m);
    }
    xin = d->x_in;
  }
  const gint64 B = d->B;
  g_autofree const Cond **conds = g_new (const Cond *, 2 * B);
  g_autofree const float **ids = g_new (const float *, 2 * B);
  g_autofree float *raw = g_new (float, 2 * n);
  gboolean uncond = d->need_uncond || (out_uncond != NULL && d->cfg != 1.0);
  if (uncond && d->uncond->tokens == d->cond->tokens) {
    for (gint64 j = 0; j < 2 * B; j++) {
      conds[j] = j < B ? d->uncond : d->cond;
      ids[j] = j < B ? d->ids_uncond : d->ids_cond;
    }
    if (!unet_call (d, xin, sigma, conds, ids, 2 * B, raw, error))
      return FALSE;
  } else {
    for (gint64 j = 0; j < B; j++)
      conds[j] = d->cond, ids[j] = d->ids_cond;
    if (!unet_call (d, xin, sigma, conds, ids, B, raw + n, error))
      return FALSE;
    if (uncond) {
      for (gint64 j = 0; j < B; j++)
        conds[j] = d->uncond, ids[j] = d->ids_uncond;
      if (!unet_call (d, xin, sigma, conds, ids, B, raw, error))
        return FALSE;
    }
  }
  easel_model_sampling_denoised (d->ms, sigma, xin, raw + n, d->den_c, n);
  if (d->blend_mask)
    blend_keep (d, d->den_c);
  if (uncond) {
    easel_model_sampling_denoised (d->ms, sigma, xin, raw, d->den_u, n);
    if (d->blend_mask)
      blend_keep (d, d->den_u);
    easel_sampling_cfg (out_denoised, d->den_c, d->den_u, d->cfg, n);
  } else {
    memcpy (out_denoised, d->den_c, n * sizeof (float));
  }
  if (out_uncond)
    memcpy (out_uncond, uncond ? d->den_u : d->den_c, n * sizeof (float));
  return TRUE;
}

static void
step_cb (gpointer user_data, guint step, guint n_steps, const float *x, const float *denoised)
{
  Denoiser *d = user_data;
  Run *run = d->run;
  /* x is the latent at sigma[step]: the result of the step before */
  if (run->on_latent && step > 0)
    run->on_latent (run->on_latent_data, run->step_offset + step - 1, run->stage_sigmas[step], x, run->n);
  run->done++;
  if (run->progress == NULL)
    return;
  if (run->preview)
    easel_vae_preview_rgb8 (run->family, denoised, d->h, d->w, run->preview->pixels);
  double elapsed = (g_get_monotonic_time () - run->start_us) / 1e6;
  EaselProgress p = {
    .image_index = run->image_index,
    .step = (int) run->done,
    .total_steps = (int) run->total,
    .sigma = run->stage_sigmas[step],
    .elapsed_s = elapsed,
    .eta_s = run->done ? elapsed / run->done * (run->total - run->done) : 0,
    .preview = run->preview,
  };
  if (!run->progress (&p, run->user_data))
    run->stop = TRUE;
}

/* Per-image noise sources behind one noise callback: image b's values come from source b. */
typedef struct {
  EaselNoiseSource **src;
  gint64 B;
  gsize n_img;
} NoiseSet;

static gboolean
noise_cb (gpointer user_data, double sigma, double sigma_next, float *out, GError **error)
{
  NoiseSet *ns = user_data;
  for (gint64 b = 0; b < ns->B; b++)
    if (!easel_noise_source_sample (ns->src[b], sigma, sigma_next, out + b * ns->n_img, error))
      return FALSE;
  return TRUE;
}

/* --- the run ------------------------------------------------------------------------------- */

void
easel_pipeline_result_clear (EaselPipelineResult *r)
{
  g_clear_pointer (&r->images, g_ptr_array_unref);
  g_clear_pointer (&r->parameters, g_ptr_array_unref);
  g_clear_pointer (&r->messages, g_ptr_array_unref);
  g_clear_pointer (&r->latents, g_free);
  g_clear_pointer (&r->decoded, g_free);
  r->n_latents = r->n_decoded = 0;
}

static gboolean
fail (GError **error, EaselError code, const char *format, ...) G_GNUC_PRINTF (3, 4);

static gboolean
fail (GError **error, EaselError code, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error_literal (error, EASEL_ERROR, code, msg);
  return FALSE;
}

static gboolean
is_sdxl_latent (EaselFamily f)
{
  return f == EASEL_FAMILY_SDXL || f == EASEL_FAMILY_SDXL_INPAINT || f == EASEL_FAMILY_SDXL_REFINER;
}

/* An image as (3, H, W) floats in [0, 1]; the mask as luminance (1, H, W) in [0, 1]. */
static float *
image_planes (const EaselImage *im, gboolean luminance)
{
  const gsize hw = (gsize) im->width * im->height;
  float *rgb = g_new (float, 3 * hw);
  easel_image_to_f32_chw (im, rgb, 3);
  if (!luminance)
    return rgb;
  for (gsize i = 0; i < hw; i++)   /* PIL's "L": 299/587/114 */
    rgb[i] = 0.299f * rgb[i] + 0.587f * rgb[hw + i] + 0.114f * rgb[2 * hw + i];
  return g_realloc (rgb, hw * sizeof (float));
}

/* VAE encode of image01 (B, 3, H, W) in [0, 1] -> sampler latents (B, 4, h, w): posterior mean, or
 * sample with noise. */
static gboolean
encode_image (EaselVae *vae, EaselBackend *be, const float *image01, gint64 B, gint64 H, gint64 W, const float *noise,
              float *latent, GError **error)
{
  const gsize npx = B * 3 * H * W, nl = B * LATENT_CHANNELS * (H / 8) * (W / 8);
  g_autofree float *x = g_new (float, npx);
  for (gsize i = 0; i < npx; i++)
    x[i] = image01[i] * 2 - 1;
  g_autofree float *logvar = g_new (float, nl);
  gboolean ok = H * W > 1024 * 1024 ? easel_vae_encode_tiled (vae, be, x, B, H, W, EASEL_VAE_TILES_EXACT, 512, 64, latent, logvar, error)
                                    : easel_vae_encode (vae, be, x, B, H, W, latent, logvar, error);
  if (!ok)
    return FALSE;
  easel_vae_posterior (latent, logvar, noise, nl, NULL, latent);
  easel_vae_z_to_latent (vae, latent, latent, nl);
  return TRUE;
}

/* --- decoding within the device's memory ------------------------------------------------------- */

#define DECODE_TILE_DEFAULT 64     /* latent pixels: exact tiles above 128 x 128 latents with no limit */
#define DECODE_TILE_MIN 4

static double
gib (guint64 bytes)
{
  return bytes / 1073741824.0;
}

/* The exact tile (latent pixels; 0 = untiled) a decode of (B, 4, h, w) starts with. No limit: untiled
 * up to 128 x 128 latents, else tiles of DECODE_TILE_DEFAULT. Under the backend's memory limit:
 * untiled when that fits the limit (easel_vae_decode_memory: each graph with every other weight
 * released), else the largest of 64, 48, 32, 24, ... DECODE_TILE_MIN that does, else an error. */
static gboolean
choose_decode_tile (EaselVae *vae, EaselBackend *be, gint64 B, gint64 h, gint64 w, gint64 *tile, GError **error)
{
  const guint64 limit = easel_backend_get_memory_limit (be);
  *tile = h * w > 128 * 128 ? DECODE_TILE_DEFAULT : 0;
  if (limit == 0)
    return TRUE;
  guint64 need = 0;
  for (gint64 t = 0; t == 0 || t >= DECODE_TILE_MIN; t = t == 0 ? DECODE_TILE_DEFAULT : t % 3 == 0 ? t * 2 / 3 : t * 3 / 4) {
    if (t > 0 && t >= MAX (h, w))
      continue;                    /* one tile would cover the latent: the untiled decode */
    if (!easel_vae_decode_memory (vae, be, B, h, w, t, &need, error))
      return FALSE;
    if (need <= limit) {
      *tile = t;
      return TRUE;
    }
  }
  return fail (error, EASEL_ERROR_OUT_OF_MEMORY, "VAE decode of %" G_GINT64_FORMAT " latent%s of %" G_GINT64_FORMAT
               "x%" G_GINT64_FORMAT ": even in tiles of %d latent pixels it needs %.2f GiB of device memory, more "
               "than the limit of %.2f GiB", B, B > 1 ? "s" : "", w, h, DECODE_TILE_MIN, gib (need), gib (limit));
}

/* z (B, 4, h, w) -> image (B, 3, 8h, 8w) with choose_decode_tile's tiling; a decode that runs out
 * of device memory anyway (the driver's own limit) is tried again in smaller tiles down to
 * DECODE_TILE_MIN before the error is given. *used_tile: the tile that worked (0 = untiled). */
static gboolean
decode_latents (EaselVae *vae, EaselBackend *be, const float *z, gint64 B, gint64 h, gint64 w, float *image,
                gint64 *used_tile, GError **error)
{
  gint64 tile;
  if (!choose_decode_tile (vae, be, B, h, w, &tile, error))
    return FALSE;
  for (;;) {
    g_autoptr(GError) local = NULL;
    gboolean ok = tile > 0 ? easel_vae_decode_tiled (vae, be, z, B, h, w, EASEL_VAE_TILES_EXACT, tile, 0, image, &local)
                           : easel_vae_decode (vae, be, z, B, h, w, image, &local);
    if (ok) {
      *used_tile = tile;
      return TRUE;
    }
    gint64 next = tile == 0 ? MIN (DECODE_TILE_DEFAULT, MAX (h, w) / 2) : tile / 2;
    if (!g_error_matches (local, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY) || next < DECODE_TILE_MIN) {
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "VAE decode: ");
      return FALSE;
    }
    g_debug ("VAE decode: %s; again in tiles of %" G_GINT64_FORMAT, local->message, next);
    tile = next;
  }
}

typedef struct {
  EaselModel *model;
  EaselModel *text_model;
  EaselFamily family;
  EaselUnet *unet;
  Cond cond, uncond;
  float ids_cond[8], ids_uncond[8];
  gint64 n_ids;
  guint first, last;              /* sigma indices [first, last] */
  EaselAdapters *adapters;        /* the base stage's, or NULL */
} Stage;

static void
stage_clear (Stage *s)
{
  g_clear_pointer (&s->adapters, easel_adapters_free);
  cond_clear (&s->cond);
  cond_clear (&s->uncond);
}

static gboolean
stage_prepare (Stage *s, EaselBackend *be, const EaselPipelineRequest *req, EaselJobNetworks *nets, GError **error)
{
  const EaselJobParams *job = req->job;
  /* the prompt without its LoRA tags; embeddings where the job's networks know the text encoders */
  const char *prompt = nets ? easel_job_networks_prompt (nets) : job->prompt;
  EaselJobNetworks *tn = nets && easel_job_networks_text_model (nets) == s->text_model ? nets : NULL;
  const EaselDetection *det = easel_model_detection (s->model);
  s->family = det->family;
  if ((s->unet = easel_model_unet (s->model, error)) == NULL)
    return FALSE;
  if (!encode_prompt (s->text_model, be, s->family, tn, prompt, job->clip_skip, &s->cond, error))
    return FALSE;
  const char *neg = job->negative_prompt;
  gboolean sdxl_base = s->family == EASEL_FAMILY_SDXL || s->family == EASEL_FAMILY_SDXL_INPAINT;
  if (sdxl_base && !req->sdxl_encode_empty_negative && (neg == NULL || *neg == '\0'))
    cond_zeros_like (&s->cond, &s->uncond);
  else if (!encode_prompt (s->text_model, be, s->family, tn, neg ? neg : "", job->clip_skip, &s->uncond, error))
    return FALSE;
  const EaselUnetConfig *cfg = easel_unet_config (s->unet);
  if (cfg->context_dim && cfg->context_dim != s->cond.width)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "%s: the text encoders give %" G_GINT64_FORMAT
                 "-wide conditioning, the UNet wants %" G_GINT64_FORMAT, easel_model_path (s->model), s->cond.width,
                 cfg->context_dim);
  if (cfg->adm_in) {
    double oh = req->original_height ? req->original_height : job->height;
    double ow = req->original_width ? req->original_width : job->width;
    if (s->family == EASEL_FAMILY_SDXL_REFINER) {
      double a = req->aesthetic_score ? req->aesthetic_score : 6.0;
      double na = req->negative_aesthetic_score ? req->negative_aesthetic_score : 2.5;
      float c[5] = { oh, ow, req->crop_top, req->crop_left, a }, u[5] = { oh, ow, req->crop_top, req->crop_left, na };
      memcpy (s->ids_cond, c, sizeof c), memcpy (s->ids_uncond, u, sizeof u);
      s->n_ids = 5;
    } else {
      float c[6] = { oh, ow, req->crop_top, req->crop_left, job->height, job->width };
      memcpy (s->ids_cond, c, sizeof c), memcpy (s->ids_uncond, c, sizeof c);
      s->n_ids = 6;
    }
    if (s->cond.pooled_dim + s->n_ids * MAX (cfg->time_id_width, 1) != cfg->adm_in && cfg->time_id_width)
      return fail (error, EASEL_ERROR_INVALID_INPUT, "%s: pooled text %" G_GINT64_FORMAT " + %" G_GINT64_FORMAT
                   " time ids do not make the UNet's %" G_GINT64_FORMAT " inputs", easel_model_path (s->model),
                   s->cond.pooled_dim, s->n_ids, cfg->adm_in);
  } else {
    s->cond.pooled_dim = s->uncond.pooled_dim = 0;
  }
  return TRUE;
}

/* The job's adapters on the base stage (pipeline-adapters.h). */
static gboolean
stage_adapters (Stage *s, EaselBackend *be, const EaselPipelineRequest *req, gint64 H, gint64 W, GError **error)
{
  GError *local = NULL;
  s->adapters = easel_adapters_new (req->job, s->unet, s->family, be, H, W, req->controlnet_images01,
                                    req->t2i_images01, &local);
  if (local) {
    g_propagate_error (error, local);
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_job (const EaselJobParams *job, GError **error)
{
  if (job->width < 8 || job->height < 8 || job->width % 8 || job->height % 8 || job->width > MAX_SIDE
      || job->height > MAX_SIDE)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "size %dx%d: width and height must be multiples of 8 from 8 to %d",
                 job->width, job->height, MAX_SIDE);
  if (job->batch_size < 1 || job->batch_size > MAX_BATCH)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "batch size %d: must be 1 to %d", job->batch_size, MAX_BATCH);
  if (job->batch_count < 1 || job->batch_count > MAX_BATCH_COUNT)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "batch count %d: must be 1 to %d", job->batch_count,
                 MAX_BATCH_COUNT);
  if (job->clip_skip < 0 || job->clip_skip > 12)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "clip skip %d: must be 1 to 12", job->clip_skip);
  if (job->mask && !job->init_image)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "a mask needs an init image");
  if (job->mask && (job->mask->width != job->init_image->width || job->mask->height != job->init_image->height))
    return fail (error, EASEL_ERROR_INVALID_INPUT, "mask is %dx%d but the init image is %dx%d: they must match",
                 job->mask->width, job->mask->height, job->init_image->width, job->init_image->height);
  if (job->mask_blur < 0 || job->mask_blur > 256)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "mask blur %d: must be 0 to 256", job->mask_blur);
  if (job->only_masked_padding < 0 || job->only_masked_padding > MAX_SIDE)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "only-masked padding %d: must be 0 to %d", job->only_masked_padding,
                 MAX_SIDE);
  if (job->refiner && !(job->refiner_switch > 0 && job->refiner_switch < 1))
    return fail (error, EASEL_ERROR_INVALID_INPUT, "refiner switch %g: must be between 0 and 1", job->refiner_switch);
  return TRUE;
}

static EaselParameters *
make_parameters (const EaselJobParams *job, EaselModel *model, const EaselSamplingChoice *ch, guint64 seed)
{
  EaselParameters *p = easel_parameters_new ();
  easel_parameters_set_string (&p->prompt, job->prompt ? job->prompt : "");
  easel_parameters_set_string (&p->negative, job->negative_prompt ? job->negative_prompt : "");
  p->steps = (int) ch->steps;
  easel_parameters_set_string (&p->sampler, ch->sampler->display_name);
  easel_parameters_set_string (&p->schedule_type, easel_scheduler_display_name (ch->scheduler));
  p->cfg_scale = ch->cfg;
  p->has_seed = TRUE;
  p->seed = (gint64) seed;
  p->width = job->width, p->height = job->height;
  g_autofree char *base = g_path_get_basename (easel_model_path (model));
  char *dot = strrchr (base, '.');
  if (dot && dot != base)
    *dot = '\0';
  easel_parameters_set_string (&p->model, base);
  if (job->init_image)
    p->denoising_strength = ch->denoise;
  p->clip_skip = job->clip_skip >= 2 ? job->clip_skip : 0;
  if (job->rng == EASEL_RNG_CPU)
    easel_parameters_set_extra (p, "RNG", "CPU");
  if (job->mask) {
    g_autofree char *v = g_strdup_printf ("%d", job->mask_blur);
    easel_parameters_set_extra (p, "Mask blur", v);
    if (job->inpaint_only_masked) {
      easel_parameters_set_extra (p, "Inpaint area", "Only masked");
      g_autofree char *pad = g_strdup_printf ("%d", job->only_masked_padding);
      easel_parameters_set_extra (p, "Masked area padding", pad);
    }
  }
  if (job->refiner) {
    g_autofree char *rb = g_path_get_basename (easel_model_path (job->refiner));
    g_autofree char *sw = easel_format_number (job->refiner_switch);
    easel_parameters_set_extra (p, "Refiner", rb);
    easel_parameters_set_extra (p, "Refiner switch at", sw);
  }
  return p;
}

gboolean
easel_pipeline_run (EaselEngine *engine, EaselModel *model, const EaselPipelineRequest *req,
                    EaselProgressFunc progress, gpointer user_data, GCancellable *cancellable,
                    EaselPipelineResult *out, GError **error)
{
  g_return_val_if_fail (engine && model && req && req->job && out, FALSE);
  const EaselJobParams *job = req->job;
  memset (out, 0, sizeof *out);
  out->images = g_ptr_array_new_with_free_func ((GDestroyNotify) easel_image_free);
  out->parameters = g_ptr_array_new_with_free_func (g_free);
  out->messages = g_ptr_array_new_with_free_func (g_free);
  if (!check_job (job, error))
    return FALSE;

  /* sampler, schedule, steps, cfg, strength */
  gboolean img2img = job->init_image != NULL;
  EaselSamplingRequest sreq = {
    .sampler = job->sampler ? job->sampler : "euler", .scheduler = job->scheduler, .steps = job->steps,
    .cfg = job->cfg, .denoise = img2img ? job->strength : 1.0,
    .eta = EASEL_SAMPLING_DEFAULT, .s_noise = EASEL_SAMPLING_DEFAULT,
  };
  EaselSamplingChoice ch;
  if (!easel_sampling_request_check (&sreq, &ch, error))
    return FALSE;

  EaselBackend *be = easel_engine_backend (engine);
  const EaselModelSampling *ms = easel_model_sampling (model);
  const EaselDetection *det = easel_model_detection (model);
  EaselFamily fam = det->family;
  if (job->refiner) {
    EaselFamily rf = easel_model_detection (job->refiner)->family;
    if (rf == EASEL_FAMILY_UNKNOWN || is_sdxl_latent (rf) != is_sdxl_latent (fam))
      return fail (error, EASEL_ERROR_INVALID_INPUT, "refiner %s (%s) does not fit the base model %s (%s)",
                   easel_model_path (job->refiner), easel_family_display_name (rf), easel_model_path (model),
                   easel_family_display_name (fam));
  }

  /* LoRAs merged and embeddings found before any work (networks.h) */
  g_autoptr(EaselJobNetworks) nets = easel_job_networks_prepare (model, req->text_model, job, easel_backend_name (be),
                                                                  error);
  if (nets == NULL)
    return FALSE;

  /* the sigma list */
  g_autofree float *sigmas = NULL;
  gsize n_sigmas = 0;
  g_autofree guint *tsteps = NULL;
  if (req->diffusers != EASEL_DIFFUSERS_NONE) {
    g_autofree float *all = g_new (float, ch.steps + 1);
    tsteps = g_new (guint, ch.steps);
    if (!easel_pipeline_diffusers_sigmas (ms, req->diffusers, ch.steps, all, tsteps, error))
      return FALSE;
    /* img2img: the last int (steps · strength) steps (diffusers get_timesteps) */
    guint init_t = MIN ((guint) (ch.steps * ch.denoise), ch.steps);
    if (init_t == 0)
      return fail (error, EASEL_ERROR_INVALID_INPUT, "strength %g of %u steps runs no step", ch.denoise, ch.steps);
    guint start = ch.steps - init_t;
    n_sigmas = ch.steps + 1 - start;
    sigmas = g_memdup2 (all + start, n_sigmas * sizeof (float));
    memmove (tsteps, tsteps + start, init_t * sizeof (guint));
  } else {
    sigmas = easel_ksampler_sigmas (ms, ch.scheduler, ch.steps, ch.denoise,
                                    (ch.sampler->flags & EASEL_SAMPLER_DISCARD_PENULTIMATE) != 0, &n_sigmas, error);
    if (sigmas == NULL)
      return FALSE;
  }
  if (n_sigmas < 2)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "%u steps at strength %g run no step", ch.steps, ch.denoise);
  guint first = MIN ((guint) MAX (req->first_step, 0), (guint) n_sigmas - 1);
  guint last = req->last_step > 0 ? MIN ((guint) req->last_step, (guint) n_sigmas - 1) : (guint) n_sigmas - 1;
  if (first >= last)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "steps %u to %u: nothing to run", first, last);

  /* stages: the base, then the refiner from the switch step */
  Stage stages[2] = { { .model = model, .text_model = req->text_model ? req->text_model : model } };
  int n_stages = 1;
  stages[0].first = first, stages[0].last = last;
  if (job->refiner) {
    guint k;
    if (tsteps) {   /* diffusers denoising_end: the steps whose timestep is >= T (1 - switch) */
      double cutoff = round (easel_model_sampling_n_timesteps (ms) * (1 - job->refiner_switch));
      for (k = 0; k < n_sigmas - 1 && tsteps[k] >= cutoff; k++)
        ;
    } else {
      k = (guint) floor ((n_sigmas - 1) * job->refiner_switch + 1e-6);
    }
    if (k > first && k < last) {
      stages[1] = (Stage) { .model = job->refiner, .text_model = job->refiner, .first = k, .last = last };
      stages[0].last = k;
      n_stages = 2;
    }
  }

  Run run = {
    .progress = progress, .user_data = user_data, .cancellable = cancellable, .start_us = g_get_monotonic_time (),
    .family = fam, .on_latent = req->on_latent, .on_latent_data = req->on_latent_data,
  };
  gboolean ok = FALSE;
  EaselVae *vae = NULL;
  const gint64 B = job->batch_size, H = job->height, W = job->width, h = H / 8, w = W / 8, hw = h * w;
  const gsize n_img = LATENT_CHANNELS * hw, n = B * n_img;
  run.total = (last - first) * job->batch_count;
  run.n = n;
  g_autoptr(EaselImage) preview = progress ? easel_image_new ((int) w, (int) h, 3, NULL) : NULL;
  run.preview = preview;

  g_autofree float *work_image = NULL, *work_mask = NULL, *orig_image = NULL, *orig_mask = NULL;
  g_autofree float *init_latent = NULL, *extra = NULL, *lmask = NULL;
  int crop[4] = { 0, 0, 0, 0 };
  gboolean inpaint9 = FALSE, cropped = FALSE;
  gsize n_sampler_sigmas = 0;
  NoiseSet noise_set = { g_new0 (EaselNoiseSource *, B), B, n_img };
  g_autofree float *noise = g_new (float, n);
  g_autofree float *x = g_new (float, n);

  gint64 t_phase = g_get_monotonic_time ();
  for (int s = 0; s < n_stages; s++)
    if (!stage_prepare (&stages[s], be, req, nets, error)) {
      if (error && g_error_matches (*error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY))
        g_prefix_error (error, "text encoders: ");
      goto done;
    }
  out->seconds_prepare += (g_get_monotonic_time () - t_phase) / 1e6;
  for (guint i = 0; i < easel_job_networks_messages (nets)->len; i++)
    notify (&run, out->messages, easel_job_networks_messages (nets)->pdata[i]);
  inpaint9 = easel_unet_config (stages[0].unet)->in_channels == LATENT_CHANNELS + 5;
  if (!inpaint9 && easel_unet_config (stages[0].unet)->in_channels != LATENT_CHANNELS) {
    fail (error, EASEL_ERROR_UNSUPPORTED, "%s: a UNet of %" G_GINT64_FORMAT " input channels is not supported",
          easel_model_path (model), easel_unet_config (stages[0].unet)->in_channels);
    goto done;
  }
  if ((vae = easel_model_vae (job->vae ? job->vae : model, error)) == NULL)
    goto done;
  if (!stage_adapters (&stages[0], be, req, H, W, error))
    goto done;

  /* init image and mask, in the processing size */
  if (img2img) {
    const EaselImage *im = job->init_image;
    const int iw = im->width, ih = im->height;
    orig_image = req->init_image01 ? g_memdup2 (req->init_image01, 3 * sizeof (float) * iw * ih)
                                   : image_planes (im, FALSE);
    if (job->mask) {
      orig_mask = req->mask01 ? g_memdup2 (req->mask01, sizeof (float) * iw * ih) : image_planes (job->mask, TRUE);
      easel_pipeline_blur (orig_mask, iw, ih, job->mask_blur);
    }
    int x0 = 0, y0 = 0, x1 = iw, y1 = ih;
    if (job->mask && job->inpaint_only_masked
        && easel_pipeline_crop_region (orig_mask, iw, ih, job->only_masked_padding, (int) W, (int) H, &x0, &y0, &x1,
                                       &y1)) {
      cropped = TRUE;
      crop[0] = x0, crop[1] = y0, crop[2] = x1, crop[3] = y1;
    } else if (iw != W || ih != H) {
      g_autofree char *msg = g_strdup_printf ("init image resized from %dx%d to %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT,
                                              iw, ih, W, H);
      notify (&run, out->messages, msg);
    }
    /* cut [x0, x1) x [y0, y1) and resize it to W x H */
    const int cw = x1 - x0, chh = y1 - y0;
    g_autofree float *cut = g_new (float, 4 * (gsize) cw * chh);
    for (int c = 0; c < 4; c++)
      for (int y = 0; y < chh; y++)
        for (int xx = 0; xx < cw; xx++)
          cut[((gsize) c * chh + y) * cw + xx] = c < 3 ? orig_image[((gsize) c * ih + y0 + y) * iw + x0 + xx]
                                                : orig_mask ? orig_mask[(gsize) (y0 + y) * iw + x0 + xx] : 1.0f;
    work_image = g_new (float, 4 * H * W);
    easel_pipeline_resize (cut, 4, cw, chh, work_image, (int) W, (int) H);
    if (job->mask)
      work_mask = g_memdup2 (work_image + 3 * H * W, H * W * sizeof (float));
  }

  if (inpaint9) {
    /* diffusers: mask binarized at 0.5, masked pixels 0 in [-1, 1], mask to latent size nearest */
    g_autofree float *masked = g_new (float, B * 3 * H * W);
    g_autofree float *bin = g_new (float, H * W);
    for (gint64 i = 0; i < H * W; i++)
      bin[i] = work_mask ? (work_mask[i] >= 0.5f ? 1.0f : 0.0f) : 1.0f;
    for (gint64 c = 0; c < 3; c++)
      for (gint64 i = 0; i < H * W; i++)
        masked[c * H * W + i] = work_image && bin[i] < 0.5f ? work_image[c * H * W + i] : 0.5f;
    for (gint64 b = 1; b < B; b++)
      memcpy (masked + b * 3 * H * W, masked, 3 * H * W * sizeof (float));
    g_autofree float *ml = g_new (float, n);
    if (!encode_image (vae, be, masked, B, H, W, req->encode_noise, ml, error))
      goto done;
    extra = g_new (float, B * 5 * hw);
    for (gint64 b = 0; b < B; b++) {
      for (gint64 y = 0; y < h; y++)
        for (gint64 xx = 0; xx < w; xx++)
          extra[b * 5 * hw + y * w + xx] = bin[(y * H / h) * W + xx * W / w];
      memcpy (extra + b * 5 * hw + hw, ml + b * n_img, n_img * sizeof (float));
    }
  }
  if (img2img && (!inpaint9 || ch.denoise < 1.0)) {
    g_autofree float *imgs = g_new (float, B * 3 * H * W);
    for (gint64 b = 0; b < B; b++)
      memcpy (imgs + b * 3 * H * W, work_image, 3 * H * W * sizeof (float));
    init_latent = g_new (float, n);
    /* the 9-channel path already used the recorded posterior noise for the masked image */
    if (!encode_image (vae, be, imgs, B, H, W, inpaint9 ? NULL : req->encode_noise, init_latent, error))
      goto done;
  }
  if (work_mask && !inpaint9) {
    /* the latent mask: the blurred mask averaged over each 8x8 block */
    lmask = g_new0 (float, B * hw);
    for (gint64 y = 0; y < H; y++)
      for (gint64 xx = 0; xx < W; xx++)
        lmask[(y / 8) * w + xx / 8] += work_mask[y * W + xx] / 64.0f;
    for (gint64 b = 1; b < B; b++)
      memcpy (lmask + b * hw, lmask, hw * sizeof (float));
  }

  for (int bc = 0; bc < job->batch_count; bc++) {
    const guint64 seed0 = job->seed + (guint64) bc * B;
    run.image_index = bc * (int) B;
    /* noise: recorded, or image b drawn from seed0 + b */
    for (gint64 b = 0; b < B; b++) {
      if (req->initial_noise && bc == 0) {
        memcpy (noise + b * n_img, req->initial_noise + b * n_img, n_img * sizeof (float));
      } else {
        g_autoptr(EaselRng) rng = easel_rng_new (job->rng, seed0 + b);
        easel_rng_randn (rng, noise + b * n_img, n_img);
      }
      g_clear_pointer (&noise_set.src[b], easel_noise_source_free);
      noise_set.src[b] = easel_noise_source_new_default (ch.sampler,
                                                         job->rng == EASEL_RNG_CPU ? EASEL_NOISE_COMFYUI
                                                                                   : EASEL_NOISE_A1111,
                                                         job->rng, seed0 + b, n_img, sigmas + first,
                                                         last - first + 1, error);
      if (noise_set.src[b] == NULL)
        goto done;
    }
    if (req->initial_latent && bc == 0) {
      memcpy (x, req->initial_latent, n * sizeof (float));
    } else {
      double s0 = sigmas[first];
      gboolean full = req->diffusers != EASEL_DIFFUSERS_NONE ? init_latent == NULL
                                                             : easel_model_sampling_is_max_denoise (ms, s0);
      easel_model_sampling_noise_scaling (ms, s0, full, noise, init_latent, x, n);
    }

    for (int s = 0; s < n_stages; s++) {
      Stage *st = &stages[s];
      const EaselUnetConfig *ucfg = easel_unet_config (st->unet);
      gboolean st9 = ucfg->in_channels == LATENT_CHANNELS + 5;
      if (st9 != inpaint9 && s > 0) {
        fail (error, EASEL_ERROR_INVALID_INPUT, "refiner %s: its UNet takes %" G_GINT64_FORMAT
              " channels, the base's another number", easel_model_path (st->model), ucfg->in_channels);
        goto done;
      }
      g_autofree float *x_in = lmask ? g_new (float, n) : NULL;
      g_autofree float *den_c = g_new (float, n), *den_u = g_new (float, n);
      Denoiser d = {
        .run = &run, .be = be, .unet = st->unet, .ms = easel_model_sampling (st->model), .B = B, .h = h, .w = w,
        .n_img = n_img, .cin = ucfg->in_channels, .cond = &st->cond, .uncond = &st->uncond,
        .ids_cond = st->n_ids ? st->ids_cond : NULL, .ids_uncond = st->n_ids ? st->ids_uncond : NULL,
        .n_ids = st->n_ids, .cfg = ch.cfg,
        .need_uncond = ch.cfg != 1.0 || (ch.sampler->flags & EASEL_SAMPLER_CFG_PP),
        .kdiff_t = req->kdiffusion_timesteps, .extra = st9 ? extra : NULL,
        .blend_mask = lmask, .blend_latent = init_latent, .blend_noise = noise, .x_in = x_in,
        .den_c = den_c, .den_u = den_u,
        .adapters = st->adapters, .n_steps = (int) (st->last - st->first),
      };
      EaselSampleCtx ctx = {
        .n = n, .model_sampling = d.ms, .denoise = denoise_cb, .noise = noise_cb, .step = step_cb,
        .user_data = &d, .noise_data = &noise_set,
      };
      run.step_offset = st->first;
      run.stage_sigmas = sigmas + st->first;
      run.family = st->family;
      n_sampler_sigmas = st->last - st->first + 1;
      gint64 t_sampling = g_get_monotonic_time ();
      gboolean sampled = easel_sampler_run (ch.sampler, &ctx, &ch.options, x, sigmas + st->first, n_sampler_sigmas, error);
      out->seconds_sampling += (g_get_monotonic_time () - t_sampling) / 1e6;
      out->steps_run += n_sampler_sigmas - 1;
      if (!sampled) {
        if (error && g_error_matches (*error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY))
          g_prefix_error (error, "denoising (%s): ", s > 0 ? "refiner UNet" : "UNet");
        goto done;
      }
      if (!check_cancel (&run, error))
        goto done;
      if (run.on_latent)
        run.on_latent (run.on_latent_data, st->last - 1, sigmas[st->last], x, n);
    }
    g_free (out->latents);
    out->latents = g_memdup2 (x, n * sizeof (float));
    out->n_latents = n;
    if (req->latents_only)
      continue;

    /* decode: VP form when the schedule stops above 0 (diffusers' DDIM) */
    const gsize npx = B * 3 * H * W;
    g_autofree float *z = g_new (float, n);
    const float vp = 1.0f / sqrtf (1.0f + sigmas[last] * sigmas[last]);
    for (gsize i = 0; i < n; i++)
      z[i] = x[i] * vp;
    easel_vae_latent_to_z (vae, z, z, n);
    g_free (out->decoded);
    out->decoded = g_new (float, npx);
    out->n_decoded = npx;
    gint64 t_decode = g_get_monotonic_time (), tile = 0;
    gboolean dec_ok = decode_latents (vae, be, z, B, h, w, out->decoded, &tile, error);
    out->seconds_vae += (g_get_monotonic_time () - t_decode) / 1e6;
    if (!dec_ok)
      goto done;
    if (tile > 0 && (hw <= 128 * 128 || tile != DECODE_TILE_DEFAULT) && bc == 0) {
      g_autofree char *msg = g_strdup_printf ("VAE decoded in tiles of %" G_GINT64_FORMAT " latent pixels to fit %s",
                                              tile, easel_backend_get_memory_limit (be) ? "the memory limit"
                                                                                        : "the device's memory");
      notify (&run, out->messages, msg);
    }
    g_autofree float *rgb = g_new (float, npx);
    easel_vae_image_to_unit (out->decoded, rgb, npx);

    for (gint64 b = 0; b < B; b++) {
      float *im = rgb + b * 3 * H * W;
      g_autoptr(EaselImage) result = NULL;
      if (job->mask && !req->raw_output) {
        const EaselImage *ii = job->init_image;
        const int iw = ii->width, ih = ii->height;
        if (cropped) {
          /* paste the crop back over the original through the blurred mask */
          const int cw = crop[2] - crop[0], chh = crop[3] - crop[1];
          g_autofree float *back = g_new (float, 3 * (gsize) cw * chh);
          easel_pipeline_resize (im, 3, (int) W, (int) H, back, cw, chh);
          g_autofree float *full = g_memdup2 (orig_image, 3 * (gsize) iw * ih * sizeof (float));
          for (int c = 0; c < 3; c++)
            for (int y = 0; y < chh; y++)
              for (int xx = 0; xx < cw; xx++) {
                gsize o = (gsize) (crop[1] + y) * iw + crop[0] + xx;
                float m = orig_mask[o];
                full[(gsize) c * ih * iw + o] = full[(gsize) c * ih * iw + o] * (1 - m)
                                                + back[((gsize) c * chh + y) * cw + xx] * m;
              }
          result = easel_image_new_from_f32_chw (full, 3, ih, iw, error);
        } else {
          for (gint64 c = 0; c < 3; c++)
            for (gint64 i = 0; i < H * W; i++) {
              float m = work_mask[i];
              im[c * H * W + i] = work_image[c * H * W + i] * (1 - m) + im[c * H * W + i] * m;
            }
          result = easel_image_new_from_f32_chw (im, 3, (int) H, (int) W, error);
        }
      } else {
        result = easel_image_new_from_f32_chw (im, 3, (int) H, (int) W, error);
      }
      if (result == NULL)
        goto done;
      g_ptr_array_add (out->images, g_steal_pointer (&result));
      g_autoptr(EaselParameters) params = make_parameters (job, model, &ch, seed0 + b);
      easel_job_networks_parameters (nets, params);
      g_ptr_array_add (out->parameters, easel_parameters_to_text (params));
    }
  }
  ok = TRUE;

done:
  for (gint64 b = 0; b < B; b++)
    easel_noise_source_free (noise_set.src[b]);
  g_free (noise_set.src);
  for (int s = 0; s < 2; s++)
    stage_clear (&stages[s]);
  return ok;
}

/* --- easel.h ------------------------------------------------------------------------------- */

GPtrArray *
easel_generate (EaselEngine *engine, EaselModel *model, const EaselJobParams *params, EaselProgressFunc progress,
                gpointer user_data, GCancellable *cancellable, GPtrArray **parameters_out, GError **error)
{
  EaselPipelineRequest req = { .job = params };
  EaselPipelineResult r;
  if (!easel_pipeline_run (engine, model, &req, progress, user_data, cancellable, &r, error)) {
    easel_pipeline_result_clear (&r);
    return NULL;
  }
  GPtrArray *images = g_steal_pointer (&r.images);
  if (parameters_out)
    *parameters_out = g_steal_pointer (&r.parameters);
  easel_pipeline_result_clear (&r);
  return images;
}
