// storage/quality.h — the quality signals of a dataset row and the filters on
// them, computed from the stored header alone (no ids, no re-decoding), so every
// dataset ever written has them. This is the one C definition of the formulas;
// python/spearlabel_dataset.py (`quality`, `QualityFilter`) repeats them and
// tests/integration/test_dataset.py checks the two agree bit for bit.
// Users: `spearlabel export` (filters, --quality), `spearlabel stat` (percentiles).
// Meaning and defaults: docs/QUALITY.md.
//
// Formulas, in double precision from the stored f32 fields:
//   eos_scored      = 0 if REC_FLAG_MAXLEN else 1   (the beam's score sums the EOS's
//                     log-prob when one was reached: pipeline/beam.h)
//   n_text_tokens   = n_text, less the text EOS a seed-layout row stores after its
//                     text (REC_FLAG_SEED_EOS and eos_scored)
//   n_source        = rec_row_n_source(h) (semantic ids less a seed-layout speech EOS)
//   n_scored        = n_text_tokens + eos_scored
//   score_per_token = score / max(n_scored, 1)
//   text_per_second = n_text_tokens / duration_s, 0 when duration_s is not > 0
//   semantic_per_text = n_source / max(n_text_tokens, 1)
//   flags: REC_Q_MAXLEN and REC_Q_LOOP copy the stored bits; REC_Q_RATE_HIGH when
//   text_per_second > max_rate, REC_Q_RATE_LOW when text_per_second < min_rate.
// (In --beam-mode seed the stored score also counts tokens generated after the
// EOS, which the row does not keep: there score_per_token is slightly more
// negative than a per-token mean.)
//
// Pure functions, thread-safe, no allocation.
#pragma once
#include <stdint.h>

#include "storage/row.h"

// Quality flags: bits 1 and 2 are the stored row flags of the same meaning.
enum {
    REC_Q_MAXLEN = REC_FLAG_MAXLEN, // decoding reached the maximum length without EOS
    REC_Q_LOOP = REC_FLAG_LOOP,     // the text ends in a loop
    REC_Q_RATE_HIGH = 1u << 3,      // more text tokens per second than speech holds
    REC_Q_RATE_LOW = 1u << 4,       // fewer (also: empty text, or no duration)
    REC_Q_ALL = REC_Q_MAXLEN | REC_Q_LOOP | REC_Q_RATE_HIGH | REC_Q_RATE_LOW,
    // Not a flag: rec_filter_check's reason for a score below the threshold.
    REC_DROP_SCORE = 1u << 5
};

// Bounds of plausible text rates (text tokens per second) behind the rate flags.
typedef struct rec_quality_params {
    double min_rate; // 4 (characters; BPE: about 1). 0 = never REC_Q_RATE_LOW
    double max_rate; // 30 (characters; BPE: about 8). HUGE_VAL = never REC_Q_RATE_HIGH
} rec_quality_params;

#define REC_Q_DEFAULT_MIN_RATE 4.0
#define REC_Q_DEFAULT_MAX_RATE 30.0
#define REC_Q_DEFAULT_MIN_SCORE_PER_TOKEN (-0.2)

rec_quality_params rec_quality_default_params(void); // {4, 30}

typedef struct rec_quality {
    uint32_t n_text_tokens;   // text ids without a stored EOS
    uint32_t n_source;        // semantic ids without a stored EOS
    uint32_t n_scored;        // tokens the score sums: n_text_tokens + eos_scored
    double score_per_token;   // nats per token, <= 0 for a real row
    double text_per_second;   // text tokens per second of audio
    double semantic_per_text; // semantic ids per text token
    unsigned flags;           // REC_Q_*
} rec_quality;

// The signals of a decoded row header (rec_row_decode) under the rate bounds p.
void rec_quality_of(const rec_header *h, rec_quality_params p, rec_quality *q);

// What a reader keeps. A row is dropped when its score per token is below
// min_score_per_token, or when it has a flag in drop_flags (rates use q's bounds).
typedef struct rec_filter {
    double min_score_per_token; // -HUGE_VAL = off
    unsigned drop_flags;        // REC_Q_* bits that drop a row; 0 = none
    rec_quality_params q;       // bounds of the rate flags
} rec_filter;

// Keeps every row: {-HUGE_VAL, 0, rec_quality_default_params()}.
rec_filter rec_filter_none(void);
// The recommended filter: score per token >= -0.2 and no quality flag, rates in [4, 30].
rec_filter rec_filter_default(void);
// 0 keeps the row; otherwise why it is dropped: REC_DROP_SCORE (a score per token
// below the threshold, or not a number while the threshold is on) | (q->flags &
// drop_flags). q comes from rec_quality_of(h, f->q, q).
unsigned rec_filter_check(const rec_filter *f, const rec_quality *q);
