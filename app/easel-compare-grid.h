/* app/easel-compare-grid.h: the comparison grid without widgets: its axes (samplers across, an
 * optional second axis down: schedulers, step counts, CFG values or seeds), the job of each cell,
 * the cells as they fill (image and time), and the grid as one labelled image in the layout of
 * A1111's X/Y/Z plot script: column labels above the columns, row labels in a band at the left
 * (3/4 of a cell wide, as A1111's draw_grid_annotations), labels centred and wrapped, drawn with
 * Pango/Cairo into the picture. Everything here runs without a display (tests/test-app.c).
 *
 * Layout (image pixels; cells are cell_w x cell_h, gap pixels apart, white background):
 *   x of column c = row_label_w + c * (cell_w + gap),  y of row r = header_h + r * (cell_h + gap)
 *   width  = row_label_w + n_cols * cell_w + (n_cols - 1) * gap
 *   height = header_h    + n_rows * cell_h + (n_rows - 1) * gap
 *   column label c: (x of c, 0, cell_w, header_h); row label r: (0, y of r, row_label_w, cell_h). */
#pragma once

#include "easel-job.h"

G_BEGIN_DECLS

typedef enum {
  EASEL_COMPARE_AXIS_NONE,
  EASEL_COMPARE_AXIS_SAMPLER,
  EASEL_COMPARE_AXIS_SCHEDULER,
  EASEL_COMPARE_AXIS_STEPS,
  EASEL_COMPARE_AXIS_CFG,
  EASEL_COMPARE_AXIS_SEED,
} EaselCompareAxis;

/* The settings' names ("none", "sampler", "scheduler", "steps", "cfg", "seed"). */
gboolean    easel_compare_axis_from_name (const char *name, EaselCompareAxis *out);

/* Comma-separated values of an axis, each checked and normalized: samplers and schedulers in any
 * spelling the engine reads become their ComfyUI ids, steps an integer 1..1000, CFG a number
 * 0..100, seeds an integer 0..2^32-1. Empty items are skipped; none left is an error, as is a bad
 * item (named in the message). transfer full. */
GStrv       easel_compare_parse_values (EaselCompareAxis axis, const char *text, GError **error);

/* How a value is written in a label: "DPM++ 2M", "Karras", "Steps: 20", "CFG: 4.5", "Seed: 7".
 * transfer full. */
char       *easel_compare_value_label (EaselCompareAxis axis, const char *value);

/* Sets the axis' field of req to a value easel_compare_parse_values gave. */
void        easel_compare_apply_value (EaselJobRequest *req, EaselCompareAxis axis, const char *value);

typedef struct {
  int x, y, width, height;
} EaselCompareRect;

typedef struct {
  int n_cols, n_rows;
  int cell_w, cell_h, gap;
  int header_h, row_label_w;
  int width, height;
} EaselCompareLayout;

/* Fills layout for the given cells and label bands (see the top of this file). */
void        easel_compare_layout_init (EaselCompareLayout *layout, int n_cols, int n_rows, int cell_w, int cell_h,
                                       int gap, int header_h, int row_label_w);
EaselCompareRect easel_compare_layout_cell (const EaselCompareLayout *layout, int col, int row);
EaselCompareRect easel_compare_layout_column_label (const EaselCompareLayout *layout, int col);
EaselCompareRect easel_compare_layout_row_label (const EaselCompareLayout *layout, int row);

/* The label font size in pixels for cells of that size: 4.5% of the mean side (A1111's
 * fnt_size = (w + h) / 2 * 0.045 in spirit), at least 12. */
int         easel_compare_label_font_px (int cell_w, int cell_h);

typedef struct _EaselCompareGrid EaselCompareGrid;

/* x_values across (one column each), y_values down (NULL or empty with y_axis NONE: one row).
 * cell_w x cell_h: the generation size. transfer full. */
EaselCompareGrid *easel_compare_grid_new (EaselCompareAxis x_axis, const char *const *x_values,
                                          EaselCompareAxis y_axis, const char *const *y_values,
                                          int cell_w, int cell_h);
void        easel_compare_grid_free (EaselCompareGrid *grid);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselCompareGrid, easel_compare_grid_free)

int         easel_compare_grid_n_columns (const EaselCompareGrid *grid);
int         easel_compare_grid_n_rows (const EaselCompareGrid *grid);
/* "DPM++ 2M" for a column, "Karras" for a row, NULL for a row of a grid with no second axis.
 * transfer full. */
char       *easel_compare_grid_column_label (const EaselCompareGrid *grid, int col);
char       *easel_compare_grid_row_label (const EaselCompareGrid *grid, int row);
/* The job of a cell: a copy of base with the column's and the row's values applied. transfer full. */
EaselJobRequest *easel_compare_grid_request (const EaselCompareGrid *grid, const EaselJobRequest *base, int col,
                                             int row);
/* A cell's settings and, once filled, its time: "DPM++ 2M, Karras: 1.4 s". transfer full. */
char       *easel_compare_grid_cell_caption (const EaselCompareGrid *grid, int col, int row);
/* Fills a cell (takes image; parameters may be NULL) after seconds of work. */
void        easel_compare_grid_set_cell (EaselCompareGrid *grid, int col, int row, EaselImage *image,
                                         const char *parameters, double seconds);
const EaselImage *easel_compare_grid_get_cell (const EaselCompareGrid *grid, int col, int row);
/* The parameters text of the first filled cell (saved with the grid, as A1111 does), or NULL. */
const char *easel_compare_grid_first_parameters (const EaselCompareGrid *grid);
int         easel_compare_grid_n_filled (const EaselCompareGrid *grid);

/* The layout the rendered grid uses: label bands measured with Pango at the label font size. */
void        easel_compare_grid_layout (const EaselCompareGrid *grid, EaselCompareLayout *layout);
/* The grid as one RGB image: cells (empty ones light grey), labels in black on white. An image
 * larger than cairo allows (32767 pixels a side) is an error. transfer full. */
EaselImage *easel_compare_grid_render (const EaselCompareGrid *grid, GError **error);

G_END_DECLS
