/* engine/vulkan/ops.c: one dispatch function per graph op (graph.h), each filling the push block of
 * its shader (push.h) from the node's shapes and recording one dispatch. Shapes were checked when
 * the graph was built; what a shader cannot do (a head wider than 512, a strided weight, more than
 * 2^32 elements) is an EASEL_ERROR_UNSUPPORTED naming the node. */
#include <string.h>

#include "engine/error.h"
#include "engine/vulkan/push.h"
#include "engine/vulkan/vk.h"

/* the widest attention heads the two shader variants keep in registers (ACC · TPR in attention.comp) */
#define ATTENTION_MAX_HEAD 256
#define ATTENTION_WIDE_MAX_HEAD 512
#define ATTENTION_COOP_MAX_HEAD 64    /* DMAX in attention_coop.comp, twice that in _wide; half in khr8 */

typedef struct {
  EaselVkArg a[EASEL_VK_MAX_BINDINGS];
  guint32 off[EASEL_VK_MAX_BINDINGS];
  guint n;
} Args;

static const char *
node_name (const EaselTensor *t)
{
  return t->name ? t->name : "(unnamed)";
}

static gboolean
unsupported (GError **error, const EaselTensor *t, const char *what)
{
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "vulkan: node %u '%s': %s", t->index, node_name (t), what);
  return FALSE;
}

/* Appends tensor t (or the dummy buffer when t is NULL) as the next binding. Source s of node
 * `node` gives the weight format; s < 0 for the output. */
static gboolean
add (EaselVkBackend *vb, Args *A, const EaselTensor *node, int s, GError **error)
{
  const EaselTensor *t = s < 0 ? node : node->src[s];
  guint i = A->n++;
  if (t == NULL) {
    A->a[i] = (EaselVkArg) { &vb->dummy, 0, vb->dummy.size, FALSE };
    A->off[i] = 0;
    return TRUE;
  }
  EaselVkWeightFormat fmt = s < 0 ? EASEL_VK_WEIGHT_F32 : easel_vk_weight_format (vb, node, s);
  return easel_vk_tensor_arg (vb, t, fmt, s < 0, &A->a[i], &A->off[i], error);
}

static gboolean
add_all (EaselVkBackend *vb, Args *A, EaselTensor *t, int n_src, GError **error)
{
  A->n = 0;
  for (int s = 0; s < n_src; s++)
    if (!add (vb, A, t, s, error))
      return FALSE;
  return add (vb, A, t, -1, error);
}

static gboolean
dispatch (EaselVkBackend *vb, EaselVkPipelineId id, const Args *A, const void *push, gsize push_size,
          guint64 nx, guint64 ny, guint64 nz, GError **error)
{
  return easel_vk_dispatch (vb->dev, &vb->pl, &vb->cmd, id, A->a, A->n, push, push_size, nx, ny, nz, error);
}

static gboolean
is_matrix_f16 (EaselVkBackend *vb, EaselTensor *t, int s)
{
  return easel_vk_weight_format (vb, t, s) == EASEL_VK_WEIGHT_F16;
}

/* Bytes per element of source s of node t as bound: weights are uploaded as fp32 unless the op
 * takes them as fp16 (easel_vk_weight_format), activations keep their dtype. */
static gsize
bound_elem_size (EaselVkBackend *vb, const EaselTensor *t, int s)
{
  const EaselTensor *x = t->src[s];
  if (x->base->flags & EASEL_TENSOR_WEIGHT)
    return easel_vk_weight_format (vb, t, s) == EASEL_VK_WEIGHT_F16 ? 2 : 4;
  return easel_dtype_size (x->dtype);
}

/* The cooperative-matrix variant `coop` when the device runs one and no fp16 overflow forced the
 * exact path, with the overflow counter bound as binding 4; else `plain`. */
static EaselVkPipelineId
coop_variant (EaselVkBackend *vb, Args *A, EaselVkPipelineId coop, EaselVkPipelineId plain)
{
  if (vb->exact || !easel_vk_pipeline_usable (vb->dev, &vb->pl, coop))
    return plain;
  /* atomic adds only: no ordering between dispatches needed, so not a tracked write */
  A->a[A->n] = (EaselVkArg) { &vb->overflow, 0, vb->overflow.size, FALSE };
  A->off[A->n++] = 0;
  return coop;
}

