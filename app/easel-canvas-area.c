/* app/easel-canvas-area.c: the canvas's drawing surface (easel-canvas-area.h).
 * View transform: widget = origin + image * scale, scale = fit * zoom, where fit makes the whole
 * image visible and origin centres it, moved by pan (widget pixels). */
#include "easel-canvas-area.h"

#include <math.h>

struct _EaselCanvasArea {
  GtkWidget parent_instance;

  GdkTexture *texture;           /* owned, may be NULL */
  GdkTexture *preview;           /* owned, may be NULL: drawn stretched over the frame */
  int placeholder_w, placeholder_h;
  EaselMask *mask;               /* owned; the image's size */
  GdkTexture *mask_texture;      /* the tinted overlay, rebuilt when the mask changes */

  /* properties */
  int tool;                      /* EaselMaskTool */
  double brush_size;             /* diameter, image pixels */
  double brush_hardness;
  gboolean show_mask;
  gboolean paint_enabled;
  double zoom;                   /* 1 = fit */

  double pan_x, pan_y;
  double drag_pan_x, drag_pan_y; /* pan at the start of a view drag */
  gboolean painting, panning;
  double pointer_x, pointer_y;   /* widget coordinates; < 0 when outside */
};

G_DEFINE_FINAL_TYPE (EaselCanvasArea, easel_canvas_area, GTK_TYPE_WIDGET)

enum { PROP_0, PROP_TOOL, PROP_BRUSH_SIZE, PROP_BRUSH_HARDNESS, PROP_SHOW_MASK, PROP_PAINT_ENABLED, PROP_ZOOM, N_PROPS };
static GParamSpec *properties[N_PROPS];

