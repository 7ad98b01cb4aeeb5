/* engine/rng.c: torch.manual_seed(seed) + torch.randn(n), float32, on PyTorch's two default
 * generators, written from PyTorch's and curand's documented behaviour (no code taken from them).
 *
 * CPU (ATen's CPUGeneratorImpl, what ComfyUI uses):
 *   - MT19937 (Matsumoto & Nishimura), seeded with the low 32 bits of the seed.
 *   - uniform float  = (u32 & (2^24 - 1)) * 2^-24            one MT output
 *   - uniform double = (u64 & (2^53 - 1)) * 2^-53            u64 = first output << 32 | second
 *   - n >= 16 (ATen's normal_fill_AVX2, the kernel x86 builds of torch run; the reference data
 *     shows it): first n uniform floats fill out[]; then each block of 16 is turned, in place,
 *     into 8 Box-Muller pairs in float: for j < 8,
 *       r = sqrtf (-2 log (1 - out[j])), theta = 2pi_f * out[j + 8],
 *       out[j] = r cos (theta), out[j + 8] = r sin (theta),
 *     with log and sincos being the Cephes single-precision polynomials of avx_mathfun.h,
 *     evaluated with the fused multiply-adds GCC forms from them; when n % 16 != 0 the last 16
 *     slots are refilled with 16 fresh uniforms and redone. (Builds without AVX2 use libm's
 *     logf/cosf/sinf instead and differ in the last bits; that variant is not reproduced.)
 *   - n < 16 (ATen's at::normal_distribution<double>): per value, in double, two uniforms
 *     u1, u2 give r = sqrt (-2 log1p (-u2)), theta = 2 pi u1; the value is r cos (theta) and
 *     r sin (theta) is kept in the generator and returned by the next scalar draw (also in a
 *     later call), until the next manual_seed.
 *
 * CUDA (ATen's CUDAGeneratorImpl + distribution_nullary_kernel, what A1111 uses by default):
 *   - Philox4x32-10 keyed by the 64-bit seed; one curand state per thread: counter (128 bits,
 *     little-endian words x, y, z, w) = (offset / 4 + iteration) in (x, y), thread id in (z, w).
 *   - The kernel runs blocks of 256 threads, grid = min (ceil (n / 256), SMs * (max threads
 *     per SM / 256)), S = 256 * grid threads in all. Each loop iteration a thread draws one
 *     curand_normal4 (4 normals from one Philox block) and writes element
 *     i = iteration * 4S + k * S + thread for k = 0..3 (those below n).
 *   - curand's Box-Muller on a pair of words (a, b): u = a 2^-32 + 2^-33, v = b 2pi 2^-32 +
 *     pi 2^-32 (one fma), s = sqrtf (-2 logf (u)); normals sin (v) s, cos (v) s, where logf is
 *     CUDA's (reproduced exactly) and sin/cos are __sincosf, the GPU's approximate hardware
 *     functions: reproduced up to their error (|error| <= 5.75 * 2^-24 before scaling by s), so
 *     about half the values are exact or within 1 ulp and the rest within 7 * 2^-21.
 *   - Each call advances the generator's offset by 4 * ceil (n / 4S).
 *   When n <= S every element i is the first normal of thread i's first Philox block, so the
 *   values do not depend on the GPU; the grid cap only matters for n > 256 * SMs *
 *   (threads per SM / 256): on an H100 SXM (132 SMs, 2048 threads) beyond 270336 values, on a
 *   GPU with 28 SMs and 1536 threads (RTX 3060) beyond 43008, i.e. already for one SDXL latent
 *   (4 x 128 x 128 = 65536). easel_rng_set_cuda_device () selects a GPU; the default has no cap.
 */
#include "rng.h"

#include <math.h>
#include <string.h>

/* The float kernels lean on fmaf: without FMA in the baseline ISA it is a libm call, so on x86-64
 * they are also built for FMA hardware and picked at load time. Results are identical either way
 * (fmaf is exact by definition, and no other expression here has a contractible a * b + c). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define EASEL_FMA_CLONES __attribute__ ((target_clones ("fma", "default")))
#else
#define EASEL_FMA_CLONES
#endif

#define MT_N 624
#define MT_M 397

struct _EaselRng {
  EaselRngKind kind;
  guint64 seed;

  /* CPU: MT19937 state; mt_next == MT_N means "regenerate before the next output" */
  guint32 mt[MT_N];
  guint mt_next;
  gboolean have_cached_normal;   /* the scalar path's second Box-Muller value */
  double cached_normal;

  /* CUDA */
  guint64 philox_offset;         /* in 32-bit words per thread; a multiple of 4 */
  guint64 cuda_threads_max;      /* 256 * SMs * (threads per SM / 256); 0: no cap */
};

