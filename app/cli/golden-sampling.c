/* app/cli/golden-sampling.c: golden kinds "schedule" and "sampler" (samplers/manifest.json). */
#include "golden.h"

static void
collect_schedule (EaselGolden *g, GPtrArray *cases)
{
}

const EaselGoldenKind easel_golden_kind_schedule = { "schedule", collect_schedule, NULL };

static void
collect_sampler (EaselGolden *g, GPtrArray *cases)
{
}

const EaselGoldenKind easel_golden_kind_sampler = { "sampler", collect_sampler, NULL };
