/* engine/controlnet.h: ControlNet (diffusers ControlNetModel, lllyasviel's cldm ControlNet): a copy
 * of the UNet's encoder half (time embedding, conv_in, down blocks, middle block) that also sees a
 * control image through a small convolutional hint encoder, and turns each skip connection and the
 * middle block's output into a residual for the UNet through 1x1 "zero" convolutions.
 *
 * Files: a diffusers folder (config.json + diffusion_pytorch_model.safetensors: conv_in,
 * time_embedding, down_blocks, mid_block, controlnet_cond_embedding.{conv_in, blocks.k, conv_out},
 * controlnet_down_blocks.N, controlnet_mid_block) or lllyasviel's single file
 * ([control_model.]input_blocks / middle_block / time_embed as in an SD checkpoint,
 * input_hint_block.{0, 2, ..., 2n+2} with SiLUs at the odd indices, zero_convs.N.0,
 * middle_block_out.0), with or without the control_model. prefix. Both bind to one internal
 * naming (diffusers'); the encoder half is the UNet's own code (unet-private.h).
 *
 * Forward: sample (B, Cin, H, W), timestep (B), context (B, L, ctx) [, pooled, time ids for SDXL],
 * control image (B, 3, 8·H, 8·W) RGB in [0, 1] ->
 *   cond_embedding = hint encoder (image): conv_in, SiLU, then blocks k (3x3, stride 2 at odd k),
 *                    each followed by SiLU, then conv_out -> (B, C0, H, W); added to conv_in's output;
 *   down residual i = scale · zero_conv_i (skip i), one per UNet skip connection, in push order;
 *   mid residual    = scale · mid_zero_conv (middle block output).
 * They go to the UNet through EaselUnetExtras.down_residuals / mid_residual. */
#pragma once

#include <glib.h>

#include "checkpoint.h"
#include "graph.h"
#include "json.h"
#include "unet.h"

G_BEGIN_DECLS

/* As a pipeline applies it (diffusers' controlnet_conditioning_scale, control_guidance_start/end). */
typedef struct {
  float conditioning_scale;   /* multiplies every residual; 1.0 */
  float guidance_start;       /* fraction of the steps before which it is off; 0.0 */
  float guidance_end;         /* fraction of the steps after which it is off; 1.0 */
} EaselControlNetParams;

void     easel_controlnet_params_init (EaselControlNetParams *p);   /* 1.0, 0.0, 1.0 */
/* Whether step i (0-based) of n acts: diffusers keeps it unless i/n < start or (i+1)/n > end. */
gboolean easel_controlnet_params_active (const EaselControlNetParams *p, int step, int n_steps);

typedef struct _EaselControlNet EaselControlNet;

/* Reads a ControlNet from an opened checkpoint (folder or single file, either naming). hint: its
 * diffusers config.json or NULL (a folder reads its own); family: the base model's family, for the
 * attention-head convention when no hint says (SD 1.x: 8 heads). Errors name the file and tensor.
 * Weights stay in ck's mappings: free the ControlNet first. transfer full. */
EaselControlNet *easel_controlnet_new (const EaselCheckpoint *ck, const EaselJson *hint, EaselFamily family,
                                       GError **error);
void             easel_controlnet_free (EaselControlNet *cn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselControlNet, easel_controlnet_free)

const EaselUnetConfig *easel_controlnet_config (const EaselControlNet *cn);
int                    easel_controlnet_n_residuals (const EaselControlNet *cn);   /* down residuals */
/* Hint pixels per latent pixel: 2^(downsampling blocks of the hint encoder), 8 for real models. */
int                    easel_controlnet_hint_factor (const EaselControlNet *cn);

/* Whether cn fits unet: the same text width, label/add embedding (SD 1.x/2.x vs SDXL), levels and
 * widths, one residual per skip connection. The error names `name` (the ControlNet's file) and
 * what differs. */
gboolean easel_controlnet_check_unet (const EaselControlNet *cn, const EaselUnet *unet, const char *name,
                                      GError **error);

#define EASEL_CONTROLNET_MAX_RESIDUALS (1 + EASEL_UNET_MAX_LEVELS * 65)

typedef struct {
  EaselTensor *down[EASEL_CONTROLNET_MAX_RESIDUALS];   /* (B, C_i, h_i, w_i) */
  int n_down;
  EaselTensor *mid;                                    /* (B, C, h, w) */
  EaselTensor *cond_embedding;                         /* (B, C0, H, W), before the add */
} EaselControlNetOutputs;

/* Adds the ControlNet to g (shapes above; pooled and time_ids NULL unless SDXL); fills out.
 * Shape problems are graph errors. */
void easel_controlnet_build (EaselControlNet *cn, EaselGraph *g, EaselTensor *sample, EaselTensor *timestep,
                             EaselTensor *context, EaselTensor *pooled, EaselTensor *time_ids, EaselTensor *image,
                             float scale, EaselControlNetOutputs *out);
/* Points extras' down_residuals / mid_residual at out's tensors. */
void easel_controlnet_outputs_to_extras (EaselControlNetOutputs *out, EaselUnetExtras *extras);

G_END_DECLS
