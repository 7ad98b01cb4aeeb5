/* engine/lora.c: LoRA / LyCORIS files, matching their modules to a model's patch targets
 * (patch.h), merging into F32 copies, and the A1111 prompt and command-line references (lora.h).
 * The key forms and merge rules follow kohya-ss sd-scripts (networks/lora.py), LyCORIS
 * (lycoris/modules/{locon,loha,lokr}.py), A1111's extensions-builtin/Lora and ComfyUI's comfy/lora.py. */
#include "lora.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/blas.h"
#include "error.h"
#include "patch.h"

/* --- reading ----------------------------------------------------------------------------------- */

typedef enum {
  P_DOWN, P_UP, P_MID, P_ALPHA,
  P_HADA_W1A, P_HADA_W1B, P_HADA_W2A, P_HADA_W2B, P_HADA_T1, P_HADA_T2,
  P_LOKR_W1, P_LOKR_W1A, P_LOKR_W1B, P_LOKR_W2, P_LOKR_W2A, P_LOKR_W2B, P_LOKR_T2,
  P_DORA, P_DIFF, P_DIFF_B,
  P_COUNT
} Part;

/* The last parts of a key and what they hold; longer suffixes first where one ends another. */
static const struct {
  const char *suffix;
  Part part;
} parts[] = {
  { ".lora_down.weight", P_DOWN }, { ".lora_up.weight", P_UP },   { ".lora_mid.weight", P_MID },
  { ".lora_A.weight", P_DOWN },    { ".lora_B.weight", P_UP },    { ".lora.down.weight", P_DOWN },
  { ".lora.up.weight", P_UP },     { ".alpha", P_ALPHA },
  { ".hada_w1_a", P_HADA_W1A },    { ".hada_w1_b", P_HADA_W1B },  { ".hada_w2_a", P_HADA_W2A },
  { ".hada_w2_b", P_HADA_W2B },    { ".hada_t1", P_HADA_T1 },     { ".hada_t2", P_HADA_T2 },
  { ".lokr_w1_a", P_LOKR_W1A },    { ".lokr_w1_b", P_LOKR_W1B },  { ".lokr_w1", P_LOKR_W1 },
  { ".lokr_w2_a", P_LOKR_W2A },    { ".lokr_w2_b", P_LOKR_W2B },  { ".lokr_w2", P_LOKR_W2 },
  { ".lokr_t2", P_LOKR_T2 },       { ".dora_scale", P_DORA },     { ".diff_b", P_DIFF_B },
  { ".diff", P_DIFF },
};

/* Where a key's stem points: leading parts -> network; the rest (or, with keep, the whole stem) is
 * the module path. */
static const struct {
  const char *prefix;
  EaselLoraNet net;
  gboolean keep;
} stems[] = {
  { "lora_unet_", EASEL_LORA_NET_UNET, FALSE },        { "lora_te1_", EASEL_LORA_NET_TE1, FALSE },
  { "lora_te2_", EASEL_LORA_NET_TE2, FALSE },          { "lora_te_", EASEL_LORA_NET_TE1, FALSE },
  { "unet.", EASEL_LORA_NET_UNET, FALSE },             { "text_encoder_2.", EASEL_LORA_NET_TE2, FALSE },
  { "text_encoder.", EASEL_LORA_NET_TE1, FALSE },      { "base_model.model.", EASEL_LORA_NET_UNET, FALSE },
  { "text_model.", EASEL_LORA_NET_TE1, TRUE },         { "down_blocks.", EASEL_LORA_NET_UNET, TRUE },
  { "up_blocks.", EASEL_LORA_NET_UNET, TRUE },         { "mid_block.", EASEL_LORA_NET_UNET, TRUE },
};

typedef struct {
  char *stem;                 /* the key without its part, as in the file */
  EaselLoraNet net;           /* EASEL_LORA_NET_COUNT: no network of ours */
  char *match;                /* module path with '_' for '.', for matching (kohya form) */
  EaselLoraKind kind;
  const EaselStTensor *t[P_COUNT];
  float alpha;                /* <= 0 when absent */
  gint64 rows, cols;          /* the delta as a matrix */
  gint64 rank;                /* the rank alpha divides by (0: scale 1) */
} Module;

struct _EaselLora {
  gint ref_count;
  char *path, *name;
  char *hash;
  EaselSafetensors *st;
  GArray *modules;            /* Module */
  GHashTable *by_stem;        /* stem -> index + 1 */
  GPtrArray *unknown;         /* keys of no known part (char *, owned) */
};

static void
module_clear (gpointer data)
{
  Module *m = data;
  g_free (m->stem);
  g_free (m->match);
}

static gboolean
lora_fail (GError **error, const EaselLora *lora, const char *stem, const char *format, ...) G_GNUC_PRINTF (4, 5);

static gboolean
lora_fail (GError **error, const EaselLora *lora, const char *stem, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: LoRA module '%s': %s", lora->path, stem, msg);
  return FALSE;
}

static gint64
numel (const EaselStTensor *t)
{
  return (gint64) t->n_elements;
}

/* t must be a float matrix [rows, cols] or conv kernel [rows, in, kh, kw] (cols = in · kh · kw). */
static gboolean
as_matrix (const EaselLora *lora, const Module *m, const EaselStTensor *t, gint64 *rows, gint64 *cols, GError **error)
{
  if (!easel_dtype_info (t->dtype)->is_float || (t->n_dims != 2 && t->n_dims != 4) || t->shape[0] < 1
      || numel (t) < 1) {
    char buf[96];
    return lora_fail (error, lora, m->stem, "'%s' is %s %s, not a float matrix or conv kernel", t->name,
                      easel_dtype_name (t->dtype), easel_st_shape_str (t, buf, sizeof buf));
  }
  *rows = t->shape[0];
  *cols = numel (t) / t->shape[0];
  return TRUE;
}

