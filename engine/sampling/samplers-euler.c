/* engine/sampling/samplers-euler.c: Karras-style samplers in sigma time (euler, euler_ancestral and
 * its CFG++ form, heun, heunpp2, dpm_2, dpm_2_ancestral), the DDPM/LCM step samplers, gradient
 * estimation and CFG++ UD10 AB. Each follows the function of the same name in ComfyUI's
 * comfy/k_diffusion/sampling.py (02159d81) for eps/v models (alpha = 1 in the VE convention).
 *
 * Shapes: x, denoised and every buffer hold c->n floats; sigmas holds n_sigmas values; step i goes
 * from sigmas[i] to sigmas[i + 1]. */
#include "samplers-private.h"

#include <math.h>
#include <string.h>

#define N_STEPS ((guint) (n_sigmas - 1))

/* Karras churn (s_churn > 0): raises sigma to sigma_hat, adding noise from the noise callback. */
static gboolean
churn (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, float *tmp, double sigma, gsize n_sigmas,
       double *sigma_hat, GError **error)
{
  double gamma = 0.0;
  if (o->s_churn > 0.0 && o->s_tmin <= sigma && sigma <= o->s_tmax)
    gamma = MIN (o->s_churn / (double) (n_sigmas - 1), G_SQRT2 - 1.0);
  *sigma_hat = sigma * (gamma + 1.0);
  if (gamma > 0.0) {
    double amount = sqrt (*sigma_hat * *sigma_hat - sigma * sigma) * o->s_noise;
    if (!easel_sampling_noise (c, sigma, *sigma_hat, tmp, error))
      return FALSE;
    for (gsize k = 0; k < c->n; k++)
      x[k] += (float) (tmp[k] * amount);
  }
  return TRUE;
}

gboolean
easel_sample_euler (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                    gsize n_sigmas, GError **error)
{
  float *b[2];
  g_autofree float *block = easel_sampling_buffers (c->n, 2, b);
  float *den = b[0], *tmp = b[1];

  for (guint i = 0; i < N_STEPS; i++) {
    double sigma_hat, dt;
    if (!churn (c, o, x, tmp, sigmas[i], n_sigmas, &sigma_hat, error) ||
        !easel_sampling_denoise (c, x, sigma_hat, i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    dt = sigmas[i + 1] - sigma_hat;
    for (gsize k = 0; k < c->n; k++)
      x[k] += (float) ((x[k] - den[k]) / sigma_hat * dt);
  }
  return TRUE;
}

gboolean
easel_sample_euler_ancestral (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                              gsize n_sigmas, GError **error)
{
  float *b[2];
  g_autofree float *block = easel_sampling_buffers (c->n, 2, b);
  float *den = b[0], *noise = b[1];

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], down, up;
    if (!easel_sampling_denoise (c, x, s, i, den, NULL, error))
      return FALSE;
    easel_sampling_ancestral_step (s, sigmas[i + 1], o->eta, &down, &up);
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (down == 0.0) {
      memcpy (x, den, c->n * sizeof (float));
      continue;
    }
    if (!easel_sampling_noise (c, s, sigmas[i + 1], noise, error))
      return FALSE;
    for (gsize k = 0; k < c->n; k++)
      x[k] += (float) ((x[k] - den[k]) / s * (down - s) + noise[k] * o->s_noise * up);
  }
  return TRUE;
}

/* Also euler_cfg_pp (eta 0, s_noise 0): steps along the unconditional prediction's direction. */
gboolean
easel_sample_euler_ancestral_cfg_pp (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x,
                                     const float *sigmas, gsize n_sigmas, GError **error)
{
  float *b[3];
  g_autofree float *block = easel_sampling_buffers (c->n, 3, b);
  float *den = b[0], *unc = b[1], *noise = b[2];

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], s_next = sigmas[i + 1], down, up;
    gboolean add_noise = o->eta > 0.0 && o->s_noise > 0.0;
    if (!easel_sampling_denoise (c, x, s, i, den, unc, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (s_next == 0.0) {
      memcpy (x, den, c->n * sizeof (float));
      continue;
    }
    easel_sampling_ancestral_step (s, s_next, o->eta, &down, &up);
    if (add_noise && !easel_sampling_noise (c, s, s_next, noise, error))
      return FALSE;
    for (gsize k = 0; k < c->n; k++) {
      double d = (x[k] - unc[k]) / s;
      x[k] = (float) (den[k] + down * d + (add_noise ? noise[k] * o->s_noise * up : 0.0));
    }
  }
  return TRUE;
}

