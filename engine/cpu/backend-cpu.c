/* engine/cpu/backend-cpu.c: the CPU backend: runs a graph node by node on the fp32 kernels of
 * ops.h. Activations live in one arena laid out by easel_graph_plan and reused between computes;
 * F32 weights are read in place from the mapping (when 4-byte aligned), F16/BF16 weights are
 * converted to F32 once per data pointer and kept. Scratch for conv and attention is one buffer
 * sized for the largest node. */
#include <string.h>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/cpu/ops.h"

typedef struct {
  EaselBackend parent;
  EaselCpuPool *pool;
  float *arena;
  gsize arena_size;
  float *work;
  gsize work_floats;
  GHashTable *weights;     /* const void *data -> CachedWeight (converted copy) */
  gsize weights_bytes;     /* held by the converted copies */
  gsize weights_budget;    /* copies kept up to this; larger weights are converted on every use */
  float *wscratch;         /* the weight of the current node when it is not kept */
  gsize wscratch_floats;
} CpuBackend;

static gpointer
grow (gpointer old, gsize *have, gsize want, gsize elem)
{
  if (want <= *have)
    return old;
  g_free (old);
  *have = want;
  return g_malloc (want * elem);
}

/* fp32 of a weight: in place for aligned F32 data; otherwise converted once and kept while the
 * copies fit the budget ($EASEL_CPU_WEIGHT_CACHE_MB, default 1 GiB),
 * else converted into scratch on every use — SDXL's fp16 weights then stay in the mapped file
 * instead of doubling as 10 GiB of fp32 copies. A node reads at most one large weight, so one
 * scratch buffer serves. */
typedef struct {
  float *f32;
  EaselDType dtype;
  gint64 numel;
  guint64 fingerprint;
} CachedWeight;

static void
cached_weight_free (gpointer p)
{
  CachedWeight *c = p;
  g_free (c->f32);
  g_free (c);
}

/* A few words sampled across the data: a new model mapped where a freed one was (same address, dtype
 * and size) must not be served the old one's conversion. */
static guint64
fingerprint (const EaselTensor *base)
{
  gsize n = easel_tensor_nbytes (base) / 8;
  const guint8 *p = base->data;
  guint64 h = 1469598103934665603ull;
  for (gsize k = 0; k < MIN (n, 16); k++) {
    guint64 w;
    memcpy (&w, p + 8 * (k * (n - 1) / MAX (MIN (n, 16) - 1, 1)), 8);
    h = (h ^ w) * 1099511628211ull;
  }
  for (gsize k = 0; k < MIN (easel_tensor_nbytes (base), 32); k++)   /* small tensors: their bytes */
    h = (h ^ p[k]) * 1099511628211ull;
  return h;
}

static const float *
weight_f32 (CpuBackend *cb, EaselTensor *base)
{
  if (base->dtype == EASEL_DTYPE_F32 && ((guintptr) base->data % sizeof (float)) == 0)
    return base->data;
  gint64 n = easel_tensor_numel (base);
  guint64 fp = fingerprint (base);
  CachedWeight *c = g_hash_table_lookup (cb->weights, base->data);
  if (c != NULL && c->dtype == base->dtype && c->numel == n && c->fingerprint == fp)
    return c->f32;
  gsize bytes = MAX (n, 1) * sizeof (float);
  if (c != NULL) {                        /* other data at a reused address */
    cb->weights_bytes -= MAX (c->numel, 1) * sizeof (float);
    g_hash_table_remove (cb->weights, base->data);
  }
  if (bytes <= (1u << 20) || cb->weights_bytes + bytes <= cb->weights_budget) {
    c = g_new (CachedWeight, 1);
    *c = (CachedWeight) { g_malloc (bytes), base->dtype, n, fp };
    easel_cpu_convert_to_f32 (cb->pool, base->dtype, base->data, c->f32, n);
    g_hash_table_insert (cb->weights, base->data, c);
    cb->weights_bytes += bytes;
    return c->f32;
  }
  cb->wscratch = grow (cb->wscratch, &cb->wscratch_floats, MAX (n, 1), sizeof (float));
  easel_cpu_convert_to_f32 (cb->pool, base->dtype, base->data, cb->wscratch, n);
  return cb->wscratch;
}

