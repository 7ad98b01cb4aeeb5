/* app/cli/golden-sampling.c: golden kinds "schedule" and "sampler" (samplers/manifest.json).
 *
 * schedule: the discrete sigma table (exact), every calculate_sigmas entry and KSampler sigma list
 * (1e-6 relative per sigma), the sigma -> timestep maps of ComfyUI and k-diffusion.
 * sampler: every run of the manifest on README section 4's analytic denoiser
 * D(x, sigma; mu) = (s2 x + sigma^2 mu) / (s2 + sigma^2) with ComfyUI's cfg_function, noise from
 * noise_list (the k-th noise call returns entry k, through a replay noise source) or, for the
 * *_seeded runs, from ComfyUI's default noise source for the seed their description names (the
 * initial noise from that seed, the sampler's noise from seed + 1 on the CPU); it checks x_init,
 * x_final, x_steps / denoised_steps where stored, every sigma the denoiser was called at and
 * every noise call. */
#include "golden.h"

#include <math.h>
#include <string.h>

#include "engine/error.h"
#include "engine/rng.h"
#include "engine/sampling/noise.h"
#include "engine/sampling/request.h"
#include "engine/sampling/samplers.h"
#include "engine/sampling/schedules.h"

#define MANIFEST "samplers/manifest.json"

/* --- shared ------------------------------------------------------------------------------------- */

static char *
data_file (EaselGolden *g, const EaselJson *m, const char *key, const char *fallback)
{
  return g_build_filename (easel_golden_dir (g), "samplers", easel_json_get_string (m, key, fallback), NULL);
}

/* The model sampling the manifest describes (ComfyUI ModelSamplingDiscrete, scaled-linear betas). */
static EaselModelSampling *
manifest_model_sampling (const EaselJson *m)
{
  const EaselJson *ms = easel_json_get (m, "model_sampling");
  gint64 n = easel_json_get_int (ms, "num_timesteps", 1000);
  return easel_model_sampling_new_scaled_linear (EASEL_PREDICTION_EPSILON, easel_json_get_double (ms, "linear_start", 0.00085),
                                                 easel_json_get_double (ms, "linear_end", 0.012),
                                                 (guint) CLAMP (n, 2, 100000));
}

/* Each element within rtol of its own reference value (NaN matches NaN). */
static gboolean
compare_each_rel (EaselGolden *g, const char *label, const float *got, gsize n_got, const float *want, gsize n_want,
                  double rtol, double atol)
{
  if (n_got != n_want) {
    g_autoptr(GString) s = g_string_new (NULL);
    for (gsize i = 0; i < n_got; i++)
      g_string_append_printf (s, "%s%.7g", i ? ", " : "", got[i]);
    easel_golden_fail (g, "%s: %" G_GSIZE_FORMAT " values, want %" G_GSIZE_FORMAT " (got [%s])", label, n_got, n_want,
                       s->str);
    return FALSE;
  }
  for (gsize i = 0; i < n_got; i++) {
    double d = fabs ((double) got[i] - want[i]);
    gboolean ok = isnan (want[i]) ? isnan (got[i]) : d <= atol + rtol * fabs ((double) want[i]);
    if (!ok) {
      easel_golden_fail (g, "%s[%" G_GSIZE_FORMAT "]: got %.9g want %.9g (rel %.3g)", label, i, got[i], want[i],
                         want[i] != 0 ? d / fabs ((double) want[i]) : d);
      return FALSE;
    }
  }
  return TRUE;
}

/* --- schedule ----------------------------------------------------------------------------------- */

typedef enum { SCHED_TABLE, SCHED_SCHEDULE, SCHED_KSAMPLER, SCHED_TIMESTEPS } SchedKind;

static void
add_sched_case (GPtrArray *cases, const char *dir, const char *name, const EaselJson *spec, SchedKind kind)
{
  EaselGoldenCase *c = easel_golden_case_new (name, dir, spec);
  c->data = GINT_TO_POINTER (kind);
  g_ptr_array_add (cases, c);
}

