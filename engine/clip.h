/* engine/clip.h: the CLIP text encoders of Stable Diffusion, built on the graph API (graph.h).
 *
 *  - OpenAI CLIP ViT-L/14 (SD 1.x; SDXL's first encoder) in transformers naming: text_model.*
 *    (single files: cond_stage_model.transformer.text_model.*, conditioner.embedders.0.transformer.
 *    text_model.*; diffusers folders: text_encoder/, text_encoder_2/), also saved without the
 *    text_model. prefix by some transformers versions (testdata README 8.11);
 *  - OpenCLIP ViT-H (SD 2.x: cond_stage_model.model.*) and ViT-bigG (SDXL's second encoder:
 *    conditioner.embedders.1.model.*; refiner: conditioner.embedders.0.model.*) in OpenCLIP naming:
 *    transformer.resblocks.N.attn.in_proj_weight [3C, C] (q, k, v stacked), ln_1/ln_2,
 *    mlp.c_fc/c_proj, positional_embedding, token_embedding, ln_final and text_projection [C, P]
 *    (used as x @ W: the transpose of transformers' text_projection.weight [P, C]).
 *
 * Both namings bind to one internal naming (clip.c: rename_*), so there is one forward pass:
 * a pre-LayerNorm transformer with causal self-attention (transformers' CLIPTextTransformer):
 *   x = tok_emb[ids] + pos_emb[0 .. L)
 *   per layer: x += out_proj (attention (ln1 (x)));  x += fc2 (act (fc1 (ln2 (x))))
 *   hidden_states[0] = embeddings, hidden_states[i] = output of layer i (no final LayerNorm)
 *   last_hidden_state = final_ln (hidden_states[n_layers]);  pooled = last_hidden_state at the
 *   first EOS (argmax of the ids, README 8.2);  text_embeds = pooled · projection.
 *
 * The config comes from the tensors (width, layers, MLP width, vocabulary, positions, projection,
 * fused q/k/v); the attention heads, the activation and the LayerNorm eps from an optional
 * transformers config.json (hint: num_attention_heads, hidden_act, layer_norm_eps), else from the
 * conventions of the real models: head width 64 (CLIP-L 12 heads, ViT-H 16, bigG 20), quick_gelu
 * for OpenAI CLIP in transformers naming at widths other than 1024/1280, gelu for OpenCLIP, eps 1e-5.
 *
 * Conditioning per family (README 8.1): SD 1.x last_hidden_state (skip 0, final LN); "clip skip 2"
 * = skip 1 with final LN; SDXL: skip 1 WITHOUT final LN from both encoders + text_embeds of the
 * second; SD 2.x: ldm's "penultimate" layer with final LN, which is skip 1 on a 24-layer single
 * file and skip 0 on the 23-layer diffusers text_encoder. */
#pragma once

#include <glib.h>

#include "backend.h"
#include "checkpoint.h"
#include "graph.h"
#include "json.h"

G_BEGIN_DECLS

#define EASEL_CLIP_MAX_LAYERS 64

typedef enum {
  EASEL_CLIP_NAMING_TRANSFORMERS, /* text_model.* (or the flat embeddings.* / encoder.*) */
  EASEL_CLIP_NAMING_OPENCLIP,     /* transformer.resblocks.*, fused in_proj_weight */
} EaselClipNaming;

typedef struct {
  EaselClipNaming naming;
  gint64 width;       /* C: token embedding columns */
  gint64 ff_width;    /* MLP hidden width (4C in the real models) */
  gint64 vocab;       /* token embedding rows (49408) */
  gint64 n_positions; /* position embedding rows (77): the longest input */
  int n_layers;
  int heads;
  gint64 projection;  /* text_projection output width; 0 when absent */
  gboolean fused_qkv; /* q, k, v are row blocks of one [3C, C] weight */
  EaselUnary act;     /* QUICK_GELU, GELU or GELU_TANH */
  float eps;          /* LayerNorm eps */
} EaselClipConfig;

typedef struct _EaselClip EaselClip;

/* Binds the encoder whose tensors sit under prefix in ck ("text_encoder/", "cond_stage_model.
 * transformer.", "conditioner.embedders.1.model." ...; the part before "text_model." or
 * "token_embedding.weight"). hint: a transformers config.json of this encoder, or NULL. Errors name
 * the missing or misshapen tensor, or what the hint contradicts. ck must outlive the encoder.
 * transfer full. */
