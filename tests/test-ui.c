/* tests/test-ui.c: the `ui` suite: the real application and window under Xvfb, every test in
 * its own temporary HOME and XDG user folders (set up in main), so the demo model is
 * written there and nothing touches the person's own folders. With no model chosen the window
 * generates with the built-in demo model (small size, few steps, to keep the suite short on a
 * 2-core CI machine): a live preview and then the image reach the canvas, and a PNG with its
 * parameters chunk lands in the output folder and the history. It cancels a run mid-way and
 * generates again, paints a mask stroke and checks the mask buffer, runs a two-sampler
 * comparison (two cells filled, the grid saved as one PNG), shows load and output-folder errors
 * as toasts, restores settings from a parameters text, binds the GPU memory limit of the preferences to its
 * setting, and saves a screenshot of each state
 * under $EASEL_UI_ARTIFACTS (the build folder). */
#include <glib/gstdio.h>
#include <string.h>

#include "easel-application.h"
#include "easel-compare-view.h"
#include "easel-history-view.h"
#include "easel-model-list.h"
#include "easel-preferences.h"
#include "easel-prompt-panel.h"
#include "easel-window.h"

static EaselApplication *the_app;

typedef struct {
  EaselApplication *app;
  EaselWindow *win;
  char *output_dir;
  /* what the worker said, counted through its signals */
  guint n_previews, n_progress;
  int last_step, last_total;
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

/* The first widget of a type in the window (template children are private to the window). */
static GtkWidget *
find_in (GtkWidget *w, GType type)
{
  for (GtkWidget *c = gtk_widget_get_first_child (w); c; ) {
    if (G_TYPE_CHECK_INSTANCE_TYPE (c, type))
      return c;
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
  g_assert_not_reached ();
  return NULL;
}

static GtkWidget *
find_widget (Fixture *f, GType type)
{
  return find_in (GTK_WIDGET (f->win), type);
}

static gboolean
models_listed (Fixture *f)
{
  return easel_prompt_panel_get_models (EASEL_PROMPT_PANEL (find_widget (f, EASEL_TYPE_PROMPT_PANEL))) != NULL;
}

static gboolean
idle_and_toasted (Fixture *f)
{
  return !easel_window_is_running (f->win) && easel_window_get_last_toast (f->win) != NULL;
}

static void
on_worker_preview (Fixture *f, guint id, GdkTexture *texture)
{
  g_assert_true (GDK_IS_TEXTURE (texture));
  f->n_previews++;
}

static void
on_worker_progress (Fixture *f, guint id, int step, int total, double eta)
{
  f->n_progress++;
  f->last_step = step;
  f->last_total = total;
}

static gboolean
idle (Fixture *f)
{
  return !easel_window_is_running (f->win);
}

static gboolean
stepping (Fixture *f)
{
  return f->last_step >= 1;
}

/* PNG files in the output folder, sorted. transfer full. */
static GPtrArray *
output_files (Fixture *f)
{
  GPtrArray *files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GDir) dir = g_dir_open (f->output_dir, 0, NULL);
  const char *name;
  while (dir && (name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_suffix (name, ".png"))
      g_ptr_array_add (files, g_build_filename (f->output_dir, name, NULL));
  g_ptr_array_sort (files, (GCompareFunc) g_strcmp0);
  return files;
}

static gboolean
one_output (Fixture *f)
{
  g_autoptr(GPtrArray) files = output_files (f);
  return !easel_window_is_running (f->win) && files->len >= 1;
}

/* the saved result reached the history page (its thumbnail is read in the background) */
static gboolean
history_filled (Fixture *f)
{
  GListModel *history = easel_history_view_get_model (EASEL_HISTORY_VIEW (find_widget (f, EASEL_TYPE_HISTORY_VIEW)));
  return g_list_model_get_n_items (history) >= 1;
}

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr(GSettings) settings = g_settings_new (EASEL_APP_ID);
  /* the test data's models (their names for restoring settings) when asked, else an empty folder:
   * no checkpoint to pick, so the window uses the demo model */
  g_autofree char *models = data ? g_build_filename (g_getenv ("EASEL_TESTDATA"), "models", NULL)
                                 : g_build_filename (g_get_user_data_dir (), "models", NULL);
  g_mkdir_with_parents (models, 0755);
  f->output_dir = g_dir_make_tmp ("easel-ui-XXXXXX", NULL);
  g_settings_set_string (settings, "models-folder", models);
  g_settings_set_string (settings, "output-folder", f->output_dir);
  g_settings_set_string (settings, "prompt", "a (red:1.3) fox in the [snow], BREAK watercolor");
  g_settings_set_string (settings, "negative-prompt", "blurry");
  g_settings_set_string (settings, "backend", "cpu");
  /* the demo model (no checkpoint chosen), small and quick */
  g_settings_set_string (settings, "model", "");
  g_settings_set_int (settings, "width", 128);
  g_settings_set_int (settings, "height", 128);
  g_settings_set_int (settings, "steps", 6);
  g_settings_set_int (settings, "batch-size", 1);
  g_settings_set_int (settings, "batch-count", 1);
  g_settings_set_string (settings, "sampler", "euler");
  g_settings_set_boolean (settings, "randomize-seed", FALSE);
  g_settings_set_int64 (settings, "seed", 1234);
  g_settings_set_string (settings, "compare-axis", "none");

  /* one application for the whole run (a D-Bus name is registered once), a new window per test */
  f->app = g_object_ref (the_app);
  f->win = easel_window_new (f->app);
  gtk_window_present (GTK_WINDOW (f->win));
  g_assert_nonnull (f->win);
  gtk_window_set_default_size (GTK_WINDOW (f->win), 1280, 820);
  EaselWorker *worker = easel_application_get_worker (f->app);
  g_signal_connect_swapped (worker, "preview", G_CALLBACK (on_worker_preview), f);
  g_signal_connect_swapped (worker, "progress", G_CALLBACK (on_worker_progress), f);
  g_assert_true (wait_for (models_listed, f, 20000));
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  g_signal_handlers_disconnect_by_data (easel_application_get_worker (f->app), f);
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

/* The parameters text of a PNG (transfer full), asserting it has one. */
static char *
png_parameters (const char *path, int *width, int *height)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselPngInfo) info = NULL;
  g_autoptr(EaselImage) im = easel_png_load (path, &info, &error);
  g_assert_no_error (error);
  *width = im->width;
  *height = im->height;
  const EaselPngText *t = easel_png_info_find_text (info, EASEL_PARAMETERS_KEY);
  g_assert_nonnull (t);
  return g_strdup (t->text);
}

