/* engine/prompt.c: A1111 and ComfyUI prompt weighting and chunking (see prompt.h).
 *
 * Follows AUTOMATIC1111 modules/prompt_parser.py (re_attention, re_break, parse_prompt_attention)
 * and modules/sd_hijack_clip.py (tokenize_line), and ComfyUI comfy/sd1_clip.py (parse_parentheses,
 * token_weights, escape_important, SDTokenizer.tokenize_with_weights). The Python regular
 * expressions are written out as scanners over UTF-8 with Python's own character classes (\s is
 * str.isspace, \w is str.isalnum or '_', \d is a Unicode decimal digit), and weights are computed
 * with the same double operations in the same order, so results are bit-identical.
 *
 * Layout: Python character classes and float(); the A1111 parser; the ComfyUI parser; chunking. */
#include "prompt.h"

#include <math.h>
#include <string.h>

#include "error.h"

/* ---------------------------------------------------------------------------------------------
 * Python's character classes and float() */

/* str.isspace: ASCII \t\n\v\f\r and \x1c-\x1f, space, and Unicode Zs / bidi B and S. */
static gboolean
py_isspace (gunichar c)
{
  if (c < 0x80)
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* \w of Python's re: str.isalnum () or '_'. */
static gboolean
py_isword (gunichar c)
{
  if (c < 0x80)
    return g_ascii_isalnum (c) || c == '_';
  switch (g_unichar_type (c)) {
  case G_UNICODE_LOWERCASE_LETTER:
  case G_UNICODE_UPPERCASE_LETTER:
  case G_UNICODE_TITLECASE_LETTER:
  case G_UNICODE_MODIFIER_LETTER:
  case G_UNICODE_OTHER_LETTER:
  case G_UNICODE_DECIMAL_NUMBER:
  case G_UNICODE_LETTER_NUMBER:
  case G_UNICODE_OTHER_NUMBER:
    return TRUE;
  default:
    return FALSE;
  }
}

/* Python's float(str): surrounding whitespace stripped, Unicode decimal digits accepted,
 * [sign] (digits with single '_' between them, '.', exponent | inf | infinity | nan). */
static gboolean
py_float (const char *s, gsize len, double *out)
{
  g_autoptr(GString) a = g_string_new (NULL);
  g_autoptr(GString) clean = g_string_new (NULL);
  const char *p = s, *end = s + len;
  gsize i = 0, n, digits = 0;
  char *stop = NULL;

  while (p < end) {
    gunichar c = g_utf8_get_char (p);
    if (py_isspace (c))
      g_string_append_c (a, ' ');
    else if (c < 0x80)
      g_string_append_c (a, (char) c);
    else if (g_unichar_isdigit (c))
      g_string_append_c (a, (char) ('0' + g_unichar_digit_value (c)));
    else
      return FALSE;
    p = g_utf8_next_char (p);
  }
  while (a->len > 0 && a->str[a->len - 1] == ' ')
    g_string_truncate (a, a->len - 1);
  while (i < a->len && a->str[i] == ' ')
    i++;
  n = a->len;
  if (i < n && (a->str[i] == '+' || a->str[i] == '-'))
    g_string_append_c (clean, a->str[i++]);
  if (i < n && g_ascii_isalpha (a->str[i])) {
    const char *word = a->str + i;
    double v;
    if (g_ascii_strcasecmp (word, "inf") == 0 || g_ascii_strcasecmp (word, "infinity") == 0)
      v = INFINITY;
    else if (g_ascii_strcasecmp (word, "nan") == 0)
      v = NAN;
    else
      return FALSE;
    *out = clean->len && clean->str[0] == '-' ? -v : v;
    return TRUE;
  }

  /* digitpart = digit (["_"] digit)* */
#define DIGITPART(count)                                                         \
  while (i < n && g_ascii_isdigit (a->str[i])) {                                 \
    g_string_append_c (clean, a->str[i++]);                                      \
    (count)++;                                                                   \
    if (i + 1 < n && a->str[i] == '_' && g_ascii_isdigit (a->str[i + 1]))        \
      i++;                                                                       \
  }
  DIGITPART (digits);
  if (i < n && a->str[i] == '.') {
    g_string_append_c (clean, a->str[i++]);
    DIGITPART (digits);
  }
  if (digits == 0)
    return FALSE;
  if (i < n && (a->str[i] == 'e' || a->str[i] == 'E')) {
    gsize exp_digits = 0;
    g_string_append_c (clean, a->str[i++]);
    if (i < n && (a->str[i] == '+' || a->str[i] == '-'))
      g_string_append_c (clean, a->str[i++]);
    DIGITPART (exp_digits);
    if (exp_digits == 0)
      return FALSE;
  }
#undef DIGITPART
  if (i != n)
    return FALSE;
  *out = g_ascii_strtod (clean->str, &stop);
  return stop != NULL && *stop == '\0';
}

static void
segment_clear (gpointer p)
{
  EaselPromptSegment *s = p;
  g_free (s->text);
}

static GArray *
segments_new (void)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (EaselPromptSegment));
  g_array_set_clear_func (a, segment_clear);
  return a;
}

