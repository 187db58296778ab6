// tests/unit/test_segkey.c — the key of a piece of a file: format, parse, and
// every edge of the suffix pattern.
#include <stdint.h>
#include <string.h>

#include "storage/segkey.h"
#include "tests/testutil.h"

static void test_format(void)
{
    char out[128];
    const char *src = "book/ch01.flac";
    // 12.340 s = 197440 samples, 41.020 s = 656320 samples.
    size_t n = seg_key_format(src, strlen(src), 197440, 656320, out, sizeof out);
    CU_ASSERT_EQUAL(n, strlen(src) + 20);
    CU_ASSERT_STRING_EQUAL(out, "book/ch01.flac@00012.340-00041.020");
    // Truncated to the millisecond: 15 samples past a millisecond stay in it.
    n = seg_key_format("a", 1, 16 * 12340 + 15, 16 * 41020 + 15, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "a@00012.340-00041.020");
    CU_ASSERT_EQUAL(n, 21);
    // Zero start, one sample long.
    CU_ASSERT_EQUAL(seg_key_format("a", 1, 0, 1, out, sizeof out), 21);
    CU_ASSERT_STRING_EQUAL(out, "a@00000.000-00000.000");
    // The largest end that fits: 99999.999 s plus 15 samples.
    CU_ASSERT_EQUAL(seg_key_format("a", 1, 0, SEG_KEY_LIMIT_SAMPLES - 1, out, sizeof out), 21);
    CU_ASSERT_STRING_EQUAL(out, "a@00000.000-99999.999");
    // Source bytes are copied as given: not NUL-terminated, '@' allowed.
    CU_ASSERT_EQUAL(seg_key_format("x@y.wavJUNK", 7, 16000, 32000, out, sizeof out), 27);
    CU_ASSERT_STRING_EQUAL(out, "x@y.wav@00001.000-00002.000");
}

static void test_format_refuses(void)
{
    char out[64];
    memset(out, 'Z', sizeof out);
    CU_ASSERT_EQUAL(seg_key_format("a", 1, 100, 100, out, sizeof out), 0); // end == start
    CU_ASSERT_EQUAL(seg_key_format("a", 1, 101, 100, out, sizeof out), 0); // end < start
    CU_ASSERT_EQUAL(seg_key_format("a", 1, 0, SEG_KEY_LIMIT_SAMPLES, out, sizeof out), 0);
    CU_ASSERT_EQUAL(seg_key_format("a", 1, 0, UINT64_MAX, out, sizeof out), 0);
    CU_ASSERT_EQUAL(seg_key_format("", 0, 0, 16, out, sizeof out), 0); // no source
    CU_ASSERT_EQUAL(out[0], 'Z');                                      // untouched
    // cap: the key plus its NUL, not one byte less.
    CU_ASSERT_EQUAL(seg_key_format("ab", 2, 0, 16, out, 22), 0);
    CU_ASSERT_EQUAL(out[0], 'Z');
    CU_ASSERT_EQUAL(seg_key_format("ab", 2, 0, 16, out, 23), 22);
    CU_ASSERT_EQUAL(out[22], '\0');
}

static int split(const char *k, size_t *len) { return seg_key_split(k, strlen(k), len); }

static void test_split(void)
{
    size_t len = 999;
    CU_ASSERT_EQUAL(split("book/ch01.flac@00012.340-00041.020", &len), 1);
    CU_ASSERT_EQUAL(len, 14);
    CU_ASSERT_EQUAL(split("a@00000.000-00000.000", &len), 1); // equal ms bounds are well formed
    CU_ASSERT_EQUAL(len, 1);
    CU_ASSERT_EQUAL(split("a@00000.000-00000.000", NULL), 1);
    // A file id containing '@': only the final suffix counts.
    CU_ASSERT_EQUAL(split("me@host/x.wav@00001.000-00002.000", &len), 1);
    CU_ASSERT_EQUAL(len, 13);
    CU_ASSERT_EQUAL(split("a@00001.000-00002.000@00003.000-00004.000", &len), 1);
    CU_ASSERT_EQUAL(len, 21);
    uint64_t s = 0, e = 0;
    CU_ASSERT_EQUAL(seg_key_parse("a@00012.340-99999.999", 21, &len, &s, &e), 1);
    CU_ASSERT_EQUAL(s, 12340);
    CU_ASSERT_EQUAL(e, 99999999);
    // Whole-file keys: *source_len untouched.
    static const char *const whole[] = {
        "book/ch01.flac",
        "me@host/x.wav",
        "@00001.000-00002.000",           // no source before the '@'
        "a@00001.000-00002.00",           // 2 decimals
        "a@0001.000-00002.000",           // 4 integer digits
        "a@000001.000-00002.000",         // 6 integer digits (the '@' is one byte off)
        "a@00001.000-00002.0000",         // 4 decimals
        "a@00001,000-00002.000",          // not a '.'
        "a@00001.000_00002.000",          // not a '-'
        "a#00001.000-00002.000",          // not an '@'
        "a@0000x.000-00002.000",          // not a digit
        "a@00001.000-00002.00a",
        "a@00002.000-00001.000",          // end before start
        "a@00001.000-00002.000 ",         // trailing byte
        "a@00001.000-00002.000\n",
        "a@-0001.000-00002.000",
        "",
        "a",
    };
    for (size_t i = 0; i < sizeof whole / sizeof *whole; i++) {
        len = 777;
        CU_ASSERT_EQUAL(split(whole[i], &len), 0);
        CU_ASSERT_EQUAL(len, 777);
    }
    // A key given with its length is not read past it.
    CU_ASSERT_EQUAL(seg_key_split("a@00001.000-00002.000XYZ", 21, &len), 1);
    CU_ASSERT_EQUAL(seg_key_split("a@00001.000-00002.000", 20, &len), 0);
}

// Every key format writes splits back to its source and its bounds; keys of one
// source sort by start.
static void test_roundtrip_and_order(void)
{
    static const uint64_t bounds[][2] = {{0, 1},         {15, 16},       {16, 17},
                                         {197440, 656320}, {123456789, 1500000000},
                                         {1599999983, 1599999999}};
    char prev[64] = "";
    for (size_t i = 0; i < sizeof bounds / sizeof *bounds; i++) {
        char out[64];
        size_t n = seg_key_format("s@t", 3, bounds[i][0], bounds[i][1], out, sizeof out);
        CU_ASSERT_EQUAL_FATAL(n, 23);
        size_t len = 0;
        uint64_t s, e;
        CU_ASSERT_EQUAL(seg_key_parse(out, n, &len, &s, &e), 1);
        CU_ASSERT_EQUAL(len, 3);
        CU_ASSERT_EQUAL(s, bounds[i][0] / 16);
        CU_ASSERT_EQUAL(e, bounds[i][1] / 16);
        CU_ASSERT(strcmp(prev, out) < 0); // increasing starts give increasing keys
        memcpy(prev, out, n + 1);
    }
}

int main(void)
{
    static const sl_test_case cases[] = {{"format", test_format},
                                         {"format_refuses", test_format_refuses},
                                         {"split", test_split},
                                         {"roundtrip_and_order", test_roundtrip_and_order},
                                         {NULL, NULL}};
    return sl_test_main("segkey", cases);
}
