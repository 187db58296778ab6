// tests/fuzz/fuzz_protocol.c — libFuzzer targets for the rank 0 <-> worker messages
// (coordinator/protocol.c). One file, built once per parser: CMake defines
// FUZZ_PROTO_<MSG> (WORK RESULT STOP STATS CRASH HELLO) and names the binary
// fuzz_proto_<msg>. Each checks the promises of protocol.h on arbitrary bytes:
// what is accepted lies inside the input and re-encodes to exactly the input; what
// is refused is SL_EFORMAT with a message naming the message kind.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// Helpers shared by the targets; each build uses some of them.
#define UNUSED_OK __attribute__((unused))

// p[0..len) lies inside data[0..size).
UNUSED_OK static int inside(const uint8_t *data, size_t size, const void *p, size_t len)
{
    uintptr_t a = (uintptr_t)data, q = (uintptr_t)p;
    return q >= a && len <= size && q - a <= size - len;
}

// A refusal: SL_EFORMAT, recorded in err, with a message that names the kind.
static void check_refusal(int rc, const sl_err *err, const char *kind)
{
    if (rc != SL_EFORMAT || err->code != SL_EFORMAT || !strstr(err->msg, kind))
        __builtin_trap();
}

UNUSED_OK static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

UNUSED_OK static void check_encoded(const proto_buf *b, const uint8_t *data, size_t size)
{
    if (b->len != size || (size && memcmp(b->p, data, size) != 0))
        __builtin_trap(); // the parser accepted what the encoder cannot reproduce
}

#if defined(FUZZ_PROTO_WORK)

#define SMALL_CAP 3

static void check_items(const uint8_t *data, size_t size, uint32_t flags, const proto_item *it,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!inside(data, size, it[i].id, (size_t)it[i].id_len + 1) ||
            !inside(data, size, it[i].path, (size_t)it[i].path_len + 1))
            __builtin_trap();
        if (it[i].id[it[i].id_len] != 0 || memchr(it[i].id, 0, it[i].id_len))
            __builtin_trap(); // an id is a C string of exactly id_len bytes
        if (it[i].path[it[i].path_len] != 0)
            __builtin_trap();
        // Without the payload flag the worker opens path as a C string.
        if (!(flags & PROTO_WORK_PAYLOAD) && memchr(it[i].path, 0, it[i].path_len))
            __builtin_trap();
        // A range is the whole file (0, 0) or a piece 0 <= start < end; none without the
        // flag. A continuation (item flag CONTINUE, only with PROTO_WORK_ITEM_FLAGS): a cut
        // start > 0 and an end after it or 0.
        if (it[i].item_flags & ~PROTO_ITEM_CONTINUE ||
            (it[i].item_flags && !(flags & PROTO_WORK_ITEM_FLAGS)))
            __builtin_trap();
        if (it[i].item_flags & PROTO_ITEM_CONTINUE) {
            if (it[i].start <= 0 || (it[i].end != 0 && it[i].end <= it[i].start))
                __builtin_trap();
        } else if (!(it[i].start == 0 && it[i].end == 0) &&
                   (!(flags & PROTO_WORK_RANGES) || it[i].start < 0 || it[i].end <= it[i].start)) {
            __builtin_trap();
        }
    }
}

static int same_items(const proto_item *a, const proto_item *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].id != b[i].id || a[i].id_len != b[i].id_len || a[i].path != b[i].path ||
            a[i].path_len != b[i].path_len || a[i].start != b[i].start || a[i].end != b[i].end ||
            a[i].item_flags != b[i].item_flags)
            return 0;
    return 1;
}

