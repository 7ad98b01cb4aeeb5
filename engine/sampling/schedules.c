/* engine/sampling/schedules.c: discrete-time model schedules (ComfyUI ModelSamplingDiscrete) and
 * ComfyUI's schedulers (comfy/samplers.py), with k-diffusion's sigma_to_t for A1111's wrapper.
 *
 * ComfyUI computes the tables in float64 and keeps them as float32; the schedulers then work on
 * float32 tensors (torch.linspace, pow, exp, tan in float32). Where that matters at the 1e-7 level
 * the code below does the same float32 operations in the same order. */
#include "schedules.h"

#include <math.h>
#include <string.h>

#include "engine/error.h"

#define MAX_STEPS 10000

struct _EaselModelSampling {
  EaselPrediction prediction;
  guint n;
  double *alphas_cumprod;   /* (n) float64 */
  float *sigmas;            /* (n) ascending */
  float *log_sigmas;        /* (n) */
  float *kd_sigmas;         /* (n) A1111: float32 arithmetic from float32 alphas_cumprod */
  float *kd_log_sigmas;     /* (n) */
};

/* torch.linspace on the CPU: the first half counts up from start, the second down from end. */
static double
linspace_f64 (double start, double end, gint64 steps, gint64 i)
{
  double step;
  if (steps == 1)
    return start;
  step = (end - start) / (double) (steps - 1);
  return i < steps / 2 ? start + step * (double) i : end - step * (double) (steps - i - 1);
}

static float
linspace_f32 (float start, float end, gint64 steps, gint64 i)
{
  float step;
  if (steps == 1)
    return start;
  step = (end - start) / (float) (steps - 1);
  return i < steps / 2 ? start + step * (float) i : end - step * (float) (steps - i - 1);
}

static EaselModelSampling *
model_sampling_from_ac (EaselPrediction prediction, double *ac, guint n)
{
  EaselModelSampling *ms = g_new0 (EaselModelSampling, 1);
  ms->prediction = prediction;
  ms->n = n;
  ms->alphas_cumprod = ac;
  ms->sigmas = g_new (float, n);
  ms->log_sigmas = g_new (float, n);
  ms->kd_sigmas = g_new (float, n);
  ms->kd_log_sigmas = g_new (float, n);
  for (guint i = 0; i < n; i++) {
    double s = sqrt ((1.0 - ac[i]) / ac[i]);
    float acf = (float) ac[i];
    ms->sigmas[i] = (float) s;
    ms->log_sigmas[i] = (float) log (s);
    ms->kd_sigmas[i] = sqrtf ((1.0f - acf) / acf);
    ms->kd_log_sigmas[i] = logf (ms->kd_sigmas[i]);
  }
  return ms;
}

EaselModelSampling *
easel_model_sampling_new_scaled_linear (EaselPrediction prediction, double linear_start, double linear_end,
                                        guint n_timesteps)
{
  double *ac;
  double prod = 1.0;

  g_return_val_if_fail (n_timesteps >= 2 && linear_start > 0 && linear_end > 0, NULL);
  ac = g_new (double, n_timesteps);
  for (guint i = 0; i < n_timesteps; i++) {
    double b = linspace_f64 (sqrt (linear_start), sqrt (linear_end), n_timesteps, i);
    prod *= 1.0 - b * b;
    ac[i] = prod;
  }
  return model_sampling_from_ac (prediction, ac, n_timesteps);
}

EaselModelSampling *
easel_model_sampling_new_from_alphas_cumprod (EaselPrediction prediction, const double *alphas_cumprod, gsize n,
                                              GError **error)
{
  if (n < 2 || n > 100000) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "alphas_cumprod: %" G_GSIZE_FORMAT " timesteps (need 2 to 100000)", n);
    return NULL;
  }
  for (gsize i = 0; i < n; i++) {
    double a = alphas_cumprod[i];
    if (!(a > 0.0 && a < 1.0) || (i > 0 && !(a < alphas_cumprod[i - 1]))) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                   "alphas_cumprod[%" G_GSIZE_FORMAT "] = %g: values must lie in (0, 1) and decrease", i, a);
      return NULL;
    }
  }
  return model_sampling_from_ac (prediction, g_memdup2 (alphas_cumprod, n * sizeof (double)), (guint) n);
}

void
easel_model_sampling_free (EaselModelSampling *ms)
{
  if (ms == NULL)
    return;
  g_free (ms->alphas_cumprod);
  g_free (ms->sigmas);
  g_free (ms->log_sigmas);
  g_free (ms->kd_sigmas);
  g_free (ms->kd_log_sigmas);
  g_free (ms);
}