/* Element [0, 0, ...] of a tensor (view or not) as float storage. */
static float *
ptr (CpuBackend *cb, const EaselTensor *t)
{
  EaselTensor *base = t->base;
  if (base->flags & EASEL_TENSOR_WEIGHT)
    return (float *) weight_f32 (cb, base) + t->offset;
  return (float *) ((guint8 *) cb->arena + base->arena_offset) + t->offset;
}

/* --- strided copy ------------------------------------------------------------------------------ */

/* A view reduced to its essentials: size-1 dims dropped, dims that are contiguous with the next
 * merged. What is left is (outer..., R, C) with source strides; the copy walks it as a batch of 2D
 * blocks: rows are memcpy'd when C has stride 1, and copied in 32×32 tiles otherwise (the NCHW <->
 * (B, HW, C) permutes around every transformer are such transposes). */
typedef struct {
  int nd;
  gint64 shape[EASEL_MAX_DIMS], stride[EASEL_MAX_DIMS];
  const float *src;
  float *dst;
  gint64 rows, cols, row_blocks;   /* the last two dims; rows in blocks of TILE */
} CopyJob;

#define TILE 32

static void
copy_range (gint64 begin, gint64 end, int ith, gpointer user_data)
{
  const CopyJob *j = user_data;
  gint64 sr = j->stride[j->nd - 2], sc = j->stride[j->nd - 1];
  for (gint64 item = begin; item < end; item++) {
    gint64 outer = item / j->row_blocks, r0 = (item % j->row_blocks) * TILE;
    gint64 r1 = MIN (r0 + TILE, j->rows), rem = outer, off = 0;
    for (int d = j->nd - 3; d >= 0; d--) {
      off += (rem % j->shape[d]) * j->stride[d];
      rem /= j->shape[d];
    }
    const float *s = j->src + off;
    float *o = j->dst + outer * j->rows * j->cols;
    if (sc == 1) {
      for (gint64 r = r0; r < r1; r++)
        memcpy (o + r * j->cols, s + r * sr, j->cols * sizeof (float));
      continue;
    }
    for (gint64 c0 = 0; c0 < j->cols; c0 += TILE) {
      gint64 c1 = MIN (c0 + TILE, j->cols);
      for (gint64 r = r0; r < r1; r++)
        for (gint64 c = c0; c < c1; c++)
          o[r * j->cols + c] = s[r * sr + c * sc];
    }
  }
}

/* dst (dense, numel of t) = the view t over src (element [0...] of t). */
static void
strided_copy (CpuBackend *cb, float *dst, const float *src, const EaselTensor *t)
{
  gint64 n = easel_tensor_numel (t);
  CopyJob j = { .src = src, .dst = dst };

  if (n == 0)
    return;
  if (easel_tensor_is_contiguous (t)) {
    memcpy (dst, src, n * sizeof (float));
    return;
  }
  for (int d = 0; d < t->n_dims; d++) {
    if (t->shape[d] == 1)
      continue;
    if (j.nd > 0 && j.stride[j.nd - 1] == t->stride[d] * t->shape[d]) {   /* merge with the previous */
      j.shape[j.nd - 1] *= t->shape[d];
      j.stride[j.nd - 1] = t->stride[d];
      continue;
    }
    j.shape[j.nd] = t->shape[d];
    j.stride[j.nd] = t->stride[d];
    j.nd++;
  }
  while (j.nd < 2) {                    /* pad to (1, ..., R, C) */
    memmove (j.shape + 1, j.shape, sizeof (gint64) * j.nd);
    memmove (j.stride + 1, j.stride, sizeof (gint64) * j.nd);
    j.shape[0] = 1;
    j.stride[0] = 0;
    j.nd++;
  }
  j.rows = j.shape[j.nd - 2];
  j.cols = j.shape[j.nd - 1];
  j.row_blocks = (j.rows + TILE - 1) / TILE;
  easel_cpu_pool_run (cb->pool, n / (j.rows * j.cols) * j.row_blocks, 1, copy_range, &j);
}

