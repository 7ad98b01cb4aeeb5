/* tests/test-ui.c: the `ui` suite: the real application and window under Xvfb. It generates
 * through win.generate (until the pipeline exists the engine's error must reach the window as a
 * toast), cancels a job and generates again, paints a mask stroke through the canvas API and
 * checks the mask buffer, restores settings from a parameters text, and saves a screenshot of
 * each state under $EASEL_UI_ARTIFACTS (the build folder). The models folder is the test data's
 * models/ folder, so the model chooser lists the tiny checkpoints with their families. */
#include <glib/gstdio.h>
#include <string.h>

#include "easel-application.h"
#include "easel-model-list.h"
#include "easel-prompt-panel.h"
#include "easel-window.h"

static EaselApplication *the_app;

typedef struct {
  EaselApplication *app;
  EaselWindow *win;
  char *output_dir;
} Fixture;

/* Runs the main loop until cond (data) holds or timeout_ms pass. */
static gboolean
wait_for (gboolean (*cond) (Fixture *), Fixture *f, guint timeout_ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) timeout_ms * 1000;
  while (!cond (f)) {
    if (g_get_monotonic_time () > end)
      return FALSE;
    g_main_context_iteration (NULL, FALSE);
    g_usleep (2000);
  }
  /* let layout and drawing catch up */
  for (int i = 0; i < 50; i++)
    g_main_context_iteration (NULL, FALSE);
  return TRUE;
}

static void
screenshot (Fixture *f, const char *name)
{
  const char *dir = g_getenv ("EASEL_UI_ARTIFACTS");
  if (dir == NULL)
    return;
  g_mkdir_with_parents (dir, 0755);
  GtkWidget *w = GTK_WIDGET (f->win);
  int width = gtk_widget_get_width (w), height = gtk_widget_get_height (w);
  g_assert_cmpint (width, >, 0);
  g_autoptr(GdkPaintable) paintable = gtk_widget_paintable_new (w);
  g_autoptr(GskRenderNode) node = NULL;
  /* let animations (toasts sliding in) finish: 600 ms of main loop */
  gint64 settle = g_get_monotonic_time () + 600 * 1000;
  while (g_get_monotonic_time () < settle) {
    g_main_context_iteration (NULL, FALSE);
    g_usleep (5000);
  }
  /* the paintable holds the last frame drawn: let the frame clock draw one */
  gtk_widget_queue_draw (w);
  for (int i = 0; i < 400 && node == NULL; i++) {
    g_main_context_iteration (NULL, FALSE);
    g_usleep (5000);
    GtkSnapshot *snapshot = gtk_snapshot_new ();
    gdk_paintable_snapshot (paintable, snapshot, width, height);
    node = gtk_snapshot_free_to_node (snapshot);
  }
  g_assert_nonnull (node);
  GskRenderer *renderer = gtk_native_get_renderer (gtk_widget_get_native (w));
  g_autoptr(GdkTexture) tex = gsk_renderer_render_texture (renderer, node, &GRAPHENE_RECT_INIT (0, 0, width, height));
  g_autofree char *path = g_strdup_printf ("%s/%s.png", dir, name);
  g_assert_true (gdk_texture_save_to_png (tex, path));
  g_test_message ("screenshot: %s", path);
}

static gboolean
models_listed (Fixture *f)
{
  EaselPromptPanel *panel = NULL;
  /* the panel is a template child; find it through the window's focus chain is overkill: use its type */
  GtkWidget *w = GTK_WIDGET (f->win);
  for (GtkWidget *c = gtk_widget_get_first_child (w); c; ) {
    if (EASEL_IS_PROMPT_PANEL (c)) {
      panel = EASEL_PROMPT_PANEL (c);
      break;
    }
    GtkWidget *next = gtk_widget_get_first_child (c);
    while (next == NULL && c != w) {
      next = gtk_widget_get_next_sibling (c);
      if (next == NULL)
        c = gtk_widget_get_parent (c);
    }
    if (c == w)
      break;
    c = next;
  }
  g_assert_nonnull (panel);
  return easel_prompt_panel_get_models (panel) != NULL;
}

