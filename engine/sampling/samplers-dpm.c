/* engine/sampling/samplers-dpm.c: the DPM-Solver family in log-sigma time t = -log(sigma) (the
 * half-logSNR lambda of an eps/v model, where alpha = 1 in the VE convention): dpm_fast and
 * dpm_adaptive (DPM-Solver-1/2/3 on eps), DPM-Solver++ 2S/2M/SDE/2M SDE/3M SDE and their CFG++
 * forms, SEEDS-2/3 (with exp_heun_2_x0), and ER-SDE. Each follows the function of the same name in
 * ComfyUI's comfy/k_diffusion/sampling.py (02159d81); dpm_fast and dpm_adaptive take sigma_min =
 * the last nonzero sigma and sigma_max = sigmas[0] as ComfyUI's ksampler wrapper does.
 *
 * Shapes: x and every buffer hold c->n floats; sigmas holds n_sigmas values. */
#include "samplers-private.h"

#include <math.h>
#include <string.h>

#include "engine/error.h"

#define N_STEPS ((guint) (n_sigmas - 1))

/* --- DPM-Solver (eps form) ---------------------------------------------------------------------- */

/* k-diffusion's DPMSolver works on float32 0-dim tensors; dpm_adaptive's step size comes from the
 * float32 difference of two solutions (x_low - x_high), so these helpers do their scalar and vector
 * arithmetic in float32, one rounding per torch operation, in torch's order. */

typedef struct {
  const EaselSampleCtx *c;
  float *eps, *eps_r1, *eps_r2, *u, *den;
  guint step;
} DpmSolver;

static float sigma_of_f (float t) { return expf (-t); }
static double sigma_of (double t) { return exp (-t); }

/* eps(x, t) = (x - D(x, sigma(t))) / sigma(t) -> out; den keeps D. */
static gboolean
dpm_eps (DpmSolver *s, const float *x, float t, float *out, GError **error)
{
  float sigma = sigma_of_f (t);
  if (!easel_sampling_denoise (s->c, x, sigma, s->step, s->den, NULL, error))
    return FALSE;
  for (gsize k = 0; k < s->c->n; k++)
    out[k] = (x[k] - s->den[k]) / sigma;
  return TRUE;
}

/* x_out = DPM-Solver-1 step from t to t_next; s->eps holds eps(x, t). */
static void
dpm_step_1 (DpmSolver *s, float *x_out, const float *x, float t, float t_next)
{
  float a = sigma_of_f (t_next) * expm1f (t_next - t);
  for (gsize k = 0; k < s->c->n; k++)
    x_out[k] = x[k] - a * s->eps[k];
}

/* u = x - sigma(t + r h) expm1(r h) eps, then s->eps_r1 = eps(u, t + r h). */
static gboolean
dpm_eval_r1 (DpmSolver *s, const float *x, float t, float h, float r1, GError **error)
{
  float s1 = t + r1 * h, a1 = sigma_of_f (s1) * expm1f (r1 * h);
  for (gsize k = 0; k < s->c->n; k++)
    s->u[k] = x[k] - a1 * s->eps[k];
  return dpm_eps (s, s->u, s1, s->eps_r1, error);
}

/* DPM-Solver-2 with intermediate point r1; have_r1: s->eps_r1 already holds eps at t + r1 h. */
static gboolean
dpm_step_2 (DpmSolver *s, float *x_out, const float *x, float t, float t_next, double r1, gboolean have_r1,
            GError **error)
{
  float h = t_next - t, r1f = (float) r1;
  float a = sigma_of_f (t_next) * expm1f (h), b = sigma_of_f (t_next) / (float) (2.0 * r1) * expm1f (h);
  if (!have_r1 && !dpm_eval_r1 (s, x, t, h, r1f, error))
    return FALSE;
  for (gsize k = 0; k < s->c->n; k++)
    x_out[k] = (x[k] - a * s->eps[k]) - b * (s->eps_r1[k] - s->eps[k]);
  return TRUE;
}

