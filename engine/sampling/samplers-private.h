/* engine/sampling/samplers-private.h: what the sampler families (samplers-*.c) share: their entry
 * points for the table in samplers.c and the call helpers that keep error handling in one place. */
#pragma once

#include "samplers.h"

G_BEGIN_DECLS

#define EASEL_SAMPLER_DECL(fn) \
  gboolean fn (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x, const float *sigmas, \
               gsize n_sigmas, GError **error)

/* samplers-euler.c: Karras-style first and second order steps */
EASEL_SAMPLER_DECL (easel_sample_euler);
EASEL_SAMPLER_DECL (easel_sample_euler_ancestral);
EASEL_SAMPLER_DECL (easel_sample_euler_ancestral_cfg_pp);
EASEL_SAMPLER_DECL (easel_sample_heun);
EASEL_SAMPLER_DECL (easel_sample_heunpp2);
EASEL_SAMPLER_DECL (easel_sample_dpm_2);
EASEL_SAMPLER_DECL (easel_sample_dpm_2_ancestral);
EASEL_SAMPLER_DECL (easel_sample_ddpm);
EASEL_SAMPLER_DECL (easel_sample_lcm);
EASEL_SAMPLER_DECL (easel_sample_gradient_estimation);
EASEL_SAMPLER_DECL (easel_sample_cfgpp_ud10_ab);
/* samplers-dpm.c: DPM-Solver family in log-sigma time */
EASEL_SAMPLER_DECL (easel_sample_dpm_fast);
EASEL_SAMPLER_DECL (easel_sample_dpm_adaptive);
EASEL_SAMPLER_DECL (easel_sample_dpmpp_2s_ancestral);
EASEL_SAMPLER_DECL (easel_sample_dpmpp_2s_ancestral_cfg_pp);
EASEL_SAMPLER_DECL (easel_sample_dpmpp_sde);
EASEL_SAMPLER_DECL (easel_sample_dpmpp_2m);
EASEL_SAMPLER_DECL (easel_sample_dpmpp_2m_cfg_pp);
EASEL_SAMPLER_DECL (easel_sample_dpmpp_2m_sde);
EASEL_SAMPLER_DECL (easel_sample_dpmpp_3m_sde);
EASEL_SAMPLER_DECL (easel_sample_seeds_2);
EASEL_SAMPLER_DECL (easel_sample_seeds_3);
EASEL_SAMPLER_DECL (easel_sample_er_sde);
/* samplers-multistep.c: linear multistep and predictor-corrector methods */
EASEL_SAMPLER_DECL (easel_sample_lms);
EASEL_SAMPLER_DECL (easel_sample_ipndm);
EASEL_SAMPLER_DECL (easel_sample_ipndm_v);
EASEL_SAMPLER_DECL (easel_sample_deis);
EASEL_SAMPLER_DECL (easel_sample_res_multistep);
EASEL_SAMPLER_DECL (easel_sample_sa_solver);
EASEL_SAMPLER_DECL (easel_sample_uni_pc);

/* c->denoise, with an error guaranteed on FALSE. */
gboolean easel_sampling_denoise (const EaselSampleCtx *c, const float *x, double sigma, guint step,
                                 float *denoised, float *uncond, GError **error);
/* c->noise, with an error guaranteed on FALSE. */
gboolean easel_sampling_noise (const EaselSampleCtx *c, double sigma, double sigma_next, float *out,
                               GError **error);
/* c->step when set. */
void easel_sampling_step (const EaselSampleCtx *c, guint step, guint n_steps, const float *x, const float *denoised);
/* k-diffusion get_ancestral_step: the sigma to step down to and the noise to add after. */
void easel_sampling_ancestral_step (double sigma_from, double sigma_to, double eta, double *sigma_down,
                                    double *sigma_up);
/* k-diffusion linear_multistep_coeff: the integral over [t[i], t[i+1]] of the Lagrange basis
 * polynomial j through t[i], t[i-1], ..., t[i-order+1] (exact; order 1..8, i >= order - 1). */
double easel_sampling_lms_coeff (int order, const float *t, gsize i, int j);
/* Newly allocated float buffers of n, k of them in one block (free the first). */
float *easel_sampling_buffers (gsize n, guint k, float **out_ptrs);

G_END_DECLS