/* Split-K: a cooperative product with fewer than SPLITK_GROUPS tiles leaves most of a large GPU
 * idle while its few workgroups walk a long K (SD's 3x3 convolutions at 8² and 16²: K = 11520, 40
 * tiles). It then runs as `split` workgroups per tile, each over kc of K, writing raw sums to
 * vb->splitk, and a second dispatch adds them and stores (matmul_coop.glsl). */
#define SPLITK_GROUPS 128
#define SPLITK_MAX 16
#define SPLITK_MIN_STEPS 4        /* K steps of 32 each chunk keeps at least */
#define SPLITK_MAX_BYTES ((gsize) 64 << 20)

static guint32
splitk_plan (EaselVkBackend *vb, EaselVkPipelineId id, guint64 M, guint64 N, guint64 K, guint32 *kc)
{
  const EaselVkPipeline *pp = &vb->pl.p[id];
  guint64 groups = ((M + pp->wg[1] - 1) / pp->wg[1]) * ((N + pp->wg[0] - 1) / pp->wg[0]);
  *kc = (guint32) K;
  if (vb->splitk_off || groups == 0 || groups >= SPLITK_GROUPS)
    return 1;
  guint64 s = MIN ((2 * SPLITK_GROUPS + groups - 1) / groups, K / (SPLITK_MIN_STEPS * 32));
  s = MIN (s, SPLITK_MAX);
  while (s > 1 && s * M * N * sizeof (float) > SPLITK_MAX_BYTES)
    s--;
  if (s < 2)
    return 1;
  guint64 c = ((K + s - 1) / s + 31) / 32 * 32;
  *kc = (guint32) c;
  return (guint32) ((K + c - 1) / c);
}

/* The cooperative variant for a matrix op with fp16 weights (bindings 4, 5: the overflow counter and
 * the split-K partials, or the dummy buffer), else `plain`. */
static EaselVkPipelineId
matmul_variant (EaselVkBackend *vb, EaselTensor *t, Args *A, EaselVkPipelineId coop, EaselVkPipelineId plain)
{
  if (!is_matrix_f16 (vb, t, 1) || coop_variant (vb, A, coop, plain) != coop)
    return plain;
  A->a[A->n] = (EaselVkArg) { &vb->dummy, 0, vb->dummy.size, FALSE };
  A->off[A->n++] = 0;
  return coop;
}

/* M, N, K of a linear or conv2d node */
static void
matmul_dims (const EaselTensor *t, guint64 *M, guint64 *N, guint64 *K)
{
  const EaselTensor *x = t->src[0], *w = t->src[1];
  if (t->op == EASEL_OP_LINEAR) {
    *K = (guint64) x->shape[x->n_dims - 1];
    *N = (guint64) w->shape[0];
    *M = (guint64) easel_tensor_numel (x) / MAX (*K, 1);
  } else {
    *M = (guint64) (t->shape[0] * t->shape[2] * t->shape[3]);
    *N = (guint64) w->shape[0];
    *K = (guint64) (w->shape[1] * w->shape[2] * w->shape[3]);
  }
}

gsize
easel_vk_splitk_bytes (EaselVkBackend *vb, EaselTensor *t)
{
  guint64 M, N, K;
  guint32 kc;
  EaselVkPipelineId id = t->op == EASEL_OP_LINEAR ? EASEL_VK_LINEAR_COOP : EASEL_VK_CONV2D_COOP;
  if ((t->op != EASEL_OP_LINEAR && t->op != EASEL_OP_CONV2D) || vb->exact || !is_matrix_f16 (vb, t, 1)
      || !easel_vk_pipeline_usable (vb->dev, &vb->pl, id))
    return 0;
  matmul_dims (t, &M, &N, &K);
  guint32 split = splitk_plan (vb, id, M, N, K, &kc);
  return split > 1 ? (gsize) split * M * N * sizeof (float) : 0;
}

