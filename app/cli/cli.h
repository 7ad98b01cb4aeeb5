/* app/cli/cli.h: the subcommands of easel-cli. Each takes its own argv (argv[0] is the
 * subcommand's name) and returns the process exit status. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

int easel_cli_inspect (int argc, char **argv);
int easel_cli_tokenize (int argc, char **argv);
int easel_cli_check_golden (int argc, char **argv);
int easel_cli_samplers (int argc, char **argv);
int easel_cli_generate (int argc, char **argv);
int easel_cli_bench (int argc, char **argv);
int easel_cli_make_model (int argc, char **argv);
int easel_cli_devices (int argc, char **argv);

/* inspect, by what the file is (cli-inspect-*.c) */
int easel_cli_inspect_png (const char *path, gboolean list_tensors);
int easel_cli_inspect_checkpoint (const char *path, gboolean list_tensors, gboolean verbose);

/* One line on stderr: "easel-cli: <message>" (the message names the file and the problem). */
void easel_cli_error (const char *format, ...) G_GNUC_PRINTF (1, 2);

G_END_DECLS
