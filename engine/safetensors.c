/* engine/safetensors.c: reading (mmap, validated) and writing .safetensors files.
 *
 * Layout: u64 little-endian N, then N bytes of JSON header, then the data area. The header maps
 * each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the
 * data area) plus an optional "__metadata__" object of strings. Checks, in order: the file holds
 * the 8-byte length; N <= 100 MiB and 8 + N <= file size; the header is well-formed JSON (depth-
 * limited, UTF-8) and an object; each entry has a known dtype, at most EASEL_MAX_DIMS non-negative
 * dims, and two integer offsets; elements × dtype size does not overflow and equals end - begin;
 * end lies inside the data area; names are unique; and, sorted by offset, no two tensors overlap. */
#include "safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "json.h"

struct _EaselSafetensors {
  char *path;                 /* or display name */
  GBytes *bytes;              /* the whole file (mapped or borrowed) */
  GMappedFile *mapped;        /* owns the mapping when opened from a path */
  EaselStTensor *tensors;
  gsize n_tensors;
  GHashTable *by_name;        /* name -> EaselStTensor* */
  GStrv meta_keys, meta_values;
  gsize n_meta;
  GStringChunk *strings;      /* tensor names */
};

static gpointer
st_fail (GError **error, const char *file, const char *tensor, const char *format, ...) G_GNUC_PRINTF (4, 5);

static gpointer
st_fail (GError **error, const char *file, const char *tensor, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  if (tensor)
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: tensor '%s': %s", file, tensor, msg);
  else
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: %s", file, msg);
  return NULL;
}

void
easel_safetensors_free (EaselSafetensors *st)
{
  if (st == NULL)
    return;
  g_free (st->tensors);
  if (st->by_name)
    g_hash_table_unref (st->by_name);
  g_strfreev (st->meta_keys);
  g_strfreev (st->meta_values);
  if (st->strings)
    g_string_chunk_free (st->strings);
  if (st->bytes)
    g_bytes_unref (st->bytes);
  if (st->mapped)
    g_mapped_file_unref (st->mapped);
  g_free (st->path);
  g_free (st);
}