/* Checks the tensors a module's kind needs and their shapes; sets rows, cols, rank. */
static gboolean
check_module (const EaselLora *lora, Module *m, GError **error)
{
  const EaselStTensor *const *t = m->t;
  gint64 r1, c1, r2, c2, r3, c3, r4, c4;

  if (t[P_MID] || t[P_HADA_T1] || t[P_HADA_T2] || t[P_LOKR_T2])
    return lora_fail (error, lora, m->stem, "Tucker-decomposed (CP) modules are not supported");
  if (t[P_DORA])
    return lora_fail (error, lora, m->stem, "DoRA (dora_scale) modules are not supported");
  if (t[P_DIFF] || t[P_DIFF_B])
    return lora_fail (error, lora, m->stem, "full-weight difference modules are not supported");
  if (t[P_ALPHA]) {
    float a = 0;
    if (numel (t[P_ALPHA]) != 1 || !easel_dtype_info (t[P_ALPHA]->dtype)->is_float)
      return lora_fail (error, lora, m->stem, "alpha is not one float");
    easel_dtype_to_f32 (t[P_ALPHA]->dtype, t[P_ALPHA]->data, &a, 1);
    if (!isfinite (a))
      return lora_fail (error, lora, m->stem, "alpha is not finite");
    m->alpha = a;
  }

  if (t[P_DOWN] || t[P_UP]) {
    m->kind = EASEL_LORA_KIND_LORA;
    if (!t[P_DOWN] || !t[P_UP])
      return lora_fail (error, lora, m->stem, "has lora_%s but no lora_%s", t[P_DOWN] ? "down" : "up",
                        t[P_DOWN] ? "up" : "down");
    if (!as_matrix (lora, m, t[P_DOWN], &r1, &c1, error) || !as_matrix (lora, m, t[P_UP], &r2, &c2, error))
      return FALSE;
    if (c2 != r1)
      return lora_fail (error, lora, m->stem, "lora_up has %" G_GINT64_FORMAT " columns for rank %" G_GINT64_FORMAT,
                        c2, r1);
    m->rows = r2;
    m->cols = c1;
    m->rank = r1;
  } else if (t[P_HADA_W1A] || t[P_HADA_W1B] || t[P_HADA_W2A] || t[P_HADA_W2B]) {
    m->kind = EASEL_LORA_KIND_LOHA;
    if (!t[P_HADA_W1A] || !t[P_HADA_W1B] || !t[P_HADA_W2A] || !t[P_HADA_W2B])
      return lora_fail (error, lora, m->stem, "LoHa needs hada_w1_a, hada_w1_b, hada_w2_a and hada_w2_b");
    if (!as_matrix (lora, m, t[P_HADA_W1A], &r1, &c1, error) || !as_matrix (lora, m, t[P_HADA_W1B], &r2, &c2, error)
        || !as_matrix (lora, m, t[P_HADA_W2A], &r3, &c3, error) || !as_matrix (lora, m, t[P_HADA_W2B], &r4, &c4, error))
      return FALSE;
    if (c1 != r2 || c3 != r4 || r1 != r3 || c2 != c4)
      return lora_fail (error, lora, m->stem, "LoHa factors do not fit: w1 [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                        "] @ [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "], w2 [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                        "] @ [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]", r1, c1, r2, c2, r3, c3, r4, c4);
    m->rows = r1;
    m->cols = c2;
    m->rank = r2;
  } else if (t[P_LOKR_W1] || t[P_LOKR_W1A] || t[P_LOKR_W1B] || t[P_LOKR_W2] || t[P_LOKR_W2A] || t[P_LOKR_W2B]) {
    gint64 a, b, c, d;
    m->kind = EASEL_LORA_KIND_LOKR;
    if (!(t[P_LOKR_W1] || (t[P_LOKR_W1A] && t[P_LOKR_W1B])) || !(t[P_LOKR_W2] || (t[P_LOKR_W2A] && t[P_LOKR_W2B])))
      return lora_fail (error, lora, m->stem, "LoKr needs lokr_w1 (or lokr_w1_a and _b) and lokr_w2 (or lokr_w2_a and _b)");
    if (t[P_LOKR_W1]) {
      if (!as_matrix (lora, m, t[P_LOKR_W1], &a, &b, error))
        return FALSE;
    } else {
      if (!as_matrix (lora, m, t[P_LOKR_W1A], &a, &c1, error) || !as_matrix (lora, m, t[P_LOKR_W1B], &r2, &b, error))
        return FALSE;
      if (c1 != r2)
        return lora_fail (error, lora, m->stem, "lokr_w1_a and lokr_w1_b do not fit");
      m->rank = r2;
    }
    if (t[P_LOKR_W2]) {
      if (!as_matrix (lora, m, t[P_LOKR_W2], &c, &d, error))
        return FALSE;
    } else {
      if (!as_matrix (lora, m, t[P_LOKR_W2A], &c, &c1, error) || !as_matrix (lora, m, t[P_LOKR_W2B], &r2, &d, error))
        return FALSE;
      if (c1 != r2)
        return lora_fail (error, lora, m->stem, "lokr_w2_a and lokr_w2_b do not fit");
      m->rank = r2;   /* w2's rank wins, as in LyCORIS */
    }
    if (a > G_MAXINT32 || b > G_MAXINT32 || c > G_MAXINT32 || d > G_MAXINT32)
      return lora_fail (error, lora, m->stem, "LoKr factors too large");
    m->rows = a * c;
    m->cols = b * d;
  } else {
    return lora_fail (error, lora, m->stem, "has only an alpha");
  }
  if (m->rows > (1 << 20) || m->cols > (1 << 24) || m->rank > (1 << 16))
    return lora_fail (error, lora, m->stem, "implausibly large (%" G_GINT64_FORMAT " x %" G_GINT64_FORMAT ")", m->rows,
                      m->cols);
  return TRUE;
}

/* The network and module path of m's stem; other models' LoRAs (Flux, SD3 "transformer.") get none. */
static void
set_target (Module *m)
{
  const char *rest = m->stem;
  m->net = EASEL_LORA_NET_COUNT;
  for (guint i = 0; i < G_N_ELEMENTS (stems); i++)
    if (g_str_has_prefix (m->stem, stems[i].prefix)) {
      m->net = stems[i].net;
      rest = stems[i].keep ? m->stem : m->stem + strlen (stems[i].prefix);
      break;
    }
  m->match = g_strdelimit (g_strdup (rest), ".", '_');
}

