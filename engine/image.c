/* engine/image.c: 8-bit images, PNG read/write through libpng, float <-> 8-bit as diffusers'
 * numpy_to_pil and image processor, and AUTOMATIC1111's "parameters" text (parameters part:
 * see the section rule below).
 *
 * libpng reports errors by calling our error callback, which must not return: it longjmps back
 * to the setjmp in png_read_guarded / png_write_guarded. Those functions keep no state of their
 * own: everything they allocate is recorded in a struct owned by the caller, which frees it on
 * either path (C11 7.13.2.1: only locals of the function that called setjmp are at risk). */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "json.h"

/* ------------------------------------------------------------------------------------------ */
/* Images                                                                                      */

static gboolean
check_size (gint width, gint height, gint channels, const char *what, GError **error)
{
  if (width < 1 || height < 1 || width > EASEL_IMAGE_MAX_SIDE || height > EASEL_IMAGE_MAX_SIDE) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "%s: size %dx%d is outside 1..%d pixels per side", what, width, height,
                 EASEL_IMAGE_MAX_SIDE);
    return FALSE;
  }
  if (channels != 3 && channels != 4) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "%s: %d channels (3 or 4 expected)", what, channels);
    return FALSE;
  }
  return TRUE;
}

EaselImage *
easel_image_new (gint width, gint height, gint channels, GError **error)
{
  EaselImage *image;
  gsize bytes;

  if (!check_size (width, height, channels, "image", error))
    return NULL;
  /* at most 16384 * 16384 * 4 = 2^30 bytes: no overflow in gsize */
  bytes = (gsize) width * (gsize) height * (gsize) channels;
  image = g_new0 (EaselImage, 1);
  image->pixels = g_try_malloc0 (bytes);
  if (image->pixels == NULL) {
    g_free (image);
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY,
                 "image %dx%dx%d: out of memory (%" G_GSIZE_FORMAT " bytes)", width, height,
                 channels, bytes);
    return NULL;
  }
  image->width = width;
  image->height = height;
  image->channels = channels;
  image->stride = (gsize) width * (gsize) channels;
  return image;
}

void
easel_image_free (EaselImage *image)
{
  if (image == NULL)
    return;
  g_free (image->pixels);
  g_free (image);
}

/* x: (channels, height, width) in [0, 1] -> (height, width, channels) 8-bit.
 * diffusers numpy_to_pil: (images * 255).round().astype("uint8") on float32; numpy rounds half
 * to even, which rintf does in the default rounding mode. */
EaselImage *
easel_image_new_from_f32_chw (const float *x, gint channels, gint height, gint width,
                              GError **error)
{
  EaselImage *image;
  gsize plane;

  g_return_val_if_fail (x != NULL, NULL);
  image = easel_image_new (width, height, channels, error);
  if (image == NULL)
    return NULL;
  plane = (gsize) width * (gsize) height;
  for (gint c = 0; c < channels; c++) {
    const float *src = x + (gsize) c * plane;
    for (gsize i = 0; i < plane; i++) {
      float v = rintf (src[i] * 255.0f);
      if (!(v >= 0.0f))          /* negative or NaN */
        v = 0.0f;
      else if (v > 255.0f)
        v = 255.0f;
      image->pixels[i * (gsize) channels + (gsize) c] = (guint8) v;
    }
  }
  return image;
}

/* out: (channels, height, width) = pixel / 255 (float32), as diffusers' image processor. */
void
easel_image_to_f32_chw (const EaselImage *image, float *out, gint channels)
{
  gsize plane;

  g_return_if_fail (image != NULL && out != NULL);
  g_return_if_fail (channels == 3 || channels == image->channels);
  plane = (gsize) image->width * (gsize) image->height;
  for (gint c = 0; c < channels; c++)
    for (gsize i = 0; i < plane; i++)
      out[(gsize) c * plane + i] = image->pixels[i * (gsize) image->channels + (gsize) c] / 255.0f;
}

/* ------------------------------------------------------------------------------------------ */
/* PNG text chunks                                                                             */

static void
png_text_free (gpointer data)
{
  EaselPngText *t = data;
  g_free (t->key);
  g_free (t->text);
  g_free (t);
}

void
easel_png_info_free (EaselPngInfo *info)
{
  if (info == NULL)
    return;
  if (info->texts)
    g_ptr_array_unref (info->texts);
  g_free (info);
}

const EaselPngText *
easel_png_info_find_text (const EaselPngInfo *info, const char *key)
{
  g_return_val_if_fail (info != NULL && key != NULL, NULL);
  for (guint i = 0; i < info->texts->len; i++) {
    const EaselPngText *t = g_ptr_array_index (info->texts, i);
    if (strcmp (t->key, key) == 0)
      return t;
  }
  return NULL;
}

static char *
latin1_to_utf8 (const char *s, gsize len)
{
  GString *out = g_string_sized_new (len + 16);
  for (gsize i = 0; i < len; i++)
    g_string_append_unichar (out, (guchar) s[i]);
  return g_string_free (out, FALSE);
}

