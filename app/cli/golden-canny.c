/* app/cli/golden-canny.c: golden kind "canny": refs/canny cases (README-r2 section 4). Each case
 * holds an RGB image (<case>/rgb_u8_hwc) and cv2.Canny edge maps named
 * canny_<rgb|gray>_<low>_<high>[_L2]; every one the manifest lists is recomputed with easel_canny on
 * the RGB image or on its cv2 RGB2GRAY conversion (itself checked against <case>/gray_u8_hw when
 * stored) and must match bit for bit. */
#include "golden.h"

#include <stdlib.h>
#include <string.h>

#include "engine/canny.h"
#include "engine/error.h"

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "canny", NULL);
}

/* A U8 tensor of the case file with the manifest's shape (2 or 3 dims). */
static const guint8 *
u8_tensor (EaselGolden *g, const char *file, const EaselJson *section, const char *name, gint64 *shape, int *n_dims,
           GError **error)
{
  EaselSafetensors *st = easel_golden_safetensors (g, file, error);
  const EaselJson *sh = easel_json_get (easel_json_get (section, name), "shape");
  if (st == NULL)
    return NULL;
  const EaselStTensor *t = easel_safetensors_find (st, name);
  *n_dims = (int) easel_json_length (sh);
  if (t == NULL || t->dtype != EASEL_DTYPE_U8 || t->n_dims != *n_dims || *n_dims < 2 || *n_dims > 3) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: no U8 tensor '%s' of the manifest's shape", file, name);
    return NULL;
  }
  for (int d = 0; d < *n_dims; d++)
    if (!easel_json_int64 (easel_json_at (sh, d), &shape[d]) || shape[d] != t->shape[d]) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: '%s' differs from the manifest's shape", file, name);
      return NULL;
    }
  return t->data;
}

/* Counts differing bytes; records the first. */
static gboolean
compare_u8 (EaselGolden *g, const char *label, const guint8 *got, const guint8 *want, gint64 H, gint64 W)
{
  gint64 bad = 0, first = -1;
  for (gint64 i = 0; i < H * W; i++)
    if (got[i] != want[i]) {
      if (first < 0)
        first = i;
      bad++;
    }
  if (bad == 0)
    return TRUE;
  easel_golden_fail (g, "%s: %" G_GINT64_FORMAT " of %" G_GINT64_FORMAT " pixels differ (%.3f%%), first at (%"
                     G_GINT64_FORMAT ", %" G_GINT64_FORMAT "): %u, want %u", label, bad, H * W, 100.0 * bad / (H * W),
                     first / W, first % W, got[first], want[first]);
  return FALSE;
}

static gboolean
run (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  const char *case_name = strchr (c->name, '/') ? strchr (c->name, '/') + 1 : c->name;
  g_autofree char *file = g_build_filename (c->dir, easel_json_get_string (c->spec, "file", ""), NULL);
  const EaselJson *inputs = easel_json_get (c->spec, "inputs"), *outputs = easel_json_get (c->spec, "outputs");
  g_autofree char *rgb_name = g_strconcat (case_name, "/rgb_u8_hwc", NULL);
  g_autofree char *gray_name = g_strconcat (case_name, "/gray_u8_hw", NULL);
  gint64 shape[3], o_shape[3];
  int nd, o_nd, n_checked = 0;
  gboolean ok = TRUE;

  const guint8 *rgb = u8_tensor (g, file, inputs, rgb_name, shape, &nd, error);
  if (rgb == NULL)
    return FALSE;
  if (nd != 3 || shape[2] != 3) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: '%s' is no (H, W, 3) image", file, rgb_name);
    return FALSE;
  }
  gint H = (gint) shape[0], W = (gint) shape[1];
  g_autofree guint8 *gray = g_malloc ((gsize) H * W), *got = g_malloc ((gsize) H * W);
  easel_rgb_to_gray_u8 (rgb, W, H, (gsize) W * 3, gray);
  if (easel_json_get (inputs, gray_name)) {
    const guint8 *want = u8_tensor (g, file, inputs, gray_name, o_shape, &o_nd, error);
    if (want == NULL)
      return FALSE;
    ok &= compare_u8 (g, "gray", gray, want, H, W);
  }

  for (gsize i = 0; i < easel_json_length (outputs); i++) {
    const char *name = easel_json_key_at (outputs, i);
    const char *leaf = strrchr (name, '/') ? strrchr (name, '/') + 1 : name;
    g_auto(GStrv) parts = g_strsplit (leaf, "_", -1);
    guint np = g_strv_length (parts);
    char *end1, *end2;
    if (np < 4 || strcmp (parts[0], "canny") != 0 || (strcmp (parts[1], "rgb") != 0 && strcmp (parts[1], "gray") != 0)
        || (np == 5 && strcmp (parts[4], "L2") != 0) || np > 5) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: output '%s' is not canny_<rgb|gray>_<low>_<high>[_L2]",
                   file, name);
      return FALSE;
    }
    double low = g_ascii_strtod (parts[2], &end1), high = g_ascii_strtod (parts[3], &end2);
    if (*end1 || *end2) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: output '%s': bad thresholds", file, name);
      return FALSE;
    }
    gboolean is_rgb = strcmp (parts[1], "rgb") == 0;
    const guint8 *want = u8_tensor (g, file, outputs, name, o_shape, &o_nd, error);
    if (want == NULL)
      return FALSE;
    if (o_nd != 2 || o_shape[0] != H || o_shape[1] != W) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: '%s' is not (%d, %d)", file, name, H, W);
      return FALSE;
    }
    if (!easel_canny (is_rgb ? rgb : gray, W, H, is_rgb ? 3 : 1, (gsize) W * (is_rgb ? 3 : 1), low, high, np == 5, got,
                      error))
      return FALSE;
    ok &= compare_u8 (g, leaf, got, want, H, W);
    n_checked++;
  }
  if (n_checked == 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "%s: case %s has no Canny outputs", file, case_name);
    return FALSE;
  }
  return ok;
}

const EaselGoldenKind easel_golden_kind_canny = { "canny", collect, run };
