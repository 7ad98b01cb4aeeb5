/* engine/vulkan/devices.h: what the Vulkan backend knows about the machine's devices, for
 * `easel-cli devices` and for callers that pick one. Built with or without Vulkan: without it,
 * listing fails with a one-line reason. (The backend itself: easel_backend_new_vulkan, backend.h.) */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define EASEL_VULKAN_MAX_COOPMAT_SHAPES 8

/* Capabilities of one physical device, read once (STYLE.md V1). */
typedef struct {
  guint index;                          /* in the loader's enumeration order */
  char name[256];
  const char *type;                     /* "discrete GPU", "integrated GPU", "virtual GPU", "CPU", "other" */
  guint32 api_version;                  /* VK_MAKE_API_VERSION form */
  guint64 device_local_bytes;           /* the largest device-local heap */
  gboolean fp16_math;                   /* shaderFloat16 */
  gboolean storage16;                   /* storageBuffer16BitAccess: fp16 weights in storage buffers */
  gboolean int8_math;                   /* shaderInt8 */
  gboolean storage8;                    /* storageBuffer8BitAccess */
  gboolean coopmat_khr;                 /* VK_KHR_cooperative_matrix */
  gboolean coopmat_nv;                  /* VK_NV_cooperative_matrix */
  /* the f16 x f16 -> f32 subgroup-scope shapes each extension lists, as {M, N, K} */
  guint8 coopmat_khr_shapes[EASEL_VULKAN_MAX_COOPMAT_SHAPES][3];
  guint n_coopmat_khr_shapes;
  guint8 coopmat_nv_shapes[EASEL_VULKAN_MAX_COOPMAT_SHAPES][3];
  guint n_coopmat_nv_shapes;
  guint subgroup_size;
  guint64 max_storage_buffer_range;     /* the largest one binding may be */
  guint64 max_allocation;               /* maxMemoryAllocationSize */
  guint64 min_storage_offset_alignment;
  guint64 non_coherent_atom;
  guint32 max_shared_memory;            /* maxComputeSharedMemorySize */
  guint32 max_workgroup_count[3];
  guint32 max_workgroup_invocations;
  guint32 max_push_constants;
  gboolean usable;                      /* the backend can run on it */
  gboolean chosen;                      /* the one easel_backend_new_vulkan (NULL) takes */
  char reason[160];                     /* why not, when !usable */
} EaselVulkanDeviceInfo;

/* Every physical device, usable or not (GArray of EaselVulkanDeviceInfo; transfer full). NULL with
 * an error when there is no Vulkan (not built in, no loader, no driver). */
GArray *easel_vulkan_list_devices (GError **error);

/* The device a Vulkan backend runs on; NULL for any other backend. */
typedef struct _EaselBackend EaselBackend;
const EaselVulkanDeviceInfo *easel_backend_vulkan_device_info (EaselBackend *b);

/* Whether the KHR (khr) or NV cooperative-matrix extension lists the f16 x f16 -> f32 shape M x N x K. */
gboolean easel_vulkan_has_coopmat (const EaselVulkanDeviceInfo *info, gboolean khr, guint m, guint n, guint k);

/* Command-buffer replay ($EASEL_VULKAN_REPLAY, engine/vulkan/replay.c) since the backend was made. */
typedef struct {
  guint64 recorded;                     /* graphs recorded (every compute when replay is off) */
  guint64 replayed;                     /* computes that submitted a kept recording again */
  guint64 evicted;                      /* recordings dropped for room, least recently used first */
  guint64 forgotten;                    /* recordings dropped because something they bind changed */
  guint kept;                           /* recordings kept now */
  double key_seconds;                   /* computing graph keys */
  double record_seconds;                /* recording graphs */
} EaselVulkanReplayStats;

/* FALSE (out untouched) for any other backend. */
gboolean easel_backend_vulkan_replay_stats (EaselBackend *b, EaselVulkanReplayStats *out);

/* Names of the shader variants the backend would use on this device (NULL-terminated; transfer full). */
char  **easel_vulkan_active_variants (const EaselVulkanDeviceInfo *info);

G_END_DECLS
