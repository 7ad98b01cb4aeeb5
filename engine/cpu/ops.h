/* engine/cpu/ops.h: the CPU backend's fp32 kernels, the operations a backend table will point at.
 *
 * Semantics are PyTorch's (torch.nn.functional), shapes in PyTorch order, all buffers contiguous
 * unless a stride argument says otherwise. Outputs come first, inputs are const, sizes are gint64.
 * Every kernel splits its work over the pool (thread ith of nth gets a contiguous range, pool.h);
 * matrix products go to OpenBLAS sgemm, one single-threaded call per thread share. Kernels do not
 * allocate: the ones that need scratch say how much (in floats, for a given thread count) and take
 * it as `work`, so a caller can plan it once with the activations. Elementwise kernels allow
 * y == x (in place); the others need y apart from their inputs. Shapes are the caller's to check
 * (these are backend internals, not an input boundary): wrong sizes are a g_return_if_fail. */
#pragma once

#include <glib.h>

#include "engine/cpu/pool.h"
#include "engine/dtype.h"

G_BEGIN_DECLS

/* --- matrix products ---------------------------------------------------------------------- */

/* nn.Linear: y (M, N) = x (M, K) · wᵀ + b; w (N, K) as checkpoints store it; b (N) or NULL. */
void easel_cpu_linear_f32 (EaselCpuPool *pool, float *y, const float *x, const float *w, const float *b,
                           gint64 M, gint64 N, gint64 K);

/* nn.Conv2d geometry (groups 1, dilation 1). Rows/columns of x before 0 (pad_h/pad_w of them) and
 * past the input read as zeros, so out_h/out_w larger than the symmetric size give asymmetric
 * trailing padding (the VAE's downsampler pads (0, 1, 0, 1) and convolves with pad 0). */
typedef struct {
  gint64 batch, c_in, h, w;        /* x (batch, c_in, h, w) */
  gint64 c_out, kh, kw;            /* weight (c_out, c_in, kh, kw), bias (c_out) */
  gint64 stride_h, stride_w;
  gint64 pad_h, pad_w;             /* zeros before the first row / column */
  gint64 out_h, out_w;             /* y (batch, c_out, out_h, out_w) */
} EaselCpuConv2d;

/* Fills c for symmetric padding: out = (in + 2 pad - k) / stride + 1. */
void  easel_cpu_conv2d_init      (EaselCpuConv2d *c, gint64 batch, gint64 c_in, gint64 h, gint64 w,
                                  gint64 c_out, gint64 kh, gint64 kw, gint64 stride, gint64 pad);
/* floats of `work` easel_cpu_conv2d_f32 needs on a pool of n_threads (easel_cpu_pool_get_n_threads);
 * 0 for 1x1 stride-1 convs. */
gsize easel_cpu_conv2d_workspace (const EaselCpuConv2d *c, int n_threads);
/* y (batch, c_out, out_h, out_w) = conv2d (x, weight, bias); bias may be NULL. im2col in blocks of
 * output columns (each thread's column buffer stays ~4 MiB whatever the image size) + sgemm;
 * 1x1 stride-1 unpadded convs are one sgemm per image. */
void  easel_cpu_conv2d_f32       (EaselCpuPool *pool, float *y, const float *x, const float *weight,
                                  const float *bias, const EaselCpuConv2d *c, float *work);

/* --- attention ---------------------------------------------------------------------------- */

/* softmax (Q Kᵀ · scale) V per (batch, head). Q, K, V and O are views of (batch, L, heads · d)
 * projection outputs: element (b, i, h, e) of Q is q[b · lq · ld_q + i · ld_q + h · d + e]
 * (ld_q >= heads · d, so a fused (B, L, 3 · C) QKV buffer works with ld = 3 C); likewise K, V with
 * lk rows and O with lq rows. causal: query i sees keys j <= i (CLIP's mask; needs lk >= lq).
 * Computed in blocks of query and key rows with an online softmax: memory does not grow with
 * lq · lk. */
typedef struct {
  gint64 batch, heads, lq, lk, d;
  gint64 ld_q, ld_k, ld_v, ld_o;
  float scale;                     /* usually 1 / sqrt (d) */
  gboolean causal;
} EaselCpuAttention;

gsize easel_cpu_attention_workspace (const EaselCpuAttention *a, int n_threads);
void  easel_cpu_attention_f32       (EaselCpuPool *pool, float *o, const float *q, const float *k,
                                     const float *v, const EaselCpuAttention *a, float *work);

/* --- normalization and softmax ------------------------------------------------------------ */

/* nn.GroupNorm: y, x (N, C, HW); group g holds channels [g C/G, (g+1) C/G); biased variance;
 * gamma, beta (C) or NULL (no affine); silu: apply SiLU to the result (GroupNorm + SiLU fused). */
