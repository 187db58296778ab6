// coordinator/protocol.h — the messages between rank 0 and the workers: the
// one owner of the wire format (library sl_protocol, which needs only common/).
//
// Every message is a flat byte string built and parsed here, nowhere else: MPI_BYTE
// messages whose tag says the kind. All integers are little-endian u32, doubles are
// IEEE-754 binary64 sent as little-endian u64 bit patterns; nothing with pointers.
//   worker -> 0  HELLO   empty                         ready; rank 0 then keeps up to
//                                                      PROTO_PREFETCH units in flight per worker
//   0 -> worker  WORK    u32 wid, u32 flags, u32 n, n x (u32 id_len, u32 path_len,
//                        id bytes, NUL, path bytes, NUL [, u64 start, u64 end
//                        [, u32 item_flags]])
//                        start/end only with PROTO_WORK_RANGES: the piece [start, end)
//                        of the file in 16 kHz samples, (0, 0) = the whole file;
//                        item_flags only with PROTO_WORK_ITEM_FLAGS (which needs RANGES):
//                        PROTO_ITEM_CONTINUE = a long item resumed at the cut `start`
//                        (end 0 = to the end of the file)
//   worker -> 0  RESULT  u32 wid, u32 n, n x (u8 kind, u32 key_len, u32 val_len, key, value)
//                        kind 0 = row, 1 = error: values are storage/row.h records,
//                        so wire and disk share one codec and one version number;
//                        kind 2 = mark: key = an item's id, value = u64 next, u8 done
//                        (where a segmented item resumes; done = every segment sent)
//   worker -> 0  PARTIAL as RESULT: records of a unit still being computed (the
//                        segments of a long item as they finish, each run followed by
//                        its item's mark); the unit stays in flight until its RESULT
//   0 -> worker  STOP    u32 status (0 = finished, 3 = interrupted)
//   worker -> 0  STATS   PROTO_N_STATS x f64 (stage timers and counts, see proto_stat)
//   worker -> 0  CRASH   u32 wid: sent from the worker's fatal-signal handler
// wid (work id) < n_units names a unit of the plan; wid >= n_units names the
// single manifest item wid - n_units, retried alone after a crash. The parsers
// check lengths and the ranges they can know (counts, kinds, flags, status); the
// coordinator checks a wid against its plan (coordinator/session.h).
//
// Every parser takes untrusted bytes: it never reads outside buf[0..n), and on
// malformed input returns SL_EFORMAT with a message naming the message kind and
// the problem. Parsed pointers point into buf and live as long as it.
// MPI-free: coordinator/ and worker/ do the sending. Thread-safety: none needed
// (no state); proto_crash_encode is async-signal-safe.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum proto_tag {
    PROTO_HELLO = 11,
    PROTO_WORK = 12,
    PROTO_RESULT = 13,
    PROTO_STOP = 14,
    PROTO_STATS = 15,
    PROTO_CRASH = 16,
    PROTO_PARTIAL = 17,
};

#define PROTO_PREFETCH 2        // units a worker holds: one computing, one queued
#define PROTO_WORK_ALONE 1u     // flags: a crash retry of a single item
#define PROTO_WORK_PAYLOAD 2u   // flags: items carry payload bytes (regenerate: stored rows)
#define PROTO_WORK_RANGES 4u    // flags: items carry u64 start, u64 end (manifest pieces);
                                //   never with PROTO_WORK_PAYLOAD
#define PROTO_WORK_ITEM_FLAGS 8u // flags: ranged items also carry u32 item_flags (needs RANGES)
#define PROTO_WORK_FLAGS (PROTO_WORK_ALONE | PROTO_WORK_PAYLOAD | PROTO_WORK_RANGES | \
                          PROTO_WORK_ITEM_FLAGS) // every flag a parser accepts
#define PROTO_ITEM_CONTINUE 1u  // item_flags: resume a segmented item at the cut `start`

enum { PROTO_REC_ROW = 0, PROTO_REC_ERROR = 1, PROTO_REC_MARK = 2 };
#define PROTO_MARK_BYTES 9      // a mark's value: u64 next, u8 done

// Where an in-process executor (a one-rank run) hands a PARTIAL message's bytes.
typedef int (*proto_partial_fn)(void *sink, const void *msg, size_t n, sl_err *err);

// A growable message buffer; zero-initialise, proto_buf_free when done.
typedef struct proto_buf {
    unsigned char *p;
    size_t len, cap;
} proto_buf;

int proto_buf_reserve(proto_buf *b, size_t extra, sl_err *err);
void proto_buf_free(proto_buf *b);

// --- HELLO: empty ---
int proto_hello_parse(const void *buf, size_t n, sl_err *err);

// --- WORK ---
// begin resets b and writes the header; each add appends one item (ids and paths
// must not contain NUL; the payload variant takes any n bytes in place of the path;
// in a PROTO_WORK_RANGES message these two give the item the range (0, 0)).
int proto_work_begin(proto_buf *b, uint32_t wid, uint32_t flags, sl_err *err);
int proto_work_add(proto_buf *b, const char *id, const char *path, sl_err *err);
int proto_work_add_bytes(proto_buf *b, const char *id, const void *bytes, size_t n, sl_err *err);
// With PROTO_WORK_RANGES (begin's flags; every item of the message then needs one):
// the item and its range, (0, 0) = the whole file, else 0 <= start < end. SL_EINVAL
// otherwise or without the flag.
int proto_work_add_range(proto_buf *b, const char *id, const char *path, int64_t start,
                         int64_t end, sl_err *err);
