// storage/row.h — the versioned byte layout of one dataset row and one error
// record. The same bytes travel from worker to coordinator over MPI and sit in
// LMDB, so wire and disk share this one codec and its version number.
//
// Row value, format version 2 (what rec_row_encode writes; all little-endian):
//   offset 0  char[4] magic "SPLR"
//          4  u16     version (2)
//          6  u16     flags (REC_FLAG_*)
//          8  u32     n_semantic
//         12  u32     n_text
//         16  f32     duration in seconds of the audio the row came from
//         20  f32     score: sum of log-probabilities of the chosen hypothesis
//         24  u64     start \ the row's audio in its source file: 16 kHz sample
//         32  u64     end   / offsets [start, end), start <= end
//         40  u32     source_len
//         44  i32     semantic ids [n_semantic], then -1, then text ids [n_text]
//   44 + 4 * (n_semantic + 1 + n_text): source id bytes [source_len]
// The source is the id of the file the audio was cut from (a manifest id:
// bytes, no NUL). source_len 0 means "the source is the row's key", which
// every whole-file row uses (start 0, end its length in 16 kHz samples); a
// segment row (key `<source>@SSSSS.sss-EEEEE.eee`, storage/segkey.h) stores
// the key's prefix here and its exact sample bounds above.
//
// Format version 1 (rows written before segments; still decoded): the same
// first 24 bytes with version 1, then the id body at offset 24 and nothing
// after it. Such a row has no bounds or source of its own: it decodes as
// source = key, start 0 and end = round(duration_s * 16000), derived from the
// f32 duration (0 when that is not a finite number in range). h.version tells
// a reader which it got.
//
// Finding the ids without this code (numpy): the id body starts at
// rec_row_ids_offset(): 24 for version 1, 44 for version 2, and holds
// n_semantic + 1 + n_text int32 (counts at offsets 8 and 12):
//   off = 24 if version == 1 else 44
//   ids = numpy.frombuffer(v, '<i4', count=n_sem + 1 + n_text, offset=off)
// split at the first -1 gives the two id lists (the seed's `<audio> <delimiter>
// <text>` row). Ids are >= 0.
//
// Error value (format version 1, unchanged by row version 2):
//   offset 0  char[4] magic "SPLE"
//          4  u16     version (REC_ERR_VERSION), 6 u16 stage (sl_stage), 8 i32 code (sl_code),
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

#define REC_VERSION 2          // rows rec_row_encode writes; 1 .. REC_VERSION decode
#define REC_HEADER_BYTES_V1 24
#define REC_HEADER_BYTES_V2 44
#define REC_ERR_VERSION 1      // error records
#define REC_HZ 16000           // the rate of start / end
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
    uint64_t start, end;    // 16 kHz sample offsets [start, end) in the source (v1: derived)
    const char *source;     // decode: points into the value; NULL when source_len is 0
    uint32_t source_len;    // 0: the source is the row's key (whole files, every v1 row)
} rec_header;

typedef struct rec_error {
    uint16_t version;
    uint16_t stage;         // sl_stage, 0 .. SL_STAGE_COUNT-1
    int32_t code;           // sl_code
    uint32_t attempts;
    uint32_t msg_len;
    const char *msg;        // points into the decoded value (not NUL terminated)
} rec_error;

// Bytes of a version-2 row holding n_semantic + n_text ids and a source of
// source_len bytes; 0 if that overflows.
size_t rec_row_bytes(size_t n_semantic, size_t n_text, size_t source_len);
// Writes h as a version-2 row (h->version is ignored) into out[0..cap);
// returns bytes written (rec_row_bytes) or a negative code (SL_EINVAL:
// negative id, unknown flag, end < start, a source with a NUL byte or NULL
// with source_len > 0, cap too small).
long rec_row_encode(const rec_header *h, const int32_t *semantic, const int32_t *text, void *out,
                    size_t cap, sl_err *err);
// Validates v[0..n) completely (magic, version 1 .. REC_VERSION, known flags,
// length = header counts (+ source_len), the delimiter, every id >= 0; v2:
// start <= end, no NUL in the source) and fills *h (v1: derived bounds, see
// above). SL_ECORRUPT with a precise message on any disagreement.
int rec_row_decode(const void *v, size_t n, rec_header *h, sl_err *err);
// Offset of the id body of a decoded row: REC_HEADER_BYTES_V1 or _V2.
size_t rec_row_ids_offset(const rec_header *h);
// Copies the ids of a decoded row (arrays sized by *h; either may be NULL).
void rec_row_ids(const void *v, const rec_header *h, int32_t *semantic, int32_t *text);
// The i-th int32 of the id body (semantic ids, delimiter, text ids) of a
// decoded row v (its version is read from v).
int32_t rec_row_id_at(const void *v, size_t i);
// The row's source id: h->source, or the key when the row stores none.
void rec_row_source(const rec_header *h, const char *key, size_t key_len, const char **src,
                    size_t *src_len);
// Whether a decoded row agrees with its key (what `verify` checks):
//   a segment key (segkey.h) needs a version-2 row whose source is the key's
//   prefix, end > start, and start / 16 and end / 16 equal to the key's
//   milliseconds;
//   a whole-file key needs source_len 0 and start 0.
// Version-1 rows are whole-file rows: a segment key on one is refused.
// SL_ECORRUPT naming the disagreement; SL_OK otherwise.
int rec_row_check_key(const rec_header *h, const char *key, size_t key_len, sl_err *err);
// How many of a row's semantic ids are source ids, what a decoder takes back
// (regenerate): n_semantic, less the speech EOS that ends them in a seed-layout
// row (REC_FLAG_SEED_EOS). The source ids are the first rec_row_n_source(h).
uint32_t rec_row_n_source(const rec_header *h);

size_t rec_error_bytes(size_t msg_len);
// SL_EINVAL for a stage outside 0 .. SL_STAGE_COUNT-1 (SL_STAGE_NONE is not stored).
long rec_error_encode(sl_stage stage, int32_t code, uint32_t attempts, const char *msg,
                      void *out, size_t cap, sl_err *err);
int rec_error_decode(const void *v, size_t n, rec_error *e, sl_err *err);
