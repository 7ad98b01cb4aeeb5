/* engine/unet.c: the UNet's forward pass as a graph (diffusers UNet2DConditionModel, ldm
 * UNetModel). Layout: activations are NCHW (B, C, H, W) through the convolutions and resnets; each
 * transformer permutes once into rows (B, HW, C), runs every linear op on those B·HW rows, and
 * permutes once back. Self-attention projects q, k, v with one fused (3C, C) matrix and attends on
 * strided views of the result; cross-attention projects k, v with one (2C, ctx) matrix.
 *
 * Constants as the reference models have them: GroupNorm 32 groups eps 1e-5 in resnets and the
 * output norm, eps 1e-6 before a transformer; LayerNorm eps 1e-5; GEGLU feed-forward with the
 * exact (erf) GELU; attention scale 1/sqrt(head width); timestep sinusoids [cos | sin] with
 * frequencies exp(-ln(10000) i / half) (flip_sin_to_cos, no shift). */
#include "unet-private.h"

#include <math.h>
#include <string.h>

#include "error.h"

#define TRANSFORMER_GN_EPS 1e-6f
#define LAYER_NORM_EPS 1e-5f

static EaselTensor *
W (EaselGraph *g, const EaselUnetW *w)
{
  return w->data ? easel_graph_weight (g, w->name, w->dtype, w->n_dims, w->shape, w->data) : NULL;
}

/* A weight's linear / conv op, with its run-time LoRA adapters (patch.h) where a stack set some. */
static EaselTensor *
lin (EaselGraph *g, EaselTensor *x, const EaselUnetW *w, const EaselUnetW *b)
{
  return easel_patch_linear (g, x, W (g, w), W (g, b), w->lowrank);
}

static EaselTensor *
conv (EaselGraph *g, EaselTensor *x, const EaselUnetW *w, const EaselUnetW *b, int stride, int pad)
{
  return easel_patch_conv2d (g, x, W (g, w), W (g, b), stride, pad, w->lowrank);
}

typedef struct {
  EaselUnet *u;
  EaselGraph *g;
  EaselTensor *emb;        /* silu(time embedding [+ add embedding]) (B, T): every resnet's input */
  EaselTensor *context;    /* (B, L, ctx) */
  const EaselUnetExtras *extras;
  int cross_index;         /* transformer blocks run so far (for the extras' hook) */
} Ctx;

/* ResnetBlock2D: x (B, Cin, H, W) -> (B, Cout, H, W). */
static EaselTensor *
resnet (Ctx *c, const EaselUnetRes *r, EaselTensor *x)
{
  EaselGraph *g = c->g;
  const EaselUnetConfig *cfg = &c->u->cfg;
  EaselTensor *h = easel_op_group_norm (g, x, W (g, &r->norm1_w), W (g, &r->norm1_b), cfg->groups, cfg->norm_eps, TRUE);
  h = conv (g, h, &r->conv1_w, &r->conv1_b, 1, 1);
  EaselTensor *e = lin (g, c->emb, &r->temb_w, &r->temb_b);    /* (B, Cout) */
  gint64 e_shape[4] = { e->shape[0], e->shape[1], 1, 1 };
  h = easel_op_add (g, h, easel_op_reshape (g, e, 4, e_shape));                          /* broadcast over HW */
  h = easel_op_group_norm (g, h, W (g, &r->norm2_w), W (g, &r->norm2_b), cfg->groups, cfg->norm_eps, TRUE);
  h = conv (g, h, &r->conv2_w, &r->conv2_b, 1, 1);
  EaselTensor *skip = r->skip_w.data ? conv (g, x, &r->skip_w, &r->skip_b, 1, 0) : x;
  return easel_op_add (g, skip, h);
}