/* UTF-8 -> latin-1 when every character fits (NULL otherwise). */
static char *
utf8_to_latin1 (const char *s)
{
  GString *out = g_string_new (NULL);
  for (const char *p = s; *p; p = g_utf8_next_char (p)) {
    gunichar c = g_utf8_get_char (p);
    if (c > 0xff) {
      g_string_free (out, TRUE);
      return NULL;
    }
    g_string_append_c (out, (char) c);
  }
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------------------------------------ */
/* PNG reading                                                                                 */

typedef struct {
  const char *name;            /* for messages */
  const guint8 *data;
  gsize len, pos;
  png_structp png;
  png_infop info;
  EaselImage *image;           /* allocated inside the guarded part; freed by the caller on error */
  png_bytep *rows;
  EaselPngInfo *pinfo;
  gboolean out_of_memory;
  char message[256];
} PngReader;

static void
png_error_cb (png_structp png, png_const_charp msg)
{
  char *message = png_get_error_ptr (png);
  g_strlcpy (message, msg ? msg : "libpng error", 256);
  png_longjmp (png, 1);
}

static void
png_warning_cb (png_structp png, png_const_charp msg)
{
  g_debug ("libpng: %s", msg);   /* e.g. a bad CRC in an ancillary chunk, which is skipped */
}

static void
png_read_cb (png_structp png, png_bytep out, size_t n)
{
  PngReader *r = png_get_io_ptr (png);
  if (n > r->len - r->pos)
    png_error (png, "truncated: the data ends inside a chunk");
  memcpy (out, r->data + r->pos, n);
  r->pos += n;
}

static const char *
png_mode_name (int color_type)
{
  switch (color_type) {
  case PNG_COLOR_TYPE_GRAY:       return "L";
  case PNG_COLOR_TYPE_GRAY_ALPHA: return "LA";
  case PNG_COLOR_TYPE_RGB:        return "RGB";
  case PNG_COLOR_TYPE_RGB_ALPHA:  return "RGBA";
  case PNG_COLOR_TYPE_PALETTE:    return "P";
  default:                        return "?";
  }
}

static void
collect_texts (PngReader *r)
{
  png_textp text = NULL;
  int n = png_get_text (r->png, r->info, &text, NULL);

  for (int i = 0; i < n; i++) {
    EaselPngText *t = g_new0 (EaselPngText, 1);
    const char *s = text[i].text ? text[i].text : "";
    gsize len = strlen (s);

    t->key = latin1_to_utf8 (text[i].key, strlen (text[i].key));
    t->file_bytes = len;
    if (text[i].compression == PNG_ITXT_COMPRESSION_NONE
        || text[i].compression == PNG_ITXT_COMPRESSION_zTXt) {
      t->kind = EASEL_PNG_TEXT_ITXT;
      if (g_utf8_validate_len (s, len, NULL)) {
        t->text = g_strndup (s, len);
      } else {
        t->text = g_utf8_make_valid (s, (gssize) len);
        t->replaced = TRUE;
      }
    } else {
      t->kind = text[i].compression == PNG_TEXT_COMPRESSION_zTXt ? EASEL_PNG_TEXT_ZTXT
                                                                   : EASEL_PNG_TEXT_TEXT;
      t->text = latin1_to_utf8 (s, len);
    }
    g_ptr_array_add (r->pinfo->texts, t);
  }
}

/* Everything libpng does while reading. Returns FALSE with r->message (libpng's error) or
 * r->out_of_memory set; whatever it allocated is in r. No local state survives a longjmp. */
static gboolean
png_read_guarded (PngReader *r)
{
  png_uint_32 w, h;
  int bit_depth, color_type, interlace;

  if (setjmp (png_jmpbuf (r->png)))
    return FALSE;

  png_set_read_fn (r->png, r, png_read_cb);
  png_set_user_limits (r->png, EASEL_IMAGE_MAX_SIDE, EASEL_IMAGE_MAX_SIDE);
  png_set_chunk_cache_max (r->png, 1000);                 /* ancillary chunks kept */
  png_set_chunk_malloc_max (r->png, 16u * 1024 * 1024);   /* also caps zTXt/iTXt inflation */
  png_read_info (r->png, r->info);
  png_get_IHDR (r->png, r->info, &w, &h, &bit_depth, &color_type, &interlace, NULL, NULL);

  r->pinfo->width = (gint) w;
  r->pinfo->height = (gint) h;
  r->pinfo->bit_depth = bit_depth;
  r->pinfo->mode = png_mode_name (color_type);
  r->pinfo->interlaced = interlace != PNG_INTERLACE_NONE;
  r->pinfo->has_trns = png_get_valid (r->png, r->info, PNG_INFO_tRNS) != 0;

  /* to 8-bit RGB or RGBA */
  if (color_type == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb (r->png);
  if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8)
    png_set_expand_gray_1_2_4_to_8 (r->png);
  if (r->pinfo->has_trns)
    png_set_tRNS_to_alpha (r->png);
  if (bit_depth == 16)
    png_set_strip_16 (r->png);       /* PIL's RGB;16B / RGBA;16B unpackers keep the high byte */
  if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA)
    png_set_gray_to_rgb (r->png);
  png_set_interlace_handling (r->png);
  png_read_update_info (r->png, r->info);

  {
    int channels = png_get_channels (r->png, r->info);
    if ((channels != 3 && channels != 4) || png_get_bit_depth (r->png, r->info) != 8
        || png_get_rowbytes (r->png, r->info) != (size_t) w * (size_t) channels)
      png_error (r->png, "unexpected layout after conversion to 8-bit RGB/RGBA");

    r->image = easel_image_new ((gint) w, (gint) h, channels, NULL);
    r->rows = g_try_new (png_bytep, h);
    if (r->image == NULL || r->rows == NULL) {
      r->out_of_memory = TRUE;
      return FALSE;
    }
    for (png_uint_32 y = 0; y < h; y++)
      r->rows[y] = r->image->pixels + (gsize) y * r->image->stride;
  }
  png_read_image (r->png, r->rows);
  png_read_end (r->png, r->info);     /* checks the rest up to IEND; texts after IDAT */
  collect_texts (r);
  return TRUE;
}

/* Reads IHDR's size from the raw bytes, to refuse absurd sizes with a clear message before
 * libpng (whose own user limits are the second line of defence) allocates anything. */
static gboolean
check_ihdr (const guint8 *data, gsize len, const char *name, GError **error)
{
  guint32 w, h;

  if (len < 8 + 8 + 13 || memcmp (data + 12, "IHDR", 4) != 0)
    return TRUE;   /* libpng says what is wrong */
  w = ((guint32) data[16] << 24) | ((guint32) data[17] << 16) | ((guint32) data[18] << 8) | data[19];
  h = ((guint32) data[20] << 24) | ((guint32) data[21] << 16) | ((guint32) data[22] << 8) | data[23];
  if (w == 0 || h == 0 || w > EASEL_IMAGE_MAX_SIDE || h > EASEL_IMAGE_MAX_SIDE) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                 "%s: PNG size %ux%u is outside 1..%d pixels per side", name, w, h,
                 EASEL_IMAGE_MAX_SIDE);
    return FALSE;
  }
  return TRUE;
}

