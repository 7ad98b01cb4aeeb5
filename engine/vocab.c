/* engine/vocab.c: where the CLIP vocabulary is looked for (the order is in vocab.h).
 * Folder listings (HF snapshots, venv site-packages) are sorted so the choice is reproducible. */
#include "vocab.h"

#include <string.h>

#include "error.h"

#define GZ_NAME "bpe_simple_vocab_16e6.txt.gz"

static gboolean
is_file (const char *dir, const char *name)
{
  g_autofree char *p = g_build_filename (dir, name, NULL);
  return g_file_test (p, G_FILE_TEST_IS_REGULAR);
}

/* Does path (a folder or a file) hold a vocabulary easel_tokenizer_load can read? */
static gboolean
holds_vocab (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    return (is_file (path, "vocab.json") && is_file (path, "merges.txt")) || is_file (path, GZ_NAME);
  return g_file_test (path, G_FILE_TEST_IS_REGULAR);
}

/* Sorted names of the entries of dir (empty when it cannot be read). */
static GPtrArray *
list_dir (const char *dir)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  return names;
}

static int
compare_str_ptr (gconstpointer a, gconstpointer b)
{
  return g_strcmp0 (*(char *const *) a, *(char *const *) b);
}

static GPtrArray *
list_sorted (const char *dir)
{
  GPtrArray *names = list_dir (dir);
  g_ptr_array_sort (names, compare_str_ptr);
  return names;
}

static void
add (GPtrArray *out, char *path)
{
  g_ptr_array_add (out, path);
}

static void
add_hf_cache (GPtrArray *out)
{
  g_autofree char *hub = NULL;
  const char *v;

  if ((v = g_getenv ("HF_HUB_CACHE")) != NULL && *v)
    hub = g_strdup (v);
  else if ((v = g_getenv ("HF_HOME")) != NULL && *v)
    hub = g_build_filename (v, "hub", NULL);
  else
    hub = g_build_filename (g_get_home_dir (), ".cache", "huggingface", "hub", NULL);

  g_autofree char *clip = g_build_filename (hub, "models--openai--clip-vit-large-patch14", "snapshots", NULL);
  g_autoptr(GPtrArray) snaps = list_sorted (clip);
  for (guint i = 0; i < snaps->len; i++)
    add (out, g_build_filename (clip, snaps->pdata[i], NULL));

  g_autoptr(GPtrArray) models = list_sorted (hub);
  for (guint i = 0; i < models->len; i++) {
    if (!g_str_has_prefix (models->pdata[i], "models--"))
      continue;
    g_autofree char *sdir = g_build_filename (hub, models->pdata[i], "snapshots", NULL);
    g_autoptr(GPtrArray) s = list_sorted (sdir);
    for (guint k = 0; k < s->len; k++)
      add (out, g_build_filename (sdir, s->pdata[k], "tokenizer", NULL));
  }
}

/* site-packages of an A1111 install's venv (Linux lib/python3.X, Windows Lib). */
static void
add_a1111 (GPtrArray *out, const char *root)
{
  g_autofree char *lib = g_build_filename (root, "venv", "lib", NULL);
  g_autoptr(GPtrArray) pys = list_sorted (lib);
  g_autoptr(GPtrArray) sites = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < pys->len; i++)
    if (g_str_has_prefix (pys->pdata[i], "python"))
      g_ptr_array_add (sites, g_build_filename (lib, pys->pdata[i], "site-packages", NULL));
  g_ptr_array_add (sites, g_build_filename (root, "venv", "Lib", "site-packages", NULL));
  for (guint i = 0; i < sites->len; i++) {
    add (out, g_build_filename (sites->pdata[i], "clip", GZ_NAME, NULL));
    add (out, g_build_filename (sites->pdata[i], "open_clip", GZ_NAME, NULL));
  }
}

char **
easel_vocab_candidates (const char *explicit_path, const char *model_path)
{
  GPtrArray *out = g_ptr_array_new ();
  const char *v;

  if (explicit_path)
    add (out, g_strdup (explicit_path));
  if ((v = g_getenv ("EASEL_VOCAB")) != NULL && *v)
    add (out, g_strdup (v));
  if (model_path) {
    if (g_file_test (model_path, G_FILE_TEST_IS_DIR)) {
      add (out, g_build_filename (model_path, "tokenizer", NULL));
      add (out, g_strdup (model_path));
    } else {
      g_autofree char *dir = g_path_get_dirname (model_path);
      add (out, g_strdup (dir));
      add (out, g_build_filename (dir, "tokenizer", NULL));
    }
  }
  add_hf_cache (out);
  if ((v = g_getenv ("EASEL_COMFYUI_DIR")) != NULL && *v)
    add (out, g_build_filename (v, "comfy", "sd1_tokenizer", NULL));
  if ((v = g_getenv ("EASEL_A1111_DIR")) != NULL && *v)
    add_a1111 (out, v);
  add (out, g_build_filename (g_get_user_data_dir (), "easel", NULL));
  for (const char *const *d = g_get_system_data_dirs (); *d; d++)
    add (out, g_build_filename (*d, "easel", NULL));
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (out, FALSE);
}

char *
easel_vocab_find (const char *explicit_path, const char *model_path, GError **error)
{
  g_auto(GStrv) cands = easel_vocab_candidates (explicit_path, model_path);
  const char *env = g_getenv ("EASEL_VOCAB");
  guint i = 0;

  /* the explicit choices must hold one: falling back silently would hide a typo */
  if (explicit_path) {
    if (!holds_vocab (explicit_path)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND,
                   "%s: no CLIP vocabulary there (want vocab.json + merges.txt or %s)", explicit_path, GZ_NAME);
      return NULL;
    }
    return g_strdup (explicit_path);
  }
  if (env && *env) {
    if (!holds_vocab (env)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND,
                   "EASEL_VOCAB=%s: no CLIP vocabulary there (want vocab.json + merges.txt or %s)", env, GZ_NAME);
      return NULL;
    }
    return g_strdup (env);
  }
  for (i = 0; cands[i]; i++)
    if (holds_vocab (cands[i]))
      return g_strdup (cands[i]);
  g_set_error_literal (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, EASEL_VOCAB_MISSING_MESSAGE);
  return NULL;
}

EaselTokenizer *
easel_vocab_load (const char *explicit_path, const char *model_path, GError **error)
{
  g_autofree char *path = easel_vocab_find (explicit_path, model_path, error);
  return path ? easel_tokenizer_load (path, error) : NULL;
}