static void
collect_schedule (EaselGolden *g, GPtrArray *cases)
{
  const EaselJson *m = easel_golden_manifest (g, MANIFEST);
  const EaselJson *list;
  g_autofree char *dir = g_build_filename (easel_golden_dir (g), "samplers", NULL);

  if (m == NULL)
    return;
  if (easel_json_get (m, "model_sampling"))
    add_sched_case (cases, dir, "sd1_discrete", easel_json_get (m, "model_sampling"), SCHED_TABLE);
  list = easel_json_get (m, "schedules");
  for (gsize i = 0; i < easel_json_length (list); i++) {
    const EaselJson *e = easel_json_at (list, i);
    add_sched_case (cases, dir, easel_json_get_string (e, "tensor", "?"), e, SCHED_SCHEDULE);
  }
  list = easel_json_get (m, "ksampler_sigmas");
  for (gsize i = 0; i < easel_json_length (list); i++) {
    const EaselJson *e = easel_json_at (list, i);
    add_sched_case (cases, dir, easel_json_get_string (e, "tensor", "?"), e, SCHED_KSAMPLER);
  }
  if (easel_json_get (m, "timestep_map"))
    add_sched_case (cases, dir, "timestep_map", easel_json_get (m, "timestep_map"), SCHED_TIMESTEPS);
}

static gboolean
run_sched_table (EaselGolden *g, const EaselModelSampling *ms, const char *file, GError **error)
{
  guint n = easel_model_sampling_n_timesteps (ms);
  g_autofree float *sig = easel_golden_tensor_f32 (g, file, "sd1_discrete/sigmas", n, NULL, error);
  g_autofree float *ls = sig ? easel_golden_tensor_f32 (g, file, "sd1_discrete/log_sigmas", n, NULL, error) : NULL;
  g_autofree float *acf = ls ? easel_golden_tensor_f32 (g, file, "sd1_discrete/alphas_cumprod_f32", n, NULL, error) : NULL;
  g_autofree float *ac_mine = g_new (float, n);
  EaselSafetensors *st;
  const EaselStTensor *t;
  const double *ac = easel_model_sampling_alphas_cumprod (ms);
  gboolean ok = TRUE;

  if (acf == NULL)
    return FALSE;
  st = easel_golden_safetensors (g, file, error);
  t = st ? easel_safetensors_find (st, "sd1_discrete/alphas_cumprod_f64") : NULL;
  if (t == NULL || t->dtype != EASEL_DTYPE_F64 || t->n_elements != n) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no F64 sd1_discrete/alphas_cumprod_f64 of %u", file, n);
    return FALSE;
  }
  for (guint i = 0; i < n; i++) {
    double want;
    memcpy (&want, t->data + i * sizeof (double), sizeof want);
    if (fabs (want - ac[i]) > 1e-15 * want) {
      easel_golden_fail (g, "alphas_cumprod_f64[%u]: got %.17g want %.17g", i, ac[i], want);
      return FALSE;
    }
    ac_mine[i] = (float) ac[i];
  }
  ok &= easel_golden_compare (g, "sigmas", easel_model_sampling_sigmas (ms), sig, n, NULL, 0, 0, 0);
  ok &= easel_golden_compare (g, "log_sigmas", easel_model_sampling_log_sigmas (ms), ls, n, NULL, 0, 0, 0);
  ok &= easel_golden_compare (g, "alphas_cumprod_f32", ac_mine, acf, n, NULL, 0, 0, 0);
  return ok;
}

