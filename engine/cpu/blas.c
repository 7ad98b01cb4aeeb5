/* engine/cpu/blas.c: OpenBLAS set-up and the checked sgemm wrapper (see blas.h). */
#include "engine/cpu/blas.h"

#include <string.h>

#ifdef EASEL_HAVE_OPENBLAS_SET_NUM_THREADS
/* declared by OpenBLAS's cblas.h, not by a generic one (Debian may point cblas.h elsewhere) */
void openblas_set_num_threads (int num_threads);
#endif

void
easel_cpu_blas_init (void)
{
#ifdef EASEL_HAVE_OPENBLAS_SET_NUM_THREADS
  openblas_set_num_threads (1);
#endif
}

void
easel_cpu_sgemm (gboolean     trans_b,
                 gint64       m,
                 gint64       n,
                 gint64       k,
                 float        alpha,
                 const float *a,
                 gint64       lda,
                 const float *b,
                 gint64       ldb,
                 float        beta,
                 float       *c,
                 gint64       ldc)
{
  g_return_if_fail (m >= 0 && n >= 0 && k >= 0 && m <= G_MAXINT && n <= G_MAXINT && k <= G_MAXINT);
  g_return_if_fail (lda <= G_MAXINT && ldb <= G_MAXINT && ldc <= G_MAXINT && ldc >= MAX (n, 1));
  if (m == 0 || n == 0)
    return;
  if (k == 0) {
    /* BLAS rejects lda < 1; the product is empty, C = beta · C */
    for (gint64 i = 0; i < m; i++) {
      float *row = c + i * ldc;
      if (beta == 0.0f)
        memset (row, 0, sizeof (float) * n);
      else
        for (gint64 j = 0; j < n; j++)
          row[j] *= beta;
    }
    return;
  }
  g_return_if_fail (lda >= k && ldb >= (trans_b ? k : n));
  cblas_sgemm (CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
               (int) m, (int) n, (int) k, alpha, a, (int) lda, b, (int) ldb, beta, c, (int) ldc);
}
