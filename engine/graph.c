/* engine/graph.c: building the graph (shape checks and inference for every op) and planning its
 * memory. Parameters per op: CONV2D ip[0] stride, ip[1] pad,
 * ip[2]/ip[3] extra bottom rows / right columns; GROUP_NORM ip[0] groups, ip[1] silu,
 * fp[0] eps; GROUP_STATS ip[0] groups; GROUP_NORM_APPLY ip[0] groups, ip[1] silu, src x, gamma, beta,
 * stats; LAYER_NORM fp[0] eps; UNARY ip[0] EaselUnary; BINARY ip[0] EaselBinary; SCALE fp[0];
 * ATTENTION ip[0] heads, ip[1] causal, fp[0] scale; CONCAT ip[0] axis; TIMESTEP_EMBEDDING ip[0] dim;
 * AVG_POOL2D ip[0] kernel (= stride). */
#include "graph.h"

#include <string.h>

#include "error.h"

struct _EaselGraph {
  GPtrArray *nodes;          /* EaselTensor*, owned, in creation (= execution) order */
  GStringChunk *names;
  GError *error;             /* first shape error */
};

EaselGraph *
easel_graph_new (void)
{
  EaselGraph *g = g_new0 (EaselGraph, 1);
  g->nodes = g_ptr_array_new_with_free_func (g_free);
  g->names = g_string_chunk_new (1024);
  return g;
}

void
easel_graph_free (EaselGraph *g)
{
  if (g == NULL)
    return;
  g_ptr_array_unref (g->nodes);
  g_string_chunk_free (g->names);
  g_clear_error (&g->error);
  g_free (g);
}

guint
easel_graph_n_nodes (const EaselGraph *g)
{
  return g->nodes->len;
}

EaselTensor *
easel_graph_node (const EaselGraph *g, guint i)
{
  return i < g->nodes->len ? g->nodes->pdata[i] : NULL;
}

const GError *
easel_graph_error (const EaselGraph *g)
{
  return g->error;
}

gint64
easel_tensor_numel (const EaselTensor *t)
{
  gint64 n = 1;
  for (int d = 0; d < t->n_dims; d++)
    n *= t->shape[d];
  return n;
}

gsize
easel_tensor_nbytes (const EaselTensor *t)
{
  return (gsize) easel_tensor_numel (t) * easel_dtype_size (t->dtype);
}

gboolean
easel_tensor_is_contiguous (const EaselTensor *t)
{
  gint64 expect = 1;
  for (int d = t->n_dims - 1; d >= 0; d--) {
    if (t->shape[d] != 1 && t->stride[d] != expect)
      return FALSE;
    expect *= t->shape[d];
  }
  return TRUE;
}

