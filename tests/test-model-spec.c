/* tests/test-model-spec.c: engine/model-spec.c's architectures against the real tensor lists
 * (testdata/fullsize_keys: SD 1.5, SD 2.1-768-v, SDXL base 1.0, refiner 1.0) and the tiny test
 * models' (testdata/models/keys): same names, same shapes, same dtypes; the written random-weight
 * checkpoints (engine/model-make.c) open, detect as their family and run through Easel's CLIP and
 * VAE with finite, well-scaled outputs; the streaming safetensors writer; the demo vocabulary. */
#include <glib/gstdio.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "app/cli/cli.h"
#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/clip.h"
#include "engine/error.h"
#include "engine/family.h"
#include "engine/json.h"
#include "engine/model-make.h"
#include "engine/model-spec.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "engine/tokenizer.h"
#include "engine/unet.h"
#include "engine/vae.h"
#include "engine/vocab.h"
#include "testutil.h"

typedef struct {
  const char *family;
  gboolean tiny;
  const char *list;         /* under $EASEL_TESTDATA */
} ListCase;

static const ListCase list_cases[] = {
  { "sd15", FALSE, "fullsize_keys/sd15_original.txt" },
  { "sd21v", FALSE, "fullsize_keys/sd21_768v_original.txt" },
  { "sdxl", FALSE, "fullsize_keys/sdxl_base_1.0_original.txt" },
  { "sdxl-refiner", FALSE, "fullsize_keys/sdxl_refiner_1.0_original.txt" },
  { "sd15", TRUE, "models/keys/sd1_tiny.safetensors.keys.txt" },
  { "sdxl", TRUE, "models/keys/sdxl_tiny.safetensors.keys.txt" },
  { "sdxl-refiner", TRUE, "models/keys/sdxl_refiner_tiny.safetensors.keys.txt" },
};

