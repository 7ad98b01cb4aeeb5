/* app/easel-application.c: the application object (easel-application.h). Follows
 * gnome-text-editor's editor-application.c: GActionEntry app actions, accelerators set once in
 * startup, settings held by the application and bound by the widgets. */
#include "easel-application.h"

#include <glib/gi18n.h>

#include "easel-preferences.h"
#include "easel-resources.h"
#include "easel-window.h"

struct _EaselApplication {
  AdwApplication parent_instance;
  GSettings *settings;
  EaselWorker *worker;
};

G_DEFINE_FINAL_TYPE (EaselApplication, easel_application, ADW_TYPE_APPLICATION)

void
easel_app_register_resources (void)
{
  static gsize once = 0;
  if (g_once_init_enter (&once)) {
    easel_register_resource ();
    g_once_init_leave (&once, 1);
  }
}

GSettings *
easel_application_get_settings (EaselApplication *self)
{
  g_return_val_if_fail (EASEL_IS_APPLICATION (self), NULL);
  return self->settings;
}

EaselWorker *
easel_application_get_worker (EaselApplication *self)
{
  g_return_val_if_fail (EASEL_IS_APPLICATION (self), NULL);
  return self->worker;
}

static void
preferences_action (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  EaselApplication *self = user_data;
  GtkWindow *parent = gtk_application_get_active_window (GTK_APPLICATION (self));
  EaselPreferences *prefs = easel_preferences_new (self->settings);
  gtk_window_set_transient_for (GTK_WINDOW (prefs), parent);
  gtk_window_present (GTK_WINDOW (prefs));
}

static void
about_action (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  EaselApplication *self = user_data;
  const char *developers[] = { "The Easel developers", NULL };
  GtkWidget *about = g_object_new (ADW_TYPE_ABOUT_WINDOW,
                                   "transient-for", gtk_application_get_active_window (GTK_APPLICATION (self)),
                                   "application-name", "Easel",
                                   "application-icon", EASEL_APP_ID,
                                   "version", EASEL_VERSION,
                                   "developers", developers,
                                   "license-type", GTK_LICENSE_MIT_X11,
                                   "comments", _("Make images from text with Stable Diffusion"),
                                   NULL);
  gtk_window_present (GTK_WINDOW (about));
}

static void
quit_action (GSimpleAction *action, GVariant *param, gpointer user_data)
{
  EaselApplication *self = user_data;
  easel_worker_cancel_all (self->worker);
  g_application_quit (G_APPLICATION (self));
}

static const GActionEntry app_actions[] = {
  { "preferences", preferences_action },
  { "about", about_action },
  { "quit", quit_action },
};

static void
on_backend_changed (GSettings *settings, const char *key, EaselApplication *self)
{
  g_autofree char *backend = g_settings_get_string (settings, "backend");
  g_autofree char *device = g_settings_get_string (settings, "device");
  easel_worker_set_backend (self->worker, backend, *device ? device : NULL);
}

static void
on_max_vram_changed (GSettings *settings, const char *key, EaselApplication *self)
{
  easel_worker_set_max_vram (self->worker, g_settings_get_double (settings, "max-vram"));
}

static void
easel_application_startup (GApplication *app)
{
  EaselApplication *self = EASEL_APPLICATION (app);
  static const struct {
    const char *action;
    const char *accels[3];
  } accels[] = {
    { "app.quit", { "<Control>q", NULL } },
    { "app.preferences", { "<Control>comma", NULL } },
    { "win.generate", { "<Control>Return", "<Control>KP_Enter", NULL } },
    { "win.cancel", { "Escape", NULL } },
    { "win.open-image", { "<Control>o", NULL } },
    { "win.paste-image", { "<Control><Shift>v", NULL } },
    { "win.save-image", { "<Control>s", NULL } },
    { "canvas.undo", { "<Control>z", NULL } },
    { "canvas.redo", { "<Control><Shift>z", NULL } },
    { "canvas.zoom-in", { "<Control>plus", "<Control>equal", NULL } },
    { "canvas.zoom-out", { "<Control>minus", NULL } },
    { "canvas.zoom-fit", { "<Control>0", NULL } },
  };

  G_APPLICATION_CLASS (easel_application_parent_class)->startup (app);

  self->settings = g_settings_new (EASEL_APP_ID);
  g_autofree char *backend = g_settings_get_string (self->settings, "backend");
  g_autofree char *device = g_settings_get_string (self->settings, "device");
  self->worker = easel_worker_new (backend, *device ? device : NULL);
  g_signal_connect_object (self->settings, "changed::backend", G_CALLBACK (on_backend_changed), self, 0);
  g_signal_connect_object (self->settings, "changed::device", G_CALLBACK (on_backend_changed), self, 0);
  easel_worker_set_max_vram (self->worker, g_settings_get_double (self->settings, "max-vram"));
  g_signal_connect_object (self->settings, "changed::max-vram", G_CALLBACK (on_max_vram_changed), self, 0);

  g_action_map_add_action_entries (G_ACTION_MAP (app), app_actions, G_N_ELEMENTS (app_actions), app);
  for (guint i = 0; i < G_N_ELEMENTS (accels); i++)
    gtk_application_set_accels_for_action (GTK_APPLICATION (app), accels[i].action, accels[i].accels);
}

static void
easel_application_activate (GApplication *app)
{
  GtkWindow *win = gtk_application_get_active_window (GTK_APPLICATION (app));
  if (win == NULL)
    win = GTK_WINDOW (easel_window_new (EASEL_APPLICATION (app)));
  gtk_window_present (win);
}

static void
easel_application_shutdown (GApplication *app)
{
  EaselApplication *self = EASEL_APPLICATION (app);
  if (self->worker)
    easel_worker_cancel_all (self->worker);
  G_APPLICATION_CLASS (easel_application_parent_class)->shutdown (app);
}

static void
easel_application_dispose (GObject *object)
{
  EaselApplication *self = EASEL_APPLICATION (object);
  g_clear_object (&self->worker);   /* cancels and joins the engine thread */
  g_clear_object (&self->settings);
  G_OBJECT_CLASS (easel_application_parent_class)->dispose (object);
}

static void
easel_application_class_init (EaselApplicationClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  easel_app_register_resources ();
  object_class->dispose = easel_application_dispose;
  app_class->startup = easel_application_startup;
  app_class->activate = easel_application_activate;
  app_class->shutdown = easel_application_shutdown;
}

static void
easel_application_init (EaselApplication *self)
{
}

EaselApplication *
easel_application_new (void)
{
  return g_object_new (EASEL_TYPE_APPLICATION,
                       "application-id", EASEL_APP_ID,
                       "flags", G_APPLICATION_DEFAULT_FLAGS,
                       "resource-base-path", EASEL_RESOURCE_PREFIX,
                       NULL);
}