static gboolean
idle_and_toasted (Fixture *f)
{
  return !easel_window_is_running (f->win) && easel_window_get_last_toast (f->win) != NULL;
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr(GSettings) settings = g_settings_new (EASEL_APP_ID);
  g_autofree char *models = g_build_filename (g_getenv ("EASEL_TESTDATA"), "models", NULL);
  f->output_dir = g_dir_make_tmp ("easel-ui-XXXXXX", NULL);
  g_settings_set_string (settings, "models-folder", models);
  g_settings_set_string (settings, "output-folder", f->output_dir);
  g_settings_set_string (settings, "prompt", "a (red:1.3) fox in the [snow], BREAK watercolor");
  g_settings_set_string (settings, "negative-prompt", "blurry");
  g_settings_set_string (settings, "backend", "cpu");

  /* one application for the whole run (a D-Bus name is registered once), a new window per test */
  f->app = g_object_ref (the_app);
  f->win = easel_window_new (f->app);
  gtk_window_present (GTK_WINDOW (f->win));
  g_assert_nonnull (f->win);
  gtk_window_set_default_size (GTK_WINDOW (f->win), 1280, 820);
  g_assert_true (wait_for (models_listed, f, 20000));
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  gtk_window_destroy (GTK_WINDOW (f->win));
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_clear_object (&f->app);
  g_autoptr(GDir) dir = g_dir_open (f->output_dir, 0, NULL);
  const char *name;
  while (dir && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *p = g_build_filename (f->output_dir, name, NULL);
    g_remove (p);
  }
  g_rmdir (f->output_dir);
  g_free (f->output_dir);
}

static void
test_window_generate (Fixture *f, gconstpointer data)
{
  screenshot (f, "01-window");

  /* Generate: the job goes to the engine thread; the engine's answer comes back as a toast */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (f->win), "win.generate", NULL));
  g_assert_true (wait_for (idle_and_toasted, f, 30000));
  const char *toast = easel_window_get_last_toast (f->win);
  g_test_message ("toast: %s", toast);
  /* until easel_generate exists: the cause, not just "failed" */
  g_assert_true (g_str_has_prefix (toast, "Generation failed: "));
  g_assert_cmpuint (strlen (toast), >, strlen ("Generation failed: ") + 10);
  screenshot (f, "02-generate-error-toast");

  /* Cancel right after Generate, then Generate again: the window comes back to idle each time */
  g_autoptr(GSettings) settings = g_settings_new (EASEL_APP_ID);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (f->win), "win.generate", NULL));
  g_assert_true (easel_window_is_running (f->win));
  screenshot (f, "03-running");
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (f->win), "win.cancel", NULL));
  g_assert_true (wait_for (idle_and_toasted, f, 30000));
  toast = easel_window_get_last_toast (f->win);
  g_test_message ("after cancel: %s", toast);
  g_assert_true (g_str_equal (toast, "Generation cancelled") || g_str_has_prefix (toast, "Generation failed: "));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (f->win), "win.generate", NULL));
  g_assert_true (wait_for (idle_and_toasted, f, 30000));
  g_assert_false (easel_window_is_running (f->win));
}

