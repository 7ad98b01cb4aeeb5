/* shaders/attention_coop.comp: softmax (q kᵀ · scale) v per (batch, head) on cooperative matrices,
 * the same views and push block as attention.comp (non-causal; heads up to DMAX wide; the backend
 * runs the others on attention.comp). Spellings, fragment shapes and subgroup size as in
 * matmul_coop.glsl (GL_NV_cooperative_matrix by default, -DCOOPMAT_KHR for a newer glslc).
 *
 * A workgroup of NW subgroups takes BQ = NW · TM query rows of one head; subgroup w owns rows
 * w·TM .. +TM, its q fragments held in registers for the whole dispatch. Fragments are named
 * variables (q 4 + 4, scores 4, output 8; twice that in the 128-wide variant), not arrays: a driver that does not unroll loops over an
 * array of cooperative matrices keeps it in memory. Keys and values are
 * staged through shared memory BKV rows at a time. Two passes over the keys, so that the output
 * never has to be rescaled (a cooperative matrix has no per-row access):
 *   1. the row maxima m of the scores, from the hi halves only (an approximate maximum is all
 *      the softmax's stability needs: e^{s - m} stays near or below 1);
 *   2. scores s, p = e^{s·scale - m} (0 for keys past lk), row sums l, and O += P·V,
 * then O / l is written out. fp32 operands are split into hi + lo fp16 halves as in
 * matmul_coop.glsl (S = qh·kh + qh·kl + ql·kh, O += ph·vh + ph·vl + pl·vh), so results stay within
 * the fp32 engine's tolerances; values beyond ±65504 are saturated and counted in `overflow`
 * (binding 4), after which the backend reruns the graph on the fp32 shaders.
 * Group (x, y, z) = (query block, head, batch). */
#version 450
#include "common.glsl"
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_shuffle : require

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
#define NW 4
#define BQ (NW * TM)
#define BKV 32
#ifndef DMAX
#define DMAX 64                           /* heads up to DMAX wide; the _wide variant: 128 (engine/vulkan/ops.c) */
#endif
#if (DMAX / TK != 4 && DMAX / TK != 8) || BKV / TN != 4 || (DMAX / TN != 4 && DMAX / TN != 8 && DMAX / TN != 16)
#error "attention_coop.comp names its fragments: 4 or 8 of q, 4 of scores, 4, 8 or 16 of the output"
#endif
#define DS (DMAX + 8)                     /* staged row stride, halves */
#define PS (BKV + 8)
#define LPR (SG / TM)                     /* lanes per score row */
#define CPL (BKV / LPR)                   /* score columns per lane */

layout (local_size_x = NW * SG) in;
layout (push_constant) uniform Push {    /* == EaselVkAttentionPush */
  uint lq, lk, d, dv;
  uint ld_q, ld_k, ld_v, ld_o;
  uint q_off, k_off, v_off, o_off;
  uint causal;
  float scale;
} p;
layout (binding = 0) readonly buffer Q { float q[]; };
layout (binding = 1) readonly buffer K { float k[]; };
layout (binding = 2) readonly buffer V { float v[]; };
layout (binding = 3) writeonly buffer O { float o[]; };
layout (binding = 4) buffer Overflow { uint overflow; };

shared float16_t Th[BKV * DS];            /* a staged block of q, k or v rows: hi halves */
shared float16_t Tl[BKV * DS];            /* lo halves */
shared float Ss[NW * TM * BKV];           /* each subgroup's scores; its output fragments at the end */
shared float16_t Ph[NW * TM * PS];
shared float16_t Pl[NW * TM * PS];
shared float Ls[NW * TM];

bool big = false;

/* hi: the mantissa cut to fp16's 10 bits (exact in fp16), by bits so that no compiler folds it */
float
hi_part (float x)
{
  return uintBitsToFloat (floatBitsToUint (x) & 0xffffe000u);
}

/* rows [r0, r0 + BKV) of a (L, ·) view at base with row pitch ld, columns [0, w) of [0, wpad),
 * into Th / Tl; zeros outside */
void
stage (const uint which, uint base, uint ld, uint L, uint r0, uint w, uint wpad)
{
  for (uint e = gl_LocalInvocationID.x; e < BKV * wpad; e += NW * SG) {
    const uint r = e / wpad, c = e % wpad;
    float x = 0.0;
    if (r0 + r < L && c < w) {
      const uint at = base + (r0 + r) * ld + c;
      x = which == 0u ? q[at] : which == 1u ? k[at] : v[at];
    }
    big = big || abs (x) > 65504.0;
    x = clamp (x, -65504.0, 65504.0);
    const float h = hi_part (x);
    Th[r * DS + c] = float16_t (h);
    Tl[r * DS + c] = float16_t (x - h);
  }
}

/* the scores of keys [j0, j0 + BKV) for this subgroup's rows into its part of Ss: pass 1 from the
 * hi halves only, pass 2 with qh·kh + qh·kl + ql·kh */
