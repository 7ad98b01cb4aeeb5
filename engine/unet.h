/* engine/unet.h: the denoising UNet of SD 1.x, SD 2.x (epsilon and v), SDXL base and refiner and
 * their 9-channel inpainting variants: one network whose configuration is read off the
 * checkpoint's tensors (no per-family copy), following diffusers' UNet2DConditionModel and ldm's
 * openaimodel.UNetModel, which compute the same function.
 *
 * Both namings (original/ldm "model.diffusion_model.input_blocks.N.M..." and diffusers
 * "unet/down_blocks...") bind to one internal naming, diffusers' module paths (unet-config.c).
 * What the tensors cannot tell (attention heads; SDXL's sinusoid width per time id when no text
 * encoder sits beside the UNet) comes from an optional diffusers config.json given as a hint, else
 * from the conventions of the real models: SD 1.x 8 heads, SD 2.x/SDXL head width 64, 256-wide
 * time-id sinusoids.
 *
 * Forward: sample (B, Cin, H, W), timestep (B) float (fractional timesteps allowed), context
 * (B, L, ctx) with L any number of tokens (77·k), and for SDXL pooled (B, P) and time ids (B, n)
 * -> (B, Cout, H, W). Any H, W >= 1: the upsamplers resize to the skip connection's size. */
#pragma once

#include <glib.h>

#include "backend.h"
#include "checkpoint.h"
#include "graph.h"
#include "json.h"

G_BEGIN_DECLS

#define EASEL_UNET_MAX_LEVELS 8

typedef struct {
  gint64 in_channels;              /* conv_in input: 4, 9 for inpainting */
  gint64 out_channels;             /* conv_out output: 4 */
  gint64 model_channels;           /* conv_in output = channels of level 0 (320) */
  int n_levels;                    /* resolution levels (downsamplers + 1) */
  int n_res;                       /* resnets per level on the way down (layers_per_block); up: n_res + 1 */
  gint64 channels[EASEL_UNET_MAX_LEVELS];      /* per level (320, 640, 1280, 1280) */
  int depth[EASEL_UNET_MAX_LEVELS];            /* transformer blocks per down-level transformer; 0: no attention */
  int heads[EASEL_UNET_MAX_LEVELS];            /* attention heads per level (also its up level) */
  int mid_depth;                   /* 0: the middle block has no transformer */
  int mid_heads;
  gboolean linear_proj;            /* proj_in/out Linear (SD 2.x, SDXL) or 1x1 conv (SD 1.x) */
  gint64 context_dim;              /* attn2 key/value input width; 0 when no level attends */
  gint64 time_proj_dim;            /* sinusoid width of the timestep (= model_channels) */
  gint64 time_embed_dim;           /* time MLP width (4 · model_channels) */
  gint64 adm_in;                   /* label/add embedding input width (pooled + ids); 0 = none */
  gint64 time_id_width;            /* sinusoid width per time id (256 real SDXL); 0 = from the inputs */
  int groups;                      /* GroupNorm groups (32) */
  float norm_eps;                  /* resnets and the output norm (1e-5); transformers' GroupNorm 1e-6 */
} EaselUnetConfig;

typedef struct _EaselUnet EaselUnet;

/* Reads the UNet of an opened checkpoint (single file, diffusers folder or UNet-only file) and
 * binds every weight with shape checks. hint: the UNet's diffusers config.json, or NULL (a
 * diffusers folder then reads its own unet/config.json). Fails with an error naming the file and
 * tensor when the UNet is missing, inconsistent or of an unsupported kind. Self-attention q, k, v
 * (and cross-attention k, v) are fused into F32 matrices the UNet owns; every other weight stays
 * in ck's mappings: free the UNet before ck. transfer full. */
EaselUnet *easel_unet_new (const EaselCheckpoint *ck, const EaselJson *hint, GError **error);
void       easel_unet_free (EaselUnet *u);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselUnet, easel_unet_free)

