/* shaders/linear.comp: nn.Linear, y (M, N) = x (M, K) · w (N, K)ᵀ + b (N). x dense, w rows ldw
 * apart (a slice of a fused weight works), weights WEIGHT_T (fp16 with -DWEIGHT_F16), bias optional
 * (has_bias), fp32 accumulation. */
#version 450
#include "common.glsl"

layout (push_constant) uniform Push {    /* == EaselVkLinearPush */
  uint M, N, K, ldw;
  uint x_off, w_off, b_off, y_off;
  uint has_bias;
} p;
layout (binding = 0) readonly buffer X { ACT_T x[]; };
layout (binding = 1) readonly buffer W { WEIGHT_T w[]; };
layout (binding = 2) readonly buffer Bias { float bias[]; };
layout (binding = 3) writeonly buffer Y { ACT_T y[]; };

float load_a (uint m, uint k) { return float (x[p.x_off + m * p.K + k]); }
float load_b (uint n, uint k) { return float (w[p.w_off + n * p.ldw + k]); }
void store_c (uint m, uint n, float v) { y[p.y_off + m * p.N + n] = ACT_T (p.has_bias != 0u ? v + bias[p.b_off + n] : v); }

#ifdef COOP
#include "matmul_coop.glsl"
#else
#include "matmul.glsl"
#endif

void
main ()
{
  matmul_main (p.M, p.N, p.K);
}
