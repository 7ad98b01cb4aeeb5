/* app/easel-window.c: the main window (easel-window.h), template ui/easel-window.ui. Follows
 * gnome-text-editor's editor-window.c: template children, actions installed on the class, the
 * suspend inhibitor held while jobs run. */
#include "easel-window.h"

#include <glib/gi18n.h>
#include <string.h>

#include "easel-compare-view.h"
#include "easel-history-view.h"
#include "easel-image-io.h"
#include "easel-prompt-panel.h"
#include "easel-sampler-panel.h"

struct _EaselWindow {
  AdwApplicationWindow parent_instance;

  /* template children */
  AdwToastOverlay *toast_overlay;
  GtkStack *generate_stack;
  AdwViewStack *view_stack;
  AdwViewSwitcherTitle *switcher_title;
  EaselPromptPanel *prompt_panel;
  EaselSamplerPanel *sampler_panel;
  EaselCanvas *canvas;
  EaselHistoryView *history_view;
  EaselCompareView *compare_view;

  GSettings *settings;
  EaselWorker *worker;
  GArray *jobs;                  /* guint ids of this window's Generate jobs */
  guint inhibit_cookie;
  char *last_toast;
  gboolean demo_said;            /* the demo-model toast was shown */
  AdwToast *error_toast;         /* the last error toast (it stays until dismissed), or NULL */
  GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE (EaselWindow, easel_window, ADW_TYPE_APPLICATION_WINDOW)

EaselCanvas *
easel_window_get_canvas (EaselWindow *self)
{
  return self->canvas;
}

const char *
easel_window_get_last_toast (EaselWindow *self)
{
  return self->last_toast;
}

void
easel_window_show_page (EaselWindow *self, const char *name)
{
  adw_view_stack_set_visible_child_name (self->view_stack, name);
}

static void
dismiss_error_toast (EaselWindow *self)
{
  if (self->error_toast)
    adw_toast_dismiss (self->error_toast);
  g_clear_object (&self->error_toast);
}

void
easel_window_toast (EaselWindow *self, const char *message)
{
  g_return_if_fail (EASEL_IS_WINDOW (self));
  g_free (self->last_toast);
  self->last_toast = g_strdup (message);
  dismiss_error_toast (self);   /* a newer message replaces a stale error */
  AdwToast *toast = adw_toast_new (message);
  adw_toast_set_timeout (toast, 8);
  adw_toast_overlay_add_toast (self->toast_overlay, toast);
}

/* An error with its cause and, when given, what to do; a Details button shows the whole message. */
static void
toast_error (EaselWindow *self, const char *what, const GError *error, const char *advice)
{
  g_autofree char *message = advice ? g_strdup_printf ("%s: %s. %s", what, error->message, advice)
                                    : g_strdup_printf ("%s: %s", what, error->message);
  g_free (self->last_toast);
  self->last_toast = g_strdup (message);
  AdwToast *toast = adw_toast_new (message);
  adw_toast_set_timeout (toast, 0);   /* stays until dismissed: it says what to do */
  adw_toast_set_button_label (toast, _("_Details"));
  adw_toast_set_action_name (toast, "win.error-details");
  adw_toast_set_action_target_value (toast, g_variant_new_string (message));
  dismiss_error_toast (self);
  self->error_toast = g_object_ref (toast);
  adw_toast_overlay_add_toast (self->toast_overlay, toast);
}

gboolean
easel_window_is_running (EaselWindow *self)
{
  return self->worker && easel_worker_n_pending (self->worker) > 0;
}

static void
update_running (EaselWindow *self)
{
  gboolean running = easel_window_is_running (self);
  GtkApplication *app = gtk_window_get_application (GTK_WINDOW (self));

  gtk_stack_set_visible_child_name (self->generate_stack, running ? "cancel" : "generate");
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.generate", !running);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.cancel", running);
  if (running && self->inhibit_cookie == 0 && app)
    self->inhibit_cookie = gtk_application_inhibit (app, GTK_WINDOW (self), GTK_APPLICATION_INHIBIT_SUSPEND,
                                                    _("Generating images"));
  else if (!running && self->inhibit_cookie != 0 && app) {
    gtk_application_uninhibit (app, self->inhibit_cookie);
    self->inhibit_cookie = 0;
  }
}

