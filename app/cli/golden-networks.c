/* app/cli/golden-networks.c: golden kinds of the networks and pipelines, from refs/<model>/manifest.json:
 * "text-encoder", "unet", "vae", "pipeline" (refs/sd1, refs/sdxl, refs/inpaint) and "lora" (refs/lora).
 * A case's kind follows from its name: text_encoder*, prompt_embeds -> text-encoder; *unet/ -> unet;
 * vae/ -> vae; anything else -> pipeline. */
#include <string.h>

#include "golden.h"

static const char *const model_refs[] = { "sd1", "sdxl", "inpaint" };

typedef enum { NET_TEXT_ENCODER, NET_UNET, NET_VAE, NET_PIPELINE } NetKind;

static NetKind
classify (const char *name)
{
  if (g_str_has_prefix (name, "text_encoder") || strcmp (name, "prompt_embeds") == 0)
    return NET_TEXT_ENCODER;
  if (g_str_has_prefix (name, "unet/") || strstr (name, "_unet/") != NULL)
    return NET_UNET;
  if (g_str_has_prefix (name, "vae/"))
    return NET_VAE;
  return NET_PIPELINE;
}

static void
collect_refs (EaselGolden *g, GPtrArray *cases, const char *ref, gboolean all, NetKind want)
{
  g_autofree char *rel = g_build_filename ("refs", ref, "manifest.json", NULL);
  g_autofree char *dir = g_build_filename (easel_golden_dir (g), "refs", ref, NULL);
  const EaselJson *m = easel_golden_manifest (g, rel);
  const EaselJson *list = easel_json_get (m, "cases");

  for (gsize i = 0; i < easel_json_length (list); i++) {
    const EaselJson *c = easel_json_at (list, i);
    const char *name = easel_json_get_string (c, "name", NULL);
    if (name == NULL || (!all && classify (name) != want))
      continue;
    g_autofree char *full = g_strdup_printf ("%s/%s", ref, name);
    g_ptr_array_add (cases, easel_golden_case_new (full, dir, c));
  }
}

#define MODEL_KIND(var, kname, net)                                     \
  static void                                                           \
  collect_##var (EaselGolden *g, GPtrArray *cases)                      \
  {                                                                     \
    for (guint i = 0; i < G_N_ELEMENTS (model_refs); i++)               \
      collect_refs (g, cases, model_refs[i], FALSE, net);               \
  }                                                                     \
  const EaselGoldenKind easel_golden_kind_##var = { kname, collect_##var, NULL };

MODEL_KIND (text_encoder, "text-encoder", NET_TEXT_ENCODER)
MODEL_KIND (unet, "unet", NET_UNET)
MODEL_KIND (vae, "vae", NET_VAE)
MODEL_KIND (pipeline, "pipeline", NET_PIPELINE)

static void
collect_lora (EaselGolden *g, GPtrArray *cases)
{
  collect_refs (g, cases, "lora", TRUE, NET_PIPELINE);
}

const EaselGoldenKind easel_golden_kind_lora = { "lora", collect_lora, NULL };
