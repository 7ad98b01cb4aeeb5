/* tests/test-prompt.c: A1111 and ComfyUI prompt syntax and chunking (engine/prompt.c).
 * Expected weights are written as the Python expressions A1111/ComfyUI evaluate (e.g. 1.1 * 1.1
 * for "((x))"), expected chunks are derived from sd_hijack_clip.py's rule by hand. */
#include <math.h>
#include <string.h>

#include "engine/error.h"
#include "engine/prompt.h"
#include "testutil.h"

typedef struct {
  const char *text;
  double weight;
} Want;

static void
assert_segments (GArray *got, const Want *want, guint n)
{
  g_assert_nonnull (got);
  g_assert_cmpuint (got->len, ==, n);
  for (guint i = 0; i < n; i++) {
    const EaselPromptSegment *s = &g_array_index (got, EaselPromptSegment, i);
    g_assert_cmpstr (s->text, ==, want[i].text);
    g_assert_true (s->weight == want[i].weight);   /* bit-exact */
  }
}

#define A1111(text, ...)                                                       \
  G_STMT_START {                                                               \
    g_autoptr(GError) e_ = NULL;                                               \
    g_autoptr(GArray) got_ = easel_prompt_parse_a1111 (text, -1, &e_);         \
    const Want want_[] = { __VA_ARGS__ };                                      \
    g_assert_no_error (e_);                                                    \
    assert_segments (got_, want_, G_N_ELEMENTS (want_));                       \
  } G_STMT_END

#define COMFY(text, ...)                                                       \
  G_STMT_START {                                                               \
    g_autoptr(GError) e_ = NULL;                                               \
    g_autoptr(GArray) got_ = easel_prompt_parse_comfy (text, -1, &e_);         \
    const Want want_[] = { __VA_ARGS__ };                                      \
    g_assert_no_error (e_);                                                    \
    assert_segments (got_, want_, G_N_ELEMENTS (want_));                       \
  } G_STMT_END

static void
test_a1111_syntax (void)
{
  const double up = 1.1, down = 1 / 1.1;
  A1111 ("normal text", { "normal text", 1.0 });
  A1111 ("an (important) word", { "an ", 1.0 }, { "important", up }, { " word", 1.0 });
  A1111 ("a [small] word", { "a ", 1.0 }, { "small", down }, { " word", 1.0 });
  A1111 ("((x))", { "x", 1.0 * up * up });
  A1111 ("[[x]]", { "x", 1.0 * down * down });
  A1111 ("(x:1.5)", { "x", 1.5 });
  A1111 ("((x:1.5))", { "x", 1.5 * up });
  A1111 ("[(x:1.5)]", { "x", 1.5 * down });
  A1111 ("(x:-0.5)", { "x", -0.5 });
  A1111 ("(x:+.5)", { "x", 0.5 });
  A1111 ("(x:2.)", { "x", 2.0 });
  /* not a weight: space after the colon, letters, exponent */
  A1111 ("(x: 1.3)", { "x: 1.3", up });
  A1111 ("(x:abc)", { "x:abc", up });
  A1111 ("(x:1e2)", { "x:1e2", up });
  A1111 ("(x :1.3)", { "x ", 1.3 });
  A1111 ("(a:1.2:1.3)", { "a:1.2", 1.3 });
  /* a weight with no open bracket is text */
  A1111 ("x:1.3)", { "x:1.3)", 1.0 });
  /* escapes, and a lone backslash vanishes */
  A1111 ("\\(a\\) \\[b\\] \\\\", { "(a) [b] \\", 1.0 });
  A1111 ("a\\b", { "ab", 1.0 });
  /* unbalanced: closed at the end; stray closers are text */
  A1111 ("(unbalanced", { "unbalanced", up });
  A1111 ("[unbalanced", { "unbalanced", down });
  A1111 ("x) y]", { "x) y]", 1.0 });
  /* equal weights merge, even across brackets */
  A1111 ("(a)(b)", { "ab", up });
  A1111 ("([x])", { "x", 1.0 * down * up });
  A1111 ("", { "", 1.0 });
  A1111 ("()", { "", 1.0 });
  /* the docstring example of prompt_parser.py */
  A1111 ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
         { "a ", 1.0 }, { "house", 1.3 * up * up }, { " ", up }, { "on", up * down }, { " a ", up },
         { "hill", 0.5 * up }, { ", sun, ", up }, { "sky", up * up * up * up }, { ".", up });
  /* Unicode decimal digits are \d for Python's re and float() */
  A1111 ("(x:\xd9\xa1.\xd9\xa5)", { "x", 1.5 });   /* Arabic-Indic 1.5 */
}

