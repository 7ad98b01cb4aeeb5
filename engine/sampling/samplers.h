/* engine/sampling/samplers.h */
#pragma once

#include <glib.h>
