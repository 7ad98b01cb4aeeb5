/* engine/ip_adapter.c: IP-Adapter loading, image projections and the UNet cross-attention hook
 * (ip_adapter.h), following diffusers' ImageProjection, IPAdapterPlusImageProjection and
 * IPAdapterAttnProcessor. */
#include "ip_adapter.h"

#include <math.h>
#include <string.h>

#include "error.h"
#include "unet-private.h"
#include "weights.h"

#define IP_MAX_PROCESSORS 4096
#define RESAMPLER_HEAD_WIDTH 64

typedef struct {
  const EaselStTensor *n1_w, *n1_b, *n2_w, *n2_b, *q_w, *kv_w, *out_w;
  const EaselStTensor *ln_w, *ln_b, *fc1_w, *fc2_w;
} ResLayer;

struct _EaselIpAdapter {
  EaselWeights *weights;
  const char *path;
  gboolean plus;
  /* plain */
  const EaselStTensor *proj_w, *proj_b, *norm_w, *norm_b;
  /* Plus */
  const EaselStTensor *latents, *in_w, *in_b, *out_w, *out_b, *norm_out_w, *norm_out_b;
  ResLayer *layers;
  int n_layers, heads;
  /* ip_adapter.N, by N (NULL where absent) */
  const EaselStTensor **k_ip, **v_ip;
  int n_proc;
};

static const EaselStTensor *
req (EaselIpAdapter *a, const char *name, int n_dims, gint64 d0, gint64 d1, gint64 d2, GError **error)
{
  const gint64 shape[3] = { d0, d1, d2 };
  const EaselStTensor *st = easel_weights_require (a->weights, name, n_dims, shape, error);
  if (st == NULL) {
    g_prefix_error (error, "%s: IP-Adapter: ", a->path);
    return NULL;
  }
  if (st->dtype != EASEL_DTYPE_F32 && st->dtype != EASEL_DTYPE_F16 && st->dtype != EASEL_DTYPE_BF16) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "%s: IP-Adapter tensor '%s' is no float weight", a->path,
                 st->name);
    return NULL;
  }
  return st;
}

#define REQ(field, name, ...) ((a->field = req (a, (name), __VA_ARGS__, error)) != NULL)

static gboolean
bind_resampler (EaselIpAdapter *a, int heads, GError **error)
{
  if (!REQ (latents, "image_proj.latents", 3, 1, -1, -1))
    return FALSE;
  gint64 W = a->latents->shape[2];
  if (!REQ (in_w, "image_proj.proj_in.weight", 2, W, -1, 0) || !REQ (in_b, "image_proj.proj_in.bias", 1, W, 0, 0)
      || !REQ (out_w, "image_proj.proj_out.weight", 2, -1, W, 0)
      || !REQ (out_b, "image_proj.proj_out.bias", 1, a->out_w->shape[0], 0, 0)
      || !REQ (norm_out_w, "image_proj.norm_out.weight", 1, a->out_w->shape[0], 0, 0)
      || !REQ (norm_out_b, "image_proj.norm_out.bias", 1, a->out_w->shape[0], 0, 0))
    return FALSE;
  while (a->n_layers < 256) {
    g_autofree char *n = g_strdup_printf ("image_proj.layers.%d.0.to_q.weight", a->n_layers);
    if (!easel_weights_has (a->weights, n))
      break;
    a->n_layers++;
  }
  a->layers = g_new0 (ResLayer, a->n_layers);
  for (int i = 0; i < a->n_layers; i++) {
    ResLayer *l = &a->layers[i];
    const struct {
      const EaselStTensor **dst;
      const char *what;
      int nd;
      gint64 d0, d1;
    } parts[] = {
      { &l->n1_w, "0.norm1.weight", 1, W, 0 }, { &l->n1_b, "0.norm1.bias", 1, W, 0 },
      { &l->n2_w, "0.norm2.weight", 1, W, 0 }, { &l->n2_b, "0.norm2.bias", 1, W, 0 },
      { &l->q_w, "0.to_q.weight", 2, -1, W },  { &l->kv_w, "0.to_kv.weight", 2, -1, W },
      { &l->out_w, "0.to_out.weight", 2, W, -1 }, { &l->ln_w, "1.0.weight", 1, W, 0 },
      { &l->ln_b, "1.0.bias", 1, W, 0 },        { &l->fc1_w, "1.1.weight", 2, -1, W },
      { &l->fc2_w, "1.3.weight", 2, W, -1 },
    };
    for (guint k = 0; k < G_N_ELEMENTS (parts); k++) {
      g_autofree char *n = g_strdup_printf ("image_proj.layers.%d.%s", i, parts[k].what);
      if ((*parts[k].dst = req (a, n, parts[k].nd, parts[k].d0, parts[k].d1, 0, error)) == NULL)
        return FALSE;
    }
    gint64 inner = l->q_w->shape[0];
    if (l->kv_w->shape[0] != 2 * inner || l->out_w->shape[1] != inner || l->fc2_w->shape[1] != l->fc1_w->shape[0]) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: IP-Adapter: Resampler layer %d widths disagree",
                   a->path, i);
      return FALSE;
    }
    a->heads = heads > 0 ? heads : (int) MAX (inner / RESAMPLER_HEAD_WIDTH, 1);
    if (inner % a->heads != 0) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: IP-Adapter: %d heads do not divide %" G_GINT64_FORMAT,
                   a->path, a->heads, inner);
      return FALSE;
    }
  }
  return TRUE;
}

