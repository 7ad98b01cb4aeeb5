/* tests/test-dtype.c: dtype table and half/bfloat16 conversions. */
#include <math.h>

#include "engine/dtype.h"
#include "testutil.h"

static void
test_table (void)
{
  EaselDType dt;
  for (guint i = 0; i < EASEL_DTYPE_COUNT; i++) {
    g_assert_true (easel_dtype_from_name (easel_dtype_name (i), &dt));
    g_assert_cmpint (dt, ==, i);
  }
  g_assert_false (easel_dtype_from_name ("F17", &dt));
  g_assert_cmpuint (easel_dtype_size (EASEL_DTYPE_BF16), ==, 2);
  g_assert_cmpuint (easel_dtype_size (EASEL_DTYPE_I64), ==, 8);
}

static void
test_f16_roundtrip_all (void)
{
  /* every finite half converts to float and back unchanged */
  for (guint32 h = 0; h < 0x10000; h++) {
    guint32 exp = (h >> 10) & 0x1f;
    float f = easel_f16_to_f32 ((guint16) h);
    if (exp == 0x1f) {
      g_assert_true ((h & 0x3ff) ? isnan (f) : isinf (f));
      continue;
    }
    g_assert_cmpuint (easel_f32_to_f16 (f), ==, h);
  }
}

static void
test_f16_rounding (void)
{
  g_assert_cmpfloat (easel_f16_to_f32 (0x3c00), ==, 1.0f);
  g_assert_cmpfloat (easel_f16_to_f32 (0x0001), ==, ldexpf (1.0f, -24));
  g_assert_cmpuint (easel_f32_to_f16 (65504.0f), ==, 0x7bff);
  g_assert_cmpuint (easel_f32_to_f16 (65519.0f), ==, 0x7bff);
  g_assert_cmpuint (easel_f32_to_f16 (65520.0f), ==, 0x7c00);       /* rounds up to inf */
  g_assert_cmpuint (easel_f32_to_f16 (1.0f + ldexpf (1.0f, -11)), ==, 0x3c00);   /* tie -> even */
  g_assert_cmpuint (easel_f32_to_f16 (1.0f + 3 * ldexpf (1.0f, -11)), ==, 0x3c02);
  g_assert_cmpuint (easel_f32_to_f16 (ldexpf (1.0f, -25)), ==, 0x0000);           /* tie -> even (0) */
  g_assert_cmpuint (easel_f32_to_f16 (ldexpf (3.0f, -25)), ==, 0x0002);
  g_assert_cmpuint (easel_f32_to_f16 (-0.0f), ==, 0x8000);
  g_assert_true (isnan (easel_f16_to_f32 (easel_f32_to_f16 (NAN))));
}

static void
test_bf16 (void)
{
  g_assert_cmpfloat (easel_bf16_to_f32 (0x3f80), ==, 1.0f);
  g_assert_cmpuint (easel_f32_to_bf16 (1.0f + ldexpf (1.0f, -8)), ==, 0x3f80);    /* tie -> even */
  g_assert_cmpuint (easel_f32_to_bf16 (1.0f + 3 * ldexpf (1.0f, -8)), ==, 0x3f82);
  g_assert_true (isnan (easel_bf16_to_f32 (easel_f32_to_bf16 (NAN))));
}

static void
test_convert (void)
{
  const gint64 i64[3] = { -5, 0, 1 << 20 };
  const guint8 e4m3[4] = { 0x38, 0xb8, 0x7e, 0x01 };   /* 1, -1, 448, 2^-9 */
  float out[4];
  easel_dtype_to_f32 (EASEL_DTYPE_I64, i64, out, 3);
  g_assert_cmpfloat (out[0], ==, -5.0f);
  g_assert_cmpfloat (out[2], ==, 1048576.0f);
  easel_dtype_to_f32 (EASEL_DTYPE_F8_E4M3, e4m3, out, 4);
  g_assert_cmpfloat (out[0], ==, 1.0f);
  g_assert_cmpfloat (out[1], ==, -1.0f);
  g_assert_cmpfloat (out[2], ==, 448.0f);
  g_assert_cmpfloat (out[3], ==, ldexpf (1.0f, -9));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/dtype/table", test_table);
  g_test_add_func ("/dtype/f16-roundtrip-all", test_f16_roundtrip_all);
  g_test_add_func ("/dtype/f16-rounding", test_f16_rounding);
  g_test_add_func ("/dtype/bf16", test_bf16);
  g_test_add_func ("/dtype/convert", test_convert);
  return g_test_run ();
}
