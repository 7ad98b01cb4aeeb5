/* app/easel-mask.c: the inpaint mask buffer (see easel-mask.h for the brush model). */
#include "easel-mask.h"

#include <math.h>
#include <string.h>

typedef struct {
  gint width, height;
  guint8 *data;   /* (height, width), owned */
} MaskLevel;

struct _EaselMask {
  MaskLevel cur;
  GQueue undo;    /* MaskLevel*, newest at the head */
  GQueue redo;
  /* the stroke in progress */
  EaselMaskTool tool;
  double radius, hardness;
  double last_x, last_y;
  double carry;   /* distance walked since the last dab */
  gboolean in_stroke;
};

static MaskLevel *
level_copy (const MaskLevel *l)
{
  MaskLevel *c = g_new (MaskLevel, 1);
  c->width = l->width;
  c->height = l->height;
  c->data = g_memdup2 (l->data, (gsize) l->width * (gsize) l->height);
  return c;
}

static void
level_free (gpointer p)
{
  MaskLevel *l = p;
  g_free (l->data);
  g_free (l);
}

EaselMask *
easel_mask_new (gint width, gint height)
{
  g_return_val_if_fail (width > 0 && width <= EASEL_IMAGE_MAX_SIDE, NULL);
  g_return_val_if_fail (height > 0 && height <= EASEL_IMAGE_MAX_SIDE, NULL);
  EaselMask *m = g_new0 (EaselMask, 1);
  m->cur.width = width;
  m->cur.height = height;
  m->cur.data = g_malloc0 ((gsize) width * (gsize) height);
  g_queue_init (&m->undo);
  g_queue_init (&m->redo);
  return m;
}

void
easel_mask_free (EaselMask *mask)
{
  if (mask == NULL)
    return;
  g_free (mask->cur.data);
  g_queue_clear_full (&mask->undo, level_free);
  g_queue_clear_full (&mask->redo, level_free);
  g_free (mask);
}

gint
easel_mask_width (const EaselMask *mask)
{
  return mask->cur.width;
}

gint
easel_mask_height (const EaselMask *mask)
{
  return mask->cur.height;
}

const guint8 *
easel_mask_data (const EaselMask *mask)
{
  return mask->cur.data;
}

guint8
easel_mask_get (const EaselMask *mask, gint x, gint y)
{
  if (x < 0 || y < 0 || x >= mask->cur.width || y >= mask->cur.height)
    return 0;
  return mask->cur.data[(gsize) y * (gsize) mask->cur.width + (gsize) x];
}

gsize
easel_mask_count_nonzero (const EaselMask *mask)
{
  gsize n = 0, total = (gsize) mask->cur.width * (gsize) mask->cur.height;
  for (gsize i = 0; i < total; i++)
    n += mask->cur.data[i] != 0;
  return n;
}

gboolean
easel_mask_is_empty (const EaselMask *mask)
{
  return easel_mask_count_nonzero (mask) == 0;
}

/* Saves the current contents as an undo level; a new edit forgets what could be redone. */
static void
push_undo (EaselMask *mask)
{
  g_queue_push_head (&mask->undo, level_copy (&mask->cur));
  while (g_queue_get_length (&mask->undo) > EASEL_MASK_UNDO_LEVELS)
    level_free (g_queue_pop_tail (&mask->undo));
  g_queue_clear_full (&mask->redo, level_free);
}

/* ---- brush ---------------------------------------------------------------------------------- */

static double
dab_coverage (double d, double radius, double hardness)
{
  double inner = radius * hardness;
  if (d <= inner)
    return 1.0;
  if (d >= radius)
    return 0.0;
  double t = (radius - d) / (radius - inner);   /* 1 at the inner edge, 0 at the rim */
  return t * t * (3.0 - 2.0 * t);
}

/* One dab centred on (cx, cy) in pixel coordinates (pixel (i, j) covers [i, i+1) x [j, j+1)). */
static void
stamp (EaselMask *mask, double cx, double cy)
{
  const double r = mask->radius;
  gint x0 = MAX (0, (gint) floor (cx - r)), x1 = MIN (mask->cur.width - 1, (gint) ceil (cx + r));
  gint y0 = MAX (0, (gint) floor (cy - r)), y1 = MIN (mask->cur.height - 1, (gint) ceil (cy + r));

  for (gint y = y0; y <= y1; y++) {
    guint8 *row = mask->cur.data + (gsize) y * (gsize) mask->cur.width;
    for (gint x = x0; x <= x1; x++) {
      double c = dab_coverage (hypot (x + 0.5 - cx, y + 0.5 - cy), r, mask->hardness);
      if (c <= 0.0)
        continue;
      double v = row[x];
      v = mask->tool == EASEL_MASK_BRUSH ? v + (255.0 - v) * c : v - v * c;
      row[x] = (guint8) CLAMP (lround (v), 0, 255);
    }
  }
}

