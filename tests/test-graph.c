/* tests/test-graph.c: graph construction (shape inference, errors) and the memory plan. */
#include <string.h>

#include "engine/graph.h"
#include "testutil.h"

static void
test_shapes (void)
{
  g_autoptr(EaselGraph) g = easel_graph_new ();
  const gint64 xs[4] = { 2, 4, 9, 7 }, ws[4] = { 8, 4, 3, 3 }, bs[1] = { 8 };
  static const float dummy[8 * 4 * 9];
  EaselTensor *x = easel_graph_input (g, "x", EASEL_DTYPE_F32, 4, xs, NULL);
  EaselTensor *w = easel_graph_weight (g, "w", EASEL_DTYPE_F16, 4, ws, dummy);
  EaselTensor *b = easel_graph_weight (g, "b", EASEL_DTYPE_F16, 1, bs, dummy);
  EaselTensor *y = easel_op_conv2d (g, x, w, b, 2, 1);
  g_assert_cmpint (y->shape[2], ==, 5);
  g_assert_cmpint (y->shape[3], ==, 4);
  const int perm[4] = { 0, 2, 3, 1 };
  EaselTensor *p = easel_op_permute (g, y, perm);
  g_assert_false (easel_tensor_is_contiguous (p));
  const gint64 rs[3] = { 2, 20, 8 };
  EaselTensor *r = easel_op_reshape (g, p, 3, rs);        /* inserts a contiguous copy */
  g_assert_true (easel_tensor_is_contiguous (r));
  g_assert_cmpint (r->src[0]->op, ==, EASEL_OP_CONTIGUOUS);
  EaselTensor *q = easel_op_slice (g, r, 2, 0, 4), *k = easel_op_slice (g, r, 2, 4, 4);
  EaselTensor *a = easel_op_attention (g, q, k, k, 2, 0.5f, FALSE);
  g_assert_cmpint (a->shape[1], ==, 20);
  g_assert_cmpint (a->shape[2], ==, 4);
  EaselTensor *u = easel_op_upsample_nearest (g, y, 10, 8);
  EaselTensor *c = easel_op_concat (g, u, u, 1);
  g_assert_cmpint (c->shape[1], ==, 16);
  g_assert_null (easel_graph_error (g));
}

static void
test_errors_are_sticky (void)
{
  g_autoptr(EaselGraph) g = easel_graph_new ();
  const gint64 xs[2] = { 3, 5 }, ws[2] = { 4, 6 };
  static const float dummy[24];
  EaselTensor *x = easel_graph_input (g, "x", EASEL_DTYPE_F32, 2, xs, NULL);
  EaselTensor *w = easel_graph_weight (g, "proj.weight", EASEL_DTYPE_F32, 2, ws, dummy);
  EaselTensor *y = easel_op_linear (g, x, w, NULL);
  g_assert_nonnull (y);
  g_assert_nonnull (easel_graph_error (g));
  g_assert_nonnull (strstr (easel_graph_error (g)->message, "proj.weight"));
  const gint64 bad[1] = { 7 };
  easel_op_reshape (g, x, 1, bad);
  g_assert_nonnull (strstr (easel_graph_error (g)->message, "linear"));   /* the first error stays */
}

/* Model code reports bad inputs through the graph: the placeholder keeps the shape, the first error stays. */
static void
test_fail_from_model_code (void)
{
  g_autoptr(EaselGraph) g = easel_graph_new ();
  const gint64 xs[3] = { 2, 3, 5 };
  EaselTensor *x = easel_graph_input (g, "x", EASEL_DTYPE_F32, 3, xs, NULL);
  EaselTensor *y = easel_graph_fail (g, x, "UNet: %d time ids", 4);
  g_assert_cmpint (y->n_dims, ==, 3);
  g_assert_cmpint (y->shape[2], ==, 5);
  g_assert_cmpstr (easel_graph_error (g)->message, ==, "UNet: 4 time ids");
  const gint64 bad[1] = { 7 };
  easel_op_reshape (g, x, 1, bad);
  g_assert_cmpstr (easel_graph_error (g)->message, ==, "UNet: 4 time ids");
}

/* No two tensors that are alive at the same time may overlap in the arena. */
static void
test_plan_no_overlap (void)
{
  g_autoptr(EaselGraph) g = easel_graph_new ();
  const gint64 s[2] = { 64, 64 };
  EaselTensor *x = easel_graph_input (g, "x", EASEL_DTYPE_F32, 2, s, NULL);
  EaselTensor *keep = x, *h = x;
  gsize total = 0;
  for (int i = 0; i < 20; i++) {
    h = easel_op_silu (g, h);
    if (i % 5 == 0)
      h = easel_op_add (g, h, keep);       /* a long-lived skip */
    if (i == 10)
      keep = h;
  }
  easel_graph_mark_output (g, h);
  gsize arena = easel_graph_plan (g);
  guint n = easel_graph_n_nodes (g);
  for (guint i = 0; i < n; i++)
    total += easel_tensor_nbytes (easel_graph_node (g, i));
  g_assert_cmpuint (arena, <, total / 3);          /* storage is reused */
  /* liveness: [index, last reader] per node, checked pairwise */
  g_autofree guint *last = g_new0 (guint, n);
  for (guint i = 0; i < n; i++) {
    EaselTensor *t = easel_graph_node (g, i);
    last[i] = MAX (last[i], i);
    for (int k = 0; k < EASEL_MAX_SRC; k++)
      if (t->src[k])
        last[t->src[k]->base->index] = MAX (last[t->src[k]->base->index], i);
  }
  last[h->index] = n;
  for (guint i = 0; i < n; i++)
    for (guint j = i + 1; j < n; j++) {
      EaselTensor *a = easel_graph_node (g, i), *b = easel_graph_node (g, j);
      if (a->op == EASEL_OP_VIEW || b->op == EASEL_OP_VIEW || last[i] < j)
        continue;                                   /* a is dead before b is written */
      gboolean disjoint = a->arena_offset + easel_tensor_nbytes (a) <= b->arena_offset
                          || b->arena_offset + easel_tensor_nbytes (b) <= a->arena_offset;
      if (!disjoint)
        g_error ("nodes %u and %u overlap while both alive", i, j);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/graph/shapes", test_shapes);
  g_test_add_func ("/graph/errors-are-sticky", test_errors_are_sticky);
  g_test_add_func ("/graph/fail-from-model-code", test_fail_from_model_code);
  g_test_add_func ("/graph/plan-no-overlap", test_plan_no_overlap);
  return g_test_run ();
}
