/* engine/embedding.h: textual inversion embeddings, as A1111 and ComfyUI use them.
 *
 * Files: .safetensors with "emb_params" [n, C] (A1111), "string_to_param.*" [n, C], SDXL's pair
 * "clip_l" [n, 768] + "clip_g" [n, 1280], or a single tensor of any name (diffusers' learned_embeds);
 * .pt/.bin through the restricted unpickler (pickle.h): A1111's {'string_to_param': {'*': [n, C]}, ...},
 * {'emb_params': ...}, the SDXL pair, or a dict of one tensor. [C] vectors count as n = 1.
 *
 * Use: the name (the file name without extension) written in a prompt, or ComfyUI's
 * "embedding:name", stands for n vectors. easel_embedding_expand replaces the name's tokens in a
 * token sequence with n placeholder ids beyond the vocabulary; the text encoder is given the vectors
 * as extra rows of its token table (easel_clip_set_extra_tokens), so the placeholders read them. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  EASEL_EMBEDDING_CLIP_L,   /* SD 1.x's encoder, SDXL's first (768 wide in real models) */
  EASEL_EMBEDDING_CLIP_G,   /* SDXL's second (1280); SD 2.x's OpenCLIP-H vectors (1024) go in CLIP_L */
  EASEL_EMBEDDING_N_ENCODERS
} EaselEmbeddingEncoder;

typedef struct {
  char *name;                                    /* the file name without folder and extension */
  gint64 n_vectors;
  gint64 width[EASEL_EMBEDDING_N_ENCODERS];      /* 0: none for that encoder */
  float *vectors[EASEL_EMBEDDING_N_ENCODERS];    /* [n_vectors, width] */
} EaselEmbedding;

/* Reads a .safetensors, .pt or .bin embedding. Errors name the file and what is wrong. transfer full. */
EaselEmbedding *easel_embedding_load (const char *path, GError **error);
void            easel_embedding_free (EaselEmbedding *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselEmbedding, easel_embedding_free)

/* Replaces, in tokens[0 .. n), every run equal to name_tokens[i] (the tokenized name of embedding i,
 * without BOS/EOS) with first_ids[i], first_ids[i] + 1, ... (n_vectors[i] ids). Longest names win
 * where two could match at one place. Returns the new sequence (GArray of gint32). */
GArray *easel_embedding_expand (const gint32 *tokens, gsize n, const GArray *const *name_tokens,
                                const gint64 *n_vectors, const gint32 *first_ids, gsize n_embeddings);

/* ComfyUI's "embedding:NAME" in prompt text: rewrites each to NAME (so that the name's tokens are
 * found as A1111's are; an extension .safetensors, .pt or .bin is dropped) and appends NAME to
 * names (GPtrArray of char*, owned) once. transfer full. */
char *easel_embedding_comfy_names (const char *prompt, GPtrArray *names);

G_END_DECLS