static gboolean
run_sched_timesteps (EaselGolden *g, const EaselModelSampling *ms, const EaselJson *spec, const char *file,
                     GError **error)
{
  gsize n = 0;
  guint nt = easel_model_sampling_n_timesteps (ms);
  g_autofree float *sig = easel_golden_tensor_f32 (g, file, easel_json_get_string (spec, "sigma", "?"), 0, &n, error);
  g_autofree float *comfy = sig ? easel_golden_tensor_f32 (g, file, easel_json_get_string (spec, "comfyui", "?"), n, NULL, error) : NULL;
  g_autofree float *kd = comfy ? easel_golden_tensor_f32 (g, file, easel_json_get_string (spec, "kdiffusion_interpolated", "?"), n, NULL, error) : NULL;
  g_autofree float *kdq = kd ? easel_golden_tensor_f32 (g, file, easel_json_get_string (spec, "kdiffusion_quantized", "?"), n, NULL, error) : NULL;
  g_autofree float *kd_table = kdq ? easel_golden_tensor_f32 (g, file, "timestep_map/kdiffusion_sigmas", nt, NULL, error) : NULL;
  g_autofree float *got = g_new (float, MAX (n, 1));
  gboolean ok = TRUE;

  if (kd_table == NULL)
    return FALSE;
  /* A1111's table: the manifest's 1e-6 relative for sigmas (11 of 1000 values differ by one float32 ulp,
   * the reference's float32 alphas_cumprod came by a route slightly different from (float) of float64) */
  ok &= compare_each_rel (g, "kdiffusion_sigmas", easel_model_sampling_kdiffusion_sigmas (ms), nt, kd_table, nt,
                          1e-6, 0.0);
  for (gsize i = 0; i < n; i++)
    got[i] = (float) easel_model_sampling_timestep (ms, sig[i]);
  ok &= easel_golden_compare (g, "comfyui_timestep", got, comfy, n, NULL, 0, 0, 0);
  for (gsize i = 0; i < n; i++)
    got[i] = easel_model_sampling_sigma_to_t_kdiffusion (ms, sig[i], TRUE);
  ok &= easel_golden_compare (g, "kdiffusion_quantized", got, kdq, n, NULL, 0, 0, 0);
  /* fractional timesteps in [0, 999]: float32 ulp there is 6e-5 */
  for (gsize i = 0; i < n; i++)
    got[i] = easel_model_sampling_sigma_to_t_kdiffusion (ms, sig[i], FALSE);
  ok &= easel_golden_compare (g, "kdiffusion_sigma_to_t", got, kd, n, NULL, 0, 2e-4, 0);
  return ok;
}

static gboolean
run_schedule (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  const EaselJson *m = easel_golden_manifest (g, MANIFEST);
  g_autofree char *file = data_file (g, m, "schedules_file", "schedules.safetensors");
  g_autoptr(EaselModelSampling) ms = manifest_model_sampling (m);
  SchedKind kind = GPOINTER_TO_INT (c->data);
  EaselScheduler sch;
  g_autofree float *want = NULL;
  g_autofree float *got = NULL;
  gsize n_want = 0, n_got = 0;
  const char *sampler;

  if (kind == SCHED_TABLE)
    return run_sched_table (g, ms, file, error);
  if (kind == SCHED_TIMESTEPS)
    return run_sched_timesteps (g, ms, c->spec, file, error);
  if (!easel_scheduler_from_name (easel_json_get_string (c->spec, "scheduler", ""), &sch)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "unknown scheduler '%s'",
                 easel_json_get_string (c->spec, "scheduler", ""));
    return FALSE;
  }
  want = easel_golden_tensor_f32 (g, file, easel_json_get_string (c->spec, "tensor", "?"), 0, &n_want, error);
  if (want == NULL)
    return FALSE;
  sampler = easel_json_get_string (c->spec, "sampler", NULL);
  if (kind == SCHED_SCHEDULE) {
    got = easel_schedule_sigmas (ms, sch, (guint) easel_json_get_int (c->spec, "steps", 0), &n_got, error);
  } else {
    const EaselSamplerInfo *info = easel_sampler_find (sampler);
    if (info == NULL) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "unknown sampler '%s'", sampler);
      return FALSE;
    }
    got = easel_ksampler_sigmas (ms, sch, (guint) easel_json_get_int (c->spec, "steps", 0),
                                 easel_json_get_double (c->spec, "denoise", 1.0),
                                 (info->flags & EASEL_SAMPLER_DISCARD_PENULTIMATE) != 0, &n_got, error);
  }
  if (got == NULL)
    return FALSE;
  return compare_each_rel (g, "sigmas", got, n_got, want, n_want, 1e-6, 0.0);
}

