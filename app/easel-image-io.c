/* app/easel-image-io.c: background image loading and saving (easel-image-io.h). */
#include "easel-image-io.h"

#include <glib/gi18n.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "easel-job.h"

void
easel_loaded_image_free (EaselLoadedImage *li)
{
  if (li == NULL)
    return;
  easel_image_free (li->image);
  g_clear_object (&li->texture);
  g_free (li->parameters);
  g_free (li->path);
  g_free (li);
}

GdkTexture *
easel_texture_from_image (const EaselImage *image)
{
  g_autoptr(GBytes) bytes = g_bytes_new (image->pixels, image->stride * (gsize) image->height);
  return gdk_memory_texture_new (image->width, image->height,
                                 image->channels == 4 ? GDK_MEMORY_R8G8B8A8 : GDK_MEMORY_R8G8B8, bytes,
                                 image->stride);
}

EaselImage *
easel_image_from_texture (GdkTexture *texture, GError **error)
{
  int w = gdk_texture_get_width (texture), h = gdk_texture_get_height (texture);
  g_autoptr(EaselImage) img = easel_image_new (w, h, 3, error);
  if (img == NULL)
    return NULL;
  gsize stride = (gsize) w * 4;
  g_autofree guint8 *bgra = g_malloc (stride * (gsize) h);
  gdk_texture_download (texture, bgra, stride);   /* GDK_MEMORY_DEFAULT: premultiplied B8G8R8A8 */
  for (gsize i = 0, n = (gsize) w * (gsize) h; i < n; i++) {
    const guint8 *p = bgra + i * 4;
    guint white = 255 - p[3];   /* premultiplied over white: c + (1 - a) */
    img->pixels[i * 3 + 0] = (guint8) MIN (255u, p[2] + white);
    img->pixels[i * 3 + 1] = (guint8) MIN (255u, p[1] + white);
    img->pixels[i * 3 + 2] = (guint8) MIN (255u, p[0] + white);
  }
  return g_steal_pointer (&img);
}

/* ---- loading -------------------------------------------------------------------------------- */

static void
load_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  GFile *file = task_data;
  GError *error = NULL;
  g_autoptr(GBytes) bytes = g_file_load_bytes (file, cancellable, NULL, &error);
  if (bytes == NULL) {
    g_task_return_error (task, error);
    return;
  }
  g_autoptr(EaselLoadedImage) li = g_new0 (EaselLoadedImage, 1);
  li->path = g_file_get_path (file);
  g_autofree char *name = g_file_get_parse_name (file);
  gsize len;
  const guint8 *data = g_bytes_get_data (bytes, &len);

  if (len >= 8 && memcmp (data, "\x89PNG\r\n\x1a\n", 8) == 0) {
    g_autoptr(EaselPngInfo) info = NULL;
    g_autoptr(EaselImage) img = easel_png_load_from_data (data, len, name, &info, &error);
    if (img == NULL) {
      g_task_return_error (task, error);
      return;
    }
    const EaselPngText *t = easel_png_info_find_text (info, EASEL_PARAMETERS_KEY);
    li->parameters = t ? g_strdup (t->text) : NULL;
    li->texture = easel_texture_from_image (img);
    li->image = img->channels == 3 ? g_steal_pointer (&img) : easel_image_from_texture (li->texture, &error);
  } else {
    li->texture = gdk_texture_new_from_bytes (bytes, &error);
    if (li->texture == NULL) {
      g_prefix_error (&error, _("%s is not an image Easel can read: "), name);
      g_task_return_error (task, error);
      return;
    }
    li->image = easel_image_from_texture (li->texture, &error);
  }
  if (li->image == NULL) {
    g_task_return_error (task, error);
    return;
  }
  g_task_return_pointer (task, g_steal_pointer (&li), (GDestroyNotify) easel_loaded_image_free);
}

