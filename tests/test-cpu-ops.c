/* tests/test-cpu-ops.c: the CPU backend's kernels (engine/cpu/) against naive double-precision
 * references written here, on random inputs with odd shapes (tails of 1, 3, 17, 33 and sizes that
 * are not multiples of the kernels' block sizes), on pools of 1, 2, 3 and 7 threads.
 *
 * Tolerances, u = 2^-24 (float32 unit roundoff):
 *  - products (linear, conv2d): |got - ref| <= (K + 2) u (sum |x w| + |b|), the classic bound for a
 *    K-term float dot product in any order (Higham, Accuracy and Stability, 3.1), FMA included;
 *  - attention: scores carry delta = (d + 2) u scale sum |q k|; the output is a weighted mean of V
 *    rows, so weights e^{+-delta} move it by <= 4 delta max|v|; plus 2e-5 max|v| for the float
 *    accumulation of P V over <= BK = 256 keys per block (256 u = 1.5e-5) and vmath's exp (< 4e-7);
 *  - activations: 1e-6 (1 + |x|): vmath.h's exp is within 2.5e-7 relative and its erf within
 *    1.5e-7 absolute of the truth (measured in test_vmath);
 *  - norms: 1e-5 (1 + |ref|): the statistics are exact to ~1e-7, and the inputs carry an offset of
 *    3 over a spread of ~0.6, so a few float roundings of values up to ~10 stay under 4e-6;
 *  - softmax: (2e-6 + D u) ref: D-term float sum plus exp;
 *  - add/mul, resize, concat: exact (the same single float rounding, or copies). */
#include <math.h>
#include <string.h>

#include "engine/cpu/ops.h"
#include "engine/cpu/vmath.h"
#include "engine/safetensors.h"
#include "testutil.h"

#define U (1.0 / 16777216.0)

static const int thread_counts[] = { 1, 2, 3, 7 };
static EaselCpuPool *pools[G_N_ELEMENTS (thread_counts)];   /* made after /cpu/pool-env's setenv () */

static void
make_pools (void)
{
  for (guint p = 0; p < G_N_ELEMENTS (pools); p++)
    if (!pools[p])
      pools[p] = easel_cpu_pool_new (thread_counts[p]);
}

