/* engine/clip.c: the CLIP / OpenCLIP text encoders (see clip.h): key tables of both namings, the
 * config read off the tensors (plus the config.json hint), and the forward pass as a graph. */
#include "clip.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "error.h"
#include "patch.h"
#include "weights.h"

/* --- one internal naming ------------------------------------------------------------------------ *
 * token_embedding [V, C], position_embedding [P, C], final_ln.{weight,bias} [C],
 * projection [P, C] (transformers) or projection_t [C, P] (OpenCLIP), and per layer N:
 * layers.N.{ln1,ln2}.*, layers.N.attn.{q,k,v}.* or layers.N.attn.qkv.* [3C, C], layers.N.attn.out.*,
 * layers.N.fc1.* [F, C], layers.N.fc2.* [C, F]. */

typedef struct {
  const char *from, *to;
} KeyMap;

typedef struct {
  const char *strip;        /* optional leading part to drop ("text_model.") */
  const char *layer_prefix; /* "encoder.layers." / "transformer.resblocks." */
  const KeyMap *top;        /* whole keys, to NULL = not a weight */
  gsize n_top;
  const KeyMap *layer; /* leading parts of the key after "<layer_prefix>N." */
  gsize n_layer;
} Naming;

static const KeyMap transformers_top[] = {
  { "embeddings.token_embedding.weight", "token_embedding" },
  { "embeddings.position_embedding.weight", "position_embedding" },
  { "embeddings.position_ids", NULL },
  { "final_layer_norm.weight", "final_ln.weight" },
  { "final_layer_norm.bias", "final_ln.bias" },
  { "text_projection.weight", "projection" },
};

static const KeyMap transformers_layer[] = {
  { "self_attn.q_proj.", "attn.q." },
  { "self_attn.k_proj.", "attn.k." },
  { "self_attn.v_proj.", "attn.v." },
  { "self_attn.out_proj.", "attn.out." },
  { "layer_norm1.", "ln1." },
  { "layer_norm2.", "ln2." },
  { "mlp.fc1.", "fc1." },
  { "mlp.fc2.", "fc2." },
};

static const KeyMap openclip_top[] = {
  { "token_embedding.weight", "token_embedding" },
  { "positional_embedding", "position_embedding" },
  { "ln_final.weight", "final_ln.weight" },
  { "ln_final.bias", "final_ln.bias" },
  { "text_projection", "projection_t" },
  { "logit_scale", NULL },
  { "attn_mask", NULL },
};

static const KeyMap openclip_layer[] = {
  { "attn.in_proj_weight", "attn.qkv.weight" },
  { "attn.in_proj_bias", "attn.qkv.bias" },
  { "attn.out_proj.", "attn.out." },
  { "ln_1.", "ln1." },
  { "ln_2.", "ln2." },
  { "mlp.c_fc.", "fc1." },
  { "mlp.c_proj.", "fc2." },
};

static const Naming namings[] = {
  [EASEL_CLIP_NAMING_TRANSFORMERS]
  = { "text_model.", "encoder.layers.", transformers_top, G_N_ELEMENTS (transformers_top), transformers_layer,
      G_N_ELEMENTS (transformers_layer) },
  [EASEL_CLIP_NAMING_OPENCLIP] = { NULL, "transformer.resblocks.", openclip_top, G_N_ELEMENTS (openclip_top),
                                   openclip_layer, G_N_ELEMENTS (openclip_layer) },
};

/* EaselWeightsRename: a checkpoint key (prefix removed) -> the internal name; keys of neither table
 * keep their name behind "other:" so that easel_weights_unused lists them. */
static char *
rename_key (const char *key, gpointer user_data)
{
  const Naming *n = user_data;
  const char *k = key;
  gsize lp = strlen (n->layer_prefix);

  if (n->strip && g_str_has_prefix (k, n->strip))
    k += strlen (n->strip);
  for (gsize i = 0; i < n->n_top; i++)
    if (strcmp (k, n->top[i].from) == 0)
      return g_strdup (n->top[i].to);
  if (strncmp (k, n->layer_prefix, lp) == 0 && g_ascii_isdigit (k[lp])) {
    char *end = NULL;
    guint64 layer = g_ascii_strtoull (k + lp, &end, 10);
    if (end && *end == '.' && layer < 100000) {
      for (gsize i = 0; i < n->n_layer; i++)
        if (g_str_has_prefix (end + 1, n->layer[i].from))
          return g_strdup_printf ("layers.%u.%s%s", (guint)layer, n->layer[i].to, end + 1 + strlen (n->layer[i].from));
    }
  }
  return g_strconcat ("other:", key, NULL);
}

