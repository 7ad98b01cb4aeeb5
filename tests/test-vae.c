/* tests/test-vae.c: the VAE (engine/vae.[ch]) on the tiny models of the test data: configuration read
 * off the tensors and the hint, both namings (and the old diffusers attention names, a bare VAE file)
 * giving one network, tiled decoding/encoding (exact tiles against the untiled result, independent
 * tiles against their documented blend and for seams), the posterior and scaling
 * helpers, the latent preview against ComfyUI's tables, and bad input. Parity with the reference
 * outputs is the golden kind "vae" (app/cli/golden-vae.c). */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "engine/error.h"
#include "engine/json.h"
#include "engine/safetensors.h"
#include "engine/vae.h"
#include "testutil.h"

static EaselCheckpoint *
open_model (const char *name)
{
  g_autofree char *path = test_data_path ("models", name, NULL);
  g_autoptr(GError) error = NULL;
  if (path == NULL)
    return NULL;
  EaselCheckpoint *ck = easel_checkpoint_open (path, &error);
  g_assert_no_error (error);
  return ck;
}

/* A model's VAE on a CPU backend; FALSE (test skipped) without the test data. */
typedef struct {
  EaselCheckpoint *ck;
  EaselVae *vae;
  EaselBackend *be;
} Fixture;

static gboolean
fixture_open (Fixture *f, const char *model)
{
  g_autoptr(GError) error = NULL;
  *f = (Fixture) { open_model (model), NULL, NULL };
  if (f->ck == NULL)
    return FALSE;
  f->vae = easel_vae_new (f->ck, NULL, &error);
  g_assert_no_error (error);
  f->be = easel_backend_new_cpu (2);
  return TRUE;
}

