/* tests/test-image.c: engine/image.[ch]: PNG round trips, every PNG colour type converted to 8-bit
 * RGB/RGBA (files written here with libpng itself), hostile files, atomic saves, float <-> 8-bit,
 * and A1111's "parameters" text against texts written by hand from A1111's rules
 * (modules/processing.py create_infotext, modules/infotext_utils.py). */
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <glib/gstdio.h>

#include "testutil.h"
#include "engine/error.h"
#include "engine/image.h"
#include "engine/safetensors.h"
#include "app/cli/cli.h"

/* ---- helpers ---- */

static EaselImage *
pattern_image (gint w, gint h, gint channels)
{
  EaselImage *img = easel_image_new (w, h, channels, NULL);
  g_assert_nonnull (img);
  for (gsize i = 0; i < (gsize) w * h * channels; i++)
    img->pixels[i] = (guint8) (i * 37 + 11);
  return img;
}

static char *
tmp_dir (void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp ("easel-test-image-XXXXXX", &error);
  g_assert_no_error (error);
  return dir;
}

static void
rm_dir (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)) != NULL) {
    g_autofree char *p = g_build_filename (dir, name, NULL);
    g_unlink (p);
  }
  g_rmdir (dir);
}

static guint
count_files (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  guint n = 0;
  while (d && g_dir_read_name (d) != NULL)
    n++;
  return n;
}

typedef struct {
  guint32 width, height;
  int bit_depth, color_type, interlace;
  const guint8 *rows;             /* height rows of rowbytes each, as libpng wants them */
  gsize rowbytes;
  const png_color *palette;
  int n_palette;
  const guint8 *trns;             /* palette alpha */
  int n_trns;
  const png_color_16 *trns_color; /* gray/RGB transparent colour */
  png_text *texts;
  int n_texts;
} RawPng;

static void
raw_write_cb (png_structp png, png_bytep data, size_t n)
{
  g_byte_array_append (png_get_io_ptr (png), data, (guint) n);
}

static void
raw_flush_cb (png_structp png)
{
}