static void
test_window_generate (Fixture *f, gconstpointer data)
{
  GtkWidget *title = find_widget (f, ADW_TYPE_VIEW_SWITCHER_TITLE);
  const char *subtitle = adw_view_switcher_title_get_subtitle (ADW_VIEW_SWITCHER_TITLE (title));
  g_test_message ("subtitle: %s", subtitle);
  g_assert_nonnull (strstr (subtitle, "built-in demo model"));
  screenshot (f, "01-window");

  /* Generate with the demo model: previews, then the image in the canvas and a PNG with its
   * parameters in the output folder and the history */
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (f->win), "win.generate", NULL));
  g_assert_true (easel_window_is_running (f->win));
  g_assert_true (wait_for (one_output, f, 60000));
  g_test_message ("previews %u, progress reports %u, toast %s", f->n_previews, f->n_progress,
                  easel_window_get_last_toast (f->win));
  g_assert_cmpuint (f->n_previews, >=, 1);
  g_assert_true (g_str_has_prefix (easel_window_get_last_toast (f->win), "Using the built-in demo model"));
  g_assert_cmpint (f->last_step, ==, 6);
  g_assert_cmpint (f->last_total, ==, 6);
  EaselCanvas *canvas = easel_window_get_canvas (f->win);
  const EaselImage *result = easel_canvas_get_result (canvas);
  g_assert_nonnull (result);
  g_assert_cmpint (result->width, ==, 128);
  g_assert_cmpint (result->height, ==, 128);
  GdkTexture *shown = easel_canvas_area_get_texture (easel_canvas_get_area (canvas));
  g_assert_nonnull (shown);
  g_assert_cmpint (gdk_texture_get_width (shown), ==, 128);
  g_assert_null (easel_canvas_area_get_preview (easel_canvas_get_area (canvas)));   /* the preview is gone */
  /* an image of the demo's random network still varies: not one flat colour */
  guint8 lo = 255, hi = 0;
  for (gsize i = 0; i < (gsize) result->stride * result->height; i++)
    lo = MIN (lo, result->pixels[i]), hi = MAX (hi, result->pixels[i]);
  g_assert_cmpuint (hi - lo, >, 10);

  g_autoptr(GPtrArray) files = output_files (f);
  g_assert_cmpuint (files->len, ==, 1);
  g_assert_true (g_str_has_suffix (files->pdata[0], "-1234.png"));
  int w, h;
  g_autofree char *params = png_parameters (files->pdata[0], &w, &h);
  g_test_message ("%s: %s", (char *) files->pdata[0], params);
  g_assert_cmpint (w, ==, 128);
  g_assert_cmpint (h, ==, 128);
  g_assert_true (g_str_has_prefix (params, "a (red:1.3) fox in the [snow], BREAK watercolor\nNegative prompt: blurry\n"));
  g_assert_nonnull (strstr (params, "Steps: 6, Sampler: Euler"));
  g_assert_nonnull (strstr (params, "Seed: 1234"));
  g_assert_nonnull (strstr (params, "Size: 128x128"));
  g_assert_true (wait_for (history_filled, f, 20000));
  screenshot (f, "02-generated");
}

