/* app/cli/golden-pipeline.c: golden kind "pipeline": whole diffusers runs in refs/sd1, refs/sdxl and
 * refs/inpaint (every case that is not a single network's), through easel_pipeline_run.
 *
 * Each case's manifest gives the diffusers pipeline's arguments and scheduler class; the run uses
 * the matching diffusers schedule (DDIM = Euler in sigma space, Euler, DPMSolverMultistep = DPM++ 2M)
 * and the recorded tensors as the pipeline's noise inputs: input_latents as the initial noise,
 * noise_drawn_0 as the VAE posterior noise of img2img and inpainting, noise_drawn_1 as img2img's
 * added noise. Compared: latents_after_each_step (DDIM and DPM++ hold them in VP form,
 * x / sqrt (1 + sigma^2); Euler in k-diffusion's), output_latents, and the decoder output mapped to
 * [0, 1] against `image`, with the manifest's latents_rel and image_abs. The base + refiner pair
 * runs as one job with a refiner (the "base" case checks its first part, "refiner" the rest).
 * Every model form present runs: diffusers folder and single file (a form without weights is
 * skipped and said). */
#include <math.h>
#include <string.h>

#include "engine/engine-private.h"
#include "engine/pipeline.h"
#include "golden-pipeline.h"
#include "golden.h"

static gboolean
is_pipeline (const char *name)
{
  return !g_str_has_prefix (name, "text_encoder") && strcmp (name, "prompt_embeds") != 0
         && !g_str_has_prefix (name, "unet/") && strstr (name, "_unet/") == NULL && !g_str_has_prefix (name, "vae/");
}

static void
collect_pipeline (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "sd1", is_pipeline);
  easel_golden_collect_refs (g, cases, "sdxl", is_pipeline);
  easel_golden_collect_refs (g, cases, "inpaint", is_pipeline);
}

typedef struct {
  GArray *latents;     /* floats: every step's latent, in the reference's form */
  gsize n;
  gboolean vp;
} Record;

static void
record_latent (gpointer user_data, guint step, double sigma, const float *x, gsize n)
{
  Record *r = user_data;
  float s = 1.0f / sqrtf (1.0f + (float) (sigma * sigma));
  r->n = n;
  for (gsize i = 0; i < n; i++) {
    float v = r->vp ? x[i] * s : x[i];
    g_array_append_val (r->latents, v);
  }
}

typedef struct {
  EaselGolden *g;
  EaselGoldenCase *c;
  const char *refs;     /* the refs .safetensors */
  const char *prefix;   /* the case's tensors: "<case>/" */
  double lat_rel, img_abs;
} Ctx;

static float *
tensor (Ctx *k, const char *leaf, gsize want, GError **error)
{
  g_autofree char *name = g_strconcat (k->prefix, leaf, NULL);
  return easel_golden_tensor_f32 (k->g, k->refs, name, want, NULL, error);
}

static gboolean
has_tensor (Ctx *k, const char *leaf)
{
  g_autofree char *name = g_strconcat (k->prefix, leaf, NULL);
  EaselSafetensors *st = easel_golden_safetensors (k->g, k->refs, NULL);
  return st && easel_safetensors_find (st, name) != NULL;
}

/* Compares rows [from, from + count) of the recorded latents with the reference tensor leaf. */
static gboolean
compare_latents (Ctx *k, const Record *rec, guint from, guint count, const char *leaf, const char *label,
                 GError **error)
{
  gsize want = count * rec->n;
  if (rec->n == 0 || (from + count) * rec->n > rec->latents->len) {
    easel_golden_fail (k->g, "%s: %u steps recorded, %u wanted", label, (guint) (rec->latents->len / MAX (rec->n, 1)),
                       from + count);
    return FALSE;
  }
  g_autofree float *ref = tensor (k, leaf, want, error);
  if (ref == NULL)
    return FALSE;
  return easel_golden_compare (k->g, label, (const float *) rec->latents->data + from * rec->n, ref, want, NULL, 0,
                               0, k->lat_rel);
}

static gboolean
compare_image (Ctx *k, const EaselPipelineResult *r, const char *label, GError **error)
{
  g_autofree float *ref = tensor (k, "image", r->n_decoded, error);
  if (ref == NULL)
    return FALSE;
  g_autofree float *got = g_new (float, r->n_decoded);
  easel_vae_image_to_unit (r->decoded, got, r->n_decoded);
  return easel_golden_compare (k->g, label, got, ref, r->n_decoded, NULL, 0, k->img_abs, 0);
}

