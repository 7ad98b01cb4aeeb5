/* engine/vulkan/backend-vulkan.c: the Vulkan backend's EaselBackendClass (backend.h), the same
 * interface and op table as the CPU backend.
 *
 * compute: wait for the previous submission, plan the graph (easel_graph_plan: one arena, which
 * is one device buffer), upload new weights (once per data pointer and format: matrix weights of
 * linear/conv2d/get_rows as fp16 where the device stores 16-bit, everything else fp32), upload the
 * inputs, record every node into one command buffer with barriers where data flows, copy the
 * outputs' storage into a host-visible readback buffer at the end, and submit — or, when a kept
 * recording has the graph's key, submit that again without recording (replay.c). read: wait on the
 * fence, invalidate, copy the view out. Activations are fp32.
 *
 * fp16 weights lose nothing: a matrix weight is stored as fp16 only when every value of it is
 * exactly an fp16 value (F16 checkpoints, and F32 files of fp16 models); F32 or BF16 data that is
 * not (LoRA-merged copies, fp32-trained weights, |w| > 65504, which fp16 would make inf) stays fp32
 * on the device, at twice the memory. $EASEL_VULKAN_LOSSY_F16=1 rounds such weights to fp16 anyway
 * (except those that would overflow).
 *
 * Memory (backend.h): every buffer is counted in parent.memory. The weights one compute uploads get
 * slabs of their own (memory.c), stamped with the compute's serial whenever a graph uses them; under
 * a limit, or after the driver says out of memory, the least recently used slabs that the current
 * graph does not use are released whole (their weights are forgotten and uploaded again when a
 * later graph needs them), after the activation and readback buffers have shrunk to the graph's
 * size. */
#include <math.h>
#include <string.h>

#include "engine/error.h"
#include "engine/vulkan/vk.h"

#define STAGING_BYTES ((VkDeviceSize) 32 << 20)
#define SLAB_BYTES ((VkDeviceSize) 256 << 20)
#define ARENA_GRANULE ((VkDeviceSize) 1 << 20)
#define OVERFLOW_SLOT ((VkDeviceSize) 64)

static gboolean
is_weight (const EaselTensor *t)
{
  return (t->base->flags & EASEL_TENSOR_WEIGHT) != 0;
}

/* Whether fp16 storage keeps weight base as it is (lossy: only that nothing overflows). */
static gboolean
fits_f16 (const EaselTensor *base, gboolean lossy)
{
  gint64 n = easel_tensor_numel (base);
  gsize es = easel_dtype_size (base->dtype);
  float buf[1024];
  if (base->dtype == EASEL_DTYPE_F16)
    return TRUE;
  for (gint64 i = 0; i < n; i += G_N_ELEMENTS (buf)) {
    gint64 k = MIN ((gint64) G_N_ELEMENTS (buf), n - i);
    easel_dtype_to_f32 (base->dtype, (const guint8 *) base->data + i * es, buf, k);
    for (gint64 j = 0; j < k; j++) {
      float back = easel_f16_to_f32 (easel_f32_to_f16 (buf[j]));
      if (isnan (buf[j]))
        continue;
      if (lossy ? isinf (back) && !isinf (buf[j]) : back != buf[j])
        return FALSE;
    }
  }
  return TRUE;
}

EaselVkWeightFormat
easel_vk_weight_format (EaselVkBackend *vb, const EaselTensor *t, int s)
{
  const EaselTensor *src = t->src[s];
  gboolean matrix = ((t->op == EASEL_OP_LINEAR || t->op == EASEL_OP_CONV2D) && s == 1)
                    || (t->op == EASEL_OP_GET_ROWS && s == 0);
  if (src == NULL || !is_weight (src) || !matrix || !vb->dev->weights_f16
      || !easel_dtype_info (src->base->dtype)->is_float || src->base->data == NULL)
    return EASEL_VK_WEIGHT_F32;
  gpointer known = g_hash_table_lookup (vb->fits_f16, src->base->data);
  if (known == NULL) {
    known = GINT_TO_POINTER (fits_f16 (src->base, vb->lossy_f16) ? 1 : 2);
    g_hash_table_insert (vb->fits_f16, src->base->data, known);
  }
  return GPOINTER_TO_INT (known) == 1 ? EASEL_VK_WEIGHT_F16 : EASEL_VK_WEIGHT_F32;
}

