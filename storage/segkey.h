// storage/segkey.h — the dataset key of a piece of an audio file.
//
// A whole file's row is keyed by its manifest id. A piece of a file (a
// segment of a long recording) is keyed by the file's id plus the piece:
//
//     <source>@SSSSS.sss-EEEEE.eee        e.g. book/ch01.flac@00012.340-00041.020
//
// SSSSS.sss and EEEEE.eee are the start and end in seconds of the piece in
// the source file, from 16 kHz sample offsets (SEG_KEY_HZ): seconds =
// samples / 16000, truncated (floor) to the millisecond, printed with exactly
// 5 integer digits (zero-padded) and 3 decimals. So keys of one file sort by
// start time in LMDB's byte order, the same piece always has the same key,
// and pieces that start on different milliseconds have different keys. Files
// longer than 99999.999 s (about 27.8 hours) cannot be keyed and are refused.
// The exact sample bounds are in the row itself (storage/row.h, v2); the key
// only names the piece.
//
// A file id may itself contain '@' (or even look like a suffix in its
// middle): only the exact 20-byte pattern `@DDDDD.DDD-DDDDD.DDD` at the very
// end of a key makes it a segment key, and the source is everything before
// that last '@'. A whole file whose own id ends in that pattern is therefore
// read as a segment of the file named by its prefix; the manifest reader is
// the place to refuse such ids.
//
// Pure functions, thread-safe, no allocation.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define SEG_KEY_HZ 16000
#define SEG_KEY_SUFFIX_BYTES 20                  // "@SSSSS.sss-EEEEE.eee"
#define SEG_KEY_MAX_MS 99999999ull                // 99999.999 s
// First sample offset whose millisecond no longer fits: 100000 s * 16000.
#define SEG_KEY_LIMIT_SAMPLES ((SEG_KEY_MAX_MS + 1) * (SEG_KEY_HZ / 1000))

// Writes "<source>@SSSSS.sss-EEEEE.eee" and a NUL into out[0..cap); returns
// the key length (source_len + 20). Returns 0 (out untouched) when
// source_len is 0, end <= start (sample offsets), end >= SEG_KEY_LIMIT_SAMPLES
// (past 99999.999 s), or cap < key length + 1. source need not be
// NUL-terminated; it may contain any bytes, '@' included.
size_t seg_key_format(const char *source, size_t source_len, uint64_t start, uint64_t end,
                      char *out, size_t cap);

// 1 when key[0..key_len) ends in a well-formed `@SSSSS.sss-EEEEE.eee` suffix
// (digits exactly where the pattern has D, EEEEE.eee >= SSSSS.sss) after at
// least one byte of source; *source_len (may be NULL) = the length before
// that '@'. 0 otherwise: a whole-file key (*source_len untouched).
int seg_key_split(const char *key, size_t key_len, size_t *source_len);

// seg_key_split that also returns the suffix's bounds in milliseconds (either
// pointer may be NULL). A row's exact bounds [start, end) in samples agree
// with its key when start / 16 == *start_ms and end / 16 == *end_ms.
int seg_key_parse(const char *key, size_t key_len, size_t *source_len, uint64_t *start_ms,
                  uint64_t *end_ms);
