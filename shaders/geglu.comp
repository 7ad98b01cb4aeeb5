/* shaders/geglu.comp: diffusers GEGLU after its projection: y (M, F) = x[:, :F] · gelu (x[:, F:]),
 * x (M, 2F), GELU with erf. */
#version 450
#include "common.glsl"

layout (local_size_x = 256) in;
layout (push_constant) uniform Push {    /* == EaselVkGegluPush */
  uint n, f, x_off, y_off;               /* n = M · F */
} p;
layout (binding = 0) readonly buffer X { ACT_T x[]; };
layout (binding = 1) writeonly buffer Y { ACT_T y[]; };

void
main ()
{
  const uint i = flat_index ();
  if (i >= p.n)
    return;
  const uint m = i / p.f, c = i % p.f;
  const uint row = p.x_off + m * 2u * p.f;
  y[p.y_off + i] = ACT_T (float (x[row + c]) * gelu_erf (float (x[row + p.f + c])));
}
