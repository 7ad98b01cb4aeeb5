/* tests/test-tokenizer.c: the CLIP BPE tokenizer (engine/tokenizer.c) and the vocabulary search
 * (engine/vocab.c). Expected ids are looked up in the vocabulary by their token text (e.g.
 * "cat</w>"), never taken from the tokenizer's own output. Needs $EASEL_TESTDATA/tokenizer. */
#include <glib/gstdio.h>
#include <string.h>

#include "engine/error.h"
#include "engine/tokenizer.h"
#include "engine/vocab.h"
#include "testutil.h"

static EaselTokenizer *
load_hf (void)
{
  g_autofree char *dir = test_data_path ("tokenizer", NULL);
  g_autoptr(GError) error = NULL;
  EaselTokenizer *tok;
  if (dir == NULL)
    return NULL;
  tok = easel_tokenizer_load (dir, &error);
  g_assert_no_error (error);
  return tok;
}

static EaselTokenizer *
load_gz (void)
{
  g_autofree char *gz = test_data_path ("tokenizer", "bpe_simple_vocab_16e6.txt.gz", NULL);
  g_autoptr(GError) error = NULL;
  EaselTokenizer *tok;
  if (gz == NULL)
    return NULL;
  tok = easel_tokenizer_load (gz, &error);
  g_assert_no_error (error);
  return tok;
}

static GArray *
encode (EaselTokenizer *tok, const char *text, EaselTokenizeFlags flags)
{
  g_autoptr(GError) error = NULL;
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (easel_tokenizer_encode_full (tok, text, -1, flags, ids, &error));
  g_assert_no_error (error);
  return ids;
}

/* ids of the vocabulary entries named in a NULL-terminated list */
static GArray *
lookup_all (EaselTokenizer *tok, const char *first, ...)
{
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  va_list ap;
  va_start (ap, first);
  for (const char *t = first; t; t = va_arg (ap, const char *)) {
    gint32 id = easel_tokenizer_lookup (tok, t);
    g_assert_cmpint (id, >=, 0);
    g_array_append_val (ids, id);
  }
  va_end (ap);
  return ids;
}

static void
assert_ids (GArray *got, GArray *want)
{
  g_assert_cmpuint (got->len, ==, want->len);
  for (guint i = 0; i < got->len; i++)
    g_assert_cmpint (g_array_index (got, gint32, i), ==, g_array_index (want, gint32, i));
}

#define ASSERT_TOKENS(tok, text, ...)                                        \
  G_STMT_START {                                                             \
    g_autoptr(GArray) got_ = encode (tok, text, 0);                          \
    g_autoptr(GArray) want_ = lookup_all (tok, __VA_ARGS__, NULL);           \
    assert_ids (got_, want_);                                                \
  } G_STMT_END

#define ASSERT_SAME(tok, a, b)                                               \
  G_STMT_START {                                                             \
    g_autoptr(GArray) a_ = encode (tok, a, 0);                               \
    g_autoptr(GArray) b_ = encode (tok, b, 0);                               \
    assert_ids (a_, b_);                                                     \
  } G_STMT_END

static void
test_vocabulary (void)
{
  g_autoptr(EaselTokenizer) hf = load_hf ();
  g_autoptr(EaselTokenizer) gz = load_gz ();
  if (hf == NULL)
    return;
  /* SimpleTokenizer's layout: 256 + 256 + 48894 merges + 2 specials */
  g_assert_cmpuint (easel_tokenizer_vocab_size (gz), ==, 49408);
  g_assert_cmpuint (easel_tokenizer_vocab_size (hf), ==, 49408);
  g_assert_cmpint (easel_tokenizer_bos (gz), ==, 49406);
  g_assert_cmpint (easel_tokenizer_eos (gz), ==, 49407);
  g_assert_cmpstr (easel_tokenizer_token (gz, 0), ==, "!");
  g_assert_cmpstr (easel_tokenizer_token (gz, 256), ==, "!</w>");
  g_assert_null (easel_tokenizer_token (gz, 49408));
  g_assert_null (easel_tokenizer_token (gz, -1));
  /* the two forms are the same vocabulary */
  for (gint32 id = 0; id < 49408; id++)
    g_assert_cmpstr (easel_tokenizer_token (gz, id), ==, easel_tokenizer_token (hf, id));
  g_assert_cmpint (easel_tokenizer_lookup (hf, "no such token"), ==, -1);
}

