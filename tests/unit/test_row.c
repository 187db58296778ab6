// tests/unit/test_row.c — the row and error record codec: round trips and
// every kind of malformed value.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "storage/row.h"
#include "tests/row_v1.h"
#include "tests/testutil.h"

static void test_row_roundtrip(void)
{
    int32_t sem[5] = {0, 15, 3, 3, 499};
    int32_t txt[3] = {1, 40, 0};
    rec_header h = {.flags = REC_FLAG_MAXLEN, .n_semantic = 5, .n_text = 3, .duration_s = 2.909f,
                    .score = -16.5f, .start = 0, .end = 46544};
    unsigned char buf[256];
    sl_err e;
    long n = rec_row_encode(&h, sem, txt, buf, sizeof buf, &e);
    CU_ASSERT_EQUAL_FATAL(n, 44 + 4 * 9);
    CU_ASSERT_EQUAL((size_t)n, rec_row_bytes(5, 3, 0));
    CU_ASSERT_EQUAL(memcmp(buf, "SPLR", 4), 0);
    CU_ASSERT_EQUAL(buf[4], 2); // version 2 on disk
    rec_header g;
    CU_ASSERT_EQUAL_FATAL(rec_row_decode(buf, (size_t)n, &g, &e), SL_OK);
    CU_ASSERT_EQUAL(g.version, 2);
    CU_ASSERT_EQUAL(REC_VERSION, 2);
    CU_ASSERT_EQUAL(g.start, 0);
    CU_ASSERT_EQUAL(g.end, 46544);
    CU_ASSERT_EQUAL(g.source_len, 0);
    CU_ASSERT_PTR_NULL(g.source);
    CU_ASSERT_EQUAL(rec_row_ids_offset(&g), 44);
    CU_ASSERT_EQUAL(g.flags, REC_FLAG_MAXLEN);
    CU_ASSERT_EQUAL(g.n_semantic, 5);
    CU_ASSERT_EQUAL(g.n_text, 3);
    CU_ASSERT_EQUAL(g.duration_s, 2.909f);
    CU_ASSERT_EQUAL(g.score, -16.5f);
    int32_t s2[5], t2[3];
    rec_row_ids(buf, &g, s2, t2);
    CU_ASSERT_EQUAL(memcmp(s2, sem, sizeof sem), 0);
    CU_ASSERT_EQUAL(memcmp(t2, txt, sizeof txt), 0);
    CU_ASSERT_EQUAL(rec_row_id_at(buf, 5), -1);
    // Empty lists are legal: header + delimiter.
    rec_header z = {0};
    CU_ASSERT_EQUAL(rec_row_encode(&z, NULL, NULL, buf, sizeof buf, &e), 48);
    CU_ASSERT_EQUAL(rec_row_decode(buf, 48, &g, &e), SL_OK);
}