EaselIpAdapter *
easel_ip_adapter_new (const EaselCheckpoint *ck, int heads, GError **error)
{
  g_autoptr(EaselIpAdapter) a = g_new0 (EaselIpAdapter, 1);
  g_autofree char *prefix = easel_checkpoint_find_prefix (ck, "image_proj.norm_out.weight");

  a->path = easel_checkpoint_path (ck);
  if (prefix == NULL)
    prefix = easel_checkpoint_find_prefix (ck, "image_proj.norm.weight");
  if (prefix == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no IP-Adapter image projection (image_proj.*)", a->path);
    return NULL;
  }
  if ((a->weights = easel_weights_new (ck, prefix, NULL, NULL, error)) == NULL)
    return NULL;
  a->plus = easel_weights_has (a->weights, "image_proj.latents");
  if (a->plus) {
    if (!bind_resampler (a, heads, error))
      return NULL;
  } else if (!REQ (norm_w, "image_proj.norm.weight", 1, -1, 0, 0)
             || !REQ (norm_b, "image_proj.norm.bias", 1, a->norm_w->shape[0], 0, 0)
             || !REQ (proj_w, "image_proj.proj.weight", 2, -1, -1, 0)
             || !REQ (proj_b, "image_proj.proj.bias", 1, a->proj_w->shape[0], 0, 0)) {
    return NULL;
  } else if (a->proj_w->shape[0] % a->norm_w->shape[0] != 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: IP-Adapter: image_proj.proj rows are no multiple of %"
                 G_GINT64_FORMAT, a->path, a->norm_w->shape[0]);
    return NULL;
  }
  gint64 D = a->plus ? a->out_w->shape[0] : a->norm_w->shape[0];

  while (a->n_proc < IP_MAX_PROCESSORS) {
    g_autofree char *n = g_strdup_printf ("ip_adapter.%d.to_k_ip.weight", a->n_proc + 1);
    g_autofree char *n2 = g_strdup_printf ("ip_adapter.%d.to_k_ip.weight", a->n_proc + 2);
    if (!easel_weights_has (a->weights, n) && !easel_weights_has (a->weights, n2))
      break;
    a->n_proc += 2;
  }
  a->k_ip = g_new0 (const EaselStTensor *, a->n_proc + 1);
  a->v_ip = g_new0 (const EaselStTensor *, a->n_proc + 1);
  for (int n = 0; n <= a->n_proc; n++) {
    g_autofree char *kn = g_strdup_printf ("ip_adapter.%d.to_k_ip.weight", n);
    g_autofree char *vn = g_strdup_printf ("ip_adapter.%d.to_v_ip.weight", n);
    if (!easel_weights_has (a->weights, kn))
      continue;
    if ((a->k_ip[n] = req (a, kn, 2, -1, D, 0, error)) == NULL
        || (a->v_ip[n] = req (a, vn, 2, a->k_ip[n]->shape[0], D, 0, error)) == NULL)
      return NULL;
  }
  return g_steal_pointer (&a);
}

void
easel_ip_adapter_free (EaselIpAdapter *a)
{
  if (a == NULL)
    return;
  easel_weights_free (a->weights);
  g_free (a->layers);
  g_free (a->k_ip);
  g_free (a->v_ip);
  g_free (a);
}

gboolean
easel_ip_adapter_is_plus (const EaselIpAdapter *a)
{
  return a->plus;
}

#define WT(st) easel_graph_weight_st (g, (st))

static EaselTensor *
resampler (EaselIpAdapter *a, EaselGraph *g, EaselTensor *x)
{
  gint64 B = x->shape[0], T = a->latents->shape[1], W = a->latents->shape[2];
  x = easel_op_linear (g, x, WT (a->in_w), WT (a->in_b));
  const gint64 lat_shape[3] = { 1, T, W };
  EaselTensor *one = easel_op_reshape (g, WT (a->latents), 3, lat_shape), *lat = one;
  for (gint64 b = 1; b < B; b++)       /* the same latents for every batch row: (B, T, W) */
    lat = easel_op_concat (g, lat, one, 0);
  for (int i = 0; i < a->n_layers; i++) {
    const ResLayer *l = &a->layers[i];
    gint64 inner = l->q_w->shape[0];
    EaselTensor *nx = easel_op_layer_norm (g, x, WT (l->n1_w), WT (l->n1_b), 1e-5f);
    EaselTensor *nl = easel_op_layer_norm (g, lat, WT (l->n2_w), WT (l->n2_b), 1e-5f);
    EaselTensor *q = easel_op_linear (g, nl, WT (l->q_w), NULL);
    EaselTensor *kv = easel_op_linear (g, easel_op_concat (g, nx, nl, 1), WT (l->kv_w), NULL);
    EaselTensor *att = easel_op_attention (g, q, easel_op_slice (g, kv, 2, 0, inner), easel_op_slice (g, kv, 2, inner, inner),
                                           a->heads, 1.0f / sqrtf ((float) (inner / a->heads)), FALSE);
    lat = easel_op_add (g, lat, easel_op_linear (g, att, WT (l->out_w), NULL));
    EaselTensor *h = easel_op_layer_norm (g, lat, WT (l->ln_w), WT (l->ln_b), 1e-5f);
    h = easel_op_unary (g, EASEL_UNARY_GELU, easel_op_linear (g, h, WT (l->fc1_w), NULL));
    lat = easel_op_add (g, lat, easel_op_linear (g, h, WT (l->fc2_w), NULL));
  }
  lat = easel_op_linear (g, lat, WT (a->out_w), WT (a->out_b));
  return easel_op_layer_norm (g, lat, WT (a->norm_out_w), WT (a->norm_out_b), 1e-5f);
}

