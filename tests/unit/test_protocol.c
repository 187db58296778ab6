// tests/unit/test_protocol.c — the rank 0 <-> worker messages (coordinator/protocol.c):
// round trips of every message, the little-endian bytes on the wire (spelled out, so
// the test means the same on any host), and every refusal: SL_EFORMAT with a message
// that names the message kind and the problem.
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "coordinator/protocol.h"
#include "tests/testutil.h"

// rc is a refusal of a `kind` message whose text contains `what`.
#define CHECK_REFUSED(rc, e, kind, what)                                                           \
    do {                                                                                           \
        CU_ASSERT_EQUAL((rc), SL_EFORMAT);                                                         \
        CU_ASSERT_EQUAL((e).code, SL_EFORMAT);                                                     \
        CU_ASSERT_PTR_NOT_NULL(strstr((e).msg, "protocol: " kind));                                \
        CU_ASSERT_PTR_NOT_NULL(strstr((e).msg, what));                                             \
    } while (0)

static void put_le32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

// p[0..len) lies inside buf[0..n).
static int inside(const void *buf, size_t n, const void *p, size_t len)
{
    uintptr_t a = (uintptr_t)buf, q = (uintptr_t)p;
    return q >= a && len <= n && q - a <= n - len;
}

static void test_work_paths(void)
{
    static const char *ids[] = {"spk1/utt1", "", "\xc3\xa9t\xc3\xa9"};
    static const char *paths[] = {"/data/a b.wav", "x.flac", "\xe6\x97\xa5/c.ogg"};
    proto_buf b = {0};
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(proto_work_begin(&b, 42, 0, &e), SL_OK);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(proto_work_add(&b, ids[i], paths[i], &e), SL_OK);
    uint32_t wid = 0, flags = 9, n_hdr = 0;
    CU_ASSERT_EQUAL(proto_work_header(b.p, b.len, &wid, &flags, &n_hdr, &e), SL_OK);
    CU_ASSERT_EQUAL(wid, 42);
    CU_ASSERT_EQUAL(flags, 0);
    CU_ASSERT_EQUAL(n_hdr, 3);
    proto_item it[3];
    size_t n = 0;
    wid = 0;
    flags = 9;
    CU_ASSERT_EQUAL_FATAL(proto_work_parse(b.p, b.len, &wid, &flags, it, 3, &n, &e), SL_OK);
    CU_ASSERT_EQUAL(wid, 42);
    CU_ASSERT_EQUAL(flags, 0);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_STRING_EQUAL(it[i].id, ids[i]);
        CU_ASSERT_EQUAL(it[i].id_len, strlen(ids[i]));
        CU_ASSERT_STRING_EQUAL(it[i].path, paths[i]);
        CU_ASSERT_EQUAL(it[i].path_len, strlen(paths[i]));
        CU_ASSERT(inside(b.p, b.len, it[i].id, it[i].id_len + 1));
        CU_ASSERT(inside(b.p, b.len, it[i].path, it[i].path_len + 1));
    }
    // An empty unit is the 12-byte header: no item array needed.
    CU_ASSERT_EQUAL_FATAL(proto_work_begin(&b, 7, PROTO_WORK_ALONE, &e), SL_OK);
    CU_ASSERT_EQUAL(b.len, 12);
    n = 99;
    CU_ASSERT_EQUAL(proto_work_parse(b.p, b.len, &wid, &flags, NULL, 0, &n, &e), SL_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(wid, 7);
    CU_ASSERT_EQUAL(flags, PROTO_WORK_ALONE);
    proto_buf_free(&b);
}

