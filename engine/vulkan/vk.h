/* engine/vulkan/vk.h: the Vulkan backend's internal objects, one file per kind (STYLE.md V1):
 * device.c (instance, device choice, capabilities), memory.c (buffers, weight slabs, staging),
 * pipeline.c (one struct per shader variant, built on first use, the pipeline cache), cmd.c (the
 * command buffer, barriers where data flows, the dispatch helper), ops.c (one function per graph op),
 * replay.c (recorded graphs kept and submitted again), backend-vulkan.c (the EaselBackendClass).
 * Every VkResult becomes a GError through VK_TRY. */
#pragma once

#include <vulkan/vulkan.h>

#include "engine/backend.h"
#include "engine/vulkan/devices.h"

G_BEGIN_DECLS

/* VK_KHR_cooperative_matrix postdates Debian 12's headers (1.3.239): the pieces used to list it. */
#define EASEL_VK_KHR_COOPERATIVE_MATRIX_NAME "VK_KHR_cooperative_matrix"
#define EASEL_VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR ((VkStructureType) 1000506001)
#define EASEL_VK_COMPONENT_TYPE_FLOAT16_KHR 0u
#define EASEL_VK_COMPONENT_TYPE_FLOAT32_KHR 1u
#define EASEL_VK_SCOPE_SUBGROUP_KHR 3u
#define EASEL_VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_FEATURES_KHR ((VkStructureType) 1000506000)
typedef struct {
  VkStructureType sType;
  void *pNext;
  VkBool32 cooperativeMatrix, cooperativeMatrixRobustBufferAccess;
} EaselVkCooperativeMatrixFeaturesKHR;
typedef struct {
  VkStructureType sType;
  void *pNext;
  uint32_t MSize, NSize, KSize;
  uint32_t AType, BType, CType, ResultType;    /* VkComponentTypeKHR */
  VkBool32 saturatingAccumulation;
  uint32_t scope;                              /* VkScopeKHR */
} EaselVkCooperativeMatrixPropertiesKHR;
typedef VkResult (VKAPI_PTR *EaselVkGetCoopMatPropsKHR) (VkPhysicalDevice, uint32_t *,
                                                         EaselVkCooperativeMatrixPropertiesKHR *);

void easel_vk_set_error (GError **error, VkResult r, const char *call, const char *func);
const char *easel_vk_result_name (VkResult r);

#define VK_TRY(call) G_STMT_START {                                              \
    VkResult r_ = (call);                                                        \
    if (G_UNLIKELY (r_ != VK_SUCCESS)) {                                         \
      easel_vk_set_error (error, r_, #call, G_STRFUNC);                          \
      goto out;                                                                  \
    }                                                                            \
  } G_STMT_END

/* --- device.c ------------------------------------------------------------------------------- */

typedef struct {
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  gint validation_errors;                /* counted by the messenger; -1 when validation is off */
  VkPhysicalDevice phys;
  EaselVulkanDeviceInfo info;
  VkPhysicalDeviceMemoryProperties mem;
  VkDevice device;
  VkQueue queue;
  guint32 queue_family;
  gboolean weights_f16;                  /* matrix weights stored fp16 (the *_f16 variants) */
  const char *coopmat;                   /* the cooperative-matrix variants' suffix ("khr", "khr8", "nv";
                                          * NULL: none), its extension enabled on the device */
  PFN_vkSetDebugUtilsObjectNameEXT set_name;
  gatomicrefcount ref;
  GMutex queue_lock;                     /* vkQueueSubmit needs the queue externally synchronized */
} EaselVkDevice;

/* name: NULL ($EASEL_VULKAN_DEVICE or the first usable, GPUs before CPU implementations), an index,
 * or part of a device name. One instance and device per selection for the whole process: backends
 * share it (a reference each), and it is never destroyed while the process runs — drivers do not all
 * survive an instance created and destroyed per backend (the H100's refused the ~30th). */
EaselVkDevice *easel_vk_device_new (const char *name, GError **error);
void           easel_vk_device_free (EaselVkDevice *dev);
void           easel_vk_name (EaselVkDevice *dev, VkObjectType type, guint64 handle, const char *name);

/* --- memory.c ------------------------------------------------------------------------------- */

/* What one backend holds on the device (backend.h's EaselBackendMemory): every buffer made through
 * easel_vk_buffer_init_counted adds its allocation's size (VkMemoryRequirements.size) to `held` until
 * it is cleared. An allocation that would take `held` past a non-zero `limit` fails with EASEL_ERROR_OUT_OF_MEMORY before the
 * driver is asked, as the driver's own VK_ERROR_OUT_OF_DEVICE_MEMORY does. */
