/* tests/test-embedding.c: textual inversion files (engine/embedding.c) in A1111's .safetensors and
 * .pt layouts and SDXL's clip_l/clip_g pair; a .pt made here by hand (zip + protocol 2 pickle) and a
 * hostile variant; name expansion in token sequences; ComfyUI's embedding:NAME; and the text
 * encoder's extra token rows: vectors equal to two token rows give the same hidden states as those
 * tokens (sd1_tiny). */
#include <glib/gstdio.h>
#include <string.h>

#include "engine/checkpoint.h"
#include "engine/clip.h"
#include "engine/embedding.h"
#include "engine/error.h"
#include "testutil.h"

static void
put_le (GByteArray *b, guint64 v, int n)
{
  for (int i = 0; i < n; i++) {
    guint8 c = (guint8) (v >> (8 * i));
    g_byte_array_append (b, &c, 1);
  }
}

/* A stored (uncompressed) zip of the members; CRCs are left 0 (the reader does not need them). */
static GByteArray *
zip (const char *const *names, GByteArray *const *data, int n)
{
  GByteArray *z = g_byte_array_new ();
  g_autoptr(GByteArray) cd = g_byte_array_new ();
  for (int i = 0; i < n; i++) {
    guint64 off = z->len;
    gsize nl = strlen (names[i]);
    put_le (z, 0x04034b50, 4); put_le (z, 20, 2); put_le (z, 0, 2); put_le (z, 0, 2); put_le (z, 0, 4);
    put_le (z, 0, 4); put_le (z, data[i]->len, 4); put_le (z, data[i]->len, 4); put_le (z, nl, 2); put_le (z, 0, 2);
    g_byte_array_append (z, (const guint8 *) names[i], nl);
    g_byte_array_append (z, data[i]->data, data[i]->len);
    put_le (cd, 0x02014b50, 4); put_le (cd, 20, 2); put_le (cd, 20, 2); put_le (cd, 0, 2); put_le (cd, 0, 2);
    put_le (cd, 0, 4); put_le (cd, 0, 4); put_le (cd, data[i]->len, 4); put_le (cd, data[i]->len, 4);
    put_le (cd, nl, 2); put_le (cd, 0, 2); put_le (cd, 0, 2); put_le (cd, 0, 2); put_le (cd, 0, 2); put_le (cd, 0, 4);
    put_le (cd, off, 4);
    g_byte_array_append (cd, (const guint8 *) names[i], nl);
  }
  guint64 cd_off = z->len;
  g_byte_array_append (z, cd->data, cd->len);
  put_le (z, 0x06054b50, 4); put_le (z, 0, 2); put_le (z, 0, 2); put_le (z, n, 2); put_le (z, n, 2);
  put_le (z, cd->len, 4); put_le (z, cd_off, 4); put_le (z, 0, 2);
  return z;
}

static void
op_str (GByteArray *b, const char *s)
{
  g_byte_array_append (b, (const guint8 *) "X", 1);
  put_le (b, strlen (s), 4);
  g_byte_array_append (b, (const guint8 *) s, strlen (s));
}

static void
op (GByteArray *b, const char *bytes)
{
  g_byte_array_append (b, (const guint8 *) bytes, strlen (bytes));
}

/* torch.save ({'string_to_param': {'*': tensor [N, C] float32}, 'name': 'x'}) as A1111 writes it,
 * with `global` as the storage's rebuild function (a hostile file when it is not the real one). */
static char *
write_pt (const char *dir, const char *file, const float *v, int N, int C, const char *global)
{
  g_autoptr(GByteArray) pkl = g_byte_array_new ();
  op (pkl, "\x80\x02}(");
  op_str (pkl, "string_to_param");
  op (pkl, "}(");
  op_str (pkl, "*");
  op (pkl, global);
  op (pkl, "((");
  op_str (pkl, "storage");
  op (pkl, "ctorch\nFloatStorage\n");
  op_str (pkl, "0");
  op_str (pkl, "cpu");
  op (pkl, "J");
  put_le (pkl, N * C, 4);
  op (pkl, "tQK");
  put_le (pkl, 0, 1);           /* storage offset 0 */
  op (pkl, "K");
  put_le (pkl, N, 1);
  op (pkl, "K");
  put_le (pkl, C, 1);
  op (pkl, "\x86K");
  put_le (pkl, C, 1);
  op (pkl, "K\x01\x86\x89" "ccollections\nOrderedDict\n)RtRu");
  op_str (pkl, "name");
  op_str (pkl, "x");
  op (pkl, "u.");
  g_autoptr(GByteArray) storage = g_byte_array_new ();
  g_byte_array_append (storage, (const guint8 *) v, N * C * sizeof (float));
  const char *names[2] = { "emb/data.pkl", "emb/data/0" };
  GByteArray *data[2] = { pkl, storage };
  g_autoptr(GByteArray) z = zip (names, data, 2);
  char *path = g_build_filename (dir, file, NULL);
  g_assert_true (g_file_set_contents (path, (const char *) z->data, z->len, NULL));
  return path;
}

