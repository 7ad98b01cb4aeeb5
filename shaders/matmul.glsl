/* shaders/matmul.glsl: the tiled scalar matrix product that linear.comp and conv2d.comp share:
 * C (M, N) = A (M, K) · B (N, K)ᵀ, fp32 accumulation. The including shader defines
 * load_a (m, k), load_b (n, k) (both return 0 outside the matrix) and store_c (m, n, value),
 * and the push fields M, N, K. A workgroup of 256 threads computes a BM x BN tile, walking K in
 * steps of BK through shared memory; thread (tx, ty) owns the 4 x 4 outputs
 * (ty + 16 i, tx + 16 j), so neighbouring threads read neighbouring shared words.
 * Group (x, y) = tile (column block x, row block y). */
#define BM 64
#define BN 64
#define BK 16

layout (local_size_x = 256) in;

shared float As[BK][BM + 1];
shared float Bs[BK][BN + 1];

void
matmul_main (uint M, uint N, uint K)
{
  const uint tid = gl_LocalInvocationID.x;
  const uint tx = tid % 16u, ty = tid / 16u;
  const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
  float acc[4][4];
  [[unroll]] for (uint i = 0; i < 4; i++)
    [[unroll]] for (uint j = 0; j < 4; j++)
      acc[i][j] = 0.0;

  for (uint k0 = 0; k0 < K; k0 += BK) {
    /* 64 x 16 elements of each operand, 4 per thread; k is the fast index of both */
    [[unroll]] for (uint s = 0; s < 4; s++) {
      const uint e = tid + 256u * s, r = e / BK, c = e % BK;
      const uint k = k0 + c;
      As[c][r] = (m0 + r < M && k < K) ? load_a (m0 + r, k) : 0.0;
      Bs[c][r] = (n0 + r < N && k < K) ? load_b (n0 + r, k) : 0.0;
    }
    barrier ();
    [[unroll]] for (uint c = 0; c < BK; c++) {
      float a[4], b[4];
      [[unroll]] for (uint i = 0; i < 4; i++) {
        a[i] = As[c][ty + 16u * i];
        b[i] = Bs[c][tx + 16u * i];
      }
      [[unroll]] for (uint i = 0; i < 4; i++)
        [[unroll]] for (uint j = 0; j < 4; j++)
          acc[i][j] = fma (a[i], b[j], acc[i][j]);
    }
    barrier ();
  }
  [[unroll]] for (uint i = 0; i < 4; i++)
    [[unroll]] for (uint j = 0; j < 4; j++) {
      const uint m = m0 + ty + 16u * i, n = n0 + tx + 16u * j;
      if (m < M && n < N)
        store_c (m, n, acc[i][j]);
    }
}
