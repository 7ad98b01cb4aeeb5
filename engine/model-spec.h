/* engine/model-spec.h: Easel's own description of each family's architecture, as data, and the
 * list of every tensor a checkpoint of that architecture holds in the ORIGINAL single-file naming
 * (ldm/sgm: model.diffusion_model.*, first_stage_model.*, cond_stage_model.* /
 * conditioner.embedders.N.*), with the public files' non-weight extras (position_ids, logit_scale,
 * SD 2.x's unused 24th OpenCLIP layer and text projection).
 *
 * Follows the published configs: CompVis ldm's openaimodel.UNetModel (input_blocks /
 * middle_block / output_blocks, ResBlock in_layers/emb_layers/out_layers, SpatialTransformer
 * with GEGLU feed-forward), ldm's AutoencoderKL (Encoder/Decoder with one mid attention), HF
 * transformers' CLIPTextModel and OpenCLIP's TextTransformer. tests/test-model-spec.c compares
 * the lists with testdata/fullsize_keys (real SD 1.5, SD 2.1-768-v, SDXL base 1.0, refiner 1.0)
 * and with the tiny test models' key lists.
 *
 * Writing random-weight checkpoints from a spec: engine/model-make.h. */
#pragma once

#include <glib.h>

#include "dtype.h"
#include "family.h"
#include "safetensors.h"

G_BEGIN_DECLS

#define EASEL_SPEC_MAX_LEVELS 6
#define EASEL_SPEC_MAX_TEXT   2

typedef struct {
  gint64 in_channels;       /* 4; 9 for inpainting (latent + mask + masked-image latent) */
  gint64 out_channels;      /* 4 */
  gint64 model_channels;    /* conv_in output width; the time embedding is 4x as wide */
  int n_levels;             /* resolutions (downsamplers + 1) */
  gint64 channels[EASEL_SPEC_MAX_LEVELS];   /* width per level (model_channels x multiplier) */
  int n_res_blocks;         /* ResBlocks per level going down (one more going up) */
  int depth[EASEL_SPEC_MAX_LEVELS];         /* transformer blocks per attention; 0 = no attention */
  int depth_middle;         /* transformer blocks of the middle block (>= 1) */
  int heads[EASEL_SPEC_MAX_LEVELS];         /* attention heads per level (SD 1.x: 8; others: width / 64) */
  gint64 context_dim;       /* cross-attention input width: the text encoders' widths summed */
  gboolean linear_proj;     /* proj_in/proj_out Linear [C, C] (SD 2.x, SDXL), not 1x1 conv (SD 1.x) */
  gint64 adm_in;            /* label embedding input (SDXL: pooled + n_time_ids x time_id_width); 0 = none */
  int n_time_ids;           /* SDXL base 6, refiner 5 */
  gint64 time_id_width;     /* sinusoid width of one time id (256 real) */
} EaselUNetSpec;

typedef struct {
  gint64 in_channels;       /* 3 (RGB) */
  gint64 latent_channels;   /* 4 */
  int n_levels;
  gint64 channels[EASEL_SPEC_MAX_LEVELS];   /* encoder width per level, first level first */
  int n_res_blocks;         /* encoder ResBlocks per level; the decoder has one more */
  double scaling_factor;    /* 0.18215 SD 1.x/2.x, 0.13025 SDXL */
} EaselVaeSpec;

typedef enum {
  EASEL_TEXT_NAMING_CLIP,       /* transformers CLIPTextModel: PREFIX text_model.* */
  EASEL_TEXT_NAMING_OPENCLIP,   /* OpenCLIP: PREFIX transformer.resblocks.*, fused in_proj */
} EaselTextNaming;

