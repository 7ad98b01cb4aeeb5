/* shaders/spirv-coopmat.c: SPIR-V to SPIR-V, SPV_NV_cooperative_matrix -> SPV_KHR_cooperative_matrix.
 *
 * Why: Debian 12's glslc (shaderc 2023.2, glslang 12) compiles GL_NV_cooperative_matrix but not
 * GL_KHR_cooperative_matrix, and CI builds with Debian 12 packages only. The KHR extension grew out
 * of the NV one (its revision 1 is NV's) and keeps its model: the same matrices, scopes, strides in
 * elements of the pointee, the same composite and arithmetic rules. So a cooperative-matrix shader
 * is written once against GL_NV_cooperative_matrix, and the build embeds glslc's module (for
 * VK_NV_cooperative_matrix devices) and this file's rewrite of it (for VK_KHR_cooperative_matrix).
 *
 * The rewrite (opcodes and operand orders from the SPIR-V registry: SPIRV-Headers
 * spirv.core.grammar.json and the two extension specs):
 *   OpCapability CooperativeMatrixNV (5357)           -> CooperativeMatrixKHR (6022)
 *   OpExtension "SPV_NV_cooperative_matrix"           -> "SPV_KHR_cooperative_matrix"
 *   5358 OpTypeCooperativeMatrixNV res comp scope rows cols
 *                                                     -> 4456 OpTypeCooperativeMatrixKHR ... cols Use
 *   5359 OpCooperativeMatrixLoadNV rt res ptr stride colmajor [mem]
 *                                                     -> 4457 ...LoadKHR rt res ptr layout stride [mem]
 *   5360 OpCooperativeMatrixStoreNV ptr obj stride colmajor [mem]
 *                                                     -> 4458 ...StoreKHR ptr obj layout stride [mem]
 *   5361 OpCooperativeMatrixMulAddNV rt res A B C     -> 4459 ...MulAddKHR rt res A B C [operands]
 *   5362 OpCooperativeMatrixLengthNV rt res type      -> 4460 ...LengthKHR (also where glslang folds
 *                                                        .length() into an OpSpecConstantOp)
 *
 * The rules a shader must follow (anything else is refused with a message, never mistranslated):
 *  - Use. A KHR type carries one Use (MatrixA 0, MatrixB 1, MatrixAccumulator 2); an NV type has
 *    none and is structural: fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> is one type wherever it is
 *    written. The use of each type is deduced: in OpCooperativeMatrixMulAddNV, A's type is MatrixA,
 *    B's is MatrixB, C's and the result type are MatrixAccumulator; types joined by a conversion
 *    (OpFConvert, OpSConvert, OpUConvert, OpConvert{F,S,U}To{S,U,F}, OpBitcast) share a use, as the
 *    KHR spec requires of a conversion's operand and result; a type no product reaches is
 *    MatrixAccumulator. A type that would need two uses is an error. So give A, B and C types that
 *    differ: M x N x K = 16 x 8 x 16 (A 16x16 f16, B 16x8 f16, C 16x8 f32), not 16 x 16 x 16 with
 *    f16 A and B (one type); and do not convert the accumulator into a type that also serves as A
 *    or B (16x8 f32 C -> 16x8 f16 is B's type above): store C as f32, or convert element by element.
 *  - Layout. NV's column-major operand must be OpConstantTrue (-> ColumnMajorKHR) or
 *    OpConstantFalse (-> RowMajorKHR): KHR wants a constant layout, so a specialization constant or
 *    a run-time bool is refused.
 *  - Memory model. KHR requires the VulkanMemoryModel capability with CooperativeMatrixKHR; glslang
 *    declares it for every GL_NV_cooperative_matrix shader, and a module without it is refused.
 *  - Integer matrices: NV takes signedness from the component type, KHR from operand bits: a signed
 *    component type sets Matrix{A,B,C,Result}SignedComponentsKHR on the product.
 * New ids: the Use and layout values are new 32-bit int constants (of the module's first 32-bit
 * OpTypeInt, which the rows and columns constants already need: a module whose first cooperative
 * matrix type comes before any 32-bit int type is refused), declared just before the first
 * OpTypeCooperativeMatrixNV; the header's id bound grows by their count.
 *
 * Seen while testing (Debian 12's glslc, Mesa 26 lavapipe): glslc -O crashes on a sum of two
 * cooperative matrices (x + y; fine without -O), and lavapipe fails pipeline creation for the
 * OpSpecConstantOp CooperativeMatrixLengthKHR that glslang makes of m.length () (spirv-val accepts
 * it); loads, stores in both layouts, arithmetic and element access ran exactly there.
 *
 * Input is treated as hostile (it is a build product, but the fuzz target feeds it anything): the
 * framing is checked before any instruction is read, every id is checked against the bound before
 * it indexes a table, and every operand read is inside its instruction's word count. */
