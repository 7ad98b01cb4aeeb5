/* tests/test-model-spec.c: engine/model-spec.c's architectures against the real tensor lists
 * (testdata/fullsize_keys: SD 1.5, SD 2.1-768-v, SDXL base 1.0, refiner 1.0) and the tiny test
 * models' (testdata/models/keys): same names, same shapes, same dtypes; the written random-weight
 * checkpoints (engine/model-make.c) open, detect as their family and run through Easel's CLIP and
 * VAE with finite, well-scaled outputs; the streaming safetensors writer; the demo vocabulary. */
#include <math.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/clip.h"
#include "engine/error.h"
#include "engine/family.h"
#include "engine/json.h"
#include "engine/model-make.h"
#include "engine/model-spec.h"
#include "engine/safetensors.h"
#include "engine/tokenizer.h"
#include "engine/vae.h"
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
  return g_test_run ();
}
