/* engine/checkpoint.h: a checkpoint opened from a path: one .safetensors file (original ldm/sgm
 * naming, or any bare part such as a UNet), one torch zip file (.ckpt, .pt, .pth: the tensors of
 * its "state_dict", else of its top level, read by pickle.h's restricted unpickler; contiguous
 * tensors point into the mapping, strided views are copied once into contiguous buffers the
 * checkpoint owns; such a file counts as a single file), or a diffusers folder (model_index.json and one
 * folder per part; or a single part folder with config.json). Files are mmapped; tensors point
 * into the mappings and nothing is copied.
 *
 * Diffusers parts: weights are read from, in this order, diffusion_pytorch_model.safetensors /
 * model.safetensors, their sharded form (<name>.safetensors.index.json + shards), then the .fp16
 * variants (<name>.fp16.safetensors, <name>.safetensors.index.fp16.json). Tensors of a folder are
 * named "<component>/<key>" ("unet/conv_in.weight"). A part whose folder has a config.json but no
 * weights (a config-only folder, or PyTorch .bin weights only) opens with what there is, and is
 * listed as having no weights. */
#pragma once

#include <glib.h>

#include "json.h"

#include "family.h"
#include "json.h"
#include "safetensors.h"

G_BEGIN_DECLS

typedef enum {
  EASEL_CHECKPOINT_SINGLE_FILE,
  EASEL_CHECKPOINT_DIFFUSERS,
} EaselCheckpointFormat;

const char *easel_checkpoint_format_name (EaselCheckpointFormat format);   /* "single file", "diffusers folder" */

typedef struct {
  const char *name;          /* "<component>/<key>" in a folder, the key in a single file */
  const char *component;     /* "unet", "vae", ...; "" in a single file */
  const char *key;           /* the name inside its file */
  const char *file;          /* path of the .safetensors (or torch) file holding it */
  const EaselStTensor *st;   /* dtype, shape, data: inside that file's mapping */
} EaselCheckpointTensor;

typedef struct {
  const char *name;          /* component (folder) name */
  const char *class_name;    /* from model_index.json ("UNet2DConditionModel"); may be NULL */
  const char *weights;       /* the weights file or shard index read; NULL when none */
  gsize n_files;             /* .safetensors files opened for it */
  gsize n_tensors;
  gboolean has_config;       /* config.json: a network, which should have weights */
  gboolean has_weights;
  const char *note;          /* when a network has no weights: why ("config only", ...) */
} EaselCheckpointPart;

typedef struct _EaselCheckpoint EaselCheckpoint;

/* Opens a file or folder and detects its family. Errors name the file at fault. transfer full. */
EaselCheckpoint *easel_checkpoint_open (const char *path, GError **error);
void             easel_checkpoint_free (EaselCheckpoint *ck);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselCheckpoint, easel_checkpoint_free)

const char           *easel_checkpoint_path (const EaselCheckpoint *ck);
EaselCheckpointFormat easel_checkpoint_format (const EaselCheckpoint *ck);

/* Tensors sorted by name. */
gsize                        easel_checkpoint_n_tensors (const EaselCheckpoint *ck);
const EaselCheckpointTensor *easel_checkpoint_tensor (const EaselCheckpoint *ck, gsize i);
const EaselCheckpointTensor *easel_checkpoint_find (const EaselCheckpoint *ck, const char *name);
/* The prefix of the first tensor named prefix + suffix, where the prefix is empty or ends in '.' or
 * '/' ("control_model." for "control_model.input_hint_block.0.weight"); NULL when none. transfer full. */
char *easel_checkpoint_find_prefix (const EaselCheckpoint *ck, const char *suffix);
/* easel_checkpoint_config of the part whose tensors have prefix ("controlnet/": "controlnet").
 * Owned by the checkpoint. */
const EaselJson *easel_checkpoint_part_config (const EaselCheckpoint *ck, const char *prefix);

/* Single file: its "__metadata__"; folder: the string members of model_index.json
 * ("_class_name", "_diffusers_version"). In file order. */
gsize       easel_checkpoint_n_metadata (const EaselCheckpoint *ck);
const char *easel_checkpoint_metadata_key (const EaselCheckpoint *ck, gsize i);
const char *easel_checkpoint_metadata_value (const EaselCheckpoint *ck, gsize i);
const char *easel_checkpoint_metadata (const EaselCheckpoint *ck, const char *key);

/* Sum of the sizes of the .safetensors files opened, and of the tensors' data. */
guint64 easel_checkpoint_file_bytes (const EaselCheckpoint *ck);
guint64 easel_checkpoint_tensor_bytes (const EaselCheckpoint *ck);
gsize   easel_checkpoint_n_files (const EaselCheckpoint *ck);
/* How many tensors have this dtype. */
gsize   easel_checkpoint_dtype_count (const EaselCheckpoint *ck, EaselDType dtype);

/* Parts of a diffusers folder (none for a single file), in model_index.json order. */
gsize                      easel_checkpoint_n_parts (const EaselCheckpoint *ck);
const EaselCheckpointPart *easel_checkpoint_part (const EaselCheckpoint *ck, gsize i);

/* Family, UNet facts and prediction type (see family.h). */
const EaselDetection *easel_checkpoint_detection (const EaselCheckpoint *ck);

/* The architecture config of a part ("unet", "vae", "text_encoder", "text_encoder_2") where the
 * checkpoint carries one: a diffusers folder's <part>/config.json (else the folder's own, as a
 * single-part folder such as a ControlNet has), or in a single file the metadata
 * "easel.config.<part>" that `easel-cli make-model` writes. Network loaders use it as their hint when
 * the caller gives none. NULL when there is none (or it does not parse); owned by the checkpoint. */
const EaselJson *easel_checkpoint_config (const EaselCheckpoint *ck, const char *part);

G_END_DECLS
