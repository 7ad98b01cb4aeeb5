/* app/easel-worker.h: the engine thread (STYLE G4, G5). One worker thread owns the EaselEngine and
 * the loaded model; jobs reach it through a GAsyncQueue; it never touches a widget. What it has to
 * say comes back on the main context the worker was created on, as signals:
 *
 *   job-started  (guint job_id)
 *   status       (guint job_id, const char *text)           "Loading model ..."
 *   progress     (guint job_id, gint step, gint total, gdouble eta_s)
 *   preview      (guint job_id, GdkTexture *texture)        through a one-slot mailbox: the newest
 *                                                           wins, stale ones are dropped unseen
 *   job-finished (guint job_id, GPtrArray *images, GPtrArray *parameters, GError *error)
 *                images: EaselImage*, parameters: char* (A1111 text per image); error NULL on
 *                success, G_IO_ERROR_CANCELLED / EASEL_ERROR_CANCELLED when cancelled.
 *
 * Disposing the worker cancels every job and joins the thread. */
#pragma once

#include <gtk/gtk.h>

#include "easel-job.h"

G_BEGIN_DECLS

#define EASEL_TYPE_WORKER (easel_worker_get_type ())
G_DECLARE_FINAL_TYPE (EaselWorker, easel_worker, EASEL, WORKER, GObject)

/* backend/device as EaselEngineOptions takes them (NULL = auto); the engine is created on the
 * worker thread when the first job arrives. transfer full. */
EaselWorker *easel_worker_new (const char *backend, const char *device);

/* Queues a job (takes req); returns its id (> 0). */
guint        easel_worker_submit (EaselWorker *self, EaselJobRequest *req);
/* Cancels one job, queued or running; unknown ids are ignored. */
void         easel_worker_cancel (EaselWorker *self, guint job_id);
void         easel_worker_cancel_all (EaselWorker *self);
/* Jobs queued or running. */
guint        easel_worker_n_pending (EaselWorker *self);
/* Changes the engine options: the next job re-creates the engine. */
void         easel_worker_set_backend (EaselWorker *self, const char *backend, const char *device);
/* GiB of GPU memory the engine may hold (EaselEngineOptions.max_vram_gib; 0 = no limit); a change
 * re-creates the engine for the next job. */
void         easel_worker_set_max_vram (EaselWorker *self, double gib);

G_END_DECLS
