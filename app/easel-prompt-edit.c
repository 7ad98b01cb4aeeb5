/* app/easel-prompt-edit.c: A1111's Ctrl+Up/Down weight editing and the highlighting spans
 * (easel-prompt-edit.h). Offsets are bytes; every character the rules look at is ASCII, so byte
 * offsets give the same boundaries as the browser's UTF-16 ones. */
#include "easel-prompt-edit.h"

#include <math.h>
#include <string.h>

#include "prompt.h"

/* ---- JavaScript numbers --------------------------------------------------------------------- */

char *
easel_js_number_to_string (double v)
{
  char buf[64];
  int prec;

  if (isnan (v))
    return g_strdup ("NaN");
  if (isinf (v))
    return g_strdup (v > 0 ? "Infinity" : "-Infinity");
  if (v == 0)
    return g_strdup ("0");
  /* the shortest digits that read back exactly, as JS and Python both choose them */
  for (prec = 1; prec <= 17; prec++) {
    g_snprintf (buf, sizeof buf, "%.*e", prec - 1, v);
    if (g_ascii_strtod (buf, NULL) == v)
      break;
  }
  /* buf = [-]d[.ddd]e[+-]xx: split digits and exponent */
  const char *p = buf;
  gboolean neg = *p == '-';
  if (neg)
    p++;
  GString *digits = g_string_new (NULL);
  for (; *p != 'e'; p++)
    if (*p != '.')
      g_string_append_c (digits, *p);
  int e = atoi (p + 1);          /* v = 0.d1d2... * 10^(e+1) */
  int k = (int) digits->len;
  int n = e + 1;                 /* ECMA-262 Number::toString: digits s, k of them, v = s * 10^(n-k) */
  GString *out = g_string_new (neg ? "-" : "");
  if (k <= n && n <= 21) {
    g_string_append (out, digits->str);
    for (int i = k; i < n; i++)
      g_string_append_c (out, '0');
  } else if (0 < n && n <= 21) {
    g_string_append_len (out, digits->str, n);
    g_string_append_c (out, '.');
    g_string_append (out, digits->str + n);
  } else if (-6 < n && n <= 0) {
    g_string_append (out, "0.");
    for (int i = 0; i < -n; i++)
      g_string_append_c (out, '0');
    g_string_append (out, digits->str);
  } else {
    g_string_append_c (out, digits->str[0]);
    if (k > 1) {
      g_string_append_c (out, '.');
      g_string_append (out, digits->str + 1);
    }
    g_string_append_printf (out, "e%c%d", n - 1 >= 0 ? '+' : '-', ABS (n - 1));
  }
  g_string_free (digits, TRUE);
  return g_string_free (out, FALSE);
}

/* JavaScript's parseFloat on s[0..len): leading whitespace, then the longest decimal literal
 * prefix; FALSE where it gives NaN. ("Infinity" is not a weight anyone types.) */
static gboolean
js_parse_float (const char *s, gsize len, double *out)
{
  gsize i = 0;
  while (i < len && g_ascii_isspace (s[i]))
    i++;
  gsize start = i;
  if (i < len && (s[i] == '+' || s[i] == '-'))
    i++;
  gsize int_digits = 0, frac_digits = 0;
  while (i < len && g_ascii_isdigit (s[i]))
    i++, int_digits++;
  if (i < len && s[i] == '.') {
    i++;
    while (i < len && g_ascii_isdigit (s[i]))
      i++, frac_digits++;
    if (frac_digits == 0 && int_digits == 0)
      return FALSE;
    if (frac_digits == 0)
      i--;   /* "1." reads as 1 */
  }
  if (int_digits + frac_digits == 0)
    return FALSE;
  if (i < len && (s[i] == 'e' || s[i] == 'E')) {
    gsize j = i + 1;
    if (j < len && (s[j] == '+' || s[j] == '-'))
      j++;
    if (j < len && g_ascii_isdigit (s[j])) {
      while (j < len && g_ascii_isdigit (s[j]))
        j++;
      i = j;
    }
  }
  g_autofree char *num = g_strndup (s + start, i - start);
  *out = g_ascii_strtod (num, NULL);
  return TRUE;
}

/* ---- weight editing ------------------------------------------------------------------------- */

/* The last occurrence of c in text[0..end), or -1. */
static gssize
last_index (const char *text, gsize end, char c)
{
  for (gsize i = end; i > 0; i--)
    if (text[i - 1] == c)
      return (gssize) (i - 1);
  return -1;
}

/* The first occurrence of c in text[from..len), relative to from, or -1. */
static gssize
index_from (const char *text, gsize len, gsize from, char c)
{
  for (gsize i = from; i < len; i++)
    if (text[i] == c)
      return (gssize) (i - from);
  return -1;
}

