/* tests/test-unet.c: the UNet's key renaming (against the full-size SD 1.5 / SD 2.1 / SDXL key
 * lists), its configuration read off the tiny models' tensors (expected values from the models'
 * published structure in testdata/README.md section 5), the 9-channel inpainting UNet, the
 * adapter hooks, and errors for bad files and inputs. Numbers against PyTorch are the golden
 * kind's job (check-golden --kind unet). */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/family.h"
#include "engine/safetensors.h"
#include "engine/unet.h"
#include "testutil.h"

/* --- renaming ---------------------------------------------------------------------------------- */

static void
test_rename_examples (void)
{
  static const struct {
    const char *original, *internal;
  } cases[] = {   /* SD 1.5 layout: 2 resnets per level */
    { "input_blocks.0.0.weight", "conv_in.weight" },
    { "input_blocks.1.0.in_layers.0.weight", "down_blocks.0.resnets.0.norm1.weight" },
    { "input_blocks.1.1.proj_in.weight", "down_blocks.0.attentions.0.proj_in.weight" },
    { "input_blocks.3.0.op.bias", "down_blocks.0.downsamplers.0.conv.bias" },
    { "input_blocks.4.0.skip_connection.weight", "down_blocks.1.resnets.0.conv_shortcut.weight" },
    { "input_blocks.5.1.transformer_blocks.0.attn2.to_k.weight",
      "down_blocks.1.attentions.1.transformer_blocks.0.attn2.to_k.weight" },
    { "input_blocks.11.0.out_layers.3.weight", "down_blocks.3.resnets.1.conv2.weight" },
    { "middle_block.0.emb_layers.1.weight", "mid_block.resnets.0.time_emb_proj.weight" },
    { "middle_block.1.norm.bias", "mid_block.attentions.0.norm.bias" },
    { "middle_block.2.in_layers.2.bias", "mid_block.resnets.1.conv1.bias" },
    { "output_blocks.2.1.conv.weight", "up_blocks.0.upsamplers.0.conv.weight" },
    { "output_blocks.5.2.conv.bias", "up_blocks.1.upsamplers.0.conv.bias" },
    { "output_blocks.5.1.proj_out.weight", "up_blocks.1.attentions.2.proj_out.weight" },
    { "output_blocks.11.0.out_layers.0.bias", "up_blocks.3.resnets.2.norm2.bias" },
    { "time_embed.0.weight", "time_embedding.linear_1.weight" },
    { "time_embed.2.bias", "time_embedding.linear_2.bias" },
    { "label_emb.0.0.weight", "add_embedding.linear_1.weight" },
    { "label_emb.0.2.bias", "add_embedding.linear_2.bias" },
    { "out.0.weight", "conv_norm_out.weight" },
    { "out.2.bias", "conv_out.bias" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *got = easel_unet_rename_original (cases[i].original, 2);
    g_assert_cmpstr (got, ==, cases[i].internal);
  }
  static const char *const not_weights[] = { "betas", "input_blocks.x.0.weight", "input_blocks.1.7.weight",
                                             "middle_block.9.norm.weight", "input_blocks.3.0.conv.weight", "" };
  for (guint i = 0; i < G_N_ELEMENTS (not_weights); i++) {
    g_autofree char *got = easel_unet_rename_original (not_weights[i], 2);
    g_assert_null (got);
  }
}

/* Every original UNet key of a real model maps to its diffusers key with the same shape, and the
 * mapping is one to one (the lists were made with diffusers' own conversion scripts). */
static void
check_fullsize (const char *model)
{
  g_autofree char *orig_name = g_strconcat (model, "_original.txt", NULL);
  g_autofree char *diff_name = g_strconcat (model, "_diffusers.txt", NULL);
  g_autofree char *orig_path = test_data_path ("fullsize_keys", orig_name, NULL);
  g_autofree char *diff_path = test_data_path ("fullsize_keys", diff_name, NULL);
  g_autoptr(GError) error = NULL;
  if (orig_path == NULL || diff_path == NULL)
    return;
  g_autoptr(EaselKeyList) orig = easel_key_list_load (orig_path, &error);
  g_assert_no_error (error);
  g_autoptr(EaselKeyList) diff = easel_key_list_load (diff_path, &error);
  g_assert_no_error (error);

  g_autoptr(GHashTable) want = g_hash_table_new (g_str_hash, g_str_equal);   /* "conv_in.weight" -> EaselKeyShape */
  for (gsize i = 0; i < diff->n_keys; i++)
    if (g_str_has_prefix (diff->keys[i].name, "unet/"))
      g_hash_table_insert (want, (gpointer) (diff->keys[i].name + strlen ("unet/")), &diff->keys[i]);
  g_assert_cmpuint (g_hash_table_size (want), >, 600);

  gsize n = 0;
  for (gsize i = 0; i < orig->n_keys; i++) {
    const char *key = orig->keys[i].name;
    if (!g_str_has_prefix (key, "model.diffusion_model."))
      continue;
    g_autofree char *name = easel_unet_rename_original (key + strlen ("model.diffusion_model."), 2);
    if (name == NULL)
      g_error ("%s: %s not renamed", model, key);
    const EaselKeyShape *ks = g_hash_table_lookup (want, name);
    if (ks == NULL)
      g_error ("%s: %s -> %s, which diffusers does not have", model, key, name);
    g_assert_cmpint (ks->n_dims, ==, orig->keys[i].n_dims);
    for (int d = 0; d < ks->n_dims; d++)
      g_assert_cmpint (ks->shape[d], ==, orig->keys[i].shape[d]);
    g_assert_true (g_hash_table_remove (want, name));   /* each diffusers key at most once */
    n++;
  }
  g_assert_cmpuint (g_hash_table_size (want), ==, 0);   /* and every one of them */
  g_assert_cmpuint (n, >, 600);
}

static void
test_rename_fullsize (void)
{
  check_fullsize ("sd15");
  check_fullsize ("sd21_768v");
  check_fullsize ("sdxl_base_1.0");
  check_fullsize ("sdxl_refiner_1.0");
}

/* --- configuration off the tensors ------------------------------------------------------------- */

static EaselUnet *
load (const char *model, gboolean single_file, EaselCheckpoint **ck_out)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *file = g_strconcat (model, ".safetensors", NULL);
  g_autofree char *path = test_data_path ("models", single_file ? file : model, NULL);
  g_autofree char *hint_path = single_file ? test_data_path ("models", model, "unet", "config.json", NULL) : NULL;
  g_autoptr(EaselJson) hint = NULL;
  if (path == NULL)
    return NULL;
  if (hint_path) {
    hint = easel_json_parse_file (hint_path, 0, &error);
    g_assert_no_error (error);
  }
  EaselCheckpoint *ck = easel_checkpoint_open (path, &error);
  g_assert_no_error (error);
  EaselUnet *u = easel_unet_new (ck, hint, &error);
  g_assert_no_error (error);
  *ck_out = ck;
  return u;
}

