/* app/easel-prompt-edit.h: prompt editing helpers with no GTK in them.
 *
 * - Weight editing (Ctrl+Up/Down) as AUTOMATIC1111's javascript/edit-attention.js does it: with no
 *   selection the enclosing <...>, (...) or [...] block or else the word at the cursor is selected;
 *   a bare selection becomes (sel:1.0) then moves by delta; old-style ((x)) / [x] emphasis becomes
 *   (x:w) with w rounded to a multiple of delta; a weight that reaches 1 inside (...) drops the
 *   brackets; weights are rounded to 12 significant digits and written as JavaScript prints numbers,
 *   with ".0" after integers. A1111's defaults: delta 0.1 for (), 0.05 inside <...>.
 * - Highlighting: which bytes of a prompt are syntax, which are text of what weight, and where
 *   BREAK is, with the weights from the engine's A1111 parser (engine/prompt.h). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define EASEL_PROMPT_EDIT_DELTA 0.1         /* A1111 keyedit_precision_attention */
#define EASEL_PROMPT_EDIT_DELTA_EXTRA 0.05  /* A1111 keyedit_precision_extra (<lora:name:w>) */
/* A1111 keyedit_delimiters plus its whitespace delimiters (tab, CR, LF). */
#define EASEL_PROMPT_EDIT_DELIMITERS ".,\\/!?%^*;:{}=`~() \t\r\n"

/* text: UTF-8; *sel_start <= *sel_end: byte offsets of the selection (the cursor when equal), in
 * and out. Returns the edited text (transfer full), or NULL when A1111 would change nothing (the
 * selection may still have moved, as A1111 selects the word first). */
char *easel_prompt_edit_weight (const char *text, gsize *sel_start, gsize *sel_end, gboolean increase,
                                double delta, double delta_extra);

/* A number as JavaScript's Number.prototype.toString prints it ("1.2", "0.30000000000000004",
 * "1e-7", "1e+21"). transfer full. */
char *easel_js_number_to_string (double v);

typedef enum {
  EASEL_PROMPT_SPAN_TEXT,     /* prompt text with a weight */
  EASEL_PROMPT_SPAN_SYNTAX,   /* brackets, ":1.2)", escape backslashes, whitespace BREAK ate */
  EASEL_PROMPT_SPAN_BREAK,    /* the word BREAK that closes a chunk */
} EaselPromptSpanKind;

typedef struct {
  gsize start, end;           /* bytes [start, end) */
  EaselPromptSpanKind kind;
  double weight;              /* TEXT: the weight A1111 gives it; else 1 */
} EaselPromptSpan;

/* The spans of text in order, covering it whole; adjacent bytes of the same kind and weight are
 * merged. NULL with the parser's error when A1111 would refuse the prompt. transfer full (GArray
 * of EaselPromptSpan). */
GArray *easel_prompt_spans (const char *text, GError **error);

G_END_DECLS
