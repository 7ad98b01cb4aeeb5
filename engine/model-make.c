/* engine/model-make.c: random-weight checkpoints and the demo vocabulary (see model-make.h).
 *
 * Layout: the counter-based generator, filling one tensor (threads split it by element ranges,
 * which the counter makes exact), writing a checkpoint through the safetensors writer's fill
 * entries, then the demo vocabulary (a small BPE trainer over a built-in word list), then the demo
 * model made of both. */
#include "model-make.h"
#include "tokenizer.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "error.h"
#include "json.h"

/* ---------------------------------------------------------------------------------------------
 * Values */

#define GOLDEN_GAMMA G_GUINT64_CONSTANT (0x9E3779B97F4A7C15)
#define CHUNK 4096              /* floats made at a time before conversion */
#define THREAD_MIN (1u << 20)   /* smaller tensors are made on one thread */

static inline guint64
splitmix64_mix (guint64 z)
{
  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static guint64
fnv1a64 (const char *s)
{
  guint64 h = G_GUINT64_CONSTANT (0xcbf29ce484222325);
  for (const unsigned char *p = (const unsigned char *) s; *p; p++)
    h = (h ^ *p) * G_GUINT64_CONSTANT (0x100000001b3);
  return h;
}

/* Approximately N(0, 1): Irwin-Hall sum of the four 16-bit fields of the counter's output. */
static inline float
normal_at (guint64 key, guint64 i)
{
  guint64 r = splitmix64_mix (key + (i + 1) * GOLDEN_GAMMA);
  guint32 s = (guint32) (r & 0xffff) + (guint32) ((r >> 16) & 0xffff) + (guint32) ((r >> 32) & 0xffff)
              + (guint32) (r >> 48);
  /* each field (f + 0.5) / 65536 is uniform on (0, 1); the sum has mean 2, variance 1/3 */
  return (float) (((double) s + 2.0) / 65536.0 - 2.0) * 1.7320508f;
}

typedef struct {
  const EaselSpecTensor *t;
  guint64 key;
  guint8 *dest;
  guint64 begin, end;       /* element range */
} FillJob;

static void
make_floats (const EaselSpecTensor *t, guint64 key, guint64 begin, gsize n, float *out)
{
  float scale = 0.0f, offset = 0.0f;

  switch (t->init) {
  case EASEL_INIT_WEIGHT: scale = 1.0f / sqrtf ((float) MAX (1, t->fan_in)); break;
  case EASEL_INIT_BIAS: scale = 0.01f; break;
  case EASEL_INIT_ONES: offset = 1.0f; break;
  case EASEL_INIT_ZEROS: break;
  case EASEL_INIT_EMBEDDING: scale = 0.02f; break;
  case EASEL_INIT_POSITION: scale = 0.01f; break;
  case EASEL_INIT_LOGIT_SCALE: offset = logf (1.0f / 0.07f); break;
  case EASEL_INIT_ARANGE:
    for (gsize j = 0; j < n; j++)
      out[j] = (float) (begin + j);
    return;
  }
  if (scale == 0.0f) {
    for (gsize j = 0; j < n; j++)
      out[j] = offset;
    return;
  }
  for (gsize j = 0; j < n; j++)
    out[j] = offset + scale * normal_at (key, begin + j);
}

static void
fill_range (FillJob *job)
{
  const EaselSpecTensor *t = job->t;
  const gsize es = easel_dtype_size (t->dtype);
  float buf[CHUNK];

  for (guint64 i = job->begin; i < job->end; i += CHUNK) {
    gsize n = (gsize) MIN ((guint64) CHUNK, job->end - i);
    guint8 *d = job->dest + i * es;
    make_floats (t, job->key, i, n, buf);
    switch (t->dtype) {
    case EASEL_DTYPE_F32:
      for (gsize j = 0; j < n; j++) {
        guint32 u;
        memcpy (&u, &buf[j], 4);
        u = GUINT32_TO_LE (u);
        memcpy (d + 4 * j, &u, 4);
      }
      break;
    case EASEL_DTYPE_F16:
    case EASEL_DTYPE_BF16:
      for (gsize j = 0; j < n; j++) {
        guint16 h = GUINT16_TO_LE (t->dtype == EASEL_DTYPE_F16 ? easel_f32_to_f16 (buf[j]) : easel_f32_to_bf16 (buf[j]));
        memcpy (d + 2 * j, &h, 2);
      }
      break;
    case EASEL_DTYPE_I64:
      for (gsize j = 0; j < n; j++) {
        guint64 v = GUINT64_TO_LE ((guint64) (gint64) buf[j]);
        memcpy (d + 8 * j, &v, 8);
      }
      break;
    default:
      g_assert_not_reached ();
    }
  }
}

static gpointer
fill_thread (gpointer data)
{
  fill_range (data);
  return NULL;
}

gboolean
easel_model_make_fill (const EaselSpecTensor *t, guint64 seed, guint n_threads, void *dest, gsize nbytes,
                       GError **error)
{
  const guint64 n = t->n_elements;
  guint64 key = splitmix64_mix (seed ^ fnv1a64 (t->name));
  FillJob jobs[64];
  GThread *threads[64] = { NULL };
  guint nt;

  if (t->dtype != EASEL_DTYPE_F32 && t->dtype != EASEL_DTYPE_F16 && t->dtype != EASEL_DTYPE_BF16
      && t->dtype != EASEL_DTYPE_I64) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "tensor '%s': cannot make %s values", t->name,
                 easel_dtype_name (t->dtype));
    return FALSE;
  }
  if ((guint64) nbytes != n * easel_dtype_size (t->dtype)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "tensor '%s': %" G_GSIZE_FORMAT " bytes given for %"
                 G_GUINT64_FORMAT " elements of %s", t->name, nbytes, n, easel_dtype_name (t->dtype));
    return FALSE;
  }
  nt = n_threads ? n_threads : g_get_num_processors ();
  nt = (guint) MIN ((guint64) MIN (nt, G_N_ELEMENTS (jobs)), MAX ((guint64) 1, n / THREAD_MIN));
  for (guint k = 0; k < nt; k++) {
    jobs[k] = (FillJob) { t, key, dest, n * k / nt, n * (k + 1) / nt };
    if (k > 0)
      threads[k] = g_thread_try_new ("easel-make", fill_thread, &jobs[k], NULL);
    if (k > 0 && threads[k] == NULL)
      fill_range (&jobs[k]);   /* no thread: same values, made here */
  }
  fill_range (&jobs[0]);
  for (guint k = 1; k < nt; k++)
    if (threads[k])
      g_thread_join (threads[k]);
  return TRUE;
}