static void
test_config_sd1 (void)
{
  for (int form = 0; form < 2; form++) {
    g_autoptr(EaselCheckpoint) ck = NULL;
    g_autoptr(EaselUnet) u = load ("sd1_tiny", form == 1, &ck);
    if (u == NULL)
      return;
    const EaselUnetConfig *c = easel_unet_config (u);
    static const gint64 channels[] = { 32, 64, 32, 32 };
    static const int depth[] = { 1, 1, 1, 0 };
    g_assert_cmpint (c->in_channels, ==, 4);
    g_assert_cmpint (c->out_channels, ==, 4);
    g_assert_cmpint (c->model_channels, ==, 32);
    g_assert_cmpint (c->n_levels, ==, 4);
    g_assert_cmpint (c->n_res, ==, 2);
    for (int l = 0; l < 4; l++) {
      g_assert_cmpint (c->channels[l], ==, channels[l]);
      g_assert_cmpint (c->depth[l], ==, depth[l]);
      g_assert_cmpint (c->heads[l], ==, 8);
    }
    g_assert_cmpint (c->mid_depth, ==, 1);
    g_assert_false (c->linear_proj);
    g_assert_cmpint (c->context_dim, ==, 16);
    g_assert_cmpint (c->time_proj_dim, ==, 32);
    g_assert_cmpint (c->time_embed_dim, ==, 128);
    g_assert_cmpint (c->adm_in, ==, 0);
    g_assert_cmpint (easel_unet_n_skips (u), ==, 12);
  }
}

