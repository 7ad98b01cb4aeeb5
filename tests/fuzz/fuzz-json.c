/* tests/fuzz/fuzz-json.c: the JSON reader on arbitrary bytes; every value of a parsed tree is visited. */
#include "engine/json.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static gsize
visit (const EaselJson *v)
{
  gsize n = 1, len;
  double d;
  gint64 i;
  guint64 u;
  const char *s = easel_json_string (v, &len);
  if (s)
    n += len && s[len - 1] == 'x';
  n += easel_json_double (v, &d) + easel_json_int64 (v, &i) + easel_json_uint64 (v, &u);
  for (gsize k = 0; k < easel_json_length (v); k++) {
    const char *key = easel_json_key_at (v, k);
    if (key)
      g_assert (easel_json_get (v, key) != NULL);
    n += visit (easel_json_at (v, k));
  }
  return n;
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  GError *error = NULL;
  EaselJson *v = easel_json_parse ((const char *) data, size, &error);
  if (v) {
    visit (v);
    easel_json_free (v);
  } else {
    g_assert (error != NULL);
    g_error_free (error);
  }
  return 0;
}
