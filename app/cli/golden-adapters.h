/* app/cli/golden-adapters.h: helpers shared by the adapter kinds (controlnet, t2i-adapter,
 * ip-adapter; README-r2): case tensors by full name with the manifest's shape, graph inputs made
 * from them, comparison of a computed tensor with its reference, and the base UNet (models/sd1_tiny,
 * the round-2 base model). */
#pragma once

#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/unet.h"
#include "golden.h"

G_BEGIN_DECLS

/* Whether the case's manifest entry lists name (full tensor name) in inputs, outputs or intermediates. */
gboolean easel_golden_adapter_has (const EaselGoldenCase *c, const char *name);
/* The tensor name of the case file as fp32 with its manifest shape (1..4 dims). transfer full. */
float   *easel_golden_adapter_tensor (EaselGolden *g, const EaselGoldenCase *c, const char *name, gint64 *shape,
                                      int *n_dims, GError **error);
/* A graph input holding that tensor; the data is kept in keep (free it after compute). */
EaselTensor *easel_golden_adapter_input (EaselGolden *g, EaselGraph *gr, const EaselGoldenCase *c, const char *name,
                                         GPtrArray *keep, GError **error);
/* Reads t back and compares it with reference name (same element count required) as label. */
gboolean easel_golden_adapter_check (EaselGolden *g, EaselBackend *backend, const EaselGoldenCase *c, EaselTensor *t,
                                     const char *name, const char *label, double atol, double rtol, GError **error);
/* Host data compared with reference name. */
gboolean easel_golden_adapter_check_data (EaselGolden *g, const EaselGoldenCase *c, const float *got, gsize n,
                                          const char *name, const char *label, double atol, double rtol,
                                          GError **error);
/* The base model's UNet: models/sd1_tiny/ (diffusers, when its unet/ has weights) else
 * models/sd1_tiny.safetensors with the folder's unet/config.json as hint. *ck: keep it open
 * while the UNet lives (free the UNet first). */
EaselUnet *easel_golden_adapter_base_unet (EaselGolden *g, EaselCheckpoint **ck, GError **error);

G_END_DECLS
