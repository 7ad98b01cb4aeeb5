/* engine/error.c */
#include "error.h"

G_DEFINE_QUARK (easel-error-quark, easel_error)