/* Multi-head attention on q (B, Lq, C) and k, v (B, Lk, C), views allowed; -> (B, Lq, C). */
static EaselTensor *
attend (EaselGraph *g, EaselTensor *q, EaselTensor *k, EaselTensor *v, int heads)
{
  float d = (float) (q->shape[2] / heads);
  return easel_op_attention (g, q, k, v, heads, 1.0f / sqrtf (d), FALSE);
}

/* BasicTransformerBlock on rows h (B, HW, C). */
static EaselTensor *
transformer_block (Ctx *c, const EaselUnetBlock *k, EaselTensor *h, int heads)
{
  EaselGraph *g = c->g;
  gint64 C = h->shape[2];

  EaselTensor *n = easel_op_layer_norm (g, h, W (g, &k->norm1_w), W (g, &k->norm1_b), LAYER_NORM_EPS);
  EaselTensor *qkv = lin (g, n, &k->qkv_w, &k->qkv_b);                    /* (B, HW, 3C) */
  EaselTensor *a = attend (g, easel_op_slice (g, qkv, 2, 0, C), easel_op_slice (g, qkv, 2, C, C),
                           easel_op_slice (g, qkv, 2, 2 * C, C), heads);
  h = easel_op_add (g, h, lin (g, a, &k->out1_w, &k->out1_b));

  n = easel_op_layer_norm (g, h, W (g, &k->norm2_w), W (g, &k->norm2_b), LAYER_NORM_EPS);
  EaselTensor *q = lin (g, n, &k->q2_w, &k->q2_b);                        /* (B, HW, C) */
  EaselTensor *kv = lin (g, c->context, &k->kv2_w, &k->kv2_b);           /* (B, L, 2C) */
  a = attend (g, q, easel_op_slice (g, kv, 2, 0, C), easel_op_slice (g, kv, 2, C, C), heads);
  if (c->extras && c->extras->cross_attention_extra) {
    EaselTensor *extra = c->extras->cross_attention_extra (c->extras->user_data, g, c->cross_index, q, heads);
    if (extra)
      a = easel_op_add (g, a, extra);
  }
  c->cross_index++;
  h = easel_op_add (g, h, lin (g, a, &k->out2_w, &k->out2_b));

  n = easel_op_layer_norm (g, h, W (g, &k->norm3_w), W (g, &k->norm3_b), LAYER_NORM_EPS);
  EaselTensor *f = easel_op_geglu (g, lin (g, n, &k->ff1_w, &k->ff1_b));
  return easel_op_add (g, h, lin (g, f, &k->ff2_w, &k->ff2_b));
}

/* Transformer2DModel / SpatialTransformer: x (B, C, H, W) -> (B, C, H, W). proj_in/out as 1x1
 * convs are the same matrices applied to rows, so both forms run as Linear on (B, HW, C). */
static EaselTensor *
transformer (Ctx *c, const EaselUnetTransformer *t, EaselTensor *x)
{
  EaselGraph *g = c->g;
  const EaselUnetConfig *cfg = &c->u->cfg;
  gint64 B = x->shape[0], C = x->shape[1], H = x->shape[2], Wd = x->shape[3];
  static const int to_rows[4] = { 0, 2, 3, 1 }, to_nchw[4] = { 0, 3, 1, 2 };

  EaselTensor *h = easel_op_group_norm (g, x, W (g, &t->norm_w), W (g, &t->norm_b), cfg->groups, TRANSFORMER_GN_EPS, FALSE);
  gint64 rows[3] = { B, H * Wd, C }, nhwc[4] = { B, H, Wd, C };
  h = easel_op_reshape (g, easel_op_permute (g, h, to_rows), 3, rows);      /* one copy into rows */
  h = lin (g, h, &t->proj_in_w, &t->proj_in_b);
  for (int i = 0; i < t->depth; i++)
    h = transformer_block (c, &t->blocks[i], h, t->heads);
  h = lin (g, h, &t->proj_out_w, &t->proj_out_b);
  h = easel_op_permute (g, easel_op_reshape (g, h, 4, nhwc), to_nchw);     /* a view: the add copies once */
  return easel_op_add (g, x, h);
}

