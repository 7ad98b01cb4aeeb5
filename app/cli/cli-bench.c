/* app/cli/cli-bench.c: `easel-cli bench`: each network's forward pass on full-size random-weight
 * checkpoints (written once with make-model into the cache folder), with seconds per call, the
 * matrix GFLOP/s achieved, peak memory (resident, and on the GPU the most device memory the backend
 * held during the calls), and — measured in the same run — the GFLOP/s of OpenBLAS
 * sgemm over the same threads, so the ratio shows how close each network runs to the machine. Never
 * fails on time; figures go to stdout. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/clip.h"
#include "engine/cpu/ops.h"
#include "engine/model-make.h"
#include "engine/model-spec.h"
#include "engine/rng.h"
#include "engine/unet.h"
#include "engine/vae.h"

typedef struct {
  const char *family;     /* make-model name */
  gint64 latent;          /* latent side: 64 = 512², 128 = 1024² */
  gint64 unet_batch;      /* 2: the CFG pair */
} BenchCase;

static const BenchCase cases[] = {
  { "sd15", 64, 2 },
  { "sdxl", 128, 2 },
};

static double
now (void)
{
  return (double) g_get_monotonic_time () / G_USEC_PER_SEC;
}

/* Peak resident memory so far, GiB. */
static double
peak_rss_gib (void)
{
  struct rusage ru;
  getrusage (RUSAGE_SELF, &ru);
  return (double) ru.ru_maxrss / (1024.0 * 1024.0);
}

/* sgemm through the pool (each thread one single-threaded OpenBLAS call on its rows), at a size
 * where OpenBLAS runs at its best: the machine's reference GFLOP/s. */
static double
sgemm_gflops (int n_threads)
{
  const gint64 M = 4096, N = 1280, K = 1280;
  EaselCpuPool *pool = easel_cpu_pool_new (n_threads);
  g_autofree float *x = g_new (float, M * K), *w = g_new (float, N * K), *y = g_new (float, M * N);
  double best = 0;
  for (gint64 i = 0; i < M * K; i++)
    x[i] = (float) ((i % 7) - 3) * 0.1f;
  for (gint64 i = 0; i < N * K; i++)
    w[i] = (float) ((i % 5) - 2) * 0.1f;
  for (int r = 0; r < 4; r++) {
    double t0 = now ();
    easel_cpu_linear_f32 (pool, y, x, w, NULL, M, N, K);
    double dt = now () - t0;
    best = MAX (best, 2.0 * M * N * K / dt / 1e9);
  }
  easel_cpu_pool_free (pool);
  return best;
}

typedef struct {
  EaselBackend *be;
  EaselBackendStats before;
  double t0;
} Timer;

static int bench_threads;
static double ref_gflops;
static const char *bench_backend = "cpu";

/* sgemm is measured again right before each timing, so a machine whose load changes during the
 * run still gives a fair ratio. */
static void
timer_start (Timer *t, EaselBackend *be)
{
  if (strcmp (bench_backend, "cpu") == 0)
    ref_gflops = sgemm_gflops (bench_threads);
  t->be = be;
  easel_backend_reset_memory_peak (be);
  easel_backend_get_stats (be, &t->before);
  t->t0 = now ();
}

static void
timer_report (Timer *t, const char *what, int calls, double unused)
{
  EaselBackendStats after;
  double dt = (now () - t->t0) / calls;
  easel_backend_get_stats (t->be, &after);
  double gflop = (after.flops - t->before.flops) / calls / 1e9;
  if (strcmp (bench_backend, "cpu") == 0)
    printf ("  %-34s %9.3f s/call  %9.1f GFLOP  %7.1f GFLOP/s  %5.0f%% of sgemm (%.0f)  peak RSS %.2f GiB\n", what, dt,
            gflop, gflop / dt, 100.0 * gflop / dt / ref_gflops, ref_gflops, peak_rss_gib ());
  else   /* GPU memory: the most held during these calls (weights of the networks so far, activations) */
    printf ("  %-34s %9.4f s/call  %9.1f GFLOP  %8.2f TFLOP/s  peak GPU %.2f GiB  peak RSS %.2f GiB\n", what, dt,
            gflop, gflop / dt / 1e3, after.device_peak_bytes / 1073741824.0, peak_rss_gib ());
  fflush (stdout);
}