void easel_cpu_group_norm_f32 (EaselCpuPool *pool, float *y, const float *x, const float *gamma,
                               const float *beta, gint64 N, gint64 C, gint64 HW, gint64 G, float eps,
                               gboolean silu);
/* GroupNorm's halves: stats (N, G, 2) = each group's [mean, M2 (sum of squared deviations)] of x
 * (N, C, HW); apply: y = (x - mean) · rstd · gamma + beta (+ SiLU) with stats (N, G, 2) = [mean, rstd]. */
void easel_cpu_group_stats_f32 (EaselCpuPool *pool, float *stats, const float *x, gint64 N, gint64 C, gint64 HW,
                                gint64 G);
void easel_cpu_group_norm_apply_f32 (EaselCpuPool *pool, float *y, const float *x, const float *gamma,
                                     const float *beta, const float *stats, gint64 N, gint64 C, gint64 HW, gint64 G,
                                     gboolean silu);
/* nn.LayerNorm over the last dim: y, x (M, D); gamma, beta (D) or NULL. */
void easel_cpu_layer_norm_f32 (EaselCpuPool *pool, float *y, const float *x, const float *gamma,
                               const float *beta, gint64 M, gint64 D, float eps);
/* softmax over each row: y, x (M, D). */
void easel_cpu_softmax_f32    (EaselCpuPool *pool, float *y, const float *x, gint64 M, gint64 D);

/* --- elementwise -------------------------------------------------------------------------- */

typedef enum {
  EASEL_CPU_SILU,         /* x · sigmoid (x) */
  EASEL_CPU_GELU,         /* 0.5 x (1 + erf (x / sqrt 2)), torch's default */
  EASEL_CPU_GELU_TANH,    /* gelu (approximate='tanh') */
  EASEL_CPU_QUICK_GELU,   /* x · sigmoid (1.702 x), CLIP's quick_gelu */
  EASEL_CPU_RELU,         /* max (x, 0) */
} EaselCpuUnaryOp;

/* y, x (n) */
void easel_cpu_unary_f32 (EaselCpuPool *pool, EaselCpuUnaryOp op, float *y, const float *x, gint64 n);
/* diffusers GEGLU after its projection: y (M, F) = x[:, :F] · gelu (x[:, F:]); x (M, 2F). */
void easel_cpu_geglu_f32 (EaselCpuPool *pool, float *y, const float *x, gint64 M, gint64 F);

typedef enum {
  EASEL_CPU_ADD,
  EASEL_CPU_MUL,
} EaselCpuBinaryOp;

/* y, a (N, C, HW) op b, with b[n · b_stride_n + c] broadcast over HW: b (N, C, 1, 1) when
 * b_stride_n == C, (1, C, 1, 1) when 0. Covers the other shapes too: a (M, D) op row vector b (D)
 * is N = M, C = D, HW = 1, b_stride_n = 0; same-shape a op b of n elements is N = 1, C = n,
 * HW = 1. y == a allowed. */
void easel_cpu_binary_f32 (EaselCpuPool *pool, EaselCpuBinaryOp op, float *y, const float *a, const float *b,
                           gint64 N, gint64 C, gint64 HW, gint64 b_stride_n);

/* --- resampling, concatenation, embeddings ------------------------------------------------ */

/* F.interpolate (mode='nearest'): y (N, C, oh, ow) from x (N, C, h, w); source row
 * min (floor (i · (h / oh)), h - 1) with the scale computed in float as torch does; 2x is i / 2. */
void easel_cpu_resize_nearest_f32 (EaselCpuPool *pool, float *y, const float *x, gint64 N, gint64 C,
                                   gint64 h, gint64 w, gint64 oh, gint64 ow);
/* torch.cat ((a, b), dim=1): y (N, ca + cb, HW) from a (N, ca, HW), b (N, cb, HW). */
void easel_cpu_concat_channels_f32 (EaselCpuPool *pool, float *y, const float *a, const float *b,
                                    gint64 N, gint64 ca, gint64 cb, gint64 HW);
/* diffusers get_timestep_embedding (flip_sin_to_cos=True, downscale_freq_shift=0, max_period 10000):
 * y (N, dim) = [cos (t f) | sin (t f)], f_i = exp (-ln (10000) · i / half), half = dim / 2; an odd
 * dim ends with a 0 column. t (N), float (fractional timesteps allowed). */
void easel_cpu_timestep_embedding_f32 (float *y, const float *t, gint64 N, gint64 dim);

/* --- weights --------------------------------------------------------------------------------- */

/* dst (n) = src (n elements of dtype) as fp32, split over the pool; F16 uses F16C where present. */
void easel_cpu_convert_to_f32 (EaselCpuPool *pool, EaselDType dtype, const void *src, float *dst, gint64 n);

G_END_DECLS
