/* tests/test-checkpoint.c: family detection (fullsize key lists, tiny models, UNet-only files,
 * synthetic lists), diffusers folders with sharded weights written here with the writer, and
 * hostile files and indexes: every error must name the file at fault.
 * Expected values come from the published model configs (README of the test data), not from
 * this code's output. */
#include <glib/gstdio.h>
#include <string.h>

#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/shard_index.h"
#include "testutil.h"

/* --- detection ------------------------------------------------------------------------------ */

typedef struct {
  const char *list;
  const char *family;
  gint64 context, in_channels;
  int n_time_ids;
  gint64 time_id_width, pooled;
  EaselPrediction prediction;
} ListCase;

/* SD 1.5: CLIP-L 768; SD 2.1-768-v: OpenCLIP-H 1024 (v-prediction, not in the names); SDXL base:
 * 768 + 1280, adm 2816 = 1280 + 6 * 256; refiner: 1280, adm 2560 = 1280 + 5 * 256. */
static const ListCase list_cases[] = {
  { "sd15_original.txt", "sd1", 768, 4, 0, 0, 0, EASEL_PREDICTION_EPSILON },
  { "sd15_diffusers.txt", "sd1", 768, 4, 0, 0, 0, EASEL_PREDICTION_EPSILON },
  { "sd21_768v_original.txt", "sd2", 1024, 4, 0, 0, 0, EASEL_PREDICTION_UNKNOWN },
  { "sd21_768v_diffusers.txt", "sd2", 1024, 4, 0, 0, 0, EASEL_PREDICTION_UNKNOWN },
  { "sdxl_base_1.0_original.txt", "sdxl", 2048, 4, 6, 256, 1280, EASEL_PREDICTION_EPSILON },
  { "sdxl_base_1.0_diffusers.txt", "sdxl", 2048, 4, 6, 256, 1280, EASEL_PREDICTION_EPSILON },
  { "sdxl_refiner_1.0_original.txt", "sdxl-refiner", 1280, 4, 5, 256, 1280, EASEL_PREDICTION_EPSILON },
  { "sdxl_refiner_1.0_diffusers.txt", "sdxl-refiner", 1280, 4, 5, 256, 1280, EASEL_PREDICTION_EPSILON },
};

static void
assert_family (const EaselDetection *d, const char *want)
{
  if (strcmp (easel_family_name (d->family), want) != 0)
    g_error ("detected %s (%s), expected %s", easel_family_name (d->family), d->reason, want);
}

static void
test_fullsize_lists (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (list_cases); i++) {
    const ListCase *c = &list_cases[i];
    g_autofree char *path = test_data_path ("fullsize_keys", c->list, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(EaselKeyList) list = NULL;
    EaselDetection d;

    if (path == NULL)
      return;
    list = easel_key_list_load (path, &error);
    g_assert_no_error (error);
    easel_detect_family (list->keys, list->n_keys, &d);
    g_test_message ("%s: %s", c->list, d.reason);
    assert_family (&d, c->family);
    g_assert_cmpint (d.context_dim, ==, c->context);
    g_assert_cmpint (d.in_channels, ==, c->in_channels);
    g_assert_cmpint (d.n_time_ids, ==, c->n_time_ids);
    g_assert_cmpint (d.time_id_width, ==, c->time_id_width);
    g_assert_cmpint (d.pooled_dim, ==, c->pooled);
    g_assert_cmpint (d.prediction, ==, c->prediction);
    g_assert_true (d.has_vae);
    g_assert_cmpint (d.n_text_encoders, ==, c->n_time_ids == 6 ? 2 : 1);
  }
}

/* The keys of a list under prefix, with the prefix removed: what a UNet-only file holds. */
static EaselKeyShape *
cut (const EaselKeyShape *keys, gsize n, const char *prefix, gsize *n_out)
{
  EaselKeyShape *out = g_new0 (EaselKeyShape, n + 1);
  gsize m = 0, plen = strlen (prefix);
  for (gsize i = 0; i < n; i++)
    if (strncmp (keys[i].name, prefix, plen) == 0) {
      out[m] = keys[i];
      out[m++].name += plen;
    }
  *n_out = m;
  return out;
}