/* DPM-Solver-3 with r1 = 1/3, r2 = 2/3. */
static gboolean
dpm_step_3 (DpmSolver *s, float *x_out, const float *x, float t, float t_next, gboolean have_r1, GError **error)
{
  const double r1 = 1.0 / 3.0, r2 = 2.0 / 3.0;
  float h = t_next - t, r1f = (float) r1, r2f = (float) r2, s2 = t + r2f * h;
  float a2 = sigma_of_f (s2) * expm1f (r2f * h);
  float b2 = sigma_of_f (s2) * (float) (r2 / r1) * (expm1f (r2f * h) / (r2f * h) - 1.0f);
  float a = sigma_of_f (t_next) * expm1f (h), b = sigma_of_f (t_next) / r2f * (expm1f (h) / h - 1.0f);
  if (!have_r1 && !dpm_eval_r1 (s, x, t, h, r1f, error))
    return FALSE;
  for (gsize k = 0; k < s->c->n; k++)
    s->u[k] = (x[k] - a2 * s->eps[k]) - b2 * (s->eps_r1[k] - s->eps[k]);
  if (!dpm_eps (s, s->u, s2, s->eps_r2, error))
    return FALSE;
  for (gsize k = 0; k < s->c->n; k++)
    x_out[k] = (x[k] - a * s->eps[k]) - b * (s->eps_r2[k] - s->eps[k]);
  return TRUE;
}

/* ComfyUI's ksampler wrapper: sigma_min is the last sigma, or the one before when the last is 0. */
static double
last_nonzero_sigma (const float *sigmas, gsize n_sigmas)
{
  return sigmas[n_sigmas - 1] == 0.0f ? sigmas[n_sigmas - 2] : sigmas[n_sigmas - 1];
}

/* Ancestral split of a step from t to t_next in dpm_fast/dpm_adaptive: t_next_ and su. */
static void
dpm_ancestral (float t, float t_next, float t_end, double eta, float *t_next_, double *su)
{
  double sd, up;
  if (eta == 0.0) {
    *t_next_ = t_next;
    *su = 0.0;
    return;
  }
  easel_sampling_ancestral_step (sigma_of (t), sigma_of (t_next), eta, &sd, &up);
  *t_next_ = MIN (t_end, (float) -log (sd));
  *su = sqrt (MAX (0.0, sigma_of (t_next) * sigma_of (t_next) - sigma_of (*t_next_) * sigma_of (*t_next_)));
}

static gboolean
add_noise (const EaselSampleCtx *c, float *x, float *noise, double scale, double sigma, double sigma_next,
           GError **error)
{
  if (!easel_sampling_noise (c, sigma, sigma_next, noise, error))
    return FALSE;
  for (gsize k = 0; k < c->n; k++)
    x[k] += (float) (scale * noise[k]);
  return TRUE;
}

/* torch.linspace(start, end, steps)[i] in float32 */
static float
linspace_at (float start, float end, guint steps, guint i)
{
  float step = (end - start) / (float) (steps - 1);
  return i < steps / 2 ? start + step * (float) i : end - step * (float) (steps - i - 1);
}

