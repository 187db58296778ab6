// tests/unit/test_common.c — err, arena, npy, sha256, fileio, clock, json.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/fileio.h"
#include "common/json.h"
#include "common/npy.h"
#include "common/sha256.h"
#include "tests/testutil.h"

static void test_err(void)
{
    sl_err e;
    CU_ASSERT_EQUAL(sl_fail(&e, SL_EIO, "audio: open %s: %s", "x.wav", "gone"), SL_EIO);
    CU_ASSERT_STRING_EQUAL(e.msg, "audio: open x.wav: gone");
    sl_err_prefix(&e, "item %d", 42);
    CU_ASSERT_STRING_EQUAL(e.msg, "item 42: audio: open x.wav: gone");
    CU_ASSERT_EQUAL(e.code, SL_EIO);
    CU_ASSERT_STRING_EQUAL(sl_code_name(SL_ECORRUPT), "ECORRUPT");
}

static void test_arena(void)
{
    sl_arena *a = sl_arena_new(1024);
    char *p = sl_arena_alloc(a, 100);
    char *q = sl_arena_alloc(a, 100);
    CU_ASSERT_PTR_NOT_NULL(p);
    CU_ASSERT(((uintptr_t)p % 64) == 0 && ((uintptr_t)q % 64) == 0);
    CU_ASSERT(q >= p + 100);
    memset(p, 1, 100);
    memset(q, 2, 100);
    char *big = sl_arena_alloc(a, 10000); // larger than a chunk
    CU_ASSERT_PTR_NOT_NULL(big);
    memset(big, 3, 10000);
    size_t cap = sl_arena_capacity(a);
    sl_arena_reset(a);
    CU_ASSERT_EQUAL(sl_arena_used(a), 0);
    for (int round = 0; round < 3; round++) { // steady state: no new chunks
        CU_ASSERT_PTR_NOT_NULL(sl_arena_alloc(a, 100));
        CU_ASSERT_PTR_NOT_NULL(sl_arena_alloc(a, 10000));
        sl_arena_reset(a);
    }
    CU_ASSERT_EQUAL(sl_arena_capacity(a), cap);
    CU_ASSERT_PTR_NULL(sl_arena_calloc(a, SIZE_MAX / 2, 4));
    sl_arena_free(a);
}

static void test_npy_roundtrip(void)
{
    const char *dir = sl_test_tmpdir("npy");
    char path[4200];
    snprintf(path, sizeof path, "%s/a.npy", dir);
    float f[6] = {1, -2, 3.5f, 4, 5, 6};
    size_t shape[2] = {2, 3};
    sl_err e;
    CU_ASSERT_EQUAL(sl_npy_write(path, SL_NPY_F32, 2, shape, f, &e), SL_OK);
    sl_npy a;
    CU_ASSERT_EQUAL_FATAL(sl_npy_read(path, &a, &e), SL_OK);
    CU_ASSERT_EQUAL(a.dtype, SL_NPY_F32);
    CU_ASSERT_EQUAL(a.ndim, 2);
    CU_ASSERT_EQUAL(a.shape[0], 2);
    CU_ASSERT_EQUAL(a.shape[1], 3);
    CU_ASSERT_EQUAL(memcmp(a.data, f, sizeof f), 0);
    sl_npy_free(&a);
    int64_t ids[4] = {0, 15, 3, 1LL << 40};
    size_t s1[1] = {4};
    CU_ASSERT_EQUAL(sl_npy_write(path, SL_NPY_I64, 1, s1, ids, &e), SL_OK);
    CU_ASSERT_EQUAL_FATAL(sl_npy_read(path, &a, &e), SL_OK);
    CU_ASSERT_EQUAL(a.dtype, SL_NPY_I64);
    CU_ASSERT_EQUAL(a.ndim, 1);
    CU_ASSERT_EQUAL(((int64_t *)a.data)[3], 1LL << 40);
    sl_npy_free(&a);
    sl_test_rmtree(dir);
}

