/* app/easel-compare-grid.c: the comparison grid's axes, cells, layout and rendering
 * (easel-compare-grid.h). Rendering follows A1111's modules/images.py draw_grid_annotations in
 * layout (labels above and to the left, centred, wrapped), drawn with PangoCairo on an image
 * surface, which needs fonts but no display. */
#include "easel-compare-grid.h"

#include <glib/gi18n.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <string.h>

#include "easel-sampling-table.h"

/* ---- axes and values ------------------------------------------------------------------------ */

static const char *const axis_names[] = {
  [EASEL_COMPARE_AXIS_NONE] = "none",       [EASEL_COMPARE_AXIS_SAMPLER] = "sampler",
  [EASEL_COMPARE_AXIS_SCHEDULER] = "scheduler", [EASEL_COMPARE_AXIS_STEPS] = "steps",
  [EASEL_COMPARE_AXIS_CFG] = "cfg",         [EASEL_COMPARE_AXIS_SEED] = "seed",
};

gboolean
easel_compare_axis_from_name (const char *name, EaselCompareAxis *out)
{
  for (guint i = 0; i < G_N_ELEMENTS (axis_names); i++)
    if (g_strcmp0 (name, axis_names[i]) == 0) {
      *out = (EaselCompareAxis) i;
      return TRUE;
    }
  return FALSE;
}

/* One item normalized (transfer full), or NULL when it is not a value of the axis. A sampler
 * written as A1111's combined name ("DPM++ 2M Karras") becomes "dpmpp_2m/karras". */
static char *
normalize_value (EaselCompareAxis axis, const char *item)
{
  guint64 u;
  double d;
  char *end;

  switch (axis) {
  case EASEL_COMPARE_AXIS_SAMPLER: {
    const char *sched = EASEL_SCHEDULER_AUTOMATIC;
    gint si = easel_sampling_table_find_sampler (item, &sched);
    if (si < 0)
      return NULL;
    const char *id = easel_sampling_table_sampler_id ((guint) si);
    return *sched ? g_strdup_printf ("%s/%s", id, sched) : g_strdup (id);
  }
  case EASEL_COMPARE_AXIS_SCHEDULER: {
    gint ki = easel_sampling_table_find_scheduler (item);
    return ki > 0 ? g_strdup (easel_sampling_table_scheduler_id ((guint) ki)) : NULL;
  }
  case EASEL_COMPARE_AXIS_STEPS:
    return g_ascii_string_to_unsigned (item, 10, 1, 1000, &u, NULL) ? g_strdup_printf ("%" G_GUINT64_FORMAT, u)
                                                                     : NULL;
  case EASEL_COMPARE_AXIS_SEED:
    return g_ascii_string_to_unsigned (item, 10, 0, G_MAXUINT32, &u, NULL)
             ? g_strdup_printf ("%" G_GUINT64_FORMAT, u) : NULL;
  case EASEL_COMPARE_AXIS_CFG:
    d = g_ascii_strtod (item, &end);
    if (end == item || *end != '\0' || !isfinite (d) || d < 0 || d > 100)
      return NULL;
    return g_strdup_printf ("%g", d);
  case EASEL_COMPARE_AXIS_NONE:
  default:
    return NULL;
  }
}

GStrv
easel_compare_parse_values (EaselCompareAxis axis, const char *text, GError **error)
{
  static const char *const what[] = {
    [EASEL_COMPARE_AXIS_NONE] = "", [EASEL_COMPARE_AXIS_SAMPLER] = N_("not a sampler"),
    [EASEL_COMPARE_AXIS_SCHEDULER] = N_("not a schedule type"), [EASEL_COMPARE_AXIS_STEPS] = N_("not a step count from 1 to 1000"),
    [EASEL_COMPARE_AXIS_CFG] = N_("not a CFG scale from 0 to 100"), [EASEL_COMPARE_AXIS_SEED] = N_("not a seed from 0 to 4294967295"),
  };
  g_return_val_if_fail (axis > EASEL_COMPARE_AXIS_NONE && axis < G_N_ELEMENTS (what), NULL);
  g_auto(GStrv) items = g_strsplit (text ? text : "", ",", -1);
  g_autoptr(GStrvBuilder) out = g_strv_builder_new ();
  guint n = 0;
  for (guint i = 0; items[i]; i++) {
    char *item = g_strstrip (items[i]);
    if (*item == '\0')
      continue;
    char *v = normalize_value (axis, item);
    if (v == NULL) {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, _("“%s”: %s"), item, _(what[axis]));
      return NULL;
    }
    g_strv_builder_add (out, v);   /* g_strv_builder_take is GLib 2.80 */
    g_free (v);
    n++;
  }
  if (n == 0) {
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, _("no values given"));
    return NULL;
  }
  return g_strv_builder_end (out);
}

