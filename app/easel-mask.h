/* app/easel-mask.h: the inpaint mask, an 8-bit coverage buffer (255 = repaint, as A1111's white),
 * painted with round dabs of a given radius and hardness, with undo/redo of whole strokes, invert,
 * clear, feather, resize and PNG load/save. Pure C (no GTK): the canvas draws it and the tests
 * paint it without a display.
 *
 * Coverage of a dab at distance d from its centre, radius r, hardness h in [0, 1]:
 *   1 for d <= h*r, 0 for d >= r, smoothstep between (h = 1 is a hard-edged disc).
 * The brush raises a pixel towards 255 by that coverage (m += (255 - m) * c), the eraser lowers it
 * (m -= m * c); a stroke stamps dabs every max(1, r/4) pixels along its segments. */
#pragma once

#include <glib.h>

#include "image.h"

G_BEGIN_DECLS

typedef enum {
  EASEL_MASK_BRUSH,
  EASEL_MASK_ERASER,
} EaselMaskTool;

typedef struct _EaselMask EaselMask;

#define EASEL_MASK_UNDO_LEVELS 32

/* A cleared mask of width x height (1..EASEL_IMAGE_MAX_SIDE each). transfer full. */
EaselMask    *easel_mask_new (gint width, gint height);
void          easel_mask_free (EaselMask *mask);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselMask, easel_mask_free)

gint          easel_mask_width (const EaselMask *mask);
gint          easel_mask_height (const EaselMask *mask);
/* (height, width) bytes, row-major; valid until the next change. */
const guint8 *easel_mask_data (const EaselMask *mask);
guint8        easel_mask_get (const EaselMask *mask, gint x, gint y);   /* 0 outside */
/* Pixels with any coverage. */
gsize         easel_mask_count_nonzero (const EaselMask *mask);
gboolean      easel_mask_is_empty (const EaselMask *mask);

/* A stroke: begin saves an undo level (and drops the redo levels), then dabs at (x, y) in mask
 * pixels, then segments to each next point; end closes it. */
void easel_mask_stroke_begin (EaselMask *mask, EaselMaskTool tool, double radius, double hardness,
                              double x, double y);
void easel_mask_stroke_to (EaselMask *mask, double x, double y);
void easel_mask_stroke_end (EaselMask *mask);

/* Whole-mask edits; each saves an undo level. */
void easel_mask_invert (EaselMask *mask);
void easel_mask_clear (EaselMask *mask);
/* A Gaussian-like blur of the given radius in pixels (three box passes). */
void easel_mask_feather (EaselMask *mask, double radius);
/* Scales to a new size (bilinear), keeping what was painted; saves an undo level. */
void easel_mask_resize (EaselMask *mask, gint width, gint height);

gboolean easel_mask_can_undo (const EaselMask *mask);
gboolean easel_mask_can_redo (const EaselMask *mask);
gboolean easel_mask_undo (EaselMask *mask);
gboolean easel_mask_redo (EaselMask *mask);

/* The mask as an RGB image (white = repaint), what easel_generate takes and A1111 saves. transfer full. */
EaselImage *easel_mask_to_image (const EaselMask *mask, GError **error);
/* Replaces the contents from an image (luma x alpha), scaled to the mask's size when it differs;
 * saves an undo level. */
void        easel_mask_set_from_image (EaselMask *mask, const EaselImage *image);
gboolean    easel_mask_save_png (const EaselMask *mask, const char *path, GError **error);
gboolean    easel_mask_load_png (EaselMask *mask, const char *path, GError **error);

G_END_DECLS
