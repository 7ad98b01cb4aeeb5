/* engine/vulkan/pipeline.c: compute pipelines as data (STYLE.md V3, V4). One EaselVkPipeline per
 * shader variant of shaders/meson.build, filled from the table below and the embedded SPIR-V,
 * compiled on first use. Every pipeline shares one descriptor-set layout (EASEL_VK_MAX_BINDINGS
 * storage buffers) and one 128-byte push-constant range. A VkPipelineCache is read from and saved
 * to $XDG_CACHE_HOME/easel/ (the driver checks its header and ignores a foreign one). */
#include <string.h>

#include "engine/error.h"
#include "engine/vulkan/push.h"
#include "engine/vulkan/vk.h"

#include "easel-vk-spv.h"

typedef struct {
  guint n_buffers, push_size;
  guint wg[3];
  gboolean flat;
} PipelineDef;

#define FLAT(name, nb, push) [name] = { nb, sizeof (push), { 256, 1, 1 }, TRUE }
static const PipelineDef defs[EASEL_VK_N_PIPELINES] = {
  [EASEL_VK_ATTENTION] = { 4, sizeof (EaselVkAttentionPush), { 16, 1, 1 }, FALSE },
  [EASEL_VK_ATTENTION_COOP] = { 5, sizeof (EaselVkAttentionPush), { 64, 1, 1 }, FALSE },
  [EASEL_VK_ATTENTION_COOP_WIDE] = { 5, sizeof (EaselVkAttentionPush), { 64, 1, 1 }, FALSE },
  [EASEL_VK_ATTENTION_WIDE] = { 4, sizeof (EaselVkAttentionPush), { 16, 1, 1 }, FALSE },
  FLAT (EASEL_VK_AVG_POOL2D, 2, EaselVkAvgPoolPush),
  FLAT (EASEL_VK_BINARY_ADD, 3, EaselVkBinaryPush),
  FLAT (EASEL_VK_BINARY_MUL, 3, EaselVkBinaryPush),
  FLAT (EASEL_VK_CONCAT, 3, EaselVkConcatPush),
  [EASEL_VK_CONV2D_COOP] = { 6, sizeof (EaselVkConv2dPush), { 64, 64, 1 }, FALSE },
  [EASEL_VK_CONV2D_F16] = { 4, sizeof (EaselVkConv2dPush), { 64, 64, 1 }, FALSE },
  [EASEL_VK_CONV2D_F32] = { 4, sizeof (EaselVkConv2dPush), { 64, 64, 1 }, FALSE },
  FLAT (EASEL_VK_COPY, 2, EaselVkCopyPush),
  FLAT (EASEL_VK_GEGLU, 2, EaselVkGegluPush),
  FLAT (EASEL_VK_GET_ROWS_F16, 3, EaselVkGetRowsPush),
  FLAT (EASEL_VK_GET_ROWS_F32, 3, EaselVkGetRowsPush),
  [EASEL_VK_GROUP_NORM] = { 4, sizeof (EaselVkGroupNormPush), { 1, 1, 1 }, TRUE },
  FLAT (EASEL_VK_GROUP_NORM_APPLY, 5, EaselVkGroupNormApplyPush),
  [EASEL_VK_GROUP_STATS] = { 2, sizeof (EaselVkGroupNormPush), { 1, 1, 1 }, TRUE },
  [EASEL_VK_LAYER_NORM] = { 4, sizeof (EaselVkLayerNormPush), { 1, 1, 1 }, TRUE },
  [EASEL_VK_LINEAR_COOP] = { 6, sizeof (EaselVkLinearPush), { 64, 64, 1 }, FALSE },
  [EASEL_VK_LINEAR_F16] = { 4, sizeof (EaselVkLinearPush), { 64, 64, 1 }, FALSE },
  [EASEL_VK_LINEAR_F32] = { 4, sizeof (EaselVkLinearPush), { 64, 64, 1 }, FALSE },
  FLAT (EASEL_VK_TIMESTEP_EMBEDDING, 2, EaselVkTimestepPush),
  FLAT (EASEL_VK_UNARY_GELU, 2, EaselVkUnaryPush),
  FLAT (EASEL_VK_UNARY_GELU_TANH, 2, EaselVkUnaryPush),
  FLAT (EASEL_VK_UNARY_QUICK_GELU, 2, EaselVkUnaryPush),
  FLAT (EASEL_VK_UNARY_RELU, 2, EaselVkUnaryPush),
  FLAT (EASEL_VK_UNARY_SCALE, 2, EaselVkUnaryPush),
  FLAT (EASEL_VK_UNARY_SILU, 2, EaselVkUnaryPush),
  FLAT (EASEL_VK_UPSAMPLE_NEAREST, 2, EaselVkUpsamplePush),
};
#undef FLAT

