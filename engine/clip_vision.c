/* engine/clip_vision.c: CLIP vision tower loading and graph (clip_vision.h), following
 * transformers' CLIPVisionTransformer: attention scale 1/sqrt(head width), biases on q, k, v, out. */
#include "clip_vision.h"

#include <math.h>
#include <string.h>

#include "error.h"
#include "weights.h"

typedef struct {
  const EaselStTensor *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
  const EaselStTensor *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} Layer;

struct _EaselClipVision {
  EaselClipVisionConfig cfg;
  EaselWeights *weights;
  const EaselStTensor *class_emb, *patch_w, *pos, *pre_w, *pre_b, *post_w, *post_b, *proj_w;
  Layer *layers;
};

typedef struct {
  EaselClipVision *v;
  const char *path;
  GError **error;
} Loader;

static gboolean
req (Loader *ld, const EaselStTensor **out, const char *name, int n_dims, gint64 d0, gint64 d1, gint64 d2, gint64 d3)
{
  const gint64 shape[4] = { d0, d1, d2, d3 };
  if ((*out = easel_weights_require (ld->v->weights, name, n_dims, shape, ld->error)) == NULL) {
    g_prefix_error (ld->error, "%s: CLIP vision: ", ld->path);
    return FALSE;
  }
  if ((*out)->dtype != EASEL_DTYPE_F32 && (*out)->dtype != EASEL_DTYPE_F16 && (*out)->dtype != EASEL_DTYPE_BF16) {
    g_set_error (ld->error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "%s: CLIP vision tensor '%s' is no float weight",
                 ld->path, (*out)->name);
    return FALSE;
  }
  return TRUE;
}

/* module.weight (rows, cols) and module.bias (rows) */
static gboolean
req_linear (Loader *ld, const EaselStTensor **w, const EaselStTensor **b, const char *p, const char *module,
            gint64 rows, gint64 cols)
{
  g_autofree char *wn = g_strconcat (p, module, ".weight", NULL), *bn = g_strconcat (p, module, ".bias", NULL);
  return req (ld, w, wn, 2, rows, cols, 0, 0) && req (ld, b, bn, 1, (*w)->shape[0], 0, 0, 0);
}

static gboolean
req_norm (Loader *ld, const EaselStTensor **w, const EaselStTensor **b, const char *p, const char *module, gint64 c)
{
  g_autofree char *wn = g_strconcat (p, module, ".weight", NULL), *bn = g_strconcat (p, module, ".bias", NULL);
  return req (ld, w, wn, 1, c, 0, 0, 0) && req (ld, b, bn, 1, c, 0, 0, 0);
}

