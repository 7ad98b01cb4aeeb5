/* app/cli/golden-rng.c: golden kind "rng" (rng/manifest.json). */
#include "golden.h"

static void
collect_rng (EaselGolden *g, GPtrArray *cases)
{
}

const EaselGoldenKind easel_golden_kind_rng = { "rng", collect_rng, NULL };
