/* shaders/matmul_coop.glsl: the matrix product of linear.comp and conv2d.comp on cooperative
 * matrices (tensor cores): C (M, N) = A (M, K) · B (N, K)ᵀ with fp16 operands and fp32
 * accumulation. The including shader defines load_a (m, k), load_b (n, k) (both 0 outside the
 * matrix), store_c (m, n, value), and A_COL when consecutive m of A are adjacent in memory (conv:
 * the staging loads then run along m) — otherwise along k (linear: rows of x).
 *
 * One source, two spellings: GL_NV_cooperative_matrix (what Debian 12's glslc compiles; the KHR
 * variants are this SPIR-V rewritten, shaders/meson.build) or, with -DCOOPMAT_KHR, the
 * GL_KHR_cooperative_matrix spelling for a newer glslc. Fragment shape TM x TN x TK (the NV
 * spelling needs A (TM x TK) and B (TK x TN) of different shapes, so that the rewrite can tell
 * their uses apart: 16 x 8 x 16). A workgroup of 256 invocations = 256 / SG subgroups computes a
 * BM x BN tile of C, walking K in steps of BK through shared memory (fp32 -> fp16 as it is
 * staged; the next step's global reads are issued before this step's products); subgroup w owns
 * WM x WN fragments at fragment row (w / WARPS_N) · WM, column (w % WARPS_N) · WN.
 *
 * Precision: B (fp16 weights) is exact; A (fp32 activations) is staged as two fp16 halves, hi =
 * fp16 (a) and lo = fp16 (a - hi), and both are multiplied (A·B = hi·B + lo·B): 22 of fp32's 24
 * mantissa bits at twice the tensor work, so the results stay within the fp32 engine's tolerances
 * (one fp16 rounding per product was 5-50x beyond them on the tiny reference models). The
 * specialization constant SPLIT_A = false stages hi only, for measurements of that trade.
 *
 * fp16 range: an A value beyond ±65504 would become inf. The shader saturates it and counts it
 * in the `overflow` word of binding 4; the backend checks that word after the graph ran and runs
 * the graph again on the exact fp32 shaders (backend-vulkan.c), so no inf or NaN comes out. */
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require

#ifdef COOPMAT_KHR
#extension GL_KHR_cooperative_matrix : require
#define MAT_A coopmat<float16_t, gl_ScopeSubgroup, TM, TK, gl_MatrixUseA>
#define MAT_B coopmat<float16_t, gl_ScopeSubgroup, TK, TN, gl_MatrixUseB>
#define MAT_C coopmat<float, gl_ScopeSubgroup, TM, TN, gl_MatrixUseAccumulator>
#define COOP_LAYOUT(col) ((col) ? gl_CooperativeMatrixLayoutColumnMajor : gl_CooperativeMatrixLayoutRowMajor)
#define coop_load(mat, arr, off, stride, col) coopMatLoad (mat, arr, off, stride, COOP_LAYOUT (col))
#define coop_store(mat, arr, off, stride, col) coopMatStore (mat, arr, off, stride, COOP_LAYOUT (col))
#define coop_mul_add(a, b, c) coopMatMulAdd (a, b, c)
#else
#extension GL_NV_cooperative_matrix : require
#define MAT_A fcoopmatNV<16, gl_ScopeSubgroup, TM, TK>
#define MAT_B fcoopmatNV<16, gl_ScopeSubgroup, TK, TN>
#define MAT_C fcoopmatNV<32, gl_ScopeSubgroup, TM, TN>
#define coop_load(mat, arr, off, stride, col) coopMatLoadNV (mat, arr, off, stride, col)
#define coop_store(mat, arr, off, stride, col) coopMatStoreNV (mat, arr, off, stride, col)
#define coop_mul_add(a, b, c) coopMatMulAddNV (a, b, c)
#endif

#ifndef TM
#define TM 16
#define TN 8
#define TK 16
#endif
#ifndef SG
#define SG 32
#endif
#ifndef BM
#define BM 128
#define BN 128
#endif
#define BK 32
#define WARPS_N (BN / TN / WN)
#define N_WARPS (256 / SG)
#if (BM / TM / WM) * WARPS_N != N_WARPS
#error "the subgroup grid does not cover the tile"
#endif

layout (local_size_x = 256) in;
layout (binding = 4) buffer Overflow { uint overflow; };
layout (constant_id = 0) const bool SPLIT_A = true;

/* A staged [k][m] (A_COL) or [m][k]; B [n][k]; rows padded by 8 halves (16 bytes) */
#ifdef A_COL
#define A_STRIDE (BM + 8)
#define A_AT(m, k) ((k) * A_STRIDE + (m))
#else
#define A_STRIDE (BK + 8)
#define A_AT(m, k) ((m) * A_STRIDE + (k))
#endif
#define B_STRIDE (BK + 8)
#define A_LOADS (BM * BK / 256)
#define B_LOADS (BN * BK / 256)

#ifdef A_COL
#define A_SIZE (BK * A_STRIDE)
#else
#define A_SIZE (BM * A_STRIDE)
#endif
shared float16_t As[A_SIZE];
shared float16_t Al[A_SIZE];             /* the lo halves */
shared float16_t Bs[BN * B_STRIDE];
shared float Cs[N_WARPS * TM * TN];

/* element s of this invocation's share of the A / B staging: (row, k) within the tile */
void
a_slot (uint s, out uint m, out uint k)
{
  const uint e = gl_LocalInvocationID.x + 256u * s;
#ifdef A_COL
  m = e % BM;
  k = e / BM;
#else
  k = e % BK;
  m = e / BK;
#endif
}

