/* engine/rng.h */
#pragma once

#include <glib.h>