#define S_J(j, sj, f, qh, ql, full) {                                                             \
    MAT_B kh;                                                                                     \
    coop_load (kh, Th, (j) * TN * DS + (f) * TK, DS, true);   /* kᵀ: d x keys, column-major */      \
    sj = coop_mul_add (qh, kh, sj);                                                               \
    if (full) {                                                                                   \
      MAT_B kl;                                                                                   \
      coop_load (kl, Tl, (j) * TN * DS + (f) * TK, DS, true);                                     \
      sj = coop_mul_add (qh, kl, sj);                                                             \
      sj = coop_mul_add (ql, kh, sj);                                                             \
    }                                                                                             \
  }
#define S_F(f, qh, ql, full)                                                                      \
  if ((f) * TK < dpad) {                                                                          \
    S_J (0, s0, f, qh, ql, full);                                                                 \
    S_J (1, s1, f, qh, ql, full);                                                                 \
    S_J (2, s2, f, qh, ql, full);                                                                 \
    S_J (3, s3, f, qh, ql, full);                                                                 \
  }
#if DMAX / TK == 8
#define S_F_WIDE(full) S_F (4, qh4, ql4, full); S_F (5, qh5, ql5, full); S_F (6, qh6, ql6, full); S_F (7, qh7, ql7, full)
#else
#define S_F_WIDE(full)
#endif
#define SCORES(full) {                                                                            \
    s0 = MAT_C (0.0); s1 = MAT_C (0.0); s2 = MAT_C (0.0); s3 = MAT_C (0.0);                       \
    S_F (0, qh0, ql0, full);                                                                      \
    S_F (1, qh1, ql1, full);                                                                      \
    S_F (2, qh2, ql2, full);                                                                      \
    S_F (3, qh3, ql3, full);                                                                      \
    S_F_WIDE (full);                                                                              \
    coop_store (s0, Ss, warp * TM * BKV + 0 * TN, BKV, false);                                    \
    coop_store (s1, Ss, warp * TM * BKV + 1 * TN, BKV, false);                                    \
    coop_store (s2, Ss, warp * TM * BKV + 2 * TN, BKV, false);                                    \
    coop_store (s3, Ss, warp * TM * BKV + 3 * TN, BKV, false);                                    \
    subgroupMemoryBarrierShared ();                                                               \
    subgroupBarrier ();                                                                           \
  }
#define LOAD_Q(f, qh, ql)                                                                         \
  if ((f) * TK < dpad) {                                                                          \
    coop_load (qh, Th, (warp * TM - r0) * DS + (f) * TK, DS, false);                              \
    coop_load (ql, Tl, (warp * TM - r0) * DS + (f) * TK, DS, false);                              \
  }
/* O[:, jj·TN ..] += P·V for the staged values (v: keys x dv, row-major) */
#define PV_J(jj, oj)                                                                              \
  if ((jj) * TN < dvpad) {                                                                        \
    MAT_B vh, vl;                                                                                 \
    coop_load (vh, Th, kk * DS + (jj) * TN, DS, false);                                           \
    coop_load (vl, Tl, kk * DS + (jj) * TN, DS, false);                                           \
    oj = coop_mul_add (ph, vh, oj);                                                               \
    oj = coop_mul_add (ph, vl, oj);                                                               \
    oj = coop_mul_add (pl, vh, oj);                                                               \
  }
/* O / l of fragment jj, through this subgroup's score scratch */
#define STORE_O(jj, oj)                                                                           \
  if ((jj) * TN < dvpad) {                                                                        \
    subgroupBarrier ();                                                                           \
    coop_store (oj, Ss, scratch, TN, false);                                                      \
    subgroupMemoryBarrierShared ();                                                               \
    subgroupBarrier ();                                                                           \
    for (uint e = lane; e < TM * TN; e += SG) {                                                   \
      const uint r = e / TN, c = (jj) * TN + e % TN, i = i0 + warp * TM + r;                      \
      if (i < p.lq && c < p.dv)                                                                   \
        o[p.o_off + (b * p.lq + i) * p.ld_o + h * p.dv + c] = Ss[scratch + e] / Ls[warp * TM + r]; \
    }                                                                                             \
  }

