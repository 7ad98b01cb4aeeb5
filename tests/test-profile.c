/* tests/test-profile.c: per-op profiles (engine/profile.h): the shape keys that tools/bench-torch.py
 * parses, the sums per op and per shape, and both backends filling them (the Vulkan one from GPU
 * timestamps; skipped without a Vulkan device). */
#include <string.h>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/profile.h"

static const EaselProfileEntry *
find (GArray *rows, const char *key)
{
  for (guint i = 0; i < rows->len; i++)
    if (strcmp (g_array_index (rows, EaselProfileEntry, i).key, key) == 0)
      return &g_array_index (rows, EaselProfileEntry, i);
  return NULL;
}

/* x (2, 6, 5, 7) -> conv 3x3 (4 out) -> group norm (2 groups, SiLU) -> reshape (2, 35, 4)
 * -> linear (4 -> 8) -> attention 2 heads over itself (d = 4); returns the graph's output. */
typedef struct {
  float x[2 * 6 * 5 * 7], cw[4 * 6 * 3 * 3], gamma[4], beta[4], lw[8 * 4];
} Data;

static EaselTensor *
build (EaselGraph *g, Data *d)
{
  for (guint i = 0; i < G_N_ELEMENTS (d->x); i++)
    d->x[i] = (float) ((i * 7) % 11) / 11.0f - 0.5f;
  for (guint i = 0; i < G_N_ELEMENTS (d->cw); i++)
    d->cw[i] = (float) ((i * 5) % 13) / 26.0f - 0.25f;
  for (guint i = 0; i < 4; i++)
    d->gamma[i] = 1.0f, d->beta[i] = 0.1f * (float) i;
  for (guint i = 0; i < G_N_ELEMENTS (d->lw); i++)
    d->lw[i] = (float) ((i * 3) % 7) / 7.0f - 0.5f;
  const gint64 xs[4] = { 2, 6, 5, 7 }, cs[4] = { 4, 6, 3, 3 }, vs[1] = { 4 }, ls[2] = { 8, 4 }, rs[3] = { 2, 35, 4 };
  EaselTensor *x = easel_graph_input (g, "x", EASEL_DTYPE_F32, 4, xs, d->x);
  EaselTensor *y = easel_op_conv2d (g, x, easel_graph_weight (g, "cw", EASEL_DTYPE_F32, 4, cs, d->cw), NULL, 1, 1);
  y = easel_op_group_norm (g, y, easel_graph_weight (g, "gamma", EASEL_DTYPE_F32, 1, vs, d->gamma),
                           easel_graph_weight (g, "beta", EASEL_DTYPE_F32, 1, vs, d->beta), 2, 1e-5f, TRUE);
  y = easel_op_contiguous (g, easel_op_permute (g, easel_op_reshape (g, y, 3, (const gint64[]) { 2, 4, 35 }),
                                                (const int[]) { 0, 2, 1 }));
  y = easel_op_reshape (g, y, 3, rs);
  y = easel_op_linear (g, y, easel_graph_weight (g, "lw", EASEL_DTYPE_F32, 2, ls, d->lw), NULL);
  y = easel_op_attention (g, y, y, y, 2, 0.5f, FALSE);
  easel_graph_mark_output (g, y);
  return y;
}

static void
test_keys (void)
{
  g_autoptr(EaselGraph) g = easel_graph_new ();
  Data d;
  build (g, &d);
  g_assert_null (easel_graph_error (g));
  const char *want[] = {
    "conv2d B=2 C=6 H=5 W=7 O=4 k=3 s=1 p=1",
    "group_norm B=2 C=4 HW=35 G=2 silu=1",
    "contiguous [2, 35, 4]",
    "linear M=70 K=4 N=8",
    "attention B=2 H=2 Lq=35 Lk=35 D=4",
  };
  guint found = 0;
  for (guint i = 0; i < easel_graph_n_nodes (g); i++) {
    EaselTensor *t = easel_graph_node (g, i);
    if (t->op == EASEL_OP_LEAF || t->op == EASEL_OP_VIEW)
      continue;
    EaselProfileNode n;
    easel_profile_node_init (&n, t);
    g_assert_cmpuint (found, <, G_N_ELEMENTS (want));
    g_assert_cmpstr (n.key, ==, want[found]);
    found++;
    if (t->op == EASEL_OP_LINEAR)
      g_assert_cmpfloat (n.flops, ==, 2.0 * 70 * 8 * 4);
    if (t->op == EASEL_OP_CONV2D) {
      g_assert_cmpfloat (n.flops, ==, 2.0 * (2 * 4 * 5 * 7) * (6 * 3 * 3));
      g_assert_cmpfloat (n.bytes, ==, 4.0 * (2 * 6 * 5 * 7 + 4 * 6 * 3 * 3 + 2 * 4 * 5 * 7));
    }
    if (t->op == EASEL_OP_ATTENTION)
      g_assert_cmpfloat (n.flops, ==, 2.0 * 2 * 35 * 35 * (8 + 8));
  }
  g_assert_cmpuint (found, ==, G_N_ELEMENTS (want));
}