static void
fixture_clear (Fixture *f)
{
  g_clear_pointer (&f->vae, easel_vae_free);
  g_clear_pointer (&f->ck, easel_checkpoint_free);
  g_clear_pointer (&f->be, easel_backend_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Fixture, fixture_clear)

static EaselJson *
load_hint (const char *model)
{
  g_autofree char *path = test_data_path ("models", model, "vae", "config.json", NULL);
  g_autoptr(GError) error = NULL;
  EaselJson *j = easel_json_parse_file (path, 1 << 20, &error);
  g_assert_no_error (error);
  return j;
}

static float *
gaussian (GRand *r, gsize n, double scale)
{
  float *f = g_new (float, n);
  for (gsize i = 0; i < n; i += 2) {
    double u = g_rand_double_range (r, 1e-12, 1.0), v = g_rand_double (r);
    f[i] = (float) (scale * sqrt (-2.0 * log (u)) * cos (2 * G_PI * v));
    if (i + 1 < n)
      f[i + 1] = (float) (scale * sqrt (-2.0 * log (u)) * sin (2 * G_PI * v));
  }
  return f;
}

static double
max_abs_diff (const float *a, const float *b, gsize n)
{
  double m = 0;
  for (gsize i = 0; i < n; i++)
    m = MAX (m, fabs ((double) a[i] - b[i]));
  return m;
}

static double
rms (const float *a, gsize n)
{
  double s = 0;
  for (gsize i = 0; i < n; i++)
    s += (double) a[i] * a[i];
  return sqrt (s / n);
}

/* Configuration: the numbers of models/sd1_tiny/vae/config.json and testdata README section 5. */
static void
test_config (void)
{
  g_autoptr(EaselCheckpoint) folder = open_model ("sd1_tiny");
  g_autoptr(EaselCheckpoint) single = open_model ("sd1_tiny.safetensors");
  g_autoptr(EaselCheckpoint) xl = open_model ("sdxl_tiny.safetensors");
  g_autoptr(GError) error = NULL;
  if (folder == NULL)
    return;
  const EaselCheckpoint *cks[2] = { folder, single };
  for (int i = 0; i < 2; i++) {
    g_autoptr(EaselVae) vae = easel_vae_new (cks[i], NULL, &error);
    g_assert_no_error (error);
    const EaselVaeConfig *c = easel_vae_get_config (vae);
    const gint64 want[4] = { 32, 64, 32, 32 };
    g_assert_cmpint (c->n_levels, ==, 4);
    for (int l = 0; l < 4; l++)
      g_assert_cmpint (c->channels[l], ==, want[l]);
    g_assert_cmpint (c->encoder_blocks, ==, 2);      /* layers_per_block */
    g_assert_cmpint (c->decoder_blocks, ==, 3);
    g_assert_cmpint (c->latent_channels, ==, 4);
    g_assert_cmpint (c->in_channels, ==, 3);
    g_assert_cmpint (c->out_channels, ==, 3);
    g_assert_true (c->has_quant_conv && c->has_post_quant_conv && c->encoder_attention && c->decoder_attention);
    g_assert_cmpint (c->groups, ==, 32);
    g_assert_cmpfloat (c->scaling_factor, ==, 0.18215);   /* SD 1.x convention, no hint */
    g_assert_cmpint (easel_vae_factor (vae), ==, 8);
    g_assert_cmpint (easel_vae_latent_side (vae, 64), ==, 8);
    g_assert_cmpint (easel_vae_latent_side (vae, 70), ==, 8);  /* each downsampler floors */
  }

  /* SDXL: 0.13025 from the family; a hint's scaling_factor and shift_factor win */
  g_autoptr(EaselVae) vxl = easel_vae_new (xl, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (easel_vae_get_config (vxl)->scaling_factor, ==, 0.13025);
  const char *text = "{\"scaling_factor\": 0.5, \"shift_factor\": 0.25, \"block_out_channels\": [32, 32, 32, 32]}";
  g_autoptr(EaselJson) hint = easel_json_parse (text, strlen (text), &error);
  g_autoptr(EaselVae) vh = easel_vae_new (xl, hint, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (easel_vae_get_config (vh)->scaling_factor, ==, 0.5);
  g_assert_cmpfloat (easel_vae_get_config (vh)->shift_factor, ==, 0.25);
  float lat[2] = { 1.0f, -0.5f }, z[2], back[2];
  easel_vae_latent_to_z (vh, lat, z, 2);
  g_assert_cmpfloat_with_epsilon (z[0], 1.0 / 0.5 + 0.25, 1e-6);
  g_assert_cmpfloat_with_epsilon (z[1], -0.5 / 0.5 + 0.25, 1e-6);
  easel_vae_z_to_latent (vh, z, back, 2);
  g_assert_cmpfloat_with_epsilon (back[0], lat[0], 1e-6);
  g_assert_cmpfloat_with_epsilon (back[1], lat[1], 1e-6);

  /* a hint that disagrees with the weights is an error naming the file */
  const char *bad = "{\"block_out_channels\": [32, 64, 32]}";
  g_autoptr(EaselJson) badhint = easel_json_parse (bad, strlen (bad), &error);
  g_assert_null (easel_vae_new (xl, badhint, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);
  g_assert_nonnull (strstr (error->message, "sdxl_tiny.safetensors"));
  g_clear_error (&error);

  /* a hint's scaling factor for the SD 1.x folder: the folder's own config says 0.18215 */
  g_autoptr(EaselJson) sd1_hint = load_hint ("sd1_tiny");
  g_autoptr(EaselVae) v1 = easel_vae_new (folder, sd1_hint, &error);
  g_assert_no_error (error);
  g_assert_cmpfloat (easel_vae_get_config (v1)->scaling_factor, ==, 0.18215);
}

/* A bare VAE file at path: the folder's vae/ tensors without prefix, with the pre-0.14 diffusers
 * attention names (query/key/value/proj_attn); `drop` (a folder key) left out; `flatten` (a folder key)
 * written with its last two dims merged (same bytes, wrong shape). */
static void
write_bare_vae (const EaselCheckpoint *folder, const char *path, const char *drop, const char *flatten)
{
  g_autoptr(EaselSafetensorsWriter) wr = easel_safetensors_writer_new ();
  g_autoptr(GError) error = NULL;
  for (gsize i = 0; i < easel_checkpoint_n_tensors (folder); i++) {
    const EaselCheckpointTensor *t = easel_checkpoint_tensor (folder, i);
    gint64 shape[EASEL_MAX_DIMS];
    int n_dims = t->st->n_dims;
    if (strcmp (t->component, "vae") != 0 || g_strcmp0 (t->key, drop) == 0)
      continue;
    memcpy (shape, t->st->shape, sizeof shape);
    if (g_strcmp0 (t->key, flatten) == 0 && n_dims >= 2)
      shape[n_dims - 2] *= shape[n_dims - 1], n_dims--;
    g_autoptr(GString) key = g_string_new (t->key);
    g_string_replace (key, "attentions.0.to_q.", "attentions.0.query.", 1);
    g_string_replace (key, "attentions.0.to_k.", "attentions.0.key.", 1);
    g_string_replace (key, "attentions.0.to_v.", "attentions.0.value.", 1);
    g_string_replace (key, "attentions.0.to_out.0.", "attentions.0.proj_attn.", 1);
    g_assert_true (easel_safetensors_writer_add (wr, key->str, t->st->dtype, n_dims, shape, t->st->data, &error));
  }
  g_assert_true (easel_safetensors_writer_save (wr, path, &error));
  g_assert_no_error (error);
}

/* The same z through the diffusers folder (fp32) and the single file (fp16, original naming) and a
 * bare VAE file written here with the pre-0.14 diffusers attention names (query/key/value/proj_attn):
 * the weights are the same fp16-exact values, so the outputs agree to float rounding. */
static void
test_namings_agree (void)
{
  g_autoptr(EaselCheckpoint) folder = open_model ("sd1_tiny");
  g_autoptr(EaselCheckpoint) single = open_model ("sd1_tiny.safetensors");
  g_autoptr(GError) error = NULL;
  if (folder == NULL)
    return;
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (2);
  g_autoptr(GRand) r = g_rand_new_with_seed (11);
  g_autofree float *z = gaussian (r, 4 * 8 * 8, 1.0);
  const gsize n = 3 * 64 * 64;
  g_autofree float *a = g_new (float, n), *b = g_new (float, n), *c = g_new (float, n);

  g_autofree char *dir = g_dir_make_tmp ("easel-vae-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *bare_path = g_build_filename (dir, "vae.safetensors", NULL);
  write_bare_vae (folder, bare_path, NULL, NULL);
  g_autoptr(EaselCheckpoint) bare = easel_checkpoint_open (bare_path, &error);
  g_assert_no_error (error);

  g_autoptr(EaselVae) va = easel_vae_new (folder, NULL, &error);
  g_autoptr(EaselVae) vb = easel_vae_new (single, NULL, &error);
  g_autoptr(EaselVae) vc = easel_vae_new (bare, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (easel_vae_decode (va, be, z, 1, 8, 8, a, &error));
  g_assert_true (easel_vae_decode (vb, be, z, 1, 8, 8, b, &error));
  g_assert_true (easel_vae_decode (vc, be, z, 1, 8, 8, c, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (rms (a, n), >, 0.05);                 /* not a degenerate output */
  g_assert_cmpfloat (max_abs_diff (a, b, n), <, 1e-5);
  g_assert_cmpfloat (max_abs_diff (a, c, n), ==, 0.0);     /* same fp32 data, same graph */
  g_unlink (bare_path);
  g_rmdir (dir);
}

/* Incomplete or misshapen VAE weights: INVALID_FILE naming the file and the tensor. */
static void
test_bad_weights (void)
{
  g_autoptr(EaselCheckpoint) folder = open_model ("sd1_tiny");
  g_autoptr(GError) error = NULL;
  if (folder == NULL)
    return;
  g_autofree char *dir = g_dir_make_tmp ("easel-vae-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "bad.safetensors", NULL);
  const char *cases[][3] = {   /* drop, flatten, a word the message must have */
    { "decoder.conv_out.bias", NULL, "decoder.conv_out.bias" },
    { NULL, "encoder.down_blocks.1.resnets.0.conv2.weight", "encoder.down_blocks.1.resnets.0.conv2.weight" },
    { NULL, "decoder.mid_block.attentions.0.to_q.weight", "attentions.0.query.weight" },
    { "encoder.down_blocks.1.resnets.0.conv_shortcut.weight", NULL, "nin_shortcut.weight" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    write_bare_vae (folder, path, cases[i][0], cases[i][1]);
    g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
    g_assert_no_error (error);
    g_assert_null (easel_vae_new (ck, NULL, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);
    g_test_message ("%s", error->message);
    g_assert_nonnull (strstr (error->message, "bad.safetensors"));
    g_assert_nonnull (strstr (error->message, cases[i][2]));
    g_clear_error (&error);
  }
  g_unlink (path);
  g_rmdir (dir);
}

/* Batch 2 gives each image's own batch-1 result. */
static void
test_batch (void)
{
  g_auto(Fixture) f;
  g_autoptr(GError) error = NULL;
  if (!fixture_open (&f, "sdxl_tiny"))
    return;
  EaselVae *vae = f.vae;
  EaselBackend *be = f.be;
  g_autoptr(GRand) r = g_rand_new_with_seed (5);
  const gsize ni = 3 * 64 * 48, nl = 4 * 8 * 6;
  g_autofree float *img = gaussian (r, 2 * ni, 0.5);
  g_autofree float *m2 = g_new (float, 2 * nl), *l2 = g_new (float, 2 * nl), *m1 = g_new (float, nl), *l1 = g_new (float, nl);
  g_assert_true (easel_vae_encode (vae, be, img, 2, 64, 48, m2, l2, &error));
  g_assert_no_error (error);
  for (int b = 0; b < 2; b++) {
    g_assert_true (easel_vae_encode (vae, be, img + b * ni, 1, 64, 48, m1, l1, &error));
    g_assert_cmpfloat (max_abs_diff (m1, m2 + b * nl, nl), <, 1e-5);
    g_assert_cmpfloat (max_abs_diff (l1, l2 + b * nl, nl), <, 1e-5);
  }
  for (gsize i = 0; i < 2 * nl; i++)
    g_assert_true (l2[i] >= -30.0f && l2[i] <= 20.0f);
}

/* Tile starts along an axis of n (tile t, overlap o), as vae.h documents them. */
static gint64
doc_starts (gint64 n, gint64 t, gint64 o, gint64 *starts)
{
  gint64 k = n <= t ? 1 : MAX (2, (gint64) ceil ((double) (n - o) / (double) (t - o)));
  for (gint64 i = 0; i < k; i++)
    starts[i] = k == 1 ? 0 : (gint64) floor ((double) i * (n - t) / (k - 1) + 0.5);
  return k;
}

static double
doc_ramp (gint64 p, gint64 s, gint64 len, gint64 total, gint64 r)
{
  double w = 1.0;
  if (s > 0 && p < r)
    w *= (p + 0.5) / r;
  if (s + len < total && p >= len - r)
    w *= (len - p - 0.5) / r;
  return w;
}

/* The naive form of the documented blend: each tile through the untiled call on its crop, weights
 * accumulated over the whole output (memory the engine does not use). in (c_in, h, w), out
 * (c_out, h·f, w·f) or (c_out, h/f, w/f): num/den is the output/input scale; unit: start granularity. */
typedef gboolean (*TileCall) (EaselVae *vae, EaselBackend *be, const float *in, gint64 h, gint64 w, float *out, GError **error);

static void
naive_tiled (EaselVae *vae, EaselBackend *be, TileCall call, const float *in, gint64 c_in, gint64 h, gint64 w,
             gint64 c_out, gint64 num, gint64 den, gint64 unit, gint64 tile, gint64 overlap, float *out)
{
  gint64 sy[64], sx[64], oh = h * num / den, ow = w * num / den;
  gint64 ny = doc_starts (h / unit, tile / unit, overlap / unit, sy), nx = doc_starts (w / unit, tile / unit, overlap / unit, sx);
  gint64 th = MIN (tile, h), tw = MIN (tile, w), oth = th * num / den, otw = tw * num / den, r = overlap * num / den;
  g_autofree double *acc = g_new0 (double, c_out * oh * ow), *wsum = g_new0 (double, oh * ow);
  g_autofree float *crop = g_new (float, c_in * th * tw), *res = g_new (float, c_out * oth * otw);
  g_autoptr(GError) error = NULL;

  for (gint64 i = 0; i < ny; i++)
    for (gint64 j = 0; j < nx; j++) {
      gint64 y0 = sy[i] * unit, x0 = sx[j] * unit, oy0 = y0 * num / den, ox0 = x0 * num / den;
      for (gint64 c = 0; c < c_in; c++)
        for (gint64 y = 0; y < th; y++)
          for (gint64 x = 0; x < tw; x++)
            crop[(c * th + y) * tw + x] = in[(c * h + y0 + y) * w + x0 + x];
      g_assert_true (call (vae, be, crop, th, tw, res, &error));
      g_assert_no_error (error);
      for (gint64 y = 0; y < oth; y++)
        for (gint64 x = 0; x < otw; x++) {
          double wt = doc_ramp (y, oy0, oth, oh, r) * doc_ramp (x, ox0, otw, ow, r);
          wsum[(oy0 + y) * ow + ox0 + x] += wt;
          for (gint64 c = 0; c < c_out; c++)
            acc[(c * oh + oy0 + y) * ow + ox0 + x] += wt * res[(c * oth + y) * otw + x];
        }
    }
  for (gint64 c = 0; c < c_out; c++)
    for (gint64 p = 0; p < oh * ow; p++) {
      g_assert_cmpfloat (wsum[p], >, 0.0);       /* every output pixel is covered */
      out[c * oh * ow + p] = (float) (acc[c * oh * ow + p] / wsum[p]);
    }
}

static gboolean
decode_call (EaselVae *vae, EaselBackend *be, const float *in, gint64 h, gint64 w, float *out, GError **error)
{
  return easel_vae_decode (vae, be, in, 1, h, w, out, error);
}

static gboolean
encode_mean_call (EaselVae *vae, EaselBackend *be, const float *in, gint64 h, gint64 w, float *out, GError **error)
{
  g_autofree float *lv = g_new (float, 4 * (h / 8) * (w / 8));
  return easel_vae_encode (vae, be, in, 1, h, w, out, lv, error);
}

/* Independent tiles (EASEL_VAE_TILES_INDEPENDENT): a tile covering the image gives exactly the untiled
 * result; several tiles give exactly the documented blend of per-tile results (computed naively
 * here). Against the untiled result no tolerance is asserted for this mode, on purpose: each tile
 * normalises with its own GroupNorm statistics and attends only within itself (as diffusers'
 * tiled_decode and ComfyUI's tiled VAE do), and on the tiny random-weight models that difference is
 * of the order of the signal (measured: decode 16x24 latent, tiles 16/8: rms 0.19 against an image
 * rms 0.35; tiles 8/4: 0.35), because their receptive field spans the whole 16x24 latent, each of
 * their GroupNorm groups is one channel, and nothing in random weights makes the network local.
 * The exact mode is held to the untiled result (test_tiled_exact); this one to no seams
 * (test_tiled_seams). */
static void
test_tiled (void)
{
  g_auto(Fixture) f;
  g_autoptr(GError) error = NULL;
  if (!fixture_open (&f, "sd1_tiny"))
    return;
  EaselVae *vae = f.vae;
  EaselBackend *be = f.be;
  g_autoptr(GRand) r = g_rand_new_with_seed (3);
  const gint64 h = 16, w = 24, H = 8 * h, W = 8 * w;
  const gsize nz = 4 * h * w, ni = 3 * H * W;
  g_autofree float *z = gaussian (r, nz, 1.0);
  g_autofree float *full = g_new (float, ni), *tiled = g_new (float, ni), *naive = g_new (float, ni);

  g_assert_true (easel_vae_decode (vae, be, z, 1, h, w, full, &error));
  g_assert_true (easel_vae_decode_tiled (vae, be, z, 1, h, w, EASEL_VAE_TILES_INDEPENDENT, 24, 8, tiled, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (max_abs_diff (full, tiled, ni), ==, 0.0);

  const gint64 dtiles[][2] = { { 12, 4 }, { 8, 4 }, { 10, 2 }, { 16, 0 } };
  for (guint t = 0; t < G_N_ELEMENTS (dtiles); t++) {
    g_assert_true (easel_vae_decode_tiled (vae, be, z, 1, h, w, EASEL_VAE_TILES_INDEPENDENT, dtiles[t][0], dtiles[t][1], tiled, &error));
    g_assert_no_error (error);
    naive_tiled (vae, be, decode_call, z, 4, h, w, 3, 8, 1, 1, dtiles[t][0], dtiles[t][1], naive);
    g_assert_cmpfloat (max_abs_diff (naive, tiled, ni), <, 1e-5);
    g_assert_cmpfloat (max_abs_diff (full, tiled, ni), >, 0.0);   /* really tiled */
  }

  /* encode the decoded image (a smooth, image-like input): means of 64/16 and 96/32 pixel tiles */
  const gsize nl = 4 * h * w;
  g_autofree float *m = g_new (float, nl), *l = g_new (float, nl), *mt = g_new (float, nl), *lt = g_new (float, nl);
  g_autofree float *mn = g_new (float, nl);
  g_assert_true (easel_vae_encode_tiled (vae, be, full, 1, H, W, EASEL_VAE_TILES_INDEPENDENT, 256, 64, mt, lt, &error));
  g_assert_true (easel_vae_encode (vae, be, full, 1, H, W, m, l, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (max_abs_diff (m, mt, nl), ==, 0.0);
  g_assert_cmpfloat (max_abs_diff (l, lt, nl), ==, 0.0);
  const gint64 etiles[][2] = { { 64, 16 }, { 96, 32 } };
  for (guint t = 0; t < G_N_ELEMENTS (etiles); t++) {
    g_assert_true (easel_vae_encode_tiled (vae, be, full, 1, H, W, EASEL_VAE_TILES_INDEPENDENT, etiles[t][0], etiles[t][1], mt, lt, &error));
    g_assert_no_error (error);
    naive_tiled (vae, be, encode_mean_call, full, 3, H, W, 4, 1, 8, 8, etiles[t][0], etiles[t][1], mn);
    g_assert_cmpfloat (max_abs_diff (mn, mt, nl), <, 1e-5);
    for (gsize i = 0; i < nl; i++)
      g_assert_true (lt[i] >= -30.0f && lt[i] <= 20.0f);
  }
}

/* Exact tiles against the untiled result, decode and encode, batch 2 (statistics are per sample),
 * for tile cores from the whole latent down to 2 latent pixels (windows wider than their cores) and
 * uneven splits (7 over 16 and 24; 40 image pixels = 5 latent pixels).
 * Tolerance 1e-4 absolute (outputs have rms about 0.35): the cores are exact by construction (each
 * segment's margin covers its 3x3 convs), so what is left is float rounding of the GroupNorm
 * statistics (a different summation order, then mean and rstd rounded to float before the apply op
 * instead of the fused kernel's two-part mean), carried through the ~40 layers of the network. It is
 * the same with one tile covering the whole image as with 96 tiles (measured: 0.6-1.4e-5 in every case
 * here), so it is not a tiling effect; 1e-4 leaves 10x for other SIMD widths. A margin one pixel too
 * small (the upsampler's) gives errors of about 1 on this model. */
static void
test_tiled_exact (void)
{
  g_auto(Fixture) f;
  g_autoptr(GError) error = NULL;
  if (!fixture_open (&f, "sd1_tiny"))
    return;
  EaselVae *vae = f.vae;
  EaselBackend *be = f.be;
  g_autoptr(GRand) r = g_rand_new_with_seed (3);
  const gint64 B = 2, h = 16, w = 24, H = 8 * h, W = 8 * w;
  const gsize nz = B * 4 * h * w, ni = B * 3 * H * W, nl = B * 4 * h * w;
  g_autofree float *z = gaussian (r, nz, 1.0);
  g_autofree float *full = g_new (float, ni), *tiled = g_new (float, ni);
  g_autofree float *m = g_new (float, nl), *l = g_new (float, nl), *mt = g_new (float, nl), *lt = g_new (float, nl);

  g_assert_true (easel_vae_decode (vae, be, z, B, h, w, full, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (rms (full, ni), >, 0.1);
  const gint64 dtiles[] = { 24, 7, 2 };
  for (guint t = 0; t < G_N_ELEMENTS (dtiles); t++) {
    g_assert_true (easel_vae_decode_tiled (vae, be, z, B, h, w, EASEL_VAE_TILES_EXACT, dtiles[t], 0, tiled, &error));
    g_assert_no_error (error);
    g_test_message ("exact tiled decode, tile %d: max |diff| %.3g", (int) dtiles[t], max_abs_diff (full, tiled, ni));
    g_assert_cmpfloat (max_abs_diff (full, tiled, ni), <, 1e-4);
  }
  /* the independent tiles of the same size are far off on this model: the test above is not trivial */
  g_assert_true (easel_vae_decode_tiled (vae, be, z, B, h, w, EASEL_VAE_TILES_INDEPENDENT, 8, 4, tiled, &error));
  g_assert_cmpfloat (max_abs_diff (full, tiled, ni), >, 0.1);

  g_assert_true (easel_vae_encode (vae, be, full, B, H, W, m, l, &error));
  g_assert_no_error (error);
  const gint64 etiles[] = { 256, 40, 16 };
  for (guint t = 0; t < G_N_ELEMENTS (etiles); t++) {
    g_assert_true (easel_vae_encode_tiled (vae, be, full, B, H, W, EASEL_VAE_TILES_EXACT, etiles[t], 0, mt, lt, &error));
    g_assert_no_error (error);
    g_test_message ("exact tiled encode, tile %d: max |diff| mean %.3g logvar %.3g", (int) etiles[t],
                    max_abs_diff (m, mt, nl), max_abs_diff (l, lt, nl));
    g_assert_cmpfloat (max_abs_diff (m, mt, nl), <, 1e-4);
    g_assert_cmpfloat (max_abs_diff (l, lt, nl), <, 1e-4);
  }
}

/* The largest mean step across a row (axis 0) or column (axis 1) boundary of an image (3, H, W), over
 * the boundaries at least 8 pixels from the border: per channel, the signed difference between
 * neighbouring lines averaged along the line. Pixel noise averages out along the line; a seam, where
 * one tile's colours meet another's, does not. */
static double
max_line_step (const float *im, gint64 H, gint64 W, int axis)
{
  const gint64 n = axis ? W : H, len = axis ? H : W;
  double worst = 0;
  for (gint64 p = 8; p <= n - 8; p++)
    for (int c = 0; c < 3; c++) {
      double s = 0;
      for (gint64 q = 0; q < len; q++) {
        const float *a = axis ? im + (c * H + q) * W + p : im + (c * H + p) * W + q;
        s += a[0] - (axis ? a[-1] : a[-W]);
      }
      worst = MAX (worst, fabs (s / len));
    }
  return worst;
}

/* Independent tiles: no seam across tile borders. Each tile differs from the untiled result by about
 * the image itself on this model (per-tile GroupNorm statistics), so the cross-fade is what hides the
 * borders: the largest mean step across any line of the blended result stays within 15% of the
 * untiled image's own largest one (measured: 0.8-1.07x for these tilings), while butting the same
 * tiles together (overlap 0) shows a step of 2.3x the image's own at the border at row 64. */
static void
test_tiled_seams (void)
{
  g_auto(Fixture) f;
  g_autoptr(GError) error = NULL;
  if (!fixture_open (&f, "sd1_tiny"))
    return;
  g_autoptr(GRand) r = g_rand_new_with_seed (3);
  const gint64 h = 16, w = 24, H = 8 * h, W = 8 * w;
  g_autofree float *z = gaussian (r, 4 * h * w, 1.0);
  g_autofree float *full = g_new (float, 3 * H * W), *tiled = g_new (float, 3 * H * W);
  const gint64 tilings[][2] = { { 8, 4 }, { 12, 4 }, { 6, 3 } };

  g_assert_true (easel_vae_decode (f.vae, f.be, z, 1, h, w, full, &error));
  g_assert_no_error (error);
  const double own[2] = { max_line_step (full, H, W, 0), max_line_step (full, H, W, 1) };
  for (guint t = 0; t < G_N_ELEMENTS (tilings); t++) {
    g_assert_true (easel_vae_decode_tiled (f.vae, f.be, z, 1, h, w, EASEL_VAE_TILES_INDEPENDENT, tilings[t][0],
                                           tilings[t][1], tiled, &error));
    g_assert_no_error (error);
    for (int axis = 0; axis < 2; axis++)
      g_assert_cmpfloat (max_line_step (tiled, H, W, axis), <, 1.15 * own[axis]);
  }
  g_assert_true (easel_vae_decode_tiled (f.vae, f.be, z, 1, h, w, EASEL_VAE_TILES_INDEPENDENT, 8, 0, tiled, &error));
  g_assert_cmpfloat (max_line_step (tiled, H, W, 0), >, 1.5 * own[0]);   /* the measure sees a real seam */
}

/* std = exp (logvar / 2), sample = mean + std · noise; NULL noise gives the mean; [-1, 1] -> [0, 1]. */
static void
test_helpers (void)
{
  const float mean[4] = { 0.5f, -1.0f, 2.0f, 0.0f }, logvar[4] = { 0.0f, -2.0f, 1.0f, -30.0f };
  const float noise[4] = { 1.0f, 2.0f, -1.0f, 3.0f };
  float std[4], sample[4], m[4];
  easel_vae_posterior (mean, logvar, noise, 4, std, sample);
  for (int i = 0; i < 4; i++) {
    double s = exp (logvar[i] / 2.0);
    g_assert_cmpfloat_with_epsilon (std[i], s, 1e-6 * s + 1e-12);
    g_assert_cmpfloat_with_epsilon (sample[i], mean[i] + s * noise[i], 1e-6);
  }
  easel_vae_posterior (mean, logvar, NULL, 4, NULL, m);
  g_assert_cmpmem (m, sizeof m, mean, sizeof mean);

  const float x[5] = { -1.5f, -1.0f, 0.0f, 0.5f, 3.0f };
  const float want[5] = { 0.0f, 0.0f, 0.5f, 0.75f, 1.0f };
  float y[5];
  easel_vae_image_to_unit (x, y, 5);
  g_assert_cmpmem (y, sizeof y, want, sizeof want);
}

/* Each latent channel alone, at 1, against the rows of ComfyUI's latent_formats.py tables
 * (SD15: no bias; SDXL: its table plus latent_rgb_factors_bias), mapped as uint8 (clamp ((v + 1) / 2) · 255). */
static void
test_preview (void)
{
  static const double sd15[4][3] = {
    { 0.3512, 0.2297, 0.3227 }, { 0.3250, 0.4974, 0.2350 }, { -0.2829, 0.1762, 0.2721 }, { -0.2120, -0.2616, -0.7177 },
  };
  static const double sdxl[4][3] = {
    { 0.3651, 0.4232, 0.4341 }, { -0.2533, -0.0042, 0.1068 }, { 0.1076, 0.1111, -0.0362 }, { -0.3165, -0.2492, -0.2188 },
  };
  static const double sdxl_bias[3] = { 0.1084, -0.0175, -0.0011 };
  /* latent (4, 1, 5): pixel p < 4 is channel p at 1; pixel 4 is channel 3 at -9 (saturates) */
  float lat[4 * 5] = { 0 };
  for (int p = 0; p < 4; p++)
    lat[p * 5 + p] = 1.0f;
  lat[3 * 5 + 4] = -9.0f;
  guint8 rgb[5 * 3];

  for (int fam = 0; fam < 2; fam++) {
    easel_vae_preview_rgb8 (fam ? EASEL_FAMILY_SDXL : EASEL_FAMILY_SD1, lat, 1, 5, rgb);
    for (int p = 0; p < 4; p++)
      for (int o = 0; o < 3; o++) {
        double v = (fam ? sdxl[p][o] + sdxl_bias[o] : sd15[p][o]);
        int want = (int) (CLAMP ((v + 1.0) / 2.0, 0.0, 1.0) * 255.0);
        g_assert_cmpint (abs ((int) rgb[p * 3 + o] - want), <=, 1);
      }
    g_assert_cmpint (rgb[4 * 3 + 0], ==, 255);   /* -9 · -0.21 or -0.32: saturated red */
  }
}

/* Bad input: clear errors, no crash. */
static void
test_errors (void)
{
  g_auto(Fixture) f;
  g_autoptr(GError) error = NULL;
  if (!fixture_open (&f, "sd1_tiny"))
    return;
  EaselVae *vae = f.vae;
  EaselBackend *be = f.be;
  float buf[3 * 16 * 16] = { 0 }, m[64], l[64];

  g_assert_false (easel_vae_encode (vae, be, buf, 1, 4, 16, m, l, &error));        /* smaller than 8 */
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_false (easel_vae_decode_tiled (vae, be, buf, 1, 4, 4, EASEL_VAE_TILES_INDEPENDENT, 4, 3, buf, &error));   /* overlap > tile / 2 */
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_false (easel_vae_encode_tiled (vae, be, buf, 1, 16, 16, EASEL_VAE_TILES_INDEPENDENT, 12, 0, m, l, &error));   /* not a multiple of 8 */
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_false (easel_vae_encode_tiled (vae, be, buf, 1, 16, 16, EASEL_VAE_TILES_EXACT, 12, 0, m, l, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_false (easel_vae_decode_tiled (vae, be, buf, 1, 4, 4, EASEL_VAE_TILES_EXACT, 0, 0, buf, &error));   /* no tile */
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_false (easel_vae_decode_tiled (vae, be, buf, 1, 4, 4, (EaselVaeTileMode) 7, 4, 0, buf, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);

  /* no VAE in the file: NOT_FOUND naming it */
  g_autoptr(EaselCheckpoint) unet = open_model ("sd1_inpaint_tiny");
  g_assert_null (easel_vae_new (unet, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "sd1_inpaint_tiny"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/vae/config", test_config);
  g_test_add_func ("/vae/namings-agree", test_namings_agree);
  g_test_add_func ("/vae/bad-weights", test_bad_weights);
  g_test_add_func ("/vae/batch", test_batch);
  g_test_add_func ("/vae/tiled", test_tiled);
  g_test_add_func ("/vae/tiled-exact", test_tiled_exact);
  g_test_add_func ("/vae/tiled-seams", test_tiled_seams);
  g_test_add_func ("/vae/helpers", test_helpers);
  g_test_add_func ("/vae/preview", test_preview);
  g_test_add_func ("/vae/errors", test_errors);
  return g_test_run ();
}
