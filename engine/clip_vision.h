/* engine/clip_vision.h: CLIP's vision tower (transformers CLIPVisionModelWithProjection, the image
 * encoder of IP-Adapter): ViT with a class token.
 *
 * Keys (transformers layout, under an optional prefix): vision_model.embeddings.{class_embedding (C),
 * patch_embedding.weight (C, 3, p, p) conv without bias, position_embedding.weight (1 + g², C)},
 * vision_model.pre_layrnorm (sic), vision_model.encoder.layers.N.{layer_norm1, self_attn.{q,k,v,
 * out}_proj, layer_norm2, mlp.fc1, mlp.fc2}, vision_model.post_layernorm, visual_projection.weight.
 * Heads, activation and LayerNorm eps come from the hint (config.json: num_attention_heads,
 * hidden_act, layer_norm_eps), else head width 64, gelu, 1e-5 (ViT-H/-bigG conventions).
 *
 * Forward: pixel_values (B, 3, S, S), S = patch · grid ->
 *   x = [class | patches (B, g², C)] + positions; hidden_states[0] = pre_layrnorm (x);
 *   hidden_states[i + 1] = layer i (pre-LN attention and MLP blocks);
 *   image_embeds = visual_projection (post_layernorm (hidden_states[n][:, 0])) (B, P). */
#pragma once

#include <glib.h>

#include "checkpoint.h"
#include "graph.h"
#include "json.h"

G_BEGIN_DECLS

#define EASEL_CLIP_VISION_MAX_LAYERS 64

typedef struct {
  gint64 width, ff_width, patch, image_size, projection;
  int n_layers, heads;
  EaselUnary act;
  float eps;
} EaselClipVisionConfig;

typedef struct _EaselClipVision EaselClipVision;

/* Binds the vision tower of ck (a folder such as image_encoder/ or a file). hint: its config.json
 * or NULL (a folder reads its own). ck must outlive it. transfer full. */
EaselClipVision *easel_clip_vision_new (const EaselCheckpoint *ck, const EaselJson *hint, GError **error);
void             easel_clip_vision_free (EaselClipVision *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselClipVision, easel_clip_vision_free)
const EaselClipVisionConfig *easel_clip_vision_config (const EaselClipVision *v);

typedef struct {
  int n_states;                                               /* n_layers + 1 */
  EaselTensor *hidden_states[EASEL_CLIP_VISION_MAX_LAYERS + 1];   /* (B, 1 + g², C) */
  EaselTensor *image_embeds;                                  /* (B, P) */
} EaselClipVisionOutputs;

/* Adds the encoder for pixels (B, 3, S, S) to g. Shape problems are graph errors. */
void easel_clip_vision_build (EaselClipVision *v, EaselGraph *g, EaselTensor *pixels, EaselClipVisionOutputs *out);

/* transformers 5.x CLIPImageProcessor (size = crop_size = S; torchvision on uint8 tensors):
 * rgb (height, width, 3) u8, rows `stride` bytes apart -> pixels (3, S, S):
 *   resize so the shortest side is S and the other int (S · long / short), with torch's antialiased
 *   bicubic on uint8 (a = -0.5 as PIL; support 2 · scale when shrinking; int16 weights, horizontal
 *   pass then vertical, each rounded and clamped to 8 bits), a pass skipped when its size does not
 *   change; center crop S x S at (round-half-even ((h - S) / 2), likewise for w); then
 *   (x - 255 · mean) / (255 · std) with CLIP's mean and std. Fails for a bad size. */
gboolean easel_clip_vision_preprocess (const guint8 *rgb, gint width, gint height, gsize stride, gint size,
                                       float *pixels, GError **error);

G_END_DECLS
