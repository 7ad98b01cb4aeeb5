/* shaders/unary.comp: elementwise ops, one variant per -DOP_*: SiLU, GELU (erf), GELU (tanh),
 * quick-GELU, ReLU and scale (x · s). fp32 math. */
#version 450
#include "common.glsl"

layout (local_size_x = 256) in;
layout (push_constant) uniform Push {    /* == EaselVkUnaryPush */
  uint n, x_off, y_off;
  float s;
} p;
layout (binding = 0) readonly buffer X { ACT_T x[]; };
layout (binding = 1) writeonly buffer Y { ACT_T y[]; };

void
main ()
{
  const uint i = flat_index ();
  if (i >= p.n)
    return;
  const float v = float (x[p.x_off + i]);
#if defined(OP_SILU)
  const float r = v / (1.0 + exp (-v));
#elif defined(OP_GELU)
  const float r = gelu_erf (v);
#elif defined(OP_GELU_TANH)
  const float r = 0.5 * v * (1.0 + tanh_stable (0.7978845608028654 * (v + 0.044715 * v * v * v)));
#elif defined(OP_QUICK_GELU)
  const float r = v / (1.0 + exp (-1.702 * v));
#elif defined(OP_RELU)
  const float r = v > 0.0 ? v : 0.0;    /* NaN -> 0, as the CPU's x > 0 ? x : 0 */
#elif defined(OP_SCALE)
  const float r = v * p.s;
#else
#error "unary.comp: no OP_ defined"
#endif
  y[p.y_off + i] = ACT_T (r);
}
