/* app/cli/cli-bench.c: `easel-cli bench`: each network's forward pass on full-size random-weight
 * checkpoints (written once with make-model into the cache folder), with seconds per call, the
 * matrix GFLOP/s achieved, peak memory (resident, and on the GPU the most device memory the backend
 * held during the calls), and — measured in the same run — the GFLOP/s of OpenBLAS
 * sgemm over the same threads, so the ratio shows how close each network runs to the machine. Never
 * fails on time; figures go to stdout. */
#include <errno.h>
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
#include "engine/profile.h"
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
static double peak_tflops = 989.0;     /* --peak-tflops: H100 SXM, fp16 dense tensor */

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
    printf ("  %-34s %9.4f s/call  %9.1f GFLOP  %8.2f TFLOP/s  %5.1f%% of %.0f TFLOP/s peak  peak GPU %.2f GiB  "
            "peak RSS %.2f GiB\n", what, dt, gflop, gflop / dt / 1e3, 100.0 * gflop / dt / 1e3 / peak_tflops, peak_tflops,
            after.device_peak_bytes / 1073741824.0, peak_rss_gib ());
  fflush (stdout);
}

/* Everything EaselBackendStats holds, once per case. */
static void
print_backend_stats (EaselBackend *be)
{
  EaselBackendStats st;
  easel_backend_get_stats (be, &st);
  printf ("  %s backend stats: %" G_GUINT64_FORMAT " computes, %" G_GUINT64_FORMAT " nodes, %.1f TFLOP, %.2f s in "
          "compute\n", easel_backend_name (be), st.computes, st.nodes, st.flops / 1e12, st.seconds);
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

/* One UNet call's inputs: sample (B, Cin, S, S) and context (B, 77, ctx) random, t = 500, SDXL's
 * pooled zeros and time ids all 8·S. */
typedef struct {
  EaselUnet *unet;
  gint64 B, S, n_ids, P;
  float *x, *out, *ctx, *pooled, *tids;
  float t[64];
} UnetRun;

static void
unet_run_init (UnetRun *r, EaselUnet *unet, const EaselDetection *det, gint64 B, gint64 S)
{
  const EaselUnetConfig *uc = easel_unet_config (unet);
  memset (r, 0, sizeof *r);
  r->unet = unet;
  r->B = MIN (B, (gint64) G_N_ELEMENTS (r->t));
  r->S = S;
  r->n_ids = uc->adm_in ? det->n_time_ids : 0;
  r->P = det->pooled_dim;
  r->x = g_new (float, r->B * uc->in_channels * S * S);
  r->out = g_new (float, r->B * uc->out_channels * S * S);
  r->ctx = g_new (float, r->B * 77 * uc->context_dim);
  r->pooled = g_new0 (float, r->B * MAX (r->P, 1));
  r->tids = g_new (float, r->B * MAX (r->n_ids, 1));
  g_autoptr(EaselRng) rng = easel_rng_new (EASEL_RNG_CPU, 1);
  easel_rng_randn (rng, r->x, r->B * uc->in_channels * S * S);
  easel_rng_randn (rng, r->ctx, r->B * 77 * uc->context_dim);
  for (gint64 i = 0; i < r->B * r->n_ids; i++)
    r->tids[i] = (float) (S * 8);
  for (gint64 i = 0; i < r->B; i++)
    r->t[i] = 500.0f;
}

static gboolean
unet_run (UnetRun *r, EaselBackend *be, GError **error)
{
  return easel_unet_forward (r->unet, be, r->x, r->B, r->S, r->S, r->t, r->ctx, 77, r->n_ids ? r->pooled : NULL, r->P,
                             r->n_ids ? r->tids : NULL, r->n_ids, r->out, error);
}

static void
unet_run_clear (UnetRun *r)
{
  g_free (r->x);
  g_free (r->out);
  g_free (r->ctx);
  g_free (r->pooled);
  g_free (r->tids);
}

/* With a profile on ($EASEL_PROFILE): prints what it holds under title (NULL: nothing) and empties
 * it, so each network's timed calls get their own table. */
static void
profile_section (EaselBackend *be, const char *title)
{
  EaselProfile *p = easel_backend_get_profile (be);
  if (p == NULL)
    return;
  if (title) {
    fflush (stdout);
    easel_profile_print (p, stderr, title, 20);
  }
  easel_profile_reset (p);
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
    profile_section (be, NULL);
    timer_start (&tm, be);
    for (int i = 0; i < iters; i++)
      if (!easel_clip_encode (clip, be, ids, 2, 77, &req, hidden, pooled, cc->projection ? emb : NULL, error))
        return FALSE;
    g_autofree char *label2 = g_strdup_printf ("text encoder %u", index);
    timer_report (&tm, label2, iters, ref);
    profile_section (be, label2);
  }

  /* UNet: batch 2 at the family's native size */
  {
    g_autoptr(EaselUnet) unet = easel_unet_new (ck, NULL, error);
    if (unet == NULL)
      return FALSE;
    UnetRun run;
    unet_run_init (&run, unet, det, bc->unet_batch, bc->latent);
    gint64 S = bc->latent, B = bc->unet_batch;
    g_autofree char *label = g_strdup_printf ("unet %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " batch %" G_GINT64_FORMAT
                                              ", first", S * 8, S * 8, B);
    timer_start (&tm, be);
    gboolean ok = unet_run (&run, be, error);
    if (ok)
      timer_report (&tm, label, 1, ref);
    profile_section (be, NULL);
    timer_start (&tm, be);
    for (int i = 0; i < iters && ok; i++)
      ok = unet_run (&run, be, error);
    g_autofree char *label2 = g_strdup_printf ("unet %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " batch %" G_GINT64_FORMAT,
                                               S * 8, S * 8, B);
    if (ok) {
      timer_report (&tm, label2, iters, ref);
      profile_section (be, label2);
    }
    unet_run_clear (&run);
    if (!ok)
      return FALSE;
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
    profile_section (be, NULL);
    timer_start (&tm, be);
    if (!easel_vae_decode (vae, be, z, 1, S, S, img, error))
      return FALSE;
    timer_report (&tm, label, 1, ref);
    profile_section (be, label);
    /* again, weights already on the device: the decode time of a generation after the first */
    timer_start (&tm, be);
    for (int i = 0; i < iters; i++)
      if (!easel_vae_decode (vae, be, z, 1, S, S, img, error))
        return FALSE;
    g_autofree char *label2 = g_strdup_printf ("vae decode %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT ", again", S * f, S * f);
    timer_report (&tm, label2, iters, ref);
    profile_section (be, label2);
  }
  print_backend_stats (be);
  return TRUE;
}

/* --- bench --ops ------------------------------------------------------------------------------ */

/* One (op, shape) of a network: enough to build a graph of that op alone. */
typedef struct {
  EaselProfileNode node;               /* key, flops, bytes */
  const char *model;                   /* the bench case's family */
  guint per_call;                      /* how often one forward runs it */
  int n_src;
  int n_dims[EASEL_MAX_SRC];
  gint64 shape[EASEL_MAX_SRC][EASEL_MAX_DIMS];
  gboolean weight[EASEL_MAX_SRC];
  gint32 ip[8];
  float fp[4];
} OpShape;

static gboolean
op_benched (EaselOp op)
{
  return op == EASEL_OP_LINEAR || op == EASEL_OP_CONV2D || op == EASEL_OP_ATTENTION || op == EASEL_OP_GROUP_NORM
         || op == EASEL_OP_LAYER_NORM || op == EASEL_OP_GEGLU;
}

/* A backend that runs nothing: it notes each benched node's shape (once per key, counting repeats)
 * and reads zeros, so that a network's forward lists its ops without computing them. */
typedef struct {
  EaselBackend parent;
  const char *model;
  GHashTable *seen;                    /* key -> OpShape * in shapes */
  GPtrArray *shapes;                   /* OpShape *, owned, in first-seen order */
} ShapesBackend;

static gboolean
shapes_compute (EaselBackend *b, EaselGraph *g, GError **error)
{
  ShapesBackend *sb = (ShapesBackend *) b;
  for (guint i = 0; i < easel_graph_n_nodes (g); i++) {
    const EaselTensor *t = easel_graph_node (g, i);
    if (!op_benched (t->op))
      continue;
    OpShape s = { .model = sb->model, .per_call = 1 };
    easel_profile_node_init (&s.node, t);
    OpShape *old = g_hash_table_lookup (sb->seen, s.node.key);
    if (old) {
      old->per_call++;
      continue;
    }
    for (int k = 0; k < EASEL_MAX_SRC && t->src[k]; k++) {
      s.n_src = k + 1;
      s.n_dims[k] = t->src[k]->n_dims;
      memcpy (s.shape[k], t->src[k]->shape, sizeof s.shape[k]);
      s.weight[k] = (t->src[k]->base->flags & EASEL_TENSOR_WEIGHT) != 0;
    }
    memcpy (s.ip, t->ip, sizeof s.ip);
    memcpy (s.fp, t->fp, sizeof s.fp);
    OpShape *n = g_memdup2 (&s, sizeof s);
    g_ptr_array_add (sb->shapes, n);
    g_hash_table_insert (sb->seen, n->node.key, n);
  }
  (void) error;
  return TRUE;
}

static gboolean
shapes_read (EaselBackend *b, const EaselTensor *t, float *out, GError **error)
{
  (void) b;
  (void) error;
  memset (out, 0, (gsize) easel_tensor_numel (t) * sizeof (float));
  return TRUE;
}

static void
shapes_free (EaselBackend *b)
{
  ShapesBackend *sb = (ShapesBackend *) b;
  g_hash_table_unref (sb->seen);
  g_free (sb);
}

static const EaselBackendClass shapes_class = { "shapes", shapes_compute, shapes_read, shapes_free };

/* The benched ops of one UNet forward of case bc at latent side S (batch bc->unet_batch), appended
 * to shapes (OpShape *). */
static gboolean
collect_unet_shapes (const BenchCase *bc, const char *model_path, gint64 S, GPtrArray *shapes, GError **error)
{
  g_autofree char *path = model_path ? g_strdup (model_path) : bench_model (bc->family, error);
  if (path == NULL)
    return FALSE;
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, error);
  if (ck == NULL)
    return FALSE;
  g_autoptr(EaselUnet) unet = easel_unet_new (ck, NULL, error);
  if (unet == NULL)
    return FALSE;
  ShapesBackend *sb = g_new0 (ShapesBackend, 1);
  sb->parent.klass = &shapes_class;
  sb->model = bc->family;
  sb->seen = g_hash_table_new (g_str_hash, g_str_equal);
  sb->shapes = shapes;
  easel_backend_set_profile (&sb->parent, FALSE);
  g_autoptr(EaselBackend) be = &sb->parent;
  UnetRun run;
  unet_run_init (&run, unet, easel_checkpoint_detection (ck), bc->unet_batch, S);
  gboolean ok = unet_run (&run, be, error);
  unet_run_clear (&run);
  return ok;
}

