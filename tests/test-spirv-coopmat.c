/* tests/test-spirv-coopmat.c: the SPV_NV_cooperative_matrix -> SPV_KHR_cooperative_matrix rewrite
 * (shaders/spirv-coopmat.c). shaders/test-coopmat.comp is compiled by glslc at build time and
 * rewritten by the build's spirv-coopmat-khr; this test reads both modules with its own small
 * walker and checks the rewrite against the NV module and the shader's source (shapes, layouts),
 * then feeds the library broken and untranslatable modules. */
#include <string.h>

#include "engine/error.h"
#include "shaders/spirv-coopmat.h"

static const guint32 nv_module[] =
#include "test_coopmat.spv.inc"
;
static const guint32 khr_module[] =
#include "test_coopmat_khr.spv.inc"
;
static const guint32 f16_out_module[] =
#include "test_coopmat_f16_out.spv.inc"
;

#define N_WORDS(a) G_N_ELEMENTS (a)

/* opcodes and enumerants, from the SPIR-V registry (core grammar and the two extension specs) */
enum {
  OP_EXTENSION = 10, OP_CAPABILITY = 17, OP_TYPE_INT = 21, OP_TYPE_FLOAT = 22, OP_CONSTANT_TRUE = 41,
  OP_CONSTANT_FALSE = 42, OP_CONSTANT = 43, OP_SPEC_CONSTANT_TRUE = 48, OP_SPEC_CONSTANT_OP = 52,
  OP_TYPE_COOPMAT_KHR = 4456, OP_LOAD_KHR = 4457, OP_STORE_KHR = 4458, OP_MULADD_KHR = 4459, OP_LENGTH_KHR = 4460,
  OP_TYPE_COOPMAT_NV = 5358, OP_LOAD_NV = 5359, OP_STORE_NV = 5360, OP_MULADD_NV = 5361, OP_LENGTH_NV = 5362,
  CAP_SHADER = 1, CAP_VULKAN_MEMORY_MODEL = 5345, CAP_COOPMAT_NV = 5357, CAP_COOPMAT_KHR = 6022,
};

static guint
op_of (guint32 w)
{
  return w & 0xffff;
}

static guint
wc_of (guint32 w)
{
  return w >> 16;
}

/* the module is SPIR-V and its instructions' word counts walk exactly to its end */
static void
assert_framed (const guint32 *w, gsize n)
{
  gsize at = 5;

  g_assert_cmpuint (n, >=, 5);
  g_assert_cmphex (w[0], ==, 0x07230203);
  g_assert_cmpuint (w[3], >, 0);
  while (at < n) {
    g_assert_cmpuint (wc_of (w[at]), >, 0);
    g_assert_cmpuint (wc_of (w[at]), <=, n - at);
    at += wc_of (w[at]);
  }
  g_assert_cmpuint (at, ==, n);
}

/* offsets of the instructions with opcode op, in order */
static GArray *
find_all (const guint32 *w, gsize n, guint op)
{
  GArray *a = g_array_new (FALSE, FALSE, sizeof (gsize));

  for (gsize at = 5; at < n; at += wc_of (w[at]))
    if (op_of (w[at]) == op)
      g_array_append_val (a, at);
  return a;
}

/* the offset of the instruction declaring id (an OpType* or an OpConstant*); 0 if none */
static gsize
find_decl (const guint32 *w, gsize n, guint32 id)
{
  for (gsize at = 5; at < n; at += wc_of (w[at])) {
    guint op = op_of (w[at]);
    if (((op >= 19 && op <= 39) || op == OP_TYPE_COOPMAT_KHR || op == OP_TYPE_COOPMAT_NV) && w[at + 1] == id)
      return at;
    if (op >= 41 && op <= 52 && wc_of (w[at]) >= 3 && w[at + 2] == id)
      return at;
  }
  return 0;
}

