/* app/cli/cli-adapters.h: the adapter flags of `easel-cli generate` (repeatable groups):
 *   --controlnet FILE --control-image PNG [--control-strength X] [--control-start X]
 *     [--control-end X] [--canny LOW:HIGH]          (each --controlnet starts a new group)
 *   --t2i-adapter FILE --adapter-image PNG [--adapter-strength X]   (likewise)
 *   --ip-adapter FILE --ip-image PNG [--ip-image PNG ...] [--ip-scale X] [--image-encoder DIR]
 * A group's options apply to the last --controlnet / --t2i-adapter before them. */
#pragma once

#include "engine/easel.h"

G_BEGIN_DECLS

typedef struct _EaselCliAdapters EaselCliAdapters;

EaselCliAdapters *easel_cli_adapters_new (void);
void              easel_cli_adapters_free (EaselCliAdapters *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EaselCliAdapters, easel_cli_adapters_free)

/* The option group to add to the context (owned by the context once added). */
GOptionGroup *easel_cli_adapters_group (EaselCliAdapters *a);
/* Loads the images and points job's adapter fields at a's units (a must outlive the job). */
gboolean      easel_cli_adapters_apply (EaselCliAdapters *a, EaselJobParams *job, GError **error);

G_END_DECLS