/* Dispatches a cooperative product (push p with fields kc, split, reduce at the given offsets):
 * one dispatch, or with split-K the split one and its reduction. */
static gboolean
dispatch_matmul (EaselVkBackend *vb, EaselTensor *t, EaselVkPipelineId id, Args *A, void *push, gsize push_size,
                 guint32 *kc, guint32 *split, guint32 *reduce, GError **error)
{
  guint64 M, N, K;
  matmul_dims (t, &M, &N, &K);
  *split = splitk_plan (vb, id, M, N, K, kc);
  *reduce = 0;
  if (*split <= 1 || vb->splitk.buffer == NULL || vb->splitk.size < (gsize) *split * M * N * sizeof (float)) {
    *split = 1;
    *kc = (guint32) K;
    return dispatch (vb, id, A, push, push_size, N, M, 1, error);
  }
  VkDeviceSize bytes = ((VkDeviceSize) *split * M * N * sizeof (float) + 3) / 4 * 4;
  A->a[5] = (EaselVkArg) { &vb->splitk, 0, bytes, TRUE };
  if (!dispatch (vb, id, A, push, push_size, N, M, *split, error))
    return FALSE;
  A->a[5].write = FALSE;
  *reduce = 1;
  return dispatch (vb, id, A, push, push_size, N, M, 1, error);
}


static gboolean
op_copy (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselTensor *x = t->src[0];
  EaselVkCopyPush p = { .n = (guint32) easel_tensor_numel (t), .nd = (guint32) x->n_dims };
  Args A;
  if (bound_elem_size (vb, t, 0) != 4)
    return unsupported (error, t, "copies of 4-byte elements only");
  for (int d = 0; d < x->n_dims; d++) {
    p.shape[d] = (guint32) x->shape[d];
    p.stride[d] = (guint32) x->stride[d];
  }
  if (!add_all (vb, &A, t, 1, error))
    return FALSE;
  p.x_off = A.off[0];
  p.y_off = A.off[1];
  return dispatch (vb, EASEL_VK_COPY, &A, &p, sizeof p, p.n, 1, 1, error);
}

static gboolean
op_linear (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselTensor *x = t->src[0], *w = t->src[1];
  gint64 K = x->shape[x->n_dims - 1], N = w->shape[0];
  EaselVkLinearPush p = {
    .M = (guint32) (easel_tensor_numel (x) / MAX (K, 1)), .N = (guint32) N, .K = (guint32) K,
    .ldw = (guint32) w->stride[0], .has_bias = t->src[2] != NULL,
  };
  Args A;
  if (w->stride[1] != 1)
    return unsupported (error, t, "linear weight with strided rows");
  if (!add_all (vb, &A, t, 3, error))
    return FALSE;
  p.x_off = A.off[0];
  p.w_off = A.off[1];
  p.b_off = A.off[2];
  p.y_off = A.off[3];
  EaselVkPipelineId id = matmul_variant (vb, t, &A, EASEL_VK_LINEAR_COOP,
                                         is_matrix_f16 (vb, t, 1) ? EASEL_VK_LINEAR_F16 : EASEL_VK_LINEAR_F32);
  p.vec = p.K % 8 == 0 && p.ldw % 8 == 0 && p.x_off % 8 == 0 && p.w_off % 8 == 0;
  if (id == EASEL_VK_LINEAR_COOP)
    return dispatch_matmul (vb, t, id, &A, &p, sizeof p, &p.kc, &p.split, &p.reduce, error);
  return dispatch (vb, id, &A, &p, sizeof p, p.N, p.M, 1, error);
}

