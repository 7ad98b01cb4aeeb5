/* app/cli/golden-rng.c: golden kind "rng" (rng/manifest.json, testdata README section 3).
 *
 * One case per manifest entry: "seed" (decimal string, up to 2^64 - 1), "device" ("cpu" or
 * "cuda"), "file" and "tensor". A tensor name with "<i>" in it is a sequence: every tensor of
 * the file matching the pattern, in the order of i, is drawn from one generator after a single
 * manual_seed. The element count comes from each reference tensor (checked against "shape" when
 * given). CPU values must be bit-identical. CUDA values must be within 1 ulp, or, where not, within
 * the error of the GPU's hardware sine (MUFU.SIN, which curand's __sincosf uses and Easel does
 * not reproduce bit for bit): at most 5.75 * 2^-24 absolute, measured on an H100 over every
 * argument curand can produce, times the Box-Muller radius, which is below 6.8 since u >= 2^-33;
 * so 7 * 2^-21 in all. Any error in the Philox stream, the thread layout or the offsets gives
 * differences of order 1. Both counts are reported. */
#include "golden.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/rng.h"

typedef struct {
  char *file;          /* full path */
  char *tensor;        /* name or pattern with "<i>" */
  char *device_name;   /* top-level "cuda_device", may be NULL */
  EaselRngKind kind;
  guint64 seed;
} RngCase;

static void
rng_case_free (gpointer p)
{
  RngCase *rc = p;
  g_free (rc->file);
  g_free (rc->tensor);
  g_free (rc->device_name);
  g_free (rc);
}

static void
collect_rng (EaselGolden *g, GPtrArray *cases)
{
  const EaselJson *m = easel_golden_manifest (g, "rng/manifest.json");
  const EaselJson *list = easel_json_get (m, "cases");
  g_autofree char *dir = g_build_filename (easel_golden_dir (g), "rng", NULL);
  const char *device_name = easel_json_get_string (m, "cuda_device", NULL);

  for (gsize i = 0; i < easel_json_length (list); i++) {
    const EaselJson *spec = easel_json_at (list, i);
    const char *name = easel_json_get_string (spec, "name", NULL);
    const char *file = easel_json_get_string (spec, "file", NULL);
    const char *tensor = easel_json_get_string (spec, "tensor", NULL);
    const char *device = easel_json_get_string (spec, "device", NULL);
    const char *seed = easel_json_get_string (spec, "seed", NULL);
    g_autofree char *fallback = g_strdup_printf ("case %" G_GSIZE_FORMAT, i);
    EaselGoldenCase *c = easel_golden_case_new (name ? name : fallback, dir, spec);
    RngCase *rc = g_new0 (RngCase, 1);

    /* Malformed entries are kept as cases with NULL fields: run reports them. */
    rc->file = file && !strchr (file, '/') ? g_build_filename (dir, file, NULL) : NULL;
    rc->tensor = g_strdup (tensor);
    rc->device_name = g_strdup (device_name);
    if (!easel_rng_kind_from_name (device, &rc->kind))
      g_clear_pointer (&rc->tensor, g_free);
    if (seed == NULL || !g_ascii_string_to_unsigned (seed, 10, 0, G_MAXUINT64, &rc->seed, NULL))
      g_clear_pointer (&rc->tensor, g_free);
    c->data = rc;
    c->free_data = rng_case_free;
    g_ptr_array_add (cases, c);
  }
}

/* GPUs whose launch limits decide the layout of large CUDA draws (see rng.h). */
static void
apply_cuda_device (EaselGolden *g, EaselRng *rng, const char *device_name)
{
  static const struct { const char *name; guint sms, threads; } gpus[] = {
    { "H100 80GB HBM3", 132, 2048 },   /* H100 SXM5 */
    { "H100 PCIe", 114, 2048 },
    { "H200", 132, 2048 },
    { "A100", 108, 2048 },
  };
  if (device_name == NULL)
    return;
  for (guint i = 0; i < G_N_ELEMENTS (gpus); i++)
    if (strstr (device_name, gpus[i].name)) {
      easel_rng_set_cuda_device (rng, gpus[i].sms, gpus[i].threads);
      return;
    }
  easel_golden_note (g, "rng: unknown cuda_device '%s': CUDA draws use no grid cap", device_name);
}

