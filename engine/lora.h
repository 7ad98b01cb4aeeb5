/* engine/lora.h: LoRA files and their merging into the UNet and text encoders.
 *
 * Files (.safetensors) in the forms in use, each module's tensors found by the key's last parts:
 *  - kohya / A1111: "lora_unet_<module path with _>", "lora_te_<...>" (SD 1.x/2.x text encoder),
 *    "lora_te1_" / "lora_te2_" (SDXL's CLIP-L / OpenCLIP-bigG), with .lora_down.weight [r, in(, kh,
 *    kw)], .lora_up.weight [out, r(, 1, 1)] and .alpha (scalar); UNet paths in diffusers naming
 *    (down_blocks_0_attentions_0_...) or ldm naming (input_blocks_4_1_..., SDXL trainers);
 *  - diffusers / PEFT: "unet.<module path>", "text_encoder.", "text_encoder_2." (or no prefix:
 *    UNet), with .lora_A.weight / .lora_B.weight, .lora.down.weight / .lora.up.weight, .alpha;
 *  - LyCORIS: LoCon (the LoRA tensors on convolutions, 3x3 down included), LoHa (.hada_w1_a,
 *    .hada_w1_b, .hada_w2_a, .hada_w2_b) and LoKr (.lokr_w1 or .lokr_w1_a/_b, .lokr_w2 or
 *    .lokr_w2_a/_b), with .alpha.
 *
 * Merge of one module with strength s (W seen as a matrix [out, in·kh·kw]):
 *   LoRA:  W' = W + s · (alpha / r) · up @ down                    r = rows of down
 *   LoHa:  W' = W + s · (alpha / r) · (w1a @ w1b) ⊙ (w2a @ w2b)    r = rows of w1b
 *   LoKr:  W' = W + s · scale · kron (w1, w2)                      w1 = w1a @ w1b where factored, w2
 *          alike (a 4-D w2b gives a conv w2 [out2, in2, kh, kw]); scale = alpha / r with r the rows of
 *          w2b (else of w1b) when a factor is low-rank, else 1
 * No alpha: alpha = r (scale 1). This is what A1111's and ComfyUI's loaders compute.
 *
 * Applying: an EaselLoraStack holds a model's UNet and text encoders and the LoRA set now applied.
 * Merging (EASEL_LORA_MODE_MERGE): each stored weight a LoRA touches gets an F32 copy with every
 * LoRA's delta added; the network is pointed at the copy, and the original stays mapped. At run time
 * (EASEL_LORA_MODE_RUNTIME) LoRA/LoCon modules become low-rank adapters the network's graph adds
 * (patch.h); LoHa and LoKr are merged in both modes. A new set rebuilds only the weights whose
 * contributions changed, and restores (drops the copy of) those no longer touched; an empty set
 * restores the model. Fused projections (the UNet's q|k|v and k|v copies, OpenCLIP's in_proj) are
 * patched in the rows of their module. No checkpoint is reloaded. */
#pragma once

#include <glib.h>

#include "clip.h"
#include "patch.h"
#include "safetensors.h"
#include "unet.h"

G_BEGIN_DECLS

typedef enum {
  EASEL_LORA_NET_UNET,
  EASEL_LORA_NET_TE1,   /* SD 1.x / 2.x text encoder, SDXL's CLIP-L */
  EASEL_LORA_NET_TE2,   /* SDXL's OpenCLIP-bigG (the refiner's only one) */
  EASEL_LORA_NET_COUNT
} EaselLoraNet;

typedef enum {
  EASEL_LORA_KIND_LORA,   /* up @ down (LoCon included) */
  EASEL_LORA_KIND_LOHA,
  EASEL_LORA_KIND_LOKR,
} EaselLoraKind;

typedef struct _EaselLora EaselLora;

/* Reads and checks a LoRA file (shapes and ranks of every module; nothing is merged yet). Keys of
 * no known form are kept for easel_lora_stack_apply to list. transfer full. */
