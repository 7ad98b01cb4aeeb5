/* tests/test-rng.c: torch-compatible noise (engine/rng.c): MT19937 against its published
 * outputs, the properties of torch's code paths that testdata/README.md section 3 lists, and a
 * few tensors of testdata/rng (the golden kind "rng" checks all of them). */
#include <math.h>
#include <string.h>

#include "engine/rng.h"
#include "engine/safetensors.h"
#include "testutil.h"

static float *
draw (EaselRngKind kind, guint64 seed, gsize n)
{
  g_autoptr(EaselRng) rng = easel_rng_new (kind, seed);
  float *out = g_new (float, n);
  easel_rng_randn (rng, out, n);
  return out;
}

static gboolean
same_floats (const float *a, const float *b, gsize n)
{
  return memcmp (a, b, n * sizeof (float)) == 0;
}

/* Matsumoto & Nishimura's generator as C++11 specifies it: seeded with 5489 its 1st output is
 * 3499211612 and its 10000th is 4123659995 (the standard's [rand.predef] check value). */
static void
test_mt19937_reference (void)
{
  g_autoptr(EaselRng) rng = easel_rng_new (EASEL_RNG_CPU, 5489);
  guint32 v = easel_rng_cpu_u32 (rng);
  g_assert_cmpuint (v, ==, 3499211612u);
  for (int i = 2; i <= 10000; i++)
    v = easel_rng_cpu_u32 (rng);
  g_assert_cmpuint (v, ==, 4123659995u);
}

/* torch's CPU generator keeps only the low 32 bits of the seed; Philox keys on all 64. */
static void
test_seed_truncation (void)
{
  g_autoptr(EaselRng) a = easel_rng_new (EASEL_RNG_CPU, 5489);
  g_autoptr(EaselRng) b = easel_rng_new (EASEL_RNG_CPU, 5489 + (G_GUINT64_CONSTANT (7) << 32));
  g_assert_cmpuint (easel_rng_cpu_u32 (b), ==, 3499211612u);
  (void) easel_rng_cpu_u32 (a);

  for (gsize n = 3; n <= 64; n += 61) {
    g_autofree float *c0 = draw (EASEL_RNG_CPU, 0, n);
    g_autofree float *c1 = draw (EASEL_RNG_CPU, G_GUINT64_CONSTANT (1) << 32, n);
    g_autofree float *c2 = draw (EASEL_RNG_CPU, G_MAXUINT64, n);
    g_autofree float *c3 = draw (EASEL_RNG_CPU, G_MAXUINT32, n);
    g_autofree float *g0 = draw (EASEL_RNG_CUDA, 0, n);
    g_autofree float *g1 = draw (EASEL_RNG_CUDA, G_GUINT64_CONSTANT (1) << 32, n);
    g_assert_true (same_floats (c0, c1, n));
    g_assert_true (same_floats (c2, c3, n));
    g_assert_false (same_floats (c0, c2, n));
    g_assert_false (same_floats (g0, g1, n));
  }
}

/* The CPU's scalar path (< 16 values) and 16-wide path (>= 16) differ, the 16-wide path
 * redraws the last 16 values when n % 16 != 0, and blocks of 16 are independent. */
static void
test_cpu_paths (void)
{
  g_autofree float *r3 = draw (EASEL_RNG_CPU, 42, 3);
  g_autofree float *r15 = draw (EASEL_RNG_CPU, 42, 15);
  g_autofree float *r16 = draw (EASEL_RNG_CPU, 42, 16);
  g_autofree float *r17 = draw (EASEL_RNG_CPU, 42, 17);
  g_autofree float *r256 = draw (EASEL_RNG_CPU, 42, 256);

  g_assert_true (same_floats (r3, r15, 3));            /* one scalar path */
  g_assert_false (same_floats (r3, r17, 3));
  g_assert_true (same_floats (r16, r256, 16));         /* randn(16) is a prefix of randn(256) */
  g_assert_false (same_floats (r17 + 1, r16, 16));
  g_assert_false (same_floats (r17, r16, 16));         /* the first block was overwritten too */
  for (int i = 0; i < 17; i++)
    g_assert_true (isfinite (r17[i]) && fabsf (r17[i]) < 7.0f);
}