// A segment row: its source id after the ids, its exact sample bounds in the header.
static void test_row_v2_source(void)
{
    int32_t sem[2] = {4, 5}, txt[1] = {6};
    const char *src = "book/ch01.flac";
    rec_header h = {.n_semantic = 2, .n_text = 1, .duration_s = 28.68f, .score = -2.0f,
                    .start = 197443, .end = 656321, .source = src, .source_len = 14};
    unsigned char buf[256];
    sl_err e;
    long n = rec_row_encode(&h, sem, txt, buf, sizeof buf, &e);
    CU_ASSERT_EQUAL_FATAL(n, 44 + 4 * 4 + 14);
    CU_ASSERT_EQUAL((size_t)n, rec_row_bytes(2, 1, 14));
    // The documented layout, byte for byte.
    uint64_t u64;
    uint32_t u32;
    memcpy(&u64, buf + 24, 8);
    CU_ASSERT_EQUAL(u64, 197443);
    memcpy(&u64, buf + 32, 8);
    CU_ASSERT_EQUAL(u64, 656321);
    memcpy(&u32, buf + 40, 4);
    CU_ASSERT_EQUAL(u32, 14);
    int32_t at44;
    memcpy(&at44, buf + 44, 4);
    CU_ASSERT_EQUAL(at44, 4);
    CU_ASSERT_EQUAL(memcmp(buf + 44 + 16, src, 14), 0);
    rec_header g;
    CU_ASSERT_EQUAL_FATAL(rec_row_decode(buf, (size_t)n, &g, &e), SL_OK);
    CU_ASSERT_EQUAL(g.start, 197443);
    CU_ASSERT_EQUAL(g.end, 656321);
    CU_ASSERT_EQUAL_FATAL(g.source_len, 14);
    CU_ASSERT_PTR_EQUAL(g.source, (const char *)buf + 60); // points into the value
    int32_t s2[2], t2[1];
    rec_row_ids(buf, &g, s2, t2);
    CU_ASSERT_EQUAL(memcmp(s2, sem, sizeof sem), 0);
    CU_ASSERT_EQUAL(t2[0], 6);
    CU_ASSERT_EQUAL(rec_row_id_at(buf, 2), -1);
    CU_ASSERT_EQUAL(rec_row_id_at(buf, 3), 6);
    const char *ps;
    size_t pn;
    rec_row_source(&g, "book/ch01.flac@00012.340-00041.020", 34, &ps, &pn);
    CU_ASSERT_PTR_EQUAL(ps, g.source);
    CU_ASSERT_EQUAL(pn, 14);
    rec_header whole = {.version = 2};
    rec_row_source(&whole, "a.wav", 5, &ps, &pn);
    CU_ASSERT_EQUAL(pn, 5);
    CU_ASSERT_EQUAL(memcmp(ps, "a.wav", 5), 0);
    // An empty span (start = end) is a legal row; end before start is not.
    rec_header empty = {.start = 7, .end = 7};
    CU_ASSERT_EQUAL(rec_row_encode(&empty, NULL, NULL, buf, sizeof buf, &e), 48);
    rec_header back = {.start = 8, .end = 7};
    CU_ASSERT_EQUAL(rec_row_encode(&back, NULL, NULL, buf, sizeof buf, &e), SL_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "before start"));
    rec_header nul = {.source = "a\0b", .source_len = 3};
    CU_ASSERT_EQUAL(rec_row_encode(&nul, NULL, NULL, buf, sizeof buf, &e), SL_EINVAL);
    rec_header missing = {.source = NULL, .source_len = 3};
    CU_ASSERT_EQUAL(rec_row_encode(&missing, NULL, NULL, buf, sizeof buf, &e), SL_EINVAL);
    CU_ASSERT_EQUAL(rec_row_encode(&h, sem, txt, buf, (size_t)n - 1, &e), SL_EINVAL); // cap
}

