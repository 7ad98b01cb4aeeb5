/* engine/conditioning.c: prompt weights, chunk and feature concatenation, SDXL's context and
 * pooled vector (see conditioning.h). */
#include "conditioning.h"

#include <string.h>

static double
mean (const float *z, gint64 n)
{
  double s = 0;
  for (gint64 i = 0; i < n; i++)
    s += z[i];
  return n > 0 ? s / (double)n : 0;
}

void
easel_cond_apply_weights (float *z, gint64 n, gint64 width, const float *weights)
{
  gint64 total = n * width;
  double before = mean (z, total);

  for (gint64 i = 0; i < n; i++)
    for (gint64 c = 0; c < width; c++)
      z[i * width + c] *= weights[i];
  double after = mean (z, total);
  if (after == 0)
    return;
  float k = (float)(before / after);
  for (gint64 i = 0; i < total; i++)
    z[i] *= k;
}

void
easel_cond_concat_tokens (float *out, const float *const *chunks, guint n_chunks, gint64 batch, gint64 tokens,
                          gint64 width)
{
  gsize row = (gsize)(tokens * width);
  for (gint64 b = 0; b < batch; b++)
    for (guint c = 0; c < n_chunks; c++)
      memcpy (out + ((gsize)b * n_chunks + c) * row, chunks[c] + (gsize)b * row, row * sizeof (float));
}

void
easel_cond_concat_features (float *out, const float *a, gint64 wa, const float *b, gint64 wb, gint64 rows)
{
  for (gint64 r = 0; r < rows; r++) {
    memcpy (out + r * (wa + wb), a + r * wa, wa * sizeof (float));
    memcpy (out + r * (wa + wb) + wa, b + r * wb, wb * sizeof (float));
  }
}

void
easel_cond_sdxl (float *context, float *pooled, const float *te1, gint64 w1, const float *te2, gint64 w2, gint64 batch,
                 gint64 tokens, const float *te2_pooled, gint64 n_chunks, gint64 p)
{
  easel_cond_concat_features (context, te1, w1, te2, w2, batch * tokens);
  for (gint64 b = 0; b < batch; b++)
    memcpy (pooled + b * p, te2_pooled + b * n_chunks * p, p * sizeof (float));
}

gboolean
easel_cond_sdxl_uncond_is_zero (const char *negative_prompt, gboolean force_zeros_for_empty_prompt)
{
  return force_zeros_for_empty_prompt && negative_prompt == NULL;
}
