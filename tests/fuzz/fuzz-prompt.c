/* tests/fuzz/fuzz-prompt.c: the A1111 and ComfyUI prompt parsers on arbitrary bytes, and, when
 * $EASEL_TESTDATA/tokenizer has the vocabulary, both chunkers on what they parse. */
#include <glib.h>

#include "engine/prompt.h"

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

static void
check_chunks (GArray *chunks, GError *error)
{
  if (chunks == NULL) {
    g_assert_nonnull (error);
    return;
  }
  g_assert_cmpuint (chunks->len, >=, 1);
  for (guint c = 0; c < chunks->len; c++) {
    EaselPromptChunk *ch = &g_array_index (chunks, EaselPromptChunk, c);
    g_assert_cmpint (ch->ids[0], ==, 49406);
    easel_prompt_chunk_repad (ch, 49407, 0);
  }
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  EaselTokenizer *tok = tokenizer ();
  for (int dialect = 0; dialect < 2; dialect++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) segs = dialect == 0 ? easel_prompt_parse_a1111 ((const char *) data, size, &error)
                                          : easel_prompt_parse_comfy ((const char *) data, size, &error);
    if (segs == NULL) {
      g_assert_nonnull (error);
      continue;
    }
    g_assert_true (dialect == 1 || segs->len >= 1);
    if (tok == NULL)
      continue;
    g_autoptr(GError) e1 = NULL, e2 = NULL;
    g_autoptr(GArray) a = dialect == 0 ? easel_prompt_chunks_a1111 (tok, segs, 20, &e1)
                                       : easel_prompt_chunks_comfy (tok, segs, 49407, 0, &e1);
    check_chunks (a, e1);
    g_autoptr(GArray) b = dialect == 0 ? easel_prompt_chunks_a1111 (tok, segs, 0, &e2)
                                       : easel_prompt_chunks_comfy (tok, segs, 0, EASEL_TOKENIZE_BANG_SPECIAL, &e2);
    check_chunks (b, e2);
  }
  return 0;
}