static void
segment_add (GArray *res, const char *text, gsize len, double weight)
{
  EaselPromptSegment s = { g_strndup (text, len), weight };
  g_array_append_val (res, s);
}

gboolean
easel_prompt_segment_is_break (const EaselPromptSegment *seg)
{
  return seg->weight == -1.0 && strcmp (seg->text, "BREAK") == 0;
}

static gboolean
check_text (const char *text, gsize n, GError **error)
{
  const char *bad = NULL;
  if (n > EASEL_TOKENIZER_MAX_TEXT) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "prompt: %" G_GSIZE_FORMAT " bytes is longer than the %u MiB a prompt may have", n,
                 EASEL_TOKENIZER_MAX_TEXT >> 20);
    return FALSE;
  }
  if (!g_utf8_validate_len (text, n, &bad)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "prompt: %s at byte %" G_GSIZE_FORMAT,
                 *bad ? "invalid UTF-8" : "NUL character", (gsize) (bad - text));
    return FALSE;
  }
  return TRUE;
}

/* ---------------------------------------------------------------------------------------------
 * A1111 */

static gunichar
char_before (const char *t, gsize q)
{
  return g_utf8_get_char (g_utf8_find_prev_char (t, t + q));
}

/* re.split (r"\s*\bBREAK\b\s*", t): parts with ("BREAK", -1) between them, each part weight 1. */
static void
append_split_break (GArray *res, const char *t, gsize n)
{
  gsize start = 0, part = 0;

  for (;;) {
    gsize q = start;
    const char *hit = NULL;
    for (;;) {
      hit = q + 5 <= n ? g_strstr_len (t + q, n - q, "BREAK") : NULL;
      if (hit == NULL)
        break;
      q = hit - t;
      if ((q == 0 || !py_isword (char_before (t, q))) &&
          (q + 5 == n || !py_isword (g_utf8_get_char (t + q + 5))))
        break;
      q++;
      hit = NULL;
    }
    if (hit == NULL) {
      segment_add (res, t + part, n - part, 1.0);
      return;
    }
    gsize mb = q, me = q + 5;
    while (mb > start && py_isspace (char_before (t, mb)))
      mb = g_utf8_find_prev_char (t, t + mb) - t;
    while (me < n && py_isspace (g_utf8_get_char (t + me)))
      me = g_utf8_next_char (t + me) - t;
    segment_add (res, t + part, mb - part, 1.0);
    segment_add (res, "BREAK", 5, -1.0);
    part = start = me;
  }
}

/* `:([+-]?[.\d]+)\)` at t: its length (0 if none); the number is t[1 .. len-1). */
static gsize
weight_match (const char *t, gsize n)
{
  gsize i = 1, digits = 0;
  if (n < 3 || t[0] != ':')
    return 0;
  if (t[i] == '+' || t[i] == '-')
    i++;
  while (i < n) {
    gunichar c = g_utf8_get_char (t + i);
    if (c != '.' && !g_unichar_isdigit (c))
      break;
    digits++;
    i = g_utf8_next_char (t + i) - t;
  }
  return digits > 0 && i < n && t[i] == ')' ? i + 1 : 0;
}

