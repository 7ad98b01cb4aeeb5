/* app/easel-history-view.h: the history page: every result in the output folder as a gallery
 * (newest first), scanned and thumbnailed in the background; activating one loads it and emits
 *   activated (const char *path, const char *parameters (may be NULL), EaselImage *image)
 * which the window answers by restoring the settings and showing the image. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define EASEL_TYPE_HISTORY_VIEW (easel_history_view_get_type ())
G_DECLARE_FINAL_TYPE (EaselHistoryView, easel_history_view, EASEL, HISTORY_VIEW, AdwBin)

void        easel_history_view_bind_settings (EaselHistoryView *self, GSettings *settings);
/* Adds a newly saved result at the front. */
void        easel_history_view_add_file (EaselHistoryView *self, const char *path);
GListModel *easel_history_view_get_model (EaselHistoryView *self);
/* Loads item position and emits activated. */
void        easel_history_view_activate (EaselHistoryView *self, guint position);

G_END_DECLS