EaselPrediction easel_model_sampling_prediction (const EaselModelSampling *ms) { return ms->prediction; }
guint easel_model_sampling_n_timesteps (const EaselModelSampling *ms) { return ms->n; }
const float *easel_model_sampling_sigmas (const EaselModelSampling *ms) { return ms->sigmas; }
const float *easel_model_sampling_log_sigmas (const EaselModelSampling *ms) { return ms->log_sigmas; }
const double *easel_model_sampling_alphas_cumprod (const EaselModelSampling *ms) { return ms->alphas_cumprod; }
const float *easel_model_sampling_kdiffusion_sigmas (const EaselModelSampling *ms) { return ms->kd_sigmas; }
float easel_model_sampling_sigma_min (const EaselModelSampling *ms) { return ms->sigmas[0]; }
float easel_model_sampling_sigma_max (const EaselModelSampling *ms) { return ms->sigmas[ms->n - 1]; }

float
easel_model_sampling_sigma (const EaselModelSampling *ms, float t)
{
  float w, log_sigma;
  guint lo, hi;

  if (isnan (t))
    return NAN;
  t = CLAMP (t, 0.0f, (float) (ms->n - 1));
  lo = (guint) floorf (t);
  hi = (guint) ceilf (t);
  w = t - truncf (t);
  log_sigma = (1.0f - w) * ms->log_sigmas[lo] + w * ms->log_sigmas[hi];
  return expf (log_sigma);
}

static guint
nearest_log_sigma (const float *log_sigmas, guint n, float sigma)
{
  float ls = logf (sigma);
  guint best = 0;
  float best_d = INFINITY;

  for (guint i = 0; i < n; i++) {
    float d = fabsf (ls - log_sigmas[i]);
    if (d < best_d) {
      best_d = d;
      best = i;
    }
  }
  return best;
}

guint
easel_model_sampling_timestep (const EaselModelSampling *ms, float sigma)
{
  return nearest_log_sigma (ms->log_sigmas, ms->n, sigma);
}

float
easel_model_sampling_sigma_to_t_kdiffusion (const EaselModelSampling *ms, float sigma, gboolean quantize)
{
  const float *ls = ms->kd_log_sigmas;
  float log_sigma = logf (sigma);
  guint low = 0;
  float w;

  if (quantize)
    return (float) nearest_log_sigma (ls, ms->n, sigma);
  /* dists.ge(0).cumsum().argmax(): the last index whose log-sigma is <= log_sigma (0 if none) */
  for (guint i = 0; i < ms->n; i++)
    if (log_sigma - ls[i] >= 0.0f)
      low = i;
  low = MIN (low, ms->n - 2);
  w = (ls[low] - log_sigma) / (ls[low] - ls[low + 1]);
  w = CLAMP (w, 0.0f, 1.0f);
  return (1.0f - w) * (float) low + w * (float) (low + 1);
}

double
easel_model_sampling_percent_to_sigma (const EaselModelSampling *ms, double percent)
{
  if (percent <= 0.0)
    return 999999999.9;
  if (percent >= 1.0)
    return 0.0;
  return easel_model_sampling_sigma (ms, (float) ((1.0 - percent) * 999.0));
}

gboolean
easel_model_sampling_is_max_denoise (const EaselModelSampling *ms, double sigma0)
{
  double max_sigma = easel_model_sampling_sigma_max (ms);
  /* math.isclose(max_sigma, sigma, rel_tol=1e-5) or sigma > max_sigma */
  return fabs (max_sigma - sigma0) <= 1e-5 * MAX (fabs (max_sigma), fabs (sigma0)) || sigma0 > max_sigma;
}

void
easel_model_sampling_noise_scaling (const EaselModelSampling *ms, double sigma0, gboolean max_denoise,
                                    const float *noise, const float *latent, float *x_init, gsize n)
{
  (void) ms;
  if (max_denoise) {
    float scale = sqrtf (1.0f + (float) sigma0 * (float) sigma0);
    for (gsize i = 0; i < n; i++)
      x_init[i] = noise[i] * scale + (latent ? latent[i] : 0.0f);
  } else {
    for (gsize i = 0; i < n; i++)
      x_init[i] = noise[i] * (float) sigma0 + (latent ? latent[i] : 0.0f);
  }
}

