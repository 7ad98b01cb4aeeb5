/* app/easel-sampler-panel.c: the sampler panel (easel-sampler-panel.h), template
 * ui/easel-sampler-panel.ui. Combo rows hold indices into the engine's tables; the mappings below
 * turn them into the ComfyUI ids GSettings stores. */
#include "easel-sampler-panel.h"

#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

#include "easel-sampling-table.h"

struct _EaselSamplerPanel {
  AdwBin parent_instance;

  AdwComboRow *sampler_row;
  AdwComboRow *scheduler_row;
  GtkAdjustment *steps_adjustment;
  GtkAdjustment *cfg_adjustment;
  GtkAdjustment *seed_adjustment;
  GtkSpinButton *seed_spin;
  GtkToggleButton *random_button;
  GtkAdjustment *width_adjustment;
  GtkAdjustment *height_adjustment;
  GtkAdjustment *batch_size_adjustment;
  GtkAdjustment *batch_count_adjustment;
  GtkAdjustment *denoise_adjustment;
  GtkMenuButton *presets_button;

  GSettings *settings;
  char *family;
};

G_DEFINE_FINAL_TYPE (EaselSamplerPanel, easel_sampler_panel, ADW_TYPE_BIN)

const char *const *
easel_size_presets (const char *family)
{
  /* A1111 / SAI recommended sizes: SD 1.x trained at 512, SD 2.x 768-v at 768, SDXL at about a megapixel */
  static const char *const sd1[] = { "512x512", "512x768", "768x512", "640x448", "448x640", NULL };
  static const char *const sd2[] = { "768x768", "768x1024", "1024x768", "512x512", NULL };
  static const char *const sdxl[] = { "1024x1024", "896x1152", "1152x896", "832x1216", "1216x832", "768x1344",
                                      "1344x768", "640x1536", "1536x640", NULL };
  if (family && g_str_has_prefix (family, "sdxl"))
    return sdxl;
  if (family && g_str_has_prefix (family, "sd2"))
    return sd2;
  return sd1;
}

static void
rebuild_presets (EaselSamplerPanel *self)
{
  g_autoptr(GMenu) menu = g_menu_new ();
  g_autoptr(GMenu) sizes = g_menu_new ();
  for (const char *const *p = easel_size_presets (self->family); *p; p++) {
    g_autofree char *label = g_strdelimit (g_strdup (*p), "x", 0);
    g_autofree char *shown = g_strdup_printf ("%s × %s", label, label + strlen (label) + 1);
    g_autoptr(GMenuItem) item = g_menu_item_new (shown, NULL);
    g_menu_item_set_action_and_target (item, "sampler.size", "s", *p);
    g_menu_append_item (sizes, item);
  }
  g_menu_append_section (menu, NULL, G_MENU_MODEL (sizes));
  g_autoptr(GMenu) swap = g_menu_new ();
  g_menu_append (swap, _("_Swap Width and Height"), "sampler.swap-size");
  g_menu_append_section (menu, NULL, G_MENU_MODEL (swap));
  gtk_menu_button_set_menu_model (self->presets_button, G_MENU_MODEL (menu));
}

void
easel_sampler_panel_set_family (EaselSamplerPanel *self, const char *family)
{
  g_return_if_fail (EASEL_IS_SAMPLER_PANEL (self));
  g_free (self->family);
  self->family = g_strdup (family);
  rebuild_presets (self);
}

/* ---- settings mappings ---------------------------------------------------------------------- */

static gboolean
sampler_get_mapping (GValue *value, GVariant *variant, gpointer user_data)
{
  gint i = easel_sampling_table_find_sampler (g_variant_get_string (variant, NULL), NULL);
  g_value_set_uint (value, i >= 0 ? (guint) i : 0);
  return TRUE;
}

static GVariant *
sampler_set_mapping (const GValue *value, const GVariantType *type, gpointer user_data)
{
  const char *id = easel_sampling_table_sampler_id (g_value_get_uint (value));
  return id ? g_variant_new_string (id) : NULL;
}

static gboolean
scheduler_get_mapping (GValue *value, GVariant *variant, gpointer user_data)
{
  gint i = easel_sampling_table_find_scheduler (g_variant_get_string (variant, NULL));
  g_value_set_uint (value, i >= 0 ? (guint) i : 0);
  return TRUE;
}

static GVariant *
scheduler_set_mapping (const GValue *value, const GVariantType *type, gpointer user_data)
{
  const char *id = easel_sampling_table_scheduler_id (g_value_get_uint (value));
  return id ? g_variant_new_string (id) : NULL;
}

static void
update_reuse (EaselSamplerPanel *self)
{
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "sampler.reuse-seed",
                                 self->settings && g_settings_get_int64 (self->settings, "last-seed") >= 0);
}

static void
on_last_seed_changed (GSettings *settings, const char *key, EaselSamplerPanel *self)
{
  update_reuse (self);
}

