/* engine/backend.c: the backend interface's dispatch. */
#include "backend.h"

#include <string.h>

#include "error.h"

const char *
easel_backend_name (EaselBackend *b)
{
  return b->klass->name;
}

gboolean
easel_backend_compute (EaselBackend *b, EaselGraph *g, GError **error)
{
  const GError *ge = easel_graph_error (g);
  if (ge != NULL) {
    g_propagate_error (error, g_error_copy (ge));
    return FALSE;
  }
  gint64 t0 = g_get_monotonic_time ();
  if (!b->klass->compute (b, g, error))
    return FALSE;
  b->stats.seconds += (double) (g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
  b->stats.computes++;
  for (guint i = 0; i < easel_graph_n_nodes (g); i++) {
    b->stats.flops += easel_tensor_flops (easel_graph_node (g, i));
    b->stats.nodes++;
  }
  return TRUE;
}

void
easel_backend_get_stats (EaselBackend *b, EaselBackendStats *out)
{
  *out = b->stats;
  out->device_bytes = b->memory.held;
  out->device_peak_bytes = b->memory.peak;
}

void
easel_backend_set_memory_limit (EaselBackend *b, guint64 bytes)
{
  b->memory.limit = bytes;
}

guint64
easel_backend_get_memory_limit (EaselBackend *b)
{
  return b->memory.limit;
}

void
easel_backend_reset_memory_peak (EaselBackend *b)
{
  b->memory.peak = b->memory.held;
}

guint64
easel_backend_graph_memory (EaselBackend *b, EaselGraph *g)
{
  return b->klass->graph_memory ? b->klass->graph_memory (b, g) : 0;
}

gboolean
easel_backend_read (EaselBackend *b, const EaselTensor *t, float *out, GError **error)
{
  return b->klass->read (b, t, out, error);
}

void
easel_backend_free (EaselBackend *b)
{
  if (b)
    b->klass->free (b);
}

EaselBackend *
easel_backend_new_for_name (const char *name, GError **error)
{
  if (name == NULL || strcmp (name, "cpu") == 0)
    return easel_backend_new_cpu (0);
  if (strcmp (name, "vulkan") == 0)
    return easel_backend_new_vulkan (NULL, error);
  if (g_str_has_prefix (name, "vulkan:"))
    return easel_backend_new_vulkan (name + strlen ("vulkan:"), error);
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "unknown backend '%s' (cpu, vulkan or vulkan:DEVICE)", name);
  return NULL;
}
