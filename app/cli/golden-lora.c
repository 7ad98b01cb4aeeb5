/* app/cli/golden-lora.c: golden kind "lora" (refs/lora): a LoRA file merged at each case's scale
 * into the UNet and text encoder of its model, on every model form present (the diffusers folder
 * models/NAME/ and the single file models/NAME.safetensors, with the folder's config.json files as
 * hints). Compares the UNet output on the stored inputs, the text encoder's last hidden state (final
 * LayerNorm) and penultimate hidden state (none), and the merged weights the case stores.
 *
 * The model is the manifest's "model" when it names one, else the LoRA file's name up to "_lora"
 * (models/sd1_tiny_lora_kohya.safetensors -> sd1_tiny). Each case first merges the LoRA at another
 * strength and then at its own, so the re-merge path (no checkpoint reload) is what is checked. */
#include <string.h>

#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/clip.h"
#include "engine/error.h"
#include "engine/lora.h"
#include "engine/patch.h"
#include "engine/unet.h"
#include "golden.h"

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "lora", NULL);
}

typedef struct {
  EaselGolden *g;
  EaselGoldenCase *c;
  const char *refs_file;
  const char *lora_file;
  double atol, rtol;
  float scale;
} Run;

/* An entry of the case (inputs/outputs/intermediates) with its manifest shape, as F32. */
static float *
entry (Run *r, const char *section, const char *name, gint64 *shape, int *n_dims, GError **error)
{
  const EaselJson *sh = easel_json_get (easel_json_get (easel_json_get (r->c->spec, section), name), "shape");
  gsize n = 1;
  *n_dims = (int) easel_json_length (sh);
  if (*n_dims < 1 || *n_dims > 4) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "manifest: no shape for %s", name);
    return NULL;
  }
  for (int d = 0; d < *n_dims; d++) {
    if (!easel_json_int64 (easel_json_at (sh, d), &shape[d]) || shape[d] < 1 || shape[d] > (1 << 24)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "manifest: bad shape for %s", name);
      return NULL;
    }
    n *= shape[d];
  }
  return easel_golden_tensor_f32 (r->g, r->refs_file, name, n, NULL, error);
}

/* The entry of section whose name ends with suffix ("unet_output"), or NULL. */
static const char *
find_entry (Run *r, const char *section, const char *suffix)
{
  const EaselJson *obj = easel_json_get (r->c->spec, section);
  for (gsize i = 0; i < easel_json_length (obj); i++) {
    const char *k = easel_json_key_at (obj, i);
    if (k && g_str_has_suffix (k, suffix))
      return k;
  }
  return NULL;
}

static gboolean
compare (Run *r, const char *form, const char *name, const float *got, gsize n, GError **error)
{
  gint64 shape[4];
  int n_dims;
  g_autofree float *want = entry (r, "outputs", name, shape, &n_dims, error);
  g_autofree char *label = g_strdup_printf ("%s %s", form, name);
  gsize want_n = 1;
  if (want == NULL)
    return FALSE;
  for (int d = 0; d < n_dims; d++)
    want_n *= shape[d];
  if (want_n != n) {
    easel_golden_fail (r->g, "%s: %" G_GSIZE_FORMAT " values, the reference has %" G_GSIZE_FORMAT, label, n, want_n);
    return FALSE;
  }
  return easel_golden_compare (r->g, label, got, want, n, shape, n_dims, r->atol, r->rtol);
}

/* The merged weights the case stores ("<case>/merged/unet.<module>.weight", "te.<module>.weight")
 * against the patched copies the model now uses. */
static gboolean
compare_merged (Run *r, const char *form, EaselLoraStack *stack, EaselUnet *u, EaselClip *te, GError **error)
{
  const EaselJson *obj = easel_json_get (r->c->spec, "intermediates");
  gboolean ok = TRUE;

  for (gsize i = 0; i < easel_json_length (obj); i++) {
    const char *k = easel_json_key_at (obj, i), *m = k ? strstr (k, "/merged/") : NULL;
    GPtrArray *targets = NULL;
    if (m == NULL)
      continue;
    m += strlen ("/merged/");
    if (g_str_has_prefix (m, "unet.")) {
      targets = easel_unet_patch_targets (u);
      m += strlen ("unet.");
    } else if (g_str_has_prefix (m, "te.") && te) {
      targets = easel_clip_patch_targets (te);
      m += strlen ("te.");
    }
    g_autofree char *module = g_str_has_suffix (m, ".weight") ? g_strndup (m, strlen (m) - strlen (".weight")) : NULL;
    const EaselPatchTarget *t = NULL;
    for (guint j = 0; targets && module && j < targets->len && t == NULL; j++)
      if (strcmp (((EaselPatchTarget *) targets->pdata[j])->module, module) == 0)
        t = targets->pdata[j];
    if (t == NULL) {
      easel_golden_fail (r->g, "%s: no weight of the model for %s", form, k);
      ok = FALSE;
      continue;
    }
    gint64 shape[4];
    int n_dims;
    g_autofree float *want = entry (r, "intermediates", k, shape, &n_dims, error);
    if (want == NULL)
      return FALSE;
    /* the weight the network computes with now (the merged copy or the stored weight, plus the
     * run-time adapters' product) */
    gint64 n = t->rows * t->cols;
    g_autofree float *rows = g_new (float, n);
    g_autofree char *label = g_strdup_printf ("%s %s", form, k);
    easel_lora_stack_effective_rows (stack, t, rows);
    ok &= easel_golden_compare (r->g, label, rows, want, n, shape, n_dims, r->atol, r->rtol);
  }
  return ok;
}

