/* engine/vocab.h: finding the CLIP vocabulary. A single-file checkpoint carries none and Easel
 * does not ship OpenAI's, so it is looked for, in this order:
 *   1. the explicit path (--vocab FILE|DIR), then $EASEL_VOCAB: an error when it holds none;
 *   2. the model: DIR/tokenizer/ of a diffusers folder (or DIR itself), or, for a single file,
 *      the files beside it and its folder's tokenizer/;
 *   3. the Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub):
 *      models--openai--clip-vit-large-patch14/snapshots/SNAPSHOT/, then
 *      models--NAME/snapshots/SNAPSHOT/tokenizer/ of every model;
 *   4. installs the user pointed at: $EASEL_COMFYUI_DIR/comfy/sd1_tokenizer/, and the clip and
 *      open_clip packages (bpe_simple_vocab_16e6.txt.gz) of $EASEL_A1111_DIR's venv;
 *   5. Easel's data folder: $XDG_DATA_HOME/easel/, then each $XDG_DATA_DIRS/easel/.
 * A folder counts when it holds vocab.json + merges.txt or bpe_simple_vocab_16e6.txt.gz. */
#pragma once

#include <glib.h>

#include "tokenizer.h"

G_BEGIN_DECLS

/* The one line shown when no vocabulary is found (the README quotes it). */
#define EASEL_VOCAB_MISSING_MESSAGE                                                                \
  "no CLIP vocabulary found: get bpe_simple_vocab_16e6.txt.gz (github.com/openai/CLIP, folder "    \
  "clip/) or vocab.json + merges.txt (huggingface.co/openai/clip-vit-large-patch14) and put them " \
  "in ~/.local/share/easel/ ($XDG_DATA_HOME/easel/), or pass --vocab FILE|DIR or set EASEL_VOCAB"

/* Every place searched, in order, for explicit (may be NULL) and model_path (a checkpoint file or
 * diffusers folder, may be NULL); existing or not. transfer full (NULL-terminated). */
char **easel_vocab_candidates (const char *explicit_path, const char *model_path);

/* The first candidate that holds a vocabulary (a folder or a .gz file), for easel_tokenizer_load.
 * An explicit path or $EASEL_VOCAB without one is an error naming it; nothing found at all is
 * EASEL_ERROR_NOT_FOUND with EASEL_VOCAB_MISSING_MESSAGE. transfer full. */
char *easel_vocab_find (const char *explicit_path, const char *model_path, GError **error);

/* easel_vocab_find + easel_tokenizer_load. transfer full. */
EaselTokenizer *easel_vocab_load (const char *explicit_path, const char *model_path, GError **error);

G_END_DECLS