static gboolean
is_my_job (EaselWindow *self, guint id)
{
  for (guint i = 0; i < self->jobs->len; i++)
    if (g_array_index (self->jobs, guint, i) == id)
      return TRUE;
  return FALSE;
}

/* ---- worker signals ------------------------------------------------------------------------- */

static void
on_job_started (EaselWorker *worker, guint id, EaselWindow *self)
{
  update_running (self);
  if (!is_my_job (self, id))
    return;
  easel_canvas_set_progress (self->canvas, 0, _("Starting…"));
  g_autofree char *model = g_settings_get_string (self->settings, "model");
  if (*model == '\0' && !self->demo_said) {
    self->demo_said = TRUE;
    easel_window_toast (self, _("Using the built-in demo model: random weights, so the images are noise. Choose a "
                                "checkpoint for real pictures"));
  }
}

static void
on_status (EaselWorker *worker, guint id, const char *text, EaselWindow *self)
{
  if (is_my_job (self, id))
    easel_canvas_set_progress (self->canvas, 0, text);
}

static void
on_progress (EaselWorker *worker, guint id, int step, int total, double eta, EaselWindow *self)
{
  if (!is_my_job (self, id) || total <= 0)
    return;
  g_autofree char *text = NULL;
  if (step > 0 && step < total) {
    int s = (int) (eta + 0.5);
    text = g_strdup_printf (_("Step %d of %d · about %d:%02d left"), step, total, s / 60, s % 60);
  } else {
    text = g_strdup_printf (_("Step %d of %d"), step, total);
  }
  easel_canvas_set_progress (self->canvas, (double) step / total, text);
}

static void
on_preview (EaselWorker *worker, guint id, GdkTexture *texture, EaselWindow *self)
{
  if (is_my_job (self, id))
    easel_canvas_show_preview (self->canvas, texture);
}

static void
on_result_saved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(EaselWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = easel_image_save_result_finish (result, &error);
  if (path == NULL) {
    if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      toast_error (self, _("The result could not be saved"), error, _("Check the output folder in Preferences"));
    return;
  }
  easel_history_view_add_file (self->history_view, path);
}

static void
on_job_finished (EaselWorker *worker, guint id, GPtrArray *images, GPtrArray *parameters, GError *error,
                 EaselWindow *self)
{
  update_running (self);
  if (!is_my_job (self, id))
    return;
  for (guint i = 0; i < self->jobs->len; i++)
    if (g_array_index (self->jobs, guint, i) == id)
      g_array_remove_index (self->jobs, i);
  easel_canvas_set_progress (self->canvas, -1, NULL);
  easel_canvas_show_preview (self->canvas, NULL);

  if (error) {
    if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || g_error_matches (error, EASEL_ERROR, EASEL_ERROR_CANCELLED))
      easel_window_toast (self, _("Generation cancelled"));
    else
      toast_error (self, _("Generation failed"), error, NULL);
    return;
  }
  g_autofree char *folder = easel_job_output_folder (self->settings);
  for (guint i = 0; images && i < images->len; i++) {
    const EaselImage *img = images->pdata[i];
    const char *text = parameters && i < parameters->len ? parameters->pdata[i] : NULL;
    g_autoptr(EaselParameters) p = text ? easel_parameters_parse (text, -1, NULL) : NULL;
    easel_image_save_result_async (img, text, folder, p && p->has_seed ? (guint64) p->seed : 0, self->cancellable,
                                   on_result_saved, g_object_ref (self));
    if (i == 0)
      easel_canvas_set_result (self->canvas, easel_job_image_copy (img));
  }
}

