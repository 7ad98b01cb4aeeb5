/* engine/family.c: family detection from tensor names and shapes (see family.h), and the key list
 * file reader.
 *
 * Cues, as diffusers' single-file loader and ComfyUI's model detection read them:
 *  - the UNet is a prefix P with P"input_blocks.0.0.weight", P"time_embed.0.weight" and
 *    P"out.2.weight" (original naming) or P"conv_in.weight", P"time_embedding.linear_1.weight" and
 *    P"conv_out.weight" (diffusers); a ControlNet has the first two but no output conv;
 *  - conv_in [C, in, 3, 3]: in = 9 is an inpainting UNet;
 *  - attn2.to_k [C, context]: the text context width; proj_in [C, C] (Linear: SD 2.x, SDXL) or
 *    [C, C, 1, 1] (1x1 conv: SD 1.x);
 *  - label_emb.0.0 / add_embedding.linear_1 [T, adm_in]: SDXL. adm_in = pooled + n_ids * w, with
 *    n_ids 6 (base: original size, crop, target size) or 5 (refiner: size, crop, aesthetic score);
 *    pooled is the projection width of the last text encoder;
 *  - text encoders: transformers CLIP (text_model.embeddings.token_embedding) or OpenCLIP
 *    (token_embedding + transformer.resblocks) and their widths, which must add up to the context
 *    width (SDXL base: CLIP-L + OpenCLIP-bigG; refiner: bigG only). */
#include "family.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static const struct {
  const char *name, *display;
} family_names[] = {
  [EASEL_FAMILY_UNKNOWN] = { "unknown", "unknown" },
  [EASEL_FAMILY_SD1] = { "sd1", "Stable Diffusion 1.x" },
  [EASEL_FAMILY_SD1_INPAINT] = { "sd1-inpaint", "Stable Diffusion 1.x inpainting" },
  [EASEL_FAMILY_SD2] = { "sd2", "Stable Diffusion 2.x" },
  [EASEL_FAMILY_SD2_INPAINT] = { "sd2-inpaint", "Stable Diffusion 2.x inpainting" },
  [EASEL_FAMILY_SDXL] = { "sdxl", "Stable Diffusion XL base" },
  [EASEL_FAMILY_SDXL_INPAINT] = { "sdxl-inpaint", "Stable Diffusion XL inpainting" },
  [EASEL_FAMILY_SDXL_REFINER] = { "sdxl-refiner", "Stable Diffusion XL refiner" },
};
G_STATIC_ASSERT (G_N_ELEMENTS (family_names) == EASEL_FAMILY_COUNT);

const char *
easel_family_name (EaselFamily family)
{
  return (guint) family < EASEL_FAMILY_COUNT ? family_names[family].name : "unknown";
}

const char *
easel_family_display_name (EaselFamily family)
{
  return (guint) family < EASEL_FAMILY_COUNT ? family_names[family].display : "unknown";
}

gboolean
easel_family_from_name (const char *name, EaselFamily *out)
{
  for (guint i = 0; i < EASEL_FAMILY_COUNT; i++)
    if (g_strcmp0 (family_names[i].name, name) == 0) {
      *out = (EaselFamily) i;
      return TRUE;
    }
  return FALSE;
}

const char *
easel_prediction_name (EaselPrediction p)
{
  switch (p) {
  case EASEL_PREDICTION_EPSILON:
    return "epsilon";
  case EASEL_PREDICTION_V:
    return "v";
  case EASEL_PREDICTION_UNKNOWN:
  default:
    return "unknown";
  }
}

const char *
easel_prediction_source_name (EaselPredictionSource s)
{
  switch (s) {
  case EASEL_PREDICTION_FROM_FAMILY:
    return "family default";
  case EASEL_PREDICTION_FROM_KEY:
    return "v_pred key";
  case EASEL_PREDICTION_FROM_METADATA:
    return "modelspec.prediction_type metadata";
  case EASEL_PREDICTION_FROM_SCHEDULER:
    return "scheduler_config.json";
  case EASEL_PREDICTION_FROM_NOTHING:
  default:
    return "not recorded in the checkpoint";
  }
}

EaselPrediction
easel_prediction_from_string (const char *s)
{
  if (g_strcmp0 (s, "epsilon") == 0 || g_strcmp0 (s, "eps") == 0)
    return EASEL_PREDICTION_EPSILON;
  if (g_strcmp0 (s, "v_prediction") == 0 || g_strcmp0 (s, "v") == 0)
    return EASEL_PREDICTION_V;
  return EASEL_PREDICTION_UNKNOWN;
}

