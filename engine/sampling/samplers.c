/* engine/sampling/samplers.c */
#include "samplers.h"
