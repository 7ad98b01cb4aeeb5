/* engine/vulkan/memory.c: buffers and their memory (STYLE.md V5). One VkDeviceMemory per buffer and
 * few buffers: weights go into large device-local slabs suballocated in order (a device may allow
 * only 4096 allocations), activations into one arena buffer, host transfers through a host-visible
 * staging buffer (uploads) and a readback buffer. Host-visible buffers stay mapped; when their
 * memory is not coherent, writes are flushed before the GPU reads and reads invalidated after.
 * A backend's buffers are counted in its EaselVkBudget (bytes held, peak, limit). */
#include <string.h>

#include "engine/error.h"
#include "engine/vulkan/vk.h"

/* Weight slices start at this alignment (above every minStorageBufferOffsetAlignment in practice;
 * the binding code aligns down to the device's own value anyway). */
#define SLICE_ALIGN 256

static gint
find_memory_type (EaselVkDevice *dev, guint32 type_bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags prefer)
{
  for (int pass = 0; pass < 2; pass++)
    for (guint i = 0; i < dev->mem.memoryTypeCount; i++) {
      VkMemoryPropertyFlags f = dev->mem.memoryTypes[i].propertyFlags;
      VkMemoryPropertyFlags need = pass == 0 ? want | prefer : want;
      if ((type_bits & (1u << i)) && (f & need) == need)
        return (gint) i;
    }
  return -1;
}

static gint fail_allocations;   /* easel_vk_debug_fail_allocations */

void
easel_vk_debug_fail_allocations (guint n)
{
  g_atomic_int_set (&fail_allocations, (gint) n);
}

/* vkAllocateMemory, or the failure a test asked for */
static VkResult
allocate_memory (EaselVkDevice *dev, const VkMemoryAllocateInfo *ai, VkDeviceMemory *memory)
{
  gint left = g_atomic_int_get (&fail_allocations);
  while (left > 0 && !g_atomic_int_compare_and_exchange (&fail_allocations, left, left - 1))
    left = g_atomic_int_get (&fail_allocations);
  if (left > 0)
    return VK_ERROR_OUT_OF_DEVICE_MEMORY;
  return vkAllocateMemory (dev->device, ai, NULL, memory);
}

gboolean
easel_vk_buffer_init (EaselVkDevice *dev, EaselVkBuffer *b, VkDeviceSize size, EaselVkMemoryKind kind,
                      const char *name, GError **error)
{
  return easel_vk_buffer_init_counted (dev, NULL, b, size, kind, name, error);
}

gboolean
easel_vk_buffer_init_counted (EaselVkDevice *dev, EaselVkBudget *budget, EaselVkBuffer *b, VkDeviceSize size,
                              EaselVkMemoryKind kind, const char *name, GError **error)
{
  VkMemoryRequirements req;
  VkMemoryPropertyFlags want, prefer;
  VkBufferUsageFlags usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;

  memset (b, 0, sizeof *b);
  if (size > dev->info.max_allocation) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY,
                 "vulkan: %s of %" G_GUINT64_FORMAT " MiB exceeds the device's largest allocation (%" G_GUINT64_FORMAT " MiB)",
                 name, (guint64) size >> 20, dev->info.max_allocation >> 20);
    return FALSE;
  }
  switch (kind) {
  case EASEL_VK_DEVICE_LOCAL:
    want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
    prefer = 0;
    usage |= VK_BUFFER_USAGE_STORAGE_BUFFER_BIT;
    break;
  case EASEL_VK_UPLOAD:
    want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    prefer = VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    break;
  case EASEL_VK_READBACK:
  default:
    want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    prefer = VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
    break;
  }
  const VkBufferCreateInfo bi = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = MAX (size, 16), .usage = usage,
    .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
  };
  VK_TRY (vkCreateBuffer (dev->device, &bi, NULL, &b->buffer));
  vkGetBufferMemoryRequirements (dev->device, b->buffer, &req);
  gint type = find_memory_type (dev, req.memoryTypeBits, want, prefer);
  if (type < 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "vulkan: no memory type for %s", name);
    goto fail;
  }
  if (budget && budget->limit && budget->held + req.size > budget->limit) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY,
                 "vulkan: %s of %.1f MiB would bring the device memory held to %.1f MiB, over the limit of %.1f MiB",
                 name, req.size / 1048576.0, (budget->held + req.size) / 1048576.0, budget->limit / 1048576.0);
    vkDestroyBuffer (dev->device, b->buffer, NULL);
    memset (b, 0, sizeof *b);
    return FALSE;
  }
  const VkMemoryAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size, .memoryTypeIndex = (guint32) type,
  };
  VkResult allocated = allocate_memory (dev, &ai, &b->memory);
  if (allocated != VK_SUCCESS) {
    easel_vk_set_error (error, allocated, "vkAllocateMemory", G_STRFUNC);
    goto fail;
  }
  if (budget) {
    b->budget = budget;
    b->counted = req.size;
    budget->held += req.size;
    budget->peak = MAX (budget->peak, budget->held);
  }
  VK_TRY (vkBindBufferMemory (dev->device, b->buffer, b->memory, 0));
  b->size = size;
  b->coherent = (dev->mem.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) != 0;
  if (kind != EASEL_VK_DEVICE_LOCAL)
    VK_TRY (vkMapMemory (dev->device, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped));
  easel_vk_name (dev, VK_OBJECT_TYPE_BUFFER, (guint64) (guintptr) b->buffer, name);
  return TRUE;