/* Sinusoids of each column of ids (B, n), each dim wide -> (B, n·dim). */
static EaselTensor *
id_embedding (EaselGraph *g, EaselTensor *ids, int dim)
{
  gint64 flat[1] = { easel_tensor_numel (ids) }, out[2] = { ids->shape[0], ids->shape[1] * dim };
  EaselTensor *e = easel_op_timestep_embedding (g, easel_op_reshape (g, ids, 1, flat), dim);
  return easel_op_reshape (g, e, 2, out);
}

static EaselTensor *
mlp (EaselGraph *g, EaselTensor *x, const EaselUnetW *w1, const EaselUnetW *b1, const EaselUnetW *w2,
     const EaselUnetW *b2)
{
  EaselTensor *h = easel_op_silu (g, lin (g, x, w1, b1));
  return lin (g, h, w2, b2);
}

static void
mark (EaselGraph *g, EaselTensor *t)
{
  if (t)
    easel_graph_mark_output (g, t);
}

/* Time embedding, conv_in (+ conv_in_add), down blocks and middle block; fills c->emb, skips and
 * *n_skips. */
static EaselTensor *
encode (Ctx *c, EaselTensor *sample, EaselTensor *timestep, EaselTensor *pooled, EaselTensor *time_ids,
        EaselTensor *conv_in_add, EaselUnetIntermediates *inter, EaselTensor **skips, int *n_skips)
{
  EaselUnet *u = c->u;
  EaselGraph *g = c->g;
  const EaselUnetConfig *cfg = &u->cfg;
  const EaselUnetExtras *extras = c->extras;
  EaselTensor *context = c->context;

  *n_skips = 0;
  if (sample->n_dims != 4 || timestep->n_dims != 1 || timestep->shape[0] != sample->shape[0] || context->n_dims != 3
      || context->shape[0] != sample->shape[0])
    return easel_graph_fail (g, sample, "UNet: needs sample (B, C, H, W), timestep (B) and context (B, L, ctx)");
  if (extras && extras->n_down_block_additions > cfg->n_levels)
    return easel_graph_fail (g, sample, "UNet: %d down-block additions for %d levels", extras->n_down_block_additions,
                             cfg->n_levels);

  /* time embedding (+ SDXL's pooled text and time ids) */
  inter->time_proj = easel_op_timestep_embedding (g, timestep, (int) cfg->time_proj_dim);
  EaselTensor *temb = mlp (g, inter->time_proj, &u->time1_w, &u->time1_b, &u->time2_w, &u->time2_b);
  inter->time_embedding = temb;
  if (cfg->adm_in > 0) {
    gint64 n = time_ids ? time_ids->shape[time_ids->n_dims - 1] : 0, P = pooled ? pooled->shape[pooled->n_dims - 1] : 0;
    gint64 d = cfg->time_id_width;
    if (d == 0 && n > 0 && (cfg->adm_in - P) % n == 0)
      d = (cfg->adm_in - P) / n;
    if (pooled == NULL || time_ids == NULL || pooled->n_dims != 2 || time_ids->n_dims != 2 || d < 2 || d % 2 != 0
        || P + n * d != cfg->adm_in)
      return easel_graph_fail (g, sample, "UNet: needs pooled (B, P) and time ids (B, n) with P + n·width = %" G_GINT64_FORMAT
                               " (the label embedding's input)", cfg->adm_in);
    inter->add_time_proj = id_embedding (g, time_ids, (int) d);
    EaselTensor *add = easel_op_concat (g, pooled, inter->add_time_proj, 1);
    inter->add_embedding = mlp (g, add, &u->add1_w, &u->add1_b, &u->add2_w, &u->add2_b);
    temb = easel_op_add (g, temb, inter->add_embedding);
  }
  c->emb = easel_op_silu (g, temb);

  /* down */
  EaselTensor *h = conv (g, sample, &u->conv_in_w, &u->conv_in_b, 1, 1);
  if (conv_in_add)
    h = easel_op_add (g, h, conv_in_add);
  skips[(*n_skips)++] = h;
  for (int l = 0; l < cfg->n_levels; l++) {
    const EaselUnetLevel *lv = &u->down[l];
    /* T2I-Adapter (diffusers' down_intrablock_additional_residuals): a level with attention adds
     * its feature after its last layer, before the downsampler; one without, after the whole
     * block. Either way the last skip pushed contains it. */
    EaselTensor *add = extras && l < extras->n_down_block_additions ? extras->down_block_additions[l] : NULL;
    gboolean attends = lv->attn[0] != NULL;
    for (int r = 0; r < cfg->n_res; r++) {
      h = resnet (c, &lv->res[r], h);
      if (lv->attn[r])
        h = transformer (c, lv->attn[r], h);
      if (add && attends && r == cfg->n_res - 1)
        h = easel_op_add (g, h, add);
      skips[(*n_skips)++] = h;
    }
    if (lv->sample_w.data) {
      h = conv (g, h, &lv->sample_w, &lv->sample_b, 2, 1);
      skips[(*n_skips)++] = h;
    }
    if (add && !attends) {
      h = easel_op_add (g, h, add);
      skips[*n_skips - 1] = h;
    }
  }

  /* middle */
  h = resnet (c, &u->mid_res[0], h);
  if (u->mid_attn)
    h = transformer (c, u->mid_attn, h);
  return resnet (c, &u->mid_res[1], h);
}

