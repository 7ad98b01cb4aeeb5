/* engine/cpu/elementwise.c: activations, broadcast add/mul, nearest resize, channel concat and the
 * sinusoidal timestep embedding, fp32, CPU; semantics of torch.nn.functional and diffusers.
 *
 * Activations use vmath.h's vectorizable exp/erf (relative error < 4e-7) instead of libm's scalar
 * ones; everything else is copies and one multiply-add per element, split over the pool. */
#include "engine/cpu/ops.h"

#include <math.h>
#include <string.h>

#include "engine/cpu/vmath.h"

/* elements per thread below which waking a worker costs more than it saves */
#define MIN_ELEMS 16384

/* --- unary activations -------------------------------------------------------------------- */

typedef struct {
  EaselCpuUnaryOp op;
  float *y;
  const float *x;
  gint64 F;           /* geglu: output width */
} UnaryJob;

static EASEL_CPU_SIMD void
unary_span (EaselCpuUnaryOp op, float *y, const float *x, gint64 n)
{
  switch (op) {
  case EASEL_CPU_SILU:
    EASEL_CPU_VECTOR
    for (gint64 i = 0; i < n; i++)
      y[i] = x[i] * easel_vsigmoid (x[i]);
    break;
  case EASEL_CPU_GELU:
    EASEL_CPU_VECTOR
    for (gint64 i = 0; i < n; i++)
      y[i] = easel_vgelu (x[i]);
    break;
  case EASEL_CPU_GELU_TANH:
    EASEL_CPU_VECTOR
    for (gint64 i = 0; i < n; i++)
      y[i] = easel_vgelu_tanh (x[i]);
    break;
  case EASEL_CPU_QUICK_GELU:
    EASEL_CPU_VECTOR
    for (gint64 i = 0; i < n; i++)
      y[i] = x[i] * easel_vsigmoid (1.702f * x[i]);
    break;
  case EASEL_CPU_RELU:
    EASEL_CPU_VECTOR
    for (gint64 i = 0; i < n; i++)
      y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    break;
  default:
    g_assert_not_reached ();
  }
}

static void
unary_range (gint64 begin, gint64 end, int ith, gpointer data)
{
  const UnaryJob *j = data;
  unary_span (j->op, j->y + begin, j->x + begin, end - begin);
}

void
easel_cpu_unary_f32 (EaselCpuPool *pool, EaselCpuUnaryOp op, float *y, const float *x, gint64 n)
{
  g_return_if_fail (pool && y && x && n >= 0);
  g_return_if_fail (op == EASEL_CPU_SILU || op == EASEL_CPU_GELU || op == EASEL_CPU_GELU_TANH
                    || op == EASEL_CPU_QUICK_GELU || op == EASEL_CPU_RELU);
  UnaryJob j = { op, y, x, 0 };
  easel_cpu_pool_run (pool, n, MIN_ELEMS, unary_range, &j);
}

static EASEL_CPU_SIMD void
geglu_row (float *y, const float *h, const float *gate, gint64 F)
{
  EASEL_CPU_VECTOR
  for (gint64 i = 0; i < F; i++)
    y[i] = h[i] * easel_vgelu (gate[i]);
}

static void
geglu_range (gint64 begin, gint64 end, int ith, gpointer data)
{
  const UnaryJob *j = data;
  for (gint64 r = begin; r < end; r++)
    geglu_row (j->y + r * j->F, j->x + r * 2 * j->F, j->x + r * 2 * j->F + j->F, j->F);
}

void
easel_cpu_geglu_f32 (EaselCpuPool *pool, float *y, const float *x, gint64 M, gint64 F)
{
  g_return_if_fail (pool && y && x && M >= 0 && F >= 1);
  UnaryJob j = { EASEL_CPU_GELU, y, x, F };
  easel_cpu_pool_run (pool, M, MAX (MIN_ELEMS / F, 1), geglu_range, &j);
}

/* --- broadcast add / mul ------------------------------------------------------------------ */

typedef struct {
  EaselCpuBinaryOp op;
  float *y;
  const float *a, *b;
  gint64 C, HW, b_stride_n;
} BinaryJob;

/* y (n) = a (n) op s */
static EASEL_CPU_SIMD void
binary_scalar (EaselCpuBinaryOp op, float *y, const float *a, float s, gint64 n)
{
  if (op == EASEL_CPU_ADD) {
    EASEL_CPU_VECTOR
    for (gint64 i = 0; i < n; i++)
      y[i] = a[i] + s;
  } else {
    EASEL_CPU_VECTOR
    for (gint64 i = 0; i < n; i++)
      y[i] = a[i] * s;
  }
}

/* y (n) = a (n) op b (n) */
static EASEL_CPU_SIMD void
binary_vector (EaselCpuBinaryOp op, float *y, const float *a, const float *b, gint64 n)
{
  if (op == EASEL_CPU_ADD) {
    EASEL_CPU_VECTOR
    for (gint64 i = 0; i < n; i++)
      y[i] = a[i] + b[i];
  } else {
    EASEL_CPU_VECTOR
    for (gint64 i = 0; i < n; i++)
      y[i] = a[i] * b[i];
  }
}

/* HW > 1: tasks are (n, c) rows of HW values, each with one b value */
static void
binary_rows (gint64 begin, gint64 end, int ith, gpointer data)
{
  const BinaryJob *j = data;
  for (gint64 r = begin; r < end; r++) {
    gint64 n = r / j->C, c = r % j->C;
    binary_scalar (j->op, j->y + r * j->HW, j->a + r * j->HW, j->b[n * j->b_stride_n + c], j->HW);
  }
}

