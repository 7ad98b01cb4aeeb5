/* shaders/avg_pool2d.comp: torch AvgPool2d (kernel k, stride k, ceil_mode=True, no padding) of
 * x (P, h, w) planes to (P, oh, ow), oh = ceil (h / k): a window cut by the bottom or right edge
 * averages the values it covers (as engine/cpu/backend-cpu.c). One thread per output, fp32 sum. */
#version 450
#include "common.glsl"

layout (local_size_x = 256) in;
layout (push_constant) uniform Push {    /* == EaselVkAvgPoolPush */
  uint n, h, w, oh;
  uint ow, k, x_off, y_off;
} p;
layout (binding = 0) readonly buffer X { ACT_T x[]; };
layout (binding = 1) writeonly buffer Y { ACT_T y[]; };

void
main ()
{
  const uint i = flat_index ();
  if (i >= p.n)
    return;
  const uint ox = i % p.ow, oy = (i / p.ow) % p.oh, plane = i / (p.ow * p.oh);
  const uint y0 = oy * p.k, x0 = ox * p.k, y1 = min (y0 + p.k, p.h), x1 = min (x0 + p.k, p.w);
  float sum = 0.0;
  for (uint a = y0; a < y1; a++)
    for (uint b = x0; b < x1; b++)
      sum += float (x[p.x_off + (plane * p.h + a) * p.w + b]);
  y[p.y_off + i] = ACT_T (sum / float ((y1 - y0) * (x1 - x0)));
}
