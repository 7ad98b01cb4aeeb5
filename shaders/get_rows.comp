/* shaders/get_rows.comp: embedding lookup, y (n, D) = table[ids[i], :], table (V, D) in WEIGHT_T
 * with rows ld apart, ids I32 clamped into [0, V) (never a read outside the table). */
#version 450
#include "common.glsl"

layout (local_size_x = 256) in;
layout (push_constant) uniform Push {    /* == EaselVkGetRowsPush */
  uint n, D, V, ld;
  uint t_off, i_off, y_off;
} p;
layout (binding = 0) readonly buffer Table { WEIGHT_T table[]; };
layout (binding = 1) readonly buffer Ids { int ids[]; };
layout (binding = 2) writeonly buffer Y { ACT_T y[]; };

void
main ()
{
  const uint i = flat_index ();
  if (i >= p.n)
    return;
  const uint row = i / p.D, c = i % p.D;
  const uint id = uint (clamp (ids[p.i_off + row], 0, int (p.V) - 1));
  y[p.y_off + i] = ACT_T (float (table[p.t_off + id * p.ld + c]));
}
