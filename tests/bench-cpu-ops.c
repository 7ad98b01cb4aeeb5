/* tests/bench-cpu-ops.c: GFLOP/s of the CPU kernels at SD-like sizes, each next to plain OpenBLAS
 * sgemm measured in the same run (B8: ratios, never asserts on time). `meson test -C build
 * --benchmark` or `ninja -C build benchmark` runs it; EASEL_THREADS picks the thread count.
 *
 * "plain sgemm" is one cblas_sgemm call with OpenBLAS's own threads (as many as the pool has), on
 * the same matrix shapes the kernel multiplies: the ceiling the kernel is measured against. Each
 * figure is the best of several runs (the machine may be shared). Also here, for the record, a
 * direct 3x3 convolution (register-blocked over 4 output channels, vectorized along rows) that
 * the im2col path is compared with; engine/cpu/matmul.c keeps whichever is faster. */
#include <math.h>
#include <string.h>

#include "engine/cpu/blas.h"
#include "engine/cpu/ops.h"
#include "engine/cpu/vmath.h"

void openblas_set_num_threads (int num_threads);   /* OpenBLAS is a hard dependency of libeasel */

#define MIN_SECONDS 0.4
#define MIN_RUNS 3

typedef void (*BenchFunc) (gpointer data);

/* best seconds per call */
static double
time_best (BenchFunc f, gpointer data)
{
  double best = INFINITY, total = 0.0;
  f (data);   /* warm-up: page faults, OpenBLAS buffers */
  for (int runs = 0; runs < MIN_RUNS || total < MIN_SECONDS; runs++) {
    gint64 t0 = g_get_monotonic_time ();
    f (data);
    double s = (double) (g_get_monotonic_time () - t0) / 1e6;
    best = MIN (best, s);
    total += s;
    if (runs > 200)
      break;
  }
  return best;
}

static float *
rand_buf (gsize n, guint32 seed)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (seed);
  float *x = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (r, -1, 1);
  return x;
}

/* --- plain sgemm -------------------------------------------------------------------------- */

typedef struct {
  gint64 M, N, K;
  gboolean trans_b;
  float *a, *b, *c;
} Gemm;

static void
run_plain_sgemm (gpointer data)
{
  Gemm *g = data;
  cblas_sgemm (CblasRowMajor, CblasNoTrans, g->trans_b ? CblasTrans : CblasNoTrans, (int) g->M, (int) g->N,
               (int) g->K, 1.0f, g->a, (int) g->K, g->b, g->trans_b ? (int) g->K : (int) g->N, 0.0f, g->c, (int) g->N);
}

/* GFLOP/s of one threaded OpenBLAS call (M, N, K) */
static double
plain_sgemm_gflops (int nth, gint64 M, gint64 N, gint64 K, gboolean trans_b)
{
  Gemm g = { M, N, K, trans_b, rand_buf (M * K, 1), rand_buf (N * K, 2), g_new (float, M * N) };
  openblas_set_num_threads (nth);
  double s = time_best (run_plain_sgemm, &g);
  openblas_set_num_threads (1);   /* back to what the pool expects */
  g_free (g.a);
  g_free (g.b);
  g_free (g.c);
  return 2.0 * M * N * K / s / 1e9;
}

/* --- kernels ------------------------------------------------------------------------------ */

typedef struct {
  EaselCpuPool *pool;
  gint64 M, N, K;
  float *x, *w, *b, *y;
} LinearBench;

static void
run_linear (gpointer data)
{
  LinearBench *l = data;
  easel_cpu_linear_f32 (l->pool, l->y, l->x, l->w, l->b, l->M, l->N, l->K);
}

typedef struct {
  EaselCpuPool *pool;
  EaselCpuConv2d c;
  float *x, *w, *b, *y, *work;
} ConvBench;

static void
run_conv (gpointer data)
{
  ConvBench *cb = data;
  easel_cpu_conv2d_f32 (cb->pool, cb->y, cb->x, cb->w, cb->b, &cb->c, cb->work);
}

