/* shaders/timestep_embedding.comp: diffusers get_timestep_embedding (flip_sin_to_cos, shift 0,
 * max period 10000): y (N, dim) = [cos (t f) | sin (t f)], f_i = exp (-ln (10000) · i / half). The
 * exponent is formed in fp32 as diffusers does. cos/sin of large arguments (t up to 1000) lose
 * accuracy in GLSL's fp32 builtins, so the argument is reduced modulo 2π in two parts first. */
#version 450
#include "common.glsl"

layout (local_size_x = 256) in;
layout (push_constant) uniform Push {    /* == EaselVkTimestepPush */
  uint n, dim, half_, t_off;
  uint y_off;
} p;
layout (binding = 0) readonly buffer T { ACT_T t[]; };
layout (binding = 1) writeonly buffer Y { ACT_T y[]; };

void
main ()
{
  const uint i = flat_index ();
  if (i >= p.n)
    return;
  const uint row = i / p.dim, c = i % p.dim;
  float r = 0.0;
  if (c < 2u * p.half_) {
    const uint fi = c % p.half_;
    const float exponent = -9.2103403719761836 * float (fi) / float (p.half_);
    const float arg = float (t[p.t_off + row]) * exp (exponent);
    /* arg - 2π·round (arg / 2π), 2π split in a head exact in fp32 and a tail */
    const float kq = round (arg * 0.15915494309189535);
    const float red = (arg - kq * 6.28125) - kq * 1.9353071795864769e-3;
    r = c < p.half_ ? cos (red) : sin (red);
  }
  y[p.y_off + i] = ACT_T (r);
}
