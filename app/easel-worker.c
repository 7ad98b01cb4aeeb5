/* app/easel-worker.c: the engine thread, its job queue and the preview mailbox (easel-worker.h).
 *
 * Threads: everything in the "worker" section runs on the engine thread and reaches the main
 * context only through g_main_context_invoke_full with a reference it hands over; everything else
 * runs on the main context. A job's cancellable is the only object both touch (thread-safe). */
#include "easel-worker.h"

#include <glib/gi18n.h>

#include "easel-image-io.h"
#include "model-make.h"

typedef struct {
  gatomicrefcount ref;
  guint id;
  EaselJobRequest *req;          /* read by the worker only */
  GCancellable *cancellable;
  EaselWorker *worker;           /* strong ref while queued or running */
  /* results, written by the worker before job_finished_cb */
  GPtrArray *images;
  GPtrArray *parameters;
  GError *error;
  char *status;
  gint step, total;
  double eta;
} Job;

typedef struct {
  guint job_id;
  EaselImage *image;
} Preview;

struct _EaselWorker {
  GObject parent_instance;

  GMainContext *main_context;    /* where signals are emitted */
  GThread *thread;
  GAsyncQueue *jobs;             /* Job*; the quit marker ends the thread */
  GPtrArray *pending;            /* main thread: Job* queued or running */
  guint next_id;

  GMutex lock;                   /* guards backend, device, max_vram_gib and options_changed */
  char *backend, *device;
  double max_vram_gib;
  gboolean options_changed;

  gpointer mailbox;              /* Preview*, atomic */

  /* worker-thread state */
  EaselEngine *engine;
  EaselModel *model;
};

G_DEFINE_FINAL_TYPE (EaselWorker, easel_worker, G_TYPE_OBJECT)

enum { JOB_STARTED, STATUS, PROGRESS, PREVIEW, JOB_FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];

static Job quit_job;

static Job *
job_ref (Job *job)
{
  g_atomic_ref_count_inc (&job->ref);
  return job;
}

static void
job_unref (Job *job)
{
  if (!g_atomic_ref_count_dec (&job->ref))
    return;
  easel_job_request_free (job->req);
  g_clear_object (&job->cancellable);
  g_clear_object (&job->worker);
  g_clear_pointer (&job->images, g_ptr_array_unref);
  g_clear_pointer (&job->parameters, g_ptr_array_unref);
  g_clear_error (&job->error);
  g_free (job->status);
  g_free (job);
}

static void
preview_free (Preview *pv)
{
  if (pv == NULL)
    return;
  easel_image_free (pv->image);
  g_free (pv);
}

/* ---- main context side ---------------------------------------------------------------------- */

static gboolean
job_started_cb (gpointer data)
{
  Job *job = data;
  g_signal_emit (job->worker, signals[JOB_STARTED], 0, job->id);
  return G_SOURCE_REMOVE;
}

static gboolean
status_cb (gpointer data)
{
  Job *job = data;
  g_autofree char *text = g_atomic_pointer_exchange (&job->status, NULL);
  if (text)
    g_signal_emit (job->worker, signals[STATUS], 0, job->id, text);
  return G_SOURCE_REMOVE;
}

static gboolean
progress_cb (gpointer data)
{
  Job *job = data;
  g_signal_emit (job->worker, signals[PROGRESS], 0, job->id, g_atomic_int_get (&job->step),
                 g_atomic_int_get (&job->total), job->eta);
  return G_SOURCE_REMOVE;
}

static gboolean
apply_preview_cb (gpointer data)
{
  EaselWorker *self = data;
  Preview *pv = g_atomic_pointer_exchange (&self->mailbox, NULL);
  if (pv == NULL)
    return G_SOURCE_REMOVE;
  /* a preview of a job that already ended is stale */
  for (guint i = 0; i < self->pending->len; i++) {
    Job *job = self->pending->pdata[i];
    if (job->id == pv->job_id && !g_cancellable_is_cancelled (job->cancellable)) {
      g_autoptr(GdkTexture) tex = easel_texture_from_image (pv->image);
      g_signal_emit (self, signals[PREVIEW], 0, pv->job_id, tex);
      break;
    }
  }
  preview_free (pv);
  return G_SOURCE_REMOVE;
}