EaselTensor *
easel_ip_adapter_project (EaselIpAdapter *a, EaselGraph *g, EaselTensor *embeds)
{
  if (a->plus) {
    if (embeds->n_dims != 3 || embeds->shape[2] != a->in_w->shape[1])
      return easel_graph_fail (g, embeds, "IP-Adapter Plus: needs hidden states (B, L, %" G_GINT64_FORMAT ")",
                               a->in_w->shape[1]);
    return resampler (a, g, embeds);
  }
  if (embeds->n_dims != 2 || embeds->shape[1] != a->proj_w->shape[1])
    return easel_graph_fail (g, embeds, "IP-Adapter: needs image embeds (B, %" G_GINT64_FORMAT ")", a->proj_w->shape[1]);
  gint64 D = a->norm_w->shape[0], shape[3] = { embeds->shape[0], a->proj_w->shape[0] / D, D };
  EaselTensor *x = easel_op_linear (g, embeds, WT (a->proj_w), WT (a->proj_b));
  return easel_op_layer_norm (g, easel_op_reshape (g, x, 3, shape), WT (a->norm_w), WT (a->norm_b), 1e-5f);
}

/* --- the UNet hook ----------------------------------------------------------------------------- */

static int
count_blocks (EaselUnetTransformer *const *attn, int n)
{
  int c = 0;
  for (int i = 0; i < n; i++)
    c += attn[i] ? attn[i]->depth : 0;
  return c;
}

static EaselTensor *
hook (gpointer user_data, EaselGraph *g, int index, EaselTensor *q, int heads)
{
  EaselIpAdapterHook *h = user_data;
  EaselIpAdapter *a = h->adapter;
  /* execution order: down, mid, up; diffusers' numbering: down, up, mid */
  int i = index < h->n_down ? index : index < h->n_down + h->n_mid ? h->n_blocks - h->n_mid + (index - h->n_down)
                                                                     : index - h->n_mid;
  int n = 2 * i + 1;
  if (n > a->n_proc || a->k_ip[n] == NULL)
    return easel_graph_fail (g, q, "IP-Adapter: no ip_adapter.%d for cross-attention %d", n, index);
  EaselTensor *k = easel_op_linear (g, h->tokens, WT (a->k_ip[n]), NULL);
  EaselTensor *v = easel_op_linear (g, h->tokens, WT (a->v_ip[n]), NULL);
  EaselTensor *att = easel_op_attention (g, q, k, v, heads, 1.0f / sqrtf ((float) (q->shape[2] / heads)), FALSE);
  return easel_op_scale (g, att, h->scale);
}

gboolean
easel_ip_adapter_attach (EaselIpAdapter *a, const EaselUnet *unet, EaselTensor *tokens, float scale,
                         EaselIpAdapterHook *state, EaselUnetExtras *extras, GError **error)
{
  const EaselUnetConfig *cfg = &unet->cfg;
  memset (state, 0, sizeof *state);
  state->adapter = a;
  state->tokens = tokens;
  state->scale = scale;
  for (int l = 0; l < cfg->n_levels; l++)
    state->n_down += count_blocks (unet->down[l].attn, cfg->n_res);
  state->n_mid = unet->mid_attn ? unet->mid_attn->depth : 0;
  int n_up = 0;
  for (int l = 0; l < cfg->n_levels && !unet->encoder_only; l++)
    n_up += count_blocks (unet->up[l].attn, cfg->n_res + 1);
  state->n_blocks = state->n_down + state->n_mid + n_up;
  for (int i = 0; i < state->n_blocks; i++) {
    int n = 2 * i + 1;
    if (n > a->n_proc || a->k_ip[n] == NULL) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_MISMATCH, "%s: IP-Adapter: no ip_adapter.%d for the UNet's %d "
                   "cross-attentions (an adapter for another model?)", a->path, n, state->n_blocks);
      return FALSE;
    }
  }
  extras->cross_attention_extra = hook;
  extras->user_data = state;
  return TRUE;
}
