/* tests/test-pickle.c: the restricted torch zip / pickle reader (engine/pickle.c) on the shared
 * .ckpt test files: the benign features file (views, shared storages, every dtype, 0-d and empty
 * tensors, a Parameter, nested plain values) against its expected tensors, sd1_tiny.ckpt against
 * sd1_tiny.safetensors, and every hostile file refused without creating PWNED. */
#include <glib/gstdio.h>
#include <string.h>

#include "engine/error.h"
#include "engine/pickle.h"
#include "engine/safetensors.h"
#include "testutil.h"

typedef struct {
  EaselSafetensors *expected;
  const char *strip;     /* path prefix to drop */
  const char *name_fmt;  /* expected name from the rest */
  guint n;
} Check;

static void
check_tensor (const char *path, const EaselPyTensor *t, gpointer user_data)
{
  Check *c = user_data;
  g_autofree char *name = NULL;
  if (!g_str_has_prefix (path, c->strip))
    return;
  name = g_strdup_printf (c->name_fmt, path + strlen (c->strip));
  const EaselStTensor *want = easel_safetensors_find (c->expected, name);
  if (want == NULL)
    return;
  g_assert_cmpint (t->n_dims, ==, want->n_dims);
  for (int d = 0; d < t->n_dims; d++)
    g_assert_cmpint (t->shape[d], ==, want->shape[d]);
  g_assert_cmpint (t->dtype, ==, want->dtype);
  g_autofree float *got = easel_py_tensor_to_f32 (t), *ref = easel_st_tensor_to_f32 (want);
  g_assert_cmpmem (got, easel_py_tensor_numel (t) * sizeof (float), ref, want->n_elements * sizeof (float));
  c->n++;
}

