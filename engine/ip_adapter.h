/* engine/ip_adapter.h: IP-Adapter (h94 single files: plain and Plus), the image prompt: an image
 * projection turns CLIP vision features into ip tokens, and every UNet cross-attention adds a
 * second attention over them (decoupled cross-attention):
 *   out = Attn (q, K_text, V_text) + scale · Attn (q, to_k_ip (ip), to_v_ip (ip))   (before to_out)
 * with the same query and heads. Self-attention is unchanged.
 *
 * Keys: image_proj.* and ip_adapter.N.to_{k,v}_ip.weight (no bias), where N numbers every
 * attention processor of the UNet in diffusers' attn_processors order (down blocks, up blocks,
 * then the middle block; attn1 even, attn2 = 2i + 1 for the i-th transformer block).
 * Projections:
 *   plain: image_embeds (B, E) -> proj Linear (T·D, E) -> (B, T, D) -> LayerNorm (norm)
 *   Plus (Resampler, image_proj.latents present): penultimate hidden state (B, L, C):
 *     x = proj_in (x); lat = latents (1, T, W) per batch row; per layer:
 *       lat = to_out (Attn (to_q (n2 (lat)), kv of concat (n1 (x), n2 (lat)))) + lat
 *       lat = fc2 (gelu (fc1 (ln (lat)))) + lat
 *     tokens = norm_out (proj_out (lat)); heads = inner width / 64 (hint may say).
 */
#pragma once

#include <glib.h>

#include "checkpoint.h"
#include "graph.h"
#include "unet.h"

G_BEGIN_DECLS

typedef struct _EaselIpAdapter EaselIpAdapter;

/* Reads an IP-Adapter file. heads: the Resampler's heads, 0 for the convention (inner / 64).
 * ck must outlive it. transfer full. */
EaselIpAdapter *easel_ip_adapter_new (const EaselCheckpoint *ck, int heads, GError **error);
void            easel_ip_adapter_free (EaselIpAdapter *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselIpAdapter, easel_ip_adapter_free)

gboolean easel_ip_adapter_is_plus (const EaselIpAdapter *a);   /* takes the penultimate hidden state */

/* The ip tokens (B, T, D): plain from image_embeds (B, E); Plus from hidden states (B, L, C). */
EaselTensor *easel_ip_adapter_project (EaselIpAdapter *a, EaselGraph *g, EaselTensor *embeds);

/* State of the UNet hook; lives while the graph is built. */
typedef struct {
  EaselIpAdapter *adapter;
  EaselTensor *tokens;
  float scale;
  int n_down, n_mid;                 /* transformer blocks of the UNet by part */
  int n_blocks;
} EaselIpAdapterHook;

/* Checks the adapter against the UNet (one ip_adapter.N pair per cross-attention, widths) and sets
 * extras' cross-attention hook to add the IP term with tokens (B, T, D) × scale. */
gboolean easel_ip_adapter_attach (EaselIpAdapter *a, const EaselUnet *unet, EaselTensor *tokens, float scale,
                                  EaselIpAdapterHook *hook, EaselUnetExtras *extras, GError **error);

G_END_DECLS
