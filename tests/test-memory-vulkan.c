/* tests/test-memory-vulkan.c: the Vulkan backend's device memory (backend.h): what it holds is
 * counted to the allocation, easel_backend_graph_memory says what a graph needs alone, a limit is
 * never passed (weights of other graphs are released, least recently used first, and uploaded again
 * when needed, with the same results), a graph that cannot fit fails with a clear
 * EASEL_ERROR_OUT_OF_MEMORY and leaves the backend usable, and so does a driver's own
 * VK_ERROR_OUT_OF_DEVICE_MEMORY (injected: easel_vk_debug_fail_allocations), after releasing what it
 * can. easel_vae_decode_memory is exact: a decode runs under that limit and not one byte below. Then the pipeline on the tiny SD 1.5 and SDXL models of the test data with a limit just above
 * what their UNet needs: the same latents as without a limit (bit for bit: the same kernels on the
 * same weights), the image within the exact tiled VAE's tolerance (tests/test-vae.c: 1e-4), the peak
 * under the limit although the job without a limit held more; one byte less fails at the UNet with a
 * clear message, and the engine runs the next job fine.
 * Skips without a Vulkan device (lavapipe counts), unless CI=true. */
#include <dlfcn.h>
#include <math.h>
#include <string.h>

#include "engine/checkpoint.h"
#include "engine/engine-private.h"
#include "engine/pipeline.h"
#include "engine/vulkan/vk.h"
#include "testutil.h"

#define MIB ((guint64) 1 << 20)
#define SLOP ((guint64) 64 << 10)   /* allocation alignment a driver may add per buffer */

enum { M = 8, K = 256, N = 1024 };   /* x (M, K) · W (N, K)ᵀ: 1 MiB of fp32 weights */

typedef struct {
  float x[M * K];
  float *w;                          /* N K values, not fp16-exact: stored fp32 */
} Linear;

static void
linear_init (Linear *l, guint32 seed)
{
  g_autoptr(GRand) r = g_rand_new_with_seed (seed);
  l->w = g_new (float, N * K);
  for (gsize i = 0; i < M * K; i++)
    l->x[i] = (float) g_rand_double_range (r, -1, 1);
  for (gsize i = 0; i < N * K; i++)
    l->w[i] = (float) g_rand_double_range (r, -0.1, 0.1);
}

static EaselTensor *
build_linear (EaselGraph *g, const Linear *l)
{
  const gint64 xs[2] = { M, K }, ws[2] = { N, K };
  EaselTensor *x = easel_graph_input (g, "x", EASEL_DTYPE_F32, 2, xs, l->x);
  EaselTensor *y = easel_op_linear (g, x, easel_graph_weight (g, "fc.weight", EASEL_DTYPE_F32, 2, ws, l->w), NULL);
  easel_graph_mark_output (g, y);
  return y;
}

/* y = x Wᵀ on be; FALSE with error when compute fails */
static gboolean
run_linear (EaselBackend *be, const Linear *l, float *y, GError **error)
{
  g_autoptr(EaselGraph) g = easel_graph_new ();
  EaselTensor *out = build_linear (g, l);
  return easel_backend_compute (be, g, error) && easel_backend_read (be, out, y, error);
}

static guint64
linear_memory (EaselBackend *be, const Linear *l)
{
  g_autoptr(EaselGraph) g = easel_graph_new ();
  build_linear (g, l);
  return easel_backend_graph_memory (be, g);
}

/* y (M, N) against the CPU backend's: fp32 sums of 256 products of about 0.05, in another order */
static void
assert_close (const float *y, const float *want)
{
  for (gsize i = 0; i < M * N; i++)
    g_assert_cmpfloat (fabsf (y[i] - want[i]), <=, 1e-5f);
}

static EaselBackendStats
stats (EaselBackend *be)
{
  EaselBackendStats s;
  easel_backend_get_stats (be, &s);
  return s;
}

static void
check_validation (EaselBackend *be)
{
  gint errors = easel_backend_vulkan_validation_errors (be);
  if (errors > 0)
    g_error ("%d Vulkan validation errors (printed above)", errors);
}

static EaselBackend *
new_backend (void)
{
  g_autoptr(GError) error = NULL;
  EaselBackend *be = easel_backend_new_vulkan (NULL, &error);
  g_assert_no_error (error);
  return be;
}

