/* app/cli/golden.c: the check-golden harness: the table of kinds, case bookkeeping, comparisons,
 * and the output format
 *   FAIL <kind> <case>: <worst abs and rel error, where>
 *   <kind>: N passed, M failed            (each kind that ran)
 *   skipped: <kind> (<N> cases)            (each kind not implemented yet)
 *   N passed, M failed, K skipped          (last line)
 * Exit status: 0 when nothing failed, 1 otherwise, 2 on bad usage. */
#include "golden.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine/error.h"

static const EaselGoldenKind *const kinds[] = {
  &easel_golden_kind_tokenizer,
  &easel_golden_kind_prompt,
  &easel_golden_kind_rng,
  &easel_golden_kind_checkpoint,
  &easel_golden_kind_schedule,
  &easel_golden_kind_sampler,
  &easel_golden_kind_text_encoder,
  &easel_golden_kind_unet,
  &easel_golden_kind_vae,
  &easel_golden_kind_pipeline,
  &easel_golden_kind_lora,
  &easel_golden_kind_canny,
  &easel_golden_kind_controlnet,
  &easel_golden_kind_t2i_adapter,
  &easel_golden_kind_ip_adapter,
  &easel_golden_kind_adapter_pipeline,
};

/* The one place where a backend's tolerances differ from the manifests' (which are for a float32
 * engine, README section 1): each listed kind's abs and rel limits are multiplied by the factor
 * when it runs on that backend; other kinds (tokenizer, rng, samplers, ...) do not run on a
 * backend and keep theirs, and "exact" stays exact.
 *
 * vulkan: matrix weights are stored as fp16 on the device where that is exact (engine/vulkan/
 * backend-vulkan.c; else fp32), activations and every sum stay fp32. The testdata's weights are
 * fp16-exact (README section 5), so on lavapipe the results differ from the CPU's only by
 * summation order and exp/erf ulps. Measured worst |error| / float32 limit per kind, `check-golden
 * --backend vulkan -v` on lavapipe (Mesa 22.3, LLVM 15): text-encoder 0.18 (CPU backend: 0.12),
 * unet 0.61, vae 0.035, lora 0.034, controlnet 0.069, t2i-adapter 0.025, ip-adapter 0.098,
 * pipeline 0.037 (all 11 cases, 808 s on 2 busy cores), so
 * lavapipe needs no allowance at all. The factor is for real GPUs and the fp16 paths: rounding
 * genuinely fp32 weights to fp16 ($EASEL_VULKAN_LOSSY_F16; measured on lora before weights
 * stayed fp32: 32x, so that mode is not expected to pass) and a cooperative-matrix matmul, which
 * rounds activations to fp16 at every product. The README's "roughly 10x" for an engine running
 * the networks in fp16 is that allowance: 10, for every network kind alike. */
typedef struct {
  const char *backend, *kind;
  double factor;
} BackendTolerance;

static const BackendTolerance backend_tolerances[] = {
  { "vulkan", "controlnet", 10.0 },
  { "vulkan", "ip-adapter", 10.0 },
  { "vulkan", "lora", 10.0 },
  { "vulkan", "pipeline", 10.0 },
  { "vulkan", "adapter-pipeline", 10.0 },
  { "vulkan", "t2i-adapter", 10.0 },
  { "vulkan", "text-encoder", 10.0 },
  { "vulkan", "unet", 10.0 },
  { "vulkan", "vae", 10.0 },
};

struct _EaselGolden {
  char *dir;
  char *backend;
  const char *kind;           /* the kind running now */
  double factor;              /* its tolerance factor on this backend (backend_tolerances) */
  double worst_ratio;         /* worst |error| / unscaled limit seen in the kind so far */
  char *vocab;
  gboolean verbose;
  GHashTable *manifests;      /* relpath -> EaselJson* (NULL value: absent) */
  GHashTable *files;          /* path -> EaselSafetensors* */
  GString *why;               /* failure detail of the current case */
  GPtrArray *notes;
};

