// cli/decode_flags.h — the decoding flags shared by `decode`, `run` and
// `regenerate`: one parser, one help text, one canonical form for the
// dataset fingerprint.
//   --greedy | --beam N [--beam-mode seed|default] [--lenpen A]
//   | --sample [--top-k K] [--temperature T] [--seed S]
//   --max-len N  --max-len-a A --max-len-b B  --min-len N  --cross-kv f32|f16
#pragma once
#include <getopt.h>
#include <stddef.h>

#include "pipeline/beam.h"

enum { DF_FIRST = 1000, DF_GREEDY = DF_FIRST, DF_BEAM, DF_MODE, DF_LENPEN, DF_SAMPLE, DF_TOPK,
       DF_TEMP, DF_SEED, DF_MAXLEN, DF_LENA, DF_LENB, DF_MINLEN, DF_CROSSKV, DF_LAST };

typedef struct decode_flags {
    beam_params p;   // max_len defaults to 256
    s2t_kv_type cross_kv; // --cross-kv (s2t.h; S2T_KV_F32): the state's, not beam_params'
    int n_methods, beam_opts, sample_opts;
} decode_flags;

// The getopt_long entries (terminated by a zero entry) to copy into a command's table.
extern const struct option DECODE_FLAG_OPTIONS[];
#define DECODE_FLAG_N_OPTIONS 13

#define DECODE_FLAGS_HELP                                                                    \
    "  --greedy            argmax decoding (the seed's generate at temperature -> 0)\n"       \
    "  --beam N            beam search of width N (default: beam 4, default mode)\n"          \
    "  --beam-mode M       default: finished hypotheses leave the beam, early stop;\n"        \
    "                      seed: spear-tts-pytorch 0.4.8's beam search exactly\n"             \
    "  --lenpen A          default mode: rank finished hypotheses by sum / n^A (default 0)\n" \
    "  --sample            top-k / temperature sampling\n"                                    \
    "  --top-k K           keep the K best logits (0 = all; default 0)\n"                     \
    "  --temperature T     sampling temperature (default 1)\n"                                \
    "  --seed S            sampling seed (default 0); per row from (S, the row's ids)\n"      \
    "  --max-len N         at most N text tokens, EOS included (default 256)\n"               \
    "  --max-len-a A       also at most floor(A * source length + B) tokens (A > 0)\n"        \
    "  --max-len-b B\n"                                                                       \
    "  --min-len N         no EOS before N tokens\n"                                         \
    "  --cross-kv T        f32 (default) or f16: hold the speech->text cross-attention\n"    \
    "                      keys/values in float16: half their memory (the largest part\n"   \
    "                      of a worker's), faster steps, but scores move by ~1e-4 and a\n"  \
    "                      row may change (docs/MEMORY.md); part of the options\n"     \
    "                      fingerprint, so a resume must use the same\n"

void decode_flags_init(decode_flags *f);
// opt in [DF_FIRST, DF_LAST): parses arg into f; returns 0, or SL_EXIT_USAGE after
// printing the problem for command cmd.
int decode_flags_parse(decode_flags *f, int opt, const char *arg, const char *cmd);
// Cross-flag checks after parsing; 0 or SL_EXIT_USAGE.
int decode_flags_finish(decode_flags *f, const char *cmd);
// "method=beam;beam=4;mode=default;..." — every field of p that changes the output, for
// the options fingerprint (cli/job_flags.h job_options_canonical).
void decode_flags_canonical(const beam_params *p, char *buf, size_t cap);