void
main ()
{
  const uint warp = gl_SubgroupID, lane = gl_SubgroupInvocationID;
  const uint i0 = gl_WorkGroupID.x * BQ, h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
  const uint qbase = p.q_off + b * p.lq * p.ld_q + h * p.d;
  const uint kbase = p.k_off + b * p.lk * p.ld_k + h * p.d;
  const uint vbase = p.v_off + b * p.lk * p.ld_v + h * p.dv;
  const uint dpad = (p.d + TK - 1) / TK * TK, dvpad = (p.dv + TN - 1) / TN * TN;
  const uint row = lane / LPR, c0 = lane % LPR * CPL;   /* this lane's score row and columns */

  /* q fragments of this subgroup's rows, staged BKV rows at a time */
  MAT_A qh0, qh1, qh2, qh3, ql0, ql1, ql2, ql3;
#if DMAX / TK == 8
  MAT_A qh4, qh5, qh6, qh7, ql4, ql5, ql6, ql7;
#endif
  for (uint r0 = 0; r0 < BQ; r0 += BKV) {
    barrier ();
    stage (0u, qbase, p.ld_q, p.lq, i0 + r0, p.d, dpad);
    barrier ();
    if (warp * TM >= r0 && warp * TM < r0 + BKV) {
      LOAD_Q (0, qh0, ql0);
      LOAD_Q (1, qh1, ql1);
      LOAD_Q (2, qh2, ql2);
      LOAD_Q (3, qh3, ql3);
#if DMAX / TK == 8
      LOAD_Q (4, qh4, ql4);
      LOAD_Q (5, qh5, ql5);
      LOAD_Q (6, qh6, ql6);
      LOAD_Q (7, qh7, ql7);
#endif
    }
  }

  /* pass 1: row maxima of the scaled scores */
  MAT_C s0, s1, s2, s3;
  float m = -1.0 / 0.0;
  for (uint j0 = 0; j0 < p.lk; j0 += BKV) {
    barrier ();
    stage (1u, kbase, p.ld_k, p.lk, j0, p.d, dpad);
    barrier ();
    SCORES (false);
    for (uint c = 0; c < CPL; c++)
      if (j0 + c0 + c < p.lk)
        m = max (m, Ss[warp * TM * BKV + row * BKV + c0 + c] * p.scale);
    subgroupBarrier ();
  }
  for (uint x = 1; x < LPR; x <<= 1)
    m = max (m, subgroupShuffleXor (m, x));

  /* pass 2: p = e^{s·scale - m}, l = Σ p, O += P·V */
  MAT_C o0 = MAT_C (0.0), o1 = MAT_C (0.0), o2 = MAT_C (0.0), o3 = MAT_C (0.0);
#if DMAX / TN >= 8
  MAT_C o4 = MAT_C (0.0), o5 = MAT_C (0.0), o6 = MAT_C (0.0), o7 = MAT_C (0.0);
#endif
#if DMAX / TN == 16
  MAT_C o8 = MAT_C (0.0), o9 = MAT_C (0.0), o10 = MAT_C (0.0), o11 = MAT_C (0.0);
  MAT_C o12 = MAT_C (0.0), o13 = MAT_C (0.0), o14 = MAT_C (0.0), o15 = MAT_C (0.0);
#endif
  float l = 0.0;
  for (uint j0 = 0; j0 < p.lk; j0 += BKV) {
    barrier ();
    stage (1u, kbase, p.ld_k, p.lk, j0, p.d, dpad);
    barrier ();
    SCORES (true);
    for (uint c = 0; c < CPL; c++) {
      const float e = j0 + c0 + c < p.lk ? exp (Ss[warp * TM * BKV + row * BKV + c0 + c] * p.scale - m) : 0.0;
      const float eh = hi_part (e);
      l += e;
      Ph[(warp * TM + row) * PS + c0 + c] = float16_t (eh);
      Pl[(warp * TM + row) * PS + c0 + c] = float16_t (e - eh);
    }
    barrier ();                           /* every subgroup is done with the keys */
    stage (2u, vbase, p.ld_v, p.lk, j0, p.dv, dvpad);
    barrier ();
    for (uint kk = 0; kk < BKV; kk += TK) {
      MAT_A ph, pl;
      coop_load (ph, Ph, warp * TM * PS + kk, PS, false);
      coop_load (pl, Pl, warp * TM * PS + kk, PS, false);
      PV_J (0, o0);
      PV_J (1, o1);
      PV_J (2, o2);
      PV_J (3, o3);
#if DMAX / TN >= 8
      PV_J (4, o4);
      PV_J (5, o5);
      PV_J (6, o6);
      PV_J (7, o7);
#endif
#if DMAX / TN == 16
      PV_J (8, o8);
      PV_J (9, o9);
      PV_J (10, o10);
      PV_J (11, o11);
      PV_J (12, o12);
      PV_J (13, o13);
      PV_J (14, o14);
      PV_J (15, o15);
#endif
    }
  }
  for (uint x = 1; x < LPR; x <<= 1)
    l += subgroupShuffleXor (l, x);
  if (lane % LPR == 0u)
    Ls[warp * TM + row] = l;
  if (big)
    atomicAdd (overflow, 1u);

  /* O / l, fragment by fragment through this subgroup's score scratch */
  const uint scratch = warp * TM * BKV;
  STORE_O (0, o0);
  STORE_O (1, o1);
  STORE_O (2, o2);
  STORE_O (3, o3);
#if DMAX / TN >= 8
  STORE_O (4, o4);
  STORE_O (5, o5);
  STORE_O (6, o6);
  STORE_O (7, o7);
#endif
#if DMAX / TN == 16
  STORE_O (8, o8);
  STORE_O (9, o9);
  STORE_O (10, o10);
  STORE_O (11, o11);
  STORE_O (12, o12);
  STORE_O (13, o13);
  STORE_O (14, o14);
  STORE_O (15, o15);
#endif
}