static void
test_unet_only (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (list_cases); i++) {
    const ListCase *c = &list_cases[i];
    g_autofree char *path = test_data_path ("fullsize_keys", c->list, NULL);
    g_autoptr(EaselKeyList) list = NULL;
    g_autofree EaselKeyShape *unet = NULL;
    gsize n;
    EaselDetection d;

    if (path == NULL)
      return;
    list = easel_key_list_load (path, NULL);
    g_assert_nonnull (list);
    unet = cut (list->keys, list->n_keys, strstr (c->list, "original") ? "model.diffusion_model." : "unet/", &n);
    g_assert_cmpuint (n, >, 600);
    easel_detect_family (unet, n, &d);
    assert_family (&d, c->family);
    g_assert_cmpstr (d.unet_prefix, ==, "");
    g_assert_cmpint (d.n_text_encoders, ==, 0);
    g_assert_cmpint (d.n_time_ids, ==, c->n_time_ids);
  }

  /* tiny UNet-only files: a diffusers UNet file opened on its own, and a part folder */
  static const struct {
    const char *a, *b, *c, *family;
  } files[] = {
    { "sdxl_tiny", "unet", "diffusion_pytorch_model.safetensors", "sdxl" },
    { "sd1_inpaint_tiny", "unet", "diffusion_pytorch_model.safetensors", "sd1-inpaint" },
    { "sd1_tiny", "unet", NULL, "sd1" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++) {
    g_autofree char *path = test_data_path ("models", files[i].a, files[i].b, files[i].c, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(EaselCheckpoint) ck = NULL;
    if (path == NULL)
      return;
    ck = easel_checkpoint_open (path, &error);
    g_assert_no_error (error);
    assert_family (easel_checkpoint_detection (ck), files[i].family);
  }

  /* the tiny refiner's UNet cut out of its single file (no text encoder left to give the pooled width) */
  g_autofree char *rpath = test_data_path ("models", "sdxl_refiner_tiny.safetensors", NULL);
  g_autoptr(EaselCheckpoint) rck = easel_checkpoint_open (rpath, NULL);
  g_assert_nonnull (rck);
  g_autofree EaselKeyShape *all = g_new0 (EaselKeyShape, easel_checkpoint_n_tensors (rck));
  for (gsize i = 0; i < easel_checkpoint_n_tensors (rck); i++) {
    const EaselCheckpointTensor *t = easel_checkpoint_tensor (rck, i);
    all[i].name = t->name;
    all[i].n_dims = t->st->n_dims;
    memcpy (all[i].shape, t->st->shape, sizeof all[i].shape);
  }
  gsize n;
  g_autofree EaselKeyShape *unet = cut (all, easel_checkpoint_n_tensors (rck), "model.diffusion_model.", &n);
  EaselDetection d;
  easel_detect_family (unet, n, &d);
  assert_family (&d, "sdxl-refiner");
  g_assert_cmpint (d.context_dim, ==, 16);     /* cross_attention_dim 16 */
  g_assert_cmpint (d.adm_in, ==, 56);          /* 5 * 8 + 16 */
}

typedef struct {
  const char *path[3];
  const char *family;
  EaselCheckpointFormat format;
  gint64 in_channels, context;
  EaselPrediction prediction;
  EaselPredictionSource source;
} ModelCase;

/* From the README's model table and the folders' configs. */
static const ModelCase model_cases[] = {
  { { "sd1_tiny.safetensors" }, "sd1", EASEL_CHECKPOINT_SINGLE_FILE, 4, 16, EASEL_PREDICTION_EPSILON, EASEL_PREDICTION_FROM_FAMILY },
  { { "sd1_tiny" }, "sd1", EASEL_CHECKPOINT_DIFFUSERS, 4, 16, EASEL_PREDICTION_EPSILON, EASEL_PREDICTION_FROM_SCHEDULER },
  { { "sdxl_tiny.safetensors" }, "sdxl", EASEL_CHECKPOINT_SINGLE_FILE, 4, 24, EASEL_PREDICTION_EPSILON, EASEL_PREDICTION_FROM_FAMILY },
  { { "sdxl_tiny" }, "sdxl", EASEL_CHECKPOINT_DIFFUSERS, 4, 24, EASEL_PREDICTION_EPSILON, EASEL_PREDICTION_FROM_SCHEDULER },
  { { "sdxl_refiner_tiny.safetensors" }, "sdxl-refiner", EASEL_CHECKPOINT_SINGLE_FILE, 4, 16, EASEL_PREDICTION_EPSILON, EASEL_PREDICTION_FROM_FAMILY },
  { { "sd1_inpaint_tiny" }, "sd1-inpaint", EASEL_CHECKPOINT_DIFFUSERS, 9, 16, EASEL_PREDICTION_EPSILON, EASEL_PREDICTION_FROM_SCHEDULER },
};

static void
test_tiny_models (void)
{
  for (guint i = 0; i < G_N_ELEMENTS (model_cases); i++) {
    const ModelCase *c = &model_cases[i];
    g_autofree char *path = test_data_path ("models", c->path[0], NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(EaselCheckpoint) ck = NULL;
    const EaselDetection *d;

    if (path == NULL)
      return;
    ck = easel_checkpoint_open (path, &error);
    g_assert_no_error (error);
    d = easel_checkpoint_detection (ck);
    assert_family (d, c->family);
    g_assert_cmpint (easel_checkpoint_format (ck), ==, c->format);
    g_assert_cmpint (d->in_channels, ==, c->in_channels);
    g_assert_cmpint (d->context_dim, ==, c->context);
    g_assert_cmpint (d->prediction, ==, c->prediction);
    g_assert_cmpint (d->prediction_source, ==, c->source);
  }

  /* sd1_tiny/: three weight files, tensors named <component>/<key>, sorted, data in the mapping */
  g_autofree char *sd1 = test_data_path ("models", "sd1_tiny", NULL);
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (sd1, NULL);
  g_assert_nonnull (ck);
  g_assert_cmpuint (easel_checkpoint_n_tensors (ck), ==, 52 + 686 + 248);
  g_assert_cmpuint (easel_checkpoint_n_files (ck), ==, 3);
  const EaselCheckpointTensor *t = easel_checkpoint_find (ck, "unet/conv_in.weight");
  g_assert_nonnull (t);
  g_assert_cmpstr (t->component, ==, "unet");
  g_assert_cmpstr (t->key, ==, "conv_in.weight");
  g_assert_cmpint (t->st->n_dims, ==, 4);
  g_assert_cmpint (t->st->shape[0], ==, 32);   /* block_out_channels[0] */
  g_assert_cmpint (t->st->shape[1], ==, 4);
  t = easel_checkpoint_find (ck, "text_encoder/text_model.embeddings.token_embedding.weight");
  g_assert_nonnull (t);
  g_assert_cmpint (t->st->dtype, ==, EASEL_DTYPE_F16);   /* the README: token tables are F16 */
  g_assert_cmpuint (easel_checkpoint_dtype_count (ck, EASEL_DTYPE_F16), ==, 1);
  for (gsize i = 1; i < easel_checkpoint_n_tensors (ck); i++)
    g_assert_cmpint (strcmp (easel_checkpoint_tensor (ck, i - 1)->name, easel_checkpoint_tensor (ck, i)->name), <, 0);
  g_assert_cmpstr (easel_checkpoint_metadata (ck, "_class_name"), ==, "StableDiffusionPipeline");

  /* sdxl_refiner_tiny/: configs only; opens, says the unet has no weights */
  g_autofree char *ref = test_data_path ("models", "sdxl_refiner_tiny", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselCheckpoint) rck = easel_checkpoint_open (ref, &error);
  g_assert_no_error (error);
  gboolean unet_reported = FALSE;
  for (gsize i = 0; i < easel_checkpoint_n_parts (rck); i++) {
    const EaselCheckpointPart *p = easel_checkpoint_part (rck, i);
    if (strcmp (p->name, "unet") == 0) {
      g_assert_false (p->has_weights);
      g_assert_true (p->has_config);
      g_assert_nonnull (p->note);
      unet_reported = TRUE;
    }
  }
  g_assert_true (unet_reported);
  g_assert_cmpint (easel_checkpoint_detection (rck)->family, ==, EASEL_FAMILY_UNKNOWN);
  g_assert_cmpuint (easel_checkpoint_n_tensors (rck), ==, 0);
}

static void
add_key (GArray *a, const char *name, int n_dims, gint64 d0, gint64 d1, gint64 d2, gint64 d3)
{
  EaselKeyShape k = { name, n_dims, { d0, d1, d2, d3 } };
  g_array_append_val (a, k);
}

/* A minimal SD-shaped UNet in original naming: conv_in [32, in, 3, 3], one cross-attention. */
static GArray *
synthetic_unet (gint64 in_channels, gboolean linear)
{
  GArray *a = g_array_new (FALSE, TRUE, sizeof (EaselKeyShape));
  add_key (a, "model.diffusion_model.input_blocks.0.0.weight", 4, 32, in_channels, 3, 3);
  add_key (a, "model.diffusion_model.time_embed.0.weight", 2, 128, 32, 0, 0);
  add_key (a, "model.diffusion_model.out.2.weight", 4, 4, 32, 3, 3);
  add_key (a, "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", 2, 32, 768, 0, 0);
  if (linear)
    add_key (a, "model.diffusion_model.input_blocks.1.1.proj_in.weight", 2, 32, 32, 0, 0);
  else
    add_key (a, "model.diffusion_model.input_blocks.1.1.proj_in.weight", 4, 32, 32, 1, 1);
  return a;
}

static void
test_synthetic (void)
{
  EaselDetection d;
  g_autoptr(GArray) a = synthetic_unet (4, FALSE);
  g_autoptr(GArray) b = synthetic_unet (8, FALSE);
  g_autoptr(GArray) c = synthetic_unet (4, TRUE);
  g_autoptr(GArray) e = g_array_new (FALSE, TRUE, sizeof (EaselKeyShape));

  easel_detect_family ((EaselKeyShape *) a->data, a->len, &d);
  assert_family (&d, "sd1");
  add_key (a, "v_pred", 0, 0, 0, 0, 0);
  easel_detect_family ((EaselKeyShape *) a->data, a->len, &d);
  g_assert_cmpint (d.prediction, ==, EASEL_PREDICTION_V);
  g_assert_cmpint (d.prediction_source, ==, EASEL_PREDICTION_FROM_KEY);

  easel_detect_family ((EaselKeyShape *) b->data, b->len, &d);   /* instruct-pix2pix: 8 channels */
  assert_family (&d, "unknown");
  g_assert_nonnull (strstr (d.reason, "8 input channels"));

  easel_detect_family ((EaselKeyShape *) c->data, c->len, &d);
  assert_family (&d, "sd2");
  g_assert_cmpint (d.prediction, ==, EASEL_PREDICTION_UNKNOWN);
  /* a CLIP-L text encoder 768 wide next to it: still SD 2.x in diffusers naming ... */
  add_key (c, "text_encoder/text_model.embeddings.token_embedding.weight", 2, 49408, 768, 0, 0);
  easel_detect_family ((EaselKeyShape *) c->data, c->len, &d);
  assert_family (&d, "sd2");
  /* ... but a text encoder whose width is not the context width is refused */
  add_key (b, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", 2, 49408, 1024, 0, 0);
  g_array_index (b, EaselKeyShape, 0).shape[1] = 4;
  easel_detect_family ((EaselKeyShape *) b->data, b->len, &d);
  assert_family (&d, "unknown");
  g_assert_nonnull (strstr (d.reason, "1024"));

  easel_detect_family (NULL, 0, &d);
  assert_family (&d, "unknown");
  add_key (e, "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", 2, 4, 32, 0, 0);
  easel_detect_family ((EaselKeyShape *) e->data, e->len, &d);
  g_assert_nonnull (strstr (d.reason, "LoRA"));

  EaselFamily f;
  for (int i = 0; i < EASEL_FAMILY_COUNT; i++) {
    g_assert_true (easel_family_from_name (easel_family_name ((EaselFamily) i), &f));
    g_assert_cmpint (f, ==, i);
  }
}

static void
test_key_list_errors (void)
{
  static const char *bad[] = {
    "a\t[1, 2]\n",               /* no dtype */
    "a\t[1, x]\tF16\n",         /* bad shape */
    "a\t[1, 2\tF16\n",
    "a\t[1]\tF17\n",             /* unknown dtype */
    "# c\n\na\t[-1]\tF16\n",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr(GError) error = NULL;
    g_autoptr(EaselKeyList) l = easel_key_list_parse (bad[i], strlen (bad[i]), "k.txt", &error);
    g_assert_null (l);
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);
    g_assert_true (g_str_has_prefix (error->message, "k.txt:"));
  }
  const char *good = "# comment\r\na\t[]\tfloat16\textra: x\r\nb\t[1, 77]\tI64\n";
  g_autoptr(EaselKeyList) l = easel_key_list_parse (good, strlen (good), "k.txt", NULL);
  g_assert_nonnull (l);
  g_assert_cmpuint (l->n_keys, ==, 2);
  g_assert_cmpint (l->keys[0].n_dims, ==, 0);
  g_assert_cmpint (l->dtypes[0], ==, EASEL_DTYPE_F16);
  g_assert_cmpint (l->keys[1].shape[1], ==, 77);
  g_assert_cmpint (l->dtypes[1], ==, EASEL_DTYPE_I64);
}

/* --- folders written here ------------------------------------------------------------------- */

static void
write_text (const char *dir, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

static void
expect_open_error (const char *path, const char *file, const char *fragment)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  if (ck != NULL)
    g_error ("%s opened, expected an error about %s", path, fragment);
  if (!g_str_has_prefix (error->message, file))
    g_error ("error '%s' does not start with %s", error->message, file);
  if (strstr (error->message, fragment) == NULL)
    g_error ("error '%s' does not mention '%s'", error->message, fragment);
}

typedef struct {
  char *root;       /* temp folder: model_index.json + unet/ */
  char *unet;       /* root/unet */
  char *index;      /* root/unet/diffusion_pytorch_model.safetensors.index.json */
  GString *map;     /* weight_map body written by write_sharded */
  EaselSafetensors *source;
} Sharded;

static void
sharded_free (Sharded *s)
{
  g_autofree char *cmd = NULL;
  if (s->root) {
    /* remove what we wrote: files of unet/, then the folders */
    g_autoptr(GDir) d = g_dir_open (s->unet, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name (d)) != NULL) {
      g_autofree char *p = g_build_filename (s->unet, n, NULL);
      g_unlink (p);
    }
    g_rmdir (s->unet);
    g_autofree char *mi = g_build_filename (s->root, "model_index.json", NULL);
    g_unlink (mi);
    g_rmdir (s->root);
  }
  g_free (s->root);
  g_free (s->unet);
  g_free (s->index);
  if (s->map)
    g_string_free (s->map, TRUE);
  easel_safetensors_free (s->source);
}

/* Splits the tiny inpainting UNet into two shards under a fresh diffusers folder. */
static gboolean
write_sharded (Sharded *s)
{
  g_autofree char *src = test_data_path ("models", "sd1_inpaint_tiny", "unet", "diffusion_pytorch_model.safetensors", NULL);
  g_autoptr(EaselSafetensorsWriter) w1 = easel_safetensors_writer_new ();
  g_autoptr(EaselSafetensorsWriter) w2 = easel_safetensors_writer_new ();
  g_autoptr(GError) error = NULL;
  gsize n;

  memset (s, 0, sizeof *s);
  if (src == NULL)
    return FALSE;
  s->source = easel_safetensors_open (src, &error);
  g_assert_no_error (error);
  s->root = g_dir_make_tmp ("easel-ckpt-XXXXXX", &error);
  g_assert_no_error (error);
  s->unet = g_build_filename (s->root, "unet", NULL);
  g_assert_cmpint (g_mkdir (s->unet, 0700), ==, 0);
  s->index = g_build_filename (s->unet, "diffusion_pytorch_model.safetensors.index.json", NULL);
  write_text (s->root, "model_index.json", "{\"_class_name\": \"StableDiffusionInpaintPipeline\", "
                                           "\"unet\": [\"diffusers\", \"UNet2DConditionModel\"], "
                                           "\"scheduler\": [\"diffusers\", \"DDIMScheduler\"], "
                                           "\"vae\": [null, null]}");
  write_text (s->unet, "config.json", "{\"in_channels\": 9}");
  s->map = g_string_new (NULL);
  n = easel_safetensors_n_tensors (s->source);
  for (gsize i = 0; i < n; i++) {
    const EaselStTensor *t = easel_safetensors_tensor (s->source, i);
    gboolean first = i < n / 2;
    g_assert_true (easel_safetensors_writer_add (first ? w1 : w2, t->name, t->dtype, t->n_dims, t->shape, t->data, NULL));
    g_string_append_printf (s->map, "%s\"%s\": \"%s\"", i ? ", " : "", t->name,
                            first ? "diffusion_pytorch_model-00001-of-00002.safetensors"
                                  : "diffusion_pytorch_model-00002-of-00002.safetensors");
  }
  g_autofree char *p1 = g_build_filename (s->unet, "diffusion_pytorch_model-00001-of-00002.safetensors", NULL);
  g_autofree char *p2 = g_build_filename (s->unet, "diffusion_pytorch_model-00002-of-00002.safetensors", NULL);
  g_assert_true (easel_safetensors_writer_save (w1, p1, NULL));
  g_assert_true (easel_safetensors_writer_save (w2, p2, NULL));
  return TRUE;
}

static void
write_index (Sharded *s, const char *extra_entries)
{
  g_autofree char *text = g_strdup_printf ("{\"metadata\": {\"total_size\": 1}, \"weight_map\": {%s%s}}",
                                           s->map->str, extra_entries ? extra_entries : "");
  g_autoptr(GError) error = NULL;
  g_file_set_contents (s->index, text, -1, &error);
  g_assert_no_error (error);
}

static void
test_sharded (void)
{
  Sharded s;
  g_autoptr(GError) error = NULL;

  if (!write_sharded (&s))
    return;
  write_index (&s, NULL);
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (s.root, &error);
  g_assert_no_error (error);
  assert_family (easel_checkpoint_detection (ck), "sd1-inpaint");
  g_assert_cmpuint (easel_checkpoint_n_tensors (ck), ==, easel_safetensors_n_tensors (s.source));
  g_assert_cmpuint (easel_checkpoint_n_files (ck), ==, 2);
  for (gsize i = 0; i < easel_safetensors_n_tensors (s.source); i++) {
    const EaselStTensor *want = easel_safetensors_tensor (s.source, i);
    g_autofree char *name = g_strconcat ("unet/", want->name, NULL);
    const EaselCheckpointTensor *got = easel_checkpoint_find (ck, name);
    g_assert_nonnull (got);
    g_assert_cmpint (got->st->dtype, ==, want->dtype);
    g_assert_cmpmem (got->st->shape, got->st->n_dims * sizeof (gint64), want->shape, want->n_dims * sizeof (gint64));
    g_assert_cmpmem (got->st->data, got->st->nbytes, want->data, want->nbytes);
  }
  const EaselCheckpointPart *unet = NULL;
  for (gsize i = 0; i < easel_checkpoint_n_parts (ck); i++)
    if (strcmp (easel_checkpoint_part (ck, i)->name, "unet") == 0)
      unet = easel_checkpoint_part (ck, i);
  g_assert_nonnull (unet);
  g_assert_cmpuint (unet->n_files, ==, 2);
  g_assert_cmpstr (unet->weights, ==, s.index);
  g_assert_cmpuint (easel_checkpoint_n_parts (ck), ==, 2);   /* [null, null] is no component */
  sharded_free (&s);
}

static void
test_hostile_index (void)
{
  static const struct {
    const char *extra, *fragment;
  } cases[] = {
    { ", \"x.weight\": \"../diffusion_pytorch_model-00001-of-00002.safetensors\"", "leaves the folder" },
    { ", \"x.weight\": \"/etc/passwd.safetensors\"", "leaves the folder" },
    { ", \"x.weight\": \"sub/./a.safetensors\"", "leaves the folder" },
    { ", \"x.weight\": \"diffusion_pytorch_model-00003-of-00003.safetensors\"", "is missing" },
    { ", \"ghost.weight\": \"diffusion_pytorch_model-00001-of-00002.safetensors\"", "'ghost.weight' is not in its shard" },
    { ", \"x.weight\": 3", "not a file name" },
    { ", \"x.weight\": \"a.bin\"", "not a .safetensors file" },
  };
  Sharded s;

  if (!write_sharded (&s))
    return;
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    write_index (&s, cases[i].extra);
    expect_open_error (s.root, s.index, cases[i].fragment);
  }
  /* a key twice, across shards */
  const EaselStTensor *t0 = easel_safetensors_tensor (s.source, 0);
  g_autofree char *dup = g_strdup_printf (", \"%s\": \"diffusion_pytorch_model-00002-of-00002.safetensors\"", t0->name);
  write_index (&s, dup);
  expect_open_error (s.root, s.index, "twice");
  g_file_set_contents (s.index, "{\"weight_map\": [1]}", -1, NULL);
  expect_open_error (s.root, s.index, "weight_map");
  g_file_set_contents (s.index, "{\"weight_map\": {", -1, NULL);
  expect_open_error (s.root, s.index, "");

  /* a broken shard: truncated to half; the error names the shard */
  g_autofree char *p1 = g_build_filename (s.unet, "diffusion_pytorch_model-00001-of-00002.safetensors", NULL);
  g_autofree char *bytes = NULL;
  gsize len;
  g_assert_true (g_file_get_contents (p1, &bytes, &len, NULL));
  g_assert_true (g_file_set_contents (p1, bytes, len / 2, NULL));
  write_index (&s, NULL);
  expect_open_error (s.root, p1, "do not fit");

  /* model_index.json naming a component outside the folder, or not JSON */
  g_autofree char *mi = g_build_filename (s.root, "model_index.json", NULL);
  write_text (s.root, "model_index.json", "{\"../unet\": [\"diffusers\", \"UNet2DConditionModel\"]}");
  expect_open_error (s.root, mi, "not a folder name");
  write_text (s.root, "model_index.json", "{\"unet\": ");
  expect_open_error (s.root, mi, "");
  sharded_free (&s);

  /* the parser alone */
  g_assert_true (easel_shard_name_is_safe ("a.safetensors"));
  g_assert_true (easel_shard_name_is_safe ("sub/a.safetensors"));
  g_assert_false (easel_shard_name_is_safe ("sub//a.safetensors"));
  g_assert_false (easel_shard_name_is_safe ("..\\a.safetensors"));
  g_assert_false (easel_shard_name_is_safe (""));
}

