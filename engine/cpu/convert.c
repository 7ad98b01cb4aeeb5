/* engine/cpu/convert.c: weights to fp32 over the pool: F16 with the F16C instructions where the CPU
 * has them (8 values per instruction), BF16 by a shift, anything else through easel_dtype_to_f32.
 * The CPU backend converts fp16 checkpoints' weights with it, once or (over its cache budget) on
 * every use, so it must run at memory speed. */
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86_F16C 1
#endif

#include "engine/cpu/ops.h"
#include "engine/dtype.h"

#ifdef HAVE_X86_F16C
/* F16C and AVX in cpuid leaf 1 ecx, and the OS saving the ymm state (xgetbv bits 1-2). */
static gboolean
cpu_has_f16c (void)
{
  unsigned a, b, c, d;
  if (!__get_cpuid (1, &a, &b, &c, &d) || !(c & bit_F16C) || !(c & bit_AVX) || !(c & bit_OSXSAVE))
    return FALSE;
  unsigned lo, hi;
  __asm__ ("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 6) == 6;
}

__attribute__ ((target ("f16c,avx")))
static void
f16_to_f32_f16c (const guint16 *src, float *dst, gint64 n)
{
  gint64 i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128 ((const __m128i *) (src + i));
    _mm256_storeu_ps (dst + i, _mm256_cvtph_ps (h));
  }
  for (; i < n; i++)
    dst[i] = easel_f16_to_f32 (src[i]);
}
#endif

typedef struct {
  EaselDType dtype;
  const guint8 *src;
  float *dst;
  gboolean f16c;
} ConvertJob;

static void
convert_range (gint64 begin, gint64 end, int ith, gpointer user_data)
{
  const ConvertJob *j = user_data;
  gint64 n = end - begin;
  switch (j->dtype) {
  case EASEL_DTYPE_F16: {
    const guint16 *s = (const guint16 *) j->src + begin;
#ifdef HAVE_X86_F16C
    if (j->f16c) {
      f16_to_f32_f16c (s, j->dst + begin, n);
      return;
    }
#endif
    for (gint64 i = 0; i < n; i++)
      j->dst[begin + i] = easel_f16_to_f32 (s[i]);
    return;
  }
  case EASEL_DTYPE_BF16: {
    const guint16 *s = (const guint16 *) j->src + begin;
    guint32 *d = (guint32 *) (j->dst + begin);
    for (gint64 i = 0; i < n; i++)
      d[i] = (guint32) s[i] << 16;
    return;
  }
  default:
    easel_dtype_to_f32 (j->dtype, j->src + begin * easel_dtype_size (j->dtype), j->dst + begin, n);
    return;
  }
}

void
easel_cpu_convert_to_f32 (EaselCpuPool *pool, EaselDType dtype, const void *src, float *dst, gint64 n)
{
  ConvertJob j = { dtype, src, dst, FALSE };
#ifdef HAVE_X86_F16C
  static gsize checked = 0;
  static gboolean f16c = FALSE;
  if (g_once_init_enter (&checked)) {
    f16c = cpu_has_f16c ();
    g_once_init_leave (&checked, 1);
  }
  j.f16c = f16c;
#endif
  if (dtype == EASEL_DTYPE_F32) {
    memcpy (dst, src, n * sizeof (float));
    return;
  }
  easel_cpu_pool_run (pool, n, 1 << 16, convert_range, &j);
}