EaselLora *
easel_lora_new_from_safetensors (EaselSafetensors *st, GError **error)
{
  g_autoptr(EaselLora) lora = g_new0 (EaselLora, 1);

  lora->ref_count = 1;
  lora->st = st;
  lora->path = g_strdup (easel_safetensors_path (st));
  g_autofree char *base = g_path_get_basename (lora->path);
  char *dot = strrchr (base, '.');
  lora->name = dot && dot != base ? g_strndup (base, dot - base) : g_strdup (base);
  lora->modules = g_array_new (FALSE, TRUE, sizeof (Module));
  g_array_set_clear_func (lora->modules, module_clear);
  lora->by_stem = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, NULL);
  lora->unknown = g_ptr_array_new_with_free_func (g_free);

  for (gsize i = 0; i < easel_safetensors_n_tensors (st); i++) {
    const EaselStTensor *t = easel_safetensors_tensor (st, i);
    gsize len = strlen (t->name), slen = 0;
    int part = -1;
    for (guint p = 0; p < G_N_ELEMENTS (parts); p++) {
      slen = strlen (parts[p].suffix);
      if (len > slen && strcmp (t->name + len - slen, parts[p].suffix) == 0) {
        part = parts[p].part;
        break;
      }
    }
    if (part < 0) {
      g_ptr_array_add (lora->unknown, g_strdup (t->name));
      continue;
    }
    g_autofree char *stem = g_strndup (t->name, len - slen);
    gsize idx = GPOINTER_TO_SIZE (g_hash_table_lookup (lora->by_stem, stem));
    if (idx == 0) {
      Module m = { .stem = g_steal_pointer (&stem), .alpha = -1 };
      g_array_append_val (lora->modules, m);
      idx = lora->modules->len;
      g_hash_table_insert (lora->by_stem, g_array_index (lora->modules, Module, idx - 1).stem, GSIZE_TO_POINTER (idx));
    }
    Module *m = &g_array_index (lora->modules, Module, idx - 1);
    if (m->t[part]) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: '%s' and '%s' are the same LoRA tensor",
                   lora->path, m->t[part]->name, t->name);
      return NULL;
    }
    m->t[part] = t;
  }
  for (guint i = 0; i < lora->modules->len; i++) {
    Module *m = &g_array_index (lora->modules, Module, i);
    if (!check_module (lora, m, error))
      return NULL;
    set_target (m);
  }
  if (lora->modules->len == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                 "%s: no LoRA modules (no lora_down/lora_up, lora_A/lora_B, hada_ or lokr_ tensors)", lora->path);
    return NULL;
  }
  return g_steal_pointer (&lora);
}

EaselLora *
easel_lora_open (const char *path, GError **error)
{
  EaselSafetensors *st;
  if (g_str_has_suffix (path, ".pt") || g_str_has_suffix (path, ".ckpt")) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "%s: LoRAs are read from .safetensors files only", path);
    return NULL;
  }
  if ((st = easel_safetensors_open (path, error)) == NULL)
    return NULL;
  return easel_lora_new_from_safetensors (st, error);
}

EaselLora *
easel_lora_ref (EaselLora *lora)
{
  g_atomic_int_inc (&lora->ref_count);
  return lora;
}

void
easel_lora_unref (EaselLora *lora)
{
  if (lora == NULL || !g_atomic_int_dec_and_test (&lora->ref_count))
    return;
  if (lora->modules)
    g_array_unref (lora->modules);
  if (lora->by_stem)
    g_hash_table_unref (lora->by_stem);
  if (lora->unknown)
    g_ptr_array_unref (lora->unknown);
  easel_safetensors_free (lora->st);
  g_free (lora->path);
  g_free (lora->name);
  g_free (lora->hash);
  g_free (lora);
}

const char *
easel_lora_path (const EaselLora *lora)
{
  return lora->path;
}

const char *
easel_lora_name (const EaselLora *lora)
{
  return lora->name;
}

gsize
easel_lora_n_modules (const EaselLora *lora)
{
  return lora->modules->len;
}

gsize
easel_lora_n_modules_for (const EaselLora *lora, EaselLoraNet net)
{
  gsize n = 0;
  for (guint i = 0; i < lora->modules->len; i++)
    n += g_array_index (lora->modules, Module, i).net == net;
  return n;
}

gssize
easel_lora_find_module (const EaselLora *lora, const char *stem)
{
  return (gssize) GPOINTER_TO_SIZE (g_hash_table_lookup (lora->by_stem, stem)) - 1;
}

EaselLoraKind
easel_lora_module_kind (const EaselLora *lora, gsize i)
{
  return g_array_index (lora->modules, Module, i).kind;
}

/* A1111's addnet hash: SHA-256 of everything after the 8-byte length and the JSON header. */
const char *
easel_lora_hash (EaselLora *lora)
{
  if (lora->hash)
    return lora->hash;
  g_autoptr(GMappedFile) mf = g_mapped_file_new (lora->path, FALSE, NULL);
  const guint8 *p = mf ? (const guint8 *) g_mapped_file_get_contents (mf) : NULL;
  gsize len = mf ? g_mapped_file_get_length (mf) : 0;
  guint64 n = 0;
  if (p == NULL || len < 8)
    return NULL;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | p[i];
  if (n > len - 8)
    return NULL;
  lora->hash = g_compute_checksum_for_data (G_CHECKSUM_SHA256, p + 8 + n, len - 8 - n);
  return lora->hash;
}

char *
easel_lora_short_hash (EaselLora *lora)
{
  const char *h = easel_lora_hash (lora);
  return h ? g_strndup (h, 12) : NULL;
}

/* --- the delta of one module ------------------------------------------------------------------- */

/* A module tensor as F32 [rows, numel / rows]. */
static float *
f32 (const EaselStTensor *t)
{
  return t ? easel_st_tensor_to_f32 (t) : NULL;
}

/* c (m, n) = a (m, k) @ b (k, n), all dense row-major. */
static void
matmul (float *c, const float *a, const float *b, gint64 m, gint64 k, gint64 n)
{
  easel_cpu_blas_init ();
  easel_cpu_sgemm (FALSE, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
}

/* A factor that is stored whole (w) or as wa @ wb: -> (rows, cols). transfer full. */
static float *
factor (const EaselStTensor *w, const EaselStTensor *wa, const EaselStTensor *wb, gint64 *rows, gint64 *cols)
{
  if (w) {
    *rows = w->shape[0];
    *cols = numel (w) / w->shape[0];
    return f32 (w);
  }
  g_autofree float *a = f32 (wa), *b = f32 (wb);
  gint64 k = wb->shape[0];
  *rows = wa->shape[0];
  *cols = numel (wb) / k;
  float *out = g_try_new (float, *rows * *cols);
  if (out)
    matmul (out, a, b, *rows, k, *cols);
  return out;
}

gboolean
easel_lora_module_delta (const EaselLora *lora, gsize i, gint64 rows, gint64 cols, float *delta, GError **error)
{
  const Module *m = &g_array_index (lora->modules, Module, i);
  const EaselStTensor *const *t = m->t;
  float scale = m->rank > 0 && m->alpha > 0 ? m->alpha / (float) m->rank : 1.0f;

  g_return_val_if_fail (i < lora->modules->len, FALSE);
  if (rows != m->rows || cols != m->cols) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s: LoRA module '%s' makes [%" G_GINT64_FORMAT
                 ", %" G_GINT64_FORMAT "], not [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]", lora->path, m->stem,
                 m->rows, m->cols, rows, cols);
    return FALSE;
  }
  switch (m->kind) {
  case EASEL_LORA_KIND_LORA: {
    g_autofree float *down = f32 (t[P_DOWN]), *up = f32 (t[P_UP]);
    matmul (delta, up, down, rows, m->rank, cols);
    break;
  }
  case EASEL_LORA_KIND_LOHA: {
    g_autofree float *w1a = f32 (t[P_HADA_W1A]), *w1b = f32 (t[P_HADA_W1B]);
    g_autofree float *w2a = f32 (t[P_HADA_W2A]), *w2b = f32 (t[P_HADA_W2B]);
    g_autofree float *p2 = g_try_new (float, rows * cols);
    if (p2 == NULL)
      goto oom;
    matmul (delta, w1a, w1b, rows, t[P_HADA_W1B]->shape[0], cols);
    matmul (p2, w2a, w2b, rows, t[P_HADA_W2B]->shape[0], cols);
    for (gint64 k = 0; k < rows * cols; k++)
      delta[k] *= p2[k];
    break;
  }
  case EASEL_LORA_KIND_LOKR: {
    gint64 a, b, c, d;
    g_autofree float *w1 = factor (t[P_LOKR_W1], t[P_LOKR_W1A], t[P_LOKR_W1B], &a, &b);
    g_autofree float *w2 = factor (t[P_LOKR_W2], t[P_LOKR_W2A], t[P_LOKR_W2B], &c, &d);
    if (w1 == NULL || w2 == NULL)
      goto oom;
    /* kron: delta[o1·c + o2, i1·d + j] = w1[o1, i1] · w2[o2, j] (a conv w2 flattened to [c, in2·kh·kw]) */
    for (gint64 o1 = 0; o1 < a; o1++)
      for (gint64 o2 = 0; o2 < c; o2++) {
        float *row = delta + (o1 * c + o2) * cols;
        for (gint64 i1 = 0; i1 < b; i1++) {
          float s = w1[o1 * b + i1];
          for (gint64 j = 0; j < d; j++)
            row[i1 * d + j] = s * w2[o2 * d + j];
        }
      }
    break;
  }
  }
  for (gint64 k = 0; k < rows * cols; k++)
    delta[k] *= scale;
  return TRUE;

oom:
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY, "%s: no memory to merge '%s'", lora->path, m->stem);
  return FALSE;
}

