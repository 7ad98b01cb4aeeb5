/* engine/controlnet.c: ControlNet loading (both namings onto diffusers' names) and its graph; the
 * encoder half is the UNet's (unet-private.h: easel_unet_new_part, easel_unet_build_encoder).
 * controlnet.h states the computation. Key correspondence of lllyasviel's files (as diffusers'
 * convert_controlnet_checkpoint has it), after an optional "control_model." prefix:
 *   input_hint_block.0                  controlnet_cond_embedding.conv_in
 *   input_hint_block.2k+2 (not last)    controlnet_cond_embedding.blocks.k
 *   input_hint_block.<last>             controlnet_cond_embedding.conv_out
 *   zero_convs.N.0                      controlnet_down_blocks.N
 *   middle_block_out.0                  controlnet_mid_block
 *   anything else                       as the UNet's original keys (easel_unet_rename_original) */
#include "controlnet.h"

#include <string.h>

#include "error.h"
#include "unet-private.h"

#define HINT_PREFIX "controlnet_cond_embedding."

struct _EaselControlNet {
  EaselUnet *enc;                       /* owns the weights */
  const EaselStTensor *hint_in_w, *hint_in_b, *hint_out_w, *hint_out_b;
  const EaselStTensor **hint_w, **hint_b;   /* n_hint blocks */
  int n_hint;
  int n_zero;
  const EaselStTensor **zero_w, **zero_b;   /* n_zero 1x1 convs */
  const EaselStTensor *mid_w, *mid_b;
};

/* --- parameters -------------------------------------------------------------------------------- */

void
easel_controlnet_params_init (EaselControlNetParams *p)
{
  p->conditioning_scale = 1.0f;
  p->guidance_start = 0.0f;
  p->guidance_end = 1.0f;
}

gboolean
easel_controlnet_params_active (const EaselControlNetParams *p, int step, int n_steps)
{
  if (n_steps < 1 || step < 0 || step >= n_steps)
    return FALSE;
  return !((float) step / n_steps < p->guidance_start || (float) (step + 1) / n_steps > p->guidance_end);
}

/* --- renaming ---------------------------------------------------------------------------------- */

typedef struct {
  int n_res;        /* resnets per level */
  int hint_last;    /* index of the hint encoder's last conv */
} Original;

static char *
rename_original (const char *key, gpointer user_data)
{
  const Original *o = user_data;
  const char *rest;
  int k;

  if (g_str_has_prefix (key, "input_hint_block.")) {
    if ((k = easel_unet_take_index (key + strlen ("input_hint_block."), &rest)) < 0 || k % 2 != 0)
      return NULL;
    if (k == 0)
      return g_strconcat (HINT_PREFIX "conv_in.", rest, NULL);
    if (k == o->hint_last)
      return g_strconcat (HINT_PREFIX "conv_out.", rest, NULL);
    return g_strdup_printf (HINT_PREFIX "blocks.%d.%s", k / 2 - 1, rest);
  }
  if (g_str_has_prefix (key, "zero_convs.")) {
    if ((k = easel_unet_take_index (key + strlen ("zero_convs."), &rest)) < 0 || !g_str_has_prefix (rest, "0."))
      return NULL;
    return g_strdup_printf ("controlnet_down_blocks.%d.%s", k, rest + 2);
  }
  if (g_str_has_prefix (key, "middle_block_out.0."))
    return g_strconcat ("controlnet_mid_block.", key + strlen ("middle_block_out.0."), NULL);
  return easel_unet_rename_original (key, o->n_res);
}

/* Counts an original file's zero convs, downsamplers and hint convs under prefix, and derives
 * the resnets per level: zero convs = 1 + levels · n_res + levels - 1. FALSE when they do not fit. */
