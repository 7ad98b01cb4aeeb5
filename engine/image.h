/* engine/image.h */
#pragma once

#include <glib.h>
