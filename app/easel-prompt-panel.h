/* app/easel-prompt-panel.h: prompt and negative prompt (A1111 syntax, weights highlighted,
 * Ctrl+Up/Down edits the weight of the selection), the model chooser (each checkpoint with its
 * detected family, found by a background scan of the model folders) and clip skip; all bound to
 * GSettings. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define EASEL_TYPE_PROMPT_PANEL (easel_prompt_panel_get_type ())
G_DECLARE_FINAL_TYPE (EaselPromptPanel, easel_prompt_panel, EASEL, PROMPT_PANEL, AdwBin)

void        easel_prompt_panel_bind_settings (EaselPromptPanel *self, GSettings *settings);
/* Scans the model folders again (the settings' models-folder and extra-model-folders). */
void        easel_prompt_panel_rescan_models (EaselPromptPanel *self);
/* The models found (EaselModelItem), NULL before the first scan ends. */
GListModel *easel_prompt_panel_get_models (EaselPromptPanel *self);
/* The family short name of the chosen model ("sd1", "sdxl", ...) or NULL. */
const char *easel_prompt_panel_get_family (EaselPromptPanel *self);
/* Chooses the model whose file name (without extension) is name, as A1111's "Model" field gives
 * it; FALSE when none matches. */
gboolean    easel_prompt_panel_select_model_by_name (EaselPromptPanel *self, const char *name);
GtkTextView *easel_prompt_panel_get_prompt_view (EaselPromptPanel *self);

/* The default models folder: $XDG_DATA_HOME/easel/models. transfer full. */
char       *easel_prompt_panel_default_models_folder (void);

G_END_DECLS
