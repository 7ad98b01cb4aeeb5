/* app/cli/golden-text-encoder.c: golden kind "text-encoder": refs/<ref>/ cases named text_encoder*
 * (one encoder on the stored input_ids: last_hidden_state, penultimate_hidden_state(_final_ln),
 * pooler_output, text_embeds, hidden_states_prompt0) and prompt_embeds (SDXL: both encoders through
 * easel_cond_sdxl). Each case runs on every form of every model its manifest names: the diffusers
 * folder (models/NAME/text_encoder*) and the single file (models/NAME.safetensors, with the sibling
 * folder's text_encoder* config.json as the hint). A form without the encoder, or a single file whose
 * attention heads nothing tells, is skipped with a note; a case with no form at all fails. */
#include <string.h>

#include "engine/checkpoint.h"
#include "engine/clip.h"
#include "engine/conditioning.h"
#include "engine/error.h"
#include "golden.h"

static gboolean
accept (const char *name)
{
  return g_str_has_prefix (name, "text_encoder") || strcmp (name, "prompt_embeds") == 0;
}

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "sd1", accept);
  easel_golden_collect_refs (g, cases, "sdxl", accept);
}

/* Everything one encoder gives for a batch of prompts, read back to the host. */
typedef struct {
  gint64 batch, len, width, projection;
  int n_states;
  float *last, *pen, *pen_ln, *pooled, *text_embeds;
  float *states; /* (n_states, batch, len, width) */
} Encoded;

static void
encoded_clear (Encoded *e)
{
  g_free (e->last);
  g_free (e->pen);
  g_free (e->pen_ln);
  g_free (e->pooled);
  g_free (e->text_embeds);
  g_free (e->states);
  memset (e, 0, sizeof *e);
}

/* One graph: every hidden state, the final-LN'd last and penultimate, pooled and text_embeds. */
static gboolean
encode_all (EaselClip *clip, EaselBackend *backend, const gint32 *ids, gint64 batch, gint64 len, Encoded *e,
            GError **error)
{
  const EaselClipConfig *cfg = easel_clip_config (clip);
  EaselClipRequest req = { .skip = 0, .final_ln = TRUE, .pooled = TRUE, .text_embeds = cfg->projection > 0 };
  g_autoptr (EaselGraph) g = easel_graph_new ();
  EaselClipOutputs out;
  gsize n = (gsize)(batch * len * cfg->width);

  if (cfg->n_layers < 1 || !easel_clip_build (clip, g, ids, batch, len, &req, &out, error))
    return FALSE;
  EaselTensor *pen = out.hidden_states[cfg->n_layers - 1];
  EaselTensor *pen_ln = easel_clip_final_norm (clip, g, pen);
  easel_graph_mark_output (g, pen_ln);
  for (int i = 0; i < out.n_states; i++)
    easel_graph_mark_output (g, out.hidden_states[i]);
  if (!easel_backend_compute (backend, g, error))
    return FALSE;

  e->batch = batch;
  e->len = len;
  e->width = cfg->width;
  e->projection = cfg->projection;
  e->n_states = out.n_states;
  e->last = g_new (float, n);
  e->pen = g_new (float, n);
  e->pen_ln = g_new (float, n);
  e->pooled = g_new (float, batch * cfg->width);
  e->states = g_new (float, n *out.n_states);
  if (!easel_backend_read (backend, out.hidden, e->last, error) || !easel_backend_read (backend, pen, e->pen, error)
      || !easel_backend_read (backend, pen_ln, e->pen_ln, error)
      || !easel_backend_read (backend, out.pooled, e->pooled, error))
    return FALSE;
  for (int i = 0; i < out.n_states; i++)
    if (!easel_backend_read (backend, out.hidden_states[i], e->states + n * i, error))
      return FALSE;
  if (out.text_embeds) {
    e->text_embeds = g_new (float, batch * cfg->projection);
    if (!easel_backend_read (backend, out.text_embeds, e->text_embeds, error))
      return FALSE;
  }
  return TRUE;
}

typedef struct {
  EaselGolden *g;
  EaselGoldenCase *c;
  const char *refs_file; /* the refs .safetensors */
  double atol, rtol;
  EaselBackend *backend;
} Run;

/* The stored ids of a component: I32 (B, L). transfer none (inside the cached file). */
static const gint32 *
load_ids (Run *r, const char *component, gint64 *batch, gint64 *len, GError **error)
{
  EaselSafetensors *st = easel_golden_safetensors (r->g, r->refs_file, error);
  g_autofree char *name = g_strconcat (component, "/input_ids", NULL);
  const EaselStTensor *t;

  if (st == NULL)
    return NULL;
  t = easel_safetensors_find (st, name);
  if (t == NULL || t->dtype != EASEL_DTYPE_I32 || t->n_dims != 2 || ((guintptr)t->data % 4) != 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                 "%s: '%s' is missing or not an aligned I32 (B, L) tensor", r->refs_file, name);
    return NULL;
  }
  *batch = t->shape[0];
  *len = t->shape[1];
  return (const gint32 *)t->data;
}