static void
test_config_sdxl (void)
{
  for (int form = 0; form < 2; form++) {
    g_autoptr(EaselCheckpoint) ck = NULL;
    g_autoptr(EaselUnet) u = load ("sdxl_tiny", form == 1, &ck);
    if (u == NULL)
      return;
    const EaselUnetConfig *c = easel_unet_config (u);
    static const gint64 channels[] = { 64, 32, 32 };
    static const int depth[] = { 0, 2, 3 }, heads[] = { 2, 2, 4 };
    g_assert_cmpint (c->n_levels, ==, 3);
    for (int l = 0; l < 3; l++) {
      g_assert_cmpint (c->channels[l], ==, channels[l]);
      g_assert_cmpint (c->depth[l], ==, depth[l]);
      g_assert_cmpint (c->heads[l], ==, heads[l]);
    }
    g_assert_cmpint (c->mid_depth, ==, 3);
    g_assert_cmpint (c->mid_heads, ==, 4);
    g_assert_true (c->linear_proj);
    g_assert_cmpint (c->context_dim, ==, 24);
    g_assert_cmpint (c->adm_in, ==, 64);          /* 6 · 8 + 16 */
    g_assert_cmpint (c->time_id_width, ==, 8);
  }
}

static void
test_config_refiner (void)
{
  g_autoptr(EaselCheckpoint) ck = NULL;
  g_autoptr(EaselUnet) u = load ("sdxl_refiner_tiny", TRUE, &ck);
  if (u == NULL)
    return;
  const EaselUnetConfig *c = easel_unet_config (u);
  static const gint64 channels[] = { 64, 32, 32, 32 };
  static const int depth[] = { 0, 2, 2, 0 };
  g_assert_cmpint (c->n_levels, ==, 4);
  for (int l = 0; l < 4; l++) {
    g_assert_cmpint (c->channels[l], ==, channels[l]);
    g_assert_cmpint (c->depth[l], ==, depth[l]);
  }
  g_assert_cmpint (c->mid_depth, ==, 2);
  g_assert_cmpint (c->context_dim, ==, 16);
  g_assert_cmpint (c->adm_in, ==, 56);            /* 5 · 8 + 16 */
  g_assert_cmpint (c->time_id_width, ==, 8);
}

/* --- running ----------------------------------------------------------------------------------- */

static void
fill (float *x, gsize n, guint32 seed)
{
  for (gsize i = 0; i < n; i++) {
    seed = seed * 1664525u + 1013904223u;
    x[i] = ((seed >> 8) / 16777216.0f) * 2.0f - 1.0f;
  }
}

static double
max_diff (const float *a, const float *b, gsize n)
{
  double m = 0;
  for (gsize i = 0; i < n; i++)
    m = fmax (m, fabs ((double) a[i] - (double) b[i]));
  return m;
}

/* The inpainting UNet takes 9 channels (latent, mask, masked-image latent) and every one of them
 * reaches the output. */
static void
test_inpaint (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselCheckpoint) ck = NULL;
  g_autoptr(EaselUnet) u = load ("sd1_inpaint_tiny", FALSE, &ck);
  if (u == NULL)
    return;
  const EaselUnetConfig *c = easel_unet_config (u);
  g_assert_cmpint (c->in_channels, ==, 9);
  g_assert_cmpint (c->out_channels, ==, 4);
  g_assert_cmpint (easel_checkpoint_detection (ck)->family, ==, EASEL_FAMILY_SD1_INPAINT);

  enum { B = 1, H = 16, Wd = 16, L = 77 };
  g_autofree float *x = g_new (float, B * 9 * H * Wd), *ctx = g_new (float, B * L * 16);
  g_autofree float *y0 = g_new (float, B * 4 * H * Wd), *y1 = g_new (float, B * 4 * H * Wd);
  float t[B] = { 500.0f };
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);
  fill (x, B * 9 * H * Wd, 1);
  fill (ctx, B * L * 16, 2);
  g_assert_true (easel_unet_forward (u, be, x, B, H, Wd, t, ctx, L, NULL, 0, NULL, 0, y0, &error));
  g_assert_no_error (error);
  for (int i = 0; i < B * 4 * H * Wd; i++)
    g_assert_true (isfinite (y0[i]));
  for (int ch = 4; ch < 9; ch++) {    /* the mask channel and the masked-image latent matter */
    g_autofree float *x2 = g_memdup2 (x, sizeof (float) * B * 9 * H * Wd);
    for (int i = 0; i < H * Wd; i++)
      x2[ch * H * Wd + i] += 0.5f;
    g_assert_true (easel_unet_forward (u, be, x2, B, H, Wd, t, ctx, L, NULL, 0, NULL, 0, y1, &error));
    g_assert_cmpfloat (max_diff (y0, y1, B * 4 * H * Wd), >, 1e-3);
  }
}

