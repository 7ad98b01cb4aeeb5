/* engine/patch.h: the weights of a network that a LoRA (engine/lora.c) may rewrite, as the network
 * lists them. A network binds each weight once (a checkpoint tensor in place, or a buffer it owns
 * such as the UNet's fused q/k/v); a patch target names one module's weight in the naming LoRA
 * files use and says where it lives:
 *
 *   UNet:          diffusers module paths   "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
 *   text encoders: transformers paths       "text_model.encoder.layers.3.self_attn.q_proj", "...mlp.fc1"
 *
 * Fused weights (the UNet's self-attention q|k|v and cross-attention k|v, OpenCLIP's in_proj) are one
 * stored tensor shared by several targets, each owning a block of rows. A patcher merges into an F32
 * copy of the whole stored tensor and calls bind() with it; bind() with `stored` restores the
 * original. A patched copy is always a new buffer: backends that convert or upload a weight once per
 * data pointer (backend.h) never see stale data.
 *
 * Run-time low-rank adapters (the alternative to merging for LoRA and LoCon modules): a patcher
 * stores an EaselPatchLowRank at *lowrank (one per stored weight, all its modules stacked), and the
 * network builds y = op (x, W) + up (down (x)) where it builds op (x, W), through
 * easel_patch_linear / easel_patch_conv2d. */
#pragma once

#include <glib.h>

#include "graph.h"
#include "safetensors.h"

G_BEGIN_DECLS

/* The low-rank adapters of one stored weight [out, in(, kh, kw)], every module's rank stacked
 * (R in all), strengths and alpha / rank scales folded into up; F32, owned by the patcher:
 *   matrix weight: down [R, in], up [out, R]            y += up · (down · x)
 *   conv weight:   down [R, in, kh, kw] (the weight's stride and padding), up [out, R, 1, 1]
 * Rows of up outside a module's rows are zero (fused q|k|v weights). */
typedef struct {
  EaselStTensor down, up;
} EaselPatchLowRank;

typedef struct {
  char *module;            /* the module path (owned) */
  gint64 row0, rows;       /* this module's rows [row0, row0 + rows) of the stored weight */
  gint64 cols;             /* columns of the stored weight seen as a matrix: numel / shape[0] (in · kh · kw) */
  EaselStTensor stored;    /* the weight as bound at load (name, dtype, n_dims, shape, data, n_elements) */
  gpointer slot;           /* the network's binding; targets with one slot share a stored weight */
  void (*bind) (gpointer slot, const EaselStTensor *t);   /* make the network use t's dtype and data */
  const EaselPatchLowRank **lowrank;   /* the slot's run-time adapters as the network reads them (NULL
                                        * pointer: the network has none; then LoRAs are merged) */
  EaselDType file_dtype;   /* the module's dtype in the checkpoint (a fused F32 slot's parts' dtype) */
} EaselPatchTarget;

/* Frees an EaselPatchTarget (for GPtrArray free functions). */
void easel_patch_target_free (gpointer target);

/* Fills stored, cols and file_dtype from the slot's tensor t (numel must be a multiple of t->shape[0]). */
void easel_patch_target_set_stored (EaselPatchTarget *target, const EaselStTensor *t);

/* Graph builders of a patched weight: easel_op_linear (x, w, b) / easel_op_conv2d (x, w, b, stride,
 * pad), plus lr's up (down (x)) when lr is not NULL. x (..., in) -> (..., out); conv: x (B, in, H, W)
 * -> (B, out, Ho, Wo). */
EaselTensor *easel_patch_linear (EaselGraph *g, EaselTensor *x, EaselTensor *w, EaselTensor *b,
                                 const EaselPatchLowRank *lr);
EaselTensor *easel_patch_conv2d (EaselGraph *g, EaselTensor *x, EaselTensor *w, EaselTensor *b, int stride, int pad,
                                 const EaselPatchLowRank *lr);

G_END_DECLS