/* direct 3x3, stride 1, pad 1: tasks are groups of 4 output channels */
static EASEL_CPU_SIMD void
direct_rows (float *y, const float *x, const float *w, gint64 C, gint64 H, gint64 W, gint64 co0, gint64 nco)
{
  for (gint64 r = 0; r < nco; r++)
    memset (y + (co0 + r) * H * W, 0, sizeof (float) * H * W);
  for (gint64 ci = 0; ci < C; ci++)
    for (gint64 oy = 0; oy < H; oy++)
      for (gint64 ky = 0; ky < 3; ky++) {
        gint64 iy = oy + ky - 1;
        if (iy < 0 || iy >= H)
          continue;
        const float *xr = x + (ci * H + iy) * W;
        for (gint64 r = 0; r < nco; r++) {
          const float *wk = w + (((co0 + r) * C + ci) * 3 + ky) * 3;
          float w0 = wk[0], w1 = wk[1], w2 = wk[2];
          float *yr = y + ((co0 + r) * H + oy) * W;
          yr[0] += w1 * xr[0] + (W > 1 ? w2 * xr[1] : 0.0f);
          EASEL_CPU_VECTOR
          for (gint64 ox = 1; ox < W - 1; ox++)
            yr[ox] += w0 * xr[ox - 1] + w1 * xr[ox] + w2 * xr[ox + 1];
          if (W > 1)
            yr[W - 1] += w0 * xr[W - 2] + w1 * xr[W - 1];
        }
      }
}

static void
direct_range (gint64 begin, gint64 end, int ith, gpointer data)
{
  ConvBench *cb = data;
  for (gint64 t = begin; t < end; t++) {
    gint64 co0 = t * 4, nco = MIN (4, cb->c.c_out - co0);
    direct_rows (cb->y, cb->x, cb->w, cb->c.c_in, cb->c.h, cb->c.w, co0, nco);
  }
}

static void
run_direct_conv (gpointer data)
{
  ConvBench *cb = data;
  easel_cpu_pool_run (cb->pool, (cb->c.c_out + 3) / 4, 1, direct_range, cb);
}

/* GFLOP/s of a 3x3, stride 1, pad 1 conv ch -> ch at hw x hw; *direct: the direct kernel's, when asked */
static double
conv3x3_gflops (EaselCpuPool *pool, gint64 ch, gint64 hw, double *direct, gsize *ws)
{
  ConvBench cb = { pool };
  easel_cpu_conv2d_init (&cb.c, 1, ch, hw, hw, ch, 3, 3, 1, 1);
  cb.x = rand_buf (ch * hw * hw, 6);
  cb.w = rand_buf (ch * ch * 9, 7);
  cb.b = rand_buf (ch, 8);
  cb.y = g_new (float, ch * hw * hw);
  *ws = easel_cpu_conv2d_workspace (&cb.c, easel_cpu_pool_get_n_threads (pool));
  cb.work = g_new (float, *ws);
  double flops = 2.0 * ch * ch * 9 * hw * hw;
  double gf = flops / time_best (run_conv, &cb) / 1e9;
  if (direct)
    *direct = flops / time_best (run_direct_conv, &cb) / 1e9;
  g_free (cb.x);
  g_free (cb.w);
  g_free (cb.b);
  g_free (cb.y);
  g_free (cb.work);
  return gf;
}

typedef struct {
  EaselCpuPool *pool;
  EaselCpuAttention a;
  float *q, *k, *v, *o, *work;
} AttnBench;

static void
run_attention (gpointer data)
{
  AttnBench *ab = data;
  easel_cpu_attention_f32 (ab->pool, ab->o, ab->q, ab->k, ab->v, &ab->a, ab->work);
}

typedef struct {
  EaselCpuPool *pool;
  float *x, *y, *g, *b;
} NormBench;

static void
run_group_norm (gpointer data)
{
  NormBench *nb = data;
  easel_cpu_group_norm_f32 (nb->pool, nb->y, nb->x, nb->g, nb->b, 1, 320, 4096, 32, 1e-5f, TRUE);
}

static void
run_geglu (gpointer data)
{
  NormBench *nb = data;
  easel_cpu_geglu_f32 (nb->pool, nb->y, nb->x, 4096, 1280);
}

static void
nop_range (gint64 begin, gint64 end, int ith, gpointer data)
{
}

static void
run_pool_nop (gpointer data)
{
  EaselCpuPool *pool = data;
  for (int i = 0; i < 1000; i++)
    easel_cpu_pool_run (pool, 1000, 1, nop_range, NULL);
}

