/* app/easel-sampling-table.c: the sampler and scheduler tables for the app (easel-sampling-table.h). */
#include "easel-sampling-table.h"

#include "sampling/request.h"
#include "sampling/samplers.h"
#include "sampling/schedules.h"

guint
easel_sampling_table_n_samplers (void)
{
  return easel_sampler_count ();
}

const char *
easel_sampling_table_sampler_id (guint i)
{
  return i < easel_sampler_count () ? easel_sampler_at (i)->name : NULL;
}

const char *
easel_sampling_table_sampler_label (guint i)
{
  return i < easel_sampler_count () ? easel_sampler_at (i)->display_name : NULL;
}

gint
easel_sampling_table_find_sampler (const char *name, const char **scheduler_out)
{
  const EaselSamplerInfo *info = NULL;
  EaselScheduler sched = EASEL_SCHEDULER_SIMPLE;
  gboolean named = FALSE;

  if (scheduler_out)
    *scheduler_out = EASEL_SCHEDULER_AUTOMATIC;
  if (name == NULL || !easel_sampling_parse_name (name, &info, &sched, &named, NULL))
    return -1;
  if (named && scheduler_out)
    *scheduler_out = easel_scheduler_name (sched);
  for (guint i = 0; i < easel_sampler_count (); i++)
    if (easel_sampler_at (i) == info)
      return (gint) i;
  return -1;
}

guint
easel_sampling_table_n_schedulers (void)
{
  return 1 + EASEL_SCHEDULER_COUNT;
}

const char *
easel_sampling_table_scheduler_id (guint i)
{
  if (i == 0)
    return EASEL_SCHEDULER_AUTOMATIC;
  return i <= EASEL_SCHEDULER_COUNT ? easel_scheduler_name ((EaselScheduler) (i - 1)) : NULL;
}

const char *
easel_sampling_table_scheduler_label (guint i)
{
  if (i == 0)
    return "Automatic";
  return i <= EASEL_SCHEDULER_COUNT ? easel_scheduler_display_name ((EaselScheduler) (i - 1)) : NULL;
}

gint
easel_sampling_table_find_scheduler (const char *name)
{
  EaselScheduler s;
  if (name == NULL || *name == '\0' || g_ascii_strcasecmp (name, "Automatic") == 0)
    return 0;
  if (!easel_scheduler_from_name (name, &s))
    return -1;
  return 1 + (gint) s;
}
