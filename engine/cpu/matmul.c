/* engine/cpu/matmul.c: nn.Linear and nn.Conv2d on the CPU, fp32, through OpenBLAS sgemm.
 *
 * Linear is ggml-blas's call (ggml-org/ggml src/ggml-blas/ggml-blas.cpp): RowMajor, NoTrans, Trans
 * against weights stored (out, in). Conv2d is im2col + sgemm (E8), in blocks of output columns so
 * the column buffer stays a few MiB even for a 1024² VAE decode. Bias is written into the output
 * first and the sgemm accumulates onto it (beta = 1): OpenBLAS clears C for beta = 0 anyway, so
 * the bias costs no extra pass. Each pool thread runs single-threaded sgemm on its share. */
#include "engine/cpu/ops.h"

#include <string.h>

#include "engine/cpu/blas.h"

/* ~1 MFLOP per thread at least: below that waking a worker costs more than it saves */
#define MIN_FLOPS_PER_THREAD 1000000.0
/* column buffer per thread: 1 Mi floats = 4 MiB, whatever the image (OpenBLAS repacks it panel by
 * panel, so it need not fit L2). Measured with tests/bench-cpu-ops.c, 3x3 320->320 at 64x64 on 2
 * cores: 64 Ki floats 0.83 of plain sgemm, 256 Ki 0.78, 1 Mi 0.88-0.95, 4 Mi 0.93-1.06 (noisy,
 * shared machine); a direct 3x3 kernel reached 0.2-0.3, so im2col stays. */
#define CONV_COL_FLOATS (1 << 20)
#define CONV_MIN_COLS 64
#define CONV_MAX_COLS 2048

/* y (m, n) row stride ldy: every row = b (n), or zeros when b is NULL */
static void
fill_rows (float *y, gint64 ldy, const float *b, gint64 m, gint64 n)
{
  for (gint64 i = 0; i < m; i++) {
    if (b)
      memcpy (y + i * ldy, b, sizeof (float) * n);
    else
      memset (y + i * ldy, 0, sizeof (float) * n);
  }
}

/* --- linear ------------------------------------------------------------------------------- */

typedef struct {
  float *y;
  const float *x, *w, *b;
  gint64 M, N, K;
} LinearJob;

static void
linear_rows (gint64 begin, gint64 end, int ith, gpointer data)
{
  const LinearJob *j = data;
  float *y = j->y + begin * j->N;
  if (j->b)
    fill_rows (y, j->N, j->b, end - begin, j->N);
  easel_cpu_sgemm (TRUE, end - begin, j->N, j->K, 1.0f, j->x + begin * j->K, j->K, j->w, j->K,
                   j->b ? 1.0f : 0.0f, y, j->N);
}

static void
linear_cols (gint64 begin, gint64 end, int ith, gpointer data)
{
  const LinearJob *j = data;
  if (j->b)
    fill_rows (j->y + begin, j->N, j->b + begin, j->M, end - begin);
  easel_cpu_sgemm (TRUE, j->M, end - begin, j->K, 1.0f, j->x, j->K, j->w + begin * j->K, j->K,
                   j->b ? 1.0f : 0.0f, j->y + begin, j->N);
}

void
easel_cpu_linear_f32 (EaselCpuPool *pool, float *y, const float *x, const float *w, const float *b,
                      gint64 M, gint64 N, gint64 K)
{
  g_return_if_fail (pool && y && M >= 0 && N >= 0 && K >= 0);
  g_return_if_fail ((x && w) || K == 0);
  LinearJob j = { y, x, w, b, M, N, K };
  double flops_per_row = 2.0 * (double) N * (double) MAX (K, 1);
  double flops_per_col = 2.0 * (double) M * (double) MAX (K, 1);
  int nth = easel_cpu_pool_get_n_threads (pool);

  /* split the rows when each thread gets a fair number of them, else the output columns (the
   * weight's rows): M = 1 for the time embedding, 77 for CLIP */
  if (M >= 16 * (gint64) nth)
    easel_cpu_pool_run (pool, M, (gint64) (MIN_FLOPS_PER_THREAD / flops_per_row) + 1, linear_rows, &j);
  else
    easel_cpu_pool_run (pool, N, (gint64) (MIN_FLOPS_PER_THREAD / flops_per_col) + 1, linear_cols, &j);
}

/* --- conv2d ------------------------------------------------------------------------------- */

