// cli/cmd_features.c — `spearlabel features`: HuBERT layer or MFCC features of one audio file.
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/feature_flags.h"
#include "common/npy.h"
#include "pipeline/tokens.h"

static const char HELP[] =
    "usage: spearlabel features --hubert DIR --layer L [--final-norm] AUDIO --out F.npy\n"
    "       spearlabel features --mfcc AUDIO --out F.npy\n\n"
    "Decodes AUDIO (anything libsndfile reads; mixed down to mono, resampled to\n"
    "16 kHz with soxr) and writes the HuBERT features of layer L as float32 [T, H].\n"
    "Layer 0 is the encoder input; layer k the output of transformer layer k.\n"
    "With --mfcc (same as --features mfcc): Kaldi MFCC as torchaudio.compliance.kaldi\n"
    "computes them (use_energy=False) plus deltas and delta-deltas, float32 [T, 39]\n"
    "at 100 frames per second (what fairseq's dump_mfcc_feature.py writes).\n\n"
    "Options:\n"
    "  --out F.npy         output file (written atomically)\n"
    FEATURE_FLAGS_HELP
    "  -h, --help          this text\n";

int cmd_features(int argc, char **argv)
{
    enum { O_OUT = 256 };
    static struct option opts[24];
    static const struct option own[] = {{"out", required_argument, 0, O_OUT},
                                        {"help", no_argument, 0, 'h'},
                                        {0, 0, 0, 0}};
    cli_join_options(opts, sizeof opts / sizeof opts[0], own, FEATURE_FLAG_OPTIONS);
    const char *out = NULL;
    int c;
    feature_flags ff;
    feature_flags_init(&ff);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= FF_FIRST && c < FF_LAST) {
            if (feature_flags_parse(&ff, c, optarg, "features"))
                return SL_EXIT_USAGE;
            continue;
        }
        switch (c) {
        case 'h': fputs(HELP, stdout); return SL_EXIT_OK;
        case O_OUT: out = optarg; break;
        default: return cli_usage_error("features", "unknown option or missing value");
        }
    }
    if (feature_flags_finish(&ff, "features"))
        return SL_EXIT_USAGE;
    if (!out)
        return cli_usage_error("features", "--out F.npy is required");
    if (argc - optind != 1)
        return cli_usage_error("features", "expected exactly one AUDIO file");
    const char *audio = argv[optind];

    sl_err err;
    tok_pipeline *p = NULL;
    tok_state *s = NULL;
    const float *feat;
    size_t T, D;
    int code = SL_EXIT_FAIL;
    if (tok_pipeline_open_params(&p, &ff.tp, &err) || tok_state_new(&s, p, &err) ||
        tok_features_run(p, s, audio, &feat, &T, &D, NULL, &err)) {
        if (err.code == SL_EINVAL) // e.g. a layer the model does not have
            code = SL_EXIT_USAGE;
        goto done;
    }
    size_t shape[2] = {T, D};
    if (sl_npy_write(out, SL_NPY_F32, 2, shape, feat, &err))
        goto done;
    code = SL_EXIT_OK;
done:
    if (code != SL_EXIT_OK)
        fprintf(stderr, "spearlabel features: %s\n", err.msg);
    tok_state_free(s);
    tok_pipeline_close(p);
    return code;
}
