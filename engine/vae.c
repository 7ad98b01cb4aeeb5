/* engine/vae.c: AutoencoderKL encoder and decoder as graphs (ldm's diffusionmodules/model.py
 * Encoder/Decoder and diffusers' AutoencoderKL: the same network), weight binding for both namings,
 * tiled encoding/decoding (exact: GroupNorm by GroupNorm across tiles with whole-image statistics;
 * independent: cross-faded tiles) and the latent -> RGB preview.
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

/* GroupNorm (+ SiLU) of x with its own statistics (stats NULL) or given ones: stats (B, G, 2)
 * [mean, rstd] gathered over a whole image by the exact tiled path. */
static EaselTensor *
norm (EaselGraph *g, EaselTensor *x, const Pair *p, const EaselVaeConfig *c, EaselTensor *stats, gboolean silu)
{
  if (stats != NULL)
    return easel_op_group_norm_apply (g, x, leaf (g, p->w), leaf (g, p->b), stats, c->groups, silu);
  return easel_op_group_norm (g, x, leaf (g, p->w), leaf (g, p->b), c->groups, c->eps, silu);
}

/* A ResnetBlock in its two halves, split at its second GroupNorm.
 * First: x (B, Ci, H, W) -> h = conv1 (SiLU (GN1 (x))) (B, Co, H, W); stats: of x, or NULL. */
static EaselTensor *
res_first (EaselGraph *g, EaselTensor *x, const ResBlock *rb, const EaselVaeConfig *c, EaselTensor *stats)
{
  return conv (g, norm (g, x, &rb->norm1, c, stats, TRUE), &rb->conv1, 1);
}

/* Second: x, h -> shortcut (x) + conv2 (SiLU (GN2 (h))) (B, Co, H, W); stats: of h, or NULL. */
static EaselTensor *
res_second (EaselGraph *g, EaselTensor *x, EaselTensor *h, const ResBlock *rb, const EaselVaeConfig *c,
            EaselTensor *stats)
{
  h = conv (g, norm (g, h, &rb->norm2, c, stats, TRUE), &rb->conv2, 1);
  return easel_op_add (g, rb->skip.w ? conv (g, x, &rb->skip, 0) : x, h);
}

/* x (B, Ci, H, W) -> (B, Co, H, W) */
static EaselTensor *
resblock (EaselGraph *g, EaselTensor *x, const ResBlock *rb, const EaselVaeConfig *c)
{
  return res_second (g, x, res_first (g, x, rb, c, NULL), rb, c, NULL);
}

/* decoder: (B, C, H, W) -> nearest 2x, conv3x3 -> (B, C, 2H, 2W) */
static EaselTensor *
upsample (EaselGraph *g, EaselTensor *h, const Pair *p)
{
  return conv (g, easel_op_upsample_nearest (g, h, 2 * h->shape[2], 2 * h->shape[3]), p, 1);
}

/* encoder: (B, C, H, W) -> F.pad (0, 1, 0, 1), conv3x3 stride 2, no padding -> (B, C, floor (H/2), floor (W/2)) */
static EaselTensor *
downsample (EaselGraph *g, EaselTensor *h, const Pair *p)
{
  return easel_op_conv2d_ext (g, h, leaf (g, p->w), leaf (g, p->b), 2, 0, 1, 1);
}

