/* engine/vulkan/cmd.c: recording (STYLE.md V4, V6). A graph's dispatches go into one command buffer
 * that is submitted once, with one fence; nothing waits per op. Between dispatches a compute ->
 * compute memory barrier is recorded only where data flows: when a dispatch reads or writes a range
 * written since the last barrier, or writes a range read since then (the arena reuses storage, so
 * write-after-read matters too). Descriptor sets come from pools that are reset at each begin,
 * so they never grow beyond the largest graph. A recording kept for replay (replay.c) brings its
 * own command buffer and pools (easel_vk_cmd_retarget), is recorded without ONE_TIME_SUBMIT and is
 * submitted again as it is (easel_vk_cmd_resubmit). The dispatch helper checks its arguments against
 * the pipeline and the device's group-count limits. Profiling ($EASEL_PROFILE, vk.h): timestamp
 * queries around every dispatch, read after the fence (the functions under "profiling" below). */
#include <stdio.h>
#include <string.h>

#include "engine/error.h"
#include "engine/vulkan/vk.h"

#define SETS_PER_POOL 256

typedef struct {
  VkBuffer buffer;
  VkDeviceSize offset, size;
} Range;

static gboolean prof_active (const EaselVkCmd *c);
static gboolean prof_begin (EaselVkDevice *dev, EaselVkCmd *c, GError **error);
static gboolean prof_stamp (EaselVkDevice *dev, EaselVkCmd *c, GError **error);
static void     prof_collect (EaselVkDevice *dev, EaselVkCmd *c);
static void     prof_free (EaselVkDevice *dev, EaselVkProfiler *prof);

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
  if (c->pending && vkWaitForFences (dev->device, 1, &c->fence, VK_TRUE, UINT64_MAX) == VK_SUCCESS)
    prof_collect (dev, c);             /* the last submission's timestamps still count */
  prof_free (dev, c->prof);
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
  prof_collect (dev, c);
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
  return prof_begin (dev, c, error);
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
  if (hazard || prof_active (c))       /* profiling: one dispatch at a time, each timed alone */
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
  return prof_stamp (dev, c, error);
}

/* --- profiling --------------------------------------------------------------------------------- */

#define QUERIES_PER_POOL 2048

/* Query 0 of a recording is written right after vkBeginCommandBuffer, query q >= 1 after dispatch
 * q - 1 (BOTTOM_OF_PIPE: when every earlier command has finished), and a barrier precedes every
 * dispatch: query q - query q-1 is dispatch q-1's time, its barrier included. */
struct _EaselVkProfiler {
  EaselProfile *profile;                 /* a reference; NULL: off (the pools are kept) */
  gboolean supported;                    /* the queue family writes timestamps */
  double ns_per_tick;                    /* timestampPeriod */
  guint64 mask;                          /* timestampValidBits */
  GArray *pools;                         /* VkQueryPool, QUERIES_PER_POOL queries each */
  gboolean recorded;                     /* the current command buffer writes the queries */
  guint n_queries;                       /* that it writes */
  GArray *nodes;                         /* EaselProfileNode, in recording order */
  GArray *query_node;                    /* gint per query: the node whose dispatch query q ends, -1: none */
  gint current;                          /* the node of the next dispatches; -1: none named */
};

static gboolean
prof_active (const EaselVkCmd *c)
{
  return c->prof && c->prof->profile && c->prof->supported && c->recording;
}

static void
prof_free (EaselVkDevice *dev, EaselVkProfiler *prof)
{
  if (prof == NULL)
    return;
  for (guint i = 0; i < prof->pools->len; i++)
    vkDestroyQueryPool (dev->device, g_array_index (prof->pools, VkQueryPool, i), NULL);
  g_array_unref (prof->pools);
  g_array_unref (prof->nodes);
  g_array_unref (prof->query_node);
  easel_profile_free (prof->profile);
  g_free (prof);
}

void
easel_vk_cmd_set_profile (EaselVkDevice *dev, EaselVkCmd *c, EaselProfile *profile)
{
  if (c->prof == NULL && profile == NULL)
    return;
  if (c->prof == NULL) {
    EaselVkProfiler *p = c->prof = g_new0 (EaselVkProfiler, 1);
    p->pools = g_array_new (FALSE, FALSE, sizeof (VkQueryPool));
    p->nodes = g_array_new (FALSE, FALSE, sizeof (EaselProfileNode));
    p->query_node = g_array_new (FALSE, FALSE, sizeof (gint));
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties (dev->phys, &props);
    guint32 n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties (dev->phys, &n, NULL);
    g_autofree VkQueueFamilyProperties *q = g_new0 (VkQueueFamilyProperties, MAX (n, 1));
    vkGetPhysicalDeviceQueueFamilyProperties (dev->phys, &n, q);
    guint32 bits = dev->queue_family < n ? q[dev->queue_family].timestampValidBits : 0;
    p->supported = bits > 0 && props.limits.timestampPeriod > 0;
    p->ns_per_tick = props.limits.timestampPeriod;
    p->mask = bits >= 64 ? G_MAXUINT64 : ((guint64) 1 << bits) - 1;
    static gsize warned = 0;
    if (!p->supported && g_once_init_enter (&warned)) {
      fprintf (stderr, "vulkan: %s writes no timestamps on its compute queue (timestampValidBits %u, "
               "timestampComputeAndGraphics %u): EASEL_PROFILE has no GPU times\n", dev->info.name, bits,
               props.limits.timestampComputeAndGraphics);
      g_once_init_leave (&warned, 1);
    }
  }
  if (profile != c->prof->profile) {
    easel_profile_free (c->prof->profile);
    c->prof->profile = profile ? easel_profile_ref (profile) : NULL;
  }
}

