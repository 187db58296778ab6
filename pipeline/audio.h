// pipeline/audio.h — decode one audio file to mono float PCM at the encoder's rate.
//
// First stage of the worker picture: audio file -> audio_read_file (or
// audio_read_memory) -> HuBERT or MFCC features.
//   * Decoding: anything libsndfile reads (WAV in all sample formats, FLAC,
//     Ogg/Vorbis, Opus, MP3 when the library has it), any rate, any channel count.
//   * Samples are what sf_read_float() returns (normalised floats: 16-bit PCM
//     gives int16 / 32768 exactly; float files are passed through as stored).
//   * Mixdown: mean of the channels per frame (as fairseq does); a mono file is
//     passed through untouched, so 16-bit 16 kHz mono input is bit-identical to
//     samples / 32768.
//   * Resampling: soxr, SOXR_HQ, only when the file's rate differs from target_hz,
//     through audio_stream.h (the one reader of the job: run, tokens, features and
//     km-fit): a file of N frames gives exactly round(N * target_hz / file_hz) samples,
//     its tail included. (Before options fingerprint "resample=2" (cli/job_flags.c)
//     this used soxr_oneshot with round(N * ratio) output slots, which stops short for
//     many lengths, e.g. 120,361 frames at 48 kHz gave 39,636 samples, not 40,120.)
//     A file of at most 60 s is one soxr run; longer ones (max_seconds > 60) are
//     resampled in audio_stream's fixed 60 s blocks.
//   * Limits: max_seconds is checked from the header before anything is
//     allocated ("too long"); fewer than min_samples output samples is "too
//     short" (default 400 = the receptive field of HuBERT's conv stack, i.e.
//     the shortest input that yields one frame).
//
// Errors never crash or exit: every failure is a negative sl_code with a
// message naming the file and libsndfile's or soxr's own words.
//   SL_EIO      cannot open or read (missing file, libsndfile open failure)
//   SL_EFORMAT  not audio libsndfile knows, too short, too long, bad params,
//               a NaN or infinite sample (damaged float file)
//   SL_ECORRUPT fewer frames than the header promises (truncated file)
//   SL_ENOMEM   allocation failed
//
// Thread-safety: one audio_reader per thread. libsndfile reports open failures
// through a process-wide buffer that this module copies right away; two
// threads failing to open at the same instant may see each other's text.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct audio_params {
    int target_hz;      // output rate (HuBERT: 16000)
    float max_seconds;  // longest accepted input, from the header (> 0)
    size_t min_samples; // shortest accepted output in samples (>= 1)
} audio_params;

// {16000, 60.0f, 400}
audio_params audio_default_params(void);

typedef struct audio_reader audio_reader; // opaque; owns grown sample buffers

// On failure returns a negative sl_code, fills *err, leaves *out == NULL.
int audio_reader_new(audio_reader **out, audio_params p, sl_err *err);
void audio_reader_free(audio_reader *r); // NULL is fine

// What was decoded. pcm is lent: valid until the next read on r or audio_reader_free.
typedef struct audio_result {
    const float *pcm;   // n_samples mono samples at target_hz
    size_t n_samples;
    float duration_s;   // duration of the input (file frames / file rate)
    int file_hz;        // the file's own rate
    int file_channels;  // the file's channel count
    int file_format;    // libsndfile's SF_FORMAT_* value
} audio_result;

// Decodes the file at path.
int audio_read_file(audio_reader *r, const char *path, audio_result *res, sl_err *err);

// A piece of the file at path: output samples [start, end) at target_hz, read with
// audio_stream's seek (bit for bit the samples audio_read_file would give there, memory
// bounded by the piece). The limits apply to the piece: longer than max_seconds is
// "too long" (checked before anything is read), shorter than min_samples "too short".
// A piece may end up to AUDIO_PIECE_SLACK samples past the file's last sample (seconds
// rounded to samples); it then holds the samples up to the end. Ending further out is
// SL_EFORMAT "piece S-E s (samples a-b at 16000 Hz) ends past the end of the file
// (N samples, T s)". start < 0 or end <= start is SL_EINVAL. duration_s = the piece's
// samples / target_hz.
#define AUDIO_PIECE_SLACK 1
int audio_read_range(audio_reader *r, const char *path, int64_t start, int64_t end,
                     audio_result *res, sl_err *err);

// Decodes an in-memory file image (libsndfile virtual I/O; bytes are not
// copied and need only live for the call). name is used in messages.
int audio_read_memory(audio_reader *r, const void *bytes, size_t n_bytes, const char *name,
                      audio_result *res, sl_err *err);