gboolean
easel_vk_tensor_arg (EaselVkBackend *vb, const EaselTensor *t, EaselVkWeightFormat fmt, gboolean write,
                     EaselVkArg *arg, guint32 *elem_offset, GError **error)
{
  const EaselTensor *base = t->base;
  EaselVkSlice slice;
  VkDeviceSize esize;
  if (is_weight (t)) {
    EaselVkWeight *w = g_hash_table_lookup (vb->weights[fmt], base->data);
    if (w == NULL || w->numel < 0 || write) {   /* uploaded before recording; never written */
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "vulkan: weight '%s' %s", base->name,
                   write ? "is written by an op" : "was not uploaded");
      return FALSE;
    }
    slice = w->slice;
    esize = fmt == EASEL_VK_WEIGHT_F16 ? 2 : 4;
  } else {
    slice = (EaselVkSlice) { &vb->arena, base->arena_offset, easel_tensor_nbytes (base) };
    esize = easel_dtype_size (base->dtype);
  }
  VkDeviceSize align = MAX (vb->dev->info.min_storage_offset_alignment, 4);
  VkDeviceSize start = slice.offset / align * align, delta = slice.offset - start;
  VkDeviceSize range = (delta + slice.size + 3) / 4 * 4;
  if (range > vb->dev->info.max_storage_buffer_range) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED,
                 "vulkan: tensor '%s' (%" G_GUINT64_FORMAT " bytes) is larger than one binding may be on %s "
                 "(maxStorageBufferRange %" G_GUINT64_FORMAT "); splitting it is not implemented",
                 base->name ? base->name : "(activation)", (guint64) slice.size, vb->dev->info.name,
                 vb->dev->info.max_storage_buffer_range);
    return FALSE;
  }
  *arg = (EaselVkArg) { slice.buf, start, range, write };
  *elem_offset = (guint32) (delta / esize + (VkDeviceSize) t->offset);
  return TRUE;
}

/* --- device memory ------------------------------------------------------------------------------ */

static void forget_if_changed (EaselVkBackend *vb, const EaselTensor *base);

void
easel_vk_memory_freed (EaselVkBackend *vb)
{
  vb->memory_epoch++;
  easel_vk_replay_forget_all (vb);     /* recordings bind the freed buffers */
}

static void
weight_free (gpointer p)
{
  EaselVkWeight *w = p;
  if (w->slab)
    easel_vk_slab_release (w->slab);
  g_free (w);
}

/* Bytes a weight of `bytes` takes on the device (4-byte aligned). */
static VkDeviceSize
weight_bytes (gsize bytes)
{
  return MAX ((bytes + 3) / 4 * 4, 4);
}

/* Frees the slabs that no weight is in any more. */
static void
collect_slabs (EaselVkBackend *vb)
{
  if (easel_vk_slabs_collect (vb->dev, &vb->slabs) > 0)
    easel_vk_memory_freed (vb);
}

static gboolean
in_slab (gpointer key, gpointer value, gpointer user_data)
{
  return ((EaselVkWeight *) value)->slab == user_data;
}

static double
mib (VkDeviceSize bytes)
{
  return bytes / 1048576.0;
}

/* Releases the least recently used slab that the current compute (vb->serial) does not use, with
 * every weight in it; FALSE when there is none. */
static gboolean
evict_one (EaselVkBackend *vb)
{
  EaselVkSlab *victim = NULL;
  for (guint i = 0; i < vb->slabs.slabs->len; i++) {
    EaselVkSlab *sl = vb->slabs.slabs->pdata[i];
    if (sl->last_used < vb->serial && (victim == NULL || sl->last_used < victim->last_used))
      victim = sl;
  }
  if (victim == NULL)
    return FALSE;
  guint n = 0;
  VkDeviceSize bytes = victim->buf.counted;
  for (int f = 0; f < 2; f++)
    n += g_hash_table_foreach_remove (vb->weights[f], in_slab, victim);
  g_assert (victim->live == 0);
  g_debug ("vulkan: released %.1f MiB of device memory: %u weights last used %" G_GUINT64_FORMAT
           " computes ago", mib (bytes), n, vb->serial - victim->last_used);
  collect_slabs (vb);
  return TRUE;
}

/* After an allocation failed: when it was for want of memory and something could be released,
 * clears the error and says to try again. */
static gboolean
retry_after_oom (EaselVkBackend *vb, GError **local, GError **error)
{
  if (g_error_matches (*local, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY) && evict_one (vb)) {
    g_clear_error (local);
    return TRUE;
  }
  g_propagate_error (error, g_steal_pointer (local));
  return FALSE;
}

