/* engine/sampling/samplers.h: the samplers of ComfyUI's KSampler list (comfy/k_diffusion/sampling.py,
 * comfy/extra_samplers/uni_pc.py), as pure functions over a denoiser callback.
 *
 * A sampler integrates x from sigmas[0] down to sigmas[n_sigmas - 1] (usually 0). x is the latent in
 * the k-diffusion (VE) convention: x = x0 + sigma * noise, so the caller starts it with
 * easel_model_sampling_noise_scaling(). The denoiser returns D(x, sigma), the model's estimate of x0,
 * with CFG already applied; CFG, CFG++'s unconditional prediction and inpaint blending live in that
 * callback. Noise comes from a callback too (the k-th call is ComfyUI's k-th noise_sampler call), so
 * the caller picks torch-compatible noise, a Brownian tree, a recorded list, or anything else
 * (noise.h has them all, and ComfyUI's default for each sampler). Samplers allocate a few
 * buffers of n floats when they start and nothing per step. Scalars are computed in float64,
 * vectors are float32 (ComfyUI runs these in float32 torch). */
#pragma once

#include <glib.h>

#include "schedules.h"

G_BEGIN_DECLS

/* D(x, sigma) -> out_denoised (n values). out_uncond is NULL unless the sampler's flags contain
 * EASEL_SAMPLER_CFG_PP or EASEL_SAMPLER_UNCOND_OR_COND; then it receives the unconditional
 * prediction D_uncond of the same call (ComfyUI's post-CFG hook). step: the sampler's step index.
 * FALSE = failed or cancelled (set error; EASEL_ERROR_CANCELLED for a cancel). */
typedef gboolean (*EaselDenoiseFunc) (gpointer user_data, const float *x, double sigma, guint step,
                                      float *out_denoised, float *out_uncond, GError **error);
/* Unit-variance noise for the step from sigma to sigma_next -> out (n values). */
typedef gboolean (*EaselNoiseFunc) (gpointer user_data, double sigma, double sigma_next, float *out,
                                    GError **error);
/* Progress after the denoiser call of a step: what ComfyUI's callback gets (x, denoised: n values). */
typedef void (*EaselStepFunc) (gpointer user_data, guint step, guint n_steps, const float *x,
                               const float *denoised);

typedef struct {
  gsize n;                                   /* elements of x (the whole latent batch) */
  const EaselModelSampling *model_sampling;  /* needed with EASEL_SAMPLER_NEEDS_MODEL_SAMPLING, else may be NULL */
  EaselDenoiseFunc denoise;
  EaselNoiseFunc noise;                      /* needed with EASEL_SAMPLER_NOISE */
  EaselStepFunc step;                        /* may be NULL */
  gpointer user_data;                        /* passed to all three, but see noise_data */
  gpointer noise_data;                       /* passed to noise instead when not NULL (an EaselNoiseSource) */
} EaselSampleCtx;

typedef enum {
  EASEL_SAMPLER_FLAVOR_COMFYUI,     /* ComfyUI's sampling.py */
  EASEL_SAMPLER_FLAVOR_KDIFFUSION,  /* crowsonkb/k-diffusion (A1111): lms takes a multistep step to 0 */
} EaselSamplerFlavor;

/* Every option of every sampler; each sampler reads the ones it has. easel_sampler_default_options
 * gives ComfyUI's defaults for a sampler. */
typedef struct {
  double eta;                 /* ancestral / SDE noise amount */
  double s_noise;             /* noise multiplier */
  double s_churn, s_tmin, s_tmax;   /* Karras churn (euler, heun, heunpp2, dpm_2) */
  double r, r2;               /* intermediate points: dpmpp_sde r, seeds_2 r, seeds_3 r_1 and r_2 */
  int order;                  /* lms order, ipndm/deis max order, dpm_adaptive order, sa_solver predictor */
  int corrector_order;        /* sa_solver */
  int solver_type;            /* dpmpp_2m_sde: 0 midpoint, 1 heun; seeds_2: 1 phi_1, 2 phi_2; uni_pc: 1 bh1, 2 bh2 */
  gboolean cfg_pp;            /* res_multistep, gradient_estimation: the CFG++ form */
  gboolean pece;              /* sa_solver: predict-evaluate-correct-evaluate */
  double ge_gamma;            /* gradient_estimation */
  double rtol, atol, h_init, pcoeff, icoeff, dcoeff, accept_safety;   /* dpm_adaptive */
  EaselSamplerFlavor flavor;
} EaselSamplerOptions;

/* x (c->n values) in/out; sigmas: n_sigmas values, decreasing, >= 0. */
typedef gboolean (*EaselSampleFunc) (const EaselSampleCtx *c, const EaselSamplerOptions *o, float *x,
                                     const float *sigmas, gsize n_sigmas, GError **error);

typedef enum {
  EASEL_SAMPLER_NOISE = 1 << 0,               /* calls the noise callback */
  EASEL_SAMPLER_ANCESTRAL = 1 << 1,           /* adds fresh noise every step */
  EASEL_SAMPLER_SDE = 1 << 2,                 /* solves an SDE: noise enters every step */
  EASEL_SAMPLER_CFG_PP = 1 << 3,              /* reads D_uncond, which the wrapper computes even at cfg 1 */
  EASEL_SAMPLER_UNCOND_OR_COND = 1 << 4,      /* reads D_uncond; at cfg 1 D_cond may stand in */
  EASEL_SAMPLER_DISCARD_PENULTIMATE = 1 << 5, /* KSampler drops the penultimate sigma */
  EASEL_SAMPLER_NEEDS_MODEL_SAMPLING = 1 << 6,
  EASEL_SAMPLER_BROWNIAN = 1 << 7,            /* ComfyUI/A1111 default its noise to a Brownian tree */
} EaselSamplerFlags;

typedef struct {
  const char *name;           /* ComfyUI's name: "dpmpp_2m" */
  const char *display_name;   /* A1111's label: "DPM++ 2M" (Easel's, in A1111's style, where A1111 has none) */
  EaselSampleFunc fn;
  guint flags;                /* EaselSamplerFlags */
  EaselScheduler automatic;   /* what A1111's "Automatic" schedule type means for it (normal = A1111's Uniform) */
  EaselSamplerOptions defaults;
} EaselSamplerInfo;

/* The table, in ComfyUI's SAMPLER_NAMES order. Adding a sampler: its function and one row. */
guint                   easel_sampler_count (void);
const EaselSamplerInfo *easel_sampler_at (guint i);
/* By ComfyUI name or A1111 label, case-insensitively; NULL if unknown. */
const EaselSamplerInfo *easel_sampler_find (const char *name);
/* The same for the first len bytes of name. */
const EaselSamplerInfo *easel_sampler_find_len (const char *name, gsize len);
void easel_sampler_default_options (const EaselSamplerInfo *info, EaselSamplerOptions *out);

/* Checks the arguments (sigmas finite, >= 0, the callbacks the sampler needs) and runs it.
 * options NULL = the sampler's defaults. With fewer than 2 sigmas x is left as it is. */
gboolean easel_sampler_run (const EaselSamplerInfo *info, const EaselSampleCtx *c,
                            const EaselSamplerOptions *options, float *x, const float *sigmas, gsize n_sigmas,
                            GError **error);

/* ComfyUI cfg_function: out = uncond + (cond - uncond) * cfg, n values (out may alias either). */
void easel_sampling_cfg (float *out, const float *cond, const float *uncond, double cfg, gsize n);

G_END_DECLS