/* ---------------------------------------------------------------------------------------------
 * Checkpoints */

typedef struct {
  const EaselSpecTensorList *list;
  GHashTable *by_name;      /* name -> EaselSpecTensor* */
  const EaselMakeOptions *opt;
} MakeCtx;

static gboolean
make_fill (gpointer user_data, const char *name, void *dest, gsize nbytes, GError **error)
{
  MakeCtx *ctx = user_data;
  const EaselSpecTensor *t = g_hash_table_lookup (ctx->by_name, name);
  g_assert (t != NULL);
  return easel_model_make_fill (t, ctx->opt->seed, ctx->opt->n_threads, dest, nbytes, error);
}

static const char *
architecture (const EaselModelSpec *spec)
{
  switch (spec->family) {
  case EASEL_FAMILY_SD1: return "stable-diffusion-v1";
  case EASEL_FAMILY_SD1_INPAINT: return "stable-diffusion-v1/inpainting";
  case EASEL_FAMILY_SD2: return spec->prediction == EASEL_PREDICTION_V ? "stable-diffusion-v2-768-v" : "stable-diffusion-v2-512";
  case EASEL_FAMILY_SDXL: return "stable-diffusion-xl-v1-base";
  case EASEL_FAMILY_SDXL_REFINER: return "stable-diffusion-xl-v1-refiner";
  default: return "unknown";
  }
}

