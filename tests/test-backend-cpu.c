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

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/backend-cpu/permute-slice", test_permute_slice);
  g_test_add_func ("/backend-cpu/random-views", test_random_views);
  g_test_add_func ("/backend-cpu/broadcast", test_broadcast);
  g_test_add_func ("/backend-cpu/linear-f16-weights-and-rows", test_linear_f16_weights_and_rows);
  g_test_add_func ("/backend-cpu/attention-on-fused-qkv", test_attention_on_fused_qkv);
  g_test_add_func ("/backend-cpu/memory-reuse-chain", test_memory_reuse_chain);
  g_test_add_func ("/backend-cpu/errors", test_errors);
  g_test_add_func ("/backend-cpu/conv2d-ext", test_conv2d_ext);
  return g_test_run ();
}