void
easel_detection_set_prediction (EaselDetection *det, EaselPrediction p, EaselPredictionSource source)
{
  if (p == EASEL_PREDICTION_UNKNOWN)
    return;
  det->prediction = p;
  det->prediction_source = source;
}

/* --- detection ------------------------------------------------------------------------------ */

typedef struct {
  GHashTable *by_name;          /* name -> const EaselKeyShape* */
  const EaselKeyShape *keys;
  gsize n;
} Keys;

static const EaselKeyShape *
key_get (const Keys *k, const char *prefix, const char *suffix)
{
  g_autofree char *name = g_strconcat (prefix, suffix, NULL);
  return g_hash_table_lookup (k->by_name, name);
}

static const EaselKeyShape *
key_get_dims (const Keys *k, const char *prefix, const char *suffix, int n_dims)
{
  const EaselKeyShape *e = key_get (k, prefix, suffix);
  return e && e->n_dims == n_dims ? e : NULL;
}

/* Copies name[0, len) into a prefix buffer; FALSE when it does not fit (no standard prefix is
 * that long). */
static gboolean
set_prefix (char *dst, const char *name, gsize len)
{
  if (len >= EASEL_PREFIX_MAX)
    return FALSE;
  memcpy (dst, name, len);
  dst[len] = '\0';
  return TRUE;
}

/* Rank of a UNet prefix: the standard ones first, then shorter ones. */
static gsize
prefix_rank (const char *p)
{
  if (strcmp (p, "model.diffusion_model.") == 0)
    return 0;
  if (strcmp (p, "unet/") == 0)
    return 1;
  return 2 + strlen (p);
}

static void
find_unet (const Keys *k, EaselDetection *d)
{
  static const char ldm_in[] = "input_blocks.0.0.weight", dif_in[] = "conv_in.weight";
  gsize best = G_MAXSIZE;

  for (gsize i = 0; i < k->n; i++) {
    const char *name = k->keys[i].name;
    gsize len = strlen (name);
    char p[EASEL_PREFIX_MAX];
    EaselNaming naming = EASEL_NAMING_NONE;

    if (g_str_has_suffix (name, ldm_in) && set_prefix (p, name, len - strlen (ldm_in))
        && key_get (k, p, "time_embed.0.weight") && key_get (k, p, "out.2.weight"))
      naming = EASEL_NAMING_ORIGINAL;
    else if (g_str_has_suffix (name, dif_in) && set_prefix (p, name, len - strlen (dif_in))
             && key_get (k, p, "time_embedding.linear_1.weight") && key_get (k, p, "conv_out.weight"))
      naming = EASEL_NAMING_DIFFUSERS;
    if (naming == EASEL_NAMING_NONE || k->keys[i].n_dims != 4 || prefix_rank (p) >= best)
      continue;
    best = prefix_rank (p);
    d->unet_naming = naming;
    strcpy (d->unet_prefix, p);
    d->model_channels = k->keys[i].shape[0];
    d->in_channels = k->keys[i].shape[1];
  }
}

/* Reads the UNet's cues once the prefix is known. */
static void
read_unet (const Keys *k, EaselDetection *d)
{
  const char *p = d->unet_prefix;
  gsize plen = strlen (p);
  gboolean ldm = d->unet_naming == EASEL_NAMING_ORIGINAL;
  const EaselKeyShape *adm;
  gboolean have_proj = FALSE;
  int n_down = 0;

  for (gsize i = 0; i < k->n; i++) {
    const EaselKeyShape *e = &k->keys[i];
    const char *rest;
    if (strncmp (e->name, p, plen) != 0)
      continue;
    rest = e->name + plen;
    if (d->context_dim == 0 && g_str_has_suffix (rest, "attn2.to_k.weight") && e->n_dims == 2)
      d->context_dim = e->shape[1];
    if (!have_proj && g_str_has_suffix (rest, ".proj_in.weight") && (e->n_dims == 2 || e->n_dims == 4)) {
      have_proj = TRUE;
      d->linear_proj = e->n_dims == 2;
    }
    if (ldm ? g_str_has_prefix (rest, "input_blocks.") && g_str_has_suffix (rest, ".0.op.weight")
            : g_str_has_prefix (rest, "down_blocks.") && g_str_has_suffix (rest, ".downsamplers.0.conv.weight"))
      n_down++;
  }
  d->n_levels = n_down + 1;
  adm = key_get_dims (k, p, ldm ? "label_emb.0.0.weight" : "add_embedding.linear_1.weight", 2);
  if (adm)
    d->adm_in = adm->shape[1];
}