typedef EaselBackendMemory EaselVkBudget;

typedef struct {
  VkBuffer buffer;
  VkDeviceMemory memory;
  VkDeviceSize size;
  void *mapped;                          /* host-visible buffers: persistently mapped */
  gboolean coherent;
  EaselVkBudget *budget;                 /* counted in, or NULL */
  VkDeviceSize counted;                  /* bytes added to budget->held */
} EaselVkBuffer;

/* A range of a buffer: what a tensor's storage is. */
typedef struct {
  EaselVkBuffer *buf;
  VkDeviceSize offset, size;
} EaselVkSlice;

typedef enum { EASEL_VK_DEVICE_LOCAL, EASEL_VK_UPLOAD, EASEL_VK_READBACK } EaselVkMemoryKind;

/* budget: NULL (not counted) or where the buffer's memory is counted and limited. */
gboolean easel_vk_buffer_init_counted (EaselVkDevice *dev, EaselVkBudget *budget, EaselVkBuffer *b, VkDeviceSize size,
                                       EaselVkMemoryKind kind, const char *name, GError **error);
gboolean easel_vk_buffer_init  (EaselVkDevice *dev, EaselVkBuffer *b, VkDeviceSize size, EaselVkMemoryKind kind,
                                const char *name, GError **error);
void     easel_vk_buffer_clear (EaselVkDevice *dev, EaselVkBuffer *b);
/* host access to a non-coherent mapping: flush after writing, invalidate before reading */
gboolean easel_vk_buffer_flush      (EaselVkDevice *dev, EaselVkBuffer *b, GError **error);
gboolean easel_vk_buffer_invalidate (EaselVkDevice *dev, EaselVkBuffer *b, GError **error);
/* Tests: the next n device allocations fail as a driver's VK_ERROR_OUT_OF_DEVICE_MEMORY would. */
void     easel_vk_debug_fail_allocations (guint n);

/* Weights: device-local slabs, suballocated in order (STYLE.md V5). The weights one compute uploads
 * go into slabs of their own, sized to what is left of that compute's uploads (at most slab_size,
 * or one tensor's size when it is larger), so that the weights of one model part share slabs with
 * no other part. A slab counts the weights in it; one whose count falls to 0 is freed by
 * easel_vk_slabs_collect. */
typedef struct {
  EaselVkBuffer buf;                     /* first: a slice's buf points here */
  guint live;                            /* weights in it */
  guint64 last_used;                     /* the backend's compute serial that last used one of them */
} EaselVkSlab;

typedef struct {
  GPtrArray *slabs;                      /* EaselVkSlab *, owned */
  EaselVkSlab *open;                     /* the slab being filled, or NULL: the next alloc starts one */
  VkDeviceSize top;                      /* used bytes of the open slab */
  VkDeviceSize slab_size;
  EaselVkBudget *budget;
} EaselVkSlabs;

void     easel_vk_slabs_init  (EaselVkSlabs *s, VkDeviceSize slab_size, EaselVkBudget *budget);
void     easel_vk_slabs_clear (EaselVkDevice *dev, EaselVkSlabs *s);
/* size bytes in the open slab, or a new one of MIN (slab_size, MAX (size, batch_left)) bytes;
 * batch_left: the bytes of this batch still to allocate, this one included. The slab's count
 * goes up by one: easel_vk_slab_release gives it back. */
gboolean easel_vk_slabs_alloc (EaselVkDevice *dev, EaselVkSlabs *s, VkDeviceSize size, VkDeviceSize batch_left,
                               EaselVkSlice *out, EaselVkSlab **slab, GError **error);
/* the batch is over: the next alloc starts a new slab */
void     easel_vk_slabs_seal  (EaselVkSlabs *s);
void     easel_vk_slab_release (EaselVkSlab *slab);
/* frees the slabs no weight is in (no command buffer may be pending on them); returns how many */
guint    easel_vk_slabs_collect (EaselVkDevice *dev, EaselVkSlabs *s);
/* bytes one weight of size bytes takes in a slab (its alignment) */
VkDeviceSize easel_vk_slab_footprint (VkDeviceSize size);

/* --- pipeline.c ----------------------------------------------------------------------------- */