/* n small values: weights as fp16, inputs as fp32 */
static gpointer
random_data (EaselRng *rng, gint64 n, gboolean f16)
{
  float *f = g_new (float, MAX (n, 1));
  easel_rng_randn (rng, f, n);
  if (!f16)
    return f;
  guint16 *h = g_new (guint16, MAX (n, 1));
  for (gint64 i = 0; i < n; i++)
    h[i] = easel_f32_to_f16 (f[i] * 0.05f);
  g_free (f);
  return h;
}

/* Runs s's op alone, warmup + iters times: GPU (profile) and wall milliseconds per run. */
static gboolean
time_op (EaselBackend *be, EaselRng *rng, const OpShape *s, int warmup, int iters, double *gpu_ms, double *wall_ms,
         GError **error)
{
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GPtrArray) data = g_ptr_array_new_with_free_func (g_free);
  EaselTensor *src[EASEL_MAX_SRC] = { NULL };
  for (int k = 0; k < s->n_src; k++) {
    gint64 n = 1;
    for (int d = 0; d < s->n_dims[k]; d++)
      n *= s->shape[k][d];
    gpointer p = random_data (rng, n, s->weight[k]);
    g_ptr_array_add (data, p);
    g_autofree char *name = g_strdup_printf ("src%d", k);
    src[k] = s->weight[k] ? easel_graph_weight (g, name, EASEL_DTYPE_F16, s->n_dims[k], s->shape[k], p)
                          : easel_graph_input (g, name, EASEL_DTYPE_F32, s->n_dims[k], s->shape[k], p);
  }
  EaselTensor *y = NULL;
  switch (s->node.op) {
  case EASEL_OP_LINEAR:
    y = easel_op_linear (g, src[0], src[1], src[2]);
    break;
  case EASEL_OP_CONV2D:
    y = easel_op_conv2d_ext (g, src[0], src[1], src[2], s->ip[0], s->ip[1], s->ip[2], s->ip[3]);
    break;
  case EASEL_OP_ATTENTION:
    y = easel_op_attention (g, src[0], src[1], src[2], s->ip[0], s->fp[0], s->ip[1]);
    break;
  case EASEL_OP_GROUP_NORM:
    y = easel_op_group_norm (g, src[0], src[1], src[2], s->ip[0], s->fp[0], s->ip[1]);
    break;
  case EASEL_OP_LAYER_NORM:
    y = easel_op_layer_norm (g, src[0], src[1], src[2], s->fp[0]);
    break;
  case EASEL_OP_GEGLU:
    y = easel_op_geglu (g, src[0]);
    break;
  default:
    g_assert_not_reached ();
  }
  easel_graph_mark_output (g, y);
  g_autofree float *out = g_new (float, easel_tensor_numel (y));
  easel_backend_set_profile (be, TRUE);
  EaselProfile *prof = easel_backend_get_profile (be);
  for (int i = 0; i < warmup; i++)
    if (!easel_backend_compute (be, g, error) || !easel_backend_read (be, y, out, error))
      return FALSE;
  easel_profile_reset (prof);
  double t0 = now ();
  for (int i = 0; i < iters; i++)
    if (!easel_backend_compute (be, g, error))
      return FALSE;
  if (!easel_backend_read (be, y, out, error))
    return FALSE;
  *wall_ms = (now () - t0) * 1e3 / iters;
  *gpu_ms = easel_profile_total_seconds (prof) * 1e3 / iters;
  return TRUE;
}

