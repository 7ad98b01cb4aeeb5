/* shaders/copy.comp: easel_op_contiguous, a strided view copied into a dense tensor. 32-bit words
 * are moved as bits (uint), so F32 and I32 tensors both copy exactly. */
#version 450
#include "common.glsl"

layout (local_size_x = 256) in;
layout (push_constant) uniform Push {    /* == EaselVkCopyPush */
  uint n, nd, x_off, y_off;
  uint shape[8];                         /* of the view, outermost first */
  uint stride[8];                        /* of the view, in elements */
} p;
layout (binding = 0) readonly buffer X { uint x[]; };
layout (binding = 1) writeonly buffer Y { uint y[]; };

void
main ()
{
  const uint i = flat_index ();
  if (i >= p.n)
    return;
  uint rem = i, off = 0;
  for (int d = int (p.nd) - 1; d >= 0; d--) {
    off += (rem % p.shape[d]) * p.stride[d];
    rem /= p.shape[d];
  }
  y[p.y_off + i] = x[p.x_off + off];
}
