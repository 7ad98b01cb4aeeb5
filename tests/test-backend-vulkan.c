/* tests/test-backend-vulkan.c: every op of graph.h on the Vulkan backend against the CPU backend
 * (STYLE.md V8, as ggml's test-backend-ops), with odd shapes so that every tile, workgroup and
 * key block has a tail, and the CPU backend's graph tests (views, broadcasts, weight reuse,
 * fused-QKV attention, memory reuse) rerun on Vulkan; then the replay of recorded graphs (what
 * makes a new recording, what survives a failure, and sd1_tiny's UNet replayed against fresh recordings).
 *
 * Error measure: NMSE = Σ (got - want)² / Σ want², per op:
 *  - 1e-10 where both backends see the same numbers (fp32 activations, F16 weights that both use
 *    exactly): only the order of fp32 sums and the last ulp of exp/erf differ (~1e-7 relative,
 *    NMSE ~1e-13); an indexing bug gives NMSE ~1.
 *    F32 matrix weights that are not exactly fp16 values stay fp32 on the device, so they are exact too.
 *  - 5e-7 where Vulkan rounds F32 weights to fp16 ($EASEL_VULKAN_LOSSY_F16=1 on a device with 16-bit
 *    storage): each weight moves by up to 2^-11 relative, uniformly, so a product's relative variance
 *    is about (2^-11)² / 3 ≈ 8e-8; 5e-7 leaves a factor 6.
 *  - 0 for copies (contiguous, concat, upsample, get_rows of F16): bits move unchanged.
 *  - 1e-7 for the timestep embedding: t · exp (-ln 1e4 · i / half) in fp32, t up to 1000, so one ulp
 *    of exp (CPU libm vs GPU) moves the argument by ~6e-5 and cos/sin by as much: NMSE ≲ 4e-9.
 * With no Vulkan device the suite skips (TAP "1..0 # SKIP"), except under CI=true, where lavapipe
 * must be there. With $EASEL_VULKAN_VALIDATION=1 (the suite's setting) any validation error fails. */
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/easel.h"
#include "engine/vulkan/devices.h"
#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/unet.h"
#include "testutil.h"

static EaselBackend *vk, *cpu;

typedef EaselTensor *(*BuildFunc) (EaselGraph *g, gconstpointer data);

static float *
random_floats (GRand *r, gsize n, double range)
{
  float *f = g_new (float, MAX (n, 1));
  for (gsize i = 0; i < n; i++)
    f[i] = (float) g_rand_double_range (r, -range, range);
  return f;
}

static guint16 *
to_half (const float *f, gsize n, guint16 (*convert) (float))
{
  guint16 *h = g_new (guint16, MAX (n, 1));
  for (gsize i = 0; i < n; i++)
    h[i] = convert (f[i]);
  return h;
}

#define to_f16(f, n)  to_half ((f), (n), easel_f32_to_f16)
#define to_bf16(f, n) to_half ((f), (n), easel_f32_to_bf16)

static void
check_validation (void)
{
  gint errors = easel_backend_vulkan_validation_errors (vk);
  if (errors > 0)
    g_error ("%d Vulkan validation errors (printed above)", errors);
}

/* runs build on a backend; returns the output, read back densely */
static float *
run (EaselBackend *be, BuildFunc build, gconstpointer data, gint64 *n_out)
{
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GError) error = NULL;
  EaselTensor *y = build (g, data);
  easel_graph_mark_output (g, y);
  if (!easel_backend_compute (be, g, &error))
    g_error ("%s: compute: %s", easel_backend_name (be), error->message);
  *n_out = easel_tensor_numel (y);
  float *out = g_new (float, MAX (*n_out, 1));
  if (!easel_backend_read (be, y, out, &error))
    g_error ("%s: read: %s", easel_backend_name (be), error->message);
  return out;
}

/* the graph on Vulkan backend be against the CPU: NMSE <= max_nmse (a non-finite value on Vulkan
 * fails); prints the worst element when not. Returns max |CPU value|. */
static double
compare_on (EaselBackend *be, const char *label, BuildFunc build, gconstpointer data, double max_nmse)
{
  gint64 n_want = 0, n_got = 0;
  g_autofree float *want = run (cpu, build, data, &n_want);
  g_autofree float *got = run (be, build, data, &n_got);
  double err = 0, ref = 0, worst = -1, big = 0;
  gint64 worst_i = 0;
  g_assert_cmpint (n_want, ==, n_got);
  for (gint64 i = 0; i < n_want; i++) {
    double d = (double) got[i] - want[i];
    if (!isfinite (got[i]))
      d = INFINITY;
    err += d * d;
    ref += (double) want[i] * want[i];
    big = fmax (big, fabs (want[i]));
    if (fabs (d) > worst) {
      worst = fabs (d);
      worst_i = i;
    }
  }
  double nmse = ref > 0 ? err / ref : err;
  g_test_message ("%s: %" G_GINT64_FORMAT " values, NMSE %.3g (max %.3g)", label, n_want, nmse, max_nmse);
  if (!(nmse <= max_nmse))
    g_error ("%s: NMSE %.3g > %.3g; worst [%" G_GINT64_FORMAT "] got %.8g want %.8g", label, nmse, max_nmse, worst_i,
             got[worst_i], want[worst_i]);
  check_validation ();
  return big;
}

#define compare(label, build, data, max_nmse) compare_on (vk, (label), (build), (data), (max_nmse))

#define NMSE_SAME 1e-10
#define NMSE_FP16_WEIGHTS 5e-7

/* --- data shared by the per-op builds ------------------------------------------------------------ */

typedef struct {
  int n_dims;
  gint64 shape[4];
  const float *x;
  /* op parameters */
  int axes[4];
  int i0, i1, i2;
  float f0;
  EaselDType wdtype;
  const void *w, *b, *w2;
  gint64 wshape[4];
} Case;

static EaselTensor *
input (EaselGraph *g, const Case *c)
{
  return easel_graph_input (g, "x", EASEL_DTYPE_F32, c->n_dims, c->shape, c->x);
}

/* --- contiguous ---------------------------------------------------------------------------------- */

static EaselTensor *
build_permute (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  EaselTensor *p = easel_op_permute (g, input (g, c), c->axes);
  return easel_op_contiguous (g, easel_op_slice (g, p, 1, 1, p->shape[1] - 2));
}

/* a transposed F16 weight made dense (OpenCLIP's text_projection): weights outside the matrix ops
 * are bound as fp32, so the copy is of 4-byte elements */
static EaselTensor *
build_weight_transpose (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  const int perm[2] = { 1, 0 };
  EaselTensor *w = easel_graph_weight (g, "proj", EASEL_DTYPE_F16, 2, c->wshape, c->w);
  return easel_op_add (g, easel_op_contiguous (g, easel_op_permute (g, w, perm)), input (g, c));
}

static void
test_contiguous (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (11);
  g_autofree float *x = random_floats (r, 3 * 5 * 7 * 4, 1);
  Case c = { 4, { 3, 5, 7, 4 }, x, { 2, 0, 3, 1 } };
  compare ("contiguous (permute + slice)", build_permute, &c, 0);
  g_autofree float *w = random_floats (r, 6 * 5, 1);
  g_autofree guint16 *wh = to_f16 (w, 6 * 5);
  Case t = { 2, { 5, 6 }, x, .wdtype = EASEL_DTYPE_F16, .w = wh, .wshape = { 6, 5 } };
  compare ("contiguous of a transposed F16 weight", build_weight_transpose, &t, NMSE_SAME);
}

