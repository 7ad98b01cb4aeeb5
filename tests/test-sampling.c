/* tests/test-sampling.c: unit tests of engine/sampling: the sampler table, names (A1111 labels and
 * legacy combined names), request checks, schedules and their argument checks, the noise sources
 * (torch conventions, replay, the Brownian tree's law and consistency), and the samplers the
 * reference data has no runs of (uni_pc, uni_pc_bh2, cfgpp_ud10_ab), tested by convergence to the
 * exact solution of the analytic denoiser D(x, sigma) = (s2 x + sigma^2 mu) / (s2 + sigma^2) (README
 * section 4 of the test data): its probability-flow ODE dx/dsigma = (x - D) / sigma has
 * x(sigma) = mu + (x0 - mu) sqrt((s2 + sigma^2) / (s2 + sigma0^2)). The golden parity of every other
 * sampler is `easel-cli check-golden --kind sampler`. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "engine/error.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "engine/sampling/noise.h"
#include "engine/sampling/request.h"
#include "engine/sampling/samplers.h"
#include "engine/sampling/schedules.h"

#define N 64

typedef struct {
  double s2, cfg;
  float mu_c[N], mu_u[N];
  gboolean uncond_is_cond;   /* ComfyUI at cfg 1 without the CFG++ flag: D_uncond = D_cond */
  guint calls;
  guint cancel_at;           /* 0: never */
} Analytic;

static void
analytic (float *out, const float *x, double sigma, double s2, const float *mu)
{
  for (int i = 0; i < N; i++)
    out[i] = (float) ((s2 * x[i] + sigma * sigma * mu[i]) / (s2 + sigma * sigma));
}

static gboolean
analytic_denoise (gpointer user_data, const float *x, double sigma, guint step, float *out, float *out_uncond,
                  GError **error)
{
  Analytic *a = user_data;
  float c[N], u[N];
  (void) step;
  if (a->cancel_at && ++a->calls >= a->cancel_at) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_CANCELLED, "cancelled");
    return FALSE;
  }
  analytic (c, x, sigma, a->s2, a->mu_c);
  analytic (u, x, sigma, a->s2, a->uncond_is_cond ? a->mu_c : a->mu_u);
  easel_sampling_cfg (out, c, u, a->cfg, N);
  if (out_uncond)
    memcpy (out_uncond, u, sizeof u);
  return TRUE;
}

static void
analytic_init (Analytic *a, double cfg, float *x0)
{
  memset (a, 0, sizeof *a);
  a->s2 = 0.25;
  a->cfg = cfg;
  for (int i = 0; i < N; i++) {
    a->mu_c[i] = (float) sin (0.7 * i);
    a->mu_u[i] = (float) cos (0.3 * i) * 0.5f;
    x0[i] = (float) (((i * 37) % 17) / 8.0 - 1.0);
  }
}

/* max |x - exact x(sigma_end)| after running `name` from sigmas[0] on the ODE of D_cfg */
static double
ode_error (const char *name, const float *sigmas, gsize n_sigmas, double sigma_end, double cfg)
{
  const EaselSamplerInfo *info = easel_sampler_find (name);
  g_autoptr(GError) error = NULL;
  Analytic a;
  float x[N], x0[N];
  EaselSampleCtx c = { N, NULL, analytic_denoise, NULL, NULL, &a };
  double worst = 0.0, s0 = sigmas[0];

  g_assert_nonnull (info);
  analytic_init (&a, cfg, x0);
  for (int i = 0; i < N; i++)
    x[i] = x0[i] * (float) s0;
  g_assert_true (easel_sampler_run (info, &c, NULL, x, sigmas, n_sigmas, &error));
  g_assert_no_error (error);
  for (int i = 0; i < N; i++) {
    double mu = a.mu_u[i] + cfg * (a.mu_c[i] - a.mu_u[i]);
    double exact = mu + (x0[i] * s0 - mu) * sqrt ((a.s2 + sigma_end * sigma_end) / (a.s2 + s0 * s0));
    worst = fmax (worst, fabs (x[i] - exact));
  }
  return worst;
}

/* steps + 1 log-uniform sigmas from 10 to 0.05. No final 0: the step to 0 (x = D, or a jump by an
 * extrapolation) has an error of order sigma_min^2 that does not shrink with more steps. */
static float *
log_sigmas (guint steps, gsize *n)
{
  float *s = g_new (float, steps + 1);
  for (guint i = 0; i <= steps; i++)
    s[i] = (float) exp (log (10.0) + (log (0.05) - log (10.0)) * i / steps);
  *n = steps + 1;
  return s;
}

/* --- the table --------------------------------------------------------------------------------- */

static void
test_table (void)
{
  static const char *const comfy_names[] = {
    "euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun", "heunpp2", "exp_heun_2_x0",
    "exp_heun_2_x0_sde", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive", "dpmpp_2s_ancestral",
    "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu", "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde", "dpmpp_3m_sde_gpu", "ddpm",
    "lcm", "ipndm", "ipndm_v", "deis", "cfgpp_ud10_ab", "res_multistep", "res_multistep_cfg_pp",
    "res_multistep_ancestral", "res_multistep_ancestral_cfg_pp", "gradient_estimation",
    "gradient_estimation_cfg_pp", "er_sde", "seeds_2", "seeds_3", "sa_solver", "sa_solver_pece", "ddim", "uni_pc",
    "uni_pc_bh2",
  };
  g_assert_cmpuint (easel_sampler_count (), ==, G_N_ELEMENTS (comfy_names));
  for (guint i = 0; i < G_N_ELEMENTS (comfy_names); i++) {
    const EaselSamplerInfo *s = easel_sampler_find (comfy_names[i]);
    g_assert_nonnull (s);
    g_assert_cmpstr (s->name, ==, comfy_names[i]);
    g_assert_true (easel_sampler_find (s->display_name) == s);   /* labels are unique */
    g_assert_nonnull (s->fn);
    /* the CFG++ family reads D_uncond */
    g_assert_cmpint (strstr (s->name, "cfg_pp") != NULL, ==, (s->flags & EASEL_SAMPLER_CFG_PP) != 0);
  }
  g_assert_null (easel_sampler_find ("no_such_sampler"));
  g_assert_null (easel_sampler_find (NULL));
  g_assert_cmpstr (easel_sampler_find ("DPM++ 2M")->name, ==, "dpmpp_2m");
  g_assert_cmpstr (easel_sampler_find ("Euler a")->name, ==, "euler_ancestral");
  g_assert_true (easel_sampler_find ("dpm_2")->flags & EASEL_SAMPLER_DISCARD_PENULTIMATE);
  g_assert_true (easel_sampler_find ("uni_pc_bh2")->flags & EASEL_SAMPLER_DISCARD_PENULTIMATE);
  g_assert_false (easel_sampler_find ("euler")->flags & EASEL_SAMPLER_DISCARD_PENULTIMATE);
  g_assert_true (easel_sampler_find ("dpmpp_2m_sde")->flags & EASEL_SAMPLER_SDE);
  g_assert_cmpfloat (easel_sampler_find ("euler_ancestral")->defaults.eta, ==, 1.0);
  g_assert_cmpfloat (easel_sampler_find ("res_multistep")->defaults.eta, ==, 0.0);
}