void
easel_mask_stroke_begin (EaselMask *mask, EaselMaskTool tool, double radius, double hardness, double x, double y)
{
  g_return_if_fail (mask != NULL);
  push_undo (mask);
  mask->tool = tool;
  mask->radius = CLAMP (radius, 0.5, (double) EASEL_IMAGE_MAX_SIDE);
  mask->hardness = CLAMP (hardness, 0.0, 1.0);
  mask->last_x = x;
  mask->last_y = y;
  mask->carry = 0.0;
  mask->in_stroke = TRUE;
  stamp (mask, x, y);
}

void
easel_mask_stroke_to (EaselMask *mask, double x, double y)
{
  g_return_if_fail (mask != NULL && mask->in_stroke);
  const double spacing = MAX (1.0, mask->radius / 4.0);
  double dx = x - mask->last_x, dy = y - mask->last_y;
  double len = hypot (dx, dy);
  if (!isfinite (len) || len == 0.0)
    return;
  /* dabs at spacing, continuing the previous segment's rhythm */
  double t = spacing - mask->carry;
  for (; t <= len; t += spacing)
    stamp (mask, mask->last_x + dx * t / len, mask->last_y + dy * t / len);
  mask->carry = len - (t - spacing);
  mask->last_x = x;
  mask->last_y = y;
}

void
easel_mask_stroke_end (EaselMask *mask)
{
  g_return_if_fail (mask != NULL);
  if (mask->in_stroke && mask->carry > 0.0)
    stamp (mask, mask->last_x, mask->last_y);   /* the stroke ends where the pointer left */
  mask->in_stroke = FALSE;
}

/* ---- whole-mask edits ----------------------------------------------------------------------- */

void
easel_mask_invert (EaselMask *mask)
{
  push_undo (mask);
  gsize n = (gsize) mask->cur.width * (gsize) mask->cur.height;
  for (gsize i = 0; i < n; i++)
    mask->cur.data[i] = 255 - mask->cur.data[i];
}

void
easel_mask_clear (EaselMask *mask)
{
  push_undo (mask);
  memset (mask->cur.data, 0, (gsize) mask->cur.width * (gsize) mask->cur.height);
}

/* One box pass of half-width r along rows (stride 1) or columns (stride width) of a float plane. */
static void
box_pass (float *dst, const float *src, gint len, gint count, gsize step, gsize line_step, gint r)
{
  for (gint line = 0; line < count; line++) {
    const float *s = src + (gsize) line * line_step;
    float *d = dst + (gsize) line * line_step;
    double sum = 0.0;
    /* window [i - r, i + r], edges clamped */
    for (gint k = -r; k <= r; k++)
      sum += s[(gsize) CLAMP (k, 0, len - 1) * step];
    for (gint i = 0; i < len; i++) {
      d[(gsize) i * step] = (float) (sum / (2 * r + 1));
      sum += s[(gsize) MIN (i + r + 1, len - 1) * step] - s[(gsize) MAX (i - r, 0) * step];
    }
  }
}

void
easel_mask_feather (EaselMask *mask, double radius)
{
  gint w = mask->cur.width, h = mask->cur.height;
  /* three box passes of half-width r approximate a Gaussian of sigma ~ r; radius is taken as sigma */
  gint r = (gint) lround (CLAMP (radius, 0.0, 256.0));
  push_undo (mask);
  if (r <= 0)
    return;
  gsize n = (gsize) w * (gsize) h;
  g_autofree float *a = g_new (float, n);
  g_autofree float *b = g_new (float, n);
  for (gsize i = 0; i < n; i++)
    a[i] = mask->cur.data[i];
  for (int pass = 0; pass < 3; pass++) {
    box_pass (b, a, w, h, 1, (gsize) w, r);
    box_pass (a, b, h, w, (gsize) w, 1, r);
  }
  for (gsize i = 0; i < n; i++)
    mask->cur.data[i] = (guint8) CLAMP (lrintf (a[i]), 0, 255);
}