static gboolean
alloc_weight (EaselVkBackend *vb, VkDeviceSize size, EaselVkSlice *slice, EaselVkSlab **slab, GError **error)
{
  VkDeviceSize left = MAX (vb->batch_left, easel_vk_slab_footprint (size));
  for (;;) {
    g_autoptr(GError) local = NULL;
    if (easel_vk_slabs_alloc (vb->dev, &vb->slabs, size, left, slice, slab, &local))
      break;
    if (!retry_after_oom (vb, &local, error))
      return FALSE;
  }
  (*slab)->last_used = vb->serial;
  vb->batch_left = left - easel_vk_slab_footprint (size);
  return TRUE;
}

static VkDeviceSize
granules (VkDeviceSize size)
{
  return MAX ((size + ARENA_GRANULE - 1) / ARENA_GRANULE * ARENA_GRANULE, ARENA_GRANULE);
}

/* b holding at least size bytes (rounded up to ARENA_GRANULE); its old contents are lost. */
static gboolean
ensure_buffer (EaselVkBackend *vb, EaselVkBuffer *b, VkDeviceSize size, EaselVkMemoryKind kind, const char *name,
               GError **error)
{
  if (b->buffer && b->size >= size)
    return TRUE;
  if (b->buffer) {
    easel_vk_buffer_clear (vb->dev, b);
    easel_vk_memory_freed (vb);
  }
  size = granules (size);
  for (;;) {
    g_autoptr(GError) local = NULL;
    if (easel_vk_buffer_init_counted (vb->dev, &vb->parent.memory, b, size, kind, name, &local))
      return TRUE;
    if (!retry_after_oom (vb, &local, error))
      return FALSE;
  }
}

/* Bytes buffer b will hold once ensure_buffer gives it size bytes (shrink: freed first when larger). */
static VkDeviceSize
buffer_after (const EaselVkBuffer *b, VkDeviceSize size, gboolean shrink)
{
  size = granules (size);
  if (b->buffer && b->size >= size && (!shrink || b->size == size))
    return b->counted;
  return size;
}

/* The outputs of g: their offsets in the readback buffer (+ 1) into outputs, the copies into it
 * (when not NULL); returns the readback bytes. */
static VkDeviceSize
plan_readback (EaselGraph *g, GHashTable *outputs, GArray *copies)
{
  VkDeviceSize readback = OVERFLOW_SLOT;           /* [0, 64): the fp16 overflow counter */
  for (guint i = 0; i < easel_graph_n_nodes (g); i++) {
    EaselTensor *t = easel_graph_node (g, i);
    EaselTensor *base = t->base;
    if ((t->flags & EASEL_TENSOR_OUTPUT) && !is_weight (t) && !g_hash_table_contains (outputs, base)) {
      VkBufferCopy c = { base->arena_offset, readback, easel_tensor_nbytes (base) };
      g_hash_table_insert (outputs, base, GSIZE_TO_POINTER (readback + 1));
      if (c.size > 0 && copies)
        g_array_append_val (copies, c);
      readback += (c.size + 63) / 64 * 64;
    }
  }
  return readback;
}

/* Every weight g uses, once per data and format: fn (vb, base, fmt, data). */
typedef void (*WeightFunc) (EaselVkBackend *vb, const EaselTensor *base, EaselVkWeightFormat fmt, gpointer data);

static void
foreach_weight (EaselVkBackend *vb, EaselGraph *g, WeightFunc fn, gpointer data)
{
  g_autoptr(GHashTable) seen_f32 = g_hash_table_new (g_direct_hash, g_direct_equal);
  g_autoptr(GHashTable) seen_f16 = g_hash_table_new (g_direct_hash, g_direct_equal);
  for (guint i = 0; i < easel_graph_n_nodes (g); i++) {
    EaselTensor *t = easel_graph_node (g, i);
    for (int s = 0; s < EASEL_MAX_SRC; s++) {
      const EaselTensor *src = t->src[s];
      if (src == NULL || !is_weight (src) || src->base->data == NULL)
        continue;
      forget_if_changed (vb, src->base);
      EaselVkWeightFormat fmt = easel_vk_weight_format (vb, t, s);
      if (g_hash_table_add (fmt == EASEL_VK_WEIGHT_F16 ? seen_f16 : seen_f32, (gpointer) src->base->data))
        fn (vb, src->base, fmt, data);
    }
  }
}

static gsize
device_bytes (const EaselTensor *base, EaselVkWeightFormat fmt)
{
  return (gsize) easel_tensor_numel (base) * (fmt == EASEL_VK_WEIGHT_F16 ? 2 : 4);
}