/* --- binding ------------------------------------------------------------------------------------- */

typedef struct {
  const EaselStTensor *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  const EaselStTensor *qkv_w, *qkv_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *out_w, *out_b;
  const EaselStTensor *fc1_w, *fc1_b, *fc2_w, *fc2_b;
  /* run-time LoRA adapters of the projections (patch.h; NULL: none) */
  const EaselPatchLowRank *qkv_lr, *q_lr, *k_lr, *v_lr, *out_lr, *fc1_lr, *fc2_lr;
} Layer;

typedef enum { D_C = -2, D_3C = -3, D_F = -4 } Dim; /* sizes in a spec: resolved from the config */

typedef enum { ALWAYS, FUSED_ONLY, SEPARATE_ONLY } When;

typedef struct {
  const char *name; /* after "layers.N." */
  gsize offset;     /* in Layer */
  int n_dims;
  gint64 d0, d1;
  gboolean required;
  When when;
} LayerSpec;

#define L(f) offsetof (Layer, f)
static const LayerSpec layer_specs[] = {
  { "ln1.weight", L (ln1_w), 1, D_C, 0, TRUE, ALWAYS },
  { "ln1.bias", L (ln1_b), 1, D_C, 0, FALSE, ALWAYS },
  { "ln2.weight", L (ln2_w), 1, D_C, 0, TRUE, ALWAYS },
  { "ln2.bias", L (ln2_b), 1, D_C, 0, FALSE, ALWAYS },
  { "attn.qkv.weight", L (qkv_w), 2, D_3C, D_C, TRUE, FUSED_ONLY },
  { "attn.qkv.bias", L (qkv_b), 1, D_3C, 0, FALSE, FUSED_ONLY },
  { "attn.q.weight", L (q_w), 2, D_C, D_C, TRUE, SEPARATE_ONLY },
  { "attn.q.bias", L (q_b), 1, D_C, 0, FALSE, SEPARATE_ONLY },
  { "attn.k.weight", L (k_w), 2, D_C, D_C, TRUE, SEPARATE_ONLY },
  { "attn.k.bias", L (k_b), 1, D_C, 0, FALSE, SEPARATE_ONLY },
  { "attn.v.weight", L (v_w), 2, D_C, D_C, TRUE, SEPARATE_ONLY },
  { "attn.v.bias", L (v_b), 1, D_C, 0, FALSE, SEPARATE_ONLY },
  { "attn.out.weight", L (out_w), 2, D_C, D_C, TRUE, ALWAYS },
  { "attn.out.bias", L (out_b), 1, D_C, 0, FALSE, ALWAYS },
  { "fc1.weight", L (fc1_w), 2, D_F, D_C, TRUE, ALWAYS },
  { "fc1.bias", L (fc1_b), 1, D_F, 0, FALSE, ALWAYS },
  { "fc2.weight", L (fc2_w), 2, D_C, D_F, TRUE, ALWAYS },
  { "fc2.bias", L (fc2_b), 1, D_C, 0, FALSE, ALWAYS },
};
#undef L

struct _EaselClip {
  EaselClipConfig cfg;
  char *prefix;
  char *path; /* of the checkpoint: for errors */
  EaselWeights *weights;
  const EaselStTensor *tok_emb, *pos_emb, *final_w, *final_b;
  const EaselStTensor *proj;   /* [P, C] */
  const EaselStTensor *proj_t; /* [C, P] */
  Layer *layers;               /* n_layers */
  GPtrArray *targets;          /* EaselPatchTarget*: the layers' projections (LoRA) */
  float *extra;                /* [n_extra, width]: token rows vocab .. vocab + n_extra (embeddings) */
  gint64 n_extra;
  float *embedded;             /* [B, L, width]: the looked-up rows when ids use extra rows */
};

