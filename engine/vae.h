/* engine/vae.h: the Stable Diffusion VAE (AutoencoderKL: ldm's Encoder/Decoder, diffusers'
 * AutoencoderKL), encoder and decoder, built as graphs for any backend; tiled encoding/decoding for
 * large images; the cheap latent -> RGB preview.
 *
 * The configuration (levels, channels per level, res blocks per level, latent channels, quant_conv /
 * post_quant_conv, mid-block attention) is read off the tensors. Both namings bind to one internal
 * naming, ldm's: "encoder.down.L.block.J.*", "encoder.mid.block_1", "encoder.mid.attn_1.{q,k,v,
 * proj_out,norm}", "decoder.up.L.*" (L = resolution level, 0 = full resolution, in both coders),
 * "quant_conv", "post_quant_conv"; diffusers names ("vae/encoder.down_blocks.N.resnets.M...",
 * "decoder.up_blocks.N" = level n_levels-1-N, "mid_block.attentions.0.to_q" ...) are renamed. The
 * mid-block attention weights are 1x1 convs [C, C, 1, 1] in single files and Linear [C, C] in diffusers
 * folders: both are read as [C, C] matrices.
 *
 * Shapes (PyTorch order, NCHW): image (B, 3, H, W) in about [-1, 1]; latent (B, 4, H/f, W/f) with
 * f = 2^(n_levels - 1) = 8. "z" is the decoder's input: the sampler's latent divided by the scaling
 * factor (plus the shift factor where a VAE has one). */
#pragma once

#include <glib.h>

#include "backend.h"
#include "checkpoint.h"
#include "json.h"

G_BEGIN_DECLS

#define EASEL_VAE_MAX_LEVELS 8
#define EASEL_VAE_MAX_BLOCKS 8

typedef struct {
  int n_levels;                            /* resolution levels; the latent is 2^(n_levels-1) smaller */
  gint64 channels[EASEL_VAE_MAX_LEVELS];   /* per level, 0 = full resolution (diffusers block_out_channels) */
  int encoder_blocks;                      /* res blocks per encoder level (layers_per_block); 0: no encoder */
  int decoder_blocks;                      /* res blocks per decoder level (layers_per_block + 1); 0: no decoder */
  gint64 in_channels;                      /* image channels the encoder takes (3) */
  gint64 out_channels;                     /* image channels the decoder gives (3) */
  gint64 latent_channels;                  /* 4 */
  gboolean has_quant_conv;                 /* 1x1 conv after the encoder (2 Cl -> 2 Cl) */
  gboolean has_post_quant_conv;            /* 1x1 conv before the decoder (Cl -> Cl) */
  gboolean encoder_attention;              /* mid-block attention (mid_block_add_attention) */
  gboolean decoder_attention;
  int groups;                              /* GroupNorm groups: 32, or the hint's norm_num_groups */
  float eps;                               /* GroupNorm eps: 1e-6 */
  double scaling_factor;                   /* 0.18215 SD 1.x/2.x, 0.13025 SDXL, or the hint's */
  double shift_factor;                     /* 0 unless the hint gives one */
  EaselFamily family;                      /* of the checkpoint (UNKNOWN for a bare VAE file) */
} EaselVaeConfig;

typedef struct _EaselVae EaselVae;

/* The VAE of a checkpoint: "vae/" in a diffusers folder, "first_stage_model." in a single file, or a
 * bare VAE file (keys "encoder.*" / "decoder.*"). config_hint (may be NULL): the diffusers
 * vae/config.json; its scaling_factor / shift_factor / norm_num_groups win over the family's
 * conventions, and its block_out_channels must agree with the tensors. The checkpoint must outlive
 * the VAE. Errors: EASEL_ERROR_NOT_FOUND when the checkpoint has no VAE weights; INVALID_FILE naming
 * the tensor when a shape is wrong. transfer full. */
