/* engine/rng.c */
#include "rng.h"