static gboolean
original_layout (const EaselCheckpoint *ck, const char *prefix, Original *o)
{
  gsize plen = strlen (prefix);
  int n_zero = 0, n_down = 0, last_down = -1, k;
  const char *rest, *inner;

  o->hint_last = -1;
  for (gsize i = 0; i < easel_checkpoint_n_tensors (ck); i++) {
    const char *name = easel_checkpoint_tensor (ck, i)->name;
    if (strncmp (name, prefix, plen) != 0)
      continue;
    name += plen;
    if (g_str_has_prefix (name, "zero_convs.") && (k = easel_unet_take_index (name + strlen ("zero_convs."), &rest)) >= 0)
      n_zero = MAX (n_zero, k + 1);
    if (g_str_has_prefix (name, "input_hint_block.") && (k = easel_unet_take_index (name + strlen ("input_hint_block."), &rest)) >= 0)
      o->hint_last = MAX (o->hint_last, k);
    if (g_str_has_prefix (name, "input_blocks.") && (k = easel_unet_take_index (name + strlen ("input_blocks."), &rest)) >= 0
        && easel_unet_take_index (rest, &inner) == 0 && g_str_has_prefix (inner, "op.weight") && k != last_down) {
      n_down++;   /* sorted names: one op.weight per downsampler */
      last_down = k;
    }
  }
  int levels = n_down + 1;
  if (n_zero < 2 || (n_zero - levels) % levels != 0 || (n_zero - levels) / levels < 1 || o->hint_last < 2
      || o->hint_last % 2 != 0)
    return FALSE;
  o->n_res = (n_zero - levels) / levels;
  return TRUE;
}

/* --- binding ----------------------------------------------------------------------------------- */

static const EaselStTensor *
need (EaselControlNet *cn, const char *path, const char *name, int n_dims, gint64 d0, gint64 d1, gint64 d2, gint64 d3,
      GError **error)
{
  const gint64 shape[4] = { d0, d1, d2, d3 };
  const EaselStTensor *st = easel_weights_require (cn->enc->weights, name, n_dims, shape, error);
  if (st == NULL) {
    g_prefix_error (error, "%s: ControlNet: ", path);
    return NULL;
  }
  if (st->dtype != EASEL_DTYPE_F32 && st->dtype != EASEL_DTYPE_F16 && st->dtype != EASEL_DTYPE_BF16) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "%s: ControlNet tensor '%s' is %s, not a float weight",
                 path, st->name, easel_dtype_name (st->dtype));
    return NULL;
  }
  return st;
}

/* conv weight (co, ci, k, k) (co, ci: -1 any) and bias (co) of module */
static gboolean
need_conv (EaselControlNet *cn, const char *path, const char *module, gint64 co, gint64 ci, gint64 k,
           const EaselStTensor **w, const EaselStTensor **b, GError **error)
{
  g_autofree char *wn = g_strconcat (module, ".weight", NULL), *bn = g_strconcat (module, ".bias", NULL);
  if ((*w = need (cn, path, wn, 4, co, ci, k, k, error)) == NULL)
    return FALSE;
  return (*b = need (cn, path, bn, 1, (*w)->shape[0], 0, 0, 0, error)) != NULL;
}