EaselLora *easel_lora_open (const char *path, GError **error);
/* The same on an opened file (tests): takes ownership of st. */
EaselLora *easel_lora_new_from_safetensors (EaselSafetensors *st, GError **error);
EaselLora *easel_lora_ref (EaselLora *lora);
void       easel_lora_unref (EaselLora *lora);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselLora, easel_lora_unref)

const char *easel_lora_path (const EaselLora *lora);
/* The name A1111 shows: the file name without folder and extension. */
const char *easel_lora_name (const EaselLora *lora);
gsize       easel_lora_n_modules (const EaselLora *lora);
/* Modules aimed at one network. */
gsize       easel_lora_n_modules_for (const EaselLora *lora, EaselLoraNet net);
/* A1111's LoRA hash (the "addnet" hash: SHA-256 of the file after its safetensors header), in
 * lowercase hex; the short hash is its first 12 characters, as the PNG parameters record it. */
const char *easel_lora_hash (EaselLora *lora);
char       *easel_lora_short_hash (EaselLora *lora);    /* transfer full */

/* A LoRA in a set, with its strengths (A1111's te and unet multipliers). */
typedef struct {
  EaselLora *lora;
  float unet_strength;
  float te_strength;
} EaselLoraUse;

typedef struct _EaselLoraStack EaselLoraStack;

/* How a stack applies LoRA and LoCon modules (LoHa and LoKr are merged either way):
 *  - MERGE: into a copy of each touched weight (its file's dtype, or F32: set_merge_round); a new set
 *    or strength rebuilds the copies it changes;
 *  - RUNTIME: the network computes y = W·x + s·(alpha/r)·up(down(x)) (a conv LoRA: a kh×kw conv to
 *    r channels, then a 1×1 conv); the weights stay as stored, a change rebuilds only the small
 *    down/up tensors. */
typedef enum {
  EASEL_LORA_MODE_MERGE,
  EASEL_LORA_MODE_RUNTIME,
} EaselLoraMode;

/* "merge" / "runtime" (any case); FALSE for anything else. */
gboolean      easel_lora_mode_parse (const char *text, EaselLoraMode *mode);
const char   *easel_lora_mode_name (EaselLoraMode mode);
/* $EASEL_LORA_MODE when it names a mode, else the faster one measured for backend_name ("cpu",
 * "vulkan"; NULL: any) — docs/performance.md, section LoRA. */
EaselLoraMode easel_lora_mode_default (const char *backend_name);

/* te1, te2 as EaselLoraNet says (either may be NULL); all must outlive the stack. transfer full. */
EaselLoraStack *easel_lora_stack_new (EaselUnet *unet, EaselClip *te1, EaselClip *te2);
/* Takes effect at the next apply (which then rebuilds what the mode changes). New stacks start in
 * easel_lora_mode_default (NULL). */
void          easel_lora_stack_set_mode (EaselLoraStack *s, EaselLoraMode mode);
EaselLoraMode easel_lora_stack_get_mode (const EaselLoraStack *s);
/* Merged copies rounded to the module's dtype in the file (F16, BF16; a value that would overflow
 * keeps the weight F32) rather than kept F32 (the default: the reference merges in fp32 and computes
 * with fp32 weights; rounding misses golden parity); also $EASEL_LORA_MERGE_ROUND=1. Takes effect
 * for copies built after. */
void          easel_lora_stack_set_merge_round (EaselLoraStack *s, gboolean merge_round);
/* Restores every patched weight. */
void            easel_lora_stack_free (EaselLoraStack *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselLoraStack, easel_lora_stack_free)

/* Makes `uses` the merged set (n == 0: none). Checks every LoRA against the model first and
 * changes nothing when one is refused: a LoRA for another family (text encoder 2 modules on a model
 * with one encoder, shapes that differ from the model's weights) or one that matches no weight.
 * unmatched (may be NULL): "<lora name>: <key>" for every module that matches no weight of the
 * model (transfer full, possibly empty). */
gboolean easel_lora_stack_apply (EaselLoraStack *s, const EaselLoraUse *uses, gsize n, GPtrArray **unmatched,
                                 GError **error);
