/* engine/t2i_adapter.c: T2I-Adapter loading and graph (t2i_adapter.h says what it computes),
 * following diffusers' models/adapter.py (FullAdapter, FullAdapterXL, LightAdapter). */
#include "t2i_adapter.h"

#include <string.h>

#include "error.h"
#include "weights.h"

typedef struct {
  const EaselStTensor *w, *b;
} Conv;

typedef struct {
  gboolean pool;
  Conv in_conv, out_conv;          /* w NULL: absent */
  int n_res;
  Conv *block1, *block2;
} Level;

struct _EaselT2IAdapter {
  EaselWeights *weights;
  int factor;
  Conv conv_in;                    /* w NULL for light adapters */
  int n_levels;
  Level levels[EASEL_T2I_MAX_LEVELS];
};

/* module.weight (co, ci, k, k) (-1: any) and module.bias (co); optional: absent leaves c empty. */
static gboolean
bind_conv (EaselT2IAdapter *a, const char *path, Conv *c, gboolean optional, const char *module, gint64 co, gint64 ci,
           gint64 k, GError **error)
{
  g_autofree char *wn = g_strconcat (module, ".weight", NULL), *bn = g_strconcat (module, ".bias", NULL);
  const gint64 ws[4] = { co, ci, k, k };
  if (optional && !easel_weights_has (a->weights, wn))
    return TRUE;
  if ((c->w = easel_weights_require (a->weights, wn, 4, ws, error)) == NULL) {
    g_prefix_error (error, "%s: T2I-Adapter: ", path);
    return FALSE;
  }
  const gint64 bs[1] = { c->w->shape[0] };
  if ((c->b = easel_weights_require (a->weights, bn, 1, bs, error)) == NULL) {
    g_prefix_error (error, "%s: T2I-Adapter: ", path);
    return FALSE;
  }
  if (c->w->dtype != EASEL_DTYPE_F32 && c->w->dtype != EASEL_DTYPE_F16 && c->w->dtype != EASEL_DTYPE_BF16) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "%s: T2I-Adapter tensor '%s' is no float weight", path,
                 c->w->name);
    return FALSE;
  }
  return TRUE;
}

static gboolean
has (EaselT2IAdapter *a, const char *format, int i, int j)
{
  g_autofree char *name = g_strdup_printf (format, i, j);
  return easel_weights_has (a->weights, name);
}

EaselT2IAdapter *
easel_t2i_adapter_new (const EaselCheckpoint *ck, const EaselJson *hint, GError **error)
{
  const char *path = easel_checkpoint_path (ck);
  g_autoptr(EaselT2IAdapter) a = g_new0 (EaselT2IAdapter, 1);
  g_autofree char *prefix = easel_checkpoint_find_prefix (ck, "body.0.resnets.0.block1.weight");

  if (prefix == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no T2I-Adapter weights (body.0.resnets.0.block1)", path);
    return NULL;
  }
  if (hint == NULL)
    hint = easel_checkpoint_part_config (ck, prefix);
  if ((a->weights = easel_weights_new (ck, prefix, NULL, NULL, error)) == NULL)
    return NULL;

  while (a->n_levels < EASEL_T2I_MAX_LEVELS && has (a, "body.%d.resnets.%d.block1.weight", a->n_levels, 0))
    a->n_levels++;
  gboolean light = has (a, "body.%d.out_conv.weight", 0, 0);
  const char *type = easel_json_get_string (hint, "adapter_type", light ? "light_adapter" : "full_adapter");
  if (strcmp (type, "full_adapter") != 0 && strcmp (type, "full_adapter_xl") != 0 && strcmp (type, "light_adapter") != 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "%s: T2I-Adapter type '%s' is not supported", path, type);
    return NULL;
  }
  light = strcmp (type, "light_adapter") == 0;

  gint64 ch;
  if (!light) {
    if (!bind_conv (a, path, &a->conv_in, FALSE, "conv_in", -1, -1, 3, error))
      return NULL;
    ch = a->conv_in.w->shape[0];
  } else {
    const EaselStTensor *in = easel_weights_get (a->weights, "body.0.in_conv.weight");
    if (in == NULL || in->n_dims != 4) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: T2I-Adapter: light adapter without body.0.in_conv", path);
      return NULL;
    }
    ch = in->shape[1];
  }
  gint64 in_ch = light ? ch : a->conv_in.w->shape[1];
  int f = 1;
  while (f < 64 && 3 * f * f < in_ch)
    f++;
  if (3 * f * f != in_ch) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                 "%s: T2I-Adapter: input width %" G_GINT64_FORMAT " is not 3 · f² (PixelUnshuffle of RGB)", path, in_ch);
    return NULL;
  }
  a->factor = (int) easel_json_get_int (hint, "downscale_factor", f);
  gboolean xl = strcmp (type, "full_adapter_xl") == 0 || (easel_json_get (hint, "adapter_type") == NULL && !light && f == 16);
  if (a->factor != f) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: T2I-Adapter: downscale_factor %d but the input is 3 · %d²",
                 path, a->factor, f);
    return NULL;
  }

  for (int l = 0; l < a->n_levels; l++) {
    Level *lv = &a->levels[l];
    g_autofree char *p = g_strdup_printf ("body.%d.", l);
    g_autofree char *in_name = g_strconcat (p, "in_conv", NULL), *out_name = g_strconcat (p, "out_conv", NULL);
    lv->pool = xl ? l == 2 : l >= 1;
    if (!bind_conv (a, path, &lv->in_conv, !light, in_name, -1, ch, 1, error))
      return NULL;
    if (lv->in_conv.w)
      ch = lv->in_conv.w->shape[0];
    while (lv->n_res < 64 && has (a, "body.%d.resnets.%d.block1.weight", l, lv->n_res))
      lv->n_res++;
    lv->block1 = g_new0 (Conv, lv->n_res);
    lv->block2 = g_new0 (Conv, lv->n_res);
    for (int r = 0; r < lv->n_res; r++) {
      g_autofree char *b1 = g_strdup_printf ("%sresnets.%d.block1", p, r), *b2 = g_strdup_printf ("%sresnets.%d.block2", p, r);
      if (!bind_conv (a, path, &lv->block1[r], FALSE, b1, ch, ch, -1, error)
          || !bind_conv (a, path, &lv->block2[r], FALSE, b2, ch, ch, -1, error))
        return NULL;
      if (lv->block1[r].w->shape[2] % 2 == 0 || lv->block2[r].w->shape[2] % 2 == 0) {
        g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: T2I-Adapter: %s has an even kernel", path, b1);
        return NULL;
      }
    }
    if (!bind_conv (a, path, &lv->out_conv, !light, out_name, -1, ch, 1, error))
      return NULL;
    if (lv->out_conv.w)
      ch = lv->out_conv.w->shape[0];
  }
  return g_steal_pointer (&a);
}