/* HW == 1: tasks are elements of (N, C); b's row n runs along with a's */
static void
binary_flat (gint64 begin, gint64 end, int ith, gpointer data)
{
  const BinaryJob *j = data;
  for (gint64 i = begin; i < end;) {
    gint64 n = i / j->C, c = i % j->C;
    gint64 len = MIN (j->C - c, end - i);
    binary_vector (j->op, j->y + i, j->a + i, j->b + n * j->b_stride_n + c, len);
    i += len;
  }
}

void
easel_cpu_binary_f32 (EaselCpuPool *pool, EaselCpuBinaryOp op, float *y, const float *a, const float *b,
                      gint64 N, gint64 C, gint64 HW, gint64 b_stride_n)
{
  g_return_if_fail (pool && y && a && b && N >= 0 && C >= 1 && HW >= 1 && b_stride_n >= 0);
  g_return_if_fail (op == EASEL_CPU_ADD || op == EASEL_CPU_MUL);
  BinaryJob j = { op, y, a, b, C, HW, b_stride_n };
  if (HW == 1)
    easel_cpu_pool_run (pool, N * C, MIN_ELEMS, binary_flat, &j);
  else
    easel_cpu_pool_run (pool, N * C, MAX (MIN_ELEMS / HW, 1), binary_rows, &j);
}

/* --- nearest resize ----------------------------------------------------------------------- */

/* torch's nearest_idx (aten/src/ATen/native/UpSample.h): same size -> i, 2x -> i / 2, else
 * min (floor (i · (float) (in / out)), in - 1), all in float */
static inline gint64
nearest_src (gint64 i, gint64 in, gint64 out)
{
  if (out == in)
    return i;
  if (out == 2 * in)
    return i >> 1;
  float scale = (float) in / (float) out;
  return MIN ((gint64) floorf ((float) i * scale), in - 1);
}

typedef struct {
  float *y;
  const float *x;
  gint64 h, w, oh, ow;
} ResizeJob;

/* tasks are output rows of all (N, C) planes */
static void
resize_range (gint64 begin, gint64 end, int ith, gpointer data)
{
  const ResizeJob *j = data;
  for (gint64 r = begin; r < end; r++) {
    gint64 plane = r / j->oh, oy = r % j->oh;
    const float *src = j->x + (plane * j->h + nearest_src (oy, j->h, j->oh)) * j->w;
    float *dst = j->y + r * j->ow;
    if (j->ow == 2 * j->w) {
      for (gint64 ox = 0; ox < j->w; ox++)
        dst[2 * ox] = dst[2 * ox + 1] = src[ox];
    } else {
      for (gint64 ox = 0; ox < j->ow; ox++)
        dst[ox] = src[nearest_src (ox, j->w, j->ow)];
    }
  }
}

void
easel_cpu_resize_nearest_f32 (EaselCpuPool *pool, float *y, const float *x, gint64 N, gint64 C,
                              gint64 h, gint64 w, gint64 oh, gint64 ow)
{
  g_return_if_fail (pool && y && x && N >= 0 && C >= 0 && h >= 1 && w >= 1 && oh >= 1 && ow >= 1);
  ResizeJob j = { y, x, h, w, oh, ow };
  easel_cpu_pool_run (pool, N * C * oh, MAX (MIN_ELEMS / ow, 1), resize_range, &j);
}

/* --- concat ------------------------------------------------------------------------------- */

typedef struct {
  float *y;
  const float *a, *b;
  gint64 ca, cb, HW;
} ConcatJob;

/* tasks are output channel rows (n, c) of HW values */
static void
concat_range (gint64 begin, gint64 end, int ith, gpointer data)
{
  const ConcatJob *j = data;
  const gint64 ct = j->ca + j->cb;
  for (gint64 r = begin; r < end;) {
    gint64 n = r / ct, c = r % ct;
    const float *src;
    gint64 len;
    if (c < j->ca) {
      src = j->a + (n * j->ca + c) * j->HW;
      len = MIN (j->ca - c, end - r);
    } else {
      src = j->b + (n * j->cb + c - j->ca) * j->HW;
      len = MIN (ct - c, end - r);
    }
    memcpy (j->y + r * j->HW, src, sizeof (float) * len * j->HW);
    r += len;
  }
}

void
easel_cpu_concat_channels_f32 (EaselCpuPool *pool, float *y, const float *a, const float *b,
                               gint64 N, gint64 ca, gint64 cb, gint64 HW)
{
  g_return_if_fail (pool && y && (a || ca == 0) && (b || cb == 0) && N >= 0 && ca >= 0 && cb >= 0 && HW >= 1);
  ConcatJob j = { y, a, b, ca, cb, HW };
  easel_cpu_pool_run (pool, N * (ca + cb), MAX (4 * MIN_ELEMS / HW, 1), concat_range, &j);
}

/* --- timestep embedding ------------------------------------------------------------------- */

void
easel_cpu_timestep_embedding_f32 (float *y, const float *t, gint64 N, gint64 dim)
{
  g_return_if_fail (y && t && N >= 0 && dim >= 0);
  const gint64 half = dim / 2;
  for (gint64 n = 0; n < N; n++) {
    float *row = y + n * dim;
    for (gint64 i = 0; i < half; i++) {
      /* float32 steps as diffusers runs them: exponent = -ln (10000) · i / half, freq = exp, arg = t · freq */
      float exponent = (float) -log (10000.0) * (float) i / (float) half;
      float arg = t[n] * expf (exponent);
      row[i] = (float) cos ((double) arg);
      row[half + i] = (float) sin ((double) arg);
    }
    if (dim % 2)
      row[dim - 1] = 0.0f;
  }
}