/* --- broadcast binary ops ---------------------------------------------------------------------- */

static void
binary (CpuBackend *cb, EaselTensor *t)
{
  EaselTensor *a = t->src[0], *b = t->src[1];
  EaselCpuBinaryOp op = t->ip[0] == EASEL_BINARY_ADD ? EASEL_CPU_ADD : EASEL_CPU_MUL;
  float *y = ptr (cb, t);
  const float *pa = ptr (cb, a), *pb = ptr (cb, b);
  int nd = a->n_dims, off = a->n_dims - b->n_dims;
  gint64 bs[EASEL_MAX_DIMS];
  gint64 n = easel_tensor_numel (a);

  for (int d = 0; d < nd; d++)
    bs[d] = d < off ? 1 : b->shape[d - off];
  /* Find the form a (N, C, HW) op b[n·sn + c]: b's non-1 dims must form one block [c0, c1) of a's
   * dims, optionally preceded by a block matching a's leading dims (then sn = C). */
  int first = -1, last = -1;
  for (int d = 0; d < nd; d++)
    if (bs[d] != 1) {
      if (first < 0)
        first = d;
      last = d;
    }
  if (first < 0) {                                   /* b is a scalar */
    easel_cpu_binary_f32 (cb->pool, op, y, pa, pb, n, 1, 1, 0);
    return;
  }
  gboolean block = TRUE;
  for (int d = first; d <= last; d++)
    block &= bs[d] == a->shape[d];
  if (block) {
    gint64 N = 1, C = 1, HW = 1;
    for (int d = 0; d < first; d++)
      N *= a->shape[d];
    for (int d = first; d <= last; d++)
      C *= a->shape[d];
    for (int d = last + 1; d < nd; d++)
      HW *= a->shape[d];
    easel_cpu_binary_f32 (cb->pool, op, y, pa, pb, N, C, HW, 0);
    return;
  }
  /* general broadcast (rare; small tensors): per element */
  for (gint64 i = 0; i < n; i++) {
    gint64 rem = i, bo = 0, bstride = 1;
    for (int d = nd - 1; d >= 0; d--) {
      gint64 idx = rem % a->shape[d];
      rem /= a->shape[d];
      if (bs[d] != 1)
        bo += idx * bstride;
      bstride *= bs[d];
    }
    y[i] = op == EASEL_CPU_ADD ? pa[i] + pb[bo] : pa[i] * pb[bo];
  }
}

/* --- nodes ------------------------------------------------------------------------------------- */

static gsize
node_workspace (CpuBackend *cb, EaselTensor *t, EaselCpuConv2d *conv, EaselCpuAttention *att)
{
  int nth = easel_cpu_pool_get_n_threads (cb->pool);
  if (t->op == EASEL_OP_CONV2D) {
    EaselTensor *x = t->src[0], *w = t->src[1];
    easel_cpu_conv2d_init (conv, x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2],
                           w->shape[3], t->ip[0], t->ip[1]);
    conv->out_h = t->shape[2];   /* the graph's size: larger than the symmetric one with extra padding */
    conv->out_w = t->shape[3];
    return easel_cpu_conv2d_workspace (conv, nth);
  }
  if (t->op == EASEL_OP_ATTENTION) {
    EaselTensor *q = t->src[0], *k = t->src[1], *v = t->src[2];
    gint64 heads = t->ip[0];
    *att = (EaselCpuAttention) {
      .batch = q->shape[0], .heads = heads, .lq = q->shape[1], .lk = k->shape[1], .d = q->shape[2] / heads,
      .ld_q = q->stride[1], .ld_k = k->stride[1], .ld_v = v->stride[1], .ld_o = t->shape[2],
      .scale = t->fp[0], .causal = t->ip[1],
    };
    return easel_cpu_attention_workspace (att, nth);
  }
  return 0;
}

