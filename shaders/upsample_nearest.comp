/* shaders/upsample_nearest.comp: F.interpolate (mode='nearest') of x (P, h, w) planes to (P, oh, ow):
 * source index min (floor (i · (in / out)), in - 1) with the scale in fp32 as torch computes it,
 * exactly i / 2 for 2x (the C side passes the scales). */
#version 450
#include "common.glsl"

layout (local_size_x = 256) in;
layout (push_constant) uniform Push {    /* == EaselVkUpsamplePush */
  uint n, h, w, oh;
  uint ow, x_off, y_off;
  float sh, sw;                          /* in / out per axis */
} p;
layout (binding = 0) readonly buffer X { ACT_T x[]; };
layout (binding = 1) writeonly buffer Y { ACT_T y[]; };

uint
nearest_src (uint i, uint n_in, uint n_out, float s)
{
  if (n_out == 2u * n_in)
    return i >> 1;
  return min (uint (floor (float (i) * s)), n_in - 1u);
}

void
main ()
{
  const uint i = flat_index ();
  if (i >= p.n)
    return;
  const uint ox = i % p.ow, oy = (i / p.ow) % p.oh, plane = i / (p.ow * p.oh);
  const uint sy = nearest_src (oy, p.h, p.oh, p.sh), sx = nearest_src (ox, p.w, p.ow, p.sw);
  y[p.y_off + i] = x[p.x_off + (plane * p.h + sy) * p.w + sx];
}
