/* engine/embedding.c: textual inversion files and their placement in token sequences (embedding.h);
 * layouts as A1111's modules/textual_inversion/textual_inversion.py reads them (string_to_param,
 * emb_params, clip_l/clip_g) and ComfyUI's comfy/sd1_clip.py load_embed. */
#include "embedding.h"

#include <string.h>

#include "error.h"
#include "pickle.h"
#include "safetensors.h"

void
easel_embedding_free (EaselEmbedding *e)
{
  if (e == NULL)
    return;
  for (int i = 0; i < EASEL_EMBEDDING_N_ENCODERS; i++)
    g_free (e->vectors[i]);
  g_free (e->name);
  g_free (e);
}

/* One tensor of the file, by key, whatever the container. */
typedef struct {
  char *key;       /* owned */
  int n_dims;
  gint64 shape[2];
  float *data;   /* owned */
} Found;

typedef struct {
  GArray *found;   /* Found */
  gboolean bad;    /* a tensor of more than 2 dims */
} Collect;

static void
found_clear (gpointer p)
{
  Found *f = p;
  g_free (f->key);
  g_free (f->data);
}

static void
add_found (Collect *c, const char *key, int n_dims, const gint64 *shape, float *data)
{
  Found f = { g_strdup (key), n_dims, { 0, 0 }, data };
  if (n_dims > 2 || n_dims < 1) {
    c->bad = TRUE;
    g_free (f.key);
    g_free (data);
    return;
  }
  memcpy (f.shape, shape, n_dims * sizeof (gint64));
  g_array_append_val (c->found, f);
}

static void
collect_py (const char *path, const EaselPyTensor *t, gpointer user_data)
{
  Collect *c = user_data;
  if (easel_py_tensor_numel (t) > (1 << 24)) {
    c->bad = TRUE;
    return;
  }
  add_found (c, path, t->n_dims, t->shape, easel_py_tensor_to_f32 (t));
}

static const Found *
find (const Collect *c, const char *key)
{
  for (guint i = 0; i < c->found->len; i++) {
    const Found *f = &g_array_index (c->found, Found, i);
    if (strcmp (f->key, key) == 0 || (g_str_has_suffix (f->key, key) && f->key[strlen (f->key) - strlen (key) - 1] == '.'))
      return f;
  }
  return NULL;
}

static gboolean
take (EaselEmbedding *e, int enc, const Found *f, const char *path, GError **error)
{
  gint64 n = f->n_dims == 1 ? 1 : f->shape[0], w = f->shape[f->n_dims - 1];
  if (n < 1 || w < 1 || (e->n_vectors && n != e->n_vectors)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: embedding '%s' has %" G_GINT64_FORMAT
                 " vectors of width %" G_GINT64_FORMAT " (clip_l and clip_g must agree)", path, f->key, n, w);
    return FALSE;
  }
  e->n_vectors = n;
  e->width[enc] = w;
  e->vectors[enc] = g_memdup2 (f->data, n * w * sizeof (float));
  return TRUE;
}