int
main (int argc, char **argv)
{
  g_autoptr(EaselCpuPool) pool = easel_cpu_pool_new (0);
  int nth = easel_cpu_pool_get_n_threads (pool);
  g_print ("easel cpu kernels, %d threads (best of >= %d runs, >= %.1f s each)\n", nth, MIN_RUNS, MIN_SECONDS);

  /* linear at SD 1.5 64x64-latent sizes: x (4096, 320) · wᵀ */
  static const gint64 lin[][3] = { { 4096, 320, 320 }, { 4096, 1280, 320 } };
  double ref_big = 0.0;
  for (guint i = 0; i < G_N_ELEMENTS (lin); i++) {
    gint64 M = lin[i][0], N = lin[i][1], K = lin[i][2];
    double plain = plain_sgemm_gflops (nth, M, N, K, TRUE);
    ref_big = MAX (ref_big, plain);
    LinearBench l = { pool, M, N, K, rand_buf (M * K, 3), rand_buf (N * K, 4), rand_buf (N, 5), g_new (float, M * N) };
    double s = time_best (run_linear, &l);
    double gf = 2.0 * M * N * K / s / 1e9;
    g_print ("sgemm  %5" G_GINT64_FORMAT "x%-5" G_GINT64_FORMAT "x%-5" G_GINT64_FORMAT " plain %7.1f GFLOP/s | linear (+bias) %7.1f GFLOP/s  ratio %.2f\n",
             M, N, K, plain, gf, gf / plain);
    g_free (l.x);
    g_free (l.w);
    g_free (l.b);
    g_free (l.y);
  }

  /* conv2d 3x3 320 -> 320 at 64x64: the GEMM is (320, 2880) · (2880, 4096) */
  {
    double direct;
    gsize ws;
    double plain = plain_sgemm_gflops (nth, 320, 4096, 2880, FALSE);
    double im2col = conv3x3_gflops (pool, 320, 64, &direct, &ws);
    g_print ("conv2d 3x3 320->320 64x64: plain sgemm of its GEMM %7.1f | im2col+sgemm %7.1f GFLOP/s  ratio %.2f"
             " | direct 3x3 %6.1f GFLOP/s  ratio %.2f\n", plain, im2col, im2col / plain, direct, direct / plain);
    /* VAE-decoder-like: 128 channels at 256x256 (the column buffer stays bounded) */
    double gf = conv3x3_gflops (pool, 128, 256, NULL, &ws);
    g_print ("conv2d 3x3 128->128 256x256: im2col+sgemm %7.1f GFLOP/s  ratio %.2f (column buffers %.1f MiB in all)\n",
             gf, gf / ref_big, ws * 4.0 / 1048576.0);
  }

  /* self-attention, 4096 tokens, 8 heads x 40 (SD 1.5 at 512²), fused QKV buffer */
  {
    AttnBench ab = { pool };
    const gint64 L = 4096, H = 8, d = 40, C = H * d;
    ab.a = (EaselCpuAttention) { .batch = 1, .heads = H, .lq = L, .lk = L, .d = d, .ld_q = 3 * C, .ld_k = 3 * C,
                                 .ld_v = 3 * C, .ld_o = C, .scale = 1.0f / sqrtf ((float) d) };
    float *qkv = rand_buf (L * 3 * C, 12);
    ab.q = qkv;
    ab.k = qkv + C;
    ab.v = qkv + 2 * C;
    ab.o = g_new (float, L * C);
    ab.work = g_new (float, easel_cpu_attention_workspace (&ab.a, nth));
    double flops = 4.0 * H * L * L * d;
    double plain = plain_sgemm_gflops (nth, L, L, d, TRUE);
    double gf = flops / time_best (run_attention, &ab) / 1e9;
    g_print ("attention 4096 tokens 8x40: plain sgemm Q K^T (4096x4096x40) %7.1f | attention %7.1f GFLOP/s  ratio %.2f"
             " (to the 4096x1280x320 sgemm: %.2f)\n", plain, gf, gf / plain, gf / ref_big);
    /* cross-attention to 77 tokens */
    ab.a.lk = 77;
    ab.a.ld_k = ab.a.ld_v = 2 * C;
    g_free (ab.work);
    ab.work = g_new (float, easel_cpu_attention_workspace (&ab.a, nth));
    flops = 4.0 * H * L * 77 * d;
    gf = flops / time_best (run_attention, &ab) / 1e9;
    g_print ("attention 4096 x 77 tokens 8x40 (cross): %7.1f GFLOP/s  ratio %.2f\n", gf, gf / ref_big);
    g_free (qkv);
    g_free (ab.o);
    g_free (ab.work);
  }

  /* memory-bound kernels: GB/s read + written */
  {
    NormBench nb = { pool, rand_buf (4096 * 2560, 13), g_new (float, 4096 * 2560), rand_buf (320, 14), rand_buf (320, 15) };
    double s = time_best (run_group_norm, &nb);
    g_print ("group_norm+silu (1, 320, 64x64): %.2f ms, %.1f GB/s\n", s * 1e3, 3.0 * 320 * 4096 * 4 / s / 1e9);
    s = time_best (run_geglu, &nb);
    g_print ("geglu (4096, 2x1280): %.2f ms, %.1f GB/s\n", s * 1e3, 3.0 * 4096 * 1280 * 4 / s / 1e9);
    g_free (nb.x);
    g_free (nb.y);
    g_free (nb.g);
    g_free (nb.b);
  }

  g_print ("pool: %.1f us per empty parallel-for\n", time_best (run_pool_nop, pool) * 1e3);
  return 0;
}
