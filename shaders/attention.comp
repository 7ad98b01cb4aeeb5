/* shaders/attention.comp: softmax (q kᵀ · scale [+ causal mask]) v per (batch, head), flash-style:
 * a workgroup takes BQ query rows of one head and walks the keys in blocks of BK with an online
 * softmax (running max m and sum l per row, the accumulator rescaled by e^{m - m'}), so memory
 * does not grow with Lq · Lk. q, k, v are strided views of (B, L, H·d) projections: row i of batch b
 * at b·L·ld + i·ld, head h at + h·d (a fused QKV buffer has ld = 3C). causal: key j visible to query
 * i when j <= i. Head widths up to 8 · ACC (256; 512 for the -DACC=64 variant). Group (x, y, z) = (query block, head, batch).
 * Scores go through shared memory; 8 threads share a query row, each owning every 8th output dim. */
#version 450
#include "common.glsl"

#define BQ 16
#define BK 32
#define TPR 8
#ifndef ACC
#define ACC 32           /* attention_wide: 64, heads up to 512 wide (the VAE's single head) */
#endif

layout (local_size_x = 128) in;
layout (push_constant) uniform Push {    /* == EaselVkAttentionPush */
  uint lq, lk, d, dv;
  uint ld_q, ld_k, ld_v, ld_o;
  uint q_off, k_off, v_off, o_off;
  uint causal;
  float scale;
} p;
layout (binding = 0) readonly buffer Q { ACT_T q[]; };
layout (binding = 1) readonly buffer K { ACT_T k[]; };
layout (binding = 2) readonly buffer V { ACT_T v[]; };
layout (binding = 3) writeonly buffer O { ACT_T o[]; };

shared float S[BQ][BK + 1];
shared float m_s[BQ], l_s[BQ], corr_s[BQ];

void
main ()
{
  const uint tid = gl_LocalInvocationID.x, r = tid / TPR, lane = tid % TPR;
  const uint i0 = gl_WorkGroupID.x * BQ, h = gl_WorkGroupID.y, b = gl_WorkGroupID.z;
  const uint qbase = p.q_off + b * p.lq * p.ld_q + h * p.d;
  const uint kbase = p.k_off + b * p.lk * p.ld_k + h * p.d;
  const uint vbase = p.v_off + b * p.lk * p.ld_v + h * p.dv;
  const uint kend = p.causal != 0u ? min (p.lk, i0 + BQ) : p.lk;
  float acc[ACC];
  [[unroll]] for (uint j = 0; j < ACC; j++)
    acc[j] = 0.0;
  if (tid < BQ) {
    m_s[tid] = -1.0 / 0.0;
    l_s[tid] = 0.0;
  }
  barrier ();

  for (uint j0 = 0; j0 < kend; j0 += BK) {
    /* scores of the BQ x BK block, 4 per thread */
    [[unroll]] for (uint s = 0; s < (BQ * BK) / 128u; s++) {
      const uint e = tid + 128u * s, rr = e / BK, cc = e % BK;
      const uint qi = i0 + rr, kj = j0 + cc;
      float sc = -1.0 / 0.0;
      if (qi < p.lq && kj < kend && (p.causal == 0u || kj <= qi)) {
        float dot = 0.0;
        for (uint e2 = 0; e2 < p.d; e2++)
          dot = fma (float (q[qbase + qi * p.ld_q + e2]), float (k[kbase + kj * p.ld_k + e2]), dot);
        sc = dot * p.scale;
      }
      S[rr][cc] = sc;
    }
    barrier ();
    /* online softmax, one thread per row */
    if (tid < BQ) {
      const float m_old = m_s[tid];
      float mx = m_old;
      for (uint c = 0; c < BK; c++)
        mx = max (mx, S[tid][c]);
      float corr = 1.0, sum = 0.0;
      if (!isinf (mx)) {                 /* mx = -inf: nothing visible yet, S stays unused */
        corr = isinf (m_old) ? 0.0 : exp (m_old - mx);
        for (uint c = 0; c < BK; c++) {
          const float pe = isinf (S[tid][c]) ? 0.0 : exp (S[tid][c] - mx);
          S[tid][c] = pe;
          sum += pe;
        }
      } else {
        for (uint c = 0; c < BK; c++)
          S[tid][c] = 0.0;
      }
      l_s[tid] = l_s[tid] * corr + sum;
      m_s[tid] = mx;
      corr_s[tid] = corr;
    }
    barrier ();
    /* acc = acc · corr + P V */
    const float corr = corr_s[r];
    const uint nk = min (BK, kend - j0);
    [[unroll]] for (uint j = 0; j < ACC; j++) {
      const uint e = lane + TPR * j;
      if (e < p.dv) {
        float a = acc[j] * corr;
        for (uint c = 0; c < nk; c++)
          a = fma (S[r][c], float (v[vbase + (j0 + c) * p.ld_v + e]), a);
        acc[j] = a;
      }
    }
    barrier ();
  }
  const uint qi = i0 + r;
  if (qi < p.lq) {
    const float inv = 1.0 / l_s[r];
    [[unroll]] for (uint j = 0; j < ACC; j++) {
      const uint e = lane + TPR * j;
      if (e < p.dv)
        o[p.o_off + (b * p.lq + qi) * p.ld_o + h * p.dv + e] = ACT_T (acc[j] * inv);
    }
  }
}