void
easel_clip_free (EaselClip *clip)
{
  if (clip == NULL)
    return;
  easel_weights_free (clip->weights);
  if (clip->targets)
    g_ptr_array_unref (clip->targets);
  g_free (clip->extra);
  g_free (clip->embedded);
  g_free (clip->layers);
  g_free (clip->prefix);
  g_free (clip->path);
  g_free (clip);
}

const EaselClipConfig *
easel_clip_config (const EaselClip *clip)
{
  return &clip->cfg;
}

const char *
easel_clip_prefix (const EaselClip *clip)
{
  return clip->prefix;
}

static gint64
resolve (const EaselClipConfig *c, gint64 d)
{
  switch (d) {
  case D_C:
    return c->width;
  case D_3C:
    return 3 * c->width;
  case D_F:
    return c->ff_width;
  default:
    return d;
  }
}

static gboolean
bind_layer (EaselClip *clip, int i, GError **error)
{
  Layer *l = &clip->layers[i];
  for (gsize s = 0; s < G_N_ELEMENTS (layer_specs); s++) {
    const LayerSpec *sp = &layer_specs[s];
    const EaselStTensor **slot = (const EaselStTensor **)((guint8 *)l + sp->offset);
    g_autofree char *name = g_strdup_printf ("layers.%d.%s", i, sp->name);
    gint64 shape[2] = { resolve (&clip->cfg, sp->d0), resolve (&clip->cfg, sp->d1) };

    if ((sp->when == FUSED_ONLY && !clip->cfg.fused_qkv) || (sp->when == SEPARATE_ONLY && clip->cfg.fused_qkv))
      continue;
    if (!sp->required && !easel_weights_has (clip->weights, name))
      continue;
    *slot = easel_weights_require (clip->weights, name, sp->n_dims, shape, error);
    if (*slot == NULL) {
      g_prefix_error (error, "%s: text encoder layer %d: ", clip->path, i);
      return FALSE;
    }
  }
  return TRUE;
}

/* --- patch targets (patch.h): the layers' projections under transformers' module paths --------- */

static void
bind_patched (gpointer slot, const EaselStTensor *t)
{
  *(const EaselStTensor **)slot = t;
}

static void
add_target (EaselClip *clip, const EaselStTensor **slot, const EaselPatchLowRank **lowrank, int layer,
            const char *module, gint64 row0, gint64 rows)
{
  EaselPatchTarget *t = g_new0 (EaselPatchTarget, 1);
  t->module = g_strdup_printf ("text_model.encoder.layers.%d.%s", layer, module);
  t->row0 = row0;
  t->rows = rows;
  t->slot = (gpointer)slot;
  t->bind = bind_patched;
  t->lowrank = lowrank;
  easel_patch_target_set_stored (t, *slot);
  g_ptr_array_add (clip->targets, t);
}

static void
add_layer_targets (EaselClip *clip, int i)
{
  static const struct {
    gsize offset, lr;
    const char *module;
  } linear[] = {
    { offsetof (Layer, q_w), offsetof (Layer, q_lr), "self_attn.q_proj" },
    { offsetof (Layer, k_w), offsetof (Layer, k_lr), "self_attn.k_proj" },
    { offsetof (Layer, v_w), offsetof (Layer, v_lr), "self_attn.v_proj" },
    { offsetof (Layer, out_w), offsetof (Layer, out_lr), "self_attn.out_proj" },
    { offsetof (Layer, fc1_w), offsetof (Layer, fc1_lr), "mlp.fc1" },
    { offsetof (Layer, fc2_w), offsetof (Layer, fc2_lr), "mlp.fc2" },
  };
  Layer *l = &clip->layers[i];
  gint64 C = clip->cfg.width;

  for (gsize k = 0; k < G_N_ELEMENTS (linear); k++) {
    const EaselStTensor **slot = (const EaselStTensor **)((guint8 *)l + linear[k].offset);
    const EaselPatchLowRank **lr = (const EaselPatchLowRank **)((guint8 *)l + linear[k].lr);
    if (*slot)
      add_target (clip, slot, lr, i, linear[k].module, 0, (*slot)->shape[0]);
  }
  if (l->qkv_w) {
    add_target (clip, &l->qkv_w, &l->qkv_lr, i, "self_attn.q_proj", 0, C);
    add_target (clip, &l->qkv_w, &l->qkv_lr, i, "self_attn.k_proj", C, C);
    add_target (clip, &l->qkv_w, &l->qkv_lr, i, "self_attn.v_proj", 2 * C, C);
  }
}

