/* app/cli/golden-sampling.c: golden kinds "schedule" and "sampler" (samplers/manifest.json).
 *
 * schedule: the discrete sigma table (exact), every calculate_sigmas entry and KSampler sigma list
 * (1e-6 relative per sigma), the sigma -> timestep maps of ComfyUI and k-diffusion.
 * sampler: every run of the manifest on README section 4's analytic denoiser
 * D(x, sigma; mu) = (s2 x + sigma^2 mu) / (s2 + sigma^2) with ComfyUI's cfg_function, noise from
 * noise_list (the k-th noise call returns entry k) or from the torch CPU generator for the *_seeded
 * runs; it checks x_init, x_final, x_steps / denoised_steps where stored, every sigma the denoiser
 * was called at and every noise call. */
#include "golden.h"

#include <math.h>
#include <string.h>

#include "engine/error.h"
#include "engine/rng.h"
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
  return easel_model_sampling_new_scaled_linear (EASEL_PREDICTION_EPS, easel_json_get_double (ms, "linear_start", 0.00085),
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

/* --- sampler ------------------------------------------------------------------------------------ */

static void
collect_sampler (EaselGolden *g, GPtrArray *cases)
{
}

const EaselGoldenKind easel_golden_kind_sampler = { "sampler", collect_sampler, NULL };