/* ---- actions -------------------------------------------------------------------------------- */

static void
generate_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselWindow *self = EASEL_WINDOW (widget);
  if (easel_window_is_running (self))
    return;
  /* a folder the results cannot go to is said now, not after the work */
  g_autoptr(GError) error = NULL;
  g_autofree char *folder = easel_job_output_folder (self->settings);
  if (!easel_output_folder_check (folder, &error)) {
    toast_error (self, _("Results cannot be saved"), error, _("Choose another output folder in Preferences"));
    return;
  }
  guint64 seed = easel_job_next_seed (self->settings);
  const EaselImage *init = easel_canvas_get_init_image (self->canvas);
  g_autoptr(EaselImage) mask = init ? easel_canvas_dup_mask_image (self->canvas) : NULL;
  EaselJobRequest *req = easel_job_request_from_settings (self->settings, seed, init, mask);
  guint id = easel_worker_submit (self->worker, req);
  g_array_append_val (self->jobs, id);
  easel_window_show_page (self, "canvas");
  easel_canvas_set_progress (self->canvas, 0, _("Waiting for the engine…"));
  update_running (self);
}

static void
cancel_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselWindow *self = EASEL_WINDOW (widget);
  easel_worker_cancel_all (self->worker);
}

static void
toast_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  easel_window_toast (EASEL_WINDOW (widget), g_variant_get_string (param, NULL));
}

static void
error_details_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  GtkWidget *dialog = adw_message_dialog_new (GTK_WINDOW (widget), _("Something Went Wrong"),
                                              g_variant_get_string (param, NULL));
  adw_message_dialog_add_response (ADW_MESSAGE_DIALOG (dialog), "close", _("_Close"));
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
forward_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselWindow *self = EASEL_WINDOW (widget);
  /* win.open-image -> canvas.open-image: the canvas owns the command, the window its shortcut */
  g_autofree char *target = g_strconcat ("canvas.", action_name + strlen ("win."), NULL);
  gtk_widget_activate_action (GTK_WIDGET (self->canvas), target, NULL);
}

/* ---- restoring settings --------------------------------------------------------------------- */

void
easel_window_restore_parameters (EaselWindow *self, const char *parameters, const char *source_name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselParameters) p = easel_parameters_parse (parameters, -1, &error);
  if (p == NULL) {
    toast_error (self, _("The parameters could not be read"), error, NULL);
    return;
  }
  g_autofree char *skipped = NULL;
  guint n_skipped = easel_job_settings_apply_parameters (self->settings, p, &skipped);
  gboolean model_missing = p->model && !easel_prompt_panel_select_model_by_name (self->prompt_panel, p->model);
  g_autofree char *msg = NULL;
  if (n_skipped > 0)
    msg = g_strdup_printf (_("Settings restored from %s, except: %s"), source_name, skipped);
  else if (model_missing)
    msg = g_strdup_printf (_("Settings restored from %s; its model %s is not in the model folders"), source_name,
                           p->model);
  else
    msg = g_strdup_printf (_("Settings restored from %s"), source_name);
  easel_window_toast (self, msg);
}

static void
on_history_activated (EaselHistoryView *view, const char *path, const char *parameters, EaselImage *image,
                      EaselWindow *self)
{
  g_autofree char *name = g_path_get_basename (path);
  if (parameters)
    easel_window_restore_parameters (self, parameters, name);
  easel_canvas_set_result (self->canvas, easel_job_image_copy (image));
}

