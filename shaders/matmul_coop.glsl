/* shaders/matmul_coop.glsl: the matrix product of linear.comp and conv2d.comp on cooperative
 * matrices (tensor cores): C (M, N) = A (M, K) · B (N, K)ᵀ with fp16 operands and fp32
 * accumulation. The including shader defines load_a (m, k), load_b (n, k) (both 0 outside the
 * matrix), store_c (m, n, value), and A_COL when consecutive m of A are adjacent in memory (conv:
 * the staging loads then run along m) — otherwise along k (linear: rows of x), and then also
 * load_a4 (m, k) (x[m, k .. k+3] as a vec4) and load_b8 (n, k) (w[n, k .. k+7] as 8 packed halves),
 * which matmul_main uses when its `vec` argument says they are aligned and in bounds (K a multiple
 * of 8 and 16-byte aligned rows; the caller checks). Split-K (products with few tiles and a long K):
 * the including shader dispatches split workgroups along z, each summing a range of kc of K into
 * binding 5, then once more with reduce_main, which adds the partial sums and stores them.
 *
 * One source, two spellings: GL_NV_cooperative_matrix (what Debian 12's glslc compiles; the KHR
 * variants are this SPIR-V rewritten, shaders/meson.build) or, with -DCOOPMAT_KHR, the
 * GL_KHR_cooperative_matrix spelling for a newer glslc. Fragment shape TM x TN x TK (the NV
 * spelling needs A (TM x TK) and B (TK x TN) of different shapes, so that the rewrite can tell
 * their uses apart: 16 x 8 x 16). A workgroup of 256 invocations = 256 / SG subgroups computes a
 * BM x BN tile of C, walking K in steps of BK through shared memory (fp32 -> fp16 as it is
 * staged; the next step's global reads are issued before this step's products); subgroup w owns
 * WM x WN = 2 x 2 fragments at fragment row (w / WARPS_N) · WM, column (w % WARPS_N) · WN, held
 * in named variables: no array of cooperative matrices, which a driver that does not unroll the
 * loops over it would keep in memory (the first version, with arrays of 4 x 4, ran at a few
 * TFLOP/s on an H100).
 * Staged rows are padded by 8 halves, so that the fragment loads of 8 rows x 16 bytes hit
 * distinct banks.
 *
 * Precision: B (fp16 weights) is exact; A (fp32 activations) is staged as two fp16 halves, hi (a
 * with its mantissa cut to 10 bits) and lo = fp16 (a - hi), and both are multiplied (A·B = hi·B + lo·B): 22 of fp32's 24
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
#define BM 64
#define BN 64
#endif
#define WM 2                              /* fragments a subgroup owns: 2 x 2, as named variables */
#define WN 2
#define BK 32
#define WARPS_N (BN / TN / WN)
#define N_WARPS (256 / SG)
#if (BM / TM / WM) * WARPS_N != N_WARPS
#error "the subgroup grid does not cover the tile"
#endif

layout (local_size_x = 256) in;
layout (binding = 4) buffer Overflow { uint overflow; };
layout (binding = 5) buffer Partials { float part[]; };   /* split-K: (split, M, N) raw sums */
layout (constant_id = 0) const bool SPLIT_A = true;

/* Staging, rows padded by 8 halves (16 bytes: conflict-free fragment loads):
 *   B [n][k] in units of 8 halves (uvec4), each invocation B_UNITS of them per step;
 *   A [m][k] in units of 4 halves (uvec2; hi and lo), A_UNITS per step, or with A_COL
 *   [k][m] in single halves, A_LOADS per step. */
#define B_STRIDE (BK + 8)
#define B_UNITS (BN * BK / 8 / 256)
shared uvec4 Bs[BN * B_STRIDE / 8];
#ifdef A_COL
#define A_STRIDE (BM + 8)
#define A_LOADS (BM * BK / 256)
shared float16_t As[BK * A_STRIDE];
shared float16_t Al[BK * A_STRIDE];      /* the lo halves */
#else
#define A_STRIDE (BK + 8)
#define A_UNITS (BM * BK / 4 / 256)
shared uvec2 As[BM * A_STRIDE / 4];
shared uvec2 Al[BM * A_STRIDE / 4];
#endif
shared float Cs[N_WARPS * TM * TN];

/* unit s of this invocation's share of a step: (row, first k) within the tile */
void
b_slot (uint s, out uint n, out uint k)
{
  const uint e = gl_LocalInvocationID.x + 256u * s;
  n = e / (BK / 8);
  k = e % (BK / 8) * 8;
}

/* 8 halves of w[n0 + n, k0 + k ..] */
uvec4
fetch_b (uint N, uint K, bool vec, uint n, uint k)
{
  if (n >= N)
    return uvec4 (0);
  if (vec)
    return k < K ? load_b8 (n, k) : uvec4 (0);
  float v[8];
  [[unroll]] for (uint i = 0; i < 8; i++)
    v[i] = k + i < K ? load_b (n, k + i) : 0.0;
  return uvec4 (packFloat2x16 (f16vec2 (v[0], v[1])), packFloat2x16 (f16vec2 (v[2], v[3])),
                packFloat2x16 (f16vec2 (v[4], v[5])), packFloat2x16 (f16vec2 (v[6], v[7])));
}

