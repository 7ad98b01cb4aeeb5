/* tests/test-lora.c: LoRA files (engine/lora.c). Each LyCORIS kind against a merge written out
 * here in index form from its definition (lora.h) on small random tensors saved with the
 * safetensors writer; the stack on the tiny SD 1.x model (patch, re-merge only what changed,
 * restore, refusal of another family's LoRA, unmatched keys listed) and its run-time adapters
 * (the same outputs as merging); prompt tags, --lora arguments and the A1111 addnet hash. */
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "engine/backend.h"
#include "engine/checkpoint.h"
#include "engine/error.h"
#include "engine/lora.h"
#include "testutil.h"

static char *
tmp_dir (void)
{
  g_autoptr(GError) error = NULL;
  char *d = g_dir_make_tmp ("easel-lora-XXXXXX", &error);
  g_assert_no_error (error);
  return d;
}

static void
rm_dir (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *n;
  while (d && (n = g_dir_read_name (d)) != NULL) {
    g_autofree char *p = g_build_filename (dir, n, NULL);
    g_remove (p);
  }
  g_rmdir (dir);
}

/* Deterministic values in [-1, 1). */
static float *
rnd (GRand *r, gint64 n)
{
  float *v = g_new (float, n);
  for (gint64 i = 0; i < n; i++)
    v[i] = (float) g_rand_double_range (r, -1.0, 1.0);
  return v;
}

static void
add (EaselSafetensorsWriter *w, const char *name, int n_dims, const gint64 *shape, const float *data)
{
  g_autoptr(GError) error = NULL;
  g_assert_true (easel_safetensors_writer_add (w, name, EASEL_DTYPE_F32, n_dims, shape, data, &error));
  g_assert_no_error (error);
}

static EaselLora *
save_and_open (EaselSafetensorsWriter *w, const char *dir, const char *file)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (dir, file, NULL);
  g_assert_true (easel_safetensors_writer_save (w, path, &error));
  EaselLora *lora = easel_lora_open (path, &error);
  g_assert_no_error (error);
  return lora;
}

static void
assert_close (const float *got, const double *want, gint64 n)
{
  for (gint64 i = 0; i < n; i++)
    if (fabs (got[i] - want[i]) > 1e-5 * (1 + fabs (want[i])))
      g_error ("element %" G_GINT64_FORMAT ": got %.8g want %.8g", i, got[i], want[i]);
}

/* LoCon: a 3x3 down [r, in, 3, 3] and a 1x1 up [out, r, 1, 1];
 * delta[o, i, y, x] = alpha / r · sum_k up[o, k] down[k, i, y, x]. */