const char *easel_golden_dir (EaselGolden *g) { return g->dir; }
const char *easel_golden_backend (EaselGolden *g) { return g->backend; }

EaselBackend *
easel_golden_new_backend (EaselGolden *g, GError **error)
{
  EaselBackend *be = easel_backend_new_for_name (g->backend, error);
  if (be == NULL)
    g_prefix_error (error, "--backend %s: ", g->backend);
  return be;
}

static double
tolerance_factor (const char *backend, const char *kind)
{
  for (guint i = 0; i < G_N_ELEMENTS (backend_tolerances); i++)
    if (strcmp (backend_tolerances[i].backend, backend) == 0 && strcmp (backend_tolerances[i].kind, kind) == 0)
      return backend_tolerances[i].factor;
  return 1.0;
}
const char *easel_golden_vocab (EaselGolden *g) { return g->vocab; }
gboolean easel_golden_verbose (EaselGolden *g) { return g->verbose; }

const EaselJson *
easel_golden_manifest (EaselGolden *g, const char *relpath)
{
  gpointer value;
  if (g_hash_table_lookup_extended (g->manifests, relpath, NULL, &value))
    return value;
  g_autofree char *path = g_build_filename (g->dir, relpath, NULL);
  EaselJson *m = NULL;
  if (g_file_test (path, G_FILE_TEST_EXISTS)) {
    g_autoptr(GError) error = NULL;
    m = easel_json_parse_file (path, 0, &error);
    if (m == NULL)
      fprintf (stderr, "check-golden: %s\n", error->message);
  }
  g_hash_table_insert (g->manifests, g_strdup (relpath), m);
  return m;
}

EaselSafetensors *
easel_golden_safetensors (EaselGolden *g, const char *path, GError **error)
{
  EaselSafetensors *st = g_hash_table_lookup (g->files, path);
  if (st == NULL) {
    st = easel_safetensors_open (path, error);
    if (st)
      g_hash_table_insert (g->files, g_strdup (path), st);
  }
  return st;
}

float *
easel_golden_tensor_f32 (EaselGolden *g, const char *path, const char *name, gsize want_n,
                         gsize *n_out, GError **error)
{
  EaselSafetensors *st = easel_golden_safetensors (g, path, error);
  const EaselStTensor *t;
  if (st == NULL)
    return NULL;
  t = easel_safetensors_find (st, name);
  if (t == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no tensor '%s'", path, name);
    return NULL;
  }
  if (want_n && t->n_elements != want_n) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_MISMATCH, "%s: tensor '%s' has %" G_GUINT64_FORMAT
                 " elements, expected %" G_GSIZE_FORMAT, path, name, t->n_elements, want_n);
    return NULL;
  }
  if (n_out)
    *n_out = t->n_elements;
  return easel_st_tensor_to_f32 (t);
}

static void
case_free (gpointer p)
{
  EaselGoldenCase *c = p;
  if (c->free_data)
    c->free_data (c->data);
  g_free (c->name);
  g_free (c->dir);
  g_free (c);
}

EaselGoldenCase *
easel_golden_case_new (const char *name, const char *dir, const EaselJson *spec)
{
  EaselGoldenCase *c = g_new0 (EaselGoldenCase, 1);
  c->name = g_strdup (name);
  c->dir = g_strdup (dir);
  c->spec = spec;
  return c;
}

void
easel_golden_fail (EaselGolden *g, const char *format, ...)
{
  va_list ap;
  if (g->why->len)
    g_string_append (g->why, "; ");
  va_start (ap, format);
  g_string_append_vprintf (g->why, format, ap);
  va_end (ap);
}

void
easel_golden_note (EaselGolden *g, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  char *s = g_strdup_vprintf (format, ap);
  va_end (ap);
  for (guint i = 0; i < g->notes->len; i++)
    if (strcmp (g->notes->pdata[i], s) == 0) {
      g_free (s);
      return;
    }
  g_ptr_array_add (g->notes, s);
}

