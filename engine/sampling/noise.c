/* engine/sampling/noise.c: noise sources of the stochastic samplers (torch generator, Brownian tree,
 * replay) and their recording; see noise.h for the conventions and the tree's layout. The torch
 * conventions follow ComfyUI's default_noise_sampler (comfy/k_diffusion/sampling.py) and A1111's
 * ImageRNG (modules/rng.py); the tree's interface follows k-diffusion's BrownianTreeNoiseSampler.
 *
 * Shapes: every call fills n floats; the tree keeps its W vectors as n float64 values. */
#include "noise.h"

#include <math.h>
#include <string.h>

#include "engine/error.h"

#define TREE_TOL 1e-6       /* leaf width and query slack, in sigma */
#define TREE_MAX_DEPTH 40
#define TREE_CACHE 2        /* W(sigma_next) of one step is W(sigma) of the next; lookups assume 2 */

typedef enum { SOURCE_RNG, SOURCE_BROWNIAN, SOURCE_REPLAY } SourceKind;

typedef struct {
  double t;
  double *w;                /* n values; NULL = empty slot */
} TreeEntry;

struct _EaselNoiseSource {
  SourceKind kind;
  gsize n;
  /* SOURCE_RNG */
  EaselRng *rng;
  /* SOURCE_BROWNIAN */
  guint64 seed;
  double lo, hi;
  guint depth;
  double *wa, *wb, *z;      /* scratch, n each */
  TreeEntry cache[TREE_CACHE];
  guint cache_next;
  /* SOURCE_REPLAY */
  float *values;
  gsize n_calls, next_call;
  /* recording */
  gboolean recording;
  GArray *record;           /* float */
};

static EaselNoiseSource *
source_new (SourceKind kind, gsize n)
{
  EaselNoiseSource *s = g_new0 (EaselNoiseSource, 1);
  s->kind = kind;
  s->n = n;
  return s;
}

EaselNoiseSource *
easel_noise_source_new_from_rng (EaselRng *rng, gsize n)
{
  EaselNoiseSource *s;
  g_return_val_if_fail (rng != NULL, NULL);
  s = source_new (SOURCE_RNG, n);
  s->rng = rng;
  return s;
}

EaselNoiseSource *
easel_noise_source_new_torch (EaselNoiseConvention convention, EaselRngKind kind, guint64 seed, gsize n)
{
  EaselRng *rng;
  if (convention == EASEL_NOISE_COMFYUI) {
    rng = easel_rng_new (kind, kind == EASEL_RNG_CPU ? seed + 1 : seed);
  } else {
    g_autofree float *initial = g_new (float, MAX (n, 1));
    rng = easel_rng_new (kind, seed);
    easel_rng_randn (rng, initial, n);   /* the initial noise, drawn before the sampler starts */
  }
  return easel_noise_source_new_from_rng (rng, n);
}

EaselNoiseSource *
easel_noise_source_new_replay (const float *values, gsize n_calls, gsize n)
{
  EaselNoiseSource *s;
  g_return_val_if_fail (values != NULL || n_calls * n == 0, NULL);
  g_return_val_if_fail (n == 0 || n_calls <= G_MAXSIZE / sizeof (float) / n, NULL);
  s = source_new (SOURCE_REPLAY, n);
  s->values = g_memdup2 (values, MAX (n_calls * n, 1) * sizeof (float));
  s->n_calls = n_calls;
  return s;
}

EaselNoiseSource *
easel_noise_source_new_brownian (guint64 seed, double sigma_min, double sigma_max, gsize n, GError **error)
{
  EaselNoiseSource *s;
  double width;

  if (!isfinite (sigma_min) || !isfinite (sigma_max) || sigma_min < 0.0 || sigma_max < sigma_min) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "Brownian tree: the interval [%g, %g] must be finite with 0 <= sigma_min <= sigma_max", sigma_min,
                 sigma_max);
    return NULL;
  }
  if (n > G_MAXSIZE / sizeof (double) / 3) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "Brownian tree: %" G_GSIZE_FORMAT " values is too many",
                 n);
    return NULL;
  }
  s = source_new (SOURCE_BROWNIAN, n);
  s->seed = seed;
  s->lo = sigma_min;
  s->hi = sigma_max;
  for (width = sigma_max - sigma_min; width > TREE_TOL && s->depth < TREE_MAX_DEPTH; width *= 0.5)
    s->depth++;
  s->wa = g_new (double, MAX (n, 1) * 3);
  s->wb = s->wa + MAX (n, 1);
  s->z = s->wb + MAX (n, 1);
  return s;
}