static float *
rand_f32 (GRand *r, gsize n, double lo, double hi)
{
  float *x = g_new (float, MAX (n, 1));
  for (gsize i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (r, lo, hi);
  return x;
}

/* asserts |got[i] - ref[i]| <= tol[i] for all i; names the worst element on failure */
static void
check_close (const char *what, const float *got, const double *ref, const double *tol, gsize n)
{
  gsize bad = 0, worst = 0;
  double worst_ratio = 0.0;
  for (gsize i = 0; i < n; i++) {
    double e = fabs ((double) got[i] - ref[i]);
    double ratio = e / tol[i];
    if (!(e <= tol[i]))
      bad++;
    if (!(ratio <= worst_ratio)) {
      worst_ratio = ratio;
      worst = i;
    }
  }
  if (bad)
    g_error ("%s: %" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT " over tolerance; worst [%" G_GSIZE_FORMAT "] got %.9g want %.9g (tol %.3g)",
             what, bad, n, worst, got[worst], ref[worst], tol[worst]);
}

static void
check_exact (const char *what, const float *got, const float *want, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (memcmp (&got[i], &want[i], sizeof (float)) != 0)
      g_error ("%s: [%" G_GSIZE_FORMAT "] got %.9g want %.9g", what, i, got[i], want[i]);
}

/* --- pool --------------------------------------------------------------------------------- */

typedef struct {
  gint *hits;
  gint64 begins[EASEL_CPU_MAX_THREADS], ends[EASEL_CPU_MAX_THREADS];
  gint calls;
} PoolProbe;

static void
probe_range (gint64 begin, gint64 end, int ith, gpointer data)
{
  PoolProbe *p = data;
  for (gint64 i = begin; i < end; i++)
    g_atomic_int_inc (&p->hits[i]);
  p->begins[ith] = begin;
  p->ends[ith] = end;
  g_atomic_int_inc (&p->calls);
}

static void
nested_range (gint64 begin, gint64 end, int ith, gpointer data)
{
  EaselCpuPool *pool = data;
  PoolProbe inner = { g_new0 (gint, 10) };
  easel_cpu_pool_run (pool, 10, 1, probe_range, &inner);   /* must run serially, not deadlock */
  g_assert_cmpint (inner.calls, ==, 1);
  for (int i = 0; i < 10; i++)
    g_assert_cmpint (inner.hits[i], ==, 1);
  g_free (inner.hits);
}

static void
test_pool (void)
{
  make_pools ();
  static const gint64 sizes[] = { 0, 1, 2, 3, 17, 1000 };
  static const gint64 chunks[] = { 1, 4, 100000 };
  for (guint p = 0; p < G_N_ELEMENTS (pools); p++) {
    int nth = easel_cpu_pool_get_n_threads (pools[p]);
    g_assert_cmpint (nth, ==, thread_counts[p]);
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
      for (guint c = 0; c < G_N_ELEMENTS (chunks); c++)
        for (int rep = 0; rep < 3; rep++) {
          gint64 n = sizes[s];
          PoolProbe probe = { g_new0 (gint, MAX (n, 1)) };
          easel_cpu_pool_run (pools[p], n, chunks[c], probe_range, &probe);
          for (gint64 i = 0; i < n; i++)
            g_assert_cmpint (probe.hits[i], ==, 1);
          /* contiguous ranges in thread order, as many as the chunk size allows */
          int used = n == 0 ? 0 : (int) CLAMP (n / chunks[c], 1, nth);
          g_assert_cmpint (probe.calls, ==, used);
          for (int t = 0; t < used; t++) {
            g_assert_cmpint (probe.begins[t], ==, n * t / used);
            g_assert_cmpint (probe.ends[t], ==, n * (t + 1) / used);
          }
          g_free (probe.hits);
        }
    easel_cpu_pool_run (pools[p], nth, 1, nested_range, pools[p]);
  }
}

static void
test_pool_env (void)
{
  g_assert_null (pools[0]);
  g_setenv ("EASEL_THREADS", "3", TRUE);
  EaselCpuPool *pool = easel_cpu_pool_new (0);
  g_assert_cmpint (easel_cpu_pool_get_n_threads (pool), ==, 3);
  easel_cpu_pool_free (pool);
  g_setenv ("EASEL_THREADS", "lots", TRUE);
  pool = easel_cpu_pool_new (0);
  g_assert_cmpint (easel_cpu_pool_get_n_threads (pool), ==, (int) MIN (g_get_num_processors (), EASEL_CPU_MAX_THREADS));
  easel_cpu_pool_free (pool);
  pool = easel_cpu_pool_new (5);   /* an explicit count wins */
  g_assert_cmpint (easel_cpu_pool_get_n_threads (pool), ==, 5);
  easel_cpu_pool_free (pool);
  make_pools ();
}

/* --- vmath -------------------------------------------------------------------------------- */

static void
test_vmath (void)
{
  double worst_exp = 0.0, worst_gelu = 0.0, worst_tanh = 0.0, worst_sig = 0.0;
  for (int i = 0; i <= 1000000; i++) {
    float x = -87.0f + 175.0f * (float) i / 1000000.0f;
    double e = exp ((double) x);
    worst_exp = MAX (worst_exp, fabs (easel_vexp (x) - e) / e);
  }
  for (int i = 0; i <= 1000000; i++) {
    float x = -12.0f + 24.0f * (float) i / 1000000.0f;
    double g = 0.5 * x * (1.0 + erf (x / sqrt (2.0)));
    worst_gelu = MAX (worst_gelu, fabs (easel_vgelu (x) - g) / (1.0 + fabs (x)));
    double t = 0.5 * x * (1.0 + tanh (sqrt (2.0 / G_PI) * (x + 0.044715 * x * x * x)));
    worst_tanh = MAX (worst_tanh, fabs (easel_vgelu_tanh (x) - t) / (1.0 + fabs (x)));
    worst_sig = MAX (worst_sig, fabs (easel_vsigmoid (x) - 1.0 / (1.0 + exp (-(double) x))));
  }
  g_test_message ("vmath worst: exp rel %.3g, gelu %.3g, gelu_tanh %.3g, sigmoid abs %.3g",
                  worst_exp, worst_gelu, worst_tanh, worst_sig);
  g_assert_cmpfloat (worst_exp, <, 4e-7);
  g_assert_cmpfloat (worst_gelu, <, 1e-6);
  g_assert_cmpfloat (worst_tanh, <, 1e-6);
  g_assert_cmpfloat (worst_sig, <, 1e-6);
  /* saturation, not inf/nan, far out; nan stays nan */
  g_assert_cmpfloat (easel_vexp (-1000.0f), <, 1e-37f);
  g_assert_true (isfinite (easel_vexp (1000.0f)) && easel_vexp (1000.0f) > 1e38f);
  g_assert_true (isnan (easel_vexp (NAN)));
  g_assert_cmpfloat (fabsf (easel_vgelu (-30.0f)), <, 1e-30f);
  g_assert_cmpfloat (easel_vgelu (30.0f), ==, 30.0f);
}

/* --- linear ------------------------------------------------------------------------------- */

static void
test_linear (void)
{
  static const gint64 shapes[][3] = {   /* M, N, K */
    { 1, 1, 1 }, { 1, 17, 33 }, { 3, 5, 7 }, { 17, 33, 3 }, { 77, 48, 16 }, { 33, 130, 64 },
    { 200, 17, 1 }, { 64, 3, 300 }, { 5, 4, 0 }, { 129, 65, 33 }, { 1, 1280, 320 },
  };
  g_autoptr(GRand) r = g_rand_new_with_seed (1);
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++) {
    gint64 M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    g_autofree float *x = rand_f32 (r, M * K, -1, 1);
    g_autofree float *w = rand_f32 (r, N * K, -1, 1);
    g_autofree float *b = rand_f32 (r, N, -1, 1);
    g_autofree double *ref = g_new (double, M * N);
    g_autofree double *tol = g_new (double, M * N);
    g_autofree float *y = g_new (float, M * N);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
      for (gint64 i = 0; i < M; i++)
        for (gint64 j = 0; j < N; j++) {
          double acc = with_bias ? b[j] : 0.0, mag = with_bias ? fabs (b[j]) : 0.0;
          for (gint64 k = 0; k < K; k++) {
            acc += (double) x[i * K + k] * w[j * K + k];
            mag += fabs ((double) x[i * K + k] * w[j * K + k]);
          }
          ref[i * N + j] = acc;
          tol[i * N + j] = (K + 2) * U * mag + 1e-30;
        }
      for (guint p = 0; p < G_N_ELEMENTS (pools); p++) {
        memset (y, 0xff, sizeof (float) * M * N);   /* NaN: every element must be written */
        easel_cpu_linear_f32 (pools[p], y, x, w, with_bias ? b : NULL, M, N, K);
        g_autofree char *what = g_strdup_printf ("linear M=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT " bias=%d threads=%d",
                                                 M, N, K, with_bias, thread_counts[p]);
        check_close (what, y, ref, tol, M * N);
      }
    }
  }
}

