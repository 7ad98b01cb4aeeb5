/* app/easel-compare-view.c: the comparison page (easel-compare-view.h), template
 * ui/easel-compare-view.ui. */
#include "easel-compare-view.h"

#include <glib/gi18n.h>

struct _EaselCompareView {
  AdwBin parent_instance;

  AdwEntryRow *samplers_row;
  GSettings *settings;
  EaselWorker *worker;
};

G_DEFINE_FINAL_TYPE (EaselCompareView, easel_compare_view, ADW_TYPE_BIN)

void
easel_compare_view_setup (EaselCompareView *self, GSettings *settings, EaselWorker *worker)
{
  g_return_if_fail (EASEL_IS_COMPARE_VIEW (self));
  g_set_object (&self->settings, settings);
  g_set_object (&self->worker, worker);
  g_settings_bind (settings, "compare-samplers", self->samplers_row, "text", G_SETTINGS_BIND_DEFAULT);
}

static void
easel_compare_view_dispose (GObject *object)
{
  EaselCompareView *self = EASEL_COMPARE_VIEW (object);
  gtk_widget_dispose_template (GTK_WIDGET (self), EASEL_TYPE_COMPARE_VIEW);
  g_clear_object (&self->settings);
  g_clear_object (&self->worker);
  G_OBJECT_CLASS (easel_compare_view_parent_class)->dispose (object);
}

static void
easel_compare_view_class_init (EaselCompareViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  object_class->dispose = easel_compare_view_dispose;
  gtk_widget_class_set_template_from_resource (widget_class, "/org/easel/Easel/ui/easel-compare-view.ui");
  gtk_widget_class_bind_template_child (widget_class, EaselCompareView, samplers_row);
}

static void
easel_compare_view_init (EaselCompareView *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}
