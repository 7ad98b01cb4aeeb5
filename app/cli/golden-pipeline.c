/* app/cli/golden-pipeline.c: golden kind "pipeline": whole runs in refs/sd1, refs/sdxl, refs/inpaint
 * (every case that is not a single network's). Not implemented yet: cases are counted and skipped. */
#include <string.h>

#include "golden.h"

static gboolean
is_pipeline (const char *name)
{
  return !g_str_has_prefix (name, "text_encoder") && strcmp (name, "prompt_embeds") != 0
         && !g_str_has_prefix (name, "unet/") && strstr (name, "_unet/") == NULL && !g_str_has_prefix (name, "vae/");
}

static void
collect_pipeline (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "sd1", is_pipeline);
  easel_golden_collect_refs (g, cases, "sdxl", is_pipeline);
  easel_golden_collect_refs (g, cases, "inpaint", is_pipeline);
}

const EaselGoldenKind easel_golden_kind_pipeline = { "pipeline", collect_pipeline, NULL };
