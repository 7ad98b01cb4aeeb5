/* engine/weights.c */
#include "weights.h"

#include <string.h>

#include "error.h"

typedef struct {
  const EaselStTensor *st;
  const char *key;          /* full checkpoint name */
  gboolean used;
} Entry;

struct _EaselWeights {
  char *prefix;
  GHashTable *by_name;      /* Easel name (owned) -> Entry* (owned) */
};

void
easel_weights_free (EaselWeights *w)
{
  if (w == NULL)
    return;
  g_hash_table_unref (w->by_name);
  g_free (w->prefix);
  g_free (w);
}

EaselWeights *
easel_weights_new (const EaselCheckpoint *ck, const char *prefix, EaselWeightsRename rename, gpointer user_data,
                   GError **error)
{
  g_autoptr(EaselWeights) w = g_new0 (EaselWeights, 1);
  gsize plen = strlen (prefix);

  w->prefix = g_strdup (prefix);
  w->by_name = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (gsize i = 0; i < easel_checkpoint_n_tensors (ck); i++) {
    const EaselCheckpointTensor *t = easel_checkpoint_tensor (ck, i);
    if (strncmp (t->name, prefix, plen) != 0)
      continue;
    char *name = rename ? rename (t->name + plen, user_data) : g_strdup (t->name + plen);
    if (name == NULL)
      continue;
    Entry *old = g_hash_table_lookup (w->by_name, name);
    if (old != NULL) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: '%s' and '%s' are the same weight",
                   easel_checkpoint_path (ck), old->key, t->name);
      g_free (name);
      return NULL;
    }
    Entry *e = g_new0 (Entry, 1);
    e->st = t->st;
    e->key = t->name;
    g_hash_table_insert (w->by_name, name, e);
  }
  if (g_hash_table_size (w->by_name) == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no tensors under '%s'", easel_checkpoint_path (ck),
                 prefix);
    return NULL;
  }
  return g_steal_pointer (&w);
}

const char *
easel_weights_prefix (const EaselWeights *w)
{
  return w->prefix;
}

gsize
easel_weights_n (const EaselWeights *w)
{
  return g_hash_table_size (w->by_name);
}

gboolean
easel_weights_has (const EaselWeights *w, const char *name)
{
  return g_hash_table_contains (w->by_name, name);
}

const EaselStTensor *
easel_weights_get (EaselWeights *w, const char *name)
{
  Entry *e = g_hash_table_lookup (w->by_name, name);
  if (e == NULL)
    return NULL;
  e->used = TRUE;
  return e->st;
}

static char *
shape_str (int n_dims, const gint64 *shape)
{
  GString *s = g_string_new ("[");
  for (int d = 0; d < n_dims; d++) {
    if (d)
      g_string_append (s, ", ");
    if (shape[d] < 0)
      g_string_append_c (s, '*');
    else
      g_string_append_printf (s, "%" G_GINT64_FORMAT, shape[d]);
  }
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

const EaselStTensor *
easel_weights_require (EaselWeights *w, const char *name, int n_dims, const gint64 *shape, GError **error)
{
  Entry *e = g_hash_table_lookup (w->by_name, name);
  gboolean ok;

  if (e == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "missing tensor '%s' (under '%s')", name, w->prefix);
    return NULL;
  }
  ok = e->st->n_dims == n_dims;
  for (int d = 0; ok && d < n_dims; d++)
    ok = shape[d] < 0 || shape[d] == e->st->shape[d];
  if (!ok) {
    g_autofree char *want = shape_str (n_dims, shape), *have = shape_str (e->st->n_dims, e->st->shape);
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "tensor '%s' has shape %s, expected %s", e->key, have,
                 want);
    return NULL;
  }
  e->used = TRUE;
  return e->st;
}

static gint
cmp_str (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

GPtrArray *
easel_weights_unused (const EaselWeights *w)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init (&it, w->by_name);
  while (g_hash_table_iter_next (&it, NULL, &value)) {
    Entry *e = value;
    if (!e->used)
      g_ptr_array_add (out, g_strdup (e->key));
  }
  g_ptr_array_sort (out, cmp_str);
  return out;
}

EaselTensor *
easel_graph_weight_st (EaselGraph *g, const EaselStTensor *st)
{
  if (st == NULL)
    return NULL;
  return easel_graph_weight (g, st->name, st->dtype, st->n_dims, st->shape, st->data);
}
