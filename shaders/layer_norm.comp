/* shaders/layer_norm.comp: nn.LayerNorm over the last dim of x (M, D), biased variance from the
 * centered values, optional gamma/beta (D). One workgroup per row. */
#version 450
#include "common.glsl"

layout (local_size_x = 256) in;
layout (push_constant) uniform Push {    /* == EaselVkLayerNormPush */
  uint M, D, x_off, g_off;
  uint b_off, y_off, has_gamma, has_beta;
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
  const uint row = flat_group ();
  if (row >= p.M)
    return;
  const uint tid = gl_LocalInvocationID.x, base = row * p.D;
  float s = 0.0;
  for (uint i = tid; i < p.D; i += 256u)
    s += float (x[p.x_off + base + i]);
  const float mean = workgroup_sum (s) / float (p.D);
  float v = 0.0;
  for (uint i = tid; i < p.D; i += 256u) {
    const float d = float (x[p.x_off + base + i]) - mean;
    v += d * d;
  }
  const float rstd = inversesqrt (workgroup_sum (v) / float (p.D) + p.eps);
  for (uint i = tid; i < p.D; i += 256u) {
    float r = (float (x[p.x_off + base + i]) - mean) * rstd;
    if (p.has_gamma != 0u)
      r *= gamma[p.g_off + i];
    if (p.has_beta != 0u)
      r += beta[p.b_off + i];
    y[p.y_off + base + i] = ACT_T (r);
  }
}