/* x (B, C, H, W) -> x + proj_out (attention (q, k, v)) over the H·W tokens, one head */
static EaselTensor *
attn_block (EaselGraph *g, EaselTensor *x, const AttnBlock *a, const EaselVaeConfig *c)
{
  const gint64 B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  const gint64 bcl[3] = { B, C, H * W };
  const int swap[3] = { 0, 2, 1 };
  EaselTensor *h = easel_op_reshape (g, norm (g, x, &a->norm, c, NULL, FALSE), 3, bcl);
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

/* The encoder after its down path, at latent resolution: h (B, C, h, w) -> moments (B, 2 Cl, h, w) */
static EaselTensor *
encoder_tail (EaselGraph *g, const EaselVae *vae, EaselTensor *h)
{
  const EaselVaeConfig *c = &vae->config;
  const Coder *e = &vae->enc;
  h = mid_block (g, h, e, c->encoder_attention, c);
  h = conv (g, norm (g, h, &e->norm_out, c, NULL, TRUE), &e->conv_out, 1);
  if (c->has_quant_conv)
    h = conv (g, h, &vae->quant_conv, 0);
  return h;
}

/* The decoder before its up path, at latent resolution: z (B, Cl, h, w) -> (B, C, h, w) */
static EaselTensor *
decoder_head (EaselGraph *g, const EaselVae *vae, EaselTensor *z)
{
  const EaselVaeConfig *c = &vae->config;
  EaselTensor *h = c->has_post_quant_conv ? conv (g, z, &vae->post_quant_conv, 0) : z;
  return mid_block (g, conv (g, h, &vae->dec.conv_in, 1), &vae->dec, c->decoder_attention, c);
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
    if (l < c->n_levels - 1)
      h = downsample (g, h, &e->resample[l]);
  }
  return encoder_tail (g, vae, h);
}

