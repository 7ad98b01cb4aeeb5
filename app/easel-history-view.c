/* app/easel-history-view.c: the history page (easel-history-view.h), template
 * ui/easel-history-view.ui. */
#include "easel-history-view.h"

#include <glib/gi18n.h>

#include "easel-history.h"
#include "easel-image-io.h"
#include "easel-job.h"

struct _EaselHistoryView {
  AdwBin parent_instance;

  GtkGridView *grid;
  AdwStatusPage *empty_page;

  GListStore *items;
  GSettings *settings;
  GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE (EaselHistoryView, easel_history_view, ADW_TYPE_BIN)

enum { ACTIVATED, N_SIGNALS };
static guint signals[N_SIGNALS];

GListModel *
easel_history_view_get_model (EaselHistoryView *self)
{
  return G_LIST_MODEL (self->items);
}

static void
update_page (EaselHistoryView *self)
{
  /* the bin's child; not a bound template child, or AdwBin and the template would both unparent it */
  gtk_stack_set_visible_child_name (GTK_STACK (adw_bin_get_child (ADW_BIN (self))),
                                    g_list_model_get_n_items (G_LIST_MODEL (self->items)) ? "grid" : "empty");
}

static void
on_loaded (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(EaselHistoryView) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) items = easel_history_load_finish (result, &error);
  if (items == NULL)
    return;   /* cancelled: a newer scan replaces this one */
  for (guint i = items->len; i > 0; i--)
    g_list_store_insert (self->items, 0, items->pdata[i - 1]);
  update_page (self);
}

static void
rescan (EaselHistoryView *self)
{
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  g_list_store_remove_all (self->items);
  update_page (self);
  g_autofree char *folder = easel_job_output_folder (self->settings);
  g_autofree char *text = g_strdup_printf (_("Results are saved in %s"), folder);
  adw_status_page_set_description (self->empty_page, text);
  easel_history_load_async (folder, NULL, self->cancellable, on_loaded, g_object_ref (self));
}

static void
on_output_folder_changed (GSettings *settings, const char *key, EaselHistoryView *self)
{
  rescan (self);
}

void
easel_history_view_bind_settings (EaselHistoryView *self, GSettings *settings)
{
  g_return_if_fail (EASEL_IS_HISTORY_VIEW (self));
  g_set_object (&self->settings, settings);
  g_signal_connect_object (settings, "changed::output-folder", G_CALLBACK (on_output_folder_changed), self, 0);
  rescan (self);
}

void
easel_history_view_add_file (EaselHistoryView *self, const char *path)
{
  g_return_if_fail (EASEL_IS_HISTORY_VIEW (self));
  const char *paths[] = { path, NULL };
  easel_history_load_async (NULL, paths, self->cancellable, on_loaded, g_object_ref (self));
}

static void
on_full_image (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(EaselHistoryView) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselLoadedImage) li = easel_image_load_finish (result, &error);
  if (li == NULL) {
    if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      gtk_widget_activate_action (GTK_WIDGET (self), "win.toast", "s", error->message);
    return;
  }
  g_signal_emit (self, signals[ACTIVATED], 0, li->path, li->parameters, li->image);
}

void
easel_history_view_activate (EaselHistoryView *self, guint position)
{
  g_autoptr(EaselHistoryItem) item = g_list_model_get_item (G_LIST_MODEL (self->items), position);
  if (item == NULL)
    return;
  g_autoptr(GFile) file = g_file_new_for_path (easel_history_item_get_path (item));
  easel_image_load_async (file, self->cancellable, on_full_image, g_object_ref (self));
}

static void
on_grid_activate (EaselHistoryView *self, guint position, GtkGridView *grid)
{
  easel_history_view_activate (self, position);
}

static void
setup_item (GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  GtkWidget *picture = gtk_picture_new ();
  gtk_picture_set_can_shrink (GTK_PICTURE (picture), TRUE);
  gtk_widget_set_size_request (picture, 160, 160);
  gtk_widget_add_css_class (picture, "history-thumb");
  gtk_list_item_set_child (list_item, picture);
}

static void
bind_item (GtkSignalListItemFactory *factory, GtkListItem *list_item, gpointer user_data)
{
  EaselHistoryItem *item = gtk_list_item_get_item (list_item);
  GtkWidget *picture = gtk_list_item_get_child (list_item);
  gtk_picture_set_paintable (GTK_PICTURE (picture), GDK_PAINTABLE (easel_history_item_get_thumbnail (item)));
  const char *params = easel_history_item_get_parameters (item);
  g_autofree char *name = g_path_get_basename (easel_history_item_get_path (item));
  g_autofree char *tip = params ? g_strdup_printf ("%s\n\n%s", name, params) : g_strdup (name);
  gtk_widget_set_tooltip_text (picture, tip);
  gtk_accessible_update_property (GTK_ACCESSIBLE (picture), GTK_ACCESSIBLE_PROPERTY_LABEL, name, -1);
}

static void
easel_history_view_dispose (GObject *object)
{
  EaselHistoryView *self = EASEL_HISTORY_VIEW (object);
  g_cancellable_cancel (self->cancellable);
  gtk_widget_dispose_template (GTK_WIDGET (self), EASEL_TYPE_HISTORY_VIEW);
  G_OBJECT_CLASS (easel_history_view_parent_class)->dispose (object);
}

static void
easel_history_view_finalize (GObject *object)
{
  EaselHistoryView *self = EASEL_HISTORY_VIEW (object);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->items);
  g_clear_object (&self->settings);
  G_OBJECT_CLASS (easel_history_view_parent_class)->finalize (object);
}

static void
easel_history_view_class_init (EaselHistoryViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = easel_history_view_dispose;
  object_class->finalize = easel_history_view_finalize;
  signals[ACTIVATED] = g_signal_new ("activated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                     G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_POINTER);

  gtk_widget_class_set_template_from_resource (widget_class, "/org/easel/Easel/ui/easel-history-view.ui");
  gtk_widget_class_bind_template_child (widget_class, EaselHistoryView, grid);
  gtk_widget_class_bind_template_child (widget_class, EaselHistoryView, empty_page);
  gtk_widget_class_bind_template_callback (widget_class, on_grid_activate);
}

static void
easel_history_view_init (EaselHistoryView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->items = g_list_store_new (EASEL_TYPE_HISTORY_ITEM);
  self->cancellable = g_cancellable_new ();

  GtkListItemFactory *factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (factory, "setup", G_CALLBACK (setup_item), NULL);
  g_signal_connect (factory, "bind", G_CALLBACK (bind_item), NULL);
  gtk_grid_view_set_factory (self->grid, factory);
  g_object_unref (factory);
  GtkSingleSelection *sel = gtk_single_selection_new (g_object_ref (G_LIST_MODEL (self->items)));
  gtk_single_selection_set_autoselect (sel, FALSE);
  gtk_grid_view_set_model (self->grid, GTK_SELECTION_MODEL (sel));
  g_object_unref (sel);
  update_page (self);
}
