/* engine/sampling/request.c: A1111 legacy sampler names both ways, parsing of every spelling, and
 * the check of a sampling request. The combined names follow A1111's get_sampler_and_scheduler
 * (modules/sd_samplers.py: a schedule's label, name or alias as the last word(s) of the sampler
 * text, a bare label meaning "Automatic"); Easel compares case-insensitively throughout. */
#include "request.h"

#include <math.h>
#include <string.h>

#include "engine/error.h"

char *
easel_sampling_legacy_name (const EaselSamplerInfo *info, EaselScheduler scheduler)
{
  g_return_val_if_fail (info != NULL && (guint) scheduler < EASEL_SCHEDULER_COUNT, NULL);
  if (scheduler == EASEL_SCHEDULER_NORMAL && info->automatic == EASEL_SCHEDULER_NORMAL)
    return g_strdup (info->display_name);
  return g_strdup_printf ("%s %s", info->display_name, easel_scheduler_display_name (scheduler));
}

/* "euler (Euler), euler_cfg_pp (Euler CFG++), ..." */
static char *
sampler_choices (void)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < easel_sampler_count (); i++)
    g_string_append_printf (s, "%s%s (%s)", i ? ", " : "", easel_sampler_at (i)->name,
                            easel_sampler_at (i)->display_name);
  return g_string_free (s, FALSE);
}

/* "simple (Simple), sgm_uniform (SGM Uniform), ..." */
static char *
scheduler_choices (void)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < EASEL_SCHEDULER_COUNT; i++)
    g_string_append_printf (s, "%s%s (%s)", i ? ", " : "", easel_scheduler_name (i), easel_scheduler_display_name (i));
  return g_string_free (s, FALSE);
}

gboolean
easel_sampling_parse_name (const char *text, const EaselSamplerInfo **info, EaselScheduler *scheduler,
                           gboolean *named, GError **error)
{
  g_autofree char *t = g_strstrip (g_strdup (text ? text : ""));
  gsize len = strlen (t);
  const EaselSamplerInfo *found = easel_sampler_find (t);
  g_autofree char *choices = NULL;

  g_return_val_if_fail (info != NULL && scheduler != NULL, FALSE);
  if (named)
    *named = FALSE;
  if (found) {
    *info = found;
    *scheduler = found->automatic;
    return TRUE;
  }
  /* "<sampler> <schedule>": every split at a space, the schedule being the rest */
  for (gsize i = 1; i + 1 < len; i++) {
    EaselScheduler sch;
    if (t[i] != ' ' || (found = easel_sampler_find_len (t, i)) == NULL ||
        !easel_scheduler_from_name_len (t + i + 1, len - i - 1, &sch))
      continue;
    *info = found;
    *scheduler = sch;
    if (named)
      *named = TRUE;
    return TRUE;
  }
  choices = sampler_choices ();
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
               "unknown sampler '%s'; valid samplers (ComfyUI id or A1111 label, optionally followed by a schedule "
               "type as in 'DPM++ 2M Karras'): %s", text ? text : "", choices);
  return FALSE;
}

static gboolean
check_range (const char *what, double v, double lo, double hi, gboolean lo_open, GError **error)
{
  if (isfinite (v) && (lo_open ? v > lo : v >= lo) && v <= hi)
    return TRUE;
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s %g is out of range: it must be a number in %s%g, %g]",
               what, v, lo_open ? "(" : "[", lo, hi);
  return FALSE;
}

gboolean
easel_sampling_request_check (const EaselSamplingRequest *req, EaselSamplingChoice *out, GError **error)
{
  const EaselSamplerInfo *info;
  EaselScheduler from_name, sch;
  gboolean named;
  gint64 schedule_len;

  g_return_val_if_fail (req != NULL && out != NULL, FALSE);
  if (!easel_sampling_parse_name (req->sampler, &info, &from_name, &named, error))
    return FALSE;
  sch = from_name;
  if (req->scheduler && req->scheduler[0] && g_ascii_strcasecmp (req->scheduler, "automatic") != 0) {
    if (!easel_scheduler_from_name (req->scheduler, &sch)) {
      g_autofree char *choices = scheduler_choices ();
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                   "unknown scheduler '%s'; valid schedulers (ComfyUI id or A1111 label): %s, or Automatic",
                   req->scheduler, choices);
      return FALSE;
    }
    if (named && sch != from_name) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                   "sampler '%s' names the schedule %s, but the scheduler asked for is %s", req->sampler,
                   easel_scheduler_display_name (from_name), easel_scheduler_display_name (sch));
      return FALSE;
    }
  }
  if (req->steps < 1 || req->steps > EASEL_SAMPLING_MAX_STEPS) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "steps %" G_GINT64_FORMAT " is out of range: it "
                 "must be 1 to %d", req->steps, EASEL_SAMPLING_MAX_STEPS);
    return FALSE;
  }
  if (!check_range ("cfg", req->cfg, 0.0, EASEL_SAMPLING_MAX_CFG, FALSE, error) ||
      !check_range ("denoise", req->denoise, 0.0, 1.0, TRUE, error) ||
      (!isnan (req->eta) && !check_range ("eta", req->eta, 0.0, EASEL_SAMPLING_MAX_NOISE, FALSE, error)) ||
      (!isnan (req->s_noise) && !check_range ("s_noise", req->s_noise, 0.0, EASEL_SAMPLING_MAX_NOISE, FALSE, error)))
    return FALSE;
  /* what easel_ksampler_sigmas computes: int(steps / denoise) below 0.9999, one more to discard */
  schedule_len = req->denoise <= 0.9999 ? (gint64) (req->steps / req->denoise) : req->steps;
  schedule_len += (info->flags & EASEL_SAMPLER_DISCARD_PENULTIMATE) ? 1 : 0;
  if (schedule_len > EASEL_SAMPLING_MAX_SCHEDULE) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "denoise %g with %" G_GINT64_FORMAT " steps needs a schedule of %" G_GINT64_FORMAT
                 " steps; at most %d: raise denoise or lower steps", req->denoise, req->steps, schedule_len,
                 EASEL_SAMPLING_MAX_SCHEDULE);
    return FALSE;
  }
  out->sampler = info;
  out->scheduler = sch;
  out->steps = (guint) req->steps;
  out->cfg = req->cfg;
  out->denoise = req->denoise;
  easel_sampler_default_options (info, &out->options);
  if (!isnan (req->eta))
    out->options.eta = req->eta;
  if (!isnan (req->s_noise))
    out->options.s_noise = req->s_noise;
  return TRUE;
}