/* multiply_range: res[start:] *= m, counting the work against the budget. */
static gboolean
multiply_range (GArray *res, guint start, double m, guint64 *ops, GError **error)
{
  *ops += res->len - start;
  if (*ops > EASEL_PROMPT_MAX_WEIGHT_OPS) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "prompt: too many nested brackets over too much text to weigh (%u segments)", res->len);
    return FALSE;
  }
  for (guint p = start; p < res->len; p++)
    g_array_index (res, EaselPromptSegment, p).weight *= m;
  return TRUE;
}

GArray *
easel_prompt_parse_a1111 (const char *text, gssize len, GError **error)
{
  g_autoptr(GArray) res = segments_new ();
  g_autoptr(GArray) round = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr(GArray) square = g_array_new (FALSE, FALSE, sizeof (guint));
  const double round_mult = 1.1, square_mult = 1 / 1.1;
  gsize n = len < 0 ? strlen (text) : (gsize) len, p = 0;
  guint64 ops = 0;

  if (!check_text (text, n, error))
    return NULL;

  while (p < n) {
    char c = text[p];
    gsize wl;
    if (c == '\\') {
      if (p + 1 < n && strchr ("()[]\\", text[p + 1]) != NULL) {
        segment_add (res, text + p + 1, 1, 1.0);
        p += 2;
      } else {
        segment_add (res, "", 0, 1.0);   /* a lone backslash: text[1:] of "\" */
        p++;
      }
    } else if (c == '(' || c == '[') {
      guint at = res->len;
      g_array_append_val (c == '(' ? round : square, at);
      p++;
    } else if (c == ':' && (wl = weight_match (text + p, n - p)) > 0) {
      if (round->len > 0) {
        double w;
        if (!py_float (text + p + 1, wl - 2, &w)) {
          g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                       "prompt: weight '%.*s' at byte %" G_GSIZE_FORMAT " is not a number",
                       (int) (wl - 2), text + p + 1, p + 1);
          return NULL;
        }
        if (!multiply_range (res, g_array_index (round, guint, round->len - 1), w, &ops, error))
          return NULL;
        g_array_set_size (round, round->len - 1);
      } else {
        append_split_break (res, text + p, wl);
      }
      p += wl;
    } else if ((c == ')' && round->len > 0) || (c == ']' && square->len > 0)) {
      GArray *stack = c == ')' ? round : square;
      if (!multiply_range (res, g_array_index (stack, guint, stack->len - 1),
                           c == ')' ? round_mult : square_mult, &ops, error))
        return NULL;
      g_array_set_size (stack, stack->len - 1);
      p++;
    } else if (c == ')' || c == ']' || c == ':') {
      append_split_break (res, text + p, 1);
      p++;
    } else {
      gsize q = p;
      while (q < n && strchr ("\\()[]:", text[q]) == NULL)
        q++;
      append_split_break (res, text + p, q - p);
      p = q;
    }
  }
  for (guint i = 0; i < round->len; i++)
    if (!multiply_range (res, g_array_index (round, guint, i), round_mult, &ops, error))
      return NULL;
  for (guint i = 0; i < square->len; i++)
    if (!multiply_range (res, g_array_index (square, guint, i), square_mult, &ops, error))
      return NULL;
  if (res->len == 0)
    segment_add (res, "", 0, 1.0);

  /* merge runs of identical weights (==, so 0.0 and -0.0 merge and NaN never does); linear */
  g_autoptr(GArray) merged = segments_new ();
  g_autoptr(GString) run = g_string_new (NULL);
  for (guint i = 0; i < res->len;) {
    const double w = g_array_index (res, EaselPromptSegment, i).weight;
    guint j = i + 1;
    g_string_assign (run, g_array_index (res, EaselPromptSegment, i).text);
    for (; j < res->len && g_array_index (res, EaselPromptSegment, j).weight == w; j++)
      g_string_append (run, g_array_index (res, EaselPromptSegment, j).text);
    segment_add (merged, run->str, run->len, w);
    i = j;
  }
  return g_steal_pointer (&merged);
}

/* ---------------------------------------------------------------------------------------------
 * ComfyUI. Escaped parentheses are held as the byte pairs \0\1 and \0\2 as ComfyUI does; the
 * prompt itself cannot contain NUL (check_text). */

