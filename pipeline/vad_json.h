// pipeline/vad_json.h — a corpus's own voice activity (LibriLight's layout) for
// `--vad-json`: beside `<dir>/<name>.flac` lies `<dir>/<name>.json`, a JSON object whose
// "voice_activity" is a list of [start, end] pairs in seconds (other keys: speaker,
// snr, book_meta, ... are ignored). The worker joins the chunks into segments with
// seg_join_chunks (pipeline/segment.h).
//
// Strict on purpose: a missing file, bad JSON, no "voice_activity", an element that is
// not a pair of numbers, a pair that is not finite with 0 <= start <= end, or pairs
// out of order (one starting before the previous end) is an error naming the .json and
// the problem (SL_EIO for a file that cannot be read, SL_EFORMAT otherwise); never a
// silent fallback to the built-in detector. An empty list is valid (no speech).
// jansson, as every JSON reader of the project. Thread-safe (no state).
#pragma once
#include <stddef.h>

#include "common/err.h"
#include "pipeline/segment.h"

// The .json beside audio_path: its extension (the part of the last path component from
// its last '.', when that is not the first character) replaced by ".json", or ".json"
// appended. Returns the length, or 0 when cap is too small (out then holds "").
size_t seg_vad_json_path(const char *audio_path, char *out, size_t cap);

// Reads json_path's voice_activity into *out (malloc'd, the caller frees; NULL when
// *n == 0). On failure *out is NULL and *n 0.
int seg_vad_json_read(const char *json_path, seg_chunk **out, size_t *n, sl_err *err);
