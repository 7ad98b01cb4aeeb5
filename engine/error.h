/* engine/error.h: Easel's GError domain and codes, shared by every part of the engine. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define EASEL_ERROR (easel_error_quark ())

typedef enum {
  EASEL_ERROR_INVALID_FILE,   /* a file is truncated, hostile or inconsistent */
  EASEL_ERROR_INVALID_INPUT,  /* a prompt, parameter or image the caller gave is unusable */
  EASEL_ERROR_UNSUPPORTED,    /* well-formed, but not something Easel handles */
  EASEL_ERROR_NOT_FOUND,      /* a file, tensor or vocabulary that is not there */
  EASEL_ERROR_IO,             /* reading or writing failed (full disk, permissions) */
  EASEL_ERROR_OUT_OF_MEMORY,  /* host or device memory ran out: callers may offload and retry */
  EASEL_ERROR_CANCELLED,      /* the job was cancelled between steps */
  EASEL_ERROR_MISMATCH,       /* a golden comparison failed */
} EaselError;

GQuark easel_error_quark (void);

G_END_DECLS
