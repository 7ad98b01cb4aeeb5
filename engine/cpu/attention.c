/* engine/cpu/attention.c: scaled dot-product attention, fp32, CPU, blockwise with an online softmax.
 *
 * Semantics of torch.nn.functional.scaled_dot_product_attention (is_causal: the top-left
 * triangle, key j visible to query i when j <= i). The flash-attention recurrence (Dao et al.
 * 2022; the same running max / running sum ggml's CPU flash_attn_ext keeps): for each block of
 * BQ query rows, walk the keys in blocks of BK, S = scale · Q Kᵀ by sgemm, m' = max (m, rowmax S),
 * P = exp (S - m'), l = l · e^{m - m'} + rowsum P, O = O · e^{m - m'} + P V by sgemm, and divide
 * by l at the end. Scratch per thread is BQ · (BK + d + 2) floats, whatever lq and lk are. Q, K,
 * V and O are strided views of (B, L, heads · d) buffers, so no head is ever transposed or copied. */
#include "engine/cpu/ops.h"

#include <math.h>

#include "engine/cpu/blas.h"
#include "engine/cpu/vmath.h"

/* query rows and key rows per block: 32/64/128 x 256/512 measured within noise of each other */
#define BQ 64
#define BK 256

gsize
easel_cpu_attention_workspace (const EaselCpuAttention *a, int n_threads)
{
  g_return_val_if_fail (a && n_threads >= 1, 0);
  return (gsize) BQ * (gsize) (BK + a->d + 2) * (gsize) n_threads;
}

typedef struct {
  float *o;
  const float *q, *k, *v;
  const EaselCpuAttention *a;
  float *work;
  gint64 n_qblocks;
} AttnJob;

static EASEL_CPU_SIMD float
row_max (const float *s, gint64 n)
{
  float m = -INFINITY;
  EASEL_CPU_VECTOR_REDUCE (max, m)
  for (gint64 i = 0; i < n; i++)
    m = s[i] > m ? s[i] : m;
  return m;
}

/* s (n) = exp (s - m); returns the sum */
static EASEL_CPU_SIMD float
exp_row (float *s, gint64 n, float m)
{
  float sum = 0.0f;
  EASEL_CPU_VECTOR_REDUCE (+, sum)
  for (gint64 i = 0; i < n; i++) {
    float p = easel_vexp (s[i] - m);
    s[i] = p;
    sum += p;
  }
  return sum;
}

static EASEL_CPU_SIMD void
scale_row (float *y, const float *x, gint64 n, float f)
{
  EASEL_CPU_VECTOR
  for (gint64 i = 0; i < n; i++)
    y[i] = x[i] * f;
}

static void
attention_range (gint64 begin, gint64 end, int ith, gpointer data)
{
  const AttnJob *j = data;
  const EaselCpuAttention *a = j->a;
  const gint64 d = a->d;
  float *S = j->work + (gsize) ith * BQ * (BK + d + 2);
  float *acc = S + BQ * BK;          /* (BQ, d) */
  float *m = acc + BQ * d;           /* (BQ) running max */
  float *l = m + BQ;                 /* (BQ) running sum */

  for (gint64 t = begin; t < end; t++) {
    gint64 bh = t / j->n_qblocks, b = bh / a->heads, h = bh % a->heads;
    gint64 i0 = t % j->n_qblocks * BQ, nq = MIN (BQ, a->lq - i0);
    const float *qp = j->q + (b * a->lq + i0) * a->ld_q + h * d;
    gint64 kend = a->causal ? MIN (a->lk, i0 + nq) : a->lk;

    for (gint64 i = 0; i < nq; i++) {
      m[i] = -INFINITY;
      l[i] = 0.0f;
    }
    for (gint64 i = 0; i < nq * d; i++)
      acc[i] = 0.0f;

    for (gint64 j0 = 0; j0 < kend; j0 += BK) {
      gint64 nk = MIN (BK, kend - j0);
      const float *kp = j->k + (b * a->lk + j0) * a->ld_k + h * d;
      const float *vp = j->v + (b * a->lk + j0) * a->ld_v + h * d;
      easel_cpu_sgemm (TRUE, nq, nk, d, a->scale, qp, a->ld_q, kp, a->ld_k, 0.0f, S, nk);

      for (gint64 i = 0; i < nq; i++) {
        float *s = S + i * nk;
        gint64 valid = a->causal ? CLAMP (i0 + i - j0 + 1, 0, nk) : nk;
        for (gint64 c = valid; c < nk; c++)
          s[c] = 0.0f;
        if (valid == 0)
          continue;
        float m_new = MAX (m[i], row_max (s, valid));
        float corr = m[i] == -INFINITY ? 0.0f : easel_vexp (m[i] - m_new);
        l[i] = l[i] * corr + exp_row (s, valid, m_new);
        m[i] = m_new;
        if (corr != 1.0f)
          scale_row (acc + i * d, acc + i * d, d, corr);
      }
      easel_cpu_sgemm (FALSE, nq, d, nk, 1.0f, S, nk, vp, a->ld_v, 1.0f, acc, d);
    }

    float *op = j->o + (b * a->lq + i0) * a->ld_o + h * d;
    for (gint64 i = 0; i < nq; i++)
      scale_row (op + i * a->ld_o, acc + i * d, d, 1.0f / l[i]);
  }
}

void
easel_cpu_attention_f32 (EaselCpuPool *pool, float *o, const float *q, const float *k,
                         const float *v, const EaselCpuAttention *a, float *work)
{
  g_return_if_fail (pool && o && q && k && v && a && work);
  g_return_if_fail (a->batch >= 0 && a->heads >= 1 && a->lq >= 0 && a->lk >= 1 && a->d >= 1);
  g_return_if_fail (a->ld_q >= a->heads * a->d && a->ld_k >= a->heads * a->d);
  g_return_if_fail (a->ld_v >= a->heads * a->d && a->ld_o >= a->heads * a->d);
  g_return_if_fail (!a->causal || a->lk >= a->lq);
  AttnJob j = { o, q, k, v, a, work, (a->lq + BQ - 1) / BQ };
  /* one task = one block of query rows of one head: ~4 · BQ · lk · d flops */
  double task_flops = 4.0 * BQ * (double) a->lk * (double) a->d;
  easel_cpu_pool_run (pool, a->batch * a->heads * j.n_qblocks, (gint64) (1e6 / task_flops) + 1, attention_range, &j);
}
