/* engine/pickle.h: PyTorch's zip checkpoints (.ckpt, .pt, .pth) read without executing anything.
 *
 * The file is a zip (torch.save since 1.6; stored members, zip64 allowed) with "<stem>/data.pkl",
 * a pickle (protocols 2 to 5), and "<stem>/data/<key>", each the raw little-endian bytes of one
 * storage. The pickle is run by a restricted machine that builds only plain data: None, bools, ints,
 * floats, str, bytes, tuples, lists, dicts, and tensors. The only globals it accepts are
 * collections.OrderedDict, torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the torch.*Storage
 * types; any other (os.system, builtins.eval, a pickled nn.Module ...) is refused before anything is
 * called, as torch.load (weights_only=True) does. Every length is checked against the input, every
 * storage's byte count against its record (numel x item size == record size) before any use, and
 * every tensor's strides against its storage; member names with ".." or a leading "/" are refused.
 * Storages stay in the mapping: nothing is copied or allocated at the claimed sizes.
 * The legacy non-zip format (torch < 1.6) is refused with an error that says so. */
#pragma once

#include <glib.h>

#include "dtype.h"
#include "safetensors.h"

G_BEGIN_DECLS

typedef enum {
  EASEL_PY_NONE,
  EASEL_PY_BOOL,
  EASEL_PY_INT,
  EASEL_PY_FLOAT,
  EASEL_PY_STR,
  EASEL_PY_BYTES,
  EASEL_PY_TUPLE,
  EASEL_PY_LIST,
  EASEL_PY_DICT,      /* dict and OrderedDict */
  EASEL_PY_TENSOR,
  EASEL_PY_STORAGE,   /* internal: a persistent-id storage */
  EASEL_PY_GLOBAL,    /* internal: one of the accepted globals */
  EASEL_PY_MARK,      /* internal */
} EaselPyType;

typedef struct _EaselPyObject EaselPyObject;

typedef struct {
  EaselDType dtype;
  const guint8 *data;     /* the storage's first element, inside the mapping (not aligned in general) */
  gint64 storage_numel;   /* elements of the storage */
  gint64 offset;          /* in elements */
  int n_dims;
  gint64 shape[EASEL_MAX_DIMS];
  gint64 stride[EASEL_MAX_DIMS];
} EaselPyTensor;

struct _EaselPyObject {
  EaselPyType type;
  gint64 i;               /* BOOL, INT */
  double f;               /* FLOAT */
  char *str;              /* STR (UTF-8, NUL-terminated), BYTES; also STORAGE key, GLOBAL name */
  gsize len;              /* STR, BYTES */
  GPtrArray *items;       /* TUPLE, LIST: the items; DICT: key, value, key, value ... */
  EaselPyTensor tensor;   /* TENSOR; STORAGE uses dtype, data, storage_numel */
};

typedef struct _EaselTorchFile EaselTorchFile;

/* Maps and reads a torch zip file. Errors name the file and what is wrong. transfer full. */
EaselTorchFile *easel_torch_open (const char *path, GError **error);
/* The same from memory (tests, fuzzers); bytes is referenced. */
EaselTorchFile *easel_torch_new_from_bytes (GBytes *bytes, const char *display_name, GError **error);
void            easel_torch_free (EaselTorchFile *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselTorchFile, easel_torch_free)

/* The unpickled object; owned by f. */
const EaselPyObject *easel_torch_root (const EaselTorchFile *f);

/* dict lookup by str key: the value, or NULL. */
const EaselPyObject *easel_py_dict_get (const EaselPyObject *dict, const char *key);

/* Calls fn for every tensor under obj, depth first, with its path of dict keys and list indexes
 * joined by '.' ("state_dict.model.diffusion_model.out.0.weight", "string_to_param.*"). */
typedef void (*EaselPyTensorFunc) (const char *path, const EaselPyTensor *t, gpointer user_data);
void easel_py_foreach_tensor (const EaselPyObject *obj, EaselPyTensorFunc fn, gpointer user_data);

gint64 easel_py_tensor_numel (const EaselPyTensor *t);
/* The tensor's elements in row-major order as F32 (strides followed). transfer full. */
float *easel_py_tensor_to_f32 (const EaselPyTensor *t);

G_END_DECLS