static EaselDiffusersSchedule
schedule_of (const char *cls)
{
  if (g_strcmp0 (cls, "DDIMScheduler") == 0)
    return EASEL_DIFFUSERS_DDIM;
  if (g_strcmp0 (cls, "EulerDiscreteScheduler") == 0)
    return EASEL_DIFFUSERS_EULER;
  if (g_strcmp0 (cls, "DPMSolverMultistepScheduler") == 0)
    return EASEL_DIFFUSERS_DPM;
  return EASEL_DIFFUSERS_NONE;
}

static void
int_pair (const EaselJson *v, int *a, int *b)
{
  gint64 x;
  if (easel_json_length (v) != 2)
    return;
  if (easel_json_int64 (easel_json_at (v, 0), &x))
    *a = (int) x;
  if (easel_json_int64 (easel_json_at (v, 1), &x))
    *b = (int) x;
}

/* The arguments of the pair's base case (the refiner case holds the refiner's only). */
static const EaselJson *
pair_base_args (EaselGolden *g, const char *name)
{
  const EaselJson *list = easel_json_get (easel_golden_manifest (g, "refs/sdxl/manifest.json"), "cases");
  g_autofree char *root = g_strndup (name, strrchr (name, '/') + 1 - name);
  g_autofree char *want = g_strconcat (root, "base", NULL);
  for (gsize i = 0; i < easel_json_length (list); i++)
    if (g_strcmp0 (easel_json_get_string (easel_json_at (list, i), "name", NULL), want) == 0)
      return easel_json_get (easel_json_get (easel_json_at (list, i), "params"), "args");
  return NULL;
}

/* One case with one model form. aux: the model giving the VAE and the text encoders where another
 * (inpainting); refiner: for the base + refiner pair. */