gboolean
easel_sample_dpm_fast (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                       gsize n_sigmas, GError **error)
{
  float *b[6];
  g_autofree float *block = easel_sampling_buffers (c->n, 6, b);
  DpmSolver s = { c, b[0], b[1], b[2], b[3], b[4], 0 };
  float *noise = b[5];
  float sigma_min = (float) last_nonzero_sigma (sigmas, n_sigmas);
  float t_start = -logf (sigmas[0]), t_end = -logf (sigma_min);
  guint nfe = N_STEPS, m = nfe / 3 + 1;

  if (sigma_min <= 0.0)
    return TRUE;
  /* orders: [3] * (m - 2) + [2, 1] when nfe % 3 == 0, else [3] * (m - 1) + [nfe % 3]; they sum to nfe */
  for (guint i = 0; i < m; i++) {
    int order = nfe % 3 == 0 ? (i + 2 < m ? 3 : (i + 2 == m ? 2 : 1)) : (i + 1 < m ? 3 : (int) (nfe % 3));
    float t = linspace_at (t_start, t_end, m + 1, i), t_next = linspace_at (t_start, t_end, m + 1, i + 1), t_next_;
    double su;
    dpm_ancestral (t, t_next, t_end, o->eta, &t_next_, &su);
    s.step = i;
    if (!dpm_eps (&s, x, t, s.eps, error))
      return FALSE;
    easel_sampling_step (c, i, m, x, s.den);
    if (order == 1)
      dpm_step_1 (&s, x, x, t, t_next_);
    else if (order == 2 ? !dpm_step_2 (&s, x, x, t, t_next_, 0.5, FALSE, error)
                        : !dpm_step_3 (&s, x, x, t, t_next_, FALSE, error))
      return FALSE;
    if (!add_noise (c, x, noise, su * o->s_noise, sigma_of_f (t), sigma_of_f (t_next), error))
      return FALSE;
  }
  return TRUE;
}

/* PIDStepSizeController.propose_step; errs[0..2] start at 0 (= empty). */
static gboolean
pid_propose (const EaselSamplerOptions *o, double order, double *h, double errs[3], double error_norm)
{
  double b1 = (o->pcoeff + o->icoeff + o->dcoeff) / order, b2 = -(o->pcoeff + 2.0 * o->dcoeff) / order;
  double b3 = o->dcoeff / order, inv = 1.0 / (error_norm + 1e-8), factor;
  gboolean accept;
  if (errs[0] == 0.0)
    errs[1] = errs[2] = inv;
  errs[0] = inv;
  factor = pow (errs[0], b1) * pow (errs[1], b2) * pow (errs[2], b3);
  factor = 1.0 + atan (factor - 1.0);
  accept = factor >= o->accept_safety;
  if (accept) {
    errs[2] = errs[1];
    errs[1] = errs[0];
  }
  *h *= factor;
  return accept;
}

gboolean
easel_sample_dpm_adaptive (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                           gsize n_sigmas, GError **error)
{
  float *b[10];
  g_autofree float *block = easel_sampling_buffers (c->n, 10, b);
  DpmSolver s = { c, b[0], b[1], b[2], b[3], b[4], 0 };
  float *x_low = b[5], *x_high = b[6], *x_prev = b[7], *noise = b[8], *den_s = b[9];
  float sigma_min = (float) last_nonzero_sigma (sigmas, n_sigmas);
  float t_start = -logf (sigmas[0]), t_end = -logf (sigma_min), pos = t_start;
  float atol = (float) o->atol, rtol = (float) o->rtol;
  double errs[3] = { 0, 0, 0 };
  double pid_order = o->eta != 0.0 ? 1.5 : o->order, h = fabs (o->h_init);
  guint attempts = 0;

  if (sigma_min <= 0.0 || sigmas[0] <= 0.0 || !(t_end > t_start))
    return TRUE;
  if (o->order != 2 && o->order != 3) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "dpm_adaptive: order %d (must be 2 or 3)",
                 o->order);
    return FALSE;
  }
  memcpy (x_prev, x, c->n * sizeof (float));
  while (pos < t_end - (float) 1e-5) {
    float t = MIN (t_end, pos + (float) h), t_;
    double su, err2 = 0.0;
    dpm_ancestral (pos, t, t_end, o->eta, &t_, &su);
    if (attempts >= 100000) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "dpm_adaptive: no convergence");
      return FALSE;
    }
    s.step = attempts;
    if (!dpm_eps (&s, x, pos, s.eps, error))
      return FALSE;
    memcpy (den_s, s.den, c->n * sizeof (float));
    if (o->order == 2) {
      dpm_step_1 (&s, x_low, x, pos, t_);
      if (!dpm_step_2 (&s, x_high, x, pos, t_, 0.5, FALSE, error))
        return FALSE;
    } else if (!dpm_step_2 (&s, x_low, x, pos, t_, 1.0 / 3.0, FALSE, error) ||
               !dpm_step_3 (&s, x_high, x, pos, t_, TRUE, error)) {
      return FALSE;
    }
    for (gsize k = 0; k < c->n; k++) {
      float delta = MAX (atol, rtol * MAX (fabsf (x_low[k]), fabsf (x_prev[k])));
      double e = (x_low[k] - x_high[k]) / delta;
      err2 += e * e;
    }
    if (pid_propose (o, pid_order, &h, errs, (float) ((float) sqrt (err2) / sqrt ((double) c->n)))) {
      memcpy (x_prev, x_low, c->n * sizeof (float));
      memcpy (x, x_high, c->n * sizeof (float));
      if (!add_noise (c, x, noise, su * o->s_noise, sigma_of_f (pos), sigma_of_f (t), error))
        return FALSE;
      pos = t;
    }
    easel_sampling_step (c, attempts, N_STEPS, x, den_s);
    attempts++;
  }
  return TRUE;
}