// PROTO_WORK_RANGES: each item carries its piece [start, end) (0, 0 = the whole file),
// little-endian u64 after the path; bad ranges and a missing flag are refused.
static void test_work_ranges(void)
{
    proto_buf b = {0};
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(proto_work_begin(&b, 5, PROTO_WORK_RANGES, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_work_add_range(&b, "a.wav@00001.500-00003.000", "/d/a.wav", 24000,
                                               48000, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_work_add(&b, "b.wav", "/d/b.wav", &e), SL_OK); // (0, 0)
    CU_ASSERT_EQUAL_FATAL(proto_work_add_range(&b, "c", "c.wav", 1, (int64_t)1 << 40, &e), SL_OK);
    CU_ASSERT_EQUAL(proto_work_add_range(&b, "d", "d.wav", 5, 5, &e), SL_EINVAL);
    CU_ASSERT_EQUAL(proto_work_add_range(&b, "d", "d.wav", -1, 5, &e), SL_EINVAL);
    // Wire: the first item's range right after its path's NUL.
    const unsigned char *r = b.p + 12 + 8 + strlen("a.wav@00001.500-00003.000") + 1 +
                             strlen("/d/a.wav") + 1;
    CU_ASSERT(r[0] == (24000 & 0xff) && r[1] == (24000 >> 8) && r[2] == 0 && r[7] == 0);
    CU_ASSERT(r[8] == (48000 & 0xff) && r[9] == (48000 >> 8) && r[10] == 0 && r[15] == 0);
    proto_item it[3];
    size_t n = 0;
    uint32_t wid, flags;
    CU_ASSERT_EQUAL_FATAL(proto_work_parse(b.p, b.len, &wid, &flags, it, 3, &n, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_EQUAL(flags, PROTO_WORK_RANGES);
    CU_ASSERT(it[0].start == 24000 && it[0].end == 48000);
    CU_ASSERT(it[1].start == 0 && it[1].end == 0);
    CU_ASSERT(it[2].start == 1 && it[2].end == (int64_t)1 << 40);
    CU_ASSERT_STRING_EQUAL(it[2].path, "c.wav");
    // Cut inside the last range; a range with end <= start; end past INT64_MAX.
    CU_ASSERT_EQUAL(proto_work_parse(b.p, b.len - 1, &wid, &flags, it, 3, &n, &e), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "range truncated"));
    unsigned char *last = b.p + b.len - 16;
    memcpy(last, last + 8, 8); // start = end
    CU_ASSERT_EQUAL(proto_work_parse(b.p, b.len, &wid, &flags, it, 3, &n, &e), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "bad range"));
    memset(last, 0, 8);
    memset(last + 8, 0xff, 8);
    CU_ASSERT_EQUAL(proto_work_parse(b.p, b.len, &wid, &flags, it, 3, &n, &e), SL_EFORMAT);
    // Without the flag, a range cannot be added, and items carry (0, 0).
    CU_ASSERT_EQUAL_FATAL(proto_work_begin(&b, 5, 0, &e), SL_OK);
    CU_ASSERT_EQUAL(proto_work_add_range(&b, "a", "a.wav", 1, 2, &e), SL_EINVAL);
    CU_ASSERT_EQUAL_FATAL(proto_work_add(&b, "a", "a.wav", &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_work_parse(b.p, b.len, &wid, &flags, it, 3, &n, &e), SL_OK);
    CU_ASSERT(n == 1 && it[0].start == 0 && it[0].end == 0);
    // Payloads and ranges never travel together.
    CU_ASSERT_EQUAL_FATAL(proto_work_begin(&b, 5, PROTO_WORK_RANGES | PROTO_WORK_PAYLOAD, &e),
                          SL_OK);
    uint32_t cnt;
    CU_ASSERT_EQUAL(proto_work_header(b.p, b.len, &wid, &flags, &cnt, &e), SL_EFORMAT);
    proto_buf_free(&b);
}

// PROTO_WORK_ITEM_FLAGS: a u32 after each item's range; PROTO_ITEM_CONTINUE resumes a
// segmented item at the cut `start`, to `end` or (0) the end of the file.
static void test_work_item_flags(void)
{
    proto_buf b = {0};
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(proto_work_begin(&b, 7, PROTO_WORK_RANGES | PROTO_WORK_ITEM_FLAGS, &e),
                          SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_work_add_item(&b, "long.flac", "/d/long.flac", 480000, 0,
                                              PROTO_ITEM_CONTINUE, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_work_add(&b, "short.wav", "/d/short.wav", &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_work_add_item(&b, "p@00001.000-00100.000", "/d/p.wav", 500000,
                                              1600000, PROTO_ITEM_CONTINUE, &e), SL_OK);
    // A continuation needs a cut > 0 and an end after it (or 0); no unknown item flags.
    CU_ASSERT_EQUAL(proto_work_add_item(&b, "x", "x", 0, 0, PROTO_ITEM_CONTINUE, &e), SL_EINVAL);
    CU_ASSERT_EQUAL(proto_work_add_item(&b, "x", "x", 9, 9, PROTO_ITEM_CONTINUE, &e), SL_EINVAL);
    CU_ASSERT_EQUAL(proto_work_add_item(&b, "x", "x", 9, 0, 0, &e), SL_EINVAL); // (s, 0) w/o it
    CU_ASSERT_EQUAL(proto_work_add_item(&b, "x", "x", 1, 2, 2, &e), SL_EINVAL);
    // Wire: the item flags right after the first item's range.
    const unsigned char *r = b.p + 12 + 8 + strlen("long.flac") + 1 + strlen("/d/long.flac") + 1;
    CU_ASSERT(r[0] == (480000 & 0xff) && r[1] == ((480000 >> 8) & 0xff) && r[2] == (480000 >> 16));
    CU_ASSERT(r[8] == 0 && r[15] == 0);
    CU_ASSERT(r[16] == 1 && r[17] == 0 && r[18] == 0 && r[19] == 0);
    proto_item it[3];
    size_t n = 0;
    uint32_t wid, flags;
    CU_ASSERT_EQUAL_FATAL(proto_work_parse(b.p, b.len, &wid, &flags, it, 3, &n, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT(it[0].start == 480000 && it[0].end == 0 && it[0].item_flags == PROTO_ITEM_CONTINUE);
    CU_ASSERT(it[1].start == 0 && it[1].end == 0 && it[1].item_flags == 0);
    CU_ASSERT(it[2].start == 500000 && it[2].end == 1600000 && it[2].item_flags == 1);
    // Refused on the wire: an unknown item flag, a continuation at 0, (s, 0) without it,
    // the flags cut off.
    unsigned char *f = b.p + b.len - 4;
    f[0] = 3;
    CU_ASSERT_EQUAL(proto_work_parse(b.p, b.len, &wid, &flags, it, 3, &n, &e), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "unknown item flags 0x3"));
    f[0] = 0; // (500000, 1600000) without CONTINUE is a plain piece: fine
    CU_ASSERT_EQUAL(proto_work_parse(b.p, b.len, &wid, &flags, it, 3, &n, &e), SL_OK);
    unsigned char *first_flags = (unsigned char *)r + 16;
    first_flags[0] = 0; // (480000, 0) without CONTINUE
    CU_ASSERT_EQUAL(proto_work_parse(b.p, b.len, &wid, &flags, it, 3, &n, &e), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "bad range"));
    first_flags[0] = 1;
    memset((unsigned char *)r, 0, 8); // a continuation at 0
    CU_ASSERT_EQUAL(proto_work_parse(b.p, b.len, &wid, &flags, it, 3, &n, &e), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "to continue"));
    CU_ASSERT_EQUAL(proto_work_parse(b.p, b.len - 2, &wid, &flags, it, 3, &n, &e), SL_EFORMAT);
    // Item flags need the message flag.
    CU_ASSERT_EQUAL_FATAL(proto_work_begin(&b, 7, PROTO_WORK_RANGES, &e), SL_OK);
    CU_ASSERT_EQUAL(proto_work_add_item(&b, "x", "x", 5, 0, PROTO_ITEM_CONTINUE, &e), SL_EINVAL);
    proto_buf_free(&b);
}

// Marks: kind 2, key = the item id, value u64 next + u8 done; refused when malformed.
static void test_result_marks(void)
{
    proto_buf b = {0};
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(proto_result_begin(&b, 3, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_result_add_mark(&b, "book.flac", 9, 0x0102030405LL, 0, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_result_add_mark(&b, "book.flac", 9, 7, 1, &e), SL_OK);
    CU_ASSERT_EQUAL(proto_result_add_mark(&b, "x", 1, -1, 0, &e), SL_EINVAL);
    CU_ASSERT_EQUAL(proto_result_add_mark(&b, "x", 1, 1, 2, &e), SL_EINVAL);
    static const unsigned char first[] = {2, 9, 0, 0, 0, 9, 0, 0, 0, 'b', 'o', 'o', 'k', '.',
                                          'f', 'l', 'a', 'c', 5, 4, 3, 2, 1, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(memcmp(b.p + 8, first, sizeof first), 0);
    proto_result_reader r;
    proto_record rec;
    int64_t next;
    int done;
    CU_ASSERT_EQUAL_FATAL(proto_result_open(&r, b.p, b.len, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_result_next(&r, &rec, &e), 1);
    CU_ASSERT_EQUAL(rec.kind, PROTO_REC_MARK);
    CU_ASSERT_EQUAL_FATAL(proto_mark_parse(rec.val, rec.val_len, &next, &done, &e), SL_OK);
    CU_ASSERT(next == 0x0102030405LL && done == 0);
    CU_ASSERT_EQUAL_FATAL(proto_result_next(&r, &rec, &e), 1);
    CU_ASSERT_EQUAL_FATAL(proto_mark_parse(rec.val, rec.val_len, &next, &done, &e), SL_OK);
    CU_ASSERT(next == 7 && done == 1);
    CU_ASSERT_EQUAL(proto_result_next(&r, &rec, &e), 0);
    // done byte 2; next past INT64_MAX; a value of 8 bytes
    b.p[b.len - 1] = 2;
    CU_ASSERT_EQUAL_FATAL(proto_result_open(&r, b.p, b.len, &e), SL_OK);
    CU_ASSERT_EQUAL(proto_result_next(&r, &rec, &e), 1);
    CU_ASSERT_EQUAL(proto_result_next(&r, &rec, &e), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "malformed mark"));
    b.p[b.len - 1] = 1;
    b.p[b.len - 2] = 0x80;
    CU_ASSERT_EQUAL_FATAL(proto_result_open(&r, b.p, b.len, &e), SL_OK);
    CU_ASSERT_EQUAL(proto_result_next(&r, &rec, &e), 1);
    CU_ASSERT_EQUAL(proto_result_next(&r, &rec, &e), SL_EFORMAT);
    CU_ASSERT_EQUAL(proto_mark_parse("12345678", 8, &next, &done, &e), SL_EFORMAT);
    CU_ASSERT_EQUAL(PROTO_PARTIAL, 17);
    proto_buf_free(&b);
}

static void test_work_payload(void)
{
    static const unsigned char row[] = {0, 0xff, 0, 1, 'S', 'P', 'L', 'R', 0};
    proto_buf b = {0};
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(proto_work_begin(&b, 0xfffffffeu, PROTO_WORK_PAYLOAD | PROTO_WORK_ALONE,
                                           &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_work_add_bytes(&b, "r1", row, sizeof row, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_work_add_bytes(&b, "r2", "", 0, &e), SL_OK);
    uint32_t wid, flags;
    proto_item it[4];
    size_t n;
    CU_ASSERT_EQUAL_FATAL(proto_work_parse(b.p, b.len, &wid, &flags, it, 4, &n, &e), SL_OK);
    CU_ASSERT_EQUAL(wid, 0xfffffffeu);
    CU_ASSERT_EQUAL(flags, PROTO_WORK_PAYLOAD | PROTO_WORK_ALONE);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(it[0].id, "r1");
    CU_ASSERT_EQUAL_FATAL(it[0].path_len, sizeof row);
    CU_ASSERT_EQUAL(memcmp(it[0].path, row, sizeof row), 0); // NULs and all
    CU_ASSERT_EQUAL(it[0].path[sizeof row], 0);
    CU_ASSERT_STRING_EQUAL(it[1].id, "r2");
    CU_ASSERT_EQUAL(it[1].path_len, 0);
    CU_ASSERT_EQUAL(it[1].path[0], 0);
    proto_buf_free(&b);
}

static void test_little_endian(void)
{
    static const unsigned char work[] = {
        0x04, 0x03, 0x02, 0x01, // wid
        0x02, 0x00, 0x00, 0x00, // flags: PAYLOAD
        0x01, 0x00, 0x00, 0x00, // n
        0x02, 0x00, 0x00, 0x00, // id_len
        0x01, 0x00, 0x00, 0x00, // path_len
        'a',  'b',  0x00, 'c',  0x00,
    };
    proto_buf b = {0};
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(proto_work_begin(&b, 0x01020304u, PROTO_WORK_PAYLOAD, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_work_add(&b, "ab", "c", &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(b.len, sizeof work);
    CU_ASSERT_EQUAL(memcmp(b.p, work, sizeof work), 0);

    static const unsigned char result[] = {
        0x0d, 0x0c, 0x0b, 0x0a, // wid
        0x01, 0x00, 0x00, 0x00, // n
        0x01,                   // kind: error
        0x01, 0x00, 0x00, 0x00, // key_len
        0x02, 0x00, 0x00, 0x00, // val_len
        'k',  'v',  'v',
    };
    CU_ASSERT_EQUAL_FATAL(proto_result_begin(&b, 0x0a0b0c0du, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_result_add(&b, PROTO_REC_ERROR, "k", 1, "vv", 2, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(b.len, sizeof result);
    CU_ASSERT_EQUAL(memcmp(b.p, result, sizeof result), 0);
    proto_buf_free(&b);

    unsigned char four[4];
    proto_stop_encode(four, 3);
    CU_ASSERT_EQUAL(memcmp(four, "\x03\x00\x00\x00", 4), 0);
    proto_stop_encode(four, 0x11223344u);
    CU_ASSERT_EQUAL(memcmp(four, "\x44\x33\x22\x11", 4), 0);
    proto_crash_encode(four, 0x0a0b0c0du);
    CU_ASSERT_EQUAL(memcmp(four, "\x0d\x0c\x0b\x0a", 4), 0);

    double st[PROTO_N_STATS] = {1.0, 0, 0, 0, 0, 0, 0, 0, 0.5, 0, 2.0};
    unsigned char out[PROTO_STATS_BYTES];
    CU_ASSERT_EQUAL(PROTO_STATS_BYTES, 88); // 11 values, the decoder steps and rows last
    CU_ASSERT_EQUAL(PROTO_N_DEC_STEPS, 9);
    CU_ASSERT_EQUAL(PROTO_N_DEC_ROWS, 10);
    proto_stats_encode(out, st);
    CU_ASSERT_EQUAL(memcmp(out, "\x00\x00\x00\x00\x00\x00\xf0\x3f", 8), 0); // 0x3ff0000000000000
    CU_ASSERT_EQUAL(memcmp(out + 64, "\x00\x00\x00\x00\x00\x00\xe0\x3f", 8), 0);
    CU_ASSERT_EQUAL(memcmp(out + 80, "\x00\x00\x00\x00\x00\x00\x00\x40", 8), 0);
}

static void test_result_roundtrip(void)
{
    static const unsigned char row[] = {'S', 'P', 'L', 'R', 1, 0, 0, 0, 0xff, 0};
    static const char msg[] = "audio: x.wav: too short";
    proto_buf b = {0};
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(proto_result_begin(&b, 9, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_result_add(&b, PROTO_REC_ROW, "spk1/utt1", 9, row, sizeof row, &e),
                          SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_result_add(&b, PROTO_REC_ERROR, "spk1/utt2", 9, msg, strlen(msg),
                                           &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_result_add(&b, PROTO_REC_ROW, "k", 1, "", 0, &e), SL_OK);
    CU_ASSERT_EQUAL(proto_result_add(&b, 2, "k", 1, "", 0, &e), SL_EINVAL);
    proto_result_reader r;
    CU_ASSERT_EQUAL_FATAL(proto_result_open(&r, b.p, b.len, &e), SL_OK);
    CU_ASSERT_EQUAL(r.wid, 9);
    CU_ASSERT_EQUAL(r.n, 3);
    proto_record rec;
    CU_ASSERT_EQUAL_FATAL(proto_result_next(&r, &rec, &e), 1);
    CU_ASSERT_EQUAL(rec.kind, PROTO_REC_ROW);
    CU_ASSERT_EQUAL(rec.key_len, 9);
    CU_ASSERT_EQUAL(memcmp(rec.key, "spk1/utt1", 9), 0);
    CU_ASSERT_EQUAL_FATAL(rec.val_len, sizeof row);
    CU_ASSERT_EQUAL(memcmp(rec.val, row, sizeof row), 0);
    CU_ASSERT(inside(b.p, b.len, rec.key, rec.key_len) && inside(b.p, b.len, rec.val, rec.val_len));
    CU_ASSERT_EQUAL_FATAL(proto_result_next(&r, &rec, &e), 1);
    CU_ASSERT_EQUAL(rec.kind, PROTO_REC_ERROR);
    CU_ASSERT_EQUAL(memcmp(rec.key, "spk1/utt2", 9), 0);
    CU_ASSERT_EQUAL_FATAL(rec.val_len, strlen(msg));
    CU_ASSERT_EQUAL(memcmp(rec.val, msg, strlen(msg)), 0);
    CU_ASSERT_EQUAL_FATAL(proto_result_next(&r, &rec, &e), 1);
    CU_ASSERT_EQUAL(rec.kind, PROTO_REC_ROW);
    CU_ASSERT_EQUAL(rec.key_len, 1);
    CU_ASSERT_EQUAL(rec.val_len, 0);
    CU_ASSERT_EQUAL(proto_result_next(&r, &rec, &e), 0);
    // No records: the 8-byte header, then the end.
    CU_ASSERT_EQUAL_FATAL(proto_result_begin(&b, 0xffffffffu, &e), SL_OK);
    CU_ASSERT_EQUAL(b.len, 8);
    CU_ASSERT_EQUAL_FATAL(proto_result_open(&r, b.p, b.len, &e), SL_OK);
    CU_ASSERT_EQUAL(r.wid, 0xffffffffu);
    CU_ASSERT_EQUAL(proto_result_next(&r, &rec, &e), 0);
    proto_buf_free(&b);
}

static void test_small_messages(void)
{
    sl_err e;
    unsigned char four[4];
    uint32_t v = 99;
    proto_stop_encode(four, 0);
    CU_ASSERT_EQUAL(proto_stop_parse(four, 4, &v, &e), SL_OK);
    CU_ASSERT_EQUAL(v, 0);
    proto_stop_encode(four, 3);
    CU_ASSERT_EQUAL(proto_stop_parse(four, 4, &v, &e), SL_OK);
    CU_ASSERT_EQUAL(v, 3);
    proto_crash_encode(four, 0);
    CU_ASSERT_EQUAL(proto_crash_parse(four, 4, &v, &e), SL_OK);
    CU_ASSERT_EQUAL(v, 0);
    proto_crash_encode(four, 0xffffffffu);
    CU_ASSERT_EQUAL(proto_crash_parse(four, 4, &v, &e), SL_OK);
    CU_ASSERT_EQUAL(v, 0xffffffffu);
    CU_ASSERT_EQUAL(proto_hello_parse(NULL, 0, &e), SL_OK);
    CU_ASSERT_EQUAL(proto_hello_parse(four, 0, &e), SL_OK);
}

static void test_stats_bits(void)
{
    // Doubles travel as their exact bit patterns: subnormals, the largest finite
    // value, 0.1 (not exact in binary) and -0.0 (>= 0, so accepted) come back bit for bit.
    const double st[PROTO_N_STATS] = {0.1, DBL_TRUE_MIN, DBL_MAX, -0.0, 1e-300,
                                      4503599627370497.0, 40, 2, 311.5, 120, 377.25};
    unsigned char out[PROTO_STATS_BYTES];
    proto_stats_encode(out, st);
    double back[PROTO_N_STATS];
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(proto_stats_parse(out, sizeof out, back, &e), SL_OK);
    CU_ASSERT_EQUAL(memcmp(back, st, sizeof st), 0);
    CU_ASSERT(signbit(back[3]));
    const double zero[PROTO_N_STATS] = {0};
    proto_stats_encode(out, zero);
    for (size_t i = 0; i < sizeof out; i++)
        CU_ASSERT_EQUAL(out[i], 0);
    CU_ASSERT_EQUAL(proto_stats_parse(out, sizeof out, back, &e), SL_OK);
}

// A WORK of one item ("id", "a.wav") to break in place, 29 bytes: header 0..12,
// then id_len at 12, path_len at 16, id at 20, its NUL at 22, path at 23, its NUL at 28.
static size_t one_item(unsigned char *m, uint32_t flags)
{
    proto_buf b = {0};
    sl_err e;
    CU_ASSERT_FATAL(proto_work_begin(&b, 5, flags, &e) == SL_OK &&
                    proto_work_add(&b, "id", "a.wav", &e) == SL_OK);
    size_t n = b.len;
    CU_ASSERT_EQUAL_FATAL(n, 29);
    memcpy(m, b.p, n);
    proto_buf_free(&b);
    return n;
}

static void test_work_refused(void)
{
    unsigned char m[64];
    uint32_t wid, flags, cnt;
    proto_item it[4];
    size_t n_it;
    sl_err e;
    size_t n = one_item(m, 0);
    CU_ASSERT_EQUAL(proto_work_parse(m, n, &wid, &flags, it, 4, &n_it, &e), SL_OK);

    int rc = proto_work_header(m, 11, &wid, &flags, &cnt, &e); // truncated header
    CHECK_REFUSED(rc, e, "WORK", "11 bytes (header is 12)");
    rc = proto_work_parse(m, 11, &wid, &flags, it, 4, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "11 bytes");
    rc = proto_work_parse(m, n - 1, &wid, &flags, it, 4, &n_it, &e); // last NUL cut off
    CHECK_REFUSED(rc, e, "WORK", "item 0 malformed");

    put_le32(m + 16, 100); // path overruns the message
    rc = proto_work_parse(m, n, &wid, &flags, it, 4, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "item 0 malformed");
    put_le32(m + 16, 0xffffffffu); // ... by a length that would wrap 32-bit sums
    rc = proto_work_parse(m, n, &wid, &flags, it, 4, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "item 0 malformed");
    n = one_item(m, 0);
    put_le32(m + 12, 0xfffffffeu);
    rc = proto_work_parse(m, n, &wid, &flags, it, 4, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "item 0 malformed");

    n = one_item(m, 0);
    m[22] = 'X'; // the id's NUL is missing
    rc = proto_work_parse(m, n, &wid, &flags, it, 4, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "item 0 malformed");
    n = one_item(m, 0);
    m[28] = 'X'; // the path's NUL is missing
    rc = proto_work_parse(m, n, &wid, &flags, it, 4, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "item 0 malformed");
    n = one_item(m, 0);
    m[21] = 0; // a NUL inside the id
    rc = proto_work_parse(m, n, &wid, &flags, it, 4, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "item 0 malformed");
    n = one_item(m, 0);
    m[24] = 0; // a NUL inside a path: the worker would open "a"
    rc = proto_work_parse(m, n, &wid, &flags, it, 4, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "item 0 malformed");
    n = one_item(m, PROTO_WORK_PAYLOAD);
    m[24] = 0; // ... which a payload may hold
    CU_ASSERT_EQUAL(proto_work_parse(m, n, &wid, &flags, it, 4, &n_it, &e), SL_OK);

    n = one_item(m, 0);
    m[n] = m[n + 1] = 0; // trailing bytes
    rc = proto_work_parse(m, n + 2, &wid, &flags, it, 4, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "2 bytes after its last item");

    n = one_item(m, 0);
    put_le32(m + 4, 16); // an unknown flag (8 is PROTO_WORK_ITEM_FLAGS)
    rc = proto_work_header(m, n, &wid, &flags, &cnt, &e);
    CHECK_REFUSED(rc, e, "WORK", "unknown flags 0x10");
    rc = proto_work_parse(m, n, &wid, &flags, it, 4, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "unknown flags 0x10");
    put_le32(m + 4, PROTO_WORK_ITEM_FLAGS); // item flags need ranges
    rc = proto_work_header(m, n, &wid, &flags, &cnt, &e);
    CHECK_REFUSED(rc, e, "WORK", "item flags but no ranges");
    put_le32(m + 4, 0x80000000u | PROTO_WORK_ALONE);
    rc = proto_work_parse(m, n, &wid, &flags, it, 4, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "unknown flags 0x80000001");

    // A second item with fewer than 8 bytes left for its lengths.
    n = one_item(m, 0);
    put_le32(m + 8, 2);
    memset(m + n, 0, 5);
    rc = proto_work_parse(m, n + 5, &wid, &flags, it, 4, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "item 1 truncated");
}

static void test_work_counts(void)
{
    sl_err e;
    uint32_t wid, flags, cnt;
    size_t n_it = 77;
    // 2^32 - 1 items in 12 bytes: refused from the header alone, before any item
    // is read or stored (a NULL item array of unbounded capacity stays untouched).
    unsigned char h[12];
    put_le32(h, 1);
    put_le32(h + 4, 0);
    put_le32(h + 8, 0xffffffffu);
    int rc = proto_work_header(h, sizeof h, &wid, &flags, &cnt, &e);
    CHECK_REFUSED(rc, e, "WORK", "4294967295 items in 12 bytes");
    rc = proto_work_parse(h, sizeof h, &wid, &flags, NULL, SIZE_MAX, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "4294967295 items in 12 bytes");
    CU_ASSERT_EQUAL(n_it, 77);

    // More items than the caller has room for.
    proto_buf b = {0};
    CU_ASSERT_EQUAL_FATAL(proto_work_begin(&b, 3, 0, &e), SL_OK);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL_FATAL(proto_work_add(&b, "u", "u.wav", &e), SL_OK);
    proto_item it[3];
    rc = proto_work_parse(b.p, b.len, &wid, &flags, it, 2, &n_it, &e);
    CHECK_REFUSED(rc, e, "WORK", "3 items (capacity 2)");
    CU_ASSERT_EQUAL(proto_work_parse(b.p, b.len, &wid, &flags, it, 3, &n_it, &e), SL_OK);
    CU_ASSERT_EQUAL(n_it, 3);
    proto_buf_free(&b);
}

static void test_result_refused(void)
{
    sl_err e;
    proto_result_reader r;
    proto_record rec;
    proto_buf b = {0};
    CU_ASSERT_EQUAL_FATAL(proto_result_begin(&b, 4, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(proto_result_add(&b, PROTO_REC_ROW, "key", 3, "value", 5, &e), SL_OK);
    unsigned char m[64];
    size_t n = b.len; // 8 + 9 + 3 + 5 = 25; kind at 8, key_len at 9, val_len at 13
    CU_ASSERT_EQUAL_FATAL(n, 25);
    memcpy(m, b.p, n);
    proto_buf_free(&b);

    int rc = proto_result_open(&r, m, 7, &e); // truncated header
    CHECK_REFUSED(rc, e, "RESULT", "7 bytes (header is 8)");

    unsigned char h[8];
    put_le32(h, 0);
    put_le32(h + 4, 0xffffffffu);
    rc = proto_result_open(&r, h, sizeof h, &e);
    CHECK_REFUSED(rc, e, "RESULT", "4294967295 records in 8 bytes");

    m[8] = 3; // unknown kind
    CU_ASSERT_EQUAL_FATAL(proto_result_open(&r, m, n, &e), SL_OK);
    rc = proto_result_next(&r, &rec, &e);
    CHECK_REFUSED(rc, e, "RESULT", "record 0 malformed");
    m[8] = PROTO_REC_MARK; // a mark whose value is not 9 bytes
    CU_ASSERT_EQUAL_FATAL(proto_result_open(&r, m, n, &e), SL_OK);
    rc = proto_result_next(&r, &rec, &e);
    CHECK_REFUSED(rc, e, "RESULT", "record 0: a malformed mark");
    m[8] = PROTO_REC_ROW;

    put_le32(m + 13, 6); // the value overruns the message
    CU_ASSERT_EQUAL_FATAL(proto_result_open(&r, m, n, &e), SL_OK);
    rc = proto_result_next(&r, &rec, &e);
    CHECK_REFUSED(rc, e, "RESULT", "record 0 malformed");
    put_le32(m + 9, 0xffffffffu); // ... and so do lengths that would wrap 32-bit sums
    put_le32(m + 13, 0xffffffffu);
    CU_ASSERT_EQUAL_FATAL(proto_result_open(&r, m, n, &e), SL_OK);
    rc = proto_result_next(&r, &rec, &e);
    CHECK_REFUSED(rc, e, "RESULT", "record 0 malformed");
    put_le32(m + 9, 3);
    put_le32(m + 13, 5);

    m[n] = 0; // trailing bytes after the last record
    CU_ASSERT_EQUAL_FATAL(proto_result_open(&r, m, n + 1, &e), SL_OK);
    CU_ASSERT_EQUAL(proto_result_next(&r, &rec, &e), 1);
    rc = proto_result_next(&r, &rec, &e);
    CHECK_REFUSED(rc, e, "RESULT", "trailing bytes");

    // Two records counted, fewer than 9 bytes left for the second one's header.
    put_le32(m + 4, 2);
    memset(m + n, 0, 8);
    CU_ASSERT_EQUAL_FATAL(proto_result_open(&r, m, n + 8, &e), SL_OK);
    CU_ASSERT_EQUAL(proto_result_next(&r, &rec, &e), 1);
    rc = proto_result_next(&r, &rec, &e);
    CHECK_REFUSED(rc, e, "RESULT", "record 1 truncated");
}

static void test_small_refused(void)
{
    sl_err e;
    unsigned char m[PROTO_STATS_BYTES + 8] = {0};
    uint32_t v;
    put_le32(m, 7);
    int rc = proto_stop_parse(m, 4, &v, &e);
    CHECK_REFUSED(rc, e, "STOP", "status 7 (want 0 or 3)");
    put_le32(m, 0);
    rc = proto_stop_parse(m, 3, &v, &e);
    CHECK_REFUSED(rc, e, "STOP", "3 bytes (want 4)");
    rc = proto_stop_parse(m, 5, &v, &e);
    CHECK_REFUSED(rc, e, "STOP", "5 bytes (want 4)");
    rc = proto_crash_parse(m, 0, &v, &e);
    CHECK_REFUSED(rc, e, "CRASH", "0 bytes (want 4)");
    rc = proto_crash_parse(m, 5, &v, &e);
    CHECK_REFUSED(rc, e, "CRASH", "5 bytes (want 4)");
    rc = proto_hello_parse(m, 1, &e);
    CHECK_REFUSED(rc, e, "HELLO", "1 bytes (want 0)");
}

static void test_stats_refused(void)
{
    sl_err e;
    double st[PROTO_N_STATS] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, back[PROTO_N_STATS];
    unsigned char m[PROTO_STATS_BYTES + 8] = {0};
    proto_stats_encode(m, st);
    CU_ASSERT_EQUAL(proto_stats_parse(m, PROTO_STATS_BYTES, back, &e), SL_OK);
    int rc = proto_stats_parse(m, PROTO_STATS_BYTES - 8, back, &e);
    CHECK_REFUSED(rc, e, "STATS", "80 bytes (want 88)");
    rc = proto_stats_parse(m, PROTO_STATS_BYTES + 8, back, &e);
    CHECK_REFUSED(rc, e, "STATS", "96 bytes (want 88)");

    const double bad[] = {NAN, INFINITY, -INFINITY, -1.0, -DBL_TRUE_MIN, NAN, -2.0};
    const int at[] = {PROTO_AUDIO_SECONDS, PROTO_T_AUDIO, PROTO_N_ROWS, PROTO_T_FEATURES,
                      PROTO_N_ERRORS, PROTO_N_DEC_STEPS, PROTO_N_DEC_ROWS};
    const char *what[] = {"value 8 is", "value 0 is inf", "value 6 is -inf", "value 1 is -1",
                          "value 7 is -4.94066e-324", "value 9 is", "value 10 is -2"};
    for (int i = 0; i < 7; i++) {
        double s[PROTO_N_STATS];
        memcpy(s, st, sizeof s);
        s[at[i]] = bad[i];
        proto_stats_encode(m, s);
        rc = proto_stats_parse(m, PROTO_STATS_BYTES, back, &e);
        CHECK_REFUSED(rc, e, "STATS", what[i]);
    }
}

int main(void)
{
    static const sl_test_case cases[] = {{"work_paths", test_work_paths},
                                         {"work_payload", test_work_payload},
                                         {"work_ranges", test_work_ranges},
                                         {"work_item_flags", test_work_item_flags},
                                         {"result_marks", test_result_marks},
                                         {"little_endian", test_little_endian},
                                         {"result_roundtrip", test_result_roundtrip},
                                         {"small_messages", test_small_messages},
                                         {"stats_bits", test_stats_bits},
                                         {"work_refused", test_work_refused},
                                         {"work_counts", test_work_counts},
                                         {"result_refused", test_result_refused},
                                         {"small_refused", test_small_refused},
                                         {"stats_refused", test_stats_refused},
                                         {NULL, NULL}};
    return sl_test_main("protocol", cases);
}