/* ControlNet hooks: zero residuals change nothing; a residual on the middle block does. */
static void
test_residual_hooks (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselCheckpoint) ck = NULL;
  g_autoptr(EaselUnet) u = load ("sd1_tiny", FALSE, &ck);
  if (u == NULL)
    return;
  enum { H = 16, Wd = 16, L = 77 };
  float xs[4 * H * Wd], ctx[L * 16], t[1] = { 700.0f }, y[3][4 * H * Wd];
  fill (xs, G_N_ELEMENTS (xs), 3);
  fill (ctx, G_N_ELEMENTS (ctx), 4);
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);

  for (int run = 0; run < 3; run++) {
    g_autoptr(EaselGraph) g = easel_graph_new ();
    const gint64 s_shape[4] = { 1, 4, H, Wd }, t_shape[1] = { 1 }, c_shape[3] = { 1, L, 16 };
    EaselTensor *x = easel_graph_input (g, "x", EASEL_DTYPE_F32, 4, s_shape, xs);
    EaselTensor *tt = easel_graph_input (g, "t", EASEL_DTYPE_F32, 1, t_shape, t);
    EaselTensor *c = easel_graph_input (g, "c", EASEL_DTYPE_F32, 3, c_shape, ctx);
    EaselTensor *res[16] = { 0 };
    EaselUnetExtras extras = { 0 };
    EaselUnetIntermediates inter;
    if (run > 0) {
      /* zero residuals: the skip shapes come from running the sizes down the levels */
      static const gint64 ch[12] = { 32, 32, 32, 32, 64, 64, 64, 32, 32, 32, 32, 32 };
      static const gint64 sz[12] = { 16, 16, 16, 8, 8, 8, 4, 4, 4, 2, 2, 2 };
      static const float zeros[64 * 16 * 16];
      g_assert_cmpint (easel_unet_n_skips (u), ==, 12);
      for (int i = 0; i < 12; i++) {
        const gint64 shape[4] = { 1, ch[i], sz[i], sz[i] };
        res[i] = easel_graph_input (g, "res", EASEL_DTYPE_F32, 4, shape, zeros);
      }
      extras.down_residuals = res;
      extras.n_down_residuals = 12;
      if (run == 2) {
        static float mid[32 * 2 * 2];
        for (guint i = 0; i < G_N_ELEMENTS (mid); i++)
          mid[i] = 0.25f;
        const gint64 shape[4] = { 1, 32, 2, 2 };
        extras.mid_residual = easel_graph_input (g, "mid", EASEL_DTYPE_F32, 4, shape, mid);
      }
    }
    EaselTensor *out = easel_unet_build (u, g, x, tt, c, NULL, NULL, &extras, &inter);
    easel_graph_mark_output (g, out);
    g_assert_null (easel_graph_error (g));
    g_assert_true (easel_backend_compute (be, g, &error));
    g_assert_true (easel_backend_read (be, out, y[run], &error));
    g_assert_no_error (error);
  }
  g_assert_cmpfloat (max_diff (y[0], y[1], 4 * H * Wd), ==, 0.0);
  g_assert_cmpfloat (max_diff (y[0], y[2], 4 * H * Wd), >, 1e-3);
}