/* --- conv2d ------------------------------------------------------------------------------- */

static void
test_conv2d (void)
{
  static const gint64 cases[][10] = {
    /* batch, c_in, h, w, c_out, k, stride, pad, extra_h, extra_w (asymmetric trailing pad) */
    { 1, 3, 5, 7, 4, 3, 1, 1, 0, 0 },
    { 2, 5, 17, 9, 3, 3, 1, 1, 0, 0 },
    { 1, 4, 16, 16, 8, 1, 1, 0, 0, 0 },     /* 1x1: one sgemm */
    { 2, 3, 13, 11, 5, 1, 1, 0, 0, 0 },
    { 1, 4, 17, 33, 6, 3, 2, 1, 0, 0 },     /* stride 2 */
    { 1, 3, 8, 8, 2, 3, 2, 0, 1, 1 },       /* the VAE downsampler: pad (0, 1, 0, 1), stride 2 */
    { 1, 3, 9, 12, 2, 3, 2, 0, 1, 1 },
    { 1, 2, 9, 9, 3, 5, 1, 2, 0, 0 },
    { 1, 1, 1, 1, 1, 1, 1, 0, 0, 0 },
    { 2, 3, 7, 6, 4, 1, 2, 0, 0, 0 },       /* 1x1 stride 2: im2col path */
    { 1, 2, 50, 50, 3, 3, 1, 1, 0, 0 },     /* 2500 columns: more than one block */
    { 1, 8, 2, 3, 40, 3, 1, 1, 0, 0 },      /* one block: output channels split over threads */
    { 3, 33, 5, 4, 17, 3, 1, 1, 0, 0 },
    { 1, 2, 4, 5, 3, 3, 1, 4, 0, 0 },       /* padding wider than the kernel */
  };
  g_autoptr(GRand) r = g_rand_new_with_seed (2);
  for (guint s = 0; s < G_N_ELEMENTS (cases); s++) {
    const gint64 *cs = cases[s];
    EaselCpuConv2d c;
    easel_cpu_conv2d_init (&c, cs[0], cs[1], cs[2], cs[3], cs[4], cs[5], cs[5], cs[6], cs[7]);
    c.out_h += cs[8];
    c.out_w += cs[9];
    gint64 K = c.c_in * c.kh * c.kw, P = c.out_h * c.out_w, ny = c.batch * c.c_out * P;
    g_autofree float *x = rand_f32 (r, c.batch * c.c_in * c.h * c.w, -1, 1);
    g_autofree float *w = rand_f32 (r, c.c_out * K, -1, 1);
    g_autofree float *b = rand_f32 (r, c.c_out, -1, 1);
    g_autofree double *ref = g_new (double, ny);
    g_autofree double *tol = g_new (double, ny);
    g_autofree float *y = g_new (float, ny);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
      for (gint64 n = 0; n < c.batch; n++)
        for (gint64 co = 0; co < c.c_out; co++)
          for (gint64 oy = 0; oy < c.out_h; oy++)
            for (gint64 ox = 0; ox < c.out_w; ox++) {
              double acc = with_bias ? b[co] : 0.0, mag = with_bias ? fabs (b[co]) : 0.0;
              for (gint64 ci = 0; ci < c.c_in; ci++)
                for (gint64 ky = 0; ky < c.kh; ky++)
                  for (gint64 kx = 0; kx < c.kw; kx++) {
                    gint64 iy = oy * c.stride_h - c.pad_h + ky, ix = ox * c.stride_w - c.pad_w + kx;
                    if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w)
                      continue;
                    double t = (double) x[((n * c.c_in + ci) * c.h + iy) * c.w + ix]
                               * w[((co * c.c_in + ci) * c.kh + ky) * c.kw + kx];
                    acc += t;
                    mag += fabs (t);
                  }
              gint64 o = ((n * c.c_out + co) * c.out_h + oy) * c.out_w + ox;
              ref[o] = acc;
              tol[o] = (K + 2) * U * mag + 1e-30;
            }
      for (guint p = 0; p < G_N_ELEMENTS (pools); p++) {
        gsize ws = easel_cpu_conv2d_workspace (&c, thread_counts[p]);
        g_autofree float *work = ws ? g_new (float, ws) : NULL;
        memset (y, 0xff, sizeof (float) * ny);
        easel_cpu_conv2d_f32 (pools[p], y, x, w, with_bias ? b : NULL, &c, work);
        g_autofree char *what = g_strdup_printf ("conv2d case %u bias=%d threads=%d", s, with_bias, thread_counts[p]);
        check_close (what, y, ref, tol, ny);
      }
    }
  }
}

/* --- attention ---------------------------------------------------------------------------- */

typedef struct {
  gint64 batch, heads, lq, lk, d;
  gboolean causal, packed;   /* packed: q, k, v in one (B, L, 3 C) buffer; o with a padded row */
  float q_gain;              /* peaky scores */
} AttnCase;

