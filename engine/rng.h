/* engine/rng.h: noise identical to PyTorch's torch.manual_seed(seed) + torch.randn(shape):
 * on the CPU (MT19937; what ComfyUI uses) and on CUDA (Philox4x32-10; A1111's default GPU noise).
 * Values come out in PyTorch's order for a contiguous tensor of n elements. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  EASEL_RNG_CPU,    /* torch CPU generator: only the low 32 bits of the seed matter */
  EASEL_RNG_CUDA,   /* torch CUDA generator (Philox): all 64 bits */
} EaselRngKind;

typedef struct _EaselRng EaselRng;

EaselRng *easel_rng_new (EaselRngKind kind, guint64 seed);   /* = torch.manual_seed(seed) */
void      easel_rng_free (EaselRng *rng);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselRng, easel_rng_free)

/* out[0..n) = torch.randn(n) drawn from the generator's current state, which then advances
 * exactly as PyTorch's does, so successive calls match successive torch.randn calls. */
void easel_rng_randn (EaselRng *rng, float *out, gsize n);

/* CUDA only: the GPU whose launch geometry to reproduce. torch runs min (ceil (n / 256),
 * multiprocessors * (max_threads_per_multiprocessor / 256)) blocks of 256 threads, so draws of
 * more than that many threads' worth of values depend on the GPU (H100 SXM: 132, 2048; RTX 4090:
 * 128, 1536; RTX 3060: 28, 1536). By default there is no cap, which equals every GPU for
 * n <= 256 * blocks (one 1x4x128x128 latent on any GPU with at least 65536 resident threads).
 * 0 multiprocessors removes the cap again. */
void easel_rng_set_cuda_device (EaselRng *rng, guint multiprocessors, guint max_threads_per_multiprocessor);

/* CPU only: the generator's next raw MT19937 word (torch's CPUGeneratorImpl::random ()); for
 * tests against MT19937's published outputs. */
guint32 easel_rng_cpu_u32 (EaselRng *rng);

/* Parses "cpu" / "cuda"; FALSE for anything else. */
gboolean easel_rng_kind_from_name (const char *name, EaselRngKind *out);

G_END_DECLS
