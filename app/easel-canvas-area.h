/* app/easel-canvas-area.h: the drawing surface of the canvas: the image (result, live preview or
 * init image) fitted to the widget, zoom and pan, the inpaint mask as a tinted overlay, and
 * painting with the pointer (button 1 paints, middle or right button drags the view, Ctrl+scroll
 * zooms, scroll pans). The mask is an EaselMask the area owns, sized to the image. */
#pragma once

#include <gtk/gtk.h>

#include "easel-mask.h"

G_BEGIN_DECLS

#define EASEL_TYPE_CANVAS_AREA (easel_canvas_area_get_type ())
G_DECLARE_FINAL_TYPE (EaselCanvasArea, easel_canvas_area, EASEL, CANVAS_AREA, GtkWidget)

/* The image shown (NULL: an empty frame of the placeholder size). The mask is scaled to its size. */
void       easel_canvas_area_set_texture (EaselCanvasArea *self, GdkTexture *texture);
GdkTexture *easel_canvas_area_get_texture (EaselCanvasArea *self);
/* A live preview drawn stretched over the image's frame (a latent-sized preview fills the
 * generation-sized frame), leaving the image and its mask as they are. NULL removes it. */
void       easel_canvas_area_set_preview (EaselCanvasArea *self, GdkTexture *texture);
GdkTexture *easel_canvas_area_get_preview (EaselCanvasArea *self);
/* The frame's size while no image is shown (the generation size). */
void       easel_canvas_area_set_placeholder_size (EaselCanvasArea *self, int width, int height);

EaselMask *easel_canvas_area_get_mask (EaselCanvasArea *self);
/* Call after changing the mask from outside (undo, invert, load): redraws, emits mask-changed. */
void       easel_canvas_area_mask_changed (EaselCanvasArea *self);

/* A stroke in image pixel coordinates (x0, y0, x1, y1, ...: n_points pairs) with the current brush
 * settings; what a pointer drag does, for scripts and tests. */
void       easel_canvas_area_paint_stroke (EaselCanvasArea *self, EaselMaskTool tool, const double *points,
                                           gsize n_points);

void       easel_canvas_area_zoom_by (EaselCanvasArea *self, double factor);
void       easel_canvas_area_zoom_fit (EaselCanvasArea *self);

G_END_DECLS
