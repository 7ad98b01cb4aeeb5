/* engine/vae.c: AutoencoderKL encoder and decoder as graphs (ldm's diffusionmodules/model.py
 * Encoder/Decoder and diffusers' AutoencoderKL: the same network), weight binding for both namings,
 * tiled encoding/decoding and the latent -> RGB preview.
 *
 * ResnetBlock: x -> GN+SiLU -> conv3x3 -> GN+SiLU -> conv3x3, + x (1x1 nin_shortcut when the width
 * changes). Downsample: F.pad (0, 1, 0, 1), conv3x3 stride 2, no padding. Upsample: nearest 2x,
 * conv3x3. Mid: block_1, single-head attention over the H·W tokens (scale 1/sqrt(C)), block_2.
 * GroupNorm: 32 groups, eps 1e-6. */
#include "vae.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "weights.h"

/* --- weights ----------------------------------------------------------------------------------- */

typedef struct {
  const EaselStTensor *w, *b;
} Pair;

typedef struct {
  Pair norm1, conv1, norm2, conv2, skip;    /* skip.w NULL: identity shortcut */
} ResBlock;

typedef struct {
  Pair norm, q, k, v, out;                  /* q, k, v, out: [C, C] or [C, C, 1, 1] */
} AttnBlock;

typedef struct {
  Pair conv_in;
  ResBlock blocks[EASEL_VAE_MAX_LEVELS][EASEL_VAE_MAX_BLOCKS];
  Pair resample[EASEL_VAE_MAX_LEVELS];      /* encoder: downsample of levels 0 .. L-2; decoder: upsample of 1 .. L-1 */
  ResBlock mid1, mid2;
  AttnBlock attn;
  Pair norm_out, conv_out;
} Coder;

struct _EaselVae {
  EaselVaeConfig config;
  EaselWeights *weights;
  Coder enc, dec;
  Pair quant_conv, post_quant_conv;
};

/* --- naming ------------------------------------------------------------------------------------ */

typedef struct {
  int n_levels;     /* decoder up_blocks count: diffusers up_blocks.N is ldm's up.(n_levels-1-N) */
} RenameCtx;

static char *
attn_leaf (const char *coder, const char *rest)
{
  static const char *const map[][2] = {
    { "group_norm.", "norm." }, { "to_q.", "q." }, { "to_k.", "k." }, { "to_v.", "v." }, { "to_out.0.", "proj_out." },
    { "query.", "q." }, { "key.", "k." }, { "value.", "v." }, { "proj_attn.", "proj_out." },   /* diffusers < 0.14 */
  };
  for (guint i = 0; i < G_N_ELEMENTS (map); i++)
    if (g_str_has_prefix (rest, map[i][0]))
      return g_strdup_printf ("%s.mid.attn_1.%s%s", coder, map[i][1], rest + strlen (map[i][0]));
  return g_strdup_printf ("%s.mid.attn_1.%s", coder, rest);
}

static const char *
resnet_leaf (const char *rest)
{
  return g_str_has_prefix (rest, "conv_shortcut.") ? "nin_shortcut." : "";
}

/* A diffusers AutoencoderKL key -> the ldm name; ldm keys are kept. */
static char *
rename_key (const char *key, gpointer user_data)
{
  const RenameCtx *ctx = user_data;
  char coder[8];
  int i, j, n = -1;

  if (sscanf (key, "%7[a-z].down_blocks.%d.resnets.%d.%n", coder, &i, &j, &n) == 3 && n > 0) {
    const char *rest = key + n, *leaf = resnet_leaf (rest);
    return g_strdup_printf ("%s.down.%d.block.%d.%s%s", coder, i, j, leaf, leaf[0] ? rest + strlen ("conv_shortcut.") : rest);
  }
  n = -1;
  if (sscanf (key, "%7[a-z].down_blocks.%d.downsamplers.0.%n", coder, &i, &n) == 2 && n > 0)
    return g_strdup_printf ("%s.down.%d.downsample.%s", coder, i, key + n);
  n = -1;
  if (sscanf (key, "%7[a-z].up_blocks.%d.resnets.%d.%n", coder, &i, &j, &n) == 3 && n > 0) {
    const char *rest = key + n, *leaf = resnet_leaf (rest);
    return g_strdup_printf ("%s.up.%d.block.%d.%s%s", coder, ctx->n_levels - 1 - i, j, leaf,
                            leaf[0] ? rest + strlen ("conv_shortcut.") : rest);
  }
  n = -1;
  if (sscanf (key, "%7[a-z].up_blocks.%d.upsamplers.0.%n", coder, &i, &n) == 2 && n > 0)
    return g_strdup_printf ("%s.up.%d.upsample.%s", coder, ctx->n_levels - 1 - i, key + n);
  n = -1;
  if (sscanf (key, "%7[a-z].mid_block.resnets.%d.%n", coder, &i, &n) == 2 && n > 0) {
    const char *rest = key + n, *leaf = resnet_leaf (rest);
    return g_strdup_printf ("%s.mid.block_%d.%s%s", coder, i + 1, leaf, leaf[0] ? rest + strlen ("conv_shortcut.") : rest);
  }
  n = -1;
  if (sscanf (key, "%7[a-z].mid_block.attentions.0.%n", coder, &n) == 1 && n > 0)
    return attn_leaf (coder, key + n);
  n = -1;
  if (sscanf (key, "%7[a-z].conv_norm_out.%n", coder, &n) == 1 && n > 0)
    return g_strdup_printf ("%s.norm_out.%s", coder, key + n);
  return g_strdup (key);
}

