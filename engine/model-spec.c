/* engine/model-spec.c: the published configurations of each family and the enumeration of their
 * tensors in original single-file naming (see model-spec.h).
 *
 * Layout: the configuration table, a small tensor-list builder, the UNet (ldm openaimodel), the
 * VAE (ldm AutoencoderKL), the text encoders (transformers CLIP, OpenCLIP), the config.json hints. */
#include "model-spec.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* ---------------------------------------------------------------------------------------------
 * Configurations */

static const char *const spec_names[] = { "sd15", "sd15-inpaint", "sd21", "sd21v", "sdxl", "sdxl-refiner", NULL };

const char *const *
easel_model_spec_names (void)
{
  return spec_names;
}

static void
set_levels (gint64 *dst, int *n, int count, ...)
{
  va_list ap;
  va_start (ap, count);
  for (int i = 0; i < count; i++)
    dst[i] = va_arg (ap, gint64);
  va_end (ap);
  *n = count;
}

static void
set_ints (int *dst, int count, ...)
{
  va_list ap;
  va_start (ap, count);
  for (int i = 0; i < count; i++)
    dst[i] = va_arg (ap, int);
  va_end (ap);
}

static void
text_clip (EaselTextSpec *t, const char *prefix, gint64 width, int n_layers, int heads)
{
  memset (t, 0, sizeof *t);
  t->naming = EASEL_TEXT_NAMING_CLIP;
  g_strlcpy (t->prefix, prefix, sizeof t->prefix);
  t->width = width;
  t->ff_width = 4 * width;
  t->vocab = 49408;
  t->n_positions = 77;
  t->n_layers = n_layers;
  t->heads = heads;
  t->quick_gelu = TRUE;
  t->position_ids = TRUE;
}

static void
text_openclip (EaselTextSpec *t, const char *prefix, gint64 width, int n_layers, int heads, gint64 projection)
{
  memset (t, 0, sizeof *t);
  t->naming = EASEL_TEXT_NAMING_OPENCLIP;
  g_strlcpy (t->prefix, prefix, sizeof t->prefix);
  t->width = width;
  t->ff_width = 4 * width;
  t->vocab = 49408;
  t->n_positions = 77;
  t->n_layers = n_layers;
  t->heads = heads;
  t->projection = projection;
  t->logit_scale = TRUE;
}

/* heads = width / head_dim at every level */
static void
heads_from_width (EaselUNetSpec *u, gint64 head_dim)
{
  for (int l = 0; l < u->n_levels; l++)
    u->heads[l] = (int) MAX (1, u->channels[l] / head_dim);
}

/* SD 1.x (CompVis v1-inference.yaml; tiny: sd1_tiny) */
static void
spec_sd1 (EaselModelSpec *s, gboolean tiny)
{
  EaselUNetSpec *u = &s->unet;
  EaselVaeSpec *v = &s->vae;

  s->family = EASEL_FAMILY_SD1;
  s->prediction = EASEL_PREDICTION_EPSILON;
  u->in_channels = 4;
  u->out_channels = 4;
  u->n_res_blocks = 2;
  set_ints (u->depth, 4, 1, 1, 1, 0);
  u->depth_middle = 1;
  set_ints (u->heads, 4, 8, 8, 8, 8);
  u->linear_proj = FALSE;
  v->in_channels = 3;
  v->latent_channels = 4;
  v->n_res_blocks = 2;
  v->scaling_factor = 0.18215;
  s->n_text = 1;
  if (tiny) {
    set_levels (u->channels, &u->n_levels, 4, (gint64) 32, (gint64) 64, (gint64) 32, (gint64) 32);
    set_levels (v->channels, &v->n_levels, 4, (gint64) 32, (gint64) 64, (gint64) 32, (gint64) 32);
    text_clip (&s->text[0], "cond_stage_model.transformer.", 16, 3, 2);
  } else {
    set_levels (u->channels, &u->n_levels, 4, (gint64) 320, (gint64) 640, (gint64) 1280, (gint64) 1280);
    set_levels (v->channels, &v->n_levels, 4, (gint64) 128, (gint64) 256, (gint64) 512, (gint64) 512);
    text_clip (&s->text[0], "cond_stage_model.transformer.", 768, 12, 12);
  }
  u->model_channels = u->channels[0];
  u->context_dim = s->text[0].width;
}

