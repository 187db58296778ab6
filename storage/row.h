// storage/row.h — the versioned byte layout of one dataset row and one error
// record. The same bytes travel from worker to coordinator over MPI and sit in
// LMDB, so wire and disk share this one codec and its version number.
//
// Row value (all little-endian):
//   offset 0  char[4] magic "SPLR"
//          4  u16     version (REC_VERSION)
//          6  u16     flags (REC_FLAG_*)
//          8  u32     n_semantic
//         12  u32     n_text
//         16  f32     duration in seconds of the audio the row came from
//         20  f32     score: sum of log-probabilities of the chosen hypothesis
//         24  i32     semantic ids [n_semantic], then -1, then text ids [n_text]
// so numpy.frombuffer(v, '<i4', offset=24) split at the first -1 gives the
// two id lists (the seed's `<audio> <delimiter> <text>` row). Ids are >= 0.
//
// Error value:
//   offset 0  char[4] magic "SPLE"
//          4  u16     version, 6 u16 stage (sl_stage), 8 i32 code (sl_code),
//         12  u32     attempts (how many times the utterance was tried),
//         16  u32     message length, 20 message bytes (UTF-8, no NUL)
//
// Values returned by LMDB are not aligned: every reader here copies with
// memcpy, never casts. Functions are pure and thread-safe.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/stage.h"

#define REC_VERSION 1
#define REC_HEADER_BYTES 24
#define REC_ERR_HEADER_BYTES 20
#define REC_DELIM (-1)

enum {
    REC_FLAG_MAXLEN = 1u << 0,   // decoding reached the maximum length without EOS
    REC_FLAG_LOOP = 1u << 1,     // the text repeats an n-gram in a loop (see coordinator docs)
    REC_FLAG_SEED_EOS = 1u << 2, // ids include the EOS ids (the seed's exact layout)
    REC_FLAG_KNOWN = (1u << 3) - 1
};

// Error records store sl_stage (common/stage.h) as a u16, and datasets already
// written hold these numbers: they may never change.
_Static_assert(SL_STAGE_INPUT == 0, "stored stage number");
_Static_assert(SL_STAGE_AUDIO == 1, "stored stage number");
_Static_assert(SL_STAGE_FEATURES == 2, "stored stage number");
_Static_assert(SL_STAGE_TOKENS == 3, "stored stage number");
_Static_assert(SL_STAGE_TEXT == 4, "stored stage number");
_Static_assert(SL_STAGE_CRASH == 5, "stored stage number");
_Static_assert(SL_STAGE_INHERITED == 6, "stored stage number");

typedef struct rec_header {
    uint16_t version;
    uint16_t flags;
    uint32_t n_semantic;
    uint32_t n_text;
    float duration_s;
    float score;
} rec_header;

typedef struct rec_error {
    uint16_t version;
    uint16_t stage;         // sl_stage, 0 .. SL_STAGE_COUNT-1
    int32_t code;           // sl_code
    uint32_t attempts;
    uint32_t msg_len;
    const char *msg;        // points into the decoded value (not NUL terminated)
} rec_error;

// Bytes of a row holding n_semantic + n_text ids; 0 if that overflows.
size_t rec_row_bytes(size_t n_semantic, size_t n_text);
// Writes the row into out[0..cap); returns bytes written (rec_row_bytes) or a
// negative code (SL_EINVAL: negative id, cap too small).
long rec_row_encode(const rec_header *h, const int32_t *semantic, const int32_t *text, void *out,
                    size_t cap, sl_err *err);
// Validates v[0..n) completely (magic, version <= REC_VERSION, known flags,
// length = header counts, the delimiter, every id >= 0) and fills *h.
// SL_ECORRUPT with a precise message on any disagreement.
int rec_row_decode(const void *v, size_t n, rec_header *h, sl_err *err);
// Copies the ids of a decoded row (arrays sized by *h; either may be NULL).
void rec_row_ids(const void *v, const rec_header *h, int32_t *semantic, int32_t *text);
// The i-th int32 of the id body (semantic ids, delimiter, text ids).
int32_t rec_row_id_at(const void *v, size_t i);
// How many of a row's semantic ids are source ids, what a decoder takes back
// (regenerate): n_semantic, less the speech EOS that ends them in a seed-layout
// row (REC_FLAG_SEED_EOS). The source ids are the first rec_row_n_source(h).
uint32_t rec_row_n_source(const rec_header *h);

size_t rec_error_bytes(size_t msg_len);
// SL_EINVAL for a stage outside 0 .. SL_STAGE_COUNT-1 (SL_STAGE_NONE is not stored).
long rec_error_encode(sl_stage stage, int32_t code, uint32_t attempts, const char *msg,
                      void *out, size_t cap, sl_err *err);
int rec_error_decode(const void *v, size_t n, rec_error *e, sl_err *err);