EaselVae *easel_vae_new (const EaselCheckpoint *ck, const EaselJson *config_hint, GError **error);
void      easel_vae_free (EaselVae *vae);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselVae, easel_vae_free)

const EaselVaeConfig *easel_vae_get_config (const EaselVae *vae);
/* 2^(n_levels - 1): pixels per latent pixel (8). */
gint64 easel_vae_factor (const EaselVae *vae);
/* Latent size the encoder gives for an image side: each downsampler maps n -> floor (n / 2). */
gint64 easel_vae_latent_side (const EaselVae *vae, gint64 image_side);

/* z (batch, Cl, h, w) -> image (batch, out_channels, h f, w f), about [-1, 1]. */
gboolean easel_vae_decode (EaselVae *vae, EaselBackend *backend, const float *z, gint64 batch, gint64 h, gint64 w,
                           float *image, GError **error);
/* image (batch, in_channels, H, W) -> mean, logvar (batch, Cl, h, w), h = easel_vae_latent_side (H);
 * logvar clamped to [-30, 20] as diffusers' DiagonalGaussianDistribution does. */
gboolean easel_vae_encode (EaselVae *vae, EaselBackend *backend, const float *image, gint64 batch, gint64 height,
                           gint64 width, float *mean, float *logvar, GError **error);

/* Tiled forms for large images, in two modes.
 *
 * EASEL_VAE_TILES_EXACT: the untiled result up to float rounding (tests/test-vae.c states the
 * tolerance). The mid block (res blocks and the single-head attention over every latent pixel) and
 * what touches it at latent resolution (decoder: post_quant_conv, conv_in; encoder: norm_out,
 * conv_out, quant_conv) run untiled; the up (down) path runs tile by tile, one GroupNorm-to-GroupNorm
 * segment at a time in lockstep across tiles: each tile computes its core region plus a margin taken
 * from the architecture (1 or 2 input pixels: the segment's 3x3 convs), keeps only the exact core,
 * and adds its core's per-group mean and M2 to the whole image's (Chan's parallel variance in double);
 * the next segment normalizes with those whole-image statistics. The cores partition the image: no
 * blending. `tile` is the core side in latent pixels (decode) or image pixels (encode; a multiple of
 * the factor); `overlap` is not used. Activations between GroupNorms are kept on the host (not
 * recomputed). Memory, decoding a latent h x w to H x W = f h x f w, batch B, with Ck the channels of
 * level k (SD/SDXL: C0 128, C1 256, top 512), 4-byte floats:
 *   untiled, device: about 2.75 · 4 B C1 H W (level 1's output upsampled to full resolution, its conv
 *     and the first level-0 block; SDXL 1024²: 2.75 GiB);
 *   exact tiles of core T, device: the same with H W -> (f T + 8)² (one tile's window at the upsampler
 *     into level 0, margins included; SDXL T = 32: 190 MiB), or the untiled mid block at latent
 *     resolution if larger (a few 4 B Ctop h w, and its attention's blockwise scratch);
 *   host: 4 B (C1 + 2 C0) H W at the first level-0 block (its input, its half-way activation and its
 *     output; SDXL 1024²: 2 GiB), plus one window.
 * Measured on the tiny test models (C0 32, C1 64) for a 64 x 96 latent: untiled 264 MiB of arena;
 * exact tiles of 32: 46 MiB device, 192 MiB host; of 16: 12.4 MiB device; CPU time within 20% of
 * the untiled decode (the margins are 1 or 2 pixels per segment).
 *
 * EASEL_VAE_TILES_INDEPENDENT: each tile runs the whole network on its own (GroupNorm statistics and
 * attention per tile, as diffusers' tiled_decode and A1111's / ComfyUI's tiled VAE do), and the
 * tiles are cross-faded: one graph per tile instead of one per GroupNorm segment, and host memory of
 * one tile plus the output, but more computation (the overlaps) and a result that differs from the
 * untiled one (on real VAEs slightly; by the order of the image on tiny random-weight ones; on the
 * tiny models it is also not cheaper on the CPU: 1.4-2x the exact mode's time). tile and overlap are in latent pixels (decode) or image pixels (encode:
 * then tile, overlap, height and width must be multiples of the factor, and tile starts are too);
 * overlap <= tile / 2. Along an axis of n (in those units), k = 1 tile if n <= tile, else
 * k = max (2, ceil ((n - overlap) / (tile - overlap))) tiles of `tile` starting at
 * round (i (n - tile) / (k - 1)): spread evenly, neighbours overlap by at least `overlap`. Each tile's
 * output is weighted by wy·wx, w(p) = (p + 0.5) / r over the first r outputs after an inner edge and
 * (len - p - 0.5) / r before one (r = overlap in output pixels; 1 elsewhere), and the sum is divided
 * by the sum of the weights: linear cross-fades, no seam. A tile covering the whole image gives the
 * untiled result exactly. */
