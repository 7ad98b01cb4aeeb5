/* app/easel-prompt-panel.c: the prompt panel (easel-prompt-panel.h), template
 * ui/easel-prompt-panel.ui. */
#include "easel-prompt-panel.h"

#include <glib/gi18n.h>
#include <string.h>

#include "easel-model-list.h"
#include "easel-prompt-edit.h"

struct _EaselPromptPanel {
  AdwBin parent_instance;

  /* template children */
  GtkTextView *prompt_view;
  GtkTextView *negative_view;
  AdwComboRow *model_row;
  GtkAdjustment *clip_skip_adjustment;
  GtkLabel *prompt_error;

  GSettings *settings;
  GListModel *models;
  GCancellable *scan_cancellable;
  gboolean syncing;              /* selection being set from settings */
};

G_DEFINE_FINAL_TYPE (EaselPromptPanel, easel_prompt_panel, ADW_TYPE_BIN)

char *
easel_prompt_panel_default_models_folder (void)
{
  return g_build_filename (g_get_user_data_dir (), "easel", "models", NULL);
}

GtkTextView *
easel_prompt_panel_get_prompt_view (EaselPromptPanel *self)
{
  return self->prompt_view;
}

GListModel *
easel_prompt_panel_get_models (EaselPromptPanel *self)
{
  return self->models;
}

static EaselModelItem *
selected_item (EaselPromptPanel *self)
{
  gpointer item = adw_combo_row_get_selected_item (self->model_row);
  return item ? EASEL_MODEL_ITEM (item) : NULL;
}

const char *
easel_prompt_panel_get_family (EaselPromptPanel *self)
{
  EaselModelItem *item = selected_item (self);
  return item ? easel_model_item_get_family (item) : NULL;
}

/* ---- highlighting and weight editing -------------------------------------------------------- */

static void
ensure_tags (GtkTextBuffer *buffer)
{
  GtkTextTagTable *table = gtk_text_buffer_get_tag_table (buffer);
  if (gtk_text_tag_table_lookup (table, "syntax"))
    return;
  gtk_text_buffer_create_tag (buffer, "syntax", "foreground", "#9a9996", NULL);
  gtk_text_buffer_create_tag (buffer, "break", "foreground", "#c061cb", "weight", PANGO_WEIGHT_BOLD, NULL);
  gtk_text_buffer_create_tag (buffer, "up1", "foreground", "#1c71d8", NULL);
  gtk_text_buffer_create_tag (buffer, "up2", "foreground", "#1a5fb4", "weight", PANGO_WEIGHT_BOLD, NULL);
  gtk_text_buffer_create_tag (buffer, "down1", "foreground", "#c64600", NULL);
  gtk_text_buffer_create_tag (buffer, "down2", "foreground", "#a51d2d", "style", PANGO_STYLE_ITALIC, NULL);
}

static const char *
tag_for_span (const EaselPromptSpan *sp)
{
  switch (sp->kind) {
  case EASEL_PROMPT_SPAN_SYNTAX: return "syntax";
  case EASEL_PROMPT_SPAN_BREAK: return "break";
  case EASEL_PROMPT_SPAN_TEXT:
    if (sp->weight > 1.3)
      return "up2";
    if (sp->weight > 1.0)
      return "up1";
    if (sp->weight < 0.75)
      return "down2";
    if (sp->weight < 1.0)
      return "down1";
    return NULL;
  }
  return NULL;
}

static void
highlight (EaselPromptPanel *self, GtkTextBuffer *buffer)
{
  GtkTextIter start, end;
  ensure_tags (buffer);
  gtk_text_buffer_get_bounds (buffer, &start, &end);
  gtk_text_buffer_remove_all_tags (buffer, &start, &end);
  g_autofree char *text = gtk_text_buffer_get_text (buffer, &start, &end, FALSE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) spans = easel_prompt_spans (text, &error);

  if (buffer == gtk_text_view_get_buffer (self->prompt_view) || buffer == gtk_text_view_get_buffer (self->negative_view)) {
    gtk_widget_set_visible (GTK_WIDGET (self->prompt_error), spans == NULL);
    if (spans == NULL)
      gtk_label_set_text (self->prompt_error, error->message);
  }
  if (spans == NULL)
    return;
  for (guint i = 0; i < spans->len; i++) {
    const EaselPromptSpan *sp = &g_array_index (spans, EaselPromptSpan, i);
    const char *tag = tag_for_span (sp);
    if (tag == NULL)
      continue;
    GtkTextIter a, b;
    gtk_text_buffer_get_iter_at_offset (buffer, &a, (int) g_utf8_pointer_to_offset (text, text + sp->start));
    gtk_text_buffer_get_iter_at_offset (buffer, &b, (int) g_utf8_pointer_to_offset (text, text + sp->end));
    gtk_text_buffer_apply_tag_by_name (buffer, tag, &a, &b);
  }
}

