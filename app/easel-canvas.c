/* app/easel-canvas.c: the canvas page (easel-canvas.h), template ui/easel-canvas.ui. */
#include "easel-canvas.h"

#include <glib/gi18n.h>

#include "easel-image-io.h"

struct _EaselCanvas {
  AdwBin parent_instance;

  /* template children */
  EaselCanvasArea *area;
  GtkToggleButton *brush_button;
  GtkToggleButton *eraser_button;
  GtkAdjustment *size_adjustment;
  GtkAdjustment *hardness_adjustment;
  GtkAdjustment *feather_adjustment;
  GtkProgressBar *progress_bar;
  GtkRevealer *progress_revealer;
  GtkLabel *empty_label;

  EaselImage *init_image;      /* owned */
  GdkTexture *init_texture;
  EaselImage *result;          /* owned */
  GdkTexture *result_texture;
  GdkTexture *preview;          /* the newest preview, put on the area at the next frame */
  guint preview_tick;
  GCancellable *cancellable;   /* file loads */
};

G_DEFINE_FINAL_TYPE (EaselCanvas, easel_canvas, ADW_TYPE_BIN)

static void
toast (EaselCanvas *self, const char *message)
{
  gtk_widget_activate_action (GTK_WIDGET (self), "win.toast", "s", message);
}

/* What the area shows: the preview while a job runs, else the newest of result and init image. */
static void
update_shown (EaselCanvas *self)
{
  GdkTexture *tex = self->result_texture ? self->result_texture : self->init_texture;
  easel_canvas_area_set_texture (self->area, tex);
  gtk_widget_set_visible (GTK_WIDGET (self->empty_label),
                          tex == NULL && easel_canvas_area_get_preview (self->area) == NULL);
}

static void
update_actions (EaselCanvas *self)
{
  EaselMask *mask = easel_canvas_area_get_mask (self->area);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "canvas.undo", easel_mask_can_undo (mask));
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "canvas.redo", easel_mask_can_redo (mask));
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "canvas.use-result", self->result != NULL);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "canvas.remove-image", self->init_image != NULL);
}

EaselCanvasArea *
easel_canvas_get_area (EaselCanvas *self)
{
  g_return_val_if_fail (EASEL_IS_CANVAS (self), NULL);
  return self->area;
}

void
easel_canvas_bind_settings (EaselCanvas *self, GSettings *settings)
{
  g_settings_bind (settings, "brush-size", self->size_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "brush-hardness", self->hardness_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "mask-blur", self->feather_adjustment, "value", G_SETTINGS_BIND_DEFAULT);
}

void
easel_canvas_set_init_image (EaselCanvas *self, EaselImage *image, GdkTexture *texture)
{
  g_return_if_fail (EASEL_IS_CANVAS (self));
  g_clear_pointer (&self->init_image, easel_image_free);
  g_clear_object (&self->init_texture);
  self->init_image = image;
  self->init_texture = texture;
  /* the input is what the person paints on now */
  g_clear_pointer (&self->result, easel_image_free);
  g_clear_object (&self->result_texture);
  update_shown (self);
  update_actions (self);
}

const EaselImage *
easel_canvas_get_init_image (EaselCanvas *self)
{
  g_return_val_if_fail (EASEL_IS_CANVAS (self), NULL);
  return self->init_image;
}

void
easel_canvas_set_result (EaselCanvas *self, EaselImage *image)
{
  g_return_if_fail (EASEL_IS_CANVAS (self));
  g_clear_pointer (&self->result, easel_image_free);
  g_clear_object (&self->result_texture);
  self->result = image;
  self->result_texture = image ? easel_texture_from_image (image) : NULL;
  update_shown (self);
  update_actions (self);
}

const EaselImage *
easel_canvas_get_result (EaselCanvas *self)
{
  g_return_val_if_fail (EASEL_IS_CANVAS (self), NULL);
  return self->result;
}

/* Previews are applied once per frame: the worker's mailbox already drops stale ones, and this
 * keeps a burst of them from reaching the area faster than the display shows them. */
static gboolean
apply_preview_tick (GtkWidget *widget, GdkFrameClock *clock, gpointer user_data)
{
  EaselCanvas *self = EASEL_CANVAS (widget);
  easel_canvas_area_set_preview (self->area, self->preview);
  g_clear_object (&self->preview);
  self->preview_tick = 0;
  update_shown (self);
  return G_SOURCE_REMOVE;
}

