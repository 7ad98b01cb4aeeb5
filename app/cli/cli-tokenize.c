/* app/cli/cli-tokenize.c: `easel-cli tokenize [--sdxl] [--vocab FILE] PROMPT|-`. */
#include "cli.h"

int
easel_cli_tokenize (int argc, char **argv)
{
  easel_cli_error ("tokenize: not implemented yet");
  return 1;
}
