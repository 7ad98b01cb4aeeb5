/* app/easel-compare-view.c: the comparison page (easel-compare-view.h), template
 * ui/easel-compare-view.ui. The cells' widgets are made per run (their number is the grid's);
 * previews reach a cell through the worker's one-slot mailbox and are put on screen at the next
 * frame (a tick callback), so no more than one texture per frame is applied. */
#include "easel-compare-view.h"

#include <glib/gi18n.h>

#include "easel-image-io.h"

typedef struct {
  guint job_id;
  gint64 started;              /* monotonic µs; 0 until job-started */
  GtkPicture *picture;
  GtkLabel *caption;
} CellView;

struct _EaselCompareView {
  AdwBin parent_instance;

  /* template children */
  AdwEntryRow *samplers_row;
  AdwComboRow *axis_row;
  AdwEntryRow *values_row;
  GtkLabel *status_label;
  GtkGrid *grid;

  GSettings *settings;
  EaselWorker *worker;
  EaselCompareGrid *model;     /* owned; the last run's grid */
  CellView *cells;             /* row-major, as the grid */
  guint n_pending;
  GdkTexture *pending_preview; /* applied at the next frame to pending_cell */
  int pending_cell;
  guint tick_id;
  char *saved_path;
  GCancellable *cancellable;
};

G_DEFINE_FINAL_TYPE (EaselCompareView, easel_compare_view, ADW_TYPE_BIN)

/* the axis combo's rows, in the order of the template's string list */
static const char *const axis_ids[] = { "none", "scheduler", "steps", "cfg", "seed" };

static void
toast (EaselCompareView *self, const char *message)
{
  gtk_widget_activate_action (GTK_WIDGET (self), "win.toast", "s", message);
}

static int
n_cells (EaselCompareView *self)
{
  return self->model ? easel_compare_grid_n_columns (self->model) * easel_compare_grid_n_rows (self->model) : 0;
}

static int
find_cell (EaselCompareView *self, guint job_id)
{
  for (int i = 0; i < n_cells (self); i++)
    if (self->cells[i].job_id == job_id)
      return i;
  return -1;
}

static void
update_actions (EaselCompareView *self)
{
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "compare.run", self->n_pending == 0);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "compare.cancel", self->n_pending > 0);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "compare.save",
                                 self->model && easel_compare_grid_n_filled (self->model) > 0);
}

static void
update_status (EaselCompareView *self, const char *extra)
{
  int total = n_cells (self), filled = self->model ? easel_compare_grid_n_filled (self->model) : 0;
  g_autofree char *text = NULL;
  if (self->n_pending > 0)
    text = g_strdup_printf (_("%d of %d cells done%s%s"), filled, total, extra ? " · " : "", extra ? extra : "");
  else if (total > 0)
    text = g_strdup_printf (_("%d of %d cells done"), filled, total);
  gtk_label_set_text (self->status_label, text ? text : "");
}

static void
update_caption (EaselCompareView *self, int i)
{
  int cols = easel_compare_grid_n_columns (self->model);
  g_autofree char *caption = easel_compare_grid_cell_caption (self->model, i % cols, i / cols);
  gtk_label_set_text (self->cells[i].caption, caption);
}

/* ---- the grid's widgets --------------------------------------------------------------------- */

static void
clear_cells (EaselCompareView *self)
{
  GtkWidget *child;
  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->grid))) != NULL)
    gtk_grid_remove (self->grid, child);
  g_clear_pointer (&self->cells, g_free);
  g_clear_pointer (&self->model, easel_compare_grid_free);
  g_clear_object (&self->pending_preview);
}

static void
build_cells (EaselCompareView *self)
{
  int cols = easel_compare_grid_n_columns (self->model), rows = easel_compare_grid_n_rows (self->model);
  /* on screen at most 256 pixels a side, keeping the generation's aspect */
  EaselCompareLayout l;
  easel_compare_grid_layout (self->model, &l);
  double scale = MIN (1.0, 256.0 / MAX (l.cell_w, l.cell_h));
  self->cells = g_new0 (CellView, (gsize) cols * (gsize) rows);
  for (int r = 0; r < rows; r++) {
    g_autofree char *row_label = easel_compare_grid_row_label (self->model, r);
    if (row_label) {
      GtkWidget *label = gtk_label_new (row_label);
      gtk_label_set_wrap (GTK_LABEL (label), TRUE);
      gtk_label_set_max_width_chars (GTK_LABEL (label), 14);
      gtk_widget_add_css_class (label, "compare-header");
      gtk_grid_attach (self->grid, label, 0, r, 1, 1);
    }
    for (int c = 0; c < cols; c++) {
      CellView *cv = &self->cells[r * cols + c];
      GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 6);
      gtk_widget_add_css_class (box, "compare-cell");
      cv->picture = GTK_PICTURE (gtk_picture_new ());
      gtk_picture_set_can_shrink (cv->picture, TRUE);
      gtk_widget_set_size_request (GTK_WIDGET (cv->picture), (int) (l.cell_w * scale), (int) (l.cell_h * scale));
      cv->caption = GTK_LABEL (gtk_label_new (NULL));
      gtk_label_set_wrap (cv->caption, TRUE);
      gtk_label_set_max_width_chars (cv->caption, 20);
      gtk_box_append (GTK_BOX (box), GTK_WIDGET (cv->picture));
      gtk_box_append (GTK_BOX (box), GTK_WIDGET (cv->caption));
      gtk_grid_attach (self->grid, box, c + (row_label ? 1 : 0), r, 1, 1);
      update_caption (self, r * cols + c);
    }
  }
}