/* held bytes: the fixed buffers, then + weights + arena + readback; graph_memory says the same */
static void
test_accounting (void)
{
  g_autoptr(EaselBackend) be = new_backend ();
  g_autoptr(EaselBackend) cpu = easel_backend_new_cpu (2);
  g_autoptr(GError) error = NULL;
  Linear l;
  linear_init (&l, 1);
  float y[M * N], want[M * N];

  guint64 fixed = stats (be).device_bytes;
  g_assert_cmpuint (fixed, >=, 256);                                 /* staging and the placeholder */
  g_assert_cmpuint (stats (be).device_peak_bytes, ==, fixed);
  guint64 need = linear_memory (be, &l);
  /* 1 MiB of weights, 1 MiB granules of arena and readback */
  g_assert_cmpuint (need, ==, fixed + 3 * MIB);
  g_assert_true (run_linear (be, &l, y, &error));
  g_assert_no_error (error);
  g_assert_true (run_linear (cpu, &l, want, &error));
  assert_close (y, want);
  EaselBackendStats s = stats (be);
  g_test_message ("fixed %" G_GUINT64_FORMAT " bytes, after one linear %" G_GUINT64_FORMAT, fixed, s.device_bytes);
  g_assert_cmpuint (s.device_bytes, >=, need);
  g_assert_cmpuint (s.device_bytes, <=, need + 3 * SLOP);
  g_assert_cmpuint (s.device_peak_bytes, ==, s.device_bytes);
  /* the same graph again holds nothing more; the peak restarts from what is held */
  g_assert_true (run_linear (be, &l, y, &error));
  g_assert_cmpuint (stats (be).device_bytes, ==, s.device_bytes);
  easel_backend_reset_memory_peak (be);
  g_assert_cmpuint (stats (be).device_peak_bytes, ==, s.device_bytes);
  /* the CPU backend holds none and takes no limit */
  easel_backend_set_memory_limit (cpu, 1);
  g_assert_true (run_linear (cpu, &l, want, &error));
  g_assert_cmpuint (stats (cpu).device_bytes, ==, 0);
  g_assert_cmpuint (easel_backend_graph_memory (cpu, NULL), ==, 0);
  check_validation (be);
  g_free (l.w);
}

/* Under a limit that fits one linear but not two, alternating graphs release each other's weights
 * and upload them again: the results do not change and the limit is never passed. */
static void
test_limit_releases (void)
{
  g_autoptr(EaselBackend) be = new_backend ();
  g_autoptr(GError) error = NULL;
  Linear a, b;
  linear_init (&a, 2);
  linear_init (&b, 3);
  float ya[M * N], yb[M * N], y[M * N];

  g_assert_true (run_linear (be, &a, ya, &error) && run_linear (be, &b, yb, &error));
  g_assert_no_error (error);
  guint64 both = stats (be).device_bytes, one = linear_memory (be, &a);
  g_assert_cmpuint (both, >=, one + MIB);                  /* no limit: both weights stay */

  const guint64 limit = one + SLOP;
  easel_backend_set_memory_limit (be, limit);
  g_assert_cmpuint (easel_backend_get_memory_limit (be), ==, limit);
  for (int round = 0; round < 3; round++) {
    g_assert_true (run_linear (be, &a, y, &error));
    g_assert_no_error (error);
    g_assert_cmpmem (y, sizeof y, ya, sizeof ya);
    g_assert_cmpuint (stats (be).device_bytes, <=, limit);
    easel_backend_reset_memory_peak (be);
    g_assert_true (run_linear (be, &b, y, &error));
    g_assert_no_error (error);
    g_assert_cmpmem (y, sizeof y, yb, sizeof yb);
    g_assert_cmpuint (stats (be).device_peak_bytes, <=, limit);
  }
  check_validation (be);
  g_free (a.w);
  g_free (b.w);
}

/* A graph that needs more than the limit: a clear error before anything is allocated, and the
 * backend runs the next graph (with room) correctly. */
static void
test_limit_too_small (void)
{
  g_autoptr(EaselBackend) be = new_backend ();
  g_autoptr(GError) error = NULL;
  Linear l;
  linear_init (&l, 4);
  float y[M * N], want[M * N];
  g_autoptr(EaselBackend) cpu = easel_backend_new_cpu (2);
  g_assert_true (run_linear (cpu, &l, want, &error));

  guint64 need = linear_memory (be, &l), before = stats (be).device_bytes;
  easel_backend_set_memory_limit (be, need - 1);
  g_assert_false (run_linear (be, &l, y, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "limit"));
  g_assert_nonnull (strstr (error->message, "weights 1.0 MiB"));
  g_assert_cmpuint (stats (be).device_bytes, ==, before);
  g_clear_error (&error);

  easel_backend_set_memory_limit (be, need + SLOP);
  g_assert_true (run_linear (be, &l, y, &error));
  g_assert_no_error (error);
  assert_close (y, want);
  check_validation (be);
  g_free (l.w);
}

