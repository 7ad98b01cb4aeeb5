/* engine/model-make.h: random-weight checkpoints written from a model spec (model-spec.h), for
 * benchmarks and the built-in demo model, and the small generated CLIP-style vocabulary that the
 * tiny demo model uses in place of OpenAI's (which Easel does not ship).
 *
 * Values (deterministic from the seed, independent of thread count and tensor order): tensor t's
 * element i is drawn from a counter-based generator, the SplitMix64 output at counter i of the
 * stream keyed by (seed, FNV-1a hash of t's name), turned into an approximately standard normal
 * value as the Irwin-Hall sum of its four 16-bit fields (mean 0, variance 1, bounded by +-3.46).
 * Weights get N(0, 1/fan_in) (fan_in = in x kh x kw: Kaiming-like, which keeps activations at
 * unit scale through residual stacks), biases N(0, 0.01^2), norm scales 1 and shifts 0, token
 * embeddings N(0, 0.02^2), position embeddings N(0, 0.01^2), position_ids 0..n-1, logit_scale
 * ln(1/0.07). Floats are made in fp32 and rounded to the file's dtype (F16, BF16 or F32). */
#pragma once

#include <glib.h>

#include "model-spec.h"

G_BEGIN_DECLS

typedef struct {
  EaselDType dtype;   /* F16, BF16 or F32 */
  guint64 seed;
  guint n_threads;    /* for large tensors; 0 = one per processor */
} EaselMakeOptions;

/* Writes every tensor of spec (easel_model_spec_tensors) with random values to path as a
 * .safetensors file, one tensor in memory at a time (written to path.tmp, then renamed), with
 * metadata: "format" "pt", modelspec.architecture / prediction_type / title, and the
 * config.json hints of each part as "easel.config.<part>" (JSON text). */
gboolean easel_model_make (const EaselModelSpec *spec, const EaselMakeOptions *opt, const char *path,
                           GError **error);

/* Fills dest (t->n_elements elements of t->dtype, little endian; nbytes must match) with tensor
 * t's values for seed, using up to n_threads threads (0 = one per processor). */
gboolean easel_model_make_fill (const EaselSpecTensor *t, guint64 seed, guint n_threads, void *dest, gsize nbytes,
                                GError **error);

/* metadata key of a part's config.json hint: "easel.config.unet", "easel.config.text_encoder" ... */
#define EASEL_MAKE_CONFIG_KEY_PREFIX "easel.config."

/* --- demo vocabulary ---------------------------------------------------------------------------
 * A byte-level BPE vocabulary in CLIP's layout: the 256 byte symbols (GPT-2 bytes_to_unicode, in
 * OpenAI's order), the same with "</w>", one entry per merge (learned from a built-in list of
 * common English and image-prompt words), then <|startoftext|> and <|endoftext|> as the last two
 * ids, so EOS is the largest id as CLIP's pooling expects. */

/* Number of entries of the demo vocabulary (the token embedding rows of a tiny demo model). */
gsize easel_demo_vocab_size (void);

/* Writes dir/vocab.json and dir/merges.txt (creating dir). Files already there with other
 * contents are an error (a real vocabulary is never overwritten). */
gboolean easel_demo_vocab_write (const char *dir, GError **error);

/* --- the built-in demo model -------------------------------------------------------------------
 * A tiny random-weight SD 1.5 checkpoint (seed 0, F16) and the demo vocabulary, written once into
 * $XDG_DATA_HOME/easel/demo/ (model.safetensors, tokenizer/) and reused after: what easel-cli
 * generate and the app use when no model is given. Its images are noise-like; it exists so that
 * the whole pipeline runs on a fresh machine. */

/* The side in pixels the demo's tiny network is meant for (its default image size). */
#define EASEL_DEMO_MODEL_SIDE 256

/* The demo folder, $XDG_DATA_HOME/easel/demo. transfer full. */
char    *easel_demo_model_dir (void);

/* Writes the demo model and vocabulary unless they are there. *model_out: the checkpoint's path,
 * *vocab_out: the vocabulary folder (both transfer full); *written_out (may be NULL): whether this
 * call wrote the model. */
gboolean easel_demo_model_ensure (char **model_out, char **vocab_out, gboolean *written_out, GError **error);

G_END_DECLS
