/* app/cli/golden-vae.c: golden kind "vae": refs/sd1 and refs/sdxl cases named vae/... (testdata
 * README section 6).
 *
 * decode_<h>x<w>: z (already divided by the scaling factor) -> image, through post_quant_conv and the
 * decoder. encode_<H>x<W>: image -> mean, logvar (clamped), std, sample = mean + std · sample_noise,
 * sample_scaled = sample · scaling factor. Each case runs on every model form the refs manifest names
 * and the data folder has (diffusers folder models/NAME/ with VAE weights, single file
 * models/NAME.safetensors; for a single file the sibling folder's vae/config.json is the hint, as a
 * real user's file gets the family's conventions). A form without VAE weights is skipped with a note;
 * a case with no form at all fails. Every output of the manifest entry is compared with its tolerance
 * (default 3e-4 absolute). */
#include "golden.h"

#include <string.h>

#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/vae.h"

static gboolean
accept (const char *name)
{
  return g_str_has_prefix (name, "vae/");
}

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "sd1", accept);
  easel_golden_collect_refs (g, cases, "sdxl", accept);
}

/* The name of a spec's input/output (an object keyed by tensor name) that ends in "/<leaf>"; NULL if none. */
static const char *
find_tensor (const EaselJson *obj, const char *leaf)
{
  g_autofree char *suffix = g_strconcat ("/", leaf, NULL);
  for (gsize i = 0; i < easel_json_length (obj); i++) {
    const char *k = easel_json_key_at (obj, i);
    if (k && g_str_has_suffix (k, suffix))
      return k;
  }
  return NULL;
}

typedef struct {
  EaselGolden *g;
  const char *refs;          /* the refs .safetensors */
  const EaselJson *spec;
  double atol, rtol;
} Ctx;

static gboolean
compare_output (Ctx *x, const char *form, const char *leaf, const float *got, gsize n, const gint64 *shape,
                GError **error)
{
  const char *name = find_tensor (easel_json_get (x->spec, "outputs"), leaf);
  if (name == NULL)
    return TRUE;   /* the manifest does not ask for it */
  g_autofree float *want = easel_golden_tensor_f32 (x->g, x->refs, name, n, NULL, error);
  if (want == NULL)
    return FALSE;
  g_autofree char *label = g_strdup_printf ("%s %s", form, leaf);
  return easel_golden_compare (x->g, label, got, want, n, shape, 4, x->atol, x->rtol);
}

/* The manifest input "<case>/<leaf>" of the refs file: 4-d with `channels` channels. */
static const EaselStTensor *
input_tensor (Ctx *x, const char *leaf, gint64 channels, GError **error)
{
  const char *name = find_tensor (easel_json_get (x->spec, "inputs"), leaf);
  EaselSafetensors *st = name ? easel_golden_safetensors (x->g, x->refs, error) : NULL;
  const EaselStTensor *t = st ? easel_safetensors_find (st, name) : NULL;
  if (name == NULL)
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "manifest entry has no input %s", leaf);
  else if (st && (t == NULL || t->n_dims != 4 || t->shape[1] != channels))
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_MISMATCH, "%s: '%s' is not a 4-d tensor of %" G_GINT64_FORMAT " channels",
                 x->refs, name, channels);
  else
    return t;
  return NULL;
}

static gboolean
run_decode (Ctx *x, EaselVae *vae, EaselBackend *be, const char *form, GError **error)
{
  const EaselStTensor *zt = input_tensor (x, "z", easel_vae_get_config (vae)->latent_channels, error);
  if (zt == NULL)
    return FALSE;
  g_autofree float *z = easel_st_tensor_to_f32 (zt);
  const gint64 f = easel_vae_factor (vae);
  const gint64 shape[4] = { zt->shape[0], easel_vae_get_config (vae)->out_channels, zt->shape[2] * f, zt->shape[3] * f };
  const gsize n = (gsize) (shape[0] * shape[1] * shape[2] * shape[3]);
  g_autofree float *image = g_new (float, n);
  if (!easel_vae_decode (vae, be, z, zt->shape[0], zt->shape[2], zt->shape[3], image, error))
    return FALSE;
  return compare_output (x, form, "image", image, n, shape, error);
}

