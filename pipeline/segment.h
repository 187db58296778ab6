// pipeline/segment.h — cut long 16 kHz audio into segments of at most max_seconds at
// pauses, from samples arriving in blocks; and join a corpus's VAD chunks into such
// segments.
//
// Where it sits: audio_stream_read (blocks) -> seg_push -> seg_next (one segment at a
// time) -> the caller tokenises that sample range as if it were its own file.
//
// Why our own detector: Debian 12 has no libfvad (WebRTC's VAD as a C library); the
// WebRTC code it does ship (libwebrtc-audio-processing) is a C++ AudioProcessing
// module whose voice detector adapts over the whole stream (not local, see below) and
// still leaves the cutting to us. So this is a small energy rule, every step below.
//
// The rule. Audio is seen as 10 ms frames (160 samples) counted from the current cut;
// a frame's level is 10 log10(mean of its squared samples + 1e-10) dB. To place the cut
// that ends the segment starting at cut c, only the frames of the window
// [c, c + max + min + 1 s) are used (fewer at the end of the audio):
//   1. If at most max_seconds of audio remain, they are the last segment (SEG_END).
//   2. Local level: hi = the 95th and lo = the 10th percentile of the window's frame
//      levels. A frame is quiet when its level is below lo + (hi - lo) / 4 and the
//      window spans at least pause_db (hi - lo >= pause_db: a tone or steady noise has
//      no pauses), or when it is below silence_dbfs whatever the window.
//   3. A cut may fall at a frame boundary in [c + min, c + max], and no later than
//      min_seconds before the end of the audio (so no piece is ever shorter than
//      min_seconds: nothing is left to merge; only audio shorter than min_seconds as
//      a whole is one shorter segment).
//   4. SEG_CUT_PAUSE: among the runs of quiet frames at least min_pause_seconds long,
//      the one whose cut is latest (segments as long as possible); the cut is the
//      run's middle, moved inside the allowed range if needed, but always strictly
//      inside the run.
//   5. SEG_CUT_GAP (no such pause): the longest run of quiet frames (ties: the later)
//      with a boundary in the second half of the allowed range, [c + e/2, c + e] when
//      the range ends at c + e; the cut is its middle, moved into that half if needed
//      (the run's edges count): a gap between words beats a cut inside one.
//   6. SEG_CUT_HARD (no quiet frame there at all): the end of the allowed range, i.e.
//      c + max_seconds, or min_seconds before the end of the audio near it.
// A continuous tone of T seconds is therefore cut at max, 2 max, ... and its last
// segment is the rest (moved earlier so that it is at least min_seconds).
//
// Silence: a segment whose every frame is below silence_dbfs holds no speech (-60
// dBFS is inaudible); with drop_silent it is not returned (the cut still advances).
// Nothing else is dropped: segments tile the audio, leading and trailing silence
// included, so speech is never lost.
//
// Locality (the restart property): the cut after c depends only on the samples from c
// to the window's end and on the params; never on audio before c, on how samples
// were split into seg_push calls, on when seg_next is called, or on whether
// seg_finish was called before the window was full. So a cutter opened at any cut c
// (seg_open(..., start = c)) and fed the samples from c on yields exactly the
// segments that follow c in an uninterrupted run (tests/unit/test_segment.c restarts
// at every cut of a long recording). With pipeline/audio_stream.h, which reads from
// any sample bit for bit, a job can resume a file at its last committed cut.
//
// Memory: one double per 10 ms frame since the current cut (the caller decides how
// often to call seg_next; at least one segment is decided per window of
// max + min + 1 s, 32 s at the defaults, so a caller that holds the samples from the
// last cut on holds at most that much audio).
//
// Errors: SL_EINVAL (bad params, naming the field; a NaN/Inf sample; VAD chunks out
// of order, naming the chunk), SL_ENOMEM. Thread-safety: one cutter per thread.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SEG_RATE 16000     // samples per second the segmenter works at
#define SEG_FRAME 160      // 10 ms

typedef struct seg_params {
    float max_seconds;       // longest segment (30); >= 2 * min_seconds
    float min_seconds;       // shortest piece a cut may leave (1)
    float min_pause_seconds; // shortest quiet run taken as a pause (0.2)
    float pause_db;          // least spread hi - lo for a window to have pauses (12 dB)
    float silence_dbfs;      // a frame below this is quiet in any window (-60 dBFS)
    int drop_silent;         // 1: segments entirely below silence_dbfs are not returned
} seg_params;

// {30, 1, 0.2, 12, -60, 1}. Seconds are taken to the nearest 10 ms frame.
seg_params seg_default_params(void);

// How a segment's end was chosen (SEG_VAD*: seg_join_chunks).
enum {
    SEG_END = 1,       // the end of the audio
    SEG_CUT_PAUSE = 2, // inside a pause of at least min_pause_seconds
    SEG_CUT_GAP = 3,   // inside a shorter quiet run
    SEG_CUT_HARD = 4,  // no quiet frame: at max_seconds
    SEG_VAD = 5,       // joined VAD chunks
    SEG_VAD_LONG = 6,  // one VAD chunk longer than max_seconds: cut it with a seg_cutter
};

typedef struct seg_span {
    int64_t start, end; // [start, end) in samples at 16 kHz, from the start of the file
    int how;            // SEG_*
    int silent;         // every frame below silence_dbfs (only seen with drop_silent 0)
} seg_span;

typedef struct seg_cutter seg_cutter; // opaque

// A cutter whose first segment starts at sample `start` (0, or a cut of an earlier
// run); the first sample pushed is sample `start`. Returns a negative sl_code and
// fills *err on bad params (leaving *out NULL).
int seg_open(seg_cutter **out, seg_params p, int64_t start, sl_err *err);

// The next n samples (16 kHz mono). They are not kept; only their frame levels are.
int seg_push(seg_cutter *c, const float *x, size_t n, sl_err *err);

// No more samples: the rest of the audio becomes the last segments.
void seg_finish(seg_cutter *c);

// 1 and *out = the next segment when it is decided; 0 when more samples are needed (or,
// after seg_finish, when every segment has been returned: seg_done then says so).
int seg_next(seg_cutter *c, seg_span *out);

int seg_done(const seg_cutter *c);

// The current cut: where the next segment (returned or dropped) starts; every sample
// before it belongs to segments already decided. A restart point.
int64_t seg_pos(const seg_cutter *c);

void seg_close(seg_cutter *c); // NULL is fine

// A VAD chunk, LibriLight's voice_activity [start, end] in seconds.
typedef struct seg_chunk {
    double start, end;
} seg_chunk;

// Joins consecutive chunks into segments of at most max_seconds: a segment runs from
// its first chunk's start to its last chunk's end (the pauses between its chunks
// kept), and takes the next chunk while that keeps it within max_seconds (greedy, so
// a short segment can never merge with a neighbour without exceeding max_seconds; it
// is kept alone: it holds speech the VAD found). A chunk longer than max_seconds is
// returned alone as SEG_VAD_LONG: cut it with a seg_cutter opened at its start and fed
// exactly its samples. Bounds are round(seconds * 16000); with n_samples > 0 (the
// file's length at 16 kHz) chunks are clipped to it and chunks starting at or past
// it are dropped; zero-length chunks are skipped. Chunks must be finite, start >= 0,
// end >= start, each starting at or after the previous end: otherwise SL_EINVAL naming
// the chunk (index from 0) and its values. out must have room for n spans (at most one
// per chunk); *n_out = spans written.
int seg_join_chunks(const seg_chunk *chunks, size_t n, int64_t n_samples, seg_params p,
                    seg_span *out, size_t *n_out, sl_err *err);
