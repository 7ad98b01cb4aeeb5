/* engine/tokenizer.c: CLIP byte-level BPE (see tokenizer.h for the exact behaviour).
 *
 * Follows transformers.CLIPTokenizer 5.x = tokenizers' CLIP pipeline (AddedVocabulary for the two
 * specials, NFC + Replace(\s+, " ") + Lowercase normalizer, Split(CLIP pattern) pre-tokenizer,
 * BPE with end_of_word_suffix "</w>"), and OpenAI's SimpleTokenizer for building the vocabulary
 * out of the .gz merges. Every step is linear or n log n in the text length: a prompt of a
 * million characters tokenizes in a fraction of a second.
 *
 * Layout: vocabulary tables, the merge table, the two loaders, normalization + splitting, BPE. */
#include "tokenizer.h"

#include <string.h>
#include <zlib.h>

#include "error.h"
#include "json.h"

#define MAX_VOCAB        (1u << 22)      /* ids accepted from a vocab.json */
#define MAX_GZ_OUTPUT    (64u << 20)     /* merges text, decompressed or not */
#define OPENAI_N_MERGES  (49152 - 256 - 2)
#define CACHE_MAX_WORDS  65536           /* the word cache is cleared when it grows past this */
#define CACHE_MAX_BYTES  128             /* longer pieces are not cached */

static const char BOS_TEXT[] = "<|startoftext|>";
static const char EOS_TEXT[] = "<|endoftext|>";

typedef struct {
  guint64 key;      /* (left << 32) | right, 0 = empty slot (id 0 never merges with id 0 into key 0: see merge_key) */
  gint32 rank;
  gint32 new_id;
} MergeSlot;

typedef struct {
  gint32 n;
  gint32 ids[];
} CachedWord;

struct _EaselTokenizer {
  char *source;
  GPtrArray *tokens;        /* id -> char* (NULL for holes) */
  GHashTable *ids;          /* char* (owned by tokens) -> GINT_TO_POINTER (id + 1) */
  MergeSlot *merges;        /* open addressing, power-of-two capacity */
  gsize merge_mask;
  gint32 byte_sym[256];     /* byte -> id of its symbol */
  gint32 byte_sym_w[256];   /* byte -> id of its symbol + "</w>" */
  gint32 bos, eos;
  gint32 bang;              /* "!": the pad token of SDXL's second tokenizer */
  GMutex cache_lock;
  GHashTable *cache;        /* piece -> CachedWord* */
};

/* ---------------------------------------------------------------------------------------------
 * Vocabulary */

static gboolean
fail (GError **error, int code, const char *source, const char *format, ...) G_GNUC_PRINTF (4, 5);

static gboolean
fail (GError **error, int code, const char *source, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, EASEL_ERROR, code, "%s: %s", source, msg);
  return FALSE;
}

static EaselTokenizer *
tokenizer_alloc (const char *source)
{
  EaselTokenizer *tok = g_new0 (EaselTokenizer, 1);
  tok->source = g_strdup (source);
  tok->tokens = g_ptr_array_new_with_free_func (g_free);
  tok->ids = g_hash_table_new (g_str_hash, g_str_equal);
  tok->cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_mutex_init (&tok->cache_lock);
  tok->bos = tok->eos = -1;
  return tok;
}

void
easel_tokenizer_free (EaselTokenizer *tok)
{
  if (tok == NULL)
    return;
  g_hash_table_unref (tok->ids);
  g_ptr_array_unref (tok->tokens);
  g_hash_table_unref (tok->cache);
  g_mutex_clear (&tok->cache_lock);
  g_free (tok->merges);
  g_free (tok->source);
  g_free (tok);
}

/* Sets id -> text (takes text); a later entry with the same text wins, as a Python dict does. */
static void
vocab_set (EaselTokenizer *tok, gint32 id, char *text)
{
  char *old;
  if ((guint) id >= tok->tokens->len)
    g_ptr_array_set_size (tok->tokens, id + 1);
  old = tok->tokens->pdata[id];
  if (old != NULL && g_hash_table_lookup (tok->ids, old) == GINT_TO_POINTER (id + 1))
    g_hash_table_remove (tok->ids, old);
  g_free (old);
  tok->tokens->pdata[id] = text;
  g_hash_table_replace (tok->ids, text, GINT_TO_POINTER (id + 1));
}

