/* tests/test-backend-cpu.c: graphs run on the CPU backend — views and strides, broadcasting forms,
 * weight conversion, inputs and outputs, and memory reuse across a long chain — against naive
 * loops written here. (Each kernel's numerics are tested in test-cpu-ops.c.) */
#include <math.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/dtype.h"
#include "testutil.h"

static float *
random_floats (GRand *r, gsize n)
{
  float *f = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    f[i] = (float) g_rand_double_range (r, -1.0, 1.0);
  return f;
}

static void
assert_close (const float *got, const float *want, gsize n, double tol)
{
  for (gsize i = 0; i < n; i++)
    if (!(fabs ((double) got[i] - want[i]) <= tol))
      g_error ("element %" G_GSIZE_FORMAT ": got %.8g want %.8g", i, got[i], want[i]);
}

static void
test_permute_slice (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (1);
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GError) error = NULL;
  const gint64 s[3] = { 2, 3, 5 };
  g_autofree float *x = random_floats (r, 30);
  EaselTensor *in = easel_graph_input (g, "x", EASEL_DTYPE_F32, 3, s, x);
  const int perm[3] = { 2, 0, 1 };
  EaselTensor *p = easel_op_permute (g, in, perm);                 /* (5, 2, 3) */
  EaselTensor *sl = easel_op_slice (g, p, 0, 1, 3);                /* (3, 2, 3) */
  EaselTensor *y = easel_op_contiguous (g, sl);
  easel_graph_mark_output (g, y);
  easel_graph_mark_output (g, sl);
  g_assert_true (easel_backend_compute (be, g, &error));
  g_assert_no_error (error);
  float got[18], got_view[18], want[18];
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 2; b++)
      for (int c = 0; c < 3; c++)
        want[(a * 2 + b) * 3 + c] = x[(b * 3 + c) * 5 + (a + 1)];
  g_assert_true (easel_backend_read (be, y, got, &error));
  g_assert_true (easel_backend_read (be, sl, got_view, &error));   /* reading a view densifies it */
  assert_close (got, want, 18, 0);
  assert_close (got_view, want, 18, 0);
}

/* Random permutes and slices of random shapes (size-1 dims, tails past the 32-wide tiles): the
 * densified view equals a per-element walk over its strides. */
static void
test_random_views (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (11);
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (3);
  for (int trial = 0; trial < 60; trial++) {
    g_autoptr(EaselGraph) g = easel_graph_new ();
    g_autoptr(GError) error = NULL;
    int nd = g_rand_int_range (r, 1, 5);
    gint64 shape[4];
    gint64 n = 1;
    for (int d = 0; d < nd; d++)
      n *= shape[d] = g_rand_boolean (r) ? 1 + g_rand_int_range (r, 0, 3) : g_rand_int_range (r, 1, 40);
    g_autofree float *x = random_floats (r, n);
    EaselTensor *v = easel_graph_input (g, "x", EASEL_DTYPE_F32, nd, shape, x);
    int perm[4] = { 0, 1, 2, 3 };
    for (int d = nd - 1; d > 0; d--) {
      int k = g_rand_int_range (r, 0, d + 1), tmp = perm[d];
      perm[d] = perm[k];
      perm[k] = tmp;
    }
    v = easel_op_permute (g, v, perm);
    int axis = g_rand_int_range (r, 0, nd);
    gint64 start = g_rand_int_range (r, 0, (gint32) v->shape[axis]);
    v = easel_op_slice (g, v, axis, start, v->shape[axis] - start);
    easel_graph_mark_output (g, v);
    g_assert_true (easel_backend_compute (be, g, &error));
    gint64 m = easel_tensor_numel (v);
    g_autofree float *got = g_new (float, m), *want = g_new (float, m);
    g_assert_true (easel_backend_read (be, v, got, &error));
    for (gint64 i = 0; i < m; i++) {
      gint64 rem = i, off = v->offset;
      for (int d = nd - 1; d >= 0; d--) {
        off += (rem % v->shape[d]) * v->stride[d];
        rem /= v->shape[d];
      }
      want[i] = x[off];
    }
    assert_close (got, want, m, 0);
  }
}

