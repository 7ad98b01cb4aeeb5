/* engine/family.h: which model a checkpoint holds (SD 1.x, SD 2.x, SDXL base/inpaint/refiner),
 * told from tensor names and shapes only, never from file names.
 *
 * The detector is a pure function over a list of (name, shape): a checkpoint's tensors, a
 * diffusers folder's "<component>/<key>" names, a UNet-only file or a key list file all work, in
 * both namings (original ldm/sgm: model.diffusion_model.*, first_stage_model.*,
 * cond_stage_model.* / conditioner.embedders.N.*; diffusers: "unet/", "vae/", "text_encoder/" ...).
 *
 * Prediction type (epsilon or v) is kept apart from the family: names tell it only through a
 * `v_pred` key; checkpoint.c adds what a diffusers scheduler_config.json or the single file's
 * "modelspec.prediction_type" metadata says. SD 1.x and SDXL default to epsilon (every published
 * base model is), reported with EASEL_PREDICTION_FROM_FAMILY. For SD 2.x nothing in the names
 * tells 768-v (v) from 512-base (epsilon), so the result stays EASEL_PREDICTION_UNKNOWN: a caller
 * then takes the user's choice, or a sidecar .yaml (parameterization: "v"), or does what A1111
 * does: run one UNet step on a known input and see which parameterization fits. */
#pragma once

#include <glib.h>

#include "dtype.h"
#include "safetensors.h"

G_BEGIN_DECLS

typedef enum {
  EASEL_FAMILY_UNKNOWN,
  EASEL_FAMILY_SD1,
  EASEL_FAMILY_SD1_INPAINT,
  EASEL_FAMILY_SD2,
  EASEL_FAMILY_SD2_INPAINT,
  EASEL_FAMILY_SDXL,
  EASEL_FAMILY_SDXL_INPAINT,
  EASEL_FAMILY_SDXL_REFINER,
  EASEL_FAMILY_COUNT
} EaselFamily;

/* Short stable name ("sd1", "sd1-inpaint", "sd2", "sd2-inpaint", "sdxl", "sdxl-inpaint",
 * "sdxl-refiner", "unknown") and a display name ("Stable Diffusion XL refiner"). */
const char *easel_family_name (EaselFamily family);
const char *easel_family_display_name (EaselFamily family);
/* Looks a short name up; FALSE when unknown. */
gboolean    easel_family_from_name (const char *name, EaselFamily *out);

typedef enum {
  EASEL_PREDICTION_UNKNOWN,
  EASEL_PREDICTION_EPSILON,
  EASEL_PREDICTION_V,
} EaselPrediction;

typedef enum {
  EASEL_PREDICTION_FROM_NOTHING,     /* UNKNOWN: nothing said */
  EASEL_PREDICTION_FROM_FAMILY,      /* the family's default (SD 1.x, SDXL: epsilon) */
  EASEL_PREDICTION_FROM_KEY,         /* a `v_pred` tensor */
  EASEL_PREDICTION_FROM_METADATA,    /* "modelspec.prediction_type" */
  EASEL_PREDICTION_FROM_SCHEDULER,   /* scheduler/scheduler_config.json "prediction_type" */
} EaselPredictionSource;

const char *easel_prediction_name (EaselPrediction p);          /* "epsilon", "v", "unknown" */
const char *easel_prediction_source_name (EaselPredictionSource s);
/* "epsilon", "v_prediction", "v" (modelspec) → EPSILON/V; anything else UNKNOWN. */
EaselPrediction easel_prediction_from_string (const char *s);

typedef enum {
  EASEL_NAMING_NONE,
  EASEL_NAMING_ORIGINAL,   /* ldm/sgm: input_blocks, middle_block, output_blocks; OpenCLIP resblocks */
  EASEL_NAMING_DIFFUSERS,  /* down_blocks, mid_block, up_blocks; transformers text_model.* */
} EaselNaming;

/* One entry of the detector's input. name is borrowed; shape in PyTorch order. */
typedef struct {
  const char *name;
  int n_dims;
  gint64 shape[EASEL_MAX_DIMS];
} EaselKeyShape;

#define EASEL_MAX_TEXT_ENCODERS 4
#define EASEL_PREFIX_MAX 96

typedef struct {
  EaselNaming naming;            /* DIFFUSERS: transformers CLIPTextModel keys; ORIGINAL: OpenCLIP */
  char prefix[EASEL_PREFIX_MAX]; /* up to "text_model." / "token_embedding.weight" */
  gint64 width;                  /* hidden size: columns of the token embedding */
  gint64 projection;             /* text_projection output width; 0 when absent */
  int n_layers;
} EaselTextEncoderInfo;

typedef struct {
  EaselFamily family;
  char reason[256];              /* how it was decided, or why UNKNOWN */

  /* UNet (unet_naming NONE: none found; the other fields are then 0) */
  EaselNaming unet_naming;
  char unet_prefix[EASEL_PREFIX_MAX];   /* "model.diffusion_model.", "unet/", "" for UNet-only files */
  gint64 in_channels;            /* conv_in input channels: 4, 9 for inpainting */
  gint64 model_channels;         /* conv_in output channels (320 SD/SDXL base, 384 refiner) */
  gint64 context_dim;            /* attn2.to_k input width (768 SD1, 1024 SD2, 2048 SDXL, 1280 refiner) */
  gboolean linear_proj;          /* proj_in is Linear (SD2, SDXL), not a 1x1 conv (SD1) */
  int n_levels;                  /* resolution levels (downsamplers + 1) */
  gint64 adm_in;                 /* label_emb / add_embedding input width; 0 = none */
  int n_time_ids;                /* SDXL: 6 base (size, crop, target), 5 refiner (aesthetic score) */
  gint64 time_id_width;          /* sinusoid width per time id (256 real); 0 when not derivable */
  gint64 pooled_dim;             /* pooled text width inside adm_in; 0 when not derivable */

  int n_text_encoders;
  EaselTextEncoderInfo text_encoders[EASEL_MAX_TEXT_ENCODERS];   /* sorted by prefix */
  gboolean has_vae;

  EaselPrediction prediction;
  EaselPredictionSource prediction_source;
} EaselDetection;

/* Detects the family of n keys (any order; duplicates are taken once). Never fails: an
 * undecidable list gives EASEL_FAMILY_UNKNOWN with the reason filled in. */
void easel_detect_family (const EaselKeyShape *keys, gsize n, EaselDetection *out);

/* Overrides the prediction type (from metadata or a scheduler config); UNKNOWN p is ignored. */
void easel_detection_set_prediction (EaselDetection *det, EaselPrediction p, EaselPredictionSource source);

/* --- key list files ---------------------------------------------------------------------------
 * One tensor per line: name TAB [d0, d1, ...] TAB dtype [TAB note]; '#' lines and blank lines are
 * skipped. dtype is a safetensors name ("F16", "I64") or a torch name ("float16", "int64"). */
typedef struct {
  EaselKeyShape *keys;      /* names point into the list's own storage */
  EaselDType *dtypes;
  gsize n_keys;
  GStringChunk *strings;
} EaselKeyList;

EaselKeyList *easel_key_list_parse (const char *text, gsize len, const char *display_name, GError **error);
EaselKeyList *easel_key_list_load (const char *path, GError **error);
void          easel_key_list_free (EaselKeyList *list);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselKeyList, easel_key_list_free)

/* safetensors ("F16") or torch ("float16", "torch.float16") dtype names. */
gboolean easel_dtype_from_any_name (const char *name, EaselDType *out);

G_END_DECLS
