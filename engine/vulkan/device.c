/* engine/vulkan/device.c: the Vulkan instance, the choice of a physical device, its capabilities
 * (read once into EaselVulkanDeviceInfo, STYLE.md V1), and the logical device with one compute
 * queue. With $EASEL_VULKAN_VALIDATION=1 the Khronos validation layer is enabled and a debug
 * messenger counts its errors (the vulkan test suite fails on any). Nothing here aborts: every
 * failure is a GError. */
#include <stdlib.h>
#include <string.h>

#include "engine/error.h"
#include "engine/vulkan/vk.h"

/* Below this much device-local memory a device is not worth running SD on. */
#define MIN_DEVICE_MEMORY ((guint64) 256 << 20)
#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

const char *
easel_vk_result_name (VkResult r)
{
  switch (r) {
#define R(x) case x: return #x;
  R (VK_SUCCESS) R (VK_NOT_READY) R (VK_TIMEOUT) R (VK_INCOMPLETE)
  R (VK_ERROR_OUT_OF_HOST_MEMORY) R (VK_ERROR_OUT_OF_DEVICE_MEMORY) R (VK_ERROR_INITIALIZATION_FAILED)
  R (VK_ERROR_DEVICE_LOST) R (VK_ERROR_MEMORY_MAP_FAILED) R (VK_ERROR_LAYER_NOT_PRESENT)
  R (VK_ERROR_EXTENSION_NOT_PRESENT) R (VK_ERROR_FEATURE_NOT_PRESENT) R (VK_ERROR_INCOMPATIBLE_DRIVER)
  R (VK_ERROR_TOO_MANY_OBJECTS) R (VK_ERROR_FORMAT_NOT_SUPPORTED) R (VK_ERROR_FRAGMENTED_POOL)
  R (VK_ERROR_OUT_OF_POOL_MEMORY) R (VK_ERROR_INVALID_EXTERNAL_HANDLE) R (VK_ERROR_FRAGMENTATION)
  R (VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS) R (VK_PIPELINE_COMPILE_REQUIRED) R (VK_ERROR_UNKNOWN)
#undef R
  default:
    return "VkResult";
  }
}

void
easel_vk_set_error (GError **error, VkResult r, const char *call, const char *func)
{
  int code = (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) ? EASEL_ERROR_OUT_OF_MEMORY
             : r == VK_ERROR_FEATURE_NOT_PRESENT || r == VK_ERROR_EXTENSION_NOT_PRESENT
               || r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_LAYER_NOT_PRESENT ? EASEL_ERROR_UNSUPPORTED
             : EASEL_ERROR_IO;
  /* the call text up to its argument list: "vkAllocateMemory" */
  const char *paren = strchr (call, '(');
  int len = paren ? (int) (paren - call) : (int) strlen (call);
  while (len > 0 && call[len - 1] == ' ')
    len--;
  g_set_error (error, EASEL_ERROR, code, "vulkan: %.*s failed with %s (%d) in %s", len, call,
               easel_vk_result_name (r), (int) r, func);
}

static gboolean
env_true (const char *name)
{
  const char *v = g_getenv (name);
  return v && *v && strcmp (v, "0") != 0;
}