void
easel_image_load_async (GFile *file, GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, easel_image_load_async);
  g_task_set_task_data (task, g_object_ref (file), g_object_unref);
  g_task_run_in_thread (task, load_thread);
}

EaselLoadedImage *
easel_image_load_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == easel_image_load_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- saving --------------------------------------------------------------------------------- */

typedef struct {
  EaselImage *image;
  char *parameters, *folder;
  char *suffix;                /* the name after NNNNN-: the seed, or "grid" */
} SaveData;

static void
save_data_free (SaveData *d)
{
  easel_image_free (d->image);
  g_free (d->parameters);
  g_free (d->folder);
  g_free (d->suffix);
  g_free (d);
}

/* The next free number: one more than the largest NNNNN- prefix in the folder. */
static guint
next_number (const char *folder)
{
  g_autoptr(GDir) dir = g_dir_open (folder, 0, NULL);
  const char *name;
  guint next = 0;
  while (dir && (name = g_dir_read_name (dir)) != NULL) {
    char *end;
    guint64 n = g_ascii_strtoull (name, &end, 10);
    if (end != name && *end == '-' && n < G_MAXUINT - 1)
      next = MAX (next, (guint) n + 1);
  }
  return next;
}

static void
save_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  SaveData *d = task_data;
  GError *error = NULL;
  if (g_mkdir_with_parents (d->folder, 0755) != 0) {
    int err = errno;
    g_task_return_new_error (task, G_IO_ERROR, g_io_error_from_errno (err), _("Cannot create the folder %s: %s"),
                             d->folder, g_strerror (err));
    return;
  }
  /* one save at a time, so that two saves in flight never pick the same number */
  static GMutex lock;
  g_mutex_lock (&lock);
  g_autofree char *base = g_strdup_printf ("%05u-%s.png", next_number (d->folder), d->suffix);
  g_autofree char *path = g_build_filename (d->folder, base, NULL);
  const char *texts[] = { EASEL_PARAMETERS_KEY, d->parameters, NULL };
  gboolean saved = easel_png_save (d->image, path, d->parameters ? texts : NULL, &error);
  g_mutex_unlock (&lock);
  if (!saved) {
    g_task_return_error (task, error);
    return;
  }
  g_task_return_pointer (task, g_steal_pointer (&path), g_free);
}

void
easel_image_save_named_async (const EaselImage *image, const char *parameters, const char *folder, const char *suffix,
                              GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  SaveData *d = g_new0 (SaveData, 1);
  d->image = easel_job_image_copy (image);
  d->parameters = g_strdup (parameters);
  d->folder = g_strdup (folder);
  d->suffix = g_strdup (suffix);
  g_task_set_source_tag (task, easel_image_save_result_async);
  g_task_set_task_data (task, d, (GDestroyNotify) save_data_free);
  g_task_run_in_thread (task, save_thread);
}

void
easel_image_save_result_async (const EaselImage *image, const char *parameters, const char *folder, guint64 seed,
                               GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
  g_autofree char *suffix = g_strdup_printf ("%" G_GUINT64_FORMAT, seed);
  easel_image_save_named_async (image, parameters, folder, suffix, cancellable, callback, user_data);
}

gboolean
easel_output_folder_check (const char *folder, GError **error)
{
  if (g_mkdir_with_parents (folder, 0755) != 0) {
    int err = errno;
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err), _("Cannot create the output folder %s: %s"), folder,
                 g_strerror (err));
    return FALSE;
  }
  g_autofree char *probe = g_build_filename (folder, ".easel-write-test-XXXXXX", NULL);
  int fd = g_mkstemp (probe);
  if (fd < 0) {
    int err = errno;
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (err), _("Cannot write to the output folder %s: %s"), folder,
                 g_strerror (err));
    return FALSE;
  }
  close (fd);
  g_unlink (probe);
  return TRUE;
}

char *
easel_image_save_result_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == easel_image_save_result_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
