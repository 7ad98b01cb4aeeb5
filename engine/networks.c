/* engine/networks.c: a job's LoRAs and textual-inversion embeddings (networks.h says which
 * program each rule follows). Layout: folders; LoRAs (resolve, open through the model's cache,
 * merge through its stack); embeddings (scan, the chunker hook, rows for the encoders); the PNG
 * parameters. */
#include "networks.h"

#include <math.h>
#include <string.h>

#include "embedding.h"
#include "engine-private.h"
#include "lora.h"

#define MAX_SCAN_DEPTH 4
#define MAX_SCAN_FILES 100000

typedef struct {
  char *name;              /* the file name without extension */
  char *path;
  GArray *name_ids;        /* gint32: the name's tokens */
  EaselEmbedding *emb;     /* read on the first match */
  gboolean tried, usable;
  gint32 first_id;         /* the id of its first row; -1 until a prompt uses it */
  char *hash;              /* SHA-256 of the file, hex; computed for the parameters */
} Candidate;

struct _EaselJobNetworks {
  EaselModel *model, *text_model;   /* not owned */
  char *prompt;                     /* job->prompt without LoRA tags */
  char *suffix;                     /* the tags of job->loras, for the parameters */
  GPtrArray *messages;              /* char* */
  GPtrArray *loras;                 /* EaselLora* (ref), in merge order */
  GPtrArray *aliases;               /* char*: each LoRA's name as mentioned */
  GPtrArray *candidates;            /* Candidate*, longest name first */
  GPtrArray *used;                  /* Candidate* (not owned), in order of first use */
  EaselClip *clips[2];              /* the text model's encoders 0 and 1 where present (not owned) */
  gint64 vocab;
  GArray *rows[2];                  /* float: [n_rows, width of clip i] */
  gint64 n_rows;
  gboolean rows_given;
};

static void
candidate_free (gpointer data)
{
  Candidate *c = data;
  g_free (c->name);
  g_free (c->path);
  g_clear_pointer (&c->name_ids, g_array_unref);
  easel_embedding_free (c->emb);
  g_free (c->hash);
  g_free (c);
}

void
easel_job_networks_free (EaselJobNetworks *n)
{
  if (n == NULL)
    return;
  for (int i = 0; i < 2; i++) {
    if (n->clips[i] && n->rows_given)
      easel_clip_set_extra_tokens (n->clips[i], NULL, 0, NULL);
    if (n->rows[i])
      g_array_unref (n->rows[i]);
  }
  g_free (n->prompt);
  g_free (n->suffix);
  g_ptr_array_unref (n->messages);
  g_ptr_array_unref (n->loras);
  g_ptr_array_unref (n->aliases);
  g_ptr_array_unref (n->candidates);
  g_ptr_array_unref (n->used);
  g_free (n);
}

const char *
easel_job_networks_prompt (const EaselJobNetworks *n)
{
  return n->prompt;
}

EaselModel *
easel_job_networks_text_model (const EaselJobNetworks *n)
{
  return n->text_model;
}

GPtrArray *
easel_job_networks_messages (const EaselJobNetworks *n)
{
  return n->messages;
}

/* --- folders --------------------------------------------------------------------------------- */

/* Appends the folders of a NULL-terminated list (must exist: an error names the one that does
 * not) and of an environment search path (missing ones are skipped) to dirs. */
static gboolean
add_dirs (GPtrArray *dirs, const char *what, const char *const *given, const char *env, GError **error)
{
  for (guint i = 0; given && given[i]; i++) {
    if (!g_file_test (given[i], G_FILE_TEST_IS_DIR)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s folder %s: no such folder", what, given[i]);
      return FALSE;
    }
    g_ptr_array_add (dirs, g_strdup (given[i]));
  }
  const char *value = g_getenv (env);
  g_auto(GStrv) parts = value && *value ? g_strsplit (value, G_SEARCHPATH_SEPARATOR_S, -1) : NULL;
  for (guint i = 0; parts && parts[i]; i++)
    if (parts[i][0] && g_file_test (parts[i], G_FILE_TEST_IS_DIR))
      g_ptr_array_add (dirs, g_strdup (parts[i]));
  return TRUE;
}

/* The name A1111 gives a file: its base name without the last extension. */
static char *
stem_of (const char *path)
{
  g_autofree char *base = g_path_get_basename (path);
  char *dot = strrchr (base, '.');
  return dot && dot != base ? g_strndup (base, dot - base) : g_strdup (base);
}