/* --- matching ---------------------------------------------------------------------------------- */

/* A UNet module path of ldm naming in kohya form ("input_blocks_4_1_transformer_blocks_0_attn1_to_q",
 * "output_blocks_2_0_in_layers_2") -> the internal (diffusers) path in kohya form, or NULL. */
static char *
ldm_to_internal (const char *match, int n_res)
{
  static const char *const blocks[] = { "input_blocks", "middle_block", "output_blocks", "time_embed", "label_emb", "out" };
  static const char *const resnet[] = { "in_layers", "out_layers", "emb_layers" };
  g_autoptr(GString) key = g_string_new (NULL);
  const char *p = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (blocks) && p == NULL; i++)
    if (g_str_has_prefix (match, blocks[i]) && match[strlen (blocks[i])] == '_') {
      g_string_append (key, blocks[i]);
      p = match + strlen (blocks[i]);
    }
  if (p == NULL)
    return NULL;
  while (p[0] == '_' && g_ascii_isdigit (p[1])) {      /* the block's indexes */
    const char *q = p + 1;
    while (g_ascii_isdigit (*q))
      q++;
    g_string_append_c (key, '.');
    g_string_append_len (key, p + 1, q - p - 1);
    p = q;
  }
  g_string_append_c (key, '.');
  if (*p == '_')
    p++;
  for (guint i = 0; i < G_N_ELEMENTS (resnet); i++) {
    gsize l = strlen (resnet[i]);
    if (strncmp (p, resnet[i], l) == 0 && p[l] == '_' && g_ascii_isdigit (p[l + 1])) {
      g_string_append_len (key, p, l);
      g_string_append_c (key, '.');
      p += l + 1;
      break;
    }
  }
  g_string_append (key, p);
  if (*p != '\0')
    g_string_append_c (key, '.');
  g_string_append (key, "weight");
  char *internal = easel_unet_rename_original (key->str, n_res);
  if (internal == NULL || !g_str_has_suffix (internal, ".weight")) {
    g_free (internal);
    return NULL;
  }
  internal[strlen (internal) - strlen (".weight")] = '\0';
  return g_strdelimit (internal, ".", '_');
}

/* --- the stack --------------------------------------------------------------------------------- */

typedef struct {
  EaselLora *lora;
  guint module;
  EaselPatchTarget *target;
  float strength;
  gboolean runtime;           /* applied by a run-time adapter, not merged */
} Contribution;

typedef struct {
  gpointer slot;
  EaselPatchTarget *first;    /* any target of the slot: bind(), lowrank and the stored weight */
  GArray *contributions;      /* Contribution, in the order the set lists them */
  void *data;                 /* the merged copy (NULL: nothing merged, or not built yet) */
  EaselStTensor st;           /* describes data */
  float *lr_data;             /* the run-time adapters' down and up, one allocation (NULL: none) */
  EaselPatchLowRank lr;       /* describes lr_data */
} Patched;

static void
patched_free (gpointer data)
{
  Patched *p = data;
  if (p == NULL)
    return;
  g_array_unref (p->contributions);
  g_free (p->data);
  g_free (p->lr_data);
  g_free (p);
}

struct _EaselLoraStack {
  EaselUnet *unet;
  EaselClip *clips[2];
  GHashTable *targets[EASEL_LORA_NET_COUNT];    /* module path in kohya form -> EaselPatchTarget* */
  GHashTable *patched;                          /* slot -> Patched* */
  GPtrArray *loras;                             /* refs on the LoRAs of the current set */
  guint n_rebuilt;
  EaselLoraMode mode;
  gboolean merge_round;                         /* merged copies rounded to the file's dtype (else F32) */
};

gboolean
easel_lora_mode_parse (const char *text, EaselLoraMode *mode)
{
  if (text && g_ascii_strcasecmp (text, "merge") == 0)
    *mode = EASEL_LORA_MODE_MERGE;
  else if (text && g_ascii_strcasecmp (text, "runtime") == 0)
    *mode = EASEL_LORA_MODE_RUNTIME;
  else
    return FALSE;
  return TRUE;
}

const char *
easel_lora_mode_name (EaselLoraMode mode)
{
  return mode == EASEL_LORA_MODE_RUNTIME ? "runtime" : "merge";
}

EaselLoraMode
easel_lora_mode_default (const char *backend_name)
{
  EaselLoraMode mode;
  const char *env = g_getenv ("EASEL_LORA_MODE");
  if (env && *env && easel_lora_mode_parse (env, &mode))
    return mode;
  if (env && *env)
    g_warning ("EASEL_LORA_MODE=%s is neither merge nor runtime; ignored", env);
  /* docs/performance.md, LoRA: on the CPU a merge (seconds, once per change) costs less than the
   * adapters' few percent on every 12 s step; on Vulkan the merged copies are fp32 on the device
   * and re-uploaded at every change, while the adapters add a few percent to a 0.45 s step */
  if (g_strcmp0 (backend_name, "vulkan") == 0)
    return EASEL_LORA_MODE_RUNTIME;
  return EASEL_LORA_MODE_MERGE;
}

