/* engine/unet-config.c: the UNet's configuration read off a checkpoint's tensors, the renaming of
 * original (ldm) keys to the internal naming (diffusers' module paths), and the binding of every
 * weight with shape checks. The key correspondence follows the one diffusers' conversion scripts
 * (convert_original_stable_diffusion_to_diffusers / single_file_utils) document:
 *
 *   input_blocks.0.0                      conv_in
 *   input_blocks.N.0 / .1   (N >= 1)      down_blocks.l.resnets.r / .attentions.r,
 *                                         l = (N-1) / (n_res+1), r = (N-1) % (n_res+1) < n_res
 *   input_blocks.N.0.op     (r = n_res)   down_blocks.l.downsamplers.0.conv
 *   middle_block.0 / .1 / .2              mid_block.resnets.0 / attentions.0 / resnets.1
 *   output_blocks.N.0 / .1                up_blocks.u.resnets.j / .attentions.j, u = N / (n_res+1), j = N % (n_res+1)
 *   output_blocks.N.K.conv (last K)       up_blocks.u.upsamplers.0.conv
 *   resnet in_layers.0 / in_layers.2      norm1 / conv1
 *          emb_layers.1                   time_emb_proj
 *          out_layers.0 / out_layers.3    norm2 / conv2
 *          skip_connection                conv_shortcut
 *   time_embed.0 / .2                     time_embedding.linear_1 / linear_2
 *   label_emb.0.0 / .0.2                  add_embedding.linear_1 / linear_2
 *   out.0 / out.2                         conv_norm_out / conv_out
 * Transformer internals (norm, proj_in, transformer_blocks.i.attn1.to_q ..., proj_out) are named
 * alike in both. */
#include "unet-private.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

/* --- renaming ---------------------------------------------------------------------------------- */

int
easel_unet_take_index (const char *key, const char **rest)
{
  char *end;
  if (!g_ascii_isdigit (key[0]))
    return -1;
  guint64 v = g_ascii_strtoull (key, &end, 10);
  if (*end != '.' || v > 100000)
    return -1;
  *rest = end + 1;
  return (int) v;
}

static const struct {
  const char *original, *internal;
} resnet_parts[] = {
  { "in_layers.0.", "norm1." },      { "in_layers.2.", "conv1." },  { "emb_layers.1.", "time_emb_proj." },
  { "out_layers.0.", "norm2." },     { "out_layers.3.", "conv2." }, { "skip_connection.", "conv_shortcut." },
};

static gboolean
is_resnet_key (const char *rest)
{
  for (guint i = 0; i < G_N_ELEMENTS (resnet_parts); i++)
    if (g_str_has_prefix (rest, resnet_parts[i].original))
      return TRUE;
  return FALSE;
}

/* "<block>.resnets.<i>." + renamed resnet part */
static char *
resnet_name (const char *block, int i, const char *rest)
{
  for (guint k = 0; k < G_N_ELEMENTS (resnet_parts); k++)
    if (g_str_has_prefix (rest, resnet_parts[k].original))
      return g_strdup_printf ("%s.resnets.%d.%s%s", block, i, resnet_parts[k].internal,
                              rest + strlen (resnet_parts[k].original));
  return NULL;
}

