/* tests/fuzz/fuzz-safetensors.c: libFuzzer target (not written yet). */
#include <glib.h>

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  return 0;
}