EaselClip *easel_clip_new (const EaselCheckpoint *ck, const char *prefix, const EaselJson *hint, GError **error);
void easel_clip_free (EaselClip *clip);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselClip, easel_clip_free)

const EaselClipConfig *easel_clip_config (const EaselClip *clip);
const char *easel_clip_prefix (const EaselClip *clip);

/* The weights a LoRA may patch (patch.h): each layer's q/k/v/out projections and MLP under
 * transformers' module paths ("text_model.encoder.layers.N.self_attn.q_proj", "...mlp.fc1"), OpenCLIP's
 * fused in_proj as three row blocks. GPtrArray of EaselPatchTarget*, owned by the encoder. */
GPtrArray *easel_clip_patch_targets (EaselClip *clip);

/* Textual inversion (embedding.h): rows [n_rows, width] that ids vocab .. vocab + n_rows - 1 stand
 * for (copied; n_rows 0 clears). A build whose ids use them looks every token up on the host into a
 * buffer the encoder owns until its next such build. */
gboolean easel_clip_set_extra_tokens (EaselClip *clip, const float *rows, gint64 n_rows, GError **error);

/* Prefix of a checkpoint's text encoder number `index` in diffusers' order: 0 = text_encoder
 * (CLIP-L; SD 2.x's OpenCLIP-H), 1 = text_encoder_2 (SDXL's OpenCLIP-bigG, the refiner's only one).
 * A folder: "text_encoder/" / "text_encoder_2/" when that part has weights (either transformers
 * layout). A single file: the encoders in key order, the refiner's single one being number 1.
 * NULL with EASEL_ERROR_NOT_FOUND when absent. transfer full. */
char *easel_clip_find_prefix (const EaselCheckpoint *ck, guint index, GError **error);

typedef struct {
  int skip;             /* the hidden state wanted: hidden_states[n_layers - skip]; 0 = last layer */
  gboolean final_ln;    /* apply the final LayerNorm to it */
  gboolean pooled;      /* also the pooled output (runs every layer) */
  gboolean text_embeds; /* also its projection (needs a projection; runs every layer) */
} EaselClipRequest;

typedef struct {
  EaselTensor *hidden;      /* (B, L, C): the requested hidden state; an output */
  EaselTensor *pooled;      /* (B, C), or NULL; an output */
  EaselTensor *text_embeds; /* (B, P), or NULL; an output */
  int n_states;             /* hidden_states[0 .. n_states) were built (not marked as outputs) */
  EaselTensor *hidden_states[EASEL_CLIP_MAX_LAYERS + 1]; /* (B, L, C) each, no final LayerNorm */
} EaselClipOutputs;

/* Adds the forward pass for ids (B, L), row-major token ids, 1 <= L <= n_positions, to g; only the
 * layers the request needs are built. ids must stay valid until the graph is computed. Fails on
 * ids outside the vocabulary, a bad skip or text_embeds without a projection. */
gboolean easel_clip_build (EaselClip *clip, EaselGraph *g, const gint32 *ids, gint64 batch, gint64 len,
                           const EaselClipRequest *req, EaselClipOutputs *out, GError **error);
/* The final LayerNorm on x (B, L, C) -> (B, L, C). */
EaselTensor *easel_clip_final_norm (EaselClip *clip, EaselGraph *g, EaselTensor *x);

/* Builds, computes and reads back: hidden (B·L·C floats), pooled (B·C) and text_embeds (B·P) where
 * not NULL (pooled / text_embeds must be non-NULL exactly when the request asks for them). */
gboolean easel_clip_encode (EaselClip *clip, EaselBackend *backend, const gint32 *ids, gint64 batch, gint64 len,
                            const EaselClipRequest *req, float *hidden, float *pooled, float *text_embeds,
                            GError **error);

/* Position of the first largest id of each row (the first EOS, 49407, in CLIP's vocabulary): eos (B). */
void easel_clip_eos_positions (const gint32 *ids, gint64 batch, gint64 len, gint64 *eos);

/* Checkpoint keys under the encoder's prefix that it does not use (for --verbose). transfer full. */
GPtrArray *easel_clip_unused (const EaselClip *clip);

G_END_DECLS
