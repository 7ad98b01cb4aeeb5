/* tests/test-pipeline.c: the generation pipeline (engine/pipeline.h, easel_generate) on the tiny
 * sd1_tiny model of the test data: inpainting with an ordinary checkpoint keeps what lies outside
 * the mask (the final latent there is the init latent, to rounding; the image's pixels there are the init
 * image's), "only masked" pastes back at the init image's size, batches give image b the seed
 * seed + b, cancellation, models that stay loaded, bad jobs, and the helpers (diffusers'
 * timesteps as documented in testdata README 8.5, blur, crop region). */
#include <math.h>
#include <string.h>

#include "engine/engine-private.h"
#include "engine/pipeline.h"
#include "testutil.h"

typedef struct {
  EaselEngine *engine;
  EaselModel *model;
} Fixture;

static gboolean
fixture_load (Fixture *f)
{
  g_autofree char *path = test_data_path ("models", "sd1_tiny", NULL);
  g_autofree char *vocab = test_data_path ("tokenizer", NULL);
  if (path == NULL || vocab == NULL)
    return FALSE;
  g_autoptr(GError) error = NULL;
  EaselEngineOptions eo = { .backend = "cpu", .n_threads = 2 };
  f->engine = easel_engine_new (&eo, &error);
  g_assert_no_error (error);
  EaselModelOptions mo = { .vocab = vocab };
  f->model = easel_model_load_with_options (f->engine, path, &mo, &error);
  g_assert_no_error (error);
  return TRUE;
}

static void
fixture_clear (Fixture *f)
{
  easel_model_unref (f->model);
  easel_engine_free (f->engine);
}

static EaselJobParams
small_job (void)
{
  return (EaselJobParams) {
    .prompt = "a photo of a cat", .negative_prompt = "blurry", .sampler = "euler", .scheduler = "normal",
    .steps = 4, .cfg = 5.0, .seed = 7, .rng = EASEL_RNG_CPU, .width = 128, .height = 128, .batch_size = 1,
    .batch_count = 1, .clip_skip = 1,
  };
}

/* A 128x128 image with a pattern, and a mask repainting the square [32, 96)^2. */
static EaselImage *
pattern_image (int w, int h)
{
  EaselImage *im = easel_image_new (w, h, 3, NULL);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        im->pixels[(gsize) y * im->stride + x * 3 + c] = (guint8) ((x * 3 + y * 5 + c * 70) & 0xff);
  return im;
}

static EaselImage *
square_mask (int w, int h, int x0, int x1)
{
  EaselImage *m = easel_image_new (w, h, 3, NULL);
  for (int y = x0; y < x1; y++)
    for (int x = x0; x < x1; x++)
      memset (m->pixels + (gsize) y * m->stride + x * 3, 255, 3);
  return m;
}