/* Walks the chunk headers: a chunk that claims more bytes than the data holds is refused here,
 * before libpng allocates a buffer of the claimed size (up to 2 GiB from a 100-byte file). */
static gboolean
check_chunks (const guint8 *data, gsize len, const char *name, GError **error)
{
  gsize off = 8;

  while (len - off >= 8) {
    guint32 n = ((guint32) data[off] << 24) | ((guint32) data[off + 1] << 16)
                | ((guint32) data[off + 2] << 8) | data[off + 3];
    char type[5];

    for (int i = 0; i < 4; i++)
      type[i] = g_ascii_isalpha (data[off + 4 + i]) ? (char) data[off + 4 + i] : '?';
    type[4] = '\0';
    if (n > 0x7fffffffu || (gsize) n > len - off - 8 || len - off - 8 - n < 4) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                   "%s: invalid PNG: truncated: chunk %s claims %u bytes, %" G_GSIZE_FORMAT
                   " are left", name, type, n, len - off - 8);
      return FALSE;
    }
    if (memcmp (type, "IEND", 4) == 0)
      break;
    off += 12 + (gsize) n;
  }
  return TRUE;   /* a missing IEND is libpng's to report */
}

EaselImage *
easel_png_load_from_data (const guint8 *data, gsize len, const char *display_name,
                          EaselPngInfo **info_out, GError **error)
{
  PngReader r = { 0 };
  EaselImage *image = NULL;
  gboolean ok;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  r.name = display_name ? display_name : "(memory)";
  if (len < 8 || png_sig_cmp (data, 0, 8) != 0) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE,
                 "%s: not a PNG file (no PNG signature)", r.name);
    return NULL;
  }
  if (!check_ihdr (data, len, r.name, error) || !check_chunks (data, len, r.name, error))
    return NULL;

  r.data = data;
  r.len = len;
  r.pinfo = g_new0 (EaselPngInfo, 1);
  r.pinfo->texts = g_ptr_array_new_with_free_func (png_text_free);
  r.png = png_create_read_struct (PNG_LIBPNG_VER_STRING, r.message, png_error_cb, png_warning_cb);
  if (r.png)
    r.info = png_create_info_struct (r.png);
  if (r.png == NULL || r.info == NULL) {
    r.out_of_memory = TRUE;
    ok = FALSE;
  } else {
    ok = png_read_guarded (&r);
  }

  if (r.png)
    png_destroy_read_struct (&r.png, r.info ? &r.info : NULL, NULL);
  g_free (r.rows);
  if (!ok) {
    if (r.out_of_memory)
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY,
                   "%s: out of memory decoding a %dx%d PNG", r.name, r.pinfo->width, r.pinfo->height);
    else
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: invalid PNG: %s", r.name,
                   r.message);
    easel_image_free (r.image);
    easel_png_info_free (r.pinfo);
    return NULL;
  }
  image = r.image;
  if (info_out)
    *info_out = r.pinfo;
  else
    easel_png_info_free (r.pinfo);
  return image;
}

/* The whole file in memory (read errors name the file). */
static guint8 *
read_file (const char *path, gsize *len, GError **error)
{
  struct stat st;
  guint8 *buf;
  gsize got = 0;
  int fd, saved;

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    saved = errno;
    g_set_error (error, EASEL_ERROR, saved == ENOENT ? EASEL_ERROR_NOT_FOUND : EASEL_ERROR_IO,
                 "%s: %s", path, g_strerror (saved));
    return NULL;
  }
  if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode)) {
    saved = errno;
    close (fd);
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_IO, "%s: %s", path,
                 S_ISDIR (st.st_mode) ? "is a folder, not a file" : g_strerror (saved));
    return NULL;
  }
  buf = g_try_malloc ((gsize) st.st_size + 1);
  if (buf == NULL) {
    close (fd);
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_OUT_OF_MEMORY, "%s: out of memory reading %"
                 G_GINT64_FORMAT " bytes", path, (gint64) st.st_size);
    return NULL;
  }
  while (got < (gsize) st.st_size) {
    ssize_t n = read (fd, buf + got, (gsize) st.st_size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      saved = n < 0 ? errno : 0;
      close (fd);
      g_free (buf);
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_IO, "%s: %s", path,
                   saved ? g_strerror (saved) : "file shrank while being read");
      return NULL;
    }
    got += (gsize) n;
  }
  close (fd);
  *len = got;
  return buf;
}

EaselImage *
easel_png_load (const char *path, EaselPngInfo **info_out, GError **error)
{
  g_autofree guint8 *data = NULL;
  gsize len = 0;

  g_return_val_if_fail (path != NULL, NULL);
  data = read_file (path, &len, error);
  if (data == NULL)
    return NULL;
  return easel_png_load_from_data (data, len, path, info_out, error);
}

/* ------------------------------------------------------------------------------------------ */
/* PNG writing                                                                                 */

typedef struct {
  png_structp png;
  png_infop info;
  GByteArray *out;
  png_bytep *rows;
  png_textp texts;
  int n_texts;
  char message[256];
} PngWriter;

static void
png_write_cb (png_structp png, png_bytep data, size_t n)
{
  PngWriter *w = png_get_io_ptr (png);
  g_byte_array_append (w->out, data, (guint) n);
}

static void
png_flush_cb (png_structp png)
{
}

static gboolean
png_write_guarded (PngWriter *w, const EaselImage *image)
{
  if (setjmp (png_jmpbuf (w->png)))
    return FALSE;

  png_set_write_fn (w->png, w, png_write_cb, png_flush_cb);
  png_set_IHDR (w->png, w->info, (png_uint_32) image->width, (png_uint_32) image->height, 8,
                image->channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB,
                PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (w->n_texts > 0)
    png_set_text (w->png, w->info, w->texts, w->n_texts);
  png_write_info (w->png, w->info);   /* texts set before this go before IDAT, as PIL does */
  png_write_image (w->png, w->rows);
  png_write_end (w->png, NULL);
  return TRUE;
}

/* A PNG keyword: 1-79 latin-1 characters, printable (32-126, 161-255), no leading, trailing or
 * consecutive spaces (PNG spec 11.3.4.2). Returns the latin-1 bytes or NULL. */
static char *
png_keyword (const char *key, GError **error)
{
  g_autofree char *latin1 = g_utf8_validate (key, -1, NULL) ? utf8_to_latin1 (key) : NULL;
  gsize n = latin1 ? strlen (latin1) : 0;
  gboolean ok = latin1 != NULL && n >= 1 && n <= 79 && latin1[0] != ' ' && latin1[n - 1] != ' ';

  for (gsize i = 0; ok && i < n; i++) {
    guchar c = (guchar) latin1[i];
    ok = ((c >= 32 && c <= 126) || c >= 161) && !(c == ' ' && latin1[i + 1] == ' ');
  }
  if (!ok) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "PNG text key '%s' is not 1-79 printable latin-1 characters without leading, "
                 "trailing or double spaces", key);
    return NULL;
  }
  return g_steal_pointer (&latin1);
}

