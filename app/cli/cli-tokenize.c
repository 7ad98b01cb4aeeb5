/* app/cli/cli-tokenize.c: `easel-cli tokenize [--sdxl] [--comfy] [--vocab FILE|DIR] PROMPT|-`.
 * Prints the (text, weight) pairs of the prompt (A1111 syntax, or ComfyUI's with --comfy), then
 * each 77-token chunk: its ids, and the weights that are not 1 as index:weight. --sdxl adds the
 * ids of SDXL's second tokenizer (padded with 0). */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "engine/json.h"
#include "engine/prompt.h"
#include "engine/vocab.h"

static void
usage (FILE *out)
{
  fprintf (out, "Usage: easel-cli tokenize [--sdxl] [--comfy] [--vocab FILE|DIR] PROMPT|-\n\n"
                "  --sdxl          also print the ids of SDXL's second tokenizer (padded with 0)\n"
                "  --comfy         ComfyUI's weighting syntax and chunking instead of A1111's\n"
                "  --vocab PATH    bpe_simple_vocab_16e6.txt.gz, or a folder with vocab.json + merges.txt\n"
                "  -               read the prompt from standard input\n");
}

static char *
read_stdin (gsize *len)
{
  GString *s = g_string_new (NULL);
  char buf[65536];
  size_t n;
  while ((n = fread (buf, 1, sizeof buf, stdin)) > 0 && s->len <= EASEL_TOKENIZER_MAX_TEXT)
    g_string_append_len (s, buf, n);
  *len = s->len;
  return g_string_free (s, FALSE);
}

static void
print_ids (const char *label, guint index, const gint32 *ids)
{
  printf ("%s %u:", label, index);
  for (guint k = 0; k < EASEL_CLIP_CONTEXT; k++)
    printf (" %d", ids[k]);
  printf ("\n");
}

int
easel_cli_tokenize (int argc, char **argv)
{
  gboolean sdxl = FALSE, comfy = FALSE;
  const char *vocab = NULL, *prompt_arg = NULL;
  g_autofree char *prompt = NULL;
  g_autoptr(GError) error = NULL;
  gsize len = 0;

  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--help") == 0) {
      usage (stdout);
      return 0;
    } else if (strcmp (argv[i], "--sdxl") == 0) {
      sdxl = TRUE;
    } else if (strcmp (argv[i], "--comfy") == 0) {
      comfy = TRUE;
    } else if (strcmp (argv[i], "--vocab") == 0 && i + 1 < argc) {
      vocab = argv[++i];
    } else if (argv[i][0] == '-' && argv[i][1] != '\0' && strcmp (argv[i], "--") != 0) {
      easel_cli_error ("tokenize: unknown or incomplete option '%s' (try --help)", argv[i]);
      return 1;
    } else if (prompt_arg == NULL) {
      if (strcmp (argv[i], "--") == 0 && i + 1 < argc)
        i++;
      prompt_arg = argv[i];
    } else {
      easel_cli_error ("tokenize: one prompt only (quote it)");
      return 1;
    }
  }
  if (prompt_arg == NULL) {
    usage (stderr);
    return 1;
  }
  if (strcmp (prompt_arg, "-") == 0) {
    prompt = read_stdin (&len);
  } else {
    prompt = g_strdup (prompt_arg);
    len = strlen (prompt);
  }

  g_autoptr(EaselTokenizer) tok = easel_vocab_load (vocab, NULL, &error);
  if (tok == NULL) {
    easel_cli_error ("%s", error->message);
    return 1;
  }
  g_autoptr(GArray) segs = comfy ? easel_prompt_parse_comfy (prompt, len, &error)
                                 : easel_prompt_parse_a1111 (prompt, len, &error);
  g_autoptr(GArray) chunks = NULL;
  if (segs != NULL)
    chunks = comfy ? easel_prompt_chunks_comfy (tok, segs, easel_tokenizer_eos (tok), 0, &error)
                   : easel_prompt_chunks_a1111 (tok, segs, 20, &error);
  if (chunks == NULL) {
    easel_cli_error ("%s", error->message);
    return 1;
  }

  /* ComfyUI's clip_g packs on its own (pad 0, "!" special); A1111 repads CLIP-L's chunks */
  g_autoptr(GArray) chunks2 = NULL;
  if (sdxl && comfy) {
    chunks2 = easel_prompt_chunks_comfy (tok, segs, 0, EASEL_TOKENIZE_BANG_SPECIAL, &error);
    if (chunks2 == NULL) {
      easel_cli_error ("%s", error->message);
      return 1;
    }
  }

  printf ("vocabulary: %s\n", easel_tokenizer_source (tok));
  for (guint i = 0; i < segs->len; i++) {
    const EaselPromptSegment *s = &g_array_index (segs, EaselPromptSegment, i);
    g_autoptr(GString) q = g_string_new (NULL);
    easel_json_append_string (q, s->text);
    printf ("segment %u: %s %.17g\n", i, q->str, s->weight);
  }
  for (guint c = 0; c < chunks->len; c++) {
    EaselPromptChunk *ch = &g_array_index (chunks, EaselPromptChunk, c);
    gboolean any = FALSE;
    print_ids ("chunk", c, ch->ids);
    for (guint k = 0; k < EASEL_CLIP_CONTEXT; k++)
      if (ch->weights[k] != 1.0) {
        if (!any)
          printf ("weights %u:", c);
        any = TRUE;
        printf (" %u:%.17g", k, ch->weights[k]);
      }
    if (any)
      printf ("\n");
    if (sdxl && !comfy) {
      EaselPromptChunk second = *ch;
      easel_prompt_chunk_repad (&second, easel_tokenizer_eos (tok), 0);
      print_ids ("chunk2", c, second.ids);
    }
  }
  for (guint c = 0; chunks2 && c < chunks2->len; c++)
    print_ids ("chunk2", c, g_array_index (chunks2, EaselPromptChunk, c).ids);
  return 0;
}