out:
fail:
  if (error && *error && (*error)->code == EASEL_ERROR_OUT_OF_MEMORY)
    g_prefix_error (error, "%s: out of device memory for %s (%.1f MiB): ", dev->info.name, name, size / 1048576.0);
  easel_vk_buffer_clear (dev, b);
  return FALSE;
}

void
easel_vk_buffer_clear (EaselVkDevice *dev, EaselVkBuffer *b)
{
  if (b->mapped)
    vkUnmapMemory (dev->device, b->memory);
  if (b->buffer)
    vkDestroyBuffer (dev->device, b->buffer, NULL);
  if (b->memory)
    vkFreeMemory (dev->device, b->memory, NULL);
  if (b->budget)
    b->budget->held -= b->counted;
  memset (b, 0, sizeof *b);
}

gboolean
easel_vk_buffer_flush (EaselVkDevice *dev, EaselVkBuffer *b, GError **error)
{
  if (b->coherent)
    return TRUE;
  const VkMappedMemoryRange r = { .sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, .memory = b->memory, .size = VK_WHOLE_SIZE };
  VK_TRY (vkFlushMappedMemoryRanges (dev->device, 1, &r));
  return TRUE;
out:
  return FALSE;
}

gboolean
easel_vk_buffer_invalidate (EaselVkDevice *dev, EaselVkBuffer *b, GError **error)
{
  if (b->coherent)
    return TRUE;
  const VkMappedMemoryRange r = { .sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE, .memory = b->memory, .size = VK_WHOLE_SIZE };
  VK_TRY (vkInvalidateMappedMemoryRanges (dev->device, 1, &r));
  return TRUE;
out:
  return FALSE;
}

/* --- weight slabs ------------------------------------------------------------------------------ */

static void
free_slab (gpointer p)
{
  g_free (p);   /* the Vulkan objects are released by the callers, which have the device */
}

void
easel_vk_slabs_init (EaselVkSlabs *s, VkDeviceSize slab_size, EaselVkBudget *budget)
{
  s->slabs = g_ptr_array_new_with_free_func (free_slab);
  s->open = NULL;
  s->top = 0;
  s->slab_size = slab_size;
  s->budget = budget;
}

void
easel_vk_slabs_clear (EaselVkDevice *dev, EaselVkSlabs *s)
{
  if (s->slabs == NULL)
    return;
  for (guint i = 0; i < s->slabs->len; i++)
    easel_vk_buffer_clear (dev, &((EaselVkSlab *) s->slabs->pdata[i])->buf);
  g_ptr_array_unref (s->slabs);
  s->slabs = NULL;
  s->open = NULL;
}

VkDeviceSize
easel_vk_slab_footprint (VkDeviceSize size)
{
  return (size + SLICE_ALIGN - 1) / SLICE_ALIGN * SLICE_ALIGN;
}

gboolean
easel_vk_slabs_alloc (EaselVkDevice *dev, EaselVkSlabs *s, VkDeviceSize size, VkDeviceSize batch_left,
                      EaselVkSlice *out, EaselVkSlab **slab, GError **error)
{
  VkDeviceSize off = easel_vk_slab_footprint (s->top);
  if (s->open == NULL || off + size > s->open->buf.size) {
    /* a new slab: what is left of the batch, up to slab_size; a tensor larger than that gets one of
     * its own size */
    VkDeviceSize want = MAX (size, MIN (s->slab_size, easel_vk_slab_footprint (batch_left)));
    if (want > dev->info.max_allocation)
      want = MAX (size, dev->info.max_allocation);
    EaselVkSlab *sl = g_new0 (EaselVkSlab, 1);
    g_autofree char *name = g_strdup_printf ("easel weights slab %u", s->slabs->len);
    if (!easel_vk_buffer_init_counted (dev, s->budget, &sl->buf, want, EASEL_VK_DEVICE_LOCAL, name, error)) {
      g_free (sl);
      return FALSE;
    }
    g_ptr_array_add (s->slabs, sl);
    s->open = sl;
    off = 0;
  }
  out->buf = &s->open->buf;
  out->offset = off;
  out->size = size;
  s->top = off + size;
  s->open->live++;
  *slab = s->open;
  return TRUE;
}

void
easel_vk_slabs_seal (EaselVkSlabs *s)
{
  s->open = NULL;
  s->top = 0;
}

void
easel_vk_slab_release (EaselVkSlab *slab)
{
  g_return_if_fail (slab->live > 0);
  slab->live--;
}

guint
easel_vk_slabs_collect (EaselVkDevice *dev, EaselVkSlabs *s)
{
  guint freed = 0;
  for (guint i = s->slabs->len; i-- > 0;) {
    EaselVkSlab *sl = s->slabs->pdata[i];
    if (sl->live > 0)
      continue;
    if (sl == s->open)
      easel_vk_slabs_seal (s);
    easel_vk_buffer_clear (dev, &sl->buf);
    g_ptr_array_remove_index (s->slabs, i);
    freed++;
  }
  return freed;
}
