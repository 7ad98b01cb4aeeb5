/* engine/vulkan/cmd.c: recording (STYLE.md V4, V6). A graph's dispatches go into one command buffer
 * that is submitted once, with one fence; nothing waits per op. Between dispatches a compute ->
 * compute memory barrier is recorded only where data flows: when a dispatch reads or writes a range
 * written since the last barrier, or writes a range read since then (the arena reuses storage, so
 * write-after-read matters too). Descriptor sets come from pools that are reset at each begin,
 * so they never grow beyond the largest graph. A recording kept for replay (replay.c) brings its
 * own command buffer and pools (easel_vk_cmd_retarget), is recorded without ONE_TIME_SUBMIT and is
 * submitted again as it is (easel_vk_cmd_resubmit). The dispatch helper checks its arguments against
 * the pipeline and the device's group-count limits. */
#include <string.h>

#include "engine/error.h"
#include "engine/vulkan/vk.h"

#define SETS_PER_POOL 256

typedef struct {
  VkBuffer buffer;
  VkDeviceSize offset, size;
} Range;

gboolean
easel_vk_cmd_init (EaselVkDevice *dev, EaselVkCmd *c, GError **error)
{
  memset (c, 0, sizeof *c);
  c->desc_pools = g_array_new (FALSE, FALSE, sizeof (VkDescriptorPool));
  c->written = g_array_new (FALSE, FALSE, sizeof (Range));
  c->read = g_array_new (FALSE, FALSE, sizeof (Range));
  const VkCommandPoolCreateInfo pi = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO, .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
    .queueFamilyIndex = dev->queue_family,
  };
  VK_TRY (vkCreateCommandPool (dev->device, &pi, NULL, &c->pool));
  const VkCommandBufferAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = c->pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1,
  };
  VK_TRY (vkAllocateCommandBuffers (dev->device, &ai, &c->buf));
  const VkFenceCreateInfo fi = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  VK_TRY (vkCreateFence (dev->device, &fi, NULL, &c->fence));
  return TRUE;
out:
  return FALSE;
}

void
easel_vk_cmd_clear (EaselVkDevice *dev, EaselVkCmd *c)
{
  if (c->pending)
    vkWaitForFences (dev->device, 1, &c->fence, VK_TRUE, UINT64_MAX);
  if (c->desc_pools) {
    for (guint i = 0; i < c->desc_pools->len; i++)
      vkDestroyDescriptorPool (dev->device, g_array_index (c->desc_pools, VkDescriptorPool, i), NULL);
    g_array_unref (c->desc_pools);
  }
  if (c->fence)
    vkDestroyFence (dev->device, c->fence, NULL);
  if (c->pool)
    vkDestroyCommandPool (dev->device, c->pool, NULL);
  if (c->written)
    g_array_unref (c->written);
  if (c->read)
    g_array_unref (c->read);
  memset (c, 0, sizeof *c);
}

gboolean
easel_vk_cmd_wait (EaselVkDevice *dev, EaselVkCmd *c, GError **error)
{
  if (!c->pending)
    return TRUE;
  c->pending = FALSE;   /* a lost device stays lost: do not wait on it twice */
  VK_TRY (vkWaitForFences (dev->device, 1, &c->fence, VK_TRUE, UINT64_MAX));
  VK_TRY (vkResetFences (dev->device, 1, &c->fence));
  return TRUE;
out:
  return FALSE;
}

