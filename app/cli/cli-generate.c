/* app/cli/cli-generate.c: `easel-cli generate`: one job from the command line, with the flags of
 * stable-diffusion.cpp's sd and A1111's names (-m, -p, -n, --sampler, --cfg, -W, -H ...). Progress
 * goes to stderr (a bar on a terminal, plain lines otherwise); images are PNGs with A1111's
 * parameters chunk, written under a temporary name and renamed (engine/image.h). Ctrl-C stops
 * after the current step and writes nothing; a second Ctrl-C ends the process at once.
 * Exit status: 0 done, 1 failed, 2 bad usage, 130 interrupted. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "cli-adapters.h"
#include "cli.h"
#include "engine/engine-private.h"
#include "engine/lora.h"
#include "engine/model-make.h"
#include "engine/pipeline.h"
#include "engine/safetensors.h"
#include "engine/vae.h"

static volatile sig_atomic_t interrupted = 0;

static void
on_sigint (int sig)
{
  interrupted = 1;
  signal (sig, SIG_DFL);   /* a second Ctrl-C ends the process */
}

typedef struct {
  gboolean tty;
  int last_len;
} Bar;

static gboolean
on_progress (const EaselProgress *p, gpointer user_data)
{
  Bar *bar = user_data;
  if (p->message) {
    if (bar->tty && bar->last_len)
      fputc ('\n', stderr), bar->last_len = 0;
    fprintf (stderr, "easel-cli: %s\n", p->message);
    return !interrupted;
  }
  int eta = (int) (p->eta_s + 0.5);
  double per = p->step ? p->elapsed_s / p->step : 0;
  if (bar->tty) {
    const int width = 30;
    int fill = p->total_steps ? p->step * width / p->total_steps : 0;
    char cells[64];
    for (int i = 0; i < width; i++)
      cells[i] = i < fill ? '#' : '.';
    cells[width] = '\0';
    bar->last_len = fprintf (stderr, "\r[%s] %d/%d  %.2f s/step  ETA %d:%02d ", cells, p->step, p->total_steps, per,
                             eta / 60, eta % 60);
    if (p->step == p->total_steps)
      fputc ('\n', stderr), bar->last_len = 0;
  } else {
    fprintf (stderr, "step %d/%d sigma %.4f %.2f s/step ETA %d:%02d\n", p->step, p->total_steps, p->sigma, per,
             eta / 60, eta % 60);
  }
  fflush (stderr);
  return !interrupted;
}

/* The path of image i of n: PATH itself for one image, else STEM-i.EXT (i from 1). */
static char *
output_name (const char *path, guint i, guint n)
{
  if (n == 1)
    return g_strdup (path);
  const char *slash = strrchr (path, G_DIR_SEPARATOR), *dot = strrchr (path, '.');
  if (dot == NULL || (slash && dot < slash))
    return g_strdup_printf ("%s-%u", path, i + 1);
  return g_strdup_printf ("%.*s-%u%s", (int) (dot - path), path, i + 1, dot);
}

/* Refuses an output path that cannot be written, before any work: its folder must exist and take
 * a new file, and the path must not be a folder. */
static gboolean
check_writable (const char *path, GError **error)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR)) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_IO, "%s: is a folder, not a file name", path);
    return FALSE;
  }
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *probe = g_build_filename (dir, ".easel-write-test-XXXXXX", NULL);
  int fd = g_mkstemp (probe);
  if (fd < 0) {
    int e = errno;
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_IO, "%s: cannot write there: %s", path, g_strerror (e));
    return FALSE;
  }
  close (fd);
  g_unlink (probe);
  return TRUE;
}

static gboolean
parse_seed (const char *s, guint64 *out)
{
  if (s == NULL || strcmp (s, "-1") == 0) {
    *out = ((guint64) g_random_int () << 32 | g_random_int ()) & G_GUINT64_CONSTANT (0xffffffff);
    return TRUE;
  }
  return g_ascii_string_to_unsigned (s, 10, 0, G_MAXUINT64, out, NULL);
}