/* Where the VAE lives in ck: "vae/", "first_stage_model." or "" (a bare VAE file); NULL if nowhere. */
static const char *
find_prefix (const EaselCheckpoint *ck)
{
  static const char *const prefixes[] = { "vae/", "first_stage_model.", "" };
  static const char *const probes[] = { "decoder.conv_in.weight", "encoder.conv_in.weight" };
  for (guint i = 0; i < G_N_ELEMENTS (prefixes); i++)
    for (guint j = 0; j < G_N_ELEMENTS (probes); j++) {
      g_autofree char *name = g_strconcat (prefixes[i], probes[j], NULL);
      if (easel_checkpoint_find (ck, name))
        return prefixes[i];
    }
  return NULL;
}

/* diffusers decoder levels: 1 + the largest N of "<prefix>decoder.up_blocks.N." */
static int
count_up_blocks (const EaselCheckpoint *ck, const char *prefix)
{
  g_autofree char *head = g_strconcat (prefix, "decoder.up_blocks.", NULL);
  gsize hl = strlen (head);
  int n = 0;
  for (gsize i = 0; i < easel_checkpoint_n_tensors (ck); i++) {
    const char *name = easel_checkpoint_tensor (ck, i)->name;
    if (strncmp (name, head, hl) == 0) {
      gint64 v = g_ascii_strtoll (name + hl, NULL, 10);
      if (v >= 0 && v < EASEL_VAE_MAX_LEVELS)
        n = MAX (n, (int) v + 1);
    }
  }
  return n;
}

/* --- binding ----------------------------------------------------------------------------------- */

static gboolean
bind_pair (EaselWeights *w, const char *name, int n_dims, const gint64 *shape, gboolean bias, Pair *out,
           GError **error)
{
  g_autofree char *wn = g_strconcat (name, ".weight", NULL);
  g_autofree char *bn = g_strconcat (name, ".bias", NULL);
  out->w = easel_weights_require (w, wn, n_dims, shape, error);
  if (out->w == NULL)
    return FALSE;
  out->b = NULL;
  if (bias && (out->b = easel_weights_require (w, bn, 1, shape, error)) == NULL)
    return FALSE;
  return TRUE;
}

static gboolean
bind_conv (EaselWeights *w, const char *name, gint64 co, gint64 ci, gint64 k, Pair *out, GError **error)
{
  const gint64 shape[4] = { co, ci, k, k };
  return bind_pair (w, name, 4, shape, TRUE, out, error);
}

static gboolean
bind_norm (EaselWeights *w, const char *name, gint64 c, Pair *out, GError **error)
{
  const gint64 shape[1] = { c };
  return bind_pair (w, name, 1, shape, TRUE, out, error);
}

/* A [C, C] matrix stored as Linear [C, C] or 1x1 conv [C, C, 1, 1], and its bias [C]. */
static gboolean
bind_matrix (EaselWeights *w, const char *name, gint64 c, Pair *out, GError **error)
{
  g_autofree char *wn = g_strconcat (name, ".weight", NULL);
  const EaselStTensor *st = easel_weights_get (w, wn);
  if (st != NULL && st->n_dims == 4) {
    const gint64 shape[4] = { c, c, 1, 1 };
    return bind_pair (w, name, 4, shape, TRUE, out, error);
  }
  const gint64 shape[2] = { c, c };
  return bind_pair (w, name, 2, shape, TRUE, out, error);
}

static gboolean
bind_resblock (EaselWeights *w, const char *prefix, gint64 ci, gint64 co, ResBlock *rb, GError **error)
{
  g_autofree char *n1 = g_strconcat (prefix, ".norm1", NULL), *c1 = g_strconcat (prefix, ".conv1", NULL);
  g_autofree char *n2 = g_strconcat (prefix, ".norm2", NULL), *c2 = g_strconcat (prefix, ".conv2", NULL);
  g_autofree char *sk = g_strconcat (prefix, ".nin_shortcut", NULL), *skw = g_strconcat (sk, ".weight", NULL);

  if (!bind_norm (w, n1, ci, &rb->norm1, error) || !bind_conv (w, c1, co, ci, 3, &rb->conv1, error)
      || !bind_norm (w, n2, co, &rb->norm2, error) || !bind_conv (w, c2, co, co, 3, &rb->conv2, error))
    return FALSE;
  rb->skip = (Pair) { NULL, NULL };
  if (ci != co || easel_weights_has (w, skw))
    return bind_conv (w, sk, co, ci, 1, &rb->skip, error);
  return TRUE;
}

static gboolean
bind_attn (EaselWeights *w, const char *prefix, gint64 c, AttnBlock *a, GError **error)
{
  g_autofree char *norm = g_strconcat (prefix, ".norm", NULL), *q = g_strconcat (prefix, ".q", NULL);
  g_autofree char *k = g_strconcat (prefix, ".k", NULL), *v = g_strconcat (prefix, ".v", NULL);
  g_autofree char *o = g_strconcat (prefix, ".proj_out", NULL);
  return bind_norm (w, norm, c, &a->norm, error) && bind_matrix (w, q, c, &a->q, error)
         && bind_matrix (w, k, c, &a->k, error) && bind_matrix (w, v, c, &a->v, error)
         && bind_matrix (w, o, c, &a->out, error);
}