static void
test_inpaint_ordinary_keeps_outside (void)
{
  Fixture f;
  if (!fixture_load (&f))
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselImage) init = pattern_image (128, 128);
  g_autoptr(EaselImage) mask = square_mask (128, 128, 32, 96);
  EaselJobParams job = small_job ();
  job.init_image = init, job.mask = mask, job.strength = 1.0, job.mask_blur = 0;
  EaselPipelineRequest req = { .job = &job };
  EaselPipelineResult r;
  g_assert_true (easel_pipeline_run (f.engine, f.model, &req, NULL, NULL, NULL, &r, &error));
  g_assert_no_error (error);

  /* the latent outside the mask is the init image's latent (posterior mean), exactly */
  EaselVae *vae = easel_model_vae (f.model, &error);
  g_assert_no_error (error);
  const gsize npx = 3 * 128 * 128, nl = 4 * 16 * 16;
  g_autofree float *x = g_new (float, npx), *mean = g_new (float, nl), *logvar = g_new (float, nl);
  easel_image_to_f32_chw (init, x, 3);
  for (gsize i = 0; i < npx; i++)
    x[i] = x[i] * 2 - 1;
  g_assert_true (easel_vae_encode (vae, easel_engine_backend (f.engine), x, 1, 128, 128, mean, logvar, &error));
  easel_vae_z_to_latent (vae, mean, mean, nl);
  int kept = 0, changed = 0;
  for (int c = 0; c < 4; c++)
    for (int y = 0; y < 16; y++)
      for (int xx = 0; xx < 16; xx++) {
        gsize k = (c * 16 + y) * 16 + xx;
        gboolean inside = y >= 4 && y < 12 && xx >= 4 && xx < 12;
        if (!inside) {
          /* Euler's last step x + (x - D) / s * (0 - s) gives D up to float rounding */
          g_assert_cmpfloat (fabsf (r.latents[k] - mean[k]), <=, 1e-5f * (1 + fabsf (mean[k])));
          kept++;
        } else if (fabsf (r.latents[k] - mean[k]) > 1e-3f) {
          changed++;
        }
      }
  g_assert_cmpint (kept, ==, 4 * (256 - 64));
  g_assert_cmpint (changed, >, 64);   /* the inside was generated */

  /* pixels outside the mask are the init image's, byte for byte; inside they are not */
  const EaselImage *out = r.images->pdata[0];
  g_assert_cmpint (out->width, ==, 128);
  int differ_inside = 0;
  for (int y = 0; y < 128; y++)
    for (int xx = 0; xx < 128; xx++) {
      gboolean inside = y >= 32 && y < 96 && xx >= 32 && xx < 96;
      const guint8 *a = out->pixels + (gsize) y * out->stride + xx * 3, *b = init->pixels + (gsize) y * init->stride + xx * 3;
      if (!inside)
        g_assert_cmpmem (a, 3, b, 3);
      else
        differ_inside += memcmp (a, b, 3) != 0;
    }
  g_assert_cmpint (differ_inside, >, 1000);
  g_assert_nonnull (strstr (r.parameters->pdata[0], "Mask blur: 0"));
  easel_pipeline_result_clear (&r);
  fixture_clear (&f);
}

static void
test_inpaint_only_masked (void)
{
  Fixture f;
  if (!fixture_load (&f))
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselImage) init = pattern_image (192, 160);
  g_autoptr(EaselImage) mask = square_mask (192, 160, 40, 56);
  EaselJobParams job = small_job ();
  job.init_image = init, job.mask = mask, job.strength = 0.8, job.mask_blur = 2;
  job.inpaint_only_masked = TRUE, job.only_masked_padding = 8;
  g_autoptr(GPtrArray) params = NULL;
  g_autoptr(GPtrArray) images = easel_generate (f.engine, f.model, &job, NULL, NULL, NULL, &params, &error);
  g_assert_no_error (error);
  const EaselImage *out = images->pdata[0];
  /* the init image's size, and everything away from the blurred crop untouched */
  g_assert_cmpint (out->width, ==, 192);
  g_assert_cmpint (out->height, ==, 160);
  for (int y = 0; y < 160; y++)
    for (int x = 0; x < 192; x++)
      if (x < 30 || x >= 66 || y < 30 || y >= 66)
        g_assert_cmpmem (out->pixels + (gsize) y * out->stride + x * 3, 3,
                         init->pixels + (gsize) y * init->stride + x * 3, 3);
  g_assert_nonnull (strstr (params->pdata[0], "Inpaint area: Only masked"));
  fixture_clear (&f);
}

static gboolean
count_and_stop (const EaselProgress *p, gpointer user_data)
{
  int *calls = user_data;
  if (p->message == NULL) {
    g_assert_nonnull (p->preview);
    g_assert_cmpint (p->total_steps, ==, 4);
    (*calls)++;
  }
  return *calls < 2;
}

