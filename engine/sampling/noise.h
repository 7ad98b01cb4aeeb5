/* engine/sampling/noise.h: where the stochastic samplers' noise comes from. A noise source answers
 * the samplers' noise callback (EaselNoiseFunc: unit-variance noise for the step from sigma to
 * sigma_next, n values), so a sampler never knows which one it has:
 *
 *  - torch: one torch.randn of n values per call from a torch-compatible generator (engine/rng.h),
 *    seeded the way ComfyUI's default_noise_sampler or A1111's ImageRNG seeds it;
 *  - Brownian tree: the increment W(sigma_next) - W(sigma) of one Brownian motion W per element,
 *    divided by sqrt|sigma_next - sigma| (k-diffusion's BrownianTreeNoiseSampler), deterministic given
 *    the seed and consistent between calls. It is Easel's own tree, not torchsde's: the same seed
 *    gives other numbers than ComfyUI/A1111 (bit-exact torchsde is out of scope), the same law;
 *  - replay: a recorded list, the k-th call returning entry k (what the golden data's noise_list is).
 *
 * Any source can record what it returns, so a run can be replayed exactly.
 *
 * Brownian tree layout: W(sigma_min) = 0 and W(sigma_max) ~ N(0, sigma_max - sigma_min). The
 * interval is halved `depth` times, depth the least with leaves no wider than 1e-6 (torchsde's
 * default tolerance; at most 40 halvings); the value at each midpoint is the Brownian bridge between
 * its interval's ends, (W(a) + W(b)) / 2 + sqrt(b - a) / 2 * z, with z drawn from a SplitMix64
 * counter stream keyed by (seed, depth, index). A query point inside a leaf [a, b] gets the exact
 * bridge W(a) + (t - a) / (b - a) (W(b) - W(a)) + sqrt((t - a)(b - t) / (b - a)) * z, keyed by
 * (seed, leaf, t). So W(t) is one fixed value per t: querying an interval twice gives the same
 * noise, increments over [a, b] and [b, c] add up to the one over [a, c] (to rounding), and
 * increments between points in different leaves have exactly the variance |t1 - t0|. Only two
 * points closer than a leaf width (1e-6) are not jointly Brownian (their increment's variance is
 * off), which no sampler's step comes near. Query points may lie up to 1e-6 outside
 * [sigma_min, sigma_max] (they are clamped); farther out is an error. W is kept in float64. */
#pragma once

#include <glib.h>

#include "engine/rng.h"
#include "samplers.h"

G_BEGIN_DECLS

typedef struct _EaselNoiseSource EaselNoiseSource;

typedef enum {
  /* ComfyUI default_noise_sampler: a fresh generator seeded seed + 1 on the CPU (ComfyUI adds 1
   * there; seed 2^64 - 1 wraps to 0, whose low 32 bits are what the CPU generator would use) or
   * seed on CUDA; call k is the k-th torch.randn of n values */
  EASEL_NOISE_COMFYUI,
  /* A1111 ImageRNG (eta noise seed delta 0, no variation seed): the generator that drew the
   * initial noise (seeded seed, n values) goes on, so call k is its (k + 1)-th randn of n values */
  EASEL_NOISE_A1111,
} EaselNoiseConvention;

/* n: values per call (the whole latent batch); one generator for the batch. transfer full. */
EaselNoiseSource *easel_noise_source_new_torch (EaselNoiseConvention convention, EaselRngKind kind, guint64 seed,
                                                gsize n);
/* Each call draws n values from rng (transfer full: the source frees it). */
EaselNoiseSource *easel_noise_source_new_from_rng (EaselRng *rng, gsize n);
/* A Brownian tree over [sigma_min, sigma_max] (0 <= sigma_min <= sigma_max, finite), n values
 * per call. transfer full; NULL with an error for a bad interval. */
EaselNoiseSource *easel_noise_source_new_brownian (guint64 seed, double sigma_min, double sigma_max, gsize n,
                                                   GError **error);
/* Replays values (n_calls * n floats, copied): call k returns values[k * n .. (k + 1) * n); a call
 * past the end is an error. transfer full. */
EaselNoiseSource *easel_noise_source_new_replay (const float *values, gsize n_calls, gsize n);
/* What ComfyUI (and A1111) give `info` when no noise sampler is passed: the Brownian tree over the
 * sigma list's smallest positive sigma and its largest for the samplers flagged
 * EASEL_SAMPLER_BROWNIAN (dpmpp_sde, dpmpp_2m_sde, dpmpp_2m_sde_heun, dpmpp_3m_sde and their _gpu
 * forms), torch noise by `convention` and `kind` for the others. sigmas: n_sigmas values. */
EaselNoiseSource *easel_noise_source_new_default (const EaselSamplerInfo *info, EaselNoiseConvention convention,
                                                  EaselRngKind kind, guint64 seed, gsize n, const float *sigmas,
                                                  gsize n_sigmas, GError **error);
void easel_noise_source_free (EaselNoiseSource *source);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselNoiseSource, easel_noise_source_free)

gsize easel_noise_source_n (const EaselNoiseSource *source);
/* The next noise for the step from sigma to sigma_next -> out (n values). */
gboolean easel_noise_source_sample (EaselNoiseSource *source, double sigma, double sigma_next, float *out,
                                    GError **error);
/* easel_noise_source_sample as an EaselNoiseFunc: set ctx.noise to it and ctx.noise_data to the source. */
gboolean easel_noise_source_func (gpointer source, double sigma, double sigma_next, float *out, GError **error);

/* Recording: from now on every call's values (n each) are appended to a list. */
void         easel_noise_source_set_recording (EaselNoiseSource *source, gboolean record);
/* The recorded values (n_calls * n floats; owned by the source) and their count of calls. */
const float *easel_noise_source_recorded (const EaselNoiseSource *source, gsize *n_calls);

G_END_DECLS