gint32
easel_tokenizer_lookup (const EaselTokenizer *tok, const char *token)
{
  gpointer v = g_hash_table_lookup (tok->ids, token);
  return v ? GPOINTER_TO_INT (v) - 1 : -1;
}

const char *
easel_tokenizer_token (const EaselTokenizer *tok, gint32 id)
{
  if (id < 0 || (guint) id >= tok->tokens->len)
    return NULL;
  return tok->tokens->pdata[id];
}

const char *easel_tokenizer_source (const EaselTokenizer *tok) { return tok->source; }
gsize easel_tokenizer_vocab_size (const EaselTokenizer *tok) { return tok->tokens->len; }
gint32 easel_tokenizer_bos (const EaselTokenizer *tok) { return tok->bos; }
gint32 easel_tokenizer_eos (const EaselTokenizer *tok) { return tok->eos; }

void
easel_tokenizer_bytes_to_unicode (gunichar map[256], guint8 order[256])
{
  gboolean direct[256] = { FALSE };
  guint n = 0, extra = 0;

  for (guint b = 0; b < 256; b++)
    direct[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  for (guint b = 0; b < 256; b++)
    if (direct[b]) {
      map[b] = b;
      order[n++] = b;
    }
  for (guint b = 0; b < 256; b++)
    if (!direct[b]) {
      map[b] = 256 + extra++;
      order[n++] = b;
    }
}

static char *
unichar_str (gunichar c, const char *suffix)
{
  char buf[8];
  int n = g_unichar_to_utf8 (c, buf);
  return g_strdup_printf ("%.*s%s", n, buf, suffix);
}

/* ---------------------------------------------------------------------------------------------
 * Merge table: (left id, right id) -> (rank, merged id) */

static inline guint64
merge_key (gint32 a, gint32 b)
{
  /* +1 keeps key 0 free as the empty marker */
  return (((guint64) (guint32) a + 1) << 32) | (guint32) b;
}

static inline gsize
merge_hash (guint64 key)
{
  key ^= key >> 33;
  key *= G_GUINT64_CONSTANT (0xff51afd7ed558ccd);
  key ^= key >> 33;
  return (gsize) key;
}

static void
merges_alloc (EaselTokenizer *tok, gsize n)
{
  gsize cap = 1024;
  while (cap < 2 * n + 2)
    cap <<= 1;
  tok->merges = g_new0 (MergeSlot, cap);
  tok->merge_mask = cap - 1;
}

/* First definition of a pair wins (its rank is the lowest). */
static void
merges_add (EaselTokenizer *tok, gint32 a, gint32 b, gint32 rank, gint32 new_id)
{
  guint64 key = merge_key (a, b);
  gsize i = merge_hash (key) & tok->merge_mask;
  while (tok->merges[i].key != 0) {
    if (tok->merges[i].key == key)
      return;
    i = (i + 1) & tok->merge_mask;
  }
  tok->merges[i].key = key;
  tok->merges[i].rank = rank;
  tok->merges[i].new_id = new_id;
}

static inline const MergeSlot *
merges_find (const EaselTokenizer *tok, gint32 a, gint32 b)
{
  guint64 key = merge_key (a, b);
  gsize i = merge_hash (key) & tok->merge_mask;
  while (tok->merges[i].key != 0) {
    if (tok->merges[i].key == key)
      return &tok->merges[i];
    i = (i + 1) & tok->merge_mask;
  }
  return NULL;
}

/* Adds merge number rank, "left right" (both already in the vocabulary); new_id = -1 looks the
 * concatenation up (HF form), otherwise that id is the concatenation's (OpenAI form). */
static gboolean
add_merge_line (EaselTokenizer *tok, const char *line, gsize len, gint32 rank, gsize line_no,
                GError **error)
{
  const char *sp = memchr (line, ' ', len);
  g_autofree char *left = NULL, *right = NULL, *joined = NULL;
  gint32 a, b, c;

  if (sp == NULL || sp == line || sp + 1 == line + len || memchr (sp + 1, ' ', line + len - sp - 1))
    return fail (error, EASEL_ERROR_INVALID_FILE, tok->source,
                 "line %" G_GSIZE_FORMAT " is not a merge \"LEFT RIGHT\"", line_no);
  left = g_strndup (line, sp - line);
  right = g_strndup (sp + 1, line + len - sp - 1);
  a = easel_tokenizer_lookup (tok, left);
  b = easel_tokenizer_lookup (tok, right);
  if (a < 0 || b < 0)
    return fail (error, EASEL_ERROR_INVALID_FILE, tok->source,
                 "line %" G_GSIZE_FORMAT ": merge of '%s' and '%s', one of which is not in the vocabulary",
                 line_no, left, right);
  joined = g_strconcat (left, right, NULL);
  c = easel_tokenizer_lookup (tok, joined);
  if (c < 0)
    return fail (error, EASEL_ERROR_INVALID_FILE, tok->source,
                 "line %" G_GSIZE_FORMAT ": merged token '%s' is not in the vocabulary", line_no, joined);
  merges_add (tok, a, b, rank, c);
  return TRUE;
}

/* Byte symbols and specials, common to both forms. */
static gboolean
finish_vocab (EaselTokenizer *tok, GError **error)
{
  gunichar map[256];
  guint8 order[256];

  easel_tokenizer_bytes_to_unicode (map, order);
  for (guint b = 0; b < 256; b++) {
    g_autofree char *s = unichar_str (map[b], "");
    g_autofree char *sw = unichar_str (map[b], "</w>");
    tok->byte_sym[b] = easel_tokenizer_lookup (tok, s);
    tok->byte_sym_w[b] = easel_tokenizer_lookup (tok, sw);
    if (tok->byte_sym[b] < 0 || tok->byte_sym_w[b] < 0)
      return fail (error, EASEL_ERROR_INVALID_FILE, tok->source,
                   "the vocabulary lacks the byte symbol '%s' (byte 0x%02x) or '%s'; is it a CLIP vocabulary?",
                   s, b, sw);
  }
  tok->bos = easel_tokenizer_lookup (tok, BOS_TEXT);
  tok->eos = easel_tokenizer_lookup (tok, EOS_TEXT);
  tok->bang = tok->byte_sym['!'];
  if (tok->bos < 0 || tok->eos < 0)
    return fail (error, EASEL_ERROR_INVALID_FILE, tok->source,
                 "the vocabulary lacks %s or %s; is it a CLIP vocabulary?", BOS_TEXT, EOS_TEXT);
  return TRUE;
}

/* ---------------------------------------------------------------------------------------------
 * Loaders */

static guint8 *
gunzip (const guint8 *data, gsize len, const char *name, gsize *out_len, GError **error)
{
  z_stream zs = { 0 };
  gsize cap = 4u << 20, n = 0;
  guint8 *out;
  int rc;

  if (inflateInit2 (&zs, 16 + MAX_WBITS) != Z_OK) {
    fail (error, EASEL_ERROR_IO, name, "zlib failed to start");
    return NULL;
  }
  out = g_malloc (cap);
  zs.next_in = (Bytef *) data;
  zs.avail_in = 0;
  do {
    if (zs.avail_in == 0 && len > 0) {
      uInt take = len > G_MAXUINT32 ? G_MAXUINT32 : (uInt) len;
      zs.next_in = (Bytef *) data;
      zs.avail_in = take;
      data += take;
      len -= take;
    }
    if (n == cap) {
      if (cap >= MAX_GZ_OUTPUT) {
        inflateEnd (&zs);
        g_free (out);
        fail (error, EASEL_ERROR_INVALID_FILE, name, "decompresses to more than %u MiB; not a merges file",
              MAX_GZ_OUTPUT >> 20);
        return NULL;
      }
      cap *= 2;
      out = g_realloc (out, cap);
    }
    zs.next_out = out + n;
    zs.avail_out = (uInt) (cap - n);
    rc = inflate (&zs, Z_NO_FLUSH);
    n = cap - zs.avail_out;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && len == 0)
      break;
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      inflateEnd (&zs);
      g_free (out);
      fail (error, EASEL_ERROR_INVALID_FILE, name, "not a valid gzip file (%s)", zs.msg ? zs.msg : "zlib error");
      return NULL;
    }
  } while (rc != Z_STREAM_END);
  inflateEnd (&zs);
  if (rc != Z_STREAM_END) {
    g_free (out);
    fail (error, EASEL_ERROR_INVALID_FILE, name, "gzip data is truncated");
    return NULL;
  }
  *out_len = n;
  return out;
}

