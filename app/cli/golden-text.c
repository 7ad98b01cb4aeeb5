/* app/cli/golden-text.c: golden kinds "tokenizer" and "prompt" (tokenizer/manifest.json).
 *
 * tokenizer: one case per prompt of the golden prompts file (tokenizer_golden.json): `ids`,
 *   `sd1_ids_77`, `sdxl_tok2_ids_77` and the prompt's rows of tokens_77.safetensors, all exact,
 *   with every vocabulary form: --vocab / EASEL_VOCAB when given, else both DIR/tokenizer/
 *   (vocab.json + merges.txt) and DIR/tokenizer/bpe_simple_vocab_16e6.txt.gz.
 * prompt: one case per prompt: `a1111_parse_prompt_attention` (texts exact, weights exact as
 *   doubles: the same operations in the same order as Python give the same bits; an {"error"}
 *   entry must be an error), `comfy_token_weights` (same rule), and the two
 *   `comfy_*_tokenize_with_weights` packings (ids exact, weights exact). */
#include "golden.h"

#include <math.h>
#include <string.h>

#include "engine/error.h"
#include "engine/prompt.h"
#include "engine/tokenizer.h"

typedef struct {
  guint index;          /* into the golden file's cases */
  char *golden;         /* relpath of the golden prompts file */
  char *tokens77;       /* path of tokens_77.safetensors, or NULL */
} TextCase;

static void
text_case_free (gpointer p)
{
  TextCase *t = p;
  g_free (t->golden);
  g_free (t->tokens77);
  g_free (t);
}

/* ---- loading ---------------------------------------------------------------------------------- */

/* Tokenizers stay loaded for the run (path -> EaselTokenizer*, or NULL after a failure). */
static GHashTable *tokenizers;
static GHashTable *load_errors;

static EaselTokenizer *
get_tokenizer (const char *path, GError **error)
{
  gpointer v;
  if (tokenizers == NULL) {
    tokenizers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) easel_tokenizer_free);
    load_errors = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  }
  if (g_hash_table_lookup_extended (tokenizers, path, NULL, &v))
    return v;
  if ((v = g_hash_table_lookup (load_errors, path)) != NULL) {
    g_set_error_literal (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, v);
    return NULL;
  }
  g_autoptr(GError) e = NULL;
  EaselTokenizer *tok = easel_tokenizer_load (path, &e);
  if (tok == NULL) {
    g_hash_table_insert (load_errors, g_strdup (path), g_strdup (e->message));
    g_propagate_error (error, g_steal_pointer (&e));
    return NULL;
  }
  g_hash_table_insert (tokenizers, g_strdup (path), tok);
  return tok;
}

/* The vocabulary forms to check: (label, path) pairs. */
static GPtrArray *
vocab_forms (EaselGolden *g)
{
  GPtrArray *forms = g_ptr_array_new_with_free_func (g_free);
  if (easel_golden_vocab (g)) {
    g_ptr_array_add (forms, g_strdup ("vocab"));
    g_ptr_array_add (forms, g_strdup (easel_golden_vocab (g)));
  } else {
    g_ptr_array_add (forms, g_strdup ("hf"));
    g_ptr_array_add (forms, g_build_filename (easel_golden_dir (g), "tokenizer", NULL));
    g_ptr_array_add (forms, g_strdup ("gz"));
    g_ptr_array_add (forms, g_build_filename (easel_golden_dir (g), "tokenizer", "bpe_simple_vocab_16e6.txt.gz", NULL));
  }
  return forms;
}

