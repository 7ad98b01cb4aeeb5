/* tests/test-clip.c: the text encoders (engine/clip) against a plain double-precision forward pass
 * written here from the definition of CLIP's text transformer, in three namings of the same small
 * random model (transformers with text_model., flat transformers, OpenCLIP with fused q/k/v and a
 * transposed projection in F16); their errors; the real tiny models' clip skip against the
 * references; and the conditioning helpers (engine/conditioning) on hand-computed values. */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "engine/clip.h"
#include "engine/conditioning.h"
#include "engine/error.h"
#include "engine/safetensors.h"
#include "testutil.h"

/* --- a small model and its reference forward -------------------------------------------------- */

enum { V = 12, C = 4, NPOS = 7, NL = 2, H = 2, F = 8, PR = 3, B = 2, LEN = 6 };

typedef struct {
  float ln1w[C], ln1b[C], q[C * C], qb[C], k[C * C], kb[C], v[C * C], vb[C], o[C * C], ob[C];
  float ln2w[C], ln2b[C], fc1[F * C], fc1b[F], fc2[C * F], fc2b[C];
} RefLayer;

typedef struct {
  float tok[V * C], pos[NPOS * C], fw[C], fb[C], proj[PR * C]; /* proj [PR, C]: transformers layout */
  RefLayer l[NL];
} RefModel;

static const gint32 test_ids[B * LEN] = { 0, 3, 5, 11, 11, 11, 1, 11, 2, 2, 2, 2 }; /* EOS (11) at 3 and 1 */

/* Multiples of 1/32 in [-0.5, 0.5]: exact in F16, so every stored dtype holds the same model. */
static void
fill (float *x, gsize n, guint32 *state, float base)
{
  for (gsize i = 0; i < n; i++) {
    *state = *state * 1664525u + 1013904223u;
    x[i] = base + (float)((gint)((*state >> 16) % 33) - 16) / 32.0f;
  }
}

static void
make_model (RefModel *m)
{
  guint32 s = 12345;
  fill (m->tok, V * C, &s, 0);
  fill (m->pos, NPOS * C, &s, 0);
  fill (m->fw, C, &s, 1);
  fill (m->fb, C, &s, 0);
  fill (m->proj, PR * C, &s, 0);
  for (int i = 0; i < NL; i++) {
    RefLayer *l = &m->l[i];
    fill (l->ln1w, C, &s, 1), fill (l->ln1b, C, &s, 0), fill (l->ln2w, C, &s, 1), fill (l->ln2b, C, &s, 0);
    fill (l->q, C * C, &s, 0), fill (l->qb, C, &s, 0), fill (l->k, C * C, &s, 0), fill (l->kb, C, &s, 0);
    fill (l->v, C * C, &s, 0), fill (l->vb, C, &s, 0), fill (l->o, C * C, &s, 0), fill (l->ob, C, &s, 0);
    fill (l->fc1, F * C, &s, 0), fill (l->fc1b, F, &s, 0), fill (l->fc2, C * F, &s, 0), fill (l->fc2b, C, &s, 0);
    for (int j = 0; j < C * C; j++) /* peaky attention, as the tiny models do */
      l->q[j] *= 4, l->k[j] *= 4;
  }
}

static void
ref_ln (double *y, const double *x, const float *w, const float *b)
{
  double mu = 0, var = 0;
  for (int c = 0; c < C; c++)
    mu += x[c] / C;
  for (int c = 0; c < C; c++)
    var += (x[c] - mu) * (x[c] - mu) / C;
  for (int c = 0; c < C; c++)
    y[c] = (x[c] - mu) / sqrt (var + 1e-5) * w[c] + b[c];
}

/* y (n) = W (n, k) x (k) + b */
static void
ref_lin (double *y, const double *x, const float *w, const float *b, int n, int k)
{
  for (int i = 0; i < n; i++) {
    double s = b ? b[i] : 0;
    for (int j = 0; j < k; j++)
      s += w[i * k + j] * x[j];
    y[i] = s;
  }
}