static void
on_dropped_loaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(EaselWindow) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselLoadedImage) li = easel_image_load_finish (result, &error);
  if (li == NULL) {
    if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      toast_error (self, _("The dropped file could not be read"), error, NULL);
    return;
  }
  g_autofree char *name = g_path_get_basename (li->path ? li->path : "image");
  if (li->parameters == NULL) {
    g_autofree char *msg = g_strdup_printf (_("%s holds no generation settings: drop it on the canvas to use it as the input image"), name);
    easel_window_toast (self, msg);
    return;
  }
  easel_window_restore_parameters (self, li->parameters, name);
}

static gboolean
on_window_drop (GtkDropTarget *target, const GValue *value, double x, double y, EaselWindow *self)
{
  GSList *files = g_value_get_boxed (value);
  if (files == NULL)
    return FALSE;
  easel_image_load_async (files->data, self->cancellable, on_dropped_loaded, g_object_ref (self));
  return TRUE;
}

/* ---- the family drives the size presets ----------------------------------------------------- */

static void
on_model_changed (GSettings *settings, const char *key, EaselWindow *self)
{
  easel_sampler_panel_set_family (self->sampler_panel, easel_prompt_panel_get_family (self->prompt_panel));
}

/* No model chosen: the worker uses the built-in demo model, and the title says so. */
static void
update_subtitle (GSettings *settings, const char *key, EaselWindow *self)
{
  g_autofree char *model = g_settings_get_string (settings, "model");
  adw_view_switcher_title_set_subtitle (self->switcher_title,
                                        *model ? "" : _("Using the built-in demo model (no checkpoint chosen)"));
}

static void
on_size_changed (GSettings *settings, const char *key, EaselWindow *self)
{
  easel_canvas_area_set_placeholder_size (easel_canvas_get_area (self->canvas),
                                          g_settings_get_int (settings, "width"),
                                          g_settings_get_int (settings, "height"));
}

/* ---- GObject -------------------------------------------------------------------------------- */

/* Connects the window to the application's settings and worker ("application" is not a
 * construct property, so this runs after g_object_new, not in constructed). */
static void
easel_window_setup (EaselWindow *self, EaselApplication *app)
{
  self->settings = g_object_ref (easel_application_get_settings (app));
  self->worker = g_object_ref (easel_application_get_worker (app));

  g_settings_bind (self->settings, "window-width", self, "default-width", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "window-height", self, "default-height", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "window-maximized", self, "maximized", G_SETTINGS_BIND_DEFAULT);

  easel_prompt_panel_bind_settings (self->prompt_panel, self->settings);
  easel_sampler_panel_bind_settings (self->sampler_panel, self->settings);
  easel_canvas_bind_settings (self->canvas, self->settings);
  easel_history_view_bind_settings (self->history_view, self->settings);
  easel_compare_view_setup (self->compare_view, self->settings, self->worker);

  g_signal_connect_object (self->settings, "changed::model", G_CALLBACK (on_model_changed), self, 0);
  g_signal_connect_object (self->settings, "changed::model", G_CALLBACK (update_subtitle), self, 0);
  update_subtitle (self->settings, NULL, self);
  g_signal_connect_object (self->settings, "changed::width", G_CALLBACK (on_size_changed), self, 0);
  g_signal_connect_object (self->settings, "changed::height", G_CALLBACK (on_size_changed), self, 0);
  on_size_changed (self->settings, NULL, self);

  g_signal_connect_object (self->worker, "job-started", G_CALLBACK (on_job_started), self, 0);
  g_signal_connect_object (self->worker, "status", G_CALLBACK (on_status), self, 0);
  g_signal_connect_object (self->worker, "progress", G_CALLBACK (on_progress), self, 0);
  g_signal_connect_object (self->worker, "preview", G_CALLBACK (on_preview), self, 0);
  g_signal_connect_object (self->worker, "job-finished", G_CALLBACK (on_job_finished), self, 0);
  g_signal_connect_object (self->history_view, "activated", G_CALLBACK (on_history_activated), self, 0);

  GtkDropTarget *drop = gtk_drop_target_new (GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
  g_signal_connect (drop, "drop", G_CALLBACK (on_window_drop), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drop));

  update_running (self);
}