static void
get_rows (CpuBackend *cb, EaselTensor *t)
{
  EaselTensor *table = t->src[0], *ids = t->src[1];
  const gint32 *id = (const gint32 *) ptr (cb, ids);
  gint64 n = easel_tensor_numel (ids), V = table->shape[0], D = table->shape[1];
  float *y = ptr (cb, t);
  gsize es = easel_dtype_size (table->dtype);
  const guint8 *base = (const guint8 *) table->base->data + table->offset * es;

  for (gint64 i = 0; i < n; i++) {
    gint64 r = CLAMP (id[i], 0, V - 1);   /* ids come from the tokenizer; clamp, never read outside */
    easel_dtype_to_f32 (table->dtype, base + r * table->stride[0] * es, y + i * D, D);
  }
}

static void
scale (CpuBackend *cb, EaselTensor *t)
{
  float *y = ptr (cb, t);
  const float *x = ptr (cb, t->src[0]);
  float s = t->fp[0];
  gint64 n = easel_tensor_numel (t);
  for (gint64 i = 0; i < n; i++)
    y[i] = x[i] * s;
}

/* y (B, C, Ho, Wo) = mean of x's k x k window at (k·i, k·j), clipped to x (torch ceil_mode). */
static void
avg_pool2d (CpuBackend *cb, EaselTensor *t)
{
  const EaselTensor *x = t->src[0];
  const float *xp = ptr (cb, t->src[0]);
  float *y = ptr (cb, t);
  gint64 BC = x->shape[0] * x->shape[1], H = x->shape[2], Wd = x->shape[3], Ho = t->shape[2], Wo = t->shape[3];
  int k = t->ip[0];
  for (gint64 p = 0; p < BC; p++)
    for (gint64 i = 0; i < Ho; i++)
      for (gint64 j = 0; j < Wo; j++) {
        gint64 h1 = MIN (i * k + k, H), w1 = MIN (j * k + k, Wd);
        float sum = 0.0f;
        for (gint64 a = i * k; a < h1; a++)
          for (gint64 b = j * k; b < w1; b++)
            sum += xp[(p * H + a) * Wd + b];
        y[(p * Ho + i) * Wo + j] = sum / (float) ((h1 - i * k) * (w1 - j * k));
      }
}