static gboolean
has_layer (const char *name)
{
  guint32 n = 0;
  if (vkEnumerateInstanceLayerProperties (&n, NULL) != VK_SUCCESS || n == 0)
    return FALSE;
  g_autofree VkLayerProperties *l = g_new0 (VkLayerProperties, n);
  if (vkEnumerateInstanceLayerProperties (&n, l) != VK_SUCCESS)
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (strcmp (l[i].layerName, name) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
has_instance_extension (const char *name)
{
  guint32 n = 0;
  if (vkEnumerateInstanceExtensionProperties (NULL, &n, NULL) != VK_SUCCESS || n == 0)
    return FALSE;
  g_autofree VkExtensionProperties *e = g_new0 (VkExtensionProperties, n);
  if (vkEnumerateInstanceExtensionProperties (NULL, &n, e) != VK_SUCCESS)
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (strcmp (e[i].extensionName, name) == 0)
      return TRUE;
  return FALSE;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL
on_debug_message (VkDebugUtilsMessageSeverityFlagBitsEXT severity, VkDebugUtilsMessageTypeFlagsEXT types,
                  const VkDebugUtilsMessengerCallbackDataEXT *data, void *user_data)
{
  EaselVkDevice *dev = user_data;
  if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
    g_atomic_int_inc (&dev->validation_errors);
    g_printerr ("vulkan validation error: %s\n", data->pMessage ? data->pMessage : "?");
  } else if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
    g_printerr ("vulkan validation warning: %s\n", data->pMessage ? data->pMessage : "?");
  }
  return VK_FALSE;
}

/* dev == NULL: a plain instance for listing. */
static gboolean
create_instance (EaselVkDevice *dev, VkInstance *out, GError **error)
{
  const char *layers[1], *exts[2];
  guint n_layers = 0, n_exts = 0;
  gboolean validation = dev && env_true ("EASEL_VULKAN_VALIDATION");
  gboolean debug_utils = dev && has_instance_extension (VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
  VkInstanceCreateFlags flags = 0;

  *out = VK_NULL_HANDLE;
  if (validation) {
    if (!has_layer (VALIDATION_LAYER)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED,
                   "vulkan: EASEL_VULKAN_VALIDATION is set but %s is not installed (vulkan-validationlayers)",
                   VALIDATION_LAYER);
      return FALSE;
    }
    layers[n_layers++] = VALIDATION_LAYER;
  }
  if (debug_utils)
    exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
#ifdef VK_KHR_portability_enumeration
  if (has_instance_extension (VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {   /* MoltenVK */
    exts[n_exts++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
    flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
  }
#endif
  const VkApplicationInfo app = {
    .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "easel", .pEngineName = "easel",
    .apiVersion = VK_API_VERSION_1_2,
  };
  const VkInstanceCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .flags = flags, .pApplicationInfo = &app,
    .enabledLayerCount = n_layers, .ppEnabledLayerNames = layers,
    .enabledExtensionCount = n_exts, .ppEnabledExtensionNames = exts,
  };
  VK_TRY (vkCreateInstance (&ci, NULL, out));
  if (dev) {
    dev->validation_errors = validation ? 0 : -1;
    if (debug_utils) {
      dev->set_name = (PFN_vkSetDebugUtilsObjectNameEXT) vkGetInstanceProcAddr (*out, "vkSetDebugUtilsObjectNameEXT");
      PFN_vkCreateDebugUtilsMessengerEXT create_messenger =
        (PFN_vkCreateDebugUtilsMessengerEXT) vkGetInstanceProcAddr (*out, "vkCreateDebugUtilsMessengerEXT");
      if (validation && create_messenger) {
        const VkDebugUtilsMessengerCreateInfoEXT mi = {
          .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
          .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT,
          .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT
                         | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
          .pfnUserCallback = on_debug_message, .pUserData = dev,
        };
        VK_TRY (create_messenger (*out, &mi, NULL, &dev->messenger));
      }
    }
  }
  return TRUE;
out:
  if (*out) {
    vkDestroyInstance (*out, NULL);
    *out = VK_NULL_HANDLE;
  }
  return FALSE;
}

static const char *
type_name (VkPhysicalDeviceType t)
{
  switch (t) {
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
  case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
  case VK_PHYSICAL_DEVICE_TYPE_OTHER:
  case VK_PHYSICAL_DEVICE_TYPE_MAX_ENUM:
  default: return "other";
  }
}

static gboolean
has_device_extension (VkPhysicalDevice phys, const char *name)
{
  guint32 n = 0;
  if (vkEnumerateDeviceExtensionProperties (phys, NULL, &n, NULL) != VK_SUCCESS || n == 0)
    return FALSE;
  g_autofree VkExtensionProperties *e = g_new0 (VkExtensionProperties, n);
  if (vkEnumerateDeviceExtensionProperties (phys, NULL, &n, e) != VK_SUCCESS)
    return FALSE;
  for (guint i = 0; i < n; i++)
    if (strcmp (e[i].extensionName, name) == 0)
      return TRUE;
  return FALSE;
}

static gint
compute_queue_family (VkPhysicalDevice phys)
{
  guint32 n = 0;
  vkGetPhysicalDeviceQueueFamilyProperties (phys, &n, NULL);
  g_autofree VkQueueFamilyProperties *q = g_new0 (VkQueueFamilyProperties, MAX (n, 1));
  vkGetPhysicalDeviceQueueFamilyProperties (phys, &n, q);
  for (guint i = 0; i < n; i++)
    if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) && q[i].queueCount > 0)
      return (gint) i;
  return -1;
}

/* Records a subgroup-scope shape once (drivers list one per type combination and scope). */
static void
add_coopmat_shape (guint8 (*shapes)[3], guint *n, guint32 m, guint32 nn, guint32 k)
{
  if (m > 255 || nn > 255 || k > 255)
    return;
  for (guint i = 0; i < *n; i++)
    if (shapes[i][0] == m && shapes[i][1] == nn && shapes[i][2] == k)
      return;
  if (*n < EASEL_VULKAN_MAX_COOPMAT_SHAPES) {
    shapes[*n][0] = (guint8) m;
    shapes[*n][1] = (guint8) nn;
    shapes[*n][2] = (guint8) k;
    (*n)++;
  }
}

/* The f16 x f16 -> f32 subgroup shapes VK_KHR_cooperative_matrix lists into info. */
static void
read_coopmat_khr (VkInstance instance, VkPhysicalDevice phys, EaselVulkanDeviceInfo *info)
{
  guint32 n = 0;
  EaselVkGetCoopMatPropsKHR get =
    (EaselVkGetCoopMatPropsKHR) vkGetInstanceProcAddr (instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
  if (get == NULL || get (phys, &n, NULL) != VK_SUCCESS || n == 0)
    return;
  g_autofree EaselVkCooperativeMatrixPropertiesKHR *p = g_new0 (EaselVkCooperativeMatrixPropertiesKHR, n);
  for (guint i = 0; i < n; i++)
    p[i].sType = EASEL_VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
  if (get (phys, &n, p) != VK_SUCCESS)
    return;
  for (guint i = 0; i < n; i++)
    if (p[i].AType == EASEL_VK_COMPONENT_TYPE_FLOAT16_KHR && p[i].BType == EASEL_VK_COMPONENT_TYPE_FLOAT16_KHR
        && p[i].CType == EASEL_VK_COMPONENT_TYPE_FLOAT32_KHR && p[i].ResultType == EASEL_VK_COMPONENT_TYPE_FLOAT32_KHR
        && p[i].scope == EASEL_VK_SCOPE_SUBGROUP_KHR)
      add_coopmat_shape (info->coopmat_khr_shapes, &info->n_coopmat_khr_shapes, p[i].MSize, p[i].NSize, p[i].KSize);
}

/* Likewise for VK_NV_cooperative_matrix. */
static void
read_coopmat_nv (VkInstance instance, VkPhysicalDevice phys, EaselVulkanDeviceInfo *info)
{
  guint32 n = 0;
  PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get =
    (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV) vkGetInstanceProcAddr (instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
  if (get == NULL || get (phys, &n, NULL) != VK_SUCCESS || n == 0)
    return;
  g_autofree VkCooperativeMatrixPropertiesNV *p = g_new0 (VkCooperativeMatrixPropertiesNV, n);
  for (guint i = 0; i < n; i++)
    p[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
  if (get (phys, &n, p) != VK_SUCCESS)
    return;
  for (guint i = 0; i < n; i++)
    if (p[i].AType == VK_COMPONENT_TYPE_FLOAT16_NV && p[i].BType == VK_COMPONENT_TYPE_FLOAT16_NV
        && p[i].CType == VK_COMPONENT_TYPE_FLOAT32_NV && p[i].DType == VK_COMPONENT_TYPE_FLOAT32_NV
        && p[i].scope == VK_SCOPE_SUBGROUP_NV)
      add_coopmat_shape (info->coopmat_nv_shapes, &info->n_coopmat_nv_shapes, p[i].MSize, p[i].NSize, p[i].KSize);
}

gboolean
easel_vulkan_has_coopmat (const EaselVulkanDeviceInfo *info, gboolean khr, guint m, guint n, guint k)
{
  const guint8 (*shapes)[3] = khr ? info->coopmat_khr_shapes : info->coopmat_nv_shapes;
  guint count = khr ? info->n_coopmat_khr_shapes : info->n_coopmat_nv_shapes;
  for (guint i = 0; i < count; i++)
    if (shapes[i][0] == m && shapes[i][1] == n && shapes[i][2] == k)
      return TRUE;
  return FALSE;
}

static void
read_info (VkInstance instance, VkPhysicalDevice phys, guint index, EaselVulkanDeviceInfo *info)
{
  VkPhysicalDeviceProperties props;
  VkPhysicalDeviceMemoryProperties mem;
  memset (info, 0, sizeof *info);
  vkGetPhysicalDeviceProperties (phys, &props);
  vkGetPhysicalDeviceMemoryProperties (phys, &mem);
  info->index = index;
  g_strlcpy (info->name, props.deviceName, sizeof info->name);
  info->type = type_name (props.deviceType);
  info->api_version = props.apiVersion;
  for (guint i = 0; i < mem.memoryHeapCount; i++)
    if (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT)
      info->device_local_bytes = MAX (info->device_local_bytes, mem.memoryHeaps[i].size);
  const VkPhysicalDeviceLimits *l = &props.limits;
  info->max_storage_buffer_range = l->maxStorageBufferRange;
  info->min_storage_offset_alignment = l->minStorageBufferOffsetAlignment;
  info->non_coherent_atom = l->nonCoherentAtomSize;
  info->max_shared_memory = l->maxComputeSharedMemorySize;
  memcpy (info->max_workgroup_count, l->maxComputeWorkGroupCount, sizeof info->max_workgroup_count);
  info->max_workgroup_invocations = l->maxComputeWorkGroupInvocations;
  info->max_push_constants = l->maxPushConstantsSize;
  info->max_allocation = G_MAXUINT32;   /* a safe guess below 1.1 */

  if (props.apiVersion < VK_API_VERSION_1_2) {
    g_snprintf (info->reason, sizeof info->reason, "Vulkan %u.%u (1.2 needed)", VK_API_VERSION_MAJOR (props.apiVersion),
                VK_API_VERSION_MINOR (props.apiVersion));
    return;
  }
  VkPhysicalDeviceVulkan11Properties p11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES };
  VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &p11 };
  vkGetPhysicalDeviceProperties2 (phys, &p2);
  info->subgroup_size = p11.subgroupSize;
  info->max_allocation = p11.maxMemoryAllocationSize;

  VkPhysicalDeviceVulkan12Features f12 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES };
  VkPhysicalDeviceVulkan11Features f11 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .pNext = &f12 };
  VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11 };
  vkGetPhysicalDeviceFeatures2 (phys, &f2);
  info->storage16 = f11.storageBuffer16BitAccess;
  info->fp16_math = f12.shaderFloat16;
  info->int8_math = f12.shaderInt8;
  info->storage8 = f12.storageBuffer8BitAccess;
  info->coopmat_khr = has_device_extension (phys, EASEL_VK_KHR_COOPERATIVE_MATRIX_NAME);
  info->coopmat_nv = has_device_extension (phys, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
  if (info->coopmat_khr)
    read_coopmat_khr (instance, phys, info);
  if (info->coopmat_nv)
    read_coopmat_nv (instance, phys, info);

  if (compute_queue_family (phys) < 0)
    g_strlcpy (info->reason, "no compute queue", sizeof info->reason);
  else if (info->device_local_bytes < MIN_DEVICE_MEMORY)
    g_snprintf (info->reason, sizeof info->reason, "%" G_GUINT64_FORMAT " MiB of device memory (%" G_GUINT64_FORMAT " needed)",
                info->device_local_bytes >> 20, MIN_DEVICE_MEMORY >> 20);
  else if (info->max_workgroup_invocations < 256 || info->max_push_constants < EASEL_VK_PUSH_MAX)
    g_strlcpy (info->reason, "workgroups of 256 or 128 bytes of push constants not supported", sizeof info->reason);
  else if (l->maxPerStageDescriptorStorageBuffers < EASEL_VK_MAX_BINDINGS)  /* 4 is the spec's minimum */
    g_snprintf (info->reason, sizeof info->reason, "%u storage buffers per shader (%u needed)",
                l->maxPerStageDescriptorStorageBuffers, EASEL_VK_MAX_BINDINGS);
  else
    info->usable = TRUE;
}