static void
check_broadcast (GRand *r, EaselBackend *be, int nb, const gint64 *bshape)
{
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GError) error = NULL;
  const gint64 as[4] = { 2, 3, 4, 5 };
  gint64 nbel = 1;
  for (int d = 0; d < nb; d++)
    nbel *= bshape[d];
  g_autofree float *a = random_floats (r, 120), *b = random_floats (r, nbel);
  float got[120], want[120];
  EaselTensor *ta = easel_graph_input (g, "a", EASEL_DTYPE_F32, 4, as, a);
  EaselTensor *tb = easel_graph_input (g, "b", EASEL_DTYPE_F32, nb, bshape, b);
  EaselTensor *y = easel_op_mul (g, easel_op_add (g, ta, tb), tb);
  easel_graph_mark_output (g, y);
  g_assert_true (easel_backend_compute (be, g, &error));
  g_assert_true (easel_backend_read (be, y, got, &error));
  for (int i = 0; i < 120; i++) {
    int idx[4] = { i / 60, (i / 20) % 3, (i / 5) % 4, i % 5 }, bi = 0;
    for (int d = 0; d < nb; d++) {
      int ad = 4 - nb + d;
      bi = bi * (int) bshape[d] + (bshape[d] == 1 ? 0 : idx[ad]);
    }
    want[i] = (a[i] + b[bi]) * b[bi];
  }
  assert_close (got, want, 120, 1e-6);
}

static void
test_broadcast (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (2);
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (3);
  const gint64 same[4] = { 2, 3, 4, 5 }, nc11[4] = { 2, 3, 1, 1 }, c11[3] = { 3, 1, 1 }, row[1] = { 5 },
               gap[4] = { 2, 1, 4, 1 }, scalar[1] = { 1 }, mid[2] = { 4, 5 };
  check_broadcast (r, be, 4, same);
  check_broadcast (r, be, 4, nc11);
  check_broadcast (r, be, 3, c11);
  check_broadcast (r, be, 1, row);
  check_broadcast (r, be, 4, gap);
  check_broadcast (r, be, 1, scalar);
  check_broadcast (r, be, 2, mid);
}

static void
test_linear_f16_weights_and_rows (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (3);
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);
  g_autoptr(GError) error = NULL;
  const gint64 ts[2] = { 7, 6 }, ws[2] = { 4, 6 }, bs[1] = { 4 }, is[1] = { 3 };
  g_autofree float *tf = random_floats (r, 42), *wf = random_floats (r, 24), *bf = random_floats (r, 4);
  guint16 th[42], wh[24], bh[4];
  const gint32 ids[3] = { 6, 0, 3 };
  for (int i = 0; i < 42; i++) th[i] = easel_f32_to_f16 (tf[i]);
  for (int i = 0; i < 24; i++) wh[i] = easel_f32_to_f16 (wf[i]);
  for (int i = 0; i < 4; i++) bh[i] = easel_f32_to_f16 (bf[i]);

  for (int round = 0; round < 2; round++) {      /* the second compute reuses converted weights */
    g_autoptr(EaselGraph) g = easel_graph_new ();
    EaselTensor *table = easel_graph_weight (g, "emb", EASEL_DTYPE_F16, 2, ts, th);
    EaselTensor *w = easel_graph_weight (g, "w", EASEL_DTYPE_F16, 2, ws, wh);
    EaselTensor *b = easel_graph_weight (g, "b", EASEL_DTYPE_F16, 1, bs, bh);
    EaselTensor *id = easel_graph_input (g, "ids", EASEL_DTYPE_I32, 1, is, ids);
    EaselTensor *y = easel_op_linear (g, easel_op_get_rows (g, table, id), w, b);
    easel_graph_mark_output (g, y);
    g_assert_true (easel_backend_compute (be, g, &error));
    float got[12], want[12];
    g_assert_true (easel_backend_read (be, y, got, &error));
    for (int i = 0; i < 3; i++)
      for (int o = 0; o < 4; o++) {
        double acc = easel_f16_to_f32 (bh[o]);
        for (int k = 0; k < 6; k++)
          acc += (double) easel_f16_to_f32 (th[ids[i] * 6 + k]) * easel_f16_to_f32 (wh[o * 6 + k]);
        want[i * 4 + o] = (float) acc;
      }
    assert_close (got, want, 12, 1e-5);
  }
}

/* Weights over the cache budget are converted into scratch on every use: two large F16 linears in
 * a row (each 640 × 640, 1.6 MB as fp32, over the 1 MB always-kept size) with a zero budget give the
 * same result as with the default budget. */