/* Compares one output of the manifest; name is its key ("text_encoder_2/text_embeds"). */
static gboolean
compare_output (Run *r, const char *form, const char *name, const float *got, gsize n, const gint64 *shape, int n_dims,
                GError **error)
{
  g_autofree float *want = NULL;
  g_autofree char *label = g_strdup_printf ("%s %s", form, name);

  if (got == NULL) {
    easel_golden_fail (r->g, "%s: not produced", label);
    return FALSE;
  }
  want = easel_golden_tensor_f32 (r->g, r->refs_file, name, n, NULL, error);
  if (want == NULL)
    return FALSE;
  return easel_golden_compare (r->g, label, got, want, n, shape, n_dims, r->atol, r->rtol);
}

/* Checks every output of a text_encoder* case against e. */
static gboolean
check_encoder_outputs (Run *r, const char *form, const char *component, const Encoded *e, GError **error)
{
  const EaselJson *outputs = easel_json_get (r->c->spec, "outputs");
  gboolean ok = TRUE;
  gsize plen = strlen (component);
  gint64 B = e->batch, L = e->len, C = e->width;
  gsize n_hidden = (gsize)(B * L * C);

  for (gsize i = 0; i < easel_json_length (outputs); i++) {
    const char *name = easel_json_key_at (outputs, i);
    const char *what = name;
    if (strncmp (name, component, plen) == 0 && name[plen] == '/')
      what = name + plen + 1;
    const gint64 hshape[3] = { B, L, C }, pshape[2] = { B, C }, tshape[2] = { B, e->projection };

    if (strcmp (what, "last_hidden_state") == 0) {
      ok &= compare_output (r, form, name, e->last, n_hidden, hshape, 3, error);
    } else if (strcmp (what, "penultimate_hidden_state") == 0) {
      ok &= compare_output (r, form, name, e->pen, n_hidden, hshape, 3, error);
    } else if (strcmp (what, "penultimate_hidden_state_final_ln") == 0) {
      ok &= compare_output (r, form, name, e->pen_ln, n_hidden, hshape, 3, error);
    } else if (strcmp (what, "pooler_output") == 0) {
      ok &= compare_output (r, form, name, e->pooled, (gsize)(B * C), pshape, 2, error);
    } else if (strcmp (what, "text_embeds") == 0) {
      ok &= compare_output (r, form, name, e->text_embeds, (gsize)(B * e->projection), tshape, 2, error);
    } else if (strcmp (what, "hidden_states_prompt0") == 0) {
      gsize row = (gsize)(L * C);
      g_autofree float *p0 = g_new (float, row * e->n_states);
      const gint64 sshape[3] = { e->n_states, L, C };
      for (int s = 0; s < e->n_states; s++)
        memcpy (p0 + row * s, e->states + n_hidden * s, row * sizeof (float));
      ok &= compare_output (r, form, name, p0, row * e->n_states, sshape, 3, error);
    } else {
      easel_golden_fail (r->g, "unknown output '%s'", name);
      ok = FALSE;
    }
    if (error && *error)
      return FALSE;
  }
  return ok;
}

/* Text encoder number index of a component name: text_encoder -> 0, text_encoder_2 -> 1. */
static guint
component_index (const char *component)
{
  const char *u = strrchr (component, '_');
  guint64 k;
  if (u && g_ascii_string_to_unsigned (u + 1, 10, 2, 9, &k, NULL))
    return (guint)k - 1;
  return 0;
}

typedef enum { ENCODED, SKIPPED, FAILED } EncodeResult;

/* Loads component from ck (hint: models/NAME/<component>/config.json when present) and runs it on
 * the stored ids of ids_component. */
static EncodeResult
encode_form (Run *r, const EaselCheckpoint *ck, const EaselGoldenModel *m, const char *form, const char *component,
             Encoded *e, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autofree char *hint_path
    = g_build_filename (easel_golden_dir (r->g), "models", m->name, component, "config.json", NULL);
  g_autoptr (EaselJson) hint = NULL;
  gint64 batch = 0, len = 0;

  g_autofree char *prefix = easel_clip_find_prefix (ck, component_index (component), &local);
  if (prefix == NULL) {
    easel_golden_note (r->g, "%s: %s: no %s, form skipped", r->c->name, form, component);
    return SKIPPED;
  }
  if (g_file_test (hint_path, G_FILE_TEST_IS_REGULAR) && !(hint = easel_json_parse_file (hint_path, 0, error)))
    return FAILED;
  g_autoptr (EaselClip) clip = easel_clip_new (ck, prefix, hint, &local);
  if (clip == NULL && hint == NULL && g_error_matches (local, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED)) {
    easel_golden_note (r->g, "%s: %s: %s has no %s/config.json to give what the weights do not tell; form skipped",
                       r->c->name, form, m->name, component);
    return SKIPPED;
  }
  if (clip == NULL) {
    g_propagate_error (error, g_steal_pointer (&local));
    return FAILED;
  }
  const gint32 *ids = load_ids (r, component, &batch, &len, error);
  if (ids == NULL || !encode_all (clip, r->backend, ids, batch, len, e, error))
    return FAILED;
  return ENCODED;
}