static void
test_attention (void)
{
  static const AttnCase cases[] = {
    { 1, 1, 1, 1, 1, FALSE, FALSE, 1 },
    { 2, 3, 17, 33, 8, FALSE, FALSE, 3 },
    { 1, 2, 65, 300, 40, FALSE, FALSE, 3 },    /* q and k block tails: 64 + 1, 256 + 44 */
    { 1, 1, 3, 4100, 24, FALSE, FALSE, 4 },    /* large lk, 17 key blocks */
    { 1, 8, 130, 77, 5, FALSE, FALSE, 2 },
    { 2, 2, 77, 77, 16, TRUE, FALSE, 3 },      /* CLIP: causal, 77 tokens */
    { 1, 3, 77, 77, 64, TRUE, TRUE, 3 },
    { 1, 1, 300, 300, 8, TRUE, FALSE, 3 },     /* causal across key blocks */
    { 1, 1, 5, 9, 4, TRUE, FALSE, 2 },         /* causal lq < lk: top-left triangle */
    { 2, 2, 33, 33, 33, FALSE, TRUE, 1 },
  };
  g_autoptr(GRand) r = g_rand_new_with_seed (3);
  for (guint s = 0; s < G_N_ELEMENTS (cases); s++) {
    const AttnCase *ac = &cases[s];
    const gint64 C = ac->heads * ac->d;
    EaselCpuAttention a = {
      .batch = ac->batch, .heads = ac->heads, .lq = ac->lq, .lk = ac->lk, .d = ac->d,
      .ld_q = C, .ld_k = C, .ld_v = C, .ld_o = C, .scale = 1.0f / sqrtf ((float) ac->d), .causal = ac->causal,
    };
    g_autofree float *qkv = NULL, *qb = NULL, *kb = NULL, *vb = NULL;
    const float *q, *k, *v;
    if (ac->packed) {
      g_assert_cmpint (ac->lq, ==, ac->lk);
      qkv = rand_f32 (r, ac->batch * ac->lq * 3 * C, -1, 1);
      for (gint64 i = 0; i < ac->batch * ac->lq; i++)
        for (gint64 e = 0; e < C; e++)
          qkv[i * 3 * C + e] *= ac->q_gain;
      q = qkv;
      k = qkv + C;
      v = qkv + 2 * C;
      a.ld_q = a.ld_k = a.ld_v = 3 * C;
      a.ld_o = C + 3;
    } else {
      q = qb = rand_f32 (r, ac->batch * ac->lq * C, -ac->q_gain, ac->q_gain);
      k = kb = rand_f32 (r, ac->batch * ac->lk * C, -1, 1);
      v = vb = rand_f32 (r, ac->batch * ac->lk * C, -1, 1);
    }
    gint64 no = ac->batch * ac->lq * a.ld_o;
    g_autofree double *ref = g_new0 (double, no);
    g_autofree double *tol = g_new (double, no);
    g_autofree double *sc = g_new (double, ac->lk);
    for (gint64 i = 0; i < no; i++)
      tol[i] = 1e30;   /* the padding of a packed output row is not checked */
    for (gint64 b = 0; b < ac->batch; b++)
      for (gint64 h = 0; h < ac->heads; h++)
        for (gint64 i = 0; i < ac->lq; i++) {
          const float *qi = q + (b * ac->lq + i) * a.ld_q + h * ac->d;
          gint64 nk = ac->causal ? i + 1 : ac->lk;
          double mx = -INFINITY, delta = 0.0, vmax = 0.0, sum = 0.0;
          for (gint64 j = 0; j < nk; j++) {
            const float *kj = k + (b * ac->lk + j) * a.ld_k + h * ac->d;
            double acc = 0.0, mag = 0.0;
            for (gint64 e = 0; e < ac->d; e++) {
              acc += (double) qi[e] * kj[e];
              mag += fabs ((double) qi[e] * kj[e]);
            }
            sc[j] = acc * a.scale;
            mx = MAX (mx, sc[j]);
            delta = MAX (delta, (ac->d + 2) * U * mag * a.scale);
          }
          for (gint64 j = 0; j < nk; j++) {
            sc[j] = exp (sc[j] - mx);
            sum += sc[j];
          }
          double *out = ref + (b * ac->lq + i) * a.ld_o + h * ac->d;
          for (gint64 j = 0; j < nk; j++) {
            const float *vj = v + (b * ac->lk + j) * a.ld_v + h * ac->d;
            for (gint64 e = 0; e < ac->d; e++) {
              out[e] += sc[j] / sum * vj[e];
              vmax = MAX (vmax, fabs (vj[e]));
            }
          }
          for (gint64 e = 0; e < ac->d; e++)
            tol[(b * ac->lq + i) * a.ld_o + h * ac->d + e] = vmax * (4.0 * delta + 2e-5);
        }
    g_autofree float *o = g_new (float, no);
    for (guint p = 0; p < G_N_ELEMENTS (pools); p++) {
      g_autofree float *work = g_new (float, easel_cpu_attention_workspace (&a, thread_counts[p]));
      memset (o, 0, sizeof (float) * no);
      for (gint64 i = 0; i < ac->batch * ac->lq; i++)
        for (gint64 e = 0; e < C; e++)
          o[i * a.ld_o + e] = NAN;
      easel_cpu_attention_f32 (pools[p], o, q, k, v, &a, work);
      g_autofree char *what = g_strdup_printf ("attention case %u threads=%d", s, thread_counts[p]);
      check_close (what, o, ref, tol, no);
    }
  }
}

/* --- norms and softmax -------------------------------------------------------------------- */