GBytes *
easel_png_encode (const EaselImage *image, const char *const *texts, GError **error)
{
  PngWriter w = { 0 };
  g_autoptr(GPtrArray) strings = g_ptr_array_new_with_free_func (g_free);
  gsize n_texts = 0;
  gboolean ok;

  g_return_val_if_fail (image != NULL && image->pixels != NULL, NULL);
  if (!check_size (image->width, image->height, image->channels, "PNG encode", error))
    return NULL;
  while (texts && texts[2 * n_texts]) {
    if (texts[2 * n_texts + 1] == NULL) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "PNG text '%s' has no value",
                   texts[2 * n_texts]);
      return NULL;
    }
    n_texts++;
  }

  w.texts = g_new0 (png_text, n_texts + 1);
  for (gsize i = 0; i < n_texts; i++) {
    const char *value = texts[2 * i + 1];
    char *key = png_keyword (texts[2 * i], error);
    char *latin1;

    if (key == NULL) {
      g_free (w.texts);
      return NULL;
    }
    g_ptr_array_add (strings, key);
    if (!g_utf8_validate (value, -1, NULL)) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                   "PNG text '%s': the value is not valid UTF-8", texts[2 * i]);
      g_free (w.texts);
      return NULL;
    }
    w.texts[i].key = key;
    latin1 = utf8_to_latin1 (value);
    if (latin1) {   /* PIL: tEXt when value.encode("latin-1") works, else iTXt */
      g_ptr_array_add (strings, latin1);
      w.texts[i].compression = PNG_TEXT_COMPRESSION_NONE;
      w.texts[i].text = latin1;
      w.texts[i].text_length = strlen (latin1);
    } else {
      w.texts[i].compression = PNG_ITXT_COMPRESSION_NONE;
      w.texts[i].text = (char *) value;
      w.texts[i].itxt_length = strlen (value);
      w.texts[i].lang = (char *) "";
      w.texts[i].lang_key = (char *) "";
    }
  }
  w.n_texts = (int) n_texts;

  w.rows = g_new (png_bytep, image->height);
  for (gint y = 0; y < image->height; y++)
    w.rows[y] = image->pixels + (gsize) y * image->stride;
  w.out = g_byte_array_new ();
  w.png = png_create_write_struct (PNG_LIBPNG_VER_STRING, w.message, png_error_cb, png_warning_cb);
  if (w.png)
    w.info = png_create_info_struct (w.png);
  if (w.png == NULL || w.info == NULL) {
    g_strlcpy (w.message, "out of memory", sizeof w.message);
    ok = FALSE;
  } else {
    ok = png_write_guarded (&w, image);
  }
  if (w.png)
    png_destroy_write_struct (&w.png, w.info ? &w.info : NULL);
  g_free (w.rows);
  g_free (w.texts);
  if (!ok) {
    g_byte_array_unref (w.out);
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "PNG encode: %s", w.message);
    return NULL;
  }
  return g_byte_array_free_to_bytes (w.out);
}

gboolean
easel_png_save (const EaselImage *image, const char *path, const char *const *texts,
                GError **error)
{
  g_autoptr(GBytes) png = NULL;
  g_autoptr(GError) local = NULL;
  gsize len;
  const char *data;

  g_return_val_if_fail (path != NULL, FALSE);
  png = easel_png_encode (image, texts, error);
  if (png == NULL) {
    g_prefix_error (error, "%s: ", path);
    return FALSE;
  }
  data = g_bytes_get_data (png, &len);
  /* temporary file in the same folder, fsync'd, then renamed over path */
  if (!g_file_set_contents_full (path, data, (gssize) len, G_FILE_SET_CONTENTS_CONSISTENT, 0666,
                                 &local)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_IO, "%s: cannot write: %s", path, local->message);
    return FALSE;
  }
  return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* A1111 "parameters" text                                                                     */
/* Follows modules/processing.py create_infotext and modules/infotext_utils.py (quote, unquote,
 * parse_generation_parameters with re_param). Python's str.strip() and the regex's \s use
 * str.isspace(); \w is str.isalnum() or '_'. */


static gboolean
py_isspace (gunichar c)
{
  switch (c) {
  case '\t': case '\n': case 0x0b: case 0x0c: case '\r':
  case 0x1c: case 0x1d: case 0x1e: case 0x1f: case ' ':
  case 0x85: case 0xa0: case 0x1680: case 0x2028: case 0x2029: case 0x202f: case 0x205f: case 0x3000:
    return TRUE;
  default:
    return c >= 0x2000 && c <= 0x200a;
  }
}

static gboolean
py_isword (gunichar c)
{
  if (c < 0x80)
    return g_ascii_isalnum ((char) c) || c == '_';
  switch (g_unichar_type (c)) {
  case G_UNICODE_LOWERCASE_LETTER: case G_UNICODE_UPPERCASE_LETTER: case G_UNICODE_TITLECASE_LETTER:
  case G_UNICODE_MODIFIER_LETTER: case G_UNICODE_OTHER_LETTER:
  case G_UNICODE_DECIMAL_NUMBER: case G_UNICODE_LETTER_NUMBER: case G_UNICODE_OTHER_NUMBER:
    return TRUE;
  default:
    return FALSE;
  }
}

