/* tests/test-json.c: the strict JSON reader. */
#include <math.h>
#include <string.h>

#include "engine/json.h"
#include "testutil.h"

static EaselJson *
parse (const char *text, GError **error)
{
  return easel_json_parse (text, strlen (text), error);
}

static void
test_values (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselJson) v = parse (" {\"a\": [1, -2.5e3, true, null, \"x\\u00e9\\ud83d\\ude00\"], \"b\": {\"c\": 18446744073709551615}} ", &error);
  gint64 i;
  guint64 u;
  double d;
  gboolean b;
  gsize len;

  g_assert_no_error (error);
  g_assert_cmpint (easel_json_type (v), ==, EASEL_JSON_OBJECT);
  g_assert_cmpuint (easel_json_length (v), ==, 2);
  g_assert_cmpstr (easel_json_key_at (v, 1), ==, "b");
  g_assert_true (easel_json_int64 (easel_json_path (v, "a[0]"), &i));
  g_assert_cmpint (i, ==, 1);
  g_assert_false (easel_json_int64 (easel_json_path (v, "a[1]"), &i));   /* has a fraction */
  g_assert_true (easel_json_double (easel_json_path (v, "a[1]"), &d));
  g_assert_cmpfloat (d, ==, -2500.0);
  g_assert_true (easel_json_bool (easel_json_path (v, "a[2]"), &b) && b);
  g_assert_cmpint (easel_json_type (easel_json_path (v, "a[3]")), ==, EASEL_JSON_NULL);
  g_assert_cmpstr (easel_json_string (easel_json_path (v, "a[4]"), &len), ==, "x\xc3\xa9\xf0\x9f\x98\x80");
  g_assert_cmpuint (len, ==, 7);
  g_assert_true (easel_json_uint64 (easel_json_path (v, "b.c"), &u));
  g_assert_cmpuint (u, ==, G_MAXUINT64);
  g_assert_false (easel_json_int64 (easel_json_path (v, "b.c"), &i));    /* does not fit */
  g_assert_null (easel_json_path (v, "a[5]"));
  g_assert_null (easel_json_path (v, "zz"));
}

static void
test_exact_doubles (void)
{
  g_autoptr(EaselJson) v = parse ("[1.5730000000000004, 0.1]", NULL);
  double d;
  g_assert_true (easel_json_double (easel_json_at (v, 0), &d));
  g_assert_cmpfloat (d, ==, 1.5730000000000004);
  g_assert_true (easel_json_double (easel_json_at (v, 1), &d));
  g_assert_cmpfloat (d, ==, 0.1);
}

static void
test_python_extensions (void)
{
  g_autoptr(EaselJson) v = parse ("[NaN, Infinity, -Infinity]", NULL);
  double d;
  gint64 i;
  g_assert_nonnull (v);
  g_assert_true (easel_json_double (easel_json_at (v, 0), &d) && isnan (d));
  g_assert_true (easel_json_double (easel_json_at (v, 1), &d) && isinf (d) && d > 0);
  g_assert_true (easel_json_double (easel_json_at (v, 2), &d) && isinf (d) && d < 0);
  g_assert_false (easel_json_int64 (easel_json_at (v, 1), &i));
}

static void
test_rejects (void)
{
  static const char *const bad[] = {
    "", "{", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "01", "1.", "-", ".5", "1e", "tru", "nul",
    "\"abc", "\"\\x\"", "\"\\ud800\"", "\"\\udc00x\"", "\"a\nb\"", "[1] 2", "{\"a\\u0000b\":1}",
    "\"\xff\"", "\"\xc3\"", "{1:2}", "[\"\\u12\"]", "-NaN", "Inf", "nan",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(EaselJson) v = parse (bad[i], &error);
    if (v != NULL)
      g_error ("accepted bad JSON: %s", bad[i]);
    g_assert_nonnull (error);
    g_assert_nonnull (strstr (error->message, "at byte"));
  }
}

static void
test_depth_limit (void)
{
  g_autoptr(GString) s = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  for (int i = 0; i < 100000; i++)
    g_string_append_c (s, '[');
  g_autoptr(EaselJson) v = easel_json_parse (s->str, s->len, &error);
  g_assert_null (v);
  g_assert_nonnull (strstr (error->message, "nested too deeply"));

  g_string_truncate (s, 0);
  for (int i = 0; i < EASEL_JSON_MAX_DEPTH; i++)
    g_string_append_c (s, '[');
  for (int i = 0; i < EASEL_JSON_MAX_DEPTH; i++)
    g_string_append_c (s, ']');
  g_autoptr(EaselJson) ok = easel_json_parse (s->str, s->len, NULL);
  g_assert_nonnull (ok);
}

static void
test_escape_roundtrip (void)
{
  const char *s = "quote\" back\\ nl\n tab\t ctl\x01 \xc3\xa9";
  g_autoptr(GString) out = g_string_new (NULL);
  easel_json_append_string (out, s);
  g_autoptr(EaselJson) v = easel_json_parse (out->str, out->len, NULL);
  g_assert_cmpstr (easel_json_string (v, NULL), ==, s);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/json/values", test_values);
  g_test_add_func ("/json/exact-doubles", test_exact_doubles);
  g_test_add_func ("/json/python-extensions", test_python_extensions);
  g_test_add_func ("/json/rejects", test_rejects);
  g_test_add_func ("/json/depth-limit", test_depth_limit);
  g_test_add_func ("/json/escape-roundtrip", test_escape_roundtrip);
  return g_test_run ();
}
