/* app/cli/cli-inspect-checkpoint.c: `easel-cli inspect` for a checkpoint. */
#include "cli.h"

int
easel_cli_inspect_checkpoint (const char *path, gboolean list_tensors)
{
  easel_cli_error ("%s: inspecting a checkpoint is not implemented yet", path);
  return 1;
}
