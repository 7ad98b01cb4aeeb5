/* tests/fuzz/fuzz-pickle.c: libFuzzer target for the torch zip reader and its restricted unpickler
 * (engine/pickle.c). The input is parsed in place (no copy, so ASan sees any read past its end);
 * a refusal must be a GError naming the input. On success every tensor under the root is walked:
 * each element its strides reach is read (converted to fp32), and each view must lie inside the
 * input. */
#include <glib.h>
#include <string.h>

#include "engine/pickle.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

typedef struct {
  const guint8 *begin, *end;
  volatile float sink;
} Walk;

static void
visit (const char *path, const EaselPyTensor *t, gpointer user_data)
{
  Walk *w = user_data;
  gint64 numel = easel_py_tensor_numel (t);
  g_assert (numel >= 0);
  g_assert (path != NULL);
  if (numel > 0) {
    g_assert (t->data >= w->begin && t->data <= w->end);
    g_autofree float *f = easel_py_tensor_to_f32 (t);
    for (gint64 i = 0; i < numel; i++)
      w->sink += f[i];
  }
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr(GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselTorchFile) f = easel_torch_new_from_bytes (bytes, "fuzz.ckpt", &error);

  if (f == NULL) {
    g_assert (error != NULL && g_str_has_prefix (error->message, "fuzz.ckpt: "));
    return 0;
  }
  Walk w = { data, data + size, 0 };
  const EaselPyObject *root = easel_torch_root (f);
  g_assert (root != NULL);
  easel_py_foreach_tensor (root, visit, &w);
  (void) easel_py_dict_get (root, "state_dict");
  return 0;
}