gboolean
easel_clip_set_extra_tokens (EaselClip *clip, const float *rows, gint64 n_rows, GError **error)
{
  g_clear_pointer (&clip->extra, g_free);
  clip->n_extra = 0;
  if (n_rows <= 0)
    return TRUE;
  if (n_rows > (1 << 20) || (clip->extra = g_try_new (float, n_rows * clip->cfg.width)) == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY, "text encoder: no memory for %" G_GINT64_FORMAT
                 " extra token rows", n_rows);
    return FALSE;
  }
  memcpy (clip->extra, rows, n_rows * clip->cfg.width * sizeof (float));
  clip->n_extra = n_rows;
  return TRUE;
}

/* The token embeddings of ids (B·L) looked up on the host into clip->embedded: rows of the table or,
 * for ids >= vocab, of the extra rows. */
static const float *
embed_on_host (EaselClip *clip, const gint32 *ids, gint64 n)
{
  gint64 C = clip->cfg.width;
  gsize es = easel_dtype_size (clip->tok_emb->dtype);
  g_free (clip->embedded);
  clip->embedded = g_new (float, n * C);
  for (gint64 i = 0; i < n; i++) {
    if (ids[i] >= clip->cfg.vocab)
      memcpy (clip->embedded + i * C, clip->extra + (ids[i] - clip->cfg.vocab) * C, C * sizeof (float));
    else
      easel_dtype_to_f32 (clip->tok_emb->dtype, clip->tok_emb->data + (gsize)ids[i] * C * es, clip->embedded + i * C, C);
  }
  return clip->embedded;
}

GPtrArray *
easel_clip_patch_targets (EaselClip *clip)
{
  return clip->targets;
}

static gboolean
naming_of (const EaselCheckpoint *ck, const char *prefix, EaselClipNaming *out)
{
  static const char *const transformers[]
    = { "text_model.embeddings.token_embedding.weight", "embeddings.token_embedding.weight" };
  for (gsize i = 0; i < G_N_ELEMENTS (transformers); i++) {
    g_autofree char *k = g_strconcat (prefix, transformers[i], NULL);
    if (easel_checkpoint_find (ck, k)) {
      *out = EASEL_CLIP_NAMING_TRANSFORMERS;
      return TRUE;
    }
  }
  g_autofree char *k = g_strconcat (prefix, "token_embedding.weight", NULL);
  g_autofree char *r = g_strconcat (prefix, "transformer.resblocks.0.ln_1.weight", NULL);
  if (easel_checkpoint_find (ck, k) && easel_checkpoint_find (ck, r)) {
    *out = EASEL_CLIP_NAMING_OPENCLIP;
    return TRUE;
  }
  return FALSE;
}