static int
cmp_encoder (const void *a, const void *b)
{
  return strcmp (((const EaselTextEncoderInfo *) a)->prefix, ((const EaselTextEncoderInfo *) b)->prefix);
}

static int
count_layers (const Keys *k, const char *prefix, const char *fmt)
{
  int n = 0;
  for (;;) {
    g_autofree char *suffix = g_strdup_printf (fmt, n);
    if (key_get (k, prefix, suffix) == NULL)
      return n;
    n++;
  }
}

static void
find_text_encoders (const Keys *k, EaselDetection *d)
{
  static const char hf[] = "text_model.embeddings.token_embedding.weight", oc[] = "token_embedding.weight";

  for (gsize i = 0; i < k->n && d->n_text_encoders < EASEL_MAX_TEXT_ENCODERS; i++) {
    const EaselKeyShape *e = &k->keys[i];
    EaselTextEncoderInfo *t = &d->text_encoders[d->n_text_encoders];
    gsize len = strlen (e->name);
    const EaselKeyShape *proj;

    if (e->n_dims != 2)
      continue;
    memset (t, 0, sizeof *t);
    if (g_str_has_suffix (e->name, hf)) {
      if (!set_prefix (t->prefix, e->name, len - strlen (hf)))
        continue;
      t->naming = EASEL_NAMING_DIFFUSERS;
      proj = key_get_dims (k, t->prefix, "text_projection.weight", 2);   /* Linear: [proj, hidden] */
      t->projection = proj ? proj->shape[0] : 0;
      t->n_layers = count_layers (k, t->prefix, "text_model.encoder.layers.%d.layer_norm1.weight");
    } else if (g_str_has_suffix (e->name, oc) && !g_str_has_suffix (e->name, "embeddings.token_embedding.weight")) {
      if (!set_prefix (t->prefix, e->name, len - strlen (oc)))
        continue;
      t->naming = EASEL_NAMING_ORIGINAL;
      proj = key_get_dims (k, t->prefix, "text_projection", 2);          /* x @ W: [hidden, proj] */
      t->projection = proj ? proj->shape[1] : 0;
      t->n_layers = count_layers (k, t->prefix, "transformer.resblocks.%d.ln_1.weight");
      if (t->n_layers == 0)
        continue;   /* not an OpenCLIP text tower */
    } else {
      continue;
    }
    t->width = e->shape[1];
    d->n_text_encoders++;
  }
  qsort (d->text_encoders, d->n_text_encoders, sizeof (EaselTextEncoderInfo), cmp_encoder);
}

/* Sets the family and its reason; returns family != UNKNOWN. */
static gboolean G_GNUC_PRINTF (3, 4)
decide (EaselDetection *d, EaselFamily family, const char *format, ...)
{
  va_list ap;
  d->family = family;
  va_start (ap, format);
  g_vsnprintf (d->reason, sizeof d->reason, format, ap);
  va_end (ap);
  return family != EASEL_FAMILY_UNKNOWN;
}

/* Width per time id when adm_in - pooled splits into n even-width sinusoids; 0 otherwise. */
static gint64
time_id_width (gint64 adm_in, gint64 pooled, int n)
{
  gint64 rest = adm_in - pooled;
  if (pooled <= 0 || rest <= 0 || rest % n != 0 || (rest / n) % 2 != 0)
    return 0;
  return rest / n;
}

