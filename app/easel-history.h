/* app/easel-history.h: the results of the output folder: one EaselHistoryItem per PNG (path,
 * thumbnail, parameters text), read in the background (a GTask, STYLE G6). */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define EASEL_HISTORY_MAX_ITEMS 500
#define EASEL_HISTORY_THUMB_SIZE 192

#define EASEL_TYPE_HISTORY_ITEM (easel_history_item_get_type ())
G_DECLARE_FINAL_TYPE (EaselHistoryItem, easel_history_item, EASEL, HISTORY_ITEM, GObject)

const char *easel_history_item_get_path (EaselHistoryItem *self);
GdkTexture *easel_history_item_get_thumbnail (EaselHistoryItem *self);
const char *easel_history_item_get_parameters (EaselHistoryItem *self);   /* may be NULL */

/* paths: the PNGs to read, or NULL to list folder (the newest EASEL_HISTORY_MAX_ITEMS by name,
 * newest first). Unreadable files are left out. Finish: a GPtrArray of EaselHistoryItem (transfer full). */
void       easel_history_load_async (const char *folder, const char *const *paths, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
GPtrArray *easel_history_load_finish (GAsyncResult *result, GError **error);

G_END_DECLS