/* str.strip() on the valid UTF-8 range [*begin, *end). */
static void
py_strip (const char **begin, const char **end)
{
  while (*begin < *end && py_isspace (g_utf8_get_char (*begin)))
    *begin = g_utf8_next_char (*begin);
  while (*end > *begin) {
    const char *prev = g_utf8_find_prev_char (*begin, *end);
    if (prev == NULL || !py_isspace (g_utf8_get_char (prev)))
      break;
    *end = prev;
  }
}

/* One match of re_param = r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)' on the line
 * s[0..n) starting at i (findall semantics). The regex never needs to backtrack usefully: the key
 * run ends where the class ends, the quoted value at its first bare '"'. Returns the end of the
 * match, or -1 with *retry set to the first position where another attempt can succeed (every
 * start before it skips to the same failure; keeps long lines linear). */
typedef struct {
  glong key0, key1, val0, val1;
} ParamMatch;

static glong
match_param (const gunichar *s, glong n, glong i, ParamMatch *m, glong *retry)
{
  glong k, q, tokens = 0;

  while (i < n && py_isspace (s[i]))
    i++;
  *retry = i + 1;
  if (i >= n || !py_isword (s[i]))
    return -1;
  for (k = i + 1; k < n && (py_isword (s[k]) || s[k] == ' ' || s[k] == '-' || s[k] == '/'); k++)
    ;
  if (k == i + 1 || k >= n || s[k] != ':') {
    *retry = MAX (i + 1, k);
    return -1;
  }
  m->key0 = i;
  m->key1 = k;
  for (k++; k < n && py_isspace (s[k]); k++)
    ;
  if (k < n && s[k] == '"') {
    for (q = k + 1; q < n && s[q] != '"'; tokens++) {
      if (s[q] == '\\') {
        if (q + 1 >= n || s[q + 1] == '\n')
          break;
        q += 2;
      } else {
        q++;
      }
    }
    if (tokens > 0 && q < n && s[q] == '"' && (q + 1 == n || s[q + 1] == ',')) {
      m->val0 = k;
      m->val1 = q + 1;
      return q + 1 == n ? n : q + 2;
    }
  }
  for (q = k; q < n && s[q] != ','; q++)
    ;
  m->val0 = k;
  m->val1 = q;
  return q == n ? n : q + 1;
}

/* Every re_param match of a line, as key, raw value pairs (UTF-8). */
static GPtrArray *
find_params (const char *line, gsize len)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  glong n = 0, i = 0, next, retry;
  g_autofree gunichar *s = g_utf8_to_ucs4_fast (line, (glong) len, &n);
  ParamMatch m;

  while (i < n) {
    next = match_param (s, n, i, &m, &retry);
    if (next < 0) {
      i = retry;
      continue;
    }
    g_ptr_array_add (out, g_ucs4_to_utf8 (s + m.key0, m.key1 - m.key0, NULL, NULL, NULL));
    g_ptr_array_add (out, g_ucs4_to_utf8 (s + m.val0, m.val1 - m.val0, NULL, NULL, NULL));
    i = next;
  }
  return out;
}

static void
parameter_extra_free (gpointer data)
{
  EaselParameterExtra *e = data;
  g_free (e->key);
  g_free (e->value);
  g_free (e);
}

EaselParameters *
easel_parameters_new (void)
{
  EaselParameters *p = g_new0 (EaselParameters, 1);
  p->prompt = g_strdup ("");
  p->negative = g_strdup ("");
  p->steps = -1;
  p->cfg_scale = NAN;
  p->denoising_strength = NAN;
  p->extras = g_ptr_array_new_with_free_func (parameter_extra_free);
  return p;
}

void
easel_parameters_free (EaselParameters *p)
{
  if (p == NULL)
    return;
  g_free (p->prompt);
  g_free (p->negative);
  g_free (p->sampler);
  g_free (p->schedule_type);
  g_free (p->model_hash);
  g_free (p->model);
  g_ptr_array_unref (p->extras);
  g_free (p);
}

void
easel_parameters_set_string (char **field, const char *value)
{
  char *old = *field;
  *field = g_strdup (value);
  g_free (old);
}

EaselParameters *
easel_parameters_copy (const EaselParameters *p)
{
  EaselParameters *c = easel_parameters_new ();
  GPtrArray *extras = c->extras;

  g_free (c->prompt);
  g_free (c->negative);
  *c = *p;
  c->extras = extras;
  c->prompt = g_strdup (p->prompt);
  c->negative = g_strdup (p->negative);
  c->sampler = g_strdup (p->sampler);
  c->schedule_type = g_strdup (p->schedule_type);
  c->model_hash = g_strdup (p->model_hash);
  c->model = g_strdup (p->model);
  for (guint i = 0; i < p->extras->len; i++) {
    const EaselParameterExtra *e = g_ptr_array_index (p->extras, i);
    easel_parameters_set_extra (c, e->key, e->value);
  }
  return c;
}

static gint
find_extra (const EaselParameters *p, const char *key)
{
  for (guint i = 0; i < p->extras->len; i++)
    if (strcmp (((EaselParameterExtra *) g_ptr_array_index (p->extras, i))->key, key) == 0)
      return (gint) i;
  return -1;
}

void
easel_parameters_set_extra (EaselParameters *p, const char *key, const char *value)
{
  gint i;
  EaselParameterExtra *e;

  g_return_if_fail (p != NULL && key != NULL && value != NULL);
  i = find_extra (p, key);
  if (i >= 0) {   /* a Python dict: the value changes, the position stays */
    easel_parameters_set_string (&((EaselParameterExtra *) g_ptr_array_index (p->extras, i))->value,
                                 value);
    return;
  }
  e = g_new (EaselParameterExtra, 1);
  e->key = g_strdup (key);
  e->value = g_strdup (value);
  g_ptr_array_add (p->extras, e);
}

const char *
easel_parameters_get_extra (const EaselParameters *p, const char *key)
{
  gint i = find_extra (p, key);
  return i >= 0 ? ((EaselParameterExtra *) g_ptr_array_index (p->extras, i))->value : NULL;
}

