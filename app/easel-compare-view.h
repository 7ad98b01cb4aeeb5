/* app/easel-compare-view.h: the comparison page: one prompt and seed through several samplers
 * (columns) and optionally a second axis (rows: schedulers, step counts, CFG values or seeds).
 * compare.run queues one job per cell on the worker; the grid fills cell by cell, each cell with
 * its live preview, then its image, labelled with its settings and time; compare.cancel stops the
 * rest; compare.save writes the grid with A1111-style labels as one PNG (NNNNN-grid.png) in the
 * output folder. The grid's logic and rendering live in easel-compare-grid.h. */
#pragma once

#include <adwaita.h>

#include "easel-compare-grid.h"
#include "easel-worker.h"

G_BEGIN_DECLS

#define EASEL_TYPE_COMPARE_VIEW (easel_compare_view_get_type ())
G_DECLARE_FINAL_TYPE (EaselCompareView, easel_compare_view, EASEL, COMPARE_VIEW, AdwBin)

void easel_compare_view_setup (EaselCompareView *self, GSettings *settings, EaselWorker *worker);
/* The grid of the last run, or NULL before the first. */
const EaselCompareGrid *easel_compare_view_get_grid (EaselCompareView *self);
/* Whether cells of the last run are still queued or running. */
gboolean easel_compare_view_is_running (EaselCompareView *self);
/* The path of the last grid saved, or NULL. */
const char *easel_compare_view_get_saved_path (EaselCompareView *self);

G_END_DECLS