static int
cmp_offset (const void *a, const void *b)
{
  const EaselStTensor *x = a, *y = b;
  if (x->offset != y->offset)
    return x->offset < y->offset ? -1 : 1;
  return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

const char *
easel_st_shape_str (const EaselStTensor *t, char *buf, gsize buf_len)
{
  GString *s = g_string_new ("[");
  for (int d = 0; d < t->n_dims; d++)
    g_string_append_printf (s, d ? ", %" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, t->shape[d]);
  g_string_append_c (s, ']');
  g_strlcpy (buf, s->str, buf_len);
  g_string_free (s, TRUE);
  return buf;
}

static gboolean
parse_entry (EaselSafetensors *st, const char *name, const EaselJson *e, gsize data_len,
             const guint8 *data, EaselStTensor *t, GError **error)
{
  const char *file = st->path;
  const EaselJson *dt = easel_json_get (e, "dtype"), *shape = easel_json_get (e, "shape"),
                  *offs = easel_json_get (e, "data_offsets");
  const char *dts = easel_json_string (dt, NULL);
  guint64 begin, end, n = 1, nbytes;
  char sbuf[256];

  if (easel_json_type (e) != EASEL_JSON_OBJECT)
    return st_fail (error, file, name, "entry is a %s, not an object", easel_json_type_name (easel_json_type (e))), FALSE;
  if (dts == NULL)
    return st_fail (error, file, name, "no \"dtype\" string"), FALSE;
  if (!easel_dtype_from_name (dts, &t->dtype))
    return st_fail (error, file, name, "unknown dtype \"%.32s\"", dts), FALSE;
  if (easel_json_type (shape) != EASEL_JSON_ARRAY)
    return st_fail (error, file, name, "no \"shape\" array"), FALSE;
  if (easel_json_length (shape) > EASEL_MAX_DIMS)
    return st_fail (error, file, name, "%" G_GSIZE_FORMAT " dimensions (at most %d)", easel_json_length (shape), EASEL_MAX_DIMS), FALSE;
  t->n_dims = (int) easel_json_length (shape);
  for (int d = 0; d < t->n_dims; d++) {
    guint64 dim;
    if (!easel_json_uint64 (easel_json_at (shape, d), &dim) || dim > G_MAXINT64)
      return st_fail (error, file, name, "dimension %d is not a non-negative integer", d), FALSE;
    t->shape[d] = (gint64) dim;
    if (!g_uint64_checked_mul (&n, n, dim))
      return st_fail (error, file, name, "shape overflows"), FALSE;
  }
  if (!g_uint64_checked_mul (&nbytes, n, easel_dtype_size (t->dtype)))
    return st_fail (error, file, name, "shape overflows"), FALSE;
  if (easel_json_type (offs) != EASEL_JSON_ARRAY || easel_json_length (offs) != 2
      || !easel_json_uint64 (easel_json_at (offs, 0), &begin) || !easel_json_uint64 (easel_json_at (offs, 1), &end))
    return st_fail (error, file, name, "\"data_offsets\" is not two non-negative integers"), FALSE;
  if (end < begin || end > data_len || end - begin != nbytes)
    return st_fail (error, file, name,
                    "data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT ") do not fit %s%s (%" G_GUINT64_FORMAT
                    " bytes) in a data area of %" G_GSIZE_FORMAT " bytes",
                    begin, end, dts, easel_st_shape_str (t, sbuf, sizeof sbuf), nbytes, data_len), FALSE;
  t->name = g_string_chunk_insert (st->strings, name);
  t->n_elements = n;
  t->nbytes = (gsize) nbytes;
  t->offset = begin;
  t->data = data + begin;
  return TRUE;
}

static gboolean
parse_metadata (EaselSafetensors *st, const EaselJson *m, GError **error)
{
  gsize n = easel_json_length (m);
  if (easel_json_type (m) != EASEL_JSON_OBJECT)
    return st_fail (error, st->path, NULL, "\"__metadata__\" is not an object"), FALSE;
  st->meta_keys = g_new0 (char *, n + 1);
  st->meta_values = g_new0 (char *, n + 1);
  for (gsize i = 0; i < n; i++) {
    gsize len;
    const char *v = easel_json_string (easel_json_at (m, i), &len);
    if (v == NULL || strlen (v) != len)
      return st_fail (error, st->path, NULL, "metadata \"%.64s\" is not a string", easel_json_key_at (m, i)), FALSE;
    st->meta_keys[i] = g_strdup (easel_json_key_at (m, i));
    st->meta_values[i] = g_strdup (v);
  }
  st->n_meta = n;
  return TRUE;
}

EaselSafetensors *
easel_safetensors_new_from_bytes (GBytes *bytes, const char *display_name, GError **error)
{
  g_autoptr(EaselSafetensors) st = g_new0 (EaselSafetensors, 1);
  g_autoptr(EaselJson) header = NULL;
  g_autoptr(GError) local = NULL;
  gsize size;
  const guint8 *base = g_bytes_get_data (bytes, &size);
  guint64 n_header = 0;
  gsize n_entries, k = 0;

  st->path = g_strdup (display_name ? display_name : "(memory)");
  st->bytes = g_bytes_ref (bytes);
  st->strings = g_string_chunk_new (4096);
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);

  if (size < 8)
    return st_fail (error, st->path, NULL, "truncated: %" G_GSIZE_FORMAT " bytes, too short for a safetensors header", size);
  for (int i = 7; i >= 0; i--)
    n_header = (n_header << 8) | base[i];
  if (n_header > EASEL_SAFETENSORS_MAX_HEADER)
    return st_fail (error, st->path, NULL, "header length %" G_GUINT64_FORMAT " exceeds the 100 MiB limit (not a safetensors file?)", n_header);
  if (n_header > size - 8)
    return st_fail (error, st->path, NULL, "truncated: header of %" G_GUINT64_FORMAT " bytes but only %" G_GSIZE_FORMAT " follow", n_header, size - 8);
  if (n_header < 2 || base[8] != '{')
    return st_fail (error, st->path, NULL, "header is not a JSON object (not a safetensors file?)");

  header = easel_json_parse ((const char *) base + 8, (gsize) n_header, &local);
  if (header == NULL)
    return st_fail (error, st->path, NULL, "header: %s", local->message);
  if (easel_json_type (header) != EASEL_JSON_OBJECT)
    return st_fail (error, st->path, NULL, "header is not a JSON object");

  const guint8 *data = base + 8 + n_header;
  gsize data_len = size - 8 - (gsize) n_header;
  n_entries = easel_json_length (header);
  st->tensors = g_new0 (EaselStTensor, n_entries ? n_entries : 1);
  for (gsize i = 0; i < n_entries; i++) {
    const char *name = easel_json_key_at (header, i);
    const EaselJson *e = easel_json_at (header, i);
    if (strcmp (name, "__metadata__") == 0) {
      if (st->meta_keys != NULL)
        return st_fail (error, st->path, NULL, "two \"__metadata__\" entries");
      if (!parse_metadata (st, e, error))
        return NULL;
      continue;
    }
    if (!parse_entry (st, name, e, data_len, data, &st->tensors[k], error))
      return NULL;
    k++;
  }
  st->n_tensors = k;
  qsort (st->tensors, k, sizeof (EaselStTensor), cmp_offset);
  for (gsize i = 0; i < k; i++) {
    EaselStTensor *t = &st->tensors[i];
    if (i > 0 && t->offset < st->tensors[i - 1].offset + st->tensors[i - 1].nbytes)
      return st_fail (error, st->path, t->name, "data overlaps tensor '%s'", st->tensors[i - 1].name);
    if (!g_hash_table_insert (st->by_name, (gpointer) t->name, t))
      return st_fail (error, st->path, t->name, "name appears twice in the header");
  }
  if (st->meta_keys == NULL) {
    st->meta_keys = g_new0 (char *, 1);
    st->meta_values = g_new0 (char *, 1);
  }
  return g_steal_pointer (&st);
}

