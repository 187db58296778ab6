// pipeline/pipeline.h — one work unit: audio files -> semantic ids -> text ids.
//
// pl_run() is what a worker does with a unit: each file goes through the
// token front half (pipeline/tokens.h: decode, HuBERT layer, k-means) alone
// (HuBERT's group norm makes padding change results), then all utterances
// that produced ids are back-translated together in one batched decode
// (pipeline/beam.h). A batch row decodes exactly as the row alone, so a row
// never depends on its unit. Each utterance ends as a result or as a failure
// with its stage and message; one bad file never fails the unit.
//
// Quality flags travel with each result:
//   PL_FLAG_MAXLEN  decoding reached the maximum length without EOS;
//   PL_FLAG_LOOP    the text ends in a loop: its last 12 or more ids are one
//                   n-gram (1 <= n <= 4) repeated at least 3 times — what a
//                   decoder stuck in a repetition produces (see pl_text_loops).
// Model (pl) is opened once per process; pl_run is single-threaded (OpenBLAS
// threads inside) and allocates nothing per utterance in the steady state.
// No MPI, no LMDB.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/stage.h"
#include "pipeline/audio.h"
#include "pipeline/beam.h"
#include "pipeline/segment.h"
#include "pipeline/tokens.h"

// The values are the stored row flags (storage/row.h REC_FLAG_*; worker/exec.c asserts it).
enum { PL_FLAG_MAXLEN = 1u, PL_FLAG_LOOP = 2u, PL_FLAG_SEED_LAYOUT = 4u };

typedef struct pl_params {
    tok_features features;  // TOK_FEAT_HUBERT (default) or TOK_FEAT_MFCC (no hubert_dir)
    int dedup;              // collapse consecutive repeated semantic ids (tokens.h)
    const char *hubert_dir; // HF-style HuBERT directory
    int layer;              // HuBERT layer (0 = encoder input)
    int final_norm;         // apply encoder.layer_norm to an intermediate pre-LN layer
    const char *kmeans;     // centroids (.npy or .safetensors)
    const char *s2t;        // SPEAR-TTS speech->text safetensors
    audio_params audio;
    beam_params beam;       // max_len 0 = 256
    s2t_kv_type cross_kv;   // the decoder's cross K/V storage (s2t.h; S2T_KV_F32). F16
                            //   changes rows: it is in fp/options (cli/job_flags.c)
    int max_batch;          // utterances per pl_run call
    int seed_layout;        // rows as the seed writes them: speech EOS and text EOS included
    int null_pipeline;      // bench/tests: synthetic results from the name, no models
    int text_only;          // regenerate: no HuBERT / k-means; pl_run_ids only
    int max_src_ids;        // semantic ids per utterance the decoder holds (0: from
                            //   audio.max_seconds at the features' rate, 50 or 100 ids/s)
    int pool;               // sources decoding at once in the pl_pool_* calls (0: max_batch);
                            //   never changes a result (decoding is batch-invariant)
    seg_params seg;         // the worker's cutting of items longer than seg.max_seconds
                            //   (worker/exec.h; pl itself never cuts: pl_run refuses a
                            //   file longer than audio.max_seconds as "too long")
    int vad_json;           // the worker cuts at the corpus's voice_activity (vad_json.h)
} pl_params;

pl_params pl_default_params(void);

typedef struct pl_result {
    int ok;
    const int32_t *semantic; // lent until the next pl_run
    size_t n_semantic;
    const int32_t *text;
    size_t n_text;
    float duration_s;
    float score;
    uint64_t start, end; // the row's audio in its source file: 16 kHz sample offsets [start, end)
    unsigned flags;          // PL_FLAG_*
    sl_stage stage;          // !ok: where it failed (SL_STAGE_AUDIO .. SL_STAGE_TEXT)
    sl_err err;              // !ok: why
} pl_result;

// Per-stage seconds and counts accumulated by pl_run.
typedef struct pl_timers {
    double audio;    // decode + resample
    double features; // HuBERT
    double tokens;   // k-means
    double text;     // speech->text decoding
    size_t utts, ok;
    double audio_s;
    double dec_steps;  // decoder steps run
    double dec_rows;   // rows (hypotheses) those steps decoded: dec_rows / dec_steps = batch height
} pl_timers;