/* fp32 -> fp16 for staging: saturated (counted in `big`), and split into hi (the mantissa cut to
 * fp16's 10 bits, by bits so that no compiler folds fp32 (fp16 (a)) back into a: exact in fp16 in
 * its normal range) and lo (the exact rest, rounded) */
vec4
saturate_a (vec4 v, inout bool big)
{
  big = big || any (greaterThan (abs (v), vec4 (65504.0)));
  return clamp (v, vec4 (-65504.0), vec4 (65504.0));
}

vec4
hi_part (vec4 v)
{
  return SPLIT_A ? uintBitsToFloat (floatBitsToUint (v) & uvec4 (0xffffe000u)) : v;
}

#ifdef A_COL
/* the same row m for every s (BM divides 256): whatever load_a derives from m is computed once */
void
a_slot (uint s, out uint m, out uint k)
{
  m = gl_LocalInvocationID.x % BM;
  k = gl_LocalInvocationID.x / BM + s * (256u / BM);
}
#else
void
a_slot (uint s, out uint m, out uint k)
{
  const uint e = gl_LocalInvocationID.x + 256u * s;
  m = e / (BK / 4);
  k = e % (BK / 4) * 4;
}

/* x[m, k .. k+3] */
vec4
fetch_a4 (uint M, uint K, bool vec, uint m, uint k)
{
  if (m >= M)
    return vec4 (0.0);
  if (vec)
    return k < K ? load_a4 (m, k) : vec4 (0.0);
  vec4 v;
  [[unroll]] for (uint i = 0; i < 4; i++)
    v[i] = k + i < K ? load_a (m, k + i) : 0.0;
  return v;
}

uvec2
pack4 (vec4 v)
{
  return uvec2 (packFloat2x16 (f16vec2 (v.xy)), packFloat2x16 (f16vec2 (v.zw)));
}
#endif

/* an element of C: store_c's, or with split-K this workgroup's raw sum into `part` */
void
emit_c (uint m, uint n, float v, uint M, uint N, uint split)
{
  if (split > 1u)
    part[(gl_WorkGroupID.z * M + m) * N + n] = v;
  else
    store_c (m, n, v);
}

/* split-K's second dispatch: the sums of the `split` partial products of this workgroup's tile,
 * through store_c (bias, layout); conv takes neighbouring m per lane, linear neighbouring n */
void
reduce_main (uint M, uint N, uint split)
{
  const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
  for (uint e = gl_LocalInvocationID.x; e < BM * BN; e += 256u) {
#ifdef A_COL
    const uint m = m0 + e % BM, n = n0 + e / BM;
#else
    const uint m = m0 + e / BN, n = n0 + e % BN;
#endif
    if (m >= M || n >= N)
      continue;
    float v = 0.0;
    for (uint z = 0; z < split; z++)
      v += part[(z * M + m) * N + n];
    store_c (m, n, v);
  }
}

/* fragment (fragment row fr, k offset kk) of the staged A halves `arr` */
#ifdef A_COL
#define LOAD_A(mat, arr, fr, kk) coop_load (mat, arr, (kk) * A_STRIDE + (fr) * TM, A_STRIDE, true)
#else
#define LOAD_A(mat, arr, fr, kk) coop_load (mat, arr, ((fr) * TM * A_STRIDE + (kk)) / 4, A_STRIDE / 4, false)
#endif

/* fragment (fm0 + i, fn0 + j) of C through this subgroup's scratch, with the bounds and store_c;
 * conv ([n][m] scratch): neighbouring lanes take neighbouring m */
#ifdef A_COL
#define FRAG_LAYOUT_COL true
#define FRAG_STRIDE TM
#define FRAG_RC(e, r, c) r = (e) % TM; c = (e) / TM
#else
#define FRAG_LAYOUT_COL false
#define FRAG_STRIDE TN
#define FRAG_RC(e, r, c) r = (e) / TN; c = (e) % TN
#endif
#define STORE_FRAG(mat, i, j) {                                                                   \
    const uint scratch = warp * TM * TN;                                                          \
    coop_store (mat, Cs, scratch, FRAG_STRIDE, FRAG_LAYOUT_COL);                                  \
    subgroupMemoryBarrierShared ();                                                               \
    subgroupBarrier ();                                                                           \
    for (uint e = gl_SubgroupInvocationID; e < TM * TN; e += gl_SubgroupSize) {                   \
      uint r, c;                                                                                  \
      FRAG_RC (e, r, c);                                                                          \
      const uint m = m0 + (fm0 + (i)) * TM + r, n = n0 + (fn0 + (j)) * TN + c;                    \
      if (m < M && n < N)                                                                         \
        emit_c (m, n, Cs[scratch + e], M, N, split);                                              \
    }                                                                                             \
    subgroupBarrier ();                                                                           \
  }