static void
test_group_norm (void)
{
  static const gint64 cases[][4] = {   /* N, C, HW, G */
    { 1, 4, 1, 1 }, { 2, 6, 17, 3 }, { 1, 32, 33, 32 }, { 3, 64, 7, 32 }, { 1, 8, 5000, 2 }, { 2, 3, 1, 3 },
  };
  g_autoptr(GRand) r = g_rand_new_with_seed (4);
  for (guint s = 0; s < G_N_ELEMENTS (cases); s++) {
    gint64 N = cases[s][0], C = cases[s][1], HW = cases[s][2], G = cases[s][3], n = N * C * HW, cg = C / G;
    g_autofree float *x = rand_f32 (r, n, 2, 4);   /* offset 3: the statistics must not cancel */
    g_autofree float *gamma = rand_f32 (r, C, -2, 2);
    g_autofree float *beta = rand_f32 (r, C, -1, 1);
    g_autofree double *ref = g_new (double, n);
    g_autofree double *tol = g_new (double, n);
    g_autofree float *y = g_new (float, n);
    for (int variant = 0; variant < 4; variant++) {
      gboolean affine = variant & 1, silu = (variant & 2) != 0;
      float eps = affine ? 1e-5f : 1e-6f;
      for (gint64 grp = 0; grp < N * G; grp++) {
        const float *xg = x + grp * cg * HW;
        double mean = 0.0, var = 0.0;
        for (gint64 i = 0; i < cg * HW; i++)
          mean += xg[i];
        mean /= cg * HW;
        for (gint64 i = 0; i < cg * HW; i++)
          var += (xg[i] - mean) * (xg[i] - mean);
        var /= cg * HW;
        for (gint64 i = 0; i < cg * HW; i++) {
          gint64 c = grp % G * cg + i / HW;
          double v = (xg[i] - mean) / sqrt (var + eps);
          if (affine)
            v = v * gamma[c] + beta[c];
          if (silu)
            v = v / (1.0 + exp (-v));
          ref[grp * cg * HW + i] = v;
          tol[grp * cg * HW + i] = 1e-5 * (1.0 + fabs (v));
        }
      }
      for (guint p = 0; p < G_N_ELEMENTS (pools); p++) {
        memset (y, 0xff, sizeof (float) * n);
        easel_cpu_group_norm_f32 (pools[p], y, x, affine ? gamma : NULL, affine ? beta : NULL, N, C, HW, G, eps, silu);
        g_autofree char *what = g_strdup_printf ("group_norm case %u affine=%d silu=%d threads=%d", s, affine, silu, thread_counts[p]);
        check_close (what, y, ref, tol, n);
      }
    }
  }
}

static void
test_layer_norm (void)
{
  static const gint64 shapes[][2] = { { 1, 1 }, { 3, 17 }, { 77, 16 }, { 5, 1280 }, { 33, 33 }, { 2000, 3 } };
  g_autoptr(GRand) r = g_rand_new_with_seed (5);
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++) {
    gint64 M = shapes[s][0], D = shapes[s][1];
    g_autofree float *x = rand_f32 (r, M * D, 2, 4);
    g_autofree float *gamma = rand_f32 (r, D, -2, 2);
    g_autofree float *beta = rand_f32 (r, D, -1, 1);
    g_autofree double *ref = g_new (double, M * D);
    g_autofree double *tol = g_new (double, M * D);
    g_autofree float *y = g_new (float, M * D);
    for (int affine = 0; affine < 2; affine++) {
      for (gint64 i = 0; i < M; i++) {
        double mean = 0.0, var = 0.0;
        for (gint64 j = 0; j < D; j++)
          mean += x[i * D + j];
        mean /= D;
        for (gint64 j = 0; j < D; j++)
          var += (x[i * D + j] - mean) * (x[i * D + j] - mean);
        var /= D;
        for (gint64 j = 0; j < D; j++) {
          double v = (x[i * D + j] - mean) / sqrt (var + 1e-5);
          if (affine)
            v = v * gamma[j] + beta[j];
          ref[i * D + j] = v;
          tol[i * D + j] = 1e-5 * (1.0 + fabs (v));
        }
      }
      for (guint p = 0; p < G_N_ELEMENTS (pools); p++) {
        memcpy (y, x, sizeof (float) * M * D);   /* in place */
        easel_cpu_layer_norm_f32 (pools[p], y, y, affine ? gamma : NULL, affine ? beta : NULL, M, D, 1e-5f);
        g_autofree char *what = g_strdup_printf ("layer_norm %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " affine=%d threads=%d",
                                                 M, D, affine, thread_counts[p]);
        check_close (what, y, ref, tol, M * D);
      }
    }
  }
}

static void
test_softmax (void)
{
  static const gint64 shapes[][2] = { { 1, 1 }, { 3, 17 }, { 77, 77 }, { 4, 4100 }, { 1000, 3 } };
  g_autoptr(GRand) r = g_rand_new_with_seed (6);
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++) {
    gint64 M = shapes[s][0], D = shapes[s][1];
    g_autofree float *x = rand_f32 (r, M * D, -10, 10);
    g_autofree double *ref = g_new (double, M * D);
    g_autofree double *tol = g_new (double, M * D);
    g_autofree float *y = g_new (float, M * D);
    for (gint64 i = 0; i < M; i++) {
      double mx = -INFINITY, sum = 0.0;
      for (gint64 j = 0; j < D; j++)
        mx = MAX (mx, x[i * D + j]);
      for (gint64 j = 0; j < D; j++)
        sum += exp (x[i * D + j] - mx);
      for (gint64 j = 0; j < D; j++) {
        ref[i * D + j] = exp (x[i * D + j] - mx) / sum;
        tol[i * D + j] = (2e-6 + D * U) * ref[i * D + j] + 1e-30;
      }
    }
    for (guint p = 0; p < G_N_ELEMENTS (pools); p++) {
      easel_cpu_softmax_f32 (pools[p], y, x, M, D);
      g_autofree char *what = g_strdup_printf ("softmax %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " threads=%d", M, D, thread_counts[p]);
      check_close (what, y, ref, tol, M * D);
    }
  }
}

