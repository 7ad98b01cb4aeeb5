/* engine/cpu/pool.c: persistent thread pool with a parallel-for over row ranges (see pool.h).
 *
 * A job is published under the mutex with a new generation number and broadcast; each worker
 * runs its range and the last one to finish signals the caller, which has run range 0 itself
 * meanwhile. Workers that have no range in a job (nth < n_threads) do not take part in the count,
 * so a job never waits on a sleeping thread that has nothing to do. */
#include "engine/cpu/pool.h"

#include "engine/cpu/blas.h"

struct _EaselCpuPool {
  int n_threads;
  GThread *threads[EASEL_CPU_MAX_THREADS];   /* [1, n_threads): workers; [0] unused (the caller) */

  GMutex mutex;
  GCond wake;           /* workers wait here for a new generation or quit */
  GCond done;           /* the caller waits here for pending == 0 */
  guint64 generation;
  int pending;          /* workers with a range in the current job that have not finished */
  gboolean quit;

  /* the current job, valid while pending > 0 or the caller runs range 0 */
  EaselCpuRangeFunc func;
  gpointer user_data;
  gint64 n;
  int nth;
};

typedef struct {
  EaselCpuPool *pool;
  int ith;
} Worker;

static _Thread_local gboolean in_pool_job;   /* set on workers, and on the caller while it runs range 0 */

static inline void
job_range (gint64 n, int ith, int nth, gint64 *begin, gint64 *end)
{
  /* n * ith fits: n is a tensor extent (< 2^48) and ith < 256 */
  *begin = n * ith / nth;
  *end = n * (ith + 1) / nth;
}

static gpointer
worker_main (gpointer data)
{
  EaselCpuPool *pool = ((Worker *) data)->pool;
  int ith = ((Worker *) data)->ith;
  guint64 seen = 0;

  g_free (data);
  in_pool_job = TRUE;
  g_mutex_lock (&pool->mutex);
  for (;;) {
    while (pool->generation == seen && !pool->quit)
      g_cond_wait (&pool->wake, &pool->mutex);
    if (pool->quit)
      break;
    seen = pool->generation;
    if (ith >= pool->nth)
      continue;

    EaselCpuRangeFunc func = pool->func;
    gpointer user_data = pool->user_data;
    gint64 begin, end;
    job_range (pool->n, ith, pool->nth, &begin, &end);
    g_mutex_unlock (&pool->mutex);

    if (begin < end)
      func (begin, end, ith, user_data);

    g_mutex_lock (&pool->mutex);
    if (--pool->pending == 0)
      g_cond_signal (&pool->done);
  }
  g_mutex_unlock (&pool->mutex);
  return NULL;
}

static int
threads_from_env (void)
{
  const char *s = g_getenv ("EASEL_THREADS");
  if (s && *s) {
    char *end = NULL;
    gint64 v = g_ascii_strtoll (s, &end, 10);
    if (end && *end == '\0' && v >= 1 && v <= EASEL_CPU_MAX_THREADS)
      return (int) v;
    g_debug ("EASEL_THREADS=%s is not a number in [1, %d]; using all processors", s, EASEL_CPU_MAX_THREADS);
  }
  return (int) MIN (g_get_num_processors (), EASEL_CPU_MAX_THREADS);
}

EaselCpuPool *
easel_cpu_pool_new (int n_threads)
{
  static gsize blas_once = 0;
  if (g_once_init_enter (&blas_once)) {
    easel_cpu_blas_init ();
    g_once_init_leave (&blas_once, 1);
  }

  EaselCpuPool *pool = g_new0 (EaselCpuPool, 1);
  pool->n_threads = n_threads > 0 ? MIN (n_threads, EASEL_CPU_MAX_THREADS) : threads_from_env ();
  g_mutex_init (&pool->mutex);
  g_cond_init (&pool->wake);
  g_cond_init (&pool->done);
  for (int i = 1; i < pool->n_threads; i++) {
    Worker *w = g_new (Worker, 1);
    w->pool = pool;
    w->ith = i;
    pool->threads[i] = g_thread_new ("easel-cpu", worker_main, w);
  }
  return pool;
}

void
easel_cpu_pool_free (EaselCpuPool *pool)
{
  if (!pool)
    return;
  g_mutex_lock (&pool->mutex);
  pool->quit = TRUE;
  g_cond_broadcast (&pool->wake);
  g_mutex_unlock (&pool->mutex);
  for (int i = 1; i < pool->n_threads; i++)
    g_thread_join (pool->threads[i]);
  g_mutex_clear (&pool->mutex);
  g_cond_clear (&pool->wake);
  g_cond_clear (&pool->done);
  g_free (pool);
}

int
easel_cpu_pool_get_n_threads (EaselCpuPool *pool)
{
  g_return_val_if_fail (pool != NULL, 1);
  return pool->n_threads;
}

void
easel_cpu_pool_run (EaselCpuPool     *pool,
                    gint64            n,
                    gint64            min_chunk,
                    EaselCpuRangeFunc func,
                    gpointer          user_data)
{
  g_return_if_fail (pool != NULL && func != NULL && n >= 0);
  if (n == 0)
    return;

  gint64 want = n / MAX (min_chunk, 1);
  int nth = (int) CLAMP (want, 1, pool->n_threads);
  if (nth == 1 || in_pool_job) {
    func (0, n, 0, user_data);
    return;
  }

  g_mutex_lock (&pool->mutex);
  pool->func = func;
  pool->user_data = user_data;
  pool->n = n;
  pool->nth = nth;
  pool->pending = nth - 1;
  pool->generation++;
  g_cond_broadcast (&pool->wake);
  g_mutex_unlock (&pool->mutex);

  gint64 begin, end;
  job_range (n, 0, nth, &begin, &end);
  in_pool_job = TRUE;
  if (begin < end)
    func (begin, end, 0, user_data);
  in_pool_job = FALSE;

  g_mutex_lock (&pool->mutex);
  while (pool->pending > 0)
    g_cond_wait (&pool->done, &pool->mutex);
  g_mutex_unlock (&pool->mutex);
}
