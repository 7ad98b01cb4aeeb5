/* engine/sampling/samplers.c: the sampler table (ComfyUI's SAMPLER_NAMES with their default
 * options, flags and A1111 labels), argument checks, and the helpers the families share.
 * Defaults follow the keyword defaults of comfy/k_diffusion/sampling.py at 02159d81. */
#include "samplers-private.h"

#include <math.h>
#include <string.h>

#include "engine/error.h"

#define CHURN .s_noise = 1.0, .s_tmax = INFINITY
/* ROW_A: a sampler whose A1111 "Automatic" schedule is `a` (modules/sd_samplers_kdiffusion.py, A1111
 * 1.10); ROW: A1111's Uniform, which is ComfyUI's normal */
#define ROW_A(n, d, f, fl, a, ...) \
  { .name = n, .display_name = d, .fn = f, .flags = fl, .automatic = a, .defaults = { __VA_ARGS__ } }
#define ROW(n, d, f, fl, ...) ROW_A (n, d, f, fl, EASEL_SCHEDULER_NORMAL, __VA_ARGS__)
#define KARRAS EASEL_SCHEDULER_KARRAS
#define EXPONENTIAL EASEL_SCHEDULER_EXPONENTIAL

enum {
  NOISE = EASEL_SAMPLER_NOISE,
  ANC = EASEL_SAMPLER_ANCESTRAL | EASEL_SAMPLER_NOISE,
  SDE = EASEL_SAMPLER_SDE | EASEL_SAMPLER_NOISE,
  TREE = EASEL_SAMPLER_SDE | EASEL_SAMPLER_NOISE | EASEL_SAMPLER_BROWNIAN,
  CFGPP = EASEL_SAMPLER_CFG_PP,
  DISCARD = EASEL_SAMPLER_DISCARD_PENULTIMATE,
};

