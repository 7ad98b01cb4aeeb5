/* engine/vulkan/replay.c: recorded graphs kept and submitted again (STYLE.md V6). Model code builds
 * a new EaselGraph for every call, but a UNet step has the same shape every step, so compute
 * recognises a repeat: after planning and the weight uploads it writes the graph's key — every
 * word a recording depends on — and when a kept recording has that key, only the inputs are
 * uploaded (to the same arena offsets) and the recording's command buffer is submitted again.
 *
 * The key, per node in order: op, dtype, rank, flags, shape, strides, offset, base and source
 * indices, the planned arena offset, ip and fp; for a weight leaf its data pointer; for each weight
 * source the format it is bound in and the device slice it was uploaded to; and up front the arena
 * and readback buffers. Names and input host pointers are not in it: they change nothing recorded.
 * Keys are compared whole (a hash only skips unequal ones quickly).
 *
 * Each recording owns a command buffer (from cmd's pool, begun without ONE_TIME_SUBMIT) and the
 * descriptor pools its sets came from; the backend's cmd is retargeted to it while it records or
 * runs, and its fence stays cmd's (one submission in flight per backend). Up to
 * $EASEL_VULKAN_REPLAY recordings are kept (default 4: a pipeline alternates UNet, ControlNet and
 * VAE graphs on one backend, and CFG may run cond and uncond apart), least recently used dropped
 * first; 0 turns replay off (every graph recorded into cmd's own one-time buffer). All are dropped
 * when something they bind is freed or moved (easel_vk_replay_forget_all). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vulkan/vk.h"

#define DEFAULT_CAPACITY 4
#define MAX_CAPACITY 64
#define NODE_WORDS_MAX 64

struct _EaselVkRecording {
  GArray *key;                           /* guint64 */
  guint64 hash;
  VkCommandBuffer buf;                   /* allocated from cmd's pool */
  GArray *pools;                         /* VkDescriptorPool, owned */
  gboolean complete;                     /* recorded and submitted: safe to submit again */
  guint n_dispatches, n_barriers;
};

static double
seconds_since (gint64 t0)
{
  return (double) (g_get_monotonic_time () - t0) / G_USEC_PER_SEC;
}

void
easel_vk_replay_init (EaselVkReplay *r, EaselVkCmd *cmd)
{
  const char *env = g_getenv ("EASEL_VULKAN_REPLAY");
  const char *profile = g_getenv ("EASEL_PROFILE");
  char *end = NULL;
  memset (r, 0, sizeof *r);
  g_queue_init (&r->lru);
  r->capacity = DEFAULT_CAPACITY;
  if (env != NULL && *env != '\0') {
    guint64 n = g_ascii_strtoull (env, &end, 10);
    if (end != env && *end == '\0')
      r->capacity = (guint) MIN (n, MAX_CAPACITY);
    else
      g_warning ("EASEL_VULKAN_REPLAY='%s' is not a count of recordings to keep; keeping %d", env, DEFAULT_CAPACITY);
  }
  r->own_buf = cmd->buf;
  r->own_pools = cmd->desc_pools;
  r->scratch = g_array_new (FALSE, FALSE, sizeof (guint64));
  r->profile = profile != NULL && g_strcmp0 (profile, "0") != 0;
}

/* Points cmd at recording e's buffer and pools, or at its own when e is NULL; cmd must be idle. */
static void
use (EaselVkBackend *vb, EaselVkRecording *e)
{
  if (e)
    easel_vk_cmd_retarget (&vb->cmd, e->buf, e->pools, TRUE);
  else
    easel_vk_cmd_retarget (&vb->cmd, vb->replay.own_buf, vb->replay.own_pools, FALSE);
  vb->replay.active = e;
}

static void
drop (EaselVkBackend *vb, EaselVkRecording *e)
{
  VkDevice device = vb->dev->device;
  if (vb->replay.active == e)
    use (vb, NULL);
  g_queue_remove (&vb->replay.lru, e);
  if (e->buf)
    vkFreeCommandBuffers (device, vb->cmd.pool, 1, &e->buf);
  for (guint i = 0; i < e->pools->len; i++)
    vkDestroyDescriptorPool (device, g_array_index (e->pools, VkDescriptorPool, i), NULL);
  g_array_unref (e->pools);
  g_array_unref (e->key);
  g_free (e);
}