static void
test_weights_over_budget (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (12);
  enum { K = 640, M = 3 };
  const gint64 ws[2] = { K, K }, xs[2] = { M, K };
  g_autofree float *x = random_floats (r, M * K);
  g_autofree guint16 *w1 = g_new (guint16, K * K), *w2 = g_new (guint16, K * K);
  for (int i = 0; i < K * K; i++) {
    w1[i] = easel_f32_to_f16 ((float) g_rand_double_range (r, -0.05, 0.05));
    w2[i] = easel_f32_to_f16 ((float) g_rand_double_range (r, -0.05, 0.05));
  }
  float out[2][M * K];
  for (int budget = 0; budget < 2; budget++) {
    if (budget == 0)
      g_setenv ("EASEL_CPU_WEIGHT_CACHE_MB", "0", TRUE);
    else
      g_unsetenv ("EASEL_CPU_WEIGHT_CACHE_MB");
    g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);
    for (int round = 0; round < 2; round++) {   /* the second compute finds nothing kept (budget 0) */
      g_autoptr(EaselGraph) g = easel_graph_new ();
      g_autoptr(GError) error = NULL;
      EaselTensor *in = easel_graph_input (g, "x", EASEL_DTYPE_F32, 2, xs, x);
      EaselTensor *y = easel_op_linear (g, easel_op_linear (g, in, easel_graph_weight (g, "w1", EASEL_DTYPE_F16, 2, ws, w1), NULL),
                                        easel_graph_weight (g, "w2", EASEL_DTYPE_F16, 2, ws, w2), NULL);
      easel_graph_mark_output (g, y);
      g_assert_true (easel_backend_compute (be, g, &error));
      g_assert_true (easel_backend_read (be, y, out[budget], &error));
    }
  }
  assert_close (out[0], out[1], M * K, 0);
  /* and against a double-precision reference */
  for (int i = 0; i < M; i++)
    for (int o = 0; o < K; o += 97) {
      double h[K], acc = 0;
      for (int k = 0; k < K; k++) {
        double a = 0;
        for (int j = 0; j < K; j++)
          a += (double) x[i * K + j] * easel_f16_to_f32 (w1[k * K + j]);
        h[k] = a;
      }
      for (int k = 0; k < K; k++)
        acc += h[k] * easel_f16_to_f32 (w2[o * K + k]);
      g_assert_cmpfloat_with_epsilon (out[0][i * K + o], acc, 1e-4);
    }
}

/* Other weights at the address of earlier ones (a model freed and the next one mapped where it was)
 * are converted again, not served from the cache. */
static void
test_weights_at_reused_address (void)
{
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (1);
  const gint64 ws[2] = { 2, 2 }, xs[2] = { 1, 2 };
  const float x[2] = { 1.0f, 2.0f };
  guint16 w[4];
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 4; i++)
      w[i] = easel_f32_to_f16 ((float) (round * 10 + i));
    g_autoptr(EaselGraph) g = easel_graph_new ();
    g_autoptr(GError) error = NULL;
    EaselTensor *y = easel_op_linear (g, easel_graph_input (g, "x", EASEL_DTYPE_F32, 2, xs, x),
                                      easel_graph_weight (g, "w", EASEL_DTYPE_F16, 2, ws, w), NULL);
    easel_graph_mark_output (g, y);
    float got[2];
    g_assert_true (easel_backend_compute (be, g, &error));
    g_assert_true (easel_backend_read (be, y, got, &error));
    g_assert_cmpfloat (got[0], ==, 1.0f * (round * 10) + 2.0f * (round * 10 + 1));
    g_assert_cmpfloat (got[1], ==, 1.0f * (round * 10 + 2) + 2.0f * (round * 10 + 3));
  }
}