char *
easel_format_number (double v)
{
  char fmt[16], buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isnan (v))
    return g_strdup ("nan");
  if (isinf (v))
    return g_strdup (v > 0 ? "inf" : "-inf");
  if (v == 0)
    return g_strdup ("0");
  if (v == floor (v) && fabs (v) < 1e16)
    return g_strdup (g_ascii_formatd (buf, sizeof buf, "%.0f", v));
  /* Python's repr: the shortest digits that read back to the same double. For non-integral
   * values below 1e16 %g and repr agree on when to use an exponent (below 1e-4). */
  for (int prec = 1; prec <= 17; prec++) {
    g_snprintf (fmt, sizeof fmt, "%%.%dg", prec);
    g_ascii_formatd (buf, sizeof buf, fmt, v);
    if (g_ascii_strtod (buf, NULL) == v)
      break;
  }
  return g_strdup (buf);
}

/* The known fields, in create_infotext's order, and the other keys it writes (for placing
 * extras where A1111 puts them). */
typedef enum {
  FIELD_NONE, FIELD_STEPS, FIELD_SAMPLER, FIELD_SCHEDULE, FIELD_CFG, FIELD_SEED, FIELD_SIZE,
  FIELD_MODEL_HASH, FIELD_MODEL, FIELD_DENOISE, FIELD_CLIP_SKIP,
} Field;

static const struct {
  const char *key;
  Field field;
} a1111_order[] = {
  { "Steps", FIELD_STEPS }, { "Sampler", FIELD_SAMPLER }, { "Schedule type", FIELD_SCHEDULE },
  { "CFG scale", FIELD_CFG }, { "Image CFG scale" }, { "Seed", FIELD_SEED },
  { "Face restoration" }, { "Size", FIELD_SIZE }, { "Model hash", FIELD_MODEL_HASH },
  { "Model", FIELD_MODEL }, { "FP8 weight" }, { "Cache FP16 weight for LoRA" }, { "VAE hash" },
  { "VAE" }, { "Variation seed" }, { "Variation seed strength" }, { "Seed resize from" },
  { "Denoising strength", FIELD_DENOISE }, { "Conditional mask weight" },
  { "Clip skip", FIELD_CLIP_SKIP }, { "ENSD" }, { "Token merging ratio" },
  { "Token merging ratio hr" }, { "Init image hash" }, { "RNG" }, { "Tiling" },
  /* then p.extra_generation_params, then: */
  { "Version" }, { "User" },
};
#define A1111_N_BEFORE_EXTRAS 26

static Field
known_field (const char *key)
{
  for (guint i = 0; i < G_N_ELEMENTS (a1111_order); i++)
    if (strcmp (a1111_order[i].key, key) == 0)
      return a1111_order[i].field;
  return FIELD_NONE;
}

static gboolean
in_a1111_order (const char *key)
{
  for (guint i = 0; i < G_N_ELEMENTS (a1111_order); i++)
    if (strcmp (a1111_order[i].key, key) == 0)
      return TRUE;
  return FALSE;
}

/* The value create_infotext writes for a field, or NULL when it leaves the field out. */
static char *
field_text (const EaselParameters *p, Field f)
{
  switch (f) {
  case FIELD_STEPS:      return p->steps >= 0 ? g_strdup_printf ("%d", p->steps) : NULL;
  case FIELD_SAMPLER:    return g_strdup (p->sampler);
  case FIELD_SCHEDULE:   return g_strdup (p->schedule_type);
  case FIELD_CFG:        return isnan (p->cfg_scale) ? NULL : easel_format_number (p->cfg_scale);
  case FIELD_SEED:       return p->has_seed ? g_strdup_printf ("%" G_GINT64_FORMAT, p->seed) : NULL;
  case FIELD_SIZE:
    return p->width > 0 && p->height > 0 ? g_strdup_printf ("%dx%d", p->width, p->height) : NULL;
  case FIELD_MODEL_HASH: return g_strdup (p->model_hash);
  case FIELD_MODEL:      return g_strdup (p->model);
  case FIELD_DENOISE:
    return isnan (p->denoising_strength) ? NULL : easel_format_number (p->denoising_strength);
  case FIELD_CLIP_SKIP:  return p->clip_skip > 1 ? g_strdup_printf ("%d", p->clip_skip) : NULL;
  case FIELD_NONE:
  default:
    return NULL;
  }
}

static void
add_entry (GPtrArray *entries, const char *key, char *value)
{
  if (value == NULL)
    return;
  g_ptr_array_add (entries, g_strdup (key));
  g_ptr_array_add (entries, value);
}

static void
add_extra_entry (GPtrArray *entries, const EaselParameters *p, const char *key)
{
  const char *v = easel_parameters_get_extra (p, key);
  add_entry (entries, key, g_strdup (v));
}

/* key, value, key, value, ... in the order create_infotext writes them. */
static GPtrArray *
collect_entries (const EaselParameters *p)
{
  GPtrArray *entries = g_ptr_array_new_with_free_func (g_free);

  for (guint i = 0; i < A1111_N_BEFORE_EXTRAS; i++) {
    add_entry (entries, a1111_order[i].key, field_text (p, a1111_order[i].field));
    add_extra_entry (entries, p, a1111_order[i].key);
  }
  for (guint i = 0; i < p->extras->len; i++) {
    const EaselParameterExtra *e = g_ptr_array_index (p->extras, i);
    if (!in_a1111_order (e->key))
      add_entry (entries, e->key, g_strdup (e->value));
  }
  for (guint i = A1111_N_BEFORE_EXTRAS; i < G_N_ELEMENTS (a1111_order); i++)
    add_extra_entry (entries, p, a1111_order[i].key);
  return entries;
}

guint
easel_parameters_count (const EaselParameters *p)
{
  g_autoptr(GPtrArray) entries = collect_entries (p);
  return entries->len / 2;
}

/* Same prompt, negative and entries in the order the writer puts them (numbers compared through
 * their text, which reads back exactly; extras named like A1111's keys in A1111's places). */
gboolean
easel_parameters_equal (const EaselParameters *a, const EaselParameters *b)
{
  g_autoptr(GPtrArray) x = NULL, y = NULL;

  if (strcmp (a->prompt, b->prompt) != 0 || strcmp (a->negative, b->negative) != 0)
    return FALSE;
  x = collect_entries (a);
  y = collect_entries (b);
  if (x->len != y->len)
    return FALSE;
  for (guint i = 0; i < x->len; i++)
    if (strcmp (g_ptr_array_index (x, i), g_ptr_array_index (y, i)) != 0)
      return FALSE;
  return TRUE;
}