/* SD 2.x (Stability v2-inference-v.yaml: head width 64, Linear proj, OpenCLIP-H with all 24
 * layers stored; tiny: no test model exists, so sd1_tiny's UNet/VAE with SD 2.x's choices) */
static void
spec_sd2 (EaselModelSpec *s, gboolean tiny)
{
  spec_sd1 (s, tiny);
  s->family = EASEL_FAMILY_SD2;
  s->unet.linear_proj = TRUE;
  if (tiny) {
    text_openclip (&s->text[0], "cond_stage_model.model.", 16, 4, 2, 16);
    heads_from_width (&s->unet, 8);   /* the tiny analogue of SD 2.x's fixed head width */
  } else {
    text_openclip (&s->text[0], "cond_stage_model.model.", 1024, 24, 16, 1024);
    heads_from_width (&s->unet, 64);
  }
  s->unet.context_dim = s->text[0].width;
}

/* SDXL base 1.0 (sd_xl_base.yaml; tiny: sdxl_tiny) */
static void
spec_sdxl (EaselModelSpec *s, gboolean tiny)
{
  EaselUNetSpec *u = &s->unet;
  EaselVaeSpec *v = &s->vae;

  s->family = EASEL_FAMILY_SDXL;
  s->prediction = EASEL_PREDICTION_EPSILON;
  u->in_channels = 4;
  u->out_channels = 4;
  u->n_res_blocks = 2;
  u->linear_proj = TRUE;
  u->n_time_ids = 6;
  v->in_channels = 3;
  v->latent_channels = 4;
  v->n_res_blocks = 2;
  v->scaling_factor = 0.13025;
  s->n_text = 2;
  if (tiny) {
    set_levels (u->channels, &u->n_levels, 3, (gint64) 64, (gint64) 32, (gint64) 32);
    set_ints (u->depth, 3, 0, 2, 3);
    u->depth_middle = 3;
    set_ints (u->heads, 3, 2, 2, 4);
    u->time_id_width = 8;
    set_levels (v->channels, &v->n_levels, 4, (gint64) 32, (gint64) 32, (gint64) 32, (gint64) 32);
    text_clip (&s->text[0], "conditioner.embedders.0.transformer.", 8, 2, 2);
    text_openclip (&s->text[1], "conditioner.embedders.1.model.", 16, 3, 2, 16);
  } else {
    set_levels (u->channels, &u->n_levels, 3, (gint64) 320, (gint64) 640, (gint64) 1280);
    set_ints (u->depth, 3, 0, 2, 10);
    u->depth_middle = 10;
    heads_from_width (u, 64);
    u->time_id_width = 256;
    set_levels (v->channels, &v->n_levels, 4, (gint64) 128, (gint64) 256, (gint64) 512, (gint64) 512);
    text_clip (&s->text[0], "conditioner.embedders.0.transformer.", 768, 12, 12);
    text_openclip (&s->text[1], "conditioner.embedders.1.model.", 1280, 32, 20, 1280);
  }
  u->model_channels = u->channels[0];
  u->context_dim = s->text[0].width + s->text[1].width;
  u->adm_in = s->text[1].projection + u->n_time_ids * u->time_id_width;
}

/* SDXL refiner 1.0 (sd_xl_refiner.yaml: 4 levels, bigG only, aesthetic score; tiny:
 * sdxl_refiner_tiny) */
static void
spec_refiner (EaselModelSpec *s, gboolean tiny)
{
  EaselUNetSpec *u = &s->unet;

  spec_sdxl (s, tiny);
  s->family = EASEL_FAMILY_SDXL_REFINER;
  s->n_text = 1;
  s->text[0] = s->text[1];
  memset (&s->text[1], 0, sizeof s->text[1]);
  g_strlcpy (s->text[0].prefix, "conditioner.embedders.0.model.", sizeof s->text[0].prefix);
  u->n_time_ids = 5;
  if (tiny) {
    set_levels (u->channels, &u->n_levels, 4, (gint64) 64, (gint64) 32, (gint64) 32, (gint64) 32);
    set_ints (u->depth, 4, 0, 2, 2, 0);
    u->depth_middle = 2;
    set_ints (u->heads, 4, 2, 2, 4, 4);
  } else {
    set_levels (u->channels, &u->n_levels, 4, (gint64) 384, (gint64) 768, (gint64) 1536, (gint64) 1536);
    set_ints (u->depth, 4, 0, 4, 4, 0);
    u->depth_middle = 4;
    heads_from_width (u, 64);
  }
  u->model_channels = u->channels[0];
  u->context_dim = s->text[0].width;
  u->adm_in = s->text[0].projection + u->n_time_ids * u->time_id_width;
}