void
easel_vk_cmd_profile_node (EaselVkCmd *c, const EaselTensor *t)
{
  if (!prof_active (c) || !c->prof->recorded)
    return;
  EaselProfileNode n;
  easel_profile_node_init (&n, t);
  g_array_append_val (c->prof->nodes, n);
  c->prof->current = (gint) c->prof->nodes->len - 1;
}

/* the next query of the recording, in a new pool (reset in the command buffer) when the others are full */
static gboolean
prof_write (EaselVkDevice *dev, EaselVkCmd *c, GError **error)
{
  EaselVkProfiler *p = c->prof;
  guint pool = p->n_queries / QUERIES_PER_POOL;
  if (pool == p->pools->len) {
    VkQueryPool qp;
    const VkQueryPoolCreateInfo qi = {
      .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO, .queryType = VK_QUERY_TYPE_TIMESTAMP,
      .queryCount = QUERIES_PER_POOL,
    };
    VK_TRY (vkCreateQueryPool (dev->device, &qi, NULL, &qp));
    g_array_append_val (p->pools, qp);
    vkCmdResetQueryPool (c->buf, qp, 0, QUERIES_PER_POOL);
  }
  vkCmdWriteTimestamp (c->buf, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, g_array_index (p->pools, VkQueryPool, pool),
                       p->n_queries % QUERIES_PER_POOL);
  gint node = p->n_queries == 0 ? -1 : p->current;
  g_array_append_val (p->query_node, node);
  p->n_queries++;
  return TRUE;
out:
  return FALSE;
}

static gboolean
prof_begin (EaselVkDevice *dev, EaselVkCmd *c, GError **error)
{
  EaselVkProfiler *p = c->prof;
  if (p == NULL)
    return TRUE;
  p->recorded = prof_active (c);
  p->n_queries = 0;
  p->current = -1;
  g_array_set_size (p->nodes, 0);
  g_array_set_size (p->query_node, 0);
  if (!p->recorded)
    return TRUE;
  for (guint i = 0; i < p->pools->len; i++)
    vkCmdResetQueryPool (c->buf, g_array_index (p->pools, VkQueryPool, i), 0, QUERIES_PER_POOL);
  return prof_write (dev, c, error);
}

static gboolean
prof_stamp (EaselVkDevice *dev, EaselVkCmd *c, GError **error)
{
  if (!prof_active (c) || !c->prof->recorded)
    return TRUE;
  return prof_write (dev, c, error);
}

/* after the fence: every node's summed dispatch times into the profile */
static void
prof_collect (EaselVkDevice *dev, EaselVkCmd *c)
{
  EaselVkProfiler *p = c->prof;
  if (p == NULL || !p->recorded || p->profile == NULL || p->n_queries < 2)
    return;
  g_autofree guint64 *ticks = g_new (guint64, p->n_queries);
  for (guint done = 0, pool = 0; done < p->n_queries; done += QUERIES_PER_POOL, pool++) {
    guint n = MIN (QUERIES_PER_POOL, p->n_queries - done);
    VkResult r = vkGetQueryPoolResults (dev->device, g_array_index (p->pools, VkQueryPool, pool), 0, n,
                                        n * sizeof (guint64), ticks + done, sizeof (guint64),
                                        VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r != VK_SUCCESS) {
      fprintf (stderr, "vulkan: reading timestamps: %s; this submission is left out of the profile\n",
               easel_vk_result_name (r));
      return;
    }
  }
  g_autofree double *seconds = g_new0 (double, p->nodes->len + 1);
  g_autofree guint *dispatches = g_new0 (guint, p->nodes->len + 1);
  for (guint q = 1; q < p->n_queries; q++) {
    gint node = g_array_index (p->query_node, gint, q);
    if (node < 0)
      continue;                        /* a dispatch recorded outside any named node */
    seconds[node] += (double) ((ticks[q] - ticks[q - 1]) & p->mask) * p->ns_per_tick * 1e-9;
    dispatches[node]++;
  }
  for (guint i = 0; i < p->nodes->len; i++)
    if (dispatches[i] > 0)             /* views and no-op nodes ran nothing on the GPU */
      easel_profile_add (p->profile, &g_array_index (p->nodes, EaselProfileNode, i), seconds[i]);
}