static VkPhysicalDevice *
enumerate (VkInstance instance, guint32 *n, GError **error)
{
  g_autofree VkPhysicalDevice *phys = NULL;
  *n = 0;
  VK_TRY (vkEnumeratePhysicalDevices (instance, n, NULL));
  phys = g_new0 (VkPhysicalDevice, MAX (*n, 1));
  VK_TRY (vkEnumeratePhysicalDevices (instance, n, phys));
  return g_steal_pointer (&phys);
out:
  return NULL;
}

static gint pick (const EaselVulkanDeviceInfo *infos, guint n, const char *name, GError **error);

GArray *
easel_vulkan_list_devices (GError **error)
{
  VkInstance instance = VK_NULL_HANDLE;
  guint32 n = 0;
  if (!create_instance (NULL, &instance, error))
    return NULL;
  g_autofree VkPhysicalDevice *phys = enumerate (instance, &n, error);
  GArray *out = NULL;
  if (phys) {
    out = g_array_sized_new (FALSE, TRUE, sizeof (EaselVulkanDeviceInfo), n);
    g_array_set_size (out, n);
    for (guint i = 0; i < n; i++)
      read_info (instance, phys[i], i, &g_array_index (out, EaselVulkanDeviceInfo, i));
    gint chosen = pick ((const EaselVulkanDeviceInfo *) out->data, n, g_getenv ("EASEL_VULKAN_DEVICE"), NULL);
    if (chosen >= 0)
      g_array_index (out, EaselVulkanDeviceInfo, chosen).chosen = TRUE;
  }
  vkDestroyInstance (instance, NULL);
  return out;
}

