// cli/commands.h — the sub-commands of `spearlabel`. Each takes the argv that
// follows its name (argv[0] = the sub-command) and returns an exit code.
#pragma once

#include <stddef.h>

#include "common/exitcode.h" // SL_EXIT_OK, _FAIL, _USAGE, _INTERRUPTED

int cmd_run(int argc, char **argv);
int cmd_regenerate(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_tokens(int argc, char **argv);
int cmd_decode(int argc, char **argv);
int cmd_kmfit(int argc, char **argv);

// Joins a command's own getopt_long table and a shared one (decode or feature flags),
// both zero-terminated, into out[cap] (zero-terminated). Aborts if cap is too small:
// the tables are fixed at compile time, so that is a programming error.
struct option;
void cli_join_options(struct option *out, size_t cap, const struct option *own,
                      const struct option *shared);

// Strict number parsing for flag values: the whole string, within [lo, hi]. 0 or -1.
int cli_parse_long(const char *s, long lo, long hi, long *out);
int cli_parse_double(const char *s, double lo, double hi, double *out);

// Prints "spearlabel CMD: msg" and a pointer to --help on stderr; returns SL_EXIT_USAGE.
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
