/* engine/pipeline.h: one generation from a job to images: conditioning, the denoiser (CFG, inpaint
 * masking), sampling, VAE decoding and the PNG parameters; easel_generate (easel.h) is
 * easel_pipeline_run with a plain request. The extra fields here reproduce other programs' runs
 * exactly (the golden kind "pipeline": diffusers' schedulers, recorded noise) and feed tests.
 *
 * Conventions, and which program each follows:
 *  - latents are k-diffusion's (VE): x = x0 + sigma * noise; the VAE decodes x / sqrt(1 + s^2)
 *    when the last sigma s is not 0 (diffusers' DDIM ends at alphas_cumprod[0], in VP form);
 *  - prompts: A1111 syntax and chunking (prompt.h), weights as A1111's "Original" emphasis;
 *    cond and uncond of different lengths run as two UNet batches;
 *  - SDXL base with no negative prompt (NULL or ""): zero uncond context and pooled vector, as
 *    diffusers' force_zeros_for_empty_prompt (A1111 and ComfyUI encode "" instead:
 *    sdxl_encode_empty_negative); the refiner always encodes its negative prompt;
 *  - timestep from sigma: ComfyUI's nearest integer timestep, or k-diffusion's fractional one
 *    (A1111) with kdiffusion_timesteps;
 *  - noise: image i of a job has seed + i; cpu = ComfyUI (torch CPU generator; sampler noise
 *    seeded seed + 1), cuda = A1111 (Philox; the generator that drew the initial noise goes on);
 *  - img2img encodes with the posterior mean (ComfyUI) unless encode_noise is given (diffusers'
 *    posterior sample);
 *  - inpainting: a 9-channel UNet gets [x c_in | mask | masked-image latents] with the mask
 *    binarized at 0.5 and masked pixels set to 0 (diffusers); an ordinary UNet samples the whole
 *    latent while the part outside the mask is the init latent re-noised to the current sigma at
 *    every step and the denoised estimate there is the init latent (ComfyUI's KSamplerX0Inpaint);
 *    the decoded image is pasted over the init image through the blurred mask (A1111), unless
 *    raw_output. */
#pragma once

#include "easel.h"
#include "sampling/samplers.h"

G_BEGIN_DECLS

typedef enum {
  EASEL_DIFFUSERS_NONE,     /* ComfyUI's schedulers (job->scheduler) */
  EASEL_DIFFUSERS_DDIM,     /* DDIMScheduler, "leading", steps_offset 1, ends at alphas_cumprod[0] */
  EASEL_DIFFUSERS_EULER,    /* EulerDiscreteScheduler, "leading", steps_offset 1, ends at 0 */
  EASEL_DIFFUSERS_DPM,      /* DPMSolverMultistepScheduler, "leading" over steps + 1, ends at 0 */
} EaselDiffusersSchedule;

/* Called with the latent batch x (n values, VE) after every sampler step (step counts from 0
 * over the whole sigma list, base and refiner together). */
typedef void (*EaselLatentFunc) (gpointer user_data, guint step, double sigma, const float *x, gsize n);

typedef struct {
  const EaselJobParams *job;
  EaselModel *text_model;          /* text encoders and tokenizer from here (NULL: the model's) */
  EaselDiffusersSchedule diffusers;
  gboolean kdiffusion_timesteps;   /* A1111's fractional timesteps */
  gboolean sdxl_encode_empty_negative;
  /* SDXL size conditioning in pixels; 0 = the image size (crops 0) */
  int original_width, original_height, crop_top, crop_left;
  double aesthetic_score, negative_aesthetic_score;   /* refiner; 0 = 6.0 and 2.5 */
  /* Noise and latents given instead of drawn, each for the whole first batch (batch_size images,
   * 4·h·w values each): the initial noise, the posterior noise for encoding the init image, or the
   * latent at the first sigma (nothing added: a refiner continuing a base run). */
  const float *initial_noise;
  const float *encode_noise;
  const float *initial_latent;
  /* The init image (3, h0, w0) and mask (h0, w0) as floats in [0, 1] instead of job->init_image's
   * and job->mask's 8-bit pixels (which then only give the size h0 x w0). */
  const float *init_image01;
  const float *mask01;
  int first_step, last_step;       /* run sigmas [first_step, last_step] of the schedule; last 0 = all */
  gboolean latents_only;           /* stop before decoding */
  gboolean raw_output;             /* no pasting over the init image */
  EaselLatentFunc on_latent;
  gpointer on_latent_data;
} EaselPipelineRequest;

typedef struct {
  GPtrArray *images;               /* EaselImage*, batch_size x batch_count (empty if latents_only) */
  GPtrArray *parameters;           /* A1111 text per image */
  float *latents;                  /* the last batch's final latents (batch_size, 4, h, w), VE */
  gsize n_latents;
  float *decoded;                  /* the last batch's decoder output (batch_size, 3, H, W) in [-1, 1] */
  gsize n_decoded;
  GPtrArray *messages;             /* notices (char*), also sent through the progress callback */
  /* wall time of the phases, seconds: loading the networks and encoding the prompts (a UNet's weights
   * are converted at its first call: inside sampling), the sampler (steps_run denoiser steps), the
   * VAE (encoding an init image and decoding) */
  double seconds_prepare, seconds_sampling, seconds_vae;
  guint steps_run;
} EaselPipelineResult;

void easel_pipeline_result_clear (EaselPipelineResult *r);

gboolean easel_pipeline_run (EaselEngine *engine, EaselModel *model, const EaselPipelineRequest *req,
                             EaselProgressFunc progress, gpointer user_data, GCancellable *cancellable,
                             EaselPipelineResult *out, GError **error);

/* diffusers' timesteps ("leading", steps_offset 1) and the sigmas the k-diffusion samplers use
 * for them: out (steps + 1) = sigma (t_i) ..., then 0 (EULER, DPM) or sigma (0) (DDIM). */
gboolean easel_pipeline_diffusers_sigmas (const EaselModelSampling *ms, EaselDiffusersSchedule kind, guint steps,
                                          float *out, guint *timesteps, GError **error);

/* --- image helpers (A1111's inpainting), on float planes ------------------------------------- */

/* Gaussian blur of a (h, w) plane in place, A1111's mask blur: sigma = radius, kernel 2·round(2.5 σ)+1
 * (PIL GaussianBlur's extent), edges clamped. radius <= 0: nothing. */
void easel_pipeline_blur (float *plane, int w, int h, double radius);
/* Bilinear resize (half-pixel centres) of c planes (c, sh, sw) -> (c, dh, dw). */
void easel_pipeline_resize (const float *src, int c, int sw, int sh, float *dst, int dw, int dh);
/* A1111's only-masked crop: the bounding box of mask > 0 (w x h), grown by padding, then grown
 * to the aspect of tw x th within the image. FALSE for an empty mask. */
gboolean easel_pipeline_crop_region (const float *mask, int w, int h, int padding, int tw, int th, int *x0,
                                     int *y0, int *x1, int *y1);

G_END_DECLS
