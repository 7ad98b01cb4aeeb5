/* tests/fuzz/fuzz-spirv-coopmat.c: the SPV_NV -> SPV_KHR cooperative matrix rewrite
 * (shaders/spirv-coopmat.c) on arbitrary words; a module it returns must be framed (its
 * instructions' word counts walk exactly to its end) and keep at least the input's id bound. */
#include <string.h>

#include "shaders/spirv-coopmat.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  gsize n = size / 4, n_out = 0, at = 5;
  g_autofree guint32 *words = g_new (guint32, n + 1);
  g_autofree guint32 *out = NULL;
  GError *error = NULL;

  memcpy (words, data, n * 4);
  out = easel_spirv_coopmat_nv_to_khr (words, n, &n_out, &error);
  if (out == NULL) {
    g_assert (error != NULL);
    g_error_free (error);
    return 0;
  }
  g_assert (n_out >= 5 && out[3] >= words[3]);
  while (at < n_out) {
    g_assert ((out[at] >> 16) != 0 && (out[at] >> 16) <= n_out - at);
    at += out[at] >> 16;
  }
  g_assert (at == n_out);
  return 0;
}
