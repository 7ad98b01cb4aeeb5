/* engine/tokenizer.h: the CLIP byte-level BPE tokenizer, with the behaviour of Hugging Face's
 * transformers.CLIPTokenizer 5.x (the Rust `tokenizers` backend) that SD front ends use:
 *   1. the literal special tokens <|startoftext|> / <|endoftext|> (case-sensitive, matched on the
 *      raw text) become their ids;
 *   2. every other stretch is normalized: Unicode NFC, then per-character Unicode lowercase (no
 *      final-sigma rule), whitespace (Unicode White_Space) separates words;
 *   3. split with CLIP's pattern 's|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+;
 *   4. each piece: UTF-8 bytes -> byte symbols (GPT-2 bytes_to_unicode), "</w>" on the last one,
 *      merges applied by rank (lowest first, leftmost first among equals), as tokenizers' BPE does.
 * The vocabulary comes from OpenAI's bpe_simple_vocab_16e6.txt.gz (built as SimpleTokenizer builds
 * it) or from a Hugging Face vocab.json + merges.txt pair. Both give the same 49 408 ids. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define EASEL_CLIP_CONTEXT  77   /* tokens per text-encoder pass: BOS + 75 + EOS */
#define EASEL_CLIP_CHUNK    75   /* prompt tokens per pass */
#define EASEL_TOKENIZER_MAX_TEXT (64u << 20)   /* longest prompt accepted, in bytes */

typedef struct _EaselTokenizer EaselTokenizer;

/* OpenAI's gzip merges file: 256 byte symbols, the same + "</w>", one entry per merge (lines
 * 1..48894), then <|startoftext|> and <|endoftext|>. transfer full. */
EaselTokenizer *easel_tokenizer_new_from_bpe_gz (const char *path, GError **error);
/* The same from the gzip bytes in memory (name is used in errors). */
EaselTokenizer *easel_tokenizer_new_from_bpe_gz_data (const guint8 *data, gsize len, const char *name,
                                                      GError **error);
/* A Hugging Face vocab.json + merges.txt pair. transfer full. */
EaselTokenizer *easel_tokenizer_new_from_hf (const char *vocab_json, const char *merges_txt,
                                             GError **error);
/* path: a .gz file, a vocab.json or merges.txt (its folder is used), or a folder holding
 * vocab.json + merges.txt or bpe_simple_vocab_16e6.txt.gz. transfer full. */
EaselTokenizer *easel_tokenizer_load (const char *path, GError **error);
void            easel_tokenizer_free (EaselTokenizer *tok);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselTokenizer, easel_tokenizer_free)

/* Where it was loaded from (for messages). */
const char *easel_tokenizer_source (const EaselTokenizer *tok);
gsize       easel_tokenizer_vocab_size (const EaselTokenizer *tok);
gint32      easel_tokenizer_bos (const EaselTokenizer *tok);   /* <|startoftext|>, 49406 */
gint32      easel_tokenizer_eos (const EaselTokenizer *tok);   /* <|endoftext|>, 49407 */
/* Id of a vocabulary entry such as ",</w>"; -1 when absent. */
gint32      easel_tokenizer_lookup (const EaselTokenizer *tok, const char *token);
/* The entry of an id (byte-level form, e.g. "cat</w>"); NULL when out of range. */
const char *easel_tokenizer_token (const EaselTokenizer *tok, gint32 id);

typedef enum {
  EASEL_TOKENIZE_DEFAULT = 0,
  /* SDXL's second Hugging Face tokenizer (tokenizer_2, ComfyUI's clip_g) declares "!" as its pad
   * token, which makes "!" a special token: every "!" in the text becomes id 0 on its own. */
  EASEL_TOKENIZE_BANG_SPECIAL = 1 << 0,
} EaselTokenizeFlags;

/* Appends the ids of text (len bytes, or NUL-terminated when len < 0) to ids (a GArray of gint32),
 * without BOS/EOS and without truncation. Invalid UTF-8, NUL bytes or a text longer than
 * EASEL_TOKENIZER_MAX_TEXT give an error (ids are left as they were). Thread-safe. */
gboolean easel_tokenizer_encode (EaselTokenizer *tok, const char *text, gssize len, GArray *ids,
                                 GError **error);
gboolean easel_tokenizer_encode_full (EaselTokenizer *tok, const char *text, gssize len,
                                      EaselTokenizeFlags flags, GArray *ids, GError **error);

/* out (77): BOS, the first min(n_ids, 75) ids, EOS, then pad to 77 (SD 1.x: 49407; SDXL's second
 * tokenizer: 0), as tokenizer(text, padding="max_length", max_length=77, truncation=True). */
void easel_tokenizer_pad_77 (const EaselTokenizer *tok, const gint32 *ids, gsize n_ids, gint32 pad,
                             gint32 *out);

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100.. in byte order. order[i] is the i-th byte of OpenAI's vocabulary order (the first 256
 * entries of a CLIP vocabulary). */
void easel_tokenizer_bytes_to_unicode (gunichar map[256], guint8 order[256]);

G_END_DECLS