char *
easel_compare_value_label (EaselCompareAxis axis, const char *value)
{
  switch (axis) {
  case EASEL_COMPARE_AXIS_SAMPLER: {
    g_auto(GStrv) parts = g_strsplit (value, "/", 2);
    gint si = easel_sampling_table_find_sampler (parts[0], NULL);
    const char *label = si >= 0 ? easel_sampling_table_sampler_label ((guint) si) : parts[0];
    if (parts[1] == NULL)
      return g_strdup (label);
    gint ki = easel_sampling_table_find_scheduler (parts[1]);
    return g_strdup_printf ("%s %s", label, ki > 0 ? easel_sampling_table_scheduler_label ((guint) ki) : parts[1]);
  }
  case EASEL_COMPARE_AXIS_SCHEDULER: {
    gint ki = easel_sampling_table_find_scheduler (value);
    return g_strdup (ki >= 0 ? easel_sampling_table_scheduler_label ((guint) ki) : value);
  }
  case EASEL_COMPARE_AXIS_STEPS:
    return g_strdup_printf (_("Steps: %s"), value);
  case EASEL_COMPARE_AXIS_CFG:
    return g_strdup_printf (_("CFG: %s"), value);
  case EASEL_COMPARE_AXIS_SEED:
    return g_strdup_printf (_("Seed: %s"), value);
  case EASEL_COMPARE_AXIS_NONE:
  default:
    return g_strdup (value ? value : "");
  }
}

void
easel_compare_apply_value (EaselJobRequest *req, EaselCompareAxis axis, const char *value)
{
  switch (axis) {
  case EASEL_COMPARE_AXIS_SAMPLER: {
    g_auto(GStrv) parts = g_strsplit (value, "/", 2);
    easel_job_request_set_string (req, &req->sampler, parts[0]);
    if (parts[1])
      easel_job_request_set_string (req, &req->scheduler, parts[1]);
    break;
  }
  case EASEL_COMPARE_AXIS_SCHEDULER:
    easel_job_request_set_string (req, &req->scheduler, value);
    break;
  case EASEL_COMPARE_AXIS_STEPS:
    req->params.steps = (int) g_ascii_strtoll (value, NULL, 10);
    break;
  case EASEL_COMPARE_AXIS_CFG:
    req->params.cfg = g_ascii_strtod (value, NULL);
    break;
  case EASEL_COMPARE_AXIS_SEED:
    req->params.seed = g_ascii_strtoull (value, NULL, 10);
    break;
  case EASEL_COMPARE_AXIS_NONE:
  default:
    break;
  }
}

/* ---- layout --------------------------------------------------------------------------------- */

void
easel_compare_layout_init (EaselCompareLayout *l, int n_cols, int n_rows, int cell_w, int cell_h, int gap,
                           int header_h, int row_label_w)
{
  l->n_cols = n_cols;
  l->n_rows = n_rows;
  l->cell_w = cell_w;
  l->cell_h = cell_h;
  l->gap = gap;
  l->header_h = header_h;
  l->row_label_w = row_label_w;
  l->width = row_label_w + n_cols * cell_w + MAX (n_cols - 1, 0) * gap;
  l->height = header_h + n_rows * cell_h + MAX (n_rows - 1, 0) * gap;
}

EaselCompareRect
easel_compare_layout_cell (const EaselCompareLayout *l, int col, int row)
{
  return (EaselCompareRect) { l->row_label_w + col * (l->cell_w + l->gap), l->header_h + row * (l->cell_h + l->gap),
                              l->cell_w, l->cell_h };
}

EaselCompareRect
easel_compare_layout_column_label (const EaselCompareLayout *l, int col)
{
  EaselCompareRect c = easel_compare_layout_cell (l, col, 0);
  return (EaselCompareRect) { c.x, 0, l->cell_w, l->header_h };
}

