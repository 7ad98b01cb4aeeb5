/* engine/graph.h: tensors and the graph of operations that the networks are written in.
 *
 * Model code calls easel_op_*() to add nodes to a graph; nothing is computed then. A backend
 * (backend.h) plans the graph's memory once — every intermediate gets an offset in one arena,
 * reused as soon as its last reader has run — and executes the nodes in order. The model code
 * never branches on the backend (STYLE.md E4). Shapes are in PyTorch order; strides in elements.
 *
 * Leaves are weights (bound to checkpoint data) and inputs (filled before compute). Views
 * (reshape, slice, permute) share their source's storage; easel_op_contiguous copies a view
 * into a dense tensor. Every other op reads dense tensors, except attention, which reads q, k, v
 * as strided views of a projection, so that heads need no transpose copies. */
#pragma once

#include <glib.h>

#include "dtype.h"
#include "safetensors.h"   /* EASEL_MAX_DIMS */

G_BEGIN_DECLS

#define EASEL_MAX_SRC 4

typedef enum {
  EASEL_OP_LEAF,                 /* weight or input */
  EASEL_OP_VIEW,                 /* reshape / slice / permute of src0: no work */
  EASEL_OP_CONTIGUOUS,           /* dense copy of a view */
  EASEL_OP_LINEAR,               /* y[..., N] = x[..., K] · W[N, K]ᵀ (+ b[N]) */
  EASEL_OP_CONV2D,               /* y (B, Co, Ho, Wo) = conv(x (B, Ci, H, W), w (Co, Ci, kh, kw)) + b */
  EASEL_OP_GROUP_NORM,           /* (B, C, *) over G groups, affine, optional fused SiLU */
  EASEL_OP_LAYER_NORM,           /* over the last dim, affine */
  EASEL_OP_UNARY,                /* elementwise, EaselUnary */
  EASEL_OP_BINARY,               /* elementwise, EaselBinary; src1 broadcasts to src0's shape */
  EASEL_OP_SCALE,                /* x * s */
  EASEL_OP_GEGLU,                /* x[..., 2F] -> a * gelu(g), a = x[..., :F], g = x[..., F:] */
  EASEL_OP_ATTENTION,            /* softmax(q kᵀ · scale [+ causal mask]) v, per head */
  EASEL_OP_UPSAMPLE_NEAREST,     /* (B, C, H, W) -> (B, C, Ho, Wo), torch 'nearest' */
  EASEL_OP_CONCAT,               /* along one axis */
  EASEL_OP_TIMESTEP_EMBEDDING,   /* t (B) -> (B, dim): [cos | sin], frequencies exp(-ln(10000) i / half) */
  EASEL_OP_GET_ROWS,             /* table (V, D), ids I32 (n) -> (n, D) */
  EASEL_OP_COUNT
} EaselOp;

typedef enum { EASEL_UNARY_SILU, EASEL_UNARY_GELU, EASEL_UNARY_GELU_TANH, EASEL_UNARY_QUICK_GELU } EaselUnary;
typedef enum { EASEL_BINARY_ADD, EASEL_BINARY_MUL } EaselBinary;

typedef enum {
  EASEL_TENSOR_INPUT = 1 << 0,   /* filled by the caller before compute */
  EASEL_TENSOR_OUTPUT = 1 << 1,  /* kept alive to the end; read back after compute */
  EASEL_TENSOR_WEIGHT = 1 << 2,  /* bound to checkpoint data; never written */
} EaselTensorFlags;

typedef struct _EaselGraph EaselGraph;
typedef struct _EaselTensor EaselTensor;

struct _EaselTensor {
  EaselDType dtype;
  int n_dims;
  gint64 shape[EASEL_MAX_DIMS];
  gint64 stride[EASEL_MAX_DIMS];    /* in elements */
  gint64 offset;                    /* elements from the start of the storage of `base` */
  EaselTensor *base;                /* the tensor that owns the storage (itself unless a view) */
  EaselOp op;
  EaselTensor *src[EASEL_MAX_SRC];
  gint32 ip[8];                     /* integer parameters, per op (graph.c says which) */
  float fp[4];                      /* float parameters */
  guint flags;                      /* EaselTensorFlags */
  const char *name;                 /* for errors and traces; owned by the graph */
  guint index;                      /* position in the graph */
  /* set by the backend */
  gsize arena_offset;               /* bytes, planned storage of non-leaf, non-view nodes */
  void *data;                       /* weights: the bound data; CPU backend: the storage after planning */
  const void *host;                 /* inputs: where compute reads them from */
};

EaselGraph *easel_graph_new (void);
void        easel_graph_free (EaselGraph *g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselGraph, easel_graph_free)
guint        easel_graph_n_nodes (const EaselGraph *g);
EaselTensor *easel_graph_node (const EaselGraph *g, guint i);

gint64   easel_tensor_numel (const EaselTensor *t);
gboolean easel_tensor_is_contiguous (const EaselTensor *t);
gsize    easel_tensor_nbytes (const EaselTensor *t);     /* numel × dtype size */
char    *easel_tensor_shape_str (const EaselTensor *t);  /* "[2, 4, 64, 64]"; transfer full */

