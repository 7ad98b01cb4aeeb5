/* tests/test-networks.c: LoRAs and textual-inversion embeddings through a job (engine/networks.h,
 * easel_generate, easel-cli generate) on the tiny models of the test data (sd1_tiny + its kohya
 * LoRA, sdxl_tiny; embeddings and an SDXL LoRA written here with the safetensors writer):
 *  - LoRA strength 0 gives the image of no LoRA, strength 1 another; a second job with another
 *    strength reuses the loaded networks and matches a fresh engine; a job without LoRAs restores;
 *  - <lora:NAME:M> / <lora:NAME:TE:UNET> tags equal the same LoRA given beside the prompt (so the
 *    tag is gone from the encoded text), and stay in the parameters with A1111's "Lora hashes";
 *  - an embedding whose vectors are the token rows of "red dog" gives the image of the words
 *    "red dog" (SD 1.x, and SDXL's clip_l/clip_g pair), also as ComfyUI's embedding:NAME; "TI hashes";
 *  - the chunker hook: vectors count toward the 75 tokens and never straddle two chunks;
 *  - refusals: a missing LoRA, a LoRA for another family (both ways), an unknown or misfit embedding
 *    name left as text (as A1111 does);
 *  - easel-cli generate --lora, --lora-dir, --embeddings-dir, and --params-from restoring them. */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "app/cli/cli.h"
#include "engine/engine-private.h"
#include "engine/networks.h"
#include "engine/pipeline.h"
#include "engine/safetensors.h"
#include "testutil.h"

typedef struct {
  EaselEngine *engine;
  EaselModel *model;
} Fixture;

static gboolean
fixture_load (Fixture *f, const char *model)
{
  g_autofree char *path = test_data_path ("models", model, NULL);
  g_autofree char *vocab = test_data_path ("tokenizer", NULL);
  if (path == NULL || vocab == NULL)
    return FALSE;
  g_autoptr(GError) error = NULL;
  EaselEngineOptions eo = { .backend = "cpu", .n_threads = 2 };
  f->engine = easel_engine_new (&eo, &error);
  g_assert_no_error (error);
  EaselModelOptions mo = { .vocab = vocab };
  f->model = easel_model_load_with_options (f->engine, path, &mo, &error);
  g_assert_no_error (error);
  return TRUE;
}

static void
fixture_clear (Fixture *f)
{
  g_clear_pointer (&f->model, easel_model_unref);
  g_clear_pointer (&f->engine, easel_engine_free);
}

static EaselJobParams
small_job (const char *prompt, int side)
{
  return (EaselJobParams) {
    .prompt = prompt, .negative_prompt = "blurry", .sampler = "euler", .scheduler = "normal", .steps = 3,
    .cfg = 5.0, .seed = 11, .rng = EASEL_RNG_CPU, .width = side, .height = side, .batch_size = 1, .batch_count = 1,
    .clip_skip = 1,
  };
}

/* One image and its parameters text; NULL with error set on failure. */
static EaselImage *
run_job (Fixture *f, const EaselJobParams *job, char **parameters, GPtrArray **messages, GError **error)
{
  EaselPipelineRequest req = { .job = job };
  EaselPipelineResult r;
  if (!easel_pipeline_run (f->engine, f->model, &req, NULL, NULL, NULL, &r, error)) {
    easel_pipeline_result_clear (&r);
    return NULL;
  }
  g_assert_cmpuint (r.images->len, ==, 1);
  EaselImage *im = g_ptr_array_steal_index (r.images, 0);
  if (parameters)
    *parameters = g_strdup (r.parameters->pdata[0]);
  if (messages)
    *messages = g_ptr_array_ref (r.messages);
  easel_pipeline_result_clear (&r);
  return im;
}

static gboolean
same_pixels (const EaselImage *a, const EaselImage *b)
{
  return a->width == b->width && a->height == b->height && a->channels == b->channels
         && memcmp (a->pixels, b->pixels, (gsize) a->height * a->stride) == 0;
}

static char *
kohya_lora_path (void)
{
  return test_data_path ("models", "sd1_tiny_lora_kohya.safetensors", NULL);
}

/* A1111's addnet hash, computed here from the file: SHA-256 after the 8-byte length + header. */
static char *
addnet_short_hash (const char *path)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  g_assert_cmpuint (len, >=, 8);
  guint64 n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | (guint8) data[i];
  g_assert_cmpuint (n, <=, len - 8);
  g_autofree char *h = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data + 8 + n, len - 8 - n);
  return g_strndup (h, 12);
}

static char *
file_short_hash (const char *path)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_assert_true (g_file_get_contents (path, &data, &len, NULL));
  g_autofree char *h = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) data, len);
  return g_strndup (h, 12);
}