/* z (B, Cl, h, w) -> image (B, Cout, h f, w f) */
static EaselTensor *
build_decoder (EaselGraph *g, const EaselVae *vae, EaselTensor *z)
{
  const EaselVaeConfig *c = &vae->config;
  const Coder *d = &vae->dec;
  EaselTensor *h = decoder_head (g, vae, z);

  for (int l = c->n_levels - 1; l >= 0; l--) {
    for (int j = 0; j < c->decoder_blocks; j++)
      h = resblock (g, h, &d->blocks[l][j], c);
    if (l > 0)
      h = upsample (g, h, &d->resample[l]);
  }
  return conv (g, norm (g, h, &d->norm_out, c, NULL, TRUE), &d->conv_out, 1);
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
graph_ok (EaselGraph *g, GError **error)
{
  const GError *ge = easel_graph_error (g);
  if (ge != NULL) {
    g_set_error (error, ge->domain, ge->code, "VAE: %s", ge->message);
    return FALSE;
  }
  return TRUE;
}

static gboolean
compute (EaselBackend *backend, EaselGraph *g, GError **error)
{
  return graph_ok (g, error) && easel_backend_compute (backend, g, error);
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

/* --- independent tiles (cross-faded) --------------------------------------------------------- */

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

/* --- exact tiles ------------------------------------------------------------------------------- */

/* A whole-image activation kept on the host between two GroupNorms, (batch, c, h, w) at the latent
 * size << k, with its groups' statistics over the whole image, combined from the tiles' cores by
 * Chan et al.'s parallel update in double (count, mean, M2 per (sample, group)). */
typedef struct {
  float *data;
  gboolean borrowed;           /* the caller's buffer: not freed here */
  gint64 c, h, w;
  int k;
  double *count, *mean, *m2;   /* (batch, groups); NULL: not gathered */
} Act;

typedef struct {
  EaselVae *vae;
  EaselBackend *backend;
  gint64 batch, lh, lw;        /* the latent's size */
  gint64 ny, nx;
  gint64 *ey, *ex;             /* tile (i, j) has the core [ey[i], ey[i+1]) x [ex[j], ex[j+1]) on the latent grid */
  gsize host_now, host_peak;   /* bytes of the Acts held (not counting the caller's buffers) */
  gsize device_peak;           /* bytes: the largest arena of one tile's graph */
  gboolean dry;                /* plan only (easel_vae_decode_memory): no data, nothing computed */
  guint64 memory_peak;         /* dry: the most easel_backend_graph_memory of one graph */
} Tiles;

typedef enum {
  SEG_DECODER_HEAD,            /* z -> post_quant_conv, conv_in, mid block (whole) */
  SEG_CONV_IN,                 /* image -> encoder conv_in */
  SEG_RES_FIRST,               /* x -> conv1 (SiLU (GN1 (x))) */
  SEG_RES_SECOND,              /* h, x -> shortcut (x) + conv2 (SiLU (GN2 (h))), then the resampler if any */
  SEG_DECODER_OUT,             /* x -> conv_out (SiLU (norm_out (x))): the image */
  SEG_ENCODER_TAIL,            /* x -> mid block, norm_out, conv_out, quant_conv: moments (whole) */
} SegmentKind;

/* A piece of the network from one GroupNorm's input to the next one's, run tile by tile. */
typedef struct {
  SegmentKind kind;
  const ResBlock *rb;          /* RES_FIRST, RES_SECOND */
  const Pair *resample;        /* RES_SECOND: the level's upsampler (dk 1) or downsampler (dk -1), or NULL */
  int dk;
} Segment;

static gboolean
segment_is_whole (const Segment *s)
{
  return s->kind == SEG_DECODER_HEAD || s->kind == SEG_ENCODER_TAIL;
}

/* Input pixels a window needs on each side of its core so that the core is exact: the segment's one
 * 3x3 conv (pad 1) at the input resolution reads 1 further; an upsampler's 3x3 conv reads one
 * upsampled pixel further, which is 1 more input pixel (rounded up); a downsampler's output j reads
 * inputs 2j .. 2j + 2, one past twice its core, rounded up to 2 so that windows start on the stride-2
 * grid. Every other op (GroupNorm with given statistics, SiLU, 1x1 shortcut, sum) is pointwise. */
static gint64
segment_margin (const Segment *s)
{
  return 1 + (s->resample != NULL ? 1 : 0);
}

static EaselTensor *
build_segment (EaselGraph *g, const EaselVae *vae, const Segment *s, EaselTensor *x, EaselTensor *skip,
               EaselTensor *stats)
{
  const EaselVaeConfig *c = &vae->config;
  EaselTensor *h;
  switch (s->kind) {
  case SEG_DECODER_HEAD:
    return decoder_head (g, vae, x);
  case SEG_CONV_IN:
    return conv (g, x, &vae->enc.conv_in, 1);
  case SEG_RES_FIRST:
    return res_first (g, x, s->rb, c, stats);
  case SEG_RES_SECOND:
    h = res_second (g, skip, x, s->rb, c, stats);
    if (s->resample != NULL)
      h = s->dk > 0 ? upsample (g, h, s->resample) : downsample (g, h, s->resample);
    return h;
  case SEG_DECODER_OUT:
    return conv (g, norm (g, x, &vae->dec.norm_out, c, stats, TRUE), &vae->dec.conv_out, 1);
  case SEG_ENCODER_TAIL:
  default:
    return encoder_tail (g, vae, x);
  }
}

static gboolean
act_alloc (Tiles *t, Act *a, gint64 c, GError **error)
{
  const gint64 G = t->vae->config.groups;
  gsize n = 0, bytes = 0;
  if (!g_size_checked_mul (&n, t->batch, c) || !g_size_checked_mul (&n, n, a->h)
      || !g_size_checked_mul (&n, n, a->w) || !g_size_checked_mul (&bytes, n, sizeof (float))
      || (a->data = g_try_malloc (bytes)) == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY,
                 "VAE tiled: no host memory for a (%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                 ", %" G_GINT64_FORMAT ") activation", t->batch, c, a->h, a->w);
    return FALSE;
  }
  a->c = c;
  a->count = g_new0 (double, t->batch * G);
  a->mean = g_new0 (double, t->batch * G);
  a->m2 = g_new0 (double, t->batch * G);
  t->host_now += bytes;
  t->host_peak = MAX (t->host_peak, t->host_now);
  return TRUE;
}

static void
act_clear (Tiles *t, Act *a)
{
  if (!a->borrowed && a->data != NULL)
    t->host_now -= (gsize) (t->batch * a->c * a->h * a->w) * sizeof (float);
  if (!a->borrowed)
    g_free (a->data);
  g_free (a->count);
  g_free (a->mean);
  g_free (a->m2);
  *a = (Act) { 0 };
}

/* Chan et al.: folds one tile's (count n, mean, M2) of group i into the whole image's. */
static void
act_add_stats (Act *a, gsize i, double n, double mean, double m2)
{
  double na = a->count[i], nt = na + n, d = mean - a->mean[i];
  if (nt <= 0)
    return;
  a->mean[i] += d * n / nt;
  a->m2[i] += m2 + d * d * na * n / nt;
  a->count[i] = nt;
}

/* The gathered statistics as a group_norm_apply input (batch, groups, 2): [mean, 1 / sqrt (var + eps)]. */
static void
act_norm_stats (const Act *a, gsize n, float eps, float *stats)
{
  for (gsize i = 0; i < n; i++) {
    stats[2 * i] = (float) a->mean[i];
    stats[2 * i + 1] = (float) (1.0 / sqrt (a->m2[i] / MAX (a->count[i], 1.0) + eps));
  }
}

/* dst (batch, a->c, y1 - y0, x1 - x0) = a window of a */
static void
act_window (const Tiles *t, const Act *a, gint64 y0, gint64 y1, gint64 x0, gint64 x1, float *dst)
{
  const gint64 wh = y1 - y0, ww = x1 - x0;
  for (gint64 bc = 0; bc < t->batch * a->c; bc++)
    for (gint64 y = 0; y < wh; y++)
      memcpy (dst + (bc * wh + y) * ww, a->data + (bc * a->h + y0 + y) * a->w + x0, sizeof (float) * ww);
}

/* Runs a segment over every tile (one tile covering everything for a whole segment): in (and skip,
 * the same size) at scale in->k -> out, allocated here (unless it has data: then it is the caller's
 * buffer of the right size), at scale in->k + dk, with out's group statistics gathered from the
 * tiles' cores. Each tile reads its core plus segment_margin input pixels (clipped to the image)
 * from the host, runs the segment's graph on that window, and writes back only its core, which is
 * exact: the cores partition the output, so no pixel is counted twice in the statistics and nothing
 * is blended. GroupNorms inside the segment use in's whole-image statistics. */
static gboolean
run_segment (Tiles *t, const Segment *s, const Act *in, const Act *skip, Act *out, GError **error)
{
  const EaselVaeConfig *c = &t->vae->config;
  const gboolean whole = segment_is_whole (s);
  const gboolean uses_stats = s->kind == SEG_RES_FIRST || s->kind == SEG_RES_SECOND || s->kind == SEG_DECODER_OUT;
  const gboolean gathers = s->kind != SEG_DECODER_OUT && s->kind != SEG_ENCODER_TAIL;
  const gint64 B = t->batch, G = c->groups, m = whole ? 0 : segment_margin (s);
  const int kin = in->k, kout = in->k + (s->resample != NULL ? s->dk : 0);
  gint64 one_y[2] = { 0, t->lh }, one_x[2] = { 0, t->lw };
  const gint64 ny = whole ? 1 : t->ny, nx = whole ? 1 : t->nx;
  const gint64 *ey = whole ? one_y : t->ey, *ex = whole ? one_x : t->ex;
  g_autofree float *norm_stats = NULL, *tile_stats = g_new (float, B * G * 2);
  const gint64 sshape[3] = { B, G, 2 };

  if (uses_stats && !t->dry) {
    norm_stats = g_new (float, B * G * 2);
    act_norm_stats (in, B * G, c->eps, norm_stats);
  }
  out->k = kout;
  out->h = t->lh << kout;
  out->w = t->lw << kout;
  for (gint64 i = 0; i < ny; i++)
    for (gint64 j = 0; j < nx; j++) {
      /* window at the input's scale, its origin at the output's, the core at the output's */
      const gint64 wy0 = MAX (0, (ey[i] << kin) - m), wy1 = MIN (in->h, (ey[i + 1] << kin) + m);
      const gint64 wx0 = MAX (0, (ex[j] << kin) - m), wx1 = MIN (in->w, (ex[j + 1] << kin) + m);
      const gint64 oy0 = kout >= kin ? wy0 << (kout - kin) : wy0 >> (kin - kout);
      const gint64 ox0 = kout >= kin ? wx0 << (kout - kin) : wx0 >> (kin - kout);
      const gint64 cy0 = ey[i] << kout, ch = (ey[i + 1] << kout) - cy0, cx0 = ex[j] << kout, cw = (ex[j + 1] << kout) - cx0;
      const gint64 xs[4] = { B, in->c, wy1 - wy0, wx1 - wx0 };
      g_autoptr(EaselGraph) g = easel_graph_new ();
      g_autofree float *xin = t->dry ? NULL : g_new (float, B * in->c * xs[2] * xs[3]);
      g_autofree float *sin = skip && !t->dry ? g_new (float, B * skip->c * xs[2] * xs[3]) : NULL;
      EaselTensor *sk = NULL, *st = NULL, *stats = NULL;

      if (!t->dry)
        act_window (t, in, wy0, wy1, wx0, wx1, xin);
      EaselTensor *x = easel_graph_input (g, "vae.tile", EASEL_DTYPE_F32, 4, xs, xin);
      if (skip != NULL) {
        const gint64 ss[4] = { B, skip->c, xs[2], xs[3] };
        if (!t->dry)
          act_window (t, skip, wy0, wy1, wx0, wx1, sin);
        sk = easel_graph_input (g, "vae.tile_skip", EASEL_DTYPE_F32, 4, ss, sin);
      }
      if (uses_stats)
        st = easel_graph_input (g, "vae.group_stats", EASEL_DTYPE_F32, 3, sshape, norm_stats);
      EaselTensor *y = build_segment (g, t->vae, s, x, sk, st);
      /* the stride-2 grid: windows of a downsampler start on even pixels (segment_margin) */
      g_assert (kout >= kin || (wy0 % 2 == 0 && wx0 % 2 == 0));
      g_assert (y->shape[2] >= cy0 - oy0 + ch && y->shape[3] >= cx0 - ox0 + cw);
      EaselTensor *core = easel_op_slice (g, easel_op_slice (g, y, 2, cy0 - oy0, ch), 3, cx0 - ox0, cw);
      easel_graph_mark_output (g, core);
      if (gathers) {
        stats = easel_op_group_stats (g, core, (int) G);
        easel_graph_mark_output (g, stats);
      }
      if (easel_graph_error (g) == NULL)
        t->device_peak = MAX (t->device_peak, easel_graph_plan (g));
      if (t->dry) {
        if (!graph_ok (g, error))
          return FALSE;
        t->memory_peak = MAX (t->memory_peak, easel_backend_graph_memory (t->backend, g));
        out->c = y->shape[1];
        continue;
      }
      if (!compute (t->backend, g, error))
        return FALSE;
      if (out->data == NULL && !act_alloc (t, out, y->shape[1], error))
        return FALSE;
      g_autofree float *res = g_new (float, B * out->c * ch * cw);
      if (!easel_backend_read (t->backend, core, res, error)
          || (gathers && !easel_backend_read (t->backend, stats, tile_stats, error)))
        return FALSE;
      for (gint64 bc = 0; bc < B * out->c; bc++)
        for (gint64 r = 0; r < ch; r++)
          memcpy (out->data + (bc * out->h + cy0 + r) * out->w + cx0, res + (bc * ch + r) * cw, sizeof (float) * cw);
      if (gathers)
        for (gint64 q = 0; q < B * G; q++)
          act_add_stats (out, q, (double) (out->c / G * ch * cw), tile_stats[2 * q], tile_stats[2 * q + 1]);
    }
  return TRUE;
}

/* Tile cores along an axis of n latent pixels: ceil (n / tile) of them, sizes differing by at most one. */
static gint64 *
tile_edges (gint64 n, gint64 tile, gint64 *count)
{
  gint64 k = (n + tile - 1) / tile;
  gint64 *e = g_new (gint64, k + 1);
  for (gint64 i = 0; i <= k; i++)
    e[i] = i * n / k;
  *count = k;
  return e;
}

static void
tiles_init (Tiles *t, EaselVae *vae, EaselBackend *backend, gint64 batch, gint64 lh, gint64 lw, gint64 tile)
{
  *t = (Tiles) { vae, backend, batch, lh, lw, 0, 0, NULL, NULL, 0, 0, 0, FALSE, 0 };
  t->ey = tile_edges (lh, tile, &t->ny);
  t->ex = tile_edges (lw, tile, &t->nx);
}

static void
tiles_finish (Tiles *t, const char *what)
{
  g_debug ("VAE %s: %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " tiles, device arena peak %" G_GSIZE_FORMAT
           " bytes, host activations peak %" G_GSIZE_FORMAT " bytes", what, t->ny, t->nx, t->device_peak, t->host_peak);
  g_free (t->ey);
  g_free (t->ex);
}

/* Both halves of every res block of the up or down path from x (consumed) to x (the next level's
 * input after the last block of a level with a resampler). */
static gboolean
run_level (Tiles *t, const ResBlock *blocks, int n_blocks, const Pair *resample, int dk, Act *x, GError **error)
{
  for (int j = 0; j < n_blocks; j++) {
    Act h = { 0 }, next = { 0 };
    const Segment first = { SEG_RES_FIRST, &blocks[j], NULL, 0 };
    const Segment second = { SEG_RES_SECOND, &blocks[j], j == n_blocks - 1 ? resample : NULL, dk };
    gboolean ok = run_segment (t, &first, x, NULL, &h, error) && run_segment (t, &second, &h, x, &next, error);
    act_clear (t, &h);
    act_clear (t, x);
    *x = next;
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

/* dry: only plans, *memory_peak (when not NULL) = the most device memory one of its graphs needs */
static gboolean
decode_exact (EaselVae *vae, EaselBackend *backend, const float *z, gint64 batch, gint64 h, gint64 w, gint64 tile,
              float *image, guint64 *memory_peak, GError **error)
{
  const EaselVaeConfig *c = &vae->config;
  const Coder *d = &vae->dec;
  const Segment head = { SEG_DECODER_HEAD, NULL, NULL, 0 }, out = { SEG_DECODER_OUT, NULL, NULL, 0 };
  Act zin = { .data = (float *) z, .borrowed = TRUE, .c = c->latent_channels, .h = h, .w = w, .k = 0 };
  Act img = { .data = image, .borrowed = TRUE, .c = c->out_channels }, x = { 0 };
  Tiles t;
  gboolean ok;

  tiles_init (&t, vae, backend, batch, h, w, tile);
  t.dry = memory_peak != NULL;
  ok = run_segment (&t, &head, &zin, NULL, &x, error);
  for (int l = c->n_levels - 1; ok && l >= 0; l--)
    ok = run_level (&t, d->blocks[l], c->decoder_blocks, l > 0 ? &d->resample[l] : NULL, 1, &x, error);
  ok = ok && run_segment (&t, &out, &x, NULL, &img, error);
  act_clear (&t, &x);
  act_clear (&t, &img);
  if (memory_peak)
    *memory_peak = t.memory_peak;
  tiles_finish (&t, t.dry ? "exact tiled decode (planned)" : "exact tiled decode");
  return ok;
}

static gboolean
encode_exact (EaselVae *vae, EaselBackend *backend, const float *image, gint64 batch, gint64 height, gint64 width,
              gint64 tile, float *mean, float *logvar, GError **error)
{
  const EaselVaeConfig *c = &vae->config;
  const Coder *e = &vae->enc;
  const gint64 f = easel_vae_factor (vae), cl = c->latent_channels;
  const Segment conv_in = { SEG_CONV_IN, NULL, NULL, 0 }, tail = { SEG_ENCODER_TAIL, NULL, NULL, 0 };
  Act img = { .data = (float *) image, .borrowed = TRUE, .c = c->in_channels, .h = height, .w = width,
              .k = c->n_levels - 1 };
  Act x = { 0 }, mom = { 0 };
  Tiles t;
  gboolean ok;

  tiles_init (&t, vae, backend, batch, height / f, width / f, tile / f);
  ok = run_segment (&t, &conv_in, &img, NULL, &x, error);
  for (int l = 0; ok && l < c->n_levels; l++)
    ok = run_level (&t, e->blocks[l], c->encoder_blocks, l < c->n_levels - 1 ? &e->resample[l] : NULL, -1, &x, error);
  ok = ok && run_segment (&t, &tail, &x, NULL, &mom, error);
  if (ok) {   /* moments (batch, 2 Cl, h, w) -> mean, logvar (batch, Cl, h, w) */
    const gint64 n = cl * mom.h * mom.w;
    for (gint64 b = 0; b < batch; b++) {
      memcpy (mean + b * n, mom.data + 2 * b * n, sizeof (float) * n);
      for (gint64 i = 0; i < n; i++)
        logvar[b * n + i] = CLAMP (mom.data[(2 * b + 1) * n + i], -30.0f, 20.0f);
    }
  }
  act_clear (&t, &x);
  act_clear (&t, &mom);
  tiles_finish (&t, "exact tiled encode");
  return ok;
}

static gboolean
check_tiles (const char *what, EaselVaeTileMode mode, gint64 tile, gint64 overlap, gint64 unit, GError **error)
{
  if (mode != EASEL_VAE_TILES_EXACT && mode != EASEL_VAE_TILES_INDEPENDENT) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "VAE %s: unknown tile mode %d", what, (int) mode);
    return FALSE;
  }
  if (tile < unit || tile % unit != 0
      || (mode == EASEL_VAE_TILES_INDEPENDENT && (overlap < 0 || 2 * overlap > tile || overlap % unit != 0))) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "VAE %s: tile %" G_GINT64_FORMAT " with overlap %" G_GINT64_FORMAT
                 " (need overlap <= tile / 2, both multiples of %" G_GINT64_FORMAT ")", what, tile, overlap, unit);
    return FALSE;
  }
  return TRUE;
}

