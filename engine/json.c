/* engine/json.c: strict JSON (RFC 8259) into a read-only tree.
 *
 * Untrusted input: strings must be valid UTF-8 (escapes included: lone surrogates are refused),
 * nesting is capped at EASEL_JSON_MAX_DEPTH so a hostile header cannot exhaust the stack, and the
 * only allocations are proportional to the input already in memory. */
#include "json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

struct _EaselJson {
  EaselJsonType type;
  union {
    gboolean b;
    struct { double value; const char *text; gsize len; } num;   /* text points into num_text */
    struct { char *s; gsize len; } str;
    struct { EaselJson **items; char **keys; gsize n; } list;     /* keys only for objects */
  } u;
};

typedef struct {
  const char *p, *end, *start;
  GError **error;
} Parser;

static gboolean
fail (Parser *ps, const char *what)
{
  g_set_error (ps->error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "JSON: %s at byte %" G_GSIZE_FORMAT,
               what, (gsize) (ps->p - ps->start));
  return FALSE;
}

static void
skip_ws (Parser *ps)
{
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static void
value_free (EaselJson *v)
{
  if (v == NULL)
    return;
  switch (v->type) {
  case EASEL_JSON_STRING:
    g_free (v->u.str.s);
    break;
  case EASEL_JSON_NUMBER:
    g_free ((char *) v->u.num.text);
    break;
  case EASEL_JSON_ARRAY:
  case EASEL_JSON_OBJECT:
    for (gsize i = 0; i < v->u.list.n; i++) {
      value_free (v->u.list.items[i]);
      if (v->u.list.keys)
        g_free (v->u.list.keys[i]);
    }
    g_free (v->u.list.items);
    g_free (v->u.list.keys);
    break;
  case EASEL_JSON_NULL:
  case EASEL_JSON_BOOL:
  default:
    break;
  }
  g_free (v);
}

void
easel_json_free (EaselJson *root)
{
  value_free (root);
}

static int
hex4 (const char *p)
{
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int c = p[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}

/* Parses a string at ps->p (which is at '"'); returns a NUL-terminated copy and its length. */
static char *
parse_string (Parser *ps, gsize *len_out)
{
  const char *p = ps->p + 1;
  GString *s = NULL;
  const char *run = p;

  for (;;) {
    if (p >= ps->end) {
      ps->p = p;
      fail (ps, "unterminated string");
      goto bad;
    }
    unsigned char c = (unsigned char) *p;
    if (c == '"')
      break;
    if (c < 0x20) {
      ps->p = p;
      fail (ps, "control character in string");
      goto bad;
    }
    if (c != '\\') {
      p++;
      continue;
    }
    if (s == NULL)
      s = g_string_sized_new ((gsize) (p - run) + 16);
    g_string_append_len (s, run, p - run);
    if (p + 1 >= ps->end) {
      ps->p = p;
      fail (ps, "unterminated escape");
      goto bad;
    }
    switch (p[1]) {
    case '"': g_string_append_c (s, '"'); p += 2; break;
    case '\\': g_string_append_c (s, '\\'); p += 2; break;
    case '/': g_string_append_c (s, '/'); p += 2; break;
    case 'b': g_string_append_c (s, '\b'); p += 2; break;
    case 'f': g_string_append_c (s, '\f'); p += 2; break;
    case 'n': g_string_append_c (s, '\n'); p += 2; break;
    case 'r': g_string_append_c (s, '\r'); p += 2; break;
    case 't': g_string_append_c (s, '\t'); p += 2; break;
    case 'u': {
      int cp, lo;
      if (ps->end - p < 6 || (cp = hex4 (p + 2)) < 0) {
        ps->p = p;
        fail (ps, "bad \\u escape");
        goto bad;
      }
      p += 6;
      if (cp >= 0xd800 && cp <= 0xdbff) {
        if (ps->end - p < 6 || p[0] != '\\' || p[1] != 'u' || (lo = hex4 (p + 2)) < 0xdc00 || lo > 0xdfff) {
          ps->p = p;
          fail (ps, "lone surrogate in \\u escape");
          goto bad;
        }
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        p += 6;
      } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        ps->p = p;
        fail (ps, "lone surrogate in \\u escape");
        goto bad;
      }
      g_string_append_unichar (s, (gunichar) cp);
      break;
    }
    default:
      ps->p = p;
      fail (ps, "bad escape");
      goto bad;
    }
    run = p;
  }

  char *out;
  gsize len;
  if (s == NULL) {
    len = (gsize) (p - run);
    out = g_strndup (run, len);
  } else {
    g_string_append_len (s, run, p - run);
    len = s->len;
    out = g_string_free (s, FALSE);
    s = NULL;
  }
  if (!g_utf8_validate_len (out, len, NULL)) {
    g_free (out);
    ps->p = p;
    fail (ps, "string is not valid UTF-8");
    return NULL;
  }
  ps->p = p + 1;
  *len_out = len;
  return out;

bad:
  if (s)
    g_string_free (s, TRUE);
  return NULL;
}

static EaselJson *parse_value (Parser *ps, int depth);

static EaselJson *
parse_number (Parser *ps)
{
  const char *p = ps->p, *b = p;
  if (p < ps->end && *p == '-')
    p++;
  /* Python's json module writes NaN, Infinity and -Infinity (diffusers configs hold them). */
  for (guint i = 0; i < 2; i++) {
    const char *word = i ? "Infinity" : "NaN";
    gsize n = strlen (word);
    if ((gsize) (ps->end - p) >= n && memcmp (p, word, n) == 0 && (i == 1 || p == b)) {
      p += n;
      goto make;
    }
  }
  if (p >= ps->end || !g_ascii_isdigit (*p)) {
    ps->p = p;
    fail (ps, "bad number");
    return NULL;
  }
  if (*p == '0')
    p++;
  else
    while (p < ps->end && g_ascii_isdigit (*p))
      p++;
  if (p < ps->end && *p == '.') {
    p++;
    if (p >= ps->end || !g_ascii_isdigit (*p)) {
      ps->p = p;
      fail (ps, "bad number");
      return NULL;
    }
    while (p < ps->end && g_ascii_isdigit (*p))
      p++;
  }
  if (p < ps->end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < ps->end && (*p == '+' || *p == '-'))
      p++;
    if (p >= ps->end || !g_ascii_isdigit (*p)) {
      ps->p = p;
      fail (ps, "bad number");
      return NULL;
    }
    while (p < ps->end && g_ascii_isdigit (*p))
      p++;
  }
make:;
  EaselJson *v = g_new0 (EaselJson, 1);
  v->type = EASEL_JSON_NUMBER;
  v->u.num.len = (gsize) (p - b);
  v->u.num.text = g_strndup (b, v->u.num.len);
  v->u.num.value = g_ascii_strtod (v->u.num.text, NULL);   /* correctly rounded; +-inf on overflow */
  ps->p = p;
  return v;
}