void
easel_lora_stack_set_mode (EaselLoraStack *s, EaselLoraMode mode)
{
  s->mode = mode;
}

EaselLoraMode
easel_lora_stack_get_mode (const EaselLoraStack *s)
{
  return s->mode;
}

void
easel_lora_stack_set_merge_round (EaselLoraStack *s, gboolean merge_round)
{
  s->merge_round = merge_round;
}

static void
index_targets (GHashTable *table, GPtrArray *targets)
{
  for (guint i = 0; targets && i < targets->len; i++) {
    EaselPatchTarget *t = targets->pdata[i];
    g_hash_table_insert (table, g_strdelimit (g_strdup (t->module), ".", '_'), t);
  }
}

EaselLoraStack *
easel_lora_stack_new (EaselUnet *unet, EaselClip *te1, EaselClip *te2)
{
  EaselLoraStack *s = g_new0 (EaselLoraStack, 1);
  s->unet = unet;
  s->clips[0] = te1;
  s->clips[1] = te2;
  for (int n = 0; n < EASEL_LORA_NET_COUNT; n++)
    s->targets[n] = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (unet)
    index_targets (s->targets[EASEL_LORA_NET_UNET], easel_unet_patch_targets (unet));
  if (te1)
    index_targets (s->targets[EASEL_LORA_NET_TE1], easel_clip_patch_targets (te1));
  if (te2)
    index_targets (s->targets[EASEL_LORA_NET_TE2], easel_clip_patch_targets (te2));
  s->patched = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, patched_free);
  s->loras = g_ptr_array_new_with_free_func ((GDestroyNotify) easel_lora_unref);
  s->mode = easel_lora_mode_default (NULL);
  s->merge_round = g_strcmp0 (g_getenv ("EASEL_LORA_MERGE_ROUND"), "1") == 0;
  return s;
}

/* Points the network at p's merged copy (or the stored weight) and run-time adapters (or none). */
static void
bind_patched (Patched *p)
{
  p->first->bind (p->slot, p->data ? &p->st : &p->first->stored);
  if (p->first->lowrank)
    *p->first->lowrank = p->lr_data ? &p->lr : NULL;
}

static void
restore (Patched *p)
{
  p->first->bind (p->slot, &p->first->stored);
  if (p->first->lowrank)
    *p->first->lowrank = NULL;
}

static void
restore_all (EaselLoraStack *s)
{
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init (&it, s->patched);
  while (g_hash_table_iter_next (&it, NULL, &value))
    restore (value);
  g_hash_table_remove_all (s->patched);
  g_ptr_array_set_size (s->loras, 0);
}

void
easel_lora_stack_free (EaselLoraStack *s)
{
  if (s == NULL)
    return;
  restore_all (s);
  for (int n = 0; n < EASEL_LORA_NET_COUNT; n++)
    g_hash_table_unref (s->targets[n]);
  g_hash_table_unref (s->patched);
  g_ptr_array_unref (s->loras);
  g_free (s);
}

guint
easel_lora_stack_n_patched (const EaselLoraStack *s)
{
  return g_hash_table_size (s->patched);
}

guint
easel_lora_stack_n_rebuilt (const EaselLoraStack *s)
{
  return s->n_rebuilt;
}

const EaselStTensor *
easel_lora_stack_current (const EaselLoraStack *s, const EaselPatchTarget *target)
{
  const Patched *p = g_hash_table_lookup (s->patched, target->slot);
  return p && p->data ? &p->st : &target->stored;
}

static const char *
net_name (EaselLoraNet net)
{
  static const char *const names[] = { "UNet", "text encoder 1", "text encoder 2", "no network of SD" };
  return names[net];
}

/* The target of module m in the model, or NULL. */
static EaselPatchTarget *
find_target (EaselLoraStack *s, const Module *m)
{
  EaselPatchTarget *t;
  if (m->net >= EASEL_LORA_NET_COUNT)
    return NULL;
  t = g_hash_table_lookup (s->targets[m->net], m->match);
  if (t == NULL && m->net == EASEL_LORA_NET_UNET && s->unet) {
    g_autofree char *internal = ldm_to_internal (m->match, easel_unet_config (s->unet)->n_res);
    if (internal)
      t = g_hash_table_lookup (s->targets[m->net], internal);
  }
  return t;
}

/* Adds lora's modules to `wanted` (slot -> Patched* without data) after checking it fits the model. */
static gboolean
plan_lora (EaselLoraStack *s, const EaselLoraUse *use, GHashTable *wanted, GPtrArray *unmatched, GError **error)
{
  EaselLora *lora = use->lora;
  guint n_matched = 0;
  gboolean te2_only_model = s->clips[1] && !s->clips[0];

  if (easel_lora_n_modules_for (lora, EASEL_LORA_NET_TE2) > 0 && s->clips[1] == NULL && s->clips[0] != NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "%s: this LoRA is for SDXL (it has modules for a second text encoder, lora_te2_ / text_encoder_2); "
                 "the model has one text encoder (SD 1.x or 2.x)", lora->path);
    return FALSE;
  }
  for (guint i = 0; i < lora->modules->len; i++) {
    const Module *m = &g_array_index (lora->modules, Module, i);
    EaselPatchTarget *t = find_target (s, m);
    if (t == NULL) {
      if (unmatched)
        g_ptr_array_add (unmatched, g_strdup_printf ("%s: %s (%s)", lora->name, m->stem, net_name (m->net)));
      continue;
    }
    if (t->rows != m->rows || t->cols != m->cols) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                   "%s: LoRA module '%s' is [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] but the model's %s is [%"
                   G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]: the LoRA is for another model family%s", lora->path,
                   m->stem, m->rows, m->cols, t->module, t->rows, t->cols,
                   te2_only_model ? "" : (m->net == EASEL_LORA_NET_UNET ? " (SD 1.x, SD 2.x and SDXL UNets differ)" : ""));
      return FALSE;
    }
    n_matched++;
    float strength = m->net == EASEL_LORA_NET_UNET ? use->unet_strength : use->te_strength;
    if (strength == 0.0f)
      continue;
    Patched *p = g_hash_table_lookup (wanted, t->slot);
    if (p == NULL) {
      p = g_new0 (Patched, 1);
      p->slot = t->slot;
      p->first = t;
      p->contributions = g_array_new (FALSE, FALSE, sizeof (Contribution));
      g_hash_table_insert (wanted, t->slot, p);
    }
    gboolean runtime = s->mode == EASEL_LORA_MODE_RUNTIME && m->kind == EASEL_LORA_KIND_LORA && t->lowrank != NULL;
    Contribution c = { lora, i, t, strength, runtime };
    g_array_append_val (p->contributions, c);
  }
  if (n_matched == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "%s: none of the LoRA's %u modules matches a weight of this model (a LoRA for another kind of model?)",
                 lora->path, lora->modules->len);
    return FALSE;
  }
  return TRUE;
}