static void
test_words (void)
{
  g_autoptr(EaselTokenizer) tok = load_hf ();
  if (tok == NULL)
    return;
  ASSERT_TOKENS (tok, "a photo of a cat", "a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>");
  /* lowercase, and whitespace of any kind only separates */
  ASSERT_SAME (tok, "A PHOTO\tOf\n a  CaT ", "a photo of a cat");
  ASSERT_SAME (tok, "a\xc2\xa0" "cat\xe3\x80\x80" "dog\xe2\x80\x83", "a cat dog");   /* U+00A0, U+3000, U+2003 */
  /* numbers split into digits, punctuation runs stay together */
  ASSERT_TOKENS (tok, "2024", "2</w>", "0</w>", "2</w>", "4</w>");
  ASSERT_TOKENS (tok, "cat,dog", "cat</w>", ",</w>", "dog</w>");
  /* contractions */
  ASSERT_TOKENS (tok, "it's", "it</w>", "'s</w>");
  ASSERT_TOKENS (tok, "WE'LL", "we</w>", "'ll</w>");
  /* specials: literal and case-sensitive */
  ASSERT_TOKENS (tok, "a<|endoftext|>b", "a</w>", "<|endoftext|>", "b</w>");
  ASSERT_TOKENS (tok, "<|startoftext|>", "<|startoftext|>");
  {
    g_autoptr(GArray) upper = encode (tok, "<|ENDOFTEXT|>", 0);
    for (guint i = 0; i < upper->len; i++)
      g_assert_cmpint (g_array_index (upper, gint32, i), <, 49406);
  }
  /* empty and blank prompts have no tokens */
  {
    g_autoptr(GArray) e = encode (tok, "", 0);
    g_autoptr(GArray) b = encode (tok, " \t\n ", 0);
    g_assert_cmpuint (e->len, ==, 0);
    g_assert_cmpuint (b->len, ==, 0);
  }
}

static void
test_unicode (void)
{
  g_autoptr(EaselTokenizer) tok = load_hf ();
  if (tok == NULL)
    return;
  /* NFC: e + combining acute is é */
  ASSERT_SAME (tok, "cafe\xcc\x81", "caf\xc3\xa9");
  /* per-character lowercase without the final-sigma rule: "ΑΣ" -> "ασ", not "ας" */
  ASSERT_SAME (tok, "\xce\x91\xce\xa3", "\xce\xb1\xcf\x83");
  /* U+0130 lowercases to i + U+0307 */
  ASSERT_SAME (tok, "\xc4\xb0", "i\xcc\x87");
  /* Roman numeral Ⅳ (Nl) and circled Ⓐ (So) have lowercase forms too */
  ASSERT_SAME (tok, "\xe2\x85\xa3", "\xe2\x85\xb3");
  ASSERT_SAME (tok, "\xe2\x92\xb6", "\xe2\x93\x90");
  /* U+200B is not whitespace: it stays as a token between the words */
  {
    g_autoptr(GArray) zw = encode (tok, "a\xe2\x80\x8b" "cat", 0);
    g_assert_cmpuint (zw->len, ==, 3);
  }
  /* byte-level: every token of an emoji run is made of its UTF-8 bytes */
  {
    g_autoptr(GArray) e = encode (tok, "\xf0\x9f\x99\x82", 0);
    g_assert_cmpuint (e->len, >=, 1);
  }
}

