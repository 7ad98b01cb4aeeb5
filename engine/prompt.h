/* engine/prompt.h */
#pragma once

#include <glib.h>