void
easel_t2i_adapter_free (EaselT2IAdapter *a)
{
  if (a == NULL)
    return;
  for (int l = 0; l < a->n_levels; l++) {
    g_free (a->levels[l].block1);
    g_free (a->levels[l].block2);
  }
  easel_weights_free (a->weights);
  g_free (a);
}

int
easel_t2i_adapter_n_levels (const EaselT2IAdapter *a)
{
  return a->n_levels;
}

int
easel_t2i_adapter_factor (const EaselT2IAdapter *a)
{
  return a->factor;
}

static EaselTensor *
conv (EaselGraph *g, EaselTensor *x, const Conv *c)
{
  return easel_op_conv2d (g, x, easel_graph_weight_st (g, c->w), easel_graph_weight_st (g, c->b), 1,
                          (int) (c->w->shape[2] / 2));
}

int
easel_t2i_adapter_build (EaselT2IAdapter *a, EaselGraph *g, EaselTensor *image, float scale, EaselTensor **features)
{
  gint64 f = a->factor;
  if (image->n_dims != 4 || image->shape[1] != 3 || image->shape[2] % f != 0 || image->shape[3] % f != 0) {
    easel_graph_fail (g, image, "T2I-Adapter: the image must be (B, 3, H, W) with H and W multiples of %d", a->factor);
    return 0;
  }
  gint64 B = image->shape[0], C = image->shape[1], h = image->shape[2] / f, w = image->shape[3] / f;

  /* PixelUnshuffle: (B, C, h, f, w, f) -> (B, C, f, f, h, w) -> (B, C·f², h, w) */
  const gint64 split[6] = { B, C, h, f, w, f }, merged[4] = { B, C * f * f, h, w };
  static const int axes[6] = { 0, 1, 3, 5, 2, 4 };
  EaselTensor *x = easel_op_reshape (g, image, 6, split);
  x = easel_op_contiguous (g, easel_op_permute (g, x, axes));
  x = easel_op_reshape (g, x, 4, merged);

  if (a->conv_in.w)
    x = conv (g, x, &a->conv_in);
  for (int l = 0; l < a->n_levels; l++) {
    const Level *lv = &a->levels[l];
    if (lv->pool)
      x = easel_op_avg_pool2d (g, x, 2);
    if (lv->in_conv.w)
      x = conv (g, x, &lv->in_conv);
    for (int r = 0; r < lv->n_res; r++) {
      EaselTensor *hdn = easel_op_unary (g, EASEL_UNARY_RELU, conv (g, x, &lv->block1[r]));
      x = easel_op_add (g, x, conv (g, hdn, &lv->block2[r]));
    }
    if (lv->out_conv.w)
      x = conv (g, x, &lv->out_conv);
    features[l] = scale != 1.0f ? easel_op_scale (g, x, scale) : x;
  }
  return a->n_levels;
}