/* ---- worker signals ------------------------------------------------------------------------- */

static void
on_job_started (EaselWorker *worker, guint id, EaselCompareView *self)
{
  int i = find_cell (self, id);
  if (i < 0)
    return;
  self->cells[i].started = g_get_monotonic_time ();
  g_autofree char *caption = NULL;
  int cols = easel_compare_grid_n_columns (self->model);
  g_autofree char *settings = easel_compare_grid_cell_caption (self->model, i % cols, i / cols);
  caption = g_strdup_printf (_("%s: running…"), settings);
  gtk_label_set_text (self->cells[i].caption, caption);
}

static void
on_progress (EaselWorker *worker, guint id, int step, int total, double eta, EaselCompareView *self)
{
  int i = find_cell (self, id);
  if (i < 0 || total <= 0)
    return;
  g_autofree char *text = g_strdup_printf (_("cell %d: step %d of %d"), i + 1, step, total);
  update_status (self, text);
}

static gboolean
apply_preview_tick (GtkWidget *widget, GdkFrameClock *clock, gpointer user_data)
{
  EaselCompareView *self = EASEL_COMPARE_VIEW (widget);
  if (self->pending_preview && self->pending_cell < n_cells (self))
    gtk_picture_set_paintable (self->cells[self->pending_cell].picture, GDK_PAINTABLE (self->pending_preview));
  g_clear_object (&self->pending_preview);
  self->tick_id = 0;
  return G_SOURCE_REMOVE;
}

static void
on_preview (EaselWorker *worker, guint id, GdkTexture *texture, EaselCompareView *self)
{
  int i = find_cell (self, id);
  if (i < 0)
    return;
  g_set_object (&self->pending_preview, texture);
  self->pending_cell = i;
  if (self->tick_id == 0)
    self->tick_id = gtk_widget_add_tick_callback (GTK_WIDGET (self), apply_preview_tick, NULL, NULL);
}

static void
on_job_finished (EaselWorker *worker, guint id, GPtrArray *images, GPtrArray *parameters, GError *error,
                 EaselCompareView *self)
{
  int i = find_cell (self, id);
  if (i < 0)
    return;
  CellView *cv = &self->cells[i];
  cv->job_id = 0;
  self->n_pending--;
  if (self->pending_preview && self->pending_cell == i)
    g_clear_object (&self->pending_preview);
  int cols = easel_compare_grid_n_columns (self->model);
  if (error == NULL && images && images->len > 0) {
    double seconds = cv->started ? (g_get_monotonic_time () - cv->started) / 1e6 : 0;
    const char *text = parameters && parameters->len > 0 ? parameters->pdata[0] : NULL;
    easel_compare_grid_set_cell (self->model, i % cols, i / cols, easel_job_image_copy (images->pdata[0]), text,
                                 seconds);
    g_autoptr(GdkTexture) tex = easel_texture_from_image (images->pdata[0]);
    gtk_picture_set_paintable (cv->picture, GDK_PAINTABLE (tex));
    update_caption (self, i);
  } else {
    gboolean cancelled = error && (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                                   || g_error_matches (error, EASEL_ERROR, EASEL_ERROR_CANCELLED));
    g_autofree char *settings = easel_compare_grid_cell_caption (self->model, i % cols, i / cols);
    g_autofree char *caption = g_strdup_printf (cancelled ? _("%s: stopped") : _("%s: failed"), settings);
    gtk_label_set_text (cv->caption, caption);
    gtk_picture_set_paintable (cv->picture, NULL);
    if (error && !cancelled) {
      g_autofree char *msg = g_strdup_printf (_("Comparison cell “%s” failed: %s"), settings, error->message);
      toast (self, msg);
    }
  }
  update_status (self, NULL);
  update_actions (self);
}

