/* engine/sampling/schedules.c */
#include "schedules.h"
