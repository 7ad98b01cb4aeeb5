/* engine/engine-private.h: what the pipeline (pipeline.c) sees of the engine and its models
 * (engine.c): the backend, and a model's networks, each loaded on first use and kept until the
 * model's last reference goes, so that a second job with another prompt reloads nothing. */
#pragma once

#include "backend.h"
#include "checkpoint.h"
#include "clip.h"
#include "easel.h"
#include "lora.h"
#include "sampling/schedules.h"
#include "tokenizer.h"
#include "unet.h"
#include "vae.h"

G_BEGIN_DECLS

EaselBackend *easel_engine_backend (EaselEngine *engine);

const EaselCheckpoint *easel_model_checkpoint (const EaselModel *model);
/* The networks of a model, loaded on the first call (thread-safe), owned by the model. Errors name
 * the checkpoint and what is missing or wrong. */
EaselUnet *easel_model_unet (EaselModel *model, GError **error);
EaselVae  *easel_model_vae (EaselModel *model, GError **error);
/* Text encoder `index` in diffusers' order (0: text_encoder, 1: text_encoder_2); NULL with
 * EASEL_ERROR_NOT_FOUND when the checkpoint has none there. */
EaselClip *easel_model_clip (EaselModel *model, guint index, GError **error);
EaselTokenizer *easel_model_tokenizer (EaselModel *model, GError **error);
/* SD's scaled_linear schedule (0.00085, 0.012, 1000) with the detected prediction type
 * (epsilon where nothing tells). */
const EaselModelSampling *easel_model_sampling (EaselModel *model);

/* The model's LoRA stack (lora.h) over its UNet and text encoders (whichever it has), made on the
 * first call; it keeps the set merged by the last job until the next one changes it. Owned by the
 * model. */
EaselLoraStack *easel_model_lora_stack (EaselModel *model, GError **error);
/* The stack if one was made, else NULL (no network is loaded for it). */
EaselLoraStack *easel_model_peek_lora_stack (EaselModel *model);
/* The LoRA file at path, opened on the first call and kept by the model for later jobs
 * (transfer none). */
EaselLora *easel_model_lora (EaselModel *model, const char *path, GError **error);

G_END_DECLS