/* the value of the 32-bit OpConstant id, which must be declared (with its int type) before `before` */
static guint32
constant_before (const guint32 *w, gsize n, guint32 id, gsize before)
{
  gsize at = find_decl (w, n, id), type_at;

  g_assert_cmpuint (at, >, 0);
  g_assert_cmpuint (at, <, before);
  g_assert_cmpuint (op_of (w[at]), ==, OP_CONSTANT);
  g_assert_cmpuint (wc_of (w[at]), ==, 4);
  type_at = find_decl (w, n, w[at + 1]);
  g_assert_cmpuint (type_at, >, 0);
  g_assert_cmpuint (type_at, <, at);
  g_assert_cmpuint (op_of (w[type_at]), ==, OP_TYPE_INT);
  g_assert_cmpuint (w[type_at + 2], ==, 32);
  return w[at + 3];
}

/* the literal string at words [first, end) as a C string (NULL unless terminated inside) */
static char *
string_at (const guint32 *w, gsize first, gsize end)
{
  GString *s = g_string_new (NULL);

  for (gsize k = 0; first + k / 4 < end; k++) {
    char c = (char) ((w[first + k / 4] >> (8 * (k % 4))) & 0xff);
    if (c == 0)
      return g_string_free (s, FALSE);
    g_string_append_c (s, c);
  }
  g_string_free (s, TRUE);
  return NULL;
}

static gboolean
has_capability (const guint32 *w, gsize n, guint32 cap)
{
  g_autoptr(GArray) a = find_all (w, n, OP_CAPABILITY);

  for (guint i = 0; i < a->len; i++)
    if (w[g_array_index (a, gsize, i) + 1] == cap)
      return TRUE;
  return FALSE;
}

static gboolean
has_extension (const guint32 *w, gsize n, const char *name)
{
  g_autoptr(GArray) a = find_all (w, n, OP_EXTENSION);

  for (guint i = 0; i < a->len; i++) {
    gsize at = g_array_index (a, gsize, i);
    g_autofree char *s = string_at (w, at + 1, at + wc_of (w[at]));
    if (g_strcmp0 (s, name) == 0)
      return TRUE;
  }
  return FALSE;
}

/* (component width, rows, columns) of the cooperative matrix type id, from its constants */
static void
shape_of (const guint32 *w, gsize n, guint32 type_id, guint32 shape[3])
{
  gsize at = find_decl (w, n, type_id), comp;

  g_assert_cmpuint (at, >, 0);
  comp = find_decl (w, n, w[at + 2]);
  g_assert_cmpuint (op_of (w[comp]), ==, OP_TYPE_FLOAT);
  shape[0] = w[comp + 2];
  shape[1] = constant_before (w, n, w[at + 4], at);
  shape[2] = constant_before (w, n, w[at + 5], at);
}

static guint
count_length_ops (const guint32 *w, gsize n, guint op)
{
  guint k = 0;

  for (gsize at = 5; at < n; at += wc_of (w[at]))
    k += op_of (w[at]) == op || (op_of (w[at]) == OP_SPEC_CONSTANT_OP && w[at + 3] == op);
  return k;
}