/* data: VkDeviceSize sum of the footprints of the weights not on the device; stamps the others */
static void
stamp_or_count (EaselVkBackend *vb, const EaselTensor *base, EaselVkWeightFormat fmt, gpointer data)
{
  EaselVkWeight *w = g_hash_table_lookup (vb->weights[fmt], base->data);
  if (w && w->dtype == base->dtype && w->numel == easel_tensor_numel (base))
    w->slab->last_used = vb->serial;
  else
    *(VkDeviceSize *) data += easel_vk_slab_footprint (weight_bytes (device_bytes (base, fmt)));
}

static void
count_all (EaselVkBackend *vb, const EaselTensor *base, EaselVkWeightFormat fmt, gpointer data)
{
  *(VkDeviceSize *) data += easel_vk_slab_footprint (weight_bytes (device_bytes (base, fmt)));
}

/* Before g runs (no submission pending): stamps the slabs of the weights g uses, and under a limit
 * makes room for g's new weights, an arena of `arena` bytes and a readback of `readback` bytes:
 * the arena and readback shrunk to size first, then the least recently used slabs that g does not
 * use released. Sets batch_left. */
static gboolean
prepare_memory (EaselVkBackend *vb, EaselGraph *g, VkDeviceSize arena, VkDeviceSize readback, GError **error)
{
  EaselBackendMemory *m = &vb->parent.memory;
  VkDeviceSize fresh = 0;
  foreach_weight (vb, g, stamp_or_count, &fresh);
  collect_slabs (vb);                  /* weights whose data changed were forgotten */
  vb->batch_left = fresh;
  gboolean shrink = FALSE;
  for (;;) {
    VkDeviceSize a = buffer_after (&vb->arena, arena, shrink), r = buffer_after (&vb->readback, readback, shrink);
    VkDeviceSize projected = m->held - vb->arena.counted - vb->readback.counted + a + r + fresh;
    if (m->limit == 0 || projected <= m->limit)
      break;
    if (!shrink && (a != buffer_after (&vb->arena, arena, TRUE) || r != buffer_after (&vb->readback, readback, TRUE))) {
      shrink = TRUE;                   /* scratch first: weights would have to be uploaded again */
      continue;
    }
    if (evict_one (vb))
      continue;
    VkDeviceSize fixed = vb->staging.counted + vb->dummy.counted;
    VkDeviceSize weights = m->held - vb->arena.counted - vb->readback.counted - fixed + fresh;
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY,
                 "vulkan: a graph of %u nodes needs %.1f MiB of device memory (weights %.1f MiB, activations %.1f MiB, "
                 "transfer buffers %.1f MiB), more than the limit of %.1f MiB even with every other weight released",
                 easel_graph_n_nodes (g), mib (projected), mib (weights), mib (a), mib (r + fixed), mib (m->limit));
    return FALSE;
  }
  if (shrink) {
    if (vb->arena.buffer && vb->arena.size > granules (arena))
      easel_vk_buffer_clear (vb->dev, &vb->arena);
    if (vb->readback.buffer && vb->readback.size > granules (readback))
      easel_vk_buffer_clear (vb->dev, &vb->readback);
    easel_vk_memory_freed (vb);
  }
  return TRUE;
}

static guint64
vk_graph_memory (EaselBackend *b, EaselGraph *g)
{
  EaselVkBackend *vb = (EaselVkBackend *) b;
  VkDeviceSize weights = 0;
  g_autoptr(GHashTable) outputs = g_hash_table_new (g_direct_hash, g_direct_equal);
  if (easel_graph_error (g) != NULL)
    return 0;
  VkDeviceSize arena = granules (easel_graph_plan (g)), readback = granules (plan_readback (g, outputs, NULL));
  foreach_weight (vb, g, count_all, &weights);
  return vb->staging.counted + vb->dummy.counted + vb->overflow.counted + arena + readback + weights;
}

/* --- uploads ------------------------------------------------------------------------------------- */

/* Writes bytes [offset, offset + n) of a source, converted, to dst. */
typedef void (*FillFunc) (guint8 *dst, gsize offset, gsize n, gconstpointer user_data);

typedef struct {
  EaselDType dtype;
  const guint8 *src;
  EaselVkWeightFormat fmt;
} WeightSource;

