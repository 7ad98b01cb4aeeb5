/* tests/fuzz/fuzz-tokenizer.c: the CLIP tokenizer on arbitrary bytes (invalid UTF-8 included),
 * with both flag sets, and the 77-padding of what comes out. The vocabulary is loaded once from
 * $EASEL_TESTDATA/tokenizer; without it there is nothing to do. */
#include <glib.h>

#include "engine/tokenizer.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static EaselTokenizer *
tokenizer (void)
{
  static EaselTokenizer *tok;
  static gboolean tried;
  if (!tried) {
    const char *root = g_getenv ("EASEL_TESTDATA");
    tried = TRUE;
    if (root) {
      g_autofree char *dir = g_build_filename (root, "tokenizer", NULL);
      tok = easel_tokenizer_load (dir, NULL);
    }
  }
  return tok;
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  EaselTokenizer *tok = tokenizer ();
  gint32 out[EASEL_CLIP_CONTEXT];

  if (tok == NULL)
    return 0;
  for (int flags = 0; flags < 2; flags++) {
    g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
    g_autoptr(GError) error = NULL;
    if (easel_tokenizer_encode_full (tok, (const char *) data, size, flags, ids, &error)) {
      g_assert_no_error (error);
      for (guint i = 0; i < ids->len; i++)
        g_assert_nonnull (easel_tokenizer_token (tok, g_array_index (ids, gint32, i)));
      easel_tokenizer_pad_77 (tok, (const gint32 *) ids->data, ids->len, 0, out);
    } else {
      g_assert_nonnull (error);
      g_assert_cmpuint (ids->len, ==, 0);
    }
  }
  return 0;
}
