/* app/cli/cli-inspect-checkpoint.c: `easel-cli inspect [--tensors] FILE|DIR` for a .safetensors
 * checkpoint or a diffusers folder: family, format, prediction type, UNet facts, dtypes, tensor
 * count and bytes, metadata, parts without weights; --tensors lists every tensor.
 * Bad input: exit 1 and one line "easel-cli: <file>: <problem>" on stderr, nothing on stdout. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine/vae.h"
#include "engine/unet.h"
#include "engine/clip.h"
#include "engine/checkpoint.h"

static void
print_bytes (guint64 n)
{
  if (n >= (1u << 30))
    printf ("%" G_GUINT64_FORMAT " bytes (%.2f GiB)", n, n / (double) (1u << 30));
  else if (n >= (1u << 20))
    printf ("%" G_GUINT64_FORMAT " bytes (%.2f MiB)", n, n / (double) (1u << 20));
  else
    printf ("%" G_GUINT64_FORMAT " bytes", n);
}

static void
print_detection (const EaselDetection *d)
{
  printf ("family:         %s (%s)\n", easel_family_display_name (d->family), easel_family_name (d->family));
  printf ("  why:          %s\n", d->reason);
  printf ("prediction:     %s (%s)\n", easel_prediction_name (d->prediction),
          easel_prediction_source_name (d->prediction_source));
  if (d->unet_naming != EASEL_NAMING_NONE) {
    printf ("unet:           %s naming, prefix \"%s\"\n",
            d->unet_naming == EASEL_NAMING_ORIGINAL ? "original (ldm)" : "diffusers", d->unet_prefix);
    printf ("  in-channels:  %" G_GINT64_FORMAT "\n", d->in_channels);
    printf ("  context:      %" G_GINT64_FORMAT "\n", d->context_dim);
    printf ("  channels:     %" G_GINT64_FORMAT ", %d levels, %s proj_in\n", d->model_channels, d->n_levels,
            d->linear_proj ? "Linear" : "1x1-conv");
    if (d->adm_in > 0) {
      printf ("  label embed:  %" G_GINT64_FORMAT " wide", d->adm_in);
      if (d->n_time_ids > 0)
        printf (", %d time ids", d->n_time_ids);
      if (d->time_id_width > 0)
        printf (" of %" G_GINT64_FORMAT, d->time_id_width);
      if (d->pooled_dim > 0)
        printf (" + pooled %" G_GINT64_FORMAT, d->pooled_dim);
      printf ("\n");
    }
  } else {
    printf ("unet:           none\n");
  }
  for (int i = 0; i < d->n_text_encoders; i++) {
    const EaselTextEncoderInfo *t = &d->text_encoders[i];
    printf ("text encoder:   \"%s\": %s, width %" G_GINT64_FORMAT ", %d layers", t->prefix,
            t->naming == EASEL_NAMING_ORIGINAL ? "OpenCLIP" : "CLIP (transformers)", t->width, t->n_layers);
    if (t->projection > 0)
      printf (", projection %" G_GINT64_FORMAT, t->projection);
    printf ("\n");
  }
  printf ("vae:            %s\n", d->has_vae ? "yes" : "no");
}

static void
print_unused (const char *network, GPtrArray *unused)
{
  printf ("%-15s %u tensor%s unused\n", network, unused->len, unused->len == 1 ? "" : "s");
  for (guint i = 0; i < unused->len; i++)
    printf ("  %s\n", (char *) unused->pdata[i]);
  g_ptr_array_unref (unused);
}

/* --verbose: loads each network as generation would and lists what it leaves unused. */
static void
print_networks (const EaselCheckpoint *ck)
{
  g_autoptr(GError) error = NULL;
  for (guint index = 0; index < 2; index++) {
    g_autofree char *prefix = easel_clip_find_prefix (ck, index, NULL);
    if (prefix == NULL)
      continue;
    g_autofree char *label = g_strdup_printf ("text encoder %u:", index);
    g_autoptr(EaselClip) clip = easel_clip_new (ck, prefix, NULL, &error);
    if (clip == NULL) {
      printf ("%-15s not loadable: %s\n", label, error->message);
      g_clear_error (&error);
      continue;
    }
    print_unused (label, easel_clip_unused (clip));
  }
  g_autoptr(EaselUnet) unet = easel_unet_new (ck, NULL, &error);
  if (unet)
    print_unused ("unet:", easel_unet_unused (unet));
  else if (easel_checkpoint_detection (ck)->unet_naming != EASEL_NAMING_NONE)
    printf ("%-15s not loadable: %s\n", "unet:", error->message);
  g_clear_error (&error);
  g_autoptr(EaselVae) vae = easel_vae_new (ck, NULL, &error);
  if (vae)
    print_unused ("vae:", easel_vae_unused (vae));
}