/* Attention on slices of one fused projection, heads 2, against a naive softmax. */
static void
test_attention_on_fused_qkv (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (4);
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GError) error = NULL;
  enum { B = 2, L = 9, H = 2, D = 4, C = H * D };
  const gint64 s[3] = { B, L, 3 * C };
  g_autofree float *qkv = random_floats (r, B * L * 3 * C);
  EaselTensor *x = easel_graph_input (g, "qkv", EASEL_DTYPE_F32, 3, s, qkv);
  EaselTensor *q = easel_op_slice (g, x, 2, 0, C), *k = easel_op_slice (g, x, 2, C, C), *v = easel_op_slice (g, x, 2, 2 * C, C);
  EaselTensor *o = easel_op_attention (g, q, k, v, H, 0.5f, TRUE);
  easel_graph_mark_output (g, o);
  g_assert_true (easel_backend_compute (be, g, &error));
  float got[B * L * C], want[B * L * C];
  g_assert_true (easel_backend_read (be, o, got, &error));
  for (int b = 0; b < B; b++)
    for (int h = 0; h < H; h++)
      for (int i = 0; i < L; i++) {
        double sc[L], m = -INFINITY, sum = 0;
        for (int j = 0; j <= i; j++) {
          double dot = 0;
          for (int e = 0; e < D; e++)
            dot += (double) qkv[(b * L + i) * 3 * C + h * D + e] * qkv[(b * L + j) * 3 * C + C + h * D + e];
          sc[j] = dot * 0.5;
          m = fmax (m, sc[j]);
        }
        for (int j = 0; j <= i; j++)
          sum += (sc[j] = exp (sc[j] - m));
        for (int e = 0; e < D; e++) {
          double acc = 0;
          for (int j = 0; j <= i; j++)
            acc += sc[j] / sum * qkv[(b * L + j) * 3 * C + 2 * C + h * D + e];
          want[(b * L + i) * C + h * D + e] = (float) acc;
        }
      }
  assert_close (got, want, B * L * C, 2e-6);
}

/* An input created after other nodes must not share storage with nodes computed before it: inputs
 * are written before the first node runs. */
static void
test_late_input (void)
{
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (1);
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GError) error = NULL;
  const gint64 s[1] = { 64 };
  float x[64], z[64], got[64];
  for (int i = 0; i < 64; i++) {
    x[i] = (float) i;
    z[i] = 1000.0f + (float) i;
  }
  EaselTensor *h = easel_graph_input (g, "x", EASEL_DTYPE_F32, 1, s, x);
  for (int k = 0; k < 4; k++)
    h = easel_op_scale (g, h, 2.0f);          /* each intermediate dies at once: its storage is free */
  EaselTensor *late = easel_graph_input (g, "z", EASEL_DTYPE_F32, 1, s, z);
  EaselTensor *y = easel_op_add (g, h, late);
  easel_graph_mark_output (g, y);
  g_assert_true (easel_backend_compute (be, g, &error));
  g_assert_true (easel_backend_read (be, y, got, &error));
  for (int i = 0; i < 64; i++)
    g_assert_cmpfloat (got[i], ==, 16.0f * i + 1000.0f + i);
}

/* A long chain with skips: the arena reuses storage, and the result must not notice. */
static void
test_memory_reuse_chain (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (5);
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GError) error = NULL;
  const gint64 s[4] = { 1, 4, 6, 6 };
  g_autofree float *x = random_floats (r, 144);
  double want[144];
  EaselTensor *h = easel_graph_input (g, "x", EASEL_DTYPE_F32, 4, s, x), *skip = h;
  for (int i = 0; i < 144; i++)
    want[i] = x[i];
  double skipv[144];
  memcpy (skipv, want, sizeof want);
  for (int step = 0; step < 40; step++) {
    h = easel_op_scale (g, easel_op_silu (g, h), 0.9f);
    for (int i = 0; i < 144; i++)
      want[i] = 0.9 * (want[i] / (1.0 + exp (-want[i])));
    if (step % 7 == 3) {
      h = easel_op_add (g, h, skip);
      for (int i = 0; i < 144; i++)
        want[i] += skipv[i];
      skip = h;
      memcpy (skipv, want, sizeof want);
    }
    if (step == 20) {
      h = easel_op_concat (g, easel_op_slice (g, h, 1, 2, 2), easel_op_slice (g, h, 1, 0, 2), 1);
      double t[144];
      memcpy (t, want, sizeof t);
      for (int i = 0; i < 72; i++) {
        want[i] = t[72 + i];
        want[72 + i] = t[i];
      }
      skip = h;
      memcpy (skipv, want, sizeof want);
    }
  }
  easel_graph_mark_output (g, h);
  g_assert_true (easel_backend_compute (be, g, &error));
  float got[144], wantf[144];
  g_assert_true (easel_backend_read (be, h, got, &error));
  for (int i = 0; i < 144; i++)
    wantf[i] = (float) want[i];
  assert_close (got, wantf, 144, 1e-5);
}