// Version-1 bytes (what every dataset before segments holds) decode, with derived bounds.
static void test_row_v1(void)
{
    int32_t sem[3] = {9, 8, 7}, txt[2] = {1, 2};
    unsigned char buf[128];
    size_t n = sl_test_row_v1(REC_FLAG_LOOP, sem, 3, txt, 2, 2.909f, -3.25f, buf);
    CU_ASSERT_EQUAL_FATAL(n, 24 + 4 * 6);
    rec_header g;
    sl_err e;
    CU_ASSERT_EQUAL_FATAL(rec_row_decode(buf, n, &g, &e), SL_OK);
    CU_ASSERT_EQUAL(g.version, 1);
    CU_ASSERT_EQUAL(g.flags, REC_FLAG_LOOP);
    CU_ASSERT_EQUAL(g.n_semantic, 3);
    CU_ASSERT_EQUAL(g.n_text, 2);
    CU_ASSERT_EQUAL(g.duration_s, 2.909f);
    CU_ASSERT_EQUAL(g.score, -3.25f);
    CU_ASSERT_EQUAL(g.start, 0);
    CU_ASSERT_EQUAL(g.end, 46544); // round(2.909f * 16000) = round(46543.9987)
    CU_ASSERT_EQUAL(g.source_len, 0);
    CU_ASSERT_PTR_NULL(g.source);
    CU_ASSERT_EQUAL(rec_row_ids_offset(&g), 24);
    int32_t s2[3], t2[2];
    rec_row_ids(buf, &g, s2, t2);
    CU_ASSERT_EQUAL(memcmp(s2, sem, sizeof sem), 0);
    CU_ASSERT_EQUAL(memcmp(t2, txt, sizeof txt), 0);
    CU_ASSERT_EQUAL(rec_row_id_at(buf, 3), -1);
    CU_ASSERT_EQUAL(rec_row_id_at(buf, 4), 1);
    // Re-encoding writes version 2 with the same fields and the derived bounds.
    unsigned char out[128];
    long m = rec_row_encode(&g, s2, t2, out, sizeof out, &e);
    CU_ASSERT_EQUAL_FATAL(m, 44 + 4 * 6);
    rec_header g2;
    CU_ASSERT_EQUAL_FATAL(rec_row_decode(out, (size_t)m, &g2, &e), SL_OK);
    CU_ASSERT_EQUAL(g2.version, 2);
    CU_ASSERT_EQUAL(g2.end, 46544);
    CU_ASSERT_EQUAL(memcmp(out + 44, buf + 24, n - 24), 0); // the same id body
    // Durations that are no length: end 0, never undefined behaviour.
    static const float odd[] = {-1.0f, NAN, INFINITY, -INFINITY, 1e30f, 0.0f};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        n = sl_test_row_v1(0, NULL, 0, NULL, 0, odd[i], 0.0f, buf);
        CU_ASSERT_EQUAL_FATAL(rec_row_decode(buf, n, &g, &e), SL_OK);
        CU_ASSERT_EQUAL(g.end, 0);
    }
    n = sl_test_row_v1(0, NULL, 0, NULL, 0, 3600.5f, 0.0f, buf);
    CU_ASSERT_EQUAL_FATAL(rec_row_decode(buf, n, &g, &e), SL_OK);
    CU_ASSERT_EQUAL(g.end, 57608000);
    // v1 corruption is still caught: counts vs length, the delimiter.
    n = sl_test_row_v1(0, sem, 3, txt, 2, 1.0f, 0.0f, buf);
    CU_ASSERT_EQUAL(rec_row_decode(buf, n - 4, &g, &e), SL_ECORRUPT);
    CU_ASSERT_EQUAL(rec_row_decode(buf, n + 0 - 20, &g, &e), SL_ECORRUPT);
    int32_t five = 5;
    memcpy(buf + 24 + 12, &five, 4);
    CU_ASSERT_EQUAL(rec_row_decode(buf, n, &g, &e), SL_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "delimiter"));
}

