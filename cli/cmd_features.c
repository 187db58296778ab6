// cli/cmd_features.c — `spearlabel features`: HuBERT layer or MFCC features of one audio file.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/npy.h"
#include "pipeline/audio.h"
#include "pipeline/hubert.h"
#include "pipeline/ops.h"
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
    "  --mfcc              MFCC features instead of HuBERT (no --hubert, --layer)\n"
    "  --features KIND     hubert (default) or mfcc\n"
    "  --hubert DIR        Hugging Face style model directory (config.json, model.safetensors)\n"
    "  --layer L           0 .. num_hidden_layers\n"
    "  --final-norm        apply encoder.layer_norm to the output (pre-LN models; for the\n"
    "                      last layer this is HF last_hidden_state; no-op for post-LN)\n"
    "  --out F.npy         output file (written atomically)\n"
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

static int write_mfcc(const char *audio, audio_params ap, const char *out)
{
    sl_err err;
    tok_params tp = tok_default_params();
    tp.features = TOK_FEAT_MFCC;
    tp.audio = ap;
    tok_pipeline *p = NULL;
    tok_state *s = NULL;
    const float *feat;
    size_t T, D;
    int code = SL_EXIT_FAIL;
    if (tok_pipeline_open_params(&p, &tp, &err) || tok_state_new(&s, p, &err) ||
        tok_features_run(p, s, audio, &feat, &T, &D, NULL, &err))
        goto done;
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

int cmd_features(int argc, char **argv)
{
    static const struct option opts[] = {{"hubert", required_argument, 0, 'm'},
                                         {"layer", required_argument, 0, 'l'},
                                         {"final-norm", no_argument, 0, 'f'},
                                         {"out", required_argument, 0, 'o'},
                                         {"max-seconds", required_argument, 0, 's'},
                                         {"threads", required_argument, 0, 't'},
                                         {"mfcc", no_argument, 0, 'M'},
                                         {"features", required_argument, 0, 'F'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL, *out = NULL;
    int c, layer = -1, final_norm = 0, threads = 0, mfcc = 0;
    audio_params ap = audio_default_params();
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(HELP, stdout); return SL_EXIT_OK;
        case 'm': dir = optarg; break;
        case 'l':
            if (parse_int(optarg, 0, 1000, &layer))
                return cli_usage_error("features", "--layer must be an integer >= 0");
            break;
        case 'f': final_norm = 1; break;
        case 'M': mfcc = 1; break;
        case 'F':
            if (strcmp(optarg, "mfcc") && strcmp(optarg, "hubert"))
                return cli_usage_error("features", "--features wants hubert or mfcc, got '%s'",
                                       optarg);
            mfcc = !strcmp(optarg, "mfcc");
            break;
        case 'o': out = optarg; break;
        case 's': {
            char *end;
            ap.max_seconds = strtof(optarg, &end);
            if (*end || !(ap.max_seconds > 0.0f))
                return cli_usage_error("features", "--max-seconds must be a positive number");
            break;
        }
        case 't':
            if (parse_int(optarg, 1, 1024, &threads))
                return cli_usage_error("features", "--threads must be an integer 1..1024");
            break;
        default: return cli_usage_error("features", "unknown option");
        }
    }
    if (mfcc && (dir || layer >= 0 || final_norm))
        return cli_usage_error("features", "--mfcc takes no --hubert, --layer or --final-norm");
    if (!mfcc && !dir)
        return cli_usage_error("features", "--hubert DIR is required");
    if (!mfcc && layer < 0)
        return cli_usage_error("features", "--layer L is required");
    if (!out)
        return cli_usage_error("features", "--out F.npy is required");
    if (argc - optind != 1)
        return cli_usage_error("features", "expected exactly one AUDIO file");
    const char *audio = argv[optind];
    ops_set_threads(ops_threads_default(threads));

    sl_err err;
    if (mfcc)
        return write_mfcc(audio, ap, out);
    hubert_model *m = NULL;
    hubert_state *s = NULL;
    audio_reader *r = NULL;
    int code = SL_EXIT_FAIL;
    if (hubert_open(&m, dir, &err))
        goto done;
    if (layer > hubert_get_config(m)->n_layers) {
        code = cli_usage_error("features", "--layer %d: the model has %d layers", layer,
                               hubert_get_config(m)->n_layers);
        goto out;
    }
    if (ap.min_samples < hubert_min_samples(m))
        ap.min_samples = hubert_min_samples(m);
    audio_result a;
    const float *feat;
    size_t T, D;
    if (audio_reader_new(&r, ap, &err) || hubert_state_new(&s, m, &err) ||
        audio_read_file(r, audio, &a, &err) ||
        hubert_forward(s, a.pcm, a.n_samples, layer, final_norm, &feat, &T, &D, &err))
        goto done;
    size_t shape[2] = {T, D};
    if (sl_npy_write(out, SL_NPY_F32, 2, shape, feat, &err))
        goto done;
    code = SL_EXIT_OK;
done:
    if (code != SL_EXIT_OK)
        fprintf(stderr, "spearlabel features: %s\n", err.msg);
out:
    audio_reader_free(r);
    hubert_state_free(s);
    hubert_close(m);
    return code;
}