static gboolean
job_finished_cb (gpointer data)
{
  Job *job = data;
  EaselWorker *self = job->worker;
  g_ptr_array_remove (self->pending, job);
  g_signal_emit (self, signals[JOB_FINISHED], 0, job->id, job->images, job->parameters, job->error);
  return G_SOURCE_REMOVE;
}

static void
invoke (EaselWorker *self, GSourceFunc fn, Job *job)
{
  g_main_context_invoke_full (self->main_context, G_PRIORITY_DEFAULT, fn, job_ref (job),
                              (GDestroyNotify) job_unref);
}

/* ---- worker thread -------------------------------------------------------------------------- */

static void
set_status (Job *job, const char *text)
{
  g_free (g_atomic_pointer_exchange (&job->status, g_strdup (text)));
  invoke (job->worker, status_cb, job);
}

static gboolean
on_engine_progress (const EaselProgress *progress, gpointer user_data)
{
  Job *job = user_data;
  EaselWorker *self = job->worker;

  if (progress->message) {   /* a notice ("init image resized ..."), not a step */
    set_status (job, progress->message);
    return !g_cancellable_is_cancelled (job->cancellable);
  }
  g_atomic_int_set (&job->step, progress->step);
  g_atomic_int_set (&job->total, progress->total_steps);
  job->eta = progress->eta_s;
  invoke (self, progress_cb, job);

  if (progress->preview) {
    Preview *pv = g_new0 (Preview, 1);
    pv->job_id = job->id;
    pv->image = easel_job_image_copy (progress->preview);
    Preview *old = g_atomic_pointer_exchange (&self->mailbox, pv);
    if (old == NULL)   /* nobody is on the way to collect it yet */
      g_main_context_invoke_full (self->main_context, G_PRIORITY_DEFAULT_IDLE, apply_preview_cb,
                                  g_object_ref (self), g_object_unref);
    else
      preview_free (old);
  }
  return !g_cancellable_is_cancelled (job->cancellable);
}

static gboolean
ensure_engine (EaselWorker *self, Job *job, GError **error)
{
  g_mutex_lock (&self->lock);
  gboolean changed = self->options_changed;
  g_autofree char *backend = g_strdup (self->backend);
  g_autofree char *device = g_strdup (self->device);
  double max_vram_gib = self->max_vram_gib;
  self->options_changed = FALSE;
  g_mutex_unlock (&self->lock);

  if (self->engine && !changed)
    return TRUE;
  g_clear_pointer (&self->model, easel_model_unref);
  g_clear_pointer (&self->engine, easel_engine_free);
  set_status (job, _("Starting the engine…"));
  EaselEngineOptions opts = { .backend = backend, .device = device, .max_vram_gib = max_vram_gib };
  self->engine = easel_engine_new (&opts, error);
  return self->engine != NULL;
}

/* The model of the job: its checkpoint, or with none chosen the built-in demo model (written on
 * first use, engine/model-make.h). A load failure names the file and what to do. */
