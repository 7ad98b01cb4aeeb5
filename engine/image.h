/* engine/image.h: 8-bit RGB/RGBA images, PNG read/write with libpng, float <-> 8-bit conversion
 * as diffusers does it, and AUTOMATIC1111's "parameters" text chunk both ways.
 *
 * Images are (height, width, channels) interleaved, row-major, channels 3 (RGB) or 4 (RGBA).
 * PNG input is hostile: dimensions are capped before anything is allocated, libpng errors become
 * GErrors (never an abort), and truncated or corrupt data is an error. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define EASEL_IMAGE_MAX_SIDE 16384   /* refuse wider or taller images before allocating */

typedef struct {
  gint width, height;   /* pixels, 1..EASEL_IMAGE_MAX_SIDE */
  gint channels;        /* 3 = RGB, 4 = RGBA (not premultiplied) */
  gsize stride;         /* bytes per row = width * channels */
  guint8 *pixels;       /* (height, width, channels), owned */
} EaselImage;

/* A zeroed image. Errors: EASEL_ERROR_INVALID_INPUT for a bad size or channel count,
 * EASEL_ERROR_OUT_OF_MEMORY. transfer full. */
EaselImage *easel_image_new (gint width, gint height, gint channels, GError **error);
void        easel_image_free (EaselImage *image);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselImage, easel_image_free)

/* Float planes <-> 8 bits, as diffusers' numpy_to_pil / image processor do.
 * x: (channels, height, width) float in [0, 1] (one batch element of an NCHW tensor).
 * To 8 bits: v = rint (x * 255) in float32 (numpy's round: half to even), clamped to [0, 255];
 * NaN becomes 0. From 8 bits: x = v / 255 (float32). */
EaselImage *easel_image_new_from_f32_chw (const float *x, gint channels, gint height, gint width,
                                          GError **error);
/* out: (channels, height, width); channels 3 takes RGB (drops alpha), or image->channels. */
void        easel_image_to_f32_chw (const EaselImage *image, float *out, gint channels);

/* ---- PNG ---- */

typedef enum {
  EASEL_PNG_TEXT_TEXT,   /* tEXt: latin-1 in the file */
  EASEL_PNG_TEXT_ZTXT,   /* zTXt: latin-1, compressed */
  EASEL_PNG_TEXT_ITXT,   /* iTXt: UTF-8 */
} EaselPngTextKind;

typedef struct {
  char *key;                /* UTF-8 (converted from the file's latin-1) */
  char *text;               /* UTF-8 (tEXt/zTXt converted from latin-1) */
  gsize file_bytes;         /* length of the text as stored (before conversion) */
  EaselPngTextKind kind;
  gboolean replaced;        /* an iTXt held invalid UTF-8: bad bytes became U+FFFD */
} EaselPngText;

/* What the file says about itself, before conversion to 8-bit RGB/RGBA. */
typedef struct {
  gint width, height;
  gint bit_depth;           /* 1, 2, 4, 8 or 16 */
  const char *mode;         /* colour type as PIL names it: "L", "LA", "RGB", "RGBA", "P" (static) */
  gboolean has_trns;        /* a tRNS chunk (transparency becomes alpha) */
  gboolean interlaced;      /* Adam7 */
  GPtrArray *texts;         /* EaselPngText, in file order (before and after IDAT) */
} EaselPngInfo;

void easel_png_info_free (EaselPngInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselPngInfo, easel_png_info_free)
/* The text of the first chunk named key, or NULL. */
const EaselPngText *easel_png_info_find_text (const EaselPngInfo *info, const char *key);

/* Decodes a PNG to 8-bit RGB (3 channels) or RGBA (4, when the file has alpha or tRNS): gray,
 * gray+alpha, palette, 1/2/4-bit and 16-bit (high byte kept, as PIL does) are converted;
 * interlaced files are fine. info_out (optional) receives the header facts and text chunks.
 * Errors name display_name / path: EASEL_ERROR_INVALID_FILE (not a PNG, truncated, corrupt,
 * bad CRC in a critical chunk, larger than EASEL_IMAGE_MAX_SIDE), EASEL_ERROR_OUT_OF_MEMORY,
 * EASEL_ERROR_NOT_FOUND / EASEL_ERROR_IO for the file. transfer full. */
EaselImage *easel_png_load (const char *path, EaselPngInfo **info_out, GError **error);
EaselImage *easel_png_load_from_data (const guint8 *data, gsize len, const char *display_name,
                                      EaselPngInfo **info_out, GError **error);

/* Encodes image as an 8-bit RGB/RGBA PNG with text chunks: texts is NULL or a NULL-terminated
 * list of key, value, key, value, ... (UTF-8). As PIL's PngInfo.add_text: a value that latin-1
 * can hold goes in a tEXt chunk, any other in an uncompressed iTXt. Keys: 1-79 printable latin-1
 * characters without leading, trailing or double spaces. Chunks are written before IDAT. */