static gboolean
literal (Parser *ps, const char *word)
{
  gsize n = strlen (word);
  if ((gsize) (ps->end - ps->p) < n || memcmp (ps->p, word, n) != 0)
    return fail (ps, "unexpected character");
  ps->p += n;
  return TRUE;
}

static EaselJson *
parse_list (Parser *ps, int depth, gboolean object)
{
  GPtrArray *items = g_ptr_array_new ();
  GPtrArray *keys = object ? g_ptr_array_new_with_free_func (g_free) : NULL;
  char close = object ? '}' : ']';

  ps->p++;   /* '[' or '{' */
  skip_ws (ps);
  if (ps->p < ps->end && *ps->p == close) {
    ps->p++;
    goto done;
  }
  for (;;) {
    skip_ws (ps);
    if (object) {
      gsize klen;
      char *key;
      if (ps->p >= ps->end || *ps->p != '"') {
        fail (ps, "expected a member name");
        goto bad;
      }
      if ((key = parse_string (ps, &klen)) == NULL)
        goto bad;
      if (strlen (key) != klen) {
        g_free (key);
        fail (ps, "member name contains NUL");
        goto bad;
      }
      g_ptr_array_add (keys, key);
      skip_ws (ps);
      if (ps->p >= ps->end || *ps->p != ':') {
        fail (ps, "expected ':'");
        goto bad;
      }
      ps->p++;
    }
    EaselJson *v = parse_value (ps, depth + 1);
    if (v == NULL)
      goto bad;
    g_ptr_array_add (items, v);
    skip_ws (ps);
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      continue;
    }
    if (ps->p < ps->end && *ps->p == close) {
      ps->p++;
      break;
    }
    fail (ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    goto bad;
  }
done:;
  EaselJson *r = g_new0 (EaselJson, 1);
  r->type = object ? EASEL_JSON_OBJECT : EASEL_JSON_ARRAY;
  r->u.list.n = items->len;
  r->u.list.items = (EaselJson **) g_ptr_array_free (items, FALSE);
  r->u.list.keys = keys ? (char **) g_ptr_array_free (keys, FALSE) : NULL;
  return r;

bad:
  for (guint i = 0; i < items->len; i++)
    value_free (items->pdata[i]);
  g_ptr_array_free (items, TRUE);
  if (keys)
    g_ptr_array_free (keys, TRUE);
  return NULL;
}