EaselClipVision *
easel_clip_vision_new (const EaselCheckpoint *ck, const EaselJson *hint, GError **error)
{
  const char *path = easel_checkpoint_path (ck);
  g_autoptr(EaselClipVision) v = g_new0 (EaselClipVision, 1);
  g_autofree char *prefix = easel_checkpoint_find_prefix (ck, "vision_model.embeddings.patch_embedding.weight");
  EaselClipVisionConfig *cfg = &v->cfg;
  Loader ld = { v, path, error };

  if (prefix == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no CLIP vision weights (vision_model.embeddings)", path);
    return NULL;
  }
  if (hint == NULL)
    hint = easel_checkpoint_part_config (ck, prefix);
  if ((v->weights = easel_weights_new (ck, prefix, NULL, NULL, error)) == NULL)
    return NULL;
  if (!req (&ld, &v->patch_w, "vision_model.embeddings.patch_embedding.weight", 4, -1, 3, -1, -1))
    return NULL;
  cfg->width = v->patch_w->shape[0];
  cfg->patch = v->patch_w->shape[2];
  if (v->patch_w->shape[3] != cfg->patch || cfg->patch < 1
      || !req (&ld, &v->class_emb, "vision_model.embeddings.class_embedding", 1, cfg->width, 0, 0, 0)
      || !req (&ld, &v->pos, "vision_model.embeddings.position_embedding.weight", 2, -1, cfg->width, 0, 0)) {
    if (error && *error == NULL)
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: CLIP vision: the patch embedding is not square", path);
    return NULL;
  }
  gint64 grid = (gint64) llround (sqrt ((double) (v->pos->shape[0] - 1)));
  if (grid < 1 || grid * grid + 1 != v->pos->shape[0]) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: CLIP vision: %" G_GINT64_FORMAT
                 " positions are not 1 + a square grid", path, v->pos->shape[0]);
    return NULL;
  }
  cfg->image_size = grid * cfg->patch;
  while (cfg->n_layers < EASEL_CLIP_VISION_MAX_LAYERS) {
    g_autofree char *n = g_strdup_printf ("vision_model.encoder.layers.%d.layer_norm1.weight", cfg->n_layers);
    if (!easel_weights_has (v->weights, n))
      break;
    cfg->n_layers++;
  }
  gint64 heads = easel_json_get_int (hint, "num_attention_heads", MAX (cfg->width / 64, 1));
  const char *act = easel_json_get_string (hint, "hidden_act", "gelu");
  cfg->eps = (float) easel_json_get_double (hint, "layer_norm_eps", 1e-5);
  if (heads < 1 || cfg->width % heads != 0 || cfg->n_layers < 1 || !(cfg->eps > 0)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: CLIP vision: %d layers, %" G_GINT64_FORMAT
                 " heads for width %" G_GINT64_FORMAT, path, cfg->n_layers, heads, cfg->width);
    return NULL;
  }
  cfg->heads = (int) heads;
  if (strcmp (act, "gelu") == 0)
    cfg->act = EASEL_UNARY_GELU;
  else if (strcmp (act, "quick_gelu") == 0)
    cfg->act = EASEL_UNARY_QUICK_GELU;
  else if (strcmp (act, "gelu_new") == 0 || strcmp (act, "gelu_pytorch_tanh") == 0)
    cfg->act = EASEL_UNARY_GELU_TANH;
  else {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "%s: CLIP vision: activation '%s'", path, act);
    return NULL;
  }

  gint64 C = cfg->width;
  if (!req_norm (&ld, &v->pre_w, &v->pre_b, "vision_model.", "pre_layrnorm", C)
      || !req_norm (&ld, &v->post_w, &v->post_b, "vision_model.", "post_layernorm", C)
      || !req (&ld, &v->proj_w, "visual_projection.weight", 2, -1, C, 0, 0))
    return NULL;
  cfg->projection = v->proj_w->shape[0];
  v->layers = g_new0 (Layer, cfg->n_layers);
  for (int i = 0; i < cfg->n_layers; i++) {
    Layer *l = &v->layers[i];
    g_autofree char *p = g_strdup_printf ("vision_model.encoder.layers.%d.", i);
    if (!req_norm (&ld, &l->ln1_w, &l->ln1_b, p, "layer_norm1", C) || !req_norm (&ld, &l->ln2_w, &l->ln2_b, p, "layer_norm2", C)
        || !req_linear (&ld, &l->q_w, &l->q_b, p, "self_attn.q_proj", C, C)
        || !req_linear (&ld, &l->k_w, &l->k_b, p, "self_attn.k_proj", C, C)
        || !req_linear (&ld, &l->v_w, &l->v_b, p, "self_attn.v_proj", C, C)
        || !req_linear (&ld, &l->o_w, &l->o_b, p, "self_attn.out_proj", C, C)
        || !req_linear (&ld, &l->fc1_w, &l->fc1_b, p, "mlp.fc1", -1, C)
        || !req_linear (&ld, &l->fc2_w, &l->fc2_b, p, "mlp.fc2", C, l->fc1_w->shape[0]))
      return NULL;
  }
  cfg->ff_width = v->layers[0].fc1_w->shape[0];
  return g_steal_pointer (&v);
}

void
easel_clip_vision_free (EaselClipVision *v)
{
  if (v == NULL)
    return;
  easel_weights_free (v->weights);
  g_free (v->layers);
  g_free (v);
}

const EaselClipVisionConfig *
easel_clip_vision_config (const EaselClipVision *v)
{
  return &v->cfg;
}

#define WT(st) easel_graph_weight_st (g, (st))

static EaselTensor *
linear (EaselGraph *g, EaselTensor *x, const EaselStTensor *w, const EaselStTensor *b)
{
  return easel_op_linear (g, x, WT (w), b ? WT (b) : NULL);
}

/* pre-LN encoder layer on x (B, L, C) */
static EaselTensor *
layer_forward (EaselClipVision *v, EaselGraph *g, const Layer *l, EaselTensor *x)
{
  const EaselClipVisionConfig *cfg = &v->cfg;
  EaselTensor *n = easel_op_layer_norm (g, x, WT (l->ln1_w), WT (l->ln1_b), cfg->eps);
  EaselTensor *q = linear (g, n, l->q_w, l->q_b), *k = linear (g, n, l->k_w, l->k_b), *vv = linear (g, n, l->v_w, l->v_b);
  float d = (float) (cfg->width / cfg->heads);
  EaselTensor *a = easel_op_attention (g, q, k, vv, cfg->heads, 1.0f / sqrtf (d), FALSE);
  x = easel_op_add (g, x, linear (g, a, l->o_w, l->o_b));
  n = easel_op_layer_norm (g, x, WT (l->ln2_w), WT (l->ln2_b), cfg->eps);
  EaselTensor *h = easel_op_unary (g, cfg->act, linear (g, n, l->fc1_w, l->fc1_b));
  return easel_op_add (g, x, linear (g, h, l->fc2_w, l->fc2_b));
}

