/* engine/cpu/blas.h: the one place that includes cblas.h (OpenBLAS, found by engine/meson.build).
 *
 * Every kernel calls sgemm from inside a pool thread on that thread's share of the work, so OpenBLAS
 * itself must run single-threaded: easel_cpu_blas_init () sets that once (the first pool does it).
 * cblas takes int sizes; easel_cpu_sgemm () takes gint64 and checks they fit. */
#pragma once

#include <glib.h>
#include <cblas.h>

G_BEGIN_DECLS

void easel_cpu_blas_init (void);

/* Row-major C (m, n) = alpha · op(A) (m, k) · op(B) (k, n) + beta · C; trans_b: B is stored (n, k).
 * A is (m, k) with row stride lda; C has row stride ldc. k == 0 leaves beta · C. */
void easel_cpu_sgemm (gboolean     trans_b,
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
                      gint64       ldc);

G_END_DECLS