static gboolean
bind_extra (EaselControlNet *cn, const char *path, GError **error)
{
  const EaselUnetConfig *cfg = &cn->enc->cfg;
  gint64 ch[EASEL_CONTROLNET_MAX_RESIDUALS];
  int n = 0;

  /* hint encoder */
  if (!need_conv (cn, path, HINT_PREFIX "conv_in", -1, -1, 3, &cn->hint_in_w, &cn->hint_in_b, error))
    return FALSE;
  for (;; cn->n_hint++) {
    g_autofree char *name = g_strdup_printf (HINT_PREFIX "blocks.%d.weight", cn->n_hint);
    if (cn->n_hint >= 64 || !easel_weights_has (cn->enc->weights, name))
      break;
  }
  cn->hint_w = g_new0 (const EaselStTensor *, cn->n_hint + 1);
  cn->hint_b = g_new0 (const EaselStTensor *, cn->n_hint + 1);
  gint64 prev = cn->hint_in_w->shape[0];
  for (int k = 0; k < cn->n_hint; k++) {
    g_autofree char *m = g_strdup_printf (HINT_PREFIX "blocks.%d", k);
    if (!need_conv (cn, path, m, -1, prev, 3, &cn->hint_w[k], &cn->hint_b[k], error))
      return FALSE;
    prev = cn->hint_w[k]->shape[0];
  }
  if (!need_conv (cn, path, HINT_PREFIX "conv_out", cfg->model_channels, prev, 3, &cn->hint_out_w, &cn->hint_out_b, error))
    return FALSE;

  /* zero convs: one per skip connection, of its width, and one for the middle block */
  ch[n++] = cfg->model_channels;
  for (int l = 0; l < cfg->n_levels; l++) {
    for (int r = 0; r < cfg->n_res; r++)
      ch[n++] = cfg->channels[l];
    if (l + 1 < cfg->n_levels)
      ch[n++] = cfg->channels[l];
  }
  cn->n_zero = n;
  cn->zero_w = g_new0 (const EaselStTensor *, n);
  cn->zero_b = g_new0 (const EaselStTensor *, n);
  for (int i = 0; i < n; i++) {
    g_autofree char *m = g_strdup_printf ("controlnet_down_blocks.%d", i);
    if (!need_conv (cn, path, m, ch[i], ch[i], 1, &cn->zero_w[i], &cn->zero_b[i], error))
      return FALSE;
  }
  g_autofree char *extra = g_strdup_printf ("controlnet_down_blocks.%d.weight", n);
  if (easel_weights_has (cn->enc->weights, extra)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: ControlNet: more zero convs than the %d skip connections",
                 path, n);
    return FALSE;
  }
  gint64 c_mid = cfg->channels[cfg->n_levels - 1];
  return need_conv (cn, path, "controlnet_mid_block", c_mid, c_mid, 1, &cn->mid_w, &cn->mid_b, error);
}

EaselControlNet *
easel_controlnet_new (const EaselCheckpoint *ck, const EaselJson *hint, EaselFamily family, GError **error)
{
  const char *path = easel_checkpoint_path (ck);
  g_autoptr(EaselControlNet) cn = g_new0 (EaselControlNet, 1);
  g_autofree char *prefix = NULL;
  EaselWeights *weights;
  Original o = { 0 };

  if ((prefix = easel_checkpoint_find_prefix (ck, HINT_PREFIX "conv_in.weight")) != NULL) {
    if (hint == NULL)
      hint = easel_checkpoint_part_config (ck, prefix);
    weights = easel_weights_new (ck, prefix, NULL, NULL, error);
  } else if ((prefix = easel_checkpoint_find_prefix (ck, "input_hint_block.0.weight")) != NULL) {
    if (!original_layout (ck, prefix, &o)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                   "%s: ControlNet: zero_convs, downsamplers and input_hint_block do not make a ControlNet", path);
      return NULL;
    }
    weights = easel_weights_new (ck, prefix, rename_original, &o, error);
  } else {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND,
                 "%s: no ControlNet weights (neither controlnet_cond_embedding nor input_hint_block)", path);
    return NULL;
  }
  if (weights == NULL)
    return NULL;
  if ((cn->enc = easel_unet_new_part (weights, path, family, 0, hint, TRUE, error)) == NULL || !bind_extra (cn, path, error))
    return NULL;
  return g_steal_pointer (&cn);
}

void
easel_controlnet_free (EaselControlNet *cn)
{
  if (cn == NULL)
    return;
  easel_unet_free (cn->enc);
  g_free (cn->hint_w);
  g_free (cn->hint_b);
  g_free (cn->zero_w);
  g_free (cn->zero_b);
  g_free (cn);
}

const EaselUnetConfig *
easel_controlnet_config (const EaselControlNet *cn)
{
  return &cn->enc->cfg;
}

int
easel_controlnet_n_residuals (const EaselControlNet *cn)
{
  return cn->n_zero;
}

int
easel_controlnet_hint_factor (const EaselControlNet *cn)
{
  return 1 << ((cn->n_hint + 1) / 2);
}

/* --- graph ------------------------------------------------------------------------------------- */

