/* engine/tokenizer.c */
#include "tokenizer.h"