static void
fill_weight (guint8 *dst, gsize offset, gsize n, gconstpointer user_data)
{
  const WeightSource *w = user_data;
  gsize es = easel_dtype_size (w->dtype);
  if (w->fmt == EASEL_VK_WEIGHT_F16) {           /* 2-byte elements out */
    gsize e0 = offset / 2, ne = n / 2;
    if (w->dtype == EASEL_DTYPE_F16) {
      memcpy (dst, w->src + e0 * 2, ne * 2);
      return;
    }
    float buf[1024];
    for (gsize i = 0; i < ne; i += G_N_ELEMENTS (buf)) {
      gsize k = MIN (G_N_ELEMENTS (buf), ne - i);
      easel_dtype_to_f32 (w->dtype, w->src + (e0 + i) * es, buf, k);
      for (gsize j = 0; j < k; j++) {
        guint16 h = easel_f32_to_f16 (buf[j]);
        memcpy (dst + (i + j) * 2, &h, 2);
      }
    }
    return;
  }
  gsize e0 = offset / 4, ne = n / 4;             /* 4-byte elements out */
  if (es == 4 && (w->dtype == EASEL_DTYPE_F32 || !easel_dtype_info (w->dtype)->is_float))
    memcpy (dst, w->src + e0 * 4, ne * 4);       /* F32, and I32/U32 tables of ids as bits */
  else {
    float *f = g_new (float, ne);
    easel_dtype_to_f32 (w->dtype, w->src + e0 * es, f, ne);
    memcpy (dst, f, ne * 4);
    g_free (f);
  }
}

static void
fill_bytes (guint8 *dst, gsize offset, gsize n, gconstpointer user_data)
{
  memcpy (dst, (const guint8 *) user_data + offset, n);
}

typedef struct {
  EaselVkBackend *vb;
  VkDeviceSize used;               /* bytes of staging filled since the last flush */
  gboolean open;
} Upload;

static gboolean
upload_flush (Upload *u, GError **error)
{
  EaselVkBackend *vb = u->vb;
  if (!u->open)
    return TRUE;
  u->open = FALSE;
  u->used = 0;
  /* transfer writes -> every later shader read, in submission order */
  const VkMemoryBarrier mb = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
  };
  vkCmdPipelineBarrier (vb->upload.buf, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb,
                        0, NULL, 0, NULL);
  return easel_vk_buffer_flush (vb->dev, &vb->staging, error)
         && easel_vk_cmd_submit (vb->dev, &vb->upload, error)
         && easel_vk_cmd_wait (vb->dev, &vb->upload, error);
}

/* n bytes made by fill into dst at dst_offset, through staging; n a multiple of 4 */
static gboolean
upload_add (Upload *u, EaselVkBuffer *dst, VkDeviceSize dst_offset, gsize n, FillFunc fill, gconstpointer user_data,
            GError **error)
{
  EaselVkBackend *vb = u->vb;
  for (gsize done = 0; done < n;) {
    if (u->used + 4 > vb->staging.size && !upload_flush (u, error))
      return FALSE;
    if (!u->open) {
      if (!easel_vk_cmd_begin (vb->dev, &vb->upload, error))
        return FALSE;
      u->open = TRUE;
    }
    gsize chunk = MIN (n - done, vb->staging.size - u->used);
    fill ((guint8 *) vb->staging.mapped + u->used, done, chunk, user_data);
    const VkBufferCopy region = { u->used, dst_offset + done, chunk };
    vkCmdCopyBuffer (vb->upload.buf, vb->staging.buffer, dst->buffer, 1, &region);
    u->used = (u->used + chunk + 15) / 16 * 16;
    done += chunk;
  }
  return TRUE;
}

static gboolean
ensure_weight (EaselVkBackend *vb, Upload *u, EaselTensor *base, EaselVkWeightFormat fmt, GError **error)
{
  EaselVkWeight *w = g_hash_table_lookup (vb->weights[fmt], base->data);
  gint64 numel = easel_tensor_numel (base);
  if (w && w->dtype == base->dtype && w->numel == numel)
    return TRUE;
  if (base->data == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "weight '%s' has no data", base->name);
    return FALSE;
  }
  gsize es = easel_dtype_size (base->dtype);
  if (es > 4 || (fmt == EASEL_VK_WEIGHT_F16 && !easel_dtype_info (base->dtype)->is_float)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "vulkan: weight '%s' of dtype %s", base->name,
                 easel_dtype_name (base->dtype));
    return FALSE;
  }
  gsize bytes = (gsize) numel * (fmt == EASEL_VK_WEIGHT_F16 ? 2 : 4);
  EaselVkWeight *nw = g_new0 (EaselVkWeight, 1);
  nw->dtype = base->dtype;
  nw->numel = numel;
  if (!alloc_weight (vb, weight_bytes (bytes), &nw->slice, &nw->slab, error)) {
    g_free (nw);
    return FALSE;
  }
  WeightSource src = { base->dtype, base->data, fmt };
  /* F16 of an odd count: the last 2 bytes come from a padded copy */
  gsize even = bytes / 4 * 4;
  gboolean ok = upload_add (u, nw->slice.buf, nw->slice.offset, even, fill_weight, &src, error);
  if (ok && bytes > even) {
    guint8 tail[4] = { 0 };
    fill_weight (tail, even, bytes - even, &src);
    ok = upload_add (u, nw->slice.buf, nw->slice.offset + even, 4, fill_bytes, tail, error)
         && upload_flush (u, error);   /* `tail` is on this stack frame */
  }
  if (!ok) {
    weight_free (nw);                  /* its slab is freed when nothing else is in it */
    return FALSE;
  }
  g_hash_table_insert (vb->weights[fmt], base->data, nw);
  return TRUE;
}