static gboolean
bind_mid (EaselWeights *w, const char *coder, gint64 c, gboolean attention, Coder *cd, GError **error)
{
  g_autofree char *b1 = g_strdup_printf ("%s.mid.block_1", coder), *b2 = g_strdup_printf ("%s.mid.block_2", coder);
  g_autofree char *at = g_strdup_printf ("%s.mid.attn_1", coder);
  return bind_resblock (w, b1, c, c, &cd->mid1, error) && (!attention || bind_attn (w, at, c, &cd->attn, error))
         && bind_resblock (w, b2, c, c, &cd->mid2, error);
}

/* channels of level l from "<coder>.<level>.L.block.0.conv1.weight"; 0 when absent */
static gint64
level_channels (EaselWeights *w, const char *coder, const char *level, int l)
{
  g_autofree char *name = g_strdup_printf ("%s.%s.%d.block.0.conv1.weight", coder, level, l);
  const EaselStTensor *st = easel_weights_has (w, name) ? easel_weights_get (w, name) : NULL;
  return st && st->n_dims == 4 ? st->shape[0] : 0;
}

static int
count_blocks (EaselWeights *w, const char *coder, const char *level)
{
  int j = 0;
  for (; j < EASEL_VAE_MAX_BLOCKS; j++) {
    g_autofree char *name = g_strdup_printf ("%s.%s.0.block.%d.conv1.weight", coder, level, j);
    if (!easel_weights_has (w, name))
      break;
  }
  return j;
}

static gboolean
bind_encoder (EaselVae *vae, GError **error)
{
  EaselVaeConfig *c = &vae->config;
  EaselWeights *w = vae->weights;
  Coder *e = &vae->enc;
  const EaselStTensor *cin = easel_weights_get (w, "encoder.conv_in.weight");
  gint64 prev;

  if (cin == NULL || cin->n_dims != 4) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%sencoder.conv_in.weight: not a conv weight",
                 easel_weights_prefix (w));
    return FALSE;
  }
  c->in_channels = cin->shape[1];
  if (!bind_conv (w, "encoder.conv_in", c->channels[0], c->in_channels, 3, &e->conv_in, error))
    return FALSE;
  prev = c->channels[0];
  for (int l = 0; l < c->n_levels; l++) {
    for (int j = 0; j < c->encoder_blocks; j++) {
      g_autofree char *name = g_strdup_printf ("encoder.down.%d.block.%d", l, j);
      if (!bind_resblock (w, name, prev, c->channels[l], &e->blocks[l][j], error))
        return FALSE;
      prev = c->channels[l];
    }
    if (l < c->n_levels - 1) {
      g_autofree char *name = g_strdup_printf ("encoder.down.%d.downsample.conv", l);
      if (!bind_conv (w, name, prev, prev, 3, &e->resample[l], error))
        return FALSE;
    }
  }
  c->encoder_attention = easel_weights_has (w, "encoder.mid.attn_1.q.weight");
  if (!bind_mid (w, "encoder", prev, c->encoder_attention, e, error) || !bind_norm (w, "encoder.norm_out", prev, &e->norm_out, error)
      || !bind_conv (w, "encoder.conv_out", 2 * c->latent_channels, prev, 3, &e->conv_out, error))
    return FALSE;
  c->has_quant_conv = easel_weights_has (w, "quant_conv.weight");
  return !c->has_quant_conv
         || bind_conv (w, "quant_conv", 2 * c->latent_channels, 2 * c->latent_channels, 1, &vae->quant_conv, error);
}

static gboolean
bind_decoder (EaselVae *vae, GError **error)
{
  EaselVaeConfig *c = &vae->config;
  EaselWeights *w = vae->weights;
  Coder *d = &vae->dec;
  int top = c->n_levels - 1;
  gint64 prev = c->channels[top];

  c->has_post_quant_conv = easel_weights_has (w, "post_quant_conv.weight");
  if (c->has_post_quant_conv
      && !bind_conv (w, "post_quant_conv", c->latent_channels, c->latent_channels, 1, &vae->post_quant_conv, error))
    return FALSE;
  if (!bind_conv (w, "decoder.conv_in", prev, c->latent_channels, 3, &d->conv_in, error))
    return FALSE;
  c->decoder_attention = easel_weights_has (w, "decoder.mid.attn_1.q.weight");
  if (!bind_mid (w, "decoder", prev, c->decoder_attention, d, error))
    return FALSE;
  for (int l = top; l >= 0; l--) {
    for (int j = 0; j < c->decoder_blocks; j++) {
      g_autofree char *name = g_strdup_printf ("decoder.up.%d.block.%d", l, j);
      if (!bind_resblock (w, name, prev, c->channels[l], &d->blocks[l][j], error))
        return FALSE;
      prev = c->channels[l];
    }
    if (l > 0) {
      g_autofree char *name = g_strdup_printf ("decoder.up.%d.upsample.conv", l);
      if (!bind_conv (w, name, prev, prev, 3, &d->resample[l], error))
        return FALSE;
    }
  }
  const EaselStTensor *cout = easel_weights_get (w, "decoder.conv_out.weight");
  if (cout == NULL || cout->n_dims != 4) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%sdecoder.conv_out.weight: missing or not a conv weight",
                 easel_weights_prefix (w));
    return FALSE;
  }
  c->out_channels = cout->shape[0];
  return bind_norm (w, "decoder.norm_out", prev, &d->norm_out, error)
         && bind_conv (w, "decoder.conv_out", c->out_channels, prev, 3, &d->conv_out, error);
}