/* A batch of 2 gives each element what it gives alone (nothing mixes across the batch), with
 * fractional timesteps, and sizes that are not multiples of 8. */
static void
test_batch_independent (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselCheckpoint) ck = NULL;
  g_autoptr(EaselUnet) u = load ("sdxl_tiny", FALSE, &ck);
  if (u == NULL)
    return;
  enum { H = 6, Wd = 10, L = 77, N = 4 * H * Wd };
  float xs[2 * N], ctx[2 * L * 24], pooled[2 * 16], ids[2 * 6], t[2] = { 437.25f, 12.5f }, y2[2 * N], y1[N];
  fill (xs, G_N_ELEMENTS (xs), 5);
  fill (ctx, G_N_ELEMENTS (ctx), 6);
  fill (pooled, G_N_ELEMENTS (pooled), 7);
  for (int i = 0; i < 12; i++)
    ids[i] = (float) (64 + 8 * i);
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);
  g_assert_true (easel_unet_forward (u, be, xs, 2, H, Wd, t, ctx, L, pooled, 16, ids, 6, y2, &error));
  g_assert_no_error (error);
  for (int b = 0; b < 2; b++) {
    g_assert_true (easel_unet_forward (u, be, xs + b * N, 1, H, Wd, t + b, ctx + b * L * 24, L, pooled + b * 16, 16,
                                       ids + b * 6, 6, y1, &error));
    g_assert_cmpfloat (max_diff (y1, y2 + b * N, N), <, 1e-5);
  }
  g_assert_cmpfloat (max_diff (y2, y2 + N, N), >, 1e-3);
}

/* --- errors ------------------------------------------------------------------------------------ */