static void
on_buffer_changed (GtkTextBuffer *buffer, EaselPromptPanel *self)
{
  highlight (self, buffer);
}

static gboolean
on_prompt_key (GtkEventControllerKey *controller, guint keyval, guint keycode, GdkModifierType state,
               EaselPromptPanel *self)
{
  if ((state & GDK_CONTROL_MASK) == 0 || (keyval != GDK_KEY_Up && keyval != GDK_KEY_Down))
    return FALSE;
  GtkTextView *view = GTK_TEXT_VIEW (gtk_event_controller_get_widget (GTK_EVENT_CONTROLLER (controller)));
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (view);
  GtkTextIter start, end, sel_a, sel_b;
  gtk_text_buffer_get_bounds (buffer, &start, &end);
  gtk_text_buffer_get_selection_bounds (buffer, &sel_a, &sel_b);
  g_autofree char *text = gtk_text_buffer_get_text (buffer, &start, &end, FALSE);
  /* character offsets <-> byte offsets */
  gsize s = (gsize) (g_utf8_offset_to_pointer (text, gtk_text_iter_get_offset (&sel_a)) - text);
  gsize e = (gsize) (g_utf8_offset_to_pointer (text, gtk_text_iter_get_offset (&sel_b)) - text);
  g_autofree char *edited = easel_prompt_edit_weight (text, &s, &e, keyval == GDK_KEY_Up, EASEL_PROMPT_EDIT_DELTA,
                                                      EASEL_PROMPT_EDIT_DELTA_EXTRA);
  const char *now = edited ? edited : text;
  if (edited) {
    gtk_text_buffer_begin_user_action (buffer);
    gtk_text_buffer_set_text (buffer, edited, -1);
    gtk_text_buffer_end_user_action (buffer);
  }
  GtkTextIter a, b;
  gtk_text_buffer_get_iter_at_offset (buffer, &a, (int) g_utf8_pointer_to_offset (now, now + s));
  gtk_text_buffer_get_iter_at_offset (buffer, &b, (int) g_utf8_pointer_to_offset (now, now + e));
  gtk_text_buffer_select_range (buffer, &a, &b);
  return TRUE;
}

static void
setup_text_view (EaselPromptPanel *self, GtkTextView *view)
{
  GtkEventController *keys = gtk_event_controller_key_new ();
  gtk_event_controller_set_propagation_phase (keys, GTK_PHASE_CAPTURE);
  g_signal_connect (keys, "key-pressed", G_CALLBACK (on_prompt_key), self);
  gtk_widget_add_controller (GTK_WIDGET (view), keys);
  g_signal_connect (gtk_text_view_get_buffer (view), "changed", G_CALLBACK (on_buffer_changed), self);
}

/* ---- models --------------------------------------------------------------------------------- */

static void
select_model_path (EaselPromptPanel *self, const char *path)
{
  if (self->models == NULL)
    return;
  guint n = g_list_model_get_n_items (self->models);
  for (guint i = 0; i < n; i++) {
    g_autoptr(EaselModelItem) item = g_list_model_get_item (self->models, i);
    if (g_strcmp0 (easel_model_item_get_path (item), path) == 0) {
      adw_combo_row_set_selected (self->model_row, i);
      return;
    }
  }
}

/* Among the forms of one model with the same name, A1111 would have loaded the .safetensors. */
static int
form_rank (const char *item_name)
{
  if (g_str_has_suffix (item_name, ".safetensors"))
    return 0;
  if (g_str_has_suffix (item_name, ".ckpt"))
    return 1;
  return 2;
}

gboolean
easel_prompt_panel_select_model_by_name (EaselPromptPanel *self, const char *name)
{
  g_return_val_if_fail (EASEL_IS_PROMPT_PANEL (self), FALSE);
  if (self->models == NULL || name == NULL)
    return FALSE;
  guint n = g_list_model_get_n_items (self->models), best = GTK_INVALID_LIST_POSITION;
  int best_rank = G_MAXINT;
  for (guint i = 0; i < n; i++) {
    g_autoptr(EaselModelItem) item = g_list_model_get_item (self->models, i);
    const char *item_name = easel_model_item_get_name (item);
    const char *dot = strrchr (item_name, '.');
    gsize len = dot && dot != item_name ? (gsize) (dot - item_name) : strlen (item_name);
    if (strlen (name) == len && strncmp (item_name, name, len) == 0 && form_rank (item_name) < best_rank) {
      best = i;
      best_rank = form_rank (item_name);
    }
  }
  if (best == GTK_INVALID_LIST_POSITION)
    return FALSE;
  adw_combo_row_set_selected (self->model_row, best);
  return TRUE;
}

