// storage/segkey.h — the key of a row that is a piece of a file (a manifest segment).
//
//   <source>@SSSSS.sss-EEEEE.eee
// source = the id the whole file would have; S and E = the piece's first and end sample
// at 16 kHz as seconds (samples / 16000), 5 zero-padded integer digits and 3 decimals
// truncated to the millisecond: samples [24000, 48000) of "a/b.wav" are
// "a/b.wav@00001.500-00003.000". Keys sort by source, then by start (fixed width).
// (A local copy of the interface another change defines; replaced by that one on merge.)
// No state; thread-safe.
#pragma once
#include <stddef.h>
#include <stdint.h>

#define SEG_KEY_SUFFIX_LEN 20 // "@SSSSS.sss-EEEEE.eee"

// Writes the key, NUL-terminated, to out[0..cap). Returns its length (without the NUL),
// or 0 when cap is too small, a bound is above 99999.999 s, or end <= start.
size_t seg_key_format(const char *source, size_t source_len, uint64_t start, uint64_t end,
                      char *out, size_t cap);

// 1 when key[0..key_len) ends in a well-formed suffix (then *source_len = the length
// before its '@'), else 0.
int seg_key_split(const char *key, size_t key_len, size_t *source_len);
