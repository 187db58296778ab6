// pipeline/mfcc.h — Kaldi MFCC + deltas: the features of HuBERT's first iteration.
//
// Second stage of the worker picture when a job runs on MFCC instead of HuBERT:
// audio_read_file -> mfcc_compute -> km_assign. What fairseq's
// examples/hubert/simple_kmeans/dump_mfcc_feature.py computes:
//   torchaudio.compliance.kaldi.mfcc(x, sample_frequency=16000, use_energy=False)
//   then torchaudio.functional.compute_deltas (window 5, replicate padding) twice,
//   concatenated [mfcc, delta, delta-delta] -> 39 values per frame.
// With torchaudio's defaults: 16 kHz, 25 ms frames (400 samples) every 10 ms
// (160), snip_edges (T = 1 + (n - 400) / 160, no frame for n < 400), no dither,
// per-frame DC removal, pre-emphasis 0.97 (first sample against itself), povey
// window (Hann^0.85), zero-padded to 512, power spectrum, 23 triangular mel bins
// 20 Hz .. 8 kHz (mel = 1127 ln(1 + f/700)), log floored at FLT_EPSILON, DCT-II
// (orthonormal, Kaldi's C0 scale sqrt(1/23)), 13 cepstra, lifter 22.
// Samples are floats as audio.h returns them (int16 / 32768), like soundfile.read.
//
// Arithmetic is float like torchaudio's (same operation order per frame); the
// FFT is FFTW3's single-precision real transform (fftwf). Window, mel weights,
// DCT and lifter tables are computed in double and rounded once.
//
// Threads: mfcc_state_new / mfcc_state_free call FFTW's planner, which is not
// thread-safe: create and free states from one thread (ranks are
// single-threaded). mfcc_compute on distinct states may run concurrently.
// Errors: SL_EFORMAT (fewer than MFCC_MIN_SAMPLES samples), SL_ENOMEM.
#pragma once
#include <stddef.h>

#include "common/err.h"

enum {
    MFCC_SAMPLE_HZ = 16000,
    MFCC_FRAME_LEN = 400,   // 25 ms
    MFCC_FRAME_SHIFT = 160, // 10 ms: 100 frames per second
    MFCC_N_CEPS = 13,
    MFCC_DIM = 39,          // 13 cepstra, 13 deltas, 13 delta-deltas
    MFCC_MIN_SAMPLES = MFCC_FRAME_LEN
};

typedef struct mfcc_state mfcc_state; // tables, FFT plan, grown output buffer

int mfcc_state_new(mfcc_state **out, sl_err *err);
void mfcc_state_free(mfcc_state *s); // NULL is fine

// Frames for n samples with snip_edges: 0 when n < 400.
size_t mfcc_n_frames(size_t n_samples);

// Features of pcm[0..n) (mono, 16 kHz): *feat is [*n_frames, MFCC_DIM] row-major,
// lent until the next call on s or mfcc_state_free.
int mfcc_compute(mfcc_state *s, const float *pcm, size_t n, const float **feat,
                 size_t *n_frames, sl_err *err);