/* --- names -------------------------------------------------------------------------------------- */

/* Every spelling of every sampler and scheduler is unique case-insensitively, so a name finds one row */
static void
test_names_unique (void)
{
  for (guint i = 0; i < easel_sampler_count (); i++) {
    const EaselSamplerInfo *s = easel_sampler_at (i);
    g_autofree char *up = g_ascii_strup (s->name, -1);
    g_autofree char *down = g_ascii_strdown (s->display_name, -1);
    g_assert_true (easel_sampler_find (up) == s);
    g_assert_true (easel_sampler_find (down) == s);
    for (guint j = 0; j < i; j++) {
      const EaselSamplerInfo *o = easel_sampler_at (j);
      g_assert_cmpint (g_ascii_strcasecmp (s->name, o->display_name), !=, 0);
      g_assert_cmpint (g_ascii_strcasecmp (s->display_name, o->display_name), !=, 0);
    }
  }
  for (guint i = 0; i < EASEL_SCHEDULER_COUNT; i++) {
    EaselScheduler sch = EASEL_SCHEDULER_COUNT;
    g_autofree char *up = g_ascii_strup (easel_scheduler_name (i), -1);
    g_autofree char *down = g_ascii_strdown (easel_scheduler_display_name (i), -1);
    g_assert_true (easel_scheduler_from_name (up, &sch) && sch == i);
    g_assert_true (easel_scheduler_from_name (down, &sch) && sch == i);
  }
}

/* A1111's labels and combined names: the examples are A1111's own strings */
static void
test_names_a1111 (void)
{
  static const struct {
    const char *text, *sampler, *scheduler;
    gboolean named;
  } cases[] = {
    { "DPM++ 2M Karras", "dpmpp_2m", "karras", TRUE },
    { "dpm++ 2m karras", "dpmpp_2m", "karras", TRUE },
    { "DPM++ 2M", "dpmpp_2m", "karras", FALSE },                     /* A1111 1.9+: Automatic = Karras */
    { "DPM++ 2M SDE", "dpmpp_2m_sde", "exponential", FALSE },
    { "DPM++ 2M SDE Heun Karras", "dpmpp_2m_sde_heun", "karras", TRUE },
    { "DPM++ 2M SDE Exponential", "dpmpp_2m_sde", "exponential", TRUE },
    { "DPM++ 3M SDE Karras", "dpmpp_3m_sde", "karras", TRUE },
    { "DPM++ SDE Karras", "dpmpp_sde", "karras", TRUE },
    { "Euler a", "euler_ancestral", "normal", FALSE },                 /* Automatic = Uniform */
    { "Euler a Karras", "euler_ancestral", "karras", TRUE },
    { "Euler SGM Uniform", "euler", "sgm_uniform", TRUE },
    { "Euler SGMUniform", "euler", "sgm_uniform", TRUE },
    { "LMS Karras", "lms", "karras", TRUE },
    { "DPM2 a Karras", "dpm_2_ancestral", "karras", TRUE },
    { "Heun Uniform", "heun", "normal", TRUE },
    { "Euler KL Optimal", "euler", "kl_optimal", TRUE },
    { "DDIM DDIM", "ddim", "ddim_uniform", TRUE },
    { " dpmpp_2m_sde_gpu ", "dpmpp_2m_sde_gpu", "exponential", FALSE },
    { "euler_ancestral beta", "euler_ancestral", "beta", TRUE },
  };
  static const char *const bad[] = { "", "DPM++", "Karras", "DPM++ 2M Karras Karras", "DPM++ 2M  Karras", "eulerx",
                                     "Euler Automatic", "DPM++ 2M Kar" };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    const EaselSamplerInfo *info = NULL;
    EaselScheduler sch = EASEL_SCHEDULER_COUNT;
    gboolean named = !cases[i].named;
    g_autoptr(GError) error = NULL;
    g_assert_true (easel_sampling_parse_name (cases[i].text, &info, &sch, &named, &error));
    g_assert_no_error (error);
    g_assert_cmpstr (info->name, ==, cases[i].sampler);
    g_assert_cmpstr (easel_scheduler_name (sch), ==, cases[i].scheduler);
    g_assert_cmpint (named, ==, cases[i].named);
  }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    const EaselSamplerInfo *info = NULL;
    EaselScheduler sch;
    g_autoptr(GError) error = NULL;
    g_assert_false (easel_sampling_parse_name (bad[i], &info, &sch, NULL, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
    g_assert_nonnull (strstr (error->message, "dpmpp_2m (DPM++ 2M)"));   /* lists the choices */
    g_assert_nonnull (strstr (error->message, "uni_pc_bh2 (UniPC BH2)"));
  }
}

/* The legacy name of every (sampler, schedule) pair parses back to that pair */
static void
test_names_legacy (void)
{
  g_autofree char *a = easel_sampling_legacy_name (easel_sampler_find ("dpmpp_2m"), EASEL_SCHEDULER_KARRAS);
  g_autofree char *b = easel_sampling_legacy_name (easel_sampler_find ("euler"), EASEL_SCHEDULER_NORMAL);
  g_autofree char *c = easel_sampling_legacy_name (easel_sampler_find ("euler_ancestral"),
                                                   EASEL_SCHEDULER_SGM_UNIFORM);
  g_autofree char *d = easel_sampling_legacy_name (easel_sampler_find ("dpmpp_2m"), EASEL_SCHEDULER_NORMAL);

  g_assert_cmpstr (a, ==, "DPM++ 2M Karras");
  g_assert_cmpstr (b, ==, "Euler");
  g_assert_cmpstr (c, ==, "Euler a SGM Uniform");
  g_assert_cmpstr (d, ==, "DPM++ 2M Normal");
  for (guint i = 0; i < easel_sampler_count (); i++) {
    for (guint j = 0; j < EASEL_SCHEDULER_COUNT; j++) {
      g_autofree char *name = easel_sampling_legacy_name (easel_sampler_at (i), j);
      const EaselSamplerInfo *info = NULL;
      EaselScheduler sch = EASEL_SCHEDULER_COUNT;
      g_assert_true (easel_sampling_parse_name (name, &info, &sch, NULL, NULL));
      g_assert_true (info == easel_sampler_at (i));
      g_assert_cmpint (sch, ==, j);
    }
  }
}