/* --- linear -------------------------------------------------------------------------------------- */

static EaselTensor *
build_linear (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  EaselTensor *w = easel_graph_weight (g, "fc.weight", c->wdtype, 2, c->wshape, c->w);
  const gint64 bs[1] = { c->wshape[0] };
  EaselTensor *b = c->b ? easel_graph_weight (g, "fc.bias", EASEL_DTYPE_F32, 1, bs, c->b) : NULL;
  if (c->i0 > 0)      /* a slice of rows of a fused weight */
    w = easel_op_slice (g, w, 0, c->i0, c->wshape[0] - c->i0);
  if (b && c->i0 > 0)
    b = easel_op_slice (g, b, 0, c->i0, c->wshape[0] - c->i0);
  return easel_op_linear (g, input (g, c), w, b);
}

static void
test_linear (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (12);
  enum { M0 = 2, M1 = 37, K = 67, N = 45 };
  g_autofree float *x = random_floats (r, M0 * M1 * K, 1), *w = random_floats (r, N * K, 0.2), *b = random_floats (r, N, 1);
  g_autofree guint16 *wh = to_f16 (w, N * K), *wb = to_bf16 (w, N * K);
  Case c = { 3, { M0, M1, K }, x, .wdtype = EASEL_DTYPE_F16, .w = wh, .b = b, .wshape = { N, K } };
  compare ("linear, F16 weights", build_linear, &c, NMSE_SAME);
  c.b = NULL;
  compare ("linear, no bias", build_linear, &c, NMSE_SAME);
  c.wdtype = EASEL_DTYPE_BF16;
  c.w = wb;
  compare ("linear, BF16 weights (exact in fp16)", build_linear, &c, NMSE_SAME);
  c.wdtype = EASEL_DTYPE_F32;
  c.w = w;
  c.b = b;
  compare ("linear, F32 weights (kept fp32)", build_linear, &c, NMSE_SAME);
  c.wdtype = EASEL_DTYPE_F16;
  c.w = wh;
  c.i0 = 13;
  compare ("linear, rows 13.. of a fused weight", build_linear, &c, NMSE_SAME);
  /* one row, wide K: a single tile row, many K steps */
  g_autofree float *x1 = random_floats (r, 1 * 1000, 1), *w1 = random_floats (r, 3 * 1000, 0.1);
  g_autofree guint16 *w1h = to_f16 (w1, 3000);
  Case c1 = { 2, { 1, 1000 }, x1, .wdtype = EASEL_DTYPE_F16, .w = w1h, .wshape = { 3, 1000 } };
  compare ("linear, 1 x 1000 -> 3", build_linear, &c1, NMSE_SAME);
  /* K and N multiples of 8, M past a tile: the cooperative-matrix shaders' vector loads */
  g_autofree float *x2 = random_floats (r, 150 * 96, 1), *w2 = random_floats (r, 136 * 96, 0.1), *b2 = random_floats (r, 136, 1);
  g_autofree guint16 *w2h = to_f16 (w2, 136 * 96);
  Case c2 = { 2, { 150, 96 }, x2, .wdtype = EASEL_DTYPE_F16, .w = w2h, .b = b2, .wshape = { 136, 96 } };
  compare ("linear, 150 x 96 -> 136", build_linear, &c2, NMSE_SAME);
}

/* --- conv2d ------------------------------------------------------------------------------------- */

static EaselTensor *
build_conv (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  EaselTensor *w = easel_graph_weight (g, "conv.weight", c->wdtype, 4, c->wshape, c->w);
  const gint64 bs[1] = { c->wshape[0] };
  EaselTensor *b = c->b ? easel_graph_weight (g, "conv.bias", EASEL_DTYPE_F32, 1, bs, c->b) : NULL;
  return easel_op_conv2d_ext (g, input (g, c), w, b, c->i0, c->i1, c->axes[0], c->axes[1]);
}

static void
test_conv2d (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (13);
  enum { B = 2, CI = 5, H = 13, W = 11, CO = 7 };
  g_autofree float *x = random_floats (r, B * CI * H * W, 1), *w = random_floats (r, CO * CI * 9, 0.3);
  g_autofree float *b = random_floats (r, CO, 1), *w1 = random_floats (r, CO * CI, 0.3);
  g_autofree guint16 *wh = to_f16 (w, CO * CI * 9), *w1h = to_f16 (w1, CO * CI);
  Case c = { 4, { B, CI, H, W }, x, .i0 = 1, .i1 = 1, .wdtype = EASEL_DTYPE_F16, .w = wh, .b = b,
             .wshape = { CO, CI, 3, 3 } };
  compare ("conv2d 3x3 stride 1 pad 1", build_conv, &c, NMSE_SAME);
  c.i0 = 2;
  compare ("conv2d 3x3 stride 2 pad 1", build_conv, &c, NMSE_SAME);
  c.i1 = 0;
  c.b = NULL;
  compare ("conv2d 3x3 stride 2 pad 0, no bias", build_conv, &c, NMSE_SAME);
  c.wdtype = EASEL_DTYPE_F32;
  c.w = w;
  c.i0 = c.i1 = 1;
  compare ("conv2d 3x3, F32 weights (kept fp32)", build_conv, &c, NMSE_SAME);
  Case c1 = { 4, { B, CI, H, W }, x, .i0 = 1, .i1 = 0, .wdtype = EASEL_DTYPE_F16, .w = w1h, .b = b,
              .wshape = { CO, CI, 1, 1 } };
  compare ("conv2d 1x1", build_conv, &c1, NMSE_SAME);
  /* more output pixels than one tile row (64) and channels than one tile column */
  enum { CI2 = 3, H2 = 19, W2 = 23, CO2 = 70 };
  g_autofree float *x2 = random_floats (r, CI2 * H2 * W2, 1), *w2 = random_floats (r, CO2 * CI2 * 9, 0.3);
  g_autofree guint16 *w2h = to_f16 (w2, CO2 * CI2 * 9);
  Case c2 = { 4, { 1, CI2, H2, W2 }, x2, .i0 = 1, .i1 = 1, .wdtype = EASEL_DTYPE_F16, .w = w2h,
              .wshape = { CO2, CI2, 3, 3 } };
  compare ("conv2d 3 -> 70 channels, 19 x 23", build_conv, &c2, NMSE_SAME);
  /* few output tiles and a long K (the UNet's 3x3 convolutions at 8²): the cooperative shaders split K */
  enum { CI3 = 96, H3 = 5, W3 = 6, CO3 = 24 };
  g_autofree float *x3 = random_floats (r, 2 * CI3 * H3 * W3, 1), *w3 = random_floats (r, CO3 * CI3 * 9, 0.1);
  g_autofree float *b3 = random_floats (r, CO3, 1);
  g_autofree guint16 *w3h = to_f16 (w3, CO3 * CI3 * 9);
  Case c3 = { 4, { 2, CI3, H3, W3 }, x3, .i0 = 1, .i1 = 1, .wdtype = EASEL_DTYPE_F16, .w = w3h, .b = b3,
              .wshape = { CO3, CI3, 3, 3 } };
  compare ("conv2d 96 -> 24 channels, 5 x 6, batch 2 (split K)", build_conv, &c3, NMSE_SAME);
  /* extra zeros at the bottom and right (the VAE downsampler: F.pad (0, 1, 0, 1), stride 2, pad 0):
   * the output size comes from the graph, reads past x are zeros */
  Case d = c;
  d.i0 = 2;
  d.i1 = 0;
  d.axes[0] = d.axes[1] = 1;
  d.wdtype = EASEL_DTYPE_F16;
  d.w = wh;
  compare ("conv2d_ext stride 2, pad (0, 1, 0, 1), 13 x 11", build_conv, &d, NMSE_SAME);
  d.shape[2] = 12;
  compare ("conv2d_ext stride 2, pad (0, 1, 0, 1), 12 x 11", build_conv, &d, NMSE_SAME);
  d.i0 = 1;
  d.i1 = 1;
  d.axes[0] = 2;
  d.axes[1] = 0;
  compare ("conv2d_ext stride 1, pad 1, 2 extra rows", build_conv, &d, NMSE_SAME);
}