char *
easel_tensor_shape_str (const EaselTensor *t)
{
  GString *s = g_string_new ("[");
  for (int d = 0; d < t->n_dims; d++)
    g_string_append_printf (s, d ? ", %" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, t->shape[d]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static void
set_contiguous_strides (EaselTensor *t)
{
  gint64 s = 1;
  for (int d = t->n_dims - 1; d >= 0; d--) {
    t->stride[d] = s;
    s *= t->shape[d];
  }
}

static EaselTensor *
new_node (EaselGraph *g, EaselOp op, EaselDType dtype, int n_dims, const gint64 *shape)
{
  EaselTensor *t = g_new0 (EaselTensor, 1);
  t->op = op;
  t->dtype = dtype;
  t->n_dims = n_dims;
  memcpy (t->shape, shape, sizeof (gint64) * n_dims);
  set_contiguous_strides (t);
  t->base = t;
  t->index = g->nodes->len;
  g_ptr_array_add (g->nodes, t);
  return t;
}

static EaselTensor *
new_op (EaselGraph *g, EaselOp op, int n_dims, const gint64 *shape, EaselTensor *s0, EaselTensor *s1,
        EaselTensor *s2)
{
  EaselTensor *t = new_node (g, op, EASEL_DTYPE_F32, n_dims, shape);
  t->src[0] = s0;
  t->src[1] = s1;
  t->src[2] = s2;
  return t;
}

/* Records the first shape error and returns a placeholder of the shape the op would have had. */
static EaselTensor *
shape_error (EaselGraph *g, EaselTensor *like, const char *op, const char *format, ...) G_GNUC_PRINTF (4, 5);

static EaselTensor *
shape_error (EaselGraph *g, EaselTensor *like, const char *op, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  return easel_graph_fail (g, like, "%s: %s", op, msg);
}

EaselTensor *
easel_graph_fail (EaselGraph *g, EaselTensor *like, const char *format, ...)
{
  if (g->error == NULL) {
    va_list ap;
    va_start (ap, format);
    g_autofree char *msg = g_strdup_vprintf (format, ap);
    va_end (ap);
    g_set_error_literal (&g->error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, msg);
  }
  return new_op (g, EASEL_OP_SCALE, like->n_dims, like->shape, like, NULL, NULL);
}

EaselTensor *
easel_graph_input (EaselGraph *g, const char *name, EaselDType dtype, int n_dims, const gint64 *shape,
                   const void *data)
{
  EaselTensor *t = new_node (g, EASEL_OP_LEAF, dtype, n_dims, shape);
  t->flags = EASEL_TENSOR_INPUT;
  t->name = g_string_chunk_insert (g->names, name);
  t->host = data;
  return t;
}

void
easel_graph_set_input (EaselTensor *input, const void *data)
{
  g_return_if_fail (input->flags & EASEL_TENSOR_INPUT);
  input->host = data;
}

EaselTensor *
easel_graph_weight (EaselGraph *g, const char *name, EaselDType dtype, int n_dims, const gint64 *shape,
                    const void *data)
{
  EaselTensor *t = new_node (g, EASEL_OP_LEAF, dtype, n_dims, shape);
  t->flags = EASEL_TENSOR_WEIGHT;
  t->name = g_string_chunk_insert (g->names, name);
  t->data = (void *) data;
  return t;
}

void
easel_graph_mark_output (EaselGraph *g, EaselTensor *t)
{
  t->flags |= EASEL_TENSOR_OUTPUT;
}

/* --- views ------------------------------------------------------------------------------------ */

static EaselTensor *
new_view (EaselGraph *g, EaselTensor *x, int n_dims, const gint64 *shape)
{
  EaselTensor *t = new_node (g, EASEL_OP_VIEW, x->dtype, n_dims, shape);
  t->src[0] = x;
  t->base = x->base;
  t->offset = x->offset;
  t->flags = x->flags & EASEL_TENSOR_WEIGHT;
  t->name = x->name;
  return t;
}

EaselTensor *
easel_op_reshape (EaselGraph *g, EaselTensor *x, int n_dims, const gint64 *shape)
{
  gint64 n = 1;
  for (int d = 0; d < n_dims; d++)
    n *= shape[d];
  if (n != easel_tensor_numel (x) || n_dims > EASEL_MAX_DIMS)
    return shape_error (g, x, "reshape", "%" G_GINT64_FORMAT " elements into %" G_GINT64_FORMAT, easel_tensor_numel (x), n);
  if (!easel_tensor_is_contiguous (x))
    x = easel_op_contiguous (g, x);
  return new_view (g, x, n_dims, shape);
}

EaselTensor *
easel_op_permute (EaselGraph *g, EaselTensor *x, const int *axes)
{
  gint64 shape[EASEL_MAX_DIMS];
  guint seen = 0;
  for (int d = 0; d < x->n_dims; d++) {
    if (axes[d] < 0 || axes[d] >= x->n_dims || (seen & (1u << axes[d])))
      return shape_error (g, x, "permute", "bad axes");
    seen |= 1u << axes[d];
    shape[d] = x->shape[axes[d]];
  }
  EaselTensor *t = new_view (g, x, x->n_dims, shape);
  for (int d = 0; d < x->n_dims; d++)
    t->stride[d] = x->stride[axes[d]];
  return t;
}

EaselTensor *
easel_op_slice (EaselGraph *g, EaselTensor *x, int axis, gint64 start, gint64 length)
{
  if (axis < 0 || axis >= x->n_dims || start < 0 || length < 0 || start + length > x->shape[axis])
    return shape_error (g, x, "slice", "[%" G_GINT64_FORMAT ", +%" G_GINT64_FORMAT ") of axis %d", start, length, axis);
  EaselTensor *t = new_view (g, x, x->n_dims, x->shape);
  memcpy (t->stride, x->stride, sizeof t->stride);
  t->shape[axis] = length;
  t->offset += start * x->stride[axis];
  return t;
}

EaselTensor *
easel_op_contiguous (EaselGraph *g, EaselTensor *x)
{
  return new_op (g, EASEL_OP_CONTIGUOUS, x->n_dims, x->shape, x, NULL, NULL);
}

/* --- computation -------------------------------------------------------------------------------- */

static gboolean
is_vector (const EaselTensor *t, gint64 n)
{
  return t == NULL || (t->n_dims == 1 && t->shape[0] == n);
}

EaselTensor *
easel_op_linear (EaselGraph *g, EaselTensor *x, EaselTensor *w, EaselTensor *b)
{
  gint64 shape[EASEL_MAX_DIMS];
  if (w->n_dims != 2 || x->n_dims < 1 || x->shape[x->n_dims - 1] != w->shape[1] || !is_vector (b, w->shape[0]))
    {
      g_autofree char *ws = easel_tensor_shape_str (w);
      return shape_error (g, x, "linear", "%s: input width %" G_GINT64_FORMAT ", weight %s",
                          w->name ? w->name : "?", x->shape[x->n_dims - 1], ws);
    }
  memcpy (shape, x->shape, sizeof shape);
  shape[x->n_dims - 1] = w->shape[0];
  if (!easel_tensor_is_contiguous (x))
    x = easel_op_contiguous (g, x);
  return new_op (g, EASEL_OP_LINEAR, x->n_dims, shape, x, w, b);
}

EaselTensor *
easel_op_conv2d (EaselGraph *g, EaselTensor *x, EaselTensor *w, EaselTensor *b, int stride, int pad)
{
  return easel_op_conv2d_ext (g, x, w, b, stride, pad, 0, 0);
}

EaselTensor *
easel_op_conv2d_ext (EaselGraph *g, EaselTensor *x, EaselTensor *w, EaselTensor *b, int stride, int pad,
                     int extra_h, int extra_w)
{
  if (x->n_dims != 4 || w->n_dims != 4 || x->shape[1] != w->shape[1] || !is_vector (b, w->shape[0]) || stride < 1 || pad < 0
      || extra_h < 0 || extra_w < 0
      || x->shape[2] + 2 * pad + extra_h < w->shape[2] || x->shape[3] + 2 * pad + extra_w < w->shape[3])
    return shape_error (g, x, "conv2d", "%s: input channels %" G_GINT64_FORMAT, w->name ? w->name : "?",
                        x->n_dims == 4 ? x->shape[1] : -1);
  gint64 shape[4] = { x->shape[0], w->shape[0], (x->shape[2] + 2 * pad + extra_h - w->shape[2]) / stride + 1,
                      (x->shape[3] + 2 * pad + extra_w - w->shape[3]) / stride + 1 };
  if (!easel_tensor_is_contiguous (x))
    x = easel_op_contiguous (g, x);
  EaselTensor *t = new_op (g, EASEL_OP_CONV2D, 4, shape, x, w, b);
  t->ip[0] = stride;
  t->ip[1] = pad;
  t->ip[2] = extra_h;
  t->ip[3] = extra_w;
  return t;
}

EaselTensor *
easel_op_group_norm (EaselGraph *g, EaselTensor *x, EaselTensor *gamma, EaselTensor *beta, int groups,
                     float eps, gboolean silu)
{
  if (x->n_dims < 2 || groups < 1 || x->shape[1] % groups != 0 || !is_vector (gamma, x->shape[1]) || !is_vector (beta, x->shape[1]))
    return shape_error (g, x, "group_norm", "%" G_GINT64_FORMAT " channels in %d groups", x->shape[1], groups);
  if (!easel_tensor_is_contiguous (x))
    x = easel_op_contiguous (g, x);
  EaselTensor *t = new_op (g, EASEL_OP_GROUP_NORM, x->n_dims, x->shape, x, gamma, beta);
  t->ip[0] = groups;
  t->ip[1] = silu;
  t->fp[0] = eps;
  return t;
}

EaselTensor *
easel_op_group_stats (EaselGraph *g, EaselTensor *x, int groups)
{
  if (x->n_dims < 2 || groups < 1 || x->shape[1] % groups != 0)
    return shape_error (g, x, "group_stats", "%" G_GINT64_FORMAT " channels in %d groups", x->shape[1], groups);
  const gint64 shape[3] = { x->shape[0], groups, 2 };
  if (!easel_tensor_is_contiguous (x))
    x = easel_op_contiguous (g, x);
  EaselTensor *t = new_op (g, EASEL_OP_GROUP_STATS, 3, shape, x, NULL, NULL);
  t->ip[0] = groups;
  return t;
}

EaselTensor *
easel_op_group_norm_apply (EaselGraph *g, EaselTensor *x, EaselTensor *gamma, EaselTensor *beta, EaselTensor *stats,
                           int groups, gboolean silu)
{
  if (x->n_dims < 2 || groups < 1 || x->shape[1] % groups != 0 || !is_vector (gamma, x->shape[1])
      || !is_vector (beta, x->shape[1]) || stats->n_dims != 3 || stats->shape[0] != x->shape[0]
      || stats->shape[1] != groups || stats->shape[2] != 2)
    return shape_error (g, x, "group_norm_apply", "%" G_GINT64_FORMAT " channels in %d groups with statistics (B, G, 2)",
                        x->shape[1], groups);
  if (!easel_tensor_is_contiguous (x))
    x = easel_op_contiguous (g, x);
  if (!easel_tensor_is_contiguous (stats))
    stats = easel_op_contiguous (g, stats);
  EaselTensor *t = new_op (g, EASEL_OP_GROUP_NORM_APPLY, x->n_dims, x->shape, x, gamma, beta);
  t->src[3] = stats;
  t->ip[0] = groups;
  t->ip[1] = silu;
  return t;
}

EaselTensor *
easel_op_layer_norm (EaselGraph *g, EaselTensor *x, EaselTensor *gamma, EaselTensor *beta, float eps)
{
  gint64 c = x->shape[x->n_dims - 1];
  if (!is_vector (gamma, c) || !is_vector (beta, c))
    return shape_error (g, x, "layer_norm", "width %" G_GINT64_FORMAT, c);
  if (!easel_tensor_is_contiguous (x))
    x = easel_op_contiguous (g, x);
  EaselTensor *t = new_op (g, EASEL_OP_LAYER_NORM, x->n_dims, x->shape, x, gamma, beta);
  t->fp[0] = eps;
  return t;
}

EaselTensor *
easel_op_unary (EaselGraph *g, EaselUnary kind, EaselTensor *x)
{
  if (!easel_tensor_is_contiguous (x))
    x = easel_op_contiguous (g, x);
  EaselTensor *t = new_op (g, EASEL_OP_UNARY, x->n_dims, x->shape, x, NULL, NULL);
  t->ip[0] = kind;
  return t;
}

EaselTensor *
easel_op_binary (EaselGraph *g, EaselBinary kind, EaselTensor *a, EaselTensor *b)
{
  if (b->n_dims > a->n_dims)
    return shape_error (g, a, "binary", "operand of rank %d broadcast to rank %d", b->n_dims, a->n_dims);
  for (int d = 0; d < b->n_dims; d++) {
    gint64 bd = b->shape[b->n_dims - 1 - d], ad = a->shape[a->n_dims - 1 - d];
    if (bd != ad && bd != 1)
      return shape_error (g, a, "binary", "cannot broadcast dimension %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT, bd, ad);
  }
  if (!easel_tensor_is_contiguous (a))
    a = easel_op_contiguous (g, a);
  if (!easel_tensor_is_contiguous (b))
    b = easel_op_contiguous (g, b);
  EaselTensor *t = new_op (g, EASEL_OP_BINARY, a->n_dims, a->shape, a, b, NULL);
  t->ip[0] = kind;
  return t;
}

EaselTensor *
easel_op_scale (EaselGraph *g, EaselTensor *x, float s)
{
  if (!easel_tensor_is_contiguous (x))
    x = easel_op_contiguous (g, x);
  EaselTensor *t = new_op (g, EASEL_OP_SCALE, x->n_dims, x->shape, x, NULL, NULL);
  t->fp[0] = s;
  return t;
}

EaselTensor *
easel_op_geglu (EaselGraph *g, EaselTensor *x)
{
  gint64 shape[EASEL_MAX_DIMS];
  if (x->shape[x->n_dims - 1] % 2 != 0)
    return shape_error (g, x, "geglu", "odd width %" G_GINT64_FORMAT, x->shape[x->n_dims - 1]);
  memcpy (shape, x->shape, sizeof shape);
  shape[x->n_dims - 1] /= 2;
  if (!easel_tensor_is_contiguous (x))
    x = easel_op_contiguous (g, x);
  return new_op (g, EASEL_OP_GEGLU, x->n_dims, shape, x, NULL, NULL);
}

EaselTensor *
easel_op_attention (EaselGraph *g, EaselTensor *q, EaselTensor *k, EaselTensor *v, int heads, float scale,
                    gboolean causal)
{
  if (q->n_dims != 3 || k->n_dims != 3 || v->n_dims != 3 || heads < 1 || q->shape[2] % heads != 0
      || q->shape[0] != k->shape[0] || k->shape[0] != v->shape[0] || q->shape[2] != k->shape[2]
      || k->shape[1] != v->shape[1] || v->shape[2] % heads != 0
      || q->stride[2] != 1 || k->stride[2] != 1 || v->stride[2] != 1)
    return shape_error (g, q, "attention", "q, k, v shapes do not agree (%d heads)", heads);
  gint64 shape[3] = { q->shape[0], q->shape[1], v->shape[2] };
  /* backends read row i of batch b at b·L·ld + i·ld: other layouts are made dense first */
  if (q->shape[0] > 1 && q->stride[0] != q->shape[1] * q->stride[1])
    q = easel_op_contiguous (g, q);
  if (k->shape[0] > 1 && k->stride[0] != k->shape[1] * k->stride[1])
    k = easel_op_contiguous (g, k);
  if (v->shape[0] > 1 && v->stride[0] != v->shape[1] * v->stride[1])
    v = easel_op_contiguous (g, v);
  EaselTensor *t = new_op (g, EASEL_OP_ATTENTION, 3, shape, q, k, v);
  t->ip[0] = heads;
  t->ip[1] = causal;
  t->fp[0] = scale;
  return t;
}

EaselTensor *
easel_op_upsample_nearest (EaselGraph *g, EaselTensor *x, gint64 out_h, gint64 out_w)
{
  if (x->n_dims != 4 || out_h < 1 || out_w < 1)
    return shape_error (g, x, "upsample_nearest", "needs (B, C, H, W)");
  gint64 shape[4] = { x->shape[0], x->shape[1], out_h, out_w };
  if (!easel_tensor_is_contiguous (x))
    x = easel_op_contiguous (g, x);
  return new_op (g, EASEL_OP_UPSAMPLE_NEAREST, 4, shape, x, NULL, NULL);
}

EaselTensor *
easel_op_concat (EaselGraph *g, EaselTensor *a, EaselTensor *b, int axis)
{
  gint64 shape[EASEL_MAX_DIMS];
  gboolean ok = a->n_dims == b->n_dims && axis >= 0 && axis < a->n_dims;
  for (int d = 0; ok && d < a->n_dims; d++)
    ok = d == axis || a->shape[d] == b->shape[d];
  if (!ok)
    return shape_error (g, a, "concat", "shapes do not agree on axis %d", axis);
  memcpy (shape, a->shape, sizeof shape);
  shape[axis] += b->shape[axis];
  if (!easel_tensor_is_contiguous (a))
    a = easel_op_contiguous (g, a);
  if (!easel_tensor_is_contiguous (b))
    b = easel_op_contiguous (g, b);
  EaselTensor *t = new_op (g, EASEL_OP_CONCAT, a->n_dims, shape, a, b, NULL);
  t->ip[0] = axis;
  return t;
}

EaselTensor *
easel_op_timestep_embedding (EaselGraph *g, EaselTensor *t, int dim)
{
  if (t->n_dims != 1 || dim < 2 || dim % 2 != 0)
    return shape_error (g, t, "timestep_embedding", "needs t (B) and an even dim");
  gint64 shape[2] = { t->shape[0], dim };
  if (!easel_tensor_is_contiguous (t))
    t = easel_op_contiguous (g, t);
  EaselTensor *r = new_op (g, EASEL_OP_TIMESTEP_EMBEDDING, 2, shape, t, NULL, NULL);
  r->ip[0] = dim;
  return r;
}

EaselTensor *
easel_op_get_rows (EaselGraph *g, EaselTensor *table, EaselTensor *ids)
{
  gint64 shape[EASEL_MAX_DIMS];
  if (table->n_dims != 2 || ids->dtype != EASEL_DTYPE_I32 || ids->n_dims >= EASEL_MAX_DIMS)
    return shape_error (g, ids, "get_rows", "needs a (V, D) table and I32 ids");
  memcpy (shape, ids->shape, sizeof (gint64) * ids->n_dims);
  shape[ids->n_dims] = table->shape[1];
  return new_op (g, EASEL_OP_GET_ROWS, ids->n_dims + 1, shape, table, ids, NULL);
}

double
easel_tensor_flops (const EaselTensor *t)
{
  switch (t->op) {
  case EASEL_OP_LINEAR:
    return 2.0 * (double) easel_tensor_numel (t) * (double) t->src[1]->shape[1];
  case EASEL_OP_CONV2D: {
    const EaselTensor *w = t->src[1];
    return 2.0 * (double) easel_tensor_numel (t) * (double) (w->shape[1] * w->shape[2] * w->shape[3]);
  }
  case EASEL_OP_ATTENTION: {
    const EaselTensor *q = t->src[0], *k = t->src[1], *v = t->src[2];
    /* q·kᵀ: B·Lq·Lk·(H·d) multiply-adds; p·v: B·Lq·Lk·(H·dv) */
    return 2.0 * (double) q->shape[0] * (double) q->shape[1] * (double) k->shape[1] * (double) (q->shape[2] + v->shape[2]);
  }
  default:
    return 0.0;
  }
}

/* --- memory plan ------------------------------------------------------------------------------- */

typedef struct { gsize offset, size; } Block;

typedef struct {
  GArray *free;   /* Block, sorted by offset, merged */
  gsize top;      /* everything at or past top is free */
} Arena;

#define ALIGN 64

static gsize
arena_alloc (Arena *a, gsize size)
{
  guint best = G_MAXUINT;
  size = (size + ALIGN - 1) / ALIGN * ALIGN;
  for (guint i = 0; i < a->free->len; i++) {
    Block *b = &g_array_index (a->free, Block, i);
    if (b->size >= size && (best == G_MAXUINT || b->size < g_array_index (a->free, Block, best).size))
      best = i;
  }
  if (best != G_MAXUINT) {
    Block *b = &g_array_index (a->free, Block, best);
    gsize off = b->offset;
    b->offset += size;
    b->size -= size;
    if (b->size == 0)
      g_array_remove_index (a->free, best);
    return off;
  }
  if (a->free->len > 0) {    /* a free block touching the top grows into it */
    Block *last = &g_array_index (a->free, Block, a->free->len - 1);
    if (last->offset + last->size == a->top) {
      gsize off = last->offset;
      a->top = off + size;
      g_array_remove_index (a->free, a->free->len - 1);
      return off;
    }
  }
  gsize off = a->top;
  a->top += size;
  return off;
}

static void
arena_release (Arena *a, gsize offset, gsize size)
{
  Block nb = { offset, (size + ALIGN - 1) / ALIGN * ALIGN };
  guint i = 0;
  while (i < a->free->len && g_array_index (a->free, Block, i).offset < offset)
    i++;
  g_array_insert_val (a->free, i, nb);
  if (i + 1 < a->free->len) {                    /* merge with the next */
    Block *b = &g_array_index (a->free, Block, i), *n = &g_array_index (a->free, Block, i + 1);
    if (b->offset + b->size == n->offset) {
      b->size += n->size;
      g_array_remove_index (a->free, i + 1);
    }
  }
  if (i > 0) {                                   /* and with the previous */
    Block *p = &g_array_index (a->free, Block, i - 1), *b = &g_array_index (a->free, Block, i);
    if (p->offset + p->size == b->offset) {
      p->size += b->size;
      g_array_remove_index (a->free, i);
    }
  }
}

static gboolean
has_storage (const EaselTensor *t)
{
  return t->op != EASEL_OP_VIEW && !(t->flags & EASEL_TENSOR_WEIGHT);
}

gsize
easel_graph_plan (EaselGraph *g)
{
  guint n = g->nodes->len;
  g_autofree guint *last_use = g_new0 (guint, n);
  Arena a = { g_array_new (FALSE, FALSE, sizeof (Block)), 0 };

  /* Last reader of each storage owner; outputs live to the end. */
  for (guint i = 0; i < n; i++) {
    EaselTensor *t = g->nodes->pdata[i];
    last_use[t->base->index] = MAX (last_use[t->base->index], i);
    for (int s = 0; s < EASEL_MAX_SRC; s++)
      if (t->src[s])
        last_use[t->src[s]->base->index] = MAX (last_use[t->src[s]->base->index], i);
    if (t->flags & EASEL_TENSOR_OUTPUT)
      last_use[t->base->index] = G_MAXUINT;
  }
  /* Inputs are written before the first node runs: they hold their storage from the start, wherever
   * in the graph they were created. */
  for (guint i = 0; i < n; i++) {
    EaselTensor *t = g->nodes->pdata[i];
    if (t->flags & EASEL_TENSOR_INPUT)
      t->arena_offset = arena_alloc (&a, easel_tensor_nbytes (t));
  }
  for (guint i = 0; i < n; i++) {
    EaselTensor *t = g->nodes->pdata[i];
    if (has_storage (t) && !(t->flags & EASEL_TENSOR_INPUT))
      t->arena_offset = arena_alloc (&a, easel_tensor_nbytes (t));
    /* storage whose last reader is this node is free once it has run */
    for (int s = -1; s < EASEL_MAX_SRC; s++) {
      EaselTensor *r = s < 0 ? t : t->src[s];
      if (r == NULL || last_use[r->base->index] != i || !has_storage (r->base))
        continue;
      last_use[r->base->index] = G_MAXUINT - 1;   /* release once */
      arena_release (&a, r->base->arena_offset, easel_tensor_nbytes (r->base));
    }
  }
  g_array_unref (a.free);
  return a.top;
}

EaselTensor *
easel_op_avg_pool2d (EaselGraph *g, EaselTensor *x, int k)
{
  if (x->n_dims != 4 || k < 1)
    return shape_error (g, x, "avg_pool2d", "needs (B, C, H, W) and a kernel >= 1");
  gint64 shape[4] = { x->shape[0], x->shape[1], (x->shape[2] + k - 1) / k, (x->shape[3] + k - 1) / k };
  if (!easel_tensor_is_contiguous (x))
    x = easel_op_contiguous (g, x);
  EaselTensor *t = new_op (g, EASEL_OP_AVG_POOL2D, 4, shape, x, NULL, NULL);
  t->ip[0] = k;
  return t;
}
