/* engine/networks.h: a job's extra networks, between the job (easel.h) and the pipeline
 * (pipeline.c), as AUTOMATIC1111 handles them:
 *
 *  - LoRAs: the <lora:NAME:M>, <lora:NAME:TE:UNET> tags of the positive prompt (extra_networks.py
 *    parse_prompt: removed from the text that is encoded; the negative prompt's are left alone,
 *    as A1111 leaves them), then job->loras; a NAME is a file, or NAME.safetensors (.pt, .ckpt) in
 *    job->lora_dirs, $EASEL_LORA_DIR (a search path), the model's folder and that folder's
 *    siblings Lora/ (A1111) and loras/ (ComfyUI). They are applied through the model's LoRA stack
 *    (lora.h), merged or as run-time adapters as the backend's default mode says: the previous
 *    job's set is undone where it differs, the checkpoint is never reloaded, and opened files stay
 *    with the model for later jobs;
 *  - textual-inversion embeddings: every .safetensors / .pt / .bin in job->embedding_dirs and
 *    $EASEL_EMBEDDINGS_DIR (subfolders too; the first file of a name wins) is known by its file
 *    name; where the name's tokens appear in a prompt (either prompt; ComfyUI's embedding:NAME is
 *    rewritten to NAME first) the chunker puts the embedding's vectors in its place
 *    (prompt.h's hook), and the text encoders get them as extra token rows (clip.h). A name with no
 *    usable file (none, unreadable, or vectors of another width than the encoders) stays text, as
 *    in A1111; a file that matched but could not be used is reported as a notice;
 *  - the PNG parameters: the prompt as given, plus one <lora:NAME:TE[:UNET]> tag per job->loras
 *    entry (so that A1111 and --params-from see it), "Lora hashes" (name: addnet short hash) and
 *    "TI hashes" (name: first 12 hex digits of the file's SHA-256), names without ':' and ','. */
#pragma once

#include "easel.h"
#include "prompt.h"
#include "tokenizer.h"

G_BEGIN_DECLS

typedef struct _EaselJobNetworks EaselJobNetworks;

/* Finds and opens the job's LoRAs and applies them to model (an empty set restores the model) in
 * the LoRA mode for backend_name (easel_lora_mode_default: "cpu", "vulkan"), and lists the embedding
 * folders. text_model: where the prompts are encoded (NULL: model); LoRAs need it to be model.
 * Errors before any sampling work: a LoRA not found, unreadable, for another model family, or a
 * strength that is no number. transfer full. */
EaselJobNetworks *easel_job_networks_prepare (EaselModel *model, EaselModel *text_model, const EaselJobParams *job,
                                              const char *backend_name, GError **error);
/* Clears the text encoders' extra token rows (the merged LoRAs stay until the next job). */
void easel_job_networks_free (EaselJobNetworks *n);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselJobNetworks, easel_job_networks_free)

/* The positive prompt to encode: job->prompt without its <lora:...> tags. */
const char *easel_job_networks_prompt (const EaselJobNetworks *n);
/* The model whose text encoders get the embeddings. */
EaselModel *easel_job_networks_text_model (const EaselJobNetworks *n);
/* Notices for the progress callback (char*): LoRA modules that match no weight, embeddings that
 * matched a word but could not be used. */
GPtrArray *easel_job_networks_messages (const EaselJobNetworks *n);

/* A prompt text -> A1111 chunks (GArray of EaselPromptChunk) with the embeddings in place, and the
 * text encoders given every embedding row used so far. */
GArray *easel_job_networks_chunks (EaselJobNetworks *n, EaselTokenizer *tok, const char *text, GError **error);

/* The LoRA tags of job->loras in the prompt, "Lora hashes" and "TI hashes" (embeddings used so
 * far), into p. */
void easel_job_networks_parameters (EaselJobNetworks *n, EaselParameters *p);

G_END_DECLS