/* The config.json hint: heads, activation, eps, and checks of what the tensors already say. */
static gboolean
apply_hint (EaselClip *clip, const EaselJson *hint, GError **error)
{
  EaselClipConfig *c = &clip->cfg;
  const EaselJson *v;
  gint64 n;

  if ((v = easel_json_get (hint, "hidden_size")) && (!easel_json_int64 (v, &n) || n != c->width)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                 "%s: the text encoder config's hidden_size does not match the %" G_GINT64_FORMAT
                 "-wide weights under '%s'",
                 clip->path, c->width, clip->prefix);
    return FALSE;
  }
  if ((v = easel_json_get (hint, "intermediate_size")) && (!easel_json_int64 (v, &n) || n != c->ff_width)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                 "%s: text encoder config's intermediate_size does not match the MLP width %" G_GINT64_FORMAT,
                 clip->path, c->ff_width);
    return FALSE;
  }
  if ((v = easel_json_get (hint, "num_attention_heads"))) {
    if (!easel_json_int64 (v, &n) || n < 1 || n > c->width) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: text encoder config: bad num_attention_heads",
                   clip->path);
      return FALSE;
    }
    c->heads = (int)n;
  }
  if ((v = easel_json_get (hint, "num_hidden_layers"))) {
    if (!easel_json_int64 (v, &n) || n < 1 || n > c->n_layers) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                   "%s: text encoder config asks for num_hidden_layers beyond the %d layers under '%s'", clip->path,
                   c->n_layers, clip->prefix);
      return FALSE;
    }
    c->n_layers = (int)n; /* a 24-layer OpenCLIP-H file read as diffusers' 23-layer SD 2.x encoder */
  }
  if ((v = easel_json_get (hint, "layer_norm_eps"))) {
    double eps;
    if (!easel_json_double (v, &eps) || !(eps > 0 && eps < 1)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: text encoder config: bad layer_norm_eps",
                   clip->path);
      return FALSE;
    }
    c->eps = (float)eps;
  }
  if ((v = easel_json_get (hint, "hidden_act"))) {
    const char *act = easel_json_string (v, NULL);
    if (g_strcmp0 (act, "quick_gelu") == 0) {
      c->act = EASEL_UNARY_QUICK_GELU;
    } else if (g_strcmp0 (act, "gelu") == 0) {
      c->act = EASEL_UNARY_GELU;
    } else if (g_strcmp0 (act, "gelu_new") == 0 || g_strcmp0 (act, "gelu_pytorch_tanh") == 0) {
      c->act = EASEL_UNARY_GELU_TANH;
    } else {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED,
                   "%s: text encoder config: hidden_act '%s' is not supported", clip->path,
                   act ? act : "(not a string)");
      return FALSE;
    }
  }
  return TRUE;
}

/* The config part of an encoder prefix: the second encoder (SDXL's OpenCLIP bigG, the refiner's only
 * one) is "text_encoder_2", as diffusers names it. */
static const char *
config_part (const char *prefix)
{
  if (g_str_has_prefix (prefix, "text_encoder_2/") || g_str_has_prefix (prefix, "conditioner.embedders.1.")
      || g_str_has_prefix (prefix, "conditioner.embedders.0.model."))
    return "text_encoder_2";
  return "text_encoder";
}