static gboolean
bench_ops (const char *family, const char *model, gint64 latent, int iters, const char *out_path, GError **error)
{
  g_autoptr(GPtrArray) shapes = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    if (strcmp (family, "all") != 0 && strcmp (family, cases[i].family) != 0)
      continue;
    guint before = shapes->len;
    gint64 S = latent > 0 ? latent : cases[i].latent;
    if (!collect_unet_shapes (&cases[i], model, S, shapes, error))
      return FALSE;
    printf ("%s UNet %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " batch %" G_GINT64_FORMAT ": %u distinct shapes of "
            "linear, conv2d, attention, group_norm, layer_norm, geglu\n", cases[i].family, S * 8, S * 8,
            cases[i].unet_batch, shapes->len - before);
  }
  g_autoptr(EaselBackend) be = strcmp (bench_backend, "cpu") == 0 ? easel_backend_new_cpu (bench_threads)
                                                                     : easel_backend_new_for_name (bench_backend, error);
  if (be == NULL)
    return FALSE;
  FILE *tsv = NULL;
  if (out_path && (tsv = fopen (out_path, "w")) == NULL) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "%s: cannot write: %s", out_path,
                 g_strerror (errno));
    return FALSE;
  }
  if (tsv)
    fprintf (tsv, "model\tkey\top\tper_step\tms\twall_ms\tgflop\tgbytes\ttflops\tgbps\n");
  gboolean gpu = strcmp (easel_backend_name (be), "cpu") != 0;
  printf ("%s: each op alone, %d runs after 2 warm-up runs; ms per run from %s\n", easel_backend_name (be), iters,
          gpu ? "GPU timestamps" : "the wall clock around each node");
  printf ("%-6s %-50s %5s %9s %9s %9s %9s\n", "model", "key", "/step", "ms", "wall ms", "TFLOP/s", "GB/s");
  g_autoptr(EaselRng) rng = easel_rng_new (EASEL_RNG_CPU, 3);
  g_autoptr(GHashTable) done = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);   /* key -> double[2] */
  double step_ms[G_N_ELEMENTS (cases)] = { 0 };
  gboolean ok = TRUE;
  for (guint i = 0; i < shapes->len && ok; i++) {
    const OpShape *s = shapes->pdata[i];
    double *ms = g_hash_table_lookup (done, s->node.key);
    if (ms == NULL) {
      ms = g_new0 (double, 2);
      ok = time_op (be, rng, s, 2, iters, &ms[0], &ms[1], error);
      g_hash_table_insert (done, (gpointer) s->node.key, ms);
    }
    if (!ok)
      break;
    double sec = ms[0] / 1e3;
    double tflops = sec > 0 ? s->node.flops / sec / 1e12 : 0, gbps = sec > 0 ? s->node.bytes / sec / 1e9 : 0;
    printf ("%-6s %-50s %5u %9.4f %9.4f %9.2f %9.1f\n", s->model, s->node.key, s->per_call, ms[0], ms[1], tflops, gbps);
    if (tsv)
      fprintf (tsv, "%s\t%s\t%s\t%u\t%.6f\t%.6f\t%.6f\t%.6f\t%.4f\t%.2f\n", s->model, s->node.key,
               easel_op_name (s->node.op), s->per_call, ms[0], ms[1], s->node.flops / 1e9, s->node.bytes / 1e9, tflops,
               gbps);
    for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
      if (strcmp (cases[c].family, s->model) == 0)
        step_ms[c] += ms[0] * s->per_call;
    fflush (stdout);
  }
  if (tsv && fclose (tsv) != 0 && ok) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_IO, "%s: write failed", out_path);
    ok = FALSE;
  }
  for (guint c = 0; c < G_N_ELEMENTS (cases) && ok; c++)
    if (step_ms[c] > 0)
      printf ("%s: these ops, each alone, sum to %.3f ms per UNet step (counted per step as above)\n", cases[c].family,
              step_ms[c]);
  easel_backend_set_profile (be, FALSE);
  return ok;
}