char *
easel_unet_rename_original (const char *key, int n_res)
{
  static const struct {
    const char *original, *internal;
  } plain[] = {
    { "time_embed.0.", "time_embedding.linear_1." }, { "time_embed.2.", "time_embedding.linear_2." },
    { "label_emb.0.0.", "add_embedding.linear_1." }, { "label_emb.0.2.", "add_embedding.linear_2." },
    { "out.0.", "conv_norm_out." },                   { "out.2.", "conv_out." },
    { "input_blocks.0.0.", "conv_in." },
  };
  const char *rest, *inner;
  int n, k;

  for (guint i = 0; i < G_N_ELEMENTS (plain); i++)
    if (g_str_has_prefix (key, plain[i].original))
      return g_strconcat (plain[i].internal, key + strlen (plain[i].original), NULL);
  if (n_res < 1)
    return NULL;

  if (g_str_has_prefix (key, "input_blocks.")) {
    if ((n = easel_unet_take_index (key + strlen ("input_blocks."), &rest)) < 1 || (k = easel_unet_take_index (rest, &inner)) < 0)
      return NULL;
    int l = (n - 1) / (n_res + 1), r = (n - 1) % (n_res + 1);
    g_autofree char *block = g_strdup_printf ("down_blocks.%d", l);
    if (r == n_res)
      return g_str_has_prefix (inner, "op.") ? g_strdup_printf ("%s.downsamplers.0.conv.%s", block, inner + 3) : NULL;
    if (k == 0)
      return resnet_name (block, r, inner);
    return k == 1 ? g_strdup_printf ("%s.attentions.%d.%s", block, r, inner) : NULL;
  }
  if (g_str_has_prefix (key, "middle_block.")) {
    if ((k = easel_unet_take_index (key + strlen ("middle_block."), &inner)) < 0 || k > 2)
      return NULL;
    if (is_resnet_key (inner))
      return resnet_name ("mid_block", k == 0 ? 0 : 1, inner);
    return k == 1 ? g_strdup_printf ("mid_block.attentions.0.%s", inner) : NULL;
  }
  if (g_str_has_prefix (key, "output_blocks.")) {
    if ((n = easel_unet_take_index (key + strlen ("output_blocks."), &rest)) < 0 || (k = easel_unet_take_index (rest, &inner)) < 0)
      return NULL;
    g_autofree char *block = g_strdup_printf ("up_blocks.%d", n / (n_res + 1));
    int j = n % (n_res + 1);
    if (k == 0)
      return resnet_name (block, j, inner);
    if (g_str_has_prefix (inner, "conv."))
      return g_strdup_printf ("%s.upsamplers.0.%s", block, inner);
    return k == 1 ? g_strdup_printf ("%s.attentions.%d.%s", block, j, inner) : NULL;
  }
  return NULL;
}

static char *
rename_original (const char *key, gpointer user_data)
{
  return easel_unet_rename_original (key, GPOINTER_TO_INT (user_data));
}

/* Resnets per level of an original-naming UNet: output blocks = levels · (n_res + 1), and
 * levels = downsamplers + 1. 0 when the keys do not tell. */
static int
original_n_res (const EaselCheckpoint *ck, const char *prefix)
{
  gsize plen = strlen (prefix);
  int max_out = -1, n_down = 0, last_down = -1;

  for (gsize i = 0; i < easel_checkpoint_n_tensors (ck); i++) {
    const char *name = easel_checkpoint_tensor (ck, i)->name, *rest, *inner;
    int n;
    if (strncmp (name, prefix, plen) != 0)
      continue;
    name += plen;
    if (g_str_has_prefix (name, "output_blocks.") && (n = easel_unet_take_index (name + strlen ("output_blocks."), &rest)) >= 0)
      max_out = MAX (max_out, n);
    if (g_str_has_prefix (name, "input_blocks.") && (n = easel_unet_take_index (name + strlen ("input_blocks."), &rest)) >= 0
        && easel_unet_take_index (rest, &inner) == 0 && g_str_has_prefix (inner, "op.weight") && n != last_down) {
      n_down++;   /* tensors are sorted by name: one .op.weight per downsampler */
      last_down = n;
    }
  }
  if (max_out < 0 || (max_out + 1) % (n_down + 1) != 0 || (max_out + 1) / (n_down + 1) < 2)
    return 0;
  return (max_out + 1) / (n_down + 1) - 1;
}

/* --- binding ----------------------------------------------------------------------------------- */

typedef struct {
  EaselUnet *u;
  const char *path;   /* checkpoint, for errors */
  GError **error;
  gboolean parts;     /* binding the parts of a fused weight: no patch targets */
} Loader;

static gboolean
has (Loader *ld, const char *format, ...) G_GNUC_PRINTF (2, 3);

static gboolean
has (Loader *ld, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *name = g_strdup_vprintf (format, ap);
  va_end (ap);
  return easel_weights_has (ld->u->weights, name);
}

static void
set_w (EaselUnetW *w, const EaselStTensor *st)
{
  w->name = st->name;
  w->dtype = st->dtype;
  w->n_dims = st->n_dims;
  memcpy (w->shape, st->shape, sizeof (gint64) * MIN (st->n_dims, 4));
  w->data = st->data;
}

/* --- patch targets (patch.h) ------------------------------------------------------------------- */

static void
bind_patched (gpointer slot, const EaselStTensor *t)
{
  EaselUnetW *w = slot;
  w->dtype = t->dtype;
  w->data = t->data;
}

/* Records rows [row0, row0 + rows) of the weight bound at w as module `name` minus ".weight";
 * file_dtype: the module's dtype in the checkpoint. */