static const EaselSamplerInfo samplers[] = {
  ROW ("euler", "Euler", easel_sample_euler, 0, CHURN),
  ROW ("euler_cfg_pp", "Euler CFG++", easel_sample_euler_ancestral_cfg_pp, CFGPP, .eta = 0.0, .s_noise = 0.0),
  ROW ("euler_ancestral", "Euler a", easel_sample_euler_ancestral, ANC, .eta = 1.0, .s_noise = 1.0),
  ROW ("euler_ancestral_cfg_pp", "Euler a CFG++", easel_sample_euler_ancestral_cfg_pp, ANC | CFGPP,
       .eta = 1.0, .s_noise = 1.0),
  ROW ("heun", "Heun", easel_sample_heun, 0, CHURN),
  ROW ("heunpp2", "Heun++ 2", easel_sample_heunpp2, 0, CHURN),
  ROW ("exp_heun_2_x0", "Exp Heun 2 x0", easel_sample_seeds_2, 0, .eta = 0.0, .s_noise = 0.0, .r = 1.0,
       .solver_type = 2),
  ROW ("exp_heun_2_x0_sde", "Exp Heun 2 x0 SDE", easel_sample_seeds_2, SDE, .eta = 1.0, .s_noise = 1.0, .r = 1.0,
       .solver_type = 2),
  ROW_A ("dpm_2", "DPM2", easel_sample_dpm_2, DISCARD, KARRAS, CHURN),
  ROW_A ("dpm_2_ancestral", "DPM2 a", easel_sample_dpm_2_ancestral, ANC | DISCARD, KARRAS, .eta = 1.0,
         .s_noise = 1.0),
  ROW ("lms", "LMS", easel_sample_lms, 0, .order = 4),
  ROW ("dpm_fast", "DPM fast", easel_sample_dpm_fast, NOISE, .eta = 0.0, .s_noise = 1.0),
  ROW ("dpm_adaptive", "DPM adaptive", easel_sample_dpm_adaptive, NOISE, .eta = 0.0, .s_noise = 1.0, .order = 3,
       .rtol = 0.05, .atol = 0.0078, .h_init = 0.05, .pcoeff = 0.0, .icoeff = 1.0, .dcoeff = 0.0,
       .accept_safety = 0.81),
  ROW_A ("dpmpp_2s_ancestral", "DPM++ 2S a", easel_sample_dpmpp_2s_ancestral, ANC, KARRAS, .eta = 1.0, .s_noise = 1.0),
  ROW ("dpmpp_2s_ancestral_cfg_pp", "DPM++ 2S a CFG++", easel_sample_dpmpp_2s_ancestral_cfg_pp, ANC | CFGPP,
       .eta = 1.0, .s_noise = 1.0),
  ROW_A ("dpmpp_sde", "DPM++ SDE", easel_sample_dpmpp_sde, TREE, KARRAS, .eta = 1.0, .s_noise = 1.0, .r = 0.5),
  ROW_A ("dpmpp_sde_gpu", "DPM++ SDE GPU", easel_sample_dpmpp_sde, TREE, KARRAS, .eta = 1.0, .s_noise = 1.0, .r = 0.5),
  ROW_A ("dpmpp_2m", "DPM++ 2M", easel_sample_dpmpp_2m, 0, KARRAS),
  ROW ("dpmpp_2m_cfg_pp", "DPM++ 2M CFG++", easel_sample_dpmpp_2m_cfg_pp, CFGPP),
  ROW_A ("dpmpp_2m_sde", "DPM++ 2M SDE", easel_sample_dpmpp_2m_sde, TREE, EXPONENTIAL, .eta = 1.0, .s_noise = 1.0,
         .solver_type = 0),
  ROW_A ("dpmpp_2m_sde_gpu", "DPM++ 2M SDE GPU", easel_sample_dpmpp_2m_sde, TREE, EXPONENTIAL, .eta = 1.0,
         .s_noise = 1.0, .solver_type = 0),
  ROW_A ("dpmpp_2m_sde_heun", "DPM++ 2M SDE Heun", easel_sample_dpmpp_2m_sde, TREE, EXPONENTIAL, .eta = 1.0,
         .s_noise = 1.0, .solver_type = 1),
  ROW_A ("dpmpp_2m_sde_heun_gpu", "DPM++ 2M SDE Heun GPU", easel_sample_dpmpp_2m_sde, TREE, EXPONENTIAL, .eta = 1.0,
         .s_noise = 1.0, .solver_type = 1),
  ROW_A ("dpmpp_3m_sde", "DPM++ 3M SDE", easel_sample_dpmpp_3m_sde, TREE, EXPONENTIAL, .eta = 1.0, .s_noise = 1.0),
  ROW_A ("dpmpp_3m_sde_gpu", "DPM++ 3M SDE GPU", easel_sample_dpmpp_3m_sde, TREE, EXPONENTIAL, .eta = 1.0,
         .s_noise = 1.0),
  ROW ("ddpm", "DDPM", easel_sample_ddpm, ANC),
  ROW ("lcm", "LCM", easel_sample_lcm, ANC, .s_noise = 1.0),
  ROW ("ipndm", "iPNDM", easel_sample_ipndm, 0, .order = 4),
  ROW ("ipndm_v", "iPNDM V", easel_sample_ipndm_v, 0, .order = 4),
  ROW ("deis", "DEIS", easel_sample_deis, 0, .order = 3),
  ROW ("cfgpp_ud10_ab", "CFG++ UD10 AB", easel_sample_cfgpp_ud10_ab, EASEL_SAMPLER_UNCOND_OR_COND),
  ROW ("res_multistep", "Res Multistep", easel_sample_res_multistep, NOISE, .eta = 0.0, .s_noise = 1.0),
  ROW ("res_multistep_cfg_pp", "Res Multistep CFG++", easel_sample_res_multistep, NOISE | CFGPP, .eta = 0.0,
       .s_noise = 1.0, .cfg_pp = TRUE),
  ROW ("res_multistep_ancestral", "Res Multistep a", easel_sample_res_multistep, ANC, .eta = 1.0, .s_noise = 1.0),
  ROW ("res_multistep_ancestral_cfg_pp", "Res Multistep a CFG++", easel_sample_res_multistep, ANC | CFGPP,
       .eta = 1.0, .s_noise = 1.0, .cfg_pp = TRUE),
  ROW ("gradient_estimation", "Gradient Estimation", easel_sample_gradient_estimation, 0, .ge_gamma = 2.0),
  ROW ("gradient_estimation_cfg_pp", "Gradient Estimation CFG++", easel_sample_gradient_estimation, CFGPP,
       .ge_gamma = 2.0, .cfg_pp = TRUE),
  ROW ("er_sde", "ER SDE", easel_sample_er_sde, SDE, .s_noise = 1.0, .order = 3),
  ROW ("seeds_2", "SEEDS 2", easel_sample_seeds_2, SDE, .eta = 1.0, .s_noise = 1.0, .r = 0.5, .solver_type = 1),
  ROW ("seeds_3", "SEEDS 3", easel_sample_seeds_3, SDE, .eta = 1.0, .s_noise = 1.0, .r = 1.0 / 3, .r2 = 2.0 / 3),
  ROW ("sa_solver", "SA-Solver", easel_sample_sa_solver, SDE | EASEL_SAMPLER_NEEDS_MODEL_SAMPLING, .eta = 1.0,
       .s_noise = 1.0, .order = 3, .corrector_order = 4),
  ROW ("sa_solver_pece", "SA-Solver PECE", easel_sample_sa_solver, SDE | EASEL_SAMPLER_NEEDS_MODEL_SAMPLING,
       .eta = 1.0, .s_noise = 1.0, .order = 3, .corrector_order = 4, .pece = TRUE),
  /* ComfyUI's "ddim" is sample_euler (its random inpaint noise only matters with a mask) */
  ROW ("ddim", "DDIM", easel_sample_euler, 0, CHURN),
  ROW ("uni_pc", "UniPC", easel_sample_uni_pc, DISCARD, .solver_type = 1),
  ROW ("uni_pc_bh2", "UniPC BH2", easel_sample_uni_pc, DISCARD, .solver_type = 2),
};

