/* engine/vocab.c */
#include "vocab.h"