EaselCompareRect
easel_compare_layout_row_label (const EaselCompareLayout *l, int row)
{
  EaselCompareRect c = easel_compare_layout_cell (l, 0, row);
  return (EaselCompareRect) { 0, c.y, l->row_label_w, l->cell_h };
}

int
easel_compare_label_font_px (int cell_w, int cell_h)
{
  return MAX (12, (int) lround ((cell_w + cell_h) / 2.0 * 0.045));
}

/* ---- the grid ------------------------------------------------------------------------------- */

typedef struct {
  EaselImage *image;
  char *parameters;
  double seconds;
} Cell;

struct _EaselCompareGrid {
  EaselCompareAxis x_axis, y_axis;
  GStrv x_values, y_values;   /* y_values has one "" when there is no second axis */
  int cell_w, cell_h;
  Cell *cells;                /* row-major: cells[row * n_cols + col] */
};

EaselCompareGrid *
easel_compare_grid_new (EaselCompareAxis x_axis, const char *const *x_values, EaselCompareAxis y_axis,
                        const char *const *y_values, int cell_w, int cell_h)
{
  static const char *const one_row[] = { "", NULL };
  g_return_val_if_fail (x_values && x_values[0], NULL);
  EaselCompareGrid *g = g_new0 (EaselCompareGrid, 1);
  gboolean has_rows = y_axis != EASEL_COMPARE_AXIS_NONE && y_values && y_values[0];
  g->x_axis = x_axis;
  g->y_axis = has_rows ? y_axis : EASEL_COMPARE_AXIS_NONE;
  g->x_values = g_strdupv ((char **) x_values);
  g->y_values = g_strdupv ((char **) (has_rows ? y_values : one_row));
  g->cell_w = cell_w;
  g->cell_h = cell_h;
  g->cells = g_new0 (Cell, (gsize) easel_compare_grid_n_columns (g) * (gsize) easel_compare_grid_n_rows (g));
  return g;
}

void
easel_compare_grid_free (EaselCompareGrid *g)
{
  if (g == NULL)
    return;
  for (int i = 0, n = easel_compare_grid_n_columns (g) * easel_compare_grid_n_rows (g); i < n; i++) {
    easel_image_free (g->cells[i].image);
    g_free (g->cells[i].parameters);
  }
  g_free (g->cells);
  g_strfreev (g->x_values);
  g_strfreev (g->y_values);
  g_free (g);
}

int
easel_compare_grid_n_columns (const EaselCompareGrid *g)
{
  return (int) g_strv_length (g->x_values);
}

int
easel_compare_grid_n_rows (const EaselCompareGrid *g)
{
  return (int) g_strv_length (g->y_values);
}

static Cell *
cell_at (const EaselCompareGrid *g, int col, int row)
{
  g_return_val_if_fail (col >= 0 && col < easel_compare_grid_n_columns (g), NULL);
  g_return_val_if_fail (row >= 0 && row < easel_compare_grid_n_rows (g), NULL);
  return &g->cells[row * easel_compare_grid_n_columns (g) + col];
}

char *
easel_compare_grid_column_label (const EaselCompareGrid *g, int col)
{
  return easel_compare_value_label (g->x_axis, g->x_values[col]);
}

char *
easel_compare_grid_row_label (const EaselCompareGrid *g, int row)
{
  if (g->y_axis == EASEL_COMPARE_AXIS_NONE)
    return NULL;
  return easel_compare_value_label (g->y_axis, g->y_values[row]);
}

EaselJobRequest *
easel_compare_grid_request (const EaselCompareGrid *g, const EaselJobRequest *base, int col, int row)
{
  EaselJobRequest *req = easel_job_request_copy (base);
  easel_compare_apply_value (req, g->x_axis, g->x_values[col]);
  easel_compare_apply_value (req, g->y_axis, g->y_values[row]);
  return req;
}

char *
easel_compare_grid_cell_caption (const EaselCompareGrid *g, int col, int row)
{
  const Cell *c = cell_at (g, col, row);
  g_autofree char *x = easel_compare_grid_column_label (g, col);
  g_autofree char *y = easel_compare_grid_row_label (g, row);
  g_autofree char *settings = y ? g_strdup_printf ("%s, %s", x, y) : g_strdup (x);
  if (c->image == NULL)
    return g_steal_pointer (&settings);
  return g_strdup_printf (_("%s: %.1f s"), settings, c->seconds);
}

