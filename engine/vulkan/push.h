/* engine/vulkan/push.h: the C mirrors of the shaders' push-constant blocks (shaders/NAME.comp, the
 * comment above each says which). Fields are 32-bit and in the shader's order; each fits the
 * 128 bytes every device guarantees (STYLE.md V7). Offsets are in elements of the bound range. */
#pragma once

#include <glib.h>

typedef struct { guint32 n, nd, x_off, y_off, shape[8], stride[8]; } EaselVkCopyPush;
typedef struct { guint32 n, x_off, y_off; float s; } EaselVkUnaryPush;
typedef struct { guint32 n, nd, a_off, b_off, y_off, pad0, pad1, pad2, shape[8], bstride[8]; } EaselVkBinaryPush;
typedef struct { guint32 n, f, x_off, y_off; } EaselVkGegluPush;
typedef struct { guint32 M, N, K, ldw, x_off, w_off, b_off, y_off, has_bias, vec, kc, split, reduce; } EaselVkLinearPush;
typedef struct {
  guint32 M, N, K, c_in, h, w, kh, kw, stride, pad_h, pad_w, out_h, out_w, x_off, w_off, b_off, y_off, has_bias, vec, kc,
    split, reduce;
} EaselVkConv2dPush;
typedef struct {
  guint32 C, HW, G, n_groups, x_off, g_off, b_off, y_off, has_gamma, has_beta, silu;
  float eps;
} EaselVkGroupNormPush;
typedef struct {
  guint32 n, C, HW, G, x_off, g_off, b_off, s_off, y_off, has_gamma, has_beta, silu;
} EaselVkGroupNormApplyPush;
typedef struct {
  guint32 M, D, x_off, g_off, b_off, y_off, has_gamma, has_beta;
  float eps;
} EaselVkLayerNormPush;
typedef struct {
  guint32 lq, lk, d, dv, ld_q, ld_k, ld_v, ld_o, q_off, k_off, v_off, o_off, causal;
  float scale;
} EaselVkAttentionPush;
typedef struct { guint32 n, h, w, oh, ow, x_off, y_off; float sh, sw; } EaselVkUpsamplePush;
typedef struct { guint32 n, ca, cb, inner, a_off, b_off, y_off; } EaselVkConcatPush;
typedef struct { guint32 n, dim, half_, t_off, y_off; } EaselVkTimestepPush;
typedef struct { guint32 n, D, V, ld, t_off, i_off, y_off; } EaselVkGetRowsPush;
typedef struct { guint32 n, h, w, oh, ow, k, x_off, y_off; } EaselVkAvgPoolPush;

G_STATIC_ASSERT (sizeof (EaselVkCopyPush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkUnaryPush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkBinaryPush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkGegluPush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkLinearPush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkConv2dPush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkGroupNormPush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkLayerNormPush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkAttentionPush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkUpsamplePush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkConcatPush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkTimestepPush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkGetRowsPush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkGroupNormApplyPush) <= 128);
G_STATIC_ASSERT (sizeof (EaselVkAvgPoolPush) <= 128);
