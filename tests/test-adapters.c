/* tests/test-adapters.c: the adapter networks and their pipeline wiring on bad input: a ControlNet
 * file without the control_model. prefix loads like the prefixed one; a ControlNet made for SDXL
 * is refused on an SD 1.x UNet (and the SD 1.x one on SDXL) with an error naming the file; a
 * missing tensor is named; a job's ControlNet without a hint is refused. Files are derived from
 * the shared tiny models and written to a temporary folder. */
#include <glib/gstdio.h>
#include <string.h>

#include "engine/controlnet.h"
#include "engine/error.h"
#include "engine/pipeline-adapters.h"
#include "engine/safetensors.h"
#include "testutil.h"

/* Writes the tensors of src whose name passes keep (renamed by strip / add) to path. */
static void
copy_file (const char *src, const char *path, const char *strip, const char *add, const char *drop)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselSafetensors) st = easel_safetensors_open (src, &error);
  g_assert_no_error (error);
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  for (gsize i = 0; i < easel_safetensors_n_tensors (st); i++) {
    const EaselStTensor *t = easel_safetensors_tensor (st, i);
    if (drop && strcmp (t->name, drop) == 0)
      continue;
    const char *rest = strip && g_str_has_prefix (t->name, strip) ? t->name + strlen (strip) : t->name;
    g_autofree char *name = g_strconcat (add ? add : "", rest, NULL);
    g_assert_true (easel_safetensors_writer_add (w, name, t->dtype, t->n_dims, t->shape, t->data, &error));
  }
  g_assert_true (easel_safetensors_writer_save (w, path, &error));
}

static EaselUnet *
open_unet (const char *file, EaselCheckpoint **ck)
{
  g_autoptr(GError) error = NULL;
  *ck = easel_checkpoint_open (file, &error);
  g_assert_no_error (error);
  EaselUnet *u = easel_unet_new (*ck, NULL, &error);
  g_assert_no_error (error);
  return u;
}

/* An SDXL ControlNet in lllyasviel's naming: sdxl_tiny's encoder half under control_model., a
 * hint encoder 3 -> 8 -> ... -> C0 and one 1x1 zero conv per skip connection. */
static void
write_sdxl_controlnet (const char *sdxl, const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselCheckpoint) ck = NULL;
  g_autoptr(EaselUnet) u = open_unet (sdxl, &ck);
  const EaselUnetConfig *cfg = easel_unet_config (u);
  g_autoptr(EaselSafetensors) st = easel_safetensors_open (sdxl, &error);
  g_assert_no_error (error);
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  static const char *const parts[] = { "time_embed.", "label_emb.", "input_blocks.", "middle_block." };
  for (gsize i = 0; i < easel_safetensors_n_tensors (st); i++) {
    const EaselStTensor *t = easel_safetensors_tensor (st, i);
    for (guint p = 0; p < G_N_ELEMENTS (parts); p++) {
      g_autofree char *pre = g_strconcat ("model.diffusion_model.", parts[p], NULL);
      if (g_str_has_prefix (t->name, pre)) {
        g_autofree char *name = g_strconcat ("control_model.", t->name + strlen ("model.diffusion_model."), NULL);
        g_assert_true (easel_safetensors_writer_add (w, name, t->dtype, t->n_dims, t->shape, t->data, &error));
      }
    }
  }
  g_autofree float *zeros = g_new0 (float, 64 * 64 * 9);
  const gint64 widths[9] = { 3, 8, 8, 16, 16, 32, 32, 64, cfg->model_channels };
  for (int k = 0; k < 8; k++) {
    const gint64 ws[4] = { widths[k + 1], widths[k], 3, 3 }, bs[1] = { widths[k + 1] };
    g_autofree char *wn = g_strdup_printf ("control_model.input_hint_block.%d.weight", 2 * k);
    g_autofree char *bn = g_strdup_printf ("control_model.input_hint_block.%d.bias", 2 * k);
    g_assert_true (easel_safetensors_writer_add (w, wn, EASEL_DTYPE_F32, 4, ws, zeros, &error));
    g_assert_true (easel_safetensors_writer_add (w, bn, EASEL_DTYPE_F32, 1, bs, zeros, &error));
  }
  /* skip channels: conv_in, then per level n_res resnets and (but the last) a downsampler */
  int n = 0;
  for (int l = 0; l < cfg->n_levels; l++)
    for (int r = 0; r < cfg->n_res + (l < cfg->n_levels - 1 ? 1 : 0) + (l == 0 ? 1 : 0); r++, n++) {
      const gint64 C = cfg->channels[l], ws[4] = { C, C, 1, 1 }, bs[1] = { C };
      g_autofree char *wn = g_strdup_printf ("control_model.zero_convs.%d.0.weight", n);
      g_autofree char *bn = g_strdup_printf ("control_model.zero_convs.%d.0.bias", n);
      g_assert_true (easel_safetensors_writer_add (w, wn, EASEL_DTYPE_F32, 4, ws, zeros, &error));
      g_assert_true (easel_safetensors_writer_add (w, bn, EASEL_DTYPE_F32, 1, bs, zeros, &error));
    }
  g_assert_cmpint (n, ==, easel_unet_n_skips (u));
  const gint64 C = cfg->channels[cfg->n_levels - 1], ws[4] = { C, C, 1, 1 }, bs[1] = { C };
  g_assert_true (easel_safetensors_writer_add (w, "control_model.middle_block_out.0.weight", EASEL_DTYPE_F32, 4, ws,
                                               zeros, &error));
  g_assert_true (easel_safetensors_writer_add (w, "control_model.middle_block_out.0.bias", EASEL_DTYPE_F32, 1, bs,
                                               zeros, &error));
  g_assert_true (easel_safetensors_writer_save (w, path, &error));
}