#include "spirv-coopmat.h"

#include <string.h>

#include "engine/error.h"

#define SPIRV_MAGIC 0x07230203u

enum {
  OP_SOURCE_CONTINUED = 2, OP_SOURCE = 3, OP_SOURCE_EXTENSION = 4, OP_NAME = 5, OP_MEMBER_NAME = 6,
  OP_STRING = 7, OP_LINE = 8, OP_EXTENSION = 10, OP_EXT_INST_IMPORT = 11, OP_MEMORY_MODEL = 14,
  OP_ENTRY_POINT = 15, OP_EXECUTION_MODE = 16, OP_CAPABILITY = 17, OP_TYPE_INT = 21, OP_TYPE_FLOAT = 22,
  OP_CONSTANT_TRUE = 41, OP_CONSTANT_FALSE = 42, OP_CONSTANT = 43, OP_SPEC_CONSTANT_TRUE = 48,
  OP_SPEC_CONSTANT_FALSE = 49, OP_SPEC_CONSTANT_OP = 52, OP_DECORATE = 71, OP_MEMBER_DECORATE = 72,
  OP_DECORATION_GROUP = 73, OP_GROUP_DECORATE = 74, OP_GROUP_MEMBER_DECORATE = 75,
  OP_CONVERT_F_TO_U = 109, OP_F_CONVERT = 115, OP_BITCAST = 124, OP_NO_LINE = 317,
  OP_MODULE_PROCESSED = 330, OP_EXECUTION_MODE_ID = 331, OP_DECORATE_ID = 332,
  OP_DECORATE_STRING = 5632, OP_MEMBER_DECORATE_STRING = 5633,
  OP_TYPE_COOPMAT_KHR = 4456, OP_COOPMAT_LOAD_KHR = 4457, OP_COOPMAT_STORE_KHR = 4458,
  OP_COOPMAT_MULADD_KHR = 4459, OP_COOPMAT_LENGTH_KHR = 4460,
  OP_TYPE_COOPMAT_NV = 5358, OP_COOPMAT_LOAD_NV = 5359, OP_COOPMAT_STORE_NV = 5360,
  OP_COOPMAT_MULADD_NV = 5361, OP_COOPMAT_LENGTH_NV = 5362,
};

enum { CAP_VULKAN_MEMORY_MODEL = 5345, CAP_COOPMAT_NV = 5357, CAP_COOPMAT_KHR = 6022 };

/* Cooperative Matrix Use values; USE_NONE: not deduced yet */
enum { USE_A = 0, USE_B = 1, USE_ACC = 2, USE_NONE = 3 };
static const char *const use_names[] = { "matrix A", "matrix B", "the accumulator" };

/* Cooperative Matrix Layout values */
enum { LAYOUT_ROW = 0, LAYOUT_COL = 1 };

/* Cooperative Matrix Operands bits */
enum { SIGNED_A = 0x1, SIGNED_B = 0x2, SIGNED_C = 0x4, SIGNED_RESULT = 0x8 };

/* what declared an id: bits of Module.def */
enum { DEF_INT = 1, DEF_SIGNED = 2, DEF_INT32 = 4, DEF_TRUE = 8, DEF_FALSE = 16, DEF_SPEC_BOOL = 32 };

typedef struct {
  guint32 id;          /* result id of its OpTypeCooperativeMatrixNV */
  guint32 component;   /* component type id */
  guint32 rows, cols;  /* ids */
  guint32 parent;      /* union-find over types that must share a use: an index into Module.types */
  guint use;           /* USE_*: on a root, the class's use */
  gsize use_at;        /* on a root: word offset of the instruction that fixed the use */
  guint32 use_type;    /* on a root: the type id that instruction named */
} CoopType;