static void
add_target (Loader *ld, EaselUnetW *w, const char *name, gint64 row0, gint64 rows, EaselDType file_dtype)
{
  EaselPatchTarget *t = g_new0 (EaselPatchTarget, 1);
  t->module = g_str_has_suffix (name, ".weight") ? g_strndup (name, strlen (name) - strlen (".weight")) : g_strdup (name);
  t->row0 = row0;
  t->rows = rows;
  t->slot = w;
  t->bind = bind_patched;
  t->lowrank = &w->lowrank;
  t->file_dtype = file_dtype;
  g_ptr_array_add (ld->u->targets, t);
}

/* After binding: each target's stored tensor, as the slot holds it now. */
static void
snapshot_targets (EaselUnet *u)
{
  for (guint i = 0; i < u->targets->len; i++) {
    EaselPatchTarget *t = u->targets->pdata[i];
    const EaselUnetW *w = t->slot;
    EaselStTensor st = { .name = w->name, .dtype = w->dtype, .n_dims = w->n_dims, .data = w->data };
    EaselDType file_dtype = t->file_dtype;
    memcpy (st.shape, w->shape, sizeof w->shape);
    easel_patch_target_set_stored (t, &st);
    t->file_dtype = file_dtype;
  }
}

GPtrArray *
easel_unet_patch_targets (EaselUnet *u)
{
  return u->targets;
}

static gboolean
check_float (Loader *ld, const EaselStTensor *st)
{
  if (st->dtype == EASEL_DTYPE_F32 || st->dtype == EASEL_DTYPE_F16 || st->dtype == EASEL_DTYPE_BF16)
    return TRUE;
  g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "%s: UNet tensor '%s' is %s, not a float weight",
               ld->path, st->name, easel_dtype_name (st->dtype));
  return FALSE;
}

/* Binds name (shape: n_dims sizes, -1 any) into *w; optional: absent leaves w empty. */
static gboolean
bind (Loader *ld, EaselUnetW *w, gboolean optional, const char *name, int n_dims, gint64 d0, gint64 d1, gint64 d2,
      gint64 d3)
{
  const gint64 shape[4] = { d0, d1, d2, d3 };
  const EaselStTensor *st;
  if (optional && !easel_weights_has (ld->u->weights, name))
    return TRUE;
  st = easel_weights_require (ld->u->weights, name, n_dims, shape, ld->error);
  if (st == NULL) {
    g_prefix_error (ld->error, "%s: UNet: ", ld->path);
    return FALSE;
  }
  if (!check_float (ld, st))
    return FALSE;
  set_w (w, st);
  if (n_dims >= 2 && !ld->parts)
    add_target (ld, w, name, 0, st->shape[0], st->dtype);
  return TRUE;
}

#define NAME(...) g_autofree char *name_ = g_strdup_printf (__VA_ARGS__)

static gboolean
bind_vec (Loader *ld, EaselUnetW *w, gboolean optional, gint64 n, const char *prefix, const char *what)
{
  NAME ("%s%s", prefix, what);
  return bind (ld, w, optional, name_, 1, n, 0, 0, 0);
}

static gboolean
bind_mat (Loader *ld, EaselUnetW *w, gint64 rows, gint64 cols, const char *prefix, const char *what)
{
  NAME ("%s%s", prefix, what);
  return bind (ld, w, FALSE, name_, 2, rows, cols, 0, 0);
}

static gboolean
bind_conv (Loader *ld, EaselUnetW *w, gint64 co, gint64 ci, gint64 k, const char *prefix, const char *what)
{
  NAME ("%s%s", prefix, what);
  return bind (ld, w, FALSE, name_, 4, co, ci, k, k);
}

/* weight + bias of a Linear (rows, cols) */
static gboolean
bind_linear (Loader *ld, EaselUnetW *w, EaselUnetW *b, gint64 rows, gint64 cols, const char *prefix,
             const char *module)
{
  g_autofree char *wn = g_strconcat (module, ".weight", NULL), *bn = g_strconcat (module, ".bias", NULL);
  return bind_mat (ld, w, rows, cols, prefix, wn) && bind_vec (ld, b, FALSE, rows, prefix, bn);
}

static gboolean
bind_norm (Loader *ld, EaselUnetW *w, EaselUnetW *b, gint64 c, const char *prefix, const char *module)
{
  g_autofree char *wn = g_strconcat (module, ".weight", NULL), *bn = g_strconcat (module, ".bias", NULL);
  return bind_vec (ld, w, FALSE, c, prefix, wn) && bind_vec (ld, b, FALSE, c, prefix, bn);
}

