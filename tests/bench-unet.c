/* tests/bench-unet.c: times UNet forward passes of a full-size model on the CPU backend, without
 * its weights: a key list of testdata/fullsize_keys (default SD 1.5) becomes a sparse
 * .safetensors of zeros in the temporary folder (no disk space used; dense kernels take the same
 * time on zeros), which loads like a real UNet-only single file. Prints the configuration read off
 * the tensors and seconds per forward pass; never fails on time.
 *
 *   bench-unet [KEYLIST [B [H W [ITERS]]]]      latent size H x W (64 x 64 = 512² pixels), batch B;
 *                                              ITERS < 0: only load and print the configuration */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/family.h"
#include "engine/unet.h"

/* The key list's UNet tensors as a sparse file of zeros. */
static gboolean
write_sparse (const EaselKeyList *list, const char *path, GError **error)
{
  g_autoptr(GString) header = g_string_new ("{");
  guint64 offset = 0;
  for (gsize i = 0; i < list->n_keys; i++) {
    const EaselKeyShape *k = &list->keys[i];
    guint64 n = easel_dtype_size (list->dtypes[i]);
    if (!g_str_has_prefix (k->name, "model.diffusion_model."))
      continue;
    g_string_append_printf (header, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", header->len > 1 ? "," : "", k->name,
                            easel_dtype_name (list->dtypes[i]));
    for (int d = 0; d < k->n_dims; d++) {
      g_string_append_printf (header, "%s%" G_GINT64_FORMAT, d ? "," : "", k->shape[d]);
      n *= (guint64) k->shape[d];
    }
    g_string_append_printf (header, "],\"data_offsets\":[%" G_GUINT64_FORMAT ",%" G_GUINT64_FORMAT "]}", offset,
                            offset + n);
    offset += n;
  }
  g_string_append_c (header, '}');
  while (header->len % 8 != 0)
    g_string_append_c (header, ' ');
  guint64 len = GUINT64_TO_LE (header->len);
  int fd = g_open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || write (fd, &len, 8) != 8 || write (fd, header->str, header->len) != (ssize_t) header->len
      || ftruncate (fd, 8 + header->len + offset) != 0) {
    g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (errno), "%s: %s", path, g_strerror (errno));
    if (fd >= 0)
      close (fd);
    return FALSE;
  }
  close (fd);
  return TRUE;
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  const char *data = g_getenv ("EASEL_TESTDATA");
  g_autofree char *def = g_build_filename (data ? data : "../shared/testdata", "fullsize_keys", "sd15_original.txt", NULL);
  const char *keys = argc > 1 ? argv[1] : def;
  gint64 B = argc > 2 ? atoi (argv[2]) : 2, H = argc > 4 ? atoi (argv[3]) : 64, W = argc > 4 ? atoi (argv[4]) : 64;
  int iters = argc > 5 ? atoi (argv[5]) : 3;
  g_autofree char *path = g_build_filename (g_get_tmp_dir (), "easel-bench-unet.safetensors", NULL);

  g_autoptr(EaselKeyList) list = easel_key_list_load (keys, &error);
  if (list == NULL || !write_sparse (list, path, &error)) {
    fprintf (stderr, "bench-unet: %s\n", error->message);
    return 77;   /* skipped */
  }
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  g_autoptr(EaselUnet) u = ck ? easel_unet_new (ck, NULL, &error) : NULL;
  g_unlink (path);   /* the mapping stays */
  if (u == NULL) {
    fprintf (stderr, "bench-unet: %s\n", error->message);
    return 1;
  }
  const EaselUnetConfig *c = easel_unet_config (u);
  printf ("%s: %s, in %" G_GINT64_FORMAT ", levels %d x %d resnets, channels", keys,
          easel_family_name (easel_checkpoint_detection (ck)->family), c->in_channels, c->n_levels, c->n_res);
  for (int l = 0; l < c->n_levels; l++)
    printf (" %" G_GINT64_FORMAT "(depth %d, %d heads)", c->channels[l], c->depth[l], c->heads[l]);
  printf (", mid depth %d, %s proj, context %" G_GINT64_FORMAT ", adm %" G_GINT64_FORMAT "\n", c->mid_depth,
          c->linear_proj ? "linear" : "conv", c->context_dim, c->adm_in);

  gint64 L = 77, P = c->adm_in > 0 ? (c->adm_in == 2816 ? 1280 : c->context_dim) : 0, n_ids = P ? (c->adm_in == 2816 ? 6 : 5) : 0;
  g_autofree float *x = g_new0 (float, B * c->in_channels * H * W), *ctx = g_new0 (float, B * L * c->context_dim);
  g_autofree float *out = g_new (float, B * c->out_channels * H * W), *t = g_new (float, B);
  g_autofree float *pooled = g_new0 (float, MAX (B * P, 1)), *ids = g_new0 (float, MAX (B * n_ids, 1));
  for (gint64 i = 0; i < B; i++)
    t[i] = 500.0f;
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (0);
  for (int i = 0; i <= iters; i++) {   /* none when iters < 0 */
    gint64 t0 = g_get_monotonic_time ();
    if (!easel_unet_forward (u, be, x, B, H, W, t, ctx, L, P ? pooled : NULL, P, n_ids ? ids : NULL, n_ids, out, &error)) {
      fprintf (stderr, "bench-unet: %s\n", error->message);
      return 1;
    }
    printf ("%s B=%" G_GINT64_FORMAT " %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT ": %.3f s\n", i == 0 ? "first (weights converted)" : "forward",
            B, H, W, (g_get_monotonic_time () - t0) / 1e6);
  }
  return 0;
}