/* Broken variants of a real tiny file, opened as checkpoints: a clean error naming the file. */
static void
test_hostile_files (void)
{
  g_autofree char *src = test_data_path ("models", "sd1_inpaint_tiny", "unet", "diffusion_pytorch_model.safetensors", NULL);
  g_autofree char *bytes = NULL, *dir = NULL, *path = NULL;
  g_autoptr(GError) error = NULL;
  gsize len;
  guint64 n_header = 0;

  if (src == NULL)
    return;
  g_assert_true (g_file_get_contents (src, &bytes, &len, NULL));
  dir = g_dir_make_tmp ("easel-hostile-XXXXXX", &error);
  g_assert_no_error (error);
  path = g_build_filename (dir, "broken.safetensors", NULL);
  for (int i = 7; i >= 0; i--)
    n_header = (n_header << 8) | (guint8) bytes[i];

  /* truncated inside the data area, inside the header, inside the length */
  g_assert_true (g_file_set_contents (path, bytes, len - 1, NULL));
  expect_open_error (path, path, "do not fit");
  g_assert_true (g_file_set_contents (path, bytes, 8 + n_header / 2, NULL));
  expect_open_error (path, path, "truncated");
  g_assert_true (g_file_set_contents (path, bytes, 5, NULL));
  expect_open_error (path, path, "truncated");

  /* header length past the end of the file */
  g_autofree char *copy = g_memdup2 (bytes, len);
  guint64 past = len;
  for (int i = 0; i < 8; i++)
    copy[i] = (char) (past >> (8 * i));
  g_assert_true (g_file_set_contents (path, copy, len, NULL));
  expect_open_error (path, path, "truncated");

  /* overlapping offsets: the second tensor's range moved onto the first's */
  const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                    "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
  gsize hl = strlen (hdr);
  g_autofree char *ov = g_malloc0 (8 + hl + 16);
  for (int i = 0; i < 8; i++)
    ov[i] = (char) ((guint64) hl >> (8 * i));
  memcpy (ov + 8, hdr, hl);
  g_assert_true (g_file_set_contents (path, ov, 8 + hl + 16, NULL));
  expect_open_error (path, path, "overlaps");

  /* the truncated file as a diffusers part: the error names the part's file */
  g_autofree char *unet = g_build_filename (dir, "unet", NULL);
  g_autofree char *wpath = g_build_filename (unet, "diffusion_pytorch_model.fp16.safetensors", NULL);
  g_assert_cmpint (g_mkdir (unet, 0700), ==, 0);
  write_text (dir, "model_index.json", "{\"unet\": [\"diffusers\", \"UNet2DConditionModel\"]}");
  g_assert_true (g_file_set_contents (wpath, bytes, len - 100, NULL));
  expect_open_error (dir, wpath, "do not fit");
  /* and whole, as the fp16 variant, it opens */
  g_assert_true (g_file_set_contents (wpath, bytes, len, NULL));
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (dir, &error);
  g_assert_no_error (error);
  assert_family (easel_checkpoint_detection (ck), "sd1-inpaint");

  /* a folder that is no diffusers model, and a missing path */
  g_autofree char *empty = g_build_filename (dir, "empty", NULL);
  g_assert_cmpint (g_mkdir (empty, 0700), ==, 0);
  expect_open_error (empty, empty, "model_index.json");
  g_autofree char *missing = g_build_filename (dir, "missing.safetensors", NULL);
  expect_open_error (missing, missing, "no such file");

  g_rmdir (empty);
  g_unlink (wpath);
  g_rmdir (unet);
  g_autofree char *mi = g_build_filename (dir, "model_index.json", NULL);
  g_unlink (mi);
  g_unlink (path);
  g_rmdir (dir);
}