static gboolean
bind_conv_bias (Loader *ld, EaselUnetW *w, EaselUnetW *b, gint64 co, gint64 ci, gint64 k, const char *prefix,
                const char *module)
{
  g_autofree char *wn = g_strconcat (module, ".weight", NULL), *bn = g_strconcat (module, ".bias", NULL);
  return bind_conv (ld, w, co, ci, k, prefix, wn) && bind_vec (ld, b, FALSE, co, prefix, bn);
}

/* Projections (rows_i, cols) stacked into one owned F32 (sum rows_i, cols) weight, and their
 * biases (zeros where one is absent; none when all are). */
static gboolean
bind_fused (Loader *ld, EaselUnetW *w, EaselUnetW *b, const char *prefix, const char *const *modules, int n,
            gint64 cols)
{
  EaselUnetW parts[3] = { 0 }, biases[3] = { 0 };
  gint64 rows = 0;
  gboolean any_bias = FALSE;

  g_assert (n <= 3);
  for (int i = 0; i < n; i++) {
    g_autofree char *wn = g_strconcat (modules[i], ".weight", NULL), *bn = g_strconcat (modules[i], ".bias", NULL);
    ld->parts = TRUE;
    gboolean ok = bind_mat (ld, &parts[i], -1, cols, prefix, wn);
    ld->parts = FALSE;
    if (!ok)
      return FALSE;
    if (!bind_vec (ld, &biases[i], TRUE, parts[i].shape[0], prefix, bn))
      return FALSE;
    rows += parts[i].shape[0];
    any_bias |= biases[i].data != NULL;
  }
  float *data = g_try_new (float, rows * cols);
  float *bias = any_bias ? g_try_new0 (float, rows) : NULL;
  if (data == NULL || (any_bias && bias == NULL)) {
    g_free (data);
    g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY, "%s: UNet: no memory for %s fused weights",
                 ld->path, prefix);
    return FALSE;
  }
  g_ptr_array_add (ld->u->owned, data);
  gint64 at = 0;
  for (int i = 0; i < n; i++) {
    easel_dtype_to_f32 (parts[i].dtype, parts[i].data, data + at * cols, parts[i].shape[0] * cols);
    if (biases[i].data)
      easel_dtype_to_f32 (biases[i].dtype, biases[i].data, bias + at, parts[i].shape[0]);
    at += parts[i].shape[0];
  }
  char *name = g_strdup_printf ("%s%s+", prefix, modules[0]);
  g_ptr_array_add (ld->u->owned, name);
  *w = (EaselUnetW) { name, EASEL_DTYPE_F32, 2, { rows, cols }, data };
  at = 0;
  for (int i = 0; i < n; i++) {
    g_autofree char *module = g_strconcat (prefix, modules[i], NULL);
    add_target (ld, w, module, at, parts[i].shape[0], parts[i].dtype);
    at += parts[i].shape[0];
  }
  if (bias) {
    g_ptr_array_add (ld->u->owned, bias);
    *b = (EaselUnetW) { name, EASEL_DTYPE_F32, 1, { rows }, bias };
  }
  return TRUE;
}

/* ResnetBlock2D at prefix ("down_blocks.0.resnets.1."): cin -> cout, time embedding width t. */
static gboolean
bind_res (Loader *ld, EaselUnetRes *r, const char *p, gint64 cin, gint64 cout, gint64 t)
{
  if (!bind_norm (ld, &r->norm1_w, &r->norm1_b, cin, p, "norm1")
      || !bind_conv_bias (ld, &r->conv1_w, &r->conv1_b, cout, cin, 3, p, "conv1")
      || !bind_linear (ld, &r->temb_w, &r->temb_b, cout, t, p, "time_emb_proj")
      || !bind_norm (ld, &r->norm2_w, &r->norm2_b, cout, p, "norm2")
      || !bind_conv_bias (ld, &r->conv2_w, &r->conv2_b, cout, cout, 3, p, "conv2"))
    return FALSE;
  if (cin == cout && !has (ld, "%sconv_shortcut.weight", p))
    return TRUE;
  return bind_conv_bias (ld, &r->skip_w, &r->skip_b, cout, cin, 1, p, "conv_shortcut");
}

/* A projection that is Linear (C, C) or a 1x1 conv (C, C, 1, 1): bound as a (C, C) matrix. */
static gboolean
bind_proj (Loader *ld, EaselUnetW *w, EaselUnetW *b, gint64 c, const char *p, const char *module)
{
  g_autofree char *wn = g_strconcat (module, ".weight", NULL), *bn = g_strconcat (module, ".bias", NULL);
  NAME ("%s%s", p, wn);
  if (!bind (ld, w, FALSE, name_, ld->u->cfg.linear_proj ? 2 : 4, c, c, 1, 1))
    return FALSE;
  w->n_dims = 2;
  return bind_vec (ld, b, FALSE, c, p, bn);
}