/* Levels, channels, blocks and latent width off the tensors; the hint's overrides. */
static gboolean
read_config (EaselVae *vae, const EaselCheckpoint *ck, const EaselJson *hint, GError **error)
{
  EaselVaeConfig *c = &vae->config;
  EaselWeights *w = vae->weights;
  const char *prefix = easel_weights_prefix (w);
  int enc_levels = 0, dec_levels = 0;

  while (enc_levels < EASEL_VAE_MAX_LEVELS && level_channels (w, "encoder", "down", enc_levels) > 0)
    enc_levels++;
  while (dec_levels < EASEL_VAE_MAX_LEVELS && level_channels (w, "decoder", "up", dec_levels) > 0)
    dec_levels++;
  if (enc_levels > 0 && dec_levels > 0 && enc_levels != dec_levels) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: VAE encoder has %d levels, decoder %d",
                 easel_checkpoint_path (ck), enc_levels, dec_levels);
    return FALSE;
  }
  c->n_levels = MAX (enc_levels, dec_levels);
  if (c->n_levels == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: no VAE resolution levels under '%s'",
                 easel_checkpoint_path (ck), prefix);
    return FALSE;
  }
  for (int l = 0; l < c->n_levels; l++) {
    gint64 ce = enc_levels ? level_channels (w, "encoder", "down", l) : 0;
    gint64 cd = dec_levels ? level_channels (w, "decoder", "up", l) : 0;
    if (ce && cd && ce != cd) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                   "%s: VAE level %d has %" G_GINT64_FORMAT " channels in the encoder, %" G_GINT64_FORMAT " in the decoder",
                   easel_checkpoint_path (ck), l, ce, cd);
      return FALSE;
    }
    c->channels[l] = ce ? ce : cd;
  }
  c->encoder_blocks = enc_levels ? count_blocks (w, "encoder", "down") : 0;
  c->decoder_blocks = dec_levels ? count_blocks (w, "decoder", "up") : 0;

  const EaselStTensor *lat = easel_weights_get (w, dec_levels ? "decoder.conv_in.weight" : "encoder.conv_out.weight");
  if (lat == NULL || lat->n_dims != 4) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s%s: missing or not a conv weight", prefix,
                 dec_levels ? "decoder.conv_in.weight" : "encoder.conv_out.weight");
    return FALSE;
  }
  c->latent_channels = dec_levels ? lat->shape[1] : lat->shape[0] / 2;

  c->groups = 32;
  c->eps = 1e-6f;
  c->family = easel_checkpoint_detection (ck)->family;
  c->scaling_factor = c->family == EASEL_FAMILY_SDXL || c->family == EASEL_FAMILY_SDXL_INPAINT
                      || c->family == EASEL_FAMILY_SDXL_REFINER ? 0.13025 : 0.18215;
  c->shift_factor = 0.0;
  if (hint != NULL) {
    double d;
    gint64 i;
    const EaselJson *boc = easel_json_get (hint, "block_out_channels");
    if (easel_json_double (easel_json_get (hint, "scaling_factor"), &d) && d > 0)
      c->scaling_factor = d;
    if (easel_json_double (easel_json_get (hint, "shift_factor"), &d))
      c->shift_factor = d;
    if (easel_json_int64 (easel_json_get (hint, "norm_num_groups"), &i) && i > 0 && i <= G_MAXINT)
      c->groups = (int) i;
    if (boc != NULL) {
      gboolean same = easel_json_length (boc) == (gsize) c->n_levels;
      for (int l = 0; same && l < c->n_levels; l++)
        same = easel_json_int64 (easel_json_at (boc, l), &i) && i == c->channels[l];
      if (!same) {
        g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                     "%s: VAE config.json block_out_channels do not match the weights (%d levels, first %" G_GINT64_FORMAT ")",
                     easel_checkpoint_path (ck), c->n_levels, c->channels[0]);
        return FALSE;
      }
    }
  }
  for (int l = 0; l < c->n_levels; l++)
    if (c->channels[l] % c->groups != 0) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                   "%s: VAE level %d has %" G_GINT64_FORMAT " channels, not a multiple of %d GroupNorm groups",
                   easel_checkpoint_path (ck), l, c->channels[l], c->groups);
      return FALSE;
    }
  if (c->latent_channels < 1 || (dec_levels && c->decoder_blocks == 0) || (enc_levels && c->encoder_blocks == 0)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: VAE has no res blocks or no latent channels",
                 easel_checkpoint_path (ck));
    return FALSE;
  }
  return TRUE;
}

void
easel_vae_free (EaselVae *vae)
{
  if (vae == NULL)
    return;
  easel_weights_free (vae->weights);
  g_free (vae);
}

EaselVae *
easel_vae_new (const EaselCheckpoint *ck, const EaselJson *config_hint, GError **error)
{
  g_autoptr(EaselVae) vae = g_new0 (EaselVae, 1);
  const char *prefix = find_prefix (ck);
  RenameCtx ctx;

  if (prefix == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no VAE weights (vae/, first_stage_model., encoder./decoder.)",
                 easel_checkpoint_path (ck));
    return NULL;
  }
  if (config_hint == NULL)
    config_hint = easel_checkpoint_config (ck, "vae");
  ctx.n_levels = count_up_blocks (ck, prefix);
  /* only the VAE's own keys when the VAE is the whole file */
  vae->weights = easel_weights_new (ck, prefix, rename_key, &ctx, error);
  if (vae->weights == NULL || !read_config (vae, ck, config_hint, error))
    return NULL;
  if ((vae->config.encoder_blocks > 0 && !bind_encoder (vae, error))
      || (vae->config.decoder_blocks > 0 && !bind_decoder (vae, error))) {
    /* a VAE is there but incomplete or misshapen: the file is at fault, whichever tensor it was */
    if (error && *error) {
      (*error)->code = EASEL_ERROR_INVALID_FILE;
      g_prefix_error (error, "%s: VAE: ", easel_checkpoint_path (ck));
    }
    return NULL;
  }
  return g_steal_pointer (&vae);
}

