/* engine/unet-private.h: the UNet's bound weights, shared by unet-config.c (which reads the
 * configuration off the tensors and binds them) and unet.c (which builds the forward graph). */
#pragma once

#include "patch.h"
#include "unet.h"
#include "weights.h"

G_BEGIN_DECLS

/* One weight as the graph sees it: a checkpoint tensor in place, or a buffer the UNet owns
 * (fused projections, F32). data NULL: absent (optional biases, shortcuts). lowrank: run-time LoRA
 * adapters of a matrix or conv weight (patch.h; set by a LoRA stack, NULL: none). */
typedef struct {
  const char *name;
  EaselDType dtype;
  int n_dims;
  gint64 shape[4];
  const void *data;
  const EaselPatchLowRank *lowrank;
} EaselUnetW;

typedef struct {
  EaselUnetW norm1_w, norm1_b, conv1_w, conv1_b, temb_w, temb_b, norm2_w, norm2_b, conv2_w, conv2_b;
  EaselUnetW skip_w, skip_b;       /* 1x1 conv where the channel count changes */
} EaselUnetRes;

typedef struct {
  EaselUnetW norm1_w, norm1_b, norm2_w, norm2_b, norm3_w, norm3_b;
  EaselUnetW qkv_w, qkv_b;         /* attn1 to_q | to_k | to_v fused: (3C, C) */
  EaselUnetW out1_w, out1_b;
  EaselUnetW q2_w, q2_b;           /* attn2 to_q (C, C) */
  EaselUnetW kv2_w, kv2_b;         /* attn2 to_k | to_v fused: (2C, ctx) */
  EaselUnetW out2_w, out2_b;
  EaselUnetW ff1_w, ff1_b;         /* GEGLU projection (2F, C) */
  EaselUnetW ff2_w, ff2_b;         /* (C, F) */
} EaselUnetBlock;

typedef struct {
  EaselUnetW norm_w, norm_b;
  EaselUnetW proj_in_w, proj_in_b, proj_out_w, proj_out_b;   /* as (C, C) matrices either way */
  int depth, heads;
  EaselUnetBlock *blocks;
} EaselUnetTransformer;

typedef struct {
  EaselUnetRes *res;                /* n_res down, n_res + 1 up */
  EaselUnetTransformer **attn;      /* same count; NULL entries where the level does not attend */
  EaselUnetW sample_w, sample_b;    /* downsampler (stride 2) or upsampler conv; absent at the ends */
} EaselUnetLevel;

struct _EaselUnet {
  EaselUnetConfig cfg;
  EaselWeights *weights;
  GPtrArray *owned;                 /* buffers (fused weights, names) freed with the UNet */
  GPtrArray *targets;               /* EaselPatchTarget*: every matrix and conv weight (LoRA) */
  EaselUnetW conv_in_w, conv_in_b, conv_out_w, conv_out_b, norm_out_w, norm_out_b;
  EaselUnetW time1_w, time1_b, time2_w, time2_b;
  EaselUnetW add1_w, add1_b, add2_w, add2_b;
  EaselUnetLevel down[EASEL_UNET_MAX_LEVELS];
  EaselUnetLevel up[EASEL_UNET_MAX_LEVELS];    /* by level (up[0] is the last to run) */
  EaselUnetRes mid_res[2];
  EaselUnetTransformer *mid_attn;
  gboolean encoder_only;            /* a ControlNet's copy: no up blocks, no output norm and conv */
};

/* "12.rest" -> 12 and *rest = "rest"; -1 when key does not start with digits and a dot. */
int easel_unet_take_index (const char *key, const char **rest);

/* Reads the configuration off weights (internal naming; transfer full, freed with the UNet even on
 * failure) and binds them. family and time_id_width stand in for what the tensors cannot tell
 * (hint overrides). encoder_only: only conv_in, the time (and label) embedding, the down blocks
 * and the middle block, as a ControlNet has them; cfg.out_channels is then 0. path names the file
 * in errors. */
EaselUnet *easel_unet_new_part (EaselWeights *weights, const char *path, EaselFamily family, gint64 time_id_width,
                                const EaselJson *hint, gboolean encoder_only, GError **error);

/* The first half of easel_unet_build: time embedding, conv_in (+ conv_in_add, a ControlNet's hint
 * embedding (B, C0, H, W), when not NULL), the down blocks (with extras' T2I additions) and the
 * middle block. skips receives the easel_unet_n_skips() skip connections (caller's array, as made,
 * before extras' down residuals); returns the middle block's output (B, C, h, w), before extras'
 * mid residual. extras (only the down-block additions and the cross-attention hook are used here)
 * and inter may be NULL. */
EaselTensor *easel_unet_build_encoder (EaselUnet *u, EaselGraph *g, EaselTensor *sample, EaselTensor *timestep,
                                       EaselTensor *context, EaselTensor *pooled, EaselTensor *time_ids,
                                       EaselTensor *conv_in_add, const EaselUnetExtras *extras,
                                       EaselUnetIntermediates *inter, EaselTensor **skips);

G_END_DECLS
