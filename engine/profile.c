/* engine/profile.c: per-op time profiles (profile.h): two hash tables of entries, per op kind and
 * per (op, shape) key, and the tables printed from them. */
#include "profile.h"

#include <string.h>

struct _EaselProfile {
  gatomicrefcount ref;
  char *clock;
  GHashTable *by_op;        /* key -> EaselProfileEntry * (key owned by the entry's table) */
  GHashTable *by_shape;
};

static const char *const op_names[EASEL_OP_COUNT] = {
  [EASEL_OP_LEAF] = "leaf", [EASEL_OP_VIEW] = "view", [EASEL_OP_CONTIGUOUS] = "contiguous",
  [EASEL_OP_LINEAR] = "linear", [EASEL_OP_CONV2D] = "conv2d", [EASEL_OP_GROUP_NORM] = "group_norm",
  [EASEL_OP_LAYER_NORM] = "layer_norm", [EASEL_OP_UNARY] = "unary", [EASEL_OP_BINARY] = "binary",
  [EASEL_OP_SCALE] = "scale", [EASEL_OP_GEGLU] = "geglu", [EASEL_OP_ATTENTION] = "attention",
  [EASEL_OP_UPSAMPLE_NEAREST] = "upsample", [EASEL_OP_CONCAT] = "concat",
  [EASEL_OP_TIMESTEP_EMBEDDING] = "timestep_embedding", [EASEL_OP_GET_ROWS] = "get_rows",
  [EASEL_OP_GROUP_STATS] = "group_stats", [EASEL_OP_GROUP_NORM_APPLY] = "group_norm_apply",
  [EASEL_OP_AVG_POOL2D] = "avg_pool2d",
};

const char *
easel_op_name (EaselOp op)
{
  return (guint) op < EASEL_OP_COUNT && op_names[op] ? op_names[op] : "?";
}

EaselProfile *
easel_profile_new (const char *clock)
{
  EaselProfile *p = g_new0 (EaselProfile, 1);
  g_atomic_ref_count_init (&p->ref);
  p->clock = g_strdup (clock);
  p->by_op = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  p->by_shape = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return p;
}

EaselProfile *
easel_profile_ref (EaselProfile *p)
{
  g_atomic_ref_count_inc (&p->ref);
  return p;
}

void
easel_profile_free (EaselProfile *p)
{
  if (p == NULL || !g_atomic_ref_count_dec (&p->ref))
    return;
  g_hash_table_unref (p->by_op);
  g_hash_table_unref (p->by_shape);
  g_free (p->clock);
  g_free (p);
}

void
easel_profile_reset (EaselProfile *p)
{
  g_hash_table_remove_all (p->by_op);
  g_hash_table_remove_all (p->by_shape);
}

static double
view_bytes (const EaselTensor *t)
{
  return t ? (double) easel_tensor_numel (t) * (double) easel_dtype_size (t->dtype) : 0.0;
}

/* Shapes: x (B, C, H, W) for conv2d; (B, C, *) for the group norms; q (B, Lq, H·d) for attention. */
void
easel_profile_node_init (EaselProfileNode *n, const EaselTensor *t)
{
  const EaselTensor *x = t->src[0], *w = t->src[1];
  const char *name = easel_op_name (t->op);
  memset (n, 0, sizeof *n);
  n->op = t->op;
  n->flops = easel_tensor_flops (t);
  n->bytes = view_bytes (t);
  for (int s = 0; s < EASEL_MAX_SRC; s++)
    n->bytes += view_bytes (t->src[s]);
  switch (t->op) {
  case EASEL_OP_LINEAR:
    g_snprintf (n->key, sizeof n->key, "linear M=%" G_GINT64_FORMAT " K=%" G_GINT64_FORMAT " N=%" G_GINT64_FORMAT,
                easel_tensor_numel (t) / MAX (w->shape[0], 1), w->shape[1], w->shape[0]);
    return;
  case EASEL_OP_CONV2D:
    g_snprintf (n->key, sizeof n->key,
                "conv2d B=%" G_GINT64_FORMAT " C=%" G_GINT64_FORMAT " H=%" G_GINT64_FORMAT " W=%" G_GINT64_FORMAT
                " O=%" G_GINT64_FORMAT " k=%" G_GINT64_FORMAT " s=%d p=%d%s",
                x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], t->ip[0], t->ip[1],
                t->ip[2] || t->ip[3] ? " extra" : "");
    return;
  case EASEL_OP_ATTENTION: {
    gint64 heads = MAX (t->ip[0], 1), d = x->shape[2] / heads, dv = t->src[2]->shape[2] / heads;
    int len = g_snprintf (n->key, sizeof n->key,
                          "attention B=%" G_GINT64_FORMAT " H=%" G_GINT64_FORMAT " Lq=%" G_GINT64_FORMAT
                          " Lk=%" G_GINT64_FORMAT " D=%" G_GINT64_FORMAT "%s",
                          x->shape[0], heads, x->shape[1], w->shape[1], d, t->ip[1] ? " causal" : "");
    if (dv != d && len > 0 && (gsize) len < sizeof n->key)
      g_snprintf (n->key + len, sizeof n->key - len, " Dv=%" G_GINT64_FORMAT, dv);
    return;
  }
  case EASEL_OP_GROUP_NORM:
  case EASEL_OP_GROUP_NORM_APPLY:
  case EASEL_OP_GROUP_STATS:
    g_snprintf (n->key, sizeof n->key, "%s B=%" G_GINT64_FORMAT " C=%" G_GINT64_FORMAT " HW=%" G_GINT64_FORMAT " G=%d%s",
                name, x->shape[0], x->shape[1], easel_tensor_numel (x) / MAX (x->shape[0] * x->shape[1], 1), t->ip[0],
                t->op != EASEL_OP_GROUP_STATS && t->ip[1] ? " silu=1" : "");
    return;
  default: {
    g_autofree char *shape = easel_tensor_shape_str (t);
    g_snprintf (n->key, sizeof n->key, "%s %s", name, shape);
    return;
  }
  }
}