typedef struct {
  const guint32 *w;
  gsize n;                /* words */
  guint32 bound;
  guint8 *def;            /* per id: DEF_* bits */
  guint32 *type_index;    /* per id: 1 + index into types for a cooperative matrix type, else 0 */
  guint32 *value_type;    /* per id: the cooperative matrix type id of a value of one, else 0 */
  GArray *types;          /* CoopType, in declaration order */
  gsize first_coop_at;    /* word offset of the first OpTypeCooperativeMatrixNV; 0: none */
  gsize int32_at;         /* word offset of the first 32-bit OpTypeInt; 0: none */
  guint32 int32_id;
  gboolean has_nv_cap, has_nv_ext, has_vulkan_memory_model;
  gboolean need[3];       /* int constants 0, 1, 2 used as a Use or a layout */
  GError **error;
} Module;

static gboolean G_GNUC_PRINTF (4, 5)
fail_at (Module *m, int code, gsize at, const char *fmt, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;

  va_start (ap, fmt);
  msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_set_error (m->error, EASEL_ERROR, code, "SPIR-V word %" G_GSIZE_FORMAT ": %s", at, msg);
  return FALSE;
}

static guint
opcode (const Module *m, gsize at)
{
  return m->w[at] & 0xffff;
}

static guint
word_count (const Module *m, gsize at)
{
  return m->w[at] >> 16;
}

/* the header and the instruction framing: afterwards every instruction's words lie inside w */
static gboolean
check_frame (Module *m)
{
  if (m->n < 5)
    return fail_at (m, EASEL_ERROR_INVALID_FILE, 0, "%" G_GSIZE_FORMAT " words is shorter than the 5-word header", m->n);
  if (m->w[0] == GUINT32_SWAP_LE_BE (SPIRV_MAGIC))
    return fail_at (m, EASEL_ERROR_UNSUPPORTED, 0, "byte-swapped module: only host byte order is read");
  if (m->w[0] != SPIRV_MAGIC)
    return fail_at (m, EASEL_ERROR_INVALID_FILE, 0, "magic 0x%08x is not SPIR-V's 0x%08x", m->w[0], SPIRV_MAGIC);
  m->bound = m->w[3];
  if (m->bound == 0 || m->bound > EASEL_SPIRV_ID_LIMIT)
    return fail_at (m, EASEL_ERROR_INVALID_FILE, 3, "id bound %u is outside 1..%u", m->bound, EASEL_SPIRV_ID_LIMIT);
  for (gsize at = 5; at < m->n; at += word_count (m, at)) {
    if (word_count (m, at) == 0)
      return fail_at (m, EASEL_ERROR_INVALID_FILE, at, "instruction (opcode %u) has word count 0", opcode (m, at));
    if (word_count (m, at) > m->n - at)
      return fail_at (m, EASEL_ERROR_INVALID_FILE, at, "instruction (opcode %u, %u words) runs past the end of the %" G_GSIZE_FORMAT "-word module",
                      opcode (m, at), word_count (m, at), m->n);
  }
  return TRUE;
}

/* the instruction at `at` has at least `min` words (exactly, when exact) */
static gboolean
check_words (Module *m, gsize at, guint min, gboolean exact, const char *name)
{
  guint wc = word_count (m, at);

  if (wc < min || (exact && wc != min))
    return fail_at (m, EASEL_ERROR_INVALID_FILE, at, "%s has %u words, not %s%u", name, wc, exact ? "" : "at least ", min);
  return TRUE;
}

/* operand k (1-based word index) of the instruction at `at` is an id inside the bound */
static gboolean
check_id (Module *m, gsize at, guint k)
{
  guint32 id = m->w[at + k];

  if (id == 0 || id >= m->bound)
    return fail_at (m, EASEL_ERROR_INVALID_FILE, at, "id %u (operand word %u of opcode %u) is outside the id bound %u",
                    id, k, opcode (m, at), m->bound);
  return TRUE;
}