static void fuzz_one(const uint8_t *data, size_t size)
{
    sl_err err;
    uint32_t wid, flags, n_hdr;
    int hrc = proto_work_header(data, size, &wid, &flags, &n_hdr, &err);
    if (hrc != SL_OK)
        check_refusal(hrc, &err, "WORK");
    else if ((flags & ~PROTO_WORK_FLAGS) || n_hdr > (size - 12) / 10 ||
             ((flags & PROTO_WORK_PAYLOAD) && (flags & PROTO_WORK_RANGES)) ||
             ((flags & PROTO_WORK_ITEM_FLAGS) && !(flags & PROTO_WORK_RANGES)))
        __builtin_trap();

    // An item takes at least 10 bytes, so size / 10 + 1 always holds the count.
    size_t large_cap = size / 10 + 1, n_large = SIZE_MAX, n_small = SIZE_MAX;
    proto_item *large = malloc(large_cap * sizeof *large);
    proto_item small[SMALL_CAP];
    if (!large)
        abort();
    uint32_t wid_l, flags_l, wid_s, flags_s;
    int lrc = proto_work_parse(data, size, &wid_l, &flags_l, large, large_cap, &n_large, &err);
    if (lrc != SL_OK)
        check_refusal(lrc, &err, "WORK");
    int src = proto_work_parse(data, size, &wid_s, &flags_s, small, SMALL_CAP, &n_small, &err);
    if (src != SL_OK)
        check_refusal(src, &err, "WORK");
    if (hrc != SL_OK && (lrc == SL_OK || src == SL_OK))
        __builtin_trap(); // the message passed where its header alone did not
    if (src == SL_OK && (lrc != SL_OK || n_small != n_large || !same_items(small, large, n_small)))
        __builtin_trap(); // the capacity changed what was parsed
    if (lrc == SL_OK && n_large <= SMALL_CAP && src != SL_OK)
        __builtin_trap(); // refused with room to spare
    if (lrc != SL_OK) {
        free(large);
        return;
    }
    if (wid_l != wid || flags_l != flags || n_large != n_hdr)
        __builtin_trap();
    check_items(data, size, flags, large, n_large);

    proto_buf b = {0};
    if (proto_work_begin(&b, wid, flags, &err) != SL_OK)
        abort();
    for (size_t i = 0; i < n_large; i++)
        if ((flags & PROTO_WORK_RANGES)
                ? proto_work_add_item(&b, large[i].id, large[i].path, large[i].start,
                                      large[i].end, large[i].item_flags, &err) != SL_OK
                : proto_work_add_bytes(&b, large[i].id, large[i].path, large[i].path_len,
                                       &err) != SL_OK)
            abort();
    check_encoded(&b, data, size);
    proto_buf_free(&b);
    free(large);
}

#elif defined(FUZZ_PROTO_RESULT)

static void fuzz_one(const uint8_t *data, size_t size)
{
    sl_err err;
    proto_result_reader r;
    int rc = proto_result_open(&r, data, size, &err);
    if (rc != SL_OK) {
        check_refusal(rc, &err, "RESULT");
        return;
    }
    if (size < 8 || r.n > (size - 8) / 9 || r.i != 0 || r.wid != le32(data) || r.n != le32(data + 4))
        __builtin_trap();
    proto_record *recs = malloc(((size_t)r.n + 1) * sizeof *recs);
    if (!recs)
        abort();
    size_t k = 0;
    while ((rc = proto_result_next(&r, &recs[k], &err)) == 1) {
        const proto_record *c = &recs[k];
        if (c->kind != PROTO_REC_ROW && c->kind != PROTO_REC_ERROR && c->kind != PROTO_REC_MARK)
            __builtin_trap();
        int64_t next;
        int done;
        if (c->kind == PROTO_REC_MARK &&
            (proto_mark_parse(c->val, c->val_len, &next, &done, &err) != SL_OK || next < 0 ||
             (done != 0 && done != 1)))
            __builtin_trap(); // a mark accepted that its own parser refuses
        if (!inside(data, size, c->key, c->key_len) || !inside(data, size, c->val, c->val_len) ||
            (const uint8_t *)c->val != (const uint8_t *)c->key + c->key_len)
            __builtin_trap();
        if (++k > r.n)
            __builtin_trap(); // more records than the header counts
    }
    if (rc < 0) {
        check_refusal(rc, &err, "RESULT");
        free(recs);
        return;
    }
    if (rc != 0 || k != r.n)
        __builtin_trap();
    proto_buf b = {0};
    if (proto_result_begin(&b, r.wid, &err) != SL_OK)
        abort();
    for (size_t i = 0; i < k; i++) {
        int64_t next;
        int done;
        if (recs[i].kind == PROTO_REC_MARK
                ? proto_mark_parse(recs[i].val, recs[i].val_len, &next, &done, &err) != SL_OK ||
                      proto_result_add_mark(&b, recs[i].key, recs[i].key_len, next, done,
                                            &err) != SL_OK
                : proto_result_add(&b, recs[i].kind, recs[i].key, recs[i].key_len, recs[i].val,
                                   recs[i].val_len, &err) != SL_OK)
            abort();
    }
    check_encoded(&b, data, size);
    proto_buf_free(&b);
    free(recs);
}

