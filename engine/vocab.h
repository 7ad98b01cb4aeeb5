/* engine/vocab.h */
#pragma once

#include <glib.h>