/* Up to 24 characters of text, control characters and quotes as '_'. */
static char *
case_name (guint index, const char *text)
{
  GString *s = g_string_new (NULL);
  guint n = 0;
  g_string_printf (s, "%03u ", index);
  for (const char *p = text; *p && n < 24; p = g_utf8_next_char (p), n++) {
    gunichar c = g_utf8_get_char_validated (p, -1);
    if (c == (gunichar) -1 || c == (gunichar) -2)
      break;
    if (g_unichar_iscntrl (c) || c == ' ' || c == '"' || !g_unichar_isprint (c))
      g_string_append_c (s, '_');
    else
      g_string_append_unichar (s, c);
  }
  if (n == 0)
    g_string_append (s, "(empty)");
  return g_string_free (s, FALSE);
}

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  const EaselJson *m = easel_golden_manifest (g, "tokenizer/manifest.json");
  const EaselJson *list = easel_json_get (m, "cases");
  g_autofree char *golden = NULL, *tokens77 = NULL;
  g_autofree char *dir = g_build_filename (easel_golden_dir (g), "tokenizer", NULL);

  for (gsize i = 0; i < easel_json_length (list); i++) {
    const char *file = easel_json_get_string (easel_json_at (list, i), "file", NULL);
    if (file && g_str_has_suffix (file, ".json") && golden == NULL)
      golden = g_build_filename ("tokenizer", file, NULL);
    else if (file && g_str_has_suffix (file, ".safetensors") && tokens77 == NULL)
      tokens77 = g_build_filename (dir, file, NULL);
  }
  if (golden == NULL)
    return;
  const EaselJson *all = easel_json_get (easel_golden_manifest (g, golden), "cases");
  for (gsize i = 0; i < easel_json_length (all); i++) {
    const EaselJson *entry = easel_json_at (all, i);
    g_autofree char *name = case_name (i, easel_json_get_string (entry, "text", ""));
    EaselGoldenCase *c = easel_golden_case_new (name, dir, entry);
    TextCase *t = g_new0 (TextCase, 1);
    t->index = i;
    t->golden = g_strdup (golden);
    t->tokens77 = g_strdup (tokens77);
    c->data = t;
    c->free_data = text_case_free;
    g_ptr_array_add (cases, c);
  }
}

/* The case's text (may hold NULs in JSON; then len tells). */
static const char *
case_text (const EaselJson *entry, gsize *len)
{
  const char *s = easel_json_string (easel_json_get (entry, "text"), len);
  if (s == NULL) {
    *len = 0;
    return "";
  }
  return s;
}

/* ---- tokenizer ------------------------------------------------------------------------------- */

