/* shaders/group_norm.comp: nn.GroupNorm on x (N, C, HW), G groups of C/G channels, biased
 * variance from the centered values (two passes), optional affine gamma/beta (C), optional fused
 * SiLU. One workgroup per (n, group). */
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
layout (binding = 1) readonly buffer Gamma { float gamma[]; };
layout (binding = 2) readonly buffer Beta { float beta[]; };
layout (binding = 3) writeonly buffer Y { ACT_T y[]; };

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

  float s = 0.0;
  for (uint i = tid; i < count; i += 256u)
    s += float (x[p.x_off + base + i]);
  const float mean = workgroup_sum (s) / float (count);
  float v = 0.0;
  for (uint i = tid; i < count; i += 256u) {
    const float d = float (x[p.x_off + base + i]) - mean;
    v += d * d;
  }
  const float rstd = inversesqrt (workgroup_sum (v) / float (count) + p.eps);
  for (uint i = tid; i < count; i += 256u) {
    const uint c = c0 + i / p.HW;
    float r = (float (x[p.x_off + base + i]) - mean) * rstd;
    if (p.has_gamma != 0u)
      r *= gamma[p.g_off + c];
    if (p.has_beta != 0u)
      r += beta[p.b_off + c];
    if (p.silu != 0u)
      r = r / (1.0 + exp (-r));
    y[p.y_off + base + i] = ACT_T (r);
  }
}