void
easel_clip_vision_build (EaselClipVision *v, EaselGraph *g, EaselTensor *pixels, EaselClipVisionOutputs *out)
{
  const EaselClipVisionConfig *cfg = &v->cfg;
  gint64 S = cfg->image_size, C = cfg->width, n_pos = v->pos->shape[0];

  memset (out, 0, sizeof *out);
  if (pixels->n_dims != 4 || pixels->shape[1] != 3 || pixels->shape[2] != S || pixels->shape[3] != S) {
    easel_graph_fail (g, pixels, "CLIP vision: pixel values must be (B, 3, %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT ")", S, S);
    return;
  }
  gint64 B = pixels->shape[0];
  static const int to_rows[3] = { 0, 2, 1 };
  const gint64 flat[3] = { B, C, n_pos - 1 }, one[3] = { 1, 1, C }, pos_shape[3] = { 1, n_pos, C };
  EaselTensor *p = easel_op_conv2d (g, pixels, WT (v->patch_w), NULL, (int) cfg->patch, 0);      /* (B, C, g, g) */
  p = easel_op_contiguous (g, easel_op_permute (g, easel_op_reshape (g, p, 3, flat), to_rows));  /* (B, g², C) */
  /* the class token for every batch row: 0 · (a patch row) + class_embedding */
  EaselTensor *cls = easel_op_add (g, easel_op_scale (g, easel_op_slice (g, p, 1, 0, 1), 0.0f),
                                   easel_op_reshape (g, WT (v->class_emb), 3, one));
  EaselTensor *x = easel_op_concat (g, cls, p, 1);
  x = easel_op_add (g, x, easel_op_reshape (g, WT (v->pos), 3, pos_shape));
  x = easel_op_layer_norm (g, x, WT (v->pre_w), WT (v->pre_b), cfg->eps);
  out->hidden_states[out->n_states++] = x;
  for (int i = 0; i < cfg->n_layers; i++) {
    x = layer_forward (v, g, &v->layers[i], x);
    out->hidden_states[out->n_states++] = x;
  }
  const gint64 pooled_shape[2] = { B, C };
  EaselTensor *pooled = easel_op_reshape (g, easel_op_contiguous (g, easel_op_slice (g, x, 1, 0, 1)), 2, pooled_shape);
  pooled = easel_op_layer_norm (g, pooled, WT (v->post_w), WT (v->post_b), cfg->eps);
  out->image_embeds = linear (g, pooled, v->proj_w, NULL);
}

/* --- CLIPImageProcessor ---------------------------------------------------------------------- */

/* torch's antialiased cubic filter (HelperInterpCubic::aa_filter: a = -0.5, as PIL). */
static double
aa_cubic (double x)
{
  const double a = -0.5;
  x = fabs (x);
  if (x < 1.0)
    return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2.0)
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0.0;
}

/* Taps of one axis in -> out: output i reads inputs [xmin[i], xmin[i] + xsize[i]) with int16
 * weights w[i · max_taps + j] of precision prec bits (torch's _compute_index_ranges_int16_weights). */
typedef struct {
  int max_taps;
  unsigned prec;
  gint64 *xmin, *xsize;
  gint16 *w;
} Taps;

static void
taps_init (Taps *t, gint64 in, gint64 out)
{
  const double scale = (double) in / out;
  const double support = scale >= 1.0 ? 2.0 * scale : 2.0;
  const double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
  t->max_taps = (int) ceil (support) * 2 + 1;
  t->xmin = g_new0 (gint64, out);
  t->xsize = g_new0 (gint64, out);
  t->w = g_new0 (gint16, out * t->max_taps);
  g_autofree double *wd = g_new0 (double, out * t->max_taps);
  double wmax = 0;
  for (gint64 i = 0; i < out; i++) {
    double center = scale * (i + 0.5), total = 0;
    double *w = wd + i * t->max_taps;
    gint64 xmin = MAX ((gint64) (center - support + 0.5), 0);
    gint64 xsize = CLAMP (MIN ((gint64) (center + support + 0.5), in) - xmin, 0, t->max_taps);
    for (gint64 j = 0; j < xsize; j++)
      total += w[j] = aa_cubic ((j + xmin - center + 0.5) * invscale);
    if (total != 0.0)
      for (gint64 j = 0; j < xsize; j++) {
        w[j] /= total;
        wmax = MAX (wmax, w[j]);
      }
    t->xmin[i] = xmin, t->xsize[i] = xsize;
  }
  for (t->prec = 0; t->prec < 22; t->prec++)
    if ((int) (0.5 + wmax * (1 << (t->prec + 1))) >= (1 << 15))
      break;
  for (gint64 k = 0; k < out * t->max_taps; k++) {
    double v = wd[k] * (1 << t->prec);
    t->w[k] = (gint16) (v < 0 ? (int) (-0.5 + v) : (int) (0.5 + v));
  }
}