typedef enum {
  EASEL_VK_ATTENTION,
  EASEL_VK_ATTENTION_COOP,
  EASEL_VK_ATTENTION_COOP_WIDE,
  EASEL_VK_ATTENTION_WIDE,
  EASEL_VK_AVG_POOL2D,
  EASEL_VK_BINARY_ADD,
  EASEL_VK_BINARY_MUL,
  EASEL_VK_CONCAT,
  EASEL_VK_CONV2D_COOP,                  /* cooperative-matrix variants: chosen per device */
  EASEL_VK_CONV2D_F16,
  EASEL_VK_CONV2D_F32,
  EASEL_VK_COPY,
  EASEL_VK_GEGLU,
  EASEL_VK_GET_ROWS_F16,
  EASEL_VK_GET_ROWS_F32,
  EASEL_VK_GROUP_NORM,
  EASEL_VK_GROUP_NORM_APPLY,
  EASEL_VK_GROUP_STATS,
  EASEL_VK_LAYER_NORM,
  EASEL_VK_LINEAR_COOP,
  EASEL_VK_LINEAR_F16,
  EASEL_VK_LINEAR_F32,
  EASEL_VK_TIMESTEP_EMBEDDING,
  EASEL_VK_UNARY_GELU,
  EASEL_VK_UNARY_GELU_TANH,
  EASEL_VK_UNARY_QUICK_GELU,
  EASEL_VK_UNARY_RELU,
  EASEL_VK_UNARY_SCALE,
  EASEL_VK_UNARY_SILU,
  EASEL_VK_UPSAMPLE_NEAREST,
  EASEL_VK_N_PIPELINES
} EaselVkPipelineId;

#define EASEL_VK_MAX_BINDINGS 6
#define EASEL_VK_PUSH_MAX 128

typedef struct {
  char *name;                            /* the variant's name in shaders/meson.build (owned) */
  guint n_buffers;                       /* bindings 0 .. n-1, the output last */
  guint push_size;                       /* sizeof the C mirror of the push block */
  guint wg[3];                           /* elements per workgroup on each axis */
  gboolean flat;                         /* 1D: group counts past the x limit fold into y */
  const guint32 *spv;
  gsize spv_size;
  VkPipeline pipeline;                   /* VK_NULL_HANDLE until the first dispatch */
  gboolean failed;                       /* an optional variant the driver would not build: never again */
} EaselVkPipeline;

typedef struct {
  VkDescriptorSetLayout set_layout;      /* EASEL_VK_MAX_BINDINGS storage buffers, for every pipeline */
  VkPipelineLayout layout;
  VkPipelineCache cache;
  char *cache_path;
  VkBool32 split_a;                      /* cooperative-matrix products on hi + lo fp16 halves (matmul_coop.glsl;
                                          * $EASEL_VULKAN_FP16_ACTIVATIONS=1: hi only) */
  EaselVkPipeline p[EASEL_VK_N_PIPELINES];
} EaselVkPipelines;

gboolean         easel_vk_pipelines_init  (EaselVkDevice *dev, EaselVkPipelines *pl, GError **error);
void             easel_vk_pipelines_clear (EaselVkDevice *dev, EaselVkPipelines *pl);  /* saves the cache */
EaselVkPipeline *easel_vk_pipeline_get    (EaselVkDevice *dev, EaselVkPipelines *pl, EaselVkPipelineId id,
                                           GError **error);
const char      *easel_vk_pipeline_name   (EaselVkPipelineId id);
/* An optional variant (cooperative matrix) the device can run: built now if it was not; FALSE, with a
 * warning the first time, when it is absent or the driver fails to build it (the caller uses the
 * plain variant instead). */
gboolean         easel_vk_pipeline_usable (EaselVkDevice *dev, EaselVkPipelines *pl, EaselVkPipelineId id);
/* Whether the library embeds the SPIR-V variant `name` (shaders/meson.build). */
gboolean         easel_vk_spv_built_in    (const char *name);

/* --- cmd.c ---------------------------------------------------------------------------------- */

/* One binding of a dispatch: a range of a buffer, and whether the dispatch writes it. Ranges of
 * tracked buffers (the activation arena) take part in the hazard tracking. */
typedef struct {
  EaselVkBuffer *buf;
  VkDeviceSize offset, range;            /* what the descriptor binds (aligned, <= maxStorageBufferRange) */
  gboolean write;
} EaselVkArg;

/* Timestamps around each dispatch for the per-op profile (cmd.c, "profiling"). */
typedef struct _EaselVkProfiler EaselVkProfiler;