// Every way a version-2 value can disagree with itself.
static void test_row_v2_corrupt(void)
{
    int32_t sem[2] = {7, 8}, txt[1] = {9};
    rec_header h = {.n_semantic = 2, .n_text = 1, .start = 100, .end = 200, .source = "src",
                    .source_len = 3};
    unsigned char buf[128], bad[128];
    sl_err e;
    long n = rec_row_encode(&h, sem, txt, buf, sizeof buf, &e);
    CU_ASSERT_EQUAL_FATAL(n, 44 + 16 + 3);
    rec_header g;
    // Shorter than the v2 header but not than v1's: refused, not read past the end.
    for (size_t len = 24; len < 44; len++) {
        CU_ASSERT_EQUAL(rec_row_decode(buf, len, &g, &e), SL_ECORRUPT);
    }
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "version-2 header"));
    CU_ASSERT_EQUAL(rec_row_decode(buf, 23, &g, &e), SL_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "shorter"));
    // Source bytes missing (the value cut) or extra.
    CU_ASSERT_EQUAL(rec_row_decode(buf, (size_t)n - 1, &g, &e), SL_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "3-byte source"));
    memcpy(bad, buf, (size_t)n);
    bad[n] = 'x';
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n + 1, &g, &e), SL_ECORRUPT);
    // A source length overrunning the value, up to the largest u32.
    static const uint32_t lens[] = {4, 64, 0x7fffffffu, UINT32_MAX};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        memcpy(bad, buf, (size_t)n);
        memcpy(bad + 40, &lens[i], 4);
        CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    }
    // A source length shorter than the bytes left: the bytes no longer add up.
    memcpy(bad, buf, (size_t)n);
    uint32_t two = 2;
    memcpy(bad + 40, &two, 4);
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    // Source length 0 while 3 bytes follow the ids.
    uint32_t zero = 0;
    memcpy(bad + 40, &zero, 4);
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    // Ids counted into the source: n_text + 1 eats 4 bytes the source needs.
    memcpy(bad, buf, (size_t)n);
    uint32_t nt = 2;
    memcpy(bad + 12, &nt, 4);
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    // Huge counts overflow nothing.
    memcpy(bad, buf, (size_t)n);
    uint32_t huge = UINT32_MAX;
    memcpy(bad + 8, &huge, 4);
    memcpy(bad + 12, &huge, 4);
    memcpy(bad + 40, &huge, 4);
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    // end before start.
    memcpy(bad, buf, (size_t)n);
    uint64_t early = 99;
    memcpy(bad + 32, &early, 8);
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "before start"));
    // A NUL inside the source.
    memcpy(bad, buf, (size_t)n);
    bad[n - 2] = 0;
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "NUL"));
    // The delimiter at its v2 place, and a negative id.
    memcpy(bad, buf, (size_t)n);
    int32_t five = 5, neg = -2;
    memcpy(bad + 44 + 8, &five, 4);
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "delimiter"));
    memcpy(bad, buf, (size_t)n);
    memcpy(bad + 44 + 12, &neg, 4);
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    // Version 3 is from the future.
    memcpy(bad, buf, (size_t)n);
    bad[4] = 3;
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "version 3"));
    // A v2 value relabelled version 1 no longer adds up (its body is 20 bytes later).
    memcpy(bad, buf, (size_t)n);
    bad[4] = 1;
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
}

static int check(const rec_header *h, const char *key)
{
    sl_err e;
    return rec_row_check_key(h, key, strlen(key), &e);
}

// A row agrees with its key: what verify reports when it does not.
static void test_row_check_key(void)
{
    rec_header whole = {.version = 2, .start = 0, .end = 16000};
    CU_ASSERT_EQUAL(check(&whole, "a.wav"), SL_OK);
    CU_ASSERT_EQUAL(check(&whole, "me@host.wav"), SL_OK);
    rec_header v1 = {.version = 1, .end = 16000};
    CU_ASSERT_EQUAL(check(&v1, "a.wav"), SL_OK);
    CU_ASSERT_EQUAL(check(&v1, "a.wav@00001.000-00002.000"), SL_ECORRUPT);
    rec_header whole_src = {.version = 2, .end = 10, .source = "b.wav", .source_len = 5};
    CU_ASSERT_EQUAL(check(&whole_src, "a.wav"), SL_ECORRUPT);
    rec_header whole_late = {.version = 2, .start = 5, .end = 10};
    CU_ASSERT_EQUAL(check(&whole_late, "a.wav"), SL_ECORRUPT);
    // 1.0005 s .. 2.0009 s: samples 16008 .. 32014.
    rec_header seg = {.version = 2, .start = 16008, .end = 32014, .source = "a.wav",
                      .source_len = 5};
    CU_ASSERT_EQUAL(check(&seg, "a.wav@00001.000-00002.000"), SL_OK);
    CU_ASSERT_EQUAL(check(&seg, "a.wav@00001.001-00002.000"), SL_ECORRUPT); // start ms
    CU_ASSERT_EQUAL(check(&seg, "a.wav@00001.000-00002.001"), SL_ECORRUPT); // end ms
    CU_ASSERT_EQUAL(check(&seg, "b.wav@00001.000-00002.000"), SL_ECORRUPT); // other source
    CU_ASSERT_EQUAL(check(&seg, "xa.wav@00001.000-00002.000"), SL_ECORRUPT); // longer prefix
    sl_err e;
    CU_ASSERT_EQUAL(rec_row_check_key(&seg, "a.wav@00001.000-00002.000", 25, &e), SL_OK);
    rec_header seg_nosrc = {.version = 2, .start = 16008, .end = 32014};
    CU_ASSERT_EQUAL(rec_row_check_key(&seg_nosrc, "a.wav@00001.000-00002.000", 25, &e),
                    SL_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "prefix"));
    rec_header seg_empty = {.version = 2, .start = 16008, .end = 16008, .source = "a.wav",
                            .source_len = 5};
    CU_ASSERT_EQUAL(check(&seg_empty, "a.wav@00001.000-00001.000"), SL_ECORRUPT);
}

