/* app/cli/golden-t2i-adapter.c: golden kind "t2i-adapter": refs/t2iadapter cases t2iadapter/...
 * (README-r2 section 2): the adapter of models/t2iadapter_sd1_tiny/ on adapter_input gives
 * feature_0..N-1, and the base UNet with the features × 1.0 and × 0.5 added inside its down blocks
 * gives unet_output_scale_1.0 / _0.5. The pipe/ cases belong to the kind "adapter-pipeline". */
#include <string.h>

#include "engine/error.h"
#include "engine/t2i_adapter.h"
#include "golden-adapters.h"

static gboolean
accept (const char *name)
{
  return g_str_has_prefix (name, "t2iadapter/");
}

static void
collect (EaselGolden *g, GPtrArray *cases)
{
  easel_golden_collect_refs (g, cases, "t2iadapter", accept);
}

static gboolean
run (EaselGolden *g, EaselGoldenCase *c, GError **error)
{
  const char *case_name = strchr (c->name, '/') ? strchr (c->name, '/') + 1 : c->name;
  g_autofree char *folder = g_build_filename (easel_golden_dir (g), "models", "t2iadapter_sd1_tiny", NULL);
  g_autoptr(EaselCheckpoint) base = NULL, ck = NULL;
  g_autoptr(EaselUnet) unet = NULL;
  g_autoptr(EaselT2IAdapter) ad = NULL;
  g_autoptr(EaselGraph) gr = easel_graph_new ();
  g_autoptr(EaselBackend) backend = NULL;
  g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func (g_free);
  EaselTensor *f1[EASEL_T2I_MAX_LEVELS], *f05[EASEL_T2I_MAX_LEVELS];
  double atol, rtol;
  gboolean ok = TRUE;

  if ((unet = easel_golden_adapter_base_unet (g, &base, error)) == NULL)
    return FALSE;
  if ((ck = easel_checkpoint_open (folder, error)) == NULL || (ad = easel_t2i_adapter_new (ck, NULL, error)) == NULL)
    return FALSE;

  g_autofree char *n_img = g_strconcat (case_name, "/adapter_input", NULL), *n_x = g_strconcat (case_name, "/sample", NULL);
  g_autofree char *n_t = g_strconcat (case_name, "/timestep", NULL), *n_ctx = g_strconcat (case_name, "/encoder_hidden_states", NULL);
  EaselTensor *img, *x, *t, *ctx;
  if ((img = easel_golden_adapter_input (g, gr, c, n_img, keep, error)) == NULL
      || (x = easel_golden_adapter_input (g, gr, c, n_x, keep, error)) == NULL
      || (t = easel_golden_adapter_input (g, gr, c, n_t, keep, error)) == NULL
      || (ctx = easel_golden_adapter_input (g, gr, c, n_ctx, keep, error)) == NULL)
    return FALSE;
  int n = easel_t2i_adapter_build (ad, gr, img, 1.0f, f1);
  easel_t2i_adapter_build (ad, gr, img, 0.5f, f05);
  EaselUnetExtras e1 = { .down_block_additions = f1, .n_down_block_additions = n };
  EaselUnetExtras e05 = { .down_block_additions = f05, .n_down_block_additions = n };
  EaselTensor *y1 = easel_unet_build (unet, gr, x, t, ctx, NULL, NULL, &e1, NULL);
  EaselTensor *y05 = easel_unet_build (unet, gr, x, t, ctx, NULL, NULL, &e05, NULL);
  if (easel_graph_error (gr)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s", easel_graph_error (gr)->message);
    return FALSE;
  }
  for (int i = 0; i < n; i++)
    easel_graph_mark_output (gr, f1[i]);
  easel_graph_mark_output (gr, y1);
  easel_graph_mark_output (gr, y05);
  backend = easel_golden_new_backend (g, error);
  if (backend == NULL || !easel_backend_compute (backend, gr, error))
    return FALSE;

  easel_golden_tolerance (c->spec, 1e-4, 0.0, &atol, &rtol);
  int n_want = 0;
  for (;; n_want++) {
    g_autofree char *name = g_strdup_printf ("%s/feature_%d", case_name, n_want);
    if (n_want >= EASEL_T2I_MAX_LEVELS || !easel_golden_adapter_has (c, name))
      break;
  }
  if (n_want != n) {
    easel_golden_fail (g, "%d features, the reference has %d", n, n_want);
    return FALSE;
  }
  for (int i = 0; i < n && (error == NULL || *error == NULL); i++) {
    g_autofree char *name = g_strdup_printf ("%s/feature_%d", case_name, i), *label = g_strdup_printf ("feature_%d", i);
    ok &= easel_golden_adapter_check (g, backend, c, f1[i], name, label, atol, rtol, error);
  }
  g_autofree char *n_y1 = g_strconcat (case_name, "/unet_output_scale_1.0", NULL);
  g_autofree char *n_y05 = g_strconcat (case_name, "/unet_output_scale_0.5", NULL);
  ok &= easel_golden_adapter_check (g, backend, c, y1, n_y1, "unet_output_scale_1.0", atol, rtol, error);
  ok &= easel_golden_adapter_check (g, backend, c, y05, n_y05, "unet_output_scale_0.5", atol, rtol, error);
  return ok && (error == NULL || *error == NULL);
}

const EaselGoldenKind easel_golden_kind_t2i_adapter = { "t2i-adapter", collect, run };