static gboolean
op_conv2d (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselTensor *x = t->src[0], *w = t->src[1];
  EaselVkConv2dPush p = {
    .M = (guint32) (t->shape[0] * t->shape[2] * t->shape[3]), .N = (guint32) w->shape[0],
    .K = (guint32) (w->shape[1] * w->shape[2] * w->shape[3]), .c_in = (guint32) x->shape[1],
    .h = (guint32) x->shape[2], .w = (guint32) x->shape[3], .kh = (guint32) w->shape[2], .kw = (guint32) w->shape[3],
    .stride = (guint32) t->ip[0], .pad_h = (guint32) t->ip[1], .pad_w = (guint32) t->ip[1],
    .out_h = (guint32) t->shape[2], .out_w = (guint32) t->shape[3], .has_bias = t->src[2] != NULL,
  };
  Args A;
  if (!easel_tensor_is_contiguous (w))
    return unsupported (error, t, "conv2d weight that is not dense");
  if (!add_all (vb, &A, t, 3, error))
    return FALSE;
  p.x_off = A.off[0];
  p.w_off = A.off[1];
  p.b_off = A.off[2];
  p.y_off = A.off[3];
  EaselVkPipelineId id = matmul_variant (vb, t, &A, EASEL_VK_CONV2D_COOP,
                                         is_matrix_f16 (vb, t, 1) ? EASEL_VK_CONV2D_F16 : EASEL_VK_CONV2D_F32);
  p.vec = p.K % 8 == 0 && p.w_off % 8 == 0;
  if (id == EASEL_VK_CONV2D_COOP)
    return dispatch_matmul (vb, t, id, &A, &p, sizeof p, &p.kc, &p.split, &p.reduce, error);
  return dispatch (vb, id, &A, &p, sizeof p, p.N, p.M, 1, error);
}

static gboolean
op_group_norm (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselTensor *x = t->src[0];
  gint64 N = x->shape[0], C = x->shape[1];
  EaselVkGroupNormPush p = {
    .C = (guint32) C, .HW = (guint32) (easel_tensor_numel (x) / MAX (N * C, 1)), .G = (guint32) t->ip[0],
    .n_groups = (guint32) (N * t->ip[0]), .has_gamma = t->src[1] != NULL, .has_beta = t->src[2] != NULL,
    .silu = t->ip[1] != 0, .eps = t->fp[0],
  };
  Args A;
  if (!add_all (vb, &A, t, 3, error))
    return FALSE;
  p.x_off = A.off[0];
  p.g_off = A.off[1];
  p.b_off = A.off[2];
  p.y_off = A.off[3];
  return dispatch (vb, EASEL_VK_GROUP_NORM, &A, &p, sizeof p, p.n_groups, 1, 1, error);
}

/* EASEL_OP_GROUP_STATS: the group_norm shader's statistics half, y (N, G, 2) = [mean, M2] */
static gboolean
op_group_stats (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselTensor *x = t->src[0];
  gint64 N = x->shape[0], C = x->shape[1];
  EaselVkGroupNormPush p = {
    .C = (guint32) C, .HW = (guint32) (easel_tensor_numel (x) / MAX (N * C, 1)), .G = (guint32) t->ip[0],
    .n_groups = (guint32) (N * t->ip[0]),
  };
  Args A;
  if (!add_all (vb, &A, t, 1, error))
    return FALSE;
  p.x_off = A.off[0];
  p.y_off = A.off[1];
  return dispatch (vb, EASEL_VK_GROUP_STATS, &A, &p, sizeof p, p.n_groups, 1, 1, error);
}

static gboolean
op_group_norm_apply (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselTensor *x = t->src[0];
  gint64 N = x->shape[0], C = x->shape[1];
  EaselVkGroupNormApplyPush p = {
    .n = (guint32) easel_tensor_numel (x), .C = (guint32) C, .HW = (guint32) (easel_tensor_numel (x) / MAX (N * C, 1)),
    .G = (guint32) t->ip[0], .has_gamma = t->src[1] != NULL, .has_beta = t->src[2] != NULL, .silu = t->ip[1] != 0,
  };
  Args A;
  if (!add_all (vb, &A, t, 4, error))
    return FALSE;
  p.x_off = A.off[0];
  p.g_off = A.off[1];
  p.b_off = A.off[2];
  p.s_off = A.off[3];
  p.y_off = A.off[4];
  return dispatch (vb, EASEL_VK_GROUP_NORM_APPLY, &A, &p, sizeof p, p.n, 1, 1, error);
}