static GString *
replace_all (const char *s, gsize n, const char *from, const char *to, gsize to_len)
{
  GString *out = g_string_sized_new (n);
  gsize i = 0;
  while (i < n) {
    if (i + 1 < n && s[i] == from[0] && s[i + 1] == from[1]) {
      g_string_append_len (out, to, to_len);
      i += 2;
    } else {
      g_string_append_c (out, s[i++]);
    }
  }
  return out;
}

static gboolean
comfy_token_weights (const char *s, gsize n, double current, guint depth, GArray *out, GError **error)
{
  g_autoptr(GArray) items = g_array_new (FALSE, FALSE, sizeof (gsize) * 2);
  gsize item_start = 0, i = 0;
  gssize nesting = 0;

  if (depth > EASEL_PROMPT_MAX_DEPTH) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "prompt: parentheses nested deeper than %d", EASEL_PROMPT_MAX_DEPTH);
    return FALSE;
  }
  /* parse_parentheses: items are byte ranges [a, b) of s */
  for (i = 0; i < n; i++) {
    if (s[i] == '(') {
      if (nesting == 0 && i > item_start) {
        gsize r[2] = { item_start, i };
        g_array_append_val (items, r);
      }
      if (nesting == 0)
        item_start = i;
      nesting++;
    } else if (s[i] == ')') {
      nesting--;
      if (nesting == 0) {
        gsize r[2] = { item_start, i + 1 };
        g_array_append_val (items, r);
        item_start = i + 1;
      }
    }
  }
  if (n > item_start) {
    gsize r[2] = { item_start, n };
    g_array_append_val (items, r);
  }

  for (guint k = 0; k < items->len; k++) {
    const gsize *r = &g_array_index (items, gsize, 2 * k);
    const char *x = s + r[0];
    gsize xn = r[1] - r[0];
    if (xn >= 2 && x[0] == '(' && x[xn - 1] == ')') {
      double weight = current * 1.1, w;
      gssize colon = -1;
      x++;
      xn -= 2;
      for (gsize j = xn; j > 0; j--)
        if (x[j - 1] == ':') {
          colon = j - 1;
          break;
        }
      if (colon > 0 && py_float (x + colon + 1, xn - colon - 1, &w)) {
        weight = w;
        xn = colon;
      }
      if (!comfy_token_weights (x, xn, weight, depth + 1, out, error))
        return FALSE;
    } else {
      g_autoptr(GString) a = replace_all (x, xn, "\0\1", ")", 1);
      g_autoptr(GString) b = replace_all (a->str, a->len, "\0\2", "(", 1);
      segment_add (out, b->str, b->len, current);
    }
  }
  return TRUE;
}

GArray *
easel_prompt_parse_comfy (const char *text, gssize len, GError **error)
{
  g_autoptr(GArray) res = segments_new ();
  gsize n = len < 0 ? strlen (text) : (gsize) len;

  if (!check_text (text, n, error))
    return NULL;
  g_autoptr(GString) a = replace_all (text, n, "\\)", "\0\1", 2);
  g_autoptr(GString) b = replace_all (a->str, a->len, "\\(", "\0\2", 2);
  if (!comfy_token_weights (b->str, b->len, 1.0, 0, res, error))
    return NULL;
  return g_steal_pointer (&res);
}

/* ---------------------------------------------------------------------------------------------
 * Chunking */

static gboolean
check_weight (const EaselPromptSegment *seg, GError **error)
{
  if (isfinite ((float) seg->weight))
    return TRUE;
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
               "prompt: the weight of '%.40s' is %g, which is not a usable number", seg->text, seg->weight);
  return FALSE;
}

typedef struct {
  gint32 ids[EASEL_CLIP_CHUNK];
  double weights[EASEL_CLIP_CHUNK];
  guint n;
} Pending;