/* Calls fn on each line (without '\n' and a trailing '\r') of text; stops at max_lines. */
typedef gboolean (*LineFunc) (EaselTokenizer *tok, const char *line, gsize len, gsize line_no,
                              gpointer data, GError **error);

static gboolean
for_each_line (EaselTokenizer *tok, const char *text, gsize len, LineFunc fn, gpointer data,
               GError **error)
{
  gsize line_no = 0;
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *nl = memchr (p, '\n', end - p);
    const char *e = nl ? nl : end;
    gsize l = e - p;
    if (l > 0 && p[l - 1] == '\r')
      l--;
    if (!fn (tok, p, l, line_no++, data, error))
      return FALSE;
    p = nl ? nl + 1 : end;
  }
  return TRUE;
}

typedef struct {
  gint32 next_rank;
  gint32 next_id;     /* OpenAI form: the id the next merge gets; -1 in HF form */
  gsize limit;        /* OpenAI form: merges lines 1..limit */
} MergeState;

static gboolean
openai_line (EaselTokenizer *tok, const char *line, gsize len, gsize line_no, gpointer data,
             GError **error)
{
  MergeState *st = data;
  if (line_no == 0 || line_no > st->limit)
    return TRUE;
  /* SimpleTokenizer: vocab.append (''.join (merge)), the id being its position */
  const char *sp = memchr (line, ' ', len);
  if (sp == NULL)
    return fail (error, EASEL_ERROR_INVALID_FILE, tok->source,
                 "line %" G_GSIZE_FORMAT " is not a merge \"LEFT RIGHT\"", line_no + 1);
  g_autofree char *joined = g_strdup_printf ("%.*s%.*s", (int) (sp - line), line,
                                             (int) (line + len - sp - 1), sp + 1);
  vocab_set (tok, st->next_id++, g_steal_pointer (&joined));
  return add_merge_line (tok, line, len, st->next_rank++, line_no + 1, error);
}

