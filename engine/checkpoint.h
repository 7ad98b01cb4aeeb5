/* engine/checkpoint.h */
#pragma once

#include <glib.h>
