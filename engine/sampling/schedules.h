/* engine/sampling/schedules.h */
#pragma once

#include <glib.h>