static void
easel_window_dispose (GObject *object)
{
  EaselWindow *self = EASEL_WINDOW (object);
  g_cancellable_cancel (self->cancellable);
  if (self->worker)
    for (guint i = 0; i < self->jobs->len; i++)
      easel_worker_cancel (self->worker, g_array_index (self->jobs, guint, i));
  if (self->inhibit_cookie) {
    GtkApplication *app = gtk_window_get_application (GTK_WINDOW (self));
    if (app)
      gtk_application_uninhibit (app, self->inhibit_cookie);
    self->inhibit_cookie = 0;
  }
  g_clear_object (&self->error_toast);
  gtk_widget_dispose_template (GTK_WIDGET (self), EASEL_TYPE_WINDOW);
  g_clear_object (&self->worker);
  g_clear_object (&self->settings);
  G_OBJECT_CLASS (easel_window_parent_class)->dispose (object);
}

static void
easel_window_finalize (GObject *object)
{
  EaselWindow *self = EASEL_WINDOW (object);
  g_array_unref (self->jobs);
  g_free (self->last_toast);
  g_clear_object (&self->cancellable);
  G_OBJECT_CLASS (easel_window_parent_class)->finalize (object);
}

static void
easel_window_class_init (EaselWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = easel_window_dispose;
  object_class->finalize = easel_window_finalize;

  g_type_ensure (EASEL_TYPE_PROMPT_PANEL);
  g_type_ensure (EASEL_TYPE_SAMPLER_PANEL);
  g_type_ensure (EASEL_TYPE_CANVAS);
  g_type_ensure (EASEL_TYPE_HISTORY_VIEW);
  g_type_ensure (EASEL_TYPE_COMPARE_VIEW);

  gtk_widget_class_set_template_from_resource (widget_class, "/org/easel/Easel/ui/easel-window.ui");
  gtk_widget_class_bind_template_child (widget_class, EaselWindow, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, EaselWindow, generate_stack);
  gtk_widget_class_bind_template_child (widget_class, EaselWindow, view_stack);
  gtk_widget_class_bind_template_child (widget_class, EaselWindow, switcher_title);

  gtk_widget_class_bind_template_child (widget_class, EaselWindow, prompt_panel);
  gtk_widget_class_bind_template_child (widget_class, EaselWindow, sampler_panel);
  gtk_widget_class_bind_template_child (widget_class, EaselWindow, canvas);
  gtk_widget_class_bind_template_child (widget_class, EaselWindow, history_view);
  gtk_widget_class_bind_template_child (widget_class, EaselWindow, compare_view);

  gtk_widget_class_install_action (widget_class, "win.generate", NULL, generate_action);
  gtk_widget_class_install_action (widget_class, "win.cancel", NULL, cancel_action);
  gtk_widget_class_install_action (widget_class, "win.toast", "s", toast_action);
  gtk_widget_class_install_action (widget_class, "win.error-details", "s", error_details_action);
  gtk_widget_class_install_action (widget_class, "win.open-image", NULL, forward_action);
  gtk_widget_class_install_action (widget_class, "win.paste-image", NULL, forward_action);

  /* Ctrl+Enter also from inside the prompt, before the text view takes Return */
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Return, GDK_CONTROL_MASK, "win.generate", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_KP_Enter, GDK_CONTROL_MASK, "win.generate", NULL);
}

static void
easel_window_init (EaselWindow *self)
{
  self->jobs = g_array_new (FALSE, FALSE, sizeof (guint));
  self->cancellable = g_cancellable_new ();
  gtk_widget_init_template (GTK_WIDGET (self));
}

EaselWindow *
easel_window_new (EaselApplication *app)
{
  EaselWindow *self = g_object_new (EASEL_TYPE_WINDOW, "application", app, NULL);
  easel_window_setup (self, app);
  return self;
}