static char *
bench_model (const char *family, GError **error)
{
  g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "easel", "bench", NULL);
  char *path = g_strdup_printf ("%s/%s-seed1.safetensors", dir, family);
  if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return path;
  EaselModelSpec spec;
  EaselMakeOptions opt = { EASEL_DTYPE_F16, 1, 0 };
  if (g_mkdir_with_parents (dir, 0755) != 0 || !easel_model_spec_get (family, FALSE, &spec, error)) {
    if (error && !*error)
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s: cannot create", dir);
    g_free (path);
    return NULL;
  }
  printf ("writing %s (make-model --family %s --seed 1) ...\n", path, family);
  fflush (stdout);
  double t0 = now ();
  if (!easel_model_make (&spec, &opt, path, error)) {
    g_free (path);
    return NULL;
  }
  printf ("  written in %.1f s\n", now () - t0);
  return path;
}

static gboolean
bench_case (const BenchCase *bc, const char *model_path, int n_threads, int iters, double ref, GError **error)
{
  g_autofree char *path = model_path ? g_strdup (model_path) : bench_model (bc->family, error);
  if (path == NULL)
    return FALSE;
  double t0 = now ();
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, error);
  if (ck == NULL)
    return FALSE;
  const EaselDetection *det = easel_checkpoint_detection (ck);
  printf ("%s: %s, %s (opened in %.2f s)\n", bc->family, easel_family_display_name (det->family), path, now () - t0);
  g_autoptr(EaselBackend) be = strcmp (bench_backend, "cpu") == 0 ? easel_backend_new_cpu (n_threads)
                                                                     : easel_backend_new_for_name (bench_backend, error);
  if (be == NULL)
    return FALSE;
  Timer tm;

  /* text encoders: the CFG pair (2, 77) */
  gint32 ids[2 * 77];
  for (int i = 0; i < 2 * 77; i++)
    ids[i] = i % 77 == 0 ? 49406 : (i % 77 < 20 ? 320 + i % 77 : 49407);
  for (guint index = 0; index < 2; index++) {
    g_autofree char *prefix = easel_clip_find_prefix (ck, index, NULL);
    if (prefix == NULL)
      continue;
    g_autoptr(EaselClip) clip = easel_clip_new (ck, prefix, NULL, error);
    if (clip == NULL)
      return FALSE;
    const EaselClipConfig *cc = easel_clip_config (clip);
    EaselClipRequest req = { 0, TRUE, TRUE, cc->projection > 0 };
    g_autofree float *hidden = g_new (float, 2 * 77 * cc->width), *pooled = g_new (float, 2 * cc->width);
    g_autofree float *emb = g_new (float, 2 * MAX (cc->projection, 1));
    g_autofree char *label = g_strdup_printf ("text encoder %u (%" G_GINT64_FORMAT " wide), first", index, cc->width);
    timer_start (&tm, be);
    if (!easel_clip_encode (clip, be, ids, 2, 77, &req, hidden, pooled, cc->projection ? emb : NULL, error))
      return FALSE;
    timer_report (&tm, label, 1, ref);
    timer_start (&tm, be);
    for (int i = 0; i < iters; i++)
      if (!easel_clip_encode (clip, be, ids, 2, 77, &req, hidden, pooled, cc->projection ? emb : NULL, error))
        return FALSE;
    g_autofree char *label2 = g_strdup_printf ("text encoder %u", index);
    timer_report (&tm, label2, iters, ref);
  }

  /* UNet: batch 2 at the family's native size */
  {
    g_autoptr(EaselUnet) unet = easel_unet_new (ck, NULL, error);
    if (unet == NULL)
      return FALSE;
    const EaselUnetConfig *uc = easel_unet_config (unet);
    gint64 B = bc->unet_batch, S = bc->latent, n_ids = uc->adm_in ? det->n_time_ids : 0, P = det->pooled_dim;
    g_autofree float *x = g_new (float, B * uc->in_channels * S * S), *out = g_new (float, B * uc->out_channels * S * S);
    g_autofree float *ctx = g_new (float, B * 77 * uc->context_dim), *pooled = g_new0 (float, B * MAX (P, 1));
    g_autofree float *tids = g_new (float, B * MAX (n_ids, 1));
    float t[2] = { 500.0f, 500.0f };
    g_autoptr(EaselRng) rng = easel_rng_new (EASEL_RNG_CPU, 1);
    easel_rng_randn (rng, x, B * uc->in_channels * S * S);
    easel_rng_randn (rng, ctx, B * 77 * uc->context_dim);
    for (gint64 i = 0; i < B * n_ids; i++)
      tids[i] = (float) (S * 8);
    g_autofree char *label = g_strdup_printf ("unet %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " batch %" G_GINT64_FORMAT
                                              ", first", S * 8, S * 8, B);
    timer_start (&tm, be);
    if (!easel_unet_forward (unet, be, x, B, S, S, t, ctx, 77, n_ids ? pooled : NULL, P, n_ids ? tids : NULL, n_ids,
                             out, error))
      return FALSE;
    timer_report (&tm, label, 1, ref);
    timer_start (&tm, be);
    for (int i = 0; i < iters; i++)
      if (!easel_unet_forward (unet, be, x, B, S, S, t, ctx, 77, n_ids ? pooled : NULL, P, n_ids ? tids : NULL, n_ids,
                               out, error))
        return FALSE;
    g_autofree char *label2 = g_strdup_printf ("unet %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " batch %" G_GINT64_FORMAT,
                                               S * 8, S * 8, B);
    timer_report (&tm, label2, iters, ref);
  }

  /* VAE decode of one image */
  {
    g_autoptr(EaselVae) vae = easel_vae_new (ck, NULL, error);
    if (vae == NULL)
      return FALSE;
    gint64 S = bc->latent, f = easel_vae_factor (vae);
    g_autofree float *z = g_new (float, 4 * S * S), *img = g_new (float, 3 * S * f * S * f);
    g_autoptr(EaselRng) rng = easel_rng_new (EASEL_RNG_CPU, 2);
    easel_rng_randn (rng, z, 4 * S * S);
    g_autofree char *label = g_strdup_printf ("vae decode %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT, S * f, S * f);
    timer_start (&tm, be);
    if (!easel_vae_decode (vae, be, z, 1, S, S, img, error))
      return FALSE;
    timer_report (&tm, label, 1, ref);
  }
  return TRUE;
}