/* Leaves. An input's data is set with the backend after planning; a weight is bound now. */
/* data (may be NULL until easel_graph_set_input) is read at compute time and must stay valid until then. */
EaselTensor *easel_graph_input (EaselGraph *g, const char *name, EaselDType dtype, int n_dims, const gint64 *shape,
                                const void *data);
void         easel_graph_set_input (EaselTensor *input, const void *data);
EaselTensor *easel_graph_weight (EaselGraph *g, const char *name, EaselDType dtype, int n_dims,
                                 const gint64 *shape, const void *data);
void         easel_graph_mark_output (EaselGraph *g, EaselTensor *t);

/* Views (no work). reshape needs a contiguous source. */
EaselTensor *easel_op_reshape (EaselGraph *g, EaselTensor *x, int n_dims, const gint64 *shape);
EaselTensor *easel_op_permute (EaselGraph *g, EaselTensor *x, const int *axes);
EaselTensor *easel_op_slice (EaselGraph *g, EaselTensor *x, int axis, gint64 start, gint64 length);
EaselTensor *easel_op_contiguous (EaselGraph *g, EaselTensor *x);

/* Computation. Weights may be F16/BF16/F32; activations are F32. b may be NULL. */
EaselTensor *easel_op_linear (EaselGraph *g, EaselTensor *x, EaselTensor *w, EaselTensor *b);
EaselTensor *easel_op_conv2d (EaselGraph *g, EaselTensor *x, EaselTensor *w, EaselTensor *b, int stride, int pad);
/* conv2d with `pad` zeros on every side plus extra_h more rows at the bottom and extra_w more
 * columns at the right: the VAE downsampler's F.pad (0, 1, 0, 1) + unpadded conv is pad 0, extra 1, 1. */
EaselTensor *easel_op_conv2d_ext (EaselGraph *g, EaselTensor *x, EaselTensor *w, EaselTensor *b, int stride, int pad,
                                  int extra_h, int extra_w);
EaselTensor *easel_op_group_norm (EaselGraph *g, EaselTensor *x, EaselTensor *gamma, EaselTensor *beta,
                                  int groups, float eps, gboolean silu);
EaselTensor *easel_op_layer_norm (EaselGraph *g, EaselTensor *x, EaselTensor *gamma, EaselTensor *beta, float eps);
EaselTensor *easel_op_unary (EaselGraph *g, EaselUnary kind, EaselTensor *x);
EaselTensor *easel_op_binary (EaselGraph *g, EaselBinary kind, EaselTensor *a, EaselTensor *b);
EaselTensor *easel_op_scale (EaselGraph *g, EaselTensor *x, float s);
EaselTensor *easel_op_geglu (EaselGraph *g, EaselTensor *x);
/* q (B, Lq, H·d), k and v (B, Lk, H·d), any strides along L and batch, unit stride within a row:
 * -> (B, Lq, H·d). scale is usually 1/sqrt(d). */
EaselTensor *easel_op_attention (EaselGraph *g, EaselTensor *q, EaselTensor *k, EaselTensor *v,
                                 int heads, float scale, gboolean causal);
EaselTensor *easel_op_upsample_nearest (EaselGraph *g, EaselTensor *x, gint64 out_h, gint64 out_w);
EaselTensor *easel_op_concat (EaselGraph *g, EaselTensor *a, EaselTensor *b, int axis);
EaselTensor *easel_op_timestep_embedding (EaselGraph *g, EaselTensor *t, int dim);
EaselTensor *easel_op_get_rows (EaselGraph *g, EaselTensor *table, EaselTensor *ids);

/* Shorthands used throughout the model code. */
#define easel_op_add(g, a, b)  easel_op_binary ((g), EASEL_BINARY_ADD, (a), (b))
#define easel_op_mul(g, a, b)  easel_op_binary ((g), EASEL_BINARY_MUL, (a), (b))
#define easel_op_silu(g, x)    easel_op_unary ((g), EASEL_UNARY_SILU, (x))

/* Shape errors in model code do not abort: the first one is kept, later ops return placeholders,
 * and computing the graph fails with it. NULL when none. */
const GError *easel_graph_error (const EaselGraph *g);
/* Records an error found by model code (inputs of the wrong shape), kept like a shape error when
 * it is the first; returns a placeholder of like's shape so building can go on. */
EaselTensor *easel_graph_fail (EaselGraph *g, EaselTensor *like, const char *format, ...) G_GNUC_PRINTF (3, 4);

/* Floating-point operations of a node's matrix work (2·M·N·K for linear and conv2d, 4·B·H·Lq·Lk·d
 * for attention: the two products); 0 for every other op. Benchmarks sum it over a graph. */
double easel_tensor_flops (const EaselTensor *t);

/* Memory plan: assigns arena_offset to every computed node so that storage is reused after its
 * last reader; returns the arena size in bytes (alignment 64). Inputs get arena storage too. */
gsize easel_graph_plan (EaselGraph *g);

G_END_DECLS