gboolean
easel_model_spec_get (const char *name, gboolean tiny, EaselModelSpec *out, GError **error)
{
  memset (out, 0, sizeof *out);
  if (g_strcmp0 (name, "sd15") == 0) {
    spec_sd1 (out, tiny);
  } else if (g_strcmp0 (name, "sd15-inpaint") == 0) {
    /* the tiny one keeps sd1_tiny's 64-wide level: at all-32 widths GroupNorm cancels the
     * timestep (testdata README section 5) */
    spec_sd1 (out, tiny);
    out->family = EASEL_FAMILY_SD1_INPAINT;
    out->unet.in_channels = 9;
  } else if (g_strcmp0 (name, "sd21") == 0) {
    spec_sd2 (out, tiny);
    out->prediction = EASEL_PREDICTION_EPSILON;
  } else if (g_strcmp0 (name, "sd21v") == 0) {
    spec_sd2 (out, tiny);
    out->prediction = EASEL_PREDICTION_V;
  } else if (g_strcmp0 (name, "sdxl") == 0) {
    spec_sdxl (out, tiny);
  } else if (g_strcmp0 (name, "sdxl-refiner") == 0) {
    spec_refiner (out, tiny);
  } else {
    g_autofree char *known = g_strjoinv ("|", (char **) spec_names);
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "unknown model family '%s' (known: %s)",
                 name ? name : "(null)", known);
    return FALSE;
  }
  for (guint i = 0; spec_names[i]; i++)
    if (strcmp (spec_names[i], name) == 0)
      out->name = spec_names[i];
  out->tiny = tiny;
  return TRUE;
}

/* ---------------------------------------------------------------------------------------------
 * Tensor list builder */

typedef struct {
  GArray *tensors;          /* EaselSpecTensor */
  GStringChunk *names;
  EaselDType dtype;         /* floats */
} Builder;

/* Adds one tensor named prefix + suffix; shape has n_dims entries. */
static void
add (Builder *b, EaselInit init, gint64 fan_in, const char *prefix, const char *suffix, int n_dims,
     const gint64 *shape)
{
  EaselSpecTensor t = { 0 };
  g_autofree char *name = g_strconcat (prefix, suffix, NULL);

  t.name = g_string_chunk_insert_const (b->names, name);
  t.dtype = init == EASEL_INIT_ARANGE ? EASEL_DTYPE_I64 : b->dtype;
  t.n_dims = n_dims;
  t.n_elements = 1;
  for (int d = 0; d < n_dims; d++) {
    t.shape[d] = shape[d];
    t.n_elements *= (guint64) shape[d];
  }
  t.init = init;
  t.fan_in = fan_in;
  g_array_append_val (b->tensors, t);
}

/* p + "weight" [out, in] and p + "bias" [out] (when bias) */
static void
linear (Builder *b, const char *p, gint64 out, gint64 in, gboolean bias)
{
  const gint64 w[2] = { out, in }, v[1] = { out };
  g_autofree char *pw = g_strconcat (p, ".weight", NULL);
  add (b, EASEL_INIT_WEIGHT, in, pw, "", 2, w);
  if (bias) {
    g_autofree char *pb = g_strconcat (p, ".bias", NULL);
    add (b, EASEL_INIT_BIAS, 0, pb, "", 1, v);
  }
}

/* p + "weight" [out, in, k, k] and p + "bias" [out] */
static void
conv (Builder *b, const char *p, gint64 out, gint64 in, gint64 k)
{
  const gint64 w[4] = { out, in, k, k }, v[1] = { out };
  g_autofree char *pw = g_strconcat (p, ".weight", NULL);
  g_autofree char *pb = g_strconcat (p, ".bias", NULL);
  add (b, EASEL_INIT_WEIGHT, in * k * k, pw, "", 4, w);
  add (b, EASEL_INIT_BIAS, 0, pb, "", 1, v);
}