EaselTokenizer *
easel_tokenizer_new_from_bpe_gz_data (const guint8 *data, gsize len, const char *name, GError **error)
{
  g_autoptr(EaselTokenizer) tok = tokenizer_alloc (name);
  g_autofree guint8 *text = NULL;
  gsize text_len = 0;
  gunichar map[256];
  guint8 order[256];
  MergeState st = { 0, 512, OPENAI_N_MERGES };

  text = gunzip (data, len, name, &text_len, error);
  if (text == NULL)
    return NULL;
  if (!g_utf8_validate_len ((const char *) text, text_len, NULL)) {
    fail (error, EASEL_ERROR_INVALID_FILE, name, "merges are not valid UTF-8 text");
    return NULL;
  }
  easel_tokenizer_bytes_to_unicode (map, order);
  for (guint i = 0; i < 256; i++) {
    vocab_set (tok, i, unichar_str (map[order[i]], ""));
    vocab_set (tok, 256 + i, unichar_str (map[order[i]], "</w>"));
  }
  merges_alloc (tok, OPENAI_N_MERGES);
  if (!for_each_line (tok, (const char *) text, text_len, openai_line, &st, error))
    return NULL;
  if (st.next_rank == 0) {
    fail (error, EASEL_ERROR_INVALID_FILE, name, "holds no merges");
    return NULL;
  }
  vocab_set (tok, st.next_id++, g_strdup (BOS_TEXT));
  vocab_set (tok, st.next_id++, g_strdup (EOS_TEXT));
  if (!finish_vocab (tok, error))
    return NULL;
  return g_steal_pointer (&tok);
}

EaselTokenizer *
easel_tokenizer_new_from_bpe_gz (const char *path, GError **error)
{
  g_autoptr(GMappedFile) f = g_mapped_file_new (path, FALSE, error);
  if (f == NULL)
    return NULL;
  return easel_tokenizer_new_from_bpe_gz_data ((const guint8 *) g_mapped_file_get_contents (f),
                                               g_mapped_file_get_length (f), path, error);
}

