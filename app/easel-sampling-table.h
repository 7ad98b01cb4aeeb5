/* app/easel-sampling-table.h: the engine's sampler and scheduler tables as the app shows them:
 * ComfyUI ids (what GSettings and jobs store) and A1111 labels (what the person reads). A file of
 * its own because engine/sampling/schedules.h and engine/family.h both define EaselPrediction: the
 * app's other files include easel.h, this one the sampling headers. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* "Automatic": A1111's choice of schedule for the sampler (the scheduler id stored as ""). */
#define EASEL_SCHEDULER_AUTOMATIC ""

guint       easel_sampling_table_n_samplers (void);
const char *easel_sampling_table_sampler_id (guint i);      /* "dpmpp_2m" */
const char *easel_sampling_table_sampler_label (guint i);   /* "DPM++ 2M" */
/* Index of a sampler in any spelling the engine reads (id, A1111 label, legacy combined name);
 * -1 when unknown. *scheduler_out (may be NULL) receives the scheduler id a combined legacy name
 * carries ("DPM++ 2M Karras" -> "karras"), else EASEL_SCHEDULER_AUTOMATIC. */
gint        easel_sampling_table_find_sampler (const char *name, const char **scheduler_out);

/* Schedulers, with "Automatic" first (index 0, id ""). */
guint       easel_sampling_table_n_schedulers (void);
const char *easel_sampling_table_scheduler_id (guint i);      /* "", "karras", ... */
const char *easel_sampling_table_scheduler_label (guint i);   /* "Automatic", "Karras", ... */
/* Index of a scheduler id or A1111 label (any case); "", NULL and "Automatic" give 0; -1 unknown. */
gint        easel_sampling_table_find_scheduler (const char *name);

G_END_DECLS