EaselSafetensors *
easel_safetensors_open (const char *path, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GBytes) bytes = NULL;
  GMappedFile *mf;
  EaselSafetensors *st;

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    return st_fail (error, path, NULL, "is a folder, not a .safetensors file");
  mf = g_mapped_file_new (path, FALSE, &local);
  if (mf == NULL) {
    g_set_error (error, EASEL_ERROR, local->code == G_FILE_ERROR_NOENT ? EASEL_ERROR_NOT_FOUND : EASEL_ERROR_IO,
                 "%s", local->message);
    return NULL;
  }
  if (g_mapped_file_get_length (mf) == 0)
    bytes = g_bytes_new_static ("", 0);
  else
    bytes = g_mapped_file_get_bytes (mf);
  st = easel_safetensors_new_from_bytes (bytes, path, error);
  if (st)
    st->mapped = mf;
  else
    g_mapped_file_unref (mf);
  return st;
}

const char *
easel_safetensors_path (const EaselSafetensors *st)
{
  return st->path;
}

gsize
easel_safetensors_file_size (const EaselSafetensors *st)
{
  return g_bytes_get_size (st->bytes);
}

gsize
easel_safetensors_n_tensors (const EaselSafetensors *st)
{
  return st->n_tensors;
}

const EaselStTensor *
easel_safetensors_tensor (const EaselSafetensors *st, gsize i)
{
  return i < st->n_tensors ? &st->tensors[i] : NULL;
}

const EaselStTensor *
easel_safetensors_find (const EaselSafetensors *st, const char *name)
{
  return g_hash_table_lookup (st->by_name, name);
}

gsize
easel_safetensors_n_metadata (const EaselSafetensors *st)
{
  return st->n_meta;
}

const char *
easel_safetensors_metadata_key (const EaselSafetensors *st, gsize i)
{
  return i < st->n_meta ? st->meta_keys[i] : NULL;
}

const char *
easel_safetensors_metadata_value (const EaselSafetensors *st, gsize i)
{
  return i < st->n_meta ? st->meta_values[i] : NULL;
}

const char *
easel_safetensors_metadata (const EaselSafetensors *st, const char *key)
{
  for (gsize i = 0; i < st->n_meta; i++)
    if (strcmp (st->meta_keys[i], key) == 0)
      return st->meta_values[i];
  return NULL;
}

float *
easel_st_tensor_to_f32 (const EaselStTensor *t)
{
  float *out = g_new (float, t->n_elements ? t->n_elements : 1);
  easel_dtype_to_f32 (t->dtype, t->data, out, t->n_elements);
  return out;
}