/* Which cooperative-matrix variants a device runs: "khr" (VK_KHR_cooperative_matrix, 16x8x16 in
 * subgroups of 32), "nv" (VK_NV_cooperative_matrix, the same), "khr8" (KHR at 8x8x8 in subgroups of
 * 8: lavapipe, when built with -Dglslc_khr), or NULL (the scalar matmul). KHR first; only shapes the
 * variants are compiled for and variants built in count; $EASEL_VULKAN_COOPMAT=off|khr|nv narrows
 * the choice (for comparisons). */
static const char *
choose_coopmat (const EaselVulkanDeviceInfo *info)
{
  const char *want = g_getenv ("EASEL_VULKAN_COOPMAT");
  gboolean khr = want == NULL || *want == '\0' || strcmp (want, "khr") == 0;
  gboolean nv = want == NULL || *want == '\0' || strcmp (want, "nv") == 0;
  if (!info->storage16 || !info->fp16_math || env_true ("EASEL_VULKAN_F32_WEIGHTS"))
    return NULL;
  if (khr && info->coopmat_khr && info->subgroup_size == 32 && easel_vulkan_has_coopmat (info, TRUE, 16, 8, 16)
      && easel_vk_spv_built_in ("linear_coop_khr"))
    return "khr";
  if (nv && info->coopmat_nv && info->subgroup_size == 32 && easel_vulkan_has_coopmat (info, FALSE, 16, 8, 16)
      && easel_vk_spv_built_in ("linear_coop"))
    return "nv";
  if (khr && info->coopmat_khr && info->subgroup_size == 8 && easel_vulkan_has_coopmat (info, TRUE, 8, 8, 8)
      && easel_vk_spv_built_in ("linear_coop_khr8"))
    return "khr8";
  return NULL;
}

