/* engine/json.h: a small strict JSON reader (RFC 8259) for checkpoint headers, tokenizer files,
 * configs and golden manifests. Input is untrusted: UTF-8 is validated, nesting is limited to
 * EASEL_JSON_MAX_DEPTH, and every error names the byte offset. Values are read-only trees owned
 * by the root. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define EASEL_JSON_MAX_DEPTH 64

typedef enum {
  EASEL_JSON_NULL,
  EASEL_JSON_BOOL,
  EASEL_JSON_NUMBER,
  EASEL_JSON_STRING,
  EASEL_JSON_ARRAY,
  EASEL_JSON_OBJECT,
} EaselJsonType;

typedef struct _EaselJson EaselJson;

/* Parses len bytes of text (need not be NUL-terminated). transfer full. */
EaselJson *easel_json_parse (const char *text, gsize len, GError **error);
/* Reads and parses a whole file (at most max_bytes; 0 means 256 MiB). */
EaselJson *easel_json_parse_file (const char *path, gsize max_bytes, GError **error);
void       easel_json_free (EaselJson *root);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselJson, easel_json_free)

EaselJsonType easel_json_type (const EaselJson *v);   /* NULL v reads as EASEL_JSON_NULL */
const char   *easel_json_type_name (EaselJsonType t);
/* Elements of an array or members of an object; 0 for anything else or NULL. */
gsize         easel_json_length (const EaselJson *v);
/* Element i of an array, or the value of member i of an object; NULL when out of range. */
const EaselJson *easel_json_at (const EaselJson *v, gsize i);
/* Key of member i of an object (NUL-terminated; keys with an embedded NUL are refused at parse). */
const char   *easel_json_key_at (const EaselJson *v, gsize i);
/* Value of the first member named key; NULL when v is no object or has no such member. */
const EaselJson *easel_json_get (const EaselJson *v, const char *key);
/* Follows a path of member names and [indices]: "cases[3].outputs.ids"; NULL when absent. */
const EaselJson *easel_json_path (const EaselJson *v, const char *path);

/* Typed reads; each returns FALSE (and leaves *out alone) when the type does not fit. */
gboolean easel_json_bool   (const EaselJson *v, gboolean *out);
gboolean easel_json_double (const EaselJson *v, double *out);
/* Exact integers: the number has no fraction or exponent and fits the type. */
gboolean easel_json_int64  (const EaselJson *v, gint64 *out);
gboolean easel_json_uint64 (const EaselJson *v, guint64 *out);
/* String value (NUL-terminated, may hold NULs before len); NULL when v is no string. */
const char *easel_json_string (const EaselJson *v, gsize *len);

/* Convenience with defaults for trusted files (configs, manifests). */
const char *easel_json_get_string (const EaselJson *v, const char *key, const char *fallback);
double      easel_json_get_double (const EaselJson *v, const char *key, double fallback);
gint64      easel_json_get_int (const EaselJson *v, const char *key, gint64 fallback);

/* Appends s as a quoted JSON string (UTF-8 kept, control characters escaped). */
void easel_json_append_string (GString *out, const char *s);

G_END_DECLS
