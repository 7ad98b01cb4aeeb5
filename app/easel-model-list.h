/* app/easel-model-list.h: the checkpoints the model chooser shows, found by a background scan
 * (STYLE G6: a GTask with an _async/_finish pair) of the models folder and of A1111/ComfyUI
 * installs (their models/Stable-diffusion and models/checkpoints folders). Each item carries the
 * family the engine detects from the tensors (engine/checkpoint.h), or why the file is unusable. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define EASEL_TYPE_MODEL_ITEM (easel_model_item_get_type ())
G_DECLARE_FINAL_TYPE (EaselModelItem, easel_model_item, EASEL, MODEL_ITEM, GObject)

const char *easel_model_item_get_path (EaselModelItem *self);
const char *easel_model_item_get_name (EaselModelItem *self);     /* file or folder name */
const char *easel_model_item_get_family (EaselModelItem *self);   /* "sd1", "sdxl", ... or "unknown" */
/* "Stable Diffusion XL", or the reason it cannot be used. */
const char *easel_model_item_get_description (EaselModelItem *self);
gboolean    easel_model_item_get_usable (EaselModelItem *self);

/* One item per checkpoint file (.safetensors, .ckpt) or diffusers folder (model_index.json) in
 * each folder, its subfolders one level down, and for an A1111 or ComfyUI install folder its
 * models/Stable-diffusion and models/checkpoints; sorted by name, each path once. Folders that do
 * not exist are skipped. */
void        easel_model_list_scan_async (const char *const *folders, GCancellable *cancellable,
                                         GAsyncReadyCallback callback, gpointer user_data);
/* transfer full: a GListModel of EaselModelItem. */
GListModel *easel_model_list_scan_finish (GAsyncResult *result, GError **error);

G_END_DECLS