typedef struct {
  VkCommandPool pool;
  VkCommandBuffer buf;
  VkFence fence;
  gboolean recording, pending;           /* pending: submitted, fence not yet waited on */
  gboolean reusable;                     /* buf is a kept recording (replay.c): no ONE_TIME_SUBMIT */
  GArray *desc_pools;                    /* VkDescriptorPool, reset at each begin; not owned while retargeted */
  guint desc_pool_cur, sets_in_cur;
  GArray *written, *read;                /* EaselVkRange since the last barrier */
  guint n_dispatches, n_barriers;
  EaselVkProfiler *prof;                 /* NULL until easel_vk_cmd_set_profile turns it on */
} EaselVkCmd;

gboolean easel_vk_cmd_init   (EaselVkDevice *dev, EaselVkCmd *c, GError **error);
void     easel_vk_cmd_clear  (EaselVkDevice *dev, EaselVkCmd *c);
/* waits for the last submission (if any) and starts recording */
gboolean easel_vk_cmd_begin  (EaselVkDevice *dev, EaselVkCmd *c, GError **error);
gboolean easel_vk_cmd_submit (EaselVkDevice *dev, EaselVkCmd *c, GError **error);
/* submits the finished recording in c again, as it is (c reusable, neither recording nor pending) */
gboolean easel_vk_cmd_resubmit (EaselVkDevice *dev, EaselVkCmd *c, GError **error);
/* ends a recording left halfway by a failure, so that the buffer can be begun again or freed */
void     easel_vk_cmd_abandon (EaselVkCmd *c);
/* Makes c record into and submit buf, allocating descriptor sets from desc_pools (GArray of
 * VkDescriptorPool, not owned), recorded for resubmission when reusable. c must not be pending;
 * a recording left halfway is abandoned. c's own buffer and pools are the caller's to restore
 * before easel_vk_cmd_clear. */
void     easel_vk_cmd_retarget (EaselVkCmd *c, VkCommandBuffer buf, GArray *desc_pools, gboolean reusable);
gboolean easel_vk_cmd_wait   (EaselVkDevice *dev, EaselVkCmd *c, GError **error);
/* a compute -> compute memory barrier (read-after-write and write-after-read) */
void     easel_vk_cmd_barrier (EaselVkCmd *c);
gboolean easel_vk_dispatch (EaselVkDevice *dev, EaselVkPipelines *pl, EaselVkCmd *c, EaselVkPipelineId id,
                            const EaselVkArg *args, guint n_args, const void *push, gsize push_size,
                            guint64 nx, guint64 ny, guint64 nz, GError **error);

/* Profiling: with a profile set (before easel_vk_cmd_begin; NULL turns it off), each recording
 * resets its timestamp queries, writes one at the start and one after every dispatch, with a barrier
 * before every dispatch so that they run one at a time, and each wait adds every node's GPU time to
 * the profile. A command buffer submitted again without being recorded again (replay) resets and
 * writes the same queries, and its records are added again at each wait. A queue without timestamps:
 * says so once on stderr and records nothing. easel_vk_cmd_profile_node names the node that the
 * next dispatches belong to. */
void     easel_vk_cmd_set_profile (EaselVkDevice *dev, EaselVkCmd *c, EaselProfile *profile);
void     easel_vk_cmd_profile_node (EaselVkCmd *c, const EaselTensor *t);

/* --- replay.c ------------------------------------------------------------------------------ */

typedef struct _EaselVkRecording EaselVkRecording;

/* Recorded graphs kept for resubmission, most recently used first. A graph's key lists everything
 * its recording depends on; while a recording is in use, the backend's cmd is retargeted to its
 * command buffer and descriptor pools. */
typedef struct {
  guint capacity;                        /* recordings kept; 0: replay off ($EASEL_VULKAN_REPLAY=0) */
  GQueue lru;                            /* EaselVkRecording *, owned, most recently used first */
  EaselVkRecording *active;              /* the one cmd is retargeted to; NULL: cmd's own buffer */
  VkCommandBuffer own_buf;               /* cmd's own buffer and pools, saved by easel_vk_replay_init */
  GArray *own_pools;
  GArray *scratch;                       /* guint64: the key of the graph being computed */
  gboolean profile;                      /* $EASEL_PROFILE: the figures below, printed when cleared */
  guint64 recorded, replayed, evicted, forgotten;
  double key_seconds, record_seconds;    /* computing keys; recording graphs (begin to submit) */
  gint64 record_t0;
} EaselVkReplay;

/* --- backend-vulkan.c / ops.c -------------------------------------------------------------- */

typedef enum { EASEL_VK_WEIGHT_F32, EASEL_VK_WEIGHT_F16 } EaselVkWeightFormat;

