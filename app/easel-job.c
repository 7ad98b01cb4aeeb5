/* app/easel-job.c: generation requests <-> GSettings <-> A1111 parameters (easel-job.h). */
#include "easel-job.h"

#include <math.h>
#include <string.h>

#include "easel-sampling-table.h"

EaselImage *
easel_job_image_copy (const EaselImage *image)
{
  if (image == NULL)
    return NULL;
  EaselImage *c = g_new (EaselImage, 1);
  *c = *image;
  c->pixels = g_memdup2 (image->pixels, image->stride * (gsize) image->height);
  return c;
}

void
easel_job_request_free (EaselJobRequest *req)
{
  if (req == NULL)
    return;
  g_free (req->model_path);
  g_free (req->prompt);
  g_free (req->negative_prompt);
  g_free (req->sampler);
  g_free (req->scheduler);
  easel_image_free (req->init_image);
  easel_image_free (req->mask);
  g_free (req);
}

/* Points the params' borrowed fields at the request's own copies. */
static void
relink (EaselJobRequest *req)
{
  req->params.prompt = req->prompt;
  req->params.negative_prompt = req->negative_prompt;
  req->params.sampler = req->sampler;
  req->params.scheduler = req->scheduler;
  req->params.init_image = req->init_image;
  req->params.mask = req->mask;
}

void
easel_job_request_set_string (EaselJobRequest *req, char **field, const char *value)
{
  g_free (*field);
  *field = g_strdup (value ? value : "");
  relink (req);
}

EaselJobRequest *
easel_job_request_copy (const EaselJobRequest *req)
{
  EaselJobRequest *c = g_new0 (EaselJobRequest, 1);
  c->params = req->params;
  c->model_path = g_strdup (req->model_path);
  c->prompt = g_strdup (req->prompt);
  c->negative_prompt = g_strdup (req->negative_prompt);
  c->sampler = g_strdup (req->sampler);
  c->scheduler = g_strdup (req->scheduler);
  c->init_image = easel_job_image_copy (req->init_image);
  c->mask = easel_job_image_copy (req->mask);
  relink (c);
  return c;
}

EaselJobRequest *
easel_job_request_from_settings (GSettings *settings, guint64 seed, const EaselImage *init_image,
                                 const EaselImage *mask)
{
  EaselJobRequest *req = g_new0 (EaselJobRequest, 1);
  g_autofree char *model = g_settings_get_string (settings, "model");
  g_autofree char *rng = g_settings_get_string (settings, "rng");

  req->model_path = *model ? g_steal_pointer (&model) : NULL;
  req->prompt = g_settings_get_string (settings, "prompt");
  req->negative_prompt = g_settings_get_string (settings, "negative-prompt");
  req->sampler = g_settings_get_string (settings, "sampler");
  req->scheduler = g_settings_get_string (settings, "scheduler");
  req->init_image = easel_job_image_copy (init_image);
  req->mask = init_image ? easel_job_image_copy (mask) : NULL;

  EaselJobParams *p = &req->params;
  p->steps = g_settings_get_int (settings, "steps");
  p->cfg = g_settings_get_double (settings, "cfg");
  p->seed = seed;
  p->rng = g_strcmp0 (rng, "cpu") == 0 ? EASEL_RNG_CPU : EASEL_RNG_CUDA;
  p->width = g_settings_get_int (settings, "width");
  p->height = g_settings_get_int (settings, "height");
  p->batch_size = g_settings_get_int (settings, "batch-size");
  p->batch_count = g_settings_get_int (settings, "batch-count");
  p->clip_skip = g_settings_get_int (settings, "clip-skip");
  p->strength = g_settings_get_double (settings, "denoise");
  p->mask_blur = g_settings_get_int (settings, "mask-blur");
  relink (req);
  return req;
}

guint64
easel_job_next_seed (GSettings *settings)
{
  gint64 seed;
  if (g_settings_get_boolean (settings, "randomize-seed"))
    seed = (gint64) g_random_int ();   /* A1111: a random seed below 2^32 */
  else
    seed = g_settings_get_int64 (settings, "seed");
  g_settings_set_int64 (settings, "last-seed", seed);
  return (guint64) seed;
}

EaselParameters *
easel_job_request_to_parameters (const EaselJobRequest *req)
{
  EaselParameters *p = easel_parameters_new ();
  const EaselJobParams *jp = &req->params;

  easel_parameters_set_string (&p->prompt, req->prompt ? req->prompt : "");
  easel_parameters_set_string (&p->negative, req->negative_prompt ? req->negative_prompt : "");
  p->steps = jp->steps;
  gint si = easel_sampling_table_find_sampler (req->sampler, NULL);
  easel_parameters_set_string (&p->sampler, si >= 0 ? easel_sampling_table_sampler_label ((guint) si) : req->sampler);
  gint ki = easel_sampling_table_find_scheduler (req->scheduler);
  if (ki > 0)
    easel_parameters_set_string (&p->schedule_type, easel_sampling_table_scheduler_label ((guint) ki));
  p->cfg_scale = jp->cfg;
  p->has_seed = TRUE;
  p->seed = (gint64) jp->seed;
  p->width = jp->width;
  p->height = jp->height;
  if (req->model_path) {
    g_autofree char *base = g_path_get_basename (req->model_path);
    char *dot = strrchr (base, '.');
    if (dot && dot != base)
      *dot = '\0';   /* A1111 writes the checkpoint's name without its extension */
    easel_parameters_set_string (&p->model, base);
  }
  if (req->init_image)
    p->denoising_strength = jp->strength;
  p->clip_skip = jp->clip_skip > 1 ? jp->clip_skip : 0;
  if (jp->rng == EASEL_RNG_CPU)
    easel_parameters_set_extra (p, "RNG", "CPU");
  if (req->init_image && req->mask) {
    g_autofree char *blur = g_strdup_printf ("%d", jp->mask_blur);
    easel_parameters_set_extra (p, "Mask blur", blur);
  }
  easel_parameters_set_extra (p, "Version", "Easel " EASEL_VERSION);
  return p;
}