/* --- norms ----------------------------------------------------------------------------------- */

static EaselTensor *
build_group_norm (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  const gint64 cs[1] = { c->shape[1] };
  EaselTensor *gamma = c->w ? easel_graph_weight (g, "norm.weight", EASEL_DTYPE_F32, 1, cs, c->w) : NULL;
  EaselTensor *beta = c->b ? easel_graph_weight (g, "norm.bias", EASEL_DTYPE_F32, 1, cs, c->b) : NULL;
  return easel_op_group_norm (g, input (g, c), gamma, beta, c->i0, c->f0, c->i1);
}

static EaselTensor *
build_group_stats (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  return easel_op_group_stats (g, input (g, c), c->i0);
}

/* group_norm_apply with statistics (B, G, 2) [mean, rstd] given as an input (c->w2) */
static EaselTensor *
build_group_norm_apply (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  const gint64 cs[1] = { c->shape[1] }, ss[3] = { c->shape[0], c->i0, 2 };
  EaselTensor *gamma = c->w ? easel_graph_weight (g, "norm.weight", EASEL_DTYPE_F32, 1, cs, c->w) : NULL;
  EaselTensor *beta = c->b ? easel_graph_weight (g, "norm.bias", EASEL_DTYPE_F32, 1, cs, c->b) : NULL;
  EaselTensor *stats = easel_graph_input (g, "stats", EASEL_DTYPE_F32, 3, ss, c->w2);
  return easel_op_group_norm_apply (g, input (g, c), gamma, beta, stats, c->i0, c->i1);
}

/* [mean, rstd] of each group of x (B, C, HW), in double */
static float *
host_group_stats (const float *x, gint64 B, gint64 C, gint64 HW, int G, double eps)
{
  gint64 len = C / G * HW;
  float *st = g_new (float, B * G * 2);
  for (gint64 t = 0; t < B * G; t++) {
    double s = 0, v = 0;
    for (gint64 i = 0; i < len; i++)
      s += x[t * len + i];
    s /= (double) len;
    for (gint64 i = 0; i < len; i++)
      v += (x[t * len + i] - s) * (x[t * len + i] - s);
    st[2 * t] = (float) s;
    st[2 * t + 1] = (float) (1.0 / sqrt (v / (double) len + eps));
  }
  return st;
}

static EaselTensor *
build_layer_norm (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  const gint64 cs[1] = { c->shape[c->n_dims - 1] };
  EaselTensor *gamma = c->w ? easel_graph_weight (g, "ln.weight", c->wdtype, 1, cs, c->w) : NULL;
  EaselTensor *beta = c->b ? easel_graph_weight (g, "ln.bias", c->wdtype, 1, cs, c->b) : NULL;
  return easel_op_layer_norm (g, input (g, c), gamma, beta, c->f0);
}

static void
test_norms (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (14);
  g_autofree float *x = random_floats (r, 2 * 12 * 7 * 9, 2), *gm = random_floats (r, 12, 1), *bt = random_floats (r, 12, 1);
  for (int i = 0; i < 2 * 12 * 63; i++)
    x[i] += 3.0f;    /* a mean far from 0: the variance must come from centered values */
  Case c = { 4, { 2, 12, 7, 9 }, x, .i0 = 4, .i1 = FALSE, .f0 = 1e-5f, .w = gm, .b = bt };
  compare ("group_norm 4 groups", build_group_norm, &c, NMSE_SAME);
  c.i1 = TRUE;
  compare ("group_norm + SiLU", build_group_norm, &c, NMSE_SAME);
  c.w = c.b = NULL;
  c.i0 = 12;
  compare ("group_norm, no affine, 12 groups", build_group_norm, &c, NMSE_SAME);
  /* a group larger than a workgroup's stride many times over */
  g_autofree float *xl = random_floats (r, 1 * 8 * 40 * 41, 1);
  Case cl = { 4, { 1, 8, 40, 41 }, xl, .i0 = 2, .f0 = 1e-6f };
  compare ("group_norm, 13120 values per group", build_group_norm, &cl, NMSE_SAME);

  /* the two halves (the VAE's exact tiling): statistics, then normalization with given ones */
  Case hs = { 4, { 2, 12, 7, 9 }, x, .i0 = 4 };
  compare ("group_stats 4 groups", build_group_stats, &hs, NMSE_SAME);
  hs.i0 = 3;
  compare ("group_stats 3 groups", build_group_stats, &hs, NMSE_SAME);
  compare ("group_stats, 13120 values per group", build_group_stats, &cl, NMSE_SAME);
  g_autofree float *st = host_group_stats (x, 2, 12, 63, 4, 1e-5);
  Case ha = { 4, { 2, 12, 7, 9 }, x, .i0 = 4, .i1 = FALSE, .w = gm, .b = bt, .w2 = st };
  compare ("group_norm_apply", build_group_norm_apply, &ha, NMSE_SAME);
  ha.i1 = TRUE;
  compare ("group_norm_apply + SiLU", build_group_norm_apply, &ha, NMSE_SAME);
  ha.w = ha.b = NULL;
  compare ("group_norm_apply, no affine", build_group_norm_apply, &ha, NMSE_SAME);

  g_autofree float *y = random_floats (r, 3 * 5 * 77, 1), *lg = random_floats (r, 77, 1), *lb = random_floats (r, 77, 1);
  g_autofree guint16 *lgh = to_f16 (lg, 77), *lbh = to_f16 (lb, 77);
  Case d = { 3, { 3, 5, 77 }, y, .f0 = 1e-5f, .wdtype = EASEL_DTYPE_F32, .w = lg, .b = lb };
  compare ("layer_norm", build_layer_norm, &d, NMSE_SAME);
  d.wdtype = EASEL_DTYPE_F16;
  d.w = lgh;
  d.b = lbh;
  compare ("layer_norm, F16 affine", build_layer_norm, &d, NMSE_SAME);
  d.w = d.b = NULL;
  compare ("layer_norm, no affine", build_layer_norm, &d, NMSE_SAME);
  g_autofree float *yw = random_floats (r, 2 * 1283, 1);
  Case dw = { 2, { 2, 1283 }, yw, .f0 = 1e-5f };
  compare ("layer_norm, width 1283", build_layer_norm, &dw, NMSE_SAME);
}

/* --- elementwise -------------------------------------------------------------------------------- */

static EaselTensor *
build_unary (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  if (c->i0 < 0)
    return easel_op_scale (g, input (g, c), c->f0);
  if (c->i0 == 100)
    return easel_op_geglu (g, input (g, c));
  return easel_op_unary (g, c->i0, input (g, c));
}