static int
count_blocks (Loader *ld, const char *p)
{
  int n = 0;
  while (n < 1000 && has (ld, "%stransformer_blocks.%d.norm1.weight", p, n))
    n++;
  return n;
}

/* Transformer2DModel / SpatialTransformer at prefix p over c channels. */
static EaselUnetTransformer *
bind_transformer (Loader *ld, const char *p, gint64 c, int heads)
{
  static const char *const qkv[] = { "attn1.to_q", "attn1.to_k", "attn1.to_v" };
  static const char *const kv[] = { "attn2.to_k", "attn2.to_v" };
  const EaselUnetConfig *cfg = &ld->u->cfg;
  EaselUnetTransformer *t = g_new0 (EaselUnetTransformer, 1);

  g_ptr_array_add (ld->u->owned, t);
  t->heads = heads;
  t->depth = count_blocks (ld, p);
  if (t->depth == 0) {
    g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: UNet: %s has no transformer blocks", ld->path, p);
    return NULL;
  }
  if (c % heads != 0) {
    g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                 "%s: UNet: %s: %d heads do not divide %" G_GINT64_FORMAT " channels", ld->path, p, heads, c);
    return NULL;
  }
  t->blocks = g_new0 (EaselUnetBlock, t->depth);
  g_ptr_array_add (ld->u->owned, t->blocks);
  if (!bind_norm (ld, &t->norm_w, &t->norm_b, c, p, "norm") || !bind_proj (ld, &t->proj_in_w, &t->proj_in_b, c, p, "proj_in")
      || !bind_proj (ld, &t->proj_out_w, &t->proj_out_b, c, p, "proj_out"))
    return NULL;
  for (int i = 0; i < t->depth; i++) {
    EaselUnetBlock *k = &t->blocks[i];
    g_autofree char *bp = g_strdup_printf ("%stransformer_blocks.%d.", p, i);
    if (!bind_norm (ld, &k->norm1_w, &k->norm1_b, c, bp, "norm1") || !bind_norm (ld, &k->norm2_w, &k->norm2_b, c, bp, "norm2")
        || !bind_norm (ld, &k->norm3_w, &k->norm3_b, c, bp, "norm3")
        || !bind_fused (ld, &k->qkv_w, &k->qkv_b, bp, qkv, 3, c)
        || !bind_linear (ld, &k->out1_w, &k->out1_b, c, c, bp, "attn1.to_out.0")
        || !bind_fused (ld, &k->q2_w, &k->q2_b, bp, (const char *const[]) { "attn2.to_q" }, 1, c)
        || !bind_fused (ld, &k->kv2_w, &k->kv2_b, bp, kv, 2, cfg->context_dim)
        || !bind_linear (ld, &k->out2_w, &k->out2_b, c, c, bp, "attn2.to_out.0")
        || !bind_mat (ld, &k->ff1_w, -1, c, bp, "ff.net.0.proj.weight"))
      return NULL;
    gint64 f2 = k->ff1_w.shape[0];
    if (f2 % 2 != 0) {
      g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: UNet: %sff.net.0.proj has an odd width",
                   ld->path, bp);
      return NULL;
    }
    if (!bind_vec (ld, &k->ff1_b, FALSE, f2, bp, "ff.net.0.proj.bias")
        || !bind_linear (ld, &k->ff2_w, &k->ff2_b, c, f2 / 2, bp, "ff.net.2"))
      return NULL;
    /* q, k, v rows must be the channel width: attention keeps the width */
    if (k->qkv_w.shape[0] != 3 * c || k->q2_w.shape[0] != c || k->kv2_w.shape[0] != 2 * c) {
      g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "%s: UNet: %s attention width differs from %"
                   G_GINT64_FORMAT " channels", ld->path, bp, c);
      return NULL;
    }
  }
  return t;
}

/* --- configuration ----------------------------------------------------------------------------- */

/* Heads per level: the hint's num_attention_heads, else its attention_head_dim (diffusers uses
 * that as the head count), an int or one per level; else the family's convention. */
