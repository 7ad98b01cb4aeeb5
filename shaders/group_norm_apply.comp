/* shaders/group_norm_apply.comp: EASEL_OP_GROUP_NORM_APPLY, the second half of a GroupNorm whose
 * statistics were gathered elsewhere (the VAE's exact tiling): x (N, C, HW), stats (N, G, 2) holding
 * [mean, rstd] per group, y = (x - mean) · (rstd · gamma[c]) + beta[c], then SiLU if silu; gamma
 * and beta (C) optional. Elementwise, one thread per value, fp32, in the CPU backend's order. */
#version 450
#include "common.glsl"

layout (local_size_x = 256) in;
layout (push_constant) uniform Push {    /* == EaselVkGroupNormApplyPush */
  uint n, C, HW, G;
  uint x_off, g_off, b_off, s_off;
  uint y_off, has_gamma, has_beta, silu;
} p;
layout (binding = 0) readonly buffer X { ACT_T x[]; };
layout (binding = 1) readonly buffer Gamma { float gamma[]; };
layout (binding = 2) readonly buffer Beta { float beta[]; };
layout (binding = 3) readonly buffer Stats { float stats[]; };
layout (binding = 4) writeonly buffer Y { ACT_T y[]; };

void
main ()
{
  const uint i = flat_index ();
  if (i >= p.n)
    return;
  const uint nc = i / p.HW, c = nc % p.C, s = (nc / p.C) * p.G + c / (p.C / p.G);
  const float a = stats[p.s_off + 2u * s + 1u] * (p.has_gamma != 0u ? gamma[p.g_off + c] : 1.0);
  float r = (float (x[p.x_off + i]) - stats[p.s_off + 2u * s]) * a;
  if (p.has_beta != 0u)
    r += beta[p.b_off + c];
  if (p.silu != 0u)
    r = r / (1.0 + exp (-r));
  y[p.y_off + i] = ACT_T (r);
}