static gboolean
check_ids (Module *m, gsize at, guint first, guint last)
{
  for (guint k = first; k <= last; k++)
    if (!check_id (m, at, k))
      return FALSE;
  return TRUE;
}

/* instructions of the sections before types and constants (capabilities to annotations) */
static gboolean
is_preamble (guint op)
{
  switch (op) {
  case OP_SOURCE_CONTINUED: case OP_SOURCE: case OP_SOURCE_EXTENSION: case OP_NAME: case OP_MEMBER_NAME:
  case OP_STRING: case OP_EXTENSION: case OP_EXT_INST_IMPORT: case OP_MEMORY_MODEL: case OP_ENTRY_POINT:
  case OP_EXECUTION_MODE: case OP_CAPABILITY: case OP_DECORATE: case OP_MEMBER_DECORATE:
  case OP_DECORATION_GROUP: case OP_GROUP_DECORATE: case OP_GROUP_MEMBER_DECORATE: case OP_MODULE_PROCESSED:
  case OP_EXECUTION_MODE_ID: case OP_DECORATE_ID: case OP_DECORATE_STRING: case OP_MEMBER_DECORATE_STRING:
  case OP_LINE: case OP_NO_LINE:
    return TRUE;
  default:
    return FALSE;
  }
}

/* whether the literal string at words [first, end) is s; never reads past end */
static gboolean
string_is (const guint32 *w, gsize first, gsize end, const char *s)
{
  for (gsize k = 0;; k++) {
    guint8 b;
    if (first + k / 4 >= end)
      return FALSE;
    b = (w[first + k / 4] >> (8 * (k % 4))) & 0xff;
    if (b != (guint8) s[k])
      return FALSE;
    if (b == 0)
      return TRUE;
  }
}

/* s as a SPIR-V literal string: little-endian bytes, NUL-terminated, zero-padded to a word */
static void
append_string (GArray *out, const char *s)
{
  gsize len = strlen (s), n = len / 4 + 1;

  for (gsize i = 0; i < n; i++) {
    guint32 v = 0;
    for (gsize b = 0; b < 4 && 4 * i + b < len; b++)
      v |= (guint32) (guint8) s[4 * i + b] << (8 * b);
    g_array_append_val (out, v);
  }
}

/* pass 1: capabilities, extensions, int and bool declarations, cooperative matrix types and the
 * type of every value of one (an instruction after the preamble whose first operand is such a type
 * is a result type: its second operand is the value) */
static gboolean
declare (Module *m)
{
  gboolean preamble = TRUE;

  for (gsize at = 5; at < m->n; at += word_count (m, at)) {
    const guint32 *w = m->w + at;
    guint op = opcode (m, at), wc = word_count (m, at);

    if (preamble && !is_preamble (op))
      preamble = FALSE;
    switch (op) {
    case OP_CAPABILITY:
      if (!check_words (m, at, 2, TRUE, "OpCapability"))
        return FALSE;
      m->has_nv_cap |= w[1] == CAP_COOPMAT_NV;
      m->has_vulkan_memory_model |= w[1] == CAP_VULKAN_MEMORY_MODEL;
      break;
    case OP_EXTENSION:
      m->has_nv_ext |= string_is (m->w, at + 1, at + wc, "SPV_NV_cooperative_matrix");
      break;
    case OP_TYPE_INT:
      if (!check_words (m, at, 4, TRUE, "OpTypeInt") || !check_id (m, at, 1))
        return FALSE;
      m->def[w[1]] |= DEF_INT | (w[3] ? DEF_SIGNED : 0) | (w[2] == 32 ? DEF_INT32 : 0);
      if (w[2] == 32 && m->int32_at == 0) {
        m->int32_at = at;
        m->int32_id = w[1];
      }
      break;
    case OP_CONSTANT_TRUE:
    case OP_CONSTANT_FALSE:
    case OP_SPEC_CONSTANT_TRUE:
    case OP_SPEC_CONSTANT_FALSE:
      if (!check_words (m, at, 3, TRUE, "a boolean constant") || !check_ids (m, at, 1, 2))
        return FALSE;
      m->def[w[2]] |= op == OP_CONSTANT_TRUE ? DEF_TRUE : op == OP_CONSTANT_FALSE ? DEF_FALSE : DEF_SPEC_BOOL;
      break;
    case OP_TYPE_COOPMAT_NV: {
      CoopType t;
      if (!check_words (m, at, 6, TRUE, "OpTypeCooperativeMatrixNV") || !check_ids (m, at, 1, 5))
        return FALSE;
      t = (CoopType) { w[1], w[2], w[4], w[5], m->types->len, USE_NONE, 0, 0 };
      if (m->type_index[w[1]] != 0)
        return fail_at (m, EASEL_ERROR_INVALID_FILE, at, "id %u is declared twice", w[1]);
      g_array_append_val (m->types, t);
      m->type_index[w[1]] = m->types->len;
      if (m->first_coop_at == 0)
        m->first_coop_at = at;
      break;
    }
    default:
      if (!preamble && wc >= 3 && w[1] < m->bound && m->type_index[w[1]] != 0) {
        if (!check_id (m, at, 2))
          return FALSE;
        m->value_type[w[2]] = w[1];
      }
      break;
    }
  }
  return TRUE;
}