/* Compares ids with a JSON array of integers (or a float row); describes the first difference. */
static gboolean
compare_ids (EaselGolden *g, const char *label, const gint32 *got, gsize n_got, const EaselJson *want_json,
             const float *want_row, gsize n_row)
{
  gsize n_want = want_json ? easel_json_length (want_json) : n_row;
  for (gsize k = 0; k < MAX (n_got, n_want); k++) {
    gint64 w = -1;
    if (k < n_want) {
      if (want_json)
        easel_json_int64 (easel_json_at (want_json, k), &w);
      else
        w = (gint64) want_row[k];
    }
    if (k >= n_got || k >= n_want || got[k] != w) {
      easel_golden_fail (g, "%s: %" G_GSIZE_FORMAT " ids, want %" G_GSIZE_FORMAT "; first difference at [%" G_GSIZE_FORMAT
                         "]: got %" G_GINT64_FORMAT " want %" G_GINT64_FORMAT, label, n_got, n_want, k,
                         k < n_got ? (gint64) got[k] : -1, w);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
run_tokenizer (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  const TextCase *t = c->data;
  const EaselJson *entry = c->spec;
  g_autoptr(GPtrArray) forms = vocab_forms (g);
  gsize len;
  const char *text = case_text (entry, &len);
  gboolean ok = TRUE;

  for (guint f = 0; f + 1 < forms->len; f += 2) {
    const char *form = forms->pdata[f];
    EaselTokenizer *tok = get_tokenizer (forms->pdata[f + 1], error);
    g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint32));
    gint32 padded[EASEL_CLIP_CONTEXT];
    g_autofree char *l_ids = g_strdup_printf ("ids (%s)", form);
    g_autofree char *l_sd1 = g_strdup_printf ("sd1_ids_77 (%s)", form);
    g_autofree char *l_xl = g_strdup_printf ("sdxl_tok2_ids_77 (%s)", form);

    if (tok == NULL)
      return FALSE;
    gint32 bos = easel_tokenizer_bos (tok), eos = easel_tokenizer_eos (tok);
    g_array_append_val (ids, bos);
    if (!easel_tokenizer_encode (tok, text, len, ids, error))
      return FALSE;
    g_array_append_val (ids, eos);
    ok &= compare_ids (g, l_ids, (gint32 *) ids->data, ids->len, easel_json_get (entry, "ids"), NULL, 0);

    /* padded forms from the ids without BOS/EOS; SDXL's tokenizer 2 treats "!" as special */
    for (int which = 0; which < 2; which++) {
      const char *key = which == 0 ? "sd1_ids_77" : "sdxl_tok2_ids_77";
      if (which == 1) {
        g_array_set_size (ids, 1);
        if (!easel_tokenizer_encode_full (tok, text, len, EASEL_TOKENIZE_BANG_SPECIAL, ids, error))
          return FALSE;
        g_array_append_val (ids, eos);
      }
      easel_tokenizer_pad_77 (tok, (gint32 *) ids->data + 1, ids->len - 2, which == 0 ? eos : 0, padded);
      ok &= compare_ids (g, which == 0 ? l_sd1 : l_xl, padded, EASEL_CLIP_CONTEXT, easel_json_get (entry, key), NULL, 0);
      if (t->tokens77) {
        gsize n = 0;
        g_autofree float *all = easel_golden_tensor_f32 (g, t->tokens77, key, 0, &n, error);
        g_autofree char *label = g_strdup_printf ("tokens_77 %s row %u (%s)", key, t->index, form);
        if (all == NULL)
          return FALSE;
        if ((t->index + 1) * (gsize) EASEL_CLIP_CONTEXT > n) {
          easel_golden_fail (g, "%s: the tensor has only %" G_GSIZE_FORMAT " rows", label, n / EASEL_CLIP_CONTEXT);
          ok = FALSE;
        } else {
          ok &= compare_ids (g, label, padded, EASEL_CLIP_CONTEXT, NULL, all + t->index * EASEL_CLIP_CONTEXT,
                             EASEL_CLIP_CONTEXT);
        }
      }
    }
  }
  return ok;
}

const EaselGoldenKind easel_golden_kind_tokenizer = { "tokenizer", collect, run_tokenizer };

/* ---- prompt ------------------------------------------------------------------------------------- */

static gboolean
same_double (double a, double b)
{
  return a == b || (isnan (a) && isnan (b));
}

/* Compares segments with a JSON list of [text, weight]. */
static gboolean
compare_segments (EaselGolden *g, const char *label, const GArray *got, const EaselJson *want)
{
  gsize n_want = easel_json_length (want);
  if (got->len != n_want) {
    g_autoptr(GString) s = g_string_new (NULL);
    for (guint i = 0; i < got->len; i++) {
      const EaselPromptSegment *seg = &g_array_index (got, EaselPromptSegment, i);
      g_string_append (s, i ? ", " : "");
      easel_json_append_string (s, seg->text);
      g_string_append_printf (s, ":%.17g", seg->weight);
    }
    easel_golden_fail (g, "%s: %u segments, want %" G_GSIZE_FORMAT " (got [%s])", label, got->len, n_want, s->str);
    return FALSE;
  }
  for (gsize i = 0; i < n_want; i++) {
    const EaselPromptSegment *seg = &g_array_index (got, EaselPromptSegment, i);
    const EaselJson *pair = easel_json_at (want, i);
    gsize tlen = 0;
    const char *wt = easel_json_string (easel_json_at (pair, 0), &tlen);
    double ww = NAN;
    easel_json_double (easel_json_at (pair, 1), &ww);
    if (wt == NULL || strlen (seg->text) != tlen || memcmp (seg->text, wt, tlen) != 0) {
      g_autoptr(GString) a = g_string_new (NULL);
      g_autoptr(GString) b = g_string_new (NULL);
      easel_json_append_string (a, seg->text);
      easel_json_append_string (b, wt ? wt : "(not a string)");
      easel_golden_fail (g, "%s: segment %" G_GSIZE_FORMAT " text %s, want %s", label, i, a->str, b->str);
      return FALSE;
    }
    if (!same_double (seg->weight, ww)) {
      easel_golden_fail (g, "%s: segment %" G_GSIZE_FORMAT " weight %.17g, want %.17g", label, i, seg->weight, ww);
      return FALSE;
    }
  }
  return TRUE;
}

/* Compares chunks with a JSON list of chunks of [id, weight]. */
static gboolean
compare_chunks (EaselGolden *g, const char *label, const GArray *got, const EaselJson *want)
{
  gsize n_want = easel_json_length (want);
  if (got->len != n_want) {
    easel_golden_fail (g, "%s: %u chunks, want %" G_GSIZE_FORMAT, label, got->len, n_want);
    return FALSE;
  }
  for (gsize i = 0; i < n_want; i++) {
    const EaselPromptChunk *ch = &g_array_index (got, EaselPromptChunk, i);
    const EaselJson *wc = easel_json_at (want, i);
    if (easel_json_length (wc) != EASEL_CLIP_CONTEXT) {
      easel_golden_fail (g, "%s: chunk %" G_GSIZE_FORMAT " of the reference has %" G_GSIZE_FORMAT " entries", label, i,
                         easel_json_length (wc));
      return FALSE;
    }
    for (gsize k = 0; k < EASEL_CLIP_CONTEXT; k++) {
      const EaselJson *pair = easel_json_at (wc, k);
      gint64 id = -1;
      double w = NAN;
      easel_json_int64 (easel_json_at (pair, 0), &id);
      easel_json_double (easel_json_at (pair, 1), &w);
      if (ch->ids[k] != id || !same_double (ch->weights[k], w)) {
        easel_golden_fail (g, "%s: chunk %" G_GSIZE_FORMAT " [%" G_GSIZE_FORMAT "]: got (%d, %.17g) want (%" G_GINT64_FORMAT
                           ", %.17g)", label, i, k, ch->ids[k], ch->weights[k], id, w);
        return FALSE;
      }
    }
  }
  return TRUE;
}

static gboolean
run_prompt (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  const EaselJson *entry = c->spec;
  gsize len;
  const char *text = case_text (entry, &len);
  const EaselJson *a1111 = easel_json_get (entry, "a1111_parse_prompt_attention");
  const EaselJson *comfy = easel_json_get (entry, "comfy_token_weights");
  gboolean ok = TRUE;

  if (a1111) {
    g_autoptr(GError) e = NULL;
    g_autoptr(GArray) segs = easel_prompt_parse_a1111 (text, len, &e);
    if (easel_json_type (a1111) == EASEL_JSON_OBJECT) {
      if (segs != NULL) {
        easel_golden_fail (g, "a1111: parsed, but A1111 raises (%s)", easel_json_get_string (a1111, "error", "?"));
        ok = FALSE;
      }
    } else if (segs == NULL) {
      easel_golden_fail (g, "a1111: %s", e->message);
      ok = FALSE;
    } else {
      ok &= compare_segments (g, "a1111", segs, a1111);
    }
  }
  if (comfy) {
    g_autoptr(GError) e = NULL;
    g_autoptr(GArray) segs = easel_prompt_parse_comfy (text, len, &e);
    if (segs == NULL) {
      easel_golden_fail (g, "comfy: %s", e->message);
      return FALSE;
    }
    ok &= compare_segments (g, "comfy", segs, comfy);

    const EaselJson *sd1 = easel_json_get (entry, "comfy_sd1_tokenize_with_weights");
    const EaselJson *xl = easel_json_get (entry, "comfy_sdxl_g_tokenize_with_weights");
    if (sd1 || xl) {
      g_autoptr(GPtrArray) forms = vocab_forms (g);
      EaselTokenizer *tok = get_tokenizer (forms->pdata[1], error);
      if (tok == NULL)
        return FALSE;
      for (int which = 0; which < 2; which++) {
        const EaselJson *want = which == 0 ? sd1 : xl;
        g_autoptr(GArray) chunks = NULL;
        if (want == NULL)
          continue;
        chunks = which == 0 ? easel_prompt_chunks_comfy (tok, segs, easel_tokenizer_eos (tok), 0, error)
                            : easel_prompt_chunks_comfy (tok, segs, 0, EASEL_TOKENIZE_BANG_SPECIAL, error);
        if (chunks == NULL)
          return FALSE;
        ok &= compare_chunks (g, which == 0 ? "comfy sd1" : "comfy sdxl_g", chunks, want);
      }
    }
  }
  return ok;
}

const EaselGoldenKind easel_golden_kind_prompt = { "prompt", collect, run_prompt };
