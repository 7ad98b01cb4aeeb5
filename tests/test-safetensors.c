/* tests/test-safetensors.c: the reader's checks and the writer, round trip and hostile headers. */
#include <glib/gstdio.h>
#include <string.h>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "testutil.h"

/* A file made of a raw header text and n_data bytes of data. */
static GBytes *
make_file (const char *header, gsize n_data, guint64 claimed_len)
{
  gsize hl = strlen (header);
  guint64 n = claimed_len ? claimed_len : hl;
  guint8 *buf = g_malloc0 (8 + hl + n_data);
  for (int i = 0; i < 8; i++)
    buf[i] = (guint8) (n >> (8 * i));
  memcpy (buf + 8, header, hl);
  for (gsize i = 0; i < n_data; i++)
    buf[8 + hl + i] = (guint8) i;
  return g_bytes_new_take (buf, 8 + hl + n_data);
}

static void
expect_error (const char *header, gsize n_data, guint64 claimed, const char *fragment)
{
  g_autoptr(GBytes) b = make_file (header, n_data, claimed);
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselSafetensors) st = easel_safetensors_new_from_bytes (b, "x.safetensors", &error);
  if (st != NULL)
    g_error ("accepted: %s", header);
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);
  g_assert_true (g_str_has_prefix (error->message, "x.safetensors: "));
  if (strstr (error->message, fragment) == NULL)
    g_error ("error '%s' does not mention '%s'", error->message, fragment);
}

static void
test_valid (void)
{
  g_autoptr(GBytes) b = make_file ("{\"__metadata__\":{\"format\":\"pt\"},"
                                   "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]},"
                                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[0,8]},"
                                   "\"e\":{\"dtype\":\"I64\",\"shape\":[0],\"data_offsets\":[12,12]}}  ", 12, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselSafetensors) st = easel_safetensors_new_from_bytes (b, "x", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (easel_safetensors_n_tensors (st), ==, 3);
  g_assert_cmpstr (easel_safetensors_tensor (st, 0)->name, ==, "a");   /* offset order */
  const EaselStTensor *t = easel_safetensors_find (st, "b");
  g_assert_nonnull (t);
  g_assert_cmpint (t->dtype, ==, EASEL_DTYPE_F16);
  g_assert_cmpuint (t->nbytes, ==, 4);
  g_assert_cmpuint (t->data[0], ==, 8);
  g_assert_cmpstr (easel_safetensors_metadata (st, "format"), ==, "pt");
  g_assert_null (easel_safetensors_find (st, "__metadata__"));
}

