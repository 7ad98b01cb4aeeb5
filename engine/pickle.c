/* engine/pickle.c: torch zip files and a restricted unpickler (see pickle.h). The zip layout follows
 * PKWARE's APPNOTE (end of central directory, zip64 locator and record, central and local headers);
 * the opcodes are those of CPython's Lib/pickletools.py, protocols 2 to 5; the accepted globals and
 * their arguments are those of torch/_weights_only_unpickler.py for plain tensor state dicts. */
#include "pickle.h"

#include <string.h>

#include "error.h"

#define MAX_STACK (1 << 20)
#define MAX_MEMO (1 << 22)
#define MAX_OBJECTS (1 << 24)

/* --- zip --------------------------------------------------------------------------------------- */

typedef struct {
  char *name;
  const guint8 *data;
  guint64 size;
} Member;

struct _EaselTorchFile {
  char *path;
  GMappedFile *mapped;
  GBytes *bytes;
  const guint8 *p;
  gsize len;
  GArray *members;              /* Member */
  GHashTable *by_name;          /* name -> Member* */
  char *prefix;                 /* "<stem>/" */
  GPtrArray *objects;           /* every EaselPyObject, freed with the file */
  EaselPyObject *root;
};

static gboolean
fail (GError **error, const EaselTorchFile *f, const char *format, ...) G_GNUC_PRINTF (3, 4);

static gboolean
fail (GError **error, const EaselTorchFile *f, const char *format, ...)
{
  va_list ap;
  va_start (ap, format);
  g_autofree char *msg = g_strdup_vprintf (format, ap);
  va_end (ap);
  g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_FILE, "%s: %s", f->path, msg);
  return FALSE;
}

