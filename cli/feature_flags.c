// cli/feature_flags.c — see feature_flags.h.
#include "cli/feature_flags.h"

#include <string.h>

#include "cli/commands.h"
#include "pipeline/ops.h"

const struct option FEATURE_FLAG_OPTIONS[] = {
    {"hubert", required_argument, 0, FF_HUBERT},   {"layer", required_argument, 0, FF_LAYER},
    {"final-norm", no_argument, 0, FF_FINAL_NORM}, {"features", required_argument, 0, FF_FEATURES},
    {"mfcc", no_argument, 0, FF_MFCC},             {"max-seconds", required_argument, 0, FF_MAXSEC},
    {"threads", required_argument, 0, FF_THREADS}, {0, 0, 0, 0}};

void feature_flags_init(feature_flags *f)
{
    memset(f, 0, sizeof *f);
    f->tp = tok_default_params();
    f->tp.layer = -1;
}

int feature_flags_parse(feature_flags *f, int opt, const char *arg, const char *cmd)
{
    long v;
    double d;
    switch (opt) {
    case FF_HUBERT: f->tp.hubert_dir = arg; return 0;
    case FF_FINAL_NORM: f->tp.final_norm = 1; return 0;
    case FF_MFCC: f->tp.features = TOK_FEAT_MFCC; return 0;
    case FF_LAYER:
        if (cli_parse_long(arg, 0, 1000, &v))
            return cli_usage_error(cmd, "--layer must be an integer >= 0, got '%s'", arg);
        f->tp.layer = (int)v;
        return 0;
    case FF_FEATURES:
        if (strcmp(arg, "mfcc") && strcmp(arg, "hubert"))
            return cli_usage_error(cmd, "--features wants hubert or mfcc, got '%s'", arg);
        f->tp.features = strcmp(arg, "mfcc") ? TOK_FEAT_HUBERT : TOK_FEAT_MFCC;
        return 0;
    case FF_MAXSEC:
        if (cli_parse_double(arg, 0.01, 36000, &d))
            return cli_usage_error(cmd, "--max-seconds must be a positive number, got '%s'", arg);
        f->tp.audio.max_seconds = (float)d;
        return 0;
    case FF_THREADS:
        if (cli_parse_long(arg, 1, 1024, &v))
            return cli_usage_error(cmd, "--threads must be an integer 1..1024, got '%s'", arg);
        f->threads = (int)v;
        return 0;
    }
    return cli_usage_error(cmd, "internal: option %d is not a feature flag", opt);
}

int feature_flags_finish(feature_flags *f, const char *cmd)
{
    if (f->tp.features == TOK_FEAT_MFCC) {
        if (f->tp.hubert_dir || f->tp.layer >= 0 || f->tp.final_norm)
            return cli_usage_error(cmd, "--features mfcc takes no --hubert, --layer or "
                                   "--final-norm");
    } else {
        if (!f->tp.hubert_dir)
            return cli_usage_error(cmd, "--hubert DIR is required");
        if (f->tp.layer < 0)
            return cli_usage_error(cmd, "--layer L is required");
    }
    ops_set_threads(ops_threads_default(f->threads));
    return 0;
}