/* SDXL: how many time ids the label embedding takes. Returns 6, 5 or 0 (and sets why). */
static int
sdxl_time_ids (EaselDetection *d, const char **why)
{
  gint64 pooled = 0, w6, w5;
  int n_te = d->n_text_encoders;

  if (n_te > 0)
    pooled = d->text_encoders[n_te - 1].projection;
  if (pooled > 0) {
    w6 = time_id_width (d->adm_in, pooled, 6);
    w5 = time_id_width (d->adm_in, pooled, 5);
    if (w6 && w5) {   /* both split evenly: the number of text encoders decides */
      if (w6 && n_te == 2)
        w5 = 0;
      else
        w6 = 0;
    }
    d->pooled_dim = pooled;
    d->time_id_width = w6 ? w6 : w5;
    *why = "from the pooled width of the text encoder";
    return w6 ? 6 : w5 ? 5 : 0;
  }
  /* No text encoder (a UNet-only file). The refiner's pooled vector is its only encoder's
   * projection, as wide as the context; the base's is only part of its context. */
  w5 = time_id_width (d->adm_in, d->context_dim, 5);
  if (w5 == 0 || d->n_levels == 3) {
    *why = w5 ? "UNet only: 3 levels as the base" : "UNet only: the label embedding does not fit pooled = context + 5 ids";
    return 6;
  }
  if (d->n_levels == 4) {
    d->pooled_dim = d->context_dim;
    d->time_id_width = w5;
    *why = "UNet only: pooled = context width + 5 ids, 4 levels as the refiner";
    return 5;
  }
  *why = "UNet only: ambiguous";
  return 0;
}

static gboolean
classify (EaselDetection *d)
{
  gint64 te_sum = 0;
  gboolean inpaint = d->in_channels == 9;
  const char *why = NULL;

  for (int i = 0; i < d->n_text_encoders; i++)
    te_sum += d->text_encoders[i].width;
  if (d->in_channels != 4 && d->in_channels != 9)
    return decide (d, EASEL_FAMILY_UNKNOWN, "the UNet takes %" G_GINT64_FORMAT " input channels (4, or 9 for inpainting, "
                   "expected; 8 is instruct-pix2pix, 5 a depth model)", d->in_channels);
  if (d->context_dim == 0)
    return decide (d, EASEL_FAMILY_UNKNOWN, "the UNet has no cross-attention (attn2.to_k)");
  if (d->n_text_encoders > 0 && te_sum != d->context_dim)
    return decide (d, EASEL_FAMILY_UNKNOWN, "text encoder widths add up to %" G_GINT64_FORMAT
                   " but the UNet's context is %" G_GINT64_FORMAT " wide", te_sum, d->context_dim);

  if (d->adm_in > 0) {
    if (!d->linear_proj)
      return decide (d, EASEL_FAMILY_UNKNOWN, "label embedding (SDXL) with 1x1-conv proj_in (SD 1.x)");
    d->n_time_ids = sdxl_time_ids (d, &why);
    if (d->n_time_ids == 6) {
      if (d->n_text_encoders != 0 && d->n_text_encoders != 2)
        return decide (d, EASEL_FAMILY_UNKNOWN, "SDXL base UNet with %d text encoders (2 expected)", d->n_text_encoders);
      return decide (d, inpaint ? EASEL_FAMILY_SDXL_INPAINT : EASEL_FAMILY_SDXL,
                     "label embedding of %" G_GINT64_FORMAT " = pooled + 6 time ids (%s)%s", d->adm_in, why,
                     inpaint ? ", 9 input channels" : "");
    }
    if (d->n_time_ids == 5) {
      if (d->n_text_encoders > 1)
        return decide (d, EASEL_FAMILY_UNKNOWN, "SDXL refiner UNet with %d text encoders (1 expected)", d->n_text_encoders);
      if (inpaint)
        return decide (d, EASEL_FAMILY_UNKNOWN, "SDXL refiner UNet with 9 input channels");
      return decide (d, EASEL_FAMILY_SDXL_REFINER, "label embedding of %" G_GINT64_FORMAT " = pooled + 5 time ids (%s)",
                     d->adm_in, why);
    }
    return decide (d, EASEL_FAMILY_UNKNOWN, "label embedding of %" G_GINT64_FORMAT " fits neither SDXL base (pooled + 6 "
                   "time ids) nor refiner (pooled + 5) (%s)", d->adm_in, why);
  }

  if (d->n_text_encoders > 1)
    return decide (d, EASEL_FAMILY_UNKNOWN, "%d text encoders but no SDXL label embedding", d->n_text_encoders);
  if (d->linear_proj) {
    if (d->n_text_encoders == 1 && d->text_encoders[0].naming == EASEL_NAMING_DIFFUSERS
        && g_str_has_prefix (d->text_encoders[0].prefix, "cond_stage_model."))
      return decide (d, EASEL_FAMILY_UNKNOWN, "Linear proj_in (SD 2.x) with a CLIP text encoder in original naming "
                     "(SD 2.x single files carry OpenCLIP)");
    return decide (d, inpaint ? EASEL_FAMILY_SD2_INPAINT : EASEL_FAMILY_SD2,
                   "Linear proj_in, no label embedding, context %" G_GINT64_FORMAT "%s", d->context_dim,
                   inpaint ? ", 9 input channels" : "");
  }
  if (d->n_text_encoders == 1 && d->text_encoders[0].naming == EASEL_NAMING_ORIGINAL)
    return decide (d, EASEL_FAMILY_UNKNOWN, "1x1-conv proj_in (SD 1.x) with an OpenCLIP text encoder (SD 2.x)");
  return decide (d, inpaint ? EASEL_FAMILY_SD1_INPAINT : EASEL_FAMILY_SD1,
                 "1x1-conv proj_in, no label embedding, context %" G_GINT64_FORMAT "%s", d->context_dim,
                 inpaint ? ", 9 input channels" : "");
}

