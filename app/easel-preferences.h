/* app/easel-preferences.h: the preferences window: model folders, output folder, backend and
 * device, noise source; every row bound to GSettings. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define EASEL_TYPE_PREFERENCES (easel_preferences_get_type ())
G_DECLARE_FINAL_TYPE (EaselPreferences, easel_preferences, EASEL, PREFERENCES, AdwPreferencesWindow)

EaselPreferences *easel_preferences_new (GSettings *settings);

G_END_DECLS