void
easel_canvas_show_preview (EaselCanvas *self, GdkTexture *texture)
{
  g_return_if_fail (EASEL_IS_CANVAS (self));
  if (texture == NULL) {
    if (self->preview_tick)
      gtk_widget_remove_tick_callback (GTK_WIDGET (self), self->preview_tick);
    self->preview_tick = 0;
    g_clear_object (&self->preview);
    easel_canvas_area_set_preview (self->area, NULL);
    update_shown (self);
    return;
  }
  g_set_object (&self->preview, texture);
  if (self->preview_tick == 0)
    self->preview_tick = gtk_widget_add_tick_callback (GTK_WIDGET (self), apply_preview_tick, NULL, NULL);
}

void
easel_canvas_set_progress (EaselCanvas *self, double fraction, const char *text)
{
  g_return_if_fail (EASEL_IS_CANVAS (self));
  gtk_revealer_set_reveal_child (self->progress_revealer, fraction >= 0);
  if (fraction >= 0) {
    if (fraction > 0)
      gtk_progress_bar_set_fraction (self->progress_bar, MIN (fraction, 1.0));
    else
      gtk_progress_bar_pulse (self->progress_bar);
    gtk_progress_bar_set_text (self->progress_bar, text);
  }
}

EaselImage *
easel_canvas_dup_mask_image (EaselCanvas *self)
{
  g_return_val_if_fail (EASEL_IS_CANVAS (self), NULL);
  EaselMask *mask = easel_canvas_area_get_mask (self->area);
  return easel_mask_is_empty (mask) ? NULL : easel_mask_to_image (mask, NULL);
}

/* ---- actions -------------------------------------------------------------------------------- */

static void
mask_edit_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselCanvas *self = EASEL_CANVAS (widget);
  EaselMask *mask = easel_canvas_area_get_mask (self->area);

  if (g_str_equal (action_name, "canvas.undo"))
    easel_mask_undo (mask);
  else if (g_str_equal (action_name, "canvas.redo"))
    easel_mask_redo (mask);
  else if (g_str_equal (action_name, "canvas.invert-mask"))
    easel_mask_invert (mask);
  else if (g_str_equal (action_name, "canvas.clear-mask"))
    easel_mask_clear (mask);
  else if (g_str_equal (action_name, "canvas.feather-mask"))
    easel_mask_feather (mask, gtk_adjustment_get_value (self->feather_adjustment));
  easel_canvas_area_mask_changed (self->area);
}

static void
zoom_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselCanvas *self = EASEL_CANVAS (widget);
  if (g_str_equal (action_name, "canvas.zoom-in"))
    easel_canvas_area_zoom_by (self->area, 1.25);
  else if (g_str_equal (action_name, "canvas.zoom-out"))
    easel_canvas_area_zoom_by (self->area, 1 / 1.25);
  else
    easel_canvas_area_zoom_fit (self->area);
}

static void
on_image_loaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(EaselCanvas) self = user_data;
  g_autoptr(GError) error = NULL;
  EaselLoadedImage *li = easel_image_load_finish (result, &error);
  if (li == NULL) {
    if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      toast (self, error->message);
    return;
  }
  easel_canvas_set_init_image (self, g_steal_pointer (&li->image), g_steal_pointer (&li->texture));
  easel_loaded_image_free (li);
}

static void
load_init_file (EaselCanvas *self, GFile *file)
{
  easel_image_load_async (file, self->cancellable, on_image_loaded, g_object_ref (self));
}

typedef void (*FileDone) (EaselCanvas *self, GFile *file);

typedef struct {
  EaselCanvas *self;   /* strong */
  FileDone done;
} FileRequest;

static void
on_file_response (GtkNativeDialog *dialog, int response, gpointer user_data)
{
  FileRequest *req = user_data;
  if (response == GTK_RESPONSE_ACCEPT) {
    g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (dialog));
    req->done (req->self, file);
  }
  g_object_unref (req->self);
  g_free (req);
  gtk_native_dialog_destroy (dialog);
  g_object_unref (dialog);
}