static CoopType *
coop_type (Module *m, guint32 id)
{
  return &g_array_index (m->types, CoopType, m->type_index[id] - 1);
}

static CoopType *
root (Module *m, guint32 id)
{
  CoopType *ts = (CoopType *) m->types->data;
  guint32 i = m->type_index[id] - 1;

  while (ts[i].parent != i) {
    ts[i].parent = ts[ts[i].parent].parent;
    i = ts[i].parent;
  }
  return &ts[i];
}

/* for messages: the value of the OpConstant id ("?" if it is not one, e.g. a specialization
 * constant), or the name of the scalar type id ("f16", "i8", "u32") */
static char *
describe_id (const Module *m, guint32 id)
{
  for (gsize at = 5; at < m->n; at += word_count (m, at)) {
    const guint32 *w = m->w + at;
    guint op = opcode (m, at), wc = word_count (m, at);
    if (op == OP_CONSTANT && wc == 4 && w[2] == id)
      return g_strdup_printf ("%u", w[3]);
    if (op == OP_TYPE_FLOAT && wc >= 3 && w[1] == id)
      return g_strdup_printf ("f%u", w[2]);
    if (op == OP_TYPE_INT && wc == 4 && w[1] == id)
      return g_strdup_printf ("%c%u", w[3] ? 'i' : 'u', w[2]);
  }
  return g_strdup ("?");
}

/* "cooperative matrix type %10 (f16, 16 x 16)" */
static char *
describe (const Module *m, guint32 type_id)
{
  const CoopType *t = &g_array_index (m->types, CoopType, m->type_index[type_id] - 1);
  g_autofree char *comp = describe_id (m, t->component), *r = describe_id (m, t->rows), *c = describe_id (m, t->cols);

  return g_strdup_printf ("cooperative matrix type %%%u (%s, %s x %s)", type_id, comp, r, c);
}

/* the value at operand k of the instruction at `at` is of a cooperative matrix type: that type */
static gboolean
value_of_coop_type (Module *m, gsize at, guint k, const char *what, guint32 *type)
{
  if (!check_id (m, at, k))
    return FALSE;
  *type = m->value_type[m->w[at + k]];
  if (*type == 0)
    return fail_at (m, EASEL_ERROR_UNSUPPORTED, at, "%s %%%u is not a value of a cooperative matrix type", what, m->w[at + k]);
  return TRUE;
}

/* operand k of the instruction at `at` is a cooperative matrix type id */
static gboolean
is_coop_type (Module *m, gsize at, guint k, const char *what)
{
  if (!check_id (m, at, k))
    return FALSE;
  if (m->type_index[m->w[at + k]] == 0)
    return fail_at (m, EASEL_ERROR_INVALID_FILE, at, "%s %%%u is not an OpTypeCooperativeMatrixNV", what, m->w[at + k]);
  return TRUE;
}

