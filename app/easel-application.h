/* app/easel-application.h: the GtkApplication (libadwaita): settings, the engine worker, app
 * actions (preferences, about, quit) and accelerators. One worker for all windows. */
#pragma once

#include <adwaita.h>

#include "easel-worker.h"

G_BEGIN_DECLS

#define EASEL_RESOURCE_PREFIX "/org/easel/Easel"

#define EASEL_TYPE_APPLICATION (easel_application_get_type ())
G_DECLARE_FINAL_TYPE (EaselApplication, easel_application, EASEL, APPLICATION, AdwApplication)

EaselApplication *easel_application_new (void);
GSettings        *easel_application_get_settings (EaselApplication *self);
EaselWorker      *easel_application_get_worker (EaselApplication *self);

/* Registers the GResource bundle (once); the application's class_init calls it. */
void              easel_app_register_resources (void);

G_END_DECLS
