/* engine/tokenizer.h */
#pragma once

#include <glib.h>
