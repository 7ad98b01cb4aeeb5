/* shaders/concat.comp: torch.cat ((a, b), dim) seen as y (N, ca + cb, inner) from a (N, ca, inner)
 * and b (N, cb, inner), N the product of the axes before dim, inner of those after. Bits are
 * copied (uint), so any 32-bit dtype works. */
#version 450
#include "common.glsl"

layout (local_size_x = 256) in;
layout (push_constant) uniform Push {    /* == EaselVkConcatPush */
  uint n, ca, cb, inner;
  uint a_off, b_off, y_off;
} p;
layout (binding = 0) readonly buffer A { uint a[]; };
layout (binding = 1) readonly buffer B { uint b[]; };
layout (binding = 2) writeonly buffer Y { uint y[]; };

void
main ()
{
  const uint i = flat_index ();
  if (i >= p.n)
    return;
  const uint ct = p.ca + p.cb;
  const uint in_ = i % p.inner, c = (i / p.inner) % ct, nn = i / (p.inner * ct);
  y[p.y_off + i] = c < p.ca ? a[p.a_off + (nn * p.ca + c) * p.inner + in_]
                            : b[p.b_off + (nn * p.cb + c - p.ca) * p.inner + in_];
}