/* GroupNorm / LayerNorm: p + "weight" = 1, p + "bias" = 0, [c] */
static void
norm (Builder *b, const char *p, gint64 c)
{
  const gint64 v[1] = { c };
  g_autofree char *pw = g_strconcat (p, ".weight", NULL);
  g_autofree char *pb = g_strconcat (p, ".bias", NULL);
  add (b, EASEL_INIT_ONES, 0, pw, "", 1, v);
  add (b, EASEL_INIT_ZEROS, 0, pb, "", 1, v);
}

static char *
fmt (const char *format, ...) G_GNUC_PRINTF (1, 2);

static char *
fmt (const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  char *s = g_strdup_vprintf (format, ap);
  va_end (ap);
  return s;
}

/* ---------------------------------------------------------------------------------------------
 * UNet (ldm openaimodel.UNetModel) under "model.diffusion_model." */

#define UNET "model.diffusion_model."

/* ResBlock p: x (N, cin, H, W), temb (N, 4 mc) -> (N, cout, H, W) */
static void
unet_resblock (Builder *b, const char *p, gint64 cin, gint64 cout, gint64 temb)
{
  g_autofree char *n1 = fmt ("%sin_layers.0", p), *c1 = fmt ("%sin_layers.2", p), *e = fmt ("%semb_layers.1", p);
  g_autofree char *n2 = fmt ("%sout_layers.0", p), *c2 = fmt ("%sout_layers.3", p), *sk = fmt ("%sskip_connection", p);
  norm (b, n1, cin);
  conv (b, c1, cout, cin, 3);
  linear (b, e, cout, temb, TRUE);
  norm (b, n2, cout);
  conv (b, c2, cout, cout, 3);
  if (cin != cout)
    conv (b, sk, cout, cin, 1);
}

/* SpatialTransformer p of `depth` BasicTransformerBlocks: x (N, c, H, W), context (N, L, ctx) */
static void
unet_transformer (Builder *b, const EaselUNetSpec *u, const char *p, gint64 c, int depth)
{
  g_autofree char *gn = fmt ("%snorm", p), *pi = fmt ("%sproj_in", p), *po = fmt ("%sproj_out", p);
  const gint64 ctx = u->context_dim;

  norm (b, gn, c);
  if (u->linear_proj)
    linear (b, pi, c, c, TRUE);
  else
    conv (b, pi, c, c, 1);
  for (int d = 0; d < depth; d++) {
    g_autofree char *t = fmt ("%stransformer_blocks.%d.", p, d);
    for (int a = 1; a <= 2; a++) {
      gint64 kv_in = a == 1 ? c : ctx;
      g_autofree char *q = fmt ("%sattn%d.to_q", t, a), *k = fmt ("%sattn%d.to_k", t, a);
      g_autofree char *v = fmt ("%sattn%d.to_v", t, a), *o = fmt ("%sattn%d.to_out.0", t, a);
      linear (b, q, c, c, FALSE);
      linear (b, k, c, kv_in, FALSE);
      linear (b, v, c, kv_in, FALSE);
      linear (b, o, c, c, TRUE);
    }
    g_autofree char *ff0 = fmt ("%sff.net.0.proj", t), *ff2 = fmt ("%sff.net.2", t);
    linear (b, ff0, 8 * c, c, TRUE);   /* GEGLU: value and gate halves of 4c each */
    linear (b, ff2, c, 4 * c, TRUE);
    for (int n = 1; n <= 3; n++) {
      g_autofree char *ln = fmt ("%snorm%d", t, n);
      norm (b, ln, c);
    }
  }
  if (u->linear_proj)
    linear (b, po, c, c, TRUE);
  else
    conv (b, po, c, c, 1);
}