/* The build's rewrite of test-coopmat.comp, instruction by instruction against glslc's NV module. */
static void
test_translated_module (void)
{
  const guint32 *nv = nv_module, *khr = khr_module;
  gsize n_nv = N_WORDS (nv_module), n_khr = N_WORDS (khr_module);
  guint32 bound_nv = nv[3], bound_khr = khr[3];
  g_autoptr(GArray) types = find_all (khr, n_khr, OP_TYPE_COOPMAT_KHR);
  g_autoptr(GArray) loads_nv = find_all (nv, n_nv, OP_LOAD_NV), loads = find_all (khr, n_khr, OP_LOAD_KHR);
  g_autoptr(GArray) stores_nv = find_all (nv, n_nv, OP_STORE_NV), stores = find_all (khr, n_khr, OP_STORE_KHR);
  g_autoptr(GArray) mul_nv = find_all (nv, n_nv, OP_MULADD_NV), mul = find_all (khr, n_khr, OP_MULADD_KHR);
  g_autofree gboolean *declared = NULL;
  gsize a, b;

  assert_framed (nv, n_nv);
  assert_framed (khr, n_khr);
  g_assert_true (has_capability (nv, n_nv, CAP_COOPMAT_NV));
  g_assert_true (has_extension (nv, n_nv, "SPV_NV_cooperative_matrix"));

  /* no NV left, the KHR capability and extension in */
  g_assert_false (has_capability (khr, n_khr, CAP_COOPMAT_NV));
  g_assert_true (has_capability (khr, n_khr, CAP_COOPMAT_KHR));
  g_assert_true (has_capability (khr, n_khr, CAP_VULKAN_MEMORY_MODEL));
  g_assert_false (has_extension (khr, n_khr, "SPV_NV_cooperative_matrix"));
  g_assert_true (has_extension (khr, n_khr, "SPV_KHR_cooperative_matrix"));
  for (gsize at = 5; at < n_khr; at += wc_of (khr[at])) {
    g_assert_true (op_of (khr[at]) < OP_TYPE_COOPMAT_NV || op_of (khr[at]) > OP_LENGTH_NV);
    g_assert_true (op_of (khr[at]) != OP_SPEC_CONSTANT_OP || khr[at + 3] < OP_TYPE_COOPMAT_NV ||
                   khr[at + 3] > OP_LENGTH_NV);
  }
  g_assert_cmpuint (count_length_ops (nv, n_nv, OP_LENGTH_NV), >=, 1);   /* mc.length () */
  g_assert_cmpuint (count_length_ops (khr, n_khr, OP_LENGTH_KHR), ==, count_length_ops (nv, n_nv, OP_LENGTH_NV));

  /* the three types, with the uses the shader's product gives them: A f16 16x16, B f16 16x8, C f32 16x8 */
  g_assert_cmpuint (types->len, ==, 3);
  for (guint i = 0; i < types->len; i++) {
    gsize at = g_array_index (types, gsize, i);
    guint32 shape[3], use, want;
    g_assert_cmpuint (wc_of (khr[at]), ==, 7);
    shape_of (khr, n_khr, khr[at + 1], shape);
    use = constant_before (khr, n_khr, khr[at + 6], at);
    want = shape[0] == 32 ? 2 : shape[2] == 16 ? 0 : 1;
    g_assert_cmpuint (shape[1], ==, 16);
    g_assert_cmpuint (use, ==, want);
  }

  /* loads: (rt res ptr stride colmajor mem) -> (rt res ptr layout stride mem); the shader loads a
   * row-major, bt column-major, c row-major, and stores c row-major */
  g_assert_cmpuint (loads->len, ==, 3);
  g_assert_cmpuint (loads_nv->len, ==, 3);
  for (guint i = 0; i < loads->len; i++) {
    const guint32 *k = khr + g_array_index (loads, gsize, i), *v = nv + g_array_index (loads_nv, gsize, i);
    g_assert_cmpuint (wc_of (k[0]), ==, wc_of (v[0]));
    g_assert_cmpuint (k[1], ==, v[1]);
    g_assert_cmpuint (k[2], ==, v[2]);
    g_assert_cmpuint (k[3], ==, v[3]);
    g_assert_cmpuint (constant_before (khr, n_khr, k[4], k - khr), ==, i == 1 ? 1 : 0);
    g_assert_cmpuint (op_of (nv[find_decl (nv, n_nv, v[5])]), ==, i == 1 ? OP_CONSTANT_TRUE : OP_CONSTANT_FALSE);
    g_assert_cmpuint (k[5], ==, v[4]);
    for (guint j = 6; j < wc_of (k[0]); j++)
      g_assert_cmpuint (k[j], ==, v[j]);
  }
  g_assert_cmpuint (stores->len, ==, 1);
  g_assert_cmpuint (stores_nv->len, ==, 1);
  a = g_array_index (stores, gsize, 0);
  b = g_array_index (stores_nv, gsize, 0);
  g_assert_cmpuint (wc_of (khr[a]), ==, wc_of (nv[b]));
  g_assert_cmpuint (khr[a + 1], ==, nv[b + 1]);
  g_assert_cmpuint (khr[a + 2], ==, nv[b + 2]);
  g_assert_cmpuint (constant_before (khr, n_khr, khr[a + 3], a), ==, 0);
  g_assert_cmpuint (khr[a + 4], ==, nv[b + 3]);
  g_assert_cmpuint (mul->len, ==, 1);
  g_assert_cmpuint (mul_nv->len, ==, 1);
  a = g_array_index (mul, gsize, 0);
  b = g_array_index (mul_nv, gsize, 0);
  g_assert_cmpuint (wc_of (khr[a]), ==, 6);   /* float: no Cooperative Matrix Operands */
  g_assert_cmpmem (khr + a + 1, 5 * 4, nv + b + 1, 5 * 4);

  /* every other instruction is copied; the new ones are 32-bit int constants whose ids fill
   * [bound_nv, bound_khr) once each */
  g_assert_cmpuint (bound_khr, >, bound_nv);
  g_assert_cmpuint (bound_khr, <=, bound_nv + 5);   /* at most three uses and two layouts */
  declared = g_new0 (gboolean, bound_khr);
  a = 5;
  b = 5;
  while (a < n_khr) {
    guint op = op_of (khr[a]);
    if (op == OP_CONSTANT && khr[a + 2] >= bound_nv) {
      g_assert_cmpuint (khr[a + 2], <, bound_khr);
      g_assert_false (declared[khr[a + 2]]);
      declared[khr[a + 2]] = TRUE;
      a += wc_of (khr[a]);
      continue;
    }
    g_assert_cmpuint (b, <, n_nv);
    if (op >= OP_TYPE_COOPMAT_KHR && op <= OP_LENGTH_KHR) {
      static const guint n_ids[] = { 6, 5, 4, 5, 3 };   /* id operands of each KHR instruction */
      for (guint j = 1; j <= n_ids[op - OP_TYPE_COOPMAT_KHR]; j++)
        g_assert_cmpuint (khr[a + j], <, bound_khr);
      g_assert_cmpuint (op_of (nv[b]), ==, op - OP_TYPE_COOPMAT_KHR + OP_TYPE_COOPMAT_NV);
    } else if (op == OP_CAPABILITY) {
      g_assert_cmpuint (khr[a + 1], ==, nv[b + 1] == CAP_COOPMAT_NV ? CAP_COOPMAT_KHR : nv[b + 1]);
    } else if (op == OP_EXTENSION) {
      g_autofree char *sk = string_at (khr, a + 1, a + wc_of (khr[a])), *sn = string_at (nv, b + 1, b + wc_of (nv[b]));
      g_assert_cmpstr (sk, ==, g_str_equal (sn, "SPV_NV_cooperative_matrix") ? "SPV_KHR_cooperative_matrix" : sn);
    } else {
      g_assert_cmpuint (khr[a], ==, nv[b]);
      for (guint j = 1; j < wc_of (khr[a]); j++)
        g_assert_cmpuint (khr[a + j], ==, op == OP_SPEC_CONSTANT_OP && j == 3 && nv[b + j] == OP_LENGTH_NV ?
                          OP_LENGTH_KHR : nv[b + j]);
    }
    a += wc_of (khr[a]);
    b += wc_of (nv[b]);
  }
  g_assert_cmpuint (b, ==, n_nv);
  for (guint32 id = bound_nv; id < bound_khr; id++)
    g_assert_true (declared[id]);
}