static void test_row_malformed(void)
{
    int32_t sem[2] = {7, 8}, txt[1] = {9};
    rec_header h = {.n_semantic = 2, .n_text = 1};
    unsigned char buf[64], bad[64];
    sl_err e;
    long n = rec_row_encode(&h, sem, txt, buf, sizeof buf, &e);
    rec_header g;
    CU_ASSERT_EQUAL(rec_row_decode(buf, 10, &g, &e), SL_ECORRUPT); // short header
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "shorter"));
    memcpy(bad, buf, (size_t)n);
    bad[0] = 'X'; // wrong magic
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "magic"));
    CU_ASSERT_EQUAL(rec_row_decode(buf, (size_t)n - 4, &g, &e), SL_ECORRUPT); // counts vs length
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "2 semantic + 1 text"));
    memcpy(bad, buf, (size_t)n);
    bad[4] = 9; // version from the future
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "version 9"));
    memcpy(bad, buf, (size_t)n);
    bad[6] = 0x80; // unknown flag
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    memcpy(bad, buf, (size_t)n);
    int32_t notdelim = 5;
    memcpy(bad + 44 + 8, &notdelim, 4); // delimiter overwritten
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "delimiter"));
    memcpy(bad, buf, (size_t)n);
    int32_t neg = -3;
    memcpy(bad + 44, &neg, 4);
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    // A count so large the length check overflows nothing.
    memcpy(bad, buf, (size_t)n);
    uint32_t huge = UINT32_MAX;
    memcpy(bad + 8, &huge, 4);
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    // Encoder refuses negative ids and small buffers.
    int32_t negs[1] = {-1};
    rec_header h1 = {.n_semantic = 1};
    CU_ASSERT_EQUAL(rec_row_encode(&h1, negs, NULL, buf, sizeof buf, &e), SL_EINVAL);
    CU_ASSERT_EQUAL(rec_row_encode(&h, sem, txt, buf, 20, &e), SL_EINVAL);
}

static void test_error_record(void)
{
    unsigned char buf[256];
    sl_err e;
    long n = rec_error_encode(SL_STAGE_AUDIO, SL_EIO, 2, "audio: x.wav: too short", buf,
                              sizeof buf, &e);
    CU_ASSERT_EQUAL_FATAL(n, 20 + 23);
    CU_ASSERT_EQUAL(buf[4], 1); // error records keep format version 1 (REC_ERR_VERSION)
    CU_ASSERT_EQUAL(buf[5], 0);
    rec_error r;
    CU_ASSERT_EQUAL_FATAL(rec_error_decode(buf, (size_t)n, &r, &e), SL_OK);
    CU_ASSERT_EQUAL(r.stage, SL_STAGE_AUDIO);
    CU_ASSERT_EQUAL(r.code, SL_EIO);
    CU_ASSERT_EQUAL(r.attempts, 2);
    CU_ASSERT_EQUAL(r.msg_len, 23);
    CU_ASSERT_EQUAL(memcmp(r.msg, "audio: x.wav: too short", 23), 0);
    CU_ASSERT_STRING_EQUAL(sl_stage_name(r.stage), "audio");
    CU_ASSERT_EQUAL(rec_error_decode(buf, (size_t)n - 1, &r, &e), SL_ECORRUPT);
    CU_ASSERT_EQUAL(rec_error_decode(buf, 10, &r, &e), SL_ECORRUPT);
    buf[6] = 99;
    CU_ASSERT_EQUAL(rec_error_decode(buf, (size_t)n, &r, &e), SL_ECORRUPT);
    CU_ASSERT_EQUAL(rec_error_encode(SL_STAGE_TEXT, 0, 1, "long message", buf, 10, &e), SL_EINVAL);
}