const EaselVaeConfig *
easel_vae_get_config (const EaselVae *vae)
{
  return &vae->config;
}

gint64
easel_vae_factor (const EaselVae *vae)
{
  return (gint64) 1 << (vae->config.n_levels - 1);
}

gint64
easel_vae_latent_side (const EaselVae *vae, gint64 image_side)
{
  for (int l = 0; l < vae->config.n_levels - 1; l++)
    image_side = image_side / 2;   /* (n + 1 - 3) / 2 + 1 */
  return image_side;
}

/* --- graphs ------------------------------------------------------------------------------------ */

static EaselTensor *
leaf (EaselGraph *g, const EaselStTensor *st)
{
  return easel_graph_weight_st (g, st);
}

/* a [C, C] weight leaf over a Linear or 1x1-conv tensor's data */
static EaselTensor *
matrix_leaf (EaselGraph *g, const EaselStTensor *st)
{
  const gint64 shape[2] = { st->shape[0], st->shape[1] };
  return easel_graph_weight (g, st->name, st->dtype, 2, shape, st->data);
}

static EaselTensor *
conv (EaselGraph *g, EaselTensor *x, const Pair *p, int pad)
{
  return easel_op_conv2d (g, x, leaf (g, p->w), leaf (g, p->b), 1, pad);
}

static EaselTensor *
norm (EaselGraph *g, EaselTensor *x, const Pair *p, const EaselVaeConfig *c, gboolean silu)
{
  return easel_op_group_norm (g, x, leaf (g, p->w), leaf (g, p->b), c->groups, c->eps, silu);
}

/* x (B, Ci, H, W) -> (B, Co, H, W) */
static EaselTensor *
resblock (EaselGraph *g, EaselTensor *x, const ResBlock *rb, const EaselVaeConfig *c)
{
  EaselTensor *h = conv (g, norm (g, x, &rb->norm1, c, TRUE), &rb->conv1, 1);
  h = conv (g, norm (g, h, &rb->norm2, c, TRUE), &rb->conv2, 1);
  return easel_op_add (g, rb->skip.w ? conv (g, x, &rb->skip, 0) : x, h);
}

/* x (B, C, H, W) -> x + proj_out (attention (q, k, v)) over the H·W tokens, one head */
static EaselTensor *
attn_block (EaselGraph *g, EaselTensor *x, const AttnBlock *a, const EaselVaeConfig *c)
{
  const gint64 B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  const gint64 bcl[3] = { B, C, H * W };
  const int swap[3] = { 0, 2, 1 };
  EaselTensor *h = easel_op_reshape (g, norm (g, x, &a->norm, c, FALSE), 3, bcl);
  EaselTensor *tok = easel_op_contiguous (g, easel_op_permute (g, h, swap));      /* (B, HW, C) */
  EaselTensor *q = easel_op_linear (g, tok, matrix_leaf (g, a->q.w), leaf (g, a->q.b));
  EaselTensor *k = easel_op_linear (g, tok, matrix_leaf (g, a->k.w), leaf (g, a->k.b));
  EaselTensor *v = easel_op_linear (g, tok, matrix_leaf (g, a->v.w), leaf (g, a->v.b));
  EaselTensor *o = easel_op_attention (g, q, k, v, 1, (float) (1.0 / sqrt ((double) C)), FALSE);
  o = easel_op_linear (g, o, matrix_leaf (g, a->out.w), leaf (g, a->out.b));       /* (B, HW, C) */
  o = easel_op_contiguous (g, easel_op_permute (g, o, swap));                      /* (B, C, HW) */
  return easel_op_add (g, x, easel_op_reshape (g, o, 4, x->shape));
}

static EaselTensor *
mid_block (EaselGraph *g, EaselTensor *h, const Coder *cd, gboolean attention, const EaselVaeConfig *c)
{
  h = resblock (g, h, &cd->mid1, c);
  if (attention)
    h = attn_block (g, h, &cd->attn, c);
  return resblock (g, h, &cd->mid2, c);
}

/* image (B, Cin, H, W) -> moments (B, 2 Cl, h, w) */
static EaselTensor *
build_encoder (EaselGraph *g, const EaselVae *vae, EaselTensor *x)
{
  const EaselVaeConfig *c = &vae->config;
  const Coder *e = &vae->enc;
  EaselTensor *h = conv (g, x, &e->conv_in, 1);

  for (int l = 0; l < c->n_levels; l++) {
    for (int j = 0; j < c->encoder_blocks; j++)
      h = resblock (g, h, &e->blocks[l][j], c);
    if (l < c->n_levels - 1)   /* F.pad (0, 1, 0, 1), stride 2, no padding */
      h = easel_op_conv2d_ext (g, h, leaf (g, e->resample[l].w), leaf (g, e->resample[l].b), 2, 0, 1, 1);
  }
  h = mid_block (g, h, e, c->encoder_attention, c);
  h = conv (g, norm (g, h, &e->norm_out, c, TRUE), &e->conv_out, 1);
  if (c->has_quant_conv)
    h = conv (g, h, &vae->quant_conv, 0);
  return h;
}