static gboolean
read_heads (Loader *ld, const EaselJson *hint, EaselFamily family)
{
  EaselUnetConfig *cfg = &ld->u->cfg;
  const EaselJson *h = easel_json_get (hint, "num_attention_heads");
  gint64 v;

  if (easel_json_type (h) == EASEL_JSON_NULL)
    h = easel_json_get (hint, "attention_head_dim");
  for (int l = 0; l < cfg->n_levels; l++) {
    if (easel_json_type (h) == EASEL_JSON_ARRAY) {
      if (easel_json_length (h) != (gsize) cfg->n_levels || !easel_json_int64 (easel_json_at (h, l), &v) || v < 1
          || v > 4096) {
        g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                     "%s: UNet config: attention heads need %d positive integers", ld->path, cfg->n_levels);
        return FALSE;
      }
    } else if (easel_json_int64 (h, &v)) {
      if (v < 1 || v > 4096) {
        g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: UNet config: %" G_GINT64_FORMAT
                     " attention heads", ld->path, v);
        return FALSE;
      }
    } else if (family == EASEL_FAMILY_SD1 || family == EASEL_FAMILY_SD1_INPAINT) {
      v = 8;                                            /* SD 1.x: 8 heads */
    } else {
      v = MAX (cfg->channels[l] / 64, 1);               /* SD 2.x, SDXL: heads of width 64 */
    }
    cfg->heads[l] = (int) v;
  }
  cfg->mid_heads = cfg->heads[cfg->n_levels - 1];
  return TRUE;
}

static gboolean
read_config (Loader *ld, EaselFamily family, gint64 time_id_width, const EaselJson *hint)
{
  EaselUnet *u = ld->u;
  EaselUnetConfig *cfg = &u->cfg;
  const EaselStTensor *st;

  if (!bind (ld, &u->conv_in_w, FALSE, "conv_in.weight", 4, -1, -1, 3, 3))
    return FALSE;
  cfg->model_channels = u->conv_in_w.shape[0];
  cfg->in_channels = u->conv_in_w.shape[1];
  while (cfg->n_levels < EASEL_UNET_MAX_LEVELS && has (ld, "down_blocks.%d.resnets.0.conv1.weight", cfg->n_levels))
    cfg->n_levels++;
  while (cfg->n_res < 64 && has (ld, "down_blocks.0.resnets.%d.conv1.weight", cfg->n_res))
    cfg->n_res++;
  if (cfg->n_levels == 0 || cfg->n_res == 0 || has (ld, "down_blocks.%d.resnets.0.conv1.weight", cfg->n_levels)) {
    g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "%s: UNet: %d levels of %d resnets (at most %d levels)",
                 ld->path, cfg->n_levels, cfg->n_res, EASEL_UNET_MAX_LEVELS);
    return FALSE;
  }
  for (int l = 0; l < cfg->n_levels; l++) {
    g_autofree char *name = g_strdup_printf ("down_blocks.%d.resnets.0.conv1.weight", l);
    st = easel_weights_get (u->weights, name);
    if (st->n_dims != 4 || st->shape[0] < 1) {
      g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: UNet: %s is no conv weight", ld->path, st->name);
      return FALSE;
    }
    cfg->channels[l] = st->shape[0];
  }

  /* which levels attend, how deep, and the transformers' form */
  st = NULL;
  for (int l = 0; l < cfg->n_levels; l++) {
    g_autofree char *p = g_strdup_printf ("down_blocks.%d.attentions.0.", l);
    cfg->depth[l] = count_blocks (ld, p);
    if (st == NULL && cfg->depth[l] > 0) {
      g_autofree char *pi = g_strconcat (p, "proj_in.weight", NULL), *k = g_strconcat (p, "transformer_blocks.0.attn2.to_k.weight", NULL);
      st = easel_weights_get (u->weights, pi);
      const EaselStTensor *kt = easel_weights_get (u->weights, k);
      if (st == NULL || kt == NULL || kt->n_dims != 2) {
        g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: UNet: %s lacks proj_in or attn2.to_k",
                     ld->path, p);
        return FALSE;
      }
      cfg->linear_proj = st->n_dims == 2;
      cfg->context_dim = kt->shape[1];
    }
  }
  cfg->mid_depth = count_blocks (ld, "mid_block.attentions.0.");
  if (st == NULL && cfg->mid_depth > 0) {
    st = easel_weights_get (u->weights, "mid_block.attentions.0.proj_in.weight");
    const EaselStTensor *kt = easel_weights_get (u->weights, "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight");
    if (st == NULL || kt == NULL || kt->n_dims != 2) {
      g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: UNet: the middle block's transformer is incomplete",
                   ld->path);
      return FALSE;
    }
    cfg->linear_proj = st->n_dims == 2;
    cfg->context_dim = kt->shape[1];
  }

  /* time and label embeddings */
  if (!bind (ld, &u->time1_w, FALSE, "time_embedding.linear_1.weight", 2, -1, -1, 0, 0))
    return FALSE;
  cfg->time_embed_dim = u->time1_w.shape[0];
  cfg->time_proj_dim = u->time1_w.shape[1];
  if (cfg->time_proj_dim % 2 != 0 || cfg->time_proj_dim < 2) {
    g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "%s: UNet: odd timestep embedding width %" G_GINT64_FORMAT,
                 ld->path, cfg->time_proj_dim);
    return FALSE;
  }
  if (has (ld, "add_embedding.linear_1.weight")) {
    if (!bind (ld, &u->add1_w, FALSE, "add_embedding.linear_1.weight", 2, cfg->time_embed_dim, -1, 0, 0))
      return FALSE;
    cfg->adm_in = u->add1_w.shape[1];
    cfg->time_id_width = easel_json_get_int (hint, "addition_time_embed_dim", time_id_width);
    if (cfg->time_id_width < 0 || cfg->time_id_width % 2 != 0 || cfg->time_id_width >= cfg->adm_in)
      cfg->time_id_width = 0;   /* then from the inputs */
  }

  const EaselStTensor *out = u->encoder_only ? NULL : easel_weights_get (u->weights, "conv_out.weight");
  cfg->out_channels = out && out->n_dims == 4 ? out->shape[0] : 0;
  cfg->groups = (int) easel_json_get_int (hint, "norm_num_groups", 32);
  cfg->norm_eps = (float) easel_json_get_double (hint, "norm_eps", 1e-5);
  if (cfg->groups < 1 || (cfg->out_channels < 1 && !u->encoder_only) || !(cfg->norm_eps > 0)) {
    g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: UNet: bad conv_out or norm settings", ld->path);
    return FALSE;
  }
  return read_heads (ld, hint, family);
}

