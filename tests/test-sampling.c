/* tests/test-sampling.c: unit tests of engine/sampling: the sampler table, schedules and their
 * argument checks, and the samplers the reference data has no runs of (uni_pc, uni_pc_bh2,
 * cfgpp_ud10_ab), tested by convergence to the exact solution of the analytic denoiser
 * D(x, sigma) = (s2 x + sigma^2 mu) / (s2 + sigma^2) (README section 4 of the test data): its
 * probability-flow ODE dx/dsigma = (x - D) / sigma has x(sigma) = mu + (x0 - mu) sqrt((s2 + sigma^2) /
 * (s2 + sigma0^2)). The golden parity of every other sampler is `easel-cli check-golden --kind sampler`. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "engine/error.h"
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

/* --- schedules ---------------------------------------------------------------------------------- */

static void
test_schedules (void)
{
  g_autoptr(EaselModelSampling) ms = easel_model_sampling_new_scaled_linear (EASEL_PREDICTION_EPS, 0.00085, 0.012, 1000);
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
  g_autoptr(EaselModelSampling) ms = easel_model_sampling_new_scaled_linear (EASEL_PREDICTION_EPS, 0.00085, 0.012, 1000);
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
  g_assert_null (easel_model_sampling_new_from_alphas_cumprod (EASEL_PREDICTION_EPS, bad, 3, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_null (easel_model_sampling_new_from_alphas_cumprod (EASEL_PREDICTION_EPS, zero, 2, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_null (easel_model_sampling_new_from_alphas_cumprod (EASEL_PREDICTION_EPS, good, 1, &error));
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
    g_autoptr(EaselModelSampling) ms = easel_model_sampling_new_scaled_linear (EASEL_PREDICTION_EPS, 0.00085, 0.012,
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

int
main (int argc, char **argv)
{
  static const char *const conv[] = { "euler", "heun", "dpmpp_2m", "uni_pc", "uni_pc_bh2" };
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sampling/table", test_table);
  g_test_add_func ("/sampling/schedules", test_schedules);
  g_test_add_func ("/sampling/ksampler-sigmas", test_ksampler_sigmas);
  g_test_add_func ("/sampling/model-sampling", test_model_sampling);
  g_test_add_func ("/sampling/bad-arguments", test_bad_arguments);
  for (guint i = 0; i < G_N_ELEMENTS (conv); i++) {
    g_autofree char *path = g_strdup_printf ("/sampling/convergence/%s", conv[i]);
    g_test_add_data_func (path, conv[i], test_convergence);
  }
  g_test_add_func ("/sampling/cfgpp-ud10-ab", test_cfgpp_ud10_ab);
  g_test_add_func ("/sampling/noise", test_noise);
  return g_test_run ();
}