/* --- LoRA: applying a set and the UNet step in each mode ------------------------------------------ */

typedef struct {
  const char *file;       /* NULL: a random one in the cache folder */
  gint64 rank;
  gboolean convs;
  const char *modes;      /* comma list of merge, runtime, merge-round */
} LoraBench;

static gboolean bench_lora_modes (EaselUnet *unet, EaselClip *te1, EaselClip *te2, EaselLora *lora, EaselBackend *be,
                                  UnetRun *run, const char *mode_list, int iters, GError **error);

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
  UnetRun run;
  unet_run_init (&run, unet, det, bc->unet_batch, bc->latent);
  gboolean ok = bench_lora_modes (unet, te1, te2, lora, be, &run, lb->modes, iters, error);
  unet_run_clear (&run);
  return ok;
}

/* Each mode of the comma list modes on unet, te1, te2 with lora: apply and change times, the text
 * encoder and UNet calls, the largest differences of the outputs from the first mode's. */
static gboolean
bench_lora_modes (EaselUnet *unet, EaselClip *te1, EaselClip *te2, EaselLora *lora, EaselBackend *be,
                  UnetRun *run, const char *mode_list, int iters, GError **error)
{
  const EaselUnetConfig *uc = easel_unet_config (unet);
  gint64 B = run->B, S = run->S;
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
        if (!unet_run (run, be, error))
          return FALSE;
      memcpy (out, run->out, n_out * sizeof (float));
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
  const char *family = "sd15", *model = NULL, *out_path = NULL;
  int n_threads = 0, iters = 1;
  LoraBench lb = { NULL, 32, FALSE, "merge,runtime" };
  gboolean with_lora = FALSE;
  gboolean ops = FALSE, quick = FALSE, iters_set = FALSE;
  gint64 latent = 0;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp (a, "--help") == 0) {
      printf ("Usage: easel-cli bench [--family sd15|sdxl|all] [--backend cpu|vulkan] [--model FILE] [--threads N]\n"
              "                       [--iters N] [--peak-tflops T]\n"
              "       easel-cli bench --lora FILE|auto [--lora-rank N] [--lora-conv] [--lora-mode LIST] [...]\n"
              "       easel-cli bench --ops [--family ...] [--backend ...] [--iters N] [--out FILE.tsv]\n"
              "                       [--latent N] [--quick]\n\n"
              "Times each network on a full-size random-weight checkpoint (made once with make-model in\n"
              "%s/easel/bench/, or --model): seconds per call (a UNet call is one CFG step,\n"
              "batch 2), matrix FLOPs and GFLOP/s; on the CPU the share of OpenBLAS sgemm's GFLOP/s\n"
              "measured in the same run, on a GPU the share of --peak-tflops (default 989: an H100 SXM's\n"
              "fp16 dense tensor peak); peak GPU memory (the most the backend held during the calls, every\n"
              "network so far included) and peak resident memory. The first call of each network includes\n"
              "converting or uploading its weights; later ones are timed --iters times. With\n"
              "EASEL_PROFILE=1 each network's timed calls are followed by a per-op profile on stderr.\n\n"
              "--ops: lists the linear, conv2d, attention, group_norm, layer_norm and geglu nodes of one\n"
              "UNet forward (batch 2 at the family's size, or latent side --latent N) and times each\n"
              "distinct shape alone (--iters runs, default 20, after 2 warm-up runs): milliseconds per\n"
              "run from GPU timestamps on Vulkan (the wall clock per node on the CPU), TFLOP/s or GB/s,\n"
              "and how often one step runs that shape. --out writes the rows as TSV (columns model, key,\n"
              "op, per_step, ms, wall_ms, gflop, gbytes, tflops, gbps; key as the profile prints it),\n"
              "which tools/bench-torch.py reads. --quick: latent 8 and 3 runs, for a smoke test.\n\n"
              "--lora FILE|auto: instead of the networks above, times applying and changing a LoRA set,\n"
              "the text encoder and the UNet step in each mode; auto: a random kohya LoRA written once next\n"
              "to the bench model (--lora-rank N, default 32; --lora-conv: LoCon, every UNet conv too);\n"
              "prints max |difference| between the modes' outputs. --lora-mode LIST: comma list of merge,\n"
              "runtime, merge-round (merged copies rounded to the file's dtype); default merge,runtime\n",
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
      iters_set = TRUE;
    } else if (strcmp (a, "--peak-tflops") == 0 && i + 1 < argc) {
      peak_tflops = g_ascii_strtod (argv[++i], NULL);
      if (!(peak_tflops > 0)) {
        easel_cli_error ("bench: --peak-tflops '%s': a positive number is needed", argv[i]);
        return 2;
      }
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
    } else if (strcmp (a, "--ops") == 0) {
      ops = TRUE;
    } else if (strcmp (a, "--quick") == 0) {
      quick = TRUE;
    } else if (strcmp (a, "--out") == 0 && i + 1 < argc) {
      out_path = argv[++i];
    } else if (strcmp (a, "--latent") == 0 && i + 1 < argc) {
      latent = g_ascii_strtoll (argv[++i], NULL, 10);
      if (latent < 1 || latent > 1024) {
        easel_cli_error ("bench: --latent '%s': a latent side from 1 to 1024 is needed", argv[i]);
        return 2;
      }
    } else {
      easel_cli_error ("bench: unknown or incomplete option '%s'", a);
      return 2;
    }
  }
  if (strcmp (family, "all") != 0 && strcmp (family, "sd15") != 0 && strcmp (family, "sdxl") != 0) {
    easel_cli_error ("bench: unknown family '%s' (sd15, sdxl, all)", family);
    return 2;
  }
  if (ops) {
    g_autoptr(GError) error = NULL;
    bench_threads = n_threads;
    if (quick) {
      latent = latent > 0 ? latent : 8;
      iters = iters_set ? iters : 3;
    } else if (!iters_set)
      iters = 20;
    if (!bench_ops (family, model, latent, iters, out_path, &error)) {
      easel_cli_error ("bench --ops: %s", error ? error->message : "failed");
      return 1;
    }
    return 0;
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
