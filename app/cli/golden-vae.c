/* app/cli/golden-vae.c: golden kind "vae": refs/<model>/ cases named vae/....
 * Not implemented yet: cases are counted and skipped. */
#include "golden.h"

static gboolean
accept (const char *name)
{
  return g_str_has_prefix (name, "vae/");
}

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "sd1", accept);
  easel_golden_collect_refs (g, cases, "sdxl", accept);
}

const EaselGoldenKind easel_golden_kind_vae = { "vae", collect, NULL };
