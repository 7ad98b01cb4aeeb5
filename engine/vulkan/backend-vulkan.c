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
 * (except those that would overflow). */
#include <math.h>
#include <string.h>

#include "engine/error.h"
#include "engine/vulkan/vk.h"

#define STAGING_BYTES ((VkDeviceSize) 32 << 20)
#define SLAB_BYTES ((VkDeviceSize) 256 << 20)
#define ARENA_GRANULE ((VkDeviceSize) 1 << 20)

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
  if (!easel_vk_slabs_alloc (vb->dev, &vb->slabs, MAX ((bytes + 3) / 4 * 4, 4), &nw->slice, error)) {
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
  g_hash_table_insert (vb->weights[fmt], base->data, nw);   /* on failure too: the slice is taken */
  if (!ok)
    nw->numel = -1;                    /* retried next compute */
  return ok;
}

/* A weight's identity beyond its data pointer: dtype, size and 8 words sampled across its bytes.
 * Weights are cached by pointer, and a pointer can come back for other data (a model unloaded and
 * the next one mapped at the same address, a freed LoRA-merged copy and a new one): such a weight
 * is uploaded again. (Its old slab space is not reused before the backend is freed.) */
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
ensure_buffer (EaselVkBackend *vb, EaselVkBuffer *b, VkDeviceSize size, EaselVkMemoryKind kind, const char *name,
               GError **error)
{
  if (b->buffer && b->size >= size)
    return TRUE;
  easel_vk_replay_forget_all (vb);     /* recordings bind the old buffer */
  easel_vk_buffer_clear (vb->dev, b);
  size = MAX ((size + ARENA_GRANULE - 1) / ARENA_GRANULE * ARENA_GRANULE, ARENA_GRANULE);
  return easel_vk_buffer_init (vb->dev, b, size, kind, name, error);
}

static gboolean
vk_compute (EaselBackend *b, EaselGraph *g, GError **error)
{
  EaselVkBackend *vb = (EaselVkBackend *) b;
  guint n = easel_graph_n_nodes (g);
  Upload u = { vb, 0, FALSE };
  VkDeviceSize readback = 0;
  g_autoptr(GArray) copies = g_array_new (FALSE, FALSE, sizeof (VkBufferCopy));

  if (!easel_vk_cmd_wait (vb->dev, &vb->cmd, error))
    return FALSE;
  g_hash_table_remove_all (vb->outputs);
  gsize arena = easel_graph_plan (g);
  if (!ensure_buffer (vb, &vb->arena, arena, EASEL_VK_DEVICE_LOCAL, "easel activations", error))
    return FALSE;

  for (guint i = 0; i < n; i++) {
    EaselTensor *t = easel_graph_node (g, i);
    EaselTensor *base = t->base;
    if ((t->flags & EASEL_TENSOR_OUTPUT) && !is_weight (t) && !g_hash_table_contains (vb->outputs, base)) {
      VkBufferCopy c = { base->arena_offset, readback, easel_tensor_nbytes (base) };
      g_hash_table_insert (vb->outputs, base, GSIZE_TO_POINTER (readback + 1));
      if (c.size > 0)
        g_array_append_val (copies, c);
      readback += (c.size + 63) / 64 * 64;
    }
    for (int s = 0; s < EASEL_MAX_SRC; s++)
      if (t->src[s] && is_weight (t->src[s]) && t->src[s]->base->data)
        forget_if_changed (vb, t->src[s]->base);
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
  if (!upload_flush (&u, error))
    return FALSE;
  if (!ensure_buffer (vb, &vb->readback, readback, EASEL_VK_READBACK, "easel readback", error))
    return FALSE;

  gboolean replay;
  if (!easel_vk_replay_begin (vb, g, &replay, error))
    return FALSE;
  if (replay)                          /* recorded before, with the same key: inputs are uploaded */
    return easel_vk_cmd_resubmit (vb->dev, &vb->cmd, error);
  for (guint i = 0; i < n; i++)
    if (!easel_vk_run_node (vb, easel_graph_node (g, i), error))
      return FALSE;                    /* the next begin drops the half-recorded buffer */
  if (copies->len > 0) {
    const VkMemoryBarrier to_copy = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
      .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT,
    };
    vkCmdPipelineBarrier (vb->cmd.buf, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                          VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &to_copy, 0, NULL, 0, NULL);
    vkCmdCopyBuffer (vb->cmd.buf, vb->arena.buffer, vb->readback.buffer, copies->len, (VkBufferCopy *) copies->data);
    const VkMemoryBarrier to_host = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
      .dstAccessMask = VK_ACCESS_HOST_READ_BIT,
    };
    vkCmdPipelineBarrier (vb->cmd.buf, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &to_host, 0,
                          NULL, 0, NULL);
  }
  if (!easel_vk_cmd_submit (vb->dev, &vb->cmd, error))
    return FALSE;
  easel_vk_replay_commit (vb);
  return TRUE;

fail:
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
    easel_vk_slabs_clear (vb->dev, &vb->slabs);
  }
  for (int f = 0; f < 2; f++)
    if (vb->weights[f])
      g_hash_table_unref (vb->weights[f]);
  if (vb->outputs)
    g_hash_table_unref (vb->outputs);
  if (vb->fits_f16)
    g_hash_table_unref (vb->fits_f16);
  if (vb->fingerprints)
    g_hash_table_unref (vb->fingerprints);
  easel_vk_device_free (vb->dev);
  g_free (vb);
}

static const EaselBackendClass vulkan_class = { "vulkan", vk_compute, vk_read, vk_free };

EaselBackend *
easel_backend_new_vulkan (const char *device, GError **error)
{
  EaselVkBackend *vb = g_new0 (EaselVkBackend, 1);
  vb->parent.klass = &vulkan_class;
  for (int f = 0; f < 2; f++)
    vb->weights[f] = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  vb->outputs = g_hash_table_new (g_direct_hash, g_direct_equal);
  vb->fits_f16 = g_hash_table_new (g_direct_hash, g_direct_equal);
  vb->fingerprints = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  vb->lossy_f16 = g_strcmp0 (g_getenv ("EASEL_VULKAN_LOSSY_F16"), "1") == 0;
  easel_vk_slabs_init (&vb->slabs, SLAB_BYTES);
  vb->dev = easel_vk_device_new (device, error);
  if (vb->dev == NULL
      || !easel_vk_pipelines_init (vb->dev, &vb->pl, error)
      || !easel_vk_cmd_init (vb->dev, &vb->cmd, error)
      || !easel_vk_cmd_init (vb->dev, &vb->upload, error)
      || !easel_vk_buffer_init (vb->dev, &vb->staging, MIN (STAGING_BYTES, vb->dev->info.max_allocation),
                                EASEL_VK_UPLOAD, "easel staging", error)
      || !easel_vk_buffer_init (vb->dev, &vb->dummy, 256, EASEL_VK_DEVICE_LOCAL, "easel dummy", error)) {
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