/* Successive calls continue the stream: on the CPU, randn(16) twice is randn(32), and the
 * scalar path's second Box-Muller value carries over to the next scalar call. */
static void
test_cpu_continuity (void)
{
  g_autoptr(EaselRng) rng = easel_rng_new (EASEL_RNG_CPU, 7);
  g_autofree float *r32 = draw (EASEL_RNG_CPU, 7, 32);
  g_autofree float *r2 = draw (EASEL_RNG_CPU, 7, 2);
  float part[16];

  easel_rng_randn (rng, part, 16);
  g_assert_true (same_floats (part, r32, 16));
  easel_rng_randn (rng, part, 16);
  g_assert_true (same_floats (part, r32 + 16, 16));

  g_clear_pointer (&rng, easel_rng_free);
  rng = easel_rng_new (EASEL_RNG_CPU, 7);
  easel_rng_randn (rng, part, 1);
  easel_rng_randn (rng, part + 1, 1);
  g_assert_true (same_floats (part, r2, 2));
}

/* CUDA: each value comes from its own thread, so prefixes agree across sizes, and a second
 * call moves to the next Philox block (a different stream). */
static void
test_cuda_layout (void)
{
  g_autofree float *r3 = draw (EASEL_RNG_CUDA, 42, 3);
  g_autofree float *r17 = draw (EASEL_RNG_CUDA, 42, 17);
  g_autofree float *r256 = draw (EASEL_RNG_CUDA, 42, 256);
  g_autoptr(EaselRng) rng = easel_rng_new (EASEL_RNG_CUDA, 42);
  g_autoptr(EaselRng) capped = easel_rng_new (EASEL_RNG_CUDA, 42);
  g_autofree float *big = g_new (float, 70000);
  g_autofree float *big_capped = g_new (float, 70000);
  float again[3];

  g_assert_true (same_floats (r3, r17, 3));
  g_assert_true (same_floats (r17, r256, 17));
  easel_rng_randn (rng, again, 3);
  easel_rng_randn (rng, again, 3);
  g_assert_false (same_floats (again, r3, 3));

  /* a GPU with 28 SMs of 1536 threads runs 43008 threads: the first 43008 values agree with
   * the uncapped draw, the rest come from the threads' second normal */
  g_clear_pointer (&rng, easel_rng_free);
  rng = easel_rng_new (EASEL_RNG_CUDA, 42);
  easel_rng_set_cuda_device (capped, 28, 1536);
  easel_rng_randn (rng, big, 70000);
  easel_rng_randn (capped, big_capped, 70000);
  g_assert_true (same_floats (big, big_capped, 43008));
  g_assert_false (same_floats (big + 43008, big_capped + 43008, 16));
}

static void
test_kind_names (void)
{
  EaselRngKind kind = EASEL_RNG_CPU;
  g_assert_true (easel_rng_kind_from_name ("cuda", &kind));
  g_assert_cmpint (kind, ==, EASEL_RNG_CUDA);
  g_assert_true (easel_rng_kind_from_name ("cpu", &kind));
  g_assert_cmpint (kind, ==, EASEL_RNG_CPU);
  g_assert_false (easel_rng_kind_from_name ("CUDA", &kind));
  g_assert_false (easel_rng_kind_from_name (NULL, &kind));
}

static gint64
ulp_distance (float a, float b)
{
  gint32 ia, ib;
  memcpy (&ia, &a, sizeof ia);
  memcpy (&ib, &b, sizeof ib);
  gint64 oa = ia < 0 ? -(gint64) (ia & 0x7fffffff) : ia;
  gint64 ob = ib < 0 ? -(gint64) (ib & 0x7fffffff) : ib;
  return oa > ob ? oa - ob : ob - oa;
}