guint
easel_sampler_count (void)
{
  return G_N_ELEMENTS (samplers);
}

const EaselSamplerInfo *
easel_sampler_at (guint i)
{
  return i < G_N_ELEMENTS (samplers) ? &samplers[i] : NULL;
}

static gboolean
same_name (const char *name, gsize len, const char *spelling)
{
  return strlen (spelling) == len && g_ascii_strncasecmp (name, spelling, len) == 0;
}

const EaselSamplerInfo *
easel_sampler_find_len (const char *name, gsize len)
{
  for (guint i = 0; name && i < G_N_ELEMENTS (samplers); i++)
    if (same_name (name, len, samplers[i].name) || same_name (name, len, samplers[i].display_name))
      return &samplers[i];
  return NULL;
}

const EaselSamplerInfo *
easel_sampler_find (const char *name)
{
  return name ? easel_sampler_find_len (name, strlen (name)) : NULL;
}

void
easel_sampler_default_options (const EaselSamplerInfo *info, EaselSamplerOptions *out)
{
  g_return_if_fail (info != NULL && out != NULL);
  *out = info->defaults;
}

gboolean
easel_sampler_run (const EaselSamplerInfo *info, const EaselSampleCtx *c, const EaselSamplerOptions *options,
                   float *x, const float *sigmas, gsize n_sigmas, GError **error)
{
  g_return_val_if_fail (info != NULL && c != NULL && x != NULL, FALSE);
  if (c->n == 0 || c->denoise == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s: no latent or no denoiser", info->name);
    return FALSE;
  }
  if ((info->flags & EASEL_SAMPLER_NOISE) && c->noise == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s needs a noise source", info->name);
    return FALSE;
  }
  if ((info->flags & EASEL_SAMPLER_NEEDS_MODEL_SAMPLING) && c->model_sampling == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s needs the model's schedule", info->name);
    return FALSE;
  }
  for (gsize i = 0; i < n_sigmas; i++) {
    if (!isfinite (sigmas[i]) || sigmas[i] < 0.0f) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s: sigma %" G_GSIZE_FORMAT " is %g",
                   info->name, i, sigmas[i]);
      return FALSE;
    }
  }
  if (n_sigmas < 2)
    return TRUE;
  return info->fn (c, options ? options : &info->defaults, x, sigmas, n_sigmas, error);
}

