/* app/cli/cli-inspect.c: `easel-cli inspect [--tensors] FILE|DIR`, dispatching on what the file is. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static gboolean
is_png (const char *path)
{
  static const guint8 magic[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
  guint8 head[8];
  FILE *f;
  gboolean yes;

  if (g_file_test (path, G_FILE_TEST_IS_DIR) || (f = fopen (path, "rb")) == NULL)
    return FALSE;
  yes = fread (head, 1, 8, f) == 8 && memcmp (head, magic, 8) == 0;
  fclose (f);
  return yes || g_str_has_suffix (path, ".png");
}

int
easel_cli_inspect (int argc, char **argv)
{
  gboolean list_tensors = FALSE, verbose = FALSE;
  const char *path = NULL;

  for (int i = 1; i < argc; i++) {
    if (strcmp (argv[i], "--tensors") == 0)
      list_tensors = TRUE;
    else if (strcmp (argv[i], "--verbose") == 0 || strcmp (argv[i], "-v") == 0)
      verbose = TRUE;
    else if (strcmp (argv[i], "--help") == 0) {
      printf ("Usage: easel-cli inspect [--tensors] [--verbose] FILE|DIR\n\n"
              "A .safetensors checkpoint or a diffusers folder: detected family, format, dtypes,\n"
              "tensor count and bytes, metadata (--tensors lists every tensor; --verbose loads each\n"
              "network and lists the tensors none of them uses).\n"
              "A PNG: size, mode and its A1111 'parameters' chunk.\n");
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      easel_cli_error ("inspect: unknown option '%s'", argv[i]);
      return 2;
    } else if (path == NULL)
      path = argv[i];
    else {
      easel_cli_error ("inspect: one FILE or DIR at a time");
      return 2;
    }
  }
  if (path == NULL) {
    easel_cli_error ("inspect: which FILE or DIR? (try --help)");
    return 2;
  }
  if (!g_file_test (path, G_FILE_TEST_EXISTS)) {
    easel_cli_error ("%s: no such file or folder", path);
    return 1;
  }
  return is_png (path) ? easel_cli_inspect_png (path, list_tensors)
                       : easel_cli_inspect_checkpoint (path, list_tensors, verbose);
}
