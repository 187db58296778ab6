// cli/cmd_tokens.c — `spearlabel tokens`: semantic token ids of audio files.
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/feature_flags.h"
#include "common/npy.h"
#include "pipeline/ops.h"
#include "pipeline/tokens.h"

static const char HELP[] =
    "usage: spearlabel tokens (--hubert DIR --layer L | --features mfcc) --kmeans KM.npy\n"
    "         [--dedup] AUDIO... [--out ids.npy]\n\n"
    "Semantic token ids: HuBERT layer L features (or 39 Kaldi MFCC + deltas at 100\n"
    "frames/s with --features mfcc) of each AUDIO file, each frame assigned to its\n"
    "nearest k-means centroid (ties: lower id). Prints one line per\n"
    "file, 'AUDIO<TAB>space-separated ids', or with --out (one file only) writes\n"
    "int64 [T]. A file that fails is reported on stderr with its stage (audio,\n"
    "features, tokens); the others are still processed, and the exit code is 1.\n\n"
    "Options:\n"
    "  --kmeans KM         centroids [K, H]: .npy, or .safetensors with one 2-D tensor\n"
    "  --dedup             collapse consecutive repeated ids (textlesslib --deduplicate)\n"
    "  --out ids.npy       write int64 ids of the single AUDIO file instead of printing\n"
    FEATURE_FLAGS_HELP
    "  -h, --help          this text\n";

int cmd_tokens(int argc, char **argv)
{
    enum { O_KMEANS = 256, O_OUT, O_DEDUP };
    static struct option opts[24];
    static const struct option own[] = {{"kmeans", required_argument, 0, O_KMEANS},
                                        {"out", required_argument, 0, O_OUT},
                                        {"dedup", no_argument, 0, O_DEDUP},
                                        {"help", no_argument, 0, 'h'},
                                        {0, 0, 0, 0}};
    cli_join_options(opts, sizeof opts / sizeof opts[0], own, FEATURE_FLAG_OPTIONS);
    const char *km = NULL, *out = NULL;
    int c, dedup = 0;
    feature_flags ff;
    feature_flags_init(&ff);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c >= FF_FIRST && c < FF_LAST) {
            if (feature_flags_parse(&ff, c, optarg, "tokens"))
                return SL_EXIT_USAGE;
            continue;
        }
        switch (c) {
        case 'h': fputs(HELP, stdout); return SL_EXIT_OK;
        case O_DEDUP: dedup = 1; break;
        case O_KMEANS: km = optarg; break;
        case O_OUT: out = optarg; break;
        default: return cli_usage_error("tokens", "unknown option or missing value");
        }
    }
    if (feature_flags_finish(&ff, "tokens"))
        return SL_EXIT_USAGE;
    if (!km)
        return cli_usage_error("tokens", "--kmeans KM is required");
    if (argc - optind < 1)
        return cli_usage_error("tokens", "expected at least one AUDIO file");
    if (out && argc - optind != 1)
        return cli_usage_error("tokens", "--out takes exactly one AUDIO file");

    sl_err err;
    tok_pipeline *p = NULL;
    tok_state *s = NULL;
    tok_params tp = ff.tp;
    tp.kmeans = km;
    tp.dedup = dedup;
    if (tok_pipeline_open_params(&p, &tp, &err) ||
        tok_state_new(&s, p, &err)) {
        fprintf(stderr, "spearlabel tokens: %s\n", err.msg);
        tok_pipeline_close(p);
        return err.code == SL_EINVAL ? SL_EXIT_USAGE : SL_EXIT_FAIL;
    }
    int failed = 0;
    int64_t *wide = NULL;
    for (int i = optind; i < argc; i++) {
        const int32_t *ids;
        size_t n;
        float dur;
        if (tok_run(p, s, argv[i], &ids, &n, &dur, &err)) {
            fprintf(stderr, "spearlabel tokens: %s failed (%s): %s\n", argv[i],
                    sl_stage_name(tok_failed_stage(s)), err.msg);
            failed++;
            continue;
        }
        if (out) {
            int64_t *w2 = realloc(wide, (n ? n : 1) * sizeof(int64_t));
            if (!w2) {
                fprintf(stderr, "spearlabel tokens: out of memory\n");
                failed++;
                break;
            }
            wide = w2;
            for (size_t t = 0; t < n; t++)
                wide[t] = ids[t];
            size_t shape[1] = {n};
            if (sl_npy_write(out, SL_NPY_I64, 1, shape, wide, &err)) {
                fprintf(stderr, "spearlabel tokens: %s\n", err.msg);
                failed++;
            }
            continue;
        }
        fputs(argv[i], stdout);
        putchar('\t');
        for (size_t t = 0; t < n; t++)
            printf(t ? " %d" : "%d", (int)ids[t]);
        putchar('\n');
    }
    free(wide);
    tok_state_free(s);
    tok_pipeline_close(p);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "spearlabel tokens: writing stdout failed\n");
        return SL_EXIT_FAIL;
    }
    return failed ? SL_EXIT_FAIL : SL_EXIT_OK;
}