static gboolean
set_use (Module *m, gsize at, guint32 type_id, guint use)
{
  CoopType *r = root (m, type_id);

  if (r->use == USE_NONE) {
    r->use = use;
    r->use_at = at;
    r->use_type = type_id;
  } else if (r->use != use) {
    g_autofree char *here = describe (m, type_id), *there = describe (m, r->use_type);
    g_autofree char *other = r->use_type == type_id ? g_strdup ("") :
      g_strdup_printf (", and it converts to or from %s,", there);
    return fail_at (m, EASEL_ERROR_UNSUPPORTED, at,
                    "%s is used as %s here%s used as %s at word %" G_GSIZE_FORMAT "; a "
                    "SPV_KHR_cooperative_matrix type has one use, so give the roles different shapes or "
                    "component types (the rules are in shaders/spirv-coopmat.c)",
                    here, use_names[use], other, use_names[r->use], r->use_at);
  }
  return TRUE;
}

/* the layout of a column-major operand (operand k of the instruction at `at`) */
static gboolean
layout_of (Module *m, gsize at, guint k, guint *layout)
{
  guint8 d;

  if (!check_id (m, at, k))
    return FALSE;
  d = m->def[m->w[at + k]];
  if (d & (DEF_TRUE | DEF_FALSE)) {
    *layout = d & DEF_TRUE ? LAYOUT_COL : LAYOUT_ROW;
    m->need[*layout] = TRUE;
    return TRUE;
  }
  if (d & DEF_SPEC_BOOL)
    return fail_at (m, EASEL_ERROR_UNSUPPORTED, at, "the column-major operand %%%u is a specialization constant; "
                    "SPV_KHR_cooperative_matrix needs a constant layout", m->w[at + k]);
  return fail_at (m, EASEL_ERROR_UNSUPPORTED, at, "the column-major operand %%%u is not OpConstantTrue or "
                  "OpConstantFalse; SPV_KHR_cooperative_matrix needs a constant layout", m->w[at + k]);
}

/* pass 2: every NV instruction checked, uses deduced (conversions join types first, then products
 * fix the uses of the joined classes), layouts collected */