static void
mark_intermediates (EaselGraph *g, const EaselUnetIntermediates *inter)
{
  mark (g, inter->time_proj);
  mark (g, inter->time_embedding);
  mark (g, inter->add_time_proj);
  mark (g, inter->add_embedding);
}

EaselTensor *
easel_unet_build_encoder (EaselUnet *u, EaselGraph *g, EaselTensor *sample, EaselTensor *timestep,
                          EaselTensor *context, EaselTensor *pooled, EaselTensor *time_ids, EaselTensor *conv_in_add,
                          const EaselUnetExtras *extras, EaselUnetIntermediates *inter, EaselTensor **skips)
{
  Ctx c = { u, g, NULL, context, extras, 0 };
  EaselUnetIntermediates local;
  int n_skips;

  g_return_val_if_fail (sample && timestep && context, NULL);
  memset (&local, 0, sizeof local);
  EaselTensor *h = encode (&c, sample, timestep, pooled, time_ids, conv_in_add, inter ? inter : &local, skips, &n_skips);
  if (inter)
    mark_intermediates (g, inter);
  return h;
}

EaselTensor *
easel_unet_build (EaselUnet *u, EaselGraph *g, EaselTensor *sample, EaselTensor *timestep, EaselTensor *context,
                  EaselTensor *pooled, EaselTensor *time_ids, const EaselUnetExtras *extras,
                  EaselUnetIntermediates *inter)
{
  const EaselUnetConfig *cfg = &u->cfg;
  Ctx c = { u, g, NULL, context, extras, 0 };
  EaselTensor *skips[1 + EASEL_UNET_MAX_LEVELS * 65];
  int n_skips = 0;
  EaselUnetIntermediates local;

  if (inter == NULL)
    inter = &local;
  memset (inter, 0, sizeof *inter);
  g_return_val_if_fail (sample && timestep && context, NULL);
  if (u->encoder_only)
    return easel_graph_fail (g, sample, "UNet: a ControlNet's encoder has no up blocks");

  EaselTensor *h = encode (&c, sample, timestep, pooled, time_ids, NULL, inter, skips, &n_skips);
  if (easel_graph_error (g))
    return h;
  if (extras && extras->n_down_residuals > 0) {
    if (extras->n_down_residuals != n_skips)
      return easel_graph_fail (g, sample, "UNet: %d down residuals for %d skip connections", extras->n_down_residuals,
                               n_skips);
    for (int i = 0; i < n_skips; i++)
      skips[i] = easel_op_add (g, skips[i], extras->down_residuals[i]);
  }
  if (extras && extras->mid_residual)
    h = easel_op_add (g, h, extras->mid_residual);

  /* up: each resnet takes the last skip concatenated on channels */
  for (int l = cfg->n_levels - 1; l >= 0; l--) {
    const EaselUnetLevel *lv = &u->up[l];
    for (int j = 0; j <= cfg->n_res; j++) {
      h = easel_op_concat (g, h, skips[--n_skips], 1);
      h = resnet (&c, &lv->res[j], h);
      if (lv->attn[j])
        h = transformer (&c, lv->attn[j], h);
    }
    if (lv->sample_w.data && n_skips > 0) {
      EaselTensor *next = skips[n_skips - 1];             /* resize to the skip it meets next */
      h = easel_op_upsample_nearest (g, h, next->shape[2], next->shape[3]);
      h = conv (g, h, &lv->sample_w, &lv->sample_b, 1, 1);
    }
  }

  h = easel_op_group_norm (g, h, W (g, &u->norm_out_w), W (g, &u->norm_out_b), cfg->groups, cfg->norm_eps, TRUE);
  h = conv (g, h, &u->conv_out_w, &u->conv_out_b, 1, 1);
  if (inter != &local)
    mark_intermediates (g, inter);
  return h;
}

