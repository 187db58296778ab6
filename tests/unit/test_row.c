// tests/unit/test_row.c — the row and error record codec: round trips and
// every kind of malformed value.
#include <stdint.h>
#include <string.h>

#include "storage/row.h"
#include "tests/testutil.h"

static void test_row_roundtrip(void)
{
    int32_t sem[5] = {0, 15, 3, 3, 499};
    int32_t txt[3] = {1, 40, 0};
    rec_header h = {.flags = REC_FLAG_MAXLEN, .n_semantic = 5, .n_text = 3, .duration_s = 2.909f,
                    .score = -16.5f};
    unsigned char buf[256];
    sl_err e;
    long n = rec_row_encode(&h, sem, txt, buf, sizeof buf, &e);
    CU_ASSERT_EQUAL_FATAL(n, 24 + 4 * 9);
    CU_ASSERT_EQUAL(memcmp(buf, "SPLR", 4), 0);
    rec_header g;
    CU_ASSERT_EQUAL_FATAL(rec_row_decode(buf, (size_t)n, &g, &e), SL_OK);
    CU_ASSERT_EQUAL(g.version, REC_VERSION);
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
    CU_ASSERT_EQUAL(rec_row_encode(&z, NULL, NULL, buf, sizeof buf, &e), 28);
    CU_ASSERT_EQUAL(rec_row_decode(buf, 28, &g, &e), SL_OK);
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
    memcpy(bad + 24 + 8, &notdelim, 4); // delimiter overwritten
    CU_ASSERT_EQUAL(rec_row_decode(bad, (size_t)n, &g, &e), SL_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "delimiter"));
    memcpy(bad, buf, (size_t)n);
    int32_t neg = -3;
    memcpy(bad + 24, &neg, 4);
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
                                         {"error_record", test_error_record},
                                         {"row_n_source", test_row_n_source},
                                         {"stage_names", test_stage_names},
                                         {NULL, NULL}};
    return sl_test_main("row", cases);
}
