/* shaders/spirv-coopmat.h: a SPIR-V to SPIR-V translator from SPV_NV_cooperative_matrix to
 * SPV_KHR_cooperative_matrix, run at build time on glslc's output (spirv-coopmat-khr.c is the
 * command; the rules and their limits are in spirv-coopmat.c). No Vulkan, no libeasel: GLib only. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The SPIR-V universal limit on ids (spec 2.17, "Result <id> bound"): every id is below it, so a
 * module's bound is at most this. */
#define EASEL_SPIRV_ID_LIMIT 4194304u

/* words (n_words, host byte order): a module that declares CooperativeMatrixNV. Returns the module
 * rewritten to use CooperativeMatrixKHR (*n_out words), or NULL with EASEL_ERROR_INVALID_FILE
 * (malformed: magic, framing, an id past the bound) or EASEL_ERROR_UNSUPPORTED (well formed but not
 * translatable, e.g. one type used as matrix A and as matrix B). transfer full: g_free. */
guint32 *easel_spirv_coopmat_nv_to_khr (const guint32 *words, gsize n_words, gsize *n_out, GError **error);

G_END_DECLS
