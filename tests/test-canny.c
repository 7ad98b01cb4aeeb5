/* tests/test-canny.c: engine/canny.[ch] on images small enough to work out by hand: a vertical step
 * (Sobel dx = 4 · step on both sides of it; OpenCV's ">" left, ">=" right keeps the left column),
 * hysteresis joining weak edges to strong ones only when connected, L2 against squared thresholds,
 * the channel choice of colour images, cv2's gray weights, and bad input. The bit-exact comparison
 * with cv2 itself is the golden kind "canny". */
#include <string.h>

#include "testutil.h"
#include "engine/canny.h"
#include "engine/error.h"

#define SW 8
#define SH 8

/* Gray SW x SH: columns < 4 are 0; columns >= 4 are top (rows < 4) or bottom (rows >= 4). */
static void
step_image (guint8 *img, guint8 top, guint8 bottom)
{
  for (int y = 0; y < SH; y++)
    for (int x = 0; x < SW; x++)
      img[y * SW + x] = x < 4 ? 0 : (y < 4 ? top : bottom);
}

static void
test_step_edge (void)
{
  guint8 img[SW * SH], out[SW * SH];
  step_image (img, 200, 200);
  g_assert_true (easel_canny (img, SW, SH, 1, SW, 100, 200, FALSE, out, NULL));
  for (int y = 0; y < SH; y++)
    for (int x = 0; x < SW; x++)
      g_assert_cmpuint (out[y * SW + x], ==, x == 3 ? 255 : 0);
  /* magnitude 800 is not above 800 */
  g_assert_true (easel_canny (img, SW, SH, 1, SW, 100, 800, FALSE, out, NULL));
  for (int i = 0; i < SW * SH; i++)
    g_assert_cmpuint (out[i], ==, 0);
  /* thresholds given the other way round are swapped */
  g_assert_true (easel_canny (img, SW, SH, 1, SW, 200, 100, FALSE, out, NULL));
  g_assert_cmpuint (out[2 * SW + 3], ==, 255);
}

static void
test_hysteresis (void)
{
  guint8 img[SW * SH], out[SW * SH];
  /* upper half: step 200 (magnitude 800, strong); lower half: step 20 (magnitude 80, weak) */
  step_image (img, 200, 20);
  g_assert_true (easel_canny (img, SW, SH, 1, SW, 50, 500, FALSE, out, NULL));
  g_assert_cmpuint (out[0 * SW + 3], ==, 255);
  g_assert_cmpuint (out[7 * SW + 3], ==, 255);    /* weak, joined to the strong part */
  g_assert_true (easel_canny (img, SW, SH, 1, SW, 100, 500, FALSE, out, NULL));
  g_assert_cmpuint (out[0 * SW + 3], ==, 255);
  g_assert_cmpuint (out[7 * SW + 3], ==, 0);      /* 80 is below low */
  /* weak everywhere: nothing to start from */
  step_image (img, 20, 20);
  g_assert_true (easel_canny (img, SW, SH, 1, SW, 50, 500, FALSE, out, NULL));
  for (int i = 0; i < SW * SH; i++)
    g_assert_cmpuint (out[i], ==, 0);
}

static void
test_l2 (void)
{
  guint8 img[SW * SH], out[SW * SH];
  step_image (img, 200, 200);
  /* L2 magnitude² 640000 > 700² but L1 800 < 900 and 800² < 900² */
  g_assert_true (easel_canny (img, SW, SH, 1, SW, 100, 700, TRUE, out, NULL));
  g_assert_cmpuint (out[4 * SW + 3], ==, 255);
  g_assert_true (easel_canny (img, SW, SH, 1, SW, 100, 900, TRUE, out, NULL));
  g_assert_cmpuint (out[4 * SW + 3], ==, 0);
}

static void
test_rgb (void)
{
  guint8 gray[SW * SH], rgb[SW * SH * 3], out[SW * SH], want[SW * SH];
  step_image (gray, 200, 200);
  /* red: a faint step the other way; green: the strong step. The green gradient wins. */
  for (int i = 0; i < SW * SH; i++) {
    rgb[3 * i] = (guint8) (10 - gray[i] / 20);
    rgb[3 * i + 1] = gray[i];
    rgb[3 * i + 2] = 7;
  }
  g_assert_true (easel_canny (gray, SW, SH, 1, SW, 100, 200, FALSE, want, NULL));
  g_assert_true (easel_canny (rgb, SW, SH, 3, SW * 3, 100, 200, FALSE, out, NULL));
  g_assert_cmpmem (out, sizeof out, want, sizeof want);
  /* padded rows (stride > width · channels) */
  guint8 padded[SH * (SW * 3 + 5)];
  for (int y = 0; y < SH; y++)
    memcpy (padded + y * (SW * 3 + 5), rgb + y * SW * 3, SW * 3);
  g_assert_true (easel_canny (padded, SW, SH, 3, SW * 3 + 5, 100, 200, FALSE, out, NULL));
  g_assert_cmpmem (out, sizeof out, want, sizeof want);
}

static void
test_gray (void)
{
  /* cv2.cvtColor(RGB2GRAY) of pure red, green, blue, white, black */
  const guint8 rgb[] = { 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0 };
  guint8 gray[5];
  easel_rgb_to_gray_u8 (rgb, 5, 1, 15, gray);
  g_assert_cmpuint (gray[0], ==, 76);
  g_assert_cmpuint (gray[1], ==, 150);
  g_assert_cmpuint (gray[2], ==, 29);
  g_assert_cmpuint (gray[3], ==, 255);
  g_assert_cmpuint (gray[4], ==, 0);
}

static void
test_errors (void)
{
  guint8 img[16] = { 0 }, out[16];
  g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL;
  g_assert_false (easel_canny (img, 0, 4, 1, 4, 1, 2, FALSE, out, &e1));
  g_assert_error (e1, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_assert_false (easel_canny (img, 2, 2, 5, 10, 1, 2, FALSE, out, &e2));
  g_assert_error (e2, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_assert_false (easel_canny (img, 4, 4, 1, 3, 1, 2, FALSE, out, &e3));   /* stride shorter than a row */
  g_assert_error (e3, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  /* a single pixel works (all borders replicated) */
  g_assert_true (easel_canny (img, 1, 1, 1, 1, 1, 2, FALSE, out, NULL));
  g_assert_cmpuint (out[0], ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/canny/step-edge", test_step_edge);
  g_test_add_func ("/canny/hysteresis", test_hysteresis);
  g_test_add_func ("/canny/l2", test_l2);
  g_test_add_func ("/canny/rgb", test_rgb);
  g_test_add_func ("/canny/gray", test_gray);
  g_test_add_func ("/canny/errors", test_errors);
  return g_test_run ();
}