typedef struct {
  EaselTextNaming naming;
  char prefix[EASEL_PREFIX_MAX];   /* "cond_stage_model.transformer.", "conditioner.embedders.1.model." */
  gint64 width;             /* 768 CLIP-L, 1024 OpenCLIP-H, 1280 OpenCLIP-bigG */
  gint64 ff_width;          /* 4 x width */
  gint64 vocab;             /* token embedding rows: 49408 for CLIP's vocabulary */
  gint64 n_positions;       /* 77 */
  int n_layers;             /* as stored (SD 2.x: 24, the last unused) */
  int heads;                /* width / 64 in the real models */
  gint64 projection;        /* OpenCLIP text_projection [width, projection]; 0 = none */
  gboolean quick_gelu;      /* OpenAI CLIP's activation (OpenCLIP: gelu) */
  gboolean position_ids;    /* extra: transformers' int64 position_ids buffer [1, n_positions] */
  gboolean logit_scale;     /* extra: OpenCLIP's scalar logit_scale */
} EaselTextSpec;

typedef struct {
  const char *name;         /* "sd15", "sd15-inpaint", "sd21", "sd21v", "sdxl", "sdxl-refiner" */
  gboolean tiny;            /* the test models' widths (testdata/models/manifest.json) */
  EaselFamily family;       /* what easel_detect_family should say */
  EaselPrediction prediction;
  EaselUNetSpec unet;
  EaselVaeSpec vae;
  int n_text;
  EaselTextSpec text[EASEL_SPEC_MAX_TEXT];   /* in key order */
} EaselModelSpec;

/* The names easel_model_spec_get knows, NULL-terminated. */
const char *const *easel_model_spec_names (void);

/* The published configuration of a family (tiny: the test models'). FALSE with
 * EASEL_ERROR_INVALID_INPUT naming the known families when name is unknown. */
gboolean easel_model_spec_get (const char *name, gboolean tiny, EaselModelSpec *out, GError **error);

/* How a tensor's values are made (engine/model-make.c). */
typedef enum {
  EASEL_INIT_WEIGHT,        /* ~ N(0, 1 / fan_in): Linear [out, in], conv [out, in, kh, kw] */
  EASEL_INIT_BIAS,          /* ~ N(0, 0.01^2): nearly zero, but not exactly */
  EASEL_INIT_ONES,          /* norm scales */
  EASEL_INIT_ZEROS,         /* norm shifts */
  EASEL_INIT_EMBEDDING,     /* ~ N(0, 0.02^2): token embeddings */
  EASEL_INIT_POSITION,      /* ~ N(0, 0.01^2): position embeddings */
  EASEL_INIT_ARANGE,        /* 0, 1, 2, ... (position_ids, int64) */
  EASEL_INIT_LOGIT_SCALE,   /* ln (1 / 0.07), CLIP's initial value */
} EaselInit;

typedef struct {
  const char *name;         /* owned by the list */
  EaselDType dtype;         /* the float dtype asked for; I64 for position_ids */
  int n_dims;
  gint64 shape[EASEL_MAX_DIMS];
  guint64 n_elements;
  EaselInit init;
  gint64 fan_in;            /* EASEL_INIT_WEIGHT: inputs per output (in x kh x kw) */
} EaselSpecTensor;

typedef struct {
  EaselSpecTensor *tensors; /* sorted by name */
  gsize n_tensors;
  GStringChunk *names;
} EaselSpecTensorList;

/* Every tensor of spec in original naming, sorted by name; floats in float_dtype (F16, BF16,
 * F32). transfer full. */
EaselSpecTensorList *easel_model_spec_tensors (const EaselModelSpec *spec, EaselDType float_dtype);
void easel_spec_tensor_list_free (EaselSpecTensorList *list);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselSpecTensorList, easel_spec_tensor_list_free)

/* Total data bytes of the list. */
guint64 easel_spec_tensor_list_bytes (const EaselSpecTensorList *list);

/* A diffusers / transformers config.json for a part of spec ("unet", "text_encoder",
 * "text_encoder_2", "vae"), as the loaders take as a hint: the facts a single file cannot tell
 * (attention heads, activation). NULL when spec has no such part. transfer full. */
char *easel_model_spec_config_json (const EaselModelSpec *spec, const char *part);

G_END_DECLS