static void
test_files (void)
{
  g_autofree char *dir = g_dir_make_tmp ("easel-emb-XXXXXX", NULL);
  float v[3 * 8], g[3 * 12];
  for (int i = 0; i < 3 * 8; i++)
    v[i] = (float) i * 0.25f - 2.0f;
  for (int i = 0; i < 3 * 12; i++)
    g[i] = (float) i * -0.5f;
  g_autoptr(GError) error = NULL;

  /* A1111 .pt */
  g_autofree char *pt = write_pt (dir, "my-style.pt", v, 3, 8, "ctorch._utils\n_rebuild_tensor_v2\n");
  g_autoptr(EaselEmbedding) e = easel_embedding_load (pt, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (e->name, ==, "my-style");
  g_assert_cmpint (e->n_vectors, ==, 3);
  g_assert_cmpint (e->width[EASEL_EMBEDDING_CLIP_L], ==, 8);
  g_assert_cmpint (e->width[EASEL_EMBEDDING_CLIP_G], ==, 0);
  g_assert_cmpmem (e->vectors[0], sizeof v, v, sizeof v);

  /* the same with a hostile global: refused, nothing run */
  g_autofree char *bad = write_pt (dir, "bad.pt", v, 3, 8, "cos\nsystem\n");
  g_autoptr(EaselEmbedding) b = easel_embedding_load (bad, &error);
  g_assert_null (b);
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);
  g_assert_nonnull (strstr (error->message, "os.system"));
  g_clear_error (&error);

  /* A1111 .safetensors and the SDXL pair */
  const gint64 s1[2] = { 3, 8 }, s2[2] = { 3, 12 };
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  g_assert_true (easel_safetensors_writer_add (w, "emb_params", EASEL_DTYPE_F32, 2, s1, v, &error));
  g_autofree char *sf = g_build_filename (dir, "a.safetensors", NULL);
  g_assert_true (easel_safetensors_writer_save (w, sf, &error));
  g_autoptr(EaselEmbedding) a = easel_embedding_load (sf, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (a->vectors[0], sizeof v, v, sizeof v);

  g_autoptr(EaselSafetensorsWriter) w2 = easel_safetensors_writer_new ();
  g_assert_true (easel_safetensors_writer_add (w2, "clip_g", EASEL_DTYPE_F32, 2, s2, g, &error));
  g_assert_true (easel_safetensors_writer_add (w2, "clip_l", EASEL_DTYPE_F32, 2, s1, v, &error));
  g_autofree char *xl = g_build_filename (dir, "xl.safetensors", NULL);
  g_assert_true (easel_safetensors_writer_save (w2, xl, &error));
  g_autoptr(EaselEmbedding) x = easel_embedding_load (xl, &error);
  g_assert_no_error (error);
  g_assert_cmpint (x->width[EASEL_EMBEDDING_CLIP_L], ==, 8);
  g_assert_cmpint (x->width[EASEL_EMBEDDING_CLIP_G], ==, 12);
  g_assert_cmpmem (x->vectors[EASEL_EMBEDDING_CLIP_G], sizeof g, g, sizeof g);

  const char *files[] = { pt, bad, sf, xl };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    g_remove (files[i]);
  g_rmdir (dir);
}

static void
test_expand (void)
{
  const gint32 tokens[] = { 49406, 320, 7, 8, 9, 320, 7, 11, 49407 };
  g_autoptr(GArray) n1 = g_array_new (FALSE, FALSE, sizeof (gint32)), n2 = g_array_new (FALSE, FALSE, sizeof (gint32));
  const gint32 a[] = { 320, 7 }, b[] = { 320, 7, 8 };
  g_array_append_vals (n1, a, 2);
  g_array_append_vals (n2, b, 3);
  const GArray *names[2] = { n1, n2 };
  const gint64 nv[2] = { 1, 2 };
  const gint32 first[2] = { 49408, 49409 };
  g_autoptr(GArray) out = easel_embedding_expand (tokens, G_N_ELEMENTS (tokens), names, nv, first, 2);
  const gint32 want[] = { 49406, 49409, 49410, 9, 49408, 11, 49407 };
  g_assert_cmpmem (out->data, out->len * sizeof (gint32), want, sizeof want);

  g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *text = easel_embedding_comfy_names ("a (embedding:my_style:1.2), embedding:x embedding:my_style", found);
  g_assert_cmpstr (text, ==, "a (my_style:1.2), x my_style");
  g_assert_cmpuint (found->len, ==, 2);
  g_assert_cmpstr (found->pdata[0], ==, "my_style");
}

/* Extra rows equal to the rows of two tokens give exactly the hidden states of those tokens. */
static void
test_clip_extra_rows (void)
{
  g_autofree char *path = test_data_path ("models", "sd1_tiny.safetensors", NULL);
  g_autofree char *hint_path = test_data_path ("models", "sd1_tiny", "text_encoder", "config.json", NULL);
  g_autoptr(GError) error = NULL;
  if (path == NULL)
    return;
  g_autoptr(EaselJson) hint = easel_json_parse_file (hint_path, 0, &error);
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  g_assert_no_error (error);
  g_autofree char *prefix = easel_clip_find_prefix (ck, 0, &error);
  g_autoptr(EaselClip) clip = easel_clip_new (ck, prefix, hint, &error);
  g_assert_no_error (error);
  const EaselClipConfig *cfg = easel_clip_config (clip);
  g_autofree char *tok_key = g_strconcat (prefix, "text_model.embeddings.token_embedding.weight", NULL);
  const EaselCheckpointTensor *tok = easel_checkpoint_find (ck, tok_key);
  g_assert_nonnull (tok);
  g_autofree float *table = easel_st_tensor_to_f32 (tok->st);

  gint32 ids[77], ids2[77];
  for (int i = 0; i < 77; i++)
    ids[i] = 49407;
  ids[0] = 49406;
  ids[1] = 320;
  ids[2] = 1125;
  ids[3] = 539;
  memcpy (ids2, ids, sizeof ids);
  ids2[2] = (gint32) cfg->vocab + 1;     /* stands for 1125 */
  ids2[3] = (gint32) cfg->vocab;         /* stands for 539 */
  g_autofree float *rows = g_new (float, 2 * cfg->width);
  memcpy (rows, table + 539 * cfg->width, cfg->width * sizeof (float));
  memcpy (rows + cfg->width, table + 1125 * cfg->width, cfg->width * sizeof (float));

  g_autoptr(EaselBackend) backend = easel_backend_new_cpu (1);
  EaselClipRequest req = { .skip = 0, .final_ln = TRUE };
  g_autofree float *h1 = g_new (float, 77 * cfg->width), *h2 = g_new (float, 77 * cfg->width);
  g_assert_true (easel_clip_encode (clip, backend, ids, 1, 77, &req, h1, NULL, NULL, &error));
  /* without extra rows the placeholders are outside the vocabulary */
  g_assert_false (easel_clip_encode (clip, backend, ids2, 1, 77, &req, h2, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_true (easel_clip_set_extra_tokens (clip, rows, 2, &error));
  g_assert_true (easel_clip_encode (clip, backend, ids2, 1, 77, &req, h2, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (h1, 77 * cfg->width * sizeof (float), h2, 77 * cfg->width * sizeof (float));
  /* a different vector changes the output */
  rows[0] += 1.0f;
  g_assert_true (easel_clip_set_extra_tokens (clip, rows, 2, &error));
  g_assert_true (easel_clip_encode (clip, backend, ids2, 1, 77, &req, h2, NULL, NULL, &error));
  g_assert_true (memcmp (h1, h2, 77 * cfg->width * sizeof (float)) != 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/embedding/files", test_files);
  g_test_add_func ("/embedding/expand", test_expand);
  g_test_add_func ("/embedding/clip-extra-rows", test_clip_extra_rows);
  return g_test_run ();
}