/* JS regex /.*:-?[\d.]+/s: a ':' followed by an optional '-' and a digit or '.' somewhere. */
static gboolean
has_weight_suffix (const char *s, gsize len)
{
  for (gsize i = 0; i < len; i++) {
    if (s[i] != ':')
      continue;
    gsize j = i + 1;
    if (j < len && s[j] == '-')
      j++;
    if (j < len && (g_ascii_isdigit (s[j]) || s[j] == '.'))
      return TRUE;
  }
  return FALSE;
}

/* selectCurrentParenthesisBlock: with a bare cursor inside OPEN ... CLOSE, selects the content
 * (without its ":weight"). */
static gboolean
select_block (const char *text, gsize len, gsize *s, gsize *e, char open, char close)
{
  if (*s != *e)
    return FALSE;
  gssize before_paren = last_index (text, *s, open);
  if (before_paren == -1)
    return FALSE;
  gssize before_closing = last_index (text, *s, close);
  if (before_closing != -1 && before_closing > before_paren)
    return FALSE;
  gssize after_paren = index_from (text, len, *s, close);
  if (after_paren == -1)
    return FALSE;
  gssize after_opening = index_from (text, len, *s, open);
  if (after_opening != -1 && after_opening < after_paren)
    return FALSE;

  gsize content_start = (gsize) before_paren + 1;
  gsize content_len = *s + (gsize) after_paren - content_start;
  const char *content = text + content_start;
  *s = content_start;
  if (has_weight_suffix (content, content_len))
    *e = content_start + (gsize) last_index (content, content_len, ':');
  else
    *e = content_start + content_len;
  return TRUE;
}

static gboolean
is_delimiter (const char *text, gsize len, gssize i)
{
  /* text[i] outside the string is undefined in JS: never a delimiter */
  return i >= 0 && (gsize) i < len && strchr (EASEL_PROMPT_EDIT_DELIMITERS, text[i]) != NULL;
}

static void
select_word (const char *text, gsize len, gsize *s, gsize *e)
{
  if (*s != *e)
    return;
  while (!is_delimiter (text, len, (gssize) *s - 1) && *s > 0)
    (*s)--;
  while (!is_delimiter (text, len, (gssize) *e) && *e < len)
    (*e)++;
  while (*s < *e && text[*s] == ' ')
    (*s)++;
  while (*e > *s && text[*e - 1] == ' ')
    (*e)--;
}

char *
easel_prompt_edit_weight (const char *text, gsize *sel_start, gsize *sel_end, gboolean increase, double delta,
                          double delta_extra)
{
  g_return_val_if_fail (text != NULL && sel_start != NULL && sel_end != NULL, NULL);
  gsize len = strlen (text);
  gsize s = MIN (*sel_start, len), e = MIN (*sel_end, len);
  if (s > e) {
    gsize t = s;
    s = e;
    e = t;
  }

  if (!select_block (text, len, &s, &e, '<', '>') && !select_block (text, len, &s, &e, '(', ')')
      && !select_block (text, len, &s, &e, '[', ']'))
    select_word (text, len, &s, &e);
  *sel_start = s;
  *sel_end = e;

  GString *t = g_string_new (text);
  char close = ')';
  char start = s > 0 ? text[s - 1] : '\0';
  char end = e < len ? text[e] : '\0';

  if (start == '<') {
    close = '>';
    delta = delta_extra;
  } else if ((start == '(' && end == ')') || (start == '[' && end == ']')) {
    /* old-style emphasis: count the bracket pairs around the selection */
    gsize n = 0;
    while (s >= n + 1 && e + n < len && text[s - n - 1] == start && text[e + n] == end)
      n++;
    double w = start == '[' ? pow (1 / 1.1, (double) n) : pow (1.1, (double) n);
    w = floor (w / delta + 0.5) * delta;   /* Math.round */
    g_autofree char *ws = easel_js_number_to_string (w);
    g_autofree char *sel = g_strndup (text + s, e - s);
    g_string_truncate (t, 0);
    g_string_append_len (t, text, (gssize) (s - n));
    g_string_append_printf (t, "(%s:%s)", sel, ws);
    g_string_append (t, text + e + n);
    s = s - n + 1;
    e = e - n + 1;
  } else if (start != '(') {
    while (e > s && text[e - 1] == ' ')
      e--;
    if (s == e) {
      g_string_free (t, TRUE);
      return NULL;
    }
    g_string_insert (t, (gssize) e, ":1.0)");
    g_string_insert_c (t, (gssize) s, '(');
    s++;
    e++;
  }

  if (e >= t->len || t->str[e] != ':') {
    g_string_free (t, TRUE);
    return NULL;
  }
  gssize close_at = index_from (t->str, t->len, e + 1, close);
  gsize weight_len = (gsize) (close_at + 1);   /* 0 when there is no closing character */
  double w;
  if (weight_len == 0 || !js_parse_float (t->str + e + 1, weight_len - 1, &w)) {
    g_string_free (t, TRUE);
    return NULL;
  }
  w += increase ? delta : -delta;
  char buf[64];
  g_snprintf (buf, sizeof buf, "%.11e", w);   /* toPrecision (12) */
  w = g_ascii_strtod (buf, NULL);

  if (close == ')' && w == 1.0) {
    /* back to weight 1: drop "(" and ":w)" */
    gssize end_paren = index_from (t->str, t->len, e, ')');
    g_string_erase (t, (gssize) e, end_paren + 1);
    g_string_erase (t, (gssize) s - 1, 1);
    s--;
    e--;
  } else {
    g_autofree char *ws = easel_js_number_to_string (w);
    g_string_erase (t, (gssize) e + 1, (gssize) weight_len - 1);
    if (w == floor (w) && fabs (w) < 1e21)
      g_string_insert (t, (gssize) e + 1, ".0");   /* Number.isInteger: weight += ".0" */
    g_string_insert (t, (gssize) e + 1, ws);
  }
  *sel_start = s;
  *sel_end = e;
  return g_string_free (t, FALSE);
}