static gboolean
constrain (Module *m)
{
  guint n_new = 0;

  if (!m->has_nv_cap)
    return fail_at (m, EASEL_ERROR_UNSUPPORTED, 0, "the module does not declare CooperativeMatrixNV: nothing to translate");
  if (!m->has_nv_ext)
    return fail_at (m, EASEL_ERROR_INVALID_FILE, 0, "CooperativeMatrixNV without OpExtension \"SPV_NV_cooperative_matrix\"");
  if (!m->has_vulkan_memory_model)
    return fail_at (m, EASEL_ERROR_UNSUPPORTED, 0, "the module does not declare VulkanMemoryModel, which "
                    "SPV_KHR_cooperative_matrix requires (glslang declares it for GL_NV_cooperative_matrix)");

  for (gsize at = 5; at < m->n; at += word_count (m, at)) {
    guint op = opcode (m, at);
    guint32 src;
    if (((op >= OP_CONVERT_F_TO_U && op <= OP_F_CONVERT) || op == OP_BITCAST) && word_count (m, at) == 4 &&
        m->w[at + 1] < m->bound && m->type_index[m->w[at + 1]] != 0) {
      if (!value_of_coop_type (m, at, 3, "the operand of a conversion to a cooperative matrix", &src))
        return FALSE;
      root (m, src)->parent = root (m, m->w[at + 1])->parent;
    }
  }

  for (gsize at = 5; at < m->n; at += word_count (m, at)) {
    const guint32 *w = m->w + at;
    guint32 ta, tb, tc, tobj;
    guint layout;

    switch (opcode (m, at)) {
    case OP_COOPMAT_MULADD_NV:
      if (!check_words (m, at, 6, TRUE, "OpCooperativeMatrixMulAddNV") || !check_id (m, at, 2) ||
          !is_coop_type (m, at, 1, "the result type") ||
          !value_of_coop_type (m, at, 3, "operand A", &ta) || !value_of_coop_type (m, at, 4, "operand B", &tb) ||
          !value_of_coop_type (m, at, 5, "operand C", &tc) ||
          !set_use (m, at, w[1], USE_ACC) || !set_use (m, at, ta, USE_A) || !set_use (m, at, tb, USE_B) ||
          !set_use (m, at, tc, USE_ACC))
        return FALSE;
      break;
    case OP_COOPMAT_LOAD_NV:
      if (!check_words (m, at, 6, FALSE, "OpCooperativeMatrixLoadNV") || !check_ids (m, at, 2, 4) ||
          !is_coop_type (m, at, 1, "the result type") || !layout_of (m, at, 5, &layout))
        return FALSE;
      break;
    case OP_COOPMAT_STORE_NV:
      if (!check_words (m, at, 5, FALSE, "OpCooperativeMatrixStoreNV") || !check_ids (m, at, 1, 3) ||
          !value_of_coop_type (m, at, 2, "the stored object", &tobj) || !layout_of (m, at, 4, &layout))
        return FALSE;
      break;
    case OP_COOPMAT_LENGTH_NV:
      if (!check_words (m, at, 4, TRUE, "OpCooperativeMatrixLengthNV") || !check_ids (m, at, 1, 2) ||
          !is_coop_type (m, at, 3, "the type operand"))
        return FALSE;
      break;
    case OP_SPEC_CONSTANT_OP:
      if (!check_words (m, at, 4, FALSE, "OpSpecConstantOp"))
        return FALSE;
      if (w[3] == OP_COOPMAT_LENGTH_NV) {
        if (!check_words (m, at, 5, TRUE, "OpSpecConstantOp CooperativeMatrixLengthNV") ||
            !is_coop_type (m, at, 4, "the type operand"))
          return FALSE;
      } else if (w[3] >= OP_TYPE_COOPMAT_NV && w[3] <= OP_COOPMAT_MULADD_NV) {
        return fail_at (m, EASEL_ERROR_UNSUPPORTED, at, "OpSpecConstantOp of cooperative matrix opcode %u", w[3]);
      }
      break;
    default:
      break;
    }
  }

  for (guint i = 0; i < m->types->len; i++) {
    CoopType *t = &g_array_index (m->types, CoopType, i);
    CoopType *r = root (m, t->id);
    if (r->use == USE_NONE) {
      r->use = USE_ACC;
      r->use_type = r->id;
    }
    t->use = r->use;
    m->need[t->use] = TRUE;
  }

  for (guint v = 0; v < 3; v++)
    n_new += m->need[v];
  if (n_new > 0 && m->first_coop_at == 0)
    return fail_at (m, EASEL_ERROR_INVALID_FILE, 0, "cooperative matrix instructions without any OpTypeCooperativeMatrixNV");
  if (m->first_coop_at != 0 && (m->int32_at == 0 || m->int32_at > m->first_coop_at))
    return fail_at (m, EASEL_ERROR_INVALID_FILE, m->first_coop_at, "no 32-bit OpTypeInt before the first "
                    "OpTypeCooperativeMatrixNV, whose rows and columns must be 32-bit integer constants");
  if (m->bound > EASEL_SPIRV_ID_LIMIT - n_new)
    return fail_at (m, EASEL_ERROR_UNSUPPORTED, 3, "no room for %u new ids under the id limit", n_new);
  return TRUE;
}

static void
append (GArray *out, const guint32 *w, gsize n)
{
  g_array_append_vals (out, w, n);
}

/* Matrix{A,B,C,Result}SignedComponentsKHR for the product at `at` (operands checked by constrain) */
static guint32
signed_bits (const Module *m, gsize at)
{
  static const guint32 bits[] = { SIGNED_RESULT, 0, SIGNED_A, SIGNED_B, SIGNED_C };
  guint32 mask = 0;

  for (guint k = 1; k <= 5; k++) {
    guint32 type_id;
    if (k == 2)
      continue;   /* the result id */
    type_id = k == 1 ? m->w[at + 1] : m->value_type[m->w[at + k]];
    if ((m->def[g_array_index (m->types, CoopType, m->type_index[type_id] - 1).component] & (DEF_INT | DEF_SIGNED)) ==
        (DEF_INT | DEF_SIGNED))
      mask |= bits[k - 1];
  }
  return mask;
}

