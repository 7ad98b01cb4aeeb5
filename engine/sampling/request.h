/* engine/sampling/request.h: the names and limits of a sampling request, shared by the CLI, the PNG
 * parameters and the app: A1111's combined legacy sampler names ("DPM++ 2M Karras") both ways,
 * parsing of every spelling, and one check of a whole request with errors that list the choices.
 *
 * Limits (docs/samplers.md says why): steps 1 to 1000; cfg finite in [0, 100]; denoise in (0, 1]
 * with at most 10000 schedule steps (steps / denoise); eta and s_noise finite in [0, 100]. */
#pragma once

#include <glib.h>

#include "samplers.h"
#include "schedules.h"

G_BEGIN_DECLS

#define EASEL_SAMPLING_MAX_STEPS 1000
#define EASEL_SAMPLING_MAX_SCHEDULE 10000   /* steps / denoise: the sigmas computed for a partial denoise */
#define EASEL_SAMPLING_MAX_CFG 100.0
#define EASEL_SAMPLING_MAX_NOISE 100.0      /* eta and s_noise */
/* eta / s_noise of a request: the sampler's own default */
#define EASEL_SAMPLING_DEFAULT NAN

/* A1111's pre-1.9 "Sampler" text for a sampler and schedule: the sampler's label, then a space and
 * the schedule's label ("DPM++ 2M Karras", "Euler a Exponential"); the label alone ("Euler") for
 * A1111's Uniform (ComfyUI's normal) where that is the sampler's automatic schedule, as old A1111
 * wrote it. easel_sampling_parse_name reads every result back to the same pair. transfer full. */
char *easel_sampling_legacy_name (const EaselSamplerInfo *info, EaselScheduler scheduler);

/* A sampler in any spelling, case-insensitively: ComfyUI's id ("dpmpp_2m"), A1111's label
 * ("DPM++ 2M") or A1111's combined name ("DPM++ 2M Karras", "dpm++ 2m sgm uniform"). *scheduler:
 * the schedule the name carries, else the sampler's A1111 automatic one (as A1111 1.9+ reads a
 * bare label); *named (may be NULL): whether the name carried one. FALSE with an error that lists
 * the valid names for anything else. */
gboolean easel_sampling_parse_name (const char *text, const EaselSamplerInfo **info, EaselScheduler *scheduler,
                                    gboolean *named, GError **error);

typedef struct {
  const char *sampler;     /* any spelling easel_sampling_parse_name reads */
  const char *scheduler;   /* ComfyUI id or A1111 label, any case; NULL, "" or "Automatic" = the one in the
                            * sampler's name, else the sampler's A1111 automatic one */
  gint64 steps;
  double cfg, denoise;
  double eta, s_noise;     /* EASEL_SAMPLING_DEFAULT = the sampler's default */
} EaselSamplingRequest;

typedef struct {
  const EaselSamplerInfo *sampler;
  EaselScheduler scheduler;
  guint steps;
  double cfg, denoise;
  EaselSamplerOptions options;   /* the sampler's defaults with the request's eta and s_noise */
} EaselSamplingChoice;

/* Checks every field of req (the limits above; unknown names get an error listing the valid
 * ones; a sampler name carrying a schedule that contradicts req->scheduler is an error) and fills
 * out. FALSE with an EASEL_ERROR_INVALID_INPUT error naming the field and the value. */
gboolean easel_sampling_request_check (const EaselSamplingRequest *req, EaselSamplingChoice *out, GError **error);

G_END_DECLS