static void
test_sums (void)
{
  g_autoptr(EaselProfile) p = easel_profile_new ("test");
  EaselProfileNode a = { .op = EASEL_OP_LINEAR, .key = "linear M=1 K=2 N=3", .flops = 12 };
  EaselProfileNode b = { .op = EASEL_OP_LINEAR, .key = "linear M=4 K=2 N=3", .flops = 48 };
  EaselProfileNode c = { .op = EASEL_OP_GEGLU, .key = "geglu [1, 2]", .bytes = 24 };
  easel_profile_add (p, &a, 0.5);
  easel_profile_add (p, &a, 0.25);
  easel_profile_add (p, &b, 2.0);
  easel_profile_add (p, &c, 1.0);
  g_assert_cmpfloat (easel_profile_total_seconds (p), ==, 3.75);
  g_autoptr(GArray) ops = easel_profile_entries (p, FALSE);
  g_autoptr(GArray) shapes = easel_profile_entries (p, TRUE);
  g_assert_cmpuint (ops->len, ==, 2);
  g_assert_cmpuint (shapes->len, ==, 3);
  const EaselProfileEntry *lin = find (ops, "linear");
  g_assert_nonnull (lin);
  g_assert_cmpuint (lin->calls, ==, 3);
  g_assert_cmpfloat (lin->seconds, ==, 2.75);
  g_assert_cmpfloat (lin->flops, ==, 72);
  g_assert_cmpstr (g_array_index (shapes, EaselProfileEntry, 0).key, ==, "linear M=4 K=2 N=3");  /* largest first */
  g_assert_cmpuint (find (shapes, "linear M=1 K=2 N=3")->calls, ==, 2);
  easel_profile_reset (p);
  g_assert_cmpfloat (easel_profile_total_seconds (p), ==, 0);
}

/* two computes of the graph: each computing node counted twice, with time, and nothing else */
static void
check_backend_profile (EaselBackend *be)
{
  g_autoptr(EaselGraph) g = easel_graph_new ();
  g_autoptr(GError) error = NULL;
  Data d;
  EaselTensor *y = build (g, &d);
  float out[2 * 35 * 8];
  easel_backend_set_profile (be, TRUE);
  EaselProfile *p = easel_backend_get_profile (be);
  g_assert_nonnull (p);
  easel_profile_reset (p);
  for (int r = 0; r < 2; r++) {
    g_assert_true (easel_backend_compute (be, g, &error));
    g_assert_true (easel_backend_read (be, y, out, &error));
  }
  g_autoptr(GArray) ops = easel_profile_entries (p, FALSE);
  const char *computing[] = { "conv2d", "group_norm", "contiguous", "linear", "attention" };
  g_assert_cmpuint (ops->len, ==, G_N_ELEMENTS (computing));
  for (guint i = 0; i < G_N_ELEMENTS (computing); i++) {
    const EaselProfileEntry *e = find (ops, computing[i]);
    g_assert_nonnull (e);
    g_assert_cmpuint (e->calls, ==, 2);
    g_assert_cmpfloat (e->seconds, >=, 0);   /* a tiny node can take less than the clock's tick */
  }
  g_assert_cmpfloat (easel_profile_total_seconds (p), >, 0);
  g_assert_cmpfloat (find (ops, "linear")->flops, ==, 2 * 2.0 * 70 * 8 * 4);
  g_autoptr(GArray) shapes = easel_profile_entries (p, TRUE);
  g_assert_nonnull (find (shapes, "attention B=2 H=2 Lq=35 Lk=35 D=4"));
  /* off: a compute adds nothing to a profile held elsewhere */
  EaselProfile *kept = easel_profile_ref (p);
  easel_backend_set_profile (be, FALSE);
  g_assert_null (easel_backend_get_profile (be));
  g_assert_true (easel_backend_compute (be, g, &error));
  g_assert_true (easel_backend_read (be, y, out, &error));
  g_autoptr(GArray) after = easel_profile_entries (kept, FALSE);
  g_assert_cmpuint (find (after, "linear")->calls, ==, 2);
  easel_profile_free (kept);
}

static void
test_cpu (void)
{
  g_autoptr(EaselBackend) be = easel_backend_new_cpu (1);
  check_backend_profile (be);
}

static void
test_vulkan (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselBackend) be = easel_backend_new_vulkan (NULL, &error);
  if (be == NULL) {
    g_test_skip (error->message);
    return;
  }
  check_backend_profile (be);
  gint validation = easel_backend_vulkan_validation_errors (be);
  g_test_message ("Vulkan validation %s", validation >= 0 ? "on" : "off");
  g_assert_cmpint (validation, <=, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_setenv ("EASEL_PROFILE", "0", TRUE);   /* set by hand here, never printed at free */
  g_test_add_func ("/profile/keys", test_keys);
  g_test_add_func ("/profile/sums", test_sums);
  g_test_add_func ("/profile/cpu", test_cpu);
  g_test_add_func ("/profile/vulkan", test_vulkan);
  return g_test_run ();
}