typedef struct {
  EaselBackend parent;
  EaselVkDevice *dev;
  EaselVkPipelines pl;
  EaselVkCmd cmd;                        /* the graph's dispatches */
  EaselVkCmd upload;                     /* weight and input uploads, synchronous */
  EaselVkBuffer staging;                 /* host-visible, for uploads */
  EaselVkBuffer dummy;                   /* bound to unused bindings (optional bias, gamma, ...) */
  EaselVkBuffer arena;                   /* activations, laid out by easel_graph_plan */
  EaselVkBuffer readback;                /* outputs copied here at the end of each compute */
  EaselVkSlabs slabs;                    /* weights, counted in parent.memory */
  guint64 serial;                        /* computes so far: slabs' last_used */
  VkDeviceSize batch_left;               /* bytes of this compute's new weights not yet in a slab */
  guint64 memory_epoch;                  /* bumped whenever weights or the arena are freed */
  GHashTable *weights[2];                /* per EaselVkWeightFormat: const void *data -> EaselVkWeight * */
  GHashTable *outputs;                   /* EaselTensor *base -> offset in readback + 1 */
  GHashTable *fits_f16;                  /* const void *data -> 1: stored as fp16 keeps it, 2: it does not */
  GHashTable *fingerprints;              /* const void *data -> guint64 *: what the caches above hold for it */
  gboolean lossy_f16;                    /* $EASEL_VULKAN_LOSSY_F16: round fp32 weights to fp16 anyway */
  EaselVkBuffer overflow;                /* one word the cooperative-matrix shaders count fp16 overflows in */
  EaselVkBuffer splitk;                  /* split-K partial sums (ops.c), sized before recording */
  gboolean splitk_off;                   /* $EASEL_VULKAN_SPLITK=0 */
  gboolean exact;                        /* record with the fp32 matrix shaders only (after an overflow) */
  EaselGraph *last;                      /* the graph of the last compute, for a rerun in fp32 */
  guint overflow_reruns;                 /* graphs run again in fp32 after an fp16 overflow */
  EaselVkReplay replay;                  /* recordings of earlier graphs (replay.c) */
} EaselVkBackend;

typedef struct {
  EaselVkSlice slice;
  EaselVkSlab *slab;                     /* counts this weight */
  EaselDType dtype;                      /* of the checkpoint data it came from */
  gint64 numel;
} EaselVkWeight;

/* Called whenever device memory that a recorded command buffer may reference (weight slabs, the
 * arena, the readback buffer) is freed or replaced; the caller has waited for every submission.
 * Anything that keeps recordings between computes must drop them here (it bumps memory_epoch). */
void easel_vk_memory_freed (EaselVkBackend *vb);

/* The binding for tensor t (any view) and the element offset of t's element [0, ...] in it; weights
 * in format fmt (uploaded before recording). */
gboolean easel_vk_tensor_arg (EaselVkBackend *vb, const EaselTensor *t, EaselVkWeightFormat fmt, gboolean write,
                              EaselVkArg *arg, guint32 *elem_offset, GError **error);
/* the weight format an op wants for source s of node t */
EaselVkWeightFormat easel_vk_weight_format (EaselVkBackend *vb, const EaselTensor *t, int s);
gboolean easel_vk_run_node (EaselVkBackend *vb, EaselTensor *t, GError **error);
/* Bytes of split-K partial sums node t needs (0: it does not split), for sizing vb->splitk. */
gsize    easel_vk_splitk_bytes (EaselVkBackend *vb, EaselTensor *t);

/* replay.c. init after cmd's init; clear before it (restores cmd's own buffer; prints the figures
 * under $EASEL_PROFILE). */
void     easel_vk_replay_init  (EaselVkReplay *r, EaselVkCmd *cmd);
void     easel_vk_replay_clear (EaselVkBackend *vb);
/* Called with cmd idle, after planning g and uploading its weights: when a kept recording has g's
 * key, retargets cmd to it and sets *replay (the caller resubmits it); else begins recording g into
 * cmd (a new kept recording, or cmd's own buffer when replay is off). */
gboolean easel_vk_replay_begin  (EaselVkBackend *vb, EaselGraph *g, gboolean *replay, GError **error);
/* the recording begun last was submitted: keep it */
void     easel_vk_replay_commit (EaselVkBackend *vb);
/* Drops every kept recording. Call it (with cmd idle) before freeing or moving anything a recording
 * binds: the arena, the readback buffer, weight slabs, a weight re-uploaded for changed data. */
void     easel_vk_replay_forget_all (EaselVkBackend *vb);

G_END_DECLS