void
easel_compare_grid_set_cell (EaselCompareGrid *g, int col, int row, EaselImage *image, const char *parameters,
                             double seconds)
{
  Cell *c = cell_at (g, col, row);
  g_return_if_fail (c != NULL);
  easel_image_free (c->image);
  g_free (c->parameters);
  c->image = image;
  c->parameters = g_strdup (parameters);
  c->seconds = seconds;
}

const EaselImage *
easel_compare_grid_get_cell (const EaselCompareGrid *g, int col, int row)
{
  const Cell *c = cell_at (g, col, row);
  return c ? c->image : NULL;
}

const char *
easel_compare_grid_first_parameters (const EaselCompareGrid *g)
{
  for (int i = 0, n = easel_compare_grid_n_columns (g) * easel_compare_grid_n_rows (g); i < n; i++)
    if (g->cells[i].image && g->cells[i].parameters)
      return g->cells[i].parameters;
  return NULL;
}

int
easel_compare_grid_n_filled (const EaselCompareGrid *g)
{
  int filled = 0;
  for (int i = 0, n = easel_compare_grid_n_columns (g) * easel_compare_grid_n_rows (g); i < n; i++)
    filled += g->cells[i].image != NULL;
  return filled;
}

/* ---- rendering ------------------------------------------------------------------------------ */

/* A wrapped, centred label layout of the given width (pixels) on cr. transfer full. */
static PangoLayout *
label_layout (cairo_t *cr, const char *text, int width, int font_px)
{
  PangoLayout *layout = pango_cairo_create_layout (cr);
  g_autoptr(PangoFontDescription) font = pango_font_description_from_string ("Sans");
  pango_font_description_set_absolute_size (font, font_px * PANGO_SCALE);
  pango_layout_set_font_description (layout, font);
  pango_layout_set_width (layout, MAX (width, 1) * PANGO_SCALE);
  pango_layout_set_wrap (layout, PANGO_WRAP_WORD_CHAR);
  pango_layout_set_alignment (layout, PANGO_ALIGN_CENTER);
  pango_layout_set_text (layout, text, -1);
  return layout;
}

/* Label padding: a third of the font size on each side. */
static int
label_pad (int font_px)
{
  return MAX (2, font_px / 3);
}

/* The layout with label bands measured on cr (any surface: only font metrics are used). */
static void
measure (const EaselCompareGrid *g, cairo_t *cr, EaselCompareLayout *l)
{
  int font_px = easel_compare_label_font_px (g->cell_w, g->cell_h), pad = label_pad (font_px);
  int n_cols = easel_compare_grid_n_columns (g), n_rows = easel_compare_grid_n_rows (g);
  int header = 0;
  for (int c = 0; c < n_cols; c++) {
    g_autofree char *text = easel_compare_grid_column_label (g, c);
    g_autoptr(PangoLayout) pl = label_layout (cr, text, g->cell_w - 2 * pad, font_px);
    int w, h;
    pango_layout_get_pixel_size (pl, &w, &h);
    header = MAX (header, h + 2 * pad);
  }
  /* A1111: the row band is 3/4 of a cell wide */
  int row_w = g->y_axis != EASEL_COMPARE_AXIS_NONE ? g->cell_w * 3 / 4 : 0;
  easel_compare_layout_init (l, n_cols, n_rows, g->cell_w, g->cell_h, MAX (2, g->cell_w / 64), header, row_w);
}

void
easel_compare_grid_layout (const EaselCompareGrid *g, EaselCompareLayout *l)
{
  cairo_surface_t *s = cairo_image_surface_create (CAIRO_FORMAT_RGB24, 1, 1);
  cairo_t *cr = cairo_create (s);
  measure (g, cr, l);
  cairo_destroy (cr);
  cairo_surface_destroy (s);
}

