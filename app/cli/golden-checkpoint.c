/* app/cli/golden-checkpoint.c: golden kind "checkpoint" (models/, fullsize_keys/). */
#include "golden.h"

static void
collect_checkpoint (EaselGolden *g, GPtrArray *cases)
{
}

const EaselGoldenKind easel_golden_kind_checkpoint = { "checkpoint", collect_checkpoint, NULL };