static EaselJson *
parse_value (Parser *ps, int depth)
{
  EaselJson *v;

  if (depth > EASEL_JSON_MAX_DEPTH) {
    fail (ps, "nested too deeply");
    return NULL;
  }
  skip_ws (ps);
  if (ps->p >= ps->end) {
    fail (ps, "unexpected end");
    return NULL;
  }
  switch (*ps->p) {
  case '{':
    return parse_list (ps, depth, TRUE);
  case '[':
    return parse_list (ps, depth, FALSE);
  case '"': {
    gsize len;
    char *s = parse_string (ps, &len);
    if (s == NULL)
      return NULL;
    v = g_new0 (EaselJson, 1);
    v->type = EASEL_JSON_STRING;
    v->u.str.s = s;
    v->u.str.len = len;
    return v;
  }
  case 't':
  case 'f': {
    gboolean b = *ps->p == 't';
    if (!literal (ps, b ? "true" : "false"))
      return NULL;
    v = g_new0 (EaselJson, 1);
    v->type = EASEL_JSON_BOOL;
    v->u.b = b;
    return v;
  }
  case 'n':
    if (!literal (ps, "null"))
      return NULL;
    v = g_new0 (EaselJson, 1);
    v->type = EASEL_JSON_NULL;
    return v;
  default:
    return parse_number (ps);
  }
}

EaselJson *
easel_json_parse (const char *text, gsize len, GError **error)
{
  Parser ps = { text, text + len, text, error };
  EaselJson *v;

  g_return_val_if_fail (text != NULL || len == 0, NULL);
  if (len >= 3 && memcmp (text, "\xef\xbb\xbf", 3) == 0)   /* tolerate a UTF-8 BOM */
    ps.p += 3;
  v = parse_value (&ps, 0);
  if (v == NULL)
    return NULL;
  skip_ws (&ps);
  if (ps.p != ps.end) {
    fail (&ps, "trailing characters after the value");
    value_free (v);
    return NULL;
  }
  return v;
}

EaselJson *
easel_json_parse_file (const char *path, gsize max_bytes, GError **error)
{
  g_autoptr(GMappedFile) mf = NULL;
  GError *local = NULL;
  EaselJson *v;

  if (max_bytes == 0)
    max_bytes = 256u << 20;
  mf = g_mapped_file_new (path, FALSE, &local);
  if (mf == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s", local->message);
    g_error_free (local);
    return NULL;
  }
  if (g_mapped_file_get_length (mf) > max_bytes) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: larger than %" G_GSIZE_FORMAT " bytes",
                 path, max_bytes);
    return NULL;
  }
  v = easel_json_parse (g_mapped_file_get_contents (mf), g_mapped_file_get_length (mf), &local);
  if (v == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: %s", path, local->message);
    g_error_free (local);
  }
  return v;
}

EaselJsonType
easel_json_type (const EaselJson *v)
{
  return v ? v->type : EASEL_JSON_NULL;
}

const char *
easel_json_type_name (EaselJsonType t)
{
  static const char *const names[] = { "null", "boolean", "number", "string", "array", "object" };
  return (guint) t < G_N_ELEMENTS (names) ? names[t] : "?";
}

gsize
easel_json_length (const EaselJson *v)
{
  return v && (v->type == EASEL_JSON_ARRAY || v->type == EASEL_JSON_OBJECT) ? v->u.list.n : 0;
}

const EaselJson *
easel_json_at (const EaselJson *v, gsize i)
{
  return i < easel_json_length (v) ? v->u.list.items[i] : NULL;
}

