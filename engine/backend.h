/* engine/backend.h: where graphs run. One interface, implemented by the CPU backend (engine/cpu/)
 * and, later, the Vulkan backend; model code builds a graph and hands it over, never asking which.
 *
 *   g = easel_graph_new (); ... build with easel_op_*; inputs point at host data ...
 *   easel_backend_compute (backend, g, &error);      plan memory, upload inputs, run every node
 *   easel_backend_read (backend, out_tensor, host, &error);
 *
 * Outputs stay readable until the next compute on the same backend. Weights are bound once per
 * data pointer: a backend may convert or upload them and keep the result between computes. */
#pragma once

#include <glib.h>

#include "graph.h"
#include "profile.h"

G_BEGIN_DECLS

typedef struct _EaselBackend EaselBackend;

typedef struct {
  const char *name;
  gboolean (*compute) (EaselBackend *b, EaselGraph *g, GError **error);
  gboolean (*read) (EaselBackend *b, const EaselTensor *t, float *out, GError **error);
  void (*free) (EaselBackend *b);
  /* optional (easel_backend_graph_memory): NULL for a backend that holds no device memory */
  guint64 (*graph_memory) (EaselBackend *b, EaselGraph *g);
} EaselBackendClass;

/* What a backend has computed since it was made: for benchmarks. */
typedef struct {
  guint64 computes;     /* graphs */
  guint64 nodes;        /* nodes run */
  double flops;         /* matrix FLOPs (easel_tensor_flops) */
  double seconds;       /* wall time inside compute */
  guint64 device_bytes;       /* device memory held now (0 on the CPU backend) */
  guint64 device_peak_bytes;  /* the most held at once since the backend was made or the last reset */
} EaselBackendStats;

/* Device memory a backend holds (bytes): weights, activations, transfer buffers. */
typedef struct {
  guint64 held, peak;
  guint64 limit;        /* 0: none below the device's own */
} EaselBackendMemory;

struct _EaselBackend {
  const EaselBackendClass *klass;
  EaselBackendStats stats;
  EaselProfile *profile;   /* per-op times, NULL when off (easel_backend_set_profile, $EASEL_PROFILE) */
  guint profile_state;     /* backend.c: whether $EASEL_PROFILE was read, and whether to print at free */
  EaselBackendMemory memory;
};

/* n_threads <= 0: $EASEL_THREADS or every core. transfer full. */
EaselBackend *easel_backend_new_cpu (int n_threads);
/* device: NULL ($EASEL_VULKAN_DEVICE, else the first usable GPU, else a CPU implementation such as
 * lavapipe), an index or part of a name as `easel-cli devices` lists them. NULL with a one-line
 * reason when there is no usable device or Easel was built without Vulkan; callers fall back to
 * the CPU and say so once. transfer full. */
EaselBackend *easel_backend_new_vulkan (const char *device, GError **error);
/* "cpu" or "vulkan" (optionally "vulkan:DEVICE"), for harnesses and command lines. */
EaselBackend *easel_backend_new_for_name (const char *name, GError **error);
/* Errors the Vulkan validation layer reported so far ($EASEL_VULKAN_VALIDATION=1); -1 when off. */
gint          easel_backend_vulkan_validation_errors (EaselBackend *b);

const char *easel_backend_name (EaselBackend *b);
gboolean    easel_backend_compute (EaselBackend *b, EaselGraph *g, GError **error);
/* A float output (any view of one) into out[0 .. numel), densely in the view's logical order. */
gboolean    easel_backend_read (EaselBackend *b, const EaselTensor *t, float *out, GError **error);
void        easel_backend_free (EaselBackend *b);
void        easel_backend_get_stats (EaselBackend *b, EaselBackendStats *out);
/* Per-op profiling (profile.h): the CPU backend times each node on the wall clock, the Vulkan
 * backend with GPU timestamps (dispatches then run one after another). $EASEL_PROFILE=1 turns it on
 * for every backend at its first compute and prints the profile to stderr when the backend is
 * freed; easel_backend_set_profile turns it on or off by hand (no printing at free). A backend
 * that cannot time (a Vulkan queue without timestamps) leaves the profile empty and says so once. */
void          easel_backend_set_profile (EaselBackend *b, gboolean on);
EaselProfile *easel_backend_get_profile (EaselBackend *b);   /* NULL when off; owned by b */

/* Device memory (the Vulkan backend; the CPU backend holds none and ignores a limit). Under a limit
 * the backend never holds more than `bytes`: before a graph runs, it shrinks its activation and
 * readback buffers to this graph's size, then releases the weights of the least recently used
 * graphs that this one does not use (they are uploaded again when needed); if the graph still does not
 * fit, compute fails with EASEL_ERROR_OUT_OF_MEMORY saying what it needs, and the backend stays
 * usable. A driver's own out-of-memory is answered the same way (release, retry, else that error).
 * 0 = no limit. */
void        easel_backend_set_memory_limit (EaselBackend *b, guint64 bytes);
guint64     easel_backend_get_memory_limit (EaselBackend *b);
/* the peak starts again from what is held now */
void        easel_backend_reset_memory_peak (EaselBackend *b);
/* Bytes of device memory running g needs with nothing else held (its weights, in the form the
 * backend stores them, its planned activations, its readback and the fixed transfer buffers); 0 on
 * a backend that holds none. Plans g (easel_graph_plan); inputs need no data. */
guint64     easel_backend_graph_memory (EaselBackend *b, EaselGraph *g);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselBackend, easel_backend_free)

G_END_DECLS