static gboolean
hf_merge_line (EaselTokenizer *tok, const char *line, gsize len, gsize line_no, gpointer data,
               GError **error)
{
  MergeState *st = data;
  if (len == 0 || (line_no == 0 && len >= 9 && memcmp (line, "#version:", 9) == 0))
    return TRUE;
  if (!g_utf8_validate_len (line, len, NULL))
    return fail (error, EASEL_ERROR_INVALID_FILE, tok->source, "line %" G_GSIZE_FORMAT " is not valid UTF-8",
                 line_no + 1);
  return add_merge_line (tok, line, len, st->next_rank++, line_no + 1, error);
}

EaselTokenizer *
easel_tokenizer_new_from_hf (const char *vocab_json, const char *merges_txt, GError **error)
{
  g_autoptr(EaselTokenizer) tok = tokenizer_alloc (vocab_json);
  g_autoptr(EaselJson) root = easel_json_parse_file (vocab_json, 64u << 20, error);
  const char *merges = NULL;
  gsize merges_len = 0, n;
  MergeState st = { 0, -1, 0 };

  if (root == NULL)
    return NULL;
  if (easel_json_type (root) != EASEL_JSON_OBJECT) {
    fail (error, EASEL_ERROR_INVALID_FILE, vocab_json, "is a JSON %s, not an object of token -> id",
          easel_json_type_name (easel_json_type (root)));
    return NULL;
  }
  n = easel_json_length (root);
  for (gsize i = 0; i < n; i++) {
    gint64 id;
    if (!easel_json_int64 (easel_json_at (root, i), &id) || id < 0 || id >= MAX_VOCAB) {
      fail (error, EASEL_ERROR_INVALID_FILE, vocab_json, "token '%s' has no id in [0, %u)",
            easel_json_key_at (root, i), MAX_VOCAB);
      return NULL;
    }
    vocab_set (tok, (gint32) id, g_strdup (easel_json_key_at (root, i)));
  }

  g_autoptr(GMappedFile) mf = g_mapped_file_new (merges_txt, FALSE, error);
  if (mf == NULL)
    return NULL;
  merges_len = g_mapped_file_get_length (mf);
  if (merges_len > MAX_GZ_OUTPUT) {
    fail (error, EASEL_ERROR_INVALID_FILE, merges_txt, "is larger than %u MiB; not a merges file", MAX_GZ_OUTPUT >> 20);
    return NULL;
  }
  merges = g_mapped_file_get_contents (mf);
  g_free (tok->source);
  tok->source = g_strdup (merges_txt);
  merges_alloc (tok, merges_len / 4 + 1);
  if (!for_each_line (tok, merges, merges_len, hf_merge_line, &st, error))
    return NULL;
  g_free (tok->source);
  tok->source = g_path_get_dirname (vocab_json);
  if (!finish_vocab (tok, error))
    return NULL;
  return g_steal_pointer (&tok);
}

EaselTokenizer *
easel_tokenizer_load (const char *path, GError **error)
{
  g_autofree char *dir = NULL;

  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    dir = g_strdup (path);
  } else if (g_file_test (path, G_FILE_TEST_IS_REGULAR)) {
    g_autofree char *base = g_path_get_basename (path);
    if (strcmp (base, "vocab.json") != 0 && strcmp (base, "merges.txt") != 0)
      return easel_tokenizer_new_from_bpe_gz (path, error);
    dir = g_path_get_dirname (path);
  } else {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: no such file or folder", path);
    return NULL;
  }

  g_autofree char *vocab = g_build_filename (dir, "vocab.json", NULL);
  g_autofree char *merges = g_build_filename (dir, "merges.txt", NULL);
  g_autofree char *gz = g_build_filename (dir, "bpe_simple_vocab_16e6.txt.gz", NULL);
  if (g_file_test (vocab, G_FILE_TEST_IS_REGULAR) && g_file_test (merges, G_FILE_TEST_IS_REGULAR))
    return easel_tokenizer_new_from_hf (vocab, merges, error);
  if (g_file_test (gz, G_FILE_TEST_IS_REGULAR))
    return easel_tokenizer_new_from_bpe_gz (gz, error);
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND,
               "%s: holds neither vocab.json + merges.txt nor bpe_simple_vocab_16e6.txt.gz", dir);
  return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * BPE of one piece (tokenizers' Word::merge_all: a heap of candidate pairs ordered by rank, then
 * position; stale entries are skipped when popped). n log n in the piece length. */