/* Why there is no UNet: name what the file looks like instead. */
static gboolean
explain_no_unet (const Keys *k, EaselDetection *d)
{
  for (gsize i = 0; i < k->n; i++) {
    const char *n = k->keys[i].name;
    if (strstr (n, "lora_down") || strstr (n, "lora_up") || strstr (n, "lora_A") || g_str_has_prefix (n, "lora_"))
      return decide (d, EASEL_FAMILY_UNKNOWN, "no UNet: a LoRA, not a checkpoint");
    if (strstr (n, "input_hint_block") || strstr (n, "zero_convs") || strstr (n, "controlnet_cond_embedding"))
      return decide (d, EASEL_FAMILY_UNKNOWN, "no UNet: a ControlNet, not a checkpoint");
    if (strstr (n, "ip_adapter") || strstr (n, "image_proj"))
      return decide (d, EASEL_FAMILY_UNKNOWN, "no UNet: an IP-Adapter, not a checkpoint");
    if (g_str_has_prefix (n, "adapter."))
      return decide (d, EASEL_FAMILY_UNKNOWN, "no UNet: a T2I-Adapter, not a checkpoint");
  }
  return decide (d, EASEL_FAMILY_UNKNOWN, "no UNet weights (model.diffusion_model.*, unet/* or a bare UNet)");
}

void
easel_detect_family (const EaselKeyShape *keys, gsize n, EaselDetection *out)
{
  Keys k = { g_hash_table_new (g_str_hash, g_str_equal), keys, n };

  memset (out, 0, sizeof *out);
  for (gsize i = 0; i < n; i++) {
    g_hash_table_insert (k.by_name, (gpointer) keys[i].name, (gpointer) &keys[i]);
    if (g_str_has_suffix (keys[i].name, "decoder.conv_in.weight"))
      out->has_vae = TRUE;
  }
  find_text_encoders (&k, out);
  find_unet (&k, out);
  if (out->unet_naming == EASEL_NAMING_NONE) {
    explain_no_unet (&k, out);
  } else {
    read_unet (&k, out);
    classify (out);
  }

  if (g_hash_table_contains (k.by_name, "v_pred")) {
    out->prediction = EASEL_PREDICTION_V;
    out->prediction_source = EASEL_PREDICTION_FROM_KEY;
  } else if (out->family != EASEL_FAMILY_UNKNOWN && out->family != EASEL_FAMILY_SD2
             && out->family != EASEL_FAMILY_SD2_INPAINT) {
    out->prediction = EASEL_PREDICTION_EPSILON;
    out->prediction_source = EASEL_PREDICTION_FROM_FAMILY;
  }
  g_hash_table_unref (k.by_name);
}

/* --- key lists ------------------------------------------------------------------------------ */

gboolean
easel_dtype_from_any_name (const char *name, EaselDType *out)
{
  static const struct {
    const char *torch;
    EaselDType dtype;
  } torch_names[] = {
    { "float32", EASEL_DTYPE_F32 }, { "float16", EASEL_DTYPE_F16 }, { "bfloat16", EASEL_DTYPE_BF16 },
    { "float64", EASEL_DTYPE_F64 }, { "int32", EASEL_DTYPE_I32 }, { "int64", EASEL_DTYPE_I64 },
    { "int16", EASEL_DTYPE_I16 }, { "int8", EASEL_DTYPE_I8 }, { "uint8", EASEL_DTYPE_U8 },
    { "uint16", EASEL_DTYPE_U16 }, { "uint32", EASEL_DTYPE_U32 }, { "uint64", EASEL_DTYPE_U64 },
    { "bool", EASEL_DTYPE_BOOL }, { "float8_e4m3fn", EASEL_DTYPE_F8_E4M3 }, { "float8_e5m2", EASEL_DTYPE_F8_E5M2 },
  };
  if (g_str_has_prefix (name, "torch."))
    name += 6;
  for (guint i = 0; i < G_N_ELEMENTS (torch_names); i++)
    if (strcmp (name, torch_names[i].torch) == 0) {
      *out = torch_names[i].dtype;
      return TRUE;
    }
  return easel_dtype_from_name (name, out);
}