static EaselTensor *
conv (EaselGraph *g, EaselTensor *x, const EaselStTensor *w, const EaselStTensor *b, int stride)
{
  int pad = (int) (w->shape[2] / 2);
  return easel_op_conv2d (g, x, easel_graph_weight_st (g, w), easel_graph_weight_st (g, b), stride, pad);
}

void
easel_controlnet_build (EaselControlNet *cn, EaselGraph *g, EaselTensor *sample, EaselTensor *timestep,
                        EaselTensor *context, EaselTensor *pooled, EaselTensor *time_ids, EaselTensor *image,
                        float scale, EaselControlNetOutputs *out)
{
  EaselTensor *skips[EASEL_CONTROLNET_MAX_RESIDUALS];
  int f = easel_controlnet_hint_factor (cn);

  memset (out, 0, sizeof *out);
  g_return_if_fail (sample && timestep && context && image);
  if (sample->n_dims != 4 || image->n_dims != 4 || image->shape[0] != sample->shape[0]
      || image->shape[1] != cn->hint_in_w->shape[1] || image->shape[2] != sample->shape[2] * f
      || image->shape[3] != sample->shape[3] * f) {
    easel_graph_fail (g, sample, "ControlNet: the control image must be (B, %" G_GINT64_FORMAT ", %d·H, %d·W) for a (B, C, H, W) sample",
                      cn->hint_in_w->shape[1], f, f);
    return;
  }

  /* hint encoder: conv_in, SiLU, (block, SiLU)*, conv_out */
  EaselTensor *h = easel_op_silu (g, conv (g, image, cn->hint_in_w, cn->hint_in_b, 1));
  for (int k = 0; k < cn->n_hint; k++)
    h = easel_op_silu (g, conv (g, h, cn->hint_w[k], cn->hint_b[k], k % 2 == 1 ? 2 : 1));
  out->cond_embedding = conv (g, h, cn->hint_out_w, cn->hint_out_b, 1);

  EaselTensor *mid = easel_unet_build_encoder (cn->enc, g, sample, timestep, context, pooled, time_ids,
                                               out->cond_embedding, NULL, NULL, skips);
  if (easel_graph_error (g))
    return;
  for (int i = 0; i < cn->n_zero; i++) {
    out->down[i] = conv (g, skips[i], cn->zero_w[i], cn->zero_b[i], 1);
    if (scale != 1.0f)
      out->down[i] = easel_op_scale (g, out->down[i], scale);
  }
  out->n_down = cn->n_zero;
  out->mid = conv (g, mid, cn->mid_w, cn->mid_b, 1);
  if (scale != 1.0f)
    out->mid = easel_op_scale (g, out->mid, scale);
}

void
easel_controlnet_outputs_to_extras (EaselControlNetOutputs *out, EaselUnetExtras *extras)
{
  extras->down_residuals = out->down;
  extras->n_down_residuals = out->n_down;
  extras->mid_residual = out->mid;
}

gboolean
easel_controlnet_check_unet (const EaselControlNet *cn, const EaselUnet *unet, const char *name, GError **error)
{
  const EaselUnetConfig *c = &cn->enc->cfg, *u = easel_unet_config (unet);
  const char *what = NULL;
  if (c->context_dim != u->context_dim)
    what = "text conditioning width";
  else if (c->adm_in != u->adm_in)
    what = "label/add embedding (SD 1.x/2.x vs SDXL)";
  else if (c->n_levels != u->n_levels || c->n_res != u->n_res
           || memcmp (c->channels, u->channels, u->n_levels * sizeof c->channels[0]) != 0)
    what = "levels or widths";
  else if (cn->n_zero != easel_unet_n_skips (unet))
    what = "number of skip connections";
  if (what == NULL)
    return TRUE;
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_MISMATCH,
               "%s: this ControlNet does not fit the model: its %s differs (text width %" G_GINT64_FORMAT " vs %"
               G_GINT64_FORMAT ", %d vs %d levels; a ControlNet for another family?)",
               name, what, c->context_dim, u->context_dim, c->n_levels, u->n_levels);
  return FALSE;
}