/* --- LoRAs ----------------------------------------------------------------------------------- */

static char *
find_lora (const char *name, const GPtrArray *dirs, const char *where, GError **error)
{
  if (g_file_test (name, G_FILE_TEST_IS_REGULAR))
    return g_strdup (name);
  for (guint i = 0; i < dirs->len; i++) {
    char *path = easel_lora_resolve (name, dirs->pdata[i], NULL);
    if (path)
      return path;
  }
  if (g_path_is_absolute (name) || strchr (name, G_DIR_SEPARATOR) != NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "LoRA %s (%s): no such file", name, where);
    return NULL;
  }
  g_autoptr(GString) list = g_string_new (NULL);
  for (guint i = 0; i < dirs->len; i++)
    g_string_append_printf (list, "%s%s", i ? ", " : "", (const char *) dirs->pdata[i]);
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND,
               "LoRA '%s' (%s): no such file, and no %s.safetensors (.pt, .ckpt) in %s", name, where, name,
               dirs->len ? list->str : "any LoRA folder (--lora-dir, $EASEL_LORA_DIR)");
  return NULL;
}

/* The folders <lora:NAME> is looked up in (networks.h). */
static gboolean
lora_dirs (EaselModel *model, const EaselJobParams *job, GPtrArray *dirs, GError **error)
{
  if (!add_dirs (dirs, "LoRA", job->lora_dirs, "EASEL_LORA_DIR", error))
    return FALSE;
  g_autofree char *dir = g_path_get_dirname (easel_model_path (model));
  g_ptr_array_add (dirs, g_strdup (dir));
  static const char *const siblings[] = { "Lora", "loras" };
  for (guint i = 0; i < G_N_ELEMENTS (siblings); i++) {
    g_autofree char *parent = g_path_get_dirname (dir);
    char *s = g_build_filename (parent, siblings[i], NULL);
    if (g_file_test (s, G_FILE_TEST_IS_DIR) && strcmp (s, dir) != 0)
      g_ptr_array_add (dirs, s);
    else
      g_free (s);
  }
  return TRUE;
}

static gboolean
check_strength (double v, const char *name, GError **error)
{
  if (isfinite (v) && fabs (v) < 1e6)
    return TRUE;
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "LoRA '%s': strength %g is not a usable number", name,
               v);
  return FALSE;
}

/* A strength as the merge uses it (float): the shortest text that reads back to that float, so a
 * 0.9 parsed into a float is written 0.9, not 0.899999976. */
static char *
strength_text (double v)
{
  float f = (float) v;
  for (int digits = 1; digits < 9; digits++) {
    char fmt[8], buf[G_ASCII_DTOSTR_BUF_SIZE];
    g_snprintf (fmt, sizeof fmt, "%%.%dg", digits);
    g_ascii_formatd (buf, sizeof buf, fmt, f);
    if ((float) g_ascii_strtod (buf, NULL) == f)
      return easel_format_number (g_ascii_strtod (buf, NULL));
  }
  return easel_format_number (f);
}

/* One tag as A1111 writes it: <lora:NAME:TE> when both strengths agree, else <lora:NAME:TE:UNET>. */
static char *
lora_tag (const char *name, double te, double unet)
{
  g_autofree char *t = strength_text (te);
  if ((float) te == (float) unet)
    return g_strdup_printf ("<lora:%s:%s>", name, t);
  g_autofree char *u = strength_text (unet);
  return g_strdup_printf ("<lora:%s:%s:%s>", name, t, u);
}