static char *
shape_str (int n_dims, const gint64 *shape)
{
  GString *s = g_string_new ("[");
  for (int d = 0; d < n_dims; d++)
    g_string_append_printf (s, d ? ", %" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, shape[d]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

/* Every listed tensor (extras included) is enumerated with its shape and dtype, and nothing else. */
static void
test_matches_list (gconstpointer data)
{
  const ListCase *c = data;
  g_autofree char *path = test_data_path (c->list, NULL);
  g_autoptr(GError) error = NULL;
  EaselModelSpec spec;

  if (path == NULL)
    return;
  g_autoptr(EaselKeyList) list = easel_key_list_load (path, &error);
  g_assert_no_error (error);
  g_assert_true (easel_model_spec_get (c->family, c->tiny, &spec, &error));
  g_autoptr(EaselSpecTensorList) mine = easel_model_spec_tensors (&spec, EASEL_DTYPE_F16);
  g_autoptr(GHashTable) by_name = g_hash_table_new (g_str_hash, g_str_equal);
  guint n_bad = 0;

  for (gsize i = 0; i < mine->n_tensors; i++)
    g_hash_table_insert (by_name, (gpointer) mine->tensors[i].name, &mine->tensors[i]);
  g_assert_cmpuint (g_hash_table_size (by_name), ==, mine->n_tensors);   /* no duplicates */
  for (gsize i = 0; i < list->n_keys; i++) {
    const EaselKeyShape *k = &list->keys[i];
    const EaselSpecTensor *t = g_hash_table_lookup (by_name, k->name);
    g_autofree char *want = shape_str (k->n_dims, k->shape);
    if (t == NULL) {
      if (n_bad++ < 10)
        g_test_message ("%s: missing %s %s", c->list, k->name, want);
      continue;
    }
    g_autofree char *got = shape_str (t->n_dims, t->shape);
    if (strcmp (got, want) != 0 || t->dtype != list->dtypes[i]) {
      if (n_bad++ < 10)
        g_test_message ("%s: %s is %s %s, the list says %s %s", c->list, k->name, got,
                        easel_dtype_name (t->dtype), want, easel_dtype_name (list->dtypes[i]));
    }
    g_hash_table_remove (by_name, k->name);
  }
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, by_name);
  while (g_hash_table_iter_next (&it, &key, NULL))
    if (n_bad++ < 20)
      g_test_message ("%s: %s is not in the list", c->list, (const char *) key);
  g_assert_cmpuint (n_bad, ==, 0);
  g_assert_cmpuint (mine->n_tensors, ==, list->n_keys);
}

/* The enumeration's own family detection agrees with the spec (every family, both sizes). */
static void
test_detects_family (void)
{
  for (const char *const *n = easel_model_spec_names (); *n; n++)
    for (int tiny = 0; tiny < 2; tiny++) {
      EaselModelSpec spec;
      EaselDetection det;
      g_assert_true (easel_model_spec_get (*n, tiny, &spec, NULL));
      g_autoptr(EaselSpecTensorList) l = easel_model_spec_tensors (&spec, EASEL_DTYPE_F16);
      g_autofree EaselKeyShape *keys = g_new0 (EaselKeyShape, l->n_tensors);
      for (gsize i = 0; i < l->n_tensors; i++) {
        keys[i].name = l->tensors[i].name;
        keys[i].n_dims = l->tensors[i].n_dims;
        memcpy (keys[i].shape, l->tensors[i].shape, sizeof keys[i].shape);
      }
      easel_detect_family (keys, l->n_tensors, &det);
      g_test_message ("%s%s: %s (%s)", *n, tiny ? " tiny" : "", easel_family_name (det.family), det.reason);
      g_assert_cmpstr (easel_family_name (det.family), ==, easel_family_name (spec.family));
      g_assert_cmpint (det.in_channels, ==, spec.unet.in_channels);
      g_assert_cmpint (det.context_dim, ==, spec.unet.context_dim);
      g_assert_cmpint (det.n_text_encoders, ==, spec.n_text);
      g_assert_true (det.has_vae);
    }
}

/* --- streaming writer ------------------------------------------------------------------------ */

static gboolean
fill_ramp (gpointer user_data, const char *name, void *dest, gsize nbytes, GError **error)
{
  guint *calls = user_data;
  (*calls)++;
  if (strcmp (name, "bad") == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_IO, "no values for %s", name);
    return FALSE;
  }
  for (gsize i = 0; i < nbytes / 4; i++) {
    float v = (float) i + (name[0] == 'b' ? 0.5f : 0.0f);
    memcpy ((guint8 *) dest + 4 * i, &v, 4);
  }
  return TRUE;
}

