/* app/easel-window.h: the main window: prompt and sampler panels beside the canvas, history and
 * comparison pages; win.* actions (generate, cancel, toast ...); jobs go to the application's
 * worker and their progress, previews and results come back here. */
#pragma once

#include <adwaita.h>

#include "easel-application.h"
#include "easel-canvas.h"

G_BEGIN_DECLS

#define EASEL_TYPE_WINDOW (easel_window_get_type ())
G_DECLARE_FINAL_TYPE (EaselWindow, easel_window, EASEL, WINDOW, AdwApplicationWindow)

EaselWindow *easel_window_new (EaselApplication *app);
EaselCanvas *easel_window_get_canvas (EaselWindow *self);
/* Shows a toast; also what the "win.toast" action does. */
void         easel_window_toast (EaselWindow *self, const char *message);
/* The title of the last toast shown (for tests and screen readers' logs), or NULL. */
const char  *easel_window_get_last_toast (EaselWindow *self);
/* Whether a job of this window or the comparison runs (Generate shows Cancel meanwhile). */
gboolean     easel_window_is_running (EaselWindow *self);
/* Restores the settings of an A1111/Easel parameters text (as dropping a PNG does). */
void         easel_window_restore_parameters (EaselWindow *self, const char *parameters, const char *source_name);
/* Shows a page of the view stack: "canvas", "history" or "compare". */
void         easel_window_show_page (EaselWindow *self, const char *name);

G_END_DECLS