static gboolean
prepare_loras (EaselJobNetworks *n, const EaselJobParams *job, const char *backend_name, GError **error)
{
  g_autoptr(GArray) refs = g_array_new (FALSE, TRUE, sizeof (EaselLoraRef));
  g_array_set_clear_func (refs, easel_lora_ref_clear);
  g_autoptr(GArray) uses = g_array_new (FALSE, TRUE, sizeof (EaselLoraUse));
  g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GString) suffix = g_string_new (NULL);

  if ((n->prompt = easel_lora_extract_from_prompt (job->prompt ? job->prompt : "", refs, error)) == NULL
      || !lora_dirs (n->model, job, dirs, error))
    return FALSE;
  guint n_tags = refs->len;
  if (job->n_loras < 0 || (job->n_loras > 0 && job->loras == NULL)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "job: %d LoRAs given without a list", job->n_loras);
    return FALSE;
  }
  for (int i = 0; i < job->n_loras; i++) {
    const EaselJobLora *l = &job->loras[i];
    if (l->path == NULL || l->path[0] == '\0') {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "job: LoRA %d has no file", i + 1);
      return FALSE;
    }
    if (!check_strength (l->unet_strength, l->path, error) || !check_strength (l->te_strength, l->path, error))
      return FALSE;
    EaselLoraRef r = { g_strdup (l->path), (float) l->te_strength, (float) l->unet_strength };
    g_array_append_val (refs, r);
  }
  if (refs->len == 0 && easel_model_peek_lora_stack (n->model) == NULL)
    return TRUE;   /* nothing merged before, nothing now: load nothing */
  if (refs->len > 0 && n->text_model != n->model) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED,
                 "LoRAs need the model's own text encoders (this job encodes its prompt with %s)",
                 easel_model_path (n->text_model));
    return FALSE;
  }

  for (guint i = 0; i < refs->len; i++) {
    const EaselLoraRef *r = &g_array_index (refs, EaselLoraRef, i);
    gboolean tag = i < n_tags;
    g_autofree char *path = find_lora (r->name, dirs, tag ? "in the prompt" : "--lora", error);
    if (path == NULL)
      return FALSE;
    EaselLora *lora = easel_model_lora (n->model, path, error);
    if (lora == NULL)
      return FALSE;
    g_ptr_array_add (n->loras, easel_lora_ref (lora));
    g_ptr_array_add (n->aliases, tag ? g_strdup (r->name) : stem_of (path));
    EaselLoraUse u = { lora, r->unet_strength, r->te_strength };
    g_array_append_val (uses, u);
    if (!tag) {
      const EaselJobLora *l = &job->loras[i - n_tags];
      g_autofree char *t = lora_tag (n->aliases->pdata[i], l->te_strength, l->unet_strength);
      g_string_append_printf (suffix, " %s", t);
    }
  }
  n->suffix = g_string_free (g_steal_pointer (&suffix), FALSE);

  EaselLoraStack *stack = easel_model_lora_stack (n->model, error);
  if (stack)
    easel_lora_stack_set_mode (stack, easel_lora_mode_default (backend_name));
  g_autoptr(GPtrArray) unmatched = NULL;
  if (stack == NULL || !easel_lora_stack_apply (stack, (const EaselLoraUse *) uses->data, uses->len, &unmatched, error))
    return FALSE;
  if (unmatched && unmatched->len > 0)
    g_ptr_array_add (n->messages, g_strdup_printf ("LoRA: %u module(s) match no weight of the model and were left "
                                                   "out (first: %s)", unmatched->len,
                                                   (const char *) unmatched->pdata[0]));
  return TRUE;
}

/* --- embeddings -------------------------------------------------------------------------------- */

static gboolean
is_embedding_file (const char *name)
{
  return g_str_has_suffix (name, ".safetensors") || g_str_has_suffix (name, ".pt") || g_str_has_suffix (name, ".bin");
}

static gint
by_name (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

/* Files of dir (and its subfolders, to depth MAX_SCAN_DEPTH) into files (char* paths), sorted by
 * name within each folder so that the first of two equal names is always the same one. */
static void
scan_dir (const char *dir, int depth, GPtrArray *files)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  if (d == NULL)
    return;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL && files->len + names->len < MAX_SCAN_FILES)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, by_name);
  for (guint i = 0; i < names->len; i++) {
    g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
    if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
      if (depth < MAX_SCAN_DEPTH)
        scan_dir (path, depth + 1, files);
    } else if (is_embedding_file (names->pdata[i])) {
      g_ptr_array_add (files, g_steal_pointer (&path));
    }
  }
}

static gint
longer_name_first (gconstpointer a, gconstpointer b)
{
  const Candidate *x = *(Candidate **) a, *y = *(Candidate **) b;
  return (gint) y->name_ids->len - (gint) x->name_ids->len;
}