static void
update_model_subtitle (EaselPromptPanel *self)
{
  EaselModelItem *item = selected_item (self);
  if (item)
    adw_action_row_set_subtitle (ADW_ACTION_ROW (self->model_row), easel_model_item_get_description (item));
  else if (self->models)   /* scanned, nothing usable chosen: the worker takes the demo model */
    adw_action_row_set_subtitle (ADW_ACTION_ROW (self->model_row),
                                 g_list_model_get_n_items (self->models) == 0
                                   ? _("No checkpoints found: using the built-in demo model (random weights). "
                                       "Choose the models folder in Preferences")
                                   : _("None chosen: using the built-in demo model (random weights)"));
  else
    adw_action_row_set_subtitle (ADW_ACTION_ROW (self->model_row), _("Looking for checkpoints…"));
}

static void
on_model_selected (EaselPromptPanel *self, GParamSpec *pspec, AdwComboRow *row)
{
  update_model_subtitle (self);
  EaselModelItem *item = selected_item (self);
  if (!self->syncing && item && self->settings)
    g_settings_set_string (self->settings, "model", easel_model_item_get_path (item));
}

static void
on_scan_done (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(EaselPromptPanel) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GListModel) models = easel_model_list_scan_finish (result, &error);
  if (models == NULL) {
    if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      gtk_widget_activate_action (GTK_WIDGET (self), "win.toast", "s", error->message);
    return;
  }
  g_set_object (&self->models, models);
  self->syncing = TRUE;
  adw_combo_row_set_model (self->model_row, models);
  g_autofree char *path = self->settings ? g_settings_get_string (self->settings, "model") : NULL;
  adw_combo_row_set_selected (self->model_row, GTK_INVALID_LIST_POSITION);
  select_model_path (self, path);
  self->syncing = FALSE;
  /* nothing chosen yet: take the first usable one */
  if (selected_item (self) == NULL) {
    guint n = g_list_model_get_n_items (models);
    for (guint i = 0; i < n; i++) {
      g_autoptr(EaselModelItem) item = g_list_model_get_item (models, i);
      if (easel_model_item_get_usable (item)) {
        adw_combo_row_set_selected (self->model_row, i);
        break;
      }
    }
  }
  update_model_subtitle (self);
}

void
easel_prompt_panel_rescan_models (EaselPromptPanel *self)
{
  g_return_if_fail (EASEL_IS_PROMPT_PANEL (self) && self->settings);
  g_cancellable_cancel (self->scan_cancellable);
  g_clear_object (&self->scan_cancellable);
  self->scan_cancellable = g_cancellable_new ();

  g_autofree char *folder = g_settings_get_string (self->settings, "models-folder");
  g_auto(GStrv) extra = g_settings_get_strv (self->settings, "extra-model-folders");
  g_autoptr(GStrvBuilder) b = g_strv_builder_new ();
  if (*folder)
    g_strv_builder_add (b, folder);
  else {
    g_autofree char *def = easel_prompt_panel_default_models_folder ();
    g_strv_builder_add (b, def);
  }
  g_strv_builder_addv (b, (const char **) extra);
  g_auto(GStrv) folders = g_strv_builder_end (b);
  easel_model_list_scan_async ((const char *const *) folders, self->scan_cancellable, on_scan_done,
                               g_object_ref (self));
}

static void
on_folders_changed (GSettings *settings, const char *key, EaselPromptPanel *self)
{
  easel_prompt_panel_rescan_models (self);
}

static void
on_settings_model_changed (GSettings *settings, const char *key, EaselPromptPanel *self)
{
  g_autofree char *path = g_settings_get_string (settings, "model");
  EaselModelItem *item = selected_item (self);
  if (item == NULL || g_strcmp0 (easel_model_item_get_path (item), path) != 0) {
    self->syncing = TRUE;
    select_model_path (self, path);
    self->syncing = FALSE;
  }
}