gboolean
easel_model_make (const EaselModelSpec *spec, const EaselMakeOptions *opt, const char *path, GError **error)
{
  static const char *const parts[] = { "unet", "vae", "text_encoder", "text_encoder_2" };
  g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
  g_autoptr(EaselSpecTensorList) list = NULL;
  g_autoptr(GHashTable) by_name = g_hash_table_new (g_str_hash, g_str_equal);
  MakeCtx ctx;
  char seed_str[32];

  if (opt->dtype != EASEL_DTYPE_F16 && opt->dtype != EASEL_DTYPE_BF16 && opt->dtype != EASEL_DTYPE_F32) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s: weights can be F16, BF16 or F32, not %s", path,
                 easel_dtype_name (opt->dtype));
    return FALSE;
  }
  list = easel_model_spec_tensors (spec, opt->dtype);
  ctx = (MakeCtx) { list, by_name, opt };

  g_snprintf (seed_str, sizeof seed_str, "%" G_GUINT64_FORMAT, opt->seed);
  g_autofree char *title = g_strdup_printf ("Easel random weights: %s%s, seed %s", spec->name,
                                            spec->tiny ? " (tiny)" : "", seed_str);
  easel_safetensors_writer_set_metadata (w, "format", "pt");
  easel_safetensors_writer_set_metadata (w, "modelspec.sai_model_spec", "1.0.0");
  easel_safetensors_writer_set_metadata (w, "modelspec.architecture", architecture (spec));
  easel_safetensors_writer_set_metadata (w, "modelspec.implementation", "sgm");
  easel_safetensors_writer_set_metadata (w, "modelspec.title", title);
  easel_safetensors_writer_set_metadata (w, "modelspec.prediction_type",
                                         spec->prediction == EASEL_PREDICTION_V ? "v" : "epsilon");
  easel_safetensors_writer_set_metadata (w, "easel.generator", "easel-cli make-model");
  easel_safetensors_writer_set_metadata (w, "easel.seed", seed_str);
  for (guint i = 0; i < G_N_ELEMENTS (parts); i++) {
    g_autofree char *json = easel_model_spec_config_json (spec, parts[i]);
    g_autofree char *key = g_strconcat (EASEL_MAKE_CONFIG_KEY_PREFIX, parts[i], NULL);
    if (json)
      easel_safetensors_writer_set_metadata (w, key, json);
  }

  for (gsize i = 0; i < list->n_tensors; i++) {
    const EaselSpecTensor *t = &list->tensors[i];
    g_hash_table_insert (by_name, (gpointer) t->name, (gpointer) t);
    if (!easel_safetensors_writer_add_fill (w, t->name, t->dtype, t->n_dims, t->shape, make_fill, &ctx, error))
      return FALSE;
  }
  return easel_safetensors_writer_save (w, path, error);
}

/* ---------------------------------------------------------------------------------------------
 * Demo vocabulary */

#define DEMO_MAX_MERGES 2000

/* Common English words and image-prompt words; merges are learned from them, each counted once. */
static const char demo_words[] =
  "a an the of and or with in on at to from by for is are was be as it its this that these those "
  "photo photograph picture image painting drawing illustration render sketch portrait landscape "
  "cat cats dog dogs bird birds horse fish animal animals person people man woman child girl boy "
  "face eyes hair hand hands smile red green blue yellow orange purple pink black white gray brown "
  "gold silver color colors colorful light dark bright shadow shadows sun sunset sunrise moon star "
  "stars sky cloud clouds rain snow fog mist storm sea ocean lake river water beach island wave "
  "mountain mountains hill forest tree trees flower flowers grass garden field desert city street "
  "road house building castle tower bridge room window door table chair car train boat ship plane "
  "night day morning evening winter summer spring autumn old young small big large tall little "
  "beautiful detailed highly high quality best masterpiece realistic photorealistic cinematic "
  "sharp focus soft lighting studio dramatic epic fantasy science fiction futuristic ancient "
  "style art artist digital oil watercolor pencil ink anime cartoon concept trending wallpaper "
  "close up view wide angle lens camera shot depth background foreground center standing sitting "
  "running walking flying looking wearing holding under over behind front near far inside outside "
  "happy sad calm quiet peaceful magic magical mysterious glowing shining golden crystal stone wood "
  "metal glass fire ice smoke steam dust sand rock rocks leaf leaves snowy rainy cloudy sunny misty "
  "one two three four five many some every each other new good great first last long short "
  "space planet galaxy robot dragon knight queen king princess wizard monster creature world";