/* ---- parameters -> settings ----------------------------------------------------------------- */

static gboolean
in_range (GSettings *settings, const char *key, GVariant *value)
{
  g_autoptr(GSettingsSchema) schema = NULL;
  g_object_get (settings, "settings-schema", &schema, NULL);
  g_autoptr(GSettingsSchemaKey) k = g_settings_schema_get_key (schema, key);
  g_autoptr(GVariant) sunk = g_variant_ref_sink (value);
  return g_variant_is_of_type (sunk, g_settings_schema_key_get_value_type (k))
         && g_settings_schema_key_range_check (k, sunk);
}

/* Sets key to value when the schema allows it, else records the field's name as skipped. */
static void
set_checked (GSettings *settings, const char *key, GVariant *value, const char *field, GPtrArray *skipped)
{
  g_variant_ref_sink (value);
  if (in_range (settings, key, g_variant_ref (value)))
    g_settings_set_value (settings, key, value);
  else
    g_ptr_array_add (skipped, (gpointer) field);
  g_variant_unref (value);
}

/* A second GSettings on the same schema, backend and path, in delay-apply mode: one change
 * notification for a whole restore, without putting the caller's object in delay mode for good. */
static GSettings *
delayed_twin (GSettings *settings)
{
  g_autoptr(GSettingsSchema) schema = NULL;
  GSettingsBackend *backend = NULL;   /* no autoptr without gsettingsbackend.h */
  g_autofree char *path = NULL;
  g_object_get (settings, "settings-schema", &schema, "backend", &backend, "path", &path, NULL);
  GSettings *twin = g_settings_new_full (schema, backend, path);
  g_object_unref (backend);
  g_settings_delay (twin);
  return twin;
}

guint
easel_job_settings_apply_parameters (GSettings *caller_settings, const EaselParameters *p, char **skipped_out)
{
  g_autoptr(GPtrArray) skipped = g_ptr_array_new ();
  g_autoptr(GSettings) settings = delayed_twin (caller_settings);

  g_settings_set_string (settings, "prompt", p->prompt);
  g_settings_set_string (settings, "negative-prompt", p->negative);
  if (p->steps >= 0)
    set_checked (settings, "steps", g_variant_new_int32 (p->steps), "Steps", skipped);
  if (p->sampler) {
    const char *sched = EASEL_SCHEDULER_AUTOMATIC;
    gint si = easel_sampling_table_find_sampler (p->sampler, &sched);
    if (si >= 0) {
      g_settings_set_string (settings, "sampler", easel_sampling_table_sampler_id ((guint) si));
      g_settings_set_string (settings, "scheduler", sched);
    } else {
      g_ptr_array_add (skipped, "Sampler");
    }
  }
  if (p->schedule_type) {
    gint ki = easel_sampling_table_find_scheduler (p->schedule_type);
    if (ki >= 0)
      g_settings_set_string (settings, "scheduler", easel_sampling_table_scheduler_id ((guint) ki));
    else
      g_ptr_array_add (skipped, "Schedule type");
  }
  if (!isnan (p->cfg_scale))
    set_checked (settings, "cfg", g_variant_new_double (p->cfg_scale), "CFG scale", skipped);
  if (p->has_seed) {
    if (p->seed >= 0) {
      set_checked (settings, "seed", g_variant_new_int64 (p->seed), "Seed", skipped);
      g_settings_set_boolean (settings, "randomize-seed", FALSE);
    } else {
      g_settings_set_boolean (settings, "randomize-seed", TRUE);   /* A1111's -1 */
    }
  }
  if (p->width > 0 && p->height > 0) {
    set_checked (settings, "width", g_variant_new_int32 (p->width), "Size", skipped);
    set_checked (settings, "height", g_variant_new_int32 (p->height), "Size", skipped);
  }
  if (!isnan (p->denoising_strength))
    set_checked (settings, "denoise", g_variant_new_double (p->denoising_strength), "Denoising strength", skipped);
  set_checked (settings, "clip-skip", g_variant_new_int32 (MAX (p->clip_skip, 1)), "Clip skip", skipped);
  const char *rng = easel_parameters_get_extra (p, "RNG");
  g_settings_set_string (settings, "rng", rng && g_ascii_strcasecmp (rng, "CPU") == 0 ? "cpu" : "gpu");
  g_settings_apply (settings);

  /* "Size" may appear twice: name it once */
  g_autoptr(GString) names = g_string_new (NULL);
  guint n = 0;
  for (guint i = 0; i < skipped->len; i++) {
    if (i > 0 && g_strcmp0 (skipped->pdata[i], skipped->pdata[i - 1]) == 0)
      continue;
    n++;
    g_string_append_printf (names, "%s%s", names->len ? ", " : "", (const char *) skipped->pdata[i]);
  }
  if (skipped_out)
    *skipped_out = g_string_free (g_steal_pointer (&names), FALSE);
  return n;
}

char *
easel_job_default_output_folder (void)
{
  const char *pictures = g_get_user_special_dir (G_USER_DIRECTORY_PICTURES);
  if (pictures == NULL)
    return g_build_filename (g_get_home_dir (), "Pictures", "Easel", NULL);
  return g_build_filename (pictures, "Easel", NULL);
}

char *
easel_job_output_folder (GSettings *settings)
{
  g_autofree char *folder = g_settings_get_string (settings, "output-folder");
  if (*folder)
    return g_steal_pointer (&folder);
  return easel_job_default_output_folder ();
}