static void
test_window_cancel (Fixture *f, gconstpointer data)
{
  /* a longer run, cancelled once the first steps are in */
  g_autoptr(GSettings) settings = g_settings_new (EASEL_APP_ID);
  g_settings_set_int (settings, "width", 256);
  g_settings_set_int (settings, "height", 256);
  g_settings_set_int (settings, "steps", 150);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (f->win), "win.generate", NULL));
  g_assert_true (wait_for (stepping, f, 60000));
  g_assert_true (easel_window_is_running (f->win));
  screenshot (f, "03-running");
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (f->win), "win.cancel", NULL));
  g_assert_true (wait_for (idle, f, 30000));
  g_test_message ("cancelled at step %d of %d; toast %s", f->last_step, f->last_total,
                  easel_window_get_last_toast (f->win));
  g_assert_cmpint (f->last_step, <, f->last_total);
  g_assert_cmpstr (easel_window_get_last_toast (f->win), ==, "Generation cancelled");
  g_autoptr(GPtrArray) none = output_files (f);
  g_assert_cmpuint (none->len, ==, 0);   /* nothing saved from a cancelled run */
  g_assert_null (easel_canvas_get_result (easel_window_get_canvas (f->win)));
  screenshot (f, "04-cancelled");

  /* the window is usable: the next Generate runs to the end */
  g_settings_set_int (settings, "width", 128);
  g_settings_set_int (settings, "height", 128);
  g_settings_set_int (settings, "steps", 4);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (f->win), "win.generate", NULL));
  g_assert_true (wait_for (one_output, f, 60000));
  g_assert_cmpint (f->last_step, ==, 4);
  g_assert_nonnull (easel_canvas_get_result (easel_window_get_canvas (f->win)));
  screenshot (f, "05-generated-after-cancel");
}

static gboolean
compare_done (Fixture *f)
{
  EaselCompareView *view = EASEL_COMPARE_VIEW (find_widget (f, EASEL_TYPE_COMPARE_VIEW));
  return !easel_compare_view_is_running (view) && !easel_window_is_running (f->win);
}

static gboolean
grid_saved (Fixture *f)
{
  return easel_compare_view_get_saved_path (EASEL_COMPARE_VIEW (find_widget (f, EASEL_TYPE_COMPARE_VIEW))) != NULL;
}