static void
test_controlnet_files (void)
{
  g_autofree char *cn_file = test_data_path ("models", "controlnet_sd1_tiny.safetensors", NULL);
  g_autofree char *sd1 = test_data_path ("models", "sd1_tiny.safetensors", NULL);
  g_autofree char *sdxl = test_data_path ("models", "sdxl_tiny.safetensors", NULL);
  if (cn_file == NULL || sd1 == NULL || sdxl == NULL) {
    g_test_skip ("no tiny models");
    return;
  }
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("easel-adapters-XXXXXX", &error);
  g_assert_no_error (error);
  g_autofree char *bare = g_build_filename (dir, "bare.safetensors", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing.safetensors", NULL);
  g_autofree char *xl = g_build_filename (dir, "sdxl_controlnet.safetensors", NULL);
  copy_file (cn_file, bare, "control_model.", NULL, NULL);
  copy_file (cn_file, missing, NULL, NULL, "control_model.middle_block.0.out_layers.3.bias");
  write_sdxl_controlnet (sdxl, xl);

  g_autoptr(EaselCheckpoint) ck_sd1 = NULL, ck_xl = NULL;
  g_autoptr(EaselUnet) u_sd1 = open_unet (sd1, &ck_sd1);
  g_autoptr(EaselUnet) u_xl = open_unet (sdxl, &ck_xl);

  /* with and without the prefix: the same ControlNet, fitting the SD 1.x UNet, not SDXL's */
  g_autoptr(EaselCheckpoint) ck_a = easel_checkpoint_open (cn_file, &error);
  g_assert_no_error (error);
  g_autoptr(EaselControlNet) a = easel_controlnet_new (ck_a, NULL, EASEL_FAMILY_SD1, &error);
  g_assert_no_error (error);
  g_autoptr(EaselCheckpoint) ck_b = easel_checkpoint_open (bare, &error);
  g_assert_no_error (error);
  g_autoptr(EaselControlNet) b = easel_controlnet_new (ck_b, NULL, EASEL_FAMILY_SD1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (easel_controlnet_n_residuals (b), ==, easel_controlnet_n_residuals (a));
  g_assert_cmpint (easel_controlnet_n_residuals (b), ==, easel_unet_n_skips (u_sd1));
  g_assert_true (easel_controlnet_check_unet (b, u_sd1, bare, &error));
  g_assert_no_error (error);
  g_assert_false (easel_controlnet_check_unet (a, u_xl, cn_file, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_MISMATCH);
  g_clear_error (&error);

  /* an SDXL ControlNet: loads, fits SDXL, refused on SD 1.x with the file named */
  g_autoptr(EaselCheckpoint) ck_x = easel_checkpoint_open (xl, &error);
  g_assert_no_error (error);
  g_autoptr(EaselControlNet) x = easel_controlnet_new (ck_x, NULL, EASEL_FAMILY_SDXL, &error);
  g_assert_no_error (error);
  g_assert_true (easel_controlnet_check_unet (x, u_xl, xl, &error));
  g_assert_false (easel_controlnet_check_unet (x, u_sd1, xl, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_MISMATCH);
  g_assert_nonnull (strstr (error->message, xl));
  g_clear_error (&error);

  /* a missing tensor is named */
  g_autoptr(EaselCheckpoint) ck_m = easel_checkpoint_open (missing, &error);
  g_assert_no_error (error);
  g_autoptr(EaselControlNet) m = easel_controlnet_new (ck_m, NULL, EASEL_FAMILY_SD1, &error);
  g_assert_null (m);
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_true (strstr (error->message, "out_layers.3.bias") != NULL || strstr (error->message, "mid_block.resnets.0.conv2.bias") != NULL);
  g_clear_error (&error);

  /* a job's ControlNet without a hint image, and an SDXL ControlNet in an SD 1.x job */
  EaselControlNetUnit unit = EASEL_CONTROLNET_UNIT_INIT;
  unit.model = cn_file;
  EaselJobParams job = { .controlnets = &unit, .n_controlnets = 1 };
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (1);
  g_autoptr(EaselAdapters) none = easel_adapters_new (&job, u_sd1, EASEL_FAMILY_SD1, be, 128, 128, NULL, NULL, &error);
  g_assert_null (none);
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_autofree float *hint = g_new0 (float, 3 * 128 * 128);
  const float *hints[1] = { hint };
  unit.model = xl;
  g_autoptr(EaselAdapters) bad = easel_adapters_new (&job, u_sd1, EASEL_FAMILY_SD1, be, 128, 128, hints, NULL, &error);
  g_assert_null (bad);
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_MISMATCH);
  g_clear_error (&error);

  g_unlink (bare);
  g_unlink (missing);
  g_unlink (xl);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/adapters/controlnet-files", test_controlnet_files);
  return g_test_run ();
}