/* --- activations -------------------------------------------------------------------------- */

static double
ref_unary (EaselCpuUnaryOp op, double x)
{
  switch (op) {
  case EASEL_CPU_SILU:
    return x / (1.0 + exp (-x));
  case EASEL_CPU_GELU:
    return 0.5 * x * (1.0 + erf (x / sqrt (2.0)));
  case EASEL_CPU_GELU_TANH:
    return 0.5 * x * (1.0 + tanh (sqrt (2.0 / G_PI) * (x + 0.044715 * x * x * x)));
  case EASEL_CPU_QUICK_GELU:
    return x / (1.0 + exp (-1.702 * x));
  default:
    g_assert_not_reached ();
  }
}

static void
test_unary (void)
{
  static const gint64 sizes[] = { 1, 3, 17, 33, 100003 };
  static const EaselCpuUnaryOp ops[] = { EASEL_CPU_SILU, EASEL_CPU_GELU, EASEL_CPU_GELU_TANH, EASEL_CPU_QUICK_GELU };
  static const float specials[] = { 0.0f, -0.0f, 1e-30f, -1e-30f, 88.0f, -88.0f, 100.0f, -100.0f, 5.0f, -5.0f };
  g_autoptr(GRand) r = g_rand_new_with_seed (7);
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
    gint64 n = sizes[s];
    g_autofree float *x = rand_f32 (r, n, -12, 12);
    for (gint64 i = 0; i < MIN (n, (gint64) G_N_ELEMENTS (specials)); i++)
      x[n - 1 - i] = specials[i];
    g_autofree double *ref = g_new (double, n);
    g_autofree double *tol = g_new (double, n);
    g_autofree float *y = g_new (float, n);
    for (guint o = 0; o < G_N_ELEMENTS (ops); o++) {
      for (gint64 i = 0; i < n; i++) {
        ref[i] = ref_unary (ops[o], x[i]);
        tol[i] = 1e-6 * (1.0 + fabs (x[i]));
      }
      for (guint p = 0; p < G_N_ELEMENTS (pools); p++) {
        memcpy (y, x, sizeof (float) * n);
        easel_cpu_unary_f32 (pools[p], ops[o], y, y, n);   /* in place */
        g_autofree char *what = g_strdup_printf ("unary op %d n=%" G_GINT64_FORMAT " threads=%d", ops[o], n, thread_counts[p]);
        check_close (what, y, ref, tol, n);
      }
    }
  }
}