typedef struct {
  gint32 rank;
  gint32 pos;       /* index of the left symbol */
  gint32 new_id;
} Cand;

static inline gboolean
cand_less (const Cand *a, const Cand *b)
{
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void
heap_push (GArray *heap, Cand c)
{
  g_array_append_val (heap, c);
  Cand *h = (Cand *) heap->data;
  gsize i = heap->len - 1;
  while (i > 0) {
    gsize parent = (i - 1) / 2;
    if (!cand_less (&h[i], &h[parent]))
      break;
    Cand t = h[i];
    h[i] = h[parent];
    h[parent] = t;
    i = parent;
  }
}

static Cand
heap_pop (GArray *heap)
{
  Cand *h = (Cand *) heap->data;
  Cand top = h[0];
  gsize n = heap->len - 1, i = 0;
  h[0] = h[n];
  g_array_set_size (heap, n);
  for (;;) {
    gsize l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && cand_less (&h[l], &h[m]))
      m = l;
    if (r < n && cand_less (&h[r], &h[m]))
      m = r;
    if (m == i)
      break;
    Cand t = h[i];
    h[i] = h[m];
    h[m] = t;
    i = m;
  }
  return top;
}

static void
push_pair (const EaselTokenizer *tok, GArray *heap, const gint32 *sym, gint32 left, gint32 right)
{
  const MergeSlot *m = merges_find (tok, sym[left], sym[right]);
  if (m)
    heap_push (heap, (Cand) { m->rank, left, m->new_id });
}

/* piece: n bytes -> ids appended to out. */
static void
bpe (const EaselTokenizer *tok, const guint8 *piece, gsize n, GArray *out)
{
  g_autofree gint32 *sym = g_new (gint32, n);
  g_autofree gint32 *prev = g_new (gint32, n);
  g_autofree gint32 *next = g_new (gint32, n);
  g_autofree gboolean *dead = g_new0 (gboolean, n);
  g_autoptr(GArray) heap = g_array_sized_new (FALSE, FALSE, sizeof (Cand), n);

  for (gsize i = 0; i < n; i++) {
    sym[i] = i + 1 == n ? tok->byte_sym_w[piece[i]] : tok->byte_sym[piece[i]];
    prev[i] = (gint32) i - 1;
    next[i] = i + 1 == n ? -1 : (gint32) i + 1;
  }
  for (gsize i = 0; i + 1 < n; i++)
    push_pair (tok, heap, sym, i, i + 1);

  while (heap->len > 0) {
    Cand c = heap_pop (heap);
    gint32 r = next[c.pos];
    const MergeSlot *m;
    if (dead[c.pos] || r < 0)
      continue;
    m = merges_find (tok, sym[c.pos], sym[r]);
    if (m == NULL || m->new_id != c.new_id)
      continue;   /* stale: one side changed since it was queued */
    sym[c.pos] = c.new_id;
    dead[r] = TRUE;
    next[c.pos] = next[r];
    if (next[r] >= 0)
      prev[next[r]] = c.pos;
    if (prev[c.pos] >= 0)
      push_pair (tok, heap, sym, prev[c.pos], c.pos);
    if (next[c.pos] >= 0)
      push_pair (tok, heap, sym, c.pos, next[c.pos]);
  }
  for (gint32 i = n ? 0 : -1; i >= 0; i = next[i])
    g_array_append_val (out, sym[i]);
}