static void
taps_clear (Taps *t)
{
  g_free (t->xmin);
  g_free (t->xsize);
  g_free (t->w);
}

/* One axis of src (n lines of `in` values `step` apart, lines `line` apart) -> dst (n lines of
 * `out` values, same layout with dst_step / dst_line). */
static void
taps_apply (const Taps *t, const guint8 *src, gint64 n, gint64 line, gint64 step, guint8 *dst, gint64 out,
            gint64 dst_line, gint64 dst_step)
{
  for (gint64 l = 0; l < n; l++)
    for (gint64 i = 0; i < out; i++) {
      const guint8 *s = src + l * line + t->xmin[i] * step;
      const gint16 *w = t->w + i * t->max_taps;
      gint64 acc = (gint64) 1 << (t->prec - 1);
      for (gint64 j = 0; j < t->xsize[i]; j++)
        acc += (gint64) s[j * step] * w[j];
      dst[l * dst_line + i * dst_step] = acc < 0 ? 0 : (guint8) MIN (acc >> t->prec, 255);
    }
}

/* Python's int (round ((d) / 2.0)): half to even. */
static gint64
half_even (gint64 d)
{
  gint64 k = d / 2;
  return d % 2 == 0 || k % 2 == 0 ? k : k + 1;
}

gboolean
easel_clip_vision_preprocess (const guint8 *rgb, gint width, gint height, gsize stride, gint size, float *pixels,
                              GError **error)
{
  static const double mean[3] = { 0.48145466, 0.4578275, 0.40821073 };
  static const double std[3] = { 0.26862954, 0.26130258, 0.27577711 };
  if (width < 1 || height < 1 || size < 1 || size > 4096 || width > 65536 || height > 65536
      || stride < (gsize) width * 3) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "CLIP image preprocessing: image %dx%d (row stride %" G_GSIZE_FORMAT ") to %d: bad size", width,
                 height, stride, size);
    return FALSE;
  }
  /* the resized size: shortest side S, the other int (S · long / short) */
  gint64 nw, nh;
  if (width <= height)
    nw = size, nh = (gint64) ((double) size * height / width);
  else
    nh = size, nw = (gint64) ((double) size * width / height);
  /* horizontal pass, then vertical; 8 bits in between (interleaved (h, w, 3)) */
  g_autofree guint8 *row = g_new (guint8, (gsize) height * nw * 3);
  g_autofree guint8 *img = g_new (guint8, (gsize) nh * nw * 3);
  for (int c = 0; c < 3; c++) {
    if (nw != width) {
      Taps t;
      taps_init (&t, width, nw);
      taps_apply (&t, rgb + c, height, (gint64) stride, 3, row + c, nw, nw * 3, 3);
      taps_clear (&t);
    } else {
      for (gint64 y = 0; y < height; y++)
        for (gint64 x = 0; x < width; x++)
          row[(y * nw + x) * 3 + c] = rgb[y * stride + x * 3 + c];
    }
    if (nh != height) {
      Taps t;
      taps_init (&t, height, nh);
      taps_apply (&t, row + c, nw, 3, nw * 3, img + c, nh, 3, nw * 3);
      taps_clear (&t);
    } else {
      for (gint64 k = 0; k < nh * nw; k++)
        img[k * 3 + c] = row[k * 3 + c];
    }
  }
  /* center crop, then the fused rescale + normalize in float32 */
  const gint64 top = half_even (nh - size), left = half_even (nw - size);
  for (int c = 0; c < 3; c++) {
    const float m = (float) mean[c] * 255.0f, s = (float) std[c] * 255.0f;
    for (gint64 y = 0; y < size; y++)
      for (gint64 x = 0; x < size; x++)
        pixels[((gsize) c * size + y) * size + x] = ((float) img[((top + y) * nw + left + x) * 3 + c] - m) / s;
  }
  return TRUE;
}