/* --- writer ---------------------------------------------------------------------------------- */

typedef struct {
  char *name;
  EaselDType dtype;
  int n_dims;
  gint64 shape[EASEL_MAX_DIMS];
  GBytes *data;            /* NULL for a fill entry */
  guint64 nbytes;
  EaselStFillFunc fill;    /* made at save time when set */
  gpointer fill_data;
} WEntry;

struct _EaselSafetensorsWriter {
  GArray *entries;       /* WEntry */
  GPtrArray *meta;       /* key, value, key, value ... */
  GHashTable *names;
};

static void
wentry_clear (gpointer p)
{
  WEntry *e = p;
  g_free (e->name);
  if (e->data)
    g_bytes_unref (e->data);
}

EaselSafetensorsWriter *
easel_safetensors_writer_new (void)
{
  EaselSafetensorsWriter *w = g_new0 (EaselSafetensorsWriter, 1);
  w->entries = g_array_new (FALSE, TRUE, sizeof (WEntry));
  g_array_set_clear_func (w->entries, wentry_clear);
  w->meta = g_ptr_array_new_with_free_func (g_free);
  w->names = g_hash_table_new (g_str_hash, g_str_equal);
  return w;
}

void
easel_safetensors_writer_free (EaselSafetensorsWriter *w)
{
  if (w == NULL)
    return;
  g_hash_table_unref (w->names);
  g_array_unref (w->entries);
  g_ptr_array_unref (w->meta);
  g_free (w);
}

void
easel_safetensors_writer_set_metadata (EaselSafetensorsWriter *w, const char *key, const char *value)
{
  for (guint i = 0; i < w->meta->len; i += 2)
    if (strcmp (w->meta->pdata[i], key) == 0) {
      g_free (w->meta->pdata[i + 1]);
      w->meta->pdata[i + 1] = g_strdup (value);
      return;
    }
  g_ptr_array_add (w->meta, g_strdup (key));
  g_ptr_array_add (w->meta, g_strdup (value));
}

/* Checks the name and shape and appends the entry (data and fill still unset). */
static WEntry *
writer_append (EaselSafetensorsWriter *w, const char *name, EaselDType dtype, int n_dims, const gint64 *shape,
               GError **error)
{
  WEntry e = { 0 };
  guint64 n = easel_dtype_size (dtype);

  g_return_val_if_fail (n_dims >= 0 && n_dims <= EASEL_MAX_DIMS, NULL);
  if (g_hash_table_contains (w->names, name) || strcmp (name, "__metadata__") == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "tensor '%s' added twice", name);
    return NULL;
  }
  for (int d = 0; d < n_dims; d++)
    if (shape[d] < 0 || !g_uint64_checked_mul (&n, n, (guint64) shape[d]) || n > G_MAXSIZE) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "tensor '%s': bad shape", name);
      return NULL;
    }
  e.name = g_strdup (name);
  e.dtype = dtype;
  e.n_dims = n_dims;
  e.nbytes = n;
  if (n_dims > 0)
    memcpy (e.shape, shape, sizeof (gint64) * n_dims);
  g_array_append_val (w->entries, e);
  g_hash_table_add (w->names, g_array_index (w->entries, WEntry, w->entries->len - 1).name);
  return &g_array_index (w->entries, WEntry, w->entries->len - 1);
}

gboolean
easel_safetensors_writer_add (EaselSafetensorsWriter *w, const char *name, EaselDType dtype,
                              int n_dims, const gint64 *shape, const void *data, GError **error)
{
  WEntry *e = writer_append (w, name, dtype, n_dims, shape, error);
  if (e == NULL)
    return FALSE;
  e->data = g_bytes_new (data, (gsize) e->nbytes);
  return TRUE;
}

gboolean
easel_safetensors_writer_add_fill (EaselSafetensorsWriter *w, const char *name, EaselDType dtype,
                                   int n_dims, const gint64 *shape, EaselStFillFunc fill,
                                   gpointer user_data, GError **error)
{
  WEntry *e;

  g_return_val_if_fail (fill != NULL, FALSE);
  if ((e = writer_append (w, name, dtype, n_dims, shape, error)) == NULL)
    return FALSE;
  e->fill = fill;
  e->fill_data = user_data;
  return TRUE;
}