double
easel_model_sampling_c_in (const EaselModelSampling *ms, double sigma)
{
  (void) ms;
  return 1.0 / sqrt (sigma * sigma + 1.0);
}

void
easel_model_sampling_denoised (const EaselModelSampling *ms, double sigma, const float *x, const float *model_out,
                               float *denoised, gsize n)
{
  if (ms->prediction == EASEL_PREDICTION_V) {
    double a = 1.0 / (sigma * sigma + 1.0), b = sigma / sqrt (sigma * sigma + 1.0);
    for (gsize i = 0; i < n; i++)
      denoised[i] = (float) (x[i] * a - model_out[i] * b);
  } else {
    for (gsize i = 0; i < n; i++)
      denoised[i] = (float) (x[i] - model_out[i] * sigma);
  }
}

/* --- schedulers --------------------------------------------------------------------------------- */

/* ComfyUI's SCHEDULER_NAMES with A1111's "Schedule type" labels and names (modules/sd_schedulers.py,
 * A1111 1.10). A1111 spells ddim_uniform "DDIM" (same arithmetic); its "Uniform" (k-diffusion
 * get_sigmas, the old default of most samplers) is ComfyUI's normal; A1111 has no linear_quadratic,
 * so that label is Easel's. The aliases are A1111's internal names and old spellings. */
static const struct {
  const char *name, *display, *aliases[3];
} scheduler_names[] = {
  [EASEL_SCHEDULER_SIMPLE] = { "simple", "Simple", { NULL } },
  [EASEL_SCHEDULER_SGM_UNIFORM] = { "sgm_uniform", "SGM Uniform", { "SGMUniform", NULL } },
  [EASEL_SCHEDULER_KARRAS] = { "karras", "Karras", { NULL } },
  [EASEL_SCHEDULER_EXPONENTIAL] = { "exponential", "Exponential", { NULL } },
  [EASEL_SCHEDULER_DDIM_UNIFORM] = { "ddim_uniform", "DDIM", { "DDIM Uniform", NULL } },
  [EASEL_SCHEDULER_BETA] = { "beta", "Beta", { NULL } },
  [EASEL_SCHEDULER_NORMAL] = { "normal", "Normal", { "Uniform", NULL } },
  [EASEL_SCHEDULER_LINEAR_QUADRATIC] = { "linear_quadratic", "Linear Quadratic", { NULL } },
  [EASEL_SCHEDULER_KL_OPTIMAL] = { "kl_optimal", "KL Optimal", { NULL } },
};
G_STATIC_ASSERT (G_N_ELEMENTS (scheduler_names) == EASEL_SCHEDULER_COUNT);

const char *
easel_scheduler_name (EaselScheduler scheduler)
{
  return (guint) scheduler < EASEL_SCHEDULER_COUNT ? scheduler_names[scheduler].name : NULL;
}

const char *
easel_scheduler_display_name (EaselScheduler scheduler)
{
  return (guint) scheduler < EASEL_SCHEDULER_COUNT ? scheduler_names[scheduler].display : NULL;
}

gboolean
easel_scheduler_from_name_len (const char *name, gsize len, EaselScheduler *out)
{
  for (guint i = 0; name && i < EASEL_SCHEDULER_COUNT; i++) {
    const char *spellings[5] = { scheduler_names[i].name, scheduler_names[i].display, scheduler_names[i].aliases[0],
                                 scheduler_names[i].aliases[1], NULL };
    for (guint j = 0; spellings[j]; j++) {
      if (strlen (spellings[j]) == len && g_ascii_strncasecmp (name, spellings[j], len) == 0) {
        *out = i;
        return TRUE;
      }
    }
  }
  return FALSE;
}

gboolean
easel_scheduler_from_name (const char *name, EaselScheduler *out)
{
  return name != NULL && easel_scheduler_from_name_len (name, strlen (name), out);
}

/* Regularized incomplete beta I_x(a, b) by its continued fraction (modified Lentz). */
static double
beta_cf (double a, double b, double x)
{
  const double tiny = 1e-300;
  double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0), h;

  d = 1.0 / (fabs (d) < tiny ? tiny : d);
  h = d;
  for (int m = 1; m <= 1000; m++) {
    double m2 = 2.0 * m, aa, del;
    aa = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));
    d = 1.0 + aa * d;
    d = 1.0 / (fabs (d) < tiny ? tiny : d);
    c = 1.0 + aa / c;
    c = fabs (c) < tiny ? tiny : c;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));
    d = 1.0 + aa * d;
    d = 1.0 / (fabs (d) < tiny ? tiny : d);
    c = 1.0 + aa / c;
    c = fabs (c) < tiny ? tiny : c;
    del = d * c;
    h *= del;
    if (fabs (del - 1.0) < 1e-16)
      break;
  }
  return h;
}