char **
easel_vulkan_active_variants (const EaselVulkanDeviceInfo *info)
{
  const char *coop = choose_coopmat (info);
  GPtrArray *names = g_ptr_array_new ();
  gboolean f16 = info->storage16 && !env_true ("EASEL_VULKAN_F32_WEIGHTS");
  for (int id = 0; id < EASEL_VK_N_PIPELINES; id++) {
    const char *name = easel_vk_pipeline_name (id);
    gboolean is16 = g_str_has_suffix (name, "_f16"), is32 = g_str_has_suffix (name, "_f32");
    if ((is16 && !f16) || (is32 && f16))
      continue;
    if (strstr (name, "_coop")) {
      if (coop != NULL)
        g_ptr_array_add (names, g_strdup_printf ("%s_%s", name, coop));
      continue;
    }
    g_ptr_array_add (names, g_strdup (name));
  }
  g_ptr_array_add (names, NULL);
  return (char **) g_ptr_array_free (names, FALSE);
}

/* Which device `name` means among n; -1 with an error when none. */
static gint
pick (const EaselVulkanDeviceInfo *infos, guint n, const char *name, GError **error)
{
  if (name && *name) {
    char *end = NULL;
    guint64 idx = g_ascii_strtoull (name, &end, 10);
    gint found = -1;
    if (end && *end == '\0' && end != name) {
      if (idx < n)
        found = (gint) idx;
    } else {
      g_autofree char *want = g_utf8_casefold (name, -1);
      for (guint i = 0; i < n && found < 0; i++) {
        g_autofree char *have = g_utf8_casefold (infos[i].name, -1);
        if (strstr (have, want))
          found = (gint) i;
      }
    }
    if (found < 0) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_NOT_FOUND, "vulkan: no device '%s' among %u (see easel-cli devices)", name, n);
      return -1;
    }
    if (!infos[found].usable) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "vulkan: device %u '%s' is not usable: %s", found,
                   infos[found].name, infos[found].reason);
      return -1;
    }
    return found;
  }
  /* the first usable GPU; a CPU implementation (lavapipe) only when there is none */
  for (int pass = 0; pass < 2; pass++)
    for (guint i = 0; i < n; i++)
      if (infos[i].usable && (pass == 1 || strcmp (infos[i].type, "CPU") != 0))
        return (gint) i;
  if (n == 0)
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "vulkan: no Vulkan device");
  else
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "vulkan: no usable device (%s: %s)", infos[0].name,
                 infos[0].reason);
  return -1;
}