/* this invocation's global reads of the step at k1 into rb and ra (matmul_main's locals) */
#ifdef A_COL
#define FETCH_A(k1)                                                                               \
  [[unroll]] for (uint s = 0; s < A_LOADS; s++) {                                                 \
    uint m, k;                                                                                    \
    a_slot (s, m, k);                                                                             \
    ra[s] = (m0 + m < M && (k1) + k < ke) ? load_a (m0 + m, (k1) + k) : 0.0;                      \
  }
#else
#define FETCH_A(k1)                                                                               \
  [[unroll]] for (uint s = 0; s < A_UNITS; s++) {                                                 \
    uint m, k;                                                                                    \
    a_slot (s, m, k);                                                                             \
    ra[s] = fetch_a4 (M, ke, vec, m0 + m, (k1) + k);                                              \
  }
#endif
#define FETCH_STEP(k1) {                                                                          \
    [[unroll]] for (uint s = 0; s < B_UNITS; s++) {                                               \
      uint n, k;                                                                                  \
      b_slot (s, n, k);                                                                           \
      rb[s] = fetch_b (N, ke, vec, n0 + n, (k1) + k);                                             \
    }                                                                                             \
    FETCH_A (k1);                                                                                 \
  }

void
matmul_main (uint M, uint N, uint K, bool vec, uint kc, uint split)
{
  /* split-K: workgroup z takes k in [z·kc, min (K, (z + 1)·kc)) and writes its raw sums to `part` */
  const uint kb = gl_WorkGroupID.z * kc, ke = min (K, kb + kc);
  const uint warp = gl_SubgroupID;
  const uint fm0 = (warp / WARPS_N) * WM, fn0 = (warp % WARPS_N) * WN;
  const uint m0 = gl_WorkGroupID.y * BM, n0 = gl_WorkGroupID.x * BN;
  MAT_C c00 = MAT_C (0.0), c01 = MAT_C (0.0), c10 = MAT_C (0.0), c11 = MAT_C (0.0);

  bool big = false;
  uvec4 rb[B_UNITS];
#ifdef A_COL
  float ra[A_LOADS];
#else
  vec4 ra[A_UNITS];
#endif
  FETCH_STEP (kb);                       /* the first step's reads; later ones are prefetched below */
  for (uint k0 = kb; k0 < ke; k0 += BK) {
    barrier ();                          /* the last step's products have read the staging */
    [[unroll]] for (uint s = 0; s < B_UNITS; s++) {
      uint n, k;
      b_slot (s, n, k);
      Bs[(n * B_STRIDE + k) / 8] = rb[s];
    }
#ifdef A_COL
    [[unroll]] for (uint s = 0; s < A_LOADS; s++) {
      uint m, k;
      a_slot (s, m, k);
      const float a = saturate_a (vec4 (ra[s]), big).x, hi = hi_part (vec4 (a)).x;
      As[k * A_STRIDE + m] = float16_t (hi);
      if (SPLIT_A)
        Al[k * A_STRIDE + m] = float16_t (a - hi);
    }
#else
    [[unroll]] for (uint s = 0; s < A_UNITS; s++) {
      uint m, k;
      a_slot (s, m, k);
      const vec4 a = saturate_a (ra[s], big), hi = hi_part (a);
      As[(m * A_STRIDE + k) / 4] = pack4 (hi);
      if (SPLIT_A)
        Al[(m * A_STRIDE + k) / 4] = pack4 (a - hi);
    }
#endif
    barrier ();
    if (k0 + BK < ke)                    /* the next step's reads, in flight during the products */
      FETCH_STEP (k0 + BK);
    for (uint kk = 0; kk < BK; kk += TK) {
      MAT_A a0, a1;
      MAT_B b0, b1;
      coop_load (b0, Bs, ((fn0 + 0) * TN * B_STRIDE + kk) / 8, B_STRIDE / 8, true);   /* Bᵀ: K x N, column-major */
      coop_load (b1, Bs, ((fn0 + 1) * TN * B_STRIDE + kk) / 8, B_STRIDE / 8, true);
      LOAD_A (a0, As, fm0 + 0, kk);
      LOAD_A (a1, As, fm0 + 1, kk);
      c00 = coop_mul_add (a0, b0, c00);
      c01 = coop_mul_add (a0, b1, c01);
      c10 = coop_mul_add (a1, b0, c10);
      c11 = coop_mul_add (a1, b1, c11);
      if (SPLIT_A) {
        LOAD_A (a0, Al, fm0 + 0, kk);
        LOAD_A (a1, Al, fm0 + 1, kk);
        c00 = coop_mul_add (a0, b0, c00);
        c01 = coop_mul_add (a0, b1, c01);
        c10 = coop_mul_add (a1, b0, c10);
        c11 = coop_mul_add (a1, b1, c11);
      }
    }
  }
  if (big)
    atomicAdd (overflow, 1u);

  /* each fragment through this subgroup's scratch, written out with the bounds and store_c */
  STORE_FRAG (c00, 0u, 0u);
  STORE_FRAG (c01, 0u, 1u);
  STORE_FRAG (c10, 1u, 0u);
  STORE_FRAG (c11, 1u, 1u);
}