static EaselImage *
load_png (const char *what, const char *path, GError **error)
{
  g_autoptr(GError) local = NULL;
  EaselImage *im = easel_png_load (path, NULL, &local);
  if (im == NULL)
    g_set_error (error, EASEL_ERROR, local->code, "%s: %s", what, local->message);
  return im;
}

static float *
load_latents (const char *path, gsize want, GError **error)
{
  g_autoptr(EaselSafetensors) st = easel_safetensors_open (path, error);
  if (st == NULL)
    return NULL;
  const EaselStTensor *t = easel_safetensors_find (st, "latents");
  if (t == NULL && easel_safetensors_n_tensors (st) == 1)
    t = easel_safetensors_tensor (st, 0);
  if (t == NULL || t->n_elements != want) {
    g_set_error (error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT,
                 "%s: wants one tensor \"latents\" of %" G_GSIZE_FORMAT " values (batch x 4 x H/8 x W/8)", path, want);
    return NULL;
  }
  return easel_st_tensor_to_f32 (t);
}

/* The built-in demo model (engine/model-make.h), said in one line. */
static gboolean
demo_model (char **model, char **vocab, GError **error)
{
  g_autofree char *dir = easel_demo_model_dir ();
  g_autofree char *demo_vocab = NULL;
  gboolean written = FALSE;
  if (!easel_demo_model_ensure (model, &demo_vocab, &written, error))
    return FALSE;
  fprintf (stderr, "easel-cli: no model given (-m) or configured (EASEL_MODEL): using the built-in demo model, "
           "random weights, %s %s\n", written ? "written to" : "in", dir);
  if (*vocab == NULL)
    *vocab = g_steal_pointer (&demo_vocab);
  return TRUE;
}

/* --params-from: says so when the LoRA or embedding files found now are not the recorded ones. */
static void
warn_changed_hashes (const EaselParameters *from, const char *now_text)
{
  static const char *const keys[] = { "Lora hashes", "TI hashes" };
  g_autoptr(EaselParameters) now = easel_parameters_parse (now_text, -1, NULL);
  for (guint i = 0; now && i < G_N_ELEMENTS (keys); i++) {
    const char *a = easel_parameters_get_extra (from, keys[i]), *b = easel_parameters_get_extra (now, keys[i]);
    if (a && g_strcmp0 (a, b) != 0)
      fprintf (stderr, "easel-cli: --params-from: %s differ: recorded \"%s\", used \"%s\"\n", keys[i], a,
               b ? b : "");
  }
}

/* "gpu memory: peak X GiB (limit Y GiB)" on stderr, for a Vulkan engine */
static void
print_gpu_memory (EaselEngine *engine)
{
  EaselBackend *be = easel_engine_backend (engine);
  EaselBackendStats st;
  if (strcmp (easel_backend_name (be), "vulkan") != 0)
    return;
  easel_backend_get_stats (be, &st);
  guint64 limit = easel_backend_get_memory_limit (be);
  g_autofree char *lim = limit ? g_strdup_printf (" (limit %.2f GiB)", limit / 1073741824.0) : g_strdup ("");
  fprintf (stderr, "gpu memory: peak %.2f GiB%s, %.2f GiB held at the end\n", st.device_peak_bytes / 1073741824.0,
           lim, st.device_bytes / 1073741824.0);
}

