/* app/cli/golden-unet.c: golden kind "unet": refs/<model>/ cases named unet/... and refiner_unet/....
 * Not implemented yet: cases are counted and skipped. */
#include <string.h>

#include "golden.h"

static gboolean
accept (const char *name)
{
  return g_str_has_prefix (name, "unet/") || strstr (name, "_unet/") != NULL;
}

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "sd1", accept);
  easel_golden_collect_refs (g, cases, "sdxl", accept);
}

const EaselGoldenKind easel_golden_kind_unet = { "unet", collect, NULL };