static void
test_errors (void)
{
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (1);
  g_autoptr(GError) e1 = NULL, e2 = NULL;
  const gint64 s[2] = { 2, 3 }, ws[2] = { 4, 5 };
  static const float w[20];
  {
    g_autoptr(EaselGraph) g = easel_graph_new ();
    EaselTensor *x = easel_graph_input (g, "x", EASEL_DTYPE_F32, 2, s, NULL);
    easel_graph_mark_output (g, easel_op_silu (g, x));
    g_assert_false (easel_backend_compute (be, g, &e1));           /* input without data */
    g_assert_nonnull (strstr (e1->message, "'x'"));
  }
  {
    static const float xs[6];
    g_autoptr(EaselGraph) g = easel_graph_new ();
    EaselTensor *x = easel_graph_input (g, "x", EASEL_DTYPE_F32, 2, s, xs);
    easel_op_linear (g, x, easel_graph_weight (g, "fc.weight", EASEL_DTYPE_F32, 2, ws, w), NULL);
    g_assert_false (easel_backend_compute (be, g, &e2));           /* shape error surfaces here */
    g_assert_nonnull (strstr (e2->message, "fc.weight"));
  }
}

/* conv2d_ext: F.pad (0, 1, 0, 1) then a stride-2 3x3 conv (the VAE downsampler), odd and even sizes,
 * against a naive loop over the explicitly padded input. */
static void
check_conv2d_ext (GRand *r, EaselBackend *be, gint64 H, gint64 W, int stride, int pad, int eh, int ew)
{
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GError) error = NULL;
  const gint64 ci = 3, co = 2, xs[4] = { 1, ci, H, W }, ws[4] = { co, ci, 3, 3 }, bs[1] = { co };
  g_autofree float *x = random_floats (r, ci * H * W), *w = random_floats (r, co * ci * 9), *b = random_floats (r, co);
  EaselTensor *in = easel_graph_input (g, "x", EASEL_DTYPE_F32, 4, xs, x);
  EaselTensor *y = easel_op_conv2d_ext (g, in, easel_graph_weight (g, "w", EASEL_DTYPE_F32, 4, ws, w),
                                        easel_graph_weight (g, "b", EASEL_DTYPE_F32, 1, bs, b), stride, pad, eh, ew);
  gint64 oh = (H + 2 * pad + eh - 3) / stride + 1, ow = (W + 2 * pad + ew - 3) / stride + 1;
  g_assert_no_error (easel_graph_error (g));
  g_assert_cmpint (y->shape[2], ==, oh);
  g_assert_cmpint (y->shape[3], ==, ow);
  easel_graph_mark_output (g, y);
  g_assert_true (easel_backend_compute (be, g, &error));
  g_autofree float *got = g_new (float, co * oh * ow), *want = g_new (float, co * oh * ow);
  g_assert_true (easel_backend_read (be, y, got, &error));
  for (gint64 o = 0; o < co; o++)
    for (gint64 i = 0; i < oh; i++)
      for (gint64 j = 0; j < ow; j++) {
        double acc = b[o];
        for (gint64 c = 0; c < ci; c++)
          for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
              gint64 iy = i * stride - pad + ky, ix = j * stride - pad + kx;
              if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                acc += (double) x[(c * H + iy) * W + ix] * w[((o * ci + c) * 3 + ky) * 3 + kx];
            }
        want[(o * oh + i) * ow + j] = (float) acc;
      }
  assert_close (got, want, co * oh * ow, 1e-5);
}

static void
test_conv2d_ext (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (7);
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);
  check_conv2d_ext (r, be, 8, 8, 2, 0, 1, 1);     /* 8x8 -> 4x4 */
  check_conv2d_ext (r, be, 7, 10, 2, 0, 1, 1);    /* odd height */
  check_conv2d_ext (r, be, 5, 6, 1, 1, 2, 0);     /* extra rows on top of symmetric padding */
  check_conv2d_ext (r, be, 6, 6, 1, 1, 0, 0);     /* plain conv2d */
}

/* GroupNorm in halves: group_stats of a tensor and of a slice view (mean, M2) against double loops,
 * and group_norm_apply with those statistics (rstd from M2 here) equal to the one-op group_norm.
 * Values sit around 50 so that a naive sum of squares would cancel. */