/* ---- highlighting --------------------------------------------------------------------------- */

typedef struct {
  EaselPromptSpanKind kind;
  double weight;
} ByteClass;

/* Marks which bytes A1111's re_attention tokens consume as syntax (brackets that match, weights
 * that close an open round bracket, escape backslashes) and which are text. */
static void
classify_syntax (const char *text, gsize len, gboolean *is_syntax)
{
  gsize round = 0, square = 0;
  for (gsize i = 0; i < len;) {
    char c = text[i];
    if (c == '\\') {
      if (i + 1 < len && strchr ("()[]\\", text[i + 1])) {
        is_syntax[i] = TRUE;   /* the escape; the character itself is text */
        i += 2;
      } else {
        i++;
      }
    } else if (c == '(' || c == '[') {
      is_syntax[i] = TRUE;
      if (c == '(')
        round++;
      else
        square++;
      i++;
    } else if (c == ':') {
      /* :\s*([+-]?[.\d]+)\s*\) */
      gsize j = i + 1;
      while (j < len && g_ascii_isspace (text[j]))
        j++;
      if (j < len && (text[j] == '+' || text[j] == '-'))
        j++;
      gsize num = j;
      while (j < len && (g_ascii_isdigit (text[j]) || text[j] == '.'))
        j++;
      gboolean weight = j > num;
      while (weight && j < len && g_ascii_isspace (text[j]))
        j++;
      if (weight && j < len && text[j] == ')' && round > 0) {
        for (gsize k = i; k <= j; k++)
          is_syntax[k] = TRUE;
        round--;
        i = j + 1;
      } else if (weight && j < len && text[j] == ')') {
        i = j + 1;   /* a weight with no open bracket is text, ')' included */
      } else {
        i++;
      }
    } else if (c == ')' || c == ']') {
      gsize *open = c == ')' ? &round : &square;
      if (*open > 0) {
        is_syntax[i] = TRUE;
        (*open)--;
      }
      i++;
    } else {
      i++;
    }
  }
}

GArray *
easel_prompt_spans (const char *text, GError **error)
{
  g_return_val_if_fail (text != NULL, NULL);
  gsize len = strlen (text);
  g_autoptr(GArray) segs = easel_prompt_parse_a1111 (text, (gssize) len, error);
  if (segs == NULL)
    return NULL;

  g_autofree gboolean *is_syntax = g_new0 (gboolean, len + 1);
  g_autofree ByteClass *cls = g_new0 (ByteClass, len + 1);
  classify_syntax (text, len, is_syntax);

  /* The text bytes, in order, spell the segments' texts (BREAK's surrounding whitespace aside):
   * walk both and give each text byte its segment's weight. */
  guint si = 0;
  gsize sj = 0;
  for (gsize i = 0; i < len; i++) {
    cls[i].kind = EASEL_PROMPT_SPAN_SYNTAX;
    cls[i].weight = 1.0;
    if (is_syntax[i])
      continue;
    while (si < segs->len && g_array_index (segs, EaselPromptSegment, si).text[sj] == '\0') {
      si++;
      sj = 0;
    }
    if (si >= segs->len)
      continue;
    const EaselPromptSegment *seg = &g_array_index (segs, EaselPromptSegment, si);
    if (seg->text[sj] != text[i])
      continue;   /* whitespace that BREAK consumed */
    sj++;
    if (easel_prompt_segment_is_break (seg)) {
      cls[i].kind = EASEL_PROMPT_SPAN_BREAK;
    } else {
      cls[i].kind = EASEL_PROMPT_SPAN_TEXT;
      cls[i].weight = seg->weight;
    }
  }

  GArray *spans = g_array_new (FALSE, FALSE, sizeof (EaselPromptSpan));
  for (gsize i = 0; i < len; i++) {
    EaselPromptSpan *last = spans->len ? &g_array_index (spans, EaselPromptSpan, spans->len - 1) : NULL;
    if (last && last->kind == cls[i].kind && last->weight == cls[i].weight) {
      last->end = i + 1;
    } else {
      EaselPromptSpan sp = { i, i + 1, cls[i].kind, cls[i].weight };
      g_array_append_val (spans, sp);
    }
  }
  return spans;
}