/* The build step (spirv-coopmat-khr --c-array) writes what the library returns. */
static void
test_tool_matches_library (void)
{
  g_autoptr(GError) error = NULL;
  gsize n = 0;
  g_autofree guint32 *out = easel_spirv_coopmat_nv_to_khr (nv_module, N_WORDS (nv_module), &n, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, N_WORDS (khr_module));
  g_assert_cmpmem (out, n * 4, khr_module, sizeof khr_module);
}

/* a copy of the NV module to break */
static guint32 *
nv_copy (void)
{
  return g_memdup2 (nv_module, sizeof nv_module);
}

static void
assert_refused (const guint32 *w, gsize n, int code, const char *part1, const char *part2)
{
  g_autoptr(GError) error = NULL;
  gsize n_out = 0;
  g_autofree guint32 *out = easel_spirv_coopmat_nv_to_khr (w, n, &n_out, &error);

  g_assert_null (out);
  g_assert_error (error, EASEL_ERROR, code);
  if (strstr (error->message, part1) == NULL || (part2 && strstr (error->message, part2) == NULL))
    g_error ("message \"%s\" lacks \"%s\" or \"%s\"", error->message, part1, part2 ? part2 : "");
}

/* the offset of the first instruction of opcode op in w */
static gsize
first_of (const guint32 *w, gsize n, guint op)
{
  g_autoptr(GArray) a = find_all (w, n, op);

  g_assert_cmpuint (a->len, >, 0);
  return g_array_index (a, gsize, 0);
}

