/* shaders/reduce.glsl: a workgroup sum over 256 threads through shared memory (the norms' mean and
 * variance). Every thread gets the total. Call from uniform control flow. */
shared float red[256];

float
workgroup_sum (float v)
{
  const uint tid = gl_LocalInvocationID.x;
  red[tid] = v;
  barrier ();
  [[unroll]] for (uint s = 128u; s > 0u; s >>= 1) {
    if (tid < s)
      red[tid] += red[tid + s];
    barrier ();
  }
  const float total = red[0];
  barrier ();
  return total;
}
