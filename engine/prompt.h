/* engine/prompt.h: prompt weighting syntax and the packing of weighted tokens into 77-token chunks.
 *
 * Two dialects:
 *  - AUTOMATIC1111 (modules/prompt_parser.py parse_prompt_attention + modules/sd_hijack_clip.py
 *    tokenize_line): (x) x1.1, [x] /1.1, (x:w), escapes \( \) \[ \] \\, unclosed brackets closed
 *    at the end, equal-weight runs merged, BREAK; chunks of 75 tokens that end at the last comma
 *    when it lies within the last 20 tokens.
 *  - ComfyUI (comfy/sd1_clip.py token_weights + SDTokenizer.tokenize_with_weights): only round
 *    brackets, (x) = 1.1 times the outer weight, (x:w) sets w, escapes \( \); words of 8+ tokens
 *    may be split across chunks, shorter ones move whole to the next chunk.
 * Weights are doubles, computed with the same operations in the same order as the Python code, so
 * they are bit-identical to it. */
#pragma once

#include <glib.h>

#include "tokenizer.h"

G_BEGIN_DECLS

/* A piece of prompt text and its weight. A1111's BREAK is the segment ("BREAK", -1). */
typedef struct {
  char *text;
  double weight;
} EaselPromptSegment;

/* One text-encoder pass: ids[0] = BOS, ids[76] = EOS or padding. */
typedef struct {
  gint32 ids[EASEL_CLIP_CONTEXT];
  double weights[EASEL_CLIP_CONTEXT];
} EaselPromptChunk;

/* A1111's parse_prompt_attention. Returns a GArray of EaselPromptSegment (freeing the array frees
 * the texts); never empty. Errors where A1111 raises (a weight such as "1.2.3" that Python's
 * float() refuses), on invalid UTF-8, and on bracket nesting so deep and long that weighing it
 * would take more than EASEL_PROMPT_MAX_WEIGHT_OPS multiplications (A1111 is quadratic there).
 * Like A1111, a weight of 400 digits parses to inf: the chunkers below refuse non-finite weights. */
GArray *easel_prompt_parse_a1111 (const char *text, gssize len, GError **error);

/* ComfyUI's token_weights(escape_important(text), 1.0) with unescape_important on each segment.
 * Weights go through Python's float() rules ("1e2", " 1.3 ", "inf" and "nan" parse). May be empty
 * ("()" gives no segment). Nesting deeper than EASEL_PROMPT_MAX_DEPTH is refused (ComfyUI
 * recurses and fails near 1000). */
GArray *easel_prompt_parse_comfy (const char *text, gssize len, GError **error);

#define EASEL_PROMPT_MAX_WEIGHT_OPS (1u << 25)
#define EASEL_PROMPT_MAX_DEPTH 200

gboolean easel_prompt_segment_is_break (const EaselPromptSegment *seg);

/* A1111's tokenize_line: every segment tokenized on its own, tokens packed 75 to a chunk with
 * their weights; BREAK (weight exactly -1) closes the chunk; when a chunk is full and the last
 * comma lies within its last comma_backtrack tokens (A1111's default: 20; 0 disables), the tokens
 * after that comma move to the next chunk. Padding is EOS (49407) with weight 1.
 * Returns a GArray of EaselPromptChunk (at least one). Non-finite weights (as float32) are refused:
 * they would make the whole conditioning NaN. */
GArray *easel_prompt_chunks_a1111 (EaselTokenizer *tok, const GArray *segments, guint comma_backtrack,
                                   GError **error);

/* Textual inversion in A1111's chunker (sd_hijack_clip.py tokenize_line with
 * EmbeddingDatabase.find_embedding_at_position): called at each position pos of a segment's tokens
 * tokens[0 .. n); when an embedding's name (its tokens) starts there, returns how many tokens the
 * name covers and sets first_id, n_vectors: the embedding's vectors then take the ids first_id,
 * first_id + 1, ... in the chunk, with the segment's weight. 0 = no embedding there. */
typedef guint (*EaselPromptEmbeddingFunc) (gpointer user_data, const gint32 *tokens, guint n, guint pos,
                                           gint32 *first_id, guint *n_vectors);

/* easel_prompt_chunks_a1111 with embeddings (embedding may be NULL): as A1111, the vectors count
 * toward the 75 tokens of a chunk and never straddle two: when they do not fit in what is left of
 * the chunk, the chunk is closed (padded) first. An embedding of more than 75 vectors is refused. */
GArray *easel_prompt_chunks_a1111_full (EaselTokenizer *tok, const GArray *segments, guint comma_backtrack,
                                        EaselPromptEmbeddingFunc embedding, gpointer user_data, GError **error);

/* ComfyUI's tokenize_with_weights: chunks of BOS + up to 75 + EOS, padded with pad, weight 1.0
 * for BOS, EOS and padding. SD 1.x / clip_l: pad = EOS (49407), flags 0; SDXL's clip_g: pad 0,
 * EASEL_TOKENIZE_BANG_SPECIAL. Non-finite weights are refused as above. */
GArray *easel_prompt_chunks_comfy (EaselTokenizer *tok, const GArray *segments, gint32 pad,
                                   EaselTokenizeFlags flags, GError **error);

/* A1111's padding for a second tokenizer whose pad differs from EOS (SD 2.x, SDXL's OpenCLIP):
 * every id after the first EOS becomes pad. */
void easel_prompt_chunk_repad (EaselPromptChunk *chunk, gint32 eos, gint32 pad);

G_END_DECLS