void
easel_vk_name (EaselVkDevice *dev, VkObjectType type, guint64 handle, const char *name)
{
  if (dev->set_name == NULL || name == NULL || handle == 0)
    return;
  const VkDebugUtilsObjectNameInfoEXT ni = {
    .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_OBJECT_NAME_INFO_EXT, .objectType = type, .objectHandle = handle,
    .pObjectName = name,
  };
  dev->set_name (dev->device, &ni);
}

static void device_destroy (EaselVkDevice *dev);

static EaselVkDevice *
device_create (const char *name, GError **error)
{
  EaselVkDevice *dev = g_new0 (EaselVkDevice, 1);
  g_autofree VkPhysicalDevice *phys = NULL;
  g_autofree EaselVulkanDeviceInfo *infos = NULL;
  guint32 n = 0;

  if (name == NULL)
    name = g_getenv ("EASEL_VULKAN_DEVICE");
  if (!create_instance (dev, &dev->instance, error))
    goto fail;
  phys = enumerate (dev->instance, &n, error);
  if (phys == NULL)
    goto fail;
  infos = g_new0 (EaselVulkanDeviceInfo, MAX (n, 1));
  for (guint i = 0; i < n; i++)
    read_info (dev->instance, phys[i], i, &infos[i]);
  gint chosen = pick (infos, n, name, error);
  if (chosen < 0)
    goto fail;
  dev->phys = phys[chosen];
  dev->info = infos[chosen];
  /* a testing knob: a smaller binding limit, so that small graphs exercise sub-range bindings */
  const char *max_binding = g_getenv ("EASEL_VULKAN_MAX_BINDING");
  if (max_binding && g_ascii_strtoull (max_binding, NULL, 10) >= 256)
    dev->info.max_storage_buffer_range = MIN (dev->info.max_storage_buffer_range, g_ascii_strtoull (max_binding, NULL, 10));
  dev->queue_family = (guint32) compute_queue_family (dev->phys);
  dev->weights_f16 = dev->info.storage16 && !env_true ("EASEL_VULKAN_F32_WEIGHTS");
  vkGetPhysicalDeviceMemoryProperties (dev->phys, &dev->mem);

  const float prio = 1.0f;
  const VkDeviceQueueCreateInfo qi = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO, .queueFamilyIndex = dev->queue_family, .queueCount = 1,
    .pQueuePriorities = &prio,
  };
  dev->coopmat = dev->weights_f16 ? choose_coopmat (&dev->info) : NULL;
  gboolean khr = dev->coopmat && g_str_has_prefix (dev->coopmat, "khr");
  EaselVkCooperativeMatrixFeaturesKHR coop_khr = {
    .sType = EASEL_VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_FEATURES_KHR, .cooperativeMatrix = VK_TRUE,
  };
  VkPhysicalDeviceCooperativeMatrixFeaturesNV coop_nv = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV, .cooperativeMatrix = VK_TRUE,
  };
  VkPhysicalDeviceVulkan12Features f12 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES, .shaderFloat16 = dev->coopmat != NULL,
    .pNext = dev->coopmat == NULL ? NULL : khr ? (void *) &coop_khr : (void *) &coop_nv,
  };
  VkPhysicalDeviceVulkan11Features f11 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES, .storageBuffer16BitAccess = dev->weights_f16,
    .pNext = &f12,
  };
  const char *ext = khr ? EASEL_VK_KHR_COOPERATIVE_MATRIX_NAME : VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
  const VkDeviceCreateInfo di = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .pNext = &f11, .queueCreateInfoCount = 1, .pQueueCreateInfos = &qi,
    .enabledExtensionCount = dev->coopmat ? 1 : 0, .ppEnabledExtensionNames = &ext,
  };
  VK_TRY (vkCreateDevice (dev->phys, &di, NULL, &dev->device));
  vkGetDeviceQueue (dev->device, dev->queue_family, 0, &dev->queue);
  return dev;