/* A weight's identity beyond its data pointer: dtype, size and 8 words sampled across its bytes.
 * Weights are cached by pointer, and a pointer can come back for other data (a model unloaded and
 * the next one mapped at the same address, a freed LoRA-merged copy and a new one): such a weight
 * is uploaded again (its old slab is freed once no weight is left in it). */
static guint64
fingerprint (const EaselTensor *base)
{
  gsize n = easel_tensor_nbytes (base);
  guint64 h = 1469598103934665603ull ^ ((guint64) n << 8) ^ (guint64) base->dtype;
  for (int i = 0; i < 8 && n > 0; i++) {
    guint64 word = 0;
    gsize at = n >= 8 ? (n - 8) / 7 * (gsize) i : 0;
    memcpy (&word, (const guint8 *) base->data + at, MIN (n, 8));
    h = (h ^ word) * 1099511628211ull;
  }
  return h;
}

static void
forget_if_changed (EaselVkBackend *vb, const EaselTensor *base)
{
  guint64 fp = fingerprint (base);
  gpointer old = g_hash_table_lookup (vb->fingerprints, base->data);
  if (old && *(guint64 *) old == fp)
    return;
  if (old)                             /* recordings bind the upload of the old data */
    easel_vk_replay_forget_all (vb);
  for (int f = 0; f < 2; f++)
    g_hash_table_remove (vb->weights[f], base->data);
  g_hash_table_remove (vb->fits_f16, base->data);
  g_hash_table_insert (vb->fingerprints, base->data, g_memdup2 (&fp, sizeof fp));
}

/* --- compute / read ----------------------------------------------------------------------------- */

static gboolean
vk_compute (EaselBackend *b, EaselGraph *g, GError **error)
{
  EaselVkBackend *vb = (EaselVkBackend *) b;
  guint n = easel_graph_n_nodes (g);
  Upload u = { vb, 0, FALSE };
  g_autoptr(GArray) copies = g_array_new (FALSE, FALSE, sizeof (VkBufferCopy));

  if (!easel_vk_cmd_wait (vb->dev, &vb->cmd, error))
    return FALSE;
  g_hash_table_remove_all (vb->outputs);
  gsize arena = easel_graph_plan (g);
  VkDeviceSize readback = plan_readback (g, vb->outputs, copies);
  vb->serial++;
  if (!prepare_memory (vb, g, arena, readback, error)
      || !ensure_buffer (vb, &vb->arena, arena, EASEL_VK_DEVICE_LOCAL, "easel activations", error))
    return FALSE;
  gsize splitk = 0;                      /* the split-K partials, sized before anything is recorded */
  for (guint i = 0; i < n; i++)
    splitk = MAX (splitk, easel_vk_splitk_bytes (vb, easel_graph_node (g, i)));
  if (splitk > 0 && !ensure_buffer (vb, &vb->splitk, splitk, EASEL_VK_DEVICE_LOCAL, "easel split-k partials", error))
    return FALSE;

  for (guint i = 0; i < n; i++) {
    EaselTensor *t = easel_graph_node (g, i);
    for (int s = 0; s < EASEL_MAX_SRC; s++)
      if (t->src[s] && is_weight (t->src[s])
          && !ensure_weight (vb, &u, t->src[s]->base, easel_vk_weight_format (vb, t, s), error))
        goto fail;
  }
  for (guint i = 0; i < n; i++) {
    EaselTensor *t = easel_graph_node (g, i);
    if (!(t->flags & EASEL_TENSOR_INPUT))
      continue;
    if (t->host == NULL) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "input '%s' has no data", t->name);
      goto fail;
    }
    if (easel_dtype_size (t->dtype) != 4) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "vulkan: input '%s' of dtype %s (F32 or I32)", t->name,
                   easel_dtype_name (t->dtype));
      goto fail;
    }
    if (easel_tensor_nbytes (t) > 0
        && !upload_add (&u, &vb->arena, t->arena_offset, easel_tensor_nbytes (t), fill_bytes, t->host, error))
      goto fail;
  }
  easel_vk_slabs_seal (&vb->slabs);
  if (!upload_flush (&u, error))
    return FALSE;
  if (!ensure_buffer (vb, &vb->readback, readback, EASEL_VK_READBACK, "easel readback", error))
    return FALSE;

  easel_vk_cmd_set_profile (vb->dev, &vb->cmd, vb->parent.profile);   /* $EASEL_PROFILE: cmd.c */
  vb->last = g;
  gboolean replay;
  if (!easel_vk_replay_begin (vb, g, &replay, error))
    return FALSE;
  if (replay)                          /* recorded before, with the same key: inputs are uploaded */
    return easel_vk_cmd_resubmit (vb->dev, &vb->cmd, error);
  vkCmdFillBuffer (vb->cmd.buf, vb->overflow.buffer, 0, vb->overflow.size, 0);
  const VkMemoryBarrier zeroed = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
  };
  vkCmdPipelineBarrier (vb->cmd.buf, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &zeroed,
                        0, NULL, 0, NULL);
  for (guint i = 0; i < n; i++) {
    easel_vk_cmd_profile_node (&vb->cmd, easel_graph_node (g, i));
    if (!easel_vk_run_node (vb, easel_graph_node (g, i), error))
      return FALSE;                    /* the next begin drops the half-recorded buffer */
  }
  const VkMemoryBarrier to_copy = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT,
  };
  vkCmdPipelineBarrier (vb->cmd.buf, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                        VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &to_copy, 0, NULL, 0, NULL);
  if (copies->len > 0)
    vkCmdCopyBuffer (vb->cmd.buf, vb->arena.buffer, vb->readback.buffer, copies->len, (VkBufferCopy *) copies->data);
  const VkBufferCopy counter = { 0, 0, 4 };
  vkCmdCopyBuffer (vb->cmd.buf, vb->overflow.buffer, vb->readback.buffer, 1, &counter);
  const VkMemoryBarrier to_host = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
  };
  vkCmdPipelineBarrier (vb->cmd.buf, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host, 0,
                        NULL, 0, NULL);
  if (!easel_vk_cmd_submit (vb->dev, &vb->cmd, error))
    return FALSE;
  easel_vk_replay_commit (vb);
  return TRUE;