/* The driver's own out-of-memory (injected): the least recently used weights are released and the
 * allocation tried again; with nothing to release, a clear error, and the backend still works. */
static void
test_driver_oom (void)
{
  g_autoptr(EaselBackend) be = new_backend ();
  g_autoptr(GError) error = NULL;
  Linear a, b;
  linear_init (&a, 5);
  linear_init (&b, 6);
  float ya[M * N], yb[M * N], y[M * N];
  g_autoptr(EaselBackend) cpu = easel_backend_new_cpu (2);
  g_assert_true (run_linear (cpu, &a, ya, &error) && run_linear (cpu, &b, yb, &error));

  /* b's slab fails once: a's weights go, b's come */
  g_assert_true (run_linear (be, &a, y, &error));
  guint64 held = stats (be).device_bytes;
  easel_vk_debug_fail_allocations (1);
  g_assert_true (run_linear (be, &b, y, &error));
  g_assert_no_error (error);
  assert_close (y, yb);
  g_assert_cmpuint (stats (be).device_bytes, ==, held);    /* one 1 MiB slab for another */

  /* a fresh backend has nothing to release: the activation buffer's allocation fails */
  g_autoptr(EaselBackend) be2 = new_backend ();
  guint64 fixed = stats (be2).device_bytes;
  easel_vk_debug_fail_allocations (1);
  g_assert_false (run_linear (be2, &a, y, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "out of device memory for easel activations"));
  g_assert_nonnull (strstr (error->message, "VK_ERROR_OUT_OF_DEVICE_MEMORY"));
  g_assert_cmpuint (stats (be2).device_bytes, ==, fixed);
  g_clear_error (&error);
  /* ... then the weights' slab, with the activations already there */
  easel_vk_debug_fail_allocations (0);
  g_autoptr(EaselGraph) g = easel_graph_new ();
  const gint64 xs[2] = { M, K };
  easel_graph_mark_output (g, easel_op_silu (g, easel_graph_input (g, "x", EASEL_DTYPE_F32, 2, xs, a.x)));
  g_assert_true (easel_backend_compute (be2, g, &error));
  easel_vk_debug_fail_allocations (1);
  g_assert_false (run_linear (be2, &a, y, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY);
  g_assert_nonnull (strstr (error->message, "weights slab"));
  g_clear_error (&error);
  for (int i = 0; i < 2; i++) {
    g_assert_true (run_linear (be2, &a, y, &error));
    g_assert_no_error (error);
    assert_close (y, ya);
  }
  check_validation (be);
  check_validation (be2);
  g_free (a.w);
  g_free (b.w);
}

/* easel_vae_decode_memory is what a decode needs: under exactly that limit it runs (weights of
 * earlier graphs released as it goes), one byte less fails, untiled and in tiles. */
static void
test_vae_decode_memory (void)
{
  g_autofree char *path = test_data_path ("models", "sd1_tiny", NULL);
  if (path == NULL)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  g_assert_no_error (error);
  g_autoptr(EaselVae) vae = easel_vae_new (ck, NULL, &error);
  g_assert_no_error (error);
  const gint64 h = 8, w = 8, f = easel_vae_factor (vae);
  g_autofree float *z = g_new (float, 4 * h * w), *image = g_new (float, 3 * h * f * w * f);
  for (gint64 i = 0; i < 4 * h * w; i++)
    z[i] = (float) ((i * 37 % 101) / 50.0 - 1.0);
  const gint64 tiles[] = { 0, 4 };
  guint64 need[2];
  for (guint i = 0; i < G_N_ELEMENTS (tiles); i++) {
    g_autoptr(EaselBackend) be = new_backend ();
    g_assert_true (easel_vae_decode_memory (vae, be, 1, h, w, tiles[i], &need[i], &error));
    g_assert_no_error (error);
    g_test_message ("VAE decode of 8x8 latents, tile %d: %.2f MiB", (int) tiles[i], need[i] / (double) MIB);
    easel_backend_set_memory_limit (be, need[i] - 1);
    gboolean ok = tiles[i] ? easel_vae_decode_tiled (vae, be, z, 1, h, w, EASEL_VAE_TILES_EXACT, tiles[i], 0, image, &error)
                           : easel_vae_decode (vae, be, z, 1, h, w, image, &error);
    g_assert_false (ok);
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY);
    g_clear_error (&error);
    easel_backend_set_memory_limit (be, need[i]);
    ok = tiles[i] ? easel_vae_decode_tiled (vae, be, z, 1, h, w, EASEL_VAE_TILES_EXACT, tiles[i], 0, image, &error)
                  : easel_vae_decode (vae, be, z, 1, h, w, image, &error);
    g_assert_no_error (error);
    g_assert_true (ok);
    g_assert_cmpuint (stats (be).device_peak_bytes, <=, need[i]);
    check_validation (be);
  }
  g_assert_cmpuint (need[1], <, need[0]);            /* tiles need less */
}