/* infotext_utils.quote: JSON (ensure_ascii=False) when the value holds ',' '\n' or ':'. Also
 * quoted here, where A1111's reader would not get the raw value back: empty, leading or trailing
 * whitespace, or a leading '"'. */
static void
append_value (GString *out, const char *v)
{
  const char *b = v, *e = v + strlen (v);

  py_strip (&b, &e);
  if (strpbrk (v, ",:\n") || *v == '\0' || *v == '"' || b != v || e != v + strlen (v))
    easel_json_append_string (out, v);
  else
    g_string_append (out, v);
}

static guint
count_params (const char *line, gsize len)
{
  g_autoptr(GPtrArray) found = find_params (line, len);
  return found->len / 2;
}

static const char neg_prefix[] = "Negative prompt:";

/* "\nNegative prompt: <negative>" as A1111 writes it, where A1111's reader gets it back; else
 * with the few changes that make it read back. The reader strips the prefix off every line of
 * the negative that starts with it, so a line that starts with it gets one more. With no
 * parameters line (bare; A1111 always has one) the last line must not read as parameters (3 or
 * more "Key: value" matches) and strip() must not eat an empty last line: the negative starts on
 * the line after a bare "Negative prompt:", an empty last line is written as a bare prefix, and a
 * last line that would read as parameters gets the prefix (with it, it read as a prompt line). */
static void
append_negative (GString *s, const char *neg, gboolean bare)
{
  g_auto(GStrv) lines = g_strsplit (neg, "\n", -1);
  guint n = g_strv_length (lines);

  g_string_append (s, bare ? "\nNegative prompt:" : "\nNegative prompt: ");
  for (guint i = 0; i < n; i++) {
    const char *line = lines[i];
    gboolean last = i + 1 == n;

    if (i > 0 || bare)
      g_string_append_c (s, '\n');
    if (!bare && i == 0)
      g_string_append (s, line);
    else if (bare && last && *line == '\0')
      g_string_append (s, neg_prefix);
    else if (g_str_has_prefix (line, neg_prefix)
             || (bare && last && count_params (line, strlen (line)) >= 3))
      g_string_append_printf (s, "%s %s", neg_prefix, line);
    else
      g_string_append (s, line);
  }
}

/* With no parameters line and no negative, the prompt's last line must not read as parameters
 * and an empty last line must survive strip(): a bare "Negative prompt:" after it does both. */
static void
append_bare_end (GString *s, const char *prompt)
{
  const char *last = strrchr (prompt, '\n');

  last = last ? last + 1 : prompt;
  if (*last == '\0' ? *prompt != '\0' : count_params (last, strlen (last)) >= 3)
    g_string_append (s, "\nNegative prompt:");
}

char *
easel_parameters_to_text (const EaselParameters *p)
{
  g_autoptr(GPtrArray) entries = collect_entries (p);
  GString *s = g_string_new (p->prompt);
  const char *b, *e;

  if (*p->negative)
    append_negative (s, p->negative, entries->len == 0);
  else if (entries->len == 0)
    append_bare_end (s, p->prompt);
  if (entries->len > 0)
    g_string_append_c (s, '\n');
  for (guint i = 0; i < entries->len; i += 2) {
    if (i > 0)
      g_string_append (s, ", ");
    g_string_append (s, g_ptr_array_index (entries, i));
    g_string_append (s, ": ");
    append_value (s, g_ptr_array_index (entries, i + 1));
  }
  /* f"{prompt}{negative}\n{params}".strip() */
  b = s->str;
  e = s->str + s->len;
  py_strip (&b, &e);
  {
    char *text = g_strndup (b, (gsize) (e - b));
    g_string_free (s, TRUE);
    return text;
  }
}

/* infotext_utils.unquote: a value in double quotes is read as a JSON string when it is one
 * (here also: without a NUL character, which a C string cannot hold); else kept as it is. */
static char *
unquote (const char *v)
{
  gsize n = strlen (v), len = 0;
  g_autoptr(EaselJson) json = NULL;
  const char *s;

  if (n < 2 || v[0] != '"' || v[n - 1] != '"')
    return g_strdup (v);
  json = easel_json_parse (v, n, NULL);
  s = json ? easel_json_string (json, &len) : NULL;
  if (s == NULL || strlen (s) != len)
    return g_strdup (v);
  return g_strdup (s);
}

static gboolean
all_digits (const char *s)
{
  if (*s == '\0')
    return FALSE;
  for (; *s; s++)
    if (!g_ascii_isdigit (*s))
      return FALSE;
  return TRUE;
}

static gboolean
parse_int (const char *s, gboolean allow_minus, gint64 min, gint64 max, gint64 *out)
{
  if (!all_digits (allow_minus && *s == '-' ? s + 1 : s))
    return FALSE;
  return g_ascii_string_to_signed (s, 10, min, max, out, NULL);
}

/* A decimal number as Python's float() reads A1111's: [-+]digits[.digits][e[-+]digits], finite. */
static gboolean
parse_number (const char *s, double *out)
{
  const char *p = s;
  gsize digits = 0;
  double v;

  if (*p == '-' || *p == '+')
    p++;
  for (; g_ascii_isdigit (*p); p++)
    digits++;
  if (*p == '.')
    for (p++; g_ascii_isdigit (*p); p++)
      digits++;
  if (digits == 0)
    return FALSE;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '-' || *p == '+')
      p++;
    if (!g_ascii_isdigit (*p))
      return FALSE;
    while (g_ascii_isdigit (*p))
      p++;
  }
  if (*p != '\0')
    return FALSE;
  v = g_ascii_strtod (s, NULL);
  if (!isfinite (v))
    return FALSE;
  *out = v;
  return TRUE;
}