/* Well-formed modules the KHR extension cannot express, each refused with the reason. */
static void
test_refused (void)
{
  gsize n = N_WORDS (nv_module), at;
  g_autoptr(GArray) caps = find_all (nv_module, n, OP_CAPABILITY);

  /* the accumulator converted to f16 16x8, which is B's type (test-coopmat.comp -DF16_OUT) */
  assert_refused (f16_out_module, N_WORDS (f16_out_module), EASEL_ERROR_UNSUPPORTED, "used as matrix B", "converts to or from");

  { /* one type as A and as B */
    g_autofree guint32 *w = nv_copy ();
    at = first_of (w, n, OP_MULADD_NV);
    w[at + 4] = w[at + 3];
    assert_refused (w, n, EASEL_ERROR_UNSUPPORTED, "used as matrix B here", "used as matrix A");
  }
  { /* a specialization-constant layout */
    g_autofree guint32 *w = nv_copy ();
    at = first_of (w, n, OP_CONSTANT_TRUE);
    w[at] = (w[at] & 0xffff0000u) | OP_SPEC_CONSTANT_TRUE;
    assert_refused (w, n, EASEL_ERROR_UNSUPPORTED, "specialization constant", NULL);
  }
  { /* a layout that is not a bool constant (the stride's id) */
    g_autofree guint32 *w = nv_copy ();
    at = first_of (w, n, OP_LOAD_NV);
    w[at + 5] = w[at + 4];
    assert_refused (w, n, EASEL_ERROR_UNSUPPORTED, "not OpConstantTrue or OpConstantFalse", NULL);
  }
  for (guint i = 0; i < caps->len; i++) {
    g_autofree guint32 *w = nv_copy ();
    at = g_array_index (caps, gsize, i);
    if (w[at + 1] == CAP_VULKAN_MEMORY_MODEL) {
      w[at + 1] = CAP_SHADER;
      assert_refused (w, n, EASEL_ERROR_UNSUPPORTED, "VulkanMemoryModel", NULL);
    } else if (w[at + 1] == CAP_COOPMAT_NV) {
      w[at + 1] = CAP_SHADER;
      assert_refused (w, n, EASEL_ERROR_UNSUPPORTED, "nothing to translate", NULL);
    }
  }
}