static void
test_a1111_break (void)
{
  A1111 ("a cat BREAK a dog", { "a cat", 1.0 }, { "BREAK", -1.0 }, { "a dog", 1.0 });
  A1111 ("a cat\n BREAK \ta dog", { "a cat", 1.0 }, { "BREAK", -1.0 }, { "a dog", 1.0 });
  A1111 ("BREAK", { "", 1.0 }, { "BREAK", -1.0 }, { "", 1.0 });
  A1111 ("a BREAK BREAK b", { "a", 1.0 }, { "BREAK", -1.0 }, { "", 1.0 }, { "BREAK", -1.0 }, { "b", 1.0 });
  /* only the whole upper-case word */
  A1111 ("a break b", { "a break b", 1.0 });
  A1111 ("aBREAK b", { "aBREAK b", 1.0 });
  A1111 ("a BREAKS b", { "a BREAKS b", 1.0 });
  A1111 ("a_BREAK b", { "a_BREAK b", 1.0 });
  A1111 ("a,BREAK,b", { "a,", 1.0 }, { "BREAK", -1.0 }, { ",b", 1.0 });
  /* inside brackets it is weighted and stops being a BREAK for chunking */
  A1111 ("(a BREAK b:2)", { "a", 2.0 }, { "BREAK", -2.0 }, { "b", 2.0 });
  {
    g_autoptr(GArray) s = easel_prompt_parse_a1111 ("(a BREAK b:2)", -1, NULL);
    g_assert_false (easel_prompt_segment_is_break (&g_array_index (s, EaselPromptSegment, 1)));
  }
}

static void
test_a1111_errors (void)
{
  const char *bad[] = { "(word:1.2.3)", "(word:.)", "(word:+.)", "(word:..5)" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) s = easel_prompt_parse_a1111 (bad[i], -1, &error);
    g_assert_null (s);
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  }
  /* without an open bracket the same text is no weight, so no error */
  A1111 ("word:1.2.3)", { "word:1.2.3)", 1.0 });
  {
    g_autoptr(GError) error = NULL;
    g_assert_null (easel_prompt_parse_a1111 ("a \xc3\x28 b", -1, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  }
}

static void
test_comfy_syntax (void)
{
  COMFY ("a (b) c", { "a ", 1.0 }, { "b", 1.1 }, { " c", 1.0 });
  COMFY ("((b))", { "b", 1.0 * 1.1 * 1.1 });
  COMFY ("(b:1.3)", { "b", 1.3 });
  COMFY ("((a:1.2), b:0.7)", { "a", 1.2 }, { ", b", 0.7 });
  COMFY ("(b: 1.3 )", { "b", 1.3 });        /* float() strips spaces */
  COMFY ("(b:1e2)", { "b", 100.0 });
  COMFY ("(b:1_0)", { "b", 10.0 });
  COMFY ("(b:1.2.3)", { "b:1.2.3", 1.1 });
  COMFY ("(:1.3)", { ":1.3", 1.1 });         /* a colon at 0 is no weight */
  COMFY ("[b] \\(c\\)", { "[b] (c)", 1.0 });
  COMFY ("\\\\ stays", { "\\\\ stays", 1.0 });
  COMFY ("(a) x)", { "a", 1.1 }, { " x)", 1.0 });
  {
    g_autoptr(GArray) none = easel_prompt_parse_comfy ("()", -1, NULL);
    g_assert_cmpuint (none->len, ==, 0);
    g_autoptr(GArray) inf = easel_prompt_parse_comfy ("(b:inf)", -1, NULL);
    g_assert_true (isinf (g_array_index (inf, EaselPromptSegment, 0).weight));
  }
  /* deep nesting is refused, not recursed into */
  {
    g_autoptr(GString) s = g_string_new (NULL);
    g_autoptr(GError) error = NULL;
    for (int i = 0; i < 1000; i++)
      g_string_append_c (s, '(');
    g_string_append_c (s, 'x');
    for (int i = 0; i < 1000; i++)
      g_string_append_c (s, ')');
    g_assert_null (easel_prompt_parse_comfy (s->str, s->len, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  }
}

/* ---- chunking ---------------------------------------------------------------------------------- */

static EaselTokenizer *
load (void)
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

static GArray *
chunks_a1111 (EaselTokenizer *tok, const char *text)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) segs = easel_prompt_parse_a1111 (text, -1, &error);
  g_assert_no_error (error);
  GArray *chunks = easel_prompt_chunks_a1111 (tok, segs, 20, &error);
  g_assert_no_error (error);
  return chunks;
}

static GString *
repeat (const char *word, guint n)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < n; i++)
    g_string_append (s, word);
  return s;
}

