/* engine/engine.c: the public API's engine and models (easel.h, engine-private.h). A model opens
 * its checkpoint at load and builds each network (UNet, VAE, text encoders, tokenizer) the first
 * time a job needs it; they stay until the model's last reference goes. Generation is
 * engine/pipeline.c. */
#include "engine-private.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "json.h"
#include "lora.h"
#include "vocab.h"
#include "vulkan/devices.h"

struct _EaselEngine {
  EaselBackend *backend;
  char *description;
};

struct _EaselModel {
  gatomicrefcount ref;
  EaselCheckpoint *checkpoint;
  char **config_dirs;      /* hint folders, the checkpoint's own first when it is a folder */
  char *vocab;             /* explicit vocabulary or NULL */
  GMutex lock;             /* guards the lazily built parts below */
  EaselUnet *unet;
  EaselVae *vae;
  EaselClip *clip[2];
  EaselTokenizer *tokenizer;
  EaselModelSampling *sampling;
  EaselLoraStack *lora_stack;  /* the LoRAs merged now; freed (weights restored) before the networks */
  GHashTable *loras;           /* path -> EaselLora*: LoRA files opened by earlier jobs */
};

/* "vulkan": the device options name (any usable one, a CPU implementation such as lavapipe
 * included), an error when there is none. "auto": the same, but only a GPU will do; otherwise the
 * CPU backend, with the reason said once (g_message) and kept in the description. "cpu".
 * max_vram_gib: the Vulkan backend's memory limit (backend.h); the CPU backend has none. */
EaselEngine *
easel_engine_new (const EaselEngineOptions *options, GError **error)
{
  const char *want = options && options->backend ? options->backend : "auto";
  const char *device = options ? options->device : NULL;
  int n_threads = options ? options->n_threads : 0;
  gboolean is_auto = strcmp (want, "auto") == 0;
  g_autofree char *why = NULL;
  EaselBackend *be = NULL;

  if (options && !(options->max_vram_gib >= 0 && options->max_vram_gib < 1 << 20)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "GPU memory limit %g GiB: must be 0 (none) or more",
                 options->max_vram_gib);
    return NULL;
  }
  if (strcmp (want, "cpu") != 0 && !is_auto && strcmp (want, "vulkan") != 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "backend '%s' is not available (auto, cpu, vulkan)", want);
    return NULL;
  }
  if (strcmp (want, "cpu") != 0) {
    g_autoptr(GError) local = NULL;
    be = easel_backend_new_vulkan (device, &local);
    const EaselVulkanDeviceInfo *info = be ? easel_backend_vulkan_device_info (be) : NULL;
    if (be == NULL && !is_auto) {
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
    if (be == NULL)
      why = g_strdup (local->message);
    else if (is_auto && info && strcmp (info->type, "CPU") == 0) {
      why = g_strdup_printf ("vulkan: the only usable device, %s, is a CPU implementation", info->name);
      g_clear_pointer (&be, easel_backend_free);
    }
  }
  EaselEngine *e = g_new0 (EaselEngine, 1);
  if (be != NULL) {
    e->backend = be;
    e->description = g_strdup_printf ("vulkan: %s", easel_backend_vulkan_device_info (be)->name);
    if (options && options->max_vram_gib > 0)
      easel_backend_set_memory_limit (be, (guint64) (options->max_vram_gib * 1073741824.0));
  } else {
    e->backend = easel_backend_new_cpu (n_threads);
    e->description = why ? g_strdup_printf ("cpu (%s)", why) : g_strdup ("cpu");
    if (why)
      g_message ("Easel runs on the CPU: %s", why);
  }
  return e;
}

void
easel_engine_free (EaselEngine *engine)
{
  if (engine == NULL)
    return;
  easel_backend_free (engine->backend);
  g_free (engine->description);
  g_free (engine);
}

const char *
easel_engine_describe (EaselEngine *engine)
{
  return engine->description;
}

