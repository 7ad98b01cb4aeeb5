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
 * data pointer (backend.h) never see stale data. */
#pragma once

#include <glib.h>

#include "safetensors.h"

G_BEGIN_DECLS

typedef struct {
  char *module;            /* the module path (owned) */
  gint64 row0, rows;       /* this module's rows [row0, row0 + rows) of the stored weight */
  gint64 cols;             /* columns of the stored weight seen as a matrix: numel / shape[0] (in · kh · kw) */
  EaselStTensor stored;    /* the weight as bound at load (name, dtype, n_dims, shape, data, n_elements) */
  gpointer slot;           /* the network's binding; targets with one slot share a stored weight */
  void (*bind) (gpointer slot, const EaselStTensor *t);   /* make the network use t's dtype and data */
} EaselPatchTarget;

/* Frees an EaselPatchTarget (for GPtrArray free functions). */
void easel_patch_target_free (gpointer target);

/* Fills stored, cols from the slot's tensor t (numel must be a multiple of t->shape[0]). */
void easel_patch_target_set_stored (EaselPatchTarget *target, const EaselStTensor *t);

G_END_DECLS
