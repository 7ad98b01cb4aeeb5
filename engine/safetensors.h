/* engine/safetensors.h: the .safetensors format (8-byte little-endian header length, JSON header,
 * data area). Files are mmapped and tensors point into the mapping: nothing is copied.
 * Every header field is checked before use (see safetensors.c). */
#pragma once

#include <glib.h>

#include "dtype.h"

G_BEGIN_DECLS

#define EASEL_MAX_DIMS 8
#define EASEL_SAFETENSORS_MAX_HEADER (100u * 1024 * 1024)   /* as huggingface/safetensors */

typedef struct {
  const char *name;              /* tensor key, owned by the EaselSafetensors */
  EaselDType dtype;
  int n_dims;
  gint64 shape[EASEL_MAX_DIMS];  /* PyTorch order */
  guint64 n_elements;
  const guint8 *data;            /* inside the mapping; little endian; not aligned in general */
  gsize nbytes;
  guint64 offset;                /* of the data inside the data area */
} EaselStTensor;

typedef struct _EaselSafetensors EaselSafetensors;

/* mmap a file and validate its header. transfer full. Errors name the file and the problem. */
EaselSafetensors *easel_safetensors_open (const char *path, GError **error);
/* Parse from memory (tests, fuzzers). bytes is referenced, not copied. */
EaselSafetensors *easel_safetensors_new_from_bytes (GBytes *bytes, const char *display_name, GError **error);
void              easel_safetensors_free (EaselSafetensors *st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselSafetensors, easel_safetensors_free)

const char *easel_safetensors_path (const EaselSafetensors *st);
gsize       easel_safetensors_file_size (const EaselSafetensors *st);
/* Tensors in ascending data-offset order. */
gsize                easel_safetensors_n_tensors (const EaselSafetensors *st);
const EaselStTensor *easel_safetensors_tensor (const EaselSafetensors *st, gsize i);
const EaselStTensor *easel_safetensors_find (const EaselSafetensors *st, const char *name);
/* "__metadata__": string to string, in file order. */
gsize       easel_safetensors_n_metadata (const EaselSafetensors *st);
const char *easel_safetensors_metadata_key (const EaselSafetensors *st, gsize i);
const char *easel_safetensors_metadata_value (const EaselSafetensors *st, gsize i);
const char *easel_safetensors_metadata (const EaselSafetensors *st, const char *key);

/* A copy of the tensor as fp32 (every dtype converts). transfer full. */
float *easel_st_tensor_to_f32 (const EaselStTensor *t);
/* Shape as "[1, 4, 64, 64]" into buf. */
const char *easel_st_shape_str (const EaselStTensor *t, char *buf, gsize buf_len);

/* Writer: tensors are written in the order added; data is copied at add time (add) or made at
 * save time (add_fill). */
typedef struct _EaselSafetensorsWriter EaselSafetensorsWriter;
EaselSafetensorsWriter *easel_safetensors_writer_new (void);
void     easel_safetensors_writer_free (EaselSafetensorsWriter *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselSafetensorsWriter, easel_safetensors_writer_free)
void     easel_safetensors_writer_set_metadata (EaselSafetensorsWriter *w, const char *key, const char *value);
gboolean easel_safetensors_writer_add (EaselSafetensorsWriter *w, const char *name, EaselDType dtype,
                                       int n_dims, const gint64 *shape, const void *data, GError **error);
/* Streaming entry: the data is not given now but made at save time, when fill is called once
 * with a buffer of exactly the tensor's nbytes to fill (little endian), so a writer of many large
 * tensors holds one at a time. name is the tensor's; user_data is not owned. A FALSE return with
 * error set stops the save (the temp file is removed). */
typedef gboolean (*EaselStFillFunc) (gpointer user_data, const char *name, void *dest, gsize nbytes,
                                     GError **error);
gboolean easel_safetensors_writer_add_fill (EaselSafetensorsWriter *w, const char *name, EaselDType dtype,
                                            int n_dims, const gint64 *shape, EaselStFillFunc fill,
                                            gpointer user_data, GError **error);
/* Writes to path.tmp and renames: a full disk leaves no half-written file behind. */
gboolean easel_safetensors_writer_save (EaselSafetensorsWriter *w, const char *path, GError **error);

G_END_DECLS
