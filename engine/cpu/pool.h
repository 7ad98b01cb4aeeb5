/* engine/cpu/pool.h: the CPU backend's persistent thread pool and its parallel-for over ranges.
 *
 * One pool per engine; the engine thread that calls easel_cpu_pool_run () works as thread 0 and
 * the pool's n_threads - 1 workers sleep on a condition variable between calls, so an idle pool
 * costs nothing and a call allocates nothing. Thread ith of nth gets the contiguous range
 * [n * ith / nth, n * (ith + 1) / nth), the split ggml's CPU ops use (ggml-org/ggml
 * src/ggml-cpu/ops.cpp). OpenBLAS is set to one thread once, when the first pool is made: every
 * sgemm runs inside a pool thread on that thread's share, so the two never fight for cores. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _EaselCpuPool EaselCpuPool;

/* Called once per used thread: rows [begin, end) of the job, ith in [0, nth). */
typedef void (*EaselCpuRangeFunc) (gint64   begin,
                                   gint64   end,
                                   int      ith,
                                   gpointer user_data);

#define EASEL_CPU_MAX_THREADS 256

/* n_threads <= 0: $EASEL_THREADS when it holds a number in [1, 256], else g_get_num_processors ().
 * transfer full. */
EaselCpuPool *easel_cpu_pool_new           (int            n_threads);
void          easel_cpu_pool_free          (EaselCpuPool  *pool);
int           easel_cpu_pool_get_n_threads (EaselCpuPool  *pool);

/* Splits [0, n) over min (n_threads, n / min_chunk) threads (at least one) and returns when all
 * are done. One caller at a time; a call made from inside a range function runs serially on the
 * calling thread (ith 0 of 1). */
void          easel_cpu_pool_run           (EaselCpuPool     *pool,
                                            gint64            n,
                                            gint64            min_chunk,
                                            EaselCpuRangeFunc func,
                                            gpointer          user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselCpuPool, easel_cpu_pool_free)

G_END_DECLS