gboolean
easel_unet_forward (EaselUnet *u, EaselBackend *backend, const float *sample, gint64 B, gint64 H, gint64 Wd,
                    const float *timestep, const float *context, gint64 L, const float *pooled, gint64 P,
                    const float *time_ids, gint64 n_ids, float *out, GError **error)
{
  const EaselUnetConfig *cfg = &u->cfg;
  g_autoptr(EaselGraph) g = easel_graph_new ();

  if (B < 1 || H < 1 || Wd < 1 || L < 1 || (cfg->adm_in > 0 && (pooled == NULL || time_ids == NULL || P < 1 || n_ids < 1))) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "UNet: needs B, H, W, context length >= 1%s", cfg->adm_in > 0 ? " and pooled text and time ids" : "");
    return FALSE;
  }
  gint64 s_shape[4] = { B, cfg->in_channels, H, Wd }, t_shape[1] = { B }, c_shape[3] = { B, L, cfg->context_dim };
  gint64 p_shape[2] = { B, P }, i_shape[2] = { B, n_ids };
  EaselTensor *x = easel_graph_input (g, "sample", EASEL_DTYPE_F32, 4, s_shape, sample);
  EaselTensor *t = easel_graph_input (g, "timestep", EASEL_DTYPE_F32, 1, t_shape, timestep);
  EaselTensor *ctx = easel_graph_input (g, "context", EASEL_DTYPE_F32, 3, c_shape, context);
  EaselTensor *pool = NULL, *ids = NULL;
  if (cfg->adm_in > 0) {
    pool = easel_graph_input (g, "pooled", EASEL_DTYPE_F32, 2, p_shape, pooled);
    ids = easel_graph_input (g, "time_ids", EASEL_DTYPE_F32, 2, i_shape, time_ids);
  }
  EaselTensor *y = easel_unet_build (u, g, x, t, ctx, pool, ids, NULL, NULL);
  easel_graph_mark_output (g, y);
  if (easel_graph_error (g)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "UNet: %s", easel_graph_error (g)->message);
    return FALSE;
  }
  return easel_backend_compute (backend, g, error) && easel_backend_read (backend, y, out, error);
}

GPtrArray *
easel_unet_unused (const EaselUnet *u)
{
  return easel_weights_unused (u->weights);
}