const EaselGoldenKind easel_golden_kind_schedule = { "schedule", collect_schedule, run_schedule };

/* --- sampler ----------------------------------------------------------------------------------- */

typedef struct {
  gsize n;                       /* elements of one latent */
  float s2;
  const float *mu_cond, *mu_uncond;
  double cfg;
  float *cond;                   /* scratch (n) */
  GArray *call_sigmas;           /* double: every sigma the denoiser saw */
  EaselNoiseSource *noise;       /* replay of noise_list, or ComfyUI's default for the seed */
  GArray *noise_calls;           /* double pairs */
  /* progress */
  GArray *x_steps, *den_steps;   /* float, n per step */
} Run;

/* D(x, sigma; mu) = (s2 x + sigma^2 mu) / (s2 + sigma^2), float32 like the reference. */
static void
analytic_denoiser (float *out, const float *x, float sigma, float s2, const float *mu, gsize n)
{
  float sg2 = sigma * sigma;
  for (gsize i = 0; i < n; i++)
    out[i] = (s2 * x[i] + sg2 * mu[i]) / (s2 + sg2);
}

static gboolean
run_denoise (gpointer user_data, const float *x, double sigma, guint step, float *out, float *out_uncond,
             GError **error)
{
  Run *r = user_data;
  g_autofree float *unc = g_new (float, r->n);
  (void) step;
  (void) error;
  g_array_append_val (r->call_sigmas, sigma);
  analytic_denoiser (r->cond, x, (float) sigma, r->s2, r->mu_cond, r->n);
  analytic_denoiser (unc, x, (float) sigma, r->s2, r->mu_uncond, r->n);
  easel_sampling_cfg (out, r->cond, unc, r->cfg, r->n);
  if (out_uncond)
    memcpy (out_uncond, unc, r->n * sizeof (float));
  return TRUE;
}

static gboolean
run_noise (gpointer user_data, double sigma, double sigma_next, float *out, GError **error)
{
  Run *r = user_data;
  g_array_append_val (r->noise_calls, sigma);
  g_array_append_val (r->noise_calls, sigma_next);
  return easel_noise_source_sample (r->noise, sigma, sigma_next, out, error);
}

/* The integer in "manual_seed(N)" after marker in text. */
static gboolean
seed_after (const char *text, const char *marker, guint64 *out)
{
  const char *p = strstr (text, marker), *q;
  char *end = NULL;
  if (p == NULL || (q = strstr (p, "manual_seed(")) == NULL)
    return FALSE;
  q += strlen ("manual_seed(");
  if (!g_ascii_isdigit (*q))
    return FALSE;
  *out = g_ascii_strtoull (q, &end, 10);
  return end && *end == ')';
}

/* The seeded runs: the seed of their initial noise (its description's "initial noise ...
 * manual_seed(S)"), checked against the noise sampler's generator seed the description names. */
static gboolean
seeded_run_seed (EaselGolden *g, const char *desc, guint64 *seed)
{
  guint64 gen;
  if (!seed_after (desc, "initial noise", seed)) {
    easel_golden_fail (g, "noise: no initial-noise seed in '%s'", desc);
    return FALSE;
  }
  /* ComfyUI default_noise_sampler on the CPU: seed + 1 (what easel_noise_source_new_torch does) */
  if (seed_after (desc, "Generator('cpu')", &gen) && gen != *seed + 1) {
    easel_golden_fail (g, "noise: generator seed %" G_GUINT64_FORMAT " is not the initial seed %" G_GUINT64_FORMAT
                       " + 1", gen, *seed);
    return FALSE;
  }
  return TRUE;
}

static void
run_step (gpointer user_data, guint step, guint n_steps, const float *x, const float *denoised)
{
  Run *r = user_data;
  (void) step;
  (void) n_steps;
  g_array_append_vals (r->x_steps, x, r->n);
  g_array_append_vals (r->den_steps, denoised, r->n);
}

