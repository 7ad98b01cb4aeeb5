/* app/cli/cli-adapters.c: parsing the adapter flag groups of `easel-cli generate` into
 * EaselJobParams' ControlNet, T2I-Adapter and IP-Adapter units (cli-adapters.h). */
#include "cli-adapters.h"

#include <stdlib.h>
#include <string.h>

#define MAX_UNITS 16
#define MAX_IP_IMAGES 16

struct _EaselCliAdapters {
  EaselControlNetUnit cn[MAX_UNITS];
  char *cn_image[MAX_UNITS];
  int n_cn;
  EaselT2IAdapterUnit t2i[MAX_UNITS];
  char *t2i_image[MAX_UNITS];
  int n_t2i;
  EaselIpAdapterUnit ip;
  char *ip_image[MAX_IP_IMAGES];
  int n_ip_images;
  GPtrArray *strings;   /* every char* above */
  GPtrArray *images;    /* EaselImage* loaded by apply */
  const EaselImage *ip_images[MAX_IP_IMAGES];
};

EaselCliAdapters *
easel_cli_adapters_new (void)
{
  EaselCliAdapters *a = g_new0 (EaselCliAdapters, 1);
  a->strings = g_ptr_array_new_with_free_func (g_free);
  a->images = g_ptr_array_new_with_free_func ((GDestroyNotify) easel_image_free);
  return a;
}

void
easel_cli_adapters_free (EaselCliAdapters *a)
{
  if (a == NULL)
    return;
  g_ptr_array_unref (a->strings);
  g_ptr_array_unref (a->images);
  g_free (a);
}

static char *
keep (EaselCliAdapters *a, const char *s)
{
  char *c = g_strdup (s);
  g_ptr_array_add (a->strings, c);
  return c;
}

static gboolean
number (const char *flag, const char *value, double lo, double hi, double *out, GError **error)
{
  char *end = NULL;
  double v = g_ascii_strtod (value, &end);
  if (end == value || *end != '\0' || !(v >= lo && v <= hi)) {
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s '%s': a number from %g to %g", flag, value, lo, hi);
    return FALSE;
  }
  *out = v;
  return TRUE;
}

static gboolean
on_option (const char *name, const char *value, gpointer data, GError **error)
{
  EaselCliAdapters *a = data;
  EaselControlNetUnit *cn = a->n_cn ? &a->cn[a->n_cn - 1] : NULL;
  EaselT2IAdapterUnit *t2i = a->n_t2i ? &a->t2i[a->n_t2i - 1] : NULL;

  if (strcmp (name, "--controlnet") == 0) {
    if (a->n_cn == MAX_UNITS) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "at most %d ControlNets", MAX_UNITS);
      return FALSE;
    }
    a->cn[a->n_cn] = (EaselControlNetUnit) EASEL_CONTROLNET_UNIT_INIT;
    a->cn[a->n_cn++].model = keep (a, value);
    return TRUE;
  }
  if (strcmp (name, "--t2i-adapter") == 0) {
    if (a->n_t2i == MAX_UNITS) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "at most %d T2I-Adapters", MAX_UNITS);
      return FALSE;
    }
    a->t2i[a->n_t2i] = (EaselT2IAdapterUnit) EASEL_T2I_ADAPTER_UNIT_INIT;
    a->t2i[a->n_t2i++].model = keep (a, value);
    return TRUE;
  }
  if (g_str_has_prefix (name, "--control") || strcmp (name, "--canny") == 0) {
    if (cn == NULL) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: give --controlnet FILE before it", name);
      return FALSE;
    }
    if (strcmp (name, "--control-image") == 0) {
      a->cn_image[a->n_cn - 1] = keep (a, value);
      return TRUE;
    }
    if (strcmp (name, "--control-strength") == 0)
      return number (name, value, 0, 10, &cn->strength, error);
    if (strcmp (name, "--control-start") == 0)
      return number (name, value, 0, 1, &cn->start, error);
    if (strcmp (name, "--control-end") == 0)
      return number (name, value, 0, 1, &cn->end, error);
    /* --canny LOW:HIGH */
    g_auto(GStrv) parts = g_strsplit (value, ":", -1);
    cn->canny = TRUE;
    if (g_strv_length (parts) != 2 || !number (name, parts[0], 0, 10000, &cn->canny_low, error)
        || !number (name, parts[1], 0, 10000, &cn->canny_high, error)) {
      g_clear_error (error);
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--canny '%s': LOW:HIGH thresholds (100:200)", value);
      return FALSE;
    }
    return TRUE;
  }
  if (strcmp (name, "--adapter-image") == 0 || strcmp (name, "--adapter-strength") == 0) {
    if (t2i == NULL) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: give --t2i-adapter FILE before it", name);
      return FALSE;
    }
    if (strcmp (name, "--adapter-image") == 0) {
      a->t2i_image[a->n_t2i - 1] = keep (a, value);
      return TRUE;
    }
    return number (name, value, 0, 10, &t2i->strength, error);
  }
  if (strcmp (name, "--ip-adapter") == 0) {
    a->ip = (EaselIpAdapterUnit) EASEL_IP_ADAPTER_UNIT_INIT;
    a->ip.model = keep (a, value);
    return TRUE;
  }
  if (strcmp (name, "--ip-image") == 0) {
    if (a->n_ip_images == MAX_IP_IMAGES) {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "at most %d IP-Adapter images", MAX_IP_IMAGES);
      return FALSE;
    }
    a->ip_image[a->n_ip_images++] = keep (a, value);
    return TRUE;
  }
  if (strcmp (name, "--ip-scale") == 0)
    return number (name, value, 0, 10, &a->ip.scale, error);
  if (strcmp (name, "--image-encoder") == 0) {
    a->ip.image_encoder = keep (a, value);
    return TRUE;
  }
  return FALSE;
}