static gboolean
same_contributions (const GArray *a, const GArray *b)
{
  if (a->len != b->len)
    return FALSE;
  for (guint i = 0; i < a->len; i++) {
    const Contribution *x = &g_array_index (a, Contribution, i), *y = &g_array_index (b, Contribution, i);
    if (x->lora != y->lora || x->module != y->module || x->target != y->target || x->strength != y->strength
        || x->runtime != y->runtime)
      return FALSE;
  }
  return TRUE;
}

/* data (n floats) rounded to dt (F16 or BF16, nearest even) into a new *out; FALSE (nothing made)
 * when a value would overflow to infinity, or without memory: the copy then stays F32. */
static gboolean
round_to (EaselDType dt, const float *data, gint64 n, void **out)
{
  guint16 *h = g_try_new (guint16, MAX (n, 1));
  if (h == NULL)
    return FALSE;
  for (gint64 k = 0; k < n; k++) {
    h[k] = dt == EASEL_DTYPE_F16 ? easel_f32_to_f16 (data[k]) : easel_f32_to_bf16 (data[k]);
    if ((h[k] & (dt == EASEL_DTYPE_F16 ? 0x7c00 : 0x7f80)) == (dt == EASEL_DTYPE_F16 ? 0x7c00 : 0x7f80)
        && isfinite (data[k])) {
      g_free (h);
      return FALSE;
    }
  }
  *out = h;
  return TRUE;
}

/* The merged copy: the stored weight in F32 plus every merged contribution's delta in its rows,
 * then (with merge_round) rounded to the module's dtype in the file, as ComfyUI does for an fp16
 * model. */
static gboolean
build_merged (Patched *p, gboolean merge_round, GError **error)
{
  const EaselStTensor *stored = &p->first->stored;
  gint64 n = (gint64) stored->n_elements, cols = p->first->cols;
  g_autofree float *delta = NULL, *data = NULL;
  gint64 delta_n = 0;

  data = g_try_new (float, MAX (n, 1));
  if (data == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY, "no memory for a patched copy of %s", p->first->module);
    return FALSE;
  }
  easel_dtype_to_f32 (stored->dtype, stored->data, data, n);
  for (guint i = 0; i < p->contributions->len; i++) {
    const Contribution *c = &g_array_index (p->contributions, Contribution, i);
    gint64 m = c->target->rows * cols;
    if (c->runtime)
      continue;
    if (m > delta_n) {
      g_free (delta);
      if ((delta = g_try_new (float, m)) == NULL) {
        g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY, "no memory to merge into %s", c->target->module);
        return FALSE;
      }
      delta_n = m;
    }
    if (!easel_lora_module_delta (c->lora, c->module, c->target->rows, cols, delta, error))
      return FALSE;
    float *dst = data + c->target->row0 * cols;
    for (gint64 k = 0; k < m; k++)
      dst[k] += c->strength * delta[k];
  }
  EaselDType dt = p->first->file_dtype;
  p->st = *stored;
  if (merge_round && (dt == EASEL_DTYPE_F16 || dt == EASEL_DTYPE_BF16) && round_to (dt, data, n, &p->data)) {
    /* p->data holds the rounded copy */
  } else {
    dt = EASEL_DTYPE_F32;
    p->data = g_steal_pointer (&data);
  }
  p->st.dtype = dt;
  p->st.data = (const guint8 *) p->data;
  p->st.nbytes = n * easel_dtype_size (dt);
  return TRUE;
}

/* The run-time adapters: every run-time contribution's down stacked into [R, in(, kh, kw)], its up
 * times strength · alpha / r into the module's rows and its R columns of [out, R(, 1, 1)]. */
static gboolean
build_lowrank (Patched *p, GError **error)
{
  const EaselStTensor *stored = &p->first->stored;
  gint64 out = stored->shape[0], cols = p->first->cols, R = 0;

  for (guint i = 0; i < p->contributions->len; i++) {
    const Contribution *c = &g_array_index (p->contributions, Contribution, i);
    if (c->runtime)
      R += g_array_index (c->lora->modules, Module, c->module).rank;
  }
  if (R == 0)
    return TRUE;
  p->lr_data = g_try_new0 (float, R * (cols + out));
  if (p->lr_data == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY, "no memory for the LoRA adapters of %s",
                 p->first->module);
    return FALSE;
  }
  float *down = p->lr_data, *up = p->lr_data + R * cols;
  gint64 r0 = 0;
  for (guint i = 0; i < p->contributions->len; i++) {
    const Contribution *c = &g_array_index (p->contributions, Contribution, i);
    const Module *m = &g_array_index (c->lora->modules, Module, c->module);
    if (!c->runtime)
      continue;
    float scale = c->strength * (m->alpha > 0 ? m->alpha / (float) m->rank : 1.0f);
    g_autofree float *d = f32 (m->t[P_DOWN]), *u = f32 (m->t[P_UP]);    /* [r, cols], [rows, r] */
    if (d == NULL || u == NULL) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY, "%s: no memory for '%s'", c->lora->path, m->stem);
      return FALSE;
    }
    memcpy (down + r0 * cols, d, m->rank * cols * sizeof (float));
    for (gint64 o = 0; o < m->rows; o++)
      for (gint64 k = 0; k < m->rank; k++)
        up[(c->target->row0 + o) * R + r0 + k] = scale * u[o * m->rank + k];
    r0 += m->rank;
  }
  gboolean is_conv = stored->n_dims == 4;
  p->lr.down = (EaselStTensor) { .name = p->first->module, .dtype = EASEL_DTYPE_F32, .n_dims = is_conv ? 4 : 2,
                                 .shape = { R, is_conv ? stored->shape[1] : cols, stored->shape[2], stored->shape[3] },
                                 .data = (const guint8 *) down, .n_elements = R * cols, .nbytes = R * cols * 4 };
  p->lr.up = (EaselStTensor) { .name = p->first->module, .dtype = EASEL_DTYPE_F32, .n_dims = is_conv ? 4 : 2,
                               .shape = { out, R, 1, 1 }, .data = (const guint8 *) up, .n_elements = out * R,
                               .nbytes = out * R * 4 };
  return TRUE;
}