EaselClip *
easel_clip_new (const EaselCheckpoint *ck, const char *prefix, const EaselJson *hint, GError **error)
{
  g_autoptr (EaselClip) clip = g_new0 (EaselClip, 1);
  EaselClipConfig *c = &clip->cfg;
  const gint64 any2[2] = { -1, -1 };

  g_return_val_if_fail (ck != NULL && prefix != NULL, NULL);
  if (hint == NULL)   /* a diffusers folder's or a make-model file's own config */
    hint = easel_checkpoint_config (ck, config_part (prefix));
  clip->prefix = g_strdup (prefix);
  clip->path = g_strdup (easel_checkpoint_path (ck));
  if (!naming_of (ck, prefix, &c->naming)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no CLIP text encoder under '%s'", clip->path, prefix);
    return NULL;
  }
  clip->weights = easel_weights_new (ck, prefix, rename_key, (gpointer)&namings[c->naming], error);
  if (clip->weights == NULL)
    return NULL;

  clip->tok_emb = easel_weights_require (clip->weights, "token_embedding", 2, any2, error);
  if (clip->tok_emb == NULL)
    return NULL;
  c->vocab = clip->tok_emb->shape[0];
  c->width = clip->tok_emb->shape[1];
  const gint64 pos_shape[2] = { -1, c->width }, vec[1] = { c->width };
  if (!(clip->pos_emb = easel_weights_require (clip->weights, "position_embedding", 2, pos_shape, error))
      || !(clip->final_w = easel_weights_require (clip->weights, "final_ln.weight", 1, vec, error)))
    return NULL;
  if (easel_weights_has (clip->weights, "final_ln.bias")
      && !(clip->final_b = easel_weights_require (clip->weights, "final_ln.bias", 1, vec, error)))
    return NULL;
  c->n_positions = clip->pos_emb->shape[0];
  if (c->vocab < 1 || c->width < 1 || c->n_positions < 1) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: empty text encoder embeddings under '%s'",
                 clip->path, prefix);
    return NULL;
  }

  if (easel_weights_has (clip->weights, "projection")) {
    const gint64 shape[2] = { -1, c->width };
    if (!(clip->proj = easel_weights_require (clip->weights, "projection", 2, shape, error)))
      return NULL;
    c->projection = clip->proj->shape[0];
  } else if (easel_weights_has (clip->weights, "projection_t")) {
    const gint64 shape[2] = { c->width, -1 };
    if (!(clip->proj_t = easel_weights_require (clip->weights, "projection_t", 2, shape, error)))
      return NULL;
    c->projection = clip->proj_t->shape[1];
  }

  while (c->n_layers < EASEL_CLIP_MAX_LAYERS) {
    g_autofree char *name = g_strdup_printf ("layers.%d.ln1.weight", c->n_layers);
    if (!easel_weights_has (clip->weights, name))
      break;
    c->n_layers++;
  }
  if (c->n_layers == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: text encoder under '%s' has no layers", clip->path,
                 prefix);
    return NULL;
  }
  {
    g_autofree char *extra = g_strdup_printf ("layers.%d.ln1.weight", c->n_layers);
    if (easel_weights_has (clip->weights, extra)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "%s: text encoder under '%s' has more than %d layers",
                   clip->path, prefix, EASEL_CLIP_MAX_LAYERS);
      return NULL;
    }
  }
  c->fused_qkv = easel_weights_has (clip->weights, "layers.0.attn.qkv.weight");
  const EaselStTensor *fc1 = easel_weights_require (clip->weights, "layers.0.fc1.weight", 2, any2, error);
  if (fc1 == NULL)
    return NULL;
  c->ff_width = fc1->shape[0];

  /* conventions of the real models, then the hint */
  c->heads = c->width % 64 == 0 ? (int)(c->width / 64) : 0;
  c->eps = 1e-5f;
  c->act = c->naming == EASEL_CLIP_NAMING_OPENCLIP || c->width == 1024 || c->width == 1280 ? EASEL_UNARY_GELU
                                                                                           : EASEL_UNARY_QUICK_GELU;
  if (hint != NULL && !apply_hint (clip, hint, error))
    return NULL;
  if (c->heads < 1 || c->width % c->heads != 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED,
                 "%s: cannot tell the attention heads of the %" G_GINT64_FORMAT "-wide text encoder under '%s' "
                 "(no head width 64); give its config.json",
                 clip->path, c->width, prefix);
    return NULL;
  }

  clip->layers = g_new0 (Layer, c->n_layers);
  clip->targets = g_ptr_array_new_with_free_func (easel_patch_target_free);
  for (int i = 0; i < c->n_layers; i++) {
    if (!bind_layer (clip, i, error))
      return NULL;
    add_layer_targets (clip, i);
  }
  return g_steal_pointer (&clip);
}

/* --- finding the encoders ----------------------------------------------------------------------- */

char *
easel_clip_find_prefix (const EaselCheckpoint *ck, guint index, GError **error)
{
  const EaselDetection *det = easel_checkpoint_detection (ck);
  EaselClipNaming naming;

  if (easel_checkpoint_format (ck) == EASEL_CHECKPOINT_DIFFUSERS) {
    g_autofree char *prefix = index == 0 ? g_strdup ("text_encoder/") : g_strdup_printf ("text_encoder_%u/", index + 1);
    if (naming_of (ck, prefix, &naming))
      return g_steal_pointer (&prefix);
  } else {
    /* the refiner has only SDXL's second encoder */
    guint first = det->family == EASEL_FAMILY_SDXL_REFINER ? 1 : 0;
    if (index >= first && index - first < (guint)det->n_text_encoders)
      return g_strdup (det->text_encoders[index - first].prefix);
  }
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no text encoder %u", easel_checkpoint_path (ck),
               index + 1);
  return NULL;
}

/* --- forward ------------------------------------------------------------------------------------ */

#define W(st) easel_graph_weight_st (g, (st))

void
easel_clip_eos_positions (const gint32 *ids, gint64 batch, gint64 len, gint64 *eos)
{
  for (gint64 b = 0; b < batch; b++) {
    const gint32 *row = ids + b * len;
    gint64 best = 0;
    for (gint64 i = 1; i < len; i++)
      if (row[i] > row[best])
        best = i;
    eos[b] = best;
  }
}

EaselTensor *
easel_clip_final_norm (EaselClip *clip, EaselGraph *g, EaselTensor *x)
{
  return easel_op_layer_norm (g, x, W (clip->final_w), W (clip->final_b), clip->cfg.eps);
}

