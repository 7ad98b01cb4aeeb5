/* engine/cpu/vmath.h: branch-free float math that gcc vectorizes, for the CPU kernels' inner loops.
 *
 * libm's expf/erff are exact but scalar (no vector variant without -ffast-math), and attention
 * alone calls exp heads · Lq · Lk times (134 M for SD 1.5 at 512²). These forms run in SIMD lanes.
 * Accuracy against double, measured by tests/test-cpu-ops.c over [-90, 90]:
 *   easel_vexp: relative error < 4e-7 on [-87, 88]; saturates at exp(-87.3) ~ 1e-38 and exp(88.37).
 *   easel_verfc_pos: Abramowitz & Stegun 7.1.26, absolute error < 2e-7 (erfc (z) for z >= 0).
 * EASEL_CPU_SIMD marks a hot function for an extra AVX2 clone chosen at load time (x86-64 gcc, by
 * the CPU's features: "arch=haswell" would check the CPU model and never match an AMD Zen);
 * every other target compiles the plain function. The loops vectorize with -fopenmp-simd and
 * -fno-trapping-math (engine/meson.build sets both for engine/cpu/). */
#pragma once

#include <glib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define EASEL_CPU_SIMD __attribute__ ((target_clones ("avx2", "default")))
#else
#define EASEL_CPU_SIMD
#endif

/* forced, or gcc keeps these out of line in the AVX2 clones (a default-target callee) */
#if defined(__GNUC__)
#define EASEL_CPU_INLINE static inline __attribute__ ((always_inline))
#else
#define EASEL_CPU_INLINE static inline
#endif

#define EASEL_CPU_PRAGMA(x) _Pragma (#x)
/* vectorize this loop (reductions included) without -ffast-math; needs -fopenmp-simd */
#define EASEL_CPU_VECTOR EASEL_CPU_PRAGMA (omp simd)
#define EASEL_CPU_VECTOR_REDUCE(op, var) EASEL_CPU_PRAGMA (omp simd reduction (op : var))

EASEL_CPU_INLINE float
easel_vexp (float x)
{
  /* exp (x) = 2^n · e^r, n = round (x / ln 2), r = x - n ln 2 in two parts (Cody-Waite); e^r by its
   * degree-6 Taylor polynomial on |r| <= ln2 / 2 (truncation < 1.2e-7 relative). */
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.37f ? 88.37f : x;
  float t = x * 1.44269504f;
  float n = (t + 12582912.0f) - 12582912.0f;   /* round to nearest: 1.5 · 2^23 (no -ffast-math here) */
  int ni = (int) n;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  guint32 bits = (guint32) (ni + 127) << 23;
  float scale;
  memcpy (&scale, &bits, sizeof scale);    /* a bit cast the vectorizer sees through */
  return p * scale;
}

/* erfc (z) for z >= 0 (A&S 7.1.26); 1 + erf (x) = x >= 0 ? 2 - erfc (x) : erfc (-x) */
EASEL_CPU_INLINE float
easel_verfc_pos (float z)
{
  float t = 1.0f / (1.0f + 0.3275911f * z);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  return p * t * easel_vexp (-z * z);
}

EASEL_CPU_INLINE float
easel_vsigmoid (float x)
{
  return 1.0f / (1.0f + easel_vexp (-x));
}

/* torch.nn.functional.gelu (approximate='none'): 0.5 x (1 + erf (x / sqrt 2)) */
EASEL_CPU_INLINE float
easel_vgelu (float x)
{
  float ax = x < 0.0f ? -x : x;
  float c = easel_verfc_pos (ax * 0.70710678f);
  return 0.5f * x * (x < 0.0f ? c : 2.0f - c);
}

/* torch gelu (approximate='tanh'): 0.5 x (1 + tanh (u)), u = sqrt (2/pi) (x + 0.044715 x^3);
 * 0.5 (1 + tanh u) = sigmoid (2u), which has no cancellation */
EASEL_CPU_INLINE float
easel_vgelu_tanh (float x)
{
  float u = 0.7978845608f * (x + 0.044715f * x * x * x);
  return x / (1.0f + easel_vexp (-2.0f * u));
}