typedef struct pl pl;

// Opens every model once. Refuses k-means with more clusters than the
// speech->text model has semantic ids.
int pl_open(pl **out, const pl_params *p, sl_err *err);
void pl_close(pl *x); // NULL is fine
// A piece of a file: samples [start, end) at the encoder's rate; end == 0 = the whole file.
typedef struct pl_range {
    int64_t start, end;
} pl_range;

// paths[i] is opened; names[i] only appears in messages and seeds the null pipeline.
// ranges (NULL = every file whole): ranges[i] names the piece of paths[i] to label, read
// alone (pipeline/audio.h audio_read_range) and processed as its own utterance.
// A result's start/end are the samples it covers in its file at the pipeline's rate
// (16 kHz): a whole file 0 and the samples the token stage read (the null pipeline:
// 16000, its 1 s), a piece its range.
int pl_run(pl *x, const char *const *paths, const pl_range *ranges, const char *const *names,
           size_t n, pl_result *res, pl_timers *t, sl_err *err);
// The back half alone (regenerate): sem[i] holds n_sem[i] stored semantic ids (no
// speech EOS) of utterance i, dur[i] its duration; results as pl_run, with start and
// end 0: the caller knows the stored row's bounds.
int pl_run_ids(pl *x, const int32_t *const *sem, const size_t *n_sem, const float *dur,
               const char *const *names, size_t n, pl_result *res, pl_timers *t, sl_err *err);
// --- Continuous decoding (the worker's scheduler, worker/exec.h) ---------------
// The same results as pl_run / pl_run_ids, bit for bit, with decoding shared
// across units: up to pl_pool_cap() utterances decode together (beam.h's
// pool), each joining as soon as its front half is done and a slot is free,
// leaving when it is done. Not mixed with pl_run on one pl without a
// pl_pool_begin after it (pl_run uses the same decoder).
int pl_pool_begin(pl *x, sl_err *err); // empties the pool
int pl_pool_cap(const pl *x);  // p.pool, or p.max_batch
int pl_pool_free(const pl *x); // utterances that can join now
int pl_pool_live(const pl *x); // utterances decoding
// The front half of one file, then it joins the pool: *slot >= 0 names it
// until pl_pool_take returns it. *slot = -1: the outcome is already final in
// *res (a failure with its stage; the null pipeline's synthetic row), lent
// until the next pl_pool_* call. Needs a free slot (SL_EINVAL otherwise).
// range: the piece of the file (as pl_run's ranges; NULL = the whole file).
int pl_pool_add_file(pl *x, const char *path, const pl_range *range, const char *name,
                     pl_result *res, int *slot, pl_timers *t, sl_err *err);
// As pl_pool_add_file for samples the caller already read: pcm[0..n) at the pipeline's
// rate, the range [range->start, range->end) of the file (n = end - start), read from an
// audio_stream of path (so the same bits as a range read; path names it in messages).
// The worker's long items: the cutting pass's samples, not read a second time.
int pl_pool_add_pcm(pl *x, const float *pcm, const pl_range *range, const char *path,
                    const char *name, pl_result *res, int *slot, pl_timers *t, sl_err *err);
// As pl_pool_add_file for stored semantic ids (regenerate; pl_run_ids).
int pl_pool_add_ids(pl *x, const int32_t *sem, size_t n_sem, float dur, const char *name,
                    pl_result *res, int *slot, pl_timers *t, sl_err *err);
// One decoder step of every utterance in the pool.
int pl_pool_step(pl *x, pl_timers *t, sl_err *err);
// A finished utterance: 1 with its *slot and *res (lent until the next
// pl_pool_add_* or pl_pool_begin), freeing the slot; 0 when none is waiting.
int pl_pool_take(pl *x, int *slot, pl_result *res, pl_timers *t);

// 1 when ids[0..n) ends in a loop as PL_FLAG_LOOP describes.
int pl_text_loops(const int32_t *ids, size_t n);