static void
draw_label (cairo_t *cr, const char *text, EaselCompareRect r, int font_px)
{
  int pad = label_pad (font_px);
  g_autoptr(PangoLayout) pl = label_layout (cr, text, r.width - 2 * pad, font_px);
  int w, h;
  pango_layout_get_pixel_size (pl, &w, &h);
  cairo_save (cr);
  cairo_rectangle (cr, r.x, r.y, r.width, r.height);
  cairo_clip (cr);
  cairo_set_source_rgb (cr, 0, 0, 0);
  cairo_move_to (cr, r.x + pad, r.y + (r.height - h) / 2.0);
  pango_cairo_show_layout (cr, pl);
  cairo_restore (cr);
}

/* Copies an RGB(A) image into the RGB24 surface data at (x, y). */
static void
blit (guint8 *data, int stride, const EaselImage *im, EaselCompareRect r)
{
  int w = MIN (im->width, r.width), h = MIN (im->height, r.height);
  for (int y = 0; y < h; y++) {
    guint32 *dst = (guint32 *) (data + (gsize) (r.y + y) * (gsize) stride) + r.x;
    const guint8 *src = im->pixels + (gsize) y * im->stride;
    for (int x = 0; x < w; x++, src += im->channels)
      dst[x] = 0xff000000u | (guint32) src[0] << 16 | (guint32) src[1] << 8 | src[2];
  }
}

EaselImage *
easel_compare_grid_render (const EaselCompareGrid *g, GError **error)
{
  EaselCompareLayout l;
  easel_compare_grid_layout (g, &l);
  if (l.width > 32767 || l.height > 32767) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, _("The grid would be %d × %d pixels, more than can be saved"),
                 l.width, l.height);
    return NULL;
  }
  g_autoptr(EaselImage) out = easel_image_new (l.width, l.height, 3, error);
  if (out == NULL)
    return NULL;
  cairo_surface_t *s = cairo_image_surface_create (CAIRO_FORMAT_RGB24, l.width, l.height);
  if (cairo_surface_status (s) != CAIRO_STATUS_SUCCESS) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY, _("No memory for a %d × %d grid"), l.width, l.height);
    cairo_surface_destroy (s);
    return NULL;
  }
  cairo_t *cr = cairo_create (s);
  cairo_set_source_rgb (cr, 1, 1, 1);
  cairo_paint (cr);
  int font_px = easel_compare_label_font_px (g->cell_w, g->cell_h);
  for (int c = 0; c < l.n_cols; c++) {
    g_autofree char *text = easel_compare_grid_column_label (g, c);
    draw_label (cr, text, easel_compare_layout_column_label (&l, c), font_px);
  }
  for (int r = 0; r < l.n_rows && l.row_label_w > 0; r++) {
    g_autofree char *text = easel_compare_grid_row_label (g, r);
    draw_label (cr, text, easel_compare_layout_row_label (&l, r), font_px);
  }
  /* empty cells: light grey */
  cairo_set_source_rgb (cr, 0.85, 0.85, 0.85);
  for (int r = 0; r < l.n_rows; r++)
    for (int c = 0; c < l.n_cols; c++)
      if (easel_compare_grid_get_cell (g, c, r) == NULL) {
        EaselCompareRect cr_ = easel_compare_layout_cell (&l, c, r);
        cairo_rectangle (cr, cr_.x, cr_.y, cr_.width, cr_.height);
      }
  cairo_fill (cr);
  cairo_destroy (cr);
  cairo_surface_flush (s);

  guint8 *data = cairo_image_surface_get_data (s);
  int stride = cairo_image_surface_get_stride (s);
  for (int r = 0; r < l.n_rows; r++)
    for (int c = 0; c < l.n_cols; c++) {
      const EaselImage *im = easel_compare_grid_get_cell (g, c, r);
      if (im)
        blit (data, stride, im, easel_compare_layout_cell (&l, c, r));
    }
  for (int y = 0; y < l.height; y++) {
    const guint32 *src = (const guint32 *) (data + (gsize) y * (gsize) stride);
    guint8 *dst = out->pixels + (gsize) y * out->stride;
    for (int x = 0; x < l.width; x++) {
      dst[x * 3 + 0] = (guint8) (src[x] >> 16);
      dst[x * 3 + 1] = (guint8) (src[x] >> 8);
      dst[x * 3 + 2] = (guint8) src[x];
    }
  }
  cairo_surface_destroy (s);
  return g_steal_pointer (&out);
}
