// pipeline/hubert.h — HuBERT layer features from 16 kHz mono float PCM.
//
// Second stage of the worker picture: audio_read_file -> hubert_forward -> km_assign.
//
// Model: a Hugging Face style directory, config.json + model.safetensors with
// transformers' HubertModel parameter names (an optional "hubert." prefix, as
// in HubertForCTC checkpoints, is accepted), so facebook/hubert-base-ls960 and
// facebook/hubert-large-ll60k load as downloaded. An optional
// preprocessor_config.json is read for do_normalize (per-utterance zero mean /
// unit variance of the waveform, eps 1e-7, as Wav2Vec2FeatureExtractor does) and
// sampling_rate (must be 16000). Supported: feat_extract_norm "group" and
// "layer", do_stable_layer_norm false (post-LN) and true (pre-LN), conv_bias,
// feat_proj_layer_norm, the weight-normed positional conv (weight_g/weight_v or
// parametrizations.weight.original0/1; effective weight computed once at open).
// Refused at open with a message naming config.json and the key: conv_pos_batch_norm
// true, activations other than "gelu", adapters, model types other than "hubert",
// fewer than 2 conv layers, a first conv block of more than 4096 channels or 64 taps.
//
// Semantics (golden MANIFEST): layer 0 = encoder input (HF hidden_states[0]:
// post-LN normed, pre-LN not), layer k = output of transformer layer k (the
// residual stream). final_norm applies encoder.layer_norm to the output of a
// pre-LN model (layer = last gives HF last_hidden_state); a post-LN model has
// no final norm, so the flag changes nothing there.
//
// Memory: the model is immutable after open and may be shared by any number of
// threads; weights stay in the page-cache map of model.safetensors, except
// re-laid-out conv / fused QKV / effective pos-conv weights (owned copies).
// Each thread has its own hubert_state: buffers grow to the longest input seen
// (or hubert_state_reserve) and are then reused; nothing is allocated per frame.
// The conv stack is streamed: conv 0 in chunks fed straight into conv 1, and each later
// block keeps a window of the rows the next one still reads, so no block's high-rate
// output exists in full (~11 MB of conv buffers at any length, not 150 MB at 30 s),
// with the bits of the unstreamed stack (products of 256 rows on a grid from row 0).
//
// Every matrix product goes through ops_matmul (OpenBLAS threads inside); the
// element-wise work between them (GELU, LayerNorm, softmax: ~4 % of a HuBERT-base
// forward) is pipeline/kernels.h, vectorised on the calling thread and rounding the
// same on every CPU vector width. Output bits are reproducible for a given OpenBLAS thread count;
// OpenBLAS itself rounds some products differently at another count (ulp-level).
// Errors: SL_EIO/SL_ENOTFOUND (files, tensors), SL_EFORMAT (config or shapes we
// do not support), SL_EINVAL (bad layer), SL_ENOMEM.
#pragma once
#include <stddef.h>

#include "common/err.h"

#define HUBERT_MAX_CONV 16

typedef struct hubert_config {
    int n_conv;                        // num_feat_extract_layers
    int conv_dim[HUBERT_MAX_CONV];     // output channels per conv block
    int conv_kernel[HUBERT_MAX_CONV];
    int conv_stride[HUBERT_MAX_CONV];
    int conv_bias;                     // 1: conv blocks have a bias
    int feat_norm_layer;               // 0: "group" (block 0 GroupNorm), 1: "layer" (LN every block)
    int stable_layer_norm;             // 0: post-LN, 1: pre-LN
    int feat_proj_layer_norm;          // 1: LayerNorm before the projection
    int hidden;                        // hidden_size
    int n_layers;                      // num_hidden_layers
    int n_heads;                       // num_attention_heads
    int ffn;                           // intermediate_size
    float ln_eps;                      // layer_norm_eps
    int pos_kernel;                    // num_conv_pos_embeddings
    int pos_groups;                    // num_conv_pos_embedding_groups
    int do_normalize;                  // from preprocessor_config.json (default 0)
} hubert_config;

typedef struct hubert_model hubert_model; // immutable, shareable
typedef struct hubert_state hubert_state; // per thread

// Loads dir/config.json and dir/model.safetensors (mmap). *out == NULL on failure.
int hubert_open(hubert_model **out, const char *dir, sl_err *err);
void hubert_close(hubert_model *m); // NULL is fine

const hubert_config *hubert_get_config(const hubert_model *m);
// Frames produced for n_samples of input (0 if too short for one frame).
size_t hubert_n_frames(const hubert_model *m, size_t n_samples);
// Fewest samples that yield one frame (the conv stack's receptive field; 400 for HuBERT).
size_t hubert_min_samples(const hubert_model *m);
// Multiply-adds x 2 of a forward pass to `layer` on n_samples (for benchmarks).
double hubert_flops(const hubert_model *m, size_t n_samples, int layer);

int hubert_state_new(hubert_state **out, const hubert_model *m, sl_err *err);
void hubert_state_free(hubert_state *s); // NULL is fine
// Grows the buffers for inputs up to max_samples now (optional; otherwise on demand).
int hubert_state_reserve(hubert_state *s, size_t max_samples, sl_err *err);

// Where the forward pass stops and what it returns.
typedef enum hubert_tap {
    HUBERT_TAP_CONV = 0,      // last conv block output (after its GELU), [T, conv_dim[last]]
    HUBERT_TAP_PROJECTED = 1, // feature projection output, [T, hidden]
    HUBERT_TAP_LAYER = 2      // layer `layer` (0 = encoder input), [T, hidden]
} hubert_tap;

// Runs the model on pcm[0..n) and returns a [*n_frames, *dim] row-major matrix
// lent from s (valid until the next call on s). layer in 0..n_layers (TAP_LAYER only).
int hubert_run(hubert_state *s, const float *pcm, size_t n, hubert_tap tap, int layer,
               int final_norm, const float **out, size_t *n_frames, size_t *dim, sl_err *err);

// hubert_run(s, pcm, n, HUBERT_TAP_LAYER, layer, final_norm, ...).
int hubert_forward(hubert_state *s, const float *pcm, size_t n, int layer, int final_norm,
                   const float **out, size_t *n_frames, size_t *dim, sl_err *err);