static gboolean
write_all (FILE *f, const void *p, gsize n)
{
  return n == 0 || fwrite (p, 1, n, f) == n;
}

gboolean
easel_safetensors_writer_save (EaselSafetensorsWriter *w, const char *path, GError **error)
{
  g_autoptr(GString) h = g_string_new ("{");
  g_autofree char *tmp = g_strconcat (path, ".tmp", NULL);
  guint64 off = 0;
  guint8 len_le[8];
  gboolean ok;
  FILE *f;
  guint8 *fill_buf = NULL;
  guint64 fill_cap = 0;
  GError *fill_error = NULL;

  if (w->meta->len > 0) {
    g_string_append (h, "\"__metadata__\":{");
    for (guint i = 0; i < w->meta->len; i += 2) {
      if (i)
        g_string_append_c (h, ',');
      easel_json_append_string (h, w->meta->pdata[i]);
      g_string_append_c (h, ':');
      easel_json_append_string (h, w->meta->pdata[i + 1]);
    }
    g_string_append_c (h, '}');
  }
  for (guint i = 0; i < w->entries->len; i++) {
    WEntry *e = &g_array_index (w->entries, WEntry, i);
    guint64 nb = e->nbytes;
    if (h->len > 1)
      g_string_append_c (h, ',');
    easel_json_append_string (h, e->name);
    g_string_append_printf (h, ":{\"dtype\":\"%s\",\"shape\":[", easel_dtype_name (e->dtype));
    for (int d = 0; d < e->n_dims; d++)
      g_string_append_printf (h, d ? ",%" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, e->shape[d]);
    g_string_append_printf (h, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}", off, off + nb);
    off += nb;
  }
  g_string_append_c (h, '}');
  while (h->len % 8 != 0)            /* data area starts 8-aligned, as the reference writer does */
    g_string_append_c (h, ' ');
  for (int i = 0; i < 8; i++)
    len_le[i] = (guint8) ((guint64) h->len >> (8 * i));

  f = fopen (tmp, "wb");
  if (f == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_IO, "%s: %s", tmp, g_strerror (errno));
    return FALSE;
  }
  ok = write_all (f, len_le, 8) && write_all (f, h->str, h->len);
  for (guint i = 0; ok && i < w->entries->len; i++) {
    WEntry *e = &g_array_index (w->entries, WEntry, i);
    if (e->fill == NULL) {
      ok = write_all (f, g_bytes_get_data (e->data, NULL), g_bytes_get_size (e->data));
      continue;
    }
    /* one buffer, grown to the largest filled tensor so far */
    if (e->nbytes > fill_cap) {
      g_free (fill_buf);
      fill_buf = g_try_malloc (e->nbytes);
      fill_cap = fill_buf ? e->nbytes : 0;
      if (fill_buf == NULL) {
        g_set_error (&fill_error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY, "%s: no memory for tensor '%s' (%"
                     G_GUINT64_FORMAT " bytes)", path, e->name, e->nbytes);
        break;
      }
    }
    if (!e->fill (e->fill_data, e->name, fill_buf, (gsize) e->nbytes, &fill_error)) {
      if (fill_error == NULL)
        g_set_error (&fill_error, EASEL_ERROR, EASEL_ERROR_IO, "%s: tensor '%s' could not be made", path, e->name);
      break;
    }
    ok = write_all (f, fill_buf, (gsize) e->nbytes);
  }
  g_clear_pointer (&fill_buf, g_free);
  if (fill_error != NULL) {
    fclose (f);
    unlink (tmp);
    g_propagate_error (error, fill_error);
    return FALSE;
  }
  ok = (fflush (f) == 0) && ok;
  ok = (fsync (fileno (f)) == 0) && ok;
  int saved = errno;
  ok = (fclose (f) == 0) && ok;
  if (!ok || rename (tmp, path) != 0) {
    if (ok)
      saved = errno;
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_IO, "%s: %s", path, g_strerror (saved ? saved : EIO));
    unlink (tmp);
    return FALSE;
  }
  return TRUE;
}
