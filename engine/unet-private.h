/* engine/unet-private.h: the UNet's bound weights, shared by unet-config.c (which reads the
 * configuration off the tensors and binds them) and unet.c (which builds the forward graph). */
#pragma once

#include "patch.h"
#include "unet.h"
#include "weights.h"

G_BEGIN_DECLS

/* One weight as the graph sees it: a checkpoint tensor in place, or a buffer the UNet owns
 * (fused projections, F32). data NULL: absent (optional biases, shortcuts). */
typedef struct {
  const char *name;
  EaselDType dtype;
  int n_dims;
  gint64 shape[4];
  const void *data;
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
};

G_END_DECLS