out:
fail:
  device_destroy (dev);
  return NULL;
}

static GMutex registry_lock;
static GHashTable *registry;   /* selection ("" = default) -> EaselVkDevice*, one reference each */

EaselVkDevice *
easel_vk_device_new (const char *name, GError **error)
{
  const char *want = name ? name : g_getenv ("EASEL_VULKAN_DEVICE");
  /* the settings read when a device is made are part of what is shared */
  const char *binding = g_getenv ("EASEL_VULKAN_MAX_BINDING"), *coop = g_getenv ("EASEL_VULKAN_COOPMAT");
  g_autofree char *key = g_strdup_printf ("%s|%d|%d|%s|%s", want ? want : "", env_true ("EASEL_VULKAN_VALIDATION"),
                                          env_true ("EASEL_VULKAN_F32_WEIGHTS"), binding ? binding : "", coop ? coop : "");
  EaselVkDevice *dev;

  g_mutex_lock (&registry_lock);
  if (registry == NULL)
    registry = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  dev = g_hash_table_lookup (registry, key);
  if (dev != NULL) {
    g_atomic_ref_count_inc (&dev->ref);
  } else if ((dev = device_create (name, error)) != NULL) {
    g_atomic_ref_count_init (&dev->ref);
    g_atomic_ref_count_inc (&dev->ref);    /* the registry's */
    g_mutex_init (&dev->queue_lock);
    g_hash_table_insert (registry, g_steal_pointer (&key), dev);
  }
  g_mutex_unlock (&registry_lock);
  return dev;
}

void
easel_vk_device_free (EaselVkDevice *dev)
{
  if (dev != NULL && g_atomic_ref_count_dec (&dev->ref))
    device_destroy (dev);   /* only a device the registry does not hold */
}

static void
device_destroy (EaselVkDevice *dev)
{
  if (dev == NULL)
    return;
  if (dev->device)
    vkDestroyDevice (dev->device, NULL);
  if (dev->messenger) {
    PFN_vkDestroyDebugUtilsMessengerEXT destroy =
      (PFN_vkDestroyDebugUtilsMessengerEXT) vkGetInstanceProcAddr (dev->instance, "vkDestroyDebugUtilsMessengerEXT");
    if (destroy)
      destroy (dev->instance, dev->messenger, NULL);
  }
  if (dev->instance)
    vkDestroyInstance (dev->instance, NULL);
  g_free (dev);
}
