/* app/easel-image-io.h: image files in the background (STYLE G6): loading an image (PNG with its
 * A1111 parameters, or anything GdkTexture reads) and saving a result as a PNG with its parameters
 * chunk, each a GTask with an _async/_finish pair; and conversions between EaselImage and
 * GdkTexture. */
#pragma once

#include <gtk/gtk.h>

#include "easel.h"

G_BEGIN_DECLS

typedef struct {
  EaselImage *image;       /* RGB (alpha dropped: the engine takes RGB) */
  GdkTexture *texture;
  char *parameters;        /* the PNG's "parameters" text, or NULL */
  char *path;
} EaselLoadedImage;

void easel_loaded_image_free (EaselLoadedImage *li);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselLoadedImage, easel_loaded_image_free)

GdkTexture *easel_texture_from_image (const EaselImage *image);   /* transfer full */
/* RGB pixels of a texture (alpha composited over white). transfer full. */
EaselImage *easel_image_from_texture (GdkTexture *texture, GError **error);

void              easel_image_load_async (GFile *file, GCancellable *cancellable, GAsyncReadyCallback callback,
                                          gpointer user_data);
EaselLoadedImage *easel_image_load_finish (GAsyncResult *result, GError **error);   /* transfer full */

/* Saves image as folder/NNNNN-SEED.png (the next free number, as A1111 names them) with the
 * parameters text; creates the folder. Finish returns the path (transfer full). */
void  easel_image_save_result_async (const EaselImage *image, const char *parameters, const char *folder,
                                     guint64 seed, GCancellable *cancellable, GAsyncReadyCallback callback,
                                     gpointer user_data);
/* The same with folder/NNNNN-SUFFIX.png ("grid" for a comparison grid); finish with
 * easel_image_save_result_finish. */
void  easel_image_save_named_async (const EaselImage *image, const char *parameters, const char *folder,
                                    const char *suffix, GCancellable *cancellable, GAsyncReadyCallback callback,
                                    gpointer user_data);
char *easel_image_save_result_finish (GAsyncResult *result, GError **error);

/* Creates folder if needed and checks that a new file can be written there (a probe file, then
 * removed): what Generate asks before it starts, so a full or read-only folder is said at once. */
gboolean easel_output_folder_check (const char *folder, GError **error);

G_END_DECLS