/* ids[from .. to) of chunk c are all id, with weight w */
static void
assert_run (GArray *chunks, guint c, guint from, guint to, gint32 id, double w)
{
  const EaselPromptChunk *ch = &g_array_index (chunks, EaselPromptChunk, c);
  for (guint k = from; k < to; k++) {
    g_assert_cmpint (ch->ids[k], ==, id);
    g_assert_true (ch->weights[k] == w);
  }
}

static void
test_a1111_chunks (void)
{
  g_autoptr(EaselTokenizer) tok = load ();
  if (tok == NULL)
    return;
  const gint32 bos = 49406, eos = 49407;
  const gint32 cat = easel_tokenizer_lookup (tok, "cat</w>"), dog = easel_tokenizer_lookup (tok, "dog</w>");
  const gint32 comma = easel_tokenizer_lookup (tok, ",</w>");

  /* empty prompt: one chunk BOS + 76 EOS */
  {
    g_autoptr(GArray) c = chunks_a1111 (tok, "");
    g_assert_cmpuint (c->len, ==, 1);
    assert_run (c, 0, 0, 1, bos, 1.0);
    assert_run (c, 0, 1, 77, eos, 1.0);
  }
  /* weights follow their tokens */
  {
    g_autoptr(GArray) c = chunks_a1111 (tok, "cat (dog:1.5)");
    assert_run (c, 0, 1, 2, cat, 1.0);
    assert_run (c, 0, 2, 3, dog, 1.5);
    assert_run (c, 0, 3, 77, eos, 1.0);
  }
  /* 70 cats, a comma, 10 dogs: when the chunk is full (70 + comma + 4 dogs = 75) the comma is
   * 5 tokens back, within 20, so the 4 dogs move: chunk 0 = 70 cats + comma + padding,
   * chunk 1 = the 10 dogs */
  {
    g_autoptr(GString) s = repeat ("cat ", 70);
    g_string_append (s, ", ");
    g_autoptr(GString) d = repeat ("dog ", 10);
    g_string_append (s, d->str);
    g_autoptr(GArray) c = chunks_a1111 (tok, s->str);
    g_assert_cmpuint (c->len, ==, 2);
    assert_run (c, 0, 0, 1, bos, 1.0);
    assert_run (c, 0, 1, 71, cat, 1.0);
    assert_run (c, 0, 71, 72, comma, 1.0);
    assert_run (c, 0, 72, 77, eos, 1.0);
    assert_run (c, 1, 0, 1, bos, 1.0);
    assert_run (c, 1, 1, 11, dog, 1.0);
    assert_run (c, 1, 11, 77, eos, 1.0);
  }
  /* the comma 30 tokens back: no move, a plain cut after 75 tokens */
  {
    g_autoptr(GString) s = repeat ("cat ", 45);
    g_string_append (s, ", ");
    g_autoptr(GString) d = repeat ("dog ", 40);
    g_string_append (s, d->str);
    g_autoptr(GArray) c = chunks_a1111 (tok, s->str);
    g_assert_cmpuint (c->len, ==, 2);
    assert_run (c, 0, 1, 46, cat, 1.0);
    assert_run (c, 0, 46, 47, comma, 1.0);
    assert_run (c, 0, 47, 76, dog, 1.0);   /* 29 dogs fill it */
    assert_run (c, 0, 76, 77, eos, 1.0);
    assert_run (c, 1, 1, 12, dog, 1.0);    /* the other 11 */
    assert_run (c, 1, 12, 77, eos, 1.0);
  }
  /* exactly 75 tokens then a comma: the comma opens the next chunk */
  {
    g_autoptr(GString) s = repeat ("cat ", 75);
    g_string_append (s, ", dog");
    g_autoptr(GArray) c = chunks_a1111 (tok, s->str);
    g_assert_cmpuint (c->len, ==, 2);
    assert_run (c, 0, 1, 76, cat, 1.0);
    assert_run (c, 1, 1, 2, comma, 1.0);
    assert_run (c, 1, 2, 3, dog, 1.0);
  }
  /* BREAK closes the chunk, also an empty one */
  {
    g_autoptr(GArray) c = chunks_a1111 (tok, "cat BREAK dog");
    g_assert_cmpuint (c->len, ==, 2);
    assert_run (c, 0, 1, 2, cat, 1.0);
    assert_run (c, 0, 2, 77, eos, 1.0);
    assert_run (c, 1, 1, 2, dog, 1.0);
    g_autoptr(GArray) e = chunks_a1111 (tok, "BREAK dog");
    g_assert_cmpuint (e->len, ==, 2);
    assert_run (e, 0, 1, 77, eos, 1.0);
    assert_run (e, 1, 1, 2, dog, 1.0);
  }
  /* comma_backtrack 0 turns the comma rule off */
  {
    g_autoptr(GString) s = repeat ("cat ", 70);
    g_string_append (s, ", ");
    g_autoptr(GString) d = repeat ("dog ", 10);
    g_string_append (s, d->str);
    g_autoptr(GArray) segs = easel_prompt_parse_a1111 (s->str, -1, NULL);
    g_autoptr(GArray) c = easel_prompt_chunks_a1111 (tok, segs, 0, NULL);
    assert_run (c, 0, 72, 76, dog, 1.0);
  }
  /* SDXL's second tokenizer in A1111: everything after the first EOS becomes 0 */
  {
    g_autoptr(GArray) c = chunks_a1111 (tok, "cat");
    EaselPromptChunk ch = g_array_index (c, EaselPromptChunk, 0);
    easel_prompt_chunk_repad (&ch, eos, 0);
    g_assert_cmpint (ch.ids[1], ==, cat);
    g_assert_cmpint (ch.ids[2], ==, eos);
    g_assert_cmpint (ch.ids[3], ==, 0);
    g_assert_cmpint (ch.ids[76], ==, 0);
  }
  /* a weight that is not finite is refused when chunking (A1111 would make NaN conditioning) */
  {
    g_autoptr(GString) s = g_string_new ("(cat:");
    for (int i = 0; i < 400; i++)
      g_string_append_c (s, '9');
    g_string_append_c (s, ')');
    g_autoptr(GError) error = NULL;
    g_autoptr(GArray) segs = easel_prompt_parse_a1111 (s->str, -1, &error);
    g_assert_no_error (error);
    g_assert_true (isinf (g_array_index (segs, EaselPromptSegment, 0).weight));
    g_assert_null (easel_prompt_chunks_a1111 (tok, segs, 20, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  }
}

static void
test_comfy_chunks (void)
{
  g_autoptr(EaselTokenizer) tok = load ();
  if (tok == NULL)
    return;
  const gint32 bos = 49406, eos = 49407;
  const gint32 cat = easel_tokenizer_lookup (tok, "cat</w>"), dog = easel_tokenizer_lookup (tok, "dog</w>");
  /* 70 cats (one group) then the group "(dog x6)": 6 tokens, fewer than 8, and only 5 places
   * left, so chunk 0 is closed with EOS + padding and the 6 dogs move whole to chunk 1 */
  {
    g_autoptr(GString) s = repeat ("cat ", 70);
    g_string_append (s, "(dog dog dog dog dog dog)");
    g_autoptr(GArray) segs = easel_prompt_parse_comfy (s->str, -1, NULL);
    g_autoptr(GArray) c = easel_prompt_chunks_comfy (tok, segs, eos, 0, NULL);
    g_assert_cmpuint (c->len, ==, 2);
    assert_run (c, 0, 0, 1, bos, 1.0);
    assert_run (c, 0, 1, 71, cat, 1.0);
    assert_run (c, 0, 71, 77, eos, 1.0);      /* EOS then padding */
    assert_run (c, 1, 1, 7, dog, 1.1);
    assert_run (c, 1, 7, 77, eos, 1.0);
  }
  /* a group of 8+ tokens is cut where the chunk ends */
  {
    g_autoptr(GString) s = repeat ("cat ", 70);
    g_string_append (s, "(dog dog dog dog dog dog dog dog dog dog)");
    g_autoptr(GArray) segs = easel_prompt_parse_comfy (s->str, -1, NULL);
    g_autoptr(GArray) c = easel_prompt_chunks_comfy (tok, segs, 0, EASEL_TOKENIZE_BANG_SPECIAL, NULL);
    g_assert_cmpuint (c->len, ==, 2);
    assert_run (c, 0, 71, 76, dog, 1.1);
    assert_run (c, 0, 76, 77, eos, 1.0);
    assert_run (c, 1, 1, 6, dog, 1.1);
    assert_run (c, 1, 6, 7, eos, 1.0);
    assert_run (c, 1, 7, 77, 0, 1.0);         /* clip_g pads with 0 */
  }
}

static void
test_long_prompt (void)
{
  g_autoptr(EaselTokenizer) tok = load ();
  if (tok == NULL)
    return;
  g_autoptr(GString) s = repeat ("(cat:1.2), [dog] BREAK ", 1000000 / 23 + 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) segs = easel_prompt_parse_a1111 (s->str, s->len, &error);
  g_assert_no_error (error);
  g_autoptr(GArray) chunks = easel_prompt_chunks_a1111 (tok, segs, 20, &error);
  g_assert_no_error (error);
  /* one per BREAK; nothing follows the last BREAK, so no extra chunk */
  g_assert_cmpuint (chunks->len, ==, 1000000 / 23 + 1);
  g_autoptr(GArray) csegs = easel_prompt_parse_comfy (s->str, s->len, &error);
  g_assert_no_error (error);
  g_autoptr(GArray) cchunks = easel_prompt_chunks_comfy (tok, csegs, 49407, 0, &error);
  g_assert_no_error (error);

  /* deep unclosed brackets over many segments: refused instead of quadratic work */
  g_autoptr(GString) nest = repeat ("(a", 200000);
  g_assert_null (easel_prompt_parse_a1111 (nest->str, nest->len, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/prompt/a1111/syntax", test_a1111_syntax);
  g_test_add_func ("/prompt/a1111/break", test_a1111_break);
  g_test_add_func ("/prompt/a1111/errors", test_a1111_errors);
  g_test_add_func ("/prompt/comfy/syntax", test_comfy_syntax);
  g_test_add_func ("/prompt/a1111/chunks", test_a1111_chunks);
  g_test_add_func ("/prompt/comfy/chunks", test_comfy_chunks);
  g_test_add_func ("/prompt/long", test_long_prompt);
  return g_test_run ();
}
