/* engine/patch.c: helpers of patch.h (the weights a LoRA may rewrite). */
#include "patch.h"

void
easel_patch_target_free (gpointer target)
{
  EaselPatchTarget *t = target;
  if (t == NULL)
    return;
  g_free (t->module);
  g_free (t);
}

void
easel_patch_target_set_stored (EaselPatchTarget *target, const EaselStTensor *t)
{
  guint64 n = 1;
  target->stored = *t;
  for (int d = 0; d < t->n_dims; d++)
    n *= (guint64) t->shape[d];
  target->stored.n_elements = n;
  target->stored.nbytes = n * easel_dtype_size (t->dtype);
  target->cols = t->n_dims >= 1 && t->shape[0] > 0 ? (gint64) (n / (guint64) t->shape[0]) : 0;
}