/* Stored weights patched now, and how many were rebuilt by the last apply (0 = nothing changed). */
guint easel_lora_stack_n_patched (const EaselLoraStack *s);
guint easel_lora_stack_n_rebuilt (const EaselLoraStack *s);
/* The tensor target's network uses now: its merged copy, or the stored weight. */
const EaselStTensor *easel_lora_stack_current (const EaselLoraStack *s, const EaselPatchTarget *target);
/* The target's rows as the network computes with them: rows (target->rows · target->cols floats) =
 * the current tensor's rows plus the run-time adapters' up · down in those rows. Returns whether
 * run-time adapters were added. */
gboolean easel_lora_stack_effective_rows (const EaselLoraStack *s, const EaselPatchTarget *target, float *rows);

/* Writes a random kohya-form LoRA (F16, rank `rank`, alpha rank / 2) for the given networks to path:
 * a module per patch target of the text encoders and of the UNet's transformers (what kohya's
 * networks.lora trains), and with convs every UNet weight, 3x3 convs included (LoCon). down is
 * uniform with variance 1/in, up uniform in [-0.02, 0.02): a LoRA's usual small effect. For
 * benchmarks; *n_modules (may be NULL): modules written. */
gboolean easel_lora_make_random (EaselUnet *unet, EaselClip *te1, EaselClip *te2, gint64 rank, gboolean convs,
                                 guint64 seed, const char *path, guint *n_modules, GError **error);

/* --- the delta of one module (tests, tools) ---------------------------------------------------- */

/* The module whose key stem (the key without its last parts, e.g. "lora_unet_mid_block_attentions_0_proj_in")
 * is stem, or -1. */
gssize easel_lora_find_module (const EaselLora *lora, const char *stem);
/* The delta of module i as an [rows, cols] matrix, times its alpha scale (not the strength):
 * delta (rows · cols floats). Fails when the module's shape is not rows x cols. */
gboolean easel_lora_module_delta (const EaselLora *lora, gsize i, gint64 rows, gint64 cols, float *delta,
                                  GError **error);
EaselLoraKind easel_lora_module_kind (const EaselLora *lora, gsize i);

/* --- references to LoRAs in prompts and on the command line ----------------------------------- */

typedef struct {
  char *name;          /* as written: a file name without extension, or a path */
  float te_strength;
  float unet_strength;
} EaselLoraRef;

/* Frees the names of a GArray of EaselLoraRef (its clear function). */
void easel_lora_ref_clear (gpointer ref);

/* A1111's extra networks in a prompt: every <lora:NAME>, <lora:NAME:M>, <lora:NAME:TE:UNET> and
 * <lora:NAME:M:unet=U:te=T> is removed from the text and appended to refs (a GArray of
 * EaselLoraRef; strength 1 when not given; unet defaults to te). Also <lyco:...>, A1111's older
 * name. Returns the prompt without them (transfer full); a malformed strength is an error naming it. */
char *easel_lora_extract_from_prompt (const char *prompt, GArray *refs, GError **error);
/* "--lora FILE[:STRENGTH]": the strength after the last ':' when it is a number (both networks). */
gboolean easel_lora_parse_arg (const char *arg, EaselLoraRef *ref, GError **error);
/* The file for a name: the name itself when it is a file; else NAME.safetensors (then .pt, .ckpt)
 * in folder. NULL with EASEL_ERROR_NOT_FOUND naming both. transfer full. */
char *easel_lora_resolve (const char *name, const char *folder, GError **error);

/* A1111's PNG parameters entry: "name1: shorthash1, name2: shorthash2" (the value of
 * `Lora hashes: "..."`). transfer full. */
char *easel_lora_hashes_text (EaselLora *const *loras, gsize n);
/* The same with the names as the prompt mentions them (A1111's alias = the tag's name; NULL or a
 * NULL entry: the file's name). transfer full. */
char *easel_lora_hashes_text_named (EaselLora *const *loras, const char *const *aliases, gsize n);
/* A name as A1111's "Lora hashes" / "TI hashes" entries write it: without ':' and ',' (so that the
 * list stays parseable). transfer full. */
char *easel_lora_clean_alias (const char *name);

G_END_DECLS
