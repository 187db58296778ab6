// pipeline/tokens.h — audio file -> semantic token ids, the front half of a worker.
//
//   tok_pipeline (shared, immutable): features (HuBERT model + layer, or Kaldi
//                                      MFCC, mfcc.h) + k-means centroids
//   tok_state    (one per thread):    audio reader, feature and k-means scratch
//
// Per utterance: audio_read_file -> hubert_forward(layer) or mfcc_compute ->
// km_assign [-> dedup: consecutive repeats collapsed]. A failure names the
// stage it happened in (tok_failed_stage, a common/stage.h value), so a job can
// write an error record ("audio: too long", "features: ...", "tokens: ...").
// No MPI, no LMDB. Buffers are sized at tok_state_new for max_seconds of audio
// and reused; nothing is allocated per utterance in the steady state.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/stage.h"
#include "pipeline/audio.h"

typedef struct tok_pipeline tok_pipeline;
typedef struct tok_state tok_state;

typedef enum tok_features {
    TOK_FEAT_HUBERT = 0, // HuBERT layer output, 50 frames per second
    TOK_FEAT_MFCC = 1    // 39 Kaldi MFCC + deltas (mfcc.h), 100 frames per second
} tok_features;

const char *tok_features_name(tok_features f); // "hubert" "mfcc"

typedef struct tok_params {
    tok_features features;
    const char *hubert_dir; // TOK_FEAT_HUBERT: HF-style directory (see hubert.h)
    int layer;              // TOK_FEAT_HUBERT: 0..n_layers
    int final_norm;         // TOK_FEAT_HUBERT: as in hubert.h
    const char *kmeans;     // .npy or .safetensors [K, D]; NULL: features only (tok_features_run)
    int dedup;              // collapse consecutive repeated ids (textlesslib --deduplicate)
    audio_params audio;     // min_samples is raised to what the features need
} tok_params;

// {TOK_FEAT_HUBERT, NULL, 9, 0, NULL, 0, audio_default_params()}
tok_params tok_default_params(void);

// Opens what p names. Errors as tok_pipeline_open; SL_EINVAL for missing fields.
int tok_pipeline_open_params(tok_pipeline **out, const tok_params *p, sl_err *err);

// hubert_dir: HF-style directory (see hubert.h); layer 0..n_layers; final_norm as in
// hubert.h; kmeans_path: .npy or .safetensors (its only 2-D tensor) with [K, hidden]
// centroids; ap.min_samples is raised to the model's receptive field if lower.
int tok_pipeline_open(tok_pipeline **out, const char *hubert_dir, int layer, int final_norm,
                      const char *kmeans_path, audio_params ap, sl_err *err);
void tok_pipeline_close(tok_pipeline *p); // NULL is fine
size_t tok_pipeline_k(const tok_pipeline *p);  // 0 when opened without centroids
size_t tok_pipeline_dim(const tok_pipeline *p); // feature dimension (hidden size or 39)
int tok_pipeline_frame_hz(const tok_pipeline *p); // feature frames per second: 50 or 100

int tok_state_new(tok_state **out, const tok_pipeline *p, sl_err *err);
void tok_state_free(tok_state *s); // NULL is fine

// Tokenises the audio file at path. *ids (n entries, values 0..K-1) is lent from s
// until the next call on s; *duration_s is the input's duration. On failure: negative
// sl_code, *ids NULL, *n 0, err filled, tok_failed_stage(s) tells the stage.
int tok_run(const tok_pipeline *p, tok_state *s, const char *path, const int32_t **ids,
            size_t *n, float *duration_s, sl_err *err);
// The same for the piece [start, end) of the file in target_hz samples (audio.h
// audio_read_range: the limits apply to the piece, *duration_s is the piece's);
// end == 0 = the whole file (tok_run).
int tok_run_range(const tok_pipeline *p, tok_state *s, const char *path, int64_t start,
                  int64_t end, const int32_t **ids, size_t *n, float *duration_s, sl_err *err);
// The same for samples already read: pcm[0..n) at target_hz (a segment the caller cut
// from an audio_stream of the file, whose samples are those audio_read_range gives for
// the same range, bit for bit). The audio stage checks only what a range read checks
// after reading: n >= min_samples ("too short", naming name); *duration_s = n / target_hz.
int tok_run_pcm(const tok_pipeline *p, tok_state *s, const float *pcm, size_t n,
                const char *name, const int32_t **ids, size_t *n_ids, float *duration_s,
                sl_err *err);
// Same for an in-memory file image (name for messages).
// With dedup set, *ids holds runs collapsed to one id (n counts the collapsed ids).
int tok_run_memory(const tok_pipeline *p, tok_state *s, const void *bytes, size_t n_bytes,
                   const char *name, const int32_t **ids, size_t *n, float *duration_s,
                   sl_err *err);
// Features only (k-means not needed): *feat [*n_frames, *dim] lent from s until the
// next call on s. Failures report SL_STAGE_AUDIO or SL_STAGE_FEATURES.
int tok_features_run(const tok_pipeline *p, tok_state *s, const char *path, const float **feat,
                     size_t *n_frames, size_t *dim, float *duration_s, sl_err *err);
// The same for the piece [start, end) of the file (end == 0: the whole file), as tok_run_range.
int tok_features_run_range(const tok_pipeline *p, tok_state *s, const char *path, int64_t start,
                           int64_t end, const float **feat, size_t *n_frames, size_t *dim,
                           float *duration_s, sl_err *err);
// 1-D dedup in place: collapses runs of equal ids; returns the new length.
size_t tok_dedup(int32_t *ids, size_t n);
// The stage of the last failure on s: SL_STAGE_AUDIO, SL_STAGE_FEATURES or
// SL_STAGE_TOKENS; SL_STAGE_NONE after a success and before the first run.
sl_stage tok_failed_stage(const tok_state *s);
// Wall-clock seconds (CLOCK_MONOTONIC) of each stage of the last tok_run /
// tok_run_memory on s: decode + resample, HuBERT forward, k-means assignment
// (including the ids buffer). A stage the run did not reach (it failed earlier)
// reports 0; all are 0 before the first run. Any pointer may be NULL.
void tok_last_timings(const tok_state *s, double *audio_s, double *features_s, double *tokens_s);
// Samples at the audio's target rate the last run on s decoded (0 when it failed in
// the audio stage or before the first run).
size_t tok_last_samples(const tok_state *s);
