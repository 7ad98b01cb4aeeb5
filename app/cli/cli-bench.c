/* app/cli/cli-bench.c: `easel-cli bench`: each network's forward pass on full-size random-weight
 * checkpoints (written once with make-model into the cache folder), with seconds per call, the
 * matrix GFLOP/s achieved, peak memory, and — measured in the same run — the GFLOP/s of OpenBLAS
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
#include "engine/lora.h"
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
  else
    printf ("  %-34s %9.4f s/call  %9.1f GFLOP  %8.2f TFLOP/s  peak RSS %.2f GiB\n", what, dt, gflop, gflop / dt / 1e3,
            peak_rss_gib ());
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

/* The UNet's bench inputs: random sample and context at batch B, side S (latent), timestep 500,
 * SDXL's pooled text (zeros) and time ids (the image side). */
typedef struct {
  gint64 B, S, n_ids, P;
  float *x, *ctx, *pooled, *tids;
  float t[2];
} UnetInputs;

static void
unet_inputs_init (UnetInputs *in, EaselUnet *unet, const EaselDetection *det, const BenchCase *bc)
{
  const EaselUnetConfig *uc = easel_unet_config (unet);
  in->B = bc->unet_batch;
  in->S = bc->latent;
  in->n_ids = uc->adm_in ? det->n_time_ids : 0;
  in->P = det->pooled_dim;
  in->x = g_new (float, in->B * uc->in_channels * in->S * in->S);
  in->ctx = g_new (float, in->B * 77 * uc->context_dim);
  in->pooled = g_new0 (float, in->B * MAX (in->P, 1));
  in->tids = g_new (float, in->B * MAX (in->n_ids, 1));
  in->t[0] = in->t[1] = 500.0f;
  g_autoptr(EaselRng) rng = easel_rng_new (EASEL_RNG_CPU, 1);
  easel_rng_randn (rng, in->x, in->B * uc->in_channels * in->S * in->S);
  easel_rng_randn (rng, in->ctx, in->B * 77 * uc->context_dim);
  for (gint64 i = 0; i < in->B * in->n_ids; i++)
    in->tids[i] = (float) (in->S * 8);
}

static void
unet_inputs_clear (UnetInputs *in)
{
  g_free (in->x);
  g_free (in->ctx);
  g_free (in->pooled);
  g_free (in->tids);
}

/* out: (B, out_channels, S, S) */
static gboolean
unet_call (EaselUnet *unet, EaselBackend *be, const UnetInputs *in, float *out, GError **error)
{
  return easel_unet_forward (unet, be, in->x, in->B, in->S, in->S, in->t, in->ctx, 77, in->n_ids ? in->pooled : NULL,
                             in->P, in->n_ids ? in->tids : NULL, in->n_ids, out, error);
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
    UnetInputs in;
    unet_inputs_init (&in, unet, det, bc);
    gint64 B = in.B, S = in.S;
    g_autofree float *out = g_new (float, B * uc->out_channels * S * S);
    g_autofree char *label = g_strdup_printf ("unet %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " batch %" G_GINT64_FORMAT
                                              ", first", S * 8, S * 8, B);
    timer_start (&tm, be);
    if (!unet_call (unet, be, &in, out, error)) {
      unet_inputs_clear (&in);
      return FALSE;
    }
    timer_report (&tm, label, 1, ref);
    timer_start (&tm, be);
    for (int i = 0; i < iters; i++)
      if (!unet_call (unet, be, &in, out, error)) {
        unet_inputs_clear (&in);
        return FALSE;
      }
    g_autofree char *label2 = g_strdup_printf ("unet %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " batch %" G_GINT64_FORMAT,
                                               S * 8, S * 8, B);
    timer_report (&tm, label2, iters, ref);
    unet_inputs_clear (&in);
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

/* --- LoRA: applying a set and the UNet step in each mode ------------------------------------------ */

typedef struct {
  const char *file;       /* NULL: a random one in the cache folder */
  gint64 rank;
  gboolean convs;
  const char *modes;      /* comma list of merge, runtime, merge-round */
} LoraBench;

static gboolean bench_lora_modes (EaselUnet *unet, EaselClip *te1, EaselClip *te2, EaselLora *lora, EaselBackend *be,
                                  const UnetInputs *in, const char *mode_list, int iters, GError **error);

static char *
bench_lora_file (const char *family, const LoraBench *lb, EaselUnet *u, EaselClip *te1, EaselClip *te2, GError **error)
{
  if (lb->file)
    return g_strdup (lb->file);
  g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "easel", "bench", NULL);
  char *path = g_strdup_printf ("%s/%s-lora-r%" G_GINT64_FORMAT "%s.safetensors", dir, family, lb->rank,
                                lb->convs ? "-conv" : "");
  if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return path;
  guint n = 0;
  double t0 = now ();
  if (g_mkdir_with_parents (dir, 0755) != 0 || !easel_lora_make_random (u, te1, te2, lb->rank, lb->convs, 1, path, &n, error)) {
    if (error && !*error)
      g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s: cannot create", dir);
    g_free (path);
    return NULL;
  }
  printf ("wrote %s: %u modules, rank %" G_GINT64_FORMAT ", in %.1f s\n", path, n, lb->rank, now () - t0);
  return path;
}