/* ---- actions -------------------------------------------------------------------------------- */

static void
cancel_jobs (EaselCompareView *self)
{
  for (int i = 0; i < n_cells (self); i++)
    if (self->cells[i].job_id)
      easel_worker_cancel (self->worker, self->cells[i].job_id);
}

static void
run_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselCompareView *self = EASEL_COMPARE_VIEW (widget);
  g_autoptr(GError) error = NULL;
  if (self->n_pending > 0 || self->worker == NULL)
    return;

  g_autofree char *samplers_text = g_settings_get_string (self->settings, "compare-samplers");
  g_autofree char *axis_name = g_settings_get_string (self->settings, "compare-axis");
  g_autofree char *values_text = g_settings_get_string (self->settings, "compare-values");
  EaselCompareAxis axis = EASEL_COMPARE_AXIS_NONE;
  easel_compare_axis_from_name (axis_name, &axis);
  g_auto(GStrv) samplers = easel_compare_parse_values (EASEL_COMPARE_AXIS_SAMPLER, samplers_text, &error);
  if (samplers == NULL) {
    g_autofree char *msg = g_strdup_printf (_("Samplers to compare: %s"), error->message);
    toast (self, msg);
    return;
  }
  g_auto(GStrv) values = NULL;
  if (axis != EASEL_COMPARE_AXIS_NONE
      && (values = easel_compare_parse_values (axis, values_text, &error)) == NULL) {
    g_autofree char *msg = g_strdup_printf (_("Values of the second axis: %s"), error->message);
    toast (self, msg);
    return;
  }

  /* one prompt and one seed for every cell (unless seeds are the axis) */
  guint64 seed = easel_job_next_seed (self->settings);
  g_autoptr(EaselJobRequest) base = easel_job_request_from_settings (self->settings, seed, NULL, NULL);
  base->params.batch_size = base->params.batch_count = 1;
  clear_cells (self);
  self->model = easel_compare_grid_new (EASEL_COMPARE_AXIS_SAMPLER, (const char *const *) samplers, axis,
                                        (const char *const *) values, base->params.width, base->params.height);
  build_cells (self);
  int cols = easel_compare_grid_n_columns (self->model);
  for (int i = 0; i < n_cells (self); i++) {
    self->cells[i].job_id = easel_worker_submit (self->worker,
                                                 easel_compare_grid_request (self->model, base, i % cols, i / cols));
    self->n_pending++;
  }
  update_status (self, NULL);
  update_actions (self);
}

static void
cancel_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  cancel_jobs (EASEL_COMPARE_VIEW (widget));
}

static void
on_grid_saved (GObject *source, GAsyncResult *result, gpointer user_data)
{
  g_autoptr(EaselCompareView) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *path = easel_image_save_result_finish (result, &error);
  if (path == NULL) {
    if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      g_autofree char *msg = g_strdup_printf (_("The grid could not be saved (check the output folder in "
                                                "Preferences): %s"), error->message);
      toast (self, msg);
    }
    return;
  }
  g_free (self->saved_path);
  self->saved_path = g_strdup (path);
  g_autofree char *msg = g_strdup_printf (_("Grid saved as %s"), path);
  toast (self, msg);
}

static void
save_action (GtkWidget *widget, const char *action_name, GVariant *param)
{
  EaselCompareView *self = EASEL_COMPARE_VIEW (widget);
  g_autoptr(GError) error = NULL;
  if (self->model == NULL)
    return;
  g_autoptr(EaselImage) image = easel_compare_grid_render (self->model, &error);
  if (image == NULL) {
    g_autofree char *msg = g_strdup_printf (_("The grid could not be drawn: %s"), error->message);
    toast (self, msg);
    return;
  }
  g_autofree char *folder = easel_job_output_folder (self->settings);
  easel_image_save_named_async (image, easel_compare_grid_first_parameters (self->model), folder, "grid",
                                self->cancellable, on_grid_saved, g_object_ref (self));
}

/* ---- settings ------------------------------------------------------------------------------- */

static gboolean
axis_get_mapping (GValue *value, GVariant *variant, gpointer user_data)
{
  const char *name = g_variant_get_string (variant, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (axis_ids); i++)
    if (g_strcmp0 (name, axis_ids[i]) == 0) {
      g_value_set_uint (value, i);
      return TRUE;
    }
  g_value_set_uint (value, 0);
  return TRUE;
}

static GVariant *
axis_set_mapping (const GValue *value, const GVariantType *type, gpointer user_data)
{
  guint i = g_value_get_uint (value);
  return g_variant_new_string (axis_ids[i < G_N_ELEMENTS (axis_ids) ? i : 0]);
}

