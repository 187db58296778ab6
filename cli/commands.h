// cli/commands.h — the sub-commands of `spearlabel`. Each takes the argv that
// follows its name (argv[0] = the sub-command) and returns an exit code.
#pragma once

// Exit codes scripts can rely on.
enum {
    SL_EXIT_OK = 0,          // done
    SL_EXIT_FAIL = 1,        // runtime error (message on stderr)
    SL_EXIT_USAGE = 2,       // bad flags or arguments
    SL_EXIT_INTERRUPTED = 3, // stopped by a signal; state is consistent, re-run to resume
};

int cmd_stat(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_tokens(int argc, char **argv);
int cmd_decode(int argc, char **argv);

// Prints "spearlabel CMD: msg" and a pointer to --help on stderr; returns SL_EXIT_USAGE.
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