static gboolean
run_form (Run *r, const char *form, const char *path, const char *folder, GError **error)
{
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, error);
  g_autoptr(EaselJson) unet_hint = NULL, te_hint = NULL;
  g_autoptr(EaselUnet) u = NULL;
  g_autoptr(EaselClip) te = NULL;
  g_autoptr(EaselLora) lora = NULL;
  g_autoptr(EaselLoraStack) stack = NULL;
  g_autoptr(EaselBackend) backend = NULL;
  g_autoptr(GPtrArray) unmatched = NULL;
  g_autofree char *te_prefix = NULL;
  gboolean ok = TRUE;

  if (ck == NULL || (backend = easel_golden_new_backend (r->g, error)) == NULL)
    return FALSE;
  if (folder) {
    g_autofree char *uh = g_build_filename (folder, "unet", "config.json", NULL);
    g_autofree char *th = g_build_filename (folder, "text_encoder", "config.json", NULL);
    if (g_file_test (uh, G_FILE_TEST_IS_REGULAR) && (unet_hint = easel_json_parse_file (uh, 0, error)) == NULL)
      return FALSE;
    if (g_file_test (th, G_FILE_TEST_IS_REGULAR) && (te_hint = easel_json_parse_file (th, 0, error)) == NULL)
      return FALSE;
  }
  if ((u = easel_unet_new (ck, unet_hint, error)) == NULL || (te_prefix = easel_clip_find_prefix (ck, 0, error)) == NULL
      || (te = easel_clip_new (ck, te_prefix, te_hint, error)) == NULL || (lora = easel_lora_open (r->lora_file, error)) == NULL)
    return FALSE;

  /* merge at another strength first: the case's strength is then a re-merge of the same weights */
  stack = easel_lora_stack_new (u, te, NULL);
  EaselLoraUse use = { lora, r->scale + 0.25f, r->scale + 0.25f };
  if (!easel_lora_stack_apply (stack, &use, 1, &unmatched, error))
    return FALSE;
  if (unmatched->len > 0) {
    easel_golden_fail (r->g, "%s: %u LoRA keys match nothing, first %s", form, unmatched->len,
                       (const char *) unmatched->pdata[0]);
    return FALSE;
  }
  g_clear_pointer (&unmatched, g_ptr_array_unref);
  use.unet_strength = use.te_strength = r->scale;
  if (!easel_lora_stack_apply (stack, &use, 1, &unmatched, error))
    return FALSE;

  /* text encoder on the stored ids */
  const char *ids_name = find_entry (r, "inputs", "input_ids");
  EaselSafetensors *refs = easel_golden_safetensors (r->g, r->refs_file, error);
  const EaselStTensor *ids_t = refs && ids_name ? easel_safetensors_find (refs, ids_name) : NULL;
  if (ids_t == NULL || ids_t->dtype != EASEL_DTYPE_I32 || ids_t->n_dims != 2) {
    if (error && *error == NULL)
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: no I32 (B, L) input_ids", r->refs_file);
    return FALSE;
  }
  gint64 B = ids_t->shape[0], L = ids_t->shape[1];
  g_autofree gint32 *ids = g_new (gint32, B * L);
  memcpy (ids, ids_t->data, B * L * sizeof (gint32));
  const EaselClipConfig *tc = easel_clip_config (te);
  {
    EaselClipRequest req = { .skip = 0, .final_ln = TRUE };
    EaselClipOutputs out;
    g_autoptr(EaselGraph) gr = easel_graph_new ();
    if (!easel_clip_build (te, gr, ids, B, L, &req, &out, error))
      return FALSE;
    EaselTensor *pen = tc->n_layers >= 1 ? out.hidden_states[tc->n_layers - 1] : NULL;
    if (pen)
      easel_graph_mark_output (gr, pen);
    if (!easel_backend_compute (backend, gr, error))
      return FALSE;
    gsize n = B * L * tc->width;
    g_autofree float *last = g_new (float, n), *penv = g_new (float, n);
    const char *want_last = find_entry (r, "outputs", "text_last_hidden_state");
    const char *want_pen = find_entry (r, "outputs", "text_penultimate_hidden_state");
    if (!easel_backend_read (backend, out.hidden, last, error) || (pen && !easel_backend_read (backend, pen, penv, error)))
      return FALSE;
    if (want_last)
      ok &= compare (r, form, want_last, last, n, error);
    if (want_pen && pen)
      ok &= compare (r, form, want_pen, penv, n, error);
  }

  /* UNet on the stored inputs */
  const char *sn = find_entry (r, "inputs", "unet_sample"), *tn = find_entry (r, "inputs", "unet_timestep");
  const char *cn = find_entry (r, "inputs", "unet_encoder_hidden_states"), *on = find_entry (r, "outputs", "unet_output");
  if (sn && tn && cn && on) {
    gint64 ss[4], ts[4], cs[4];
    int snd, tnd, cnd;
    g_autofree float *sample = entry (r, "inputs", sn, ss, &snd, error);
    g_autofree float *timestep = sample ? entry (r, "inputs", tn, ts, &tnd, error) : NULL;
    g_autofree float *context = timestep ? entry (r, "inputs", cn, cs, &cnd, error) : NULL;
    if (context == NULL)
      return FALSE;
    if (snd != 4 || cnd != 3) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: UNet inputs of the wrong rank", r->refs_file);
      return FALSE;
    }
    const EaselUnetConfig *uc = easel_unet_config (u);
    gsize n = ss[0] * uc->out_channels * ss[2] * ss[3];
    g_autofree float *y = g_new (float, n);
    if (!easel_unet_forward (u, backend, sample, ss[0], ss[2], ss[3], timestep, context, cs[1], NULL, 0, NULL, 0, y,
                             error))
      return FALSE;
    ok &= compare (r, form, on, y, n, error);
  }
  ok &= compare_merged (r, form, stack, u, te, error);
  return ok && (error == NULL || *error == NULL);
}

