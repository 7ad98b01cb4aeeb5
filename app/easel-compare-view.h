/* app/easel-compare-view.h: the comparison page: one prompt and seed through several samplers
 * (and optionally schedulers, step counts, CFG values or seeds); the grid fills cell by cell. */
#pragma once

#include <adwaita.h>

#include "easel-worker.h"

G_BEGIN_DECLS

#define EASEL_TYPE_COMPARE_VIEW (easel_compare_view_get_type ())
G_DECLARE_FINAL_TYPE (EaselCompareView, easel_compare_view, EASEL, COMPARE_VIEW, AdwBin)

void easel_compare_view_setup (EaselCompareView *self, GSettings *settings, EaselWorker *worker);

G_END_DECLS