int
easel_cli_generate (int argc, char **argv)
{
  g_autofree char *model = NULL, *vae = NULL, *prompt = NULL, *negative = NULL, *sampler = NULL, *scheduler = NULL;
  g_autofree char *seed_s = NULL, *rng_s = NULL, *init = NULL, *mask = NULL, *refiner = NULL, *output = NULL;
  g_autofree char *params_from = NULL, *initial_latents = NULL, *save_latents = NULL, *vocab = NULL;
  g_autofree char *backend = NULL;
  double max_vram = 0;
  g_auto(GStrv) config_dirs = NULL, lora_args = NULL, lora_dirs = NULL, embedding_dirs = NULL;
  int steps = -1, width = -1, height = -1, batch_size = 1, batch_count = 1, clip_skip = -1, mask_blur = 4;
  int padding = 32, threads = 0;
  gboolean timings = FALSE;
  double cfg = NAN, strength = NAN, switch_at = 0.8;
  gboolean only_masked = FALSE;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "checkpoint (.safetensors or diffusers folder)", "PATH" },
    { "vae", 0, 0, G_OPTION_ARG_FILENAME, &vae, "a separate VAE", "PATH" },
    { "prompt", 'p', 0, G_OPTION_ARG_STRING, &prompt, "prompt (A1111 syntax)", "TEXT" },
    { "negative-prompt", 'n', 0, G_OPTION_ARG_STRING, &negative, "negative prompt", "TEXT" },
    { "sampler", 0, 0, G_OPTION_ARG_STRING, &sampler, "ComfyUI id or A1111 name (default euler)", "NAME" },
    { "scheduler", 0, 0, G_OPTION_ARG_STRING, &scheduler, "ComfyUI id or A1111 schedule type", "NAME" },
    { "steps", 0, 0, G_OPTION_ARG_INT, &steps, "sampling steps (default 20)", "N" },
    { "cfg", 0, 0, G_OPTION_ARG_DOUBLE, &cfg, "guidance scale (default 7)", "X" },
    { "cfg-scale", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_DOUBLE, &cfg, NULL, NULL },
    { "seed", 's', 0, G_OPTION_ARG_STRING, &seed_s, "seed; -1 = random (default)", "N" },
    { "rng", 0, 0, G_OPTION_ARG_STRING, &rng_s, "noise: cpu (ComfyUI, default) or cuda (A1111's GPU noise)", "cpu|cuda" },
    { "width", 'W', 0, G_OPTION_ARG_INT, &width, "width, a multiple of 8 (default: the model's)", "N" },
    { "height", 'H', 0, G_OPTION_ARG_INT, &height, "height, a multiple of 8", "N" },
    { "batch-size", 'b', 0, G_OPTION_ARG_INT, &batch_size, "images per batch", "N" },
    { "batch-count", 0, 0, G_OPTION_ARG_INT, &batch_count, "batches (seeds +1 per image)", "N" },
    { "clip-skip", 0, 0, G_OPTION_ARG_INT, &clip_skip, "1 = last layer (default)", "N" },
    { "init", 'i', 0, G_OPTION_ARG_FILENAME, &init, "init image (img2img / inpainting)", "PNG" },
    { "init-img", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &init, NULL, NULL },
    { "strength", 0, 0, G_OPTION_ARG_DOUBLE, &strength, "denoising strength (default 0.75)", "X" },
    { "mask", 0, 0, G_OPTION_ARG_FILENAME, &mask, "inpainting mask, white = repaint", "PNG" },
    { "mask-blur", 0, 0, G_OPTION_ARG_INT, &mask_blur, "mask blur radius (default 4)", "N" },
    { "only-masked", 0, 0, G_OPTION_ARG_NONE, &only_masked, "inpaint a crop around the mask at full size", NULL },
    { "padding", 0, 0, G_OPTION_ARG_INT, &padding, "pixels around the mask for --only-masked (default 32)", "N" },
    { "refiner", 0, 0, G_OPTION_ARG_FILENAME, &refiner, "refiner checkpoint", "PATH" },
    { "switch-at", 0, 0, G_OPTION_ARG_DOUBLE, &switch_at, "fraction of the steps before the refiner (0.8)", "X" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "output PNG (default output.png)", "PATH" },
    { "params-from", 0, 0, G_OPTION_ARG_FILENAME, &params_from, "repeat the generation recorded in a PNG", "PNG" },
    { "initial-latents", 0, 0, G_OPTION_ARG_FILENAME, &initial_latents, "initial noise of the first batch", "FILE" },
    { "save-latents", 0, 0, G_OPTION_ARG_FILENAME, &save_latents, "write the final latents (safetensors)", "FILE" },
    { "vocab", 0, 0, G_OPTION_ARG_FILENAME, &vocab, "CLIP vocabulary file or folder", "PATH" },
    { "config-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &config_dirs,
      "a diffusers folder whose <part>/config.json describe a single file's unusual networks", "DIR" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: all)", "N" },
    { "backend", 0, 0, G_OPTION_ARG_STRING, &backend,
      "auto (a GPU through Vulkan, else the CPU; default), cpu, vulkan or vulkan:DEVICE (lavapipe included)",
      "NAME" },
    { "max-vram", 0, 0, G_OPTION_ARG_DOUBLE, &max_vram,
      "GPU memory the job may hold, GiB: text encoders and VAE leave the GPU and the VAE decodes in tiles "
      "to fit (default: no limit)", "GIB" },
    { "lora", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &lora_args,
      "a LoRA (file, or a name in the LoRA folders) and its strength (default 1); repeatable", "FILE[:STRENGTH]" },
    { "lora-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &lora_dirs,
      "where the prompt's <lora:NAME:...> are found (also $EASEL_LORA_DIR and beside the model)", "DIR" },
    { "embeddings-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &embedding_dirs,
      "textual-inversion embeddings, used by file name in prompts (also $EASEL_EMBEDDINGS_DIR)", "DIR" },
    { "timings", 0, 0, G_OPTION_ARG_NONE, &timings, "Print the time of each phase and the peak memory on stderr", NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) oc = g_option_context_new ("- generate images");
  g_option_context_add_main_entries (oc, entries, NULL);
  g_autoptr(EaselCliAdapters) adapters = easel_cli_adapters_new ();
  g_option_context_add_group (oc, easel_cli_adapters_group (adapters));
  g_option_context_set_summary (oc, "Sampler and scheduler names: `easel-cli samplers`.");
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse (oc, &argc, &argv, &error)) {
    easel_cli_error ("generate: %s", error->message);
    return 2;
  }
  if (argc > 1) {
    easel_cli_error ("generate: unexpected argument '%s' (the prompt goes after -p)", argv[1]);
    return 2;
  }
  if (!(max_vram >= 0)) {
    easel_cli_error ("--max-vram %g: GiB of GPU memory, 0 or more", max_vram);
    return 2;
  }

  /* --params-from: the recorded values, under every flag given explicitly */
  g_autoptr(EaselParameters) from = NULL;
  if (params_from) {
    g_autoptr(EaselPngInfo) info = NULL;
    g_autoptr(EaselImage) im = easel_png_load (params_from, &info, &error);
    const EaselPngText *t = im ? easel_png_info_find_text (info, EASEL_PARAMETERS_KEY) : NULL;
    if (im && t == NULL)
      g_set_error (&error, EASEL_ERROR, EASEL_ERROR_INVALID_INPUT, "%s: no \"parameters\" text chunk", params_from);
    if (t == NULL || (from = easel_parameters_parse (t->text, -1, &error)) == NULL) {
      easel_cli_error ("--params-from %s", error->message);
      return 1;
    }
    if (!prompt)
      prompt = g_strdup (from->prompt);
    if (!negative && from->negative[0])
      negative = g_strdup (from->negative);
    if (steps < 0 && from->steps > 0)
      steps = from->steps;
    if (!sampler && from->sampler)
      sampler = g_strdup (from->sampler);
    if (!scheduler && from->schedule_type)
      scheduler = g_strdup (from->schedule_type);
    if (isnan (cfg) && !isnan (from->cfg_scale))
      cfg = from->cfg_scale;
    if (!seed_s && from->has_seed)
      seed_s = g_strdup_printf ("%" G_GINT64_FORMAT, from->seed);
    if (width < 0 && from->width > 0)
      width = from->width, height = from->height;
    if (isnan (strength) && !isnan (from->denoising_strength))
      strength = from->denoising_strength;
    if (clip_skip < 0 && from->clip_skip > 0)
      clip_skip = from->clip_skip;
    const char *r = easel_parameters_get_extra (from, "RNG");
    if (!rng_s)
      rng_s = g_strdup (r && g_ascii_strcasecmp (r, "CPU") == 0 ? "cpu" : r ? "cuda" : NULL);
  }
  if (prompt == NULL) {
    easel_cli_error ("generate: no prompt (-p TEXT)");
    return 2;
  }
  /* --lora FILE[:STRENGTH] (a prompt's <lora:...> tags, --params-from's included, go in the prompt) */
  g_autoptr(GArray) lora_refs = g_array_new (FALSE, TRUE, sizeof (EaselLoraRef));
  g_array_set_clear_func (lora_refs, easel_lora_ref_clear);
  g_autoptr(GArray) job_loras = g_array_new (FALSE, TRUE, sizeof (EaselJobLora));
  for (guint i = 0; lora_args && lora_args[i]; i++) {
    EaselLoraRef ref;
    if (!easel_lora_parse_arg (lora_args[i], &ref, &error)) {
      easel_cli_error ("%s", error->message);
      return 2;
    }
    g_array_append_val (lora_refs, ref);
  }
  for (guint i = 0; i < lora_refs->len; i++) {
    const EaselLoraRef *r = &g_array_index (lora_refs, EaselLoraRef, i);
    EaselJobLora l = { r->name, r->unet_strength, r->te_strength };
    g_array_append_val (job_loras, l);
  }
  EaselRngKind rng = EASEL_RNG_CPU;
  if (rng_s && !easel_rng_kind_from_name (rng_s, &rng)) {
    easel_cli_error ("--rng '%s': use cpu or cuda", rng_s);
    return 2;
  }
  guint64 seed;
  if (!parse_seed (seed_s, &seed)) {
    easel_cli_error ("--seed '%s': not a number from 0 to 2^64-1 (or -1 for random)", seed_s);
    return 2;
  }
  if (model == NULL)
    model = g_strdup (g_getenv ("EASEL_MODEL"));
  gboolean demo = model == NULL;
  if (demo && !demo_model (&model, &vocab, &error)) {
    easel_cli_error ("demo model: %s", error->message);
    return 1;
  }
  if (output == NULL)
    output = g_strdup ("output.png");
  if (!check_writable (output, &error) || (save_latents && !check_writable (save_latents, &error))) {
    easel_cli_error ("%s", error->message);
    return 1;
  }

  g_auto(GStrv) backend_parts = g_strsplit (backend ? backend : "auto", ":", 2);
  EaselEngineOptions eo = { .backend = backend_parts[0], .device = backend_parts[1], .n_threads = threads,
                            .max_vram_gib = max_vram };
  g_autoptr(EaselEngine) engine = easel_engine_new (&eo, &error);
  EaselModelOptions mo = { .config_dirs = (const char *const *) config_dirs, .vocab = vocab };
  g_autoptr(EaselModel) m = engine ? easel_model_load_with_options (engine, model, &mo, &error) : NULL;
  g_autoptr(EaselModel) mv = m && vae ? easel_model_load_with_options (engine, vae, &mo, &error) : NULL;
  g_autoptr(EaselModel) mr = m && refiner && (!vae || mv) ? easel_model_load_with_options (engine, refiner, &mo, &error)
                                                         : NULL;
  g_autoptr(EaselImage) init_im = init ? load_png ("--init", init, &error) : NULL;
  g_autoptr(EaselImage) mask_im = mask && (!init || init_im) ? load_png ("--mask", mask, &error) : NULL;
  if (error) {
    easel_cli_error ("%s", error->message);
    return 1;
  }
  if (mask && !init) {
    easel_cli_error ("--mask needs --init IMAGE");
    return 2;
  }
  EaselFamily fam = easel_model_detection (m)->family;
  int side = fam == EASEL_FAMILY_SDXL || fam == EASEL_FAMILY_SDXL_INPAINT || fam == EASEL_FAMILY_SDXL_REFINER ? 1024
             : fam == EASEL_FAMILY_SD2 ? 768 : 512;
  if (demo)
    side = EASEL_DEMO_MODEL_SIDE;   /* the demo's tiny network is made for small images */
  if (width < 0)
    width = init_im && !only_masked ? init_im->width : side;
  if (height < 0)
    height = init_im && !only_masked ? init_im->height : side;

  EaselJobParams job = {
    .prompt = prompt, .negative_prompt = negative, .sampler = sampler ? sampler : "euler", .scheduler = scheduler,
    .steps = steps > 0 ? steps : 20, .cfg = isnan (cfg) ? 7.0 : cfg, .seed = seed, .rng = rng,
    .width = width, .height = height, .batch_size = batch_size, .batch_count = batch_count,
    .clip_skip = clip_skip > 0 ? clip_skip : 1, .init_image = init_im, .strength = isnan (strength) ? 0.75 : strength,
    .mask = mask_im, .mask_blur = mask_blur, .inpaint_only_masked = only_masked, .only_masked_padding = padding,
    .refiner = mr, .refiner_switch = switch_at, .vae = mv,
    .loras = (const EaselJobLora *) job_loras->data, .n_loras = (int) job_loras->len,
    .lora_dirs = (const char *const *) lora_dirs, .embedding_dirs = (const char *const *) embedding_dirs,
  };
  if (!easel_cli_adapters_apply (adapters, &job, &error)) {
    easel_cli_error ("%s", error->message);
    return 1;
  }
  g_autofree float *noise = NULL;
  if (initial_latents) {
    gsize want = (gsize) MAX (batch_size, 1) * 4 * (MAX (width, 8) / 8) * (MAX (height, 8) / 8);
    if ((noise = load_latents (initial_latents, want, &error)) == NULL) {
      easel_cli_error ("--initial-latents %s", error->message);
      return 1;
    }
  }
  EaselPipelineRequest req = { .job = &job, .initial_noise = noise };
  Bar bar = { .tty = isatty (STDERR_FILENO) };
  struct sigaction sa = { 0 }, old;
  sa.sa_handler = on_sigint;
  sigaction (SIGINT, &sa, &old);
  EaselPipelineResult r;
  gboolean ok = easel_pipeline_run (engine, m, &req, on_progress, &bar, NULL, &r, &error);
  sigaction (SIGINT, &old, NULL);
  if (bar.tty && bar.last_len)
    fputc ('\n', stderr);
  if (!ok) {
    easel_pipeline_result_clear (&r);
    if (g_error_matches (error, EASEL_ERROR, EASEL_ERROR_CANCELLED)) {
      easel_cli_error ("interrupted: nothing written");
      return 130;
    }
    easel_cli_error ("%s", error->message);
    return 1;
  }
  if (from && r.parameters->len > 0)
    warn_changed_hashes (from, r.parameters->pdata[0]);
  if (timings) {
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    fprintf (stderr, "timings: load + text encoding %.2f s, sampling %.2f s (%u steps, %.2f s/step), VAE %.2f s, "
             "peak RSS %.2f GiB\n", r.seconds_prepare, r.seconds_sampling, r.steps_run,
             r.steps_run ? r.seconds_sampling / r.steps_run : 0.0, r.seconds_vae, ru.ru_maxrss / (1024.0 * 1024.0));
  }
  if (timings || max_vram > 0)
    print_gpu_memory (engine);
  int status = 0;
  for (guint i = 0; i < r.images->len && status == 0; i++) {
    g_autofree char *path = output_name (output, i, r.images->len);
    const char *texts[] = { EASEL_PARAMETERS_KEY, r.parameters->pdata[i], NULL };
    if (!easel_png_save (r.images->pdata[i], path, texts, &error)) {
      easel_cli_error ("%s", error->message);
      status = 1;
    } else {
      printf ("%s\n", path);
    }
  }
  if (status == 0 && save_latents) {
    g_autoptr(EaselSafetensorsWriter) w = easel_safetensors_writer_new ();
    const gint64 shape[4] = { batch_size, 4, height / 8, width / 8 };
    if (!easel_safetensors_writer_add (w, "latents", EASEL_DTYPE_F32, 4, shape, r.latents, &error)
        || !easel_safetensors_writer_save (w, save_latents, &error)) {
      easel_cli_error ("--save-latents %s", error->message);
      status = 1;
    }
  }
  easel_pipeline_result_clear (&r);
  return status;
}
