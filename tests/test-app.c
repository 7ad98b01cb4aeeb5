/* tests/test-app.c: the app's logic that needs no display: mask painting, A1111's Ctrl+Up/Down
 * weight editing and the prompt highlighting spans, parameters <-> settings (GSettings' memory
 * backend), the sampler/scheduler tables as the app shows them, the comparison grid (values,
 * layout, jobs, the labelled image; Pango/Cairo need fonts, not a display). Expected values follow from
 * the rules (A1111's edit-attention.js, parse_prompt_attention; the brush model of easel-mask.h),
 * worked out by hand in the comments. */
#include <glib/gstdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "easel-compare-grid.h"
#include "easel-job.h"
#include "easel-mask.h"
#include "easel-prompt-edit.h"
#include "easel-sampling-table.h"

/* ---- weight editing ------------------------------------------------------------------------- */

typedef struct {
  const char *text;
  gsize s, e;              /* selection in */
  gboolean up;
  const char *want;        /* NULL = no change */
  gsize want_s, want_e;
} EditCase;

static void
test_edit_weight (void)
{
  static const EditCase cases[] = {
    /* cursor in a word: the word is selected, wrapped as (cat:1.0), then moved up */
    { "a cat", 3, 3, TRUE, "a (cat:1.1)", 3, 6 },
    /* cursor in (cat:1.1): the block's text is selected; 1.1 - 0.1 = 1 drops the brackets */
    { "a (cat:1.1)", 4, 4, FALSE, "a cat", 2, 5 },
    /* old style ((cat)): 1.1^2 = 1.21, rounded to 12 * 0.1 = 1.2000000000000002, + 0.1 = 1.3 */
    { "((cat))", 2, 5, TRUE, "(cat:1.3)", 1, 4 },
    /* [cat]: 1/1.1 rounds to 9 * 0.1 = 0.9, + 0.1 = 1 -> plain again */
    { "[cat]", 1, 4, TRUE, "cat", 0, 3 },
    /* inside <lora:...>: delta 0.05 */
    { "<lora:foo:0.8>", 3, 3, TRUE, "<lora:foo:0.85>", 1, 9 },
    /* integers get ".0" */
    { "(cat:1.9)", 2, 2, TRUE, "(cat:2.0)", 1, 4 },
    /* a selection with trailing spaces: they stay outside */
    { "red cat  dog", 4, 9, TRUE, "red (cat:1.1)  dog", 5, 8 },
    /* weights go below zero as A1111 lets them */
    { "(cat:0.1)", 2, 2, FALSE, "(cat:0.0)", 1, 4 },
    /* nothing to select between delimiters */
    { ", ", 1, 1, TRUE, NULL, 1, 1 },
    /* multibyte text around the word keeps byte offsets right */
    { "é cat ü", 4, 4, TRUE, "é (cat:1.1) ü", 4, 7 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    const EditCase *c = &cases[i];
    gsize s = c->s, e = c->e;
    g_autofree char *got = easel_prompt_edit_weight (c->text, &s, &e, c->up, EASEL_PROMPT_EDIT_DELTA,
                                                     EASEL_PROMPT_EDIT_DELTA_EXTRA);
    g_test_message ("case %u: '%s' -> '%s'", i, c->text, got ? got : "(none)");
    g_assert_cmpstr (got, ==, c->want);
    g_assert_cmpuint (s, ==, c->want_s);
    g_assert_cmpuint (e, ==, c->want_e);
  }
}

static void
test_edit_weight_repeated (void)
{
  /* ten presses up from plain text reach 2.0 without float noise, ten down come back */
  g_autofree char *text = g_strdup ("a photo of a cat");
  gsize s = 14, e = 14;
  for (int i = 0; i < 10; i++) {
    char *next = easel_prompt_edit_weight (text, &s, &e, TRUE, EASEL_PROMPT_EDIT_DELTA, EASEL_PROMPT_EDIT_DELTA_EXTRA);
    g_assert_nonnull (next);
    g_free (text);
    text = next;
  }
  g_assert_cmpstr (text, ==, "a photo of a (cat:2.0)");
  for (int i = 0; i < 10; i++) {
    char *next = easel_prompt_edit_weight (text, &s, &e, FALSE, EASEL_PROMPT_EDIT_DELTA, EASEL_PROMPT_EDIT_DELTA_EXTRA);
    g_assert_nonnull (next);
    g_free (text);
    text = next;
  }
  g_assert_cmpstr (text, ==, "a photo of a cat");
}

static void
test_js_numbers (void)
{
  static const struct { double v; const char *want; } cases[] = {
    { 0.1 + 0.2, "0.30000000000000004" }, { 1.2, "1.2" }, { 2, "2" }, { -0.5, "-0.5" }, { 0, "0" },
    { 1e21, "1e+21" }, { 1e-7, "1e-7" }, { 0.000001, "0.000001" }, { 123456789012345680000.0, "123456789012345680000" },
    { 1.5e-10, "1.5e-10" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *s = easel_js_number_to_string (cases[i].v);
    g_assert_cmpstr (s, ==, cases[i].want);
  }
}

/* ---- highlighting --------------------------------------------------------------------------- */

static void
test_spans (void)
{
  /* bytes: a_(b:1.5)_[c]_BREAK_d ; A1111: "a " 1, "b" 1.5, " " 1, "c" 1/1.1, BREAK, "d" 1; the
   * spaces around BREAK are eaten by re_break */
  const char *text = "a (b:1.5) [c] BREAK d";
  static const EaselPromptSpan want[] = {
    { 0, 2, EASEL_PROMPT_SPAN_TEXT, 1.0 },    { 2, 3, EASEL_PROMPT_SPAN_SYNTAX, 1.0 },
    { 3, 4, EASEL_PROMPT_SPAN_TEXT, 1.5 },    { 4, 9, EASEL_PROMPT_SPAN_SYNTAX, 1.0 },
    { 9, 10, EASEL_PROMPT_SPAN_TEXT, 1.0 },   { 10, 11, EASEL_PROMPT_SPAN_SYNTAX, 1.0 },
    { 11, 12, EASEL_PROMPT_SPAN_TEXT, 1 / 1.1 }, { 12, 14, EASEL_PROMPT_SPAN_SYNTAX, 1.0 },
    { 14, 19, EASEL_PROMPT_SPAN_BREAK, 1.0 }, { 19, 20, EASEL_PROMPT_SPAN_SYNTAX, 1.0 },
    { 20, 21, EASEL_PROMPT_SPAN_TEXT, 1.0 },
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) spans = easel_prompt_spans (text, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (spans->len, ==, G_N_ELEMENTS (want));
  for (guint i = 0; i < spans->len; i++) {
    const EaselPromptSpan *sp = &g_array_index (spans, EaselPromptSpan, i);
    g_assert_cmpuint (sp->start, ==, want[i].start);
    g_assert_cmpuint (sp->end, ==, want[i].end);
    g_assert_cmpint (sp->kind, ==, want[i].kind);
    g_assert_cmpfloat (sp->weight, ==, want[i].weight);
  }
}

static void
test_spans_edge_cases (void)
{
  g_autoptr(GError) error = NULL;
  /* nested: ((x)) = 1.1 * 1.1; escaped \( is text; a stray ')' with nothing open is text */
  g_autoptr(GArray) a = easel_prompt_spans ("((x)) \\(y) z)", &error);
  g_assert_no_error (error);
  const EaselPromptSpan *x = &g_array_index (a, EaselPromptSpan, 1);
  g_assert_cmpuint (x->start, ==, 2);
  g_assert_cmpfloat (x->weight, ==, 1.1 * 1.1);
  gboolean saw_escape = FALSE, saw_close_text = FALSE;
  for (guint i = 0; i < a->len; i++) {
    const EaselPromptSpan *sp = &g_array_index (a, EaselPromptSpan, i);
    if (sp->kind == EASEL_PROMPT_SPAN_SYNTAX && sp->start == 6 && sp->end == 7)
      saw_escape = TRUE;   /* the backslash */
    if (sp->kind == EASEL_PROMPT_SPAN_TEXT && sp->start <= 12 && sp->end == 13)
      saw_close_text = TRUE;
  }
  g_assert_true (saw_escape);
  g_assert_true (saw_close_text);
  /* the spans cover the text without gaps */
  gsize at = 0;
  for (guint i = 0; i < a->len; i++) {
    g_assert_cmpuint (g_array_index (a, EaselPromptSpan, i).start, ==, at);
    at = g_array_index (a, EaselPromptSpan, i).end;
  }
  g_assert_cmpuint (at, ==, strlen ("((x)) \\(y) z)"));

  /* A1111 refuses "1.2.3" as a weight (Python float()): the spans say so */
  g_autoptr(GArray) bad = easel_prompt_spans ("(x:1.2.3)", &error);
  g_assert_null (bad);
  g_assert_nonnull (error);
}

/* ---- mask ----------------------------------------------------------------------------------- */

static void
test_mask_stroke (void)
{
  g_autoptr(EaselMask) m = easel_mask_new (64, 64);
  g_assert_true (easel_mask_is_empty (m));
  g_assert_false (easel_mask_can_undo (m));

  /* hard brush of radius 4 along y = 32 from x = 10 to 50: pixels whose centres lie within 4 of
   * the line are full; pixel (30, 35) has its centre 3.5 away, (30, 37) 5.5 away */
  easel_mask_stroke_begin (m, EASEL_MASK_BRUSH, 4, 1.0, 10, 32);
  easel_mask_stroke_to (m, 50, 32);
  easel_mask_stroke_end (m);
  g_assert_cmpuint (easel_mask_get (m, 30, 32), ==, 255);
  g_assert_cmpuint (easel_mask_get (m, 30, 35), ==, 255);
  g_assert_cmpuint (easel_mask_get (m, 30, 37), ==, 0);
  g_assert_cmpuint (easel_mask_get (m, 55, 32), ==, 0);   /* past the end plus the radius */
  g_assert_cmpuint (easel_mask_get (m, 4, 32), ==, 0);
  g_assert_cmpuint (easel_mask_get (m, -1, 32), ==, 0);   /* outside reads 0 */
  /* about a 40 x 8 band plus two half discs: 320 + pi * 16 ~ 370 pixels */
  gsize n = easel_mask_count_nonzero (m);
  g_assert_cmpuint (n, >, 330);
  g_assert_cmpuint (n, <, 420);

  /* undo, redo; a new stroke forgets the redo */
  g_assert_true (easel_mask_undo (m));
  g_assert_true (easel_mask_is_empty (m));
  g_assert_true (easel_mask_can_redo (m));
  g_assert_true (easel_mask_redo (m));
  g_assert_cmpuint (easel_mask_count_nonzero (m), ==, n);
  easel_mask_undo (m);
  easel_mask_stroke_begin (m, EASEL_MASK_BRUSH, 2, 1.0, 5, 5);
  easel_mask_stroke_end (m);
  g_assert_false (easel_mask_can_redo (m));

  /* the eraser takes it away again */
  easel_mask_stroke_begin (m, EASEL_MASK_ERASER, 6, 1.0, 5, 5);
  easel_mask_stroke_end (m);
  g_assert_true (easel_mask_is_empty (m));
}

static void
test_mask_soft_brush (void)
{
  g_autoptr(EaselMask) m = easel_mask_new (32, 32);
  /* hardness 0, radius 8 at (16, 16): coverage falls off with the distance and is 0 from 8 on */
  easel_mask_stroke_begin (m, EASEL_MASK_BRUSH, 8, 0.0, 16, 16);
  easel_mask_stroke_end (m);
  guint prev = 256;
  for (int x = 16; x < 26; x++) {
    guint v = easel_mask_get (m, x, 16);
    g_assert_cmpuint (v, <=, prev);
    prev = v;
  }
  g_assert_cmpuint (easel_mask_get (m, 16, 16), >, 200);   /* centre 0.7 away: smoothstep(0.91) = 0.98 */
  g_assert_cmpuint (easel_mask_get (m, 20, 16), >, 64);    /* 4.5 away: smoothstep(0.44) ~ 0.41 -> 105 */
  g_assert_cmpuint (easel_mask_get (m, 20, 16), <, 150);
  g_assert_cmpuint (easel_mask_get (m, 24, 16), ==, 0);    /* 8.5 away */
}

static void
test_mask_edits (void)
{
  g_autoptr(EaselMask) m = easel_mask_new (40, 30);
  easel_mask_invert (m);
  g_assert_cmpuint (easel_mask_count_nonzero (m), ==, 40 * 30);
  easel_mask_clear (m);
  g_assert_true (easel_mask_is_empty (m));
  g_assert_true (easel_mask_undo (m));
  g_assert_cmpuint (easel_mask_get (m, 3, 3), ==, 255);
  easel_mask_clear (m);

  /* a hard 10x10 square, feathered: the edge gets intermediate values, the mass stays */
  for (int y = 10; y < 20; y++) {
    easel_mask_stroke_begin (m, EASEL_MASK_BRUSH, 0.5, 1.0, 15.5, y + 0.5);
    easel_mask_stroke_to (m, 24.5, y + 0.5);
    easel_mask_stroke_end (m);
  }
  guint64 before = 0, after = 0;
  for (int y = 0; y < 30; y++)
    for (int x = 0; x < 40; x++)
      before += easel_mask_get (m, x, y);
  g_assert_cmpuint (before, ==, 100 * 255);
  easel_mask_feather (m, 2);
  for (int y = 0; y < 30; y++)
    for (int x = 0; x < 40; x++)
      after += easel_mask_get (m, x, y);
  g_assert_cmpfloat (fabs ((double) after - (double) before) / before, <, 0.02);   /* rounding only */
  guint edge = easel_mask_get (m, 15, 15);
  g_assert_cmpuint (edge, >, 0);
  g_assert_cmpuint (edge, <, 255);
  /* (19, 14) lies 5 and 6 rows from the outside above and below, 5 and 6 columns left and right.
   * Three box passes of half-width 2 are the sum of three uniform {-2..2} offsets: |sum| >= 5 has
   * probability 4/125, >= 6 1/125, so each axis keeps 1 - 5/125 = 0.96: 255 * 0.96^2 = 235. */
  g_assert_cmpint (abs ((int) easel_mask_get (m, 19, 14) - 235), <=, 1);

  /* resizing keeps the painting where it was, scaled */
  easel_mask_resize (m, 20, 15);
  g_assert_cmpint (easel_mask_width (m), ==, 20);
  g_assert_cmpuint (easel_mask_get (m, 10, 7), >, 200);
  g_assert_cmpuint (easel_mask_get (m, 2, 2), ==, 0);
  g_assert_true (easel_mask_undo (m));
  g_assert_cmpint (easel_mask_width (m), ==, 40);
}

static void
test_mask_png (void)
{
  g_autoptr(EaselMask) m = easel_mask_new (48, 32);
  easel_mask_stroke_begin (m, EASEL_MASK_BRUSH, 6, 0.3, 10, 10);
  easel_mask_stroke_to (m, 40, 25);
  easel_mask_stroke_end (m);
  g_autofree char *dir = g_dir_make_tmp ("easel-mask-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "mask.png", NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true (easel_mask_save_png (m, path, &error));
  g_assert_no_error (error);

  g_autoptr(EaselMask) back = easel_mask_new (48, 32);
  g_assert_true (easel_mask_load_png (back, path, &error));
  g_assert_cmpmem (easel_mask_data (back), 48 * 32, easel_mask_data (m), 48 * 32);

  /* loading into a mask of another size scales */
  g_autoptr(EaselMask) half = easel_mask_new (24, 16);
  g_assert_true (easel_mask_load_png (half, path, &error));
  g_assert_cmpuint (easel_mask_get (half, 12, 9), >, 0);   /* (25, 18) is on the stroke */
  g_assert_cmpuint (easel_mask_get (half, 23, 0), ==, 0);

  /* a missing file is an error that names it */
  g_autofree char *missing = g_build_filename (dir, "nope.png", NULL);
  g_assert_false (easel_mask_load_png (back, missing, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "nope.png"));
  g_remove (path);
  g_rmdir (dir);

  /* RGBA: transparent pixels are not masked whatever their colour */
  g_autoptr(EaselImage) rgba = easel_image_new (2, 1, 4, NULL);
  memset (rgba->pixels, 255, 8);
  rgba->pixels[3] = 0;
  easel_mask_set_from_image (half, rgba);
  g_assert_cmpuint (easel_mask_get (half, 0, 5), ==, 0);
  g_assert_cmpuint (easel_mask_get (half, 23, 5), ==, 255);
}

/* ---- parameters <-> settings ---------------------------------------------------------------- */

static void
test_settings_roundtrip (void)
{
  g_autoptr(GSettings) s = g_settings_new (EASEL_APP_ID);
  const char *text = "a (cat:1.2) on a mat\nNegative prompt: blurry, ugly\n"
                     "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 5.5, Seed: 1234, Size: 640x448, "
                     "Model: sd1_tiny, Denoising strength: 0.4, Clip skip: 2, RNG: CPU";
  g_autoptr(EaselParameters) p = easel_parameters_parse (text, -1, NULL);
  g_autofree char *skipped = NULL;
  g_assert_cmpuint (easel_job_settings_apply_parameters (s, p, &skipped), ==, 0);
  g_assert_cmpstr (skipped, ==, "");

  g_autofree char *prompt = g_settings_get_string (s, "prompt");
  g_autofree char *neg = g_settings_get_string (s, "negative-prompt");
  g_autofree char *sampler = g_settings_get_string (s, "sampler");
  g_autofree char *sched = g_settings_get_string (s, "scheduler");
  g_autofree char *rng = g_settings_get_string (s, "rng");
  g_assert_cmpstr (prompt, ==, "a (cat:1.2) on a mat");
  g_assert_cmpstr (neg, ==, "blurry, ugly");
  g_assert_cmpstr (sampler, ==, "dpmpp_2m");
  g_assert_cmpstr (sched, ==, "karras");
  g_assert_cmpstr (rng, ==, "cpu");
  g_assert_cmpint (g_settings_get_int (s, "steps"), ==, 30);
  g_assert_cmpfloat (g_settings_get_double (s, "cfg"), ==, 5.5);
  g_assert_cmpint (g_settings_get_int64 (s, "seed"), ==, 1234);
  g_assert_false (g_settings_get_boolean (s, "randomize-seed"));
  g_assert_cmpint (g_settings_get_int (s, "width"), ==, 640);
  g_assert_cmpint (g_settings_get_int (s, "height"), ==, 448);
  g_assert_cmpint (g_settings_get_int (s, "clip-skip"), ==, 2);
  g_assert_cmpfloat (g_settings_get_double (s, "denoise"), ==, 0.4);

  /* and back: the job the settings describe writes the same fields, in A1111's words */
  guint64 seed = easel_job_next_seed (s);
  g_assert_cmpuint (seed, ==, 1234);
  g_assert_cmpint (g_settings_get_int64 (s, "last-seed"), ==, 1234);
  g_settings_set_string (s, "model", "/models/sd1_tiny.safetensors");
  g_autoptr(EaselJobRequest) req = easel_job_request_from_settings (s, seed, NULL, NULL);
  g_assert_cmpstr (req->params.sampler, ==, "dpmpp_2m");
  g_assert_cmpint (req->params.rng, ==, EASEL_RNG_CPU);
  g_autoptr(EaselParameters) back = easel_job_request_to_parameters (req);
  g_assert_cmpstr (back->prompt, ==, "a (cat:1.2) on a mat");
  g_assert_cmpstr (back->negative, ==, "blurry, ugly");
  g_assert_cmpstr (back->sampler, ==, "DPM++ 2M");
  g_assert_cmpstr (back->schedule_type, ==, "Karras");
  g_assert_cmpstr (back->model, ==, "sd1_tiny");
  g_assert_cmpint (back->steps, ==, 30);
  g_assert_cmpint (back->clip_skip, ==, 2);
  g_assert_true (isnan (back->denoising_strength));   /* no init image: not written */
  g_assert_cmpstr (easel_parameters_get_extra (back, "RNG"), ==, "CPU");
  /* through text and settings once more: a fixed point */
  g_autofree char *t2 = easel_parameters_to_text (back);
  g_autoptr(EaselParameters) p2 = easel_parameters_parse (t2, -1, NULL);
  g_assert_cmpuint (easel_job_settings_apply_parameters (s, p2, NULL), ==, 0);
  g_autofree char *sched2 = g_settings_get_string (s, "scheduler");
  g_assert_cmpstr (sched2, ==, "karras");

  /* randomized seeds stay below 2^32 and are remembered */
  g_settings_set_boolean (s, "randomize-seed", TRUE);
  guint64 r = easel_job_next_seed (s);
  g_assert_cmpuint (r, <=, G_MAXUINT32);
  g_assert_cmpint (g_settings_get_int64 (s, "last-seed"), ==, (gint64) r);
}

static void
test_settings_refused (void)
{
  g_autoptr(GSettings) s = g_settings_new (EASEL_APP_ID);
  g_settings_set_int (s, "steps", 25);
  g_settings_set_string (s, "sampler", "euler");
  const char *text = "x\nSteps: 5000, Sampler: Nonexistent, CFG scale: 7, Size: 10x10, Seed: 5";
  g_autoptr(EaselParameters) p = easel_parameters_parse (text, -1, NULL);
  g_autofree char *skipped = NULL;
  g_assert_cmpuint (easel_job_settings_apply_parameters (s, p, &skipped), ==, 3);
  g_assert_cmpstr (skipped, ==, "Steps, Sampler, Size");
  g_assert_cmpint (g_settings_get_int (s, "steps"), ==, 25);   /* left as they were */
  g_autofree char *sampler = g_settings_get_string (s, "sampler");
  g_assert_cmpstr (sampler, ==, "euler");
  g_assert_cmpint (g_settings_get_int64 (s, "seed"), ==, 5);   /* the valid ones applied */
}

static void
test_sampling_table (void)
{
  g_assert_cmpuint (easel_sampling_table_n_samplers (), >, 10);
  gint euler = easel_sampling_table_find_sampler ("Euler a", NULL);
  g_assert_cmpint (euler, >=, 0);
  g_assert_cmpstr (easel_sampling_table_sampler_id ((guint) euler), ==, "euler_ancestral");
  const char *sched = NULL;
  gint i = easel_sampling_table_find_sampler ("DPM++ 2M Karras", &sched);
  g_assert_cmpstr (easel_sampling_table_sampler_label ((guint) i), ==, "DPM++ 2M");
  g_assert_cmpstr (sched, ==, "karras");
  g_assert_cmpint (easel_sampling_table_find_sampler ("no such sampler", NULL), ==, -1);
  g_assert_cmpint (easel_sampling_table_find_scheduler (""), ==, 0);
  g_assert_cmpint (easel_sampling_table_find_scheduler ("Automatic"), ==, 0);
  gint k = easel_sampling_table_find_scheduler ("Karras");
  g_assert_cmpstr (easel_sampling_table_scheduler_id ((guint) k), ==, "karras");
  g_assert_cmpstr (easel_sampling_table_scheduler_label (0), ==, "Automatic");
  g_assert_null (easel_sampling_table_scheduler_id (easel_sampling_table_n_schedulers ()));
}


/* ---- the comparison grid -------------------------------------------------------------------- */

static void
test_compare_values (void)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) s = easel_compare_parse_values (EASEL_COMPARE_AXIS_SAMPLER, " Euler, euler_ancestral ,, DPM++ 2M Karras",
                                                &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (s), ==, 3);
  g_assert_cmpstr (s[0], ==, "euler");
  g_assert_cmpstr (s[1], ==, "euler_ancestral");
  g_assert_cmpstr (s[2], ==, "dpmpp_2m/karras");   /* A1111's combined name keeps its schedule */
  g_autofree char *label = easel_compare_value_label (EASEL_COMPARE_AXIS_SAMPLER, s[2]);
  g_assert_cmpstr (label, ==, "DPM++ 2M Karras");

  g_auto(GStrv) bad = easel_compare_parse_values (EASEL_COMPARE_AXIS_SAMPLER, "Euler, Nope", &error);
  g_assert_null (bad);
  g_assert_nonnull (strstr (error->message, "Nope"));
  g_clear_error (&error);
  g_assert_null (easel_compare_parse_values (EASEL_COMPARE_AXIS_STEPS, "10, 0", &error));   /* 0 steps */
  g_clear_error (&error);
  g_assert_null (easel_compare_parse_values (EASEL_COMPARE_AXIS_CFG, "7, 4.5x", &error));
  g_clear_error (&error);
  g_assert_null (easel_compare_parse_values (EASEL_COMPARE_AXIS_SEED, " , ", &error));     /* nothing */
  g_clear_error (&error);
  g_assert_null (easel_compare_parse_values (EASEL_COMPARE_AXIS_SEED, "4294967296", &error));   /* 2^32 */
  g_clear_error (&error);

  g_auto(GStrv) cfg = easel_compare_parse_values (EASEL_COMPARE_AXIS_CFG, "4.50, 7", &error);
  g_assert_cmpstr (cfg[0], ==, "4.5");
  g_assert_cmpstr (cfg[1], ==, "7");
  g_auto(GStrv) sched = easel_compare_parse_values (EASEL_COMPARE_AXIS_SCHEDULER, "Karras, exponential", &error);
  g_assert_cmpstr (sched[0], ==, "karras");
  g_assert_cmpstr (sched[1], ==, "exponential");
  EaselCompareAxis axis;
  g_assert_true (easel_compare_axis_from_name ("steps", &axis));
  g_assert_cmpint (axis, ==, EASEL_COMPARE_AXIS_STEPS);
  g_assert_false (easel_compare_axis_from_name ("bogus", &axis));
}

static void
test_compare_layout (void)
{
  /* 3 x 2 cells of 64 x 48, gap 4, a 20-pixel header and a 48-pixel row band:
   * width 48 + 3*64 + 2*4 = 248, height 20 + 2*48 + 4 = 120 */
  EaselCompareLayout l;
  easel_compare_layout_init (&l, 3, 2, 64, 48, 4, 20, 48);
  g_assert_cmpint (l.width, ==, 248);
  g_assert_cmpint (l.height, ==, 120);
  EaselCompareRect c = easel_compare_layout_cell (&l, 2, 1);   /* x 48 + 2*68 = 184, y 20 + 52 = 72 */
  g_assert_cmpint (c.x, ==, 184);
  g_assert_cmpint (c.y, ==, 72);
  g_assert_cmpint (c.width, ==, 64);
  g_assert_cmpint (c.height, ==, 48);
  EaselCompareRect h = easel_compare_layout_column_label (&l, 1);
  g_assert_cmpint (h.x, ==, 116);
  g_assert_cmpint (h.y, ==, 0);
  g_assert_cmpint (h.width, ==, 64);
  g_assert_cmpint (h.height, ==, 20);
  EaselCompareRect r = easel_compare_layout_row_label (&l, 1);
  g_assert_cmpint (r.x, ==, 0);
  g_assert_cmpint (r.y, ==, 72);
  g_assert_cmpint (r.width, ==, 48);
  g_assert_cmpint (r.height, ==, 48);
  /* one row, no row band, no gaps to add: exactly the cells and the header */
  easel_compare_layout_init (&l, 1, 1, 256, 256, 4, 30, 0);
  g_assert_cmpint (l.width, ==, 256);
  g_assert_cmpint (l.height, ==, 286);
  /* A1111-like font size: 4.5% of the mean side, at least 12 */
  g_assert_cmpint (easel_compare_label_font_px (512, 512), ==, 23);
  g_assert_cmpint (easel_compare_label_font_px (64, 64), ==, 12);
}

static void
test_compare_jobs (void)
{
  g_autoptr(GSettings) settings = g_settings_new (EASEL_APP_ID);
  g_settings_set_int (settings, "steps", 20);
  g_autoptr(EaselJobRequest) base = easel_job_request_from_settings (settings, 42, NULL, NULL);
  const char *samplers[] = { "euler", "dpmpp_2m/karras", NULL };
  const char *steps[] = { "5", "9", NULL };
  g_autoptr(EaselCompareGrid) g = easel_compare_grid_new (EASEL_COMPARE_AXIS_SAMPLER, samplers,
                                                          EASEL_COMPARE_AXIS_STEPS, steps, 64, 64);
  g_assert_cmpint (easel_compare_grid_n_columns (g), ==, 2);
  g_assert_cmpint (easel_compare_grid_n_rows (g), ==, 2);
  g_autoptr(EaselJobRequest) req = easel_compare_grid_request (g, base, 1, 1);
  g_assert_cmpstr (req->params.sampler, ==, "dpmpp_2m");
  g_assert_cmpstr (req->params.scheduler, ==, "karras");
  g_assert_cmpint (req->params.steps, ==, 9);
  g_assert_cmpuint (req->params.seed, ==, 42);               /* one seed for the whole grid */
  g_assert_cmpint (base->params.steps, ==, 20);              /* the base is left alone */
  g_assert_cmpstr (base->params.sampler, !=, "dpmpp_2m");
  g_autofree char *caption = easel_compare_grid_cell_caption (g, 1, 1);
  g_assert_cmpstr (caption, ==, "DPM++ 2M Karras, Steps: 9");
  g_autoptr(EaselImage) im = easel_image_new (64, 64, 3, NULL);
  easel_compare_grid_set_cell (g, 1, 1, g_steal_pointer (&im), "p", 1.25);
  g_free (caption);
  caption = easel_compare_grid_cell_caption (g, 1, 1);
  g_assert_cmpstr (caption, ==, "DPM++ 2M Karras, Steps: 9: 1.2 s");   /* %.1f of 1.25: 1.2 */
  g_assert_cmpint (easel_compare_grid_n_filled (g), ==, 1);
  g_assert_cmpstr (easel_compare_grid_first_parameters (g), ==, "p");

  /* no second axis: one row, no row labels */
  g_autoptr(EaselCompareGrid) one = easel_compare_grid_new (EASEL_COMPARE_AXIS_SAMPLER, samplers,
                                                            EASEL_COMPARE_AXIS_NONE, NULL, 64, 64);
  g_assert_cmpint (easel_compare_grid_n_rows (one), ==, 1);
  g_assert_null (easel_compare_grid_row_label (one, 0));
  EaselCompareLayout l;
  easel_compare_grid_layout (one, &l);
  g_assert_cmpint (l.row_label_w, ==, 0);
}

/* Bounding box of pixels darker than 128 (label ink) inside r; FALSE when there are none. */
static gboolean
ink_box (const EaselImage *im, EaselCompareRect r, int *x0, int *x1, int *y0, int *y1)
{
  *x0 = *y0 = G_MAXINT;
  *x1 = *y1 = -1;
  for (int y = r.y; y < r.y + r.height; y++)
    for (int x = r.x; x < r.x + r.width; x++) {
      const guint8 *p = im->pixels + (gsize) y * im->stride + (gsize) x * 3;
      if (p[0] < 128 && p[1] < 128 && p[2] < 128) {
        *x0 = MIN (*x0, x), *x1 = MAX (*x1, x), *y0 = MIN (*y0, y), *y1 = MAX (*y1, y);
      }
    }
  return *x1 >= 0;
}

static void
test_compare_render (void)
{
  const char *samplers[] = { "euler", "euler_ancestral", NULL };
  const char *cfgs[] = { "3", "7", NULL };
  g_autoptr(EaselCompareGrid) g = easel_compare_grid_new (EASEL_COMPARE_AXIS_SAMPLER, samplers,
                                                          EASEL_COMPARE_AXIS_CFG, cfgs, 128, 96);
  /* three cells of solid colours; (1, 1) stays empty */
  const guint8 colours[3][3] = { { 200, 30, 30 }, { 30, 200, 30 }, { 30, 30, 200 } };
  for (int i = 0; i < 3; i++) {
    EaselImage *im = easel_image_new (128, 96, 3, NULL);
    for (gsize j = 0; j < (gsize) 128 * 96; j++)
      memcpy (im->pixels + j * 3, colours[i], 3);
    easel_compare_grid_set_cell (g, i % 2, i / 2, im, NULL, 1.0);
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(EaselImage) out = easel_compare_grid_render (g, &error);
  g_assert_no_error (error);
  EaselCompareLayout l;
  easel_compare_grid_layout (g, &l);
  g_assert_cmpint (out->width, ==, l.width);
  g_assert_cmpint (out->height, ==, l.height);
  g_assert_cmpint (l.row_label_w, ==, 96);   /* 3/4 of the cell width */
  g_assert_cmpint (l.header_h, >, easel_compare_label_font_px (128, 96));
  g_assert_cmpint (l.gap, ==, 2);

  /* every pixel of a filled cell is its image; the empty cell is light grey; gaps are white */
  for (int i = 0; i < 4; i++) {
    EaselCompareRect r = easel_compare_layout_cell (&l, i % 2, i / 2);
    for (int y = r.y; y < r.y + r.height; y++)
      for (int x = r.x; x < r.x + r.width; x++) {
        const guint8 *p = out->pixels + (gsize) y * out->stride + (gsize) x * 3;
        if (i < 3)
          g_assert_true (p[0] == colours[i][0] && p[1] == colours[i][1] && p[2] == colours[i][2]);
        else
          g_assert_true (p[0] == 217 && p[1] == 217 && p[2] == 217);   /* 0.85 * 255 rounded */
      }
  }
  EaselCompareRect c0 = easel_compare_layout_cell (&l, 0, 0);
  const guint8 *gap = out->pixels + (gsize) (c0.y + 10) * out->stride + (gsize) (c0.x + c0.width) * 3;
  g_assert_true (gap[0] == 255 && gap[1] == 255 && gap[2] == 255);

  /* labels: ink in each column's and row's band, centred across the column (within a pixel or
   * two of rounding), and none in the top-left corner */
  int x0, x1, y0, y1;
  for (int c = 0; c < 2; c++) {
    EaselCompareRect h = easel_compare_layout_column_label (&l, c);
    g_assert_true (ink_box (out, h, &x0, &x1, &y0, &y1));
    double mid = (x0 + x1 + 1) / 2.0, want = h.x + h.width / 2.0;
    g_test_message ("column %d ink %d..%d, centre %.1f want %.1f", c, x0, x1, mid, want);
    g_assert_cmpfloat (fabs (mid - want), <=, 2.5);
  }
  for (int r = 0; r < 2; r++)
    g_assert_true (ink_box (out, easel_compare_layout_row_label (&l, r), &x0, &x1, &y0, &y1));
  g_assert_false (ink_box (out, (EaselCompareRect) { 0, 0, l.row_label_w, l.header_h }, &x0, &x1, &y0, &y1));
  /* "Euler a" is wider than "Euler" */
  int a0, a1;
  ink_box (out, easel_compare_layout_column_label (&l, 0), &x0, &x1, &y0, &y1);
  ink_box (out, easel_compare_layout_column_label (&l, 1), &a0, &a1, &y0, &y1);
  g_assert_cmpint (a1 - a0, >, x1 - x0);
}

int
main (int argc, char *argv[])
{
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/app/prompt/edit-weight", test_edit_weight);
  g_test_add_func ("/app/prompt/edit-weight-repeated", test_edit_weight_repeated);
  g_test_add_func ("/app/prompt/js-numbers", test_js_numbers);
  g_test_add_func ("/app/prompt/spans", test_spans);
  g_test_add_func ("/app/prompt/spans-edge-cases", test_spans_edge_cases);
  g_test_add_func ("/app/mask/stroke", test_mask_stroke);
  g_test_add_func ("/app/mask/soft-brush", test_mask_soft_brush);
  g_test_add_func ("/app/mask/edits", test_mask_edits);
  g_test_add_func ("/app/mask/png", test_mask_png);
  g_test_add_func ("/app/settings/roundtrip", test_settings_roundtrip);
  g_test_add_func ("/app/settings/refused", test_settings_refused);
  g_test_add_func ("/app/sampling-table", test_sampling_table);
  g_test_add_func ("/app/compare/values", test_compare_values);
  g_test_add_func ("/app/compare/layout", test_compare_layout);
  g_test_add_func ("/app/compare/jobs", test_compare_jobs);
  g_test_add_func ("/app/compare/render", test_compare_render);
  return g_test_run ();
}
