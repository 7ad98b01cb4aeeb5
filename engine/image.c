/* engine/image.c */
#include "image.h"