/* --- DPM-Solver++ -------------------------------------------------------------------------------- */

static gboolean
dpmpp_2s_common (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                 gsize n_sigmas, gboolean cfg_pp, GError **error)
{
  float *b[5];
  g_autofree float *block = easel_sampling_buffers (c->n, 5, b);
  float *den = b[0], *unc = b[1], *x2 = b[2], *guidance = b[3], *noise = b[4];

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], s_next = sigmas[i + 1], down, up;
    const float *dir;
    if (!easel_sampling_denoise (c, x, s, i, den, cfg_pp ? unc : NULL, error))
      return FALSE;
    if (cfg_pp)
      for (gsize k = 0; k < c->n; k++)
        guidance[k] = den[k] - unc[k];
    dir = cfg_pp ? unc : den;
    easel_sampling_ancestral_step (s, s_next, o->eta, &down, &up);
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (down == 0.0) {
      for (gsize k = 0; k < c->n; k++)
        x[k] += (float) ((x[k] - dir[k]) / s * (down - s));
    } else {
      double t = -log (s), t_next = -log (down), h = t_next - t, sm = sigma_of (t + 0.5 * h);
      for (gsize k = 0; k < c->n; k++)
        x2[k] = (float) (sm / s * x[k] - expm1 (-0.5 * h) * dir[k]);
      /* CFG++ reads the unconditional prediction of this second call */
      if (!easel_sampling_denoise (c, x2, sm, i, den, cfg_pp ? unc : NULL, error))
        return FALSE;
      dir = cfg_pp ? unc : den;
      for (gsize k = 0; k < c->n; k++)
        x[k] = (float) (down / s * x[k] - expm1 (-h) * dir[k]);
    }
    if (s_next > 0.0 && !add_noise (c, x, noise, o->s_noise * up, s, s_next, error))
      return FALSE;
    if (cfg_pp)
      for (gsize k = 0; k < c->n; k++)
        x[k] += guidance[k];
  }
  return TRUE;
}

gboolean
easel_sample_dpmpp_2s_ancestral (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x,
                                 const float *sigmas, gsize n_sigmas, GError **error)
{
  return dpmpp_2s_common (c, o, x, sigmas, n_sigmas, FALSE, error);
}

gboolean
easel_sample_dpmpp_2s_ancestral_cfg_pp (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x,
                                        const float *sigmas, gsize n_sigmas, GError **error)
{
  return dpmpp_2s_common (c, o, x, sigmas, n_sigmas, TRUE, error);
}