static void
test_unary (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (15);
  g_autofree float *x = random_floats (r, 3 * 1001, 8);
  x[0] = -90.0f;    /* exp overflow territory */
  x[1] = 90.0f;
  Case c = { 2, { 3, 1001 }, x };
  const char *names[] = { "silu", "gelu (erf)", "gelu (tanh)", "quick_gelu", "relu" };
  for (int k = EASEL_UNARY_SILU; k <= EASEL_UNARY_RELU; k++) {
    c.i0 = k;
    compare (names[k], build_unary, &c, NMSE_SAME);
  }
  c.i0 = -1;
  c.f0 = -0.37f;
  compare ("scale", build_unary, &c, NMSE_SAME);
  Case gg = { 3, { 2, 9, 74 }, x, .i0 = 100 };
  compare ("geglu", build_unary, &gg, NMSE_SAME);
}

typedef struct {
  gint64 ashape[4];
  int nb;
  gint64 bshape[4];
  const float *a, *b;
} BinaryCase;

static EaselTensor *
build_binary (EaselGraph *g, gconstpointer data)
{
  const BinaryCase *c = data;
  EaselTensor *a = easel_graph_input (g, "a", EASEL_DTYPE_F32, 4, c->ashape, c->a);
  EaselTensor *b = easel_graph_input (g, "b", EASEL_DTYPE_F32, c->nb, c->bshape, c->b);
  return easel_op_mul (g, easel_op_add (g, a, b), b);
}

static void
test_binary (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (16);
  g_autofree float *a = random_floats (r, 3 * 5 * 7 * 9, 1), *b = random_floats (r, 3 * 5 * 7 * 9, 1);
  const struct { int nb; gint64 s[4]; } forms[] = {
    { 4, { 3, 5, 7, 9 } }, { 4, { 3, 5, 1, 1 } }, { 3, { 5, 1, 1 } }, { 1, { 9 } }, { 4, { 3, 1, 7, 1 } },
    { 1, { 1 } }, { 2, { 7, 9 } }, { 4, { 1, 5, 1, 9 } }, { 3, { 5, 7, 1 } },
  };
  for (guint i = 0; i < G_N_ELEMENTS (forms); i++) {
    BinaryCase c = { { 3, 5, 7, 9 }, forms[i].nb, { 0 }, a, b };
    memcpy (c.bshape, forms[i].s, sizeof c.bshape);
    g_autofree char *label = g_strdup_printf ("binary, b of rank %d [%" G_GINT64_FORMAT ", ...] form %u", c.nb, c.bshape[0], i);
    compare (label, build_binary, &c, NMSE_SAME);
  }
}

/* --- attention ----------------------------------------------------------------------------------- */

typedef struct {
  int B, Lq, Lk, H, D;
  gboolean causal, fused;
  const float *q, *kv;
} AttnCase;

static EaselTensor *
build_attention (EaselGraph *g, gconstpointer data)
{
  const AttnCase *c = data;
  gint64 C = c->H * c->D;
  if (c->fused) {     /* self-attention on slices of one (B, L, 3C) projection */
    const gint64 s[3] = { c->B, c->Lq, 3 * C };
    EaselTensor *x = easel_graph_input (g, "qkv", EASEL_DTYPE_F32, 3, s, c->q);
    return easel_op_attention (g, easel_op_slice (g, x, 2, 0, C), easel_op_slice (g, x, 2, C, C),
                               easel_op_slice (g, x, 2, 2 * C, C), c->H, 1.0f / sqrtf ((float) c->D), c->causal);
  }
  const gint64 qs[3] = { c->B, c->Lq, C }, kvs[3] = { c->B, c->Lk, 2 * C };
  EaselTensor *q = easel_graph_input (g, "q", EASEL_DTYPE_F32, 3, qs, c->q);
  EaselTensor *kv = easel_graph_input (g, "kv", EASEL_DTYPE_F32, 3, kvs, c->kv);
  return easel_op_attention (g, q, easel_op_slice (g, kv, 2, 0, C), easel_op_slice (g, kv, 2, C, C), c->H,
                             1.0f / sqrtf ((float) c->D), c->causal);
}

static void
test_attention (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (17);
  g_autofree float *qkv = random_floats (r, 2 * 77 * 3 * 3 * 40, 2);
  AttnCase c = { 2, 77, 77, 3, 40, TRUE, TRUE, qkv, NULL };
  compare ("attention, fused QKV, causal (CLIP)", build_attention, &c, NMSE_SAME);
  c.causal = FALSE;
  compare ("attention, fused QKV", build_attention, &c, NMSE_SAME);
  g_autofree float *q = random_floats (r, 2 * 70 * 2 * 160, 2), *kv = random_floats (r, 2 * 33 * 2 * 2 * 160, 2);
  AttnCase x = { 2, 70, 33, 2, 160, FALSE, FALSE, q, kv };
  compare ("cross-attention, head width 160", build_attention, &x, NMSE_SAME);
  AttnCase x1 = { 1, 5, 100, 8, 8, FALSE, FALSE, q, kv };
  compare ("cross-attention, 8 heads of 8, 100 keys", build_attention, &x1, NMSE_SAME);
  AttnCase x2 = { 2, 70, 33, 2, 96, FALSE, FALSE, q, kv };     /* the cooperative shaders' wide variant */
  compare ("cross-attention, 2 heads of 96", build_attention, &x2, NMSE_SAME);
  /* the VAE's mid-block attention: one head of 512 (the wide variant), and 320 just past the narrow one */
  g_autofree float *vq = random_floats (r, 1 * 40 * 3 * 512, 2);
  AttnCase vae = { 1, 40, 40, 1, 512, FALSE, TRUE, vq, NULL };
  compare ("self-attention, one head of 512 (VAE)", build_attention, &vae, NMSE_SAME);
  AttnCase mid = { 1, 33, 33, 1, 320, FALSE, TRUE, vq, NULL };
  compare ("self-attention, one head of 320", build_attention, &mid, NMSE_SAME);
}

/* --- resampling, concat, embeddings ------------------------------------------------------------ */

static EaselTensor *
build_upsample (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  return easel_op_upsample_nearest (g, input (g, c), c->i0, c->i1);
}

static EaselTensor *
build_avg_pool (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  return easel_op_avg_pool2d (g, input (g, c), c->i0);
}

static EaselTensor *
build_concat (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  EaselTensor *x = input (g, c);
  /* (x[a:], x[:a]) along axis i0: both halves are views made dense by the graph */
  gint64 a = c->i1;
  return easel_op_concat (g, easel_op_slice (g, x, c->i0, a, x->shape[c->i0] - a), easel_op_slice (g, x, c->i0, 0, a), c->i0);
}

static EaselTensor *
build_timestep (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  return easel_op_timestep_embedding (g, input (g, c), c->i0);
}

static void
test_resample_concat_embedding (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (18);
  g_autofree float *x = random_floats (r, 2 * 3 * 5 * 7, 1);
  Case c = { 4, { 2, 3, 5, 7 }, x, .i0 = 10, .i1 = 14 };
  compare ("upsample nearest 2x", build_upsample, &c, 0);
  c.i0 = 8;
  c.i1 = 9;
  compare ("resize nearest 5x7 -> 8x9", build_upsample, &c, 0);
  c.i0 = 3;
  c.i1 = 4;
  compare ("resize nearest 5x7 -> 3x4", build_upsample, &c, 0);
  Case pool = { 4, { 2, 3, 5, 7 }, x, .i0 = 2 };
  compare ("avg_pool2d 2 (edge windows cut)", build_avg_pool, &pool, NMSE_SAME);
  pool.i0 = 8;
  compare ("avg_pool2d 8 (one window, larger than x)", build_avg_pool, &pool, NMSE_SAME);
  pool.i0 = 1;
  compare ("avg_pool2d 1", build_avg_pool, &pool, 0);
  for (int axis = 0; axis < 4; axis++) {
    Case k = { 4, { 2, 3, 5, 7 }, x, .i0 = axis, .i1 = 1 };
    g_autofree char *label = g_strdup_printf ("concat on axis %d", axis);
    compare (label, build_concat, &k, 0);
  }
  const float t[5] = { 0.0f, 1.0f, 999.0f, 500.5f, 3.25f };
  Case e = { 1, { 5 }, t, .i0 = 320 };
  compare ("timestep_embedding 320", build_timestep, &e, 1e-7);
  e.i0 = 6;
  compare ("timestep_embedding 6", build_timestep, &e, 1e-7);
}