/* A PNG written by libpng directly, independent of easel_png_encode. */
static GBytes *
raw_png (const RawPng *r)
{
  GByteArray *out = g_byte_array_new ();
  png_structp png = png_create_write_struct (PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct (png);
  g_autofree png_bytep *rows = g_new (png_bytep, r->height);

  g_assert_nonnull (png);
  g_assert_nonnull (info);
  if (setjmp (png_jmpbuf (png)))
    g_assert_not_reached ();
  png_set_write_fn (png, out, raw_write_cb, raw_flush_cb);
  png_set_IHDR (png, info, r->width, r->height, r->bit_depth, r->color_type, r->interlace,
                PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (r->palette)
    png_set_PLTE (png, info, r->palette, r->n_palette);
  if (r->trns || r->trns_color)
    png_set_tRNS (png, info, r->trns, r->n_trns, r->trns_color);
  if (r->n_texts)
    png_set_text (png, info, r->texts, r->n_texts);
  png_write_info (png, info);
  for (guint32 y = 0; y < r->height; y++)
    rows[y] = (png_bytep) r->rows + y * r->rowbytes;
  png_write_image (png, rows);
  png_write_end (png, NULL);
  png_destroy_write_struct (&png, &info);
  return g_byte_array_free_to_bytes (out);
}

static EaselImage *
load_bytes (GBytes *b, EaselPngInfo **info, GError **error)
{
  gsize len;
  const guint8 *d = g_bytes_get_data (b, &len);
  return easel_png_load_from_data (d, len, "test.png", info, error);
}

/* Offset of the first chunk of that type (of its length field), or -1. */
static gssize
find_chunk (const guint8 *d, gsize len, const char *type)
{
  gsize off = 8;
  while (off + 12 <= len) {
    guint32 n = ((guint32) d[off] << 24) | ((guint32) d[off + 1] << 16) | ((guint32) d[off + 2] << 8) | d[off + 3];
    if (memcmp (d + off + 4, type, 4) == 0)
      return (gssize) off;
    if (n > len - off - 12)
      break;
    off += 12 + n;
  }
  return -1;
}

static void
put_be32 (guint8 *p, guint32 v)
{
  p[0] = (guint8) (v >> 24);
  p[1] = (guint8) (v >> 16);
  p[2] = (guint8) (v >> 8);
  p[3] = (guint8) v;
}

/* ---- pixels ---- */

static void
check_roundtrip (gint channels)
{
  g_autofree char *dir = tmp_dir ();
  g_autofree char *path = g_build_filename (dir, "a.png", NULL);
  g_autoptr(EaselImage) img = pattern_image (7, 5, channels);
  g_autoptr(EaselImage) back = NULL;
  g_autoptr(EaselPngInfo) info = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (easel_png_save (img, path, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_files (dir), ==, 1);   /* no temporary file left behind */
  back = easel_png_load (path, &info, &error);
  g_assert_no_error (error);
  g_assert_cmpint (back->width, ==, 7);
  g_assert_cmpint (back->height, ==, 5);
  g_assert_cmpint (back->channels, ==, channels);
  g_assert_cmpuint (back->stride, ==, 7u * channels);
  g_assert_cmpmem (back->pixels, 7 * 5 * channels, img->pixels, 7 * 5 * channels);
  g_assert_cmpstr (info->mode, ==, channels == 4 ? "RGBA" : "RGB");
  g_assert_cmpint (info->bit_depth, ==, 8);
  g_assert_false (info->interlaced);
  g_assert_cmpuint (info->texts->len, ==, 0);
  rm_dir (dir);
}

static void
test_roundtrip_rgb (void)
{
  check_roundtrip (3);
}

static void
test_roundtrip_rgba (void)
{
  check_roundtrip (4);
}

static void
test_image_new_limits (void)
{
  g_autoptr(GError) error = NULL;
  g_assert_null (easel_image_new (0, 5, 3, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_null (easel_image_new (EASEL_IMAGE_MAX_SIDE + 1, 1, 3, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_null (easel_image_new (4, 4, 2, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
}

/* 16-bit RGB: the high byte of each big-endian sample survives. */
static void
test_read_rgb16 (void)
{
  const guint8 rows[] = { 0x12, 0x34, 0xab, 0xcd, 0xff, 0xff,   0x00, 0xff, 0x80, 0x00, 0x7f, 0xff };
  RawPng r = { .width = 2, .height = 1, .bit_depth = 16, .color_type = PNG_COLOR_TYPE_RGB,
               .rows = rows, .rowbytes = 12 };
  g_autoptr(GBytes) b = raw_png (&r);
  g_autoptr(EaselPngInfo) info = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselImage) img = load_bytes (b, &info, &error);
  const guint8 want[] = { 0x12, 0xab, 0xff, 0x00, 0x80, 0x7f };

  g_assert_no_error (error);
  g_assert_cmpint (img->channels, ==, 3);
  g_assert_cmpmem (img->pixels, 6, want, 6);
  g_assert_cmpint (info->bit_depth, ==, 16);
  g_assert_cmpstr (info->mode, ==, "RGB");
}

static void
test_read_gray (void)
{
  const guint8 rows8[] = { 0, 100, 255 };
  RawPng r8 = { .width = 3, .height = 1, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_GRAY,
                .rows = rows8, .rowbytes = 3 };
  /* 1-bit: 1,0,1,1 then padding -> 255,0,255,255 */
  const guint8 rows1[] = { 0xb0 };
  RawPng r1 = { .width = 4, .height = 1, .bit_depth = 1, .color_type = PNG_COLOR_TYPE_GRAY,
                .rows = rows1, .rowbytes = 1 };
  /* 16-bit gray + alpha */
  const guint8 rows16[] = { 0xc0, 0x01, 0x40, 0x02 };
  RawPng r16 = { .width = 1, .height = 1, .bit_depth = 16, .color_type = PNG_COLOR_TYPE_GRAY_ALPHA,
                 .rows = rows16, .rowbytes = 4 };
  g_autoptr(GBytes) b8 = raw_png (&r8), b1 = raw_png (&r1), b16 = raw_png (&r16);
  g_autoptr(EaselPngInfo) info = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselImage) i8 = load_bytes (b8, &info, &error);
  g_autoptr(EaselImage) i1 = NULL, i16 = NULL;
  const guint8 want8[] = { 0, 0, 0, 100, 100, 100, 255, 255, 255 };
  const guint8 want1[] = { 255, 255, 255, 0, 0, 0, 255, 255, 255, 255, 255, 255 };
  const guint8 want16[] = { 0xc0, 0xc0, 0xc0, 0x40 };

  g_assert_no_error (error);
  g_assert_cmpint (i8->channels, ==, 3);
  g_assert_cmpmem (i8->pixels, 9, want8, 9);
  g_assert_cmpstr (info->mode, ==, "L");
  g_clear_pointer (&info, easel_png_info_free);

  i1 = load_bytes (b1, &info, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (i1->pixels, 12, want1, 12);
  g_assert_cmpint (info->bit_depth, ==, 1);
  g_clear_pointer (&info, easel_png_info_free);

  i16 = load_bytes (b16, &info, &error);
  g_assert_no_error (error);
  g_assert_cmpint (i16->channels, ==, 4);
  g_assert_cmpmem (i16->pixels, 4, want16, 4);
  g_assert_cmpstr (info->mode, ==, "LA");
}

static void
test_read_palette (void)
{
  const png_color pal[3] = { { 255, 0, 0 }, { 0, 255, 0 }, { 10, 20, 30 } };
  const guint8 trns[2] = { 0, 128 };   /* entry 2 stays opaque */
  const guint8 rows[] = { 0, 1, 2,  2, 1, 0 };
  RawPng r = { .width = 3, .height = 2, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_PALETTE,
               .rows = rows, .rowbytes = 3, .palette = pal, .n_palette = 3 };
  g_autoptr(GBytes) opaque = raw_png (&r);
  g_autoptr(GBytes) with_trns = NULL;
  g_autoptr(EaselPngInfo) info = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselImage) a = load_bytes (opaque, &info, &error), b = NULL;
  const guint8 want_rgb[] = { 255, 0, 0, 0, 255, 0, 10, 20, 30,  10, 20, 30, 0, 255, 0, 255, 0, 0 };
  const guint8 want_rgba[] = { 255, 0, 0, 0,  0, 255, 0, 128,  10, 20, 30, 255,
                               10, 20, 30, 255,  0, 255, 0, 128,  255, 0, 0, 0 };

  g_assert_no_error (error);
  g_assert_cmpint (a->channels, ==, 3);
  g_assert_cmpmem (a->pixels, sizeof want_rgb, want_rgb, sizeof want_rgb);
  g_assert_cmpstr (info->mode, ==, "P");
  g_assert_false (info->has_trns);
  g_clear_pointer (&info, easel_png_info_free);

  r.trns = trns;
  r.n_trns = 2;
  with_trns = raw_png (&r);
  b = load_bytes (with_trns, &info, &error);
  g_assert_no_error (error);
  g_assert_cmpint (b->channels, ==, 4);
  g_assert_cmpmem (b->pixels, sizeof want_rgba, want_rgba, sizeof want_rgba);
  g_assert_true (info->has_trns);
}

/* RGB + tRNS colour: that colour becomes alpha 0, the rest alpha 255. */
static void
test_read_rgb_trns (void)
{
  const guint8 rows[] = { 1, 2, 3,  4, 5, 6 };
  png_color_16 key = { .red = 4, .green = 5, .blue = 6 };
  RawPng r = { .width = 2, .height = 1, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB,
               .rows = rows, .rowbytes = 6, .trns_color = &key };
  g_autoptr(GBytes) b = raw_png (&r);
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselImage) img = load_bytes (b, NULL, &error);
  const guint8 want[] = { 1, 2, 3, 255,  4, 5, 6, 0 };

  g_assert_no_error (error);
  g_assert_cmpint (img->channels, ==, 4);
  g_assert_cmpmem (img->pixels, 8, want, 8);
}

static void
test_read_interlaced (void)
{
  g_autoptr(EaselImage) src = pattern_image (13, 11, 3);
  RawPng r = { .width = 13, .height = 11, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB,
               .interlace = PNG_INTERLACE_ADAM7, .rows = src->pixels, .rowbytes = src->stride };
  g_autoptr(GBytes) b = raw_png (&r);
  g_autoptr(EaselPngInfo) info = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselImage) img = load_bytes (b, &info, &error);

  g_assert_no_error (error);
  g_assert_true (info->interlaced);
  g_assert_cmpmem (img->pixels, 13 * 11 * 3, src->pixels, 13 * 11 * 3);
}

/* A third-party PNG (written by PIL/OpenCV for the Canny references) against its raw pixels. */
static void
test_read_reference_png (void)
{
  g_autofree char *png = test_data_path ("refs", "canny", "image1.png", NULL);
  g_autofree char *st_path = test_data_path ("refs", "canny", "canny_refs.safetensors", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselImage) img = NULL;
  g_autoptr(EaselSafetensors) st = NULL;
  const EaselStTensor *t;

  if (png == NULL)
    return;
  img = easel_png_load (png, NULL, &error);
  g_assert_no_error (error);
  st = easel_safetensors_open (st_path, &error);
  g_assert_no_error (error);
  t = easel_safetensors_find (st, "image1/rgb_u8_hwc");
  g_assert_nonnull (t);
  g_assert_cmpint (t->shape[0], ==, img->height);
  g_assert_cmpint (t->shape[1], ==, img->width);
  g_assert_cmpint (img->channels, ==, 3);
  g_assert_cmpmem (img->pixels, (gsize) img->height * img->stride, t->data, t->nbytes);
}

/* ---- hostile input ---- */

static void
assert_invalid (const guint8 *d, gsize len, const char *substring)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselPngInfo) info = NULL;
  g_autoptr(EaselImage) img = easel_png_load_from_data (d, len, "bad.png", &info, &error);

  g_assert_null (img);
  g_assert_null (info);
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE);
  g_assert_true (g_str_has_prefix (error->message, "bad.png: "));
  if (substring && strstr (error->message, substring) == NULL)
    g_error ("'%s' does not say '%s'", error->message, substring);
}

static void
test_not_png (void)
{
  const guint8 text[] = "hello, this is not an image";
  assert_invalid (text, sizeof text - 1, "not a PNG");
  assert_invalid (text, 0, "not a PNG");
  assert_invalid ((const guint8 *) "\x89PNG\r\n\x1a", 7, "not a PNG");
}

/* A w x h RGB pattern encoded with texts, as a copy the test may corrupt. transfer full. */
static guint8 *
encoded_copy (gint w, gint h, const char *const *texts, gsize *len)
{
  g_autoptr(EaselImage) img = pattern_image (w, h, 3);
  g_autoptr(GBytes) b = easel_png_encode (img, texts, NULL);
  const guint8 *d;
  g_assert_nonnull (b);
  d = g_bytes_get_data (b, len);
  return g_memdup2 (d, *len);
}

/* Every prefix of a valid file is an error (never a crash or a partial image). */
static void
test_truncated (void)
{
  g_autoptr(EaselImage) img = pattern_image (9, 6, 4);
  const char *texts[] = { "parameters", "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7", NULL };
  g_autoptr(GBytes) b = easel_png_encode (img, texts, NULL);
  gsize len;
  const guint8 *d = g_bytes_get_data (b, &len);

  for (gsize n = 0; n < len; n++)
    assert_invalid (d, n, NULL);
  assert_invalid (d, len - 1, "truncated");
}

static void
test_huge_dimensions (void)
{
  gsize len;
  g_autofree guint8 *d = encoded_copy (2, 2, NULL, &len);
  const guint32 sizes[][2] = { { 100000, 100000 }, { EASEL_IMAGE_MAX_SIDE + 1, 1 },
                               { 1, EASEL_IMAGE_MAX_SIDE + 1 }, { 0x7fffffff, 0x7fffffff },
                               { 0, 5 } };

  g_assert_cmpint (find_chunk (d, len, "IHDR"), ==, 8);
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
    /* a consistent IHDR (valid CRC) that claims an absurd size */
    put_be32 (d + 16, sizes[i][0]);
    put_be32 (d + 20, sizes[i][1]);
    put_be32 (d + 29, (guint32) crc32 (0, d + 12, 17));
    assert_invalid (d, len, "outside 1..16384");
  }
}

/* A chunk claiming ~2 GiB in a tiny file is refused before anything of that size is allocated. */
static void
test_huge_chunk_length (void)
{
  const char *texts[] = { "parameters", "x", NULL };
  gsize len;
  g_autofree guint8 *d = encoded_copy (2, 2, texts, &len);
  gssize off = find_chunk (d, len, "tEXt");

  g_assert_cmpint (off, >, 0);
  put_be32 (d + off, 0x7e00003du);
  assert_invalid (d, len, "chunk tEXt claims 2113929277 bytes");
}

static void
test_bad_crc (void)
{
  gsize len;
  g_autofree guint8 *orig = encoded_copy (4, 4, NULL, &len);
  const char *chunks[] = { "IHDR", "IDAT" };

  for (guint i = 0; i < G_N_ELEMENTS (chunks); i++) {
    g_autofree guint8 *d = g_memdup2 (orig, len);
    gssize off = find_chunk (d, len, chunks[i]);
    guint32 n;
    g_assert_cmpint (off, >, 0);
    n = ((guint32) d[off] << 24) | ((guint32) d[off + 1] << 16) | ((guint32) d[off + 2] << 8) | d[off + 3];
    d[off + 8 + n] ^= 0x55;   /* first CRC byte */
    assert_invalid (d, len, "CRC");
  }
  /* corrupt compressed data with a matching CRC */
  {
    g_autofree guint8 *d = g_memdup2 (orig, len);
    gssize off = find_chunk (d, len, "IDAT");
    guint32 n = ((guint32) d[off] << 24) | ((guint32) d[off + 1] << 16) | ((guint32) d[off + 2] << 8) | d[off + 3];
    memset (d + off + 8 + 2, 0xff, n - 2);
    put_be32 (d + off + 8 + n, (guint32) crc32 (0, d + off + 4, n + 4));
    assert_invalid (d, len, NULL);
  }
}

/* ---- writing ---- */

static void
test_save_unwritable (void)
{
  g_autofree char *dir = tmp_dir ();
  g_autofree char *missing = g_build_filename (dir, "no-such-folder", "x.png", NULL);
  g_autoptr(EaselImage) img = pattern_image (3, 3, 3);
  g_autoptr(GError) error = NULL;

  g_assert_false (easel_png_save (img, missing, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_IO);
  g_assert_true (g_str_has_prefix (error->message, missing));
  g_clear_error (&error);
  /* a folder where the file should go: refused, and the folder holds nothing new */
  g_assert_false (easel_png_save (img, dir, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_IO);
  g_assert_cmpuint (count_files (dir), ==, 0);
  rm_dir (dir);
}

static void
test_save_replaces_atomically (void)
{
  g_autofree char *dir = tmp_dir ();
  g_autofree char *path = g_build_filename (dir, "out.png", NULL);
  g_autoptr(EaselImage) a = pattern_image (3, 3, 3), b = pattern_image (5, 2, 4);
  g_autoptr(EaselImage) back = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (easel_png_save (a, path, NULL, &error));
  g_assert_true (easel_png_save (b, path, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (count_files (dir), ==, 1);
  back = easel_png_load (path, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (back->width, ==, 5);
  g_assert_cmpint (back->channels, ==, 4);
  rm_dir (dir);
}

/* tEXt when latin-1 holds the value (bytes in latin-1), iTXt (UTF-8) otherwise, as PIL. */
static void
test_text_chunks (void)
{
  g_autoptr(EaselImage) img = pattern_image (2, 2, 3);
  const char *texts[] = { "parameters", "caf\xc3\xa9 au lait", "Comment", "\xe7\x8c\xab \xf0\x9f\x98\x80",
                          "empty", "", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) b = easel_png_encode (img, texts, &error);
  g_autoptr(EaselPngInfo) info = NULL;
  g_autoptr(EaselImage) back = NULL;
  const guint8 want_text[] = "tEXtparameters\0caf\xe9 au lait";
  const guint8 want_itxt[] = "iTXtComment\0\0\0\0\0\xe7\x8c\xab \xf0\x9f\x98\x80";
  gsize len;
  const guint8 *d;
  const EaselPngText *t;
  gssize off;

  g_assert_no_error (error);
  d = g_bytes_get_data (b, &len);
  off = find_chunk (d, len, "tEXt");
  g_assert_cmpint (off, >, 0);
  g_assert_cmpmem (d + off + 4, sizeof want_text - 1, want_text, sizeof want_text - 1);
  g_assert_cmpint (off, <, find_chunk (d, len, "IDAT"));
  off = find_chunk (d, len, "iTXt");
  g_assert_cmpint (off, >, 0);
  g_assert_cmpmem (d + off + 4, sizeof want_itxt - 1, want_itxt, sizeof want_itxt - 1);

  back = load_bytes (b, &info, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (info->texts->len, ==, 3);
  t = easel_png_info_find_text (info, "parameters");
  g_assert_cmpstr (t->text, ==, "caf\xc3\xa9 au lait");
  g_assert_cmpint (t->kind, ==, EASEL_PNG_TEXT_TEXT);
  g_assert_cmpuint (t->file_bytes, ==, 12);
  t = easel_png_info_find_text (info, "Comment");
  g_assert_cmpstr (t->text, ==, "\xe7\x8c\xab \xf0\x9f\x98\x80");
  g_assert_cmpint (t->kind, ==, EASEL_PNG_TEXT_ITXT);
  g_assert_false (t->replaced);
  g_assert_cmpstr (easel_png_info_find_text (info, "empty")->text, ==, "");
  g_assert_null (easel_png_info_find_text (info, "missing"));
}

static void
test_text_bad_keys (void)
{
  g_autoptr(EaselImage) img = pattern_image (2, 2, 3);
  const char *bad_keys[] = { "", " lead", "trail ", "dou  ble", "\xe7\x8c\xab",
                             "0123456789012345678901234567890123456789012345678901234567890123456789012345678901" };
  for (guint i = 0; i < G_N_ELEMENTS (bad_keys); i++) {
    const char *texts[] = { bad_keys[i], "v", NULL };
    g_autoptr(GError) error = NULL;
    g_assert_null (easel_png_encode (img, texts, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  }
  {
    const char *texts[] = { "ok", "bad \xff utf-8", NULL };
    g_autoptr(GError) error = NULL;
    g_assert_null (easel_png_encode (img, texts, &error));
    g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  }
}

/* An iTXt with invalid UTF-8 (written raw by libpng) reads with U+FFFD and says so; a ComfyUI-
 * style file (its own 'prompt' and 'workflow' JSON, latin-1 tEXt) has no parameters. */
static void
test_text_invalid_utf8_and_comfy (void)
{
  const guint8 rows[] = { 1, 2, 3 };
  png_text texts[3] = {
    { .compression = PNG_ITXT_COMPRESSION_NONE, .key = (char *) "parameters",
      .text = (char *) "ok \xff\xfe end", .lang = (char *) "", .lang_key = (char *) "" },
    { .compression = PNG_TEXT_COMPRESSION_NONE, .key = (char *) "prompt",
      .text = (char *) "{\"3\": {\"class_type\": \"KSampler\"}}" },
    { .compression = PNG_TEXT_COMPRESSION_zTXt, .key = (char *) "workflow",
      .text = (char *) "{\"nodes\": []}" },
  };
  RawPng r = { .width = 1, .height = 1, .bit_depth = 8, .color_type = PNG_COLOR_TYPE_RGB,
               .rows = rows, .rowbytes = 3, .texts = texts, .n_texts = 1 };
  g_autoptr(GBytes) b = raw_png (&r);
  g_autoptr(EaselPngInfo) info = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselImage) img = load_bytes (b, &info, &error);
  const EaselPngText *t;

  g_assert_no_error (error);
  t = easel_png_info_find_text (info, "parameters");
  g_assert_true (t->replaced);
  g_assert_true (g_utf8_validate (t->text, -1, NULL));
  g_assert_cmpstr (t->text, ==, "ok \xef\xbf\xbd\xef\xbf\xbd end");

  g_clear_pointer (&info, easel_png_info_free);
  g_clear_pointer (&img, easel_image_free);
  g_clear_pointer (&b, g_bytes_unref);
  r.texts = texts + 1;
  r.n_texts = 2;
  b = raw_png (&r);
  img = load_bytes (b, &info, &error);
  g_assert_no_error (error);
  g_assert_null (easel_png_info_find_text (info, EASEL_PARAMETERS_KEY));
  g_assert_cmpstr (easel_png_info_find_text (info, "prompt")->text, ==, "{\"3\": {\"class_type\": \"KSampler\"}}");
  g_assert_cmpint (easel_png_info_find_text (info, "workflow")->kind, ==, EASEL_PNG_TEXT_ZTXT);
  g_assert_cmpstr (easel_png_info_find_text (info, "workflow")->text, ==, "{\"nodes\": []}");
}

/* ---- float <-> 8 bits ---- */

static void
test_float_to_u8 (void)
{
  /* (3, 1, 4) planes: diffusers (x * 255).round() in float32, half to even, then uint8 */
  const float x[12] = { 0.0f, 1.0f, 0.5f, 0.25f,        /* R: 0, 255, 127.5 -> 128, 63.75 -> 64 */
                        0.1f, -0.1f, 1.2f, NAN,          /* G: 25.5 in float32 -> 26, 0, 255, NaN -> 0 */
                        0.125f, 0.3f, 0.998f, 0.7f };    /* B: 31.875 -> 32, exactly 76.5 -> 76 (even),
                                                            254.49 -> 254, exactly 178.5 -> 178 (even) */
  const guint8 want[12] = { 0, 26, 32,  255, 0, 76,  128, 255, 254,  64, 0, 178 };
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselImage) img = easel_image_new_from_f32_chw (x, 3, 1, 4, &error);
  float back[12];

  g_assert_no_error (error);
  g_assert_cmpint (img->width, ==, 4);
  g_assert_cmpint (img->height, ==, 1);
  g_assert_cmpmem (img->pixels, 12, want, 12);

  easel_image_to_f32_chw (img, back, 3);
  for (guint c = 0; c < 3; c++)
    for (guint i = 0; i < 4; i++)
      g_assert_cmpfloat (back[c * 4 + i], ==, (float) want[i * 3 + c] / 255.0f);
}

static void
test_u8_float_u8_identity (void)
{
  g_autoptr(EaselImage) img = pattern_image (16, 16, 4);
  g_autofree float *x = g_new (float, 16 * 16 * 4);
  g_autoptr(EaselImage) back = NULL;
  g_autoptr(EaselImage) rgb = NULL;
  g_autofree float *x3 = g_new (float, 16 * 16 * 3);

  easel_image_to_f32_chw (img, x, 4);
  back = easel_image_new_from_f32_chw (x, 4, 16, 16, NULL);
  g_assert_cmpmem (back->pixels, 16 * 16 * 4, img->pixels, 16 * 16 * 4);
  /* 3 of 4 channels: alpha dropped */
  easel_image_to_f32_chw (img, x3, 3);
  rgb = easel_image_new_from_f32_chw (x3, 3, 16, 16, NULL);
  for (gsize i = 0; i < 16 * 16; i++)
    g_assert_cmpmem (rgb->pixels + 3 * i, 3, img->pixels + 4 * i, 3);
}

/* ---- A1111 parameters ---- */

static EaselParameters *
parse_ok (const char *text)
{
  g_autoptr(GError) error = NULL;
  EaselParameters *p = easel_parameters_parse (text, -1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (p);
  return p;
}

static void
test_format_number (void)
{
  const struct { double v; const char *want; } cases[] = {
    { 7, "7" }, { 7.5, "7.5" }, { 0.75, "0.75" }, { 0.7, "0.7" }, { 1, "1" }, { 0, "0" },
    { 0.1, "0.1" }, { 1e-05, "1e-05" }, { 0.0001, "0.0001" }, { 1.0 / 3, "0.3333333333333333" },
    { 2.0 / 3, "0.6666666666666666" }, { -1.5, "-1.5" }, { 30, "30" }, { 12.25, "12.25" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *s = easel_format_number (cases[i].v);
    g_assert_cmpstr (s, ==, cases[i].want);
  }
}

/* What A1111 1.10 writes for a txt2img run with hires fix, a LoRA and a quoted value. */
static const char a1111_full[] =
  "a photo of a cat, (masterpiece:1.2), <lora:add_detail:0.8>\n"
  "Negative prompt: blurry, low quality\n"
  "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, "
  "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, VAE hash: 735e4c3a44, "
  "Denoising strength: 0.75, Clip skip: 2, Hires upscale: 2, Hires upscaler: Latent, "
  "Lora hashes: \"add_detail: 7c6bad76eb54\", Version: v1.10.1";

static void
test_parse_a1111 (void)
{
  g_autoptr(EaselParameters) p = parse_ok (a1111_full);
  g_autofree char *again = NULL;
  const EaselParameterExtra *e;

  g_assert_cmpstr (p->prompt, ==, "a photo of a cat, (masterpiece:1.2), <lora:add_detail:0.8>");
  g_assert_cmpstr (p->negative, ==, "blurry, low quality");
  g_assert_cmpint (p->steps, ==, 20);
  g_assert_cmpstr (p->sampler, ==, "DPM++ 2M");
  g_assert_cmpstr (p->schedule_type, ==, "Karras");
  g_assert_cmpfloat (p->cfg_scale, ==, 7.0);
  g_assert_true (p->has_seed);
  g_assert_cmpint (p->seed, ==, 1234);
  g_assert_cmpint (p->width, ==, 512);
  g_assert_cmpint (p->height, ==, 768);
  g_assert_cmpstr (p->model_hash, ==, "6ce0161689");
  g_assert_cmpstr (p->model, ==, "v1-5-pruned-emaonly");
  g_assert_cmpfloat (p->denoising_strength, ==, 0.75);
  g_assert_cmpint (p->clip_skip, ==, 2);
  g_assert_cmpuint (p->extras->len, ==, 5);
  e = g_ptr_array_index (p->extras, 0);
  g_assert_cmpstr (e->key, ==, "VAE hash");
  g_assert_cmpstr (e->value, ==, "735e4c3a44");
  g_assert_cmpstr (easel_parameters_get_extra (p, "Hires upscale"), ==, "2");
  g_assert_cmpstr (easel_parameters_get_extra (p, "Hires upscaler"), ==, "Latent");
  g_assert_cmpstr (easel_parameters_get_extra (p, "Lora hashes"), ==, "add_detail: 7c6bad76eb54");
  e = g_ptr_array_index (p->extras, 4);
  g_assert_cmpstr (e->key, ==, "Version");
  g_assert_cmpuint (easel_parameters_count (p), ==, 15);

  /* and written back byte for byte (VAE hash in its create_infotext slot, Version last) */
  again = easel_parameters_to_text (p);
  g_assert_cmpstr (again, ==, a1111_full);
}

/* The writer from fields: the defaults A1111 leaves out stay out. */
static void
test_write_fields (void)
{
  g_autoptr(EaselParameters) p = easel_parameters_new ();
  g_autofree char *text = NULL, *text2 = NULL;

  easel_parameters_set_string (&p->prompt, "a red fox in snow");
  p->steps = 30;
  easel_parameters_set_string (&p->sampler, "Euler a");
  p->cfg_scale = 7.5;
  p->has_seed = TRUE;
  p->seed = 3141592653;
  p->width = 768;
  p->height = 512;
  p->clip_skip = 1;   /* A1111 writes Clip skip only above 1 */
  text = easel_parameters_to_text (p);
  g_assert_cmpstr (text, ==, "a red fox in snow\n"
                             "Steps: 30, Sampler: Euler a, CFG scale: 7.5, Seed: 3141592653, Size: 768x512");

  easel_parameters_set_string (&p->negative, "ugly");
  easel_parameters_set_string (&p->schedule_type, "Automatic");
  easel_parameters_set_string (&p->model, "sd_xl_base_1.0");
  p->denoising_strength = 0.7;
  p->clip_skip = 2;
  easel_parameters_set_extra (p, "Comment", "a, b: \"c\"\nd\\ \t\b\f\x01");
  easel_parameters_set_extra (p, "Variation seed", "77");   /* goes to its A1111 slot */
  text2 = easel_parameters_to_text (p);
  g_assert_cmpstr (text2, ==, "a red fox in snow\nNegative prompt: ugly\n"
                              "Steps: 30, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7.5, "
                              "Seed: 3141592653, Size: 768x512, Model: sd_xl_base_1.0, Variation seed: 77, "
                              "Denoising strength: 0.7, Clip skip: 2, "
                              "Comment: \"a, b: \\\"c\\\"\\nd\\\\ \\t\\b\\f\\u0001\"");
}

static void
test_parse_multiline_and_tolerance (void)
{
  /* multi-line prompt and negative; "Steps:"-like text on an earlier line stays prompt */
  g_autoptr(EaselParameters) a = parse_ok (
    "  line one, Steps: 5, Sampler: x, CFG scale: 3  \n"
    "\n"
    "line three\n"
    "Negative prompt:   neg one\n"
    "neg two\r\n"
    "Steps: 12, Sampler: Euler, CFG scale: 4.5, Seed: -1, Size: 64x96\n  \n");
  /* no parameters line at all: everything is the prompt */
  g_autoptr(EaselParameters) b = parse_ok ("just a prompt\nSteps: 20, Seed: 3\n");
  /* no negative; duplicates (the later wins); values that do not fit their field stay extras */
  g_autoptr(EaselParameters) c = parse_ok (
    "Steps: 20, Steps: many, CFG scale: high, Size: big, Seed: 12x, Clip skip: 1, Model: m, "
    "Weird key -/ok: \"quoted\", Empty: \"\", Skipped: , Model: n");
  g_autoptr(EaselParameters) d = parse_ok ("");

  g_assert_cmpstr (a->prompt, ==, "line one, Steps: 5, Sampler: x, CFG scale: 3\n\nline three");
  g_assert_cmpstr (a->negative, ==, "neg one\nneg two");
  g_assert_cmpint (a->steps, ==, 12);
  g_assert_cmpfloat (a->cfg_scale, ==, 4.5);
  g_assert_cmpint (a->seed, ==, -1);
  g_assert_cmpint (a->width, ==, 64);
  g_assert_cmpint (a->height, ==, 96);
  g_assert_cmpuint (a->extras->len, ==, 0);

  g_assert_cmpstr (b->prompt, ==, "just a prompt\nSteps: 20, Seed: 3");
  g_assert_cmpint (b->steps, ==, -1);
  g_assert_false (b->has_seed);
  g_assert_cmpuint (easel_parameters_count (b), ==, 0);

  g_assert_cmpstr (c->prompt, ==, "");
  g_assert_cmpstr (c->negative, ==, "");
  g_assert_cmpint (c->steps, ==, -1);
  g_assert_true (isnan (c->cfg_scale));
  g_assert_cmpint (c->width, ==, 0);
  g_assert_false (c->has_seed);
  g_assert_cmpint (c->clip_skip, ==, 0);
  g_assert_cmpstr (c->model, ==, "n");
  g_assert_cmpstr (easel_parameters_get_extra (c, "Steps"), ==, "many");
  g_assert_cmpstr (easel_parameters_get_extra (c, "CFG scale"), ==, "high");
  g_assert_cmpstr (easel_parameters_get_extra (c, "Size"), ==, "big");
  g_assert_cmpstr (easel_parameters_get_extra (c, "Seed"), ==, "12x");
  g_assert_cmpstr (easel_parameters_get_extra (c, "Weird key -/ok"), ==, "quoted");
  g_assert_cmpstr (easel_parameters_get_extra (c, "Empty"), ==, "");
  g_assert_null (easel_parameters_get_extra (c, "Skipped"));

  g_assert_cmpstr (d->prompt, ==, "");
  g_assert_cmpuint (easel_parameters_count (d), ==, 0);
}

static void
test_parse_quoting (void)
{
  /* JSON-quoted values with escapes; a quote that is not JSON stays raw; unicode everywhere */
  g_autoptr(EaselParameters) p = parse_ok (
    "\xe7\x8c\xab, \xf0\x9f\x98\x80 (sakura:1.1)\n"
    "Steps: 8, Note: \"a, b: \\\"c\\\"\\nd \\u00e9\\ud83d\\ude00\", Raw: \"x\" y, Bad: \"\\q\", "
    "Unicode \xc3\xa9t\xc3\xa9: ok, Sampler: \"DPM++ 2M\"");

  g_assert_cmpstr (p->prompt, ==, "\xe7\x8c\xab, \xf0\x9f\x98\x80 (sakura:1.1)");
  g_assert_cmpstr (easel_parameters_get_extra (p, "Note"), ==, "a, b: \"c\"\nd \xc3\xa9\xf0\x9f\x98\x80");
  g_assert_cmpstr (easel_parameters_get_extra (p, "Raw"), ==, "\"x\" y");
  g_assert_cmpstr (easel_parameters_get_extra (p, "Bad"), ==, "\"\\q\"");
  g_assert_cmpstr (easel_parameters_get_extra (p, "Unicode \xc3\xa9t\xc3\xa9"), ==, "ok");
  g_assert_cmpstr (p->sampler, ==, "DPM++ 2M");
}

static void
test_parse_rejects (void)
{
  g_autoptr(GError) error = NULL;
  g_assert_null (easel_parameters_parse ("bad \xff\xfe utf-8\nSteps: 1, a: 2, b: 3", -1, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);
  g_assert_null (easel_parameters_parse ("nul\0inside", 10, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
}

/* write -> parse gives the same struct, including values A1111 itself would not read back */
static void
test_parameters_roundtrip (void)
{
  g_autoptr(EaselParameters) p = easel_parameters_new ();
  g_autoptr(EaselParameters) q = NULL;
  g_autofree char *text = NULL;

  easel_parameters_set_string (&p->prompt, "line 1\nline 2: with colon, and comma");
  easel_parameters_set_string (&p->negative, "n1\n\nn3");
  p->steps = 0;
  easel_parameters_set_string (&p->sampler, "DPM++ 2M SDE");
  easel_parameters_set_string (&p->schedule_type, "Karras");
  p->cfg_scale = 1.0 / 3;
  p->has_seed = TRUE;
  p->seed = G_MININT64;
  p->width = 1;
  p->height = 16384;
  easel_parameters_set_string (&p->model_hash, "abc");
  easel_parameters_set_string (&p->model, "a:b,c");
  p->denoising_strength = 1e-05;
  p->clip_skip = 12;
  easel_parameters_set_extra (p, "Lead", "  spaced  ");
  easel_parameters_set_extra (p, "Quote", "\"q\"");
  easel_parameters_set_extra (p, "Empty", "");
  easel_parameters_set_extra (p, "Same", "Same");
  easel_parameters_set_extra (p, "Version", "v1");
  text = easel_parameters_to_text (p);
  q = parse_ok (text);
  g_assert_true (easel_parameters_equal (p, q));
}

/* struct -> text -> PNG file -> read -> parse gives the same struct (latin-1 and not). */
static void
test_parameters_png_roundtrip (void)
{
  const char *prompts[] = { "caf\xc3\xa9 cr\xc3\xa8me, (best:1.2)", "\xe7\x8c\xab\xe3\x81\xa8\xe7\x8a\xac" };
  g_autofree char *dir = tmp_dir ();
  g_autofree char *path = g_build_filename (dir, "gen.png", NULL);

  for (guint i = 0; i < G_N_ELEMENTS (prompts); i++) {
    g_autoptr(EaselParameters) p = easel_parameters_new ();
    g_autoptr(EaselParameters) q = NULL;
    g_autoptr(EaselImage) img = pattern_image (8, 8, 3);
    g_autoptr(EaselImage) back = NULL;
    g_autoptr(EaselPngInfo) info = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    const char *texts[3] = { EASEL_PARAMETERS_KEY, NULL, NULL };
    const EaselPngText *t;

    easel_parameters_set_string (&p->prompt, prompts[i]);
    easel_parameters_set_string (&p->negative, "lowres");
    p->steps = 20;
    easel_parameters_set_string (&p->sampler, "DPM++ 2M");
    easel_parameters_set_string (&p->schedule_type, "Karras");
    p->cfg_scale = 7;
    p->has_seed = TRUE;
    p->seed = 1234;
    p->width = 8;
    p->height = 8;
    easel_parameters_set_string (&p->model_hash, "6ce0161689");
    easel_parameters_set_string (&p->model, "v1-5-pruned-emaonly");
    text = easel_parameters_to_text (p);
    texts[1] = text;
    g_assert_true (easel_png_save (img, path, texts, &error));
    back = easel_png_load (path, &info, &error);
    g_assert_no_error (error);
    t = easel_png_info_find_text (info, EASEL_PARAMETERS_KEY);
    g_assert_nonnull (t);
    g_assert_cmpint (t->kind, ==, i == 0 ? EASEL_PNG_TEXT_TEXT : EASEL_PNG_TEXT_ITXT);
    g_assert_cmpstr (t->text, ==, text);
    q = parse_ok (t->text);
    g_assert_true (easel_parameters_equal (p, q));
  }
  rm_dir (dir);
}

/* ---- easel-cli inspect ---- */

/* easel-cli.c (main's file, not in the library the tests link) defines this; same format. */
void
easel_cli_error (const char *format, ...)
{
  va_list ap;
  g_autofree char *msg = NULL;
  va_start (ap, format);
  msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  fprintf (stderr, "easel-cli: %s\n", msg);
}

static void
test_cli_inspect (void)
{
  g_autofree char *dir = NULL, *good = NULL, *bad = NULL, *want = NULL;
  g_autoptr(EaselImage) img = pattern_image (3, 2, 4);
  const char *texts[] = { "parameters", a1111_full, "workflow", "{}", NULL };

  if (g_test_subprocess ())
    exit (easel_cli_inspect_png (g_getenv ("EASEL_TEST_INSPECT"), FALSE));

  dir = tmp_dir ();
  good = g_build_filename (dir, "good.png", NULL);
  bad = g_build_filename (dir, "bad.png", NULL);
  g_assert_true (easel_png_save (img, good, texts, NULL));
  g_assert_true (g_file_set_contents (bad, "GIF89a not a png", -1, NULL));

  g_setenv ("EASEL_TEST_INSPECT", good, TRUE);
  g_test_trap_subprocess (NULL, 0, 0);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*size: 3x2\n*mode: RGBA\n*bit depth: 8\n*");
  g_test_trap_assert_stdout ("*  | Negative prompt: blurry, low quality\n*");
  g_test_trap_assert_stdout ("*  sampler: DPM++ 2M\n  schedule type: Karras\n  cfg scale: 7\n*");
  g_test_trap_assert_stdout ("*  Lora hashes (other): add_detail: 7c6bad76eb54\n*");
  g_test_trap_assert_stdout ("*other text chunks:\n  workflow: tEXt chunk, 2 bytes (ComfyUI graph JSON)\n*");
  g_test_trap_assert_stderr ("");

  g_setenv ("EASEL_TEST_INSPECT", bad, TRUE);
  g_test_trap_subprocess (NULL, 0, 0);
  g_test_trap_assert_failed ();
  g_test_trap_assert_stdout ("");
  want = g_strdup_printf ("easel-cli: %s: not a PNG file (no PNG signature)\n", bad);
  g_test_trap_assert_stderr (want);
  rm_dir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/image/roundtrip-rgb", test_roundtrip_rgb);
  g_test_add_func ("/image/roundtrip-rgba", test_roundtrip_rgba);
  g_test_add_func ("/image/new-limits", test_image_new_limits);
  g_test_add_func ("/image/read/rgb16", test_read_rgb16);
  g_test_add_func ("/image/read/gray", test_read_gray);
  g_test_add_func ("/image/read/palette", test_read_palette);
  g_test_add_func ("/image/read/rgb-trns", test_read_rgb_trns);
  g_test_add_func ("/image/read/interlaced", test_read_interlaced);
  g_test_add_func ("/image/read/reference-png", test_read_reference_png);
  g_test_add_func ("/image/hostile/not-png", test_not_png);
  g_test_add_func ("/image/hostile/truncated", test_truncated);
  g_test_add_func ("/image/hostile/huge-dimensions", test_huge_dimensions);
  g_test_add_func ("/image/hostile/huge-chunk-length", test_huge_chunk_length);
  g_test_add_func ("/image/hostile/bad-crc", test_bad_crc);
  g_test_add_func ("/image/save/unwritable", test_save_unwritable);
  g_test_add_func ("/image/save/replaces", test_save_replaces_atomically);
  g_test_add_func ("/image/text/chunks", test_text_chunks);
  g_test_add_func ("/image/text/bad-keys", test_text_bad_keys);
  g_test_add_func ("/image/text/invalid-utf8-comfy", test_text_invalid_utf8_and_comfy);
  g_test_add_func ("/image/float/to-u8", test_float_to_u8);
  g_test_add_func ("/image/float/identity", test_u8_float_u8_identity);
  g_test_add_func ("/parameters/format-number", test_format_number);
  g_test_add_func ("/parameters/parse-a1111", test_parse_a1111);
  g_test_add_func ("/parameters/write-fields", test_write_fields);
  g_test_add_func ("/parameters/multiline-tolerance", test_parse_multiline_and_tolerance);
  g_test_add_func ("/parameters/quoting", test_parse_quoting);
  g_test_add_func ("/parameters/rejects", test_parse_rejects);
  g_test_add_func ("/parameters/roundtrip", test_parameters_roundtrip);
  g_test_add_func ("/parameters/png-roundtrip", test_parameters_png_roundtrip);
  g_test_add_func ("/cli/inspect-png", test_cli_inspect);
  return g_test_run ();
}