fail:
  easel_vk_slabs_seal (&vb->slabs);
  if (u.open) {
    g_autoptr(GError) ignored = NULL;
    upload_flush (&u, &ignored);
  }
  return FALSE;
}

/* out[i] = the i-th element of view t in logical order, from its base's dense storage at src */
static void
strided_read (float *out, const float *src, const EaselTensor *t)
{
  gint64 n = easel_tensor_numel (t);
  if (easel_tensor_is_contiguous (t)) {
    memcpy (out, src + t->offset, n * sizeof (float));
    return;
  }
  for (gint64 i = 0; i < n; i++) {
    gint64 rem = i, off = t->offset;
    for (int d = t->n_dims - 1; d >= 0; d--) {
      off += (rem % t->shape[d]) * t->stride[d];
      rem /= t->shape[d];
    }
    out[i] = src[off];
  }
}

/* After the last compute finished: when a cooperative-matrix product met an activation beyond fp16's
 * range (shaders/matmul_coop.glsl counts them; its result was saturated), computes the same graph
 * again with the fp32 matrix shaders and waits for it, so what is read is exact. The graph is still
 * alive: reads come before the caller frees it. */
static gboolean
rerun_if_overflowed (EaselVkBackend *vb, GError **error)
{
  guint32 count;
  memcpy (&count, vb->readback.mapped, sizeof count);
  if (count == 0 || vb->last == NULL)
    return TRUE;
  g_debug ("vulkan: %u fp16 overflows in cooperative-matrix products; the graph runs again in fp32", count);
  vb->exact = TRUE;
  gboolean ok = vk_compute (&vb->parent, vb->last, error);
  vb->exact = FALSE;
  vb->overflow_reruns++;
  return ok && easel_vk_cmd_wait (vb->dev, &vb->cmd, error) && easel_vk_buffer_invalidate (vb->dev, &vb->readback, error);
}

static gboolean
vk_read (EaselBackend *b, const EaselTensor *t, float *out, GError **error)
{
  EaselVkBackend *vb = (EaselVkBackend *) b;
  gpointer off = g_hash_table_lookup (vb->outputs, t->base);
  if (t->dtype != EASEL_DTYPE_F32) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "read: '%s' is not F32", t->name ? t->name : "?");
    return FALSE;
  }
  if (off == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "read: '%s' is not an output of the last compute (easel_graph_mark_output)", t->name ? t->name : "?");
    return FALSE;
  }
  if (!easel_vk_cmd_wait (vb->dev, &vb->cmd, error) || !easel_vk_buffer_invalidate (vb->dev, &vb->readback, error))
    return FALSE;
  if (!rerun_if_overflowed (vb, error))
    return FALSE;
  strided_read (out, (const float *) ((const guint8 *) vb->readback.mapped + GPOINTER_TO_SIZE (off) - 1), t);
  return TRUE;
}