/* Binds every weight, walking the network in the order forward runs it. */
static gboolean
bind_all (Loader *ld)
{
  EaselUnet *u = ld->u;
  const EaselUnetConfig *cfg = &u->cfg;
  gint64 T = cfg->time_embed_dim, ch = cfg->model_channels;
  gint64 skips[1 + EASEL_UNET_MAX_LEVELS * 65];
  int n_skips = 0;

  if (!bind_vec (ld, &u->conv_in_b, FALSE, ch, "", "conv_in.bias")
      || !bind_vec (ld, &u->time1_b, FALSE, T, "", "time_embedding.linear_1.bias")
      || !bind_linear (ld, &u->time2_w, &u->time2_b, T, T, "", "time_embedding.linear_2"))
    return FALSE;
  if (cfg->adm_in > 0 && (!bind_vec (ld, &u->add1_b, FALSE, T, "", "add_embedding.linear_1.bias")
                          || !bind_linear (ld, &u->add2_w, &u->add2_b, T, T, "", "add_embedding.linear_2")))
    return FALSE;
  skips[n_skips++] = ch;
  for (int l = 0; l < cfg->n_levels; l++) {
    EaselUnetLevel *lv = &u->down[l];
    gint64 c = cfg->channels[l];
    lv->res = g_new0 (EaselUnetRes, cfg->n_res);
    lv->attn = g_new0 (EaselUnetTransformer *, cfg->n_res);
    g_ptr_array_add (u->owned, lv->res);
    g_ptr_array_add (u->owned, lv->attn);
    for (int r = 0; r < cfg->n_res; r++) {
      g_autofree char *p = g_strdup_printf ("down_blocks.%d.resnets.%d.", l, r);
      g_autofree char *a = g_strdup_printf ("down_blocks.%d.attentions.%d.", l, r);
      if (!bind_res (ld, &lv->res[r], p, ch, c, T))
        return FALSE;
      ch = c;
      if (cfg->depth[l] > 0 && (lv->attn[r] = bind_transformer (ld, a, c, cfg->heads[l])) == NULL)
        return FALSE;
      skips[n_skips++] = ch;
    }
    if (l + 1 < cfg->n_levels) {
      g_autofree char *p = g_strdup_printf ("down_blocks.%d.downsamplers.0.", l);
      if (!bind_conv_bias (ld, &lv->sample_w, &lv->sample_b, ch, ch, 3, p, "conv"))
        return FALSE;
      skips[n_skips++] = ch;
    }
  }
  if (!bind_res (ld, &u->mid_res[0], "mid_block.resnets.0.", ch, ch, T)
      || (cfg->mid_depth > 0 && (u->mid_attn = bind_transformer (ld, "mid_block.attentions.0.", ch, cfg->mid_heads)) == NULL)
      || !bind_res (ld, &u->mid_res[1], "mid_block.resnets.1.", ch, ch, T))
    return FALSE;
  if (u->encoder_only)
    return TRUE;
  for (int l = cfg->n_levels - 1; l >= 0; l--) {
    EaselUnetLevel *lv = &u->up[l];
    int ui = cfg->n_levels - 1 - l;
    gint64 c = cfg->channels[l];
    lv->res = g_new0 (EaselUnetRes, cfg->n_res + 1);
    lv->attn = g_new0 (EaselUnetTransformer *, cfg->n_res + 1);
    g_ptr_array_add (u->owned, lv->res);
    g_ptr_array_add (u->owned, lv->attn);
    for (int j = 0; j <= cfg->n_res; j++) {
      g_autofree char *p = g_strdup_printf ("up_blocks.%d.resnets.%d.", ui, j);
      g_autofree char *a = g_strdup_printf ("up_blocks.%d.attentions.%d.", ui, j);
      if (!bind_res (ld, &lv->res[j], p, ch + skips[--n_skips], c, T))
        return FALSE;
      ch = c;
      if (has (ld, "%sproj_in.weight", a) && (lv->attn[j] = bind_transformer (ld, a, c, cfg->heads[l])) == NULL)
        return FALSE;
    }
    if (l > 0) {
      g_autofree char *p = g_strdup_printf ("up_blocks.%d.upsamplers.0.", ui);
      if (!bind_conv_bias (ld, &lv->sample_w, &lv->sample_b, ch, ch, 3, p, "conv"))
        return FALSE;
    }
  }
  return bind_norm (ld, &u->norm_out_w, &u->norm_out_b, ch, "", "conv_norm_out")
         && bind_conv_bias (ld, &u->conv_out_w, &u->conv_out_b, cfg->out_channels, ch, 3, "", "conv_out");
}