/* next_chunk: BOS + pending (padded with EOS to 75) + EOS. */
static void
emit_a1111 (const EaselTokenizer *tok, Pending *pending, GArray *chunks)
{
  EaselPromptChunk c;
  c.ids[0] = easel_tokenizer_bos (tok);
  c.weights[0] = 1.0;
  for (guint i = 0; i < EASEL_CLIP_CHUNK; i++) {
    c.ids[1 + i] = i < pending->n ? pending->ids[i] : easel_tokenizer_eos (tok);
    c.weights[1 + i] = i < pending->n ? pending->weights[i] : 1.0;
  }
  c.ids[EASEL_CLIP_CONTEXT - 1] = easel_tokenizer_eos (tok);
  c.weights[EASEL_CLIP_CONTEXT - 1] = 1.0;
  g_array_append_val (chunks, c);
  pending->n = 0;
}

GArray *
easel_prompt_chunks_a1111 (EaselTokenizer *tok, const GArray *segments, guint comma_backtrack,
                           GError **error)
{
  return easel_prompt_chunks_a1111_full (tok, segments, comma_backtrack, NULL, NULL, error);
}

GArray *
easel_prompt_chunks_a1111_full (EaselTokenizer *tok, const GArray *segments, guint comma_backtrack,
                                EaselPromptEmbeddingFunc embedding, gpointer user_data, GError **error)
{
  g_autoptr(GArray) chunks = g_array_new (FALSE, FALSE, sizeof (EaselPromptChunk));
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  const gint32 comma = easel_tokenizer_lookup (tok, ",</w>");
  Pending pending = { .n = 0 };
  gint last_comma = -1;

  for (guint s = 0; s < segments->len; s++) {
    const EaselPromptSegment *seg = &g_array_index (segments, EaselPromptSegment, s);
    if (easel_prompt_segment_is_break (seg)) {
      emit_a1111 (tok, &pending, chunks);
      last_comma = -1;
      continue;
    }
    g_array_set_size (ids, 0);
    if (!easel_tokenizer_encode (tok, seg->text, -1, ids, error))
      return NULL;
    if (ids->len > 0 && !check_weight (seg, error))
      return NULL;
    for (guint k = 0; k < ids->len;) {
      gint32 id = g_array_index (ids, gint32, k);
      if (id == comma) {
        last_comma = pending.n;
      } else if (comma_backtrack != 0 && pending.n == EASEL_CLIP_CHUNK && last_comma != -1 &&
                 (guint) (pending.n - last_comma) <= comma_backtrack) {
        /* the tokens after the last comma move to the next chunk */
        Pending moved = { .n = pending.n - (last_comma + 1) };
        memcpy (moved.ids, pending.ids + last_comma + 1, moved.n * sizeof (gint32));
        memcpy (moved.weights, pending.weights + last_comma + 1, moved.n * sizeof (double));
        pending.n = last_comma + 1;
        emit_a1111 (tok, &pending, chunks);
        last_comma = -1;
        pending = moved;
      }
      if (pending.n == EASEL_CLIP_CHUNK) {
        emit_a1111 (tok, &pending, chunks);
        last_comma = -1;
      }
      gint32 first_id = 0;
      guint n_vectors = 0;
      guint covered = embedding ? embedding (user_data, (const gint32 *) ids->data, ids->len, k, &first_id,
                                             &n_vectors) : 0;
      if (covered == 0) {
        pending.ids[pending.n] = id;
        pending.weights[pending.n] = seg->weight;
        pending.n++;
        k++;
        continue;
      }
      if (n_vectors > EASEL_CLIP_CHUNK) {
        g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                     "prompt: an embedding in '%.40s' has %u vectors, more than the %d tokens of a chunk", seg->text,
                     n_vectors, EASEL_CLIP_CHUNK);
        return NULL;
      }
      if (pending.n + n_vectors > EASEL_CLIP_CHUNK) {
        emit_a1111 (tok, &pending, chunks);
        last_comma = -1;
      }
      for (guint v = 0; v < n_vectors; v++) {
        pending.ids[pending.n] = first_id + (gint32) v;
        pending.weights[pending.n] = seg->weight;
        pending.n++;
      }
      k += MIN (covered, ids->len - k);
    }
  }
  if (pending.n > 0 || chunks->len == 0)
    emit_a1111 (tok, &pending, chunks);
  return g_steal_pointer (&chunks);
}