enum { MASK_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void
image_size (EaselCanvasArea *self, int *w, int *h)
{
  *w = self->texture ? gdk_texture_get_width (self->texture) : self->placeholder_w;
  *h = self->texture ? gdk_texture_get_height (self->texture) : self->placeholder_h;
}

static void
view_transform (EaselCanvasArea *self, double *scale, double *ox, double *oy)
{
  int iw, ih;
  double ww = gtk_widget_get_width (GTK_WIDGET (self)), wh = gtk_widget_get_height (GTK_WIDGET (self));
  image_size (self, &iw, &ih);
  double fit = MIN ((ww - 24) / iw, (wh - 24) / ih);
  if (!(fit > 0))
    fit = 1e-3;
  *scale = fit * self->zoom;
  *ox = (ww - iw * *scale) / 2 + self->pan_x;
  *oy = (wh - ih * *scale) / 2 + self->pan_y;
}

static void
widget_to_image (EaselCanvasArea *self, double wx, double wy, double *ix, double *iy)
{
  double s, ox, oy;
  view_transform (self, &s, &ox, &oy);
  *ix = (wx - ox) / s;
  *iy = (wy - oy) / s;
}

static void
rebuild_mask_texture (EaselCanvasArea *self)
{
  g_clear_object (&self->mask_texture);
  if (easel_mask_is_empty (self->mask))
    return;
  int w = easel_mask_width (self->mask), h = easel_mask_height (self->mask);
  const guint8 *m = easel_mask_data (self->mask);
  gsize n = (gsize) w * (gsize) h;
  guint8 *rgba = g_malloc (n * 4);
  for (gsize i = 0; i < n; i++) {
    /* premultiplied tint: GNOME's red 3 at half the coverage */
    guint a = m[i] / 2;
    rgba[i * 4 + 0] = (guint8) (0xe0 * a / 255);
    rgba[i * 4 + 1] = (guint8) (0x1b * a / 255);
    rgba[i * 4 + 2] = (guint8) (0x24 * a / 255);
    rgba[i * 4 + 3] = (guint8) a;
  }
  g_autoptr(GBytes) bytes = g_bytes_new_take (rgba, n * 4);
  self->mask_texture = gdk_memory_texture_new (w, h, GDK_MEMORY_R8G8B8A8_PREMULTIPLIED, bytes, (gsize) w * 4);
}

void
easel_canvas_area_mask_changed (EaselCanvasArea *self)
{
  g_return_if_fail (EASEL_IS_CANVAS_AREA (self));
  rebuild_mask_texture (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_signal_emit (self, signals[MASK_CHANGED], 0);
}

/* Keeps the mask the size of the image, scaling what was painted. */
static void
sync_mask_size (EaselCanvasArea *self)
{
  int w, h;
  image_size (self, &w, &h);
  if (w != easel_mask_width (self->mask) || h != easel_mask_height (self->mask)) {
    easel_mask_resize (self->mask, w, h);
    easel_canvas_area_mask_changed (self);
  }
}

void
easel_canvas_area_set_texture (EaselCanvasArea *self, GdkTexture *texture)
{
  g_return_if_fail (EASEL_IS_CANVAS_AREA (self));
  if (!g_set_object (&self->texture, texture))
    return;
  sync_mask_size (self);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
easel_canvas_area_set_preview (EaselCanvasArea *self, GdkTexture *texture)
{
  g_return_if_fail (EASEL_IS_CANVAS_AREA (self));
  if (g_set_object (&self->preview, texture))
    gtk_widget_queue_draw (GTK_WIDGET (self));
}

GdkTexture *
easel_canvas_area_get_preview (EaselCanvasArea *self)
{
  g_return_val_if_fail (EASEL_IS_CANVAS_AREA (self), NULL);
  return self->preview;
}

GdkTexture *
easel_canvas_area_get_texture (EaselCanvasArea *self)
{
  g_return_val_if_fail (EASEL_IS_CANVAS_AREA (self), NULL);
  return self->texture;
}

void
easel_canvas_area_set_placeholder_size (EaselCanvasArea *self, int width, int height)
{
  g_return_if_fail (EASEL_IS_CANVAS_AREA (self));
  self->placeholder_w = CLAMP (width, 1, EASEL_IMAGE_MAX_SIDE);
  self->placeholder_h = CLAMP (height, 1, EASEL_IMAGE_MAX_SIDE);
  if (self->texture == NULL) {
    sync_mask_size (self);
    gtk_widget_queue_draw (GTK_WIDGET (self));
  }
}

EaselMask *
easel_canvas_area_get_mask (EaselCanvasArea *self)
{
  g_return_val_if_fail (EASEL_IS_CANVAS_AREA (self), NULL);
  return self->mask;
}

void
easel_canvas_area_paint_stroke (EaselCanvasArea *self, EaselMaskTool tool, const double *points, gsize n_points)
{
  g_return_if_fail (EASEL_IS_CANVAS_AREA (self));
  if (n_points == 0)
    return;
  easel_mask_stroke_begin (self->mask, tool, self->brush_size / 2, self->brush_hardness, points[0], points[1]);
  for (gsize i = 1; i < n_points; i++)
    easel_mask_stroke_to (self->mask, points[2 * i], points[2 * i + 1]);
  easel_mask_stroke_end (self->mask);
  easel_canvas_area_mask_changed (self);
}

static void
set_zoom (EaselCanvasArea *self, double zoom)
{
  zoom = CLAMP (zoom, 0.1, 32.0);
  if (zoom == self->zoom)
    return;
  self->zoom = zoom;
  gtk_widget_queue_draw (GTK_WIDGET (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_ZOOM]);
}

void
easel_canvas_area_zoom_by (EaselCanvasArea *self, double factor)
{
  g_return_if_fail (EASEL_IS_CANVAS_AREA (self));
  set_zoom (self, self->zoom * factor);
}

void
easel_canvas_area_zoom_fit (EaselCanvasArea *self)
{
  g_return_if_fail (EASEL_IS_CANVAS_AREA (self));
  self->pan_x = self->pan_y = 0;
  set_zoom (self, 1.0);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/* ---- drawing -------------------------------------------------------------------------------- */

static void
easel_canvas_area_snapshot (GtkWidget *widget, GtkSnapshot *snapshot)
{
  EaselCanvasArea *self = EASEL_CANVAS_AREA (widget);
  double s, ox, oy;
  int iw, ih;
  image_size (self, &iw, &ih);
  view_transform (self, &s, &ox, &oy);
  graphene_rect_t frame = GRAPHENE_RECT_INIT ((float) ox, (float) oy, (float) (iw * s), (float) (ih * s));

  /* the frame's shadow-like outline, then the image or an empty card */
  GskRoundedRect outline;
  gsk_rounded_rect_init_from_rect (&outline, &GRAPHENE_RECT_INIT (frame.origin.x - 1, frame.origin.y - 1,
                                                                  frame.size.width + 2, frame.size.height + 2), 0);
  GdkRGBA border = { 0, 0, 0, 0.15f };
  gtk_snapshot_append_border (snapshot, &outline, (float[4]) { 1, 1, 1, 1 },
                              (GdkRGBA[4]) { border, border, border, border });
  if (self->preview || self->texture) {
    gtk_snapshot_append_texture (snapshot, self->preview ? self->preview : self->texture, &frame);
  } else {
    GdkRGBA card = { 0.5f, 0.5f, 0.5f, 0.12f };
    gtk_snapshot_append_color (snapshot, &card, &frame);
  }
  if (self->show_mask && self->mask_texture)
    gtk_snapshot_append_texture (snapshot, self->mask_texture, &frame);

  /* the brush outline under the pointer */
  if (self->paint_enabled && self->pointer_x >= 0) {
    float r = (float) (self->brush_size / 2 * s);
    GskRoundedRect ring;
    gsk_rounded_rect_init_from_rect (&ring, &GRAPHENE_RECT_INIT ((float) self->pointer_x - r,
                                                                 (float) self->pointer_y - r, 2 * r, 2 * r), r);
    GdkRGBA c = self->tool == EASEL_MASK_ERASER ? (GdkRGBA) { 1, 1, 1, 0.9f } : (GdkRGBA) { 0.88f, 0.11f, 0.14f, 0.9f };
    gtk_snapshot_append_border (snapshot, &ring, (float[4]) { 1.5f, 1.5f, 1.5f, 1.5f }, (GdkRGBA[4]) { c, c, c, c });
  }
}

static void
easel_canvas_area_measure (GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum, int *natural,
                           int *minimum_baseline, int *natural_baseline)
{
  *minimum = 128;
  *natural = 512;
}

/* ---- input ---------------------------------------------------------------------------------- */

static void
on_drag_begin (GtkGestureDrag *gesture, double x, double y, EaselCanvasArea *self)
{
  guint button = gtk_gesture_single_get_current_button (GTK_GESTURE_SINGLE (gesture));
  if (button == GDK_BUTTON_PRIMARY && self->paint_enabled) {
    double ix, iy;
    widget_to_image (self, x, y, &ix, &iy);
    self->painting = TRUE;
    easel_mask_stroke_begin (self->mask, self->tool, self->brush_size / 2, self->brush_hardness, ix, iy);
    rebuild_mask_texture (self);
    gtk_widget_queue_draw (GTK_WIDGET (self));
  } else {
    self->panning = TRUE;
    self->drag_pan_x = self->pan_x;
    self->drag_pan_y = self->pan_y;
  }
  gtk_gesture_set_state (GTK_GESTURE (gesture), GTK_EVENT_SEQUENCE_CLAIMED);
}

static void
on_drag_update (GtkGestureDrag *gesture, double dx, double dy, EaselCanvasArea *self)
{
  double sx, sy;
  gtk_gesture_drag_get_start_point (gesture, &sx, &sy);
  self->pointer_x = sx + dx;
  self->pointer_y = sy + dy;
  if (self->painting) {
    double ix, iy;
    widget_to_image (self, sx + dx, sy + dy, &ix, &iy);
    easel_mask_stroke_to (self->mask, ix, iy);
    rebuild_mask_texture (self);
  } else if (self->panning) {
    self->pan_x = self->drag_pan_x + dx;
    self->pan_y = self->drag_pan_y + dy;
  }
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_drag_end (GtkGestureDrag *gesture, double dx, double dy, EaselCanvasArea *self)
{
  if (self->painting) {
    easel_mask_stroke_end (self->mask);
    easel_canvas_area_mask_changed (self);
  }
  self->painting = self->panning = FALSE;
}

static gboolean
on_scroll (GtkEventControllerScroll *controller, double dx, double dy, EaselCanvasArea *self)
{
  GdkModifierType mods = gtk_event_controller_get_current_event_state (GTK_EVENT_CONTROLLER (controller));
  if (mods & GDK_CONTROL_MASK) {
    /* zoom around the pointer: keep the image point under it in place */
    double s0, ox0, oy0, ix, iy;
    view_transform (self, &s0, &ox0, &oy0);
    widget_to_image (self, self->pointer_x, self->pointer_y, &ix, &iy);
    set_zoom (self, self->zoom * pow (1.15, -dy));
    double s1, ox1, oy1;
    view_transform (self, &s1, &ox1, &oy1);
    self->pan_x += (ox0 + ix * s0) - (ox1 + ix * s1);
    self->pan_y += (oy0 + iy * s0) - (oy1 + iy * s1);
  } else {
    self->pan_x -= dx * 24;
    self->pan_y -= dy * 24;
  }
  gtk_widget_queue_draw (GTK_WIDGET (self));
  return TRUE;
}

static void
on_motion (GtkEventControllerMotion *controller, double x, double y, EaselCanvasArea *self)
{
  self->pointer_x = x;
  self->pointer_y = y;
  if (self->paint_enabled)
    gtk_widget_queue_draw (GTK_WIDGET (self));
}

static void
on_leave (GtkEventControllerMotion *controller, EaselCanvasArea *self)
{
  self->pointer_x = self->pointer_y = -1;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/* ---- GObject -------------------------------------------------------------------------------- */

static void
easel_canvas_area_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  EaselCanvasArea *self = EASEL_CANVAS_AREA (object);
  switch (prop_id) {
  case PROP_TOOL: g_value_set_int (value, self->tool); break;
  case PROP_BRUSH_SIZE: g_value_set_double (value, self->brush_size); break;
  case PROP_BRUSH_HARDNESS: g_value_set_double (value, self->brush_hardness); break;
  case PROP_SHOW_MASK: g_value_set_boolean (value, self->show_mask); break;
  case PROP_PAINT_ENABLED: g_value_set_boolean (value, self->paint_enabled); break;
  case PROP_ZOOM: g_value_set_double (value, self->zoom); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
easel_canvas_area_set_property (GObject *object, guint prop_id, const GValue *value, GParamSpec *pspec)
{
  EaselCanvasArea *self = EASEL_CANVAS_AREA (object);
  switch (prop_id) {
  case PROP_TOOL:
    if (self->tool != g_value_get_int (value)) {
      self->tool = g_value_get_int (value);
      g_object_notify_by_pspec (object, pspec);
    }
    break;
  case PROP_BRUSH_SIZE:
    if (self->brush_size != g_value_get_double (value)) {
      self->brush_size = g_value_get_double (value);
      g_object_notify_by_pspec (object, pspec);
    }
    break;
  case PROP_BRUSH_HARDNESS:
    if (self->brush_hardness != g_value_get_double (value)) {
      self->brush_hardness = g_value_get_double (value);
      g_object_notify_by_pspec (object, pspec);
    }
    break;
  case PROP_SHOW_MASK:
    if (self->show_mask != g_value_get_boolean (value)) {
      self->show_mask = g_value_get_boolean (value);
      gtk_widget_queue_draw (GTK_WIDGET (self));
      g_object_notify_by_pspec (object, pspec);
    }
    break;
  case PROP_PAINT_ENABLED:
    if (self->paint_enabled != g_value_get_boolean (value)) {
      self->paint_enabled = g_value_get_boolean (value);
      gtk_widget_set_cursor_from_name (GTK_WIDGET (self), self->paint_enabled ? "crosshair" : NULL);
      gtk_widget_queue_draw (GTK_WIDGET (self));
      g_object_notify_by_pspec (object, pspec);
    }
    break;
  case PROP_ZOOM:
    set_zoom (self, g_value_get_double (value));
    break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
easel_canvas_area_finalize (GObject *object)
{
  EaselCanvasArea *self = EASEL_CANVAS_AREA (object);
  g_clear_object (&self->texture);
  g_clear_object (&self->preview);
  g_clear_object (&self->mask_texture);
  easel_mask_free (self->mask);
  G_OBJECT_CLASS (easel_canvas_area_parent_class)->finalize (object);
}

static void
easel_canvas_area_class_init (EaselCanvasAreaClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = easel_canvas_area_finalize;
  object_class->get_property = easel_canvas_area_get_property;
  object_class->set_property = easel_canvas_area_set_property;
  widget_class->snapshot = easel_canvas_area_snapshot;
  widget_class->measure = easel_canvas_area_measure;

  properties[PROP_TOOL] = g_param_spec_int ("tool", NULL, NULL, EASEL_MASK_BRUSH, EASEL_MASK_ERASER,
                                            EASEL_MASK_BRUSH, rw);
  properties[PROP_BRUSH_SIZE] = g_param_spec_double ("brush-size", NULL, NULL, 1, 512, 32, rw);
  properties[PROP_BRUSH_HARDNESS] = g_param_spec_double ("brush-hardness", NULL, NULL, 0, 1, 0.6, rw);
  properties[PROP_SHOW_MASK] = g_param_spec_boolean ("show-mask", NULL, NULL, TRUE, rw);
  properties[PROP_PAINT_ENABLED] = g_param_spec_boolean ("paint-enabled", NULL, NULL, FALSE, rw);
  properties[PROP_ZOOM] = g_param_spec_double ("zoom", NULL, NULL, 0.1, 32, 1, rw);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  signals[MASK_CHANGED] = g_signal_new ("mask-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                        NULL, G_TYPE_NONE, 0);
  gtk_widget_class_set_css_name (widget_class, "easel-canvas-area");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
easel_canvas_area_init (EaselCanvasArea *self)
{
  self->placeholder_w = self->placeholder_h = 512;
  self->mask = easel_mask_new (512, 512);
  self->brush_size = 32;
  self->brush_hardness = 0.6;
  self->show_mask = TRUE;
  self->zoom = 1.0;
  self->pointer_x = self->pointer_y = -1;
  gtk_widget_set_overflow (GTK_WIDGET (self), GTK_OVERFLOW_HIDDEN);
  gtk_widget_set_focusable (GTK_WIDGET (self), TRUE);

  GtkGesture *drag = gtk_gesture_drag_new ();
  gtk_gesture_single_set_button (GTK_GESTURE_SINGLE (drag), 0);
  g_signal_connect (drag, "drag-begin", G_CALLBACK (on_drag_begin), self);
  g_signal_connect (drag, "drag-update", G_CALLBACK (on_drag_update), self);
  g_signal_connect (drag, "drag-end", G_CALLBACK (on_drag_end), self);
  gtk_widget_add_controller (GTK_WIDGET (self), GTK_EVENT_CONTROLLER (drag));

  GtkEventController *scroll = gtk_event_controller_scroll_new (GTK_EVENT_CONTROLLER_SCROLL_BOTH_AXES);
  g_signal_connect (scroll, "scroll", G_CALLBACK (on_scroll), self);
  gtk_widget_add_controller (GTK_WIDGET (self), scroll);

  GtkEventController *motion = gtk_event_controller_motion_new ();
  g_signal_connect (motion, "motion", G_CALLBACK (on_motion), self);
  g_signal_connect (motion, "leave", G_CALLBACK (on_leave), self);
  gtk_widget_add_controller (GTK_WIDGET (self), motion);
}