static void
test_features (void)
{
  g_autofree char *path = test_data_path ("ckpt", "features.ckpt", NULL);
  g_autofree char *exp = test_data_path ("ckpt", "features_expected.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  if (path == NULL)
    return;
  g_autoptr(EaselTorchFile) f = easel_torch_open (path, &error);
  g_assert_no_error (error);
  g_autoptr(EaselSafetensors) st = easel_safetensors_open (exp, &error);
  g_assert_no_error (error);
  const EaselPyObject *root = easel_torch_root (f);
  const EaselPyObject *step = easel_py_dict_get (root, "global_step");
  g_assert_nonnull (step);
  g_assert_cmpint (step->i, ==, 1234);
  const EaselPyObject *meta = easel_py_dict_get (root, "meta");
  g_assert_cmpstr (easel_py_dict_get (meta, "name")->str, ==, "tiny");
  g_assert_cmpfloat (easel_py_dict_get (meta, "lr")->f, ==, 0.0001);
  g_assert_cmpint (easel_py_dict_get (easel_py_dict_get (meta, "nested"), "none")->type, ==, EASEL_PY_NONE);
  Check c = { st, "state_dict.", "expected/%s", 0 };
  easel_py_foreach_tensor (root, check_tensor, &c);
  g_assert_cmpuint (c.n, ==, easel_safetensors_n_tensors (st));
}

static void
test_sd1_tiny (void)
{
  g_autofree char *path = test_data_path ("models", "sd1_tiny.ckpt", NULL);
  g_autofree char *sf = test_data_path ("models", "sd1_tiny.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  if (path == NULL)
    return;
  g_autoptr(EaselTorchFile) f = easel_torch_open (path, &error);
  g_assert_no_error (error);
  g_autoptr(EaselSafetensors) st = easel_safetensors_open (sf, &error);
  g_assert_no_error (error);
  Check c = { st, "state_dict.", "%s", 0 };
  easel_py_foreach_tensor (easel_torch_root (f), check_tensor, &c);
  g_assert_cmpuint (c.n, ==, easel_safetensors_n_tensors (st));
}

static void
test_hostile (void)
{
  static const struct {
    const char *file, *says;
  } cases[] = {
    { "hostile_reduce_os_system.ckpt", "not allowed" },
    { "hostile_reduce_builtins_eval.pkl", "bare pickle" },
    { "hostile_reduce_subprocess.ckpt", "not allowed" },
    { "hostile_global_unexpected_class.ckpt", "not allowed" },
    { "hostile_zip_path_traversal.ckpt", "unsafe name" },
    { "hostile_truncated.ckpt", "end of central directory" },
    { "hostile_huge_storage.ckpt", "record holds" },
    { "hostile_huge_binbytes.pkl", "bare pickle" },
    { "features_legacy.pt", "not a torch zip file" },
  };
  g_autofree char *dir = test_data_path ("ckpt", NULL);
  if (dir == NULL)
    return;
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *tmp = g_dir_make_tmp ("easel-pickle-XXXXXX", NULL);
  g_assert_cmpint (g_chdir (tmp), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *path = g_build_filename (dir, cases[i].file, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(EaselTorchFile) f = easel_torch_open (path, &error);
    g_assert_null (f);
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);
    if (strstr (error->message, cases[i].says) == NULL)
      g_error ("%s: '%s' does not say '%s'", cases[i].file, error->message, cases[i].says);
    g_assert_false (g_file_test ("PWNED", G_FILE_TEST_EXISTS));
  }
  g_assert_cmpint (g_chdir (cwd), ==, 0);
  g_rmdir (tmp);
}

/* Every prefix of features.ckpt fails cleanly: no crash, no read outside the bytes (run under ASan). */
static void
test_prefixes (void)
{
  g_autofree char *path = test_data_path ("ckpt", "features.ckpt", NULL);
  g_autofree char *data = NULL;
  gsize len;
  if (path == NULL)
    return;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  for (gsize cut = 0; cut < len; cut += 1 + cut / 16) {
    g_autoptr(GBytes) b = g_bytes_new_static (data, cut);
    g_autoptr(GError) error = NULL;
    g_autoptr(EaselTorchFile) f = easel_torch_new_from_bytes (b, "cut", &error);
    g_assert_null (f);
    g_assert_nonnull (error);
  }
}

/* The hand-written seeds of the fuzz corpus (tests/fuzz/make-corpus.py): the valid one gives a
 * row-major tensor, its transposed view and an offset f16 view; each broken one is refused. */
static void
test_corpus (void)
{
  if (g_getenv ("EASEL_SOURCE_ROOT") == NULL) {
    g_test_skip ("EASEL_SOURCE_ROOT not set");
    return;
  }
  g_autofree char *dir = g_build_filename (g_getenv ("EASEL_SOURCE_ROOT"), "tests", "fuzz", "corpus", "pickle", NULL);
  g_autofree char *valid = g_build_filename (dir, "valid.ckpt", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselTorchFile) f = easel_torch_open (valid, &error);
  g_assert_no_error (error);
  const EaselPyObject *sd = easel_py_dict_get (easel_torch_root (f), "state_dict");
  const EaselPyObject *w = easel_py_dict_get (sd, "a.weight"), *t = easel_py_dict_get (sd, "a.t");
  const EaselPyObject *b = easel_py_dict_get (sd, "b");
  g_assert_true (w && t && b && w->type == EASEL_PY_TENSOR && t->type == EASEL_PY_TENSOR);
  g_autofree float *fw = easel_py_tensor_to_f32 (&w->tensor), *ft = easel_py_tensor_to_f32 (&t->tensor);
  g_autofree float *fb = easel_py_tensor_to_f32 (&b->tensor);
  const float want_w[6] = { 1, 2, 3, 4, 5, 6 }, want_t[6] = { 1, 4, 2, 5, 3, 6 };
  g_assert_cmpmem (fw, sizeof want_w, want_w, sizeof want_w);
  g_assert_cmpmem (ft, sizeof want_t, want_t, sizeof want_t);
  g_assert_cmpint (b->tensor.dtype, ==, EASEL_DTYPE_F16);
  g_assert_cmpfloat (fb[0], ==, 2.0f);
  static const char *const bad[] = { "short-record.ckpt", "view-past-storage.ckpt", "bad-global.ckpt",
                                     "traversal.ckpt", "bare-pickle.pkl", "truncated.ckpt", "huge-binbytes.ckpt" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autofree char *p = g_build_filename (dir, bad[i], NULL);
    g_autoptr(GError) e = NULL;
    g_autoptr(EaselTorchFile) h = easel_torch_open (p, &e);
    g_assert_null (h);
    g_assert_error (e, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/pickle/features", test_features);
  g_test_add_func ("/pickle/sd1-tiny", test_sd1_tiny);
  g_test_add_func ("/pickle/hostile", test_hostile);
  g_test_add_func ("/pickle/prefixes", test_prefixes);
  g_test_add_func ("/pickle/corpus", test_corpus);
  return g_test_run ();
}