// A seed-layout row ends its semantic ids with the speech EOS, which is not a source id:
// regenerate must hand the decoder the ids before it, and only for such rows.
static void test_row_n_source(void)
{
    int32_t sem[4] = {3, 1, 4, 500}, txt[2] = {7, 8}; // 500: the speech EOS of a 500-id model
    rec_header seed = {.flags = REC_FLAG_SEED_EOS, .n_semantic = 4, .n_text = 2};
    unsigned char buf[128];
    sl_err e;
    long n = rec_row_encode(&seed, sem, txt, buf, sizeof buf, &e);
    CU_ASSERT_FATAL(n > 0);
    rec_header g;
    CU_ASSERT_EQUAL_FATAL(rec_row_decode(buf, (size_t)n, &g, &e), SL_OK);
    CU_ASSERT_EQUAL(rec_row_n_source(&g), 3);
    CU_ASSERT_EQUAL(rec_row_id_at(buf, rec_row_n_source(&g) - 1), 4); // the last source id
    rec_header plain = {.flags = REC_FLAG_MAXLEN | REC_FLAG_LOOP, .n_semantic = 4, .n_text = 2};
    CU_ASSERT_EQUAL(rec_row_n_source(&plain), 4); // default rows hold no EOS
    rec_header empty = {.flags = REC_FLAG_SEED_EOS, .n_semantic = 0};
    CU_ASSERT_EQUAL(rec_row_n_source(&empty), 0); // a damaged seed row does not wrap around
}

// Stage numbers are stored; their names are what export and stat print.
static void test_stage_names(void)
{
    static const char *const want[] = {"input", "audio", "features", "tokens",
                                       "text",  "crash", "inherited"};
    for (int i = 0; i < SL_STAGE_COUNT; i++)
        CU_ASSERT_STRING_EQUAL(sl_stage_name(i), want[i]);
    CU_ASSERT_STRING_EQUAL(sl_stage_name(SL_STAGE_NONE), "none");
    CU_ASSERT_STRING_EQUAL(sl_stage_name(SL_STAGE_COUNT), "unknown");
    CU_ASSERT_STRING_EQUAL(sl_stage_name(65535), "unknown");
    unsigned char buf[64];
    sl_err e;
    CU_ASSERT_EQUAL(rec_error_encode(SL_STAGE_NONE, 0, 1, "x", buf, sizeof buf, &e), SL_EINVAL);
    CU_ASSERT_EQUAL(rec_error_encode(SL_STAGE_COUNT, 0, 1, "x", buf, sizeof buf, &e), SL_EINVAL);
    long n = rec_error_encode(SL_STAGE_INHERITED, 0, 1, "x", buf, sizeof buf, &e);
    CU_ASSERT_EQUAL_FATAL(n, 21);
    CU_ASSERT_EQUAL(buf[6], 6); // the u16 stage as stored since format version 1
    CU_ASSERT_EQUAL(buf[7], 0);
}

int main(void)
{
    static const sl_test_case cases[] = {{"row_roundtrip", test_row_roundtrip},
                                         {"row_malformed", test_row_malformed},
                                         {"row_v2_source", test_row_v2_source},
                                         {"row_v1", test_row_v1},
                                         {"row_v2_corrupt", test_row_v2_corrupt},
                                         {"row_check_key", test_row_check_key},
                                         {"error_record", test_error_record},
                                         {"row_n_source", test_row_n_source},
                                         {"stage_names", test_stage_names},
                                         {NULL, NULL}};
    return sl_test_main("row", cases);
}
