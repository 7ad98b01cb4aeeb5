/* engine/cpu/norm.c: GroupNorm (+ fused SiLU), LayerNorm and row softmax, fp32, CPU.
 *
 * Semantics of torch.nn.GroupNorm / LayerNorm (biased variance, eps inside the square root) and
 * torch.softmax. Statistics: GroupNorm groups reach millions of elements (VAE at 1024²: 4 channels
 * x 1 Mi pixels), so sums run in float over SIMD lanes for STAT_CHUNK elements and are added into
 * double, around a shift (the group's first value) that keeps sum of squares from cancelling.
 * LayerNorm rows are short (<= 1280): the same shifted mean, then the variance of the centered
 * values, in float lanes. GroupNorm also comes in halves (statistics as mean and M2, then
 * normalization with given mean and rstd) for statistics gathered across graphs. Both normalize as ((x - shift) - dm) · a + b, never subtracting a rounded
 * mean from x. */
#include "engine/cpu/ops.h"

#include <math.h>

#include "engine/cpu/vmath.h"

#define STAT_CHUNK 4096

/* sums of (x - shift) and (x - shift)² over n values, float lanes into double */
static EASEL_CPU_SIMD void
shifted_sums (const float *x, gint64 n, float shift, double *s1, double *s2)
{
  double a1 = 0.0, a2 = 0.0;
  for (gint64 i0 = 0; i0 < n; i0 += STAT_CHUNK) {
    gint64 m = MIN (STAT_CHUNK, n - i0);
    const float *p = x + i0;
    float f1 = 0.0f, f2 = 0.0f;
    EASEL_CPU_PRAGMA (omp simd reduction (+ : f1, f2))
    for (gint64 i = 0; i < m; i++) {
      float d = p[i] - shift;
      f1 += d;
      f2 += d * d;
    }
    a1 += f1;
    a2 += f2;
  }
  *s1 = a1;
  *s2 = a2;
}

/* y = ((x - shift) - dm) · a + b (+ SiLU) over n values: the mean is shift + dm, kept in two
 * parts so a mean far from zero costs no precision (x - shift is exact near the mean) */
static EASEL_CPU_SIMD void
scale_shift (float *y, const float *x, gint64 n, float shift, float dm, float a, float b, gboolean silu)
{
  if (silu) {
    EASEL_CPU_VECTOR
    for (gint64 i = 0; i < n; i++) {
      float v = ((x[i] - shift) - dm) * a + b;
      y[i] = v * easel_vsigmoid (v);
    }
  } else {
    EASEL_CPU_VECTOR
    for (gint64 i = 0; i < n; i++)
      y[i] = ((x[i] - shift) - dm) * a + b;
  }
}

typedef struct {
  float *y;
  const float *x, *gamma, *beta;
  gint64 C, HW, G;
  float eps;
  gboolean silu;
} GroupNormJob;

/* Moments of a group's n values: mean = shift + dm (shift = x[0]), M2 = sum of (x - mean)². */
static void
group_moments (const float *x, gint64 n, float *shift, double *dm, double *m2)
{
  double s1, s2;
  *shift = x[0];
  shifted_sums (x, n, *shift, &s1, &s2);
  *dm = s1 / (double) n;
  *m2 = MAX (s2 - s1 * *dm, 0.0);
}

static void
group_norm_range (gint64 begin, gint64 end, int ith, gpointer data)
{
  const GroupNormJob *j = data;
  const gint64 cg = j->C / j->G, len = cg * j->HW;
  for (gint64 t = begin; t < end; t++) {   /* t = n · G + g; the group's channels are contiguous */
    const float *x = j->x + t * len;
    float *y = j->y + t * len;
    double dm, m2;
    float shift;
    group_moments (x, len, &shift, &dm, &m2);
    double rstd = 1.0 / sqrt (m2 / (double) len + j->eps);
    gint64 c0 = t % j->G * cg;
    for (gint64 c = 0; c < cg; c++) {
      double a = rstd * (j->gamma ? j->gamma[c0 + c] : 1.0f);
      scale_shift (y + c * j->HW, x + c * j->HW, j->HW, shift, (float) dm, (float) a,
                   j->beta ? j->beta[c0 + c] : 0.0f, j->silu);
    }
  }
}

void
easel_cpu_group_norm_f32 (EaselCpuPool *pool, float *y, const float *x, const float *gamma,
                          const float *beta, gint64 N, gint64 C, gint64 HW, gint64 G, float eps,
                          gboolean silu)
{
  g_return_if_fail (pool && y && x && N >= 0 && C >= 1 && HW >= 1 && G >= 1 && C % G == 0);
  GroupNormJob j = { y, x, gamma, beta, C, HW, G, eps, silu };
  easel_cpu_pool_run (pool, N * G, MAX (65536 / (C / G * HW), 1), group_norm_range, &j);
}

/* --- GroupNorm in halves: statistics, then normalization with given statistics ---------- */

typedef struct {
  float *out;                 /* stats: (N, G, 2) [mean, M2]; apply: y */
  const float *x, *gamma, *beta, *stats;
  gint64 C, HW, G;
  gboolean silu;
} GroupHalfJob;

static void
group_stats_range (gint64 begin, gint64 end, int ith, gpointer data)
{
  const GroupHalfJob *j = data;
  const gint64 len = j->C / j->G * j->HW;
  for (gint64 t = begin; t < end; t++) {
    double dm, m2;
    float shift;
    group_moments (j->x + t * len, len, &shift, &dm, &m2);
    j->out[2 * t] = (float) (shift + dm);
    j->out[2 * t + 1] = (float) m2;
  }
}

