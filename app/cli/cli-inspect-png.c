/* app/cli/cli-inspect-png.c: `easel-cli inspect FILE.png`: size, mode and bit depth as the file
 * stores them, the A1111 "parameters" chunk (raw text and parsed fields) and the keys of the
 * other text chunks. A file that does not decode is one line on stderr and exit status 1. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine/image.h"

static const char *
text_kind_name (EaselPngTextKind kind)
{
  switch (kind) {
  case EASEL_PNG_TEXT_TEXT: return "tEXt";
  case EASEL_PNG_TEXT_ZTXT: return "zTXt";
  case EASEL_PNG_TEXT_ITXT: return "iTXt";
  default:                  return "?";
  }
}

/* "  label: value", continuation lines of a multi-line value indented under it. */
static void
print_field (const char *label, const char *value)
{
  g_auto(GStrv) lines = g_strsplit (value, "\n", -1);

  printf ("  %s: %s\n", label, lines[0]);
  for (guint i = 1; lines[i]; i++)
    printf ("  %*s  %s\n", (int) strlen (label), "", lines[i]);
}

static void
print_number (const char *label, double v)
{
  g_autofree char *s = easel_format_number (v);
  print_field (label, s);
}

static void
print_parameters (const EaselPngText *t)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselParameters) p = NULL;
  g_auto(GStrv) lines = g_strsplit (t->text, "\n", -1);

  printf ("parameters: %s chunk, %" G_GSIZE_FORMAT " bytes%s\n", text_kind_name (t->kind),
          t->file_bytes, t->replaced ? " (invalid UTF-8 replaced with U+FFFD)" : "");
  for (guint i = 0; lines[i]; i++)
    printf ("  | %s\n", lines[i]);

  p = easel_parameters_parse (t->text, -1, &error);
  if (p == NULL) {
    printf ("parsed: %s\n", error->message);
    return;
  }
  printf ("parsed:\n");
  print_field ("prompt", p->prompt);
  if (*p->negative)
    print_field ("negative prompt", p->negative);
  if (p->steps >= 0)
    printf ("  steps: %d\n", p->steps);
  if (p->sampler)
    print_field ("sampler", p->sampler);
  if (p->schedule_type)
    print_field ("schedule type", p->schedule_type);
  if (!isnan (p->cfg_scale))
    print_number ("cfg scale", p->cfg_scale);
  if (p->has_seed)
    printf ("  seed: %" G_GINT64_FORMAT "\n", p->seed);
  if (p->width > 0)
    printf ("  size: %dx%d\n", p->width, p->height);
  if (p->model_hash)
    print_field ("model hash", p->model_hash);
  if (p->model)
    print_field ("model", p->model);
  if (!isnan (p->denoising_strength))
    print_number ("denoising strength", p->denoising_strength);
  if (p->clip_skip > 1)
    printf ("  clip skip: %d\n", p->clip_skip);
  for (guint i = 0; i < p->extras->len; i++) {
    const EaselParameterExtra *e = g_ptr_array_index (p->extras, i);
    g_autofree char *label = g_strdup_printf ("%s (other)", e->key);
    print_field (label, e->value);
  }
}

int
easel_cli_inspect_png (const char *path, gboolean list_tensors)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselPngInfo) info = NULL;
  g_autoptr(EaselImage) image = easel_png_load (path, &info, &error);
  const EaselPngText *params;
  guint n_other = 0;

  if (image == NULL) {
    easel_cli_error ("%s", error->message);
    return 1;
  }
  printf ("file: %s\n", path);
  printf ("format: PNG\n");
  printf ("size: %dx%d\n", info->width, info->height);
  printf ("mode: %s%s\n", info->mode, info->has_trns ? " with tRNS transparency" : "");
  printf ("bit depth: %d\n", info->bit_depth);
  printf ("interlaced: %s\n", info->interlaced ? "yes (Adam7)" : "no");
  printf ("decoded as: %s, 8-bit\n", image->channels == 4 ? "RGBA" : "RGB");

  params = easel_png_info_find_text (info, EASEL_PARAMETERS_KEY);
  if (params)
    print_parameters (params);
  else
    printf ("parameters: none\n");

  for (guint i = 0; i < info->texts->len; i++) {
    const EaselPngText *t = g_ptr_array_index (info->texts, i);
    if (t == params)
      continue;
    if (n_other++ == 0)
      printf ("other text chunks:\n");
    /* ComfyUI saves its graph as 'prompt' (API form) and 'workflow' (UI form), both JSON */
    printf ("  %s: %s chunk, %" G_GSIZE_FORMAT " bytes%s%s\n", t->key, text_kind_name (t->kind),
            t->file_bytes,
            g_str_equal (t->key, "prompt") || g_str_equal (t->key, "workflow")
              ? " (ComfyUI graph JSON)" : "",
            t->replaced ? " (invalid UTF-8 replaced with U+FFFD)" : "");
  }
  return 0;
}