static void
test_geglu (void)
{
  static const gint64 shapes[][2] = { { 1, 1 }, { 3, 17 }, { 33, 40 }, { 1000, 33 } };
  g_autoptr(GRand) r = g_rand_new_with_seed (8);
  for (guint s = 0; s < G_N_ELEMENTS (shapes); s++) {
    gint64 M = shapes[s][0], F = shapes[s][1];
    g_autofree float *x = rand_f32 (r, M * 2 * F, -6, 6);
    g_autofree double *ref = g_new (double, M * F);
    g_autofree double *tol = g_new (double, M * F);
    g_autofree float *y = g_new (float, M * F);
    for (gint64 i = 0; i < M; i++)
      for (gint64 j = 0; j < F; j++) {
        double h = x[i * 2 * F + j], g = x[i * 2 * F + F + j];
        ref[i * F + j] = h * ref_unary (EASEL_CPU_GELU, g);
        tol[i * F + j] = 1e-6 * (1.0 + fabs (h) * (1.0 + fabs (g)));
      }
    for (guint p = 0; p < G_N_ELEMENTS (pools); p++) {
      easel_cpu_geglu_f32 (pools[p], y, x, M, F);
      g_autofree char *what = g_strdup_printf ("geglu %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " threads=%d", M, F, thread_counts[p]);
      check_close (what, y, ref, tol, M * F);
    }
  }
}

/* --- broadcast, resize, concat ------------------------------------------------------------ */

static void
test_binary (void)
{
  static const gint64 cases[][4] = {   /* N, C, HW, b_stride_n */
    { 2, 3, 17, 3 },       /* (N, C, 1, 1) */
    { 2, 5, 33, 0 },       /* (1, C, 1, 1) */
    { 7, 33, 1, 0 },       /* (M, D) + row (D) */
    { 1, 1000, 1, 0 },     /* same shape */
    { 3, 4, 1, 4 },        /* (N, C) + (N, C) */
    { 2, 320, 4096, 320 }, /* a ResBlock's time embedding at 64x64 */
    { 1, 1, 1, 0 },
  };
  g_autoptr(GRand) r = g_rand_new_with_seed (9);
  for (guint s = 0; s < G_N_ELEMENTS (cases); s++) {
    gint64 N = cases[s][0], C = cases[s][1], HW = cases[s][2], bs = cases[s][3], n = N * C * HW;
    g_autofree float *a = rand_f32 (r, n, -1, 1);
    g_autofree float *b = rand_f32 (r, (N - 1) * bs + C, -1, 1);
    g_autofree float *want = g_new (float, n);
    g_autofree float *y = g_new (float, n);
    for (int op = EASEL_CPU_ADD; op <= EASEL_CPU_MUL; op++) {
      for (gint64 i = 0; i < n; i++) {
        float bv = b[i / (C * HW) * bs + i / HW % C];
        want[i] = op == EASEL_CPU_ADD ? a[i] + bv : a[i] * bv;
      }
      for (guint p = 0; p < G_N_ELEMENTS (pools); p++) {
        g_autofree char *what = g_strdup_printf ("binary case %u op %d threads=%d", s, op, thread_counts[p]);
        easel_cpu_binary_f32 (pools[p], op, y, a, b, N, C, HW, bs);
        check_exact (what, y, want, n);
        memcpy (y, a, sizeof (float) * n);
        easel_cpu_binary_f32 (pools[p], op, y, y, b, N, C, HW, bs);   /* in place */
        check_exact (what, y, want, n);
      }
    }
  }
}

static void
test_resize (void)
{
  static const gint64 cases[][6] = {   /* N, C, h, w, oh, ow */
    { 2, 3, 5, 7, 10, 14 },            /* 2x */
    { 1, 2, 6, 10, 12, 20 },
    { 1, 2, 3, 5, 7, 4 },
    { 1, 1, 17, 33, 1, 1 },
    { 2, 1, 5, 5, 13, 13 },
    { 1, 2, 16, 16, 2, 2 },            /* a mask down to latent size */
    { 1, 1, 10, 10, 6, 6 },
    { 1, 3, 3, 6, 7, 13 },             /* 12x20-style odd upsampling to a skip's size */
    { 1, 1, 1, 1, 3, 2 },
  };
  g_autoptr(GRand) r = g_rand_new_with_seed (10);
  for (guint s = 0; s < G_N_ELEMENTS (cases); s++) {
    const gint64 *cs = cases[s];
    gint64 N = cs[0], C = cs[1], h = cs[2], w = cs[3], oh = cs[4], ow = cs[5];
    g_autofree float *x = rand_f32 (r, N * C * h * w, -1, 1);
    g_autofree float *want = g_new (float, N * C * oh * ow);
    g_autofree float *y = g_new (float, N * C * oh * ow);
    /* the exact rational floor (i · in / out); torch's float scale agrees on these sizes */
    for (gint64 pl = 0; pl < N * C; pl++)
      for (gint64 i = 0; i < oh; i++)
        for (gint64 j = 0; j < ow; j++)
          want[(pl * oh + i) * ow + j] = x[(pl * h + i * h / oh) * w + j * w / ow];
    for (guint p = 0; p < G_N_ELEMENTS (pools); p++) {
      g_autofree char *what = g_strdup_printf ("resize case %u threads=%d", s, thread_counts[p]);
      easel_cpu_resize_nearest_f32 (pools[p], y, x, N, C, h, w, oh, ow);
      check_exact (what, y, want, N * C * oh * ow);
    }
  }
}

static void
test_concat (void)
{
  static const gint64 cases[][4] = { { 2, 3, 5, 17 }, { 1, 0, 4, 3 }, { 3, 2, 0, 9 }, { 2, 1, 1, 1 }, { 2, 320, 640, 64 } };
  g_autoptr(GRand) r = g_rand_new_with_seed (11);
  for (guint s = 0; s < G_N_ELEMENTS (cases); s++) {
    gint64 N = cases[s][0], ca = cases[s][1], cb = cases[s][2], HW = cases[s][3], n = N * (ca + cb) * HW;
    g_autofree float *a = rand_f32 (r, N * ca * HW, -1, 1);
    g_autofree float *b = rand_f32 (r, N * cb * HW, -1, 1);
    g_autofree float *want = g_new (float, MAX (n, 1));
    g_autofree float *y = g_new (float, MAX (n, 1));
    for (gint64 i = 0; i < n; i++) {
      gint64 nn = i / ((ca + cb) * HW), c = i / HW % (ca + cb), e = i % HW;
      want[i] = c < ca ? a[(nn * ca + c) * HW + e] : b[(nn * cb + c - ca) * HW + e];
    }
    for (guint p = 0; p < G_N_ELEMENTS (pools); p++) {
      g_autofree char *what = g_strdup_printf ("concat case %u threads=%d", s, thread_counts[p]);
      easel_cpu_concat_channels_f32 (pools[p], y, a, b, N, ca, cb, HW);
      check_exact (what, y, want, n);
    }
  }
}

/* --- timestep embedding ------------------------------------------------------------------- */

static void
test_timestep_embedding (void)
{
  static const float ts[] = { 0.0f, 1.0f, 437.25f, 999.0f, 96.0f, 3.5f };
  static const gint64 dims[] = { 1, 2, 8, 17, 32, 320 };
  for (guint d = 0; d < G_N_ELEMENTS (dims); d++) {
    gint64 dim = dims[d], half = dim / 2, N = G_N_ELEMENTS (ts);
    g_autofree float *y = g_new (float, N * dim);
    g_autofree double *ref = g_new (double, N * dim);
    g_autofree double *tol = g_new (double, N * dim);
    easel_cpu_timestep_embedding_f32 (y, ts, N, dim);
    for (gint64 n = 0; n < N; n++) {
      for (gint64 i = 0; i < half; i++) {
        double expo = -log (10000.0) * i / half, arg = ts[n] * exp (expo);
        ref[n * dim + i] = cos (arg);
        ref[n * dim + half + i] = sin (arg);
        /* torch rounds the exponent (absolute error 2 |expo| u, relative in the frequency), the
         * frequency and t · f to float: |arg| (2 |expo| + 4) u, plus cos/sin's own rounding */
        tol[n * dim + i] = tol[n * dim + half + i] = fabs (arg) * (2 * fabs (expo) + 4) * U + 2 * U;
      }
      if (dim % 2) {
        ref[n * dim + dim - 1] = 0.0;
        tol[n * dim + dim - 1] = 1e-30;
      }
    }
    check_close ("timestep_embedding", y, ref, tol, N * dim);
  }
}

/* the references' own sinusoids (section 8.4): sd1 time_proj (32 wide), SDXL time_proj (64) and
 * add_time_proj (each time id, 8 wide) */
static void
check_time_proj (const EaselSafetensors *st, const char *input, const char *output, gint64 dim)
{
  const EaselStTensor *tin = easel_safetensors_find (st, input), *tout = easel_safetensors_find (st, output);
  g_assert_nonnull (tin);
  g_assert_nonnull (tout);
  gint64 N = (gint64) tin->n_elements;
  g_assert_cmpint ((gint64) tout->n_elements, ==, N * dim);
  g_autofree float *t = easel_st_tensor_to_f32 (tin);
  g_autofree float *want = easel_st_tensor_to_f32 (tout);
  g_autofree float *y = g_new (float, N * dim);
  g_autofree double *ref = g_new (double, N * dim);
  g_autofree double *tol = g_new (double, N * dim);
  easel_cpu_timestep_embedding_f32 (y, t, N, dim);
  for (gint64 i = 0; i < N * dim; i++) {
    ref[i] = want[i];
    tol[i] = 1e-4;   /* the manifests' tolerance for one network forward; observed below */
  }
  double worst = 0.0;
  for (gint64 i = 0; i < N * dim; i++)
    worst = MAX (worst, fabs ((double) y[i] - want[i]));
  g_test_message ("%s: max |diff| %.3g", output, worst);
  check_close (output, y, ref, tol, N * dim);
}

static void
test_timestep_embedding_golden (void)
{
  g_autofree char *sd1 = test_data_path ("refs", "sd1", "sd1_refs.safetensors", NULL);
  g_autofree char *sdxl = test_data_path ("refs", "sdxl", "sdxl_refs.safetensors", NULL);
  if (!sd1)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselSafetensors) a = easel_safetensors_open (sd1, &error);
  g_assert_no_error (error);
  check_time_proj (a, "unet/12x20_t437.25/timestep", "unet/12x20_t437.25/intermediate/time_proj", 32);
  check_time_proj (a, "unet/16x16_t999.0/timestep", "unet/16x16_t999.0/intermediate/time_proj", 32);
  check_time_proj (a, "unet/batch2_16x16_t700/timestep", "unet/batch2_16x16_t700/intermediate/time_proj", 32);
  g_autoptr(EaselSafetensors) b = easel_safetensors_open (sdxl, &error);
  g_assert_no_error (error);
  check_time_proj (b, "unet/8x12_t500.0/timestep", "unet/8x12_t500.0/intermediate/time_proj", 64);
  check_time_proj (b, "unet/8x12_t500.0/time_ids", "unet/8x12_t500.0/intermediate/add_time_proj", 8);
  check_time_proj (b, "refiner_unet/16x16_t150/time_ids", "refiner_unet/16x16_t150/intermediate/add_time_proj", 8);
}