/* z (B, Cl, h, w) -> image (B, Cout, h f, w f) */
static EaselTensor *
build_decoder (EaselGraph *g, const EaselVae *vae, EaselTensor *z)
{
  const EaselVaeConfig *c = &vae->config;
  const Coder *d = &vae->dec;
  EaselTensor *h = c->has_post_quant_conv ? conv (g, z, &vae->post_quant_conv, 0) : z;

  h = mid_block (g, conv (g, h, &d->conv_in, 1), d, c->decoder_attention, c);
  for (int l = c->n_levels - 1; l >= 0; l--) {
    for (int j = 0; j < c->decoder_blocks; j++)
      h = resblock (g, h, &d->blocks[l][j], c);
    if (l > 0)
      h = conv (g, easel_op_upsample_nearest (g, h, 2 * h->shape[2], 2 * h->shape[3]), &d->resample[l], 1);
  }
  return conv (g, norm (g, h, &d->norm_out, c, TRUE), &d->conv_out, 1);
}

static gboolean
check_size (const char *what, gint64 batch, gint64 h, gint64 w, gint64 min, GError **error)
{
  if (batch < 1 || h < min || w < min || h > (1 << 20) || w > (1 << 20)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "VAE %s: size %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " (batch %" G_GINT64_FORMAT ") is out of range",
                 what, h, w, batch);
    return FALSE;
  }
  return TRUE;
}

static gboolean
compute (EaselBackend *backend, EaselGraph *g, GError **error)
{
  const GError *ge = easel_graph_error (g);
  if (ge != NULL) {
    g_set_error (error, ge->domain, ge->code, "VAE: %s", ge->message);
    return FALSE;
  }
  return easel_backend_compute (backend, g, error);
}

gboolean
easel_vae_decode (EaselVae *vae, EaselBackend *backend, const float *z, gint64 batch, gint64 h, gint64 w,
                  float *image, GError **error)
{
  g_return_val_if_fail (vae && backend && z && image, FALSE);
  if (vae->config.decoder_blocks == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "VAE decode: this VAE has no decoder");
    return FALSE;
  }
  if (!check_size ("decode", batch, h, w, 1, error))
    return FALSE;
  g_autoptr(EaselGraph) g = easel_graph_new ();
  const gint64 shape[4] = { batch, vae->config.latent_channels, h, w };
  EaselTensor *out = build_decoder (g, vae, easel_graph_input (g, "vae.z", EASEL_DTYPE_F32, 4, shape, z));
  easel_graph_mark_output (g, out);
  return compute (backend, g, error) && easel_backend_read (backend, out, image, error);
}

gboolean
easel_vae_encode (EaselVae *vae, EaselBackend *backend, const float *image, gint64 batch, gint64 height,
                  gint64 width, float *mean, float *logvar, GError **error)
{
  g_return_val_if_fail (vae && backend && image && mean && logvar, FALSE);
  if (vae->config.encoder_blocks == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "VAE encode: this VAE has no encoder");
    return FALSE;
  }
  if (!check_size ("encode", batch, height, width, easel_vae_factor (vae), error))
    return FALSE;
  g_autoptr(EaselGraph) g = easel_graph_new ();
  const gint64 shape[4] = { batch, vae->config.in_channels, height, width };
  const gint64 cl = vae->config.latent_channels;
  EaselTensor *moments = build_encoder (g, vae, easel_graph_input (g, "vae.image", EASEL_DTYPE_F32, 4, shape, image));
  easel_graph_mark_output (g, moments);
  EaselTensor *m = easel_op_slice (g, moments, 1, 0, cl), *lv = easel_op_slice (g, moments, 1, cl, cl);
  if (!compute (backend, g, error) || !easel_backend_read (backend, m, mean, error)
      || !easel_backend_read (backend, lv, logvar, error))
    return FALSE;
  gsize n = (gsize) easel_tensor_numel (lv);
  for (gsize i = 0; i < n; i++)
    logvar[i] = CLAMP (logvar[i], -30.0f, 20.0f);
  return TRUE;
}

/* --- tiles ------------------------------------------------------------------------------------- */

/* Runs one tile: in (batch, c_in, th, tw) -> outs (each (batch, c_out, th·num/den, tw·num/den)). */
typedef gboolean (*TileFunc) (EaselVae *vae, EaselBackend *backend, const float *in, gint64 batch, gint64 th,
                              gint64 tw, float **outs, GError **error);

static gboolean
decode_tile (EaselVae *vae, EaselBackend *backend, const float *in, gint64 batch, gint64 th, gint64 tw, float **outs,
             GError **error)
{
  return easel_vae_decode (vae, backend, in, batch, th, tw, outs[0], error);
}

static gboolean
encode_tile (EaselVae *vae, EaselBackend *backend, const float *in, gint64 batch, gint64 th, gint64 tw, float **outs,
             GError **error)
{
  return easel_vae_encode (vae, backend, in, batch, th, tw, outs[0], outs[1], error);
}

/* Tiles along an axis of n units (tile t, overlap o, in units): count and evenly spread starts, so
 * that neighbours overlap by at least o. */
static gint64
tile_starts (gint64 n, gint64 t, gint64 o, gint64 *starts)
{
  if (n <= t) {
    if (starts)
      starts[0] = 0;
    return 1;
  }
  gint64 k = (n - o + (t - o) - 1) / (t - o);
  k = MAX (k, 2);
  if (starts)
    for (gint64 i = 0; i < k; i++)
      starts[i] = (i * (n - t) + (k - 1) / 2) / (k - 1);
  return k;
}