static gboolean
ensure_model (EaselWorker *self, Job *job, GError **error)
{
  g_autofree char *path = g_strdup (job->req->model_path);
  g_autofree char *vocab = NULL;
  g_autoptr(GError) local = NULL;
  if (path == NULL) {
    gboolean written = FALSE;
    g_autofree char *dir = easel_demo_model_dir ();
    if (!g_file_test (dir, G_FILE_TEST_IS_DIR))
      set_status (job, _("Writing the built-in demo model…"));
    if (!easel_demo_model_ensure (&path, &vocab, &written, &local)) {
      g_set_error (error, EASEL_ERROR, local->code,
                   _("The built-in demo model could not be written (%s): free some space there, or choose a "
                     "checkpoint in the model list"), local->message);
      return FALSE;
    }
  }
  if (self->model && g_strcmp0 (easel_model_path (self->model), path) == 0)
    return TRUE;
  g_clear_pointer (&self->model, easel_model_unref);
  g_autofree char *name = g_path_get_basename (path);
  g_autofree char *text = vocab ? g_strdup (_("Loading the built-in demo model…"))
                                : g_strdup_printf (_("Loading %s…"), name);
  set_status (job, text);
  EaselModelOptions opts = { .vocab = vocab };
  self->model = easel_model_load_with_options (self->engine, path, &opts, &local);
  if (self->model == NULL) {
    g_autofree char *dir = g_path_get_dirname (path);
    if (vocab)
      g_set_error (error, EASEL_ERROR, local->code, _("The built-in demo model could not be loaded (%s): delete the "
                                                      "folder %s so that it is written again"),
                   local->message, dir);
    else
      g_set_error (error, EASEL_ERROR, local->code,
                   _("The model %s could not be loaded (%s): choose another checkpoint in the model list, or none "
                     "to use the built-in demo model"), name, local->message);
    return FALSE;
  }
  return TRUE;
}

static void
run_job (EaselWorker *self, Job *job)
{
  if (g_cancellable_set_error_if_cancelled (job->cancellable, &job->error))
    return;
  invoke (self, job_started_cb, job);
  if (!ensure_engine (self, job, &job->error) || !ensure_model (self, job, &job->error))
    return;
  if (g_cancellable_set_error_if_cancelled (job->cancellable, &job->error))
    return;
  set_status (job, _("Generating…"));
  job->images = easel_generate (self->engine, self->model, &job->req->params, on_engine_progress, job,
                                job->cancellable, &job->parameters, &job->error);
}

static gpointer
worker_thread (gpointer data)
{
  EaselWorker *self = data;   /* not a reference: dispose joins this thread before finalizing */
  Job *job;
  /* A context of this thread's own: without it g_main_context_invoke_full would see the main
   * context as this thread's default and, whenever the main thread is not iterating, acquire it
   * and run the callback right here, on the engine thread. */
  GMainContext *own = g_main_context_new ();
  g_main_context_push_thread_default (own);

  while ((job = g_async_queue_pop (self->jobs)) != &quit_job) {
    run_job (self, job);
    /* hands the queue's reference to the main context */
    g_main_context_invoke_full (self->main_context, G_PRIORITY_DEFAULT, job_finished_cb, job,
                                (GDestroyNotify) job_unref);
  }
  g_clear_pointer (&self->model, easel_model_unref);
  g_clear_pointer (&self->engine, easel_engine_free);
  g_main_context_pop_thread_default (own);
  g_main_context_unref (own);
  return NULL;
}

/* ---- API ------------------------------------------------------------------------------------ */

guint
easel_worker_submit (EaselWorker *self, EaselJobRequest *req)
{
  g_return_val_if_fail (EASEL_IS_WORKER (self), 0);
  Job *job = g_new0 (Job, 1);
  g_atomic_ref_count_init (&job->ref);
  job->id = ++self->next_id;
  job->req = req;
  job->cancellable = g_cancellable_new ();
  job->worker = g_object_ref (self);
  g_ptr_array_add (self->pending, job);   /* borrowed: removed in job_finished_cb */
  g_async_queue_push (self->jobs, job);
  return job->id;
}

void
easel_worker_cancel (EaselWorker *self, guint job_id)
{
  g_return_if_fail (EASEL_IS_WORKER (self));
  for (guint i = 0; i < self->pending->len; i++) {
    Job *job = self->pending->pdata[i];
    if (job->id == job_id)
      g_cancellable_cancel (job->cancellable);
  }
}