static void
test_locon (void)
{
  enum { R = 3, IN = 5, OUT = 7, K = 3 };
  g_autoptr(GRand) r = g_rand_new_with_seed (1);
  g_autofree char *dir = tmp_dir ();
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  g_autofree float *down = rnd (r, R * IN * K * K), *up = rnd (r, OUT * R);
  float alpha = 1.5f;
  const gint64 ds[4] = { R, IN, K, K }, us[4] = { OUT, R, 1, 1 };
  add (w, "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight", 4, ds, down);
  add (w, "lora_unet_down_blocks_0_resnets_0_conv1.lora_up.weight", 4, us, up);
  add (w, "lora_unet_down_blocks_0_resnets_0_conv1.alpha", 0, NULL, &alpha);
  g_autoptr(EaselLora) lora = save_and_open (w, dir, "locon.safetensors");
  gssize m = easel_lora_find_module (lora, "lora_unet_down_blocks_0_resnets_0_conv1");
  g_assert_cmpint (m, >=, 0);
  g_assert_cmpint (easel_lora_module_kind (lora, m), ==, EASEL_LORA_KIND_LORA);

  double want[OUT * IN * K * K];
  for (int o = 0; o < OUT; o++)
    for (int i = 0; i < IN; i++)
      for (int y = 0; y < K; y++)
        for (int x = 0; x < K; x++) {
          double s = 0;
          for (int k = 0; k < R; k++)
            s += (double) up[o * R + k] * down[((k * IN + i) * K + y) * K + x];
          want[((o * IN + i) * K + y) * K + x] = s * alpha / R;
        }
  float got[OUT * IN * K * K];
  g_autoptr(GError) error = NULL;
  g_assert_true (easel_lora_module_delta (lora, m, OUT, IN * K * K, got, &error));
  assert_close (got, want, OUT * IN * K * K);
  /* a wrong target shape is an error, not a read past the tensors */
  g_assert_false (easel_lora_module_delta (lora, m, OUT, IN, got, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  rm_dir (dir);
}

/* LoHa: delta[o, c] = alpha / r · (sum_k w1a[o, k] w1b[k, c]) · (sum_k w2a[o, k] w2b[k, c]),
 * r = rows of w1b; here on a conv [out, in, 3, 3] with the b factors 4-D. */
static void
test_loha (void)
{
  enum { R1 = 2, R2 = 4, IN = 3, OUT = 6, K = 3, C = IN * K * K };
  g_autoptr(GRand) r = g_rand_new_with_seed (2);
  g_autofree char *dir = tmp_dir ();
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  g_autofree float *w1a = rnd (r, OUT * R1), *w1b = rnd (r, R1 * C), *w2a = rnd (r, OUT * R2), *w2b = rnd (r, R2 * C);
  float alpha = 3.0f;
  const gint64 s1a[2] = { OUT, R1 }, s1b[4] = { R1, IN, K, K }, s2a[2] = { OUT, R2 }, s2b[4] = { R2, IN, K, K };
  add (w, "lora_te_text_model_encoder_layers_0_mlp_fc1.hada_w1_a", 2, s1a, w1a);
  add (w, "lora_te_text_model_encoder_layers_0_mlp_fc1.hada_w1_b", 4, s1b, w1b);
  add (w, "lora_te_text_model_encoder_layers_0_mlp_fc1.hada_w2_a", 2, s2a, w2a);
  add (w, "lora_te_text_model_encoder_layers_0_mlp_fc1.hada_w2_b", 4, s2b, w2b);
  add (w, "lora_te_text_model_encoder_layers_0_mlp_fc1.alpha", 0, NULL, &alpha);
  g_autoptr(EaselLora) lora = save_and_open (w, dir, "loha.safetensors");
  gssize m = easel_lora_find_module (lora, "lora_te_text_model_encoder_layers_0_mlp_fc1");
  g_assert_cmpint (m, >=, 0);
  g_assert_cmpint (easel_lora_module_kind (lora, m), ==, EASEL_LORA_KIND_LOHA);
  g_assert_cmpuint (easel_lora_n_modules_for (lora, EASEL_LORA_NET_TE1), ==, 1);

  double want[OUT * C];
  for (int o = 0; o < OUT; o++)
    for (int c = 0; c < C; c++) {
      double a = 0, b = 0;
      for (int k = 0; k < R1; k++)
        a += (double) w1a[o * R1 + k] * w1b[k * C + c];
      for (int k = 0; k < R2; k++)
        b += (double) w2a[o * R2 + k] * w2b[k * C + c];
      want[o * C + c] = a * b * alpha / R1;
    }
  float got[OUT * C];
  g_autoptr(GError) error = NULL;
  g_assert_true (easel_lora_module_delta (lora, m, OUT, C, got, &error));
  assert_close (got, want, OUT * C);
  rm_dir (dir);
}

/* LoKr on a conv: w1 [A, B] whole, w2 = w2a [Cc, R] @ w2b [R, D, kh, kw];
 * delta[o1·Cc + o2, i1·D + i2, y, x] = alpha / R · w1[o1, i1] · sum_k w2a[o2, k] w2b[k, i2, y, x]. */
static void
test_lokr_conv (void)
{
  enum { A = 2, B = 3, CC = 4, D = 2, R = 3, K = 3 };
  g_autoptr(GRand) r = g_rand_new_with_seed (3);
  g_autofree char *dir = tmp_dir ();
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  g_autofree float *w1 = rnd (r, A * B), *w2a = rnd (r, CC * R), *w2b = rnd (r, R * D * K * K);
  float alpha = 0.75f;
  const gint64 s1[2] = { A, B }, s2a[2] = { CC, R }, s2b[4] = { R, D, K, K };
  add (w, "lora_unet_up_blocks_0_resnets_0_conv2.lokr_w1", 2, s1, w1);
  add (w, "lora_unet_up_blocks_0_resnets_0_conv2.lokr_w2_a", 2, s2a, w2a);
  add (w, "lora_unet_up_blocks_0_resnets_0_conv2.lokr_w2_b", 4, s2b, w2b);
  add (w, "lora_unet_up_blocks_0_resnets_0_conv2.alpha", 0, NULL, &alpha);
  g_autoptr(EaselLora) lora = save_and_open (w, dir, "lokr.safetensors");
  gssize m = easel_lora_find_module (lora, "lora_unet_up_blocks_0_resnets_0_conv2");
  g_assert_cmpint (easel_lora_module_kind (lora, m), ==, EASEL_LORA_KIND_LOKR);

  enum { OUT = A * CC, IN = B * D };
  double want[OUT * IN * K * K];
  for (int o1 = 0; o1 < A; o1++)
    for (int o2 = 0; o2 < CC; o2++)
      for (int i1 = 0; i1 < B; i1++)
        for (int i2 = 0; i2 < D; i2++)
          for (int y = 0; y < K; y++)
            for (int x = 0; x < K; x++) {
              double s = 0;
              for (int k = 0; k < R; k++)
                s += (double) w2a[o2 * R + k] * w2b[((k * D + i2) * K + y) * K + x];
              int o = o1 * CC + o2, i = i1 * D + i2;
              want[((o * IN + i) * K + y) * K + x] = alpha / R * w1[o1 * B + i1] * s;
            }
  float got[OUT * IN * K * K];
  g_autoptr(GError) error = NULL;
  g_assert_true (easel_lora_module_delta (lora, m, OUT, IN * K * K, got, &error));
  assert_close (got, want, OUT * IN * K * K);
  rm_dir (dir);
}

/* LoKr on a Linear with w1 factored (w1a @ w1b) and w2 whole: the scale is alpha / rows of w1b;
 * with both whole it is 1 whatever alpha says. */
static void
test_lokr_linear (void)
{
  enum { A = 3, B = 2, CC = 2, D = 5, R = 2 };
  g_autoptr(GRand) r = g_rand_new_with_seed (4);
  g_autofree char *dir = tmp_dir ();
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  g_autofree float *w1a = rnd (r, A * R), *w1b = rnd (r, R * B), *w2 = rnd (r, CC * D), *w1 = rnd (r, A * B);
  float alpha = 5.0f;
  const gint64 s1a[2] = { A, R }, s1b[2] = { R, B }, s2[2] = { CC, D }, s1[2] = { A, B };
  add (w, "unet.mid_block.attentions.0.proj_in.lokr_w1_a", 2, s1a, w1a);
  add (w, "unet.mid_block.attentions.0.proj_in.lokr_w1_b", 2, s1b, w1b);
  add (w, "unet.mid_block.attentions.0.proj_in.lokr_w2", 2, s2, w2);
  add (w, "unet.mid_block.attentions.0.proj_in.alpha", 0, NULL, &alpha);
  add (w, "unet.mid_block.attentions.0.proj_out.lokr_w1", 2, s1, w1);
  add (w, "unet.mid_block.attentions.0.proj_out.lokr_w2", 2, s2, w2);
  add (w, "unet.mid_block.attentions.0.proj_out.alpha", 0, NULL, &alpha);
  g_autoptr(EaselLora) lora = save_and_open (w, dir, "lokr2.safetensors");
  g_assert_cmpuint (easel_lora_n_modules_for (lora, EASEL_LORA_NET_UNET), ==, 2);

  enum { OUT = A * CC, IN = B * D };
  double want[OUT * IN], want_whole[OUT * IN];
  for (int o1 = 0; o1 < A; o1++)
    for (int i1 = 0; i1 < B; i1++) {
      double f = 0;
      for (int k = 0; k < R; k++)
        f += (double) w1a[o1 * R + k] * w1b[k * B + i1];
      for (int o2 = 0; o2 < CC; o2++)
        for (int i2 = 0; i2 < D; i2++) {
          want[(o1 * CC + o2) * IN + i1 * D + i2] = alpha / R * f * w2[o2 * D + i2];
          want_whole[(o1 * CC + o2) * IN + i1 * D + i2] = (double) w1[o1 * B + i1] * w2[o2 * D + i2];
        }
    }
  float got[OUT * IN];
  g_autoptr(GError) error = NULL;
  g_assert_true (easel_lora_module_delta (lora, easel_lora_find_module (lora, "unet.mid_block.attentions.0.proj_in"),
                                          OUT, IN, got, &error));
  assert_close (got, want, OUT * IN);
  g_assert_true (easel_lora_module_delta (lora, easel_lora_find_module (lora, "unet.mid_block.attentions.0.proj_out"),
                                          OUT, IN, got, &error));
  assert_close (got, want_whole, OUT * IN);
  rm_dir (dir);
}

/* Files that are no valid LoRA: errors that name the file and the module. */
static void
test_bad_files (void)
{
  g_autofree char *dir = tmp_dir ();
  g_autoptr(GRand) r = g_rand_new_with_seed (5);
  g_autofree float *v = rnd (r, 256);
  const gint64 a[2] = { 4, 8 }, b[2] = { 8, 3 }, cp[4] = { 4, 4, 3, 3 };
  struct {
    const char *what;
    const char *names[3];
    const gint64 *shapes[3];
  } cases[] = {
    { "up without down", { "lora_unet_x.lora_up.weight" }, { b } },
    { "rank mismatch", { "lora_unet_x.lora_down.weight", "lora_unet_x.lora_up.weight" }, { a, a } },
    { "tucker", { "lora_unet_x.lora_down.weight", "lora_unet_x.lora_up.weight", "lora_unet_x.lora_mid.weight" },
      { a, b, cp } },
    { "no modules", { "something.else" }, { a } },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_build_filename (dir, "bad.safetensors", NULL);
    for (int k = 0; k < 3 && cases[i].names[k]; k++) {
      const gint64 *s = cases[i].shapes[k];
      add (w, cases[i].names[k], s == cp ? 4 : 2, s, v);
    }
    g_assert_true (easel_safetensors_writer_save (w, path, &error));
    g_autoptr(EaselLora) lora = easel_lora_open (path, &error);
    g_assert_null (lora);
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);
    g_assert_nonnull (strstr (error->message, "bad.safetensors"));
  }
  rm_dir (dir);
}

/* --- the stack on sd1_tiny ---------------------------------------------------------------------- */

typedef struct {
  EaselCheckpoint *ck;
  EaselUnet *unet;
  EaselClip *te;
  char *dir;
} Model;

static gboolean
model_open (Model *m)
{
  g_autofree char *path = test_data_path ("models", "sd1_tiny.safetensors", NULL);
  g_autofree char *uh = test_data_path ("models", "sd1_tiny", "unet", "config.json", NULL);
  g_autofree char *th = test_data_path ("models", "sd1_tiny", "text_encoder", "config.json", NULL);
  g_autoptr(GError) error = NULL;
  if (path == NULL)
    return FALSE;
  g_autoptr(EaselJson) uj = easel_json_parse_file (uh, 0, &error);
  g_assert_no_error (error);
  g_autoptr(EaselJson) tj = easel_json_parse_file (th, 0, &error);
  g_assert_no_error (error);
  m->ck = easel_checkpoint_open (path, &error);
  g_assert_no_error (error);
  m->unet = easel_unet_new (m->ck, uj, &error);
  g_assert_no_error (error);
  g_autofree char *prefix = easel_clip_find_prefix (m->ck, 0, &error);
  g_assert_no_error (error);
  m->te = easel_clip_new (m->ck, prefix, tj, &error);
  g_assert_no_error (error);
  m->dir = tmp_dir ();
  return TRUE;
}

static void
model_close (Model *m)
{
  easel_clip_free (m->te);
  easel_unet_free (m->unet);
  easel_checkpoint_free (m->ck);
  rm_dir (m->dir);
  g_free (m->dir);
}

static EaselPatchTarget *
target (GPtrArray *targets, const char *module)
{
  for (guint i = 0; i < targets->len; i++)
    if (strcmp (((EaselPatchTarget *) targets->pdata[i])->module, module) == 0)
      return targets->pdata[i];
  g_error ("no target %s", module);
  return NULL;
}

/* The rows of target t as the network uses them now, as F32. */
static float *
current_rows (EaselLoraStack *s, const EaselPatchTarget *t)
{
  const EaselStTensor *cur = easel_lora_stack_current (s, t);
  g_autofree float *all = g_new (float, cur->n_elements);
  easel_dtype_to_f32 (cur->dtype, cur->data, all, cur->n_elements);
  return g_memdup2 (all + t->row0 * t->cols, t->rows * t->cols * sizeof (float));
}

static float *
stored_rows (const EaselPatchTarget *t)
{
  g_autofree float *all = g_new (float, t->stored.n_elements);
  easel_dtype_to_f32 (t->stored.dtype, t->stored.data, all, t->stored.n_elements);
  return g_memdup2 (all + t->row0 * t->cols, t->rows * t->cols * sizeof (float));
}

/* A diffusers-form LoRA (lora_A/lora_B, no alpha: scale 1) on attn1.to_k — a row block of the fused
 * q|k|v copy — and one in ldm naming on a resnet conv: W' = W + s · B @ A in exactly those rows,
 * q and v untouched; a new strength rebuilds, the same set rebuilds nothing, an empty set restores. */
static void
test_stack_fused (void)
{
  Model m = { 0 };
  if (!model_open (&m))
    return;
  GPtrArray *targets = easel_unet_patch_targets (m.unet);
  const char *kname = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k";
  EaselPatchTarget *tk = target (targets, kname);
  EaselPatchTarget *tq = target (targets, "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q");
  EaselPatchTarget *tc = target (targets, "down_blocks.1.resnets.0.conv1");
  g_assert_true (tk->slot == tq->slot);
  g_assert_cmpint (tk->row0, ==, tk->rows);
  gint64 C = tk->rows, R = 2;
  g_autoptr(GRand) r = g_rand_new_with_seed (6);
  g_autofree float *a = rnd (r, R * C), *b = rnd (r, C * R);
  gint64 co = tc->rows, ci = tc->cols / 9;
  g_autofree float *ca = rnd (r, R * ci * 9), *cb = rnd (r, co * R);
  const gint64 as[2] = { R, C }, bs[2] = { C, R }, cas[4] = { R, ci, 3, 3 }, cbs[4] = { co, R, 1, 1 };
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  g_autofree char *ka = g_strdup_printf ("unet.%s.lora_A.weight", kname), *kb = g_strdup_printf ("unet.%s.lora_B.weight", kname);
  add (w, ka, 2, as, a);
  add (w, kb, 2, bs, b);
  /* input_blocks.4.0 = down_blocks.1.resnets.0 (2 resnets per level); in_layers.2 = conv1 */
  add (w, "lora_unet_input_blocks_4_0_in_layers_2.lora_down.weight", 4, cas, ca);
  add (w, "lora_unet_input_blocks_4_0_in_layers_2.lora_up.weight", 4, cbs, cb);
  add (w, "lora_unet_no_such_module.lora_down.weight", 2, as, a);
  add (w, "lora_unet_no_such_module.lora_up.weight", 2, bs, b);
  g_autoptr(EaselLora) lora = save_and_open (w, m.dir, "mixed.safetensors");

  g_autoptr(EaselLoraStack) s = easel_lora_stack_new (m.unet, m.te, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) unmatched = NULL;
  EaselLoraUse use = { lora, 0.5f, 1.0f };
  g_assert_true (easel_lora_stack_apply (s, &use, 1, &unmatched, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (unmatched->len, ==, 1);
  g_assert_nonnull (strstr (unmatched->pdata[0], "lora_unet_no_such_module"));
  g_assert_cmpuint (easel_lora_stack_n_patched (s), ==, 2);

  g_autofree float *k0 = stored_rows (tk), *k1 = current_rows (s, tk), *q0 = stored_rows (tq), *q1 = current_rows (s, tq);
  g_autofree double *want = g_new (double, C * C);
  for (gint64 o = 0; o < C; o++)
    for (gint64 i = 0; i < C; i++) {
      double d = 0;
      for (gint64 k = 0; k < R; k++)
        d += (double) b[o * R + k] * a[k * C + i];
      want[o * C + i] = k0[o * C + i] + 0.5 * d;
    }
  assert_close (k1, want, C * C);
  g_assert_cmpmem (q0, C * C * sizeof (float), q1, C * C * sizeof (float));

  g_autofree float *c0 = stored_rows (tc), *c1 = current_rows (s, tc);
  g_autofree double *cw = g_new (double, co * ci * 9);
  for (gint64 o = 0; o < co; o++)
    for (gint64 j = 0; j < ci * 9; j++) {
      double d = 0;
      for (gint64 k = 0; k < R; k++)
        d += (double) cb[o * R + k] * ca[k * ci * 9 + j];
      cw[o * ci * 9 + j] = c0[o * ci * 9 + j] + 0.5 * d;
    }
  assert_close (c1, cw, co * ci * 9);

  /* the same set: nothing rebuilt; another strength: both rebuilt into new buffers */
  const void *before = easel_lora_stack_current (s, tk)->data;
  g_assert_true (easel_lora_stack_apply (s, &use, 1, NULL, &error));
  g_assert_cmpuint (easel_lora_stack_n_rebuilt (s), ==, 0);
  g_assert_true (easel_lora_stack_current (s, tk)->data == before);
  use.unet_strength = 1.0f;
  g_assert_true (easel_lora_stack_apply (s, &use, 1, NULL, &error));
  g_assert_cmpuint (easel_lora_stack_n_rebuilt (s), ==, 2);

  /* empty set: the original weights again */
  g_assert_true (easel_lora_stack_apply (s, NULL, 0, NULL, &error));
  g_assert_cmpuint (easel_lora_stack_n_patched (s), ==, 0);
  g_assert_true (easel_lora_stack_current (s, tk)->data == tk->stored.data);
  g_clear_pointer (&s, easel_lora_stack_free);
  model_close (&m);
}

/* An SDXL LoRA (lora_te2_ modules) and one whose shapes differ are refused and change nothing; so
 * is one that matches no weight at all. */
static void
test_stack_refusals (void)
{
  Model m = { 0 };
  if (!model_open (&m))
    return;
  g_autoptr(GRand) r = g_rand_new_with_seed (7);
  g_autofree float *v = rnd (r, 4096);
  const gint64 d16[2] = { 4, 16 }, u16[2] = { 16, 4 }, d2048[2] = { 4, 2048 }, u640[2] = { 640, 4 };
  g_autoptr(EaselLoraStack) s = easel_lora_stack_new (m.unet, m.te, NULL);
  struct {
    const char *file, *stem;
    const gint64 *down, *up;
    const char *says;
  } cases[] = {
    { "sdxl.safetensors", "lora_te2_text_model_encoder_layers_0_self_attn_q_proj", d16, u16, "SDXL" },
    { "wide.safetensors", "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k", d2048, u640,
      "another model family" },
    { "none.safetensors", "lora_unet_nothing_here", d16, u16, "none of the LoRA" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
    g_autofree char *kd = g_strconcat (cases[i].stem, ".lora_down.weight", NULL);
    g_autofree char *ku = g_strconcat (cases[i].stem, ".lora_up.weight", NULL);
    g_autofree float *big = g_new0 (float, 640 * 2048);
    add (w, kd, 2, cases[i].down, cases[i].down[1] > 16 ? big : v);
    add (w, ku, 2, cases[i].up, cases[i].up[0] > 16 ? big : v);
    if (i == 0) {   /* a UNet module that fits, so only the family check can refuse it */
      const char *k = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k";
      g_autofree char *a = g_strconcat (k, ".lora_down.weight", NULL), *b = g_strconcat (k, ".lora_up.weight", NULL);
      const gint64 da[2] = { 4, 16 }, ub[2] = { 32, 4 };
      add (w, a, 2, da, v);
      add (w, b, 2, ub, v);
    }
    g_autoptr(EaselLora) lora = save_and_open (w, m.dir, cases[i].file);
    g_autoptr(GError) error = NULL;
    EaselLoraUse use = { lora, 1.0f, 1.0f };
    g_assert_false (easel_lora_stack_apply (s, &use, 1, NULL, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
    g_assert_nonnull (strstr (error->message, cases[i].says));
    g_assert_nonnull (strstr (error->message, cases[i].file));
    g_assert_cmpuint (easel_lora_stack_n_patched (s), ==, 0);
  }
  g_clear_pointer (&s, easel_lora_stack_free);
  model_close (&m);
}

/* UNet output (1, out, 16, 16) and text encoder last hidden state (1, 8, width) of m on the CPU with
 * the stack's current set, into fresh arrays. */
static void
run_model (Model *m, float **unet_out, gint64 *n_unet, float **te_out, gint64 *n_te)
{
  const EaselUnetConfig *uc = easel_unet_config (m->unet);
  const EaselClipConfig *cc = easel_clip_config (m->te);
  const gint64 S = 16, L = 8;
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (1);
  g_autoptr(GRand) r = g_rand_new_with_seed (11);
  g_autofree float *x = rnd (r, uc->in_channels * S * S), *ctx = rnd (r, 77 * uc->context_dim);
  float t = 500.0f;
  gint32 ids[8];
  g_autoptr(GError) error = NULL;

  *n_unet = uc->out_channels * S * S;
  *unet_out = g_new (float, *n_unet);
  g_assert_true (easel_unet_forward (m->unet, be, x, 1, S, S, &t, ctx, 77, NULL, 0, NULL, 0, *unet_out, &error));
  g_assert_no_error (error);
  for (gint64 i = 0; i < L; i++)
    ids[i] = (gint32) ((i * 37 + 5) % cc->vocab);
  EaselClipRequest req = { .skip = 0, .final_ln = TRUE };
  *n_te = L * cc->width;
  *te_out = g_new (float, *n_te);
  g_assert_true (easel_clip_encode (m->te, be, ids, 1, L, &req, *te_out, NULL, NULL, &error));
  g_assert_no_error (error);
}

static double
max_abs_diff (const float *a, const float *b, gint64 n)
{
  double d = 0;
  for (gint64 i = 0; i < n; i++)
    d = MAX (d, fabs ((double) a[i] - b[i]));
  return d;
}

/* Run-time adapters: LoRA modules on a fused row block (attn1.to_k), a 3x3 resnet conv, a stride-2
 * downsampler conv and a text-encoder projection are not merged (the stored weights stay bound),
 * the effective rows are W + s · scale · up @ down, a LoHa module on the same model is still
 * merged, and the UNet and text encoder outputs equal the merged ones (and differ from the model's
 * without LoRA); a new strength rebuilds only adapters; an empty set restores. */
static void
test_runtime (void)
{
  Model m = { 0 };
  if (!model_open (&m))
    return;
  GPtrArray *ut = easel_unet_patch_targets (m.unet), *tt = easel_clip_patch_targets (m.te);
  EaselPatchTarget *tk = target (ut, "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k");
  EaselPatchTarget *tc = target (ut, "down_blocks.1.resnets.0.conv1");
  EaselPatchTarget *ts = target (ut, "down_blocks.0.downsamplers.0.conv");
  EaselPatchTarget *tq = target (tt, "text_model.encoder.layers.0.self_attn.q_proj");
  EaselPatchTarget *tf = target (tt, "text_model.encoder.layers.1.mlp.fc1");
  EaselPatchTarget *conv[2] = { tc, ts };
  g_autoptr(GRand) r = g_rand_new_with_seed (9);
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  const gint64 R = 3;
  float alpha = 1.5f;

  /* LoRA on to_k (kohya, alpha 1.5 / rank 3) and on the TE q_proj */
  EaselPatchTarget *lin[2] = { tk, tq };
  const char *lin_keys[2] = { "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_k",
                              "lora_te_text_model_encoder_layers_0_self_attn_q_proj" };
  float *la[2], *lb[2], *ca[2], *cb[2];   /* freed at the end */
  for (int i = 0; i < 2; i++) {
    const gint64 ds[2] = { R, lin[i]->cols }, us[2] = { lin[i]->rows, R };
    la[i] = rnd (r, R * lin[i]->cols);
    lb[i] = rnd (r, lin[i]->rows * R);
    g_autofree char *kd = g_strconcat (lin_keys[i], ".lora_down.weight", NULL);
    g_autofree char *ku = g_strconcat (lin_keys[i], ".lora_up.weight", NULL);
    g_autofree char *ka = g_strconcat (lin_keys[i], ".alpha", NULL);
    add (w, kd, 2, ds, la[i]);
    add (w, ku, 2, us, lb[i]);
    add (w, ka, 0, NULL, &alpha);
  }
  /* LoCon on two 3x3 convs (stride 1 and 2), no alpha */
  const char *conv_keys[2] = { "lora_unet_down_blocks_1_resnets_0_conv1", "lora_unet_down_blocks_0_downsamplers_0_conv" };
  for (int i = 0; i < 2; i++) {
    gint64 co = conv[i]->rows, ci = conv[i]->cols / 9;
    const gint64 ds[4] = { R, ci, 3, 3 }, us[4] = { co, R, 1, 1 };
    ca[i] = rnd (r, R * ci * 9);
    cb[i] = rnd (r, co * R);
    g_autofree char *kd = g_strconcat (conv_keys[i], ".lora_down.weight", NULL);
    g_autofree char *ku = g_strconcat (conv_keys[i], ".lora_up.weight", NULL);
    add (w, kd, 4, ds, ca[i]);
    add (w, ku, 4, us, cb[i]);
  }
  /* LoHa on the TE fc1 */
  gint64 fo = tf->rows, fi = tf->cols;
  g_autofree float *h1a = rnd (r, fo * 2), *h1b = rnd (r, 2 * fi), *h2a = rnd (r, fo * 2), *h2b = rnd (r, 2 * fi);
  const gint64 sa[2] = { fo, 2 }, sb[2] = { 2, fi };
  add (w, "lora_te_text_model_encoder_layers_1_mlp_fc1.hada_w1_a", 2, sa, h1a);
  add (w, "lora_te_text_model_encoder_layers_1_mlp_fc1.hada_w1_b", 2, sb, h1b);
  add (w, "lora_te_text_model_encoder_layers_1_mlp_fc1.hada_w2_a", 2, sa, h2a);
  add (w, "lora_te_text_model_encoder_layers_1_mlp_fc1.hada_w2_b", 2, sb, h2b);
  g_autoptr(EaselLora) lora = save_and_open (w, m.dir, "runtime.safetensors");

  g_autofree float *u0 = NULL, *t0 = NULL, *um = NULL, *tm = NULL, *ur = NULL, *trt = NULL;
  gint64 nu, nt;
  run_model (&m, &u0, &nu, &t0, &nt);

  g_autoptr(EaselLoraStack) s = easel_lora_stack_new (m.unet, m.te, NULL);
  g_autoptr(GError) error = NULL;
  EaselLoraUse use = { lora, 0.75f, 0.5f };
  easel_lora_stack_set_mode (s, EASEL_LORA_MODE_MERGE);
  g_assert_true (easel_lora_stack_apply (s, &use, 1, NULL, &error));
  g_assert_no_error (error);
  run_model (&m, &um, &nu, &tm, &nt);

  easel_lora_stack_set_mode (s, EASEL_LORA_MODE_RUNTIME);
  g_assert_cmpint (easel_lora_stack_get_mode (s), ==, EASEL_LORA_MODE_RUNTIME);
  g_assert_true (easel_lora_stack_apply (s, &use, 1, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (easel_lora_stack_n_rebuilt (s), ==, 4);   /* the mode changed every LoRA slot, not the LoHa */
  g_assert_cmpuint (easel_lora_stack_n_patched (s), ==, 5);

  /* stored weights bound; effective rows = explicit merge */
  EaselPatchTarget *all[4] = { tk, tq, tc, ts };
  for (int i = 0; i < 4; i++) {
    EaselPatchTarget *t = all[i];
    const float *a = i < 2 ? la[i] : ca[i - 2], *b = i < 2 ? lb[i] : cb[i - 2];
    double scale = (i < 2 ? alpha / R : 1.0) * (i == 1 ? 0.5 : 0.75);
    g_assert_true (easel_lora_stack_current (s, t)->data == t->stored.data);
    g_autofree float *w0 = stored_rows (t), *got = g_new (float, t->rows * t->cols);
    g_autofree double *want = g_new (double, t->rows * t->cols);
    g_assert_true (easel_lora_stack_effective_rows (s, t, got));
    for (gint64 o = 0; o < t->rows; o++)
      for (gint64 c = 0; c < t->cols; c++) {
        double d = 0;
        for (gint64 k = 0; k < R; k++)
          d += (double) b[o * R + k] * a[k * t->cols + c];
        want[o * t->cols + c] = w0[o * t->cols + c] + scale * d;
      }
    assert_close (got, want, t->rows * t->cols);
  }
  /* the fused neighbours (q, v of attn1) are untouched; the LoHa is merged */
  EaselPatchTarget *tv = target (ut, "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v");
  g_autofree float *v0 = stored_rows (tv), *v1 = g_new (float, tv->rows * tv->cols);
  easel_lora_stack_effective_rows (s, tv, v1);
  g_assert_cmpmem (v0, tv->rows * tv->cols * sizeof (float), v1, tv->rows * tv->cols * sizeof (float));
  g_assert_true (easel_lora_stack_current (s, tf)->data != tf->stored.data);
  g_autofree float *f1 = g_new (float, tf->rows * tf->cols);
  g_assert_false (easel_lora_stack_effective_rows (s, tf, f1));

  run_model (&m, &ur, &nu, &trt, &nt);
  double du = max_abs_diff (um, ur, nu), dt = max_abs_diff (tm, trt, nt);
  double su = max_abs_diff (u0, um, nu), st = max_abs_diff (t0, tm, nt);
  g_test_message ("runtime vs merge: UNet %.3g, TE %.3g; LoRA's effect: UNet %.3g, TE %.3g", du, dt, su, st);
  g_assert_cmpfloat (su, >, 1e-2);
  g_assert_cmpfloat (st, >, 1e-2);
  g_assert_cmpfloat (du, <, 1e-4 * (1 + su));
  g_assert_cmpfloat (dt, <, 1e-4 * (1 + st));

  /* a new UNet strength: only the UNet adapters rebuilt; the LoHa copy (text encoder) is kept */
  const void *loha_copy = easel_lora_stack_current (s, tf)->data;
  use.unet_strength = 1.0f;
  g_assert_true (easel_lora_stack_apply (s, &use, 1, NULL, &error));
  g_assert_cmpuint (easel_lora_stack_n_rebuilt (s), ==, 3);   /* the three UNet slots */
  g_assert_true (easel_lora_stack_current (s, tf)->data == loha_copy);
  g_assert_true (easel_lora_stack_current (s, tk)->data == tk->stored.data);

  /* empty set: stored weights, no adapters */
  g_assert_true (easel_lora_stack_apply (s, NULL, 0, NULL, &error));
  g_assert_cmpuint (easel_lora_stack_n_patched (s), ==, 0);
  g_autofree float *k1 = g_new (float, tk->rows * tk->cols);
  g_assert_false (easel_lora_stack_effective_rows (s, tk, k1));
  g_autofree float *u2 = NULL, *t2 = NULL;
  run_model (&m, &u2, &nu, &t2, &nt);
  g_assert_cmpmem (u0, nu * sizeof (float), u2, nu * sizeof (float));
  g_assert_cmpmem (t0, nt * sizeof (float), t2, nt * sizeof (float));
  g_clear_pointer (&s, easel_lora_stack_free);
  for (int i = 0; i < 2; i++) {
    g_free (la[i]);
    g_free (lb[i]);
    g_free (ca[i]);
    g_free (cb[i]);
  }
  model_close (&m);
}

/* --- references and hashes ---------------------------------------------------------------------- */

static void
test_prompt_tags (void)
{
  g_autoptr(GArray) refs = g_array_new (FALSE, TRUE, sizeof (EaselLoraRef));
  g_autoptr(GError) error = NULL;
  g_array_set_clear_func (refs, easel_lora_ref_clear);
  g_autofree char *rest = easel_lora_extract_from_prompt (
    "a cat <lora:style_a:0.8>, <lora:b> on <LORA:c:0.5:1.25> <lyco:d:1:unet=0.3> x <hypernet:h:1>", refs, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (rest, ==, "a cat ,  on   x <hypernet:h:1>");
  g_assert_cmpuint (refs->len, ==, 4);
  EaselLoraRef *r = (EaselLoraRef *) refs->data;
  g_assert_cmpstr (r[0].name, ==, "style_a");
  g_assert_cmpfloat (r[0].te_strength, ==, 0.8f);
  g_assert_cmpfloat (r[0].unet_strength, ==, 0.8f);
  g_assert_cmpstr (r[1].name, ==, "b");
  g_assert_cmpfloat (r[1].unet_strength, ==, 1.0f);
  g_assert_cmpfloat (r[2].te_strength, ==, 0.5f);
  g_assert_cmpfloat (r[2].unet_strength, ==, 1.25f);
  g_assert_cmpfloat (r[3].te_strength, ==, 1.0f);
  g_assert_cmpfloat (r[3].unet_strength, ==, 0.3f);

  g_autofree char *bad = easel_lora_extract_from_prompt ("<lora:x:strong>", refs, &error);
  g_assert_null (bad);
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
}

static void
test_arg (void)
{
  EaselLoraRef r;
  g_autoptr(GError) error = NULL;
  g_assert_true (easel_lora_parse_arg ("/x/y/my_lora.safetensors:0.6", &r, &error));
  g_assert_cmpstr (r.name, ==, "/x/y/my_lora.safetensors");
  g_assert_cmpfloat (r.unet_strength, ==, 0.6f);
  easel_lora_ref_clear (&r);
  g_assert_true (easel_lora_parse_arg ("plain", &r, &error));
  g_assert_cmpstr (r.name, ==, "plain");
  g_assert_cmpfloat (r.te_strength, ==, 1.0f);
  easel_lora_ref_clear (&r);
  g_assert_false (easel_lora_parse_arg ("file.safetensors:lots", &r, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
}

/* The addnet hash is SHA-256 of the data area: the tensors' bytes in file order. */
static void
test_hash (void)
{
  g_autofree char *dir = tmp_dir ();
  g_autoptr(GRand) r = g_rand_new_with_seed (8);
  g_autofree float *a = rnd (r, 8), *b = rnd (r, 8);
  const gint64 as[2] = { 2, 4 }, bs[2] = { 4, 2 };
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  add (w, "lora_unet_m.lora_down.weight", 2, as, a);
  add (w, "lora_unet_m.lora_up.weight", 2, bs, b);
  easel_safetensors_writer_set_metadata (w, "ss_network_dim", "2");
  g_autoptr(EaselLora) lora = save_and_open (w, dir, "my,lo:ra.safetensors");
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_checksum_update (sum, (const guchar *) a, 8 * sizeof (float));
  g_checksum_update (sum, (const guchar *) b, 8 * sizeof (float));
  g_assert_cmpstr (easel_lora_hash (lora), ==, g_checksum_get_string (sum));
  g_autofree char *text = easel_lora_hashes_text (&lora, 1);
  g_autofree char *want = g_strdup_printf ("mylora: %.12s", g_checksum_get_string (sum));
  g_assert_cmpstr (text, ==, want);
  rm_dir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/lora/locon", test_locon);
  g_test_add_func ("/lora/loha", test_loha);
  g_test_add_func ("/lora/lokr-conv", test_lokr_conv);
  g_test_add_func ("/lora/lokr-linear", test_lokr_linear);
  g_test_add_func ("/lora/bad-files", test_bad_files);
  g_test_add_func ("/lora/stack-fused", test_stack_fused);
  g_test_add_func ("/lora/stack-refusals", test_stack_refusals);
  g_test_add_func ("/lora/runtime", test_runtime);
  g_test_add_func ("/lora/prompt-tags", test_prompt_tags);
  g_test_add_func ("/lora/arg", test_arg);
  g_test_add_func ("/lora/hash", test_hash);
  return g_test_run ();
}