static void
collect_sampler (EaselGolden *g, GPtrArray *cases)
{
  const EaselJson *m = easel_golden_manifest (g, MANIFEST);
  const EaselJson *runs = easel_json_get (m, "runs");
  g_autofree char *dir = g_build_filename (easel_golden_dir (g), "samplers", NULL);

  for (gsize i = 0; i < easel_json_length (runs); i++) {
    const EaselJson *r = easel_json_at (runs, i);
    g_ptr_array_add (cases, easel_golden_case_new (easel_json_get_string (r, "name", "?"), dir, r));
  }
}

/* Compares a list of logged sigmas (stride values per entry) with a manifest array of numbers or
 * of [a, b] pairs, within rtol. */
static gboolean
compare_sigma_log (EaselGolden *g, const char *label, const GArray *got, const EaselJson *want, guint stride,
                   double rtol)
{
  gsize n = easel_json_length (want);
  if (got->len != n * stride) {
    easel_golden_fail (g, "%s: %u calls, want %" G_GSIZE_FORMAT, label, got->len / stride, n);
    return FALSE;
  }
  for (gsize i = 0; i < n; i++) {
    for (guint j = 0; j < stride; j++) {
      const EaselJson *v = stride == 1 ? easel_json_at (want, i) : easel_json_at (easel_json_at (want, i), j);
      double w = NAN, x = g_array_index (got, double, i * stride + j);
      easel_json_double (v, &w);
      if (!(fabs (x - w) <= rtol * fabs (w) + 1e-9)) {
        easel_golden_fail (g, "%s[%" G_GSIZE_FORMAT "]: sigma %.8g, want %.8g", label, i, x, w);
        return FALSE;
      }
    }
  }
  return TRUE;
}

static gboolean
compare_steps (EaselGolden *g, const char *label, const char *file, const char *name, const GArray *got, gsize n,
               double tol, const float *x_init, GError **error)
{
  gsize n_want = 0;
  g_autofree float *want = easel_golden_tensor_f32 (g, file, name, 0, &n_want, error);
  gboolean constant = TRUE;

  if (want == NULL)
    return FALSE;
  if (n_want != got->len) {
    easel_golden_fail (g, "%s: %u steps, want %" G_GSIZE_FORMAT, label, got->len / (guint) n, n_want / n);
    return FALSE;
  }
  /* ComfyUI's ipndm, ipndm_v and deis report the initial x at every step (an upstream quirk): their
   * reference x_steps equal x_init throughout, and denoised_steps / x_final carry the check */
  for (gsize i = 0; x_init && i < n_want; i++)
    constant &= want[i] == x_init[i % n];
  if (x_init && constant && n_want > n)
    return TRUE;
  double ref_max = 1.0;
  for (gsize i = 0; i < n_want; i++)
    ref_max = fmax (ref_max, fabs ((double) want[i]));
  return easel_golden_compare (g, label, (const float *) got->data, want, n_want, NULL, 0, tol * ref_max, 0.0);
}