/* Causal self-attention of one layer: h (B, L, C) -> (B, L, C), after out_proj. q, k, v are strided
 * views of one (B, L, 3C) projection where the checkpoint stores them fused. */
static EaselTensor *
self_attention (EaselClip *clip, EaselGraph *g, const Layer *l, EaselTensor *h)
{
  gint64 C = clip->cfg.width;
  EaselTensor *q, *k, *v;

  if (clip->cfg.fused_qkv) {
    EaselTensor *qkv = easel_patch_linear (g, h, W (l->qkv_w), W (l->qkv_b), l->qkv_lr);
    q = easel_op_slice (g, qkv, 2, 0, C);
    k = easel_op_slice (g, qkv, 2, C, C);
    v = easel_op_slice (g, qkv, 2, 2 * C, C);
  } else {
    q = easel_patch_linear (g, h, W (l->q_w), W (l->q_b), l->q_lr);
    k = easel_patch_linear (g, h, W (l->k_w), W (l->k_b), l->k_lr);
    v = easel_patch_linear (g, h, W (l->v_w), W (l->v_b), l->v_lr);
  }
  float scale = 1.0f / sqrtf ((float)(C / clip->cfg.heads));
  EaselTensor *a = easel_op_attention (g, q, k, v, clip->cfg.heads, scale, TRUE);
  return easel_patch_linear (g, a, W (l->out_w), W (l->out_b), l->out_lr);
}

/* One pre-LN transformer layer: x (B, L, C) -> (B, L, C). */
static EaselTensor *
layer_forward (EaselClip *clip, EaselGraph *g, const Layer *l, EaselTensor *x)
{
  float eps = clip->cfg.eps;
  x = easel_op_add (g, x, self_attention (clip, g, l, easel_op_layer_norm (g, x, W (l->ln1_w), W (l->ln1_b), eps)));
  EaselTensor *n = easel_op_layer_norm (g, x, W (l->ln2_w), W (l->ln2_b), eps);
  EaselTensor *h = easel_patch_linear (g, n, W (l->fc1_w), W (l->fc1_b), l->fc1_lr);
  h = easel_patch_linear (g, easel_op_unary (g, clip->cfg.act, h), W (l->fc2_w), W (l->fc2_b), l->fc2_lr);
  return easel_op_add (g, x, h);
}

/* Rows x[b, eos[b], :] of x (B, L, C) -> (B, C). */
static EaselTensor *
gather_rows (EaselGraph *g, EaselTensor *x, const gint64 *eos, gint64 batch)
{
  EaselTensor *out = NULL;
  for (gint64 b = 0; b < batch; b++) {
    EaselTensor *r = easel_op_slice (g, easel_op_slice (g, x, 0, b, 1), 1, eos[b], 1);
    out = out ? easel_op_concat (g, out, r, 0) : easel_op_contiguous (g, r);
  }
  const gint64 shape[2] = { batch, x->shape[2] };
  return easel_op_reshape (g, out, 2, shape);
}

