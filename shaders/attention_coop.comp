/* shaders/attention_coop.comp: softmax (q kᵀ · scale) v per (batch, head) on cooperative matrices,
 * the same views and push block as attention.comp (non-causal; heads up to DMAX wide; the backend
 * runs the others on attention.comp). Spellings, fragment shapes and subgroup size as in
 * matmul_coop.glsl (GL_NV_cooperative_matrix by default, -DCOOPMAT_KHR for a newer glslc).
 *
 * A workgroup of NW subgroups takes BQ = NW · TM query rows of one head; subgroup w owns rows
 * w·TM .. +TM, its q fragments held in registers for the whole dispatch. Keys and values are
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
#define DMAX 128                          /* == ATTENTION_COOP_MAX_HEAD in engine/vulkan/ops.c */
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
  MAT_A qh[DMAX / TK], ql[DMAX / TK];
  for (uint r0 = 0; r0 < BQ; r0 += BKV) {
    barrier ();
    stage (0u, qbase, p.ld_q, p.lq, i0 + r0, p.d, dpad);
    barrier ();
    if (warp * TM >= r0 && warp * TM < r0 + BKV) {
      [[unroll]] for (uint f = 0; f < DMAX / TK; f++)
        if (f * TK < dpad) {
          coop_load (qh[f], Th, (warp * TM - r0) * DS + f * TK, DS, false);
          coop_load (ql[f], Tl, (warp * TM - r0) * DS + f * TK, DS, false);
        }
    }
  }

  /* pass 1: row maxima of the scaled scores */
  float m = -1.0 / 0.0;
  for (uint j0 = 0; j0 < p.lk; j0 += BKV) {
    barrier ();
    stage (1u, kbase, p.ld_k, p.lk, j0, p.d, dpad);
    barrier ();
    MAT_C s[BKV / TN];
    [[unroll]] for (uint j = 0; j < BKV / TN; j++)
      s[j] = MAT_C (0.0);
    [[unroll]] for (uint f = 0; f < DMAX / TK; f++)
      if (f * TK < dpad) {
        [[unroll]] for (uint j = 0; j < BKV / TN; j++) {
          MAT_B kb;
          coop_load (kb, Th, j * TN * DS + f * TK, DS, true);   /* kᵀ: d x keys, column-major */
          s[j] = coop_mul_add (qh[f], kb, s[j]);
        }
      }
    [[unroll]] for (uint j = 0; j < BKV / TN; j++)
      coop_store (s[j], Ss, warp * TM * BKV + j * TN, BKV, false);
    subgroupMemoryBarrierShared ();
    subgroupBarrier ();
    for (uint c = 0; c < CPL; c++)
      if (j0 + c0 + c < p.lk)
        m = max (m, Ss[warp * TM * BKV + row * BKV + c0 + c] * p.scale);
    subgroupBarrier ();
  }
  for (uint x = 1; x < LPR; x <<= 1)
    m = max (m, subgroupShuffleXor (m, x));

  /* pass 2: p = e^{s·scale - m}, l = Σ p, O += P·V */
  MAT_C acc[DMAX / TN];
  [[unroll]] for (uint jj = 0; jj < DMAX / TN; jj++)
    acc[jj] = MAT_C (0.0);
  float l = 0.0;
  for (uint j0 = 0; j0 < p.lk; j0 += BKV) {
    barrier ();
    stage (1u, kbase, p.ld_k, p.lk, j0, p.d, dpad);
    barrier ();
    MAT_C s[BKV / TN];
    [[unroll]] for (uint j = 0; j < BKV / TN; j++)
      s[j] = MAT_C (0.0);
    [[unroll]] for (uint f = 0; f < DMAX / TK; f++)
      if (f * TK < dpad) {
        [[unroll]] for (uint j = 0; j < BKV / TN; j++) {
          MAT_B kh, kl;
          coop_load (kh, Th, j * TN * DS + f * TK, DS, true);
          coop_load (kl, Tl, j * TN * DS + f * TK, DS, true);
          s[j] = coop_mul_add (qh[f], kh, s[j]);
          s[j] = coop_mul_add (qh[f], kl, s[j]);
          s[j] = coop_mul_add (ql[f], kh, s[j]);
        }
      }
    [[unroll]] for (uint j = 0; j < BKV / TN; j++)
      coop_store (s[j], Ss, warp * TM * BKV + j * TN, BKV, false);
    subgroupMemoryBarrierShared ();
    subgroupBarrier ();
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
    [[unroll]] for (uint kk = 0; kk < BKV; kk += TK) {
      MAT_A ph, pl;
      coop_load (ph, Ph, warp * TM * PS + kk, PS, false);
      coop_load (pl, Pl, warp * TM * PS + kk, PS, false);
      [[unroll]] for (uint jj = 0; jj < DMAX / TN; jj++)
        if (jj * TN < dvpad) {
          MAT_B vh, vl;
          coop_load (vh, Th, kk * DS + jj * TN, DS, false);      /* v: keys x dv, row-major */
          coop_load (vl, Tl, kk * DS + jj * TN, DS, false);
          acc[jj] = coop_mul_add (ph, vh, acc[jj]);
          acc[jj] = coop_mul_add (ph, vl, acc[jj]);
          acc[jj] = coop_mul_add (pl, vh, acc[jj]);
        }
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
  [[unroll]] for (uint jj = 0; jj < DMAX / TN; jj++)
    if (jj * TN < dvpad) {
      subgroupBarrier ();
      coop_store (acc[jj], Ss, scratch, TN, false);
      subgroupMemoryBarrierShared ();
      subgroupBarrier ();
      for (uint e = lane; e < TM * TN; e += SG) {
        const uint r = e / TN, c = jj * TN + e % TN, i = i0 + warp * TM + r;
        if (i < p.lq && c < p.dv)
          o[p.o_off + (b * p.lq + i) * p.ld_o + h * p.dv + c] = Ss[scratch + e] / Ls[warp * TM + r];
      }
    }
}