static gboolean
prepare_embeddings (EaselJobNetworks *n, const EaselJobParams *job, GError **error)
{
  g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  if (!add_dirs (dirs, "embeddings", job->embedding_dirs, "EASEL_EMBEDDINGS_DIR", error))
    return FALSE;
  for (guint i = 0; i < dirs->len; i++)
    scan_dir (dirs->pdata[i], 0, files);
  if (files->len == 0)
    return TRUE;

  EaselTokenizer *tok = easel_model_tokenizer (n->text_model, error);
  if (tok == NULL)
    return FALSE;
  for (guint i = 0; i < 2; i++) {
    g_autoptr(GError) local = NULL;
    n->clips[i] = easel_model_clip (n->text_model, i, &local);
    if (n->clips[i] == NULL && !g_error_matches (local, EASEL_ERROR, EASEL_ERROR_NOT_FOUND)) {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
    if (n->clips[i]) {
      gint64 v = easel_clip_config (n->clips[i])->vocab;
      if (n->vocab && v != n->vocab) {
        g_ptr_array_add (n->messages, g_strdup ("embeddings: the two text encoders have vocabularies of different "
                                                "sizes; embeddings are left out"));
        return TRUE;
      }
      n->vocab = v;
      n->rows[i] = g_array_new (FALSE, FALSE, sizeof (float));
    }
  }
  for (guint i = 0; i < files->len; i++) {
    char *stem = stem_of (files->pdata[i]);
    if (!g_hash_table_add (seen, stem))
      continue;   /* an earlier file of that name wins */
    Candidate *c = g_new0 (Candidate, 1);
    c->name = g_strdup (stem);
    c->path = g_strdup (files->pdata[i]);
    c->first_id = -1;
    c->name_ids = g_array_new (FALSE, FALSE, sizeof (gint32));
    if (!easel_tokenizer_encode (tok, c->name, -1, c->name_ids, NULL) || c->name_ids->len == 0) {
      candidate_free (c);
      continue;
    }
    g_ptr_array_add (n->candidates, c);
  }
  g_ptr_array_sort (n->candidates, longer_name_first);
  return TRUE;
}

/* Reads c on its first match and checks its vectors against the encoders: encoder i takes the
 * vectors for EaselEmbeddingEncoder i (SD 1.x/2.x: clip_l's slot; SDXL: both; the refiner: clip_g). */
static gboolean
usable (EaselJobNetworks *n, Candidate *c)
{
  if (c->tried)
    return c->usable;
  c->tried = TRUE;
  g_autoptr(GError) error = NULL;
  if ((c->emb = easel_embedding_load (c->path, &error)) == NULL) {
    g_ptr_array_add (n->messages, g_strdup_printf ("embedding '%s' left as text: %s", c->name, error->message));
    return FALSE;
  }
  for (int i = 0; i < 2; i++) {
    if (n->clips[i] == NULL)
      continue;
    gint64 want = easel_clip_config (n->clips[i])->width;
    if (c->emb->width[i] != want) {
      g_ptr_array_add (n->messages,
                       g_strdup_printf ("embedding '%s' left as text: %s holds %s vectors %" G_GINT64_FORMAT
                                        " wide, the model's text encoder %d takes %" G_GINT64_FORMAT
                                        " (an embedding for another model family)",
                                        c->name, c->path, i == 0 ? "clip_l" : "clip_g", c->emb->width[i], i + 1,
                                        want));
      return FALSE;
    }
  }
  if (c->emb->n_vectors > EASEL_CLIP_CHUNK || n->n_rows + c->emb->n_vectors > (1 << 20)) {
    g_ptr_array_add (n->messages, g_strdup_printf ("embedding '%s' left as text: %" G_GINT64_FORMAT
                                                   " vectors, more than a chunk's %d tokens", c->name,
                                                   c->emb->n_vectors, EASEL_CLIP_CHUNK));
    return FALSE;
  }
  return c->usable = TRUE;
}

/* The chunker's hook (prompt.h): the longest usable name at tokens[pos]. */
static guint
lookup (gpointer user_data, const gint32 *tokens, guint len, guint pos, gint32 *first_id, guint *n_vectors)
{
  EaselJobNetworks *n = user_data;
  for (guint k = 0; k < n->candidates->len; k++) {
    Candidate *c = n->candidates->pdata[k];
    guint m = c->name_ids->len;
    if (m > len - pos || memcmp (tokens + pos, c->name_ids->data, m * sizeof (gint32)) != 0 || !usable (n, c))
      continue;
    if (c->first_id < 0) {
      c->first_id = (gint32) (n->vocab + n->n_rows);
      for (int i = 0; i < 2; i++)
        if (n->rows[i])
          g_array_append_vals (n->rows[i], c->emb->vectors[i], c->emb->n_vectors * c->emb->width[i]);
      n->n_rows += c->emb->n_vectors;
      g_ptr_array_add (n->used, c);
    }
    *first_id = c->first_id;
    *n_vectors = (guint) c->emb->n_vectors;
    return m;
  }
  return 0;
}

GArray *
easel_job_networks_chunks (EaselJobNetworks *n, EaselTokenizer *tok, const char *text, GError **error)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *plain = easel_embedding_comfy_names (text ? text : "", names);
  for (guint i = 0; i < names->len; i++) {
    gboolean known = FALSE;
    for (guint k = 0; k < n->candidates->len && !known; k++)
      known = strcmp (((Candidate *) n->candidates->pdata[k])->name, names->pdata[i]) == 0;
    if (!known)
      g_ptr_array_add (n->messages, g_strdup_printf ("embedding:%s: no such embedding in the embedding folders; "
                                                     "left as text", (const char *) names->pdata[i]));
  }
  g_autoptr(GArray) segs = easel_prompt_parse_a1111 (plain, -1, error);
  if (segs == NULL)
    return NULL;
  g_autoptr(GArray) chunks = easel_prompt_chunks_a1111_full (tok, segs, 20, n->candidates->len ? lookup : NULL, n,
                                                             error);
  if (chunks == NULL)
    return NULL;
  for (int i = 0; i < 2 && n->n_rows > 0; i++)
    if (n->clips[i] && !easel_clip_set_extra_tokens (n->clips[i], (const float *) n->rows[i]->data, n->n_rows, error))
      return NULL;
  n->rows_given |= n->n_rows > 0;
  return g_steal_pointer (&chunks);
}