void
easel_cpu_group_stats_f32 (EaselCpuPool *pool, float *stats, const float *x, gint64 N, gint64 C, gint64 HW, gint64 G)
{
  g_return_if_fail (pool && stats && x && N >= 0 && C >= 1 && HW >= 1 && G >= 1 && C % G == 0);
  GroupHalfJob j = { stats, x, NULL, NULL, NULL, C, HW, G, FALSE };
  easel_cpu_pool_run (pool, N * G, MAX (65536 / (C / G * HW), 1), group_stats_range, &j);
}

static void
group_apply_range (gint64 begin, gint64 end, int ith, gpointer data)
{
  const GroupHalfJob *j = data;
  const gint64 cg = j->C / j->G;
  for (gint64 t = begin; t < end; t++) {   /* t = n · C + c */
    const gint64 c = t % j->C, s = t / j->C * j->G + c / cg;
    const float a = j->stats[2 * s + 1] * (j->gamma ? j->gamma[c] : 1.0f);
    scale_shift (j->out + t * j->HW, j->x + t * j->HW, j->HW, j->stats[2 * s], 0.0f, a,
                 j->beta ? j->beta[c] : 0.0f, j->silu);
  }
}

void
easel_cpu_group_norm_apply_f32 (EaselCpuPool *pool, float *y, const float *x, const float *gamma,
                                const float *beta, const float *stats, gint64 N, gint64 C, gint64 HW, gint64 G,
                                gboolean silu)
{
  g_return_if_fail (pool && y && x && stats && N >= 0 && C >= 1 && HW >= 1 && G >= 1 && C % G == 0);
  GroupHalfJob j = { y, x, gamma, beta, stats, C, HW, G, silu };
  easel_cpu_pool_run (pool, N * C, MAX (65536 / HW, 1), group_apply_range, &j);
}

/* --- layer norm --------------------------------------------------------------------------- */

typedef struct {
  float *y;
  const float *x, *gamma, *beta;
  gint64 D;
  float eps;
} LayerNormJob;

static EASEL_CPU_SIMD void
layer_norm_row (float *y, const float *x, const float *gamma, const float *beta, gint64 D, float eps)
{
  /* mean = x[0] + dm, as in group_norm_range; the variance from the centered values */
  const float shift = x[0];
  float s = 0.0f;
  EASEL_CPU_VECTOR_REDUCE (+, s)
  for (gint64 i = 0; i < D; i++)
    s += x[i] - shift;
  const float dm = s / (float) D;
  float v = 0.0f;
  EASEL_CPU_VECTOR_REDUCE (+, v)
  for (gint64 i = 0; i < D; i++)
    v += ((x[i] - shift) - dm) * ((x[i] - shift) - dm);
  const float rstd = 1.0f / sqrtf (v / (float) D + eps);
  if (gamma && beta) {
    EASEL_CPU_VECTOR
    for (gint64 i = 0; i < D; i++)
      y[i] = ((x[i] - shift) - dm) * rstd * gamma[i] + beta[i];
  } else {
    for (gint64 i = 0; i < D; i++)
      y[i] = ((x[i] - shift) - dm) * rstd * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
  }
}

static void
layer_norm_range (gint64 begin, gint64 end, int ith, gpointer data)
{
  const LayerNormJob *j = data;
  for (gint64 r = begin; r < end; r++)
    layer_norm_row (j->y + r * j->D, j->x + r * j->D, j->gamma, j->beta, j->D, j->eps);
}

void
easel_cpu_layer_norm_f32 (EaselCpuPool *pool, float *y, const float *x, const float *gamma,
                          const float *beta, gint64 M, gint64 D, float eps)
{
  g_return_if_fail (pool && y && x && M >= 0 && D >= 1);
  LayerNormJob j = { y, x, gamma, beta, D, eps };
  easel_cpu_pool_run (pool, M, MAX (16384 / D, 1), layer_norm_range, &j);
}

/* --- softmax ------------------------------------------------------------------------------ */

typedef struct {
  float *y;
  const float *x;
  gint64 D;
} SoftmaxJob;

static EASEL_CPU_SIMD void
softmax_row (float *y, const float *x, gint64 D)
{
  float m = -INFINITY;
  EASEL_CPU_VECTOR_REDUCE (max, m)
  for (gint64 i = 0; i < D; i++)
    m = x[i] > m ? x[i] : m;
  float s = 0.0f;
  EASEL_CPU_VECTOR_REDUCE (+, s)
  for (gint64 i = 0; i < D; i++) {
    y[i] = easel_vexp (x[i] - m);
    s += y[i];
  }
  float inv = 1.0f / s;
  EASEL_CPU_VECTOR
  for (gint64 i = 0; i < D; i++)
    y[i] *= inv;
}

static void
softmax_range (gint64 begin, gint64 end, int ith, gpointer data)
{
  const SoftmaxJob *j = data;
  for (gint64 r = begin; r < end; r++)
    softmax_row (j->y + r * j->D, j->x + r * j->D, j->D);
}

void
easel_cpu_softmax_f32 (EaselCpuPool *pool, float *y, const float *x, gint64 M, gint64 D)
{
  g_return_if_fail (pool && y && x && M >= 0 && D >= 1);
  SoftmaxJob j = { y, x, D };
  easel_cpu_pool_run (pool, M, MAX (16384 / D, 1), softmax_range, &j);
}
