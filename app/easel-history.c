/* app/easel-history.c: history items and their background loading (easel-history.h). */
#include "easel-history.h"

#include "easel-image-io.h"
#include "easel.h"

struct _EaselHistoryItem {
  GObject parent_instance;
  char *path;
  GdkTexture *thumbnail;
  char *parameters;
};

G_DEFINE_FINAL_TYPE (EaselHistoryItem, easel_history_item, G_TYPE_OBJECT)

static void
easel_history_item_finalize (GObject *object)
{
  EaselHistoryItem *self = EASEL_HISTORY_ITEM (object);
  g_free (self->path);
  g_clear_object (&self->thumbnail);
  g_free (self->parameters);
  G_OBJECT_CLASS (easel_history_item_parent_class)->finalize (object);
}

static void
easel_history_item_class_init (EaselHistoryItemClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = easel_history_item_finalize;
}

static void
easel_history_item_init (EaselHistoryItem *self)
{
}

const char *
easel_history_item_get_path (EaselHistoryItem *self)
{
  return self->path;
}

GdkTexture *
easel_history_item_get_thumbnail (EaselHistoryItem *self)
{
  return self->thumbnail;
}

const char *
easel_history_item_get_parameters (EaselHistoryItem *self)
{
  return self->parameters;
}

/* A box-filtered copy no larger than size x size (RGB or RGBA in, same channels out). */
static EaselImage *
thumbnail (const EaselImage *src, int size)
{
  double f = MAX ((double) src->width / size, (double) src->height / size);
  if (f <= 1.0)
    return NULL;
  int w = MAX (1, (int) (src->width / f)), h = MAX (1, (int) (src->height / f));
  EaselImage *dst = easel_image_new (w, h, src->channels, NULL);
  if (dst == NULL)
    return NULL;
  int c = src->channels;
  for (int y = 0; y < h; y++) {
    int y0 = (int) (y * f), y1 = MAX (y0 + 1, MIN (src->height, (int) ((y + 1) * f)));
    for (int x = 0; x < w; x++) {
      int x0 = (int) (x * f), x1 = MAX (x0 + 1, MIN (src->width, (int) ((x + 1) * f)));
      for (int k = 0; k < c; k++) {
        guint64 sum = 0;
        for (int yy = y0; yy < y1; yy++)
          for (int xx = x0; xx < x1; xx++)
            sum += src->pixels[(gsize) yy * src->stride + (gsize) xx * c + k];
        dst->pixels[(gsize) y * dst->stride + (gsize) x * c + k] = (guint8) (sum / ((guint64) (y1 - y0) * (x1 - x0)));
      }
    }
  }
  return dst;
}

static EaselHistoryItem *
item_for_path (const char *path)
{
  g_autoptr(EaselPngInfo) info = NULL;
  g_autoptr(EaselImage) img = easel_png_load (path, &info, NULL);
  if (img == NULL)
    return NULL;
  g_autoptr(EaselImage) small = thumbnail (img, EASEL_HISTORY_THUMB_SIZE);
  EaselHistoryItem *item = g_object_new (EASEL_TYPE_HISTORY_ITEM, NULL);
  item->path = g_strdup (path);
  item->thumbnail = easel_texture_from_image (small ? small : img);
  const EaselPngText *t = easel_png_info_find_text (info, EASEL_PARAMETERS_KEY);
  item->parameters = t ? g_strdup (t->text) : NULL;
  return item;
}

typedef struct {
  char *folder;
  char **paths;
} LoadData;

static void
load_data_free (LoadData *d)
{
  g_free (d->folder);
  g_strfreev (d->paths);
  g_free (d);
}

static gint
compare_names_desc (gconstpointer a, gconstpointer b)
{
  return -g_strcmp0 (*(char *const *) a, *(char *const *) b);
}

static void
load_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  LoadData *d = task_data;
  g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);

  if (d->paths) {
    for (guint i = 0; d->paths[i]; i++)
      g_ptr_array_add (paths, g_strdup (d->paths[i]));
  } else {
    g_autoptr(GDir) dir = g_dir_open (d->folder, 0, NULL);   /* no folder yet: no history */
    const char *name;
    while (dir && (name = g_dir_read_name (dir)) != NULL)
      if (g_str_has_suffix (name, ".png"))
        g_ptr_array_add (paths, g_strdup (name));
    g_ptr_array_sort (paths, compare_names_desc);
    if (paths->len > EASEL_HISTORY_MAX_ITEMS)
      g_ptr_array_set_size (paths, EASEL_HISTORY_MAX_ITEMS);
    for (guint i = 0; i < paths->len; i++) {
      char *full = g_build_filename (d->folder, paths->pdata[i], NULL);
      g_free (paths->pdata[i]);
      paths->pdata[i] = full;
    }
  }
  GPtrArray *items = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < paths->len; i++) {
    if (g_task_return_error_if_cancelled (task)) {
      g_ptr_array_unref (items);
      return;
    }
    EaselHistoryItem *item = item_for_path (paths->pdata[i]);
    if (item)
      g_ptr_array_add (items, item);
  }
  g_task_return_pointer (task, items, (GDestroyNotify) g_ptr_array_unref);
}

void
easel_history_load_async (const char *folder, const char *const *paths, GCancellable *cancellable,
                          GAsyncReadyCallback callback, gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  LoadData *d = g_new0 (LoadData, 1);
  d->folder = g_strdup (folder);
  d->paths = g_strdupv ((char **) paths);
  g_task_set_source_tag (task, easel_history_load_async);
  g_task_set_task_data (task, d, (GDestroyNotify) load_data_free);
  g_task_run_in_thread (task, load_thread);
}

GPtrArray *
easel_history_load_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == easel_history_load_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
