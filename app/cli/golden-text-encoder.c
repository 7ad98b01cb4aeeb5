/* app/cli/golden-text-encoder.c: golden kind "text-encoder": refs/<model>/ cases named text_encoder*
 * and prompt_embeds. Not implemented yet: cases are counted and skipped. */
#include <string.h>

#include "golden.h"

static gboolean
accept (const char *name)
{
  return g_str_has_prefix (name, "text_encoder") || strcmp (name, "prompt_embeds") == 0;
}

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "sd1", accept);
  easel_golden_collect_refs (g, cases, "sdxl", accept);
}

const EaselGoldenKind easel_golden_kind_text_encoder = { "text-encoder", collect, NULL };
