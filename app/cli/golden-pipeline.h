/* app/cli/golden-pipeline.h: the diffusers-run check of golden-pipeline.c for other kinds
 * (adapter-pipeline): the case's recorded inputs and scheduler through easel_pipeline_run, its
 * latents_after_each_step and image compared at the manifest's tolerances. */
#pragma once

#include "engine/pipeline.h"
#include "golden.h"

G_BEGIN_DECLS

/* Called with the job and request built from the case, before the run: adds what the case needs
 * beyond a plain text-to-image run (adapters). */
typedef void (*EaselGoldenPipelineHook) (EaselJobParams *job, EaselPipelineRequest *req, gpointer user_data);

/* Runs case c (tensors "<case name>/..." in the file refs) with model; form labels the comparisons
 * ("diffusers", "single-file"). TRUE when every comparison passed. */
gboolean easel_golden_pipeline_check (EaselGolden *g, EaselGoldenCase *c, const char *refs, EaselEngine *e,
                                      EaselModel *model, const char *form, EaselGoldenPipelineHook hook,
                                      gpointer hook_data, GError **error);

G_END_DECLS
