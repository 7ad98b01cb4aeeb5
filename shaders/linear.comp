/* shaders/linear.comp: nn.Linear, y (M, N) = x (M, K) · w (N, K)ᵀ + b (N). x dense, w rows ldw
 * apart (a slice of a fused weight works), weights WEIGHT_T (fp16 with -DWEIGHT_F16), bias optional
 * (has_bias), fp32 accumulation. */
#version 450
#include "common.glsl"

layout (push_constant) uniform Push {    /* == EaselVkLinearPush */
  uint M, N, K, ldw;
  uint x_off, w_off, b_off, y_off;
  uint has_bias, vec;                   /* vec: K, ldw, x_off, w_off multiples of 8 (matmul_coop.glsl) */
  uint kc, split, reduce;               /* split-K (matmul_coop.glsl): split > 1 chunks of kc; reduce pass */
} p;
layout (binding = 0) readonly buffer X { ACT_T x[]; };
layout (binding = 1) readonly buffer W { WEIGHT_T w[]; };
layout (binding = 2) readonly buffer Bias { float bias[]; };
layout (binding = 3) writeonly buffer Y { ACT_T y[]; };

float load_a (uint m, uint k) { return float (x[p.x_off + m * p.K + k]); }
float load_b (uint n, uint k) { return float (w[p.w_off + n * p.ldw + k]); }
#ifdef COOP
layout (binding = 0) readonly buffer X4 { vec4 x4[]; };
layout (binding = 1) readonly buffer W8 { uvec4 w8[]; };
vec4 load_a4 (uint m, uint k) { return x4[(p.x_off + m * p.K + k) / 4u]; }
uvec4 load_b8 (uint n, uint k) { return w8[(p.w_off + n * p.ldw + k) / 8u]; }
#endif
void store_c (uint m, uint n, float v) { y[p.y_off + m * p.N + n] = ACT_T (p.has_bias != 0u ? v + bias[p.b_off + n] : v); }

#ifdef COOP
#include "matmul_coop.glsl"
#else
#include "matmul.glsl"
#endif

void
main ()
{
  #ifdef COOP
  if (p.reduce != 0u)
    reduce_main (p.M, p.N, p.split);
  else
    matmul_main (p.M, p.N, p.K, p.vec != 0u, p.split > 1u ? p.kc : p.K, p.split);
#else
  matmul_main (p.M, p.N, p.K);
#endif
}
