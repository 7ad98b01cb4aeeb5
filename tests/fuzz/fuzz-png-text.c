/* tests/fuzz/fuzz-png-text.c: the A1111 "parameters" parser on arbitrary bytes; what it parsed is
 * written back and parsed again, and the second parse must equal the first. A1111's reader
 * only takes the last line as parameters when it holds 3 or more "Key: value" pairs, so a
 * parse left with 1 or 2 entries cannot come back as parameters (its text then reads back as
 * prompt only, which is asserted instead). */
#include <string.h>

#include "engine/image.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselParameters) first = easel_parameters_parse ((const char *) data, (gssize) size, &error);
  g_autoptr(EaselParameters) second = NULL;
  g_autofree char *text = NULL;
  guint n;

  if (first == NULL) {
    g_assert (error != NULL);
    g_assert (!g_utf8_validate_len ((const char *) data, size, NULL) || memchr (data, 0, size));
    return 0;
  }
  g_assert (g_utf8_validate (first->prompt, -1, NULL) && g_utf8_validate (first->negative, -1, NULL));
  text = easel_parameters_to_text (first);
  g_assert (g_utf8_validate (text, -1, NULL));
  second = easel_parameters_parse (text, -1, &error);
  g_assert (second != NULL);
  n = easel_parameters_count (first);
  if (n == 0 || n >= 3)
    g_assert (easel_parameters_equal (first, second));
  else
    g_assert (easel_parameters_count (second) == 0);
  return 0;
}
