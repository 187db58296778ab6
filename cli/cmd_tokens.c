// cli/cmd_tokens.c — `spearlabel tokens`: semantic token ids of audio files.
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
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
    "  --hubert DIR        Hugging Face style model directory (config.json, model.safetensors)\n"
    "  --layer L           0 .. num_hidden_layers\n"
    "  --final-norm        apply encoder.layer_norm first (pre-LN models; no-op for post-LN)\n"
    "  --features KIND     hubert (default) or mfcc (then no --hubert, --layer)\n"
    "  --kmeans KM         centroids [K, H]: .npy, or .safetensors with one 2-D tensor\n"
    "  --dedup             collapse consecutive repeated ids (textlesslib --deduplicate)\n"
    "  --out ids.npy       write int64 ids of the single AUDIO file instead of printing\n"
    "  --max-seconds S     refuse longer audio (default 60)\n"
    "  --threads N         OpenBLAS threads (default SLURM_CPUS_PER_TASK, else 1)\n"
    "  -h, --help          this text\n";

// Strict integer parse of a flag value; returns 0 on success.
static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

int cmd_tokens(int argc, char **argv)
{
    static const struct option opts[] = {{"hubert", required_argument, 0, 'm'},
                                         {"layer", required_argument, 0, 'l'},
                                         {"final-norm", no_argument, 0, 'f'},
                                         {"kmeans", required_argument, 0, 'k'},
                                         {"out", required_argument, 0, 'o'},
                                         {"max-seconds", required_argument, 0, 's'},
                                         {"threads", required_argument, 0, 't'},
                                         {"features", required_argument, 0, 'F'},
                                         {"dedup", no_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL, *km = NULL, *out = NULL;
    int c, layer = -1, final_norm = 0, threads = 0, mfcc = 0, dedup = 0;
    audio_params ap = audio_default_params();
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(HELP, stdout); return SL_EXIT_OK;
        case 'm': dir = optarg; break;
        case 'l':
            if (parse_int(optarg, 0, 1000, &layer))
                return cli_usage_error("tokens", "--layer must be an integer >= 0");
            break;
        case 'f': final_norm = 1; break;
        case 'F':
            if (strcmp(optarg, "mfcc") && strcmp(optarg, "hubert"))
                return cli_usage_error("tokens", "--features wants hubert or mfcc, got '%s'",
                                       optarg);
            mfcc = !strcmp(optarg, "mfcc");
            break;
        case 'd': dedup = 1; break;
        case 'k': km = optarg; break;
        case 'o': out = optarg; break;
        case 's': {
            char *end;
            ap.max_seconds = strtof(optarg, &end);
            if (*end || !(ap.max_seconds > 0.0f))
                return cli_usage_error("tokens", "--max-seconds must be a positive number");
            break;
        }
        case 't':
            if (parse_int(optarg, 1, 1024, &threads))
                return cli_usage_error("tokens", "--threads must be an integer 1..1024");
            break;
        default: return cli_usage_error("tokens", "unknown option");
        }
    }
    if (mfcc && (dir || layer >= 0 || final_norm))
        return cli_usage_error("tokens", "--features mfcc takes no --hubert, --layer or "
                               "--final-norm");
    if (!mfcc && !dir)
        return cli_usage_error("tokens", "--hubert DIR is required");
    if (!mfcc && layer < 0)
        return cli_usage_error("tokens", "--layer L is required");
    if (!km)
        return cli_usage_error("tokens", "--kmeans KM is required");
    if (argc - optind < 1)
        return cli_usage_error("tokens", "expected at least one AUDIO file");
    if (out && argc - optind != 1)
        return cli_usage_error("tokens", "--out takes exactly one AUDIO file");
    ops_set_threads(ops_threads_default(threads));

    sl_err err;
    tok_pipeline *p = NULL;
    tok_state *s = NULL;
    tok_params tp = tok_default_params();
    tp.features = mfcc ? TOK_FEAT_MFCC : TOK_FEAT_HUBERT;
    tp.hubert_dir = dir;
    tp.layer = layer;
    tp.final_norm = final_norm;
    tp.kmeans = km;
    tp.dedup = dedup;
    tp.audio = ap;
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
                    tok_stage_name(tok_failed_stage(s)), err.msg);
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