gboolean
easel_vae_decode_tiled (EaselVae *vae, EaselBackend *backend, const float *z, gint64 batch, gint64 h, gint64 w,
                        EaselVaeTileMode mode, gint64 tile, gint64 overlap, float *image, GError **error)
{
  g_return_val_if_fail (vae && backend && z && image, FALSE);
  if (vae->config.decoder_blocks == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "VAE tiled decode: this VAE has no decoder");
    return FALSE;
  }
  if (!check_tiles ("tiled decode", mode, tile, overlap, 1, error) || !check_size ("tiled decode", batch, h, w, 1, error))
    return FALSE;
  if (mode == EASEL_VAE_TILES_EXACT)
    return decode_exact (vae, backend, z, batch, h, w, tile, image, NULL, error);
  const TileGeometry tg = { batch, vae->config.latent_channels, h, w, vae->config.out_channels, easel_vae_factor (vae), 1, 1, 1 };
  return run_tiled (vae, backend, decode_tile, &tg, z, tile, overlap, &image, error);
}

gboolean
easel_vae_decode_memory (EaselVae *vae, EaselBackend *backend, gint64 batch, gint64 h, gint64 w, gint64 tile,
                         guint64 *bytes, GError **error)
{
  g_return_val_if_fail (vae && backend && bytes, FALSE);
  *bytes = 0;
  if (vae->config.decoder_blocks == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "VAE decode: this VAE has no decoder");
    return FALSE;
  }
  if (!check_size ("decode", batch, h, w, 1, error))
    return FALSE;
  if (tile > 0)
    return decode_exact (vae, backend, NULL, batch, h, w, tile, NULL, bytes, error);
  g_autoptr(EaselGraph) g = easel_graph_new ();
  const gint64 shape[4] = { batch, vae->config.latent_channels, h, w };
  EaselTensor *out = build_decoder (g, vae, easel_graph_input (g, "vae.z", EASEL_DTYPE_F32, 4, shape, NULL));
  easel_graph_mark_output (g, out);
  if (!graph_ok (g, error))
    return FALSE;
  *bytes = easel_backend_graph_memory (backend, g);
  return TRUE;
}

gboolean
easel_vae_encode_tiled (EaselVae *vae, EaselBackend *backend, const float *image, gint64 batch, gint64 height,
                        gint64 width, EaselVaeTileMode mode, gint64 tile, gint64 overlap, float *mean, float *logvar,
                        GError **error)
{
  g_return_val_if_fail (vae && backend && image && mean && logvar, FALSE);
  const gint64 f = easel_vae_factor (vae);
  if (vae->config.encoder_blocks == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "VAE tiled encode: this VAE has no encoder");
    return FALSE;
  }
  if (!check_tiles ("tiled encode", mode, tile, overlap, f, error)
      || !check_size ("tiled encode", batch, height, width, f, error))
    return FALSE;
  if (height % f != 0 || width % f != 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "VAE tiled encode: image %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " is not a multiple of %" G_GINT64_FORMAT,
                 height, width, f);
    return FALSE;
  }
  if (mode == EASEL_VAE_TILES_EXACT)
    return encode_exact (vae, backend, image, batch, height, width, tile, mean, logvar, error);
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

GPtrArray *
easel_vae_unused (const EaselVae *vae)
{
  return easel_weights_unused (vae->weights);
}