typedef struct {
  EaselDType dtype;
  const void *table;
  const gint32 *ids;
  int n_ids;
} RowsCase;

static EaselTensor *
build_get_rows (EaselGraph *g, gconstpointer data)
{
  const RowsCase *c = data;
  const gint64 ts[2] = { 11, 37 }, is[1] = { c->n_ids };
  EaselTensor *table = easel_graph_weight (g, "emb", c->dtype, 2, ts, c->table);
  EaselTensor *ids = easel_graph_input (g, "ids", EASEL_DTYPE_I32, 1, is, c->ids);
  return easel_op_get_rows (g, table, ids);
}

static void
test_get_rows (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (19);
  g_autofree float *t = random_floats (r, 11 * 37, 1);
  g_autofree guint16 *th = to_f16 (t, 11 * 37);
  const gint32 ids[6] = { 10, 0, 3, 3, -4, 50 };    /* out-of-range ids clamp on both backends */
  RowsCase c = { EASEL_DTYPE_F16, th, ids, 6 };
  compare ("get_rows, F16 table", build_get_rows, &c, 0);
  c.dtype = EASEL_DTYPE_F32;
  c.table = t;
  compare ("get_rows, F32 table (kept fp32)", build_get_rows, &c, NMSE_SAME);
}

/* --- fp16 safety ---------------------------------------------------------------------------------- */

/* F32 weights: fp16-exact ones and rounded ones (lossy mode) give the fp16 results; a weight beyond
 * fp16's range stays fp32 even in lossy mode, so nothing becomes inf. */
static void
test_weight_formats (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (23);
  g_autoptr(GError) error = NULL;
  enum { M = 9, K = 70, N = 11 };
  g_autofree float *x = random_floats (r, M * K, 1), *w = random_floats (r, N * K, 0.2);
  g_autofree float *wx = g_new (float, N * K), *wbig = g_memdup2 (w, N * K * sizeof (float));
  for (int i = 0; i < N * K; i++)
    wx[i] = easel_f16_to_f32 (easel_f32_to_f16 (w[i]));     /* an fp32 file of an fp16 model */
  wbig[5] = 1.0e5f;                                            /* past fp16's 65504 */
  wbig[77] = -3.0e6f;
  Case c = { 2, { M, K }, x, .wdtype = EASEL_DTYPE_F32, .w = wx, .wshape = { N, K } };
  compare ("linear, F32 weights that are fp16 values", build_linear, &c, NMSE_SAME);

  g_setenv ("EASEL_VULKAN_LOSSY_F16", "1", TRUE);
  EaselBackend *exact = vk;
  vk = easel_backend_new_vulkan (NULL, &error);
  g_unsetenv ("EASEL_VULKAN_LOSSY_F16");
  g_assert_no_error (error);
  c.w = w;
  compare ("linear, F32 weights rounded to fp16 (lossy)", build_linear, &c, NMSE_FP16_WEIGHTS);
  c.w = wbig;
  double big = compare ("linear, F32 weights past fp16's range (lossy: kept fp32)", build_linear, &c, NMSE_SAME);
  g_assert_cmpfloat (big, >, 65504.0);
  check_validation ();
  easel_backend_free (vk);
  vk = exact;
}

/* VAE-style ops on activations far past fp16's range (SDXL's VAE decoder reaches ~1e5; fp16 tops out
 * at 65504): group norm statistics of values with mean 3e4, a conv and a residual on them, attention
 * with such queries and values, and the tiled group norm halves. Vulkan keeps activations and sums
 * in fp32 (shaders/common.glsl): every result is finite and equals the CPU's. */
static EaselTensor *
build_big (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  EaselTensor *x = input (g, c);
  const gint64 C = c->shape[1], HW = c->shape[2] * c->shape[3];
  if (c->i0 == 0)
    return easel_op_group_norm (g, x, NULL, NULL, 2, 1e-6f, TRUE);
  if (c->i0 == 3) {
    EaselTensor *st = easel_op_group_stats (g, x, 2);
    return st;
  }
  EaselTensor *w = easel_graph_weight (g, "conv.weight", EASEL_DTYPE_F16, 4, c->wshape, c->w);
  EaselTensor *h = easel_op_add (g, easel_op_conv2d (g, x, w, NULL, 1, 1), x);   /* ~1e5 .. 1e6 */
  if (c->i0 == 1)
    return h;
  const int perm[4] = { 0, 2, 3, 1 };
  const gint64 ts[3] = { 1, HW, C };
  EaselTensor *tok = easel_op_reshape (g, easel_op_contiguous (g, easel_op_permute (g, h, perm)), 3, ts);
  /* q and v ~1e5; k small, so that the scores (~10) are well conditioned and the softmax is not
   * one-hot: any overflow in q·k or P·V would show */
  return easel_op_attention (g, tok, easel_op_scale (g, tok, 1e-6f), tok, 1, 1.0f / sqrtf ((float) C), FALSE);
}

static void
test_fp16_overflow (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (29);
  enum { C = 8, H = 6, W = 7 };
  g_autofree float *x = g_new (float, C * H * W), *w = random_floats (r, C * C * 9, 0.3);
  g_autofree guint16 *wh = to_f16 (w, C * C * 9);
  for (int i = 0; i < C * H * W; i++)
    x[i] = (float) (3e4 + g_rand_double_range (r, -2e4, 2e4));
  x[10] = 2.5e5f;
  x[200] = -1.5e5f;
  Case c = { 4, { 1, C, H, W }, x, .i0 = 0, .wdtype = EASEL_DTYPE_F16, .w = wh, .wshape = { C, C, 3, 3 } };
  compare ("group_norm + SiLU of values ~3e4 +- 2e4", build_big, &c, NMSE_SAME);
  c.i0 = 3;
  g_assert_cmpfloat (compare ("group_stats of values ~3e4 +- 2e4", build_big, &c, NMSE_SAME), >, 65504.0);
  c.i0 = 1;
  g_assert_cmpfloat (compare ("conv2d + residual, outputs past 65504", build_big, &c, NMSE_SAME), >, 65504.0);
  c.i0 = 2;
  g_assert_cmpfloat (compare ("attention on queries and values past 65504", build_big, &c, NMSE_SAME), >, 65504.0);
}

/* --- the CPU backend's graph tests, on Vulkan ------------------------------------------------- */