static void
run_file_dialog (EaselCanvas *self, const char *title, gboolean save, gboolean png_only, FileDone done)
{
  GtkWindow *parent = GTK_WINDOW (gtk_widget_get_root (GTK_WIDGET (self)));
  GtkFileChooserNative *dialog = gtk_file_chooser_native_new (title, parent,
                                                              save ? GTK_FILE_CHOOSER_ACTION_SAVE
                                                                   : GTK_FILE_CHOOSER_ACTION_OPEN,
                                                              save ? _("_Save") : _("_Open"), _("_Cancel"));
  g_autoptr(GtkFileFilter) filter = gtk_file_filter_new ();
  gtk_file_filter_set_name (filter, png_only ? _("PNG images") : _("Images"));
  gtk_file_filter_add_mime_type (filter, "image/png");
  gtk_file_filter_add_suffix (filter, "png");
  if (!png_only)
    gtk_file_filter_add_pixbuf_formats (filter);
  gtk_file_chooser_add_filter (GTK_FILE_CHOOSER (dialog), filter);
  if (save)
    gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (dialog), "mask.png");
  FileRequest *req = g_new (FileRequest, 1);
  req->self = g_object_ref (self);
  req->done = done;
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (dialog), TRUE);
  g_signal_connect (dialog, "response", G_CALLBACK (on_file_response), req);
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (dialog));
}

static void
load_mask_done (EaselCanvas *self, GFile *file)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_file_get_path (file);
  if (easel_mask_load_png (easel_canvas_area_get_mask (self->area), path, &error))
    easel_canvas_area_mask_changed (self->area);
  else
    toast (self, error->message);
}

static void
save_mask_done (EaselCanvas *self, GFile *file)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_file_get_path (file);
  if (!easel_mask_save_png (easel_canvas_area_get_mask (self->area), path, &error))
    toast (self, error->message);
}

static void
file_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselCanvas *self = EASEL_CANVAS (widget);
  if (g_str_equal (action_name, "canvas.save-mask"))
    run_file_dialog (self, _("Save Mask"), TRUE, TRUE, save_mask_done);
  else if (g_str_equal (action_name, "canvas.load-mask"))
    run_file_dialog (self, _("Load Mask"), FALSE, TRUE, load_mask_done);
  else
    run_file_dialog (self, _("Open Input Image"), FALSE, FALSE, load_init_file);
}

static void
on_paste_texture (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(EaselCanvas) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GdkTexture) tex = gdk_clipboard_read_texture_finish (GDK_CLIPBOARD (source), result, &error);
  if (tex == NULL) {
    toast (self, _("The clipboard holds no image: copy an image first"));
    return;
  }
  EaselImage *img = easel_image_from_texture (tex, &error);
  if (img == NULL) {
    toast (self, error->message);
    return;
  }
  easel_canvas_set_init_image (self, img, g_steal_pointer (&tex));
}

static void
paste_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  GdkClipboard *clipboard = gtk_widget_get_clipboard (widget);
  gdk_clipboard_read_texture_async (clipboard, EASEL_CANVAS (widget)->cancellable, on_paste_texture,
                                    g_object_ref (widget));
}

static void
use_result_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselCanvas *self = EASEL_CANVAS (widget);
  if (self->result == NULL)
    return;
  EaselImage *img = g_steal_pointer (&self->result);
  GdkTexture *tex = g_steal_pointer (&self->result_texture);
  easel_canvas_set_init_image (self, img, tex);
}

static void
remove_image_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  easel_canvas_set_init_image (EASEL_CANVAS (widget), NULL, NULL);
}

/* ---- template callbacks --------------------------------------------------------------------- */

static void
on_tool_toggled (EaselCanvas *self, GtkToggleButton *button)
{
  g_object_set (self->area, "tool",
                gtk_toggle_button_get_active (self->eraser_button) ? EASEL_MASK_ERASER : EASEL_MASK_BRUSH, NULL);
}

static void
on_mask_changed (EaselCanvas *self, EaselCanvasArea *area)
{
  update_actions (self);
}

static gboolean
on_drop (EaselCanvas *self, const GValue *value, double x, double y, GtkDropTarget *target)
{
  if (G_VALUE_HOLDS (value, GDK_TYPE_FILE_LIST)) {
    GSList *files = g_value_get_boxed (value);
    if (files == NULL)
      return FALSE;
    load_init_file (self, files->data);
    return TRUE;
  }
  return FALSE;
}