/* --- the pipeline ------------------------------------------------------------------------------- */

static EaselJobParams
small_job (void)
{
  return (EaselJobParams) {
    .prompt = "a photo of a cat", .negative_prompt = "blurry", .sampler = "euler", .scheduler = "normal",
    .steps = 2, .cfg = 5.0, .seed = 11, .rng = EASEL_RNG_CPU, .width = 128, .height = 128, .batch_size = 1,
    .batch_count = 1, .clip_skip = 1,
  };
}

/* What the pipeline's UNet call (the CFG pair of the job) needs on a backend holding nothing else. */
static guint64
unet_need (EaselModel *model, const EaselJobParams *job)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselBackend) be = new_backend ();
  EaselUnet *unet = easel_model_unet (model, &error);
  g_assert_no_error (error);
  const EaselUnetConfig *uc = easel_unet_config (unet);
  const EaselDetection *det = easel_model_detection (model);
  const gint64 B = 2, h = job->height / 8, w = job->width / 8;
  const gint64 n_ids = uc->adm_in ? det->n_time_ids : 0, P = uc->adm_in ? det->pooled_dim : 0;
  g_autofree float *x = g_new0 (float, B * uc->in_channels * h * w), *out = g_new (float, B * uc->out_channels * h * w);
  g_autofree float *ctx = g_new0 (float, B * 77 * uc->context_dim), *pooled = g_new0 (float, B * MAX (P, 1));
  g_autofree float *tids = g_new0 (float, B * MAX (n_ids, 1));
  const float t[2] = { 500, 500 };
  guint64 fixed = stats (be).device_bytes;
  g_assert_true (easel_unet_forward (unet, be, x, B, h, w, t, ctx, 77, P ? pooled : NULL, P, n_ids ? tids : NULL,
                                     n_ids, out, &error));
  g_assert_no_error (error);
  g_test_message ("UNet alone: %.2f MiB (%.2f MiB fixed)", stats (be).device_peak_bytes / (double) MIB,
                  fixed / (double) MIB);
  return stats (be).device_peak_bytes;
}

static gboolean
has_message (const EaselPipelineResult *r, const char *part)
{
  for (guint i = 0; i < r->messages->len; i++)
    if (strstr (r->messages->pdata[i], part))
      return TRUE;
  return FALSE;
}

static EaselEngine *
new_engine (double max_vram_gib)
{
  g_autoptr(GError) error = NULL;
  EaselEngineOptions eo = { .backend = "vulkan", .max_vram_gib = max_vram_gib };
  EaselEngine *engine = easel_engine_new (&eo, &error);
  g_assert_no_error (error);
  return engine;
}

static EaselModel *
load_model (EaselEngine *engine, const char *path, const char *vocab)
{
  g_autoptr(GError) error = NULL;
  EaselModelOptions mo = { .vocab = vocab };
  EaselModel *model = easel_model_load_with_options (engine, path, &mo, &error);
  g_assert_no_error (error);
  return model;
}

