/* tests/test-weights.c: binding checkpoint tensors under Easel's names, with shape checks. */
#include <glib/gstdio.h>
#include <string.h>

#include "engine/error.h"
#include "engine/weights.h"
#include "testutil.h"

static char *
rename_drop_ids (const char *key, gpointer user_data)
{
  if (g_str_has_suffix (key, "position_ids"))
    return NULL;
  return g_strconcat ("m.", key, NULL);
}

static void
test_bind (void)
{
  g_autofree char *path = test_data_path ("models", "sd1_tiny.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  if (path == NULL)
    return;
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  g_assert_no_error (error);
  g_autoptr(EaselWeights) w = easel_weights_new (ck, "cond_stage_model.transformer.text_model.", rename_drop_ids, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (easel_weights_has (w, "m.embeddings.position_ids"));
  const gint64 ok[2] = { 49408, -1 }, bad[2] = { 49408, 17 };
  const EaselStTensor *t = easel_weights_require (w, "m.embeddings.token_embedding.weight", 2, ok, &error);
  g_assert_no_error (error);
  g_assert_cmpint (t->shape[1], ==, 16);
  g_assert_null (easel_weights_require (w, "m.embeddings.token_embedding.weight", 2, bad, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);
  g_assert_nonnull (strstr (error->message, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"));
  g_assert_nonnull (strstr (error->message, "[49408, 17]"));
  g_clear_error (&error);
  g_assert_null (easel_weights_require (w, "m.nope", 1, ok, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND);
  g_autoptr(GPtrArray) unused = easel_weights_unused (w);
  g_assert_cmpuint (unused->len, ==, easel_weights_n (w) - 1);

  g_autoptr(EaselGraph) g = easel_graph_new ();
  EaselTensor *leaf = easel_graph_weight_st (g, t);
  g_assert_true (leaf->data == (void *) t->data);         /* in place, no copy */
  g_assert_null (easel_graph_weight_st (g, NULL));
}

static void
test_no_prefix (void)
{
  g_autofree char *path = test_data_path ("models", "sd1_tiny.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  if (path == NULL)
    return;
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  g_assert_null (easel_weights_new (ck, "conditioner.embedders.", NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/weights/bind", test_bind);
  g_test_add_func ("/weights/no-prefix", test_no_prefix);
  return g_test_run ();
}