static gboolean
run (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  const EaselJson *manifest = easel_golden_manifest (g, "refs/lora/manifest.json");
  const char *lora_rel = easel_json_get_string (manifest, "lora_file", NULL);
  g_autofree char *refs_file = g_build_filename (c->dir, easel_json_get_string (manifest, "file", ""), NULL);
  Run r = { g, c, refs_file, NULL, 0, 0, 0 };
  double scale;
  int forms = 0;
  gboolean ok = TRUE;

  if (lora_rel == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "refs/lora/manifest.json names no lora_file");
    return FALSE;
  }
  if (!easel_json_double (easel_json_get (easel_json_get (c->spec, "params"), "scale"), &scale)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no params.scale", c->name);
    return FALSE;
  }
  r.scale = (float) scale;
  g_autofree char *lora_file = g_build_filename (c->dir, lora_rel, NULL);
  r.lora_file = lora_file;
  easel_golden_tolerance (c->spec, 1e-4, 0.0, &r.atol, &r.rtol);

  /* the model: the manifest's "model", else the LoRA file's name up to "_lora" */
  g_autoptr(GPtrArray) models = easel_golden_models (g, manifest);
  g_autofree char *folder = NULL, *single = NULL;
  if (models->len > 0) {
    EaselGoldenModel *m = models->pdata[0];
    folder = g_strdup (m->folder);
    single = g_strdup (m->single_file);
  } else {
    g_autofree char *base = g_path_get_basename (lora_rel);
    char *cut = strstr (base, "_lora");
    if (cut == NULL) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "refs/lora: cannot tell the model of %s", lora_rel);
      return FALSE;
    }
    *cut = '\0';
    folder = g_build_filename (easel_golden_dir (g), "models", base, NULL);
    single = g_strconcat (folder, ".safetensors", NULL);
    if (!g_file_test (folder, G_FILE_TEST_IS_DIR))
      g_clear_pointer (&folder, g_free);
    if (!g_file_test (single, G_FILE_TEST_IS_REGULAR))
      g_clear_pointer (&single, g_free);
  }
  if (folder) {
    g_autofree char *w = g_build_filename (folder, "unet", "diffusion_pytorch_model.safetensors", NULL);
    if (g_file_test (w, G_FILE_TEST_IS_REGULAR)) {
      forms++;
      ok &= run_form (&r, "diffusers", folder, folder, error);
      if (error && *error)
        return FALSE;
    } else {
      easel_golden_note (g, "lora: %s has no UNet weights, diffusers form skipped", folder);
    }
  }
  if (single) {
    forms++;
    ok &= run_form (&r, "single file", single, folder, error);
  } else {
    easel_golden_note (g, "lora: no single file of the model, single-file form skipped");
  }
  if (forms == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "lora: no form of the model is present");
    return FALSE;
  }
  return ok && (error == NULL || *error == NULL);
}

const EaselGoldenKind easel_golden_kind_lora = { "lora", collect, run };