/* pass 3: the rewritten module; cannot fail after constrain */
static guint32 *
emit (Module *m, gsize *n_out)
{
  GArray *out = g_array_sized_new (FALSE, FALSE, sizeof (guint32), m->n + 32);
  guint32 bound = m->bound, const_id[3] = { 0 };

  append (out, m->w, 5);
  for (gsize at = 5; at < m->n; at += word_count (m, at)) {
    const guint32 *w = m->w + at;
    guint wc = word_count (m, at);

    if (at == m->first_coop_at)
      for (guint v = 0; v < 3; v++)
        if (m->need[v]) {
          guint32 decl[] = { 4u << 16 | OP_CONSTANT, m->int32_id, const_id[v] = bound++, v };
          append (out, decl, 4);
        }

    switch (opcode (m, at)) {
    case OP_CAPABILITY:
      if (w[1] == CAP_COOPMAT_NV) {
        guint32 cap[] = { 2u << 16 | OP_CAPABILITY, CAP_COOPMAT_KHR };
        append (out, cap, 2);
      } else {
        append (out, w, wc);
      }
      break;
    case OP_EXTENSION:
      if (string_is (m->w, at + 1, at + wc, "SPV_NV_cooperative_matrix")) {
        const char *khr = "SPV_KHR_cooperative_matrix";
        guint32 head = (guint32) (strlen (khr) / 4 + 2) << 16 | OP_EXTENSION;
        g_array_append_val (out, head);
        append_string (out, khr);
      } else {
        append (out, w, wc);
      }
      break;
    case OP_TYPE_COOPMAT_NV: {
      guint32 t[] = { 7u << 16 | OP_TYPE_COOPMAT_KHR, w[1], w[2], w[3], w[4], w[5], const_id[coop_type (m, w[1])->use] };
      append (out, t, 7);
      break;
    }
    case OP_COOPMAT_LOAD_NV: {
      guint32 head[] = { wc << 16 | OP_COOPMAT_LOAD_KHR, w[1], w[2], w[3],
                         const_id[m->def[w[5]] & DEF_TRUE ? LAYOUT_COL : LAYOUT_ROW], w[4] };
      append (out, head, 6);
      append (out, w + 6, wc - 6);
      break;
    }
    case OP_COOPMAT_STORE_NV: {
      guint32 head[] = { wc << 16 | OP_COOPMAT_STORE_KHR, w[1], w[2],
                         const_id[m->def[w[4]] & DEF_TRUE ? LAYOUT_COL : LAYOUT_ROW], w[3] };
      append (out, head, 5);
      append (out, w + 5, wc - 5);
      break;
    }
    case OP_COOPMAT_MULADD_NV: {
      guint32 mask = signed_bits (m, at);
      guint32 mul[] = { (mask ? 7u : 6u) << 16 | OP_COOPMAT_MULADD_KHR, w[1], w[2], w[3], w[4], w[5], mask };
      append (out, mul, mask ? 7 : 6);
      break;
    }
    case OP_COOPMAT_LENGTH_NV: {
      guint32 len[] = { 4u << 16 | OP_COOPMAT_LENGTH_KHR, w[1], w[2], w[3] };
      append (out, len, 4);
      break;
    }
    case OP_SPEC_CONSTANT_OP:
      append (out, w, wc);
      if (w[3] == OP_COOPMAT_LENGTH_NV)
        g_array_index (out, guint32, out->len - wc + 3) = OP_COOPMAT_LENGTH_KHR;
      break;
    default:
      append (out, w, wc);
      break;
    }
  }
  g_array_index (out, guint32, 3) = bound;
  *n_out = out->len;
  return (guint32 *) g_array_free (out, FALSE);
}

guint32 *
easel_spirv_coopmat_nv_to_khr (const guint32 *words, gsize n_words, gsize *n_out, GError **error)
{
  Module m = { .w = words, .n = n_words, .error = error };
  guint32 *out = NULL;

  g_return_val_if_fail (words != NULL || n_words == 0, NULL);
  g_return_val_if_fail (n_out != NULL, NULL);

  if (!check_frame (&m))
    return NULL;
  m.def = g_new0 (guint8, m.bound);
  m.type_index = g_new0 (guint32, m.bound);
  m.value_type = g_new0 (guint32, m.bound);
  m.types = g_array_new (FALSE, FALSE, sizeof (CoopType));
  if (declare (&m) && constrain (&m))
    out = emit (&m, n_out);
  g_free (m.def);
  g_free (m.type_index);
  g_free (m.value_type);
  g_array_free (m.types, TRUE);
  return out;
}
