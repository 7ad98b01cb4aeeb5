/* shaders/group_norm.comp: nn.GroupNorm on x (N, C, HW), G groups of C/G channels, biased
 * variance from the centered values (two passes), optional affine gamma/beta (C), optional fused
 * SiLU. One workgroup per (n, group). As the CPU backend (engine/cpu/norm.c), the mean is kept as
 * shift + dm with shift = the group's first value, and values are normalized as
 * ((x - shift) - dm) · rstd, so a mean far from zero (large-magnitude VAE activations) costs no
 * precision. With -DSTATS it is EASEL_OP_GROUP_STATS instead: y (N, G, 2) gets each group's
 * [mean, M2] (M2 = Σ (x - mean)²) and nothing is normalized. fp32 throughout. */
#version 450
#include "common.glsl"

layout (local_size_x = 256) in;
layout (push_constant) uniform Push {    /* == EaselVkGroupNormPush */
  uint C, HW, G, n_groups;               /* n_groups = N · G */
  uint x_off, g_off, b_off, y_off;
  uint has_gamma, has_beta, silu;
  float eps;
} p;
layout (binding = 0) readonly buffer X { ACT_T x[]; };
#ifdef STATS
layout (binding = 1) writeonly buffer Y { float y[]; };
#else
layout (binding = 1) readonly buffer Gamma { float gamma[]; };
layout (binding = 2) readonly buffer Beta { float beta[]; };
layout (binding = 3) writeonly buffer Y { ACT_T y[]; };
#endif

#include "reduce.glsl"

void
main ()
{
  const uint grp = flat_group ();
  if (grp >= p.n_groups)
    return;                              /* uniform across the workgroup */
  const uint tid = gl_LocalInvocationID.x;
  const uint cpg = p.C / p.G, count = cpg * p.HW;
  const uint base = grp * count;         /* groups are contiguous in NCHW */
  const uint c0 = (grp % p.G) * cpg;

  const float shift = float (x[p.x_off + base]);
  float s = 0.0;
  for (uint i = tid; i < count; i += 256u)
    s += float (x[p.x_off + base + i]) - shift;
  const float dm = workgroup_sum (s) / float (count);
  float v = 0.0;
  for (uint i = tid; i < count; i += 256u) {
    const float d = (float (x[p.x_off + base + i]) - shift) - dm;
    v += d * d;
  }
  const float m2 = workgroup_sum (v);
#ifdef STATS
  if (tid == 0u) {
    y[p.y_off + 2u * grp] = shift + dm;
    y[p.y_off + 2u * grp + 1u] = m2;
  }
#else
  const float rstd = inversesqrt (m2 / float (count) + p.eps);
  for (uint i = tid; i < count; i += 256u) {
    const uint c = c0 + i / p.HW;
    float r = ((float (x[p.x_off + base + i]) - shift) - dm) * rstd;
    if (p.has_gamma != 0u)
      r *= gamma[p.g_off + c];
    if (p.has_beta != 0u)
      r += beta[p.b_off + c];
    if (p.silu != 0u)
      r = r / (1.0 + exp (-r));
    y[p.y_off + base + i] = ACT_T (r);
  }
#endif
}