/* a view of an output is read back through its strides */
static void
test_read_view (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (1);
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GError) error = NULL;
  const gint64 s[3] = { 2, 3, 5 };
  g_autofree float *x = random_floats (r, 30, 1);
  EaselTensor *in = easel_graph_input (g, "x", EASEL_DTYPE_F32, 3, s, x);
  const int perm[3] = { 2, 0, 1 };
  EaselTensor *y = easel_op_scale (g, in, 2.0f);
  EaselTensor *sl = easel_op_slice (g, easel_op_permute (g, y, perm), 0, 1, 3);     /* (3, 2, 3) */
  easel_graph_mark_output (g, sl);
  g_assert_true (easel_backend_compute (vk, g, &error));
  g_assert_no_error (error);
  float got[18], want[18];
  for (int a = 0; a < 3; a++)
    for (int b = 0; b < 2; b++)
      for (int c = 0; c < 3; c++)
        want[(a * 2 + b) * 3 + c] = 2.0f * x[(b * 3 + c) * 5 + (a + 1)];
  g_assert_true (easel_backend_read (vk, sl, got, &error));
  g_assert_cmpmem (got, sizeof got, want, sizeof want);
  /* a node that is not an output cannot be read: its storage was reused or never copied */
  g_assert_false (easel_backend_read (vk, in, got, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  check_validation ();
}

/* the same weights in two computes: uploaded once, and the second result the same */
static void
test_weights_reused (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (3);
  enum { M = 5, K = 19, N = 6 };
  g_autofree float *x = random_floats (r, M * K, 1), *w = random_floats (r, N * K, 1);
  g_autofree guint16 *wh = to_f16 (w, N * K);
  Case c = { 2, { M, K }, x, .wdtype = EASEL_DTYPE_F16, .w = wh, .wshape = { N, K } };
  gint64 n1, n2;
  g_autofree float *y1 = run (vk, build_linear, &c, &n1);
  g_autofree float *y2 = run (vk, build_linear, &c, &n2);
  g_assert_cmpmem (y1, n1 * sizeof (float), y2, n2 * sizeof (float));
  compare ("linear, third compute", build_linear, &c, NMSE_SAME);
}

static EaselTensor *
build_chain (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  EaselTensor *h = input (g, c), *skip = h;
  for (int step = 0; step < 40; step++) {
    h = easel_op_scale (g, easel_op_silu (g, h), 0.9f);
    if (step % 7 == 3) {
      h = easel_op_add (g, h, skip);
      skip = h;
    }
    if (step == 20) {
      h = easel_op_concat (g, easel_op_slice (g, h, 1, 2, 2), easel_op_slice (g, h, 1, 0, 2), 1);
      skip = h;
    }
  }
  return h;
}

/* a long chain with skips: the arena reuses storage (write-after-read and read-after-write
 * hazards between dispatches), and the result must not notice */
static void
test_memory_reuse_chain (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (5);
  g_autofree float *x = random_floats (r, 144, 1);
  Case c = { 4, { 1, 4, 6, 6 }, x };
  compare ("chain of 40 steps with skips", build_chain, &c, NMSE_SAME);
}

static EaselTensor *
build_many_alive (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  EaselTensor *x = input (g, c), *sum = NULL;
  /* eight results alive at once: later ones sit far past the first 64 KiB of the arena */
  for (int i = 0; i < 8; i++) {
    EaselTensor *h = easel_op_scale (g, easel_op_silu (g, x), 1.0f + i);
    easel_graph_mark_output (g, h);
    sum = sum ? easel_op_add (g, sum, h) : h;
  }
  return sum;
}

/* With bindings capped at 64 KiB (EASEL_VULKAN_MAX_BINDING, as lavapipe's 128 MiB scaled down),
 * tensors deep in the arena are bound through sub-ranges at an offset; a tensor larger than one
 * binding is a clear error, not a wrong result. */
static void
test_binding_ranges (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (21);
  g_autoptr(GError) error = NULL;
  g_autofree float *x = random_floats (r, 30000, 2);
  g_setenv ("EASEL_VULKAN_MAX_BINDING", "65536", TRUE);
  EaselBackend *full = vk;
  vk = easel_backend_new_vulkan (NULL, &error);
  g_setenv ("EASEL_VULKAN_MAX_BINDING", "0", TRUE);     /* below 256: no cap */
  g_assert_no_error (error);

  Case c = { 2, { 3, 3001 }, x };            /* 36 KiB per tensor, 10 of them alive */
  compare ("bindings past 64 KiB of the arena", build_many_alive, &c, NMSE_SAME);
  {
    g_autoptr(EaselGraph) g = easel_graph_new ();
    const gint64 s[1] = { 20000 };           /* 80 KiB: more than one binding */
    easel_graph_mark_output (g, easel_op_silu (g, easel_graph_input (g, "big", EASEL_DTYPE_F32, 1, s, x)));
    g_assert_false (easel_backend_compute (vk, g, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED);
    g_assert_nonnull (strstr (error->message, "maxStorageBufferRange"));
  }
  check_validation ();
  easel_backend_free (vk);
  vk = full;
}

/* engine backends: "vulkan" takes any usable device; "auto" only a GPU, else the CPU, saying why */
static void
test_engine_choice (void)
{
  g_autoptr(GError) error = NULL;
  const EaselVulkanDeviceInfo *info = easel_backend_vulkan_device_info (vk);
  g_assert_nonnull (info);
  g_assert_null (easel_backend_vulkan_device_info (cpu));
  EaselEngineOptions o = { .backend = "vulkan", .n_threads = 1 };
  g_autoptr(EaselEngine) ev = easel_engine_new (&o, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (easel_engine_describe (ev), "vulkan: "));
  o.backend = "auto";
  g_autoptr(EaselEngine) ea = easel_engine_new (&o, &error);
  g_assert_no_error (error);
  if (strcmp (info->type, "CPU") == 0) {      /* lavapipe: auto falls back and says so */
    g_assert_true (g_str_has_prefix (easel_engine_describe (ea), "cpu ("));
    g_assert_nonnull (strstr (easel_engine_describe (ea), info->name));
  } else {
    g_assert_true (g_str_has_prefix (easel_engine_describe (ea), "vulkan: "));
  }
  o.backend = "metal";
  g_assert_null (easel_engine_new (&o, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED);
}

static void
test_errors (void)
{
  g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL;
  const gint64 s[2] = { 2, 3 }, ws[2] = { 4, 5 };
  static const float w[20];
  {
    g_autoptr(EaselGraph) g = easel_graph_new ();
    EaselTensor *x = easel_graph_input (g, "x", EASEL_DTYPE_F32, 2, s, NULL);
    easel_graph_mark_output (g, easel_op_silu (g, x));
    g_assert_false (easel_backend_compute (vk, g, &e1));           /* input without data */
    g_assert_nonnull (strstr (e1->message, "'x'"));
  }
  {
    static const float xs[6];
    g_autoptr(EaselGraph) g = easel_graph_new ();
    EaselTensor *x = easel_graph_input (g, "x", EASEL_DTYPE_F32, 2, s, xs);
    easel_op_linear (g, x, easel_graph_weight (g, "fc.weight", EASEL_DTYPE_F32, 2, ws, w), NULL);
    g_assert_false (easel_backend_compute (vk, g, &e2));           /* shape error surfaces here */
    g_assert_nonnull (strstr (e2->message, "fc.weight"));
  }
  g_assert_null (easel_backend_new_vulkan ("no such device, surely", &e3));
  g_assert_error (e3, EASEL_ERROR, EASEL_ERROR_NOT_FOUND);
  check_validation ();
}

/* --- replay of recorded graphs (engine/vulkan/replay.c) ------------------------------------------ */

/* a Vulkan backend of its own, made with $EASEL_VULKAN_REPLAY = setting (NULL: unset, the default) */
static EaselBackend *
new_vulkan_replay (const char *setting)
{
  g_autoptr(GError) error = NULL;
  if (setting)
    g_setenv ("EASEL_VULKAN_REPLAY", setting, TRUE);
  EaselBackend *be = easel_backend_new_vulkan (NULL, &error);
  g_unsetenv ("EASEL_VULKAN_REPLAY");
  g_assert_no_error (error);
  return be;
}

static EaselVulkanReplayStats
replay_stats (EaselBackend *be)
{
  EaselVulkanReplayStats st;
  g_assert_true (easel_backend_vulkan_replay_stats (be, &st));
  return st;
}

/* the backend's recordings and replays so far */
static void
expect_counts (EaselBackend *be, guint64 recorded, guint64 replayed)
{
  EaselVulkanReplayStats st = replay_stats (be);
  g_assert_cmpuint (st.recorded, ==, recorded);
  g_assert_cmpuint (st.replayed, ==, replayed);
}

/* a small transformer-ish block: conv2d (F16 weight) -> GroupNorm + SiLU -> tokens -> linear (F32
 * weight) as queries over the tokens -> attention -> scale + residual. x (1, C, H, W); w (C, C, 3, 3);
 * w2 (C, C); i0 groups, i1 heads, f0 the attention scale (twice it the output scale). */
static EaselTensor *
build_block (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  const gint64 C = c->shape[1], tshape[3] = { c->shape[0], C, c->shape[2] * c->shape[3] }, pshape[2] = { C, C };
  const int perm[3] = { 0, 2, 1 };
  EaselTensor *w = easel_graph_weight (g, "conv.weight", EASEL_DTYPE_F16, 4, c->wshape, c->w);
  EaselTensor *p = easel_graph_weight (g, "proj.weight", EASEL_DTYPE_F32, 2, pshape, c->w2);
  EaselTensor *h = easel_op_group_norm (g, easel_op_conv2d (g, input (g, c), w, NULL, 1, 1), NULL, NULL, c->i0, 1e-5f,
                                        TRUE);
  EaselTensor *tok = easel_op_contiguous (g, easel_op_permute (g, easel_op_reshape (g, h, 3, tshape), perm));
  EaselTensor *a = easel_op_attention (g, easel_op_linear (g, tok, p, NULL), tok, tok, c->i1, c->f0, FALSE);
  return easel_op_add (g, easel_op_scale (g, a, 2 * c->f0), tok);
}

static void
fill_random (GRand *r, float *x, gsize n, double range)
{
  for (gsize i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (r, -range, range);
}

/* A repeated graph is replayed with its new inputs, and gives what a fresh recording and the CPU
 * give; a changed weight (same pointer, new data), shape, float or integer parameter each cause a
 * new recording; two graphs alternating are both replayed; a larger arena drops the recordings. */
static void
test_replay (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (41);
  enum { C = 8, H = 5, W = 7 };
  g_autofree float *x1 = random_floats (r, C * H * W, 1), *x2 = random_floats (r, C * H * W, 1);
  g_autofree float *w = random_floats (r, C * C * 9, 0.3), *p = random_floats (r, C * C, 0.3);
  g_autofree guint16 *wh = to_f16 (w, C * C * 9);
  g_autoptr(EaselBackend) rb = new_vulkan_replay (NULL), off = new_vulkan_replay ("0");
  Case c = { 4, { 1, C, H, W - 1 }, x1, .i0 = 4, .i1 = 2, .f0 = 0.35f, .w = wh, .w2 = p, .wshape = { C, C, 3, 3 } };
  gint64 n1, n2, n3;

  compare_on (rb, "block, recorded", build_block, &c, NMSE_SAME);
  expect_counts (rb, 1, 0);
  c.x = x2;
  g_autofree float *y1 = run (rb, build_block, &c, &n1);          /* the same graph, new input values */
  expect_counts (rb, 1, 1);
  g_autofree float *y2 = run (off, build_block, &c, &n2);         /* recorded afresh */
  expect_counts (off, 1, 0);
  g_assert_cmpmem (y1, n1 * sizeof (float), y2, n2 * sizeof (float));
  c.x = x1;
  g_autofree float *y3 = run (rb, build_block, &c, &n3);
  g_assert_cmpint (n3, ==, n1);
  g_assert_true (memcmp (y1, y3, n1 * sizeof (float)) != 0);      /* the new inputs were used */
  compare_on (rb, "block, replayed", build_block, &c, NMSE_SAME);
  expect_counts (rb, 1, 3);

  /* new values in the same weight buffer: uploaded again, recorded again */
  fill_random (r, w, C * C * 9, 0.3);
  for (int i = 0; i < C * C * 9; i++)
    wh[i] = easel_f32_to_f16 (w[i]);
  compare_on (rb, "block, changed conv weight", build_block, &c, NMSE_SAME);
  expect_counts (rb, 2, 3);
  g_assert_cmpuint (replay_stats (rb).forgotten, >=, 1);
  compare_on (rb, "block, changed conv weight, replayed", build_block, &c, NMSE_SAME);
  expect_counts (rb, 2, 4);

  c.shape[3] = W;                                                   /* a changed shape */
  compare_on (rb, "block, changed shape", build_block, &c, NMSE_SAME);
  expect_counts (rb, 3, 4);
  c.f0 = 0.5f;                                                      /* a changed float parameter */
  compare_on (rb, "block, changed scale", build_block, &c, NMSE_SAME);
  expect_counts (rb, 4, 4);
  c.i0 = 2;                                                         /* a changed integer parameter */
  compare_on (rb, "block, changed groups", build_block, &c, NMSE_SAME);
  expect_counts (rb, 5, 4);

  /* two graphs alternating, as UNet and VAE on one backend: each recorded once */
  Case chain = { 4, { 1, 4, 6, 6 }, x2 };
  for (int i = 0; i < 3; i++) {
    compare_on (rb, "alternating: block", build_block, &c, NMSE_SAME);
    compare_on (rb, "alternating: chain", build_chain, &chain, NMSE_SAME);
  }
  expect_counts (rb, 6, 9);
  g_assert_cmpuint (replay_stats (rb).kept, <=, 4);

  /* a graph that needs a larger arena: the old one is freed, and every recording bound to it dropped */
  const gsize big = 300000;
  g_autofree float *xb = random_floats (r, big, 1);
  Case large = { 1, { (gint64) big }, xb, .i0 = EASEL_UNARY_SILU };
  EaselVulkanReplayStats before = replay_stats (rb);
  compare_on (rb, "a graph with a larger arena", build_unary, &large, NMSE_SAME);
  EaselVulkanReplayStats after = replay_stats (rb);
  g_assert_cmpuint (after.forgotten, >, before.forgotten);
  g_assert_cmpuint (after.kept, ==, 1);
  compare_on (rb, "block, after the arena grew", build_block, &c, NMSE_SAME);
  expect_counts (rb, 8, 9);
}

/* causal attention with fewer keys than queries, after a first dispatch: recording fails halfway */
static EaselTensor *
build_fails_halfway (EaselGraph *g, gconstpointer data)
{
  const Case *c = data;
  EaselTensor *x = easel_op_silu (g, input (g, c));                 /* (1, 4, 8) */
  EaselTensor *kv = easel_op_slice (g, x, 1, 0, 2);
  return easel_op_attention (g, x, kv, kv, 1, 0.5f, TRUE);
}

/* A failure while recording, or before it, leaves the backend usable: kept recordings still replay
 * (correctly), the half-made one is never replayed, and new graphs record. */
static void
test_replay_failure (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (43);
  g_autoptr(EaselBackend) rb = new_vulkan_replay (NULL);
  g_autofree float *x = random_floats (r, 144, 1), *xf = random_floats (r, 32, 1);
  Case chain = { 4, { 1, 4, 6, 6 }, x }, bad = { 3, { 1, 4, 8 }, xf };

  compare_on (rb, "chain, recorded", build_chain, &chain, NMSE_SAME);
  for (int i = 0; i < 2; i++) {
    g_autoptr(EaselGraph) g = easel_graph_new ();
    g_autoptr(GError) error = NULL;
    easel_graph_mark_output (g, build_fails_halfway (g, &bad));
    g_assert_false (easel_backend_compute (rb, g, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED);
    g_assert_nonnull (strstr (error->message, "causal"));
  }
  expect_counts (rb, 1, 0);
  compare_on (rb, "chain, replayed after a failed recording", build_chain, &chain, NMSE_SAME);
  expect_counts (rb, 1, 1);
  g_assert_cmpuint (replay_stats (rb).kept, ==, 1);                /* the failed ones are gone */

  {                                                                 /* fails before recording */
    g_autoptr(EaselGraph) g = easel_graph_new ();
    g_autoptr(GError) error = NULL;
    Case no_data = chain;
    no_data.x = NULL;
    easel_graph_mark_output (g, build_chain (g, &no_data));
    g_assert_false (easel_backend_compute (rb, g, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  }
  compare_on (rb, "chain, replayed after a failed upload", build_chain, &chain, NMSE_SAME);
  Case other = { 3, { 1, 4, 8 }, xf };
  compare_on (rb, "a new graph after failures", build_chain, &other, NMSE_SAME);
  expect_counts (rb, 2, 2);
  check_validation ();
}

/* $EASEL_VULKAN_REPLAY=0: every compute records, none replays, nothing is kept */
static void
test_replay_off (void)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (44);
  g_autoptr(EaselBackend) off = new_vulkan_replay ("0");
  g_autofree float *x = random_floats (r, 144, 1);
  Case chain = { 4, { 1, 4, 6, 6 }, x };
  for (int i = 0; i < 3; i++)
    compare_on (off, "chain, replay off", build_chain, &chain, NMSE_SAME);
  expect_counts (off, 3, 0);
  g_assert_cmpuint (replay_stats (off).kept, ==, 0);
  g_assert_false (easel_backend_vulkan_replay_stats (cpu, &(EaselVulkanReplayStats) { 0 }));
}

/* sd1_tiny's UNet, three steps with new latents and timesteps on one backend: recorded once and
 * replayed twice, each step the same as on a backend without replay; computing a graph's key costs
 * far less than recording it (both printed). */
static void
test_replay_unet (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = test_data_path ("models", "sd1_tiny", NULL);
  if (path == NULL)
    return;
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  g_assert_no_error (error);
  g_autoptr(EaselUnet) u = easel_unet_new (ck, NULL, &error);
  g_assert_no_error (error);
  const EaselUnetConfig *uc = easel_unet_config (u);
  enum { B = 2, S = 16, L = 77 };
  gint64 nx = B * uc->in_channels * S * S, ny = B * uc->out_channels * S * S;
  g_autoptr(GRand) r = g_rand_new_with_seed (45);
  g_autofree float *ctx = random_floats (r, B * L * uc->context_dim, 1);
  g_autofree float *x = g_new (float, nx), *y = g_new (float, ny), *want = g_new (float, ny);
  g_autoptr(EaselBackend) rb = new_vulkan_replay (NULL), off = new_vulkan_replay ("0");
  for (int step = 0; step < 3; step++) {
    float t[B] = { 900.0f - 300 * step, 900.0f - 300 * step };
    fill_random (r, x, nx, 1);
    g_assert_true (easel_unet_forward (u, rb, x, B, S, S, t, ctx, L, NULL, 0, NULL, 0, y, &error));
    g_assert_true (easel_unet_forward (u, off, x, B, S, S, t, ctx, L, NULL, 0, NULL, 0, want, &error));
    g_assert_no_error (error);
    g_assert_cmpmem (y, ny * sizeof (float), want, ny * sizeof (float));
  }
  expect_counts (rb, 1, 2);
  EaselVulkanReplayStats st = replay_stats (rb);
  EaselBackendStats bs;
  easel_backend_get_stats (rb, &bs);
  double key_ms = 1e3 * st.key_seconds / 3, record_ms = 1e3 * st.record_seconds;
  g_test_message ("sd1_tiny UNet, %" G_GUINT64_FORMAT " nodes: key %.3f ms per compute, recording %.3f ms",
                  bs.nodes / 3, key_ms, record_ms);
  g_assert_cmpfloat (key_ms, <, record_ms);
  check_validation ();
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_test_init (&argc, &argv, NULL);
  /* lavapipe keeps a 128-byte allocation past vkDestroyInstance (a plain create/destroy shows it);
   * once the loader unloads the driver, LeakSanitizer can neither name nor suppress it. Pinning the
   * driver (RTLD_NODELETE, if it is the one in use) keeps it reachable, so LSan still checks ours. */
  dlopen ("libvulkan_lvp.so", RTLD_NOW | RTLD_NODELETE);
  vk = easel_backend_new_vulkan (NULL, &error);
  if (vk == NULL) {
    if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
      g_error ("CI=true but no Vulkan device (lavapipe: mesa-vulkan-drivers): %s", error->message);
    /* meson runs this with protocol 'tap', where an empty plan marked SKIP is a skip (exit 77
     * is one only under protocol 'exitcode'; under TAP it reads as an error) */
    g_print ("1..0 # SKIP no Vulkan device: %s\n", error->message);
    return 0;
  }
  cpu = easel_backend_new_cpu (2);
  g_print ("# Vulkan validation %s\n", easel_backend_vulkan_validation_errors (vk) >= 0 ? "on" : "off");
  g_test_add_func ("/backend-vulkan/contiguous", test_contiguous);
  g_test_add_func ("/backend-vulkan/linear", test_linear);
  g_test_add_func ("/backend-vulkan/conv2d", test_conv2d);
  g_test_add_func ("/backend-vulkan/norms", test_norms);
  g_test_add_func ("/backend-vulkan/unary", test_unary);
  g_test_add_func ("/backend-vulkan/binary", test_binary);
  g_test_add_func ("/backend-vulkan/attention", test_attention);
  g_test_add_func ("/backend-vulkan/resample-concat-embedding", test_resample_concat_embedding);
  g_test_add_func ("/backend-vulkan/get-rows", test_get_rows);
  g_test_add_func ("/backend-vulkan/weight-formats", test_weight_formats);
  g_test_add_func ("/backend-vulkan/fp16-overflow", test_fp16_overflow);
  g_test_add_func ("/backend-vulkan/read-view", test_read_view);
  g_test_add_func ("/backend-vulkan/weights-reused", test_weights_reused);
  g_test_add_func ("/backend-vulkan/memory-reuse-chain", test_memory_reuse_chain);
  g_test_add_func ("/backend-vulkan/binding-ranges", test_binding_ranges);
  g_test_add_func ("/backend-vulkan/engine-choice", test_engine_choice);
  g_test_add_func ("/backend-vulkan/errors", test_errors);
  g_test_add_func ("/backend-vulkan/replay", test_replay);
  g_test_add_func ("/backend-vulkan/replay-failure", test_replay_failure);
  g_test_add_func ("/backend-vulkan/replay-off", test_replay_off);
  g_test_add_func ("/backend-vulkan/replay-unet", test_replay_unet);
  int rc = g_test_run ();
  easel_backend_free (vk);
  easel_backend_free (cpu);
  return rc;
}