const EaselUnetConfig *easel_unet_config (const EaselUnet *u);
/* Number of skip connections (ControlNet down residuals): 1 + n_levels · n_res + n_levels - 1. */
int easel_unet_n_skips (const EaselUnet *u);

/* Hooks for adapters (ControlNet, T2I-Adapter, IP-Adapter); every field may be NULL/0. */
typedef struct {
  /* Added to the skip connections in the order they are made (conv_in output first), each
   * (B, C, h, w) of that skip; n_down_residuals == easel_unet_n_skips() or 0. */
  EaselTensor **down_residuals;
  int n_down_residuals;
  EaselTensor *mid_residual;                 /* added to the middle block's output */
  /* T2I-Adapter features, one per down level from the first (n_down_block_additions <= levels),
   * each (B, C, h, w) of that level's output: added after the level's last resnet/transformer and
   * before its downsampler (levels without attention: after the downsampler, as diffusers adds
   * down_intrablock_additional_residuals); the skip connection pushed there contains it. */
  EaselTensor **down_block_additions;
  int n_down_block_additions;
  /* Called in every cross-attention (index counts transformer blocks in execution order) with
   * the normalized hidden states' query q (B, HW, C) and heads; a tensor (B, HW, C) returned is
   * added to the attention output before to_out (IP-Adapter's decoupled attention). */
  EaselTensor *(*cross_attention_extra) (gpointer user_data, EaselGraph *g, int index, EaselTensor *q, int heads);
  gpointer user_data;
} EaselUnetExtras;

/* Intermediates a caller may want to see (golden tests); each is marked as a graph output. */
typedef struct {
  EaselTensor *time_proj;          /* (B, time_proj_dim) */
  EaselTensor *time_embedding;     /* (B, time_embed_dim) */
  EaselTensor *add_time_proj;      /* (B, n · time_id_width), SDXL only */
  EaselTensor *add_embedding;      /* (B, time_embed_dim), SDXL only */
} EaselUnetIntermediates;

/* Adds the forward pass to g: sample (B, Cin, H, W), timestep (B), context (B, L, ctx),
 * pooled (B, P) and time_ids (B, n) (both NULL unless adm_in > 0) -> (B, Cout, H, W).
 * extras and inter may be NULL. Shape problems are graph errors (easel_graph_error). */
EaselTensor *easel_unet_build (EaselUnet *u, EaselGraph *g, EaselTensor *sample, EaselTensor *timestep,
                               EaselTensor *context, EaselTensor *pooled, EaselTensor *time_ids,
                               const EaselUnetExtras *extras, EaselUnetIntermediates *inter);

/* Runs one forward pass on host data: sample (B, Cin, H, W), timestep (B), context (B, L, ctx),
 * pooled (B, P) and time_ids (B, n) for SDXL (else NULL, 0) -> out (B, Cout, H, W). */
gboolean easel_unet_forward (EaselUnet *u, EaselBackend *backend, const float *sample, gint64 B, gint64 H,
                             gint64 W, const float *timestep, const float *context, gint64 L,
                             const float *pooled, gint64 P, const float *time_ids, gint64 n_ids, float *out,
                             GError **error);

/* The weights a LoRA may patch (patch.h): every Linear and conv weight under its diffusers module
 * path, the fused q/k/v and k/v as row blocks of their fused F32 copies. GPtrArray of
 * EaselPatchTarget*, owned by the UNet. */
GPtrArray *easel_unet_patch_targets (EaselUnet *u);

/* --- unet-config.c ----------------------------------------------------------------------------- */

/* The internal (diffusers) name of an original/ldm UNet key (prefix removed), given resnets per
 * level: "input_blocks.4.1.proj_in.weight" -> "down_blocks.1.attentions.0.proj_in.weight" (n_res 2).
 * NULL when the key is no UNet weight. transfer full. */
char *easel_unet_rename_original (const char *key, int n_res);

/* Checkpoint keys under the UNet's prefix that it does not use (for --verbose). transfer full. */
GPtrArray *easel_unet_unused (const EaselUnet *u);

G_END_DECLS