static void
test_writer_fill (void)
{
  g_autofree char *dir = g_dir_make_tmp ("easel-fill-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "f.safetensors", NULL);
  g_autofree char *tmp = g_strconcat (path, ".tmp", NULL);
  g_autoptr(GError) error = NULL;
  const gint64 sa[2] = { 3, 5 }, sb[1] = { 7 }, sc[1] = { 2 };
  const float c[2] = { -1.0f, 2.0f };
  guint calls = 0;

  {
    g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
    g_assert_true (easel_safetensors_writer_add_fill (w, "a", EASEL_DTYPE_F32, 2, sa, fill_ramp, &calls, &error));
    g_assert_true (easel_safetensors_writer_add (w, "c", EASEL_DTYPE_F32, 1, sc, c, &error));
    g_assert_true (easel_safetensors_writer_add_fill (w, "b", EASEL_DTYPE_F32, 1, sb, fill_ramp, &calls, &error));
    g_assert_false (easel_safetensors_writer_add_fill (w, "a", EASEL_DTYPE_F32, 1, sb, fill_ramp, &calls, NULL));
    g_assert_cmpuint (calls, ==, 0);   /* nothing made before the save */
    g_assert_true (easel_safetensors_writer_save (w, path, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (calls, ==, 2);
  }
  g_autoptr(EaselSafetensors) st = easel_safetensors_open (path, &error);
  g_assert_no_error (error);
  const EaselStTensor *a = easel_safetensors_find (st, "a"), *b = easel_safetensors_find (st, "b");
  const EaselStTensor *tc = easel_safetensors_find (st, "c");
  g_assert_nonnull (a);
  g_assert_nonnull (b);
  g_assert_nonnull (tc);
  g_assert_cmpint (a->shape[0], ==, 3);
  g_assert_cmpint (a->shape[1], ==, 5);
  g_autofree float *fa = easel_st_tensor_to_f32 (a), *fb = easel_st_tensor_to_f32 (b), *fc = easel_st_tensor_to_f32 (tc);
  for (int i = 0; i < 15; i++)
    g_assert_cmpfloat (fa[i], ==, (float) i);
  for (int i = 0; i < 7; i++)
    g_assert_cmpfloat (fb[i], ==, (float) i + 0.5f);
  g_assert_cmpfloat (fc[1], ==, 2.0f);

  /* a failing fill stops the save: the error comes back, no file and no temp file are left */
  {
    g_autofree char *p2 = g_build_filename (dir, "g.safetensors", NULL);
    g_autofree char *t2 = g_strconcat (p2, ".tmp", NULL);
    g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
    g_autoptr(GError) e2 = NULL;
    g_assert_true (easel_safetensors_writer_add_fill (w, "a", EASEL_DTYPE_F32, 1, sb, fill_ramp, &calls, NULL));
    g_assert_true (easel_safetensors_writer_add_fill (w, "bad", EASEL_DTYPE_F32, 1, sb, fill_ramp, &calls, NULL));
    g_assert_false (easel_safetensors_writer_save (w, p2, &e2));
    g_assert_error (e2, EASEL_ERROR, EASEL_ERROR_IO);
    g_assert_nonnull (strstr (e2->message, "no values for bad"));
    g_assert_false (g_file_test (p2, G_FILE_TEST_EXISTS));
    g_assert_false (g_file_test (t2, G_FILE_TEST_EXISTS));
  }
  g_clear_pointer (&st, easel_safetensors_free);
  g_unlink (path);
  g_assert_false (g_file_test (tmp, G_FILE_TEST_EXISTS));
  g_rmdir (dir);
}

/* --- values ---------------------------------------------------------------------------------- */

static float *
make_values (const EaselSpecTensor *t, guint64 seed, guint threads)
{
  gsize nb = t->n_elements * easel_dtype_size (t->dtype);
  g_autofree guint8 *buf = g_malloc (nb);
  float *out = g_new (float, t->n_elements);
  g_assert_true (easel_model_make_fill (t, seed, threads, buf, nb, NULL));
  easel_dtype_to_f32 (t->dtype, buf, out, t->n_elements);
  return out;
}

/* Weights ~ N(0, 1/fan_in) (mean, std, a symmetric spread); the same for any thread count;
 * a function of the seed and the name; norms, ids and logit_scale exact. */
static void
test_values (void)
{
  EaselSpecTensor w = { "x.weight", EASEL_DTYPE_F32, 2, { 1024, 1280 }, 1024 * 1280, EASEL_INIT_WEIGHT, 1280 };
  EaselSpecTensor w2 = w;
  EaselSpecTensor ids = { "x.position_ids", EASEL_DTYPE_I64, 2, { 1, 77 }, 77, EASEL_INIT_ARANGE, 0 };
  EaselSpecTensor ones = { "x.norm.weight", EASEL_DTYPE_F16, 1, { 320 }, 320, EASEL_INIT_ONES, 0 };
  EaselSpecTensor ls = { "x.logit_scale", EASEL_DTYPE_F16, 0, { 0 }, 1, EASEL_INIT_LOGIT_SCALE, 0 };
  g_autofree float *a = make_values (&w, 7, 1), *b = make_values (&w, 7, 3), *c = make_values (&w, 8, 2);
  double sum = 0, sq = 0, max_abs = 0;
  gsize n_pos = 0, n_diff = 0;

  g_assert_cmpmem (a, w.n_elements * 4, b, w.n_elements * 4);
  for (gsize i = 0; i < w.n_elements; i++) {
    sum += a[i];
    sq += (double) a[i] * a[i];
    max_abs = MAX (max_abs, fabs (a[i]));
    n_pos += a[i] > 0;
    n_diff += a[i] != c[i];
  }
  double mean = sum / w.n_elements, std = sqrt (sq / w.n_elements - mean * mean);
  g_test_message ("mean %g std %g (want %g) max %g", mean, std, 1 / sqrt (1280.0), max_abs);
  g_assert_cmpfloat (fabs (mean), <, 1e-3 / sqrt (1280.0) * 10);
  g_assert_cmpfloat (fabs (std * sqrt (1280.0) - 1.0), <, 0.01);
  g_assert_cmpfloat (max_abs * sqrt (1280.0), <, 3.47);
  g_assert_cmpfloat (fabs ((double) n_pos / w.n_elements - 0.5), <, 0.01);
  g_assert_cmpuint (n_diff, >, w.n_elements * 99 / 100);
  w2.name = "y.weight";
  g_autofree float *d = make_values (&w2, 7, 1);
  g_assert_cmpfloat (d[0], !=, a[0]);

  g_autofree float *fi = make_values (&ids, 7, 1), *fo = make_values (&ones, 7, 1), *fl = make_values (&ls, 7, 1);
  for (int i = 0; i < 77; i++)
    g_assert_cmpfloat (fi[i], ==, (float) i);
  for (int i = 0; i < 320; i++)
    g_assert_cmpfloat (fo[i], ==, 1.0f);
  g_assert_cmpfloat (fabs (fl[0] - logf (1 / 0.07f)), <, 2e-3);

  /* the byte count must match */
  g_autoptr(GError) error = NULL;
  guint8 small[8];
  g_assert_false (easel_model_make_fill (&ids, 7, 1, small, sizeof small, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
}

/* --- demo vocabulary ------------------------------------------------------------------------- */

static void
test_demo_vocab (void)
{
  g_autofree char *dir = g_dir_make_tmp ("easel-vocab-XXXXXX", NULL);
  g_autofree char *vj = g_build_filename (dir, "vocab.json", NULL), *mt = g_build_filename (dir, "merges.txt", NULL);
  g_autoptr(GError) error = NULL;
  gsize n = easel_demo_vocab_size ();

  g_assert_true (easel_demo_vocab_write (dir, &error));
  g_assert_no_error (error);
  g_assert_true (easel_demo_vocab_write (dir, &error));   /* the same files again: fine */
  g_autoptr(EaselTokenizer) tok = easel_tokenizer_load (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (easel_tokenizer_vocab_size (tok), ==, n);
  g_assert_cmpuint (n, >, 512 + 300);
  g_assert_cmpint (easel_tokenizer_bos (tok), ==, (gint32) n - 2);
  g_assert_cmpint (easel_tokenizer_eos (tok), ==, (gint32) n - 1);

  /* listed words are one token each; anything else falls back to byte symbols */
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (easel_tokenizer_encode (tok, "A beautiful PHOTO of a cat", -1, ids, &error));
  g_assert_cmpuint (ids->len, ==, 6);
  g_assert_cmpstr (easel_tokenizer_token (tok, g_array_index (ids, gint32, 1)), ==, "beautiful</w>");
  g_array_set_size (ids, 0);
  g_assert_true (easel_tokenizer_encode (tok, "zxq \xc3\xa9!", -1, ids, &error));
  GString *back = g_string_new (NULL);
  for (guint i = 0; i < ids->len; i++) {
    gint32 id = g_array_index (ids, gint32, i);
    g_assert_cmpint (id, >=, 0);
    g_assert_cmpint (id, <, (gint32) n - 2);
    g_string_append (back, easel_tokenizer_token (tok, id));
  }
  g_assert_cmpstr (back->str, ==, "zxq</w>\xc3\x83\xc2\xa9</w>!</w>");   /* é = bytes c3 a9 -> symbols Ã © */
  g_string_free (back, TRUE);

  /* a different vocabulary is never overwritten */
  g_assert_true (g_file_set_contents (mt, "#version: 0.2\n", -1, NULL));
  g_assert_false (easel_demo_vocab_write (dir, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "merges.txt"));
  g_unlink (vj);
  g_unlink (mt);
  g_rmdir (dir);
}

/* --- easel-cli make-model ------------------------------------------------------------------- */

static char *last_cli_error;

/* easel-cli.c (main's file, not in the library the tests link) defines this; kept for checks. */
void
easel_cli_error (const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_free (last_cli_error);
  last_cli_error = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_test_message ("easel-cli: %s", last_cli_error);
}

/* Bad arguments: exit status 1 and one line naming the problem; nothing written. */
static void
test_cli_errors (void)
{
  g_autofree char *dir = g_dir_make_tmp ("easel-cli-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "m.safetensors", NULL);
  g_autofree char *missing = g_build_filename (dir, "no", "such", "m.safetensors", NULL);
  struct {
    const char *args[8];
    const char *says;
  } cases[] = {
    { { "--family", "sd3", "-o", path }, "unknown model family 'sd3'" },
    { { "--family", "sd15", "--dtype", "f8", "-o", path }, "--dtype 'f8'" },
    { { "--family", "sd15", "--seed", "-4", "-o", path }, "--seed '-4'" },
    { { "--family", "sd15" }, "-o are required" },
    { { "--family", "sd15", "--bogus", "-o", path }, "'--bogus'" },
    { { "--family", "sd15", "-o", missing }, "no/such/m.safetensors.tmp" },
    { { "--family", "sd15", "--tiny", "-o", missing }, "no/such: no such folder" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    char *argv[10] = { "make-model" };
    int argc = 1;
    for (int k = 0; cases[i].args[k]; k++)
      argv[argc++] = (char *) cases[i].args[k];
    g_clear_pointer (&last_cli_error, g_free);
    g_assert_cmpint (easel_cli_make_model (argc, argv), ==, 1);
    g_assert_nonnull (last_cli_error);
    g_assert_nonnull (strstr (last_cli_error, cases[i].says));
    g_assert_null (strchr (last_cli_error, '\n'));
    g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
    g_assert_false (g_file_test (missing, G_FILE_TEST_EXISTS));
  }
  {
    g_autofree char *no = g_build_filename (dir, "no", NULL);
    g_assert_false (g_file_test (no, G_FILE_TEST_EXISTS));   /* --tiny made no folders */
  }
  g_clear_pointer (&last_cli_error, g_free);
  g_rmdir (dir);
}

/* --- written checkpoints --------------------------------------------------------------------- */

typedef struct {
  char *dir;
  char *path;
} MadeModel;

static void
made_model_clear (MadeModel *m)
{
  g_autofree char *tokdir = g_build_filename (m->dir, "tokenizer", NULL);
  g_autofree char *vj = g_build_filename (tokdir, "vocab.json", NULL), *mt = g_build_filename (tokdir, "merges.txt", NULL);
  g_unlink (m->path);
  g_unlink (vj);
  g_unlink (mt);
  g_rmdir (tokdir);
  g_rmdir (m->dir);
  g_free (m->path);
  g_free (m->dir);
}

/* easel-cli make-model --family F --tiny --seed 3 -o DIR/F.safetensors */
static void
make_tiny (const char *family, const char *dtype, MadeModel *m)
{
  m->dir = g_dir_make_tmp ("easel-make-XXXXXX", NULL);
  m->path = g_strdup_printf ("%s/%s.safetensors", m->dir, family);
  char *argv[] = { "make-model", "--family", (char *) family, "--tiny", "--seed", "3", "--dtype", (char *) dtype,
                   "-o", m->path, NULL };
  g_assert_cmpint (easel_cli_make_model (G_N_ELEMENTS (argv) - 1, argv), ==, 0);
}

/* Every --tiny family: the file opens, is detected as its family (prediction from the
 * metadata), holds exactly the spec's tensors with the demo vocabulary's size, and the
 * vocabulary is found where vocab.c looks for a single file's. */
static void
test_make_tiny_detected (void)
{
  for (const char *const *n = easel_model_spec_names (); *n; n++) {
    MadeModel m;
    EaselModelSpec spec;
    g_autoptr(GError) error = NULL;

    make_tiny (*n, "f16", &m);
    g_assert_true (easel_model_spec_get (*n, TRUE, &spec, NULL));
    g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (m.path, &error);
    g_assert_no_error (error);
    const EaselDetection *det = easel_checkpoint_detection (ck);
    g_test_message ("%s: %s (%s), prediction %s", *n, easel_family_name (det->family), det->reason,
                    easel_prediction_name (det->prediction));
    g_assert_cmpint (det->family, ==, spec.family);
    g_assert_cmpint (det->prediction, ==, spec.prediction);
    g_autoptr(EaselSpecTensorList) l = easel_model_spec_tensors (&spec, EASEL_DTYPE_F16);
    g_assert_cmpuint (easel_checkpoint_n_tensors (ck), ==, l->n_tensors);
    g_assert_cmpuint (easel_checkpoint_dtype_count (ck, EASEL_DTYPE_I64), ==, spec.text[0].position_ids ? 1 : 0);
    g_assert_cmpint (det->n_text_encoders, ==, spec.n_text);
    for (int i = 0; i < spec.n_text; i++) {
      g_autofree char *name = g_strconcat (spec.text[i].prefix, spec.text[i].naming == EASEL_TEXT_NAMING_CLIP
                                           ? "text_model.embeddings.token_embedding.weight" : "token_embedding.weight", NULL);
      const EaselCheckpointTensor *t = easel_checkpoint_find (ck, name);
      g_assert_nonnull (t);
      g_assert_cmpint (t->st->shape[0], ==, (gint64) easel_demo_vocab_size ());
    }
    g_autofree char *vocab = easel_vocab_find (NULL, m.path, &error);
    g_assert_no_error (error);
    g_autofree char *want = g_build_filename (m.dir, "tokenizer", NULL);
    g_assert_cmpstr (vocab, ==, want);
    g_clear_pointer (&ck, easel_checkpoint_free);
    made_model_clear (&m);
  }
}

static void
assert_well_scaled (const char *what, const float *x, gsize n, double lo, double hi)
{
  double sum = 0, sq = 0;
  for (gsize i = 0; i < n; i++) {
    g_assert_true (isfinite (x[i]));
    sum += x[i];
    sq += (double) x[i] * x[i];
  }
  double mean = sum / n, std = sqrt (MAX (0.0, sq / n - mean * mean));
  g_test_message ("%s: mean %.4g std %.4g", what, mean, std);
  g_assert_cmpfloat (std, >, lo);
  g_assert_cmpfloat (std, <, hi);
}

/* The random networks are usable: Easel's CLIP, UNet and VAE load them with no hint given (the
 * file's own config metadata tells what the tensors do not, such as the tiny encoders' heads), run,
 * and give finite outputs of unit-ish scale. */
static void
test_make_tiny_runs (gconstpointer data)
{
  const char *family = data;
  MadeModel m;
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (1);

  make_tiny (family, "bf16", &m);
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (m.path, &error);
  g_assert_no_error (error);
  g_autoptr(EaselTokenizer) tok = easel_vocab_load (NULL, m.path, &error);
  g_assert_no_error (error);
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (easel_tokenizer_encode (tok, "a photo of a cat in the snow, highly detailed", -1, ids, &error));
  gint32 padded[EASEL_CLIP_CONTEXT];
  easel_tokenizer_pad_77 (tok, (const gint32 *) ids->data, ids->len, easel_tokenizer_eos (tok), padded);

  for (guint index = 0; index < 2; index++) {
    g_autofree char *prefix = easel_clip_find_prefix (ck, index, NULL);
    if (prefix == NULL)
      continue;
    g_autoptr(EaselClip) clip = easel_clip_new (ck, prefix, NULL, &error);
    g_assert_no_error (error);
    const EaselClipConfig *cc = easel_clip_config (clip);
    EaselClipRequest req = { 0, FALSE, TRUE, cc->projection > 0 };   /* the residual stream itself */
    g_autofree float *hidden = g_new (float, EASEL_CLIP_CONTEXT * cc->width);
    g_autofree float *pooled = g_new (float, cc->width);
    g_autofree float *embeds = cc->projection > 0 ? g_new (float, cc->projection) : NULL;
    g_assert_true (easel_clip_encode (clip, be, padded, 1, EASEL_CLIP_CONTEXT, &req, hidden, pooled, embeds, &error));
    g_assert_no_error (error);
    assert_well_scaled ("text hidden", hidden, EASEL_CLIP_CONTEXT * cc->width, 0.3, 10.0);
    if (embeds)
      assert_well_scaled ("text embeds", embeds, cc->projection, 0.1, 10.0);
  }

  g_autoptr(EaselUnet) unet = easel_unet_new (ck, NULL, &error);
  g_assert_no_error (error);
  {
    const EaselUnetConfig *uc = easel_unet_config (unet);
    const EaselDetection *det = easel_checkpoint_detection (ck);
    const gint64 lh = 16, lw = 16, n_ids = uc->adm_in > 0 ? det->n_time_ids : 0, pw = det->pooled_dim;
    g_autofree float *x = g_new (float, uc->in_channels * lh * lw), *ctx = g_new0 (float, 77 * uc->context_dim);
    g_autofree float *pooled = g_new0 (float, MAX (pw, 1)), *time_ids = g_new0 (float, MAX (n_ids, 1));
    g_autofree float *eps = g_new (float, uc->out_channels * lh * lw);
    const float t = 500.0f;
    g_autoptr(EaselRng) r = easel_rng_new (EASEL_RNG_CPU, 3);
    easel_rng_randn (r, x, uc->in_channels * lh * lw);
    easel_rng_randn (r, ctx, 77 * uc->context_dim);
    for (gint64 i = 0; i < n_ids; i++)
      time_ids[i] = 64.0f;
    g_assert_true (easel_unet_forward (unet, be, x, 1, lh, lw, &t, ctx, 77, uc->adm_in ? pooled : NULL, pw, uc->adm_in ? time_ids : NULL, n_ids, eps, &error));
    g_assert_no_error (error);
    assert_well_scaled ("unet eps", eps, uc->out_channels * lh * lw, 0.05, 20.0);
  }
  g_autoptr(EaselVae) vae = easel_vae_new (ck, NULL, &error);
  g_assert_no_error (error);
  const gint64 h = 16, w = 16, f = easel_vae_factor (vae);
  g_autofree float *z = g_new (float, 4 * h * w);
  g_autofree float *img = g_new (float, 3 * h * f * w * f);
  g_autoptr(EaselRng) rng = easel_rng_new (EASEL_RNG_CPU, 5);
  easel_rng_randn (rng, z, 4 * h * w);
  g_assert_true (easel_vae_decode (vae, be, z, 1, h, w, img, &error));
  g_assert_no_error (error);
  assert_well_scaled ("vae image", img, 3 * h * f * w * f, 0.05, 10.0);
  g_clear_pointer (&ck, easel_checkpoint_free);
  made_model_clear (&m);
}

static void
test_unknown_family (void)
{
  g_autoptr(GError) error = NULL;
  EaselModelSpec spec;
  g_assert_false (easel_model_spec_get ("sd3", FALSE, &spec, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_assert_nonnull (strstr (error->message, "sd3"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (list_cases); i++) {
    g_autofree char *name = g_strdup_printf ("/model-spec/list/%s%s", list_cases[i].family,
                                             list_cases[i].tiny ? "-tiny" : "");
    g_test_add_data_func (name, &list_cases[i], test_matches_list);
  }
  g_test_add_func ("/model-spec/detects-family", test_detects_family);
  g_test_add_func ("/model-spec/unknown-family", test_unknown_family);
  g_test_add_func ("/model-spec/writer-fill", test_writer_fill);
  g_test_add_func ("/model-spec/values", test_values);
  g_test_add_func ("/model-spec/demo-vocab", test_demo_vocab);
  g_test_add_func ("/model-spec/make/cli-errors", test_cli_errors);
  g_test_add_func ("/model-spec/make/tiny-detected", test_make_tiny_detected);
  g_test_add_data_func ("/model-spec/make/runs/sd15", "sd15", test_make_tiny_runs);
  g_test_add_data_func ("/model-spec/make/runs/sdxl", "sdxl", test_make_tiny_runs);
  g_test_add_data_func ("/model-spec/make/runs/sdxl-refiner", "sdxl-refiner", test_make_tiny_runs);
  g_test_add_data_func ("/model-spec/make/runs/sd21v", "sd21v", test_make_tiny_runs);
  return g_test_run ();
}