static void
encode_piece (EaselTokenizer *tok, const char *piece, gsize n, GString *scratch, GArray *out)
{
  CachedWord *w;
  guint start;

  if (n > CACHE_MAX_BYTES) {
    bpe (tok, (const guint8 *) piece, n, out);
    return;
  }
  g_string_truncate (scratch, 0);
  g_string_append_len (scratch, piece, n);
  g_mutex_lock (&tok->cache_lock);
  w = g_hash_table_lookup (tok->cache, scratch->str);
  if (w)
    g_array_append_vals (out, w->ids, w->n);
  g_mutex_unlock (&tok->cache_lock);
  if (w)
    return;

  start = out->len;
  bpe (tok, (const guint8 *) piece, n, out);
  w = g_malloc (sizeof (CachedWord) + (out->len - start) * sizeof (gint32));
  w->n = out->len - start;
  memcpy (w->ids, &g_array_index (out, gint32, start), w->n * sizeof (gint32));
  g_mutex_lock (&tok->cache_lock);
  if (g_hash_table_size (tok->cache) >= CACHE_MAX_WORDS)
    g_hash_table_remove_all (tok->cache);
  g_hash_table_replace (tok->cache, g_strndup (piece, n), w);
  g_mutex_unlock (&tok->cache_lock);
}

/* ---------------------------------------------------------------------------------------------
 * Normalization and the CLIP split */