/* Sets field f from a text value; FALSE (field unchanged) when the value does not fit. */
static gboolean
set_field (EaselParameters *p, Field f, const char *v)
{
  gint64 a, b;
  double d;
  const char *x;

  switch (f) {
  case FIELD_STEPS:
    if (!parse_int (v, FALSE, 0, G_MAXINT, &a))
      return FALSE;
    p->steps = (gint) a;
    return TRUE;
  case FIELD_SAMPLER:    easel_parameters_set_string (&p->sampler, v); return TRUE;
  case FIELD_SCHEDULE:   easel_parameters_set_string (&p->schedule_type, v); return TRUE;
  case FIELD_MODEL_HASH: easel_parameters_set_string (&p->model_hash, v); return TRUE;
  case FIELD_MODEL:      easel_parameters_set_string (&p->model, v); return TRUE;
  case FIELD_CFG:
    if (!parse_number (v, &d))
      return FALSE;
    p->cfg_scale = d;
    return TRUE;
  case FIELD_DENOISE:
    if (!parse_number (v, &d))
      return FALSE;
    p->denoising_strength = d;
    return TRUE;
  case FIELD_SEED:
    if (!parse_int (v, TRUE, G_MININT64, G_MAXINT64, &a))
      return FALSE;
    p->seed = a;
    p->has_seed = TRUE;
    return TRUE;
  case FIELD_SIZE: {   /* re_imagesize = ^(\d+)x(\d+)$ */
    g_autofree char *w = NULL;
    x = strchr (v, 'x');
    if (x == NULL)
      return FALSE;
    w = g_strndup (v, (gsize) (x - v));
    if (!parse_int (w, FALSE, 1, G_MAXINT, &a) || !parse_int (x + 1, FALSE, 1, G_MAXINT, &b))
      return FALSE;
    p->width = (gint) a;
    p->height = (gint) b;
    return TRUE;
  }
  case FIELD_CLIP_SKIP:   /* A1111 leaves out 1 (the default) and reads a missing one as 1 */
    if (!parse_int (v, FALSE, 1, G_MAXINT, &a))
      return FALSE;
    p->clip_skip = a == 1 ? 0 : (gint) a;
    return TRUE;
  case FIELD_NONE:
  default:
    return FALSE;
  }
}

static void
clear_field (EaselParameters *p, Field f)
{
  switch (f) {
  case FIELD_STEPS:      p->steps = -1; break;
  case FIELD_SAMPLER:    g_clear_pointer (&p->sampler, g_free); break;
  case FIELD_SCHEDULE:   g_clear_pointer (&p->schedule_type, g_free); break;
  case FIELD_MODEL_HASH: g_clear_pointer (&p->model_hash, g_free); break;
  case FIELD_MODEL:      g_clear_pointer (&p->model, g_free); break;
  case FIELD_CFG:        p->cfg_scale = NAN; break;
  case FIELD_DENOISE:    p->denoising_strength = NAN; break;
  case FIELD_SEED:       p->has_seed = FALSE; p->seed = 0; break;
  case FIELD_SIZE:       p->width = p->height = 0; break;
  case FIELD_CLIP_SKIP:  p->clip_skip = 0; break;
  case FIELD_NONE:
  default:
    break;
  }
}

/* res[k] = v: a later duplicate replaces the earlier value (field or extra). */
static void
apply_param (EaselParameters *p, const char *key, const char *value)
{
  Field f = known_field (key);
  gint i;

  if (f != FIELD_NONE) {
    clear_field (p, f);
    if ((i = find_extra (p, key)) >= 0)
      g_ptr_array_remove_index (p->extras, (guint) i);
    if (set_field (p, f, value))
      return;
  }
  easel_parameters_set_extra (p, key, value);
}

/* s += ("" if s == "" else "\n") + line */
static void
append_line (char **s, const char *b, const char *e)
{
  char *old = *s;
  g_autofree char *line = g_strndup (b, (gsize) (e - b));
  *s = g_strconcat (old, *old ? "\n" : "", line, NULL);
  g_free (old);
}

EaselParameters *
easel_parameters_parse (const char *text, gssize len, GError **error)
{
  g_autoptr(EaselParameters) p = NULL;
  g_autoptr(GPtrArray) params = NULL;
  const char *b, *e, *last, *lines_end, *line;
  gboolean negative = FALSE;

  g_return_val_if_fail (text != NULL || len == 0, NULL);
  if (len < 0)
    len = (gssize) strlen (text);
  if (memchr (text, '\0', (gsize) len)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "parameters text: contains a NUL byte");
    return NULL;
  }
  if (!g_utf8_validate_len (text, (gsize) len, NULL)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "parameters text: not valid UTF-8");
    return NULL;
  }

  p = easel_parameters_new ();
  b = text;
  e = text + len;
  py_strip (&b, &e);

  /* *lines, lastline = x.strip().split("\n"); the last line holds parameters when re_param
   * matches it 3 times or more, else it is one more prompt line */
  last = e;
  while (last > b && last[-1] != '\n')
    last--;
  params = find_params (last, (gsize) (e - last));
  if (params->len / 2 >= 3) {
    lines_end = last > b ? last - 1 : NULL;   /* NULL: the text is that one line */
  } else {
    g_ptr_array_set_size (params, 0);
    lines_end = e;
  }

  for (line = b; lines_end != NULL && line <= lines_end;) {
    const char *nl = memchr (line, '\n', (gsize) (lines_end - line));
    const char *le = nl ? nl : lines_end, *lb = line;

    py_strip (&lb, &le);
    if ((gsize) (le - lb) >= sizeof neg_prefix - 1
        && memcmp (lb, neg_prefix, sizeof neg_prefix - 1) == 0) {
      negative = TRUE;
      lb += sizeof neg_prefix - 1;
      py_strip (&lb, &le);
    }
    append_line (negative ? &p->negative : &p->prompt, lb, le);
    if (nl == NULL)
      break;
    line = nl + 1;
  }

  for (guint i = 0; i < params->len; i += 2) {
    const char *key = g_ptr_array_index (params, i);
    const char *raw = g_ptr_array_index (params, i + 1);
    g_autofree char *value = NULL;

    if (*raw == '\0')   /* A1111: v[0] raises IndexError, the key is skipped */
      continue;
    value = unquote (raw);
    apply_param (p, key, value);
  }
  return g_steal_pointer (&p);
}