static gboolean
build (Patched *p, gboolean merge_round, GError **error)
{
  gboolean any_merged = FALSE;
  for (guint i = 0; i < p->contributions->len; i++)
    any_merged |= !g_array_index (p->contributions, Contribution, i).runtime;
  return (!any_merged || build_merged (p, merge_round, error)) && build_lowrank (p, error);
}

gboolean
easel_lora_stack_effective_rows (const EaselLoraStack *s, const EaselPatchTarget *target, float *rows)
{
  const Patched *p = g_hash_table_lookup (s->patched, target->slot);
  const EaselStTensor *cur = p && p->data ? &p->st : &target->stored;
  gint64 cols = target->cols, n = target->rows * cols;
  gsize es = easel_dtype_size (cur->dtype);

  easel_dtype_to_f32 (cur->dtype, cur->data + (gsize) (target->row0 * cols) * es, rows, n);
  if (p == NULL || p->lr_data == NULL)
    return FALSE;
  gint64 R = p->lr.down.shape[0];
  g_autofree float *d = g_new (float, n);
  matmul (d, (const float *) p->lr.up.data + target->row0 * R, (const float *) p->lr.down.data, target->rows, R, cols);
  for (gint64 k = 0; k < n; k++)
    rows[k] += d[k];
  return TRUE;
}

gboolean
easel_lora_stack_apply (EaselLoraStack *s, const EaselLoraUse *uses, gsize n, GPtrArray **unmatched, GError **error)
{
  g_autoptr(GHashTable) wanted = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, patched_free);
  g_autoptr(GPtrArray) missing = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter it;
  gpointer key, value;

  if (unmatched)
    *unmatched = NULL;
  for (gsize i = 0; i < n; i++) {
    g_return_val_if_fail (uses[i].lora != NULL, FALSE);
    if (!isfinite (uses[i].unet_strength) || !isfinite (uses[i].te_strength)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s: LoRA strength is not finite", uses[i].lora->path);
      return FALSE;
    }
    if (!plan_lora (s, &uses[i], wanted, missing, error))
      return FALSE;
  }

  /* restore what is no longer touched; keep what did not change; rebuild the rest into new buffers */
  s->n_rebuilt = 0;
  g_hash_table_iter_init (&it, s->patched);
  while (g_hash_table_iter_next (&it, &key, &value)) {
    Patched *p = value;
    if (g_hash_table_contains (wanted, key))
      continue;
    restore (p);
    g_hash_table_iter_remove (&it);
    s->n_rebuilt++;
  }
  g_hash_table_iter_init (&it, wanted);
  while (g_hash_table_iter_next (&it, &key, &value)) {
    Patched *p = value, *old = g_hash_table_lookup (s->patched, key);
    if (old && same_contributions (old->contributions, p->contributions))
      continue;
    if (!build (p, s->merge_round, error)) {
      restore_all (s);
      return FALSE;
    }
    bind_patched (p);
    g_hash_table_iter_steal (&it);
    g_hash_table_replace (s->patched, key, p);    /* frees the old copy after the network moved off it */
    s->n_rebuilt++;
  }
  g_ptr_array_set_size (s->loras, 0);
  for (gsize i = 0; i < n; i++)
    g_ptr_array_add (s->loras, easel_lora_ref (uses[i].lora));
  for (gsize i = 0; i < n; i++)
    for (guint k = 0; k < uses[i].lora->unknown->len; k++)
      g_ptr_array_add (missing, g_strdup_printf ("%s: %s (not a LoRA tensor)", uses[i].lora->name,
                                                 (const char *) uses[i].lora->unknown->pdata[k]));
  if (unmatched)
    *unmatched = g_steal_pointer (&missing);
  return TRUE;
}

/* --- a random LoRA (benchmarks) ---------------------------------------------------------------- */

/* n values uniform in [-bound, bound), as F16, from r. transfer full. */
static guint16 *
random_f16 (GRand *r, gint64 n, double bound)
{
  guint16 *h = g_new (guint16, n);
  for (gint64 i = 0; i < n; i++)
    h[i] = easel_f32_to_f16 ((float) g_rand_double_range (r, -bound, bound));
  return h;
}

static gboolean
make_modules (EaselSafetensorsWriter *w, GPtrArray *targets, const char *prefix, gint64 rank, gboolean convs,
              GRand *r, guint *n_modules, GError **error)
{
  for (guint i = 0; targets && i < targets->len; i++) {
    const EaselPatchTarget *t = targets->pdata[i];
    gboolean is_conv = t->stored.n_dims == 4 && t->cols > t->stored.shape[1];   /* kh·kw > 1 */
    if (!convs && (is_conv || (g_str_has_prefix (prefix, "lora_unet") && strstr (t->module, ".attentions.") == NULL)))
      continue;
    g_autofree char *stem = g_strconcat (prefix, t->module, NULL);
    g_strdelimit (stem + strlen (prefix), ".", '_');
    g_autofree char *kd = g_strconcat (stem, ".lora_down.weight", NULL), *ku = g_strconcat (stem, ".lora_up.weight", NULL);
    g_autofree char *ka = g_strconcat (stem, ".alpha", NULL);
    gint64 in = t->stored.n_dims == 4 ? t->stored.shape[1] : t->cols, kh = is_conv ? t->stored.shape[2] : 1;
    gint64 kw = is_conv ? t->stored.shape[3] : 1;
    const gint64 ds[4] = { rank, in, kh, kw }, us[4] = { t->rows, rank, 1, 1 };
    int nd = t->stored.n_dims == 4 ? 4 : 2;
    g_autofree guint16 *down = random_f16 (r, rank * t->cols, sqrt (3.0 / (double) t->cols));
    g_autofree guint16 *up = random_f16 (r, t->rows * rank, 0.02);
    guint16 alpha = easel_f32_to_f16 ((float) rank / 2);
    if (!easel_safetensors_writer_add (w, kd, EASEL_DTYPE_F16, nd, ds, down, error)
        || !easel_safetensors_writer_add (w, ku, EASEL_DTYPE_F16, nd, us, up, error)
        || !easel_safetensors_writer_add (w, ka, EASEL_DTYPE_F16, 0, NULL, &alpha, error))
      return FALSE;
    (*n_modules)++;
  }
  return TRUE;
}