/* --- request checks ----------------------------------------------------------------------------- */

static EaselSamplingRequest
good_request (void)
{
  EaselSamplingRequest r = { "euler", "karras", 20, 7.0, 1.0, EASEL_SAMPLING_DEFAULT, EASEL_SAMPLING_DEFAULT };
  return r;
}

/* One bad field of an otherwise good request: an error whose message contains want */
static void
expect_bad (const EaselSamplingRequest *r, const char *want)
{
  EaselSamplingChoice out;
  g_autoptr(GError) error = NULL;
  g_assert_false (easel_sampling_request_check (r, &out, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  if (strstr (error->message, want) == NULL)
    g_error ("'%s' does not contain '%s'", error->message, want);
}

static void
test_request_good (void)
{
  EaselSamplingRequest r = good_request ();
  EaselSamplingChoice out;
  g_autoptr(GError) error = NULL;

  g_assert_true (easel_sampling_request_check (&r, &out, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (out.sampler->name, ==, "euler");
  g_assert_cmpint (out.scheduler, ==, EASEL_SCHEDULER_KARRAS);
  g_assert_cmpuint (out.steps, ==, 20);
  g_assert_cmpfloat (out.options.s_noise, ==, 1.0);            /* euler's default */
  /* limits are inclusive; a legacy name carries its schedule; eta and s_noise override the defaults */
  r = (EaselSamplingRequest) { "DPM++ 2M SDE Karras", NULL, 1000, 0.0, 0.1, 0.5, 2.0 };
  g_assert_true (easel_sampling_request_check (&r, &out, &error));
  g_assert_cmpstr (out.sampler->name, ==, "dpmpp_2m_sde");
  g_assert_cmpint (out.scheduler, ==, EASEL_SCHEDULER_KARRAS);
  g_assert_cmpfloat (out.options.eta, ==, 0.5);
  g_assert_cmpfloat (out.options.s_noise, ==, 2.0);
  r = (EaselSamplingRequest) { "DPM++ 2M", "Automatic", 1, 100.0, 1.0, 0.0, 0.0 };
  g_assert_true (easel_sampling_request_check (&r, &out, &error));
  g_assert_cmpint (out.scheduler, ==, EASEL_SCHEDULER_KARRAS);
  r = (EaselSamplingRequest) { "DPM++ 2M Karras", "karras", 30, 5.0, 1.0, EASEL_SAMPLING_DEFAULT, 1.0 };
  g_assert_true (easel_sampling_request_check (&r, &out, &error));
  r = (EaselSamplingRequest) { "Euler", "sgm uniform", 30, 5.0, 1.0, EASEL_SAMPLING_DEFAULT, 1.0 };
  g_assert_true (easel_sampling_request_check (&r, &out, &error));
  g_assert_cmpint (out.scheduler, ==, EASEL_SCHEDULER_SGM_UNIFORM);
}

static void
test_request_bad (void)
{
  EaselSamplingRequest r;

#define BAD(field, value, want) G_STMT_START { r = good_request (); r.field = value; expect_bad (&r, want); } G_STMT_END
  BAD (sampler, "fancy", "unknown sampler 'fancy'");
  BAD (sampler, "fancy", "euler_ancestral (Euler a)");
  BAD (sampler, NULL, "unknown sampler ''");
  BAD (scheduler, "fancy", "unknown scheduler 'fancy'");
  BAD (scheduler, "fancy", "sgm_uniform (SGM Uniform)");
  BAD (sampler, "Euler Exponential", "names the schedule Exponential, but the scheduler asked for is Karras");
  BAD (steps, 0, "steps 0 is out of range: it must be 1 to 1000");
  BAD (steps, -5, "steps -5");
  BAD (steps, 1001, "steps 1001");
  BAD (steps, 10000, "steps 10000");
  BAD (cfg, -1.0, "cfg -1 is out of range");
  BAD (cfg, INFINITY, "cfg inf");
  BAD (cfg, NAN, "cfg nan");
  BAD (cfg, 100.5, "cfg 100.5");
  BAD (denoise, 0.0, "denoise 0 is out of range: it must be a number in (0, 1]");
  BAD (denoise, -0.5, "denoise -0.5");
  BAD (denoise, 1.01, "denoise 1.01");
  BAD (denoise, NAN, "denoise nan");
  BAD (eta, -0.1, "eta -0.1");
  BAD (eta, INFINITY, "eta inf");
  BAD (s_noise, -1.0, "s_noise -1");
  BAD (s_noise, 1e9, "s_noise 1e+09");
#undef BAD
  /* a partial denoise computes steps / denoise sigmas: 1000 / 0.05 is too many */
  r = good_request ();
  r.steps = 1000;
  r.denoise = 0.05;
  expect_bad (&r, "needs a schedule of 20000 steps; at most 10000");
  r.steps = 500;
  r.denoise = 0.05;   /* exactly 10000: fine, but dpm_2 computes one more */
  r.sampler = "dpm_2";
  expect_bad (&r, "needs a schedule of 10001 steps");
}

/* --- schedules ---------------------------------------------------------------------------------- */

static void
test_schedules (void)
{
  g_autoptr(EaselModelSampling) ms = easel_model_sampling_new_scaled_linear (EASEL_PREDICTION_EPSILON, 0.00085, 0.012, 1000);
  const float *sig = easel_model_sampling_sigmas (ms);

  /* SD's table: sigma_min 0.0291672, sigma_max 14.6146 (README section 4) */
  g_assert_cmpfloat_with_epsilon (easel_model_sampling_sigma_min (ms), 0.0291672, 1e-7);
  g_assert_cmpfloat_with_epsilon (easel_model_sampling_sigma_max (ms), 14.6146412, 1e-5);
  for (guint t = 0; t < 1000; t += 37) {
    g_assert_cmpuint (easel_model_sampling_timestep (ms, sig[t]), ==, t);
    g_assert_cmpfloat_with_epsilon (easel_model_sampling_sigma (ms, (float) t), sig[t], 1e-6 * sig[t]);
    g_assert_cmpfloat_with_epsilon (easel_model_sampling_sigma_to_t_kdiffusion (ms, sig[t], FALSE), t, 1e-2);
  }
  /* between two table entries k-diffusion's t is fractional, ComfyUI's the nearest integer */
  float mid = sqrtf (sig[500] * sig[501]);
  double kt = easel_model_sampling_sigma_to_t_kdiffusion (ms, mid, FALSE);
  g_assert_cmpfloat (kt, >, 500.3);
  g_assert_cmpfloat (kt, <, 500.7);
  g_assert_true (easel_model_sampling_is_max_denoise (ms, sig[999]));
  g_assert_false (easel_model_sampling_is_max_denoise (ms, 10.0));

  for (guint sch = 0; sch < EASEL_SCHEDULER_COUNT; sch++) {
    EaselScheduler back;
    g_assert_true (easel_scheduler_from_name (easel_scheduler_name (sch), &back));
    g_assert_cmpuint (back, ==, sch);
    for (guint steps = 2; steps <= 40; steps += 7) {
      g_autoptr(GError) error = NULL;
      gsize n = 0;
      g_autofree float *s = easel_schedule_sigmas (ms, sch, steps, &n, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (n, >=, 2);
      g_assert_cmpfloat (s[n - 1], ==, 0.0f);
      g_assert_cmpfloat (s[0], <=, sig[999] * 1.0001f);
      for (gsize i = 0; i + 1 < n; i++)
        g_assert_cmpfloat (s[i], >, s[i + 1]);     /* strictly decreasing */
      if (sch != EASEL_SCHEDULER_DDIM_UNIFORM && sch != EASEL_SCHEDULER_BETA)
        g_assert_cmpuint (n, ==, steps + 1);
    }
  }
  g_assert_false (easel_scheduler_from_name ("nope", &(EaselScheduler) { 0 }));
}

static void
test_ksampler_sigmas (void)
{
  g_autoptr(EaselModelSampling) ms = easel_model_sampling_new_scaled_linear (EASEL_PREDICTION_EPSILON, 0.00085, 0.012, 1000);
  g_autoptr(GError) error = NULL;
  gsize n_full = 0, n_drop = 0, n_d = 0, n_long = 0, n0 = 5;
  g_autofree float *full = easel_ksampler_sigmas (ms, EASEL_SCHEDULER_KARRAS, 10, 1.0, FALSE, &n_full, &error);
  g_autofree float *longer = easel_schedule_sigmas (ms, EASEL_SCHEDULER_KARRAS, 11, &n_long, &error);
  g_autofree float *drop = easel_ksampler_sigmas (ms, EASEL_SCHEDULER_KARRAS, 10, 1.0, TRUE, &n_drop, &error);
  g_autofree float *part = easel_ksampler_sigmas (ms, EASEL_SCHEDULER_NORMAL, 6, 0.5, FALSE, &n_d, &error);
  g_autofree float *whole = easel_schedule_sigmas (ms, EASEL_SCHEDULER_NORMAL, 12, &n_long, &error);
  g_autofree float *none = easel_ksampler_sigmas (ms, EASEL_SCHEDULER_NORMAL, 6, 0.0, FALSE, &n0, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (n_full, ==, 11);
  /* dpm_2 & co: 11 steps' sigmas without the penultimate one */
  g_assert_cmpuint (n_drop, ==, 11);
  for (gsize i = 0; i < 10; i++)
    g_assert_cmpfloat (drop[i], ==, longer[i]);
  g_assert_cmpfloat (drop[10], ==, 0.0f);
  /* denoise 0.5 of 6 steps: the last 7 of 12 steps' sigmas */
  g_assert_cmpuint (n_d, ==, 7);
  for (gsize i = 0; i < 7; i++)
    g_assert_cmpfloat (part[i], ==, whole[6 + i]);
  g_assert_cmpuint (n0, ==, 0);

  g_assert_null (easel_schedule_sigmas (ms, EASEL_SCHEDULER_KARRAS, 0, &n0, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_null (easel_ksampler_sigmas (ms, EASEL_SCHEDULER_KARRAS, 10, NAN, FALSE, &n0, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
}

static void
test_model_sampling (void)
{
  g_autoptr(GError) error = NULL;
  const double good[3] = { 0.9, 0.5, 0.1 }, bad[3] = { 0.9, 0.95, 0.1 }, zero[2] = { 0.5, 0.0 };
  g_autoptr(EaselModelSampling) v = easel_model_sampling_new_from_alphas_cumprod (EASEL_PREDICTION_V, good, 3, &error);
  float x[2] = { 1.0f, -2.0f }, out[2] = { 0.5f, 0.25f }, den[2];

  g_assert_no_error (error);
  g_assert_cmpfloat_with_epsilon (easel_model_sampling_sigmas (v)[1], 1.0, 1e-7);
  /* v-prediction at sigma 1: x / 2 - v / sqrt(2) */
  easel_model_sampling_denoised (v, 1.0, x, out, den, 2);
  g_assert_cmpfloat_with_epsilon (den[0], 0.5 - 0.5 / G_SQRT2, 1e-6);
  g_assert_cmpfloat_with_epsilon (den[1], -1.0 - 0.25 / G_SQRT2, 1e-6);
  g_assert_null (easel_model_sampling_new_from_alphas_cumprod (EASEL_PREDICTION_EPSILON, bad, 3, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_null (easel_model_sampling_new_from_alphas_cumprod (EASEL_PREDICTION_EPSILON, zero, 2, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_null (easel_model_sampling_new_from_alphas_cumprod (EASEL_PREDICTION_EPSILON, good, 1, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
}

/* --- samplers ----------------------------------------------------------------------------------- */

static void
test_bad_arguments (void)
{
  Analytic a;
  float x[N], x0[N];
  const float bad[3] = { 5.0f, NAN, 0.0f }, neg[2] = { 1.0f, -1.0f }, ok[3] = { 5.0f, 1.0f, 0.0f };
  EaselSampleCtx c = { N, NULL, analytic_denoise, NULL, NULL, &a };
  g_autoptr(GError) error = NULL;

  analytic_init (&a, 2.0, x0);
  memcpy (x, x0, sizeof x);
  g_assert_false (easel_sampler_run (easel_sampler_find ("euler"), &c, NULL, x, bad, 3, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_false (easel_sampler_run (easel_sampler_find ("euler"), &c, NULL, x, neg, 2, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  /* ancestral samplers need a noise source, sa_solver the model's schedule */
  g_assert_false (easel_sampler_run (easel_sampler_find ("euler_ancestral"), &c, NULL, x, ok, 3, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_false (easel_sampler_run (easel_sampler_find ("sa_solver"), &c, NULL, x, ok, 3, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_cmpmem (x, sizeof x, x0, sizeof x0);   /* nothing ran */
  /* one sigma: nothing to do */
  g_assert_true (easel_sampler_run (easel_sampler_find ("euler"), &c, NULL, x, ok, 1, &error));
  g_assert_cmpmem (x, sizeof x, x0, sizeof x0);
  /* a denoiser that fails stops every sampler with its error */
  for (guint i = 0; i < easel_sampler_count (); i++) {
    const EaselSamplerInfo *s = easel_sampler_at (i);
    g_autoptr(EaselModelSampling) ms = easel_model_sampling_new_scaled_linear (EASEL_PREDICTION_EPSILON, 0.00085, 0.012,
                                                                               1000);
    EaselSampleCtx cc = { N, ms, analytic_denoise, NULL, NULL, &a };
    a.calls = 0;
    a.cancel_at = 2;
    if (s->flags & EASEL_SAMPLER_NOISE)
      continue;
    g_assert_false (easel_sampler_run (s, &cc, NULL, x, ok, 3, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_CANCELLED);
    g_clear_error (&error);
  }
}

/* Deterministic samplers land on the exact solution, and the error shrinks at their order. */
static void
test_convergence (gconstpointer data)
{
  const char *name = data;
  const struct { const char *name; double order; } expected[] = {
    { "euler", 1 }, { "heun", 2 }, { "dpmpp_2m", 2 }, { "uni_pc", 3 }, { "uni_pc_bh2", 3 },
  };
  double want = 0, e[3];
  guint steps[3] = { 12, 24, 48 };

  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    if (strcmp (expected[i].name, name) == 0)
      want = expected[i].order;
  for (guint k = 0; k < 3; k++) {
    gsize n;
    g_autofree float *s = log_sigmas (steps[k], &n);
    e[k] = ode_error (name, s, n, s[n - 1], 3.0);
  }
  if (g_test_verbose ())
    g_printerr ("%s: errors %.3g %.3g %.3g, orders %.2f %.2f\n", name, e[0], e[1], e[2], log2 (e[0] / e[1]),
                log2 (e[1] / e[2]));
  g_assert_cmpfloat (e[2], <, e[1]);
  g_assert_cmpfloat (e[1], <, e[0]);
  /* the observed order between 12 and 24 steps, within 0.5 of the method's */
  g_assert_cmpfloat (log2 (e[0] / e[1]), >, want - 0.5);
  g_assert_cmpfloat (e[2], <, want >= 3 ? 1e-4 : 0.05);
}

/* cfgpp_ud10_ab: its first step is CFG++ Euler (no history yet); at cfg 1 (D_uncond = D_cond, as
 * ComfyUI passes it) it converges at first order as the steps shrink. */
static void
test_cfgpp_ud10_ab (void)
{
  const float two[2] = { 8.0f, 2.5f };
  float x1[N], x2[N], x0[N];
  Analytic a;
  EaselSampleCtx c = { N, NULL, analytic_denoise, NULL, NULL, &a };
  g_autoptr(GError) error = NULL;
  double e[3] = { 0, 0, 0 };

  analytic_init (&a, 3.0, x0);
  memcpy (x1, x0, sizeof x1);
  memcpy (x2, x0, sizeof x2);
  g_assert_true (easel_sampler_run (easel_sampler_find ("cfgpp_ud10_ab"), &c, NULL, x1, two, 2, &error));
  g_assert_true (easel_sampler_run (easel_sampler_find ("euler_cfg_pp"), &c, NULL, x2, two, 2, &error));
  g_assert_no_error (error);
  for (int i = 0; i < N; i++)
    g_assert_cmpfloat_with_epsilon (x1[i], x2[i], 1e-6);
  /* with history it departs from CFG++ Euler */
  {
    const float three[3] = { 8.0f, 2.5f, 0.7f };
    memcpy (x1, x0, sizeof x1);
    memcpy (x2, x0, sizeof x2);
    g_assert_true (easel_sampler_run (easel_sampler_find ("cfgpp_ud10_ab"), &c, NULL, x1, three, 3, &error));
    g_assert_true (easel_sampler_run (easel_sampler_find ("euler_cfg_pp"), &c, NULL, x2, three, 3, &error));
    g_assert_cmpfloat (fabs (x1[3] - x2[3]), >, 1e-4);
  }
  /* Its uncond-history term adds 0.1 * sigma_next * (d_i - d_{i-1}) * dt_i / dt_{i-1} each step, O(dt)
   * per step, so the method keeps a bias of order 0.1 of the ODE's solution that more steps do not
   * remove: it converges to its own limit. Check that (self-convergence at first order: the change
   * from N to 2N steps halves), and that the limit stays near the ODE's solution. */
  g_autofree float *prev = NULL;
  double exact_err = 0.0;
  for (guint k = 0; k < 4; k++) {
    guint steps = 12u << k;
    gsize n;
    g_autofree float *s = log_sigmas (steps, &n);
    float *x = g_new (float, N);
    analytic_init (&a, 1.0, x0);
    a.uncond_is_cond = TRUE;
    for (int i = 0; i < N; i++)
      x[i] = x0[i] * s[0];
    g_assert_true (easel_sampler_run (easel_sampler_find ("cfgpp_ud10_ab"), &c, NULL, x, s, n, &error));
    g_assert_no_error (error);
    if (prev) {
      double worst = 0;
      for (int i = 0; i < N; i++)
        worst = fmax (worst, fabs (x[i] - prev[i]));
      e[k - 1] = worst;
    }
    exact_err = 0.0;
    for (int i = 0; i < N; i++) {
      double exact = a.mu_c[i] + (x0[i] * s[0] - a.mu_c[i]) * sqrt ((a.s2 + (double) s[n - 1] * s[n - 1]) /
                                                                     (a.s2 + (double) s[0] * s[0]));
      exact_err = fmax (exact_err, fabs (x[i] - exact));
    }
    g_free (prev);
    prev = x;
  }
  if (g_test_verbose ())
    g_printerr ("cfgpp_ud10_ab: changes %.3g %.3g %.3g, error to the ODE %.3g\n", e[0], e[1], e[2], exact_err);
  g_assert_cmpfloat (log2 (e[0] / e[1]), >, 0.8);
  g_assert_cmpfloat (log2 (e[1] / e[2]), >, 0.8);
  g_assert_cmpfloat (exact_err, <, 0.1);
}

/* Noise calls go through the callback, in order, and s_noise 0 leaves an ancestral sampler's noise out. */
static guint noise_count;

static gboolean
counting_noise (gpointer user_data, double sigma, double sigma_next, float *out, GError **error)
{
  (void) user_data;
  (void) error;
  g_assert_cmpfloat (sigma, >, sigma_next);
  noise_count++;
  for (int i = 0; i < N; i++)
    out[i] = (float) sin (i * 1.3 + noise_count);
  return TRUE;
}

static void
test_noise (void)
{
  const float sig[5] = { 10.0f, 4.0f, 1.0f, 0.3f, 0.0f };
  Analytic a;
  float x[N], x0[N], y[N];
  EaselSampleCtx c = { N, NULL, analytic_denoise, counting_noise, NULL, &a };
  EaselSamplerOptions o;
  g_autoptr(GError) error = NULL;

  analytic_init (&a, 2.0, x0);
  memcpy (x, x0, sizeof x);
  noise_count = 0;
  g_assert_true (easel_sampler_run (easel_sampler_find ("euler_ancestral"), &c, NULL, x, sig, 5, &error));
  g_assert_cmpuint (noise_count, ==, 3);   /* none on the last step to 0 */
  easel_sampler_default_options (easel_sampler_find ("euler_ancestral"), &o);
  o.eta = 0.0;
  memcpy (x, x0, sizeof x);
  memcpy (y, x0, sizeof y);
  g_assert_true (easel_sampler_run (easel_sampler_find ("euler_ancestral"), &c, &o, x, sig, 5, &error));
  g_assert_true (easel_sampler_run (easel_sampler_find ("euler"), &c, NULL, y, sig, 5, &error));
  g_assert_cmpmem (x, sizeof x, y, sizeof y);   /* eta 0 is plain Euler */
}

/* --- noise sources ------------------------------------------------------------------------------ */

/* ComfyUI's default noise: generator seed + 1 on the CPU, checked against torch's randn for seed 42 */
static void
test_noise_torch (void)
{
  g_autofree char *path = test_data_path ("rng", "randn_cpu.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselSafetensors) st = NULL;
  g_autoptr(EaselNoiseSource) comfy = easel_noise_source_new_torch (EASEL_NOISE_COMFYUI, EASEL_RNG_CPU, 41, 256);
  g_autofree float *want = NULL;
  float got[256];

  g_assert_true (easel_noise_source_sample (comfy, 14.6, 10.0, got, &error));
  if (path == NULL)
    return;
  st = easel_safetensors_open (path, &error);
  g_assert_no_error (error);
  want = easel_st_tensor_to_f32 (easel_safetensors_find (st, "seed_42/randn_1x4x8x8"));
  g_assert_cmpmem (got, sizeof got, want, sizeof got);
}

/* A1111: the generator that drew the initial noise goes on; ComfyUI on CUDA: seed itself */
static void
test_noise_conventions (void)
{
  const EaselRngKind kinds[] = { EASEL_RNG_CPU, EASEL_RNG_CUDA };
  for (guint k = 0; k < G_N_ELEMENTS (kinds); k++) {
    g_autoptr(EaselRng) rng = easel_rng_new (kinds[k], 1234);
    g_autoptr(EaselNoiseSource) a1111 = easel_noise_source_new_torch (EASEL_NOISE_A1111, kinds[k], 1234, 100);
    g_autoptr(EaselNoiseSource) comfy = easel_noise_source_new_torch (EASEL_NOISE_COMFYUI, kinds[k], 1234, 100);
    float first[100], second[100], got[100];
    easel_rng_randn (rng, first, 100);
    easel_rng_randn (rng, second, 100);
    g_assert_true (easel_noise_source_sample (a1111, 1.0, 0.5, got, NULL));
    g_assert_cmpmem (got, sizeof got, second, sizeof second);
    g_assert_true (easel_noise_source_sample (comfy, 1.0, 0.5, got, NULL));
    if (kinds[k] == EASEL_RNG_CUDA)
      g_assert_cmpmem (got, sizeof got, first, sizeof first);
    else
      g_assert_true (memcmp (got, first, sizeof got) != 0);   /* seed + 1 */
  }
}

/* A recorded run replays bit for bit; a replay that runs out is an error */
static void
test_noise_replay (void)
{
  const float sig[6] = { 10.0f, 4.0f, 1.5f, 0.6f, 0.2f, 0.0f };
  const EaselSamplerInfo *info = easel_sampler_find ("euler_ancestral");
  g_autoptr(EaselNoiseSource) rec = easel_noise_source_new_torch (EASEL_NOISE_COMFYUI, EASEL_RNG_CPU, 7, N);
  g_autoptr(EaselNoiseSource) play = NULL;
  g_autoptr(EaselNoiseSource) short_play = NULL;
  g_autoptr(GError) error = NULL;
  Analytic a;
  float x[N], y[N], x0[N];
  EaselSampleCtx c = { N, NULL, analytic_denoise, easel_noise_source_func, NULL, &a, rec };
  const float *values;
  gsize n_calls;

  analytic_init (&a, 2.0, x0);
  memcpy (x, x0, sizeof x);
  memcpy (y, x0, sizeof y);
  easel_noise_source_set_recording (rec, TRUE);
  g_assert_true (easel_sampler_run (info, &c, NULL, x, sig, 6, &error));
  values = easel_noise_source_recorded (rec, &n_calls);
  g_assert_cmpuint (n_calls, ==, 4);   /* none on the step to 0 */
  play = easel_noise_source_new_replay (values, n_calls, N);
  c.noise_data = play;
  g_assert_true (easel_sampler_run (info, &c, NULL, y, sig, 6, &error));
  g_assert_cmpmem (x, sizeof x, y, sizeof y);

  short_play = easel_noise_source_new_replay (values, 2, N);
  c.noise_data = short_play;
  memcpy (y, x0, sizeof y);
  g_assert_false (easel_sampler_run (info, &c, NULL, y, sig, 6, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
}

#define TREE_N 65536

/* The unnormalized increment W(t1) - W(t0) of a tree (n values, float64) */
static void
tree_increment (EaselNoiseSource *tree, double t0, double t1, double *out)
{
  g_autofree float *z = g_new (float, TREE_N);
  g_assert_true (easel_noise_source_sample (tree, t0, t1, z, NULL));
  for (gsize k = 0; k < TREE_N; k++)
    out[k] = z[k] * sqrt (fabs (t1 - t0));
}

static double
mean_of (const double *v)
{
  double m = 0.0;
  for (gsize k = 0; k < TREE_N; k++)
    m += v[k];
  return m / TREE_N;
}

/* Sample mean and variance of v (n values) */
static void
mean_var (const float *v, gsize n, double *mean, double *var)
{
  double m = 0.0, s = 0.0;
  for (gsize k = 0; k < n; k++)
    m += v[k];
  m /= n;
  for (gsize k = 0; k < n; k++)
    s += (v[k] - m) * (v[k] - m);
  *mean = m;
  *var = s / (n - 1);
}

/* E[u v] / sqrt(E[u^2] E[v^2]) about 0 (both have mean 0) */
static double
correlation (const double *u, const double *v)
{
  double uv = 0.0, uu = 0.0, vv = 0.0;
  for (gsize k = 0; k < TREE_N; k++) {
    uv += u[k] * v[k];
    uu += u[k] * u[k];
    vv += v[k] * v[k];
  }
  return uv / sqrt (uu * vv);
}

/* The Brownian tree's law over 65536 independent elements: increments have mean 0 and variance
 * |t1 - t0| (the normalized noise variance 1), disjoint increments are uncorrelated, and
 * corr(W(b) - W(a), W(c) - W(a)) = sqrt((b - a) / (c - a)). Standard errors at this n: mean 0.004,
 * variance 0.0055 relative, correlation 0.004; the bounds are 6 of them. Points include leaf
 * neighbours (1e-5 apart) and a point between grid nodes. */
static void
test_brownian_law (void)
{
  const double lo = 0.0291672, hi = 14.6146412;
  const double pts[][2] = { { 14.6146412, 9.7 }, { 9.7, 3.14159 }, { 3.14159, 3.14158 }, { 0.5, 0.49999 },
                            { 0.1234567, 0.0291672 }, { 14.6146412, 0.0291672 }, { 1.0, 2.0 } };
  g_autoptr(EaselNoiseSource) tree = easel_noise_source_new_brownian (99, lo, hi, TREE_N, NULL);
  g_autofree double *u = g_new (double, TREE_N);
  g_autofree double *v = g_new (double, TREE_N);
  g_autofree float *z = g_new (float, TREE_N);

  g_assert_nonnull (tree);
  for (guint i = 0; i < G_N_ELEMENTS (pts); i++) {
    double m, var;
    g_assert_true (easel_noise_source_sample (tree, pts[i][0], pts[i][1], z, NULL));
    mean_var (z, TREE_N, &m, &var);
    g_assert_cmpfloat (fabs (m), <, 0.024);
    g_assert_cmpfloat (fabs (var - 1.0), <, 0.033);
  }
  tree_increment (tree, 5.0, 2.0, u);
  tree_increment (tree, 2.0, 0.7, v);
  g_assert_cmpfloat (fabs (correlation (u, v)), <, 0.024);
  g_assert_cmpfloat (fabs (mean_of (u)), <, 0.024 * sqrt (3.0));
  tree_increment (tree, 1.0, 1.3, u);
  tree_increment (tree, 1.0, 2.2, v);
  g_assert_cmpfloat (fabs (correlation (u, v) - sqrt (0.3 / 1.2)), <, 0.024);
}

/* Deterministic given the seed, the same interval twice gives the same noise, increments add up
 * (W is one value per point: [a, b] + [b, c] = [a, c] to float rounding of the normalized output) */
static void
test_brownian_consistency (void)
{
  const double a = 11.0, b = 4.2, c = 0.35, d = 0.05;
  g_autoptr(EaselNoiseSource) t1 = easel_noise_source_new_brownian (5, 0.03, 14.6, TREE_N, NULL);
  g_autoptr(EaselNoiseSource) t2 = easel_noise_source_new_brownian (5, 0.03, 14.6, TREE_N, NULL);
  g_autoptr(EaselNoiseSource) t3 = easel_noise_source_new_brownian (6, 0.03, 14.6, TREE_N, NULL);
  g_autofree double *ab = g_new (double, TREE_N);
  g_autofree double *bc = g_new (double, TREE_N);
  g_autofree double *ac = g_new (double, TREE_N);
  g_autofree double *again = g_new (double, TREE_N);
  g_autofree float *z1 = g_new (float, TREE_N);
  g_autofree float *z2 = g_new (float, TREE_N);
  double worst = 0.0;

  tree_increment (t1, a, b, ab);
  tree_increment (t1, b, c, bc);
  tree_increment (t1, c, d, again);   /* pushes [a, b]'s points out of the cache */
  tree_increment (t1, a, c, ac);
  for (gsize k = 0; k < TREE_N; k++)
    worst = MAX (worst, fabs (ab[k] + bc[k] - ac[k]));
  g_assert_cmpfloat (worst, <, 4e-6);   /* float32 outputs times sqrt(10.65): a few ulp of |W| <= ~20 */
  tree_increment (t1, a, b, again);
  g_assert_cmpmem (ab, TREE_N * sizeof (double), again, TREE_N * sizeof (double));

  /* another source with the same seed, queried in another order */
  g_assert_true (easel_noise_source_sample (t2, c, d, z2, NULL));
  g_assert_true (easel_noise_source_sample (t2, a, b, z2, NULL));
  g_assert_true (easel_noise_source_sample (t1, a, b, z1, NULL));
  g_assert_cmpmem (z1, TREE_N * sizeof (float), z2, TREE_N * sizeof (float));
  /* the reverse direction is the negated increment */
  g_assert_true (easel_noise_source_sample (t2, b, a, z2, NULL));
  for (gsize k = 0; k < TREE_N; k++)
    g_assert_cmpfloat (z2[k], ==, -z1[k]);
  g_assert_true (easel_noise_source_sample (t3, a, b, z2, NULL));
  g_assert_true (memcmp (z1, z2, TREE_N * sizeof (float)) != 0);
}

static void
test_brownian_bad (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselNoiseSource) tree = easel_noise_source_new_brownian (1, 0.1, 2.0, 8, &error);
  EaselNoiseSource *bad;
  float z[8];

  g_assert_no_error (error);
  g_assert_true (easel_noise_source_sample (tree, 2.0 + 5e-7, 0.1 - 5e-7, z, &error));   /* within the slack */
  g_assert_false (easel_noise_source_sample (tree, 2.1, 1.0, z, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_true (easel_noise_source_sample (tree, 1.0, 1.0, z, &error));   /* an empty step: no noise */
  for (int k = 0; k < 8; k++)
    g_assert_cmpfloat (z[k], ==, 0.0f);
  bad = easel_noise_source_new_brownian (1, 2.0, 0.1, 8, &error);
  g_assert_null (bad);
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  bad = easel_noise_source_new_brownian (1, 0.0, NAN, 8, &error);
  g_assert_null (bad);
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
}

/* ComfyUI's defaults: Brownian tree exactly for the eight dpmpp SDE samplers, torch noise (seed + 1
 * on the CPU) for the other noisy ones */
static void
test_noise_default (void)
{
  static const char *const brownian[] = { "dpmpp_sde", "dpmpp_sde_gpu", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu",
                                          "dpmpp_2m_sde_heun", "dpmpp_2m_sde_heun_gpu", "dpmpp_3m_sde",
                                          "dpmpp_3m_sde_gpu", NULL };
  const float sig[4] = { 14.6f, 3.0f, 0.5f, 0.0f };
  guint n_brownian = 0;

  for (guint i = 0; i < easel_sampler_count (); i++) {
    const EaselSamplerInfo *info = easel_sampler_at (i);
    gboolean want = g_strv_contains (brownian, info->name);
    g_autoptr(EaselNoiseSource) src = NULL;
    g_autoptr(EaselRng) rng = easel_rng_new (EASEL_RNG_CPU, 11);
    float z1[N], z2[N], r[N];
    if (!(info->flags & EASEL_SAMPLER_NOISE))
      continue;
    src = easel_noise_source_new_default (info, EASEL_NOISE_COMFYUI, EASEL_RNG_CPU, 10, N, sig, 4, NULL);
    g_assert_nonnull (src);
    g_assert_cmpint (!!(info->flags & EASEL_SAMPLER_BROWNIAN), ==, want);
    n_brownian += want;
    g_assert_true (easel_noise_source_sample (src, 3.0, 0.5, z1, NULL));
    g_assert_true (easel_noise_source_sample (src, 3.0, 0.5, z2, NULL));
    easel_rng_randn (rng, r, N);
    if (want) {
      g_assert_cmpmem (z1, sizeof z1, z2, sizeof z2);   /* a tree: same interval, same noise */
      g_assert_false (easel_noise_source_sample (src, 20.0, 3.0, z1, NULL));   /* outside [0.5, 14.6] */
    } else {
      g_assert_cmpmem (z1, sizeof z1, r, sizeof r);     /* torch, seed 10 + 1 */
    }
  }
  g_assert_cmpuint (n_brownian, ==, G_N_ELEMENTS (brownian) - 1);
}

#define DIST_N 16384

typedef struct {
  double s2, mu;
} Dist;

static gboolean
dist_denoise (gpointer user_data, const float *x, double sigma, guint step, float *out, float *out_uncond,
              GError **error)
{
  const Dist *d = user_data;
  (void) step;
  (void) out_uncond;
  (void) error;
  for (gsize k = 0; k < DIST_N; k++)
    out[k] = (float) ((d->s2 * x[k] + sigma * sigma * d->mu) / (d->s2 + sigma * sigma));
  return TRUE;
}

/* The SDE samplers with their default Brownian noise sample the data law: started from the exact
 * marginal N(mu, s2 + sigma0^2), 30 karras steps end near N(mu, s2). mu 0.5, s2 0.25 over 16384
 * elements: standard errors 0.004 (mean) and 0.003 (variance); the bounds leave room for the
 * solvers' discretization error (a wrong noise scale, or correlated increments, moves the
 * variance by far more). Run twice with the same seed: identical. */
static void
test_sde_brownian_samples (gconstpointer data)
{
  const EaselSamplerInfo *info = easel_sampler_find (data);
  g_autoptr(EaselModelSampling) ms = easel_model_sampling_new_scaled_linear (EASEL_PREDICTION_EPSILON, 0.00085, 0.012,
                                                                              1000);
  g_autoptr(GError) error = NULL;
  g_autofree float *sig = NULL;
  g_autofree float *x = g_new (float, DIST_N);
  g_autofree float *y = g_new (float, DIST_N);
  Dist d = { 0.25, 0.5 };
  gsize n_sig;
  double m, var;

  sig = easel_ksampler_sigmas (ms, EASEL_SCHEDULER_KARRAS, 30, 1.0, FALSE, &n_sig, &error);
  g_assert_no_error (error);
  for (int pass = 0; pass < 2; pass++) {
    g_autoptr(EaselRng) rng = easel_rng_new (EASEL_RNG_CPU, 3);
    g_autoptr(EaselNoiseSource) src = easel_noise_source_new_default (info, EASEL_NOISE_COMFYUI, EASEL_RNG_CPU, 3,
                                                                      DIST_N, sig, n_sig, &error);
    EaselSampleCtx c = { DIST_N, ms, dist_denoise, easel_noise_source_func, NULL, &d, src };
    float *out = pass == 0 ? x : y;
    g_assert_no_error (error);
    easel_rng_randn (rng, out, DIST_N);
    for (gsize k = 0; k < DIST_N; k++)
      out[k] = (float) (d.mu + out[k] * sqrt (d.s2 + (double) sig[0] * sig[0]));
    g_assert_true (easel_sampler_run (info, &c, NULL, out, sig, n_sig, &error));
    g_assert_no_error (error);
  }
  g_assert_cmpmem (x, DIST_N * sizeof (float), y, DIST_N * sizeof (float));
  mean_var (x, DIST_N, &m, &var);
  g_test_message ("%s: mean %.4f var %.4f", info->name, m, var);
  g_assert_cmpfloat (fabs (m - d.mu), <, 0.025);
  g_assert_cmpfloat (fabs (var - d.s2), <, 0.025);
}

/* One test per name: prefix/name runs fn (name) */
static void
add_per_name (const char *prefix, const char *const *names, guint n, GTestDataFunc fn)
{
  for (guint i = 0; i < n; i++) {
    g_autofree char *path = g_strdup_printf ("%s/%s", prefix, names[i]);
    g_test_add_data_func (path, names[i], fn);
  }
}

int
main (int argc, char **argv)
{
  static const char *const conv[] = { "euler", "heun", "dpmpp_2m", "uni_pc", "uni_pc_bh2" };
  static const char *const sde[] = { "dpmpp_sde", "dpmpp_2m_sde", "dpmpp_2m_sde_heun", "dpmpp_3m_sde" };
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sampling/table", test_table);
  g_test_add_func ("/sampling/names/unique", test_names_unique);
  g_test_add_func ("/sampling/names/a1111", test_names_a1111);
  g_test_add_func ("/sampling/names/legacy", test_names_legacy);
  g_test_add_func ("/sampling/request/good", test_request_good);
  g_test_add_func ("/sampling/request/bad", test_request_bad);
  g_test_add_func ("/sampling/schedules", test_schedules);
  g_test_add_func ("/sampling/ksampler-sigmas", test_ksampler_sigmas);
  g_test_add_func ("/sampling/model-sampling", test_model_sampling);
  g_test_add_func ("/sampling/bad-arguments", test_bad_arguments);
  add_per_name ("/sampling/convergence", conv, G_N_ELEMENTS (conv), test_convergence);
  g_test_add_func ("/sampling/cfgpp-ud10-ab", test_cfgpp_ud10_ab);
  g_test_add_func ("/sampling/noise", test_noise);
  g_test_add_func ("/sampling/noise/torch", test_noise_torch);
  g_test_add_func ("/sampling/noise/conventions", test_noise_conventions);
  g_test_add_func ("/sampling/noise/replay", test_noise_replay);
  g_test_add_func ("/sampling/noise/default", test_noise_default);
  g_test_add_func ("/sampling/brownian/law", test_brownian_law);
  g_test_add_func ("/sampling/brownian/consistency", test_brownian_consistency);
  g_test_add_func ("/sampling/brownian/bad", test_brownian_bad);
  add_per_name ("/sampling/brownian/samples", sde, G_N_ELEMENTS (sde), test_sde_brownian_samples);
  return g_test_run ();
}
