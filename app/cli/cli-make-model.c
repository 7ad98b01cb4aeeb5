/* app/cli/cli-make-model.c: `easel-cli make-model --family F [--tiny] [--seed N] [--dtype D] -o FILE`.
 * Writes a random-weight checkpoint of a family's published architecture in original single-file
 * naming (engine/model-spec.h, engine/model-make.h), for benchmarks and the demo model. --tiny
 * uses the test models' widths and a generated vocabulary, written to FILE's folder/tokenizer/
 * (where engine/vocab.c looks for a single file's vocabulary); the token embeddings then have
 * that vocabulary's size. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

#include "engine/model-make.h"
#include "engine/model-spec.h"

static void
usage (FILE *out)
{
  g_autofree char *families = g_strjoinv ("|", (char **) easel_model_spec_names ());
  fprintf (out, "Usage: easel-cli make-model --family FAMILY [--tiny] [--seed N] [--dtype f16|bf16|f32] -o FILE\n\n"
                "  --family F      %s\n"
                "  --tiny          the test models' widths, with a generated vocabulary in FILE's folder/tokenizer/\n"
                "  --seed N        weights are a function of N (default 0)\n"
                "  --dtype D       f16 (default), bf16 or f32\n"
                "  --threads N     threads making values (default: one per processor)\n"
                "  -o FILE         the .safetensors file to write\n",
          families);
}

static gboolean
parse_dtype (const char *s, EaselDType *out)
{
  if (g_ascii_strcasecmp (s, "f16") == 0 || g_ascii_strcasecmp (s, "fp16") == 0)
    *out = EASEL_DTYPE_F16;
  else if (g_ascii_strcasecmp (s, "bf16") == 0)
    *out = EASEL_DTYPE_BF16;
  else if (g_ascii_strcasecmp (s, "f32") == 0 || g_ascii_strcasecmp (s, "fp32") == 0)
    *out = EASEL_DTYPE_F32;
  else
    return FALSE;
  return TRUE;
}

int
easel_cli_make_model (int argc, char **argv)
{
  const char *family = NULL, *out = NULL;
  gboolean tiny = FALSE;
  EaselMakeOptions opt = { EASEL_DTYPE_F16, 0, 0 };
  g_autoptr(GError) error = NULL;
  g_autofree char *vocab_dir = NULL;
  EaselModelSpec spec;
  guint64 v;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp (a, "--help") == 0) {
      usage (stdout);
      return 0;
    } else if (strcmp (a, "--tiny") == 0) {
      tiny = TRUE;
    } else if (strcmp (a, "--family") == 0 && i + 1 < argc) {
      family = argv[++i];
    } else if ((strcmp (a, "-o") == 0 || strcmp (a, "--output") == 0) && i + 1 < argc) {
      out = argv[++i];
    } else if (strcmp (a, "--seed") == 0 && i + 1 < argc) {
      if (!g_ascii_string_to_unsigned (argv[++i], 10, 0, G_MAXUINT64, &opt.seed, NULL)) {
        easel_cli_error ("make-model: --seed '%s' is not a non-negative integer", argv[i]);
        return 1;
      }
    } else if (strcmp (a, "--threads") == 0 && i + 1 < argc) {
      if (!g_ascii_string_to_unsigned (argv[++i], 10, 1, 64, &v, NULL)) {
        easel_cli_error ("make-model: --threads '%s' is not a number from 1 to 64", argv[i]);
        return 1;
      }
      opt.n_threads = (guint) v;
    } else if (strcmp (a, "--dtype") == 0 && i + 1 < argc) {
      if (!parse_dtype (argv[++i], &opt.dtype)) {
        easel_cli_error ("make-model: --dtype '%s' is not f16, bf16 or f32", argv[i]);
        return 1;
      }
    } else {
      easel_cli_error ("make-model: unknown or incomplete option '%s' (try --help)", a);
      return 1;
    }
  }
  if (family == NULL || out == NULL) {
    easel_cli_error ("make-model: --family and -o are required (try --help)");
    return 1;
  }
  if (!easel_model_spec_get (family, tiny, &spec, &error)) {
    easel_cli_error ("make-model: %s", error->message);
    return 1;
  }
  if (tiny) {
    g_autofree char *dir = g_path_get_dirname (out);
    if (!g_file_test (dir, G_FILE_TEST_IS_DIR)) {
      easel_cli_error ("make-model: %s: no such folder", dir);
      return 1;
    }
    vocab_dir = g_build_filename (dir, "tokenizer", NULL);
    for (int i = 0; i < spec.n_text; i++)
      spec.text[i].vocab = (gint64) easel_demo_vocab_size ();
    if (!easel_demo_vocab_write (vocab_dir, &error)) {
      easel_cli_error ("make-model: %s", error->message);
      return 1;
    }
  }

  gint64 t0 = g_get_monotonic_time ();
  if (!easel_model_make (&spec, &opt, out, &error)) {
    easel_cli_error ("make-model: %s", error->message);
    return 1;
  }
  g_autoptr(EaselSpecTensorList) list = easel_model_spec_tensors (&spec, opt.dtype);
  printf ("%s: %s%s, %" G_GSIZE_FORMAT " tensors, %" G_GUINT64_FORMAT " bytes of %s weights, seed %" G_GUINT64_FORMAT
          ", %.1f s\n", out, spec.name, tiny ? " (tiny)" : "", list->n_tensors, easel_spec_tensor_list_bytes (list),
          easel_dtype_name (opt.dtype), opt.seed, (double) (g_get_monotonic_time () - t0) / 1e6);
  if (vocab_dir)
    printf ("vocabulary (%" G_GSIZE_FORMAT " tokens): %s\n", easel_demo_vocab_size (), vocab_dir);
  return 0;
}