EaselEmbedding *
easel_embedding_load (const char *path, GError **error)
{
  g_autoptr(EaselEmbedding) e = g_new0 (EaselEmbedding, 1);
  g_autoptr(GArray) found = g_array_new (FALSE, TRUE, sizeof (Found));
  g_autoptr(EaselSafetensors) st = NULL;
  g_autoptr(EaselTorchFile) tf = NULL;
  Collect c = { found, FALSE };
  const Found *f;

  g_array_set_clear_func (found, found_clear);
  g_autofree char *base = g_path_get_basename (path);
  char *dot = strrchr (base, '.');
  e->name = dot && dot != base ? g_strndup (base, dot - base) : g_strdup (base);

  if (g_str_has_suffix (path, ".safetensors")) {
    if ((st = easel_safetensors_open (path, error)) == NULL)
      return NULL;
    for (gsize i = 0; i < easel_safetensors_n_tensors (st); i++) {
      const EaselStTensor *t = easel_safetensors_tensor (st, i);
      if (!easel_dtype_info (t->dtype)->is_float || t->n_elements > (1 << 24)) {
        c.bad = TRUE;
        continue;
      }
      add_found (&c, t->name, t->n_dims, t->shape, easel_st_tensor_to_f32 (t));
    }
  } else {
    if ((tf = easel_torch_open (path, error)) == NULL)
      return NULL;
    easel_py_foreach_tensor (easel_torch_root (tf), collect_py, &c);
  }

  if ((f = find (&c, "clip_l")) != NULL) {
    const Found *g = find (&c, "clip_g");
    if (!take (e, EASEL_EMBEDDING_CLIP_L, f, path, error) || (g && !take (e, EASEL_EMBEDDING_CLIP_G, g, path, error)))
      return NULL;
  } else if ((f = find (&c, "clip_g")) != NULL) {
    if (!take (e, EASEL_EMBEDDING_CLIP_G, f, path, error))
      return NULL;
  } else if ((f = find (&c, "emb_params")) != NULL || (f = find (&c, "string_to_param.*")) != NULL
             || (found->len == 1 && (f = &g_array_index (found, Found, 0)) != NULL)) {
    if (!take (e, EASEL_EMBEDDING_CLIP_L, f, path, error))
      return NULL;
  } else {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                 "%s: no embedding (emb_params, string_to_param, clip_l/clip_g, or a single tensor)%s", path,
                 c.bad ? "; tensors of the wrong kind or size were left out" : "");
    return NULL;
  }
  return g_steal_pointer (&e);
}

GArray *
easel_embedding_expand (const gint32 *tokens, gsize n, const GArray *const *name_tokens, const gint64 *n_vectors,
                        const gint32 *first_ids, gsize n_embeddings)
{
  GArray *out = g_array_sized_new (FALSE, FALSE, sizeof (gint32), n);
  gsize i = 0;
  while (i < n) {
    gssize best = -1;
    guint best_len = 0;
    for (gsize k = 0; k < n_embeddings; k++) {
      const GArray *nt = name_tokens[k];
      if (nt->len == 0 || nt->len > n - i || nt->len <= best_len)
        continue;
      if (memcmp (tokens + i, nt->data, nt->len * sizeof (gint32)) == 0) {
        best = (gssize) k;
        best_len = nt->len;
      }
    }
    if (best < 0) {
      g_array_append_val (out, tokens[i]);
      i++;
      continue;
    }
    for (gint64 v = 0; v < n_vectors[best]; v++) {
      gint32 id = first_ids[best] + (gint32) v;
      g_array_append_val (out, id);
    }
    i += best_len;
  }
  return out;
}

char *
easel_embedding_comfy_names (const char *prompt, GPtrArray *names)
{
  static const char tag[] = "embedding:";
  g_autoptr(GString) out = g_string_new (NULL);
  const char *p = prompt;

  while (*p) {
    if (strncmp (p, tag, strlen (tag)) == 0 && (p == prompt || g_ascii_isspace (p[-1]) || strchr ("(,[", p[-1]))) {
      const char *b = p + strlen (tag), *e = b;
      while (*e && !g_ascii_isspace (*e) && !strchr (",()[]:", *e))
        e++;
      if (e > b) {
        g_autofree char *name = g_strndup (b, e - b);
        /* ComfyUI also takes the file name with its extension */
        static const char *const exts[] = { ".safetensors", ".pt", ".bin" };
        for (guint k = 0; k < G_N_ELEMENTS (exts); k++)
          if (g_str_has_suffix (name, exts[k]) && strlen (name) > strlen (exts[k]))
            name[strlen (name) - strlen (exts[k])] = '\0';
        gboolean seen = FALSE;
        for (guint i = 0; i < names->len && !seen; i++)
          seen = strcmp (names->pdata[i], name) == 0;
        if (!seen)
          g_ptr_array_add (names, g_strdup (name));
        g_string_append (out, name);
        p = e;
        continue;
      }
    }
    g_string_append_c (out, *p++);
  }
  return g_string_free (g_steal_pointer (&out), FALSE);
}