static void
check_pipeline (gconstpointer data)
{
  const char *name = data;
  g_autofree char *path = test_data_path ("models", name, NULL);
  g_autofree char *vocab = test_data_path ("tokenizer", NULL);
  if (path == NULL || vocab == NULL)
    return;
  g_autoptr(GError) error = NULL;
  EaselJobParams job = small_job ();
  EaselPipelineRequest req = { .job = &job };
  EaselPipelineResult ref, r;

  /* without a limit */
  g_autoptr(EaselEngine) free_engine = new_engine (0);
  g_autoptr(EaselModel) free_model = load_model (free_engine, path, vocab);
  EaselBackend *free_be = easel_engine_backend (free_engine);
  g_assert_true (easel_pipeline_run (free_engine, free_model, &req, NULL, NULL, NULL, &ref, &error));
  g_assert_no_error (error);
  const guint64 peak_free = stats (free_be).device_peak_bytes;
  const guint64 limit = unet_need (free_model, &job) + SLOP;
  guint64 vae_untiled = 0;
  EaselVae *vae = easel_model_vae (free_model, &error);
  g_assert_true (easel_vae_decode_memory (vae, free_be, 1, job.height / 8, job.width / 8, 0, &vae_untiled, &error));
  g_test_message ("%s: %.2f MiB held without a limit; limit %.2f MiB; untiled VAE decode %.2f MiB", name,
                  peak_free / (double) MIB, limit / (double) MIB, vae_untiled / (double) MIB);
  g_assert_cmpuint (peak_free, >, limit);            /* the limit binds: weights must leave */
  g_assert_cmpuint (vae_untiled, >, limit);          /* and the VAE must tile */

  /* just above the UNet's need (an engine made with it): the same latents, the image within the
   * exact tiles' tolerance, and never more held than the limit */
  g_autoptr(EaselEngine) engine = new_engine (limit / 1073741824.0);
  g_autoptr(EaselModel) model = load_model (engine, path, vocab);
  EaselBackend *be = easel_engine_backend (engine);
  g_assert_cmpuint (easel_backend_get_memory_limit (be), <=, limit);
  g_assert_cmpuint (easel_backend_get_memory_limit (be), >=, limit - 1);
  g_assert_true (easel_pipeline_run (engine, model, &req, NULL, NULL, NULL, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats (be).device_peak_bytes, <=, limit);
  g_assert_cmpuint (r.n_latents, ==, ref.n_latents);
  g_assert_cmpmem (r.latents, r.n_latents * sizeof (float), ref.latents, ref.n_latents * sizeof (float));
  double max_diff = 0;
  for (gsize i = 0; i < r.n_decoded; i++)
    max_diff = MAX (max_diff, fabs (r.decoded[i] - ref.decoded[i]));
  g_test_message ("%s under the limit: peak %.2f MiB, decoded max |diff| %.3g", name,
                  stats (be).device_peak_bytes / (double) MIB, max_diff);
  g_assert_cmpfloat (max_diff, <=, 1e-4);
  g_assert_true (has_message (&r, "VAE decoded in tiles of"));
  easel_pipeline_result_clear (&r);

  /* one byte less than the UNet needs: a clear error at the UNet */
  easel_backend_set_memory_limit (be, limit - SLOP - 1);
  g_assert_false (easel_pipeline_run (engine, model, &req, NULL, NULL, NULL, &r, &error));
  easel_pipeline_result_clear (&r);
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, "denoising (UNet): "));
  g_assert_nonnull (strstr (error->message, "limit"));
  g_clear_error (&error);

  /* and the next job, with room, runs as the first did */
  easel_backend_set_memory_limit (be, 0);
  g_assert_true (easel_pipeline_run (engine, model, &req, NULL, NULL, NULL, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (r.latents, r.n_latents * sizeof (float), ref.latents, ref.n_latents * sizeof (float));
  g_assert_cmpmem (r.decoded, r.n_decoded * sizeof (float), ref.decoded, ref.n_decoded * sizeof (float));
  easel_pipeline_result_clear (&r);
  easel_pipeline_result_clear (&ref);
  check_validation (be);
  check_validation (free_be);
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_test_init (&argc, &argv, NULL);
  dlopen ("libvulkan_lvp.so", RTLD_NOW | RTLD_NODELETE);   /* as tests/test-backend-vulkan.c says why */
  g_autoptr(EaselBackend) probe = easel_backend_new_vulkan (NULL, &error);
  if (probe == NULL) {
    if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
      g_error ("CI=true but no Vulkan device (lavapipe: mesa-vulkan-drivers): %s", error->message);
    g_print ("1..0 # SKIP no Vulkan device: %s\n", error->message);
    return 0;
  }
  g_test_add_func ("/memory-vulkan/accounting", test_accounting);
  g_test_add_func ("/memory-vulkan/limit-releases", test_limit_releases);
  g_test_add_func ("/memory-vulkan/limit-too-small", test_limit_too_small);
  g_test_add_func ("/memory-vulkan/driver-oom", test_driver_oom);
  g_test_add_func ("/memory-vulkan/vae-decode-memory", test_vae_decode_memory);
  g_test_add_data_func ("/memory-vulkan/pipeline-sd15", "sd1_tiny", check_pipeline);
  g_test_add_data_func ("/memory-vulkan/pipeline-sdxl", "sdxl_tiny", check_pipeline);
  return g_test_run ();
}
