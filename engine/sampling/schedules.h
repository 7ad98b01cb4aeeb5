/* engine/sampling/schedules.h: the noise schedule of a discrete-time SD model and ComfyUI's schedulers.
 *
 * Follows ComfyUI's comfy/model_sampling.py (ModelSamplingDiscrete with EPS or V_PREDICTION) and the
 * schedulers of comfy/samplers.py (calculate_sigmas, KSampler.set_steps), plus k-diffusion's
 * DiscreteSchedule.sigma_to_t (the fractional timesteps A1111 feeds the UNet). Sigmas are float32 as
 * in ComfyUI, where the reference computes them in float32 the arithmetic here does too. */
#pragma once

#include <glib.h>

#include "engine/family.h"   /* EaselPrediction: EASEL_PREDICTION_EPSILON (SD 1.x, SDXL) or _V (SD 2.x 768-v) */

G_BEGIN_DECLS

/* A discrete-time model's schedule: alphas_cumprod of its n timesteps and the sigma table. */
typedef struct _EaselModelSampling EaselModelSampling;

/* SD's "scaled_linear" betas (ComfyUI's linear in sqrt space): betas = linspace(sqrt(start),
 * sqrt(end), n)^2 in float64. SD 1.x/2.x/SDXL: 0.00085, 0.012, 1000. transfer full. */
EaselModelSampling *easel_model_sampling_new_scaled_linear (EaselPrediction prediction, double linear_start,
                                                            double linear_end, guint n_timesteps);
/* A checkpoint's own schedule (its alphas_cumprod, n values in (0, 1), decreasing). transfer full. */
EaselModelSampling *easel_model_sampling_new_from_alphas_cumprod (EaselPrediction prediction,
                                                                  const double *alphas_cumprod, gsize n,
                                                                  GError **error);
void easel_model_sampling_free (EaselModelSampling *ms);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselModelSampling, easel_model_sampling_free)

EaselPrediction easel_model_sampling_prediction (const EaselModelSampling *ms);
guint           easel_model_sampling_n_timesteps (const EaselModelSampling *ms);
/* Tables of n_timesteps values, ascending in t: sigmas and log_sigmas as ComfyUI holds them (float32
 * of the float64 values), alphas_cumprod in float64. */
const float    *easel_model_sampling_sigmas (const EaselModelSampling *ms);
const float    *easel_model_sampling_log_sigmas (const EaselModelSampling *ms);
const double   *easel_model_sampling_alphas_cumprod (const EaselModelSampling *ms);
float           easel_model_sampling_sigma_min (const EaselModelSampling *ms);
float           easel_model_sampling_sigma_max (const EaselModelSampling *ms);

/* ComfyUI ModelSamplingDiscrete.sigma(t): log-linear interpolation of the table at a fractional t
 * (clamped to [0, n-1]), in float32. */
float easel_model_sampling_sigma (const EaselModelSampling *ms, float t);
/* ComfyUI ModelSamplingDiscrete.timestep(sigma): the index of the nearest log-sigma (an integer). */
guint easel_model_sampling_timestep (const EaselModelSampling *ms, float sigma);
/* k-diffusion DiscreteSchedule.sigma_to_t over A1111's table (sigmas from float32 alphas_cumprod):
 * linear interpolation between neighbouring log-sigmas (a fractional timestep), or the nearest
 * index when quantize. */
float easel_model_sampling_sigma_to_t_kdiffusion (const EaselModelSampling *ms, float sigma, gboolean quantize);
/* A1111's sigma table (float32 arithmetic from float32 alphas_cumprod), n_timesteps values. */
const float *easel_model_sampling_kdiffusion_sigmas (const EaselModelSampling *ms);
/* ComfyUI percent_to_sigma: 0 -> a huge sigma, 1 -> 0, else sigma((1 - percent) * 999). */
double easel_model_sampling_percent_to_sigma (const EaselModelSampling *ms, double percent);

/* ComfyUI KSAMPLER's max_denoise: sigma0 is the model's sigma_max (relative 1e-5) or above. */
gboolean easel_model_sampling_is_max_denoise (const EaselModelSampling *ms, double sigma0);
/* ComfyUI noise_scaling (EPS and V): x_init = noise * sqrt(1 + sigma0^2) + latent when max_denoise,
 * else noise * sigma0 + latent (latent may be NULL = zeros). x_init, noise, latent: n values. */
void easel_model_sampling_noise_scaling (const EaselModelSampling *ms, double sigma0, gboolean max_denoise,
                                         const float *noise, const float *latent, float *x_init, gsize n);
/* The UNet's input scale c_in = 1 / sqrt(sigma^2 + 1) (EPS and V). */
double easel_model_sampling_c_in (const EaselModelSampling *ms, double sigma);
/* denoised from the UNet's output for its input x (both n values, the unscaled x): EPS:
 * x - out * sigma; V: x / (sigma^2 + 1) - out * sigma / sqrt(sigma^2 + 1). */
void easel_model_sampling_denoised (const EaselModelSampling *ms, double sigma, const float *x,
                                    const float *model_out, float *denoised, gsize n);

/* ---------------------------------------------------------------------------------------------- */

typedef enum {
  EASEL_SCHEDULER_SIMPLE,
  EASEL_SCHEDULER_SGM_UNIFORM,
  EASEL_SCHEDULER_KARRAS,
  EASEL_SCHEDULER_EXPONENTIAL,
  EASEL_SCHEDULER_DDIM_UNIFORM,
  EASEL_SCHEDULER_BETA,
  EASEL_SCHEDULER_NORMAL,
  EASEL_SCHEDULER_LINEAR_QUADRATIC,
  EASEL_SCHEDULER_KL_OPTIMAL,
  EASEL_SCHEDULER_COUNT,
} EaselScheduler;

/* The scheduler table (schedules.c): ComfyUI's id and A1111's "Schedule type" label of each. */
/* ComfyUI's name ("simple", "karras", ...); NULL for a value out of range. */
const char *easel_scheduler_name (EaselScheduler scheduler);
/* A1111's label ("Karras", "Exponential", "SGM Uniform", "DDIM" for ddim_uniform, ...). */
const char *easel_scheduler_display_name (EaselScheduler scheduler);
/* Any spelling, case-insensitively: ComfyUI's id, A1111's label or A1111's other names ("Uniform" =
 * normal, "SGMUniform"). "Automatic" is not a scheduler: see easel_sampling_parse_name. */
gboolean    easel_scheduler_from_name (const char *name, EaselScheduler *out);
/* The same for the first len bytes of name. */
gboolean    easel_scheduler_from_name_len (const char *name, gsize len, EaselScheduler *out);

/* ComfyUI calculate_sigmas(model_sampling, scheduler, steps): usually steps + 1 sigmas ending in 0
 * (ddim_uniform and normal may differ; kl_optimal with 1 step gives NaN, as ComfyUI does).
 * transfer full; *n_out set. steps must be 1..10000. */
float *easel_schedule_sigmas (const EaselModelSampling *ms, EaselScheduler scheduler, guint steps,
                              gsize *n_out, GError **error);
/* The sigmas ComfyUI's KSampler node samples with: discard_penultimate (dpm_2, dpm_2_ancestral,
 * uni_pc, uni_pc_bh2) computes steps + 1 and drops the penultimate sigma; denoise < 1 computes
 * int(steps / denoise) and keeps the last steps + 1; denoise <= 0 gives an empty list. */
float *easel_ksampler_sigmas (const EaselModelSampling *ms, EaselScheduler scheduler, guint steps,
                              double denoise, gboolean discard_penultimate, gsize *n_out, GError **error);

G_END_DECLS