typedef enum {
  EASEL_VAE_TILES_EXACT,
  EASEL_VAE_TILES_INDEPENDENT,
} EaselVaeTileMode;

gboolean easel_vae_decode_tiled (EaselVae *vae, EaselBackend *backend, const float *z, gint64 batch, gint64 h,
                                 gint64 w, EaselVaeTileMode mode, gint64 tile, gint64 overlap, float *image,
                                 GError **error);
/* The device memory (easel_backend_graph_memory) that decoding a latent (batch, Cl, h, w) needs on
 * backend: untiled (tile <= 0), or EASEL_VAE_TILES_EXACT with cores of `tile` (the most of its graphs,
 * each run alone). Builds and plans the graphs without running them; 0 on a backend without device
 * memory. */
gboolean easel_vae_decode_memory (EaselVae *vae, EaselBackend *backend, gint64 batch, gint64 h, gint64 w, gint64 tile,
                                  guint64 *bytes, GError **error);
gboolean easel_vae_encode_tiled (EaselVae *vae, EaselBackend *backend, const float *image, gint64 batch,
                                 gint64 height, gint64 width, EaselVaeTileMode mode, gint64 tile, gint64 overlap,
                                 float *mean, float *logvar, GError **error);

/* Posterior of n values: std = exp (logvar / 2); sample = mean + std · noise (noise NULL: the mean,
 * as ComfyUI encodes). std or sample may be NULL. In place is fine (sample == mean). */
void easel_vae_posterior (const float *mean, const float *logvar, const float *noise, gsize n, float *std,
                          float *sample);
/* Sampler latent -> decoder input: z = latent / scaling + shift (n values; in place is fine). */
void easel_vae_latent_to_z (const EaselVae *vae, const float *latent, float *z, gsize n);
/* Encoder sample -> sampler latent: (sample - shift) · scaling. */
void easel_vae_z_to_latent (const EaselVae *vae, const float *z, float *latent, gsize n);
/* Decoder image [-1, 1] -> [0, 1]: clamp (x / 2 + 0.5, 0, 1). */
void easel_vae_image_to_unit (const float *x, float *y, gsize n);

/* Cheap preview: a sampler latent (4, h, w) (the scaled latent the sampler holds) -> RGB8 (h, w, 3)
 * at latent resolution, through the per-family linear projection of the 4 channels that ComfyUI's
 * "latent2rgb" previews use (comfy/latent_formats.py: SD15 for SD 1.x/2.x, SDXL with its bias for
 * the SDXL family), mapped as clamp ((x + 1) / 2) · 255. */
void easel_vae_preview_rgb8 (EaselFamily family, const float *latent, gint64 h, gint64 w, guint8 *rgb);

/* Checkpoint keys under the VAE's prefix that it does not use (for --verbose). transfer full. */
GPtrArray *easel_vae_unused (const EaselVae *vae);

G_END_DECLS