static double
beta_inc (double a, double b, double x)
{
  double front;
  if (x <= 0.0)
    return 0.0;
  if (x >= 1.0)
    return 1.0;
  front = exp (lgamma (a + b) - lgamma (a) - lgamma (b) + a * log (x) + b * log1p (-x));
  if (x < (a + 1.0) / (a + b + 2.0))
    return front * beta_cf (a, b, x) / a;
  return 1.0 - front * beta_cf (b, a, 1.0 - x) / b;
}

/* scipy.stats.beta.ppf(p, a, b) by bisection to double precision (the CDF is monotone). */
static double
beta_ppf (double p, double a, double b)
{
  double lo = 0.0, hi = 1.0;
  if (p <= 0.0)
    return 0.0;
  if (p >= 1.0)
    return 1.0;
  if (a == b && p == 0.5)
    return 0.5;
  for (int i = 0; i < 200 && hi - lo > 0.0; i++) {
    double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi)
      break;
    if (beta_inc (a, b, mid) < p)
      lo = mid;
    else
      hi = mid;
  }
  return 0.5 * (lo + hi);
}

/* sigmas: at least steps + 2 slots. Returns the count written. */
static gsize
schedule_into (const EaselModelSampling *ms, EaselScheduler scheduler, guint steps, float *out)
{
  const float *sig = ms->sigmas;
  const guint n = ms->n;
  const double smin = ms->sigmas[0], smax = ms->sigmas[n - 1];
  gsize k = 0;

  switch (scheduler) {
  case EASEL_SCHEDULER_SIMPLE: {
    double ss = (double) n / steps;
    for (guint x = 0; x < steps; x++)
      out[k++] = sig[n - 1 - (guint) (x * ss)];
    out[k++] = 0.0f;
    break;
  }
  case EASEL_SCHEDULER_NORMAL:
  case EASEL_SCHEDULER_SGM_UNIFORM: {
    float start = (float) easel_model_sampling_timestep (ms, (float) smax);
    float end = (float) easel_model_sampling_timestep (ms, (float) smin);
    gboolean sgm = scheduler == EASEL_SCHEDULER_SGM_UNIFORM, append_zero = TRUE;
    guint m = steps;
    if (sgm) {
      m = steps + 1;
    } else if (fabsf (easel_model_sampling_sigma (ms, end)) <= 1e-5f) {
      m = steps + 1;
      append_zero = FALSE;
    }
    for (guint i = 0; i < (sgm ? steps : m); i++)
      out[k++] = easel_model_sampling_sigma (ms, linspace_f32 (start, end, m, i));
    if (append_zero)
      out[k++] = 0.0f;
    break;
  }
  case EASEL_SCHEDULER_KARRAS: {
    const double rho = 7.0;
    float min_inv = (float) pow (smin, 1.0 / rho), max_inv = (float) pow (smax, 1.0 / rho);
    float diff = (float) (pow (smin, 1.0 / rho) - pow (smax, 1.0 / rho));
    (void) min_inv;
    for (guint i = 0; i < steps; i++) {
      float ramp = linspace_f32 (0.0f, 1.0f, steps, i);
      out[k++] = powf (max_inv + ramp * diff, (float) rho);
    }
    out[k++] = 0.0f;
    break;
  }
  case EASEL_SCHEDULER_EXPONENTIAL:
    for (guint i = 0; i < steps; i++)
      out[k++] = expf (linspace_f32 ((float) log (smax), (float) log (smin), steps, i));
    out[k++] = 0.0f;
    break;
  case EASEL_SCHEDULER_DDIM_UNIFORM: {
    guint x = 1, ss;
    gboolean first_zero = fabs (sig[1]) <= 1e-5;
    guint st = first_zero ? steps + 1 : steps;
    float *tmp = out;
    ss = MAX (n / st, 1);
    if (!first_zero)
      tmp[k++] = 0.0f;
    for (; x < n; x += ss)
      tmp[k++] = sig[x];
    for (gsize i = 0; i < k / 2; i++) {   /* reversed */
      float t = tmp[i];
      tmp[i] = tmp[k - 1 - i];
      tmp[k - 1 - i] = t;
    }
    break;
  }
  case EASEL_SCHEDULER_BETA: {
    double last_t = -1.0;
    for (guint i = 0; i < steps; i++) {
      double p = 1.0 - linspace_f64 (0.0, 1.0, (gint64) steps + 1, i);   /* endpoint=False */
      double t = nearbyint (beta_ppf (p, 0.6, 0.6) * (n - 1));
      if (t != last_t)
        out[k++] = sig[(guint) CLAMP (t, 0.0, n - 1.0)];
      last_t = t;
    }
    out[k++] = 0.0f;
    break;
  }
  case EASEL_SCHEDULER_LINEAR_QUADRATIC: {
    const double threshold = 0.025;
    float sigma_max = (float) smax;
    if (steps == 1) {
      out[k++] = 1.0f * sigma_max;
      out[k++] = 0.0f;
      break;
    }
    guint linear_steps = steps / 2, quadratic_steps = steps - linear_steps;
    double step_diff = linear_steps - threshold * steps;
    double quad_coef = step_diff / (linear_steps * (double) quadratic_steps * quadratic_steps);
    double lin_coef = threshold / linear_steps - 2.0 * step_diff / ((double) quadratic_steps * quadratic_steps);
    double cst = quad_coef * ((double) linear_steps * linear_steps);
    for (guint i = 0; i < linear_steps; i++)
      out[k++] = (float) (1.0 - i * threshold / linear_steps) * sigma_max;
    for (guint i = linear_steps; i < steps; i++)
      out[k++] = (float) (1.0 - (quad_coef * ((double) i * i) + lin_coef * i + cst)) * sigma_max;
    out[k++] = (float) (1.0 - 1.0) * sigma_max;
    break;
  }
  case EASEL_SCHEDULER_KL_OPTIMAL: {
    float a_min = (float) atan (smin), a_max = (float) atan (smax);
    for (guint i = 0; i < steps; i++) {
      float adj = (float) i / (float) (steps - 1);   /* 0/0 = NaN for one step, as in ComfyUI */
      out[k++] = tanf (adj * a_min + (1.0f - adj) * a_max);
    }
    out[k++] = 0.0f;
    break;
  }
  case EASEL_SCHEDULER_COUNT:
  default:
    g_assert_not_reached ();
  }
  return k;
}

