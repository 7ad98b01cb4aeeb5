/* tests/fuzz/driver.c: replays files (or every file of folders) through LLVMFuzzerTestOneInput,
 * so that each fuzz target's corpus runs as an ordinary test without libFuzzer. */
#include <glib.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static int
replay_file (const char *path)
{
  g_autofree char *buf = NULL;
  gsize len = 0;
  g_autoptr(GError) error = NULL;

  if (!g_file_get_contents (path, &buf, &len, &error)) {
    fprintf (stderr, "%s\n", error->message);
    return 1;
  }
  LLVMFuzzerTestOneInput ((const guint8 *) buf, len);
  return 0;
}

int
main (int argc, char **argv)
{
  int n = 0, bad = 0;
  for (int i = 1; i < argc; i++) {
    if (g_file_test (argv[i], G_FILE_TEST_IS_DIR)) {
      g_autoptr(GDir) dir = g_dir_open (argv[i], 0, NULL);
      const char *name;
      while (dir && (name = g_dir_read_name (dir)) != NULL) {
        g_autofree char *p = g_build_filename (argv[i], name, NULL);
        bad += replay_file (p);
        n++;
      }
    } else {
      bad += replay_file (argv[i]);
      n++;
    }
  }
  printf ("replayed %d inputs\n", n);
  return bad ? 1 : 0;
}
