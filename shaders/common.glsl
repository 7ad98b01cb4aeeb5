/* shaders/common.glsl: what every compute shader of Easel shares (STYLE.md V7).
 *
 * Activations are stored as ACT_T (fp32 for now: the exact path; an fp16-storage variant only has
 * to change this define and the C side's element size), weights of the matrix ops as WEIGHT_T:
 * fp16 with -DWEIGHT_F16 (needs storageBuffer16BitAccess), else fp32. Math is fp32 everywhere.
 * Offsets in push constants are in elements of the binding they index. Dispatches fold group
 * counts above maxComputeWorkGroupCount[0] into y (flat_index). */
#extension GL_EXT_control_flow_attributes : enable
#ifdef WEIGHT_F16
#extension GL_EXT_shader_16bit_storage : require
#define WEIGHT_T float16_t
#else
#define WEIGHT_T float
#endif
#define ACT_T float

/* The element of a 1D dispatch folded into (x, y) groups: group (x, y) covers
 * [(y · num_x + x) · local_size, ...). The C side rounds the count up; callers check i < n.
 * Macros, not functions: gl_WorkGroupSize is only known after the shader's layout line, which
 * comes after this header. */
#define flat_group() (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x)
#define flat_index() (flat_group () * gl_WorkGroupSize.x + gl_LocalInvocationID.x)

/* erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): GLSL has no erf. */
float
erf_approx (float x)
{
  const float t = 1.0 / (1.0 + 0.3275911 * abs (x));
  const float y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * exp (-x * x);
  return x < 0.0 ? -y : y;
}

/* tanh without exp overflow: 1 - 2 / (e^{2x} + 1) saturates to ±1 */
float
tanh_stable (float x)
{
  const float e = exp (2.0 * clamp (x, -20.0, 20.0));
  return 1.0 - 2.0 / (e + 1.0);
}

float
gelu_erf (float x)
{
  return 0.5 * x * (1.0 + erf_approx (x * 0.70710678118654752));
}