static gboolean
run_form (Ctx *k, EaselEngine *e, EaselModel *model, EaselModel *aux, EaselModel *refiner, const char *form,
          EaselGoldenPipelineHook hook, gpointer hook_data, GError **error)
{
  const EaselJson *params = easel_json_get (k->c->spec, "params");
  const EaselJson *args = easel_json_get (params, "args");
  const char *name = easel_json_get_string (k->c->spec, "name", "");
  gboolean is_refiner = g_str_has_suffix (name, "/refiner"), is_base = g_str_has_suffix (name, "/base");
  const EaselJson *base_args = is_refiner ? pair_base_args (k->g, name) : args;
  EaselDiffusersSchedule sched = schedule_of (easel_json_get_string (params, "scheduler_class", NULL));
  if (sched == EASEL_DIFFUSERS_NONE || base_args == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "scheduler class %s, or no base case",
                 easel_json_get_string (params, "scheduler_class", "?"));
    return FALSE;
  }
  const EaselJson *neg = easel_json_get (base_args, "negative_prompt");
  const gboolean img2img = has_tensor (k, "init_image_01") || has_tensor (k, "image_01");
  const gboolean inpaint = has_tensor (k, "mask");
  gint64 H = easel_json_get_int (base_args, "height", 0), W = easel_json_get_int (base_args, "width", 0);
  g_autofree float *init01 = NULL, *mask01 = NULL, *noise = NULL, *enc_noise = NULL;
  g_autoptr(EaselImage) init_im = NULL, mask_im = NULL;
  if (img2img) {
    const char *leaf = has_tensor (k, "init_image_01") ? "init_image_01" : "image_01";
    g_autofree char *nm = g_strconcat (k->prefix, leaf, NULL);
    EaselSafetensors *st = easel_golden_safetensors (k->g, k->refs, error);
    const EaselStTensor *t = st ? easel_safetensors_find (st, nm) : NULL;
    if (t == NULL || t->n_dims != 4 || t->shape[0] != 1 || t->shape[1] != 3) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: no [1, 3, H, W] tensor %s", k->refs, nm);
      return FALSE;
    }
    H = t->shape[2], W = t->shape[3];
    if ((init01 = tensor (k, leaf, 3 * H * W, error)) == NULL
        || (init_im = easel_image_new ((int) W, (int) H, 3, error)) == NULL)
      return FALSE;
    if (inpaint && ((mask01 = tensor (k, "mask", H * W, error)) == NULL
                    || (mask_im = easel_image_new ((int) W, (int) H, 3, error)) == NULL))
      return FALSE;
    if ((enc_noise = tensor (k, "noise_drawn_0", 0, error)) == NULL)
      return FALSE;
  }
  if (is_refiner || is_base) {
    /* the pair's input_latents sit beside base/ and refiner/ */
    Ctx kp = *k;
    g_autofree char *root = g_strndup (name, strrchr (name, '/') + 1 - name);
    kp.prefix = root;
    noise = tensor (&kp, "input_latents", 0, error);
  } else {
    noise = tensor (k, has_tensor (k, "input_latents") ? "input_latents" : "noise_drawn_1", 0, error);
  }
  if (noise == NULL)
    return FALSE;

  EaselJobParams job = {
    .prompt = easel_json_get_string (base_args, "prompt", ""),
    .negative_prompt = easel_json_type (neg) == EASEL_JSON_STRING ? easel_json_string (neg, NULL) : NULL,
    .sampler = sched == EASEL_DIFFUSERS_DPM ? "dpmpp_2m" : "euler",
    .scheduler = "normal",
    .steps = (int) easel_json_get_int (base_args, "num_inference_steps", 0),
    .cfg = easel_json_get_double (base_args, "guidance_scale", 7.5),
    .width = (int) W, .height = (int) H, .batch_size = 1, .batch_count = 1, .clip_skip = 1,
    .init_image = init_im, .strength = easel_json_get_double (args, "strength", 1.0), .mask = mask_im,
    .vae = aux, .refiner = refiner,
    .refiner_switch = easel_json_get_double (base_args, "denoising_end", 0),
  };
  EaselPipelineRequest req = {
    .job = &job, .text_model = aux, .diffusers = sched, .initial_noise = noise, .encode_noise = enc_noise,
    .init_image01 = init01, .mask01 = mask01, .raw_output = TRUE,
    .aesthetic_score = easel_json_get_double (args, "aesthetic_score", 0),
    .negative_aesthetic_score = easel_json_get_double (args, "negative_aesthetic_score", 0),
  };
  int_pair (easel_json_get (base_args, "original_size"), &req.original_height, &req.original_width);
  int_pair (easel_json_get (base_args, "crops_coords_top_left"), &req.crop_top, &req.crop_left);
  Record rec = { g_array_new (FALSE, FALSE, sizeof (float)), 0, sched != EASEL_DIFFUSERS_EULER };
  req.on_latent = record_latent;
  req.on_latent_data = &rec;
  if (hook)
    hook (&job, &req, hook_data);
  EaselPipelineResult r;
  gboolean ok = easel_pipeline_run (e, model, &req, NULL, NULL, NULL, &r, error);
  g_autofree char *label = g_strdup_printf ("%s latents", form);
  g_autofree char *ilabel = g_strdup_printf ("%s image", form);
  if (ok) {
    guint n_steps = (guint) easel_json_length (easel_json_get (params, "unet_timesteps_called"));
    guint total = rec.n ? (guint) (rec.latents->len / rec.n) : 0;
    if (is_refiner) {
      /* the refiner's steps are the last ones of the job */
      ok = compare_latents (k, &rec, total >= n_steps ? total - n_steps : 0, n_steps, "latents_after_each_step",
                            label, error)
           && compare_image (k, &r, ilabel, error);
    } else {
      ok = compare_latents (k, &rec, 0, n_steps, "latents_after_each_step", label, error);
      /* the base's output is the latent after its last step (where the refiner takes over) */
      if (ok && has_tensor (k, "output_latents"))
        ok = compare_latents (k, &rec, n_steps - 1, 1, "output_latents", "output_latents", error);
      if (ok && has_tensor (k, "image"))
        ok = compare_image (k, &r, ilabel, error);
    }
  }
  g_array_unref (rec.latents);
  easel_pipeline_result_clear (&r);
  return ok;
}

/* A model form, usable when its checkpoint holds a UNet; NULL without error when it does not. */
static EaselModel *
try_form (EaselEngine *e, const char *path, const char *const *dirs, const char *vocab, GError **error)
{
  if (path == NULL)
    return NULL;
  EaselModelOptions o = { .config_dirs = dirs, .vocab = vocab };
  EaselModel *m = easel_model_load_with_options (e, path, &o, error);
  if (m && easel_model_detection (m)->unet_naming == EASEL_NAMING_NONE)
    g_clear_pointer (&m, easel_model_unref);
  return m;
}