static void
test_cancel_and_reuse (void)
{
  Fixture f;
  if (!fixture_load (&f))
    return;
  g_autoptr(GError) error = NULL;
  EaselJobParams job = small_job ();
  int calls = 0;
  GPtrArray *images = easel_generate (f.engine, f.model, &job, count_and_stop, &calls, NULL, NULL, &error);
  g_assert_null (images);
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_CANCELLED);
  g_assert_cmpint (calls, ==, 2);   /* stopped after the step whose report said so */
  g_clear_error (&error);

  /* a second job with another prompt reuses the loaded networks */
  EaselUnet *u = easel_model_unet (f.model, &error);
  EaselClip *c = easel_model_clip (f.model, 0, &error);
  job.prompt = "another prompt";
  g_autoptr(GPtrArray) again = easel_generate (f.engine, f.model, &job, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (easel_model_unet (f.model, &error) == u);
  g_assert_true (easel_model_clip (f.model, 0, &error) == c);

  /* a cancelled GCancellable stops before the first step */
  g_autoptr(GCancellable) cancel = g_cancellable_new ();
  g_cancellable_cancel (cancel);
  g_assert_null (easel_generate (f.engine, f.model, &job, NULL, NULL, cancel, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_CANCELLED);
  fixture_clear (&f);
}

static void
test_batch_seeds (void)
{
  Fixture f;
  if (!fixture_load (&f))
    return;
  g_autoptr(GError) error = NULL;
  EaselJobParams job = small_job ();
  job.batch_size = 2, job.batch_count = 2, job.width = 128, job.height = 128;
  g_autoptr(GPtrArray) params = NULL;
  g_autoptr(GPtrArray) four = easel_generate (f.engine, f.model, &job, NULL, NULL, NULL, &params, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (four->len, ==, 4);
  /* image 3 (second batch, second image) is the single image of seed + 3 */
  EaselJobParams one = small_job ();
  one.seed = job.seed + 3;
  g_autoptr(GPtrArray) single = easel_generate (f.engine, f.model, &one, NULL, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  const EaselImage *a = four->pdata[3], *b = single->pdata[0];
  int off = 0;
  for (gsize i = 0; i < (gsize) a->height * a->stride; i++)
    off = MAX (off, abs ((int) a->pixels[i] - (int) b->pixels[i]));
  g_assert_cmpint (off, <=, 1);   /* batched matmuls may round differently */
  g_assert_nonnull (strstr (params->pdata[3], "Seed: 10"));
  fixture_clear (&f);
}

static void
test_bad_jobs (void)
{
  Fixture f;
  if (!fixture_load (&f))
    return;
  EaselJobParams job = small_job ();
  job.width = 100;
  g_autoptr(GError) error = NULL;
  g_assert_null (easel_generate (f.engine, f.model, &job, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);

  g_autoptr(EaselImage) init = pattern_image (128, 128);
  g_autoptr(EaselImage) mask = square_mask (64, 64, 0, 8);
  job = small_job ();
  job.init_image = init, job.mask = mask, job.strength = 0.5;
  g_assert_null (easel_generate (f.engine, f.model, &job, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_assert_nonnull (strstr (error->message, "mask"));
  g_clear_error (&error);

  job = small_job ();
  job.sampler = "no such sampler";
  g_assert_null (easel_generate (f.engine, f.model, &job, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_clear_error (&error);

  g_autofree char *rp = test_data_path ("models", "sdxl_refiner_tiny.safetensors", NULL);
  g_autoptr(EaselModel) refiner = easel_model_load (f.engine, rp, &error);
  g_assert_no_error (error);
  job = small_job ();
  job.refiner = refiner, job.refiner_switch = 0.5;
  g_assert_null (easel_generate (f.engine, f.model, &job, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
  g_assert_nonnull (strstr (error->message, "does not fit"));
  fixture_clear (&f);
}

static void
test_diffusers_timesteps (void)
{
  g_autoptr(EaselModelSampling) ms = easel_model_sampling_new_scaled_linear (EASEL_PREDICTION_EPSILON, 0.00085,
                                                                             0.012, 1000);
  float s[7];
  guint t[6];
  g_autoptr(GError) error = NULL;
  const guint euler[6] = { 831, 665, 499, 333, 167, 1 }, dpm[6] = { 853, 711, 569, 427, 285, 143 };
  g_assert_true (easel_pipeline_diffusers_sigmas (ms, EASEL_DIFFUSERS_EULER, 6, s, t, &error));
  g_assert_cmpmem (t, sizeof t, euler, sizeof euler);
  g_assert_cmpfloat (s[6], ==, 0);
  /* init_noise_sigma of leading Euler: sqrt (sigma (831)^2 + 1) = 5.9905 (README 8.5) */
  g_assert_cmpfloat_with_epsilon (sqrt (s[0] * s[0] + 1.0), 5.990506, 1e-4);
  g_assert_true (easel_pipeline_diffusers_sigmas (ms, EASEL_DIFFUSERS_DPM, 6, s, t, &error));
  g_assert_cmpmem (t, sizeof t, dpm, sizeof dpm);
  g_assert_true (easel_pipeline_diffusers_sigmas (ms, EASEL_DIFFUSERS_DDIM, 6, s, t, &error));
  /* DDIM ends at alphas_cumprod[0]: sigma = sqrt ((1 - a0) / a0), a0 = 1 - 0.00085 */
  g_assert_cmpfloat_with_epsilon (s[6], sqrt (0.00085 / (1 - 0.00085)), 1e-6);
  g_assert_false (easel_pipeline_diffusers_sigmas (ms, EASEL_DIFFUSERS_EULER, 0, s, t, &error));
  g_assert_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT);
}

static void
test_helpers (void)
{
  /* blur keeps the total and spreads symmetrically */
  float p[21 * 21] = { 0 };
  p[10 * 21 + 10] = 1;
  easel_pipeline_blur (p, 21, 21, 2.0);
  double sum = 0;
  for (int i = 0; i < 21 * 21; i++)
    sum += p[i];
  g_assert_cmpfloat_with_epsilon (sum, 1.0, 1e-5);
  g_assert_cmpfloat_with_epsilon (p[10 * 21 + 8], p[10 * 21 + 12], 1e-7);
  g_assert_cmpfloat_with_epsilon (p[8 * 21 + 10], p[10 * 21 + 8], 1e-7);
  g_assert_cmpfloat (p[10 * 21 + 10], <, 0.1);

  /* crop: box [40, 56) grown by 8, then to a 2:1 aspect within 192 x 160 */
  float m[160 * 192] = { 0 };
  for (int y = 40; y < 56; y++)
    for (int x = 40; x < 56; x++)
      m[y * 192 + x] = 1;
  int x0, y0, x1, y1;
  g_assert_true (easel_pipeline_crop_region (m, 192, 160, 8, 256, 128, &x0, &y0, &x1, &y1));
  g_assert_cmpint (y0, ==, 32);
  g_assert_cmpint (y1, ==, 64);
  g_assert_cmpint (x1 - x0, ==, 64);
  g_assert_cmpint (x0, <=, 32);
  g_assert_cmpint (x1, >=, 64);
  float none[4] = { 0 };
  g_assert_false (easel_pipeline_crop_region (none, 2, 2, 0, 1, 1, &x0, &y0, &x1, &y1));

  /* resize to the same size is the identity */
  float a[6] = { 1, 2, 3, 4, 5, 6 }, b[6];
  easel_pipeline_resize (a, 1, 3, 2, b, 3, 2);
  g_assert_cmpmem (a, sizeof a, b, sizeof b);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/pipeline/helpers", test_helpers);
  g_test_add_func ("/pipeline/diffusers-timesteps", test_diffusers_timesteps);
  g_test_add_func ("/pipeline/inpaint-ordinary", test_inpaint_ordinary_keeps_outside);
  g_test_add_func ("/pipeline/inpaint-only-masked", test_inpaint_only_masked);
  g_test_add_func ("/pipeline/cancel-and-reuse", test_cancel_and_reuse);
  g_test_add_func ("/pipeline/batch-seeds", test_batch_seeds);
  g_test_add_func ("/pipeline/bad-jobs", test_bad_jobs);
  return g_test_run ();
}