static gboolean
bench_lora (const BenchCase *bc, const char *model_path, const LoraBench *lb, int n_threads, int iters, GError **error)
{
  g_autofree char *path = model_path ? g_strdup (model_path) : bench_model (bc->family, error);
  if (path == NULL)
    return FALSE;
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, error);
  if (ck == NULL)
    return FALSE;
  const EaselDetection *det = easel_checkpoint_detection (ck);
  g_autoptr(EaselBackend) be = strcmp (bench_backend, "cpu") == 0 ? easel_backend_new_cpu (n_threads)
                                                                     : easel_backend_new_for_name (bench_backend, error);
  g_autoptr(EaselUnet) unet = be ? easel_unet_new (ck, NULL, error) : NULL;
  if (unet == NULL)
    return FALSE;
  EaselClip *clips[2] = { NULL, NULL };
  for (guint i = 0; i < 2; i++) {
    g_autofree char *prefix = easel_clip_find_prefix (ck, i, NULL);
    if (prefix && (clips[i] = easel_clip_new (ck, prefix, NULL, error)) == NULL)
      return FALSE;
  }
  g_autoptr(EaselClip) te1 = clips[0], te2 = clips[1];
  g_autofree char *lora_path = bench_lora_file (bc->family, lb, unet, te1, te2, error);
  g_autoptr(EaselLora) lora = lora_path ? easel_lora_open (lora_path, error) : NULL;
  if (lora == NULL)
    return FALSE;
  printf ("%s LoRA: %s, %s, %" G_GSIZE_FORMAT " modules (UNet %" G_GSIZE_FORMAT "), backend %s\n", bc->family,
          easel_family_display_name (det->family), lora_path, easel_lora_n_modules (lora),
          easel_lora_n_modules_for (lora, EASEL_LORA_NET_UNET), bench_backend);

  /* the UNet's inputs: batch 2 at the family's native size */
  UnetInputs in;
  unet_inputs_init (&in, unet, det, bc);
  gboolean ok = bench_lora_modes (unet, te1, te2, lora, be, &in, lb->modes, iters, error);
  unet_inputs_clear (&in);
  return ok;
}

/* Each mode of the comma list modes on unet, te1, te2 with lora: apply and change times, the text
 * encoder and UNet calls, the largest differences of the outputs from the first mode's. */