static void
test_group_norm_halves (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (9);
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GError) error = NULL;
  const gint64 B = 2, C = 6, H = 5, W = 7, G = 3, cg = C / G, xs[4] = { B, C, H, W }, cs[1] = { C };
  const gint64 ss[3] = { B, G, 2 }, x0 = 2, xw = 4;          /* the slice: columns [2, 6) */
  const float eps = 1e-6f;
  g_autofree float *x = random_floats (r, B * C * H * W), *gamma = random_floats (r, C), *beta = random_floats (r, C);
  float given[12], got_full[12], got_slice[12], want_full[12], want_slice[12];
  for (gint64 i = 0; i < B * C * H * W; i++)
    x[i] = 50.0f + 3.0f * x[i] + (float) (i / (H * W) % C);   /* channels of a group differ */

  for (gint64 s = 0; s < B * G; s++)
    for (int sl = 0; sl < 2; sl++) {
      gint64 lo = sl ? x0 : 0, hi = sl ? x0 + xw : W, n = cg * H * (hi - lo);
      double sum = 0, m2 = 0;
      for (gint64 c = 0; c < cg; c++)
        for (gint64 y = 0; y < H; y++)
          for (gint64 xi = lo; xi < hi; xi++)
            sum += x[((s * cg + c) * H + y) * W + xi];
      for (gint64 c = 0; c < cg; c++)
        for (gint64 y = 0; y < H; y++)
          for (gint64 xi = lo; xi < hi; xi++) {
            double d = x[((s * cg + c) * H + y) * W + xi] - sum / n;
            m2 += d * d;
          }
      float *want = sl ? want_slice : want_full;
      want[2 * s] = (float) (sum / n);
      want[2 * s + 1] = (float) m2;
      if (!sl) {
        given[2 * s] = (float) (sum / n);
        given[2 * s + 1] = (float) (1.0 / sqrt (m2 / n + eps));
      }
    }

  EaselTensor *in = easel_graph_input (g, "x", EASEL_DTYPE_F32, 4, xs, x);
  EaselTensor *st = easel_graph_input (g, "stats", EASEL_DTYPE_F32, 3, ss, given);
  EaselTensor *gm = easel_graph_weight (g, "gamma", EASEL_DTYPE_F32, 1, cs, gamma);
  EaselTensor *bt = easel_graph_weight (g, "beta", EASEL_DTYPE_F32, 1, cs, beta);
  EaselTensor *full = easel_op_group_stats (g, in, G);
  EaselTensor *part = easel_op_group_stats (g, easel_op_slice (g, in, 3, x0, xw), G);
  EaselTensor *one[2], *two[2];
  for (int silu = 0; silu < 2; silu++) {
    one[silu] = easel_op_group_norm (g, in, gm, bt, G, eps, silu);
    two[silu] = easel_op_group_norm_apply (g, in, gm, bt, st, G, silu);
    easel_graph_mark_output (g, one[silu]);
    easel_graph_mark_output (g, two[silu]);
  }
  easel_graph_mark_output (g, full);
  easel_graph_mark_output (g, part);
  g_assert_no_error (easel_graph_error (g));
  g_assert_cmpint (full->shape[0], ==, B);
  g_assert_cmpint (full->shape[1], ==, G);
  g_assert_cmpint (full->shape[2], ==, 2);
  g_assert_true (easel_backend_compute (be, g, &error));
  g_assert_true (easel_backend_read (be, full, got_full, &error));
  g_assert_true (easel_backend_read (be, part, got_slice, &error));
  g_assert_no_error (error);
  for (int i = 0; i < 12; i++) {
    g_assert_cmpfloat_with_epsilon (got_full[i], want_full[i], 1e-6 * fabs (want_full[i]) + 1e-5);
    g_assert_cmpfloat_with_epsilon (got_slice[i], want_slice[i], 1e-6 * fabs (want_slice[i]) + 1e-5);
  }
  const gsize n = B * C * H * W;
  g_autofree float *a = g_new (float, n), *b = g_new (float, n);
  for (int silu = 0; silu < 2; silu++) {
    g_assert_true (easel_backend_read (be, one[silu], a, &error));
    g_assert_true (easel_backend_read (be, two[silu], b, &error));
    assert_close (b, a, n, 2e-5);
    for (gsize i = 0; i < n; i++) {             /* and the formula itself */
      gint64 c = i / (H * W) % C, s = i / (H * W * cg);
      double v = (x[i] - (double) given[2 * s]) * given[2 * s + 1] * gamma[c] + beta[c];
      if (silu)
        v = v / (1.0 + exp (-v));
      g_assert_cmpfloat_with_epsilon (b[i], v, 2e-5);
    }
  }

  /* statistics of the wrong shape are a graph error */
  g_autoptr(EaselGraph) bad = easel_graph_new ();
  const gint64 wrong[3] = { B, G + 1, 2 };
  EaselTensor *bx = easel_graph_input (bad, "x", EASEL_DTYPE_F32, 4, xs, x);
  easel_op_group_norm_apply (bad, bx, NULL, NULL, easel_graph_input (bad, "s", EASEL_DTYPE_F32, 3, wrong, given), G, FALSE);
  g_assert_nonnull (easel_graph_error (bad));
}