static void
test_invalid (void)
{
  g_autoptr(EaselTokenizer) tok = load_hf ();
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  const char bad[] = "ok \xff\xfe then";
  const char nul[] = "a\0b";
  if (tok == NULL)
    return;
  for (int i = 0; i < 2; i++) {
    g_autoptr(GError) error = NULL;
    gboolean ok = i == 0 ? easel_tokenizer_encode (tok, bad, -1, ids, &error)
                         : easel_tokenizer_encode (tok, nul, 3, ids, &error);
    g_assert_false (ok);
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
    g_assert_cmpuint (ids->len, ==, 0);
  }
  /* a truncated UTF-8 sequence at the end */
  {
    g_autoptr(GError) error = NULL;
    g_assert_false (easel_tokenizer_encode (tok, "abc\xe2\x82", -1, ids, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  }
}

static void
test_pad (void)
{
  g_autoptr(EaselTokenizer) tok = load_hf ();
  g_autoptr(GString) s = g_string_new (NULL);
  gint32 out[EASEL_CLIP_CONTEXT];
  gint32 cat, bang;
  if (tok == NULL)
    return;
  cat = easel_tokenizer_lookup (tok, "cat</w>");
  for (int i = 0; i < 100; i++)
    g_string_append (s, "cat ");
  g_autoptr(GArray) ids = encode (tok, s->str, 0);
  g_assert_cmpuint (ids->len, ==, 100);
  easel_tokenizer_pad_77 (tok, (gint32 *) ids->data, ids->len, 0, out);
  g_assert_cmpint (out[0], ==, 49406);
  for (int i = 1; i <= 75; i++)
    g_assert_cmpint (out[i], ==, cat);
  g_assert_cmpint (out[76], ==, 49407);

  easel_tokenizer_pad_77 (tok, (gint32 *) ids->data, 2, 49407, out);
  g_assert_cmpint (out[3], ==, 49407);
  g_assert_cmpint (out[4], ==, 49407);
  g_assert_cmpint (out[76], ==, 49407);
  easel_tokenizer_pad_77 (tok, (gint32 *) ids->data, 2, 0, out);
  g_assert_cmpint (out[3], ==, 49407);
  g_assert_cmpint (out[4], ==, 0);
  g_assert_cmpint (out[76], ==, 0);

  /* SDXL's tokenizer 2: "!" is its pad token and so a special token of its own */
  bang = easel_tokenizer_lookup (tok, "!");
  g_assert_cmpint (bang, ==, 0);
  {
    g_autoptr(GArray) plain = encode (tok, "hi!!", 0);
    g_autoptr(GArray) xl = encode (tok, "hi!!", EASEL_TOKENIZE_BANG_SPECIAL);
    g_autoptr(GArray) want = lookup_all (tok, "hi</w>", "!", "!", NULL);
    assert_ids (xl, want);
    g_assert_cmpint (g_array_index (plain, gint32, plain->len - 1), !=, 0);
  }
}

/* a million characters: linear time (no timing assert: it just has to finish in a test run) */
static void
test_long (void)
{
  g_autoptr(EaselTokenizer) tok = load_gz ();
  const gsize n = 1000000;
  if (tok == NULL)
    return;
  g_autofree char *words = g_malloc (n + 1);
  for (gsize i = 0; i < n; i += 2) {
    words[i] = 'a';
    words[i + 1] = ' ';
  }
  words[n] = '\0';
  g_autoptr(GArray) ids = encode (tok, words, 0);
  g_assert_cmpuint (ids->len, ==, n / 2);
  g_assert_cmpint (g_array_index (ids, gint32, 0), ==, easel_tokenizer_lookup (tok, "a</w>"));

  /* one word of a million letters: its tokens spell it, the last ends with </w> */
  g_autofree char *word = g_strnfill (n, 'q');
  memcpy (word + n / 2, "xyz", 3);
  g_autoptr(GArray) wids = encode (tok, word, 0);
  g_autoptr(GString) spelled = g_string_new (NULL);
  for (guint i = 0; i < wids->len; i++)
    g_string_append (spelled, easel_tokenizer_token (tok, g_array_index (wids, gint32, i)));
  g_assert_true (g_str_has_suffix (spelled->str, "</w>"));
  g_string_truncate (spelled, spelled->len - 4);
  g_assert_cmpstr (spelled->str, ==, word);
}

/* ---- hostile vocabulary files ---------------------------------------------------------------- */

static char *
write_tmp (const char *dir, const char *name, const char *data, gssize len)
{
  char *p = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (p, data, len, NULL));
  return p;
}

static void
test_bad_files (void)
{
  g_autofree char *dir = g_dir_make_tmp ("easel-vocab-XXXXXX", NULL);
  g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL, e5 = NULL;
  g_autofree char *gz = write_tmp (dir, "x.txt.gz", "\x1f\x8b\x08\x00garbage", 12);
  g_autofree char *vocab = write_tmp (dir, "vocab.json", "[1, 2]", -1);
  g_autofree char *merges = write_tmp (dir, "merges.txt", "#version: 0.2\na b\n", -1);
  EaselTokenizer *tok;

  tok = easel_tokenizer_load (gz, &e1);
  g_assert_null (tok);
  g_assert_error (e1, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);
  g_assert_nonnull (strstr (e1->message, "x.txt.gz"));

  tok = easel_tokenizer_load (dir, &e2);
  g_assert_null (tok);
  g_assert_error (e2, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);

  g_free (write_tmp (dir, "vocab.json", "{\"a\": 0, \"b\": 1}", -1));
  tok = easel_tokenizer_load (dir, &e3);   /* "ab" is not in the vocabulary */
  g_assert_null (tok);
  g_assert_error (e3, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);

  g_free (write_tmp (dir, "vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}", -1));
  tok = easel_tokenizer_load (dir, &e4);   /* no byte symbols, no specials */
  g_assert_null (tok);
  g_assert_error (e4, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);

  g_free (write_tmp (dir, "vocab.json", "{\"a\": -3}", -1));
  tok = easel_tokenizer_load (dir, &e5);
  g_assert_null (tok);
  g_assert_error (e5, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);

  g_remove (gz);
  g_remove (vocab);
  g_remove (merges);
  g_rmdir (dir);
}

/* ---- vocabulary search ----------------------------------------------------------------------- */

static void
make_vocab_dir (const char *dir, gboolean gz_form)
{
  g_autofree char *src = test_data_path ("tokenizer", NULL);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  const char *names[] = { "vocab.json", "merges.txt" };
  for (guint i = 0; i < (gz_form ? 1u : 2u); i++) {
    const char *name = gz_form ? "bpe_simple_vocab_16e6.txt.gz" : names[i];
    g_autofree char *from = g_build_filename (src, name, NULL);
    g_autofree char *to = g_build_filename (dir, name, NULL);
    g_autofree char *data = NULL;
    gsize len;
    g_assert_true (g_file_get_contents (from, &data, &len, NULL));
    g_assert_true (g_file_set_contents (to, data, len, NULL));
  }
}

static void
test_search (void)
{
  g_autofree char *src = test_data_path ("tokenizer", NULL);
  if (src == NULL)
    return;
  g_autofree char *root = g_dir_make_tmp ("easel-search-XXXXXX", NULL);
  g_autofree char *hf = g_build_filename (root, "hf", NULL);
  g_autofree char *clip_snap = g_build_filename (hf, "hub", "models--openai--clip-vit-large-patch14", "snapshots", "0123abc", NULL);
  g_autofree char *sd_tok = g_build_filename (hf, "hub", "models--runwayml--stable-diffusion-v1-5", "snapshots", "9f8e", "tokenizer", NULL);
  g_autofree char *model_dir = g_build_filename (root, "models", "sd15", NULL);
  g_autofree char *model_file = g_build_filename (root, "models", "single.safetensors", NULL);
  g_autofree char *comfy = g_build_filename (root, "ComfyUI", NULL);
  g_autofree char *comfy_tok = g_build_filename (comfy, "comfy", "sd1_tokenizer", NULL);
  g_autofree char *a1111 = g_build_filename (root, "webui", NULL);
  g_autofree char *a1111_clip = g_build_filename (a1111, "venv", "lib", "python3.10", "site-packages", "open_clip", NULL);
  g_autofree char *xdg = g_build_filename (g_get_user_data_dir (), "easel", NULL);
  g_autoptr(GError) error = NULL;
  char *found;

  g_unsetenv ("EASEL_VOCAB");
  g_unsetenv ("HF_HUB_CACHE");
  g_unsetenv ("EASEL_COMFYUI_DIR");
  g_unsetenv ("EASEL_A1111_DIR");
  g_setenv ("HF_HOME", hf, TRUE);

  /* nothing anywhere: the one-line hint */
  found = easel_vocab_find (NULL, model_file, &error);
  g_assert_null (found);
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, EASEL_VOCAB_MISSING_MESSAGE);
  g_assert_null (strchr (error->message, '\n'));
  g_clear_error (&error);

  /* lowest priority first, each new place must win over the previous ones */
  make_vocab_dir (xdg, TRUE);
  found = easel_vocab_find (NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (found, ==, xdg);
  g_free (found);

  make_vocab_dir (a1111_clip, TRUE);
  g_setenv ("EASEL_A1111_DIR", a1111, TRUE);
  found = easel_vocab_find (NULL, NULL, &error);
  g_assert_true (g_str_has_prefix (found, a1111_clip) && g_str_has_suffix (found, ".txt.gz"));
  g_free (found);

  make_vocab_dir (comfy_tok, FALSE);
  g_setenv ("EASEL_COMFYUI_DIR", comfy, TRUE);
  found = easel_vocab_find (NULL, NULL, &error);
  g_assert_cmpstr (found, ==, comfy_tok);
  g_free (found);

  make_vocab_dir (sd_tok, FALSE);
  found = easel_vocab_find (NULL, NULL, &error);
  g_assert_cmpstr (found, ==, sd_tok);
  g_free (found);

  make_vocab_dir (clip_snap, FALSE);
  found = easel_vocab_find (NULL, NULL, &error);
  g_assert_cmpstr (found, ==, clip_snap);
  g_free (found);

  /* a diffusers folder's tokenizer/, and files beside a single-file checkpoint */
  {
    g_autofree char *tokdir = g_build_filename (model_dir, "tokenizer", NULL);
    g_autofree char *models = g_path_get_dirname (model_file);
    make_vocab_dir (tokdir, FALSE);
    found = easel_vocab_find (NULL, model_dir, &error);
    g_assert_cmpstr (found, ==, tokdir);
    g_free (found);
    found = easel_vocab_find (NULL, model_file, &error);
    g_assert_cmpstr (found, ==, clip_snap);   /* nothing beside it yet */
    g_free (found);
    make_vocab_dir (models, TRUE);
    found = easel_vocab_find (NULL, model_file, &error);
    g_assert_cmpstr (found, ==, models);
    g_free (found);
  }

  /* $EASEL_VOCAB over all of those, --vocab over $EASEL_VOCAB; either one empty is an error */
  g_setenv ("EASEL_VOCAB", comfy_tok, TRUE);
  found = easel_vocab_find (NULL, model_dir, &error);
  g_assert_cmpstr (found, ==, comfy_tok);
  g_free (found);
  found = easel_vocab_find (src, model_dir, &error);
  g_assert_cmpstr (found, ==, src);
  g_free (found);
  found = easel_vocab_find (root, NULL, &error);
  g_assert_null (found);
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, root));
  g_clear_error (&error);
  g_setenv ("EASEL_VOCAB", root, TRUE);
  found = easel_vocab_find (NULL, NULL, &error);
  g_assert_null (found);
  g_assert_nonnull (strstr (error->message, "EASEL_VOCAB"));
  g_clear_error (&error);
  g_unsetenv ("EASEL_VOCAB");

  /* and what is found loads */
  {
    g_autoptr(EaselTokenizer) tok = easel_vocab_load (NULL, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint (easel_tokenizer_eos (tok), ==, 49407);
  }
}