static gboolean
run_sampler (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  const EaselJson *m = easel_golden_manifest (g, MANIFEST), *spec = c->spec;
  g_autofree char *runs_file = data_file (g, m, "runs_file", "sampler_runs.safetensors");
  g_autofree char *in_file = g_build_filename (easel_golden_dir (g), "samplers",
                                               easel_json_get_string (easel_json_get (m, "denoiser"), "inputs_file",
                                                                      "sampler_inputs.safetensors"), NULL);
  g_autoptr(EaselModelSampling) ms = manifest_model_sampling (m);
  const char *sampler_name = easel_json_get_string (spec, "sampler", "?");
  const EaselSamplerInfo *info;
  gboolean seeded = easel_json_type (easel_json_get (spec, "noise")) == EASEL_JSON_STRING;
  gboolean kdiff = g_str_has_prefix (easel_json_get_string (spec, "implementation", ""), "crowsonkb");
  double denoise = easel_json_get_double (spec, "denoise", 1.0), tol, ref_max, sigma_rtol;
  const char *sampler_lc = sampler_name;
  EaselScheduler sch;
  EaselSamplerOptions opts;
  gsize n = 0, n_sig = 0, n_list = 0, n_mine = 0;
  gboolean ok = TRUE;
  /* the run's settings through the request check the CLI and the app use */
  EaselSamplingRequest req = { sampler_name, easel_json_get_string (spec, "scheduler", NULL),
                               easel_json_get_int (spec, "steps", 0), easel_json_get_double (spec, "cfg", 1.0), denoise,
                               EASEL_SAMPLING_DEFAULT, EASEL_SAMPLING_DEFAULT };
  EaselSamplingChoice choice;

  if (!easel_sampling_request_check (&req, &choice, error))
    return FALSE;
  info = choice.sampler;
  opts = choice.options;
  g_autofree float *noise = easel_golden_tensor_f32 (g, in_file, seeded ? "noise_from_seed" : "noise", 0, &n, error);
  g_autofree float *mu_c = noise ? easel_golden_tensor_f32 (g, in_file, "mu_cond", n, NULL, error) : NULL;
  g_autofree float *mu_u = mu_c ? easel_golden_tensor_f32 (g, in_file, "mu_uncond", n, NULL, error) : NULL;
  g_autofree float *s2 = mu_u ? easel_golden_tensor_f32 (g, in_file, "s2", 1, NULL, error) : NULL;
  g_autofree float *latent = s2 ? easel_golden_tensor_f32 (g, in_file, "latent_image", n, NULL, error) : NULL;
  g_autofree float *nlist = latent ? easel_golden_tensor_f32 (g, in_file, "noise_list", 0, &n_list, error) : NULL;
  g_autofree float *sigmas = nlist ? easel_golden_tensor_f32 (g, runs_file, easel_json_get_string (spec, "sigmas", "?"),
                                                              0, &n_sig, error) : NULL;
  g_autofree float *want_init = sigmas ? easel_golden_tensor_f32 (g, runs_file, easel_json_get_string (spec, "x_init", "?"),
                                                                  n, NULL, error) : NULL;
  g_autofree float *want_final = want_init ? easel_golden_tensor_f32 (g, runs_file,
                                                                      easel_json_get_string (spec, "x_final", "?"), n,
                                                                      NULL, error) : NULL;
  if (want_final == NULL)
    return FALSE;

  /* the sigma list: this run's, and the one Easel's KSampler computes for the same settings */
  if (easel_scheduler_from_name (easel_json_get_string (spec, "scheduler", ""), &sch)) {
    g_autofree float *mine = easel_ksampler_sigmas (ms, choice.scheduler, choice.steps, choice.denoise,
                                                    (info->flags & EASEL_SAMPLER_DISCARD_PENULTIMATE) != 0, &n_mine,
                                                    error);
    if (mine == NULL)
      return FALSE;
    ok &= compare_each_rel (g, "sigmas", mine, n_mine, sigmas, n_sig, 1e-6, 0.0);
  }

  /* the seeded runs draw their initial noise from the seed (ComfyUI prepare_noise: torch.randn on a
   * CPU generator), which must equal noise_from_seed */
  g_autoptr(EaselNoiseSource) source = NULL;
  if (seeded) {
    guint64 seed;
    g_autoptr(EaselRng) rng = NULL;
    if (!seeded_run_seed (g, easel_json_get_string (spec, "noise", ""), &seed))
      return FALSE;
    rng = easel_rng_new (EASEL_RNG_CPU, seed);
    g_autofree float *want_noise = g_steal_pointer (&noise);
    noise = g_new (float, n);
    easel_rng_randn (rng, noise, n);
    ok &= easel_golden_compare (g, "noise_from_seed", noise, want_noise, n, NULL, 0, 0.0, 0.0);
    source = easel_noise_source_new_torch (EASEL_NOISE_COMFYUI, EASEL_RNG_CPU, seed, n);
  } else {
    source = easel_noise_source_new_replay (nlist, n_list / MAX (n, 1), n);
  }

  /* x_init by ComfyUI's noise_scaling; the denoise < 1 runs start from latent_image */
  g_autofree float *x = g_new (float, n);
  easel_model_sampling_noise_scaling (ms, sigmas[0], easel_model_sampling_is_max_denoise (ms, sigmas[0]), noise,
                                      easel_json_type (easel_json_get (spec, "denoise")) == EASEL_JSON_NUMBER ? latent
                                                                                                    : NULL, x, n);
  ok &= easel_golden_compare (g, "x_init", x, want_init, n, NULL, 0, 0.0, 1e-6);

  g_autofree float *cond = g_new (float, n);
  g_autoptr(GArray) call_sigmas = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) noise_calls = g_array_new (FALSE, FALSE, sizeof (double));
  g_autoptr(GArray) x_steps = g_array_new (FALSE, FALSE, sizeof (float));
  g_autoptr(GArray) den_steps = g_array_new (FALSE, FALSE, sizeof (float));
  Run r = { n, s2[0], mu_c, mu_u, easel_json_get_double (spec, "cfg", 1.0), cond, call_sigmas, source, noise_calls,
            x_steps, den_steps };
  EaselSampleCtx ctx = { n, ms, run_denoise, run_noise, run_step, &r, NULL };

  if (kdiff)
    opts.flavor = EASEL_SAMPLER_FLAVOR_KDIFFUSION;
  if (!easel_sampler_run (info, &ctx, &opts, x, sigmas, n_sig, error))
    return FALSE;

  /* tolerances of the manifest: 1e-4 * max(1, max|x|); 1e-3 for the numerically integrated ones */
  tol = (strcmp (sampler_lc, "dpm_adaptive") == 0 || strcmp (sampler_lc, "lms") == 0 ||
         strcmp (sampler_lc, "deis") == 0) ? 1e-3 : 1e-4;
  ref_max = 1.0;
  for (gsize i = 0; i < n; i++)
    ref_max = fmax (ref_max, fabs ((double) want_final[i]));
  ok &= easel_golden_compare (g, "x_final", x, want_final, n, NULL, 0, tol * ref_max, 0.0);
  /* Sigmas of the calls: float32 values, computed in float64 here: 1e-5. dpm_adaptive picks its steps
   * from the float32 difference of two solutions through a PID controller, so its later sigmas carry
   * that rounding, compounded (seen up to 1.1e-4 by the 20th call): the manifest's 1e-3 of its x.
   * The number of calls is checked exactly either way. */
  sigma_rtol = tol > 1e-4 ? tol : 1e-5;
  if (easel_json_get (spec, "model_call_sigmas"))
    ok &= compare_sigma_log (g, "model_call_sigmas", call_sigmas, easel_json_get (spec, "model_call_sigmas"), 1,
                             sigma_rtol);
  /* an empty reference list means the reference used its own noise sampler there (dpm_fast/adaptive) */
  if (easel_json_length (easel_json_get (spec, "noise_calls")) > 0)
    ok &= compare_sigma_log (g, "noise_calls", noise_calls, easel_json_get (spec, "noise_calls"), 2, sigma_rtol);
  if (easel_json_type (easel_json_get (spec, "denoised_steps")) == EASEL_JSON_STRING &&
      !compare_steps (g, "denoised_steps", runs_file, easel_json_get_string (spec, "denoised_steps", "?"), den_steps, n,
                      tol, NULL, error))
    ok = FALSE;
  if (easel_json_type (easel_json_get (spec, "x_steps")) == EASEL_JSON_STRING &&
      !compare_steps (g, "x_steps", runs_file, easel_json_get_string (spec, "x_steps", "?"), x_steps, n, tol,
                      want_init, error))
    ok = FALSE;
  return ok;
}

const EaselGoldenKind easel_golden_kind_sampler = { "sampler", collect_sampler, run_sampler };
