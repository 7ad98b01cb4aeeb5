/* shaders/test-coopmat.comp: the test module of tests/test-spirv-coopmat.c, never embedded in
 * libeasel. One subgroup (local_size_x_id 0 = the subgroup size) computes, with M x N x K = 16 x 8 x 16,
 *   c (16, 8) f32 = alpha * (a (16, 16) f16 row-major · bᵀ (8, 16) f16 + c)
 * where b is stored as its transpose (row n of bt is column n of B: a column-major load), so the
 * module has both layouts, all three uses, a product, a length and a store. With -DF16_OUT it also
 * writes the result converted to f16 into d: that converts the accumulator's type into B's type
 * (both f16 16 x 8), which SPV_KHR_cooperative_matrix cannot express, and the translator refuses it. */
#version 450
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

layout (local_size_x_id = 0) in;

layout (push_constant) uniform Push {
  float alpha;
} p;
layout (binding = 0) readonly buffer A { float16_t a[]; };
layout (binding = 1) readonly buffer BT { float16_t bt[]; };
layout (binding = 2) buffer C { float c[]; };
#ifdef F16_OUT
layout (binding = 3) writeonly buffer D { float16_t d[]; };
#endif

void
main ()
{
  fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> ma;
  fcoopmatNV<16, gl_ScopeSubgroup, 16, 8> mb;
  fcoopmatNV<32, gl_ScopeSubgroup, 16, 8> mc;

  coopMatLoadNV (ma, a, 0, 16, false);
  coopMatLoadNV (mb, bt, 0, 16, true);
  coopMatLoadNV (mc, c, 0, 8, false);
  mc = coopMatMulAddNV (ma, mb, mc);
  for (int i = 0; i < mc.length (); i++)
    mc[i] *= p.alpha;
  coopMatStoreNV (mc, c, 0, 8, false);
#ifdef F16_OUT
  fcoopmatNV<16, gl_ScopeSubgroup, 16, 8> md = fcoopmatNV<16, gl_ScopeSubgroup, 16, 8> (mc);
  coopMatStoreNV (md, d, 0, 8, false);
#endif
}