int
easel_cli_bench (int argc, char **argv)
{
  const char *family = "sd15", *model = NULL;
  int n_threads = 0, iters = 1;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp (a, "--help") == 0) {
      printf ("Usage: easel-cli bench [--family sd15|sdxl|all] [--backend cpu|vulkan] [--model FILE] [--threads N]\n"
              "                       [--iters N]\n\n"
              "Times each network on a full-size random-weight checkpoint (made once with make-model in\n"
              "%s/easel/bench/, or --model): seconds per call, matrix GFLOP/s, the share of\n"
              "OpenBLAS sgemm's GFLOP/s measured in the same run, peak GPU memory (Vulkan: the most the\n"
              "backend held during the calls, every network so far included) and peak resident memory. The first\n"
              "call of each network includes converting its weights; later ones are timed --iters times.\n",
              g_get_user_cache_dir ());
      return 0;
    } else if (strcmp (a, "--family") == 0 && i + 1 < argc) {
      family = argv[++i];
    } else if (strcmp (a, "--model") == 0 && i + 1 < argc) {
      model = argv[++i];
    } else if (strcmp (a, "--backend") == 0 && i + 1 < argc) {
      bench_backend = argv[++i];
    } else if (strcmp (a, "--threads") == 0 && i + 1 < argc) {
      n_threads = atoi (argv[++i]);
    } else if (strcmp (a, "--iters") == 0 && i + 1 < argc) {
      iters = atoi (argv[++i]);
      iters = MAX (iters, 1);   /* not MAX (1, atoi (argv[++i])): the macro would step i twice */
    } else {
      easel_cli_error ("bench: unknown or incomplete option '%s'", a);
      return 2;
    }
  }
  EaselCpuPool *probe = easel_cpu_pool_new (n_threads);
  int nth = easel_cpu_pool_get_n_threads (probe);
  easel_cpu_pool_free (probe);
  bench_threads = n_threads;
  double ref = sgemm_gflops (n_threads);
  printf ("cpu: %d threads; OpenBLAS sgemm 4096x1280x1280: %.1f GFLOP/s\n", nth, ref);
  gboolean any = FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    if (strcmp (family, "all") != 0 && strcmp (family, cases[i].family) != 0)
      continue;
    any = TRUE;
    g_autoptr(GError) error = NULL;
    if (!bench_case (&cases[i], model, n_threads, iters, ref, &error)) {
      easel_cli_error ("bench: %s", error ? error->message : "failed");
      return 1;
    }
  }
  if (!any) {
    easel_cli_error ("bench: unknown family '%s' (sd15, sdxl, all)", family);
    return 2;
  }
  return 0;
}