EaselBackend *
easel_engine_backend (EaselEngine *engine)
{
  return engine->backend;
}

EaselModel *
easel_model_load_with_options (EaselEngine *engine, const char *path, const EaselModelOptions *options,
                               GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  EaselCheckpoint *ck = easel_checkpoint_open (path, error);
  if (ck == NULL)
    return NULL;
  EaselModel *m = g_new0 (EaselModel, 1);
  g_atomic_ref_count_init (&m->ref);
  g_mutex_init (&m->lock);
  m->checkpoint = ck;
  GPtrArray *dirs = g_ptr_array_new ();
  if (easel_checkpoint_format (ck) == EASEL_CHECKPOINT_DIFFUSERS)
    g_ptr_array_add (dirs, g_strdup (path));
  for (guint i = 0; options && options->config_dirs && options->config_dirs[i]; i++)
    g_ptr_array_add (dirs, g_strdup (options->config_dirs[i]));
  g_ptr_array_add (dirs, NULL);
  m->config_dirs = (char **) g_ptr_array_free (dirs, FALSE);
  m->vocab = g_strdup (options ? options->vocab : NULL);
  return m;
}

EaselModel *
easel_model_load (EaselEngine *engine, const char *path, GError **error)
{
  return easel_model_load_with_options (engine, path, NULL, error);
}

EaselModel *
easel_model_ref (EaselModel *model)
{
  g_atomic_ref_count_inc (&model->ref);
  return model;
}

void
easel_model_unref (EaselModel *model)
{
  if (model == NULL || !g_atomic_ref_count_dec (&model->ref))
    return;
  /* the LoRA stack rebinds the networks' weights: restore them first; the networks point into
   * the checkpoint's mappings: free them next */
  easel_lora_stack_free (model->lora_stack);
  g_clear_pointer (&model->loras, g_hash_table_unref);
  easel_unet_free (model->unet);
  easel_vae_free (model->vae);
  easel_clip_free (model->clip[0]);
  easel_clip_free (model->clip[1]);
  easel_tokenizer_free (model->tokenizer);
  easel_model_sampling_free (model->sampling);
  easel_checkpoint_free (model->checkpoint);
  g_strfreev (model->config_dirs);
  g_free (model->vocab);
  g_mutex_clear (&model->lock);
  g_free (model);
}

const char *
easel_model_path (const EaselModel *model)
{
  return easel_checkpoint_path (model->checkpoint);
}

const EaselDetection *
easel_model_detection (const EaselModel *model)
{
  return easel_checkpoint_detection (model->checkpoint);
}

const EaselCheckpoint *
easel_model_checkpoint (const EaselModel *model)
{
  return model->checkpoint;
}

/* The first <dir>/<component>/config.json of the model's hint folders, parsed; NULL (no error)
 * when none exists. */
static gboolean
load_hint (EaselModel *m, const char *component, EaselJson **out, GError **error)
{
  *out = NULL;
  for (guint i = 0; m->config_dirs[i]; i++) {
    g_autofree char *p = g_build_filename (m->config_dirs[i], component, "config.json", NULL);
    if (g_file_test (p, G_FILE_TEST_IS_REGULAR))
      return (*out = easel_json_parse_file (p, 1 << 20, error)) != NULL;
  }
  return TRUE;
}

EaselUnet *
easel_model_unet (EaselModel *model, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&model->lock);
  g_autoptr(EaselJson) hint = NULL;
  if (model->unet == NULL && load_hint (model, "unet", &hint, error))
    model->unet = easel_unet_new (model->checkpoint, hint, error);
  return model->unet;
}

EaselVae *
easel_model_vae (EaselModel *model, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&model->lock);
  g_autoptr(EaselJson) hint = NULL;
  if (model->vae == NULL && load_hint (model, "vae", &hint, error))
    model->vae = easel_vae_new (model->checkpoint, hint, error);
  return model->vae;
}