/* --- the job ------------------------------------------------------------------------------------ */

EaselJobNetworks *
easel_job_networks_prepare (EaselModel *model, EaselModel *text_model, const EaselJobParams *job,
                            const char *backend_name, GError **error)
{
  g_return_val_if_fail (model && job, NULL);
  g_autoptr(EaselJobNetworks) n = g_new0 (EaselJobNetworks, 1);
  n->model = model;
  n->text_model = text_model ? text_model : model;
  n->messages = g_ptr_array_new_with_free_func (g_free);
  n->loras = g_ptr_array_new_with_free_func ((GDestroyNotify) easel_lora_unref);
  n->aliases = g_ptr_array_new_with_free_func (g_free);
  n->candidates = g_ptr_array_new_with_free_func (candidate_free);
  n->used = g_ptr_array_new ();
  if (!prepare_loras (n, job, backend_name, error) || !prepare_embeddings (n, job, error))
    return NULL;
  return g_steal_pointer (&n);
}

static const char *
file_sha256 (Candidate *c)
{
  if (c->hash == NULL) {
    g_autoptr(GMappedFile) mf = g_mapped_file_new (c->path, FALSE, NULL);
    if (mf)
      c->hash = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (const guchar *) g_mapped_file_get_contents (mf),
                                             g_mapped_file_get_length (mf));
  }
  return c->hash;
}

void
easel_job_networks_parameters (EaselJobNetworks *n, EaselParameters *p)
{
  if (n->suffix && n->suffix[0]) {
    g_autofree char *prompt = p->prompt[0] ? g_strconcat (p->prompt, n->suffix, NULL) : g_strdup (n->suffix + 1);
    easel_parameters_set_string (&p->prompt, prompt);
  }
  if (n->loras->len > 0) {
    g_autofree char *h = easel_lora_hashes_text_named ((EaselLora *const *) n->loras->pdata,
                                                       (const char *const *) n->aliases->pdata, n->loras->len);
    if (h[0])
      easel_parameters_set_extra (p, "Lora hashes", h);
  }
  g_autoptr(GString) ti = g_string_new (NULL);
  for (guint i = 0; i < n->used->len; i++) {
    Candidate *c = n->used->pdata[i];
    const char *h = file_sha256 (c);
    g_autofree char *name = easel_lora_clean_alias (c->name);
    if (h)
      g_string_append_printf (ti, "%s%s: %.12s", ti->len ? ", " : "", name, h);
  }
  if (ti->len)
    easel_parameters_set_extra (p, "TI hashes", ti->str);
}
