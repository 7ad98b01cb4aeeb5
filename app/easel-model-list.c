/* app/easel-model-list.c: the model chooser's items and the folder scan (easel-model-list.h). */
#include "easel-model-list.h"

#include <glib/gi18n.h>

#include "checkpoint.h"
#include "family.h"

struct _EaselModelItem {
  GObject parent_instance;
  char *path, *name, *family, *description;
  gboolean usable;
};

G_DEFINE_FINAL_TYPE (EaselModelItem, easel_model_item, G_TYPE_OBJECT)

enum { PROP_0, PROP_PATH, PROP_NAME, PROP_FAMILY, PROP_DESCRIPTION, N_PROPS };
static GParamSpec *properties[N_PROPS];

static void
easel_model_item_finalize (GObject *object)
{
  EaselModelItem *self = EASEL_MODEL_ITEM (object);
  g_free (self->path);
  g_free (self->name);
  g_free (self->family);
  g_free (self->description);
  G_OBJECT_CLASS (easel_model_item_parent_class)->finalize (object);
}

static void
easel_model_item_get_property (GObject *object, guint prop_id, GValue *value, GParamSpec *pspec)
{
  EaselModelItem *self = EASEL_MODEL_ITEM (object);
  switch (prop_id) {
  case PROP_PATH: g_value_set_string (value, self->path); break;
  case PROP_NAME: g_value_set_string (value, self->name); break;
  case PROP_FAMILY: g_value_set_string (value, self->family); break;
  case PROP_DESCRIPTION: g_value_set_string (value, self->description); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  }
}

static void
easel_model_item_class_init (EaselModelItemClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  object_class->finalize = easel_model_item_finalize;
  object_class->get_property = easel_model_item_get_property;
  properties[PROP_PATH] = g_param_spec_string ("path", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_NAME] = g_param_spec_string ("name", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_FAMILY] = g_param_spec_string ("family", NULL, NULL, NULL, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_DESCRIPTION] = g_param_spec_string ("description", NULL, NULL, NULL,
                                                      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
easel_model_item_init (EaselModelItem *self)
{
}

const char *
easel_model_item_get_path (EaselModelItem *self)
{
  return self->path;
}

const char *
easel_model_item_get_name (EaselModelItem *self)
{
  return self->name;
}

const char *
easel_model_item_get_family (EaselModelItem *self)
{
  return self->family;
}

const char *
easel_model_item_get_description (EaselModelItem *self)
{
  return self->description;
}

gboolean
easel_model_item_get_usable (EaselModelItem *self)
{
  return self->usable;
}

/* Opens the checkpoint (headers only: the tensors are mapped, not read) to learn its family. */
static EaselModelItem *
item_for_path (const char *path)
{
  EaselModelItem *item = g_object_new (EASEL_TYPE_MODEL_ITEM, NULL);
  g_autoptr(GError) error = NULL;
  item->path = g_strdup (path);
  item->name = g_path_get_basename (path);
  g_autoptr(EaselCheckpoint) ck = easel_checkpoint_open (path, &error);
  if (ck == NULL) {
    item->family = g_strdup ("unknown");
    item->description = g_strdup_printf (_("Cannot be read: %s"), error->message);
    return item;
  }
  const EaselDetection *det = easel_checkpoint_detection (ck);
  item->family = g_strdup (easel_family_name (det->family));
  item->usable = det->family != EASEL_FAMILY_UNKNOWN;
  item->description = item->usable ? g_strdup (easel_family_display_name (det->family))
                                   : g_strdup_printf (_("Unknown model: %s"), det->reason);
  return item;
}

static gboolean
is_checkpoint_file (const char *name)
{
  return g_str_has_suffix (name, ".safetensors") || g_str_has_suffix (name, ".ckpt");
}

static gboolean
is_diffusers_folder (const char *path)
{
  g_autofree char *index = g_build_filename (path, "model_index.json", NULL);
  return g_file_test (index, G_FILE_TEST_IS_REGULAR);
}

/* Adds the checkpoints in folder (and one level of subfolders when depth > 0) to paths. */
static void
collect (const char *folder, int depth, GHashTable *paths, GCancellable *cancellable)
{
  g_autoptr(GDir) dir = g_dir_open (folder, 0, NULL);
  const char *name;
  if (dir == NULL)
    return;
  while ((name = g_dir_read_name (dir)) != NULL && !g_cancellable_is_cancelled (cancellable)) {
    if (name[0] == '.')
      continue;
    g_autofree char *path = g_build_filename (folder, name, NULL);
    if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
      if (is_diffusers_folder (path))
        g_hash_table_add (paths, g_steal_pointer (&path));
      else if (depth > 0)
        collect (path, depth - 1, paths, cancellable);
    } else if (is_checkpoint_file (name)) {
      g_hash_table_add (paths, g_steal_pointer (&path));
    }
  }
}

static gint
compare_items (gconstpointer a, gconstpointer b, gpointer user_data)
{
  EaselModelItem *x = (EaselModelItem *) a, *y = (EaselModelItem *) b;
  int c = g_utf8_collate (x->name, y->name);
  return c ? c : g_strcmp0 (x->path, y->path);
}

static void
scan_thread (GTask *task, gpointer source, gpointer task_data, GCancellable *cancellable)
{
  char **folders = task_data;
  g_autoptr(GHashTable) paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint i = 0; folders[i]; i++) {
    if (*folders[i] == '\0')
      continue;
    collect (folders[i], 1, paths, cancellable);
    /* an A1111 or ComfyUI install folder */
    g_autofree char *a1111 = g_build_filename (folders[i], "models", "Stable-diffusion", NULL);
    g_autofree char *comfy = g_build_filename (folders[i], "models", "checkpoints", NULL);
    collect (a1111, 1, paths, cancellable);
    collect (comfy, 1, paths, cancellable);
  }
  GListStore *store = g_list_store_new (EASEL_TYPE_MODEL_ITEM);
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, paths);
  while (g_hash_table_iter_next (&it, &key, NULL)) {
    if (g_task_return_error_if_cancelled (task)) {
      g_object_unref (store);
      return;
    }
    g_autoptr(EaselModelItem) item = item_for_path (key);
    g_list_store_insert_sorted (store, item, compare_items, NULL);
  }
  g_task_return_pointer (task, store, g_object_unref);
}

void
easel_model_list_scan_async (const char *const *folders, GCancellable *cancellable, GAsyncReadyCallback callback,
                             gpointer user_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, easel_model_list_scan_async);
  g_task_set_task_data (task, g_strdupv ((char **) folders), (GDestroyNotify) g_strfreev);
  g_task_run_in_thread (task, scan_thread);
}

GListModel *
easel_model_list_scan_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == easel_model_list_scan_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