static void test_npy_golden_and_errors(void)
{
    sl_npy a;
    sl_err e;
    // Written by numpy itself (np.save of the golden k-means centroids).
    CU_ASSERT_EQUAL_FATAL(sl_npy_read(sl_test_data("kmeans_16.npy"), &a, &e), SL_OK);
    CU_ASSERT_EQUAL(a.ndim, 2);
    CU_ASSERT_EQUAL(a.shape[0], 16);
    CU_ASSERT_EQUAL(a.shape[1], 48);
    sl_npy_free(&a);
    CU_ASSERT_EQUAL_FATAL(sl_npy_read(sl_test_data("ids_L2.npy"), &a, &e), SL_OK);
    CU_ASSERT_EQUAL(a.dtype, SL_NPY_I64);
    CU_ASSERT_EQUAL(a.shape[0], 145);
    sl_npy_free(&a);

    const char hdr_f8[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f8', 'fortran_order': False, "
                          "'shape': (1,), }";
    unsigned char img[256] = {0};
    memcpy(img, hdr_f8, sizeof hdr_f8 - 1);
    CU_ASSERT_EQUAL(sl_npy_parse(img, 10 + 0x76, "x.npy", &a, &e), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "x.npy"));
    CU_ASSERT_EQUAL(sl_npy_parse("not numpy", 9, "y.npy", &a, &e), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "bad magic"));
    // Shape that needs more data than present.
    char h2[128];
    int n = snprintf(h2, sizeof h2, "{'descr': '<f4', 'fortran_order': False, 'shape': (9,), }");
    unsigned char img2[256] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)n, 0};
    memcpy(img2 + 10, h2, (size_t)n);
    CU_ASSERT_EQUAL(sl_npy_parse(img2, 10 + (size_t)n + 8, "z.npy", &a, &e), SL_EFORMAT);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "36 data bytes"));
    n = snprintf(h2, sizeof h2, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }");
    img2[8] = (unsigned char)n;
    memcpy(img2 + 10, h2, (size_t)n);
    CU_ASSERT_EQUAL(sl_npy_parse(img2, 10 + (size_t)n + 8, "w.npy", &a, &e), SL_EFORMAT);
    CU_ASSERT_EQUAL(sl_npy_read("/nonexistent/q.npy", &a, &e), SL_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "/nonexistent/q.npy"));
}

static void test_sha256(void)
{
    char hex[SL_SHA256_HEX];
    sl_sha256_hex("abc", 3, hex);
    CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sl_err e;
    // Same digest as MANIFEST.md states for the golden file.
    CU_ASSERT_EQUAL(sl_sha256_file(sl_test_data("ids_L2.npy"), hex, &e), SL_OK);
    CU_ASSERT_STRING_EQUAL(hex, "c20fa1d68e6987dc4f1513f25892145dffaf22039be010cc1e7e3f793f6aa1dc");
    CU_ASSERT_EQUAL(sl_sha256_file("/nonexistent", hex, &e), SL_EIO);
}

static void test_fileio(void)
{
    const char *dir = sl_test_tmpdir("fio");
    char path[4200];
    snprintf(path, sizeof path, "%s/f.txt", dir);
    sl_err e;
    CU_ASSERT_EQUAL(sl_write_file_atomic(path, "hello", 5, &e), SL_OK);
    void *buf;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(sl_read_file(path, 100, &buf, &n, &e), SL_OK);
    CU_ASSERT_EQUAL(n, 5);
    CU_ASSERT_STRING_EQUAL((char *)buf, "hello");
    free(buf);
    CU_ASSERT_EQUAL(sl_read_file(path, 3, &buf, &n, &e), SL_EFORMAT);
    CU_ASSERT_EQUAL(sl_read_file(dir, 100, &buf, &n, &e), SL_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, "not a regular file"));
    sl_test_rmtree(dir);
}

static void test_clock(void)
{
    double a = sl_now(), b = sl_now();
    CU_ASSERT(a > 0.0 && b >= a);
}

