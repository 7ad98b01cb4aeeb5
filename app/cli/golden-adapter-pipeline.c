/* app/cli/golden-adapter-pipeline.c: golden kind "adapter-pipeline": the pipe/ cases of
 * refs/controlnet, refs/t2iadapter and refs/ipadapter (README-r2 sections 1-3: DDIM runs of the
 * ControlNet, T2I-Adapter and IP-Adapter pipelines on models/sd1_tiny), through easel_pipeline_run
 * with the job's adapter fields, checked by golden-pipeline.c's diffusers-run comparison.
 *  - ControlNet: the hint is made by the pipeline's own Canny (100/200, RGB) from
 *    pipe_inputs/control_source_rgb_u8_hwc; both ControlNet forms (diffusers folder, lllyasviel
 *    single file) with the diffusers base, and the lllyasviel file with the single-file base;
 *  - T2I-Adapter: adapter_image (floats in [0, 1], not 8-bit) given as the request's image;
 *  - IP-Adapter: ip_adapter_image_rgb_u8_hwc through the pipeline's CLIP preprocessing and
 *    models/ip_adapter/image_encoder, at the manifest's ip_adapter_scale.
 * Base model forms: models/sd1_tiny/ (diffusers) and models/sd1_tiny.safetensors (or .ckpt). */
#include <string.h>

#include "engine/error.h"
#include "golden-adapters.h"
#include "golden-pipeline.h"

static gboolean
accept (const char *name)
{
  return g_str_has_prefix (name, "pipe/");
}

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "controlnet", accept);
  easel_golden_collect_refs (g, cases, "t2iadapter", accept);
  easel_golden_collect_refs (g, cases, "ipadapter", accept);
}

typedef struct {
  EaselControlNetUnit cn;
  EaselT2IAdapterUnit t2i;
  EaselIpAdapterUnit ip;
  const float *t2i_image;
} Units;

static void
add_units (EaselJobParams *job, EaselPipelineRequest *req, gpointer user_data)
{
  Units *u = user_data;
  if (u->cn.model) {
    job->controlnets = &u->cn;
    job->n_controlnets = 1;
  }
  if (u->t2i.model) {
    job->t2i_adapters = &u->t2i;
    job->n_t2i_adapters = 1;
    req->t2i_images01 = &u->t2i_image;
  }
  if (u->ip.model)
    job->ip_adapter = &u->ip;
}

/* An (h, w, 3) 8-bit tensor of the refs file as an image. transfer full. */
static EaselImage *
u8_image (EaselGolden *g, EaselGoldenCase *c, const char *name, GError **error)
{
  gint64 shape[4];
  int nd;
  g_autofree float *v = easel_golden_adapter_tensor (g, c, name, shape, &nd, error);
  if (v == NULL)
    return NULL;
  if (nd != 3 || shape[2] != 3) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: %s is not (h, w, 3)", c->name, name);
    return NULL;
  }
  EaselImage *im = easel_image_new ((gint) shape[1], (gint) shape[0], 3, error);
  if (im)
    for (gint64 i = 0; i < shape[0] * shape[1] * 3; i++)
      im->pixels[i] = (guint8) CLAMP (v[i], 0, 255);
  return im;
}

/* The 8-bit control source lives in another case (pipe_inputs) of the same file: its manifest
 * entry is looked up there. */
static EaselImage *
control_source (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  const EaselJson *list = easel_json_get (easel_golden_manifest (g, "refs/controlnet/manifest.json"), "cases");
  for (gsize i = 0; i < easel_json_length (list); i++) {
    const EaselJson *spec = easel_json_at (list, i);
    if (g_strcmp0 (easel_json_get_string (spec, "name", NULL), "pipe_inputs") == 0) {
      EaselGoldenCase other = *c;
      other.spec = spec;
      return u8_image (g, &other, "pipe_inputs/control_source_rgb_u8_hwc", error);
    }
  }
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "refs/controlnet: no pipe_inputs case");
  return NULL;
}

static EaselModel *
load (EaselEngine *e, EaselGolden *g, const char *path, GError **error)
{
  g_autofree char *cfg = g_build_filename (easel_golden_dir (g), "models", "sd1_tiny", NULL);
  g_autofree char *vocab = easel_golden_vocab (g) ? g_strdup (easel_golden_vocab (g))
                                                  : g_build_filename (easel_golden_dir (g), "tokenizer", NULL);
  const char *dirs[] = { cfg, NULL };
  EaselModelOptions o = { .config_dirs = dirs, .vocab = vocab };
  return easel_model_load_with_options (e, path, &o, error);
}

