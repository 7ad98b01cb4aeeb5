/* engine/canny.h: the Canny edge detector as OpenCV's cv2.Canny computes it (apertureSize 3), the
 * preprocessor of Canny ControlNets and T2I-Adapters, and cv2.cvtColor's RGB2GRAY for 8 bits.
 *
 * cv2.Canny does no blur: 3x3 Sobel derivatives with replicated borders, per pixel the channel of
 * largest gradient magnitude (the first on ties) when the image has several, magnitude L1
 * |dx| + |dy| (default) or L2 dx² + dy² against squared thresholds, non-maximum suppression in four
 * sectors with OpenCV's integer tangent tests and tie-breaking, then a double threshold (strictly
 * above low: candidate, strictly above high: edge) and 8-connected hysteresis from the edges.
 * Images are (height, width, channels) interleaved 8-bit, rows `stride` bytes apart. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* src (height, width, channels) u8 -> edges (height, width) u8, 0 or 255, rows width bytes apart.
 * low and high are swapped when low > high (as OpenCV does). Fails for a bad size or channel count
 * (1..4) or when memory runs out. */
gboolean easel_canny (const guint8 *src, gint width, gint height, gint channels, gsize stride, double low,
                      double high, gboolean l2_gradient, guint8 *edges, GError **error);

/* rgb (height, width, 3) -> gray (height, width): cv2's 8-bit fixed point (Q15 weights of
 * 0.299, 0.587, 0.114): (9798 R + 19235 G + 3735 B + 2^14) >> 15. */
void easel_rgb_to_gray_u8 (const guint8 *rgb, gint width, gint height, gsize stride, guint8 *gray);

G_END_DECLS
