/* app/cli/cli-samplers.c: `easel-cli samplers`: the sampler and scheduler tables, with the names
 * ComfyUI and A1111 use for each (what --sampler / --scheduler and the PNG parameters accept). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine/sampling/samplers.h"
#include "engine/sampling/schedules.h"

static const char *
kind_of (guint flags)
{
  if (flags & EASEL_SAMPLER_SDE)
    return "SDE";
  if (flags & EASEL_SAMPLER_ANCESTRAL)
    return "ancestral";
  return "deterministic";
}

int
easel_cli_samplers (int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--help") == 0) {
      printf ("Usage: easel-cli samplers\n\nLists every sampler (ComfyUI id, A1111 name, kind, A1111's \"Automatic\"\n"
              "schedule) and every scheduler (ComfyUI id, A1111 \"Schedule type\"). Either spelling is\n"
              "accepted wherever a sampler or scheduler is named; see docs/samplers.md.\n");
      return 0;
    }
    easel_cli_error ("samplers: unknown argument '%s'", argv[i]);
    return 2;
  }
  printf ("%-28s %-28s %-14s %s\n", "sampler", "A1111 name", "kind", "automatic schedule");
  for (guint i = 0; i < easel_sampler_count (); i++) {
    const EaselSamplerInfo *s = easel_sampler_at (i);
    printf ("%-28s %-28s %-14s %s%s\n", s->name, s->display_name, kind_of (s->flags),
            easel_scheduler_display_name (s->automatic), (s->flags & EASEL_SAMPLER_CFG_PP) ? "  (CFG++)" : "");
  }
  printf ("\n%-28s %s\n", "scheduler", "A1111 schedule type");
  for (guint i = 0; i < EASEL_SCHEDULER_COUNT; i++)
    printf ("%-28s %s\n", easel_scheduler_name (i), easel_scheduler_display_name (i));
  return 0;
}