static void
remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK)) {
    g_autoptr(GDir) d = g_dir_open (path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name (d)) != NULL) {
      g_autofree char *child = g_build_filename (path, name, NULL);
      remove_tree (child);
    }
    g_rmdir (path);
  } else {
    g_remove (path);
  }
}

int
main (int argc, char **argv)
{
  /* our own HOME and XDG folders (G_TEST_OPTION_ISOLATE_DIRS leaks in GLib 2.74, which the
   * sanitizer build reports), set before GLib caches them */
  g_autofree char *home = g_dir_make_tmp ("easel-test-home-XXXXXX", NULL);
  g_autofree char *data = g_build_filename (home, "data", NULL);
  g_autofree char *sys = g_build_filename (home, "system-data", NULL);
  int status;
  g_setenv ("HOME", home, TRUE);
  g_setenv ("XDG_DATA_HOME", data, TRUE);
  g_setenv ("XDG_DATA_DIRS", sys, TRUE);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/tokenizer/vocabulary", test_vocabulary);
  g_test_add_func ("/tokenizer/words", test_words);
  g_test_add_func ("/tokenizer/unicode", test_unicode);
  g_test_add_func ("/tokenizer/invalid", test_invalid);
  g_test_add_func ("/tokenizer/pad", test_pad);
  g_test_add_func ("/tokenizer/long", test_long);
  g_test_add_func ("/tokenizer/bad-files", test_bad_files);
  g_test_add_func ("/tokenizer/search", test_search);
  status = g_test_run ();
  remove_tree (home);
  return status;
}