static void
test_bad_inputs (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselCheckpoint) ck = NULL;
  g_autoptr(EaselUnet) u = load ("sdxl_tiny", FALSE, &ck);
  if (u == NULL)
    return;
  float xs[4 * 8 * 8] = { 0 }, ctx[77 * 24] = { 0 }, pooled[16] = { 0 }, ids[6] = { 0 }, t[1] = { 1 }, y[4 * 8 * 8];
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (1);

  /* SDXL without pooled text and time ids */
  g_assert_false (easel_unet_forward (u, be, xs, 1, 8, 8, t, ctx, 77, NULL, 0, NULL, 0, y, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  /* 5 time ids do not fit the base's label embedding (16 + 6 · 8) */
  g_assert_false (easel_unet_forward (u, be, xs, 1, 8, 8, t, ctx, 77, pooled, 16, ids, 5, y, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_assert_nonnull (strstr (error->message, "time ids"));
  g_clear_error (&error);

  /* a context of the wrong width */
  g_autoptr(EaselGraph) g = easel_graph_new ();
  const gint64 s_shape[4] = { 1, 4, 8, 8 }, t_shape[1] = { 1 }, c_shape[3] = { 1, 77, 16 }, p_shape[2] = { 1, 16 },
               i_shape[2] = { 1, 6 };
  EaselTensor *out = easel_unet_build (u, g, easel_graph_input (g, "x", EASEL_DTYPE_F32, 4, s_shape, xs),
                                       easel_graph_input (g, "t", EASEL_DTYPE_F32, 1, t_shape, t),
                                       easel_graph_input (g, "c", EASEL_DTYPE_F32, 3, c_shape, ctx),
                                       easel_graph_input (g, "p", EASEL_DTYPE_F32, 2, p_shape, pooled),
                                       easel_graph_input (g, "i", EASEL_DTYPE_F32, 2, i_shape, ids), NULL, NULL);
  g_assert_nonnull (out);
  g_assert_nonnull (easel_graph_error (g));
  g_assert_nonnull (strstr (easel_graph_error (g)->message, "attn2.to_k"));
}

/* Writes sd1_tiny's UNet tensors as a UNet-only file, leaving out `drop` and turning `as_int`
 * into I32; returns the path (transfer full) or NULL when the data is absent. */
static char *
write_unet_only (const char *drop, const char *as_int)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = test_data_path ("models", "sd1_tiny", NULL);
  if (path == NULL)
    return NULL;
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  g_assert_no_error (error);
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  for (gsize i = 0; i < easel_checkpoint_n_tensors (ck); i++) {
    const EaselCheckpointTensor *t = easel_checkpoint_tensor (ck, i);
    if (strcmp (t->component, "unet") != 0 || (drop && strcmp (t->key, drop) == 0))
      continue;
    gboolean to_int = as_int && strcmp (t->key, as_int) == 0;
    g_autofree gint32 *zeros = to_int ? g_new0 (gint32, t->st->n_elements) : NULL;
    g_assert_true (easel_safetensors_writer_add (w, t->key, to_int ? EASEL_DTYPE_I32 : t->st->dtype, t->st->n_dims,
                                                 t->st->shape, to_int ? (const void *) zeros : t->st->data, &error));
  }
  g_autofree char *out = NULL;
  int fd = g_file_open_tmp ("easel-unet-XXXXXX.safetensors", &out, &error);
  g_assert_no_error (error);
  close (fd);
  g_assert_true (easel_safetensors_writer_save (w, out, &error));
  g_assert_no_error (error);
  return g_steal_pointer (&out);
}

static void
test_unet_only_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = write_unet_only (NULL, NULL);
  if (path == NULL)
    return;
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  g_assert_no_error (error);
  g_autoptr(EaselUnet) u = easel_unet_new (ck, NULL, &error);   /* no hint: SD 1.x's 8 heads */
  g_assert_no_error (error);
  g_assert_cmpint (easel_unet_config (u)->heads[0], ==, 8);

  g_autoptr(EaselCheckpoint) ck2 = NULL;
  g_autoptr(EaselUnet) u2 = load ("sd1_tiny", FALSE, &ck2);
  enum { H = 16, Wd = 16, L = 77 };
  float xs[4 * H * Wd], ctx[L * 16], t[1] = { 250.0f }, y[4 * H * Wd], y2[4 * H * Wd];
  fill (xs, G_N_ELEMENTS (xs), 8);
  fill (ctx, G_N_ELEMENTS (ctx), 9);
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);
  g_assert_true (easel_unet_forward (u, be, xs, 1, H, Wd, t, ctx, L, NULL, 0, NULL, 0, y, &error));
  g_assert_true (easel_unet_forward (u2, be, xs, 1, H, Wd, t, ctx, L, NULL, 0, NULL, 0, y2, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (max_diff (y, y2, G_N_ELEMENTS (y)), ==, 0.0);   /* the same weights, the same graph */
  g_unlink (path);
}

static void
test_bad_files (void)
{
  static const struct {
    const char *drop, *as_int, *expect;
  } cases[] = {
    { "up_blocks.2.attentions.1.proj_out.weight", NULL, "up_blocks.2.attentions.1.proj_out.weight" },
    { "mid_block.resnets.1.conv2.bias", NULL, "mid_block.resnets.1.conv2.bias" },
    { NULL, "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.weight", "I32" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr(GError) error = NULL;
    g_autofree char *path = write_unet_only (cases[i].drop, cases[i].as_int);
    if (path == NULL)
      return;
    g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
    g_assert_no_error (error);
    g_autoptr(EaselUnet) u = easel_unet_new (ck, NULL, &error);
    g_assert_null (u);
    g_assert_nonnull (error);
    g_assert_nonnull (strstr (error->message, cases[i].expect));
    g_assert_nonnull (strstr (error->message, path));
    g_unlink (path);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/unet/rename/examples", test_rename_examples);
  g_test_add_func ("/unet/rename/fullsize", test_rename_fullsize);
  g_test_add_func ("/unet/config/sd1", test_config_sd1);
  g_test_add_func ("/unet/config/sdxl", test_config_sdxl);
  g_test_add_func ("/unet/config/refiner", test_config_refiner);
  g_test_add_func ("/unet/inpaint", test_inpaint);
  g_test_add_func ("/unet/residual-hooks", test_residual_hooks);
  g_test_add_func ("/unet/batch-independent", test_batch_independent);
  g_test_add_func ("/unet/bad-inputs", test_bad_inputs);
  g_test_add_func ("/unet/unet-only-file", test_unet_only_file);
  g_test_add_func ("/unet/bad-files", test_bad_files);
  return g_test_run ();
}