static void
unet_tensors (Builder *b, const EaselUNetSpec *u)
{
  const gint64 mc = u->model_channels, temb = 4 * mc;
  g_autofree gint64 *skips = g_new (gint64, 1 + (gsize) u->n_levels * (u->n_res_blocks + 1));   /* widths of the skips */
  int n_skips = 0, k = 1, last = u->n_levels - 1;
  gint64 ch = mc;

  linear (b, UNET "time_embed.0", temb, mc, TRUE);
  linear (b, UNET "time_embed.2", temb, temb, TRUE);
  if (u->adm_in > 0) {
    linear (b, UNET "label_emb.0.0", temb, u->adm_in, TRUE);
    linear (b, UNET "label_emb.0.2", temb, temb, TRUE);
  }
  conv (b, UNET "input_blocks.0.0", mc, u->in_channels, 3);
  skips[n_skips++] = ch;
  for (int l = 0; l < u->n_levels; l++) {
    for (int r = 0; r < u->n_res_blocks; r++, k++) {
      g_autofree char *rp = fmt (UNET "input_blocks.%d.0.", k), *tp = fmt (UNET "input_blocks.%d.1.", k);
      unet_resblock (b, rp, ch, u->channels[l], temb);
      ch = u->channels[l];
      if (u->depth[l] > 0)
        unet_transformer (b, u, tp, ch, u->depth[l]);
      skips[n_skips++] = ch;
    }
    if (l != last) {
      g_autofree char *dp = fmt (UNET "input_blocks.%d.0.op", k++);
      conv (b, dp, ch, ch, 3);
      skips[n_skips++] = ch;
    }
  }

  unet_resblock (b, UNET "middle_block.0.", ch, ch, temb);
  unet_transformer (b, u, UNET "middle_block.1.", ch, u->depth_middle);
  unet_resblock (b, UNET "middle_block.2.", ch, ch, temb);

  k = 0;
  for (int l = last; l >= 0; l--) {
    for (int i = 0; i <= u->n_res_blocks; i++, k++) {
      gint64 skip = skips[--n_skips];
      int j = 1;
      g_autofree char *rp = fmt (UNET "output_blocks.%d.0.", k);
      unet_resblock (b, rp, ch + skip, u->channels[l], temb);
      ch = u->channels[l];
      if (u->depth[l] > 0) {
        g_autofree char *tp = fmt (UNET "output_blocks.%d.1.", k);
        unet_transformer (b, u, tp, ch, u->depth[l]);
        j = 2;
      }
      if (l != 0 && i == u->n_res_blocks) {
        g_autofree char *up = fmt (UNET "output_blocks.%d.%d.conv", k, j);
        conv (b, up, ch, ch, 3);
      }
    }
  }
  norm (b, UNET "out.0", ch);
  conv (b, UNET "out.2", u->out_channels, ch, 3);
}

/* ---------------------------------------------------------------------------------------------
 * VAE (ldm AutoencoderKL) under "first_stage_model." */

#define VAE "first_stage_model."

/* ResnetBlock p: (N, cin, H, W) -> (N, cout, H, W), no time embedding */
static void
vae_resblock (Builder *b, const char *p, gint64 cin, gint64 cout)
{
  g_autofree char *n1 = fmt ("%snorm1", p), *c1 = fmt ("%sconv1", p), *n2 = fmt ("%snorm2", p);
  g_autofree char *c2 = fmt ("%sconv2", p), *sk = fmt ("%snin_shortcut", p);
  norm (b, n1, cin);
  conv (b, c1, cout, cin, 3);
  norm (b, n2, cout);
  conv (b, c2, cout, cout, 3);
  if (cin != cout)
    conv (b, sk, cout, cin, 1);
}

/* mid: block_1, attn_1 (single-head attention with 1x1-conv q, k, v, proj_out), block_2 */
static void
vae_mid (Builder *b, const char *p, gint64 c)
{
  g_autofree char *b1 = fmt ("%smid.block_1.", p), *b2 = fmt ("%smid.block_2.", p);
  static const char *const attn[] = { "q", "k", "v", "proj_out" };
  g_autofree char *an = fmt ("%smid.attn_1.norm", p);

  vae_resblock (b, b1, c, c);
  norm (b, an, c);
  for (guint i = 0; i < G_N_ELEMENTS (attn); i++) {
    g_autofree char *ap = fmt ("%smid.attn_1.%s", p, attn[i]);
    conv (b, ap, c, c, 1);
  }
  vae_resblock (b, b2, c, c);
}