float *
easel_schedule_sigmas (const EaselModelSampling *ms, EaselScheduler scheduler, guint steps, gsize *n_out,
                       GError **error)
{
  float *out;
  g_return_val_if_fail (ms != NULL && n_out != NULL, NULL);
  if ((guint) scheduler >= EASEL_SCHEDULER_COUNT) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "unknown scheduler %d", (int) scheduler);
    return NULL;
  }
  if (steps < 1 || steps > MAX_STEPS) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s: %u steps (need 1 to %d)",
                 easel_scheduler_name (scheduler), steps, MAX_STEPS);
    return NULL;
  }
  /* ddim_uniform gives at most n + 1 values, the others at most steps + 2 */
  out = g_new (float, MAX (steps, ms->n) + 2);
  *n_out = schedule_into (ms, scheduler, steps, out);
  return out;
}

float *
easel_ksampler_sigmas (const EaselModelSampling *ms, EaselScheduler scheduler, guint steps, double denoise,
                       gboolean discard_penultimate, gsize *n_out, GError **error)
{
  g_autofree float *all = NULL;
  guint total = steps;
  gsize n_all, keep;

  g_return_val_if_fail (n_out != NULL, NULL);
  if (isnan (denoise) || (denoise > 0.0 && denoise <= 0.9999 && steps / denoise > MAX_STEPS)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "denoise %g with %u steps is out of range",
                 denoise, steps);
    return NULL;
  }
  if (denoise <= 0.0) {
    *n_out = 0;
    return g_new (float, 1);
  }
  if (denoise <= 0.9999)
    total = (guint) (steps / denoise);
  all = easel_schedule_sigmas (ms, scheduler, discard_penultimate ? total + 1 : total, &n_all, error);
  if (all == NULL)
    return NULL;
  if (discard_penultimate && n_all >= 2) {
    all[n_all - 2] = all[n_all - 1];
    n_all--;
  }
  keep = denoise <= 0.9999 ? MIN (n_all, (gsize) steps + 1) : n_all;
  *n_out = keep;
  return g_memdup2 (all + (n_all - keep), MAX (keep, 1) * sizeof (float));
}
