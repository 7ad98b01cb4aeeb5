/* engine/pipeline-adapters.h: the adapters of a job (EaselJobParams' ControlNets, T2I-Adapters and
 * IP-Adapter) as the pipeline applies them, following diffusers' StableDiffusionControlNetPipeline,
 * StableDiffusionAdapterPipeline and load_ip_adapter:
 *  - ControlNet: each gets its hint at the job's size (3, H, W) in [0, 1] (Canny edges when asked),
 *    the same sample, timestep and text context as the UNet row it goes with (cond and uncond rows
 *    alike), and acts at step i of n unless i/n < start or (i + 1)/n > end; the residuals of
 *    several add up, each scaled by its strength;
 *  - T2I-Adapter: features computed once from the image (× strength, several summed) and added to
 *    every UNet row at every step;
 *  - IP-Adapter: each reference image goes through CLIPImageProcessor and the image encoder once;
 *    cond rows get the projection of their embeddings (image_embeds, or the penultimate hidden state
 *    for Plus), concatenated over the images; uncond rows the projection of zero embeddings (plain)
 *    or of the encoder's penultimate state for an all-zero image (Plus).
 * Everything is checked against the base UNet when loaded; errors name the adapter file. */
#pragma once

#include "pipeline.h"
#include "unet.h"

G_BEGIN_DECLS

typedef struct _EaselAdapters EaselAdapters;

/* The job's adapters for unet (the base stage's UNet, of family fam), with hints at H x W pixels.
 * cn_images01 / t2i_images01: per unit, a (3, H, W) image in [0, 1] used instead of the unit's
 * 8-bit image (golden runs), or NULL. Returns NULL without error when the job has none.
 * transfer full. */
EaselAdapters *easel_adapters_new (const EaselJobParams *job, EaselUnet *unet, EaselFamily fam, EaselBackend *be,
                                   gint64 H, gint64 W, const float *const *cn_images01,
                                   const float *const *t2i_images01, GError **error);
void           easel_adapters_free (EaselAdapters *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselAdapters, easel_adapters_free)

/* easel_unet_forward with the adapters: sample (B, Cin, h, w), timestep (B), context (B, L, ctx),
 * pooled (B, P) and time_ids (B, n) for SDXL -> out (B, Cout, h, w); uncond[j]: row j is an
 * unconditional row; step of n_steps for the ControlNets' windows. */
gboolean easel_adapters_unet_forward (EaselAdapters *a, EaselUnet *u, EaselBackend *be, const float *sample, gint64 B,
                                      gint64 h, gint64 w, const float *timestep, const float *context, gint64 L,
                                      const float *pooled, gint64 P, const float *time_ids, gint64 n_ids,
                                      const gboolean *uncond, int step, int n_steps, float *out, GError **error);

/* A unit's hint image at W x H as (3, H, W) floats in [0, 1]: resized (bilinear) when its size
 * differs, then with canny turned into Canny edges (OpenCV's, RGB, L1) repeated on 3 channels.
 * transfer full. */
float *easel_adapters_hint (const EaselImage *image, gboolean canny, double low, double high, gint64 W, gint64 H,
                            GError **error);

G_END_DECLS
