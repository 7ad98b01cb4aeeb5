/* app/easel-canvas.h: the canvas page: the image (live preview, result or init image), the mask
 * tools (brush, eraser, size, hardness, undo/redo, invert, clear, feather, save/load PNG, tinted
 * overlay), zoom/pan and the init image (open, paste, drop, use result as input). Commands are
 * "canvas.*" actions; errors go to the window's "win.toast" action. */
#pragma once

#include <adwaita.h>

#include "easel-canvas-area.h"
#include "easel.h"

G_BEGIN_DECLS

#define EASEL_TYPE_CANVAS (easel_canvas_get_type ())
G_DECLARE_FINAL_TYPE (EaselCanvas, easel_canvas, EASEL, CANVAS, AdwBin)

EaselCanvasArea  *easel_canvas_get_area (EaselCanvas *self);
void              easel_canvas_bind_settings (EaselCanvas *self, GSettings *settings);

/* The init image (img2img / inpaint); takes image and texture. NULL removes it. */
void              easel_canvas_set_init_image (EaselCanvas *self, EaselImage *image, GdkTexture *texture);
const EaselImage *easel_canvas_get_init_image (EaselCanvas *self);
/* A result: shown, and kept for "use result as input". Takes image. */
void              easel_canvas_set_result (EaselCanvas *self, EaselImage *image);
const EaselImage *easel_canvas_get_result (EaselCanvas *self);
/* A live preview while a job runs, put on the area at the next frame (the newest wins) and drawn
 * over the image's frame without resizing the mask; NULL removes it at once. */
void              easel_canvas_show_preview (EaselCanvas *self, GdkTexture *texture);
/* The progress line over the image: fraction < 0 hides it. */
void              easel_canvas_set_progress (EaselCanvas *self, double fraction, const char *text);
/* The mask as the engine takes it, or NULL when nothing is painted. transfer full. */
EaselImage       *easel_canvas_dup_mask_image (EaselCanvas *self);

G_END_DECLS