static void
test_window_mask (Fixture *f, gconstpointer data)
{
  EaselCanvas *canvas = easel_window_get_canvas (f->win);
  EaselCanvasArea *area = easel_canvas_get_area (canvas);
  EaselMask *mask = easel_canvas_area_get_mask (area);
  g_object_set (area, "brush-size", 40.0, "brush-hardness", 1.0, NULL);
  g_assert_true (easel_mask_is_empty (mask));

  /* the canvas's mask is the generation size (512 x 512 by default) */
  g_assert_cmpint (easel_mask_width (mask), ==, 512);
  const double stroke[] = { 100, 256, 250, 200, 400, 300 };
  easel_canvas_area_paint_stroke (area, EASEL_MASK_BRUSH, stroke, 3);
  g_assert_cmpuint (easel_mask_get (mask, 100, 256), ==, 255);
  g_assert_cmpuint (easel_mask_get (mask, 250, 200), ==, 255);
  g_assert_cmpuint (easel_mask_get (mask, 400, 300), ==, 255);
  g_assert_cmpuint (easel_mask_get (mask, 250, 300), ==, 0);   /* well off the stroke */
  g_assert_cmpuint (easel_mask_get (mask, 10, 10), ==, 0);
  wait_for (idle_and_toasted, f, 0);
  screenshot (f, "04-mask-stroke");

  /* undo through the canvas action, then redo */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (canvas), "canvas.undo", NULL));
  g_assert_true (easel_mask_is_empty (easel_canvas_area_get_mask (area)));
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (canvas), "canvas.redo", NULL));
  g_assert_cmpuint (easel_mask_get (easel_canvas_area_get_mask (area), 250, 200), ==, 255);

  /* the mask survives a change of prompt and steps */
  g_autoptr(GSettings) settings = g_settings_new (EASEL_APP_ID);
  g_settings_set_string (settings, "prompt", "another prompt");
  g_settings_set_int (settings, "steps", 31);
  g_assert_cmpuint (easel_mask_get (easel_canvas_area_get_mask (area), 250, 200), ==, 255);
}

static void
test_window_restore (Fixture *f, gconstpointer data)
{
  g_autoptr(GSettings) settings = g_settings_new (EASEL_APP_ID);
  easel_window_restore_parameters (f->win,
                                   "a lighthouse at dusk\nNegative prompt: fog\nSteps: 12, Sampler: DPM++ 2M, "
                                   "Schedule type: Karras, CFG scale: 4.5, Seed: 77, Size: 768x512, Model: sd1_tiny",
                                   "test.png");
  g_autofree char *prompt = g_settings_get_string (settings, "prompt");
  g_autofree char *sampler = g_settings_get_string (settings, "sampler");
  g_autofree char *model = g_settings_get_string (settings, "model");
  g_assert_cmpstr (prompt, ==, "a lighthouse at dusk");
  g_assert_cmpstr (sampler, ==, "dpmpp_2m");
  g_assert_cmpint (g_settings_get_int (settings, "steps"), ==, 12);
  g_assert_cmpint (g_settings_get_int (settings, "width"), ==, 768);
  g_test_message ("model: %s toast %s", model, easel_window_get_last_toast (f->win));
  g_assert_true (g_str_has_suffix (model, "sd1_tiny.safetensors"));   /* matched by name in the models folder */
  g_assert_true (g_str_has_prefix (easel_window_get_last_toast (f->win), "Settings restored from test.png"));
  /* the canvas follows the new size */
  EaselMask *mask = easel_canvas_area_get_mask (easel_canvas_get_area (easel_window_get_canvas (f->win)));
  wait_for (idle_and_toasted, f, 0);
  g_assert_cmpint (easel_mask_width (mask), ==, 768);
  screenshot (f, "05-restored");
}

int
main (int argc, char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  /* Without a D-Bus session bus (no dbus-run-session) GtkApplication warns once and carries on:
   * warnings are printed, criticals stay fatal. */
  if (g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL)
    g_log_set_always_fatal (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
  if (!gtk_init_check ()) {
    g_test_skip ("no display (xvfb-run is not installed)");
    return g_test_run ();
  }
  adw_init ();
  the_app = easel_application_new ();
  g_application_set_flags (G_APPLICATION (the_app), G_APPLICATION_NON_UNIQUE);
  g_assert_true (g_application_register (G_APPLICATION (the_app), NULL, NULL));
  g_application_hold (G_APPLICATION (the_app));
  g_test_add ("/ui/generate-cancel", Fixture, NULL, fixture_set_up, test_window_generate, fixture_tear_down);
  g_test_add ("/ui/mask", Fixture, NULL, fixture_set_up, test_window_mask, fixture_tear_down);
  g_test_add ("/ui/restore", Fixture, NULL, fixture_set_up, test_window_restore, fixture_tear_down);
  int ret = g_test_run ();
  g_application_release (G_APPLICATION (the_app));
  g_object_unref (the_app);
  return ret;
}
