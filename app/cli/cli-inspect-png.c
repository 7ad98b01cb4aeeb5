/* app/cli/cli-inspect-png.c: `easel-cli inspect` for a png. */
#include "cli.h"

int
easel_cli_inspect_png (const char *path, gboolean list_tensors)
{
  easel_cli_error ("%s: inspecting a png is not implemented yet", path);
  return 1;
}