GBytes  *easel_png_encode (const EaselImage *image, const char *const *texts, GError **error);
/* easel_png_encode, then written to a temporary file beside path and renamed over it: a full
 * disk or a crash leaves no half-written file. Errors: EASEL_ERROR_IO naming path. */
gboolean easel_png_save (const EaselImage *image, const char *path, const char *const *texts,
                         GError **error);

/* ---- AUTOMATIC1111's "parameters" chunk ----
 * The text is
 *   <prompt>[\nNegative prompt: <negative>]\n<Key: value>, <Key: value>, ...
 * (modules/processing.py create_infotext; modules/infotext_utils.py quote, unquote and
 * parse_generation_parameters). */

#define EASEL_PARAMETERS_KEY "parameters"

typedef struct {
  char *key;
  char *value;
} EaselParameterExtra;

typedef struct {
  char *prompt;               /* never NULL ("" when empty) */
  char *negative;             /* never NULL; "" = no "Negative prompt:" line */
  gint steps;                 /* -1 = not given */
  char *sampler;              /* NULL = not given; e.g. "DPM++ 2M" */
  char *schedule_type;        /* NULL = not given; e.g. "Karras" */
  double cfg_scale;           /* NAN = not given */
  gboolean has_seed;
  gint64 seed;
  gint width, height;         /* "Size: WxH"; 0 = not given */
  char *model_hash, *model;   /* NULL = not given */
  double denoising_strength;  /* NAN = not given */
  gint clip_skip;             /* 0 = default (A1111's 1, never written); else >= 2 */
  GPtrArray *extras;          /* EaselParameterExtra: every other "Key: value", in order */
} EaselParameters;

/* Everything "not given". transfer full. */
EaselParameters *easel_parameters_new (void);
void             easel_parameters_free (EaselParameters *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselParameters, easel_parameters_free)
EaselParameters *easel_parameters_copy (const EaselParameters *p);
/* Same prompt and negative, and the same "Key: value" entries in the order the writer puts them
 * (so clip_skip 0 and 1 are equal: A1111 writes neither). */
gboolean         easel_parameters_equal (const EaselParameters *a, const EaselParameters *b);

/* Sets a string field (copies; NULL allowed where the field allows it). */
void        easel_parameters_set_string (char **field, const char *value);
/* Appends key: value to the extras, or replaces the value of an extra with that key in place. */
void        easel_parameters_set_extra (EaselParameters *p, const char *key, const char *value);
const char *easel_parameters_get_extra (const EaselParameters *p, const char *key);

/* The text A1111 writes for these parameters: fields in create_infotext's order (extras named like
 * one of its keys go in that key's place, the others after them, "Version" and "User" last),
 * values quoted as infotext_utils.quote does (JSON when they hold ',' ':' or a newline), numbers
 * as Python prints them (7, 7.5, 0.75). Departures, only where A1111's own reader would misread
 * its text: empty values, values with leading/trailing whitespace or starting with '"' are quoted
 * too; a key whose value equals the key is written "K: K", not bare "K"; a negative line that
 * starts with "Negative prompt:" gets that prefix once more (the reader removes one); with no
 * entries (A1111 always has some) the negative goes on the line after a bare "Negative prompt:",
 * which also marks an empty last line that strip() would drop, or ends a prompt whose last line
 * would read as parameters. A1111 reads the last line as parameters only when it holds 3 or more
 * "Key: value" pairs, so 1 or 2 given fields cannot round-trip. transfer full. */
char *easel_parameters_to_text (const EaselParameters *p);

/* Parses a parameters text (UTF-8; len -1 for NUL-terminated) as parse_generation_parameters
 * does: the last line holds the parameters when the key regex matches it 3 times or more; lines
 * before it are the prompt, up to a line starting "Negative prompt:"; every line is stripped.
 * Known keys fill the fields (a value that does not fit the field's type stays an extra, raw);
 * later duplicates win; "Size" must be WxH. Errors (EASEL_ERROR_INVALID_INPUT): invalid UTF-8 or
 * a NUL byte. transfer full. */
EaselParameters *easel_parameters_parse (const char *text, gssize len, GError **error);
/* How many "Key: value" entries easel_parameters_to_text writes (fields given + extras). */
guint easel_parameters_count (const EaselParameters *p);

/* A double as Python's str() prints A1111's numbers: integral values without ".0" (the UI sends
 * 7, not 7.0), others in the shortest form that reads back exactly (7.5, 0.75, 1e-05). */
char *easel_format_number (double v);

G_END_DECLS