const char *
easel_json_key_at (const EaselJson *v, gsize i)
{
  return v && v->type == EASEL_JSON_OBJECT && i < v->u.list.n ? v->u.list.keys[i] : NULL;
}

const EaselJson *
easel_json_get (const EaselJson *v, const char *key)
{
  if (v == NULL || v->type != EASEL_JSON_OBJECT)
    return NULL;
  for (gsize i = 0; i < v->u.list.n; i++)
    if (strcmp (v->u.list.keys[i], key) == 0)
      return v->u.list.items[i];
  return NULL;
}

const EaselJson *
easel_json_path (const EaselJson *v, const char *path)
{
  const char *p = path;
  while (v && *p) {
    if (*p == '.') {
      p++;
    } else if (*p == '[') {
      char *end;
      guint64 i = g_ascii_strtoull (p + 1, &end, 10);
      if (end == p + 1 || *end != ']')
        return NULL;
      v = easel_json_type (v) == EASEL_JSON_ARRAY ? easel_json_at (v, i) : NULL;
      p = end + 1;
    } else {
      gsize n = strcspn (p, ".[");
      g_autofree char *key = g_strndup (p, n);
      v = easel_json_get (v, key);
      p += n;
    }
  }
  return v;
}

gboolean
easel_json_bool (const EaselJson *v, gboolean *out)
{
  if (v == NULL || v->type != EASEL_JSON_BOOL)
    return FALSE;
  *out = v->u.b;
  return TRUE;
}

gboolean
easel_json_double (const EaselJson *v, double *out)
{
  if (v == NULL || v->type != EASEL_JSON_NUMBER)
    return FALSE;
  *out = v->u.num.value;
  return TRUE;
}

static gboolean
is_plain_integer (const EaselJson *v)
{
  return v && v->type == EASEL_JSON_NUMBER && strpbrk (v->u.num.text, ".eE") == NULL;
}

gboolean
easel_json_int64 (const EaselJson *v, gint64 *out)
{
  char *end;
  gint64 r;
  if (!is_plain_integer (v))
    return FALSE;
  errno = 0;
  r = g_ascii_strtoll (v->u.num.text, &end, 10);
  if (errno != 0 || *end != '\0')
    return FALSE;
  *out = r;
  return TRUE;
}

gboolean
easel_json_uint64 (const EaselJson *v, guint64 *out)
{
  char *end;
  guint64 r;
  if (!is_plain_integer (v) || v->u.num.text[0] == '-')
    return FALSE;
  errno = 0;
  r = g_ascii_strtoull (v->u.num.text, &end, 10);
  if (errno != 0 || *end != '\0')
    return FALSE;
  *out = r;
  return TRUE;
}

const char *
easel_json_string (const EaselJson *v, gsize *len)
{
  if (v == NULL || v->type != EASEL_JSON_STRING)
    return NULL;
  if (len)
    *len = v->u.str.len;
  return v->u.str.s;
}

const char *
easel_json_get_string (const EaselJson *v, const char *key, const char *fallback)
{
  const char *s = easel_json_string (easel_json_get (v, key), NULL);
  return s ? s : fallback;
}

double
easel_json_get_double (const EaselJson *v, const char *key, double fallback)
{
  double d;
  return easel_json_double (easel_json_get (v, key), &d) ? d : fallback;
}

gint64
easel_json_get_int (const EaselJson *v, const char *key, gint64 fallback)
{
  gint64 i;
  return easel_json_int64 (easel_json_get (v, key), &i) ? i : fallback;
}

void
easel_json_append_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
    switch (*p) {
    case '"': g_string_append (out, "\\\""); break;
    case '\\': g_string_append (out, "\\\\"); break;
    case '\n': g_string_append (out, "\\n"); break;
    case '\r': g_string_append (out, "\\r"); break;
    case '\t': g_string_append (out, "\\t"); break;
    case '\b': g_string_append (out, "\\b"); break;   /* as Python's json.dumps */
    case '\f': g_string_append (out, "\\f"); break;
    default:
      if (*p < 0x20)
        g_string_append_printf (out, "\\u%04x", *p);
      else
        g_string_append_c (out, (char) *p);
    }
  }
  g_string_append_c (out, '"');
}