gboolean
easel_vk_cmd_begin (EaselVkDevice *dev, EaselVkCmd *c, GError **error)
{
  if (!easel_vk_cmd_wait (dev, c, error))
    return FALSE;
  easel_vk_cmd_abandon (c);            /* an earlier recording failed halfway: drop it */
  for (guint i = 0; i < c->desc_pools->len; i++)
    VK_TRY (vkResetDescriptorPool (dev->device, g_array_index (c->desc_pools, VkDescriptorPool, i), 0));
  c->desc_pool_cur = 0;
  c->sets_in_cur = 0;
  g_array_set_size (c->written, 0);
  g_array_set_size (c->read, 0);
  c->n_dispatches = c->n_barriers = 0;
  VK_TRY (vkResetCommandBuffer (c->buf, 0));
  const VkCommandBufferBeginInfo bi = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
    .flags = c->reusable ? 0 : VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
  };
  VK_TRY (vkBeginCommandBuffer (c->buf, &bi));
  c->recording = TRUE;
  return TRUE;
out:
  return FALSE;
}

void
easel_vk_cmd_abandon (EaselVkCmd *c)
{
  if (c->recording)
    vkEndCommandBuffer (c->buf);
  c->recording = FALSE;
}

void
easel_vk_cmd_retarget (EaselVkCmd *c, VkCommandBuffer buf, GArray *desc_pools, gboolean reusable)
{
  g_return_if_fail (!c->pending);
  easel_vk_cmd_abandon (c);
  c->buf = buf;
  c->desc_pools = desc_pools;
  c->desc_pool_cur = c->sets_in_cur = 0;
  c->reusable = reusable;
}

static gboolean
queue_submit (EaselVkDevice *dev, EaselVkCmd *c, GError **error)
{
  const VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &c->buf };
  g_mutex_lock (&dev->queue_lock);
  VkResult submitted = vkQueueSubmit (dev->queue, 1, &si, c->fence);
  g_mutex_unlock (&dev->queue_lock);
  VK_TRY (submitted);
  c->pending = TRUE;
  return TRUE;
out:
  return FALSE;
}

gboolean
easel_vk_cmd_submit (EaselVkDevice *dev, EaselVkCmd *c, GError **error)
{
  g_return_val_if_fail (c->recording, FALSE);
  c->recording = FALSE;
  VK_TRY (vkEndCommandBuffer (c->buf));
  return queue_submit (dev, c, error);
out:
  return FALSE;
}

gboolean
easel_vk_cmd_resubmit (EaselVkDevice *dev, EaselVkCmd *c, GError **error)
{
  g_return_val_if_fail (c->reusable && !c->recording && !c->pending, FALSE);
  return queue_submit (dev, c, error);
}

void
easel_vk_cmd_barrier (EaselVkCmd *c)
{
  const VkMemoryBarrier mb = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
  };
  vkCmdPipelineBarrier (c->buf, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb,
                        0, NULL, 0, NULL);
  g_array_set_size (c->written, 0);
  g_array_set_size (c->read, 0);
  c->n_barriers++;
}

static gboolean
overlaps (GArray *ranges, const Range *r)
{
  for (guint i = 0; i < ranges->len; i++) {
    const Range *o = &g_array_index (ranges, Range, i);
    if (o->buffer == r->buffer && o->offset < r->offset + r->size && r->offset < o->offset + o->size)
      return TRUE;
  }
  return FALSE;
}

static gboolean
alloc_set (EaselVkDevice *dev, EaselVkPipelines *pl, EaselVkCmd *c, VkDescriptorSet *set, GError **error)
{
  if (c->desc_pool_cur < c->desc_pools->len && c->sets_in_cur == SETS_PER_POOL) {
    c->desc_pool_cur++;
    c->sets_in_cur = 0;
  }
  if (c->desc_pool_cur == c->desc_pools->len) {
    VkDescriptorPool pool;
    const VkDescriptorPoolSize ps = { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SETS_PER_POOL * EASEL_VK_MAX_BINDINGS };
    const VkDescriptorPoolCreateInfo pi = {
      .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, .maxSets = SETS_PER_POOL, .poolSizeCount = 1,
      .pPoolSizes = &ps,
    };
    VK_TRY (vkCreateDescriptorPool (dev->device, &pi, NULL, &pool));
    g_array_append_val (c->desc_pools, pool);
    c->sets_in_cur = 0;
  }
  const VkDescriptorSetAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
    .descriptorPool = g_array_index (c->desc_pools, VkDescriptorPool, c->desc_pool_cur), .descriptorSetCount = 1,
    .pSetLayouts = &pl->set_layout,
  };
  VK_TRY (vkAllocateDescriptorSets (dev->device, &ai, set));
  c->sets_in_cur++;
  return TRUE;
