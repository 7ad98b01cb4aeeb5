/* app/cli/golden-lora.c: golden kind "lora" (refs/lora). Not implemented yet: cases are counted and skipped. */
#include "golden.h"

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "lora", NULL);
}

const EaselGoldenKind easel_golden_kind_lora = { "lora", collect, NULL };
