// tests/fuzz/fuzz_row.c — libFuzzer target: the row / error record codec
// (storage/row.c) and the segment key parser (storage/segkey.c) on arbitrary
// bytes. A version-2 row that decodes must re-encode to exactly the same bytes
// (rec_row_encode writes version 2); a version-1 row re-encodes to a version-2
// row with the same fields, derived bounds and id body. Every id is readable,
// the source lies inside the value, and rec_row_check_key runs with the input
// as its own key. A key that parses formats back to the same suffix.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/row.h"
#include "storage/segkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_row(const uint8_t *data, size_t size)
{
    sl_err err;
    rec_header h;
    if (rec_row_decode(data, size, &h, &err) != SL_OK)
        return;
    if (h.end < h.start || (h.source_len && (h.source < (const char *)data ||
                                             h.source + h.source_len > (const char *)data + size)))
        __builtin_trap();
    int32_t *sem = malloc(4 * (size_t)h.n_semantic + 4);
    int32_t *txt = malloc(4 * (size_t)h.n_text + 4);
    size_t cap = size + REC_HEADER_BYTES_V2;
    unsigned char *out = malloc(cap);
    if (!sem || !txt || !out)
        abort();
    rec_row_ids(data, &h, sem, txt);
    if (rec_row_id_at(data, (size_t)h.n_semantic) != REC_DELIM)
        __builtin_trap();
    long k = rec_row_encode(&h, sem, txt, out, cap, &err);
    size_t off = rec_row_ids_offset(&h), body = 4 * ((size_t)h.n_semantic + 1 + h.n_text);
    if (h.version == REC_VERSION) {
        if (k != (long)size || memcmp(out, data, size) != 0)
            __builtin_trap(); // decode accepted what encode cannot reproduce
    } else {
        rec_header g;
        if (k != (long)(size - off + REC_HEADER_BYTES_V2) ||
            rec_row_decode(out, (size_t)k, &g, &err) != SL_OK || g.version != REC_VERSION ||
            g.start != h.start || g.end != h.end || g.source_len != 0 ||
            g.n_semantic != h.n_semantic || g.n_text != h.n_text || g.flags != h.flags ||
            memcmp(&g.duration_s, &h.duration_s, 4) != 0 || memcmp(&g.score, &h.score, 4) != 0 ||
            memcmp(out + REC_HEADER_BYTES_V2, data + off, body) != 0)
            __builtin_trap(); // a version-1 row does not carry over to version 2
    }
    (void)rec_row_check_key(&h, (const char *)data, size, &err);
    free(sem);
    free(txt);
    free(out);
}

static void check_key(const uint8_t *data, size_t size)
{
    size_t src_len;
    uint64_t s_ms, e_ms;
    if (!seg_key_parse((const char *)data, size, &src_len, &s_ms, &e_ms))
        return;
    if (src_len + SEG_KEY_SUFFIX_BYTES != size || src_len == 0 || e_ms < s_ms)
        __builtin_trap();
    // The last sample of the end millisecond: end > start even when the ms are equal.
    char *out = malloc(size + 1);
    if (!out)
        abort();
    size_t n = seg_key_format((const char *)data, src_len, s_ms * 16, e_ms * 16 + 15, out,
                              size + 1);
    if (n != size || memcmp(out, data, size) != 0)
        __builtin_trap(); // a parsed key that does not format back
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_row(data, size);
    check_key(data, size);
    sl_err err;
    rec_error e;
    if (rec_error_decode(data, size, &e, &err) == SL_OK) {
        volatile char sink = 0;
        for (uint32_t i = 0; i < e.msg_len; i++)
            sink ^= e.msg[i];
        (void)sink;
        (void)sl_stage_name(e.stage);
    }
    return 0;
}
