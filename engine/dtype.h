/* engine/dtype.h: element types of tensors and checkpoint files, and conversion to fp32.
 * Names are the ones safetensors uses ("F16", "BF16", ...). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  EASEL_DTYPE_F32,
  EASEL_DTYPE_F16,
  EASEL_DTYPE_BF16,
  EASEL_DTYPE_F64,
  EASEL_DTYPE_I32,
  EASEL_DTYPE_I64,
  EASEL_DTYPE_I16,
  EASEL_DTYPE_I8,
  EASEL_DTYPE_U8,
  EASEL_DTYPE_U16,
  EASEL_DTYPE_U32,
  EASEL_DTYPE_U64,
  EASEL_DTYPE_BOOL,
  EASEL_DTYPE_F8_E4M3,
  EASEL_DTYPE_F8_E5M2,
  EASEL_DTYPE_COUNT
} EaselDType;

typedef struct {
  const char *name;   /* safetensors spelling */
  guint size;         /* bytes per element */
  gboolean is_float;
} EaselDTypeInfo;

const EaselDTypeInfo *easel_dtype_info (EaselDType dtype);
const char *easel_dtype_name (EaselDType dtype);
gsize       easel_dtype_size (EaselDType dtype);
/* Looks a safetensors dtype name up; FALSE when unknown. */
gboolean    easel_dtype_from_name (const char *name, EaselDType *out);

float  easel_f16_to_f32 (guint16 h);
guint16 easel_f32_to_f16 (float f);   /* round to nearest even, as torch's .half() */
float  easel_bf16_to_f32 (guint16 b);
guint16 easel_f32_to_bf16 (float f);  /* round to nearest even */

/* dst[i] = (float) src[i] for n little-endian elements of dtype; every dtype converts. */
void easel_dtype_to_f32 (EaselDType dtype, const void *src, float *dst, gsize n);

G_END_DECLS