static gboolean
op_layer_norm (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselTensor *x = t->src[0];
  gint64 D = x->shape[x->n_dims - 1];
  EaselVkLayerNormPush p = {
    .M = (guint32) (easel_tensor_numel (x) / MAX (D, 1)), .D = (guint32) D, .has_gamma = t->src[1] != NULL,
    .has_beta = t->src[2] != NULL, .eps = t->fp[0],
  };
  Args A;
  if (!add_all (vb, &A, t, 3, error))
    return FALSE;
  p.x_off = A.off[0];
  p.g_off = A.off[1];
  p.b_off = A.off[2];
  p.y_off = A.off[3];
  return dispatch (vb, EASEL_VK_LAYER_NORM, &A, &p, sizeof p, p.M, 1, 1, error);
}

static gboolean
op_unary (EaselVkBackend *vb, EaselTensor *t, EaselVkPipelineId id, float s, GError **error)
{
  EaselVkUnaryPush p = { .n = (guint32) easel_tensor_numel (t), .s = s };
  Args A;
  if (!add_all (vb, &A, t, 1, error))
    return FALSE;
  p.x_off = A.off[0];
  p.y_off = A.off[1];
  return dispatch (vb, id, &A, &p, sizeof p, p.n, 1, 1, error);
}

/* y = a op b, b broadcast: b's stride per axis of a (0 where b has 1 or no axis), then adjacent axes
 * that index b the same way merged, size-1 axes dropped. */
static gboolean
op_binary (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselTensor *a = t->src[0], *b = t->src[1];
  EaselVkBinaryPush p = { .n = (guint32) easel_tensor_numel (t) };
  gint64 shape[EASEL_MAX_DIMS], bstride[EASEL_MAX_DIMS], run = 1;
  int nd = a->n_dims, off = a->n_dims - b->n_dims, m = 0;
  Args A;

  for (int d = nd - 1; d >= 0; d--) {            /* b dense: its strides from its shape */
    gint64 bd = d < off ? 1 : b->shape[d - off];
    bstride[d] = bd == 1 ? 0 : run;
    run *= bd;
    shape[d] = a->shape[d];
  }
  gint64 ms[EASEL_MAX_DIMS], mb[EASEL_MAX_DIMS];  /* merged, innermost first */
  for (int d = nd - 1; d >= 0; d--) {
    if (shape[d] == 1)
      continue;
    if (m > 0 && bstride[d] == mb[m - 1] * ms[m - 1])
      ms[m - 1] *= shape[d];
    else {
      ms[m] = shape[d];
      mb[m] = bstride[d];
      m++;
    }
  }
  p.nd = (guint32) m;
  for (int i = 0; i < m; i++) {
    p.shape[m - 1 - i] = (guint32) ms[i];
    p.bstride[m - 1 - i] = (guint32) mb[i];
  }
  if (!add_all (vb, &A, t, 2, error))
    return FALSE;
  p.a_off = A.off[0];
  p.b_off = A.off[1];
  p.y_off = A.off[2];
  return dispatch (vb, t->ip[0] == EASEL_BINARY_ADD ? EASEL_VK_BINARY_ADD : EASEL_VK_BINARY_MUL, &A, &p, sizeof p,
                   p.n, 1, 1, error);
}

static gboolean
op_geglu (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselVkGegluPush p = { .n = (guint32) easel_tensor_numel (t), .f = (guint32) t->shape[t->n_dims - 1] };
  Args A;
  if (!add_all (vb, &A, t, 1, error))
    return FALSE;
  p.x_off = A.off[0];
  p.y_off = A.off[1];
  return dispatch (vb, EASEL_VK_GEGLU, &A, &p, sizeof p, p.n, 1, 1, error);
}