static void
vk_free (EaselBackend *b)
{
  EaselVkBackend *vb = (EaselVkBackend *) b;
  if (vb->dev && vb->dev->device) {
    vkDeviceWaitIdle (vb->dev->device);
    easel_vk_replay_clear (vb);
    easel_vk_cmd_clear (vb->dev, &vb->cmd);
    easel_vk_cmd_clear (vb->dev, &vb->upload);
    easel_vk_pipelines_clear (vb->dev, &vb->pl);
    easel_vk_buffer_clear (vb->dev, &vb->staging);
    easel_vk_buffer_clear (vb->dev, &vb->dummy);
    easel_vk_buffer_clear (vb->dev, &vb->arena);
    easel_vk_buffer_clear (vb->dev, &vb->readback);
    easel_vk_buffer_clear (vb->dev, &vb->overflow);
    easel_vk_buffer_clear (vb->dev, &vb->splitk);
  }
  for (int f = 0; f < 2; f++)   /* releases the slabs' counts */
    if (vb->weights[f])
      g_hash_table_unref (vb->weights[f]);
  if (vb->dev && vb->dev->device)
    easel_vk_slabs_clear (vb->dev, &vb->slabs);
  if (vb->outputs)
    g_hash_table_unref (vb->outputs);
  if (vb->fits_f16)
    g_hash_table_unref (vb->fits_f16);
  if (vb->fingerprints)
    g_hash_table_unref (vb->fingerprints);
  easel_vk_device_free (vb->dev);
  g_free (vb);
}

static const EaselBackendClass vulkan_class = { "vulkan", vk_compute, vk_read, vk_free, vk_graph_memory };

EaselBackend *
easel_backend_new_vulkan (const char *device, GError **error)
{
  EaselVkBackend *vb = g_new0 (EaselVkBackend, 1);
  vb->parent.klass = &vulkan_class;
  for (int f = 0; f < 2; f++)
    vb->weights[f] = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, weight_free);
  vb->outputs = g_hash_table_new (g_direct_hash, g_direct_equal);
  vb->fits_f16 = g_hash_table_new (g_direct_hash, g_direct_equal);
  vb->fingerprints = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  vb->lossy_f16 = g_strcmp0 (g_getenv ("EASEL_VULKAN_LOSSY_F16"), "1") == 0;
  vb->splitk_off = g_strcmp0 (g_getenv ("EASEL_VULKAN_SPLITK"), "0") == 0;
  easel_vk_slabs_init (&vb->slabs, SLAB_BYTES, &vb->parent.memory);
  vb->dev = easel_vk_device_new (device, error);
  if (vb->dev == NULL
      || !easel_vk_pipelines_init (vb->dev, &vb->pl, error)
      || !easel_vk_cmd_init (vb->dev, &vb->cmd, error)
      || !easel_vk_cmd_init (vb->dev, &vb->upload, error)
      || !easel_vk_buffer_init_counted (vb->dev, &vb->parent.memory, &vb->staging,
                                        MIN (STAGING_BYTES, vb->dev->info.max_allocation), EASEL_VK_UPLOAD,
                                        "easel staging", error)
      || !easel_vk_buffer_init_counted (vb->dev, &vb->parent.memory, &vb->dummy, 256, EASEL_VK_DEVICE_LOCAL,
                                        "easel dummy", error)
      || !easel_vk_buffer_init_counted (vb->dev, &vb->parent.memory, &vb->overflow, 64, EASEL_VK_DEVICE_LOCAL,
                                        "easel fp16 overflows", error)) {
    vk_free (&vb->parent);
    return NULL;
  }
  easel_vk_replay_init (&vb->replay, &vb->cmd);
  return &vb->parent;
}

const EaselVulkanDeviceInfo *
easel_backend_vulkan_device_info (EaselBackend *b)
{
  if (b == NULL || strcmp (b->klass->name, "vulkan") != 0)
    return NULL;
  return &((EaselVkBackend *) b)->dev->info;
}

gint
easel_backend_vulkan_validation_errors (EaselBackend *b)
{
  g_return_val_if_fail (b && strcmp (b->klass->name, "vulkan") == 0, -1);
  return g_atomic_int_get (&((EaselVkBackend *) b)->dev->validation_errors);
}
