/* engine/conditioning.h: turning text-encoder outputs into the UNet's conditioning, on the host in
 * fp32 (a context is at most a few hundred tokens of 2048 floats).
 *
 *  - prompt weights as A1111 applies them ("Original" emphasis, modules/sd_emphasis.py): each
 *    token's hidden state is multiplied by its weight, then everything is rescaled so that the
 *    mean over the chunk equals the mean before weighting;
 *  - chunks of 77 tokens joined along the token axis (A1111 / ComfyUI long prompts, BREAK);
 *  - SDXL: [te1 penultimate | te2 penultimate] per token, the pooled vector from te2's first
 *    chunk, and the all-zero uncond of diffusers' force_zeros_for_empty_prompt. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* z (n, width) in place, weights (n): z[i, :] *= weights[i], then z *= mean_before / mean_after
 * with the means over all n·width values (as A1111 takes them over one chunk of every prompt of the
 * batch: pass those rows together to match a batch). When every weight is 1 nothing changes; when
 * the weighted mean is 0 the rescale is left out (A1111 would divide by zero). */
void easel_cond_apply_weights (float *z, gint64 n, gint64 width, const float *weights);

/* out (batch, n_chunks·tokens, width) = the chunks (batch, tokens, width) each, one after another
 * along the token axis. */
void easel_cond_concat_tokens (float *out, const float *const *chunks, guint n_chunks, gint64 batch, gint64 tokens,
                               gint64 width);

/* out (rows, wa + wb) = [a (rows, wa) | b (rows, wb)] row by row (SDXL: a = te1, b = te2). */
void easel_cond_concat_features (float *out, const float *a, gint64 wa, const float *b, gint64 wb, gint64 rows);

/* SDXL conditioning of batch prompts of n_chunks·77 tokens each:
 * context (batch, T, w1 + w2) from te1 (batch, T, w1) and te2 (batch, T, w2), both penultimate
 * hidden states WITHOUT final LayerNorm (T = n_chunks·77 tokens); pooled (batch, p) = te2_pooled
 * (batch, n_chunks, p) of each prompt's first chunk (te2's text_embeds). */
void easel_cond_sdxl (float *context, float *pooled, const float *te1, gint64 w1, const float *te2, gint64 w2,
                      gint64 batch, gint64 tokens, const float *te2_pooled, gint64 n_chunks, gint64 p);

/* diffusers' force_zeros_for_empty_prompt (SDXL base): with no negative prompt (NULL) the uncond
 * context and pooled vector are zeros instead of the encoding of ""; an explicit "" is encoded. */
gboolean easel_cond_sdxl_uncond_is_zero (const char *negative_prompt, gboolean force_zeros_for_empty_prompt);

G_END_DECLS
