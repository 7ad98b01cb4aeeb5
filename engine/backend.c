/* engine/backend.c: the backend interface's dispatch. */
#include "backend.h"

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
  return b->klass->compute (b, g, error);
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
