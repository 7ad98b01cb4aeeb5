/* engine/vulkan/stub.c: the Vulkan entry points of a build without Vulkan (-Dvulkan=disabled, or no
 * headers/glslc): each says so in one line, and callers fall back to the CPU. */
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/vulkan/devices.h"

#define NOT_BUILT "vulkan: this build of Easel has no Vulkan backend (-Dvulkan=enabled needs the Vulkan headers and glslc)"

EaselBackend *
easel_backend_new_vulkan (const char *device, GError **error)
{
  g_set_error_literal (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, NOT_BUILT);
  return NULL;
}

const EaselVulkanDeviceInfo *
easel_backend_vulkan_device_info (EaselBackend *b)
{
  return NULL;
}

gint
easel_backend_vulkan_validation_errors (EaselBackend *b)
{
  return -1;
}

gboolean
easel_backend_vulkan_replay_stats (EaselBackend *b, EaselVulkanReplayStats *out)
{
  return FALSE;
}

GArray *
easel_vulkan_list_devices (GError **error)
{
  g_set_error_literal (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, NOT_BUILT);
  return NULL;
}

char **
easel_vulkan_active_variants (const EaselVulkanDeviceInfo *info)
{
  return g_new0 (char *, 1);
}