/* The list shows each checkpoint with its family below it. */
static void
setup_model_item (GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 2);
  GtkWidget *name = gtk_label_new (NULL);
  GtkWidget *family = gtk_label_new (NULL);
  gtk_label_set_xalign (GTK_LABEL (name), 0);
  gtk_label_set_xalign (GTK_LABEL (family), 0);
  gtk_label_set_ellipsize (GTK_LABEL (name), PANGO_ELLIPSIZE_MIDDLE);
  gtk_widget_add_css_class (family, "dim-label");
  gtk_widget_add_css_class (family, "caption");
  gtk_box_append (GTK_BOX (box), name);
  gtk_box_append (GTK_BOX (box), family);
  gtk_list_item_set_child (list_item, box);
}

static void
bind_model_item (GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  EaselModelItem *item = gtk_list_item_get_item (list_item);
  GtkWidget *box = gtk_list_item_get_child (list_item);
  GtkWidget *name = gtk_widget_get_first_child (box);
  gtk_label_set_text (GTK_LABEL (name), easel_model_item_get_name (item));
  gtk_label_set_text (GTK_LABEL (gtk_widget_get_next_sibling (name)), easel_model_item_get_description (item));
  gtk_widget_set_tooltip_text (box, easel_model_item_get_path (item));
}

void
easel_prompt_panel_bind_settings (EaselPromptPanel *self, GSettings *settings)
{
  g_return_if_fail (EASEL_IS_PROMPT_PANEL (self));
  g_set_object (&self->settings, settings);
  g_settings_bind (settings, "prompt", gtk_text_view_get_buffer (self->prompt_view), "text", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "negative-prompt", gtk_text_view_get_buffer (self->negative_view), "text",
                   G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "clip-skip", self->clip_skip_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_signal_connect_object (settings, "changed::models-folder", G_CALLBACK (on_folders_changed), self, 0);
  g_signal_connect_object (settings, "changed::extra-model-folders", G_CALLBACK (on_folders_changed), self, 0);
  g_signal_connect_object (settings, "changed::model", G_CALLBACK (on_settings_model_changed), self, 0);
  easel_prompt_panel_rescan_models (self);
}

static void
rescan_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  easel_prompt_panel_rescan_models (EASEL_PROMPT_PANEL (widget));
}

static void
easel_prompt_panel_dispose (GObject *object)
{
  EaselPromptPanel *self = EASEL_PROMPT_PANEL (object);
  g_cancellable_cancel (self->scan_cancellable);
  gtk_widget_dispose_template (GTK_WIDGET (self), EASEL_TYPE_PROMPT_PANEL);
  G_OBJECT_CLASS (easel_prompt_panel_parent_class)->dispose (object);
}

static void
easel_prompt_panel_finalize (GObject *object)
{
  EaselPromptPanel *self = EASEL_PROMPT_PANEL (object);
  g_clear_object (&self->scan_cancellable);
  g_clear_object (&self->settings);
  g_clear_object (&self->models);
  G_OBJECT_CLASS (easel_prompt_panel_parent_class)->finalize (object);
}

static void
easel_prompt_panel_class_init (EaselPromptPanelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = easel_prompt_panel_dispose;
  object_class->finalize = easel_prompt_panel_finalize;

  gtk_widget_class_set_template_from_resource (widget_class, "/org/easel/Easel/ui/easel-prompt-panel.ui");
  gtk_widget_class_bind_template_child (widget_class, EaselPromptPanel, prompt_view);
  gtk_widget_class_bind_template_child (widget_class, EaselPromptPanel, negative_view);
  gtk_widget_class_bind_template_child (widget_class, EaselPromptPanel, model_row);
  gtk_widget_class_bind_template_child (widget_class, EaselPromptPanel, clip_skip_adjustment);
  gtk_widget_class_bind_template_child (widget_class, EaselPromptPanel, prompt_error);
  gtk_widget_class_bind_template_callback (widget_class, on_model_selected);
  gtk_widget_class_install_action (widget_class, "prompt.rescan-models", NULL, rescan_action);
}

static void
easel_prompt_panel_init (EaselPromptPanel *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  setup_text_view (self, self->prompt_view);
  setup_text_view (self, self->negative_view);

  GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (factory, "setup", G_CALLBACK (setup_model_item), NULL);
  g_signal_connect (factory, "bind", G_CALLBACK (bind_model_item), NULL);
  adw_combo_row_set_list_factory (self->model_row, factory);
  g_object_unref (factory);
  g_autoptr(GtkExpression) expr = gtk_property_expression_new (EASEL_TYPE_MODEL_ITEM, NULL, "name");
  adw_combo_row_set_expression (self->model_row, expr);
  update_model_subtitle (self);
}