/* states (NL + 1, B, LEN, C), last (B, LEN, C) after the final LN, pooled (B, C), text (B, PR). */
static void
ref_forward (const RefModel *m, gboolean quick_gelu, double *states, double *last, double *pooled, double *text)
{
  static double x[B * LEN * C], h[B * LEN * C], q[B * LEN * C], k[B * LEN * C], v[B * LEN * C], a[LEN * C];
  const int dh = C / H;

  for (int b = 0; b < B; b++)
    for (int i = 0; i < LEN; i++)
      for (int c = 0; c < C; c++)
        x[(b * LEN + i) * C + c] = m->tok[test_ids[b * LEN + i] * C + c] + m->pos[i * C + c];
  memcpy (states, x, sizeof x);
  for (int li = 0; li < NL; li++) {
    const RefLayer *l = &m->l[li];
    for (int r = 0; r < B * LEN; r++) {
      ref_ln (h + r * C, x + r * C, l->ln1w, l->ln1b);
      ref_lin (q + r * C, h + r * C, l->q, l->qb, C, C);
      ref_lin (k + r * C, h + r * C, l->k, l->kb, C, C);
      ref_lin (v + r * C, h + r * C, l->v, l->vb, C, C);
    }
    for (int b = 0; b < B; b++) {
      for (int i = 0; i < LEN; i++)
        for (int hd = 0; hd < H; hd++) {
          double p[LEN], mx = -1e300, sum = 0;
          for (int j = 0; j <= i; j++) { /* causal: keys up to the query */
            double s = 0;
            for (int d = 0; d < dh; d++)
              s += q[(b * LEN + i) * C + hd * dh + d] * k[(b * LEN + j) * C + hd * dh + d];
            p[j] = s / sqrt ((double)dh);
            mx = MAX (mx, p[j]);
          }
          for (int j = 0; j <= i; j++)
            sum += (p[j] = exp (p[j] - mx));
          for (int d = 0; d < dh; d++) {
            double s = 0;
            for (int j = 0; j <= i; j++)
              s += p[j] / sum * v[(b * LEN + j) * C + hd * dh + d];
            a[i * C + hd * dh + d] = s;
          }
        }
      for (int i = 0; i < LEN; i++) {
        double o[C];
        ref_lin (o, a + i * C, l->o, l->ob, C, C);
        for (int c = 0; c < C; c++)
          x[(b * LEN + i) * C + c] += o[c];
      }
    }
    for (int r = 0; r < B * LEN; r++) {
      double n2[C], f1[F], f2[C];
      ref_ln (n2, x + r * C, l->ln2w, l->ln2b);
      ref_lin (f1, n2, l->fc1, l->fc1b, F, C);
      for (int j = 0; j < F; j++)
        f1[j] = quick_gelu ? f1[j] / (1 + exp (-1.702 * f1[j])) : 0.5 * f1[j] * (1 + erf (f1[j] / sqrt (2.0)));
      ref_lin (f2, f1, l->fc2, l->fc2b, C, F);
      for (int c = 0; c < C; c++)
        x[r * C + c] += f2[c];
    }
    memcpy (states + (gsize)(li + 1) * B * LEN * C, x, sizeof x);
  }
  for (int r = 0; r < B * LEN; r++)
    ref_ln (last + r * C, x + r * C, m->fw, m->fb);
  for (int b = 0; b < B; b++) {
    int eos = b == 0 ? 3 : 1;
    memcpy (pooled + b * C, last + (b * LEN + eos) * C, C * sizeof (double));
    ref_lin (text + b * PR, pooled + b * C, m->proj, NULL, PR, C);
  }
}

/* --- the model in a checkpoint, in each naming ------------------------------------------------- */

typedef enum { NAMING_TEXT_MODEL, NAMING_FLAT, NAMING_OPENCLIP } TestNaming;

