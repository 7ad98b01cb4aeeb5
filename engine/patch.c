/* engine/patch.c: helpers of patch.h (the weights a LoRA may rewrite, and the graph of run-time
 * low-rank adapters). */
#include "patch.h"

#include "weights.h"

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
  target->file_dtype = t->dtype;
  for (int d = 0; d < t->n_dims; d++)
    n *= (guint64) t->shape[d];
  target->stored.n_elements = n;
  target->stored.nbytes = n * easel_dtype_size (t->dtype);
  target->cols = t->n_dims >= 1 && t->shape[0] > 0 ? (gint64) (n / (guint64) t->shape[0]) : 0;
}

EaselTensor *
easel_patch_linear (EaselGraph *g, EaselTensor *x, EaselTensor *w, EaselTensor *b, const EaselPatchLowRank *lr)
{
  EaselTensor *y = easel_op_linear (g, x, w, b);
  if (lr == NULL)
    return y;
  EaselTensor *d = easel_op_linear (g, x, easel_graph_weight_st (g, &lr->down), NULL);     /* (..., R) */
  return easel_op_add (g, y, easel_op_linear (g, d, easel_graph_weight_st (g, &lr->up), NULL));
}

EaselTensor *
easel_patch_conv2d (EaselGraph *g, EaselTensor *x, EaselTensor *w, EaselTensor *b, int stride, int pad,
                    const EaselPatchLowRank *lr)
{
  EaselTensor *y = easel_op_conv2d (g, x, w, b, stride, pad);
  if (lr == NULL)
    return y;
  EaselTensor *d = easel_op_conv2d (g, x, easel_graph_weight_st (g, &lr->down), NULL, stride, pad);   /* (B, R, Ho, Wo) */
  return easel_op_add (g, y, easel_op_conv2d (g, d, easel_graph_weight_st (g, &lr->up), NULL, 1, 0));
}