/* Integer matrices: NV's signedness is the component type's, KHR's the product's operand bits. */
static void
test_signed_components (void)
{
  gsize n = N_WORDS (nv_module);
  g_autoptr(GArray) ints = find_all (nv_module, n, OP_TYPE_INT);
  g_autoptr(GArray) types = find_all (nv_module, n, OP_TYPE_COOPMAT_NV);

  for (guint i = 0; i < ints->len; i++) {
    g_autofree guint32 *w = nv_copy ();
    g_autofree guint32 *out = NULL;
    g_autoptr(GError) error = NULL;
    gsize at = g_array_index (ints, gsize, i), n_out = 0, mul;
    gboolean is_signed = w[at + 3] != 0;
    /* every matrix of the module with this int as its component type (not a valid shader for any
     * driver, but the rewrite reads only the signedness) */
    for (guint t = 0; t < types->len; t++)
      w[g_array_index (types, gsize, t) + 2] = w[at + 1];
    out = easel_spirv_coopmat_nv_to_khr (w, n, &n_out, &error);
    g_assert_no_error (error);
    assert_framed (out, n_out);
    mul = first_of (out, n_out, OP_MULADD_KHR);
    if (is_signed) {
      g_assert_cmpuint (wc_of (out[mul]), ==, 7);
      g_assert_cmphex (out[mul + 6], ==, 0x1 | 0x2 | 0x4 | 0x8);   /* Matrix{A,B,C,Result}SignedComponentsKHR */
    } else {
      g_assert_cmpuint (wc_of (out[mul]), ==, 6);
    }
  }
  g_assert_cmpuint (ints->len, >=, 2);   /* glslang declares both int and uint for this shader */
}

static void
append_words (GArray *a, guint32 head, const guint32 *ops, guint n)
{
  g_array_append_val (a, head);
  g_array_append_vals (a, ops, n);
}

/* a module of capabilities, extensions and a memory model only: the string re-encoded, the word
 * count following it, other extensions kept */
static void
test_preamble_only (void)
{
  g_autoptr(GArray) a = g_array_new (FALSE, FALSE, sizeof (guint32));
  static const guint32 header[] = { 0x07230203, 0x00010500, 0, 7, 0 };
  static const guint32 caps[] = { CAP_SHADER, CAP_VULKAN_MEMORY_MODEL, CAP_COOPMAT_NV };
  /* "SPV_NV_cooperative_matrix": 25 bytes and a NUL in 7 words */
  static const guint32 nv_ext[] = { 0x5f565053, 0x635f564e, 0x65706f6f, 0x69746172, 0x6d5f6576, 0x69727461, 0x00000078 };
  static const guint32 other_ext[] = { 0x5f565053, 0x0000584e };   /* "SPV_NX" */
  static const guint32 model[] = { 0, 3 };   /* Logical Vulkan */
  g_autoptr(GError) error = NULL;
  g_autofree guint32 *out = NULL;
  g_autofree char *s = NULL;
  gsize n = 0, at;

  g_array_append_vals (a, header, 5);
  for (guint i = 0; i < G_N_ELEMENTS (caps); i++)
    append_words (a, 2u << 16 | OP_CAPABILITY, caps + i, 1);
  append_words (a, 8u << 16 | OP_EXTENSION, nv_ext, 7);
  append_words (a, 3u << 16 | OP_EXTENSION, other_ext, 2);
  append_words (a, 3u << 16 | 14, model, 2);

  out = easel_spirv_coopmat_nv_to_khr ((guint32 *) a->data, a->len, &n, &error);
  g_assert_no_error (error);
  assert_framed (out, n);
  g_assert_cmpuint (out[3], ==, 7);   /* no new ids */
  g_assert_true (has_capability (out, n, CAP_COOPMAT_KHR));
  g_assert_false (has_capability (out, n, CAP_COOPMAT_NV));
  g_assert_true (has_extension (out, n, "SPV_NX"));
  at = first_of (out, n, OP_EXTENSION);
  s = string_at (out, at + 1, at + wc_of (out[at]));
  g_assert_cmpstr (s, ==, "SPV_KHR_cooperative_matrix");
  g_assert_cmpuint (wc_of (out[at]), ==, 1 + (26 + 1 + 3) / 4);
  g_assert_cmphex (out[at + wc_of (out[at]) - 1] >> 16, ==, 0);   /* the NUL and zero padding */

  /* a cooperative matrix type before any 32-bit int type */
  {
    static const guint32 half[] = { 5, 16 }, coop[] = { 6, 5, 1, 2, 3 };
    g_autofree guint32 *out2 = NULL;
    g_autoptr(GError) error2 = NULL;
    append_words (a, 3u << 16 | OP_TYPE_FLOAT, half, 2);
    append_words (a, 6u << 16 | OP_TYPE_COOPMAT_NV, coop, 5);
    out2 = easel_spirv_coopmat_nv_to_khr ((guint32 *) a->data, a->len, &n, &error2);
    g_assert_null (out2);
    g_assert_error (error2, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);
    g_assert_nonnull (strstr (error2->message, "no 32-bit OpTypeInt"));
  }
}