/* .ckpt through easel_checkpoint_open: sd1_tiny.ckpt holds exactly the tensors of
 * sd1_tiny.safetensors (names, dtypes, shapes, bytes) and is detected as the same family; the
 * strided views of features.ckpt come out contiguous and equal to their expected copies; every
 * hostile file is refused with an error naming it, and no PWNED file appears. */
static void
test_ckpt (void)
{
  g_autofree char *ckpt = test_data_path ("models", "sd1_tiny.ckpt", NULL);
  g_autofree char *sf = test_data_path ("models", "sd1_tiny.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  if (ckpt == NULL || sf == NULL) {
    g_test_skip ("no sd1_tiny.ckpt");
    return;
  }
  g_autoptr(EaselCheckpoint) a = easel_checkpoint_open (ckpt, &error);
  g_assert_no_error (error);
  g_autoptr(EaselCheckpoint) b = easel_checkpoint_open (sf, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (easel_checkpoint_n_tensors (a), ==, easel_checkpoint_n_tensors (b));
  for (gsize i = 0; i < easel_checkpoint_n_tensors (b); i++) {
    const EaselCheckpointTensor *tb = easel_checkpoint_tensor (b, i);
    const EaselCheckpointTensor *ta = easel_checkpoint_tensor (a, i);
    g_assert_cmpstr (ta->name, ==, tb->name);
    g_assert_cmpint (ta->st->dtype, ==, tb->st->dtype);
    g_assert_cmpint (ta->st->n_dims, ==, tb->st->n_dims);
    g_assert_cmpmem (ta->st->shape, ta->st->n_dims * sizeof (gint64), tb->st->shape, tb->st->n_dims * sizeof (gint64));
    g_assert_cmpmem (ta->st->data, ta->st->nbytes, tb->st->data, tb->st->nbytes);
  }
  g_assert_cmpint (easel_checkpoint_detection (a)->family, ==, easel_checkpoint_detection (b)->family);
  g_assert_cmpint (easel_checkpoint_detection (a)->family, ==, EASEL_FAMILY_SD1);

  g_autofree char *feat = test_data_path ("ckpt", "features.ckpt", NULL);
  g_autofree char *exp = test_data_path ("ckpt", "features_expected.safetensors", NULL);
  g_autoptr(EaselCheckpoint) f = easel_checkpoint_open (feat, &error);
  g_assert_no_error (error);
  g_autoptr(EaselCheckpoint) e = easel_checkpoint_open (exp, &error);
  g_assert_no_error (error);
  guint matched = 0;
  for (gsize i = 0; i < easel_checkpoint_n_tensors (e); i++) {
    const EaselCheckpointTensor *te = easel_checkpoint_tensor (e, i);
    const EaselCheckpointTensor *tf = easel_checkpoint_find (f, te->name + strlen ("expected/"));
    g_assert_nonnull (tf);
    g_assert_cmpint (tf->st->dtype, ==, te->st->dtype);
    g_assert_cmpuint (tf->st->n_elements, ==, te->st->n_elements);
    g_assert_cmpmem (tf->st->data, tf->st->nbytes, te->st->data, te->st->nbytes);
    matched++;
  }
  g_assert_cmpuint (matched, >, 5);

  static const char *const hostile[] = {
    "hostile_reduce_os_system.ckpt", "hostile_reduce_builtins_eval.pkl", "hostile_reduce_subprocess.ckpt",
    "hostile_global_unexpected_class.ckpt", "hostile_zip_path_traversal.ckpt", "hostile_truncated.ckpt",
    "hostile_huge_storage.ckpt", "hostile_huge_binbytes.pkl",
  };
  for (guint i = 0; i < G_N_ELEMENTS (hostile); i++) {
    g_autofree char *p = test_data_path ("ckpt", hostile[i], NULL);
    g_autoptr(GError) herr = NULL;
    g_assert_nonnull (p);
    g_autoptr(EaselCheckpoint) h = easel_checkpoint_open (p, &herr);
    g_assert_null (h);
    g_assert_error (herr, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);
    g_assert_true (g_str_has_prefix (herr->message, p));
    g_assert_false (g_file_test ("PWNED", G_FILE_TEST_EXISTS));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/checkpoint/fullsize-lists", test_fullsize_lists);
  g_test_add_func ("/checkpoint/unet-only", test_unet_only);
  g_test_add_func ("/checkpoint/tiny-models", test_tiny_models);
  g_test_add_func ("/checkpoint/synthetic", test_synthetic);
  g_test_add_func ("/checkpoint/key-list-errors", test_key_list_errors);
  g_test_add_func ("/checkpoint/sharded", test_sharded);
  g_test_add_func ("/checkpoint/hostile-index", test_hostile_index);
  g_test_add_func ("/checkpoint/hostile-files", test_hostile_files);
  g_test_add_func ("/checkpoint/ckpt", test_ckpt);
  return g_test_run ();
}
