/* shaders/conv2d.comp: nn.Conv2d (groups 1, dilation 1) as an implicit GEMM: output pixel
 * m = (b, oy, ox) is a row, output channel n a column, k = (ci, ky, kx) the reduction:
 * y[b, n, oy, ox] = Σ_k w[n, k] · x[b, ci, oy·stride - pad_h + ky, ox·stride - pad_w + kx] + bias[n].
 * Reads outside x are zeros, so out_h / out_w beyond the symmetric size give trailing padding
 * (as EaselCpuConv2d). x dense NCHW, w dense (Co, Ci, kh, kw) in WEIGHT_T. */
#version 450
#include "common.glsl"

layout (push_constant) uniform Push {    /* == EaselVkConv2dPush */
  uint M, N, K, c_in;                    /* M = B·Ho·Wo, N = Co, K = Ci·kh·kw */
  uint h, w, kh, kw;
  uint stride, pad_h, pad_w, out_h;
  uint out_w, x_off, w_off, b_off;
  uint y_off, has_bias, vec;             /* vec: K, w_off multiples of 8 (matmul_coop.glsl) */
  uint kc, split, reduce;                /* split-K (matmul_coop.glsl): split > 1 chunks of kc; reduce pass */
} p;
layout (binding = 0) readonly buffer X { ACT_T x[]; };
layout (binding = 1) readonly buffer Wt { WEIGHT_T wt[]; };
layout (binding = 2) readonly buffer Bias { float bias[]; };
layout (binding = 3) writeonly buffer Y { ACT_T y[]; };

float
load_a (uint m, uint k)
{
  const uint hw = p.out_h * p.out_w;
  const uint b = m / hw, pix = m % hw, oy = pix / p.out_w, ox = pix % p.out_w;
  uint ci, ky, kx;
  if (p.kh == 3u && p.kw == 3u) {        /* constant divisors: multiplies, not divisions */
    ci = k / 9u;
    const uint r = k - ci * 9u;
    ky = r / 3u;
    kx = r - ky * 3u;
  } else if (p.kh == 1u && p.kw == 1u) {
    ci = k;
    ky = kx = 0u;
  } else {
    const uint khw = p.kh * p.kw, r = k % khw;
    ci = k / khw;
    ky = r / p.kw;
    kx = r % p.kw;
  }
  const int iy = int (oy * p.stride + ky) - int (p.pad_h), ix = int (ox * p.stride + kx) - int (p.pad_w);
  if (iy < 0 || ix < 0 || iy >= int (p.h) || ix >= int (p.w))
    return 0.0;
  return float (x[p.x_off + ((b * p.c_in + ci) * p.h + uint (iy)) * p.w + uint (ix)]);
}

float load_b (uint n, uint k) { return float (wt[p.w_off + n * p.K + k]); }
#ifdef COOP
layout (binding = 1) readonly buffer W8 { uvec4 w8[]; };
uvec4 load_b8 (uint n, uint k) { return w8[(p.w_off + n * p.K + k) / 8u]; }
#endif

void
store_c (uint m, uint n, float v)
{
  const uint hw = p.out_h * p.out_w, b = m / hw, pix = m % hw;
  y[p.y_off + (b * p.N + n) * hw + pix] = ACT_T (p.has_bias != 0u ? v + bias[p.b_off + n] : v);
}

#ifdef COOP
#define A_COL
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
