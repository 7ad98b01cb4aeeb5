/* engine/prompt.c */
#include "prompt.h"