static gboolean
op_attention (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselTensor *q = t->src[0], *k = t->src[1], *v = t->src[2];
  gint64 heads = t->ip[0];
  EaselVkAttentionPush p = {
    .lq = (guint32) q->shape[1], .lk = (guint32) k->shape[1], .d = (guint32) (q->shape[2] / heads),
    .dv = (guint32) (v->shape[2] / heads), .ld_q = (guint32) q->stride[1], .ld_k = (guint32) k->stride[1],
    .ld_v = (guint32) v->stride[1], .ld_o = (guint32) t->shape[2], .causal = t->ip[1] != 0, .scale = t->fp[0],
  };
  Args A;
  if (p.dv > ATTENTION_WIDE_MAX_HEAD)
    return unsupported (error, t, "attention heads wider than 512");
  if (p.causal && p.lk < p.lq)
    return unsupported (error, t, "causal attention with fewer keys than queries");
  if (!add_all (vb, &A, t, 3, error))
    return FALSE;
  p.q_off = A.off[0];
  p.k_off = A.off[1];
  p.v_off = A.off[2];
  p.o_off = A.off[3];
  EaselVkPipelineId id = p.dv > ATTENTION_MAX_HEAD ? EASEL_VK_ATTENTION_WIDE : EASEL_VK_ATTENTION;
  guint32 coop_max = g_strcmp0 (vb->dev->coopmat, "khr8") == 0 ? ATTENTION_COOP_MAX_HEAD / 2 : ATTENTION_COOP_MAX_HEAD;
  guint32 head = MAX (p.d, p.dv);
  if (!p.causal && head <= coop_max)
    id = coop_variant (vb, &A, EASEL_VK_ATTENTION_COOP, id);
  else if (!p.causal && head <= 2 * coop_max)
    id = coop_variant (vb, &A, EASEL_VK_ATTENTION_COOP_WIDE, id);
  return dispatch (vb, id, &A, &p, sizeof p, p.lq, (guint64) heads, (guint64) q->shape[0], error);
}

static gboolean
op_upsample (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselTensor *x = t->src[0];
  EaselVkUpsamplePush p = {
    .n = (guint32) easel_tensor_numel (t), .h = (guint32) x->shape[2], .w = (guint32) x->shape[3],
    .oh = (guint32) t->shape[2], .ow = (guint32) t->shape[3],
    .sh = (float) x->shape[2] / (float) t->shape[2], .sw = (float) x->shape[3] / (float) t->shape[3],
  };
  Args A;
  if (!add_all (vb, &A, t, 1, error))
    return FALSE;
  p.x_off = A.off[0];
  p.y_off = A.off[1];
  return dispatch (vb, EASEL_VK_UPSAMPLE_NEAREST, &A, &p, sizeof p, p.n, 1, 1, error);
}

static gboolean
op_avg_pool2d (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselTensor *x = t->src[0];
  EaselVkAvgPoolPush p = {
    .n = (guint32) easel_tensor_numel (t), .h = (guint32) x->shape[2], .w = (guint32) x->shape[3],
    .oh = (guint32) t->shape[2], .ow = (guint32) t->shape[3], .k = (guint32) t->ip[0],
  };
  Args A;
  if (!add_all (vb, &A, t, 1, error))
    return FALSE;
  p.x_off = A.off[0];
  p.y_off = A.off[1];
  return dispatch (vb, EASEL_VK_AVG_POOL2D, &A, &p, sizeof p, p.n, 1, 1, error);
}

static gboolean
op_concat (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselTensor *a = t->src[0], *b = t->src[1];
  int axis = t->ip[0];
  gint64 inner = 1;
  for (int d = axis + 1; d < t->n_dims; d++)
    inner *= t->shape[d];
  EaselVkConcatPush p = {
    .n = (guint32) easel_tensor_numel (t), .ca = (guint32) a->shape[axis], .cb = (guint32) b->shape[axis],
    .inner = (guint32) inner,
  };
  Args A;
  if (bound_elem_size (vb, t, 0) != 4 || bound_elem_size (vb, t, 1) != 4)
    return unsupported (error, t, "concat of 4-byte elements only");
  if (!add_all (vb, &A, t, 2, error))
    return FALSE;
  p.a_off = A.off[0];
  p.b_off = A.off[1];
  p.y_off = A.off[2];
  return dispatch (vb, EASEL_VK_CONCAT, &A, &p, sizeof p, p.n, 1, 1, error);
}

static gboolean
op_timestep (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselVkTimestepPush p = {
    .n = (guint32) easel_tensor_numel (t), .dim = (guint32) t->ip[0], .half_ = (guint32) (t->ip[0] / 2),
  };
  Args A;
  if (!add_all (vb, &A, t, 1, error))
    return FALSE;
  p.t_off = A.off[0];
  p.y_off = A.off[1];
  return dispatch (vb, EASEL_VK_TIMESTEP_EMBEDDING, &A, &p, sizeof p, p.n, 1, 1, error);
}