void
b_slot (uint s, out uint n, out uint k)
{
  const uint e = gl_LocalInvocationID.x + 256u * s;
  k = e % BK;
  n = e / BK;
}

void
matmul_main (uint M, uint N, uint K)
{
  const uint warp = gl_SubgroupID;
  const uint fm0 = (warp / WARPS_N) * WM, fn0 = (warp % WARPS_N) * WN;
  const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
  MAT_C acc[WM][WN];
  [[unroll]] for (uint i = 0; i < WM; i++)
    [[unroll]] for (uint j = 0; j < WN; j++)
      acc[i][j] = MAT_C (0.0);

  float ra[A_LOADS];
  float rb[B_LOADS];
  bool big = false;
  [[unroll]] for (uint s = 0; s < A_LOADS; s++) {
    uint m, k;
    a_slot (s, m, k);
    ra[s] = (m0 + m < M && k < K) ? load_a (m0 + m, k) : 0.0;
  }
  [[unroll]] for (uint s = 0; s < B_LOADS; s++) {
    uint n, k;
    b_slot (s, n, k);
    rb[s] = (n0 + n < N && k < K) ? load_b (n0 + n, k) : 0.0;
  }

  for (uint k0 = 0; k0 < K; k0 += BK) {
    barrier ();                          /* the last step's products have read the staging */
    [[unroll]] for (uint s = 0; s < A_LOADS; s++) {
      uint m, k;
      a_slot (s, m, k);
      big = big || abs (ra[s]) > 65504.0;
      const float a = clamp (ra[s], -65504.0, 65504.0);
      if (SPLIT_A) {
        /* hi: a with its mantissa cut to fp16's 10 bits (exact in fp16 in its normal range), by bits so
         * that no compiler folds fp32 (fp16 (a)) back into a; lo: the exact rest, rounded */
        const float hi = uintBitsToFloat (floatBitsToUint (a) & 0xffffe000u);
        As[A_AT (m, k)] = float16_t (hi);
        Al[A_AT (m, k)] = float16_t (a - hi);
      } else {
        As[A_AT (m, k)] = float16_t (a);
      }
    }
    [[unroll]] for (uint s = 0; s < B_LOADS; s++) {
      uint n, k;
      b_slot (s, n, k);
      Bs[n * B_STRIDE + k] = float16_t (rb[s]);
    }
    barrier ();
    if (k0 + BK < K) {                   /* the next step's reads, in flight during the products */
      const uint k1 = k0 + BK;
      [[unroll]] for (uint s = 0; s < A_LOADS; s++) {
        uint m, k;
        a_slot (s, m, k);
        ra[s] = (m0 + m < M && k1 + k < K) ? load_a (m0 + m, k1 + k) : 0.0;
      }
      [[unroll]] for (uint s = 0; s < B_LOADS; s++) {
        uint n, k;
        b_slot (s, n, k);
        rb[s] = (n0 + n < N && k1 + k < K) ? load_b (n0 + n, k1 + k) : 0.0;
      }
    }
    [[unroll]] for (uint kk = 0; kk < BK; kk += TK) {
      MAT_A a[WM];
      MAT_B b[WN];
      [[unroll]] for (uint i = 0; i < WM; i++) {
#ifdef A_COL
        coop_load (a[i], As, A_AT ((fm0 + i) * TM, kk), A_STRIDE, true);
#else
        coop_load (a[i], As, A_AT ((fm0 + i) * TM, kk), A_STRIDE, false);
#endif
      }
      [[unroll]] for (uint j = 0; j < WN; j++)
        coop_load (b[j], Bs, (fn0 + j) * TN * B_STRIDE + kk, B_STRIDE, true);   /* Bᵀ: K x N, column-major */
      [[unroll]] for (uint i = 0; i < WM; i++)
        [[unroll]] for (uint j = 0; j < WN; j++)
          acc[i][j] = coop_mul_add (a[i], b[j], acc[i][j]);
      if (SPLIT_A) {
        [[unroll]] for (uint i = 0; i < WM; i++) {
#ifdef A_COL
          coop_load (a[i], Al, A_AT ((fm0 + i) * TM, kk), A_STRIDE, true);
#else
          coop_load (a[i], Al, A_AT ((fm0 + i) * TM, kk), A_STRIDE, false);
#endif
        }
        [[unroll]] for (uint i = 0; i < WM; i++)
          [[unroll]] for (uint j = 0; j < WN; j++)
            acc[i][j] = coop_mul_add (a[i], b[j], acc[i][j]);
      }
    }
  }
  if (big)
    atomicAdd (overflow, 1u);

  /* each fragment through this subgroup's scratch, written out with the bounds and store_c */
  const uint scratch = warp * TM * TN;
  [[unroll]] for (uint i = 0; i < WM; i++)
    [[unroll]] for (uint j = 0; j < WN; j++) {
#ifdef A_COL
      coop_store (acc[i][j], Cs, scratch, TM, true);       /* [n][m]: neighbouring lanes take neighbouring m */
#else
      coop_store (acc[i][j], Cs, scratch, TN, false);      /* [m][n] */
#endif
      subgroupMemoryBarrierShared ();
      subgroupBarrier ();
      for (uint e = gl_SubgroupInvocationID; e < TM * TN; e += gl_SubgroupSize) {
#ifdef A_COL
        const uint r = e % TM, c = e / TM;
#else
        const uint r = e / TN, c = e % TN;
#endif
        const uint m = m0 + (fm0 + i) * TM + r, n = n0 + (fn0 + j) * TN + c;
        if (m < M && n < N)
          store_c (m, n, Cs[scratch + e]);
      }
      subgroupBarrier ();
    }
}