typedef struct {
  GPtrArray *tokens;        /* vocabulary in id order (owned strings) */
  GPtrArray *merges;        /* "left right" lines (owned) */
} DemoVocab;

/* Learns merges over the word list: the most frequent adjacent pair first (ties: the smaller
 * "left right" string), until every word is one token (or DEMO_MAX_MERGES). Words are lowercase ASCII,
 * whose byte symbols are the letters themselves. */
static void
demo_vocab_build (DemoVocab *v)
{
  g_auto(GStrv) words = g_strsplit (demo_words, " ", -1);
  g_autoptr(GPtrArray) seqs = g_ptr_array_new_with_free_func ((GDestroyNotify) g_ptr_array_unref);
  g_autoptr(GHashTable) seen_words = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) in_vocab = g_hash_table_new (g_str_hash, g_str_equal);
  gunichar map[256];
  guint8 order[256];

  v->tokens = g_ptr_array_new_with_free_func (g_free);
  v->merges = g_ptr_array_new_with_free_func (g_free);
  easel_tokenizer_bytes_to_unicode (map, order);
  for (int pass = 0; pass < 2; pass++)
    for (guint i = 0; i < 256; i++) {
      char buf[8];
      int n = g_unichar_to_utf8 (map[order[i]], buf);
      g_ptr_array_add (v->tokens, g_strdup_printf ("%.*s%s", n, buf, pass ? "</w>" : ""));
    }
  for (guint i = 0; i < v->tokens->len; i++)
    g_hash_table_add (in_vocab, v->tokens->pdata[i]);

  for (guint i = 0; words[i]; i++) {
    gsize len = strlen (words[i]);
    if (len == 0 || !g_hash_table_add (seen_words, words[i]))
      continue;
    GPtrArray *s = g_ptr_array_new_with_free_func (g_free);
    for (gsize j = 0; j < len; j++)
      g_ptr_array_add (s, g_strdup_printf ("%c%s", words[i][j], j + 1 == len ? "</w>" : ""));
    g_ptr_array_add (seqs, s);
  }

  while (v->merges->len < DEMO_MAX_MERGES) {
    g_autoptr(GHashTable) counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
    const char *best = NULL;
    guint best_n = 0;
    GHashTableIter it;
    gpointer key, val;

    for (guint w = 0; w < seqs->len; w++) {
      GPtrArray *s = seqs->pdata[w];
      for (guint j = 0; j + 1 < s->len; j++) {
        char *pair = g_strconcat (s->pdata[j], " ", s->pdata[j + 1], NULL);
        guint n = GPOINTER_TO_UINT (g_hash_table_lookup (counts, pair));
        g_hash_table_replace (counts, pair, GUINT_TO_POINTER (n + 1));
      }
    }
    g_hash_table_iter_init (&it, counts);
    while (g_hash_table_iter_next (&it, &key, &val)) {
      guint n = GPOINTER_TO_UINT (val);
      if (n > best_n || (n == best_n && best != NULL && strcmp (key, best) < 0)) {
        best = key;
        best_n = n;
      }
    }
    if (best == NULL)
      break;
    g_autofree char *left = g_strndup (best, strchr (best, ' ') - best);
    const char *right = strchr (best, ' ') + 1;
    g_autofree char *joined = g_strconcat (left, right, NULL);
    g_ptr_array_add (v->merges, g_strdup (best));
    if (!g_hash_table_contains (in_vocab, joined)) {
      char *tok = g_strdup (joined);
      g_ptr_array_add (v->tokens, tok);
      g_hash_table_add (in_vocab, tok);
    }
    for (guint w = 0; w < seqs->len; w++) {
      GPtrArray *s = seqs->pdata[w];
      for (guint j = 0; j + 1 < s->len; j++)
        if (strcmp (s->pdata[j], left) == 0 && strcmp (s->pdata[j + 1], right) == 0) {
          g_free (s->pdata[j]);
          s->pdata[j] = g_strdup (joined);
          g_ptr_array_remove_index (s, j + 1);
        }
    }
  }
  g_ptr_array_add (v->tokens, g_strdup ("<|startoftext|>"));
  g_ptr_array_add (v->tokens, g_strdup ("<|endoftext|>"));
}