void
easel_worker_cancel_all (EaselWorker *self)
{
  g_return_if_fail (EASEL_IS_WORKER (self));
  for (guint i = 0; i < self->pending->len; i++)
    g_cancellable_cancel (((Job *) self->pending->pdata[i])->cancellable);
}

guint
easel_worker_n_pending (EaselWorker *self)
{
  g_return_val_if_fail (EASEL_IS_WORKER (self), 0);
  return self->pending->len;
}

void
easel_worker_set_backend (EaselWorker *self, const char *backend, const char *device)
{
  g_return_if_fail (EASEL_IS_WORKER (self));
  g_mutex_lock (&self->lock);
  if (g_strcmp0 (backend, self->backend) != 0 || g_strcmp0 (device, self->device) != 0) {
    g_free (self->backend);
    g_free (self->device);
    self->backend = g_strdup (backend);
    self->device = g_strdup (device);
    self->options_changed = TRUE;
  }
  g_mutex_unlock (&self->lock);
}

void
easel_worker_set_max_vram (EaselWorker *self, double gib)
{
  g_return_if_fail (EASEL_IS_WORKER (self));
  g_mutex_lock (&self->lock);
  if (gib != self->max_vram_gib) {
    self->max_vram_gib = gib;
    self->options_changed = TRUE;
  }
  g_mutex_unlock (&self->lock);
}

EaselWorker *
easel_worker_new (const char *backend, const char *device)
{
  EaselWorker *self = g_object_new (EASEL_TYPE_WORKER, NULL);
  easel_worker_set_backend (self, backend, device);
  return self;
}

static void
easel_worker_dispose (GObject *object)
{
  EaselWorker *self = EASEL_WORKER (object);

  /* Jobs hold a reference to the worker, so dispose runs once they have all been delivered, or
   * at finalization by the last unref: either way nothing is running that is not cancelled. */
  if (self->thread) {
    easel_worker_cancel_all (self);
    g_async_queue_push (self->jobs, &quit_job);
    g_thread_join (g_steal_pointer (&self->thread));
  }
  G_OBJECT_CLASS (easel_worker_parent_class)->dispose (object);
}

static void
easel_worker_finalize (GObject *object)
{
  EaselWorker *self = EASEL_WORKER (object);
  preview_free (g_atomic_pointer_exchange (&self->mailbox, NULL));
  g_async_queue_unref (self->jobs);
  g_ptr_array_unref (self->pending);
  g_main_context_unref (self->main_context);
  g_mutex_clear (&self->lock);
  g_free (self->backend);
  g_free (self->device);
  G_OBJECT_CLASS (easel_worker_parent_class)->finalize (object);
}

static void
easel_worker_class_init (EaselWorkerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->dispose = easel_worker_dispose;
  object_class->finalize = easel_worker_finalize;

  signals[JOB_STARTED] = g_signal_new ("job-started", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                       NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
  signals[STATUS] = g_signal_new ("status", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                  G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
  signals[PROGRESS] = g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                    G_TYPE_NONE, 4, G_TYPE_UINT, G_TYPE_INT, G_TYPE_INT, G_TYPE_DOUBLE);
  signals[PREVIEW] = g_signal_new ("preview", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                   G_TYPE_NONE, 2, G_TYPE_UINT, GDK_TYPE_TEXTURE);
  signals[JOB_FINISHED] = g_signal_new ("job-finished", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                        NULL, G_TYPE_NONE, 4, G_TYPE_UINT, G_TYPE_PTR_ARRAY, G_TYPE_PTR_ARRAY,
                                        G_TYPE_ERROR);
}

static void
easel_worker_init (EaselWorker *self)
{
  self->main_context = g_main_context_ref_thread_default ();
  self->jobs = g_async_queue_new ();
  self->pending = g_ptr_array_new ();
  g_mutex_init (&self->lock);
  self->thread = g_thread_new ("easel-engine", worker_thread, self);
}