/* in enum order; the same strings as shaders/meson.build's variant list, where names with "_coop"
 * get the device's cooperative-matrix suffix (EaselVkDevice.coopmat) */
static const char *const names[EASEL_VK_N_PIPELINES] = {
  "attention", "attention_coop", "attention_coop_wide", "attention_wide", "avg_pool2d", "binary_add", "binary_mul", "concat", "conv2d_coop", "conv2d_f16",
  "conv2d_f32", "copy", "geglu", "get_rows_f16", "get_rows_f32", "group_norm", "group_norm_apply", "group_stats",
  "layer_norm", "linear_coop", "linear_f16", "linear_f32", "timestep_embedding", "unary_gelu", "unary_gelu_tanh", "unary_quick_gelu", "unary_relu",
  "unary_scale", "unary_silu", "upsample_nearest",
};

const char *
easel_vk_pipeline_name (EaselVkPipelineId id)
{
  return id < EASEL_VK_N_PIPELINES ? names[id] : "?";
}

static const EaselVkSpv *
find_spv (const char *name)
{
  for (guint s = 0; s < G_N_ELEMENTS (easel_vk_spv_table); s++)
    if (strcmp (easel_vk_spv_table[s].name, name) == 0)
      return &easel_vk_spv_table[s];
  return NULL;
}

gboolean
easel_vk_spv_built_in (const char *name)
{
  return find_spv (name) != NULL;
}

static char *
cache_path (EaselVkDevice *dev)
{
  GString *s = g_string_new ("vulkan-pipelines-");
  for (const char *c = dev->info.name; *c; c++)
    g_string_append_c (s, g_ascii_isalnum (*c) ? g_ascii_tolower (*c) : '-');
  g_string_append (s, ".bin");
  char *path = g_build_filename (g_get_user_cache_dir (), "easel", s->str, NULL);
  g_string_free (s, TRUE);
  return path;
}

gboolean
easel_vk_pipelines_init (EaselVkDevice *dev, EaselVkPipelines *pl, GError **error)
{
  VkDescriptorSetLayoutBinding b[EASEL_VK_MAX_BINDINGS];
  g_autofree char *data = NULL;
  gsize size = 0;

  memset (pl, 0, sizeof *pl);
  pl->split_a = g_strcmp0 (g_getenv ("EASEL_VULKAN_FP16_ACTIVATIONS"), "1") != 0;
  for (int id = 0; id < EASEL_VK_N_PIPELINES; id++) {
    EaselVkPipeline *p = &pl->p[id];
    gboolean coop = strstr (names[id], "_coop") != NULL;
    p->name = coop ? g_strdup_printf ("%s_%s", names[id], dev->coopmat ? dev->coopmat : "none") : g_strdup (names[id]);
    p->n_buffers = defs[id].n_buffers;
    p->push_size = defs[id].push_size;
    memcpy (p->wg, defs[id].wg, sizeof p->wg);
    if (coop && g_strcmp0 (dev->coopmat, "khr8") == 0)   /* tiles of 64 x 128, 32 queries at 8x8x8 (shaders/) */
      p->wg[0] = id == EASEL_VK_ATTENTION_COOP || id == EASEL_VK_ATTENTION_COOP_WIDE ? 32 : 64,
      p->wg[1] = id == EASEL_VK_ATTENTION_COOP || id == EASEL_VK_ATTENTION_COOP_WIDE ? 1 : 128;
    p->flat = defs[id].flat;
    /* cooperative variants: NAME is glslc's NV module, NAME_khr its KHR rewrite, NAME_khr8 (shaders/) */
    const EaselVkSpv *spv = find_spv (coop && g_strcmp0 (dev->coopmat, "nv") == 0 ? names[id] : p->name);
    if (spv) {
      p->spv = spv->code;
      p->spv_size = spv->size;
    }
    if (coop) {
      p->failed = spv == NULL;           /* no cooperative matrices here: the plain variant */
      continue;
    }
    if (p->spv == NULL) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_UNSUPPORTED, "vulkan: shader '%s' is not built in", names[id]);
      return FALSE;
    }
  }
  for (guint i = 0; i < EASEL_VK_MAX_BINDINGS; i++)
    b[i] = (VkDescriptorSetLayoutBinding) {
      .binding = i, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = 1,
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    };
  const VkDescriptorSetLayoutCreateInfo li = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO, .bindingCount = EASEL_VK_MAX_BINDINGS, .pBindings = b,
  };
  VK_TRY (vkCreateDescriptorSetLayout (dev->device, &li, NULL, &pl->set_layout));
  const VkPushConstantRange pr = { .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = EASEL_VK_PUSH_MAX };
  const VkPipelineLayoutCreateInfo pli = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .setLayoutCount = 1, .pSetLayouts = &pl->set_layout,
    .pushConstantRangeCount = 1, .pPushConstantRanges = &pr,
  };
  VK_TRY (vkCreatePipelineLayout (dev->device, &pli, NULL, &pl->layout));

  pl->cache_path = cache_path (dev);
  if (!g_file_get_contents (pl->cache_path, &data, &size, NULL))
    size = 0;
  VkPipelineCacheCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO, .initialDataSize = size, .pInitialData = data,
  };
  if (vkCreatePipelineCache (dev->device, &ci, NULL, &pl->cache) != VK_SUCCESS) {
    ci.initialDataSize = 0;      /* a damaged cache file: start empty */
    ci.pInitialData = NULL;
    VK_TRY (vkCreatePipelineCache (dev->device, &ci, NULL, &pl->cache));
  }
  return TRUE;