/* waits for cmd's last submission, which may be a recording about to be dropped */
static void
settle (EaselVkBackend *vb)
{
  g_autoptr(GError) ignored = NULL;
  easel_vk_cmd_wait (vb->dev, &vb->cmd, &ignored);   /* a lost device: nothing to wait for */
}

void
easel_vk_replay_forget_all (EaselVkBackend *vb)
{
  EaselVkReplay *r = &vb->replay;
  if (r->lru.length == 0)
    return;
  settle (vb);
  while (r->lru.length > 0) {
    drop (vb, g_queue_peek_head (&r->lru));
    r->forgotten++;
  }
}

void
easel_vk_replay_clear (EaselVkBackend *vb)
{
  EaselVkReplay *r = &vb->replay;
  if (r->profile && r->recorded + r->replayed > 0)
    fprintf (stderr,
             "vulkan replay (EASEL_PROFILE): %" G_GUINT64_FORMAT " graphs recorded, %.3f ms each; %" G_GUINT64_FORMAT
             " replayed; keys %.3f ms each; %" G_GUINT64_FORMAT " recordings evicted, %" G_GUINT64_FORMAT
             " dropped for changed buffers or weights\n",
             r->recorded, r->recorded ? 1e3 * r->record_seconds / r->recorded : 0.0, r->replayed,
             r->capacity && r->recorded + r->replayed ? 1e3 * r->key_seconds / (r->recorded + r->replayed) : 0.0,
             r->evicted, r->forgotten);
  if (vb->dev && vb->dev->device && vb->cmd.pool) {
    settle (vb);
    while (r->lru.length > 0)          /* the active one too: cmd gets its own buffer back */
      drop (vb, g_queue_peek_head (&r->lru));
  }
  if (r->scratch)
    g_array_unref (r->scratch);
  r->scratch = NULL;
}

/* --- the key ------------------------------------------------------------------------------------ */

static guint64
source_index (const EaselTensor *s)
{
  return s ? s->index : G_MAXUINT64;
}

/* node t's words into w (at most NODE_WORDS_MAX); returns how many. A weight source that is not
 * uploaded gets zeros: recording it fails and says so, and a failed recording is never kept. */
static guint
node_words (EaselVkBackend *vb, const EaselTensor *t, guint64 *w)
{
  guint n = 0;
  w[n++] = (guint64) t->op | (guint64) t->dtype << 8 | (guint64) t->n_dims << 16 | (guint64) t->flags << 24;
  for (int d = 0; d < t->n_dims; d++) {
    w[n++] = (guint64) t->shape[d];
    w[n++] = (guint64) t->stride[d];
  }
  w[n++] = (guint64) t->offset;
  w[n++] = source_index (t->base);
  w[n++] = (guint64) t->arena_offset;
  for (int s = 0; s < EASEL_MAX_SRC; s++)
    w[n++] = source_index (t->src[s]);
  for (int i = 0; i < 8; i += 2)
    w[n++] = (guint64) (guint32) t->ip[i] | (guint64) (guint32) t->ip[i + 1] << 32;
  for (int i = 0; i < 4; i += 2) {
    guint32 a, b;
    memcpy (&a, &t->fp[i], 4);
    memcpy (&b, &t->fp[i + 1], 4);
    w[n++] = (guint64) a | (guint64) b << 32;
  }
  if (t->op == EASEL_OP_LEAF && (t->flags & EASEL_TENSOR_WEIGHT))
    w[n++] = (guint64) (guintptr) t->data;
  for (int s = 0; s < EASEL_MAX_SRC; s++) {
    const EaselTensor *src = t->src[s];
    if (src == NULL || !(src->base->flags & EASEL_TENSOR_WEIGHT))
      continue;
    EaselVkWeightFormat fmt = easel_vk_weight_format (vb, t, s);
    const EaselVkWeight *wt = g_hash_table_lookup (vb->weights[fmt], src->base->data);
    w[n++] = (guint64) fmt;
    w[n++] = wt ? (guint64) wt->slice.buf->buffer : 0;
    w[n++] = wt ? (guint64) wt->slice.offset : 0;
  }
  g_assert (n <= NODE_WORDS_MAX);
  return n;
}

