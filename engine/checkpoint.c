/* engine/checkpoint.c */
#include "checkpoint.h"