/* Malformed modules: a message and NULL, never a read outside the words (run under ASan). */
static void
test_malformed (void)
{
  gsize n = N_WORDS (nv_module), last = 5, at;
  static const guint32 words_to_try[] = { 0, 1, 0xffffffffu, 0x00010000u, 0xffff0000u };

  for (at = 5; at < n; at += wc_of (nv_module[at]))
    last = at;

  assert_refused (nv_module, 0, EASEL_ERROR_INVALID_FILE, "header", NULL);
  assert_refused (nv_module, 4, EASEL_ERROR_INVALID_FILE, "header", NULL);
  {
    g_autofree guint32 *w = nv_copy ();
    w[0] = 0x12345678;
    assert_refused (w, n, EASEL_ERROR_INVALID_FILE, "magic", NULL);
    w[0] = GUINT32_SWAP_LE_BE (0x07230203u);
    assert_refused (w, n, EASEL_ERROR_UNSUPPORTED, "byte-swapped", NULL);
  }
  {
    g_autofree guint32 *w = nv_copy ();
    w[3] = 0;
    assert_refused (w, n, EASEL_ERROR_INVALID_FILE, "id bound", NULL);
    w[3] = EASEL_SPIRV_ID_LIMIT + 1;
    assert_refused (w, n, EASEL_ERROR_INVALID_FILE, "id bound", NULL);
  }
  {
    g_autofree guint32 *w = nv_copy ();
    w[last] &= 0xffff;
    assert_refused (w, n, EASEL_ERROR_INVALID_FILE, "word count 0", NULL);
    w[last] |= 2u << 16;   /* OpFunctionEnd has one word */
    assert_refused (w, n, EASEL_ERROR_INVALID_FILE, "runs past the end", NULL);
  }
  {
    g_autofree guint32 *w = nv_copy ();
    at = first_of (w, n, OP_TYPE_COOPMAT_NV);
    w[at + 2] = w[3];   /* the component type id = the bound */
    assert_refused (w, n, EASEL_ERROR_INVALID_FILE, "outside the id bound", NULL);
  }

  /* every prefix, and every word replaced by a few values: a module or an error, nothing else */
  for (gsize len = 0; len < n; len++) {
    g_autoptr(GError) error = NULL;
    gsize n_out = 0;
    g_autofree guint32 *out = easel_spirv_coopmat_nv_to_khr (nv_module, len, &n_out, &error);
    if (out)
      assert_framed (out, n_out);
    else
      g_assert_nonnull (error);
  }
  for (gsize i = 0; i < n; i++)
    for (guint k = 0; k < G_N_ELEMENTS (words_to_try); k++) {
      g_autofree guint32 *w = nv_copy ();
      g_autoptr(GError) error = NULL;
      g_autofree guint32 *out = NULL;
      gsize n_out = 0;
      w[i] = k == 1 ? w[i] ^ 1 : words_to_try[k];
      out = easel_spirv_coopmat_nv_to_khr (w, n, &n_out, &error);
      if (out)
        assert_framed (out, n_out);
      else
        g_assert_nonnull (error);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/spirv-coopmat/translated-module", test_translated_module);
  g_test_add_func ("/spirv-coopmat/tool-matches-library", test_tool_matches_library);
  g_test_add_func ("/spirv-coopmat/refused", test_refused);
  g_test_add_func ("/spirv-coopmat/signed-components", test_signed_components);
  g_test_add_func ("/spirv-coopmat/preamble-only", test_preamble_only);
  g_test_add_func ("/spirv-coopmat/malformed", test_malformed);
  return g_test_run ();
}