static void
add (EaselSafetensorsWriter *w, const char *prefix, const char *name, const float *data, int n_dims,
     const gint64 *shape, gboolean f16)
{
  g_autofree char *full = g_strconcat (prefix, name, NULL);
  g_autoptr (GError) error = NULL;
  gint64 n = 1;
  for (int d = 0; d < n_dims; d++)
    n *= shape[d];
  if (f16) {
    g_autofree guint16 *h = g_new (guint16, n);
    for (gint64 i = 0; i < n; i++)
      h[i] = easel_f32_to_f16 (data[i]);
    g_assert_true (easel_safetensors_writer_add (w, full, EASEL_DTYPE_F16, n_dims, shape, h, &error));
  } else {
    g_assert_true (easel_safetensors_writer_add (w, full, EASEL_DTYPE_F32, n_dims, shape, data, &error));
  }
}

/* Writes m under prefix in the naming; skip: a key to leave out (NULL: none). Returns the path. */
static char *
write_model (const RefModel *m, TestNaming naming, const char *prefix, const char *skip, const char *dir)
{
  g_autoptr (EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  g_autoptr (GError) error = NULL;
  gboolean oc = naming == NAMING_OPENCLIP;
  const char *tm = naming == NAMING_TEXT_MODEL ? "text_model." : "";
  const gint64 vc[2] = { V, C }, pc[2] = { NPOS, C }, c1[1] = { C }, cc[2] = { C, C }, fc[2] = { F, C },
               cf[2] = { C, F }, f1[1] = { F }, c3[2] = { 3 * C, C }, c31[1] = { 3 * C }, prc[2] = { PR, C },
               cpr[2] = { C, PR }, ids_shape[2] = { 1, NPOS };
  static const char *const tf_layer[] = { "layer_norm1.weight",
                                          "layer_norm1.bias",
                                          "layer_norm2.weight",
                                          "layer_norm2.bias",
                                          "self_attn.out_proj.weight",
                                          "self_attn.out_proj.bias",
                                          "mlp.fc1.weight",
                                          "mlp.fc1.bias",
                                          "mlp.fc2.weight",
                                          "mlp.fc2.bias" };
  static const char *const oc_layer[]
    = { "ln_1.weight",        "ln_1.bias",       "ln_2.weight",   "ln_2.bias",         "attn.out_proj.weight",
        "attn.out_proj.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias" };

  for (int i = 0; i < NL; i++) {
    const RefLayer *l = &m->l[i];
    const float *data[] = { l->ln1w, l->ln1b, l->ln2w, l->ln2b, l->o, l->ob, l->fc1, l->fc1b, l->fc2, l->fc2b };
    const gint64 *shapes[] = { c1, c1, c1, c1, cc, c1, fc, f1, cf, c1 };
    const int dims[] = { 1, 1, 1, 1, 2, 1, 2, 1, 2, 1 };
    g_autofree char *lp = oc ? g_strdup_printf ("%stransformer.resblocks.%d.", prefix, i)
                             : g_strdup_printf ("%s%sencoder.layers.%d.", prefix, tm, i);
    for (gsize j = 0; j < G_N_ELEMENTS (data); j++) {
      const char *key = oc ? oc_layer[j] : tf_layer[j];
      g_autofree char *full = g_strconcat (lp, key, NULL);
      if (g_strcmp0 (skip, full) != 0)
        add (w, lp, key, data[j], dims[j], shapes[j], oc);
    }
    if (oc) {
      float qkv[3 * C * C], qkvb[3 * C];
      memcpy (qkv, l->q, sizeof l->q), memcpy (qkv + C * C, l->k, sizeof l->k),
        memcpy (qkv + 2 * C * C, l->v, sizeof l->v);
      memcpy (qkvb, l->qb, sizeof l->qb), memcpy (qkvb + C, l->kb, sizeof l->kb),
        memcpy (qkvb + 2 * C, l->vb, sizeof l->vb);
      add (w, lp, "attn.in_proj_weight", qkv, 2, c3, TRUE);
      add (w, lp, "attn.in_proj_bias", qkvb, 1, c31, TRUE);
    } else {
      add (w, lp, "self_attn.q_proj.weight", l->q, 2, cc, FALSE),
        add (w, lp, "self_attn.q_proj.bias", l->qb, 1, c1, FALSE);
      add (w, lp, "self_attn.k_proj.weight", l->k, 2, cc, FALSE),
        add (w, lp, "self_attn.k_proj.bias", l->kb, 1, c1, FALSE);
      add (w, lp, "self_attn.v_proj.weight", l->v, 2, cc, FALSE),
        add (w, lp, "self_attn.v_proj.bias", l->vb, 1, c1, FALSE);
    }
  }
  if (oc) {
    float pt[C * PR], scale = 4.6f;
    for (int p = 0; p < PR; p++)
      for (int c = 0; c < C; c++)
        pt[c * PR + p] = m->proj[p * C + c];
    add (w, prefix, "token_embedding.weight", m->tok, 2, vc, TRUE);
    add (w, prefix, "positional_embedding", m->pos, 2, pc, TRUE);
    add (w, prefix, "ln_final.weight", m->fw, 1, c1, TRUE);
    add (w, prefix, "ln_final.bias", m->fb, 1, c1, TRUE);
    add (w, prefix, "text_projection", pt, 2, cpr, TRUE);
    add (w, prefix, "logit_scale", &scale, 0, c1, TRUE); /* a scalar */
  } else {
    g_autofree char *p = g_strconcat (prefix, tm, NULL);
    gint64 pos_ids[NPOS];
    for (int i = 0; i < NPOS; i++)
      pos_ids[i] = i;
    add (w, p, "embeddings.token_embedding.weight", m->tok, 2, vc, FALSE);
    add (w, p, "embeddings.position_embedding.weight", m->pos, 2, pc, FALSE);
    add (w, p, "final_layer_norm.weight", m->fw, 1, c1, FALSE);
    add (w, p, "final_layer_norm.bias", m->fb, 1, c1, FALSE);
    add (w, prefix, "text_projection.weight", m->proj, 2, prc, FALSE);
    g_autofree char *ids_name = g_strconcat (p, "embeddings.position_ids", NULL);
    g_assert_true (easel_safetensors_writer_add (w, ids_name, EASEL_DTYPE_I64, 2, ids_shape, pos_ids, &error));
  }
  char *path = g_build_filename (dir, "clip.safetensors", NULL);
  g_assert_true (easel_safetensors_writer_save (w, path, &error));
  g_assert_no_error (error);
  return path;
}

static void
assert_close_d (const float *got, const double *want, gsize n, double tol)
{
  for (gsize i = 0; i < n; i++)
    if (fabs (got[i] - want[i]) > tol)
      g_error ("element %" G_GSIZE_FORMAT ": got %.7g, want %.7g", i, got[i], want[i]);
}

static EaselJson *
json (const char *text)
{
  g_autoptr (GError) error = NULL;
  EaselJson *j = easel_json_parse (text, strlen (text), &error);
  g_assert_no_error (error);
  return j;
}

typedef struct {
  char *dir;
  RefModel m;
  double states[(NL + 1) * B * LEN * C], last[B * LEN * C], pooled[B * C], text[B * PR];
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  f->dir = g_dir_make_tmp ("easel-clip-XXXXXX", NULL);
  g_assert_nonnull (f->dir);
  make_model (&f->m);
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  g_autofree char *path = g_build_filename (f->dir, "clip.safetensors", NULL);
  g_unlink (path);
  g_rmdir (f->dir);
  g_free (f->dir);
}

/* Runs the naming's file through easel_clip_build and compares everything with the reference. */
static void
check_naming (Fixture *f, TestNaming naming, const char *prefix)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *path = write_model (&f->m, naming, prefix, NULL, f->dir);
  g_autoptr (EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  g_assert_no_error (error);
  g_autoptr (EaselJson) hint = json ("{\"num_attention_heads\": 2, \"hidden_size\": 4}");
  g_autoptr (EaselClip) clip = easel_clip_new (ck, prefix, hint, &error);
  g_assert_no_error (error);
  const EaselClipConfig *cfg = easel_clip_config (clip);
  g_assert_cmpint (cfg->width, ==, C);
  g_assert_cmpint (cfg->n_layers, ==, NL);
  g_assert_cmpint (cfg->heads, ==, H);
  g_assert_cmpint (cfg->ff_width, ==, F);
  g_assert_cmpint (cfg->projection, ==, PR);
  g_assert_cmpint (cfg->n_positions, ==, NPOS);
  g_assert_cmpint (cfg->fused_qkv, ==, naming == NAMING_OPENCLIP);
  /* conventions: OpenCLIP is gelu, OpenAI CLIP in transformers naming quick_gelu */
  g_assert_cmpint (cfg->act, ==, naming == NAMING_OPENCLIP ? EASEL_UNARY_GELU : EASEL_UNARY_QUICK_GELU);
  ref_forward (&f->m, naming != NAMING_OPENCLIP, f->states, f->last, f->pooled, f->text);

  g_autoptr (EaselBackend) be = easel_backend_new_cpu (2);
  g_autoptr (EaselGraph) g = easel_graph_new ();
  EaselClipRequest req = { .skip = 0, .final_ln = TRUE, .pooled = TRUE, .text_embeds = TRUE };
  EaselClipOutputs out;
  float got[(NL + 1) * B * LEN * C];
  g_assert_true (easel_clip_build (clip, g, test_ids, B, LEN, &req, &out, &error));
  g_assert_cmpint (out.n_states, ==, NL + 1);
  for (int i = 0; i < out.n_states; i++)
    easel_graph_mark_output (g, out.hidden_states[i]);
  g_assert_true (easel_backend_compute (be, g, &error));
  g_assert_no_error (error);
  g_assert_true (easel_backend_read (be, out.hidden, got, &error));
  assert_close_d (got, f->last, B * LEN * C, 2e-5);
  g_assert_true (easel_backend_read (be, out.pooled, got, &error));
  assert_close_d (got, f->pooled, B * C, 2e-5);
  g_assert_true (easel_backend_read (be, out.text_embeds, got, &error));
  assert_close_d (got, f->text, B * PR, 2e-5);
  for (int i = 0; i <= NL; i++) {
    g_assert_true (easel_backend_read (be, out.hidden_states[i], got, &error));
    assert_close_d (got, f->states + (gsize)i * B * LEN * C, B * LEN * C, 2e-5);
  }

  /* clip skip: layer -2 without the final LN; the last layer is not built */
  float hidden[B * LEN * C];
  EaselClipRequest skip = { .skip = 1, .final_ln = FALSE };
  g_autoptr (EaselGraph) g2 = easel_graph_new ();
  g_assert_true (easel_clip_build (clip, g2, test_ids, B, LEN, &skip, &out, &error));
  g_assert_cmpint (out.n_states, ==, NL);
  g_assert_true (easel_clip_encode (clip, be, test_ids, B, LEN, &skip, hidden, NULL, NULL, &error));
  g_assert_no_error (error);
  assert_close_d (hidden, f->states + (gsize)(NL - 1) * B * LEN * C, B * LEN * C, 2e-5);

  /* "clip skip 2" with the final LN, and pooled / text_embeds still from the last layer */
  double pen_ln[B * LEN * C];
  float pooled[B * C], text[B * PR];
  EaselClipRequest skip_ln = { .skip = 1, .final_ln = TRUE, .pooled = TRUE, .text_embeds = TRUE };
  for (int r = 0; r < B * LEN; r++)
    ref_ln (pen_ln + r * C, f->states + (gsize)(NL - 1) * B * LEN * C + r * C, f->m.fw, f->m.fb);
  g_assert_true (easel_clip_encode (clip, be, test_ids, B, LEN, &skip_ln, hidden, pooled, text, &error));
  g_assert_no_error (error);
  assert_close_d (hidden, pen_ln, B * LEN * C, 2e-5);
  assert_close_d (pooled, f->pooled, B * C, 2e-5);
  assert_close_d (text, f->text, B * PR, 2e-5);
}

static void
test_forward_text_model (Fixture *f, gconstpointer data)
{
  check_naming (f, NAMING_TEXT_MODEL, "cond_stage_model.transformer.");
}

static void
test_forward_flat (Fixture *f, gconstpointer data)
{
  check_naming (f, NAMING_FLAT, "");
}

static void
test_forward_openclip (Fixture *f, gconstpointer data)
{
  check_naming (f, NAMING_OPENCLIP, "conditioner.embedders.1.model.");
}

static void
test_errors (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (EaselJson) hint = json ("{\"num_attention_heads\": 2}");
  const char *prefix = "cond_stage_model.model.";

  /* a missing weight is named */
  {
    g_autofree char *path = write_model (&f->m, NAMING_OPENCLIP, prefix,
                                         "cond_stage_model.model.transformer.resblocks.1.mlp.c_proj.weight", f->dir);
    g_autoptr (EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
    g_assert_no_error (error);
    g_assert_null (easel_clip_new (ck, prefix, hint, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND);
    g_assert_nonnull (strstr (error->message, "layer 1"));
    g_assert_nonnull (strstr (error->message, "fc2.weight"));
    g_clear_error (&error);
  }
  g_autofree char *path = write_model (&f->m, NAMING_OPENCLIP, prefix, NULL, f->dir);
  g_autoptr (EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  g_assert_no_error (error);

  /* no encoder there */
  g_assert_null (easel_clip_new (ck, "text_encoder/", hint, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND);
  g_clear_error (&error);
  /* a width of 4 has no head-width-64 convention */
  g_assert_null (easel_clip_new (ck, prefix, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED);
  g_assert_nonnull (strstr (error->message, "config.json"));
  g_clear_error (&error);
  /* hints that contradict the weights, or that are unusable */
  static const char *const bad[] = { "{\"num_attention_heads\": 3}", "{\"num_attention_heads\": 2, \"hidden_size\": 8}",
                                     "{\"num_attention_heads\": 2, \"num_hidden_layers\": 3}",
                                     "{\"num_attention_heads\": 2, \"hidden_act\": \"relu\"}",
                                     "{\"num_attention_heads\": 2, \"intermediate_size\": 16}" };
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++) {
    g_autoptr (EaselJson) h = json (bad[i]);
    g_assert_null (easel_clip_new (ck, prefix, h, &error));
    g_assert_nonnull (error);
    g_clear_error (&error);
  }
  /* num_hidden_layers below the tensors' count runs fewer layers (SD 2.x's 23 of 24) */
  {
    g_autoptr (EaselJson) h = json ("{\"num_attention_heads\": 2, \"num_hidden_layers\": 1}");
    g_autoptr (EaselClip) one = easel_clip_new (ck, prefix, h, &error);
    g_assert_no_error (error);
    g_assert_cmpint (easel_clip_config (one)->n_layers, ==, 1);
  }

  g_autoptr (EaselClip) clip = easel_clip_new (ck, prefix, hint, &error);
  g_assert_no_error (error);
  g_autoptr (EaselBackend) be = easel_backend_new_cpu (1);
  float hidden[B * NPOS * C];
  EaselClipRequest req = { .skip = 0, .final_ln = TRUE };
  gint32 ids[B * LEN];
  memcpy (ids, test_ids, sizeof ids);
  ids[7] = V; /* outside the vocabulary */
  g_assert_false (easel_clip_encode (clip, be, ids, B, LEN, &req, hidden, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_assert_nonnull (strstr (error->message, "prompt 1, position 1"));
  g_clear_error (&error);
  ids[7] = -1;
  g_assert_false (easel_clip_encode (clip, be, ids, B, LEN, &req, hidden, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  gint32 long_ids[NPOS + 1] = { 0 };
  g_assert_false (easel_clip_encode (clip, be, long_ids, 1, NPOS + 1, &req, hidden, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  req.skip = NL + 1;
  g_assert_false (easel_clip_encode (clip, be, test_ids, B, LEN, &req, hidden, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
}

static void
test_eos (void)
{
  gint64 eos[B];
  easel_clip_eos_positions (test_ids, B, LEN, eos);
  g_assert_cmpint (eos[0], ==, 3); /* the first of the repeated largest ids */
  g_assert_cmpint (eos[1], ==, 1);
}

/* --- the real tiny models ---------------------------------------------------------------------- */

static void
test_find_prefix (void)
{
  g_autofree char *sd1 = test_data_path ("models", "sd1_tiny.safetensors", NULL);
  g_autofree char *xl = test_data_path ("models", "sdxl_tiny", NULL);
  g_autofree char *refiner = test_data_path ("models", "sdxl_refiner_tiny.safetensors", NULL);
  g_autoptr (GError) error = NULL;
  if (sd1 == NULL)
    return;
  struct {
    const char *path;
    guint index;
    const char *want;
  } cases[] = {
    { sd1, 0, "cond_stage_model.transformer." },
    { sd1, 1, NULL },
    { xl, 0, "text_encoder/" },
    { xl, 1, "text_encoder_2/" },
    { xl, 2, NULL },
    { refiner, 0, NULL },
    { refiner, 1, "conditioner.embedders.0.model." },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (EaselCheckpoint) ck = easel_checkpoint_open (cases[i].path, &error);
    g_assert_no_error (error);
    g_autofree char *p = easel_clip_find_prefix (ck, cases[i].index, &error);
    g_assert_cmpstr (p, ==, cases[i].want);
    if (cases[i].want == NULL)
      g_assert_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND);
    g_clear_error (&error);
  }
}

/* SD 1.x "clip skip 2" through easel_clip_encode on the single file (F16, config as the hint). */
static void
test_real_clip_skip (void)
{
  g_autofree char *path = test_data_path ("models", "sd1_tiny.safetensors", NULL);
  g_autofree char *config = test_data_path ("models", "sd1_tiny", "text_encoder", "config.json", NULL);
  g_autofree char *refs = test_data_path ("refs", "sd1", "sd1_refs.safetensors", NULL);
  g_autoptr (GError) error = NULL;
  if (path == NULL)
    return;
  g_autoptr (EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  g_assert_no_error (error);
  g_autoptr (EaselJson) hint = easel_json_parse_file (config, 0, &error);
  g_assert_no_error (error);
  g_autoptr (EaselClip) clip = easel_clip_new (ck, "cond_stage_model.transformer.", hint, &error);
  g_assert_no_error (error);
  g_autoptr (EaselSafetensors) st = easel_safetensors_open (refs, &error);
  g_assert_no_error (error);
  const EaselStTensor *ids = easel_safetensors_find (st, "text_encoder/input_ids");
  const EaselStTensor *want = easel_safetensors_find (st, "text_encoder/penultimate_hidden_state_final_ln");
  g_assert_nonnull (ids);
  g_assert_nonnull (want);
  g_assert_cmpint (ids->dtype, ==, EASEL_DTYPE_I32);
  gint64 batch = ids->shape[0], len = ids->shape[1], width = easel_clip_config (clip)->width;
  g_autofree gint32 *id = g_memdup2 (ids->data, ids->nbytes);
  g_autofree float *w = easel_st_tensor_to_f32 (want);
  g_autofree float *got = g_new (float, batch *len *width);
  g_autoptr (EaselBackend) be = easel_backend_new_cpu (2);
  EaselClipRequest req = { .skip = 1, .final_ln = TRUE };
  g_assert_true (easel_clip_encode (clip, be, id, batch, len, &req, got, NULL, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (want->n_elements, ==, (guint64)(batch * len * width));
  for (gint64 i = 0; i < batch * len * width; i++)
    g_assert_cmpfloat_with_epsilon (got[i], w[i], 1e-4);
}

/* --- conditioning ------------------------------------------------------------------------------ */

static void
test_apply_weights (void)
{
  /* mean 2.5 before; [[2, 4], [3, 4]] has mean 3.25; all scaled by 2.5 / 3.25 = 10/13 */
  float z[4] = { 1, 2, 3, 4 };
  const float w[2] = { 2, 1 }, want[4] = { 20.0f / 13, 40.0f / 13, 30.0f / 13, 40.0f / 13 };
  easel_cond_apply_weights (z, 2, 2, w);
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat_with_epsilon (z[i], want[i], 1e-6);

  float same[4] = { 1, -2, 3, 0.5f };
  const float ones[2] = { 1, 1 };
  easel_cond_apply_weights (same, 2, 2, ones);
  g_assert_cmpfloat (same[1], ==, -2);
  g_assert_cmpfloat (same[3], ==, 0.5f);

  /* weighted mean 0: weights only, no division by zero */
  float zero[2] = { 1, -2 };
  const float w2[2] = { 2, 1 };
  easel_cond_apply_weights (zero, 2, 1, w2);
  g_assert_cmpfloat (zero[0], ==, 2);
  g_assert_cmpfloat (zero[1], ==, -2);
}

static void
test_concat (void)
{
  /* 2 chunks of (batch 2, 2 tokens, width 1) */
  const float c0[4] = { 1, 2, 3, 4 }, c1[4] = { 5, 6, 7, 8 }, want[8] = { 1, 2, 5, 6, 3, 4, 7, 8 };
  const float *chunks[2] = { c0, c1 };
  float out[8];
  easel_cond_concat_tokens (out, chunks, 2, 2, 2, 1);
  g_assert_cmpmem (out, sizeof out, want, sizeof want);

  const float a[2] = { 1, 2 }, b[4] = { 10, 11, 12, 13 }, fw[6] = { 1, 10, 11, 2, 12, 13 };
  float f[6];
  easel_cond_concat_features (f, a, 1, b, 2, 2);
  g_assert_cmpmem (f, sizeof f, fw, sizeof fw);
}

static void
test_sdxl (void)
{
  /* batch 2, 2 tokens, te1 width 1, te2 width 2; 2 chunks of pooled vectors (p = 1) per prompt */
  const float te1[4] = { 1, 2, 3, 4 }, te2[8] = { 10, 11, 12, 13, 14, 15, 16, 17 },
              te2_pooled[4] = { 100, 200, 300, 400 };
  const float want_ctx[12] = { 1, 10, 11, 2, 12, 13, 3, 14, 15, 4, 16, 17 }, want_pooled[2] = { 100, 300 };
  float ctx[12], pooled[2];
  easel_cond_sdxl (ctx, pooled, te1, 1, te2, 2, 2, 2, te2_pooled, 2, 1);
  g_assert_cmpmem (ctx, sizeof ctx, want_ctx, sizeof want_ctx);
  g_assert_cmpmem (pooled, sizeof pooled, want_pooled, sizeof want_pooled);

  g_assert_true (easel_cond_sdxl_uncond_is_zero (NULL, TRUE));
  g_assert_false (easel_cond_sdxl_uncond_is_zero ("", TRUE));
  g_assert_false (easel_cond_sdxl_uncond_is_zero ("blurry", TRUE));
  g_assert_false (easel_cond_sdxl_uncond_is_zero (NULL, FALSE));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/clip/forward/text-model", Fixture, NULL, fixture_setup, test_forward_text_model, fixture_teardown);
  g_test_add ("/clip/forward/flat", Fixture, NULL, fixture_setup, test_forward_flat, fixture_teardown);
  g_test_add ("/clip/forward/openclip", Fixture, NULL, fixture_setup, test_forward_openclip, fixture_teardown);
  g_test_add ("/clip/errors", Fixture, NULL, fixture_setup, test_errors, fixture_teardown);
  g_test_add_func ("/clip/eos", test_eos);
  g_test_add_func ("/clip/find-prefix", test_find_prefix);
  g_test_add_func ("/clip/real-clip-skip", test_real_clip_skip);
  g_test_add_func ("/conditioning/apply-weights", test_apply_weights);
  g_test_add_func ("/conditioning/concat", test_concat);
  g_test_add_func ("/conditioning/sdxl", test_sdxl);
  return g_test_run ();
}