/* key: g's words (see the file's comment); returns their hash */
static guint64
make_key (EaselVkBackend *vb, EaselGraph *g, GArray *key)
{
  guint64 w[NODE_WORDS_MAX];
  guint n = easel_graph_n_nodes (g);
  g_array_set_size (key, 0);
  w[0] = (guint64) vb->arena.buffer;
  w[1] = vb->arena.size;
  w[2] = (guint64) vb->readback.buffer;
  w[3] = vb->readback.size;
  w[4] = n;
  w[5] = (guint64) vb->exact << 1 | (vb->parent.profile != NULL);   /* fp32-only rerun; timestamps */
  g_array_append_vals (key, w, 6);
  for (guint i = 0; i < n; i++)
    g_array_append_vals (key, w, node_words (vb, easel_graph_node (g, i), w));
  guint64 h = 0xcbf29ce484222325ull;
  const guint64 *k = (const guint64 *) key->data;
  for (guint i = 0; i < key->len; i++) {
    h = (h ^ k[i]) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  return h;
}

static EaselVkRecording *
find (EaselVkReplay *r, guint64 hash)
{
  for (GList *l = r->lru.head; l; l = l->next) {
    EaselVkRecording *e = l->data;
    if (e->complete && e->hash == hash && e->key->len == r->scratch->len
        && memcmp (e->key->data, r->scratch->data, r->scratch->len * sizeof (guint64)) == 0) {
      g_queue_unlink (&r->lru, l);
      g_queue_push_head_link (&r->lru, l);
      return e;
    }
  }
  return NULL;
}

/* --- compute's side ------------------------------------------------------------------------------ */

gboolean
easel_vk_replay_begin (EaselVkBackend *vb, EaselGraph *g, gboolean *replay, GError **error)
{
  EaselVkReplay *r = &vb->replay;
  EaselVkCmd *c = &vb->cmd;
  EaselVkRecording *e;
  *replay = FALSE;
  if (r->active && !r->active->complete)   /* the last recording failed halfway, or its submit did */
    drop (vb, r->active);
  if (r->capacity == 0) {
    use (vb, NULL);
    r->record_t0 = g_get_monotonic_time ();
    return easel_vk_cmd_begin (vb->dev, c, error);
  }

  gint64 t0 = g_get_monotonic_time ();
  guint64 hash = make_key (vb, g, r->scratch);
  e = find (r, hash);
  r->key_seconds += seconds_since (t0);
  if (e) {
    use (vb, e);
    c->n_dispatches = e->n_dispatches;
    c->n_barriers = e->n_barriers;
    r->replayed++;
    *replay = TRUE;
    return TRUE;
  }

  while (r->lru.length >= r->capacity) {
    drop (vb, g_queue_peek_tail (&r->lru));
    r->evicted++;
  }
  const VkCommandBufferAllocateInfo ai = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = c->pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1,
  };
  e = g_new0 (EaselVkRecording, 1);
  e->key = r->scratch;                     /* taken; the next key gets a new array */
  e->hash = hash;
  e->pools = g_array_new (FALSE, FALSE, sizeof (VkDescriptorPool));
  r->scratch = g_array_sized_new (FALSE, FALSE, sizeof (guint64), e->key->len);
  g_queue_push_head (&r->lru, e);
  VK_TRY (vkAllocateCommandBuffers (vb->dev->device, &ai, &e->buf));
  use (vb, e);
  r->record_t0 = g_get_monotonic_time ();
  return easel_vk_cmd_begin (vb->dev, c, error);   /* on failure e stays incomplete: dropped next time */
out:
  drop (vb, e);
  return FALSE;
}

void
easel_vk_replay_commit (EaselVkBackend *vb)
{
  EaselVkReplay *r = &vb->replay;
  r->record_seconds += seconds_since (r->record_t0);
  r->recorded++;
  if (r->active) {
    r->active->complete = TRUE;
    r->active->n_dispatches = vb->cmd.n_dispatches;
    r->active->n_barriers = vb->cmd.n_barriers;
  }
}

gboolean
easel_backend_vulkan_replay_stats (EaselBackend *b, EaselVulkanReplayStats *out)
{
  if (b == NULL || strcmp (b->klass->name, "vulkan") != 0)
    return FALSE;
  const EaselVkReplay *r = &((EaselVkBackend *) b)->replay;
  *out = (EaselVulkanReplayStats) {
    .recorded = r->recorded, .replayed = r->replayed, .evicted = r->evicted, .forgotten = r->forgotten,
    .kept = r->lru.length, .key_seconds = r->key_seconds, .record_seconds = r->record_seconds,
  };
  return TRUE;
}