void
easel_key_list_free (EaselKeyList *list)
{
  if (list == NULL)
    return;
  g_free (list->keys);
  g_free (list->dtypes);
  if (list->strings)
    g_string_chunk_free (list->strings);
  g_free (list);
}

/* "[320, 4, 3, 3]" or "[]" into e. */
static gboolean
parse_shape (const char *s, EaselKeyShape *e)
{
  const char *p = s;
  e->n_dims = 0;
  if (*p++ != '[')
    return FALSE;
  while (*p == ' ')
    p++;
  if (*p == ']')
    return p[1] == '\0';
  for (;;) {
    char *end;
    gint64 v;
    if (!g_ascii_isdigit (*p) || e->n_dims == EASEL_MAX_DIMS)
      return FALSE;
    v = g_ascii_strtoll (p, &end, 10);
    if (v < 0 || end == p)
      return FALSE;
    e->shape[e->n_dims++] = v;
    p = end;
    while (*p == ' ')
      p++;
    if (*p == ']')
      return p[1] == '\0';
    if (*p++ != ',')
      return FALSE;
    while (*p == ' ')
      p++;
  }
}

EaselKeyList *
easel_key_list_parse (const char *text, gsize len, const char *display_name, GError **error)
{
  g_autoptr(EaselKeyList) list = g_new0 (EaselKeyList, 1);
  g_autoptr(GArray) keys = g_array_new (FALSE, TRUE, sizeof (EaselKeyShape));
  g_autoptr(GArray) dtypes = g_array_new (FALSE, TRUE, sizeof (EaselDType));
  g_autofree char *copy = g_strndup (text, len);
  g_auto(GStrv) lines = NULL;
  const char *file = display_name ? display_name : "(key list)";

  if (strlen (copy) != len) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: holds a NUL byte, not a key list", file);
    return NULL;
  }
  list->strings = g_string_chunk_new (4096);
  lines = g_strsplit (copy, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    g_auto(GStrv) cols = NULL;
    EaselKeyShape e = { 0 };
    EaselDType dt;
    char *line = lines[i];
    gsize ll = strlen (line);

    if (ll > 0 && line[ll - 1] == '\r')
      line[--ll] = '\0';
    if (ll == 0 || line[0] == '#')
      continue;
    cols = g_strsplit (line, "\t", 4);
    if (g_strv_length (cols) < 3 || cols[0][0] == '\0') {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s:%u: not 'name TAB [shape] TAB dtype'", file, i + 1);
      return NULL;
    }
    if (!parse_shape (cols[1], &e)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s:%u: bad shape '%.40s'", file, i + 1, cols[1]);
      return NULL;
    }
    if (!easel_dtype_from_any_name (cols[2], &dt)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s:%u: unknown dtype '%.40s'", file, i + 1, cols[2]);
      return NULL;
    }
    e.name = g_string_chunk_insert (list->strings, cols[0]);
    g_array_append_val (keys, e);
    g_array_append_val (dtypes, dt);
  }
  list->n_keys = keys->len;
  list->keys = (EaselKeyShape *) g_array_free (g_steal_pointer (&keys), FALSE);
  list->dtypes = (EaselDType *) g_array_free (g_steal_pointer (&dtypes), FALSE);
  return g_steal_pointer (&list);
}

EaselKeyList *
easel_key_list_load (const char *path, GError **error)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) local = NULL;
  gsize len;

  if (!g_file_get_contents (path, &text, &len, &local)) {
    g_set_error (error, EASEL_ERROR, local->code == G_FILE_ERROR_NOENT ? EASEL_ERROR_NOT_FOUND : EASEL_ERROR_IO,
                 "%s: %s", path, local->message);
    return NULL;
  }
  return easel_key_list_parse (text, len, path, error);
}
