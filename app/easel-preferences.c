/* app/easel-preferences.c: the preferences window (easel-preferences.h), template
 * ui/easel-preferences.ui. */
#include "easel-preferences.h"

#include <glib/gi18n.h>

#include "easel-job.h"
#include "easel-prompt-panel.h"

struct _EaselPreferences {
  AdwPreferencesWindow parent_instance;

  AdwActionRow *models_row;
  AdwActionRow *extra_row;
  AdwActionRow *output_row;
  AdwComboRow *backend_row;
  AdwEntryRow *device_row;
  GtkSpinButton *max_vram_spin;
  AdwComboRow *rng_row;

  GSettings *settings;
};

G_DEFINE_FINAL_TYPE (EaselPreferences, easel_preferences, ADW_TYPE_PREFERENCES_WINDOW)

static const char *const backends[] = { "auto", "vulkan", "cpu" };
static const char *const rngs[] = { "gpu", "cpu" };

static void
update_rows (EaselPreferences *self)
{
  g_autofree char *models = g_settings_get_string (self->settings, "models-folder");
  g_autofree char *def_models = easel_prompt_panel_default_models_folder ();
  adw_action_row_set_subtitle (self->models_row, *models ? models : def_models);
  g_autofree char *output = easel_job_output_folder (self->settings);
  adw_action_row_set_subtitle (self->output_row, output);
  g_auto(GStrv) extra = g_settings_get_strv (self->settings, "extra-model-folders");
  g_autofree char *joined = g_strjoinv ("\n", extra);
  adw_action_row_set_subtitle (self->extra_row, *joined ? joined : _("None"));
}

static void
on_settings_changed (GSettings *settings, const char *key, EaselPreferences *self)
{
  update_rows (self);
}

typedef struct {
  EaselPreferences *self;
  char *key;
} FolderRequest;

static void
on_folder_response (GtkNativeDialog *dialog, int response, gpointer user_data)
{
  FolderRequest *req = user_data;
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
    g_autofree char *path = g_file_get_path (file);
    if (g_str_equal (req->key, "extra-model-folders")) {
      g_auto(GStrv) old = g_settings_get_strv (req->self->settings, req->key);
      g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
      g_strv_builder_addv (b, (const char **) old);
      if (!g_strv_contains ((const char *const *) old, path))
        g_strv_builder_add (b, path);
      g_auto(GStrv) now = g_strv_builder_end (b);
      g_settings_set_strv (req->self->settings, req->key, (const char *const *) now);
    } else {
      g_settings_set_string (req->self->settings, req->key, path);
    }
  }
  g_object_unref (req->self);
  g_free (req->key);
  g_free (req);
  gtk_native_dialog_destroy (dialog);
  g_object_unref (dialog);
}

static void
choose_folder_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselPreferences *self = EASEL_PREFERENCES (widget);
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new (_("Choose a Folder"), GTK_WINDOW (self),
                                                              GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, _("_Select"),
                                                              _("_Cancel"));
  FolderRequest *req = g_new0 (FolderRequest, 1);
  req->self = g_object_ref (self);
  req->key = g_variant_dup_string (param, NULL);
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (dialog), TRUE);
  g_signal_connect (dialog, "response", G_CALLBACK (on_folder_response), req);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

static void
reset_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselPreferences *self = EASEL_PREFERENCES (widget);
  g_settings_reset (self->settings, g_variant_get_string (param, NULL));
}

static gboolean
choice_get (GValue *value, GVariant *variant, gpointer user_data)
{
  const char *const *choices = user_data;
  const char *s = g_variant_get_string (variant, NULL);
  for (guint i = 0; choices[i]; i++)
    if (g_str_equal (choices[i], s)) {
      g_value_set_uint (value, i);
      return TRUE;
    }
  g_value_set_uint (value, 0);
  return TRUE;
}

static GVariant *
choice_set (const GValue *value, const GVariantType *type, gpointer user_data)
{
  const char *const *choices = user_data;
  guint i = g_value_get_uint (value);
  return i < g_strv_length ((char **) choices) ? g_variant_new_string (choices[i]) : NULL;
}

EaselPreferences *
easel_preferences_new (GSettings *settings)
{
  EaselPreferences *self = g_object_new (EASEL_TYPE_PREFERENCES, NULL);
  self->settings = g_object_ref (settings);
  g_settings_bind_with_mapping (settings, "backend", self->backend_row, "selected", G_SETTINGS_BIND_DEFAULT,
                                choice_get, choice_set, (gpointer) backends, NULL);
  g_settings_bind_with_mapping (settings, "rng", self->rng_row, "selected", G_SETTINGS_BIND_DEFAULT, choice_get,
                                choice_set, (gpointer) rngs, NULL);
  g_settings_bind (settings, "device", self->device_row, "text", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "max-vram", self->max_vram_spin, "value", G_SETTINGS_BIND_DEFAULT);
  /* folder paths can be copied where libadwaita has selectable subtitles (1.3); the template
   * cannot name the property, or 1.2 refuses the whole window */
  AdwActionRow *paths[] = { self->models_row, self->extra_row, self->output_row };
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    if (g_object_class_find_property (G_OBJECT_GET_CLASS (paths[i]), "subtitle-selectable"))
      g_object_set (paths[i], "subtitle-selectable", TRUE, NULL);
  g_signal_connect_object (settings, "changed", G_CALLBACK (on_settings_changed), self, 0);
  update_rows (self);
  return self;
}

static void
easel_preferences_dispose (GObject *object)
{
  EaselPreferences *self = EASEL_PREFERENCES (object);
  gtk_widget_dispose_template (GTK_WIDGET (self), EASEL_TYPE_PREFERENCES);
  g_clear_object (&self->settings);
  G_OBJECT_CLASS (easel_preferences_parent_class)->dispose (object);
}

static void
easel_preferences_class_init (EaselPreferencesClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = easel_preferences_dispose;
  gtk_widget_class_set_template_from_resource (widget_class, "/org/easel/Easel/ui/easel-preferences.ui");
  gtk_widget_class_bind_template_child (widget_class, EaselPreferences, models_row);
  gtk_widget_class_bind_template_child (widget_class, EaselPreferences, extra_row);
  gtk_widget_class_bind_template_child (widget_class, EaselPreferences, output_row);
  gtk_widget_class_bind_template_child (widget_class, EaselPreferences, backend_row);
  gtk_widget_class_bind_template_child (widget_class, EaselPreferences, device_row);
  gtk_widget_class_bind_template_child (widget_class, EaselPreferences, max_vram_spin);
  gtk_widget_class_bind_template_child (widget_class, EaselPreferences, rng_row);
  gtk_widget_class_install_action (widget_class, "prefs.choose-folder", "s", choose_folder_action);
  gtk_widget_class_install_action (widget_class, "prefs.reset", "s", reset_action);
}

static void
easel_preferences_init (EaselPreferences *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}