int
easel_cli_inspect_checkpoint (const char *path, gboolean list_tensors, gboolean verbose)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  gboolean any = FALSE;

  if (ck == NULL) {
    easel_cli_error ("%s", error->message);
    return 1;
  }
  printf ("path:           %s\n", path);
  printf ("format:         %s\n", easel_checkpoint_format_name (easel_checkpoint_format (ck)));
  print_detection (easel_checkpoint_detection (ck));
  printf ("tensors:        %" G_GSIZE_FORMAT " in %" G_GSIZE_FORMAT " file%s, ", easel_checkpoint_n_tensors (ck),
          easel_checkpoint_n_files (ck), easel_checkpoint_n_files (ck) == 1 ? "" : "s");
  print_bytes (easel_checkpoint_tensor_bytes (ck));
  printf (" of data, ");
  print_bytes (easel_checkpoint_file_bytes (ck));
  printf (" on disk\n");
  printf ("dtypes:        ");
  for (int dt = 0; dt < EASEL_DTYPE_COUNT; dt++) {
    gsize n = easel_checkpoint_dtype_count (ck, (EaselDType) dt);
    if (n)
      printf (" %s %" G_GSIZE_FORMAT, easel_dtype_name ((EaselDType) dt), n);
  }
  printf ("\n");
  if (easel_checkpoint_n_parts (ck) > 0) {
    printf ("parts:\n");
    for (gsize i = 0; i < easel_checkpoint_n_parts (ck); i++) {
      const EaselCheckpointPart *p = easel_checkpoint_part (ck, i);
      printf ("  %-16s %-30s", p->name, p->class_name ? p->class_name : "");
      if (p->has_weights)
        printf (" %" G_GSIZE_FORMAT " tensors in %" G_GSIZE_FORMAT " file%s\n", p->n_tensors, p->n_files,
                p->n_files == 1 ? "" : "s");
      else
        printf (" %s\n", p->note ? p->note : "-");
    }
    for (gsize i = 0; i < easel_checkpoint_n_parts (ck); i++) {
      const EaselCheckpointPart *p = easel_checkpoint_part (ck, i);
      if (!p->has_weights && p->note) {
        printf ("%s %s (%s)", any ? "," : "parts without weights:", p->name, p->note);
        any = TRUE;
      }
    }
    if (any)
      printf ("\n");
  }
  if (easel_checkpoint_n_metadata (ck) > 0) {
    printf ("metadata:\n");
    for (gsize i = 0; i < easel_checkpoint_n_metadata (ck); i++) {
      const char *v = easel_checkpoint_metadata_value (ck, i);
      g_autofree char *line = g_strndup (v, 200);   /* long values (training settings, JSON): one line */
      for (char *c = line; *c; c++)
        if ((guchar) *c < 0x20 || *c == 0x7f)
          *c = ' ';
      printf ("  %s: %s%s\n", easel_checkpoint_metadata_key (ck, i), line, strlen (v) > 200 ? "..." : "");
    }
  }
  if (verbose)
    print_networks (ck);
  if (list_tensors) {
    printf ("tensors:\n");
    for (gsize i = 0; i < easel_checkpoint_n_tensors (ck); i++) {
      const EaselCheckpointTensor *t = easel_checkpoint_tensor (ck, i);
      char shape[256];
      printf ("  %s\t%s\t%s\n", t->name, easel_dtype_name (t->st->dtype), easel_st_shape_str (t->st, shape, sizeof shape));
    }
  }
  return 0;
}
