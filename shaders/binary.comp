/* shaders/binary.comp: y = a op b with b broadcast to a's shape (-DOP_ADD, -DOP_MUL). a and y are
 * dense; b is indexed through strides that are 0 on its broadcast axes, so every broadcast form is
 * the same code (the C side merges adjacent axes first, so the common forms take one or two). */
#version 450
#include "common.glsl"

layout (local_size_x = 256) in;
layout (push_constant) uniform Push {    /* == EaselVkBinaryPush */
  uint n, nd, a_off, b_off, y_off, pad0, pad1, pad2;
  uint shape[8];                         /* of a (and y) */
  uint bstride[8];                       /* b's stride per axis of a, 0 where it broadcasts */
} p;
layout (binding = 0) readonly buffer A { ACT_T a[]; };
layout (binding = 1) readonly buffer B { ACT_T b[]; };
layout (binding = 2) writeonly buffer Y { ACT_T y[]; };

void
main ()
{
  const uint i = flat_index ();
  if (i >= p.n)
    return;
  uint rem = i, bo = 0;
  for (int d = int (p.nd) - 1; d >= 0; d--) {
    bo += (rem % p.shape[d]) * p.bstride[d];
    rem /= p.shape[d];
  }
  const float va = float (a[p.a_off + i]), vb = float (b[p.b_off + bo]);
#if defined(OP_ADD)
  y[p.y_off + i] = ACT_T (va + vb);
#elif defined(OP_MUL)
  y[p.y_off + i] = ACT_T (va * vb);
#else
#error "binary.comp: no OP_ defined"
#endif
}
