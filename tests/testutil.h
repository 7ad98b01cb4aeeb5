/* tests/testutil.h: helpers shared by the unit tests. */
#pragma once

#include <glib.h>

/* $EASEL_TESTDATA joined with the parts; the test is skipped (and returns NULL) when the folder is
 * absent, unless CI=true, where a missing folder fails. transfer full. */
char *test_data_path (const char *first, ...) G_GNUC_NULL_TERMINATED;