/* Bilinear sample of src (sw x sh) at the centre of dst pixel (x, y) of a (dw x dh) grid. */
static guint8
sample_bilinear (const guint8 *src, gint sw, gint sh, gint dw, gint dh, gint x, gint y)
{
  double fx = ((x + 0.5) * sw / dw) - 0.5, fy = ((y + 0.5) * sh / dh) - 0.5;
  fx = CLAMP (fx, 0.0, sw - 1.0);
  fy = CLAMP (fy, 0.0, sh - 1.0);
  gint x0 = (gint) fx, y0 = (gint) fy;
  gint x1 = MIN (x0 + 1, sw - 1), y1 = MIN (y0 + 1, sh - 1);
  double tx = fx - x0, ty = fy - y0;
  double top = src[(gsize) y0 * sw + x0] * (1 - tx) + src[(gsize) y0 * sw + x1] * tx;
  double bot = src[(gsize) y1 * sw + x0] * (1 - tx) + src[(gsize) y1 * sw + x1] * tx;
  return (guint8) CLAMP (lround (top * (1 - ty) + bot * ty), 0, 255);
}

static void
replace_scaled (EaselMask *mask, const guint8 *src, gint sw, gint sh)
{
  gint w = mask->cur.width, h = mask->cur.height;
  if (sw == w && sh == h) {
    memcpy (mask->cur.data, src, (gsize) w * (gsize) h);
    return;
  }
  for (gint y = 0; y < h; y++)
    for (gint x = 0; x < w; x++)
      mask->cur.data[(gsize) y * w + x] = sample_bilinear (src, sw, sh, w, h, x, y);
}

void
easel_mask_resize (EaselMask *mask, gint width, gint height)
{
  g_return_if_fail (width > 0 && width <= EASEL_IMAGE_MAX_SIDE && height > 0 && height <= EASEL_IMAGE_MAX_SIDE);
  if (width == mask->cur.width && height == mask->cur.height)
    return;
  push_undo (mask);
  g_autofree guint8 *old = mask->cur.data;
  gint ow = mask->cur.width, oh = mask->cur.height;
  mask->cur.width = width;
  mask->cur.height = height;
  mask->cur.data = g_malloc0 ((gsize) width * (gsize) height);
  replace_scaled (mask, old, ow, oh);
}

/* ---- undo ----------------------------------------------------------------------------------- */

static gboolean
swap_level (EaselMask *mask, GQueue *from, GQueue *to)
{
  MaskLevel *l = g_queue_pop_head (from);
  if (l == NULL)
    return FALSE;
  MaskLevel *now = g_new (MaskLevel, 1);
  *now = mask->cur;
  g_queue_push_head (to, now);
  mask->cur = *l;
  g_free (l);
  mask->in_stroke = FALSE;
  return TRUE;
}

gboolean
easel_mask_can_undo (const EaselMask *mask)
{
  return mask->undo.length > 0;
}

gboolean
easel_mask_can_redo (const EaselMask *mask)
{
  return mask->redo.length > 0;
}

gboolean
easel_mask_undo (EaselMask *mask)
{
  return swap_level (mask, &mask->undo, &mask->redo);
}

gboolean
easel_mask_redo (EaselMask *mask)
{
  return swap_level (mask, &mask->redo, &mask->undo);
}

/* ---- images --------------------------------------------------------------------------------- */

EaselImage *
easel_mask_to_image (const EaselMask *mask, GError **error)
{
  EaselImage *img = easel_image_new (mask->cur.width, mask->cur.height, 3, error);
  if (img == NULL)
    return NULL;
  gsize n = (gsize) mask->cur.width * (gsize) mask->cur.height;
  for (gsize i = 0; i < n; i++)
    memset (img->pixels + i * 3, mask->cur.data[i], 3);
  return img;
}

void
easel_mask_set_from_image (EaselMask *mask, const EaselImage *image)
{
  g_return_if_fail (image != NULL && (image->channels == 3 || image->channels == 4));
  gsize n = (gsize) image->width * (gsize) image->height;
  g_autofree guint8 *plane = g_malloc (n);
  for (gsize i = 0; i < n; i++) {
    const guint8 *p = image->pixels + i * (gsize) image->channels;
    /* BT.601 luma, as PIL's convert ("L") */
    double v = (p[0] * 299.0 + p[1] * 587.0 + p[2] * 114.0) / 1000.0;
    if (image->channels == 4)
      v = v * p[3] / 255.0;
    plane[i] = (guint8) CLAMP (lround (v), 0, 255);
  }
  push_undo (mask);
  replace_scaled (mask, plane, image->width, image->height);
}

gboolean
easel_mask_save_png (const EaselMask *mask, const char *path, GError **error)
{
  g_autoptr(EaselImage) img = easel_mask_to_image (mask, error);
  return img != NULL && easel_png_save (img, path, NULL, error);
}

gboolean
easel_mask_load_png (EaselMask *mask, const char *path, GError **error)
{
  g_autoptr(EaselImage) img = easel_png_load (path, NULL, error);
  if (img == NULL)
    return FALSE;
  easel_mask_set_from_image (mask, img);
  return TRUE;
}