static void
vae_tensors (Builder *b, const EaselVaeSpec *v)
{
  const gint64 z = v->latent_channels;
  const int last = v->n_levels - 1;
  gint64 ch = v->channels[0];

  /* encoder: x (N, 3, H, W) -> moments (N, 2z, H/2^last, W/2^last) */
  conv (b, VAE "encoder.conv_in", ch, v->in_channels, 3);
  for (int l = 0; l < v->n_levels; l++) {
    for (int r = 0; r < v->n_res_blocks; r++) {
      g_autofree char *p = fmt (VAE "encoder.down.%d.block.%d.", l, r);
      vae_resblock (b, p, ch, v->channels[l]);
      ch = v->channels[l];
    }
    if (l != last) {
      g_autofree char *p = fmt (VAE "encoder.down.%d.downsample.conv", l);
      conv (b, p, ch, ch, 3);
    }
  }
  vae_mid (b, VAE "encoder.", ch);
  norm (b, VAE "encoder.norm_out", ch);
  conv (b, VAE "encoder.conv_out", 2 * z, ch, 3);
  conv (b, VAE "quant_conv", 2 * z, 2 * z, 1);

  /* decoder: z (N, z, h, w) -> (N, 3, h 2^last, w 2^last); up.l is level l, run last to first */
  conv (b, VAE "post_quant_conv", z, z, 1);
  ch = v->channels[last];
  conv (b, VAE "decoder.conv_in", ch, z, 3);
  vae_mid (b, VAE "decoder.", ch);
  for (int l = last; l >= 0; l--) {
    for (int r = 0; r <= v->n_res_blocks; r++) {
      g_autofree char *p = fmt (VAE "decoder.up.%d.block.%d.", l, r);
      vae_resblock (b, p, ch, v->channels[l]);
      ch = v->channels[l];
    }
    if (l != 0) {
      g_autofree char *p = fmt (VAE "decoder.up.%d.upsample.conv", l);
      conv (b, p, ch, ch, 3);
    }
  }
  norm (b, VAE "decoder.norm_out", ch);
  conv (b, VAE "decoder.conv_out", v->in_channels, ch, 3);
}

/* ---------------------------------------------------------------------------------------------
 * Text encoders */

/* transformers CLIPTextModel under PREFIX "text_model." */
static void
text_clip_tensors (Builder *b, const EaselTextSpec *t)
{
  g_autofree char *p = fmt ("%stext_model.", t->prefix);
  const gint64 c = t->width, tok[2] = { t->vocab, c }, pos[2] = { t->n_positions, c };
  const gint64 ids[2] = { 1, t->n_positions };
  static const char *const attn[] = { "q_proj", "k_proj", "v_proj", "out_proj" };

  add (b, EASEL_INIT_EMBEDDING, 0, p, "embeddings.token_embedding.weight", 2, tok);
  add (b, EASEL_INIT_POSITION, 0, p, "embeddings.position_embedding.weight", 2, pos);
  if (t->position_ids)
    add (b, EASEL_INIT_ARANGE, 0, p, "embeddings.position_ids", 2, ids);
  for (int i = 0; i < t->n_layers; i++) {
    g_autofree char *lp = fmt ("%sencoder.layers.%d.", p, i);
    g_autofree char *ln1 = fmt ("%slayer_norm1", lp), *ln2 = fmt ("%slayer_norm2", lp);
    g_autofree char *fc1 = fmt ("%smlp.fc1", lp), *fc2 = fmt ("%smlp.fc2", lp);
    for (guint a = 0; a < G_N_ELEMENTS (attn); a++) {
      g_autofree char *ap = fmt ("%sself_attn.%s", lp, attn[a]);
      linear (b, ap, c, c, TRUE);
    }
    norm (b, ln1, c);
    norm (b, ln2, c);
    linear (b, fc1, t->ff_width, c, TRUE);
    linear (b, fc2, c, t->ff_width, TRUE);
  }
  g_autofree char *fln = fmt ("%sfinal_layer_norm", p);
  norm (b, fln, c);
  if (t->projection > 0) {
    const gint64 proj[2] = { t->projection, c };
    add (b, EASEL_INIT_WEIGHT, c, t->prefix, "text_projection.weight", 2, proj);
  }
}

