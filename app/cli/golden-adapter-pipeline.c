/* app/cli/golden-adapter-pipeline.c: golden kind "adapter-pipeline": the pipe/ cases of
 * refs/controlnet, refs/t2iadapter and refs/ipadapter (README-r2 sections 1-3: DDIM runs of the
 * ControlNet, T2I-Adapter and IP-Adapter pipelines). Counted and skipped until the pipeline
 * (engine/pipeline.c) runs them. */
#include "golden.h"

static gboolean
accept (const char *name)
{
  return g_str_has_prefix (name, "pipe/");
}

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "controlnet", accept);
  easel_golden_collect_refs (g, cases, "t2iadapter", accept);
  easel_golden_collect_refs (g, cases, "ipadapter", accept);
}

const EaselGoldenKind easel_golden_kind_adapter_pipeline = { "adapter-pipeline", collect, NULL };