// As proto_work_add_range with item flags (begin's flags need PROTO_WORK_ITEM_FLAGS for
// any item_flags != 0). With PROTO_ITEM_CONTINUE: start > 0 is the cut to resume at and
// end is the piece's end or 0 (the end of the file). SL_EINVAL otherwise.
int proto_work_add_item(proto_buf *b, const char *id, const char *path, int64_t start,
                        int64_t end, uint32_t item_flags, sl_err *err);

typedef struct proto_item {
    const char *id;   // NUL-terminated, inside the message buffer
    uint32_t id_len;
    const char *path; // NUL-terminated, inside the message buffer; with PROTO_WORK_PAYLOAD
    uint32_t path_len;//   it holds the item's payload bytes instead (a stored row)
    int64_t start, end; // PROTO_WORK_RANGES: the piece [start, end) in 16 kHz samples;
                        //   0, 0 = the whole file (always without the flag); with
                        //   PROTO_ITEM_CONTINUE the cut to resume at and the end (0: EOF)
    uint32_t item_flags;// PROTO_ITEM_* (0 without PROTO_WORK_ITEM_FLAGS)
} proto_item;

// The header alone (wid, flags, item count), checked for length and known flags (and
// not PAYLOAD with RANGES).
int proto_work_header(const void *buf, size_t n, uint32_t *wid, uint32_t *flags,
                      uint32_t *n_items, sl_err *err);
// The whole message. items: caller array of capacity cap; *n_items gets the count
// (SL_EFORMAT if > cap, if an item overruns the message or lacks its NULs, if an id
// or, without PROTO_WORK_PAYLOAD, a path holds a NUL, if a range is cut short or is
// neither (0, 0) nor start < end <= INT64_MAX (CONTINUE: 0 < start, end 0 or start <
// end), if item flags hold unknown bits, or if bytes follow the last item).
int proto_work_parse(const void *buf, size_t n, uint32_t *wid, uint32_t *flags,
                     proto_item *items, size_t cap, size_t *n_items, sl_err *err);

// --- RESULT (and PARTIAL, the same bytes under another tag) ---
int proto_result_begin(proto_buf *b, uint32_t wid, sl_err *err);
// A row or error record (a mark: proto_result_add_mark).
int proto_result_add(proto_buf *b, int kind, const void *key, size_t key_len, const void *val,
                     size_t val_len, sl_err *err);
// A mark: the segmented item `id` resumes at sample `next` (its last segment sent ends
// there); done = 1 once all its segments were sent. next <= INT64_MAX.
int proto_result_add_mark(proto_buf *b, const void *id, size_t id_len, int64_t next, int done,
                          sl_err *err);
// A mark record's value (checked by proto_result_next already; SL_EFORMAT otherwise).
int proto_mark_parse(const void *val, size_t n, int64_t *next, int *done, sl_err *err);

typedef struct proto_record {
    int kind;          // PROTO_REC_ROW, PROTO_REC_ERROR or PROTO_REC_MARK
    const void *key;
    uint32_t key_len;
    const void *val;
    uint32_t val_len;
} proto_record;

// Reads a RESULT record by record; the reader points into buf.
typedef struct proto_result_reader {
    const unsigned char *p, *end;
    uint32_t wid, n, i;
} proto_result_reader;

int proto_result_open(proto_result_reader *r, const void *buf, size_t n, sl_err *err);
// 1 = a record, 0 = end, < 0 = malformed (a record overruns the message, an unknown
// kind, a mark whose value is not PROTO_MARK_BYTES with done 0/1 and next <= INT64_MAX,
// or bytes after the last record).
int proto_result_next(proto_result_reader *r, proto_record *rec, sl_err *err);

// --- STOP ---
#define PROTO_STOP_BYTES 4
void proto_stop_encode(unsigned char out[PROTO_STOP_BYTES], uint32_t status);
// status is 0 (finished) or 3 (interrupted); anything else is SL_EFORMAT.
int proto_stop_parse(const void *buf, size_t n, uint32_t *status, sl_err *err);

// --- STATS ---
typedef enum proto_stat {
    PROTO_T_AUDIO, PROTO_T_FEATURES, PROTO_T_TOKENS, PROTO_T_TEXT, PROTO_T_BUSY,
    PROTO_N_UTTS, PROTO_N_ROWS, PROTO_N_ERRORS, PROTO_AUDIO_SECONDS,
    PROTO_N_DEC_STEPS, // decoder steps run
    PROTO_N_DEC_ROWS,  // rows (hypotheses) they decoded: / steps = the decoding batch's height
    PROTO_N_STATS
} proto_stat;
#define PROTO_STATS_BYTES (8 * PROTO_N_STATS)
void proto_stats_encode(unsigned char out[PROTO_STATS_BYTES], const double stats[PROTO_N_STATS]);
// Every value must be finite and >= 0 (seconds and counts).
int proto_stats_parse(const void *buf, size_t n, double stats[PROTO_N_STATS], sl_err *err);

// --- CRASH ---
#define PROTO_CRASH_BYTES 4
void proto_crash_encode(unsigned char out[PROTO_CRASH_BYTES], uint32_t wid); // async-signal-safe
int proto_crash_parse(const void *buf, size_t n, uint32_t *wid, sl_err *err);