out:
  return FALSE;
}

gboolean
easel_vk_dispatch (EaselVkDevice *dev, EaselVkPipelines *pl, EaselVkCmd *c, EaselVkPipelineId id,
                   const EaselVkArg *args, guint n_args, const void *push, gsize push_size,
                   guint64 nx, guint64 ny, guint64 nz, GError **error)
{
  EaselVkPipeline *p = easel_vk_pipeline_get (dev, pl, id, error);
  VkDescriptorBufferInfo bi[EASEL_VK_MAX_BINDINGS];
  VkWriteDescriptorSet w[EASEL_VK_MAX_BINDINGS];
  VkDescriptorSet set;
  const guint32 *maxg = dev->info.max_workgroup_count;

  if (p == NULL)
    return FALSE;
  g_assert (n_args == p->n_buffers && push_size == p->push_size && n_args <= EASEL_VK_MAX_BINDINGS);
  g_assert (c->recording);
  if (nx == 0 || ny == 0 || nz == 0)
    return TRUE;
  guint64 gx = (nx + p->wg[0] - 1) / p->wg[0], gy = (ny + p->wg[1] - 1) / p->wg[1], gz = (nz + p->wg[2] - 1) / p->wg[2];
  if (p->flat && gy == 1 && gz == 1 && gx > maxg[0]) {   /* fold: the shader's flat_index () undoes it */
    gy = (gx + maxg[0] - 1) / maxg[0];
    gx = maxg[0];
  }
  if (gx > maxg[0] || gy > maxg[1] || gz > maxg[2]) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED,
                 "vulkan: %s needs %" G_GUINT64_FORMAT " x %" G_GUINT64_FORMAT " x %" G_GUINT64_FORMAT
                 " workgroups, more than the device's %u x %u x %u", p->name, gx, gy, gz, maxg[0], maxg[1], maxg[2]);
    return FALSE;
  }

  /* a barrier only where this dispatch touches what earlier ones wrote, or writes what they read */
  gboolean hazard = FALSE;
  for (guint i = 0; i < n_args && !hazard; i++) {
    Range r = { args[i].buf->buffer, args[i].offset, args[i].range };
    hazard = overlaps (c->written, &r) || (args[i].write && overlaps (c->read, &r));
  }
  if (hazard)
    easel_vk_cmd_barrier (c);
  for (guint i = 0; i < n_args; i++) {
    Range r = { args[i].buf->buffer, args[i].offset, args[i].range };
    g_array_append_val (args[i].write ? c->written : c->read, r);
  }

  if (!alloc_set (dev, pl, c, &set, error))
    return FALSE;
  for (guint i = 0; i < n_args; i++) {
    bi[i] = (VkDescriptorBufferInfo) { args[i].buf->buffer, args[i].offset, args[i].range };
    w[i] = (VkWriteDescriptorSet) {
      .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = set, .dstBinding = i, .descriptorCount = 1,
      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .pBufferInfo = &bi[i],
    };
  }
  vkUpdateDescriptorSets (dev->device, n_args, w, 0, NULL);
  vkCmdBindPipeline (c->buf, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
  vkCmdBindDescriptorSets (c->buf, VK_PIPELINE_BIND_POINT_COMPUTE, pl->layout, 0, 1, &set, 0, NULL);
  vkCmdPushConstants (c->buf, pl->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, (guint32) push_size, push);
  vkCmdDispatch (c->buf, (guint32) gx, (guint32) gy, (guint32) gz);
  c->n_dispatches++;
  return TRUE;
}