void
easel_golden_tolerance (const EaselJson *spec, double default_abs, double default_rel,
                        double *atol, double *rtol)
{
  const EaselJson *tol = easel_json_get (spec, "tolerance");
  *atol = default_abs;
  *rtol = default_rel;
  if (g_strcmp0 (easel_json_string (tol, NULL), "exact") == 0) {
    *atol = *rtol = 0.0;
  } else if (easel_json_type (tol) == EASEL_JSON_OBJECT) {
    *atol = easel_json_get_double (tol, "abs", *atol);
    *rtol = easel_json_get_double (tol, "rel", *rtol);
  }
}

static void
format_index (GString *s, gsize i, const gint64 *shape, int n_dims)
{
  if (shape == NULL || n_dims <= 0) {
    g_string_append_printf (s, "[%" G_GSIZE_FORMAT "]", i);
    return;
  }
  gint64 idx[16];
  for (int d = n_dims - 1; d >= 0; d--) {
    gint64 dim = shape[d] > 0 ? shape[d] : 1;
    idx[d] = (gint64) (i % (guint64) dim);
    i /= (guint64) dim;
  }
  g_string_append_c (s, '[');
  for (int d = 0; d < n_dims; d++)
    g_string_append_printf (s, d ? ",%" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, idx[d]);
  g_string_append_c (s, ']');
}

gboolean
easel_golden_compare (EaselGolden *g, const char *label, const float *got, const float *want,
                      gsize n, const gint64 *shape, int n_dims, double atol, double rtol)
{
  double ref_max = 0.0, worst = -1.0, limit;
  gsize worst_i = 0, over = 0;

  for (gsize i = 0; i < n; i++)
    ref_max = fmax (ref_max, fabs ((double) want[i]));
  limit = (atol + rtol * ref_max) * g->factor;
  for (gsize i = 0; i < n; i++) {
    double d = fabs ((double) got[i] - (double) want[i]);
    if (isnan (got[i]) != isnan (want[i]))
      d = INFINITY;
    else if (isnan (got[i]))
      d = 0.0;
    if (d > limit)
      over++;
    if (d > worst) {
      worst = d;
      worst_i = i;
    }
  }
  if (limit > 0.0)
    g->worst_ratio = fmax (g->worst_ratio, worst / (limit / g->factor));
  if (over == 0)
    return TRUE;
  g_autoptr(GString) s = g_string_new (NULL);
  g_string_append_printf (s, "%s: %" G_GSIZE_FORMAT "/%" G_GSIZE_FORMAT " over tol; worst abs %.3g rel %.3g at ",
                          label, over, n, worst, ref_max > 0 ? worst / ref_max : worst);
  format_index (s, worst_i, shape, n_dims);
  g_string_append_printf (s, " got %.7g want %.7g (tol abs %.3g)", got[worst_i], want[worst_i], limit);
  easel_golden_fail (g, "%s", s->str);
  return FALSE;
}

static void
model_free (gpointer p)
{
  EaselGoldenModel *m = p;
  g_free (m->name);
  g_free (m->folder);
  g_free (m->single_file);
  g_free (m);
}