void
easel_cpu_conv2d_init (EaselCpuConv2d *c, gint64 batch, gint64 c_in, gint64 h, gint64 w,
                       gint64 c_out, gint64 kh, gint64 kw, gint64 stride, gint64 pad)
{
  g_return_if_fail (c && stride >= 1 && pad >= 0);
  *c = (EaselCpuConv2d) {
    .batch = batch, .c_in = c_in, .h = h, .w = w, .c_out = c_out, .kh = kh, .kw = kw,
    .stride_h = stride, .stride_w = stride, .pad_h = pad, .pad_w = pad,
    .out_h = (h + 2 * pad - kh) / stride + 1, .out_w = (w + 2 * pad - kw) / stride + 1,
  };
}

static gboolean
conv_is_pointwise (const EaselCpuConv2d *c)
{
  return c->kh == 1 && c->kw == 1 && c->stride_h == 1 && c->stride_w == 1 && c->pad_h == 0 && c->pad_w == 0
         && c->out_h == c->h && c->out_w == c->w;
}

/* output columns per im2col block */
static gint64
conv_block_cols (const EaselCpuConv2d *c, int n_threads)
{
  gint64 K = c->c_in * c->kh * c->kw;
  gint64 P = c->out_h * c->out_w;
  gint64 cols = CLAMP (CONV_COL_FLOATS / MAX (K, 1), CONV_MIN_COLS, CONV_MAX_COLS);
  /* enough blocks for every thread on small images */
  gint64 fair = (c->batch * P + n_threads - 1) / n_threads;
  if (c->batch < n_threads)
    cols = MIN (cols, MAX ((fair + 15) / 16 * 16, 16));
  return MAX (MIN (cols, P), 1);
}

gsize
easel_cpu_conv2d_workspace (const EaselCpuConv2d *c, int n_threads)
{
  g_return_val_if_fail (c && n_threads >= 1, 0);
  if (conv_is_pointwise (c))
    return 0;
  return (gsize) (c->c_in * c->kh * c->kw) * (gsize) conv_block_cols (c, n_threads) * (gsize) n_threads;
}

typedef struct {
  float *y;
  const float *x, *w, *b;
  const EaselCpuConv2d *c;
  float *work;
  gint64 cols;        /* per block */
  gint64 n_blocks;    /* per image */
  gint64 co_split;    /* output-channel chunks per block (small images on several threads) */
  gsize work_per_thread;
} ConvJob;

/* col (K, n) row stride n: rows (ci, ky, kx), columns the output pixels [p0, p0 + n) of image x0 */
static void
im2col (float *col, const float *x0, const EaselCpuConv2d *c, gint64 p0, gint64 n)
{
  const gint64 OW = c->out_w, sh = c->stride_h, sw = c->stride_w;
  float *dst = col;
  for (gint64 ci = 0; ci < c->c_in; ci++) {
    const float *plane = x0 + ci * c->h * c->w;
    for (gint64 ky = 0; ky < c->kh; ky++) {
      for (gint64 kx = 0; kx < c->kw; kx++, dst += n) {
        gint64 oy = p0 / OW, ox = p0 % OW;
        for (gint64 j = 0; j < n;) {
          gint64 seg = MIN (OW - ox, n - j);
          gint64 iy = oy * sh - c->pad_h + ky;
          float *d = dst + j;
          if (iy < 0 || iy >= c->h) {
            memset (d, 0, sizeof (float) * seg);
          } else {
            const float *src = plane + iy * c->w;
            gint64 ix0 = ox * sw - c->pad_w + kx;
            if (sw == 1) {
              /* [ix0, ix0 + seg) clipped to [0, w): zeros, a copy, zeros */
              gint64 lo = CLAMP (-ix0, 0, seg), hi = CLAMP (c->w - ix0, lo, seg);
              memset (d, 0, sizeof (float) * lo);
              if (hi > lo)
                memcpy (d + lo, src + ix0 + lo, sizeof (float) * (hi - lo));
              memset (d + hi, 0, sizeof (float) * (seg - hi));
            } else {
              for (gint64 t = 0; t < seg; t++) {
                gint64 ix = ix0 + t * sw;
                d[t] = ix >= 0 && ix < c->w ? src[ix] : 0.0f;
              }
            }
          }
          j += seg;
          ox = 0;
          oy++;
        }
      }
    }
  }
}

