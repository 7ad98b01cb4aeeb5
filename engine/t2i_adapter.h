/* engine/t2i_adapter.h: T2I-Adapter (diffusers T2IAdapter: full_adapter, full_adapter_xl,
 * light_adapter), a small convolutional network that turns a control image into one feature map
 * per UNet down level; the UNet adds feature k × scale inside down block k (EaselUnetExtras
 * down_block_additions).
 *
 * Weights: diffusers keys adapter.conv_in (full), adapter.body.L.{in_conv, resnets.R.block1,
 * resnets.R.block2, out_conv (light)}. The layout comes from the tensors (levels, widths, resnets,
 * the unshuffle factor: conv_in's input = 3 · f²) and the hint's adapter_type where given;
 * without a hint, a body with out_conv is a light adapter and f = 16 means full_adapter_xl.
 *
 * Forward: image (B, 3, H, W) in [0, 1], H and W multiples of the unshuffle factor f (8; XL 16) ->
 *   x = PixelUnshuffle (f) (image)            (B, 3·f², H/f, W/f), channel c·f² + i·f + j
 *   x = conv_in (x)                           3x3 (full adapters)
 *   per level L: [2x2 average pool, ceil mode: levels >= 1 (XL: level 2 only)], [in_conv 1x1],
 *     resnets x = x + block2 (relu (block1 (x))), [out_conv 1x1]  -> feature L = x · scale. */
#pragma once

#include <glib.h>

#include "checkpoint.h"
#include "graph.h"
#include "json.h"

G_BEGIN_DECLS

#define EASEL_T2I_MAX_LEVELS 8

typedef struct _EaselT2IAdapter EaselT2IAdapter;

/* Reads the adapter from an opened checkpoint (diffusers folder or a file of its keys, with or
 * without the adapter. prefix). hint: its config.json, or NULL (a folder reads its own). Weights
 * stay in ck's mappings: free the adapter first. transfer full. */
EaselT2IAdapter *easel_t2i_adapter_new (const EaselCheckpoint *ck, const EaselJson *hint, GError **error);
void             easel_t2i_adapter_free (EaselT2IAdapter *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselT2IAdapter, easel_t2i_adapter_free)

int easel_t2i_adapter_n_levels (const EaselT2IAdapter *a);
int easel_t2i_adapter_factor (const EaselT2IAdapter *a);    /* PixelUnshuffle factor f */

/* Adds the adapter to g: image (B, 3, H, W) -> features[0 .. n_levels - 1] (each × scale).
 * Returns the number of features; shape problems are graph errors. */
int easel_t2i_adapter_build (EaselT2IAdapter *a, EaselGraph *g, EaselTensor *image, float scale,
                             EaselTensor **features);

G_END_DECLS