GPtrArray *
easel_golden_models (EaselGolden *g, const EaselJson *manifest)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (model_free);
  const char *text = easel_json_get_string (manifest, "model", "");
  const char *p = text;

  while ((p = strstr (p, "models/")) != NULL) {
    const char *b = p + strlen ("models/"), *e = b;
    while (g_ascii_isalnum (*e) || *e == '_' || *e == '-' || *e == '.')
      e++;
    g_autofree char *name = g_strndup (b, e - b);
    p = e;
    if (g_str_has_suffix (name, ".safetensors"))
      name[strlen (name) - strlen (".safetensors")] = '\0';
    while (name[0] && name[strlen (name) - 1] == '.')
      name[strlen (name) - 1] = '\0';
    gboolean seen = name[0] == '\0';
    for (guint i = 0; !seen && i < out->len; i++)
      seen = strcmp (((EaselGoldenModel *) out->pdata[i])->name, name) == 0;
    if (seen)
      continue;
    EaselGoldenModel *m = g_new0 (EaselGoldenModel, 1);
    m->name = g_strdup (name);
    m->folder = g_build_filename (g->dir, "models", name, NULL);
    m->single_file = g_strconcat (m->folder, ".safetensors", NULL);
    if (!g_file_test (m->folder, G_FILE_TEST_IS_DIR))
      g_clear_pointer (&m->folder, g_free);
    if (!g_file_test (m->single_file, G_FILE_TEST_IS_REGULAR))
      g_clear_pointer (&m->single_file, g_free);
    g_ptr_array_add (out, m);
  }
  return out;
}

void
easel_golden_collect_refs (EaselGolden *g, GPtrArray *cases, const char *ref, gboolean (*accept) (const char *))
{
  g_autofree char *rel = g_build_filename ("refs", ref, "manifest.json", NULL);
  g_autofree char *dir = g_build_filename (g->dir, "refs", ref, NULL);
  const EaselJson *list = easel_json_get (easel_golden_manifest (g, rel), "cases");

  for (gsize i = 0; i < easel_json_length (list); i++) {
    const EaselJson *c = easel_json_at (list, i);
    const char *name = easel_json_get_string (c, "name", NULL);
    if (name == NULL || (accept && !accept (name)))
      continue;
    g_autofree char *full = g_strdup_printf ("%s/%s", ref, name);
    g_ptr_array_add (cases, easel_golden_case_new (full, dir, c));
  }
}

static const EaselGoldenKind *
find_kind (const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    if (strcmp (kinds[i]->name, name) == 0)
      return kinds[i];
  return NULL;
}

static void
print_usage (FILE *out)
{
  fprintf (out, "Usage: easel-cli check-golden [--backend cpu|vulkan] [--kind K]... [--vocab FILE] [-v] DIR\n\n"
                "Runs every case of DIR's manifests (the layout of shared/testdata) whose kind is\n"
                "implemented and compares with the references. Kinds:");
  for (guint i = 0; i < G_N_ELEMENTS (kinds); i++)
    fprintf (out, " %s", kinds[i]->name);
  fprintf (out, "\n");
}

