/* shaders/spirv-coopmat-khr.c: the build-time command around spirv-coopmat.c. Reads a SPIR-V
 * module that uses SPV_NV_cooperative_matrix (glslc's binary output) and writes it rewritten to
 * SPV_KHR_cooperative_matrix, as a binary or, with --c-array, as the text glslc -mfmt=c writes (a
 * braced list of words that shaders/spv-table.h.in includes). Exit status 1 with a message naming
 * the input on any error; shaders/meson.build runs it for every entry of coopmat_variants. */
#include <stdio.h>
#include <string.h>

#include "spirv-coopmat.h"

static gboolean
write_c_array (const char *path, const guint32 *w, gsize n, GError **error)
{
  g_autoptr(GString) s = g_string_sized_new (n * 11 + 4);

  g_string_append_c (s, '{');
  for (gsize i = 0; i < n; i++)
    g_string_append_printf (s, "0x%08x%s", w[i], i + 1 == n ? "}\n" : (i % 4 == 3 ? ",\n" : ","));
  if (n == 0)
    g_string_append (s, "}\n");
  return g_file_set_contents (path, s->str, s->len, error);
}

static gboolean
translate (const char *in_path, const char *out_path, gboolean c_array, GError **error)
{
  g_autofree char *bytes = NULL;
  g_autofree guint32 *words = NULL, *out = NULL;
  gsize len = 0, n_out = 0;

  if (!g_file_get_contents (in_path, &bytes, &len, error))
    return FALSE;
  if (len % 4 != 0) {
    g_set_error (error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%" G_GSIZE_FORMAT " bytes is not a whole number of SPIR-V words", len);
    return FALSE;
  }
  words = g_new (guint32, len / 4 + 1);
  memcpy (words, bytes, len);
  out = easel_spirv_coopmat_nv_to_khr (words, len / 4, &n_out, error);
  if (out == NULL)
    return FALSE;
  if (c_array)
    return write_c_array (out_path, out, n_out, error);
  return g_file_set_contents (out_path, (const char *) out, n_out * 4, error);
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  gboolean c_array = argc == 4 && strcmp (argv[1], "--c-array") == 0;

  if (argc != 3 && !c_array) {
    fprintf (stderr, "usage: %s [--c-array] INPUT.spv OUTPUT\n"
                     "Rewrites a SPIR-V module from SPV_NV_cooperative_matrix to SPV_KHR_cooperative_matrix.\n", argv[0]);
    return 2;
  }
  if (!translate (argv[argc - 2], argv[argc - 1], c_array, &error)) {
    fprintf (stderr, "spirv-coopmat-khr: %s: %s\n", argv[argc - 2], error->message);
    return 1;
  }
  return 0;
}