/* OpenCLIP TextTransformer under PREFIX */
static void
text_openclip_tensors (Builder *b, const EaselTextSpec *t)
{
  const char *p = t->prefix;
  const gint64 c = t->width, tok[2] = { t->vocab, c }, pos[2] = { t->n_positions, c };
  const gint64 qkv_w[2] = { 3 * c, c }, qkv_b[1] = { 3 * c };

  add (b, EASEL_INIT_EMBEDDING, 0, p, "token_embedding.weight", 2, tok);
  add (b, EASEL_INIT_POSITION, 0, p, "positional_embedding", 2, pos);
  for (int i = 0; i < t->n_layers; i++) {
    g_autofree char *lp = fmt ("%stransformer.resblocks.%d.", p, i);
    g_autofree char *op = fmt ("%sattn.out_proj", lp), *ln1 = fmt ("%sln_1", lp), *ln2 = fmt ("%sln_2", lp);
    g_autofree char *fc = fmt ("%smlp.c_fc", lp), *pr = fmt ("%smlp.c_proj", lp);
    add (b, EASEL_INIT_WEIGHT, c, lp, "attn.in_proj_weight", 2, qkv_w);
    add (b, EASEL_INIT_BIAS, 0, lp, "attn.in_proj_bias", 1, qkv_b);
    linear (b, op, c, c, TRUE);
    norm (b, ln1, c);
    norm (b, ln2, c);
    linear (b, fc, t->ff_width, c, TRUE);
    linear (b, pr, c, t->ff_width, TRUE);
  }
  g_autofree char *fln = fmt ("%sln_final", p);
  norm (b, fln, c);
  if (t->projection > 0) {
    const gint64 proj[2] = { c, t->projection };   /* used as x @ W */
    add (b, EASEL_INIT_WEIGHT, c, p, "text_projection", 2, proj);
  }
  if (t->logit_scale)
    add (b, EASEL_INIT_LOGIT_SCALE, 0, p, "logit_scale", 0, NULL);
}

static int
compare_tensor_names (gconstpointer a, gconstpointer b)
{
  return strcmp (((const EaselSpecTensor *) a)->name, ((const EaselSpecTensor *) b)->name);
}

EaselSpecTensorList *
easel_model_spec_tensors (const EaselModelSpec *spec, EaselDType float_dtype)
{
  Builder b;
  EaselSpecTensorList *list;

  g_return_val_if_fail (spec->unet.n_levels > 0 && spec->unet.n_levels <= EASEL_SPEC_MAX_LEVELS, NULL);
  g_return_val_if_fail (spec->unet.n_res_blocks > 0 && spec->unet.depth_middle > 0, NULL);
  g_return_val_if_fail (spec->vae.n_levels > 0 && spec->vae.n_levels <= EASEL_SPEC_MAX_LEVELS, NULL);
  g_return_val_if_fail (spec->n_text >= 0 && spec->n_text <= EASEL_SPEC_MAX_TEXT, NULL);
  b = (Builder) { g_array_new (FALSE, TRUE, sizeof (EaselSpecTensor)), g_string_chunk_new (1 << 16), float_dtype };
  list = g_new0 (EaselSpecTensorList, 1);
  unet_tensors (&b, &spec->unet);
  vae_tensors (&b, &spec->vae);
  for (int i = 0; i < spec->n_text; i++) {
    if (spec->text[i].naming == EASEL_TEXT_NAMING_CLIP)
      text_clip_tensors (&b, &spec->text[i]);
    else
      text_openclip_tensors (&b, &spec->text[i]);
  }
  g_array_sort (b.tensors, compare_tensor_names);
  list->n_tensors = b.tensors->len;
  list->tensors = (EaselSpecTensor *) g_array_free (b.tensors, FALSE);
  list->names = b.names;
  return list;
}

void
easel_spec_tensor_list_free (EaselSpecTensorList *list)
{
  if (list == NULL)
    return;
  g_free (list->tensors);
  g_string_chunk_free (list->names);
  g_free (list);
}

guint64
easel_spec_tensor_list_bytes (const EaselSpecTensorList *list)
{
  guint64 n = 0;
  for (gsize i = 0; i < list->n_tensors; i++)
    n += list->tensors[i].n_elements * easel_dtype_size (list->tensors[i].dtype);
  return n;
}

/* ---------------------------------------------------------------------------------------------
 * config.json hints */

static void
append_int_array (GString *s, const char *key, const gint64 *v, int n)
{
  g_string_append_printf (s, "  \"%s\": [", key);
  for (int i = 0; i < n; i++)
    g_string_append_printf (s, i ? ", %" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, v[i]);
  g_string_append (s, "],\n");
}