static void
conv_blocks (gint64 begin, gint64 end, int ith, gpointer data)
{
  const ConvJob *j = data;
  const EaselCpuConv2d *c = j->c;
  const gint64 K = c->c_in * c->kh * c->kw, P = c->out_h * c->out_w;
  const gint64 co_chunk = (c->c_out + j->co_split - 1) / j->co_split;
  float *col = j->work + (gsize) ith * j->work_per_thread;
  gint64 have_n = -1, have_blk = -1;   /* which block col holds */

  for (gint64 t = begin; t < end; t++) {
    gint64 n = t / (j->n_blocks * j->co_split);
    gint64 blk = t / j->co_split % j->n_blocks;
    gint64 co0 = t % j->co_split * co_chunk, co1 = MIN (co0 + co_chunk, c->c_out);
    gint64 p0 = blk * j->cols, np = MIN (j->cols, P - p0);
    if (co0 >= co1)
      continue;
    if (n != have_n || blk != have_blk) {
      im2col (col, j->x + n * c->c_in * c->h * c->w, c, p0, np);
      have_n = n;
      have_blk = blk;
    }
    float *y = j->y + (n * c->c_out + co0) * P + p0;
    if (j->b)
      for (gint64 co = co0; co < co1; co++) {
        float bv = j->b[co], *row = y + (co - co0) * P;
        for (gint64 p = 0; p < np; p++)
          row[p] = bv;
      }
    easel_cpu_sgemm (FALSE, co1 - co0, np, K, 1.0f, j->w + co0 * K, K, col, np, j->b ? 1.0f : 0.0f, y, P);
  }
}

/* 1x1: y_n (c_out, P) = w (c_out, c_in) · x_n (c_in, P); tasks are column ranges of all images */
static void
conv_pointwise (gint64 begin, gint64 end, int ith, gpointer data)
{
  const ConvJob *j = data;
  const EaselCpuConv2d *c = j->c;
  const gint64 P = c->h * c->w;
  for (gint64 n = begin / P; n < c->batch && n * P < end; n++) {
    gint64 p0 = MAX (begin - n * P, 0), p1 = MIN (end - n * P, P);
    float *y = j->y + n * c->c_out * P + p0;
    if (j->b)
      for (gint64 co = 0; co < c->c_out; co++) {
        float bv = j->b[co], *row = y + co * P;
        for (gint64 p = 0; p < p1 - p0; p++)
          row[p] = bv;
      }
    easel_cpu_sgemm (FALSE, c->c_out, p1 - p0, c->c_in, 1.0f, j->w, c->c_in, j->x + n * c->c_in * P + p0, P,
                     j->b ? 1.0f : 0.0f, y, P);
  }
}

void
easel_cpu_conv2d_f32 (EaselCpuPool *pool, float *y, const float *x, const float *weight,
                      const float *bias, const EaselCpuConv2d *c, float *work)
{
  g_return_if_fail (pool && y && x && weight && c);
  g_return_if_fail (c->batch >= 0 && c->c_in >= 1 && c->h >= 1 && c->w >= 1 && c->c_out >= 0);
  g_return_if_fail (c->kh >= 1 && c->kw >= 1 && c->stride_h >= 1 && c->stride_w >= 1);
  g_return_if_fail (c->pad_h >= 0 && c->pad_w >= 0 && c->out_h >= 1 && c->out_w >= 1);
  if (c->batch == 0 || c->c_out == 0)
    return;

  int nth = easel_cpu_pool_get_n_threads (pool);
  ConvJob j = { .y = y, .x = x, .w = weight, .b = bias, .c = c, .work = work };
  const gint64 K = c->c_in * c->kh * c->kw, P = c->out_h * c->out_w;
  double flops_per_col = 2.0 * (double) c->c_out * (double) K;

  if (conv_is_pointwise (c)) {
    easel_cpu_pool_run (pool, c->batch * P, (gint64) (MIN_FLOPS_PER_THREAD / flops_per_col) + 1,
                        conv_pointwise, &j);
    return;
  }

  g_return_if_fail (work != NULL);
  j.cols = conv_block_cols (c, nth);
  j.n_blocks = (P + j.cols - 1) / j.cols;
  j.work_per_thread = (gsize) K * (gsize) j.cols;
  /* deep levels (8x8 at 1280 channels) have one block per image: split the output channels too */
  j.co_split = 1;
  if (c->batch * j.n_blocks < nth)
    j.co_split = MIN ((nth + c->batch * j.n_blocks - 1) / (c->batch * j.n_blocks), MAX (c->c_out / 16, 1));
  gint64 tasks = c->batch * j.n_blocks * j.co_split;
  double flops_per_task = flops_per_col * (double) j.cols / (double) j.co_split;
  easel_cpu_pool_run (pool, tasks, (gint64) (MIN_FLOPS_PER_THREAD / flops_per_task) + 1, conv_blocks, &j);
}