GOptionGroup *
easel_cli_adapters_group (EaselCliAdapters *a)
{
  static const GOptionEntry entries[] = {
    { "controlnet", 0, 0, G_OPTION_ARG_CALLBACK, on_option, "a ControlNet (starts a group; repeatable)", "FILE" },
    { "control-image", 0, 0, G_OPTION_ARG_CALLBACK, on_option, "its hint image (or photo with --canny)", "PNG" },
    { "control-strength", 0, 0, G_OPTION_ARG_CALLBACK, on_option, "its conditioning scale (1.0)", "X" },
    { "control-start", 0, 0, G_OPTION_ARG_CALLBACK, on_option, "fraction of the steps before it acts (0.0)", "X" },
    { "control-end", 0, 0, G_OPTION_ARG_CALLBACK, on_option, "fraction of the steps after which it stops (1.0)", "X" },
    { "canny", 0, 0, G_OPTION_ARG_CALLBACK, on_option, "turn the control image into Canny edges", "LOW:HIGH" },
    { "t2i-adapter", 0, 0, G_OPTION_ARG_CALLBACK, on_option, "a T2I-Adapter (starts a group; repeatable)", "FILE" },
    { "adapter-image", 0, 0, G_OPTION_ARG_CALLBACK, on_option, "its image", "PNG" },
    { "adapter-strength", 0, 0, G_OPTION_ARG_CALLBACK, on_option, "its scale (1.0)", "X" },
    { "ip-adapter", 0, 0, G_OPTION_ARG_CALLBACK, on_option, "an IP-Adapter file (h94 plain or Plus)", "FILE" },
    { "ip-image", 0, 0, G_OPTION_ARG_CALLBACK, on_option, "a reference image (repeatable)", "PNG" },
    { "ip-scale", 0, 0, G_OPTION_ARG_CALLBACK, on_option, "weight of the image prompt (1.0)", "X" },
    { "image-encoder", 0, 0, G_OPTION_ARG_CALLBACK, on_option, "CLIP image encoder folder (default: image_encoder/ "
      "beside or above the IP-Adapter file)", "DIR" },
    { NULL },
  };
  GOptionGroup *g = g_option_group_new ("adapters", "ControlNet, T2I-Adapter and IP-Adapter options:",
                                        "Show the adapter options", a, NULL);
  g_option_group_add_entries (g, entries);
  return g;
}

static EaselImage *
load (EaselCliAdapters *a, const char *flag, const char *path, GError **error)
{
  g_autoptr(GError) local = NULL;
  EaselImage *im = easel_png_load (path, NULL, &local);
  if (im == NULL) {
    g_set_error (error, EASEL_ERROR, local->code, "%s: %s", flag, local->message);
    return NULL;
  }
  g_ptr_array_add (a->images, im);
  return im;
}

gboolean
easel_cli_adapters_apply (EaselCliAdapters *a, EaselJobParams *job, GError **error)
{
  for (int i = 0; i < a->n_cn; i++) {
    if (a->cn_image[i] == NULL) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "--controlnet %s: no --control-image", a->cn[i].model);
      return FALSE;
    }
    if ((a->cn[i].image = load (a, "--control-image", a->cn_image[i], error)) == NULL)
      return FALSE;
  }
  for (int i = 0; i < a->n_t2i; i++) {
    if (a->t2i_image[i] == NULL) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "--t2i-adapter %s: no --adapter-image", a->t2i[i].model);
      return FALSE;
    }
    if ((a->t2i[i].image = load (a, "--adapter-image", a->t2i_image[i], error)) == NULL)
      return FALSE;
  }
  if (a->ip.model == NULL && (a->n_ip_images || a->ip.image_encoder)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "--ip-image and --image-encoder need --ip-adapter FILE");
    return FALSE;
  }
  if (a->ip.model) {
    if (a->n_ip_images == 0) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "--ip-adapter %s: no --ip-image", a->ip.model);
      return FALSE;
    }
    for (int i = 0; i < a->n_ip_images; i++)
      if ((a->ip_images[i] = load (a, "--ip-image", a->ip_image[i], error)) == NULL)
        return FALSE;
    a->ip.images = a->ip_images;
    a->ip.n_images = a->n_ip_images;
    job->ip_adapter = &a->ip;
  }
  job->controlnets = a->n_cn ? a->cn : NULL;
  job->n_controlnets = a->n_cn;
  job->t2i_adapters = a->n_t2i ? a->t2i : NULL;
  job->n_t2i_adapters = a->n_t2i;
  return TRUE;
}
