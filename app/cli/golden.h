/* app/cli/golden.h: the golden-parity harness behind `easel-cli check-golden DIR`.
 *
 * DIR has the layout of ../shared/testdata (tokenizer/, rng/, samplers/, models/, refs/,
 * fullsize_keys/, each with a manifest.json). Each kind of case is one row of a table
 * (golden.c): `collect` lists the cases of that kind found in DIR, `run` checks one case and
 * is NULL while the kind is not implemented (its cases are then counted as skipped). */
#pragma once

#include <glib.h>

#include "engine/backend.h"
#include "engine/json.h"
#include "engine/safetensors.h"

G_BEGIN_DECLS

typedef struct _EaselGolden EaselGolden;

typedef struct {
  char *name;              /* unique within its kind, printed in FAIL lines */
  char *dir;               /* folder of the manifest it came from */
  const EaselJson *spec;   /* its manifest entry (owned by the harness), may be NULL */
  gpointer data;           /* kind-specific */
  GDestroyNotify free_data;
} EaselGoldenCase;

typedef struct {
  const char *name;
  /* Appends EaselGoldenCase* (made with easel_golden_case_new) for every case in the folder. */
  void (*collect) (EaselGolden *g, GPtrArray *cases);
  /* Checks one case: TRUE if it passed. On failure, describe it with easel_golden_fail() or
   * set error (both are printed as "FAIL <kind> <case>: ..."). NULL = not implemented yet. */
  gboolean (*run) (EaselGolden *g, EaselGoldenCase *c, GError **error);
} EaselGoldenKind;

/* --- for the kinds -------------------------------------------------------------------------- */

const char *easel_golden_dir (EaselGolden *g);          /* the DIR argument */
const char *easel_golden_backend (EaselGolden *g);      /* "cpu" or "vulkan" */
/* A new backend of the kind --backend names, for one case (or one model form): every network kind
 * makes its backends here, never easel_backend_new_cpu, so that --backend vulkan runs them all.
 * Backends keep converted or uploaded weights by data pointer, and a case's files are unmapped
 * after it, hence one per case. NULL with an error when that backend cannot be made (no device).
 * transfer full. */
EaselBackend *easel_golden_new_backend (EaselGolden *g, GError **error);
const char *easel_golden_vocab (EaselGolden *g);        /* --vocab / EASEL_VOCAB, or NULL */
gboolean    easel_golden_verbose (EaselGolden *g);

/* A manifest under DIR (e.g. "rng/manifest.json"), parsed once and kept for the run; NULL and
 * a line on stderr when absent or unreadable (absent folders simply have no cases). */
const EaselJson *easel_golden_manifest (EaselGolden *g, const char *relpath);
/* A safetensors file, opened once per run and cached. */
EaselSafetensors *easel_golden_safetensors (EaselGolden *g, const char *path, GError **error);
/* A tensor of a cached file as fp32, with its element count checked against want_n (0: any). */
float *easel_golden_tensor_f32 (EaselGolden *g, const char *path, const char *name,
                                gsize want_n, gsize *n_out, GError **error);

EaselGoldenCase *easel_golden_case_new (const char *name, const char *dir, const EaselJson *spec);
/* Records why the current case failed (appended to its FAIL line). */
void easel_golden_fail (EaselGolden *g, const char *format, ...) G_GNUC_PRINTF (2, 3);
/* A line printed once, before the summary (e.g. "sdxl_refiner_tiny/: no weights, diffusers form skipped"). */
void easel_golden_note (EaselGolden *g, const char *format, ...) G_GNUC_PRINTF (2, 3);

/* Tolerance of a manifest entry: {"abs": a, "rel": r} or "exact" (0, 0); defaults when absent. */
void easel_golden_tolerance (const EaselJson *spec, double default_abs, double default_rel,
                             double *atol, double *rtol);
/* |got - want| <= atol + rtol * max|want| everywhere; on failure records the worst element, its
 * index within shape (may be NULL), the count over tolerance, and returns FALSE. */
gboolean easel_golden_compare (EaselGolden *g, const char *label, const float *got, const float *want,
                               gsize n, const gint64 *shape, int n_dims, double atol, double rtol);

/* The models a refs manifest's "model" text names ("../../models/NAME", "NAME(.safetensors)"), each
 * with the forms present in DIR: a diffusers folder DIR/models/NAME/ and a single file
 * DIR/models/NAME.safetensors (NULL when absent). Network kinds run each case once per form. */
typedef struct {
  char *name;
  char *folder;        /* diffusers folder, or NULL */
  char *single_file;   /* .safetensors, or NULL */
} EaselGoldenModel;
/* transfer full: GPtrArray of EaselGoldenModel*, in the order the text names them */
GPtrArray *easel_golden_models (EaselGolden *g, const EaselJson *manifest);
/* Cases of refs/<ref>/manifest.json whose names satisfy accept (NULL: all); each gets the manifest's
 * folder as dir and its entry as spec. */
void easel_golden_collect_refs (EaselGolden *g, GPtrArray *cases, const char *ref,
                                gboolean (*accept) (const char *case_name));

/* --- the kinds (golden-*.c) -------------------------------------------------------------- */

extern const EaselGoldenKind easel_golden_kind_tokenizer;
extern const EaselGoldenKind easel_golden_kind_prompt;
extern const EaselGoldenKind easel_golden_kind_rng;
extern const EaselGoldenKind easel_golden_kind_checkpoint;
extern const EaselGoldenKind easel_golden_kind_schedule;
extern const EaselGoldenKind easel_golden_kind_sampler;
extern const EaselGoldenKind easel_golden_kind_text_encoder;
extern const EaselGoldenKind easel_golden_kind_unet;
extern const EaselGoldenKind easel_golden_kind_vae;
extern const EaselGoldenKind easel_golden_kind_pipeline;
extern const EaselGoldenKind easel_golden_kind_lora;
extern const EaselGoldenKind easel_golden_kind_canny;
extern const EaselGoldenKind easel_golden_kind_controlnet;
extern const EaselGoldenKind easel_golden_kind_t2i_adapter;
extern const EaselGoldenKind easel_golden_kind_ip_adapter;
extern const EaselGoldenKind easel_golden_kind_adapter_pipeline;

/* Runs check-golden; returns the process exit status. */
int easel_cli_check_golden (int argc, char **argv);

G_END_DECLS