static gint64
sequence_index (const char *name, const char *prefix, const char *suffix_start)
{
  const char *p = name + strlen (prefix);
  char *end;
  guint64 v;
  if (!g_str_has_prefix (name, prefix) || !g_ascii_isdigit (*p))
    return -1;
  v = g_ascii_strtoull (p, &end, 10);
  if (end == p || v > G_MAXINT32 || strncmp (end, suffix_start, strlen (suffix_start)) != 0)
    return -1;
  return (gint64) v;
}

static int
cmp_by_index (gconstpointer a, gconstpointer b)
{
  gint64 ia = GPOINTER_TO_SIZE (((const gpointer *) a)[0]);
  gint64 ib = GPOINTER_TO_SIZE (((const gpointer *) b)[0]);
  return ia < ib ? -1 : ia > ib;
}

/* The tensors of a sequence, in call order. transfer container. */
static GPtrArray *
sequence_tensors (EaselSafetensors *st, const char *pattern, GError **error)
{
  const char *mark = strstr (pattern, "<i>");
  g_autofree char *prefix = g_strndup (pattern, mark - pattern);
  /* what follows "<i>" up to the next "<": "_" in "sequence_<i>_<shape>" */
  const char *after = mark + 3;
  const char *lt = strchr (after, '<');
  g_autofree char *suffix = lt ? g_strndup (after, lt - after) : g_strdup (after);
  g_autoptr(GArray) pairs = g_array_new (FALSE, FALSE, 2 * sizeof (gpointer));
  GPtrArray *out = g_ptr_array_new ();

  for (gsize i = 0; i < easel_safetensors_n_tensors (st); i++) {
    const EaselStTensor *t = easel_safetensors_tensor (st, i);
    gint64 idx = sequence_index (t->name, prefix, suffix);
    if (idx >= 0) {
      gpointer pair[2] = { GSIZE_TO_POINTER ((gsize) idx), (gpointer) t };
      g_array_append_val (pairs, pair);
    }
  }
  g_array_sort (pairs, cmp_by_index);
  for (guint i = 0; i < pairs->len; i++) {
    gpointer *pair = &g_array_index (pairs, gpointer, 2 * i);
    if (GPOINTER_TO_SIZE (pair[0]) != i) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                   "%s: sequence '%s' has no call %u (or two of it)", easel_safetensors_path (st), pattern, i);
      g_ptr_array_unref (out);
      return NULL;
    }
    g_ptr_array_add (out, pair[1]);
  }
  if (out->len == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no tensor matches '%s'",
                 easel_safetensors_path (st), pattern);
    g_ptr_array_unref (out);
    return NULL;
  }
  return out;
}

static gint64
ordered_bits (float f)
{
  gint32 i;
  memcpy (&i, &f, sizeof i);
  return i < 0 ? -(gint64) (i & 0x7fffffff) : (gint64) i;
}

#define CUDA_SFU_TOL (7.0 * 0x1p-21)

/* got vs want: within max_ulp units in the last place, or (when abs_tol > 0) within abs_tol;
 * reports the first value beyond both */