/* relu: max (x, 0), zeros and negatives included */
static void
test_relu (void)
{
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GError) error = NULL;
  const float x[6] = { -2.0f, -0.0f, 0.0f, 0.5f, 3.0f, -1e-30f };
  const float want[6] = { 0.0f, 0.0f, 0.0f, 0.5f, 3.0f, 0.0f };
  const gint64 s[2] = { 2, 3 };
  EaselTensor *y = easel_op_unary (g, EASEL_UNARY_RELU, easel_graph_input (g, "x", EASEL_DTYPE_F32, 2, s, x));
  easel_graph_mark_output (g, y);
  g_assert_true (easel_backend_compute (be, g, &error));
  float got[6];
  g_assert_true (easel_backend_read (be, y, got, &error));
  assert_close (got, want, 6, 0);
}

/* avg_pool2d k = 2 on 3 x 5 (ceil mode: the last row and column are windows of 2 or 1) against sums written out */
static void
test_avg_pool2d (void)
{
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GError) error = NULL;
  float x[2 * 15];
  for (int i = 0; i < 30; i++)
    x[i] = (float) i;   /* channel c, row a, column b: 15 c + 5 a + b */
  const gint64 s[4] = { 1, 2, 3, 5 };
  EaselTensor *y = easel_op_avg_pool2d (g, easel_graph_input (g, "x", EASEL_DTYPE_F32, 4, s, x), 2);
  easel_graph_mark_output (g, y);
  g_assert_cmpint (y->shape[2], ==, 2);
  g_assert_cmpint (y->shape[3], ==, 3);
  g_assert_true (easel_backend_compute (be, g, &error));
  float got[12], want[12];
  for (int c = 0; c < 2; c++) {
    float o = 15.0f * c;
    want[c * 6 + 0] = o + (0 + 1 + 5 + 6) / 4.0f;
    want[c * 6 + 1] = o + (2 + 3 + 7 + 8) / 4.0f;
    want[c * 6 + 2] = o + (4 + 9) / 2.0f;
    want[c * 6 + 3] = o + (10 + 11) / 2.0f;
    want[c * 6 + 4] = o + (12 + 13) / 2.0f;
    want[c * 6 + 5] = o + 14;
  }
  g_assert_true (easel_backend_read (be, y, got, &error));
  assert_close (got, want, 12, 1e-6);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/backend-cpu/permute-slice", test_permute_slice);
  g_test_add_func ("/backend-cpu/random-views", test_random_views);
  g_test_add_func ("/backend-cpu/broadcast", test_broadcast);
  g_test_add_func ("/backend-cpu/linear-f16-weights-and-rows", test_linear_f16_weights_and_rows);
  g_test_add_func ("/backend-cpu/weights-over-budget", test_weights_over_budget);
  g_test_add_func ("/backend-cpu/weights-at-reused-address", test_weights_at_reused_address);
  g_test_add_func ("/backend-cpu/attention-on-fused-qkv", test_attention_on_fused_qkv);
  g_test_add_func ("/backend-cpu/memory-reuse-chain", test_memory_reuse_chain);
  g_test_add_func ("/backend-cpu/late-input", test_late_input);
  g_test_add_func ("/backend-cpu/errors", test_errors);
  g_test_add_func ("/backend-cpu/conv2d-ext", test_conv2d_ext);
  g_test_add_func ("/backend-cpu/group-norm-halves", test_group_norm_halves);
  g_test_add_func ("/backend-cpu/relu", test_relu);
  g_test_add_func ("/backend-cpu/avg-pool2d", test_avg_pool2d);
  return g_test_run ();
}