static void
accumulate (GHashTable *table, const char *key, const EaselProfileNode *n, double seconds)
{
  EaselProfileEntry *e = g_hash_table_lookup (table, key);
  if (e == NULL) {
    char *k = g_strdup (key);
    e = g_new0 (EaselProfileEntry, 1);
    e->key = k;
    e->op = n->op;
    g_hash_table_insert (table, k, e);
  }
  e->calls++;
  e->seconds += seconds;
  e->flops += n->flops;
  e->bytes += n->bytes;
}

void
easel_profile_add (EaselProfile *p, const EaselProfileNode *n, double seconds)
{
  accumulate (p->by_op, easel_op_name (n->op), n, seconds);
  accumulate (p->by_shape, n->key, n, seconds);
}

void
easel_profile_add_tensor (EaselProfile *p, const EaselTensor *t, double seconds)
{
  EaselProfileNode n;
  easel_profile_node_init (&n, t);
  easel_profile_add (p, &n, seconds);
}

double
easel_profile_total_seconds (const EaselProfile *p)
{
  GHashTableIter it;
  gpointer v;
  double total = 0;
  g_hash_table_iter_init (&it, p->by_op);
  while (g_hash_table_iter_next (&it, NULL, &v))
    total += ((EaselProfileEntry *) v)->seconds;
  return total;
}

static gint
by_seconds_desc (gconstpointer a, gconstpointer b)
{
  const EaselProfileEntry *x = a, *y = b;
  if (x->seconds != y->seconds)
    return x->seconds < y->seconds ? 1 : -1;
  return strcmp (x->key, y->key);
}

GArray *
easel_profile_entries (const EaselProfile *p, gboolean by_shape)
{
  GHashTable *table = by_shape ? p->by_shape : p->by_op;
  GArray *rows = g_array_sized_new (FALSE, FALSE, sizeof (EaselProfileEntry), g_hash_table_size (table));
  GHashTableIter it;
  gpointer v;
  g_hash_table_iter_init (&it, table);
  while (g_hash_table_iter_next (&it, NULL, &v))
    g_array_append_vals (rows, v, 1);
  g_array_sort (rows, by_seconds_desc);
  return rows;
}

/* "TFLOP/s" for matrix work, "GB/s" for the rest */
static void
print_row (FILE *f, const EaselProfileEntry *e, double total, int key_width)
{
  double ms = e->seconds * 1e3;
  fprintf (f, "  %-*s %7" G_GUINT64_FORMAT " %10.3f %8.3f %5.1f%%", key_width, e->key, e->calls, ms,
           e->calls ? ms / (double) e->calls : 0.0, total > 0 ? 100.0 * e->seconds / total : 0.0);
  if (e->seconds <= 0)
    fprintf (f, "\n");
  else if (e->flops > 0)
    fprintf (f, " %9.1f GFLOP %8.2f TFLOP/s\n", e->flops / 1e9, e->flops / e->seconds / 1e12);
  else
    fprintf (f, " %9.3f GB    %8.1f GB/s\n", e->bytes / 1e9, e->bytes / e->seconds / 1e9);
}

void
easel_profile_print (const EaselProfile *p, FILE *f, const char *title, guint top)
{
  if (g_hash_table_size (p->by_op) == 0)
    return;
  double total = easel_profile_total_seconds (p);
  g_autoptr(GArray) ops = easel_profile_entries (p, FALSE);
  g_autoptr(GArray) shapes = easel_profile_entries (p, TRUE);
  guint n_shapes = top > 0 ? MIN (top, shapes->len) : shapes->len;
  int width = 20;
  for (guint i = 0; i < n_shapes; i++)
    width = MAX (width, (int) strlen (g_array_index (shapes, EaselProfileEntry, i).key));

  fprintf (f, "%s profile (EASEL_PROFILE, %s): %.3f ms in all\n", title, p->clock, total * 1e3);
  fprintf (f, "  %-*s %7s %10s %8s %6s\n", width, "op", "calls", "total ms", "ms/call", "share");
  for (guint i = 0; i < ops->len; i++)
    print_row (f, &g_array_index (ops, EaselProfileEntry, i), total, width);
  fprintf (f, "  top %u of %u (op, shape) by total time:\n", n_shapes, shapes->len);
  for (guint i = 0; i < n_shapes; i++)
    print_row (f, &g_array_index (shapes, EaselProfileEntry, i), total, width);
  fflush (f);
}