// Each getter: default when absent or null, the value when valid, and a message naming
// module, file and key (with the caller's key_lead) when not; *out untouched on failure.
static void test_json(void)
{
    json_t *o = json_loads("{\"i\": 7, \"neg\": -3, \"big\": 3000000000, \"s\": \"gelu\", "
                           "\"n\": null, \"b\": true, \"x\": 2.5, \"a\": [1, 2, 3], "
                           "\"a0\": [], \"abad\": [1, 0]}", 0, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    sl_json_src h = {"hubert", "m/config.json", ""}, t = {"s2t", "m.st", "config key "};
    sl_err e;
    int v = 99;
    CU_ASSERT_EQUAL(sl_json_int(&h, o, "i", 0, 10, 5, &v, &e), SL_OK);
    CU_ASSERT_EQUAL(v, 7);
    CU_ASSERT_EQUAL(sl_json_int(&h, o, "absent", 0, 10, 5, &v, &e), SL_OK);
    CU_ASSERT_EQUAL(v, 5);
    CU_ASSERT_EQUAL(sl_json_int(&h, o, "n", 0, 10, 6, &v, &e), SL_OK); // null = not given
    CU_ASSERT_EQUAL(v, 6);
    CU_ASSERT_EQUAL(sl_json_int(&h, o, "neg", 0, 10, 5, &v, &e), SL_EFORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "hubert: m/config.json: \"neg\" is not an integer in [0, 10]");
    CU_ASSERT_EQUAL(v, 6);
    CU_ASSERT_EQUAL(sl_json_int(&t, o, "big", -5, 5, 0, &v, &e), SL_EFORMAT);
    CU_ASSERT_EQUAL(sl_json_int(&t, o, "s", -5, 5, 0, &v, &e), SL_EFORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "s2t: m.st: config key \"s\" is not an integer in [-5, 5]");
    CU_ASSERT_EQUAL(sl_json_int_required(&t, o, "neg", -5, 5, &v, &e), SL_OK);
    CU_ASSERT_EQUAL(v, -3);
    CU_ASSERT_EQUAL(sl_json_int_required(&t, o, "n", -5, 5, &v, &e), SL_EFORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "s2t: m.st: config key \"n\" is missing");
    CU_ASSERT_EQUAL(sl_json_bool(&h, o, "b", 0, &v, &e), SL_OK);
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT_EQUAL(sl_json_bool(&h, o, "absent", 0, &v, &e), SL_OK);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(sl_json_bool(&h, o, "i", 0, &v, &e), SL_EFORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "hubert: m/config.json: \"i\" is not true or false");
    double d = 0;
    CU_ASSERT_EQUAL(sl_json_number(&t, o, "x", 1.0, &d, &e), SL_OK);
    CU_ASSERT(d == 2.5);
    CU_ASSERT_EQUAL(sl_json_number(&t, o, "i", 1.0, &d, &e), SL_OK); // an integer is a number
    CU_ASSERT(d == 7.0);
    CU_ASSERT_EQUAL(sl_json_number(&t, o, "absent", 1.5, &d, &e), SL_OK);
    CU_ASSERT(d == 1.5);
    CU_ASSERT_EQUAL(sl_json_number(&t, o, "s", 1.0, &d, &e), SL_EFORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "s2t: m.st: config key \"s\" is not a number");
    int arr[4], n = -1;
    CU_ASSERT_EQUAL(sl_json_int_array(&h, o, "a", 1, 9, 4, arr, &n, &e), SL_OK);
    CU_ASSERT(n == 3 && arr[0] == 1 && arr[2] == 3);
    CU_ASSERT_EQUAL(sl_json_int_array(&h, o, "a", 1, 9, 2, arr, &n, &e), SL_EFORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "hubert: m/config.json: \"a\" is not an array of 1..2 integers");
    CU_ASSERT_EQUAL(sl_json_int_array(&h, o, "a0", 1, 9, 4, arr, &n, &e), SL_EFORMAT);
    CU_ASSERT_EQUAL(sl_json_int_array(&h, o, "abad", 1, 9, 4, arr, &n, &e), SL_EFORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "hubert: m/config.json: \"abad\"[1] is not an integer in [1, 9]");
    CU_ASSERT_EQUAL(sl_json_int_array(&h, o, "absent", 1, 9, 4, arr, &n, &e), SL_EFORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "hubert: m/config.json: \"absent\" is missing");
    CU_ASSERT_EQUAL(n, 3);
    const char *one[] = {"gelu", NULL}, *two[] = {"group", "layer", NULL};
    CU_ASSERT_EQUAL(sl_json_choice(&h, o, "s", one, 9, &v, &e), SL_OK);
    CU_ASSERT_EQUAL(v, 0);
    CU_ASSERT_EQUAL(sl_json_choice(&h, o, "absent", two, 1, &v, &e), SL_OK);
    CU_ASSERT_EQUAL(v, 1);
    CU_ASSERT_EQUAL(sl_json_choice(&h, o, "s", two, 0, &v, &e), SL_EFORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg,
                           "hubert: m/config.json: \"s\" is \"gelu\"; supported: \"group\", \"layer\"");
    CU_ASSERT_EQUAL(sl_json_choice(&h, o, "i", one, 0, &v, &e), SL_EFORMAT);
    CU_ASSERT_STRING_EQUAL(e.msg, "hubert: m/config.json: \"i\" is not a string; supported: \"gelu\"");
    json_decref(o);
}

int main(void)
{
    static const sl_test_case cases[] = {
        {"err", test_err},           {"arena", test_arena},
        {"npy_roundtrip", test_npy_roundtrip}, {"npy_golden_and_errors", test_npy_golden_and_errors},
        {"sha256", test_sha256},     {"fileio", test_fileio},
        {"clock", test_clock},       {"json getters", test_json},
        {NULL, NULL}};
    return sl_test_main("common", cases);
}