void
easel_sampler_panel_bind_settings (EaselSamplerPanel *self, GSettings *settings)
{
  g_return_if_fail (EASEL_IS_SAMPLER_PANEL (self));
  g_set_object (&self->settings, settings);
  g_settings_bind_with_mapping (settings, "sampler", self->sampler_row, "selected", G_SETTINGS_BIND_DEFAULT,
                                sampler_get_mapping, sampler_set_mapping, NULL, NULL);
  g_settings_bind_with_mapping (settings, "scheduler", self->scheduler_row, "selected", G_SETTINGS_BIND_DEFAULT,
                                scheduler_get_mapping, scheduler_set_mapping, NULL, NULL);
  g_settings_bind (settings, "steps", self->steps_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "cfg", self->cfg_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "seed", self->seed_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "randomize-seed", self->random_button, "active", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "randomize-seed", self->seed_spin, "sensitive",
                   G_SETTINGS_BIND_GET | G_SETTINGS_BIND_INVERT_BOOLEAN);
  g_settings_bind (settings, "width", self->width_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "height", self->height_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "batch-size", self->batch_size_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "batch-count", self->batch_count_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "denoise", self->denoise_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_signal_connect_object (settings, "changed::last-seed", G_CALLBACK (on_last_seed_changed), self, 0);
  update_reuse (self);
}

/* ---- actions -------------------------------------------------------------------------------- */

static void
size_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselSamplerPanel *self = EASEL_SAMPLER_PANEL (widget);
  int w, h;
  if (self->settings && sscanf (g_variant_get_string (param, NULL), "%dx%d", &w, &h) == 2) {
    g_settings_set_int (self->settings, "width", w);
    g_settings_set_int (self->settings, "height", h);
  }
}

static void
swap_size_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselSamplerPanel *self = EASEL_SAMPLER_PANEL (widget);
  if (self->settings == NULL)
    return;
  int w = g_settings_get_int (self->settings, "width"), h = g_settings_get_int (self->settings, "height");
  g_settings_set_int (self->settings, "width", h);
  g_settings_set_int (self->settings, "height", w);
}

static void
reuse_seed_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselSamplerPanel *self = EASEL_SAMPLER_PANEL (widget);
  gint64 last = self->settings ? g_settings_get_int64 (self->settings, "last-seed") : -1;
  if (last < 0)
    return;
  g_settings_set_int64 (self->settings, "seed", last);
  g_settings_set_boolean (self->settings, "randomize-seed", FALSE);
}

static void
easel_sampler_panel_dispose (GObject *object)
{
  gtk_widget_dispose_template (GTK_WIDGET (object), EASEL_TYPE_SAMPLER_PANEL);
  G_OBJECT_CLASS (easel_sampler_panel_parent_class)->dispose (object);
}

static void
easel_sampler_panel_finalize (GObject *object)
{
  EaselSamplerPanel *self = EASEL_SAMPLER_PANEL (object);
  g_clear_object (&self->settings);
  g_free (self->family);
  G_OBJECT_CLASS (easel_sampler_panel_parent_class)->finalize (object);
}

static void
easel_sampler_panel_class_init (EaselSamplerPanelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = easel_sampler_panel_dispose;
  object_class->finalize = easel_sampler_panel_finalize;

  gtk_widget_class_set_template_from_resource (widget_class, "/org/easel/Easel/ui/easel-sampler-panel.ui");
  gtk_widget_class_bind_template_child (widget_class, EaselSamplerPanel, sampler_row);
  gtk_widget_class_bind_template_child (widget_class, EaselSamplerPanel, scheduler_row);
  gtk_widget_class_bind_template_child (widget_class, EaselSamplerPanel, steps_adjustment);
  gtk_widget_class_bind_template_child (widget_class, EaselSamplerPanel, cfg_adjustment);
  gtk_widget_class_bind_template_child (widget_class, EaselSamplerPanel, seed_adjustment);
  gtk_widget_class_bind_template_child (widget_class, EaselSamplerPanel, seed_spin);
  gtk_widget_class_bind_template_child (widget_class, EaselSamplerPanel, random_button);
  gtk_widget_class_bind_template_child (widget_class, EaselSamplerPanel, width_adjustment);
  gtk_widget_class_bind_template_child (widget_class, EaselSamplerPanel, height_adjustment);
  gtk_widget_class_bind_template_child (widget_class, EaselSamplerPanel, batch_size_adjustment);
  gtk_widget_class_bind_template_child (widget_class, EaselSamplerPanel, batch_count_adjustment);
  gtk_widget_class_bind_template_child (widget_class, EaselSamplerPanel, denoise_adjustment);
  gtk_widget_class_bind_template_child (widget_class, EaselSamplerPanel, presets_button);

  gtk_widget_class_install_action (widget_class, "sampler.size", "s", size_action);
  gtk_widget_class_install_action (widget_class, "sampler.swap-size", NULL, swap_size_action);
  gtk_widget_class_install_action (widget_class, "sampler.reuse-seed", NULL, reuse_seed_action);
}

static void
easel_sampler_panel_init (EaselSamplerPanel *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  g_autoptr(GtkStringList) samplers = gtk_string_list_new (NULL);
  for (guint i = 0; i < easel_sampling_table_n_samplers (); i++)
    gtk_string_list_append (samplers, easel_sampling_table_sampler_label (i));
  adw_combo_row_set_model (self->sampler_row, G_LIST_MODEL (samplers));

  g_autoptr(GtkStringList) schedulers = gtk_string_list_new (NULL);
  for (guint i = 0; i < easel_sampling_table_n_schedulers (); i++)
    gtk_string_list_append (schedulers, i == 0 ? _("Automatic") : easel_sampling_table_scheduler_label (i));
  adw_combo_row_set_model (self->scheduler_row, G_LIST_MODEL (schedulers));
  rebuild_presets (self);
  update_reuse (self);
}