static guint64
le (const guint8 *p, int n)
{
  guint64 v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static gboolean
safe_name (const char *name)
{
  if (name[0] == '/' || name[0] == '\\' || strchr (name, '\\') || strchr (name, ':'))
    return FALSE;
  g_auto(GStrv) parts = g_strsplit (name, "/", -1);
  for (int i = 0; parts[i]; i++)
    if (strcmp (parts[i], "..") == 0)
      return FALSE;
  return TRUE;
}

static gboolean
read_zip (EaselTorchFile *f, GError **error)
{
  const guint8 *p = f->p;
  gsize len = f->len, eocd = 0;
  gboolean found = FALSE;
  guint64 n_entries, cd_size, cd_off;

  if (len >= 2 && p[0] == 0x80)
    return fail (error, f, "not a torch zip file but a bare pickle (or torch's legacy format, not supported): refused");
  if (len < 22 || le (p, 4) != 0x04034b50)
    return fail (error, f, "not a torch zip file%s", len >= 8 && le (p, 8) == 0x1950a86a20f9469cULL ? " (the legacy torch format is not supported)" : "");
  for (gsize back = 22; back <= MIN (len, (gsize) 22 + 65535) && !found; back++)
    if (le (p + len - back, 4) == 0x06054b50) {
      eocd = len - back;
      found = TRUE;
    }
  if (!found)
    return fail (error, f, "zip without an end of central directory (truncated?)");
  n_entries = le (p + eocd + 10, 2);
  cd_size = le (p + eocd + 12, 4);
  cd_off = le (p + eocd + 16, 4);
  if (n_entries == 0xffff || cd_size == 0xffffffff || cd_off == 0xffffffff) {
    if (eocd < 20 || le (p + eocd - 20, 4) != 0x07064b50)
      return fail (error, f, "zip64 sizes without a zip64 locator");
    guint64 z = le (p + eocd - 20 + 8, 8);
    if (z > len - 56 || le (p + z, 4) != 0x06064b50)
      return fail (error, f, "bad zip64 end of central directory");
    n_entries = le (p + z + 32, 8);
    cd_size = le (p + z + 40, 8);
    cd_off = le (p + z + 48, 8);
  }
  if (cd_off > len || cd_size > len - cd_off || n_entries > cd_size / 46)
    return fail (error, f, "central directory outside the file");

  const guint8 *q = p + cd_off, *end = q + cd_size;
  for (guint64 i = 0; i < n_entries; i++) {
    if (end - q < 46 || le (q, 4) != 0x02014b50)
      return fail (error, f, "bad central directory entry %" G_GUINT64_FORMAT, i);
    guint method = le (q + 10, 2), nlen = le (q + 28, 2), xlen = le (q + 30, 2), clen = le (q + 32, 2);
    guint64 csize = le (q + 20, 4), usize = le (q + 24, 4), off = le (q + 42, 4);
    if ((gsize) (end - q) < 46 + (gsize) nlen + xlen + clen)
      return fail (error, f, "central directory entry %" G_GUINT64_FORMAT " overruns", i);
    const guint8 *x = q + 46 + nlen, *xend = x + xlen;
    while (xend - x >= 4) {          /* zip64 extra: the 0xffffffff fields, in order */
      guint id = le (x, 2), sz = le (x + 2, 2);
      const guint8 *v = x + 4;
      if ((gsize) (xend - v) < sz)
        break;
      if (id == 1) {
        const guint8 *vend = v + sz;
        if (usize == 0xffffffff && vend - v >= 8) { usize = le (v, 8); v += 8; }
        if (csize == 0xffffffff && vend - v >= 8) { csize = le (v, 8); v += 8; }
        if (off == 0xffffffff && vend - v >= 8) { off = le (v, 8); v += 8; }
      }
      x += 4 + sz;
    }
    Member m = { g_strndup ((const char *) q + 46, nlen), NULL, usize };
    q += 46 + nlen + xlen + clen;
    if (!safe_name (m.name) || strlen (m.name) != nlen) {
      fail (error, f, "zip member '%s' has an unsafe name: refused", m.name);
      g_free (m.name);
      return FALSE;
    }
    g_array_append_val (f->members, m);
    Member *mp = &g_array_index (f->members, Member, f->members->len - 1);
    if (method != 0 || csize != usize)
      continue;                  /* compressed: torch never writes these; refused if asked for */
    if (off > len - 30 || le (p + off, 4) != 0x04034b50)
      return fail (error, f, "zip member '%s': bad local header", mp->name);
    guint64 data = off + 30 + le (p + off + 26, 2) + le (p + off + 28, 2);
    if (data > len || usize > len - data)
      return fail (error, f, "zip member '%s' lies outside the file (truncated?)", mp->name);
    mp->data = p + data;
  }
  for (guint i = 0; i < f->members->len; i++) {
    Member *m = &g_array_index (f->members, Member, i);
    g_hash_table_insert (f->by_name, m->name, m);
    if (f->prefix == NULL && g_str_has_suffix (m->name, "/data.pkl")) {
      const char *slash = strchr (m->name, '/');
      if (strcmp (slash, "/data.pkl") == 0)
        f->prefix = g_strndup (m->name, slash + 1 - m->name);
    }
  }
  if (f->prefix == NULL)
    return fail (error, f, "zip without <name>/data.pkl: not a torch checkpoint");
  return TRUE;
}

static const Member *
member (EaselTorchFile *f, const char *rel, GError **error)
{
  g_autofree char *name = g_strconcat (f->prefix, rel, NULL);
  const Member *m = g_hash_table_lookup (f->by_name, name);
  if (m == NULL) {
    fail (error, f, "no zip member '%s'", name);
    return NULL;
  }
  if (m->data == NULL) {
    fail (error, f, "zip member '%s' is compressed (not supported)", name);
    return NULL;
  }
  return m;
}

/* --- the restricted unpickler ------------------------------------------------------------------ */

typedef enum {
  G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER, G_STORAGE
} GlobalKind;

static const struct {
  const char *module, *name;
  GlobalKind kind;
  EaselDType dtype;
} globals[] = {
  { "collections", "OrderedDict", G_ORDERED_DICT, 0 },
  { "torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, 0 },
  { "torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, 0 },
  { "torch", "FloatStorage", G_STORAGE, EASEL_DTYPE_F32 },    { "torch", "HalfStorage", G_STORAGE, EASEL_DTYPE_F16 },
  { "torch", "BFloat16Storage", G_STORAGE, EASEL_DTYPE_BF16 }, { "torch", "DoubleStorage", G_STORAGE, EASEL_DTYPE_F64 },
  { "torch", "LongStorage", G_STORAGE, EASEL_DTYPE_I64 },     { "torch", "IntStorage", G_STORAGE, EASEL_DTYPE_I32 },
  { "torch", "ShortStorage", G_STORAGE, EASEL_DTYPE_I16 },    { "torch", "CharStorage", G_STORAGE, EASEL_DTYPE_I8 },
  { "torch", "ByteStorage", G_STORAGE, EASEL_DTYPE_U8 },      { "torch", "BoolStorage", G_STORAGE, EASEL_DTYPE_BOOL },
};

typedef struct {
  EaselTorchFile *f;
  const guint8 *p, *end;
  GPtrArray *stack;
  GPtrArray *memo;
  GError **error;
} Vm;

static EaselPyObject *
obj_new (Vm *vm, EaselPyType type)
{
  EaselPyObject *o = g_new0 (EaselPyObject, 1);
  o->type = type;
  if (type == EASEL_PY_TUPLE || type == EASEL_PY_LIST || type == EASEL_PY_DICT)
    o->items = g_ptr_array_new ();
  g_ptr_array_add (vm->f->objects, o);
  return o;
}

static void
obj_free (gpointer data)
{
  EaselPyObject *o = data;
  if (o->items)
    g_ptr_array_unref (o->items);
  g_free (o->str);
  g_free (o);
}

#define NEED(n) G_STMT_START { if ((gsize) (vm->end - vm->p) < (gsize) (n)) return fail (vm->error, vm->f, "pickle: truncated (an argument runs past the end)"); } G_STMT_END

static gboolean
push (Vm *vm, EaselPyObject *o)
{
  if (vm->stack->len >= MAX_STACK || vm->f->objects->len >= MAX_OBJECTS)
    return fail (vm->error, vm->f, "pickle: too many objects");
  g_ptr_array_add (vm->stack, o);
  return TRUE;
}

static EaselPyObject *
pop (Vm *vm)
{
  if (vm->stack->len == 0 || ((EaselPyObject *) vm->stack->pdata[vm->stack->len - 1])->type == EASEL_PY_MARK) {
    fail (vm->error, vm->f, "pickle: stack underflow");
    return NULL;
  }
  return g_ptr_array_steal_index (vm->stack, vm->stack->len - 1);
}

static EaselPyObject *
top (Vm *vm)
{
  if (vm->stack->len == 0) {
    fail (vm->error, vm->f, "pickle: empty stack");
    return NULL;
  }
  return vm->stack->pdata[vm->stack->len - 1];
}

/* Index of the topmost MARK, or -1 (error set). */
static gint64
find_mark (Vm *vm)
{
  for (gint64 i = (gint64) vm->stack->len - 1; i >= 0; i--)
    if (((EaselPyObject *) vm->stack->pdata[i])->type == EASEL_PY_MARK)
      return i;
  fail (vm->error, vm->f, "pickle: no MARK");
  return -1;
}

static gboolean
memo_put (Vm *vm, guint64 idx)
{
  EaselPyObject *o = top (vm);
  if (o == NULL)
    return FALSE;
  if (idx >= MAX_MEMO)
    return fail (vm->error, vm->f, "pickle: memo index %" G_GUINT64_FORMAT " too large", idx);
  if (idx >= vm->memo->len)
    g_ptr_array_set_size (vm->memo, idx + 1);
  vm->memo->pdata[idx] = o;
  return TRUE;
}

static gboolean
memo_get (Vm *vm, guint64 idx)
{
  if (idx >= vm->memo->len || vm->memo->pdata[idx] == NULL)
    return fail (vm->error, vm->f, "pickle: memo %" G_GUINT64_FORMAT " not set", idx);
  return push (vm, vm->memo->pdata[idx]);
}

static gboolean
global (Vm *vm, const char *module, const char *name)
{
  for (guint i = 0; i < G_N_ELEMENTS (globals); i++)
    if (strcmp (module, globals[i].module) == 0 && strcmp (name, globals[i].name) == 0) {
      EaselPyObject *o = obj_new (vm, EASEL_PY_GLOBAL);
      o->i = globals[i].kind;
      o->tensor.dtype = globals[i].dtype;
      o->str = g_strdup_printf ("%s.%s", module, name);
      return push (vm, o);
    }
  return fail (vm->error, vm->f, "pickle: global '%s.%s' is not allowed (only tensors and plain data are read): refused",
               module, name);
}

static gboolean
is_int (const EaselPyObject *o)
{
  return o->type == EASEL_PY_INT || o->type == EASEL_PY_BOOL;
}

/* ('storage', <Storage type>, key, location, numel) -> the storage in its record. */
static gboolean
persistent_load (Vm *vm, EaselPyObject *pid)
{
  if (pid->type != EASEL_PY_TUPLE || pid->items->len < 5)
    return fail (vm->error, vm->f, "pickle: persistent id is not a storage tuple");
  EaselPyObject *tag = pid->items->pdata[0], *type = pid->items->pdata[1], *key = pid->items->pdata[2],
                *numel = pid->items->pdata[4];
  if (tag->type != EASEL_PY_STR || strcmp (tag->str, "storage") != 0 || type->type != EASEL_PY_GLOBAL
      || type->i != G_STORAGE || key->type != EASEL_PY_STR || !is_int (numel) || numel->i < 0)
    return fail (vm->error, vm->f, "pickle: persistent id is not ('storage', torch.<T>Storage, key, location, numel)");
  if (!safe_name (key->str) || strchr (key->str, '/'))
    return fail (vm->error, vm->f, "pickle: storage key '%s' is not a plain name", key->str);
  g_autofree char *rel = g_strconcat ("data/", key->str, NULL);
  const Member *m = member (vm->f, rel, vm->error);
  if (m == NULL)
    return FALSE;
  gsize item = easel_dtype_size (type->tensor.dtype), want;
  if (!g_size_checked_mul (&want, (gsize) numel->i, item) || want != m->size)
    return fail (vm->error, vm->f, "pickle: storage '%s' claims %" G_GINT64_FORMAT " %s elements but its record holds %"
                 G_GUINT64_FORMAT " bytes: refused", key->str, numel->i, easel_dtype_name (type->tensor.dtype), m->size);
  EaselPyObject *s = obj_new (vm, EASEL_PY_STORAGE);
  s->str = g_strdup (key->str);
  s->tensor.dtype = type->tensor.dtype;
  s->tensor.data = m->data;
  s->tensor.storage_numel = numel->i;
  return push (vm, s);
}

/* int tuple -> dims; FALSE when not a tuple of at most EASEL_MAX_DIMS non-negative ints. */
static gboolean
int_tuple (const EaselPyObject *o, gint64 *out, int *n)
{
  if (o->type != EASEL_PY_TUPLE || o->items->len > EASEL_MAX_DIMS)
    return FALSE;
  *n = (int) o->items->len;
  for (int i = 0; i < *n; i++) {
    const EaselPyObject *v = o->items->pdata[i];
    if (!is_int (v) || v->i < 0 || v->i > ((gint64) 1 << 40))
      return FALSE;
    out[i] = v->i;
  }
  return TRUE;
}

static gboolean
rebuild_tensor (Vm *vm, EaselPyObject *args)
{
  EaselPyObject *t = obj_new (vm, EASEL_PY_TENSOR);
  EaselPyTensor *x = &t->tensor;
  int ns = 0;

  if (args->type != EASEL_PY_TUPLE || args->items->len < 4)
    return fail (vm->error, vm->f, "pickle: _rebuild_tensor_v2 with %u arguments", args->items ? args->items->len : 0);
  EaselPyObject *s = args->items->pdata[0], *off = args->items->pdata[1];
  if (s->type != EASEL_PY_STORAGE || !is_int (off) || off->i < 0 || !int_tuple (args->items->pdata[2], x->shape, &x->n_dims)
      || !int_tuple (args->items->pdata[3], x->stride, &ns) || ns != x->n_dims)
    return fail (vm->error, vm->f, "pickle: _rebuild_tensor_v2 arguments are not (storage, offset, size, stride)");
  x->dtype = s->tensor.dtype;
  x->data = s->tensor.data;
  x->storage_numel = s->tensor.storage_numel;
  x->offset = off->i;
  /* the last element it reaches must lie inside the storage */
  gint64 last = x->offset, n = 1;
  for (int d = 0; d < x->n_dims; d++) {
    n *= x->shape[d];
    if (x->shape[d] > 0)
      last += (x->shape[d] - 1) * x->stride[d];
    if (n > ((gint64) 1 << 40) || last > ((gint64) 1 << 50))
      return fail (vm->error, vm->f, "pickle: tensor too large");
  }
  if (n > 0 && last >= x->storage_numel)
    return fail (vm->error, vm->f, "pickle: tensor reaches element %" G_GINT64_FORMAT " of a storage of %" G_GINT64_FORMAT,
                 last, x->storage_numel);
  return push (vm, t);
}

static gboolean
reduce (Vm *vm)
{
  EaselPyObject *args = pop (vm), *fn = args ? pop (vm) : NULL;
  if (fn == NULL)
    return FALSE;
  if (fn->type != EASEL_PY_GLOBAL || fn->i == G_STORAGE)
    return fail (vm->error, vm->f, "pickle: REDUCE on something that is not an allowed function: refused");
  switch ((GlobalKind) fn->i) {
  case G_ORDERED_DICT:
    return push (vm, obj_new (vm, EASEL_PY_DICT));
  case G_REBUILD_TENSOR_V2:
    return rebuild_tensor (vm, args);
  case G_REBUILD_PARAMETER:
    if (args->type != EASEL_PY_TUPLE || args->items->len < 1
        || ((EaselPyObject *) args->items->pdata[0])->type != EASEL_PY_TENSOR)
      return fail (vm->error, vm->f, "pickle: _rebuild_parameter without a tensor");
    return push (vm, args->items->pdata[0]);
  case G_STORAGE:
    break;
  }
  return FALSE;
}

static gboolean
set_items (Vm *vm, EaselPyObject *dict, gint64 from)
{
  if (dict->type != EASEL_PY_DICT || (vm->stack->len - from) % 2 != 0)
    return fail (vm->error, vm->f, "pickle: SETITEM(S) on something that is not a dict");
  for (guint i = from; i < vm->stack->len; i++)
    g_ptr_array_add (dict->items, vm->stack->pdata[i]);
  g_ptr_array_set_size (vm->stack, from);
  return TRUE;
}

static gboolean
str_arg (Vm *vm, guint64 n, EaselPyType type)
{
  NEED (n);
  if (type == EASEL_PY_STR && !g_utf8_validate ((const char *) vm->p, n, NULL))
    return fail (vm->error, vm->f, "pickle: string is not UTF-8");
  EaselPyObject *o = obj_new (vm, type);
  o->str = g_strndup ((const char *) vm->p, n);
  o->len = n;
  vm->p += n;
  return push (vm, o);
}

static gboolean
run (Vm *vm)
{
  while (vm->p < vm->end) {
    guint8 op = *vm->p++;
    EaselPyObject *o, *a;
    gint64 m;
    guint64 n;
    switch (op) {
    case 0x80: NEED (1); vm->p++; break;                                    /* PROTO */
    case 0x95: NEED (8); vm->p += 8; break;                                 /* FRAME */
    case '.': return vm->stack->len == 1 ? (vm->f->root = pop (vm)) != NULL
                                         : fail (vm->error, vm->f, "pickle: STOP with %u objects", vm->stack->len);
    case '(': if (!push (vm, obj_new (vm, EASEL_PY_MARK))) return FALSE; break;
    case '}': if (!push (vm, obj_new (vm, EASEL_PY_DICT))) return FALSE; break;
    case ']': if (!push (vm, obj_new (vm, EASEL_PY_LIST))) return FALSE; break;
    case ')': if (!push (vm, obj_new (vm, EASEL_PY_TUPLE))) return FALSE; break;
    case 'N': if (!push (vm, obj_new (vm, EASEL_PY_NONE))) return FALSE; break;
    case 0x88: case 0x89:                                                   /* NEWTRUE, NEWFALSE */
      o = obj_new (vm, EASEL_PY_BOOL);
      o->i = op == 0x88;
      if (!push (vm, o)) return FALSE;
      break;
    case 'J': case 'K': case 'M': {                                         /* BININT, BININT1, BININT2 */
      int w = op == 'J' ? 4 : op == 'K' ? 1 : 2;
      NEED (w);
      o = obj_new (vm, EASEL_PY_INT);
      o->i = op == 'J' ? (gint64) (gint32) le (vm->p, 4) : (gint64) le (vm->p, w);
      vm->p += w;
      if (!push (vm, o)) return FALSE;
      break;
    }
    case 0x8a:                                                              /* LONG1 */
      NEED (1);
      n = *vm->p++;
      NEED (n);
      if (n > 8) return fail (vm->error, vm->f, "pickle: integer of %" G_GUINT64_FORMAT " bytes", n);
      o = obj_new (vm, EASEL_PY_INT);
      o->i = n ? (gint64) le (vm->p, (int) n) : 0;
      if (n > 0 && n < 8 && (vm->p[n - 1] & 0x80))
        o->i -= (gint64) 1 << (8 * n);                                      /* two's complement */
      vm->p += n;
      if (!push (vm, o)) return FALSE;
      break;
    case 'G': {                                                             /* BINFLOAT, big endian */
      NEED (8);
      guint64 bits = 0;
      for (int i = 0; i < 8; i++)
        bits = (bits << 8) | vm->p[i];
      vm->p += 8;
      o = obj_new (vm, EASEL_PY_FLOAT);
      memcpy (&o->f, &bits, 8);
      if (!push (vm, o)) return FALSE;
      break;
    }
    case 'X': NEED (4); n = le (vm->p, 4); vm->p += 4; if (!str_arg (vm, n, EASEL_PY_STR)) return FALSE; break;
    case 0x8c: NEED (1); n = *vm->p++; if (!str_arg (vm, n, EASEL_PY_STR)) return FALSE; break;
    case 0x8d: NEED (8); n = le (vm->p, 8); vm->p += 8; if (!str_arg (vm, n, EASEL_PY_STR)) return FALSE; break;
    case 'B': NEED (4); n = le (vm->p, 4); vm->p += 4; if (!str_arg (vm, n, EASEL_PY_BYTES)) return FALSE; break;
    case 'C': NEED (1); n = *vm->p++; if (!str_arg (vm, n, EASEL_PY_BYTES)) return FALSE; break;
    case 0x8e: NEED (8); n = le (vm->p, 8); vm->p += 8; if (!str_arg (vm, n, EASEL_PY_BYTES)) return FALSE; break;
    case 'q': NEED (1); if (!memo_put (vm, *vm->p++)) return FALSE; break;
    case 'r': NEED (4); n = le (vm->p, 4); vm->p += 4; if (!memo_put (vm, n)) return FALSE; break;
    case 0x94: if (!memo_put (vm, vm->memo->len)) return FALSE; break;     /* MEMOIZE */
    case 'h': NEED (1); if (!memo_get (vm, *vm->p++)) return FALSE; break;
    case 'j': NEED (4); n = le (vm->p, 4); vm->p += 4; if (!memo_get (vm, n)) return FALSE; break;
    case 'c': {                                                             /* GLOBAL "module\nname\n" */
      const guint8 *nl1 = memchr (vm->p, '\n', vm->end - vm->p);
      const guint8 *nl2 = nl1 ? memchr (nl1 + 1, '\n', vm->end - nl1 - 1) : NULL;
      if (nl2 == NULL) return fail (vm->error, vm->f, "pickle: truncated GLOBAL");
      g_autofree char *mod = g_strndup ((const char *) vm->p, nl1 - vm->p);
      g_autofree char *name = g_strndup ((const char *) nl1 + 1, nl2 - nl1 - 1);
      vm->p = nl2 + 1;
      if (!global (vm, mod, name)) return FALSE;
      break;
    }
    case 0x93: {                                                            /* STACK_GLOBAL */
      EaselPyObject *name = pop (vm), *mod = name ? pop (vm) : NULL;
      if (mod == NULL) return FALSE;
      if (mod->type != EASEL_PY_STR || name->type != EASEL_PY_STR)
        return fail (vm->error, vm->f, "pickle: STACK_GLOBAL without two strings");
      if (!global (vm, mod->str, name->str)) return FALSE;
      break;
    }
    case 'R': if (!reduce (vm)) return FALSE; break;
    case 'Q':                                                               /* BINPERSID */
      if ((o = pop (vm)) == NULL || !persistent_load (vm, o)) return FALSE;
      break;
    case 't': case 'l': case 0x91:                                          /* TUPLE, LIST, FROZENSET */
      if ((m = find_mark (vm)) < 0) return FALSE;
      o = obj_new (vm, op == 'l' ? EASEL_PY_LIST : EASEL_PY_TUPLE);
      for (guint i = m + 1; i < vm->stack->len; i++)
        g_ptr_array_add (o->items, vm->stack->pdata[i]);
      g_ptr_array_set_size (vm->stack, m);
      if (!push (vm, o)) return FALSE;
      break;
    case 0x85: case 0x86: case 0x87: {                                      /* TUPLE1..3 */
      guint k = op - 0x84;
      if (vm->stack->len < k) return fail (vm->error, vm->f, "pickle: stack underflow");
      o = obj_new (vm, EASEL_PY_TUPLE);
      for (guint i = vm->stack->len - k; i < vm->stack->len; i++) {
        if (((EaselPyObject *) vm->stack->pdata[i])->type == EASEL_PY_MARK)
          return fail (vm->error, vm->f, "pickle: MARK inside TUPLE%u", k);
        g_ptr_array_add (o->items, vm->stack->pdata[i]);
      }
      g_ptr_array_set_size (vm->stack, vm->stack->len - k);
      if (!push (vm, o)) return FALSE;
      break;
    }
    case 'a':                                                               /* APPEND */
      if ((o = pop (vm)) == NULL || (a = top (vm)) == NULL) return FALSE;
      if (a->type != EASEL_PY_LIST) return fail (vm->error, vm->f, "pickle: APPEND to a non-list");
      g_ptr_array_add (a->items, o);
      break;
    case 'e': case 0x90:                                                    /* APPENDS, ADDITEMS */
      if ((m = find_mark (vm)) < 1) return m == 0 ? fail (vm->error, vm->f, "pickle: APPENDS without a list") : FALSE;
      a = vm->stack->pdata[m - 1];
      if (a->type != EASEL_PY_LIST) return fail (vm->error, vm->f, "pickle: APPENDS to a non-list");
      for (guint i = m + 1; i < vm->stack->len; i++)
        g_ptr_array_add (a->items, vm->stack->pdata[i]);
      g_ptr_array_set_size (vm->stack, m);
      break;
    case 0x8f: if (!push (vm, obj_new (vm, EASEL_PY_LIST))) return FALSE; break;   /* EMPTY_SET */
    case 's':                                                               /* SETITEM */
      if (vm->stack->len < 3) return fail (vm->error, vm->f, "pickle: stack underflow");
      if (!set_items (vm, vm->stack->pdata[vm->stack->len - 3], vm->stack->len - 2)) return FALSE;
      break;
    case 'u':                                                               /* SETITEMS */
      if ((m = find_mark (vm)) < 1) return m == 0 ? fail (vm->error, vm->f, "pickle: SETITEMS without a dict") : FALSE;
      a = vm->stack->pdata[m - 1];
      g_ptr_array_remove_index (vm->stack, m);
      if (!set_items (vm, a, m)) return FALSE;
      break;
    case 'b':                                                               /* BUILD: only empty state */
      if ((o = pop (vm)) == NULL || top (vm) == NULL) return FALSE;
      if (!(o->type == EASEL_PY_NONE || (o->type == EASEL_PY_DICT && o->items->len == 0)))
        return fail (vm->error, vm->f, "pickle: BUILD with a state (an object's __setstate__): refused");
      break;
    case '0': if (pop (vm) == NULL) return FALSE; break;                    /* POP */
    case '1': if ((m = find_mark (vm)) < 0) return FALSE; g_ptr_array_set_size (vm->stack, m); break;
    case '2': if ((o = top (vm)) == NULL || !push (vm, o)) return FALSE; break;
    default:
      return fail (vm->error, vm->f, "pickle: opcode 0x%02x is not allowed or not known: refused", op);
    }
  }
  return fail (vm->error, vm->f, "pickle: no STOP (truncated)");
}

static EaselTorchFile *
torch_read (EaselTorchFile *f, GError **error)
{
  g_autoptr(EaselTorchFile) owned = f;
  f->members = g_array_new (FALSE, TRUE, sizeof (Member));
  f->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  f->objects = g_ptr_array_new_with_free_func (obj_free);
  if (!read_zip (f, error))
    return NULL;
  const Member *pkl = member (f, "data.pkl", error);
  if (pkl == NULL)
    return NULL;
  g_autoptr(GPtrArray) stack = g_ptr_array_new ();
  g_autoptr(GPtrArray) memo = g_ptr_array_new ();
  Vm vm = { f, pkl->data, pkl->data + pkl->size, stack, memo, error };
  if (!run (&vm))
    return NULL;
  return g_steal_pointer (&owned);
}

EaselTorchFile *
easel_torch_open (const char *path, GError **error)
{
  GError *local = NULL;
  EaselTorchFile *f = g_new0 (EaselTorchFile, 1);
  f->path = g_strdup (path);
  f->mapped = g_mapped_file_new (path, FALSE, &local);
  if (f->mapped == NULL) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_IO, "%s: %s", path, local->message);
    g_error_free (local);
    easel_torch_free (f);
    return NULL;
  }
  f->p = (const guint8 *) g_mapped_file_get_contents (f->mapped);
  f->len = g_mapped_file_get_length (f->mapped);
  return torch_read (f, error);
}

EaselTorchFile *
easel_torch_new_from_bytes (GBytes *bytes, const char *display_name, GError **error)
{
  EaselTorchFile *f = g_new0 (EaselTorchFile, 1);
  f->path = g_strdup (display_name ? display_name : "(memory)");
  f->bytes = g_bytes_ref (bytes);
  f->p = g_bytes_get_data (bytes, &f->len);
  return torch_read (f, error);
}

void
easel_torch_free (EaselTorchFile *f)
{
  if (f == NULL)
    return;
  if (f->members) {
    for (guint i = 0; i < f->members->len; i++)
      g_free (g_array_index (f->members, Member, i).name);
    g_array_unref (f->members);
  }
  if (f->by_name)
    g_hash_table_unref (f->by_name);
  if (f->objects)
    g_ptr_array_unref (f->objects);
  if (f->mapped)
    g_mapped_file_unref (f->mapped);
  if (f->bytes)
    g_bytes_unref (f->bytes);
  g_free (f->prefix);
  g_free (f->path);
  g_free (f);
}

const EaselPyObject *
easel_torch_root (const EaselTorchFile *f)
{
  return f->root;
}

/* --- reading the result ------------------------------------------------------------------------ */

const EaselPyObject *
easel_py_dict_get (const EaselPyObject *dict, const char *key)
{
  if (dict == NULL || dict->type != EASEL_PY_DICT)
    return NULL;
  for (guint i = 0; i + 1 < dict->items->len; i += 2) {
    const EaselPyObject *k = dict->items->pdata[i];
    if (k->type == EASEL_PY_STR && strcmp (k->str, key) == 0)
      return dict->items->pdata[i + 1];
  }
  return NULL;
}

static void
walk (const EaselPyObject *o, GString *path, int depth, EaselPyTensorFunc fn, gpointer user_data)
{
  gsize at = path->len;
  if (depth > 64)
    return;
  if (o->type == EASEL_PY_TENSOR) {
    fn (path->str, &o->tensor, user_data);
    return;
  }
  if (o->type == EASEL_PY_DICT) {
    for (guint i = 0; i + 1 < o->items->len; i += 2) {
      const EaselPyObject *k = o->items->pdata[i];
      if (k->type == EASEL_PY_STR)
        g_string_append_printf (path, "%s%s", at ? "." : "", k->str);
      else if (k->type == EASEL_PY_INT)
        g_string_append_printf (path, "%s%" G_GINT64_FORMAT, at ? "." : "", k->i);
      else
        continue;
      walk (o->items->pdata[i + 1], path, depth + 1, fn, user_data);
      g_string_truncate (path, at);
    }
  } else if (o->type == EASEL_PY_LIST || o->type == EASEL_PY_TUPLE) {
    for (guint i = 0; i < o->items->len; i++) {
      g_string_append_printf (path, "%s%u", at ? "." : "", i);
      walk (o->items->pdata[i], path, depth + 1, fn, user_data);
      g_string_truncate (path, at);
    }
  }
}

void
easel_py_foreach_tensor (const EaselPyObject *obj, EaselPyTensorFunc fn, gpointer user_data)
{
  g_autoptr(GString) path = g_string_new (NULL);
  if (obj)
    walk (obj, path, 0, fn, user_data);
}

gint64
easel_py_tensor_numel (const EaselPyTensor *t)
{
  gint64 n = 1;
  for (int d = 0; d < t->n_dims; d++)
    n *= t->shape[d];
  return n;
}

float *
easel_py_tensor_to_f32 (const EaselPyTensor *t)
{
  gint64 n = easel_py_tensor_numel (t), idx[EASEL_MAX_DIMS] = { 0 };
  gsize item = easel_dtype_size (t->dtype);
  float *out = g_new (float, MAX (n, 1));
  for (gint64 i = 0; i < n; i++) {
    gint64 e = t->offset;
    for (int d = 0; d < t->n_dims; d++)
      e += idx[d] * t->stride[d];
    easel_dtype_to_f32 (t->dtype, t->data + e * item, out + i, 1);
    for (int d = t->n_dims - 1; d >= 0; d--) {
      if (++idx[d] < t->shape[d])
        break;
      idx[d] = 0;
    }
  }
  return out;
}