#elif defined(FUZZ_PROTO_STOP)

static void fuzz_one(const uint8_t *data, size_t size)
{
    sl_err err;
    uint32_t status;
    int rc = proto_stop_parse(data, size, &status, &err);
    int want = size == PROTO_STOP_BYTES && (le32(data) == 0 || le32(data) == 3);
    if (rc != SL_OK) {
        check_refusal(rc, &err, "STOP");
        if (want)
            __builtin_trap();
        return;
    }
    if (!want || status != le32(data))
        __builtin_trap();
    unsigned char out[PROTO_STOP_BYTES];
    proto_stop_encode(out, status);
    if (memcmp(out, data, PROTO_STOP_BYTES) != 0)
        __builtin_trap();
}

#elif defined(FUZZ_PROTO_STATS)

static void fuzz_one(const uint8_t *data, size_t size)
{
    sl_err err;
    double stats[PROTO_N_STATS];
    int rc = proto_stats_parse(data, size, stats, &err);
    int want = size == PROTO_STATS_BYTES;
    for (int k = 0; want && k < PROTO_N_STATS; k++) {
        uint64_t u = (uint64_t)le32(data + 8 * k) | (uint64_t)le32(data + 8 * k + 4) << 32;
        double v;
        memcpy(&v, &u, 8);
        want = isfinite(v) && v >= 0;
    }
    if (rc != SL_OK) {
        check_refusal(rc, &err, "STATS");
        if (want)
            __builtin_trap();
        return;
    }
    if (!want)
        __builtin_trap();
    for (int k = 0; k < PROTO_N_STATS; k++)
        if (!isfinite(stats[k]) || !(stats[k] >= 0))
            __builtin_trap();
    unsigned char out[PROTO_STATS_BYTES];
    proto_stats_encode(out, stats);
    if (memcmp(out, data, PROTO_STATS_BYTES) != 0)
        __builtin_trap(); // the exact bits, -0.0 included
}

#elif defined(FUZZ_PROTO_CRASH)

static void fuzz_one(const uint8_t *data, size_t size)
{
    sl_err err;
    uint32_t wid;
    int rc = proto_crash_parse(data, size, &wid, &err);
    if (rc != SL_OK) {
        check_refusal(rc, &err, "CRASH");
        if (size == PROTO_CRASH_BYTES)
            __builtin_trap();
        return;
    }
    if (size != PROTO_CRASH_BYTES)
        __builtin_trap();
    unsigned char out[PROTO_CRASH_BYTES];
    proto_crash_encode(out, wid);
    if (memcmp(out, data, PROTO_CRASH_BYTES) != 0)
        __builtin_trap();
}

#elif defined(FUZZ_PROTO_HELLO)

static void fuzz_one(const uint8_t *data, size_t size)
{
    sl_err err;
    int rc = proto_hello_parse(data, size, &err);
    if (rc != SL_OK)
        check_refusal(rc, &err, "HELLO");
    if ((rc == SL_OK) != (size == 0))
        __builtin_trap();
}

#else
#error "define FUZZ_PROTO_WORK, _RESULT, _STOP, _STATS, _CRASH or _HELLO (tests/fuzz/CMakeLists.txt)"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_one(data, size);
    return 0;
}