EaselUnet *
easel_unet_new_part (EaselWeights *weights, const char *path, EaselFamily family, gint64 time_id_width,
                     const EaselJson *hint, gboolean encoder_only, GError **error)
{
  g_autoptr(EaselUnet) u = g_new0 (EaselUnet, 1);
  Loader ld = { u, path, error, FALSE };

  u->owned = g_ptr_array_new_with_free_func (g_free);
  u->targets = g_ptr_array_new_with_free_func (easel_patch_target_free);
  u->weights = weights;
  u->encoder_only = encoder_only;
  if (!read_config (&ld, family, time_id_width, hint) || !bind_all (&ld))
    return NULL;
  snapshot_targets (u);
  return g_steal_pointer (&u);
}

EaselUnet *
easel_unet_new (const EaselCheckpoint *ck, const EaselJson *hint, GError **error)
{
  const EaselDetection *det = easel_checkpoint_detection (ck);
  const char *path = easel_checkpoint_path (ck);
  EaselWeights *weights;

  if (det->unet_naming == EASEL_NAMING_NONE) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no UNet weights found", path);
    return NULL;
  }
  /* a diffusers folder or a make-model file carries its own config: the hint unless the caller gives one */
  if (hint == NULL)
    hint = easel_checkpoint_config (ck, "unet");
  if (det->unet_naming == EASEL_NAMING_ORIGINAL) {
    int n_res = original_n_res (ck, det->unet_prefix);
    if (n_res == 0) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                   "%s: UNet: output_blocks do not split into levels of resnets", path);
      return NULL;
    }
    weights = easel_weights_new (ck, det->unet_prefix, rename_original, GINT_TO_POINTER (n_res), error);
  } else {
    weights = easel_weights_new (ck, det->unet_prefix, NULL, NULL, error);
  }
  if (weights == NULL)
    return NULL;
  return easel_unet_new_part (weights, path, det->family, det->time_id_width, hint, FALSE, error);
}

void
easel_unet_free (EaselUnet *u)
{
  if (u == NULL)
    return;
  easel_weights_free (u->weights);
  if (u->targets)
    g_ptr_array_unref (u->targets);
  g_ptr_array_unref (u->owned);
  g_free (u);
}

const EaselUnetConfig *
easel_unet_config (const EaselUnet *u)
{
  return &u->cfg;
}

int
easel_unet_n_skips (const EaselUnet *u)
{
  return 1 + u->cfg.n_levels * u->cfg.n_res + u->cfg.n_levels - 1;
}