/* ---- GObject -------------------------------------------------------------------------------- */

static void
easel_canvas_dispose (GObject *object)
{
  EaselCanvas *self = EASEL_CANVAS (object);
  g_cancellable_cancel (self->cancellable);
  if (self->preview_tick)
    gtk_widget_remove_tick_callback (GTK_WIDGET (self), self->preview_tick);
  self->preview_tick = 0;
  gtk_widget_dispose_template (GTK_WIDGET (self), EASEL_TYPE_CANVAS);
  G_OBJECT_CLASS (easel_canvas_parent_class)->dispose (object);
}

static void
easel_canvas_finalize (GObject *object)
{
  EaselCanvas *self = EASEL_CANVAS (object);
  g_clear_object (&self->cancellable);
  easel_image_free (self->init_image);
  easel_image_free (self->result);
  g_clear_object (&self->init_texture);
  g_clear_object (&self->result_texture);
  g_clear_object (&self->preview);
  G_OBJECT_CLASS (easel_canvas_parent_class)->finalize (object);
}

static void
easel_canvas_class_init (EaselCanvasClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = easel_canvas_dispose;
  object_class->finalize = easel_canvas_finalize;

  g_type_ensure (EASEL_TYPE_CANVAS_AREA);
  gtk_widget_class_set_template_from_resource (widget_class, "/org/easel/Easel/ui/easel-canvas.ui");
  gtk_widget_class_bind_template_child (widget_class, EaselCanvas, area);
  gtk_widget_class_bind_template_child (widget_class, EaselCanvas, brush_button);
  gtk_widget_class_bind_template_child (widget_class, EaselCanvas, eraser_button);
  gtk_widget_class_bind_template_child (widget_class, EaselCanvas, size_adjustment);
  gtk_widget_class_bind_template_child (widget_class, EaselCanvas, hardness_adjustment);
  gtk_widget_class_bind_template_child (widget_class, EaselCanvas, feather_adjustment);
  gtk_widget_class_bind_template_child (widget_class, EaselCanvas, progress_bar);
  gtk_widget_class_bind_template_child (widget_class, EaselCanvas, progress_revealer);
  gtk_widget_class_bind_template_child (widget_class, EaselCanvas, empty_label);
  gtk_widget_class_bind_template_callback (widget_class, on_tool_toggled);
  gtk_widget_class_bind_template_callback (widget_class, on_mask_changed);

  gtk_widget_class_install_action (widget_class, "canvas.undo", NULL, mask_edit_action);
  gtk_widget_class_install_action (widget_class, "canvas.redo", NULL, mask_edit_action);
  gtk_widget_class_install_action (widget_class, "canvas.invert-mask", NULL, mask_edit_action);
  gtk_widget_class_install_action (widget_class, "canvas.clear-mask", NULL, mask_edit_action);
  gtk_widget_class_install_action (widget_class, "canvas.feather-mask", NULL, mask_edit_action);
  gtk_widget_class_install_action (widget_class, "canvas.save-mask", NULL, file_action);
  gtk_widget_class_install_action (widget_class, "canvas.load-mask", NULL, file_action);
  gtk_widget_class_install_action (widget_class, "canvas.open-image", NULL, file_action);
  gtk_widget_class_install_action (widget_class, "canvas.paste-image", NULL, paste_action);
  gtk_widget_class_install_action (widget_class, "canvas.use-result", NULL, use_result_action);
  gtk_widget_class_install_action (widget_class, "canvas.remove-image", NULL, remove_image_action);
  gtk_widget_class_install_action (widget_class, "canvas.zoom-in", NULL, zoom_action);
  gtk_widget_class_install_action (widget_class, "canvas.zoom-out", NULL, zoom_action);
  gtk_widget_class_install_action (widget_class, "canvas.zoom-fit", NULL, zoom_action);
}

static void
easel_canvas_init (EaselCanvas *self)
{
  self->cancellable = g_cancellable_new ();
  gtk_widget_init_template (GTK_WIDGET (self));

  GtkDropTarget *drop = gtk_drop_target_new (GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
  g_signal_connect_swapped (drop, "drop", G_CALLBACK (on_drop), self);
  gtk_widget_add_controller (GTK_WIDGET (self->area), GTK_EVENT_CONTROLLER (drop));
  update_shown (self);
  update_actions (self);
}
