/* tests/testutil.c */
#include <dlfcn.h>
#include <stdarg.h>

#include "testutil.h"

char *
test_data_path (const char *first, ...)
{
  const char *root = g_getenv ("EASEL_TESTDATA");
  va_list ap;
  GPtrArray *parts = g_ptr_array_new ();
  char *path;

  if (root == NULL || !g_file_test (root, G_FILE_TEST_IS_DIR)) {
    if (g_strcmp0 (g_getenv ("CI"), "true") == 0)
      g_error ("EASEL_TESTDATA (%s) is not a folder", root ? root : "unset");
    g_test_skip ("no test data (EASEL_TESTDATA)");
    g_ptr_array_free (parts, TRUE);
    return NULL;
  }
  g_ptr_array_add (parts, (gpointer) root);
  va_start (ap, first);
  for (const char *p = first; p != NULL; p = va_arg (ap, const char *))
    g_ptr_array_add (parts, (gpointer) p);
  va_end (ap);
  g_ptr_array_add (parts, NULL);
  path = g_build_filenamev ((char **) parts->pdata);
  g_ptr_array_free (parts, TRUE);
  return path;
}

/* Engines made with the "auto" backend probe Vulkan, and Mesa's lavapipe keeps a 128-byte allocation
 * that LeakSanitizer reports once the loader unloads the driver. Pinning the driver (RTLD_NODELETE,
 * when it is installed) keeps that allocation reachable, so the sanitizer build still checks our
 * own memory. */
__attribute__ ((constructor)) static void
pin_lavapipe (void)
{
  dlopen ("libvulkan_lvp.so", RTLD_NOW | RTLD_NODELETE);
}