int
easel_cli_check_golden (int argc, char **argv)
{
  EaselGolden g = { .factor = 1.0 };
  g_autoptr(GPtrArray) only = g_ptr_array_new ();
  guint total_pass = 0, total_fail = 0, total_skip = 0;
  int status = 0;

  g.backend = g_strdup ("cpu");
  g.vocab = g_strdup (g_getenv ("EASEL_VOCAB"));
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp (a, "--help") == 0) {
      print_usage (stdout);
      return 0;
    } else if ((strcmp (a, "--backend") == 0 || strcmp (a, "--kind") == 0 || strcmp (a, "--vocab") == 0) && i + 1 < argc) {
      const char *v = argv[++i];
      if (a[2] == 'b') {
        if (strcmp (v, "cpu") != 0 && strcmp (v, "vulkan") != 0) {
          easel_cli_error ("check-golden: --backend is cpu or vulkan, not '%s'", v);
          return 2;
        }
        g_free (g.backend);
        g.backend = g_strdup (v);
      } else if (a[2] == 'k') {
        if (find_kind (v) == NULL) {
          easel_cli_error ("check-golden: unknown kind '%s'", v);
          return 2;
        }
        g_ptr_array_add (only, (gpointer) v);
      } else {
        g_free (g.vocab);
        g.vocab = g_strdup (v);
      }
    } else if (strcmp (a, "-v") == 0 || strcmp (a, "--verbose") == 0) {
      g.verbose = TRUE;
    } else if (a[0] == '-') {
      easel_cli_error ("check-golden: unknown or incomplete option '%s'", a);
      return 2;
    } else if (g.dir == NULL) {
      g.dir = g_strdup (a);
    } else {
      easel_cli_error ("check-golden: one DIR only");
      return 2;
    }
  }
  if (g.dir == NULL) {
    print_usage (stderr);
    return 2;
  }
  if (!g_file_test (g.dir, G_FILE_TEST_IS_DIR)) {
    easel_cli_error ("check-golden: %s: no such folder", g.dir);
    if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
      return 1;
    printf ("0 passed, 0 failed, 0 skipped\n");
    return 77;   /* meson: skipped */
  }

  if (strcmp (g.backend, "cpu") != 0) {   /* no device: skipped as the vulkan suite is, except on CI */
    g_autoptr(GError) error = NULL;
    g_autoptr(EaselBackend) probe = easel_backend_new_for_name (g.backend, &error);
    if (probe == NULL) {
      easel_cli_error ("check-golden: --backend %s: %s", g.backend, error->message);
      if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
        return 1;
      printf ("0 passed, 0 failed, 0 skipped\n");
      return 77;
    }
  }

  g.manifests = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) easel_json_free);
  g.files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) easel_safetensors_free);
  g.why = g_string_new (NULL);
  g.notes = g_ptr_array_new_with_free_func (g_free);

  g_autoptr(GString) skipped = g_string_new (NULL);
  for (guint k = 0; k < G_N_ELEMENTS (kinds); k++) {
    const EaselGoldenKind *kind = kinds[k];
    g_autoptr(GPtrArray) cases = g_ptr_array_new_with_free_func (case_free);
    guint pass = 0, fail = 0;
    gboolean wanted = only->len == 0;

    for (guint i = 0; i < only->len; i++)
      wanted |= strcmp (only->pdata[i], kind->name) == 0;
    if (!wanted)
      continue;
    kind->collect (&g, cases);
    g.kind = kind->name;
    g.factor = tolerance_factor (g.backend, kind->name);
    g.worst_ratio = 0.0;
    if (kind->run == NULL) {
      if (cases->len > 0)
        g_string_append_printf (skipped, "skipped: %s (%u cases)\n", kind->name, cases->len);
      total_skip += cases->len;
      continue;
    }
    for (guint i = 0; i < cases->len; i++) {
      EaselGoldenCase *c = cases->pdata[i];
      g_autoptr(GError) error = NULL;
      gboolean ok;

      g_string_truncate (g.why, 0);
      ok = kind->run (&g, c, &error);
      if (error != NULL) {
        easel_golden_fail (&g, "%s", error->message);
        ok = FALSE;
      }
      if (ok) {
        pass++;
        if (g.verbose)
          printf ("ok %s %s\n", kind->name, c->name);
      } else {
        fail++;
        printf ("FAIL %s %s: %s\n", kind->name, c->name, g.why->len ? g.why->str : "failed");
      }
      fflush (stdout);
    }
    if (cases->len > 0 && g.verbose)
      printf ("%s: %u passed, %u failed; worst error %.3g of the float32 tolerance (allowed: %g)\n", kind->name, pass,
              fail, g.worst_ratio, g.factor);
    else if (cases->len > 0)
      printf ("%s: %u passed, %u failed\n", kind->name, pass, fail);
    total_pass += pass;
    total_fail += fail;
  }
  fputs (skipped->str, stdout);
  for (guint i = 0; i < g.notes->len; i++)
    printf ("note: %s\n", (char *) g.notes->pdata[i]);
  printf ("%u passed, %u failed, %u skipped\n", total_pass, total_fail, total_skip);
  status = total_fail ? 1 : 0;

  g_hash_table_unref (g.manifests);
  g_hash_table_unref (g.files);
  g_string_free (g.why, TRUE);
  g_ptr_array_unref (g.notes);
  g_free (g.dir);
  g_free (g.backend);
  g_free (g.vocab);
  return status;
}