static gboolean
run_node (CpuBackend *cb, EaselTensor *t, GError **error)
{
  EaselTensor *x = t->src[0];
  EaselCpuConv2d conv;
  EaselCpuAttention att;

  switch (t->op) {
  case EASEL_OP_LEAF:
  case EASEL_OP_VIEW:
    return TRUE;
  case EASEL_OP_CONTIGUOUS:
    strided_copy (cb, ptr (cb, t), ptr (cb, x), x);
    return TRUE;
  case EASEL_OP_LINEAR: {
    gint64 K = x->shape[x->n_dims - 1], N = t->shape[t->n_dims - 1];
    easel_cpu_linear_f32 (cb->pool, ptr (cb, t), ptr (cb, x), ptr (cb, t->src[1]),
                          t->src[2] ? ptr (cb, t->src[2]) : NULL, easel_tensor_numel (x) / K, N, K);
    return TRUE;
  }
  case EASEL_OP_CONV2D:
    node_workspace (cb, t, &conv, &att);
    easel_cpu_conv2d_f32 (cb->pool, ptr (cb, t), ptr (cb, x), ptr (cb, t->src[1]),
                          t->src[2] ? ptr (cb, t->src[2]) : NULL, &conv, cb->work);
    return TRUE;
  case EASEL_OP_GROUP_NORM: {
    gint64 N = x->shape[0], C = x->shape[1];
    easel_cpu_group_norm_f32 (cb->pool, ptr (cb, t), ptr (cb, x), t->src[1] ? ptr (cb, t->src[1]) : NULL,
                              t->src[2] ? ptr (cb, t->src[2]) : NULL, N, C, easel_tensor_numel (x) / (N * C),
                              t->ip[0], t->fp[0], t->ip[1]);
    return TRUE;
  }
  case EASEL_OP_GROUP_STATS: {
    gint64 N = x->shape[0], C = x->shape[1];
    easel_cpu_group_stats_f32 (cb->pool, ptr (cb, t), ptr (cb, x), N, C, easel_tensor_numel (x) / (N * C), t->ip[0]);
    return TRUE;
  }
  case EASEL_OP_GROUP_NORM_APPLY: {
    gint64 N = x->shape[0], C = x->shape[1];
    easel_cpu_group_norm_apply_f32 (cb->pool, ptr (cb, t), ptr (cb, x), t->src[1] ? ptr (cb, t->src[1]) : NULL,
                                    t->src[2] ? ptr (cb, t->src[2]) : NULL, ptr (cb, t->src[3]), N, C,
                                    easel_tensor_numel (x) / (N * C), t->ip[0], t->ip[1]);
    return TRUE;
  }
  case EASEL_OP_LAYER_NORM: {
    gint64 D = x->shape[x->n_dims - 1];
    easel_cpu_layer_norm_f32 (cb->pool, ptr (cb, t), ptr (cb, x), t->src[1] ? ptr (cb, t->src[1]) : NULL,
                              t->src[2] ? ptr (cb, t->src[2]) : NULL, easel_tensor_numel (x) / D, D, t->fp[0]);
    return TRUE;
  }
  case EASEL_OP_UNARY: {
    static const EaselCpuUnaryOp map[] = {
      [EASEL_UNARY_SILU] = EASEL_CPU_SILU, [EASEL_UNARY_GELU] = EASEL_CPU_GELU,
      [EASEL_UNARY_GELU_TANH] = EASEL_CPU_GELU_TANH, [EASEL_UNARY_QUICK_GELU] = EASEL_CPU_QUICK_GELU,
      [EASEL_UNARY_RELU] = EASEL_CPU_RELU,
    };
    easel_cpu_unary_f32 (cb->pool, map[t->ip[0]], ptr (cb, t), ptr (cb, x), easel_tensor_numel (x));
    return TRUE;
  }
  case EASEL_OP_BINARY:
    binary (cb, t);
    return TRUE;
  case EASEL_OP_SCALE:
    scale (cb, t);
    return TRUE;
  case EASEL_OP_GEGLU: {
    gint64 F = t->shape[t->n_dims - 1];
    easel_cpu_geglu_f32 (cb->pool, ptr (cb, t), ptr (cb, x), easel_tensor_numel (t) / F, F);
    return TRUE;
  }
  case EASEL_OP_ATTENTION:
    node_workspace (cb, t, &conv, &att);
    easel_cpu_attention_f32 (cb->pool, ptr (cb, t), ptr (cb, t->src[0]), ptr (cb, t->src[1]), ptr (cb, t->src[2]),
                             &att, cb->work);
    return TRUE;
  case EASEL_OP_UPSAMPLE_NEAREST:
    easel_cpu_resize_nearest_f32 (cb->pool, ptr (cb, t), ptr (cb, x), x->shape[0], x->shape[1], x->shape[2],
                                  x->shape[3], t->shape[2], t->shape[3]);
    return TRUE;
  case EASEL_OP_CONCAT: {
    EaselTensor *b = t->src[1];
    int axis = t->ip[0];
    gint64 N = 1, HW = 1;
    for (int d = 0; d < axis; d++)
      N *= t->shape[d];
    for (int d = axis + 1; d < t->n_dims; d++)
      HW *= t->shape[d];
    easel_cpu_concat_channels_f32 (cb->pool, ptr (cb, t), ptr (cb, x), ptr (cb, b), N, x->shape[axis],
                                   b->shape[axis], HW);
    return TRUE;
  }
  case EASEL_OP_TIMESTEP_EMBEDDING:
    easel_cpu_timestep_embedding_f32 (ptr (cb, t), ptr (cb, x), x->shape[0], t->ip[0]);
    return TRUE;
  case EASEL_OP_GET_ROWS:
    get_rows (cb, t);
    return TRUE;
  case EASEL_OP_AVG_POOL2D:
    avg_pool2d (cb, t);
    return TRUE;
  case EASEL_OP_COUNT:
  default:
    break;
  }
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "cpu backend: op %d not implemented", t->op);
  return FALSE;
}

