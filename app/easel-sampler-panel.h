/* app/easel-sampler-panel.h: sampler and schedule (the engine's tables, A1111 names shown), steps,
 * CFG, seed (random, or fixed, or the last one reused), size with presets for the model's family,
 * batch, denoising strength; all bound to GSettings. */
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define EASEL_TYPE_SAMPLER_PANEL (easel_sampler_panel_get_type ())
G_DECLARE_FINAL_TYPE (EaselSamplerPanel, easel_sampler_panel, EASEL, SAMPLER_PANEL, AdwBin)

void easel_sampler_panel_bind_settings (EaselSamplerPanel *self, GSettings *settings);
/* The size presets follow the model family ("sd1", "sd2", "sdxl"...; NULL = SD 1.x's). */
void easel_sampler_panel_set_family (EaselSamplerPanel *self, const char *family);

/* The presets of a family: "WxH" strings, NULL-terminated, static. */
const char *const *easel_size_presets (const char *family);

G_END_DECLS