gboolean
easel_sample_dpmpp_sde (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                        gsize n_sigmas, GError **error)
{
  float *b[3];
  g_autofree float *block = easel_sampling_buffers (c->n, 3, b);
  float *den = b[0], *den2 = b[1], *x2 = b[2];
  gboolean noisy = o->eta > 0.0 && o->s_noise > 0.0;
  double r = o->r, fac = 1.0 / (2.0 * r);

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], s_next = sigmas[i + 1];
    double ls, lt, h, ls1, s1, sd, su, h_;
    if (!easel_sampling_denoise (c, x, s, i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (s_next == 0.0) {
      memcpy (x, den, c->n * sizeof (float));
      continue;
    }
    ls = -log (s);
    lt = -log (s_next);
    h = lt - ls;
    ls1 = ls + r * h;
    s1 = sigma_of (ls1);
    /* step 1, to the intermediate point */
    easel_sampling_ancestral_step (sigma_of (ls), sigma_of (ls1), o->eta, &sd, &su);
    h_ = -log (sd) - ls;
    for (gsize k = 0; k < c->n; k++)
      x2[k] = (float) (exp (-h_) * x[k] - expm1 (-h_) * den[k]);
    if (noisy && !add_noise (c, x2, den2, o->s_noise * su, s, s1, error))
      return FALSE;
    if (!easel_sampling_denoise (c, x2, s1, i, den2, NULL, error))
      return FALSE;
    /* step 2 */
    easel_sampling_ancestral_step (sigma_of (ls), sigma_of (lt), o->eta, &sd, &su);
    h_ = -log (sd) - ls;
    for (gsize k = 0; k < c->n; k++) {
      double dd = (1.0 - fac) * den[k] + fac * den2[k];
      x[k] = (float) (exp (-h_) * x[k] - expm1 (-h_) * dd);
    }
    if (noisy && !add_noise (c, x, x2, o->s_noise * su, s, s_next, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
easel_sample_dpmpp_2m (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                       gsize n_sigmas, GError **error)
{
  float *b[2];
  g_autofree float *block = easel_sampling_buffers (c->n, 2, b);
  float *den = b[0], *old = b[1];
  (void) o;

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], s_next = sigmas[i + 1];
    if (!easel_sampling_denoise (c, x, s, i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (s_next == 0.0) {
      memcpy (x, den, c->n * sizeof (float));
    } else {
      double h = log (s) - log (s_next), e = expm1 (-h);
      double w = 0.0;
      if (i > 0)
        w = 1.0 / (2.0 * ((log (sigmas[i - 1]) - log (s)) / h));
      for (gsize k = 0; k < c->n; k++) {
        double dd = (1.0 + w) * den[k] - w * old[k];
        x[k] = (float) (s_next / s * x[k] - e * dd);
      }
    }
    memcpy (old, den, c->n * sizeof (float));
  }
  return TRUE;
}

gboolean
easel_sample_dpmpp_2m_cfg_pp (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                              gsize n_sigmas, GError **error)
{
  float *b[3];
  g_autofree float *block = easel_sampling_buffers (c->n, 3, b);
  float *den = b[0], *unc = b[1], *old_unc = b[2];
  (void) o;

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], s_next = sigmas[i + 1];
    if (!easel_sampling_denoise (c, x, s, i, den, unc, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (s_next == 0.0) {
      memcpy (x, den, c->n * sizeof (float));
    } else {
      double h = log (s) - log (s_next), eh = exp (-h), em = expm1 (-h), w = 0.0;
      if (i > 0)
        w = 1.0 / (2.0 * ((log (sigmas[i - 1]) - log (s)) / h));
      for (gsize k = 0; k < c->n; k++) {
        double mix = -eh * unc[k] - (i > 0 ? em * w * (den[k] - old_unc[k]) : 0.0);
        x[k] = (float) (den[k] + mix + eh * x[k]);
      }
    }
    memcpy (old_unc, unc, c->n * sizeof (float));
  }
  return TRUE;
}

/* DPM-Solver++(2M) SDE (solver_type 0 midpoint, 1 heun) and (3M) SDE share the step layout. */
static gboolean
dpmpp_multistep_sde (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                     gsize n_sigmas, int max_order, GError **error)
{
  float *b[4];
  g_autofree float *block = easel_sampling_buffers (c->n, 4, b);
  float *den = b[0], *den1 = b[1], *den2 = b[2], *noise = b[3];
  double h = NAN, h_1 = NAN, h_2 = NAN;
  gboolean noisy = o->eta > 0.0 && o->s_noise > 0.0;

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], s_next = sigmas[i + 1];
    float *tmp;
    if (!easel_sampling_denoise (c, x, s, i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (s_next == 0.0) {
      memcpy (x, den, c->n * sizeof (float));
    } else {
      double h_eta, decay, a, phi_2, phi_3, r0, r1, r;
      h = log (s) - log (s_next);
      h_eta = h * (o->eta + 1.0);
      decay = s_next / s * exp (-h * o->eta);
      a = -expm1 (-h_eta);
      phi_2 = expm1 (-h_eta) / h_eta + 1.0;
      phi_3 = phi_2 / h_eta - 0.5;
      r0 = h_1 / h;
      r1 = h_2 / h;
      r = h_1 / h;
      for (gsize k = 0; k < c->n; k++) {
        double v = decay * x[k] + a * den[k];
        if (max_order == 3 && !isnan (h_2)) {
          double d1_0 = (den[k] - den1[k]) / r0, d1_1 = (den1[k] - den2[k]) / r1;
          double d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1), d2 = (d1_0 - d1_1) / (r0 + r1);
          v += phi_2 * d1 - phi_3 * d2;
        } else if (max_order == 3 && !isnan (h_1)) {
          v += phi_2 * (den[k] - den1[k]) / r;
        } else if (max_order == 2 && !isnan (h_1)) {
          if (o->solver_type == 1)
            v += (a / -h_eta + 1.0) * (1.0 / r) * (den[k] - den1[k]);
          else
            v += 0.5 * a * (1.0 / r) * (den[k] - den1[k]);
        }
        x[k] = (float) v;
      }
      if (noisy && !add_noise (c, x, noise, s_next * sqrt (-expm1 (-2.0 * h * o->eta)) * o->s_noise, s, s_next,
                               error))
        return FALSE;
    }
    tmp = den2;
    den2 = den1;
    den1 = den;
    den = tmp;
    h_2 = h_1;
    h_1 = h;
  }
  return TRUE;
}

gboolean
easel_sample_dpmpp_2m_sde (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                           gsize n_sigmas, GError **error)
{
  return dpmpp_multistep_sde (c, o, x, sigmas, n_sigmas, 2, error);
}

gboolean
easel_sample_dpmpp_3m_sde (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                           gsize n_sigmas, GError **error)
{
  return dpmpp_multistep_sde (c, o, x, sigmas, n_sigmas, 3, error);
}

/* --- SEEDS and ER-SDE ---------------------------------------------------------------------------- */

/* h * phi_2(h) = (e^h - 1 - h) / h */
static double ei_h_phi_2 (double h) { return (expm1 (h) - h) / h; }

/* The SDE noise of a SEEDS stage: sde = sde * exp(seg) + sqrt(-expm1(2 seg)) * noise(from, to),
 * then x += sde * sigma_to * s_noise. first: sde starts from scratch with factor sqrt(-expm1(-2 r h eta)). */
static gboolean
seeds_noise (const EaselSampleCtx *c, float *x, float *sde, float *noise, gboolean first, double seg, double first_f,
             double sigma_from, double sigma_to, double s_noise, GError **error)
{
  double carry = first ? 0.0 : exp (seg), fresh = first ? first_f : sqrt (-expm1 (2.0 * seg));
  if (!easel_sampling_noise (c, sigma_from, sigma_to, noise, error))
    return FALSE;
  for (gsize k = 0; k < c->n; k++) {
    sde[k] = (float) ((first ? 0.0 : sde[k] * carry) + fresh * noise[k]);
    x[k] += (float) (sde[k] * sigma_to * s_noise);
  }
  return TRUE;
}

/* SEEDS-2 (solver_type 1 = phi_1, 2 = phi_2); r = 1, phi_2 is exp_heun_2_x0(_sde). */
gboolean
easel_sample_seeds_2 (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                      gsize n_sigmas, GError **error)
{
  float *b[5];
  g_autofree float *block = easel_sampling_buffers (c->n, 5, b);
  float *den = b[0], *den2 = b[1], *x2 = b[2], *sde = b[3], *noise = b[4];
  gboolean inject = o->eta > 0.0 && o->s_noise > 0.0;
  double r = o->r, eta = o->eta;

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], s_next = sigmas[i + 1], ls, lt, h, h_eta, s1;
    if (!easel_sampling_denoise (c, x, s, i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (s_next == 0.0) {
      memcpy (x, den, c->n * sizeof (float));
      continue;
    }
    ls = -log (s);
    lt = -log (s_next);
    h = lt - ls;
    h_eta = h * (eta + 1.0);
    s1 = sigma_of (ls + r * (lt - ls));
    for (gsize k = 0; k < c->n; k++)
      x2[k] = (float) (s1 / s * exp (-r * h * eta) * x[k] - expm1 (-r * h_eta) * den[k]);
    if (inject && !seeds_noise (c, x2, sde, noise, TRUE, 0, sqrt (-expm1 (-2.0 * r * h * eta)), s, s1, o->s_noise,
                                error))
      return FALSE;
    if (!easel_sampling_denoise (c, x2, s1, i, den2, NULL, error))
      return FALSE;
    if (o->solver_type == 2) {
      double b2 = ei_h_phi_2 (-h_eta) / r, b1 = expm1 (-h_eta) - b2;
      for (gsize k = 0; k < c->n; k++)
        x[k] = (float) (s_next / s * exp (-h * eta) * x[k] - (b1 * den[k] + b2 * den2[k]));
    } else {
      double fac = 1.0 / (2.0 * r);
      for (gsize k = 0; k < c->n; k++) {
        double dd = den[k] + fac * (den2[k] - den[k]);
        x[k] = (float) (s_next / s * exp (-h * eta) * x[k] - expm1 (-h_eta) * dd);
      }
    }
    if (inject && !seeds_noise (c, x, sde, noise, FALSE, (r - 1.0) * h * eta, 0, s1, s_next, o->s_noise, error))
      return FALSE;
  }
  return TRUE;
}

gboolean
easel_sample_seeds_3 (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                      gsize n_sigmas, GError **error)
{
  float *b[5];
  g_autofree float *block = easel_sampling_buffers (c->n, 5, b);
  float *den = b[0], *den2 = b[1], *xs = b[2], *sde = b[3], *noise = b[4];
  gboolean inject = o->eta > 0.0 && o->s_noise > 0.0;
  double r1 = o->r, r2 = o->r2, eta = o->eta;

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], s_next = sigmas[i + 1], ls, lt, h, h_eta, s1, s2, a32, a31, b3, b1;
    if (!easel_sampling_denoise (c, x, s, i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (s_next == 0.0) {
      memcpy (x, den, c->n * sizeof (float));
      continue;
    }
    ls = -log (s);
    lt = -log (s_next);
    h = lt - ls;
    h_eta = h * (eta + 1.0);
    s1 = sigma_of (ls + r1 * (lt - ls));
    s2 = sigma_of (ls + r2 * (lt - ls));
    /* stage 1 */
    for (gsize k = 0; k < c->n; k++)
      xs[k] = (float) (s1 / s * exp (-r1 * h * eta) * x[k] - expm1 (-r1 * h_eta) * den[k]);
    if (inject && !seeds_noise (c, xs, sde, noise, TRUE, 0, sqrt (-expm1 (-2.0 * r1 * h * eta)), s, s1, o->s_noise,
                                error))
      return FALSE;
    if (!easel_sampling_denoise (c, xs, s1, i, den2, NULL, error))
      return FALSE;
    /* stage 2 */
    a32 = r2 / r1 * ei_h_phi_2 (-r2 * h_eta);
    a31 = expm1 (-r2 * h_eta) - a32;
    for (gsize k = 0; k < c->n; k++)
      xs[k] = (float) (s2 / s * exp (-r2 * h * eta) * x[k] - (a31 * den[k] + a32 * den2[k]));
    if (inject && !seeds_noise (c, xs, sde, noise, FALSE, (r1 - r2) * h * eta, 0, s1, s2, o->s_noise, error))
      return FALSE;
    if (!easel_sampling_denoise (c, xs, s2, i, den2, NULL, error))
      return FALSE;
    /* stage 3 */
    b3 = ei_h_phi_2 (-h_eta) / r2;
    b1 = expm1 (-h_eta) - b3;
    for (gsize k = 0; k < c->n; k++)
      x[k] = (float) (s_next / s * exp (-h * eta) * x[k] - (b1 * den[k] + b3 * den2[k]));
    if (inject && !seeds_noise (c, x, sde, noise, FALSE, (r2 - 1.0) * h * eta, 0, s2, s_next, o->s_noise, error))
      return FALSE;
  }
  return TRUE;
}

/* ER-SDE noise scaler x (e^(x^0.3) + 10). */
static double er_scaler (double v) { return v * (exp (pow (v, 0.3)) + 10.0); }

/* Extended reverse-time SDE solver (VP ER-SDE-Solver-3, max_stage = o->order); lambda = sigma here. */
gboolean
easel_sample_er_sde (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                     gsize n_sigmas, GError **error)
{
  const int n_points = 200;
  float *b[4];
  g_autofree float *block = easel_sampling_buffers (c->n, 4, b);
  float *den = b[0], *old_den = b[1], *old_dd = b[2], *noise = b[3];

  for (guint i = 0; i < N_STEPS; i++) {
    double ls = sigmas[i], lt = sigmas[i + 1], r, dt, step, S = 0.0, S_u = 0.0, ns_t, noise_amp = 0.0;
    int stage = MIN (o->order, (int) i + 1);
    if (!easel_sampling_denoise (c, x, ls, i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (lt == 0.0) {
      memcpy (x, den, c->n * sizeof (float));
      memcpy (old_den, den, c->n * sizeof (float));
      continue;
    }
    ns_t = er_scaler (lt);
    r = ns_t / er_scaler (ls);
    dt = lt - ls;
    step = -dt / n_points;
    if (stage >= 2) {
      for (int j = 0; j < n_points; j++) {
        double pos = lt + j * step, sc = er_scaler (pos);
        S += 1.0 / sc;
        S_u += (pos - ls) / sc;
      }
      S *= step;
      S_u *= step;
    }
    if (o->s_noise > 0.0) {
      double v = lt * lt - ls * ls * r * r;
      noise_amp = v > 0.0 ? sqrt (v) * o->s_noise : 0.0;
      if (!easel_sampling_noise (c, ls, lt, noise, error))
        return FALSE;
    }
    for (gsize k = 0; k < c->n; k++) {
      double v = r * x[k] + (1.0 - r) * den[k];
      if (stage >= 2) {
        double dd = (den[k] - old_den[k]) / (ls - sigmas[i - 1]);
        v += (dt + S * ns_t) * dd;
        if (stage >= 3) {
          double du = (dd - old_dd[k]) / ((ls - sigmas[i - 2]) / 2.0);
          v += (dt * dt / 2.0 + S_u * ns_t) * du;
        }
        old_dd[k] = (float) dd;
      }
      if (o->s_noise > 0.0)
        v += noise[k] * noise_amp;
      x[k] = (float) v;
    }
    memcpy (old_den, den, c->n * sizeof (float));
  }
  return TRUE;
}