static void
test_hostile (void)
{
  const char *t1 = "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
  g_autofree char *ok = g_strdup_printf ("{%s}", t1);
  expect_error (ok, 7, 0, "do not fit");                                          /* truncated data */
  expect_error (ok, 8, 1ull << 40, "exceeds");                                    /* absurd header length */
  expect_error (ok, 8, strlen (ok) + 9, "truncated");                            /* header past the end */
  expect_error ("{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, "do not fit");
  expect_error ("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, 0, "do not fit");
  expect_error ("{\"t\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8, 0, "overflows");
  expect_error ("{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0, "non-negative");
  expect_error ("{\"t\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, "unknown dtype");
  expect_error ("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, 0, "data_offsets");
  expect_error ("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]}}", 8, 0, "do not fit");
  expect_error ("{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, 0, "dimensions");
  expect_error ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0, "overlaps");
  expect_error ("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, 0, "twice");
  expect_error ("{\"__metadata__\":{\"k\":1}}", 0, 0, "not a string");
  expect_error ("{\"t\":[1]}", 0, 0, "not an object");
  expect_error ("{\"t\":{\"dtype\":\"F32\",", 0, 0, "JSON");
  expect_error ("[1,2]", 0, 0, "not a JSON object");
  expect_error ("", 0, 0, "not a JSON object");
  {
    g_autoptr(GBytes) b = g_bytes_new ("\x10\0\0", 3);
    g_autoptr(GError) error = NULL;
    g_assert_null (easel_safetensors_new_from_bytes (b, "x.safetensors", &error));
    g_assert_nonnull (strstr (error->message, "truncated"));
  }
}

static void
test_writer_roundtrip (void)
{
  g_autofree char *dir = g_dir_make_tmp ("easel-st-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "w.safetensors", NULL);
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  g_autoptr(GError) error = NULL;
  const float a[6] = { 1, 2, 3, 4, 5, 6 };
  const guint16 h[2] = { 0x3c00, 0xc000 };
  const gint64 sa[2] = { 2, 3 }, sh[1] = { 2 };

  easel_safetensors_writer_set_metadata (w, "format", "pt");
  easel_safetensors_writer_set_metadata (w, "note", "quote \" and\nnewline");
  g_assert_true (easel_safetensors_writer_add (w, "model.a\"weird\"", EASEL_DTYPE_F32, 2, sa, a, &error));
  g_assert_true (easel_safetensors_writer_add (w, "h", EASEL_DTYPE_F16, 1, sh, h, &error));
  g_assert_false (easel_safetensors_writer_add (w, "h", EASEL_DTYPE_F16, 1, sh, h, NULL));
  g_assert_true (easel_safetensors_writer_save (w, path, &error));
  g_assert_no_error (error);

  g_autoptr(EaselSafetensors) st = easel_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (easel_safetensors_n_tensors (st), ==, 2);
  g_assert_cmpstr (easel_safetensors_metadata (st, "note"), ==, "quote \" and\nnewline");
  const EaselStTensor *t = easel_safetensors_find (st, "model.a\"weird\"");
  g_assert_nonnull (t);
  g_assert_cmpint (t->shape[1], ==, 3);
  g_assert_cmpmem (t->data, t->nbytes, a, sizeof a);
  g_autofree float *hf = easel_st_tensor_to_f32 (easel_safetensors_find (st, "h"));
  g_assert_cmpfloat (hf[0], ==, 1.0f);
  g_assert_cmpfloat (hf[1], ==, -2.0f);
  g_autofree char *tmp = g_strconcat (path, ".tmp", NULL);
  g_assert_false (g_file_test (tmp, G_FILE_TEST_EXISTS));   /* renamed into place */
  easel_safetensors_free (g_steal_pointer (&st));
  g_unlink (path);
  g_rmdir (dir);
}

static void
test_writer_unwritable (void)
{
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  g_autoptr(GError) error = NULL;
  g_assert_false (easel_safetensors_writer_save (w, "/nonexistent-dir/x.safetensors", &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "/nonexistent-dir/x.safetensors"));
}

static void
test_real_file (void)
{
  g_autofree char *path = test_data_path ("models", "sd1_tiny.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  if (path == NULL)
    return;
  g_autoptr(EaselSafetensors) st = easel_safetensors_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (easel_safetensors_n_tensors (st), ==, 987);   /* models/manifest.json */
  const EaselStTensor *t = easel_safetensors_find (st, "model.diffusion_model.input_blocks.0.0.weight");
  g_assert_nonnull (t);
  g_assert_cmpint (t->dtype, ==, EASEL_DTYPE_F16);
  g_assert_cmpint (t->n_dims, ==, 4);
  g_assert_cmpint (t->shape[0], ==, 32);
  g_assert_cmpint (t->shape[1], ==, 4);
}

static void
test_missing_and_folder (void)
{
  g_autoptr(GError) e1 = NULL, e2 = NULL;
  g_assert_null (easel_safetensors_open ("/nonexistent.safetensors", &e1));
  g_assert_error (e1, EASEL_ERROR, EASEL_ERROR_NOT_FOUND);
  g_assert_null (easel_safetensors_open ("/", &e2));
  g_assert_nonnull (strstr (e2->message, "folder"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/safetensors/valid", test_valid);
  g_test_add_func ("/safetensors/hostile", test_hostile);
  g_test_add_func ("/safetensors/writer-roundtrip", test_writer_roundtrip);
  g_test_add_func ("/safetensors/writer-unwritable", test_writer_unwritable);
  g_test_add_func ("/safetensors/real-file", test_real_file);
  g_test_add_func ("/safetensors/missing-and-folder", test_missing_and_folder);
  return g_test_run ();
}
