// coordinator/protocol.h — the messages between rank 0 and the workers.
//
// Everything on the wire is a flat little-endian byte string built and parsed
// here (no pointers, no structs): MPI_BYTE messages whose tag says the kind.
//   worker -> 0  HELLO   (empty)                      ready; rank 0 then keeps up to
//                                                     PROTO_PREFETCH units in flight per worker
//   0 -> worker  WORK    u32 wid, u32 flags, u32 n, n x (u32 id_len, u32 path_len,
//                        id bytes, NUL, path bytes, NUL)
//   worker -> 0  RESULT  u32 wid, u32 n, n x (u8 kind, u32 key_len, u32 val_len, key, value)
//                        kind 0 = row, 1 = error; values are storage/row.h records,
//                        so wire and disk share one codec and one version number
//   0 -> worker  STOP    u32 status (0 = finished, 3 = interrupted)
//   worker -> 0  STATS   PROTO_N_STATS doubles (stage timers and counts, see proto_stats)
//   worker -> 0  CRASH   u32 wid: sent from the worker's fatal-signal handler
// wid (work id) < n_units names a unit of the plan; wid >= n_units names the
// single manifest item wid - n_units, retried alone after a crash.
// This file is MPI-free: coordinator/ and worker/ do the sending.
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
};

#define PROTO_PREFETCH 2        // units a worker holds: one computing, one queued
#define PROTO_WORK_ALONE 1u     // flags: a crash retry of a single item
#define PROTO_WORK_PAYLOAD 2u   // flags: items carry payload bytes (regenerate: stored rows)

enum { PROTO_REC_ROW = 0, PROTO_REC_ERROR = 1 };

typedef struct proto_buf {
    unsigned char *p;
    size_t len, cap;
} proto_buf;

int proto_buf_reserve(proto_buf *b, size_t extra, sl_err *err);
void proto_buf_free(proto_buf *b);

// --- WORK ---
int proto_work_begin(proto_buf *b, uint32_t wid, uint32_t flags, sl_err *err);
int proto_work_add(proto_buf *b, const char *id, const char *path, sl_err *err);
// Same with n bytes of payload in place of the path.
int proto_work_add_bytes(proto_buf *b, const char *id, const void *bytes, size_t n, sl_err *err);

typedef struct proto_item {
    const char *id;   // NUL-terminated, inside the message buffer
    uint32_t id_len;
    const char *path; // NUL-terminated, inside the message buffer; with PROTO_WORK_PAYLOAD
    uint32_t path_len;//   it holds the item's payload bytes instead (a stored row)
} proto_item;

// Parses a WORK message. items: caller array of capacity cap; *n_items gets the count
// (SL_EFORMAT if > cap or the bytes are inconsistent). Pointers live as long as buf.
int proto_work_parse(const void *buf, size_t n, uint32_t *wid, uint32_t *flags,
                     proto_item *items, size_t cap, size_t *n_items, sl_err *err);
// The item count of a WORK message without parsing the rest (0 if malformed).
uint32_t proto_work_count(const void *buf, size_t n);

// --- RESULT ---
int proto_result_begin(proto_buf *b, uint32_t wid, sl_err *err);
int proto_result_add(proto_buf *b, int kind, const void *key, size_t key_len, const void *val,
                     size_t val_len, sl_err *err);

typedef struct proto_record {
    int kind;
    const void *key;
    uint32_t key_len;
    const void *val;
    uint32_t val_len;
} proto_record;

typedef struct proto_result_reader {
    const unsigned char *p, *end;
    uint32_t wid, n, i;
} proto_result_reader;

int proto_result_open(proto_result_reader *r, const void *buf, size_t n, sl_err *err);
// 1 = a record, 0 = end, < 0 = malformed.
int proto_result_next(proto_result_reader *r, proto_record *rec, sl_err *err);

// --- STATS ---
typedef enum proto_stat {
    PROTO_T_AUDIO, PROTO_T_FEATURES, PROTO_T_TOKENS, PROTO_T_TEXT, PROTO_T_BUSY,
    PROTO_N_UTTS, PROTO_N_ROWS, PROTO_N_ERRORS, PROTO_AUDIO_SECONDS,
    PROTO_N_STATS
} proto_stat;