gboolean
easel_clip_build (EaselClip *clip, EaselGraph *g, const gint32 *ids, gint64 batch, gint64 len,
                  const EaselClipRequest *req, EaselClipOutputs *out, GError **error)
{
  const EaselClipConfig *c = &clip->cfg;

  memset (out, 0, sizeof *out);
  if (batch < 1 || len < 1 || len > c->n_positions) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "text encoder: %" G_GINT64_FORMAT " prompts of %" G_GINT64_FORMAT " tokens (1 to %" G_GINT64_FORMAT
                 " tokens per row)",
                 batch, len, c->n_positions);
    return FALSE;
  }
  if (req->skip < 0 || req->skip > c->n_layers) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "text encoder: cannot skip %d of %d layers", req->skip,
                 c->n_layers);
    return FALSE;
  }
  if (req->text_embeds && c->projection == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "text encoder under '%s' has no text_projection",
                 clip->prefix);
    return FALSE;
  }
  gboolean uses_extra = FALSE;
  for (gint64 i = 0; i < batch * len; i++) {
    uses_extra |= ids[i] >= c->vocab;
    if (ids[i] < 0 || ids[i] >= c->vocab + clip->n_extra) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                   "text encoder: token id %d (prompt %" G_GINT64_FORMAT ", position %" G_GINT64_FORMAT
                   ") is outside the vocabulary of %" G_GINT64_FORMAT,
                   ids[i], i / len, i % len, c->vocab);
      return FALSE;
    }
  }

  gboolean want_pooled = req->pooled || req->text_embeds;
  int run = want_pooled ? c->n_layers : c->n_layers - req->skip;
  const gint64 ids_shape[2] = { batch, len };
  EaselTensor *pos = easel_op_slice (g, W (clip->pos_emb), 0, 0, len);
  EaselTensor *tok;
  if (uses_extra) {
    const gint64 e_shape[3] = { batch, len, c->width };
    tok = easel_graph_input (g, "token_embeddings", EASEL_DTYPE_F32, 3, e_shape, embed_on_host (clip, ids, batch * len));
  } else {
    tok = easel_op_get_rows (g, W (clip->tok_emb), easel_graph_input (g, "input_ids", EASEL_DTYPE_I32, 2, ids_shape, ids));
  }
  EaselTensor *x = easel_op_add (g, tok, pos);

  out->hidden_states[0] = x;
  for (int i = 0; i < run; i++)
    out->hidden_states[i + 1] = x = layer_forward (clip, g, &clip->layers[i], x);
  out->n_states = run + 1;

  EaselTensor *h = out->hidden_states[c->n_layers - req->skip];
  out->hidden = req->final_ln ? easel_clip_final_norm (clip, g, h) : h;
  easel_graph_mark_output (g, out->hidden);
  if (want_pooled) {
    g_autofree gint64 *eos = g_new (gint64, batch);
    g_autofree gint32 *plain = NULL;
    if (uses_extra) {
      /* embedding rows count as id 0 for pooling, as A1111's placeholder tokens do */
      plain = g_new (gint32, batch * len);
      for (gint64 i = 0; i < batch * len; i++)
        plain[i] = ids[i] >= c->vocab ? 0 : ids[i];
    }
    easel_clip_eos_positions (plain ? plain : ids, batch, len, eos);
    EaselTensor *last = req->final_ln && req->skip == 0 ? out->hidden : easel_clip_final_norm (clip, g, x);
    out->pooled = gather_rows (g, last, eos, batch);
    easel_graph_mark_output (g, out->pooled);
    if (req->text_embeds) {
      EaselTensor *w = clip->proj ? W (clip->proj) : NULL;
      if (w == NULL) {
        const int axes[2] = { 1, 0 };
        w = easel_op_contiguous (g, easel_op_permute (g, W (clip->proj_t), axes)); /* [C, P] -> [P, C] */
      }
      out->text_embeds = easel_op_linear (g, out->pooled, w, NULL);
      easel_graph_mark_output (g, out->text_embeds);
    }
  }
  if (easel_graph_error (g)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: text encoder under '%s': %s", clip->path,
                 clip->prefix, easel_graph_error (g)->message);
    return FALSE;
  }
  return TRUE;
}

gboolean
easel_clip_encode (EaselClip *clip, EaselBackend *backend, const gint32 *ids, gint64 batch, gint64 len,
                   const EaselClipRequest *req, float *hidden, float *pooled, float *text_embeds, GError **error)
{
  g_autoptr (EaselGraph) g = easel_graph_new ();
  EaselClipOutputs out;

  g_return_val_if_fail ((pooled != NULL) == (req->pooled != FALSE), FALSE);
  g_return_val_if_fail ((text_embeds != NULL) == (req->text_embeds != FALSE), FALSE);
  if (!easel_clip_build (clip, g, ids, batch, len, req, &out, error) || !easel_backend_compute (backend, g, error))
    return FALSE;
  if (!easel_backend_read (backend, out.hidden, hidden, error))
    return FALSE;
  if (pooled && !easel_backend_read (backend, out.pooled, pooled, error))
    return FALSE;
  if (text_embeds && !easel_backend_read (backend, out.text_embeds, text_embeds, error))
    return FALSE;
  return TRUE;
}

GPtrArray *
easel_clip_unused (const EaselClip *clip)
{
  return easel_weights_unused (clip->weights);
}