static void
test_window_compare (Fixture *f, gconstpointer data)
{
  g_autoptr(GSettings) settings = g_settings_new (EASEL_APP_ID);
  g_settings_set_string (settings, "compare-samplers", "Euler, DPM++ 2M");
  g_settings_set_int (settings, "steps", 4);
  EaselCompareView *view = EASEL_COMPARE_VIEW (find_widget (f, EASEL_TYPE_COMPARE_VIEW));
  easel_window_show_page (f->win, "compare");
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (view), "compare.run", NULL));
  g_assert_true (easel_compare_view_is_running (view));
  g_assert_true (wait_for (compare_done, f, 60000));
  const EaselCompareGrid *grid = easel_compare_view_get_grid (view);
  g_assert_cmpint (easel_compare_grid_n_columns (grid), ==, 2);
  g_assert_cmpint (easel_compare_grid_n_filled (grid), ==, 2);
  g_assert_cmpuint (f->n_previews, >=, 2);
  /* the samplers differ, so do the images */
  const EaselImage *a = easel_compare_grid_get_cell (grid, 0, 0), *b = easel_compare_grid_get_cell (grid, 1, 0);
  g_assert_cmpint (a->width, ==, 128);
  g_assert_true (memcmp (a->pixels, b->pixels, (gsize) a->stride * a->height) != 0);
  g_autofree char *caption = easel_compare_grid_cell_caption (grid, 1, 0);
  g_test_message ("caption: %s", caption);
  g_assert_true (g_str_has_prefix (caption, "DPM++ 2M: "));
  g_assert_true (g_str_has_suffix (caption, " s"));
  screenshot (f, "06-compare");

  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (view), "compare.save", NULL));
  g_assert_true (wait_for (grid_saved, f, 20000));
  const char *path = easel_compare_view_get_saved_path (view);
  g_test_message ("grid: %s", path);
  g_assert_true (g_str_has_suffix (path, "-grid.png"));
  EaselCompareLayout l;
  easel_compare_grid_layout (grid, &l);
  int w, h;
  g_autofree char *params = png_parameters (path, &w, &h);
  g_assert_cmpint (w, ==, l.width);
  g_assert_cmpint (h, ==, l.height);
  g_assert_nonnull (strstr (params, "Sampler: Euler"));   /* the first cell's, as A1111 saves a grid */
  const char *artifacts = g_getenv ("EASEL_UI_ARTIFACTS");
  if (artifacts) {
    g_autofree char *copy = g_build_filename (artifacts, "07-compare-grid.png", NULL);
    g_autofree char *contents = NULL;
    gsize len;
    g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
    g_assert_true (g_file_set_contents (copy, contents, (gssize) len, NULL));
  }
}

static void
test_window_errors (Fixture *f, gconstpointer data)
{
  g_autoptr(GSettings) settings = g_settings_new (EASEL_APP_ID);

  /* an output folder that cannot be made (its parent is a file): said before any work */
  g_autofree char *file = g_build_filename (f->output_dir, "not-a-folder", NULL);
  g_assert_true (g_file_set_contents (file, "x", 1, NULL));
  g_autofree char *bad_folder = g_build_filename (file, "out", NULL);
  g_settings_set_string (settings, "output-folder", bad_folder);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (f->win), "win.generate", NULL));
  g_assert_false (easel_window_is_running (f->win));
  const char *toast = easel_window_get_last_toast (f->win);
  g_test_message ("toast: %s", toast);
  g_assert_true (g_str_has_prefix (toast, "Results cannot be saved: "));
  g_assert_nonnull (strstr (toast, bad_folder));
  g_assert_nonnull (strstr (toast, "Preferences"));
  screenshot (f, "08-error-output-folder");
  g_settings_set_string (settings, "output-folder", f->output_dir);
  g_remove (file);

  /* a checkpoint that is not one: the cause and what to do */
  g_autofree char *bad_model = g_build_filename (g_get_user_data_dir (), "broken.safetensors", NULL);
  g_mkdir_with_parents (g_get_user_data_dir (), 0755);
  g_assert_true (g_file_set_contents (bad_model, "this is not a checkpoint", -1, NULL));
  g_settings_set_string (settings, "model", bad_model);
  g_assert_true (gtk_widget_activate_action (GTK_WIDGET (f->win), "win.generate", NULL));
  g_assert_true (wait_for (idle_and_toasted, f, 30000));
  toast = easel_window_get_last_toast (f->win);
  g_test_message ("toast: %s", toast);
  g_assert_true (g_str_has_prefix (toast, "Generation failed: The model broken.safetensors could not be loaded ("));
  g_assert_nonnull (strstr (toast, "choose another checkpoint"));
  g_autoptr(GPtrArray) none = output_files (f);
  g_assert_cmpuint (none->len, ==, 0);
  screenshot (f, "09-error-model");
  g_settings_set_string (settings, "model", "");
}