/* Weight of output position p (0 .. len) of a tile at [s, s + len) of an axis of total outputs: linear
 * ramps of r across inner edges, 1 elsewhere (r 0: everywhere), never 0. */
static float
ramp (gint64 p, gint64 s, gint64 len, gint64 total, gint64 r)
{
  float wgt = 1.0f;
  if (r <= 0)
    return wgt;
  if (s > 0 && p < r)
    wgt *= (float) ((p + 0.5) / r);
  if (s + len < total && len - p <= r)
    wgt *= (float) ((len - p - 0.5) / r);
  return wgt;
}

typedef struct {
  gint64 batch, c_in, h, w;    /* input (batch, c_in, h, w) */
  gint64 c_out, num, den;      /* outputs (batch, c_out, h·num/den, w·num/den) */
  int n_out;
  gint64 unit;                 /* tile starts are multiples of this (input pixels) */
} TileGeometry;

static gboolean
run_tiled (EaselVae *vae, EaselBackend *backend, TileFunc func, const TileGeometry *tg, const float *in, gint64 tile,
           gint64 overlap, float **outs, GError **error)
{
  const gint64 u = tg->unit, oh = tg->h * tg->num / tg->den, ow = tg->w * tg->num / tg->den;
  const gint64 ny = tile_starts (tg->h / u, tile / u, overlap / u, NULL), nx = tile_starts (tg->w / u, tile / u, overlap / u, NULL);
  const gint64 th = MIN (tile, tg->h), tw = MIN (tile, tg->w), oth = th * tg->num / tg->den, otw = tw * tg->num / tg->den;
  const gint64 r = overlap * tg->num / tg->den;
  g_autofree gint64 *sy = g_new (gint64, ny), *sx = g_new (gint64, nx);
  g_autofree float *sum_y = g_new0 (float, oh), *sum_x = g_new0 (float, ow);
  g_autofree float *wy = g_new (float, oth), *wx = g_new (float, otw);
  g_autofree float *tin = g_new (float, tg->batch * tg->c_in * th * tw);
  float *touts[2] = { NULL, NULL };
  gboolean ok = TRUE;

  tile_starts (tg->h / u, tile / u, overlap / u, sy);
  tile_starts (tg->w / u, tile / u, overlap / u, sx);
  for (gint64 i = 0; i < ny; i++)
    sy[i] *= u;
  for (gint64 i = 0; i < nx; i++)
    sx[i] *= u;
  for (int k = 0; k < tg->n_out; k++) {
    touts[k] = g_new (float, tg->batch * tg->c_out * oth * otw);
    memset (outs[k], 0, sizeof (float) * tg->batch * tg->c_out * oh * ow);
  }
  /* per-axis weight sums: the tile weights are products wy·wx over a full grid of tiles */
  for (gint64 i = 0; i < ny; i++)
    for (gint64 p = 0; p < oth; p++)
      sum_y[sy[i] * tg->num / tg->den + p] += ramp (p, sy[i] * tg->num / tg->den, oth, oh, r);
  for (gint64 i = 0; i < nx; i++)
    for (gint64 p = 0; p < otw; p++)
      sum_x[sx[i] * tg->num / tg->den + p] += ramp (p, sx[i] * tg->num / tg->den, otw, ow, r);

  for (gint64 ty = 0; ok && ty < ny; ty++)
    for (gint64 tx = 0; ok && tx < nx; tx++) {
      const gint64 y0 = sy[ty], x0 = sx[tx], oy0 = y0 * tg->num / tg->den, ox0 = x0 * tg->num / tg->den;
      for (gint64 bc = 0; bc < tg->batch * tg->c_in; bc++)
        for (gint64 y = 0; y < th; y++)
          memcpy (tin + (bc * th + y) * tw, in + (bc * tg->h + y0 + y) * tg->w + x0, sizeof (float) * tw);
      ok = func (vae, backend, tin, tg->batch, th, tw, touts, error);
      if (!ok)
        break;
      for (gint64 p = 0; p < oth; p++)
        wy[p] = ramp (p, oy0, oth, oh, r);
      for (gint64 p = 0; p < otw; p++)
        wx[p] = ramp (p, ox0, otw, ow, r);
      for (int k = 0; k < tg->n_out; k++)
        for (gint64 bc = 0; bc < tg->batch * tg->c_out; bc++)
          for (gint64 y = 0; y < oth; y++) {
            float *dst = outs[k] + (bc * oh + oy0 + y) * ow + ox0;
            const float *src = touts[k] + (bc * oth + y) * otw;
            for (gint64 x = 0; x < otw; x++)
              dst[x] += src[x] * wy[y] * wx[x];
          }
    }
  for (int k = 0; k < tg->n_out; k++) {
    g_free (touts[k]);
    if (ok)
      for (gint64 bc = 0; bc < tg->batch * tg->c_out; bc++)
        for (gint64 y = 0; y < oh; y++)
          for (gint64 x = 0; x < ow; x++)
            outs[k][(bc * oh + y) * ow + x] /= sum_y[y] * sum_x[x];
  }
  return ok;
}

static gboolean
check_tiles (const char *what, gint64 tile, gint64 overlap, gint64 unit, GError **error)
{
  if (tile < unit || overlap < 0 || 2 * overlap > tile || tile % unit != 0 || overlap % unit != 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "VAE %s: tile %" G_GINT64_FORMAT " with overlap %" G_GINT64_FORMAT
                 " (need overlap <= tile / 2, both multiples of %" G_GINT64_FORMAT ")", what, tile, overlap, unit);
    return FALSE;
  }
  return TRUE;
}