static void
on_axis_changed (GSettings *settings, const char *key, EaselCompareView *self)
{
  g_autofree char *axis = g_settings_get_string (settings, "compare-axis");
  gtk_widget_set_sensitive (GTK_WIDGET (self->values_row), g_strcmp0 (axis, "none") != 0);
}

void
easel_compare_view_setup (EaselCompareView *self, GSettings *settings, EaselWorker *worker)
{
  g_return_if_fail (EASEL_IS_COMPARE_VIEW (self));
  g_set_object (&self->settings, settings);
  g_set_object (&self->worker, worker);
  g_settings_bind (settings, "compare-samplers", self->samplers_row, "text", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (settings, "compare-values", self->values_row, "text", G_SETTINGS_BIND_DEFAULT);
  g_settings_bind_with_mapping (settings, "compare-axis", self->axis_row, "selected", G_SETTINGS_BIND_DEFAULT,
                                axis_get_mapping, axis_set_mapping, NULL, NULL);
  g_signal_connect_object (settings, "changed::compare-axis", G_CALLBACK (on_axis_changed), self, 0);
  on_axis_changed (settings, NULL, self);

  g_signal_connect_object (worker, "job-started", G_CALLBACK (on_job_started), self, 0);
  g_signal_connect_object (worker, "progress", G_CALLBACK (on_progress), self, 0);
  g_signal_connect_object (worker, "preview", G_CALLBACK (on_preview), self, 0);
  g_signal_connect_object (worker, "job-finished", G_CALLBACK (on_job_finished), self, 0);
}

const EaselCompareGrid *
easel_compare_view_get_grid (EaselCompareView *self)
{
  g_return_val_if_fail (EASEL_IS_COMPARE_VIEW (self), NULL);
  return self->model;
}

gboolean
easel_compare_view_is_running (EaselCompareView *self)
{
  g_return_val_if_fail (EASEL_IS_COMPARE_VIEW (self), FALSE);
  return self->n_pending > 0;
}

const char *
easel_compare_view_get_saved_path (EaselCompareView *self)
{
  g_return_val_if_fail (EASEL_IS_COMPARE_VIEW (self), NULL);
  return self->saved_path;
}

/* ---- GObject -------------------------------------------------------------------------------- */

static void
easel_compare_view_dispose (GObject *object)
{
  EaselCompareView *self = EASEL_COMPARE_VIEW (object);
  g_cancellable_cancel (self->cancellable);
  if (self->worker)
    cancel_jobs (self);
  if (self->tick_id) {
    gtk_widget_remove_tick_callback (GTK_WIDGET (self), self->tick_id);
    self->tick_id = 0;
  }
  gtk_widget_dispose_template (GTK_WIDGET (self), EASEL_TYPE_COMPARE_VIEW);
  g_clear_pointer (&self->cells, g_free);
  g_clear_pointer (&self->model, easel_compare_grid_free);
  g_clear_object (&self->pending_preview);
  g_clear_object (&self->settings);
  g_clear_object (&self->worker);
  G_OBJECT_CLASS (easel_compare_view_parent_class)->dispose (object);
}

static void
easel_compare_view_finalize (GObject *object)
{
  EaselCompareView *self = EASEL_COMPARE_VIEW (object);
  g_free (self->saved_path);
  g_clear_object (&self->cancellable);
  G_OBJECT_CLASS (easel_compare_view_parent_class)->finalize (object);
}

static void
easel_compare_view_class_init (EaselCompareViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = easel_compare_view_dispose;
  object_class->finalize = easel_compare_view_finalize;
  gtk_widget_class_set_template_from_resource (widget_class, "/org/easel/Easel/ui/easel-compare-view.ui");
  gtk_widget_class_bind_template_child (widget_class, EaselCompareView, samplers_row);
  gtk_widget_class_bind_template_child (widget_class, EaselCompareView, axis_row);
  gtk_widget_class_bind_template_child (widget_class, EaselCompareView, values_row);
  gtk_widget_class_bind_template_child (widget_class, EaselCompareView, status_label);
  gtk_widget_class_bind_template_child (widget_class, EaselCompareView, grid);
  gtk_widget_class_install_action (widget_class, "compare.run", NULL, run_action);
  gtk_widget_class_install_action (widget_class, "compare.cancel", NULL, cancel_action);
  gtk_widget_class_install_action (widget_class, "compare.save", NULL, save_action);
}

static void
easel_compare_view_init (EaselCompareView *self)
{
  self->cancellable = g_cancellable_new ();
  gtk_widget_init_template (GTK_WIDGET (self));
  update_actions (self);
}