gboolean
easel_lora_make_random (EaselUnet *unet, EaselClip *te1, EaselClip *te2, gint64 rank, gboolean convs, guint64 seed,
                        const char *path, guint *n_modules, GError **error)
{
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  g_autoptr(GRand) r = g_rand_new_with_seed ((guint32) (seed ^ (seed >> 32)));
  guint n = 0;

  g_return_val_if_fail (rank >= 1 && rank <= 1024, FALSE);
  if (!make_modules (w, unet ? easel_unet_patch_targets (unet) : NULL, "lora_unet_", rank, convs, r, &n, error)
      || !make_modules (w, te1 ? easel_clip_patch_targets (te1) : NULL, te2 ? "lora_te1_" : "lora_te_", rank, convs, r,
                        &n, error)
      || !make_modules (w, te2 && te1 ? easel_clip_patch_targets (te2) : NULL, "lora_te2_", rank, convs, r, &n, error))
    return FALSE;
  easel_safetensors_writer_set_metadata (w, "ss_network_module", convs ? "lycoris.kohya" : "networks.lora");
  if (n_modules)
    *n_modules = n;
  return easel_safetensors_writer_save (w, path, error);
}

/* --- references -------------------------------------------------------------------------------- */

void
easel_lora_ref_clear (gpointer ref)
{
  EaselLoraRef *r = ref;
  g_clear_pointer (&r->name, g_free);
}

/* Python's float() on s (surrounding blanks allowed); FALSE when it is no number. */
static gboolean
parse_float (const char *s, float *out)
{
  g_autofree char *t = g_strstrip (g_strdup (s));
  char *end;
  if (t[0] == '\0')
    return FALSE;
  double v = g_ascii_strtod (t, &end);
  if (*end != '\0' || !isfinite (v))
    return FALSE;
  *out = (float) v;
  return TRUE;
}

/* One <lora:...> body (after "lora:"): A1111's ExtraNetworkParams: positional and name=value args. */
static gboolean
parse_tag (const char *body, EaselLoraRef *ref, GError **error)
{
  g_auto(GStrv) args = g_strsplit (body, ":", -1);
  int n_pos = 0;
  float te = 1.0f, unet = NAN, v;
  gboolean have_te = FALSE;

  memset (ref, 0, sizeof *ref);
  for (int i = 0; args[i]; i++) {
    const char *eq = strchr (args[i], '=');
    if (i > 0 && eq) {
      g_autofree char *k = g_strstrip (g_strndup (args[i], eq - args[i]));
      if (strcmp (k, "te") == 0 || strcmp (k, "unet") == 0) {
        if (!parse_float (eq + 1, &v))
          goto bad;
        if (k[0] == 't') {
          te = v;
          have_te = TRUE;
        } else {
          unet = v;
        }
      }
      continue;   /* dyn= and others: no effect here */
    }
    if (n_pos == 0) {
      ref->name = g_strstrip (g_strdup (args[i]));
    } else if (n_pos == 1) {
      if (!parse_float (args[i], &v))
        goto bad;
      if (!have_te)
        te = v;
    } else if (n_pos == 2) {
      if (!parse_float (args[i], &v))
        goto bad;
      if (isnan (unet))
        unet = v;
    }
    n_pos++;
  }
  if (ref->name == NULL || ref->name[0] == '\0') {
    g_clear_pointer (&ref->name, g_free);
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "<lora:%s>: no LoRA name", body);
    return FALSE;
  }
  ref->te_strength = te;
  ref->unet_strength = isnan (unet) ? te : unet;
  return TRUE;

bad:
  g_clear_pointer (&ref->name, g_free);
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "<lora:%s>: a strength is not a number", body);
  return FALSE;
}

char *
easel_lora_extract_from_prompt (const char *prompt, GArray *refs, GError **error)
{
  static const char *const tags[] = { "<lora:", "<lyco:" };
  g_autoptr(GString) out = g_string_new (NULL);
  const char *p = prompt;

  while (*p) {
    const char *tag = NULL;
    for (guint i = 0; i < G_N_ELEMENTS (tags); i++)
      if (g_ascii_strncasecmp (p, tags[i], strlen (tags[i])) == 0)
        tag = tags[i];
    const char *close = tag ? strchr (p, '>') : NULL;
    if (close == NULL) {
      g_string_append_c (out, *p++);
      continue;
    }
    g_autofree char *body = g_strndup (p + strlen (tag), close - p - strlen (tag));
    EaselLoraRef ref;
    if (!parse_tag (body, &ref, error))
      return NULL;
    g_array_append_val (refs, ref);
    p = close + 1;
  }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

gboolean
easel_lora_parse_arg (const char *arg, EaselLoraRef *ref, GError **error)
{
  const char *colon = strrchr (arg, ':');
  float v = 1.0f;

  memset (ref, 0, sizeof *ref);
  if (colon && colon != arg && parse_float (colon + 1, &v)) {
    ref->name = g_strndup (arg, colon - arg);
  } else if (colon && colon[1] != '\0' && colon != arg && !g_file_test (arg, G_FILE_TEST_EXISTS)
             && strchr (colon + 1, '/') == NULL && strchr (colon + 1, '\\') == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "--lora %s: strength '%s' is not a number", arg,
                 colon + 1);
    return FALSE;
  } else {
    ref->name = g_strdup (arg);
  }
  if (ref->name[0] == '\0') {
    g_clear_pointer (&ref->name, g_free);
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "--lora %s: no file", arg);
    return FALSE;
  }
  ref->te_strength = ref->unet_strength = v;
  return TRUE;
}

char *
easel_lora_resolve (const char *name, const char *folder, GError **error)
{
  static const char *const exts[] = { ".safetensors", ".pt", ".ckpt" };
  if (g_file_test (name, G_FILE_TEST_IS_REGULAR))
    return g_strdup (name);
  for (guint i = 0; folder && i < G_N_ELEMENTS (exts); i++) {
    g_autofree char *file = g_strconcat (name, exts[i], NULL);
    char *path = g_build_filename (folder, file, NULL);
    if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
      return path;
    g_free (path);
  }
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "LoRA '%s': no such file, and no %s.safetensors in %s", name,
               name, folder ? folder : "(no LoRA folder given)");
  return NULL;
}

char *
easel_lora_clean_alias (const char *name)
{
  char *s = g_strdup (name), *w = s;
  for (const char *r = name; *r; r++)
    if (*r != ':' && *r != ',')
      *w++ = *r;
  *w = '\0';
  return s;
}

char *
easel_lora_hashes_text (EaselLora *const *loras, gsize n)
{
  return easel_lora_hashes_text_named (loras, NULL, n);
}

char *
easel_lora_hashes_text_named (EaselLora *const *loras, const char *const *aliases, gsize n)
{
  g_autoptr(GString) s = g_string_new (NULL);
  for (gsize i = 0; i < n; i++) {
    g_autofree char *h = easel_lora_short_hash (loras[i]);
    g_autofree char *alias = easel_lora_clean_alias (aliases && aliases[i] ? aliases[i] : loras[i]->name);
    if (h == NULL)
      continue;
    g_string_append_printf (s, "%s%s: %s", s->len ? ", " : "", alias, h);
  }
  return g_string_free (g_steal_pointer (&s), FALSE);
}
