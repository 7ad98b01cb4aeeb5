/* engine/dtype.c: dtype table and element conversions (little-endian hosts). */
#include "dtype.h"

#include <math.h>
#include <string.h>

static const EaselDTypeInfo dtype_info[] = {
  [EASEL_DTYPE_F32] = { "F32", 4, TRUE },
  [EASEL_DTYPE_F16] = { "F16", 2, TRUE },
  [EASEL_DTYPE_BF16] = { "BF16", 2, TRUE },
  [EASEL_DTYPE_F64] = { "F64", 8, TRUE },
  [EASEL_DTYPE_I32] = { "I32", 4, FALSE },
  [EASEL_DTYPE_I64] = { "I64", 8, FALSE },
  [EASEL_DTYPE_I16] = { "I16", 2, FALSE },
  [EASEL_DTYPE_I8] = { "I8", 1, FALSE },
  [EASEL_DTYPE_U8] = { "U8", 1, FALSE },
  [EASEL_DTYPE_U16] = { "U16", 2, FALSE },
  [EASEL_DTYPE_U32] = { "U32", 4, FALSE },
  [EASEL_DTYPE_U64] = { "U64", 8, FALSE },
  [EASEL_DTYPE_BOOL] = { "BOOL", 1, FALSE },
  [EASEL_DTYPE_F8_E4M3] = { "F8_E4M3", 1, TRUE },
  [EASEL_DTYPE_F8_E5M2] = { "F8_E5M2", 1, TRUE },
};
G_STATIC_ASSERT (G_N_ELEMENTS (dtype_info) == EASEL_DTYPE_COUNT);

const EaselDTypeInfo *
easel_dtype_info (EaselDType dtype)
{
  g_return_val_if_fail ((guint) dtype < EASEL_DTYPE_COUNT, NULL);
  return &dtype_info[dtype];
}

const char *
easel_dtype_name (EaselDType dtype)
{
  return (guint) dtype < EASEL_DTYPE_COUNT ? dtype_info[dtype].name : "?";
}

gsize
easel_dtype_size (EaselDType dtype)
{
  return (guint) dtype < EASEL_DTYPE_COUNT ? dtype_info[dtype].size : 0;
}

gboolean
easel_dtype_from_name (const char *name, EaselDType *out)
{
  for (guint i = 0; i < EASEL_DTYPE_COUNT; i++)
    if (strcmp (name, dtype_info[i].name) == 0) {
      *out = (EaselDType) i;
      return TRUE;
    }
  return FALSE;
}

static inline float
bits_to_f32 (guint32 u)
{
  float f;
  memcpy (&f, &u, 4);
  return f;
}

static inline guint32
f32_to_bits (float f)
{
  guint32 u;
  memcpy (&u, &f, 4);
  return u;
}

float
easel_f16_to_f32 (guint16 h)
{
  guint32 sign = (guint32) (h & 0x8000) << 16;
  guint32 exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0x1f)                       /* inf / nan */
    return bits_to_f32 (sign | 0x7f800000u | (man << 13));
  if (exp == 0) {                        /* zero / subnormal: man * 2^-24 */
    float v = (float) man * 5.9604644775390625e-08f;
    return sign ? -v : v;
  }
  return bits_to_f32 (sign | ((exp + 112) << 23) | (man << 13));
}

guint16
easel_f32_to_f16 (float f)
{
  guint32 u = f32_to_bits (f);
  guint16 sign = (u >> 16) & 0x8000;
  guint32 abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u)                /* inf / nan (keep nan quiet) */
    return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);
  if (abs >= 0x477ff000u)                /* rounds to >= 65520: overflow to inf */
    return sign | 0x7c00;
  if (abs < 0x38800000u) {               /* below 2^-14: subnormal half, rounded to nearest even */
    float v = bits_to_f32 (abs) * 16777216.0f;   /* in units of 2^-24; exact scaling */
    return sign | (guint16) nearbyintf (v);
  }
  guint32 mant_odd = (abs >> 13) & 1;
  abs += 0xfff + mant_odd;               /* round to nearest even on the 13 dropped bits */
  return sign | (guint16) ((abs - 0x38000000u) >> 13);
}

float
easel_bf16_to_f32 (guint16 b)
{
  return bits_to_f32 ((guint32) b << 16);
}

guint16
easel_f32_to_bf16 (float f)
{
  guint32 u = f32_to_bits (f);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (guint16) ((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return (guint16) (u >> 16);
}

static float
f8_to_f32 (guint8 v, int exp_bits, int bias)
{
  int man_bits = 7 - exp_bits;
  int sign = v >> 7, exp = (v >> man_bits) & ((1 << exp_bits) - 1), man = v & ((1 << man_bits) - 1);
  float r;
  if (exp_bits == 4 && exp == 15 && man == 7)      /* E4M3FN: only S.1111.111 is nan, no inf */
    return NAN;
  if (exp_bits == 5 && exp == 31)
    return man ? NAN : (sign ? -INFINITY : INFINITY);
  if (exp == 0)
    r = ldexpf ((float) man, 1 - bias - man_bits);
  else
    r = ldexpf (1.0f + (float) man / (float) (1 << man_bits), exp - bias);
  return sign ? -r : r;
}

void
easel_dtype_to_f32 (EaselDType dtype, const void *src, float *dst, gsize n)
{
  const guint8 *s = src;
  for (gsize i = 0; i < n; i++) {
    switch (dtype) {
    case EASEL_DTYPE_F32: { float v; memcpy (&v, s + 4 * i, 4); dst[i] = v; break; }
    case EASEL_DTYPE_F16: { guint16 v; memcpy (&v, s + 2 * i, 2); dst[i] = easel_f16_to_f32 (v); break; }
    case EASEL_DTYPE_BF16: { guint16 v; memcpy (&v, s + 2 * i, 2); dst[i] = easel_bf16_to_f32 (v); break; }
    case EASEL_DTYPE_F64: { double v; memcpy (&v, s + 8 * i, 8); dst[i] = (float) v; break; }
    case EASEL_DTYPE_I32: { gint32 v; memcpy (&v, s + 4 * i, 4); dst[i] = (float) v; break; }
    case EASEL_DTYPE_I64: { gint64 v; memcpy (&v, s + 8 * i, 8); dst[i] = (float) v; break; }
    case EASEL_DTYPE_I16: { gint16 v; memcpy (&v, s + 2 * i, 2); dst[i] = (float) v; break; }
    case EASEL_DTYPE_I8: dst[i] = (float) (gint8) s[i]; break;
    case EASEL_DTYPE_U8: dst[i] = (float) s[i]; break;
    case EASEL_DTYPE_U16: { guint16 v; memcpy (&v, s + 2 * i, 2); dst[i] = (float) v; break; }
    case EASEL_DTYPE_U32: { guint32 v; memcpy (&v, s + 4 * i, 4); dst[i] = (float) v; break; }
    case EASEL_DTYPE_U64: { guint64 v; memcpy (&v, s + 8 * i, 8); dst[i] = (float) v; break; }
    case EASEL_DTYPE_BOOL: dst[i] = s[i] ? 1.0f : 0.0f; break;
    case EASEL_DTYPE_F8_E4M3: dst[i] = f8_to_f32 (s[i], 4, 7); break;
    case EASEL_DTYPE_F8_E5M2: dst[i] = f8_to_f32 (s[i], 5, 15); break;
    case EASEL_DTYPE_COUNT:
    default: g_return_if_reached ();
    }
  }
}
