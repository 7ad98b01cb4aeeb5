/* engine/backend.c: the backend interface's dispatch. */
#include "backend.h"

#include <string.h>

#include "error.h"

const char *
easel_backend_name (EaselBackend *b)
{
  return b->klass->name;
}

enum { PROFILE_ENV_READ = 1, PROFILE_PRINT_AT_FREE = 2 };

void
easel_backend_set_profile (EaselBackend *b, gboolean on)
{
  b->profile_state |= PROFILE_ENV_READ;
  if (on && b->profile == NULL)
    b->profile = easel_profile_new (strcmp (b->klass->name, "cpu") == 0 ? "wall time per node"
                                    : "GPU timestamps per node, dispatches serialized");
  else if (!on) {
    g_clear_pointer (&b->profile, easel_profile_free);
    b->profile_state &= ~PROFILE_PRINT_AT_FREE;
  }
}

EaselProfile *
easel_backend_get_profile (EaselBackend *b)
{
  return b->profile;
}

gboolean
easel_backend_compute (EaselBackend *b, EaselGraph *g, GError **error)
{
  if (!(b->profile_state & PROFILE_ENV_READ)) {
    const char *env = g_getenv ("EASEL_PROFILE");
    gboolean on = env != NULL && *env != '\0' && strcmp (env, "0") != 0;
    easel_backend_set_profile (b, on);
    if (on)
      b->profile_state |= PROFILE_PRINT_AT_FREE;
  }
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
  if (b == NULL)
    return;
  /* freed after the backend: the Vulkan backend collects its last submission's timestamps into it */
  EaselProfile *p = b->profile;
  gboolean print = p && (b->profile_state & PROFILE_PRINT_AT_FREE);
  g_autofree char *title = g_strdup_printf ("%s backend", b->klass->name);
  b->klass->free (b);
  if (print)
    easel_profile_print (p, stderr, title, 20);
  easel_profile_free (p);
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