static void
demo_vocab_clear (DemoVocab *v)
{
  g_clear_pointer (&v->tokens, g_ptr_array_unref);
  g_clear_pointer (&v->merges, g_ptr_array_unref);
}

gsize
easel_demo_vocab_size (void)
{
  static gsize size = 0;
  if (g_once_init_enter (&size)) {
    DemoVocab v = { 0 };
    demo_vocab_build (&v);
    gsize n = v.tokens->len;
    demo_vocab_clear (&v);
    g_once_init_leave (&size, n);
  }
  return size;
}

/* Writes text to dir/name unless a file with other contents is there. */
static gboolean
write_unless_different (const char *dir, const char *name, const GString *text, GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *old = NULL;
  gsize old_len = 0;

  if (g_file_get_contents (path, &old, &old_len, NULL)) {
    if (old_len == text->len && memcmp (old, text->str, old_len) == 0)
      return TRUE;
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_IO, "%s: a different vocabulary is already there; not overwriting it",
                 path);
    return FALSE;
  }
  if (!g_file_set_contents (path, text->str, (gssize) text->len, error)) {
    g_prefix_error (error, "%s: ", path);
    return FALSE;
  }
  return TRUE;
}

gboolean
easel_demo_vocab_write (const char *dir, GError **error)
{
  DemoVocab v = { 0 };
  g_autoptr(GString) vocab = g_string_new ("{");
  g_autoptr(GString) merges = g_string_new ("#version: 0.2\n");
  gboolean ok;

  if (g_mkdir_with_parents (dir, 0755) != 0) {
    int e = errno;
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_IO, "%s: %s", dir, g_strerror (e));
    return FALSE;
  }
  demo_vocab_build (&v);
  for (guint i = 0; i < v.tokens->len; i++) {
    if (i)
      g_string_append_c (vocab, ',');
    easel_json_append_string (vocab, v.tokens->pdata[i]);
    g_string_append_printf (vocab, ":%u", i);
  }
  g_string_append (vocab, "}\n");
  for (guint i = 0; i < v.merges->len; i++)
    g_string_append_printf (merges, "%s\n", (const char *) v.merges->pdata[i]);
  demo_vocab_clear (&v);
  ok = write_unless_different (dir, "vocab.json", vocab, error)
       && write_unless_different (dir, "merges.txt", merges, error);
  return ok;
}

/* ---------------------------------------------------------------------------------------------
 * The demo model (moved here from easel-cli generate so that the app makes the same one) */

char *
easel_demo_model_dir (void)
{
  return g_build_filename (g_get_user_data_dir (), "easel", "demo", NULL);
}

gboolean
easel_demo_model_ensure (char **model_out, char **vocab_out, gboolean *written_out, GError **error)
{
  g_autofree char *dir = easel_demo_model_dir ();
  g_autofree char *path = g_build_filename (dir, "model.safetensors", NULL);
  g_autofree char *tok = g_build_filename (dir, "tokenizer", NULL);
  gboolean have = g_file_test (path, G_FILE_TEST_IS_REGULAR);

  if (!have) {
    EaselModelSpec spec;
    EaselMakeOptions opt = { .dtype = EASEL_DTYPE_F16, .seed = 0 };
    if (g_mkdir_with_parents (dir, 0755) != 0) {
      int e = errno;
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_IO, "%s: cannot create the demo folder: %s", dir, g_strerror (e));
      return FALSE;
    }
    if (!easel_model_spec_get ("sd15", TRUE, &spec, error))
      return FALSE;
    for (int i = 0; i < spec.n_text; i++)
      spec.text[i].vocab = (gint64) easel_demo_vocab_size ();
    if (!easel_demo_vocab_write (tok, error) || !easel_model_make (&spec, &opt, path, error))
      return FALSE;
  }
  if (written_out)
    *written_out = !have;
  *model_out = g_steal_pointer (&path);
  *vocab_out = g_steal_pointer (&tok);
  return TRUE;
}
