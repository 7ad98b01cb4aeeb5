/* app/cli/easel-cli.c: `easel-cli SUBCOMMAND ...`, the command-line front end of libeasel. */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct {
  const char *name;
  int (*run) (int argc, char **argv);
  const char *summary;
} Subcommand;

static const Subcommand subcommands[] = {
  { "inspect", easel_cli_inspect, "FILE|DIR   a checkpoint (family, format, tensors) or a PNG (size, parameters)" },
  { "tokenize", easel_cli_tokenize, "[--sdxl] PROMPT|-   CLIP token ids per 77-token chunk and the (text, weight) pairs" },
  { "generate", easel_cli_generate, "-m MODEL -p PROMPT [-o OUT.png] ...   generate images (--help for every flag)" },
  { "samplers", easel_cli_samplers, "   every sampler and scheduler with its ComfyUI id and A1111 name" },
  { "make-model", easel_cli_make_model, "--family F [--tiny] [--seed N] -o FILE   a random-weight checkpoint" },
  { "bench", easel_cli_bench, "[--family sd15|sdxl|all]   time each network on full-size random weights" },
  { "check-golden", easel_cli_check_golden, "[--backend cpu|vulkan] DIR   compare with reference data" },
  { "devices", easel_cli_devices, "the Vulkan devices, what each supports, which one runs" },
};

void
easel_cli_error (const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  fprintf (stderr, "easel-cli: %s\n", msg);
}

static void
usage (FILE *out)
{
  fprintf (out, "Usage: easel-cli SUBCOMMAND [OPTIONS] ...\n\nSubcommands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (subcommands); i++)
    fprintf (out, "  %-13s %s\n", subcommands[i].name, subcommands[i].summary);
  fprintf (out, "\n  --help        this text (SUBCOMMAND --help: its options)\n"
                "  --version     print the version\n"
                "\nThe CLIP vocabulary: --vocab FILE|DIR or EASEL_VOCAB (see README).\n");
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  if (argc < 2) {
    usage (stderr);
    return 2;
  }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 || strcmp (argv[1], "help") == 0) {
    usage (stdout);
    return 0;
  }
  if (strcmp (argv[1], "--version") == 0) {
    printf ("easel-cli %s\n", EASEL_VERSION);
    return 0;
  }
  for (guint i = 0; i < G_N_ELEMENTS (subcommands); i++)
    if (strcmp (argv[1], subcommands[i].name) == 0)
      return subcommands[i].run (argc - 1, argv + 1);
  easel_cli_error ("unknown subcommand '%s' (try --help)", argv[1]);
  return 2;
}