void
easel_sampling_cfg (float *out, const float *cond, const float *uncond, double cfg, gsize n)
{
  const float s = (float) cfg;
  for (gsize i = 0; i < n; i++)
    out[i] = uncond[i] + (cond[i] - uncond[i]) * s;
}

/* --- helpers for the families ------------------------------------------------------------------- */

gboolean
easel_sampling_denoise (const EaselSampleCtx *c, const float *x, double sigma, guint step, float *denoised,
                        float *uncond, GError **error)
{
  GError *local = NULL;
  if (c->denoise (c->user_data, x, sigma, step, denoised, uncond, &local))
    return TRUE;
  if (local == NULL)
    local = g_error_new (EASEL_ERROR, EASEL_ERROR_CANCELLED, "sampling was cancelled at step %u", step);
  g_propagate_error (error, local);
  return FALSE;
}

gboolean
easel_sampling_noise (const EaselSampleCtx *c, double sigma, double sigma_next, float *out, GError **error)
{
  GError *local = NULL;
  if (c->noise == NULL)
    local = g_error_new (EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "this sampler needs a noise source");
  else if (c->noise (c->noise_data ? c->noise_data : c->user_data, sigma, sigma_next, out, &local))
    return TRUE;
  if (local == NULL)
    local = g_error_new (EASEL_ERROR, EASEL_ERROR_CANCELLED, "the noise source failed at sigma %g", sigma);
  g_propagate_error (error, local);
  return FALSE;
}

void
easel_sampling_step (const EaselSampleCtx *c, guint step, guint n_steps, const float *x, const float *denoised)
{
  if (c->step)
    c->step (c->user_data, step, n_steps, x, denoised);
}

void
easel_sampling_ancestral_step (double sigma_from, double sigma_to, double eta, double *sigma_down, double *sigma_up)
{
  double up;
  if (eta == 0.0) {
    *sigma_down = sigma_to;
    *sigma_up = 0.0;
    return;
  }
  up = eta * sqrt (sigma_to * sigma_to * (sigma_from * sigma_from - sigma_to * sigma_to) / (sigma_from * sigma_from));
  up = MIN (sigma_to, up);
  *sigma_up = up;
  *sigma_down = sqrt (sigma_to * sigma_to - up * up);
}

float *
easel_sampling_buffers (gsize n, guint k, float **out_ptrs)
{
  float *block;
  g_return_val_if_fail (k > 0 && n <= G_MAXSIZE / sizeof (float) / k, NULL);
  block = g_new0 (float, n * k);
  for (guint i = 0; i < k; i++)
    out_ptrs[i] = block + n * i;
  return block;
}

double
easel_sampling_lms_coeff (int order, const float *t, gsize i, int j)
{
  /* 5-point Gauss-Legendre: exact for the polynomials of degree <= 9 met here */
  static const double node[5] = { -0.9061798459386640, -0.5384693101056831, 0.0, 0.5384693101056831,
                                  0.9061798459386640 };
  static const double weight[5] = { 0.2369268850561891, 0.4786286704993665, 0.5688888888888889,
                                    0.4786286704993665, 0.2369268850561891 };
  double a = t[i], b = t[i + 1], sum = 0.0;

  g_return_val_if_fail (order >= 1 && order <= 8 && (gsize) order - 1 <= i && j < order, 0.0);
  for (int q = 0; q < 5; q++) {
    double tau = 0.5 * (b - a) * node[q] + 0.5 * (a + b), prod = 1.0;
    for (int k = 0; k < order; k++)
      if (k != j)
        prod *= (tau - t[i - k]) / ((double) t[i - j] - t[i - k]);
    sum += weight[q] * prod;
  }
  return 0.5 * (b - a) * sum;
}
