/* tests/fuzz/fuzz-safetensors.c: libFuzzer target for the safetensors reader. The input is
 * parsed in place (no copy, so ASan sees any read past its end); then every byte of every tensor
 * it claims and every metadata string is read, each tensor is converted to fp32, and the
 * (name, shape) list goes through the family detector. */
#include <glib.h>
#include <string.h>

#include "engine/family.h"
#include "engine/safetensors.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr(GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselSafetensors) st = easel_safetensors_new_from_bytes (bytes, "fuzz.safetensors", &error);
  volatile guint8 sink = 0;
  gsize n;

  if (st == NULL) {
    g_assert (error != NULL && g_str_has_prefix (error->message, "fuzz.safetensors: "));
    return 0;
  }
  n = easel_safetensors_n_tensors (st);
  g_autofree EaselKeyShape *keys = g_new0 (EaselKeyShape, n + 1);
  for (gsize i = 0; i < n; i++) {
    const EaselStTensor *t = easel_safetensors_tensor (st, i);
    g_assert (t->data >= data && t->nbytes <= size && t->data + t->nbytes <= data + size);
    for (gsize b = 0; b < t->nbytes; b++)
      sink ^= t->data[b];
    sink ^= (guint8) strlen (t->name);
    g_assert (easel_safetensors_find (st, t->name) == t);
    g_autofree float *f = easel_st_tensor_to_f32 (t);
    keys[i].name = t->name;
    keys[i].n_dims = t->n_dims;
    memcpy (keys[i].shape, t->shape, sizeof keys[i].shape);
  }
  for (gsize i = 0; i < easel_safetensors_n_metadata (st); i++)
    sink ^= (guint8) (strlen (easel_safetensors_metadata_key (st, i)) + strlen (easel_safetensors_metadata_value (st, i)));

  EaselDetection det;
  easel_detect_family (keys, n, &det);
  sink ^= (guint8) strlen (det.reason);
  (void) sink;
  return 0;
}