out:
  return FALSE;
}

static void
save_cache (EaselVkDevice *dev, EaselVkPipelines *pl)
{
  size_t size = 0;
  if (vkGetPipelineCacheData (dev->device, pl->cache, &size, NULL) != VK_SUCCESS || size == 0)
    return;
  g_autofree char *data = g_malloc (size);
  if (vkGetPipelineCacheData (dev->device, pl->cache, &size, data) != VK_SUCCESS)
    return;
  g_autofree char *dir = g_path_get_dirname (pl->cache_path);
  if (g_mkdir_with_parents (dir, 0700) == 0)
    g_file_set_contents (pl->cache_path, data, (gssize) size, NULL);   /* a cache: failing to save is harmless */
}

void
easel_vk_pipelines_clear (EaselVkDevice *dev, EaselVkPipelines *pl)
{
  gboolean any = FALSE;
  for (int id = 0; id < EASEL_VK_N_PIPELINES; id++)
    if (pl->p[id].pipeline) {
      vkDestroyPipeline (dev->device, pl->p[id].pipeline, NULL);
      any = TRUE;
    }
  if (pl->cache) {
    if (any)
      save_cache (dev, pl);
    vkDestroyPipelineCache (dev->device, pl->cache, NULL);
  }
  if (pl->layout)
    vkDestroyPipelineLayout (dev->device, pl->layout, NULL);
  if (pl->set_layout)
    vkDestroyDescriptorSetLayout (dev->device, pl->set_layout, NULL);
  g_free (pl->cache_path);
  for (int id = 0; id < EASEL_VK_N_PIPELINES; id++)
    g_free (pl->p[id].name);
  memset (pl, 0, sizeof *pl);
}

gboolean
easel_vk_pipeline_usable (EaselVkDevice *dev, EaselVkPipelines *pl, EaselVkPipelineId id)
{
  EaselVkPipeline *p = &pl->p[id];
  g_autoptr(GError) error = NULL;
  if (p->failed)
    return FALSE;
  if (p->pipeline || easel_vk_pipeline_get (dev, pl, id, &error))
    return TRUE;
  g_warning ("vulkan: %s is disabled, the scalar variant runs instead: %s", p->name, error->message);
  p->failed = TRUE;
  return FALSE;
}

EaselVkPipeline *
easel_vk_pipeline_get (EaselVkDevice *dev, EaselVkPipelines *pl, EaselVkPipelineId id, GError **error)
{
  EaselVkPipeline *p = &pl->p[id];
  VkShaderModule module = VK_NULL_HANDLE;
  if (p->pipeline)
    return p;
  const VkShaderModuleCreateInfo mi = {
    .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = p->spv_size, .pCode = p->spv,
  };
  VK_TRY (vkCreateShaderModule (dev->device, &mi, NULL, &module));
  /* the cooperative-matrix shaders' constant 0: SPLIT_A */
  const VkSpecializationMapEntry entry = { 0, 0, sizeof (VkBool32) };
  const VkSpecializationInfo spec = { 1, &entry, sizeof (VkBool32), &pl->split_a };
  const VkComputePipelineCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
    .stage = { .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
               .module = module, .pName = "main", .pSpecializationInfo = strstr (p->name, "_coop_") ? &spec : NULL },
    .layout = pl->layout,
  };
  VK_TRY (vkCreateComputePipelines (dev->device, pl->cache, 1, &ci, NULL, &p->pipeline));
  vkDestroyShaderModule (dev->device, module, NULL);
  easel_vk_name (dev, VK_OBJECT_TYPE_PIPELINE, (guint64) (guintptr) p->pipeline, p->name);
  return p;
out:
  if (module)
    vkDestroyShaderModule (dev->device, module, NULL);
  g_prefix_error (error, "shader %s: ", p->name);
  return NULL;
}