static gboolean
run_pipeline (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  g_autofree char *ref = g_path_get_basename (c->dir);
  g_autofree char *rel = g_build_filename ("refs", ref, "manifest.json", NULL);
  const EaselJson *manifest = easel_golden_manifest (g, rel);
  g_autofree char *refs = g_build_filename (c->dir, easel_json_get_string (manifest, "file", ""), NULL);
  const char *name = easel_json_get_string (c->spec, "name", "");
  g_autofree char *prefix = g_strconcat (name, "/", NULL);
  const EaselJson *tol = easel_json_get (c->spec, "tolerance");
  Ctx k = { g, c, refs, prefix, easel_json_get_double (tol, "latents_rel", 1e-3),
            easel_json_get_double (tol, "image_abs", 3e-3) };
  g_autoptr(GPtrArray) models = easel_golden_models (g, manifest);
  g_autofree char *vocab = easel_golden_vocab (g) ? g_strdup (easel_golden_vocab (g))
                                                  : g_build_filename (easel_golden_dir (g), "tokenizer", NULL);
  EaselEngineOptions eo = { .backend = easel_golden_backend (g) };
  g_autoptr(EaselEngine) e = easel_engine_new (&eo, error);
  if (e == NULL)
    return FALSE;
  if (models->len == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no model named", rel);
    return FALSE;
  }
  EaselGoldenModel *m0 = models->pdata[0];
  EaselGoldenModel *m1 = models->len > 1 ? models->pdata[1] : NULL;
  gboolean pair = g_str_has_suffix (name, "/base") || g_str_has_suffix (name, "/refiner");
  gboolean aux = m1 && strcmp (ref, "inpaint") == 0;   /* UNet of the first, the rest of the second */
  if (!aux && !pair)
    m1 = NULL;
  int ran = 0;
  for (int f = 0; f < 2; f++) {
    const char *form = f == 0 ? "diffusers" : "single-file";
    const char *p0 = f == 0 ? m0->folder : m0->single_file;
    g_autofree char *d0 = g_build_filename (easel_golden_dir (g), "models", m0->name, NULL);
    g_autofree char *d1 = m1 ? g_build_filename (easel_golden_dir (g), "models", m1->name, NULL) : NULL;
    const char *dirs0[] = { d0, d1, NULL }, *dirs1[] = { d1, d0, NULL };
    g_autoptr(GError) local = NULL;
    g_autoptr(EaselModel) model = try_form (e, p0, dirs0, vocab, &local);
    if (model == NULL) {
      if (local) {
        g_propagate_error (error, g_steal_pointer (&local));
        return FALSE;
      }
      easel_golden_note (g, "%s: no %s form with weights, skipped", m0->name, form);
      continue;
    }
    g_autoptr(EaselModel) other = NULL;
    if (m1) {
      /* the refiner, or the inpainting case's VAE + text encoders: this form where it has weights */
      const char *p1 = f == 0 && m1->folder ? m1->folder : m1->single_file;
      other = try_form (e, p1, dirs1, vocab, &local);
      if (other == NULL && local == NULL && p1 != m1->single_file)
        other = try_form (e, m1->single_file, dirs1, vocab, &local);
      if (local) {
        g_propagate_error (error, g_steal_pointer (&local));
        return FALSE;
      }
      if (other == NULL) {
        easel_golden_note (g, "%s: no form with weights, %s skipped", m1->name, name);
        continue;
      }
    }
    if (!run_form (&k, e, model, aux ? other : NULL, pair ? other : NULL, form, NULL, NULL, error))
      return FALSE;
    ran++;
  }
  if (ran == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no model form present", m0->name);
    return FALSE;
  }
  return TRUE;
}

const EaselGoldenKind easel_golden_kind_pipeline = { "pipeline", collect_pipeline, run_pipeline };

gboolean
easel_golden_pipeline_check (EaselGolden *g, EaselGoldenCase *c, const char *refs, EaselEngine *e, EaselModel *model,
                             const char *form, EaselGoldenPipelineHook hook, gpointer hook_data, GError **error)
{
  const char *name = easel_json_get_string (c->spec, "name", "");
  g_autofree char *prefix = g_strconcat (name, "/", NULL);
  const EaselJson *tol = easel_json_get (c->spec, "tolerance");
  Ctx k = { g, c, refs, prefix, easel_json_get_double (tol, "latents_rel", 1e-3),
            easel_json_get_double (tol, "image_abs", 3e-3) };
  return run_form (&k, e, model, NULL, NULL, form, hook, hook_data, error);
}
