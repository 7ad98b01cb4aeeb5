/* app/easel-job.h: one generation request as the app builds it (owned copies of everything the
 * engine's EaselJobParams points at), read from and written back to GSettings, and turned into the
 * A1111 parameters text saved with each result. No widgets: settings are the single source of
 * truth, the panels are bound to them (STYLE G3), so restoring a PNG's parameters writes settings. */
#pragma once

#include <gio/gio.h>

#include "easel.h"

G_BEGIN_DECLS

#define EASEL_APP_ID "org.easel.Easel"

typedef struct {
  char *model_path;          /* checkpoint file or diffusers folder; NULL = none chosen */
  char *prompt, *negative_prompt;
  char *sampler;             /* ComfyUI id */
  char *scheduler;           /* ComfyUI id; "" = the sampler's automatic schedule */
  EaselImage *init_image;    /* owned, or NULL */
  EaselImage *mask;          /* owned, or NULL */
  EaselJobParams params;     /* its strings and images point at the fields above */
} EaselJobRequest;

/* A copy of an image (NULL gives NULL). transfer full. */
EaselImage      *easel_job_image_copy (const EaselImage *image);

void             easel_job_request_free (EaselJobRequest *req);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselJobRequest, easel_job_request_free)
/* A deep copy (the comparison view varies one field per cell). transfer full. */
EaselJobRequest *easel_job_request_copy (const EaselJobRequest *req);
void             easel_job_request_set_string (EaselJobRequest *req, char **field, const char *value);

/* The request the settings describe, with the given seed. init_image and mask (may be NULL) are
 * copied; strength and mask blur only count with an init image. transfer full. */
EaselJobRequest *easel_job_request_from_settings (GSettings *settings, guint64 seed, const EaselImage *init_image,
                                                  const EaselImage *mask);

/* The seed of the next job: a fresh random one (as A1111's -1, below 2^32) when "randomize-seed"
 * is on, else "seed"; stored as "last-seed" for reuse. */
guint64 easel_job_next_seed (GSettings *settings);

/* A1111's parameters for a request (prompt, negative, steps, sampler, schedule type, CFG, seed,
 * size, model, denoise with an init image, clip skip). transfer full. */
EaselParameters *easel_job_request_to_parameters (const EaselJobRequest *req);

/* Writes every field p gives into settings, each checked against the schema's range; a sampler
 * written as A1111's legacy combined name ("DPM++ 2M Karras") sets the scheduler too. Returns how
 * many given fields could not be applied (unknown sampler, size out of range...), and their names
 * joined by ", " in *skipped_out (may be NULL; transfer full). The model is not a setting: the
 * caller matches p->model against the models it knows. */
guint easel_job_settings_apply_parameters (GSettings *settings, const EaselParameters *p, char **skipped_out);

/* The default output folder: $XDG_PICTURES_DIR/Easel (or ~/Pictures/Easel); transfer full. */
char *easel_job_default_output_folder (void);
/* "output-folder" when set, else the default. transfer full. */
char *easel_job_output_folder (GSettings *settings);

G_END_DECLS