typedef struct {
  GArray *chunks;      /* EaselPromptChunk */
  guint fill;          /* entries used in the last chunk */
} Batches;

static void
batch_add (Batches *b, gint32 id, double w)
{
  EaselPromptChunk *c = &g_array_index (b->chunks, EaselPromptChunk, b->chunks->len - 1);
  c->ids[b->fill] = id;
  c->weights[b->fill] = w;
  b->fill++;
}

static void
batch_new (Batches *b, gint32 bos)
{
  EaselPromptChunk c = { { 0 } };
  g_array_append_val (b->chunks, c);
  b->fill = 0;
  batch_add (b, bos, 1.0);
}

GArray *
easel_prompt_chunks_comfy (EaselTokenizer *tok, const GArray *segments, gint32 pad,
                           EaselTokenizeFlags flags, GError **error)
{
  g_autoptr(GArray) groups = g_array_new (FALSE, FALSE, sizeof (guint) * 2);   /* [start, end) in ids */
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_autoptr(GArray) weights = g_array_new (FALSE, FALSE, sizeof (double));
  const gint32 bos = easel_tokenizer_bos (tok), eos = easel_tokenizer_eos (tok);
  const guint max_length = EASEL_CLIP_CONTEXT, max_word_length = 8;
  Batches b = { g_array_new (FALSE, FALSE, sizeof (EaselPromptChunk)), 0 };
  g_autoptr(GArray) chunks = b.chunks;

  /* each segment is split before " embedding:" / "\nembedding:" (the space or newline is dropped);
   * each non-empty word is tokenized on its own and forms one group */
  for (guint s = 0; s < segments->len; s++) {
    const EaselPromptSegment *seg = &g_array_index (segments, EaselPromptSegment, s);
    const char *t = seg->text, *end = t + strlen (t), *word = t;
    while (word <= end) {
      const char *cut = word, *next;
      for (;;) {
        cut = strstr (cut, "embedding:");
        if (cut == NULL || (cut > word && (cut[-1] == ' ' || cut[-1] == '\n')))
          break;
        cut++;
      }
      next = cut ? cut : end + 1;
      const char *wend = cut ? cut - 1 : end;
      if (wend > word) {
        guint r[2] = { ids->len, 0 };
        if (!easel_tokenizer_encode_full (tok, word, wend - word, flags, ids, error))
          return NULL;
        r[1] = ids->len;
        if (r[1] > r[0] && !check_weight (seg, error))
          return NULL;
        for (guint k = r[0]; k < r[1]; k++)
          g_array_append_val (weights, seg->weight);
        g_array_append_val (groups, r);
      }
      word = next;
    }
  }

  batch_new (&b, bos);
  for (guint gi = 0; gi < groups->len; gi++) {
    guint start = g_array_index (groups, guint, 2 * gi), stop = g_array_index (groups, guint, 2 * gi + 1);
    gboolean is_large = stop - start >= max_word_length;
    while (stop > start) {
      if ((stop - start) + b.fill > max_length - 1) {
        guint remaining = max_length - b.fill - 1;
        if (is_large) {
          for (guint k = 0; k < remaining; k++, start++)
            batch_add (&b, g_array_index (ids, gint32, start), g_array_index (weights, double, start));
          batch_add (&b, eos, 1.0);
        } else {
          batch_add (&b, eos, 1.0);
          for (guint k = 0; k < remaining; k++)
            batch_add (&b, pad, 1.0);
        }
        batch_new (&b, bos);
      } else {
        for (; start < stop; start++)
          batch_add (&b, g_array_index (ids, gint32, start), g_array_index (weights, double, start));
      }
    }
  }
  batch_add (&b, eos, 1.0);
  while (b.fill < max_length)
    batch_add (&b, pad, 1.0);
  return g_steal_pointer (&chunks);
}

void
easel_prompt_chunk_repad (EaselPromptChunk *chunk, gint32 eos, gint32 pad)
{
  guint i = 0;
  while (i < EASEL_CLIP_CONTEXT && chunk->ids[i] != eos)
    i++;
  for (i++; i < EASEL_CLIP_CONTEXT; i++)
    chunk->ids[i] = pad;
}