static gboolean
bench_lora_modes (EaselUnet *unet, EaselClip *te1, EaselClip *te2, EaselLora *lora, EaselBackend *be,
                  const UnetInputs *in, const char *mode_list, int iters, GError **error)
{
  const EaselUnetConfig *uc = easel_unet_config (unet);
  gint64 B = in->B, S = in->S;
  gsize n_out = B * uc->out_channels * S * S;
  g_autofree float *first_out = NULL;
  gint32 ids[2 * 77];
  for (int i = 0; i < 2 * 77; i++)
    ids[i] = i % 77 == 0 ? 49406 : (i % 77 < 20 ? 320 + i % 77 : 49407);
  gsize n_te = te1 ? 2 * 77 * easel_clip_config (te1)->width : 0;
  g_autofree float *first_te = NULL;
  const char *first_mode = NULL;

  g_auto(GStrv) modes = g_strsplit (mode_list, ",", -1);
  for (int mi = 0; modes[mi]; mi++) {
    EaselLoraMode mode;
    gboolean round = strcmp (modes[mi], "merge-round") == 0;
    if (!easel_lora_mode_parse (round ? "merge" : modes[mi], &mode)) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--lora-mode: '%s' is not merge, runtime or "
                   "merge-round", modes[mi]);
      return FALSE;
    }
    g_autoptr(EaselLoraStack) stack = easel_lora_stack_new (unet, te1, te2);
    easel_lora_stack_set_mode (stack, mode);
    easel_lora_stack_set_merge_round (stack, round);
    printf (" mode %s\n", modes[mi]);
    const float strengths[3] = { 1.0f, 0.5f, 1.0f };
    const char *what[3] = { "apply (first set)", "change strength 1 -> 0.5", "change strength 0.5 -> 1" };
    for (int k = 0; k < 3; k++) {
      EaselLoraUse use = { lora, strengths[k], strengths[k] };
      double t0 = now ();
      if (!easel_lora_stack_apply (stack, &use, 1, NULL, error))
        return FALSE;
      printf ("  %-34s %9.3f s  (%u weights rebuilt)  peak RSS %.2f GiB\n", what[k], now () - t0,
              easel_lora_stack_n_rebuilt (stack), peak_rss_gib ());
    }
    Timer tm;
    g_autofree float *te_out = n_te ? g_new (float, n_te) : NULL;
    if (te1) {
      EaselClipRequest req = { 0, TRUE, FALSE, FALSE };
      timer_start (&tm, be);
      if (!easel_clip_encode (te1, be, ids, 2, 77, &req, te_out, NULL, NULL, error))
        return FALSE;
      timer_report (&tm, "text encoder 0, first", 1, 0);
    }
    g_autofree float *out = g_new (float, n_out);
    for (int k = 0; k < 2; k++) {
      int calls = k == 0 ? 1 : iters;
      g_autofree char *label = g_strdup_printf ("unet %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " batch %" G_GINT64_FORMAT
                                                "%s", S * 8, S * 8, B, k == 0 ? ", first" : "");
      timer_start (&tm, be);
      for (int i = 0; i < calls; i++)
        if (!unet_call (unet, be, in, out, error))
          return FALSE;
      timer_report (&tm, label, calls, 0);
    }
    if (first_out == NULL) {
      first_out = g_steal_pointer (&out);
      first_te = g_steal_pointer (&te_out);
      first_mode = modes[mi];
    } else {
      double du = 0, dt = 0, mu = 0;
      for (gsize i = 0; i < n_out; i++) {
        du = MAX (du, fabs ((double) out[i] - first_out[i]));
        mu = MAX (mu, fabs ((double) first_out[i]));
      }
      for (gsize i = 0; i < n_te; i++)
        dt = MAX (dt, fabs ((double) te_out[i] - first_te[i]));
      printf ("  max |%s - %s|: UNet %.3g (of max |out| %.3g), text encoder %.3g\n", modes[mi], first_mode, du, mu, dt);
    }
    double t0 = now ();
    if (!easel_lora_stack_apply (stack, NULL, 0, NULL, error))
      return FALSE;
    printf ("  %-34s %9.3f s\n", "remove (empty set)", now () - t0);
  }
  return TRUE;
}

int
easel_cli_bench (int argc, char **argv)
{
  LoraBench lb = { NULL, 32, FALSE, "merge,runtime" };
  gboolean with_lora = FALSE;
  const char *family = "sd15", *model = NULL;
  int n_threads = 0, iters = 1;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp (a, "--help") == 0) {
      printf ("Usage: easel-cli bench [--family sd15|sdxl|all] [--backend cpu|vulkan] [--model FILE] [--threads N]\n"
              "                       [--iters N] [--lora FILE|auto [--lora-rank N] [--lora-conv] [--lora-mode LIST]]\n\n"
              "Times each network on a full-size random-weight checkpoint (made once with make-model in\n"
              "%s/easel/bench/, or --model): seconds per call, matrix GFLOP/s, the share of\n"
              "OpenBLAS sgemm's GFLOP/s measured in the same run, and peak resident memory. The first\n"
              "call of each network includes converting its weights; later ones are timed --iters times.\n\n"
              "LoRA (instead of the networks above):\n"
              "  --lora FILE|auto       time applying and changing a LoRA set, the text encoder and the UNet\n"
              "                         step in each mode; auto: a random kohya LoRA written once next to\n"
              "                         the bench model (--lora-rank N, default 32; --lora-conv: LoCon, every\n"
              "                         UNet conv too); prints max |difference| between the modes' outputs\n"
              "  --lora-mode LIST       comma list of merge, runtime, merge-round (merged copies rounded to\n"
              "                         the file's dtype); default merge,runtime\n",
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
    } else if (strcmp (a, "--lora") == 0 && i + 1 < argc) {
      with_lora = TRUE;
      lb.file = strcmp (argv[++i], "auto") == 0 ? NULL : argv[i];
    } else if (strcmp (a, "--lora-rank") == 0 && i + 1 < argc) {
      lb.rank = atoi (argv[++i]);
      lb.rank = CLAMP (lb.rank, 1, 1024);
    } else if (strcmp (a, "--lora-conv") == 0) {
      lb.convs = TRUE;
    } else if (strcmp (a, "--lora-mode") == 0 && i + 1 < argc) {
      lb.modes = argv[++i];
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
    if (with_lora ? !bench_lora (&cases[i], model, &lb, n_threads, iters, &error)
                  : !bench_case (&cases[i], model, n_threads, iters, ref, &error)) {
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