/* Unicode White_Space (what \s means to the Rust regex crate). */
static gboolean
is_white_space (gunichar c)
{
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

static gboolean
is_letter (gunichar c)
{
  switch (g_unichar_type (c)) {
  case G_UNICODE_LOWERCASE_LETTER:
  case G_UNICODE_UPPERCASE_LETTER:
  case G_UNICODE_TITLECASE_LETTER:
  case G_UNICODE_MODIFIER_LETTER:
  case G_UNICODE_OTHER_LETTER:
    return TRUE;
  default:
    return FALSE;
  }
}

static gboolean
is_number (gunichar c)
{
  GUnicodeType t = g_unichar_type (c);
  return t == G_UNICODE_DECIMAL_NUMBER || t == G_UNICODE_LETTER_NUMBER || t == G_UNICODE_OTHER_NUMBER;
}

/* Rust's char::to_lowercase: the simple mapping, except U+0130 whose unconditional full mapping
 * is "i" + U+0307. Context rules (final sigma, Turkish) do not apply. GLib maps letters only, so
 * the two ranges of non-letters that have a lowercase (Roman numerals, Nl; circled letters, So)
 * are added here. */
static void
append_lower (GString *out, gunichar c)
{
  if (c < 0x80) {
    g_string_append_c (out, (char) g_ascii_tolower ((char) c));
  } else if (c == 0x130) {
    g_string_append (out, "i\xcc\x87");
  } else if (c >= 0x2160 && c <= 0x216F) {
    g_string_append_unichar (out, c + 0x10);
  } else if (c >= 0x24B6 && c <= 0x24CF) {
    g_string_append_unichar (out, c + 26);
  } else {
    g_string_append_unichar (out, g_unichar_tolower (c));
  }
}

typedef enum { CLS_SPACE, CLS_LETTER, CLS_NUMBER, CLS_OTHER } CharClass;

static CharClass
classify (gunichar c)
{
  if (c < 0x80) {
    if (g_ascii_isalpha (c))
      return CLS_LETTER;
    if (g_ascii_isdigit (c))
      return CLS_NUMBER;
    return is_white_space (c) ? CLS_SPACE : CLS_OTHER;
  }
  if (is_white_space (c))
    return CLS_SPACE;
  if (is_letter (c))
    return CLS_LETTER;
  return is_number (c) ? CLS_NUMBER : CLS_OTHER;
}

/* Length of a contraction ('s 't 're 've 'm 'll 'd) at p, else 0. */
static gsize
contraction (const char *p, const char *end)
{
  if (end - p < 2 || p[0] != '\'')
    return 0;
  if (p[1] == 's' || p[1] == 't' || p[1] == 'm' || p[1] == 'd')
    return 2;
  if (end - p >= 3 && ((p[1] == 'r' && p[2] == 'e') || (p[1] == 'v' && p[2] == 'e') ||
                       (p[1] == 'l' && p[2] == 'l')))
    return 3;
  return 0;
}

/* One stretch of raw text without specials: normalize, split, BPE. */
static void
encode_stretch (EaselTokenizer *tok, const char *text, gsize len, GString *lower, GString *scratch,
                GArray *out)
{
  g_autofree char *nfc = NULL;
  const char *p, *end;

  if (len == 0)
    return;
  nfc = g_utf8_normalize (text, len, G_NORMALIZE_NFC);
  if (nfc == NULL)
    return;   /* cannot happen: the text was validated */
  g_string_truncate (lower, 0);
  for (const char *q = nfc; *q; q = g_utf8_next_char (q))
    append_lower (lower, g_utf8_get_char (q));

  p = lower->str;
  end = lower->str + lower->len;
  while (p < end) {
    gunichar c = g_utf8_get_char (p);
    CharClass cls = classify (c);
    const char *q = g_utf8_next_char (p);
    gsize k;

    if (cls == CLS_SPACE) {
      p = q;
      continue;
    }
    if ((k = contraction (p, end)) > 0) {
      q = p + k;
    } else if (cls == CLS_LETTER) {
      while (q < end && classify (g_utf8_get_char (q)) == CLS_LETTER)
        q = g_utf8_next_char (q);
    } else if (cls == CLS_OTHER) {
      while (q < end && classify (g_utf8_get_char (q)) == CLS_OTHER)
        q = g_utf8_next_char (q);
    }
    encode_piece (tok, p, q - p, scratch, out);
    p = q;
  }
}

gboolean
easel_tokenizer_encode_full (EaselTokenizer *tok, const char *text, gssize len, EaselTokenizeFlags flags,
                             GArray *ids, GError **error)
{
  g_autoptr(GString) lower = g_string_new (NULL);
  g_autoptr(GString) scratch = g_string_new (NULL);
  const char *bad = NULL;
  gsize n = len < 0 ? strlen (text) : (gsize) len;
  const char *p = text, *end = text + n;

  if (n > EASEL_TOKENIZER_MAX_TEXT)
    return fail (error, EASEL_ERROR_INVALID_INPUT, "prompt",
                 "%" G_GSIZE_FORMAT " bytes is longer than the %u MiB a prompt may have", n,
                 EASEL_TOKENIZER_MAX_TEXT >> 20);
  if (!g_utf8_validate_len (text, n, &bad))
    return fail (error, EASEL_ERROR_INVALID_INPUT, "prompt",
                 "%s at byte %" G_GSIZE_FORMAT, *bad ? "invalid UTF-8" : "NUL character",
                 (gsize) (bad - text));

  /* the specials are matched on the raw text (tokenizers' AddedVocabulary, normalized=False) */
  while (p < end) {
    const char *s = p;
    gint32 sid = -1;
    gsize slen = 0;
    for (; s < end; s++) {
      if (*s == '!' && (flags & EASEL_TOKENIZE_BANG_SPECIAL)) {
        sid = tok->bang;
        slen = 1;
        break;
      }
      if (*s != '<')
        continue;
      if ((gsize) (end - s) >= sizeof BOS_TEXT - 1 && memcmp (s, BOS_TEXT, sizeof BOS_TEXT - 1) == 0) {
        sid = tok->bos;
        slen = sizeof BOS_TEXT - 1;
        break;
      }
      if ((gsize) (end - s) >= sizeof EOS_TEXT - 1 && memcmp (s, EOS_TEXT, sizeof EOS_TEXT - 1) == 0) {
        sid = tok->eos;
        slen = sizeof EOS_TEXT - 1;
        break;
      }
    }
    encode_stretch (tok, p, s - p, lower, scratch, ids);
    if (s == end)
      break;
    g_array_append_val (ids, sid);
    p = s + slen;
  }
  return TRUE;
}

gboolean
easel_tokenizer_encode (EaselTokenizer *tok, const char *text, gssize len, GArray *ids, GError **error)
{
  return easel_tokenizer_encode_full (tok, text, len, 0, ids, error);
}

void
easel_tokenizer_pad_77 (const EaselTokenizer *tok, const gint32 *ids, gsize n_ids, gint32 pad,
                        gint32 *out)
{
  gsize n = MIN (n_ids, EASEL_CLIP_CHUNK), i = 0;
  out[i++] = tok->bos;
  for (gsize k = 0; k < n; k++)
    out[i++] = ids[k];
  out[i++] = tok->eos;
  while (i < EASEL_CLIP_CONTEXT)
    out[i++] = pad;
}
