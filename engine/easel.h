/* engine/easel.h: the public API of libeasel, the only engine header app/ includes for generation.
 *
 * An EaselEngine owns a backend (Vulkan or CPU) and is used from one thread at a time (the app's
 * engine thread). Models are loaded once and shared by reference between queued jobs; a job's
 * parameters are plain data. Progress and cancellation belong to the job: the progress callback
 * runs on the engine thread after every sampler step, and the GCancellable is checked between
 * steps. */
#pragma once

#include <gio/gio.h>
#include <glib.h>

#include "error.h"
#include "family.h"
#include "image.h"
#include "rng.h"

G_BEGIN_DECLS

typedef struct {
  const char *backend;      /* "auto" (Vulkan when usable, else CPU), "cpu", "vulkan"; NULL = auto */
  const char *device;       /* Vulkan device index or name; NULL = first usable */
  int n_threads;            /* CPU threads; <= 0: all cores ($EASEL_THREADS) */
  double max_vram_gib;      /* GPU memory the engine may hold, GiB (2^30 bytes); 0 = no limit below the
                             * device's own. Under it, text encoders' and the VAE's weights are released
                             * when the UNet needs the room (and the other way round), and the VAE
                             * decodes in tiles when it must; a job that cannot fit fails with
                             * EASEL_ERROR_OUT_OF_MEMORY. Ignored on the CPU. */
} EaselEngineOptions;

typedef struct _EaselEngine EaselEngine;
EaselEngine *easel_engine_new (const EaselEngineOptions *options, GError **error);   /* transfer full */
void         easel_engine_free (EaselEngine *engine);
/* "cpu" or "vulkan: <device name>", and why when Auto fell back to the CPU. */
const char  *easel_engine_describe (EaselEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselEngine, easel_engine_free)

typedef struct _EaselModel EaselModel;
/* A checkpoint file or diffusers folder, its family detected from its tensors. Its networks are
 * loaded on first use and stay loaded while the model lives. The engine must outlive its models.
 * transfer full. */
EaselModel *easel_model_load (EaselEngine *engine, const char *path, GError **error);

typedef struct {
  /* Diffusers-layout folders whose <component>/config.json tell what a single file cannot (the
   * attention heads of unusual models); a diffusers folder is always its own first one. May be NULL. */
  const char *const *config_dirs;
  /* The CLIP vocabulary (file or folder), else found as vocab.h describes. May be NULL. */
  const char *vocab;
} EaselModelOptions;
/* easel_model_load with options (NULL = none). transfer full. */
EaselModel *easel_model_load_with_options (EaselEngine *engine, const char *path, const EaselModelOptions *options,
                                           GError **error);
EaselModel *easel_model_ref (EaselModel *model);
void        easel_model_unref (EaselModel *model);
const char *easel_model_path (const EaselModel *model);
const EaselDetection *easel_model_detection (const EaselModel *model);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselModel, easel_model_unref)

/* --- adapters: ControlNet, T2I-Adapter, IP-Adapter (a block of its own) ------------------- */

/* One ControlNet and its hint. The hint image is resized to the job's size (bilinear) when it
 * differs; with canny, the image is a photo that Canny (OpenCV's, on the RGB image, after the
 * resize) turns into the white-on-black edge hint. */
typedef struct {
  const char *model;                 /* ControlNet file (.safetensors, either naming) or diffusers folder */
  const EaselImage *image;           /* the hint (RGB in [0, 1] as the model was trained), or a photo with canny */
  double strength;                   /* conditioning scale: multiplies every residual (1.0) */
  double start, end;                 /* fractions of the steps it acts in (0.0, 1.0); end 0 reads as 1.0 */
  gboolean canny;
  double canny_low, canny_high;      /* thresholds on the L1 gradient (100, 200) */
} EaselControlNetUnit;

/* One T2I-Adapter: its features are computed once from the image and added at every step. */
typedef struct {
  const char *model;                 /* diffusers folder or file of the adapter */
  const EaselImage *image;           /* resized to the job's size when it differs */
  double strength;                   /* scales the features (1.0) */
} EaselT2IAdapterUnit;

/* An IP-Adapter (h94 plain or Plus) with its CLIP image encoder; the reference images' tokens are
 * concatenated (diffusers), the negative is the projection of zero embeddings (plain) or of the
 * encoder's state for an all-zero image (Plus). */
typedef struct {
  const char *model;                 /* ip-adapter*.safetensors */
  const char *image_encoder;         /* CLIPVisionModelWithProjection folder; NULL: image_encoder/ beside
                                      * the adapter file or in its parent folder (h94's layout) */
  const EaselImage *const *images;   /* reference images */
  int n_images;
  double scale;                      /* weight of the image attention (1.0; 0.6 is common) */
} EaselIpAdapterUnit;