static gboolean
cpu_compute (EaselBackend *b, EaselGraph *g, GError **error)
{
  CpuBackend *cb = (CpuBackend *) b;
  guint n = easel_graph_n_nodes (g);
  gsize arena = easel_graph_plan (g), work = 0;
  EaselCpuConv2d conv;
  EaselCpuAttention att;

  for (guint i = 0; i < n; i++)
    work = MAX (work, node_workspace (cb, easel_graph_node (g, i), &conv, &att));
  cb->arena = grow (cb->arena, &cb->arena_size, MAX (arena, 64), 1);
  cb->work = grow (cb->work, &cb->work_floats, MAX (work, 16), sizeof (float));

  for (guint i = 0; i < n; i++) {
    EaselTensor *t = easel_graph_node (g, i);
    if (!(t->flags & EASEL_TENSOR_INPUT))
      continue;
    if (t->host == NULL) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "input '%s' has no data", t->name);
      return FALSE;
    }
    memcpy ((guint8 *) cb->arena + t->arena_offset, t->host, easel_tensor_nbytes (t));
  }
  for (guint i = 0; i < n; i++) {
    EaselTensor *t = easel_graph_node (g, i);
    EaselProfile *prof = b->profile;   /* $EASEL_PROFILE (backend.h): wall time per node */
    gint64 t0 = prof ? g_get_monotonic_time () : 0;
    if (!run_node (cb, t, error))
      return FALSE;
    if (prof && t->op != EASEL_OP_LEAF && t->op != EASEL_OP_VIEW)
      easel_profile_add_tensor (prof, t, (double) (g_get_monotonic_time () - t0) / G_USEC_PER_SEC);
  }
  return TRUE;
}

static gboolean
cpu_read (EaselBackend *b, const EaselTensor *t, float *out, GError **error)
{
  CpuBackend *cb = (CpuBackend *) b;
  if (t->dtype != EASEL_DTYPE_F32) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "read: '%s' is not F32", t->name ? t->name : "?");
    return FALSE;
  }
  strided_copy (cb, out, ptr (cb, t), t);
  return TRUE;
}

static void
cpu_free (EaselBackend *b)
{
  CpuBackend *cb = (CpuBackend *) b;
  easel_cpu_pool_free (cb->pool);
  g_hash_table_unref (cb->weights);
  g_free (cb->arena);
  g_free (cb->work);
  g_free (cb->wscratch);
  g_free (cb);
}

static const EaselBackendClass cpu_class = { "cpu", cpu_compute, cpu_read, cpu_free };

EaselBackend *
easel_backend_new_cpu (int n_threads)
{
  CpuBackend *cb = g_new0 (CpuBackend, 1);
  cb->parent.klass = &cpu_class;
  cb->pool = easel_cpu_pool_new (n_threads);
  cb->weights = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, cached_weight_free);
  /* Converting on use runs at memory speed (F16C) and costs under 2% of a step (measured on SD 1.5:
   * 10.8 s/step with 1 GiB of copies against 11.0 s with all 3.4 GiB), so only 1 GiB of fp32 copies is
   * kept by default: the fp16 file pages are the weights. */
  const char *budget = g_getenv ("EASEL_CPU_WEIGHT_CACHE_MB");
  cb->weights_budget = budget != NULL ? (gsize) g_ascii_strtoull (budget, NULL, 10) << 20 : (gsize) 1 << 30;
  return &cb->parent;
}
