/* engine/engine.c: the public API's engine and models (easel.h). Generation itself is built by the
 * pipeline (engine/pipeline.c, not written yet): until then easel_generate says so. */
#include "easel.h"

#include "backend.h"
#include "checkpoint.h"

struct _EaselEngine {
  EaselBackend *backend;
  char *description;
};

struct _EaselModel {
  gatomicrefcount ref;
  EaselCheckpoint *checkpoint;
};

EaselEngine *
easel_engine_new (const EaselEngineOptions *options, GError **error)
{
  EaselEngine *e = g_new0 (EaselEngine, 1);
  const char *want = options && options->backend ? options->backend : "auto";

  if (g_strcmp0 (want, "cpu") != 0 && g_strcmp0 (want, "auto") != 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "backend '%s' is not available (cpu, auto)", want);
    g_free (e);
    return NULL;
  }
  e->backend = easel_backend_new_cpu (options ? options->n_threads : 0);
  e->description = g_strdup (g_strcmp0 (want, "auto") == 0 ? "cpu (no Vulkan backend in this build)" : "cpu");
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

EaselModel *
easel_model_load (EaselEngine *engine, const char *path, GError **error)
{
  EaselCheckpoint *ck = easel_checkpoint_open (path, error);
  if (ck == NULL)
    return NULL;
  EaselModel *m = g_new0 (EaselModel, 1);
  g_atomic_ref_count_init (&m->ref);
  m->checkpoint = ck;
  return m;
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
  if (model && g_atomic_ref_count_dec (&model->ref)) {
    easel_checkpoint_free (model->checkpoint);
    g_free (model);
  }
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

GPtrArray *
easel_generate (EaselEngine *engine, EaselModel *model, const EaselJobParams *params, EaselProgressFunc progress,
                gpointer user_data, GCancellable *cancellable, GPtrArray **parameters_out, GError **error)
{
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED,
               "generation is not built yet: the networks and the pipeline are in progress");
  return NULL;
}
