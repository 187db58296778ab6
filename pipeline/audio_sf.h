// pipeline/audio_sf.h — libsndfile helpers shared by audio.c (whole files) and
// audio_stream.c (streams). Internal to pipeline/: not an API for other folders.
#pragma once
#include <sndfile.h>
#include <stddef.h>

#include "common/err.h"

// Fills *err for a failed sf_open(path): libsndfile's own words (copied at once from
// its process-wide buffer), or plainly "is a directory, not a file" / "empty file
// (0 bytes)", which libsndfile only calls "Format not recognised.". Returns SL_EIO.
int audio_sf_open_fail(const char *path, sl_err *err);

// libsndfile opens a WAV/AIFF whose data chunk runs past the end of the file and
// silently shortens it; its log then holds e.g. "data : 93072 (should be 956)".
// Returns that line (in buf) when the sound data chunk was cut short, else NULL.
const char *audio_sf_cut_chunk(SNDFILE *sf, char *buf, size_t cap);

// A file image in memory for libsndfile's virtual I/O (bytes are not copied; the
// struct and the bytes must outlive the SNDFILE).
typedef struct audio_sf_mem {
    const unsigned char *bytes;
    sf_count_t n, pos;
} audio_sf_mem;

// sf_open_virtual over m = bytes[0..n_bytes); NULL on failure (sf_strerror(NULL) says why).
SNDFILE *audio_sf_open_memory(audio_sf_mem *m, const void *bytes, size_t n_bytes,
                              SF_INFO *info);