#define EASEL_CONTROLNET_UNIT_INIT { NULL, NULL, 1.0, 0.0, 1.0, FALSE, 100.0, 200.0 }
#define EASEL_T2I_ADAPTER_UNIT_INIT { NULL, NULL, 1.0 }
#define EASEL_IP_ADAPTER_UNIT_INIT { NULL, NULL, NULL, 0, 1.0 }

/* A LoRA given beside the prompt (easel-cli's --lora FILE:STRENGTH). */
typedef struct {
  const char *path;                  /* a LoRA file, or a name looked up as the prompt's <lora:NAME> tags are */
  double unet_strength;              /* A1111's unet multiplier */
  double te_strength;                /* A1111's te (text encoder) multiplier */
} EaselJobLora;

typedef struct {
  const char *prompt;                /* A1111 syntax: (w:1.2), [w], BREAK, long prompts; <lora:NAME:M>,
                                      * <lora:NAME:TE:UNET> tags (removed from the encoded text, kept in the
                                      * parameters); embeddings by file name or ComfyUI's embedding:NAME */
  const char *negative_prompt;
  const char *sampler;               /* ComfyUI id ("dpmpp_2m") or A1111 name ("DPM++ 2M") */
  const char *scheduler;             /* ComfyUI id ("karras") or A1111 label; NULL = the sampler's automatic one */
  int steps;
  double cfg;
  guint64 seed;
  EaselRngKind rng;                  /* CPU = ComfyUI's noise, CUDA = A1111's GPU noise */
  int width, height;                 /* multiples of 8 */
  int batch_size, batch_count;       /* seeds advance by one per image, as A1111 does */
  int clip_skip;                     /* 1 = last layer (0 reads as 1) */
  const EaselImage *init_image;      /* img2img / inpaint; NULL for txt2img */
  double strength;                   /* denoising strength for init_image */
  const EaselImage *mask;            /* white = repaint; NULL for none */
  int mask_blur;                     /* A1111's mask blur: Gaussian of that radius in pixels on the mask */
  gboolean inpaint_only_masked;      /* A1111 "only masked": crop around the mask (+ padding), upscale to
                                      * width x height, generate, paste back */
  int only_masked_padding;           /* pixels around the mask's bounding box */
  EaselModel *refiner;               /* SDXL refiner, or NULL */
  double refiner_switch;             /* fraction of the steps before the refiner takes over */
  EaselModel *vae;                   /* a separate VAE, or NULL */
  /* adapters (SD 1.x / 2.x / SDXL base; the refiner stage runs without them) */
  const EaselControlNetUnit *controlnets;   /* several at once: their residuals add up */
  int n_controlnets;
  const EaselT2IAdapterUnit *t2i_adapters;  /* several at once: their features add up */
  int n_t2i_adapters;
  const EaselIpAdapterUnit *ip_adapter;     /* NULL: none */
  /* LoRAs and embeddings (engine/networks.h). Merged into the model's weights for this job and
   * unmerged by the next job that does not name them: the checkpoint is never reloaded. */
  const EaselJobLora *loras;         /* n_loras LoRAs besides the prompt's tags, merged after them */
  int n_loras;
  const char *const *lora_dirs;      /* NULL-terminated folders for <lora:NAME> (NULL = none); then
                                      * $EASEL_LORA_DIR, the model's folder, and its sibling Lora/ and loras/ */
  const char *const *embedding_dirs; /* NULL-terminated folders of textual-inversion embeddings (NULL =
                                      * none); then $EASEL_EMBEDDINGS_DIR */
} EaselJobParams;

typedef struct {
  int image_index;                   /* within the job */
  int step, total_steps;
  double sigma;
  double elapsed_s, eta_s;
  const EaselImage *preview;         /* cheap latent -> RGB of the current denoised latent; may be NULL */
  const char *message;               /* a one-line notice instead of a step report ("init image resized
                                      * from 100x80 to 128x128"): step is 0 then; NULL on step reports */
} EaselProgress;

/* Runs on the engine thread; return FALSE to cancel. */
typedef gboolean (*EaselProgressFunc) (const EaselProgress *progress, gpointer user_data);

/* Generates batch_size × batch_count images; the PNG parameters of each are in *parameters_out
 * (A1111's text, one per image) when not NULL. transfer full (GPtrArray of EaselImage*). */
GPtrArray *easel_generate (EaselEngine *engine, EaselModel *model, const EaselJobParams *params,
                           EaselProgressFunc progress, gpointer user_data, GCancellable *cancellable,
                           GPtrArray **parameters_out, GError **error);

G_END_DECLS
