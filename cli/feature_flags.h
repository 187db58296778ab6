// cli/feature_flags.h — the front-half flags shared by `features` and `tokens`:
// which features (HuBERT layer or MFCC), the audio limit and the BLAS threads,
// parsed once into a tok_params.
//   --hubert DIR --layer L [--final-norm] | --features mfcc (--mfcc)
//   --max-seconds S  --threads N
#pragma once
#include <getopt.h>

#include "pipeline/tokens.h"

enum { FF_FIRST = 2000, FF_HUBERT = FF_FIRST, FF_LAYER, FF_FINAL_NORM, FF_FEATURES, FF_MFCC,
       FF_MAXSEC, FF_THREADS, FF_LAST };

typedef struct feature_flags {
    tok_params tp;  // features, hubert_dir, layer (-1 until given), final_norm, audio
    int threads;    // 0 = default (SLURM_CPUS_PER_TASK, else 1)
} feature_flags;

// getopt_long entries (zero-terminated) to copy into a command's table.
extern const struct option FEATURE_FLAG_OPTIONS[];

#define FEATURE_FLAGS_HELP                                                                    \
    "  --hubert DIR        Hugging Face style model directory (config.json, model.safetensors)\n" \
    "  --layer L           0 .. num_hidden_layers (0 = encoder input)\n"                        \
    "  --final-norm        apply encoder.layer_norm to the output (pre-LN models; for the\n"    \
    "                      last layer this is HF last_hidden_state; no-op for post-LN)\n"       \
    "  --features KIND     hubert (default) or mfcc: 39 Kaldi MFCC + deltas at 100 frames/s\n"  \
    "                      (then no --hubert, --layer, --final-norm; --mfcc is the same)\n"     \
    "  --max-seconds S     refuse longer audio, checked before decoding (default 60)\n"        \
    "  --threads N         OpenBLAS threads (default SLURM_CPUS_PER_TASK, else 1)\n"

void feature_flags_init(feature_flags *f);
// opt in [FF_FIRST, FF_LAST): 0, or SL_EXIT_USAGE after printing the problem.
int feature_flags_parse(feature_flags *f, int opt, const char *arg, const char *cmd);
// Cross-flag checks (HuBERT needs --hubert and --layer; MFCC takes neither); then sets the
// OpenBLAS threads. 0 or SL_EXIT_USAGE.
int feature_flags_finish(feature_flags *f, const char *cmd);