EaselClip *
easel_model_clip (EaselModel *model, guint index, GError **error)
{
  g_return_val_if_fail (index < 2, NULL);
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&model->lock);
  if (model->clip[index] != NULL)
    return model->clip[index];
  g_autofree char *prefix = easel_clip_find_prefix (model->checkpoint, index, error);
  g_autoptr(EaselJson) hint = NULL;
  if (prefix == NULL || !load_hint (model, index == 0 ? "text_encoder" : "text_encoder_2", &hint, error))
    return NULL;
  return model->clip[index] = easel_clip_new (model->checkpoint, prefix, hint, error);
}

EaselTokenizer *
easel_model_tokenizer (EaselModel *model, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&model->lock);
  if (model->tokenizer == NULL)
    model->tokenizer = easel_vocab_load (model->vocab, easel_checkpoint_path (model->checkpoint), error);
  return model->tokenizer;
}

const EaselModelSampling *
easel_model_sampling (EaselModel *model)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&model->lock);
  if (model->sampling == NULL) {
    EaselPrediction p = easel_checkpoint_detection (model->checkpoint)->prediction;
    model->sampling = easel_model_sampling_new_scaled_linear (p == EASEL_PREDICTION_V ? EASEL_PREDICTION_V
                                                                                     : EASEL_PREDICTION_EPSILON,
                                                              0.00085, 0.012, 1000);
  }
  return model->sampling;
}

/* --- LoRAs (engine/networks.c) ------------------------------------------------------------------ */

EaselLoraStack *
easel_model_lora_stack (EaselModel *model, GError **error)
{
  EaselUnet *unet = easel_model_unet (model, error);
  if (unet == NULL)
    return NULL;
  EaselClip *clips[2] = { NULL, NULL };
  for (guint i = 0; i < 2; i++) {
    g_autoptr(GError) local = NULL;
    clips[i] = easel_model_clip (model, i, &local);
    if (clips[i] == NULL && !g_error_matches (local, EASEL_ERROR, EASEL_ERROR_NOT_FOUND)) {
      g_propagate_error (error, g_steal_pointer (&local));
      return NULL;
    }
  }
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&model->lock);
  if (model->lora_stack == NULL)
    model->lora_stack = easel_lora_stack_new (unet, clips[0], clips[1]);
  return model->lora_stack;
}

EaselLoraStack *
easel_model_peek_lora_stack (EaselModel *model)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&model->lock);
  return model->lora_stack;
}

/* An opened LoRA file and what its file was then: a file replaced since is opened again. */
typedef struct {
  EaselLora *lora;
  gint64 mtime, size, inode;
} OpenedLora;

static void
opened_lora_free (gpointer data)
{
  OpenedLora *o = data;
  easel_lora_unref (o->lora);
  g_free (o);
}

EaselLora *
easel_model_lora (EaselModel *model, const char *path, GError **error)
{
  g_autoptr(GMutexLocker) locker = g_mutex_locker_new (&model->lock);
  GStatBuf sb;
  if (g_stat (path, &sb) != 0) {
    int e = errno;
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "LoRA %s: %s", path, g_strerror (e));
    return NULL;
  }
  if (model->loras == NULL)
    model->loras = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, opened_lora_free);
  OpenedLora *o = g_hash_table_lookup (model->loras, path);
  if (o && o->mtime == (gint64) sb.st_mtime && o->size == (gint64) sb.st_size && o->inode == (gint64) sb.st_ino)
    return o->lora;
  EaselLora *lora = easel_lora_open (path, error);
  if (lora == NULL)
    return NULL;
  o = g_new0 (OpenedLora, 1);
  *o = (OpenedLora) { lora, sb.st_mtime, sb.st_size, sb.st_ino };
  g_hash_table_replace (model->loras, g_strdup (path), o);   /* the stack keeps its own reference to an old one */
  return lora;
}