/* the GPU memory limit of the preferences is the max-vram setting, both ways */
static void
test_preferences_max_vram (Fixture *f, gconstpointer data)
{
  g_autoptr(GSettings) settings = g_settings_new (EASEL_APP_ID);
  EaselPreferences *prefs = easel_preferences_new (settings);
  GtkSpinButton *spin = GTK_SPIN_BUTTON (find_in (GTK_WIDGET (prefs), GTK_TYPE_SPIN_BUTTON));
  g_assert_cmpfloat (gtk_spin_button_get_value (spin), ==, 0.0);
  gtk_spin_button_set_value (spin, 6.5);
  g_assert_cmpfloat (g_settings_get_double (settings, "max-vram"), ==, 6.5);
  g_settings_set_double (settings, "max-vram", 0.0);
  g_assert_cmpfloat (gtk_spin_button_get_value (spin), ==, 0.0);
  gtk_window_destroy (GTK_WINDOW (prefs));
}

static void
test_window_mask (Fixture *f, gconstpointer data)
{
  EaselCanvas *canvas = easel_window_get_canvas (f->win);
  EaselCanvasArea *area = easel_canvas_get_area (canvas);
  EaselMask *mask = easel_canvas_area_get_mask (area);
  g_object_set (area, "brush-size", 40.0, "brush-hardness", 1.0, NULL);
  g_assert_true (easel_mask_is_empty (mask));

  /* the canvas's mask is the generation size */
  g_autoptr(GSettings) size_settings = g_settings_new (EASEL_APP_ID);
  g_settings_set_int (size_settings, "width", 512);
  g_settings_set_int (size_settings, "height", 512);
  g_assert_cmpint (easel_mask_width (mask), ==, 512);
  const double stroke[] = { 100, 256, 250, 200, 400, 300 };
  easel_canvas_area_paint_stroke (area, EASEL_MASK_BRUSH, stroke, 3);
  g_assert_cmpuint (easel_mask_get (mask, 100, 256), ==, 255);
  g_assert_cmpuint (easel_mask_get (mask, 250, 200), ==, 255);
  g_assert_cmpuint (easel_mask_get (mask, 400, 300), ==, 255);
  g_assert_cmpuint (easel_mask_get (mask, 250, 300), ==, 0);   /* well off the stroke */
  g_assert_cmpuint (easel_mask_get (mask, 10, 10), ==, 0);
  wait_for (idle_and_toasted, f, 0);
  screenshot (f, "10-mask-stroke");

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
  screenshot (f, "11-restored");
  g_settings_set_string (settings, "model", "");
}

int
main (int argc, char *argv[])
{
  /* Own temporary HOME and XDG user folders, but the system's XDG_DATA_DIRS (the icon theme lives
   * there; G_TEST_OPTION_ISOLATE_DIRS would hide it and the screenshots would show missing icons). */
  g_autofree char *home = g_dir_make_tmp ("easel-ui-home-XXXXXX", NULL);
  static const char *const subdirs[][2] = {
    { "XDG_CONFIG_HOME", ".config" }, { "XDG_DATA_HOME", ".local/share" }, { "XDG_CACHE_HOME", ".cache" },
  };
  g_assert_nonnull (home);
  g_setenv ("HOME", home, TRUE);
  for (guint i = 0; i < G_N_ELEMENTS (subdirs); i++) {
    g_autofree char *d = g_build_filename (home, subdirs[i][1], NULL);
    g_mkdir_with_parents (d, 0700);
    g_setenv (subdirs[i][0], d, TRUE);
  }
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
  g_test_add ("/ui/generate", Fixture, NULL, fixture_set_up, test_window_generate, fixture_tear_down);
  g_test_add ("/ui/cancel", Fixture, NULL, fixture_set_up, test_window_cancel, fixture_tear_down);
  g_test_add ("/ui/compare", Fixture, NULL, fixture_set_up, test_window_compare, fixture_tear_down);
  g_test_add ("/ui/errors", Fixture, NULL, fixture_set_up, test_window_errors, fixture_tear_down);
  g_test_add ("/ui/mask", Fixture, NULL, fixture_set_up, test_window_mask, fixture_tear_down);
  g_test_add ("/ui/preferences-max-vram", Fixture, NULL, fixture_set_up, test_preferences_max_vram, fixture_tear_down);
  g_test_add ("/ui/restore", Fixture, "testdata", fixture_set_up, test_window_restore, fixture_tear_down);
  int ret = g_test_run ();
  g_application_release (G_APPLICATION (the_app));
  g_object_unref (the_app);
  return ret;
}