/* Every half converts exactly as easel_f16_to_f32 (the F16C path where the CPU has it, tails of
 * fewer than 8 included); bfloat16 likewise. */
static void
test_convert_to_f32 (void)
{
  EaselCpuPool *pool = easel_cpu_pool_new (3);
  const gint64 n = 65536 + 5;
  g_autofree guint16 *h = g_new (guint16, n);
  g_autofree float *got = g_new (float, n);
  for (gint64 i = 0; i < n; i++)
    h[i] = (guint16) (i * 40503u);
  for (int bf = 0; bf < 2; bf++) {
    easel_cpu_convert_to_f32 (pool, bf ? EASEL_DTYPE_BF16 : EASEL_DTYPE_F16, h, got, n);
    for (gint64 i = 0; i < n; i++) {
      float want = bf ? easel_bf16_to_f32 (h[i]) : easel_f16_to_f32 (h[i]);
      if (isnan (want))
        g_assert_true (isnan (got[i]));
      else
        g_assert_true (memcmp (&got[i], &want, 4) == 0);
    }
  }
  easel_cpu_pool_free (pool);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* first: setenv () is only safe before any thread exists */
  g_test_add_func ("/cpu/pool-env", test_pool_env);
  g_test_add_func ("/cpu/convert-to-f32", test_convert_to_f32);
  g_test_add_func ("/cpu/pool", test_pool);
  g_test_add_func ("/cpu/vmath", test_vmath);
  g_test_add_func ("/cpu/linear", test_linear);
  g_test_add_func ("/cpu/conv2d", test_conv2d);
  g_test_add_func ("/cpu/attention", test_attention);
  g_test_add_func ("/cpu/group-norm", test_group_norm);
  g_test_add_func ("/cpu/layer-norm", test_layer_norm);
  g_test_add_func ("/cpu/softmax", test_softmax);
  g_test_add_func ("/cpu/unary", test_unary);
  g_test_add_func ("/cpu/geglu", test_geglu);
  g_test_add_func ("/cpu/binary", test_binary);
  g_test_add_func ("/cpu/resize-nearest", test_resize);
  g_test_add_func ("/cpu/concat", test_concat);
  g_test_add_func ("/cpu/timestep-embedding", test_timestep_embedding);
  g_test_add_func ("/cpu/timestep-embedding-golden", test_timestep_embedding_golden);
  int rc = g_test_run ();

  for (guint p = 0; p < G_N_ELEMENTS (pools); p++)
    easel_cpu_pool_free (pools[p]);
  return rc;
}
