// pipeline/audio_stream.h — read an audio file of any length as 16 kHz mono float
// blocks, from any sample on, in memory that does not grow with the file.
//
// The long-recording side of the worker picture: file -> audio_stream_read (blocks)
// -> seg_push (pipeline/segment.h) -> one segment at a time -> HuBERT. audio.h reads
// a whole short file, or a piece of one, through a stream (the job's one reader):
//   * Decoding: anything libsndfile reads; samples are what sf_read_float() returns.
//   * Mixdown: mean of the channels per frame, summed in channel order (as audio.c);
//     a mono file is passed through untouched.
//   * Resampling (only when the file's rate differs from target_hz): soxr's stream
//     API, SOXR_HQ, float32, with the end-of-input flush, in a fixed grid of blocks
//     of block_seconds of output (see "Seeking" for why).
//
// Length: a stream yields exactly round(N * target_hz / file_hz) samples for a file
// of N frames (N itself when no resampling), the last ones carrying the end of the
// audio. (soxr_oneshot, which audio.c used before options "resample=2", stops short
// for many 44.1 / 48 kHz lengths, e.g. 120,361 frames at 48 kHz give 39,636 samples
// instead of 40,120; tests/unit/test_audio_stream.c checks the stream and
// audio_read_file over many rates and lengths.)
//
// Seeking: audio_stream_open(..., start, ...) yields exactly the samples that a
// stream opened at 0 yields from `start` on, bit for bit, for every start and rate:
//   * no resampling: sf_seek to the frame;
//   * resampling: output sample j belongs to block k = j / (block_seconds * target_hz).
//     Each block is resampled by a fresh soxr fed from a fixed warm-up before the
//     block (W = 0.1 s rounded up to a whole period of the two rates' phase pattern,
//     i.e. a multiple of target_hz / gcd(file_hz, target_hz) output samples) to W
//     past its end, then flushed; samples outside the block are discarded. A block's
//     samples are therefore a function of the file alone, whichever sample the
//     stream was opened at. A seek costs at most one block of decoding and
//     resampling (block_seconds + 2 W of audio).
//   * What this costs in exactness against one continuous soxr over the whole file
//     (measured, the test prints it): samples differ at float rounding level
//     (max |diff| ~2.4e-7 on a 0.3-amplitude signal), in every block after the
//     first, not only at block edges. A file no longer than one block (60 s at the
//     defaults) is one soxr run, identical to a continuous one; and wherever
//     soxr_oneshot (audio.c's former resampler) returned its full length it equals
//     that too, so rows of such files did not change when audio.c switched to the
//     stream; files it cut short gained their tail. (A fresh soxr started at an arbitrary sample
//     without warm-up differs from the continuous stream there: 1.8e-3 inside the
//     test sentence, up to 0.09 on a loud noisy tone; with a warm-up by float
//     rounding from there on: neither repeats a run exactly, which is why blocks
//     restart at fixed points. test_audio_stream pins both.)
//   * MPEG (MP3): frame counts are estimates and seeking is libsndfile's, so a start
//     is reached by decoding from the beginning and discarding (exact, slower).
//
// Memory: the stream holds one block of interleaved file frames (4096 frames), the
// mono samples the next warm-up needs (~2 W + 4096), soxr's state and at most one
// soxr call's output; nothing grows with the file's length or block_seconds.
//
// Errors never crash or exit: a negative sl_code with a message naming the file and
// libsndfile's or soxr's own words, the same vocabulary as audio.h:
//   SL_EIO      cannot open or read (missing file, directory, empty file)
//   SL_EFORMAT  not audio libsndfile knows, bad channel count / rate, a NaN or
//               infinite sample (named: "sample N (T s) is NaN"), soxr failures
//   SL_ECORRUPT fewer frames than the header promises ("truncated"), a data chunk cut
//               short, an Ogg stream with no end
//   SL_EINVAL   bad params, start past the end
//   SL_ENOMEM   allocation failed
// Truncation is found where the file ends: the samples before it have already been
// delivered when audio_stream_read reports it. After any error the stream only
// repeats that error.
//
// Thread-safety: one stream per thread; streams share nothing (libsndfile's open
// failure text is process-wide, as in audio.h).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct audio_stream_params {
    int target_hz;     // output rate (HuBERT: 16000)
    int block_seconds; // resampler block, in seconds of output (>= 1). Changes the
                       // samples at float rounding level: part of a dataset's options
} audio_stream_params;

// {16000, 60}: files up to 60 s (audio.c's default limit) are one block.
audio_stream_params audio_stream_default_params(void);

typedef struct audio_stream audio_stream; // opaque; owns the SNDFILE, soxr and buffers

typedef struct audio_stream_info {
    int file_hz;         // the file's own rate
    int file_channels;   // the file's channel count
    int file_format;     // libsndfile's SF_FORMAT_* value
    int64_t file_frames; // frames the header announces (for MPEG an estimate until the
                         // end is read, then the frames decoded)
    int64_t n_samples;   // samples the whole stream yields at target_hz (from
                         // file_frames: exact except for MPEG)
    double duration_s;   // file_frames / file_hz
    int64_t start;       // the sample the stream was opened at
} audio_stream_info;

// Opens path and positions the stream at output sample `start` (0 = the beginning).
// On failure returns a negative sl_code, fills *err, leaves *out == NULL. A start past
// n_samples is SL_EINVAL (for MPEG, found by the first read instead).
int audio_stream_open(audio_stream **out, const char *path, audio_stream_params p,
                      int64_t start, sl_err *err);

// The same over an in-memory file image bytes[0..n_bytes) (libsndfile virtual I/O; the
// bytes are not copied and must outlive the stream); name is used in messages. An empty
// or unreadable image is SL_EFORMAT (as audio_read_memory).
int audio_stream_open_memory(audio_stream **out, const void *bytes, size_t n_bytes,
                             const char *name, audio_stream_params p, int64_t start,
                             sl_err *err);

// Writes the next samples to caller-owned out[0..cap); *n = samples written. *n < cap
// only at the end of the stream, so *n == 0 (with cap > 0) means the end. The result
// does not depend on how the caller sizes cap.
int audio_stream_read(audio_stream *s, float *out, size_t cap, size_t *n, sl_err *err);

// Index of the next sample audio_stream_read returns (start + samples read so far).
int64_t audio_stream_tell(const audio_stream *s);

void audio_stream_get_info(const audio_stream *s, audio_stream_info *info);

void audio_stream_close(audio_stream *s); // NULL is fine