static gboolean
run (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  const char *slash = strchr (c->name, '/');
  g_autofree char *ref = g_strndup (c->name, slash ? (gsize)(slash - c->name) : 0);
  const char *case_name = slash ? slash + 1 : c->name;
  g_autofree char *manifest_rel = g_build_filename ("refs", ref, "manifest.json", NULL);
  const EaselJson *manifest = easel_golden_manifest (g, manifest_rel);
  g_autoptr (GPtrArray) models = NULL;
  g_autoptr (EaselBackend) backend = NULL;
  gboolean sdxl_cond = strcmp (case_name, "prompt_embeds") == 0;
  gboolean ok = TRUE;
  guint n_forms = 0;

  if (manifest == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "no %s", manifest_rel);
    return FALSE;
  }
  if ((backend = easel_golden_new_backend (g, error)) == NULL)
    return FALSE;
  Run r = { g, c, NULL, 0, 0, backend };
  g_autofree char *refs_file = g_build_filename (c->dir, easel_json_get_string (manifest, "file", ""), NULL);
  r.refs_file = refs_file;
  easel_golden_tolerance (c->spec, 1e-4, 0, &r.atol, &r.rtol);
  models = easel_golden_models (g, manifest);

  for (guint mi = 0; mi < models->len; mi++) {
    const EaselGoldenModel *m = models->pdata[mi];
    const char *paths[2] = { m->folder, m->single_file };
    for (int f = 0; f < 2; f++) {
      g_autofree char *form = NULL;
      g_autoptr (EaselCheckpoint) ck = NULL;
      if (paths[f] == NULL) {
        easel_golden_note (g, "%s: %s: no %s", c->name, m->name, f == 0 ? "diffusers folder" : "single file");
        continue;
      }
      form = f == 0 ? g_strconcat (m->name, "/", NULL) : g_strconcat (m->name, ".safetensors", NULL);
      if (!(ck = easel_checkpoint_open (paths[f], error)))
        return FALSE;

      if (!sdxl_cond) {
        Encoded e = { 0 };
        EncodeResult res = encode_form (&r, ck, m, form, case_name, &e, error);
        if (res == ENCODED) {
          n_forms++;
          ok &= check_encoder_outputs (&r, form, case_name, &e, error);
        }
        encoded_clear (&e);
        if (res == FAILED || (error && *error))
          return FALSE;
        continue;
      }

      Encoded e1 = { 0 }, e2 = { 0 };
      EncodeResult r1 = encode_form (&r, ck, m, form, "text_encoder", &e1, error);
      EncodeResult r2 = r1 == ENCODED ? encode_form (&r, ck, m, form, "text_encoder_2", &e2, error) : r1;
      if (r1 == ENCODED && r2 == ENCODED) {
        n_forms++;
        if (e1.batch != e2.batch || e1.len != e2.len || e2.text_embeds == NULL) {
          easel_golden_fail (g, "%s: the encoders' batches differ, or encoder 2 has no projection", form);
          ok = FALSE;
        } else {
          gint64 B = e1.batch, L = e1.len, W = e1.width + e2.width, P = e2.projection;
          g_autofree float *context = g_new (float, B *L *W);
          g_autofree float *pooled = g_new (float, B *P);
          const gint64 cshape[3] = { B, L, W }, pshape[2] = { B, P };
          easel_cond_sdxl (context, pooled, e1.pen, e1.width, e2.pen, e2.width, B, L, e2.text_embeds, 1, P);
          ok &= compare_output (&r, form, "prompt_embeds", context, (gsize)(B * L * W), cshape, 3, error);
          ok &= compare_output (&r, form, "pooled_prompt_embeds", pooled, (gsize)(B * P), pshape, 2, error);
        }
      }
      encoded_clear (&e1);
      encoded_clear (&e2);
      if (r1 == FAILED || r2 == FAILED || (error && *error))
        return FALSE;
    }
  }
  if (n_forms == 0) {
    easel_golden_fail (g, "no model form with this encoder to run");
    return FALSE;
  }
  return ok;
}

const EaselGoldenKind easel_golden_kind_text_encoder = { "text-encoder", collect, run };