EaselNoiseSource *
easel_noise_source_new_default (const EaselSamplerInfo *info, EaselNoiseConvention convention, EaselRngKind kind,
                                guint64 seed, gsize n, const float *sigmas, gsize n_sigmas, GError **error)
{
  float lo = INFINITY, hi = 0.0f;

  g_return_val_if_fail (info != NULL && (sigmas != NULL || n_sigmas == 0), NULL);
  if (!(info->flags & EASEL_SAMPLER_BROWNIAN))
    return easel_noise_source_new_torch (convention, kind, seed, n);
  /* ComfyUI: sigmas[sigmas > 0].min(), sigmas.max() */
  for (gsize i = 0; i < n_sigmas; i++) {
    if (sigmas[i] > 0.0f)
      lo = MIN (lo, sigmas[i]);
    hi = MAX (hi, sigmas[i]);
  }
  if (isinf (lo))
    lo = hi;   /* no positive sigma: the sampler never asks for noise */
  return easel_noise_source_new_brownian (seed, lo, hi, n, error);
}

void
easel_noise_source_free (EaselNoiseSource *source)
{
  if (source == NULL)
    return;
  g_clear_pointer (&source->rng, easel_rng_free);
  for (guint i = 0; i < TREE_CACHE; i++)
    g_free (source->cache[i].w);
  g_free (source->wa);
  g_free (source->values);
  if (source->record)
    g_array_unref (source->record);
  g_free (source);
}

gsize
easel_noise_source_n (const EaselNoiseSource *source)
{
  g_return_val_if_fail (source != NULL, 0);
  return source->n;
}

/* --- Brownian tree ------------------------------------------------------------------------------ */