static gboolean
op_get_rows (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  EaselTensor *table = t->src[0];
  EaselVkGetRowsPush p = {
    .n = (guint32) easel_tensor_numel (t), .D = (guint32) table->shape[1], .V = (guint32) table->shape[0],
    .ld = (guint32) table->stride[0],
  };
  Args A;
  if (table->stride[1] != 1 || table->shape[0] < 1)
    return unsupported (error, t, "get_rows needs a non-empty table with dense rows");
  if (!add_all (vb, &A, t, 2, error))
    return FALSE;
  p.t_off = A.off[0];
  p.i_off = A.off[1];
  p.y_off = A.off[2];
  return dispatch (vb, is_matrix_f16 (vb, t, 0) ? EASEL_VK_GET_ROWS_F16 : EASEL_VK_GET_ROWS_F32, &A, &p, sizeof p,
                   p.n, 1, 1, error);
}

gboolean
easel_vk_run_node (EaselVkBackend *vb, EaselTensor *t, GError **error)
{
  static const EaselVkPipelineId unary[] = {
    [EASEL_UNARY_SILU] = EASEL_VK_UNARY_SILU, [EASEL_UNARY_GELU] = EASEL_VK_UNARY_GELU,
    [EASEL_UNARY_GELU_TANH] = EASEL_VK_UNARY_GELU_TANH, [EASEL_UNARY_QUICK_GELU] = EASEL_VK_UNARY_QUICK_GELU,
    [EASEL_UNARY_RELU] = EASEL_VK_UNARY_RELU,
  };
  if (t->op == EASEL_OP_LEAF || t->op == EASEL_OP_VIEW || easel_tensor_numel (t) == 0)
    return TRUE;
  for (int s = 0; s < EASEL_MAX_SRC; s++)
    if (t->src[s] && easel_tensor_numel (t->src[s]) == 0)
      return unsupported (error, t, "an empty input");
  if (easel_tensor_numel (t) > G_MAXUINT32)
    return unsupported (error, t, "more than 2^32 elements");

  switch (t->op) {
  case EASEL_OP_CONTIGUOUS: return op_copy (vb, t, error);
  case EASEL_OP_LINEAR: return op_linear (vb, t, error);
  case EASEL_OP_CONV2D: return op_conv2d (vb, t, error);
  case EASEL_OP_GROUP_NORM: return op_group_norm (vb, t, error);
  case EASEL_OP_GROUP_STATS: return op_group_stats (vb, t, error);
  case EASEL_OP_GROUP_NORM_APPLY: return op_group_norm_apply (vb, t, error);
  case EASEL_OP_LAYER_NORM: return op_layer_norm (vb, t, error);
  case EASEL_OP_UNARY:
    if (t->ip[0] < 0 || t->ip[0] >= (int) G_N_ELEMENTS (unary))
      return unsupported (error, t, "unknown unary op");
    return op_unary (vb, t, unary[t->ip[0]], 0.0f, error);
  case EASEL_OP_BINARY: return op_binary (vb, t, error);
  case EASEL_OP_SCALE: return op_unary (vb, t, EASEL_VK_UNARY_SCALE, t->fp[0], error);
  case EASEL_OP_GEGLU: return op_geglu (vb, t, error);
  case EASEL_OP_ATTENTION: return op_attention (vb, t, error);
  case EASEL_OP_UPSAMPLE_NEAREST: return op_upsample (vb, t, error);
  case EASEL_OP_CONCAT: return op_concat (vb, t, error);
  case EASEL_OP_TIMESTEP_EMBEDDING: return op_timestep (vb, t, error);
  case EASEL_OP_GET_ROWS: return op_get_rows (vb, t, error);
  case EASEL_OP_AVG_POOL2D: return op_avg_pool2d (vb, t, error);
  case EASEL_OP_LEAF:
  case EASEL_OP_VIEW:
  case EASEL_OP_COUNT:
  default:
    break;
  }
  return unsupported (error, t, "op not implemented");
}