static gboolean
run (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  const char *name = easel_json_get_string (c->spec, "name", "");
  const char *models = easel_golden_dir (g);
  g_autofree char *refs = g_build_filename (c->dir, easel_json_get_string (c->spec, "file", ""), NULL);
  g_autofree char *base_dir = g_build_filename (models, "models", "sd1_tiny", NULL);
  g_autofree char *base_sf = g_build_filename (models, "models", "sd1_tiny.safetensors", NULL);
  g_autofree char *base_ckpt = g_build_filename (models, "models", "sd1_tiny.ckpt", NULL);
  g_autofree char *cn_dir = g_build_filename (models, "models", "controlnet_sd1_tiny", NULL);
  g_autofree char *cn_sf = g_build_filename (models, "models", "controlnet_sd1_tiny.safetensors", NULL);
  g_autofree char *t2i_dir = g_build_filename (models, "models", "t2iadapter_sd1_tiny", NULL);
  g_autofree char *ip_dir = g_build_filename (models, "models", "ip_adapter", NULL);
  g_autofree char *ip_plain = g_build_filename (ip_dir, "ip-adapter_sd1_tiny.safetensors", NULL);
  g_autofree char *ip_plus = g_build_filename (ip_dir, "ip-adapter-plus_sd1_tiny.safetensors", NULL);
  const EaselJson *params = easel_json_get (c->spec, "params");
  const EaselJson *args = easel_json_get (params, "args");
  EaselEngineOptions eo = { .backend = easel_golden_backend (g) };
  g_autoptr(EaselEngine) e = easel_engine_new (&eo, error);
  g_autoptr(EaselImage) cn_image = NULL, ip_image = NULL;
  g_autofree float *t2i_image = NULL;
  Units u = { .cn = EASEL_CONTROLNET_UNIT_INIT, .t2i = EASEL_T2I_ADAPTER_UNIT_INIT, .ip = EASEL_IP_ADAPTER_UNIT_INIT };
  /* (label, base model, adapter file) for each run */
  const char *runs[3][3] = { { NULL } };
  const EaselImage *ip_images[1];

  if (e == NULL)
    return FALSE;
  if (g_str_has_prefix (name, "pipe/controlnet")) {
    if ((cn_image = control_source (g, c, error)) == NULL)
      return FALSE;
    u.cn.image = cn_image;
    u.cn.canny = TRUE;
    u.cn.canny_low = 100, u.cn.canny_high = 200;
    u.cn.strength = easel_json_get_double (args, "controlnet_conditioning_scale", 1.0);
    const char *r[3][3] = { { "diffusers + diffusers ControlNet", base_dir, cn_dir },
                            { "diffusers + lllyasviel ControlNet", base_dir, cn_sf },
                            { "single file + lllyasviel ControlNet", base_sf, cn_sf } };
    memcpy (runs, r, sizeof r);
  } else if (g_str_has_prefix (name, "pipe/t2iadapter")) {
    g_autofree char *n = g_strconcat (name, "/adapter_image", NULL);
    gint64 shape[4];
    int nd;
    if ((t2i_image = easel_golden_adapter_tensor (g, c, n, shape, &nd, error)) == NULL)
      return FALSE;
    u.t2i.strength = easel_json_get_double (args, "adapter_conditioning_scale", 1.0);
    u.t2i_image = t2i_image;
    const char *r[2][3] = { { "diffusers", base_dir, t2i_dir }, { "single file", base_sf, t2i_dir } };
    memcpy (runs, r, sizeof r);
  } else if (g_str_has_prefix (name, "pipe/ip_")) {
    g_autofree char *n = g_strconcat (name, "/ip_adapter_image_rgb_u8_hwc", NULL);
    if ((ip_image = u8_image (g, c, n, error)) == NULL)
      return FALSE;
    ip_images[0] = ip_image;
    u.ip.images = ip_images;
    u.ip.n_images = 1;
    u.ip.scale = easel_json_get_double (params, "ip_adapter_scale", 1.0);
    const char *file = g_str_has_prefix (name, "pipe/ip_plus") ? ip_plus : ip_plain;
    const char *r[2][3] = { { "diffusers", base_dir, file }, { "single file", base_sf, file } };
    memcpy (runs, r, sizeof r);
  } else {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "%s: unknown adapter pipeline", name);
    return FALSE;
  }

  int ran = 0;
  for (int i = 0; i < 3 && runs[i][0]; i++) {
    const char *base = runs[i][1];
    if (base == base_sf && !g_file_test (base, G_FILE_TEST_EXISTS))
      base = base_ckpt;
    if (!g_file_test (base, G_FILE_TEST_EXISTS) || !g_file_test (runs[i][2], G_FILE_TEST_EXISTS)) {
      easel_golden_note (g, "%s: %s: %s or %s missing, skipped", name, runs[i][0], base, runs[i][2]);
      continue;
    }
    g_autoptr(EaselModel) model = load (e, g, base, error);
    if (model == NULL)
      return FALSE;
    u.cn.model = u.cn.image ? runs[i][2] : NULL;
    u.t2i.model = u.t2i_image ? runs[i][2] : NULL;
    u.ip.model = u.ip.images ? runs[i][2] : NULL;
    if (!easel_golden_pipeline_check (g, c, refs, e, model, runs[i][0], add_units, &u, error))
      return FALSE;
    ran++;
  }
  if (ran == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no model form present", name);
    return FALSE;
  }
  return TRUE;
}

const EaselGoldenKind easel_golden_kind_adapter_pipeline = { "adapter-pipeline", collect, run };
