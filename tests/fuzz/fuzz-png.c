/* tests/fuzz/fuzz-png.c: the PNG reader on arbitrary bytes. A decoded image is read end to end,
 * its text chunks must be valid UTF-8, and a "parameters" chunk goes through the parser. */
#include "engine/image.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselPngInfo) info = NULL;
  g_autoptr(EaselImage) image = easel_png_load_from_data (data, size, "fuzz.png", &info, &error);
  volatile guint sum = 0;   /* every pixel is read */

  if (image == NULL) {
    g_assert (error != NULL && info == NULL);
    return 0;
  }
  g_assert (image->width == info->width && image->height == info->height);
  g_assert (image->width <= EASEL_IMAGE_MAX_SIDE && image->height <= EASEL_IMAGE_MAX_SIDE);
  g_assert (image->channels == 3 || image->channels == 4);
  for (gsize i = 0; i < (gsize) image->height * image->stride; i++)
    sum += image->pixels[i];
  for (guint i = 0; i < info->texts->len; i++) {
    const EaselPngText *t = g_ptr_array_index (info->texts, i);
    g_assert (g_utf8_validate (t->key, -1, NULL) && g_utf8_validate (t->text, -1, NULL));
    if (g_str_equal (t->key, EASEL_PARAMETERS_KEY)) {
      g_autoptr(EaselParameters) p = easel_parameters_parse (t->text, -1, NULL);
      g_assert (p != NULL);
    }
  }
  return 0;
}