/* One reference tensor: CPU exact; CUDA within 1 ulp or the GPU sine's error (see golden-rng.c) */
static void
check_reference (const char *file, const char *tensor, EaselRngKind kind, guint64 seed)
{
  g_autofree char *path = test_data_path ("rng", file, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselSafetensors) st = NULL;
  g_autofree float *want = NULL;
  g_autofree float *got = NULL;
  const EaselStTensor *t;

  if (path == NULL)
    return;
  st = easel_safetensors_open (path, &error);
  g_assert_no_error (error);
  t = easel_safetensors_find (st, tensor);
  g_assert_nonnull (t);
  want = easel_st_tensor_to_f32 (t);
  got = draw (kind, seed, t->n_elements);
  for (gsize i = 0; i < t->n_elements; i++) {
    if (kind == EASEL_RNG_CPU)
      g_assert_cmpfloat (got[i], ==, want[i]);
    else if (ulp_distance (got[i], want[i]) > 1)
      g_assert_cmpfloat_with_epsilon (got[i], want[i], 7.0 * 0x1p-21);
  }
}

static void
test_reference_values (void)
{
  check_reference ("randn_cpu.safetensors", "seed_42/randn_1x4x8x8", EASEL_RNG_CPU, 42);
  check_reference ("randn_cpu.safetensors", "seed_16045690984503098046/randn_17", EASEL_RNG_CPU,
                   G_GUINT64_CONSTANT (16045690984503098046));
  check_reference ("randn_cpu.safetensors", "seed_18446744073709551615/randn_15", EASEL_RNG_CPU, G_MAXUINT64);
  check_reference ("randn_cuda.safetensors", "seed_42/randn_1x4x8x8", EASEL_RNG_CUDA, 42);
  check_reference ("randn_cuda.safetensors", "seed_18446744073709551615/randn_17", EASEL_RNG_CUDA, G_MAXUINT64);
}

/* The sequence of calls the reference draws after one manual_seed */
static void
test_reference_sequence (void)
{
  static const gsize sizes[] = { 256, 3, 17, 256, 5, 256 };
  static const char *const shapes[] = { "1x4x8x8", "3", "17", "1x4x8x8", "5", "1x4x8x8" };
  g_autofree char *path = test_data_path ("rng", "randn_cpu.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselSafetensors) st = NULL;
  g_autoptr(EaselRng) rng = NULL;

  if (path == NULL)
    return;
  st = easel_safetensors_open (path, &error);
  g_assert_no_error (error);
  rng = easel_rng_new (EASEL_RNG_CPU, 12345);
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
    g_autofree char *name = g_strdup_printf ("seed_12345/sequence_%u_%s", i, shapes[i]);
    const EaselStTensor *t = easel_safetensors_find (st, name);
    g_autofree float *want = NULL;
    float got[256];
    g_assert_nonnull (t);
    g_assert_cmpuint (t->n_elements, ==, sizes[i]);
    want = easel_st_tensor_to_f32 (t);
    easel_rng_randn (rng, got, sizes[i]);
    g_assert_true (same_floats (got, want, sizes[i]));
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/rng/mt19937-reference", test_mt19937_reference);
  g_test_add_func ("/rng/seed-truncation", test_seed_truncation);
  g_test_add_func ("/rng/cpu-paths", test_cpu_paths);
  g_test_add_func ("/rng/cpu-continuity", test_cpu_continuity);
  g_test_add_func ("/rng/cuda-layout", test_cuda_layout);
  g_test_add_func ("/rng/kind-names", test_kind_names);
  g_test_add_func ("/rng/reference-values", test_reference_values);
  g_test_add_func ("/rng/reference-sequence", test_reference_sequence);
  return g_test_run ();
}