gboolean
easel_sample_heun (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                   gsize n_sigmas, GError **error)
{
  float *b[3];
  g_autofree float *block = easel_sampling_buffers (c->n, 3, b);
  float *den = b[0], *d = b[1], *x2 = b[2];

  for (guint i = 0; i < N_STEPS; i++) {
    double sigma_hat, s_next = sigmas[i + 1], dt;
    if (!churn (c, o, x, x2, sigmas[i], n_sigmas, &sigma_hat, error) ||
        !easel_sampling_denoise (c, x, sigma_hat, i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    dt = s_next - sigma_hat;
    for (gsize k = 0; k < c->n; k++) {
      d[k] = (float) ((x[k] - den[k]) / sigma_hat);
      x2[k] = (float) (x[k] + d[k] * dt);
    }
    if (s_next == 0.0) {
      memcpy (x, x2, c->n * sizeof (float));
      continue;
    }
    if (!easel_sampling_denoise (c, x2, s_next, i, den, NULL, error))
      return FALSE;
    for (gsize k = 0; k < c->n; k++) {
      double d2 = (x2[k] - den[k]) / s_next;
      x[k] += (float) ((d[k] + d2) / 2.0 * dt);
    }
  }
  return TRUE;
}

/* Heun++ (Carzit's sd-webui-samplers-scheduler): Heun with a third evaluation at sigmas[i + 2]. */
gboolean
easel_sample_heunpp2 (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                      gsize n_sigmas, GError **error)
{
  float *b[5];
  g_autofree float *block = easel_sampling_buffers (c->n, 5, b);
  float *den = b[0], *d = b[1], *x2 = b[2], *d2 = b[3], *x3 = b[4];
  const double s_end = sigmas[n_sigmas - 1], s0 = sigmas[0];

  for (guint i = 0; i < N_STEPS; i++) {
    double sigma_hat, s1 = sigmas[i + 1], dt;
    if (!churn (c, o, x, x2, sigmas[i], n_sigmas, &sigma_hat, error) ||
        !easel_sampling_denoise (c, x, sigma_hat, i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    dt = s1 - sigma_hat;
    for (gsize k = 0; k < c->n; k++) {
      d[k] = (float) ((x[k] - den[k]) / sigma_hat);
      x2[k] = (float) (x[k] + d[k] * dt);
    }
    if (s1 == s_end) {                               /* Euler */
      memcpy (x, x2, c->n * sizeof (float));
    } else if (sigmas[i + 2] == s_end) {            /* Heun, weighted by sigma */
      double w2 = s1 / (2.0 * s0), w1 = 1.0 - w2;
      if (!easel_sampling_denoise (c, x2, s1, i, den, NULL, error))
        return FALSE;
      for (gsize k = 0; k < c->n; k++)
        x[k] += (float) ((d[k] * w1 + (x2[k] - den[k]) / s1 * w2) * dt);
    } else {                                        /* Heun++ */
      double s2 = sigmas[i + 2], w2 = s1 / (3.0 * s0), w3 = s2 / (3.0 * s0), w1 = 1.0 - w2 - w3;
      if (!easel_sampling_denoise (c, x2, s1, i, den, NULL, error))
        return FALSE;
      for (gsize k = 0; k < c->n; k++) {
        d2[k] = (float) ((x2[k] - den[k]) / s1);
        x3[k] = (float) (x2[k] + d2[k] * (s2 - s1));
      }
      if (!easel_sampling_denoise (c, x3, s2, i, den, NULL, error))
        return FALSE;
      for (gsize k = 0; k < c->n; k++) {
        double d3 = (x3[k] - den[k]) / s2;
        x[k] += (float) ((w1 * d[k] + w2 * d2[k] + w3 * d3) * dt);
      }
    }
  }
  return TRUE;
}

/* One DPM-Solver-2 step from sigma to sigma_to through the log-midpoint; den holds D(x, sigma). */
static gboolean
dpm2_step (const EaselSampleCtx *c, float *x, float *den, float *x2, double sigma, double sigma_to, guint i,
           GError **error)
{
  double mid = exp (log (sigma) + 0.5 * (log (sigma_to) - log (sigma)));
  for (gsize k = 0; k < c->n; k++)
    x2[k] = (float) (x[k] + (x[k] - den[k]) / sigma * (mid - sigma));
  if (!easel_sampling_denoise (c, x2, mid, i, den, NULL, error))
    return FALSE;
  for (gsize k = 0; k < c->n; k++)
    x[k] += (float) ((x2[k] - den[k]) / mid * (sigma_to - sigma));
  return TRUE;
}

gboolean
easel_sample_dpm_2 (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                    gsize n_sigmas, GError **error)
{
  float *b[2];
  g_autofree float *block = easel_sampling_buffers (c->n, 2, b);
  float *den = b[0], *x2 = b[1];

  for (guint i = 0; i < N_STEPS; i++) {
    double sigma_hat, s_next = sigmas[i + 1];
    if (!churn (c, o, x, x2, sigmas[i], n_sigmas, &sigma_hat, error) ||
        !easel_sampling_denoise (c, x, sigma_hat, i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (s_next == 0.0) {
      for (gsize k = 0; k < c->n; k++)
        x[k] += (float) ((x[k] - den[k]) / sigma_hat * (s_next - sigma_hat));
    } else if (!dpm2_step (c, x, den, x2, sigma_hat, s_next, i, error)) {
      return FALSE;
    }
  }
  return TRUE;
}

gboolean
easel_sample_dpm_2_ancestral (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                              gsize n_sigmas, GError **error)
{
  float *b[2];
  g_autofree float *block = easel_sampling_buffers (c->n, 2, b);
  float *den = b[0], *x2 = b[1];

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], down, up;
    if (!easel_sampling_denoise (c, x, s, i, den, NULL, error))
      return FALSE;
    easel_sampling_ancestral_step (s, sigmas[i + 1], o->eta, &down, &up);
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (down == 0.0) {
      for (gsize k = 0; k < c->n; k++)
        x[k] += (float) ((x[k] - den[k]) / s * (down - s));
      continue;
    }
    if (!dpm2_step (c, x, den, x2, s, down, i, error) ||
        !easel_sampling_noise (c, s, sigmas[i + 1], x2, error))
      return FALSE;
    for (gsize k = 0; k < c->n; k++)
      x[k] += (float) (x2[k] * o->s_noise * up);
  }
  return TRUE;
}

/* generic_step_sampler + DDPMSampler_step: the DDPM posterior step in the VP scaling. */
gboolean
easel_sample_ddpm (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                   gsize n_sigmas, GError **error)
{
  float *b[2];
  g_autofree float *block = easel_sampling_buffers (c->n, 2, b);
  float *den = b[0], *noise = b[1];
  (void) o;

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], sp = sigmas[i + 1];
    double ac = 1.0 / (s * s + 1.0), acp = 1.0 / (sp * sp + 1.0), alpha = ac / acp;
    double in_scale = 1.0 / sqrt (1.0 + s * s), out_scale = sp != 0.0 ? sqrt (1.0 + sp * sp) : 1.0;
    double mu_scale = sqrt (1.0 / alpha), eps_scale = (1.0 - alpha) / sqrt (1.0 - ac);
    double noise_scale = sp > 0.0 ? sqrt ((1.0 - alpha) * (1.0 - acp) / (1.0 - ac)) : 0.0;
    if (!easel_sampling_denoise (c, x, s, i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (sp > 0.0 && !easel_sampling_noise (c, s, sp, noise, error))
      return FALSE;
    for (gsize k = 0; k < c->n; k++) {
      double eps = (x[k] - den[k]) / s;
      double mu = mu_scale * (x[k] * in_scale - eps_scale * eps);
      if (sp > 0.0)
        mu += noise_scale * noise[k];
      x[k] = (float) (mu * out_scale);
    }
  }
  return TRUE;
}

/* Latent consistency: jump to D, then renoise to the next sigma (ComfyUI's noise_scaling). */
gboolean
easel_sample_lcm (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                  gsize n_sigmas, GError **error)
{
  float *b[2];
  g_autofree float *block = easel_sampling_buffers (c->n, 2, b);
  float *den = b[0], *noise = b[1];

  for (guint i = 0; i < N_STEPS; i++) {
    double sp = sigmas[i + 1];
    if (!easel_sampling_denoise (c, x, sigmas[i], i, den, NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (!(sp > 0.0)) {
      memcpy (x, den, c->n * sizeof (float));
      continue;
    }
    if (!easel_sampling_noise (c, sigmas[i], sp, noise, error))
      return FALSE;
    for (gsize k = 0; k < c->n; k++) {
      double nz = o->s_noise != 1.0 ? noise[k] * o->s_noise : noise[k];
      x[k] = (float) (nz * sp + den[k]);
    }
  }
  return TRUE;
}

/* Gradient estimation (Permenter & Yuan): Euler plus (ge_gamma - 1) times the change of d. */
gboolean
easel_sample_gradient_estimation (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x,
                                  const float *sigmas, gsize n_sigmas, GError **error)
{
  float *b[3];
  g_autofree float *block = easel_sampling_buffers (c->n, 3, b);
  float *den = b[0], *unc = b[1], *old_d = b[2];

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], s_next = sigmas[i + 1], dt = s_next - s;
    if (!easel_sampling_denoise (c, x, s, i, den, o->cfg_pp ? unc : NULL, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    for (gsize k = 0; k < c->n; k++) {
      double d = (x[k] - (o->cfg_pp ? unc[k] : den[k])) / s, xn;
      if (s_next == 0.0) {
        xn = den[k];
      } else {
        xn = o->cfg_pp ? den[k] + d * s_next : x[k] + d * dt;
        if (i >= 1)
          xn += (o->ge_gamma - 1.0) * (d - old_d[k]) * dt;
      }
      old_d[k] = (float) d;
      x[k] = (float) xn;
    }
  }
  return TRUE;
}

/* ComfyUI _sample_cfgpp_history with cfgpp_ud10_ab's weights: CFG++ Euler with variable-step AB2
 * history (weight 0.25), unconditional-direction history (0.1) and a first-order extrapolation of
 * D to sigma = 0 at the last step (weight 1). */
gboolean
easel_sample_cfgpp_ud10_ab (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas,
                            gsize n_sigmas, GError **error)
{
  const double history_weight = 0.25, uncond_history_weight = 0.1;
  float *b[5];
  g_autofree float *block = easel_sampling_buffers (c->n, 5, b);
  float *den = b[0], *unc = b[1], *d_prev = b[2], *old_ud = b[3], *den_prev = b[4];
  (void) o;

  for (guint i = 0; i < N_STEPS; i++) {
    double s = sigmas[i], s_next = sigmas[i + 1], dt = s_next - s;
    double ratio = i > 0 ? dt / (s - sigmas[i - 1]) : 0.0, c0 = 0.0, c1 = 0.0;
    gboolean extrapolate = s_next == 0.0 && i > 0;
    if (!easel_sampling_denoise (c, x, s, i, den, unc, error))
      return FALSE;
    easel_sampling_step (c, i, N_STEPS, x, den);
    if (i > 0) {
      c0 = easel_sampling_lms_coeff (2, sigmas, i, 0);
      c1 = easel_sampling_lms_coeff (2, sigmas, i, 1);
    }
    for (gsize k = 0; k < c->n; k++) {
      double cur = (x[k] - unc[k]) / s, ud = cur, euler, d, step;
      if (i > 0)
        ud += uncond_history_weight * ratio * (cur - old_ud[k]);
      euler = den[k] + s_next * ud - x[k];
      d = euler / dt;
      step = euler;
      if (i > 0)
        step = euler + history_weight * (c0 * d + c1 * d_prev[k] - euler);
      x[k] = (float) (x[k] + step);
      if (extrapolate)
        x[k] = (float) (den[k] - s * (den[k] - den_prev[k]) / (s - sigmas[i - 1]));
      d_prev[k] = (float) d;
      old_ud[k] = (float) cur;
      den_prev[k] = den[k];
    }
  }
  return TRUE;
}