static inline guint64
splitmix64 (guint64 x)
{
  x = (x ^ (x >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  return x ^ (x >> 31);
}

#define GOLDEN G_GUINT64_CONSTANT (0x9e3779b97f4a7c15)
#define KEY_ROOT G_GUINT64_CONSTANT (0xffffffff)

/* The stream key of a node: (seed, level, index, extra) through SplitMix64's finalizer. */
static guint64
node_key (guint64 seed, guint64 level, guint64 index, guint64 extra)
{
  guint64 k = splitmix64 (seed + GOLDEN);
  k = splitmix64 (k ^ (level + 1) * GOLDEN);
  k = splitmix64 (k ^ index);
  return splitmix64 (k ^ extra);
}

/* out[0..n) = standard normals from the SplitMix64 counter stream of key, by Box-Muller on
 * 53-bit uniforms (u1 in (0, 1], so the log is finite). */
static void
stream_normals (guint64 key, double *out, gsize n)
{
  for (gsize j = 0; j < n; j += 2) {
    guint64 r1 = splitmix64 (key + (j + 1) * GOLDEN), r2 = splitmix64 (key + (j + 2) * GOLDEN);
    double u1 = ((r1 >> 11) + 1) * 0x1.0p-53, u2 = (r2 >> 11) * 0x1.0p-53;
    double rad = sqrt (-2.0 * log (u1)), ang = 2.0 * G_PI * u2;
    out[j] = rad * cos (ang);
    if (j + 1 < n)
      out[j + 1] = rad * sin (ang);
  }
}

/* W(t) -> w (n values), t in [lo, hi]. */
static void
tree_w (EaselNoiseSource *s, double t, double *w)
{
  gsize n = s->n;
  double a = s->lo, b = s->hi, *wa = s->wa, *wb = s->wb, *z = s->z;
  guint64 index = 0;

  if (t <= s->lo || s->hi <= s->lo) {
    memset (w, 0, n * sizeof (double));
    return;
  }
  memset (wa, 0, n * sizeof (double));
  stream_normals (node_key (s->seed, KEY_ROOT, 0, 0), wb, n);
  for (gsize k = 0; k < n; k++)
    wb[k] *= sqrt (s->hi - s->lo);
  for (guint d = 0; d < s->depth && t != a && t != b; d++) {
    /* the midpoint from the interval's index, so every path computes the same m */
    double width = (s->hi - s->lo) / ldexp (1.0, (int) d + 1), m = s->lo + (double) (2 * index + 1) * width;
    double sd = sqrt (b - a) * 0.5;
    double *keep;
    stream_normals (node_key (s->seed, d, index, 0), z, n);
    if (t < m) {
      keep = wb;
      b = m;
      index = 2 * index;
    } else {
      keep = wa;
      a = m;
      index = 2 * index + 1;
    }
    for (gsize k = 0; k < n; k++)
      keep[k] = 0.5 * (wa[k] + wb[k]) + sd * z[k];   /* keep is wa or wb: both are read before the write */
  }
  if (t == a) {
    memcpy (w, wa, n * sizeof (double));
  } else if (t == b) {
    memcpy (w, wb, n * sizeof (double));
  } else {
    /* the bridge at t inside the leaf [a, b] */
    double f = (t - a) / (b - a), sd = sqrt ((t - a) * (b - t) / (b - a));
    guint64 bits;
    memcpy (&bits, &t, sizeof bits);
    stream_normals (node_key (s->seed, s->depth, index, bits), z, n);
    for (gsize k = 0; k < n; k++)
      w[k] = wa[k] + f * (wb[k] - wa[k]) + sd * z[k];
  }
}

/* W(t) through the cache (owned by the source, valid until the next lookup). */
static const double *
tree_lookup (EaselNoiseSource *s, double t)
{
  TreeEntry *e;
  for (guint i = 0; i < TREE_CACHE; i++) {
    if (s->cache[i].w && s->cache[i].t == t) {
      s->cache_next = (i + 1) % TREE_CACHE;   /* two slots: the other one is the older */
      return s->cache[i].w;
    }
  }
  e = &s->cache[s->cache_next];
  s->cache_next = (s->cache_next + 1) % TREE_CACHE;
  if (e->w == NULL)
    e->w = g_new (double, MAX (s->n, 1));
  e->t = t;
  tree_w (s, t, e->w);
  return e->w;
}

static gboolean
tree_clamp (const EaselNoiseSource *s, double *t, GError **error)
{
  if (!(*t >= s->lo - TREE_TOL && *t <= s->hi + TREE_TOL)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "Brownian tree: sigma %g is outside the tree's interval [%g, %g]", *t, s->lo, s->hi);
    return FALSE;
  }
  *t = CLAMP (*t, s->lo, s->hi);
  return TRUE;
}

/* (W(t1) - W(t0)) / sqrt|t1 - t0| -> out; zeros when t0 == t1 (k-diffusion would divide by 0). */
static gboolean
tree_sample (EaselNoiseSource *s, double t0, double t1, float *out, GError **error)
{
  const double *w0, *w1;
  double scale;

  if (!tree_clamp (s, &t0, error) || !tree_clamp (s, &t1, error))
    return FALSE;
  if (t0 == t1) {
    memset (out, 0, s->n * sizeof (float));
    return TRUE;
  }
  /* the second lookup replaces the slot the first did not use */
  w0 = tree_lookup (s, t0);
  w1 = tree_lookup (s, t1);
  scale = 1.0 / sqrt (fabs (t1 - t0));
  for (gsize k = 0; k < s->n; k++)
    out[k] = (float) ((w1[k] - w0[k]) * scale);
  return TRUE;
}

/* --- calls -------------------------------------------------------------------------------------- */

gboolean
easel_noise_source_sample (EaselNoiseSource *source, double sigma, double sigma_next, float *out, GError **error)
{
  g_return_val_if_fail (source != NULL && (out != NULL || source->n == 0), FALSE);
  switch (source->kind) {
  case SOURCE_RNG:
    easel_rng_randn (source->rng, out, source->n);
    break;
  case SOURCE_BROWNIAN:
    if (!tree_sample (source, sigma, sigma_next, out, error))
      return FALSE;
    break;
  case SOURCE_REPLAY:
    if (source->next_call >= source->n_calls) {
      g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                   "replayed noise has %" G_GSIZE_FORMAT " calls; the sampler asked for one more (sigma %g -> %g)",
                   source->n_calls, sigma, sigma_next);
      return FALSE;
    }
    memcpy (out, source->values + source->next_call * source->n, source->n * sizeof (float));
    source->next_call++;
    break;
  default:
    g_assert_not_reached ();
  }
  if (source->recording)
    g_array_append_vals (source->record, out, source->n);
  return TRUE;
}

gboolean
easel_noise_source_func (gpointer source, double sigma, double sigma_next, float *out, GError **error)
{
  return easel_noise_source_sample (source, sigma, sigma_next, out, error);
}

void
easel_noise_source_set_recording (EaselNoiseSource *source, gboolean record)
{
  g_return_if_fail (source != NULL);
  source->recording = record;
  if (record && source->record == NULL)
    source->record = g_array_new (FALSE, FALSE, sizeof (float));
}

const float *
easel_noise_source_recorded (const EaselNoiseSource *source, gsize *n_calls)
{
  g_return_val_if_fail (source != NULL && n_calls != NULL, NULL);
  *n_calls = source->record && source->n ? source->record->len / source->n : 0;
  return source->record ? (const float *) source->record->data : NULL;
}