static gboolean
run_encode (Ctx *x, EaselVae *vae, EaselBackend *be, const char *form, GError **error)
{
  const EaselVaeConfig *cfg = easel_vae_get_config (vae);
  const char *nname = find_tensor (easel_json_get (x->spec, "inputs"), "sample_noise");
  const EaselStTensor *it = input_tensor (x, "image", cfg->in_channels, error);
  if (it == NULL)
    return FALSE;
  const gint64 shape[4] = { it->shape[0], cfg->latent_channels, easel_vae_latent_side (vae, it->shape[2]),
                            easel_vae_latent_side (vae, it->shape[3]) };
  const gsize n = (gsize) (shape[0] * shape[1] * shape[2] * shape[3]);
  g_autofree float *image = easel_st_tensor_to_f32 (it);
  g_autofree float *mean = g_new (float, n), *logvar = g_new (float, n), *std = g_new (float, n);
  g_autofree float *sample = g_new (float, n), *scaled = g_new (float, n), *noise = NULL;

  if (nname && (noise = easel_golden_tensor_f32 (x->g, x->refs, nname, n, NULL, error)) == NULL)
    return FALSE;
  if (!easel_vae_encode (vae, be, image, it->shape[0], it->shape[2], it->shape[3], mean, logvar, error))
    return FALSE;
  easel_vae_posterior (mean, logvar, noise, n, std, sample);
  easel_vae_z_to_latent (vae, sample, scaled, n);
  const struct { const char *leaf; const float *got; } outs[] = {
    { "mean", mean }, { "logvar", logvar }, { "std", std }, { "sample", sample }, { "sample_scaled", scaled },
  };
  gboolean ok = TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (outs); i++) {
    if (noise == NULL && i >= 3)
      break;   /* sample and sample_scaled need the noise */
    if (!compare_output (x, form, outs[i].leaf, outs[i].got, n, shape, error)) {
      ok = FALSE;
      if (error && *error)
        return FALSE;
    }
  }
  return ok;
}

/* One model form: FALSE on failure; *ran FALSE when the form has no VAE (skipped with a note). */
static gboolean
run_form (Ctx *x, EaselBackend *be, const char *path, const char *hint_path, const char *form, gboolean decode,
          gboolean *ran, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(EaselJson) hint = NULL;
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, error);

  *ran = FALSE;
  if (ck == NULL)
    return FALSE;
  if (hint_path && g_file_test (hint_path, G_FILE_TEST_IS_REGULAR)
      && (hint = easel_json_parse_file (hint_path, 1 << 20, error)) == NULL)
    return FALSE;
  g_autoptr(EaselVae) vae = easel_vae_new (ck, hint, &local);
  if (vae == NULL && g_error_matches (local, EASEL_ERROR, EASEL_ERROR_NOT_FOUND)) {
    easel_golden_note (x->g, "vae: %s has no VAE weights: skipped", form);
    return TRUE;
  }
  if (vae == NULL) {
    g_propagate_error (error, g_steal_pointer (&local));
    return FALSE;
  }
  *ran = TRUE;
  return decode ? run_decode (x, vae, be, form, error) : run_encode (x, vae, be, form, error);
}

static gboolean
run (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  g_autofree char *ref = g_strndup (c->name, strcspn (c->name, "/"));
  g_autofree char *rel = g_build_filename ("refs", ref, "manifest.json", NULL);
  const EaselJson *manifest = easel_golden_manifest (g, rel);
  const char *file = easel_json_get_string (manifest, "file", NULL);
  const char *case_name = easel_json_get_string (c->spec, "name", "");
  g_autoptr(GPtrArray) models = NULL;
  g_autoptr(EaselBackend) be = NULL;
  gboolean decode = g_str_has_prefix (case_name, "vae/decode_"), ok = TRUE;
  int n_ran = 0;

  if (file == NULL || strchr (file, '/')) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no refs file in the manifest", rel);
    return FALSE;
  }
  if (!decode && !g_str_has_prefix (case_name, "vae/encode_")) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "unknown vae case '%s'", case_name);
    return FALSE;
  }
  g_autofree char *refs = g_build_filename (c->dir, file, NULL);
  Ctx x = { g, refs, c->spec, 0, 0 };
  easel_golden_tolerance (c->spec, 3e-4, 0.0, &x.atol, &x.rtol);
  models = easel_golden_models (g, manifest);
  if ((be = easel_golden_new_backend (g, error)) == NULL)
    return FALSE;

  for (guint i = 0; ok && i < models->len; i++) {
    const EaselGoldenModel *m = models->pdata[i];
    g_autofree char *folder_hint = m->folder ? g_build_filename (m->folder, "vae", "config.json", NULL) : NULL;
    g_autofree char *sibling_hint = g_build_filename (easel_golden_dir (g), "models", m->name, "vae", "config.json", NULL);
    gboolean ran;
    if (m->folder) {
      g_autofree char *form = g_strdup_printf ("%s/", m->name);
      ok = run_form (&x, be, m->folder, folder_hint, form, decode, &ran, error);
      n_ran += ran;
    }
    if (ok && m->single_file) {
      g_autofree char *form = g_strdup_printf ("%s.safetensors", m->name);
      ok = run_form (&x, be, m->single_file, sibling_hint, form, decode, &ran, error);
      n_ran += ran;
    }
  }
  if (ok && n_ran == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "no model form with VAE weights for %s", rel);
    return FALSE;
  }
  if (ok && easel_golden_verbose (g))
    g_print ("vae %s: %d model forms\n", c->name, n_ran);
  return ok;
}

const EaselGoldenKind easel_golden_kind_vae = { "vae", collect, run };