static gboolean
compare_ulp (EaselGolden *g, const char *label, const float *got, const float *want, gsize n,
             gint64 max_ulp, double abs_tol)
{
  gint64 worst = 0;
  gsize first = n, over = 0, over_ulp = 0;
  double worst_abs = 0.0;
  for (gsize i = 0; i < n; i++) {
    gint64 d = llabs (ordered_bits (got[i]) - ordered_bits (want[i]));
    double a = fabs ((double) got[i] - (double) want[i]);
    if (d > max_ulp) {
      over_ulp++;
      if (!(a <= abs_tol)) {
        if (first == n)
          first = i;
        over++;
      }
    }
    worst = MAX (worst, d);
    worst_abs = MAX (worst_abs, a);
  }
  if (easel_golden_verbose (g) && worst > 0)
    g_print ("  %s: %" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT " beyond %" G_GINT64_FORMAT " ulp (worst %" G_GINT64_FORMAT
             " ulp, %.3g abs)\n", label, over_ulp, n, max_ulp, worst, worst_abs);
  if (over == 0)
    return TRUE;
  easel_golden_fail (g, "%s: %" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT " values differ by more than %" G_GINT64_FORMAT
                     " ulp%s (worst %" G_GINT64_FORMAT " ulp, %.3g abs); first at [%" G_GSIZE_FORMAT "] got %.9g want %.9g",
                     label, over, n, max_ulp, abs_tol > 0 ? " and the GPU sine's error" : "", worst, worst_abs,
                     first, got[first], want[first]);
  return FALSE;
}

static gboolean
check_shape (const EaselJson *spec, const EaselStTensor *t, GError **error)
{
  const EaselJson *shape = easel_json_get (spec, "shape");
  gboolean ok = easel_json_type (shape) != EASEL_JSON_ARRAY || easel_json_length (shape) == (gsize) t->n_dims;
  for (int d = 0; ok && d < t->n_dims && shape != NULL; d++) {
    gint64 v;
    ok = easel_json_int64 (easel_json_at (shape, d), &v) && v == t->shape[d];
  }
  if (!ok)
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                 "tensor '%s': its shape does not match the manifest's", t->name);
  return ok;
}

static gboolean
run_rng (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  RngCase *rc = c->data;
  g_autoptr(GPtrArray) tensors = NULL;
  g_autoptr(EaselRng) rng = NULL;
  EaselSafetensors *st;
  gboolean ok = TRUE;

  if (rc->file == NULL || rc->tensor == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                 "rng/manifest.json: case needs \"file\", \"tensor\", \"device\" (cpu or cuda) and a decimal \"seed\"");
    return FALSE;
  }
  st = easel_golden_safetensors (g, rc->file, error);
  if (st == NULL)
    return FALSE;
  if (strstr (rc->tensor, "<i>")) {
    tensors = sequence_tensors (st, rc->tensor, error);
    if (tensors == NULL)
      return FALSE;
  } else {
    const EaselStTensor *t = easel_safetensors_find (st, rc->tensor);
    if (t == NULL) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no tensor '%s'", rc->file, rc->tensor);
      return FALSE;
    }
    if (!check_shape (c->spec, t, error))
      return FALSE;
    tensors = g_ptr_array_new ();
    g_ptr_array_add (tensors, (gpointer) t);
  }

  rng = easel_rng_new (rc->kind, rc->seed);
  if (rc->kind == EASEL_RNG_CUDA)
    apply_cuda_device (g, rng, rc->device_name);
  for (guint i = 0; i < tensors->len; i++) {
    const EaselStTensor *t = tensors->pdata[i];
    g_autofree float *want = NULL;
    g_autofree float *got = NULL;
    g_autofree char *label = NULL;

    if (t->dtype != EASEL_DTYPE_F32 || t->n_elements == 0 || t->n_elements > G_MAXSIZE / sizeof (float)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: tensor '%s' is not a non-empty F32 tensor",
                   rc->file, t->name);
      return FALSE;
    }
    want = easel_st_tensor_to_f32 (t);
    got = g_new (float, t->n_elements);
    easel_rng_randn (rng, got, t->n_elements);
    label = tensors->len > 1 ? g_strdup_printf ("call %u (%s)", i, t->name) : g_strdup (t->name);
    if (rc->kind == EASEL_RNG_CPU)
      ok &= compare_ulp (g, label, got, want, t->n_elements, 0, 0.0);
    else
      ok &= compare_ulp (g, label, got, want, t->n_elements, 1, CUDA_SFU_TOL);
  }
  return ok;
}

const EaselGoldenKind easel_golden_kind_rng = { "rng", collect_rng, run_rng };