/* The value of "Key: value" in a parameters text. */
static char *
param_value (const char *text, const char *key)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselParameters) p = easel_parameters_parse (text, -1, &error);
  g_assert_no_error (error);
  return g_strdup (easel_parameters_get_extra (p, key));
}

/* --- LoRAs ----------------------------------------------------------------------------------- */

static void
test_lora_strengths_and_reuse (void)
{
  Fixture f = { 0 }, fresh = { 0 };
  if (!fixture_load (&f, "sd1_tiny"))
    return;
  g_autofree char *lora = kohya_lora_path ();
  g_autoptr(GError) error = NULL;
  EaselJobParams job = small_job ("a photo of a cat", 128);

  g_autoptr(EaselImage) plain = run_job (&f, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (easel_model_peek_lora_stack (f.model));   /* no LoRA: nothing made for it */
  EaselUnet *unet = easel_model_unet (f.model, NULL);

  EaselJobLora l = { lora, 0.0, 0.0 };
  job.loras = &l, job.n_loras = 1;
  g_autoptr(EaselImage) zero = run_job (&f, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (plain, zero));

  l.unet_strength = l.te_strength = 0.5;
  g_autoptr(EaselImage) half = run_job (&f, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (same_pixels (plain, half));
  EaselLora *opened = easel_model_lora (f.model, lora, NULL);

  l.unet_strength = l.te_strength = 1.0;
  g_autoptr(EaselImage) one = run_job (&f, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (same_pixels (plain, one));
  g_assert_false (same_pixels (half, one));
  /* the same networks and the same opened file, re-merged */
  g_assert_true (easel_model_unet (f.model, NULL) == unet);
  g_assert_true (easel_model_lora (f.model, lora, NULL) == opened);
  EaselLoraStack *stack = easel_model_peek_lora_stack (f.model);
  g_assert_nonnull (stack);
  g_assert_cmpuint (easel_lora_stack_n_rebuilt (stack), >, 0);
  g_assert_cmpuint (easel_lora_stack_n_patched (stack), ==, easel_lora_stack_n_rebuilt (stack));

  /* a fresh engine at strength 1 gives the same image */
  g_assert_true (fixture_load (&fresh, "sd1_tiny"));
  g_autoptr(EaselImage) one_fresh = run_job (&fresh, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (one, one_fresh));

  /* te only and unet only differ from both */
  l.unet_strength = 0.0;
  g_autoptr(EaselImage) te_only = run_job (&f, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (same_pixels (te_only, plain));
  g_assert_false (same_pixels (te_only, one));

  /* a job without LoRAs restores the model */
  job.loras = NULL, job.n_loras = 0;
  g_autoptr(EaselImage) again = run_job (&f, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (plain, again));
  g_assert_cmpuint (easel_lora_stack_n_patched (stack), ==, 0);
  fixture_clear (&fresh);
  fixture_clear (&f);
}

static void
test_lora_prompt_tags (void)
{
  Fixture f = { 0 };
  if (!fixture_load (&f, "sd1_tiny"))
    return;
  g_autofree char *lora = kohya_lora_path ();
  g_autofree char *dir = g_path_get_dirname (lora);
  g_autoptr(GError) error = NULL;
  const char *dirs[] = { dir, NULL };

  /* the tag gives what the same LoRA beside the prompt gives: the tag is not encoded */
  EaselJobParams job = small_job ("a photo of a cat <lora:sd1_tiny_lora_kohya:0.8:0.3>", 128);
  job.lora_dirs = dirs;
  g_autofree char *params = NULL;
  g_autoptr(EaselImage) tagged = run_job (&f, &job, &params, NULL, &error);
  g_assert_no_error (error);
  EaselJobLora l = { lora, 0.3, 0.8 };
  EaselJobParams job2 = small_job ("a photo of a cat ", 128);
  job2.loras = &l, job2.n_loras = 1;
  g_autofree char *params2 = NULL;
  g_autoptr(EaselImage) given = run_job (&f, &job2, &params2, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (tagged, given));

  /* the parameters keep the tag and record the hash under the name as written */
  g_autofree char *want_hash = addnet_short_hash (lora);
  g_autofree char *want = g_strdup_printf ("sd1_tiny_lora_kohya: %s", want_hash);
  g_autoptr(EaselParameters) p = easel_parameters_parse (params, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (p->prompt, ==, "a photo of a cat <lora:sd1_tiny_lora_kohya:0.8:0.3>");
  g_assert_cmpstr (easel_parameters_get_extra (p, "Lora hashes"), ==, want);
  g_assert_true (strstr (params, "Lora hashes: \"sd1_tiny_lora_kohya: ") != NULL);   /* quoted as A1111 does */
  /* a LoRA beside the prompt becomes a tag in the recorded prompt (te, then unet) */
  g_autoptr(EaselParameters) p2 = easel_parameters_parse (params2, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (p2->prompt, ==, "a photo of a cat  <lora:sd1_tiny_lora_kohya:0.8:0.3>");
  g_assert_cmpstr (easel_parameters_get_extra (p2, "Lora hashes"), ==, want);

  /* beside the model (models/ holds sd1_tiny/ and the LoRA) with no folder given */
  job.lora_dirs = NULL;
  g_autoptr(EaselImage) beside = run_job (&f, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (tagged, beside));

  /* $EASEL_LORA_DIR is searched too: a copy under another name, found only there */
  g_autofree char *tmp = g_dir_make_tmp ("easel-lora-XXXXXX", NULL);
  g_autofree char *copy = g_build_filename (tmp, "envlora.safetensors", NULL);
  g_autofree char *bytes = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (lora, &bytes, &len, NULL));
  g_assert_true (g_file_set_contents (copy, bytes, len, NULL));
  job.prompt = "a photo of a cat <lora:envlora:0.8:0.3>";
  g_assert_null (run_job (&f, &job, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_setenv ("EASEL_LORA_DIR", tmp, TRUE);
  g_autoptr(EaselImage) env = run_job (&f, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (tagged, env));
  g_unsetenv ("EASEL_LORA_DIR");
  g_unlink (copy);
  g_rmdir (tmp);
  fixture_clear (&f);
}

/* A LoRA file replaced between jobs is read again: the kohya file with every alpha doubled gives
 * what the original gives at strength 2 (both scale the delta by an exact 2). */
static void
test_lora_file_replaced (void)
{
  Fixture f = { 0 };
  if (!fixture_load (&f, "sd1_tiny"))
    return;
  g_autofree char *lora = kohya_lora_path ();
  g_autofree char *tmp = g_dir_make_tmp ("easel-lora-XXXXXX", NULL);
  g_autofree char *copy = g_build_filename (tmp, "mine.safetensors", NULL);
  g_autofree char *bytes = NULL;
  gsize len;
  g_autoptr(GError) error = NULL;
  g_assert_true (g_file_get_contents (lora, &bytes, &len, NULL));
  g_assert_true (g_file_set_contents (copy, bytes, len, NULL));
  EaselJobParams job = small_job ("a photo of a cat", 128);
  EaselJobLora l = { copy, 1, 1 };
  job.loras = &l, job.n_loras = 1;
  g_autoptr(EaselImage) one = run_job (&f, &job, NULL, NULL, &error);
  g_assert_no_error (error);

  g_autoptr(EaselSafetensors) st = easel_safetensors_open (lora, &error);
  g_assert_no_error (error);
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  for (gsize i = 0; i < easel_safetensors_n_tensors (st); i++) {
    const EaselStTensor *t = easel_safetensors_tensor (st, i);
    if (g_str_has_suffix (t->name, ".alpha")) {
      g_autofree float *a = easel_st_tensor_to_f32 (t);
      a[0] *= 2;
      g_assert_true (easel_safetensors_writer_add (w, t->name, EASEL_DTYPE_F32, t->n_dims, t->shape, a, NULL));
    } else {
      g_assert_true (easel_safetensors_writer_add (w, t->name, t->dtype, t->n_dims, t->shape, t->data, NULL));
    }
  }
  g_assert_true (easel_safetensors_writer_save (w, copy, &error));
  g_assert_no_error (error);
  g_autoptr(EaselImage) doubled = run_job (&f, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (same_pixels (one, doubled));
  EaselJobLora orig = { lora, 2, 2 };
  job.loras = &orig;
  g_autoptr(EaselImage) two = run_job (&f, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (two, doubled));
  g_unlink (copy);
  g_rmdir (tmp);
  fixture_clear (&f);
}

static void
test_lora_refusals (void)
{
  Fixture f = { 0 }, xl = { 0 };
  if (!fixture_load (&f, "sd1_tiny"))
    return;
  g_autofree char *lora = kohya_lora_path ();
  g_autoptr(GError) error = NULL;
  EaselJobParams job = small_job ("a cat <lora:no_such_lora:1>", 128);
  g_assert_null (run_job (&f, &job, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no_such_lora"));
  g_assert_null (strchr (error->message, '\n'));
  g_clear_error (&error);

  EaselJobLora missing = { "/nonexistent/dir/x.safetensors", 1, 1 };
  job = small_job ("a cat", 128);
  job.loras = &missing, job.n_loras = 1;
  g_assert_null (run_job (&f, &job, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND);
  g_clear_error (&error);

  EaselJobLora bad = { lora, NAN, 1 };
  job.loras = &bad;
  g_assert_null (run_job (&f, &job, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);

  job.prompt = "a cat <lora:sd1_tiny_lora_kohya:x>";
  job.loras = NULL, job.n_loras = 0;
  g_assert_null (run_job (&f, &job, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);

  /* an SD 1.x LoRA on SDXL: refused in one line, before any sampling */
  g_assert_true (fixture_load (&xl, "sdxl_tiny"));
  EaselJobLora sd1 = { lora, 1, 1 };
  job = small_job ("a cat", 64);
  job.loras = &sd1, job.n_loras = 1;
  g_assert_null (run_job (&xl, &job, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_assert_nonnull (strstr (error->message, "sd1_tiny_lora_kohya"));
  g_assert_null (strchr (error->message, '\n'));
  g_test_message ("SD 1.x LoRA on SDXL: %s", error->message);
  g_clear_error (&error);
  fixture_clear (&xl);
  fixture_clear (&f);
}

/* A kohya SDXL LoRA on sdxl_tiny's modules: one per network. */
static char *
write_sdxl_lora (const char *dir)
{
  static const struct {
    const char *stem;
    gint64 out, in;
  } mods[] = {
    { "lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 8, 8 },
    { "lora_te2_text_model_encoder_layers_1_mlp_fc1", 64, 16 },
    { "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k", 32, 24 },
  };
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  const gint64 r = 2;
  for (guint i = 0; i < G_N_ELEMENTS (mods); i++) {
    g_autofree float *down = g_new (float, r * mods[i].in), *up = g_new (float, mods[i].out * r);
    for (gint64 k = 0; k < r * mods[i].in; k++)
      down[k] = (float) ((k * 7 + i) % 11) / 11.0f - 0.5f;
    for (gint64 k = 0; k < r * mods[i].out; k++)
      up[k] = (float) ((k * 5 + 3 * i) % 13) / 13.0f - 0.5f;
    const gint64 ds[2] = { r, mods[i].in }, us[2] = { mods[i].out, r };
    const float alpha = 2.0f;
    g_autofree char *dn = g_strconcat (mods[i].stem, ".lora_down.weight", NULL);
    g_autofree char *un = g_strconcat (mods[i].stem, ".lora_up.weight", NULL);
    g_autofree char *an = g_strconcat (mods[i].stem, ".alpha", NULL);
    g_assert_true (easel_safetensors_writer_add (w, dn, EASEL_DTYPE_F32, 2, ds, down, NULL));
    g_assert_true (easel_safetensors_writer_add (w, un, EASEL_DTYPE_F32, 2, us, up, NULL));
    g_assert_true (easel_safetensors_writer_add (w, an, EASEL_DTYPE_F32, 0, NULL, &alpha, NULL));
  }
  char *path = g_build_filename (dir, "xl_lora.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true (easel_safetensors_writer_save (w, path, &error));
  g_assert_no_error (error);
  return path;
}

static void
test_lora_sdxl (void)
{
  Fixture xl = { 0 }, sd1 = { 0 };
  if (!fixture_load (&xl, "sdxl_tiny"))
    return;
  g_autofree char *dir = g_dir_make_tmp ("easel-networks-XXXXXX", NULL);
  g_autofree char *lora = write_sdxl_lora (dir);
  g_autoptr(GError) error = NULL;
  EaselJobParams job = small_job ("a photo of a cat", 64);
  g_autoptr(EaselImage) plain = run_job (&xl, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  EaselJobLora l = { lora, 1, 1 };
  job.loras = &l, job.n_loras = 1;
  g_autoptr(EaselImage) with = run_job (&xl, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (same_pixels (plain, with));
  /* all three modules merged: CLIP-L, OpenCLIP-G and the UNet */
  g_assert_cmpuint (easel_lora_stack_n_patched (easel_model_peek_lora_stack (xl.model)), ==, 3);
  /* text encoder 2 alone changes the image too */
  l.unet_strength = 0;
  g_autoptr(EaselImage) te = run_job (&xl, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (same_pixels (plain, te));
  g_assert_cmpuint (easel_lora_stack_n_patched (easel_model_peek_lora_stack (xl.model)), ==, 2);
  l.unet_strength = l.te_strength = 0;
  g_autoptr(EaselImage) zero = run_job (&xl, &job, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (plain, zero));

  /* the SDXL LoRA on SD 1.x: refused, naming the file */
  g_assert_true (fixture_load (&sd1, "sd1_tiny"));
  l.unet_strength = l.te_strength = 1;
  job = small_job ("a cat", 128);
  job.loras = &l, job.n_loras = 1;
  g_assert_null (run_job (&sd1, &job, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_assert_nonnull (strstr (error->message, "xl_lora"));
  g_assert_nonnull (strstr (error->message, "SDXL"));
  g_clear_error (&error);
  g_unlink (lora);
  g_rmdir (dir);
  fixture_clear (&sd1);
  fixture_clear (&xl);
}

/* --- embeddings ------------------------------------------------------------------------------ */

/* Token rows [n_ids, C] of a text encoder's table, read from its file. */
static float *
token_rows (const char *file, const char *key, const gint32 *ids, guint n_ids, gint64 *width)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselSafetensors) st = easel_safetensors_open (file, &error);
  g_assert_no_error (error);
  const EaselStTensor *t = easel_safetensors_find (st, key);
  g_assert_nonnull (t);
  g_autofree float *all = easel_st_tensor_to_f32 (t);
  const gint64 C = t->shape[1];
  float *rows = g_new (float, n_ids * C);
  for (guint i = 0; i < n_ids; i++)
    memcpy (rows + i * C, all + (gint64) ids[i] * C, C * sizeof (float));
  *width = C;
  return rows;
}

/* The ids of words (no BOS/EOS). */
static GArray *
word_ids (EaselModel *m, const char *words)
{
  g_autoptr(GError) error = NULL;
  EaselTokenizer *tok = easel_model_tokenizer (m, &error);
  g_assert_no_error (error);
  GArray *ids = g_array_new (FALSE, FALSE, sizeof (gint32));
  g_assert_true (easel_tokenizer_encode (tok, words, -1, ids, &error));
  return ids;
}

static void
write_embedding (const char *path, const char *key1, const float *v1, gint64 w1, const char *key2, const float *v2,
                 gint64 w2, gint64 n)
{
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  const gint64 s1[2] = { n, w1 }, s2[2] = { n, w2 };
  g_assert_true (easel_safetensors_writer_add (w, key1, EASEL_DTYPE_F32, 2, s1, v1, NULL));
  if (key2)
    g_assert_true (easel_safetensors_writer_add (w, key2, EASEL_DTYPE_F32, 2, s2, v2, NULL));
  g_autoptr(GError) error = NULL;
  g_assert_true (easel_safetensors_writer_save (w, path, &error));
  g_assert_no_error (error);
}

static void
test_embedding_sd1 (void)
{
  Fixture f = { 0 };
  if (!fixture_load (&f, "sd1_tiny"))
    return;
  g_autofree char *dir = g_dir_make_tmp ("easel-emb-XXXXXX", NULL);
  g_autofree char *te = test_data_path ("models", "sd1_tiny", "text_encoder", "model.safetensors", NULL);
  g_autoptr(GArray) ids = word_ids (f.model, "red dog");
  g_assert_cmpuint (ids->len, ==, 2);
  gint64 C;
  g_autofree float *rows = token_rows (te, "text_model.embeddings.token_embedding.weight", (gint32 *) ids->data,
                                       ids->len, &C);
  g_autofree char *emb = g_build_filename (dir, "zqxemb.safetensors", NULL);
  write_embedding (emb, "emb_params", rows, C, NULL, NULL, 0, 2);
  /* an SDXL pair of the wrong widths: left as text, with a notice */
  g_autofree char *xl = g_build_filename (dir, "xlonly.safetensors", NULL);
  g_autofree float *z = g_new0 (float, 2 * 40);
  write_embedding (xl, "clip_l", z, 8, "clip_g", z, 20, 2);
  const char *dirs[] = { dir, NULL };
  g_autoptr(GError) error = NULL;

  EaselJobParams words = small_job ("a photo of (red dog:1.2), zzz", 128);
  g_autoptr(EaselImage) want = run_job (&f, &words, NULL, NULL, &error);
  g_assert_no_error (error);
  EaselJobParams job = small_job ("a photo of (zqxemb:1.2), zzz", 128);
  job.embedding_dirs = dirs;
  g_autofree char *params = NULL;
  g_autoptr(EaselImage) got = run_job (&f, &job, &params, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (want, got));
  g_autofree char *h = file_short_hash (emb);
  g_autofree char *ti = param_value (params, "TI hashes");
  g_autofree char *ti_want = g_strdup_printf ("zqxemb: %s", h);
  g_assert_cmpstr (ti, ==, ti_want);

  /* ComfyUI's embedding:NAME (with or without the extension), and $EASEL_EMBEDDINGS_DIR */
  g_setenv ("EASEL_EMBEDDINGS_DIR", dir, TRUE);
  EaselJobParams comfy = small_job ("a photo of (embedding:zqxemb.safetensors:1.2), zzz", 128);
  g_autoptr(EaselImage) c = run_job (&f, &comfy, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (want, c));
  g_unsetenv ("EASEL_EMBEDDINGS_DIR");

  /* in the negative prompt too */
  EaselJobParams nw = small_job ("a cat", 128), ne = small_job ("a cat", 128);
  nw.negative_prompt = "red dog";
  ne.negative_prompt = "zqxemb";
  ne.embedding_dirs = dirs;
  g_autoptr(EaselImage) nwi = run_job (&f, &nw, NULL, NULL, &error);
  g_autoptr(EaselImage) nei = run_job (&f, &ne, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (nwi, nei));

  /* an unknown name stays text (as A1111 leaves it), and a misfit file too, with a notice */
  EaselJobParams unknown = small_job ("a photo of nosuchemb xlonly", 128), text = small_job ("a photo of nosuchemb xlonly", 128);
  unknown.embedding_dirs = dirs;
  g_autoptr(GPtrArray) messages = NULL;
  g_autofree char *params_u = NULL;
  g_autoptr(EaselImage) u = run_job (&f, &unknown, &params_u, &messages, &error);
  g_assert_no_error (error);
  g_autoptr(EaselImage) t = run_job (&f, &text, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (u, t));
  g_assert_cmpuint (messages->len, ==, 1);
  g_assert_nonnull (strstr (messages->pdata[0], "xlonly"));
  g_autofree char *none = param_value (params_u, "TI hashes");
  g_assert_null (none);

  g_unlink (emb);
  g_unlink (xl);
  g_rmdir (dir);
  fixture_clear (&f);
}

static void
test_embedding_sdxl (void)
{
  Fixture f = { 0 };
  if (!fixture_load (&f, "sdxl_tiny"))
    return;
  g_autofree char *dir = g_dir_make_tmp ("easel-emb-XXXXXX", NULL);
  g_autofree char *te1 = test_data_path ("models", "sdxl_tiny", "text_encoder", "model.safetensors", NULL);
  g_autofree char *te2 = test_data_path ("models", "sdxl_tiny", "text_encoder_2", "model.safetensors", NULL);
  g_autoptr(GArray) ids = word_ids (f.model, "red dog");
  gint64 w1, w2;
  g_autofree float *r1 = token_rows (te1, "text_model.embeddings.token_embedding.weight", (gint32 *) ids->data,
                                     ids->len, &w1);
  g_autofree float *r2 = token_rows (te2, "text_model.embeddings.token_embedding.weight", (gint32 *) ids->data,
                                     ids->len, &w2);
  g_assert_cmpint (w1, !=, w2);
  g_autofree char *emb = g_build_filename (dir, "zqxl.safetensors", NULL);
  write_embedding (emb, "clip_l", r1, w1, "clip_g", r2, w2, ids->len);
  const char *dirs[] = { dir, NULL };
  g_autoptr(GError) error = NULL;

  EaselJobParams words = small_job ("red dog in a field", 64);
  words.negative_prompt = "ugly";
  g_autoptr(EaselImage) want = run_job (&f, &words, NULL, NULL, &error);
  g_assert_no_error (error);
  EaselJobParams job = small_job ("zqxl in a field", 64);
  job.negative_prompt = "ugly";
  job.embedding_dirs = dirs;
  g_autofree char *params = NULL;
  g_autoptr(EaselImage) got = run_job (&f, &job, &params, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (same_pixels (want, got));   /* clip_l to CLIP-L, clip_g to OpenCLIP-G, pooled at the EOS */
  g_autofree char *ti = param_value (params, "TI hashes");
  g_assert_nonnull (ti);
  g_assert_true (g_str_has_prefix (ti, "zqxl: "));
  g_unlink (emb);
  g_rmdir (dir);
  fixture_clear (&f);
}

/* --- the chunker hook -------------------------------------------------------------------------- */

typedef struct {
  gint32 name;      /* a one-token name */
  guint n_vectors;
} FakeEmbedding;

static guint
fake_lookup (gpointer user_data, const gint32 *tokens, guint n, guint pos, gint32 *first_id, guint *n_vectors)
{
  const FakeEmbedding *e = user_data;
  g_assert_cmpuint (pos, <, n);
  if (tokens[pos] != e->name)
    return 0;
  *first_id = 60000;
  *n_vectors = e->n_vectors;
  return 1;
}

static void
test_chunk_hook (void)
{
  Fixture f = { 0 };
  if (!fixture_load (&f, "sd1_tiny"))
    return;
  g_autoptr(GError) error = NULL;
  EaselTokenizer *tok = easel_model_tokenizer (f.model, &error);
  g_assert_no_error (error);
  g_autoptr(GArray) cat = word_ids (f.model, "cat");
  g_autoptr(GArray) dog = word_ids (f.model, "dog");
  FakeEmbedding e = { g_array_index (dog, gint32, 0), 5 };

  /* 72 words, then the 5-vector embedding: it does not fit (72 + 5 > 75), so the first chunk is
   * padded and the vectors open the second, with their segment's weight */
  g_autoptr(GString) text = g_string_new (NULL);
  for (int i = 0; i < 72; i++)
    g_string_append (text, "cat ");
  g_string_append (text, "(dog:1.5) cat");
  g_autoptr(GArray) segs = easel_prompt_parse_a1111 (text->str, -1, &error);
  g_assert_no_error (error);
  g_autoptr(GArray) chunks = easel_prompt_chunks_a1111_full (tok, segs, 20, fake_lookup, &e, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (chunks->len, ==, 2);
  const EaselPromptChunk *c0 = &g_array_index (chunks, EaselPromptChunk, 0);
  const EaselPromptChunk *c1 = &g_array_index (chunks, EaselPromptChunk, 1);
  g_assert_cmpint (c0->ids[72], ==, g_array_index (cat, gint32, 0));
  g_assert_cmpint (c0->ids[73], ==, easel_tokenizer_eos (tok));   /* padding */
  for (int v = 0; v < 5; v++) {
    g_assert_cmpint (c1->ids[1 + v], ==, 60000 + v);
    g_assert_cmpfloat (c1->weights[1 + v], ==, 1.5);
  }
  g_assert_cmpint (c1->ids[6], ==, g_array_index (cat, gint32, 0));
  g_assert_cmpint (c1->ids[7], ==, easel_tokenizer_eos (tok));

  /* 70 words: the vectors fit exactly (70 + 5 = 75), one chunk */
  g_string_truncate (text, 0);
  for (int i = 0; i < 70; i++)
    g_string_append (text, "cat ");
  g_string_append (text, "dog");
  g_autoptr(GArray) segs2 = easel_prompt_parse_a1111 (text->str, -1, &error);
  g_autoptr(GArray) chunks2 = easel_prompt_chunks_a1111_full (tok, segs2, 20, fake_lookup, &e, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (chunks2->len, ==, 1);
  g_assert_cmpint (g_array_index (chunks2, EaselPromptChunk, 0).ids[75], ==, 60004);

  /* without the hook the chunker is unchanged: "dog" is a word */
  g_autoptr(GArray) plain = easel_prompt_chunks_a1111_full (tok, segs2, 20, NULL, NULL, &error);
  g_autoptr(GArray) old = easel_prompt_chunks_a1111 (tok, segs2, 20, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (plain->data, plain->len * sizeof (EaselPromptChunk), old->data, old->len * sizeof (EaselPromptChunk));
  g_assert_cmpint (g_array_index (plain, EaselPromptChunk, 0).ids[71], ==, g_array_index (dog, gint32, 0));

  /* more vectors than a chunk holds: refused */
  e.n_vectors = 76;
  g_autoptr(GArray) none = easel_prompt_chunks_a1111_full (tok, segs2, 20, fake_lookup, &e, &error);
  g_assert_null (none);
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  fixture_clear (&f);
}

/* --- easel-cli generate ------------------------------------------------------------------------ */

/* easel-cli's own (app/cli/easel-cli.c holds it beside main ()). */
void
easel_cli_error (const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_test_message ("easel-cli: %s", msg);
}

static int
cli (const char *first, ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  va_list ap;
  g_ptr_array_add (args, (gpointer) "generate");
  va_start (ap, first);
  for (const char *a = first; a; a = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  /* the written paths go to stdout: keep them out of the TAP stream */
  fflush (stdout);
  int saved = dup (STDOUT_FILENO), null = open ("/dev/null", O_WRONLY);
  g_assert_cmpint (saved, >=, 0);
  g_assert_cmpint (null, >=, 0);
  dup2 (null, STDOUT_FILENO);
  close (null);
  int status = easel_cli_generate ((int) args->len - 1, (char **) args->pdata);
  fflush (stdout);
  dup2 (saved, STDOUT_FILENO);
  close (saved);
  return status;
}

static EaselImage *
load (const char *path, char **parameters)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselPngInfo) info = NULL;
  EaselImage *im = easel_png_load (path, &info, &error);
  g_assert_no_error (error);
  if (parameters)
    *parameters = g_strdup (easel_png_info_find_text (info, EASEL_PARAMETERS_KEY)->text);
  return im;
}

static void
test_cli (void)
{
  g_autofree char *model = test_data_path ("models", "sd1_tiny", NULL);
  g_autofree char *vocab = test_data_path ("tokenizer", NULL);
  if (model == NULL || vocab == NULL)
    return;
  g_autofree char *lora = kohya_lora_path ();
  g_autofree char *lora_dir = g_path_get_dirname (lora);
  g_autofree char *dir = g_dir_make_tmp ("easel-cli-XXXXXX", NULL);
  g_autofree char *a = g_build_filename (dir, "a.png", NULL), *b = g_build_filename (dir, "b.png", NULL);
  g_autofree char *c = g_build_filename (dir, "c.png", NULL), *d = g_build_filename (dir, "d.png", NULL);
  g_autofree char *l0 = g_strconcat (lora, ":0", NULL), *l1 = g_strconcat (lora, ":0.9", NULL);
  /* an embedding for the prompt */
  g_autofree char *emb_dir = g_build_filename (dir, "emb", NULL);
  g_mkdir (emb_dir, 0755);
  g_autofree char *emb = g_build_filename (emb_dir, "qqvec.safetensors", NULL);
  g_autofree float *v = g_new (float, 3 * 16);
  for (int i = 0; i < 3 * 16; i++)
    v[i] = (float) ((i * 37) % 17) / 8.0f - 1.0f;
  write_embedding (emb, "emb_params", v, 16, NULL, NULL, 0, 3);

#define COMMON "-m", model, "--vocab", vocab, "-W", "128", "-H", "128", "--steps", "3", "-s", "3", "-t", "2"
  g_assert_cmpint (cli (COMMON, "-p", "a cat", "-o", a, NULL), ==, 0);
  g_assert_cmpint (cli (COMMON, "-p", "a cat", "--lora", l0, "-o", b, NULL), ==, 0);
  g_assert_cmpint (cli (COMMON, "-p", "a cat qqvec", "--lora", l1, "--embeddings-dir", emb_dir, "-o", c, NULL), ==, 0);
  g_autoptr(EaselImage) ia = load (a, NULL);
  g_autoptr(EaselImage) ib = load (b, NULL);
  g_autofree char *pc = NULL;
  g_autoptr(EaselImage) ic = load (c, &pc);
  g_assert_true (same_pixels (ia, ib));    /* strength 0 = no LoRA */
  g_assert_false (same_pixels (ia, ic));
  g_assert_nonnull (strstr (pc, "a cat qqvec <lora:sd1_tiny_lora_kohya:0.9>\n"));
  g_assert_nonnull (strstr (pc, "Lora hashes: "));
  g_assert_nonnull (strstr (pc, "TI hashes: \"qqvec: "));

  /* --params-from restores the LoRA (now a tag, found with --lora-dir) and the embedding */
  g_assert_cmpint (cli ("-m", model, "--vocab", vocab, "-t", "2", "--params-from", c, "--lora-dir", lora_dir,
                        "--embeddings-dir", emb_dir, "-o", d, NULL), ==, 0);
  g_autofree char *pd = NULL;
  g_autoptr(EaselImage) id = load (d, &pd);
  g_assert_true (same_pixels (ic, id));
  g_assert_cmpstr (pc, ==, pd);

  /* bad inputs: exit status 1 (a missing file) or 2 (a malformed strength), nothing written */
  g_autofree char *e = g_build_filename (dir, "e.png", NULL);
  g_assert_cmpint (cli (COMMON, "-p", "a cat", "--lora", "/nonexistent/x.safetensors:1", "-o", e, NULL), ==, 1);
  g_assert_cmpint (cli (COMMON, "-p", "a cat", "--lora", "foo:abc", "-o", e, NULL), ==, 2);
  g_assert_cmpint (cli (COMMON, "-p", "a cat", "--lora-dir", "/nonexistent-dir", "-o", e, NULL), ==, 1);
  g_assert_false (g_file_test (e, G_FILE_TEST_EXISTS));
#undef COMMON
  for (const char *p[] = { a, b, c, d, emb, NULL }, **q = p; *q; q++)
    g_unlink (*q);
  g_rmdir (emb_dir);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/networks/chunk-hook", test_chunk_hook);
  g_test_add_func ("/networks/lora-strengths-and-reuse", test_lora_strengths_and_reuse);
  g_test_add_func ("/networks/lora-prompt-tags", test_lora_prompt_tags);
  g_test_add_func ("/networks/lora-refusals", test_lora_refusals);
  g_test_add_func ("/networks/lora-file-replaced", test_lora_file_replaced);
  g_test_add_func ("/networks/lora-sdxl", test_lora_sdxl);
  g_test_add_func ("/networks/embedding-sd1", test_embedding_sd1);
  g_test_add_func ("/networks/embedding-sdxl", test_embedding_sdxl);
  g_test_add_func ("/networks/cli", test_cli);
  return g_test_run ();
}