/* --- MT19937 --------------------------------------------------------------------------------- */

static void
mt_seed (EaselRng *rng, guint32 s)
{
  rng->mt[0] = s;
  for (guint i = 1; i < MT_N; i++)
    rng->mt[i] = 1812433253u * (rng->mt[i - 1] ^ (rng->mt[i - 1] >> 30)) + i;
  rng->mt_next = MT_N;
}

static inline guint32
mt_twist (guint32 a, guint32 b, guint32 c)
{
  guint32 y = (a & 0x80000000u) | (b & 0x7fffffffu);
  return c ^ (y >> 1) ^ ((b & 1u) ? 0x9908b0dfu : 0u);
}

static void
mt_regenerate (guint32 *mt)
{
  guint i = 0;
  for (; i < MT_N - MT_M; i++)
    mt[i] = mt_twist (mt[i], mt[i + 1], mt[i + MT_M]);
  for (; i < MT_N - 1; i++)
    mt[i] = mt_twist (mt[i], mt[i + 1], mt[i + MT_M - MT_N]);
  mt[MT_N - 1] = mt_twist (mt[MT_N - 1], mt[0], mt[MT_M - 1]);
}

static inline guint32
mt_next (EaselRng *rng)
{
  guint32 y;
  if (G_UNLIKELY (rng->mt_next >= MT_N)) {
    mt_regenerate (rng->mt);
    rng->mt_next = 0;
  }
  y = rng->mt[rng->mt_next++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

/* --- CPU normals ----------------------------------------------------------------------------- */

static inline float
cpu_uniform_float (EaselRng *rng)
{
  return (float) (mt_next (rng) & 0xffffffu) * (1.0f / 16777216.0f);
}

static inline double
cpu_uniform_double (EaselRng *rng)
{
  guint64 hi = mt_next (rng);
  guint64 lo = mt_next (rng);
  return (double) (((hi << 32) | lo) & ((G_GUINT64_CONSTANT (1) << 53) - 1)) * 0x1p-53;
}

/* a * b + c rounded once, as GCC contracts the AVX2 kernel's separate multiply and add */
#define MADD(a, b, c) fmaf ((a), (b), (c))

/* Cephes' logf (range reduction to [sqrt(1/2), sqrt(2)), degree-9 polynomial), in ATen's AVX2
 * operation order; x > 0 and normal (here x is in [2^-24, 1]). */
G_ALWAYS_INLINE static inline float
cephes_logf (float x)
{
  static const float p[9] = {
    7.0376836292e-2f, -1.1514610310e-1f, 1.1676998740e-1f, -1.2420140846e-1f, 1.4249322787e-1f,
    -1.6668057665e-1f, 2.0000714765e-1f, -2.4999993993e-1f, 3.3333331174e-1f,
  };
  guint32 bits;
  float m, e, y, z;

  memcpy (&bits, &x, sizeof bits);
  e = (float) ((gint32) (bits >> 23) - 0x7f) + 1.0f;
  bits = (bits & ~0x7f800000u) | 0x3f000000u;   /* mantissa in [0.5, 1) */
  memcpy (&m, &bits, sizeof m);
  if (m < 0.707106781186547524f) {
    e -= 1.0f;
    m = (m - 1.0f) + m;
  } else {
    m = m - 1.0f;
  }
  z = m * m;
  y = p[0];
  for (int i = 1; i < 9; i++)
    y = MADD (y, m, p[i]);
  y = y * m;
  y = MADD (y, z, e * -2.12194440e-4f);
  y = MADD (-z, 0.5f, y);
  return MADD (e, 0.693359375f, m + y);
}

/* Cephes' sinf and cosf together: octant j from x * 4/pi, three-part reduction by pi/4,
 * the sine and cosine polynomials swapped and negated by octant; accurate for |x| < 8192. */
G_ALWAYS_INLINE static inline void
cephes_sincosf (float x, float *s_out, float *c_out)
{
  float ax = fabsf (x), y, z, r, pc, ps, s, c;
  guint32 j;

  j = (guint32) (gint32) (ax * 1.27323954473516f);
  j = (j + 1) & ~1u;
  y = (float) (gint32) j;
  r = MADD (y, -0.78515625f, ax);
  r = MADD (y, -2.4187564849853515625e-4f, r);
  r = MADD (y, -3.77489497744594108e-8f, r);
  z = r * r;
  pc = MADD (2.443315711809948e-5f, z, -1.388731625493765e-3f);
  pc = MADD (pc, z, 4.166664568298827e-2f);
  pc = pc * z;
  pc = MADD (pc, z, -(z * 0.5f));
  pc = pc + 1.0f;
  ps = MADD (-1.9515295891e-4f, z, 8.3321608736e-3f);
  ps = MADD (ps, z, -1.6666654611e-1f);
  ps = ps * z;
  ps = MADD (ps, r, r);
  if (j & 2) {
    s = pc;
    c = ps;
  } else {
    s = ps;
    c = pc;
  }
  if ((j & 4) != 0)
    s = -s;
  if (signbit (x))
    s = -s;
  if ((((j - 2) & 4)) == 0)
    c = -c;
  *s_out = s;
  *c_out = c;
}

/* data[0..16): uniforms in [0, 1) -> 16 normals (data[j], data[j + 8]) */
G_ALWAYS_INLINE static inline void
cpu_box_muller_16 (float *data)
{
  for (int j = 0; j < 8; j++) {
    float u1 = 1.0f - data[j];
    float radius = sqrtf (-2.0f * cephes_logf (u1));
    float theta = 6.2831855f * data[j + 8];
    float s, c;
    cephes_sincosf (theta, &s, &c);
    data[j] = radius * c;
    data[j + 8] = radius * s;
  }
}

EASEL_FMA_CLONES static void
cpu_randn_vector (EaselRng *rng, float *out, gsize n)
{
  for (gsize i = 0; i < n; i++)
    out[i] = cpu_uniform_float (rng);
  for (gsize i = 0; i + 16 <= n; i += 16)
    cpu_box_muller_16 (out + i);
  if (n % 16 != 0) {
    float *tail = out + n - 16;
    for (int i = 0; i < 16; i++)
      tail[i] = cpu_uniform_float (rng);
    cpu_box_muller_16 (tail);
  }
}

static double
cpu_normal_double (EaselRng *rng)
{
  double u1, u2, r, theta;
  if (rng->have_cached_normal) {
    rng->have_cached_normal = FALSE;
    return rng->cached_normal;
  }
  u1 = cpu_uniform_double (rng);
  u2 = cpu_uniform_double (rng);
  r = sqrt (-2.0 * log1p (-u2));
  theta = 2.0 * G_PI * u1;
  rng->cached_normal = r * sin (theta);
  rng->have_cached_normal = TRUE;
  return r * cos (theta);
}

static void
cpu_randn (EaselRng *rng, float *out, gsize n)
{
  if (n >= 16) {
    cpu_randn_vector (rng, out, n);
    return;
  }
  for (gsize i = 0; i < n; i++)
    out[i] = (float) cpu_normal_double (rng);
}

/* --- Philox4x32-10 and curand's normals --------------------------------------------------- */

typedef struct {
  guint32 v[4];
} Philox4;

G_ALWAYS_INLINE static inline Philox4
philox4x32_10 (Philox4 ctr, guint32 k0, guint32 k1)
{
  for (int round = 0; round < 10; round++) {
    guint64 p0 = (guint64) 0xD2511F53u * ctr.v[0];
    guint64 p1 = (guint64) 0xCD9E8D57u * ctr.v[2];
    Philox4 next = { {
      (guint32) (p1 >> 32) ^ ctr.v[1] ^ k0,
      (guint32) p1,
      (guint32) (p0 >> 32) ^ ctr.v[3] ^ k1,
      (guint32) p0,
    } };
    ctr = next;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return ctr;
}

/* CUDA's logf (libdevice, as compiled for sm_90 by nvcc 13): m = a / 2^e in [2/3, 4/3),
 * log1p (m - 1) by a degree-10 polynomial in fused multiply-adds, plus e log 2. a > 0. */
G_ALWAYS_INLINE static inline float
cuda_logf (float a)
{
  float i = 0.0f, f, r;
  guint32 bits, e;

  if (a < 0x1p-126f) {
    a *= 0x1p23f;
    i = -23.0f;
  }
  memcpy (&bits, &a, sizeof bits);
  if (bits >= 0x7f800000u)
    return a + INFINITY;
  e = (bits - 0x3f2aaaabu) & 0xff800000u;
  bits -= e;
  memcpy (&f, &bits, sizeof f);
  f -= 1.0f;
  i = fmaf ((float) (gint32) e, 0x1p-23f, i);
  r = fmaf (f, -0x1.0aa04ep-3f, 0x1.2073ecp-3f);   /* -0.130188569, 0.140846103 */
  r = fmaf (f, r, -0.12148627638816833496f);
  r = fmaf (f, r, 0.13980610668659210205f);
  r = fmaf (f, r, -0.16684235632419586182f);
  r = fmaf (f, r, 0.20012299716472625732f);
  r = fmaf (f, r, -0.24999669194221496582f);
  r = fmaf (f, r, 0.33333182334899902344f);
  r = fmaf (f, r, -0.5f);
  r = f * r;
  r = fmaf (f, r, f);
  return fmaf (i, 0.69314718246459960938f, r);
}

/* __sincosf (v): the GPU multiplies by 1/(2 pi) rounding toward zero, then its special function
 * unit evaluates sin and cos of that many turns. The unit's own approximation (absolute error up
 * to 5.75 * 2^-24 on an H100, measured over every v curand can produce) is not reproduced: the
 * caller takes the exact sine and cosine of the reduced argument instead. */
G_ALWAYS_INLINE static inline double
cuda_turns (float v)
{
  double p = (double) v * (double) 0.15915493667125701904f;   /* exact: 24 x 24 bits */
  float t = (float) p;
  if (fabs ((double) t) > fabs (p))
    t = nextafterf (t, 0.0f);
  return t;
}

/* curand's _curand_box_muller: two words -> sin (v) s, and cos (v) s when second != NULL */
G_ALWAYS_INLINE static inline void
cuda_box_muller (guint32 a, guint32 b, float *first, float *second)
{
  const float two_pow_m32 = 0x1p-32f;
  const float two_pi_two_pow_m32 = 0x1p-32f * 6.2831855f;
  float u = fmaf ((float) a, two_pow_m32, two_pow_m32 / 2.0f);
  float v = fmaf ((float) b, two_pi_two_pow_m32, two_pi_two_pow_m32 / 2.0f);
  float s = sqrtf (-2.0f * cuda_logf (u));
  double angle = cuda_turns (v) * 6.283185307179586476925;
  *first = (float) sin (angle) * s;
  if (second != NULL)
    *second = (float) cos (angle) * s;
}

EASEL_FMA_CLONES static void
cuda_randn (EaselRng *rng, float *out, gsize n)
{
  guint64 threads = ((guint64) n + 255) / 256 * 256;
  guint64 iters, stride;

  if (rng->cuda_threads_max != 0 && threads > rng->cuda_threads_max)
    threads = rng->cuda_threads_max;
  stride = 4 * threads;
  iters = ((guint64) n - 1) / stride + 1;

  for (guint64 it = 0; it < iters; it++) {
    /* 128-bit counter: (offset / 4 + it) in words 0-1, thread id added in words 2-3 */
    guint64 lo = rng->philox_offset / 4 + it;
    for (guint64 t = 0; t < threads; t++) {
      guint64 base = it * stride + t;
      Philox4 ctr = { { (guint32) lo, (guint32) (lo >> 32), (guint32) t, (guint32) (t >> 32) } };
      Philox4 r;
      if (base >= n)
        break;
      r = philox4x32_10 (ctr, (guint32) rng->seed, (guint32) (rng->seed >> 32));
      for (int pair = 0; pair < 2; pair++) {
        guint64 i0 = base + (guint64) (2 * pair) * threads;
        guint64 i1 = i0 + threads;
        float a, b;
        if (i0 >= n)
          break;
        cuda_box_muller (r.v[2 * pair], r.v[2 * pair + 1], &a, i1 < n ? &b : NULL);
        out[i0] = a;
        if (i1 < n)
          out[i1] = b;
      }
    }
  }
  rng->philox_offset += 4 * iters;
}

/* --- API ------------------------------------------------------------------------------------- */

EaselRng *
easel_rng_new (EaselRngKind kind, guint64 seed)
{
  EaselRng *rng = g_new0 (EaselRng, 1);
  rng->kind = kind;
  rng->seed = seed;
  if (kind == EASEL_RNG_CPU)
    mt_seed (rng, (guint32) seed);
  return rng;
}

void
easel_rng_free (EaselRng *rng)
{
  g_free (rng);
}

void
easel_rng_set_cuda_device (EaselRng *rng, guint multiprocessors, guint max_threads_per_multiprocessor)
{
  g_return_if_fail (rng != NULL);
  rng->cuda_threads_max = (guint64) multiprocessors * (max_threads_per_multiprocessor / 256) * 256;
}

void
easel_rng_randn (EaselRng *rng, float *out, gsize n)
{
  g_return_if_fail (rng != NULL);
  g_return_if_fail (out != NULL || n == 0);
  if (n == 0)
    return;
  if (rng->kind == EASEL_RNG_CPU)
    cpu_randn (rng, out, n);
  else
    cuda_randn (rng, out, n);
}

guint32
easel_rng_cpu_u32 (EaselRng *rng)
{
  g_return_val_if_fail (rng != NULL && rng->kind == EASEL_RNG_CPU, 0);
  return mt_next (rng);
}

gboolean
easel_rng_kind_from_name (const char *name, EaselRngKind *out)
{
  if (g_strcmp0 (name, "cpu") == 0)
    *out = EASEL_RNG_CPU;
  else if (g_strcmp0 (name, "cuda") == 0)
    *out = EASEL_RNG_CUDA;
  else
    return FALSE;
  return TRUE;
}