static char *
unet_config (const EaselModelSpec *spec)
{
  const EaselUNetSpec *u = &spec->unet;
  GString *s = g_string_new ("{\n  \"_class_name\": \"UNet2DConditionModel\",\n");
  gint64 heads[EASEL_SPEC_MAX_LEVELS], depth[EASEL_SPEC_MAX_LEVELS];

  for (int l = 0; l < u->n_levels; l++) {
    heads[l] = u->heads[l];
    depth[l] = MAX (1, u->depth[l]);
  }
  g_string_append_printf (s, "  \"in_channels\": %" G_GINT64_FORMAT ",\n  \"out_channels\": %" G_GINT64_FORMAT ",\n",
                          u->in_channels, u->out_channels);
  append_int_array (s, "block_out_channels", u->channels, u->n_levels);
  g_string_append_printf (s, "  \"layers_per_block\": %d,\n", u->n_res_blocks);
  g_string_append_printf (s, "  \"cross_attention_dim\": %" G_GINT64_FORMAT ",\n", u->context_dim);
  /* diffusers' attention_head_dim counts heads (its long-standing naming mix-up) */
  append_int_array (s, "attention_head_dim", heads, u->n_levels);
  append_int_array (s, "transformer_layers_per_block", depth, u->n_levels);
  g_string_append_printf (s, "  \"use_linear_projection\": %s,\n", u->linear_proj ? "true" : "false");
  if (u->adm_in > 0)
    g_string_append_printf (s, "  \"addition_embed_type\": \"text_time\",\n  \"addition_time_embed_dim\": %"
                            G_GINT64_FORMAT ",\n  \"projection_class_embeddings_input_dim\": %" G_GINT64_FORMAT ",\n",
                            u->time_id_width, u->adm_in);
  g_string_append (s, "  \"norm_num_groups\": 32\n}\n");
  return g_string_free (s, FALSE);
}

static char *
text_config (const EaselTextSpec *t)
{
  return g_strdup_printf ("{\n  \"architectures\": [\"%s\"],\n  \"vocab_size\": %" G_GINT64_FORMAT ",\n"
                          "  \"hidden_size\": %" G_GINT64_FORMAT ",\n  \"intermediate_size\": %" G_GINT64_FORMAT ",\n"
                          "  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
                          "  \"max_position_embeddings\": %" G_GINT64_FORMAT ",\n  \"hidden_act\": \"%s\",\n"
                          "  \"layer_norm_eps\": 1e-05,\n  \"projection_dim\": %" G_GINT64_FORMAT "\n}\n",
                          t->projection > 0 ? "CLIPTextModelWithProjection" : "CLIPTextModel", t->vocab, t->width,
                          t->ff_width, t->n_layers, t->heads, t->n_positions, t->quick_gelu ? "quick_gelu" : "gelu",
                          t->projection > 0 ? t->projection : t->width);
}

static char *
vae_config (const EaselVaeSpec *v)
{
  GString *s = g_string_new ("{\n  \"_class_name\": \"AutoencoderKL\",\n");
  g_string_append_printf (s, "  \"in_channels\": %" G_GINT64_FORMAT ",\n  \"out_channels\": %" G_GINT64_FORMAT ",\n",
                          v->in_channels, v->in_channels);
  append_int_array (s, "block_out_channels", v->channels, v->n_levels);
  g_string_append_printf (s, "  \"layers_per_block\": %d,\n  \"latent_channels\": %" G_GINT64_FORMAT ",\n",
                          v->n_res_blocks, v->latent_channels);
  g_string_append_printf (s, "  \"norm_num_groups\": 32,\n  \"scaling_factor\": %g\n}\n", v->scaling_factor);
  return g_string_free (s, FALSE);
}

char *
easel_model_spec_config_json (const EaselModelSpec *spec, const char *part)
{
  /* diffusers' order: the refiner's only encoder is text_encoder_2 */
  gboolean refiner = spec->family == EASEL_FAMILY_SDXL_REFINER;

  if (g_strcmp0 (part, "unet") == 0)
    return unet_config (spec);
  if (g_strcmp0 (part, "vae") == 0)
    return vae_config (&spec->vae);
  if (g_strcmp0 (part, "text_encoder") == 0 && !refiner && spec->n_text >= 1)
    return text_config (&spec->text[0]);
  if (g_strcmp0 (part, "text_encoder_2") == 0 && (refiner || spec->n_text >= 2))
    return text_config (&spec->text[refiner ? 0 : 1]);
  return NULL;
}
