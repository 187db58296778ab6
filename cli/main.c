// cli/main.c — `spearlabel`: dispatches sub-commands. Each sub-command lives
// in cli/cmd_<name>.c and parses its own flags.
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "common/log.h"
#include "pipeline/ops.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command COMMANDS[] = {
    {"run", cmd_run, "label a corpus: audio -> semantic ids -> text ids -> dataset (MPI)"},
    {"regenerate", cmd_regenerate, "re-label a dataset's stored semantic ids with a new s2t model"},
    {"diff", cmd_diff, "compare the text of two datasets (did the new model help?)"},
    {"stat", cmd_stat, "counts, fingerprints and run history of a dataset"},
    {"export", cmd_export, "stream rows or errors as JSON lines or TSV"},
    {"verify", cmd_verify, "decode every record and report damage"},
    {"features", cmd_features, "HuBERT layer features of one audio file (.npy)"},
    {"tokens", cmd_tokens, "semantic token ids (HuBERT + k-means) of audio files"},
    {"km-fit", cmd_kmfit, "k-means centroids from a corpus sample (HuBERT or MFCC features, MPI)"},
    {"decode", cmd_decode, "semantic ids -> text ids with the SPEAR-TTS speech->text model"},
};
#define N_COMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: spearlabel COMMAND [ARGS...]\n\n"
               "Turns untranscribed speech into a SPEAR-TTS back-translation corpus.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f, "\n'spearlabel COMMAND --help' describes one command.\n"
               "Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 interrupted (resumable).\n");
}

int main(int argc, char **argv)
{
    sl_log_level_from_env();
    sl_err err;
    if (ops_rows_kernel_from_env(&err)) { // a forced kernel must run, or nothing does
        fprintf(stderr, "spearlabel: %s\n", err.msg);
        return SL_EXIT_USAGE;
    }
    if (argc < 2) {
        usage(stderr);
        return SL_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return SL_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("spearlabel %s\n", SL_VERSION);
        return SL_EXIT_OK;
    }
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], COMMANDS[i].name))
            return COMMANDS[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "spearlabel: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return SL_EXIT_USAGE;
}
