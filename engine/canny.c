/* engine/canny.c: cv2.Canny (apertureSize 3) and cv2's 8-bit RGB2GRAY, bit-exact: the integer
 * arithmetic and comparisons of OpenCV's imgproc/src/canny.cpp and color conversion, written anew
 * (canny.h says what it computes).
 *
 * Layout: the magnitude and the chosen channel's dx, dy are (H + 2, W + 2) planes whose one-pixel
 * frame is 0, so that suppression at the image edge compares with 0 as OpenCV's ring buffer does;
 * the state map has the same frame, marked "no edge", which stops the hysteresis walk. */
#include "canny.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define CANNY_MAX_SIDE (1 << 15)

enum { MAYBE = 0, NONE = 1, EDGE = 2 };

/* tan(22.5°) in Q15, rounded as OpenCV rounds it */
#define CANNY_SHIFT 15
#define TG22 ((gint64) (0.4142135623730950488016887242097 * (1 << CANNY_SHIFT) + 0.5))

static inline gint
clampi (gint v, gint lo, gint hi)
{
  return v < lo ? lo : v > hi ? hi : v;
}

/* 3x3 Sobel of channel c at (y, x) with replicated borders: dx = [1 2 1]ᵀ ⊗ [-1 0 1], dy its transpose. */
static void
sobel (const guint8 *src, gint W, gint H, gint C, gsize stride, gint y, gint x, gint c, gint *dx, gint *dy)
{
  gint ys[3] = { clampi (y - 1, 0, H - 1), y, clampi (y + 1, 0, H - 1) };
  gint xs[3] = { clampi (x - 1, 0, W - 1), x, clampi (x + 1, 0, W - 1) };
  gint p[3][3];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      p[i][j] = src[(gsize) ys[i] * stride + (gsize) xs[j] * C + c];
  *dx = (p[0][2] - p[0][0]) + 2 * (p[1][2] - p[1][0]) + (p[2][2] - p[2][0]);
  *dy = (p[2][0] - p[0][0]) + 2 * (p[2][1] - p[0][1]) + (p[2][2] - p[0][2]);
}

gboolean
easel_canny (const guint8 *src, gint width, gint height, gint channels, gsize stride, double low, double high,
             gboolean l2_gradient, guint8 *edges, GError **error)
{
  if (width < 1 || height < 1 || width > CANNY_MAX_SIDE || height > CANNY_MAX_SIDE || channels < 1 || channels > 4
      || stride < (gsize) width * channels || src == NULL || edges == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "Canny: image of %d x %d pixels, %d channels, stride %" G_GSIZE_FORMAT " is not usable (sides 1..%d, "
                 "1..4 channels)", width, height, channels, stride, CANNY_MAX_SIDE);
    return FALSE;
  }
  if (!(low == low) || !(high == high)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "Canny: thresholds must be numbers");
    return FALSE;
  }
  if (low > high) {
    double t = low;
    low = high;
    high = t;
  }
  if (l2_gradient) {
    low = MIN (32767.0, low);
    high = MIN (32767.0, high);
    if (low > 0)
      low *= low;
    if (high > 0)
      high *= high;
  }
  /* cvFloor, kept in 64 bits so that huge thresholds stay huge */
  gint64 lo = (gint64) floor (MAX (low, -1e18)), hi = (gint64) floor (MAX (high, -1e18));

  gint W = width, H = height, P = W + 2;
  gsize n = (gsize) (H + 2) * P;
  g_autofree gint *mag = g_try_new0 (gint, n);
  g_autofree gint *gx = g_try_new0 (gint, n);
  g_autofree gint *gy = g_try_new0 (gint, n);
  g_autofree guint8 *map = g_try_malloc (n);
  g_autofree gsize *stack = g_try_new (gsize, (gsize) W * H);
  if (!mag || !gx || !gy || !map || !stack) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY, "Canny: no memory for a %d x %d image", W, H);
    return FALSE;
  }

  /* gradient of the channel with the largest magnitude (the first of equals) */
  for (gint y = 0; y < H; y++)
    for (gint x = 0; x < W; x++) {
      gsize at = (gsize) (y + 1) * P + x + 1;
      gint best = -1;
      for (gint c = 0; c < channels; c++) {
        gint dx, dy;
        sobel (src, W, H, channels, stride, y, x, c, &dx, &dy);
        gint m = l2_gradient ? dx * dx + dy * dy : abs (dx) + abs (dy);
        if (m > best) {
          best = m;
          gx[at] = dx;
          gy[at] = dy;
        }
      }
      mag[at] = best;
    }

  /* non-maximum suppression and the double threshold */
  gsize top = 0;
  memset (map, NONE, n);
  for (gint y = 1; y <= H; y++)
    for (gint x = 1; x <= W; x++) {
      gsize at = (gsize) y * P + x;
      gint64 m = mag[at];
      gboolean peak = FALSE;
      if (m > lo) {
        gint64 xs = gx[at], ys = gy[at];
        gint64 ax = llabs (xs), ay = llabs (ys) << CANNY_SHIFT;
        gint64 tg22x = ax * TG22;
        if (ay < tg22x) {                                   /* gradient near horizontal: compare left, right */
          peak = m > mag[at - 1] && m >= mag[at + 1];
        } else {
          gint64 tg67x = tg22x + (ax << (CANNY_SHIFT + 1));
          if (ay > tg67x) {                                 /* near vertical: above, below */
            peak = m > mag[at - P] && m >= mag[at + P];
          } else {                                          /* diagonal: along the gradient's sign */
            gint s = (xs < 0) != (ys < 0) ? -1 : 1;
            peak = m > mag[at - P - s] && m > mag[at + P + s];
          }
        }
      }
      if (!peak)
        continue;
      if (m > hi) {
        map[at] = EDGE;
        stack[top++] = at;
      } else {
        map[at] = MAYBE;
      }
    }

  /* hysteresis: every candidate 8-connected to an edge becomes one; each pixel is pushed once */
  const gssize nb[8] = { -1, 1, -P - 1, -P, -P + 1, P - 1, P, P + 1 };
  while (top > 0) {
    gsize at = stack[--top];
    for (int k = 0; k < 8; k++) {
      gsize q = (gsize) ((gssize) at + nb[k]);
      if (map[q] == MAYBE) {
        map[q] = EDGE;
        stack[top++] = q;
      }
    }
  }

  for (gint y = 0; y < H; y++)
    for (gint x = 0; x < W; x++)
      edges[(gsize) y * W + x] = map[(gsize) (y + 1) * P + x + 1] == EDGE ? 255 : 0;
  return TRUE;
}

void
easel_rgb_to_gray_u8 (const guint8 *rgb, gint width, gint height, gsize stride, guint8 *gray)
{
  for (gint y = 0; y < height; y++)
    for (gint x = 0; x < width; x++) {
      const guint8 *p = rgb + (gsize) y * stride + (gsize) x * 3;
      gray[(gsize) y * width + x] = (guint8) ((p[0] * 9798 + p[1] * 19235 + p[2] * 3735 + (1 << 14)) >> 15);
    }
}