gboolean
easel_vae_decode_tiled (EaselVae *vae, EaselBackend *backend, const float *z, gint64 batch, gint64 h, gint64 w,
                        gint64 tile, gint64 overlap, float *image, GError **error)
{
  g_return_val_if_fail (vae && backend && z && image, FALSE);
  if (!check_tiles ("tiled decode", tile, overlap, 1, error) || !check_size ("tiled decode", batch, h, w, 1, error))
    return FALSE;
  const TileGeometry tg = { batch, vae->config.latent_channels, h, w, vae->config.out_channels, easel_vae_factor (vae), 1, 1, 1 };
  return run_tiled (vae, backend, decode_tile, &tg, z, tile, overlap, &image, error);
}

gboolean
easel_vae_encode_tiled (EaselVae *vae, EaselBackend *backend, const float *image, gint64 batch, gint64 height,
                        gint64 width, gint64 tile, gint64 overlap, float *mean, float *logvar, GError **error)
{
  g_return_val_if_fail (vae && backend && image && mean && logvar, FALSE);
  const gint64 f = easel_vae_factor (vae);
  if (!check_tiles ("tiled encode", tile, overlap, f, error) || !check_size ("tiled encode", batch, height, width, f, error))
    return FALSE;
  if (height % f != 0 || width % f != 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "VAE tiled encode: image %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " is not a multiple of %" G_GINT64_FORMAT,
                 height, width, f);
    return FALSE;
  }
  float *outs[2] = { mean, logvar };
  const TileGeometry tg = { batch, vae->config.in_channels, height, width, vae->config.latent_channels, 1, f, 2, f };
  return run_tiled (vae, backend, encode_tile, &tg, image, tile, overlap, outs, error);
}

/* --- helpers for the pipeline ------------------------------------------------------------------ */

void
easel_vae_posterior (const float *mean, const float *logvar, const float *noise, gsize n, float *std, float *sample)
{
  for (gsize i = 0; i < n; i++) {
    float s = expf (0.5f * logvar[i]), m = mean[i];
    if (std)
      std[i] = s;
    if (sample)
      sample[i] = noise ? m + s * noise[i] : m;
  }
}

void
easel_vae_latent_to_z (const EaselVae *vae, const float *latent, float *z, gsize n)
{
  const float inv = (float) (1.0 / vae->config.scaling_factor), shift = (float) vae->config.shift_factor;
  for (gsize i = 0; i < n; i++)
    z[i] = latent[i] * inv + shift;
}

void
easel_vae_z_to_latent (const EaselVae *vae, const float *z, float *latent, gsize n)
{
  const float s = (float) vae->config.scaling_factor, shift = (float) vae->config.shift_factor;
  for (gsize i = 0; i < n; i++)
    latent[i] = (z[i] - shift) * s;
}

void
easel_vae_image_to_unit (const float *x, float *y, gsize n)
{
  for (gsize i = 0; i < n; i++)
    y[i] = CLAMP (x[i] * 0.5f + 0.5f, 0.0f, 1.0f);
}

/* --- preview ----------------------------------------------------------------------------------- */

/* ComfyUI comfy/latent_formats.py latent_rgb_factors: rows are latent channels, columns R, G, B.
 * SD15 (also used for SD 2.x): no bias. SDXL: its own table and latent_rgb_factors_bias.
 * (A1111's sd_vae_approx.cheap_approximation uses older tables: SD [0.298 0.207 0.208; ...] and an
 * SDXL fit [0.3448 0.4168 0.4395; ...], no bias.) */
static const float preview_sd15[4][3] = {
  { 0.3512f, 0.2297f, 0.3227f },
  { 0.3250f, 0.4974f, 0.2350f },
  { -0.2829f, 0.1762f, 0.2721f },
  { -0.2120f, -0.2616f, -0.7177f },
};
static const float preview_sdxl[4][3] = {
  { 0.3651f, 0.4232f, 0.4341f },
  { -0.2533f, -0.0042f, 0.1068f },
  { 0.1076f, 0.1111f, -0.0362f },
  { -0.3165f, -0.2492f, -0.2188f },
};
static const float preview_sdxl_bias[3] = { 0.1084f, -0.0175f, -0.0011f };
static const float preview_no_bias[3] = { 0.0f, 0.0f, 0.0f };

void
easel_vae_preview_rgb8 (EaselFamily family, const float *latent, gint64 h, gint64 w, guint8 *rgb)
{
  gboolean xl = family == EASEL_FAMILY_SDXL || family == EASEL_FAMILY_SDXL_INPAINT || family == EASEL_FAMILY_SDXL_REFINER;
  const float (*m)[3] = xl ? preview_sdxl : preview_sd15;
  const float *bias = xl ? preview_sdxl_bias : preview_no_bias;
  const gint64 hw = h * w;

  for (gint64 p = 0; p < hw; p++)
    for (int o = 0; o < 3; o++) {
      float v = bias[o];
      for (int c = 0; c < 4; c++)
        v += latent[c * hw + p] * m[c][o];
      v = CLAMP ((v + 1.0f) * 0.5f, 0.0f, 1.0f);
      rgb[p * 3 + o] = (guint8) (v * 255.0f);   /* torch's uint8 cast truncates */
    }
}
